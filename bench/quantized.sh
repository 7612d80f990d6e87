#!/usr/bin/env bash
# Quantized decoding against llama.cpp on the same weights, in one run, printing ratios (>1:
# Groundglass is faster). llama.cpp has no PaliGemma: both decode the text decoder of the same
# 3B-shaped random PaliGemma-2 checkpoint (Gemma 2 2B shape), llama.cpp from the GGUF its own
# conversion script makes of it (bench/llama_cpp_bench.py), Groundglass from the checkpoint
# quantized at load (its cache beside the checkpoint, made on the first run).
#
#   bash bench/quantized.sh                      # TYPES="q8_0 q4_k bf16" NEW_TOKENS=32
#
# Needs what bench/model.sh needs, and llama-cpp-python built from source on this machine:
#   CMAKE_ARGS=-DGGML_NATIVE=ON pip install llama-cpp-python sentencepiece
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="${MODEL:-/tmp/gg-bench-3b}"
GGUF="${GGUF:-$MODEL-gguf}"
TYPES="${TYPES:-q8_0 q4_k bf16}"
NEW_TOKENS="${NEW_TOKENS:-32}"
[[ -f "$MODEL/config.json" ]] || python3 "$ROOT/bench/model_torch.py" make "$MODEL" --shape 3b
[[ -f "$GGUF/gemma2-q4_k.gguf" ]] || python3 "$ROOT/bench/llama_cpp_bench.py" gguf "$MODEL" "$GGUF" >/dev/null
cargo build --release -p groundglass --manifest-path "$ROOT/Cargo.toml" >/dev/null
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/groundglass"
echo "bandwidth: $("$BIN" bench bandwidth)"
# The image's 256 tokens, <bos> and 16 prompt tokens: the same context length on both sides.
PROMPT=273
for t in $TYPES; do
  GG=$("$BIN" bench model --model "$MODEL" --runs 1 --new-tokens "$NEW_TOKENS" --dtype "$t")
  LL=$(python3 "$ROOT/bench/llama_cpp_bench.py" time "$GGUF/gemma2-$t.gguf" --prompt-tokens "$PROMPT" --new-tokens "$NEW_TOKENS")
  echo "$t groundglass: $GG"
  echo "$t llama.cpp:   $LL"
  python3 - "$t" "$GG" "$LL" <<'PY'
import json, sys
t, g, l = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{t}: decoding {g['tok_per_s']:.2f} vs {l['tok_per_s']:.2f} tokens/s -> ratio {g['tok_per_s'] / l['tok_per_s']:.2f} (target >= 1.0)")
PY
done
