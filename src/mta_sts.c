/*
 * mta_sts.c - MTA-STS without I/O (mta_sts.h): the _mta-sts TXT record
 * (RFC 8461 3.1), the policy file (3.2), MX name matching (4.1, RFC 6125
 * 6.4.3), the mta_sts_cache text format and the RFC 8460 names.
 *
 * The parsers follow RFC 8461's ABNF where it is firm and say so where
 * they chose: a TXT record counts when it begins with "v=STSv1;" (3.1's
 * discard rule, so "v=STSv1 ;" is not one, erratum 6285); the policy's
 * lines end in LF or CRLF (the ABNF's sts-policy-term, erratum 6253),
 * blank lines are skipped, "version" may be on any line, later copies of
 * version/mode/max_age are ignored unread; max_age above 31557600 is an
 * error, not clamped.  An invalid policy is never partly used.  Messages
 * carry line numbers and field names, never the peer's text.
 *
 * Pure; no state: any thread.  Callers: the MTA-STS event layer, the unit
 * tests, the fuzzer.
 */
#include "tlsproxy/mta_sts.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/parse.h"

static bool
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* is_id - 3.1: sts-id's value, 1*32(ALPHA / DIGIT). */
static bool
is_id(const char *s, size_t n)
{
	if (n == 0 || n > TP_MTA_STS_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum((unsigned char)s[i]))
			return false;
	return true;
}

/* ---- 3.1: the TXT record ---------------------------------------------- */

/*
 * A cursor over one record: its text, or its rdata (character-strings,
 * each a length octet and that many bytes), read as the concatenated
 * text without copying it.
 */
struct cur {
	const unsigned char *d;
	size_t len, off;
	size_t seg; /* wire: bytes left in the current character-string */
	bool wire;
};

/* cur_peek - the next byte of the text, or -1 at its end. */
static int
cur_peek(struct cur *c)
{
	if (c->wire) {
		while (c->seg == 0) {
			if (c->off >= c->len)
				return -1;
			c->seg = c->d[c->off++];
		}
		return c->d[c->off];
	}
	return c->off < c->len ? c->d[c->off] : -1;
}

/* cur_next - step over the byte cur_peek returned. */
static void
cur_next(struct cur *c)
{
	c->off++;
	if (c->wire)
		c->seg--;
}

static void
cur_wsp(struct cur *c)
{
	while (is_wsp(cur_peek(c)))
		cur_next(c);
}

/* rdata_ok - the character-strings of D fill exactly LEN bytes. */
static bool
rdata_ok(const unsigned char *d, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return false;
	while (off < len)
		off += 1 + (size_t)d[off];
	return off == len;
}

/*
 * txt_field - 3.1 sts-field: sts-id or sts-extension.  The name is
 * (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."); an extension's
 * value 1*(%x21-3A / %x3C / %x3E-7E).
 */
static int
txt_field(struct cur *c, char *id, bool *have_id, const char **why)
{
	char name[TP_MTA_STS_ID_MAX];
	size_t n = 0, m = 0;
	int ch;

	while ((ch = cur_peek(c)) >= 0 &&
	    (is_alnum(ch) ||
		(n > 0 && (ch == '_' || ch == '-' || ch == '.')))) {
		if (n == sizeof(name)) {
			*why = "field name longer than 32 characters";
			return TP_MTA_STS_EINVAL;
		}
		name[n++] = (char)ch;
		cur_next(c);
	}
	if (n == 0) {
		*why = "field name expected";
		return TP_MTA_STS_EINVAL;
	}
	if (ch != '=') {
		*why = "'=' expected after a field name";
		return TP_MTA_STS_EINVAL;
	}
	cur_next(c);
	if (n == 2 && name[0] == 'i' && name[1] == 'd') {
		if (*have_id) {
			*why = "id given twice";
			return TP_MTA_STS_EINVAL;
		}
		while ((ch = cur_peek(c)) >= 0 && is_alnum(ch)) {
			if (m == TP_MTA_STS_ID_MAX) {
				*why = "id longer than 32 characters";
				return TP_MTA_STS_EINVAL;
			}
			id[m++] = (char)ch;
			cur_next(c);
		}
		if (m == 0) {
			*why = "id empty or not letters and digits";
			return TP_MTA_STS_EINVAL;
		}
		id[m] = '\0';
		*have_id = true;
		return 0;
	}
	while ((ch = cur_peek(c)) >= 0x21 && ch <= 0x7e && ch != '=' &&
	    ch != ';') {
		m++;
		cur_next(c);
	}
	if (m == 0) {
		*why = "field value empty";
		return TP_MTA_STS_EINVAL;
	}
	return 0;
}

/*
 * txt_record - 3.1: sts-version 1*(sts-field-delim sts-field)
 * [sts-field-delim], sts-field-delim = *WSP ";" *WSP, exactly one id.
 */
static int
txt_record(struct cur *c, char id[TP_MTA_STS_ID_SIZE], const char **why)
{
	static const char version[] = "v=STSv1;";
	char tmp[TP_MTA_STS_ID_SIZE];
	bool have_id = false;
	int ch, rc;

	for (size_t i = 0; version[i] != '\0'; i++) {
		if (cur_peek(c) != version[i])
			return TP_MTA_STS_ENOREC;
		cur_next(c);
	}
	cur_wsp(c);
	for (;;) {
		if ((rc = txt_field(c, tmp, &have_id, why)) != 0)
			return rc;
		cur_wsp(c);
		if ((ch = cur_peek(c)) < 0)
			break;
		if (ch != ';') {
			*why = ch == 0 ? "NUL byte in the record"
				       : "unexpected character after a field";
			return TP_MTA_STS_EINVAL;
		}
		cur_next(c);
		cur_wsp(c);
		if (cur_peek(c) < 0)
			break;
	}
	if (!have_id) {
		*why = "no id field";
		return TP_MTA_STS_EINVAL;
	}
	memcpy(id, tmp, sizeof(tmp));
	return 0;
}

int
tp_mta_sts_txt_parse(
    const char *txt, size_t len, char id[TP_MTA_STS_ID_SIZE], const char **why)
{
	struct cur c = {(const unsigned char *)txt, len, 0, 0, false};

	return txt_record(&c, id, why);
}

/* A selection in progress: 3.1's "exactly one record must remain". */
struct select {
	size_t nsts; /* records beginning "v=STSv1;" */
	int rc;      /* the first one's result */
	const char *why;
	char id[TP_MTA_STS_ID_SIZE];
};

static void
select_one(struct select *s, struct cur *c)
{
	const char *why = NULL;
	char id[TP_MTA_STS_ID_SIZE];
	int rc = txt_record(c, id, &why);

	if (rc == TP_MTA_STS_ENOREC)
		return;
	if (s->nsts++ == 0) {
		s->rc = rc;
		s->why = why;
		if (rc == 0)
			memcpy(s->id, id, sizeof(id));
	}
}

static int
select_done(struct select *s, char id[TP_MTA_STS_ID_SIZE], const char **why)
{
	if (s->nsts == 0) {
		*why = "no TXT record begins with \"v=STSv1;\"";
		return TP_MTA_STS_ENOREC;
	}
	if (s->nsts > 1) {
		*why = "more than one TXT record begins with \"v=STSv1;\"";
		return TP_MTA_STS_EMULTI;
	}
	if (s->rc != 0) {
		*why = s->why;
		return s->rc;
	}
	memcpy(id, s->id, sizeof(s->id));
	return 0;
}

int
tp_mta_sts_txt_select(const char *const *txt, const size_t *len, size_t n,
    char id[TP_MTA_STS_ID_SIZE], const char **why)
{
	struct select s = {0, 0, NULL, ""};

	for (size_t i = 0; i < n; i++) {
		struct cur c = {
		    (const unsigned char *)txt[i], len[i], 0, 0, false};

		select_one(&s, &c);
	}
	return select_done(&s, id, why);
}

int
tp_mta_sts_txt_select_rdata(char *const *data, const int *len,
    char id[TP_MTA_STS_ID_SIZE], const char **why)
{
	struct select s = {0, 0, NULL, ""};

	for (size_t i = 0; data != NULL && data[i] != NULL; i++) {
		const unsigned char *d = (const unsigned char *)data[i];
		size_t l = len[i] > 0 ? (size_t)len[i] : 0;
		struct cur c = {d, l, 0, 0, true};

		if (!rdata_ok(d, l)) {
			/* we cannot tell what it began with: it counts */
			if (s.nsts++ == 0) {
				s.rc = TP_MTA_STS_EINVAL;
				s.why = "malformed TXT rdata";
			}
			continue;
		}
		select_one(&s, &c);
	}
	return select_done(&s, id, why);
}

/* ---- 3.2: the policy ---------------------------------------------------- */

/*
 * mx_pattern - 3.2 sts-policy-mx-value, ["*."] Domain (RFC 5321 4.1.2:
 * labels of letters, digits and inner '-'), 1-63 per label, at most 253
 * after the "*.", one trailing dot allowed (and dropped).  NULL with
 * *plen the pattern's length without that dot, else why not.
 */
static const char *
mx_pattern(const char *s, size_t n, size_t *plen)
{
	size_t i = 0, lab = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n >= 2 && s[0] == '*' && s[1] == '.')
		i = 2;
	if (n == i)
		return "empty name";
	if (n - i > 253)
		return "name longer than 253 characters";
	for (size_t j = i; j < n; j++) {
		int c = (unsigned char)s[j];

		if (c == '.') {
			if (lab == 0)
				return "empty label";
			if (s[j - 1] == '-')
				return "label ends with '-'";
			lab = 0;
			continue;
		}
		if (c == '*')
			return "'*' is only allowed as the whole first label";
		if (!is_alnum(c) && c != '-')
			return "not a host name (letters, digits, '-', '.'; "
			       "A-labels for IDNs)";
		if (c == '-' && lab == 0)
			return "label starts with '-'";
		if (++lab > 63)
			return "label longer than 63 characters";
	}
	if (lab == 0)
		return "empty label";
	if (s[n - 1] == '-')
		return "label ends with '-'";
	*plen = n;
	return NULL;
}

/* Where the second pass puts the patterns. */
struct fill {
	char **mx;  /* the pattern table */
	char *str;  /* the next free byte for pattern text */
	size_t nmx; /* patterns placed */
};

/* What a pass found. */
struct scan {
	bool version;
	int mode;    /* -1: not seen */
	long maxage; /* -1: not seen */
	size_t nmx;
	size_t mxbytes; /* pattern text, with NULs */
};

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return TP_MTA_STS_EINVAL;
}

/* field - one "key: value" line; the value without white space around. */
static int
field(struct scan *sc, struct fill *f, unsigned line, const char *key,
    size_t kl, const char *v, size_t vl, char *err, size_t errlen)
{
	static const char *modes[] = {"none", "testing", "enforce"};
	const char *why;
	size_t plen;
	long age = 0;

#define KEY(s) (kl == sizeof(s) - 1 && memcmp(key, s, kl) == 0)
#define VAL(s) (vl == strlen(s) && memcmp(v, s, vl) == 0)
	if (KEY("version")) {
		if (sc->version)
			return 0;
		if (!VAL("STSv1"))
			return fail(
			    err, errlen, "line %u: version: not STSv1", line);
		sc->version = true;
	} else if (KEY("mode")) {
		if (sc->mode >= 0)
			return 0;
		for (int m = 0; m < TP_MTA_STS_MODES; m++)
			if (VAL(modes[m]))
				sc->mode = m;
		if (sc->mode < 0)
			return fail(err, errlen,
			    "line %u: mode: not enforce, testing or none",
			    line);
	} else if (KEY("max_age")) {
		if (sc->maxage >= 0)
			return 0;
		if (vl == 0)
			return fail(err, errlen,
			    "line %u: max_age: not a number", line);
		for (size_t i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9')
				return fail(err, errlen,
				    "line %u: max_age: not a number", line);
			if (age <= TP_MTA_STS_MAX_AGE_MAX)
				age = age * 10 + (v[i] - '0');
		}
		/* sts-policy-max-age-value is 1*10(DIGIT) */
		if (vl > 10 || age > TP_MTA_STS_MAX_AGE_MAX)
			return fail(err, errlen,
			    "line %u: max_age: more than %d", line,
			    TP_MTA_STS_MAX_AGE_MAX);
		sc->maxage = age;
	} else if (KEY("mx")) {
		if ((why = mx_pattern(v, vl, &plen)) != NULL)
			return fail(err, errlen, "line %u: mx: %s", line, why);
		sc->nmx++;
		sc->mxbytes += plen + 1;
		if (f != NULL) {
			f->mx[f->nmx++] = f->str;
			for (size_t i = 0; i < plen; i++)
				*f->str++ = (char)lower((unsigned char)v[i]);
			*f->str++ = '\0';
		}
	}
	/* 3.2: other keys are extensions, ignored */
	return 0;
#undef KEY
#undef VAL
}

/*
 * key_len - the key at the start of line L: 3.2 sts-policy-ext-name,
 * (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."), though here any
 * length (the caller limits it).
 */
static size_t
key_len(const char *l, size_t ll)
{
	size_t k = 0;

	while (k < ll) {
		int c = (unsigned char)l[k];

		if (!is_alnum(c) &&
		    (k == 0 || (c != '_' && c != '-' && c != '.')))
			break;
		k++;
	}
	return k;
}

/*
 * policy_scan - one pass over the lines: check everything and count
 * (F NULL), or place the patterns (F set; the text is known good).
 */
static int
policy_scan(const char *text, size_t len, struct scan *sc, struct fill *f,
    char *err, size_t errlen)
{
	size_t off = 0;
	unsigned line = 0;
	int rc;

	*sc = (struct scan){false, -1, -1, 0, 0};
	while (off < len) {
		const char *l = text + off, *nl;
		size_t ll, k, v;

		line++;
		nl = memchr(l, '\n', len - off);
		ll = nl != NULL ? (size_t)(nl - l) : len - off;
		off += ll + (nl != NULL);
		if (ll > 0 && l[ll - 1] == '\r')
			ll--;
		for (size_t i = 0; i < ll; i++) {
			unsigned char c = (unsigned char)l[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return fail(err, errlen,
				    "line %u: control character", line);
		}
		while (ll > 0 && is_wsp(l[ll - 1]))
			ll--;
		if (ll == 0)
			continue;
		k = key_len(l, ll);
		if (memchr(l, ':', ll) == NULL)
			return fail(err, errlen,
			    "line %u: not a \"key: value\" line", line);
		if (k == 0 || k > 32 || l[k] != ':')
			return fail(err, errlen, "line %u: bad key", line);
		for (v = k + 1; v < ll && is_wsp(l[v]); v++)
			;
		rc = field(sc, f, line, l, k, l + v, ll - v, err, errlen);
		if (rc != 0)
			return rc;
	}
	if (!sc->version)
		return fail(err, errlen, "version: missing");
	if (sc->mode < 0)
		return fail(err, errlen, "mode: missing");
	if (sc->maxage < 0)
		return fail(err, errlen, "max_age: missing");
	if (sc->nmx == 0 && sc->mode != TP_MTA_STS_MODE_NONE)
		return fail(err, errlen, "mx: missing (required with mode %s)",
		    tp_mta_sts_mode_name((enum tp_mta_sts_mode)sc->mode));
	return 0;
}

int
tp_mta_sts_policy_parse(const char *text, size_t len, const char *id,
    int64_t fetched, const struct tp_mta_sts_policy **out, char *err,
    size_t errlen)
{
	struct tp_mta_sts_policy *p;
	struct scan sc;
	struct fill f;
	char *block;
	size_t size;
	int rc;

	*out = NULL;
	if (id == NULL || !is_id(id, strlen(id)))
		return fail(err, errlen, "bad id (1-32 letters and digits)");
	if (fetched < 0 || fetched > TP_MTA_STS_TIME_MAX)
		return fail(err, errlen, "bad fetch time");
	if (len > TP_MTA_STS_POLICY_MAX)
		return fail(
		    err, errlen, "longer than %d bytes", TP_MTA_STS_POLICY_MAX);
	if ((rc = policy_scan(text, len, &sc, NULL, err, errlen)) != 0)
		return rc;

	/* one block: struct, pattern table, pattern text, policy text */
	size = sizeof(*p) + sc.nmx * sizeof(char *) + sc.mxbytes + len + 1;
	if ((block = malloc(size)) == NULL)
		return TP_MTA_STS_ENOMEM;
	p = (struct tp_mta_sts_policy *)(void *)block;
	f.mx = (char **)(void *)(block + sizeof(*p));
	f.str = (char *)(f.mx + sc.nmx);
	f.nmx = 0;
	rc = policy_scan(text, len, &sc, &f, NULL, 0);
	assert(rc == 0 && f.nmx == sc.nmx);
	(void)rc;
	p->mode = (enum tp_mta_sts_mode)sc.mode;
	p->max_age = (uint32_t)sc.maxage;
	p->fetched = fetched;
	memcpy(p->id, id, strlen(id) + 1);
	p->nmx = sc.nmx;
	p->mx = (const char *const *)f.mx;
	memcpy(f.str, text, len);
	f.str[len] = '\0';
	p->text = f.str;
	p->text_len = len;
	*out = p;
	return 0;
}

void
tp_mta_sts_policy_free(const struct tp_mta_sts_policy *p)
{
	free((void *)(uintptr_t)p);
}

int64_t
tp_mta_sts_policy_expires(const struct tp_mta_sts_policy *p)
{
	return p->fetched + (int64_t)p->max_age;
}

const char *
tp_mta_sts_mode_name(enum tp_mta_sts_mode m)
{
	static const char *names[] = {"none", "testing", "enforce"};

	return (unsigned)m < TP_MTA_STS_MODES ? names[m] : "unknown";
}

/* ---- 4.1: MX names ---------------------------------------------------- */

/* caseeq - ASCII case-insensitive equality of N bytes. */
static bool
caseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

bool
tp_mta_sts_mx_match(const char *pattern, const char *host)
{
	size_t pl = strlen(pattern), hl = strlen(host);
	const char *dot;

	if (pl > 0 && pattern[pl - 1] == '.')
		pl--;
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (pl == 0 || hl == 0)
		return false;
	if (pl > 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* RFC 6125 6.4.3: '*' is the whole left-most label and
		 * stands for exactly one label of the host */
		dot = memchr(host, '.', hl);
		if (dot == NULL || dot == host)
			return false;
		return hl - (size_t)(dot + 1 - host) == pl - 2 &&
		    caseeq(dot + 1, pattern + 2, pl - 2);
	}
	return pl == hl && caseeq(pattern, host, pl);
}

const char *
tp_mta_sts_policy_match(const struct tp_mta_sts_policy *p, const char *host)
{
	for (size_t i = 0; i < p->nmx; i++)
		if (tp_mta_sts_mx_match(p->mx[i], host))
			return p->mx[i];
	return NULL;
}

/* ---- mta_sts_cache ------------------------------------------------------ */

#define CACHE_KEYWORD "policy"

int
tp_mta_sts_cache_format(char *buf, size_t size, size_t *len, const char *domain,
    const struct tp_mta_sts_policy *p)
{
	char dom[TP_HOST_MAX], hdr[TP_HOST_MAX + 96];
	const char *why;
	int n;

	*len = 0;
	if (tp_parse_domain(domain, false, false, dom, sizeof(dom), &why) < 0)
		return TP_MTA_STS_EINVAL;
	n = snprintf(hdr, sizeof(hdr), CACHE_KEYWORD " %s %s %lld %zu\n", dom,
	    p->id, (long long)p->fetched, p->text_len);
	assert(n > 0 && (size_t)n < sizeof(hdr));
	*len = (size_t)n + p->text_len + 1;
	if (*len >= size)
		return TP_MTA_STS_ENOSPC;
	memcpy(buf, hdr, (size_t)n);
	memcpy(buf + n, p->text, p->text_len);
	buf[n + p->text_len] = '\n';
	buf[*len] = '\0';
	return 0;
}

void
tp_mta_sts_cache_reader_init(
    struct tp_mta_sts_cache_reader *r, const char *buf, size_t len)
{
	r->buf = buf;
	r->len = len;
	r->off = 0;
	r->line = 1;
}

/* number - N decimal digits (1..max) of S into *out. */
static bool
number(const char *s, size_t n, size_t max, long long *out)
{
	long long v = 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * header - "policy DOMAIN ID FETCHED LENGTH", the line L of LL bytes
 * (without its LF), into e and *tlen.  NULL, or why not.
 */
static const char *
header(const char *l, size_t ll, struct tp_mta_sts_cache_entry *e, size_t *tlen)
{
	const char *tok[5], *why;
	size_t tl[5], nt = 0, i = 0;
	char dom[TP_HOST_MAX];
	long long v;

	while (i <= ll && nt < 5) {
		const char *sp = memchr(l + i, ' ', ll - i);
		size_t end = sp != NULL ? (size_t)(sp - l) : ll;

		tok[nt] = l + i;
		tl[nt++] = end - i;
		i = end + 1;
	}
	if (nt < 5 || i <= ll || tl[0] != strlen(CACHE_KEYWORD) ||
	    memcmp(tok[0], CACHE_KEYWORD, tl[0]) != 0)
		return "not an entry header (\"" CACHE_KEYWORD
		       " DOMAIN ID FETCHED LENGTH\")";
	if (tl[1] == 0 || tl[1] >= sizeof(dom) || memchr(tok[1], 0, tl[1]))
		return "bad domain";
	memcpy(dom, tok[1], tl[1]);
	dom[tl[1]] = '\0';
	if (tp_parse_domain(
		dom, false, false, e->domain, sizeof(e->domain), &why) < 0)
		return "bad domain";
	if (!is_id(tok[2], tl[2]))
		return "bad id";
	memcpy(e->id, tok[2], tl[2]);
	e->id[tl[2]] = '\0';
	if (!number(tok[3], tl[3], 18, &v))
		return "bad fetch time";
	e->fetched = v;
	if (!number(tok[4], tl[4], 5, &v) || v > TP_MTA_STS_POLICY_MAX)
		return "bad length";
	*tlen = (size_t)v;
	return NULL;
}

/* line_at - the line at r->off: its length without the LF. */
static size_t
line_at(const struct tp_mta_sts_cache_reader *r, bool *has_lf)
{
	const char *l = r->buf + r->off;
	const char *nl = memchr(l, '\n', r->len - r->off);

	*has_lf = nl != NULL;
	return nl != NULL ? (size_t)(nl - l) : r->len - r->off;
}

/* skip_line - move past the line at r->off. */
static void
skip_line(struct tp_mta_sts_cache_reader *r)
{
	bool lf;
	size_t ll = line_at(r, &lf);

	r->off += ll + lf;
	r->line++;
}

/* ignorable - a comment or blank line between entries. */
static bool
ignorable(const char *l, size_t ll)
{
	if (ll > 0 && l[0] == '#')
		return true;
	for (size_t i = 0; i < ll; i++)
		if (!is_wsp(l[i]) && l[i] != '\r')
			return false;
	return true;
}

/* resync - skip lines until one that parses as a header, or the end. */
static void
resync(struct tp_mta_sts_cache_reader *r)
{
	struct tp_mta_sts_cache_entry tmp;
	size_t tlen;
	bool lf;

	while (r->off < r->len) {
		size_t ll = line_at(r, &lf);

		if (lf && header(r->buf + r->off, ll, &tmp, &tlen) == NULL)
			return;
		skip_line(r);
	}
}

/* damaged - report a damaged entry from line FIRST, then resync. */
static int
damaged(struct tp_mta_sts_cache_reader *r, unsigned first, const char *dom,
    const char *why, char *err, size_t errlen)
{
	resync(r);
	if (r->line - 1 > first)
		return fail(err, errlen, "line %u: %s%s%s; lines %u-%u skipped",
		    first, dom, *dom ? ": " : "", why, first, r->line - 1);
	return fail(err, errlen, "line %u: %s%s%s; line skipped", first, dom,
	    *dom ? ": " : "", why);
}

int
tp_mta_sts_cache_next(struct tp_mta_sts_cache_reader *r,
    struct tp_mta_sts_cache_entry *e, char *err, size_t errlen)
{
	const char *l, *why;
	size_t ll, tlen = 0, left;
	unsigned first;
	bool lf;

	for (;;) {
		if (r->off >= r->len)
			return 0;
		l = r->buf + r->off;
		ll = line_at(r, &lf);
		if (!ignorable(l, ll))
			break;
		skip_line(r);
	}
	first = r->line;
	e->domain[0] = '\0';
	why = header(l, ll, e, &tlen);
	skip_line(r);
	if (why != NULL)
		return damaged(r, first, "", why, err, errlen);
	if (!lf)
		return damaged(r, first, e->domain, "truncated entry (no text)",
		    err, errlen);
	left = r->len - r->off;
	if (left < tlen + 1) {
		why = "truncated entry (shorter than its length)";
		return damaged(r, first, e->domain, why, err, errlen);
	}
	if (r->buf[r->off + tlen] != '\n') {
		why = "the text does not end where its length says";
		return damaged(r, first, e->domain, why, err, errlen);
	}
	e->text = r->buf + r->off;
	e->text_len = tlen;
	e->line = first;
	for (size_t i = 0; i < tlen; i++)
		if (e->text[i] == '\n')
			r->line++;
	r->line++;
	r->off += tlen + 1;
	return 1;
}

/* ---- RFC 8460 names ----------------------------------------------------- */

const char *
tp_mta_sts_result_name(enum tp_mta_sts_result r)
{
	static const char *names[] = {
	    "starttls-not-supported",
	    "certificate-host-mismatch",
	    "certificate-expired",
	    "certificate-not-trusted",
	    "validation-failure",
	    "tlsa-invalid",
	    "dnssec-invalid",
	    "dane-required",
	    "sts-policy-fetch-error",
	    "sts-policy-invalid",
	    "sts-webpki-invalid",
	};

	_Static_assert(sizeof(names) / sizeof(names[0]) == TP_MTA_STS_RESULTS,
	    "one name per result type");
	return (unsigned)r < TP_MTA_STS_RESULTS ? names[r] : "unknown";
}

const char *
tp_mta_sts_policy_type_name(enum tp_mta_sts_policy_type t)
{
	static const char *names[] = {"tlsa", "sts", "no-policy-found"};

	_Static_assert(
	    sizeof(names) / sizeof(names[0]) == TP_MTA_STS_POLICY_TYPES,
	    "one name per policy type");
	return (unsigned)t < TP_MTA_STS_POLICY_TYPES ? names[t] : "unknown";
}
