/* bench_dac_cuda.c - DAC decode time of `seconds` of audio (86.13 frames per second) with random
 * codes, through the public API: bench_dac_cuda DAC_DIR [cuda|cpu] [seconds] [dtype]
 * Prints the first (cold) and the best of three warm decode times. */
#include <stdio.h>
#include <stdlib.h>
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
    free(codes);
    dia_dac_free(d);
    return 0;
}
