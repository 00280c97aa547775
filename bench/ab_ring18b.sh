#!/bin/bash
# bench/ab_ring18b.sh - eighteenth session, one device call on main (environment only, same binary): 6 ring
# stages, gate_up's first 8 tiles at 1 in flight (DIA_CUDA_DECODE_STEP_INFLIGHT2 = 16 | 2 << 8 | 8 << 16), and
# both, against the default (5 stages, 528); dia_generate B = 1 interleaved, and whole generations.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
I2=DIA_CUDA_DECODE_STEP_INFLIGHT2 ST=DIA_CUDA_DECODE_STEP_STAGES
for W in 20 1400; do export W; for rep in 1 2; do
  gen "default (5, 528)     " 200 X=1
  gen "6 stages             " 200 $ST=6
  gen "6 stages + gu skip 8 " 200 $ST=6 $I2=$((16 | 2 << 8 | 8 << 16))
  gen "gu skip 8            " 200 $I2=$((16 | 2 << 8 | 8 << 16))
done; done
unset W
gen "default (5, 528)     " 3000 X=1; gen "6 stages             " 3000 $ST=6; gen "6 stages + gu skip 8 " 3000 $ST=6 $I2=$((16 | 2 << 8 | 8 << 16))
gen "gu skip 8            " 3000 $I2=$((16 | 2 << 8 | 8 << 16))
nvidia-smi --query-gpu=name --format=csv,noheader
