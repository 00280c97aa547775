#!/bin/bash
# bench/ab_norm_late.sh - eighteenth session, one device call (carry=["ab_old"], ab_old/ from `bench_ab.sh prepare main`):
# the normed phases' RMSNorm factor worked out after their first tile's block barrier instead of after a barrier of
# their own (wip/norm-late), against main's kernel built beside it.
# The decode-step test, then dia_generate B = 1 of both binaries interleaved (3 pairs).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
CBLAS_DIR=$(dirname "$(find /usr/include -name cblas.h 2>/dev/null | head -1)")
rm -rf /tmp/old && mkdir -p /tmp/old && tar --exclude=./ab_old --exclude=./build-cuda -cf - . | tar -xf - -C /tmp/old && cp -r ab_old/. /tmp/old/
(cd /tmp/old && make CUDA=1 BUILD=build-cuda DEPS_PREFIX=/tmp/deps "CFLAGS=-I$CBLAS_DIR" -j16 build-cuda/bench/bench_cuda \
  > /tmp/old_build.log 2>&1) && echo "old build ok" || { echo "old build failed"; tail -20 /tmp/old_build.log; }
OLDB=/tmp/old/build-cuda/bench/bench_cuda
for W in 20 1400; do export W; for rep in 1 2 3; do
  B=$OLDB gen "old (REV) " 200 X=1; gen "new       " 200 X=1
done; done
unset W
B=$OLDB gen "old (REV) " 3000 X=1; gen "new       " 3000 X=1
nvidia-smi --query-gpu=name --format=csv,noheader
