"""Shared pytest fixtures: the tiny model fixtures and their goldens (tests/fixtures/tiny)."""
import json
import os
import struct
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bindings/python: import dia without installing it

import dia  # noqa: E402

FIXTURES = os.environ.get("DIA_FIXTURES") or os.path.normpath(os.path.join(HERE, "..", "..", "..", "tests", "fixtures",
                                                                            "tiny"))
TEXT0 = "[S1] Hello from a tiny model. [S2] It only speaks noise (laughs)."
TEXT1 = "[S1] Second voice, caf\u00e9 cr\u00e8me \u2014 UTF-8 bytes."


def read_safetensors(path):
    """{name: (dtype, shape, bytes)} of a .safetensors file, in pure Python."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], tuple(t["shape"]), data[a:b])
    return out


class Golden:
    def __init__(self, path):
        self.t = read_safetensors(path)

    def flat(self, name):
        """(flat list of values, shape) of a golden tensor (F32 or I32)."""
        dtype, shape, raw = self.t[name]
        fmt = {"F32": "f", "I32": "i"}[dtype]
        return list(struct.unpack("<%d%s" % (len(raw) // 4, fmt), raw)), shape

    def array(self, name):
        """numpy array when numpy is available, else nested lists."""
        vals, shape = self.flat(name)
        if dia.HAVE_NUMPY:
            import numpy as np
            return np.array(vals, dtype=np.float32 if self.t[name][0] == "F32" else np.int32).reshape(shape)
        return nest(vals, shape)


def nest(flat, shape):
    if len(shape) <= 1:
        return list(flat)
    step = 1
    for s in shape[1:]:
        step *= s
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def flatten(x):
    """Flat list of floats/ints of a numpy array, array.array or nested lists."""
    if hasattr(x, "ravel"):
        return x.ravel().tolist()
    out = []
    stack = [x]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)) and v and isinstance(v[0], (list, tuple)):
            stack.extend(reversed(v))
        else:
            out.extend(v)
    return out


def max_abs_diff(a, b):
    fa, fb = flatten(a), flatten(b)
    assert len(fa) == len(fb), "sizes differ: %d vs %d" % (len(fa), len(fb))
    m = 0.0
    for x, y in zip(fa, fb):
        d = abs(x - y)
        if not d <= m:  # NaN fails
            m = d
    return m


@pytest.fixture(scope="session")
def fixtures():
    return FIXTURES


@pytest.fixture(scope="session")
def golden():
    return Golden(os.path.join(FIXTURES, "golden.safetensors"))


@pytest.fixture(scope="session")
def model():
    m = dia.Model(os.path.join(FIXTURES, "dia-hf"), threads=2)
    yield m
    m.close()


@pytest.fixture(scope="session")
def tts(model):
    dac = None
    if dia.lib().has("dia_dac_load"):
        dac = dia.Dac(os.path.join(FIXTURES, "dac-hf"), threads=2)
    return dia.Dia(model, dac)
