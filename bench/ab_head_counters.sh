#!/bin/bash
# bench/ab_head_counters.sh - branch wip/head-counters (fifteenth session), one device call: the decode-step
# GPU test (its long run uses OPT | 256 | 512), then dia_generate B = 1 with the head counters instead
# of the grid barriers before the self-attention (OPT bit 256) and the cross-attention (512), same
# binary, interleaved, at frames 20..220 and over a whole generation; the barrier profile with both.
set -u
PHASES="env build model" bash bench/bench_cuda.sh 2>&1 | grep "build ok\|FAILED\|rror\|MODEL" | head -5
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu
DIA_TEST_CUDA=1 DIA_TEST_FILTER=test_decode_step_kernel CMOCKA_MESSAGE_OUTPUT=stdout timeout 120 ./build-cuda/tests/test_cuda 2>&1 \
  | grep "PASSED\|FAILED\|producer warp group\|rror" | head -8 > /tmp/test.txt; cat /tmp/test.txt
B=./build-cuda/bench/bench_cuda M=${MODEL:-/tmp/dia-full}
run() { local lab=$1 st=$2; shift 2
  timeout 90 env "$@" $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps "$st" --warmup 20 --generate 1 --capacity 3072 2>&1 \
    | grep "timed_frames=20" | sed "s/.*timed_frames=\([0-9.]*\).*steps_per_s=\([0-9.]*\).*/$lab frames=\1 steps_per_s=\2/"
}
O=DIA_CUDA_DECODE_STEP_OPT
for rep in 1 2; do
  run "OPT 13      " 200 $O=13; run "OPT 13|256  " 200 $O=269; run "OPT 13|512  " 200 $O=525; run "OPT 13|768  " 200 $O=781
done
run "OPT 13      " 3000 $O=13; run "OPT 13|768  " 3000 $O=781; run "OPT 13|512  " 3000 $O=525
echo "=== barrier profile, OPT 781, positions 101..200"
DIA_CUDA_DECODE_STEP_OPT=781 DIA_CUDA_DECODE_STEP_DEBUG=24 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps 100 --warmup 100 --verbose 1 2>&1 \
  | grep -A14 "decode-step barriers" | tail -15
cat /tmp/test.txt
nvidia-smi --query-gpu=name --format=csv,noheader
