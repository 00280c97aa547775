/* fuzz_dac_config.c - libFuzzer target: arbitrary text as a DAC config.json. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dac.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    dac_config c;
    (void)dac_config_parse(s, "fuzz", &c);
    free(s);
    return 0;
}
