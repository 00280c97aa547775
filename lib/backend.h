/*
 * backend.h - the internal compute backend interface (a vtable of coarse ops + memory).
 *
 * The model code in lib/ is written once against this interface. A backend owns its buffers; the
 * model code never dereferences a buffer, it only passes dia_tensor views to ops and moves data
 * with upload/download. All activations are f32 and contiguous (C order). Weights may be f32, f16
 * or bf16; ops that take weights convert on the fly and accumulate in f32.
 *
 * Every slot returns a dia_status (never aborts). Ops may run asynchronously; download() and
 * sync() wait for them.
 */
#ifndef DIA_BACKEND_H
#define DIA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "dia.h"

typedef enum dia_dtype { DIA_F32 = 0, DIA_F16 = 1, DIA_BF16 = 2, DIA_I32 = 3, DIA_I64 = 4 } dia_dtype;

size_t dia_dtype_size(dia_dtype t);
const char *dia_dtype_name(dia_dtype t);

typedef struct dia_buffer dia_buffer; /* defined by each backend */
typedef struct dia_async dia_async;   /* defined by each backend that downloads asynchronously */

/* A view into a buffer: `ne` holds the shape, outermost first; contiguous. */
typedef struct dia_tensor {
    dia_buffer *buf;
    size_t offset; /* bytes from the start of buf */
    dia_dtype dtype;
    int ndim;
    int64_t ne[4];
} dia_tensor;

int64_t dia_tensor_nelem(const dia_tensor *t);
size_t dia_tensor_nbytes(const dia_tensor *t);
/* A view of `t` starting at element index `first` with a new shape (same dtype). */
dia_tensor dia_tensor_view(const dia_tensor *t, int64_t first, int ndim, const int64_t *ne);

typedef struct dia_backend dia_backend;

/* Arguments of the optional device sampler (lib/sampler.c is the reference it must follow). */
typedef struct dia_sample_args {
    int B, C, V, eos, top_k;
    double cfg_scale, temperature, top_p;
    uint64_t seed, step; /* RNG key: (seed, item b, step, channel c) */
    /* Optional (both or neither; NULL: none): the next step's decoder tokens, written on the device
     * so the next step can start before the host has seen these codes. feed i32 [2B, C]: rows 2b and
     * 2b + 1 both get force[b, c] where that is >= 0, else the sampled code; force i32 [B, C]. */
    dia_tensor *feed;
    const dia_tensor *force;
} dia_sample_args;

/* Arguments of the optional fused projection `linear`:
 *   y_i[M, N_i] (+)= in . W_i      for i < n, where in[M, K] is x (norm_w NULL) or
 *                                  rmsnorm(x) with scale norm_w[K] (eps as in the rmsnorm op);
 *   gated (n = 1): y[M, N/2] (+)= silu(h[:, 0:N/2]) * h[:, N/2:N] with h = in . W (gate then up).
 * The y_i never alias x. Where a backend does not fuse, `scratch` (f32 [M, K]) holds the normed
 * input and `scratch_out` (f32 [M, N], gated only) holds h. */
typedef struct dia_linear_args {
    const dia_tensor *x;
    const dia_tensor *norm_w;
    float eps;
    int gated;
    int n; /* 1..3 */
    dia_tensor *y[3];
    const dia_tensor *w[3];
    int trans_w[3];
    int accumulate;
    dia_tensor *scratch, *scratch_out;
} dia_linear_args;

/* One decoder layer's tensors for the optional `decode_layers` slot (weights in the model's layout;
 * the trans_w flags as for matmul). */
typedef struct dia_decode_layer_w {
    const dia_tensor *norm[3];   /* pre self-attention, pre cross-attention, pre MLP: [D]     */
    const dia_tensor *w[8];      /* wq, wk, wv, wo, cross q, cross o, gate_up, down           */
    int trans_w[8];
    dia_tensor *kcache, *vcache; /* self-attention cache [R, KV, S, hd]                       */
    const dia_tensor *ck, *cv;   /* cross-attention K / V [R, CKV, L, chd]                    */
} dia_decode_layer_w;

/* Arguments of the optional `decode_layers`: the decoder layers of one single-position step over
 * the R rows of x, in place, with the same math as lib/decoder.c composes from the other ops
 * (self-attention: q|k|v of rmsnorm(x), RoPE at pos, k and v stored at start, keys < kvlen;
 * cross-attention: keys < cross_len; gated MLP; each block's output added to x).
 * Optionally also the step's first and last ops (where decode_layers_ok says yes to them):
 *   tok != NULL:    x = sum_c embed[c][tok[:, c]] first (as `embed`; x is then output only);
 *   out_w != NULL:  logits = rmsnorm(x, out_norm) . out_w after the last layer (as `linear`). */
typedef struct dia_decode_layers_args {
    int n_layers;
    const dia_decode_layer_w *layer; /* [n_layers] */
    dia_tensor *x;                   /* f32 [R, D] residual stream, in and out */
    const dia_tensor *pos, *start, *kvlen, *cross_len; /* i32 [R] */
    int heads, kv_heads, head_dim, cross_heads, cross_kv_heads, cross_head_dim;
    float eps, theta;
    const dia_tensor *tok;   /* i32 [R, n_embed] or NULL */
    const dia_tensor *embed; /* [n_embed] tables [V, D] */
    int n_embed;
    const dia_tensor *out_norm, *out_w; /* [D]; [N, D] (out_trans 1) or NULL */
    int out_trans;
    dia_tensor *logits; /* f32 [R, N] */
} dia_decode_layers_args;

/* Arguments of the optional DAC convolution `conv_bf16` (the codec's bf16 mode). Activations are
 * time-major here ([T, C], unlike the f32 DAC ops):
 *   out[Tout, Cout] = b + conv(x)        x bf16 [T, Cin], Cin a multiple of 8 (already Snake'd)
 *   y  (f32, or NULL):  y = out, or y += out with accumulate = 1
 *   ys (bf16, or NULL): the final y (out, or y + out) through Snake with alpha_out [Cout] (NULL: none),
 *                       rounded to bf16: the next convolution's input
 * w bf16 [K, Cout, Cin] is the weight with its taps outermost (built by the loader from the
 * checkpoint's [Cout, Cin, K], or [Cin, Cout, K] for a transposed conv); b [Cout] or NULL.
 *   transposed = 0: stride 1 with `dilation` and `pad`: Tout = T + 2 pad - dilation (K - 1).
 *   transposed = 1: conv_transpose1d with `stride` and `pad`: Tout = (T - 1) stride - 2 pad + K.
 * Products accumulate in f32. No output aliases x. */
typedef struct dia_conv_args {
    dia_tensor *y, *ys;
    const dia_tensor *x, *w, *b, *alpha_out;
    int transposed, stride, dilation, pad, accumulate;
} dia_conv_args;

typedef struct dia_backend_ops {
    const char *name;
    void (*destroy)(dia_backend *be);
    dia_status (*set_threads)(dia_backend *be, int threads);

    /* ---- memory ---- */
    dia_status (*alloc)(dia_backend *be, size_t bytes, dia_buffer **out);
    /* Weights: make `bytes` of host memory (e.g. an mmap, valid for the backend's lifetime)
     * available to ops. The CPU backend wraps it without copying; a GPU backend copies it. */
    dia_status (*wrap_host)(dia_backend *be, const void *host, size_t bytes, dia_buffer **out);
    void (*buffer_free)(dia_backend *be, dia_buffer *buf);
    dia_status (*upload)(dia_backend *be, dia_buffer *dst, size_t offset, const void *src, size_t bytes);
    dia_status (*download)(dia_backend *be, const dia_buffer *src, size_t offset, void *dst, size_t bytes);
    /* Copy `bytes` between buffers of this backend. */
    dia_status (*copy)(dia_backend *be, dia_buffer *dst, size_t dst_off, const dia_buffer *src, size_t src_off,
                       size_t bytes);
    dia_status (*sync)(dia_backend *be);
    /* Optional, all four or none (NULL: callers download synchronously): downloads that do not wait.
     * A dia_async is a caller's host staging area of `bytes` (pinned where that matters);
     * download_start enqueues a copy of `bytes` of src into it after the work queued so far and
     * returns at once (a start on an area whose copy was never waited for replaces that copy);
     * download_wait waits for the area's last copy and moves its bytes to dst. */
    dia_status (*async_new)(dia_backend *be, size_t bytes, dia_async **out);
    void (*async_free)(dia_backend *be, dia_async *a);
    dia_status (*download_start)(dia_backend *be, const dia_buffer *src, size_t offset, size_t bytes, dia_async *a);
    dia_status (*download_wait)(dia_backend *be, dia_async *a, void *dst, size_t bytes);
    /* Optional (NULL on the CPU, which wraps the mapped files in place): create a weight tensor of
     * shape ne[ndim] from host data of dtype `src`, stored as `want` (DIA_F32 or DIA_BF16);
     * transpose = 1 (ndim 2): the host matrix [ne0, ne1] is stored as [ne1, ne0] (out->ne too), so
     * that linear weights of either checkpoint layout end up in nn.Linear layout. */
    dia_status (*weight_upload)(dia_backend *be, const void *host, dia_dtype src, int ndim, const int64_t *ne,
                                dia_dtype want, int transpose, dia_tensor *out);
    /* Optional (NULL: weights stay where weight_upload put them): move an uploaded weight's buffer
     * into host memory the device reads over the bus (pinned and mapped), freeing its device
     * memory; views of the buffer stay valid and ops read it in place, only slower. For weights
     * used once per text (the encoder, the cross-attention K/V projections). */
    dia_status (*buffer_to_host)(dia_backend *be, dia_buffer *buf);
    /* Optional: the weight dtype used when the "dtype" option is "auto" (NULL: keep the stored one). */
    dia_dtype (*default_weight_dtype)(dia_backend *be);
    /* Optional (CUDA graphs): run `record(ctx)`, a sequence of ops on buffers that stay fixed for a
     * given `key`, as one replayable unit. The first call with a key records and runs it; later calls
     * with the same key may replay the recording without calling `record` (so every input must live
     * in those buffers, e.g. positions and lengths uploaded before the call). NULL: callers run
     * record(ctx) themselves. graph_release forgets a key. Keys are never reused. */
    dia_status (*graph_run)(dia_backend *be, uint64_t key, dia_status (*record)(void *ctx), void *ctx);
    void (*graph_release)(dia_backend *be, uint64_t key);
    /* Optional: 1 if graph_run records and replays (graphs enabled and working), else 0. */
    int (*graphs_enabled)(dia_backend *be);
    /* Optional: the dtype of attention caches (self-attention KV cache and cross-attention K/V) for
     * a model whose weights are `weight_dtype` (DIA_F32 or DIA_BF16): DIA_F32 or DIA_BF16. NULL:
     * DIA_F32. kv_store and
     * attention must accept caches of the dtype returned here (q, out and src stay f32). */
    dia_dtype (*cache_dtype)(dia_backend *be, dia_dtype weight_dtype);
    /* Optional: the dtype in which the decoder keeps the activations that only feed a projection
     * (the attention outputs and the gated MLP output) for a pass over `rows` rows with weights of
     * `weight_dtype`: DIA_F32 or DIA_BF16. NULL: DIA_F32. With DIA_BF16, attention writes a bf16
     * `out`, linear writes a bf16 gated output y, and matmul / linear take a bf16 x (no norm): the
     * backend's bf16 GEMM would round these activations to bf16 anyway, so this only saves the
     * conversion pass. */
    dia_dtype (*activation_dtype)(dia_backend *be, dia_dtype weight_dtype, int64_t rows);

    /* ---- transformer ops ---- */
    /* y[M,N] = x[M,K] . W, where W is [K,N] (trans_w = 0, DenseGeneral layout) or [N,K]
     * (trans_w = 1, nn.Linear layout). accumulate = 1 adds into y instead of overwriting. */
    dia_status (*matmul)(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, int trans_w,
                         int accumulate);
    /* y[M,D] = x / sqrt(mean(x^2) + eps) * w[D] (w any float dtype). y may alias x. */
    dia_status (*rmsnorm)(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, float eps);
    /* In place on x[M, H, hd]: rotate pairs (j, j + hd/2) by angle pos[m] / theta^(2j/hd).
     * pos: i32 [M]. */
    dia_status (*rope)(dia_backend *be, dia_tensor *x, const dia_tensor *pos, float theta);
    /* y[M,D] = sum_c table_c[tok[m,c]] for c < n_tables (tables [V,D], any float dtype);
     * tok: i32 [M, n_tables]. Summed left to right. */
    dia_status (*embed)(dia_backend *be, dia_tensor *y, const dia_tensor *tables, int n_tables,
                        const dia_tensor *tok);
    /* y[M,I] = silu(h[M, 0:I]) * h[M, I:2I]   (h = [M, 2I], gate then up). */
    dia_status (*silu_mul)(dia_backend *be, dia_tensor *y, const dia_tensor *h);
    /* y += x (same shape). */
    dia_status (*add)(dia_backend *be, dia_tensor *y, const dia_tensor *x);
    /* Write src[R, T, Hkv, hd] (f32) into cache[R, Hkv, S, hd] (f32, or the backend's cache_dtype)
     * at positions start[r] .. start[r]+T-1. start: i32 [R]. */
    dia_status (*kv_store)(dia_backend *be, dia_tensor *cache, const dia_tensor *src, const dia_tensor *start);
    /* Attention with scale 1.0 (no 1/sqrt(d)) and GQA (query head h uses kv head h / (Hq/Hkv)):
     * out[R,T,Hq,hd] = softmax(q . k^T) . v with q[R,T,Hq,hd], k,v[R,Hkv,S,hd] (S = capacity).
     * Query (r,t) sees keys s < kv_len[r]; if qpos is not NULL (i32 [R,T]) also only s <= qpos[r,t]
     * (causal). kv_len: i32 [R]. */
    dia_status (*attention)(dia_backend *be, dia_tensor *out, const dia_tensor *q, const dia_tensor *k,
                            const dia_tensor *v, const dia_tensor *kv_len, const dia_tensor *qpos);

    /* ---- optional fused ops (NULL: lib/ composes them from the ops above, see ops.h) ---- */
    /* The projections of dia_linear_args in one op. */
    dia_status (*linear)(dia_backend *be, const dia_linear_args *a);
    /* rope(q), rope(k) in place (q[M, H, hd], k[R, T, KV, hd], M = R T, positions pos[M]), then
     * kv_store(kcache, k, start) and kv_store(vcache, v, start): the same results as those ops. */
    dia_status (*rope_kv_store)(dia_backend *be, dia_tensor *q, dia_tensor *k, const dia_tensor *v, dia_tensor *kcache,
                                dia_tensor *vcache, const dia_tensor *pos, const dia_tensor *start, float theta);
    /* linear(a) for q, k, v (a->n = 3, a->y = q, k, v as [M, N_i]) followed by rope_kv_store on
     * its outputs (q, k, v: views of a->y[0..2] shaped as rope_kv_store takes them), in one op:
     * the same results as the two. NULL: lib/ calls the two. */
    dia_status (*linear_rope_kv_store)(dia_backend *be, const dia_linear_args *a, dia_tensor *q, dia_tensor *k,
                                       const dia_tensor *v, dia_tensor *kcache, dia_tensor *vcache,
                                       const dia_tensor *pos, const dia_tensor *start, float theta);

    /* Optional pair (both or neither): decode_layers_ok says whether decode_layers takes these
     * arguments (shapes, dtypes, the backend's switches); decode_layers runs them. lib/ composes the
     * layers from the ops above where there is no slot or it says no. */
    int (*decode_layers_ok)(dia_backend *be, const dia_decode_layers_args *a);
    dia_status (*decode_layers)(dia_backend *be, const dia_decode_layers_args *a);

    /* Optional: one frame per item sampled on the device, so no logits leave it. logits: f32
     * [2B, C*V] (row 2b unconditional, 2b+1 conditional); codes: i32 [B, C]. Same algorithm and
     * RNG as lib/sampler.c (CFG top-k set, masks, temperature, EOS rule, top-p, inverse CDF of
     * dia_rng_uniform(seed, b, step, c)); sums may run in another order. NULL: the host samples. */
    dia_status (*sample)(dia_backend *be, dia_tensor *codes, const dia_tensor *logits, const dia_sample_args *args);

    /* ---- DAC ops (codec); activations [Cin, T] per batch item, batch 1 ---- */
    /* y[Cout, Tout] = conv1d(x[Cin, T], w[Cout, Cin, K], b[Cout] or NULL) with stride, dilation and
     * symmetric zero padding `pad`; Tout = (T + 2 pad - dilation (K-1) - 1) / stride + 1. */
    dia_status (*conv1d)(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w,
                         const dia_tensor *b, int stride, int dilation, int pad);
    /* y[Cout, Tout] = conv_transpose1d(x[Cin, T], w[Cin, Cout, K], b) with stride and padding;
     * Tout = (T - 1) stride - 2 pad + K. */
    dia_status (*conv_transpose1d)(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w,
                                   const dia_tensor *b, int stride, int pad);
    /* In place Snake on x[C, T]: x + 1/(alpha_c + 1e-9) sin^2(alpha_c x), alpha[C]. */
    dia_status (*snake)(dia_backend *be, dia_tensor *x, const dia_tensor *alpha);
    /* In place tanh on x. */
    dia_status (*tanh_)(dia_backend *be, dia_tensor *x);
    /* Optional pair (both or neither; NULL: the codec computes in f32 only, and dtype "bf16" is
     * refused at DAC load): the convolution of dia_conv_args in bf16 with f32 accumulation, and
     * ys bf16 [T, C] = alpha ? snake(x, alpha) : x rounded to bf16 (transposed), for x f32 [C, T]. */
    dia_status (*conv_bf16)(dia_backend *be, const dia_conv_args *a);
    dia_status (*snake_bf16)(dia_backend *be, dia_tensor *ys, const dia_tensor *x, const dia_tensor *alpha);
    /* y[D, T] = codebook[codes[t]]^T: rows of codebook[N, D] gathered by codes i32 [T]. */
    dia_status (*codebook_lookup)(dia_backend *be, dia_tensor *y, const dia_tensor *codebook, const dia_tensor *codes);
    /* codes[t] = argmax_n cos(x[:, t], codebook[n]) for x[D, T], codebook[N, D]; codes i32 [T]. */
    dia_status (*codebook_nearest)(dia_backend *be, dia_tensor *codes, const dia_tensor *x,
                                   const dia_tensor *codebook);
} dia_backend_ops;

struct dia_backend {
    const dia_backend_ops *ops;
    void *ctx; /* backend-private state */
};

/* Backend constructors. Each returns DIA_ERR_BACKEND if it cannot run here (the reason logged). */
dia_status dia_backend_cpu_new(int threads, dia_backend **out);
dia_status dia_backend_cuda_new(int device, dia_backend **out);
/* By name ("cpu", "cuda"). */
dia_status dia_backend_new(const char *name, int threads, int device, dia_backend **out);
void dia_backend_free(dia_backend *be);

/* Convenience: allocate a tensor of the given shape in a fresh buffer owned by the caller
 * (free with dia_tensor_free). */
dia_status dia_tensor_alloc(dia_backend *be, dia_dtype dtype, int ndim, const int64_t *ne, dia_tensor *out);
void dia_tensor_free(dia_backend *be, dia_tensor *t);
dia_status dia_tensor_upload(dia_backend *be, dia_tensor *t, const void *src, size_t bytes);
dia_status dia_tensor_download(dia_backend *be, const dia_tensor *t, void *dst, size_t bytes);

#endif
