/* fuzz_util.h - the fuzz targets' two ways to hand libFuzzer's bytes to the library. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The bytes as a NUL-terminated heap string (free()), or NULL. */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return NULL;
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* The bytes as the file /tmp/fuzz_<name>_<pid>.<ext>, its path in path[cap]; 0 if it cannot be written.
 * The caller unlinks it. */
static inline int fuzz_file(const uint8_t *data, size_t size, const char *name, const char *ext, char *path, size_t cap) {
    snprintf(path, cap, "/tmp/fuzz_%s_%d.%s", name, (int)getpid(), ext);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    return 1;
}

#endif
