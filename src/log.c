/*
 * log.c - stderr/syslog sinks and levels.
 *
 * Every call formats one line into a stack buffer and emits it with one
 * write(2) or syslog(3), so lines from worker threads never interleave.
 * Warnings and errors get Postfix's "warning: " / "error: " prefix.
 * The sink and level are set once at start and on reload (plain ints:
 * a torn read is impossible and a late reader only logs one line more).
 */
#include "tlsproxy/log.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/err.h>

static const char *log_ident = "tlsproxy";
static volatile int log_sink = TP_LOG_STDERR;
static volatile int log_level = TP_LOG_INFO;

void
tp_log_init(const char *ident)
{
	log_ident = ident;
}

void
tp_log_configure(enum tp_log_sink sink, enum tp_log_level level)
{
	if (sink == TP_LOG_SYSLOG && log_sink != TP_LOG_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	log_sink = sink;
	log_level = level;
}

int
tp_log_enabled(enum tp_log_level level)
{
	return (int)level <= log_level;
}

void
tp_vlog(enum tp_log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	static const char *word[] = {"error: ", "warning: ", "", ""};
	char line[2048];
	int n, off;

	if (!tp_log_enabled(level))
		return;
	if (log_sink == TP_LOG_SYSLOG) {
		off = snprintf(line, sizeof(line), "%s", word[level]);
		vsnprintf(line + off, sizeof(line) - off, fmt, ap);
		syslog(prio[level], "%s", line);
		return;
	}
	off = snprintf(line, sizeof(line), "%s[%ld]: %s", log_ident,
	    (long)getpid(), word[level]);
	n = vsnprintf(line + off, sizeof(line) - off - 1, fmt, ap);
	if (n < 0)
		return;
	off += n;
	if (off > (int)sizeof(line) - 2)
		off = (int)sizeof(line) - 2;
	line[off++] = '\n';
	if (write(STDERR_FILENO, line, off) < 0) {
		/* nowhere left to report it */
	}
}

void
tp_log(enum tp_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tp_vlog(level, fmt, ap);
	va_end(ap);
}

void
tp_log_openssl(enum tp_log_level level, const char *prefix)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		tp_log(level, "%s: %s", prefix, buf);
	}
}

void
tp_log_escape(char *dst, size_t dstlen, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (dstlen == 0)
		return;
	if (len > 100)
		len = 100;
	for (i = 0; i < len && o + 5 < dstlen; i++) {
		unsigned char ch = (unsigned char)src[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			dst[o++] = (char)ch;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 15];
		}
	}
	dst[o] = '\0';
}

void
tp_log_bytes(char *dst, size_t dstlen, unsigned long long n)
{
	if (n < 1000)
		snprintf(dst, dstlen, "%lluB", n);
	else if (n < 1000000)
		snprintf(dst, dstlen, "%.1fkB", n / 1e3);
	else if (n < 1000000000)
		snprintf(dst, dstlen, "%.1fMB", n / 1e6);
	else
		snprintf(dst, dstlen, "%.1fGB", n / 1e9);
}
