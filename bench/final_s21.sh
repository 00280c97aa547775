#!/bin/bash
# bench/final_s21.sh - twenty-first session's closing call on main: dia_generate B = 1 (frames 20..220 twice,
# 1400..1600, a whole generation), B = 64 (frames 20..220), and in the same command the PyTorch reference
# (transformers, static cache + torch.compile, B = 1 and 64, 200 steps), then B = 1 again after it; and
# main's binary with a 6-stage ring at frames 20..220 and 2700..2900.
set -u
. bench/ab_gen.sh # the build, the model, gen()
ab_loop 2 20 "B=1 main;"; ab_loop 1 1400 "B=1 main;"; ab_whole "B=1 main;"
# the ring at 6 stages in main's binary (its shared memory then leaves L1 28 KB instead of 60): early and late
ab_loop 1 "20 2700" "B=1 stages 5;X=1" "B=1 stages 6;DIA_CUDA_DECODE_STEP_STAGES=6"
timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 64 --steps 200 --warmup 20 --generate 1 --capacity 3072 2>&1 \
  | grep "timed_frames" | cut -c1-260
PHASES=ref REF_MODES=static REF_BATCHES="1 64" REF_STEPS=200 REF_TIMEOUT=200 bash bench/bench_cuda.sh 2>&1 | grep "REF\|rror" | head -8
gen "B=1 main (after the reference)" 200 X=1
nvidia-smi --query-gpu=name --format=csv,noheader
