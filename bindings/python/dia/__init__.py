"""dia - Python bindings of libdia, the C engine for the Dia text-to-dialogue model.

ctypes only; numpy is used when installed (arrays come back as numpy arrays, else as
array.array / nested lists).

    import dia
    tts = dia.Dia.from_pretrained("nari-labs/Dia-1.6B-0626", dac="descript/dac_44khz")
    audio = tts.generate("[S1] Dia is an open weights text to dialogue model. [S2] Try it now!")
    tts.save_audio("out.wav", audio)

libdia is found through DIA_LIBRARY, pkg-config or the usual library paths (see dia._lib).
Errors of the library raise dia.DiaError carrying its dia_last_error() message.
"""
from ._arrays import HAVE_NUMPY
from ._lib import (EXPECTED_ABI_VERSION, STATUS_NAMES, DiaError, LibraryNotFound, lib, load_library,
                   DIA_OK, DIA_ERR_INVALID_ARG, DIA_ERR_IO, DIA_ERR_BAD_MODEL, DIA_ERR_OUT_OF_MEMORY,
                   DIA_ERR_CAPACITY, DIA_ERR_TEXT_TOO_LONG, DIA_ERR_BACKEND, DIA_ERR_BAD_AUDIO,
                   DIA_ERR_CANCELLED, DIA_ERR_INTERNAL)
from ._hub import hub_cache_dir, resolve as resolve_model
from ._api import (SAMPLE_RATE, Dac, DecoderState, Dia, EncoderState, GenParams, KvCache, Model, abi_version,
                   last_error, load_audio, sample_frame, sampler_probs, save_audio, set_log_callback, set_log_level,
                   status_string, tokenize, version)

__version__ = "0.1.0"

__all__ = [
    "Dia", "Model", "EncoderState", "KvCache", "DecoderState", "GenParams", "Dac", "DiaError", "LibraryNotFound",
    "tokenize", "sampler_probs", "sample_frame", "load_audio", "save_audio", "version", "abi_version",
    "status_string", "last_error", "set_log_level", "set_log_callback", "load_library", "lib", "resolve_model",
    "hub_cache_dir", "SAMPLE_RATE", "HAVE_NUMPY", "EXPECTED_ABI_VERSION", "STATUS_NAMES",
]
