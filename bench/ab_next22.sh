#!/bin/bash
# bench/ab_next22.sh - twenty-first session (wip/next22): down's tile loads (rows 0 and 1 of every chunk) and the
# epilogue's 8 partials with no branch between them; the device sampler's radix histogram aggregated per warp.
# The GPU suite, then dia_generate B = 1 interleaved against main's kernel built beside it (carry ab_old =
# `bench_ab.sh prepare main`), and the sampler alone (bench_cuda_ops, both builds).
# Call 1 (H100): -0.6% at 20..220 (815.0 / 814.7 vs 820.2 / 819.7), +0.1% at 1400..1600 (763.4 vs 762.4), +0.2% whole
# (740.3 vs 739.0); the sampler alone 14.21 / 14.31 us vs 13.46 / 13.55 (greedy 7.33 vs 6.58). Not kept;
# bench/patches/next22-branchless.patch.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests "" || echo "TEST FAILED"
build_beside /tmp/old ab_old main 16
(cd /tmp/old && make CUDA=1 BUILD=build-cuda DEPS_PREFIX=/tmp/deps "CFLAGS=-I$(dirname "$(find /usr/include -name cblas.h | head -1)")" \
  -j16 build-cuda/bench/bench_cuda_ops > /tmp/old.ops.log 2>&1) || echo "old bench_cuda_ops build failed"
OLD=/tmp/old/build-cuda/bench/bench_cuda
for r in 1 2; do for b in /tmp/old/build-cuda ./build-cuda; do
  echo "$b: $($b/bench/bench_cuda_ops --rows 2 --reps 500 2>&1 | grep "OP sample" | tr -s ' ' | tr '\n' ' ')"
done; done
ab_loop 2 20 "main (beside);BIN=$OLD" "next22       ;"
ab_loop 1 1400 "main (beside);BIN=$OLD" "next22       ;"
ab_whole "main (beside);BIN=$OLD" "next22       ;"
nvidia-smi --query-gpu=name --format=csv,noheader
