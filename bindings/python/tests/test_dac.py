"""DAC codec, audio files and the whole text -> audio pipeline against the goldens."""
import array
import os

import pytest

import dia
from conftest import FIXTURES, TEXT0, flatten, max_abs_diff, nest



def transposed(golden, name):
    """golden codes [Q, n] -> [n, Q] nested lists"""
    vals, (q, n) = golden.flat(name)
    return [[vals[k * n + t] for k in range(q)] for t in range(n)]


@pytest.fixture(scope="module")
def dac():
    return dia.Dac(os.path.join(FIXTURES, "dac-hf"), threads=2)


def test_info(dac):
    assert dac.sample_rate == 44100
    assert dac.hop_length == 512
    assert dac.info("codebooks") == 9
    assert dac.info("codebook_size") == 1024


def test_decode_golden(dac, golden):
    audio = dac.decode(transposed(golden, "dac.decode_codes"))
    want, _ = golden.flat("dac.decode_audio")
    assert len(audio) == len(want) == 24 * 512
    d = max_abs_diff(audio, want)
    assert d <= 1e-4, "max |diff| %g" % d
    if dia.HAVE_NUMPY:
        assert audio.dtype.name == "float32"
    else:
        assert isinstance(audio, array.array) and audio.typecode == "f"


def test_encode_golden(dac, golden):
    inp, _ = golden.flat("dac.encode_input")
    codes = dac.encode(inp)
    got = codes.tolist() if hasattr(codes, "tolist") else codes
    assert got == transposed(golden, "dac.encode_codes")


def test_decode_bad_code_raises(dac):
    with pytest.raises(dia.DiaError) as e:
        dac.decode([[0] * 8 + [1024]])
    assert e.value.status == dia.DIA_ERR_BAD_AUDIO
    with pytest.raises(ValueError):
        dac.decode([[0] * 8])  # wrong codebook count: caught before the C call
    with pytest.raises(ValueError):
        dac.encode([[0.0] * 512])


def test_pipeline_greedy_audio(tts, golden):
    audio = tts.generate(TEXT0, temperature=0.0, cfg_scale=3.0, cfg_filter_top_k=45, max_tokens=128, seed=0)
    want, _ = golden.flat("text0.greedy_audio")
    assert len(audio) == len(want)
    d = max_abs_diff(audio, want)
    assert d <= 1e-4, "max |diff| %g" % d
    both = tts.generate([TEXT0, TEXT0], temperature=0.0, max_tokens=128)
    assert isinstance(both, list) and len(both) == 2
    assert max_abs_diff(both[1], want) <= 1e-4


def test_save_and_load_audio(tmp_path, golden):
    want, _ = golden.flat("dac.decode_audio")
    p32 = str(tmp_path / "a32.wav")
    dia.save_audio(p32, want, float32=True)
    back = dia.load_audio(p32)
    assert len(back) == len(want)
    assert max_abs_diff(back, want) == 0.0
    p16 = str(tmp_path / "a16.wav")
    dia.save_audio(p16, want)
    back16 = dia.load_audio(p16)
    assert max_abs_diff(back16, want) <= 1.0 / 32768 + 1e-7
    with open(p16, "rb") as f:
        assert f.read(4) == b"RIFF"
    with pytest.raises(dia.DiaError) as e:
        dia.load_audio(str(tmp_path / "missing.wav"))
    assert e.value.status in (dia.DIA_ERR_IO, dia.DIA_ERR_BAD_AUDIO) and e.value.message
    with pytest.raises(ValueError):
        dia.save_audio(str(tmp_path / "stereo.wav"), [[0.0, 0.0]])


def test_audio_prompt_from_file(tts, dac, golden, tmp_path):
    prompt = golden.array("prompt.codes")
    wav = str(tmp_path / "prompt.wav")
    tts.save_audio(wav, dac.decode(prompt))
    out = tts.generate(TEXT0, audio_prompt=wav, max_tokens=128, temperature=0.0)
    assert len(out) % 512 == 0
    assert all(abs(x) < 100 for x in flatten(out)[:2048])


def test_decode_range_streams_exactly(dac, golden):
    """Frames decoded in chunks as they arrive (each chunk once context_frames more are known, the
    tail at the end) equal the whole decode."""
    codes = transposed(golden, "dac.decode_codes")  # 24 frames
    whole = flatten(dac.decode(codes))
    ctx = dac.context_frames
    assert ctx > 0
    out, done = [], 0
    for known in range(1, len(codes) + 1):
        while done < known and (known - done >= 4 + ctx or known == len(codes)):
            count = 4 if known < len(codes) else known - done
            out += flatten(dac.decode_range(codes[:known], done, count))
            done += count
    assert done == len(codes)
    assert out == whole
    with pytest.raises(dia.DiaError):
        dac.decode_range(codes, 22, 4)
