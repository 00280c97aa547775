/* cli_generate.c - `dia generate`: text (+ optional audio prompt) to codes and audio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "dia.h"

#define MAX_ITEMS 256

typedef struct progress {
    int quiet;
    int frames;
    double t0, last;
} progress;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int on_frame(int item, int frame, const int32_t *codes, void *user) {
    (void)codes;
    progress *p = user;
    if (item != 0) return 0;
    p->frames = frame + 1;
    double t = now_s();
    if (!p->quiet && t - p->last > 0.5) {
        double fps = p->frames / (t - p->t0);
        fprintf(stderr, "\rdia: step %d, %.1f steps/s, %.2fx real time   ", p->frames, fps, fps / (44100.0 / 512.0));
        p->last = t;
    }
    return 0;
}

static char *read_text_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) {
        s[n] = 0;
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0; /* trailing newline of the file */
    }
    fclose(f);
    return s;
}

/* Replace "{i}" in pattern by the item index. */
static void item_path(char *buf, size_t cap, const char *pattern, int i) {
    const char *p = strstr(pattern, "{i}");
    if (!p) {
        snprintf(buf, cap, "%s", pattern);
        return;
    }
    snprintf(buf, cap, "%.*s%d%s", (int)(p - pattern), pattern, i, p + 3);
}

static int fail_lib(const char *what, dia_status st) {
    const char *msg = dia_last_error();
    fprintf(stderr, "dia: %s: %s%s%s\n", what, dia_status_string(st), *msg ? ": " : "", msg);
    return 1;
}

int dia_cli_generate(int argc, char **argv) {
    const char *model_dir = NULL, *dac_dir = NULL, *audio_prompt = NULL, *prompt_text = NULL;
    const char *codes_out = NULL, *out = NULL, *backend = "cpu", *threads = "0", *dtype = "auto",
               *enc_mem = "device";
    const char *texts[MAX_ITEMS];
    const char *prompt_files[MAX_ITEMS];
    char *owned[MAX_ITEMS];
    int n_texts = 0, n_prompts = 0, n_owned = 0, quiet = 0, rc = 1;
    dia_gen_params *params = NULL;
    dia_model *model = NULL;
    dia_dac *dac = NULL;
    dia_options *opts = NULL;
    dia_codes *codes = NULL;
    int32_t *prompts[MAX_ITEMS] = {0};
    int prompt_frames[MAX_ITEMS] = {0};
    dia_status st;
    if ((st = dia_gen_params_new(&params)) != DIA_OK) return fail_lib("generate", st);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        struct {
            const char *flag, *key;
        } num[] = {{"--max-tokens", "max_tokens"}, {"--cfg-scale", "cfg_scale"}, {"--temperature", "temperature"},
                   {"--top-p", "top_p"}, {"--cfg-filter-top-k", "cfg_filter_top_k"}, {"--seed", "seed"}};
        int handled = 0;
        for (size_t k = 0; k < sizeof num / sizeof num[0]; k++) {
            if (strcmp(a, num[k].flag)) continue;
            handled = 1;
            char *end = NULL;
            double d = v ? strtod(v, &end) : 0;
            if (!v || end == v || *end) {
                fprintf(stderr, "dia: %s needs a number\n", a);
                goto done;
            }
            if ((st = dia_gen_params_set(params, num[k].key, d)) != DIA_OK) {
                fail_lib(a, st);
                goto done;
            }
            i++;
        }
        if (handled) continue;
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "dia: %s needs a value\n", a);
            goto done;
        }
        i++;
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--dac")) dac_dir = v;
        else if (!strcmp(a, "--text") || !strcmp(a, "--text-file")) {
            if (n_texts == MAX_ITEMS) {
                fprintf(stderr, "dia: at most %d texts\n", MAX_ITEMS);
                goto done;
            }
            if (!strcmp(a, "--text")) texts[n_texts++] = v;
            else {
                char *s = read_text_file(v);
                if (!s) {
                    fprintf(stderr, "dia: cannot read text file %s\n", v);
                    goto done;
                }
                owned[n_owned++] = s;
                texts[n_texts++] = s;
            }
        } else if (!strcmp(a, "--prompt-codes")) {
            if (n_prompts == MAX_ITEMS) goto done;
            prompt_files[n_prompts++] = v;
        } else if (!strcmp(a, "--audio-prompt")) audio_prompt = v;
        else if (!strcmp(a, "--prompt-text")) prompt_text = v;
        else if (!strcmp(a, "--codes-out")) codes_out = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--threads")) threads = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--encoder-memory")) enc_mem = v;
        else {
            fprintf(stderr, "dia: unknown option %s\n", a);
            goto done;
        }
    }
    if (!model_dir || n_texts == 0) {
        fprintf(stderr, "dia generate: --model and at least one --text or --text-file are required\n");
        goto done;
    }
    if (n_prompts && n_prompts != n_texts) {
        fprintf(stderr, "dia generate: %d --prompt-codes for %d texts (give one per text, '-' for none)\n", n_prompts,
                n_texts);
        goto done;
    }
    if (audio_prompt && (n_prompts || !prompt_text)) {
        fprintf(stderr, "dia generate: --audio-prompt needs --prompt-text and excludes --prompt-codes\n");
        goto done;
    }
    if ((audio_prompt || out) && !dac_dir) {
        fprintf(stderr, "dia generate: --%s needs --dac DIR\n", audio_prompt ? "audio-prompt" : "out");
        goto done;
    }
    if (n_texts > 1 && ((codes_out && !strstr(codes_out, "{i}")) || (out && !strstr(out, "{i}")))) {
        fprintf(stderr, "dia generate: with several texts, --codes-out and --out must contain {i}\n");
        goto done;
    }
    if (!codes_out && !out) {
        fprintf(stderr, "dia generate: nothing to write: give --codes-out and/or --out\n");
        goto done;
    }
    if ((st = dia_options_new(&opts)) != DIA_OK || (st = dia_options_set(opts, "backend", backend)) != DIA_OK ||
        (st = dia_options_set(opts, "threads", threads)) != DIA_OK ||
        (st = dia_options_set(opts, "dtype", dtype)) != DIA_OK ||
        (st = dia_options_set(opts, "encoder_memory", enc_mem)) != DIA_OK) {
        fail_lib("options", st);
        goto done;
    }
    for (int i = 0; i < n_prompts; i++) {
        if (!strcmp(prompt_files[i], "-")) continue;
        int cols = 0;
        if (cli_npy_read_i32(prompt_files[i], &prompts[i], &prompt_frames[i], &cols) != 0) goto done;
        if (cols != 9) {
            fprintf(stderr, "dia: %s: prompt codes must have 9 columns, got %d\n", prompt_files[i], cols);
            goto done;
        }
    }
    char model_buf[4096], dac_buf[4096];
    if (!(model_dir = cli_resolve_model(model_dir, model_buf, sizeof model_buf))) goto done;
    if (dac_dir && !(dac_dir = cli_resolve_model(dac_dir, dac_buf, sizeof dac_buf))) goto done;
    if ((st = dia_model_load(model_dir, opts, &model)) != DIA_OK) {
        fail_lib(model_dir, st);
        goto done;
    }
    if (dac_dir && (st = dia_dac_load(dac_dir, opts, &dac)) != DIA_OK) {
        fail_lib(dac_dir, st);
        goto done;
    }
    if (audio_prompt) {
        /* encode the voice prompt once; its transcript goes before each text (the model continues it) */
        float *audio = NULL;
        size_t n = 0;
        if ((st = dia_audio_read(audio_prompt, 44100, &audio, &n)) != DIA_OK) {
            fail_lib(audio_prompt, st);
            goto done;
        }
        int32_t *pc = NULL;
        int frames = 0;
        st = dia_dac_encode(dac, audio, n, &pc, &frames);
        dia_free(audio);
        if (st != DIA_OK) {
            fail_lib("encoding the audio prompt", st);
            goto done;
        }
        for (int i = 0; i < n_texts; i++) {
            size_t len = strlen(prompt_text) + strlen(texts[i]) + 2;
            char *s = malloc(len);
            int32_t *copy = malloc((size_t)frames * 9 * 4);
            if (!s || !copy) {
                free(s);
                free(copy);
                dia_free(pc);
                goto done;
            }
            snprintf(s, len, "%s\n%s", prompt_text, texts[i]);
            owned[n_owned++] = s;
            texts[i] = s;
            memcpy(copy, pc, (size_t)frames * 9 * 4);
            prompts[i] = copy;
            prompt_frames[i] = frames;
        }
        dia_free(pc);
    }
    if (!quiet) {
        int64_t graphs = 0;
        dia_model_info(model, "graphs", &graphs);
        if (!strcmp(backend, "cuda")) fprintf(stderr, "dia: backend cuda, CUDA graphs %s\n", graphs ? "on" : "off");
        else fprintf(stderr, "dia: backend cpu, threads %s\n", strcmp(threads, "0") ? threads : "all cores");
    }
    progress prog = {.quiet = quiet, .t0 = now_s()};
    prog.last = prog.t0;
    st = dia_generate(model, params, n_texts, texts, (const int32_t *const *)prompts, prompt_frames, on_frame, &prog,
                      &codes);
    if (!quiet) {
        double dt = now_s() - prog.t0;
        fprintf(stderr, "\rdia: %d frames in %.2f s (%.1f steps/s, %.2fx real time)   \n", prog.frames, dt,
                dt > 0 ? prog.frames / dt : 0, dt > 0 ? prog.frames / dt / (44100.0 / 512.0) : 0);
    }
    if (st != DIA_OK) {
        fail_lib("generate", st);
        goto done;
    }
    for (int i = 0; i < n_texts; i++) {
        char path[4096];
        const int frames = dia_codes_frames(codes, i);
        if (codes_out) {
            item_path(path, sizeof path, codes_out, i);
            if (cli_npy_write_i32(path, dia_codes_data(codes, i), frames, 9) != 0) goto done;
        }
        if (out && frames == 0) {
            fprintf(stderr, "dia: item %d produced no audio frames; %s not written\n", i, out);
        } else if (out) {
            float *audio = NULL;
            size_t n = 0;
            item_path(path, sizeof path, out, i);
            if ((st = dia_dac_decode(dac, dia_codes_data(codes, i), frames, &audio, &n)) != DIA_OK) {
                fail_lib("decoding audio", st);
                goto done;
            }
            st = dia_audio_write(path, audio, n, 44100, 0);
            dia_free(audio);
            if (st != DIA_OK) {
                fail_lib(path, st);
                goto done;
            }
            if (!quiet) fprintf(stderr, "dia: wrote %s (%.2f s)\n", path, n / 44100.0);
        }
    }
    rc = 0;
done:
    dia_codes_free(codes);
    dia_dac_free(dac);
    dia_model_free(model);
    dia_options_free(opts);
    dia_gen_params_free(params);
    for (int i = 0; i < MAX_ITEMS; i++) free(prompts[i]);
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    return rc;
}
