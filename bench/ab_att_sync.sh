#!/bin/bash
# bench/ab_att_sync.sh - eighteenth session, one device call (wip/att-sync): OPT 67108864, the attention units'
# count worked out at the start (a block sees that it has no further unit without ds_att_unit's divisions) and
# the block barriers only a further unit needs left out. The decode-step test with it forced, then
# dia_generate B = 1 with and without it interleaved.
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT
gpu_tests test_decode_step_kernel $O=$((23068687 | 67108864)) || echo "TEST FAILED"
D=23371533
AB=("default      ;" "+ att sync   ;$O=$((D | 67108864))")
ab_loop 3 "20 1400" "${AB[@]}"; ab_whole "${AB[@]}"
nvidia-smi --query-gpu=name --format=csv,noheader
