#!/bin/bash
# bench/ab_cols3.sh - twentieth session, third call (wip/down-cols after the mend of the columns instance: gate_up and
# cross q had taken the default path's projection instance, so ds_h_sh was never written; carry ab_old =
# bench_ab.sh prepare main): the decode-step test, then dia_generate B = 1 interleaved against main's kernel built
# beside it, and block 0's profile of the columns instance.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
build_beside /tmp/old ab_old main 16
OLD=/tmp/old/build-cuda/bench/bench_cuda C=DIA_CUDA_DOWN_COLUMNS
ab_loop 2 20 "main (beside);BIN=$OLD" "cols         ;" "cols=0       ;$C=0"
ab_loop 1 1400 "main (beside);BIN=$OLD" "cols         ;"
echo "=== profile cols"
DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
  --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | grep "decode-step profile, block" | tail -1 | cut -c1-900
nvidia-smi --query-gpu=name --format=csv,noheader
