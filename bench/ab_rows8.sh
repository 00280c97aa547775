#!/bin/bash
# bench/ab_rows8.sh - twentieth session (wip/rows8): the projections of K <= 2048 read all 8 rows of a tile's stage
# with no branch between the loads (rows past the tile's are never summed). The decode-step test, then
# dia_generate B = 1 interleaved against main's kernel built beside it (carry ab_old = bench_ab.sh prepare main).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
build_beside /tmp/old ab_old main 16
OLD=/tmp/old/build-cuda/bench/bench_cuda
ab_loop 2 20 "main (beside);BIN=$OLD" "rows8        ;"
ab_loop 1 1400 "main (beside);BIN=$OLD" "rows8        ;"
ab_whole "main (beside);BIN=$OLD" "rows8        ;"
nvidia-smi --query-gpu=name --format=csv,noheader
