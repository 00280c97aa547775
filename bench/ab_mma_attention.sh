#!/bin/bash
# bench/ab_mma_attention.sh - branch wip/mma-attention (fifteenth session; built, NOT yet run on a GPU),
# one device call: the decode-step GPU test (its fourth run: OPT 32768 in both kernels), then
# dia_generate B = 1, same binary, interleaved: the default (3853) against 3853 | 32768 (the attention's
# scores and values on tensor cores), at frames 20..220 and over a whole generation, and the barrier
# profile at positions 1401..1500 with each.
set -u
. bench/ab_gen.sh # the build, the model, gen()
DIA_TEST_CUDA=1 DIA_TEST_FILTER=test_decode_step_kernel CMOCKA_MESSAGE_OUTPUT=stdout timeout 150 ./build-cuda/tests/test_cuda 2>&1 \
  | grep "PASSED\|FAILED\|decode-step kernel\|producer warp group\|rror" | head -12 > /tmp/test.txt; cat /tmp/test.txt
grep -q "PASSED  \] 1 test" /tmp/test.txt || { echo "decode-step test did not pass: no timings"; exit 1; }
O=DIA_CUDA_DECODE_STEP_OPT
for rep in 1 2; do gen "default 3853" 200 X=1; gen "3853|32768  " 200 $O=36621; done
for rep in 1 2; do gen "default 3853" 3000 X=1; gen "3853|32768  " 3000 $O=36621; done
for o in 3853 36621; do
  echo "=== barrier profile, OPT $o, positions 1401..1500"
  DIA_CUDA_DECODE_STEP_OPT=$o DIA_CUDA_DECODE_STEP_DEBUG=24 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps 100 --warmup 1400 --verbose 1 2>&1 \
    | grep -A14 "decode-step barriers" | grep "attention\|qkv>self\|self>o\|cq>cross\|cross>co\|RESULT"
done
nvidia-smi --query-gpu=name --format=csv,noheader
