/*
 * tls_policy.c - Postfix protocol and cipher-grade grammar.
 *
 * protocols: a list of items separated by commas, spaces or colons; each
 * is ">=V", "<=V", "!V" (exclude) or "V" (include), V being SSLv2, SSLv3,
 * TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 (any case) or a hex wire value (0x0303).
 * Includes, when present, form the starting set; otherwise every version
 * from SSLv3 to TLSv1.3.  The result must be a contiguous range (OpenSSL
 * only has min/max), as in Postfix 3.6+.  SSLv2 is accepted and ignored.
 *
 * Cipher grades follow Postfix 3.8+: high and medium, with the legacy
 * algorithms Postfix excludes by default removed; null is eNULL only.
 */
#include "tlsproxy/tls_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/parse.h"

static const struct {
	const char *name;
	int version;
} proto_names[] = {
    {"SSLv2", 0x0200},
    {"SSLv3", TP_PROTO_SSL3},
    {"TLSv1", TP_PROTO_TLS1},
    {"TLSv1.1", TP_PROTO_TLS11},
    {"TLSv1.2", TP_PROTO_TLS12},
    {"TLSv1.3", TP_PROTO_TLS13},
};

static int
proto_lookup(const char *s)
{
	char *end;
	long v;

	for (size_t i = 0; i < TP_ARRAY_LEN(proto_names); i++)
		if (tp_strcaseeq(s, proto_names[i].name))
			return proto_names[i].version;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		v = strtol(s + 2, &end, 16);
		if (*end == '\0' && end != s + 2 && v >= 0x0200 &&
		    v <= TP_PROTO_TLS13)
			return (int)v;
	}
	return -1;
}

const char *
tp_policy_proto_name(int version)
{
	for (size_t i = 0; i < TP_ARRAY_LEN(proto_names); i++)
		if (proto_names[i].version == version)
			return proto_names[i].name;
	return "unknown";
}

/* Bit i of a set stands for version 0x0300 + i (SSLv3 .. TLSv1.3). */
#define PBIT(v) (1u << ((v)-TP_PROTO_SSL3))
#define PALL                                                                   \
	(PBIT(TP_PROTO_SSL3) | PBIT(TP_PROTO_TLS1) | PBIT(TP_PROTO_TLS11) |    \
	    PBIT(TP_PROTO_TLS12) | PBIT(TP_PROTO_TLS13))

int
tp_policy_protocols(const char *spec, int *min, int *max, const char **why)
{
	unsigned include = 0, exclude = 0, set;
	int lo = TP_PROTO_SSL3, hi = TP_PROTO_TLS13, v, first = -1, last = -1;
	int rc;
	char item[32], buf[256];
	const char *p = buf, *name;

	/* Postfix also separates with colons inside policy tables. */
	if (strlen(spec) >= sizeof(buf)) {
		*why = "protocols: too long";
		return -1;
	}
	for (size_t i = 0; (buf[i] = spec[i] == ':' ? ' ' : spec[i]); i++)
		;
	while ((rc = tp_list_next(&p, item, sizeof(item))) != 0) {
		name = item;
		if (rc < 0) {
			*why = "protocols: unknown protocol (SSLv3, TLSv1, "
			       "TLSv1.1, TLSv1.2, TLSv1.3)";
			return -1;
		}
		if (strncmp(item, ">=", 2) == 0 ||
		    strncmp(item, "<=", 2) == 0 || item[0] == '!')
			name = item + (item[0] == '!' ? 1 : 2);
		if ((v = proto_lookup(name)) < 0) {
			*why = "protocols: unknown protocol (SSLv3, TLSv1, "
			       "TLSv1.1, TLSv1.2, TLSv1.3)";
			return -1;
		}
		/* SSLv2 is long gone: as a bound it stands below SSLv3. */
		if (v < TP_PROTO_SSL3 && item[0] != '<')
			continue;
		if (item[0] == '>')
			lo = v > lo ? v : lo;
		else if (item[0] == '<')
			hi = v < hi ? v : hi;
		else if (item[0] == '!')
			exclude |= PBIT(v);
		else
			include |= PBIT(v);
	}
	set = (include ? include : PALL) & ~exclude;
	for (v = TP_PROTO_SSL3; v <= TP_PROTO_TLS13; v++)
		if (v < lo || v > hi)
			set &= ~PBIT(v);
	if (set == 0) {
		*why = "protocols: no protocol left enabled";
		return -1;
	}
	for (v = TP_PROTO_SSL3; v <= TP_PROTO_TLS13; v++) {
		if (!(set & PBIT(v)))
			continue;
		if (first < 0)
			first = v;
		else if (last != v - 1) {
			*why = "protocols: the enabled protocols must form a "
			       "contiguous range";
			return -1;
		}
		last = v;
	}
	*min = first;
	*max = last;
	return 0;
}

/* Postfix 3.8 removes these from every grade by default. */
#define LEGACY_EXCLUDES                                                        \
	"!SEED:!IDEA:!3DES:!RC2:!RC4:!RC5:!MD5:!kDH:!kECDH:!aDSS:!aNULL"

int
tp_policy_cipherlist(
    enum tp_grade grade, const char *exclude, char *dst, size_t len)
{
	const char *p = exclude ? exclude : "";
	char item[128];
	int n, rc;

	switch (grade) {
	case TP_GRADE_HIGH:
		n = snprintf(dst, len, "HIGH:" LEGACY_EXCLUDES);
		break;
	case TP_GRADE_MEDIUM:
		n = snprintf(dst, len, "HIGH:MEDIUM:" LEGACY_EXCLUDES);
		break;
	default:
		n = snprintf(dst, len, "eNULL:!aNULL");
		break;
	}
	if (n < 0 || (size_t)n >= len)
		return -1;
	while ((rc = tp_list_next(&p, item, sizeof(item))) != 0) {
		if (rc < 0)
			return -1;
		for (const char *c = item; *c; c++)
			if (*c == ':' || *c == '!' || *c == '@')
				return -1;
		n += snprintf(dst + n, len - n, ":!%s", item);
		if ((size_t)n >= len)
			return -1;
	}
	return 0;
}
