#!/bin/bash
# bench/ab_lens.sh - seventeenth session, one device call: OPT 131072, the launch's lengths (kvlen, clen)
# and cache rows (start) read once into shared memory at the start instead of by the attention units and
# the k / v stores once a layer (block 0's profile shows ~2 us between the end of the projection before
# an attention phase and its K/V loads issued, with only those reads and the call on that path). The
# decode-step test with the bit forced in both kernels; dia_generate B = 1 same binary, interleaved;
# block 0's profile of each; then ncu's stall reasons of one launch (no_instruction, imc_miss: is the
# code or the constant cache a cost?). (The bit was removed after this call, the lengths now being read once
# unconditionally: on main the script times the same kernel twice; it stays as the record of call 5.)
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT
gpu_tests test_decode_step_kernel $O=171789 || echo "TEST FAILED"
AB=("40717 (default)  ;" "171789 (| 131072);$O=171789")
ab_loop 2 "20 1400" "${AB[@]}"; ab_whole "${AB[@]}"
for o in 40717 171789; do
  echo "=== OPT $o: block 0's profile, the 100 calls up to 200"
  env $O=$o DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --generate 1 \
    --capacity 3072 --steps 200 --warmup 0 --verbose 1 2>&1 | python3 bench/step_profile_diff.py 200
done
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
DIA_CUDA_GRAPHS=0 timeout 240 $NCU --clock-control none --kernel-name regex:decode_layers --launch-skip 100 --launch-count 1 \
  --section WarpStateStats --section SourceCounters --import-source no -f -o /tmp/ds \
  $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps 130 --warmup 20 --generate 1 --capacity 3072 > /tmp/ncu.log 2>&1
grep -v "^libdia\|^RESULT" /tmp/ncu.log | tail -3
$NCU --import /tmp/ds.ncu-rep --page source --csv --print-source sass 2>/tmp/src.err | gzip > "$OUT/ds_sass.csv.gz"
python3 bench/ncu_sass_summary.py "$OUT/ds_sass.csv.gz" 25 2>&1 | head -70
nvidia-smi --query-gpu=name --format=csv,noheader
