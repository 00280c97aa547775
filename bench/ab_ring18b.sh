#!/bin/bash
# bench/ab_ring18b.sh - eighteenth session, one device call on main (environment only, same binary): 6 ring
# stages, gate_up's first 8 tiles at 1 in flight (DIA_CUDA_DECODE_STEP_INFLIGHT2 = 16 | 2 << 8 | 8 << 16), and
# both, against the default (5 stages, 528); dia_generate B = 1 interleaved, and whole generations.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
I2=DIA_CUDA_DECODE_STEP_INFLIGHT2 ST=DIA_CUDA_DECODE_STEP_STAGES
AB=("default (5, 528)     ;" "6 stages             ;$ST=6" "6 stages + gu skip 8 ;$ST=6 $I2=$((16 | 2 << 8 | 8 << 16))"
  "gu skip 8            ;$I2=$((16 | 2 << 8 | 8 << 16))")
ab_loop 2 "20 1400" "${AB[@]}"; ab_whole "${AB[@]}"
nvidia-smi --query-gpu=name --format=csv,noheader
