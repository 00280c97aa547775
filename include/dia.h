/*
 * dia.h - libdia, an embeddable C engine for the Dia text-to-dialogue model.
 *
 * This is the only public header and the API manual. It is C99 and can be included from C++.
 *
 * Conventions (they hold for every function below unless its comment says otherwise):
 *   - Every fallible function returns a dia_status; DIA_OK (0) is success.
 *   - Constructors take a `T **out` as the last argument, set *out on success and set it to NULL
 *     on failure. Every *_free function accepts NULL.
 *   - Every error is also reported once through the log callback (dia_set_log_callback) with the
 *     reason: the tensor, field, file or parameter that was wrong.
 *   - The library never calls abort() or exit() and never asserts on user data.
 *   - Thread safety: distinct handles may be used from distinct threads concurrently. A single
 *     handle must not be used from two threads at once. A dia_model is read-only after loading and
 *     may be shared by any number of encoder/decoder states used on different threads.
 *   - Arrays are C order (row-major). Codes are int32. Audio is mono float32 at 44100 Hz.
 *
 * Glossary: B = batch items; rows = 2*B (classifier-free guidance: row 2b is the unconditional row
 * of item b, row 2b+1 its conditional row); C = 9 codebook channels; V = 1028 audio vocabulary
 * (1024 DAC codes, EOS 1024, PAD 1025, BOS 1026); L = text length in bytes; D = model width.
 */
#ifndef DIA_H
#define DIA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define DIA_API __declspec(dllexport)
#elif defined(__GNUC__)
#define DIA_API __attribute__((visibility("default")))
#else
#define DIA_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------- */
#define DIA_VERSION_MAJOR 0
#define DIA_VERSION_MINOR 1
#define DIA_VERSION_PATCH 0
#define DIA_VERSION_STRING "0.1.0"
/* The ABI version: the soname is libdia.so.<DIA_ABI_VERSION>. Within one ABI version only
 * additions happen (docs/abi.md). */
#define DIA_ABI_VERSION 0

/* Runtime version of the loaded library, e.g. "0.1.0". Never NULL. */
DIA_API const char *dia_version_string(void);
/* Runtime ABI version of the loaded library; compare with DIA_ABI_VERSION. */
DIA_API int dia_abi_version(void);

/* ---------------------------------------------------------------------------------------------
 * Status codes and logging
 * ------------------------------------------------------------------------------------------- */
typedef enum dia_status {
    DIA_OK = 0,
    DIA_ERR_INVALID_ARG = 1,   /* NULL handle, zero size, bad option value, unknown key, ...  */
    DIA_ERR_IO = 2,            /* a file could not be opened, read, mapped or written          */
    DIA_ERR_BAD_MODEL = 3,     /* checkpoint/config malformed, missing, unexpected or mis-shaped */
    DIA_ERR_OUT_OF_MEMORY = 4, /* host or device allocation failed                             */
    DIA_ERR_CAPACITY = 5,      /* a KV cache or output buffer would be written past its end    */
    DIA_ERR_TEXT_TOO_LONG = 6, /* text longer than the model's text length (and no truncation) */
    DIA_ERR_BACKEND = 7,       /* backend unavailable (e.g. cuda without a GPU) or device error */
    DIA_ERR_BAD_AUDIO = 8,     /* audio file unreadable, empty or truncated; codes out of range */
    DIA_ERR_CANCELLED = 9,     /* a callback asked to stop                                     */
    DIA_ERR_INTERNAL = 10      /* a bug in libdia; please report                               */
} dia_status;

/* A static English description of a status ("ok", "invalid argument", ...). Never NULL. */
DIA_API const char *dia_status_string(dia_status status);

typedef enum dia_log_level {
    DIA_LOG_ERROR = 0,
    DIA_LOG_WARN = 1,
    DIA_LOG_INFO = 2,
    DIA_LOG_DEBUG = 3
} dia_log_level;

/* Log callback: `message` is one line without the trailing newline, valid during the call. */
typedef void (*dia_log_fn)(dia_log_level level, const char *message, void *user);

/* Install a process-wide log callback (NULL restores the default, which writes ERROR and WARN
 * lines to stderr). Messages above `max_level` are dropped. Not thread-safe with respect to
 * concurrent logging: call it before using the library from several threads. */
DIA_API void dia_set_log_callback(dia_log_fn fn, void *user);
DIA_API void dia_set_log_level(dia_log_level max_level);
/* The last error message logged by the calling thread ("" if none). Valid until the thread's
 * next libdia call. */
DIA_API const char *dia_last_error(void);

/* Free a buffer that libdia allocated and handed to the caller (audio, codes). NULL is fine. */
DIA_API void dia_free(void *ptr);

/* ---------------------------------------------------------------------------------------------
 * Options (string keys, ABI stable: new keys are additions)
 * ------------------------------------------------------------------------------------------- */
typedef struct dia_options dia_options;

/* Model / codec loading options. Keys:
 *   "backend"  "cpu" (default) | "cuda"
 *   "threads"  integer >= 0; 0 = all cores (default)
 *   "dtype"    "auto" (default) | "f32" | "bf16": the weight dtype of the Dia model. The CPU backend
 *              uses the weights as stored (F32/F16/BF16, no copy) and computes in f32, so it takes
 *              "auto" or "f32" (bf16 is DIA_ERR_INVALID_ARG at load); CUDA converts at load: auto =
 *              bf16, f32 = f32 weights with TF32 off (parity mode).
 *              For dia_dac_load: CUDA auto / bf16 = the decoder's convolutions on bf16 tensor
 *              cores (bf16 weights and inputs, f32 accumulation and residual stream; audio within
 *              ~1.5-2% RMS of the f32 decode), f32 = everything in f32 (within 1e-4 of the
 *              reference). The encoder (voice prompts) is always f32. The CPU computes the codec
 *              in f32: auto or f32 (bf16 is DIA_ERR_INVALID_ARG).
 *   "device"   integer CUDA device ordinal (default 0)
 *   "encoder_memory"  "device" (default) | "host": where the CUDA backend keeps the weights used
 *              once per text (the encoder and the decoder's cross-attention K/V projections,
 *              ~650 MB in bf16 for Dia-1.6B): "host" keeps them in pinned host memory and copies
 *              each to the device as it is used, so the model needs that much less device memory
 *              and dia_encode takes longer (the copies). Same results. No effect on the CPU.
 * Errors: DIA_ERR_INVALID_ARG for NULL, an unknown key or a malformed value. */
DIA_API dia_status dia_options_new(dia_options **out);
DIA_API void dia_options_free(dia_options *opts);
DIA_API dia_status dia_options_set(dia_options *opts, const char *key, const char *value);

/* ---------------------------------------------------------------------------------------------
 * Model
 * ------------------------------------------------------------------------------------------- */
typedef struct dia_model dia_model;

/* Load a Dia checkpoint. `path` is a directory holding config.json and model.safetensors (or
 * model.safetensors.index.json with its shards), or a .safetensors file with config.json beside
 * it. Both layouts are detected automatically: transformers ("model.encoder...", nn.Linear
 * [out,in]) and the original nari-labs layout (DenseGeneral kernels, one embedding per channel);
 * tensors may be stored as F32, F16 or BF16. The files are memory-mapped; on the CPU backend the
 * weights are used in place (no copy). `opts` may be NULL.
 * Errors: DIA_ERR_INVALID_ARG, DIA_ERR_IO (missing/unreadable file), DIA_ERR_BAD_MODEL (malformed
 * JSON or header, missing/unexpected/mis-shaped tensor, unknown dtype, truncated file),
 * DIA_ERR_BACKEND, DIA_ERR_OUT_OF_MEMORY. */
DIA_API dia_status dia_model_load(const char *path, const dia_options *opts, dia_model **out);
DIA_API void dia_model_free(dia_model *model);

/* Integer facts about a loaded model, by key:
 *   "text_length" (encoder max positions, 1024 for Dia-1.6B), "max_frames" (decoder max
 *   positions, 3072), "channels" (9), "vocab" (1028), "encoder_width", "decoder_width",
 *   "encoder_layers", "decoder_layers", "eos" (1024), "pad" (1025), "bos" (1026),
 *   "delay.<c>" for c in 0..channels-1, "max_delay", "kv_heads" and "head_dim" (decoder
 *   self-attention: the KV cache row shape), "graphs" (1 when decode steps are recorded once and
 *   replayed as CUDA graphs; 0 on the CPU or with DIA_CUDA_GRAPHS=0).
 * Errors: DIA_ERR_INVALID_ARG (NULL or unknown key). */
DIA_API dia_status dia_model_info(const dia_model *model, const char *key, int64_t *value);

/* Text to encoder input bytes: UTF-8 bytes with "[S1]" -> 1 and "[S2]" -> 2. Writes at most `cap`
 * ids; *len receives the full length (call with cap 0 to size the buffer). */
DIA_API dia_status dia_tokenize(const char *text, int32_t *ids, size_t cap, size_t *len);

/* ---------------------------------------------------------------------------------------------
 * Encoder
 * ------------------------------------------------------------------------------------------- */
typedef struct dia_encoder_state dia_encoder_state;

/* Flags for dia_encode. */
#define DIA_ENCODE_TRUNCATE 1u /* cut texts longer than "text_length" instead of failing */

/* Encode B texts (UTF-8). Produces the CFG pair per item (unconditional row = all zero bytes with
 * the conditional row's mask) and the cross-attention keys/values of every decoder layer.
 * The encoder runs on each text's real length L_b, not padded to "text_length": under the
 * reference's masks the valid positions compute exactly the same values, and it is far cheaper.
 * Errors: DIA_ERR_INVALID_ARG (NULL, batch < 1, empty text), DIA_ERR_TEXT_TOO_LONG,
 * DIA_ERR_OUT_OF_MEMORY, DIA_ERR_BACKEND. */
DIA_API dia_status dia_encode(dia_model *model, const char *const *texts, int batch, unsigned flags,
                              dia_encoder_state **out);
DIA_API void dia_encoder_state_free(dia_encoder_state *state);
/* Batch size and the text length (bytes) of item b. */
DIA_API dia_status dia_encoder_state_batch(const dia_encoder_state *state, int *batch);
DIA_API dia_status dia_encoder_state_length(const dia_encoder_state *state, int item, int *length);
/* Copy the encoder output of item b, f32 [2, L_b, encoder_width] (uncond row, cond row), into
 * `out` of `n` floats. DIA_ERR_CAPACITY if n is too small. */
DIA_API dia_status dia_encoder_state_output(const dia_encoder_state *state, int item, float *out, size_t n);

/* ---------------------------------------------------------------------------------------------
 * KV cache
 * ------------------------------------------------------------------------------------------- */
typedef struct dia_kvcache dia_kvcache;

/* A self-attention cache for `batch` items (rows = 2*batch) of `capacity` positions: per decoder
 * layer, K and V buffers of shape (rows, kv_heads, capacity, head_dim), preallocated once, plus a
 * fill length per row. capacity <= "max_frames".
 * Errors: DIA_ERR_INVALID_ARG, DIA_ERR_OUT_OF_MEMORY. */
DIA_API dia_status dia_kvcache_new(dia_model *model, int batch, int capacity, dia_kvcache **out);
DIA_API void dia_kvcache_free(dia_kvcache *cache);
/* Empty every row (length 0). */
DIA_API dia_status dia_kvcache_reset(dia_kvcache *cache);
/* Shorten every row to at most `length` positions (positions >= length are forgotten). */
DIA_API dia_status dia_kvcache_truncate(dia_kvcache *cache, int length);
DIA_API dia_status dia_kvcache_length(const dia_kvcache *cache, int row, int *length);
DIA_API dia_status dia_kvcache_capacity(const dia_kvcache *cache, int *capacity);
/* Copy K (which = 0) or V (which = 1) of one layer and row, f32 [kv_heads, length, head_dim]. */
DIA_API dia_status dia_kvcache_read(const dia_kvcache *cache, int layer, int which, int row, float *out,
                                    size_t n);

/* ---------------------------------------------------------------------------------------------
 * Decoder
 * ------------------------------------------------------------------------------------------- */
typedef struct dia_decoder_state dia_decoder_state;

/* A decoder bound to one encoder state and one KV cache of the same batch size (both must outlive
 * it). Holds the scratch buffers of a forward pass and the logits of the last position.
 * Errors: DIA_ERR_INVALID_ARG (NULL, batch mismatch), DIA_ERR_OUT_OF_MEMORY. */
DIA_API dia_status dia_decoder_state_new(dia_model *model, const dia_encoder_state *enc, dia_kvcache *cache,
                                         dia_decoder_state **out);
DIA_API void dia_decoder_state_free(dia_decoder_state *state);

/* Run T positions (delayed token grid `tokens`, int32 [B, T, C], the same for both rows of an
 * item) starting at each row's current cache length; their keys/values are written to the cache
 * and the lengths advance by T. All rows must have the same length. If `logits` is not NULL it
 * receives f32 [rows, T, C, V] (position t predicts t+1). Tokens must be in [0, V).
 * Errors: DIA_ERR_INVALID_ARG, DIA_ERR_CAPACITY (length + T > capacity; nothing is written). */
DIA_API dia_status dia_decoder_prefill(dia_decoder_state *state, const int32_t *tokens, int T, float *logits);
/* One position: tokens int32 [B, C]. Same as prefill with T = 1. */
DIA_API dia_status dia_decoder_step(dia_decoder_state *state, const int32_t *tokens);
/* Copy the logits of the last position run, f32 [rows, C, V], into `out` of `n` floats. */
DIA_API dia_status dia_decoder_logits(const dia_decoder_state *state, float *out, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Sampling and generation parameters
 * ------------------------------------------------------------------------------------------- */
typedef struct dia_gen_params dia_gen_params;

/* Generation parameters with the reference defaults. Keys for dia_gen_params_set:
 *   "max_tokens" 3072 (frames including BOS, audio prompt and the 15-frame delay tail; <= max_frames)
 *   "cfg_scale" 3.0 (>= 0)      "temperature" 1.2 (>= 0; 0 = greedy)
 *   "top_p" 0.95 (in (0, 1])    "cfg_filter_top_k" 45 (integer in [1, V])
 *   "seed" 0 (integer >= 0)
 * Errors: DIA_ERR_INVALID_ARG for an unknown key or a value outside its range. */
DIA_API dia_status dia_gen_params_new(dia_gen_params **out);
DIA_API void dia_gen_params_free(dia_gen_params *params);
DIA_API dia_status dia_gen_params_set(dia_gen_params *params, const char *key, double value);
DIA_API dia_status dia_gen_params_get(const dia_gen_params *params, const char *key, double *value);

/* The final sampling distribution for one frame, exactly the reference's order: guided =
 * cond + cfg_scale*(cond - uncond) selects the top-k candidate set; the conditional logits inside
 * that set are sampled; PAD/BOS/1027 masked on every channel and EOS on channels 1..C-1;
 * temperature; EOS rule (EOS argmax -> EOS certain, else EOS masked); top-k; top-p.
 * cond, uncond: f32 [C, V] with Dia-1.6B's C = 9, V = 1028, EOS = 1024; probs: f32 [C, V] out.
 * With temperature 0 the distribution is one-hot at the greedy choice.
 * Errors: DIA_ERR_INVALID_ARG (NULL, cfg_filter_top_k > V). */
DIA_API dia_status dia_sampler_probs(const dia_gen_params *params, const float *cond, const float *uncond,
                                     float *probs);

/* Sample one frame: codes int32 [C] from cond, uncond f32 [C, V] (Dia-1.6B shape: C = 9,
 * V = 1028, EOS = 1024). The random numbers come from a counter-based generator: one uniform
 * u in [0,1) per (seed, item, step, channel) = SplitMix64 over those four values, which picks the
 * code by inverse CDF over the final distribution in vocabulary order. The same seed therefore gives
 * the same codes on any thread count and in any run; the item index is part of the key, so equal
 * texts in one batch get different samples. (It does not reproduce torch's random stream.) With
 * temperature 0 the choice is the greedy one. dia_sampler_probs's constraints apply. */
DIA_API dia_status dia_sample_frame(const dia_gen_params *params, const float *cond, const float *uncond,
                                    uint64_t item, uint64_t step, int32_t *codes);

/* ---------------------------------------------------------------------------------------------
 * Generation
 * ------------------------------------------------------------------------------------------- */
typedef struct dia_codes dia_codes;

/* Called for every output frame of item `item` as soon as it is final (delay reverted, 9 codes in
 * 0..1023). Frames of one item arrive in order (frame = 0, 1, ...). Return non-zero to cancel the
 * generation (dia_generate then returns DIA_ERR_CANCELLED). */
typedef int (*dia_frame_fn)(int item, int frame, const int32_t *codes, void *user);

/* Generate audio codes for B texts. `prompts[b]` (may be NULL, or the array may be NULL) is an
 * audio prompt of `prompt_frames[b]` DAC frames, int32 [frames, C] in 0..1023; its transcript must
 * already be at the start of texts[b] (the model continues the dialogue). The result holds, per
 * item, the new frames only (prompt excluded), delay reverted, trimmed at EOS.
 * Semantics follow nari-labs/dia generate() with one correction: every cell t <= P + delay[c] is
 * teacher forced (BOS, then the prompt), so a batch gives the same codes as its items alone.
 * `on_frame` may be NULL. `params` NULL means defaults.
 * Errors: DIA_ERR_INVALID_ARG (bad parameters, prompt at least as long as max_tokens - max_delay,
 * max_tokens > max_frames), DIA_ERR_BAD_AUDIO (prompt code outside 0..1023),
 * DIA_ERR_TEXT_TOO_LONG, DIA_ERR_CANCELLED, DIA_ERR_OUT_OF_MEMORY, DIA_ERR_BACKEND. */
DIA_API dia_status dia_generate(dia_model *model, const dia_gen_params *params, int batch, const char *const *texts,
                                const int32_t *const *prompts, const int *prompt_frames, dia_frame_fn on_frame,
                                void *user, dia_codes **out);
DIA_API void dia_codes_free(dia_codes *codes);
DIA_API int dia_codes_batch(const dia_codes *codes);
/* Frames of item b (0 if out of range), and a pointer to its int32 [frames, C] codes (owned by
 * `codes`, NULL if out of range). */
DIA_API int dia_codes_frames(const dia_codes *codes, int item);
DIA_API const int32_t *dia_codes_data(const dia_codes *codes, int item);

/* ---------------------------------------------------------------------------------------------
 * DAC codec (44.1 kHz) and audio files
 * ------------------------------------------------------------------------------------------- */
typedef struct dia_dac dia_dac;

/* Load a DAC checkpoint (directory with config.json + model.safetensors, descript/dac_44khz
 * style; plain weights or weight-norm weight_g/weight_v or parametrizations.weight.original0/1).
 * Options: see dia_options ("dtype" picks the CUDA decoder's precision). Memory: on CUDA the codec
 * keeps its activation buffers between calls (they grow with the longest segment decoded: up to
 * ~620 MB for 1024-frame segments in the bf16 mode, ~170 MB in f32) until dia_dac_free; the CPU
 * frees them after each call. Errors as dia_model_load. */
DIA_API dia_status dia_dac_load(const char *path, const dia_options *opts, dia_dac **out);
DIA_API void dia_dac_free(dia_dac *dac);
/* Integer facts: "sample_rate", "hop_length", "codebooks", "codebook_size", "context_frames"
 * (frames of right context a decoded frame depends on: see dia_dac_decode_range). */
DIA_API dia_status dia_dac_info(const dia_dac *dac, const char *key, int64_t *value);
/* Codes int32 [frames, codebooks] -> mono float32 audio of frames*hop samples, returned in
 * *audio (free with dia_free). Errors: DIA_ERR_INVALID_ARG, DIA_ERR_BAD_AUDIO (code out of range). */
DIA_API dia_status dia_dac_decode(dia_dac *dac, const int32_t *codes, int frames, float **audio, size_t *samples);
/* Streaming decode: the audio of frames [first, first + count) of a code sequence int32
 * [frames, codebooks] of which `frames` are known so far, into `out` (count * hop_length floats,
 * caller-owned). Only the frames within "context_frames" (dia_dac_info) of the range are read, so
 * memory is bounded by `count`. Once frames >= first + count + context_frames are known (or the
 * sequence is complete) the samples equal those of dia_dac_decode of the whole sequence (bit for
 * bit on the CPU). Use it from a dia_frame_fn to turn frames into audio as they arrive; ask for a
 * few dozen frames per call (each call recomputes up to 2 * context_frames frames).
 * Errors: DIA_ERR_INVALID_ARG (NULL, range outside [0, frames)), DIA_ERR_BAD_AUDIO (a code out of
 * range), DIA_ERR_OUT_OF_MEMORY, DIA_ERR_BACKEND. */
DIA_API dia_status dia_dac_decode_range(dia_dac *dac, const int32_t *codes, int frames, int first, int count,
                                        float *out);
/* Mono float32 audio at 44.1 kHz (padded with zeros to a multiple of hop) -> codes int32
 * [frames, codebooks] in *codes (free with dia_free). */
DIA_API dia_status dia_dac_encode(dia_dac *dac, const float *audio, size_t samples, int32_t **codes, int *frames);

/* Read an audio file (WAV, FLAC, OGG, ...; any rate, any channel count) as mono float32 resampled
 * to `sample_rate` Hz (*audio freed with dia_free). Errors: DIA_ERR_IO, DIA_ERR_BAD_AUDIO. */
DIA_API dia_status dia_audio_read(const char *path, int sample_rate, float **audio, size_t *samples);
/* Write mono float32 audio; the format comes from the extension (.wav, .flac, .ogg). flags:
 * DIA_AUDIO_FLOAT writes 32-bit float WAV instead of 16-bit PCM. */
#define DIA_AUDIO_FLOAT 1u
DIA_API dia_status dia_audio_write(const char *path, const float *audio, size_t samples, int sample_rate,
                                   unsigned flags);

#ifdef __cplusplus
}
#endif
#endif /* DIA_H */
