#!/usr/bin/env bash
# Load test of `groundglass serve` (issue 19): 1, 2, 4, 8, 16 concurrent clients, each asking
# REQUESTS reports of MAX_TOKENS tokens about the demo study's middle slice, against the ~100M
# random PaliGemma-2 benchmark checkpoint (bench/model_torch.py make, with the tiny fixture's
# tokenizer). Loopback only, inside a private network namespace; bounded by the request count.
#
# Each answer is exactly MAX_TOKENS long (min_tokens holds end-of-sequence back). MAX_BATCH is the
# server's --max-batch (1: one answer at a time, as before batching), DTYPE its --dtype, CLIENTS
# the counts of concurrent clients. MODEL=/tmp/gg-bench-3b DTYPE=bf16 for RadGrounder's shape.
#
#   bash bench/serve.sh                 # REQUESTS=2 MAX_TOKENS=32 MAX_BATCH=8
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="${MODEL:-/tmp/gg-bench-100m}"
REQUESTS="${REQUESTS:-2}"
MAX_TOKENS="${MAX_TOKENS:-32}"
MAX_BATCH="${MAX_BATCH:-8}"
DTYPE="${DTYPE:-auto}"
CLIENTS="${CLIENTS:-1,2,4,8,16}"
[[ -f "$MODEL/config.json" ]] || python3 "$ROOT/bench/model_torch.py" make "$MODEL" --shape 100m
[[ -f "$MODEL/tokenizer.json" ]] || cp "$ROOT/tests/fixtures/tiny-scripted/tokenizer.json" "$MODEL/"
cargo build --release -p groundglass --manifest-path "$ROOT/Cargo.toml" >/dev/null
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/groundglass"
LOG="$(mktemp)"
exec unshare -n bash -c '
  set -euo pipefail
  ip link set lo up
  "$0" serve --model "$1" --listen 127.0.0.1:18097 --queue 64 --max-batch "$6" --dtype "$7" 2> "$2" &
  trap "kill $! 2>/dev/null" EXIT
  for i in $(seq 600); do grep -q serving "$2" && break; sleep 0.1; done
  "$0" bench serve "$3/assets/demo/study" --remote http://127.0.0.1:18097 \
    --clients "$8" --requests "$4" --max-tokens "$5"
' "$BIN" "$MODEL" "$LOG" "$ROOT" "$REQUESTS" "$MAX_TOKENS" "$MAX_BATCH" "$DTYPE" "$CLIENTS"
