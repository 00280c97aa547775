#!/bin/bash
# bench/ab_s16.sh - branch wip/s16 (sixteenth session), one device call: the GPU suite with the new
# producer-warp-group default (7949 = 3853 | 4096: q and cross q as (value, epoch) pairs), then
# dia_generate B = 1, same binary, interleaved: 7949 against the old default 3853 and against | 32768
# (the attention on tensor cores for units of >= 2 query heads, i.e. past ~512 keys) and | 32768 | 65536
# (units of >= 4 heads, past ~1024 keys), at frames 20..220, 1400..1600, 2600..2800 and over a whole
# generation.
set -u
. bench/ab_gen.sh # the build, the model, gen()
DIA_TEST_CUDA=1 CMOCKA_MESSAGE_OUTPUT=stdout timeout 240 ./build-cuda/tests/test_cuda > /tmp/suite.txt 2>&1
grep "decode-step kernel\|producer warp group\|PASSED\|FAILED\|SKIPPED  \]\|rror" /tmp/suite.txt | head -16
grep -q "FAILED" /tmp/suite.txt && { echo "suite failed: no timings"; exit 1; }
O=DIA_CUDA_DECODE_STEP_OPT
for W in 20 1400 2600; do export W; for rep in 1 2; do
  gen "default 7949" 200 X=1; gen "old 3853    " 200 $O=3853; gen "|32768      " 200 $O=40717; gen "|98304      " 200 $O=106253
done; done
unset W
gen "default 7949" 3000 X=1; gen "old 3853    " 3000 $O=3853; gen "|32768      " 3000 $O=40717; gen "|98304      " 3000 $O=106253
nvidia-smi --query-gpu=name --format=csv,noheader
