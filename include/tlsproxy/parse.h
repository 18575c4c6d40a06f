/*
 * parse.h - value parsers for the config: numbers, durations, booleans,
 * HOST:PORT addresses, mx:DOMAIN destinations, domain names, IP[@PORT]
 * DNS server addresses and lists.  Pure functions; each returns 0 or -1
 * and on error fills a static-string reason.
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
	bool mx;       /* "mx:DOMAIN[:PORT]": host is the domain (lower
			  case, no trailing dot), whose MX hosts are the
			  destination (spec 4.8); port 25 unless given */
};

#define TP_MX_PORT 25

int tp_parse_uint(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out, const char **why);
int tp_parse_duration_ms(const char *s, uint64_t *out, const char **why);
int tp_parse_bool(const char *s, bool *out, const char **why);
int tp_parse_hostport(const char *s, struct tp_hostport *out, const char **why);
/*
 * tp_parse_dest - a connect entry: "mx:DOMAIN[:PORT]" (out->mx set, port
 * 1-65535, default 25), Postfix's "[HOST]:PORT" (a host, as HOST:PORT) or
 * any form tp_parse_hostport takes.
 */
int tp_parse_dest(const char *s, struct tp_hostport *out, const char **why);
/*
 * tp_parse_domain - a DNS domain name: letters, digits, '-' and '_',
 * labels of 1 to 63 characters (not starting or ending with '-'), at most
 * 253 characters, a last label that is not all digits; one trailing dot
 * allowed.  Written to out in lower case, with a trailing dot when fqdn
 * (else without).  "." (the root) only when allow_root (out ".").
 */
int tp_parse_domain(const char *s, bool fqdn, bool allow_root, char *out,
    size_t len, const char **why);
/*
 * tp_parse_ipport - a DNS server "IP" or "IP@PORT" (IPv4 or IPv6 literal,
 * no brackets, port 1-65535), written to out as "IP" or "IP@PORT" with
 * the port in plain decimal: the form libunbound's ub_ctx_set_fwd() and
 * ub_ctx_set_stub() take.  out needs TP_IPPORT_MAX bytes.
 */
#define TP_IPPORT_MAX 64
int tp_parse_ipport(const char *s, char *out, size_t len, const char **why);
/* tp_hostport_format - "host:port", "[v6]:port" or "mx:domain:port". */
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

/*
 * tp_parse_hex - hex digits of S (':' and ' ' between them skipped) into
 * OUT, at most MAX bytes: the byte count, or -1 (a bad digit, an odd count,
 * more than MAX bytes).
 */
long tp_parse_hex(const char *s, unsigned char *out, size_t max);

#endif
