#!/bin/bash
# bench/ncu_decode_step.sh - where the B = 1 decode-step kernel's warps stall (device machine, one call):
# builds libdia (bench_cuda.sh env build model), then ncu on one k_decode_layers launch (graphs off, the
# step at position ~NCU_SKIP + 21) with WarpStateStats + SourceCounters (PC sampling), and writes
#   $OUT/ds_sass.csv.gz   the SASS with stall samples per instruction (bench/ncu_sass_summary.py reads it)
#   $OUT/ds_raw.txt       the stall-reason metrics of the launch
# and prints the barrier profile (DIA_CUDA_DECODE_STEP_DEBUG=24) at positions 101..200.
set -u
OUT=${OUT:-/tmp/ncu-out}; mkdir -p "$OUT"
. bench/ab_gen.sh # the build, the model, $B and $M
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
echo "=== barrier profile, positions 101..200"
DIA_CUDA_DECODE_STEP_DEBUG=24 timeout 120 $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps 100 --warmup 100 --verbose 1 2>&1 \
  | grep -A14 "decode-step barriers" | tail -15
echo "=== ncu"
DIA_CUDA_GRAPHS=0 timeout 300 $NCU --clock-control none --kernel-name regex:decode_layers --launch-skip ${NCU_SKIP:-100} --launch-count 1 \
  --section WarpStateStats --section SourceCounters --import-source no -f -o /tmp/ds \
  $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps 130 --warmup 20 --generate 1 --capacity 3072 > /tmp/ncu.log 2>&1
grep -v "^libdia\|^RESULT" /tmp/ncu.log | tail -5
$NCU --import /tmp/ds.ncu-rep --page raw --csv 2>/dev/null | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
h, u, v = rows[0], rows[1], rows[2]
for i, n in enumerate(h):
    if "stalled" in n or "inst_executed" in n or n.startswith("gpu__time_duration") or "warps_active" in n:
        print(n, v[i], u[i])' > "$OUT/ds_raw.txt"
grep "pcsamp\|time_duration" "$OUT/ds_raw.txt" | sort -t" " -k2 -g -r | head -40
$NCU --import /tmp/ds.ncu-rep --page source --csv --print-source sass 2>/tmp/src.err | gzip > "$OUT/ds_sass.csv.gz"
tail -2 /tmp/src.err; ls -la "$OUT"
nvidia-smi --query-gpu=name --format=csv,noheader
