/* ops.h - small helpers the model code uses on top of the backend vtable. */
#ifndef DIA_OPS_H
#define DIA_OPS_H

#include "model.h"

/* Run `call`; on failure jump to `fail` with the status in `st`. */
#define TRY(call)                                \
    do {                                         \
        if ((st = (call)) != DIA_OK) goto fail;  \
    } while (0)

/* y[M,N] (+)= x[M,K] . W for a loaded weight in either layout. */
static inline dia_status op_linear(dia_backend *be, dia_tensor *y, const dia_tensor *x, const dia_weight *w,
                                   int accumulate) {
    return be->ops->matmul(be, y, x, &w->t, w->trans, accumulate);
}

/* Reshaped views of a contiguous tensor. */
static inline dia_tensor as2(const dia_tensor *t, int64_t a, int64_t b) {
    int64_t ne[2] = {a, b};
    return dia_tensor_view(t, 0, 2, ne);
}
static inline dia_tensor as3(const dia_tensor *t, int64_t a, int64_t b, int64_t c) {
    int64_t ne[3] = {a, b, c};
    return dia_tensor_view(t, 0, 3, ne);
}
static inline dia_tensor as4(const dia_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t ne[4] = {a, b, c, d};
    return dia_tensor_view(t, 0, 4, ne);
}

#endif
