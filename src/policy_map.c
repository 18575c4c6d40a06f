/*
 * policy_map.c - a Postfix smtp_tls_policy_maps source file: reader,
 * entry parser and lookup (policy_map.h).
 *
 * Reading follows postmap: readlline's logical lines (comment and blank
 * lines skipped, even inside a continued line; a line starting with white
 * space continues the previous one), the key up to the first white space,
 * the rest split on white space and commas with "{ NAME = VALUE }"
 * grouping (Postfix's mystrtokq + extpar + split_nameval).  The entry
 * rules are those of Postfix's smtp_tls_policy.c tls_policy_lookup_one():
 * levels in any case; match only at fingerprint ('|' between digests),
 * verify and secure (':' between names), repeatable; ciphers, protocols,
 * exclude and servername once each; attributes at level none are
 * ignored with a warning.  Postfix's attributes that would change the
 * security we cannot honour (tafile) are refused; the harmless ones
 * (connection_reuse, enable_rpk, the TLSRPT policy_* attributes) are
 * ignored with a warning.  Ours: fingerprint (sha256 or sha1, '|'
 * between them) and tlsa (static records for dane/dane-only).  Problems
 * never stop the parse: each goes to the caller's callback with its
 * physical line, so tlsproxy -t shows them all.  Duplicate keys are an
 * error at the later line (postmap only warns and keeps the first).
 * Pure; main thread at load, lookups from any thread.
 */
#include "tlsproxy/common.h"
#include "tlsproxy/policy_map.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/parse.h"
#include "tlsproxy/tls_policy.h"

#define SEPS     ", \t\r\n" /* Postfix's CHARS_COMMA_SP */
#define ECHO_MAX 100        /* bytes of file text quoted in a message */
#define KEY_MAX  (TP_HOST_MAX + 16)

#define LEVELS_WHY                                                             \
	"none, may, encrypt, fingerprint, verify, secure, dane or dane-only"

/* One logical line: the text and where each physical line starts in it. */
struct seg {
	size_t off;
	int line;
};

struct parser {
	struct tp_policy_map *m;
	tp_pm_diag_fn *diag;
	void *arg;
	/* the logical line being read */
	char *buf;
	size_t len, cap;
	struct seg *segs;
	size_t nsegs, segcap;
	/* every key read so far, good entry or not (key and line only):
	 * a duplicate of a broken entry is reported too */
	struct tp_policy_map seen;
	/* the entry being parsed */
	const char *key; /* for messages */
	bool bad;        /* it had an error: dropped */
};

static void __attribute__((format(printf, 4, 5)))
say(struct parser *p, int line, bool warning, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (warning) {
		p->m->nwarnings++;
	} else {
		p->m->nerrors++;
		p->bad = true;
	}
	if (p->diag != NULL)
		p->diag(p->arg, line, warning, msg);
}

/* echo - S (N bytes) for a message: bounded, non-printables as '?'. */
static const char *
echo(char *dst, size_t len, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 4 < len; i++) {
		if (o >= ECHO_MAX) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		dst[o++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	}
	dst[o] = '\0';
	return dst;
}

/* line_at - the physical line of offset OFF of the logical line. */
static int
line_at(const struct parser *p, size_t off)
{
	size_t i = 0;

	while (i + 1 < p->nsegs && p->segs[i + 1].off <= off)
		i++;
	return p->segs[i].line;
}

/* ---- the hash of keys ---- */

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* find_slot - the slot of KEY: its entry's, or the empty one to use. */
static size_t
find_slot(const struct tp_policy_map *m, const char *key)
{
	size_t i = (size_t)hash(key) & (m->nslots - 1);

	while (m->slots[i] != 0 && strcmp(m->e[m->slots[i] - 1].key, key) != 0)
		i = (i + 1) & (m->nslots - 1);
	return i;
}

/* index_add - entry IDX into the hash (which is kept under half full). */
static void
index_add(struct tp_policy_map *m, size_t idx)
{
	if (2 * (m->n + 1) > m->nslots) {
		size_t *old = m->slots, nold = m->nslots;

		m->nslots = nold ? 2 * nold : 64;
		m->slots = tp_xrealloc(NULL, m->nslots, sizeof(size_t));
		memset(m->slots, 0, m->nslots * sizeof(size_t));
		for (size_t i = 0; i < nold; i++)
			if (old[i] != 0)
				m->slots[find_slot(m, m->e[old[i] - 1].key)] =
				    old[i];
		free(old);
	}
	m->slots[find_slot(m, m->e[idx].key)] = idx + 1;
}

const struct tp_pm_entry *
tp_policy_lookup_key(const struct tp_policy_map *m, const char *key)
{
	char k[KEY_MAX];
	size_t n = strlen(key), i;

	if (m == NULL || m->nslots == 0 || n >= sizeof(k))
		return NULL;
	for (size_t j = 0; j <= n; j++)
		k[j] = (char)tolower((unsigned char)key[j]);
	i = find_slot(m, k);
	return m->slots[i] ? &m->e[m->slots[i] - 1] : NULL;
}

const struct tp_pm_entry *
tp_policy_lookup(const struct tp_policy_map *m, const char *domain)
{
	char d[KEY_MAX];
	const struct tp_pm_entry *e;
	const char *p;
	size_t n = strlen(domain);

	if (m == NULL || n == 0 || n >= sizeof(d) || domain[0] == '.')
		return NULL;
	memcpy(d, domain, n + 1);
	if (n > 1 && d[n - 1] == '.')
		d[--n] = '\0';
	/* [host]:port and host:port name a nexthop: one lookup, as is */
	if (strpbrk(d, "[]:") != NULL)
		return tp_policy_lookup_key(m, d);
	/* Postfix: the name, then ".parent" for each parent domain */
	for (p = d; p != NULL; p = strchr(p + 1, '.'))
		if ((e = tp_policy_lookup_key(m, p)) != NULL &&
		    (p == d || e->kind == TP_PM_PARENT))
			return e;
	return NULL;
}

/* ---- keys ---- */

/* port_ok - 1-65535, or a service name (smtp, submission). */
static bool
port_ok(const char *s)
{
	unsigned long long v;
	const char *why;

	if (*s >= '0' && *s <= '9')
		return tp_parse_uint(s, 1, 65535, &v, &why) == 0;
	if (!isalpha((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

/* host_ok - inside [ ]: a host name, an IPv4 or IPv6 address, ipv6:... */
static bool
host_ok(const char *s)
{
	char tmp[TP_HOST_MAX];
	const char *why;
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(tmp))
		return false;
	if (strncmp(s, "ipv6:", 5) == 0)
		s += 5;
	if (strchr(s, ':') != NULL)
		return strspn(s, "0123456789abcdef:.") == strlen(s);
	if (strspn(s, "0123456789.") == strlen(s)) {
		unsigned a, b, c, d;
		char end;

		return sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &end) == 4 &&
		    a < 256 && b < 256 && c < 256 && d < 256;
	}
	return tp_parse_domain(s, false, false, tmp, sizeof(tmp), &why) == 0;
}

/*
 * parse_key - RAW (N bytes) into OUT, lower case, and its kind; 0, or -1
 * after saying why.
 */
static int
parse_key(struct parser *p, int line, const char *raw, size_t n, char *out,
    enum tp_pm_kind *kind)
{
	char k[KEY_MAX], e[ECHO_MAX + 8], dom[TP_HOST_MAX];
	const char *why, *colon, *close;

	echo(e, sizeof(e), raw, n);
	if (n >= sizeof(k)) {
		say(p, line, false, "bad key \"%s\": too long", e);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		k[i] = (char)tolower((unsigned char)raw[i]);
	k[n] = '\0';
	if (k[0] == '[') {
		close = strchr(k, ']');
		if (close == NULL) {
			say(p, line, false, "bad key \"%s\": missing ']'", e);
			return -1;
		}
		if ((size_t)(close - k - 1) >= sizeof(dom)) {
			say(p, line, false, "bad key \"%s\": too long", e);
			return -1;
		}
		memcpy(dom, k + 1, (size_t)(close - k - 1));
		dom[close - k - 1] = '\0';
		if (!host_ok(dom)) {
			say(p, line, false,
			    "bad key \"%s\": not a host name or address "
			    "inside [ ]",
			    e);
			return -1;
		}
		if (close[1] != '\0' &&
		    (close[1] != ':' || !port_ok(close + 2))) {
			say(p, line, false,
			    "bad key \"%s\": expected [HOST] or [HOST]:PORT "
			    "(port 1-65535 or a service name)",
			    e);
			return -1;
		}
		*kind = TP_PM_NEXTHOP;
		memcpy(out, k, n + 1);
		return 0;
	}
	colon = strchr(k, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		say(p, line, false,
		    "bad key \"%s\": an IPv6 address goes inside [ ] "
		    "([2001:db8::1]:25)",
		    e);
		return -1;
	}
	if (colon != NULL && k[0] == '.') {
		say(p, line, false,
		    "bad key \"%s\": a .DOMAIN key takes no port (Postfix "
		    "matches parent domains of recipient domains only)",
		    e);
		return -1;
	}
	if (colon != NULL && !port_ok(colon + 1)) {
		say(p, line, false,
		    "bad key \"%s\": bad port (1-65535 or a service name)", e);
		return -1;
	}
	if (colon != NULL)
		k[colon - k] = '\0'; /* colon + 1 is the port */
	if (tp_parse_domain(k[0] == '.' ? k + 1 : k, false, false, dom,
		sizeof(dom), &why) < 0 ||
	    (k[0] == '.' && k[1] == '.')) {
		say(p, line, false,
		    "bad key \"%s\": expected DOMAIN, .DOMAIN, [HOST], "
		    "[HOST]:PORT or HOST:PORT: %s",
		    e, why);
		return -1;
	}
	if (colon != NULL) {
		snprintf(out, KEY_MAX, "%s:%s", dom, colon + 1);
		*kind = TP_PM_NEXTHOP;
	} else {
		snprintf(out, KEY_MAX, "%s%s", k[0] == '.' ? "." : "", dom);
		*kind = k[0] == '.' ? TP_PM_PARENT : TP_PM_DOMAIN;
	}
	return 0;
}

/* ---- attributes ---- */

/*
 * next_token - Postfix's mystrtokq: skip separators, then up to the next
 * separator outside { }.  *s advances; returns the start or NULL.
 */
static char *
next_token(char **s, size_t *tlen)
{
	char *t = *s + strspn(*s, SEPS), *c;
	int depth = 0;

	if (*t == '\0')
		return NULL;
	for (c = t; *c; c++) {
		if (*c == '{')
			depth++;
		else if (*c == '}' && depth > 0)
			depth--;
		else if (depth == 0 && strchr(SEPS, *c) != NULL)
			break;
	}
	*tlen = (size_t)(c - t);
	*s = c;
	return t;
}

/* trim - a copy of S (N bytes) without white space at either end. */
static char *
trim(const char *s, size_t n)
{
	char *out;

	while (n > 0 && isspace((unsigned char)*s))
		s++, n--;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	out = tp_xrealloc(NULL, n + 1, 1);
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

/*
 * nameval - TOKEN (N bytes) as NAME=VALUE or { NAME = VALUE } (white
 * space inside braces made single spaces, as extpar does).  0, or -1
 * with *why.
 */
static int
nameval(const char *tok, size_t n, char **name, char **value, const char **why)
{
	const char *eq;
	char *in, *o;

	*name = *value = NULL;
	if (n > 0 && tok[0] == '{') {
		if (tok[n - 1] != '}') {
			*why = memchr(tok, '}', n) ? "text after '}'"
						   : "missing '}'";
			return -1;
		}
		in = trim(tok + 1, n - 2);
		/* normalize white space (line breaks of a continued line) */
		for (o = in; *o; o++)
			if (isspace((unsigned char)*o))
				*o = ' ';
		eq = strchr(in, '=');
		if (eq == NULL) {
			free(in);
			*why = "missing '=' after attribute name";
			return -1;
		}
		*name = trim(in, (size_t)(eq - in));
		*value = trim(eq + 1, strlen(eq + 1));
		free(in);
	} else {
		eq = memchr(tok, '=', n);
		if (eq == NULL) {
			*why = "expected NAME=VALUE";
			return -1;
		}
		*name = trim(tok, (size_t)(eq - tok));
		*value = trim(eq + 1, n - (size_t)(eq - tok) - 1);
	}
	if (**name == '\0') {
		free(*name);
		free(*value);
		*name = *value = NULL;
		*why = "missing attribute name";
		return -1;
	}
	for (o = *name; *o; o++)
		*o = (char)tolower((unsigned char)*o);
	return 0;
}

/* split - the items of S between any of the bytes of SEP, in turn. */
static char *
split(char **s, const char *sep)
{
	char *t;

	*s += strspn(*s, sep);
	if (**s == '\0')
		return NULL;
	t = *s;
	*s += strcspn(*s, sep);
	if (**s != '\0')
		*(*s)++ = '\0';
	return t;
}

/* match_name_ok - hostname, nexthop, dot-nexthop, a name or .suffix. */
static bool
match_name_ok(const char *s)
{
	char tmp[TP_HOST_MAX];
	const char *why;

	if (*s == '.')
		s++;
	return tp_parse_domain(s, false, false, tmp, sizeof(tmp), &why) == 0;
}

/* add_match - the ':'-separated names of VALUE (verify, secure). */
static void
add_match(struct parser *p, struct tp_pm_entry *e, int line, char *value)
{
	char *s = value, *t, ev[ECHO_MAX + 8];

	while ((t = split(&s, ": \t,")) != NULL) {
		for (char *c = t; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (!match_name_ok(t)) {
			say(p, line, false,
			    "%s: match: \"%s\" is not hostname, nexthop, "
			    "dot-nexthop, a host name or .domain",
			    p->key, echo(ev, sizeof(ev), t, strlen(t)));
			continue;
		}
		e->match = tp_xrealloc(e->match, e->nmatch + 1, sizeof(char *));
		e->match[e->nmatch++] = tp_xstrdup(t);
	}
}

/* add_digests - the '|'-separated digests of VALUE (fingerprint). */
static void
add_digests(struct parser *p, struct tp_pm_entry *e, int line, const char *attr,
    char *value)
{
	char *s = value, *t, ev[ECHO_MAX + 8];
	unsigned char md[64];
	long n;

	while ((t = split(&s, "| \t,")) != NULL) {
		n = tp_parse_hex(t, md, sizeof(md));
		if (n == 20 || n == 32) {
			e->fps =
			    tp_xrealloc(e->fps, e->nfps + 1, sizeof(*e->fps));
			memcpy(e->fps[e->nfps].md, md, (size_t)n);
			e->fps[e->nfps++].len = (unsigned char)n;
			continue;
		}
		echo(ev, sizeof(ev), t, strlen(t));
		if (n == 16)
			say(p, line, false,
			    "%s: %s: \"%s\" is an md5 digest, which is not "
			    "accepted: use sha256 (Postfix: "
			    "smtp_tls_fingerprint_digest = sha256)",
			    p->key, attr, ev);
		else
			say(p, line, false,
			    "%s: %s: \"%s\" is not a sha256 or sha1 digest "
			    "(hex, colons allowed)",
			    p->key, attr, ev);
	}
}

/*
 * add_tlsa - the '|'-separated records of VALUE: "U S M HEX" (inside
 * { }, as the fields have spaces) or "U:S:M:HEX".
 */
static void
add_tlsa(struct parser *p, struct tp_pm_entry *e, int line, char *value)
{
	char *s = value, *t, ev[ECHO_MAX + 8];
	struct tp_pm_tlsa *r;
	unsigned u, sel, mt;
	int off;
	long n;
	size_t hl;

	while ((t = split(&s, "|")) != NULL) {
		char *rec = trim(t, strlen(t));

		echo(ev, sizeof(ev), rec, strlen(rec));
		off = 0;
		/* U:S:M:HEX: the first three colons separate the fields */
		if (strpbrk(rec, " \t") == NULL)
			for (int k = 0; k < 3 && strchr(rec, ':') != NULL; k++)
				*strchr(rec, ':') = ' ';
		if (*rec == '\0') {
			free(rec);
			continue;
		}
		if (sscanf(rec, "%u %u %u %n", &u, &sel, &mt, &off) != 3 ||
		    off == 0 || u < 2 || u > 3 || sel > 1 || mt > 2) {
			say(p, line, false,
			    "%s: tlsa: \"%s\": expected USAGE SELECTOR MTYPE "
			    "HEX with usage 2 or 3, selector 0 or 1, matching "
			    "type 0, 1 or 2",
			    p->key, ev);
			free(rec);
			continue;
		}
		hl = strlen(rec + off);
		e->tlsa = tp_xrealloc(e->tlsa, e->ntlsa + 1, sizeof(*e->tlsa));
		r = &e->tlsa[e->ntlsa];
		r->data = tp_xrealloc(NULL, hl / 2 + 1, 1);
		n = tp_parse_hex(rec + off, r->data, hl / 2 + 1);
		if (n <= 0 || (mt == 1 && n != 32) || (mt == 2 && n != 64)) {
			say(p, line, false,
			    "%s: tlsa: \"%s\": the data is not hex of the "
			    "right length",
			    p->key, ev);
			free(r->data);
			free(rec);
			continue;
		}
		r->usage = (unsigned char)u;
		r->selector = (unsigned char)sel;
		r->mtype = (unsigned char)mt;
		r->len = (size_t)n;
		e->ntlsa++;
		free(rec);
	}
}

static const char *const level_names[] = {
    [TP_SEC_NONE] = "none",
    [TP_SEC_MAY] = "may",
    [TP_SEC_ENCRYPT] = "encrypt",
    [TP_SEC_FINGERPRINT] = "fingerprint",
    [TP_SEC_VERIFY] = "verify",
    [TP_SEC_SECURE] = "secure",
    [TP_SEC_DANE] = "dane",
    [TP_SEC_DANE_ONLY] = "dane-only",
};

/* once - an attribute Postfix takes once per entry. */
static bool
once(struct parser *p, int line, const char *name, bool seen)
{
	if (seen)
		say(p, line, false,
		    "%s: attribute \"%s\" is specified multiple times", p->key,
		    name);
	return !seen;
}

/* at_levels - NAME is valid at this entry's level (a mask of levels). */
static bool
at_levels(struct parser *p, const struct tp_pm_entry *e, int line,
    const char *name, unsigned mask)
{
	if (mask & (1u << e->level))
		return true;
	say(p, line, false,
	    "%s: attribute \"%s\" is invalid at security level \"%s\"", p->key,
	    name, level_names[e->level]);
	return false;
}

#define LV(x) (1u << (x))

/* attribute - one NAME=VALUE of entry E. */
static void
attribute(struct parser *p, struct tp_pm_entry *e, int line, const char *name,
    char *value)
{
	char ev[ECHO_MAX + 8], buf[1024];
	const char *why;
	int lo, hi;

	echo(ev, sizeof(ev), value, strlen(value));
	if (*value == '\0') {
		say(p, line, false, "%s: attribute \"%s\" has an empty value",
		    p->key, name);
		return;
	}
	if (strcmp(name, "match") == 0) {
		if (!at_levels(p, e, line, name,
			LV(TP_SEC_FINGERPRINT) | LV(TP_SEC_VERIFY) |
			    LV(TP_SEC_SECURE)))
			return;
		if (e->level == TP_SEC_FINGERPRINT)
			add_digests(p, e, line, name, value);
		else
			add_match(p, e, line, value);
	} else if (strcmp(name, "fingerprint") == 0) {
		if (at_levels(p, e, line, name, LV(TP_SEC_FINGERPRINT)))
			add_digests(p, e, line, name, value);
	} else if (strcmp(name, "tlsa") == 0) {
		if (at_levels(p, e, line, name,
			LV(TP_SEC_DANE) | LV(TP_SEC_DANE_ONLY)))
			add_tlsa(p, e, line, value);
	} else if (strcmp(name, "protocols") == 0) {
		if (!once(p, line, name, e->protocols != NULL))
			return;
		if (tp_policy_protocols(value, &lo, &hi, &why) < 0) {
			say(p, line, false, "%s: protocols=%s: %s", p->key, ev,
			    why);
			return;
		}
		e->protocols = tp_xstrdup(value);
		e->proto_min = lo;
		e->proto_max = hi;
		e->proto_line = line;
	} else if (strcmp(name, "ciphers") == 0) {
		if (!once(p, line, name, e->grade >= 0))
			return;
		if (tp_strcaseeq(value, "high"))
			e->grade = TP_GRADE_HIGH;
		else if (tp_strcaseeq(value, "medium"))
			e->grade = TP_GRADE_MEDIUM;
		else if (tp_strcaseeq(value, "null"))
			e->grade = TP_GRADE_NULL;
		else if (tp_strcaseeq(value, "low") ||
		    tp_strcaseeq(value, "export"))
			say(p, line, false,
			    "%s: ciphers=%s: low and export are obsolete "
			    "(Postfix 3.8 treats them as medium): use medium",
			    p->key, ev);
		else
			say(p, line, false,
			    "%s: ciphers=%s: expected high, medium or null",
			    p->key, ev);
		if (e->exclude == NULL && e->grade >= 0)
			e->cipher_line = line;
	} else if (strcmp(name, "exclude") == 0) {
		if (!once(p, line, name, e->exclude != NULL))
			return;
		for (char *c = value; *c; c++)
			if (*c == ':' || *c == ',')
				*c = ' ';
		if (tp_policy_cipherlist(
			TP_GRADE_HIGH, value, buf, sizeof(buf)) < 0) {
			say(p, line, false,
			    "%s: exclude=%s: expected OpenSSL cipher names or "
			    "classes, separated by ':'",
			    p->key, ev);
			return;
		}
		e->exclude = trim(value, strlen(value));
		e->cipher_line = line;
	} else if (strcmp(name, "servername") == 0) {
		char tmp[TP_HOST_MAX];

		if (!once(p, line, name, e->servername != NULL))
			return;
		for (char *c = value; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (tp_parse_domain(
			value, false, false, tmp, sizeof(tmp), &why) < 0) {
			say(p, line, false,
			    "%s: servername=%s: not a host name (a name, "
			    "hostname or nexthop)",
			    p->key, ev);
			return;
		}
		e->servername = tp_xstrdup(tmp);
	} else if (strcmp(name, "tafile") == 0) {
		say(p, line, false,
		    "%s: attribute \"tafile\" is not supported: trust anchors "
		    "come from the route's ca_file or ca_path (a destination "
		    "with anchors of its own needs a route of its own)",
		    p->key);
	} else if (strcmp(name, "connection_reuse") == 0 ||
	    strcmp(name, "enable_rpk") == 0) {
		if (!tp_strcaseeq(value, "yes") && !tp_strcaseeq(value, "no")) {
			say(p, line, false,
			    "%s: attribute \"%s\" has bad value: \"%s\"",
			    p->key, name, ev);
			return;
		}
		say(p, line, true, "%s: attribute \"%s\" is ignored (%s)",
		    p->key, name,
		    name[0] == 'c' ? "the route's connection_reuse applies"
				   : "raw public keys are not solicited: the "
				     "server's certificate is checked");
	} else if (strcmp(name, "policy_type") == 0 ||
	    strcmp(name, "policy_ttl") == 0 ||
	    strcmp(name, "policy_domain") == 0 ||
	    strcmp(name, "policy_string") == 0 ||
	    strcmp(name, "mx_host_pattern") == 0 ||
	    strcmp(name, "policy_failure") == 0) {
		say(p, line, true,
		    "%s: attribute \"%s\" is ignored (TLSRPT reporting "
		    "attributes of an MTA-STS resolver; not used by "
		    "tlsproxy)",
		    p->key, name);
	} else {
		say(p, line, false, "%s: unknown attribute \"%s\"", p->key,
		    echo(ev, sizeof(ev), name, strlen(name)));
	}
}

/*
 * parse_level - the level word W: Postfix's names in any case, and
 * smtp_tls_per_site's MUST and MUST_NOPEERMATCH as Postfix mapped them.
 * -1 when unknown.
 */
static int
parse_level(struct parser *p, int line, const char *w)
{
	for (int i = TP_SEC_NONE; i <= TP_SEC_DANE_ONLY; i++)
		if (tp_strcaseeq(w, level_names[i]))
			return i;
	if (tp_strcaseeq(w, "must")) {
		say(p, line, true,
		    "%s: MUST is a word of the obsolete smtp_tls_per_site "
		    "table, not a level (Postfix's policy maps refuse it): "
		    "read as verify, as smtp_tls_per_site did; write verify "
		    "(or secure)",
		    p->key);
		return TP_SEC_VERIFY;
	}
	if (tp_strcaseeq(w, "must_nopeermatch")) {
		say(p, line, true,
		    "%s: MUST_NOPEERMATCH is a word of the obsolete "
		    "smtp_tls_per_site table, not a level: read as encrypt, "
		    "which does not verify the certificate; write encrypt "
		    "(or verify)",
		    p->key);
		return TP_SEC_ENCRYPT;
	}
	return -1;
}

static void
entry_free(struct tp_pm_entry *e)
{
	free(e->key);
	for (size_t i = 0; i < e->nmatch; i++)
		free(e->match[i]);
	free(e->match);
	free(e->fps);
	for (size_t i = 0; i < e->ntlsa; i++)
		free(e->tlsa[i].data);
	free(e->tlsa);
	free(e->protocols);
	free(e->exclude);
	free(e->servername);
}

/* entry - one logical line (p->buf): KEY LEVEL [NAME=VALUE ...]. */
static void
entry(struct parser *p)
{
	struct tp_policy_map *m = p->m;
	struct tp_pm_entry e = {.grade = -1};
	char key[KEY_MAX], ev[ECHO_MAX + 8], *s, *tok, *name, *value;
	const struct tp_pm_entry *dup;
	const char *why;
	size_t klen, tlen;
	int line = p->segs[0].line, lv;
	char sep;

	p->bad = false;
	klen = strcspn(p->buf, " \t\r\n");
	if (parse_key(p, line, p->buf, klen, key, &e.kind) < 0)
		return;
	p->key = key;
	if ((dup = tp_policy_lookup_key(&p->seen, key)) != NULL) {
		say(p, line, false, "duplicate key %s (first at line %d)", key,
		    dup->line);
		return;
	}
	p->seen.e = tp_xrealloc(p->seen.e, p->seen.n + 1, sizeof(*p->seen.e));
	memset(&p->seen.e[p->seen.n], 0, sizeof(*p->seen.e));
	p->seen.e[p->seen.n].key = tp_xstrdup(key);
	p->seen.e[p->seen.n].line = line;
	index_add(&p->seen, p->seen.n);
	p->seen.n++;
	s = p->buf + klen;
	if ((tok = next_token(&s, &tlen)) == NULL) {
		say(p, line, false,
		    "%s: no security level (expected KEY LEVEL "
		    "[NAME=VALUE ...])",
		    key);
		return;
	}
	sep = tok[tlen];
	tok[tlen] = '\0';
	lv = parse_level(p, line_at(p, (size_t)(tok - p->buf)), tok);
	if (lv < 0) {
		say(p, line_at(p, (size_t)(tok - p->buf)), false,
		    "%s: unknown security level \"%s\" (%s)", key,
		    echo(ev, sizeof(ev), tok, tlen), LEVELS_WHY);
		return;
	}
	s = tok + tlen + (sep != '\0' ? 1 : 0);
	e.level = lv;
	e.line = line;
	while ((tok = next_token(&s, &tlen)) != NULL) {
		int tl = line_at(p, (size_t)(tok - p->buf));

		echo(ev, sizeof(ev), tok, tlen);
		if (e.level == TP_SEC_NONE) {
			/* Postfix: attributes are ignored without TLS */
			say(p, tl, true,
			    "%s: ignoring attribute \"%s\" with TLS disabled "
			    "(level none)",
			    key, ev);
			continue;
		}
		if (tok[0] == '#') {
			/* postmap has no comments after text: one error
			 * for the rest of the line */
			say(p, tl, false,
			    "%s: malformed attribute \"%s\": a # comment must "
			    "start its own line",
			    key, ev);
			break;
		}
		if (nameval(tok, tlen, &name, &value, &why) < 0) {
			say(p, tl, false, "%s: malformed attribute \"%s\": %s",
			    key, ev, why);
			continue;
		}
		attribute(p, &e, tl, name, value);
		free(name);
		free(value);
	}
	if (!p->bad && e.level == TP_SEC_FINGERPRINT && e.nfps == 0)
		say(p, line, false,
		    "%s: security level fingerprint needs match=DIGEST "
		    "(sha256 of the certificate or its public key; '|' "
		    "between several)",
		    key);
	if (p->bad) {
		entry_free(&e);
		return;
	}
	e.key = tp_xstrdup(key);
	m->e = tp_xrealloc(m->e, m->n + 1, sizeof(*m->e));
	m->e[m->n] = e;
	index_add(m, m->n);
	m->n++;
}

/* logical_add - physical line LINE (TEXT, N bytes) to the logical line. */
static void
logical_add(struct parser *p, const char *text, size_t n, int line)
{
	if (p->nsegs == p->segcap) {
		p->segcap = p->segcap ? 2 * p->segcap : 8;
		p->segs = tp_xrealloc(p->segs, p->segcap, sizeof(*p->segs));
	}
	p->segs[p->nsegs].off = p->len;
	p->segs[p->nsegs++].line = line;
	if (p->len + n + 1 > p->cap) {
		p->cap = (p->len + n + 1) * 2;
		p->buf = tp_xrealloc(p->buf, p->cap, 1);
	}
	/* postmap joins the lines as they are (a continuation starts with
	 * white space, which keeps the words apart) */
	memcpy(p->buf + p->len, text, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void
logical_end(struct parser *p)
{
	if (p->nsegs > 0)
		entry(p);
	p->nsegs = 0;
	p->len = 0;
}

struct tp_policy_map *
tp_policy_map_parse(
    const char *text, size_t len, tp_pm_diag_fn *diag, void *arg)
{
	struct tp_policy_map *m = tp_xrealloc(NULL, 1, sizeof(*m));
	struct parser p = {.m = m, .diag = diag, .arg = arg};
	const char *s = text, *end = text + len, *nl, *c;
	size_t n;
	int line = 0;

	memset(m, 0, sizeof(*m));
	for (; s < end; s = nl + 1) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (nl == NULL)
			nl = end;
		n = (size_t)(nl - s);
		line++;
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if (memchr(s, '\0', n) != NULL) {
			p.bad = false;
			say(&p, line, false, "NUL byte in line");
			continue;
		}
		for (c = s; c < s + n && isspace((unsigned char)*c); c++)
			;
		if (c == s + n || *c == '#')
			continue; /* blank or comment: skipped, even inside a
				     continued line (readlline) */
		if (c == s) {
			logical_end(&p);
		} else if (p.nsegs == 0) {
			say(&p, line, false,
			    "a continuation line (it starts with white space) "
			    "with no line before it to continue");
			continue;
		}
		logical_add(&p, s, n, line);
	}
	logical_end(&p);
	free(p.buf);
	free(p.segs);
	for (size_t i = 0; i < p.seen.n; i++)
		free(p.seen.e[i].key);
	free(p.seen.e);
	free(p.seen.slots);
	return m;
}

struct tp_policy_map *
tp_policy_map_load(
    const char *path, tp_pm_diag_fn *diag, void *arg, char *why, size_t len)
{
	struct tp_policy_map *m;
	FILE *f = fopen(path, "r");
	char *text;
	size_t n;
	int err;

	if (f == NULL) {
		snprintf(why, len, "cannot read: %s", strerror(errno));
		return NULL;
	}
	text = tp_xrealloc(NULL, TP_PM_MAX_SIZE + 1, 1);
	n = fread(text, 1, TP_PM_MAX_SIZE + 1, f);
	err = ferror(f) ? errno : 0;
	fclose(f);
	if (err != 0 || n > TP_PM_MAX_SIZE) {
		if (err != 0)
			snprintf(why, len, "cannot read: %s", strerror(err));
		else
			snprintf(
			    why, len, "larger than %d bytes", TP_PM_MAX_SIZE);
		free(text);
		return NULL;
	}
	m = tp_policy_map_parse(text, n, diag, arg);
	free(text);
	return m;
}

void
tp_policy_map_free(struct tp_policy_map *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		entry_free(&m->e[i]);
	free(m->e);
	free(m->slots);
	free(m);
}
