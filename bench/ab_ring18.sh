#!/bin/bash
# bench/ab_ring18.sh - eighteenth session, one device call on main: the producer's ring again after this
# session's changes (environment only, same binary): gate_up's first K tiles at 1 in flight and the rest at 2
# (DIA_CUDA_DECODE_STEP_INFLIGHT2 = 16 | 2 << 8 | K << 16: fewer bytes in flight at the grid barrier after cross
# o, where gate_up's first tiles are issued), gate_up at 1 (0), and 4 / 6 stages. dia_generate B = 1, interleaved.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
I2=DIA_CUDA_DECODE_STEP_INFLIGHT2
ab_loop 2 "20 1400" "default (528)        ;" "gu skip 2            ;$I2=$((16 | 2 << 8 | 2 << 16))" \
  "gu skip 4            ;$I2=$((16 | 2 << 8 | 4 << 16))" "gu skip 8            ;$I2=$((16 | 2 << 8 | 8 << 16))" \
  "gu at 1 (0)          ;$I2=0" "4 stages             ;DIA_CUDA_DECODE_STEP_STAGES=4" \
  "6 stages             ;DIA_CUDA_DECODE_STEP_STAGES=6"
nvidia-smi --query-gpu=name --format=csv,noheader
