#!/bin/bash
# bench/final_s18.sh - eighteenth session's closing call (carry=["ab_old"]: ab_old/s17/ = the seventeenth session's
# kernel (f330efb), ab_old/marks/ = main's kernel with 4 marks inside every projection, wip/gemv-marks3): the whole
# GPU suite on main; dia_generate B = 1 of main and of the seventeenth session's kernel interleaved (frames 20..220
# twice, 1400..1600, a whole generation), B = 64 (frames 20..220), the PyTorch reference (transformers static cache
# + torch.compile, B = 1, 200 steps) for the ratio, and block 0's profile with the marks (101..200, 1501..1600).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests "" || echo "SUITE FAILED"
for v in s17 marks; do build_beside /tmp/$v ab_old/$v $v 8 & done; wait
S17=/tmp/s17/build-cuda/bench/bench_cuda
for rep in 1 2; do B=$S17 gen "B=1 s17 (f330efb)" 200 X=1; gen "B=1 main         " 200 X=1; done
export W=1400; B=$S17 gen "B=1 s17 (f330efb)" 200 X=1; gen "B=1 main         " 200 X=1; unset W
B=$S17 gen "B=1 s17 (f330efb)" 3000 X=1; gen "B=1 main         " 3000 X=1
timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 64 --steps 200 --warmup 20 --generate 1 --capacity 3072 2>&1 \
  | grep "timed_frames" | cut -c1-260
PHASES=ref REF_MODES=static REF_BATCHES=1 REF_STEPS=200 REF_TIMEOUT=240 bash bench/bench_cuda.sh 2>&1 | grep "REF\|rror" | head -5
gen "B=1 main         " 200 X=1
for wp in "0 200" "1400 1600"; do set -- $wp
  echo "=== marks build: block 0's profile, the 100 calls up to $2"
  DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 /tmp/marks/build-cuda/bench/bench_cuda --model "$M" --backend cuda --dtype bf16 --batch 1 \
    --generate 1 --capacity 3072 --steps $((200)) --warmup $1 --verbose 1 > /tmp/prof.txt 2>&1
  for ph in ", block" " inside qkv" " inside o," " inside cq" " inside co," " inside gu" " inside down"; do
    echo "$ph: $(grep "decode-step profile$ph" /tmp/prof.txt | python3 bench/step_profile_diff.py $2 | cut -c1-420)"
  done
done
nvidia-smi --query-gpu=name --format=csv,noheader
