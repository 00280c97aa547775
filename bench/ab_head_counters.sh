#!/bin/bash
# bench/ab_head_counters.sh - branch wip/head-counters (fifteenth session), one device call: the decode-step
# GPU test (its long run uses OPT | 256 | 512), then dia_generate B = 1 with the head counters instead
# of the grid barriers before the self-attention (OPT bit 256) and the cross-attention (512), same
# binary, interleaved, at frames 20..220 and over a whole generation; the barrier profile with both.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel
O=DIA_CUDA_DECODE_STEP_OPT
for rep in 1 2; do
  gen "OPT 13      " 200 $O=13; gen "OPT 13|256  " 200 $O=269; gen "OPT 13|512  " 200 $O=525; gen "OPT 13|768  " 200 $O=781
done
gen "OPT 13      " 3000 $O=13; gen "OPT 13|768  " 3000 $O=781; gen "OPT 13|512  " 3000 $O=525
echo "=== barrier profile, OPT 781, positions 101..200"
DIA_CUDA_DECODE_STEP_OPT=781 DIA_CUDA_DECODE_STEP_DEBUG=24 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps 100 --warmup 100 --verbose 1 2>&1 \
  | grep -A14 "decode-step barriers" | tail -15
cat /tmp/test.txt
nvidia-smi --query-gpu=name --format=csv,noheader
