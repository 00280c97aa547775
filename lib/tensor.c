/* tensor.c - dtype helpers, tensor views and backend selection. */
#include <string.h>

#include "backend.h"
#include "log.h"

size_t dia_dtype_size(dia_dtype t) {
    switch (t) {
    case DIA_F32: return 4;
    case DIA_F16: return 2;
    case DIA_BF16: return 2;
    case DIA_I32: return 4;
    case DIA_I64: return 8;
    }
    return 0;
}

const char *dia_dtype_name(dia_dtype t) {
    switch (t) {
    case DIA_F32: return "F32";
    case DIA_F16: return "F16";
    case DIA_BF16: return "BF16";
    case DIA_I32: return "I32";
    case DIA_I64: return "I64";
    }
    return "?";
}

int64_t dia_tensor_nelem(const dia_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->ne[i];
    return n;
}

size_t dia_tensor_nbytes(const dia_tensor *t) { return (size_t)dia_tensor_nelem(t) * dia_dtype_size(t->dtype); }

dia_tensor dia_tensor_view(const dia_tensor *t, int64_t first, int ndim, const int64_t *ne) {
    dia_tensor v = *t;
    v.offset = t->offset + (size_t)first * dia_dtype_size(t->dtype);
    v.ndim = ndim;
    memset(v.ne, 0, sizeof v.ne);
    for (int i = 0; i < ndim; i++) v.ne[i] = ne[i];
    return v;
}

dia_status dia_backend_new(const char *name, int threads, int device, dia_backend **out) {
    *out = NULL;
    if (!name || !strcmp(name, "cpu")) return dia_backend_cpu_new(threads, out);
    if (!strcmp(name, "cuda")) return dia_backend_cuda_new(device, out);
    return dia_fail(DIA_ERR_INVALID_ARG, "unknown backend \"%s\" (expected cpu or cuda)", name);
}

void dia_backend_free(dia_backend *be) {
    if (be) be->ops->destroy(be);
}

dia_status dia_tensor_alloc(dia_backend *be, dia_dtype dtype, int ndim, const int64_t *ne, dia_tensor *out) {
    memset(out, 0, sizeof *out);
    out->dtype = dtype;
    out->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (ne[i] < 0) return dia_fail(DIA_ERR_INVALID_ARG, "negative tensor dimension");
        out->ne[i] = ne[i];
    }
    size_t bytes = dia_tensor_nbytes(out);
    return be->ops->alloc(be, bytes ? bytes : 1, &out->buf);
}

void dia_tensor_free(dia_backend *be, dia_tensor *t) {
    if (t && t->buf) be->ops->buffer_free(be, t->buf);
    if (t) t->buf = NULL;
}

dia_status dia_tensor_upload(dia_backend *be, dia_tensor *t, const void *src, size_t bytes) {
    if (bytes > dia_tensor_nbytes(t)) return dia_fail(DIA_ERR_INTERNAL, "upload of %zu bytes into a %zu-byte tensor",
                                                      bytes, dia_tensor_nbytes(t));
    return be->ops->upload(be, t->buf, t->offset, src, bytes);
}

dia_status dia_tensor_download(dia_backend *be, const dia_tensor *t, void *dst, size_t bytes) {
    if (bytes > dia_tensor_nbytes(t)) return dia_fail(DIA_ERR_INTERNAL, "download of %zu bytes from a %zu-byte tensor",
                                                      bytes, dia_tensor_nbytes(t));
    return be->ops->download(be, t->buf, t->offset, dst, bytes);
}
