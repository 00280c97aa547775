#!/bin/bash
# bench/profile_s17b.sh - seventeenth session: the GPU suite with this session's defaults (gate_up at 2 in
# flight, the launch's lengths in shared memory), then block 0's profile (DIA_CUDA_DECODE_STEP_DEBUG=8)
# at 101..200 and 1401..1500 with the attention's start split into the call, its unit known and its K/V
# loads issued (~2 us from the end of the projection before to the K/V loads issued, in call 5).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests "" || echo "SUITE FAILED"
gen "default" 200 X=1; gen "default" 200 X=1
for wp in "0 200" "1300 1500"; do
  set -- $wp
  echo "=== block 0's profile, the 100 calls up to $2"
  DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
    --capacity 3072 --steps 200 --warmup $1 --verbose 1 2>&1 | python3 bench/step_profile_diff.py $2
done
nvidia-smi --query-gpu=name --format=csv,noheader
