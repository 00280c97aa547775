#!/bin/bash
# bench/bench_sampling.sh - end-to-end `dia generate` on the GPU with the sampler on the device
# (default) and on the host (DIA_CUDA_SAMPLE=0), B=1 and B=64, full-size random Dia-1.6B (EOS
# never sampled: every run makes max_tokens steps). Needs build-cuda/bin/dia and /tmp/dia-full.
set -u
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu
MODEL=${MODEL:-/tmp/dia-full}
N=${MAX_TOKENS:-400}
T="[S1] Dia is an open weights text to dialogue model. [S2] You get full control over scripts and voices."
for B in ${BATCHES:-1 64}; do
  args=()
  for ((i = 0; i < B; i++)); do args+=(--text "$T"); done
  for mode in device host; do
    env=""; [ $mode = host ] && env="DIA_CUDA_SAMPLE=0"
    printf "B=%-3d sampler on the %-6s: " "$B" "$mode"
    env $env ./build-cuda/bin/dia generate --backend cuda --model "$MODEL" "${args[@]}" --max-tokens "$N" \
      --seed 1 --codes-out "/tmp/codes_{i}.npy" 2>&1 | tr '\r' '\n' | grep "frames in" | tail -1
  done
done
