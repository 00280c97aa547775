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
ab_loop 2 "20 1400" "default            ;" "+ phases in shared ;$O=$((D | 4194304))" \
  "+ norm L1 prefetch ;$O=$((D | 8388608))" "+ both             ;$O=$((D | 4194304 | 8388608))"
ab_whole "default            ;" "+ phases in shared ;$O=$((D | 4194304))" "+ both             ;$O=$((D | 4194304 | 8388608))"
nvidia-smi --query-gpu=name --format=csv,noheader
