"""Loading, versions, errors, logging, tokenizer."""
import os
import re

import pytest

import dia
from conftest import FIXTURES, TEXT0, TEXT1

HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "include", "dia.h")


def test_versions():
    assert dia.abi_version() == dia.EXPECTED_ABI_VERSION
    assert re.match(r"^\d+\.\d+\.\d+", dia.version())
    if os.path.exists(HEADER):
        with open(HEADER) as f:
            h = f.read()
        assert dia.version() == re.search(r'#define DIA_VERSION_STRING "([^"]+)"', h).group(1)
        assert dia.abi_version() == int(re.search(r"#define DIA_ABI_VERSION (\d+)", h).group(1))


def test_library_found_through_dia_library():
    path = os.environ.get("DIA_LIBRARY")
    if not path:
        pytest.skip("DIA_LIBRARY not set")
    assert os.path.realpath(dia.lib().path) == os.path.realpath(path)


def test_status_strings():
    assert dia.status_string(dia.DIA_OK) == "ok"
    assert dia.status_string(dia.DIA_ERR_INVALID_ARG) == "invalid argument"
    assert dia.STATUS_NAMES[dia.DIA_ERR_CANCELLED] == "DIA_ERR_CANCELLED"


def test_load_library_errors():
    keep = dia.lib().path
    with pytest.raises(dia.LibraryNotFound):
        dia.load_library("/nonexistent/libdia.so.0")
    dia.load_library(keep)
    assert dia.abi_version() == dia.EXPECTED_ABI_VERSION


def test_missing_model_raises_dia_error(tmp_path):
    with pytest.raises(dia.DiaError) as e:
        dia.Model(str(tmp_path / "nothing-here"))
    assert e.value.status == dia.DIA_ERR_IO
    assert e.value.function == "dia_model_load"
    assert str(tmp_path) in e.value.message           # the library's own reason, naming the file
    assert e.value.message == dia.last_error()


def test_bad_config_raises_bad_model(tmp_path):
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(dia.DiaError) as e:
        dia.Model(str(tmp_path))
    assert e.value.status == dia.DIA_ERR_BAD_MODEL
    assert e.value.message


def test_bad_option_raises_invalid_arg():
    with pytest.raises(dia.DiaError) as e:
        dia.Model(os.path.join(FIXTURES, "dia-hf"), dtype="f64")
    assert e.value.status == dia.DIA_ERR_INVALID_ARG
    assert "f64" in e.value.message
    with pytest.raises(dia.DiaError) as e:
        dia.Model(os.path.join(FIXTURES, "dia-hf"), backend="tpu")
    assert e.value.status == dia.DIA_ERR_INVALID_ARG
    with pytest.raises(dia.DiaError) as e:
        dia.Model(os.path.join(FIXTURES, "dia-hf"), encoder_memory="disk")
    assert e.value.status == dia.DIA_ERR_INVALID_ARG


def test_encoder_memory_option_loads():
    # on the CPU the weights already are in host memory: accepted, same model
    m = dia.Model(os.path.join(FIXTURES, "dia-hf"), encoder_memory="host")
    assert m.info("decoder_layers") > 0


def test_log_callback_receives_the_error():
    lines = []
    dia.set_log_callback(lambda level, msg: lines.append((level, msg)))
    try:
        with pytest.raises(dia.DiaError) as e:
            dia.Model(os.path.join(FIXTURES, "dia-hf"), threads="many")
    finally:
        dia.set_log_callback(None)
    assert (0, e.value.message) in lines


def test_tokenize(golden):
    for text, name in ((TEXT0, "text0.ids"), (TEXT1, "text1.ids")):
        want, _ = golden.flat(name)
        assert dia.tokenize(text) == want
    assert dia.tokenize("[S1] a[S2]b") == [1, 32, 97, 2, 98]
