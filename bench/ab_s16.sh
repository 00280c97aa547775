#!/bin/bash
# bench/ab_s16.sh - sixteenth session, one device call: the GPU suite with the producer warp group's
# default (DS_OPT_WS_DEFAULT = 40717: 3853 | 4096 q and cross q as (value, epoch) pairs | 32768 the
# attention of units of >= 2 query heads on tensor cores), then dia_generate B = 1, same binary,
# interleaved: the default against 7949 (without 32768) and 3853 (the fifteenth session's default) at
# frames 20..220, 1400..1600 and 2600..2800 and over a whole generation; then bench_cuda's decode steps
# at B = 1, 8, 32, 64. (A first version of this script also timed | 32768 | 65536, units of >= 4 heads
# on tensor cores: the same speed as >= 2.)
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests "" || { echo "suite failed: no timings"; exit 1; }
O=DIA_CUDA_DECODE_STEP_OPT
AB=("default 40717;" "7949         ;$O=7949" "old 3853     ;$O=3853")
ab_loop 2 "20 1400 2600" "${AB[@]}"; ab_whole "${AB[@]}"
PHASES="lib" BATCHES="1 8 32 64" CACHE_MODES=bf16 bash bench/bench_cuda.sh 2>&1 | grep "RESULT" | cut -c1-220
nvidia-smi --query-gpu=name --format=csv,noheader
