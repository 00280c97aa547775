#!/bin/bash
# bench/ab_mend17.sh - seventeenth session, review mend: the q pairs' load, epoch check and address as helpers
# (ds_load_qf4, ds_qf4_ok, ds_qf4_val, ds_unit_qf) instead of written out twice (the cubin changed: +128
# bytes). The decode-step test, then dia_generate B = 1 against the kernel before the mend (ab_old/, carry it).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
build_beside /tmp/old ab_old old
for rep in 1 2; do B=/tmp/old/build-cuda/bench/bench_cuda gen "before the mend" 200 X=1; gen "mended         " 200 X=1; done
W=1400 B=/tmp/old/build-cuda/bench/bench_cuda gen "before the mend" 200 X=1; W=1400 gen "mended         " 200 X=1
nvidia-smi --query-gpu=name --format=csv,noheader
