#!/bin/bash
# bench/device_check.sh - on the GPU machine: build with CUDA (-Werror), run the GPU tests, check
# `dia generate --backend cuda` against the golden greedy codes (f32 parity mode) and that it
# reports CUDA graphs, then the CPU comparison with PyTorch (bench/bench_cpu_vs_torch.sh).
#   bash bench/device_check.sh
set -u
PHASES="${GPU_PHASES:-env build test}" bash bench/bench_cuda.sh 2>&1 | grep -v "^cc \|^nvcc\|^ar \|^ln \|^rm " | tail -45
CBLAS_DIR=$(dirname "$(find /usr/include -name cblas.h 2>/dev/null | head -1)")
make CUDA=1 BUILD=build-cuda DEPS_PREFIX=/tmp/deps "CFLAGS=-I$CBLAS_DIR" -j"$(nproc)" build-cuda/bin/dia > /tmp/cli.log 2>&1 \
  || { tail -20 /tmp/cli.log; exit 1; }
echo "=== dia generate --backend cuda (f32 parity mode, greedy) vs golden text0.greedy_codes"
T0="[S1] Hello from a tiny model. [S2] It only speaks noise (laughs)."
# libsndfile's own dependencies (FLAC, vorbis, ...) come from /tmp/deps too: RUNPATH does not reach them
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu
for dt in f32 auto; do
  ./build-cuda/bin/dia generate --backend cuda --dtype $dt --model tests/fixtures/tiny/dia-hf --text "$T0" \
    --temperature 0 --max-tokens 128 --codes-out /tmp/cuda_$dt.npy
  python3 - "$dt" <<'PY'
import json, struct, sys
import numpy as np
f = open("tests/fixtures/tiny/golden.safetensors", "rb"); n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(f.read(n)); base = 8 + n; e = h["text0.greedy_codes"]
raw = open("tests/fixtures/tiny/golden.safetensors", "rb").read()[base + e["data_offsets"][0]: base + e["data_offsets"][1]]
want = np.frombuffer(raw, dtype="<i4").reshape(e["shape"])
got = np.load(f"/tmp/cuda_{sys.argv[1]}.npy")
same = got.shape == want.shape and bool((got == want).all())
print(f"dtype {sys.argv[1]}: codes {got.shape}, equal to golden: {same}")
PY
done
echo "=== CPU: libdia vs PyTorch (float32, same host)"
STEPS=${CPU_STEPS:-12} bash bench/bench_cpu_vs_torch.sh 2>&1 | tail -6
