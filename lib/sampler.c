/* sampler.c - generation parameters and the reference sampler: CFG top-k candidate set, channel
 * masks, temperature, EOS rule, top-k, top-p, and a counter-based RNG. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sampler.h"

DIA_API dia_status dia_gen_params_new(dia_gen_params **out) {
    dia_clear_error();
    if (!out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_gen_params_new: out is NULL");
    dia_gen_params *p = calloc(1, sizeof *p);
    *out = p;
    if (!p) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    dia_gen_params_defaults(p);
    return DIA_OK;
}

void dia_gen_params_defaults(dia_gen_params *p) {
    p->max_tokens = 3072;
    p->cfg_scale = 3.0;
    p->temperature = 1.2;
    p->top_p = 0.95;
    p->top_k = 45;
    p->seed = 0;
}

DIA_API void dia_gen_params_free(dia_gen_params *p) { free(p); }

static int is_int(double v) { return v == floor(v); }

DIA_API dia_status dia_gen_params_set(dia_gen_params *p, const char *key, double v) {
    dia_clear_error();
    if (!p || !key) return dia_fail(DIA_ERR_INVALID_ARG, "dia_gen_params_set: NULL argument");
    if (isnan(v)) return dia_fail(DIA_ERR_INVALID_ARG, "%s: NaN", key);
    if (!strcmp(key, "max_tokens")) {
        if (!is_int(v) || v < 1 || v > 1 << 20) return dia_fail(DIA_ERR_INVALID_ARG, "max_tokens %g is not a positive integer", v);
        p->max_tokens = (int)v;
    } else if (!strcmp(key, "cfg_scale")) {
        if (!(v >= 0) || isinf(v)) return dia_fail(DIA_ERR_INVALID_ARG, "cfg_scale %g must be finite and >= 0", v);
        p->cfg_scale = v;
    } else if (!strcmp(key, "temperature")) {
        if (!(v >= 0) || isinf(v)) return dia_fail(DIA_ERR_INVALID_ARG, "temperature %g must be finite and >= 0", v);
        p->temperature = v;
    } else if (!strcmp(key, "top_p")) {
        if (!(v > 0 && v <= 1)) return dia_fail(DIA_ERR_INVALID_ARG, "top_p %g must be in (0, 1]", v);
        p->top_p = v;
    } else if (!strcmp(key, "cfg_filter_top_k")) {
        if (!is_int(v) || v < 1 || v > 1 << 20) return dia_fail(DIA_ERR_INVALID_ARG, "cfg_filter_top_k %g must be an integer >= 1", v);
        p->top_k = (int)v;
    } else if (!strcmp(key, "seed")) {
        if (!is_int(v) || v < 0 || v > 9007199254740992.0) return dia_fail(DIA_ERR_INVALID_ARG, "seed %g must be an integer in [0, 2^53]", v);
        p->seed = (uint64_t)v;
    } else {
        return dia_fail(DIA_ERR_INVALID_ARG, "unknown generation parameter \"%s\"", key);
    }
    return DIA_OK;
}

DIA_API dia_status dia_gen_params_get(const dia_gen_params *p, const char *key, double *v) {
    if (!p || !key || !v) return dia_fail(DIA_ERR_INVALID_ARG, "dia_gen_params_get: NULL argument");
    if (!strcmp(key, "max_tokens")) *v = p->max_tokens;
    else if (!strcmp(key, "cfg_scale")) *v = p->cfg_scale;
    else if (!strcmp(key, "temperature")) *v = p->temperature;
    else if (!strcmp(key, "top_p")) *v = p->top_p;
    else if (!strcmp(key, "cfg_filter_top_k")) *v = p->top_k;
    else if (!strcmp(key, "seed")) *v = (double)p->seed;
    else return dia_fail(DIA_ERR_INVALID_ARG, "unknown generation parameter \"%s\"", key);
    return DIA_OK;
}

/* index order for sorting: by value descending, ties by lower index first */
typedef struct {
    float v;
    int i;
} vi;

static int cmp_desc(const void *a, const void *b) {
    const vi *x = a, *y = b;
    if (x->v > y->v) return -1;
    if (x->v < y->v) return 1;
    return x->i - y->i;
}

/* a before b in the order "value descending, then index ascending" */
static int before(const vi *a, const vi *b) { return a->v > b->v || (a->v == b->v && a->i < b->i); }

/* Mark the k largest of v[n] (ties: lower index) in keep[n]: quickselect, O(n). */
static void top_k_set(const float *v, int n, int k, unsigned char *keep, vi *tmp) {
    for (int i = 0; i < n; i++) {
        tmp[i].v = isnan(v[i]) ? -INFINITY : v[i];
        tmp[i].i = i;
        keep[i] = k >= n; /* everything kept when k covers the row */
    }
    if (k >= n) return;
    int lo = 0, hi = n - 1; /* place the k first elements of the order in tmp[0..k-1] */
    while (lo < hi) {
        const vi pivot = tmp[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (before(&tmp[i], &pivot)) i++;
            while (before(&pivot, &tmp[j])) j--;
            if (i <= j) {
                vi t = tmp[i];
                tmp[i] = tmp[j];
                tmp[j] = t;
                i++, j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
    for (int j = 0; j < k; j++) keep[tmp[j].i] = 1;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

dia_status dia_sampler_channel(const dia_gen_params *p, const float *cond, const float *uncond, int V, int channel,
                               int eos, float *probs, int *greedy) {
    float *row = calloc((size_t)V * 2, sizeof(float)); /* [V] working logits, then [V] guided */
    unsigned char *keep = malloc((size_t)V);            /* [V] membership mask */
    vi *tmp = malloc((size_t)V * sizeof(vi));           /* [V] sort scratch */
    if (!row || !keep || !tmp) {
        free(row), free(keep), free(tmp);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    float *g = row + V;
    const float s = (float)p->cfg_scale;
    /* 1. CFG: the guided logits choose the candidate set; the conditional logits are sampled */
    for (int v = 0; v < V; v++) g[v] = cond[v] + s * (cond[v] - uncond[v]);
    top_k_set(g, V, p->top_k, keep, tmp);
    for (int v = 0; v < V; v++) row[v] = keep[v] ? cond[v] : -INFINITY;
    /* 2-3. PAD, BOS and above on every channel; EOS too on channels other than 0 */
    for (int v = channel == 0 ? eos + 1 : eos; v < V; v++) row[v] = -INFINITY;
    const int best = argmax(row, V);
    if (greedy) *greedy = best;
    if (p->temperature == 0.0) {
        for (int v = 0; v < V; v++) probs[v] = v == best ? 1.0f : 0.0f;
        goto done;
    }
    /* 4. temperature */
    for (int v = 0; v < V; v++) row[v] = (float)(row[v] / p->temperature);
    /* 5. EOS rule: EOS argmax -> EOS certain; otherwise EOS never sampled */
    if (best == eos) {
        for (int v = 0; v < eos; v++) row[v] = -INFINITY;
    } else if (eos < V) {
        row[eos] = -INFINITY;
    }
    /* 6. the reference applies top-k again here: a no-op, at most k finite values remain */
    /* 7. softmax, then top-p: keep the smallest prefix (by probability) whose mass reaches top_p */
    float mx = row[argmax(row, V)];
    double sum = 0;
    for (int v = 0; v < V; v++) sum += probs[v] = row[v] == -INFINITY ? 0.0f : expf(row[v] - mx);
    for (int v = 0; v < V; v++) probs[v] = (float)(probs[v] / sum);
    if (p->top_p < 1.0) {
        int nz = 0; /* the candidates (at most k), sorted by probability descending */
        for (int v = 0; v < V; v++)
            if (probs[v] > 0) tmp[nz].v = probs[v], tmp[nz].i = v, nz++;
        qsort(tmp, (size_t)nz, sizeof(vi), cmp_desc);
        float cum = 0.0f;
        for (int j = 0; j < nz; j++) {
            const int remove = j > 0 && cum > (float)p->top_p; /* shifted: the crossing token stays */
            cum += tmp[j].v;
            if (remove) row[tmp[j].i] = -INFINITY;
        }
        /* 8. final distribution */
        sum = 0;
        for (int v = 0; v < V; v++) sum += probs[v] = row[v] == -INFINITY ? 0.0f : expf(row[v] - mx);
        for (int v = 0; v < V; v++) probs[v] = (float)(probs[v] / sum);
    }
done:
    free(row), free(keep), free(tmp);
    return DIA_OK;
}

static dia_status check_params(const dia_gen_params *p, const float *cond, const float *uncond, const void *out) {
    if (!p || !cond || !uncond || !out) return dia_fail(DIA_ERR_INVALID_ARG, "sampler: NULL argument");
    if (p->top_k > DIA_SAMPLER_V) return dia_fail(DIA_ERR_INVALID_ARG, "cfg_filter_top_k %d above the vocabulary %d", p->top_k, DIA_SAMPLER_V);
    return DIA_OK;
}

DIA_API dia_status dia_sampler_probs(const dia_gen_params *p, const float *cond, const float *uncond, float *probs) {
    dia_clear_error();
    dia_status st = check_params(p, cond, uncond, probs);
    for (int c = 0; st == DIA_OK && c < DIA_SAMPLER_C; c++)
        st = dia_sampler_channel(p, cond + c * DIA_SAMPLER_V, uncond + c * DIA_SAMPLER_V, DIA_SAMPLER_V, c,
                                 DIA_SAMPLER_EOS, probs + c * DIA_SAMPLER_V, NULL);
    return st;
}

/* SplitMix64 finaliser */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double dia_rng_uniform(uint64_t seed, uint64_t item, uint64_t step, uint64_t channel) {
    uint64_t h = mix64(seed);
    h = mix64(h ^ item);
    h = mix64(h ^ step);
    h = mix64(h ^ channel);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0); /* 53 bits -> [0, 1) */
}

int dia_pick(const float *probs, int V, double u) {
    double cum = 0;
    int last = 0;
    for (int v = 0; v < V; v++) {
        if (probs[v] <= 0) continue;
        last = v;
        cum += probs[v];
        if (u < cum) return v;
    }
    return last; /* rounding: u above the summed mass */
}

dia_status dia_sampler_pick(const dia_gen_params *p, const float *cond, const float *uncond, int C, int V, int eos,
                            uint64_t item, uint64_t step, float *scratch, int32_t *codes) {
    for (int c = 0; c < C; c++) {
        int greedy = 0;
        dia_status st = dia_sampler_channel(p, cond + (size_t)c * V, uncond + (size_t)c * V, V, c, eos, scratch, &greedy);
        if (st != DIA_OK) return st;
        codes[c] = p->temperature == 0.0 ? greedy
                                         : dia_pick(scratch, V, dia_rng_uniform(p->seed, item, step, (uint64_t)c));
    }
    return DIA_OK;
}

DIA_API dia_status dia_sample_frame(const dia_gen_params *p, const float *cond, const float *uncond, uint64_t item,
                                    uint64_t step, int32_t *codes) {
    dia_clear_error();
    dia_status st = check_params(p, cond, uncond, codes);
    if (st != DIA_OK) return st;
    float *scratch = malloc(DIA_SAMPLER_V * sizeof(float));
    if (!scratch) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    st = dia_sampler_pick(p, cond, uncond, DIA_SAMPLER_C, DIA_SAMPLER_V, DIA_SAMPLER_EOS, item, step, scratch, codes);
    free(scratch);
    return st;
}
