/* fuzz_tokenize.c - libFuzzer target: arbitrary bytes through the tokenizer and the sampler's
 * parameter setters. */
#include "dia.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_text(data, size);
    if (!s) return 0;
    size_t n = 0;
    if (dia_tokenize(s, NULL, 0, &n) == DIA_OK && n) {
        int32_t *ids = malloc(n * sizeof(int32_t));
        size_t m = 0;
        if (ids && dia_tokenize(s, ids, n, &m) == DIA_OK && m != n) abort(); /* sizes must agree */
        free(ids);
    }
    dia_gen_params *p = NULL;
    if (size >= 8 && dia_gen_params_new(&p) == DIA_OK) {
        double v;
        memcpy(&v, data, 8);
        const char *keys[] = {"max_tokens", "cfg_scale", "temperature", "top_p", "cfg_filter_top_k", "seed"};
        dia_gen_params_set(p, keys[data[0] % 6], v);
        dia_gen_params_free(p);
    }
    free(s);
    return 0;
}
