/*
 * test_policy_map.c - the policy_file of a gateway (policy_map.c): a
 * Postfix smtp_tls_policy_maps source file as postmap reads it.  Every key
 * form, level and attribute; continuation, comment and blank lines; every
 * diagnostic with its exact "p:LINE: message" (the callback here writes
 * "p" where tlsproxy writes the file's path); the lookup order of
 * Postfix's smtp(8): the domain, then .parent entries walking up.
 * Each test leaves its map in `map`; the teardown frees it (ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsproxy/policy_map.h"
#include "tlsproxy/tls_policy.h"

#define SHA256_HEX                                                              \
	"3B:0C:4C:79:0F:2A:8A:4E:8B:57:10:5B:3A:59:1E:E2:0D:6A:65:43:0C:AB:2B:" \
	"63:3D:A4:97:1F:0C:11:91:9F"
#define SHA256_HEX2                                                            \
	"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define SHA1_HEX "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
#define MD5_HEX  "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
#define DWHY                                                                   \
	"bad domain name (letters, digits, '-' and '_'; labels of 1 to 63 "    \
	"characters, 253 in all; not all digits at the end)"

static struct tp_policy_map *map;
static char diags[128][600];
static int ndiags;

static void
collect(void *arg, int line, bool warning, const char *msg)
{
	(void)arg;
	if (ndiags < 128)
		snprintf(diags[ndiags++], sizeof(diags[0]), "p:%d: %s%s", line,
		    warning ? "warning: " : "", msg);
}

static int
teardown(void **state)
{
	(void)state;
	tp_policy_map_free(map);
	map = NULL;
	return 0;
}

static void
dump(void)
{
	print_message("--- %d diagnostics:\n", ndiags);
	for (int i = 0; i < ndiags; i++)
		print_message("    %s\n", diags[i]);
}

static struct tp_policy_map *
parse(const char *text)
{
	tp_policy_map_free(map);
	ndiags = 0;
	map = tp_policy_map_parse(text, strlen(text), collect, NULL);
	assert_non_null(map);
	return map;
}

static void
expect_diag(const char *exact)
{
	for (int i = 0; i < ndiags; i++)
		if (strcmp(diags[i], exact) == 0)
			return;
	dump();
	fail_msg("no diagnostic \"%s\"", exact);
}

static void
expect_counts(int errors, int warnings)
{
	if (map->nerrors != errors || map->nwarnings != warnings) {
		dump();
		fail_msg("%d errors, %d warnings; want %d, %d", map->nerrors,
		    map->nwarnings, errors, warnings);
	}
}

static const struct tp_pm_entry *
entry(const char *key)
{
	const struct tp_pm_entry *e = tp_policy_lookup_key(map, key);

	if (e == NULL) {
		dump();
		fail_msg("no entry %s", key);
	}
	return e;
}

/* One error case: TEXT gives exactly one error, DIAG. */
struct ecase {
	const char *text;
	const char *diag;
};

static void
run_cases(const struct ecase *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		parse(c[i].text);
		expect_diag(c[i].diag);
		if (map->nerrors != 1) {
			dump();
			fail_msg(
			    "case %zu: %d errors, want 1", i, map->nerrors);
		}
	}
}

/* ---- the file ---- */

static void
test_key_forms(void **state)
{
	(void)state;
	parse("example.com encrypt\n"
	      ".example.org may\n"
	      "[mx.example.net] verify\n"
	      "[mx.example.net]:25 secure\n"
	      "relay.example.net:587 encrypt\n"
	      "[192.0.2.1]:25 encrypt\n"
	      "[2001:DB8::1]:25 encrypt\n"
	      "[ipv6:2001:db8::2] encrypt\n"
	      "submit.example.com:submission encrypt\n"
	      "Mixed.Case.EXAMPLE may\n"
	      "localhost none\n"
	      "trailing.example. may\n");
	expect_counts(0, 0);
	assert_int_equal(map->n, 12);
	assert_int_equal(entry("example.com")->kind, TP_PM_DOMAIN);
	assert_int_equal(entry(".example.org")->kind, TP_PM_PARENT);
	assert_int_equal(entry("[mx.example.net]")->kind, TP_PM_NEXTHOP);
	assert_int_equal(entry("[mx.example.net]:25")->kind, TP_PM_NEXTHOP);
	assert_int_equal(entry("relay.example.net:587")->kind, TP_PM_NEXTHOP);
	assert_int_equal(entry("[192.0.2.1]:25")->kind, TP_PM_NEXTHOP);
	/* lower-cased, as postmap folds keys */
	assert_string_equal(entry("[2001:db8::1]:25")->key, "[2001:db8::1]:25");
	assert_non_null(entry("[ipv6:2001:db8::2]"));
	assert_non_null(entry("submit.example.com:submission"));
	assert_string_equal(
	    entry("mixed.case.example")->key, "mixed.case.example");
	assert_int_equal(entry("localhost")->level, TP_SEC_NONE);
	assert_string_equal(entry("trailing.example")->key, "trailing.example");
	/* entries keep their lines, in file order */
	assert_int_equal(entry("example.com")->line, 1);
	assert_int_equal(entry("[mx.example.net]:25")->line, 4);
	assert_string_equal(map->e[0].key, "example.com");
	assert_string_equal(map->e[11].key, "trailing.example");
}

static void
test_levels(void **state)
{
	static const struct {
		const char *word;
		int level;
	} l[] = {
	    {"none", TP_SEC_NONE},
	    {"may", TP_SEC_MAY},
	    {"encrypt", TP_SEC_ENCRYPT},
	    {"fingerprint match=" SHA256_HEX, TP_SEC_FINGERPRINT},
	    {"verify", TP_SEC_VERIFY},
	    {"secure", TP_SEC_SECURE},
	    {"dane", TP_SEC_DANE},
	    {"dane-only", TP_SEC_DANE_ONLY},
	    /* any case, as Postfix's name_code() */
	    {"NONE", TP_SEC_NONE},
	    {"Secure", TP_SEC_SECURE},
	    {"DANE-ONLY", TP_SEC_DANE_ONLY},
	};
	char text[300];

	(void)state;
	for (size_t i = 0; i < sizeof(l) / sizeof(l[0]); i++) {
		snprintf(text, sizeof(text), "example.com %s\n", l[i].word);
		parse(text);
		expect_counts(0, 0);
		assert_int_equal(entry("example.com")->level, l[i].level);
	}
	/* smtp_tls_per_site's words, as it read them, with a warning */
	parse("a.example MUST\nb.example must_nopeermatch\n");
	expect_counts(0, 2);
	assert_int_equal(entry("a.example")->level, TP_SEC_VERIFY);
	assert_int_equal(entry("b.example")->level, TP_SEC_ENCRYPT);
	expect_diag("p:1: warning: a.example: MUST is a word of the obsolete "
		    "smtp_tls_per_site table, not a level (Postfix's policy "
		    "maps refuse it): read as verify, as smtp_tls_per_site "
		    "did; write verify (or secure)");
	expect_diag("p:2: warning: b.example: MUST_NOPEERMATCH is a word of "
		    "the obsolete smtp_tls_per_site table, not a level: read "
		    "as encrypt, which does not verify the certificate; write "
		    "encrypt (or verify)");
}

static void
test_attributes(void **state)
{
	const struct tp_pm_entry *e;

	(void)state;
	parse("v.example verify match=hostname:nexthop:.example.net "
	      "match=MX.Example.COM\n"
	      "s.example secure\n"
	      "f.example fingerprint match=" SHA256_HEX "|" SHA1_HEX
	      " fingerprint=" SHA256_HEX2 "\n"
	      "d.example dane-only { tlsa = 3 1 1 " SHA256_HEX2
	      " | 2 0 1 " SHA256_HEX " }\n"
	      "c.example dane tlsa=3:1:1:" SHA256_HEX "\n"
	      "p.example encrypt protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1 "
	      "ciphers=HIGH exclude=3DES:RC4:aNULL\n"
	      "n.example may,servername=SNI.example.net,ciphers=null\n"
	      "h.example verify servername=hostname { protocols = >=TLSv1.2 "
	      "<=TLSv1.3 }\n"
	      "x.example may servername=nexthop\n");
	expect_counts(0, 0);
	/* match: ':' between names, repeatable, lower case */
	e = entry("v.example");
	assert_int_equal(e->nmatch, 4);
	assert_string_equal(e->match[0], "hostname");
	assert_string_equal(e->match[1], "nexthop");
	assert_string_equal(e->match[2], ".example.net");
	assert_string_equal(e->match[3], "mx.example.com");
	/* no match: the level's default (decided when built) */
	assert_int_equal(entry("s.example")->nmatch, 0);
	/* fingerprint: '|' between digests, sha256 and sha1 */
	e = entry("f.example");
	assert_int_equal(e->nfps, 3);
	assert_int_equal(e->fps[0].len, 32);
	assert_int_equal(e->fps[0].md[0], 0x3b);
	assert_int_equal(e->fps[0].md[31], 0x9f);
	assert_int_equal(e->fps[1].len, 20);
	assert_int_equal(e->fps[1].md[0], 0xab);
	assert_int_equal(e->fps[2].len, 32);
	assert_int_equal(e->fps[2].md[0], 0xa1);
	/* tlsa: { } with spaces, or U:S:M:HEX */
	e = entry("d.example");
	assert_int_equal(e->ntlsa, 2);
	assert_int_equal(e->tlsa[0].usage, 3);
	assert_int_equal(e->tlsa[0].selector, 1);
	assert_int_equal(e->tlsa[0].mtype, 1);
	assert_int_equal(e->tlsa[0].len, 32);
	assert_int_equal(e->tlsa[1].usage, 2);
	assert_int_equal(e->tlsa[1].selector, 0);
	assert_int_equal(e->tlsa[1].len, 32);
	assert_int_equal(e->tlsa[1].data[0], 0x3b);
	e = entry("c.example");
	assert_int_equal(e->ntlsa, 1);
	assert_int_equal(e->tlsa[0].data[0], 0x3b);
	assert_int_equal(entry("s.example")->ntlsa, 0);
	/* TLS settings */
	e = entry("p.example");
	assert_string_equal(e->protocols, "!SSLv2:!SSLv3:!TLSv1:!TLSv1.1");
	assert_int_equal(e->proto_min, TP_PROTO_TLS12);
	assert_int_equal(e->proto_max, TP_PROTO_TLS13);
	assert_int_equal(e->proto_line, 6);
	assert_int_equal(e->grade, TP_GRADE_HIGH);
	assert_string_equal(e->exclude, "3DES RC4 aNULL");
	assert_int_equal(e->cipher_line, 6);
	assert_null(e->servername);
	e = entry("n.example");
	assert_string_equal(e->servername, "sni.example.net");
	assert_int_equal(e->grade, TP_GRADE_NULL);
	assert_null(e->protocols);
	assert_null(e->exclude);
	e = entry("h.example");
	assert_string_equal(e->servername, "hostname");
	assert_string_equal(e->protocols, ">=TLSv1.2 <=TLSv1.3");
	assert_int_equal(e->grade, -1);
	assert_string_equal(entry("x.example")->servername, "nexthop");
}

static void
test_ignored_attributes(void **state)
{
	(void)state;
	parse("a.example encrypt connection_reuse=yes enable_rpk=no\n"
	      "b.example secure policy_type=sts policy_ttl=86400 "
	      "policy_domain=b.example mx_host_pattern=*.b.example "
	      "policy_string=mode:enforce policy_failure=sts-webpki-invalid\n"
	      "c.example none ciphers=high match=x\n");
	expect_counts(0, 10);
	assert_int_equal(map->n, 3);
	expect_diag("p:1: warning: a.example: attribute \"connection_reuse\" "
		    "is ignored (the route's connection_reuse applies)");
	expect_diag("p:1: warning: a.example: attribute \"enable_rpk\" is "
		    "ignored (raw public keys are not solicited: the server's "
		    "certificate is checked)");
	expect_diag("p:2: warning: b.example: attribute \"policy_type\" is "
		    "ignored (TLSRPT reporting attributes of an MTA-STS "
		    "resolver; not used by tlsproxy)");
	expect_diag("p:2: warning: b.example: attribute \"policy_failure\" is "
		    "ignored (TLSRPT reporting attributes of an MTA-STS "
		    "resolver; not used by tlsproxy)");
	/* Postfix: no attribute applies without TLS */
	expect_diag("p:3: warning: c.example: ignoring attribute "
		    "\"ciphers=high\" with TLS disabled (level none)");
	expect_diag("p:3: warning: c.example: ignoring attribute \"match=x\" "
		    "with TLS disabled (level none)");
}

static void
test_continuation_and_comments(void **state)
{
	const struct tp_pm_entry *e;

	(void)state;
	parse("# tls_policy for the gateway\n"                      /* 1 */
	      "\n"                                                  /* 2 */
	      "   # an indented comment is a comment\n"             /* 3 */
	      "partner.example\n"                                   /* 4 */
	      "\tsecure\n"                                          /* 5 */
	      "# a comment inside a continued entry\n"              /* 6 */
	      "\n"                                                  /* 7 */
	      "    match=mx1.partner.example:mx2.partner.example\n" /* 8 */
	      "    { match =\n"                                     /* 9 */
	      "    mx3.partner.example }\n"                         /* 10 */
	      "    protocols=>=TLSv1.3\n"                           /* 11 */
	      "bank.example fingerprint\r\n"                        /* 12 */
	      "  { match = " SHA256_HEX "\r\n"                      /* 13 */
	      "  | " SHA1_HEX " }\r\n"                              /* 14 */
	      "other.example { match = a.example\n"                 /* 15 */
	      "    b.example } may\n");                             /* 16 */
	/* the last entry: the level is "{ match = ... }": an error */
	expect_counts(1, 0);
	expect_diag("p:15: other.example: unknown security level \"{ match = "
		    "a.example    b.example }\" (none, may, encrypt, "
		    "fingerprint, verify, secure, dane or dane-only)");
	e = entry("partner.example");
	assert_int_equal(e->line, 4);
	assert_int_equal(e->level, TP_SEC_SECURE);
	/* ':' between names; { } across lines */
	assert_int_equal(e->nmatch, 3);
	assert_string_equal(e->match[0], "mx1.partner.example");
	assert_string_equal(e->match[1], "mx2.partner.example");
	assert_string_equal(e->match[2], "mx3.partner.example");
	assert_int_equal(e->proto_min, TP_PROTO_TLS13);
	assert_int_equal(e->proto_line, 11);
	e = entry("bank.example");
	assert_int_equal(e->line, 12);
	assert_int_equal(e->nfps, 2);

	/* postmap joins a continued line as it is: a value cut by a line
	 * break is two words (Postfix fails the same entry) */
	parse("a.example secure match=mx1.example:\n  mx2.example\n");
	expect_counts(1, 0);
	expect_diag("p:2: a.example: malformed attribute \"mx2.example\": "
		    "expected NAME=VALUE");

	/* errors on continuation lines point at their own line */
	parse("a.example secure\n"  /* 1 */
	      "  match=x.example\n" /* 2 */
	      "  ciphers=weak\n"    /* 3 */
	      "b.example may\n");   /* 4 */
	expect_counts(1, 0);
	expect_diag("p:3: a.example: ciphers=weak: expected high, medium or "
		    "null");
	assert_null(tp_policy_lookup_key(map, "a.example"));
	assert_non_null(tp_policy_lookup_key(map, "b.example"));

	/* the level on its own line */
	parse("a.example\n\n  # c\n  dane-only\n");
	expect_counts(0, 0);
	assert_int_equal(entry("a.example")->level, TP_SEC_DANE_ONLY);

	/* a braced value across lines: white space made single spaces */
	parse("a.example dane { tlsa = 3 1 1\n    " SHA256_HEX2 " }\n");
	expect_counts(0, 0);
	assert_int_equal(entry("a.example")->ntlsa, 1);
}

static void
test_errors(void **state)
{
	static const struct ecase c[] = {
	    /* keys */
	    {"exa_mple..com may\n",
		"p:1: bad key \"exa_mple..com\": expected DOMAIN, .DOMAIN, "
		"[HOST], [HOST]:PORT or HOST:PORT: " DWHY},
	    {"x.example may\n..example.com may\n",
		"p:2: bad key \"..example.com\": expected DOMAIN, .DOMAIN, "
		"[HOST], [HOST]:PORT or HOST:PORT: " DWHY},
	    {".example.com:25 may\n",
		"p:1: bad key \".example.com:25\": a .DOMAIN key takes no port "
		"(Postfix matches parent domains of recipient domains only)"},
	    {"2001:db8::1 may\n",
		"p:1: bad key \"2001:db8::1\": an IPv6 address goes inside "
		"[ ] ([2001:db8::1]:25)"},
	    {"[mx.example.net may\n",
		"p:1: bad key \"[mx.example.net\": missing ']'"},
	    {"[mx.example.net]:0 may\n",
		"p:1: bad key \"[mx.example.net]:0\": expected [HOST] or "
		"[HOST]:PORT (port 1-65535 or a service name)"},
	    {"[mx.example.net]25 may\n",
		"p:1: bad key \"[mx.example.net]25\": expected [HOST] or "
		"[HOST]:PORT (port 1-65535 or a service name)"},
	    {"[bad host] may\n", "p:1: bad key \"[bad\": missing ']'"},
	    {"[-x.example] may\n",
		"p:1: bad key \"[-x.example]\": not a host name or address "
		"inside [ ]"},
	    {"mx.example.net:70000 may\n",
		"p:1: bad key \"mx.example.net:70000\": bad port (1-65535 or a "
		"service name)"},
	    {"mx.example.net:2x may\n",
		"p:1: bad key \"mx.example.net:2x\": bad port (1-65535 or a "
		"service name)"},
	    {"192.0.2.1 may\n",
		"p:1: bad key \"192.0.2.1\": expected DOMAIN, .DOMAIN, [HOST], "
		"[HOST]:PORT or HOST:PORT: " DWHY},
	    /* levels */
	    {"example.com\n",
		"p:1: example.com: no security level (expected KEY LEVEL "
		"[NAME=VALUE ...])"},
	    {"example.com maybe\n",
		"p:1: example.com: unknown security level \"maybe\" (none, "
		"may, encrypt, fingerprint, verify, secure, dane or "
		"dane-only)"},
	    {"example.com\n  halfdane\n",
		"p:2: example.com: unknown security level \"halfdane\" (none, "
		"may, encrypt, fingerprint, verify, secure, dane or "
		"dane-only)"},
	    /* duplicates: at the later line */
	    {"example.com may\n# x\nexample.com encrypt\n",
		"p:3: duplicate key example.com (first at line 1)"},
	    {"Example.COM may\nexample.com. encrypt\n",
		"p:2: duplicate key example.com (first at line 1)"},
	    {".example.com may\nexample.com may\n[example.com] may\n"
	     "[example.com]:25 may\nexample.com:25 may\n.Example.com secure\n",
		"p:6: duplicate key .example.com (first at line 1)"},
	    /* lines */
	    {"  secure\nexample.com may\n",
		"p:1: a continuation line (it starts with white space) with no "
		"line before it to continue"},
	    {"# comment\n\texample.com may\n",
		"p:2: a continuation line (it starts with white space) with no "
		"line before it to continue"},
	    /* attributes */
	    {"example.com secure match\n",
		"p:1: example.com: malformed attribute \"match\": expected "
		"NAME=VALUE"},
	    {"example.com secure # partner\n",
		"p:1: example.com: malformed attribute \"#\": a # comment must "
		"start its own line"},
	    {"example.com secure =x\n",
		"p:1: example.com: malformed attribute \"=x\": missing "
		"attribute name"},
	    {"example.com secure { match x }\n",
		"p:1: example.com: malformed attribute \"{ match x }\": "
		"missing '=' after attribute name"},
	    {"example.com secure { match = x\n",
		"p:1: example.com: malformed attribute \"{ match = x\": "
		"missing '}'"},
	    {"example.com secure {match=x}y\n",
		"p:1: example.com: malformed attribute \"{match=x}y\": text "
		"after '}'"},
	    {"example.com secure match=\n",
		"p:1: example.com: attribute \"match\" has an empty value"},
	    {"example.com secure colour=blue\n",
		"p:1: example.com: unknown attribute \"colour\""},
	    {"example.com may match=mx.example.com\n",
		"p:1: example.com: attribute \"match\" is invalid at security "
		"level \"may\""},
	    {"example.com dane match=mx.example.com\n",
		"p:1: example.com: attribute \"match\" is invalid at security "
		"level \"dane\""},
	    {"example.com secure fingerprint=" SHA256_HEX "\n",
		"p:1: example.com: attribute \"fingerprint\" is invalid at "
		"security level \"secure\""},
	    {"example.com verify tlsa=3:1:1:" SHA256_HEX "\n",
		"p:1: example.com: attribute \"tlsa\" is invalid at security "
		"level \"verify\""},
	    {"example.com secure match=bad_-.name\n",
		"p:1: example.com: match: \"bad_-.name\" is not hostname, "
		"nexthop, dot-nexthop, a host name or .domain"},
	    {"example.com fingerprint\n",
		"p:1: example.com: security level fingerprint needs "
		"match=DIGEST (sha256 of the certificate or its public key; "
		"'|' between several)"},
	    {"example.com fingerprint match=" MD5_HEX "\n",
		"p:1: example.com: match: \"" MD5_HEX "\" is an md5 digest, "
		"which is not accepted: use sha256 (Postfix: "
		"smtp_tls_fingerprint_digest = sha256)"},
	    {"example.com fingerprint match=AB:CD\n",
		"p:1: example.com: match: \"AB:CD\" is not a sha256 or sha1 "
		"digest (hex, colons allowed)"},
	    {"example.com fingerprint fingerprint=XY\n",
		"p:1: example.com: fingerprint: \"XY\" is not a sha256 or sha1 "
		"digest (hex, colons allowed)"},
	    {"example.com dane tlsa=1:1:1:" SHA256_HEX2 "\n",
		"p:1: example.com: tlsa: \"1:1:1:" SHA256_HEX2
		"\": expected USAGE SELECTOR MTYPE HEX with usage 2 or 3, "
		"selector 0 or 1, matching type 0, 1 or 2"},
	    {"example.com dane tlsa=3:1:2:" SHA256_HEX2 "\n",
		"p:1: example.com: tlsa: \"3:1:2:" SHA256_HEX2
		"\": the data is not hex of the right length"},
	    {"example.com secure protocols=TLSv9\n",
		"p:1: example.com: protocols=TLSv9: protocols: unknown "
		"protocol (SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)"},
	    {"example.com secure protocols=!TLSv1.2\n",
		"p:1: example.com: protocols=!TLSv1.2: protocols: the enabled "
		"protocols must form a contiguous range"},
	    {"example.com secure ciphers=low\n",
		"p:1: example.com: ciphers=low: low and export are obsolete "
		"(Postfix 3.8 treats them as medium): use medium"},
	    {"example.com secure exclude=RC4!x\n",
		"p:1: example.com: exclude=RC4!x: expected OpenSSL cipher "
		"names or classes, separated by ':'"},
	    {"example.com secure servername=bad..name\n",
		"p:1: example.com: servername=bad..name: not a host name (a "
		"name, hostname or nexthop)"},
	    {"example.com secure ciphers=high ciphers=medium\n",
		"p:1: example.com: attribute \"ciphers\" is specified multiple "
		"times"},
	    {"example.com secure\n  protocols=TLSv1.3\n  protocols=TLSv1.2\n",
		"p:3: example.com: attribute \"protocols\" is specified "
		"multiple times"},
	    {"example.com secure exclude=RC4 exclude=3DES\n",
		"p:1: example.com: attribute \"exclude\" is specified multiple "
		"times"},
	    {"example.com secure servername=a.example servername=b.example\n",
		"p:1: example.com: attribute \"servername\" is specified "
		"multiple times"},
	    {"example.com secure tafile=/etc/postfix/ta.pem\n",
		"p:1: example.com: attribute \"tafile\" is not supported: "
		"trust anchors come from the route's ca_file or ca_path (a "
		"destination with anchors of its own needs a route of its "
		"own)"},
	    {"example.com may connection_reuse=maybe\n",
		"p:1: example.com: attribute \"connection_reuse\" has bad "
		"value: \"maybe\""},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
}

static void
test_error_drops_only_its_entry(void **state)
{
	(void)state;
	/* every problem is reported, the good entries stay */
	parse("a.example secure\n"
	      "b.example weird\n"
	      "c.example verify colour=red ciphers=x\n"
	      "d.example may\n"
	      "a.example may\n"
	      "c.example may\n");
	expect_counts(5, 0);
	assert_int_equal(map->n, 2);
	assert_non_null(tp_policy_lookup_key(map, "a.example"));
	assert_non_null(tp_policy_lookup_key(map, "d.example"));
	assert_null(tp_policy_lookup_key(map, "c.example"));
	expect_diag("p:3: c.example: unknown attribute \"colour\"");
	expect_diag("p:3: c.example: ciphers=x: expected high, medium or null");
	expect_diag("p:5: duplicate key a.example (first at line 1)");
	/* a duplicate of a broken entry too */
	expect_diag("p:6: duplicate key c.example (first at line 3)");
	/* a NUL byte */
	tp_policy_map_free(map);
	ndiags = 0;
	{
		static const char nul[] =
		    "a.example may\nb.ex\0ample may\nc.example may\n";

		map = tp_policy_map_parse(nul, sizeof(nul) - 1, collect, NULL);
	}
	expect_counts(1, 0);
	expect_diag("p:2: NUL byte in line");
	assert_int_equal(map->n, 2);
	/* an empty file, only comments */
	parse("");
	expect_counts(0, 0);
	assert_int_equal(map->n, 0);
	assert_null(tp_policy_lookup(map, "example.com"));
	parse("# nothing\n\n   \n");
	expect_counts(0, 0);
	assert_int_equal(map->n, 0);
	/* no newline at the end */
	parse("a.example may");
	expect_counts(0, 0);
	assert_int_equal(map->n, 1);
}

/* ---- lookups ---- */

static void
test_lookup_order(void **state)
{
	const struct tp_pm_entry *e;

	(void)state;
	parse("example.com secure\n"         /* 1 */
	      ".example.com encrypt\n"       /* 2 */
	      ".b.example.com dane-only\n"   /* 3 */
	      "x.b.example.com may\n"        /* 4 */
	      ".org none\n"                  /* 5 */
	      "[mx.example.net]:25 verify\n" /* 6 */
	      "example.net:587 encrypt\n"    /* 7 */
	      "[mx.example.net] dane\n");    /* 8 */
	expect_counts(0, 0);
	/* the domain itself */
	e = tp_policy_lookup(map, "example.com");
	assert_non_null(e);
	assert_int_equal(e->line, 1);
	/* a subdomain: .example.com */
	assert_int_equal(tp_policy_lookup(map, "a.example.com")->line, 2);
	assert_int_equal(tp_policy_lookup(map, "a.a.example.com")->line, 2);
	/* the nearest parent wins */
	assert_int_equal(tp_policy_lookup(map, "b.example.com")->line, 2);
	assert_int_equal(tp_policy_lookup(map, "y.b.example.com")->line, 3);
	assert_int_equal(tp_policy_lookup(map, "z.y.b.example.com")->line, 3);
	/* an exact entry beats a parent one */
	assert_int_equal(tp_policy_lookup(map, "x.b.example.com")->line, 4);
	assert_int_equal(tp_policy_lookup(map, "w.x.b.example.com")->line, 3);
	/* any case, a trailing dot */
	assert_int_equal(tp_policy_lookup(map, "A.Example.COM.")->line, 2);
	assert_int_equal(tp_policy_lookup(map, "EXAMPLE.COM")->line, 1);
	/* the top: .org matches every .org domain, not "org" */
	assert_int_equal(tp_policy_lookup(map, "example.org")->line, 5);
	assert_null(tp_policy_lookup(map, "org"));
	/* no entry */
	assert_null(tp_policy_lookup(map, "example.net"));
	assert_null(tp_policy_lookup(map, "com"));
	assert_null(tp_policy_lookup(map, "notexample.com"));
	assert_null(tp_policy_lookup(map, ""));
	assert_null(tp_policy_lookup(map, ".example.com"));
	assert_null(tp_policy_lookup(map, "."));
	/* nexthop keys apply to that nexthop only, never to a domain */
	assert_null(tp_policy_lookup(map, "mx.example.net"));
	assert_int_equal(tp_policy_lookup(map, "[mx.example.net]:25")->line, 6);
	assert_int_equal(tp_policy_lookup(map, "[MX.example.net]")->line, 8);
	assert_int_equal(tp_policy_lookup(map, "example.net:587")->line, 7);
	assert_null(tp_policy_lookup(map, "[a.example.com]"));
	/* a name longer than any key */
	{
		char big[400];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_null(tp_policy_lookup(map, big));
		assert_null(tp_policy_lookup_key(map, big));
	}
	/* no map */
	assert_null(tp_policy_lookup(NULL, "example.com"));
}

static void
test_lookup_many(void **state)
{
	char *text, key[64];
	size_t len = 0, cap = 64 * 5000;

	(void)state;
	/* the hash grows: every one of 5000 entries is found */
	text = malloc(cap);
	assert_non_null(text);
	for (int i = 0; i < 5000; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "%sd%d.example %s\n", i % 2 ? "." : "", i,
		    i % 3 ? "may" : "secure");
	ndiags = 0;
	tp_policy_map_free(map);
	map = tp_policy_map_parse(text, len, collect, NULL);
	free(text);
	expect_counts(0, 0);
	assert_int_equal(map->n, 5000);
	for (int i = 0; i < 5000; i++) {
		const struct tp_pm_entry *e;

		snprintf(
		    key, sizeof(key), "%sd%d.example", i % 2 ? "x." : "", i);
		e = tp_policy_lookup(map, key);
		assert_non_null(e);
		assert_int_equal(e->line, i + 1);
		snprintf(key, sizeof(key), "d%d.example", i);
		if (i % 2)
			assert_null(tp_policy_lookup(map, key));
	}
}

static void
test_load(void **state)
{
	char dir[] = "/tmp/tp_test_pm.XXXXXX", path[64], why[300];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tls_policy", dir);
	/* missing */
	ndiags = 0;
	map = tp_policy_map_load(path, collect, NULL, why, sizeof(why));
	assert_null(map);
	assert_string_equal(why, "cannot read: No such file or directory");
	/* a file */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# test\nexample.com secure\n  match=mx.example.com\n", f);
	fclose(f);
	map = tp_policy_map_load(path, collect, NULL, why, sizeof(why));
	assert_non_null(map);
	expect_counts(0, 0);
	assert_int_equal(entry("example.com")->nmatch, 1);
	/* a directory cannot be read */
	tp_policy_map_free(map);
	map = tp_policy_map_load(dir, collect, NULL, why, sizeof(why));
	assert_null(map);
	assert_string_equal(why, "cannot read: Is a directory");
	unlink(path);
	rmdir(dir);
}

/* example_path - examples/tls_policy, found above the test binary. */
static bool
example_path(char *out, size_t len)
{
	char exe[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return false;
	exe[n] = '\0';
	while ((slash = strrchr(exe, '/')) != NULL) {
		*slash = '\0';
		snprintf(out, len, "%s/examples/tls_policy", exe);
		if (access(out, R_OK) == 0)
			return true;
	}
	return false;
}

static void
test_example_file(void **state)
{
	const struct tp_pm_entry *e;
	char path[600], why[300];
	bool seen[TP_SEC_DANE_ONLY + 1] = {false};

	(void)state;
	if (!example_path(path, sizeof(path)))
		skip();
	ndiags = 0;
	map = tp_policy_map_load(path, collect, NULL, why, sizeof(why));
	assert_non_null(map);
	/* the shipped example: no error, no warning, every level */
	expect_counts(0, 0);
	for (size_t i = 0; i < map->n; i++)
		seen[map->e[i].level] = true;
	for (int l = TP_SEC_NONE; l <= TP_SEC_DANE_ONLY; l++)
		if (!seen[l])
			fail_msg("no entry of level %d", l);
	e = tp_policy_lookup(map, "partner.example");
	assert_int_equal(e->level, TP_SEC_SECURE);
	assert_int_equal(e->nmatch, 4);
	assert_int_equal(e->grade, TP_GRADE_HIGH);
	assert_int_equal(e->proto_min, TP_PROTO_TLS13);
	assert_int_equal(
	    tp_policy_lookup(map, "eu.partner.example")->level, TP_SEC_VERIFY);
	assert_int_equal(tp_policy_lookup(map, "payroll.example")->nfps, 2);
	assert_int_equal(tp_policy_lookup(map, "hr-provider.example")->nfps, 1);
	assert_int_equal(
	    tp_policy_lookup(map, "unsigned-partner.example")->ntlsa, 2);
	assert_int_equal(tp_policy_lookup(map, "backup-mx.example")->ntlsa, 1);
	assert_int_equal(
	    tp_policy_lookup(map, "a.b.gov.example")->level, TP_SEC_DANE);
	e = tp_policy_lookup(map, "legacy-erp.example");
	assert_int_equal(e->proto_min, TP_PROTO_TLS1);
	assert_string_equal(e->exclude, "3DES RC4 aNULL");
	assert_string_equal(
	    tp_policy_lookup(map, "lists.example")->servername, "hostname");
	assert_non_null(
	    tp_policy_lookup_key(map, "[smarthost.example.net]:587"));
	assert_non_null(tp_policy_lookup_key(map, "[10.1.2.3]"));
	assert_non_null(tp_policy_lookup_key(map, "relay.example.net:2525"));
	assert_null(tp_policy_lookup(map, "example.org"));
}

int
main(void)
{
#define T(f) cmocka_unit_test_teardown(f, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_key_forms),
	    T(test_levels),
	    T(test_attributes),
	    T(test_ignored_attributes),
	    T(test_continuation_and_comments),
	    T(test_errors),
	    T(test_error_drops_only_its_entry),
	    T(test_lookup_order),
	    T(test_lookup_many),
	    T(test_load),
	    T(test_example_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
