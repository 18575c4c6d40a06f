/*
 * policy_map.h - a gateway's policy_file: a Postfix smtp_tls_policy_maps
 * source file (what an administrator feeds to postmap), parsed into one
 * entry per destination, and the lookup Postfix's smtp(8) does in it.
 *
 * File: '#' comment lines and blank lines are skipped; a line that starts
 * with white space continues the logical line before it (postmap's
 * readlline); a logical line is KEY LEVEL [NAME=VALUE ...], the fields
 * separated by white space or commas, "{ NAME = VALUE }" for a value with
 * spaces.  Keys are lower-cased: DOMAIN (that domain only), .DOMAIN
 * (every subdomain of DOMAIN, not DOMAIN itself), [HOST], [HOST]:PORT and
 * HOST:PORT (an explicit nexthop: never a recipient domain).  Levels are
 * Postfix's, any case.  Every problem goes to the caller's diag callback
 * with its line; a broken entry is dropped and counted in nerrors.
 * Pure: no OpenSSL, no libuv; main thread (config load).  The parsed map
 * is immutable and read by any thread.
 */
#ifndef TLSPROXY_POLICY_MAP_H
#define TLSPROXY_POLICY_MAP_H

#include <stdbool.h>
#include <stddef.h>

#define TP_PM_MAX_SIZE (16 * 1024 * 1024) /* bytes of one policy file */

enum tp_pm_kind {
	TP_PM_DOMAIN,  /* "example.com": that domain */
	TP_PM_PARENT,  /* ".example.com": every subdomain of example.com */
	TP_PM_NEXTHOP, /* "[host]", "[host]:port", "host:port" */
};

/* A certificate or public-key digest (Postfix's fingerprint match). */
struct tp_pm_digest {
	unsigned char md[32];
	unsigned char len; /* 20: sha1, 32: sha256 */
};

/* A static TLSA record (our tlsa attribute); usages 2 and 3 only. */
struct tp_pm_tlsa {
	unsigned char usage, selector, mtype;
	unsigned char *data;
	size_t len;
};

struct tp_pm_entry {
	char *key; /* lower case, as looked up: "example.com",
		      ".example.com", "[mx.example.net]:25" */
	enum tp_pm_kind kind;
	int line;  /* where the entry's logical line starts */
	int level; /* enum tp_security */
	/* verify, secure: the match list, lower case ("hostname",
	 * "nexthop", "dot-nexthop", a name or ".suffix"); none: the
	 * level's default (verify: hostname; secure: nexthop:dot-nexthop) */
	char **match;
	size_t nmatch;
	struct tp_pm_digest *fps; /* fingerprint: at least one */
	size_t nfps;
	struct tp_pm_tlsa *tlsa; /* dane, dane-only: static records (none:
				    the records come from DNS) */
	size_t ntlsa;
	/* TLS settings for this destination; unset: the route's */
	char *protocols; /* as written; NULL when not set */
	int proto_min, proto_max;
	int grade;        /* enum tp_grade; -1 when not set */
	char *exclude;    /* cipher names, space separated; NULL: not set */
	int proto_line;   /* the protocols attribute's line */
	int cipher_line;  /* the exclude (else ciphers) attribute's line */
	char *servername; /* SNI: a name, "hostname" (the MX host) or
			     "nexthop" (the domain); NULL when not set */
};

struct tp_policy_map {
	struct tp_pm_entry *e; /* in file order */
	size_t n;
	int nerrors, nwarnings;
	/* private: open-addressed hash of the keys (indexes + 1) */
	size_t *slots;
	size_t nslots;
};

/*
 * The diagnostics callback: LINE of the file (0 for the whole file), and
 * the message without the file name ("example.com: unknown security
 * level \"foo\" ...").
 */
typedef void tp_pm_diag_fn(void *arg, int line, bool warning, const char *msg);

/*
 * tp_policy_map_parse - the entries of TEXT (LEN bytes, NUL bytes are an
 * error of their line).  Never NULL; check nerrors.
 */
struct tp_policy_map *tp_policy_map_parse(
    const char *text, size_t len, tp_pm_diag_fn *diag, void *arg);
/*
 * tp_policy_map_load - read PATH (at most TP_PM_MAX_SIZE bytes) and parse
 * it.  NULL with why when the file cannot be read (the caller reports it
 * at the line that names the file).
 */
struct tp_policy_map *tp_policy_map_load(
    const char *path, tp_pm_diag_fn *diag, void *arg, char *why, size_t len);
void tp_policy_map_free(struct tp_policy_map *m);
/*
 * tp_policy_lookup - the entry for recipient domain DOMAIN (any case, an
 * optional trailing dot) as Postfix looks up smtp_tls_policy_maps: the
 * domain itself, then ".parent" entries walking up (sub.example.com:
 * sub.example.com, .example.com, .com).  A name that is not a domain
 * ("[host]:port") is looked up as it is, once.  NULL when none applies.
 */
const struct tp_pm_entry *tp_policy_lookup(
    const struct tp_policy_map *m, const char *domain);
/* tp_policy_lookup_key - the entry whose key is exactly KEY (any case). */
const struct tp_pm_entry *tp_policy_lookup_key(
    const struct tp_policy_map *m, const char *key);

#endif
