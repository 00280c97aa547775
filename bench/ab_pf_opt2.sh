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
# Call 5 (H100): OPT | 2 lost past 2,048 keys: 665.8 / 666.2 vs 683.6 / 683.3 at 2100..2300, 652.4 / 651.2 vs 673.1 /
# 672.0 at 2700..2900, 753.7 vs 766.1 at 1400..1600, 818.4 vs 817.4 at 20..220; whole 728.6 / 728.6 vs 742.6 / 741.0.
