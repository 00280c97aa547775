#!/bin/bash
# bench/ab_s18b.sh - eighteenth session, one device call (carry=["ab_old"], ab_old/ = `bench_ab.sh prepare
# wip/gemv-marks2`: main's kernel with 4 marks inside every projection). The decode-step test on main (the new
# default, OPT 2097152), the 8-warp kernel (WS=0) with and without 2097152, block 0's profile of the marks
# build (DEBUG=8, 101..200), and where the compute warps' spills are (SASS of main's kernel -> $OUT).
set -u
. bench/ab_gen.sh # the build, the model, gen(), gpu_tests()
O=DIA_CUDA_DECODE_STEP_OPT
gpu_tests test_decode_step_kernel || echo "TEST FAILED"
for rep in 1 2; do
  gen "8 warps, OPT 15          " 200 DIA_CUDA_DECODE_STEP_WS=0 $O=15
  gen "8 warps, OPT 15 | 2097152" 200 DIA_CUDA_DECODE_STEP_WS=0 $O=2097167
  gen "default                  " 200 X=1
done
build_beside /tmp/old ab_old marks
DIA_CUDA_DECODE_STEP_DEBUG=8 timeout 120 /tmp/old/build-cuda/bench/bench_cuda --model "$M" --backend cuda --dtype bf16 --batch 1 \
  --generate 1 --capacity 3072 --steps 200 --warmup 0 --verbose 1 > /tmp/prof8.txt 2>&1
for ph in ", block" " inside qkv" " inside o," " inside cq" " inside co," " inside gu" " inside down"; do
  echo "$ph: $(grep "decode-step profile$ph" /tmp/prof8.txt | python3 bench/step_profile_diff.py 200 | cut -c1-400)"
done
CUOBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
$CUOBJ -sass build-cuda/obj/kernels/cuda/cuda_decode_step.o > /tmp/ds.sass 2>&1; gzip -c /tmp/ds.sass > ${OUT:-/tmp}/ds_main.sass.gz
echo "sass lines $(wc -l < /tmp/ds.sass); LDL/STL: $(grep -c 'LDL\|STL' /tmp/ds.sass)"
nvidia-smi --query-gpu=name --format=csv,noheader
