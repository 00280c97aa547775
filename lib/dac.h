/* dac.h - internal definitions of the DAC 44.1 kHz codec: its config, its weights (lib/dac_load.c)
 * and the chunked encode/decode entry points the generation code can stream with (lib/dac.c). */
#ifndef DIA_DAC_H
#define DIA_DAC_H

#include "backend.h"
#include "dia.h"
#include "safetensors.h"

#define DAC_MAX_BLOCKS 8     /* encoder / decoder blocks (4 in every released DAC) */
#define DAC_MAX_CODEBOOKS 32 /* residual quantizers (9 for 44.1 kHz) */
#define DAC_RES_UNITS 3      /* residual units per block, dilations 1, 3, 9 */
#define DAC_MAX_TABLES 16    /* codebooks the backend's embed op sums at most */

/* config.json of a DAC checkpoint (transformers DacConfig). */
typedef struct dac_config {
    int enc_dim;                       /* encoder_hidden_size: channels after the first conv (64) */
    int latent;                        /* hidden_size: channels of the latent z (1024) */
    int dec_dim;                       /* decoder_hidden_size: channels after the first decoder conv (1536) */
    int n_down, down[DAC_MAX_BLOCKS];  /* downsampling_ratios ([2, 4, 8, 8]) */
    int n_up, up[DAC_MAX_BLOCKS];      /* upsampling_ratios ([8, 8, 4, 2]) */
    int codebooks, codebook_size, codebook_dim; /* n_codebooks 9, codebook_size 1024, codebook_dim 8 */
    int hop;                           /* hop_length: samples per frame (512) = prod(down) = prod(up) */
    int sample_rate;                   /* sampling_rate (44100) */
} dac_config;

/* Parse a DAC config.json; DIA_ERR_BAD_MODEL naming the field (and `what`, the file) on error. */
dia_status dac_config_parse(const char *json, const char *what, dac_config *cfg);

/* A convolution with its (folded) weight. conv1d: w [Cout, Cin, K]; conv_transpose1d: w [Cin, Cout, K]. */
typedef struct dac_conv {
    dia_tensor w;
    dia_tensor b;  /* [Cout] */
    dia_tensor wt; /* bf16 [K, Cout, Cin] for the backend's conv_bf16 (decoder convs in bf16 mode), else unset */
    int stride, dilation, pad;
} dac_conv;

/* y = x + conv2(snake2(conv1(snake1(x)))); conv1 k7 dilated, conv2 k1. */
typedef struct dac_resunit {
    dia_tensor snake1, snake2; /* alpha [C] */
    dac_conv conv1, conv2;
} dac_resunit;

/* Encoder block: res units at cin, snake(cin), conv (cin -> cout, k 2s, stride s).
 * Decoder block: snake(cin), conv_transpose (cin -> cout, k 2s, stride s), res units at cout. */
typedef struct dac_block {
    int cin, cout, stride;
    dia_tensor snake; /* alpha [cin] */
    dac_conv conv;
    dac_resunit ru[DAC_RES_UNITS];
} dac_block;

typedef struct dac_quantizer {
    dac_conv in_proj;      /* [codebook_dim, latent, 1] */
    dac_conv out_proj;     /* [latent, codebook_dim, 1] */
    dac_conv out_proj_neg; /* -out_proj (weight and bias), to subtract from the residual with add() */
    dia_tensor codebook;   /* [codebook_size, codebook_dim] */
} dac_quantizer;

/* Three activation buffers of `cap` f32 elements each, used as [C, T] (or [T, C]) views in
 * rotation; kept between calls (grow-only). */
typedef struct dac_work {
    dia_tensor buf[3];
    int64_t cap;
} dac_work;

struct dia_dac {
    dac_config cfg;
    dia_backend *be;
    int bf16; /* the decoder's convolutions run as conv_bf16 (dtype option, see dia.h) */
    st_archive ar;
    dia_buffer **wbufs; /* one wrapped buffer per mapped file (plain weights are used in place) */
    int n_wbufs;
    dia_buffer **owned; /* buffers of folded weight-norm weights and negated projections */
    int n_owned, cap_owned;
    /* encoder */
    dac_conv enc_conv1; /* [enc_dim, 1, 7] */
    dac_block enc[DAC_MAX_BLOCKS];
    dia_tensor enc_snake; /* [enc_dim * 2^n_down] */
    dac_conv enc_conv2;   /* [latent, enc_dim * 2^n_down, 3] */
    /* quantizer */
    dac_quantizer q[DAC_MAX_CODEBOOKS];
    /* decoder */
    dac_conv dec_conv1; /* [dec_dim, latent, 7] */
    dac_block dec[DAC_MAX_BLOCKS];
    dia_tensor dec_snake; /* [dec_dim / 2^n_up] */
    dac_conv dec_conv2;   /* [1, dec_dim / 2^n_up, 7] */
    /* chunking */
    int dec_context; /* frames of context each side that make a chunk equal the whole decode */
    int enc_context; /* the same for the encoder, in frames */
    int chunk_frames; /* frames decoded / encoded per chunk by dia_dac_decode / dia_dac_encode */
    dac_work work;    /* activation buffers of the last calls (lib/dac.c) */
    /* bf16 mode with <= DAC_MAX_TABLES codebooks: code_tab[q] f32 [codebook_size, latent] =
     * out_proj_q(codebook_q[n]) + bias for every code n, so the decoder's input is one embedding
     * sum of the codes (lib/dac_load.c builds them) */
    dia_tensor code_tab[DAC_MAX_CODEBOOKS];
    int have_code_tab;
};

/* Free the kept activation buffers (dia_dac_free). */
void dac_work_release(dia_dac *dac);

/* Decode frames [first, first + count) of the code sequence `codes` int32 [frames, codebooks] into
 * `out` f32 [count * hop]. Only frames [first - dec_context, first + count + dec_context) (clipped
 * to the sequence) are read and run through the decoder, so memory is bounded by `count` and the
 * result equals the whole-sequence decode of those frames; on the CPU backend bit for bit (every
 * GEMM has a fixed column tile, so rounding does not depend on where the sequence was cut). For
 * streaming: frame f is final once frames up to f + dec_context are known (or the sequence has
 * ended). Each call recomputes up to 2 * dec_context frames of context, so ask for a few dozen
 * frames at a time (count >= 32 keeps the overhead under ~2x).
 * Errors: DIA_ERR_INVALID_ARG (range), DIA_ERR_BAD_AUDIO (a code outside [0, codebook_size)). */
dia_status dac_decode_range(dia_dac *dac, const int32_t *codes, int frames, int first, int count, float *out);

/* Frames of right context a decoded frame depends on (dac->dec_context). */
int dac_context_frames(const dia_dac *dac);

/* The encoder output before quantisation for frames [first, first + count) of `audio` f32
 * [frames * hop] (already padded to whole frames): latent f32 [latent, count] in `out`. Chunked
 * like dac_decode_range with enc_context frames of context. */
dia_status dac_encode_latent_range(dia_dac *dac, const float *audio, int frames, int first, int count, float *out);

/* Residual vector quantisation of latent f32 [latent, frames]: codes int32 [frames, codebooks]. */
dia_status dac_quantize(dia_dac *dac, const float *latent, int frames, int32_t *codes);

#endif
