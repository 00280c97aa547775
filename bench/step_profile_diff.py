#!/usr/bin/env python3
"""Per-layer phase times of the decode-step kernel over the last 100 calls of a run.

The kernel's DIA_CUDA_DECODE_STEP_DEBUG=8 report (bench_cuda --verbose 1) prints running means
every 100 calls; this takes the last two reports (calls N - 100 and N, N from argv[1]) from stdin
and prints the means of the calls between them, e.g. the steps at positions 1401..1500 of
  bench_cuda ... --generate 1 --warmup 1400 --steps 100 --verbose 1 | step_profile_diff.py 1500
"""
import re
import sys

n2 = int(sys.argv[1])
n1 = n2 - 100
reps = [l for l in sys.stdin if "decode-step profile" in l]
if len(reps) < 2:
    sys.exit("fewer than two profile reports")
a, b = (l.split("us per layer:")[1] for l in reps[-2:])
num = re.compile(r"-?[0-9]+\.[0-9]+")
va, vb = [float(x) for x in num.findall(a)], [float(x) for x in num.findall(b)]
out = [(y * n2 - x * n1) / (n2 - n1) for x, y in zip(va, vb)]
labels = num.split(b)  # the text around the numbers: one piece more than numbers
print("last 100 calls:" + "".join(f"{t}{v:.2f}" for t, v in zip(labels, out)) + labels[len(out)].rstrip())
