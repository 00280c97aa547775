#!/bin/bash
# bench/ab_publish_merge.sh - branch wip/publish-merge (fifteenth session), one device call: the GPU suite
# with DIA_CUDA_DECODE_STEP_OPT=3855 for every test (the 8-warp kernel's default 15 and the experiments
# 256 | 512 | 1024 | 2048; test_decode_step_kernel derives the producer warp group's bits from it), then
# dia_generate B = 1, same binary, interleaved: the default (781) against | 1024 (the head counters
# published with one fence and relaxed adds), | 2048 (the warps' attention partials merged with all
# loads at once) and both.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests "" DIA_CUDA_DECODE_STEP_OPT=3855
O=DIA_CUDA_DECODE_STEP_OPT
for rep in 1 2; do
  gen "default 781 " 200 X=1; gen "781|1024    " 200 $O=1805; gen "781|2048    " 200 $O=2829; gen "781|3072    " 200 $O=3853
done
gen "default 781 " 3000 X=1; gen "781|3072    " 3000 $O=3853
nvidia-smi --query-gpu=name --format=csv,noheader
