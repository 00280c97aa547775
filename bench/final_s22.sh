#!/bin/bash
# bench/final_s22.sh - twenty-second session's closing comparison on main, one command: libdia dia_generate B = 1
# (frames 20..220 twice, 1400..1600, a whole generation 20..3020) and B = 64 (frames 20..220); the PyTorch
# references in the same command: transformers (static cache + torch.compile, B = 1 and 64, 200 steps, greedy
# + CFG) and the original nari-labs/dia code (torch.compile max-autotune, its default sampling, B = 1; carry
# bench/nari-dia from `sh bench/fetch_nari.sh`); then libdia B = 1 again.
set -u
. bench/ab_gen.sh # the build, the model, gen()
ab_loop 2 20 "B=1 libdia;"; ab_loop 1 1400 "B=1 libdia;"; ab_whole "B=1 libdia;"
timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 64 --steps 200 --warmup 20 --generate 1 --capacity 3072 2>&1 \
  | grep "timed_frames" | cut -c1-260
PHASES=ref REF_MODES=static REF_BATCHES="1 64" REF_STEPS=200 REF_TIMEOUT=200 bash bench/bench_cuda.sh 2>&1 | grep "REF\|rror" | head -8
for b in ${NARI_BATCHES:-1}; do
  timeout ${NARI_TIMEOUT:-300} python3 bench/reference_nari.py bench/nari-dia "$b" 200 > /tmp/nari.log 2>&1
  grep -E "^REF" /tmp/nari.log || tail -15 /tmp/nari.log
done
gen "B=1 libdia (after the references)" 200 X=1
nvidia-smi --query-gpu=name --format=csv,noheader
