#!/usr/bin/env python3
"""PyTorch / transformers reference for the decode-step benchmark:
    python bench/reference_pytorch.py MODEL_DIR MODE BATCH STEPS
MODE: eager (dynamic cache) | static (static cache; transformers then torch.compiles the step).
Runs model.generate greedily with CFG (guidance 3.0, top-k 45) for STEPS new tokens twice (the first
run warms up / compiles) and times the steps of the second run from per-step timestamps taken by a
stopping criterion (generate syncs with the host every step for its stop check), skipping the first
16 steps. Prints one REF line."""
import sys
import time

import torch
from transformers import DiaForConditionalGeneration, StoppingCriteria, StoppingCriteriaList

path, mode, B, N = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = ("[S1] Dia is an open weights text to dialogue model. [S2] You get full control over scripts "
        "and voices. [S1] Wow. Amazing. (laughs)")
ids = list(text.replace("[S1]", "\x01").replace("[S2]", "\x02").encode())
model = DiaForConditionalGeneration.from_pretrained(path, dtype=torch.bfloat16).cuda().eval()
input_ids = torch.tensor([ids] * B, device="cuda")
mask = torch.ones_like(input_ids)


class Rec(StoppingCriteria):
    def __init__(self):
        self.t = []

    def __call__(self, input_ids, scores, **kw):
        self.t.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


extra = {}
if mode == "static":
    extra["cache_implementation"] = "static"


def run():
    rec = Rec()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=N, do_sample=False,
                             guidance_scale=3.0, top_k=45, stopping_criteria=StoppingCriteriaList([rec]), **extra)
    torch.cuda.synchronize()
    return time.perf_counter() - t0, rec.t, out


try:
    w_s, _, _ = run()
    tot, ts, out = run()
    k0 = 16
    sps = (len(ts) - 1 - k0) / (ts[-1] - ts[k0])
    print(f"REF mode={mode} batch={B} new_tokens={N} steps_timed={len(ts) - 1 - k0} steps_per_s={sps:.1f} "
          f"ms_per_step={1e3 / sps:.3f} first_run_s={w_s:.1f} second_run_s={tot:.2f} out_shape={tuple(out.shape)} "
          f"max_mem_mib={torch.cuda.max_memory_allocated() / 2**20:.0f}", flush=True)
except Exception as e:  # report and go on: the benchmark script runs the other configurations
    print(f"REF mode={mode} batch={B} FAILED: {type(e).__name__}: {str(e)[:400]}", flush=True)
