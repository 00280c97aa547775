/* fuzz_safetensors.c - libFuzzer target: arbitrary bytes as a .safetensors file. The reader must
 * return a status (never crash, never read outside the mapping). `make fuzz` builds it. */
#include "fuzz_util.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    if (!fuzz_file(data, size, "st", "safetensors", path, sizeof path)) return 0;
    st_archive ar;
    if (st_open_file(path, &ar) == DIA_OK) {
        volatile uint8_t sink = 0;
        for (int i = 0; i < ar.n_tensors; i++) /* touch every tensor's bytes: must be inside the file */
            for (size_t b = 0; b < ar.tensors[i].nbytes; b += 4096) sink ^= ((const uint8_t *)ar.tensors[i].data)[b];
        st_close(&ar);
    }
    unlink(path);
    return 0;
}
