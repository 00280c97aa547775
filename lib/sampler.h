/* sampler.h - internal: generation parameters and the sampler used by the generation loop. */
#ifndef DIA_SAMPLER_H
#define DIA_SAMPLER_H

#include <stdint.h>

#include "dia.h"

/* The public stand-alone sampler functions work on Dia-1.6B's frame shape. */
#define DIA_SAMPLER_C 9
#define DIA_SAMPLER_V 1028
#define DIA_SAMPLER_EOS 1024

struct dia_gen_params {
    int max_tokens;
    double cfg_scale, temperature, top_p;
    int top_k;
    uint64_t seed;
};

void dia_gen_params_defaults(dia_gen_params *p);

/* Final distribution of one channel (cond, uncond: [V]) into probs[V]; *greedy (may be NULL)
 * receives the argmax after the CFG filter and channel masks (the temperature-0 choice). */
dia_status dia_sampler_channel(const dia_gen_params *p, const float *cond, const float *uncond, int V, int channel,
                               int eos, float *probs, int *greedy);
/* Counter-based uniform in [0, 1) for (seed, item, step, channel). */
double dia_rng_uniform(uint64_t seed, uint64_t item, uint64_t step, uint64_t channel);
/* Inverse-CDF pick over probs[V] in vocabulary order. */
int dia_pick(const float *probs, int V, double u);
/* Codes of one frame: cond, uncond [C, V]; scratch [V]. */
dia_status dia_sampler_pick(const dia_gen_params *p, const float *cond, const float *uncond, int C, int V, int eos,
                            uint64_t item, uint64_t step, float *scratch, int32_t *codes);

#endif
