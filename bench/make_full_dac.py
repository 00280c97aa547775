#!/usr/bin/env python3
"""Write a DAC 44.1 kHz codec of the descript/dac_44khz architecture with random weights
(transformers DacModel, f32 safetensors + config.json): python bench/make_full_dac.py OUT_DIR"""
import sys

import torch
from transformers import DacConfig, DacModel

torch.manual_seed(0)
cfg = DacConfig(encoder_hidden_size=64, downsampling_ratios=[2, 4, 8, 8], decoder_hidden_size=1536,
                upsampling_ratios=[8, 8, 4, 2], n_codebooks=9, codebook_size=1024, codebook_dim=8,
                hidden_size=1024, sampling_rate=44100, hop_length=512)
model = DacModel(cfg).eval()
model.save_pretrained(sys.argv[1])
print(f"DAC {sys.argv[1]}: {sum(p.numel() for p in model.parameters())} parameters")
