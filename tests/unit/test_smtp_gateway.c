/*
 * test_smtp_gateway.c - the gateway engine (spec 4.9): a harness plays
 * the local MTA, the upstream and the event layer (it answers CONNECT
 * with tp_gw_up_ready or tp_gw_up_failed as each test says, calls the
 * engine again after DISCONNECT, passes body spans on) and checks the
 * exact bytes each side gets.  Covered: the greeting, EHLO/HELO and every
 * reply of the gateway's own; MAIL and RCPT syntax; the first RCPT that
 * reaches a destination, later RCPTs to it, 452 for another domain;
 * reuse of the idle upstream and QUIT + DISCONNECT for another domain;
 * up_failed; MAIL refused upstream; parameters adapted to what the
 * upstream offers (BODY, SIZE, DSN, SMTPUTF8 both ways); an upstream
 * without PIPELINING; 421 made 451; the upstream lost in the middle of
 * RCPTs and of a body; bodies with dot-stuffing fed byte by byte; long
 * lines and the error limits; pipelined bursts answered in order; replies
 * cut at TP_GW_REPLY_MAX; back-pressure; and the property that any split
 * of either side's input gives the same bytes and events.
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

#include "tlsproxy/smtp_gateway.h"

#define PEER "mx.dst.example[192.0.2.1]"
#define EHLO_FULL                                                              \
	"250-mx.dst.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"        \
	"250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n"
#define EHLO_PIPE "250-mx.dst.example\r\n250 PIPELINING\r\n"
#define EHLO_NONE "250-mx.dst.example\r\n250 ENHANCEDSTATUSCODES\r\n"
#define OUR_EHLO                                                               \
	"250-gw.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n"                 \
	"250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n"                          \
	"250 LIMITS RCPTDOMAINMAX=1\r\n"
#define MAIL_OK "250 2.1.0 Ok\r\n"
#define OK      "250 2.0.0 Ok\r\n"
#define R452                                                                   \
	"452 4.5.3 Try again later: one destination domain per transaction\r\n"
#define TOO_MANY "421 4.7.0 Too many errors\r\n"
#define NO_RCPTS "554 5.5.1 Error: no valid recipients\r\n"
#define LOST     "451 4.4.2 " PEER ": Lost connection while sending RCPT TO"

static struct tp_gw_conf conf;
static struct tp_gw g;

/* The harness: everything each side got, and the event layer's state. */
static char mta[1 << 17]; /* bytes the MTA got */
static size_t mtalen, mtaseen;
static char up[1 << 17]; /* bytes the upstream got (commands, bodies) */
static size_t uplen, upseen;
static char pend[1 << 17]; /* MTA bytes the engine has not taken */
static size_t pendlen;
static char events[512]; /* C connect, D disconnect, X close, E error,
			    P park */
static size_t nev;
static size_t mstep, ustep; /* feed sizes; 0: whole */
static bool linked;         /* the event layer's upstream is open */
static bool ended;          /* TP_GW_CLOSE was seen */
static int connect_mode;    /* 0: the test answers CONNECT itself */

static void
append(char *buf, size_t *len, size_t cap, const char *d, size_t n)
{
	assert_true(*len + n < cap);
	memcpy(buf + *len, d, n);
	*len += n;
	buf[*len] = '\0';
}

static void
note(char c)
{
	assert_true(nev + 1 < sizeof(events));
	events[nev++] = c;
	events[nev] = '\0';
}

/* take - send what the engine left in its output buffers. */
static void
take(void)
{
	assert_true(g.down_len <= TP_GW_OUT);
	assert_true(g.up_len <= TP_GW_OUT);
	append(mta, &mtalen, sizeof(mta), g.down_out, g.down_len);
	if (linked)
		append(up, &uplen, sizeof(up), g.up_out, g.up_len);
	g.down_len = g.up_len = 0;
}

static void
on_event(enum tp_gw_event ev)
{
	switch (ev) {
	case TP_GW_NONE:
		break;
	case TP_GW_CONNECT:
		note('C');
		break;
	case TP_GW_DISCONNECT:
		note('D');
		linked = false;
		break;
	case TP_GW_CLOSE:
		note('X');
		ended = true;
		if (!tp_gw_parking(&g))
			linked = false;
		break;
	case TP_GW_PARK:
		note('P');
		linked = false;
		if (g.closed)
			on_event(TP_GW_CLOSE);
		break;
	}
}

static void ready(const char *peer);

/* pump - offer the MTA's pending bytes, as the event layer does. */
static void
pump(void)
{
	while (!ended) {
		enum tp_gw_event ev;
		size_t body, n;

		n = tp_gw_client(&g, pend, pendlen, &body, &ev);
		assert_true(n <= pendlen);
		assert_true(body <= n);
		/* up_out first, then the body bytes */
		take();
		if (body > 0 && linked)
			append(up, &uplen, sizeof(up), pend, body);
		memmove(pend, pend + n, pendlen - n);
		pendlen -= n;
		on_event(ev);
		if (ev == TP_GW_CONNECT) {
			if (connect_mode == 1)
				ready(PEER);
			return;
		}
		if (ev == TP_GW_CLOSE)
			return;
		if (ev != TP_GW_DISCONNECT && n == 0)
			return;
	}
}

/* mta_send - the MTA writes s, in pieces of mstep bytes. */
static void
mta_send_n(const char *s, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t k = mstep == 0 || len - off < mstep ? len - off : mstep;

		append(pend, &pendlen, sizeof(pend), s + off, k);
		off += k;
		pump();
	}
}

static void
mta_send(const char *s)
{
	mta_send_n(s, strlen(s));
}

/* up_send - the upstream writes s, in pieces of ustep bytes. */
static void
up_send(const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len && linked) {
		size_t k = ustep == 0 || len - off < ustep ? len - off : ustep;
		enum tp_gw_event ev;
		int rc = tp_gw_upstream(&g, s + off, k, &ev);

		take();
		on_event(ev);
		if (rc < 0) {
			note('E');
			return;
		}
		off += k;
		pump();
	}
}

static void
ready(const char *peer)
{
	enum tp_gw_event ev;

	linked = true;
	tp_gw_up_ready(&g, peer, &ev);
	take();
	on_event(ev);
}

static void
reused(const char *peer, unsigned caps)
{
	enum tp_gw_event ev;

	linked = true;
	tp_gw_up_reused(&g, peer, caps, &ev);
	take();
	on_event(ev);
	pump();
}

static void
failed(const char *reply)
{
	enum tp_gw_event ev;

	tp_gw_up_failed(&g, reply, &ev);
	take();
	on_event(ev);
	pump();
}

static void
lost(const char *reply)
{
	enum tp_gw_event ev;

	linked = false;
	tp_gw_up_lost(&g, reply, &ev);
	take();
	on_event(ev);
	pump();
}

static void
start_size(unsigned long long size)
{
	conf.hostname = "gw.example";
	conf.helo = "gw.example.net";
	conf.size = size;
	tp_gw_init(&g, &conf);
	mtalen = mtaseen = uplen = upseen = pendlen = nev = 0;
	mta[0] = up[0] = events[0] = '\0';
	linked = ended = false;
	connect_mode = 0;
	conf.reuse = false;
	tp_gw_greeting(&g);
	take();
}

static void
start(void)
{
	start_size(0);
}

/* mta_is - what the MTA got since the last check. */
static void
mta_is(const char *want)
{
	if (strcmp(mta + mtaseen, want) != 0)
		fail_msg("MTA got\n\"%s\"\nwant\n\"%s\"", mta + mtaseen, want);
	mtaseen = mtalen;
}

/* up_is - what the upstream got since the last check. */
static void
up_is(const char *want)
{
	if (strcmp(up + upseen, want) != 0)
		fail_msg(
		    "upstream got\n\"%s\"\nwant\n\"%s\"", up + upseen, want);
	upseen = uplen;
}

/* ev_is - the events since the last check. */
static void
ev_is(const char *want)
{
	if (strcmp(events, want) != 0)
		fail_msg("events \"%s\", want \"%s\"", events, want);
	nev = 0;
	events[0] = '\0';
}

static void
phase_is(const char *want)
{
	const char *p = tp_gw_phase(&g);

	if (want == NULL && p != NULL)
		fail_msg("phase \"%s\", want none", p);
	if (want != NULL && (p == NULL || strcmp(p, want) != 0))
		fail_msg("phase \"%s\", want \"%s\"", p ? p : "(none)", want);
}

/*
 * session - greeted, EHLO'd, a transaction to dst.example whose first
 * RCPT reached an upstream offering caps (an EHLO reply) and was taken.
 */
static void
session(const char *caps)
{
	start();
	mta_send("EHLO mta.example\r\nMAIL FROM:<s@src.example>\r\n"
		 "RCPT TO:<r@dst.example>\r\n");
	ev_is("C");
	assert_string_equal(g.domain, "dst.example");
	ready(PEER);
	up_is("EHLO gw.example.net\r\n");
	up_send(caps);
	up_send("250 2.1.0 Ok\r\n");
	up_send("250 2.1.5 Ok\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK "250 2.1.5 Ok\r\n");
	up_is("MAIL FROM:<s@src.example>\r\nRCPT TO:<r@dst.example>\r\n");
	ev_is("");
}

/* deliver - DATA, a body and its end, accepted; the upstream stays. */
static void
deliver(void)
{
	mta_send("DATA\r\n");
	up_is("DATA\r\n");
	up_send("354 End data with <CR><LF>.<CR><LF>\r\n");
	mta_send("Subject: x\r\n\r\nbody\r\n.\r\n");
	up_is("Subject: x\r\n\r\nbody\r\n.\r\n");
	up_send("250 2.0.0 Ok: queued as 1\r\n");
	mta_is("354 End data with <CR><LF>.<CR><LF>\r\n"
	       "250 2.0.0 Ok: queued as 1\r\n");
	assert_true(tp_gw_idle(&g));
	assert_true(g.up_open);
	assert_string_equal(g.fixed, "");
}

static void
test_greeting_ehlo(void **state)
{
	(void)state;
	start();
	mta_is("220 gw.example ESMTP\r\n");
	mta_send("EHLO mta.example\r\nHELO mta.example\r\nehlo x\r\n");
	mta_is(OUR_EHLO "250 gw.example\r\n" OUR_EHLO);
	mta_send("EHLO\r\nHELO \r\n");
	mta_is("501 5.5.4 Syntax: EHLO hostname\r\n"
	       "501 5.5.4 Syntax: HELO hostname\r\n");
	/* SIZE only when set */
	start_size(10485760);
	mta_send("EHLO x\r\n");
	mta_is("220 gw.example ESMTP\r\n"
	       "250-gw.example\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n"
	       "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n"
	       "250 LIMITS RCPTDOMAINMAX=1\r\n");
	up_is("");
	ev_is("");
	assert_true(tp_gw_idle(&g));
	phase_is(NULL);
	assert_true(sizeof(struct tp_gw) < 56 * 1024);
}

static void
test_own_replies(void **state)
{
	(void)state;
	start();
	mta_is("220 gw.example ESMTP\r\n");
	mta_send("NOOP\r\nnoop x\r\nHELP\r\nRSET\r\nVRFY postmaster\r\n"
		 "STARTTLS\r\nAUTH PLAIN\r\nBDAT 10 LAST\r\nETRN x\r\n");
	mta_is(OK OK
	    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT\r\n" OK
	    "502 5.5.1 VRFY command is disabled\r\n"
	    "502 5.5.1 Error: command not implemented\r\n"
	    "502 5.5.1 Error: command not implemented\r\n"
	    "502 5.5.1 Error: command not implemented\r\n"
	    "502 5.5.1 Error: command not implemented\r\n");
	assert_int_equal(g.errors, 5);
	start();
	mta_send("XCLIENT ADDR=1.2.3.4\r\nXFORWARD NAME=x\r\nEXPN list\r\n"
		 "TURN\r\nFOO\r\nSTARTTLSX\r\n\r\nRSET x\r\n");
	mta_is("220 gw.example ESMTP\r\n"
	       "502 5.5.1 Error: command not implemented\r\n"
	       "502 5.5.1 Error: command not implemented\r\n"
	       "502 5.5.1 Error: command not implemented\r\n"
	       "502 5.5.1 Error: command not implemented\r\n"
	       "502 5.5.2 Error: command not recognized\r\n"
	       "502 5.5.2 Error: command not recognized\r\n"
	       "500 5.5.2 Error: bad syntax\r\n"
	       "501 5.5.4 Syntax: RSET\r\n");
	/* a NUL never reaches a command parser */
	start();
	mta_send_n("NOOP\0x\r\n", 8);
	mta_is("220 gw.example ESMTP\r\n500 5.5.2 Error: bad syntax\r\n");
	/* sequence errors */
	start();
	mta_send("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
		 "DATA\r\nDATA x\r\n");
	mta_is("220 gw.example ESMTP\r\n"
	       "503 5.5.1 Error: send HELO/EHLO first\r\n"
	       "503 5.5.1 Error: need MAIL command\r\n"
	       "503 5.5.1 Error: need RCPT command\r\n"
	       "501 5.5.4 Syntax: DATA\r\n");
	mta_send("HELO m\r\nMAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>"
		 "\r\nDATA\r\n");
	mta_is("250 gw.example\r\n" MAIL_OK
	       "503 5.5.1 Error: nested MAIL command\r\n" NO_RCPTS);
	up_is("");
	ev_is("");
}

static void
test_mail_syntax(void **state)
{
	static const char *const good[] = {
	    "MAIL FROM:<a@b.example>",
	    "mail from:<a@b.example>",
	    "MAIL FROM: <a@b.example>",
	    "MAIL FROM:   <a@b.example>  SIZE=1000 BODY=8BITMIME",
	    "MAIL FROM:<>",
	    "MAIL FROM:<\"a>b\"@c.example>",
	    "MAIL FROM:<j\xc3\xb6rg@b.example> SMTPUTF8",
	    "MAIL FROM:<a@b.example> X-UNKNOWN=1 FOO",
	};
	static const char *const bad[] = {
	    "MAIL",
	    "MAIL FROM",
	    "MAIL FROM:a@b.example",
	    "MAIL FROM:<a@b.example",
	    "MAIL FROM:<a@b.example>x",
	    "MAIL TO:<a@b.example>",
	    "MAIL FROM:<a\tb@c.example>",
	    "MAIL FROM:<a\rb@c.example>",
	    "MAIL FROM:<\"a>@b.example",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		start();
		mta_send("EHLO m\r\n");
		mta_send(good[i]);
		mta_send("\r\n");
		mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK);
		assert_string_equal(g.mail, good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		start();
		mta_send("EHLO m\r\n");
		mta_send(bad[i]);
		mta_send("\r\n");
		mta_is("220 gw.example ESMTP\r\n" OUR_EHLO
		       "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
	}
	/* SIZE: checked against the limit when there is one */
	start_size(1000);
	mta_send("EHLO m\r\nMAIL FROM:<a@b.example> SIZE=1001\r\n"
		 "MAIL FROM:<a@b.example> SIZE=99999999999999999999999\r\n"
		 "MAIL FROM:<a@b.example> SIZE=x1\r\n"
		 "MAIL FROM:<a@b.example> SIZE=\r\n"
		 "MAIL FROM:<a@b.example> SIZE=1000\r\n");
	mta_is("220 gw.example ESMTP\r\n"
	       "250-gw.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
	       "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n"
	       "250 LIMITS RCPTDOMAINMAX=1\r\n"
	       "552 5.3.4 Message size exceeds fixed limit\r\n"
	       "552 5.3.4 Message size exceeds fixed limit\r\n"
	       "501 5.5.4 Bad message size syntax\r\n"
	       "501 5.5.4 Bad message size syntax\r\n" MAIL_OK);
	/* the size limit's refusals are no bad commands */
	assert_int_equal(g.errors, 2);
	start();
	mta_send("EHLO m\r\nMAIL FROM:<a@b.example> SIZE=99999999999\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK);
	up_is("");
}

static void
test_rcpt_syntax(void **state)
{
	static const char *const bad_addr[] = {
	    "RCPT TO:<>",
	    "RCPT TO:<postmaster>",
	    "RCPT TO:<@dst.example>",
	    "RCPT TO:<a@[192.0.2.1]>",
	    "RCPT TO:<a@[IPv6:2001:db8::1]>",
	    "RCPT TO:<a@>",
	    "RCPT TO:<a@.>",
	    "RCPT TO:<a@-dst.example>",
	    "RCPT TO:<a@dst-.example>",
	    "RCPT TO:<a@dst..example>",
	    "RCPT TO:<a@192.0.2.1>",
	    "RCPT TO:<a@d\xc3\xa4st.example>",
	    "RCPT TO:<a@dst.example..>",
	    "RCPT TO:<a@dst!example>",
	    "RCPT TO:<\"a@b\">",
	};
	static const char *const bad_syntax[] = {
	    "RCPT",
	    "RCPT TO",
	    "RCPT TO:a@dst.example",
	    "RCPT FROM:<a@dst.example>",
	    "RCPT TO:<a@dst.example>x",
	    "RCPT TO:<a@dst.example",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad_addr) / sizeof(bad_addr[0]); i++) {
		start();
		mta_send("EHLO m\r\nMAIL FROM:<>\r\n");
		mta_send(bad_addr[i]);
		mta_send("\r\n");
		mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK
		       "501 5.1.3 Bad recipient address syntax\r\n");
		ev_is("");
	}
	for (size_t i = 0; i < sizeof(bad_syntax) / sizeof(bad_syntax[0]);
	     i++) {
		start();
		mta_send("EHLO m\r\nMAIL FROM:<>\r\n");
		mta_send(bad_syntax[i]);
		mta_send("\r\n");
		mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK
		       "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
		ev_is("");
	}
	/* the domain: lower case, no trailing dot; source routes, quotes */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<>\r\nrcpt to: <A.B@Dst.EXAMPLE.>\r\n");
	ev_is("C");
	assert_string_equal(g.domain, "dst.example");
	start();
	mta_send("EHLO m\r\nMAIL FROM:<>\r\n"
		 "RCPT TO:<@relay.example:\"x@y\"@mx_1.Dst.example>\r\n");
	ev_is("C");
	assert_string_equal(g.domain, "mx_1.dst.example");
	up_is("");
}

/* The first RCPT reaches the destination; the transaction goes through. */
static void
test_connect_and_deliver(void **state)
{
	(void)state;
	start();
	mta_send("EHLO mta.example\r\nMAIL FROM:<s@src.example> BODY=8BITMIME"
		 "\r\nRCPT TO:<r@Dst.example>\r\nRCPT TO:<r2@dst.example>\r\n"
		 "DATA\r\n");
	ev_is("C");
	assert_string_equal(g.domain, "dst.example");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK);
	/* nothing more is taken while the destination is being reached */
	assert_int_equal(pendlen,
	    strlen("RCPT TO:<r2@dst.example>\r\n"
		   "DATA\r\n"));
	assert_false(tp_gw_idle(&g));
	phase_is(NULL);
	ready(PEER);
	up_is("EHLO gw.example.net\r\n");
	phase_is("performing the EHLO handshake");
	pump();
	assert_int_equal(pendlen,
	    strlen("RCPT TO:<r2@dst.example>\r\n"
		   "DATA\r\n"));
	up_send(EHLO_FULL);
	assert_true(g.up_open);
	assert_int_equal(g.up_caps,
	    TP_GW_UP_8BITMIME | TP_GW_UP_SMTPUTF8 | TP_GW_UP_SIZE |
		TP_GW_UP_DSN | TP_GW_UP_PIPE);
	assert_string_equal(g.fixed, "dst.example");
	assert_string_equal(g.up_domain, "dst.example");
	/* MAIL, this RCPT, then the next RCPT and DATA, pipelined */
	up_is("MAIL FROM:<s@src.example> BODY=8BITMIME\r\n"
	      "RCPT TO:<r@Dst.example>\r\nRCPT TO:<r2@dst.example>\r\n"
	      "DATA\r\n");
	phase_is("sending MAIL FROM");
	mta_is("");
	up_send("250 2.1.0 Ok\r\n");
	phase_is("sending RCPT TO");
	up_send("250 2.1.5 Ok\r\n550 5.1.1 <r2@dst.example>: Recipient "
		"address rejected\r\n");
	phase_is("sending DATA command");
	up_send("354 End data with <CR><LF>.<CR><LF>\r\n");
	mta_is("250 2.1.5 Ok\r\n550 5.1.1 <r2@dst.example>: Recipient "
	       "address rejected\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	phase_is("sending message body");
	mta_send("Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
	up_is("Subject: x\r\n\r\n..dot\r\n.\r\n");
	phase_is("sending end of data -- message may be sent more than once");
	/* the QUIT waits: no domain is fixed while the upstream owes */
	assert_int_equal(pendlen, 6);
	ev_is("");
	up_send("250 2.0.0 Ok: queued as ABC\r\n");
	mta_is("250 2.0.0 Ok: queued as ABC\r\n221 2.0.0 Bye\r\n");
	up_is("QUIT\r\n");
	ev_is("X");
	phase_is("sending QUIT");
}

/* MAIL RCPT RCPT RCPT DATA in one write: one reply each, in order. */
static void
test_pipelined_burst(void **state)
{
	(void)state;
	session(EHLO_FULL);
	deliver();
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<a@dst.example>\r\n"
		 "RCPT TO:<b@other.example>\r\nNOOP\r\n"
		 "RCPT TO:<c@dst.example>\r\nRCPT TO:<d@dst.example>\r\n"
		 "DATA\r\nSubject: y\r\n");
	ev_is("");
	mta_is(MAIL_OK);
	up_is("MAIL FROM:<s@src.example>\r\nRCPT TO:<a@dst.example>\r\n"
	      "RCPT TO:<c@dst.example>\r\nRCPT TO:<d@dst.example>\r\n"
	      "DATA\r\n");
	up_send("250 2.1.0 Ok\r\n250 2.1.5 a\r\n");
	mta_is("250 2.1.5 a\r\n" R452 OK);
	up_send("450 4.2.0 c busy\r\n250 2.1.5 d\r\n");
	mta_is("450 4.2.0 c busy\r\n250 2.1.5 d\r\n");
	/* the body waits for the 354 */
	assert_int_equal(pendlen, strlen("Subject: y\r\n"));
	up_send("354 go\r\n");
	up_is("Subject: y\r\n");
	mta_send("\r\nz\r\n.\r\n");
	up_send("250 2.0.0 Ok: queued as 2\r\n");
	mta_is("354 go\r\n250 2.0.0 Ok: queued as 2\r\n");
	up_is("\r\nz\r\n.\r\n");
	ev_is("");
}

/* The first RCPT of a transaction to a new destination, pipelined. */
static void
test_pipelined_connect(void **state)
{
	(void)state;
	start();
	mta_send("EHLO m\r\nMAIL FROM:<s@src.example>\r\n"
		 "RCPT TO:<a@dst.example>\r\nRCPT TO:<b@other.example>\r\n"
		 "RCPT TO:<c@dst.example>\r\nDATA\r\n");
	ev_is("C");
	ready(PEER);
	up_send(EHLO_PIPE "250 2.1.0 Ok\r\n250 2.1.5 a\r\n");
	up_is("EHLO gw.example.net\r\nMAIL FROM:<s@src.example>\r\n"
	      "RCPT TO:<a@dst.example>\r\nRCPT TO:<c@dst.example>\r\n"
	      "DATA\r\n");
	up_send("250 2.1.5 c\r\n554 5.5.1 no\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK
	       "250 2.1.5 a\r\n" R452 "250 2.1.5 c\r\n554 5.5.1 no\r\n");
	/* a refused DATA leaves the transaction open, as smtpd does */
	mta_send("RCPT TO:<e@dst.example>\r\n");
	up_is("RCPT TO:<e@dst.example>\r\n");
	ev_is("");
}

static void
test_two_domains(void **state)
{
	(void)state;
	session(EHLO_FULL);
	mta_send("RCPT TO:<x@other.example>\r\nRCPT TO:<y@DST.example>\r\n");
	up_is("RCPT TO:<y@DST.example>\r\n");
	up_send("250 2.1.5 y\r\n");
	mta_is(R452 "250 2.1.5 y\r\n");
	ev_is("");
	/* not counted as errors */
	assert_int_equal(g.errors, 0);
}

/* A later transaction to another domain: QUIT, DISCONNECT, CONNECT. */
static void
test_other_domain_next(void **state)
{
	(void)state;
	session(EHLO_FULL);
	deliver();
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<o@other.example>\r\n"
		 "DATA\r\n");
	ev_is("DC");
	up_is("QUIT\r\n");
	mta_is(MAIL_OK);
	assert_false(g.up_open);
	assert_string_equal(g.domain, "other.example");
	ready("mx.other.example[192.0.2.2]");
	up_send(EHLO_PIPE);
	up_is("EHLO gw.example.net\r\nMAIL FROM:<s@src.example>\r\n"
	      "RCPT TO:<o@other.example>\r\nDATA\r\n");
	up_send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
	mta_is("250 2.1.5 Ok\r\n354 go\r\n");
	/* the old upstream's 221 is never the new one's business */
	ev_is("");
}

/* The DISCONNECT'd RCPT began in an earlier read: held, then CONNECT. */
static void
test_other_domain_split_line(void **state)
{
	(void)state;
	session(EHLO_FULL);
	deliver();
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<o@oth");
	ev_is("");
	mta_send("er.example>\r\n");
	ev_is("DC");
	assert_int_equal(pendlen, 0);
	up_is("QUIT\r\n");
	assert_string_equal(g.domain, "other.example");
	failed("451 4.4.1 Connection refused by mx.other.example"
	       "[192.0.2.2]:25");
	mta_is(MAIL_OK "451 4.4.1 Connection refused by mx.other.example"
		       "[192.0.2.2]:25\r\n");
}

/* Same domain: the idle upstream is reused, no CONNECT. */
static void
test_same_domain_reuse(void **state)
{
	(void)state;
	session(EHLO_FULL);
	deliver();
	mta_send("MAIL FROM:<t@src.example>\r\nRCPT TO:<z@dst.example>\r\n");
	ev_is("");
	up_is("MAIL FROM:<t@src.example>\r\nRCPT TO:<z@dst.example>\r\n");
	up_send("250 2.1.0 Ok\r\n250 2.1.5 z\r\n");
	mta_is(MAIL_OK "250 2.1.5 z\r\n");
	/* RSET: MAIL went upstream, so RSET does too */
	mta_send("RSET\r\n");
	up_is("RSET\r\n");
	phase_is("sending RSET");
	up_send("250 2.0.0 Ok\r\n");
	mta_is(OK);
	mta_send("MAIL FROM:<u@src.example>\r\nRSET\r\n");
	mta_is(MAIL_OK OK);
	up_is("");
	ev_is("");
}

static void
test_up_failed(void **state)
{
	static const char *const texts[] = {
	    "451 4.4.1 Connection refused by mx.dst.example[192.0.2.1]:25",
	    "451 4.7.5 Server certificate not verified",
	    "451 4.4.3 Host or domain name lookup failure",
	    "556 5.1.10 Recipient address rejected: Domain dst.example does "
	    "not accept mail (nullMX)",
	    "550 5.4.4 Recipient address rejected: Host or domain name not "
	    "found",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char want[1024];

		start();
		mta_send("EHLO m\r\nMAIL FROM:<>\r\nRCPT TO:<a@dst.example>\r\n"
			 "RCPT TO:<b@other.example>\r\nDATA\r\n");
		ev_is("C");
		failed(texts[i]);
		/* nothing fixed: the next RCPT tries its own domain */
		ev_is("C");
		assert_string_equal(g.domain, "other.example");
		failed(texts[i]);
		snprintf(want, sizeof(want),
		    "220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK
		    "%s\r\n%s\r\n" NO_RCPTS,
		    texts[i], texts[i]);
		mta_is(want);
		up_is("");
		assert_int_equal(g.errors, 0);
	}
}

/* Replies that cannot answer as they are: made 4xx lines. */
static void
test_odd_replies(void **state)
{
	(void)state;
	/* the event layer's text, not a reply */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<>\r\nRCPT TO:<a@dst.example>\r\n"
		 "RCPT TO:<b@dst.example>\r\nRCPT TO:<c@dst.example>\r\n");
	failed("Connection refused\r\n250 ok");
	failed(NULL);
	failed("250 2.1.5 Ok");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK
	       "451 4.3.0 Connection refused  250 ok\r\n"
	       "451 4.4.2 Lost connection with the destination\r\n"
	       "451 4.3.0 250 2.1.5 Ok\r\n");
	ev_is("CCC");
	/* a 3xx to MAIL refuses the transaction with a 451 */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<>\r\nRCPT TO:<a@dst.example>\r\n");
	ready(PEER);
	up_send(EHLO_PIPE);
	up_send("354 huh\r\n503 5.5.1 need MAIL\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK "451 huh\r\n");
}

/* MAIL refused upstream: its reply answers every RCPT. */
static void
test_mail_refused(void **state)
{
	(void)state;
	start();
	mta_send("EHLO m\r\nMAIL FROM:<s@src.example>\r\n"
		 "RCPT TO:<a@dst.example>\r\nRCPT TO:<b@dst.example>\r\n"
		 "DATA\r\n");
	ev_is("C");
	ready(PEER);
	up_send(EHLO_PIPE);
	up_is("EHLO gw.example.net\r\nMAIL FROM:<s@src.example>\r\n"
	      "RCPT TO:<a@dst.example>\r\nRCPT TO:<b@dst.example>\r\n"
	      "DATA\r\n");
	mtaseen = mtalen;
	up_send("553-5.7.1 <s@src.example>: Sender address rejected\r\n"
		"553 5.7.1 second line\r\n"
		"503 5.5.1 Error: need MAIL command\r\n"
		"503 5.5.1 Error: need MAIL command\r\n"
		"554 5.5.1 Error: no valid recipients\r\n");
	mta_is("553 5.7.1 <s@src.example>: Sender address rejected\r\n"
	       "553 5.7.1 <s@src.example>: Sender address rejected\r\n"
	       "554 5.5.1 Error: no valid recipients\r\n");
	/* later RCPTs: the same, never sent; DATA: no recipients */
	mta_send("RCPT TO:<c@dst.example>\r\nRCPT TO:<d@other.example>\r\n"
		 "DATA\r\nRSET\r\n");
	mta_is("553 5.7.1 <s@src.example>: Sender address rejected\r\n" R452
		NO_RCPTS);
	up_is("RSET\r\n");
	up_send("250 2.0.0 Ok\r\n");
	mta_is(OK);
	/* the next transaction starts clean on the same upstream */
	mta_send("MAIL FROM:<t@src.example>\r\nRCPT TO:<e@dst.example>\r\n");
	up_is("MAIL FROM:<t@src.example>\r\nRCPT TO:<e@dst.example>\r\n");
	up_send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	mta_is(MAIL_OK "250 2.1.5 Ok\r\n");
	ev_is("");
}

/* MAIL refused with 421: 451 to every RCPT; the upstream is gone. */
static void
test_mail_refused_421(void **state)
{
	(void)state;
	start();
	mta_send("EHLO m\r\nMAIL FROM:<s@src.example>\r\n"
		 "RCPT TO:<a@dst.example>\r\nRCPT TO:<b@dst.example>\r\n");
	ready(PEER);
	up_send(EHLO_PIPE);
	mtaseen = mtalen;
	upseen = uplen;
	up_send("421 4.7.0 mx.dst.example Error: too many connections\r\n");
	ev_is("CD");
	assert_false(g.up_open);
	mta_is("451 4.7.0 mx.dst.example Error: too many connections\r\n"
	       "451 4.7.0 mx.dst.example Error: too many connections\r\n");
	mta_send("RCPT TO:<c@dst.example>\r\nDATA\r\nRSET\r\n");
	mta_is(
	    "451 4.7.0 mx.dst.example Error: too many connections\r\n" NO_RCPTS
		OK);
	/* a new transaction reaches the destination again */
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<a@dst.example>\r\n");
	ev_is("C");
	up_is("");
}

/* Parameters the upstream did not offer are dropped (Postfix). */
static void
test_params(void **state)
{
	static const char mail[] =
	    "MAIL FROM:<s@src.example> BODY=8BITMIME  SIZE=100 RET=HDRS "
	    "ENVID=x1 AUTH=<> X-FOO=1 smtputf8\r\n";
	static const char rcpt[] =
	    "RCPT TO:<r@dst.example> NOTIFY=SUCCESS,FAILURE "
	    "ORCPT=rfc822;r@dst.example X-BAR\r\n";

	(void)state;
	start();
	mta_send("EHLO m\r\n");
	mta_send(mail);
	mta_send(rcpt);
	ready(PEER);
	up_send(EHLO_PIPE);
	up_is("EHLO gw.example.net\r\nMAIL FROM:<s@src.example> X-FOO=1\r\n"
	      "RCPT TO:<r@dst.example> X-BAR\r\n");
	/* offered: kept as written, but AUTH */
	start();
	mta_send("EHLO m\r\n");
	mta_send(mail);
	mta_send(rcpt);
	ready(PEER);
	up_send(EHLO_FULL);
	up_is("EHLO gw.example.net\r\nMAIL FROM:<s@src.example> "
	      "BODY=8BITMIME  SIZE=100 RET=HDRS ENVID=x1 X-FOO=1 "
	      "smtputf8\r\n"
	      "RCPT TO:<r@dst.example> NOTIFY=SUCCESS,FAILURE "
	      "ORCPT=rfc822;r@dst.example X-BAR\r\n");
	mtaseen = mtalen;
	up_send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	mta_is("250 2.1.5 Ok\r\n");
}

/* The first RCPT's own parameters go with it too. */
static void
test_params_rcpt(void **state)
{
	(void)state;
	session(EHLO_PIPE);
	mta_send("RCPT TO:<r2@dst.example> NOTIFY=NEVER X=1 ORCPT=x\r\n");
	up_is("RCPT TO:<r2@dst.example> X=1\r\n");
	session(EHLO_FULL);
	mta_send("RCPT TO:<r2@dst.example> NOTIFY=NEVER X=1 ORCPT=x\r\n");
	up_is("RCPT TO:<r2@dst.example> NOTIFY=NEVER X=1 ORCPT=x\r\n");
}

#define UTF8_NO                                                                \
	"550 5.6.7 SMTPUTF8 is required, but was not offered by host " PEER    \
	"\r\n"

static void
test_smtputf8(void **state)
{
	(void)state;
	/* a non-ASCII sender: nothing can go to this upstream */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<j\xc3\xb6rg@src.example> SMTPUTF8\r\n"
		 "RCPT TO:<r@dst.example>\r\nRCPT TO:<s@dst.example>\r\n"
		 "DATA\r\nRSET\r\n");
	ready(PEER);
	up_send(EHLO_PIPE);
	up_is("EHLO gw.example.net\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK UTF8_NO UTF8_NO
		NO_RCPTS OK);
	/* a non-ASCII recipient: that one refused, the rest go */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<s@src.example> SMTPUTF8\r\n"
		 "RCPT TO:<j\xc3\xb6rg@dst.example>\r\n"
		 "RCPT TO:<r@dst.example>\r\n");
	ready(PEER);
	up_send(EHLO_PIPE);
	up_is("EHLO gw.example.net\r\nMAIL FROM:<s@src.example>\r\n"
	      "RCPT TO:<r@dst.example>\r\n");
	up_send("250 2.1.0 Ok\r\n250 2.1.5 r\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK UTF8_NO
	       "250 2.1.5 r\r\n");
	mta_send("RCPT TO:<\xc3\xa5@dst.example>\r\n");
	mta_is(UTF8_NO);
	/* an upstream with SMTPUTF8 gets it all as written */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<j\xc3\xb6rg@src.example> SMTPUTF8\r\n"
		 "RCPT TO:<\xc3\xa5@dst.example>\r\n");
	ready(PEER);
	up_send(EHLO_FULL);
	up_is("EHLO gw.example.net\r\n"
	      "MAIL FROM:<j\xc3\xb6rg@src.example> SMTPUTF8\r\n"
	      "RCPT TO:<\xc3\xa5@dst.example>\r\n");
	/* no SMTPUTF8 asked for: passed on, the upstream decides */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<j\xc3\xb6rg@src.example>\r\n"
		 "RCPT TO:<r@dst.example>\r\n");
	ready(PEER);
	up_send(EHLO_PIPE);
	up_is("EHLO gw.example.net\r\nMAIL FROM:<j\xc3\xb6rg@src.example>\r\n"
	      "RCPT TO:<r@dst.example>\r\n");
}

/* An upstream without PIPELINING gets one command at a time. */
static void
test_no_pipelining(void **state)
{
	(void)state;
	start();
	mta_send("EHLO m\r\nMAIL FROM:<s@src.example> BODY=8BITMIME\r\n"
		 "RCPT TO:<a@dst.example>\r\nRCPT TO:<b@dst.example>\r\n"
		 "NOOP\r\nDATA\r\n");
	ready(PEER);
	up_send(EHLO_NONE);
	assert_int_equal(g.up_caps, 0);
	up_is("EHLO gw.example.net\r\nMAIL FROM:<s@src.example>\r\n");
	phase_is("sending MAIL FROM");
	up_send("250 2.1.0 Ok\r\n");
	up_is("RCPT TO:<a@dst.example>\r\n");
	up_send("250 2.1.5 a\r\n");
	up_is("RCPT TO:<b@dst.example>\r\n");
	up_send("250 2.1.5 b\r\n");
	up_is("DATA\r\n");
	up_send("354 go\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK
	       "250 2.1.5 a\r\n250 2.1.5 b\r\n" OK "354 go\r\n");
	/* MAIL refused: the held RCPT gets the refusal, never sent */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<s@src.example>\r\n"
		 "RCPT TO:<a@dst.example>\r\nRCPT TO:<b@dst.example>\r\n");
	ready(PEER);
	up_send(EHLO_NONE);
	up_send("452 4.3.1 Insufficient system storage\r\n");
	up_is("EHLO gw.example.net\r\nMAIL FROM:<s@src.example>\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK
	       "452 4.3.1 Insufficient system storage\r\n"
	       "452 4.3.1 Insufficient system storage\r\n");
}

/* EHLO refused: HELO; HELO refused: the RCPT gets its reply. */
static void
test_helo_fallback(void **state)
{
	(void)state;
	start();
	mta_send("EHLO m\r\nMAIL FROM:<s@src.example> SIZE=10\r\n"
		 "RCPT TO:<a@dst.example>\r\n");
	ready(PEER);
	up_send("502 5.5.2 Error: command not recognized\r\n");
	up_is("EHLO gw.example.net\r\nHELO gw.example.net\r\n");
	phase_is("performing the HELO handshake");
	up_send("250 mx.dst.example\r\n");
	up_is("MAIL FROM:<s@src.example>\r\n");
	up_send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	up_is("RCPT TO:<a@dst.example>\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK "250 2.1.5 Ok\r\n");

	start();
	mta_send("EHLO m\r\nMAIL FROM:<s@src.example>\r\n"
		 "RCPT TO:<a@dst.example>\r\n");
	ready(PEER);
	up_send("500 unknown\r\n554 5.7.1 go away\r\n");
	up_is("EHLO gw.example.net\r\nHELO gw.example.net\r\nQUIT\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK
	       "554 5.7.1 go away\r\n");
	ev_is("CD");
	assert_false(g.up_open);
	assert_string_equal(g.fixed, "");
	/* nothing fixed: the next RCPT tries again */
	mta_send("RCPT TO:<b@dst.example>\r\n");
	ev_is("C");
	/* a 421 to EHLO: 451, nothing fixed */
	ready(PEER);
	up_send("421 4.3.2 Service shutting down\r\n");
	mta_is("451 4.3.2 Service shutting down\r\n");
	ev_is("D");
	assert_string_equal(g.fixed, "");
	mta_send("RCPT TO:<b@dst.example>\r\n");
	ev_is("C");
}

/* An upstream 421 reaches the MTA as 451; the upstream is gone. */
static void
test_upstream_421(void **state)
{
	(void)state;
	session(EHLO_FULL);
	mta_send("RCPT TO:<b@dst.example>\r\nNOOP\r\nRCPT TO:<c@dst.example>"
		 "\r\n");
	up_send("421-4.4.2 mx.dst.example Error: timeout exceeded\r\n"
		"421 4.4.2 closing\r\n");
	mta_is("451-4.4.2 mx.dst.example Error: timeout exceeded\r\n"
	       "451 4.4.2 closing\r\n" OK
	       "451 4.4.2 mx.dst.example Error: timeout exceeded\r\n");
	ev_is("D");
	assert_false(g.up_open);
	/* the rest of the transaction: 4xx, never 5xx */
	mta_send("RCPT TO:<d@dst.example>\r\nDATA\r\nRSET\r\n");
	mta_is("451 4.4.2 mx.dst.example Error: timeout exceeded\r\n"
	       "451 4.4.2 mx.dst.example Error: timeout exceeded\r\n" OK);
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<a@dst.example>\r\n");
	ev_is("C");

	/* 421 to DATA and to the end of data */
	session(EHLO_FULL);
	mta_send("DATA\r\n");
	up_send("421 4.3.0 no\r\n");
	mta_is("451 4.3.0 no\r\n");
	ev_is("D");
	session(EHLO_FULL);
	mta_send("DATA\r\n");
	up_send("354 go\r\n");
	mta_send("x\r\n.\r\n");
	up_send("421 4.3.0 out of memory\r\n");
	mta_is("354 go\r\n451 4.3.0 out of memory\r\n");
	ev_is("D");
	assert_true(tp_gw_idle(&g));
}

/* Replies nobody asked for. */
static void
test_unsolicited(void **state)
{
	(void)state;
	/* an idle upstream's 421: just gone */
	session(EHLO_FULL);
	deliver();
	up_send("421 4.4.2 mx.dst.example Error: timeout exceeded\r\n");
	mta_is("");
	ev_is("D");
	assert_false(g.up_open);
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<a@dst.example>\r\n");
	ev_is("C");
	/* anything else breaks SMTP */
	session(EHLO_FULL);
	deliver();
	up_send("250 what\r\n");
	ev_is("E");
	lost("451 4.4.2 " PEER ": Lost connection");
	mta_is("");
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<a@dst.example>\r\n");
	ev_is("C");
	/* malformed, too long */
	session(EHLO_FULL);
	mta_send("RCPT TO:<b@dst.example>\r\n");
	up_send("25O ok\r\n");
	ev_is("E");
	lost(LOST);
	mta_is(LOST "\r\n");
	{
		static char longreply[3000];

		session(EHLO_FULL);
		mta_send("RCPT TO:<b@dst.example>\r\n");
		memcpy(longreply, "250 ", 4);
		memset(longreply + 4, 'x', sizeof(longreply) - 5);
		up_send(longreply);
		ev_is("E");
		lost(LOST);
		mta_is(LOST "\r\n");
	}
	/* a 421 in the middle of a body: its end gets the 451 */
	session(EHLO_FULL);
	mta_send("DATA\r\n");
	up_send("354 go\r\n");
	mta_send("a\r\n");
	up_send("421 4.4.2 timeout\r\n");
	ev_is("D");
	mta_send("b\r\n.\r\nNOOP\r\n");
	mta_is("354 go\r\n451 4.4.2 timeout\r\n" OK);
	up_is("DATA\r\na\r\n");
}

/* The upstream lost while RCPTs wait. */
static void
test_lost_mid_rcpt(void **state)
{
	(void)state;
	session(EHLO_FULL);
	mta_send("RCPT TO:<b@dst.example>\r\nNOOP\r\nRCPT TO:<c@dst.example>"
		 "\r\n");
	phase_is("sending RCPT TO");
	assert_false(tp_gw_idle(&g));
	lost(LOST);
	mta_is(LOST "\r\n" OK LOST "\r\n");
	assert_false(g.up_open);
	phase_is(NULL);
	assert_true(tp_gw_idle(&g));
	/* r@ was accepted: DATA must not look permanent */
	mta_send("RCPT TO:<d@dst.example>\r\nRCPT TO:<e@other.example>\r\n"
		 "DATA\r\nRSET\r\n");
	mta_is(LOST "\r\n" R452 LOST "\r\n" OK);
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<a@dst.example>\r\n");
	ev_is("C");
	/* lost during the EHLO handshake: nothing fixed */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<>\r\nRCPT TO:<a@dst.example>\r\n");
	ready(PEER);
	lost("451 4.4.2 " PEER
	     ": Lost connection while performing the EHLO handshake");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK "451 4.4.2 " PEER
	       ": Lost connection while performing the EHLO handshake\r\n");
	mta_send("DATA\r\nRCPT TO:<b@other.example>\r\n");
	mta_is(NO_RCPTS);
	ev_is("CC");
	/* a lost upstream with nothing waiting and no transaction */
	session(EHLO_FULL);
	deliver();
	lost("451 4.4.2 gone");
	mta_is("");
	mta_send("NOOP\r\n");
	mta_is(OK);
}

/* The upstream lost in the middle of a body: eaten up to its end. */
static void
test_lost_mid_body(void **state)
{
	(void)state;
	session(EHLO_FULL);
	mta_send("DATA\r\n");
	up_send("354 go\r\n");
	mta_send("Subject: x\r\n\r\nhalf");
	up_is("DATA\r\nSubject: x\r\n\r\nhalf");
	phase_is("sending message body");
	lost("451 4.4.2 " PEER ": Lost connection while sending message body");
	mta_is("354 go\r\n");
	mstep = 1;
	mta_send(" a line\r\n..\r\n.\r\nMAIL FROM:<a@src.example>\r\n");
	mstep = 0;
	mta_is("451 4.4.2 " PEER
	       ": Lost connection while sending message body\r\n" MAIL_OK);
	up_is("");
	mta_send("RCPT TO:<a@dst.example>\r\n");
	ev_is("C");
	/* lost while the end of data waits for its reply */
	session(EHLO_FULL);
	mta_send("DATA\r\n");
	up_send("354 go\r\n");
	mta_send("x\r\n.\r\n");
	phase_is("sending end of data -- message may be sent more than once");
	lost("451 4.4.2 " PEER ": Lost connection while sending end of data "
	     "-- message may be sent more than once");
	mta_is("354 go\r\n451 4.4.2 " PEER
	       ": Lost connection while sending end of data -- message may "
	       "be sent more than once\r\n");
}

/* A body byte by byte: dot-stuffing, a split end line, bare LF. */
static void
test_body_bytewise(void **state)
{
	static const char *const bodies[] = {
	    "..a\r\n.b\r\n. \r\n\r\n..\r\n.\r\n",
	    ".\r\n",
	    "x\r\n.\rx\r\n.\r\r\n.\r\n",
	    "bare\n.\n",
	    "line\r\n.\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		session(EHLO_FULL);
		mta_send("DATA\r\n");
		up_send("354 go\r\n");
		up_is("DATA\r\n");
		mstep = 1;
		mta_send(bodies[i]);
		mta_send("NOOP\r\n");
		mstep = 0;
		up_is(bodies[i]);
		up_send("250 2.0.0 Ok: queued\r\n");
		mta_is("354 go\r\n250 2.0.0 Ok: queued\r\n" OK);
		up_is("");
	}
}

/* Lines over 2048 octets: 500 at once, the third costs the session. */
static void
test_long_lines(void **state)
{
	static char line[2100];

	(void)state;
	start();
	mta_is("220 gw.example ESMTP\r\n");
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', 2043);
	mta_send_n(line, 2048);
	mta_send("\r\n");
	mta_is(OK);
	memset(line + 5, 'x', 2044); /* 2049 octets */
	mta_send_n(line, 2049);
	mta_is("500 5.5.2 Line too long\r\n");
	mta_send("yyy\r\nNOOP\r\n");
	mta_is(OK);
	mta_send_n(line, 2049);
	mta_send("\nNOOP\r\n");
	mta_is("500 5.5.2 Line too long\r\n" OK);
	assert_int_equal(g.errors, 0);
	mta_send_n(line, 2049);
	mta_is(TOO_MANY);
	ev_is("X");
}

/* The 10th bad command: 421, and nothing more is read. */
static void
test_error_limit(void **state)
{
	(void)state;
	start();
	mta_send("FOO\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<a@b.example>\r\n"
		 "DATA\r\nEHLO\r\nVRFY x\r\n\r\nSTARTTLS\r\nEHLO m\r\n"
		 "MAIL FROM:x\r\nNOOP\r\nRCPT TO:<a>\r\nNOOP\r\n");
	mta_is("220 gw.example ESMTP\r\n"
	       "502 5.5.2 Error: command not recognized\r\n"
	       "503 5.5.1 Error: send HELO/EHLO first\r\n"
	       "503 5.5.1 Error: need MAIL command\r\n"
	       "503 5.5.1 Error: need RCPT command\r\n"
	       "501 5.5.4 Syntax: EHLO hostname\r\n"
	       "502 5.5.1 VRFY command is disabled\r\n"
	       "500 5.5.2 Error: bad syntax\r\n"
	       "502 5.5.1 Error: command not implemented\r\n" OUR_EHLO
	       "501 5.5.4 Syntax: MAIL FROM:<address>\r\n" OK TOO_MANY);
	ev_is("X");
	assert_int_equal(pendlen, strlen("NOOP\r\n"));
	/* with an upstream open, it gets a QUIT */
	session(EHLO_FULL);
	for (int i = 0; i < 10; i++)
		mta_send("FOO\r\n");
	up_is("QUIT\r\n");
	ev_is("X");
}

static void
test_quit(void **state)
{
	(void)state;
	start();
	mta_send("QUIT\r\nNOOP\r\n");
	mta_is("220 gw.example ESMTP\r\n221 2.0.0 Bye\r\n");
	ev_is("X");
	assert_int_equal(pendlen, 6);
	up_is("");
	assert_true(tp_gw_idle(&g));
	session(EHLO_FULL);
	mta_send("QUIT\r\n");
	mta_is("221 2.0.0 Bye\r\n");
	up_is("QUIT\r\n");
	ev_is("X");
	/* 221 after every earlier reply */
	session(EHLO_FULL);
	mta_send("RCPT TO:<b@dst.example>\r\nQUIT\r\nNOOP\r\n");
	up_is("RCPT TO:<b@dst.example>\r\nQUIT\r\n");
	mta_is("");
	ev_is("");
	up_send("250 2.1.5 b\r\n221 2.0.0 Bye\r\n");
	mta_is("250 2.1.5 b\r\n221 2.0.0 Bye\r\n");
	ev_is("X");
}

/* conf->reuse: the upstream of a finished transaction gets RSET, not
 * QUIT, and is parked on its 250; a parked one comes back without EHLO. */
static void
test_park_other_domain(void **state)
{
	(void)state;
	session(EHLO_FULL);
	conf.reuse = true;
	deliver();
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<o@other.example>\r\n");
	up_is("RSET\r\n");
	ev_is("");
	mta_is(MAIL_OK);
	phase_is("sending RSET");
	assert_true(tp_gw_parking(&g));
	/* nothing is read while the RSET is out */
	mta_send("NOOP\r\n");
	mta_is("");
	up_send(OK);
	ev_is("PC");
	assert_false(tp_gw_parking(&g));
	assert_int_equal(g.parked_caps,
	    TP_GW_UP_PIPE | TP_GW_UP_SIZE | TP_GW_UP_8BITMIME | TP_GW_UP_DSN |
		TP_GW_UP_SMTPUTF8);
	assert_false(g.up_open);
	mta_is("");
	/* the RSET's 250 is ours, never the MTA's */
	assert_string_equal(g.domain, "other.example");
	reused("mx.other.example[192.0.2.2]", TP_GW_UP_PIPE);
	up_is("MAIL FROM:<s@src.example>\r\nRCPT TO:<o@other.example>\r\n");
	up_send("250 2.1.0 Ok\r\n250 2.1.5 o\r\n");
	mta_is("250 2.1.5 o\r\n" OK);
	ev_is("");
	assert_true(g.up_open);
	assert_string_equal(g.fixed, "other.example");
}

/* RSET refused, or 421: QUIT and DISCONNECT, as without reuse. */
static void
test_park_refused(void **state)
{
	(void)state;
	session(EHLO_FULL);
	conf.reuse = true;
	deliver();
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<o@other.example>\r\n");
	up_is("RSET\r\n");
	up_send("500 5.5.1 no\r\n");
	ev_is("DC");
	up_is("QUIT\r\n");
	assert_false(g.up_open);
	mta_is(MAIL_OK);
	failed("451 4.4.1 Connection refused by mx.other.example"
	       "[192.0.2.2]:25");
	mta_is("451 4.4.1 Connection refused by mx.other.example"
	       "[192.0.2.2]:25\r\n");

	session(EHLO_FULL);
	conf.reuse = true;
	deliver();
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<o@other.example>\r\n");
	up_is("RSET\r\n");
	up_send("421 4.3.2 going down\r\n");
	ev_is("DC");
	mta_is(MAIL_OK);
	assert_false(tp_gw_parking(&g));
}

/* QUIT parks too: the 221 at once, the RSET's answer after it. */
static void
test_park_quit(void **state)
{
	(void)state;
	session(EHLO_FULL);
	conf.reuse = true;
	deliver();
	mta_send("QUIT\r\n");
	mta_is("221 2.0.0 Bye\r\n");
	up_is("RSET\r\n");
	ev_is("X");
	assert_true(tp_gw_parking(&g));
	up_send(OK);
	ev_is("PX");
	assert_false(g.up_open);
	mta_is("");

	/* QUIT after a message: read once the '.' is answered */
	session(EHLO_FULL);
	conf.reuse = true;
	mta_send("DATA\r\n");
	up_is("DATA\r\n");
	up_send("354 go\r\n");
	mta_send("x\r\n.\r\nQUIT\r\n");
	up_is("x\r\n.\r\n");
	mta_is("354 go\r\n");
	up_send("250 2.0.0 Ok: queued as 2\r\n");
	up_is("RSET\r\n");
	mta_is("250 2.0.0 Ok: queued as 2\r\n221 2.0.0 Bye\r\n");
	ev_is("X");
	up_send(OK);
	ev_is("PX");
	up_is("");
}

/* EHLO in a transaction resets it, upstream too. */
static void
test_ehlo_resets(void **state)
{
	(void)state;
	session(EHLO_FULL);
	mta_send("EHLO again\r\nRCPT TO:<x@dst.example>\r\n");
	mta_is(OUR_EHLO);
	up_is("RSET\r\n");
	phase_is("sending RSET");
	up_send("250 2.0.0 Ok\r\n");
	mta_is("503 5.5.1 Error: need MAIL command\r\n");
	mta_send("MAIL FROM:<s@src.example>\r\nRCPT TO:<x@dst.example>\r\n");
	up_is("MAIL FROM:<s@src.example>\r\nRCPT TO:<x@dst.example>\r\n");
	ev_is("");
	/* before anything went upstream: nothing to reset there */
	start();
	mta_send("EHLO m\r\nMAIL FROM:<>\r\nHELO m\r\nMAIL FROM:<>\r\n");
	mta_is("220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK
	       "250 gw.example\r\n" MAIL_OK);
}

/* An upstream reply is relayed up to TP_GW_REPLY_MAX octets. */
static void
test_reply_max(void **state)
{
	static char reply[16384], want[8192];
	size_t n = 0, w = 0;

	(void)state;
	session(EHLO_FULL);
	mta_send("RCPT TO:<b@dst.example>\r\n");
	for (int i = 0; i < 99; i++) {
		int k = snprintf(reply + n, sizeof(reply) - n,
		    "550-5.1.1 line %02d %s\r\n", i,
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");

		if (w + (size_t)k <= TP_GW_REPLY_MAX) {
			memcpy(want + w, reply + n, (size_t)k);
			w += (size_t)k;
		}
		n += (size_t)k;
	}
	snprintf(reply + n, sizeof(reply) - n, "550 5.1.1 end\r\n");
	assert_true(w < n && w + 80 > TP_GW_REPLY_MAX);
	want[w] = '\0';
	{
		char *last = want + w - 2;

		while (last > want && last[-1] != '\n')
			last--;
		last[3] = ' ';
	}
	up_send(reply);
	mta_is(want);
	assert_int_equal(g.cut, 0);
	/* a 421 cut alike, every line 451 */
	mta_send("RCPT TO:<c@dst.example>\r\n");
	for (size_t i = 0; i < n; i += 1) {
		if (memcmp(reply + i, "550", 3) == 0 &&
		    (i == 0 || reply[i - 1] == '\n'))
			memcpy(reply + i, "421", 3);
		if (memcmp(want + (i < w ? i : 0), "550", 3) == 0 && i < w &&
		    (i == 0 || want[i - 1] == '\n'))
			memcpy(want + i, "451", 3);
	}
	memcpy(reply + n, "421", 3);
	up_send(reply);
	mta_is(want);
	ev_is("D");
}

/* Back-pressure: a burst behind a waiting RCPT, big replies at once. */
static void
test_backpressure(void **state)
{
	static char burst[200 * 6 + 64], big[16 * 3100];
	size_t n = 0;

	(void)state;
	session(EHLO_FULL);
	n = (size_t)snprintf(
	    burst, sizeof(burst), "RCPT TO:<b@dst.example>\r\n");
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(burst + n, sizeof(burst) - n, "NOOP\r\n");
	mta_send(burst);
	assert_true(pendlen > 0);
	assert_true(g.qlen <= TP_GW_QUEUE);
	mta_is("");
	up_send("250 2.1.5 b\r\n");
	{
		static char want[200 * 14 + 64];
		size_t w =
		    (size_t)snprintf(want, sizeof(want), "250 2.1.5 b\r\n");

		for (int i = 0; i < 200; i++)
			w += (size_t)snprintf(want + w, sizeof(want) - w, OK);
		mta_is(want);
	}
	assert_int_equal(pendlen, 0);

	/* 16 RCPTs, each answered with 3000 octets, in one write */
	n = 0;
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(burst + n, sizeof(burst) - n,
		    "RCPT TO:<r%d@dst.example>\r\n", i % 10);
	session(EHLO_FULL);
	mta_send(burst);
	n = 0;
	for (int i = 0; i < 16; i++) {
		for (int l = 0; l < 49; l++)
			n += (size_t)snprintf(
			    big + n, sizeof(big) - n, "250-%056d\r\n", l);
		n += (size_t)snprintf(
		    big + n, sizeof(big) - n, "250 %02d\r\n", i);
	}
	up_send(big);
	/* every reply whole or cut at a line, the last line final */
	{
		unsigned finals = 0;
		const char *p = mta + mtaseen;

		while (*p != '\0') {
			const char *e = strstr(p, "\r\n");

			assert_non_null(e);
			assert_memory_equal(p, "250", 3);
			if (p[3] == ' ')
				finals++;
			else
				assert_int_equal(p[3], '-');
			p = e + 2;
		}
		assert_int_equal(finals, 16);
		mtaseen = mtalen;
	}
	assert_true(g.cut > 0);

	/*
	 * 4 RCPTs answered with 2000-octet first lines in one write: when
	 * not even a first line fits, it is cut short, still one reply.
	 */
	session(EHLO_FULL);
	mta_send("RCPT TO:<a@dst.example>\r\nRCPT TO:<b@dst.example>\r\n"
		 "RCPT TO:<c@dst.example>\r\nRCPT TO:<d@dst.example>\r\n");
	n = 0;
	for (int i = 0; i < 4; i++) {
		n += (size_t)snprintf(
		    big + n, sizeof(big) - n, "550-5.1.1 %d ", i);
		memset(big + n, 'y', 2000);
		n += 2000;
		n += (size_t)snprintf(big + n, sizeof(big) - n,
		    "\r\n550-5.1.1 %02000d\r\n550 5.1.1 end\r\n", i);
	}
	up_send(big);
	{
		unsigned finals = 0;
		const char *p = mta + mtaseen, *e;

		for (; *p != '\0'; p = e + 2) {
			e = strstr(p, "\r\n");
			assert_non_null(e);
			assert_memory_equal(p, "550", 3);
			assert_true(e - p <= 2050);
			if (p[3] == ' ')
				finals++;
		}
		assert_int_equal(finals, 4);
		/* the last one got the room kept for it: one line, cut */
		p = strstr(mta + mtaseen, "550 5.1.1 3 ");
		assert_non_null(p);
		assert_int_equal(strlen(p), TP_GW_LOCAL);
		mtaseen = mtalen;
	}
}

/*
 * The property: a session, op by op, gives the same bytes and events
 * whatever the split of the MTA's and the upstream's input.
 */
struct op {
	char who; /* M MTA, U upstream, R up_ready */
	const char *data;
};

static const struct op script[] = {
    {'M',
	"EHLO mta.example\r\nMAIL FROM:<s@src.example> BODY=8BITMIME "
	"SIZE=10\r\nRCPT TO:<a@dst.example> NOTIFY=NEVER\r\n"
	"RCPT TO:<b@other.example>\r\nRCPT TO:<c@dst.example>\r\nDATA\r\n"},
    {'R', PEER},
    {'U', EHLO_PIPE},
    {'U', "250 2.1.0 Ok\r\n250 2.1.5 a\r\n"},
    {'U', "250 2.1.5 c\r\n354 go\r\n"},
    {'M',
	"Subject: s\r\n\r\n..x\r\n.\r\nMAIL FROM:<t@src.example>\r\n"
	"RCPT TO:<d@dst.example>\r\nRSET\r\nMAIL FROM:<u@src.example>\r\n"
	"RCPT TO:<e@third.example>\r\n"},
    {'U', "250 2.0.0 queued\r\n"},
    {'U', "250 2.1.0 Ok\r\n550 5.1.1 d unknown\r\n250 2.0.0 Ok\r\n"},
    {'R', "mx.third.example[192.0.2.3]"},
    {'U', EHLO_NONE},
    {'U', "250 2.1.0 Ok\r\n"},
    {'U', "421 4.4.2 bye\r\n"},
    {'M', "RCPT TO:<f@third.example>\r\nDATA\r\nRSET\r\nQUIT\r\n"},
};

static const char script_mta[] =
    "220 gw.example ESMTP\r\n" OUR_EHLO MAIL_OK "250 2.1.5 a\r\n" R452
    "250 2.1.5 c\r\n354 go\r\n250 2.0.0 queued\r\n" MAIL_OK
    "550 5.1.1 d unknown\r\n" OK MAIL_OK "451 4.4.2 bye\r\n"
    "451 4.4.2 bye\r\n" NO_RCPTS OK "221 2.0.0 Bye\r\n";

static const char script_up[] =
    "EHLO gw.example.net\r\nMAIL FROM:<s@src.example>\r\n"
    "RCPT TO:<a@dst.example>\r\nRCPT TO:<c@dst.example>\r\nDATA\r\n"
    "Subject: s\r\n\r\n..x\r\n.\r\nMAIL FROM:<t@src.example>\r\n"
    "RCPT TO:<d@dst.example>\r\nRSET\r\nQUIT\r\nEHLO gw.example.net\r\n"
    "MAIL FROM:<u@src.example>\r\nRCPT TO:<e@third.example>\r\n";

static void
play(size_t ms, size_t us)
{
	start();
	mstep = ms;
	ustep = us;
	for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
		switch (script[i].who) {
		case 'M':
			mta_send(script[i].data);
			break;
		case 'U':
			up_send(script[i].data);
			break;
		default:
			ready(script[i].data);
			break;
		}
	}
	mstep = ustep = 0;
	if (strcmp(mta, script_mta) != 0 || strcmp(up, script_up) != 0 ||
	    strcmp(events, "CDCDX") != 0)
		fail_msg("split %zu/%zu:\nMTA \"%s\"\nup \"%s\"\nevents %s", ms,
		    us, mta, up, events);
}

static void
test_split_property(void **state)
{
	static const size_t steps[] = {0, 1, 2, 3, 5, 7, 13, 64};

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		for (size_t j = 0; j < sizeof(steps) / sizeof(steps[0]); j++)
			play(steps[i], steps[j]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_greeting_ehlo),
	    cmocka_unit_test(test_own_replies),
	    cmocka_unit_test(test_mail_syntax),
	    cmocka_unit_test(test_rcpt_syntax),
	    cmocka_unit_test(test_connect_and_deliver),
	    cmocka_unit_test(test_pipelined_burst),
	    cmocka_unit_test(test_pipelined_connect),
	    cmocka_unit_test(test_two_domains),
	    cmocka_unit_test(test_other_domain_next),
	    cmocka_unit_test(test_other_domain_split_line),
	    cmocka_unit_test(test_same_domain_reuse),
	    cmocka_unit_test(test_up_failed),
	    cmocka_unit_test(test_odd_replies),
	    cmocka_unit_test(test_mail_refused),
	    cmocka_unit_test(test_mail_refused_421),
	    cmocka_unit_test(test_params),
	    cmocka_unit_test(test_params_rcpt),
	    cmocka_unit_test(test_smtputf8),
	    cmocka_unit_test(test_no_pipelining),
	    cmocka_unit_test(test_helo_fallback),
	    cmocka_unit_test(test_upstream_421),
	    cmocka_unit_test(test_unsolicited),
	    cmocka_unit_test(test_lost_mid_rcpt),
	    cmocka_unit_test(test_lost_mid_body),
	    cmocka_unit_test(test_body_bytewise),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_error_limit),
	    cmocka_unit_test(test_quit),
	    cmocka_unit_test(test_park_other_domain),
	    cmocka_unit_test(test_park_refused),
	    cmocka_unit_test(test_park_quit),
	    cmocka_unit_test(test_ehlo_resets),
	    cmocka_unit_test(test_reply_max),
	    cmocka_unit_test(test_backpressure),
	    cmocka_unit_test(test_split_property),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
