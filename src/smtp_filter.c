/*
 * smtp_filter.c - the SMTP tracker inside the tunnel: STARTTLS (and on
 * server routes XCLIENT/XFORWARD) rules, and what is outstanding.
 *
 * Client side: each command line is classified from its first bytes
 * (held back at most sizeof(cbuf) bytes) and its kind queued until its
 * reply; a command the proxy answers itself is dropped and answered once
 * every earlier reply has reached the client, so replies stay in order
 * under PIPELINING.  After DATA the filter waits for the reply: 354 starts
 * the body, which passes untouched up to the line "."; BDAT's chunk passes
 * untouched by count.  Server side: replies are counted line by line
 * (first four bytes; lines bounded at 2048 octets and replies at 100
 * lines, spec 4.2.4); an EHLO reply is collected, STARTTLS lines (and on
 * server routes XCLIENT, XFORWARD, PIPECONNECT: spec 5) are removed and
 * the last line's separator fixed.  The data path only scans for LF
 * (memchr) outside command lines.  Pure.
 */
#include "tlsproxy/smtp_filter.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/smtp_line.h"

/* Postfix's answer to a client that may not speak for someone else. */
#define REPLY_AUTHZ "550 5.7.0 Error: insufficient authorization"

enum { C_CMD, C_DATA_WAIT, C_BODY, C_BDAT, C_SKIP, C_DONE };
/* What a queued reply answers; L_* are answered by the proxy. */
enum {
	K_OTHER,
	K_GREETING,
	K_EHLO,
	K_HELO,
	K_MAIL,
	K_RCPT,
	K_DATA,
	K_BDAT,
	K_DOT, /* end of data: "." or BDAT LAST */
	K_RSET,
	K_QUIT,
	K_REUSE, /* the RSET that stands for the client's QUIT */
	K_IDENT, /* AUTH, XCLIENT, XFORWARD: who the client is */
	L_STARTTLS = -1,
	L_AUTHZ = -2,
	L_REPLAY_EHLO = -3,
	L_REPLAY_HELO = -4,
};

void
tp_filter_init(struct tp_filter *f, const char *starttls_reply, unsigned flags)
{
	memset(f, 0, sizeof(*f));
	f->starttls_reply = starttls_reply;
	f->flags = flags;
	if (flags & TP_FILTER_GREETING)
		f->q[f->qlen++] = K_GREETING;
}

void
tp_filter_free(struct tp_filter *f)
{
	free(f->ebuf);
	f->ebuf = f->hbuf = NULL;
}

static void
push(struct tp_filter *f, int kind)
{
	f->q[(f->qhead + f->qlen) % TP_FILTER_QUEUE] = (unsigned char)kind;
	f->qlen++;
}

static int
answer(
    struct tp_filter *f, const char *reply, tp_filter_emit to_client, void *arg)
{
	f->answer = NULL;
	if (to_client(arg, reply, strlen(reply)) < 0 ||
	    to_client(arg, "\r\n", 2) < 0)
		return -1;
	return 0;
}

/* is_space - white space to a server's command tokenizer (not LF). */
static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static bool
all_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_space(s[i]))
			return false;
	return true;
}

/* bdat - BDAT as written: its size (and LAST), or 0 when it is not. */
static int
bdat(struct tp_filter *f, const char *line, size_t len)
{
	char buf[sizeof(f->cbuf) + 1];
	const char *arg;
	char *end;
	bool last;

	memcpy(buf, line, len);
	buf[len] = '\0';
	if (!tp_smtp_verb(buf, "BDAT", &arg) || !isdigit((unsigned char)*arg))
		return 0;
	f->bdat_left = strtoull(arg, &end, 10);
	while (*end == ' ')
		end++;
	last = strncasecmp(end, "LAST", 4) == 0 &&
	    (end[4] == '\0' || end[4] == ' ');
	if (f->bdat_left > 0)
		f->cstate = C_BDAT;
	return last ? K_DOT : K_BDAT;
}

/* classify - a command line's first bytes: its kind, or L_* to answer. */
static int
classify(struct tp_filter *f, const char *line, size_t len, bool whole)
{
	static const struct {
		const char *verb;
		int kind;
	} verbs[] = {
	    {"EHLO", K_EHLO},
	    {"STARTTLS", L_STARTTLS},
	    {"HELO", K_HELO},
	    {"MAIL", K_MAIL},
	    {"RCPT", K_RCPT},
	    {"RSET", K_RSET},
	    {"QUIT", K_QUIT},
	    {"AUTH", K_IDENT},
	    {"XCLIENT", K_IDENT},
	    {"XFORWARD", K_IDENT},
	};
	char buf[sizeof(f->cbuf) + 1];
	const char *arg;
	size_t i = 0, n = 0;
	int kind;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	/*
	 * Servers split commands on any white space, leading and trailing
	 * included (Postfix's smtpd_token): " STARTTLS" and "STARTTLS\t"
	 * are STARTTLS to them, so they are to the filter.
	 */
	while (i < len && is_space(line[i]))
		i++;
	for (; i < len; i++)
		buf[n++] = is_space(line[i]) ? ' ' : line[i];
	buf[n] = '\0';
	/* The verb alone decides: even a long line is never forwarded. */
	if ((f->flags & TP_FILTER_SERVER) &&
	    (tp_smtp_verb(buf, "XCLIENT", &arg) ||
		tp_smtp_verb(buf, "XFORWARD", &arg)))
		return L_AUTHZ;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (tp_smtp_verb(buf, verbs[i].verb, &arg))
			return verbs[i].kind;
	if (!whole)
		return K_OTHER;
	if (tp_smtp_verb(buf, "DATA", &arg) && *arg == '\0')
		return K_DATA;
	/*
	 * BDAT only as written: its chunk passes unfiltered, so only a
	 * command every server takes for BDAT may start one; and only when
	 * the server offered CHUNKING: a server without it reads the "chunk"
	 * as commands.
	 */
	if (f->chunking && (kind = bdat(f, line, len)) != 0)
		return kind;
	return K_OTHER;
}

size_t
tp_filter_client(struct tp_filter *f, const char *data, size_t len,
    tp_filter_emit to_server, tp_filter_emit to_client, void *arg)
{
	size_t used = 0, n;
	const char *lf;
	int kind;

	while (used < len) {
		const char *p = data + used;
		size_t left = len - used;

		if (f->cstate == C_DONE)
			return len; /* after a QUIT that became RSET */
		if (f->cstate == C_SKIP) {
			/* The rest of a long line we answered: dropped. */
			lf = memchr(p, '\n', left);
			used += lf ? (size_t)(lf - p) + 1 : left;
			if (lf)
				f->cstate = C_CMD;
			continue;
		}
		if (f->answer != NULL || f->cstate == C_DATA_WAIT ||
		    f->qlen == TP_FILTER_QUEUE)
			break; /* waiting for replies */
		if (f->cstate == C_BODY) {
			n = tp_body_scan(&f->bstate, p, left);
			if (to_server(arg, p, n ? n : left) < 0)
				return (size_t)-1;
			used += n ? n : left;
			if (n) {
				f->cstate = C_CMD;
				push(f, K_DOT); /* the reply to the message */
			}
			continue;
		}
		if (f->cstate == C_BDAT) {
			n = left < f->bdat_left ? left : (size_t)f->bdat_left;
			if (to_server(arg, p, n) < 0)
				return (size_t)-1;
			used += n;
			f->bdat_left -= n;
			if (f->bdat_left == 0)
				f->cstate = C_CMD;
			continue;
		}
		if (f->cpass) {
			lf = memchr(p, '\n', left);
			n = lf ? (size_t)(lf - p) + 1 : left;
			if (to_server(arg, p, n) < 0)
				return (size_t)-1;
			used += n;
			if (lf)
				f->cpass = false;
			continue;
		}
		/* The start of a command line: hold it until classified. */
		lf = memchr(p, '\n', left);
		n = lf ? (size_t)(lf - p) + 1 : left;
		if (n > sizeof(f->cbuf) - f->clen)
			n = sizeof(f->cbuf) - f->clen;
		memcpy(f->cbuf + f->clen, p, n);
		f->clen += n;
		used += n;
		if (f->cbuf[f->clen - 1] != '\n' && f->clen < sizeof(f->cbuf))
			continue; /* need more of the line */
		if (f->cbuf[f->clen - 1] != '\n' &&
		    all_space(f->cbuf, f->clen)) {
			/* A server skips leading white space of any length
			 * (" ... STARTTLS"): so does the look-ahead, one kept.
			 */
			f->clen = 1;
			continue;
		}
		kind =
		    classify(f, f->cbuf, f->clen, f->cbuf[f->clen - 1] == '\n');
		if (f->replay && kind != L_STARTTLS && kind != L_AUTHZ) {
			/* a reused connection: the first command only */
			f->replay = false;
			if (kind == K_EHLO) {
				kind = L_REPLAY_EHLO;
				f->chunking = f->replay_chunking;
			} else if (kind == K_HELO) {
				kind = L_REPLAY_HELO;
				f->chunking = false;
			}
		}
		if (f->cbuf[f->clen - 1] != '\n') {
			if (kind < 0)
				f->cstate = C_SKIP;
			else
				f->cpass = true;
		}
		if (kind == K_IDENT) {
			/* RSET does not undo who the client said it is: such
			 * a connection is never handed to another client */
			f->personal = true;
			kind = K_OTHER;
		}
		if (kind == K_QUIT && (f->flags & TP_FILTER_REUSE)) {
			/* spec 4.7: RSET in its place; nothing after it */
			f->clen = 0;
			f->quit = true;
			f->cstate = C_DONE;
			if (to_server(arg, "RSET\r\n", 6) < 0)
				return (size_t)-1;
			push(f, K_REUSE);
			continue;
		}
		if (kind < 0) {
			const char *reply = kind == L_STARTTLS
			    ? f->starttls_reply
			    : kind == L_AUTHZ       ? REPLY_AUTHZ
			    : kind == L_REPLAY_EHLO ? f->replay_ehlo
						    : f->replay_helo;

			f->clen = 0;
			if (f->qlen > 0)
				f->answer = reply;
			else if (answer(f, reply, to_client, arg) < 0)
				return (size_t)-1;
			continue;
		}
		if (to_server(arg, f->cbuf, f->clen) < 0)
			return (size_t)-1;
		f->clen = 0;
		push(f, kind);
		if (kind == K_DATA)
			f->cstate = C_DATA_WAIT;
	}
	return used;
}

static bool
keyword_line(const char *line, size_t len, const char *kw)
{
	size_t k = strlen(kw);

	return len >= 4 + k && strncasecmp(line + 4, kw, k) == 0 &&
	    (len == 4 + k || line[4 + k] == '\r' || line[4 + k] == '\n' ||
		line[4 + k] == ' ');
}

/* hidden - an EHLO keyword line the client must not see. */
static bool
hidden(const struct tp_filter *f, const char *line, size_t len)
{
	if (keyword_line(line, len, "STARTTLS"))
		return true;
	/* spec 5: only the PROXY header speaks for the client */
	return (f->flags & TP_FILTER_SERVER) &&
	    (keyword_line(line, len, "XCLIENT") ||
		keyword_line(line, len, "XFORWARD") ||
		keyword_line(line, len, "PIPECONNECT"));
}

/* ehlo_emit_held - the held line goes out, made final if asked. */
static int
ehlo_emit_held(
    struct tp_filter *f, bool final, tp_filter_emit to_client, void *arg)
{
	if (!f->held)
		return 0;
	f->held = false;
	if (final && f->hlen > 3 && f->hbuf[3] == '-')
		f->hbuf[3] = ' ';
	return to_client(arg, f->hbuf, f->hlen);
}

/* ehlo_line_done - a whole line of an EHLO reply is in ebuf. */
static int
ehlo_line_done(struct tp_filter *f, tp_filter_emit to_client, void *arg)
{
	bool final = f->rfinal, first = f->efirst;

	f->efirst = false;
	if (f->epass) {
		f->epass = false;
	} else if (!first && hidden(f, f->ebuf, f->elen)) {
		/* dropped; if it was the last, the held line ends the reply */
		if (final && ehlo_emit_held(f, true, to_client, arg) < 0)
			return -1;
	} else {
		if (keyword_line(f->ebuf, f->elen, "CHUNKING"))
			f->chunking = true;
		if (ehlo_emit_held(f, false, to_client, arg) < 0)
			return -1;
		if (final) {
			if (to_client(arg, f->ebuf, f->elen) < 0)
				return -1;
		} else {
			memcpy(f->hbuf, f->ebuf, f->elen);
			f->hlen = f->elen;
			f->held = true;
		}
	}
	f->elen = 0;
	if (final) {
		f->ebuffering = false;
		tp_filter_free(f); /* an idle session holds no buffer */
	}
	return 0;
}

/* ehlo_bytes - part of an EHLO reply line; too long a line passes. */
static int
ehlo_bytes(struct tp_filter *f, const char *p, size_t n,
    tp_filter_emit to_client, void *arg)
{
	if (f->epass)
		return to_client(arg, p, n);
	if (f->elen + n <= TP_FILTER_EHLO_MAX) {
		memcpy(f->ebuf + f->elen, p, n);
		f->elen += n;
		return 0;
	}
	/* Not a line to hide at this length: out it goes, as it is. */
	f->epass = true;
	if (ehlo_emit_held(f, false, to_client, arg) < 0 ||
	    to_client(arg, f->ebuf, f->elen) < 0)
		return -1;
	f->elen = 0;
	return to_client(arg, p, n);
}

static void
reply_done(struct tp_filter *f, bool *resume)
{
	int kind;

	f->rlines = 0;
	f->bye = f->rcode == 221 || f->rcode == 421;
	if (f->qlen == 0)
		return; /* unsolicited (e.g. 421 on timeout) */
	kind = f->q[f->qhead];
	f->qhead = (f->qhead + 1) % TP_FILTER_QUEUE;
	f->qlen--;
	if (kind == K_REUSE) {
		f->swallow = false;
		f->reuse = f->rcode == 250 && !f->personal ? 1 : -1;
	}
	if (kind == K_DATA) {
		/* 354: the body follows; its end queues the final reply. */
		f->cstate = f->rcode == 354 ? C_BODY : C_CMD;
		f->bstate = TP_BODY_LINESTART;
	}
	*resume = true;
}

/* line_start - the first bytes of a reply line say its code and end. */
static int
line_start(struct tp_filter *f, tp_filter_emit to_client, void *arg)
{
	if (++f->rlines > TP_REPLY_MAX_LINES) {
		f->why = "too many reply lines";
		return TP_FILTER_EPROTO;
	}
	f->rfinal = f->rlen < 4 || f->rbuf[3] != '-';
	f->rcode = f->rlen >= 3 && isdigit((unsigned char)f->rbuf[0]) &&
		isdigit((unsigned char)f->rbuf[1]) &&
		isdigit((unsigned char)f->rbuf[2])
	    ? (f->rbuf[0] - '0') * 100 + (f->rbuf[1] - '0') * 10 +
		(f->rbuf[2] - '0')
	    : 0;
	f->rmid = true;
	f->rlinelen = f->rlen;
	f->swallow = f->qlen > 0 && f->q[f->qhead] == K_REUSE;
	if (f->swallow)
		return 0; /* the RSET's reply is ours */
	if (!f->ebuffering && f->qlen > 0 && f->q[f->qhead] == K_EHLO &&
	    f->rcode == 250) {
		if (f->ebuf == NULL &&
		    (f->ebuf = malloc(2 * TP_FILTER_EHLO_MAX)) == NULL)
			return -1;
		f->hbuf = f->ebuf + TP_FILTER_EHLO_MAX;
		f->ebuffering = f->efirst = true;
		f->elen = 0;
		f->held = f->epass = f->chunking = false;
	}
	if (f->ebuffering)
		return ehlo_bytes(f, f->rbuf, f->rlen, to_client, arg);
	return to_client(arg, f->rbuf, f->rlen);
}

int
tp_filter_server(struct tp_filter *f, const char *data, size_t len,
    tp_filter_emit to_client, void *arg, bool *resume)
{
	size_t used = 0, n;
	const char *lf;
	int rc;

	*resume = false;
	while (used < len) {
		const char *p = data + used;
		size_t left = len - used;

		if (f->reuse != 0) {
			/* spoke after the RSET's reply: not to be reused */
			f->reuse = -1;
			break;
		}
		if (!f->rmid) {
			while (f->rlen < 4 && left > 0 && *p != '\n') {
				f->rbuf[f->rlen++] = *p++;
				left--;
				used++;
			}
			if (f->rlen < 4 && left == 0)
				break;
			if ((rc = line_start(f, to_client, arg)) < 0)
				return rc;
			f->rlen = 0;
			continue;
		}
		lf = memchr(p, '\n', left);
		n = lf ? (size_t)(lf - p) + 1 : left;
		/* spec 5: act at the limit, not at the line's end */
		if (f->rlinelen + n > TP_LINE_MAX + 2) {
			f->why = "reply line longer than 2048 octets";
			return TP_FILTER_EPROTO;
		}
		f->rlinelen += n;
		if (f->swallow) {
			/* not for the client */
		} else if (f->ebuffering) {
			if (ehlo_bytes(f, p, n, to_client, arg) < 0)
				return -1;
		} else if (to_client(arg, p, n) < 0) {
			return -1;
		}
		used += n;
		if (lf == NULL)
			break;
		f->rmid = false;
		f->rcont = !f->rfinal;
		if (f->ebuffering && ehlo_line_done(f, to_client, arg) < 0)
			return -1;
		if (!f->rfinal)
			continue;
		reply_done(f, resume);
		if (f->answer != NULL && f->qlen == 0) {
			if (answer(f, f->answer, to_client, arg) < 0)
				return -1;
			*resume = true;
		}
	}
	return 0;
}

bool
tp_filter_waiting(const struct tp_filter *f)
{
	return f->qlen > 0;
}

bool
tp_filter_boundary(const struct tp_filter *f)
{
	return !f->rmid && !f->rcont;
}

const char *
tp_filter_phase(const struct tp_filter *f)
{
	/* Postfix's smtp(8) words, so that MTA logs read the same. */
	if (f->qlen == 1 && f->cstate == C_BDAT)
		return "sending message body"; /* this BDAT's chunk */
	if (f->qlen > 0) {
		switch (f->q[f->qhead]) {
		case K_GREETING:
			return "receiving the initial server greeting";
		case K_EHLO:
			return "performing the EHLO handshake";
		case K_HELO:
			return "performing the HELO handshake";
		case K_MAIL:
			return "sending MAIL FROM";
		case K_RCPT:
			return "sending RCPT TO";
		case K_DATA:
			return "sending DATA command";
		case K_BDAT:
			return "sending BDAT command";
		case K_DOT:
			return "sending end of data -- message may be sent "
			       "more than once";
		case K_RSET:
			return "sending RSET";
		case K_QUIT:
		case K_REUSE:
			return "sending QUIT";
		default:
			return "waiting for a reply";
		}
	}
	if (f->cstate == C_BODY || f->cstate == C_BDAT)
		return "sending message body";
	return NULL;
}

bool
tp_filter_end_of_data(const struct tp_filter *f)
{
	return f->qlen > 0 && f->q[f->qhead] == K_DOT;
}

bool
tp_filter_bye(const struct tp_filter *f)
{
	return f->bye;
}

int
tp_filter_reuse(const struct tp_filter *f)
{
	return f->reuse;
}

void
tp_filter_replay(
    struct tp_filter *f, const char *ehlo, const char *helo, bool chunking)
{
	f->replay = true;
	f->replay_ehlo = ehlo;
	f->replay_helo = helo;
	f->replay_chunking = chunking;
}

int
tp_filter_replying(const struct tp_filter *f)
{
	if (f->qlen == 0)
		return 0;
	if (f->q[f->qhead] == K_GREETING)
		return TP_FILTER_R_GREETING;
	if (f->q[f->qhead] == K_EHLO && f->ebuffering)
		return TP_FILTER_R_EHLO;
	if (f->q[f->qhead] == K_HELO && f->rcode == 250)
		return TP_FILTER_R_HELO;
	return 0;
}
