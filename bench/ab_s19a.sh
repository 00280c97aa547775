#!/bin/bash
# bench/ab_s19a.sh - nineteenth session, one device call (wip/seg1): OPT 134217728 (DS_OPT_SEG1: rows of 129..256
# keys as one attention segment of 2 chunks a warp, no merge through global memory) and OPT 268435456
# (DS_OPT_WARP_ARRIVE: warp 0 arrives at the barrier after a projection, no block barrier before), and
# DEBUG 32 (timing only: the grid barrier's arrival without its release). The decode-step test with both
# bits forced, then dia_generate B = 1 interleaved; block 0's profile at 101..200 with and without SEG1.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT S1=134217728 WA=268435456
gpu_tests test_decode_step_kernel $O=$((90177551 | S1 | WA)) || echo "TEST FAILED"
D=90480397
ab_loop 2 20 "default      ;" "+ seg1       ;$O=$((D | S1))" "+ warp arrive;$O=$((D | WA))" "+ both       ;$O=$((D | S1 | WA))" \
  "relaxed (dbg);DIA_CUDA_DECODE_STEP_DEBUG=32"
ab_loop 2 1400 "default      ;" "+ warp arrive;$O=$((D | WA))" "relaxed (dbg);DIA_CUDA_DECODE_STEP_DEBUG=32"
ab_whole "default      ;" "+ both       ;$O=$((D | S1 | WA))"
for o in $D $((D | S1)); do
  echo "=== block 0's profile, the 100 calls up to 200, OPT $o"
  DIA_CUDA_DECODE_STEP_DEBUG=8 $O=$o timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
    --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | python3 bench/step_profile_diff.py 200
done
nvidia-smi --query-gpu=name --format=csv,noheader
