/*
 * test_smtp_filter.c - the in-tunnel STARTTLS filter (spec 4.2.5, 4.4.3):
 * STARTTLS removed from EHLO replies (never the first line; the previous
 * line ends the reply when the last one goes), every other reply byte-
 * identical; the client's STARTTLS answered by the proxy in reply order
 * and never forwarded; DATA bodies (after their 354) and BDAT chunks pass
 * untouched, so message content is never taken for a command.  Ends with
 * a small deterministic property test: any split of the same session into
 * feeds gives the same bytes on both sides.
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

#include "tlsproxy/smtp_filter.h"

#define ANSWER "454 4.7.0 TLS not available"
#define AUTHZ  "550 5.7.0 Error: insufficient authorization"

/* One filtered session: what each side received, what the client holds. */
struct sess {
	struct tp_filter f;
	char ts[1 << 17]; /* to_server */
	size_t tsl;
	char tc[1 << 17]; /* to_client */
	size_t tcl;
	char pend[1 << 17]; /* client bytes the filter has not taken yet */
	size_t pendl;
	int fail; /* emits fail when set */
};

static struct sess S;

static int
append(char *buf, size_t *len, size_t cap, const char *data, size_t n)
{
	if (S.fail)
		return -1;
	assert_true(*len + n < cap);
	memcpy(buf + *len, data, n);
	*len += n;
	buf[*len] = '\0';
	return 0;
}

static int
to_server(void *arg, const char *data, size_t len)
{
	assert_ptr_equal(arg, &S);
	return append(S.ts, &S.tsl, sizeof(S.ts), data, len);
}

static int
to_client(void *arg, const char *data, size_t len)
{
	assert_ptr_equal(arg, &S);
	return append(S.tc, &S.tcl, sizeof(S.tc), data, len);
}

static void
start(void)
{
	tp_filter_free(&S.f);
	tp_filter_init(&S.f, ANSWER, 0);
	S.tsl = S.tcl = S.pendl = 0;
	S.ts[0] = S.tc[0] = '\0';
	S.fail = 0;
}

/* pump - offer the held client bytes to the filter, as the caller does. */
static void
pump(void)
{
	size_t used;

	if (S.pendl == 0)
		return;
	used =
	    tp_filter_client(&S.f, S.pend, S.pendl, to_server, to_client, &S);
	assert_true(used != (size_t)-1);
	assert_true(used <= S.pendl);
	memmove(S.pend, S.pend + used, S.pendl - used);
	S.pendl -= used;
}

static void
client_n(const char *data, size_t len)
{
	assert_true(S.pendl + len <= sizeof(S.pend));
	memcpy(S.pend + S.pendl, data, len);
	S.pendl += len;
	pump();
}

static void
client(const char *data)
{
	client_n(data, strlen(data));
}

static bool
server_n(const char *data, size_t len)
{
	bool resume = false;

	assert_int_equal(
	    tp_filter_server(&S.f, data, len, to_client, &S, &resume), 0);
	if (resume)
		pump();
	return resume;
}

static bool
server(const char *data)
{
	return server_n(data, strlen(data));
}

static void
ts_is(const char *want)
{
	if (strcmp(S.ts, want) != 0)
		fail_msg("to_server is\n\"%s\"\nwant\n\"%s\"", S.ts, want);
}

static void
tc_is(const char *want)
{
	if (strcmp(S.tc, want) != 0)
		fail_msg("to_client is\n\"%s\"\nwant\n\"%s\"", S.tc, want);
}

/* ehlo - send EHLO, answer it with reply, check what the client sees. */
static void
ehlo(const char *reply, const char *want)
{
	start();
	client("EHLO client.example\r\n");
	ts_is("EHLO client.example\r\n");
	tc_is("");
	server(reply);
	tc_is(want);
}

static void
test_ehlo_middle(void **state)
{
	(void)state;
	ehlo("250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
	     "250-SIZE 1000\r\n250 8BITMIME\r\n",
	    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
	    "250 8BITMIME\r\n");
	/* Several, and lowercase, and with a parameter. */
	ehlo("250-mx.example\r\n250-starttls\r\n250-PIPELINING\r\n"
	     "250-StartTLS\r\n250-STARTTLS x\r\n250 8BITMIME\r\n",
	    "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
	/* Bare LF lines too. */
	ehlo("250-mx\n250-STARTTLS\n250 8BITMIME\n", "250-mx\n250 8BITMIME\n");
}

static void
test_ehlo_last(void **state)
{
	(void)state;
	ehlo("250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
	    "250-mx.example\r\n250 PIPELINING\r\n");
	ehlo("250-mx.example\r\n250-STARTTLS\r\n250 starttls\r\n",
	    "250 mx.example\r\n");
	ehlo("250-mx.example\r\n250-\r\n250 STARTTLS\r\n",
	    "250-mx.example\r\n250 \r\n");
}

static void
test_ehlo_kept(void **state)
{
	(void)state;
	/* The first line is the server's name, never a keyword. */
	ehlo("250 STARTTLS\r\n", "250 STARTTLS\r\n");
	ehlo("250-STARTTLS\r\n250 8BITMIME\r\n",
	    "250-STARTTLS\r\n250 8BITMIME\r\n");
	/* Not the keyword. */
	ehlo("250-mx\r\n250-STARTTLSX\r\n250-XSTARTTLS\r\n250 8BITMIME\r\n",
	    "250-mx\r\n250-STARTTLSX\r\n250-XSTARTTLS\r\n250 8BITMIME\r\n");
	/* A refusal passes as it is. */
	ehlo("502-5.5.1 no\r\n502-STARTTLS\r\n502 5.5.1 bye\r\n",
	    "502-5.5.1 no\r\n502-STARTTLS\r\n502 5.5.1 bye\r\n");
	/* A last line that is the code alone is left alone. */
	ehlo("250-mx\r\n250-STARTTLS\r\n250\r\n", "250-mx\r\n250\r\n");
	ehlo("250-mx\r\n250\r\n", "250-mx\r\n250\r\n");
	ehlo("250-mx\n250\n", "250-mx\n250\n");
}

/* Replies to anything but EHLO are never touched. */
static void
test_other_replies_identical(void **state)
{
	const char *r = "250-ok\r\n250-STARTTLS\r\n250 STARTTLS\r\n";

	(void)state;
	start();
	client("NOOP\r\n");
	ts_is("NOOP\r\n");
	server(r);
	tc_is(r);
	/* HELO's reply neither. */
	start();
	client("HELO c\r\n");
	server("250 STARTTLS\r\n");
	tc_is("250 STARTTLS\r\n");
	/* Nor an unsolicited one. */
	start();
	server("421 4.4.2 mx.example Error: timeout exceeded\r\n");
	tc_is("421 4.4.2 mx.example Error: timeout exceeded\r\n");
	/* Nor junk. */
	start();
	client("NOOP\r\n");
	server("x\r\n\r\n2\n250 STARTTLS\r\n");
	tc_is("x\r\n\r\n2\n250 STARTTLS\r\n");
}

static void
test_starttls_at_once(void **state)
{
	size_t used;

	(void)state;
	start();
	used = tp_filter_client(
	    &S.f, "STARTTLS\r\n", 10, to_server, to_client, &S);
	assert_int_equal(used, 10);
	ts_is("");
	tc_is(ANSWER "\r\n");
	/* Any case, bare LF, an argument: all answered, none forwarded. */
	start();
	client("starttls\nStartTls now\r\nSTARTTLS  \r\n");
	ts_is("");
	tc_is(ANSWER "\r\n" ANSWER "\r\n" ANSWER "\r\n");
	/* STARTTLSX is some other command. */
	start();
	client("STARTTLSX\r\n");
	ts_is("STARTTLSX\r\n");
	tc_is("");
}

/* What a whitespace-tolerant server (Postfix) takes for STARTTLS. */
static void
test_starttls_variants(void **state)
{
	char longline[400];

	(void)state;
	start();
	client(" STARTTLS\r\n\tstarttls\r\nSTARTTLS\t\r\nSTARTTLS\t \r\n"
	       "STARTTLS\r\r\n");
	ts_is("");
	tc_is(ANSWER "\r\n" ANSWER "\r\n" ANSWER "\r\n" ANSWER "\r\n" ANSWER
		     "\r\n");
	/* A line longer than the filter's look-ahead. */
	memset(longline, ' ', sizeof(longline));
	memcpy(longline, "STARTTLS", 8);
	memcpy(longline + sizeof(longline) - 3, "\r\n", 3);
	start();
	client(longline);
	client("NOOP\r\n");
	ts_is("NOOP\r\n");
	tc_is(ANSWER "\r\n");
	/* White space longer than the look-ahead before the verb (a server
	 * splitting on any white space still sees STARTTLS). */
	memset(longline, ' ', sizeof(longline));
	memset(longline, '\v', 150);
	memcpy(longline + sizeof(longline) - 11, "STARTTLS\r\n", 11);
	start();
	client(longline);
	client("NOOP\r\n");
	ts_is("NOOP\r\n");
	tc_is(ANSWER "\r\n");
	start();
	for (size_t i = 0; i < strlen(longline); i++)
		client_n(longline + i, 1);
	ts_is("");
	tc_is(ANSWER "\r\n");
	/* ... and another verb there goes up with the white space of its
	 * last look-ahead window and the first byte of the line */
	memcpy(longline + sizeof(longline) - 11, "NOOP xx\r\n", 10);
	longline[sizeof(longline) - 1] = '\0';
	start();
	client(longline);
	ts_is("\v       NOOP xx\r\n");
	tc_is("");
	/* A line longer than the filter's look-ahead, restored. */
	memset(longline, ' ', sizeof(longline));
	memcpy(longline, "STARTTLS", 8);
	memcpy(longline + sizeof(longline) - 3, "\r\n", 3);
	/* The same byte by byte, behind a pending reply. */
	start();
	client("NOOP\r\n");
	for (size_t i = 0; i < strlen(longline); i++)
		client_n(longline + i, 1);
	client("RSET\r\n");
	ts_is("NOOP\r\n");
	tc_is("");
	assert_int_equal(S.pendl, 6);
	server("250 2.0.0 Ok\r\n");
	tc_is("250 2.0.0 Ok\r\n" ANSWER "\r\n");
	ts_is("NOOP\r\nRSET\r\n");
}

static void
test_starttls_pipelined(void **state)
{
	size_t used;

	(void)state;
	start();
	used = tp_filter_client(
	    &S.f, "NOOP\r\nSTARTTLS\r\nNOOP\r\n", 22, to_server, to_client, &S);
	/* NOOP and STARTTLS taken, the rest waits. */
	assert_int_equal(used, 16);
	ts_is("NOOP\r\n");
	tc_is("");
	/* Nothing more is taken while the answer waits. */
	assert_int_equal(
	    tp_filter_client(&S.f, "NOOP\r\n", 6, to_server, to_client, &S), 0);
	memcpy(S.pend, "NOOP\r\n", 6);
	S.pendl = 6;
	/* The NOOP's reply first, then the answer, then the rest. */
	assert_true(server("250 2.0.0 Ok\r\n"));
	tc_is("250 2.0.0 Ok\r\n" ANSWER "\r\n");
	ts_is("NOOP\r\nNOOP\r\n");
	assert_int_equal(S.pendl, 0);
	server("250 2.0.0 Ok\r\n");
	tc_is("250 2.0.0 Ok\r\n" ANSWER "\r\n250 2.0.0 Ok\r\n");

	/* Behind a multi-line EHLO reply fed byte by byte. */
	start();
	client("EHLO c\r\nSTARTTLS\r\nQUIT\r\n");
	ts_is("EHLO c\r\n");
	{
		const char *r = "250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
		bool resumed = false;

		for (size_t i = 0; i < strlen(r); i++) {
			resumed = server_n(r + i, 1);
			if (i + 1 < strlen(r)) {
				assert_false(resumed);
				tc_is("");
			}
		}
		assert_true(resumed);
	}
	tc_is("250-mx\r\n250 8BITMIME\r\n" ANSWER "\r\n");
	ts_is("EHLO c\r\nQUIT\r\n");
}

#define BODY                                                                   \
	"From: a@example\r\n"                                                  \
	"\r\n"                                                                 \
	"STARTTLS\r\n"                                                         \
	"EHLO x\r\n"                                                           \
	".foo\r\n"                                                             \
	"..STARTTLS\r\n"                                                       \
	"DATA\r\n"                                                             \
	"BDAT 100\r\n"                                                         \
	"a.\r\n"                                                               \
	". \r\n"                                                               \
	".\r \r\n"                                                             \
	"x\r.\r\n"                                                             \
	".\r\n"

static void
test_data_body(void **state)
{
	size_t used;

	(void)state;
	start();
	used = tp_filter_client(&S.f,
	    "MAIL FROM:<a@example>\r\nRCPT "
	    "TO:<b@example>\r\nDATA\r\n" BODY,
	    strlen(
		"MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\nDATA\r\n" BODY),
	    to_server, to_client, &S);
	/* Held right after DATA. */
	assert_int_equal(used,
	    strlen("MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\nDATA\r\n"));
	ts_is("MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\nDATA\r\n");
	memcpy(S.pend, BODY "STARTTLS\r\nQUIT\r\n", strlen(BODY) + 16);
	S.pendl = strlen(BODY) + 16;
	assert_true(server("250 2.1.0 Ok\r\n"));
	assert_int_equal(S.pendl, strlen(BODY) + 16);
	server("250 2.1.5 Ok\r\n");
	assert_int_equal(S.pendl, strlen(BODY) + 16);
	/* The 354: the body goes through untouched up to ".". */
	assert_true(server("354 End data with <CR><LF>.<CR><LF>\r\n"));
	ts_is("MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\nDATA\r\n" BODY);
	/* The STARTTLS after the body waits for the message's reply. */
	assert_int_equal(S.pendl, 6);
	tc_is("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	      "354 End data with <CR><LF>.<CR><LF>\r\n");
	assert_true(server("250 2.0.0 Ok: queued as 1234\r\n"));
	tc_is("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	      "354 End data with <CR><LF>.<CR><LF>\r\n"
	      "250 2.0.0 Ok: queued as 1234\r\n" ANSWER "\r\n");
	ts_is("MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\nDATA\r\n" BODY
	      "QUIT\r\n");
}

/* The body byte by byte, and its end split everywhere. */
static void
test_data_body_split(void **state)
{
	const char *body = "line\r\n.\r\n";

	(void)state;
	for (size_t step = 1; step <= 4; step++) {
		start();
		client("DATA\r\n");
		server("354 go\r\n");
		for (size_t i = 0; i < strlen(BODY); i += step)
			client_n(BODY + i,
			    strlen(BODY) - i < step ? strlen(BODY) - i : step);
		client("STARTTLS\r\n");
		ts_is("DATA\r\n" BODY);
		tc_is("354 go\r\n");
		server("250 ok\r\n");
		tc_is("354 go\r\n250 ok\r\n" ANSWER "\r\n");
	}
	/* An empty body; bare-LF end of data. */
	start();
	client("DATA\r\n");
	server("354 go\r\n");
	client(".\r\nNOOP\r\n");
	ts_is("DATA\r\n.\r\nNOOP\r\n");
	start();
	client("DATA\r\n");
	server("354 go\r\n");
	client(body);
	client("NOOP\r\n");
	ts_is("DATA\r\nline\r\n.\r\nNOOP\r\n");
}

static void
test_data_refused(void **state)
{
	(void)state;
	start();
	client("DATA\r\nSTARTTLS\r\nNOOP\r\n");
	ts_is("DATA\r\n");
	server("554 5.5.1 Error: no valid recipients\r\n");
	tc_is("554 5.5.1 Error: no valid recipients\r\n" ANSWER "\r\n");
	ts_is("DATA\r\nNOOP\r\n");
	/* "DATA x" is a command too; so is DATA in any case and spacing. */
	start();
	client("data \r\nSTARTTLS\r\n");
	ts_is("data \r\n");
	server("503 5.5.1 Error: need RCPT command\r\n");
	tc_is("503 5.5.1 Error: need RCPT command\r\n" ANSWER "\r\n");
	/* DATA as a whitespace-tolerant server reads it. */
	start();
	client("DATA\t\r\nSTARTTLS\r\n");
	ts_is("DATA\t\r\n");
	server("354 go\r\n");
	ts_is("DATA\t\r\nSTARTTLS\r\n");
	tc_is("354 go\r\n");
	/* A multi-line 354 starts the body only at its end. */
	start();
	client("DATA\r\n");
	server("354-go\r\n");
	client("STARTTLS\r\n");
	ts_is("DATA\r\n");
	server("354 on\r\n");
	ts_is("DATA\r\nSTARTTLS\r\n");
	tc_is("354-go\r\n354 on\r\n");
}

static void
test_bdat(void **state)
{
	(void)state;
	/* Without CHUNKING offered, BDAT is just a command: the "chunk" is
	 * filtered like any command line (the server reads it so). */
	start();
	client("BDAT 10\r\nSTARTTLS\r\n");
	ts_is("BDAT 10\r\n");
	server("502 5.5.1 no\r\n");
	tc_is("502 5.5.1 no\r\n" ANSWER "\r\n");

	start();
	S.f.chunking = true; /* as after an EHLO reply with CHUNKING */
	client("BDAT 10\r\nSTARTTLS\r\nSTARTTLS\r\n");
	ts_is("BDAT 10\r\nSTARTTLS\r\n");
	tc_is("");
	server("250 2.0.0 Ok: 10 bytes\r\n");
	tc_is("250 2.0.0 Ok: 10 bytes\r\n" ANSWER "\r\n");

	/* A chunk split across feeds, then LAST. */
	start();
	S.f.chunking = true;
	client("BDAT 12 LAST\r\nDAT");
	client("A\r\nEHLO\r\n");
	client("NOOP\r\n");
	ts_is("BDAT 12 LAST\r\nDATA\r\nEHLO\r\nNOOP\r\n");
	server("250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
	tc_is("250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
	/* BDAT 0 LAST has no chunk. */
	start();
	S.f.chunking = true;
	client("BDAT 0 LAST\r\nSTARTTLS\r\n");
	ts_is("BDAT 0 LAST\r\n");
	server("250 ok\r\n");
	tc_is("250 ok\r\n" ANSWER "\r\n");
	/* Byte by byte. */
	start();
	S.f.chunking = true;
	{
		const char *in = "bdat 7\r\nSTART\r\nSTARTTLS\r\n";

		for (size_t i = 0; i < strlen(in); i++)
			client_n(in + i, 1);
	}
	ts_is("bdat 7\r\nSTART\r\n");
	server("250 ok\r\n");
	tc_is("250 ok\r\n" ANSWER "\r\n");
}

/* Long command lines pass whole; the next line is a command again. */
static void
test_long_commands(void **state)
{
	char mail[600], ehlo_l[400];

	(void)state;
	memset(mail, 'a', sizeof(mail));
	memcpy(mail, "MAIL FROM:<", 11);
	memcpy(mail + sizeof(mail) - 4, ">\r\n", 4);
	start();
	client(mail);
	client("STARTTLS\r\n");
	ts_is(mail);
	server("250 ok\r\n");
	tc_is("250 ok\r\n" ANSWER "\r\n");
	/* Split everywhere. */
	start();
	for (size_t i = 0; i < strlen(mail); i += 7)
		client_n(mail + i, strlen(mail) - i < 7 ? strlen(mail) - i : 7);
	ts_is(mail);
	/* A long EHLO is still an EHLO: its reply is filtered. */
	memset(ehlo_l, 'h', sizeof(ehlo_l));
	memcpy(ehlo_l, "EHLO ", 5);
	memcpy(ehlo_l + sizeof(ehlo_l) - 3, "\r\n", 3);
	start();
	client(ehlo_l);
	ts_is(ehlo_l);
	server("250-mx\r\n250 STARTTLS\r\n");
	tc_is("250 mx\r\n");
}

/* More commands in flight than the queue holds: the filter waits. */
static void
test_queue_full(void **state)
{
	char in[200 * 6 + 1];
	size_t n = 0, used;

	(void)state;
	for (int i = 0; i < 200; i++)
		n += (size_t)sprintf(in + n, "NOOP\r\n");
	start();
	used = tp_filter_client(&S.f, in, n, to_server, to_client, &S);
	assert_int_equal(used, TP_FILTER_QUEUE * 6);
	memcpy(S.pend, in + used, n - used);
	S.pendl = n - used;
	for (int i = 0; i < 200; i++)
		server("250 2.0.0 Ok\r\n");
	assert_int_equal(S.tsl, n);
	assert_int_equal(S.tcl, 200 * 14);
	assert_int_equal(S.pendl, 0);
}

/* An EHLO reply too big to rewrite still reaches the client whole. */
static void
test_ehlo_oversized(void **state)
{
	static char r[3 * TP_FILTER_EHLO_MAX];
	size_t n = 0;

	(void)state;
	n += (size_t)sprintf(r + n, "250-mx.example\r\n");
	while (n < 2 * TP_FILTER_EHLO_MAX)
		n += (size_t)sprintf(r + n, "250-X-%080zu\r\n", n);
	n += (size_t)sprintf(r + n, "250 8BITMIME\r\n");
	start();
	client("EHLO c\r\nNOOP\r\n");
	server(r);
	tc_is(r);
	server("250 ok\r\n");
	assert_int_equal(S.tcl, n + 8);
	/* Fed byte by byte. */
	start();
	client("EHLO c\r\n");
	for (size_t i = 0; i < n; i++)
		server_n(r + i, 1);
	tc_is(r);
}

static void
test_emit_failure(void **state)
{
	bool resume;

	(void)state;
	start();
	S.fail = 1;
	assert_true(tp_filter_client(&S.f, "NOOP\r\n", 6, to_server, to_client,
			&S) == (size_t)-1);
	start();
	S.fail = 1;
	assert_true(tp_filter_client(&S.f, "STARTTLS\r\n", 10, to_server,
			to_client, &S) == (size_t)-1);
	start();
	S.fail = 1;
	assert_int_equal(
	    tp_filter_server(&S.f, "250 ok\r\n", 8, to_client, &S, &resume),
	    -1);
	start();
	client("EHLO c\r\n");
	S.fail = 1;
	assert_int_equal(tp_filter_server(&S.f, "250-a\r\n250 b\r\n", 14,
			     to_client, &S, &resume),
	    -1);
}

/* start_flags - a session with tp_filter_init flags. */
static void
start_flags(unsigned flags)
{
	start();
	tp_filter_init(&S.f, ANSWER, flags);
}

static void
phase_is(const char *want)
{
	const char *got = tp_filter_phase(&S.f);

	if (want == NULL ? got != NULL : got == NULL || strcmp(got, want))
		fail_msg("phase is \"%s\", want \"%s\"", got ? got : "(idle)",
		    want ? want : "(idle)");
}

/* What was in progress, in Postfix's words, through a whole session. */
static void
test_phases(void **state)
{
	(void)state;
	start_flags(TP_FILTER_GREETING);
	assert_true(tp_filter_waiting(&S.f));
	phase_is("receiving the initial server greeting");
	server("220 mx ESMTP\r\n");
	assert_false(tp_filter_waiting(&S.f));
	phase_is(NULL);
	client("EHLO c\r\n");
	phase_is("performing the EHLO handshake");
	server("250-mx\r\n250 PIPELINING\r\n");
	client("MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\n");
	phase_is("sending MAIL FROM");
	server("250 2.1.0 Ok\r\n");
	phase_is("sending RCPT TO");
	server("250 2.1.5 Ok\r\n");
	client("DATA\r\n");
	phase_is("sending DATA command");
	server("354 go\r\n");
	assert_false(tp_filter_waiting(&S.f));
	phase_is("sending message body");
	client("Subject: x\r\n\r\nbody\r\n");
	phase_is("sending message body");
	assert_false(tp_filter_end_of_data(&S.f));
	client(".\r\n");
	assert_true(tp_filter_waiting(&S.f));
	assert_true(tp_filter_end_of_data(&S.f));
	phase_is("sending end of data -- message may be sent more than once");
	server("250 2.0.0 Ok: queued\r\n");
	assert_false(tp_filter_end_of_data(&S.f));
	client("RSET\r\n");
	phase_is("sending RSET");
	server("250 2.0.0 Ok\r\n");
	client("HELO c\r\n");
	phase_is("performing the HELO handshake");
	server("250 mx\r\n");
	client("VRFY x\r\n");
	phase_is("waiting for a reply");
	server("252 2.0.0 x\r\n");
	assert_false(tp_filter_bye(&S.f));
	client("QUIT\r\n");
	phase_is("sending QUIT");
	server("221 2.0.0 Bye\r\n");
	phase_is(NULL);
	assert_false(tp_filter_waiting(&S.f));
	assert_true(tp_filter_bye(&S.f));
	/* Without the flag the greeting was handled before the relay. */
	start_flags(0);
	assert_false(tp_filter_waiting(&S.f));
	/* BDAT: the chunk is body, LAST is the end of data. */
	start();
	S.f.chunking = true;
	client("BDAT 10\r\nabc");
	phase_is("sending message body");
	client("defghij");
	phase_is("sending BDAT command");
	server("250 2.0.0 10 octets\r\n");
	client("BDAT 3 LAST\r\nxyz");
	phase_is("sending end of data -- message may be sent more than once");
	server("250 2.0.0 Ok\r\n");
	client("BDAT 0 LAST\r\n");
	phase_is("sending end of data -- message may be sent more than once");
}

/* Where a reply of the proxy's own may go in: never inside another. */
static void
test_boundary(void **state)
{
	(void)state;
	start();
	assert_true(tp_filter_boundary(&S.f));
	client("MAIL FROM:<a@example>\r\n");
	server("25");
	assert_true(tp_filter_boundary(&S.f)); /* nothing relayed yet */
	server("0 2.1.0");
	assert_false(tp_filter_boundary(&S.f));
	server(" Ok\r\n");
	assert_true(tp_filter_boundary(&S.f));
	client("EHLO c\r\n");
	server("250-mx\r\n");
	assert_false(tp_filter_boundary(&S.f));
	server("250-PIPELINING\r\n250 8BITMIME\r\n");
	assert_true(tp_filter_boundary(&S.f));
	client("NOOP\r\n");
	server("250-a\r\n");
	assert_false(tp_filter_boundary(&S.f));
	server("250 b\r\n");
	assert_true(tp_filter_boundary(&S.f));
	/* An unsolicited 421 says goodbye too. */
	server("421 4.4.2 mx Error: timeout exceeded\r\n");
	assert_true(tp_filter_bye(&S.f));
	server("250 x\r\n");
	assert_false(tp_filter_bye(&S.f));
}

/* Server routes: only the PROXY header speaks for the client (spec 5). */
static void
test_server_guard(void **state)
{
	(void)state;
	start_flags(TP_FILTER_SERVER);
	client("XCLIENT ADDR=1.2.3.4\r\n");
	ts_is("");
	tc_is(AUTHZ "\r\n");
	/* Any case and spacing, long lines, behind pending replies. */
	start_flags(TP_FILTER_SERVER);
	client("NOOP\r\n\txforward NAME=spoofed.example\r\nNOOP\r\n");
	ts_is("NOOP\r\n");
	tc_is("");
	server("250 2.0.0 Ok\r\n");
	tc_is("250 2.0.0 Ok\r\n" AUTHZ "\r\n");
	ts_is("NOOP\r\nNOOP\r\n");
	{
		char longline[300];

		memset(longline, 'A', sizeof(longline));
		memcpy(longline, "XCLIENT ", 8);
		memcpy(longline + sizeof(longline) - 3, "\r\n", 3);
		start_flags(TP_FILTER_SERVER);
		client(longline);
		client("RSET\r\n");
		ts_is("RSET\r\n");
		tc_is(AUTHZ "\r\n");
	}
	/* Their EHLO keywords are not offered. */
	start_flags(TP_FILTER_SERVER);
	client("EHLO c\r\n");
	server("250-mx\r\n250-XCLIENT NAME ADDR PROTO\r\n250-PIPELINING\r\n"
	       "250-xforward NAME ADDR\r\n250-PIPECONNECT\r\n"
	       "250 XCLIENT\r\n");
	tc_is("250-mx\r\n250 PIPELINING\r\n");
	/* Client routes: the local MTA is trusted, all of it passes. */
	start_flags(0);
	client("XCLIENT ADDR=1.2.3.4\r\n");
	ts_is("XCLIENT ADDR=1.2.3.4\r\n");
	client("EHLO c\r\n");
	server("220 ok\r\n250-mx\r\n250 XCLIENT NAME\r\n");
	tc_is("220 ok\r\n250-mx\r\n250 XCLIENT NAME\r\n");
}

/* spec 4.2.4: lines over 2048 octets and replies over 100 lines fail the
 * session as soon as the limit is passed. */
static void
test_reply_limits(void **state)
{
	static char big[4000];
	bool resume;
	size_t i;

	(void)state;
	start();
	client("NOOP\r\n");
	memset(big, '2', sizeof(big));
	/* 2048 octets and CRLF: fine. */
	assert_int_equal(
	    tp_filter_server(&S.f, big, 2048, to_client, &S, &resume), 0);
	assert_int_equal(
	    tp_filter_server(&S.f, "\r\n", 2, to_client, &S, &resume), 0);
	/* One octet more, no LF in sight: at once. */
	start();
	client("NOOP\r\n");
	assert_int_equal(
	    tp_filter_server(&S.f, big, 2050, to_client, &S, &resume), 0);
	assert_int_equal(tp_filter_server(&S.f, big, 1, to_client, &S, &resume),
	    TP_FILTER_EPROTO);
	assert_string_equal(S.f.why, "reply line longer than 2048 octets");
	/* 100 lines: fine; 101: not. */
	start();
	client("NOOP\r\nNOOP\r\n");
	for (i = 0; i < 99; i++)
		server("250-x\r\n");
	server("250 x\r\n");
	for (i = 0; i < 100; i++)
		server("250-x\r\n");
	assert_int_equal(
	    tp_filter_server(&S.f, "250 x\r\n", 7, to_client, &S, &resume),
	    TP_FILTER_EPROTO);
	assert_string_equal(S.f.why, "too many reply lines");
}

/*
 * The property: a session, event by event.  Fed whole it gives fixed
 * outputs; fed in random pieces (and with the client running ahead) it
 * gives the same.
 */
struct event {
	char side; /* 'C' client, 'S' server */
	const char *data;
};

static const struct event session[] = {
    {'C', "EHLO client.example\r\n"},
    {'S',
	"250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
	"250-CHUNKING\r\n250 STARTTLS\r\n"},
    {'C', "STARTTLS\r\n"},
    {'C', "MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\nDATA\r\n"},
    {'S', "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"},
    {'C',
	"Subject: STARTTLS\r\n\r\nSTARTTLS\r\nEHLO x\r\n.foo\r\n"
	"DATA\r\n.\r\n"},
    {'C', "NOOP\r\nSTARTTLS\r\nEHLO again\r\n"},
    {'S', "250 2.0.0 Ok: queued\r\n250 2.0.0 Ok\r\n"},
    {'S', "250-mx.example\r\n250-STARTTLS\r\n250-8BITMIME\r\n250 CHUNKING\r\n"},
    {'C', "BDAT 16\r\nSTARTTLS\r\nDATA\r\n"},
    {'C', "BDAT 3 LAST\r\nEHL"},
    {'S', "250 2.0.0 16 octets\r\n250 2.0.0 Ok\r\n"},
    {'C', "RSET\r\nQUIT\r\n"},
    {'S', "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"},
};

#define NEVENTS (sizeof(session) / sizeof(session[0]))

static const char want_ts[] =
    "EHLO client.example\r\n"
    "MAIL FROM:<a@example>\r\nRCPT TO:<b@example>\r\nDATA\r\n"
    "Subject: STARTTLS\r\n\r\nSTARTTLS\r\nEHLO x\r\n.foo\r\nDATA\r\n.\r\n"
    "NOOP\r\nEHLO again\r\n"
    "BDAT 16\r\nSTARTTLS\r\nDATA\r\n"
    "BDAT 3 LAST\r\nEHL"
    "RSET\r\nQUIT\r\n";

static const char want_tc[] =
    "250-mx.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n" ANSWER "\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"
    "250 2.0.0 Ok: queued\r\n250 2.0.0 Ok\r\n" ANSWER "\r\n"
    "250-mx.example\r\n250-8BITMIME\r\n250 CHUNKING\r\n"
    "250 2.0.0 16 octets\r\n250 2.0.0 Ok\r\n"
    "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n";

static uint32_t rng;

static size_t
rnd(size_t n)
{
	rng = rng * 1103515245u + 12345u;
	return (size_t)((rng >> 16) % n);
}

/* play - the session with pieces of at most maxpiece (0 = whole). */
static void
play(size_t maxpiece, bool ahead)
{
	start();
	if (ahead)
		for (size_t e = 0; e < NEVENTS; e++)
			if (session[e].side == 'C')
				client(session[e].data);
	for (size_t e = 0; e < NEVENTS; e++) {
		const char *d = session[e].data;
		size_t len = strlen(d), off = 0;

		if (ahead && session[e].side == 'C')
			continue;
		while (off < len) {
			size_t n =
			    maxpiece == 0 ? len - off : 1 + rnd(maxpiece);

			if (n > len - off)
				n = len - off;
			if (session[e].side == 'C')
				client_n(d + off, n);
			else
				server_n(d + off, n);
			off += n;
		}
	}
	ts_is(want_ts);
	tc_is(want_tc);
	assert_int_equal(S.pendl, 0);
}

static void
test_property_whole(void **state)
{
	(void)state;
	play(0, false);
	play(0, true);
}

static void
test_property_random_pieces(void **state)
{
	static const size_t sizes[] = {1, 2, 3, 5, 8, 13, 64};

	(void)state;
	for (uint32_t seed = 1; seed <= 300; seed++) {
		rng = seed;
		play(sizes[seed % 7], (seed & 8) != 0);
	}
}

/*
 * Connection reuse (spec 4.7): QUIT goes up as RSET, its 250 is never
 * shown to the client, nothing after the QUIT is forwarded; a pipelined
 * ".", QUIT keeps the order of replies.
 */
static void
test_reuse_quit(void **state)
{
	(void)state;
	start_flags(TP_FILTER_GREETING | TP_FILTER_REUSE);
	server("220 mx ESMTP\r\n");
	client("EHLO c\r\n");
	server("250-mx\r\n250 8BITMIME\r\n");
	assert_int_equal(tp_filter_reuse(&S.f), 0);
	client("MAIL FROM:<a@b>\r\n");
	server("250 2.1.0 Ok\r\n");
	S.tsl = S.tcl = 0;
	S.ts[0] = S.tc[0] = '\0';
	/* the end of a message and QUIT in one write, and more after it */
	client("NOOP\r\nQUIT\r\nMAIL FROM:<x@y>\r\n");
	ts_is("NOOP\r\nRSET\r\n");
	assert_int_equal(S.pendl, 0); /* what came after QUIT: dropped */
	assert_true(tp_filter_waiting(&S.f));
	assert_string_equal(tp_filter_phase(&S.f), "waiting for a reply");
	server("250 2.0.0 Ok\r\n");
	tc_is("250 2.0.0 Ok\r\n");
	assert_int_equal(tp_filter_reuse(&S.f), 0);
	/* the RSET's reply, fed in pieces: the client sees none of it */
	server("25");
	server("0 2.0.0 O");
	assert_int_equal(tp_filter_reuse(&S.f), 0);
	server("k\r\n");
	tc_is("250 2.0.0 Ok\r\n");
	assert_int_equal(tp_filter_reuse(&S.f), 1);
	assert_false(tp_filter_waiting(&S.f));
	assert_true(tp_filter_boundary(&S.f));
	assert_false(tp_filter_bye(&S.f));
	/* more from the client is dropped, nothing is forwarded */
	client("RSET\r\n");
	ts_is("NOOP\r\nRSET\r\n");
	/* the server speaking after it: not to be reused */
	server("421 4.4.2 bye\r\n");
	tc_is("250 2.0.0 Ok\r\n");
	assert_int_equal(tp_filter_reuse(&S.f), -1);

	/* RSET refused (or a multi-line non-250): -1, unseen */
	start_flags(TP_FILTER_REUSE);
	client("QUIT\r\n");
	ts_is("RSET\r\n");
	server("502-no\r\n502 5.5.1 no RSET\r\n");
	tc_is("");
	assert_int_equal(tp_filter_reuse(&S.f), -1);

	/* AUTH (or XCLIENT, XFORWARD) makes the connection the client's */
	start_flags(TP_FILTER_REUSE);
	client("EHLO c\r\n");
	server("250-mx\r\n250 AUTH PLAIN\r\n");
	client("AUTH PLAIN AGFAAGI=\r\n");
	ts_is("EHLO c\r\nAUTH PLAIN AGFAAGI=\r\n");
	server("235 2.7.0 Authentication successful\r\n");
	client("QUIT\r\n");
	server("250 2.0.0 Ok\r\n");
	assert_int_equal(tp_filter_reuse(&S.f), -1);
	start_flags(TP_FILTER_REUSE);
	client("XFORWARD NAME=x\r\n");
	server("250 Ok\r\n");
	client("QUIT\r\n");
	server("250 2.0.0 Ok\r\n");
	assert_int_equal(tp_filter_reuse(&S.f), -1);

	/* without the flag QUIT is QUIT */
	start();
	client("QUIT\r\n");
	ts_is("QUIT\r\n");
	server("221 2.0.0 Bye\r\n");
	tc_is("221 2.0.0 Bye\r\n");
	assert_int_equal(tp_filter_reuse(&S.f), 0);
	assert_true(tp_filter_bye(&S.f));

	/* QUIT in a message body is content */
	start_flags(TP_FILTER_REUSE);
	client("DATA\r\n");
	server("354 go\r\n");
	client("QUIT\r\n.\r\n");
	ts_is("DATA\r\nQUIT\r\n.\r\n");
	server("250 queued\r\n");
	assert_int_equal(tp_filter_reuse(&S.f), 0);
	tc_is("354 go\r\n250 queued\r\n");
}

/*
 * A reused connection: the first EHLO (or HELO) is answered from what the
 * first session saw, never sent up; STARTTLS stays refused; any other
 * first command goes through; later EHLOs go to the server.
 */
static void
test_reuse_replay(void **state)
{
	const char *ehlo_r = "250-mx.example\r\n250-CHUNKING\r\n250 8BITMIME";

	(void)state;
	start_flags(TP_FILTER_REUSE);
	tp_filter_replay(&S.f, ehlo_r, "250 mx.example", true);
	client("EHLO c\r\n");
	ts_is("");
	tc_is("250-mx.example\r\n250-CHUNKING\r\n250 8BITMIME\r\n");
	/* CHUNKING was offered: BDAT's chunk passes by count */
	client("MAIL FROM:<a@b>\r\n");
	server("250 ok\r\n");
	client("BDAT 6 LAST\r\nQUIT\r\n");
	ts_is("MAIL FROM:<a@b>\r\nBDAT 6 LAST\r\nQUIT\r\n");
	server("250 done\r\n");
	tc_is("250-mx.example\r\n250-CHUNKING\r\n250 8BITMIME\r\n250 ok\r\n"
	      "250 done\r\n");
	/* a later EHLO goes up */
	client("EHLO again\r\n");
	ts_is("MAIL FROM:<a@b>\r\nBDAT 6 LAST\r\nQUIT\r\nEHLO again\r\n");

	/* HELO: the one-line answer, and no CHUNKING */
	start_flags(TP_FILTER_REUSE);
	tp_filter_replay(&S.f, ehlo_r, "250 mx.example", true);
	client("HELO c\r\nMAIL FROM:<a@b>\r\n");
	tc_is("250 mx.example\r\n");
	ts_is("MAIL FROM:<a@b>\r\n");
	assert_false(S.f.chunking);

	/* STARTTLS first: refused, and the replay still waits for EHLO */
	start_flags(TP_FILTER_REUSE);
	tp_filter_replay(&S.f, ehlo_r, "250 mx.example", true);
	client("STARTTLS\r\nEHLO c\r\n");
	ts_is("");
	tc_is(ANSWER "\r\n250-mx.example\r\n250-CHUNKING\r\n250 8BITMIME\r\n");

	/* NOOP first: through, and then EHLO goes up too */
	start_flags(TP_FILTER_REUSE);
	tp_filter_replay(&S.f, ehlo_r, "250 mx.example", true);
	client("NOOP\r\n");
	ts_is("NOOP\r\n");
	server("250 ok\r\n");
	client("EHLO c\r\n");
	ts_is("NOOP\r\nEHLO c\r\n");

	/* QUIT first: the RSET, unseen */
	start_flags(TP_FILTER_REUSE);
	tp_filter_replay(&S.f, ehlo_r, "250 mx.example", true);
	client("QUIT\r\n");
	ts_is("RSET\r\n");
	server("250 ok\r\n");
	tc_is("");
	assert_int_equal(tp_filter_reuse(&S.f), 1);
}

/* What is being relayed: the greeting, then the (rewritten) EHLO reply. */
static void
test_replying(void **state)
{
	(void)state;
	start_flags(TP_FILTER_GREETING);
	assert_int_equal(tp_filter_replying(&S.f), TP_FILTER_R_GREETING);
	server("220 mx\r\n");
	assert_int_equal(tp_filter_replying(&S.f), 0);
	client("EHLO c\r\n");
	assert_int_equal(tp_filter_replying(&S.f), 0);
	server("250-mx\r\n");
	assert_int_equal(tp_filter_replying(&S.f), TP_FILTER_R_EHLO);
	server("250 STARTTLS\r\n");
	assert_int_equal(tp_filter_replying(&S.f), 0);
	tc_is("220 mx\r\n250 mx\r\n");
	client("EHLO d\r\n");
	server("550 no\r\n");
	assert_int_equal(tp_filter_replying(&S.f), 0);
	/* a 250 to HELO */
	client("HELO c\r\n");
	server("250 mx");
	assert_int_equal(tp_filter_replying(&S.f), TP_FILTER_R_HELO);
	server("\r\n");
	assert_int_equal(tp_filter_replying(&S.f), 0);
	client("HELO c\r\n");
	server("501 no\r\n");
	assert_int_equal(tp_filter_replying(&S.f), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ehlo_middle),
	    cmocka_unit_test(test_ehlo_last),
	    cmocka_unit_test(test_ehlo_kept),
	    cmocka_unit_test(test_other_replies_identical),
	    cmocka_unit_test(test_starttls_at_once),
	    cmocka_unit_test(test_starttls_variants),
	    cmocka_unit_test(test_starttls_pipelined),
	    cmocka_unit_test(test_data_body),
	    cmocka_unit_test(test_data_body_split),
	    cmocka_unit_test(test_data_refused),
	    cmocka_unit_test(test_bdat),
	    cmocka_unit_test(test_long_commands),
	    cmocka_unit_test(test_queue_full),
	    cmocka_unit_test(test_ehlo_oversized),
	    cmocka_unit_test(test_emit_failure),
	    cmocka_unit_test(test_phases),
	    cmocka_unit_test(test_boundary),
	    cmocka_unit_test(test_server_guard),
	    cmocka_unit_test(test_reply_limits),
	    cmocka_unit_test(test_property_whole),
	    cmocka_unit_test(test_property_random_pieces),
	    cmocka_unit_test(test_reuse_quit),
	    cmocka_unit_test(test_reuse_replay),
	    cmocka_unit_test(test_replying),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
