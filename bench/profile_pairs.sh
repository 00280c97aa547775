#!/bin/bash
# bench/profile_pairs.sh - nineteenth session (wip/xpairs): block 0's phase profile (DIA_CUDA_DECODE_STEP_DEBUG=8) at
# 101..200 of the default, of DS_OPT_PAIRS (k_decode_layers<2>) and of DEBUG 32 (relaxed arrivals, timing only).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT P=536870912 D=90480397
for cfg in "default:$O=$D" "pairs:$O=$((D | P))" "relaxed:DIA_CUDA_DECODE_STEP_DEBUG=40"; do
  lab=${cfg%%:*} var=${cfg#*:}
  dbg=8; [ $lab = relaxed ] && dbg=40
  echo "=== $lab"
  env $var DIA_CUDA_DECODE_STEP_DEBUG=$dbg timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
    --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | grep "decode-step profile, block" | tail -1 | cut -c1-900
done
nvidia-smi --query-gpu=name --format=csv,noheader
