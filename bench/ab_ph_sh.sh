#!/bin/bash
# bench/ab_ph_sh.sh - eighteenth session, one device call (wip/ph-sh): OPT 4194304 (each phase's shape and this
# block's units of it worked out once at the start: ds_range's 64-bit divisions came between a phase's normed
# input and its first tile) and OPT 8388608 (the next normed phase's RMSNorm weights prefetched into L1 before
# the grid barrier). The decode-step test with both forced, then dia_generate B = 1 interleaved.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT
gpu_tests test_decode_step_kernel $O=$((15 | 2097152 | 4194304 | 8388608)) || echo "TEST FAILED"
D=2400013
for W in 20 1400; do export W; for rep in 1 2; do
  gen "default            " 200 X=1; gen "+ phases in shared " 200 $O=$((D | 4194304))
  gen "+ norm L1 prefetch " 200 $O=$((D | 8388608)); gen "+ both             " 200 $O=$((D | 4194304 | 8388608))
done; done
unset W
gen "default            " 3000 X=1; gen "+ phases in shared " 3000 $O=$((D | 4194304)); gen "+ both             " 3000 $O=$((D | 4194304 | 8388608))
nvidia-smi --query-gpu=name --format=csv,noheader
