#!/bin/bash
# bench/profile_s17.sh - seventeenth session: the GPU suite with gate_up's tiles at 2 in flight as the
# default (DS_WS_INFLIGHT2), the new default against INFLIGHT2=0 (dia_generate B = 1, same binary), and
# block 0's phase profile (DIA_CUDA_DECODE_STEP_DEBUG=8, eager steps; the marks slow a step) at positions
# 101..200 and 1401..1500, with the attention's insides (q in shared memory; scores + values + partials).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests "" || echo "SUITE FAILED"
for rep in 1 2; do gen "default (528)" 200 X=1; gen "INFLIGHT2=0  " 200 DIA_CUDA_DECODE_STEP_INFLIGHT2=0; done
for wp in "0 200" "1300 1500"; do
  set -- $wp
  echo "=== block 0's profile, the 100 calls up to $2"
  DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
    --capacity 3072 --steps $((200)) --warmup $1 --verbose 1 2>&1 | python3 bench/step_profile_diff.py $2
done
nvidia-smi --query-gpu=name --format=csv,noheader
