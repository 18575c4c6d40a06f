/*
 * smtp_gateway.c - the outbound gateway's SMTP engine (spec 4.9): the
 * server side of SMTP to the local MTA, and the client side of one
 * upstream session at a time, to the domain of the transaction's first
 * recipient.  Sans I/O: gateway.c feeds it bytes and events and sends
 * what it leaves in down_out and up_out.  Pure: no I/O, no allocation;
 * runs on the session's worker thread.
 *
 * Order.  Every MTA command takes one slot in q, in order; a slot is
 * answered by the gateway (its text) or by the upstream (a relayed
 * reply).  A slot leaves for down_out only at the head of q, so replies
 * keep the order of the commands under PIPELINING.  Upstream replies are
 * matched to what was sent by the expect queue; a relayed one always
 * answers q's head (see smtp_gateway.h).
 *
 * Room.  down_out never overflows: `reserved` keeps room for every
 * queued reply (its text, or TP_GW_LOCAL for one still waiting), MTA
 * input stops once down_len + reserved passes half of down_out, and a
 * relayed reply gets what is left beyond the others' room, at most
 * TP_GW_REPLY_MAX (later lines dropped, the last kept one made final;
 * `cut` counts the rare reply shortened for room).  up_out takes at most
 * a MAIL and a RCPT per MTA command, and input stops before it could not.
 *
 * Waiting.  No MTA input is taken while a destination is being reached
 * (CONNECT until tp_gw_up_ready/failed, then its EHLO), while a DATA
 * waits for its 354, while an upstream without PIPELINING owes a reply,
 * or while an upstream owes a reply and no domain is fixed (the next
 * RCPT may need another upstream, which must not be closed before it
 * has answered everything: a lost '.' reply would duplicate mail).
 *
 * Failures are temporary (spec 4.6): an upstream 421 reaches the MTA as
 * 451 with the same text; a lost upstream answers whatever waited with
 * the caller's reply, and in a transaction that reached it, every later
 * RCPT and DATA of that transaction too (a 5xx there would bounce mail
 * the upstream never refused).  Postfix's reply wording throughout.
 */
#include "tlsproxy/smtp_gateway.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_ERRORS   10
#define MAX_TOO_LONG 3
/* up_out room one MTA command may need: a MAIL and a RCPT */
#define UP_ROOM      (2 * (TP_GW_LINE_MAX + 2))

enum { S_CMD, S_CONNECT, S_UPHELLO, S_DATA_WAIT, S_BODY, S_CLOSED };
/* slot kinds: K_EHLO's text is made when it goes out; K_CLOSE ends it */
enum { K_OWN, K_EHLO, K_RCPT, K_DATA, K_DOT, K_RSET, K_CLOSE };
/* upstream replies awaited; X_RSETQ and X_QUIT are swallowed; X_PARK
 * (the RSET that ends an upstream's use, conf->reuse) decides its fate */
enum {
	X_EHLO,
	X_HELO,
	X_MAIL,
	X_RCPT,
	X_DATA,
	X_DOT,
	X_RSET,
	X_RSETQ,
	X_QUIT,
	X_PARK
};
enum cmd_rc { C_DONE, C_DEFER };

void
tp_gw_init(struct tp_gw *g, const struct tp_gw_conf *conf)
{
	memset(g, 0, sizeof(*g));
	g->conf = conf;
	g->state = S_CMD;
	tp_line_init(&g->lr, TP_GW_LINE_MAX);
	tp_line_init(&g->ur, TP_LINE_MAX);
	tp_reply_init(&g->ureply);
}

static const char *
hostname(const struct tp_gw *g)
{
	return g->conf->hostname != NULL ? g->conf->hostname : "localhost";
}

/* down_put - bytes for the MTA; the room was kept (see the top). */
static void
down_put(struct tp_gw *g, const char *s, size_t n)
{
	assert(n <= sizeof(g->down_out) - g->down_len);
	if (n > sizeof(g->down_out) - g->down_len)
		n = sizeof(g->down_out) - g->down_len;
	memcpy(g->down_out + g->down_len, s, n);
	g->down_len += n;
}

/* up_put - bytes for the upstream; can_take() kept the room. */
static void
up_put(struct tp_gw *g, const char *s, size_t n)
{
	assert(n <= sizeof(g->up_out) - g->up_len);
	if (n > sizeof(g->up_out) - g->up_len)
		return; /* never a partial command */
	memcpy(g->up_out + g->up_len, s, n);
	g->up_len += n;
}

static void
up_cmd(struct tp_gw *g, const char *cmd)
{
	up_put(g, cmd, strlen(cmd));
}

static void
expect(struct tp_gw *g, int kind)
{
	unsigned i = (g->ehead + g->elen) % TP_GW_EXPECT;

	assert(g->elen < TP_GW_EXPECT);
	if (g->elen == TP_GW_EXPECT)
		return;
	g->expect[i] = (unsigned char)kind;
	g->etxn[i] = g->txn;
	g->elen++;
}

/*
 * Replies of the gateway's own.
 */

static struct tp_gw_slot *
slot(struct tp_gw *g, unsigned i)
{
	return &g->q[(g->qhead + i) % TP_GW_QUEUE];
}

/* ehlo_reply - our EHLO reply into buf; its length. */
static size_t
ehlo_reply(const struct tp_gw *g, char *buf, size_t len)
{
	char size[40] = "";
	int n;

	if (g->conf->size > 0)
		snprintf(
		    size, sizeof(size), "250-SIZE %llu\r\n", g->conf->size);
	n = snprintf(buf, len,
	    "250-%.255s\r\n250-PIPELINING\r\n%s250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n"
	    "250 LIMITS RCPTDOMAINMAX=1\r\n",
	    hostname(g), size);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* push - a slot for the command just read, waiting for its reply. */
static struct tp_gw_slot *
push(struct tp_gw *g, int kind)
{
	struct tp_gw_slot *s;

	assert(g->qlen < TP_GW_QUEUE);
	s = slot(g, g->qlen++);
	s->kind = (unsigned char)kind;
	s->ready = false;
	s->text[0] = '\0';
	s->len = TP_GW_LOCAL;
	g->reserved += s->len;
	return s;
}

/* set_text - a waiting slot gets its reply (text without CRLF). */
static void
set_text(struct tp_gw *g, struct tp_gw_slot *s, const char *text)
{
	size_t n = strnlen(text, sizeof(s->text) - 3);

	memcpy(s->text, text, n);
	memcpy(s->text + n, "\r\n", 3);
	g->reserved -= s->len;
	s->len = (unsigned short)(n + 2);
	g->reserved += s->len;
	s->ready = true;
}

static void
pop(struct tp_gw *g)
{
	g->reserved -= slot(g, 0)->len;
	g->qhead = (g->qhead + 1) % TP_GW_QUEUE;
	g->qlen--;
}

/* flush - the ready replies at the head of q go out. */
static void
flush(struct tp_gw *g)
{
	char buf[512];

	while (g->qlen > 0 && slot(g, 0)->ready) {
		struct tp_gw_slot *s = slot(g, 0);

		if (s->kind == K_EHLO)
			down_put(g, buf, ehlo_reply(g, buf, sizeof(buf)));
		else
			down_put(g, s->text, s->len);
		if (s->kind == K_CLOSE)
			g->closed = true;
		pop(g);
	}
}

/* answer_last - the last command read gets text (no CRLF). */
static void
answer_last(struct tp_gw *g, const char *text)
{
	assert(g->qlen > 0 && !slot(g, g->qlen - 1)->ready);
	if (g->qlen == 0 || slot(g, g->qlen - 1)->ready)
		return;
	set_text(g, slot(g, g->qlen - 1), text);
	flush(g);
}

__attribute__((format(printf, 3, 4))) static void
local(struct tp_gw *g, int kind, const char *fmt, ...)
{
	char text[TP_GW_LOCAL];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	push(g, kind);
	answer_last(g, text);
}

/*
 * park - conf->reuse: an upstream done with gets RSET instead of QUIT,
 * and is kept (TP_GW_PARK) when it answers 250.  Only behind replies it
 * still owes when it pipelines.
 */
static bool
park(struct tp_gw *g)
{
	if (!g->conf->reuse || !g->up_open || g->parking ||
	    (g->elen > 0 && !(g->up_caps & TP_GW_UP_PIPE)))
		return false;
	up_cmd(g, "RSET\r\n");
	expect(g, X_PARK);
	g->parking = true;
	return true;
}

/* close_session - the last reply; QUIT (or RSET) to an open upstream. */
static void
close_session(struct tp_gw *g, const char *text)
{
	local(g, K_CLOSE, "%s", text);
	if (g->up_open && !park(g)) {
		up_cmd(g, "QUIT\r\n");
		expect(g, X_QUIT);
	}
	g->state = S_CLOSED;
}

/* error - a bad command's reply; the 10th ends the session. */
static void
error(struct tp_gw *g, const char *text)
{
	if (++g->errors >= MAX_ERRORS)
		close_session(g, "421 4.7.0 Too many errors");
	else
		local(g, K_OWN, "%s", text);
}

/*
 * reply_text - the upstream reply's first line as our answer to an MTA
 * command it refuses: 421 made 451 (the upstream closes, not the
 * gateway), a code that is no refusal (3xx to MAIL) made 451 too.
 */
static void
reply_text(const struct tp_gw *g, char *buf, size_t len)
{
	int code = g->ureply.code;

	if (code == 421 || code < 400)
		code = 451;

	if (g->ureply.first[0] != '\0')
		snprintf(buf, len, "%d %s", code, g->ureply.first);
	else
		snprintf(buf, len, "%d", code);
}

/* clean - the caller's reply text, printable, one line. */
static void
clean(char *buf, size_t len, const char *text)
{
	size_t i;

	if (text == NULL || *text == '\0')
		text = "451 4.4.2 Lost connection with the destination";
	for (i = 0; i + 1 < len && text[i] != '\0'; i++)
		buf[i] = (unsigned char)text[i] < 0x20 ||
			(unsigned char)text[i] >= 0x7f
		    ? ' '
		    : text[i];
	buf[i] = '\0';
}

/* caller_reply - the event layer's reply: one 4xx or 5xx line. */
static void
caller_reply(char *buf, size_t len, const char *text)
{
	char t[TP_GW_LOCAL];

	clean(t, sizeof(t), text);
	if ((t[0] == '4' || t[0] == '5') && isdigit((unsigned char)t[1]) &&
	    isdigit((unsigned char)t[2]) && (t[3] == ' ' || t[3] == '\0'))
		snprintf(buf, len, "%s", t);
	else
		snprintf(buf, len, "451 4.3.0 %s", t);
}

/*
 * Addresses and parameters.
 */

struct path {
	const char *addr; /* inside the angle brackets */
	size_t alen;
	const char *params; /* after '>': "" or " ..." */
};

/*
 * parse_path - "FROM:<addr> params" (or "TO:..."), case-insensitive,
 * spaces allowed after the colon (Postfix); quoted local parts may hold
 * '>'.  No control octet anywhere (nothing smuggled upstream).
 */
static bool
parse_path(const char *arg, const char *prefix, struct path *p)
{
	size_t n = strlen(prefix);
	bool quoted = false;
	const char *s;

	for (s = arg; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	if (strncasecmp(arg, prefix, n) != 0)
		return false;
	arg += n;
	while (*arg == ' ')
		arg++;
	if (*arg != '<')
		return false;
	for (s = arg + 1; *s != '\0'; s++) {
		if (quoted && *s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (*s == '>' && !quoted)
			break;
	}
	if (*s != '>' || (s[1] != '\0' && s[1] != ' '))
		return false;
	p->addr = arg + 1;
	p->alen = (size_t)(s - arg - 1);
	p->params = s + 1;
	return true;
}

/* next_param - the next space-separated token after *at. */
static bool
next_param(const char **at, const char **tok, size_t *n)
{
	const char *s = *at;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return false;
	*tok = s;
	while (*s != '\0' && *s != ' ')
		s++;
	*n = (size_t)(s - *tok);
	*at = s;
	return true;
}

/* is_param - token is keyword (case-insensitive), with "=..." or alone. */
static bool
is_param(const char *tok, size_t n, const char *kw)
{
	size_t k = strlen(kw);

	return n >= k && strncasecmp(tok, kw, k) == 0 &&
	    (n == k || tok[k] == '=');
}

static bool
has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/*
 * rcpt_domain - the recipient's domain in lower case without a trailing
 * dot, or false: no '@' outside quotes, an empty local part, an address
 * literal (MX delivery only), a label that is not LDH (or '_') of 1..63
 * octets, an all-numeric top label, more than 253 octets.
 */
static bool
rcpt_domain(const struct path *p, char *dom, size_t len)
{
	const char *at = NULL, *d, *end = p->addr + p->alen;
	bool quoted = false;
	size_t n, label = 0, i;
	bool digits = true;

	for (d = p->addr; d < end; d++) {
		if (quoted && *d == '\\' && d + 1 < end)
			d++;
		else if (*d == '"')
			quoted = !quoted;
		else if (*d == '@' && !quoted)
			at = d;
	}
	if (at == NULL || at == p->addr)
		return false;
	d = at + 1;
	n = (size_t)(end - d);
	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= len)
		return false;
	for (i = 0; i < n; i++) {
		char c = d[i];

		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			digits = true;
			dom[i] = '.';
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		if ((label == 0 && c == '-') || ++label > 63)
			return false;
		if (c < '0' || c > '9')
			digits = false;
		dom[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	if (label == 0 || d[n - 1] == '-' || digits)
		return false;
	dom[n] = '\0';
	return true;
}

/*
 * keep_param - does a MAIL (or RCPT) parameter go to this upstream?  As
 * Postfix's smtp(8): BODY only to 8BITMIME, SIZE to SIZE, RET/ENVID and
 * NOTIFY/ORCPT to DSN, SMTPUTF8 to SMTPUTF8 (the callers decide whether
 * a message needs it), AUTH never (not offered to the MTA); anything
 * else as written.
 */
static bool
keep_param(const struct tp_gw *g, const char *t, size_t n, bool mail)
{
	unsigned caps = g->up_caps;

	if (!mail)
		return (caps & TP_GW_UP_DSN) ||
		    (!is_param(t, n, "NOTIFY") && !is_param(t, n, "ORCPT"));
	if (is_param(t, n, "BODY"))
		return caps & TP_GW_UP_8BITMIME;
	if (is_param(t, n, "SIZE"))
		return caps & TP_GW_UP_SIZE;
	if (is_param(t, n, "RET") || is_param(t, n, "ENVID"))
		return caps & TP_GW_UP_DSN;
	if (is_param(t, n, "SMTPUTF8"))
		return caps & TP_GW_UP_SMTPUTF8;
	return !is_param(t, n, "AUTH");
}

/*
 * send_adapted - a MAIL or RCPT line (as the MTA wrote it, checked) goes
 * upstream without the parameters this upstream did not offer; the rest
 * byte for byte.
 */
static void
send_adapted(struct tp_gw *g, const char *line, bool mail)
{
	char out[TP_GW_LINE_MAX + 3];
	const char *arg, *at, *tok, *from;
	struct path p;
	size_t n, len;

	if (!tp_smtp_verb(line, mail ? "MAIL" : "RCPT", &arg) ||
	    !parse_path(arg, mail ? "FROM:" : "TO:", &p))
		return; /* checked when it was read */
	len = (size_t)(p.params - line);
	memcpy(out, line, len);
	at = p.params;
	for (from = at; next_param(&at, &tok, &n); from = at) {
		if (!keep_param(g, tok, n, mail))
			continue;
		memcpy(out + len, from, (size_t)(at - from));
		len += (size_t)(at - from);
	}
	memcpy(out + len, at, strlen(at)); /* trailing spaces */
	len += strlen(at);
	memcpy(out + len, "\r\n", 2);
	up_put(g, out, len + 2);
}

/* utf8_refusal - Postfix's reply when SMTPUTF8 cannot be had. */
static void
utf8_refusal(const struct tp_gw *g, char *buf, size_t len)
{
	snprintf(buf, len,
	    "550 5.6.7 SMTPUTF8 is required, but was not offered by host "
	    "%.120s",
	    g->up_peer);
}

static bool
utf8_missing(const struct tp_gw *g, bool eight)
{
	return g->mail_utf8 && eight && !(g->up_caps & TP_GW_UP_SMTPUTF8);
}

static void
txn_clear(struct tp_gw *g)
{
	g->have_mail = g->mail_sent = false;
	g->mail_utf8 = g->mail_8bit = false;
	g->rcpt_ok = 0;
	g->rcpt_held = false;
	g->mail_refusal[0] = '\0';
	g->fixed[0] = '\0';
	g->mail[0] = '\0';
}

/*
 * send_rcpt - the RCPT in g->rcpt (the last command read, waiting) goes
 * upstream, or gets Postfix's SMTPUTF8 refusal, or waits for MAIL's
 * reply when the upstream does not pipeline.
 */
static void
send_rcpt(struct tp_gw *g)
{
	char text[TP_GW_LOCAL];

	if (utf8_missing(g, g->rcpt_8bit)) {
		utf8_refusal(g, text, sizeof(text));
		answer_last(g, text);
	} else if (g->elen > 0 && !(g->up_caps & TP_GW_UP_PIPE)) {
		g->rcpt_held = true;
	} else {
		send_adapted(g, g->rcpt, false);
		expect(g, X_RCPT);
	}
}

/*
 * begin_txn - the upstream is ready for this transaction: its MAIL, then
 * the waiting RCPT; the domain is fixed.  A sender that needs SMTPUTF8
 * the upstream lacks refuses the whole transaction, never sent.
 */
static void
begin_txn(struct tp_gw *g)
{
	snprintf(g->fixed, sizeof(g->fixed), "%s", g->up_domain);
	if (utf8_missing(g, g->mail_8bit)) {
		utf8_refusal(g, g->mail_refusal, sizeof(g->mail_refusal));
		answer_last(g, g->mail_refusal);
		return;
	}
	send_adapted(g, g->mail, true);
	expect(g, X_MAIL);
	g->mail_sent = true;
	send_rcpt(g);
}

/*
 * MTA commands.
 */

static void
cmd_helo(struct tp_gw *g, const char *arg, bool ehlo)
{
	char buf[512];
	struct tp_gw_slot *s;

	if (*arg == '\0') {
		error(g,
		    ehlo ? "501 5.5.4 Syntax: EHLO hostname"
			 : "501 5.5.4 Syntax: HELO hostname");
		return;
	}
	/* RFC 5321 4.1.4: as RSET, upstream too (its reply swallowed) */
	if (g->mail_sent && g->up_open) {
		up_cmd(g, "RSET\r\n");
		expect(g, X_RSETQ);
	}
	txn_clear(g);
	g->helo_done = true;
	if (!ehlo) {
		local(g, K_OWN, "250 %.190s", hostname(g));
		return;
	}
	s = push(g, K_EHLO);
	g->reserved -= s->len;
	s->len = (unsigned short)ehlo_reply(g, buf, sizeof(buf));
	g->reserved += s->len;
	s->ready = true;
	flush(g);
}

static void
cmd_mail(struct tp_gw *g, const char *line, size_t len, const char *arg)
{
	unsigned long long size;
	const char *at, *tok;
	struct path p;
	bool utf8 = false;
	size_t n;

	if (!g->helo_done) {
		error(g, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (g->have_mail) {
		error(g, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (!parse_path(arg, "FROM:", &p)) {
		error(g, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	for (at = p.params; next_param(&at, &tok, &n);) {
		if (is_param(tok, n, "SMTPUTF8"))
			utf8 = true;
		if (!is_param(tok, n, "SIZE"))
			continue;
		if (n == 4 || n == 5) {
			error(g, "501 5.5.4 Bad message size syntax");
			return;
		}
		size = 0;
		for (size_t i = 5; i < n; i++) {
			if (tok[i] < '0' || tok[i] > '9') {
				error(g, "501 5.5.4 Bad message size syntax");
				return;
			}
			size = size > (~0ULL - 9) / 10
			    ? ~0ULL
			    : size * 10 + (unsigned)(tok[i] - '0');
		}
		if (g->conf->size > 0 && size > g->conf->size) {
			local(g, K_OWN,
			    "552 5.3.4 Message size exceeds fixed limit");
			return;
		}
	}
	txn_clear(g);
	memcpy(g->mail, line, len + 1);
	g->have_mail = true;
	g->mail_utf8 = utf8;
	g->mail_8bit = has_8bit(p.addr, p.alen);
	g->txn++;
	local(g, K_OWN, "250 2.1.0 Ok");
}

static enum cmd_rc
cmd_rcpt(struct tp_gw *g, const char *line, size_t len, const char *arg)
{
	char dom[256], text[TP_GW_LOCAL];
	struct path p;
	bool eight;

	if (!g->have_mail) {
		error(g, "503 5.5.1 Error: need MAIL command");
		return C_DONE;
	}
	if (!parse_path(arg, "TO:", &p)) {
		error(g, "501 5.5.4 Syntax: RCPT TO:<address>");
		return C_DONE;
	}
	if (!rcpt_domain(&p, dom, sizeof(dom))) {
		error(g, "501 5.1.3 Bad recipient address syntax");
		return C_DONE;
	}
	eight = has_8bit(p.addr, p.alen);
	if (g->fixed[0] != '\0') {
		/* RFC 9422 RCPTDOMAINMAX=1: the MTA retries it later */
		if (strcmp(dom, g->fixed) != 0) {
			local(g, K_OWN,
			    "452 4.5.3 Try again later: one destination "
			    "domain per transaction");
		} else if (g->mail_refusal[0] != '\0') {
			local(g, K_OWN, "%s", g->mail_refusal);
		} else if (utf8_missing(g, eight)) {
			utf8_refusal(g, text, sizeof(text));
			local(g, K_OWN, "%s", text);
		} else if (!g->up_open) { /* lost sets mail_refusal */
			local(g, K_OWN,
			    "451 4.4.2 Lost connection with the "
			    "destination");
		} else {
			push(g, K_RCPT);
			send_adapted(g, line, false);
			expect(g, X_RCPT);
		}
		return C_DONE;
	}
	if (g->up_open && strcmp(dom, g->up_domain) != 0) {
		/* the idle upstream goes first; this RCPT on the next call */
		if (park(g))
			return C_DEFER; /* TP_GW_PARK (or DISCONNECT) next */
		up_cmd(g, "QUIT\r\n");
		g->up_open = false;
		g->up_domain[0] = '\0';
		g->ev = TP_GW_DISCONNECT;
		return C_DEFER;
	}
	memcpy(g->rcpt, line, len + 1);
	g->rcpt_8bit = eight;
	push(g, K_RCPT);
	if (g->up_open) {
		begin_txn(g);
		return C_DONE;
	}
	memcpy(g->domain, dom, strlen(dom) + 1);
	g->state = S_CONNECT;
	g->ev = TP_GW_CONNECT;
	return C_DONE;
}

static void
cmd_data(struct tp_gw *g, const char *arg)
{
	if (*arg != '\0') {
		error(g, "501 5.5.4 Syntax: DATA");
	} else if (!g->have_mail) {
		error(g, "503 5.5.1 Error: need RCPT command");
	} else if (g->mail_refusal[0] != '\0' && g->rcpt_ok > 0) {
		/* the upstream was lost after accepting recipients */
		local(g, K_OWN, "%s", g->mail_refusal);
	} else if (g->fixed[0] == '\0' || g->mail_refusal[0] != '\0' ||
	    !g->up_open) {
		local(g, K_OWN, "554 5.5.1 Error: no valid recipients");
	} else {
		push(g, K_DATA);
		up_cmd(g, "DATA\r\n");
		expect(g, X_DATA);
		g->state = S_DATA_WAIT;
	}
}

static void
cmd_rset(struct tp_gw *g, const char *arg)
{
	if (*arg != '\0') {
		error(g, "501 5.5.4 Syntax: RSET");
		return;
	}
	if (g->mail_sent && g->up_open) {
		push(g, K_RSET);
		up_cmd(g, "RSET\r\n");
		expect(g, X_RSET);
	} else {
		local(g, K_OWN, "250 2.0.0 Ok");
	}
	txn_clear(g);
}

/* command - answer (or relay) one complete command line. */
static enum cmd_rc
command(struct tp_gw *g, const char *line, size_t len)
{
	static const char *const unimplemented[] = {"STARTTLS", "AUTH", "BDAT",
	    "ETRN", "XCLIENT", "XFORWARD", "EXPN", "TURN"};
	const char *arg;

	if (len == 0 || memchr(line, '\0', len) != NULL) {
		error(g, "500 5.5.2 Error: bad syntax");
		return C_DONE;
	}
	if (tp_smtp_verb(line, "EHLO", &arg))
		cmd_helo(g, arg, true);
	else if (tp_smtp_verb(line, "HELO", &arg))
		cmd_helo(g, arg, false);
	else if (tp_smtp_verb(line, "MAIL", &arg))
		cmd_mail(g, line, len, arg);
	else if (tp_smtp_verb(line, "RCPT", &arg))
		return cmd_rcpt(g, line, len, arg);
	else if (tp_smtp_verb(line, "DATA", &arg))
		cmd_data(g, arg);
	else if (tp_smtp_verb(line, "RSET", &arg))
		cmd_rset(g, arg);
	else if (tp_smtp_verb(line, "NOOP", &arg))
		local(g, K_OWN, "250 2.0.0 Ok");
	else if (tp_smtp_verb(line, "HELP", &arg))
		local(g, K_OWN,
		    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP "
		    "QUIT");
	else if (tp_smtp_verb(line, "VRFY", &arg))
		error(g, "502 5.5.1 VRFY command is disabled");
	else if (tp_smtp_verb(line, "QUIT", &arg))
		close_session(g, "221 2.0.0 Bye");
	else {
		for (size_t i = 0;
		     i < sizeof(unimplemented) / sizeof(unimplemented[0]); i++)
			if (tp_smtp_verb(line, unimplemented[i], &arg)) {
				error(g,
				    "502 5.5.1 Error: command not implemented");
				return C_DONE;
			}
		error(g, "502 5.5.2 Error: command not recognized");
	}
	return C_DONE;
}

/* can_take - may the next MTA command be read now? */
static bool
can_take(const struct tp_gw *g)
{
	if (g->state != S_CMD || g->ev != TP_GW_NONE || g->rcpt_held ||
	    g->parking || g->qlen >= TP_GW_QUEUE)
		return false;
	/* back-pressure: half of each output buffer */
	if (g->down_len + g->reserved > TP_GW_OUT / 2 ||
	    g->up_len + UP_ROOM > TP_GW_OUT)
		return false;
	/* one command at a time to an upstream without PIPELINING; and
	 * nothing that may need another upstream while this one owes */
	if (g->up_open && g->elen > 0 &&
	    (!(g->up_caps & TP_GW_UP_PIPE) || g->fixed[0] == '\0'))
		return false;
	return true;
}

/* end_of_data - the body's last line was passed on (or eaten). */
static void
end_of_data(struct tp_gw *g)
{
	if (g->body_discard) {
		local(g, K_DOT, "%s",
		    g->mail_refusal[0] != '\0'
			? g->mail_refusal
			: "451 4.4.2 Lost connection with the destination");
	} else {
		push(g, K_DOT);
		expect(g, X_DOT);
	}
	txn_clear(g);
	g->body_discard = false;
	g->state = S_CMD;
}

static enum tp_gw_event
event(const struct tp_gw *g)
{
	if (g->ev == TP_GW_PARK)
		return TP_GW_PARK; /* the caller looks at g->closed then */
	return g->closed ? TP_GW_CLOSE : (enum tp_gw_event)g->ev;
}

void
tp_gw_greeting(struct tp_gw *g)
{
	char buf[300];
	int n = snprintf(buf, sizeof(buf), "220 %.255s ESMTP\r\n", hostname(g));

	if (n > 0 && (size_t)n < sizeof(buf))
		down_put(g, buf, (size_t)n);
}

size_t
tp_gw_client(struct tp_gw *g, const char *data, size_t len, size_t *body,
    enum tp_gw_event *ev)
{
	const char *p = data;
	size_t l = len, n;

	*body = 0;
	g->ev = TP_GW_NONE;
	if (g->state == S_BODY) {
		/* RFC 5321 4.1.1.4: passed on untouched up to "." */
		n = tp_body_scan(&g->bstate, data, len);
		*body = n > 0 ? n : len;
		if (n > 0) {
			end_of_data(g);
			flush(g);
		}
		*ev = event(g);
		return *body;
	}
	if (g->held && can_take(g)) {
		g->held = false;
		if (command(g, g->lr.buf, g->lr.len) == C_DEFER)
			g->held = true;
	}
	while (l > 0 && !g->held && can_take(g)) {
		const char *start = p;
		bool fresh = !g->lr.skipping && (g->lr.ready || g->lr.len == 0);

		switch (tp_line_feed(&g->lr, &p, &l)) {
		case TP_LINE_MORE:
			continue;
		case TP_LINE_TOOLONG:
			/* spec 5: at the octet that passes the bound */
			if (++g->too_long >= MAX_TOO_LONG)
				close_session(g, "421 4.7.0 Too many errors");
			else
				local(g, K_OWN, "500 5.5.2 Line too long");
			continue;
		case TP_LINE_OK:
			break;
		}
		if (command(g, g->lr.buf, g->lr.len) != C_DEFER)
			continue;
		if (fresh) {
			/* not taken: the caller feeds it again */
			p = start;
			l = len - (size_t)(p - data);
			g->lr.ready = false;
			g->lr.len = 0;
			g->lr.buf[0] = '\0';
		} else {
			g->held = true; /* begun in an earlier call */
		}
	}
	*ev = event(g);
	return (size_t)(p - data);
}

/*
 * The upstream.
 */

/*
 * lost - the upstream is gone: what waits for it gets text; in a
 * transaction that reached it, so does every later RCPT and DATA.
 */
static void
lost(struct tp_gw *g, const char *text)
{
	char t[TP_GW_LOCAL];

	caller_reply(t, sizeof(t), text);
	for (unsigned i = 0; i < g->qlen; i++)
		if (!slot(g, i)->ready)
			set_text(g, slot(g, i), t);
	if (g->state == S_CONNECT || g->state == S_UPHELLO ||
	    g->state == S_DATA_WAIT)
		g->state = S_CMD;
	if (g->state == S_BODY)
		g->body_discard = true;
	if (g->have_mail && (g->mail_sent || g->fixed[0] != '\0') &&
	    g->mail_refusal[0] == '\0')
		memcpy(g->mail_refusal, t, sizeof(t));
	g->mail_sent = false;
	g->rcpt_held = false;
	g->up_open = false;
	g->parking = false;
	g->up_domain[0] = '\0';
	g->up_caps = 0;
	g->up_refusal[0] = '\0';
	g->elen = 0;
	flush(g);
}

/* gone - the upstream said 421: lost, and the caller closes it. */
static void
gone(struct tp_gw *g)
{
	char text[TP_GW_LOCAL];

	reply_text(g, text, sizeof(text));
	lost(g, text);
	g->ev = TP_GW_DISCONNECT;
}

/*
 * relay - the upstream reply in rbuf answers q's head: at most the room
 * left beyond the other queued replies, cut at a line, the last kept
 * line made final; 421 made 451 (the upstream closes, not the gateway).
 */
static void
relay(struct tp_gw *g)
{
	struct tp_gw_slot *s = slot(g, 0);
	size_t room, n = g->rlen, last = g->rlast, i, start;

	assert(g->qlen > 0 && !s->ready);
	if (g->qlen == 0 || s->ready)
		return;
	room = sizeof(g->down_out) - g->down_len - (g->reserved - s->len);
	assert(room >= s->len);
	if (n > room) {
		g->cut++;
		n = last = 0;
		for (i = 0; i < g->rlen;) {
			const char *crlf =
			    memmem(g->rbuf + i, g->rlen - i, "\r\n", 2);
			size_t end;

			if (crlf == NULL ||
			    (end = (size_t)(crlf - g->rbuf) + 2) > room)
				break;
			last = i;
			n = i = end;
		}
	}
	start = g->down_len;
	if (n == 0) {
		/* not even its first line fits: that line, cut */
		down_put(g, g->rbuf, room - 2);
		down_put(g, "\r\n", 2);
	} else {
		down_put(g, g->rbuf, n);
	}
	for (i = start; i + 4 <= g->down_len;) {
		char *e = memchr(g->down_out + i, '\n', g->down_len - i);

		if (g->ureply.code == 421)
			g->down_out[i + 1] = '5';
		if (i == start + last && g->down_out[i + 3] == '-')
			g->down_out[i + 3] = ' ';
		if (e == NULL)
			break;
		i = (size_t)(e - g->down_out) + 1;
	}
	pop(g);
	flush(g);
}

/* ehlo_keyword - an EHLO reply line after the first: what it offers. */
static void
ehlo_keyword(struct tp_gw *g, const char *line, size_t len)
{
	static const struct {
		const char *kw;
		unsigned cap;
	} kws[] = {
	    {"8BITMIME", TP_GW_UP_8BITMIME},
	    {"SMTPUTF8", TP_GW_UP_SMTPUTF8},
	    {"SIZE", TP_GW_UP_SIZE},
	    {"DSN", TP_GW_UP_DSN},
	    {"PIPELINING", TP_GW_UP_PIPE},
	};

	if (len < 4)
		return;
	line += 4;
	len -= 4;
	for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
		size_t k = strlen(kws[i].kw);

		if (len >= k && strncasecmp(line, kws[i].kw, k) == 0 &&
		    (len == k || line[k] == ' '))
			g->up_caps |= kws[i].cap;
	}
}

/* collect - keep a reply line for relaying, within TP_GW_REPLY_MAX. */
static void
collect(struct tp_gw *g, const char *line, size_t len)
{
	if (g->ureply.nlines == 1) {
		g->rlen = 0;
		g->rfull = false;
	}
	if (g->rfull || g->rlen + len + 2 > sizeof(g->rbuf)) {
		g->rfull = true;
		return;
	}
	g->rlast = g->rlen;
	memcpy(g->rbuf + g->rlen, line, len);
	memcpy(g->rbuf + g->rlen + len, "\r\n", 2);
	g->rlen += len + 2;
}

/* reply_done - a whole upstream reply: what it answers goes on. */
static void
reply_done(struct tp_gw *g)
{
	int code = g->ureply.code, kind;
	bool ok = code / 100 == 2, bye = code == 421;
	unsigned short txn;

	if (g->elen == 0) { /* an unsolicited 421 (checked at its start) */
		gone(g);
		return;
	}
	kind = g->expect[g->ehead];
	txn = g->etxn[g->ehead];
	g->ehead = (g->ehead + 1) % TP_GW_EXPECT;
	g->elen--;
	switch (kind) {
	case X_EHLO:
	case X_HELO:
		if (ok) {
			if (kind == X_HELO)
				g->up_caps = 0;
			g->state = S_CMD;
			begin_txn(g);
		} else if (bye) {
			break;
		} else if (kind == X_EHLO) {
			char helo[300];

			g->up_caps = 0;
			snprintf(helo, sizeof(helo), "HELO %.255s\r\n",
			    g->conf->helo ? g->conf->helo : hostname(g));
			up_cmd(g, helo);
			expect(g, X_HELO);
		} else {
			/* it will not talk to us: this RCPT gets its word */
			char text[TP_GW_LOCAL];

			reply_text(g, text, sizeof(text));
			up_cmd(g, "QUIT\r\n");
			lost(g, text);
			g->ev = TP_GW_DISCONNECT;
		}
		break;
	case X_MAIL:
		if (ok) {
			g->up_refusal[0] = '\0';
			if (g->rcpt_held) {
				g->rcpt_held = false;
				send_adapted(g, g->rcpt, false);
				expect(g, X_RCPT);
			}
			break;
		}
		/* the answer to every RCPT of this transaction */
		reply_text(g, g->up_refusal, sizeof(g->up_refusal));
		if (txn == g->txn && g->have_mail)
			memcpy(g->mail_refusal, g->up_refusal,
			    sizeof(g->mail_refusal));
		if (g->rcpt_held) {
			g->rcpt_held = false;
			answer_last(g, g->up_refusal);
		}
		break;
	case X_RCPT:
		if (g->up_refusal[0] != '\0') {
			set_text(g, slot(g, 0), g->up_refusal);
			flush(g);
			break;
		}
		if (ok && txn == g->txn)
			g->rcpt_ok++;
		relay(g);
		break;
	case X_DATA:
		g->state = code == 354 ? S_BODY : S_CMD;
		g->bstate = TP_BODY_LINESTART;
		g->body_discard = false;
		relay(g);
		break;
	case X_DOT:
	case X_RSET:
		relay(g);
		break;
	case X_PARK:
		g->parking = false;
		if (bye)
			break; /* gone, below */
		if (ok && g->elen == 0) {
			g->parked_caps = g->up_caps;
			g->ev = TP_GW_PARK;
		} else {
			up_cmd(g, "QUIT\r\n");
			g->ev = TP_GW_DISCONNECT;
		}
		g->up_open = false;
		g->up_domain[0] = '\0';
		g->up_caps = 0;
		g->up_refusal[0] = '\0';
		break;
	default: /* X_RSETQ, X_QUIT: swallowed */
		break;
	}
	if (bye && g->up_open)
		gone(g);
}

int
tp_gw_upstream(
    struct tp_gw *g, const char *data, size_t len, enum tp_gw_event *ev)
{
	const char *why;
	int rc;

	g->ev = TP_GW_NONE;
	*ev = event(g);
	/* a closed upstream's last words (its 221 to our QUIT) are
	 * ignored; the answer to a parking RSET is not */
	while (len > 0 && g->up_open && (!g->closed || g->parking)) {
		switch (tp_line_feed(&g->ur, &data, &len)) {
		case TP_LINE_MORE:
			continue;
		case TP_LINE_TOOLONG:
			return -1; /* reply line over 2048 octets */
		case TP_LINE_OK:
			break;
		}
		rc = tp_reply_line(&g->ureply, g->ur.buf, g->ur.len, &why);
		if (rc < 0)
			return -1;
		/* a reply nobody asked for: only a 421 is SMTP */
		if (g->ureply.nlines == 1 && g->elen == 0 &&
		    g->ureply.code != 421)
			return -1;
		collect(g, g->ur.buf, g->ur.len);
		if (g->elen > 0 && g->expect[g->ehead] == X_EHLO &&
		    g->ureply.nlines > 1 && g->ureply.code / 100 == 2)
			ehlo_keyword(g, g->ur.buf, g->ur.len);
		if (rc == 1) {
			reply_done(g);
			*ev = event(g);
		}
	}
	*ev = event(g);
	return 0;
}

/* up_begin - a session to g->domain is there: reset what we knew. */
static void
up_begin(struct tp_gw *g, const char *peer, unsigned caps)
{
	tp_line_init(&g->ur, TP_LINE_MAX);
	tp_reply_init(&g->ureply);
	g->ehead = g->elen = 0;
	g->rlen = 0;
	g->up_open = true;
	g->parking = false;
	g->up_caps = caps;
	g->up_refusal[0] = '\0';
	clean(g->up_peer, sizeof(g->up_peer), peer ? peer : "");
	snprintf(g->up_domain, sizeof(g->up_domain), "%s", g->domain);
}

void
tp_gw_up_ready(struct tp_gw *g, const char *peer, enum tp_gw_event *ev)
{
	char ehlo[300];

	g->ev = TP_GW_NONE;
	if (g->state != S_CONNECT) {
		*ev = event(g);
		return;
	}
	up_begin(g, peer, 0);
	snprintf(ehlo, sizeof(ehlo), "EHLO %.255s\r\n",
	    g->conf->helo ? g->conf->helo : hostname(g));
	up_cmd(g, ehlo);
	expect(g, X_EHLO);
	g->state = S_UPHELLO;
	*ev = event(g);
}

void
tp_gw_up_reused(
    struct tp_gw *g, const char *peer, unsigned caps, enum tp_gw_event *ev)
{
	g->ev = TP_GW_NONE;
	if (g->state != S_CONNECT) {
		*ev = event(g);
		return;
	}
	up_begin(g, peer, caps);
	g->state = S_CMD;
	begin_txn(g);
	*ev = event(g);
}

bool
tp_gw_parking(const struct tp_gw *g)
{
	return g->parking;
}

void
tp_gw_up_failed(struct tp_gw *g, const char *reply, enum tp_gw_event *ev)
{
	char t[TP_GW_LOCAL];

	g->ev = TP_GW_NONE;
	if (g->state == S_CONNECT) {
		caller_reply(t, sizeof(t), reply);
		g->state = S_CMD;
		answer_last(g, t);
	}
	*ev = event(g);
}

void
tp_gw_up_lost(struct tp_gw *g, const char *reply, enum tp_gw_event *ev)
{
	g->ev = TP_GW_NONE;
	if (g->state == S_CONNECT)
		tp_gw_up_failed(g, reply, ev);
	else if (g->up_open)
		lost(g, reply);
	*ev = event(g);
}

const char *
tp_gw_phase(const struct tp_gw *g)
{
	/* Postfix's smtp(8) words, so that MTA logs read the same. */
	if (g->state == S_BODY)
		return "sending message body";
	if (g->elen == 0 || !g->up_open)
		return NULL;
	switch (g->expect[g->ehead]) {
	case X_EHLO:
		return "performing the EHLO handshake";
	case X_HELO:
		return "performing the HELO handshake";
	case X_MAIL:
		return "sending MAIL FROM";
	case X_RCPT:
		return "sending RCPT TO";
	case X_DATA:
		return "sending DATA command";
	case X_DOT:
		return "sending end of data -- message may be sent more than "
		       "once";
	case X_RSET:
	case X_RSETQ:
	case X_PARK:
		return "sending RSET";
	default:
		return "sending QUIT";
	}
}

bool
tp_gw_idle(const struct tp_gw *g)
{
	return g->qlen == 0 && !g->held &&
	    (g->state == S_CMD || g->state == S_CLOSED);
}
