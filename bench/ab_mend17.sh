#!/bin/bash
# bench/ab_mend17.sh - seventeenth session, review mend: the q pairs' load, epoch check and address as helpers
# (ds_load_qf4, ds_qf4_ok, ds_qf4_val, ds_unit_qf) instead of written out twice (the cubin changed: +128
# bytes). The decode-step test, then dia_generate B = 1 against the kernel before the mend (ab_old/, carry it).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
CBLAS_DIR=$(dirname "$(find /usr/include -name cblas.h 2>/dev/null | head -1)")
rm -rf /tmp/old && mkdir -p /tmp/old && tar --exclude=./ab_old -cf - . | tar -xf - -C /tmp/old && cp -r ab_old/. /tmp/old/
(cd /tmp/old && make CUDA=1 BUILD=build-cuda DEPS_PREFIX=/tmp/deps "CFLAGS=-I$CBLAS_DIR" -j16 build-cuda/bench/bench_cuda \
  > /tmp/old_build.log 2>&1) && echo "old build ok" || { echo "old build failed"; tail -20 /tmp/old_build.log; }
for rep in 1 2; do B=/tmp/old/build-cuda/bench/bench_cuda gen "before the mend" 200 X=1; gen "mended         " 200 X=1; done
W=1400 B=/tmp/old/build-cuda/bench/bench_cuda gen "before the mend" 200 X=1; W=1400 gen "mended         " 200 X=1
nvidia-smi --query-gpu=name --format=csv,noheader
