/*
 * mta_sts.h - MTA-STS (RFC 8461) without I/O: the _mta-sts TXT record
 * (3.1), the policy file (3.2), MX name matching (4.1), the text format
 * of the mta_sts_cache file (spec 3, 4.10) and the RFC 8460 (TLS-RPT)
 * result and policy type names every TLS outcome is counted under.
 *
 * Who does what: the event layer looks up TXT _mta-sts.DOMAIN, hands the
 * answer to tp_mta_sts_txt_select_rdata() and gets the policy id (or "no
 * policy"); when no cached policy has that id it fetches
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt (at most
 * TP_MTA_STS_POLICY_MAX bytes), parses the body with
 * tp_mta_sts_policy_parse() and keeps the result, reference-counted, in
 * memory and in mta_sts_cache (tp_mta_sts_cache_format() per entry, then
 * temp file + rename); at start it reads that file back with
 * tp_mta_sts_cache_next() and parses each entry's text again with the
 * same parser.  Per MX host, tp_mta_sts_policy_match() says whether the
 * name is one the policy allows.
 *
 * Pure: no I/O, no libuv, no OpenSSL; no global state, so any thread may
 * call anything here.  A parsed policy is one malloc'd block (struct,
 * pattern table, strings, policy text), immutable after
 * tp_mta_sts_policy_parse() returns and freed by one
 * tp_mta_sts_policy_free(); share it between threads read-only.
 */
#ifndef TLSPROXY_MTA_STS_H
#define TLSPROXY_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsproxy/parse.h"

/*
 * Return values (0 is success).  Apart from TP_MTA_STS_ENOMEM each means
 * "this domain has no usable MTA-STS policy from this answer" (RFC 8461
 * 3.1, 3.3): the event layer keeps applying an unexpired cached policy,
 * else proceeds as if the domain had none.
 */
#define TP_MTA_STS_ENOREC (-10101) /* no TXT record begins "v=STSv1;" */
#define TP_MTA_STS_EMULTI (-10102) /* more than one begins "v=STSv1;" */
#define TP_MTA_STS_EINVAL (-10103) /* syntax error (why or err says) */
#define TP_MTA_STS_ENOMEM (-10104) /* out of memory */
#define TP_MTA_STS_ENOSPC (-10105) /* the caller's buffer is too small */

#define TP_MTA_STS_ID_MAX      32 /* 3.1: id is 1*32(ALPHA / DIGIT) */
#define TP_MTA_STS_ID_SIZE     (TP_MTA_STS_ID_MAX + 1)
#define TP_MTA_STS_MAX_AGE_MAX 31557600 /* 3.2: at most a year */
#define TP_MTA_STS_POLICY_MAX  65536    /* 3.3: 64 KB of policy text */
#define TP_MTA_STS_NAME_MAX    255      /* "*." + 253, a pattern's text */
#define TP_MTA_STS_TIME_MAX    999999999999999999LL /* fetched, 18 digits */
#define TP_MTA_STS_ERR_SIZE    384 /* room for any err text below */

/* ---- 3.1: the TXT record ---------------------------------------------- */

/*
 * tp_mta_sts_txt_parse - one TXT record's text (its character-strings
 * already concatenated, RFC 8461 3.1), LEN bytes, NUL bytes allowed
 * (they are a syntax error).  A record is an MTA-STS record when it
 * begins with exactly "v=STSv1;" (case-sensitive); its fields are then
 * NAME=VALUE separated by ';' with optional white space, a ';' may end
 * the record, unknown fields are ignored, and "id" (1-32 letters and
 * digits) must occur exactly once.  Returns 0 (id filled, NUL-terminated),
 * TP_MTA_STS_ENOREC (not an MTA-STS record; id untouched) or
 * TP_MTA_STS_EINVAL (an invalid MTA-STS record; *why says what, a static
 * string).
 */
int tp_mta_sts_txt_parse(
    const char *txt, size_t len, char id[TP_MTA_STS_ID_SIZE], const char **why);

/*
 * tp_mta_sts_txt_select - RFC 8461 3.1 over every TXT record of
 * _mta-sts.DOMAIN (TXT[i] of LEN[i] bytes, N records): records that do
 * not begin with "v=STSv1;" are dropped, exactly one must remain and be
 * valid.  Returns 0 (id filled), TP_MTA_STS_ENOREC (none remains; also
 * for N == 0), TP_MTA_STS_EMULTI (more than one remains, valid or not) or
 * TP_MTA_STS_EINVAL (the one that remains is invalid); *why is a static
 * string for the log in every case but 0.
 */
int tp_mta_sts_txt_select(const char *const *txt, const size_t *len, size_t n,
    char id[TP_MTA_STS_ID_SIZE], const char **why);

/*
 * tp_mta_sts_txt_select_rdata - the same over TXT rdata in wire form, as
 * libunbound returns it and struct tp_dns_answer carries it: DATA is a
 * NULL-terminated array, DATA[i] of LEN[i] bytes is a sequence of
 * character-strings (a length octet, then that many bytes), which are
 * concatenated.  An rdata whose lengths do not add up to LEN[i] exactly
 * is counted as an invalid "v=STSv1;" record: it can make the answer
 * unusable, never make one usable.
 */
int tp_mta_sts_txt_select_rdata(char *const *data, const int *len,
    char id[TP_MTA_STS_ID_SIZE], const char **why);

/* ---- 3.2: the policy ---------------------------------------------------- */

enum tp_mta_sts_mode {
	TP_MTA_STS_MODE_NONE,
	TP_MTA_STS_MODE_TESTING,
	TP_MTA_STS_MODE_ENFORCE,
	TP_MTA_STS_MODES
};

/*
 * A parsed policy.  Immutable; one block; free it with
 * tp_mta_sts_policy_free().
 */
struct tp_mta_sts_policy {
	enum tp_mta_sts_mode mode;
	uint32_t max_age;            /* seconds, 0..TP_MTA_STS_MAX_AGE_MAX */
	int64_t fetched;             /* unix seconds, as the caller gave it */
	char id[TP_MTA_STS_ID_SIZE]; /* the TXT id it was fetched for */
	size_t nmx;                  /* >= 1 unless mode is none */
	/* the mx patterns in policy order, lower case, no trailing dot:
	 * "mail.example.com" or "*.example.net" (a whole left-most label) */
	const char *const *mx;
	/* the policy text exactly as given (NUL-terminated, no NUL inside),
	 * kept for mta_sts_cache */
	const char *text;
	size_t text_len;
};

/*
 * tp_mta_sts_policy_parse - the policy text TEXT of LEN bytes (at most
 * TP_MTA_STS_POLICY_MAX), fetched for TXT id ID at unix time FETCHED
 * (0..TP_MTA_STS_TIME_MAX).  Lines end in LF or CRLF; each non-blank line
 * is "key: value" (the key as RFC 8461's ABNF allows, case-sensitive;
 * white space after ':' and at the end of a line is ignored); blank lines
 * are skipped.  "version: STSv1", "mode: enforce|testing|none" and
 * "max_age: 0..31557600" (1-10 digits) are required, in any order, and
 * when one of them is repeated the first wins (the later ones are not
 * looked at); "mx: PATTERN" may repeat and is required unless the mode is
 * none; other keys are ignored.  A pattern is a host name (RFC 5321
 * Domain: letters, digits, '-', labels of 1-63, at most 253, A-labels for
 * IDNs) or "*." and one, a trailing dot allowed; any other '*' is an
 * error.  Control characters (but tab) and NUL bytes are errors.
 *
 * Returns 0 with *out set; TP_MTA_STS_EINVAL with err filled ("line 3:
 * max_age: not a number", "mx: missing", "bad id", ...; no peer text in
 * it), or TP_MTA_STS_ENOMEM.  err may be NULL; ERRLEN of
 * TP_MTA_STS_ERR_SIZE is always enough.
 */
int tp_mta_sts_policy_parse(const char *text, size_t len, const char *id,
    int64_t fetched, const struct tp_mta_sts_policy **out, char *err,
    size_t errlen);

/* tp_mta_sts_policy_free - free a parsed policy; NULL is fine. */
void tp_mta_sts_policy_free(const struct tp_mta_sts_policy *p);

/*
 * tp_mta_sts_policy_expires - fetched + max_age: the policy may be used
 * while now < this (RFC 8461 3.3, 5.1).
 */
int64_t tp_mta_sts_policy_expires(const struct tp_mta_sts_policy *p);

/* tp_mta_sts_mode_name - "none", "testing", "enforce"; "unknown". */
const char *tp_mta_sts_mode_name(enum tp_mta_sts_mode m);

/* ---- 4.1: MX names ---------------------------------------------------- */

/*
 * tp_mta_sts_mx_match - does MX host name HOST match PATTERN (RFC 8461
 * 4.1, RFC 6125 6.4.3)?  ASCII case-insensitive, one trailing dot
 * ignored on either; "*.example.com" matches exactly one more non-empty
 * label ("mx.example.com", not "example.com" nor "a.b.example.com").
 * An empty HOST or PATTERN matches nothing.
 */
bool tp_mta_sts_mx_match(const char *pattern, const char *host);

/*
 * tp_mta_sts_policy_match - the first of P's patterns HOST matches (for
 * the log), or NULL when none does: under mode enforce such an MX must
 * not be used (validation-failure).
 */
const char *tp_mta_sts_policy_match(
    const struct tp_mta_sts_policy *p, const char *host);

/* ---- mta_sts_cache: the file's text ----------------------------------- */

/*
 * The file is a sequence of entries; lines starting with '#' and blank
 * lines between entries are ignored.  An entry is a header line
 *
 *	policy DOMAIN ID FETCHED LENGTH
 *
 * (single spaces; DOMAIN lower case without trailing dot, ID as in the
 * TXT record, FETCHED unix seconds and LENGTH the text's byte count, both
 * decimal), then exactly LENGTH bytes of policy text as fetched, then a
 * newline.  The length makes the text opaque (any bytes), and
 * since every non-blank line of a valid policy has a ':' and a header
 * has none, no line of a cached policy can pass for a header: after
 * damage the reader skips to the next line that parses as a header.  The
 * event layer writes TP_MTA_STS_CACHE_BANNER first, then one entry per
 * domain, to a temporary file it renames over the old one.
 */
#define TP_MTA_STS_CACHE_BANNER                                                \
	"# tlsproxy MTA-STS policy cache (RFC 8461), rewritten by tlsproxy.\n" \
	"# Each entry: \"policy DOMAIN ID FETCHED LENGTH\", then LENGTH\n"     \
	"# bytes of policy text and a newline.\n"

/*
 * tp_mta_sts_cache_format - the entry for policy P of domain DOMAIN (any
 * case, a trailing dot allowed) into BUF of SIZE bytes, NUL-terminated.
 * Returns 0 with *len the entry's length (without the NUL);
 * TP_MTA_STS_ENOSPC when it needs more room (*len is that length, so
 * size 0 asks for it); TP_MTA_STS_EINVAL when DOMAIN is not a domain name.
 */
int tp_mta_sts_cache_format(char *buf, size_t size, size_t *len,
    const char *domain, const struct tp_mta_sts_policy *p);

struct tp_mta_sts_cache_reader {
	const char *buf; /* the whole file */
	size_t len;
	size_t off;    /* where the next line starts */
	unsigned line; /* its number (1 for the first) */
};

struct tp_mta_sts_cache_entry {
	char domain[TP_HOST_MAX]; /* lower case, no trailing dot */
	char id[TP_MTA_STS_ID_SIZE];
	int64_t fetched;
	const char *text; /* into the reader's buffer, not NUL-terminated */
	size_t text_len;
	unsigned line; /* of the header; the text starts on the next */
};

/* tp_mta_sts_cache_reader_init - read the file contents BUF of LEN. */
void tp_mta_sts_cache_reader_init(
    struct tp_mta_sts_cache_reader *r, const char *buf, size_t len);

/*
 * tp_mta_sts_cache_next - the next entry.  Returns 1 with *e filled; 0 at
 * the end; TP_MTA_STS_EINVAL for a damaged entry, with err saying where
 * and why ("line 7: example.com: truncated entry ...", "line 9: not an
 * entry header; lines 9-12 skipped"): the reader has moved past it, call
 * again.  Then parse e->text with tp_mta_sts_policy_parse(e->text,
 * e->text_len, e->id, e->fetched, ...); a domain may occur more than once
 * (keep the latest fetched).  err may be NULL; an ERRLEN of
 * TP_MTA_STS_ERR_SIZE is always enough.  *e is undefined unless 1.
 */
int tp_mta_sts_cache_next(struct tp_mta_sts_cache_reader *r,
    struct tp_mta_sts_cache_entry *e, char *err, size_t errlen);

/* ---- RFC 8460: result types (4.3), policy-type (4.4) ------------------ */

enum tp_mta_sts_result {
	/* 4.3.1 negotiation failures */
	TP_MTA_STS_RESULT_STARTTLS_NOT_SUPPORTED,
	TP_MTA_STS_RESULT_CERTIFICATE_HOST_MISMATCH,
	TP_MTA_STS_RESULT_CERTIFICATE_EXPIRED,
	TP_MTA_STS_RESULT_CERTIFICATE_NOT_TRUSTED,
	TP_MTA_STS_RESULT_VALIDATION_FAILURE,
	/* 4.3.2 DANE */
	TP_MTA_STS_RESULT_TLSA_INVALID,
	TP_MTA_STS_RESULT_DNSSEC_INVALID,
	TP_MTA_STS_RESULT_DANE_REQUIRED,
	/* 4.3.3 MTA-STS */
	TP_MTA_STS_RESULT_STS_POLICY_FETCH_ERROR,
	TP_MTA_STS_RESULT_STS_POLICY_INVALID,
	TP_MTA_STS_RESULT_STS_WEBPKI_INVALID,
	TP_MTA_STS_RESULTS
};

enum tp_mta_sts_policy_type {
	TP_MTA_STS_POLICY_TLSA,
	TP_MTA_STS_POLICY_STS,
	TP_MTA_STS_POLICY_NO_POLICY_FOUND,
	TP_MTA_STS_POLICY_TYPES
};

/* tp_mta_sts_result_name - "starttls-not-supported", ...; "unknown". */
const char *tp_mta_sts_result_name(enum tp_mta_sts_result r);
/* tp_mta_sts_policy_type_name - "tlsa", "sts", "no-policy-found"; "unknown". */
const char *tp_mta_sts_policy_type_name(enum tp_mta_sts_policy_type t);

#endif
