#!/usr/bin/env python3
"""Time PyTorch's DAC decode (transformers DacModel.decode) of `seconds` of audio from the same
codes bench_dac_cuda uses, on the GPU: f32 (TF32 off), f32 with TF32, bf16 weights and activations,
and bf16 under torch.compile. Prints the best of 3 warm decodes per mode.
  python bench/reference_dac_pytorch.py DAC_DIR [seconds]"""
import sys
import time

import torch
from transformers import DacModel

path, seconds = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
frames = int(seconds * 44100 / 512 + 0.5)
i = torch.arange(frames * 9, dtype=torch.int64)
codes = ((i * 7919 + 13) % 1024).view(frames, 9).t().unsqueeze(0).cuda()  # [1, 9, frames], as bench_dac_cuda


def timed(model, label):
    best = 1e9
    with torch.inference_mode():
        for it in range(4):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            audio = model.decode(audio_codes=codes).audio_values
            torch.cuda.synchronize()
            if it > 0:
                best = min(best, time.perf_counter() - t0)
    print(f"REF_DAC mode={label} frames={frames} samples={audio.shape[-1]} decode_ms={1e3 * best:.1f}")


model = DacModel.from_pretrained(path).cuda().eval()
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
timed(model, "f32")
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
timed(model, "f32_tf32")
model = model.to(torch.bfloat16)
timed(model, "bf16")
try:
    model.decode = torch.compile(model.decode)
    timed(model, "bf16_compile")
except Exception as e:  # compile is optional
    print(f"REF_DAC mode=bf16_compile failed: {type(e).__name__}: {e}"[:300])
