/*
 * parse.c - value parsers shared by the config and the policy modules.
 * No allocation, no global state, no locale: safe for unit tests and
 * fuzzers.  Numbers are range-checked (never atoi).
 */
#include "tlsproxy/parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
tp_xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL) {
		fprintf(stderr, "tlsproxy: out of memory\n");
		exit(1);
	}
	return d;
}

bool
tp_strcaseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
	return *a == *b;
}

int
tp_parse_uint(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out, const char **why)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s)) {
		*why = "not a number";
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		*why = "not a number";
		return -1;
	}
	if (v < min || v > max) {
		*why = "out of range";
		return -1;
	}
	*out = v;
	return 0;
}

int
tp_parse_duration_ms(const char *s, uint64_t *out, const char **why)
{
	unsigned long long v, mult = 1000;
	char *end;

	if (!isdigit((unsigned char)*s)) {
		*why = "not a duration (like 30s, 5m, 300)";
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		goto bad;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mult = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		mult = 86400 * 1000;
	else
		goto bad;
	if (v == 0 || v > 30ULL * 86400 * 1000 / mult) {
		*why = "out of range (1ms to 30d)";
		return -1;
	}
	*out = v * mult;
	return 0;
bad:
	*why = "not a duration (like 30s, 5m, 300)";
	return -1;
}

int
tp_parse_bool(const char *s, bool *out, const char **why)
{
	if (strcmp(s, "yes") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(s, "no") == 0) {
		*out = false;
		return 0;
	}
	*why = "must be yes or no";
	return -1;
}

int
tp_parse_hostport(const char *s, struct tp_hostport *out, const char **why)
{
	const char *colon, *hs, *he;
	unsigned long long port;
	unsigned char tmp[16];
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (*s == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (he == NULL || he[1] != ':') {
			*why = "expected [IPv6]:PORT";
			return -1;
		}
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			*why = "expected HOST:PORT";
			return -1;
		}
		hs = s;
		he = colon;
		if (memchr(hs, ':', he - hs) != NULL) {
			*why = "IPv6 addresses need brackets: [IPv6]:PORT";
			return -1;
		}
	}
	hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(out->host)) {
		*why = "bad host";
		return -1;
	}
	if (tp_parse_uint(colon + 1, 0, 65535, &port, why) < 0) {
		*why = "bad port (0-65535)";
		return -1;
	}
	memcpy(out->host, hs, hl);
	out->host[hl] = '\0';
	out->port = (uint16_t)port;
	if (strcmp(out->host, "*") == 0) {
		out->wildcard = true;
		return 0;
	}
	if (*s == '[') {
		if (inet_pton(AF_INET6, out->host, tmp) != 1) {
			*why = "bad IPv6 address";
			return -1;
		}
		out->is_ip = out->is_v6 = true;
		return 0;
	}
	if (inet_pton(AF_INET, out->host, tmp) == 1) {
		out->is_ip = true;
		return 0;
	}
	if (strspn(out->host, "0123456789.") == hl) {
		*why = "bad IPv4 address";
		return -1;
	}
	for (const char *p = out->host; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' &&
		    *p != '_') {
			*why = "bad host name";
			return -1;
		}
	}
	return 0;
}

void
tp_hostport_format(const struct tp_hostport *hp, char *dst, size_t len)
{
	snprintf(dst, len, hp->is_v6 ? "[%s]:%u" : "%s:%u", hp->host,
	    (unsigned)hp->port);
}

int
tp_list_next(const char **p, char *buf, size_t len)
{
	const char *s = *p, *e;
	size_t n;

	while (*s == ',' || isspace((unsigned char)*s))
		s++;
	if (*s == '\0') {
		*p = s;
		return 0;
	}
	e = s;
	while (*e && *e != ',' && !isspace((unsigned char)*e))
		e++;
	n = (size_t)(e - s);
	*p = e;
	if (n >= len) {
		buf[0] = '\0';
		return -1;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 1;
}
