/* api_common.c - versions, status strings, options and dia_free. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model.h"

DIA_API const char *dia_version_string(void) { return DIA_VERSION_STRING; }
DIA_API int dia_abi_version(void) { return DIA_ABI_VERSION; }

DIA_API const char *dia_status_string(dia_status s) {
    switch (s) {
    case DIA_OK: return "ok";
    case DIA_ERR_INVALID_ARG: return "invalid argument";
    case DIA_ERR_IO: return "i/o error";
    case DIA_ERR_BAD_MODEL: return "bad model file";
    case DIA_ERR_OUT_OF_MEMORY: return "out of memory";
    case DIA_ERR_CAPACITY: return "capacity exceeded";
    case DIA_ERR_TEXT_TOO_LONG: return "text too long";
    case DIA_ERR_BACKEND: return "backend unavailable or failed";
    case DIA_ERR_BAD_AUDIO: return "bad audio or codes";
    case DIA_ERR_CANCELLED: return "cancelled";
    case DIA_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

DIA_API void dia_free(void *ptr) { free(ptr); }

DIA_API dia_status dia_options_new(dia_options **out) {
    dia_clear_error();
    if (!out) return dia_fail(DIA_ERR_INVALID_ARG, "dia_options_new: out is NULL");
    dia_options *o = calloc(1, sizeof *o);
    *out = o;
    if (!o) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    strcpy(o->backend, "cpu");
    strcpy(o->dtype, "auto");
    return DIA_OK;
}

DIA_API void dia_options_free(dia_options *o) { free(o); }

static int parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

DIA_API dia_status dia_options_set(dia_options *o, const char *key, const char *value) {
    dia_clear_error();
    if (!o || !key || !value) return dia_fail(DIA_ERR_INVALID_ARG, "dia_options_set: NULL argument");
    if (!strcmp(key, "backend")) {
        if (strcmp(value, "cpu") && strcmp(value, "cuda"))
            return dia_fail(DIA_ERR_INVALID_ARG, "option backend: \"%s\" is not cpu or cuda", value);
        strcpy(o->backend, value);
    } else if (!strcmp(key, "threads")) {
        if (!parse_int(value, 0, 4096, &o->threads))
            return dia_fail(DIA_ERR_INVALID_ARG, "option threads: \"%s\" is not an integer in [0, 4096]", value);
    } else if (!strcmp(key, "device")) {
        if (!parse_int(value, 0, 1024, &o->device))
            return dia_fail(DIA_ERR_INVALID_ARG, "option device: \"%s\" is not an integer in [0, 1024]", value);
    } else if (!strcmp(key, "dtype")) {
        if (strcmp(value, "auto") && strcmp(value, "f32") && strcmp(value, "bf16"))
            return dia_fail(DIA_ERR_INVALID_ARG, "option dtype: \"%s\" is not auto, f32 or bf16", value);
        strcpy(o->dtype, value);
    } else if (!strcmp(key, "encoder_memory")) {
        if (strcmp(value, "device") && strcmp(value, "host"))
            return dia_fail(DIA_ERR_INVALID_ARG, "option encoder_memory: \"%s\" is not device or host", value);
        o->encoder_host = !strcmp(value, "host");
    } else {
        return dia_fail(DIA_ERR_INVALID_ARG, "unknown option \"%s\"", key);
    }
    return DIA_OK;
}
