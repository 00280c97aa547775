#!/bin/bash
# bench/ab_norm_late.sh - eighteenth session, one device call (carry=["ab_old"], ab_old/ from `bench_ab.sh prepare main`):
# the normed phases' RMSNorm factor worked out after their first tile's block barrier instead of after a barrier of
# their own (wip/norm-late), against main's kernel built beside it.
# The decode-step test, then dia_generate B = 1 of both binaries interleaved (3 pairs).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
build_beside /tmp/old ab_old old
OLDB=/tmp/old/build-cuda/bench/bench_cuda
AB=("old (REV) ;BIN=$OLDB" "new       ;")
ab_loop 3 "20 1400" "${AB[@]}"; ab_whole "${AB[@]}"
nvidia-smi --query-gpu=name --format=csv,noheader
