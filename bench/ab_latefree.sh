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
for rep in 1 2; do
  B=$OLD gen "main (beside)" 200 X=1; gen "this, off    " 200 X=1
  gen "lf 16 (gu)   " 200 $LF=16; gen "lf 8 (co)    " 200 $LF=8; gen "lf 24        " 200 $LF=24
  gen "lf 58 (all4) " 200 $LF=58; gen "lf 88 (24|64)" 200 $LF=88; gen "lf 122 (all2)" 200 $LF=122
done
export W=1400
B=$OLD gen "main (beside)" 200 X=1; gen "this, off    " 200 X=1; gen "lf 24        " 200 $LF=24; gen "lf 58 (all4) " 200 $LF=58
unset W
B=$OLD gen "main (beside)" 3000 X=1; gen "lf 24        " 3000 $LF=24; gen "lf 58 (all4) " 3000 $LF=58
nvidia-smi --query-gpu=name --format=csv,noheader
