/* generate.c - the generation loop of nari-labs/dia generate(): delayed token grid with BOS and
 * audio prompt teacher forcing, decoder steps, CFG sampling, EOS countdown with forced EOS/PAD
 * per channel, the max_tokens limit, delay revert, trimming, and frame streaming.
 *
 * One correction to the original (as in the transformers processor): every cell t <= P + delay[c]
 * is teacher forced (the original sized its prefill one frame short, so channel max_delay
 * sampled the cell t = P + max_delay), and the EOS check of an item only looks at cells it does not
 * force. A batch therefore gives the same codes as its items run alone. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model.h"
#include "sampler.h"

struct dia_codes {
    int batch, channels;
    int *frames;     /* [B] */
    int32_t **data;  /* [B] -> int32 [frames, C] */
};

DIA_API void dia_codes_free(dia_codes *c) {
    if (!c) return;
    for (int b = 0; c->data && b < c->batch; b++) free(c->data[b]);
    free(c->data);
    free(c->frames);
    free(c);
}

DIA_API int dia_codes_batch(const dia_codes *c) { return c ? c->batch : 0; }

DIA_API int dia_codes_frames(const dia_codes *c, int item) {
    return (c && item >= 0 && item < c->batch) ? c->frames[item] : 0;
}

DIA_API const int32_t *dia_codes_data(const dia_codes *c, int item) {
    return (c && item >= 0 && item < c->batch) ? c->data[item] : NULL;
}

/* Per-item state of the loop. */
typedef struct gen_item {
    int P;            /* prompt frames */
    int eos_detected;
    int countdown;    /* -1: not triggered; >0: forcing EOS/PAD; 0: done */
    int finished;     /* step index F at which EOS was triggered, -1 before */
    int emitted;      /* frames handed to the callback */
} gen_item;

/* The loop's state: the delayed token grid and the items. */
typedef struct gen_loop {
    const dia_config *cfg;
    int B, C, M, maxd;
    gen_item *it;         /* [B] */
    int32_t *grid;        /* [B, M, C] delayed token grid, -1 = empty */
    dia_frame_fn on_frame;
    void *user;
} gen_loop;

/* Output frame t of item b, delay reverted: grid[P + 1 + t + d_c][c], codes outside 0..1023 -> 0. */
static void revert_frame(const int32_t *grid, int C, const int *delay, int P, int t, int32_t *out) {
    for (int c = 0; c < C; c++) {
        int32_t v = grid[(size_t)(P + 1 + t + delay[c]) * C + c];
        out[c] = (v < 0 || v > 1023) ? 0 : v;
    }
}

/* Grid row `row` of item b, int32 [C]. */
static int32_t *grid_row(const gen_loop *g, int b, int row) { return g->grid + ((size_t)b * g->M + row) * g->C; }

/* The decoder input of step `row`: every item's grid row, int32 [B, C]. */
static void copy_rows(const gen_loop *g, int row, int32_t *tok) {
    for (int b = 0; b < g->B; b++) memcpy(tok + (size_t)b * g->C, grid_row(g, b, row), (size_t)g->C * sizeof(int32_t));
}

/* The cells that step k of an EOS countdown forces (k = 0 on the trigger row): EOS on the channels
 * whose delay is k, PAD on those whose delay is below k; the others keep their value. */
static void countdown_cells(const dia_config *cfg, int C, int k, int32_t *row) {
    for (int c = 0; c < C; c++) {
        if (k == cfg->delay[c]) row[c] = cfg->eos;
        else if (k > cfg->delay[c]) row[c] = cfg->pad;
    }
}

static int all_done(const gen_loop *g) {
    for (int b = 0; b < g->B; b++)
        if (g->it[b].countdown != 0) return 0;
    return 1;
}

/* The sampled codes preds [B, C] of grid row `row`: the EOS countdown and its forced EOS/PAD, the
 * grid row (forced cells keep BOS / prompt), and the frames this row completes to the callback. */
static dia_status take_row(gen_loop *g, int row, int32_t *preds) {
    const dia_config *cfg = g->cfg;
    const int C = g->C, M = g->M, maxd = g->maxd, *delay = cfg->delay;
    for (int b = 0; b < g->B; b++) {
        gen_item *e = &g->it[b];
        int32_t *pred = preds + (size_t)b * C;
        if (e->countdown != 0) {
            const int sampled_eos = row > e->P + delay[0] && pred[0] == cfg->eos;
            if ((!e->eos_detected && sampled_eos) || row >= M - maxd) {
                e->eos_detected = 1;
                if (e->countdown < 0) e->countdown = maxd, e->finished = row;
            }
            if (e->countdown > 0) {
                countdown_cells(cfg, C, maxd - e->countdown, pred);
                e->countdown--;
            }
        }
        int32_t *gr = grid_row(g, b, row);
        for (int c = 0; c < C; c++)
            if (row > e->P + delay[c]) gr[c] = pred[c]; /* forced cells keep BOS / prompt */
        /* stream: frame t is complete once row P + 1 + t + max_delay is written */
        const int t = row - e->P - 1 - maxd;
        const int limit = e->finished >= 0 ? e->finished - e->P - 1 : t + 1;
        if (t >= 0 && t == e->emitted && t < limit) {
            int32_t frame[DIA_MAX_CHANNELS];
            revert_frame(g->grid + (size_t)b * M * C, C, delay, e->P, t, frame);
            e->emitted++;
            if (g->on_frame && g->on_frame(b, t, frame, g->user) != 0)
                return dia_fail(DIA_ERR_CANCELLED, "generation cancelled by the frame callback");
        }
    }
    return DIA_OK;
}

/* What take_row will put in grid row `row` where it does not take the sampled code, as far as the
 * rows taken so far (up to `taken` < row) tell: force [B, C] gets the forced cells (BOS / prompt)
 * and the EOS / PAD of a countdown that is running or that the max_tokens limit starts; -1 where
 * the sampled code goes. It assumes no EOS is sampled in rows taken + 1 .. row - 1 (when one is,
 * the row differs: dia_generate checks every row against what it fed forward). */
static void predict_row(const gen_loop *g, int taken, int row, int32_t *force) {
    const dia_config *cfg = g->cfg;
    const int C = g->C, *delay = cfg->delay;
    for (int b = 0; b < g->B; b++) {
        const gen_item *e = &g->it[b];
        int32_t *f = force + (size_t)b * C;
        for (int c = 0; c < C; c++) f[c] = -1;
        int countdown = e->countdown;
        for (int r = taken + 1; r <= row && countdown != 0; r++) { /* take_row's countdown, no sampled EOS */
            if (r >= g->M - g->maxd && countdown < 0) countdown = g->maxd;
            if (countdown > 0) {
                if (r == row) countdown_cells(cfg, C, g->maxd - countdown, f);
                countdown--;
            }
        }
        const int32_t *gr = grid_row(g, b, row);
        for (int c = 0; c < C; c++)
            if (row <= e->P + delay[c]) f[c] = gr[c];
    }
}

static dia_status check_inputs(const dia_model *m, const dia_gen_params *p, int B, const int32_t *const *prompts,
                               const int *prompt_frames) {
    const dia_config *c = &m->cfg;
    if (p->max_tokens > c->max_frames)
        return dia_fail(DIA_ERR_INVALID_ARG, "max_tokens %d is above the model's %d frames", p->max_tokens, c->max_frames);
    if (p->max_tokens <= 2 * c->max_delay + 1)
        return dia_fail(DIA_ERR_INVALID_ARG, "max_tokens %d leaves no room for the delay pattern (needs > %d)",
                        p->max_tokens, 2 * c->max_delay + 1);
    if (p->top_k > c->dec_vocab)
        return dia_fail(DIA_ERR_INVALID_ARG, "cfg_filter_top_k %d is above the vocabulary %d", p->top_k, c->dec_vocab);
    for (int b = 0; prompts && b < B; b++) {
        if (!prompts[b]) continue;
        const int P = prompt_frames ? prompt_frames[b] : -1;
        if (P < 1) return dia_fail(DIA_ERR_INVALID_ARG, "prompt %d has %d frames (needs >= 1)", b, P);
        /* the EOS limit triggers at step max_tokens - max_delay; the prompt must end before it */
        if (P + 1 >= p->max_tokens - c->max_delay)
            return dia_fail(DIA_ERR_INVALID_ARG, "prompt %d has %d frames: too long for max_tokens %d", b, P, p->max_tokens);
        for (int i = 0; i < P * c->channels; i++)
            if (prompts[b][i] < 0 || prompts[b][i] > 1023)
                return dia_fail(DIA_ERR_BAD_AUDIO, "prompt %d: code %d at frame %d, channel %d is outside 0..1023", b,
                                prompts[b][i], i / c->channels, i % c->channels);
    }
    return DIA_OK;
}

DIA_API dia_status dia_generate(dia_model *m, const dia_gen_params *params, int B, const char *const *texts,
                                const int32_t *const *prompts, const int *prompt_frames, dia_frame_fn on_frame,
                                void *user, dia_codes **out) {
    dia_clear_error();
    if (!out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_generate: out is NULL");
    *out = NULL;
    if (!m || !texts) return dia_fail(DIA_ERR_INVALID_ARG, "dia_generate: NULL model or texts");
    if (B < 1 || B > 4096) return dia_fail(DIA_ERR_INVALID_ARG, "dia_generate: batch %d outside [1, 4096]", B);
    dia_gen_params defaults;
    dia_gen_params_defaults(&defaults);
    const dia_gen_params *p = params ? params : &defaults;
    dia_status st = check_inputs(m, p, B, prompts, prompt_frames);
    if (st != DIA_OK) return st;

    const dia_config *cfg = &m->cfg;
    const int C = cfg->channels, V = cfg->dec_vocab, M = p->max_tokens, maxd = cfg->max_delay;
    const int *delay = cfg->delay;
    dia_encoder_state *enc = NULL;
    dia_kvcache *cache = NULL;
    dia_decoder_state *dec = NULL;
    gen_item *it = calloc((size_t)B, sizeof *it);
    int32_t *grid = malloc((size_t)B * M * C * sizeof(int32_t));       /* [B, M, C] delayed token grid, -1 = empty */
    int32_t *tok = malloc((size_t)B * (M > 1 ? M : 1) * C * sizeof(int32_t)); /* decoder input [B, T, C] */
    float *logits = malloc((size_t)2 * B * C * V * sizeof(float));    /* [2B, C, V] */
    float *scratch = malloc((size_t)B * V * sizeof(float));           /* [B, V] sampler scratch */
    int32_t *preds = malloc((size_t)B * C * sizeof(int32_t));         /* [B, C] sampled codes of a step */
    dia_codes *res = calloc(1, sizeof *res);
    if (!it || !grid || !tok || !logits || !scratch || !preds || !res) {
        st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    res->batch = B;
    res->channels = C;
    res->frames = calloc((size_t)B, sizeof(int));
    res->data = calloc((size_t)B, sizeof(int32_t *));
    if (!res->frames || !res->data) {
        st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    /* grid: BOS for t <= d_c, prompt frame k at t = k + 1 + d_c */
    int minP = M;
    for (int b = 0; b < B; b++) {
        it[b].P = (prompts && prompts[b]) ? prompt_frames[b] : 0;
        it[b].countdown = -1;
        it[b].finished = -1;
        if (it[b].P < minP) minP = it[b].P;
        int32_t *g = grid + (size_t)b * M * C;
        for (int i = 0; i < M * C; i++) g[i] = -1;
        for (int c = 0; c < C; c++) {
            for (int t = 0; t <= delay[c] && t < M; t++) g[t * C + c] = cfg->bos;
            for (int k = 0; k < it[b].P && k + 1 + delay[c] < M; k++)
                g[(k + 1 + delay[c]) * C + c] = prompts[b][k * C + c];
        }
    }
    if ((st = dia_encode(m, texts, B, 0, &enc)) != DIA_OK) goto done;
    if ((st = dia_kvcache_new(m, B, M, &cache)) != DIA_OK) goto done;
    if ((st = dia_decoder_state_new(m, enc, cache, &dec)) != DIA_OK) goto done;

    /* prefill positions 0 .. minP-1 (all forced for every item) */
    int step = minP;
    if (step > 0) {
        for (int b = 0; b < B; b++)
            memcpy(tok + (size_t)b * step * C, grid + (size_t)b * M * C, (size_t)step * C * sizeof(int32_t));
        if ((st = dia_decoder_prefill(dec, tok, step, NULL)) != DIA_OK) goto done;
    }
    gen_loop g = {cfg, B, C, M, maxd, it, grid, on_frame, user};
    dia_sample_args sa = {.B = B, .C = C, .V = V, .eos = cfg->eos, .top_k = p->top_k, .cfg_scale = p->cfg_scale,
                          .temperature = p->temperature, .top_p = p->top_p, .seed = p->seed};
    if (m->be->ops->sample && dia_decoder_can_launch(dec)) {
        /* Pipelined: step s + 1 is launched on the tokens step s feeds forward on the device (its
         * sampled codes where predict_row left -1) before the host waits for step s's codes. When
         * take_row then writes a row other than the one fed forward (an EOS was sampled), step s + 1
         * is taken back and launched again on the host's row. Same codes as the loop below. */
        int32_t *force = malloc((size_t)3 * B * C * sizeof(int32_t)); /* [2 slots][B, C], then the fed row [B, C] */
        int launched = 0, relaunched = 0; /* launched: step s is in flight on the tokens step s - 1 fed forward */
        if (!force) {
            st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        int32_t *fed = force + (size_t)2 * B * C;
        const int first = step;
        for (; step + 1 < M && !all_done(&g); step++) { /* step s writes grid row s + 1 < M */
            const int s = step, slot = s & 1;
            int32_t *fs = force + (size_t)slot * B * C, *fn = force + (size_t)(slot ^ 1) * B * C;
            if (!launched) { /* on the host's row s (rows <= s are taken) */
                copy_rows(&g, s, tok);
                predict_row(&g, s, s + 1, fs);
                sa.step = (uint64_t)(s + 1);
                if ((st = dia_decoder_step_launch(dec, tok, fs, &sa, slot)) != DIA_OK) break;
            }
            launched = s + 2 < M;
            if (launched) { /* step s + 1 on what step s feeds forward (rows <= s are taken) */
                predict_row(&g, s, s + 2, fn);
                sa.step = (uint64_t)(s + 2);
                if ((st = dia_decoder_step_launch(dec, NULL, fn, &sa, slot ^ 1)) != DIA_OK) break;
            }
            if ((st = dia_decoder_step_collect(dec, slot, preds)) != DIA_OK) break;
            for (int i = 0; i < B * C; i++) fed[i] = fs[i] >= 0 ? fs[i] : preds[i]; /* what step s fed forward */
            if ((st = take_row(&g, s + 1, preds)) != DIA_OK) break;
            for (int b = 0; b < B && launched; b++)
                if (memcmp(fed + (size_t)b * C, grid_row(&g, b, s + 1), (size_t)C * sizeof(int32_t))) {
                    dia_decoder_step_unlaunch(dec); /* step s + 1 ran on another row: again, on the host's */
                    launched = 0;
                    relaunched++;
                }
        }
        free(force);
        if (st != DIA_OK) goto done;
        dia_log(DIA_LOG_DEBUG, "generate: %d steps pipelined, %d launched again after an EOS", step - first, relaunched);
    } else {
        for (; step + 1 < M && !all_done(&g); step++) { /* a step writes grid row step + 1 < M */
            copy_rows(&g, step, tok);
            const int row = step + 1; /* the grid row these logits predict */
            if (m->be->ops->sample) { /* sampled on the device: only the codes come back */
                sa.step = (uint64_t)row;
                if ((st = dia_decoder_step_sample(dec, tok, &sa, preds)) != DIA_OK) goto done;
            } else {
                if ((st = dia_decoder_step(dec, tok)) != DIA_OK) goto done;
                if ((st = dia_decoder_logits(dec, logits, (size_t)2 * B * C * V)) != DIA_OK) goto done;
                /* sample every item (independent: the RNG is keyed by item), in parallel for big batches */
                int failed = 0;
#pragma omp parallel for schedule(static) reduction(| : failed) if (B >= 8)
                for (int b = 0; b < B; b++) {
                    const float *uncond = logits + (size_t)(2 * b) * C * V, *cond = logits + (size_t)(2 * b + 1) * C * V;
                    failed |= dia_sampler_pick(p, cond, uncond, C, V, cfg->eos, (uint64_t)b, (uint64_t)row,
                                               scratch + (size_t)b * V, preds + (size_t)b * C) != DIA_OK;
                }
                if (failed) {
                    st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "sampler: out of memory");
                    goto done;
                }
            }
            if ((st = take_row(&g, row, preds)) != DIA_OK) goto done;
        }
    }
    /* finalise: frames of new audio per item, delay reverted */
    for (int b = 0; b < B; b++) {
        gen_item *e = &it[b];
        if (e->finished < 0) e->finished = step + 1 - maxd;
        int n = e->finished - (e->P + 1);
        if (n < 0) n = 0;
        res->frames[b] = n;
        res->data[b] = malloc((size_t)(n ? n : 1) * C * sizeof(int32_t));
        if (!res->data[b]) {
            st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        for (int t = 0; t < n; t++) revert_frame(grid + (size_t)b * M * C, C, delay, e->P, t, res->data[b] + (size_t)t * C);
        for (int t = e->emitted; t < n && on_frame; t++) /* frames whose last rows were never stepped */
            if (on_frame(b, t, res->data[b] + (size_t)t * C, user) != 0) {
                st = dia_fail(DIA_ERR_CANCELLED, "generation cancelled by the frame callback");
                goto done;
            }
    }
done:
    dia_decoder_state_free(dec);
    dia_kvcache_free(cache);
    dia_encoder_state_free(enc);
    free(it);
    free(grid);
    free(tok);
    free(logits);
    free(scratch);
    free(preds);
    if (st != DIA_OK) {
        dia_codes_free(res);
        return st;
    }
    *out = res;
    return DIA_OK;
}
