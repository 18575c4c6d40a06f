/*
 * parse.h - value parsers for the config: numbers, durations, booleans,
 * HOST:PORT addresses and lists.  Pure functions; each returns 0 or -1 and
 * on error fills a static-string reason.
 */
#ifndef TLSPROXY_PARSE_H
#define TLSPROXY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP_HOST_MAX 256

struct tp_hostport {
	char host[TP_HOST_MAX]; /* name or IP literal, no brackets; "*" = any */
	uint16_t port;
	bool is_ip;    /* host is an IPv4/IPv6 literal */
	bool is_v6;    /* host is an IPv6 literal */
	bool wildcard; /* "*" */
};

int tp_parse_uint(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out, const char **why);
int tp_parse_duration_ms(const char *s, uint64_t *out, const char **why);
int tp_parse_bool(const char *s, bool *out, const char **why);
int tp_parse_hostport(const char *s, struct tp_hostport *out, const char **why);
/* tp_hostport_format - "host:port" or "[v6]:port" into dst. */
void tp_hostport_format(const struct tp_hostport *hp, char *dst, size_t len);
/*
 * tp_list_next - iterate a comma/space separated list: *p is advanced past
 * the item; the item is copied into buf.  Returns 1 for an item, 0 at
 * the end, -1 for an item that does not fit in buf (callers refuse it).
 */
int tp_list_next(const char **p, char *buf, size_t len);
/* tp_xstrdup - strdup, or "out of memory" and exit 1 (start, reload). */
char *tp_xstrdup(const char *s);
/* tp_strcaseeq - ASCII case-insensitive equality. */
bool tp_strcaseeq(const char *a, const char *b);

#endif
