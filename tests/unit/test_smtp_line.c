/*
 * test_smtp_line.c - the bounded line reader and the strict reply parser
 * (spec 4.2.4, 5): CRLF and bare LF, lines split across feeds down to one
 * byte at a time, the length bound (exactly max is fine, max+1 is
 * reported once, at the octet that passes the bound, never at the line's
 * end, and the reader recovers after the LF), the reply grammar
 * ([2-5][0-9][0-9] then SP, '-' or end of line; one code per reply;
 * printable text; at most 100 lines), STARTTLS keyword detection, and
 * tp_smtp_verb.
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

#include "tlsproxy/smtp_line.h"

/* Lines collected by feed_all(). */
#define MAXLINES 64
static char lines[MAXLINES][TP_LINE_MAX + 8];
static int rcs[MAXLINES];
static size_t pos[MAXLINES]; /* input consumed when it was reported */
static int nlines;

/*
 * feed_all - feed s to lr in pieces of `step` bytes (0 = all at once),
 * recording every OK line and every TOOLONG with the input consumed at
 * that point.  Checks the reader's own invariants on the way: it always
 * consumes something and never reports MORE with input left.
 */
static void
feed_all(struct tp_linereader *lr, const char *s, size_t slen, size_t step)
{
	size_t off = 0;

	nlines = 0;
	while (off < slen) {
		size_t chunk =
		    step == 0 || slen - off < step ? slen - off : step;
		const char *p = s + off;
		size_t left = chunk;

		while (left > 0) {
			size_t before = left;
			enum tp_line_rc rc = tp_line_feed(lr, &p, &left);

			assert_true(left < before);
			if (rc == TP_LINE_MORE) {
				assert_int_equal(left, 0);
				break;
			}
			assert_true(nlines < MAXLINES);
			rcs[nlines] = rc;
			pos[nlines] = (size_t)(p - s);
			if (rc == TP_LINE_OK) {
				assert_true(lr->len <= lr->max);
				assert_int_equal(strlen(lr->buf), lr->len);
				memcpy(lines[nlines], lr->buf, lr->len + 1);
			} else {
				lines[nlines][0] = '\0';
			}
			nlines++;
		}
		off += chunk;
	}
}

static void
test_crlf_and_bare_lf(void **state)
{
	struct tp_linereader lr;
	const char *in = "EHLO a\r\nNOOP\nQUIT\r\n\r\n\n";

	(void)state;
	tp_line_init(&lr, 512);
	feed_all(&lr, in, strlen(in), 0);
	assert_int_equal(nlines, 5);
	for (int i = 0; i < nlines; i++)
		assert_int_equal(rcs[i], TP_LINE_OK);
	assert_string_equal(lines[0], "EHLO a");
	assert_string_equal(lines[1], "NOOP");
	assert_string_equal(lines[2], "QUIT");
	assert_string_equal(lines[3], "");
	assert_string_equal(lines[4], "");
}

static void
test_no_line_yet(void **state)
{
	struct tp_linereader lr;
	const char *p = "partial";
	size_t len = 7;

	(void)state;
	tp_line_init(&lr, 512);
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_MORE);
	assert_int_equal(len, 0);
	/* An empty feed is harmless. */
	len = 0;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_MORE);
	p = " line\r\n";
	len = 7;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_OK);
	assert_string_equal(lr.buf, "partial line");
	assert_int_equal(lr.len, 12);
}

/* Only one CR is the line end; a CR elsewhere is data. */
static void
test_cr_inside_line(void **state)
{
	struct tp_linereader lr;
	const char *in = "a\rb\r\nc\r\r\n";

	(void)state;
	tp_line_init(&lr, 512);
	feed_all(&lr, in, strlen(in), 0);
	assert_int_equal(nlines, 2);
	assert_string_equal(lines[0], "a\rb");
	assert_string_equal(lines[1], "c\r");
}

static void
test_byte_by_byte(void **state)
{
	struct tp_linereader lr;
	const char *in = "220-mx.example ESMTP\r\n220 ready\r\n"
			 "250-a\n250 b\r\n";

	(void)state;
	for (size_t step = 1; step <= strlen(in); step++) {
		tp_line_init(&lr, 512);
		feed_all(&lr, in, strlen(in), step);
		assert_int_equal(nlines, 4);
		assert_string_equal(lines[0], "220-mx.example ESMTP");
		assert_string_equal(lines[1], "220 ready");
		assert_string_equal(lines[2], "250-a");
		assert_string_equal(lines[3], "250 b");
	}
}

/* A CR that ends one feed and its LF that starts the next. */
static void
test_cr_at_end_of_feed(void **state)
{
	struct tp_linereader lr;
	const char *p;
	size_t len;

	(void)state;
	tp_line_init(&lr, 512);
	p = "NOOP\r";
	len = 5;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_MORE);
	p = "\nRSET\r\n";
	len = 7;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_OK);
	assert_string_equal(lr.buf, "NOOP");
	assert_int_equal(lr.len, 4);
	assert_int_equal(len, 6);
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_OK);
	assert_string_equal(lr.buf, "RSET");

	/* At exactly max, the CR that ends the feed still fits. */
	tp_line_init(&lr, 4);
	p = "NOOP\r";
	len = 5;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_MORE);
	p = "\n";
	len = 1;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_OK);
	assert_string_equal(lr.buf, "NOOP");
}

static char *
repeat(char c, size_t n, const char *tail)
{
	size_t tl = strlen(tail);
	char *s = malloc(n + tl + 1);

	assert_non_null(s);
	memset(s, c, n);
	memcpy(s + n, tail, tl + 1);
	return s;
}

static void
check_bound(size_t max, size_t step)
{
	struct tp_linereader lr;
	char *ok = repeat('a', max, "\r\n");
	char *ok_lf = repeat('b', max, "\n");
	char *over = repeat('c', max + 1, "\r\n");
	char *over_lf = repeat('d', max + 1, "\n");
	char *far = repeat('e', 3 * max + 7, "\r\n");
	char all[4 * TP_LINE_MAX * 3];
	size_t n = 0, at[7];

	/* at[i]: where event i must be reported */
	n += (size_t)sprintf(all + n, "%s", ok);
	at[0] = n;
	at[1] = n + max + 1; /* at the first octet past max, not at LF */
	n += (size_t)sprintf(all + n, "%s", over);
	n += (size_t)sprintf(all + n, "n\r\n");
	at[2] = n;
	n += (size_t)sprintf(all + n, "%s", ok_lf);
	at[3] = n;
	at[4] = n + max + 1;
	n += (size_t)sprintf(all + n, "%s", over_lf);
	at[5] = n + max + 1;
	n += (size_t)sprintf(all + n, "%s", far);
	n += (size_t)sprintf(all + n, "l\r\n");
	at[6] = n;
	assert_true(n < sizeof(all));

	tp_line_init(&lr, max);
	feed_all(&lr, all, n, step);
	assert_int_equal(nlines, 7);
	assert_int_equal(rcs[0], TP_LINE_OK);
	assert_int_equal(strlen(lines[0]), max);
	assert_memory_equal(lines[0], ok, max);
	assert_int_equal(rcs[1], TP_LINE_TOOLONG);
	assert_int_equal(rcs[2], TP_LINE_OK);
	assert_string_equal(lines[2], "n");
	assert_int_equal(rcs[3], TP_LINE_OK);
	assert_int_equal(strlen(lines[3]), max);
	assert_int_equal(rcs[4], TP_LINE_TOOLONG);
	assert_int_equal(rcs[5], TP_LINE_TOOLONG);
	assert_int_equal(rcs[6], TP_LINE_OK);
	assert_string_equal(lines[6], "l");
	for (int i = 0; i < 7; i++)
		assert_int_equal(pos[i], at[i]);
	free(ok);
	free(ok_lf);
	free(over);
	free(over_lf);
	free(far);
}

static void
test_max_length(void **state)
{
	(void)state;
	check_bound(510, 0);
	check_bound(510, 1);
	check_bound(510, 7);
	check_bound(510, 511);
	check_bound(510, 512);
	check_bound(TP_LINE_MAX, 0);
	check_bound(TP_LINE_MAX, 1);
	check_bound(TP_LINE_MAX, 1000);
	check_bound(1, 0);
	check_bound(1, 1);
}

/* A maximum above TP_LINE_MAX is clamped: buf never overflows. */
static void
test_max_clamped(void **state)
{
	struct tp_linereader lr;
	char *over = repeat('x', TP_LINE_MAX + 1, "\r\n");

	(void)state;
	tp_line_init(&lr, 1000000);
	assert_int_equal(lr.max, TP_LINE_MAX);
	feed_all(&lr, over, strlen(over), 0);
	assert_int_equal(nlines, 1);
	assert_int_equal(rcs[0], TP_LINE_TOOLONG);
	free(over);
}

/*
 * An over-long line without its LF: reported at the octet that passes the
 * maximum (spec 5: at once, never waiting for a line end that may never
 * come), then nothing more until its LF, then the next line.
 */
static void
test_toolong_at_limit(void **state)
{
	struct tp_linereader lr;
	char *over = repeat('x', 100000, "");
	const char *p = over;
	size_t len = 100000;

	(void)state;
	tp_line_init(&lr, 100);
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_TOOLONG);
	assert_ptr_equal(p, over + 101);
	assert_int_equal(lr.len, 0);
	assert_string_equal(lr.buf, "");
	/* The rest of it, in the same feed and in later ones: silence. */
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_MORE);
	assert_int_equal(len, 0);
	p = over;
	len = 5000;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_MORE);
	assert_int_equal(len, 0);
	p = "tail\r\nok\r\n";
	len = 10;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_OK);
	assert_string_equal(lr.buf, "ok");
	assert_int_equal(len, 0);

	/* Exactly max octets, no LF yet: still nothing to say. */
	tp_line_init(&lr, 100);
	p = over;
	len = 100;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_MORE);
	assert_int_equal(lr.len, 100);
	/* One more octet: too long, reported with that octet. */
	p = "y\r\nnext\r\n";
	len = 10;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_TOOLONG);
	assert_int_equal(len, 9);
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_OK);
	assert_string_equal(lr.buf, "next");

	/* The LF right after the octet that passed the bound: dropped. */
	tp_line_init(&lr, 4);
	p = "NOOPx\nNOOP\n";
	len = 11;
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_TOOLONG);
	assert_string_equal(p, "\nNOOP\n");
	assert_int_equal(tp_line_feed(&lr, &p, &len), TP_LINE_OK);
	assert_string_equal(lr.buf, "NOOP");
	free(over);
}

/*
 * A CR at position max may still end the line; what follows it decides.
 * Every case fed whole and in every split.
 */
static void
test_cr_at_boundary(void **state)
{
	static const struct {
		const char *in;
		int n;
		int rc[3];
		size_t at[3];
		const char *line[3];
	} cases[] = {
	    /* max octets, CR LF: fine */
	    {"abcd\r\n", 1, {TP_LINE_OK}, {6}, {"abcd"}},
	    /* max octets, CR, then anything but LF: too long at it */
	    {"abcd\rx\r\nok\n", 2, {TP_LINE_TOOLONG, TP_LINE_OK}, {6, 11},
		{"", "ok"}},
	    /* max octets, CR CR LF: the first CR is data, one too many */
	    {"abcd\r\r\nok\n", 2, {TP_LINE_TOOLONG, TP_LINE_OK}, {6, 10},
		{"", "ok"}},
	    /* max - 1 octets, CR CR LF: the CR is the max-th octet */
	    {"abc\r\r\nok\n", 2, {TP_LINE_OK, TP_LINE_OK}, {6, 9},
		{"abc\r", "ok"}},
	    /* a CR at max + 1 after a non-CR: too long at that octet */
	    {"abcde\r\nok\n", 2, {TP_LINE_TOOLONG, TP_LINE_OK}, {5, 10},
		{"", "ok"}},
	    /* bare LF at max: fine; at max + 1: too long before the LF */
	    {"abcd\nabcde\nok\n", 3, {TP_LINE_OK, TP_LINE_TOOLONG, TP_LINE_OK},
		{5, 10, 14}, {"abcd", "", "ok"}},
	    /* a CR LF pair straddling the bound of a too-long line */
	    {"abcdef\r\n\r\n", 2, {TP_LINE_TOOLONG, TP_LINE_OK}, {5, 10},
		{"", ""}},
	};
	struct tp_linereader lr;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t len = strlen(cases[c].in);

		for (size_t step = 0; step <= len; step++) {
			tp_line_init(&lr, 4);
			feed_all(&lr, cases[c].in, len, step);
			if (nlines != cases[c].n)
				fail_msg("case %zu step %zu: %d events", c,
				    step, nlines);
			for (int i = 0; i < nlines; i++) {
				assert_int_equal(rcs[i], cases[c].rc[i]);
				assert_int_equal(pos[i], cases[c].at[i]);
				assert_string_equal(lines[i], cases[c].line[i]);
			}
		}
	}
}

/* Two over-long lines back to back, then a good one: one report each. */
static void
test_two_toolong(void **state)
{
	struct tp_linereader lr;
	char in[3 * 600];
	size_t n = 0;

	(void)state;
	memset(in, 'a', 600);
	memcpy(in + 511, "\r\n", 2); /* 511 octets: one too many */
	n = 513;
	memset(in + n, 'b', 600);
	memcpy(in + n + 560, "\n", 1); /* bare LF after 560 octets */
	n += 561;
	memcpy(in + n, "NOOP\r\n", 6);
	n += 6;
	for (size_t step = 0; step < 40; step++) {
		tp_line_init(&lr, 510);
		feed_all(&lr, in, n, step);
		assert_int_equal(nlines, 3);
		assert_int_equal(rcs[0], TP_LINE_TOOLONG);
		assert_int_equal(pos[0], 511);
		assert_int_equal(rcs[1], TP_LINE_TOOLONG);
		assert_int_equal(pos[1], 513 + 511);
		assert_int_equal(rcs[2], TP_LINE_OK);
		assert_string_equal(lines[2], "NOOP");
	}
}

/* reply - feed lines (NULL-terminated) into one reply. */
static int
reply_lines(struct tp_reply *r, const char **why, ...)
{
	va_list ap;
	const char *l;
	int rc = 0;

	tp_reply_init(r);
	*why = NULL;
	va_start(ap, why);
	while ((l = va_arg(ap, const char *)) != NULL) {
		rc = tp_reply_line(r, l, strlen(l), why);
		if (rc != 0)
			break;
	}
	va_end(ap);
	return rc;
}

static void
test_reply_single(void **state)
{
	struct tp_reply r;
	const char *why;

	(void)state;
	assert_int_equal(
	    reply_lines(&r, &why, "220 mx.example ESMTP", NULL), 1);
	assert_int_equal(r.code, 220);
	assert_int_equal(r.nlines, 1);
	assert_true(r.done);
	assert_false(r.starttls);
	assert_string_equal(r.first, "mx.example ESMTP");

	/* The code alone is a complete reply. */
	assert_int_equal(reply_lines(&r, &why, "250", NULL), 1);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.first, "");
	assert_int_equal(reply_lines(&r, &why, "250 ", NULL), 1);
	assert_string_equal(r.first, "");
	/* Every class 2..5 and the edges of the range. */
	assert_int_equal(reply_lines(&r, &why, "200 x", NULL), 1);
	assert_int_equal(reply_lines(&r, &why, "599 x", NULL), 1);
	assert_int_equal(r.code, 599);
	assert_int_equal(reply_lines(&r, &why, "354 go\tahead", NULL), 1);
	assert_int_equal(r.code, 354);
	assert_string_equal(r.first, "go\tahead");
}

static void
test_reply_multi(void **state)
{
	struct tp_reply r;
	const char *why = NULL;

	(void)state;
	tp_reply_init(&r);
	assert_int_equal(tp_reply_line(&r, "250-mx.example", 14, &why), 0);
	assert_false(r.done);
	assert_int_equal(tp_reply_line(&r, "250-PIPELINING", 14, &why), 0);
	assert_int_equal(tp_reply_line(&r, "250-", 4, &why), 0);
	assert_int_equal(tp_reply_line(&r, "250 8BITMIME", 12, &why), 1);
	assert_true(r.done);
	assert_int_equal(r.nlines, 4);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.first, "mx.example");
	/* A bare code ends a multi-line reply too. */
	assert_int_equal(
	    reply_lines(&r, &why, "220-a", "220-b", "220", NULL), 1);
	assert_int_equal(r.nlines, 3);
	assert_string_equal(r.first, "a");
	/* The next line after a complete reply starts a new one. */
	assert_int_equal(tp_reply_line(&r, "554 no", 6, &why), 1);
	assert_int_equal(r.code, 554);
	assert_int_equal(r.nlines, 1);
	assert_string_equal(r.first, "no");
}

static void
expect_error(const char *line, const char *want_why)
{
	struct tp_reply r;
	const char *why = NULL;

	tp_reply_init(&r);
	if (tp_reply_line(&r, line, strlen(line), &why) != -1)
		fail_msg("accepted: \"%s\"", line);
	assert_non_null(why);
	assert_string_equal(why, want_why);
}

static void
test_reply_malformed(void **state)
{
	struct tp_reply r;
	const char *why;

	(void)state;
	expect_error("", "malformed reply");
	expect_error("2", "malformed reply");
	expect_error("25", "malformed reply");
	expect_error("199 x", "malformed reply");
	expect_error("100", "malformed reply");
	expect_error("600 x", "malformed reply");
	expect_error("099 x", "malformed reply");
	expect_error("25x ok", "malformed reply");
	expect_error("2x0 ok", "malformed reply");
	expect_error("250ok", "malformed reply");
	expect_error("2500 ok", "malformed reply");
	expect_error("250_ok", "malformed reply");
	expect_error("250\tok", "malformed reply");
	expect_error(" 250 ok", "malformed reply");
	expect_error("abc", "malformed reply");
	expect_error("250 caf\xc3\xa9", "non-printable text in reply");
	expect_error("250 a\rb", "non-printable text in reply");
	expect_error("250 \x1b[0m", "non-printable text in reply");
	expect_error("250 del\x7f", "non-printable text in reply");
	/* A NUL inside the line (len counts it). */
	{
		struct tp_reply rr;

		tp_reply_init(&rr);
		why = NULL;
		assert_int_equal(tp_reply_line(&rr, "250 a\0b", 7, &why), -1);
		assert_string_equal(why, "non-printable text in reply");
	}
	/* The code must not change within a multi-line reply. */
	assert_int_equal(reply_lines(&r, &why, "250-a", "251 b", NULL), -1);
	assert_string_equal(
	    why, "reply code changes within a multi-line reply");
	assert_int_equal(
	    reply_lines(&r, &why, "220-a", "220-b", "554 c", NULL), -1);
	assert_string_equal(
	    why, "reply code changes within a multi-line reply");
	/* A malformed continuation. */
	assert_int_equal(reply_lines(&r, &why, "250-a", "250x", NULL), -1);
	assert_string_equal(why, "malformed reply");
}

static void
test_reply_line_limit(void **state)
{
	struct tp_reply r;
	const char *why = NULL;
	int rc;

	(void)state;
	tp_reply_init(&r);
	for (int i = 0; i < TP_REPLY_MAX_LINES - 1; i++)
		assert_int_equal(tp_reply_line(&r, "250-x", 5, &why), 0);
	assert_int_equal(tp_reply_line(&r, "250 x", 5, &why), 1);
	assert_int_equal(r.nlines, TP_REPLY_MAX_LINES);

	tp_reply_init(&r);
	for (int i = 0; i < TP_REPLY_MAX_LINES; i++)
		assert_int_equal(tp_reply_line(&r, "250-x", 5, &why), 0);
	rc = tp_reply_line(&r, "250 x", 5, &why);
	assert_int_equal(rc, -1);
	assert_string_equal(why, "too many reply lines");
}

static void
check_starttls(const char *line, bool want)
{
	struct tp_reply r;
	const char *why;

	assert_int_equal(
	    reply_lines(&r, &why, "250-mx.example", line, "250 8BITMIME", NULL),
	    1);
	if (r.starttls != want)
		fail_msg(
		    "\"%s\": starttls %d, want %d", line, r.starttls, want);
}

static void
test_reply_starttls(void **state)
{
	struct tp_reply r;
	const char *why;

	(void)state;
	check_starttls("250-STARTTLS", true);
	check_starttls("250-starttls", true);
	check_starttls("250-StartTLS", true);
	check_starttls("250-STARTTLS ", true);
	check_starttls("250-STARTTLS foo", true);
	check_starttls("250-STARTTLSX", false);
	check_starttls("250-STARTTL", false);
	check_starttls("250-XSTARTTLS", false);
	check_starttls("250- STARTTLS", false);
	check_starttls("250-PIPELINING", false);
	/* As the last line. */
	assert_int_equal(
	    reply_lines(&r, &why, "250-mx", "250 STARTTLS", NULL), 1);
	assert_true(r.starttls);
	/* Never in the first line (that is the server's name). */
	assert_int_equal(reply_lines(&r, &why, "250 STARTTLS", NULL), 1);
	assert_false(r.starttls);
	assert_int_equal(
	    reply_lines(&r, &why, "250-STARTTLS", "250 x", NULL), 1);
	assert_false(r.starttls);
	/* A new reply forgets the previous one's keyword. */
	assert_int_equal(
	    reply_lines(&r, &why, "250-mx", "250 STARTTLS", NULL), 1);
	assert_int_equal(tp_reply_line(&r, "250 ok", 6, &why), 1);
	assert_false(r.starttls);
}

/* The first line's text is kept whole up to the reader's maximum. */
static void
test_reply_first_long(void **state)
{
	struct tp_reply r;
	const char *why;
	char *line = repeat('t', TP_LINE_MAX - 4, "");

	(void)state;
	memcpy(line, "250 ", 4);
	tp_reply_init(&r);
	assert_int_equal(tp_reply_line(&r, line, TP_LINE_MAX - 4, &why), 1);
	assert_int_equal(strlen(r.first), TP_LINE_MAX - 8);
	free(line);
	line = repeat('t', TP_LINE_MAX, "");
	memcpy(line, "250 ", 4);
	tp_reply_init(&r);
	assert_int_equal(tp_reply_line(&r, line, TP_LINE_MAX, &why), 1);
	assert_int_equal(strlen(r.first), TP_LINE_MAX - 4);
	free(line);
}

static void
test_printable(void **state)
{
	(void)state;
	assert_true(tp_smtp_printable("", 0));
	assert_true(tp_smtp_printable("Hello, world ~!\t", 16));
	assert_false(tp_smtp_printable("a\r", 2));
	assert_false(tp_smtp_printable("a\n", 2));
	assert_false(tp_smtp_printable("\0", 1));
	assert_false(tp_smtp_printable("\x7f", 1));
	assert_false(tp_smtp_printable("\x80", 1));
	assert_false(tp_smtp_printable("\xff", 1));
	/* Only len bytes are looked at. */
	assert_true(tp_smtp_printable("ab\x01", 2));
}

static void
test_verb(void **state)
{
	const char *arg;

	(void)state;
	arg = NULL;
	assert_true(tp_smtp_verb("EHLO client.example", "EHLO", &arg));
	assert_string_equal(arg, "client.example");
	assert_true(tp_smtp_verb("ehlo   x y", "EHLO", &arg));
	assert_string_equal(arg, "x y");
	assert_true(tp_smtp_verb("EhLo", "EHLO", &arg));
	assert_string_equal(arg, "");
	assert_true(tp_smtp_verb("EHLO   ", "EHLO", &arg));
	assert_string_equal(arg, "");
	assert_true(tp_smtp_verb("STARTTLS", "STARTTLS", &arg));
	assert_string_equal(arg, "");
	assert_true(tp_smtp_verb("starttls now", "STARTTLS", &arg));
	assert_string_equal(arg, "now");
	assert_false(tp_smtp_verb("STARTTLSX", "STARTTLS", &arg));
	assert_false(tp_smtp_verb("STARTTL", "STARTTLS", &arg));
	assert_false(tp_smtp_verb("", "STARTTLS", &arg));
	assert_false(tp_smtp_verb("EHLOx", "EHLO", &arg));
	assert_false(tp_smtp_verb("HELO x", "EHLO", &arg));
	assert_false(tp_smtp_verb(" EHLO x", "EHLO", &arg));
	assert_true(tp_smtp_verb("DATA", "DATA", &arg));
	assert_false(tp_smtp_verb("DATAX", "DATA", &arg));
}

/* scan - tp_body_scan over s from a line start, in pieces of step. */
static size_t
scan(const char *s, size_t step)
{
	size_t len = strlen(s), off = 0, n;
	int st = TP_BODY_LINESTART;

	while (off < len) {
		size_t k = step == 0 || len - off < step ? len - off : step;

		if ((n = tp_body_scan(&st, s + off, k)) != 0)
			return off + n;
		off += k;
	}
	return 0;
}

/* The end-of-data line: "." alone, CRLF or bare LF, any split. */
static void
test_body_scan(void **state)
{
	static const struct {
		const char *body;
		size_t end; /* 0: no end line */
	} cases[] = {
	    {".\r\n", 3},
	    {".\n", 2},
	    {"a\r\n.\r\nQUIT\r\n", 6},
	    {"a\n.\nQUIT\n", 4},
	    {"..\r\n.x\r\n. \r\n", 0},
	    {"a.\r\n", 0},
	    {".\r\r\n.\r\n", 7},
	    {"x\r.\r\n", 0},
	    {"\n\n.\r\n", 5},
	    {"", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t step = 0; step < 4; step++)
			if (scan(cases[i].body, step) != cases[i].end)
				fail_msg("\"%s\" step %zu: %zu, want %zu",
				    cases[i].body, step,
				    scan(cases[i].body, step), cases[i].end);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crlf_and_bare_lf),
	    cmocka_unit_test(test_no_line_yet),
	    cmocka_unit_test(test_cr_inside_line),
	    cmocka_unit_test(test_byte_by_byte),
	    cmocka_unit_test(test_cr_at_end_of_feed),
	    cmocka_unit_test(test_max_length),
	    cmocka_unit_test(test_max_clamped),
	    cmocka_unit_test(test_toolong_at_limit),
	    cmocka_unit_test(test_cr_at_boundary),
	    cmocka_unit_test(test_two_toolong),
	    cmocka_unit_test(test_reply_single),
	    cmocka_unit_test(test_reply_multi),
	    cmocka_unit_test(test_reply_malformed),
	    cmocka_unit_test(test_reply_line_limit),
	    cmocka_unit_test(test_reply_starttls),
	    cmocka_unit_test(test_reply_first_long),
	    cmocka_unit_test(test_printable),
	    cmocka_unit_test(test_verb),
	    cmocka_unit_test(test_body_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
