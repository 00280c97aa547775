#!/bin/bash
# bench/ab_cols2.sh - twentieth session, second call (wip/down-cols; carry ab_old = bench_ab.sh prepare main, and
# ab_fi/ = this kernel with ds_down_cols inlined): the MLP by columns as a kernel instance of its own
# (k_decode_layers<WS, 1>; the default path's instance compiles as main's). The decode-step test, then
# dia_generate B = 1 interleaved: main's kernel built beside, this tree with and without the columns, the inlined
# variant; block 0's profile (DEBUG=8) at 101..200 for both layouts.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
build_beside /tmp/old ab_old main 16
build_beside /tmp/fi ab_fi inlined 16
OLD=/tmp/old/build-cuda/bench/bench_cuda FI=/tmp/fi/build-cuda/bench/bench_cuda C=DIA_CUDA_DOWN_COLUMNS
ab_loop 2 20 "main (beside);BIN=$OLD" "cols         ;" "cols=0       ;$C=0" "cols inlined ;BIN=$FI"
ab_loop 1 1400 "main (beside);BIN=$OLD" "cols         ;" "cols inlined ;BIN=$FI"
for v in "$C=1" "$C=0"; do echo "=== profile $v"
  env $v DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
    --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | grep "decode-step profile, block" | tail -1 | cut -c1-900
done
nvidia-smi --query-gpu=name --format=csv,noheader
