/* cli_dac.c - `dia dac-decode` (codes .npy -> audio file or float32 .npy) and `dia dac-encode`
 * (audio file or float32 mono 44.1 kHz .npy -> codes .npy) with the DAC codec alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "dia.h"

static int fail_lib(const char *what, dia_status st) {
    const char *msg = dia_last_error();
    fprintf(stderr, "dia: %s: %s%s%s\n", what, dia_status_string(st), *msg ? ": " : "", msg);
    return 1;
}

static int ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

typedef struct dac_args {
    const char *dac, *in, *out, *backend, *threads;
} dac_args;

/* --dac DIR, the input option `in_opt`, the output option `out_opt`, [--backend B] [--threads N]. */
static int parse(int argc, char **argv, const char *in_opt, const char *out_opt, dac_args *a) {
    memset(a, 0, sizeof *a);
    a->backend = "cpu";
    a->threads = "0";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "dia %s: %s needs a value\n", argv[0], o);
            return -1;
        }
        i++;
        if (!strcmp(o, "--dac")) a->dac = v;
        else if (!strcmp(o, in_opt)) a->in = v;
        else if (!strcmp(o, out_opt)) a->out = v;
        else if (!strcmp(o, "--backend")) a->backend = v;
        else if (!strcmp(o, "--threads")) a->threads = v;
        else {
            fprintf(stderr, "dia %s: unknown option %s\n", argv[0], o);
            return -1;
        }
    }
    if (!a->dac || !a->in || !a->out) {
        fprintf(stderr, "dia %s: --dac, %s and %s are required\n", argv[0], in_opt, out_opt);
        return -1;
    }
    return 0;
}

static dia_status load_dac(const dac_args *a, dia_dac **dac) {
    dia_options *opts = NULL;
    char buf[4096];
    *dac = NULL;
    const char *dir = cli_resolve_model(a->dac, buf, sizeof buf);
    if (!dir) return DIA_ERR_IO;
    dia_status st = dia_options_new(&opts);
    if (st == DIA_OK) st = dia_options_set(opts, "backend", a->backend);
    if (st == DIA_OK) st = dia_options_set(opts, "threads", a->threads);
    if (st == DIA_OK) st = dia_dac_load(dir, opts, dac);
    if (st != DIA_OK) fail_lib(a->dac, st);
    dia_options_free(opts);
    return st;
}

int dia_cli_dac_decode(int argc, char **argv) {
    dac_args a;
    if (parse(argc, argv, "--codes", "--out", &a) != 0) return 2;
    int32_t *codes = NULL; /* [frames, 9] */
    int frames = 0, cols = 0, rc = 1;
    float *audio = NULL; /* [frames * hop] */
    size_t n = 0;
    dia_dac *dac = NULL;
    int64_t q = 0, rate = 0;
    dia_status st;
    if (!ends_with(a.out, ".npy") && !ends_with(a.out, ".wav") && !ends_with(a.out, ".flac") &&
        !ends_with(a.out, ".ogg") && !ends_with(a.out, ".oga")) {
        fprintf(stderr, "dia dac-decode: --out %s: expected .npy, .wav, .flac or .ogg\n", a.out);
        goto done;
    }
    if (cli_npy_read_i32(a.in, &codes, &frames, &cols) != 0) goto done;
    if (load_dac(&a, &dac) != DIA_OK) goto done;
    dia_dac_info(dac, "codebooks", &q);
    dia_dac_info(dac, "sample_rate", &rate);
    if (cols != (int)q || frames < 1) {
        fprintf(stderr, "dia dac-decode: %s: codes must be int32 [frames, %d], got [%d, %d]\n", a.in, (int)q, frames,
                cols);
        goto done;
    }
    if ((st = dia_dac_decode(dac, codes, frames, &audio, &n)) != DIA_OK) {
        fail_lib(a.in, st);
        goto done;
    }
    if (ends_with(a.out, ".npy")) {
        if (cli_npy_write_f32(a.out, audio, n) != 0) goto done;
    } else if ((st = dia_audio_write(a.out, audio, n, (int)rate, 0)) != DIA_OK) {
        fail_lib(a.out, st);
        goto done;
    }
    fprintf(stderr, "dia: %d frames -> %zu samples (%.2f s) in %s\n", frames, n, (double)n / (double)rate, a.out);
    rc = 0;
done:
    dia_free(audio);
    free(codes);
    dia_dac_free(dac);
    return rc;
}

int dia_cli_dac_encode(int argc, char **argv) {
    dac_args a;
    if (parse(argc, argv, "--in", "--codes-out", &a) != 0) return 2;
    float *audio = NULL; /* [n] mono at the codec's rate */
    size_t n = 0;
    int32_t *codes = NULL; /* [frames, codebooks] */
    int frames = 0, rc = 1, from_npy = ends_with(a.in, ".npy");
    dia_dac *dac = NULL;
    int64_t q = 0, rate = 0;
    dia_status st;
    if (load_dac(&a, &dac) != DIA_OK) goto done;
    dia_dac_info(dac, "codebooks", &q);
    dia_dac_info(dac, "sample_rate", &rate);
    if (from_npy) {
        if (cli_npy_read_f32(a.in, &audio, &n) != 0) goto done;
    } else if ((st = dia_audio_read(a.in, (int)rate, &audio, &n)) != DIA_OK) {
        fail_lib(a.in, st);
        goto done;
    }
    if ((st = dia_dac_encode(dac, audio, n, &codes, &frames)) != DIA_OK) {
        fail_lib(a.in, st);
        goto done;
    }
    if (cli_npy_write_i32(a.out, codes, frames, (int)q) != 0) goto done;
    fprintf(stderr, "dia: %zu samples -> %d frames in %s\n", n, frames, a.out);
    rc = 0;
done:
    /* .npy buffers come from cli_npy (malloc), audio files from libdia (dia_free) */
    if (from_npy) free(audio);
    else dia_free(audio);
    dia_free(codes);
    dia_dac_free(dac);
    return rc;
}
