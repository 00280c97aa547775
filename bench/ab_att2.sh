#!/bin/bash
# bench/ab_att2.sh - twenty-first session (wip/att2): past 2,048 keys (where the self-attention's units of one
# 16-key chunk a warp no longer fit the 132 blocks and 44-60 blocks took a second unit), units whose warps take two
# chunks each (DS_OPT_ATT2, in the producer warp group's default OPT 358915853; without it 90480397). The
# decode-step test (runs 5, 6: two chunks a warp everywhere), then dia_generate B = 1: main's kernel built beside
# it (carry ab_old = `bench_ab.sh prepare main`), this build, and this build without the bit.
# Call 4 (H100): the decode-step test passed (runs 5, 6 identical between the kernels, 1.2e-6 rel. RMS). Same binary,
# the bit on against off: +5.6% at 2100..2300 (694.0 vs 657.1), +5.8% at 2700..2900 (682.6 vs 644.9), +2.1% whole
# (729.6 / 729.9 vs 714.8 / 715.1), +-0 below 2,048 keys; but the build costs 3.2% against main beside it at short
# contexts (791.5 vs 817.7 at 20..220, 737.9 vs 764.4 at 1400..1600; whole 729.6 vs 741.6): the larger ds_attention
# makes the kernel save more registers around its call (ptxas: 224 bytes of stack, 64 / 56 spills, against 192, 40 /
# 32). Not kept; bench/patches/att2-two-chunks.patch.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
build_beside /tmp/old ab_old main 16
OLD=/tmp/old/build-cuda/bench/bench_cuda
S=("main (beside);BIN=$OLD" "att2         ;" "att2 off     ;DIA_CUDA_DECODE_STEP_OPT=90480397")
ab_loop 1 "20 1400 2100 2700" "${S[@]}"
ab_whole "${S[@]}"
ab_whole "${S[@]}"
nvidia-smi --query-gpu=name --format=csv,noheader
