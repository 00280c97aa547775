/*
 * stream.c - streaming: audio is produced while the model is still generating.
 *
 *   cc stream.c $(pkg-config --cflags --libs dia) -o stream
 *   ./stream MODEL_DIR DAC_DIR "[S1] Streaming text." out.wav [MAX_FRAMES]
 *
 * dia_generate calls a frame callback for every output frame as soon as it is final (the delay
 * pattern makes frame t final 15 steps after it started). This program collects the frames and,
 * every CHUNK frames, decodes them with dia_dac_decode_range as soon as the DAC's "context_frames"
 * frames after them are known too; at the end the tail is decoded. The streamed waveform is
 * therefore exactly the single dia_dac_decode of all frames. A real player would hand each chunk
 * to the sound card; here the chunks are appended to a buffer written as a WAV at the end.
 * With MAX_FRAMES the callback cancels the generation after that many frames (dia_generate then
 * returns DIA_ERR_CANCELLED) and what was streamed so far is still written.
 * Uses only <dia.h>.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dia.h>

#define C 9        /* codebooks per frame */
#define CHUNK 16   /* frames decoded at a time */

typedef struct stream {
    dia_dac *dac;
    int hop;            /* samples per frame */
    int lookahead;      /* frames the DAC needs after a frame to decode it exactly */
    int32_t *codes;     /* every frame so far, [n, C] */
    int n, cap;
    int decoded;        /* frames already turned into audio */
    float *audio;       /* streamed audio */
    size_t samples, audio_cap;
    int max_frames;     /* cancel after this many (0: never) */
    int chunks;
    double t0, first_audio;
    dia_status error;   /* a failure inside the callback */
} stream;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Decode frames [s->decoded, upto) of the s->n known frames and append their samples. */
static dia_status flush(stream *s, int upto) {
    if (upto <= s->decoded) return DIA_OK;
    const size_t keep = (size_t)(upto - s->decoded) * (size_t)s->hop;
    if (s->samples + keep > s->audio_cap) {
        size_t cap = (s->samples + keep) * 2;
        float *a = realloc(s->audio, cap * sizeof *a);
        if (!a) return DIA_ERR_OUT_OF_MEMORY;
        s->audio = a;
        s->audio_cap = cap;
    }
    dia_status st = dia_dac_decode_range(s->dac, s->codes, s->n, s->decoded, upto - s->decoded, s->audio + s->samples);
    if (st != DIA_OK) return st;
    s->samples += keep;
    if (s->chunks++ == 0) s->first_audio = now() - s->t0;
    printf("chunk %d: frames %d..%d -> %zu samples (t = %.3f s)\n", s->chunks, s->decoded, upto - 1, keep, now() - s->t0);
    s->decoded = upto;
    return DIA_OK;
}

/* dia_frame_fn: one final frame of item 0. Return non-zero to stop the generation. */
static int on_frame(int item, int frame, const int32_t *codes, void *user) {
    stream *s = user;
    if (item != 0 || frame != s->n) { s->error = DIA_ERR_INTERNAL; return 1; } /* frames arrive in order */
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        int32_t *c = realloc(s->codes, (size_t)cap * C * sizeof *c);
        if (!c) { s->error = DIA_ERR_OUT_OF_MEMORY; return 1; }
        s->codes = c;
        s->cap = cap;
    }
    memcpy(s->codes + (size_t)s->n * C, codes, C * sizeof *codes);
    s->n++;
    if (s->n - s->decoded >= CHUNK + s->lookahead) { /* the chunk's right context is known */
        dia_status st = flush(s, s->decoded + CHUNK);
        if (st != DIA_OK) { s->error = st; return 1; }
    }
    return s->max_frames > 0 && s->n >= s->max_frames;
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: %s MODEL_DIR DAC_DIR TEXT OUT.wav [MAX_FRAMES]\n", argv[0]);
        return 2;
    }
    const char *text = argv[3];
    stream s;
    memset(&s, 0, sizeof s);
    s.max_frames = argc == 6 ? atoi(argv[5]) : 0;
    dia_model *model = NULL;
    dia_gen_params *params = NULL;
    dia_codes *codes = NULL;
    int rc = 1;
    dia_status st;
    int64_t v = 0, max_frames = 0;

    if ((st = dia_model_load(argv[1], NULL, &model)) != DIA_OK) goto fail;
    if ((st = dia_dac_load(argv[2], NULL, &s.dac)) != DIA_OK) goto fail;
    if ((st = dia_dac_info(s.dac, "hop_length", &v)) != DIA_OK) goto fail;
    s.hop = (int)v;
    if ((st = dia_dac_info(s.dac, "context_frames", &v)) != DIA_OK) goto fail;
    s.lookahead = (int)v;
    if ((st = dia_model_info(model, "max_frames", &max_frames)) != DIA_OK) goto fail;
    if ((st = dia_gen_params_new(&params)) != DIA_OK) goto fail;
    if (max_frames < 3072 && (st = dia_gen_params_set(params, "max_tokens", (double)max_frames)) != DIA_OK) goto fail;

    s.t0 = now();
    st = dia_generate(model, params, 1, &text, NULL, NULL, on_frame, &s, &codes);
    if (st == DIA_ERR_CANCELLED && s.error == DIA_OK) {
        printf("cancelled after %d frames, as asked\n", s.n);
    } else if (st != DIA_OK) {
        if (s.error != DIA_OK) st = s.error;
        goto fail;
    } else if (dia_codes_frames(codes, 0) != s.n) {
        fprintf(stderr, "stream: the callback saw %d frames, the result has %d\n", s.n, dia_codes_frames(codes, 0));
        goto done;
    }
    if ((st = flush(&s, s.n)) != DIA_OK) goto fail; /* the tail: the sequence has ended */
    if ((st = dia_audio_write(argv[4], s.audio, s.samples, 44100, 0)) != DIA_OK) goto fail;
    printf("%d frames in %d chunks, first audio after %.3f s, total %.3f s; wrote %s (%.2f s of audio)\n", s.n,
           s.chunks, s.first_audio, now() - s.t0, argv[4], (double)s.samples / 44100.0);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "stream: %s (%s)\n", dia_status_string(st), dia_last_error());
done:
    dia_codes_free(codes);
    dia_gen_params_free(params);
    dia_dac_free(s.dac);
    dia_model_free(model);
    free(s.codes);
    free(s.audio);
    return rc;
}
