#!/bin/bash
# bench/final_s16.sh - sixteenth session's closing call: the whole GPU suite on main, then in the same
# call dia_generate B = 1 (frames 20..220 twice, a whole generation) and B = 64 (frames 20..220), and
# the PyTorch reference (transformers static cache + torch.compile, B = 1, 200 steps) for the ratio.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests ""
gen "B=1 default" 200 X=1; gen "B=1 default" 200 X=1; gen "B=1 default" 3000 X=1
timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 64 --steps 200 --warmup 20 --generate 1 --capacity 3072 2>&1 \
  | grep "timed_frames" | cut -c1-260
PHASES=ref REF_MODES=static REF_BATCHES=1 REF_STEPS=200 REF_TIMEOUT=240 bash bench/bench_cuda.sh 2>&1 | grep "REF\|rror" | head -5
gen "B=1 default" 200 X=1
nvidia-smi --query-gpu=name --format=csv,noheader
