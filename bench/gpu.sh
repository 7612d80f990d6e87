#!/usr/bin/env bash
# The 3B model on the device machine's GPU: Groundglass (CUDA build) and PyTorch eager, both bf16,
# in one run, with the fraction of the memory-bandwidth limit each reaches. Prepared for a `device`
# run (an H200: no Rust toolchain there, PyTorch and transformers installed):
#
#   here:   bash bench/gpu.sh build          # target/gpu/groundglass, stripped (see below)
#   device: bash bench/gpu.sh run            # makes the checkpoint with the device's transformers
#
# `build` needs nvcc from PyPI (CUDA 13.0, what driver 580 runs: pip install --target
# /tmp/cuda-py "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*"
# "nvidia-nvvm==13.0.*") and, to link the binary, the CUDA libraries Candle links (libcuda,
# cuBLAS, cuBLASLt, cuRAND, NVRTC: CUDA_LIBS=dir). Without them only the model crate builds
# (what .ci/run checks).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CUDA_PY="${CUDA_PY:-/tmp/cuda-py/nvidia/cu13}"
MODEL="${MODEL:-/tmp/gg-bench-3b}"
NEW_TOKENS="${NEW_TOKENS:-64}"
BANDWIDTH_GB_PER_S="${BANDWIDTH_GB_PER_S:-4800}"   # H200 HBM3e

case "${1:-run}" in
  build)
    export PATH="$CUDA_PY/bin:$PATH" CUDA_ROOT="$CUDA_PY" CUDA_PATH="$CUDA_PY" CUDA_COMPUTE_CAP=90
    export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"   # one nvcc per core (default: half)
    export LIBRARY_PATH="${CUDA_LIBS:+$CUDA_LIBS:}$CUDA_PY/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
    CARGO_TARGET_DIR="$ROOT/target/gpu-build" cargo build --release -p groundglass --features cuda \
      --manifest-path "$ROOT/Cargo.toml"
    mkdir -p "$ROOT/target/gpu"
    strip -o "$ROOT/target/gpu/groundglass" "$ROOT/target/gpu-build/release/groundglass"
    ls -la "$ROOT/target/gpu/groundglass"
    ;;
  run)
    BIN="$ROOT/target/gpu/groundglass"
    [[ -x "$BIN" ]] || { echo "no $BIN: run 'bash bench/gpu.sh build' here first and carry target/gpu" >&2; exit 1; }
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    [[ -f "$MODEL/config.json" ]] || python3 "$ROOT/bench/model_torch.py" make "$MODEL" --shape 3b
    # The CUDA libraries the binary links, from the device's PyTorch wheels.
    SITE=$(python3 -c 'import site; print(site.getsitepackages()[0])')
    export LD_LIBRARY_PATH="$(find "$SITE/nvidia" -maxdepth 3 -name lib -type d | tr '\n' ':')${LD_LIBRARY_PATH:-}"
    GG=$("$BIN" bench model --model "$MODEL" --runs 3 --new-tokens "$NEW_TOKENS" --dtype bf16)
    PT=$(python3 "$ROOT/bench/model_torch.py" time "$MODEL" --runs 3 --new-tokens "$NEW_TOKENS" --dtype bf16 2>/dev/null | tail -1)
    echo "groundglass: $GG"
    echo "pytorch:     $PT"
    python3 - "$GG" "$PT" "$BANDWIDTH_GB_PER_S" <<'PY'
import json, sys
g, p, bw = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
limit = bw * 1e9 / p["decode_bytes"]
print(f"bandwidth {bw:.0f} GB/s, {p['decode_bytes'] / 1e9:.2f} GB per token -> limit {limit:.0f} tokens/s")
print(f"decoding: {g['tok_per_s']:.1f} vs {p['tok_per_s']:.1f} tokens/s -> ratio {g['tok_per_s'] / p['tok_per_s']:.2f} (target >= 2.0)")
print(f"fraction of the limit: groundglass {g['tok_per_s'] / limit:.3f} (target >= 0.40), pytorch {p['tok_per_s'] / limit:.3f}")
print(f"time to first token: {g['ttft_ms']:.0f} vs {p['ttft_ms']:.0f} ms")
PY
    # Eight answers decoded together (what `serve` does with concurrent requests); apart, so that
    # a failure here leaves the figures above standing.
    "$BIN" bench model --model "$MODEL" --runs 1 --new-tokens "$NEW_TOKENS" --dtype bf16 --batch 8 \
      || echo "batched decoding failed on the GPU"
    ;;
  *) echo "usage: bash bench/gpu.sh build|run" >&2; exit 2 ;;
esac
