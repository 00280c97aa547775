#!/bin/sh
# CPU decode benchmark: tiny fixture and the full-size Dia-1.6B architecture (random weights built in
# memory, f32 and bf16 storage), at 1 thread and all threads. Run from the repository root after
# `make bench`. Prints one line per configuration (see bench/bench_decode.c).
set -eu
B=${BUILD:-build}/bench/bench_decode
N=$(nproc)
echo "# $(uname -m), $N cores, $(date -u +%Y-%m-%d)"
for t in 1 $N; do
  $B --model tests/fixtures/tiny/dia-hf --steps 500 --warmup 20 --threads $t
done
for dt in f32 bf16; do
  for t in 1 $N; do
    $B --random-config bench/dia-1.6b-0626.config.json --dtype $dt --steps ${FULL_STEPS:-8} --warmup 2 --threads $t
  done
done
