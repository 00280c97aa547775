/* bench_dac_conv.c - why the CPU DAC convolutions use im2col + sgemm: times the backend's conv1d
 * against a direct loop (the textbook y[o,t] = b[o] + sum_i,k w[o,i,k] x[i, t s + k d - p], with the
 * inner loop over t so it vectorises) on DAC-44.1kHz layer shapes, single thread, and checks that
 * both agree.
 *   bench_dac_conv [reps] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "bench_util.h"

static void direct_conv(float *y, const float *x, const float *w, const float *b, int Cin, int T, int Cout, int K,
                        int dil, int pad, int Tout) {
    for (int o = 0; o < Cout; o++) {
        float *yr = y + (size_t)o * Tout;
        for (int t = 0; t < Tout; t++) yr[t] = b[o];
        for (int i = 0; i < Cin; i++)
            for (int k = 0; k < K; k++) {
                const float wv = w[((size_t)o * Cin + i) * K + k];
                const float *xr = x + (size_t)i * T;
                const int off = k * dil - pad;
                const int t0 = off < 0 ? -off : 0, t1 = T - off < Tout ? T - off : Tout;
                for (int t = t0; t < t1; t++) yr[t] += wv * xr[t + off];
            }
    }
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 3;
    /* name, Cin, Cout, K, dilation, T: residual-unit convs of the decoder blocks, 0.25 s of audio */
    struct { const char *name; int Cin, Cout, K, dil, T; } shapes[] = {
        {"dec conv_in 1024->1536 k7", 1024, 1536, 7, 1, 22},
        {"block1 RU 768 k7 d3", 768, 768, 7, 3, 176},
        {"block2 RU 384 k7 d9", 384, 384, 7, 9, 1408},
        {"block4 RU 96 k7 d1", 96, 96, 7, 1, 11025},
        {"RU 1x1 768", 768, 768, 1, 1, 176},
    };
    dia_backend *be = NULL;
    if (dia_backend_cpu_new(1, &be) != DIA_OK) return 1;
    printf("%-28s %12s %12s %10s\n", "shape (1 thread)", "im2col+sgemm", "direct loop", "max|diff|");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int Cin = shapes[s].Cin, Cout = shapes[s].Cout, K = shapes[s].K, d = shapes[s].dil, T = shapes[s].T;
        const int pad = d * (K - 1) / 2, Tout = T;
        int64_t nx[2] = {Cin, T}, nw[3] = {Cout, Cin, K}, nb[1] = {Cout}, ny[2] = {Cout, Tout};
        dia_tensor x, w, b, y;
        dia_tensor_alloc(be, DIA_F32, 2, nx, &x);
        dia_tensor_alloc(be, DIA_F32, 3, nw, &w);
        dia_tensor_alloc(be, DIA_F32, 1, nb, &b);
        dia_tensor_alloc(be, DIA_F32, 2, ny, &y);
        float *hx = malloc(sizeof(float) * Cin * T), *hw = malloc(sizeof(float) * Cout * Cin * K),
              *hb = malloc(sizeof(float) * Cout), *hy = malloc(sizeof(float) * Cout * Tout),
              *hd = malloc(sizeof(float) * Cout * Tout);
        srand(7);
        for (int i = 0; i < Cin * T; i++) hx[i] = (float)rand() / RAND_MAX - 0.5f;
        for (int i = 0; i < Cout * Cin * K; i++) hw[i] = ((float)rand() / RAND_MAX - 0.5f) * 0.1f;
        for (int i = 0; i < Cout; i++) hb[i] = 0.01f * i;
        dia_tensor_upload(be, &x, hx, sizeof(float) * Cin * T);
        dia_tensor_upload(be, &w, hw, sizeof(float) * Cout * Cin * K);
        dia_tensor_upload(be, &b, hb, sizeof(float) * Cout);
        double t_op = 1e9, t_direct = 1e9;
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            be->ops->conv1d(be, &y, &x, &w, &b, 1, d, pad);
            double t1 = now_s();
            direct_conv(hd, hx, hw, hb, Cin, T, Cout, K, d, pad, Tout);
            double t2 = now_s();
            if (t1 - t0 < t_op) t_op = t1 - t0;
            if (t2 - t1 < t_direct) t_direct = t2 - t1;
        }
        dia_tensor_download(be, &y, hy, sizeof(float) * Cout * Tout);
        double md = 0;
        for (int i = 0; i < Cout * Tout; i++) md = fmax(md, fabs(hy[i] - hd[i]));
        printf("%-28s %10.2f ms %10.2f ms %10.2g\n", shapes[s].name, 1e3 * t_op, 1e3 * t_direct, md);
        dia_tensor_free(be, &x), dia_tensor_free(be, &w), dia_tensor_free(be, &b), dia_tensor_free(be, &y);
        free(hx), free(hw), free(hb), free(hy), free(hd);
    }
    dia_backend_free(be);
    return 0;
}
