#!/bin/bash
# bench/ab_infl2.sh - seventeenth session, one device call: more weight tiles in flight only for some
# phases (DIA_CUDA_DECODE_STEP_INFLIGHT2 = mask | F2 << 8 | skip << 16; mask bits by ds_order: 1 q|k|v,
# 2 o, 4 cross q, 8 cross o, 16 gate_up, 32 down). The tenth session's try (gate_up and down at 2)
# made gate_up faster but the barrier after it slower, since down's tiles were then in flight during
# that barrier; here gate_up alone (down's first tiles, those in flight at the barrier, stay at 1).
# dia_generate B = 1, same binary, interleaved; then the barrier profile of the default and of 528.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
I=DIA_CUDA_DECODE_STEP_INFLIGHT2
gpu_tests test_decode_step_kernel $I=560
AB=("default          ;" "gu F2 (528)      ;$I=528" "gu F3 (784)      ;$I=784")
ab_loop 2 "20 1400" "${AB[@]}" "gu+down F2 (560) ;$I=560" "gu+down F2 s3    ;$I=197168" "down F2 s3       ;$I=197152"
ab_whole "${AB[@]}"
for i2 in 0 528; do
  echo "=== INFLIGHT2=$i2, positions 101..200"
  env $I=$i2 DIA_CUDA_DECODE_STEP_DEBUG=24 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 \
    --steps 100 --warmup 100 --verbose 1 2>&1 | grep ">\|RESULT" | cut -c1-150 | tail -9
done
gen "default          " 200 X=1; gen "gu F2 (528)      " 200 $I=528
nvidia-smi --query-gpu=name --format=csv,noheader
