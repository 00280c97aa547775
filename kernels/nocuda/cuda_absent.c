/* cuda_absent.c - linked when libdia is built without CUDA (make CUDA=0): the "cuda" backend
 * reports that it is not part of this build. */
#include "backend.h"
#include "log.h"

dia_status dia_backend_cuda_new(int device, dia_backend **out) {
    (void)device;
    *out = NULL;
    return dia_fail(DIA_ERR_BACKEND, "this libdia was built without CUDA (rebuild with make CUDA=1)");
}
