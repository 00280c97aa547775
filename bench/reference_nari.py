#!/usr/bin/env python3
"""The original nari-labs/dia code as a reference for the decode-step benchmark:
    python bench/reference_nari.py NARI_DIR BATCH STEPS [WARMUP]
NARI_DIR: a checkout of https://github.com/nari-labs/dia (measured at 876125e; not part of this
repository: bench/fetch_nari.sh puts it in bench/nari-dia/, which git ignores). Builds the full-size
Dia-1.6B-0626 architecture with nari's own DiaModel (DiaConfig's defaults are that model) in bf16
with random weights (normal, std 0.02; RMSNorm weights 1), zeroes the EOS column of the logits head
(as bench/make_full_model.py does, so no item stops early), and times nari's Dia.generate with
use_torch_compile=True (its decode step is torch.compile'd with mode="max-autotune", i.e. with CUDA
graphs) and nari's default sampling (cfg 3.0, temperature 1.2, top_p 0.95, cfg_filter_top_k 45),
max_tokens 3072 (the KV cache of a default generation, as libdia's --capacity 3072). The same
121-byte dialogue as bench_cuda. A first generate compiles (minutes); the second is timed by a
timestamp after each decode step (nari's loop reads device values every step, so the steps are
synchronous with the host) over steps WARMUP .. WARMUP + STEPS, then stopped. No DAC is loaded
(the audio is never decoded). Prints one REF line."""
import sys
import time
import types

import torch

nari, B, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
W = int(sys.argv[4]) if len(sys.argv) > 4 else 20
sys.path.insert(0, nari)
try:
    import torchaudio  # noqa: F401 (nari's model.py imports it for audio prompts only)
except ImportError:
    sys.modules["torchaudio"] = types.ModuleType("torchaudio")
try:
    import pydantic  # noqa: F401
except ImportError:  # (absent on the device machine) a stand-in with what nari's config classes need to be built
    # from keyword arguments and their fields' defaults, and model_dump; no validation

    class _Field:
        def __init__(self, default=None, default_factory=None, **constraints):
            self.default, self.default_factory = default, default_factory

    class _BaseModel:
        def __init_subclass__(cls, **options):  # (frozen=True)
            super().__init_subclass__()

        def __init__(self, **values):
            for name in type(self).__annotations__:
                f = getattr(type(self), name, None)
                v = values[name] if name in values else f.default_factory() if f.default_factory else f.default
                object.__setattr__(self, name, v)

        def model_dump(self):  # (huggingface_hub's mixin records the config at construction)
            return {k: v.model_dump() if isinstance(v, _BaseModel) else v for k, v in vars(self).items()}

    shim = types.ModuleType("pydantic")
    shim.BaseModel, shim.Field = _BaseModel, _Field
    sys.modules["pydantic"] = shim
from dia.config import DecoderConfig, DiaConfig, EncoderConfig  # noqa: E402
from dia.model import Dia  # noqa: E402

text = ("[S1] Dia is an open weights text to dialogue model. [S2] You get full control over scripts "
        "and voices. [S1] Wow. Amazing. (laughs)")
cfg = DiaConfig(encoder_config=EncoderConfig(), decoder_config=DecoderConfig())
dia = Dia(cfg, compute_dtype="bfloat16", device=torch.device("cuda"), load_dac=False)
dia.model.to("cuda")
torch.manual_seed(0)
with torch.no_grad():
    for name, p in dia.model.named_parameters():
        if p.dim() >= 2:
            p.normal_(0.0, 0.02)
        else:
            p.fill_(1.0)
    dia.model.decoder.logits_dense.weight[:, :, cfg.eos_token_id] = 0.0
dia.model.eval()
nparam = sum(p.numel() for p in dia.model.parameters())


class Enough(Exception):
    pass


stamps = []
limit = [0]


def run(steps):
    """One generate, stopped after `steps` decode steps; returns their end times."""
    stamps.clear()
    limit[0] = steps
    try:
        dia.generate([text] * B if B > 1 else text, max_tokens=3072, use_torch_compile=True)
    except Enough:
        pass
    return list(stamps)


# nari's generate compiles on its first call exactly so (dia/model.py, `use_torch_compile`); done here instead,
# so that the compiled step can be wrapped by the timestamp below (generate then finds `_compiled` set)
dia._prepare_generation = torch.compile(dia._prepare_generation, dynamic=True, fullgraph=True)
inner = torch.compile(dia._decoder_step, fullgraph=True, mode="max-autotune")
dia._compiled = True


def timed(*a, **k):
    out = inner(*a, **k)
    stamps.append(time.perf_counter())
    if len(stamps) >= limit[0]:
        raise Enough()
    return out


dia._decoder_step = timed
t0 = time.perf_counter()
run(8)  # compiles (max-autotune: minutes)
compile_s = time.perf_counter() - t0
run(8)  # cudagraph trees: a second warm-up
t = run(W + N + 1)
if len(t) < W + N + 1:
    raise SystemExit(f"REF nari: only {len(t)} steps")
dt = (t[W + N] - t[W]) / N
print(f"REF nari-dia B={B} params={nparam} compile_s={compile_s:.1f} steps={W}..{W + N} steps_per_s={1 / dt:.1f} "
      f"ms_per_step={1e3 * dt:.3f} frames_per_s={B / dt:.0f}", flush=True)
