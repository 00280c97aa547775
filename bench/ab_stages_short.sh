#!/bin/bash
# bench/ab_stages_short.sh - twenty-first session (wip/stages-short): the producer's ring with 6 stages instead of 5
# while the context is short (DIA_CUDA_DECODE_STEP_SHORT_LEN=T: kvlen < T; 0 never, 99999 always). The decode-step
# test with the switch inside its generations, then dia_generate B = 1 against main's kernel built beside it (carry
# ab_old = `bench_ab.sh prepare main`): 200-frame windows along a generation, and whole generations for several T.
# Call 2 (H100): the new build with the switch off (T=0: 5 stages, the same behaviour as main, but the launch's
# shared memory sized for 6, so L1 gets 28 KB instead of 60) was 1.3-2.0% slower than main beside it at every window
# (810.0 vs 820.6 at 20..220, 659.6 vs 672.8 at 2700..2900; whole 730.2 / 730.1 vs 741.7 / 741.2); 6 stages always
# (T=99999) beat T=0 everywhere (820.9, 777.5, 761.8, 677.9, 665.0; whole 737.8 / 737.4) but not main. Not kept.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel DIA_CUDA_DECODE_STEP_SHORT_LEN=40 || echo "TEST FAILED"
build_beside /tmp/old ab_old main 16
OLD=/tmp/old/build-cuda/bench/bench_cuda
ab_loop 1 "20 700 1400 2100 2700" "main (beside);BIN=$OLD" "T=0          ;" "T=99999      ;DIA_CUDA_DECODE_STEP_SHORT_LEN=99999"
for r in 1 2; do
  ab_whole "main (beside);BIN=$OLD" "T=0          ;" "T=800        ;DIA_CUDA_DECODE_STEP_SHORT_LEN=800" \
    "T=1500       ;DIA_CUDA_DECODE_STEP_SHORT_LEN=1500" "T=2200       ;DIA_CUDA_DECODE_STEP_SHORT_LEN=2200" \
    "T=99999      ;DIA_CUDA_DECODE_STEP_SHORT_LEN=99999"
done
nvidia-smi --query-gpu=name --format=csv,noheader
