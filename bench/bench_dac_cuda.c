/* bench_dac_cuda.c - DAC decode time of `seconds` of audio (86.13 frames per second) with random
 * codes, through the public API: bench_dac_cuda DAC_DIR [cuda|cpu] [seconds] [dtype]
 * Prints the first (cold) and the best of three warm decode times; with a dtype other than f32, also
 * how far its audio is from an f32 decode of the same codes (RMS of the difference / RMS of the f32
 * audio, and the largest difference; DAC_NO_COMPARE=1 skips it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dia.h"
#include "bench_util.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_dac_cuda DAC_DIR [cuda|cpu] [seconds] [f32|bf16|auto]\n");
        return 2;
    }
    const char *backend = argc > 2 ? argv[2] : "cuda", *dtype = argc > 4 ? argv[4] : "f32";
    const double seconds = argc > 3 ? atof(argv[3]) : 10.0;
    dia_options *o = NULL;
    dia_dac *d = NULL;
    if (dia_options_new(&o) || dia_options_set(o, "backend", backend) || dia_options_set(o, "dtype", dtype) ||
        dia_dac_load(argv[1], o, &d)) {
        fprintf(stderr, "bench_dac_cuda: %s\n", dia_last_error());
        return 1;
    }
    dia_options_free(o);
    const int frames = (int)(seconds * 44100.0 / 512.0 + 0.5);
    int32_t *codes = malloc((size_t)frames * 9 * sizeof(int32_t));
    for (int i = 0; i < frames * 9; i++) codes[i] = (int32_t)((i * 7919u + 13u) % 1024u);
    double cold = 0, best = 1e9;
    size_t n = 0;
    for (int it = 0; it < 4; it++) {
        float *audio = NULL;
        const double t0 = now_s();
        if (dia_dac_decode(d, codes, frames, &audio, &n) != DIA_OK) {
            fprintf(stderr, "bench_dac_cuda: decode: %s\n", dia_last_error());
            return 1;
        }
        const double t = now_s() - t0;
        if (it == 0) cold = t;
        else if (t < best) best = t;
        dia_free(audio);
    }
    printf("DAC backend=%s dtype=%s frames=%d samples=%zu audio_s=%.2f decode_cold_ms=%.1f decode_ms=%.1f x_realtime=%.0f\n",
           backend, dtype, frames, n, n / 44100.0, 1e3 * cold, 1e3 * best, (n / 44100.0) / best);
    if (strcmp(dtype, "f32") && !getenv("DAC_NO_COMPARE")) {
        dia_dac *ref = NULL;
        float *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (dia_options_new(&o) || dia_options_set(o, "backend", backend) || dia_options_set(o, "dtype", "f32") ||
            dia_dac_load(argv[1], o, &ref) || dia_dac_decode(d, codes, frames, &a, &na) ||
            dia_dac_decode(ref, codes, frames, &b, &nb) || na != nb) {
            fprintf(stderr, "bench_dac_cuda: f32 comparison: %s\n", dia_last_error());
            return 1;
        }
        double se = 0, ss = 0, mx = 0;
        for (size_t i = 0; i < na; i++) {
            const double e = (double)a[i] - b[i];
            se += e * e, ss += (double)b[i] * b[i];
            if (fabs(e) > mx) mx = fabs(e);
        }
        printf("DAC dtype=%s vs f32, same codes: rms(diff)/rms(f32)=%.3g max|diff|=%.3g rms(f32)=%.3g\n", dtype,
               sqrt(se / (ss > 0 ? ss : 1)), mx, sqrt(ss / (double)na));
        dia_free(a), dia_free(b);
        dia_options_free(o);
        dia_dac_free(ref);
    }
    free(codes);
    dia_dac_free(d);
    return 0;
}
