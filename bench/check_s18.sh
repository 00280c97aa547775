#!/bin/bash
# bench/check_s18.sh - eighteenth session, a second closing call: the 8-warp kernel (DIA_CUDA_DECODE_STEP_WS=0) with
# only the arguments in shared memory (2097167) against its new default (90177551, with the phases' ranges, the
# rsqrt and the attention's unit count), and again the PyTorch reference beside main at B = 1 (its rate moves
# between machines: host-bound).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT
for rep in 1 2; do
  gen "8 warps, OPT 2097167 " 200 DIA_CUDA_DECODE_STEP_WS=0 $O=2097167
  gen "8 warps, default     " 200 DIA_CUDA_DECODE_STEP_WS=0
done
gen "B=1 main             " 200 X=1
PHASES=ref REF_MODES=static REF_BATCHES=1 REF_STEPS=200 REF_TIMEOUT=240 bash bench/bench_cuda.sh 2>&1 | grep "REF\|rror" | head -5
gen "B=1 main             " 200 X=1
nvidia-smi --query-gpu=name --format=csv,noheader
