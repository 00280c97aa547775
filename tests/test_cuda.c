/* test_cuda.c - the CUDA backend: every op against the CPU backend on random inputs (shapes of the
 * full-size model where it matters: head_dim 128, GQA 16/4, long caches split over the sequence),
 * the tiny goldens in f32 mode with the CPU tolerances, exact greedy codes, the bf16 mode against
 * f32 within a measured tolerance, and the DAC ops.
 *
 * Every test skips (cmocka skip, exit 0) when the CUDA backend is unavailable: a build without
 * CUDA (dia_backend_new("cuda") gives DIA_ERR_BACKEND) or a machine without a device. */
#include "test_util.h"

#include <pthread.h>
#include <stdint.h>

#include "backend.h"
#include "half.h"
#include "ops.h"
#include "model.h"
#include "sampler.h"

/* graph replay counter of the CUDA backend (absent from builds without CUDA) */
extern long dia_cuda_graph_replays(dia_backend *be) __attribute__((weak));
static long replays(dia_backend *be) { return dia_cuda_graph_replays ? dia_cuda_graph_replays(be) : -1; }
/* launches of the decode-step kernel (absent from builds without CUDA) */
extern long dia_cuda_decode_step_launches(void) __attribute__((weak));
static long step_launches(void) { return dia_cuda_decode_step_launches ? dia_cuda_decode_step_launches() : -1; }

static const char *TEXT0 = "[S1] Hello from a tiny model. [S2] It only speaks noise (laughs).";
static const char *TEXT1 = "[S1] Second voice, caf\xc3\xa9 cr\xc3\xa8me \xe2\x80\x94 UTF-8 bytes.";

#define C 9
#define V 1028
#define TF_T 24

static int g_have_cuda = -1;

static int have_cuda(void) {
    if (g_have_cuda < 0) {
        dia_backend *be = NULL;
        dia_status st = dia_backend_new("cuda", 0, 0, &be);
        g_have_cuda = st == DIA_OK;
        if (st == DIA_OK) dia_backend_free(be);
        else if (st != DIA_ERR_BACKEND) fail_msg("dia_backend_new(cuda): unexpected %s", dia_status_string(st));
        else printf("  CUDA backend unavailable: %s\n", dia_last_error());
    }
    return g_have_cuda;
}

#define NEED_CUDA()              \
    do {                         \
        if (!have_cuda()) skip(); \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * helpers: random host data, tensors on a backend
 * ------------------------------------------------------------------------------------------- */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform [-1, 1) */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (float)((double)((g_rng * 0x2545F4914F6CDD1Dull) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}
static float *rand_f32(size_t n, float scale) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

static dia_tensor mk(dia_backend *be, dia_dtype dt, int ndim, const int64_t *ne, const void *host) {
    dia_tensor t;
    assert_int_equal(dia_tensor_alloc(be, dt, ndim, ne, &t), DIA_OK);
    if (host) assert_int_equal(dia_tensor_upload(be, &t, host, dia_tensor_nbytes(&t)), DIA_OK);
    return t;
}
static float *get(dia_backend *be, const dia_tensor *t) {
    float *p = malloc(dia_tensor_nbytes(t));
    assert_int_equal(dia_tensor_download(be, t, p, dia_tensor_nbytes(t)), DIA_OK);
    return p;
}

/* max |a - b| / (1 + max |b|) */
static double rel_diff(const float *a, const float *b, size_t n) {
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
    return max_abs_diff(a, b, n) / (1.0 + mx);
}

typedef struct pair {
    dia_backend *cpu, *gpu;
} pair;

static pair backends(void) {
    pair p;
    assert_int_equal(dia_backend_new("cpu", 2, 0, &p.cpu), DIA_OK);
    assert_int_equal(dia_backend_new("cuda", 0, 0, &p.gpu), DIA_OK);
    return p;
}
static void backends_free(pair *p) {
    dia_backend_free(p->cpu);
    dia_backend_free(p->gpu);
}

/* ---------------------------------------------------------------------------------------------
 * transformer ops vs the CPU backend
 * ------------------------------------------------------------------------------------------- */
static void check_matmul(pair *p, int64_t M, int64_t K, int64_t N, int trans, dia_dtype wdt, int accumulate, double tol) {
    float *x = rand_f32((size_t)(M * K), 1.0f), *w = rand_f32((size_t)(N * K), 0.05f), *y0 = rand_f32((size_t)(M * N), 1.0f);
    void *wh = w;
    uint16_t *wb = NULL;
    if (wdt == DIA_BF16) {
        wb = malloc((size_t)(N * K) * 2);
        for (int64_t i = 0; i < N * K; i++) wb[i] = dia_f32_to_bf16(w[i]);
        wh = wb;
    }
    int64_t sx[2] = {M, K}, sw[2] = {trans ? N : K, trans ? K : N}, sy[2] = {M, N};
    float *out[2];
    dia_backend *bes[2] = {p->cpu, p->gpu};
    for (int b = 0; b < 2; b++) {
        dia_tensor tx = mk(bes[b], DIA_F32, 2, sx, x), tw = mk(bes[b], wdt, 2, sw, wh), ty = mk(bes[b], DIA_F32, 2, sy, y0);
        assert_int_equal(bes[b]->ops->matmul(bes[b], &ty, &tx, &tw, trans, accumulate), DIA_OK);
        out[b] = get(bes[b], &ty);
        dia_tensor_free(bes[b], &tx);
        dia_tensor_free(bes[b], &tw);
        dia_tensor_free(bes[b], &ty);
    }
    double d = rel_diff(out[1], out[0], (size_t)(M * N));
    printf("  matmul M=%lld K=%lld N=%lld trans=%d %s acc=%d: rel diff %.3g\n", (long long)M, (long long)K,
           (long long)N, trans, dia_dtype_name(wdt), accumulate, d);
    if (!(d <= tol)) fail_msg("matmul rel diff %.3g above %.3g", d, tol);
    free(out[0]);
    free(out[1]);
    free(x);
    free(w);
    free(wb);
    free(y0);
}

static void test_ops_matmul(void **state) {
    (void)state;
    NEED_CUDA();
    pair p = backends();
    /* f32: cublasSgemm without TF32 */
    check_matmul(&p, 2, 256, 384, 1, DIA_F32, 0, 1e-5);
    check_matmul(&p, 37, 200, 130, 0, DIA_F32, 1, 1e-5);
    /* bf16, nn.Linear layout, M <= 4: the opt-in GEMV (f32 activations) -> float-rounding only */
    setenv("DIA_CUDA_GEMV", "1", 1);
    check_matmul(&p, 1, 2048, 512, 1, DIA_BF16, 0, 1e-5);
    check_matmul(&p, 2, 2048, 9252, 1, DIA_BF16, 1, 1e-5);
    check_matmul(&p, 3, 1024, 8192, 1, DIA_BF16, 0, 1e-5);
    check_matmul(&p, 4, 8192, 2048, 1, DIA_BF16, 1, 1e-5);
    unsetenv("DIA_CUDA_GEMV");
    /* the same by default: tensor-core GEMMs with activations rounded to bf16 */
    check_matmul(&p, 1, 2048, 512, 1, DIA_BF16, 0, 1e-2);
    check_matmul(&p, 2, 2048, 9252, 1, DIA_BF16, 1, 1e-2);
    check_matmul(&p, 4, 8192, 2048, 1, DIA_BF16, 1, 1e-2);
    /* bf16, more rows (decode at B = 3..64): cuBLAS with activations rounded to bf16 */
    check_matmul(&p, 16, 2048, 2048, 1, DIA_BF16, 1, 1e-2);
    check_matmul(&p, 5, 512, 64, 1, DIA_BF16, 0, 1e-2);
    check_matmul(&p, 40, 1024, 512, 1, DIA_BF16, 1, 1e-2);
    check_matmul(&p, 128, 8192, 2048, 1, DIA_BF16, 0, 1e-2);
    check_matmul(&p, 100, 2048, 16384, 1, DIA_BF16, 1, 1e-2);
    /* bf16 otherwise: activations rounded to bf16 for cuBLAS (relative error ~2^-9 per product) */
    check_matmul(&p, 48, 512, 640, 1, DIA_BF16, 0, 1e-2);
    check_matmul(&p, 16, 2048, 8192, 1, DIA_BF16, 0, 1e-2);
    check_matmul(&p, 5, 300, 260, 0, DIA_BF16, 1, 1e-2);
    check_matmul(&p, 2, 100, 70, 1, DIA_BF16, 0, 1e-2); /* K not a multiple of 8: cuBLAS path */
    backends_free(&p);
}

static void check_attention(pair *p, int64_t R, int64_t T, int64_t Hq, int64_t Hkv, int64_t hd, int64_t S,
                            const int32_t *len, int causal) {
    float *q = rand_f32((size_t)(R * T * Hq * hd), 0.3f), *k = rand_f32((size_t)(R * Hkv * S * hd), 0.3f),
          *v = rand_f32((size_t)(R * Hkv * S * hd), 1.0f);
    int32_t *qp = malloc((size_t)(R * T) * sizeof(int32_t));
    for (int64_t r = 0; r < R; r++)
        for (int64_t t = 0; t < T; t++) qp[r * T + t] = len[r] - (int32_t)T + (int32_t)t;
    int64_t sq[4] = {R, T, Hq, hd}, sk[4] = {R, Hkv, S, hd}, sr[1] = {R}, sp[2] = {R, T};
    dia_backend *bes[2] = {p->cpu, p->gpu};
    float *out[2];
    for (int b = 0; b < 2; b++) {
        dia_tensor tq = mk(bes[b], DIA_F32, 4, sq, q), tk = mk(bes[b], DIA_F32, 4, sk, k), tv = mk(bes[b], DIA_F32, 4, sk, v);
        dia_tensor to = mk(bes[b], DIA_F32, 4, sq, NULL), tl = mk(bes[b], DIA_I32, 1, sr, len),
                   tp = mk(bes[b], DIA_I32, 2, sp, qp);
        assert_int_equal(bes[b]->ops->attention(bes[b], &to, &tq, &tk, &tv, &tl, causal ? &tp : NULL), DIA_OK);
        out[b] = get(bes[b], &to);
        dia_tensor *all[] = {&tq, &tk, &tv, &to, &tl, &tp};
        for (int i = 0; i < 6; i++) dia_tensor_free(bes[b], all[i]);
    }
    double d = max_abs_diff(out[1], out[0], (size_t)(R * T * Hq * hd));
    printf("  attention R=%lld T=%lld H=%lld/%lld hd=%lld S=%lld causal=%d: max diff %.3g\n", (long long)R,
           (long long)T, (long long)Hq, (long long)Hkv, (long long)hd, (long long)S, causal, d);
    if (!(d <= 1e-5)) fail_msg("attention max diff %.3g", d);
    free(out[0]);
    free(out[1]);
    free(q);
    free(k);
    free(v);
    free(qp);
}

/* The batch-decode GEMMs against cuBLAS on the same bf16 operands: the mma.sync split-K kernel
 * (cuda_gemm_rows.cu, forced with DIA_CUDA_GEMM_ROWS=2 for every shape it takes) and the wgmma one
 * (cuda_gemm_wgmma.cu, opt-in with DIA_CUDA_GEMM_WG=1 on an sm_90a device). All accumulate the same
 * products in f32, so only the summation order differs; each gives the same bits on a second run
 * (the split-K sums run in a fixed order). */
static void check_gemm_rows(dia_backend *be, int64_t M, int64_t K, int64_t N, int accumulate) {
    float *x = rand_f32((size_t)(M * K), 1.0f), *w = rand_f32((size_t)(N * K), 0.05f), *y0 = rand_f32((size_t)(M * N), 1.0f);
    uint16_t *wb = malloc((size_t)(N * K) * 2);
    for (int64_t i = 0; i < N * K; i++) wb[i] = dia_f32_to_bf16(w[i]);
    int64_t sx[2] = {M, K}, sw[2] = {N, K}, sy[2] = {M, N};
    dia_tensor tx = mk(be, DIA_F32, 2, sx, x), tw = mk(be, DIA_BF16, 2, sw, wb), ty = mk(be, DIA_F32, 2, sy, y0);
    float *out[5];
    /* gemm_rows twice, wgmma twice, then cuBLAS */
    const char *rows[5] = {"2", "2", "1", "1", "0"}, *wg[5] = {"1", "1", "1", "1", "0"};
    for (int r = 0; r < 5; r++) {
        setenv("DIA_CUDA_GEMM_ROWS", rows[r], 1);
        setenv("DIA_CUDA_GEMM_WG", wg[r], 1);
        assert_int_equal(dia_tensor_upload(be, &ty, y0, (size_t)(M * N) * 4), DIA_OK);
        assert_int_equal(be->ops->matmul(be, &ty, &tx, &tw, 1, accumulate), DIA_OK);
        out[r] = get(be, &ty);
    }
    unsetenv("DIA_CUDA_GEMM_ROWS");
    unsetenv("DIA_CUDA_GEMM_WG");
    const double d_rows = rel_diff(out[0], out[4], (size_t)(M * N)), d_wg = rel_diff(out[2], out[4], (size_t)(M * N));
    const int same_rows = !memcmp(out[0], out[1], (size_t)(M * N) * 4), same_wg = !memcmp(out[2], out[3], (size_t)(M * N) * 4);
    printf("  M=%lld K=%lld N=%lld acc=%d: rel diff to cuBLAS: gemm_rows %.3g (rerun %s), wgmma %.3g (rerun %s)\n",
           (long long)M, (long long)K, (long long)N, accumulate, d_rows, same_rows ? "identical" : "DIFFERS", d_wg,
           same_wg ? "identical" : "DIFFERS");
    if (!(d_rows <= 1e-5)) fail_msg("gemm_rows rel diff %.3g above 1e-5", d_rows);
    if (!(d_wg <= 1e-5)) fail_msg("wgmma rel diff %.3g above 1e-5", d_wg);
    assert_true(same_rows && same_wg);
    for (int r = 0; r < 5; r++) free(out[r]);
    dia_tensor_free(be, &tx);
    dia_tensor_free(be, &tw);
    dia_tensor_free(be, &ty);
    free(x);
    free(w);
    free(wb);
    free(y0);
}

static void test_gemm_rows(void **state) {
    (void)state;
    NEED_CUDA();
    dia_backend *be = NULL;
    assert_int_equal(dia_backend_new("cuda", 0, 0, &be), DIA_OK);
    check_gemm_rows(be, 128, 2048, 2048, 1); /* B = 64: o-proj into the residual (split 8) */
    check_gemm_rows(be, 128, 8192, 2048, 1); /* down-proj */
    check_gemm_rows(be, 128, 2048, 16384, 0); /* gate_up (no split) */
    check_gemm_rows(be, 128, 2048, 9252, 0); /* logits: a part tile */
    check_gemm_rows(be, 16, 2048, 512, 0);   /* B = 8: k-proj */
    check_gemm_rows(be, 2, 8192, 2048, 1);   /* B = 1: down-proj */
    check_gemm_rows(be, 64, 1024, 2048, 1);  /* B = 32 */
    check_gemm_rows(be, 5, 64, 36, 0);       /* one chunk, a part tile, rows within one warp */
    check_gemm_rows(be, 97, 192, 1000, 1);   /* three chunks over three splits, odd rows */
    dia_backend_free(be);
}

/* The split decode attention merges its partials inside a thread-block cluster (many splits) or
 * through global memory by the last block of a (query, head group), over the splits that got keys
 * (cuda_attention.cu); its knobs pick the path: every case runs under each setting (comma-separated
 * VAR=value). */
static const char *const att_modes[] = {
    "",                                                       /* the defaults */
    "DIA_CUDA_ATT_CLUSTER=8",                                 /* portable cluster size */
    "DIA_CUDA_ATT_CLUSTER=3,DIA_CUDA_ATT_CLUSTER_MIN=2",      /* small clusters */
    "DIA_CUDA_ATT_CLUSTER=0",                                 /* the merge through global memory */
    "DIA_CUDA_ATT_CLUSTER=0,DIA_CUDA_ATT_ACTIVE=1",           /* ... with every split active */
    "DIA_CUDA_ATT_CLUSTER=0,DIA_CUDA_ATT_ACTIVE=100,DIA_CUDA_ATT_WANT=8",
    "DIA_CUDA_ATT_RAW=0", /* the register form of the bf16 head-128 ungrouped kernel */
};
static const char *const att_knobs[] = {"DIA_CUDA_ATT_CLUSTER", "DIA_CUDA_ATT_CLUSTER_MIN", "DIA_CUDA_ATT_ACTIVE",
                                        "DIA_CUDA_ATT_WANT", "DIA_CUDA_ATT_RAW"};

static void att_mode_set(const char *mode) {
    for (size_t i = 0; i < sizeof att_knobs / sizeof *att_knobs; i++) unsetenv(att_knobs[i]);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", mode);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        if (eq) *eq = 0, setenv(tok, eq + 1, 1);
    }
    printf("  attention mode: %s\n", *mode ? mode : "(defaults)");
}

/* cases(p) under every setting of att_modes, on a fresh CPU / CUDA pair */
static void in_att_modes(void (*cases)(pair *)) {
    pair p = backends();
    for (size_t i = 0; i < sizeof att_modes / sizeof *att_modes; i++) {
        att_mode_set(att_modes[i]);
        cases(&p);
    }
    att_mode_set("");
    backends_free(&p);
}

static void attention_cases(pair *pp) {
    pair p = *pp;
    /* decode: one query per row over a long fixed cache (split over the sequence), GQA 16/4 */
    int32_t len4[4] = {3072, 1, 1500, 0};
    check_attention(&p, 4, 1, 16, 4, 128, 3072, len4, 0);
    int32_t len2g[2] = {1000, 13};
    check_attention(&p, 2, 1, 8, 4, 128, 1000, len2g, 0); /* GQA group of 2 */
    int32_t len2[2] = {777, 777};
    check_attention(&p, 2, 1, 16, 4, 128, 3072, len2, 1);
    /* prefill: causal, several queries */
    int32_t len2b[2] = {40, 40};
    check_attention(&p, 2, 9, 16, 4, 128, 64, len2b, 1);
    /* cross-attention / encoder: MHA, per-row lengths, small head_dim */
    int32_t len6[6] = {5, 31, 17, 32, 1, 20};
    check_attention(&p, 6, 32, 4, 4, 16, 32, len6, 0);
    /* encoder / cross-attention at full size: many queries (no split), hd 128 */
    int32_t len2c[2] = {130, 77};
    check_attention(&p, 2, 40, 16, 16, 128, 130, len2c, 0);
    check_attention(&p, 2, 40, 16, 16, 128, 130, len2c, 1);
    int32_t len3[3] = {100, 57, 3};
    check_attention(&p, 3, 4, 8, 8, 64, 100, len3, 1);
    check_attention(&p, 3, 1, 8, 2, 32, 2048, len3, 0);
    int32_t len1[1] = {200};
    check_attention(&p, 1, 3, 8, 2, 80, 256, len1, 0);
}

static void test_ops_attention(void **state) {
    (void)state;
    NEED_CUDA();
    in_att_modes(attention_cases);
}

/* bf16 attention caches (the CUDA cache dtype when the weights are bf16): K and V rounded to bf16
 * on the host and uploaded as DIA_BF16. Two comparisons: (1) against the CPU backend run on the
 * same rounded values in f32 - the kernels only convert on load and accumulate in f32, so this is
 * float rounding only (tolerance 1e-5, like the f32 attention test); (2) against the f32-cache
 * result on the unrounded K/V - the accuracy cost of the bf16 cache (tolerance 1e-2 absolute, for
 * |v| < 1 and q.k logits of magnitude ~0.3: bf16 rounds each element by <= 2^-9 relative). */
static void check_attention_bf16(pair *p, int64_t R, int64_t T, int64_t Hq, int64_t Hkv, int64_t hd, int64_t S,
                                 const int32_t *len, int causal) {
    const size_t nq = (size_t)(R * T * Hq * hd), nk = (size_t)(R * Hkv * S * hd);
    float *q = rand_f32(nq, 0.3f), *k = rand_f32(nk, 0.3f), *v = rand_f32(nk, 1.0f);
    uint16_t *kb = malloc(nk * 2), *vb = malloc(nk * 2);
    float *kr = malloc(nk * sizeof(float)), *vr = malloc(nk * sizeof(float));
    for (size_t i = 0; i < nk; i++) {
        kb[i] = dia_f32_to_bf16(k[i]), vb[i] = dia_f32_to_bf16(v[i]);
        const uint32_t a = (uint32_t)kb[i] << 16, b = (uint32_t)vb[i] << 16;
        memcpy(kr + i, &a, 4), memcpy(vr + i, &b, 4);
    }
    int32_t *qp = malloc((size_t)(R * T) * sizeof(int32_t));
    for (int64_t r = 0; r < R; r++)
        for (int64_t t = 0; t < T; t++) qp[r * T + t] = len[r] - (int32_t)T + (int32_t)t;
    int64_t sq[4] = {R, T, Hq, hd}, sk[4] = {R, Hkv, S, hd}, sr[1] = {R}, sp[2] = {R, T};
    /* 0: GPU bf16 cache, 1: CPU on the rounded values (f32), 2: GPU f32 cache (unrounded) */
    dia_backend *bes[3] = {p->gpu, p->cpu, p->gpu};
    const dia_dtype dts[3] = {DIA_BF16, DIA_F32, DIA_F32};
    const void *ks[3] = {kb, kr, k}, *vs[3] = {vb, vr, v};
    float *out[3];
    for (int b = 0; b < 3; b++) {
        dia_backend *be = bes[b];
        dia_tensor tq = mk(be, DIA_F32, 4, sq, q), tk = mk(be, dts[b], 4, sk, ks[b]), tv = mk(be, dts[b], 4, sk, vs[b]);
        dia_tensor to = mk(be, DIA_F32, 4, sq, NULL), tl = mk(be, DIA_I32, 1, sr, len), tp = mk(be, DIA_I32, 2, sp, qp);
        assert_int_equal(be->ops->attention(be, &to, &tq, &tk, &tv, &tl, causal ? &tp : NULL), DIA_OK);
        out[b] = get(be, &to);
        dia_tensor *all[] = {&tq, &tk, &tv, &to, &tl, &tp};
        for (int i = 0; i < 6; i++) dia_tensor_free(be, all[i]);
    }
    const double d_cpu = max_abs_diff(out[0], out[1], nq), d_f32 = max_abs_diff(out[0], out[2], nq);
    printf("  bf16-cache attention R=%lld T=%lld H=%lld/%lld hd=%lld S=%lld causal=%d: vs CPU on the rounded K/V "
           "%.3g, vs the f32 cache %.3g\n",
           (long long)R, (long long)T, (long long)Hq, (long long)Hkv, (long long)hd, (long long)S, causal, d_cpu, d_f32);
    if (!(d_cpu <= 1e-5)) fail_msg("bf16-cache attention vs CPU on the rounded values: max diff %.3g", d_cpu);
    if (!(d_f32 <= 1e-2)) fail_msg("bf16-cache attention vs the f32 cache: max diff %.3g", d_f32);
    for (int b = 0; b < 3; b++) free(out[b]);
    free(q), free(k), free(v), free(kb), free(vb), free(kr), free(vr), free(qp);
}

static void attention_bf16_cases(pair *pp) {
    pair p = *pp;
    /* decode at full size: 3072-position caches, GQA 16/4 (grouped kernel), rows 2 and 128 */
    int32_t len2[2] = {3072, 1500};
    check_attention_bf16(&p, 2, 1, 16, 4, 128, 3072, len2, 0);
    int32_t *len128 = malloc(128 * sizeof(int32_t));
    for (int r = 0; r < 128; r++) len128[r] = r == 0 ? 3072 : r == 1 ? 0 : r == 2 ? 1 : (r * 997 + 13) % 3073;
    check_attention_bf16(&p, 128, 1, 16, 4, 128, 3072, len128, 0);
    free(len128);
    int32_t len2g[2] = {1000, 13};
    check_attention_bf16(&p, 2, 1, 8, 4, 128, 1000, len2g, 0); /* GQA group of 2 */
    int32_t len2p[2] = {777, 777};
    check_attention_bf16(&p, 2, 1, 16, 4, 128, 3072, len2p, 1);
    /* causal prefill, several queries */
    int32_t len2b[2] = {40, 40};
    check_attention_bf16(&p, 2, 9, 16, 4, 128, 64, len2b, 1);
    /* cross-attention / encoder: MHA hd 128 (vectorised kernel), many queries */
    int32_t len2c[2] = {130, 77};
    check_attention_bf16(&p, 2, 40, 16, 16, 128, 130, len2c, 0);
    check_attention_bf16(&p, 2, 40, 16, 16, 128, 130, len2c, 1);
    /* cross-attention decode steps (one query per row, split over a 1024-key cache): 2 and 64 rows */
    int32_t len2x[2] = {130, 1};
    check_attention_bf16(&p, 2, 1, 16, 16, 128, 1024, len2x, 0);
    int32_t len64[64];
    for (int r = 0; r < 64; r++) len64[r] = r == 0 ? 1024 : r == 1 ? 0 : (r * 389 + 7) % 1025;
    check_attention_bf16(&p, 64, 1, 16, 16, 128, 1024, len64, 0);
    /* vectorised kernel at hd 64 / 32, generic kernel at hd 16 / 80 */
    int32_t len3[3] = {100, 57, 3};
    check_attention_bf16(&p, 3, 4, 8, 8, 64, 100, len3, 1);
    check_attention_bf16(&p, 3, 1, 8, 2, 32, 2048, len3, 0);
    int32_t len6[6] = {5, 31, 17, 32, 1, 20};
    check_attention_bf16(&p, 6, 32, 4, 4, 16, 32, len6, 0);
    int32_t len1[1] = {200};
    check_attention_bf16(&p, 1, 3, 8, 2, 80, 256, len1, 0);
}

static void test_ops_attention_bf16_cache(void **state) {
    (void)state;
    NEED_CUDA();
    in_att_modes(attention_bf16_cases);
}

/* kv_store into a bf16 cache: every stored element is the f32 source rounded to nearest even,
 * everything else stays zero (fresh allocations are zero-filled); a position past the capacity is
 * skipped. */
static void test_kv_store_bf16(void **state) {
    (void)state;
    NEED_CUDA();
    pair p = backends();
    dia_backend *be = p.gpu;
    const int64_t R = 2, T = 3, H = 4, hd = 128, S = 16;
    float *src = rand_f32((size_t)(R * T * H * hd), 3.0f);
    src[0] = 1.0f + 1.0f / 256.0f; /* a tie: rounds to even (1.0) */
    src[1] = -0.0f;
    int32_t start[2] = {5, 14}; /* row 1: positions 14, 15 stored, 16 skipped */
    int64_t ssrc[4] = {R, T, H, hd}, sc[4] = {R, H, S, hd}, s1[1] = {R};
    dia_tensor tsrc = mk(be, DIA_F32, 4, ssrc, src), tc = mk(be, DIA_BF16, 4, sc, NULL), tst = mk(be, DIA_I32, 1, s1, start);
    assert_int_equal(be->ops->kv_store(be, &tc, &tsrc, &tst), DIA_OK);
    const size_t n = (size_t)(R * H * S * hd);
    uint16_t *got = malloc(n * 2);
    assert_int_equal(dia_tensor_download(be, &tc, got, n * 2), DIA_OK);
    size_t bad = 0, stored = 0;
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t s = 0; s < S; s++)
                for (int64_t e = 0; e < hd; e++) {
                    const int64_t t = s - start[r];
                    uint16_t want = 0;
                    if (t >= 0 && t < T) {
                        want = dia_f32_to_bf16(src[((r * T + t) * H + h) * hd + e]);
                        stored++;
                    }
                    if (got[((r * H + h) * S + s) * hd + e] != want) bad++;
                }
    printf("  kv_store bf16: %zu elements stored, %zu mismatches\n", stored, bad);
    assert_int_equal(bad, 0);
    assert_int_equal(stored, (size_t)(H * hd * (3 + 2)));
    assert_int_equal(got[(size_t)(5 * hd)], 0x3f80); /* src[0] (r 0, h 0, s 5, e 0): the tie went to even */
    /* round trip through attention: one key per row, so out = v exactly (as bf16 -> f32) */
    int64_t sq[4] = {R, 1, H, hd};
    int32_t one[2] = {1, 1}, zero[2] = {0, 0};
    dia_tensor tv = mk(be, DIA_BF16, 4, sc, NULL), tz = mk(be, DIA_I32, 1, s1, zero), tl = mk(be, DIA_I32, 1, s1, one);
    dia_tensor tq = mk(be, DIA_F32, 4, sq, src), to = mk(be, DIA_F32, 4, sq, NULL);
    assert_int_equal(be->ops->kv_store(be, &tc, &tsrc, &tz), DIA_OK);
    assert_int_equal(be->ops->kv_store(be, &tv, &tsrc, &tz), DIA_OK);
    assert_int_equal(be->ops->attention(be, &to, &tq, &tc, &tv, &tl, NULL), DIA_OK);
    float *o = get(be, &to);
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < H * hd; i++) {
            const uint32_t u = (uint32_t)dia_f32_to_bf16(src[(r * T) * H * hd + i]) << 16;
            float w;
            memcpy(&w, &u, 4);
            if (o[r * H * hd + i] != w) fail_msg("bf16 round trip r %lld i %lld: %g vs %g", (long long)r, (long long)i,
                                                 o[r * H * hd + i], w);
        }
    free(o);
    dia_tensor *all[] = {&tsrc, &tc, &tst, &tv, &tz, &tl, &tq, &to};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dia_tensor_free(be, all[i]);
    free(got);
    free(src);
    backends_free(&p);
}

/* The fused projection (slot `linear`) against the CPU backend's composition (rmsnorm, matmul per
 * weight, silu_mul): plain / normed input, 1 or 3 weights, the gated (SiLU) output, overwrite and
 * accumulate, the decode row counts of the fused kernel (1..4) and a batch that composes on the
 * device. mode: 0 plain, 1 norm, 2 norm + gated, 3 gated. */
static void check_linear(pair *p, int64_t M, int64_t K, int mode, int n, const int64_t *N, int accumulate, double tol) {
    const int norm = mode == 1 || mode == 2, gated = mode >= 2;
    float *x = rand_f32((size_t)(M * K), 2.0f), *g = rand_f32((size_t)K, 1.0f);
    float *y0[3], *out[2][3];
    int64_t NY[3];
    uint16_t *wb[3];
    for (int i = 0; i < n; i++) {
        float *w = rand_f32((size_t)(N[i] * K), 0.05f);
        wb[i] = malloc((size_t)(N[i] * K) * 2);
        for (int64_t j = 0; j < N[i] * K; j++) wb[i][j] = dia_f32_to_bf16(w[j]);
        free(w);
        NY[i] = gated ? N[i] / 2 : N[i];
        y0[i] = rand_f32((size_t)(M * NY[i]), 1.0f);
    }
    dia_backend *bes[2] = {p->cpu, p->gpu};
    for (int b = 0; b < 2; b++) {
        dia_backend *be = bes[b];
        int64_t sx[2] = {M, K}, sg[1] = {K}, so[2] = {M, N[0]};
        dia_tensor tx = mk(be, DIA_F32, 2, sx, x), tg = mk(be, DIA_F32, 1, sg, g), tsc = mk(be, DIA_F32, 2, sx, NULL);
        dia_tensor tso = mk(be, DIA_F32, 2, so, NULL);
        dia_tensor tw[3], ty[3];
        dia_linear_args a = {.x = &tx, .norm_w = norm ? &tg : NULL, .eps = 1e-5f, .gated = gated, .n = n,
                             .accumulate = accumulate, .scratch = &tsc, .scratch_out = &tso};
        for (int i = 0; i < n; i++) {
            int64_t sw[2] = {N[i], K}, sy[2] = {M, NY[i]};
            tw[i] = mk(be, DIA_BF16, 2, sw, wb[i]);
            ty[i] = mk(be, DIA_F32, 2, sy, y0[i]);
            a.y[i] = &ty[i];
            a.w[i] = &tw[i];
            a.trans_w[i] = 1;
        }
        assert_int_equal(op_linear_fused(be, &a), DIA_OK);
        for (int i = 0; i < n; i++) {
            out[b][i] = get(be, &ty[i]);
            dia_tensor_free(be, &tw[i]);
            dia_tensor_free(be, &ty[i]);
        }
        dia_tensor *all[] = {&tx, &tg, &tsc, &tso};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dia_tensor_free(be, all[i]);
    }
    static const char *names[] = {"plain", "norm", "norm+gated", "gated"};
    for (int i = 0; i < n; i++) {
        const double d = rel_diff(out[1][i], out[0][i], (size_t)(M * NY[i]));
        printf("  linear M=%lld K=%lld %s n=%d N[%d]=%lld acc=%d: rel diff %.3g\n", (long long)M, (long long)K,
               names[mode], n, i, (long long)N[i], accumulate, d);
        if (!(d <= tol)) fail_msg("linear rel diff %.3g above %.3g", d, tol);
        free(out[0][i]);
        free(out[1][i]);
        free(wb[i]);
        free(y0[i]);
    }
    free(x);
    free(g);
}

static void test_ops_linear_fused(void **state) {
    (void)state;
    NEED_CUDA();
    pair p = backends();
    const int64_t qkv[3] = {2048, 512, 512}, one[1] = {2048}, gu[1] = {16384}, logits[1] = {9252}, odd[2] = {36, 1000};
    setenv("DIA_CUDA_GEMV", "1", 1); /* the opt-in fused GEMV for <= 4 rows */
    for (int64_t M = 1; M <= 4; M++) {
        check_linear(&p, M, 2048, 1, 3, qkv, 0, 1e-5); /* rmsnorm + q, k, v */
        check_linear(&p, M, 2048, 0, 1, one, 1, 1e-5); /* o-proj into the residual */
        check_linear(&p, M, 2048, 2, 1, gu, 0, 1e-5);  /* rmsnorm + gate_up + SiLU gate */
        check_linear(&p, M, 8192, 0, 1, one, 1, 1e-5); /* down-proj into the residual */
    }
    check_linear(&p, 2, 2048, 1, 1, logits, 0, 1e-5); /* final norm + logits head */
    check_linear(&p, 2, 256, 1, 2, odd, 0, 1e-5);     /* rows not divisible by 4 */
    check_linear(&p, 3, 512, 3, 1, odd + 1, 0, 1e-5); /* gated without norm */
    unsetenv("DIA_CUDA_GEMV");
    check_linear(&p, 2, 2048, 1, 3, qkv, 0, 5e-3); /* B = 1 by default: composed (bf16 activations) */
    check_linear(&p, 2, 2048, 2, 1, gu, 0, 5e-3);
    check_linear(&p, 6, 2048, 1, 3, qkv, 0, 5e-3);    /* B = 3: composed (cuBLAS, bf16 activations) */
    check_linear(&p, 6, 1024, 2, 1, gu, 0, 5e-3);
    check_linear(&p, 128, 2048, 1, 3, qkv, 0, 5e-3); /* B = 64: q, k, v in one launch */
    check_linear(&p, 128, 2048, 2, 1, gu, 0, 5e-3);
    backends_free(&p);
}

/* rope_kv_store equals rope, rope, kv_store, kv_store on the device bit for bit (f32 and bf16
 * caches, one and three positions, a row whose last position falls past the capacity). */
static void test_rope_kv_store(void **state) {
    (void)state;
    NEED_CUDA();
    pair p = backends();
    dia_backend *be = p.gpu;
    const int64_t R = 2, H = 16, KV = 4, hd = 128, S = 16;
    for (int cd = 0; cd < 2; cd++)
        for (int64_t T = 1; T <= 3; T += 2) {
            const dia_dtype cdt = cd ? DIA_BF16 : DIA_F32;
            const int64_t M = R * T;
            float *q = rand_f32((size_t)(M * H * hd), 2.0f), *k = rand_f32((size_t)(M * KV * hd), 2.0f);
            float *v = rand_f32((size_t)(M * KV * hd), 2.0f);
            int32_t pos[6], start[2] = {3, 14};
            for (int64_t r = 0; r < R; r++)
                for (int64_t t = 0; t < T; t++) pos[r * T + t] = start[r] + (int32_t)t + 1000 * (int32_t)r;
            int64_t sq[3] = {M, H, hd}, sk[4] = {R, T, KV, hd}, sc[4] = {R, KV, S, hd}, sm[1] = {M}, sr[1] = {R};
            float *res[2][3];
            for (int way = 0; way < 2; way++) {
                dia_tensor tq = mk(be, DIA_F32, 3, sq, q), tk = mk(be, DIA_F32, 4, sk, k), tv = mk(be, DIA_F32, 4, sk, v);
                dia_tensor kc = mk(be, cdt, 4, sc, NULL), vc = mk(be, cdt, 4, sc, NULL);
                dia_tensor tp = mk(be, DIA_I32, 1, sm, pos), ts = mk(be, DIA_I32, 1, sr, start);
                const size_t cb = dia_tensor_nbytes(&kc);
                void *zero = calloc(1, cb);
                assert_int_equal(dia_tensor_upload(be, &kc, zero, cb), DIA_OK);
                assert_int_equal(dia_tensor_upload(be, &vc, zero, cb), DIA_OK);
                free(zero);
                if (way == 0) {
                    assert_int_equal(be->ops->rope_kv_store(be, &tq, &tk, &tv, &kc, &vc, &tp, &ts, 10000.0f), DIA_OK);
                } else {
                    int64_t k3[3] = {M, KV, hd};
                    dia_tensor kr = dia_tensor_view(&tk, 0, 3, k3);
                    assert_int_equal(be->ops->rope(be, &tq, &tp, 10000.0f), DIA_OK);
                    assert_int_equal(be->ops->rope(be, &kr, &tp, 10000.0f), DIA_OK);
                    assert_int_equal(be->ops->kv_store(be, &kc, &tk, &ts), DIA_OK);
                    assert_int_equal(be->ops->kv_store(be, &vc, &tv, &ts), DIA_OK);
                }
                res[way][0] = get(be, &tq);
                res[way][1] = malloc(2 * cb);
                assert_int_equal(dia_tensor_download(be, &kc, res[way][1], cb), DIA_OK);
                assert_int_equal(dia_tensor_download(be, &vc, (char *)res[way][1] + cb, cb), DIA_OK);
                res[way][2] = get(be, &tk);
                dia_tensor *all[] = {&tq, &tk, &tv, &kc, &vc, &tp, &ts};
                for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dia_tensor_free(be, all[i]);
                if (way == 1) {
                    assert_memory_equal(res[0][0], res[1][0], (size_t)(M * H * hd) * 4);
                    assert_memory_equal(res[0][1], res[1][1], 2 * cb);
                    assert_memory_equal(res[0][2], res[1][2], (size_t)(M * KV * hd) * 4);
                }
            }
            printf("  rope_kv_store T=%lld %s cache: identical to rope + kv_store\n", (long long)T, dia_dtype_name(cdt));
            for (int w = 0; w < 2; w++)
                for (int i = 0; i < 3; i++) free(res[w][i]);
            free(q);
            free(k);
            free(v);
        }
    backends_free(&p);
}

/* linear_rope_kv_store (q|k|v projections with RoPE and the cache stores in the batch GEMM's
 * epilogue) equals linear + rope_kv_store bit for bit: q, k, v outputs and both caches, f32 and
 * bf16 caches, one and three positions per row, a row whose cache position is out of range (not
 * stored), and rows from 2 (B = 1) to 128 (B = 64). DIA_CUDA_QKV_ROPE=0 gives the two ops. */
static void check_linear_rope(dia_backend *be, int64_t R, int64_t T, dia_dtype cdt) {
    const int64_t M = R * T, K = 256, H = 4, KV = 2, hd = 128, S = 12, N[3] = {H * hd, KV * hd, KV * hd};
    float *x = rand_f32((size_t)(M * K), 1.0f), *nw = rand_f32((size_t)K, 1.0f);
    uint16_t *wb[3];
    for (int i = 0; i < 3; i++) {
        float *w = rand_f32((size_t)(N[i] * K), 0.1f);
        wb[i] = malloc((size_t)(N[i] * K) * 2);
        for (int64_t e = 0; e < N[i] * K; e++) wb[i][e] = dia_f32_to_bf16(w[e]);
        free(w);
    }
    int32_t *pos = malloc((size_t)M * sizeof(int32_t)), *start = malloc((size_t)R * sizeof(int32_t));
    for (int64_t r = 0; r < R; r++) {
        start[r] = r == 1 ? (int32_t)S : (int32_t)((r * 5) % (S - T + 1)); /* row 1: past the cache, not stored */
        for (int64_t t = 0; t < T; t++) pos[r * T + t] = start[r] + (int32_t)t + 700 * (int32_t)(r % 3);
    }
    int64_t sx[2] = {M, K}, sn[1] = {K}, sm[1] = {M}, sr[1] = {R}, sc[4] = {R, KV, S, hd};
    dia_tensor tx = mk(be, DIA_F32, 2, sx, x), tn = mk(be, DIA_F32, 1, sn, nw), tw[3], ty[3];
    dia_tensor tp = mk(be, DIA_I32, 1, sm, pos), ts = mk(be, DIA_I32, 1, sr, start);
    for (int i = 0; i < 3; i++) {
        int64_t sw[2] = {N[i], K}, sy[2] = {M, N[i]};
        tw[i] = mk(be, DIA_BF16, 2, sw, wb[i]);
        ty[i] = mk(be, DIA_F32, 2, sy, NULL);
    }
    dia_tensor kc = mk(be, cdt, 4, sc, NULL), vc = mk(be, cdt, 4, sc, NULL);
    const size_t cb = dia_tensor_nbytes(&kc);
    float *res[2][5];
    for (int way = 0; way < 2; way++) {
        setenv("DIA_CUDA_QKV_ROPE", way ? "0" : "1", 1);
        void *zero = calloc(1, cb);
        assert_int_equal(dia_tensor_upload(be, &kc, zero, cb), DIA_OK);
        assert_int_equal(dia_tensor_upload(be, &vc, zero, cb), DIA_OK);
        free(zero);
        dia_linear_args a = {.x = &tx, .norm_w = &tn, .eps = 1e-5f, .n = 3, .y = {&ty[0], &ty[1], &ty[2]},
                             .w = {&tw[0], &tw[1], &tw[2]}, .trans_w = {1, 1, 1}};
        int64_t q3[3] = {M, H, hd}, k4[4] = {R, T, KV, hd};
        dia_tensor vq = dia_tensor_view(&ty[0], 0, 3, q3), vk = dia_tensor_view(&ty[1], 0, 4, k4),
                   vv = dia_tensor_view(&ty[2], 0, 4, k4);
        assert_int_equal(be->ops->linear_rope_kv_store(be, &a, &vq, &vk, &vv, &kc, &vc, &tp, &ts, 10000.0f), DIA_OK);
        for (int i = 0; i < 3; i++) res[way][i] = get(be, &ty[i]);
        res[way][3] = malloc(cb), res[way][4] = malloc(cb);
        assert_int_equal(dia_tensor_download(be, &kc, res[way][3], cb), DIA_OK);
        assert_int_equal(dia_tensor_download(be, &vc, res[way][4], cb), DIA_OK);
    }
    unsetenv("DIA_CUDA_QKV_ROPE");
    for (int i = 0; i < 3; i++) assert_memory_equal(res[0][i], res[1][i], (size_t)(M * N[i]) * 4);
    assert_memory_equal(res[0][3], res[1][3], cb);
    assert_memory_equal(res[0][4], res[1][4], cb);
    /* the fused path stored something (not two untouched zero caches) */
    int nonzero = 0;
    for (size_t i = 0; i < cb / 4 && !nonzero; i++) nonzero = ((const uint32_t *)res[0][3])[i] != 0;
    assert_true(nonzero);
    printf("  linear_rope_kv_store R=%lld T=%lld %s cache: identical to linear + rope_kv_store\n", (long long)R,
           (long long)T, dia_dtype_name(cdt));
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < 5; i++) free(res[w][i]);
    dia_tensor *all[] = {&tx, &tn, &tp, &ts, &kc, &vc, &tw[0], &tw[1], &tw[2], &ty[0], &ty[1], &ty[2]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dia_tensor_free(be, all[i]);
    for (int i = 0; i < 3; i++) free(wb[i]);
    free(x), free(nw), free(pos), free(start);
}

static void test_linear_rope_kv_store(void **state) {
    (void)state;
    NEED_CUDA();
    dia_backend *be = NULL;
    assert_int_equal(dia_backend_new("cuda", 0, 0, &be), DIA_OK);
    check_linear_rope(be, 2, 1, DIA_BF16);
    check_linear_rope(be, 2, 1, DIA_F32);
    check_linear_rope(be, 128, 1, DIA_BF16);
    check_linear_rope(be, 16, 1, DIA_F32);
    check_linear_rope(be, 4, 3, DIA_BF16);
    dia_backend_free(be);
}

static void test_ops_small(void **state) {
    (void)state;
    NEED_CUDA();
    pair p = backends();
    dia_backend *bes[2] = {p.cpu, p.gpu};
    const int64_t M = 6, D = 2048, H = 16, hd = 128, I = 300;
    float *x = rand_f32((size_t)(M * D), 2.0f), *w = rand_f32((size_t)D, 1.0f), *h = rand_f32((size_t)(M * 2 * I), 4.0f);
    int32_t pos[6] = {0, 1, 5, 100, 2047, 3071};
    float *res[2][5];
    /* embed: 9 tables of [V, D] bf16, tokens [M, 9] */
    const int64_t EV = 1028;
    uint16_t *tab = malloc((size_t)(9 * EV * D) * 2);
    for (int64_t i = 0; i < 9 * EV * D; i++) tab[i] = dia_f32_to_bf16(frand());
    int32_t tok[6 * 9];
    for (int i = 0; i < 6 * 9; i++) tok[i] = (int32_t)((i * 131 + 7) % 1028);
    /* kv_store: src [R=2, T=3, H=4, hd] into cache [2, 4, S=16, hd] at start {5, 13} */
    const int64_t S = 16;
    float *src = rand_f32((size_t)(2 * 3 * 4 * hd), 1.0f);
    int32_t start[2] = {5, 13};
    for (int b = 0; b < 2; b++) {
        dia_backend *be = bes[b];
        int64_t sx[2] = {M, D}, sw[1] = {D}, s3[3] = {M, H, hd}, sp[1] = {M}, sh[2] = {M, 2 * I}, sm[2] = {M, I};
        dia_tensor tx = mk(be, DIA_F32, 2, sx, x), tw = mk(be, DIA_F32, 1, sw, w), ty = mk(be, DIA_F32, 2, sx, NULL);
        assert_int_equal(be->ops->rmsnorm(be, &ty, &tx, &tw, 1e-5f), DIA_OK);
        res[b][0] = get(be, &ty);
        dia_tensor tr = mk(be, DIA_F32, 3, s3, x), tp = mk(be, DIA_I32, 1, sp, pos);
        assert_int_equal(be->ops->rope(be, &tr, &tp, 10000.0f), DIA_OK);
        res[b][1] = get(be, &tr);
        dia_tensor th = mk(be, DIA_F32, 2, sh, h), tm = mk(be, DIA_F32, 2, sm, NULL);
        assert_int_equal(be->ops->silu_mul(be, &tm, &th), DIA_OK);
        assert_int_equal(be->ops->add(be, &tx, &ty), DIA_OK);
        res[b][2] = get(be, &tm);
        float *added = get(be, &tx);
        int64_t st[2] = {9 * EV, D}, stk[2] = {M, 9};
        dia_tensor ttab = mk(be, DIA_BF16, 2, st, tab), ttok = mk(be, DIA_I32, 2, stk, tok), te = mk(be, DIA_F32, 2, sx, NULL);
        dia_tensor tables[9];
        for (int c = 0; c < 9; c++) {
            int64_t ne[2] = {EV, D};
            tables[c] = dia_tensor_view(&ttab, c * EV * D, 2, ne);
        }
        assert_int_equal(be->ops->embed(be, &te, tables, 9, &ttok), DIA_OK);
        res[b][3] = get(be, &te);
        int64_t ssrc[4] = {2, 3, 4, hd}, sc[4] = {2, 4, S, hd}, s2[1] = {2};
        dia_tensor tsrc = mk(be, DIA_F32, 4, ssrc, src), tc = mk(be, DIA_F32, 4, sc, NULL), tst = mk(be, DIA_I32, 1, s2, start);
        /* start 13 + 3 > 16: the CPU reports capacity; use a valid start for both */
        int32_t ok_start[2] = {5, 13 - 3};
        assert_int_equal(dia_tensor_upload(be, &tst, ok_start, sizeof ok_start), DIA_OK);
        assert_int_equal(be->ops->kv_store(be, &tc, &tsrc, &tst), DIA_OK);
        res[b][4] = get(be, &tc);
        /* compare add right here against x + y computed on the host from this backend's y */
        for (int64_t i = 0; i < M * D; i++) assert_true(fabsf(added[i] - (x[i] + res[b][0][i])) <= 1e-6f * (1 + fabsf(added[i])));
        free(added);
        dia_tensor *all[] = {&tx, &tw, &ty, &tr, &tp, &th, &tm, &ttab, &ttok, &te, &tsrc, &tc, &tst};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dia_tensor_free(be, all[i]);
    }
    const char *names[5] = {"rmsnorm", "rope", "silu_mul", "embed", "kv_store"};
    size_t ns[5] = {(size_t)(M * D), (size_t)(M * D), (size_t)(M * I), (size_t)(M * D), (size_t)(2 * 4 * S * hd)};
    double tols[5] = {1e-5, 1e-5, 1e-5, 1e-5, 0};
    for (int i = 0; i < 5; i++) {
        double d = rel_diff(res[1][i], res[0][i], ns[i]);
        printf("  %s: rel diff %.3g\n", names[i], d);
        if (!(d <= tols[i])) fail_msg("%s rel diff %.3g above %.3g", names[i], d, tols[i]);
        free(res[0][i]);
        free(res[1][i]);
    }
    free(x);
    free(w);
    free(h);
    free(tab);
    free(src);
    backends_free(&p);
}

/* Host <-> device transfers at the sizes either side of the small-copy limit (1 KB: a kernel
 * carries the bytes; above: a copy) and at odd offsets: synchronous uploads and downloads, and
 * async downloads that must hold the buffer's bytes as they were when they were started (stream
 * order) even when the buffer is overwritten before the wait. An upload's source may be reused
 * as soon as the call returns. */
static void test_transfers(void **state) {
    (void)state;
    NEED_CUDA();
    dia_backend *be = NULL;
    assert_int_equal(dia_backend_new("cuda", 0, 0, &be), DIA_OK);
    const size_t N = 16384;
    int64_t ne[1] = {(int64_t)(N / 4)};
    dia_tensor t;
    assert_int_equal(dia_tensor_alloc(be, DIA_F32, 1, ne, &t), DIA_OK);
    unsigned char *host = malloc(N), *back = malloc(N), *src = malloc(N), *got = malloc(N);
    for (size_t i = 0; i < N; i++) host[i] = (unsigned char)(i * 37 + 11);
    assert_int_equal(be->ops->upload(be, t.buf, t.offset, host, N), DIA_OK);
    const size_t sizes[] = {1, 3, 36, 60, 1023, 1024, 1025, 5000}, offs[] = {0, 1, 7, 4096};
    dia_async *a = NULL;
    assert_non_null(be->ops->async_new);
    assert_int_equal(be->ops->async_new(be, 8192, &a), DIA_OK);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (size_t oi = 0; oi < sizeof offs / sizeof offs[0]; oi++) {
            const size_t n = sizes[si], off = offs[oi];
            for (size_t i = 0; i < n; i++) src[i] = (unsigned char)(si * 29 + oi * 7 + i * 13);
            assert_int_equal(be->ops->upload(be, t.buf, t.offset + off, src, n), DIA_OK);
            for (size_t i = 0; i < n; i++) host[off + i] = src[i];
            memset(src, 0xA5, n); /* the upload has its bytes already */
            /* an async download of the range, then the range overwritten before the wait */
            assert_int_equal(be->ops->download_start(be, t.buf, t.offset + off, n, a), DIA_OK);
            assert_int_equal(be->ops->upload(be, t.buf, t.offset + off, src, n), DIA_OK);
            assert_int_equal(be->ops->download_wait(be, a, got, n), DIA_OK);
            assert_memory_equal(got, host + off, n);
            for (size_t i = 0; i < n; i++) host[off + i] = 0xA5;
            assert_int_equal(be->ops->download(be, t.buf, t.offset, back, N), DIA_OK);
            assert_memory_equal(back, host, N);
        }
    printf("  transfers: %zu sizes x %zu offsets, uploads and downloads (sync and async) exact\n",
           sizeof sizes / sizeof sizes[0], sizeof offs / sizeof offs[0]);
    be->ops->async_free(be, a);
    dia_tensor_free(be, &t);
    free(host), free(back), free(src), free(got);
    dia_backend_free(be);
}

/* The graph path at op level: the same segment five times (captured at the 2nd, replayed from the
 * 3rd), then a segment that diverges at its last op (held-back ops launched eagerly), then one
 * shorter than the graph; every result equals the eager CPU sequence. */
static void run_segment(dia_backend *be, const float *xin, float eps_last, int nops, float *out) {
    const int64_t M = 2, D = 256, N = 384;
    int64_t sx[2] = {M, D}, sw[1] = {D}, sW[2] = {N, D}, sy[2] = {M, N};
    static float *w = NULL, *W = NULL;
    if (!w) {
        w = rand_f32((size_t)D, 1.0f);
        W = rand_f32((size_t)(N * D), 0.1f);
    }
    static dia_tensor tx[2], tw[2], tW[2], ty[2], tz[2];
    const int b = be->ops->name[1] == 'u'; /* "cuda" */
    if (!tx[b].buf) {
        tx[b] = mk(be, DIA_F32, 2, sx, NULL), tw[b] = mk(be, DIA_F32, 1, sw, w), tW[b] = mk(be, DIA_F32, 2, sW, W);
        ty[b] = mk(be, DIA_F32, 2, sx, NULL), tz[b] = mk(be, DIA_F32, 2, sy, NULL);
    }
    assert_int_equal(dia_tensor_upload(be, &tx[b], xin, (size_t)(M * D) * 4), DIA_OK);
    for (int i = 0; i < nops; i++) {
        assert_int_equal(be->ops->rmsnorm(be, &ty[b], &tx[b], &tw[b], i == nops - 1 ? eps_last : 1e-5f), DIA_OK);
        assert_int_equal(be->ops->add(be, &tx[b], &ty[b]), DIA_OK);
    }
    assert_int_equal(be->ops->matmul(be, &tz[b], &tx[b], &tW[b], 1, 0), DIA_OK);
    assert_int_equal(dia_tensor_download(be, &tz[b], out, (size_t)(M * N) * 4), DIA_OK);
}

static void test_graph_replay(void **state) {
    (void)state;
    NEED_CUDA();
    pair p = backends();
    float a[2 * 384], c[2 * 384];
    const float eps[7] = {1e-5f, 1e-5f, 1e-5f, 1e-5f, 1e-5f, 0.5f, 1e-5f};
    const int nops[7] = {6, 6, 6, 6, 6, 6, 5};
    long r0 = replays(p.gpu);
    for (int it = 0; it < 7; it++) {
        float *x = rand_f32(2 * 256, 1.0f);
        run_segment(p.cpu, x, eps[it], nops[it], a);
        run_segment(p.gpu, x, eps[it], nops[it], c);
        double d = rel_diff(c, a, 2 * 384);
        if (!(d <= 1e-5)) fail_msg("segment %d: rel diff %.3g", it, d);
        free(x);
    }
    const char *env = getenv("DIA_CUDA_GRAPHS");
    printf("  graph replays over 7 segments: %ld\n", replays(p.gpu) - r0);
    if (!(env && env[0] == '0')) assert_int_equal(replays(p.gpu) - r0, 3); /* segments 3, 4, 5 */
    backends_free(&p);
}

/* ---------------------------------------------------------------------------------------------
 * the tiny model end to end (same structure as test_model.c)
 * ------------------------------------------------------------------------------------------- */
static dia_model *load_with(const char *dir, const char *dtype, const char *enc_mem) {
    dia_model *m = NULL;
    char path[256];
    snprintf(path, sizeof path, FIXTURES "/%s", dir);
    dia_options *o = NULL;
    assert_int_equal(dia_options_new(&o), DIA_OK);
    assert_int_equal(dia_options_set(o, "backend", "cuda"), DIA_OK);
    assert_int_equal(dia_options_set(o, "dtype", dtype), DIA_OK);
    assert_int_equal(dia_options_set(o, "encoder_memory", enc_mem), DIA_OK);
    dia_status st = dia_model_load(path, o, &m);
    dia_options_free(o);
    if (st != DIA_OK) fail_msg("load %s on cuda: %s (%s)", dir, dia_status_string(st), dia_last_error());
    return m;
}
static dia_model *load(const char *dir, const char *dtype) { return load_with(dir, dtype, "device"); }

static void check_encoder(dia_model *m) {
    const char *texts[2] = {TEXT0, TEXT1};
    dia_encoder_state *enc = NULL;
    assert_int_equal(dia_encode(m, texts, 2, 0, &enc), DIA_OK);
    const char *names[2] = {"text0.enc_out", "text1.enc_out"};
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        const float *want = golden_f32(names[i], &n);
        float *got = calloc(n, sizeof(float));
        assert_int_equal(dia_encoder_state_output(enc, i, got, n), DIA_OK);
        printf("  encoder %s: max diff %.3g\n", names[i], max_abs_diff(got, want, n));
        assert_close(got, want, n, 1e-4);
        free(got);
    }
    dia_encoder_state_free(enc);
}

/* logits of text0.tf_tokens from one prefill, and from prefill(7) + single steps; returns the
 * largest difference seen */
static double check_tf_logits(dia_model *m, double tol) {
    size_t n = 0;
    const float *want = golden_f32("text0.tf_logits", &n);
    const int32_t *tok = golden_i32("text0.tf_tokens", NULL);
    assert_int_equal(n, 2 * TF_T * C * V);
    dia_encoder_state *enc = NULL;
    assert_int_equal(dia_encode(m, &TEXT0, 1, 0, &enc), DIA_OK);
    dia_kvcache *cache = NULL;
    assert_int_equal(dia_kvcache_new(m, 1, 32, &cache), DIA_OK);
    dia_decoder_state *dec = NULL;
    assert_int_equal(dia_decoder_state_new(m, enc, cache, &dec), DIA_OK);
    float *got = calloc(n, sizeof(float));
    assert_int_equal(dia_decoder_prefill(dec, tok, TF_T, got), DIA_OK);
    double worst = max_abs_diff(got, want, n);
    printf("  prefill(24) logits: max diff %.3g\n", worst);
    assert_close(got, want, n, tol);
    const int k = 7;
    float *step = calloc(2 * C * V, sizeof(float));
    assert_int_equal(dia_kvcache_reset(cache), DIA_OK);
    assert_int_equal(dia_decoder_prefill(dec, tok, k, got), DIA_OK);
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < k; t++)
            assert_close(got + ((size_t)r * k + t) * C * V, want + ((size_t)r * TF_T + t) * C * V, C * V, tol);
    double wstep = 0;
    for (int t = k; t < TF_T; t++) {
        assert_int_equal(dia_decoder_step(dec, tok + t * C), DIA_OK);
        assert_int_equal(dia_decoder_logits(dec, step, 2 * C * V), DIA_OK);
        for (int r = 0; r < 2; r++) {
            double d = max_abs_diff(step + (size_t)r * C * V, want + ((size_t)r * TF_T + t) * C * V, C * V);
            if (d > wstep) wstep = d;
            assert_close(step + (size_t)r * C * V, want + ((size_t)r * TF_T + t) * C * V, C * V, tol);
        }
    }
    printf("  prefill(7) + 17 steps logits: max diff %.3g\n", wstep);
    if (wstep > worst) worst = wstep;
    assert_int_equal(dia_kvcache_truncate(cache, TF_T - 4), DIA_OK);
    assert_int_equal(dia_decoder_prefill(dec, tok + (TF_T - 4) * C, 4, got), DIA_OK);
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < 4; t++)
            assert_close(got + ((size_t)r * 4 + t) * C * V, want + ((size_t)r * TF_T + TF_T - 4 + t) * C * V, C * V, tol);
    free(step);
    free(got);
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
    return worst;
}

static void test_hf_f32(void **state) {
    (void)state;
    NEED_CUDA();
    dia_model *m = load("dia-hf", "f32");
    check_encoder(m);
    check_tf_logits(m, 1e-4);
    const char *env = getenv("DIA_CUDA_GRAPHS");
    printf("  decode steps replayed as CUDA graphs: %ld\n", replays(m->be));
    if (!(env && env[0] == '0')) assert_true(replays(m->be) >= 10); /* 17 steps: captured at the 2nd */
    int64_t graphs = -1; /* what `dia generate` reports */
    assert_int_equal(dia_model_info(m, "graphs", &graphs), DIA_OK);
    assert_int_equal(graphs, (env && env[0] == '0') ? 0 : 1);
    dia_model_free(m);
}

static void test_nari_f32(void **state) {
    (void)state;
    NEED_CUDA();
    dia_model *m = load("dia-nari", "f32");
    check_encoder(m);
    check_tf_logits(m, 1e-4);
    dia_model_free(m);
    /* bf16: the nari (DenseGeneral) weights are stored transposed on the device, so decode steps
     * take the same path as the transformers layout */
    m = load("dia-nari", "bf16");
    const double d = check_tf_logits(m, 5e-2);
    printf("  nari layout, bf16 vs f32 goldens: max |diff| %.3g\n", d);
    dia_model_free(m);
}

/* bf16 weights (the CUDA default): weights rounded to bf16, and for GEMMs with more than 4 rows the
 * activations too. Against the f32 goldens (logits of magnitude ~1) the measured max |diff| is
 * printed; the tolerance is 5e-2 like the CPU's bf16 checkpoint test. */
static void test_hf_bf16(void **state) {
    (void)state;
    NEED_CUDA();
    dia_model *m = load("dia-hf", "auto");
    double d = check_tf_logits(m, 5e-2);
    printf("  bf16 (dtype auto) vs f32 goldens: max |diff| %.3g\n", d);
    dia_model_free(m);
    m = load("dia-hf-bf16-sharded", "bf16");
    d = check_tf_logits(m, 5e-2);
    printf("  bf16 sharded checkpoint vs f32 goldens: max |diff| %.3g\n", d);
    dia_model_free(m);
}

/* encoder_memory=host: the encoder's and the cross K/V projections' weights live in pinned host
 * memory (copied to the device per GEMM); the same arithmetic, so the same logits to the bit,
 * in bf16 and in the f32 parity mode. */
static void test_encoder_memory_host(void **state) {
    (void)state;
    NEED_CUDA();
    const char *dts[2] = {"auto", "f32"};
    for (int i = 0; i < 2; i++) {
        dia_model *m = load("dia-hf", dts[i]);
        const double d0 = check_tf_logits(m, 5e-2);
        dia_model_free(m);
        m = load_with("dia-hf", dts[i], "host");
        if (i == 1) check_encoder(m); /* f32: the encoder outputs within 1e-4 of the goldens */
        const double d1 = check_tf_logits(m, 5e-2);
        dia_model_free(m);
        printf("  dtype %s, encoder weights in host memory: max |diff| %.3g (device memory: %.3g)\n", dts[i], d1, d0);
        assert_true(d1 == d0);
    }
}

/* The cache dtype follows the weights: f32 mode keeps f32 caches (the parity mode), bf16 weights
 * get bf16 KV caches and cross K/V. dia_kvcache_read on a bf16 cache returns the stored values as
 * f32 (lib/ converts on the host): equal to the raw bf16 words, and close to the f32-mode cache. */
static void test_cache_dtype_and_read(void **state) {
    (void)state;
    NEED_CUDA();
    const int32_t *tok = golden_i32("text0.tf_tokens", NULL);
    const int P = 10;
    float *vals[2] = {NULL, NULL};
    size_t nv = 0;
    for (int mode = 0; mode < 2; mode++) {
        dia_model *m = load("dia-hf", mode ? "auto" : "f32");
        const dia_dtype want = mode ? DIA_BF16 : DIA_F32;
        assert_int_equal(dia_model_cache_dtype(m), want);
        dia_encoder_state *enc = NULL;
        assert_int_equal(dia_encode(m, &TEXT0, 1, 0, &enc), DIA_OK);
        assert_int_equal(enc->cross_k[0].dtype, want);
        assert_int_equal(enc->cross_v[m->cfg.dec_layers - 1].dtype, want);
        dia_kvcache *cache = NULL;
        assert_int_equal(dia_kvcache_new(m, 1, 32, &cache), DIA_OK);
        assert_int_equal(cache->k[0].dtype, want);
        assert_int_equal(cache->v[0].dtype, want);
        dia_decoder_state *dec = NULL;
        assert_int_equal(dia_decoder_state_new(m, enc, cache, &dec), DIA_OK);
        assert_int_equal(dia_decoder_prefill(dec, tok, P, NULL), DIA_OK);
        const int L = m->cfg.dec_layers, H = m->cfg.dec_kv_heads, hd = m->cfg.dec_head_dim, S = 32;
        nv = (size_t)L * 2 * 2 * H * P * hd; /* layers x {k, v} x rows x heads x positions x hd */
        vals[mode] = malloc(nv * sizeof(float));
        for (int l = 0; l < L; l++)
            for (int w = 0; w < 2; w++)
                for (int r = 0; r < 2; r++) {
                    float *dst = vals[mode] + (((size_t)l * 2 + w) * 2 + r) * H * P * hd;
                    assert_int_equal(dia_kvcache_read(cache, l, w, r, dst, (size_t)H * P * hd), DIA_OK);
                    if (!mode) continue;
                    /* the raw bf16 words of the same row, converted here */
                    const dia_tensor *t = w ? &cache->v[l] : &cache->k[l];
                    const size_t nrow = (size_t)H * S * hd;
                    uint16_t *raw = malloc(nrow * 2);
                    assert_int_equal(m->be->ops->download(m->be, t->buf, t->offset + (size_t)r * nrow * 2, raw, nrow * 2),
                                     DIA_OK);
                    for (int h = 0; h < H; h++)
                        for (int i = 0; i < P * hd; i++) {
                            const uint32_t u = (uint32_t)raw[(size_t)h * S * hd + i] << 16;
                            float f;
                            memcpy(&f, &u, 4);
                            if (dst[(size_t)h * P * hd + i] != f) fail_msg("kvcache_read bf16 l %d w %d r %d h %d i %d", l, w, r, h, i);
                        }
                    free(raw);
                }
        dia_decoder_state_free(dec);
        dia_kvcache_free(cache);
        dia_encoder_state_free(enc);
        dia_model_free(m);
    }
    double mx = 0;
    for (size_t i = 0; i < nv; i++) mx = fmax(mx, fabs(vals[0][i]));
    const double d = max_abs_diff(vals[1], vals[0], nv);
    printf("  dia_kvcache_read: bf16 cache (bf16 weights) vs f32 cache (f32 weights), %d positions: max diff %.3g "
           "(max |value| %.3g)\n", P, d, mx);
    if (!(d <= 5e-2 * (1 + mx))) fail_msg("bf16 cache read vs f32: %.3g", d);
    free(vals[0]);
    free(vals[1]);
}

/* bf16 activations (the attention and SiLU outputs written in bf16 for the GEMMs after them,
 * activation_dtype) give the same logits bit for bit as f32 activations rounded before each GEMM
 * (DIA_CUDA_ACT_BF16=0): a 1- and a 3-item prefill and steps after it; and with the opt-in GEMV
 * (DIA_CUDA_GEMV=1) a 1-item run whose 2-row steps after the prefill switch back to f32
 * activations (the GEMV reads f32). */
/* B items of texts: prefill(T) of item 0's tokens, then `steps` single steps of its rows (cycling
 * through the T rows); the logits after the prefill and after each step ([1 + steps][2B, C, V]). */
static float *act_run(dia_model *m, const char *const *texts, int B, const int32_t *tok, int T, int steps) {
    dia_encoder_state *enc = NULL;
    assert_int_equal(dia_encode(m, texts, B, 0, &enc), DIA_OK);
    dia_kvcache *cache = NULL;
    assert_int_equal(dia_kvcache_new(m, B, T + steps, &cache), DIA_OK);
    dia_decoder_state *dec = NULL;
    assert_int_equal(dia_decoder_state_new(m, enc, cache, &dec), DIA_OK);
    int32_t *tb = calloc((size_t)B * T * C, sizeof(int32_t));
    for (int b = 0; b < B; b++) memcpy(tb + (size_t)b * T * C, tok, (size_t)T * C * 4);
    const size_t nl = (size_t)2 * B * C * V;
    float *out = calloc(nl * (1 + steps), sizeof(float));
    assert_int_equal(dia_decoder_prefill(dec, tb, T, NULL), DIA_OK);
    assert_int_equal(dia_decoder_logits(dec, out, nl), DIA_OK);
    for (int i = 0; i < steps; i++) {
        assert_int_equal(dia_decoder_step(dec, tb + (size_t)(i % T) * C), DIA_OK); /* rows of item 0's tokens */
        assert_int_equal(dia_decoder_logits(dec, out + nl * (1 + i), nl), DIA_OK);
    }
    free(tb);
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
    return out;
}

static void test_activation_bf16(void **state) {
    (void)state;
    NEED_CUDA();
    dia_model *m = load("dia-hf", "bf16");
    const int32_t *tok = golden_i32("text0.tf_tokens", NULL);
    const int T = 7, steps = 4;
    const char *texts[3] = {TEXT0, TEXT1, TEXT0};
    for (int run = 0; run < 3; run++) {
        const int B = run == 1 ? 3 : 1;
        if (run == 2) setenv("DIA_CUDA_GEMV", "1", 1);
        setenv("DIA_CUDA_ACT_BF16", "0", 1);
        float *ref = act_run(m, texts, B, tok, T, steps);
        unsetenv("DIA_CUDA_ACT_BF16");
        float *got = act_run(m, texts, B, tok, T, steps);
        unsetenv("DIA_CUDA_GEMV");
        const size_t n = (size_t)2 * B * C * V * (1 + steps);
        printf("  batch %d%s: prefill(%d) + %d steps, bf16 vs f32 activations: %s\n", B,
               run == 2 ? " (GEMV steps)" : "", T, steps, memcmp(ref, got, n * sizeof(float)) ? "DIFFERENT" : "identical logits");
        assert_memory_equal(ref, got, n * sizeof(float));
        free(ref);
        free(got);
    }
    dia_model_free(m);
}

/* A random bf16 model with the full model's head sizes (128, GQA 4:1, ungrouped cross-attention)
 * and small widths: the one-kernel decode step (cuda_decode_step.cu) takes its B = 1 steps. */
static const char *STEP_CFG =
    "{\"bos_token_id\": 1026, \"eos_token_id\": 1024, \"pad_token_id\": 1025,"
    " \"delay_pattern\": [0, 8, 9, 10, 11, 12, 13, 14, 15],"
    " \"encoder_config\": {\"vocab_size\": 256, \"hidden_size\": 256, \"intermediate_size\": 512,"
    "  \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 2, \"head_dim\": 128,"
    "  \"max_position_embeddings\": 512, \"norm_eps\": 1e-05, \"rope_theta\": 10000.0},"
    " \"decoder_config\": {\"vocab_size\": 1028, \"num_channels\": 9, \"hidden_size\": 512, \"intermediate_size\": 1024,"
    "  \"num_hidden_layers\": 3, \"num_attention_heads\": 4, \"num_key_value_heads\": 1, \"head_dim\": 128,"
    "  \"cross_num_attention_heads\": 4, \"cross_num_key_value_heads\": 4, \"cross_head_dim\": 128,"
    "  \"cross_hidden_size\": 256, \"max_position_embeddings\": 512, \"norm_eps\": 1e-05, \"rope_theta\": 10000.0}}";

static void test_decode_step_kernel(void **state) {
    (void)state;
    NEED_CUDA();
    dia_options *o = NULL;
    assert_int_equal(dia_options_new(&o), DIA_OK);
    assert_int_equal(dia_options_set(o, "backend", "cuda"), DIA_OK);
    dia_model *m = NULL, *m2 = NULL;
    assert_int_equal(dia_model_new_random(STEP_CFG, o, 77, DIA_BF16, &m), DIA_OK);
    /* the same with 2 kv heads (G = 2): run 4's attention units of 2 query heads on tensor cores */
    char cfg2[2048];
    assert_true(strlen(STEP_CFG) < sizeof cfg2);
    const char *kv1 = "\"num_attention_heads\": 4, \"num_key_value_heads\": 1", *at = strstr(STEP_CFG, kv1);
    assert_non_null(at);
    snprintf(cfg2, sizeof cfg2, "%s", STEP_CFG);
    cfg2[at - STEP_CFG + strlen(kv1) - 1] = '2';
    assert_int_equal(dia_model_new_random(cfg2, o, 77, DIA_BF16, &m2), DIA_OK);
    dia_options_free(o);
    const int32_t *tok = golden_i32("text0.tf_tokens", NULL);
    /* short: up to 77 keys and a 66-byte text (one 256-key segment per block); long: up to 287 keys
     * and a 300-byte text (two segments, merged through global memory); the long one again with
     * DIA_CUDA_DECODE_STEP_OPT | 32: attention units of the G query heads of a kv head (what long
     * contexts of the full model use; short ones take a query head per unit); then twice more with
     * those units on tensor cores (| 32768): units of 4 query heads, and of 2 with a model of 2 kv
     * heads. Each run with the
     * 8-warp kernel (DIA_CUDA_DECODE_STEP_WS=0) and again with the producer warp group (=1, the
     * default on an H100) with a ring of its own per run: the same arithmetic, so the same logits
     * bit for bit */
    char longtext[301];
    for (int i = 0; i < 300; i++) longtext[i] = "[S1] a long line of text. "[i % 26];
    longtext[300] = 0;
    const char *texts[5] = {TEXT0, longtext, longtext, longtext, longtext};
    const int T = 7, nsteps[5] = {70, 280, 280, 280, 280};
    const char *opt0 = getenv("DIA_CUDA_DECODE_STEP_OPT");
    const int opt = opt0 ? atoi(opt0) : 15 | 2097152 | 4194304 | 16777216 | 67108864; /* unset: the 8-warp kernel's default, DS_OPT_DEFAULT */
    for (int run = 0; run < 5; run++) { /* runs 3, 4: the attention on tensor cores (OPT 32768) in both kernels */
        const int steps = nsteps[run];
        dia_model *mr = run == 4 ? m2 : m;
        char optv[16];
        snprintf(optv, sizeof optv, "%d", run >= 3 ? opt | 32 | 32768 : run == 2 ? opt | 32 : opt);
        setenv("DIA_CUDA_DECODE_STEP_OPT", optv, 1);
        setenv("DIA_CUDA_DECODE_STEP", "0", 1);
        const long l0 = step_launches();
        float *ref = act_run(mr, &texts[run], 1, tok, T, steps);
        assert_int_equal(step_launches(), l0);
        setenv("DIA_CUDA_DECODE_STEP", "1", 1); /* (the default) */
        setenv("DIA_CUDA_DECODE_STEP_WS", "0", 1); /* the 8-warp kernel (the default off compute capability 9.0) */
        float *got = act_run(mr, &texts[run], 1, tok, T, steps);
        const long used = step_launches() - l0;
        static const char *const ring[5][2] = {{NULL, NULL}, {"2", "1"}, {"5", "5"}, {NULL, NULL}, {"3", "2"}}; /* stages, in flight */
        setenv("DIA_CUDA_DECODE_STEP_WS", "1", 1);
        if (ring[run][0]) setenv("DIA_CUDA_DECODE_STEP_STAGES", ring[run][0], 1), setenv("DIA_CUDA_DECODE_STEP_INFLIGHT", ring[run][1], 1);
        char optw[16]; /* the 8-warp kernel's bits without 2 (run 0: 13, the grid barriers before the attention phases),
                        * the long runs without 8 */
        snprintf(optw, sizeof optw, "%d", run ? atoi(optv) & ~8 : atoi(optv) & ~2);
        /* the head counters instead of the barriers before the attention phases (256 | 512), published with one fence
         * (1024), the unrolled merge of the warps' partials (2048) */
        const int heads = 256 | 512 | 1024 | 2048;
        /* the producer warp group's other default bits (below) */
        const int ws_bits = 4096 | 262144 | 2097152 | 4194304 | 16777216;
        if (run == 1) /* the producer warp group's default: those, q and cross q written with epochs, their loads the
                       * waits (4096; then only the k / v heads are counted), tensor cores for units of >= 2 query heads
                       * (32768: none here), the first unit's q loaded before its K/V (262144), the arguments read
                       * from shared memory (2097152), the phases' ranges worked out once (4194304), the norm factor by
                       * one rsqrt (16777216) */
            snprintf(optw, sizeof optw, "%d", (atoi(optv) & ~8) | heads | ws_bits | 32768);
        if (run == 2) /* the head counters without the epochs (q counted too), with units of G query heads */
            snprintf(optw, sizeof optw, "%d", (atoi(optv) & ~8) | heads);
        if (run >= 3) /* the attention on tensor cores (32768: units of >= 2 query heads) with the default's other bits */
            snprintf(optw, sizeof optw, "%d", (atoi(optv) & ~(2 | 8)) | heads | ws_bits);
        setenv("DIA_CUDA_DECODE_STEP_OPT", optw, 1);
        float *ws = act_run(mr, &texts[run], 1, tok, T, steps);
        const long used_ws = step_launches() - l0 - used;
        unsetenv("DIA_CUDA_DECODE_STEP_WS"), unsetenv("DIA_CUDA_DECODE_STEP_STAGES"), unsetenv("DIA_CUDA_DECODE_STEP_INFLIGHT");
        unsetenv("DIA_CUDA_DECODE_STEP");
        const size_t n = (size_t)2 * C * V * steps, skip = (size_t)2 * C * V; /* the steps' logits (after the prefill's) */
        double amax = 0, dmax = 0, d2 = 0, a2 = 0;
        for (size_t i = 0; i < n; i++) {
            const double a = ref[skip + i], d = fabs((double)got[skip + i] - a);
            amax = fmax(amax, fabs(a)), dmax = fmax(dmax, d), d2 += d * d, a2 += a * a;
        }
        printf("  decode-step kernel (8 warps, OPT %s), %d kv heads, %d steps, text of %zu bytes: %ld host calls (graph replays "
               "make none); logits vs op by op: max diff %.3g (max |logit| %.3g), rel. RMS %.3g\n",
               optv, run == 4 ? 2 : 1, steps, strlen(texts[run]), used, dmax, amax, sqrt(d2 / a2));
        const int same = !memcmp(ws, got, (size_t)2 * C * V * (1 + steps) * sizeof(float));
        printf("  with the producer warp group (OPT %s, ring %s stages, %s in flight): %ld host calls, logits %s\n", optw,
               ring[run][0] ? ring[run][0] : "default", ring[run][1] ? ring[run][1] : "default", used_ws,
               same ? "identical" : "DIFFERENT");
        assert_true(used > 0);
        assert_true(used_ws > 0);
        assert_true(same);
        /* the op-by-op path rounds activations to bf16 where this kernel keeps f32: measured 1.1e-6
         * (5.8e-5 while the logits head also rounded its input to bf16) */
        assert_true(sqrt(d2 / a2) < 1e-3);
        assert_true(dmax < 0.01 * amax);
        free(ref);
        free(got);
        free(ws);
    }
    if (opt0) setenv("DIA_CUDA_DECODE_STEP_OPT", opt0, 1);
    else unsetenv("DIA_CUDA_DECODE_STEP_OPT");
    dia_model_free(m);
    dia_model_free(m2);
}

static void test_batch_equals_single(void **state) {
    (void)state;
    NEED_CUDA();
    dia_model *m = load("dia-hf", "f32");
    const int32_t *tok = golden_i32("text0.tf_tokens", NULL);
    size_t n = 0;
    const float *want = golden_f32("text0.tf_logits", &n);
    const char *texts[2] = {TEXT1, TEXT0};
    dia_encoder_state *enc = NULL;
    assert_int_equal(dia_encode(m, texts, 2, 0, &enc), DIA_OK);
    dia_kvcache *cache = NULL;
    assert_int_equal(dia_kvcache_new(m, 2, TF_T, &cache), DIA_OK);
    dia_decoder_state *dec = NULL;
    assert_int_equal(dia_decoder_state_new(m, enc, cache, &dec), DIA_OK);
    int32_t *tok2 = calloc(2 * TF_T * C, sizeof(int32_t));
    memcpy(tok2, tok, TF_T * C * 4);
    memcpy(tok2 + TF_T * C, tok, TF_T * C * 4);
    float *got = calloc(4 * TF_T * C * V, sizeof(float));
    assert_int_equal(dia_decoder_prefill(dec, tok2, TF_T, got), DIA_OK);
    assert_close(got + 2 * TF_T * C * V, want, n, 1e-4);
    assert_int_equal(dia_decoder_step(dec, tok2), DIA_ERR_CAPACITY);
    free(got);
    free(tok2);
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
    dia_model_free(m);
}

/* Greedy codes on CUDA f32 equal the reference's exactly; a seeded sampled run gives the same codes
 * on the CPU and on CUDA. */
static void test_generate_parity(void **state) {
    (void)state;
    NEED_CUDA();
    dia_model *m = load("dia-hf", "f32");
    dia_gen_params *p = NULL;
    assert_int_equal(dia_gen_params_new(&p), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "temperature", 0.0), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "max_tokens", 128), DIA_OK);
    const char *names[2] = {"text0.greedy_codes", "text1.greedy_codes"};
    const char *texts[2] = {TEXT0, TEXT1};
    for (int i = 0; i < 2; i++) {
        dia_codes *codes = NULL;
        assert_int_equal(dia_generate(m, p, 1, &texts[i], NULL, NULL, NULL, NULL, &codes), DIA_OK);
        size_t n = 0;
        const int32_t *want = golden_i32(names[i], &n);
        assert_int_equal((size_t)dia_codes_frames(codes, 0) * 9, n);
        assert_memory_equal(dia_codes_data(codes, 0), want, n * 4);
        dia_codes_free(codes);
    }
    printf("  greedy codes of text0 and text1 equal the reference\n");
    /* seeded sampling: CPU vs CUDA */
    assert_int_equal(dia_gen_params_set(p, "temperature", 1.2), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "seed", 7), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "max_tokens", 96), DIA_OK);
    dia_model *mc = NULL;
    assert_int_equal(dia_model_load(FIXTURES "/dia-hf", NULL, &mc), DIA_OK);
    dia_codes *a = NULL, *b = NULL;
    assert_int_equal(dia_generate(m, p, 2, texts, NULL, NULL, NULL, NULL, &a), DIA_OK);
    assert_int_equal(dia_generate(mc, p, 2, texts, NULL, NULL, NULL, NULL, &b), DIA_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(dia_codes_frames(a, i), dia_codes_frames(b, i));
        assert_memory_equal(dia_codes_data(a, i), dia_codes_data(b, i), (size_t)dia_codes_frames(a, i) * 9 * 4);
    }
    printf("  seeded sampled codes (batch 2): CUDA == CPU (%d and %d frames)\n", dia_codes_frames(a, 0),
           dia_codes_frames(a, 1));
    dia_codes_free(a);
    dia_codes_free(b);
    dia_model_free(mc);
    dia_gen_params_free(p);
    dia_model_free(m);
}

/* A dia-hf f32 model on CUDA; eos_gain != 1: the logits head's EOS column of channel 0 scaled by it
 * (so that EOS is sampled early). */
static dia_model *load_eos(const char *async, float eos_gain) {
    setenv("DIA_CUDA_ASYNC", async, 1); /* read when the backend is made */
    dia_model *m = load("dia-hf", "f32");
    unsetenv("DIA_CUDA_ASYNC");
    dia_tensor *w = &m->logits.t;
    assert_int_equal(w->dtype, DIA_F32);
    const int64_t n = dia_tensor_nelem(w), N = C * V, K = n / N, eos = 1024; /* output column c * V + v, c = 0 */
    float *h = malloc((size_t)n * 4);
    assert_int_equal(dia_tensor_download(m->be, w, h, (size_t)n * 4), DIA_OK);
    for (int64_t k = 0; k < K; k++) h[m->logits.trans ? eos * K + k : k * N + eos] *= eos_gain;
    assert_int_equal(dia_tensor_upload(m->be, w, h, (size_t)n * 4), DIA_OK);
    free(h);
    return m;
}

/* dia_generate's pipelined loop (step s + 1 launched on the tokens step s feeds forward on the
 * device, before the host has seen step s's codes) gives the codes of the synchronous loop
 * (DIA_CUDA_ASYNC=0): sampled, with a prompt (forced cells), at the max_tokens limit (a predicted
 * countdown: nothing launched again), and with EOS sampled (the step after each one launched again). */
static void test_generate_pipelined(void **state) {
    (void)state;
    NEED_CUDA();
    const char *texts[2] = {TEXT0, TEXT1};
    const int32_t *prompt = golden_i32("text0.greedy_codes", NULL);
    const int32_t *prompts[2] = {prompt, NULL};
    const int pframes[2] = {6, 0};
    dia_gen_params *p = NULL;
    assert_int_equal(dia_gen_params_new(&p), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "temperature", 1.2), DIA_OK);
    assert_int_equal(dia_gen_params_set(p, "max_tokens", 80), DIA_OK);
    dia_set_log_callback(count_relaunches, NULL);
    dia_set_log_level(DIA_LOG_DEBUG);
    const float gains[2] = {1.0f, 6.0f};
    for (int run = 0; run < 2; run++) {
        dia_model *ma = load_eos("1", gains[run]), *ms = load_eos("0", gains[run]);
        for (int withp = 0; withp < 2; withp++) {
            dia_codes *a = NULL, *b = NULL;
            g_relaunched = -1;
            assert_int_equal(dia_gen_params_set(p, "seed", 5 + withp), DIA_OK);
            assert_int_equal(dia_generate(ma, p, 2, texts, withp ? prompts : NULL, withp ? pframes : NULL, NULL, NULL, &a),
                             DIA_OK);
            const int again = g_relaunched;
            assert_int_equal(dia_generate(ms, p, 2, texts, withp ? prompts : NULL, withp ? pframes : NULL, NULL, NULL, &b),
                             DIA_OK);
            for (int i = 0; i < 2; i++) {
                assert_int_equal(dia_codes_frames(a, i), dia_codes_frames(b, i));
                assert_memory_equal(dia_codes_data(a, i), dia_codes_data(b, i), (size_t)dia_codes_frames(a, i) * 9 * 4);
            }
            printf("  pipelined == synchronous (EOS gain %.0f, %s): %d and %d frames, %d steps launched again\n",
                   gains[run], withp ? "prompt of 6 frames" : "no prompt", dia_codes_frames(a, 0), dia_codes_frames(a, 1),
                   again);
            /* frames at the max_tokens limit: 80 - 15 - 1 (15 = the largest delay), less the prompt's */
            const int early = (dia_codes_frames(a, 0) < 64 - withp * 6) + (dia_codes_frames(a, 1) < 64);
            if (run == 0) assert_int_equal(again, 0); /* only the max_tokens countdown: predicted */
            else assert_true(again > 0 && early > 0); /* EOS sampled: the step after it launched again */
            dia_codes_free(a);
            dia_codes_free(b);
        }
        dia_model_free(ma);
        dia_model_free(ms);
    }
    dia_set_log_callback(NULL, NULL);
    dia_set_log_level(DIA_LOG_ERROR);
    dia_gen_params_free(p);
}

/* ---------------------------------------------------------------------------------------------
 * DAC ops vs the CPU backend
 * ------------------------------------------------------------------------------------------- */
static void check_conv(pair *p, int transpose, int64_t Cin, int64_t Cout, int64_t K, int64_t T, int stride,
                       int dilation, int pad, dia_dtype wdt) {
    const int64_t Tout = transpose ? (T - 1) * stride - 2 * pad + K : (T + 2 * pad - dilation * (K - 1) - 1) / stride + 1;
    float *x = rand_f32((size_t)(Cin * T), 1.0f), *w = rand_f32((size_t)(Cin * Cout * K), 0.2f), *bias = rand_f32((size_t)Cout, 1.0f);
    void *wh = w;
    uint16_t *wb = NULL;
    if (wdt == DIA_BF16) {
        wb = malloc((size_t)(Cin * Cout * K) * 2);
        for (int64_t i = 0; i < Cin * Cout * K; i++) wb[i] = dia_f32_to_bf16(w[i]);
        wh = wb;
    }
    int64_t sx[2] = {Cin, T}, sw[3] = {transpose ? Cin : Cout, transpose ? Cout : Cin, K}, sb[1] = {Cout}, sy[2] = {Cout, Tout};
    dia_backend *bes[2] = {p->cpu, p->gpu};
    float *out[2];
    for (int b = 0; b < 2; b++) {
        dia_backend *be = bes[b];
        dia_tensor tx = mk(be, DIA_F32, 2, sx, x), tw = mk(be, wdt, 3, sw, wh), tb = mk(be, DIA_F32, 1, sb, bias),
                   ty = mk(be, DIA_F32, 2, sy, NULL);
        if (transpose) assert_int_equal(be->ops->conv_transpose1d(be, &ty, &tx, &tw, &tb, stride, pad), DIA_OK);
        else assert_int_equal(be->ops->conv1d(be, &ty, &tx, &tw, &tb, stride, dilation, pad), DIA_OK);
        out[b] = get(be, &ty);
        dia_tensor *all[] = {&tx, &tw, &tb, &ty};
        for (int i = 0; i < 4; i++) dia_tensor_free(be, all[i]);
    }
    double d = rel_diff(out[1], out[0], (size_t)(Cout * Tout));
    printf("  %s Cin=%lld Cout=%lld K=%lld T=%lld s=%d d=%d p=%d %s: rel diff %.3g\n",
           transpose ? "conv_transpose1d" : "conv1d", (long long)Cin, (long long)Cout, (long long)K, (long long)T,
           stride, dilation, pad, dia_dtype_name(wdt), d);
    if (!(d <= 1e-5)) fail_msg("conv rel diff %.3g", d);
    free(out[0]);
    free(out[1]);
    free(x);
    free(w);
    free(wb);
    free(bias);
}

static void test_dac_ops(void **state) {
    (void)state;
    NEED_CUDA();
    pair p = backends();
    if (!p.cpu->ops->conv1d || !p.gpu->ops->conv1d) {
        backends_free(&p);
        skip();
    }
    check_conv(&p, 0, 16, 24, 7, 300, 1, 1, 3, DIA_F32);
    check_conv(&p, 0, 24, 24, 7, 301, 1, 9, 27, DIA_F32);
    check_conv(&p, 0, 32, 16, 1, 200, 1, 1, 0, DIA_F32);
    check_conv(&p, 0, 8, 16, 16, 400, 8, 1, 4, DIA_BF16);
    check_conv(&p, 1, 32, 16, 16, 50, 8, 1, 4, DIA_F32);
    check_conv(&p, 1, 16, 8, 4, 77, 2, 1, 1, DIA_BF16);
    dia_backend *bes[2] = {p.cpu, p.gpu};
    const int64_t Ch = 12, T = 500, D = 8, N = 1024;
    float *x = rand_f32((size_t)(Ch * T), 3.0f), *alpha = rand_f32((size_t)Ch, 1.0f);
    for (int64_t i = 0; i < Ch; i++) alpha[i] = fabsf(alpha[i]) + 0.05f;
    float *cb = rand_f32((size_t)(N * D), 1.0f), *xe = rand_f32((size_t)(D * T), 1.0f);
    int32_t *codes = malloc((size_t)T * sizeof(int32_t));
    for (int64_t t = 0; t < T; t++) codes[t] = (int32_t)((t * 37 + 11) % N);
    float *sn[2], *th[2], *lk[2];
    int32_t *nr[2];
    for (int b = 0; b < 2; b++) {
        dia_backend *be = bes[b];
        int64_t sx[2] = {Ch, T}, sa[1] = {Ch}, scb[2] = {N, D}, sc[1] = {T}, se[2] = {D, T};
        dia_tensor tx = mk(be, DIA_F32, 2, sx, x), ta = mk(be, DIA_F32, 1, sa, alpha);
        assert_int_equal(be->ops->snake(be, &tx, &ta), DIA_OK);
        sn[b] = get(be, &tx);
        assert_int_equal(be->ops->tanh_(be, &tx), DIA_OK);
        th[b] = get(be, &tx);
        dia_tensor tcb = mk(be, DIA_F32, 2, scb, cb), tc = mk(be, DIA_I32, 1, sc, codes), ty = mk(be, DIA_F32, 2, se, NULL);
        assert_int_equal(be->ops->codebook_lookup(be, &ty, &tcb, &tc), DIA_OK);
        lk[b] = get(be, &ty);
        dia_tensor te = mk(be, DIA_F32, 2, se, xe), tn = mk(be, DIA_I32, 1, sc, NULL);
        assert_int_equal(be->ops->codebook_nearest(be, &tn, &te, &tcb), DIA_OK);
        nr[b] = (int32_t *)get(be, &tn);
        /* a code out of range is a BAD_AUDIO error */
        int32_t bad = (int32_t)N;
        assert_int_equal(dia_tensor_upload(be, &tc, &bad, 4), DIA_OK);
        assert_int_equal(be->ops->codebook_lookup(be, &ty, &tcb, &tc), DIA_ERR_BAD_AUDIO);
        dia_tensor *all[] = {&tx, &ta, &tcb, &tc, &ty, &te, &tn};
        for (int i = 0; i < 7; i++) dia_tensor_free(be, all[i]);
    }
    double dsn = rel_diff(sn[1], sn[0], (size_t)(Ch * T)), dth = max_abs_diff(th[1], th[0], (size_t)(Ch * T));
    printf("  snake: rel diff %.3g, tanh: max diff %.3g\n", dsn, dth);
    assert_true(dsn <= 1e-5);
    assert_true(dth <= 1e-5);
    assert_memory_equal(lk[1], lk[0], (size_t)(D * T) * 4);
    assert_memory_equal(nr[1], nr[0], (size_t)T * 4);
    printf("  codebook_lookup and codebook_nearest: identical\n");
    for (int b = 0; b < 2; b++) {
        free(sn[b]);
        free(th[b]);
        free(lk[b]);
        free(nr[b]);
    }
    free(x);
    free(alpha);
    free(cb);
    free(xe);
    free(codes);
    backends_free(&p);
}

static float bf16_round(float f) { return dia_bf16_to_f32(dia_f32_to_bf16(f)); }

static float host_snake(float v, float a) {
    const float inv = (float)(1.0 / ((double)a + 1e-9)), sn = sinf(a * v);
    return v + inv * (sn * sn);
}

/* [rows, cols] -> [cols, rows] (new array) */
static float *transposed_f32(const float *a, int64_t rows, int64_t cols) {
    float *t = malloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
    return t;
}

/* conv_bf16 against a host reference on the same bf16 operands (x and w), summed in double:
 * y (+)= b + conv(x) for a stride-1 conv (transposed = 0) or a transposed conv, and the bf16
 * operand output ys = snake(y) (alpha_out) or y. The host works in [C, T]; the op in [T, C]. */
static void check_conv_bf16(dia_backend *be, int transposed, int64_t Cin, int64_t Cout, int64_t K, int64_t T, int s,
                            int dil, int pad, int use_snake, int accumulate) {
    const int64_t Tout = transposed ? (T - 1) * s - 2 * pad + K : T + 2 * pad - dil * (K - 1);
    float *x = rand_f32((size_t)(Cin * T), 2.0f), *w = rand_f32((size_t)(Cin * Cout * K), 0.2f);
    float *bias = rand_f32((size_t)Cout, 1.0f), *alpha = rand_f32((size_t)Cout, 1.0f);
    float *y0 = rand_f32((size_t)(Cout * Tout), 1.0f); /* y before (accumulate) */
    for (int64_t i = 0; i < Cout; i++) alpha[i] = fabsf(alpha[i]) + 0.1f;
    /* checkpoint layout w: [Cout, Cin, K], transposed [Cin, Cout, K]; the op's: bf16 [K, Cout, Cin] */
    uint16_t *wt = malloc((size_t)(Cin * Cout * K) * 2), *xb = malloc((size_t)(Cin * T) * 2);
    float *ref = malloc((size_t)(Cout * Tout) * sizeof(float)), *refs = malloc((size_t)(Cout * Tout) * sizeof(float));
#define WIDX(o, i, k) ((transposed ? (i) * Cout + (o) : (o) * Cin + (i)) * K + (k))
    for (int64_t k = 0; k < K; k++)
        for (int64_t o = 0; o < Cout; o++)
            for (int64_t i = 0; i < Cin; i++) wt[(k * Cout + o) * Cin + i] = dia_f32_to_bf16(w[WIDX(o, i, k)]);
    for (int64_t i = 0; i < Cin; i++)
        for (int64_t j = 0; j < T; j++) xb[j * Cin + i] = dia_f32_to_bf16(x[i * T + j]); /* [T, Cin] */
    for (int64_t o = 0; o < Cout; o++)
        for (int64_t t = 0; t < Tout; t++) {
            double acc = bias[o];
            for (int64_t i = 0; i < Cin; i++)
                for (int64_t k = 0; k < K; k++) {
                    int64_t j;
                    if (transposed) { /* j s + k - pad = t */
                        const int64_t num = t + pad - k;
                        if (num < 0 || num % s) continue;
                        j = num / s;
                    } else {
                        j = t + k * dil - pad;
                    }
                    if (j < 0 || j >= T) continue;
                    acc += (double)bf16_round(w[WIDX(o, i, k)]) * bf16_round(x[i * T + j]);
                }
            const float v = (float)(acc + (accumulate ? y0[o * Tout + t] : 0.0));
            ref[o * Tout + t] = v;
            refs[o * Tout + t] = use_snake ? host_snake(v, alpha[o]) : v;
        }
#undef WIDX
    int64_t sx[2] = {T, Cin}, sw[3] = {K, Cout, Cin}, sb[1] = {Cout}, sy[2] = {Tout, Cout};
    float *y0t = transposed_f32(y0, Cout, Tout);
    dia_tensor tx = mk(be, DIA_BF16, 2, sx, xb), tw = mk(be, DIA_BF16, 3, sw, wt), tb = mk(be, DIA_F32, 1, sb, bias),
               ta = mk(be, DIA_F32, 1, sb, alpha), ty = mk(be, DIA_F32, 2, sy, y0t), tys = mk(be, DIA_BF16, 2, sy, NULL);
    free(y0t);
    const dia_conv_args args = {.y = &ty, .ys = &tys, .x = &tx, .w = &tw, .b = &tb, .alpha_out = use_snake ? &ta : NULL,
                                .transposed = transposed, .stride = s, .dilation = dil, .pad = pad,
                                .accumulate = accumulate};
    assert_int_equal(be->ops->conv_bf16(be, &args), DIA_OK);
    float *outt = get(be, &ty), *out = transposed_f32(outt, Tout, Cout);
    uint16_t *outs = malloc((size_t)(Cout * Tout) * 2);
    assert_int_equal(dia_tensor_download(be, &tys, outs, (size_t)(Cout * Tout) * 2), DIA_OK);
    float *outsf = malloc((size_t)(Cout * Tout) * sizeof(float));
    for (int64_t i = 0; i < Cout * Tout; i++) /* [Tout, Cout] -> [Cout, Tout] */
        outsf[i] = dia_bf16_to_f32(outs[(i % Tout) * Cout + i / Tout]);
    free(outt);
    const double d = rel_diff(out, ref, (size_t)(Cout * Tout)), ds = rel_diff(outsf, refs, (size_t)(Cout * Tout));
    printf("  conv_bf16 %s Cin=%lld Cout=%lld K=%lld T=%lld s=%d d=%d p=%d acc=%d: y rel diff %.3g, "
           "ys (snake=%d, bf16) rel diff %.3g\n", transposed ? "transposed" : "conv", (long long)Cin, (long long)Cout,
           (long long)K, (long long)T, s, dil, pad, accumulate, d, use_snake, ds);
    if (!(d <= 1e-5)) fail_msg("conv_bf16 y rel diff %.3g", d);
    if (!(ds <= 4e-3)) fail_msg("conv_bf16 ys rel diff %.3g", ds); /* bf16 rounding: <= 2^-9 relative */
    dia_tensor *all[] = {&tx, &tw, &tb, &ta, &ty, &tys};
    for (int i = 0; i < 6; i++) dia_tensor_free(be, all[i]);
    free(out), free(outs), free(outsf), free(x), free(xb), free(w), free(bias), free(alpha), free(y0), free(wt);
    free(ref), free(refs);
}

static void test_conv_bf16(void **state) {
    (void)state;
    NEED_CUDA();
    dia_backend *be = NULL;
    assert_int_equal(dia_backend_new("cuda", 0, 0, &be), DIA_OK);
    assert_non_null(be->ops->conv_bf16);
    assert_non_null(be->ops->snake_bf16);
    /* chunk and tile tails (Cin 48 and 40, Cout 80 and 20), dilations, 1x1 with accumulate, one
     * output channel, transposed convs of the DAC's strides */
    check_conv_bf16(be, 0, 48, 80, 7, 300, 1, 1, 3, 1, 0);
    check_conv_bf16(be, 0, 64, 64, 7, 517, 1, 9, 27, 1, 1);
    check_conv_bf16(be, 0, 96, 96, 1, 1000, 1, 1, 0, 1, 1);
    check_conv_bf16(be, 0, 16, 20, 3, 129, 1, 3, 3, 0, 0);
    check_conv_bf16(be, 0, 12, 6, 7, 200, 1, 3, 9, 1, 1);  /* Cin % 8 != 0: element loads; Cout % 4 != 0 */
    check_conv_bf16(be, 0, 32, 96, 7, 300, 1, 9, 27, 1, 1); /* 32-channel tiles (96 with 7 taps) */
    check_conv_bf16(be, 0, 12, 3, 7, 300, 1, 1, 3, 1, 1);  /* few channels, unstaged (Cin % 8 != 0) */
    setenv("DIA_CUDA_CONV_BK", "32", 1); /* 1-tap and transposed convs with 32-channel chunks */
    check_conv_bf16(be, 0, 96, 96, 1, 1000, 1, 1, 0, 1, 1);
    check_conv_bf16(be, 1, 64, 32, 16, 40, 8, 1, 4, 1, 0);
    setenv("DIA_CUDA_CONV_BK", "16", 1); /* 16-channel chunks (read at each call) */
    check_conv_bf16(be, 0, 48, 96, 7, 300, 1, 9, 27, 1, 1);
    check_conv_bf16(be, 0, 12, 20, 3, 129, 1, 3, 3, 1, 0);
    check_conv_bf16(be, 1, 48, 24, 4, 301, 2, 1, 1, 1, 0);
    unsetenv("DIA_CUDA_CONV_BK");

    check_conv_bf16(be, 1, 4, 2, 4, 50, 2, 1, 1, 1, 0);    /* the tiny DAC's last block */
    check_conv_bf16(be, 0, 40, 1, 7, 700, 1, 1, 3, 1, 0);
    check_conv_bf16(be, 1, 64, 32, 16, 40, 8, 1, 4, 1, 0);
    check_conv_bf16(be, 1, 48, 24, 4, 301, 2, 1, 1, 1, 0);
    check_conv_bf16(be, 1, 32, 16, 8, 77, 4, 1, 2, 0, 0);
    /* snake_bf16: bf16(snake(x)) and bf16(x), [C, T] -> [T, C] */
    {
        const int64_t Ch = 24, Tn = 1001, sx[2] = {Ch, Tn}, sa[1] = {Ch};
        float *x = rand_f32((size_t)(Ch * Tn), 3.0f), *alpha = rand_f32((size_t)Ch, 1.0f);
        for (int64_t i = 0; i < Ch; i++) alpha[i] = fabsf(alpha[i]) + 0.1f;
        const int64_t sy[2] = {Tn, Ch};
        dia_tensor tx = mk(be, DIA_F32, 2, sx, x), ta = mk(be, DIA_F32, 1, sa, alpha), ty = mk(be, DIA_BF16, 2, sy, NULL);
        uint16_t *got = malloc((size_t)(Ch * Tn) * 2);
        for (int use = 0; use < 2; use++) {
            assert_int_equal(be->ops->snake_bf16(be, &ty, &tx, use ? &ta : NULL), DIA_OK);
            assert_int_equal(dia_tensor_download(be, &ty, got, (size_t)(Ch * Tn) * 2), DIA_OK);
            int64_t off = 0; /* values whose bf16 rounding differs (sinf may differ in the last bit) */
            for (int64_t c = 0; c < Ch; c++)
                for (int64_t t = 0; t < Tn; t++) {
                    const float v = use ? host_snake(x[c * Tn + t], alpha[c]) : x[c * Tn + t];
                    const uint16_t gv = got[t * Ch + c]; /* [T, C] */
                    const int d = (int)gv - (int)dia_f32_to_bf16(v);
                    if (d != 0) off++;
                    if (d > 1 || d < -1) fail_msg("snake_bf16 (%d) at [%lld, %lld]: %04x vs %04x", use, (long long)c,
                                                  (long long)t, gv, dia_f32_to_bf16(v));
                }
            printf("  snake_bf16 (snake %d): %lld of %lld values one bf16 step off\n", use, (long long)off,
                   (long long)(Ch * Tn));
            if (!use) assert_int_equal(off, 0);
            assert_true(off <= Ch * Tn / 100);
        }
        free(got), free(x), free(alpha);
        dia_tensor_free(be, &tx), dia_tensor_free(be, &ta), dia_tensor_free(be, &ty);
    }
    /* a shape mismatch is an error, not a launch */
    int64_t sx[2] = {10, 8}, sw[3] = {3, 4, 9}, sy[2] = {10, 4};
    dia_tensor tx = mk(be, DIA_BF16, 2, sx, NULL), tw = mk(be, DIA_BF16, 3, sw, NULL), ty = mk(be, DIA_F32, 2, sy, NULL);
    const dia_conv_args bad = {.y = &ty, .x = &tx, .w = &tw, .stride = 1, .dilation = 1, .pad = 1};
    assert_int_equal(be->ops->conv_bf16(be, &bad), DIA_ERR_INTERNAL);
    dia_tensor_free(be, &tx), dia_tensor_free(be, &tw), dia_tensor_free(be, &ty);
    dia_backend_free(be);
}

/* The tiny DAC loaded on CUDA with `dtype` ("auto" = bf16 there) and the golden codes decoded:
 * codes int32 [n, 9], audio [na] and the reference audio of the same length. */
typedef struct dac_run {
    dia_dac *d;
    int32_t *codes;
    int n;
    float *audio;
    const float *ref;
    size_t na;
} dac_run;

static dac_run dac_decode_golden_cuda(const char *dtype) {
    dac_run r = {0};
    dia_options *o = NULL;
    assert_int_equal(dia_options_new(&o), DIA_OK);
    assert_int_equal(dia_options_set(o, "backend", "cuda"), DIA_OK);
    assert_int_equal(dia_options_set(o, "dtype", dtype), DIA_OK);
    dia_status st = dia_dac_load(FIXTURES "/dac-hf", o, &r.d);
    dia_options_free(o);
    if (st != DIA_OK) fail_msg("dia_dac_load on cuda: %s: %s", dia_status_string(st), dia_last_error());
    size_t nc;
    const int32_t *qn = golden_i32("dac.decode_codes", &nc); /* [Q, n] codebook-major */
    r.ref = golden_f32("dac.decode_audio", &r.na);
    r.n = (int)(nc / 9);
    r.codes = malloc(nc * sizeof(int32_t));
    for (int q = 0; q < 9; q++)
        for (int t = 0; t < r.n; t++) r.codes[t * 9 + q] = qn[q * r.n + t];
    size_t samples = 0;
    assert_int_equal(dia_dac_decode(r.d, r.codes, r.n, &r.audio, &samples), DIA_OK);
    assert_int_equal(samples, r.na);
    return r;
}

static void dac_run_free(dac_run *r) {
    dia_free(r->audio);
    free(r->codes);
    dia_dac_free(r->d);
}

/* The DAC decoder in bf16 (dtype auto on CUDA) against the f32 reference audio. */
static void test_dac_decode_bf16(void **state) {
    (void)state;
    NEED_CUDA();
    dac_run r = dac_decode_golden_cuda("auto");
    double ss = 0, se = 0;
    for (size_t i = 0; i < r.na; i++) {
        const double e = (double)r.audio[i] - r.ref[i];
        ss += (double)r.ref[i] * r.ref[i], se += e * e;
    }
    const double mx = max_abs_diff(r.audio, r.ref, r.na), rms_rel = sqrt(se / (ss > 0 ? ss : 1));
    printf("  DAC decode on cuda, bf16: max |diff| %.3g, rms error / rms signal %.3g\n", mx, rms_rel);
    /* bf16 operands over ~30 layers: ~2% RMS on this random tiny codec (a bug is ~100%) */
    assert_true(mx <= 0.05);
    assert_true(rms_rel <= 0.04);
    /* streaming: pieces decoded with dia_dac_decode_range (their context frames recomputed)
     * equal the whole decode bit for bit (no kernel's summation order depends on the segment) */
    const int hop = 512, step = 5;
    float *piece = malloc((size_t)step * hop * sizeof(float));
    for (int f = 0; f < r.n; f += step) {
        const int cnt = r.n - f < step ? r.n - f : step;
        assert_int_equal(dia_dac_decode_range(r.d, r.codes, r.n, f, cnt, piece), DIA_OK);
        if (memcmp(piece, r.audio + (size_t)f * hop, (size_t)cnt * hop * sizeof(float)) != 0)
            fail_msg("bf16 dia_dac_decode_range at frame %d differs from the whole decode", f);
    }
    printf("  bf16 decode_range pieces of %d frames == the whole decode\n", step);
    free(piece);
    dac_run_free(&r);
}

/* The DAC decoder end to end on CUDA (f32) against the reference audio, as test_dac.c on the CPU. */
static void test_dac_decode_golden(void **state) {
    (void)state;
    NEED_CUDA();
    dac_run r = dac_decode_golden_cuda("f32");
    printf("  DAC decode on cuda: max |diff| %.3g\n", max_abs_diff(r.audio, r.ref, r.na));
    assert_close(r.audio, r.ref, r.na, 1e-4);
    dac_run_free(&r);
}

/* One model shared by decoder states on two threads (the public contract): each thread runs the
 * golden teacher-forced sequence (prefill 7 + 17 graph-replayed steps) and must get the golden
 * logits. */
typedef struct thread_job {
    dia_model *m;
    double worst;
    dia_status st;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    const float *want = (const float *)golden("text0.tf_logits")->data;
    const int32_t *tok = (const int32_t *)golden("text0.tf_tokens")->data;
    dia_encoder_state *enc = NULL;
    dia_kvcache *cache = NULL;
    dia_decoder_state *dec = NULL;
    float *got = calloc((size_t)2 * TF_T * C * V, sizeof(float)), *step = calloc(2 * C * V, sizeof(float));
    j->worst = 0;
    for (int rep = 0; rep < 3 && j->st == DIA_OK; rep++) {
        if ((j->st = dia_encode(j->m, &TEXT0, 1, 0, &enc)) != DIA_OK) break;
        if ((j->st = dia_kvcache_new(j->m, 1, 32, &cache)) != DIA_OK) break;
        if ((j->st = dia_decoder_state_new(j->m, enc, cache, &dec)) != DIA_OK) break;
        if ((j->st = dia_decoder_prefill(dec, tok, 7, got)) != DIA_OK) break;
        for (int t = 7; t < TF_T && j->st == DIA_OK; t++) {
            j->st = dia_decoder_step(dec, tok + t * C);
            if (j->st == DIA_OK) j->st = dia_decoder_logits(dec, step, 2 * C * V);
            for (int r = 0; r < 2 && j->st == DIA_OK; r++) {
                double d = max_abs_diff(step + (size_t)r * C * V, want + ((size_t)r * TF_T + t) * C * V, C * V);
                if (!(d <= j->worst)) j->worst = d;
            }
        }
        dia_decoder_state_free(dec);
        dia_kvcache_free(cache);
        dia_encoder_state_free(enc);
        dec = NULL, cache = NULL, enc = NULL;
    }
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
    free(got);
    free(step);
    return NULL;
}

static void test_shared_model_threads(void **state) {
    (void)state;
    NEED_CUDA();
    dia_model *m = load("dia-hf", "f32");
    golden("text0.tf_logits"); /* open the goldens before the threads */
    thread_job jobs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        jobs[i].m = m, jobs[i].st = DIA_OK, jobs[i].worst = 0;
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) {
        printf("  thread %d: %s, max diff %.3g\n", i, dia_status_string(jobs[i].st), jobs[i].worst);
        assert_int_equal(jobs[i].st, DIA_OK);
        assert_true(jobs[i].worst <= 1e-4);
    }
    dia_model_free(m);
}

/* Without a device (or without CUDA in the build) the backend and a model load report
 * DIA_ERR_BACKEND, never crash. */
static void test_unavailable_is_backend_error(void **state) {
    (void)state;
    if (have_cuda()) skip();
    dia_backend *be = NULL;
    assert_int_equal(dia_backend_new("cuda", 0, 0, &be), DIA_ERR_BACKEND);
    assert_null(be);
    dia_options *o = NULL;
    assert_int_equal(dia_options_new(&o), DIA_OK);
    assert_int_equal(dia_options_set(o, "backend", "cuda"), DIA_OK);
    dia_model *m = NULL;
    assert_int_equal(dia_model_load(FIXTURES "/dia-hf", o, &m), DIA_ERR_BACKEND);
    assert_null(m);
    dia_options_free(o);
}


/* The device sampler against lib/sampler.c on the golden sampler rows (9 items = the 9 rows, CFG
 * pairs as the decoder lays them out): greedy codes identical; sampled codes identical except
 * where rounding of the reordered sums moves a CDF boundary past u (at most 0.2% of picks). */
static void test_device_sampler(void **state) {
    (void)state;
    NEED_CUDA();
    const float *cond = golden_f32("sampler.cond", NULL), *uncond = golden_f32("sampler.uncond", NULL);
    const int B = 9;
    float *host = malloc(sizeof(float) * 2 * B * C * V); /* [2B, C*V] */
    for (int b = 0; b < B; b++) {
        memcpy(host + (size_t)(2 * b) * C * V, uncond + (size_t)b * C * V, sizeof(float) * C * V);
        memcpy(host + (size_t)(2 * b + 1) * C * V, cond + (size_t)b * C * V, sizeof(float) * C * V);
    }
    dia_backend *be = NULL;
    assert_int_equal(dia_backend_new("cuda", 0, 0, &be), DIA_OK);
    assert_non_null(be->ops->sample);
    dia_tensor lg, codes;
    int64_t nl[2] = {2 * B, C * V}, nc[2] = {B, C};
    assert_int_equal(dia_tensor_alloc(be, DIA_F32, 2, nl, &lg), DIA_OK);
    assert_int_equal(dia_tensor_alloc(be, DIA_I32, 2, nc, &codes), DIA_OK);
    assert_int_equal(dia_tensor_upload(be, &lg, host, sizeof(float) * 2 * B * C * V), DIA_OK);
    struct { double t, p; int k; } cfgs[] = {{0.0, 0.95, 45}, {1.2, 0.95, 45}, {1.0, 1.0, 45}, {1.8, 0.9, 1028},
                                             {1.2, 0.95, 1}, {0.0, 0.95, 45}, {1.2, 0.95, 45}, {1.0, 0.8, 300}};
    float *scratch = malloc(sizeof(float) * V);
    int32_t dev[B * C], ref[B * C], forced[B * C];
    dia_tensor feed, force;
    int64_t nfeed[2] = {2 * B, C};
    assert_int_equal(dia_tensor_alloc(be, DIA_I32, 2, nfeed, &feed), DIA_OK);
    assert_int_equal(dia_tensor_alloc(be, DIA_I32, 2, nc, &force), DIA_OK);
    for (int i = 0; i < B * C; i++) forced[i] = i % 3 ? -1 : 1000 + i % 27;
    assert_int_equal(dia_tensor_upload(be, &force, forced, sizeof forced), DIA_OK);
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        if (ci == 5) {
            /* the last golden row has EOS on top of channel 0: EOS is certain */
            const dia_sample_args a = {B, C, V, 1024, 45, 3.0, 1.2, 0.95, 5, 9, NULL, NULL};
            assert_int_equal(be->ops->sample(be, &codes, &lg, &a), DIA_OK);
            assert_int_equal(dia_tensor_download(be, &codes, dev, sizeof dev), DIA_OK);
            assert_int_equal(dev[8 * C + 0], 1024);
            for (int i = 0; i < B * C; i++) assert_true(dev[i] >= 0 && dev[i] < (i % C == 0 ? 1025 : 1024));
            /* the last three: logits rounded to steps of 0.5 (many exact ties at the top-k
             * threshold and in the probabilities, which the index order decides) with -0 and +0
             * mixed */
            for (size_t i = 0; i < (size_t)2 * B * C * V; i++) {
                host[i] = roundf(host[i] * 2.0f) / 2.0f;
                if (host[i] == 0.0f && (i & 1)) host[i] = -0.0f;
            }
            assert_int_equal(dia_tensor_upload(be, &lg, host, sizeof(float) * 2 * B * C * V), DIA_OK);
        }
        dia_gen_params p;
        dia_gen_params_defaults(&p);
        p.temperature = cfgs[ci].t, p.top_p = cfgs[ci].p, p.top_k = cfgs[ci].k, p.seed = 77 + ci;
        int picks = 0, diff = 0;
        for (uint64_t step = 0; step < 40; step++) {
            /* every other step also feeds the next step's tokens forward: the codes, or force where >= 0 */
            dia_sample_args a = {B, C, V, 1024, p.top_k, p.cfg_scale, p.temperature, p.top_p, p.seed, step, NULL, NULL};
            if (step & 1) a.feed = &feed, a.force = &force;
            assert_int_equal(be->ops->sample(be, &codes, &lg, &a), DIA_OK);
            assert_int_equal(dia_tensor_download(be, &codes, dev, sizeof dev), DIA_OK);
            if (step & 1) {
                int32_t fed[2 * B * C];
                assert_int_equal(dia_tensor_download(be, &feed, fed, sizeof fed), DIA_OK);
                for (int i = 0; i < B * C; i++) {
                    const int32_t want = forced[i] >= 0 ? forced[i] : dev[i];
                    assert_int_equal(fed[(i / C) * 2 * C + i % C], want);     /* row 2b */
                    assert_int_equal(fed[(i / C) * 2 * C + C + i % C], want); /* row 2b + 1 */
                }
            }
            for (int b = 0; b < B; b++)
                assert_int_equal(dia_sampler_pick(&p, host + (size_t)(2 * b + 1) * C * V, host + (size_t)(2 * b) * C * V,
                                                  C, V, 1024, (uint64_t)b, step, scratch, ref + b * C),
                                 DIA_OK);
            for (int i = 0; i < B * C; i++) picks++, diff += dev[i] != ref[i];
            if (p.temperature == 0.0) break; /* greedy does not depend on the step */
        }
        printf("  device sampler%s, temperature %.1f top_p %.2f k %d: %d of %d picks differ from the host\n",
               ci >= 5 ? " (tied logits)" : "", p.temperature, p.top_p, p.top_k, diff, picks);
        if (p.temperature == 0.0) assert_int_equal(diff, 0);
        else assert_true(diff * 500 <= picks);
    }
    free(scratch);
    free(host);
    dia_tensor_free(be, &lg);
    dia_tensor_free(be, &codes);
    dia_tensor_free(be, &feed);
    dia_tensor_free(be, &force);
    dia_backend_free(be);
}

int main(void) {
    dia_set_log_level(DIA_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unavailable_is_backend_error),
        cmocka_unit_test(test_ops_matmul),
        cmocka_unit_test(test_gemm_rows),
        cmocka_unit_test(test_ops_attention),
        cmocka_unit_test(test_ops_attention_bf16_cache),
        cmocka_unit_test(test_kv_store_bf16),
        cmocka_unit_test(test_ops_small),
        cmocka_unit_test(test_ops_linear_fused),
        cmocka_unit_test(test_rope_kv_store),
        cmocka_unit_test(test_linear_rope_kv_store),
        cmocka_unit_test(test_graph_replay),
        cmocka_unit_test(test_decode_step_kernel),
        cmocka_unit_test(test_hf_f32),
        cmocka_unit_test(test_nari_f32),
        cmocka_unit_test(test_hf_bf16),
        cmocka_unit_test(test_encoder_memory_host),
        cmocka_unit_test(test_cache_dtype_and_read),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_activation_bf16),
        cmocka_unit_test(test_device_sampler),
        cmocka_unit_test(test_transfers),
        cmocka_unit_test(test_generate_parity),
        cmocka_unit_test(test_generate_pipelined),
        cmocka_unit_test(test_shared_model_threads),
        cmocka_unit_test(test_dac_ops),
        cmocka_unit_test(test_dac_decode_golden),
        cmocka_unit_test(test_conv_bf16),
        cmocka_unit_test(test_dac_decode_bf16),
    };
    /* DIA_TEST_FILTER=pattern: only the tests whose names match (cmocka's wildcards), e.g. on the device */
    const char *filter = getenv("DIA_TEST_FILTER");
    if (filter && filter[0]) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("cuda", tests, NULL, NULL);
}
