/* fuzz_config.c - libFuzzer target: arbitrary text as a Dia config.json. */
#include "fuzz_util.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_text(data, size);
    if (!s) return 0;
    dia_config c;
    (void)dia_config_parse(s, "fuzz", &c);
    free(s);
    return 0;
}
