#!/bin/bash
# bench/ab_pairs.sh - nineteenth session, one device call (wip/xpairs): OPT 536870912 (DS_OPT_PAIRS: x and att
# also written as (value, epoch) pairs, read by the phases after the barriers that follow them, so those barriers
# take relaxed arrivals). The decode-step test with it forced in both kernels (with the producer warp group's
# default bits; the producer warp group runs an instance of its own, k_decode_layers<2>), then dia_generate B = 1 interleaved against the default and DEBUG 32 (relaxed arrivals, timing only).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT P=536870912 D=90480397
gpu_tests test_decode_step_kernel $O=$((D | P)) || echo "TEST FAILED"
AB=("default      ;" "+ pairs      ;$O=$((D | P))")
ab_loop 3 20 "${AB[@]}"; gen "relaxed (dbg)" 200 DIA_CUDA_DECODE_STEP_DEBUG=32
ab_loop 2 1400 "${AB[@]}"; ab_whole "${AB[@]}"
nvidia-smi --query-gpu=name --format=csv,noheader
