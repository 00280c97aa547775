/* bench_cuda.c - decode-step throughput of libdia through the public API only (dia_encode,
 * dia_kvcache_new, dia_decoder_state_new, dia_decoder_step), for the CUDA backend (works on the
 * CPU too).
 *
 *   bench_cuda --model DIR [--backend cuda|cpu] [--dtype auto|f32|bf16] [--batch B] [--steps N]
 *              [--warmup W] [--capacity CAP] [--text TEXT] [--encoder-memory device|host] [--generate 1]
 *
 * --generate 1 times dia_generate instead (what an application runs: the sampler on the device,
 * B x 9 codes to the host per step, the EOS bookkeeping): max_tokens = max(CAP, W + N + 32) with
 * the default sampling parameters (CAP 3072: the cache of a default, full-length generation; the
 * frame callback cancels the generation after the timed frames); steps/s from item 0's frame
 * callbacks W .. W + N (one frame per step), the time to first frame from the call (encode
 * included) to frame 0. The model's EOS row should be zero (bench/make_full_model.py) so that no
 * item stops early.
 *
 * The cache holds max(CAP, 1 + W + N) positions (CAP 3072 = a full generation's cache); the first position is a BOS prefill, then W untimed and N
 * timed single steps with fixed pseudo-random codes. Every step includes what dia_decoder_step
 * does today: the host upload of tokens/positions and the download of the last logits.
 * Prints one "RESULT" line (key=value) with the process's GPU memory from nvidia-smi and, in a CUDA
 * build, the device memory in use from cudaMemGetInfo (total - free, so the CUDA context included)
 * before the model is loaded, after loading, after the cache is allocated and at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dia.h"
#include "bench_util.h"

/* cudaMemGetInfo when the CUDA runtime is linked (a CUDA build), else NULL */
extern int cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) __attribute__((weak));

/* MiB of device memory in use (total - free) on the current device, -1 without CUDA. */
static long used_mib(void) {
    size_t fr = 0, tot = 0;
    if (!cudaMemGetInfo || cudaMemGetInfo(&fr, &tot) != 0) return -1;
    return (long)((tot - fr) >> 20);
}

/* MiB of GPU memory this process holds, from nvidia-smi (-1 if unknown). */
static long gpu_mib(void) {
    FILE *f = popen("nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null", "r");
    if (!f) return -1;
    long pid, mib, got = -1;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%ld, %ld", &pid, &mib) == 2 && pid == (long)getpid()) got = mib;
    pclose(f);
    return got;
}

typedef struct frame_times {
    double *t; /* t[frame] of item 0 */
    int n, cap;
} frame_times;

static int on_frame(int item, int frame, const int32_t *codes, void *user) {
    (void)codes;
    frame_times *ft = user;
    if (item == 0 && frame < ft->cap) ft->t[frame] = now_s(), ft->n = frame + 1;
    return item == 0 && frame + 1 >= ft->cap; /* all timed frames seen: cancel */
}

/* dia_generate timed by its frame callbacks (see the header). */
static int run_generate(dia_model *m, const char **texts, int batch, int steps, int warmup, int capacity,
                        const char *backend, const char *dtype) {
    const int cap = warmup + steps + 1, max_tokens = capacity > warmup + steps + 32 ? capacity : warmup + steps + 32;
    frame_times ft = {calloc((size_t)cap, sizeof(double)), 0, cap};
    dia_gen_params *gp = NULL;
    CHECK(dia_gen_params_new(&gp));
    CHECK(dia_gen_params_set(gp, "max_tokens", max_tokens));
    CHECK(dia_gen_params_set(gp, "seed", 1));
    dia_codes *codes = NULL;
    const double t0 = now_s();
    const dia_status gs = dia_generate(m, gp, batch, texts, NULL, NULL, on_frame, &ft, &codes);
    const double total = now_s() - t0;
    if (gs != DIA_OK && gs != DIA_ERR_CANCELLED) {
        fprintf(stderr, "bench_cuda: dia_generate: %s\n", dia_status_string(gs));
        return 1;
    }
    if (ft.n < cap) {
        fprintf(stderr, "bench_cuda: item 0 stopped after %d frames (EOS sampled?); need %d\n", ft.n, cap);
        return 1;
    }
    const double loop = ft.t[warmup + steps] - ft.t[warmup], sps = steps / loop;
    printf("RESULT mode=generate backend=%s dtype=%s batch=%d max_tokens=%d timed_frames=%d..%d steps_per_s=%.1f "
           "ms_per_step=%.3f frames_per_s=%.0f x_realtime=%.2f ttff_ms=%.1f total_s=%.3f frames_item0=%d\n",
           backend, dtype, batch, max_tokens, warmup, warmup + steps, sps, 1e3 * loop / steps, sps * batch,
           sps * batch / 86.13, 1e3 * (ft.t[0] - t0), total, codes ? dia_codes_frames(codes, 0) : ft.n);
    dia_codes_free(codes);
    dia_gen_params_free(gp);
    free(ft.t);
    return 0;
}

int main(int argc, char **argv) {
    const char *model_dir = NULL, *backend = "cuda", *dtype = "auto", *enc_mem = "device";
    const char *text = "[S1] Dia is an open weights text to dialogue model. [S2] You get full control over scripts "
                       "and voices. [S1] Wow. Amazing. (laughs)";
    int batch = 1, steps = 200, warmup = 20, capacity = 0, generate = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--encoder-memory")) enc_mem = v;
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--capacity")) capacity = atoi(v);
        else if (!strcmp(a, "--generate")) generate = atoi(v);
        else if (!strcmp(a, "--text")) text = v;
        else if (!strcmp(a, "--verbose")) dia_set_log_level(atoi(v) ? DIA_LOG_DEBUG : DIA_LOG_INFO);
        else {
            fprintf(stderr, "bench_cuda: unknown option %s\n", a);
            return 2;
        }
    }
    if (!model_dir || batch < 1 || steps < 1 || warmup < 0) {
        fprintf(stderr, "usage: bench_cuda --model DIR [--backend cuda|cpu] [--dtype auto|f32|bf16] [--batch B]\n"
                        "                  [--steps N] [--warmup W] [--capacity CAP] [--text TEXT] [--verbose 0|1]\n"
                        "                  [--encoder-memory device|host] [--generate 0|1]\n");
        return 2;
    }
    dia_options *opts = NULL;
    CHECK(dia_options_new(&opts));
    CHECK(dia_options_set(opts, "backend", backend));
    CHECK(dia_options_set(opts, "dtype", dtype));
    CHECK(dia_options_set(opts, "encoder_memory", enc_mem));
    const int use_gpu = !strcmp(backend, "cuda");
    const long mib_start = use_gpu ? used_mib() : -1; /* creates the CUDA context libdia then uses */
    dia_model *m = NULL;
    double t0 = now_s();
    CHECK(dia_model_load(model_dir, opts, &m));
    const double load_s = now_s() - t0;
    dia_options_free(opts);
    int64_t C = 0, V = 0, bos = 0;
    CHECK(dia_model_info(m, "channels", &C));
    CHECK(dia_model_info(m, "vocab", &V));
    CHECK(dia_model_info(m, "bos", &bos));

    const char **texts = malloc((size_t)batch * sizeof(char *));
    int32_t *tok = malloc((size_t)batch * (size_t)C * sizeof(int32_t));
    float *logits = malloc((size_t)(2 * batch) * (size_t)(C * V) * sizeof(float));
    if (!texts || !tok || !logits) return 1;
    for (int b = 0; b < batch; b++) texts[b] = text;
    if (generate) {
        /* one untimed run first (graph capture, cuBLAS / module first-use costs) */
        if (run_generate(m, texts, batch, 1, 0, capacity, backend, dtype)) return 1;
        const int rc = run_generate(m, texts, batch, steps, warmup, capacity, backend, dtype);
        dia_model_free(m);
        free(texts);
        free(tok);
        free(logits);
        return rc;
    }

    /* encode + the first decoder position (BOS): the latency before the step loop. The first
     * encode of a process also pays one-time costs (lazy CUDA module loading, cuBLAS heuristics),
     * so it is timed separately from a second, warm one. */
    dia_encoder_state *enc = NULL;
    t0 = now_s();
    CHECK(dia_encode(m, texts, batch, 0, &enc));
    const double enc_cold_s = now_s() - t0;
    dia_encoder_state_free(enc);
    enc = NULL;
    t0 = now_s();
    CHECK(dia_encode(m, texts, batch, 0, &enc));
    const double enc_s = now_s() - t0;
    const long mib_model = use_gpu ? used_mib() : -1; /* weights + encoder state (and scratch) */
    dia_kvcache *cache = NULL;
    if (capacity < 1 + warmup + steps) capacity = 1 + warmup + steps;
    CHECK(dia_kvcache_new(m, batch, capacity, &cache));
    const long mib_cache = use_gpu ? used_mib() : -1;
    dia_decoder_state *dec = NULL;
    CHECK(dia_decoder_state_new(m, enc, cache, &dec));
    for (int i = 0; i < batch * C; i++) tok[i] = (int32_t)bos;
    double t1 = now_s();
    CHECK(dia_decoder_step(dec, tok));
    const double first_s = now_s() - t1;
    CHECK(dia_decoder_logits(dec, logits, (size_t)(2 * batch) * (size_t)(C * V)));

    uint64_t s = 12345;
    for (int i = 0; i < warmup; i++) {
        for (int j = 0; j < batch * C; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            tok[j] = (int32_t)((s >> 33) % 1024);
        }
        CHECK(dia_decoder_step(dec, tok));
    }
    t1 = now_s();
    for (int i = 0; i < steps; i++) {
        for (int j = 0; j < batch * C; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            tok[j] = (int32_t)((s >> 33) % 1024);
        }
        CHECK(dia_decoder_step(dec, tok));
    }
    const double loop_s = now_s() - t1;
    CHECK(dia_decoder_logits(dec, logits, (size_t)(2 * batch) * (size_t)(C * V)));
    double chk = 0;
    for (size_t i = 0; i < (size_t)(2 * batch) * (size_t)(C * V); i++) chk += logits[i];
    const long mib = gpu_mib(), mib_end = use_gpu ? used_mib() : -1;
    const double sps = steps / loop_s;
    /* the first complete output frame needs max_delay + 1 = 16 positions after BOS */
    const double ttff_ms = 1e3 * (enc_s + first_s + 15.0 * loop_s / steps);
    printf("RESULT backend=%s dtype=%s batch=%d steps=%d warmup=%d positions=%d..%d steps_per_s=%.1f "
           "ms_per_step=%.3f frames_per_s=%.0f x_realtime=%.2f load_s=%.2f encode_cold_ms=%.2f encode_ms=%.2f first_step_ms=%.2f "
           "ttff_ms=%.1f capacity=%d gpu_mib=%ld used_mib(start,model,cache,end)=%ld,%ld,%ld,%ld logits_sum=%.6g\n",
           backend, dtype, batch, steps, warmup, 1 + warmup, warmup + steps, sps, 1e3 * loop_s / steps, sps * batch,
           sps * batch / 86.13, load_s, 1e3 * enc_cold_s, 1e3 * enc_s, 1e3 * first_s, ttff_ms, capacity, mib,
           mib_start, mib_model, mib_cache, mib_end, chk);
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
    dia_model_free(m);
    free(texts);
    free(tok);
    free(logits);
    return 0;
}
