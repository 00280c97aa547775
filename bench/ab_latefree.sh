#!/bin/bash
# bench/ab_latefree.sh - nineteenth session, one device call (wip/late-free, carry ab_old = main's kernel):
# DIA_CUDA_DECODE_STEP_LATEFREE (mask 2 o, 8 cross o, 16 gate_up, 32 down; | 64 the last two tiles): the stage of a
# phase's last tile (or two) freed only after the block's arrival at the grid barrier after the phase, so that no
# weight tile is in flight while the arrival's release waits. The decode-step test with it forced, then
# dia_generate B = 1 interleaved, main's kernel built beside it.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests test_decode_step_kernel DIA_CUDA_DECODE_STEP_LATEFREE=122 || echo "TEST FAILED"
build_beside /tmp/old ab_old main 16
OLD=/tmp/old/build-cuda/bench/bench_cuda
LF=DIA_CUDA_DECODE_STEP_LATEFREE
ab_loop 2 20 "main (beside);BIN=$OLD" "this, off    ;" "lf 16 (gu)   ;$LF=16" "lf 8 (co)    ;$LF=8" "lf 24        ;$LF=24" \
  "lf 58 (all4) ;$LF=58" "lf 88 (24|64);$LF=88" "lf 122 (all2);$LF=122"
ab_loop 1 1400 "main (beside);BIN=$OLD" "this, off    ;" "lf 24        ;$LF=24" "lf 58 (all4) ;$LF=58"
ab_whole "main (beside);BIN=$OLD" "lf 24        ;$LF=24" "lf 58 (all4) ;$LF=58"
nvidia-smi --query-gpu=name --format=csv,noheader
