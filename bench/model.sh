#!/usr/bin/env bash
# Model benchmark against PyTorch (transformers' PaliGemmaForConditionalGeneration) on the same
# random ~100M-parameter PaliGemma-2 checkpoint, in one run, printing ratios (>1: Groundglass is
# faster). CPU by default; with a CUDA build (FEATURES=cuda) both sides use the GPU.
#
#   bash bench/model.sh                  # RUNS=3 NEW_TOKENS=64 DTYPE=f32
#   MODEL=/tmp/gg-bench-3b DTYPE=bf16 RUNS=1 NEW_TOKENS=8 bash bench/model.sh
#       # RadGrounder's 3B shape (made when missing: bench/model_torch.py make --shape 3b --bin)
#
# Also prints this machine's read bandwidth (`groundglass bench bandwidth`) and each decoding figure
# as a fraction of the limit it sets: bandwidth / bytes of the text decoder's weights per token.
#
# Needs python3 with torch, transformers, safetensors (pip install torch transformers safetensors).
# Makes the checkpoint in $MODEL (default /tmp/gg-bench-100m, 430 MB) when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-3}"
NEW_TOKENS="${NEW_TOKENS:-64}"
DTYPE="${DTYPE:-f32}"
MODEL="${MODEL:-/tmp/gg-bench-100m}"
FEATURES="${FEATURES:-}"
SHAPE="${SHAPE:-$([[ "$MODEL" == *3b* ]] && echo 3b || echo 100m)}"
[[ -f "$MODEL/config.json" ]] || python3 "$ROOT/bench/model_torch.py" make "$MODEL" --shape "$SHAPE" $([[ "$SHAPE" == 3b ]] && echo --bin)
cargo build --release -p groundglass ${FEATURES:+--features $FEATURES} --manifest-path "$ROOT/Cargo.toml" >/dev/null
BW=$("${CARGO_TARGET_DIR:-$ROOT/target}/release/groundglass" bench bandwidth)
GG=$("${CARGO_TARGET_DIR:-$ROOT/target}/release/groundglass" bench model --model "$MODEL" --runs "$RUNS" --new-tokens "$NEW_TOKENS" --dtype "$DTYPE")
PT=$(python3 "$ROOT/bench/model_torch.py" time "$MODEL" --runs "$RUNS" --new-tokens "$NEW_TOKENS" --dtype "$DTYPE" 2>/dev/null | tail -1)
echo "bandwidth:   $BW"
echo "groundglass: $GG"
echo "pytorch:     $PT"
python3 - "$GG" "$PT" "$BW" <<'PY'
import json, sys
g, p, bw = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
limit = bw["read_gb_per_s"] * 1e9 / p["decode_bytes"]
print(f"read bandwidth {bw['read_gb_per_s']:.1f} GB/s, {p['decode_bytes'] / 1e9:.2f} GB read per token -> limit {limit:.2f} tokens/s")
print(f"decoding as a fraction of the limit: groundglass {g['tok_per_s'] / limit:.2f}, pytorch {p['tok_per_s'] / limit:.2f}")
print(f"time to first token: {g['ttft_ms']:.0f} ms vs {p['ttft_ms']:.0f} ms -> ratio {p['ttft_ms'] / g['ttft_ms']:.2f} (target >= 1.0)")
print(f"decoding:            {g['tok_per_s']:.1f} vs {p['tok_per_s']:.1f} tokens/s -> ratio {g['tok_per_s'] / p['tok_per_s']:.2f} (target >= 1.0)")
PY
