#!/bin/bash
# bench/ab_pf_opt2.sh - twenty-first session: main's binary with DIA_CUDA_DECODE_STEP_OPT | 2 (each block's attention
# units' K/V rows prefetched into L2 at the layer's start: past 2,048 keys that includes the second units, whose loads
# otherwise come from HBM after the first unit's work) against the default, dia_generate B = 1, same binary.
set -u
. bench/ab_gen.sh # the build, the model, gen()
S=("default   ;X=1" "OPT | 2   ;DIA_CUDA_DECODE_STEP_OPT=90480399")
ab_loop 1 "20 1400 2100 2700" "${S[@]}"
ab_loop 1 "2100 2700" "${S[@]}"
ab_whole "${S[@]}"; ab_whole "${S[@]}"
nvidia-smi --query-gpu=name --format=csv,noheader
