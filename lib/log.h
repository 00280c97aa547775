/* log.h - internal logging: every error gets one line through the user's callback. */
#ifndef DIA_LOG_H
#define DIA_LOG_H

#include "dia.h"

#if defined(__GNUC__)
#define DIA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DIA_PRINTF(a, b)
#endif

void dia_log(dia_log_level level, const char *fmt, ...) DIA_PRINTF(2, 3);
/* Log an error line and return `status`, so error paths read: return dia_fail(DIA_ERR_IO, "..."). */
dia_status dia_fail(dia_status status, const char *fmt, ...) DIA_PRINTF(2, 3);
/* Clear the calling thread's last error (called at API entry points). */
void dia_clear_error(void);

#endif
