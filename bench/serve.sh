#!/usr/bin/env bash
# Load test of `groundglass serve` (issue 19): 1, 2, 4, 8, 16 concurrent clients, each asking
# REQUESTS reports of MAX_TOKENS tokens about the demo study's middle slice, against the ~100M
# random PaliGemma-2 benchmark checkpoint (bench/model_torch.py make, with the tiny fixture's
# tokenizer). Loopback only, inside a private network namespace; bounded by the request count.
#
# Each answer is exactly MAX_TOKENS long (min_tokens holds end-of-sequence back). MAX_BATCH is the
# server's --max-batch (1: one answer at a time, as before batching), DTYPE its --dtype, CLIENTS
# the counts of concurrent clients. MODEL=/tmp/gg-bench-3b DTYPE=bf16 for RadGrounder's shape.
# TLS=1 serves HTTPS (a test authority and certificate made here with openssl; the clients trust
# it through GROUNDGLASS_REMOTE_CA), to see what TLS costs.
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
TLS="${TLS:-0}"
[[ -f "$MODEL/config.json" ]] || python3 "$ROOT/bench/model_torch.py" make "$MODEL" --shape 100m
[[ -f "$MODEL/tokenizer.json" ]] || cp "$ROOT/tests/fixtures/tiny-scripted/tokenizer.json" "$MODEL/"
cargo build --release -p groundglass --manifest-path "$ROOT/Cargo.toml" >/dev/null
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/groundglass"
LOG="$(mktemp)"
CERTS="$(mktemp -d)"
SCHEME=http
TLS_ARGS=()
if [[ "$TLS" == 1 ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=bench CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench" \
    -keyout "$CERTS/server.key" -out "$CERTS/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$CERTS/ext"
  openssl x509 -req -in "$CERTS/server.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" \
    -CAcreateserial -days 1 -extfile "$CERTS/ext" -out "$CERTS/server.pem" 2>/dev/null
  SCHEME=https
  TLS_ARGS=(--tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server.key")
  export GROUNDGLASS_REMOTE_CA="$CERTS/ca.pem"
fi
exec unshare -n bash -c '
  set -euo pipefail
  ip link set lo up
  bin="$0" model="$1" log="$2" root="$3" requests="$4" max_tokens="$5" max_batch="$6"
  dtype="$7" clients="$8" scheme="$9"
  shift 9
  "$bin" serve --model "$model" --listen 127.0.0.1:18097 --queue 64 --max-batch "$max_batch" \
    --dtype "$dtype" "$@" 2> "$log" &
  trap "kill $! 2>/dev/null" EXIT
  for i in $(seq 600); do grep -q serving "$log" && break; sleep 0.1; done
  "$bin" bench serve "$root/assets/demo/study" --remote "$scheme://127.0.0.1:18097" \
    --clients "$clients" --requests "$requests" --max-tokens "$max_tokens"
' "$BIN" "$MODEL" "$LOG" "$ROOT" "$REQUESTS" "$MAX_TOKENS" "$MAX_BATCH" "$DTYPE" "$CLIENTS" "$SCHEME" \
  "${TLS_ARGS[@]}"
