/*
 * smtp_server.c - the proxy's own pre-TLS SMTP engine (spec 4.4, 5).
 *
 * Lines are bounded at 512 octets (RFC 5321): a longer one is answered
 * 500 5.5.2 as soon as it passes the bound (smtp_line.c) and the rest of
 * it is discarded up to its LF without another reply; the third costs
 * the session (421 4.7.0).  STARTTLS is answered 220 and the caller
 * discards every byte after its line (CVE-2011-0411).  A client never
 * speaks for the proxy (spec 5): XCLIENT, XFORWARD and PIPECONNECT are
 * never advertised, and XCLIENT/XFORWARD get Postfix's own 550 5.7.0 here,
 * never reaching the backend, whose only word on the client is the PROXY
 * header.  At `may` the first command the proxy does not answer itself
 * starts a plaintext relay; at `encrypt` it gets 530 5.7.0.  Postfix's
 * reply wording throughout.  Pure.
 */
#include "tlsproxy/smtp_server.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_ERRORS   10
#define MAX_TOO_LONG 3

/* Postfix smtpd's reply to XCLIENT/XFORWARD from an unauthorised client */
#define REPLY_NO_AUTHZ "550 5.7.0 Error: insufficient authorization"

void
tp_smtps_init(
    struct tp_smtps *s, const struct tp_smtps_conf *conf, const char *caps)
{
	memset(s, 0, sizeof(*s));
	s->conf = conf;
	tp_line_init(&s->lr, TP_SMTPS_LINE_MAX - 2);
	if (caps != NULL && *caps != '\0')
		snprintf(s->caps, sizeof(s->caps), "%s", caps);
	else /* unknown: what every current MTA has (spec 4.4.1) */
		snprintf(s->caps, sizeof(s->caps),
		    "PIPELINING\nENHANCEDSTATUSCODES\n8BITMIME\n");
}

void
tp_smtps_caps_add(char *caps, size_t len, const char *line, size_t linelen)
{
	size_t used = strlen(caps);

	if (linelen <= 4 || !tp_smtp_printable(line, linelen) ||
	    used + linelen - 4 + 2 > len)
		return;
	memcpy(caps + used, line + 4, linelen - 4);
	caps[used + linelen - 4] = '\n';
	caps[used + linelen - 3] = '\0';
}

static bool
keyword_is(const char *kw, size_t n, const char *name)
{
	size_t l = strlen(name);

	return n >= l && strncasecmp(kw, name, l) == 0 &&
	    (n == l || kw[l] == ' ' || kw[l] == '=');
}

__attribute__((format(printf, 2, 3))) static void
reply(struct tp_smtps *s, const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof(s->out) - s->outlen;
	int n;

	/* Full (a huge EHLO reply after a burst): never past the end. */
	if (room < 3)
		return;
	va_start(ap, fmt);
	n = vsnprintf(s->out + s->outlen, room - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > room - 3)
		n = (int)(room - 3);
	s->outlen += (size_t)n;
	memcpy(s->out + s->outlen, "\r\n", 2);
	s->outlen += 2;
}

void
tp_smtps_greeting(struct tp_smtps *s)
{
	reply(s, "220 %.500s", s->conf->banner);
}

/*
 * proxy_only - keywords a client must never see from us (spec 5):
 * XCLIENT and XFORWARD would let it speak for the proxy to a backend
 * that trusts its loopback peer; PIPECONNECT, which this engine does
 * not implement, would have it send commands before our greeting.
 */
static bool
proxy_only(const char *kw, size_t n)
{
	return keyword_is(kw, n, "XCLIENT") || keyword_is(kw, n, "XFORWARD") ||
	    keyword_is(kw, n, "PIPECONNECT");
}

/*
 * ehlo_reply - the backend's keywords as learned (or the defaults), plus
 * STARTTLS, minus CHUNKING (spec 4.4.1), minus AUTH with auth_only, minus
 * XCLIENT, XFORWARD and PIPECONNECT (spec 5), with the configured SIZE in
 * place of the backend's.
 */
static void
ehlo_reply(struct tp_smtps *s)
{
	const char *p = s->caps, *nl;
	const char *last = NULL;
	size_t n, lastn = 0;
	bool size_done = false;

	reply(s, "250-%.200s", s->conf->hostname);
	reply(s, "250-STARTTLS");
	for (; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		n = (size_t)(nl - p);
		/* "250-" keyword CRLF must fit 512 octets (RFC 5321). */
		if (n == 0 || n > TP_SMTPS_LINE_MAX - 6 ||
		    keyword_is(p, n, "STARTTLS") ||
		    keyword_is(p, n, "CHUNKING") || proxy_only(p, n) ||
		    (s->conf->auth_only && keyword_is(p, n, "AUTH")))
			continue;
		if (keyword_is(p, n, "SIZE")) {
			if (s->conf->size > 0 || size_done)
				continue;
			size_done = true;
		}
		if (last != NULL)
			reply(s, "250-%.*s", (int)lastn, last);
		last = p;
		lastn = n;
	}
	if (s->conf->size > 0) {
		if (last != NULL)
			reply(s, "250-%.*s", (int)lastn, last);
		reply(s, "250 SIZE %llu", s->conf->size);
	} else if (last != NULL) {
		reply(s, "250 %.*s", (int)lastn, last);
	} else {
		reply(s, "250 8BITMIME");
	}
}

/* error - an error reply; too many of them end the session. */
static enum tp_smtps_action
error(struct tp_smtps *s, const char *text)
{
	if (++s->errors >= MAX_ERRORS) {
		reply(s, "421 4.7.0 Too many errors");
		return TP_SMTPS_CLOSE;
	}
	reply(s, "%s", text);
	return TP_SMTPS_MORE;
}

/*
 * first_word_is - the command's verb is name, as a backend would read it:
 * Postfix's smtpd_token() skips leading white space and ends a token at
 * any white space (TAB, VT, FF, CR too), so "\tXCLIENT\tADDR=..." is
 * XCLIENT to it even though tp_smtp_verb() would not say so.
 */
static bool
first_word_is(const char *line, const char *name)
{
	size_t l = strlen(name);

	while (isspace((unsigned char)*line))
		line++;
	return strncasecmp(line, name, l) == 0 &&
	    (line[l] == '\0' || isspace((unsigned char)line[l]));
}

static void
remember(char *dst, const char *line, size_t len)
{
	memcpy(dst, line, len);
	memcpy(dst + len, "\r\n", 3);
}

/* command - answer one complete command line. */
static enum tp_smtps_action
command(struct tp_smtps *s, const char *line, size_t len)
{
	const char *arg;

	/* helo and pending are strings: a NUL would cut the command short. */
	if (memchr(line, '\0', len) != NULL)
		return error(s, "500 5.5.2 Error: bad syntax");
	if (tp_smtp_verb(line, "EHLO", &arg)) {
		if (*arg == '\0')
			return error(s, "501 5.5.4 Syntax: EHLO hostname");
		remember(s->helo, line, len);
		ehlo_reply(s);
		return TP_SMTPS_MORE;
	}
	if (tp_smtp_verb(line, "HELO", &arg)) {
		if (*arg == '\0')
			return error(s, "501 5.5.4 Syntax: HELO hostname");
		remember(s->helo, line, len);
		reply(s, "250 %.200s", s->conf->hostname);
		return TP_SMTPS_MORE;
	}
	if (tp_smtp_verb(line, "STARTTLS", &arg)) {
		if (*arg != '\0')
			return error(s, "501 5.5.4 Syntax: STARTTLS");
		reply(s, "220 2.0.0 Ready to start TLS");
		return TP_SMTPS_STARTTLS;
	}
	if (tp_smtp_verb(line, "NOOP", &arg) ||
	    tp_smtp_verb(line, "RSET", &arg)) {
		reply(s, "250 2.0.0 Ok");
		return TP_SMTPS_MORE;
	}
	if (tp_smtp_verb(line, "HELP", &arg)) {
		reply(s,
		    "214 2.0.0 Commands: EHLO HELO STARTTLS NOOP RSET "
		    "QUIT");
		return TP_SMTPS_MORE;
	}
	if (tp_smtp_verb(line, "QUIT", &arg)) {
		reply(s, "221 2.0.0 Bye");
		return TP_SMTPS_CLOSE;
	}
	/* spec 5: answered here at every level, never the plaintext relay's
	 * first command; an error as in Postfix's smtpd */
	if (first_word_is(line, "XCLIENT") || first_word_is(line, "XFORWARD"))
		return error(s, REPLY_NO_AUTHZ);
	if (s->conf->encrypt)
		return error(
		    s, "530 5.7.0 Must issue a STARTTLS command first");
	if (len == 0)
		return error(s, "500 5.5.2 Error: bad syntax");
	remember(s->pending, line, len);
	return TP_SMTPS_PLAINTEXT;
}

enum tp_smtps_action
tp_smtps_input(struct tp_smtps *s, const char **data, size_t *len)
{
	enum tp_smtps_action a;

	/* room for the largest reply: EHLO with every learned keyword */
	while (*len > 0 && s->outlen < sizeof(s->out) - 4096) {
		switch (tp_line_feed(&s->lr, data, len)) {
		case TP_LINE_MORE:
			return TP_SMTPS_MORE;
		case TP_LINE_TOOLONG:
			/* spec 5: the third offence ends the session */
			if (++s->too_long >= MAX_TOO_LONG) {
				reply(s, "421 4.7.0 Too many errors");
				return TP_SMTPS_CLOSE;
			}
			reply(s, "500 5.5.2 Line too long");
			continue;
		case TP_LINE_OK:
			break;
		}
		a = command(s, s->lr.buf, s->lr.len);
		if (a != TP_SMTPS_MORE)
			return a;
	}
	return TP_SMTPS_MORE;
}

/*
 * The backend: its greeting (consumed: the client already had ours, or
 * after STARTTLS expects none), then the replayed HELO/EHLO (consumed: the
 * client already had our reply).
 */

void
tp_smtpb_init(struct tp_smtpb *b, const char *replay)
{
	memset(b, 0, sizeof(*b));
	b->replay = replay != NULL && *replay != '\0' ? replay : NULL;
	tp_line_init(&b->lr, TP_LINE_MAX);
	tp_reply_init(&b->reply);
}

enum tp_smtpb_action
tp_smtpb_input(struct tp_smtpb *b, const char **data, size_t *len)
{
	const char *why;
	int rc;

	for (;;) {
		switch (tp_line_feed(&b->lr, data, len)) {
		case TP_LINE_MORE:
			return TP_SMTPB_MORE;
		case TP_LINE_TOOLONG:
			b->outlen = (size_t)snprintf(b->out, sizeof(b->out),
			    "backend reply line too long");
			return TP_SMTPB_FAIL;
		case TP_LINE_OK:
			break;
		}
		rc = tp_reply_line(&b->reply, b->lr.buf, b->lr.len, &why);
		if (rc < 0) {
			b->outlen = (size_t)snprintf(
			    b->out, sizeof(b->out), "backend: %s", why);
			return TP_SMTPB_FAIL;
		}
		if (rc == 0)
			continue;
		if (b->state == 0 && b->reply.code / 100 != 2) {
			b->outlen = (size_t)snprintf(b->out, sizeof(b->out),
			    "%d %.500s\r\n", b->reply.code, b->reply.first);
			return TP_SMTPB_REFUSED;
		}
		if (b->state == 0 && b->replay != NULL) {
			b->state = 1;
			b->outlen = (size_t)snprintf(
			    b->out, sizeof(b->out), "%s", b->replay);
			return TP_SMTPB_SEND;
		}
		return TP_SMTPB_READY;
	}
}
