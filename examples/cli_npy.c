/* cli_npy.c - NumPy .npy files for the CLI: int32 [rows, cols] codes and float32 [n] audio.
 * Reading also accepts little-endian int64 / float64 and converts; C order only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct npy_header {
    char descr[8];
    int ndim;
    long shape[4];
    long data_offset;
} npy_header;

static int parse_header(FILE *f, const char *path, npy_header *h) {
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "dia: %s is not a .npy file\n", path);
        return -1;
    }
    long hlen;
    long skip = 10;
    if (pre[6] == 1) hlen = pre[8] | (pre[9] << 8);
    else {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) return -1;
        hlen = pre[8] | (pre[9] << 8) | ((long)b[0] << 16) | ((long)b[1] << 24);
        skip = 12;
    }
    if (hlen <= 0 || hlen > 65536) {
        fprintf(stderr, "dia: %s: bad .npy header length\n", path);
        return -1;
    }
    char *txt = calloc((size_t)hlen + 1, 1);
    if (!txt || fread(txt, 1, (size_t)hlen, f) != (size_t)hlen) {
        free(txt);
        fprintf(stderr, "dia: %s: truncated .npy header\n", path);
        return -1;
    }
    memset(h, 0, sizeof *h);
    h->data_offset = skip + hlen;
    const char *d = strstr(txt, "'descr'");
    const char *fo = strstr(txt, "'fortran_order'");
    const char *sh = strstr(txt, "'shape'");
    int ok = d && fo && sh && sscanf(d, "'descr': '%7[^']'", h->descr) == 1;
    if (ok && strstr(fo, "True") == fo + strlen("'fortran_order': ")) ok = 0;
    if (ok) {
        const char *p = strchr(sh, '(');
        ok = p != NULL;
        if (ok) p++;
        while (ok && *p && *p != ')') {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) {
                if (*p == ',' || *p == ' ') {
                    p++;
                    continue;
                }
                ok = 0;
                break;
            }
            if (h->ndim == 4 || v < 0) {
                ok = 0;
                break;
            }
            h->shape[h->ndim++] = v;
            p = end;
        }
    }
    free(txt);
    if (!ok) fprintf(stderr, "dia: %s: unsupported .npy header (need C order, plain dtype, <= 4 dims)\n", path);
    return ok ? 0 : -1;
}

static void *read_payload(FILE *f, const char *path, size_t n, size_t elsize) {
    void *buf = malloc(n * elsize + 1);
    if (!buf || fread(buf, elsize, n, f) != n) {
        free(buf);
        fprintf(stderr, "dia: %s: truncated .npy data\n", path);
        return NULL;
    }
    return buf;
}

int cli_npy_read_i32(const char *path, int32_t **data, int *rows, int *cols) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "dia: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    npy_header h;
    int rc = parse_header(f, path, &h);
    if (rc == 0 && (h.ndim != 2 || (strcmp(h.descr, "<i4") && strcmp(h.descr, "<i8")))) {
        fprintf(stderr, "dia: %s: expected int32 (or int64) codes of shape [frames, channels], got %s with %d dims\n",
                path, h.descr, h.ndim);
        rc = -1;
    }
    if (rc == 0) {
        const size_t n = (size_t)h.shape[0] * (size_t)h.shape[1];
        const int wide = !strcmp(h.descr, "<i8");
        void *raw = read_payload(f, path, n, wide ? 8 : 4);
        int32_t *out = raw ? malloc(n * 4 + 4) : NULL;
        if (!out) rc = -1;
        for (size_t i = 0; out && i < n; i++) {
            long long v = wide ? ((const int64_t *)raw)[i] : ((const int32_t *)raw)[i];
            if (v < INT32_MIN || v > INT32_MAX) {
                fprintf(stderr, "dia: %s: code %lld does not fit int32\n", path, v);
                free(out);
                out = NULL;
                rc = -1;
                break;
            }
            out[i] = (int32_t)v;
        }
        free(raw);
        *data = out;
        *rows = (int)h.shape[0];
        *cols = (int)h.shape[1];
    }
    fclose(f);
    return rc;
}

int cli_npy_read_f32(const char *path, float **data, size_t *n_out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "dia: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    npy_header h;
    int rc = parse_header(f, path, &h);
    if (rc == 0 && (h.ndim != 1 || (strcmp(h.descr, "<f4") && strcmp(h.descr, "<f8")))) {
        fprintf(stderr, "dia: %s: expected float32 samples of shape [n], got %s with %d dims\n", path, h.descr, h.ndim);
        rc = -1;
    }
    if (rc == 0) {
        const size_t n = (size_t)h.shape[0];
        const int wide = !strcmp(h.descr, "<f8");
        void *raw = read_payload(f, path, n, wide ? 8 : 4);
        float *out = raw ? malloc(n * 4 + 4) : NULL;
        if (!out) rc = -1;
        for (size_t i = 0; out && i < n; i++) out[i] = wide ? (float)((const double *)raw)[i] : ((const float *)raw)[i];
        free(raw);
        *data = out;
        *n_out = n;
    }
    fclose(f);
    return rc;
}

static int write_npy(const char *path, const char *descr, const char *shape, const void *data, size_t bytes) {
    char hdr[256];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "dia: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned short hl = (unsigned short)(len + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)len, f) == (size_t)len;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && (bytes == 0 || fwrite(data, 1, bytes, f) == bytes);
    if (fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "dia: error writing %s\n", path);
    return ok ? 0 : -1;
}

int cli_npy_write_i32(const char *path, const int32_t *data, int rows, int cols) {
    char shape[64];
    snprintf(shape, sizeof shape, "(%d, %d)", rows, cols);
    return write_npy(path, "<i4", shape, data, (size_t)rows * (size_t)cols * 4);
}

int cli_npy_write_f32(const char *path, const float *data, size_t n) {
    char shape[64];
    snprintf(shape, sizeof shape, "(%zu,)", n);
    return write_npy(path, "<f4", shape, data, n * 4);
}
