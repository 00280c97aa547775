"""The numpy-free path (DIA_PYTHON_NO_NUMPY=1): results are array.array / nested lists."""
import os
import subprocess
import sys

import dia

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = r'''
import array, sys
sys.path.insert(0, %(tests)r)
from conftest import Golden, FIXTURES, TEXT0, max_abs_diff, nest
import dia
assert not dia.HAVE_NUMPY
g = Golden(FIXTURES + "/golden.safetensors")
m = dia.Model(FIXTURES + "/dia-hf", threads=1)
out = m.encode(TEXT0).output(0)
assert isinstance(out, list) and len(out) == 2 and isinstance(out[0][0], list), type(out)
assert max_abs_diff(out, g.array("text0.enc_out")) <= 1e-4
if dia.lib().has("dia_generate"):
    codes = dia.Dia(m).generate_codes(TEXT0, temperature=0.0, max_tokens=128)
    want, shape = g.flat("text0.greedy_codes")
    assert codes == nest(want, shape), "greedy codes differ"
    print("generate: ok")
if dia.lib().has("dia_dac_decode"):
    dac = dia.Dac(FIXTURES + "/dac-hf", threads=1)
    audio = dac.decode([[1] * 9, [2] * 9])
    assert isinstance(audio, array.array) and audio.typecode == "f" and len(audio) == 1024
    print("dac: ok")
print("ok")
'''


def test_without_numpy():
    env = dict(os.environ, DIA_PYTHON_NO_NUMPY="1")
    r = subprocess.run([sys.executable, "-c", SCRIPT % {"tests": HERE}], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("ok")
