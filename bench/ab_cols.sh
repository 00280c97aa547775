#!/bin/bash
# bench/ab_cols.sh - twentieth session, one device call (wip/down-cols, carry ab_old = bench_ab.sh prepare main):
# the MLP's down projection by columns (DIA_CUDA_DOWN_COLUMNS, default 1: down stored [I, D], each block streams the
# columns of its own gate_up units and adds its partial sums to a fixed-point x, no grid barrier between gate_up and
# down; 0: the layout and kernel path before). The GPU suite first, then dia_generate B = 1 interleaved against
# main's kernel built beside it, with ring variants (DIA_CUDA_DECODE_STEP_INFLIGHT2 = mask | F2 << 8 | skip << 16:
# 544 down's tiles at 2 in flight, 560 gate_up's and down's; 6 stages), and B = 64 for both layouts.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests "" || echo "SUITE FAILED"
build_beside /tmp/old ab_old main 16
OLD=/tmp/old/build-cuda/bench/bench_cuda
C=DIA_CUDA_DOWN_COLUMNS I2=DIA_CUDA_DECODE_STEP_INFLIGHT2
ab_loop 2 20 "main (beside);BIN=$OLD" "cols         ;" "cols=0       ;$C=0" "cols dn@2    ;$I2=544" "cols gu,dn@2 ;$I2=560" \
  "cols 6 stages;DIA_CUDA_DECODE_STEP_STAGES=6"
ab_loop 1 1400 "main (beside);BIN=$OLD" "cols         ;" "cols=0       ;$C=0"
ab_whole "main (beside);BIN=$OLD" "cols         ;"
for v in "$C=1" "$C=0"; do echo "B=64 $v"; env "$v" timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 64 --steps 200 \
  --warmup 20 --generate 1 --capacity 3072 2>&1 | grep "timed_frames" | cut -c1-200; done
nvidia-smi --query-gpu=name --format=csv,noheader
