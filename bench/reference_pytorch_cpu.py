#!/usr/bin/env python3
"""PyTorch / transformers reference on the CPU, float32, for bench/bench_cpu_vs_torch.sh:
    python bench/reference_pytorch_cpu.py MODEL_DIR BATCH STEPS THREADS
Greedy generate with CFG (guidance 3.0, top-k 45) for STEPS new tokens; per-step timestamps from a
stopping criterion; the first 4 steps are skipped. Prints one REF line."""
import sys
import time

import torch
from transformers import DiaForConditionalGeneration, StoppingCriteria, StoppingCriteriaList

path, B, N, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
text = ("[S1] Dia is an open weights text to dialogue model. [S2] You get full control over scripts "
        "and voices. [S1] Wow. Amazing. (laughs)")
ids = list(text.replace("[S1]", "\x01").replace("[S2]", "\x02").encode())
model = DiaForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()
input_ids = torch.tensor([ids] * B)


class Rec(StoppingCriteria):
    def __init__(self):
        self.t = []

    def __call__(self, input_ids, scores, **kw):
        self.t.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool)


rec = Rec()
with torch.inference_mode():
    model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=N,
                   do_sample=False, guidance_scale=3.0, top_k=45, stopping_criteria=StoppingCriteriaList([rec]))
k0 = 4
sps = (len(rec.t) - 1 - k0) / (rec.t[-1] - rec.t[k0])
print(f"REF cpu float32 threads={threads} batch={B} steps_timed={len(rec.t) - 1 - k0} steps_per_s={sps:.2f} "
      f"ms_per_step={1e3 / sps:.1f}", flush=True)
