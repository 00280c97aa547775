#!/usr/bin/env python3
"""Write a full-size Dia-1.6B-0626 architecture with random weights (transformers layout, bf16
safetensors + config.json) for benchmarks: python bench/make_full_model.py OUT_DIR

The EOS row of every channel of the logits head is zeroed so that greedy runs never stop early
(the benchmark times a fixed number of decode steps)."""
import sys
import time

import torch
from transformers import DiaConfig, DiaDecoderConfig, DiaEncoderConfig, DiaForConditionalGeneration

out = sys.argv[1]
# optional initializer_range: the default 0.02 makes attention (scale 1, no 1/sqrt(d)) nearly
# one-hot, so results are chaotic under rounding; ~0.002 gives a smooth model for cross-checks
init = float(sys.argv[2]) if len(sys.argv) > 2 else None
t0 = time.time()
torch.manual_seed(0)
enc = DiaEncoderConfig(vocab_size=256, hidden_size=1024, intermediate_size=4096, num_hidden_layers=12,
                       num_attention_heads=16, num_key_value_heads=16, head_dim=128, max_position_embeddings=1024)
dec = DiaDecoderConfig(vocab_size=1028, num_channels=9, hidden_size=2048, intermediate_size=8192,
                       num_hidden_layers=18, num_attention_heads=16, num_key_value_heads=4, head_dim=128,
                       cross_num_attention_heads=16, cross_num_key_value_heads=16, cross_head_dim=128,
                       cross_hidden_size=1024, max_position_embeddings=3072)
cfg = DiaConfig(encoder_config=enc, decoder_config=dec)
if init is not None:
    cfg.initializer_range = init
    cfg.encoder_config.initializer_range = init
    cfg.decoder_config.initializer_range = init
with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
    model = DiaForConditionalGeneration(cfg)
model = model.to(torch.bfloat16).eval()
with torch.no_grad():
    w = model.logits_dense.weight  # [9 * 1028, 2048], row c * 1028 + v
    for c in range(9):
        w[c * 1028 + 1024].zero_()
n = sum(p.numel() for p in model.parameters())
model.save_pretrained(out)
print(f"MODEL {out}: {n} parameters, bf16, written in {time.time() - t0:.1f} s")
