#!/bin/bash
# bench/check_s19.sh - nineteenth session: main (with the DEBUG 32 switch, the session's one kernel change) against the
# eighteenth session's kernel (08e6c9d) built beside it (carry ab_old = bench_ab.sh prepare 08e6c9d), interleaved:
# frames 20..220 three times, a whole generation once.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
build_beside /tmp/old ab_old s18 16
OLD=/tmp/old/build-cuda/bench/bench_cuda
AB=("s18 (08e6c9d);BIN=$OLD" "main         ;")
ab_loop 3 20 "${AB[@]}"; ab_whole "${AB[@]}"
nvidia-smi --query-gpu=name --format=csv,noheader
