/* log.c - the process-wide log callback and the per-thread last error. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static dia_log_fn g_log_fn = NULL;
static void *g_log_user = NULL;
static dia_log_level g_log_level = DIA_LOG_WARN;
static _Thread_local char t_last_error[512];

DIA_API void dia_set_log_callback(dia_log_fn fn, void *user) {
    g_log_fn = fn;
    g_log_user = user;
    if (fn && g_log_level < DIA_LOG_INFO) g_log_level = DIA_LOG_INFO;
}

DIA_API void dia_set_log_level(dia_log_level max_level) { g_log_level = max_level; }

DIA_API const char *dia_last_error(void) { return t_last_error; }

void dia_clear_error(void) { t_last_error[0] = 0; }

static void vlog(dia_log_level level, const char *fmt, va_list ap) {
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    if (level == DIA_LOG_ERROR) snprintf(t_last_error, sizeof t_last_error, "%s", line);
    if (level > g_log_level) return;
    if (g_log_fn) {
        g_log_fn(level, line, g_log_user);
    } else {
        static const char *names[] = {"error", "warn", "info", "debug"};
        fprintf(stderr, "libdia %s: %s\n", names[level & 3], line);
    }
}

void dia_log(dia_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

dia_status dia_fail(dia_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(DIA_LOG_ERROR, fmt, ap);
    va_end(ap);
    return status;
}
