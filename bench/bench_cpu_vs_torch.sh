#!/bin/bash
# bench/bench_cpu_vs_torch.sh - CPU decode speed, libdia vs PyTorch/transformers, float32, same
# machine, same full-size random Dia-1.6B model, in one command (run on the device machine's host
# CPU, which has PyTorch; the GPU is not used):
#   STEPS=20 THREADS=16 bash bench/bench_cpu_vs_torch.sh
set -u
STEPS=${STEPS:-20}
THREADS=${THREADS:-$(nproc)}
BF16=${MODEL:-/tmp/dia-full}
F32=/tmp/dia-full-f32
mkdir -p /tmp/deps
for f in kernels/cuda/debs/*.deb; do dpkg -x "$f" /tmp/deps; done
for l in crypto curl zstd openblas gomp; do
  if ! ldconfig -p | grep -q "lib$l.so "; then
    so=$(ldconfig -p | grep -o "/[^ ]*lib$l.so.[0-9]*$" | head -1)
    [ -n "$so" ] && ln -sf "$so" /tmp/deps/usr/lib/x86_64-linux-gnu/lib$l.so
  fi
done
CBLAS_DIR=$(dirname "$(find /usr/include -name cblas.h 2>/dev/null | head -1)")
make BUILD=build-cpu DEPS_PREFIX=/tmp/deps "CFLAGS=-I$CBLAS_DIR" -j"$(nproc)" build-cpu/bench/bench_decode \
  > /tmp/build-cpu.log 2>&1 || { tail -30 /tmp/build-cpu.log; exit 1; }
[ -f "$BF16/config.json" ] || python3 bench/make_full_model.py "$BF16"
[ -f "$F32/config.json" ] || python3 -c "
import torch, sys
from transformers import DiaForConditionalGeneration
DiaForConditionalGeneration.from_pretrained('$BF16', dtype=torch.float32).save_pretrained('$F32')
print('f32 copy written')"
echo "=== $(lscpu | grep 'Model name' | sed 's/ \+/ /g'), $(nproc) cores; threads: $THREADS"
for B in ${BATCHES:-1}; do
  for t in $THREADS; do
    ./build-cpu/bench/bench_decode --model "$F32" --threads "$t" --batch "$B" --steps "$STEPS" --warmup 3 2>&1 | grep -v "^libdia info"
    python3 bench/reference_pytorch_cpu.py "$F32" "$B" $((STEPS + 5)) "$t" 2>&1 | grep "^REF\|Error"
  done
done
