/*
 * parse.c - value parsers shared by the config and the policy modules.
 * No allocation, no global state, no locale: safe for unit tests and
 * fuzzers.  Numbers are range-checked (never atoi).  Domain names are
 * checked byte by byte in ASCII (no locale, no IDN: A-labels only).
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

#define DOMAIN_WHY                                                             \
	"bad domain name (letters, digits, '-' and '_'; labels of 1 to 63 "    \
	"characters, 253 in all; not all digits at the end)"

static bool
ascii_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

int
tp_parse_domain(const char *s, bool fqdn, bool allow_root, char *out,
    size_t len, const char **why)
{
	size_t n = strlen(s), lab = 0;
	bool digits = true;

	if (allow_root && strcmp(s, ".") == 0) {
		if (len < 2)
			goto bad;
		memcpy(out, ".", 2);
		return 0;
	}
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (lab == 0 || lab > 63 || s[i - 1] == '-')
				goto bad;
			lab = 0;
			digits = true;
			continue;
		}
		if (!ascii_alnum(c) && c != '-' && c != '_')
			goto bad;
		if (c == '-' && lab == 0)
			goto bad;
		if (c < '0' || c > '9')
			digits = false;
		lab++;
	}
	/* the last label: an all-digit one is an address, never a TLD */
	if (lab == 0 || lab > 63 || s[n - 1] == '-' || digits)
		goto bad;
	if (n + 2 > len)
		goto bad;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	if (fqdn)
		out[n++] = '.';
	out[n] = '\0';
	return 0;
bad:
	*why = DOMAIN_WHY;
	return -1;
}

#define MX_ADDR_WHY                                                            \
	"mx: takes a domain name, not an address (leave out mx: to connect "   \
	"to an address)"

int
tp_parse_dest(const char *s, struct tp_hostport *out, const char **why)
{
	const char *rest = s + 3, *colon;
	unsigned long long port = TP_MX_PORT;
	unsigned char tmp[16];
	char dom[TP_HOST_MAX];
	size_t dl;

	if (*s == '[' && (colon = strchr(s, ']')) != NULL &&
	    memchr(s, ':', (size_t)(colon - s)) == NULL) {
		/* Postfix's [HOST]:PORT: a name's address records only,
		 * which is what HOST:PORT means here too */
		dl = (size_t)(colon - s - 1);
		if (dl == 0 || dl >= sizeof(dom) || colon[1] != ':') {
			*why = "expected [HOST]:PORT";
			return -1;
		}
		snprintf(dom, sizeof(dom), "%.*s%s", (int)dl, s + 1, colon + 1);
		if (tp_parse_hostport(dom, out, why) < 0)
			return -1;
		if (out->wildcard) {
			*why = "bad host name";
			return -1;
		}
		return 0;
	}
	if (strncmp(s, "mx:", 3) != 0)
		return tp_parse_hostport(s, out, why);
	memset(out, 0, sizeof(*out));
	if (*rest == '\0') {
		*why = "expected mx:DOMAIN[:PORT]";
		return -1;
	}
	colon = strchr(rest, ':');
	if (*rest == '[' || (colon != NULL && strchr(colon + 1, ':') != NULL)) {
		*why = MX_ADDR_WHY; /* [host], [IPv6]:PORT or an IPv6 address */
		return -1;
	}
	dl = colon ? (size_t)(colon - rest) : strlen(rest);
	if (dl >= sizeof(dom)) {
		*why = DOMAIN_WHY;
		return -1;
	}
	memcpy(dom, rest, dl);
	dom[dl] = '\0';
	if (inet_pton(AF_INET, dom, tmp) == 1) {
		*why = MX_ADDR_WHY;
		return -1;
	}
	if (dl > 0 && strspn(dom, "0123456789") == dl && colon == NULL) {
		/* "mx:25" was once the host "mx", port 25 */
		*why = "expected mx:DOMAIN[:PORT] (for a host named mx, write "
		       "its full name)";
		return -1;
	}
	if (tp_parse_domain(
		dom, false, false, out->host, sizeof(out->host), why) < 0)
		return -1;
	if (colon != NULL &&
	    tp_parse_uint(colon + 1, 1, 65535, &port, why) < 0) {
		*why = "bad port (1-65535)";
		return -1;
	}
	out->port = (uint16_t)port;
	out->mx = true;
	return 0;
}

int
tp_parse_ipport(const char *s, char *out, size_t len, const char **why)
{
	const char *at = strchr(s, '@');
	size_t hl = at ? (size_t)(at - s) : strlen(s);
	unsigned long long port = 0;
	unsigned char tmp[16];
	char ip[INET6_ADDRSTRLEN];

	if (*s == '[') {
		*why = "write the address without brackets: IP or IP@PORT";
		return -1;
	}
	if (hl == 0 || hl >= sizeof(ip))
		goto bad;
	memcpy(ip, s, hl);
	ip[hl] = '\0';
	if (inet_pton(AF_INET, ip, tmp) != 1 &&
	    inet_pton(AF_INET6, ip, tmp) != 1) {
		/* 192.0.2.1:53, as in HOST:PORT */
		char *colon = strchr(ip, ':');

		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			*colon = '\0';
			if (inet_pton(AF_INET, ip, tmp) == 1) {
				*why = "write a port as IP@PORT";
				return -1;
			}
		}
		goto bad;
	}
	if (at != NULL && tp_parse_uint(at + 1, 1, 65535, &port, why) < 0) {
		*why = "bad port (1-65535)";
		return -1;
	}
	if (at != NULL ? (size_t)snprintf(out, len, "%s@%llu", ip, port) >= len
		       : (size_t)snprintf(out, len, "%s", ip) >= len)
		goto bad;
	return 0;
bad:
	*why = "expected an IP address (IP or IP@PORT)";
	return -1;
}

void
tp_hostport_format(const struct tp_hostport *hp, char *dst, size_t len)
{
	snprintf(dst, len,
	    hp->mx          ? "mx:%s:%u"
		: hp->is_v6 ? "[%s]:%u"
			    : "%s:%u",
	    hp->host, (unsigned)hp->port);
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

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long
tp_parse_hex(const char *s, unsigned char *out, size_t max)
{
	size_t n = 0;
	int hi = -1, v;

	for (; *s; s++) {
		if (*s == ':' || *s == ' ')
			continue;
		if ((v = hexval(*s)) < 0)
			return -1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= max)
			return -1;
		out[n++] = (unsigned char)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? (long)n : -1;
}
