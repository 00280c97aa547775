/* cuda_decode_step.cu - every decoder layer of a B = 1 decode step (the CFG pair: 2 rows) in one
 * persistent kernel (backend slot `decode_layers`), the default for such steps
 * (DIA_CUDA_DECODE_STEP=0: op by op). Correct (test_decode_step_kernel). On the H100 (the producer
 * warp group below, the default there) dia_generate at B = 1 runs ~802 steps/s at positions 21..220
 * and ~722 over a whole generation (eighteenth session; ~753 and ~681 in the seventeenth, ~724 and
 * ~652-657 in the fifteenth; 573 op by op in the eleventh; docs/performance.md).
 *
 * At 2 rows a step is a stream of ~2.5 GB of weights with small reductions between the
 * projections (RMSNorm, attention). As separate kernels each projection pays its ramp-up and tail
 * and the small kernels run while no weights stream. Here one block per SM stays resident for the
 * whole step and does the layers' work in phases separated by grid-wide barriers (6 per layer; before
 * the two attention phases each unit waits instead for counters of its own heads, OPT 256 / 512):
 *
 *   q|k|v (+ RoPE, cache stores) | self-attention | o (+= x) | cross q | cross-attention |
 *   cross o (+= x) | gate_up (SiLU gate) | down (+= x)
 *
 * Where the backend's caller passes them (dia_decode_layers_args), the kernel also does the step's
 * ends: each block sums the embedding rows of the step's tokens into a copy of x of its own before
 * layer 0 (no barrier), and the logits head runs as a projection phase after a barrier behind the
 * last layer, its tiles streamed after the layers'. H100, one call, dia_generate B = 1: 711.5 / 709.2
 * vs 706.6 / 705.3 steps/s at 21..220 with the ends as kernels of their own (the same kernel code),
 * 661.3 vs 655.1 at 1401..1500. DIA_CUDA_DECODE_STEP_ENDS (default 3; 1 the embedding, 2 the head)
 * switches them for comparisons.
 *
 * The weights do not depend on the activations, so each block streams its weight tiles of all
 * phases of all layers, in order, into a ring of shared-memory stages with bulk copies
 * (cp.async.bulk, completion on mbarriers), so that while the compute warps wait at a grid barrier,
 * load a phase's input or compute attention, the next projections' weights arrive. Two variants
 * (template argument WS, ds_get_variant):
 * - WS 1, the default on compute capability 9.0 (the file's sm_90a code): a producer warp group of
 *   its own (12 warps a block; setmaxnreg moves registers from the producers to the 8 compute
 *   warps, see DS_CREGS) whose first thread issues tile n into stage n % 5 once the tile 5 earlier
 *   has been consumed and the tile before it has landed: 5 stages, 1 tile (32 KB) in flight (gate_up's
 *   tiles: 2, DS_WS_INFLIGHT2). The stream goes on while every compute warp stalls; with a single tile
 *   in flight per SM (4.2 MB over the GPU) the dependent loads, atomics and barriers queue behind
 *   little. Measured on the H100:
 *   +9-10% over WS 0 (more in flight or fewer stages were slower, docs/performance.md).
 * - WS 0 (DIA_CUDA_DECODE_STEP_WS=0, other devices): 8 warps; one compute thread (DS_ISSUER) issues
 *   the tile DS_STAGES (3) ahead into each stage as soon as every warp has passed the barrier of
 *   the tile that used it, so the stream stops while the compute warps stall. (A 9th warp as the
 *   producer would cap registers at 168 without setmaxnreg, which needs whole warp groups.)
 * Code size matters: a step runs through the kernel's code once per layer, so code that does not
 * fit the instruction cache is fetched from L2 under the weight stream every layer (767 KB of SASS
 * made the attention phases ~10 us each). The attention is one small, not-inlined instance with a
 * rolled loop over its query heads.
 *
 * Projection phase: output rows (or (j, j + 64) RoPE pairs, or (gate, up) row pairs) are split
 * evenly over the blocks; a tile is up to 8 rows of [K] bf16. Warp w owns the 256-wide K chunks
 * w, w + 8, ... of the input, which it keeps in registers for the phase (normed with the RMSNorm
 * scale folded in; the 1 / rms factor applied to the sums); the warps' partial sums meet in shared
 * memory (16-shuffle transposed reductions) and one thread per output does the epilogue. Every
 * output is written by one thread in a fixed order: results are deterministic. Each block keeps
 * its rows of the residual x in shared memory (the o / cross o / down epilogues read no global
 * memory).
 * Attention phase: a block per (row, query head, 128-key segment) while these fit the grid, else
 * per (row, 2 or G query heads of a kv head, segment); a warp per 16-key chunk (DS_CHUNK), lanes = 4 features
 * of every key and value row (coalesced loads; the scores summed over the lanes by a transposed
 * reduction), the warps' partials merged in shared memory; more than one segment: the last block
 * of a unit's heads merges the segments' partials through global memory (ds_merge_global: all
 * their loads in one batch). Each warp's K and V rows are loaded before the wait that precedes the
 * phase (the one row written in this step is read again after it). That wait is for the unit's own
 * heads (OPT 256 / 512, the producer warp group's default): the blocks of the projection before count
 * the units they wrote of each head (ds_publish_heads), so a unit starts once its heads' q (and k, v)
 * are written, not once every block has arrived; blocks without a unit go straight on.
 * Data written during the kernel is read with ld.global.cg (L2), never through L1.
 *
 * Applies where: 2 rows, bf16 weights in nn.Linear layout in device memory, bf16 caches, head
 * dims 128, GQA groups <= 4, every K a multiple of 256, <= 2048 (<= 8192 for down), D <= 64 blocks, <= DS_MAXL
 * layers, and one block fits each SM. DIA_CUDA_DECODE_STEP_OPT / _DEBUG: experiments (ds_args).
 * The grid barriers need all sm_count blocks resident at once: the launch is cooperative, so it fails
 * where they cannot be (e.g. MPS with an SM limit) instead of waiting forever. */
#include <stdio.h>
#include <stdlib.h>

#include "cuda_common.cuh"

#define DS_CWARPS 8 /* warps per block (8: two per SM quarter, so up to 255 registers a thread) */
#define DS_THREADS (DS_CWARPS * 32)
#ifndef DS_STAGES
/* ring stages (-DDS_STAGES=N to measure others): with fewer bytes in flight the dependent loads,
 * atomics and barriers wait less behind the weight stream. H100, two calls, steps/s: 6 stages 541,
 * 5: 558, 4: 566-568, 3: 571, 2: 568 with DIA_CUDA_DECODE_STEP_OPT 6 (op by op: 564-570) */
#define DS_STAGES 3
#endif
#define DS_STAGE 32768 /* bytes per ring stage */
/* WS 1: the weight stream moved by a producer warp group of its own (k_decode_layers<1>, 12 warps: 8
 * compute warps and a warp group whose first thread issues the tiles), so that it goes on while the
 * compute warps wait (the phases' input loads, the grid barriers, the attention). Its ring has
 * DIA_CUDA_DECODE_STEP_STAGES stages (<= DS_MAXST, default DS_WS_STAGES) of which at most
 * DIA_CUDA_DECODE_STEP_INFLIGHT (default DS_WS_INFLIGHT) are in flight: the stages past that fill while
 * the compute warps stall, without lengthening the queues that their dependent loads wait in. H100,
 * steps/s at positions 21..220 by stages:in flight: 4:1 660.6, 5:1 661.1, 3:1 645.6, 6:1 645.8, 4:2
 * 640.5, 5:2 643.0, 3:3 635.9, 6:3 617.2 (8 warps, WS 0: 606.2). setmaxnreg gives the compute warps DS_CREGS registers and the producers
 * DS_PREGS out of the block's 384 x 168 (the launch's count, checked by ds_fits: setmaxnreg.inc waits
 * forever for registers the block does not have): 8 DS_CREGS + 4 DS_PREGS <= 12 x 168. */
#define DS_MAXST 6
#define DS_PWARPS 4
#define DS_WS_THREADS (DS_THREADS + DS_PWARPS * 32) /* a block of WS 1 */
#define DS_CREGS 240
#define DS_PREGS 24
#define DS_WS_STAGES 5   /* the producer's ring: stages */
#define DS_WS_INFLIGHT 1 /* ... of which in flight */
/* ... except gate_up's tiles: 2 in flight (DIA_CUDA_DECODE_STEP_INFLIGHT2, ds_args.infl2: mask 16 = gate_up,
 * F2 2). The tiles in flight while a block waits at a grid barrier delay its release (docs/performance.md),
 * and gate_up's are never in flight at one: its first tiles come in during the cross-attention, the
 * block's ring at most 5 ahead of its compute warps, and its last ones land before down's first are
 * issued (at 1). Seventeenth session, H100, same binary, dia_generate B = 1, two calls: 738.6 / 739.1 /
 * 739.6 vs 737.4 / 737.7 / 736.4 steps/s and 735.3 / 735.0 vs 734.3 / 733.6 at frames 20..220,
 * 684.0 / 683.9 vs 682.8 / 680.7 and 682.0 / 682.2 vs 681.5 / 681.6 at 1400..1600, 668.5 vs 667.0 and
 * 666.0 vs 665.3 over a whole generation (+0.1-0.3%); 3 in flight, or down's tiles at 2 as well (all,
 * or past its first 3), no better (down's first tiles at 2: -2.4%). Eighteenth session, after that session's
 * changes: gate_up's first 8 tiles at 1 in flight, the rest at 2 (skip 8), so that fewer bytes are in flight
 * around the grid barrier after cross o (H100, same binary, two calls: 803.5 / 803.8 and 806.4 / 806.4 vs
 * 800.2 / 800.0 and 802.1 / 802.1 steps/s at frames 20..220, 747.1 / 747.0 and 746.9 / 746.8 vs 744.0 / 743.8
 * and 744.0 / 743.7 at 1400..1600, 724.8 vs 722.8 over a whole generation: +0.3-0.5%; skip 2 or 4 +-0, gate_up
 * at 1 +-0; 6 ring stages +1.1% at 20..220 but -0.1% over a whole generation, 4 stages -1.7%). */
#define DS_WS_INFLIGHT2 (16 | 2 << 8 | 8 << 16)
#define DS_WS_REGS(launch) (2 * DS_CREGS + DS_PREGS <= 3 * (launch))
static_assert(DS_STAGES <= DS_MAXST, "the shared-memory layout holds DS_MAXST ring barriers");
#define DS_MAXL 24
#define DS_NHC 64 /* head counters (ds_args.hc): self q|k|v heads at 0, cross q heads at 32 */
#ifndef DS_CHUNK
/* keys per warp of an attention unit (a segment: DS_CWARPS chunks). 16 instead of 32 (eleventh
 * session, H100, dia_generate B = 1, one call): 700.1 / 700.0 vs 667.1 steps/s at positions 21..220,
 * 643.3 / 644.3 vs 626.5 at 1401..1500, 630.4 vs 621.7 over 21..3020. Segments of 128 keys take half
 * the bytes per block (at 1,450 keys units of all G query heads fit the grid: each K/V row is read
 * once instead of twice), and the attention's K/V registers (64 instead of 128) leave the kernel
 * fewer spills (ptxas, producer warp group: 104 / 0 bytes instead of 184 / 180), which also made the
 * projections faster (down 11.1 -> 9.3 us per layer). -DDS_CHUNK=32 builds the former kernel. */
#define DS_CHUNK 16
#endif
static_assert(DS_CHUNK == 32 || DS_CHUNK == 16, "attention chunks of 32 or 16 keys");
#define DS_PSTRIDE 132 /* floats per attention partial: max, sum, 2 pad, o[128] */
#define DS_HD 128
#define DS_MAXG 4 /* query heads per kv head */
#define DS_XO 64  /* rows of x per block (D <= DS_XO * blocks) */
#define DS_OPT_DEFAULT (15 | 2097152 | 4194304 | 16777216 | 67108864) /* DIA_CUDA_DECODE_STEP_OPT when unset (ds_args.opt): the measured best */
/* ... with the producer warp group: without the K/V L2 prefetch (2), +0.8-1.0%; with the head counters
 * (256 | 512) instead of the grid barriers before the attention phases, +1.0%, published with one fence
 * (1024) and the warps' attention partials merged with all loads at once (2048), +1.1% more (fifteenth
 * session, H100); q and cross q as (value, epoch) pairs (4096), +3.0% more, and the attention of units
 * of >= 2 query heads on tensor cores (32768), +1.0% more past ~1400 keys (sixteenth session, H100); the
 * first unit's q loaded once before its K/V loads (262144), +0.6-0.8% (seventeenth session, H100); the launch's
 * arguments read from a copy in shared memory (2097152, DS_OPT_ARGS_SH), +4.1-4.4%, and the phases' shapes and
 * ranges worked out once (4194304, DS_OPT_PH_SH), +1.4-1.5%, the norm factor by one rsqrt (16777216,
 * DS_OPT_RSQRT), +0.8-1.0%, and the attention's unit count at the start (67108864, DS_OPT_ATT_SYNC), +0.9-1.2%
 * (eighteenth session, H100) */
#define DS_OPT_WS_DEFAULT (13 | 256 | 512 | 1024 | 2048 | 4096 | 32768 | 262144 | 2097152 | 4194304 | 16777216 | 67108864)
#define DS_PROF 24 /* DIA_CUDA_DECODE_STEP_DEBUG & 8: marks per layer (16 phase ends, 4 inside the attention, 4 at its start) */

enum { PH_QKV, PH_O, PH_CQ, PH_CO, PH_GU, PH_DOWN, PH_OUT /* the logits head */ };
#define DS_MAXC 16 /* embedding tables */

struct ds_layer {
    const __nv_bfloat16 *w[8]; /* wq, wk, wv, wo, cq, co, gate_up, down: [N, K] */
    const float *norm[3];      /* [D] */
    __nv_bfloat16 *kc, *vc;    /* [2, KV, S, 128] */
    const __nv_bfloat16 *ck, *cv; /* [2, CKV, Lc, 128] */
};

struct ds_args {
    ds_layer L[DS_MAXL];
    int nl;
    float *x;    /* f32 [2, D] residual stream */
    float *q;    /* f32 [2, QW]: self q after RoPE, then cross q */
    float *att;  /* f32 [2, QW]: merged attention output */
    float *mlp;  /* f32 [2, I]: silu(gate) * up */
    float *part; /* f32 [2, Hmax, nchm, DS_PSTRIDE]: attention partials */
    unsigned *bar; /* grid barrier counter (zeroed before the launch) */
    unsigned *cnt; /* [2 phases][2 rows][Hmax]: attention units done per (row, first query head of a unit); zeroed */
    unsigned long long *qf; /* OPT 4096: [2, QW] q and cross q as (f32 bits, epoch) pairs (ds_epoch) */
    unsigned *hc;  /* [DS_NHC] (OPT 256 / 512): q|k|v units done per head ([0, H + 2 KV)) and cross q units per
                    * head ([32, 32 + CH)), over the layers of a launch; zeroed (the last block resets them) */
    const int *pos, *start, *kvlen, *clen; /* i32 [2] */
    int D, I, H, KV, CH, CKV, S, Lc, QW, nchm;
    float eps;
    double theta;
    unsigned long long *prof; /* DIA_CUDA_DECODE_STEP_DEBUG & 8: block 0's mark times [nl * DS_PROF + 1]; with
                               * & 16 every block's, [nb][nl * DS_PROF + 1] */
    int nst, infl; /* WS: ring stages, most tiles in flight */
    int infl2;     /* WS, DIA_CUDA_DECODE_STEP_INFLIGHT2 = mask | F2 << 8 | skip << 16 (default DS_WS_INFLIGHT2): F2
                    * tiles in flight (not infl) for the tiles past the first `skip` of a phase whose ds_order
                    * index is in mask (1 q|k|v, 2 o, 4 cross q, 8 cross o, 16 gate_up, 32 down; 0: off) */
    int opt; /* DIA_CUDA_DECODE_STEP_OPT, bits (same results, 16777216 up to the norm factor's last double bit; default DS_OPT_DEFAULT = 1 | 2 | 4 | 8 | 2097152 | 4194304 | 16777216 | 67108864,
              * DS_OPT_WS_DEFAULT = 1 | 4 | 8 | 256 | 512 | 1024 | 2048 | 4096 | 32768 | 262144 | 2097152 | 4194304 | 16777216 | 67108864 (8 does not apply where 256 / 512 do); H100 measurements of the eighth session in brackets): 1 L2
              * prefetch of the norm weights at the start; 2 L2 prefetch of the layer's attention K/V at
              * its start; 4 release/acquire grid barrier (3 -> 7: +3.5%); 8 an attention phase's K/V
              * loads between the block's arrival at the barrier before it and the wait, so that the
              * arrival's release fence does not wait for them (tenth session: +1.4-1.9% with the
              * producer warp group, +0.7-1.6% without); 32 attention units of G query heads always (what long contexts
              * use; tested); 32768 (DS_CHUNK 16): the attention's scores and values on tensor cores
              * (ds_heads_mma) for units of >= 2 query heads (ds_use_mma; sixteenth session, H100, same binary,
              * steps/s, 7949 vs | 32768: 734.1 / 732.2 vs 730.6 / 732.7 at frames 20..220, 669.8 / 670.0 vs
              * 676.2 / 675.9 at 1400..1600, 598.4 / 597.0 vs 604.3 / 604.3 at 2600..2800, 656.8 vs 661.2 over a
              * whole generation); 262144 (with 4096): the q pairs of the block's first unit loaded once before
              * its K/V loads, and used if they carry the epoch (ds_get_qf4's spin otherwise), so that the K/V
              * loads' issue (~0.6 us) overlaps that load (seventeenth session, H100, same binary, 40717 vs 302861:
              * 745.9 / 745.4 vs 752.4 / 750.4 at frames 20..220, 695.9 / 697.2 vs 700.3 / 701.5 at 1400..1600,
              * 677.5 vs 681.7 over a whole generation); 2097152 the arguments read from a copy in shared memory
              * (DS_OPT_ARGS_SH: eighteenth session, H100, same binary, 302861 vs 2400013: 751.7 / 751.0 vs 782.4 /
              * 782.5 at frames 20..220, 704.0 / 704.3 vs 735.1 / 735.0 at 1400..1600, 684.4 vs 714.2 over a whole
              * generation; the 8-warp kernel: 631.5 / 631.4 vs 657.2 / 657.3 with 15 vs 2097167); 4194304 the phases'
              * shapes and ranges worked out once (DS_OPT_PH_SH: eighteenth session, H100, same binary, 2400013 vs
              * 6594317: 769.5 / 768.7 vs 780.8 / 781.7 at frames 20..220, 719.6 / 719.8 vs 729.8 / 730.1 at
              * 1400..1600, 700.7 vs 710.4 over a whole generation); 16777216 the norm factor by one rsqrt
              * (DS_OPT_RSQRT: eighteenth session, H100, same binary, 6594317 vs 23371533: 781.7 / 781.8 / 780.1 vs
              * 789.6 / 787.9 / 787.9 at frames 20..220, 704.7 vs 710.7 over a whole generation); 67108864 the
              * attention's unit count at the start (DS_OPT_ATT_SYNC: eighteenth session, H100, same binary, 23371533
              * vs 90480397: 793.6 / 794.7 / 794.4 vs 801.4 / 801.6 / 801.5 at frames 20..220, 715.6 vs 723.2 over a
              * whole generation); 256 / 512 head counters (ds_publish_heads, ds_wait_heads) instead of the grid
              * barrier before the self- / cross-attention (fifteenth session, H100, same binary, steps/s at
              * frames 20..220: 13 716.2 / 717.3, | 256 718.9 / 718.6, | 512 722.5 / 722.3, | 768 723.7 /
              * 724.1; a whole generation 650.4 vs 657.4 with both); 1024 the head counters published with one
              * fence.acq_rel and relaxed adds (not a release add per head), 2048 the in-block merge of the
              * warps' attention partials with all loads at once (ds_merge_warps): H100, same binary, 781
              * 715.9 / 717.1, | 1024 722.6 / 722.4, | 2048 720.5 / 720.5, | 3072 724.6 / 724.3 at frames
              * 20..220, 647.7 vs 652.4 over a whole generation; 4096 (implies 256 | 512): q and cross q written as
              * (value, epoch) pairs (ds_put_qf), so that an attention unit's q load is its wait (ds_get_qf4)
              * and only the self-attention's k and v heads are counted (sixteenth session, H100, same binary,
              * 3853 vs 7949: 712.2 / 712.4 vs 734.1 / 732.2 at frames 20..220, 644.6 vs 656.8 over a whole
              * generation). Measured and removed (ninth session): relaxed barrier polling (-3%), the next
              * layer's K/V prefetched during gate_up (+-0), V rows loaded after the barrier (+-0), weight
              * tiles L2-prefetched beyond the ring (-30 to -40%); (sixteenth session, wip/flagged-q): q|k|v
              * split over the blocks in whole tiles (+0.1%), no grid barrier after the attention phases (att
              * flags per head that the o / cross o warps wait for: -3%; att as (value, epoch) pairs that
              * the o / cross o loads spin on, wip/flag-barrier: -2 to -5%); (wip/flag-barrier) the grid
              * barrier as one flag per block polled by 5 warps a block (-13.5%; relaxed polls and one
              * fence: -16%), the counter polled relaxed with one fence after (-2.6%); (wip/poll-sleep)
              * __nanosleep after a failed barrier poll (32 / 100 / 250 ns: -0.2 / -0.4 / -0.6%); (wip/gate)
              * the producer holding back a phase's tiles past its first K until the barrier before the
              * phase has released the block, so that none is in flight during the wait (a barrier
              * releases later with tiles in flight): K = 3 / 4 +-0.3%, K = 2 -2.5%. */
    /* the optional ends (dia_decode_layers_args): x = the embedding sum before layer 0 (tok != NULL; each
     * block sums all of x into its own xe, layer 0's q|k|v input), logits = rmsnorm(x, onorm) . ow after
     * the last layer (ow != NULL) */
    const int *tok;                    /* i32 [2, C] */
    const __nv_bfloat16 *emb[DS_MAXC]; /* [C] tables [V, D] */
    int C, V;
    float *xe;                         /* f32 [nb, 2, D] */
    const __nv_bfloat16 *ow;           /* [NO, D] */
    const float *onorm;                /* [D] */
    float *logits;                     /* f32 [2, NO] */
    int NO;
    int dbg; /* DIA_CUDA_DECODE_STEP_DEBUG (timing experiments, wrong results): 1 no attention, 2 no
              * grid barriers, 4 no projection epilogues; 8: block 0's phase times (graphs off: eager steps);
              * 8 | 16: every block's, reported per barrier (skew, latency, last arrivers); 32 the grid barriers'
              * arrivals without their release (a relaxed add: a block does not wait for its stores to be
              * visible first; nineteenth session, H100: +6.5% at frames 20..220, +5.6% at 1400..1600) */
};

/* ---- shared-memory barriers and bulk copies (sm_90) ---- */
static __device__ __forceinline__ unsigned ds_saddr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

static __device__ __forceinline__ void mb_init(uint64_t *b, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(ds_saddr(b)), "r"(count) : "memory");
}
static __device__ __forceinline__ void mb_expect_tx(uint64_t *b, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(ds_saddr(b)), "r"(bytes) : "memory");
}
static __device__ __forceinline__ void mb_arrive(uint64_t *b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(ds_saddr(b)) : "memory");
}
static __device__ __forceinline__ void mb_wait(uint64_t *b, unsigned parity) {
    unsigned ok;
    do {
        asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
                     : "=r"(ok)
                     : "r"(ds_saddr(b)), "r"(parity)
                     : "memory");
    } while (!ok);
}
static __device__ __forceinline__ void bulk_load(void *dst, const void *src, unsigned bytes, uint64_t *b, uint64_t pol) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
                     ds_saddr(dst)),
                 "l"(src), "r"(bytes), "r"(ds_saddr(b)), "l"(pol)
                 : "memory");
}

/* The block index and count through opaque moves: the phases' values derived from them (and from
 * the arguments, read through a pointer made opaque per layer) stay inside the layer loop instead
 * of being hoisted out of it, which would keep them all live at once and exhaust the registers. */
static __device__ __forceinline__ int ds_bid(void) {
    int v;
    asm volatile("mov.u32 %0, %%ctaid.x;" : "=r"(v));
    return v;
}
static __device__ __forceinline__ int ds_nb(void) {
    int v;
    asm volatile("mov.u32 %0, %%nctaid.x;" : "=r"(v));
    return v;
}

/* all warps of the block (named barrier 1) */
static __device__ __forceinline__ void ds_csync(void) { asm volatile("bar.sync 1, %0;" ::"n"(DS_CWARPS * 32) : "memory"); }

/* Grid-wide barrier among all blocks: a monotonic counter. ds_garrive: the block's arrival (thread 0,
 * after all its warps); ds_gwait: the wait for every block's. */
static __device__ __forceinline__ void ds_garrive(const ds_args &a, unsigned *target) {
    *target += ds_nb();
    ds_csync();
    if (a.dbg & 2) return;
    if (threadIdx.x == 0) {
        if (a.dbg & 32) { /* DEBUG 32 (timing only, results may be wrong): the arrival without its release */
            asm volatile("red.relaxed.gpu.global.add.u32 [%0], 1;" ::"l"(a.bar) : "memory");
        } else if (a.opt & 4) {
            asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(a.bar) : "memory");
        } else {
            __threadfence();
            atomicAdd(a.bar, 1u);
        }
    }
}
static __device__ __forceinline__ void ds_gwait(const ds_args &a, const unsigned *target) {
    if (!(a.dbg & 2) && threadIdx.x == 0) {
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(a.bar) : "memory");
        } while (v < *target);
        if (!(a.opt & 4)) __threadfence();
    }
    ds_csync();
}
static __device__ __forceinline__ void ds_gsync(const ds_args &a, unsigned *target) {
    ds_garrive(a, target);
    ds_gwait(a, target);
}

/* OPT 256 / 512 (the producer warp group's default): instead of the grid barrier before an attention phase, each block
 * counts the units it wrote of each head of the projection before (q|k|v: 64 RoPE pairs a head;
 * cross q: 128 rows) in hc[head] (a release add after the block's stores: as its barrier arrival),
 * and an attention unit waits only for its own heads: warp 0, lane i < n polling counter ci (all in
 * one round trip), until every one is >= need. */
static __device__ void ds_wait_heads(const unsigned *ci, int n, unsigned need) {
    const int lane = threadIdx.x & 31;
    for (;;) {
        unsigned v = need;
        if (lane < n) asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(ci) : "memory");
        if (__all_sync(0xffffffffu, v >= need)) break;
    }
}

/* OPT 4096: q and cross q are written as (value, epoch) pairs with one 8-byte store each,
 * so that an attention unit's q load is also its wait (no counter round trip before it). The epoch of
 * layer l's self (ph 0) or cross (ph 1) q in launch seq (bar[2], counted by the launches' last
 * blocks); bit 30 set so that zeroed memory never matches. Every launch writes every pair of every
 * layer, so a pair left from an earlier launch or phase has another epoch (seq wraps after 2^24
 * launches, by which time nothing of that age is left). */
static __device__ __forceinline__ unsigned ds_epoch(unsigned seq, int l, int ph) {
    return 0x40000000u | ((seq * 64u + 2u * (unsigned)l + (unsigned)ph) & 0x3fffffffu);
}
/* the launch's number and the epoch of the current layer's self q (thread 0 sets them: at the start, and
 * at each layer's start, after the grid barrier that ends the layer before); in shared memory, not in
 * registers across the layer loop (they made the compute warps spill) */
static __shared__ unsigned ds_seq_sh, ds_ep_sh;
/* The launch's lengths and cache rows, read once at the start: kvlen [2], clen [2], start [2]. Read from
 * global memory by the attention units and the k / v stores, they went to L1 or past it to L2 once a
 * layer: seventeenth session, H100, same binary, dia_generate B = 1, steps/s: 741.2 / 741.7 vs 739.9 /
 * 737.9 at frames 20..220, 689.9 / 688.7 vs 683.0 / 683.3 at 1400..1600, 672.6 vs 667.2 over a whole
 * generation (+0.8%) */
static __shared__ int ds_len_sh[6];
static __device__ __forceinline__ void ds_put_qf(unsigned long long *p, float v, unsigned ep) {
    const unsigned long long w = (unsigned long long)__float_as_uint(v) | (unsigned long long)ep << 32;
    asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(w) : "memory");
}
/* 4 consecutive pairs at p (16-byte aligned), once */
static __device__ __forceinline__ void ds_load_qf4(const unsigned long long *p, unsigned long long (&w)[4]) {
    asm volatile("ld.relaxed.gpu.global.v2.u64 {%0, %1}, [%2];" : "=l"(w[0]), "=l"(w[1]) : "l"(p) : "memory");
    asm volatile("ld.relaxed.gpu.global.v2.u64 {%0, %1}, [%2];" : "=l"(w[2]), "=l"(w[3]) : "l"(p + 2) : "memory");
}
/* whether all four carry epoch ep */
static __device__ __forceinline__ bool ds_qf4_ok(const unsigned long long (&w)[4], unsigned ep) {
    return (unsigned)(w[0] >> 32) == ep && (unsigned)(w[1] >> 32) == ep && (unsigned)(w[2] >> 32) == ep &&
           (unsigned)(w[3] >> 32) == ep;
}
static __device__ __forceinline__ float4 ds_qf4_val(const unsigned long long (&w)[4]) {
    return make_float4(__uint_as_float((unsigned)w[0]), __uint_as_float((unsigned)w[1]), __uint_as_float((unsigned)w[2]),
                       __uint_as_float((unsigned)w[3]));
}
/* 4 consecutive q values at p (16-byte aligned) once all four carry epoch ep */
static __device__ __forceinline__ float4 ds_get_qf4(const unsigned long long *p, unsigned ep) {
    unsigned long long w[4];
    for (;;) {
        ds_load_qf4(p, w);
        if (ds_qf4_ok(w, ep)) break;
    }
    return ds_qf4_val(w);
}

/* ---- the projection phases: units, tiles and their weight rows ---- */
struct ds_wph {
    int U, K, pair, tu; /* units, input width, unit = 2 rows, units per tile */
};

static __device__ __forceinline__ ds_wph ds_phase(const ds_args &a, int ph) {
    ds_wph p;
    p.pair = ph == PH_QKV || ph == PH_GU;
    switch (ph) {
    case PH_QKV: p.K = a.D, p.U = (a.H + 2 * a.KV) * (DS_HD / 2); break;
    case PH_O: p.K = a.H * DS_HD, p.U = a.D; break;
    case PH_CQ: p.K = a.D, p.U = a.CH * DS_HD; break;
    case PH_CO: p.K = a.CH * DS_HD, p.U = a.D; break;
    case PH_GU: p.K = a.D, p.U = a.I; break;
    case PH_OUT: p.K = a.D, p.U = a.NO; break;
    default: p.K = a.I, p.U = a.D; break;
    }
    int rows = DS_STAGE / (2 * p.K);
    if (rows > 8) rows = 8;
    p.tu = p.pair ? rows / 2 : rows;
    return p;
}

/* This block's units [u0, u1) of a phase. */
static __device__ __forceinline__ void ds_range(const ds_wph &p, int *u0, int *u1) {
    *u0 = (int)((long long)p.U * ds_bid() / ds_nb());
    *u1 = (int)((long long)p.U * (ds_bid() + 1) / ds_nb());
}

/* OPT 4194304 (the default): each phase's shape (ds_phase) and this block's units of it (ds_range), worked out
 * once at the start (the launch's sizes are fixed) instead of at each phase: ds_range's two 64-bit divisions (a
 * called subroutine each) and ds_phase's division came between a phase's normed input and its first tile
 * (~0.4 us, DEBUG & 8 marks). Eighteenth session, H100, same binary, dia_generate B = 1: +1.5% at frames
 * 20..220 (780.8 / 781.7 vs 769.5 / 768.7 steps/s), +1.4% at 1400..1600 (729.8 / 730.1 vs 719.6 / 719.8) and
 * over a whole generation (710.4 vs 700.7). (The next normed phase's RMSNorm weights prefetched into L1 before
 * the grid barrier, OPT 8388608 on branch wip/ph-sh: -0.4%, not kept.) */
#define DS_OPT_PH_SH 4194304
static __shared__ ds_wph ds_ph_sh[7];
static __shared__ int ds_rg_sh[7][2];
static __device__ __forceinline__ ds_wph ds_phase_of(const ds_args &a, int ph) {
    return (a.opt & DS_OPT_PH_SH) ? ds_ph_sh[ph] : ds_phase(a, ph);
}
static __device__ __forceinline__ void ds_range_of(const ds_args &a, int ph, const ds_wph &p, int *u0, int *u1) {
    if (a.opt & DS_OPT_PH_SH) *u0 = ds_rg_sh[ph][0], *u1 = ds_rg_sh[ph][1];
    else ds_range(p, u0, u1);
}

/* Units of one head in the q|k|v phase (DS_HD / 2 RoPE pairs) or the cross q phase (DS_HD rows). */
static __device__ __forceinline__ int ds_head_units(int ph) { return ph == PH_QKV ? DS_HD / 2 : DS_HD; }

/* OPT 256 / 512: after the block's q|k|v (or cross q) epilogue, count its units of each head in hc. */
static __device__ void ds_publish_heads(const ds_args &a, int ph, unsigned *hc) {
    const ds_wph p = ds_phase_of(a, ph);
    const int per = ds_head_units(ph);
    int u0, u1;
    ds_range_of(a, ph, p, &u0, &u1);
    if (a.opt & 4096) u0 = max(u0, a.H * per); /* q goes with its epochs: only k and v are counted */
    if (u0 >= u1) return; /* (the same in every thread of the block) */
    ds_csync(); /* every thread's stores of the phase, before the release below (cumulative) */
    if (threadIdx.x != 0) return;
    if (a.opt & 1024) { /* one fence for the block's heads, then relaxed adds (a release pattern) */
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
        for (int u = u0; u < u1;) {
            const int h = u / per, e = min(u1, (h + 1) * per);
            asm volatile("red.relaxed.gpu.global.add.u32 [%0], %1;" ::"l"(hc + h), "r"(e - u) : "memory");
            u = e;
        }
        return;
    }
    for (int u = u0; u < u1;) {
        const int h = u / per, e = min(u1, (h + 1) * per);
        asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(hc + h), "r"(e - u) : "memory");
        u = e;
    }
}

/* Units in the tile starting at u (a q|k|v tile stays inside one head). */
static __device__ __forceinline__ int ds_tile_units(const ds_wph &p, int ph, int u, int u1) {
    int n = min(p.tu, u1 - u);
    if (ph == PH_QKV) n = min(n, DS_HD / 2 - (u & (DS_HD / 2 - 1)));
    return n;
}

/* The first weight row of a tile (and of its second half for pair phases). */
static __device__ __forceinline__ void ds_tile_rows(const ds_args &a, const ds_layer &L, int ph, const ds_wph &p, int u,
                                                    const __nv_bfloat16 **r1, const __nv_bfloat16 **r2) {
    const size_t K = (size_t)p.K;
    *r2 = NULL;
    switch (ph) {
    case PH_QKV: {
        const int hh = u / (DS_HD / 2), j = u % (DS_HD / 2);
        const __nv_bfloat16 *W = hh < a.H ? L.w[0] : hh < a.H + a.KV ? L.w[1] : L.w[2];
        const int h0 = hh < a.H ? hh : hh < a.H + a.KV ? hh - a.H : hh - a.H - a.KV;
        const size_t row = (size_t)h0 * DS_HD + j;
        *r1 = W + row * K, *r2 = W + (row + DS_HD / 2) * K;
        break;
    }
    case PH_GU: *r1 = L.w[6] + (size_t)u * K, *r2 = L.w[6] + ((size_t)a.I + u) * K; break;
    case PH_O: *r1 = L.w[3] + (size_t)u * K; break;
    case PH_CQ: *r1 = L.w[4] + (size_t)u * K; break;
    case PH_CO: *r1 = L.w[5] + (size_t)u * K; break;
    case PH_OUT: *r1 = a.ow + (size_t)u * K; break;
    default: *r1 = L.w[7] + (size_t)u * K; break;
    }
}

static __device__ const int ds_order[6] = {PH_QKV, PH_O, PH_CQ, PH_CO, PH_GU, PH_DOWN};

/* The weight stream: a cursor over every weight tile of the step in the phases' order, kept in
 * shared memory and moved by one thread only (DS_ISSUER), which issues each tile into the ring
 * stage the tile DS_STAGES earlier has just left (the stage is free once every warp has passed that
 * tile's barrier). */
struct ds_cursor {
    int u0[6], u1[6], K[6], tu[6]; /* this block's units of each phase (ds_order), K, units per tile */
    int l, i, u;                   /* layer, phase, next unit (-1: the phase's first) */
    int s;                         /* stage of the next tile */
    uint64_t pol;                  /* L2 policy: weights are read once per step */
    int hu, hu1, htu;              /* the logits head's tiles after the layers' (ds_next_head) */
};

static __device__ void ds_cursor_init(const ds_args &a, ds_cursor &c) {
    for (int i = 0; i < 6; i++) {
        const ds_wph p = ds_phase(a, ds_order[i]);
        ds_range(p, &c.u0[i], &c.u1[i]);
        c.K[i] = p.K, c.tu[i] = p.tu;
    }
    c.l = 0, c.i = 0, c.u = -1, c.s = 0;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(c.pol));
    const ds_wph p = ds_phase(a, PH_OUT);
    ds_range(p, &c.hu, &c.hu1);
    c.htu = p.tu;
    if (!a.ow) c.hu1 = c.hu;
}

/* The cursor's tile (its rows r1 and, for pair phases, r2, `bytes` each), and move on; returns the
 * number of tiles to keep in flight with it (WS; >= 1), 0 past the last tile. */
static __device__ int ds_next(const ds_args &a, ds_cursor &c, const __nv_bfloat16 **r1, const __nv_bfloat16 **r2,
                              unsigned *bytes) {
    while (c.l < a.nl) { /* the next phase with units for this block */
        if (c.u < 0) c.u = c.u0[c.i];
        if (c.u < c.u1[c.i]) break;
        c.u = -1;
        if (++c.i == 6) c.i = 0, c.l++;
    }
    if (c.l >= a.nl) return 0;
    const int ph = ds_order[c.i], K = c.K[c.i];
    ds_wph p;
    p.K = K, p.tu = c.tu[c.i], p.pair = ph == PH_QKV || ph == PH_GU, p.U = 0;
    const int n = ds_tile_units(p, ph, c.u, c.u1[c.i]);
    ds_tile_rows(a, a.L[c.l], ph, p, c.u, r1, r2);
    *bytes = (unsigned)n * (unsigned)K * 2u;
    /* WS: the tiles in flight while this one is (infl2: F2 for the tiles past the first `skip` of the
     * phases in its mask) */
    const int f = (a.infl2 >> c.i) & 1 && c.u - c.u0[c.i] >= (a.infl2 >> 16) * p.tu ? (a.infl2 >> 8) & 15 : a.infl;
    c.u += n;
    return f;
}

/* The logits head's next tile (after every layer's, in a loop of its own so that ds_next stays as
 * it is: the producer's registers are few); 0 past the last. */
static __device__ __forceinline__ int ds_next_head(const ds_args &a, ds_cursor &c, const __nv_bfloat16 **r1,
                                                   unsigned *bytes) {
    if (c.hu >= c.hu1) return 0;
    const int n = min(c.htu, c.hu1 - c.hu);
    *r1 = a.ow + (size_t)c.hu * a.D;
    *bytes = (unsigned)n * (unsigned)a.D * 2u;
    c.hu += n;
    return 1;
}

static __device__ __forceinline__ void ds_l2_prefetch(const void *p, unsigned bytes) {
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
}

/* Issue the cursor's tile into its stage and move on (nothing past the last tile). */
static __device__ void ds_issue(const ds_args &a, ds_cursor &c, unsigned char *ring, uint64_t *full) {
    const __nv_bfloat16 *r1, *r2 = NULL;
    unsigned bytes;
    if (!ds_next(a, c, &r1, &r2, &bytes) && !ds_next_head(a, c, &r1, &bytes)) return;
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); /* the stage's reads before the copy */
    mb_expect_tx(&full[c.s], r2 ? 2 * bytes : bytes);
    unsigned char *dst = ring + (size_t)c.s * DS_STAGE;
    bulk_load(dst, r1, bytes, &full[c.s], c.pol);
    if (r2) bulk_load(dst + bytes, r2, bytes, &full[c.s], c.pol);
    if (++c.s == DS_STAGES) c.s = 0;
}

/* The thread that moves the weight stream: the last warp's first lane (the epilogues run in warp 0). */
#define DS_ISSUER (DS_THREADS - 32)

struct ds_ring {
    unsigned char *ring;
    uint64_t *full;
    ds_cursor *cur;  /* shared; DS_ISSUER's */
    uint64_t *empty; /* WS: [nst] a stage's tile is consumed (one arrival) */
    int nst;         /* WS: stages */
    int s;
    unsigned par;
    unsigned tile;
};

/* The producer's copy of tile n (r2: its second half for pair phases, or NULL) into stage n % C, once
 * the stage is free (every warp has passed tile n - C) and at most F tiles are in flight. */
static __device__ __forceinline__ void ds_produce_tile(unsigned n, unsigned C, unsigned F, unsigned char *ring, uint64_t *full,
                                                       uint64_t *empty, const __nv_bfloat16 *r1, const __nv_bfloat16 *r2,
                                                       unsigned bytes, uint64_t pol) {
    const unsigned s = n % C;
    if (n >= C) mb_wait(&empty[s], (n / C - 1u) & 1u);
    if (n >= F) mb_wait(&full[(n - F) % C], ((n - F) / C) & 1u);
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    mb_expect_tx(&full[s], r2 ? 2 * bytes : bytes);
    unsigned char *dst = ring + (size_t)s * DS_STAGE;
    bulk_load(dst, r1, bytes, &full[s], pol);
    if (r2) bulk_load(dst + bytes, r2, bytes, &full[s], pol);
}
/* WS: the producer (the first thread of the producer warp group) issues every weight tile of the step
 * in order: tile n into stage n % nst once the tile nst earlier has been consumed (empty) and the
 * tile infl earlier has landed (full). */
static __device__ __noinline__ void ds_produce(const ds_args &a, unsigned char *ring, uint64_t *full, uint64_t *empty) {
    ds_cursor c;
    ds_cursor_init(a, c);
    const unsigned C = (unsigned)a.nst, F = (unsigned)a.infl;
    const __nv_bfloat16 *r1, *r2;
    unsigned bytes, n = 0, f;
    for (; (f = (unsigned)ds_next(a, c, &r1, &r2, &bytes)) != 0u; n++) ds_produce_tile(n, C, f, ring, full, empty, r1, r2, bytes, c.pol);
#ifndef DS_NO_HEAD_CODE
    for (; ds_next_head(a, c, &r1, &bytes); n++) ds_produce_tile(n, C, F, ring, full, empty, r1, NULL, bytes, c.pol); /* the logits head */
#endif
    if (n) mb_wait(&full[(n - 1u) % C], ((n - 1u) / C) & 1u); /* the last copy has landed */
}

/* One step of a transposed warp reduction: lanes with `off` set keep the upper half of v. */
template <int H, int N>
static __device__ __forceinline__ void ds_fold(float (&v)[N], int lane, int off) {
    const bool hi = lane & off;
#pragma unroll
    for (int i = 0; i < H; i++) {
        const float send = hi ? v[i] : v[i + H], keep = hi ? v[i + H] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, off);
    }
}
/* The warp sums of 16 values in 16 shuffles (not 80): the sum of v[(lane >> 1) & 15] ends in v[0]. */
static __device__ __forceinline__ float ds_warp_sum16(float (&v)[16], int lane) {
    ds_fold<8>(v, lane, 16);
    ds_fold<4>(v, lane, 8);
    ds_fold<2>(v, lane, 4);
    ds_fold<1>(v, lane, 2);
    return v[0] + __shfl_xor_sync(0xffffffffu, v[0], 1);
}

/* The embedding sum x = sum_c emb[c][tok[:, c]] (as k_embed: the tables in order, ids outside the
 * vocabulary skipped), all of it, into this block's xe (read back through L2 like any x): every
 * table's load of a thread's 8 values in flight at once. ids: shared int [2 * C]. */
static __device__ __forceinline__ float *ds_embed(const ds_args &a, int *ids) {
    float *xe = a.xe + (size_t)ds_bid() * 2 * a.D;
    if (threadIdx.x < 2 * a.C) ids[threadIdx.x] = __ldg(a.tok + threadIdx.x);
    ds_csync();
    for (int j = threadIdx.x * 8; j < 2 * a.D; j += DS_THREADS * 8) {
        const int m = j / a.D, k0 = j % a.D; /* (D is a multiple of 256) */
        int id[DS_MAXC];
        uint4 e[DS_MAXC];
#pragma unroll
        for (int c = 0; c < DS_MAXC; c++) {
            id[c] = c < a.C ? ids[m * a.C + c] : -1;
            if (id[c] >= 0 && id[c] < a.V) e[c] = __ldg((const uint4 *)(a.emb[c] + (size_t)id[c] * a.D + k0));
        }
        float v[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int c = 0; c < DS_MAXC; c++) {
            if (!(id[c] >= 0 && id[c] < a.V)) continue;
            const __nv_bfloat162 *w2 = (const __nv_bfloat162 *)&e[c];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float2 f = __bfloat1622float2(w2[i]);
                v[2 * i] = c == 0 ? f.x : v[2 * i] + f.x, v[2 * i + 1] = c == 0 ? f.y : v[2 * i + 1] + f.y;
            }
        }
        ((float4 *)(xe + j))[0] = make_float4(v[0], v[1], v[2], v[3]);
        ((float4 *)(xe + j))[1] = make_float4(v[4], v[5], v[6], v[7]);
    }
    ds_csync(); /* (the block's loads of xe come after its stores) */
    return xe;
}

/* OPT 16777216 (the default): the RMSNorm factor as rsqrt(t * (1 / D) + eps) (1 / D worked out once at the start:
 * the normed phases' K is D) instead of 1 / sqrt(t / K + eps): one double rsqrt instead of two divisions and a
 * square root on the way from a phase's input to its epilogue. The same value where D is a power of two (t / D
 * exact), up to rsqrt's last bit in double (the factor is then rounded to float; the op-by-op path and the CPU
 * keep 1 / sqrt). Eighteenth session, H100, same binary, dia_generate B = 1: +1.0% at frames 20..220 (789.6 /
 * 787.9 / 787.9 vs 781.7 / 781.8 / 780.1 steps/s), +0.8% at 1400..1600 (729.1 / 729.0 / 729.7 vs 723.3 / 722.5
 * / 724.7), +0.9% over a whole generation (710.7 vs 704.7). */
#define DS_OPT_RSQRT 16777216
static __shared__ double ds_rd_sh;

/* The RMSNorm factor of row m from the warps' sums of squares in sred [DS_CWARPS][2]. Called after a normed
 * phase's first tile's block barrier, not after a barrier of its own before the tile: each warp starts on the
 * first tile once its own input has come, and the sums and the rsqrt can overlap the epilogue's sums of the
 * warps' partials. Eighteenth session, H100, against the kernel before (built beside it), dia_generate B = 1:
 * +1.4% at frames 20..220 (797.7 / 797.9 / 797.9 vs 786.9 / 787.3 / 787.1 steps/s), +2.3% at 1400..1600
 * (746.6 / 747.6 / 746.3 vs 730.1 / 729.9 / 729.9), +1.9% over a whole generation (724.2 vs 710.7). */
static __device__ __forceinline__ float ds_norm_inv(const ds_args &a, const float *sred, int K, int m) {
    float t = 0.0f;
    for (int i = 0; i < DS_CWARPS; i++) t += sred[i * 2 + m];
    if (a.opt & DS_OPT_RSQRT) return (float)rsqrt(fma((double)t, ds_rd_sh, (double)a.eps));
    return (float)(1.0 / sqrt((double)t / (double)K + (double)a.eps));
}

/* One projection phase for this block. xin: f32 [2, K] rows `xs` apart (written in this kernel:
 * read through L2); g: the RMSNorm scale (NULL: no norm). red: shared [2][DS_CWARPS][16],
 * sred: shared [DS_CWARPS][2]. */
template <int KCW, int WS>
static __device__ __forceinline__ void ds_gemv(const ds_args &a, const ds_layer &L, int ph, const float *xin, int xs,
                                               const float *g, ds_ring &rg_, float *red, float *sred, const double *rope,
                                               float *xo) {
    ds_ring rg = rg_; /* in registers for the phase (the caller's copy is in memory when not inlined) */
    const int epi = !(a.dbg & 4);
    const ds_wph p = ds_phase_of(a, ph);
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, K = p.K, KCH = K >> 8;
    float xr[2][KCW][8];
    float ss[2] = {0.0f, 0.0f};
#pragma unroll
    for (int ci = 0; ci < KCW; ci++) {
        const int c = w + DS_CWARPS * ci;
#pragma unroll
        for (int m = 0; m < 2; m++) {
            if (c < KCH) {
                const int k0 = c * 256 + lane * 8;
                const float4 v0 = __ldcg((const float4 *)(xin + (size_t)m * xs + k0));
                const float4 v1 = __ldcg((const float4 *)(xin + (size_t)m * xs + k0) + 1);
                float v[8] = {v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w};
                if (g) {
                    const float4 g0 = __ldg((const float4 *)(g + k0)), g1 = __ldg((const float4 *)(g + k0) + 1);
                    const float gv[8] = {g0.x, g0.y, g0.z, g0.w, g1.x, g1.y, g1.z, g1.w};
#pragma unroll
                    for (int e = 0; e < 8; e++) ss[m] = fmaf(v[e], v[e], ss[m]), v[e] *= gv[e];
                }
#pragma unroll
                for (int e = 0; e < 8; e++) xr[m][ci][e] = v[e];
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) xr[m][ci][e] = 0.0f;
            }
        }
    }
    float inv = 1.0f; /* the RMSNorm factor of this thread's row in the epilogue (threadIdx.x & 1) */
    if (g) { /* the warps' sums of squares; the factor after the first tile's block barrier (ds_norm_inv) */
#pragma unroll
        for (int m = 0; m < 2; m++) {
            const float t = cu_warp_sum(ss[m]);
            if (lane == 0) sred[w * 2 + m] = t;
        }
    }
    int u0, u1;
    ds_range_of(a, ph, p, &u0, &u1);
    for (int u = u0; u < u1;) {
        const int n = ds_tile_units(p, ph, u, u1), nr = p.pair ? 2 * n : n;
        mb_wait(&rg.full[rg.s], rg.par);
        const unsigned char *st = rg.ring + (size_t)rg.s * DS_STAGE;
        float acc[8][2];
#pragma unroll
        for (int r = 0; r < 8; r++) acc[r][0] = acc[r][1] = 0.0f;
#pragma unroll
        for (int ci = 0; ci < KCW; ci++) {
            const int c = w + DS_CWARPS * ci;
            if (c >= KCH) break;
#pragma unroll
            for (int r = 0; r < 8; r++) {
                /* K <= 2048 (KCW 1): a tile's stage holds 8 rows, so all 8 are read (rows past nr are never
                 * summed), with no branch between the loads: ptxas can issue them all before the products */
                if (KCW > 1 && r >= nr) break;
                const uint4 wv = *(const uint4 *)(st + ((size_t)r * K + c * 256 + lane * 8) * 2);
                const __nv_bfloat162 *w2 = (const __nv_bfloat162 *)&wv;
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const float2 f = __bfloat1622float2(w2[e]);
#pragma unroll
                    for (int m = 0; m < 2; m++) {
                        acc[r][m] = fmaf(f.x, xr[m][ci][2 * e], acc[r][m]);
                        acc[r][m] = fmaf(f.y, xr[m][ci][2 * e + 1], acc[r][m]);
                    }
                }
            }
        }
        const int su = rg.s;
        if (++rg.s == (WS ? rg.nst : DS_STAGES)) rg.s = 0, rg.par ^= 1u;
        float *rb = red + (rg.tile & 1) * (DS_CWARPS * 16);
        rg.tile++;
        float v16[16];
#pragma unroll
        for (int r = 0; r < 8; r++) v16[2 * r] = acc[r][0], v16[2 * r + 1] = acc[r][1];
        const float tot = ds_warp_sum16(v16, lane);
        if (!(lane & 1)) rb[w * 16 + ((lane >> 1) & 15)] = tot;
        ds_csync(); /* every warp is done with the tile's stage: the tile DS_STAGES ahead goes there */
        if (g && u == u0) inv = ds_norm_inv(a, sred, K, threadIdx.x & 1); /* (every warp's sums of squares are in) */
        if (threadIdx.x == DS_ISSUER) {
            if (WS) mb_arrive(&rg.empty[su]);
            else ds_issue(a, *rg.cur, rg.ring, rg.full);
        }
        const int t = threadIdx.x;
        if (t < 2 * n && epi) {
            /* the phase through an opaque move (a runtime switch in each inlined phase: the measured
             * configuration; in a shared, not inlined instance it keeps the compiler from unswitching
             * the tile loop into one copy per phase) */
            int phe, pair;
            asm volatile("mov.b32 %0, %1;" : "=r"(phe) : "r"(ph));
            asm volatile("mov.b32 %0, %1;" : "=r"(pair) : "r"(p.pair));
            const int i = t >> 1, m = t & 1;
            float v1 = 0.0f, v2 = 0.0f;
            for (int q = 0; q < DS_CWARPS; q++) {
                v1 += rb[q * 16 + i * 2 + m];
                if (pair) v2 += rb[q * 16 + (n + i) * 2 + m];
            }
            v1 *= inv, v2 *= inv; /* (m = threadIdx.x & 1) */
            switch (phe) {
            case PH_QKV: {
                const int hh = u / (DS_HD / 2), j = u % (DS_HD / 2) + i;
                float y1 = v1, y2 = v2;
                if (hh < a.H + a.KV) cu_rope_rot(rope[(m * (DS_HD / 2) + j) * 2], rope[(m * (DS_HD / 2) + j) * 2 + 1], (double)v1,
                                                 (double)v2, &y1, &y2);
                if (hh < a.H && (a.opt & 4096)) {
                    unsigned long long *qo = a.qf + (size_t)m * a.QW + (size_t)hh * DS_HD + j;
                    ds_put_qf(qo, y1, ds_ep_sh), ds_put_qf(qo + DS_HD / 2, y2, ds_ep_sh);
                } else if (hh < a.H) {
                    float *qo = a.q + (size_t)m * a.QW + (size_t)hh * DS_HD + j;
                    qo[0] = y1, qo[DS_HD / 2] = y2;
                } else {
                    const int kvh = hh < a.H + a.KV ? hh - a.H : hh - a.H - a.KV;
                    __nv_bfloat16 *cache = hh < a.H + a.KV ? L.kc : L.vc;
                    __nv_bfloat16 *co =
                        cache + (((size_t)m * a.KV + kvh) * a.S + (size_t)ds_len_sh[4 + m]) * DS_HD + j;
                    co[0] = __float2bfloat16_rn(y1), co[DS_HD / 2] = __float2bfloat16_rn(y2);
                }
                break;
            }
            case PH_GU: a.mlp[(size_t)m * a.I + u + i] = v1 / (1.0f + expf(-v1)) * v2; break;
            case PH_OUT: a.logits[(size_t)m * a.NO + u + i] = v1; break;
            case PH_CQ:
                if (a.opt & 4096) ds_put_qf(a.qf + (size_t)m * a.QW + u + i, v1, ds_ep_sh + 1u);
                else a.q[(size_t)m * a.QW + u + i] = v1;
                break;
            default: { /* o, cross o, down: the residual (this block's rows of x live in xo) */
                float *xr_ = xo + m * DS_XO + (u + i - u0);
                *xr_ += v1;
                a.x[(size_t)m * a.D + u + i] = *xr_;
            }
            }
        }
        u += n;
    }
    rg_ = rg;
}

/* A projection phase, inlined at each phase with the register tile that fits its K: one chunk of 256
 * per warp (K <= 2048, cu_decode_layers_ok), 4 for down (K = I <= 8192). Each phase has the one
 * instance (-DDS_BOTH_WIDTHS: both, picked by K at run time, as before): the kernel's SASS went from
 * 400 to 240 KB and its spills from 104 bytes to none (producer warp group): dia_generate B=1 706.0 vs
 * 701.7 steps/s at 21..220, 658.8 vs 656.5 at 1401..1500 (H100, one call, thirteenth session).
 * Measured against one not-inlined instance with 4 chunks for every K (smaller code): 530 vs 484
 * steps/s (H100, 6 stages then); the attention, by contrast, is one small not-inlined instance
 * (ds_attention). */
template <int WS>
static __device__ __forceinline__ void ds_project(const ds_args &a, const ds_layer &L, int ph, const float *xin, int xs,
                                                  const float *g, ds_ring &rg, float *red, float *sred, const double *rope,
                                                  float *xo) {
#ifdef DS_BOTH_WIDTHS
    if (ds_phase(a, ph).K <= 2048) ds_gemv<1, WS>(a, L, ph, xin, xs, g, rg, red, sred, rope, xo);
    else ds_gemv<4, WS>(a, L, ph, xin, xs, g, rg, red, sred, rope, xo);
#else /* one register tile per phase: K <= 2048 for all but down (cu_decode_layers_ok) */
    if (ph == PH_DOWN) ds_gemv<4, WS>(a, L, ph, xin, xs, g, rg, red, sred, rope, xo);
    else ds_gemv<1, WS>(a, L, ph, xin, xs, g, rg, red, sred, rope, xo);
#endif
}

/* DIA_CUDA_DECODE_STEP_DEBUG & 8: the time at mark k of the layer, by thread 0 of the block whose
 * marks pm points to (ds_prof_base). */
static __device__ __forceinline__ void ds_mark(unsigned long long *pm, int k) {
    if (pm && threadIdx.x == 0) {
        unsigned long long t;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
        pm[k] = t;
    }
}

/* This block's marks (DIA_CUDA_DECODE_STEP_DEBUG & 8: block 0's; & 16: every block's), or NULL. */
static __device__ __forceinline__ unsigned long long *ds_prof_base(const ds_args &a) {
    if (!a.prof || (!(a.dbg & 16) && ds_bid() != 0)) return NULL;
    return a.prof + (size_t)ds_bid() * (size_t)(a.nl * DS_PROF + 1);
}

/* ---- attention ----
 * A block per unit (row r, query heads g .. g + GU - 1 of one kv head, segment of DS_CWARPS chunks
 * of DS_CHUNK keys): GU is the fewest heads for which the units fit the grid (ds_att_unit). Warp w
 * takes chunk seg * DS_CWARPS + w; lane = 4 features of every key and value row of the chunk (the
 * scores summed over the lanes by a transposed reduction, which leaves key j's score on lane j, or
 * with 16-key chunks on lanes 2j and 2j + 1).
 * The warps' partials (max, sum, o) meet in shared memory; with one segment (<= 128 keys) the block
 * writes att, else it writes the segment's partial and the last block of the unit's (r, g) (a
 * counter in cnt) merges the segments. A warp's K and V rows are loaded into registers before the
 * grid barrier that precedes the phase (they do not depend on it; the one self-attention row
 * written in this step is read again after it). */
struct ds_kvreg {
    uint2 k[DS_CHUNK]; /* this lane's 4 features of every key row of the chunk */
    uint2 v[DS_CHUNK]; /* this lane's 4 features of every value row of the chunk */
};

struct ds_unit {
    int r, g, GU, kv, seg, nseg, Lr, c; /* query heads g .. g + GU - 1 of kv head kv; c: this warp's chunk */
};

/* Block unit u of an attention phase (u < total), or 0 past the end. A unit takes the fewest query
 * heads of a kv head (a divisor of G) for which every unit gets a block of its own, else all G
 * (the unit's blocks read the kv head's K and V rows G / GU times in all). */
static __device__ __forceinline__ int ds_att_unit(const int *len, int Hq, int G, int opt, int u, ds_unit *t) {
    const int L0 = len[0], L1 = len[1], span = DS_CHUNK * DS_CWARPS;
    const int s0 = (L0 + span - 1) / span, s1 = (L1 + span - 1) / span;
    int GU = opt & 32 ? G : 1; /* the fewest heads per unit that fit the grid (G if none) */
    while (GU < G && (Hq / GU * (s0 + s1) > (int)ds_nb() || G % GU)) GU++;
    const int Hu = Hq / GU;
    if (!t) return Hu * (s0 + s1); /* (t NULL: the number of units) */
    if (u >= Hu * (s0 + s1)) return 0;
    t->r = u < Hu * s0 ? 0 : 1;
    const int uu = t->r ? u - Hu * s0 : u;
    t->nseg = t->r ? s1 : s0, t->Lr = t->r ? L1 : L0;
    t->GU = GU, t->g = uu / t->nseg * GU, t->kv = t->g / G, t->seg = uu % t->nseg;
    t->c = t->seg * DS_CWARPS + (threadIdx.x >> 5);
    return 1;
}
/* The block's first unit of the self- (0) and the cross-attention (1), worked out once at the start (the
 * launch's lengths are fixed): ds_att_unit's divisions took ~0.5 us, twice, on the way to each phase's q
 * (seventeenth session, DEBUG & 8). c: the calling warp's chunk. */
static __shared__ ds_unit ds_u0_sh[2];
static __shared__ int ds_u0_has_sh[2];
/* OPT 67108864 (the default): the number of units of the self- (0) and the cross-attention (1), worked out at the
 * start, so that a block sees that it has no further unit without ds_att_unit's divisions (on its way to the grid
 * barrier after the phase), and the block barriers that only a further unit needs are left out (and, with 4096,
 * the one after q came in). Eighteenth session, H100, same binary, dia_generate B = 1: +0.9% at frames 20..220
 * (801.4 / 801.6 / 801.5 vs 793.6 / 794.7 / 794.4 steps/s), +1.2% at 1400..1600 (743.0 / 743.5 / 744.9 vs 734.5 /
 * 734.7 / 736.0), +1.1% over a whole generation (723.2 vs 715.6). */
#define DS_OPT_ATT_SYNC 67108864
static __shared__ int ds_natt_sh[2];
static __device__ __forceinline__ int ds_first_unit(int ph, ds_unit *t) {
    *t = ds_u0_sh[ph];
    t->c = t->seg * DS_CWARPS + (threadIdx.x >> 5);
    return ds_u0_has_sh[ph];
}
/* OPT 4096: this thread's 4 q pairs of unit t (threads < t.GU * 32) */
static __device__ __forceinline__ const unsigned long long *ds_unit_qf(const ds_args &a, const ds_unit &t) {
    return a.qf + (size_t)t.r * a.QW + (size_t)t.g * DS_HD + 4 * threadIdx.x;
}

/* OPT 32768 (DS_CHUNK 16, units of >= 2 heads): the warp's K and V rows in the layout of the tensor-core
 * attention (ds_heads_mma), lane = (g, t) = (lane / 4, lane % 4):
 *   R.k[s], R.k[8 + s] (s < 8): features 16 s + 4 t .. + 3 of key rows g and g + 8 (the A fragments of
 *     S^T = K Q^T: k-index 2t, 2t + 1 <-> features 16 s + 4t, + 1; 2t + 8, 2t + 9 <-> + 2, + 3);
 *   R.v as 8 uint4, index 2 i + h: features 8 g + 64 h .. + 7 of key row ri(i) = 2t, 2t + 1, 2t + 8, 2t + 9
 *     (the B fragments of O = P V, output column g of n-tile n <-> feature 8 g + 64 (n / 8) + n % 8).
 * Rows past the end: the last row (masked). Each load instruction reads whole 32-byte sectors. */
static __device__ __forceinline__ void ds_kv_row_mma(const __nv_bfloat16 *kc, const __nv_bfloat16 *vc, size_t base, int row, int which,
                                                     ds_kvreg &R) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    if (which < 2) { /* K row g (which 0) or g + 8 (1) */
        const uint2 *kr = (const uint2 *)(kc + base + (size_t)row * DS_HD);
#pragma unroll
        for (int s = 0; s < 8; s++) R.k[8 * which + s] = __ldcg(kr + 4 * s + t);
    } else { /* V row ri = which - 2 */
        const uint4 *vr = (const uint4 *)(vc + base + (size_t)row * DS_HD);
        const int i = which - 2;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const uint4 x = __ldcg(vr + g + 8 * h);
            R.v[2 * (2 * i + h)] = make_uint2(x.x, x.y), R.v[2 * (2 * i + h) + 1] = make_uint2(x.z, x.w);
        }
    }
}
/* OPT 32768: does unit t run on tensor cores? Only units of >= 2 query heads (the full model's past
 * ~512 keys); a unit of one head would use 1 of the mma's 8 head columns (all units on tensor cores:
 * -3% at frames 20..220; >= 4 heads instead of >= 2: the same speed; sixteenth session, H100). */
static __device__ __forceinline__ bool ds_use_mma(int opt, const ds_unit &t) {
    return DS_CHUNK == 16 && (opt & 32768) && t.GU >= 2;
}
static __device__ __forceinline__ int ds_mma_key(int which, int lane) { /* the chunk's key of lane's ds_kv_row_mma part */
    const int g = lane >> 2, t = lane & 3;
    return which == 0 ? g : which == 1 ? g + 8 : 2 * t + ((which - 2) & 1) + ((which - 2) >> 1) * 8;
}
static __device__ __forceinline__ int ds_mma_row(int which, int c, int Lr) { /* ... its cache row (past the end: the last) */
    return min(c * DS_CHUNK + ds_mma_key(which, threadIdx.x & 31), Lr - 1);
}

/* This warp's K and V rows of chunk t.c (rows past the end: the last row, masked later): lane = 4
 * features of every row (coalesced: each load is one 256-byte row). */
static __device__ __forceinline__ void ds_att_load(const __nv_bfloat16 *kc, const __nv_bfloat16 *vc, int Hkv, int Scap,
                                                   const ds_unit &t, ds_kvreg &R, int opt) {
    const int lane = threadIdx.x & 31;
    if (t.c * DS_CHUNK >= t.Lr) return;
    if (ds_use_mma(opt, t)) {
        const size_t base = ((size_t)t.r * Hkv + t.kv) * (size_t)Scap * DS_HD;
#pragma unroll
        for (int which = 0; which < 6; which++) ds_kv_row_mma(kc, vc, base, ds_mma_row(which, t.c, t.Lr), which, R);
        return;
    }
    const size_t base = ((size_t)t.r * Hkv + t.kv) * (size_t)Scap * DS_HD;
    const uint2 *kr = (const uint2 *)(kc + base) + lane, *vr = (const uint2 *)(vc + base) + lane;
#pragma unroll
    for (int j = 0; j < DS_CHUNK; j++) R.k[j] = __ldcg(kr + (size_t)min(t.c * DS_CHUNK + j, t.Lr - 1) * (DS_HD / 4));
#pragma unroll
    for (int j = 0; j < DS_CHUNK; j++) R.v[j] = __ldcg(vr + (size_t)min(t.c * DS_CHUNK + j, t.Lr - 1) * (DS_HD / 4));
}

/* L2 prefetch of the K and V rows of this block's units of an attention phase (DIA_CUDA_DECODE_STEP_OPT
 * 2): issued at the layer's start, so that its loads do not wait behind the weight stream in
 * the memory queues. */
static __device__ __forceinline__ void ds_pf_att(const __nv_bfloat16 *kc, const __nv_bfloat16 *vc, int Hq, int Hkv,
                                                 int Scap, const int *len, int opt) {
    if (threadIdx.x != 0) return;
    ds_unit t;
    for (int u = ds_bid(); ds_att_unit(len, Hq, Hq / Hkv, opt, u, &t); u += ds_nb()) {
        if (t.g % (Hq / Hkv)) continue; /* the kv head's first unit prefetches */
        const int k0 = t.seg * DS_CHUNK * DS_CWARPS, k1 = min(t.Lr, k0 + DS_CHUNK * DS_CWARPS);
        if (k1 <= k0) continue;
        const size_t off = (((size_t)t.r * Hkv + t.kv) * (size_t)Scap + k0) * DS_HD;
        const unsigned bytes = (unsigned)(k1 - k0) * DS_HD * 2u;
        ds_l2_prefetch(kc + off, bytes);
        ds_l2_prefetch(vc + off, bytes);
    }
}

/* The loads of this block's first unit of a phase, before the barrier that precedes it. */
static __device__ __forceinline__ void ds_att_prefetch(const __nv_bfloat16 *kc, const __nv_bfloat16 *vc, int Hq, int Hkv,
                                                       int Scap, int ph, int opt, ds_kvreg &R,
                                                       unsigned long long *pm = NULL, int mk = 0) {
    ds_unit t;
    const int has = ds_first_unit(ph, &t);
    ds_mark(pm, mk); /* (DEBUG & 8: the unit known) */
    if (has) ds_att_load(kc, vc, Hkv, Scap, t, R, opt);
}

/* Merge n partials (max, sum, o[128]) STRIDE floats apart at P (shared or global): lane = 4
 * features. The merged partial: max in *mo, sum in *lo, o (not yet divided by the sum) in *o4. */
template <bool GLOBAL, int STRIDE>
static __device__ __forceinline__ void ds_merge_parts(const float *P, int n, float4 *o4, float *mo, float *lo) {
    const int lane = threadIdx.x & 31;
    float M = -INFINITY;
    for (int c = lane; c < n; c += 32) M = fmaxf(M, GLOBAL ? __ldcg(P + (size_t)c * STRIDE) : P[(size_t)c * STRIDE]);
    M = cu_warp_max(M);
    float l = 0.0f;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 1
    for (int c = 0; c < n; c++) {
        const float *Pc = P + (size_t)c * STRIDE;
        const float mc = GLOBAL ? __ldcg(Pc) : Pc[0], lc = GLOBAL ? __ldcg(Pc + 1) : Pc[1];
        const float4 v = GLOBAL ? __ldcg((const float4 *)(Pc + 4) + lane) : ((const float4 *)(Pc + 4))[lane];
        const float e = mc == -INFINITY ? 0.0f : expf(mc - M);
        l = fmaf(lc, e, l);
        o.x = fmaf(v.x, e, o.x), o.y = fmaf(v.y, e, o.y), o.z = fmaf(v.z, e, o.z), o.w = fmaf(v.w, e, o.w);
    }
    *o4 = o, *mo = M, *lo = l;
}

/* ds_merge_parts<true> (the segments' partials in global memory, read through L2) with the loads
 * issued in batches: lane c < n reads partial c's max and sum, and every lane its 4 features of
 * DS_MERGE_BATCH partials at once, so n <= DS_MERGE_BATCH partials (1024 keys) cost one L2 round
 * trip instead of one for the maxima and one per partial. The same sums in the same order. */
#define DS_MERGE_BATCH 8
template <int STRIDE>
static __device__ __forceinline__ void ds_merge_global(const float *P, int n, float4 *o4, float *mo, float *lo) {
    if (n > 32) {
        ds_merge_parts<true, STRIDE>(P, n, o4, mo, lo);
        return;
    }
    const int lane = threadIdx.x & 31;
    const float mc = lane < n ? __ldcg(P + (size_t)lane * STRIDE) : -INFINITY;
    const float lc = lane < n ? __ldcg(P + (size_t)lane * STRIDE + 1) : 0.0f;
    float4 v[DS_MERGE_BATCH];
    float l = 0.0f, M = -INFINITY, e = 0.0f;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 1
    for (int c0 = 0; c0 < n; c0 += DS_MERGE_BATCH) {
#pragma unroll
        for (int j = 0; j < DS_MERGE_BATCH; j++)
            v[j] = __ldcg((const float4 *)(P + (size_t)min(c0 + j, n - 1) * STRIDE + 4) + lane);
        if (c0 == 0) {
            M = cu_warp_max(mc);
            e = mc == -INFINITY ? 0.0f : expf(mc - M);
        }
#pragma unroll
        for (int j = 0; j < DS_MERGE_BATCH; j++) {
            if (c0 + j >= n) break;
            const float ej = __shfl_sync(0xffffffffu, e, c0 + j), lj = __shfl_sync(0xffffffffu, lc, c0 + j);
            l = fmaf(lj, ej, l);
            o.x = fmaf(v[j].x, ej, o.x), o.y = fmaf(v[j].y, ej, o.y), o.z = fmaf(v[j].z, ej, o.z), o.w = fmaf(v[j].w, ej, o.w);
        }
    }
    *o4 = o, *mo = M, *lo = l;
}

/* OPT 2048 (the producer warp group's default): ds_merge_parts<false> over the DS_CWARPS warps' partials in shared memory
 * with every load issued at once (unrolled; the same sums in the same order). */
static __device__ __forceinline__ void ds_merge_warps(const float *P, float4 *o4, float *mo, float *lo) {
    const int lane = threadIdx.x & 31;
    float mc[DS_CWARPS], lc[DS_CWARPS];
    float4 v[DS_CWARPS];
#pragma unroll
    for (int c = 0; c < DS_CWARPS; c++) {
        const float *Pc = P + (size_t)c * DS_MAXG * DS_PSTRIDE;
        mc[c] = Pc[0], lc[c] = Pc[1], v[c] = ((const float4 *)(Pc + 4))[lane];
    }
    float M = -INFINITY;
#pragma unroll
    for (int c = 0; c < DS_CWARPS; c++) M = fmaxf(M, mc[c]);
    M = cu_warp_max(M); /* (every lane holds the same maxima: as ds_merge_parts' lanes < n) */
    float l = 0.0f;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int c = 0; c < DS_CWARPS; c++) {
        const float e = mc[c] == -INFINITY ? 0.0f : expf(mc[c] - M);
        l = fmaf(lc[c], e, l);
        o.x = fmaf(v[c].x, e, o.x), o.y = fmaf(v[c].y, e, o.y), o.z = fmaf(v[c].z, e, o.z), o.w = fmaf(v[c].w, e, o.w);
    }
    *o4 = o, *mo = M, *lo = l;
}

static __device__ __forceinline__ void ds_put_att(const ds_args &a, int r, int h, float4 o, float l) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    ((float4 *)(a.att + (size_t)r * a.QW + (size_t)h * DS_HD))[threadIdx.x & 31] =
        make_float4(o.x * inv, o.y * inv, o.z * inv, o.w * inv);
}

/* Query heads hq .. hq + NH - 1 of a unit over this warp's chunk: this lane's 4 features of q . k
 * for every key, summed over the lanes with the key index landing on its lane (31 shuffles; 16-key
 * chunks: 15 + 1), the chunk's softmax and its values into the warp's partials Pw. */
template <int NH>
static __device__ __forceinline__ void ds_heads(const float *qsm, const ds_kvreg &R, uint2 kl, uint2 vl, bool fix, int jl,
                                                bool valid, int lane, float *Pw, int hq) {
    float sj[NH][DS_CHUNK];
#pragma unroll
    for (int h = 0; h < NH; h++) {
        const float4 qv = ((const float4 *)(qsm + (hq + h) * DS_HD))[lane];
#pragma unroll
        for (int j = 0; j < DS_CHUNK; j++) {
            const uint2 kj = fix && j >= jl ? kl : R.k[j]; /* rows past the end: row Lr - 1 too */
            const float2 ka = __bfloat1622float2(*(const __nv_bfloat162 *)&kj.x);
            const float2 kb = __bfloat1622float2(*(const __nv_bfloat162 *)&kj.y);
            sj[h][j] = fmaf(qv.x, ka.x, qv.y * ka.y) + fmaf(qv.z, kb.x, qv.w * kb.y);
        }
    }
#pragma unroll
    for (int h = 0; h < NH; h++) {
        if constexpr (DS_CHUNK == 32) {
            ds_fold<16>(sj[h], lane, 16);
            ds_fold<8>(sj[h], lane, 8);
            ds_fold<4>(sj[h], lane, 4);
            ds_fold<2>(sj[h], lane, 2);
            ds_fold<1>(sj[h], lane, 1);
        } else { /* 16 keys: key (lane >> 1) & 15 on both lanes of a pair */
            ds_fold<8>(sj[h], lane, 16);
            ds_fold<4>(sj[h], lane, 8);
            ds_fold<2>(sj[h], lane, 4);
            ds_fold<1>(sj[h], lane, 2);
            sj[h][0] += __shfl_xor_sync(0xffffffffu, sj[h][0], 1);
        }
    }
    float mx[NH], pr[NH], ls[NH], o[NH][4];
#pragma unroll
    for (int h = 0; h < NH; h++) mx[h] = cu_warp_max(valid ? sj[h][0] : -INFINITY); /* sj[h][0]: key kk's score */
#pragma unroll
    for (int h = 0; h < NH; h++) {
        pr[h] = valid ? expf(sj[h][0] - mx[h]) : 0.0f;
        /* DS_CHUNK 16: every key twice, paired last in the butterfly, so the sum is exactly 2x */
        ls[h] = DS_CHUNK == 32 ? cu_warp_sum(pr[h]) : 0.5f * cu_warp_sum(pr[h]);
        o[h][0] = o[h][1] = o[h][2] = o[h][3] = 0.0f;
    }
#pragma unroll
    for (int j = 0; j < DS_CHUNK; j++) {
        const uint2 vj = fix && j >= jl ? vl : R.v[j]; /* rows past the end: row Lr - 1 too */
        const float2 va = __bfloat1622float2(*(const __nv_bfloat162 *)&vj.x);
        const float2 vb = __bfloat1622float2(*(const __nv_bfloat162 *)&vj.y);
#pragma unroll
        for (int h = 0; h < NH; h++) {
            const float pj = __shfl_sync(0xffffffffu, pr[h], DS_CHUNK == 32 ? j : 2 * j);
            o[h][0] = fmaf(pj, va.x, o[h][0]), o[h][1] = fmaf(pj, va.y, o[h][1]);
            o[h][2] = fmaf(pj, vb.x, o[h][2]), o[h][3] = fmaf(pj, vb.y, o[h][3]);
        }
    }
#pragma unroll
    for (int h = 0; h < NH; h++) {
        float *P = Pw + (hq + h) * DS_PSTRIDE;
        if (lane == 0) P[0] = mx[h], P[1] = ls[h];
        ((float4 *)(P + 4))[lane] = make_float4(o[h][0], o[h][1], o[h][2], o[h][3]);
    }
}

/* OPT 32768: the GU (<= 8) query heads of a unit over this warp's 16-key chunk on tensor
 * cores (mma.m16n8k16, bf16 in, f32 accumulation): S^T[key][head] = K Q^T with q split into two bf16
 * parts (hi + lo: ~16 bits of q), the chunk's softmax in the accumulators, then O[head][f] = P V with P
 * split the same way and moved into the A layout by movmatrix. K and V are bf16, so the products are
 * those of the f32 path up to the split's rounding (~2^-17 relative) and the order of the sums.
 * R in the layout of ds_kv_row_mma; c0: the chunk's first key; the warp's partials to Pw as ds_heads. */
static __device__ __forceinline__ uint32_t ds_bf2(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(const uint32_t *)&v;
}
static __device__ __forceinline__ void ds_split2(float x, float y, uint32_t *h, uint32_t *l) {
    const __nv_bfloat16 xh = __float2bfloat16_rn(x), yh = __float2bfloat16_rn(y);
    *h = ds_bf2(__bfloat162float(xh), __bfloat162float(yh));
    *l = ds_bf2(x - __bfloat162float(xh), y - __bfloat162float(yh));
}
static __device__ __forceinline__ void ds_mma16816(float *c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                                   uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
static __device__ __forceinline__ uint32_t ds_trans8x8(uint32_t x) {
    uint32_t y;
    asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(y) : "r"(x));
    return y;
}
static __device__ __forceinline__ void ds_heads_mma(const float *qsm, const ds_kvreg &R, int GU, int c0, int Lr, float *Pw) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    float sc[4] = {0.0f, 0.0f, 0.0f, 0.0f}; /* S[key g][head 2t, 2t + 1], S[key g + 8][head 2t, 2t + 1] */
#pragma unroll
    for (int s = 0; s < 8; s++) {
        uint32_t bh0 = 0u, bh1 = 0u, bl0 = 0u, bl1 = 0u;
        if (g < GU) {
            const float4 q = *(const float4 *)(qsm + g * DS_HD + 16 * s + 4 * t);
            ds_split2(q.x, q.y, &bh0, &bl0);
            ds_split2(q.z, q.w, &bh1, &bl1);
        }
        ds_mma16816(sc, R.k[s].x, R.k[8 + s].x, R.k[s].y, R.k[8 + s].y, bh0, bh1);
        ds_mma16816(sc, R.k[s].x, R.k[8 + s].x, R.k[s].y, R.k[8 + s].y, bl0, bl1);
    }
    const bool v0 = c0 + g < Lr, v1 = c0 + g + 8 < Lr;
    float m0 = fmaxf(v0 ? sc[0] : -INFINITY, v1 ? sc[2] : -INFINITY); /* head 2t */
    float m1 = fmaxf(v0 ? sc[1] : -INFINITY, v1 ? sc[3] : -INFINITY); /* head 2t + 1 */
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) {
        m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, o));
        m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, o));
    }
    const float p0 = v0 ? expf(sc[0] - m0) : 0.0f, p1 = v0 ? expf(sc[1] - m1) : 0.0f;
    const float p2 = v1 ? expf(sc[2] - m0) : 0.0f, p3 = v1 ? expf(sc[3] - m1) : 0.0f;
    float l0 = p0 + p2, l1 = p1 + p3;
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, o);
        l1 += __shfl_xor_sync(0xffffffffu, l1, o);
    }
    /* P^T's two 8x8 blocks (keys 0-7, 8-15) as bf16 hi / lo, transposed into P[head g][keys 2t, 2t + 1] */
    uint32_t h01, l01, h23, l23;
    ds_split2(p0, p1, &h01, &l01);
    ds_split2(p2, p3, &h23, &l23);
    const uint32_t ah0 = ds_trans8x8(h01), al0 = ds_trans8x8(l01), ah2 = ds_trans8x8(h23), al2 = ds_trans8x8(l23);
    float o[16][4];
#pragma unroll
    for (int n = 0; n < 16; n++) {
        o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
        const int h = n >> 3, e = n & 7, wd = e >> 1;
        const unsigned sel = e & 1 ? 0x7632u : 0x5410u;
        uint32_t wv[4]; /* word wd of the uint4 (2 i + h) of V row ri(i) */
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint2 x = R.v[2 * (2 * i + h) + (wd >> 1)];
            wv[i] = wd & 1 ? x.y : x.x;
        }
        const uint32_t b0 = __byte_perm(wv[0], wv[1], sel), b1 = __byte_perm(wv[2], wv[3], sel);
        ds_mma16816(o[n], ah0, 0u, ah2, 0u, b0, b1);
        ds_mma16816(o[n], al0, 0u, al2, 0u, b0, b1);
    }
    /* the partials: head g's o (features 64 h + 16 t + e and + 8 + e of n-tile 8 h + e), heads 2t / 2t + 1's max and sum */
    if (g < GU) {
        float *P = Pw + g * DS_PSTRIDE + 4;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float *Ph = P + 64 * h + 16 * t;
            ((float4 *)Ph)[0] = make_float4(o[8 * h][0], o[8 * h + 1][0], o[8 * h + 2][0], o[8 * h + 3][0]);
            ((float4 *)Ph)[1] = make_float4(o[8 * h + 4][0], o[8 * h + 5][0], o[8 * h + 6][0], o[8 * h + 7][0]);
            ((float4 *)Ph)[2] = make_float4(o[8 * h][1], o[8 * h + 1][1], o[8 * h + 2][1], o[8 * h + 3][1]);
            ((float4 *)Ph)[3] = make_float4(o[8 * h + 4][1], o[8 * h + 5][1], o[8 * h + 6][1], o[8 * h + 7][1]);
        }
    }
    if (g == 0) {
        if (2 * t < GU) Pw[2 * t * DS_PSTRIDE] = m0, Pw[2 * t * DS_PSTRIDE + 1] = l0;
        if (2 * t + 1 < GU) Pw[(2 * t + 1) * DS_PSTRIDE] = m1, Pw[(2 * t + 1) * DS_PSTRIDE + 1] = l1;
    }
}

/* qsm: shared [DS_MAXG][128]; psm: shared [DS_CWARPS][DS_MAXG][DS_PSTRIDE]: each warp's partials;
 * R: the loads of the block's first unit (made before the barrier). self: the cache row at Lr - 1
 * was written in this kernel (after those loads): read again. The query heads of a unit go through
 * one rolled loop (one copy of the code: the kernel is large enough to miss in the instruction
 * cache). */
static __device__ __forceinline__ void ds_attend(const ds_args &a, const float *q, int Hq, int Hkv, const __nv_bfloat16 *kc,
                                                 const __nv_bfloat16 *vc, int Scap, const int *len, bool self, float *qsm,
                                                 float *psm, unsigned *cnt, int *flag, ds_kvreg &R,
                                                 const unsigned long long (&qp)[4], unsigned long long *pm, int mk,
                                                 unsigned hneed) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, G = Hq / Hkv;
    ds_unit t;
    int ok = ds_first_unit(self ? 0 : 1, &t);
    const bool lean = a.opt & DS_OPT_ATT_SYNC;
    const int nu = lean ? ds_natt_sh[self ? 0 : 1] : 0;
    for (int u = ds_bid(); ok; u += ds_nb(), ok = (!lean || u < nu) && ds_att_unit(len, Hq, G, a.opt, u, &t)) {
        const bool has = t.c * DS_CHUNK < t.Lr;
        if (hneed && (a.opt & 4096)) { /* OPT 4096: q with its epochs (the wait is the load); self: k, v counted */
            if (threadIdx.x < t.GU * 32) {
                const unsigned ep = ds_ep_sh + (self ? 0u : 1u);
                float4 qv;
                if (u == (int)ds_bid() && ds_qf4_ok(qp, ep)) qv = ds_qf4_val(qp); /* OPT 262144: loaded in time */
                else qv = ds_get_qf4(ds_unit_qf(a, t), ep);
                ((float4 *)qsm)[threadIdx.x] = qv;
            }
            if (self && threadIdx.x >= DS_THREADS - 32) { /* the last warp: lane 0 the k head, lane 1 the v head */
                const int i = threadIdx.x & 31;
                ds_wait_heads(a.hc + Hq + i * Hkv + t.kv, 2, hneed);
            }
            ds_csync();
        } else if (hneed) { /* OPT 256 / 512: the unit's heads done, instead of a grid barrier before the phase */
            if (threadIdx.x < 32) { /* lanes < GU: the query heads; self: lane GU the k head, GU + 1 the v head */
                const int i = threadIdx.x;
                const unsigned *ci = a.hc + (!self ? 32 + t.g + i : i < t.GU ? t.g + i : Hq + (i - t.GU) * Hkv + t.kv);
                ds_wait_heads(ci, self ? t.GU + 2 : t.GU, hneed);
            }
            ds_csync();
        }
        if (u != (int)ds_bid()) ds_att_load(kc, vc, Hkv, Scap, t, R, a.opt);
        const size_t base = ((size_t)t.r * Hkv + t.kv) * (size_t)Scap * DS_HD;
        /* kk: the key whose score lands on this lane (DS_CHUNK 16: on lanes 2j and 2j + 1); jl: the chunk's index of row Lr - 1 */
        const int kk = t.c * DS_CHUNK + (DS_CHUNK == 32 ? lane : (lane >> 1) & 15), jl = t.Lr - 1 - t.c * DS_CHUNK;
        uint2 kl = make_uint2(0u, 0u), vl = make_uint2(0u, 0u);
        if (self && has && jl < DS_CHUNK) { /* the row written in this step */
            kl = __ldcg((const uint2 *)(kc + base + (size_t)(t.Lr - 1) * DS_HD) + lane);
            vl = __ldcg((const uint2 *)(vc + base + (size_t)(t.Lr - 1) * DS_HD) + lane);
        }
        if (threadIdx.x < t.GU * 32 && !(hneed && (a.opt & 4096)))
            ((float4 *)qsm)[threadIdx.x] = __ldcg((const float4 *)(q + (size_t)t.r * a.QW + (size_t)t.g * DS_HD) + threadIdx.x);
        if (!(lean && hneed && (a.opt & 4096))) ds_csync(); /* (OPT 4096: q came in before the barrier above) */
        if (u == (int)ds_bid()) ds_mark(pm, mk);
        float *Pw = psm + (size_t)w * DS_MAXG * DS_PSTRIDE;
        if (has && ds_use_mma(a.opt, t)) {
            if (self && jl < DS_CHUNK) { /* rows >= jl (the row written in this step, and its copies past the end): again */
#pragma unroll
                for (int which = 0; which < 6; which++)
                    if (ds_mma_key(which, lane) >= jl) ds_kv_row_mma(kc, vc, base, t.Lr - 1, which, R);
            }
            ds_heads_mma(qsm, R, t.GU, t.c * DS_CHUNK, t.Lr, Pw);
        } else if (has) {
            const bool valid = kk < t.Lr;
            const bool fix = self && jl < DS_CHUNK;
            int hq;
#pragma unroll 1
            for (hq = 0; hq + 2 <= t.GU; hq += 2) /* two heads at a time: their shuffle chains overlap */
                ds_heads<2>(qsm, R, kl, vl, fix, jl, valid, lane, Pw, hq);
            if (hq < t.GU) ds_heads<1>(qsm, R, kl, vl, fix, jl, valid, lane, Pw, hq);
        } else if (lane < t.GU) {
            Pw[lane * DS_PSTRIDE] = -INFINITY; /* no keys: an empty partial */
        }
        if (u == (int)ds_bid()) ds_mark(pm, mk + 1);
        ds_csync();
        /* the block's merge: warp hq < GU merges head g + hq over the warps' partials */
        if (w < t.GU) {
            const int h = t.g + w;
            float4 o4;
            float M, l;
            if (a.opt & 2048) ds_merge_warps(psm + (size_t)w * DS_PSTRIDE, &o4, &M, &l);
            else ds_merge_parts<false, DS_MAXG * DS_PSTRIDE>(psm + (size_t)w * DS_PSTRIDE, DS_CWARPS, &o4, &M, &l);
            if (t.nseg == 1) {
                ds_put_att(a, t.r, h, o4, l);
            } else {
                float *P = a.part + (((size_t)t.r * Hq + h) * a.nchm + t.seg) * DS_PSTRIDE;
                if (lane == 0) P[0] = M, P[1] = l;
                ((float4 *)(P + 4))[lane] = o4;
            }
        }
        if (t.nseg > 1) { /* the last block of (r, g) merges the segments */
            ds_csync();
            if (threadIdx.x == 0) {
                /* one acq_rel atomic: it publishes the block's partials (cumulative over the block
                 * barrier before it) and, in the last block, makes the other blocks' visible */
                unsigned done;
                asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;"
                             : "=r"(done)
                             : "l"(&cnt[t.r * Hq + t.g])
                             : "memory");
                *flag = done + 1u == (unsigned)t.nseg;
                if (*flag) cnt[t.r * Hq + t.g] = 0; /* for the next layer (after a grid barrier) */
            }
            ds_csync();
            if (*flag && w < t.GU) {
                const int h = t.g + w;
                float4 o4;
                float M, l;
                ds_merge_global<DS_PSTRIDE>(a.part + ((size_t)t.r * Hq + h) * a.nchm * DS_PSTRIDE, t.nseg, &o4, &M, &l);
                ds_put_att(a, t.r, h, o4, l);
            }
        }
        if (!lean || u + (int)ds_nb() < nu) ds_csync(); /* qsm, psm and flag are reused by the next unit */
    }
}

/* An attention phase: this warp's first K and V rows, the grid barrier, the attention (marks mk,
 * mk + 1 around it, mk2, mk2 + 1 inside its first unit). One instance for both phases (not
 * inlined: instruction-cache footprint). */
static __device__ __noinline__ void ds_attention(const ds_args &a, const float *q, int Hq, int Hkv, const __nv_bfloat16 *kc,
                                                 const __nv_bfloat16 *vc, int Scap, const int *len, bool self, float *qsm,
                                                 float *psm, unsigned *cnt, int *flag, unsigned *target,
                                                 unsigned long long *pm, int mk, int mk2, unsigned hneed) {
    ds_kvreg R;
    unsigned long long qp[4] = {0ull, 0ull, 0ull, 0ull}; /* OPT 262144: the first unit's q pairs (zeros: none) */
    ds_mark(pm, 20 + (mk2 - 16) / 2); /* (DEBUG & 8: the call's start) */
    if (hneed) { /* OPT 256 / 512: no grid barrier; each unit waits for its heads (ds_attend) */
        if ((a.opt & (4096 | 262144)) == (4096 | 262144) && !(a.dbg & 1)) { /* OPT 262144: the first unit's q loaded once
                                                                            * before its K/V (ds_attend uses it if it
                                                                            * carries the epoch) */
            ds_unit t0;
            if (ds_first_unit(self ? 0 : 1, &t0) && threadIdx.x < t0.GU * 32) ds_load_qf4(ds_unit_qf(a, t0), qp);
        }
        if (!(a.dbg & 1)) ds_att_prefetch(kc, vc, Hq, Hkv, Scap, self ? 0 : 1, a.opt, R, pm, 22 + (mk2 - 16) / 2);
    } else if (a.opt & 8) { /* the K/V loads after the arrival: the release fence does not wait for them */
        ds_garrive(a, target);
        if (!(a.dbg & 1)) ds_att_prefetch(kc, vc, Hq, Hkv, Scap, self ? 0 : 1, a.opt, R);
        ds_gwait(a, target);
    } else {
        if (!(a.dbg & 1)) ds_att_prefetch(kc, vc, Hq, Hkv, Scap, self ? 0 : 1, a.opt, R);
        ds_gsync(a, target);
    }
    ds_mark(pm, mk);
    if (!(a.dbg & 1)) ds_attend(a, q, Hq, Hkv, kc, vc, Scap, len, self, qsm, psm, cnt, flag, R, qp, pm, mk2, hneed);
    ds_mark(pm, mk + 1);
}

/* The rest of an attention block after its q projection: the attention, the barrier, the output
 * projection (x += att . Wo), the barrier. Self- or cross-attention; marks mk .. mk + 4 (and the
 * ones inside the attention: 16, 17 self, 18, 19 cross). */
template <int WS>
static __device__ __forceinline__ void ds_att_block(const ds_args &a, const ds_layer &L, bool self, ds_ring &rg, float *red,
                                                    float *sred, const double *rope, float *xo, float *qsm, float *psm,
                                                    int *flag, unsigned *target, unsigned long long *pm, int mk,
                                                    int l) {
    const unsigned hneed = (a.opt & (self ? 256 : 512)) ? (unsigned)((l + 1) * ds_head_units(self ? PH_QKV : PH_CQ)) : 0u;
    if (self)
        ds_attention(a, a.q, a.H, a.KV, L.kc, L.vc, a.S, ds_len_sh, true, qsm, psm, a.cnt, flag, target, pm, mk, 16, hneed);
    else
        ds_attention(a, a.q, a.CH, a.CKV, L.ck, L.cv, a.Lc, ds_len_sh + 2, false, qsm, psm, a.cnt + 2 * (a.QW / DS_HD), flag,
                     target, pm, mk, 18, hneed);
    ds_gsync(a, target);
    ds_mark(pm, mk + 2);
    ds_project<WS>(a, L, self ? PH_O : PH_CO, a.att, a.QW, NULL, rg, red, sred, rope, xo);
    ds_mark(pm, mk + 3);
    ds_gsync(a, target);
    ds_mark(pm, mk + 4);
}

/* OPT 2097152 (the producer warp group's default): the launch's arguments copied into shared memory at the
 * start, and read from there. The phases read them through a pointer made opaque per layer (see ds_bid):
 * generic loads of the parameter buffer, through L1, and to L2 where other data has evicted them from it;
 * chains of them (the layer's weights, caches, sizes) preceded every phase's first tile, epilogue and
 * attention unit. Eighteenth session, H100, same binary, dia_generate B = 1: +4.1% at frames 20..220
 * (782.4 / 782.5 vs 751.7 / 751.0 steps/s), +4.4% at 1400..1600 (735.1 / 735.0 vs 704.0 / 704.3) and over a
 * whole generation (714.2 vs 684.4); block 0's profile: the self-attention 5.21 -> 4.72 us a layer, the
 * barriers after the attention phases 2.47 -> 1.84 and 2.37 -> 1.66. (3.4 KB of static shared memory.) */
#define DS_OPT_ARGS_SH 2097152
static __shared__ __align__(16) ds_args ds_a_sh;
static_assert(sizeof(ds_args) % 8 == 0, "the arguments are copied to shared memory in 8-byte words");
/* the launch's arguments where the phases read them: the shared copy (OPT 2097152) or the parameters */
static __device__ __forceinline__ const ds_args *ds_args_of(const ds_args &a_) {
    return (a_.opt & DS_OPT_ARGS_SH) ? &ds_a_sh : &a_;
}

template <int WS>
__global__ void __launch_bounds__(WS ? DS_WS_THREADS : DS_THREADS, 1) k_decode_layers(const __grid_constant__ ds_args a_) {
    if (a_.opt & DS_OPT_ARGS_SH) {
        for (int i = threadIdx.x; i < (int)(sizeof(ds_args) / 8); i += blockDim.x)
            ((unsigned long long *)&ds_a_sh)[i] = ((const unsigned long long *)&a_)[i];
        __syncthreads();
    }
    const ds_args &a = a_;
    extern __shared__ __align__(128) unsigned char smem[];
    unsigned char *ring = smem;
    const int nst = WS ? a.nst : DS_STAGES;
    /* 16-byte aligned pieces first (float4 accesses), then the 8-byte ones */
    float *qsm = (float *)(smem + (size_t)nst * DS_STAGE);       /* [DS_MAXG][128] */
    float *psm = qsm + DS_MAXG * DS_HD;                          /* [DS_CWARPS][DS_MAXG][DS_PSTRIDE] */
    float *red = psm + DS_CWARPS * DS_MAXG * DS_PSTRIDE;         /* [2][DS_CWARPS][16] */
    float *sred = red + 2 * DS_CWARPS * 16;                      /* [DS_CWARPS][2] */
    float *xo = sred + 2 * DS_CWARPS;                            /* [2][DS_XO]: this block's rows of x */
    double *rope = (double *)(xo + 2 * DS_XO);                   /* [2][64] (cos, sin) */
    uint64_t *full = (uint64_t *)(rope + 2 * DS_HD);             /* [nst] */
    uint64_t *empty = full + DS_MAXST;                           /* WS: [nst] */
    ds_cursor *cur = (ds_cursor *)(empty + DS_MAXST);
    int *flag = (int *)(cur + 1);
    if (WS) {
        if (threadIdx.x == 0) {
            for (int i = 0; i < nst; i++) mb_init(&full[i], 1), mb_init(&empty[i], 1);
            asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        }
        __syncthreads();
        if (threadIdx.x >= DS_THREADS) { /* the producer warp group */
#ifdef __CUDA_ARCH_FEAT_SM90_ALL /* sm_90a (the PTX for other devices: the registers stay split evenly) */
            asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(DS_PREGS));
#endif
            if (threadIdx.x == DS_THREADS) ds_produce(*ds_args_of(a_), ring, full, empty);
            return;
        }
#ifdef __CUDA_ARCH_FEAT_SM90_ALL
        asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(DS_CREGS));
#endif
    } else if (threadIdx.x == DS_ISSUER) {
        for (int i = 0; i < DS_STAGES; i++) mb_init(&full[i], 1);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        ds_cursor_init(a, *cur);
        for (int i = 0; i < DS_STAGES; i++) ds_issue(a, *cur, ring, full);
    }
    if ((a.opt & 1) && threadIdx.x == 0)
        for (int i = ds_bid(); i < 3 * a.nl; i += ds_nb()) ds_l2_prefetch(a.L[i / 3].norm[i % 3], (unsigned)a.D * 4u);
    /* the RoPE angles of both rows' positions (the same for every layer); this block's rows of x */
    if (threadIdx.x < DS_HD) {
        const int m = threadIdx.x / (DS_HD / 2), j = threadIdx.x % (DS_HD / 2);
        cu_rope_cs(a.theta, j, DS_HD, __ldg(a.pos + m), &rope[threadIdx.x * 2], &rope[threadIdx.x * 2 + 1]);
    }
    float *x0 = a.x; /* layer 0's q|k|v input */
    if (threadIdx.x < 2) { /* (ds_u0_sh) */
        const int i = threadIdx.x;
        ds_unit t = {0, 0, 0, 0, 0, 0, 0, 0};
        ds_u0_has_sh[i] = ds_att_unit(i ? a.clen : a.kvlen, i ? a.CH : a.H, i ? a.CH / a.CKV : a.H / a.KV, a.opt, ds_bid(), &t);
        ds_natt_sh[i] = ds_att_unit(i ? a.clen : a.kvlen, i ? a.CH : a.H, i ? a.CH / a.CKV : a.H / a.KV, a.opt, 0, NULL);
        ds_u0_sh[i] = t;
    }
    if (threadIdx.x == 0) ds_rd_sh = 1.0 / (double)a.D; /* (DS_OPT_RSQRT) */
    if (threadIdx.x < 7) { /* (ds_ph_sh, ds_rg_sh) */
        const ds_wph p = ds_phase(a, threadIdx.x);
        ds_ph_sh[threadIdx.x] = p;
        ds_range(p, &ds_rg_sh[threadIdx.x][0], &ds_rg_sh[threadIdx.x][1]);
    }
    if (threadIdx.x < 6) /* (ds_len_sh) */
        ds_len_sh[threadIdx.x] = __ldg((threadIdx.x < 2 ? a.kvlen : threadIdx.x < 4 ? a.clen : a.start) + (threadIdx.x & 1));
    if ((a.opt & 4096) && threadIdx.x == 0) /* this launch's number (the last block of the launch before counted it) */
        asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(ds_seq_sh) : "l"(a.bar + 2) : "memory");
#ifndef DS_NO_EMBED_CODE
    if (a.tok) x0 = ds_embed(a, (int *)qsm);
#endif
    {
        const int r0 = (int)((long long)a.D * ds_bid() / ds_nb()), r1 = (int)((long long)a.D * (ds_bid() + 1) / ds_nb());
        for (int t = threadIdx.x; t < 2 * (r1 - r0); t += DS_CWARPS * 32)
            xo[(t & 1) * DS_XO + (t >> 1)] = x0[(size_t)(t & 1) * a.D + r0 + (t >> 1)];
    }
    ds_csync();
    ds_mark(ds_prof_base(a) ? ds_prof_base(a) + a.nl * DS_PROF : NULL, 0);
    ds_ring rg = {ring, full, cur, empty, nst, 0, 0u, 0u};
    unsigned target = 0;
    for (int l = 0; l < a_.nl; l++) {
        const ds_args *ap = ds_args_of(a_);
        asm volatile("" : "+l"(ap)); /* see ds_bid */
        const ds_args &a = *ap;
        const ds_layer &L = a.L[l];
        unsigned long long *pm = ds_prof_base(a) ? ds_prof_base(a) + l * DS_PROF : NULL;
        if (a.opt & 2) {
            ds_pf_att(L.kc, L.vc, a.H, a.KV, a.S, ds_len_sh, a.opt);
            ds_pf_att(L.ck, L.cv, a.CH, a.CKV, a.Lc, ds_len_sh + 2, a.opt);
        }
        if ((a.opt & 4096) && threadIdx.x == 0) ds_ep_sh = ds_epoch(ds_seq_sh, l, 0);
        ds_project<WS>(a, L, PH_QKV, l ? a.x : x0, a.D, L.norm[0], rg, red, sred, rope, xo);
        ds_mark(pm, 0);
        if (a.opt & 256) ds_publish_heads(a, PH_QKV, a.hc);
        ds_att_block<WS>(a, L, true, rg, red, sred, rope, xo, qsm, psm, flag, &target, pm, 1, l);
        ds_project<WS>(a, L, PH_CQ, a.x, a.D, L.norm[1], rg, red, sred, rope, xo);
        ds_mark(pm, 6);
        if ((a.opt & 512) && !(a.opt & 4096)) ds_publish_heads(a, PH_CQ, a.hc + 32);
        ds_att_block<WS>(a, L, false, rg, red, sred, rope, xo, qsm, psm, flag, &target, pm, 7, l);
        ds_project<WS>(a, L, PH_GU, a.x, a.D, L.norm[2], rg, red, sred, rope, xo);
        ds_mark(pm, 12);
        ds_gsync(a, &target);
        ds_mark(pm, 13);
        ds_project<WS>(a, L, PH_DOWN, a.mlp, a.I, NULL, rg, red, sred, rope, xo);
        ds_mark(pm, 14);
        if (l + 1 < a.nl || a.ow) ds_gsync(a, &target);
        ds_mark(pm, 15);
    }
#ifndef DS_NO_HEAD_CODE
    if (a_.ow) ds_gemv<1, WS>(a_, a_.L[0], PH_OUT, a_.x, a_.D, a_.onorm, rg, red, sred, rope, xo); /* (D <= 2048) */
#endif
    /* The barrier counter back to zero for the next launch (cu_decode_layers clears it only once):
     * a block counts itself done in bar[1] after its last grid barrier; when the last one does, every
     * block has added to bar[0] for the last time and left its wait, so nothing reads or adds to it
     * any more. (The merge counters are reset by their merges.) */
    if (threadIdx.x == 0 && atomicAdd(a_.bar + 1, 1u) == (unsigned)ds_nb() - 1u) {
        a_.bar[0] = 0u, a_.bar[1] = 0u;
        if (a_.opt & (256 | 512))
            for (int i = 0; i < DS_NHC; i++) a_.hc[i] = 0u; /* (every wait on them came before the last grid barrier) */
        if (a_.opt & 4096) a_.bar[2] = ds_seq_sh + 1u; /* (every block read it at its start) */
    }
}

/* dynamic shared memory for a ring of nst stages */
static size_t ds_smem(int nst) {
    return (size_t)nst * DS_STAGE + 2 * DS_MAXST * sizeof(uint64_t) + sizeof(ds_cursor) + 2 * DS_HD * sizeof(double) +
           (2 * DS_CWARPS * 16 + 2 * DS_CWARPS + DS_MAXG * DS_HD + DS_CWARPS * DS_MAXG * DS_PSTRIDE + 2 * DS_XO) * sizeof(float) +
           16;
}

/* launches of k_decode_layers (tests check that the path ran) */
static long g_ds_launches;
extern "C" long dia_cuda_decode_step_launches(void) { return __atomic_load_n(&g_ds_launches, __ATOMIC_RELAXED); }

/* The kernel variant and its ring: the producer warp group where the device runs the sm_90a code
 * (compute capability 9.0: H100, H200), else the 8-warp kernel; DIA_CUDA_DECODE_STEP_WS=0 / 1 picks
 * one. DIA_CUDA_DECODE_STEP_STAGES / _INFLIGHT: the producer's ring (out of range: the defaults). */
struct ds_variant {
    int ws, nst, infl, threads;
};
static ds_variant ds_get_variant(const cuda_ctx *c) {
    ds_variant v = {0, DS_STAGES, DS_STAGES, DS_THREADS};
    const char *e = getenv("DIA_CUDA_DECODE_STEP_WS");
    if (e && e[0] ? e[0] != '1' : c->cc != 90) return v;
    v.ws = 1, v.nst = DS_WS_STAGES, v.infl = DS_WS_INFLIGHT, v.threads = DS_WS_THREADS;
    const char *ns = getenv("DIA_CUDA_DECODE_STEP_STAGES"), *nf = getenv("DIA_CUDA_DECODE_STEP_INFLIGHT");
    if (ns && atoi(ns) >= 2 && atoi(ns) <= DS_MAXST) v.nst = atoi(ns);
    if (nf && atoi(nf) >= 1) v.infl = atoi(nf);
    if (v.infl > v.nst) v.infl = v.nst;
    return v;
}

/* The kernel of a variant */
static void (*ds_kernel(int ws))(ds_args) { return ws ? k_decode_layers<1> : k_decode_layers<0>; }

/* Whether the device takes cooperative launches and one block per SM of the variant fits (its
 * largest ring; asked once per variant). */
static int ds_fits(int device, int ws) {
    static int fits[2] = {-1, -1};
    if (fits[ws] < 0) {
        int nb = 0, coop = 0;
        void (*k)(ds_args) = ds_kernel(ws);
        const size_t sm = ds_smem(ws ? DS_MAXST : DS_STAGES);
        const int threads = ws ? DS_WS_THREADS : DS_THREADS;
        cudaFuncAttributes fa;
        fits[ws] = cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, device) == cudaSuccess && coop &&
                   cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm) == cudaSuccess &&
                   cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, k, threads, sm) == cudaSuccess && nb >= 1 &&
                   cudaFuncGetAttributes(&fa, k) == cudaSuccess && (!ws || DS_WS_REGS(fa.numRegs));
        if (!fits[ws]) {
            const cudaError_t e = cudaGetLastError();
            dia_log(DIA_LOG_INFO,
                    "CUDA: the decode-step kernel%s does not fit this device (cooperative launch %d, %d blocks per SM, "
                    "%s); layers run op by op",
                    ws ? " (producer warp group)" : "", coop, nb, cudaGetErrorString(e));
        }
    }
    return fits[ws];
}

static int ds_mat(const dia_tensor *w, int trans, int64_t N, int64_t K) {
    return w && trans && w->dtype == DIA_BF16 && w->ndim == 2 && w->ne[0] == N && w->ne[1] == K && !w->buf->host_mem &&
           cu_aligned16(cu_ptr(w));
}

static int ds_cache(const dia_tensor *t, int64_t R, int64_t H, int64_t S) {
    return t && t->dtype == DIA_BF16 && t->ndim == 4 && t->ne[0] == R && t->ne[1] == H && (S < 0 || t->ne[2] == S) &&
           t->ne[3] == DS_HD && !t->buf->host_mem && cu_aligned16(cu_ptr(t));
}

static int ds_i32(const dia_tensor *t, int64_t R) { return t && t->dtype == DIA_I32 && dia_tensor_nelem(t) == R; }

/* The optional embedding sum and logits head: bf16 tables of one vocabulary, a bf16 head in
 * nn.Linear layout, f32 logits */
static int ds_ends_ok(const dia_decode_layers_args *a, int64_t R, int64_t D) {
    if (a->tok) {
        if (a->n_embed < 1 || a->n_embed > DS_MAXC || !a->embed || !ds_i32(a->tok, R * a->n_embed)) return 0;
        for (int c = 0; c < a->n_embed; c++) {
            const dia_tensor *e = &a->embed[c];
            if (e->dtype != DIA_BF16 || e->ndim != 2 || e->ne[1] != D || e->ne[0] != a->embed[0].ne[0] ||
                e->ne[0] > INT32_MAX || e->buf->host_mem || !cu_aligned16(cu_ptr(e)))
                return 0;
        }
    }
    if (a->out_w) {
        const dia_tensor *w = a->out_w, *g = a->out_norm, *y = a->logits;
        if (D > 2048 || !ds_mat(w, a->out_trans, w->ne[0], D) || w->ne[0] > INT32_MAX / 2 || !g || g->dtype != DIA_F32 ||
            dia_tensor_nelem(g) != D || !cu_aligned16(cu_ptr(g)) || !y || y->dtype != DIA_F32 ||
            dia_tensor_nelem(y) != R * w->ne[0])
            return 0;
    }
    return 1;
}

int cu_decode_layers_ok(dia_backend *be, const dia_decode_layers_args *a) {
    const char *e = getenv("DIA_CUDA_DECODE_STEP"); /* 0: the layers op by op (comparisons) */
    if ((e && e[0] == '0') || !a || !a->x || a->x->ndim != 2 || a->x->dtype != DIA_F32) return 0;
    /* DIA_CUDA_DECODE_STEP_ENDS (comparisons; default 3): 1 takes the embedding, 2 the logits head */
    const char *ends = getenv("DIA_CUDA_DECODE_STEP_ENDS");
    const int ends_on = ends && ends[0] ? atoi(ends) : 3;
    if ((a->tok && !(ends_on & 1)) || (a->out_w && !(ends_on & 2))) return 0;
    const int64_t R = a->x->ne[0], D = a->x->ne[1];
    if (R != 2 || D > (int64_t)DS_XO * cu_ctx(be)->sm_count || a->n_layers < 1 || a->n_layers > DS_MAXL || a->head_dim != DS_HD || a->cross_head_dim != DS_HD) return 0;
    const int64_t H = a->heads, KV = a->kv_heads, CH = a->cross_heads, CKV = a->cross_kv_heads;
    if (KV < 1 || CKV < 1 || H % KV || CH % CKV || H / KV > DS_MAXG || CH / CKV > DS_MAXG) return 0;
    if (!ds_i32(a->pos, R) || !ds_i32(a->start, R) || !ds_i32(a->kvlen, R) || !ds_i32(a->cross_len, R)) return 0;
    const dia_tensor *g = a->layer[0].w[6];
    if (!g || g->ndim != 2 || g->ne[0] % 2) return 0;
    const int64_t I = g->ne[0] / 2;
    const int64_t Ks[4] = {D, H * DS_HD, CH * DS_HD, I};
    for (int i = 0; i < 4; i++) /* (all but down's I: one 256-wide chunk per warp, ds_project) */
        if (Ks[i] % 256 || Ks[i] > (i < 3 ? 256 * DS_CWARPS : 8192) || Ks[i] < 256) return 0;
    const int64_t S = a->layer[0].kcache ? a->layer[0].kcache->ne[2] : 0, Lc = a->layer[0].ck ? a->layer[0].ck->ne[2] : 0;
    if (S < 1 || Lc < 1 || S > INT32_MAX / DS_HD || Lc > INT32_MAX / DS_HD) return 0;
    for (int l = 0; l < a->n_layers; l++) {
        const dia_decode_layer_w *L = &a->layer[l];
        const int64_t N[8] = {H * DS_HD, KV * DS_HD, KV * DS_HD, D, CH * DS_HD, D, 2 * I, D};
        const int64_t K[8] = {D, D, D, H * DS_HD, D, CH * DS_HD, D, I};
        for (int i = 0; i < 8; i++)
            if (!ds_mat(L->w[i], L->trans_w[i], N[i], K[i])) return 0;
        for (int i = 0; i < 3; i++)
            if (!L->norm[i] || L->norm[i]->dtype != DIA_F32 || dia_tensor_nelem(L->norm[i]) != D || !cu_aligned16(cu_ptr(L->norm[i])))
                return 0;
        if (!ds_cache(L->kcache, R, KV, S) || !ds_cache(L->vcache, R, KV, S) || !ds_cache(L->ck, R, CKV, Lc) ||
            !ds_cache(L->cv, R, CKV, Lc))
            return 0;
    }
    if (!ds_ends_ok(a, R, D)) return 0;
    return cu_aligned16(cu_ptr(a->x)) && ds_fits(cu_ctx(be)->device, ds_get_variant(cu_ctx(be)).ws);
}

/* DIA_CUDA_DECODE_STEP_DEBUG & 8: wait for the launch of d, read block 0's phase times and log their
 * means every 100 calls (process-wide sums: a debugging aid). */
/* bytes of the marks buffer: room for every block's */
static size_t ds_prof_bytes(const cuda_ctx *c) { return (size_t)c->sm_count * (DS_MAXL * DS_PROF + 1) * sizeof(unsigned long long); }

/* n marks of the launch of d into h (waits for the launch) */
static dia_status ds_prof_fetch(cuda_ctx *c, const ds_args *d, size_t n, unsigned long long *h) {
    CU_CHECK(cudaMemcpyAsync(h, d->prof, n * sizeof *h, cudaMemcpyDeviceToHost, c->stream));
    CU_CHECK(cudaStreamSynchronize(c->stream));
    return DIA_OK;
}

static dia_status ds_profile_report(cuda_ctx *c, const ds_args *d) {
    unsigned long long prof_h[DS_MAXL * DS_PROF + 1];
    static double sum[27];
    static long calls;
    const dia_status st = ds_prof_fetch(c, d, DS_MAXL * DS_PROF + 1, prof_h);
    if (st != DIA_OK) return st;
    unsigned long long prev = prof_h[d->nl * DS_PROF];
    for (int l = 0; l < d->nl; l++) {
        const unsigned long long *pl = prof_h + l * DS_PROF;
        for (int k = 0; k < 16; k++) sum[k] += (double)(pl[k] - prev) * 1e-3, prev = pl[k];
        /* inside the attention phases: q in shared memory, then scores + values + partials */
        sum[17] += (double)(pl[16] - pl[1]) * 1e-3, sum[18] += (double)(pl[17] - pl[16]) * 1e-3;
        sum[19] += (double)(pl[18] - pl[7]) * 1e-3, sum[20] += (double)(pl[19] - pl[18]) * 1e-3;
        /* the attention's start: the call (from the phase before), its unit known, its K/V loads issued */
        sum[21] += (double)(pl[20] - pl[0]) * 1e-3, sum[22] += (double)(pl[22] - pl[20]) * 1e-3;
        sum[23] += (double)(pl[1] - pl[22]) * 1e-3, sum[24] += (double)(pl[21] - pl[6]) * 1e-3;
        sum[25] += (double)(pl[23] - pl[21]) * 1e-3, sum[26] += (double)(pl[7] - pl[23]) * 1e-3;
    }
    sum[16] += (double)(prev - prof_h[d->nl * DS_PROF]) * 1e-3;
    if (++calls % 100 == 0) {
        const double n = (double)calls * d->nl;
        dia_log(DIA_LOG_INFO,
                "decode-step profile, block 0, us per layer: qkv %.2f | bar %.2f self %.2f bar %.2f | o %.2f bar %.2f | cq "
                "%.2f | bar %.2f cross %.2f bar %.2f | co %.2f bar %.2f | gu %.2f bar %.2f | down %.2f bar %.2f; "
                "kernel %.1f us; inside self: q %.2f, scores+values %.2f; cross: q %.2f, scores+values %.2f; start of self: "
                "call %.2f unit %.2f K/V issued %.2f; of cross: call %.2f unit %.2f K/V issued %.2f",
                sum[0] / n, sum[1] / n, sum[2] / n, sum[3] / n, sum[4] / n, sum[5] / n, sum[6] / n, sum[7] / n, sum[8] / n,
                sum[9] / n, sum[10] / n, sum[11] / n, sum[12] / n, sum[13] / n, sum[14] / n, sum[15] / n, sum[16] / calls,
                sum[17] / n, sum[18] / n, sum[19] / n, sum[20] / n, sum[21] / n, sum[22] / n, sum[23] / n, sum[24] / n,
                sum[25] / n, sum[26] / n);
    }
    return DIA_OK;
}

/* DIA_CUDA_DECODE_STEP_DEBUG & (8 | 16): every block's marks of the launch of d; per grid barrier
 * (arrival mark, exit mark), means over the layers and calls since the last report (every 100
 * calls, then reset): the skew (last arrival - mean arrival), the release latency (first and mean
 * exit - last arrival), the exits' spread, the phase before it (mean and slowest block) and the
 * blocks that arrived last most often; then the blocks late on average over all barriers. */
#define DS_NBAR 8
static dia_status ds_profile_all(cuda_ctx *c, const ds_args *d, int nb) {
    static const int arr[DS_NBAR] = {0, 2, 4, 6, 8, 10, 12, 14}, ext[DS_NBAR] = {1, 3, 5, 7, 9, 11, 13, 15};
    static const char *name[DS_NBAR] = {"qkv>self", "self>o", "o>cq", "cq>cross", "cross>co", "co>gu", "gu>down", "down>qkv"};
    static double acc[DS_NBAR][6], n[DS_NBAR], late[1024];
    static long lastc[DS_NBAR][1024], calls;
    static double gran = 1e30, att[2][5]; /* self, cross: blocks with a unit; q wait, scores+values, rest, max, n */
    const size_t stride = (size_t)d->nl * DS_PROF + 1;
    if (nb > 1024) return dia_fail(DIA_ERR_INTERNAL, "decode-step profile: %d blocks (at most 1024)", nb);
    unsigned long long *h = (unsigned long long *)malloc((size_t)nb * stride * sizeof *h);
    if (!h) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "decode-step profile: out of memory");
    const dia_status st = ds_prof_fetch(c, d, (size_t)nb * stride, h);
    if (st != DIA_OK) {
        free(h);
        return st;
    }
    for (int l = 0; l < d->nl; l++)
        for (int k = 0; k < 2; k++) { /* inside the attention phases (marks 16, 17 self; 18, 19 cross) */
            const int m0 = k ? 7 : 1, mq = k ? 18 : 16, mend = m0 + 1;
            double mx = 0;
            for (int b = 0; b < nb; b++) {
                const unsigned long long *pl = h + (size_t)b * stride + l * DS_PROF;
                if (!pl[mq]) continue; /* no unit (the marks are zeroed before each launch) */
                att[k][0] += (double)(pl[mq] - pl[m0]), att[k][1] += (double)(pl[mq + 1] - pl[mq]);
                att[k][2] += (double)(pl[mend] - pl[mq + 1]), att[k][4] += 1;
                if ((double)(pl[mend] - pl[m0]) > mx) mx = (double)(pl[mend] - pl[m0]);
            }
            att[k][3] += mx;
        }
    for (int l = 0; l < d->nl; l++)
        for (int j = 0; j < DS_NBAR; j++) {
            if (j == DS_NBAR - 1 && l + 1 == d->nl) continue; /* no barrier after the last layer */
            double amax = -1e300, asum = 0, emin = 1e300, emax = -1e300, esum = 0, psum = 0, pmax = -1e300;
            int last = 0;
            for (int b = 0; b < nb; b++) {
                const unsigned long long *pb = h + (size_t)b * stride;
                const double A = (double)pb[l * DS_PROF + arr[j]], E = (double)pb[l * DS_PROF + ext[j]];
                const double P = j > 0 ? (double)pb[l * DS_PROF + ext[j - 1]]
                                 : l > 0 ? (double)pb[(l - 1) * DS_PROF + ext[DS_NBAR - 1]]
                                         : (double)pb[d->nl * DS_PROF];
                if (A > amax) amax = A, last = b;
                asum += A, esum += E, psum += A - P;
                if (A - P > pmax) pmax = A - P;
                if (E < emin) emin = E;
                if (E > emax) emax = E;
            }
            const double amean = asum / nb;
            for (int b = 0; b < nb; b++) {
                const unsigned long long *pb = h + (size_t)b * stride;
                const double A = (double)pb[l * DS_PROF + arr[j]], E = (double)pb[l * DS_PROF + ext[j]];
                late[b] += A - amean;
                if (E > emin && E - emin < gran) gran = E - emin;
            }
            acc[j][0] += amax - amean, acc[j][1] += emin - amax, acc[j][2] += esum / nb - amax;
            acc[j][3] += emax - emin, acc[j][4] += psum / nb, acc[j][5] += pmax;
            n[j] += 1, lastc[j][last]++;
        }
    free(h);
    if (++calls % 100) return DIA_OK;
    dia_log(DIA_LOG_INFO, "decode-step barriers, %d blocks, 100 calls (us; timer step >= %.0f ns):", nb, gran);
    for (int j = 0; j < DS_NBAR; j++) {
        if (!n[j]) continue;
        int top[3] = {-1, -1, -1};
        for (int t = 0; t < 3; t++)
            for (int b = 0; b < nb; b++)
                if ((t < 1 || b != top[0]) && (t < 2 || b != top[1]) && (top[t] < 0 || lastc[j][b] > lastc[j][top[t]])) top[t] = b;
        dia_log(DIA_LOG_INFO,
                "  %-8s phase mean %6.2f max %6.2f | skew %5.2f | release first %5.2f mean %5.2f | exit spread %5.2f | last: "
                "%d (%.0f%%) %d (%.0f%%) %d (%.0f%%)",
                name[j], acc[j][4] / n[j] * 1e-3, acc[j][5] / n[j] * 1e-3, acc[j][0] / n[j] * 1e-3, acc[j][1] / n[j] * 1e-3,
                acc[j][2] / n[j] * 1e-3, acc[j][3] / n[j] * 1e-3, top[0], 100.0 * lastc[j][top[0]] / n[j], top[1],
                100.0 * lastc[j][top[1]] / n[j], top[2], 100.0 * lastc[j][top[2]] / n[j]);
    }
    double ntot = 0;
    for (int j = 0; j < DS_NBAR; j++) ntot += n[j];
    char line[512];
    int off = 0;
    for (int t = 0; t < 8; t++) { /* the 8 latest blocks on average */
        int best = -1;
        for (int b = 0; b < nb; b++)
            if (late[b] != 1e300 && (best < 0 || late[b] > late[best])) best = b; /* 1e300: listed */
        if (best < 0) break;
        off += snprintf(line + off, sizeof line - (size_t)off, " %d:%+.2f", best, late[best] / ntot * 1e-3);
        late[best] = 1e300;
    }
    dia_log(DIA_LOG_INFO, "  latest blocks (mean arrival - mean of all, us):%s", line);
    for (int k = 0; k < 2; k++)
        if (att[k][4] > 0)
            dia_log(DIA_LOG_INFO, "  %s attention, %.1f blocks with a unit: q loaded %.2f, scores+values %.2f, merge+store %.2f; slowest block %.2f",
                    k ? "cross" : "self", att[k][4] / (100.0 * d->nl), att[k][0] / att[k][4] * 1e-3, att[k][1] / att[k][4] * 1e-3,
                    att[k][2] / att[k][4] * 1e-3, att[k][3] / (100.0 * d->nl) * 1e-3);
    memset(att, 0, sizeof att);
    memset(acc, 0, sizeof acc), memset(n, 0, sizeof n), memset(late, 0, sizeof late), memset(lastc, 0, sizeof lastc);
    return DIA_OK;
}

dia_status cu_decode_layers(dia_backend *be, const dia_decode_layers_args *a) {
    if (!cu_decode_layers_ok(be, a)) return dia_fail(DIA_ERR_INTERNAL, "decode_layers: arguments it does not take");
    cuda_ctx *c = cu_ctx(be);
    ds_args d;
    memset(&d, 0, sizeof d);
    d.nl = a->n_layers;
    d.D = (int)a->x->ne[1];
    d.I = (int)(a->layer[0].w[6]->ne[0] / 2);
    d.H = a->heads, d.KV = a->kv_heads, d.CH = a->cross_heads, d.CKV = a->cross_kv_heads;
    d.S = (int)a->layer[0].kcache->ne[2], d.Lc = (int)a->layer[0].ck->ne[2];
    const int Hmax = d.H > d.CH ? d.H : d.CH;
    d.QW = Hmax * DS_HD;
    const int nS = (d.S + DS_CHUNK - 1) / DS_CHUNK, nL = (d.Lc + DS_CHUNK - 1) / DS_CHUNK;
    d.nchm = nS > nL ? nS : nL;
    d.eps = a->eps, d.theta = (double)a->theta;
    for (int l = 0; l < d.nl; l++) {
        const dia_decode_layer_w *L = &a->layer[l];
        for (int i = 0; i < 8; i++) d.L[l].w[i] = (const __nv_bfloat16 *)cu_ptr(L->w[i]);
        for (int i = 0; i < 3; i++) d.L[l].norm[i] = (const float *)cu_ptr(L->norm[i]);
        d.L[l].kc = (__nv_bfloat16 *)cu_ptr(L->kcache), d.L[l].vc = (__nv_bfloat16 *)cu_ptr(L->vcache);
        d.L[l].ck = (const __nv_bfloat16 *)cu_ptr(L->ck), d.L[l].cv = (const __nv_bfloat16 *)cu_ptr(L->cv);
    }
    /* scratch (4-byte words, pieces 16-byte aligned): barrier counter [4], merge counters [n_c], q, att,
     * mlp, partials, each block's embedding sum [sm_count][2][D] */
    const size_t n_c = (2 * 2 * (size_t)Hmax + 3) & ~(size_t)3; /* [2 phases][2 rows][Hmax] */
    const size_t n_q = 2 * (size_t)d.QW, n_m = 2 * (size_t)d.I, n_p = 2 * (size_t)Hmax * (size_t)d.nchm * DS_PSTRIDE;
    const size_t n_e = a->tok ? (size_t)c->sm_count * 2 * (size_t)d.D : 0;
    void *sp;
    const size_t n_z = 4 + n_c + DS_NHC + 2 * n_q; /* the words zeroed: the counters and the q pairs */
    dia_status st = cu_scratch(be, CU_SCRATCH_STEP, (n_z + 2 * n_q + n_m + n_p + n_e) * sizeof(float), &sp);
    if (st != DIA_OK) return st;
    float *f = (float *)sp;
    d.bar = (unsigned *)f;
    d.cnt = (unsigned *)(f + 4);
    d.hc = d.cnt + n_c;
    d.qf = (unsigned long long *)(f + 4 + n_c + DS_NHC); /* [2, QW] pairs: 2 n_q words, 16-byte aligned */
    d.q = f + n_z, d.att = d.q + n_q, d.mlp = d.att + n_q, d.part = d.mlp + n_m;
    if (a->tok) {
        d.tok = (const int *)cu_ptr(a->tok), d.C = a->n_embed, d.V = (int)a->embed[0].ne[0], d.xe = d.part + n_p;
        for (int i = 0; i < a->n_embed; i++) d.emb[i] = (const __nv_bfloat16 *)cu_ptr(&a->embed[i]);
    }
    if (a->out_w) {
        d.ow = (const __nv_bfloat16 *)cu_ptr(a->out_w), d.onorm = (const float *)cu_ptr(a->out_norm);
        d.logits = (float *)cu_ptr(a->logits), d.NO = (int)a->out_w->ne[0];
    }
    d.x = (float *)cu_ptr(a->x);
    d.pos = (const int *)cu_ptr(a->pos), d.start = (const int *)cu_ptr(a->start);
    d.kvlen = (const int *)cu_ptr(a->kvlen), d.clen = (const int *)cu_ptr(a->cross_len);
    const char *dbg = getenv("DIA_CUDA_DECODE_STEP_DEBUG");
    d.dbg = dbg ? atoi(dbg) : 0;
    const char *opt = getenv("DIA_CUDA_DECODE_STEP_OPT");
    const ds_variant var = ds_get_variant(c);
    d.opt = opt ? atoi(opt) : var.ws ? DS_OPT_WS_DEFAULT : DS_OPT_DEFAULT;
    d.nst = var.nst, d.infl = var.infl;
    const char *i2 = getenv("DIA_CUDA_DECODE_STEP_INFLIGHT2");
    d.infl2 = i2 ? atoi(i2) : var.ws ? DS_WS_INFLIGHT2 : 0;
    if ((d.infl2 >> 8 & 15) < 1 || (d.infl2 >> 8 & 15) > d.nst) d.infl2 = 0;
    if (d.dbg & 8) { /* block 0's (& 16: every block's) phase times, synchronously (breaks graph capture: steps run eagerly) */
        static void *prof_d;
        if (!prof_d) CU_CHECK(cudaMalloc(&prof_d, ds_prof_bytes(c)));
        d.prof = (unsigned long long *)prof_d;
    }
    /* The barrier and merge counters start at zero. Each launch leaves them so (the last block to
     * finish resets the barrier counter, each merge its counter), so they are cleared only where
     * this scratch or its layout is new: no memset before every step (a node of the step's graph,
     * ~1-2 us of the GPU's time between steps). */
    if (c->ds_zero != sp || c->ds_zero_words != n_z) { /* (the q pairs too: no epoch matches zeros) */
        CU_CHECK(cudaMemsetAsync(d.bar, 0, n_z * sizeof(unsigned), c->stream));
        c->ds_zero = sp, c->ds_zero_words = n_z;
    }
    if (d.opt & 4096) d.opt |= 256 | 512; /* (q pairs replace the q counters: the attention phases wait by heads) */
    if (d.dbg & 2) d.opt &= ~(256 | 512 | 4096); /* (no grid-barrier waits: the head counters, reset by the last block
                                                  * after every wait on them, would be reset under a waiting block) */
    if (d.H + 2 * d.KV > 32 || d.CH > 32) d.opt &= ~(256 | 512 | 4096); /* (the head counters' layout) */
    if (d.prof && (d.dbg & 16)) CU_CHECK(cudaMemsetAsync(d.prof, 0, ds_prof_bytes(c), c->stream));
    /* a cooperative launch: it fails (instead of waiting forever at the first grid barrier) where
     * not all blocks can be resident at once, e.g. under MPS with an SM limit.
     * DIA_CUDA_DECODE_STEP_COOP=0: a plain launch (measurements) */
    const char *coop = getenv("DIA_CUDA_DECODE_STEP_COOP");
    cudaLaunchConfig_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDim = dim3((unsigned)c->sm_count), cfg.blockDim = dim3((unsigned)var.threads), cfg.dynamicSmemBytes = ds_smem(var.nst);
    cfg.stream = c->stream;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeCooperative, at[0].val.cooperative = 1;
    cfg.attrs = at, cfg.numAttrs = coop && coop[0] == '0' ? 0 : 1;
    const cudaError_t le = cudaLaunchKernelEx(&cfg, ds_kernel(var.ws), d);
    if (le != cudaSuccess) c->ds_zero = NULL; /* (a launch that failed may leave them anywhere) */
    CU_CHECK(le);
    if (d.prof && (st = (d.dbg & 16) ? ds_profile_all(c, &d, c->sm_count) : ds_profile_report(c, &d)) != DIA_OK) return st;
    __atomic_add_fetch(&g_ds_launches, 1, __ATOMIC_RELAXED);
    return DIA_OK;
}
