/* cuda_graph.cu - transparent CUDA-graph replay of repeated op sequences.
 *
 * The vtable is op by op, so the backend cannot know that a decode step starts. It does not need
 * to: a "segment" is the run of transformer ops between two memory calls (upload, download, copy,
 * alloc, free, sync, ...). A decode step is exactly one segment (the model uploads tokens and
 * positions, runs ~350 ops, downloads the logits) and, for a fixed batch and cache, every step's
 * segment has the same ops with the same arguments: only the contents of the buffers differ.
 *
 *   - A segment runs eagerly and is recorded (op kind, scalar arguments, device pointer and shape
 *     of every tensor).
 *   - When a segment ends identical to the previous one, it is captured once into a CUDA graph
 *     (the ops are re-issued under stream capture; nothing executes twice).
 *   - Later segments are compared op by op as they arrive and not launched while they match the
 *     graph's list; at the segment's end the whole graph is launched once. On the first mismatch
 *     the ops held back are launched eagerly, in order, and the segment goes on eagerly.
 *
 * Exact argument equality makes a replay do precisely what the eager launches would do. The only
 * state not in the arguments is the backend's scratch memory: regrowing it drops the graph. Any
 * failure to capture or instantiate switches graphs off for this backend (eager from then on).
 * DIA_CUDA_GRAPHS=0 in the environment switches them off from the start. */
#include <stdlib.h>

#include "cuda_common.cuh"

enum { OP_MATMUL, OP_RMSNORM, OP_ROPE, OP_EMBED, OP_SILU, OP_ADD, OP_KVSTORE, OP_ATTN, OP_LINEAR, OP_ROPEKV, OP_LINROPEKV };

#define REC_MAX_T 20
#define GRAPH_MIN_OPS 8

typedef struct op_key { /* what must be equal for a replay */
    int64_t kind, nt, i0, i1, fbits, nullmask;
    int64_t meta[REC_MAX_T][7]; /* device pointer, dtype, ndim, ne[4] */
} op_key;

typedef struct op_rec {
    op_key key;
    dia_tensor t[REC_MAX_T]; /* for eager launches of the current segment only */
    float f;
} op_rec;

typedef struct op_list {
    op_rec *v;
    int n, cap;
} op_list;

#define KEYED_MAX 16

typedef struct keyed_graph { /* graph_run: one recorded sequence per caller key */
    uint64_t key;
    cudaGraphExec_t exec;
    unsigned gen; /* scratch generation it was captured in */
    int calls;
    long last_use;
} keyed_graph;

struct cu_graph_state {
    int enabled, deferring, announced, direct;
    op_list cur, prev, glist;
    cudaGraphExec_t exec;
    long replays, clock;
    keyed_graph keyed[KEYED_MAX];
};

static cu_graph_state *gs_of(dia_backend *be) { return cu_ctx(be)->graph; }

dia_status cu_graph_init(dia_backend *be) {
    cu_graph_state *g = (cu_graph_state *)calloc(1, sizeof *g);
    if (!g) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    const char *env = getenv("DIA_CUDA_GRAPHS");
    g->enabled = !(env && env[0] == '0');
    cu_ctx(be)->graph = g;
    return DIA_OK;
}

/* 1 while graphs are on (not switched off by DIA_CUDA_GRAPHS=0 or by a failed capture). */
int cu_graphs_enabled(dia_backend *be) {
    cu_graph_state *g = gs_of(be);
    return g && g->enabled;
}

static void drop_graph(cu_graph_state *g) {
    if (g->exec) cudaGraphExecDestroy(g->exec);
    g->exec = NULL;
    g->glist.n = 0;
    g->deferring = 0;
}

static void drop_keyed(keyed_graph *k) {
    if (k->exec) cudaGraphExecDestroy(k->exec);
    memset(k, 0, sizeof *k);
}

void cu_graph_invalidate(dia_backend *be) {
    cu_graph_state *g = gs_of(be);
    if (!g) return;
    drop_graph(g);
    for (int i = 0; i < KEYED_MAX; i++) /* keep the keys: they will be captured again */
        if (g->keyed[i].exec) {
            cudaGraphExecDestroy(g->keyed[i].exec);
            g->keyed[i].exec = NULL;
            g->keyed[i].calls = 0;
        }
}

void cu_graph_destroy(dia_backend *be) {
    cu_graph_state *g = gs_of(be);
    if (!g) return;
    drop_graph(g);
    for (int i = 0; i < KEYED_MAX; i++) drop_keyed(&g->keyed[i]);
    free(g->cur.v);
    free(g->prev.v);
    free(g->glist.v);
    free(g);
    cu_ctx(be)->graph = NULL;
}

static int list_reserve(op_list *l, int n) {
    if (n <= l->cap) return 1;
    int cap = l->cap ? 2 * l->cap : 512;
    while (cap < n) cap *= 2;
    op_rec *v = (op_rec *)realloc(l->v, sizeof(op_rec) * (size_t)cap);
    if (!v) return 0;
    l->v = v;
    l->cap = cap;
    return 1;
}

static int key_equal(const op_key *a, const op_key *b) {
    if (a->kind != b->kind || a->nt != b->nt || a->i0 != b->i0 || a->i1 != b->i1 || a->fbits != b->fbits ||
        a->nullmask != b->nullmask)
        return 0;
    return memcmp(a->meta, b->meta, sizeof(a->meta[0]) * (size_t)a->nt) == 0;
}

static dia_status run_rec(dia_backend *be, op_rec *r) {
    dia_tensor *t = r->t;
    switch ((int)r->key.kind) {
    case OP_MATMUL: return cu_matmul(be, &t[0], &t[1], &t[2], (int)r->key.i0, (int)r->key.i1);
    case OP_RMSNORM: return cu_rmsnorm(be, &t[0], &t[1], &t[2], r->f);
    case OP_ROPE: return cu_rope(be, &t[0], &t[1], r->f);
    case OP_EMBED: return cu_embed(be, &t[0], &t[2], (int)r->key.i0, &t[1]);
    case OP_SILU: return cu_silu_mul(be, &t[0], &t[1]);
    case OP_ADD: return cu_add(be, &t[0], &t[1]);
    case OP_KVSTORE: return cu_kv_store(be, &t[0], &t[1], &t[2]);
    case OP_ATTN: return cu_attention(be, &t[0], &t[1], &t[2], &t[3], &t[4], (r->key.nullmask & 32) ? NULL : &t[5]);
    case OP_LINEAR:
    case OP_LINROPEKV: {
        /* tensors: x, norm_w, scratch, y0..y2, w0..w2, scratch_out (then for OP_LINROPEKV q, k, v,
         * kcache, vcache, pos, start); i0 = n | gated << 2 | accumulate << 3; i1 = trans bits
         * (OP_LINROPEKV: | the bits of theta << 8) */
        const int64_t nm = r->key.nullmask;
        dia_linear_args a;
        memset(&a, 0, sizeof a);
        a.x = &t[0];
        a.norm_w = (nm & 2) ? NULL : &t[1];
        a.scratch = (nm & 4) ? NULL : &t[2];
        a.eps = r->f;
        a.n = (int)(r->key.i0 & 3);
        a.gated = (int)((r->key.i0 >> 2) & 1);
        a.scratch_out = (nm & 512) ? NULL : &t[9];
        a.accumulate = (int)((r->key.i0 >> 3) & 1);
        for (int i = 0; i < a.n; i++) {
            a.y[i] = &t[3 + i];
            a.w[i] = &t[6 + i];
            a.trans_w[i] = (int)((r->key.i1 >> i) & 1);
        }
        if (r->key.kind == OP_LINEAR) return cu_linear(be, &a);
        const uint32_t tb = (uint32_t)(r->key.i1 >> 8);
        float theta;
        memcpy(&theta, &tb, 4);
        return cu_linear_rope_kv_store(be, &a, &t[10], &t[11], &t[12], &t[13], &t[14], &t[15], &t[16], theta);
    }
    case OP_ROPEKV: return cu_rope_kv_store(be, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], r->f);
    }
    return dia_fail(DIA_ERR_INTERNAL, "CUDA graph: unknown op record");
}

/* Capture `l` (just executed eagerly) into g->exec. On failure graphs are switched off. */
static void capture(dia_backend *be, cu_graph_state *g, op_list *l) {
    cuda_ctx *c = cu_ctx(be);
    drop_graph(g);
    cudaGraph_t graph = NULL;
    dia_status st = DIA_OK;
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e == cudaSuccess) {
        for (int i = 0; i < l->n && st == DIA_OK; i++) st = run_rec(be, &l->v[i]);
        e = cudaStreamEndCapture(c->stream, &graph);
    }
    if (e == cudaSuccess && st == DIA_OK && graph) e = cudaGraphInstantiate(&g->exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess || st != DIA_OK || !g->exec) {
        cudaGetLastError();
        if (g->exec) cudaGraphExecDestroy(g->exec);
        g->exec = NULL;
        g->enabled = 0;
        dia_log(DIA_LOG_WARN, "CUDA graphs switched off: capturing %d ops failed (%s); running eagerly", l->n,
                e != cudaSuccess ? cudaGetErrorString(e) : dia_last_error());
        return;
    }
    if (!list_reserve(&g->glist, l->n)) {
        drop_graph(g);
        g->enabled = 0;
        return;
    }
    memcpy(g->glist.v, l->v, sizeof(op_rec) * (size_t)l->n);
    g->glist.n = l->n;
    if (!g->announced) {
        g->announced = 1;
        dia_log(DIA_LOG_INFO, "CUDA graph: captured a repeated sequence of %d ops; replaying it while it repeats", l->n);
    }
}

/* The end of a segment: launch what was held back (the graph, or eagerly), or capture. */
dia_status cu_graph_boundary(dia_backend *be) {
    cu_graph_state *g = gs_of(be);
    if (!g || g->cur.n == 0) return DIA_OK;
    dia_status st = DIA_OK;
    if (g->deferring) {
        g->deferring = 0;
        if (g->cur.n == g->glist.n) {
            cudaError_t e = cudaGraphLaunch(g->exec, cu_ctx(be)->stream);
            if (e != cudaSuccess) st = dia_fail(DIA_ERR_BACKEND, "CUDA: cudaGraphLaunch failed: %s", cudaGetErrorString(e));
            g->replays++;
        } else {
            for (int i = 0; i < g->cur.n && st == DIA_OK; i++) st = run_rec(be, &g->cur.v[i]);
        }
        g->cur.n = 0;
        return st;
    }
    /* an eager segment: if it repeats the previous one, capture it for the next time */
    op_list *cur = &g->cur, *prev = &g->prev;
    int same = g->enabled && cur->n >= GRAPH_MIN_OPS && cur->n == prev->n;
    for (int i = 0; same && i < cur->n; i++) same = key_equal(&cur->v[i].key, &prev->v[i].key);
    if (same && !(g->exec && g->glist.n == cur->n)) capture(be, g, cur);
    op_list tmp = *prev;
    *prev = *cur;
    *cur = tmp;
    cur->n = 0;
    return st;
}

/* An op arrives: hold it back while the segment matches the graph, else launch it. */
static dia_status dispatch(dia_backend *be, op_rec *r) {
    cu_graph_state *g = gs_of(be);
    if (!g || !g->enabled || g->direct) return run_rec(be, r);
    if (!list_reserve(&g->cur, g->cur.n + 1)) {
        dia_status st = cu_graph_boundary(be);
        if (st != DIA_OK) return st;
        g->enabled = 0;
        return run_rec(be, r);
    }
    op_rec *slot = &g->cur.v[g->cur.n++];
    *slot = *r;
    const int i = g->cur.n - 1;
    if (g->deferring) {
        if (i < g->glist.n && key_equal(&slot->key, &g->glist.v[i].key)) return DIA_OK;
        g->deferring = 0; /* mismatch: launch what was held back, then go on eagerly */
        dia_status st = DIA_OK;
        for (int j = 0; j <= i && st == DIA_OK; j++) st = run_rec(be, &g->cur.v[j]);
        return st;
    }
    if (i == 0 && g->exec && g->glist.n > 0 && key_equal(&slot->key, &g->glist.v[0].key)) {
        g->deferring = 1;
        return DIA_OK;
    }
    return run_rec(be, slot);
}

/* ---- graph_run: the model names a fixed op sequence (a decode step) by a key ----
 * 1st call with a key: run eagerly (scratch buffers reach their size). 2nd: capture and launch.
 * Later: launch the graph; `record` is not called at all. */
static dia_status run_direct(cu_graph_state *g, dia_status (*record)(void *), void *ctx) {
    g->direct = 1;
    dia_status st = record(ctx);
    g->direct = 0;
    return st;
}

dia_status cu_graph_run(dia_backend *be, uint64_t key, dia_status (*record)(void *ctx), void *ctx) {
    cu_lock lock_(be);
    cu_graph_state *g = gs_of(be);
    cuda_ctx *c = cu_ctx(be);
    dia_status st = cu_graph_boundary(be);
    if (st != DIA_OK) return st;
    if (!g || !g->enabled || key == 0) return g ? run_direct(g, record, ctx) : record(ctx);
    keyed_graph *k = NULL, *lru = &g->keyed[0];
    for (int i = 0; i < KEYED_MAX && !k; i++)
        if (g->keyed[i].key == key) k = &g->keyed[i];
    if (!k) {
        for (int i = 0; i < KEYED_MAX && !k; i++)
            if (!g->keyed[i].key) k = &g->keyed[i];
            else if (g->keyed[i].last_use < lru->last_use) lru = &g->keyed[i];
        if (!k) {
            drop_keyed(lru);
            k = lru;
        }
        k->key = key;
    }
    k->last_use = ++g->clock;
    if (k->exec && k->gen == c->scratch_gen) {
        cudaError_t e = cudaGraphLaunch(k->exec, c->stream);
        if (e != cudaSuccess) return dia_fail(DIA_ERR_BACKEND, "CUDA: cudaGraphLaunch failed: %s", cudaGetErrorString(e));
        g->replays++;
        return DIA_OK;
    }
    if (k->exec) { /* captured before the scratch moved */
        cudaGraphExecDestroy(k->exec);
        k->exec = NULL;
        k->calls = 0;
    }
    if (k->calls++ == 0) return run_direct(g, record, ctx);
    /* capture (nothing executes), instantiate, launch; on any failure run eagerly and stop graphs */
    const unsigned gen = c->scratch_gen;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e == cudaSuccess) {
        st = run_direct(g, record, ctx);
        e = cudaStreamEndCapture(c->stream, &graph);
    }
    if (e == cudaSuccess && st == DIA_OK && graph && gen == c->scratch_gen) e = cudaGraphInstantiate(&k->exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess || st != DIA_OK || !k->exec || gen != c->scratch_gen) {
        cudaGetLastError();
        if (k->exec) cudaGraphExecDestroy(k->exec);
        k->exec = NULL;
        g->enabled = 0;
        dia_log(DIA_LOG_WARN, "CUDA graphs switched off: capturing a decode step failed (%s); running eagerly",
                e != cudaSuccess ? cudaGetErrorString(e) : "an op failed under capture");
        return run_direct(g, record, ctx);
    }
    k->gen = gen;
    if (!g->announced) {
        g->announced = 1;
        dia_log(DIA_LOG_INFO, "CUDA graph: decode step captured; later steps replay it");
    }
    e = cudaGraphLaunch(k->exec, c->stream);
    if (e != cudaSuccess) return dia_fail(DIA_ERR_BACKEND, "CUDA: cudaGraphLaunch failed: %s", cudaGetErrorString(e));
    return DIA_OK;
}

void cu_graph_release(dia_backend *be, uint64_t key) {
    cu_lock lock_(be);
    cu_graph_state *g = gs_of(be);
    if (!g || !key) return;
    for (int i = 0; i < KEYED_MAX; i++)
        if (g->keyed[i].key == key) {
            cu_graph_boundary(be);
            cudaStreamSynchronize(cu_ctx(be)->stream); /* a launch of it may be in flight */
            drop_keyed(&g->keyed[i]);
        }
}

/* ---- recording wrappers (the vtable's transformer ops) ---- */
static void rec_init(op_rec *r, int kind) {
    memset(&r->key, 0, sizeof r->key);
    r->key.kind = kind;
    r->f = 0.0f;
}

static void rec_t(op_rec *r, const dia_tensor *t) {
    const int i = (int)r->key.nt++;
    if (!t) {
        r->key.nullmask |= (int64_t)1 << i;
        memset(&r->t[i], 0, sizeof r->t[i]);
        return;
    }
    r->t[i] = *t;
    int64_t *m = r->key.meta[i];
    m[0] = t->buf ? (int64_t)(uintptr_t)cu_ptr(t) : 0;
    m[1] = t->dtype;
    m[2] = t->ndim;
    for (int d = 0; d < 4; d++) m[3 + d] = d < t->ndim ? t->ne[d] : 0;
}

static void rec_f(op_rec *r, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    r->key.fbits = u;
    r->f = f;
}

dia_status cu_g_matmul(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, int trans_w,
                       int accumulate) {
    cu_lock lock_(be);
    op_rec r;
    rec_init(&r, OP_MATMUL);
    rec_t(&r, y), rec_t(&r, x), rec_t(&r, w);
    r.key.i0 = trans_w, r.key.i1 = accumulate;
    return dispatch(be, &r);
}

dia_status cu_g_rmsnorm(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_tensor *w, float eps) {
    cu_lock lock_(be);
    op_rec r;
    rec_init(&r, OP_RMSNORM);
    rec_t(&r, y), rec_t(&r, x), rec_t(&r, w);
    rec_f(&r, eps);
    return dispatch(be, &r);
}

dia_status cu_g_rope(dia_backend *be, dia_tensor *x, const dia_tensor *pos, float theta) {
    cu_lock lock_(be);
    op_rec r;
    rec_init(&r, OP_ROPE);
    rec_t(&r, x), rec_t(&r, pos);
    rec_f(&r, theta);
    return dispatch(be, &r);
}

dia_status cu_g_embed(dia_backend *be, dia_tensor *y, const dia_tensor *tables, int n_tables, const dia_tensor *tok) {
    cu_lock lock_(be);
    if (n_tables < 1 || n_tables > REC_MAX_T - 2) {
        dia_status st = cu_graph_boundary(be);
        return st != DIA_OK ? st : cu_embed(be, y, tables, n_tables, tok);
    }
    op_rec r;
    rec_init(&r, OP_EMBED);
    rec_t(&r, y), rec_t(&r, tok);
    for (int c = 0; c < n_tables; c++) rec_t(&r, &tables[c]);
    r.key.i0 = n_tables;
    return dispatch(be, &r);
}

dia_status cu_g_silu_mul(dia_backend *be, dia_tensor *y, const dia_tensor *h) {
    cu_lock lock_(be);
    op_rec r;
    rec_init(&r, OP_SILU);
    rec_t(&r, y), rec_t(&r, h);
    return dispatch(be, &r);
}

dia_status cu_g_add(dia_backend *be, dia_tensor *y, const dia_tensor *x) {
    cu_lock lock_(be);
    op_rec r;
    rec_init(&r, OP_ADD);
    rec_t(&r, y), rec_t(&r, x);
    return dispatch(be, &r);
}

dia_status cu_g_kv_store(dia_backend *be, dia_tensor *cache, const dia_tensor *src, const dia_tensor *start) {
    cu_lock lock_(be);
    op_rec r;
    rec_init(&r, OP_KVSTORE);
    rec_t(&r, cache), rec_t(&r, src), rec_t(&r, start);
    return dispatch(be, &r);
}

dia_status cu_g_attention(dia_backend *be, dia_tensor *out, const dia_tensor *q, const dia_tensor *k,
                          const dia_tensor *v, const dia_tensor *kv_len, const dia_tensor *qpos) {
    cu_lock lock_(be);
    op_rec r;
    rec_init(&r, OP_ATTN);
    rec_t(&r, out), rec_t(&r, q), rec_t(&r, k), rec_t(&r, v), rec_t(&r, kv_len), rec_t(&r, qpos);
    return dispatch(be, &r);
}

/* The record of a linear call (OP_LINEAR, or the first part of OP_LINROPEKV). */
static void rec_linear(op_rec *r, int kind, const dia_linear_args *a) {
    rec_init(r, kind);
    rec_t(r, a->x), rec_t(r, a->norm_w), rec_t(r, a->scratch);
    for (int i = 0; i < 3; i++) rec_t(r, i < a->n ? a->y[i] : NULL);
    for (int i = 0; i < 3; i++) rec_t(r, i < a->n ? a->w[i] : NULL);
    rec_t(r, a->scratch_out);
    r->key.i0 = a->n | (a->gated ? 4 : 0) | (a->accumulate ? 8 : 0);
    for (int i = 0; i < a->n; i++) r->key.i1 |= (int64_t)(a->trans_w[i] ? 1 : 0) << i;
    rec_f(r, a->eps);
}

dia_status cu_g_linear(dia_backend *be, const dia_linear_args *a) {
    cu_lock lock_(be);
    if (!a || a->n < 1 || a->n > 3) return dia_fail(DIA_ERR_INTERNAL, "linear: bad arguments");
    op_rec r;
    rec_linear(&r, OP_LINEAR, a);
    return dispatch(be, &r);
}

dia_status cu_g_linear_rope_kv_store(dia_backend *be, const dia_linear_args *a, dia_tensor *q, dia_tensor *k,
                                     const dia_tensor *v, dia_tensor *kcache, dia_tensor *vcache,
                                     const dia_tensor *pos, const dia_tensor *start, float theta) {
    cu_lock lock_(be);
    if (!a || a->n != 3) return dia_fail(DIA_ERR_INTERNAL, "linear_rope_kv_store: bad arguments");
    op_rec r;
    rec_linear(&r, OP_LINROPEKV, a);
    rec_t(&r, q), rec_t(&r, k), rec_t(&r, v), rec_t(&r, kcache), rec_t(&r, vcache), rec_t(&r, pos), rec_t(&r, start);
    uint32_t tb;
    memcpy(&tb, &theta, 4);
    r.key.i1 |= (int64_t)tb << 8;
    return dispatch(be, &r);
}

dia_status cu_g_rope_kv_store(dia_backend *be, dia_tensor *q, dia_tensor *k, const dia_tensor *v, dia_tensor *kcache,
                              dia_tensor *vcache, const dia_tensor *pos, const dia_tensor *start, float theta) {
    cu_lock lock_(be);
    op_rec r;
    rec_init(&r, OP_ROPEKV);
    rec_t(&r, q), rec_t(&r, k), rec_t(&r, v), rec_t(&r, kcache), rec_t(&r, vcache), rec_t(&r, pos), rec_t(&r, start);
    rec_f(&r, theta);
    return dispatch(be, &r);
}

/* statistics for tests and benchmarks */
extern "C" long dia_cuda_graph_replays(dia_backend *be) {
    cu_graph_state *g = be && be->ops && !strcmp(be->ops->name, "cuda") ? gs_of(be) : NULL;
    return g ? g->replays : -1;
}

/* Not recorded (too many tensors for an op record): ends the segment and runs. Decode steps run
 * it inside graph_run, which captures it with the rest of the step. */
dia_status cu_g_decode_layers(dia_backend *be, const dia_decode_layers_args *a) {
    cu_lock lock_(be);
    dia_status st = cu_graph_boundary(be);
    return st != DIA_OK ? st : cu_decode_layers(be, a);
}

int cu_g_decode_layers_ok(dia_backend *be, const dia_decode_layers_args *a) {
    cu_lock lock_(be);
    return cu_decode_layers_ok(be, a);
}
