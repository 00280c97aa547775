//! Safe Rust API of libdia, the C engine for the Dia text-to-dialogue model.
//!
//! ```no_run
//! use dia::{Dac, GenParams, Model, Options};
//! let model = Model::load("Dia-1.6B-0626", &Options::default())?;
//! let mut dac = Dac::load("dac_44khz", &Options::default())?;
//! let codes = model.generate(&["[S1] Hello. [S2] Hi!"], None, &GenParams::new()?, None)?;
//! let audio = dac.decode(&codes[0].data, codes[0].frames)?;
//! dia::write_audio("out.wav", &audio, 44100, false)?;
//! # Ok::<(), dia::Error>(())
//! ```
//!
//! Handles free themselves on drop. Borrowing mirrors the C lifetime rules: an [`EncoderState`]
//! and a [`KvCache`] borrow their [`Model`]; a [`DecoderState`] borrows an encoder state and
//! mutably borrows a cache. A `Model` is read-only after loading and is `Send + Sync`; the other
//! handles are `Send` but not `Sync` (one thread at a time, as include/dia.h requires).
//! Every library failure is an [`Error`] with the status and the library's message.

use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::ptr::{self, NonNull};

pub use dia_sys as sys;

/// Status of a failed call (the C `dia_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InvalidArg,
    Io,
    BadModel,
    OutOfMemory,
    Capacity,
    TextTooLong,
    Backend,
    BadAudio,
    Cancelled,
    Internal,
    /// A status this crate does not know (a newer library).
    Other(u32),
}

impl Status {
    fn from_raw(s: sys::dia_status) -> Status {
        match s {
            sys::DIA_ERR_INVALID_ARG => Status::InvalidArg,
            sys::DIA_ERR_IO => Status::Io,
            sys::DIA_ERR_BAD_MODEL => Status::BadModel,
            sys::DIA_ERR_OUT_OF_MEMORY => Status::OutOfMemory,
            sys::DIA_ERR_CAPACITY => Status::Capacity,
            sys::DIA_ERR_TEXT_TOO_LONG => Status::TextTooLong,
            sys::DIA_ERR_BACKEND => Status::Backend,
            sys::DIA_ERR_BAD_AUDIO => Status::BadAudio,
            sys::DIA_ERR_CANCELLED => Status::Cancelled,
            sys::DIA_ERR_INTERNAL => Status::Internal,
            other => Status::Other(other),
        }
    }
}

/// A failed libdia call: its status and the library's message (`dia_last_error()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn check(st: sys::dia_status) -> Result<()> {
    if st == sys::DIA_OK {
        return Ok(());
    }
    let message = unsafe { CStr::from_ptr(sys::dia_last_error()) }.to_string_lossy().into_owned();
    Err(Error { status: Status::from_raw(st), message })
}

fn invalid(message: String) -> Error {
    Error { status: Status::InvalidArg, message }
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| invalid(format!("string contains a NUL byte: {:?}", s)))
}

fn cpath(p: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| invalid(format!("path contains a NUL byte: {:?}", p)))
}

/// The loaded library's version, e.g. "0.1.0".
pub fn version() -> &'static str {
    unsafe { CStr::from_ptr(sys::dia_version_string()) }.to_str().unwrap_or("?")
}

/// The loaded library's ABI version (must equal [`sys::DIA_ABI_VERSION`]).
pub fn abi_version() -> i32 {
    unsafe { sys::dia_abi_version() }
}

/// Encoder input ids of `text`: UTF-8 bytes with "[S1]" -> 1 and "[S2]" -> 2.
pub fn tokenize(text: &str) -> Result<Vec<i32>> {
    let c = cstring(text)?;
    let mut len = 0usize;
    check(unsafe { sys::dia_tokenize(c.as_ptr(), ptr::null_mut(), 0, &mut len) })?;
    let mut ids = vec![0i32; len];
    check(unsafe { sys::dia_tokenize(c.as_ptr(), ids.as_mut_ptr(), len, &mut len) })?;
    ids.truncate(len);
    Ok(ids)
}

/// Loading options (backend, dtype, threads, CUDA device, encoder memory); `None` keeps the
/// library default.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub backend: Option<String>,
    pub dtype: Option<String>,
    pub threads: Option<u32>,
    pub device: Option<u32>,
    /// "device" (default) or "host": where the CUDA backend keeps the weights used once per text.
    pub encoder_memory: Option<String>,
}

impl Options {
    pub fn threads(mut self, n: u32) -> Self {
        self.threads = Some(n);
        self
    }
    pub fn backend(mut self, b: &str) -> Self {
        self.backend = Some(b.to_string());
        self
    }
    pub fn dtype(mut self, d: &str) -> Self {
        self.dtype = Some(d.to_string());
        self
    }
    pub fn encoder_memory(mut self, m: &str) -> Self {
        self.encoder_memory = Some(m.to_string());
        self
    }

    fn raw(&self) -> Result<RawOptions> {
        let mut o = ptr::null_mut();
        check(unsafe { sys::dia_options_new(&mut o) })?;
        let raw = RawOptions(o);
        let set = |k: &str, v: &str| -> Result<()> {
            let (k, v) = (cstring(k)?, cstring(v)?);
            check(unsafe { sys::dia_options_set(raw.0, k.as_ptr(), v.as_ptr()) })
        };
        if let Some(b) = &self.backend {
            set("backend", b)?;
        }
        if let Some(d) = &self.dtype {
            set("dtype", d)?;
        }
        if let Some(t) = self.threads {
            set("threads", &t.to_string())?;
        }
        if let Some(d) = self.device {
            set("device", &d.to_string())?;
        }
        if let Some(m) = &self.encoder_memory {
            set("encoder_memory", m)?;
        }
        Ok(raw)
    }
}

struct RawOptions(*mut sys::dia_options);

impl Drop for RawOptions {
    fn drop(&mut self) {
        unsafe { sys::dia_options_free(self.0) }
    }
}

/// A loaded Dia checkpoint.
pub struct Model {
    raw: NonNull<sys::dia_model>,
}

// dia.h: a dia_model is read-only after loading and may be shared by any number of threads.
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { sys::dia_model_free(self.raw.as_ptr()) }
    }
}

/// Output codes of one generated item: `frames` x `channels` int32, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codes {
    pub frames: usize,
    pub channels: usize,
    pub data: Vec<i32>,
}

impl Codes {
    /// The codes of frame `t` (one per channel).
    pub fn frame(&self, t: usize) -> &[i32] {
        &self.data[t * self.channels..(t + 1) * self.channels]
    }
}

struct FrameCtx<'f> {
    f: &'f mut dyn FnMut(usize, usize, &[i32]) -> bool,
    channels: usize,
    panic: Option<Box<dyn std::any::Any + Send + 'static>>,
}

unsafe extern "C" fn frame_trampoline(item: c_int, frame: c_int, codes: *const i32, user: *mut c_void) -> c_int {
    let ctx = &mut *(user as *mut FrameCtx);
    if ctx.panic.is_some() {
        return 1;
    }
    let codes = std::slice::from_raw_parts(codes, ctx.channels);
    let f = &mut ctx.f;
    // never unwind across the C frames: keep the panic and resume it after dia_generate returns
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item as usize, frame as usize, codes))) {
        Ok(stop) => stop as c_int,
        Err(p) => {
            ctx.panic = Some(p);
            1
        }
    }
}

impl Model {
    /// Load a checkpoint directory (config.json + model.safetensors or a sharded index) or a
    /// .safetensors file with config.json beside it.
    pub fn load<P: AsRef<Path>>(path: P, opts: &Options) -> Result<Model> {
        let p = cpath(path.as_ref())?;
        let o = opts.raw()?;
        let mut m = ptr::null_mut();
        check(unsafe { sys::dia_model_load(p.as_ptr(), o.0, &mut m) })?;
        NonNull::new(m).map(|raw| Model { raw }).ok_or_else(|| invalid("dia_model_load returned NULL".into()))
    }

    /// An integer fact by key ("channels", "vocab", "max_frames", "delay.3", ...).
    pub fn info(&self, key: &str) -> Result<i64> {
        let k = cstring(key)?;
        let mut v = 0i64;
        check(unsafe { sys::dia_model_info(self.raw.as_ptr(), k.as_ptr(), &mut v) })?;
        Ok(v)
    }

    fn info_usize(&self, key: &str) -> usize {
        self.info(key).map(|v| v as usize).unwrap_or(0)
    }
    pub fn channels(&self) -> usize {
        self.info_usize("channels")
    }
    pub fn vocab(&self) -> usize {
        self.info_usize("vocab")
    }
    pub fn max_frames(&self) -> usize {
        self.info_usize("max_frames")
    }
    pub fn delays(&self) -> Result<Vec<i64>> {
        (0..self.channels()).map(|c| self.info(&format!("delay.{}", c))).collect()
    }

    /// Encode a batch of texts (the CFG pair per item). `truncate` cuts texts longer than
    /// "text_length" instead of failing with [`Status::TextTooLong`].
    pub fn encode(&self, texts: &[&str], truncate: bool) -> Result<EncoderState<'_>> {
        let owned = texts.iter().map(|t| cstring(t)).collect::<Result<Vec<_>>>()?;
        let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let flags = if truncate { sys::DIA_ENCODE_TRUNCATE } else { 0 };
        let mut e = ptr::null_mut();
        check(unsafe { sys::dia_encode(self.raw.as_ptr(), ptrs.as_ptr(), ptrs.len() as c_int, flags, &mut e) })?;
        let raw = NonNull::new(e).ok_or_else(|| invalid("dia_encode returned NULL".into()))?;
        Ok(EncoderState { raw, model: self, _not_sync: PhantomData })
    }

    /// A self-attention cache for `batch` items of `capacity` positions.
    pub fn kvcache(&self, batch: usize, capacity: usize) -> Result<KvCache<'_>> {
        let mut c = ptr::null_mut();
        check(unsafe { sys::dia_kvcache_new(self.raw.as_ptr(), batch as c_int, capacity as c_int, &mut c) })?;
        let raw = NonNull::new(c).ok_or_else(|| invalid("dia_kvcache_new returned NULL".into()))?;
        Ok(KvCache { raw, model: self, _not_sync: PhantomData })
    }

    /// A decoder bound to `enc` and `cache` (same batch size).
    pub fn decoder<'a, 'm>(&'m self, enc: &'a EncoderState<'m>, cache: &'a mut KvCache<'m>) -> Result<DecoderState<'a, 'm>> {
        let mut d = ptr::null_mut();
        check(unsafe { sys::dia_decoder_state_new(self.raw.as_ptr(), enc.raw.as_ptr(), cache.raw.as_ptr(), &mut d) })?;
        let raw = NonNull::new(d).ok_or_else(|| invalid("dia_decoder_state_new returned NULL".into()))?;
        let batch = enc.batch()?;
        Ok(DecoderState { raw, enc, cache, batch, channels: self.channels(), vocab: self.vocab() })
    }

    /// Generate codes for a batch of texts. `prompts[b]` (if given) is an audio prompt of DAC
    /// codes [frames, channels] whose transcript begins texts[b]. `on_frame(item, frame, codes)`
    /// sees every final frame; returning true cancels ([`Status::Cancelled`]).
    pub fn generate(
        &self,
        texts: &[&str],
        prompts: Option<&[Option<&[i32]>]>,
        params: &GenParams,
        on_frame: Option<&mut dyn FnMut(usize, usize, &[i32]) -> bool>,
    ) -> Result<Vec<Codes>> {
        let channels = self.channels();
        let owned = texts.iter().map(|t| cstring(t)).collect::<Result<Vec<_>>>()?;
        let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let mut pp: Vec<*const i32> = Vec::new();
        let mut pf: Vec<c_int> = Vec::new();
        if let Some(ps) = prompts {
            if ps.len() != texts.len() {
                return Err(invalid(format!("{} prompts for {} texts", ps.len(), texts.len())));
            }
            for p in ps {
                match p {
                    Some(codes) => {
                        if channels == 0 || codes.len() % channels != 0 {
                            return Err(invalid(format!("prompt of {} codes is not [frames, {}]", codes.len(), channels)));
                        }
                        pp.push(codes.as_ptr());
                        pf.push((codes.len() / channels) as c_int);
                    }
                    None => {
                        pp.push(ptr::null());
                        pf.push(0);
                    }
                }
            }
        }
        let mut out = ptr::null_mut();
        let mut ctx: Option<FrameCtx> = on_frame.map(|f| FrameCtx { f, channels, panic: None });
        let (cb, user): (sys::dia_frame_fn, *mut c_void) = match ctx.as_mut() {
            Some(c) => (Some(frame_trampoline), c as *mut FrameCtx as *mut c_void),
            None => (None, ptr::null_mut()),
        };
        let st = unsafe {
            sys::dia_generate(
                self.raw.as_ptr(),
                params.raw.as_ptr(),
                ptrs.len() as c_int,
                ptrs.as_ptr(),
                if prompts.is_some() { pp.as_ptr() } else { ptr::null() },
                if prompts.is_some() { pf.as_ptr() } else { ptr::null() },
                cb,
                user,
                &mut out,
            )
        };
        if let Some(p) = ctx.as_mut().and_then(|c| c.panic.take()) {
            unsafe { sys::dia_codes_free(out) };
            std::panic::resume_unwind(p);
        }
        check(st)?;
        let mut res = Vec::new();
        unsafe {
            for b in 0..sys::dia_codes_batch(out) {
                let frames = sys::dia_codes_frames(out, b).max(0) as usize;
                let data = sys::dia_codes_data(out, b);
                let v = if frames == 0 || data.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(data, frames * channels).to_vec()
                };
                res.push(Codes { frames, channels, data: v });
            }
            sys::dia_codes_free(out);
        }
        Ok(res)
    }
}

/// Encoder output and cross-attention keys/values of a batch of texts.
pub struct EncoderState<'m> {
    raw: NonNull<sys::dia_encoder_state>,
    model: &'m Model,
    _not_sync: PhantomData<*mut ()>,
}

unsafe impl Send for EncoderState<'_> {}

impl Drop for EncoderState<'_> {
    fn drop(&mut self) {
        unsafe { sys::dia_encoder_state_free(self.raw.as_ptr()) }
    }
}

impl EncoderState<'_> {
    pub fn batch(&self) -> Result<usize> {
        let mut b: c_int = 0;
        check(unsafe { sys::dia_encoder_state_batch(self.raw.as_ptr(), &mut b) })?;
        Ok(b as usize)
    }
    /// Text length in bytes of item `item`.
    pub fn length(&self, item: usize) -> Result<usize> {
        let mut l: c_int = 0;
        check(unsafe { sys::dia_encoder_state_length(self.raw.as_ptr(), item as c_int, &mut l) })?;
        Ok(l as usize)
    }
    /// Encoder output of `item`: f32 [2, length, encoder_width] (unconditional, conditional).
    pub fn output(&self, item: usize) -> Result<Vec<f32>> {
        let n = 2 * self.length(item)? * self.model.info("encoder_width")? as usize;
        let mut v = vec![0f32; n];
        check(unsafe { sys::dia_encoder_state_output(self.raw.as_ptr(), item as c_int, v.as_mut_ptr(), n) })?;
        Ok(v)
    }
}

/// Self-attention KV cache.
pub struct KvCache<'m> {
    raw: NonNull<sys::dia_kvcache>,
    model: &'m Model,
    _not_sync: PhantomData<*mut ()>,
}

unsafe impl Send for KvCache<'_> {}

impl Drop for KvCache<'_> {
    fn drop(&mut self) {
        unsafe { sys::dia_kvcache_free(self.raw.as_ptr()) }
    }
}

impl KvCache<'_> {
    pub fn reset(&mut self) -> Result<()> {
        check(unsafe { sys::dia_kvcache_reset(self.raw.as_ptr()) })
    }
    pub fn truncate(&mut self, length: usize) -> Result<()> {
        check(unsafe { sys::dia_kvcache_truncate(self.raw.as_ptr(), length as c_int) })
    }
    pub fn length(&self, row: usize) -> Result<usize> {
        let mut l: c_int = 0;
        check(unsafe { sys::dia_kvcache_length(self.raw.as_ptr(), row as c_int, &mut l) })?;
        Ok(l as usize)
    }
    pub fn capacity(&self) -> Result<usize> {
        let mut c: c_int = 0;
        check(unsafe { sys::dia_kvcache_capacity(self.raw.as_ptr(), &mut c) })?;
        Ok(c as usize)
    }
    /// K (`which` = 0) or V (1) of one layer and row: f32 [kv_heads, length, head_dim].
    pub fn read(&self, layer: usize, which: usize, row: usize) -> Result<Vec<f32>> {
        let n = self.model.info("kv_heads")? as usize * self.length(row)? * self.model.info("head_dim")? as usize;
        let mut v = vec![0f32; n.max(1)];
        check(unsafe { sys::dia_kvcache_read(self.raw.as_ptr(), layer as c_int, which as c_int, row as c_int, v.as_mut_ptr(), n) })?;
        v.truncate(n);
        Ok(v)
    }
}

/// A decoder bound to an encoder state and a KV cache.
pub struct DecoderState<'a, 'm> {
    raw: NonNull<sys::dia_decoder_state>,
    enc: &'a EncoderState<'m>,
    cache: &'a mut KvCache<'m>,
    batch: usize,
    channels: usize,
    vocab: usize,
}

unsafe impl Send for DecoderState<'_, '_> {}

impl Drop for DecoderState<'_, '_> {
    fn drop(&mut self) {
        unsafe { sys::dia_decoder_state_free(self.raw.as_ptr()) }
    }
}

impl<'a, 'm> DecoderState<'a, 'm> {
    pub fn encoder_state(&self) -> &EncoderState<'m> {
        self.enc
    }
    pub fn cache(&self) -> &KvCache<'m> {
        self.cache
    }
    /// The cache, e.g. to reset or truncate it between runs.
    pub fn cache_mut(&mut self) -> &mut KvCache<'m> {
        self.cache
    }

    fn check_tokens(&self, tokens: &[i32]) -> Result<usize> {
        let per = self.batch * self.channels;
        if per == 0 || tokens.len() % per != 0 || tokens.is_empty() {
            return Err(invalid(format!("{} tokens is not [B={}, T, C={}]", tokens.len(), self.batch, self.channels)));
        }
        Ok(tokens.len() / per)
    }

    /// Run T positions of `tokens` (int32 [B, T, C]); returns the logits f32 [2B, T, C, V].
    pub fn prefill(&mut self, tokens: &[i32]) -> Result<Vec<f32>> {
        let t = self.check_tokens(tokens)?;
        let mut logits = vec![0f32; 2 * self.batch * t * self.channels * self.vocab];
        check(unsafe { sys::dia_decoder_prefill(self.raw.as_ptr(), tokens.as_ptr(), t as c_int, logits.as_mut_ptr()) })?;
        Ok(logits)
    }

    /// As prefill, without copying out the logits.
    pub fn prefill_no_logits(&mut self, tokens: &[i32]) -> Result<()> {
        let t = self.check_tokens(tokens)?;
        check(unsafe { sys::dia_decoder_prefill(self.raw.as_ptr(), tokens.as_ptr(), t as c_int, ptr::null_mut()) })
    }

    /// One position: tokens int32 [B, C].
    pub fn step(&mut self, tokens: &[i32]) -> Result<()> {
        if tokens.len() != self.batch * self.channels {
            return Err(invalid(format!("step needs B*C = {} tokens, got {}", self.batch * self.channels, tokens.len())));
        }
        check(unsafe { sys::dia_decoder_step(self.raw.as_ptr(), tokens.as_ptr()) })
    }

    /// Logits of the last position run: f32 [2B, C, V].
    pub fn logits(&self) -> Result<Vec<f32>> {
        let n = 2 * self.batch * self.channels * self.vocab;
        let mut v = vec![0f32; n];
        check(unsafe { sys::dia_decoder_logits(self.raw.as_ptr(), v.as_mut_ptr(), n) })?;
        Ok(v)
    }
}

/// Generation parameters (reference defaults: max_tokens 3072, cfg_scale 3, temperature 1.2,
/// top_p 0.95, cfg_filter_top_k 45, seed 0).
pub struct GenParams {
    raw: NonNull<sys::dia_gen_params>,
}

unsafe impl Send for GenParams {}

impl Drop for GenParams {
    fn drop(&mut self) {
        unsafe { sys::dia_gen_params_free(self.raw.as_ptr()) }
    }
}

impl GenParams {
    pub fn new() -> Result<GenParams> {
        let mut p = ptr::null_mut();
        check(unsafe { sys::dia_gen_params_new(&mut p) })?;
        NonNull::new(p).map(|raw| GenParams { raw }).ok_or_else(|| invalid("dia_gen_params_new returned NULL".into()))
    }
    pub fn set(&mut self, key: &str, value: f64) -> Result<()> {
        let k = cstring(key)?;
        check(unsafe { sys::dia_gen_params_set(self.raw.as_ptr(), k.as_ptr(), value) })
    }
    /// Builder form of [`GenParams::set`].
    pub fn with(mut self, key: &str, value: f64) -> Result<GenParams> {
        self.set(key, value)?;
        Ok(self)
    }
    pub fn get(&self, key: &str) -> Result<f64> {
        let k = cstring(key)?;
        let mut v = 0f64;
        check(unsafe { sys::dia_gen_params_get(self.raw.as_ptr(), k.as_ptr(), &mut v) })?;
        Ok(v)
    }

    /// The sampling distribution of one frame, f32 [C, V], from cond/uncond logits [C, V]
    /// (the sampler works on Dia-1.6B's shape: C = [`CHANNELS`], V = [`VOCAB`]).
    pub fn sampler_probs(&self, cond: &[f32], uncond: &[f32]) -> Result<Vec<f32>> {
        check_frame_logits(cond, uncond)?;
        let mut probs = vec![0f32; CHANNELS * VOCAB];
        check(unsafe { sys::dia_sampler_probs(self.raw.as_ptr(), cond.as_ptr(), uncond.as_ptr(), probs.as_mut_ptr()) })?;
        Ok(probs)
    }

    /// One sampled frame (codes [C]) with the counter-based generator of (seed, item, step).
    pub fn sample_frame(&self, cond: &[f32], uncond: &[f32], item: u64, step: u64) -> Result<Vec<i32>> {
        check_frame_logits(cond, uncond)?;
        let mut codes = vec![0i32; CHANNELS];
        check(unsafe {
            sys::dia_sample_frame(self.raw.as_ptr(), cond.as_ptr(), uncond.as_ptr(), item, step, codes.as_mut_ptr())
        })?;
        Ok(codes)
    }
}

/// Channels and vocabulary of the frames dia_sampler_probs / dia_sample_frame work on (Dia-1.6B).
pub const CHANNELS: usize = 9;
pub const VOCAB: usize = 1028;

fn check_frame_logits(cond: &[f32], uncond: &[f32]) -> Result<()> {
    if cond.len() != CHANNELS * VOCAB || uncond.len() != CHANNELS * VOCAB {
        return Err(invalid(format!(
            "cond and uncond must be [{}, {}] ({} floats), got {} and {}",
            CHANNELS, VOCAB, CHANNELS * VOCAB, cond.len(), uncond.len()
        )));
    }
    Ok(())
}

/// The DAC codec (44.1 kHz): codes [frames, codebooks] <-> mono f32 audio.
pub struct Dac {
    raw: NonNull<sys::dia_dac>,
}

unsafe impl Send for Dac {}

impl Drop for Dac {
    fn drop(&mut self) {
        unsafe { sys::dia_dac_free(self.raw.as_ptr()) }
    }
}

impl Dac {
    pub fn load<P: AsRef<Path>>(path: P, opts: &Options) -> Result<Dac> {
        let p = cpath(path.as_ref())?;
        let o = opts.raw()?;
        let mut d = ptr::null_mut();
        check(unsafe { sys::dia_dac_load(p.as_ptr(), o.0, &mut d) })?;
        NonNull::new(d).map(|raw| Dac { raw }).ok_or_else(|| invalid("dia_dac_load returned NULL".into()))
    }
    /// "sample_rate", "hop_length", "codebooks", "codebook_size".
    pub fn info(&self, key: &str) -> Result<i64> {
        let k = cstring(key)?;
        let mut v = 0i64;
        check(unsafe { sys::dia_dac_info(self.raw.as_ptr(), k.as_ptr(), &mut v) })?;
        Ok(v)
    }
    /// Codes int32 [frames, codebooks] -> audio of frames * hop samples.
    pub fn decode(&mut self, codes: &[i32], frames: usize) -> Result<Vec<f32>> {
        let q = self.info("codebooks")? as usize;
        if codes.len() != frames * q {
            return Err(invalid(format!("{} codes is not [{} frames, {}]", codes.len(), frames, q)));
        }
        let mut audio = ptr::null_mut();
        let mut n = 0usize;
        check(unsafe { sys::dia_dac_decode(self.raw.as_ptr(), codes.as_ptr(), frames as c_int, &mut audio, &mut n) })?;
        Ok(unsafe { take_buffer(audio, n) })
    }
    /// Mono audio at 44.1 kHz -> (codes int32 [frames, codebooks], frames).
    pub fn encode(&mut self, audio: &[f32]) -> Result<(Vec<i32>, usize)> {
        let q = self.info("codebooks")? as usize;
        let mut codes = ptr::null_mut();
        let mut frames: c_int = 0;
        check(unsafe { sys::dia_dac_encode(self.raw.as_ptr(), audio.as_ptr(), audio.len(), &mut codes, &mut frames) })?;
        let frames = frames.max(0) as usize;
        Ok((unsafe { take_buffer(codes, frames * q) }, frames))
    }
}

/// Copy a buffer that libdia allocated into a Vec and free it with dia_free.
unsafe fn take_buffer<T: Copy>(p: *mut T, n: usize) -> Vec<T> {
    if p.is_null() {
        return Vec::new();
    }
    let v = std::slice::from_raw_parts(p, n).to_vec();
    sys::dia_free(p as *mut c_void);
    v
}

/// Read an audio file as mono f32 resampled to `sample_rate`.
pub fn read_audio<P: AsRef<Path>>(path: P, sample_rate: u32) -> Result<Vec<f32>> {
    let p = cpath(path.as_ref())?;
    let mut audio = ptr::null_mut();
    let mut n = 0usize;
    check(unsafe { sys::dia_audio_read(p.as_ptr(), sample_rate as c_int, &mut audio, &mut n) })?;
    Ok(unsafe { take_buffer(audio, n) })
}

/// Write mono f32 audio (format from the extension); 16-bit PCM unless `float` is true.
pub fn write_audio<P: AsRef<Path>>(path: P, audio: &[f32], sample_rate: u32, float: bool) -> Result<()> {
    let p = cpath(path.as_ref())?;
    let flags = if float { sys::DIA_AUDIO_FLOAT } else { 0 };
    check(unsafe { sys::dia_audio_write(p.as_ptr(), audio.as_ptr(), audio.len(), sample_rate as c_int, flags) })
}
