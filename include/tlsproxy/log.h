/*
 * log.h - one line per event to stderr or syslog, with levels.
 * Thread-safe: each line is formatted on the stack and written with one
 * write(2) (stderr) or one syslog(3) call.
 */
#ifndef TLSPROXY_LOG_H
#define TLSPROXY_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum tp_log_level {
	TP_LOG_ERROR = 0,
	TP_LOG_WARNING,
	TP_LOG_INFO,
	TP_LOG_DEBUG,
};

enum tp_log_sink {
	TP_LOG_STDERR = 0,
	TP_LOG_SYSLOG,
};

void tp_log_init(const char *ident);
void tp_log_configure(enum tp_log_sink sink, enum tp_log_level level);
int tp_log_enabled(enum tp_log_level level);
void tp_log(enum tp_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tp_vlog(enum tp_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* tp_log_openssl - log the OpenSSL error queue (and clear it) at level. */
void tp_log_openssl(enum tp_log_level level, const char *prefix);
/* tp_log_escape - copy peer text into dst, escaped and capped, for logs. */
void tp_log_escape(char *dst, size_t dstlen, const char *src, size_t len);
/* tp_log_bytes - "123B", "1.2kB", "34.1MB" for byte counts. */
void tp_log_bytes(char *dst, size_t dstlen, unsigned long long n);

#endif
