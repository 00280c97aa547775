"""Python wrappers of libdia's handles (ctypes only; numpy used when present)."""
import ctypes
import os
import random

from . import _arrays
from ._arrays import as_c, empty, result
from ._hub import resolve
from ._lib import DIA_AUDIO_FLOAT, DIA_ENCODE_TRUNCATE, FRAME_FN, DiaError, lib, DIA_ERR_CANCELLED

SAMPLE_RATE = 44100


def _b(s):
    return os.fsencode(s) if not isinstance(s, bytes) else s


def _t(s):
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def version():
    """The loaded library's version string, e.g. "0.1.0"."""
    return lib().dia_version_string().decode()


def abi_version():
    return lib().dia_abi_version()


def status_string(status):
    return lib().dia_status_string(int(status)).decode()


def last_error():
    return (lib().dia_last_error() or b"").decode("utf-8", "replace")


def set_log_level(level):
    """0 = errors, 1 = + warnings (default), 2 = + info, 3 = + debug."""
    lib().dia_set_log_level(int(level))


_log_keep = None


def set_log_callback(fn):
    """Route libdia's log lines to fn(level, message) (None restores the default: stderr)."""
    global _log_keep
    L = lib()
    if fn is None:
        L.dia_set_log_callback(L.dia_set_log_callback.argtypes[0](), None)  # NULL: the default
        _log_keep = None  # only now: the library no longer holds the old trampoline
        return

    def cb(level, msg, user):
        try:
            fn(level, msg.decode("utf-8", "replace"))
        except Exception:  # never let a Python exception cross the C frames
            pass
    new = L.dia_set_log_callback.argtypes[0](cb)
    L.dia_set_log_callback(new, None)
    _log_keep = new  # keep the trampoline alive while the library may call it


class _Options:
    """dia_options built from keyword values (None = library default)."""

    def __init__(self, backend=None, dtype=None, threads=None, device=None, encoder_memory=None):
        self.L = lib()
        self.h = ctypes.c_void_p()
        self.L.dia_options_new(ctypes.byref(self.h))
        for k, v in (("backend", backend), ("dtype", dtype), ("threads", threads), ("device", device),
                     ("encoder_memory", encoder_memory)):
            if v is not None:
                self.L.dia_options_set(self.h, k.encode(), str(v).encode())

    def __del__(self):
        if getattr(self, "h", None):
            self.L.dia_options_free(self.h)
            self.h = None


class _Handle:
    """Owner of one C handle. A handle that others depend on (a model under its encoder states,
    caches and decoders; an encoder state and cache under their decoder) is freed only after
    all of its dependents, whatever order close() or the garbage collector runs them in."""
    _free = None
    _h = None
    _parents = ()
    _children = 0
    _closing = False

    def _adopt(self, *parents):
        self._parents = parents
        for p in parents:
            p._children += 1

    def close(self):
        """Release the handle (deferred while dependents are alive). Further use raises ValueError."""
        self._closing = True
        self._release()

    def _release(self):
        if not self._closing or self._children > 0:
            return
        h, self._h = self._h, None
        if h:
            getattr(self._L, self._free)(h)
            parents, self._parents = self._parents, ()
            for p in parents:
                p._children -= 1
                p._release()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def handle(self):
        if self._closing or not self._h:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._h


def tokenize(text):
    """Encoder input ids of `text`: UTF-8 bytes with [S1] -> 1 and [S2] -> 2 (a list of ints)."""
    L = lib()
    n = ctypes.c_size_t()
    L.dia_tokenize(_t(text), None, 0, ctypes.byref(n))
    buf = empty(n.value, "i32")
    L.dia_tokenize(_t(text), buf, n.value, ctypes.byref(n))
    return list(buf)


class _Loaded(_Handle):
    """A handle loaded from a checkpoint path with options, with integer facts by key
    (dia_model_* / dia_dac_*: the subclass names the load and info functions)."""
    _load = _info = None

    def __init__(self, path, backend="cpu", dtype=None, threads=None, device=None, encoder_memory=None):
        self._L = lib()
        self._h = None
        self.path = resolve(path)
        opts = _Options(backend, dtype, threads, device, encoder_memory)
        h = ctypes.c_void_p()
        getattr(self._L, self._load)(_b(self.path), opts.h, ctypes.byref(h))
        self._h = h

    def info(self, key):
        v = ctypes.c_int64()
        getattr(self._L, self._info)(self.handle, key.encode(), ctypes.byref(v))
        return v.value


class Model(_Loaded):
    """A loaded Dia checkpoint (dia_model). `path` is a directory or .safetensors file, or a hub id
    found in the local Hugging Face cache. Read-only once loaded; may be shared across threads."""
    _free, _load, _info = "dia_model_free", "dia_model_load", "dia_model_info"

    @property
    def channels(self):
        return self.info("channels")

    @property
    def vocab(self):
        return self.info("vocab")

    @property
    def max_frames(self):
        return self.info("max_frames")

    @property
    def text_length(self):
        return self.info("text_length")

    @property
    def delays(self):
        return [self.info("delay.%d" % c) for c in range(self.channels)]

    def encode(self, texts, truncate=False):
        """Encode one text or a list of texts -> EncoderState."""
        return EncoderState(self, texts, truncate)

    def kvcache(self, batch=1, capacity=None):
        return KvCache(self, batch, self.max_frames if capacity is None else capacity)

    def decoder(self, encoder_state, cache):
        return DecoderState(self, encoder_state, cache)


class EncoderState(_Handle):
    _free = "dia_encoder_state_free"

    def __init__(self, model, texts, truncate=False):
        self._L = lib()
        self._h = None
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        self.model = model  # keeps the model alive
        arr = (ctypes.c_char_p * len(texts))(*[_t(t) for t in texts])
        h = ctypes.c_void_p()
        self._L.dia_encode(model.handle, arr, len(texts), DIA_ENCODE_TRUNCATE if truncate else 0, ctypes.byref(h))
        self._h = h
        self._adopt(model)

    @property
    def batch(self):
        v = ctypes.c_int()
        self._L.dia_encoder_state_batch(self.handle, ctypes.byref(v))
        return v.value

    def length(self, item=0):
        v = ctypes.c_int()
        self._L.dia_encoder_state_length(self.handle, item, ctypes.byref(v))
        return v.value

    def output(self, item=0):
        """Encoder output of `item`, float32 [2, L, encoder_width] (unconditional row, conditional row)."""
        L_ = self.length(item)
        D = self.model.info("encoder_width")
        n = 2 * L_ * D
        buf = empty(n, "f32")
        self._L.dia_encoder_state_output(self.handle, item, buf, n)
        return result(buf, (2, L_, D), "f32")


class KvCache(_Handle):
    _free = "dia_kvcache_free"

    def __init__(self, model, batch, capacity):
        self._L = lib()
        self._h = None
        self.model = model
        self.batch = batch
        h = ctypes.c_void_p()
        self._L.dia_kvcache_new(model.handle, batch, capacity, ctypes.byref(h))
        self._h = h
        self._adopt(model)

    def reset(self):
        self._L.dia_kvcache_reset(self.handle)

    def truncate(self, length):
        self._L.dia_kvcache_truncate(self.handle, length)

    def length(self, row=0):
        v = ctypes.c_int()
        self._L.dia_kvcache_length(self.handle, row, ctypes.byref(v))
        return v.value

    @property
    def capacity(self):
        v = ctypes.c_int()
        self._L.dia_kvcache_capacity(self.handle, ctypes.byref(v))
        return v.value

    def read(self, layer, which, row):
        """K (which=0) or V (which=1) of one layer and row: float32 [kv_heads, length, head_dim]."""
        length = self.length(row)
        H, hd = self.model.info("kv_heads"), self.model.info("head_dim")
        n = H * length * hd
        buf = empty(max(n, 1), "f32")
        self._L.dia_kvcache_read(self.handle, layer, which, row, buf, n)
        return result(buf, (H, length, hd), "f32")


class DecoderState(_Handle):
    _free = "dia_decoder_state_free"

    def __init__(self, model, encoder_state, cache):
        self._L = lib()
        self._h = None
        self.model, self.encoder_state, self.cache = model, encoder_state, cache  # kept alive
        h = ctypes.c_void_p()
        self._L.dia_decoder_state_new(model.handle, encoder_state.handle, cache.handle, ctypes.byref(h))
        self._h = h
        self._adopt(model, encoder_state, cache)
        self.batch = encoder_state.batch
        self.C, self.V = model.channels, model.vocab

    def prefill(self, tokens, logits=True):
        """Run T positions of the delayed token grid `tokens`, int32 [B, T, C] (or [T, C] for B = 1).
        Returns the logits float32 [2B, T, C, V] (position t predicts t+1), or None with logits=False."""
        ptr, keep, shape = as_c(tokens, "i32")
        if len(shape) == 2:
            shape = (1,) + shape
        if len(shape) != 3 or shape[0] != self.batch or shape[2] != self.C:
            raise ValueError("tokens must be [B=%d, T, C=%d], got %s" % (self.batch, self.C, shape))
        T = shape[1]
        if not logits:
            self._L.dia_decoder_prefill(self.handle, ptr, T, None)
            return None
        n = 2 * self.batch * T * self.C * self.V
        out = empty(n, "f32")
        self._L.dia_decoder_prefill(self.handle, ptr, T, out)
        return result(out, (2 * self.batch, T, self.C, self.V), "f32")

    def step(self, tokens):
        """One position: tokens int32 [B, C] (or [C] for B = 1). Returns nothing; see logits()."""
        ptr, keep, shape = as_c(tokens, "i32")
        size = 1
        for s in shape:
            size *= s
        if size != self.batch * self.C:
            raise ValueError("tokens must be [B=%d, C=%d], got %s" % (self.batch, self.C, shape))
        self._L.dia_decoder_step(self.handle, ptr)

    def logits(self):
        """Logits of the last position run, float32 [2B, C, V]."""
        n = 2 * self.batch * self.C * self.V
        out = empty(n, "f32")
        self._L.dia_decoder_logits(self.handle, out, n)
        return result(out, (2 * self.batch, self.C, self.V), "f32")


class GenParams(_Handle):
    """dia_gen_params: max_tokens, cfg_scale, temperature, top_p, cfg_filter_top_k, seed."""
    _free = "dia_gen_params_free"
    KEYS = ("max_tokens", "cfg_scale", "temperature", "top_p", "cfg_filter_top_k", "seed")

    def __init__(self, **kw):
        self._L = lib()
        self._h = None
        h = ctypes.c_void_p()
        self._L.dia_gen_params_new(ctypes.byref(h))
        self._h = h
        for k, v in kw.items():
            if v is not None:
                self[k] = v

    def __setitem__(self, key, value):
        self._L.dia_gen_params_set(self.handle, key.encode(), float(value))

    def __getitem__(self, key):
        v = ctypes.c_double()
        self._L.dia_gen_params_get(self.handle, key.encode(), ctypes.byref(v))
        return v.value

    def as_dict(self):
        return {k: self[k] for k in self.KEYS}


# dia_sampler_probs / dia_sample_frame work on Dia-1.6B's frame shape
CHANNELS, VOCAB = 9, 1028


def _rows(cond, uncond):
    pc, kc, sc = as_c(cond, "f32")
    pu, ku, su = as_c(uncond, "f32")
    for name, shape in (("cond", sc), ("uncond", su)):
        n = 1
        for d in shape:
            n *= d
        if n != CHANNELS * VOCAB:
            raise ValueError("%s must be [%d, %d] logits, got shape %s" % (name, CHANNELS, VOCAB, shape))
    return pc, pu, (kc, ku)


def sampler_probs(params, cond, uncond):
    """The sampling distribution for one frame: float32 [C, V] from cond/uncond logits [C, V]."""
    pc, pu, keep = _rows(cond, uncond)
    out = empty(CHANNELS * VOCAB, "f32")
    lib().dia_sampler_probs(params.handle, pc, pu, out)
    return result(out, (CHANNELS, VOCAB), "f32")


def sample_frame(params, cond, uncond, item, step):
    """Codes int32 [C] sampled from cond/uncond [C, V] with the counter-based generator."""
    pc, pu, keep = _rows(cond, uncond)
    out = empty(CHANNELS, "i32")
    lib().dia_sample_frame(params.handle, pc, pu, int(item), int(step), out)
    return result(out, (CHANNELS,), "i32")


class Dac(_Loaded):
    """The DAC codec (dia_dac): codes [frames, 9] <-> mono float32 audio at 44.1 kHz."""
    _free, _load, _info = "dia_dac_free", "dia_dac_load", "dia_dac_info"

    @property
    def sample_rate(self):
        return self.info("sample_rate")

    @property
    def hop_length(self):
        return self.info("hop_length")

    def decode(self, codes):
        """int32 codes [frames, codebooks] -> float32 audio [frames * hop]."""
        ptr, keep, shape = as_c(codes, "i32")
        frames = shape[0] if shape else 0
        if frames == 0:
            return result(None, (0,), "f32")
        Q = self.info("codebooks")
        if len(shape) != 2 or shape[1] != Q:
            raise ValueError("codes must be [frames, %d], got shape %s" % (Q, shape))
        audio = ctypes.POINTER(ctypes.c_float)()
        n = ctypes.c_size_t()
        self._L.dia_dac_decode(self.handle, ptr, frames, ctypes.byref(audio), ctypes.byref(n))
        try:
            return result(audio, (n.value,), "f32")
        finally:
            self._L.dia_free(audio)

    @property
    def context_frames(self):
        """Frames of right context a decoded frame depends on (see decode_range)."""
        return self.info("context_frames")

    def decode_range(self, codes, first, count):
        """Streaming decode: audio of frames [first, first + count) of the frames known so far
        (codes [known, codebooks]); equal to the same samples of decode(all frames) once
        context_frames more frames are known, or the sequence is complete."""
        ptr, keep, shape = as_c(codes, "i32")
        Q = self.info("codebooks")
        if len(shape) != 2 or shape[1] != Q:
            raise ValueError("codes must be [frames, %d], got shape %s" % (Q, shape))
        n = int(count) * self.hop_length
        out = (ctypes.c_float * max(n, 1))()
        self._L.dia_dac_decode_range(self.handle, ptr, shape[0], int(first), int(count), out)
        return result(ctypes.cast(out, ctypes.POINTER(ctypes.c_float)), (n,), "f32")

    def encode(self, audio):
        """Mono float32 audio at 44.1 kHz -> int32 codes [frames, codebooks]."""
        ptr, keep, shape = as_c(audio, "f32")
        if len(shape) != 1:
            raise ValueError("audio must be 1-D (mono), got shape %s" % (shape,))
        codes = ctypes.POINTER(ctypes.c_int32)()
        frames = ctypes.c_int()
        self._L.dia_dac_encode(self.handle, ptr, shape[0], ctypes.byref(codes), ctypes.byref(frames))
        try:
            return result(codes, (frames.value, self.info("codebooks")), "i32")
        finally:
            self._L.dia_free(codes)


def load_audio(path, sample_rate=SAMPLE_RATE):
    """Read an audio file as mono float32 resampled to `sample_rate`."""
    audio = ctypes.POINTER(ctypes.c_float)()
    n = ctypes.c_size_t()
    lib().dia_audio_read(_b(os.fspath(path)), int(sample_rate), ctypes.byref(audio), ctypes.byref(n))
    try:
        return result(audio, (n.value,), "f32")
    finally:
        lib().dia_free(audio)


def save_audio(path, audio, sample_rate=SAMPLE_RATE, float32=False):
    """Write mono float32 audio; the format follows the extension (.wav, .flac, .ogg). 16-bit PCM
    WAV unless float32=True."""
    ptr, keep, shape = as_c(audio, "f32")
    if len(shape) != 1:
        raise ValueError("audio must be 1-D (mono), got shape %s" % (shape,))
    lib().dia_audio_write(_b(os.fspath(path)), ptr, shape[0], int(sample_rate), DIA_AUDIO_FLOAT if float32 else 0)


def _is_codes(x):
    """A 2-D integer array-like [frames, 9]."""
    if _arrays.np is not None and isinstance(x, _arrays.np.ndarray):
        return x.ndim == 2 and x.dtype.kind in "iu"
    return isinstance(x, (list, tuple)) and len(x) > 0 and isinstance(x[0], (list, tuple))


class Dia:
    """Text to dialogue, as nari-labs/dia's Dia class: from_pretrained(), generate(), save_audio().

    >>> tts = Dia.from_pretrained("nari-labs/Dia-1.6B-0626", dac="descript/dac_44khz")
    >>> audio = tts.generate("[S1] Hello. [S2] Hi there!")
    >>> tts.save_audio("out.wav", audio)
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, model, dac=None):
        self.model = model
        self.dac = dac
        self.last_seed = None

    @classmethod
    def from_pretrained(cls, model, dac=None, backend="cpu", dtype=None, threads=None, device=None):
        """`model`, `dac`: a directory (or .safetensors file) or a hub id resolved from the local
        Hugging Face cache. dac=None loads no codec: generate_codes() works, generate() and audio
        prompts need one. backend "cpu" or "cuda"; dtype None (checkpoint's/"auto"), "f32", "bf16"."""
        m = Model(model, backend=backend, dtype=dtype, threads=threads, device=device)
        d = Dac(dac, backend=backend, threads=threads, device=device) if dac is not None else None
        return cls(m, d)

    def close(self):
        if self.dac is not None:
            self.dac.close()
        self.model.close()

    def _need_dac(self, why):
        if self.dac is None:
            raise DiaError(1, "%s needs the DAC codec: pass dac= to Dia.from_pretrained" % why, "Dia")
        return self.dac

    def _prompt_codes(self, p):
        if p is None:
            return None
        if isinstance(p, (str, bytes, os.PathLike)):
            return self._need_dac("an audio prompt").encode(load_audio(p, self.sample_rate))
        if _is_codes(p):
            return p
        return self._need_dac("an audio prompt").encode(p)

    def generate_codes(self, text, audio_prompt=None, max_tokens=3072, cfg_scale=3.0, temperature=1.2, top_p=0.95,
                       cfg_filter_top_k=45, seed=None, on_frame=None):
        """DAC codes int32 [frames, 9] for one text (a list of those for a list of texts).

        audio_prompt: None, an audio file path, mono float32 audio at 44.1 kHz, or codes
        [frames, 9]; for a list of texts, a list with one such entry (or None) per text. The
        prompt's transcript must begin the text. seed None picks a random seed (kept in
        self.last_seed). on_frame(item, frame, codes) is called for every final frame; returning
        True cancels (DiaError with status DIA_ERR_CANCELLED)."""
        single = isinstance(text, (str, bytes))
        texts = [text] if single else list(text)
        if not texts:
            return []
        B = len(texts)
        if single or audio_prompt is None or isinstance(audio_prompt, (str, bytes, os.PathLike)):
            prompts = [audio_prompt] * B if not single else [audio_prompt]
            if not single and audio_prompt is not None:
                raise ValueError("for a list of texts, audio_prompt must be a list (one entry per text)")
        else:
            prompts = list(audio_prompt)
            if len(prompts) != B:
                raise ValueError("audio_prompt has %d entries for %d texts" % (len(prompts), B))
        if seed is None:
            seed = random.SystemRandom().randrange(1 << 31)
        self.last_seed = seed
        params = GenParams(max_tokens=max_tokens, cfg_scale=cfg_scale, temperature=temperature, top_p=top_p,
                           cfg_filter_top_k=cfg_filter_top_k, seed=seed)
        L = lib()
        c_texts = (ctypes.c_char_p * B)(*[_t(t) for t in texts])
        keep = []
        c_prompts = (ctypes.POINTER(ctypes.c_int32) * B)()
        c_frames = (ctypes.c_int * B)()
        any_prompt = False
        for b, p in enumerate(prompts):
            codes = self._prompt_codes(p)
            if codes is None:
                continue
            ptr, k, shape = as_c(codes, "i32")
            if len(shape) != 2 or shape[1] != self.model.channels:
                raise ValueError("audio prompt codes must be [frames, %d], got %s" % (self.model.channels, shape))
            keep.append(k)
            c_prompts[b] = ptr
            c_frames[b] = shape[0]
            any_prompt = True
        errors = []
        if on_frame is not None:
            C = self.model.channels

            def cb(item, frame, codes, user):
                try:
                    return 1 if on_frame(item, frame, [codes[c] for c in range(C)]) else 0
                except BaseException as e:  # re-raised after dia_generate returns
                    errors.append(e)
                    return 1
            c_cb = FRAME_FN(cb)
        else:
            c_cb = FRAME_FN()
        out = ctypes.c_void_p()
        try:
            L.dia_generate(self.model.handle, params.handle, B, c_texts, c_prompts if any_prompt else None,
                           c_frames if any_prompt else None, c_cb, None, ctypes.byref(out))
        except DiaError as e:
            if errors and e.status == DIA_ERR_CANCELLED:
                raise errors[0]
            raise
        try:
            res = []
            C = self.model.channels
            for b in range(L.dia_codes_batch(out)):
                frames = L.dia_codes_frames(out, b)
                data = L.dia_codes_data(out, b)
                res.append(result(data, (frames, C), "i32"))
        finally:
            L.dia_codes_free(out)
        return res[0] if single else res

    def generate(self, text, audio_prompt=None, max_tokens=3072, cfg_scale=3.0, temperature=1.2, top_p=0.95,
                 cfg_filter_top_k=45, seed=None, on_frame=None):
        """Audio, mono float32 at 44.1 kHz, for one text (a list of those for a list of texts).
        Arguments as generate_codes(); needs the DAC."""
        dac = self._need_dac("generate()")
        codes = self.generate_codes(text, audio_prompt=audio_prompt, max_tokens=max_tokens, cfg_scale=cfg_scale,
                                    temperature=temperature, top_p=top_p, cfg_filter_top_k=cfg_filter_top_k,
                                    seed=seed, on_frame=on_frame)
        if isinstance(text, (str, bytes)):
            return dac.decode(codes)
        return [dac.decode(c) for c in codes]

    def save_audio(self, path, audio):
        save_audio(path, audio, self.sample_rate)
