"""Model, encoder, KV cache and decoder wrappers against the goldens (float32: 1e-4)."""
import os

import pytest

import dia
from conftest import FIXTURES, TEXT0, TEXT1, max_abs_diff, nest

C, V, TF_T = 9, 1028, 24


def shape_of(x):
    if hasattr(x, "shape"):
        return tuple(x.shape)
    s = []
    while isinstance(x, list):
        s.append(len(x))
        x = x[0] if x else None
    return tuple(s)


def test_info(model):
    assert model.channels == 9
    assert model.vocab == 1028
    assert model.max_frames == 256
    assert model.text_length == 128
    assert model.delays == [0, 8, 9, 10, 11, 12, 13, 14, 15]
    assert model.info("eos") == 1024 and model.info("pad") == 1025 and model.info("bos") == 1026
    with pytest.raises(dia.DiaError) as e:
        model.info("no_such_key")
    assert e.value.status == dia.DIA_ERR_INVALID_ARG and "no_such_key" in e.value.message


@pytest.mark.parametrize("layout", ["dia-hf", "dia-nari"])
def test_encoder_output(layout, golden, model):
    m = model if layout == "dia-hf" else dia.Model(os.path.join(FIXTURES, layout), threads=2)
    enc = m.encode([TEXT0, TEXT1])  # a batch of two lengths
    assert enc.batch == 2
    for i, name in enumerate(("text0.enc_out", "text1.enc_out")):
        want = golden.array(name)
        got = enc.output(i)
        assert shape_of(got) == shape_of(want)
        assert enc.length(i) == shape_of(want)[1]
        d = max_abs_diff(got, want)
        assert d <= 1e-4, "%s %s: max |diff| %g" % (layout, name, d)


def test_encode_single_text_and_errors(golden, model):
    enc = model.encode(TEXT0)
    assert enc.batch == 1
    assert max_abs_diff(enc.output(0), golden.array("text0.enc_out")) <= 1e-4
    with pytest.raises(dia.DiaError) as e:
        enc.output(1)
    assert e.value.status == dia.DIA_ERR_INVALID_ARG
    with pytest.raises(dia.DiaError) as e:
        model.encode("[S1] " + "x" * 200)  # text_length is 128
    assert e.value.status == dia.DIA_ERR_TEXT_TOO_LONG
    assert model.encode("[S1] " + "x" * 200, truncate=True).length(0) == 128
    with pytest.raises(dia.DiaError) as e:
        model.encode("")
    assert e.value.status == dia.DIA_ERR_INVALID_ARG


def _tf(golden):
    toks, _ = golden.flat("text0.tf_tokens")
    return nest(toks, (TF_T, C))


def test_prefill_logits(golden, model):
    want = golden.array("text0.tf_logits")
    enc = model.encode(TEXT0)
    cache = model.kvcache(batch=1, capacity=32)
    dec = model.decoder(enc, cache)
    got = dec.prefill([_tf(golden)])
    assert shape_of(got) == (2, TF_T, C, V)
    d = max_abs_diff(got, want)
    assert d <= 1e-4, "max |diff| %g" % d
    assert cache.length(0) == TF_T and cache.length(1) == TF_T
    assert cache.capacity == 32
    k = cache.read(0, 0, 1)
    assert shape_of(k) == (model.info("kv_heads"), TF_T, model.info("head_dim"))


def test_steps_match_prefill(golden, model):
    want, _ = golden.flat("text0.tf_logits")
    tok = _tf(golden)
    enc = model.encode(TEXT0)
    cache = model.kvcache(1, 32)
    dec = model.decoder(enc, cache)
    k = 7
    assert dec.prefill([tok[:k]], logits=False) is None
    row = C * V
    for t in range(k, TF_T):
        dec.step(tok[t])
        got = dec.logits()
        assert shape_of(got) == (2, C, V)
        for r in range(2):
            ref = want[(r * TF_T + t) * row:(r * TF_T + t + 1) * row]
            d = max_abs_diff(got[r], ref)
            assert d <= 1e-4, "step %d row %d: %g" % (t, r, d)
    # truncate and redo the last 4 positions
    cache.truncate(TF_T - 4)
    assert cache.length(0) == TF_T - 4
    got = dec.prefill([tok[TF_T - 4:]])
    for r in range(2):
        for t in range(4):
            ref = want[(r * TF_T + TF_T - 4 + t) * row:(r * TF_T + TF_T - 3 + t) * row]
            assert max_abs_diff(got[r][t], ref) <= 1e-4
    cache.reset()
    assert cache.length(0) == 0


def test_capacity_error(golden, model):
    enc = model.encode(TEXT0)
    cache = model.kvcache(1, 8)
    dec = model.decoder(enc, cache)
    with pytest.raises(dia.DiaError) as e:
        dec.prefill([_tf(golden)])  # 24 positions into 8
    assert e.value.status == dia.DIA_ERR_CAPACITY
    assert e.value.message
    assert cache.length(0) == 0  # nothing was written
    with pytest.raises(ValueError):
        dec.prefill([[0] * 8])  # wrong channel count, caught before the C call


def test_batch_mismatch(model):
    enc = model.encode([TEXT0, TEXT1])
    cache = model.kvcache(1, 8)
    with pytest.raises(dia.DiaError) as e:
        model.decoder(enc, cache)
    assert e.value.status == dia.DIA_ERR_INVALID_ARG


def test_bf16_sharded_loads(golden):
    m = dia.Model(os.path.join(FIXTURES, "dia-hf-bf16-sharded"), threads=2)
    assert m.info("decoder_layers") == 2
    enc = m.encode(TEXT0)
    dec = m.decoder(enc, m.kvcache(1, 32))
    d = max_abs_diff(dec.prefill([_tf(golden)]), golden.array("text0.tf_logits"))
    assert d <= 5e-2, "bf16 weights: max |diff| %g (stated tolerance 5e-2)" % d


def test_context_manager_closes():
    with dia.Model(os.path.join(FIXTURES, "dia-hf"), threads=1) as m:
        assert m.channels == 9
    with pytest.raises(ValueError):
        m.info("channels")


def test_close_order_is_safe(golden):
    """A model closed (or collected) before its dependents is freed only after them."""
    import gc
    m = dia.Model(os.path.join(FIXTURES, "dia-hf"), threads=1)
    enc = m.encode(TEXT0)
    cache = m.kvcache(1, 32)
    dec = m.decoder(enc, cache)
    m.close()  # deferred: enc, cache and dec still need it
    with pytest.raises(ValueError):
        m.info("channels")
    got = dec.prefill([_tf(golden)[:3]])
    want, _ = golden.flat("text0.tf_logits")
    assert max_abs_diff(got[1][0], want[TF_T * C * V:TF_T * C * V + C * V]) <= 1e-4
    # one reference cycle through all four: the collector finalizes them in any order
    ring = [m, enc, cache, dec]
    for h in ring:
        h.ring = ring
    del m, enc, cache, dec, h, ring
    gc.collect()
