#!/bin/bash
# bench/ab_unit.sh - seventeenth session, one device call (carry=["ab_old"], ab_old/ from `bench_ab.sh prepare
# REV`): each block's first attention unit worked out once at the start (ds_first_unit; the division chain of
# ds_att_unit took ~0.5 us twice before each phase's q wait) against REV's kernel, and OPT 262144 (the first
# unit's q loaded once before its K/V loads, used if it carries the epoch). The decode-step test with 262144
# forced, then dia_generate B = 1 of both binaries interleaved, then block 0's profile.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT
gpu_tests test_decode_step_kernel $O=302861 || echo "TEST FAILED"
build_beside /tmp/old ab_old old
OLDB=/tmp/old/build-cuda/bench/bench_cuda
AB=("old (REV)        ;BIN=$OLDB" "new              ;" "new + 262144     ;$O=302861")
ab_loop 2 "20 1400" "${AB[@]}"; ab_whole "${AB[@]}"
for o in 40717 302861; do
  echo "=== new, OPT $o: block 0's profile, the 100 calls up to 200"
  env $O=$o DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
    --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | python3 bench/step_profile_diff.py 200
done
nvidia-smi --query-gpu=name --format=csv,noheader
