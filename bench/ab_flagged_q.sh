#!/bin/bash
# bench/ab_flagged_q.sh - branch wip/flagged-q (fifteenth session; compiled, not yet run on a GPU), one
# device call: the decode-step GPU test (its third run uses OPT 4096), then dia_generate B = 1, same
# binary, interleaved: the default (3853) against 3853 | 4096 (q and cross q written as (value, epoch)
# pairs, so that an attention unit's q load is its wait), at frames 20..220 and over a whole
# generation; the barrier profile with it.
set -u
. bench/ab_gen.sh # the build, the model, gen()
DIA_TEST_CUDA=1 DIA_TEST_FILTER=test_decode_step_kernel CMOCKA_MESSAGE_OUTPUT=stdout timeout 120 ./build-cuda/tests/test_cuda 2>&1 \
  | grep "PASSED\|FAILED\|producer warp group\|rror" | head -8 > /tmp/test.txt; cat /tmp/test.txt
O=DIA_CUDA_DECODE_STEP_OPT
for rep in 1 2 3; do gen "default 3853" 200 X=1; gen "3853|4096   " 200 $O=7949; done
gen "default 3853" 3000 X=1; gen "3853|4096   " 3000 $O=7949
echo "=== barrier profile, OPT 7949, positions 101..200"
DIA_CUDA_DECODE_STEP_OPT=7949 DIA_CUDA_DECODE_STEP_DEBUG=24 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps 100 --warmup 100 --verbose 1 2>&1 \
  | grep -A14 "decode-step barriers" | tail -15
cat /tmp/test.txt
nvidia-smi --query-gpu=name --format=csv,noheader
