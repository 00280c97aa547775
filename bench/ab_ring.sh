#!/bin/bash
# bench/ab_ring.sh - sixteenth session, one device call: the producer warp group's ring swept again with
# the new defaults (stages:in flight, DIA_CUDA_DECODE_STEP_STAGES / _INFLIGHT; default 5:1), dia_generate
# B = 1 at frames 20..220 and 1400..1600 and over a whole generation, same binary, interleaved; then the
# design's ceilings at positions 21..220 (bench_cuda steps, DIA_CUDA_DECODE_STEP_DEBUG: 1 no attention,
# 2 no grid-barrier waits, 3 neither: wrong results, timing only) against the default in the same mode.
set -u
. bench/ab_gen.sh # the build, the model, gen()
S=DIA_CUDA_DECODE_STEP_STAGES F=DIA_CUDA_DECODE_STEP_INFLIGHT
AB=("5:1 default;" "4:1        ;$S=4 $F=1" "6:1        ;$S=6 $F=1")
ab_loop 2 "20 1400" "${AB[@]}" "6:2        ;$S=6 $F=2" "5:2        ;$S=5 $F=2" "3:1        ;$S=3 $F=1"
ab_whole "${AB[@]}"
for d in 0 1 2 3 0; do
  echo "DEBUG=$d: $(DIA_CUDA_DECODE_STEP_DEBUG=$d timeout 60 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps 200 --warmup 20 2>&1 | grep RESULT | sed 's/.*\(steps_per_s=[0-9.]*\).*/\1/')"
done
nvidia-smi --query-gpu=name --format=csv,noheader
