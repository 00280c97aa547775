"""ctypes loading of libdia and the prototypes of include/dia.h.

The library is found, in order, through:
  1. the DIA_LIBRARY environment variable (a path to libdia.so*, or a directory holding it);
  2. ``pkg-config --variable=libdir dia``;
  3. ``ctypes.util.find_library("dia")`` (ldconfig's cache);
  4. the usual prefixes (/usr/local/lib, /usr/lib, /usr/lib/<multiarch>, /opt/libdia/lib) and a
     source checkout's build/lib next to bindings/python.
Its ABI version (dia_abi_version()) must equal EXPECTED_ABI_VERSION.
"""
import ctypes
import ctypes.util
import os
import subprocess
import threading

EXPECTED_ABI_VERSION = 0
SONAME = "libdia.so.%d" % EXPECTED_ABI_VERSION

# dia_status values (include/dia.h)
DIA_OK = 0
STATUS_NAMES = {
    0: "DIA_OK",
    1: "DIA_ERR_INVALID_ARG",
    2: "DIA_ERR_IO",
    3: "DIA_ERR_BAD_MODEL",
    4: "DIA_ERR_OUT_OF_MEMORY",
    5: "DIA_ERR_CAPACITY",
    6: "DIA_ERR_TEXT_TOO_LONG",
    7: "DIA_ERR_BACKEND",
    8: "DIA_ERR_BAD_AUDIO",
    9: "DIA_ERR_CANCELLED",
    10: "DIA_ERR_INTERNAL",
}
for _v, _n in STATUS_NAMES.items():
    globals()[_n] = _v

DIA_ENCODE_TRUNCATE = 1
DIA_AUDIO_FLOAT = 1


class DiaError(Exception):
    """A libdia call failed. ``status`` is the dia_status code (an int, see STATUS_NAMES),
    ``status_name`` its name, ``message`` the library's dia_last_error() text, ``function`` the C
    function that failed."""

    def __init__(self, status, message, function=None):
        self.status = status
        self.status_name = STATUS_NAMES.get(status, "DIA_ERR_%s" % status)
        self.message = message
        self.function = function
        where = "%s: " % function if function else ""
        super().__init__("%s%s: %s" % (where, self.status_name, message))


class LibraryNotFound(ImportError):
    """libdia could not be found or has the wrong ABI version."""


c_float_p = ctypes.POINTER(ctypes.c_float)
c_int32_p = ctypes.POINTER(ctypes.c_int32)
c_char_pp = ctypes.POINTER(ctypes.c_char_p)
c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_size_t = ctypes.c_size_t
c_double = ctypes.c_double
c_int64 = ctypes.c_int64
c_uint64 = ctypes.c_uint64
c_char_p = ctypes.c_char_p
c_status = "dia_status"  # marker: returns enum dia_status; checked, raises DiaError

FRAME_FN = ctypes.CFUNCTYPE(c_int, c_int, c_int, c_int32_p, c_void_p)
LOG_FN = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_void_p)

P = c_void_p  # every opaque handle
pp = ctypes.POINTER(c_void_p)

# name: (restype, argtypes); restype c_status means "raise DiaError unless DIA_OK"
PROTOTYPES = {
    "dia_version_string": (c_char_p, []),
    "dia_abi_version": (c_int, []),
    "dia_status_string": (c_char_p, [c_int]),
    "dia_set_log_callback": (None, [LOG_FN, c_void_p]),
    "dia_set_log_level": (None, [c_int]),
    "dia_last_error": (c_char_p, []),
    "dia_free": (None, [c_void_p]),
    "dia_options_new": (c_status, [pp]),
    "dia_options_free": (None, [P]),
    "dia_options_set": (c_status, [P, c_char_p, c_char_p]),
    "dia_model_load": (c_status, [c_char_p, P, pp]),
    "dia_model_free": (None, [P]),
    "dia_model_info": (c_status, [P, c_char_p, ctypes.POINTER(c_int64)]),
    "dia_tokenize": (c_status, [c_char_p, c_int32_p, c_size_t, ctypes.POINTER(c_size_t)]),
    "dia_encode": (c_status, [P, c_char_pp, c_int, c_uint, pp]),
    "dia_encoder_state_free": (None, [P]),
    "dia_encoder_state_batch": (c_status, [P, ctypes.POINTER(c_int)]),
    "dia_encoder_state_length": (c_status, [P, c_int, ctypes.POINTER(c_int)]),
    "dia_encoder_state_output": (c_status, [P, c_int, c_float_p, c_size_t]),
    "dia_kvcache_new": (c_status, [P, c_int, c_int, pp]),
    "dia_kvcache_free": (None, [P]),
    "dia_kvcache_reset": (c_status, [P]),
    "dia_kvcache_truncate": (c_status, [P, c_int]),
    "dia_kvcache_length": (c_status, [P, c_int, ctypes.POINTER(c_int)]),
    "dia_kvcache_capacity": (c_status, [P, ctypes.POINTER(c_int)]),
    "dia_kvcache_read": (c_status, [P, c_int, c_int, c_int, c_float_p, c_size_t]),
    "dia_decoder_state_new": (c_status, [P, P, P, pp]),
    "dia_decoder_state_free": (None, [P]),
    "dia_decoder_prefill": (c_status, [P, c_int32_p, c_int, c_float_p]),
    "dia_decoder_step": (c_status, [P, c_int32_p]),
    "dia_decoder_logits": (c_status, [P, c_float_p, c_size_t]),
    "dia_gen_params_new": (c_status, [pp]),
    "dia_gen_params_free": (None, [P]),
    "dia_gen_params_set": (c_status, [P, c_char_p, c_double]),
    "dia_gen_params_get": (c_status, [P, c_char_p, ctypes.POINTER(c_double)]),
    "dia_sampler_probs": (c_status, [P, c_float_p, c_float_p, c_float_p]),
    "dia_sample_frame": (c_status, [P, c_float_p, c_float_p, c_uint64, c_uint64, c_int32_p]),
    "dia_generate": (c_status, [P, P, c_int, c_char_pp, ctypes.POINTER(c_int32_p), ctypes.POINTER(c_int),
                                FRAME_FN, c_void_p, pp]),
    "dia_codes_free": (None, [P]),
    "dia_codes_batch": (c_int, [P]),
    "dia_codes_frames": (c_int, [P, c_int]),
    "dia_codes_data": (c_int32_p, [P, c_int]),
    "dia_dac_load": (c_status, [c_char_p, P, pp]),
    "dia_dac_free": (None, [P]),
    "dia_dac_info": (c_status, [P, c_char_p, ctypes.POINTER(c_int64)]),
    "dia_dac_decode": (c_status, [P, c_int32_p, c_int, ctypes.POINTER(c_float_p), ctypes.POINTER(c_size_t)]),
    "dia_dac_decode_range": (c_status, [P, c_int32_p, c_int, c_int, c_int, c_float_p]),
    "dia_dac_encode": (c_status, [P, c_float_p, c_size_t, ctypes.POINTER(c_int32_p), ctypes.POINTER(c_int)]),
    "dia_audio_read": (c_status, [c_char_p, c_int, ctypes.POINTER(c_float_p), ctypes.POINTER(c_size_t)]),
    "dia_audio_write": (c_status, [c_char_p, c_float_p, c_size_t, c_int, c_uint]),
}


def _candidates():
    env = os.environ.get("DIA_LIBRARY")
    if env:
        if os.path.isdir(env):
            return [os.path.join(env, n) for n in (SONAME, "libdia.so")], True
        return [env], True
    out = []
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "dia"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if libdir:
            out += [os.path.join(libdir, SONAME), os.path.join(libdir, "libdia.so")]
    except (OSError, subprocess.SubprocessError):
        pass
    found = ctypes.util.find_library("dia")
    if found:
        out.append(found)
    here = os.path.dirname(os.path.abspath(__file__))
    checkout = os.path.normpath(os.path.join(here, "..", "..", "..", "build", "lib"))
    for d in ("/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
              "/usr/local/lib64", "/usr/lib64", "/opt/libdia/lib", checkout):
        out += [os.path.join(d, SONAME), os.path.join(d, "libdia.so")]
    return out, False


class _Missing:
    """Stands in for a function that this libdia does not export."""

    def __init__(self, name, path):
        self.name, self.path = name, path

    def __call__(self, *args):
        raise DiaError(DIA_ERR_INTERNAL, "%s does not export %s (a libdia older than these bindings?)"
                       % (self.path, self.name), self.name)


class Library:
    """The loaded libdia: one attribute per C function (status-returning ones raise DiaError)."""

    def __init__(self, path=None):
        if path is None:
            cands, explicit = _candidates()
        else:
            cands, explicit = [path], True
        errors = []
        self.cdll = None
        for c in cands:
            if not explicit and os.path.sep in c and not os.path.exists(c):
                continue
            try:
                self.cdll = ctypes.CDLL(c)
                self.path = c
                break
            except OSError as e:
                errors.append("%s: %s" % (c, e))
        if self.cdll is None:
            raise LibraryNotFound("libdia not found; set DIA_LIBRARY to the path of libdia.so, or install it "
                                  "where pkg-config finds it. Tried: " + ("; ".join(errors) or ", ".join(cands)))
        self.missing = []
        for name, (restype, argtypes) in PROTOTYPES.items():
            try:
                fn = getattr(self.cdll, name)
            except AttributeError:
                self.missing.append(name)
                setattr(self, name, _Missing(name, self.path))
                continue
            fn.argtypes = argtypes
            if restype is c_status:
                fn.restype = c_int
                fn.errcheck = self._check
            else:
                fn.restype = restype
            setattr(self, name, fn)
        abi = self.dia_abi_version()
        if abi != EXPECTED_ABI_VERSION:
            raise LibraryNotFound("%s has ABI version %d, these bindings need %d" % (self.path, abi,
                                                                                      EXPECTED_ABI_VERSION))

    def _check(self, result, func, args):
        if result != DIA_OK:
            msg = self.cdll.dia_last_error
            msg.restype = c_char_p
            text = (msg() or b"").decode("utf-8", "replace")
            raise DiaError(result, text, func.__name__)
        return result

    def has(self, name):
        """True if the library exports the C function `name`."""
        return name not in self.missing


_lock = threading.Lock()
_library = None


def lib():
    """The process-wide Library (loaded on first use)."""
    global _library
    if _library is None:
        with _lock:
            if _library is None:
                _library = Library()
    return _library


def load_library(path=None):
    """Load libdia from `path` (or search again) and make it the process-wide library."""
    global _library
    with _lock:
        _library = Library(path)
    return _library
