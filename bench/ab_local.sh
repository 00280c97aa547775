#!/bin/bash
# bench/ab_local.sh - eighteenth session, one device call (carry=["ab_old"], ab_old/ from `bench_ab.sh prepare REV`):
# the kernel without local memory on its paths (the grid barrier's target in shared memory, the norm factor read
# by a select instead of an index, the producer's cursor in shared memory) against REV's kernel built beside it.
# The decode-step test, then dia_generate B = 1 of both binaries interleaved; the SASS's local accesses -> $OUT.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
build_beside /tmp/old ab_old old
OLDB=/tmp/old/build-cuda/bench/bench_cuda
AB=("old (REV) ;BIN=$OLDB" "new       ;")
ab_loop 2 "20 1400" "${AB[@]}"; ab_whole "${AB[@]}"
CUOBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
$CUOBJ -sass build-cuda/obj/kernels/cuda/cuda_decode_step.o > /tmp/ds.sass 2>&1; gzip -c /tmp/ds.sass > ${OUT:-/tmp}/ds_new.sass.gz
echo "LDL/STL: $(grep -c 'LDL\|STL' /tmp/ds.sass)"
nvidia-smi --query-gpu=name --format=csv,noheader
