"""Hub ids resolved from a local Hugging Face cache (no network)."""
import os
import time

import pytest

import dia
from conftest import FIXTURES, TEXT0, max_abs_diff


def make_cache(root, org, name, src, commit, ref="main"):
    repo = root / ("models--%s--%s" % (org, name))
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in os.listdir(src):
        os.symlink(os.path.join(src, f), snap / f)  # the hub cache links snapshot files to blobs
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snap


def test_hub_id_from_hf_hub_cache(tmp_path, monkeypatch, golden):
    snap = make_cache(tmp_path, "tiny-org", "Dia-tiny", os.path.join(FIXTURES, "dia-hf"), "0123abcd")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert dia.resolve_model("tiny-org/Dia-tiny") == str(snap)
    m = dia.Model("tiny-org/Dia-tiny", threads=1)
    assert m.path == str(snap)
    assert max_abs_diff(m.encode(TEXT0).output(0), golden.array("text0.enc_out")) <= 1e-4


def test_hf_home_and_revisions(tmp_path, monkeypatch):
    hub = tmp_path / "hfhome" / "hub"
    hub.mkdir(parents=True)
    old = make_cache(hub, "o", "m", os.path.join(FIXTURES, "dia-hf"), "1111", ref="v1")
    new = make_cache(hub, "o", "m2", os.path.join(FIXTURES, "dia-hf"), "2222", ref=None)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    assert dia.hub_cache_dir() == str(hub)
    assert dia.resolve_model("o/m@v1") == str(old)      # a named ref
    assert dia.resolve_model("o/m@1111") == str(old)    # a commit
    assert dia.resolve_model("o/m2") == str(new)        # no refs/main: the only snapshot
    assert dia.resolve_model("o/m") == str(old)         # no refs/main: the newest snapshot
    with pytest.raises(FileNotFoundError):
        dia.resolve_model("o/m@v2")                     # an unknown revision
    with pytest.raises(FileNotFoundError) as e:
        dia.resolve_model("o/not-downloaded")
    assert "dia download o/not-downloaded" in str(e.value)


def test_default_cache_location(tmp_path, monkeypatch):
    for v in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert dia.hub_cache_dir() == os.path.join(str(tmp_path), ".cache", "huggingface", "hub")


def test_local_paths_are_not_hub_ids(tmp_path):
    assert dia.resolve_model(os.path.join(FIXTURES, "dia-hf")) == os.path.join(FIXTURES, "dia-hf")
    assert dia.resolve_model("./relative/missing") == "./relative/missing"  # left to the library


@pytest.mark.skipif(not dia.lib().has("dia_dac_load"), reason="libdia does not export dia_dac_load yet")
def test_from_pretrained_with_hub_ids(tmp_path, monkeypatch):
    make_cache(tmp_path, "nari-labs", "Dia-tiny", os.path.join(FIXTURES, "dia-hf"), "aaaa")
    make_cache(tmp_path, "descript", "dac-tiny", os.path.join(FIXTURES, "dac-hf"), "bbbb")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    tts = dia.Dia.from_pretrained("nari-labs/Dia-tiny", dac="descript/dac-tiny", threads=1)
    assert tts.model.max_frames == 256
    assert tts.dac.sample_rate == 44100
    tts.close()
