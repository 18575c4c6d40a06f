/*
 * test_mta_sts.c - MTA-STS without I/O (mta_sts.c): the _mta-sts TXT
 * record and the choice among several (RFC 8461 3.1, as text and as
 * rdata), the policy file (3.2: CRLF and LF, required fields, first-wins
 * duplicates, max_age and id bounds, mx patterns), MX matching (4.1), the
 * mta_sts_cache format (round trip, damaged entries and resync) and the
 * RFC 8460 names.
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

#include "tlsproxy/mta_sts.h"

#define ID32 "abcdefghijklmnopqrstuvwxyz012345"

/* ---- TXT ---------------------------------------------------------------- */

static int
txt(const char *s, char *id, const char **why)
{
	*why = NULL;
	return tp_mta_sts_txt_parse(s, strlen(s), id, why);
}

static void
txt_ok(const char *s, const char *want)
{
	char id[TP_MTA_STS_ID_SIZE];
	const char *why;

	if (txt(s, id, &why) != 0)
		fail_msg("\"%s\": %s", s, why ? why : "?");
	assert_string_equal(id, want);
}

static void
txt_bad(const char *s, int want)
{
	char id[TP_MTA_STS_ID_SIZE] = "untouched";
	const char *why;
	int rc = txt(s, id, &why);

	if (rc != want)
		fail_msg("\"%s\": %d, want %d", s, rc, want);
	if (want == TP_MTA_STS_EINVAL)
		assert_non_null(why);
	assert_string_equal(id, "untouched");
}

static void
test_txt_valid(void **state)
{
	(void)state;
	txt_ok("v=STSv1; id=20160831085700Z;", "20160831085700Z");
	txt_ok("v=STSv1; id=20160831085700Z", "20160831085700Z");
	txt_ok("v=STSv1;id=abc", "abc");
	txt_ok("v=STSv1;\tid=abc\t;\t", "abc");
	txt_ok("v=STSv1;  id=abc  ;  ", "abc");
	/* unknown fields are ignored, before or after id */
	txt_ok("v=STSv1; foo=bar; id=abc", "abc");
	txt_ok(
	    "v=STSv1; id=abc; x_y-z.1=!\"#$%&'()*+,-./:<>?@[]^_`{|}~", "abc");
	/* "ID" is not "id" (%s"id="): an extension */
	txt_ok("v=STSv1; ID=zzz; id=abc", "abc");
	/* 3.1: 1*32(ALPHA / DIGIT) */
	txt_ok("v=STSv1; id=" ID32, ID32);
	txt_ok("v=STSv1; id=1", "1");
	/* extension names up to 32 characters */
	txt_ok("v=STSv1; id=a; abcdefghijklmnopqrstuvwxyz012345=1", "a");
}

static void
test_txt_invalid(void **state)
{
	(void)state;
	txt_bad("v=STSv1; id=" ID32 "6", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=;", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc-def", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc def", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc; id=abc", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc; id=def", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1;", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; ", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; foo=bar", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; ID=abc", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1;; id=abc", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc;; foo=bar", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc; foo", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc; foo=", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc; foo=a=b", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc; _foo=1", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc; abcdefghijklmnopqrstuvwxyz0123456=1",
	    TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id = abc", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc extra", TP_MTA_STS_EINVAL);
	txt_bad("v=STSv1; id=abc\r\n", TP_MTA_STS_EINVAL);
	assert_int_equal(tp_mta_sts_txt_parse("v=STSv1; id=abc\0x", 17,
			     (char[TP_MTA_STS_ID_SIZE]){0}, &(const char *){0}),
	    TP_MTA_STS_EINVAL);
}

static void
test_txt_not_sts(void **state)
{
	(void)state;
	/* 3.1: records that do not begin with "v=STSv1;" are dropped */
	txt_bad("", TP_MTA_STS_ENOREC);
	txt_bad("v=spf1 -all", TP_MTA_STS_ENOREC);
	txt_bad("v=STSv1", TP_MTA_STS_ENOREC);
	txt_bad("v=STSv1 ; id=abc", TP_MTA_STS_ENOREC);
	txt_bad("V=STSv1; id=abc", TP_MTA_STS_ENOREC);
	txt_bad("v=stsv1; id=abc", TP_MTA_STS_ENOREC);
	txt_bad("v=STSv10; id=abc", TP_MTA_STS_ENOREC);
	txt_bad("v=STSv2; id=abc", TP_MTA_STS_ENOREC);
	txt_bad(" v=STSv1; id=abc", TP_MTA_STS_ENOREC);
	txt_bad("id=abc; v=STSv1;", TP_MTA_STS_ENOREC);
}

static int
sel(const char **recs, size_t n, char *id, const char **why)
{
	size_t len[8];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		len[i] = strlen(recs[i]);
	*why = NULL;
	return tp_mta_sts_txt_select(recs, len, n, id, why);
}

static void
test_txt_select(void **state)
{
	char id[TP_MTA_STS_ID_SIZE];
	const char *why;
	const char *one[] = {"v=spf1 -all", "v=STSv1; id=abc", "hello"};
	const char *two[] = {"v=STSv1; id=abc", "v=spf1", "v=STSv1; id=def"};
	const char *same[] = {"v=STSv1; id=abc", "v=STSv1; id=abc"};
	const char *badgood[] = {"v=STSv1; id=", "v=STSv1; id=abc"};
	const char *none[] = {"v=spf1 -all", "v=STSv1 ; id=abc", "V=STSv1;"};
	const char *bad[] = {"v=spf1", "v=STSv1; id=abc; id=def"};

	(void)state;
	assert_int_equal(sel(one, 3, id, &why), 0);
	assert_string_equal(id, "abc");
	/* not exactly one: no policy, whatever the records say */
	assert_int_equal(sel(two, 3, id, &why), TP_MTA_STS_EMULTI);
	assert_non_null(why);
	assert_int_equal(sel(same, 2, id, &why), TP_MTA_STS_EMULTI);
	assert_int_equal(sel(badgood, 2, id, &why), TP_MTA_STS_EMULTI);
	assert_int_equal(sel(none, 3, id, &why), TP_MTA_STS_ENOREC);
	assert_non_null(why);
	assert_int_equal(sel(none, 0, id, &why), TP_MTA_STS_ENOREC);
	assert_int_equal(sel(bad, 2, id, &why), TP_MTA_STS_EINVAL);
	assert_string_equal(why, "id given twice");
}

/* rdata - TXT rdata from character-strings; "" ends the list. */
static size_t
rdata(unsigned char *out, const char *const *strs)
{
	size_t n = 0;

	for (size_t i = 0; strs[i] != NULL; i++) {
		size_t l = strlen(strs[i]);

		out[n++] = (unsigned char)l;
		memcpy(out + n, strs[i], l);
		n += l;
	}
	return n;
}

static void
test_txt_rdata(void **state)
{
	unsigned char a[600], b[600], c[600];
	char *data[4];
	int len[4];
	char id[TP_MTA_STS_ID_SIZE];
	const char *why;
	const char *sa[] = {"v=STS", "v1; i", "", "d=abc", ";", NULL};
	const char *sb[] = {"v=spf1 ", "-all", NULL};
	const char *sc[] = {"", "v=STSv1;", " id=", "xyz", NULL};
	char longs[256];

	(void)state;
	len[0] = (int)rdata(a, sa);
	len[1] = (int)rdata(b, sb);
	data[0] = (char *)a;
	data[1] = (char *)b;
	data[2] = NULL;
	assert_int_equal(tp_mta_sts_txt_select_rdata(data, len, id, &why), 0);
	assert_string_equal(id, "abc");
	/* a second STSv1 record */
	len[2] = (int)rdata(c, sc);
	data[2] = (char *)c;
	data[3] = NULL;
	assert_int_equal(tp_mta_sts_txt_select_rdata(data, len, id, &why),
	    TP_MTA_STS_EMULTI);
	data[0] = (char *)c;
	len[0] = len[2];
	data[2] = NULL;
	assert_int_equal(tp_mta_sts_txt_select_rdata(data, len, id, &why), 0);
	assert_string_equal(id, "xyz");
	/* a 255-byte string then more */
	memset(longs, 'x', 255);
	longs[255] = '\0';
	{
		const char *sl[] = {"v=STSv1; id=q; e=", longs, NULL};

		len[0] = (int)rdata(a, sl);
		data[0] = (char *)a;
		data[1] = NULL;
		assert_int_equal(
		    tp_mta_sts_txt_select_rdata(data, len, id, &why), 0);
		assert_string_equal(id, "q");
	}
	/* none at all */
	data[0] = NULL;
	assert_int_equal(tp_mta_sts_txt_select_rdata(data, len, id, &why),
	    TP_MTA_STS_ENOREC);
	assert_int_equal(tp_mta_sts_txt_select_rdata(NULL, NULL, id, &why),
	    TP_MTA_STS_ENOREC);
	/* malformed rdata counts as an invalid STSv1 record */
	len[0] = (int)rdata(a, sa);
	a[0] = 200; /* runs past the end */
	data[0] = (char *)a;
	data[1] = NULL;
	assert_int_equal(tp_mta_sts_txt_select_rdata(data, len, id, &why),
	    TP_MTA_STS_EINVAL);
	assert_string_equal(why, "malformed TXT rdata");
	data[1] = (char *)c;
	len[1] = len[2];
	data[2] = NULL;
	assert_int_equal(tp_mta_sts_txt_select_rdata(data, len, id, &why),
	    TP_MTA_STS_EMULTI);
	len[0] = 0;
	data[1] = NULL;
	assert_int_equal(tp_mta_sts_txt_select_rdata(data, len, id, &why),
	    TP_MTA_STS_EINVAL);
	/* an empty string alone: not an STSv1 record */
	a[0] = 0;
	len[0] = 1;
	assert_int_equal(tp_mta_sts_txt_select_rdata(data, len, id, &why),
	    TP_MTA_STS_ENOREC);
}

/* ---- policy ------------------------------------------------------------- */

static char ERR[TP_MTA_STS_ERR_SIZE];

static const struct tp_mta_sts_policy *
pol(const char *text)
{
	const struct tp_mta_sts_policy *p = NULL;
	int rc;

	ERR[0] = '\0';
	rc = tp_mta_sts_policy_parse(
	    text, strlen(text), "id1", 1000, &p, ERR, sizeof(ERR));
	if (rc != 0) {
		assert_int_equal(rc, TP_MTA_STS_EINVAL);
		assert_null(p);
		return NULL;
	}
	assert_non_null(p);
	return p;
}

static void
pol_bad(const char *text, const char *want)
{
	const struct tp_mta_sts_policy *p = pol(text);

	if (p != NULL)
		fail_msg("accepted:\n%s", text);
	if (strcmp(ERR, want) != 0)
		fail_msg("\"%s\", want \"%s\"", ERR, want);
}

static void
test_policy_crlf(void **state)
{
	const char *t = "version: STSv1\r\n"
			"mode: enforce\r\n"
			"mx: mail.example.com\r\n"
			"mx: *.example.net\r\n"
			"mx: backupmx.example.com\r\n"
			"max_age: 604800\r\n";
	const struct tp_mta_sts_policy *p = pol(t);

	(void)state;
	assert_non_null(p);
	assert_int_equal(p->mode, TP_MTA_STS_MODE_ENFORCE);
	assert_int_equal(p->max_age, 604800);
	assert_int_equal(p->fetched, 1000);
	assert_string_equal(p->id, "id1");
	assert_int_equal(p->nmx, 3);
	assert_string_equal(p->mx[0], "mail.example.com");
	assert_string_equal(p->mx[1], "*.example.net");
	assert_string_equal(p->mx[2], "backupmx.example.com");
	assert_int_equal(p->text_len, strlen(t));
	assert_memory_equal(p->text, t, strlen(t));
	assert_int_equal(p->text[p->text_len], '\0');
	assert_int_equal(tp_mta_sts_policy_expires(p), 1000 + 604800);
	tp_mta_sts_policy_free(p);
}

static void
test_policy_lf(void **state)
{
	const struct tp_mta_sts_policy *p;

	(void)state;
	p = pol("version: STSv1\nmode: testing\nmx: MX1.Example.COM.\n"
		"max_age: 86400");
	assert_non_null(p);
	assert_int_equal(p->mode, TP_MTA_STS_MODE_TESTING);
	assert_int_equal(p->max_age, 86400);
	assert_int_equal(p->nmx, 1);
	assert_string_equal(p->mx[0], "mx1.example.com");
	tp_mta_sts_policy_free(p);
	/* mixed endings, blank lines, white space, no space after ':',
	 * version not first */
	p = pol("\r\nmode:enforce   \n\nmx:\t*.Example.Net\r\n"
		"version:   STSv1\t\r\n  \r\nmax_age: 0\n\n");
	assert_non_null(p);
	assert_int_equal(p->mode, TP_MTA_STS_MODE_ENFORCE);
	assert_int_equal(p->max_age, 0);
	assert_string_equal(p->mx[0], "*.example.net");
	tp_mta_sts_policy_free(p);
}

static void
test_policy_max_age(void **state)
{
	const struct tp_mta_sts_policy *p;

	(void)state;
	p = pol("version: STSv1\nmode: none\nmax_age: 31557600\n");
	assert_non_null(p);
	assert_int_equal(p->max_age, 31557600);
	tp_mta_sts_policy_free(p);
	/* 1*10(DIGIT): leading zeros count */
	p = pol("version: STSv1\nmode: none\nmax_age: 0031557600\n");
	assert_non_null(p);
	assert_int_equal(p->max_age, 31557600);
	tp_mta_sts_policy_free(p);
	pol_bad("version: STSv1\nmode: none\nmax_age: 31557601\n",
	    "line 3: max_age: more than 31557600");
	pol_bad("version: STSv1\nmode: none\nmax_age: 00031557600\n",
	    "line 3: max_age: more than 31557600");
	pol_bad("version: STSv1\nmode: none\nmax_age: 99999999999999999999\n",
	    "line 3: max_age: more than 31557600");
	pol_bad("version: STSv1\nmode: none\nmax_age: abc\n",
	    "line 3: max_age: not a number");
	pol_bad("version: STSv1\nmode: none\nmax_age: -1\n",
	    "line 3: max_age: not a number");
	pol_bad("version: STSv1\nmode: none\nmax_age: +1\n",
	    "line 3: max_age: not a number");
	pol_bad("version: STSv1\nmode: none\nmax_age: 1 2\n",
	    "line 3: max_age: not a number");
	pol_bad("version: STSv1\nmode: none\nmax_age:\n",
	    "line 3: max_age: not a number");
	pol_bad("version: STSv1\nmode: none\nmax_age: 1d\n",
	    "line 3: max_age: not a number");
}

static void
test_policy_required(void **state)
{
	const struct tp_mta_sts_policy *p;

	(void)state;
	pol_bad("", "version: missing");
	pol_bad("\n\n", "version: missing");
	pol_bad(
	    "mode: enforce\nmx: a.example\nmax_age: 1\n", "version: missing");
	pol_bad("version: STSv1\nmx: a.example\nmax_age: 1\n", "mode: missing");
	pol_bad("version: STSv1\nmode: enforce\nmx: a.example\n",
	    "max_age: missing");
	pol_bad("version: STSv1\nmode: enforce\nmax_age: 1\n",
	    "mx: missing (required with mode enforce)");
	pol_bad("version: STSv1\nmode: testing\nmax_age: 1\n",
	    "mx: missing (required with mode testing)");
	/* mode none needs no mx, but may have some */
	p = pol("version: STSv1\nmode: none\nmax_age: 1\n");
	assert_non_null(p);
	assert_int_equal(p->mode, TP_MTA_STS_MODE_NONE);
	assert_int_equal(p->nmx, 0);
	tp_mta_sts_policy_free(p);
	p = pol("version: STSv1\nmode: none\nmax_age: 1\nmx: a.example\n");
	assert_non_null(p);
	assert_int_equal(p->nmx, 1);
	tp_mta_sts_policy_free(p);
}

static void
test_policy_values(void **state)
{
	(void)state;
	pol_bad("version: STSv2\nmode: none\nmax_age: 1\n",
	    "line 1: version: not STSv1");
	pol_bad("version: stsv1\nmode: none\nmax_age: 1\n",
	    "line 1: version: not STSv1");
	pol_bad("version: STSv1 x\nmode: none\nmax_age: 1\n",
	    "line 1: version: not STSv1");
	pol_bad(
	    "version:\nmode: none\nmax_age: 1\n", "line 1: version: not STSv1");
	pol_bad("version: STSv1\nmode: Enforce\nmax_age: 1\n",
	    "line 2: mode: not enforce, testing or none");
	pol_bad("version: STSv1\nmode: report\nmax_age: 1\n",
	    "line 2: mode: not enforce, testing or none");
	pol_bad("version: STSv1\nmode:\nmax_age: 1\n",
	    "line 2: mode: not enforce, testing or none");
	/* keys are case-sensitive: "Mode" is an unknown key */
	pol_bad("version: STSv1\nMode: none\nmax_age: 1\n", "mode: missing");
}

static void
test_policy_duplicates(void **state)
{
	const struct tp_mta_sts_policy *p;

	(void)state;
	/* 3.2: the first of a repeated field other than mx wins; the
	 * later ones are not looked at */
	p = pol("version: STSv1\nmode: testing\nmode: enforce\nmode: bogus\n"
		"max_age: 10\nmax_age: 20\nmax_age: x\nversion: STSv9\n"
		"mx: a.example\nmx: b.example\nmx: a.example\n");
	assert_non_null(p);
	assert_int_equal(p->mode, TP_MTA_STS_MODE_TESTING);
	assert_int_equal(p->max_age, 10);
	assert_int_equal(p->nmx, 3);
	assert_string_equal(p->mx[1], "b.example");
	assert_string_equal(p->mx[2], "a.example");
	tp_mta_sts_policy_free(p);
	/* a bad first one is not rescued by a good second one */
	pol_bad("version: STSv1\nmode: x\nmode: none\nmax_age: 1\n",
	    "line 2: mode: not enforce, testing or none");
}

static void
test_policy_unknown(void **state)
{
	const struct tp_mta_sts_policy *p;

	(void)state;
	p = pol("version: STSv1\nmode: none\nmax_age: 1\nfoo: bar baz\n"
		"x_y-z.9: caf\xc3\xa9\nextension:\n"
		"abcdefghijklmnopqrstuvwxyz012345: 1\n");
	assert_non_null(p);
	tp_mta_sts_policy_free(p);
}

static void
test_policy_syntax(void **state)
{
	char big[TP_MTA_STS_POLICY_MAX + 2];
	const struct tp_mta_sts_policy *p;
	const char *head = "version: STSv1\nmode: none\nmax_age: 1\n";

	(void)state;
	pol_bad("version: STSv1\nmode none\nmax_age: 1\n",
	    "line 2: not a \"key: value\" line");
	pol_bad("version: STSv1\nmode : none\nmax_age: 1\n", "line 2: bad key");
	pol_bad("version: STSv1\n mode: none\nmax_age: 1\n", "line 2: bad key");
	pol_bad("version: STSv1\n: none\nmax_age: 1\n", "line 2: bad key");
	pol_bad("version: STSv1\n_x: none\nmax_age: 1\n", "line 2: bad key");
	pol_bad("version: STSv1\nmode: none\nmax_age: 1\n"
		"abcdefghijklmnopqrstuvwxyz0123456: 1\n",
	    "line 4: bad key");
	pol_bad("version: STSv1\nmode: no\rne\nmax_age: 1\n",
	    "line 2: control character");
	pol_bad("version: STSv1\r\r\nmode: none\nmax_age: 1\n",
	    "line 1: control character");
	pol_bad("version: STSv1\nmode: none\nmax_age: 1\nx: \x1b[0m\n",
	    "line 4: control character");
	pol_bad("version: STSv1\nmode: none\nmax_age: 1\nx: \x7f\n",
	    "line 4: control character");
	/* a NUL byte */
	p = NULL;
	assert_int_equal(tp_mta_sts_policy_parse(
			     "version: STSv1\nmode: none\0\nmax_age: 1\n", 38,
			     "a", 0, &p, ERR, sizeof(ERR)),
	    TP_MTA_STS_EINVAL);
	assert_null(p);
	assert_string_equal(ERR, "line 2: control character");
	/* 64 KB at most */
	memset(big, '\n', sizeof(big));
	memcpy(big, head, strlen(head));
	assert_int_equal(tp_mta_sts_policy_parse(big, TP_MTA_STS_POLICY_MAX,
			     "a", 0, &p, ERR, sizeof(ERR)),
	    0);
	assert_int_equal(p->text_len, TP_MTA_STS_POLICY_MAX);
	tp_mta_sts_policy_free(p);
	assert_int_equal(tp_mta_sts_policy_parse(big, TP_MTA_STS_POLICY_MAX + 1,
			     "a", 0, &p, ERR, sizeof(ERR)),
	    TP_MTA_STS_EINVAL);
	assert_string_equal(ERR, "longer than 65536 bytes");
	/* err may be NULL */
	assert_int_equal(tp_mta_sts_policy_parse("x", 1, "a", 0, &p, NULL, 0),
	    TP_MTA_STS_EINVAL);
}

static void
test_policy_args(void **state)
{
	const struct tp_mta_sts_policy *p = NULL;
	const char *t = "version: STSv1\nmode: none\nmax_age: 1\n";
	size_t l = strlen(t);

	(void)state;
	assert_int_equal(
	    tp_mta_sts_policy_parse(t, l, ID32, 0, &p, ERR, sizeof(ERR)), 0);
	assert_string_equal(p->id, ID32);
	tp_mta_sts_policy_free(p);
	assert_int_equal(
	    tp_mta_sts_policy_parse(t, l, ID32 "6", 0, &p, ERR, sizeof(ERR)),
	    TP_MTA_STS_EINVAL);
	assert_string_equal(ERR, "bad id (1-32 letters and digits)");
	assert_int_equal(
	    tp_mta_sts_policy_parse(t, l, "", 0, &p, ERR, sizeof(ERR)),
	    TP_MTA_STS_EINVAL);
	assert_int_equal(
	    tp_mta_sts_policy_parse(t, l, "a-b", 0, &p, ERR, sizeof(ERR)),
	    TP_MTA_STS_EINVAL);
	assert_int_equal(
	    tp_mta_sts_policy_parse(t, l, NULL, 0, &p, ERR, sizeof(ERR)),
	    TP_MTA_STS_EINVAL);
	assert_int_equal(
	    tp_mta_sts_policy_parse(t, l, "a", -1, &p, ERR, sizeof(ERR)),
	    TP_MTA_STS_EINVAL);
	assert_string_equal(ERR, "bad fetch time");
	assert_int_equal(tp_mta_sts_policy_parse(t, l, "a", TP_MTA_STS_TIME_MAX,
			     &p, ERR, sizeof(ERR)),
	    0);
	tp_mta_sts_policy_free(p);
	assert_int_equal(tp_mta_sts_policy_parse(t, l, "a",
			     TP_MTA_STS_TIME_MAX + 1, &p, ERR, sizeof(ERR)),
	    TP_MTA_STS_EINVAL);
	tp_mta_sts_policy_free(NULL);
	/* a short err buffer is cut, not overrun */
	{
		char small[8];

		assert_int_equal(tp_mta_sts_policy_parse(
				     "x", 1, "a", 0, &p, small, sizeof(small)),
		    TP_MTA_STS_EINVAL);
		assert_string_equal(small, "line 1:");
	}
}

static void
mx_ok(const char *pattern, const char *want)
{
	char t[600];
	const struct tp_mta_sts_policy *p;

	snprintf(t, sizeof(t),
	    "version: STSv1\nmode: enforce\nmax_age: 1\nmx: %s\n", pattern);
	p = pol(t);
	if (p == NULL)
		fail_msg("mx \"%s\": %s", pattern, ERR);
	assert_int_equal(p->nmx, 1);
	assert_string_equal(p->mx[0], want);
	tp_mta_sts_policy_free(p);
}

static void
mx_bad(const char *pattern, const char *want)
{
	char t[600], w[200];

	snprintf(t, sizeof(t),
	    "version: STSv1\nmode: enforce\nmax_age: 1\nmx: %s\n", pattern);
	snprintf(w, sizeof(w), "line 4: mx: %s", want);
	pol_bad(t, w);
}

static void
test_policy_mx_patterns(void **state)
{
	char l63[64], l64[65], n253[300], n254[300];

	(void)state;
	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'a', 64);
	l64[64] = '\0';
	/* 4 x 63 + 3 dots = 255: too long; build 253 and 254 */
	snprintf(n253, sizeof(n253), "%s.%s.%s.%.61s", l63, l63, l63, l63);
	snprintf(n254, sizeof(n254), "%s.%s.%s.%.62s", l63, l63, l63, l63);
	assert_int_equal(strlen(n253), 253);
	mx_ok("mail.example.com", "mail.example.com");
	mx_ok("*.example.net", "*.example.net");
	mx_ok("*.Example.NET.", "*.example.net");
	mx_ok("MX-1.example.com.", "mx-1.example.com");
	mx_ok("localhost", "localhost");
	mx_ok("xn--bcher-kva.example", "xn--bcher-kva.example");
	mx_ok("1.2.3.4", "1.2.3.4");
	mx_ok(l63, l63);
	mx_ok(n253, n253);
	{
		char w[300];

		snprintf(w, sizeof(w), "*.%s", n253);
		mx_ok(w, w);
	}
	mx_bad("", "empty name");
	mx_bad(".", "empty name");
	mx_bad("*.", "'*' is only allowed as the whole first label");
	mx_bad("*", "'*' is only allowed as the whole first label");
	mx_bad(
	    "*.*.example.com", "'*' is only allowed as the whole first label");
	mx_bad(
	    "a.*.example.com", "'*' is only allowed as the whole first label");
	mx_bad(
	    "m*.example.com", "'*' is only allowed as the whole first label");
	mx_bad(
	    "*mx.example.com", "'*' is only allowed as the whole first label");
	mx_bad("mx.example.*", "'*' is only allowed as the whole first label");
	mx_bad("a..example.com", "empty label");
	mx_bad(".example.com", "empty label");
	mx_bad("example.com..", "empty label");
	mx_bad("-a.example.com", "label starts with '-'");
	mx_bad("a-.example.com", "label ends with '-'");
	mx_bad("example.com-", "label ends with '-'");
	mx_bad(l64, "label longer than 63 characters");
	mx_bad(n254, "name longer than 253 characters");
	mx_bad("a_b.example.com",
	    "not a host name (letters, digits, '-', '.'; A-labels for IDNs)");
	mx_bad("b\xc3\xbc"
	       "cher.example",
	    "not a host name (letters, digits, '-', '.'; A-labels for IDNs)");
	mx_bad("a.example.com b.example.com",
	    "not a host name (letters, digits, '-', '.'; A-labels for IDNs)");
	mx_bad("[192.0.2.1]",
	    "not a host name (letters, digits, '-', '.'; A-labels for IDNs)");
}

/* ---- MX matching -------------------------------------------------------- */

static void
test_mx_match(void **state)
{
	const struct tp_mta_sts_policy *p;

	(void)state;
	assert_true(
	    tp_mta_sts_mx_match("mail.example.com", "mail.example.com"));
	assert_true(
	    tp_mta_sts_mx_match("mail.example.com", "MAIL.Example.Com"));
	assert_true(
	    tp_mta_sts_mx_match("mail.example.com", "mail.example.com."));
	assert_true(
	    tp_mta_sts_mx_match("mail.example.com.", "mail.example.com"));
	assert_false(tp_mta_sts_mx_match("mail.example.com", "example.com"));
	assert_false(
	    tp_mta_sts_mx_match("mail.example.com", "x.mail.example.com"));
	assert_false(
	    tp_mta_sts_mx_match("mail.example.com", "mail.example.co"));
	assert_false(tp_mta_sts_mx_match("mail.example.com", ""));
	assert_false(tp_mta_sts_mx_match("", "mail.example.com"));
	assert_false(tp_mta_sts_mx_match("", ""));
	assert_false(tp_mta_sts_mx_match(".", "."));
	/* RFC 8461 4.1: one label, exactly */
	assert_true(tp_mta_sts_mx_match("*.example.com", "mx.example.com"));
	assert_true(tp_mta_sts_mx_match("*.example.com", "MX1.EXAMPLE.COM."));
	assert_true(tp_mta_sts_mx_match("*.example.com.", "a.example.com"));
	assert_false(tp_mta_sts_mx_match("*.example.com", "example.com"));
	assert_false(tp_mta_sts_mx_match("*.example.com", "a.b.example.com"));
	assert_false(tp_mta_sts_mx_match("*.example.com", ".example.com"));
	assert_false(tp_mta_sts_mx_match("*.example.com", "mx.example.co"));
	assert_false(tp_mta_sts_mx_match("*.example.com", "mxexample.com"));
	assert_false(tp_mta_sts_mx_match("*.example.com", "mx.example.com.x"));
	assert_false(tp_mta_sts_mx_match("*.example.com", "mx.aexample.com"));
	/* the pattern's '*' is no wildcard inside the host */
	assert_false(tp_mta_sts_mx_match("mx.example.com", "*.example.com"));

	p = pol("version: STSv1\nmode: enforce\nmax_age: 1\n"
		"mx: mail.example.com\nmx: *.example.net\n");
	assert_non_null(p);
	assert_string_equal(tp_mta_sts_policy_match(p, "Mail.Example.Com."),
	    "mail.example.com");
	assert_string_equal(
	    tp_mta_sts_policy_match(p, "mx2.example.net"), "*.example.net");
	assert_null(tp_mta_sts_policy_match(p, "example.net"));
	assert_null(tp_mta_sts_policy_match(p, "a.b.example.net"));
	assert_null(tp_mta_sts_policy_match(p, "mx.example.com"));
	tp_mta_sts_policy_free(p);
	p = pol("version: STSv1\nmode: none\nmax_age: 1\n");
	assert_null(tp_mta_sts_policy_match(p, "mx.example.com"));
	tp_mta_sts_policy_free(p);
}

/* ---- the cache file ----------------------------------------------------- */

static const char *P1 = "version: STSv1\r\nmode: enforce\r\n"
			"mx: mail.example.com\r\nmax_age: 604800\r\n";
static const char *P2 = "version: STSv1\nmode: testing\nmx: *.example.net\n"
			"max_age: 86400";

static const struct tp_mta_sts_policy *
polx(const char *text, const char *id, int64_t fetched)
{
	const struct tp_mta_sts_policy *p = NULL;

	assert_int_equal(tp_mta_sts_policy_parse(text, strlen(text), id,
			     fetched, &p, ERR, sizeof(ERR)),
	    0);
	return p;
}

/* a file with the banner and two entries */
static size_t
file2(char *buf, size_t size)
{
	const struct tp_mta_sts_policy *p1 = polx(P1, "20160831085700Z", 1700),
				       *p2 = polx(P2, "a1", 1800000000);
	size_t n, l;

	n = strlen(TP_MTA_STS_CACHE_BANNER);
	memcpy(buf, TP_MTA_STS_CACHE_BANNER, n);
	assert_int_equal(
	    tp_mta_sts_cache_format(buf + n, size - n, &l, "Example.COM.", p1),
	    0);
	n += l;
	assert_int_equal(
	    tp_mta_sts_cache_format(buf + n, size - n, &l, "example.net", p2),
	    0);
	n += l;
	tp_mta_sts_policy_free(p1);
	tp_mta_sts_policy_free(p2);
	return n;
}

static void
test_cache_format(void **state)
{
	const struct tp_mta_sts_policy *p = polx(P2, "a1", 5);
	char buf[512], want[512];
	size_t l, need;

	(void)state;
	snprintf(want, sizeof(want), "policy example.net a1 5 %zu\n%s\n",
	    strlen(P2), P2);
	assert_int_equal(
	    tp_mta_sts_cache_format(buf, sizeof(buf), &l, "EXAMPLE.net", p), 0);
	assert_string_equal(buf, want);
	assert_int_equal(l, strlen(want));
	/* size 0 asks for the length; one byte short is too short */
	assert_int_equal(
	    tp_mta_sts_cache_format(NULL, 0, &need, "example.net", p),
	    TP_MTA_STS_ENOSPC);
	assert_int_equal(need, l);
	assert_int_equal(
	    tp_mta_sts_cache_format(buf, l, &need, "example.net", p),
	    TP_MTA_STS_ENOSPC);
	assert_int_equal(
	    tp_mta_sts_cache_format(buf, l + 1, &need, "example.net", p), 0);
	assert_string_equal(buf, want);
	assert_int_equal(
	    tp_mta_sts_cache_format(buf, sizeof(buf), &l, "bad domain", p),
	    TP_MTA_STS_EINVAL);
	assert_int_equal(tp_mta_sts_cache_format(buf, sizeof(buf), &l, "", p),
	    TP_MTA_STS_EINVAL);
	assert_int_equal(
	    tp_mta_sts_cache_format(buf, sizeof(buf), &l, "a\nb.example", p),
	    TP_MTA_STS_EINVAL);
	tp_mta_sts_policy_free(p);
}

static void
test_cache_roundtrip(void **state)
{
	char buf[2048];
	size_t n = file2(buf, sizeof(buf));
	struct tp_mta_sts_cache_reader r;
	struct tp_mta_sts_cache_entry e;
	const struct tp_mta_sts_policy *p;

	(void)state;
	tp_mta_sts_cache_reader_init(&r, buf, n);
	assert_int_equal(tp_mta_sts_cache_next(&r, &e, ERR, sizeof(ERR)), 1);
	assert_string_equal(e.domain, "example.com");
	assert_string_equal(e.id, "20160831085700Z");
	assert_int_equal(e.fetched, 1700);
	assert_int_equal(e.line, 4);
	assert_int_equal(e.text_len, strlen(P1));
	assert_memory_equal(e.text, P1, strlen(P1));
	assert_int_equal(tp_mta_sts_policy_parse(e.text, e.text_len, e.id,
			     e.fetched, &p, ERR, sizeof(ERR)),
	    0);
	assert_int_equal(p->mode, TP_MTA_STS_MODE_ENFORCE);
	assert_string_equal(p->mx[0], "mail.example.com");
	tp_mta_sts_policy_free(p);

	assert_int_equal(tp_mta_sts_cache_next(&r, &e, ERR, sizeof(ERR)), 1);
	assert_string_equal(e.domain, "example.net");
	assert_string_equal(e.id, "a1");
	assert_int_equal(e.fetched, 1800000000);
	/* banner 3 lines, entry 1: header + 4 text lines + the newline
	 * ending the last one's blank remainder */
	assert_int_equal(e.line, 10);
	assert_int_equal(e.text_len, strlen(P2));
	assert_memory_equal(e.text, P2, strlen(P2));
	assert_int_equal(tp_mta_sts_cache_next(&r, &e, ERR, sizeof(ERR)), 0);
	assert_int_equal(tp_mta_sts_cache_next(&r, &e, ERR, sizeof(ERR)), 0);

	/* empty and comment-only files */
	tp_mta_sts_cache_reader_init(&r, "", 0);
	assert_int_equal(tp_mta_sts_cache_next(&r, &e, ERR, sizeof(ERR)), 0);
	tp_mta_sts_cache_reader_init(&r, "# x\n\n  \n#", 10);
	assert_int_equal(tp_mta_sts_cache_next(&r, &e, ERR, sizeof(ERR)), 0);
}

/* next - the next result and its message. */
static int
next(struct tp_mta_sts_cache_reader *r, struct tp_mta_sts_cache_entry *e)
{
	ERR[0] = '\0';
	return tp_mta_sts_cache_next(r, e, ERR, sizeof(ERR));
}

static void
test_cache_damaged(void **state)
{
	char good[2048], buf[4096];
	size_t n = file2(good, sizeof(good)), m;
	struct tp_mta_sts_cache_reader r;
	struct tp_mta_sts_cache_entry e;
	char *second;

	(void)state;
	/* garbage before the first entry: skipped up to it */
	m = (size_t)snprintf(
	    buf, sizeof(buf), "garbage\nmore: x\n%.*s", (int)n, good);
	tp_mta_sts_cache_reader_init(&r, buf, m);
	assert_int_equal(next(&r, &e), TP_MTA_STS_EINVAL);
	assert_string_equal(ERR,
	    "line 1: not an entry header (\"policy "
	    "DOMAIN ID FETCHED LENGTH\"); lines 1-5 "
	    "skipped");
	assert_int_equal(next(&r, &e), 1);
	assert_string_equal(e.domain, "example.com");
	assert_int_equal(e.line, 6);
	assert_int_equal(next(&r, &e), 1);
	assert_string_equal(e.domain, "example.net");
	assert_int_equal(next(&r, &e), 0);

	/* the first entry's length one too long, then one too short */
	second = strstr(good, "policy example.net");
	assert_non_null(second);
	for (int d = 1; d >= -5; d -= 6) {
		m = (size_t)snprintf(buf, sizeof(buf),
		    "policy example.com abc 1 %zu\n%s\n%s",
		    strlen(P1) + (size_t)d, P1, second);
		tp_mta_sts_cache_reader_init(&r, buf, m);
		assert_int_equal(next(&r, &e), TP_MTA_STS_EINVAL);
		assert_string_equal(ERR,
		    "line 1: example.com: the text does "
		    "not end where its length says; "
		    "lines 1-6 skipped");
		/* the resync finds the next header */
		assert_int_equal(next(&r, &e), 1);
		assert_string_equal(e.domain, "example.net");
		assert_int_equal(e.line, 7);
		assert_int_equal(next(&r, &e), 0);
	}

	/* truncated: the file ends inside the last entry */
	tp_mta_sts_cache_reader_init(&r, good, n - 10);
	assert_int_equal(next(&r, &e), 1);
	assert_int_equal(next(&r, &e), TP_MTA_STS_EINVAL);
	assert_string_equal(ERR,
	    "line 10: example.net: truncated entry "
	    "(shorter than its length); lines 10-14 "
	    "skipped");
	assert_int_equal(next(&r, &e), 0);
	/* ...exactly before its final newline */
	tp_mta_sts_cache_reader_init(&r, good, n - 1);
	assert_int_equal(next(&r, &e), 1);
	assert_int_equal(next(&r, &e), TP_MTA_STS_EINVAL);
	assert_int_equal(next(&r, &e), 0);
	/* ...inside the header */
	tp_mta_sts_cache_reader_init(&r, good,
	    (size_t)(second - good) + strlen("policy example.net a1 18"));
	assert_int_equal(next(&r, &e), 1);
	assert_int_equal(next(&r, &e), TP_MTA_STS_EINVAL);
	assert_string_equal(ERR,
	    "line 10: not an entry header (\"policy "
	    "DOMAIN ID FETCHED LENGTH\"); line skipped");
	assert_int_equal(next(&r, &e), 0);
	/* ...right after the header line */
	tp_mta_sts_cache_reader_init(
	    &r, good, (size_t)(strchr(second, '\n') + 1 - good));
	assert_int_equal(next(&r, &e), 1);
	assert_int_equal(next(&r, &e), TP_MTA_STS_EINVAL);
	assert_string_equal(ERR,
	    "line 10: example.net: truncated entry "
	    "(shorter than its length); line skipped");
	/* ...a complete header without its newline */
	tp_mta_sts_cache_reader_init(
	    &r, good, (size_t)(strchr(second, '\n') - good));
	assert_int_equal(next(&r, &e), 1);
	assert_int_equal(next(&r, &e), TP_MTA_STS_EINVAL);
	assert_string_equal(ERR,
	    "line 10: example.net: truncated entry (no "
	    "text); line skipped");
	assert_int_equal(next(&r, &e), 0);
}

static void
header_bad(const char *hdr, const char *want)
{
	char buf[512];
	struct tp_mta_sts_cache_reader r;
	struct tp_mta_sts_cache_entry e;
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "%s\nversion: STSv1\n", hdr);
	tp_mta_sts_cache_reader_init(&r, buf, n);
	assert_int_equal(next(&r, &e), TP_MTA_STS_EINVAL);
	if (strcmp(ERR, want) != 0)
		fail_msg("\"%s\": \"%s\", want \"%s\"", hdr, ERR, want);
	assert_int_equal(next(&r, &e), 0);
}

static void
test_cache_headers(void **state)
{
	const char *nothdr = "line 1: not an entry header (\"policy DOMAIN ID "
			     "FETCHED LENGTH\"); lines 1-2 skipped";
	char buf[256];
	struct tp_mta_sts_cache_reader r;
	struct tp_mta_sts_cache_entry e;
	size_t n;

	(void)state;
	header_bad("policy example.com abc 1 15 x", nothdr);
	header_bad("policy example.com abc 1", nothdr);
	header_bad("policy example.com abc 1 15 ", nothdr);
	header_bad("Policy example.com abc 1 15", nothdr);
	header_bad("policy  example.com abc 1 15", nothdr);
	header_bad("policy example.com  abc 1 15", nothdr);
	header_bad("policy example.com abc 1 ",
	    "line 1: bad length; lines 1-2 skipped");
	header_bad("policy bad_dom@in abc 1 15",
	    "line 1: bad domain; lines 1-2 skipped");
	header_bad("policy example.com " ID32 "6 1 15",
	    "line 1: bad id; lines 1-2 skipped");
	header_bad(
	    "policy example.com a-b 1 15", "line 1: bad id; lines 1-2 skipped");
	header_bad("policy example.com abc -1 15",
	    "line 1: bad fetch time; lines 1-2 skipped");
	header_bad("policy example.com abc 1000000000000000000 15",
	    "line 1: bad fetch time; lines 1-2 skipped");
	header_bad("policy example.com abc 1 65537",
	    "line 1: bad length; lines 1-2 skipped");
	header_bad("policy example.com abc 1 100000",
	    "line 1: bad length; lines 1-2 skipped");
	header_bad("policy example.com abc 1 15\r",
	    "line 1: bad length; lines 1-2 skipped");
	/* the limits themselves are fine */
	n = (size_t)snprintf(buf, sizeof(buf),
	    "policy Example.COM. %s 999999999999999999 1\nx\n", ID32);
	tp_mta_sts_cache_reader_init(&r, buf, n);
	assert_int_equal(next(&r, &e), 1);
	assert_string_equal(e.domain, "example.com");
	assert_string_equal(e.id, ID32);
	assert_int_equal(e.fetched, TP_MTA_STS_TIME_MAX);
	assert_int_equal(e.text_len, 1);
	assert_int_equal(next(&r, &e), 0);
	/* text with any lines, even header-like ones, is opaque */
	n = (size_t)snprintf(buf, sizeof(buf),
	    "policy a.example x 1 23\npolicy b.example y 2 0\n\n");
	tp_mta_sts_cache_reader_init(&r, buf, n);
	assert_int_equal(next(&r, &e), 1);
	assert_string_equal(e.domain, "a.example");
	assert_int_equal(e.text_len, 23);
	assert_int_equal(next(&r, &e), 0);
	/* err may be NULL */
	tp_mta_sts_cache_reader_init(&r, "x\n", 2);
	assert_int_equal(
	    tp_mta_sts_cache_next(&r, &e, NULL, 0), TP_MTA_STS_EINVAL);
}

/* ---- names -------------------------------------------------------------- */

static void
test_names(void **state)
{
	static const char *results[] = {"starttls-not-supported",
	    "certificate-host-mismatch", "certificate-expired",
	    "certificate-not-trusted", "validation-failure", "tlsa-invalid",
	    "dnssec-invalid", "dane-required", "sts-policy-fetch-error",
	    "sts-policy-invalid", "sts-webpki-invalid"};

	(void)state;
	assert_int_equal(TP_MTA_STS_RESULTS, 11);
	for (int i = 0; i < TP_MTA_STS_RESULTS; i++)
		assert_string_equal(
		    tp_mta_sts_result_name((enum tp_mta_sts_result)i),
		    results[i]);
	assert_string_equal(
	    tp_mta_sts_result_name(TP_MTA_STS_RESULT_CERTIFICATE_HOST_MISMATCH),
	    "certificate-host-mismatch");
	assert_string_equal(
	    tp_mta_sts_result_name(TP_MTA_STS_RESULT_STS_WEBPKI_INVALID),
	    "sts-webpki-invalid");
	assert_string_equal(
	    tp_mta_sts_result_name(TP_MTA_STS_RESULTS), "unknown");
	assert_string_equal(
	    tp_mta_sts_result_name((enum tp_mta_sts_result) - 1), "unknown");
	assert_string_equal(
	    tp_mta_sts_policy_type_name(TP_MTA_STS_POLICY_TLSA), "tlsa");
	assert_string_equal(
	    tp_mta_sts_policy_type_name(TP_MTA_STS_POLICY_STS), "sts");
	assert_string_equal(
	    tp_mta_sts_policy_type_name(TP_MTA_STS_POLICY_NO_POLICY_FOUND),
	    "no-policy-found");
	assert_string_equal(
	    tp_mta_sts_policy_type_name(TP_MTA_STS_POLICY_TYPES), "unknown");
	assert_string_equal(
	    tp_mta_sts_mode_name(TP_MTA_STS_MODE_ENFORCE), "enforce");
	assert_string_equal(
	    tp_mta_sts_mode_name(TP_MTA_STS_MODE_TESTING), "testing");
	assert_string_equal(tp_mta_sts_mode_name(TP_MTA_STS_MODE_NONE), "none");
	assert_string_equal(tp_mta_sts_mode_name(TP_MTA_STS_MODES), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_txt_valid),
	    cmocka_unit_test(test_txt_invalid),
	    cmocka_unit_test(test_txt_not_sts),
	    cmocka_unit_test(test_txt_select),
	    cmocka_unit_test(test_txt_rdata),
	    cmocka_unit_test(test_policy_crlf),
	    cmocka_unit_test(test_policy_lf),
	    cmocka_unit_test(test_policy_max_age),
	    cmocka_unit_test(test_policy_required),
	    cmocka_unit_test(test_policy_values),
	    cmocka_unit_test(test_policy_duplicates),
	    cmocka_unit_test(test_policy_unknown),
	    cmocka_unit_test(test_policy_syntax),
	    cmocka_unit_test(test_policy_args),
	    cmocka_unit_test(test_policy_mx_patterns),
	    cmocka_unit_test(test_mx_match),
	    cmocka_unit_test(test_cache_format),
	    cmocka_unit_test(test_cache_roundtrip),
	    cmocka_unit_test(test_cache_damaged),
	    cmocka_unit_test(test_cache_headers),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
