/* bench_decode.c - decode steps/s of libdia on a real checkpoint or on a random-weight model built
 * in memory from a config (the full-size Dia-1.6B architecture without its 6 GB file).
 *
 *   bench_decode (--model DIR | --random-config FILE.json) [--dtype f32|bf16] [--backend cpu|cuda]
 *                [--threads N] [--batch B] [--steps N] [--warmup N] [--text TEXT]
 *
 * Prints one line: backend, threads, weight dtype, batch, steps, steps/s, frames/s, x real time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "safetensors.h"
#include "bench_util.h"

int main(int argc, char **argv) {
    const char *model_dir = NULL, *random_cfg = NULL, *dtype = "f32", *backend = "cpu", *threads = "0";
    const char *text = "[S1] Dia is an open weights text to dialogue model. [S2] You get full control over scripts "
                       "and voices. [S1] Wow. Amazing. (laughs)";
    int batch = 1, steps = 32, warmup = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--random-config")) random_cfg = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--threads")) threads = v;
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--text")) text = v;
        else {
            fprintf(stderr, "bench: unknown option %s\n", a);
            return 2;
        }
    }
    if (!model_dir == !random_cfg || batch < 1 || steps < 1 || warmup < 0) {
        fprintf(stderr, "usage: bench_decode (--model DIR | --random-config FILE) [--dtype f32|bf16] [--backend cpu|cuda]\n"
                        "                    [--threads N] [--batch B] [--steps N] [--warmup N]\n");
        return 2;
    }
    dia_options *opts = NULL;
    CHECK(dia_options_new(&opts));
    CHECK(dia_options_set(opts, "backend", backend));
    CHECK(dia_options_set(opts, "threads", threads));
    CHECK(dia_options_set(opts, "dtype", dtype));
    dia_model *m = NULL;
    double t0 = now_s();
    if (model_dir) {
        CHECK(dia_model_load(model_dir, opts, &m));
    } else {
        char *json = NULL;
        CHECK(dia_read_text_file(random_cfg, &json, 1 << 20));
        CHECK(dia_model_new_random(json, opts, 1234, !strcmp(dtype, "bf16") ? DIA_BF16 : DIA_F32, &m));
        free(json);
    }
    const double t_load = now_s() - t0;
    const int C = m->cfg.channels;
    const char **texts = calloc((size_t)batch, sizeof(char *));
    for (int b = 0; b < batch; b++) texts[b] = text;
    dia_encoder_state *enc = NULL;
    t0 = now_s();
    CHECK(dia_encode(m, texts, batch, DIA_ENCODE_TRUNCATE, &enc));
    const double t_enc = now_s() - t0;
    const int total = warmup + steps;
    dia_kvcache *cache = NULL;
    CHECK(dia_kvcache_new(m, batch, total < m->cfg.max_frames ? total : m->cfg.max_frames, &cache));
    dia_decoder_state *dec = NULL;
    CHECK(dia_decoder_state_new(m, enc, cache, &dec));
    int32_t *tok = malloc((size_t)batch * C * sizeof(int32_t));
    for (int i = 0; i < batch * C; i++) tok[i] = m->cfg.bos;
    double t_start = 0;
    for (int s = 0; s < total && s < m->cfg.max_frames; s++) {
        if (s == warmup) t_start = now_s();
        CHECK(dia_decoder_step(dec, tok));
        for (int i = 0; i < batch * C; i++) tok[i] = (s * 131 + i * 17) % 1024; /* fixed, data-independent inputs */
    }
    const double dt = now_s() - t_start;
    const double sps = steps / dt;
    int nthreads = ((const int *)m->be->ctx)[0]; /* cpu: thread count; informational */
    printf("backend=%s threads=%s(%d) weights=%s batch=%d steps=%d load=%.2fs encode=%.3fs steps/s=%.2f "
           "frames/s=%.2f realtime=%.3fx\n",
           m->be->ops->name, threads, !strcmp(backend, "cpu") ? nthreads : 0, dia_dtype_name(m->wdtype), batch, steps,
           t_load, t_enc, sps, sps * batch, sps * batch / (44100.0 / 512.0));
    free(tok);
    free(texts);
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
    dia_model_free(m);
    dia_options_free(opts);
    return 0;
}
