#!/bin/bash
# bench/final_s17.sh - seventeenth session's closing call: the whole GPU suite on main, then in the same
# call dia_generate B = 1 (frames 20..220 twice, 1400..1600, a whole generation) and B = 64 (frames 20..220),
# the PyTorch reference (transformers static cache + torch.compile, B = 1, 200 steps) for the ratio, and
# block 0's profile at 101..200.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests "" || echo "SUITE FAILED"
gen "B=1 default" 200 X=1; gen "B=1 default" 200 X=1; W=1400 gen "B=1 default" 200 X=1; gen "B=1 default" 3000 X=1
timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 64 --steps 200 --warmup 20 --generate 1 --capacity 3072 2>&1 \
  | grep "timed_frames" | cut -c1-260
PHASES=ref REF_MODES=static REF_BATCHES=1 REF_STEPS=200 REF_TIMEOUT=240 bash bench/bench_cuda.sh 2>&1 | grep "REF\|rror" | head -5
gen "B=1 default" 200 X=1
echo "=== block 0's profile, the 100 calls up to 200"
DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
  --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | python3 bench/step_profile_diff.py 200
nvidia-smi --query-gpu=name --format=csv,noheader
