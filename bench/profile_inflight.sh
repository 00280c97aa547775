#!/bin/bash
# bench/profile_inflight.sh - sixteenth session: the barrier profile (DIA_CUDA_DECODE_STEP_DEBUG=24) at
# positions 101..200 for several ring shapes (stages, tiles in flight). Question: does a barrier's
# release latency grow with the weight tiles in flight at the time (the barriers after co, gate_up and
# down, where the ring is loading, released ~0.7 us slower than those after the attention phases)?
set -u
. bench/ab_gen.sh # the build, the model
for sf in "5 1" "6 2" "6 3" "3 1"; do
  set -- $sf
  echo "=== stages $1, in flight $2, positions 101..200"
  DIA_CUDA_DECODE_STEP_STAGES=$1 DIA_CUDA_DECODE_STEP_INFLIGHT=$2 DIA_CUDA_DECODE_STEP_DEBUG=24 timeout 120 $B --model "$M" \
    --backend cuda --dtype bf16 --batch 1 --steps 100 --warmup 100 --verbose 1 2>&1 | grep ">\|RESULT" | cut -c1-150 | tail -9
done
