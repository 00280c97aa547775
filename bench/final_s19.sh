#!/bin/bash
# bench/final_s19.sh - nineteenth session's closing call: the whole GPU suite on main; dia_generate B = 1 with the
# default and with DIA_CUDA_DECODE_STEP_DEBUG=32 (the grid barriers' arrivals without their release: timing only,
# what the release costs) interleaved (frames 20..220 twice, 1400..1600, a whole generation), B = 64 (frames
# 20..220), and the PyTorch reference (transformers static cache + torch.compile, B = 1, 200 steps) for the ratio.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
gpu_tests "" || echo "SUITE FAILED"
AB=("B=1 main          ;" "B=1 DEBUG=32 (rlx);DIA_CUDA_DECODE_STEP_DEBUG=32")
ab_loop 2 20 "${AB[@]}"; ab_loop 1 1400 "${AB[@]}"; ab_whole "${AB[@]}"
timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 64 --steps 200 --warmup 20 --generate 1 --capacity 3072 2>&1 \
  | grep "timed_frames" | cut -c1-260
PHASES=ref REF_MODES=static REF_BATCHES=1 REF_STEPS=200 REF_TIMEOUT=240 bash bench/bench_cuda.sh 2>&1 | grep "REF\|rror" | head -5
gen "B=1 main          " 200 X=1
nvidia-smi --query-gpu=name --format=csv,noheader
