/* bench_cuda_ops.c - time single backend ops at the full-size Dia-1.6B decode shapes (B = 1 unless
 * --rows is given): each op is enqueued `reps` times back to back and the stream synchronised once,
 * so the figure is the GPU time per op plus the launch gap (what a decode step pays per op).
 *
 *   bench_cuda_ops [--backend cuda|cpu] [--rows R] [--kv L] [--reps N]
 *   bench_cuda_ops --dac FRAMES [--reps N]: instead, the DAC decoder's bf16 convolutions (conv_bf16,
 *   as lib/dac.c calls them) at the shapes of one FRAMES-frame segment of the 44.1 kHz codec
 *   bench_cuda_ops --conv-linear 1 [--rows R]: instead, the decoder's projections at R rows as
 *   cuBLAS, as the backend's matmul (its batch-decode GEMM) and as conv_bf16 with one tap (the
 *   same product: x bf16 [R, K] as [T, Cin], the nn.Linear weight [N, K] as [1, Cout, Cin])
 *
 * Internal API (lib/backend.h); exits 0 with a message when the backend is unavailable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "ops.h"
#include "bench_util.h"

static dia_backend *be;
static int reps = 200;

static dia_tensor T(dia_dtype dt, int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t ne[4] = {a, b, c, d};
    dia_tensor t;
    CHECK(dia_tensor_alloc(be, dt, ndim, ne, &t));
    return t;
}

#define TIME(label, bytes, call)                                                                       \
    do {                                                                                               \
        CHECK(call);                                                                                   \
        CHECK(be->ops->sync(be));                                                                      \
        double t0_ = now_s();                                                                          \
        for (int i_ = 0; i_ < reps; i_++) CHECK(call);                                                 \
        CHECK(be->ops->sync(be));                                                                      \
        double us_ = 1e6 * (now_s() - t0_) / reps;                                                     \
        printf("OP %-34s %9.2f us  %8.1f GB/s\n", label, us_, (double)(bytes) / (us_ * 1e3));         \
    } while (0)

/* Each convolution of a 44.1 kHz DAC decoder segment of `frames` frames, as lib/dac.c's bf16 mode
 * calls it (bf16 operand in, f32 and/or Snake'd bf16 out), timed alone; then the sum. */
static void bench_dac(int64_t frames) {
    if (!be->ops->conv_bf16) {
        printf("backend %s has no conv_bf16\n", be->ops->name);
        return;
    }
    static const int up[4] = {8, 8, 4, 2}, dil[3] = {1, 3, 9};
    const int64_t peak = 96 * frames * 512 > 1536 * frames * 8 ? 96 * frames * 512 : 1536 * frames * 8;
    dia_tensor xb = T(DIA_BF16, 1, 2 * peak, 0, 0, 0), yb = T(DIA_BF16, 1, 2 * peak, 0, 0, 0);
    dia_tensor yf = T(DIA_F32, 1, 2 * peak, 0, 0, 0), alpha = T(DIA_F32, 1, 2048, 0, 0, 0);
    dia_tensor bias = T(DIA_F32, 1, 2048, 0, 0, 0);
    /* zeros for the operands and weights (values do not change the work), ones for alpha */
    void *zeros = calloc((size_t)(4 * peak), 1);
    float ones[2048];
    for (int i = 0; i < 2048; i++) ones[i] = 1.0f;
    if (!zeros) return;
    CHECK(dia_tensor_upload(be, &xb, zeros, dia_tensor_nbytes(&xb)));
    CHECK(dia_tensor_upload(be, &alpha, ones, sizeof ones));
    CHECK(dia_tensor_upload(be, &bias, zeros, 2048 * 4));
    double total_us = 0, total_flop = 0;
    printf("DAC decoder convolutions (conv_bf16), one segment of %lld frames, reps %d\n", (long long)frames, reps);
    for (int step = 0; step < 1 + 4 * 7 + 1; step++) {
        /* step 0: conv1 1024 -> 1536 k7; per block: transposed, then 3 x (k7 dilated, k1); last: conv2 */
        int64_t Cin, Cout, K, Tin, s = 1, d = 1, pad = 0;
        int transposed = 0, acc = 0, f32out = 0;
        char name[96];
        if (step == 0) {
            Cin = 1024, Cout = 1536, K = 7, Tin = frames, pad = 3;
            snprintf(name, sizeof name, "conv1 1024->1536 k7");
        } else if (step == 29) {
            Cin = 96, Cout = 1, K = 7, Tin = frames * 512, pad = 3, f32out = 1;
            snprintf(name, sizeof name, "conv2 96->1 k7");
        } else {
            const int blk = (step - 1) / 7, sub = (step - 1) % 7;
            int64_t C = 1536 >> blk, T0 = frames;
            for (int i = 0; i < blk; i++) T0 *= up[i];
            if (sub == 0) {
                Cin = C, Cout = C / 2, K = 2 * up[blk], Tin = T0, s = up[blk], pad = (up[blk] + 1) / 2;
                transposed = 1, f32out = 1;
                snprintf(name, sizeof name, "block%d conv_t %lld->%lld s%d", blk, (long long)Cin, (long long)Cout, up[blk]);
            } else {
                const int r = (sub - 1) / 2;
                Cin = Cout = C / 2, Tin = T0 * up[blk];
                if ((sub - 1) % 2 == 0) {
                    K = 7, d = dil[r], pad = 3 * dil[r];
                    snprintf(name, sizeof name, "block%d res%d k7 d%lld C=%lld", blk, r, (long long)d, (long long)Cin);
                } else {
                    K = 1, acc = f32out = 1;
                    snprintf(name, sizeof name, "block%d res%d k1 C=%lld", blk, r, (long long)Cin);
                }
            }
        }
        const int64_t Tout = transposed ? (Tin - 1) * s - 2 * pad + K : Tin + 2 * pad - d * (K - 1);
        int64_t nx[2] = {Tin, Cin}, ny[2] = {Tout, Cout}, nc[1] = {Cout}; /* time-major */
        dia_tensor x = dia_tensor_view(&xb, 0, 2, nx), ys = dia_tensor_view(&yb, 0, 2, ny), y = dia_tensor_view(&yf, 0, 2, ny);
        dia_tensor a = dia_tensor_view(&alpha, 0, 1, nc), b = dia_tensor_view(&bias, 0, 1, nc);
        dia_tensor w = T(DIA_BF16, 3, K, Cout, Cin, 0);
        CHECK(dia_tensor_upload(be, &w, zeros, dia_tensor_nbytes(&w)));
        const dia_conv_args args = {.y = f32out ? &y : NULL, .ys = Cout > 1 ? &ys : NULL, .x = &x, .w = &w, .b = &b,
                                    .alpha_out = &a, .transposed = (int)transposed, .stride = (int)s,
                                    .dilation = (int)d, .pad = (int)pad, .accumulate = acc};
        CHECK(be->ops->conv_bf16(be, &args));
        CHECK(be->ops->sync(be));
        const double t0 = now_s();
        for (int i = 0; i < reps; i++) CHECK(be->ops->conv_bf16(be, &args));
        CHECK(be->ops->sync(be));
        const double us = 1e6 * (now_s() - t0) / reps;
        const double flop = 2.0 * (double)Cout * (double)Tout * (double)Cin * (double)(transposed ? K / s : K);
        printf("DAC %-34s T %7lld -> %7lld  %9.1f us  %6.1f TFLOP/s\n", name, (long long)Tin, (long long)Tout, us,
               flop / (us * 1e6));
        total_us += us;
        total_flop += flop;
        dia_tensor_free(be, &w);
    }
    printf("DAC all convolutions of the segment: %.1f us, %.1f TFLOP/s\n", total_us, total_flop / (total_us * 1e6));
    free(zeros);
}

/* The decoder's projections at R rows: matmul through cuBLAS (DIA_CUDA_GEMM_ROWS=0), the
 * split-K batch GEMM of cuda_gemm_rows.cu (DIA_CUDA_GEMM_ROWS=2, R <= 128), and conv_bf16
 * with one tap on an already-bf16 x. Each rep reads another copy of the weight (copies of >= 128 MB
 * in all), so the weights come from HBM as in a decode step, not from the 50 MB L2. */
static void bench_conv_linear(int64_t R) {
    if (!be->ops->conv_bf16) {
        printf("backend %s has no conv_bf16\n", be->ops->name);
        return;
    }
    struct {
        const char *name;
        int64_t N, K;
    } mm[] = {{"q/o 2048x2048", 2048, 2048}, {"k/v 512x2048", 512, 2048}, {"gate_up 16384x2048", 16384, 2048},
              {"down 2048x8192", 2048, 8192}, {"logits 9252x2048", 9252, 2048}};
    printf("projections at %lld rows: cuBLAS vs gemm_rows vs wgmma vs conv_bf16 (1 tap), reps %d\n", (long long)R,
           reps);
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
        const int64_t N = mm[i].N, K = mm[i].K, bytes = N * K * 2;
        int nc = (int)((128ll << 20) / bytes);
        if (nc < 1) nc = 1;
        if (nc > 64) nc = 64;
        dia_tensor *w = calloc((size_t)nc, sizeof *w), *w3 = calloc((size_t)nc, sizeof *w3);
        const int64_t nw[3] = {1, N, K};
        for (int c = 0; c < nc; c++) w[c] = T(DIA_BF16, 2, N, K, 0, 0), w3[c] = dia_tensor_view(&w[c], 0, 3, nw);
        dia_tensor x = T(DIA_F32, 2, R, K, 0, 0), xb = T(DIA_BF16, 2, R, K, 0, 0), y = T(DIA_F32, 2, R, N, 0, 0);
        double us[4];
        /* 0 cuBLAS, 1 gemm_rows (mma.sync), 2 wgmma (the default), 3 conv_bf16 */
        for (int v = 0; v < 4; v++) {
            setenv("DIA_CUDA_GEMM_ROWS", v == 0 ? "0" : v == 1 ? "2" : "1", 1);
            setenv("DIA_CUDA_GEMM_WG", v == 0 ? "0" : "1", 1);
            for (int r = -1; r < reps; r++) {
                if (r == 0) {
                    CHECK(be->ops->sync(be));
                    us[v] = now_s();
                }
                const int c = (r + nc) % nc;
                const dia_conv_args a = {.y = &y, .x = &xb, .w = &w3[c], .stride = 1, .dilation = 1, .pad = 0};
                CHECK(v == 3 ? be->ops->conv_bf16(be, &a) : be->ops->matmul(be, &y, &x, &w[c], 1, 0));
            }
            CHECK(be->ops->sync(be));
            us[v] = 1e6 * (now_s() - us[v]) / reps;
        }
        unsetenv("DIA_CUDA_GEMM_ROWS");
        unsetenv("DIA_CUDA_GEMM_WG");
        printf("LIN %-20s cuBLAS %7.2f us (%6.1f GB/s)  gemm_rows %7.2f us (%6.1f GB/s)  wgmma %7.2f us (%6.1f GB/s)  "
               "conv_bf16 %7.2f us\n",
               mm[i].name, us[0], (double)bytes / (us[0] * 1e3), us[1], (double)bytes / (us[1] * 1e3), us[2],
               (double)bytes / (us[2] * 1e3), us[3]);
        for (int c = 0; c < nc; c++) dia_tensor_free(be, &w[c]);
        free(w);
        free(w3);
        dia_tensor *all[] = {&x, &xb, &y};
        for (int j = 0; j < 3; j++) dia_tensor_free(be, all[j]);
    }
}

int main(int argc, char **argv) {
    const char *backend = "cuda";
    int64_t R = 2, L = 1500, dac_frames = 0;
    int conv_linear = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dac")) dac_frames = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--conv-linear")) conv_linear = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--backend")) backend = argv[i + 1];
        else if (!strcmp(argv[i], "--rows")) R = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kv")) L = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    if (dia_backend_new(backend, 0, 0, &be) != DIA_OK) {
        printf("bench_cuda_ops: backend %s unavailable (%s); nothing to time\n", backend, dia_last_error());
        return 0;
    }
    if (dac_frames > 0 || conv_linear) {
        if (dac_frames > 0) bench_dac(dac_frames);
        else bench_conv_linear(R);
        dia_backend_free(be);
        return 0;
    }
    const int64_t D = 2048, I = 8192, H = 16, KV = 4, hd = 128, S = 3072, Lt = 130, CV = 9 * 1028;
    printf("backend %s, rows %lld, kv length %lld, reps %d\n", backend, (long long)R, (long long)L, reps);
    dia_tensor x = T(DIA_F32, 2, R, D, 0, 0), y = T(DIA_F32, 2, R, 2 * I, 0, 0), y2 = T(DIA_F32, 2, R, CV, 0, 0);
    dia_tensor xi = T(DIA_F32, 2, R, I, 0, 0);
    struct {
        const char *name;
        int64_t N, K;
    } mm[] = {{"matmul q/o 2048x2048", D, D},  {"matmul k/v 512x2048", KV * hd, D},
              {"matmul gate_up 16384x2048", 2 * I, D}, {"matmul down 2048x8192", D, I},
              {"matmul logits 9252x2048", CV, D}};
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
        dia_tensor w = T(DIA_BF16, 2, mm[i].N, mm[i].K, 0, 0);
        dia_tensor xin = mm[i].K == I ? xi : x;
        int64_t ne[2] = {R, mm[i].N};
        dia_tensor yo = dia_tensor_view(mm[i].N == CV ? &y2 : &y, 0, 2, ne);
        TIME(mm[i].name, mm[i].N * mm[i].K * 2, be->ops->matmul(be, &yo, &xin, &w, 1, 0));
        dia_tensor_free(be, &w);
    }
    /* fused projections (slot `linear`, or the composition where a backend lacks it) */
    {
        dia_tensor wq = T(DIA_BF16, 2, D, D, 0, 0), wk = T(DIA_BF16, 2, KV * hd, D, 0, 0), wv = T(DIA_BF16, 2, KV * hd, D, 0, 0);
        dia_tensor wgu = T(DIA_BF16, 2, 2 * I, D, 0, 0), wd = T(DIA_BF16, 2, D, I, 0, 0), wl = T(DIA_BF16, 2, CV, D, 0, 0);
        dia_tensor g = T(DIA_F32, 1, D, 0, 0, 0), sc = T(DIA_F32, 2, R, D, 0, 0), sci = T(DIA_F32, 2, R, I, 0, 0);
        dia_tensor yq = T(DIA_F32, 2, R, D, 0, 0), yk = T(DIA_F32, 2, R, KV * hd, 0, 0), yv = T(DIA_F32, 2, R, KV * hd, 0, 0);
        dia_tensor res = T(DIA_F32, 2, R, D, 0, 0);
        int64_t ne_l[2] = {R, CV};
        dia_tensor yl = dia_tensor_view(&y2, 0, 2, ne_l);
        dia_linear_args qkv = {.x = &x, .norm_w = &g, .eps = 1e-5f, .n = 3, .y = {&yq, &yk, &yv}, .w = {&wq, &wk, &wv},
                               .trans_w = {1, 1, 1}, .scratch = &sc};
        TIME("linear rmsnorm + q|k|v 3072x2048", (D + 2 * KV * hd) * D * 2, op_linear_fused(be, &qkv));
        dia_linear_args o = {.x = &yq, .n = 1, .y = {&res}, .w = {&wq}, .trans_w = {1}, .accumulate = 1};
        TIME("linear o 2048x2048 (+= residual)", D * D * 2, op_linear_fused(be, &o));
        dia_linear_args gu = {.x = &x, .norm_w = &g, .eps = 1e-5f, .gated = 1, .n = 1, .y = {&sci}, .w = {&wgu},
                              .trans_w = {1}, .scratch = &sc, .scratch_out = &y};
        TIME("linear rmsnorm + gate_up 16384x2048 + silu", 2 * I * D * 2, op_linear_fused(be, &gu));
        dia_linear_args dn = {.x = &sci, .n = 1, .y = {&res}, .w = {&wd}, .trans_w = {1}, .accumulate = 1};
        TIME("linear down 2048x8192 (+= residual)", D * I * 2, op_linear_fused(be, &dn));
        dia_linear_args lg = {.x = &x, .norm_w = &g, .eps = 1e-5f, .n = 1, .y = {&yl}, .w = {&wl}, .trans_w = {1},
                              .scratch = &sc};
        TIME("linear rmsnorm + logits 9252x2048", CV * D * 2, op_linear_fused(be, &lg));
        dia_tensor *all[] = {&wq, &wk, &wv, &wgu, &wd, &wl, &g, &sc, &sci, &yq, &yk, &yv, &res};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dia_tensor_free(be, all[i]);
    }
    dia_tensor nw = T(DIA_F32, 1, D, 0, 0, 0), xn = T(DIA_F32, 2, R, D, 0, 0);
    TIME("rmsnorm", R * D * 8, be->ops->rmsnorm(be, &xn, &x, &nw, 1e-5f));
    dia_tensor pos = T(DIA_I32, 1, R, 0, 0, 0), q3 = T(DIA_F32, 3, R, H, hd, 0);
    TIME("rope q", R * H * hd * 8, be->ops->rope(be, &q3, &pos, 10000.0f));
    dia_tensor kc = T(DIA_F32, 4, R, KV, S, hd), vc = T(DIA_F32, 4, R, KV, S, hd), knew = T(DIA_F32, 4, R, 1, KV, hd);
    dia_tensor start = T(DIA_I32, 1, R, 0, 0, 0), len = T(DIA_I32, 1, R, 0, 0, 0);
    int32_t *hl = malloc((size_t)R * sizeof(int32_t));
    for (int64_t r = 0; r < R; r++) hl[r] = 0;
    CHECK(dia_tensor_upload(be, &start, hl, (size_t)R * 4)); /* write position 0 */
    CHECK(dia_tensor_upload(be, &pos, hl, (size_t)R * 4));
    for (int64_t r = 0; r < R; r++) hl[r] = (int32_t)L;
    CHECK(dia_tensor_upload(be, &len, hl, (size_t)R * 4));
    dia_tensor q4 = T(DIA_F32, 4, R, 1, H, hd), o4 = T(DIA_F32, 4, R, 1, H, hd);
    TIME("kv_store", R * KV * hd * 8, be->ops->kv_store(be, &kc, &knew, &start));
    TIME("self-attention (decode, L kv)", R * KV * L * hd * 8, be->ops->attention(be, &o4, &q4, &kc, &vc, &len, NULL));
    /* the same over bf16 caches (the CUDA cache dtype with bf16 weights) */
    const dia_dtype cdt = be->ops->cache_dtype ? be->ops->cache_dtype(be, DIA_BF16) : DIA_F32;
    if (cdt == DIA_BF16) {
        dia_tensor kcb = T(DIA_BF16, 4, R, KV, S, hd), vcb = T(DIA_BF16, 4, R, KV, S, hd);
        TIME("kv_store (bf16 cache)", R * KV * hd * 6, be->ops->kv_store(be, &kcb, &knew, &start));
        TIME("self-attention (decode, L kv, bf16 cache)", R * KV * L * hd * 4,
             be->ops->attention(be, &o4, &q4, &kcb, &vcb, &len, NULL));
        {
            dia_tensor qq = T(DIA_F32, 3, R, H, hd, 0), kk = T(DIA_F32, 4, R, 1, KV, hd), vv = T(DIA_F32, 4, R, 1, KV, hd);
            TIME("rope q,k + kv_store k,v (bf16 cache)", R * (H + 3 * KV) * hd * 8,
                 op_rope_kv_store(be, &qq, &kk, &vv, &kcb, &vcb, &pos, &start, 10000.0f));
            dia_tensor *all[] = {&qq, &kk, &vv};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dia_tensor_free(be, all[i]);
        }
        dia_tensor_free(be, &kcb);
        dia_tensor_free(be, &vcb);
    }
    dia_tensor ck = T(DIA_F32, 4, R, H, Lt, hd), cv = T(DIA_F32, 4, R, H, Lt, hd);
    for (int64_t r = 0; r < R; r++) hl[r] = (int32_t)Lt;
    dia_tensor clen = T(DIA_I32, 1, R, 0, 0, 0);
    CHECK(dia_tensor_upload(be, &clen, hl, (size_t)R * 4));
    TIME("cross-attention (130 keys)", R * H * Lt * hd * 8, be->ops->attention(be, &o4, &q4, &ck, &cv, &clen, NULL));
    dia_tensor ckb = T(DIA_BF16, 4, R, H, Lt, hd), cvb = T(DIA_BF16, 4, R, H, Lt, hd);
    TIME("cross-attention (130 keys, bf16)", R * H * Lt * hd * 4,
         be->ops->attention(be, &o4, &q4, &ckb, &cvb, &clen, NULL));
    dia_tensor hm = T(DIA_F32, 2, R, I, 0, 0);
    TIME("silu_mul", R * I * 12, be->ops->silu_mul(be, &hm, &y));
    TIME("add", R * D * 12, be->ops->add(be, &x, &xn));
    dia_tensor emb = T(DIA_BF16, 2, CV, D, 0, 0), tok = T(DIA_I32, 2, R, 9, 0, 0);
    dia_tensor tabs[9];
    for (int c = 0; c < 9; c++) {
        int64_t ne[2] = {1028, D};
        tabs[c] = dia_tensor_view(&emb, c * 1028 * D, 2, ne);
    }
    TIME("embed (9 tables)", R * D * 9 * 2, be->ops->embed(be, &x, tabs, 9, &tok));
    int32_t small[64] = {0};
    TIME("upload 16 bytes", 16, be->ops->upload(be, pos.buf, pos.offset, small, 8));
    float host[9 * 1028];
    TIME("download 37 KB (one row's logits)", CV * 4,
         be->ops->download(be, y2.buf, y2.offset, host, (size_t)CV * 4));
    if (be->ops->sample && R % 2 == 0) {
        /* the device sampler on logits of a spread like the model's (sums of uniforms, scale ~3): the
         * default parameters, then greedy; B = rows / 2 items of 9 channels */
        float *lh = malloc(sizeof(float) * (size_t)R * CV);
        uint64_t z = 88172645463325252ull;
        for (int64_t i = 0; i < R * CV && lh; i++) {
            float u = 0.0f;
            for (int j = 0; j < 4; j++) z ^= z << 13, z ^= z >> 7, z ^= z << 17, u += (float)(z >> 40) / 16777216.0f;
            lh[i] = 3.0f * (u - 2.0f);
        }
        if (lh) {
            int64_t ne_l[2] = {R, CV};
            dia_tensor yl = dia_tensor_view(&y2, 0, 2, ne_l), codes = T(DIA_I32, 2, R / 2, 9, 0, 0);
            CHECK(dia_tensor_upload(be, &yl, lh, sizeof(float) * (size_t)R * CV));
            dia_sample_args sa = {.B = (int)(R / 2), .C = 9, .V = 1028, .eos = 1024, .top_k = 45, .cfg_scale = 3.0,
                                  .temperature = 1.2, .top_p = 0.95, .seed = 1, .step = 1};
            TIME("sample (top_k 45, top_p 0.95, t 1.2)", R * CV * 4, be->ops->sample(be, &codes, &yl, &sa));
            sa.temperature = 0.0;
            TIME("sample (greedy)", R * CV * 4, be->ops->sample(be, &codes, &yl, &sa));
            free(lh);
        }
    }
    free(hl);
    dia_backend_free(be); /* process exit releases the rest */
    return 0;
}
