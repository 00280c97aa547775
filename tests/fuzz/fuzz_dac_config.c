/* fuzz_dac_config.c - libFuzzer target: arbitrary text as a DAC config.json. */
#include "dac.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_text(data, size);
    if (!s) return 0;
    dac_config c;
    (void)dac_config_parse(s, "fuzz", &c);
    free(s);
    return 0;
}
