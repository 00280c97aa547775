"""Sampling and generation against the goldens: greedy codes must match exactly."""
import pytest

import dia
from conftest import TEXT0, TEXT1, flatten, max_abs_diff, nest

C, V = 9, 1028
GREEDY = dict(temperature=0.0, cfg_scale=3.0, cfg_filter_top_k=45, max_tokens=128, seed=0)



def as_lists(codes):
    return codes.tolist() if hasattr(codes, "tolist") else codes


def golden_codes(golden, name):
    vals, shape = golden.flat(name)
    return nest(vals, shape)


def test_greedy_codes_exact(tts, golden):
    for text, name in ((TEXT0, "text0.greedy_codes"), (TEXT1, "text1.greedy_codes")):
        got = tts.generate_codes(text, **GREEDY)
        if dia.HAVE_NUMPY:
            assert got.dtype.name == "int32"
        assert as_lists(got) == golden_codes(golden, name), name


def test_greedy_batch_is_a_list(tts, golden):
    got = tts.generate_codes([TEXT0, TEXT1], **GREEDY)
    assert isinstance(got, list) and len(got) == 2
    assert as_lists(got[0]) == golden_codes(golden, "text0.greedy_codes")
    assert as_lists(got[1]) == golden_codes(golden, "text1.greedy_codes")


def test_audio_prompt_codes(tts, golden):
    prompt = golden.array("prompt.codes")
    got = tts.generate_codes(TEXT0, audio_prompt=prompt, **GREEDY)
    assert as_lists(got) == golden_codes(golden, "text0.prompt_greedy_codes")
    both = tts.generate_codes([TEXT0, TEXT0], audio_prompt=[None, prompt], **GREEDY)
    assert as_lists(both[0]) == golden_codes(golden, "batch.item0.greedy_codes")
    assert as_lists(both[1]) == golden_codes(golden, "batch.item1.greedy_codes")
    with pytest.raises(ValueError):
        tts.generate_codes([TEXT0, TEXT1], audio_prompt=[prompt], **GREEDY)


def test_bad_prompt_code_raises(tts, golden):
    bad = [[1023] * C, [5000] * C]
    with pytest.raises(dia.DiaError) as e:
        tts.generate_codes(TEXT0, audio_prompt=bad, **GREEDY)
    assert e.value.status == dia.DIA_ERR_BAD_AUDIO


def test_invalid_parameters_raise(tts, model):
    with pytest.raises(dia.DiaError) as e:
        tts.generate_codes(TEXT0, max_tokens=model.max_frames + 1)
    assert e.value.status == dia.DIA_ERR_INVALID_ARG and e.value.message
    with pytest.raises(dia.DiaError) as e:
        tts.generate_codes(TEXT0, top_p=0.0, max_tokens=64)
    assert e.value.status == dia.DIA_ERR_INVALID_ARG and "top_p" in e.value.message


def test_sampling_is_seeded(tts):
    kw = dict(max_tokens=96, temperature=1.2, seed=1234)
    a = as_lists(tts.generate_codes(TEXT1, **kw))
    b = as_lists(tts.generate_codes(TEXT1, **kw))
    assert a == b
    assert tts.last_seed == 1234
    assert all(0 <= v <= 1023 for row in a for v in row)
    tts.generate_codes(TEXT1, max_tokens=32)
    assert isinstance(tts.last_seed, int) and tts.last_seed >= 0


def test_on_frame_streams_every_frame(tts, golden):
    seen = []
    got = tts.generate_codes(TEXT0, on_frame=lambda item, frame, codes: seen.append((item, frame, codes)), **GREEDY)
    assert [f for _, f, _ in seen] == list(range(len(seen)))
    assert [c for _, _, c in seen] == as_lists(got)


def test_on_frame_cancels(tts):
    with pytest.raises(dia.DiaError) as e:
        tts.generate_codes(TEXT0, on_frame=lambda item, frame, codes: frame >= 4, **GREEDY)
    assert e.value.status == dia.DIA_ERR_CANCELLED


def test_on_frame_exception_propagates(tts):
    def boom(item, frame, codes):
        raise KeyError("from the callback")
    with pytest.raises(KeyError):
        tts.generate_codes(TEXT0, on_frame=boom, **GREEDY)


def test_generate_without_dac_raises(model):
    with pytest.raises(dia.DiaError) as e:
        dia.Dia(model).generate(TEXT0, **GREEDY)
    assert "dac" in str(e.value).lower()


def test_gen_params():
    p = dia.GenParams()
    assert p.as_dict() == {"max_tokens": 3072, "cfg_scale": 3.0, "temperature": 1.2, "top_p": 0.95,
                           "cfg_filter_top_k": 45, "seed": 0}
    p["temperature"] = 0.5
    assert p["temperature"] == 0.5
    with pytest.raises(dia.DiaError) as e:
        p["nonsense"] = 1
    assert e.value.status == dia.DIA_ERR_INVALID_ARG
    with pytest.raises(dia.DiaError):
        p["cfg_filter_top_k"] = 0


def test_sampler_probs_golden(golden):
    cond, shape = golden.flat("sampler.cond")
    uncond, _ = golden.flat("sampler.uncond")
    want, _ = golden.flat("sampler.probs")
    rows = shape[0]
    p = dia.GenParams(cfg_scale=3.0, temperature=1.2, top_p=0.95, cfg_filter_top_k=45)
    with pytest.raises(ValueError):
        dia.sampler_probs(p, cond[:100], uncond[:100])  # not [9, 1028]: refused before the C call
    n = C * V
    for r in range(rows):
        got = dia.sampler_probs(p, nest(cond[r * n:(r + 1) * n], (C, V)), nest(uncond[r * n:(r + 1) * n], (C, V)))
        d = max_abs_diff(got, want[r * n:(r + 1) * n])
        assert d <= 1e-5, "row %d: %g" % (r, d)
        codes = dia.sample_frame(p, nest(cond[r * n:(r + 1) * n], (C, V)), nest(uncond[r * n:(r + 1) * n], (C, V)),
                                 item=0, step=r)
        flat = flatten(got)
        for c, code in enumerate(list(codes)):
            assert flat[c * V + code] > 0, "row %d channel %d sampled a code of probability 0" % (r, c)
        again = dia.sample_frame(p, nest(cond[r * n:(r + 1) * n], (C, V)), nest(uncond[r * n:(r + 1) * n], (C, V)),
                                 item=0, step=r)
        assert list(codes) == list(again)
