/*
 * smtp_client.c - the client-mode STARTTLS dialogue (spec 4.2, RFC 3207).
 *
 * Every decision follows Postfix: STARTTLS must be offered (any EHLO line,
 * case-insensitive); at `may` a missing STARTTLS or a refusal means
 * plaintext, at `encrypt` and above a 421 with Postfix's wording.  The
 * dialogue is strict: replies are parsed by smtp_line (bounded lines and
 * line counts), and any byte after a complete reply, before our next
 * command, is refused - after the 220 to STARTTLS that is response
 * injection (CVE-2011-0411 class, libetpan #386): bytes must never be
 * taken as TLS data or as a later reply.  Pure.
 */
#include "tlsproxy/smtp_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define REPLY_LINE_MAX 2048 /* spec 4.2.4 */

void
tp_smtpc_init(struct tp_smtpc *s, const char *helo, bool may, const char *host,
    const char *ip)
{
	memset(s, 0, sizeof(*s));
	s->may = may;
	snprintf(s->helo, sizeof(s->helo), "%s", helo);
	snprintf(s->peer, sizeof(s->peer), "%s[%s]", host, ip);
	tp_line_init(&s->lr, REPLY_LINE_MAX);
	tp_reply_init(&s->reply);
}

const char *
tp_smtpc_phase(const struct tp_smtpc *s)
{
	switch (s->state) {
	case TP_SMTPC_GREETING:
		return "receiving the initial server greeting";
	case TP_SMTPC_EHLO:
		return "performing the EHLO handshake";
	default:
		return "sending STARTTLS";
	}
}

__attribute__((format(printf, 2, 3))) static enum tp_smtpc_action
fail(struct tp_smtpc *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s->out, sizeof(s->out) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > sizeof(s->out) - 3)
		n = (int)sizeof(s->out) - 3;
	/* RFC 5321: at most 512 octets with CRLF */
	if (n > 510)
		n = 510;
	memcpy(s->out + n, "\r\n", 2);
	s->outlen = (size_t)n + 2;
	s->state = TP_SMTPC_DONE;
	return TP_SMTPC_FAIL;
}

void
tp_smtpc_fail_lost(struct tp_smtpc *s)
{
	fail(s, "421 4.4.2 Lost connection with %s while %s", s->peer,
	    tp_smtpc_phase(s));
}

void
tp_smtpc_fail_timeout(struct tp_smtpc *s)
{
	fail(s, "421 4.4.2 Conversation with %s timed out while %s", s->peer,
	    tp_smtpc_phase(s));
}

static enum tp_smtpc_action
send_cmd(struct tp_smtpc *s, const char *cmd)
{
	s->outlen = (size_t)snprintf(s->out, sizeof(s->out), "%s\r\n", cmd);
	return TP_SMTPC_SEND;
}

/* reply_done - a whole reply arrived; *len bytes follow it. */
static enum tp_smtpc_action
reply_done(struct tp_smtpc *s, size_t left)
{
	struct tp_reply *r = &s->reply;
	char cmd[300];

	if (left > 0 && s->state == TP_SMTPC_STARTTLS_SENT && r->code == 220)
		return fail(s,
		    "421 4.5.0 Protocol error: %s sent data after "
		    "its 220 reply to STARTTLS",
		    s->peer);
	if (left > 0)
		return fail(s,
		    "421 4.5.0 Protocol error: %s sent data before "
		    "our next command while %s",
		    s->peer, tp_smtpc_phase(s));
	switch (s->state) {
	case TP_SMTPC_GREETING:
		if (r->code != 220) {
			s->outlen = (size_t)snprintf(s->out, sizeof(s->out),
			    "%d %.500s\r\n", r->code, r->first);
			s->state = TP_SMTPC_DONE;
			return TP_SMTPC_REFUSED;
		}
		snprintf(
		    s->greeting, sizeof(s->greeting), "220 %.500s", r->first);
		if (s->plain_only) {
			s->state = TP_SMTPC_DONE;
			return TP_SMTPC_PLAINTEXT;
		}
		s->state = TP_SMTPC_EHLO;
		snprintf(cmd, sizeof(cmd), "EHLO %s", s->helo);
		return send_cmd(s, cmd);
	case TP_SMTPC_EHLO:
		if (r->code == 250 && r->starttls) {
			s->state = TP_SMTPC_STARTTLS_SENT;
			return send_cmd(s, "STARTTLS");
		}
		s->state = TP_SMTPC_DONE;
		if (s->may)
			return TP_SMTPC_PLAINTEXT;
		return fail(s,
		    "421 4.7.4 TLS is required, but was not offered "
		    "by host %s",
		    s->peer);
	case TP_SMTPC_STARTTLS_SENT:
		s->state = TP_SMTPC_DONE;
		if (r->code == 220)
			return TP_SMTPC_STARTTLS;
		if (s->may)
			return TP_SMTPC_PLAINTEXT;
		return fail(s,
		    "421 4.7.5 TLS is required, but host %s refused "
		    "to start TLS: %d %.300s",
		    s->peer, r->code, r->first);
	default:
		return fail(s, "421 4.5.0 Protocol error: unexpected reply");
	}
}

enum tp_smtpc_action
tp_smtpc_input(struct tp_smtpc *s, const char **data, size_t *len)
{
	const char *why;
	int rc;

	if (s->state == TP_SMTPC_DONE)
		return fail(s, "421 4.5.0 Protocol error: unexpected data");
	for (;;) {
		switch (tp_line_feed(&s->lr, data, len)) {
		case TP_LINE_MORE:
			return TP_SMTPC_MORE;
		case TP_LINE_TOOLONG:
			return fail(s,
			    "421 4.5.0 Protocol error: reply line "
			    "longer than %d octets from %s",
			    REPLY_LINE_MAX, s->peer);
		case TP_LINE_OK:
			break;
		}
		rc = tp_reply_line(&s->reply, s->lr.buf, s->lr.len, &why);
		if (rc < 0)
			return fail(s,
			    "421 4.5.0 Protocol error: %s from %s "
			    "while %s",
			    why, s->peer, tp_smtpc_phase(s));
		if (rc == 1)
			return reply_done(s, *len);
	}
}
