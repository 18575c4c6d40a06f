/*
 * dialogue.c - what a session says before it relays, glued to the pure
 * engines: a PROXY header from a load balancer (proxy_proto.c), the
 * server-mode pre-TLS dialogue (smtp_server.c), the client-mode STARTTLS
 * negotiation (smtp_client.c) and the backend's greeting and HELO/EHLO
 * replay (smtp_server.c).  The state lives in a tp_dialogue allocated
 * for the dialogue only, so relaying sessions stay small.
 *
 * STARTTLS safety (spec 5): in server mode every byte after the client's
 * STARTTLS line is discarded and the handshake starts once our 220 has
 * been written (side.c); in client mode a byte after the upstream's 220
 * fails the session (smtp_client.c).  Worker thread only.
 */
#include "tlsproxy/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/connpool.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/proxy_proto.h"
#include "tlsproxy/smtp_client.h"
#include "tlsproxy/smtp_server.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/wctx.h"

#define REPLY_REFUSED "503 5.5.1 Error: the server refused this session\r\n"

struct tp_dialogue {
	struct tp_smtpc cl;  /* client: STARTTLS with the upstream */
	struct tp_smtps srv; /* server: our pre-TLS dialogue */
	struct tp_smtpb be;  /* server: the backend's greeting */
	char proxy[TP_PROXY_HDR_MAX];
	size_t proxylen;
};

int
tp_dialogue_start(struct tp_conn *c)
{
	if (c->dlg == NULL && (c->dlg = calloc(1, sizeof(*c->dlg))) == NULL)
		return -1;
	return 0;
}

void
tp_dialogue_free(struct tp_conn *c)
{
	free(c->dlg);
	c->dlg = NULL;
}

static void
smtp_timer(struct tp_conn *c)
{
	tp_conn_timer(c, c->r->v[TP_K_SMTP_TIMEOUT].n);
}

/* send_down / send_up - queue bytes and write them. */
static int
send_to(struct side *s, const char *data, size_t len)
{
	if (tp_side_send(s, data, len) < 0) {
		tp_conn_close(tp_side_conn(s), "out of memory");
		return -1;
	}
	tp_side_flush(s);
	return 0;
}

/*
 * PROXY header from a load balancer (accept_proxy = yes).
 */

void
tp_dialogue_proxy_input(struct tp_conn *c)
{
	struct tp_dialogue *d = c->dlg;
	struct tp_chunk *k = c->down.in;
	struct sockaddr_storage src, dst;
	size_t n = k->end - k->start, before = d->proxylen;
	const char *why = NULL;
	int h;

	if (n > sizeof(d->proxy) - d->proxylen)
		n = sizeof(d->proxy) - d->proxylen;
	memcpy(d->proxy + d->proxylen, k->data + k->start, n);
	d->proxylen += n;
	h = tp_proxy_decode(d->proxy, d->proxylen, &src, &dst, &why);
	if (h < 0 || (h == 0 && d->proxylen == sizeof(d->proxy))) {
		tp_conn_log(c, TP_LOG_WARNING, "from %s: %s", c->peer_addr,
		    why ? why : "PROXY header too long");
		tp_conn_close(c, NULL);
		return;
	}
	if (h == 0) {
		tp_side_discard_input(&c->down);
		tp_side_update_read(&c->down);
		return;
	}
	/* What follows the header belongs to the session. */
	k->start += (uint32_t)((size_t)h - before);
	if (k->start == k->end)
		tp_side_discard_input(&c->down);
	if (src.ss_family != AF_UNSPEC) {
		c->peer_ss = src;
		c->local_ss = dst;
		tp_conn_set_peer(c);
		tp_conn_log(c, TP_LOG_INFO, "client address %s (PROXY header)",
		    c->peer_addr);
	}
	tp_conn_admit(c);
}

/*
 * Server mode: our own pre-TLS dialogue (spec 4.4).
 */

void
tp_dialogue_server_begin(struct tp_conn *c)
{
	char caps[TP_CAPS_MAX];
	bool known;

	if (tp_dialogue_start(c) < 0) {
		tp_conn_close(c, "out of memory");
		return;
	}
	known = tp_caps_get(c->rt->stats, caps, sizeof(caps));
	tp_smtps_init(&c->dlg->srv, &c->rt->smtps, known ? caps : NULL);
	tp_smtps_greeting(&c->dlg->srv);
	c->state = CS_SMTP_DOWN;
	if (send_to(&c->down, c->dlg->srv.out, c->dlg->srv.outlen) < 0)
		return;
	c->dlg->srv.outlen = 0;
	smtp_timer(c);
	tp_side_update_read(&c->down);
	/* Bytes that came with a PROXY header. */
	if (c->down.in != NULL)
		tp_dialogue_down_input(c);
}

void
tp_dialogue_down_input(struct tp_conn *c)
{
	struct tp_smtps *s = &c->dlg->srv;
	struct tp_chunk *k = c->down.in;
	const char *p = k->data + k->start;
	size_t n = k->end - k->start;
	enum tp_smtps_action a;

	for (;;) {
		a = tp_smtps_input(s, &p, &n);
		if (s->outlen > 0) {
			if (tp_side_send(&c->down, s->out, s->outlen) < 0) {
				tp_conn_close(c, "out of memory");
				return;
			}
			s->outlen = 0;
		}
		if (a != TP_SMTPS_MORE || n == 0)
			break;
	}
	k->start = (uint32_t)(p - k->data);
	switch (a) {
	case TP_SMTPS_MORE:
		tp_side_discard_input(&c->down);
		smtp_timer(c);
		break;
	case TP_SMTPS_STARTTLS:
		/* CVE-2011-0411: nothing sent after STARTTLS survives. */
		if (n > 0)
			tp_conn_log(c, TP_LOG_WARNING,
			    "%s: %zu bytes "
			    "pipelined after STARTTLS discarded",
			    c->peer_addr, n);
		tp_side_discard_input(&c->down);
		c->state = CS_STARTTLS_WAIT;
		tp_conn_timer(c, c->r->v[TP_K_HANDSHAKE_TIMEOUT].n);
		break;
	case TP_SMTPS_PLAINTEXT:
		/* The rest stays in down.in, after the pending command. */
		if (k->start == k->end)
			tp_side_discard_input(&c->down);
		c->go_plain = true;
		tp_conn_log(c, TP_LOG_INFO,
		    "%s continues without TLS "
		    "(security = may)",
		    c->peer_addr);
		c->state = CS_CONNECT;
		tp_upstream_next(c);
		break;
	case TP_SMTPS_CLOSE:
		tp_side_discard_input(&c->down);
		c->state = CS_LINGER;
		tp_side_end(&c->down);
		tp_conn_timer(c, TP_LINGER_MS);
		break;
	}
	if (!c->closing) {
		tp_side_flush(&c->down);
		tp_side_update_read(&c->down);
	}
}

/*
 * Server mode: the backend's greeting (and the HELO/EHLO replay when the
 * client went on in plaintext), then the relay.
 */

void
tp_dialogue_backend_begin(struct tp_conn *c)
{
	if (tp_dialogue_start(c) < 0) {
		tp_conn_close(c, "out of memory");
		return;
	}
	tp_smtpb_init(&c->dlg->be, c->go_plain ? c->dlg->srv.helo : NULL);
	c->state = CS_SMTP_UP;
	smtp_timer(c);
	tp_side_update_read(c->up);
}

static void
backend_ready(struct tp_conn *c)
{
	const char *pending = c->dlg->srv.pending;
	size_t len = strlen(pending);
	struct tp_chunk *k;

	if (c->go_plain && len > 0) {
		/* The command that started the plaintext relay goes first,
		 * through the filter like every other. */
		if ((k = tp_chunk_get(&c->w->pool)) == NULL) {
			tp_conn_close(c, "out of memory");
			return;
		}
		memcpy(k->data, pending, len);
		k->end = (uint32_t)len;
		c->down.plain = k;
	}
	tp_relay_start(c);
}

static void
backend_input(struct tp_conn *c)
{
	struct tp_smtpb *b = &c->dlg->be;
	struct tp_chunk *k = c->up->in;
	const char *p = k->data + k->start;
	size_t n = k->end - k->start;
	enum tp_smtpb_action a = tp_smtpb_input(b, &p, &n);

	k->start = (uint32_t)(p - k->data);
	if (k->start == k->end)
		tp_side_discard_input(c->up);
	switch (a) {
	case TP_SMTPB_MORE:
		smtp_timer(c);
		tp_side_update_read(c->up);
		break;
	case TP_SMTPB_SEND:
		if (send_to(c->up, b->out, b->outlen) == 0) {
			smtp_timer(c);
			tp_side_update_read(c->up);
		}
		break;
	case TP_SMTPB_REFUSED:
		/* The backend's own refusal is the client's answer. */
		tp_conn_log(c, TP_LOG_INFO,
		    "backend refused the session: "
		    "%.*s",
		    (int)b->outlen - 2, b->out);
		if (tp_side_send(&c->down, b->out, b->outlen) < 0) {
			tp_conn_close(c, "out of memory");
			return;
		}
		backend_ready(c);
		break;
	case TP_SMTPB_READY:
		backend_ready(c);
		break;
	case TP_SMTPB_FAIL:
		tp_conn_log(c, TP_LOG_WARNING, "%s[%s]:%u: %.*s", c->up_host,
		    c->up_ip, c->up_port, (int)b->outlen, b->out);
		tp_conn_fail(c, NULL);
		break;
	}
}

/*
 * Client mode: STARTTLS with the upstream (spec 4.2).
 */

void
tp_dialogue_client_begin(struct tp_conn *c)
{
	if (tp_dialogue_start(c) < 0) {
		tp_conn_close(c, "out of memory");
		return;
	}
	tp_smtpc_init(&c->dlg->cl, c->rt->helo, tp_conn_level(c) == TP_SEC_MAY,
	    c->up_host, c->up_ip);
	c->dlg->cl.plain_only = c->plain;
	c->state = CS_SMTP_UP;
	smtp_timer(c);
	tp_side_update_read(c->up);
}

/* client_failed - this upstream cannot be used: remember the 421. */
static void
client_failed(struct tp_conn *c)
{
	struct tp_smtpc *s = &c->dlg->cl;
	size_t n = s->outlen >= 2 ? s->outlen - 2 : s->outlen;

	snprintf(tp_conn_reply(c), TP_CONN_REPLY_MAX, "%.*s", (int)n, s->out);
	tp_upstream_failed(c, TP_EPROTO, tp_conn_reply(c));
}

static void
client_input(struct tp_conn *c)
{
	struct tp_smtpc *s = &c->dlg->cl;
	struct tp_chunk *k = c->up->in;
	const char *p = k->data + k->start;
	size_t n = k->end - k->start;
	enum tp_smtpc_action a = tp_smtpc_input(s, &p, &n);

	k->start = (uint32_t)(p - k->data);
	if (k->start == k->end)
		tp_side_discard_input(c->up);
	switch (a) {
	case TP_SMTPC_MORE:
		smtp_timer(c);
		tp_side_update_read(c->up);
		break;
	case TP_SMTPC_SEND:
		if (send_to(c->up, s->out, s->outlen) == 0) {
			smtp_timer(c);
			tp_side_update_read(c->up);
		}
		break;
	case TP_SMTPC_STARTTLS:
		tp_side_discard_input(c->up); /* empty by construction */
		if (tp_conn_tls_begin(c, c->up) < 0) {
			tp_conn_close(c, "out of memory");
			return;
		}
		tp_conn_advance(c);
		break;
	case TP_SMTPC_PLAINTEXT:
		if (!s->plain_only)
			tp_conn_log(c, TP_LOG_INFO,
			    "%s[%s]:%u: no TLS "
			    "(STARTTLS not available), continuing in "
			    "plaintext (security = may)",
			    c->up_host, c->up_ip, c->up_port);
		if (c->gwy != NULL) {
			tp_gateway_up_ready(c);
			break;
		}
		if (send_to(&c->down, s->greeting, strlen(s->greeting)) < 0 ||
		    send_to(&c->down, "\r\n", 2) < 0)
			return;
		tp_relay_start(c);
		break;
	case TP_SMTPC_REFUSED:
		if (c->gwy != NULL) {
			/* Postfix: "host refused to talk to me", next MX */
			snprintf(tp_conn_reply(c), TP_CONN_REPLY_MAX,
			    "421 4.3.0 host %s[%s] refused to talk to me: "
			    "%.*s",
			    c->up_host, c->up_ip, (int)s->outlen - 2, s->out);
			tp_upstream_failed(c, TP_EPROTO, tp_conn_reply(c) + 10);
			break;
		}
		/* Relay the refusal as is; answer the client's QUIT. */
		tp_conn_log(c, TP_LOG_INFO,
		    "%s[%s]:%u refused to talk to us: "
		    "%.*s",
		    c->up_host, c->up_ip, c->up_port, (int)s->outlen - 2,
		    s->out);
		if (send_to(&c->down, s->out, s->outlen) < 0)
			return;
		tp_conn_close_handle(c, (uv_handle_t *)&c->up->tcp);
		c->answer_quit = true;
		c->state = CS_LINGER;
		tp_conn_timer(c, c->r->v[TP_K_SMTP_TIMEOUT].n);
		tp_side_update_read(&c->down);
		break;
	case TP_SMTPC_FAIL:
		client_failed(c);
		break;
	}
}

/* tp_dialogue_tls_done - client: TLS is up; replay the greeting, relay. */
void
tp_dialogue_tls_done(struct tp_conn *c)
{
	const char *g = c->dlg->cl.greeting;

	if (c->gwy != NULL) {
		tp_gateway_up_ready(c);
		return;
	}
	if (send_to(&c->down, g, strlen(g)) < 0 ||
	    send_to(&c->down, "\r\n", 2) < 0)
		return;
	tp_reuse_begin(c);
	if (c->reuse != NULL)
		tp_reuse_greeting(c->reuse, g);
	tp_relay_start(c);
}

void
tp_dialogue_up_input(struct tp_conn *c)
{
	if (c->r->mode != TP_MODE_SERVER)
		client_input(c);
	else
		backend_input(c);
}

/* tp_dialogue_up_lost - the upstream closed or fell silent mid-dialogue. */
void
tp_dialogue_up_lost(struct tp_conn *c, bool timeout)
{
	if (c->r->mode == TP_MODE_SERVER) {
		tp_conn_log(c, TP_LOG_WARNING,
		    "%s[%s]:%u: %s while reading "
		    "the backend's greeting",
		    c->up_host, c->up_ip, c->up_port,
		    timeout ? "timeout" : "lost connection");
		tp_conn_fail(c, NULL);
		return;
	}
	if (timeout)
		tp_smtpc_fail_timeout(&c->dlg->cl);
	else
		tp_smtpc_fail_lost(&c->dlg->cl);
	client_failed(c);
}

void
tp_dialogue_on_timeout(struct tp_conn *c)
{
	char line[400];

	switch (c->state) {
	case CS_PROXY_IN:
		tp_conn_log(c, TP_LOG_INFO,
		    "timeout reading the PROXY header "
		    "from %s",
		    c->peer_addr);
		tp_conn_close(c, NULL);
		break;
	case CS_SMTP_DOWN:
		snprintf(line, sizeof(line),
		    "421 4.4.2 %s Error: timeout "
		    "exceeded",
		    c->rt->hostname);
		tp_conn_fail(c, line);
		break;
	case CS_SMTP_UP:
		tp_dialogue_up_lost(c, true);
		break;
	default:
		break;
	}
}

/*
 * After a refused greeting (client mode): answer QUIT with 221, anything
 * else with 503, then close.
 */
void
tp_dialogue_linger_input(struct tp_conn *c)
{
	struct tp_chunk *k = c->down.in;
	const char *p = k->data + k->start, *end = k->data + k->end, *lf;
	bool quit = false;

	while (c->answer_quit && p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL)
			break;
		if (lf - p >= 4 && strncasecmp(p, "QUIT", 4) == 0)
			quit = true;
		else if (tp_side_send(&c->down, REPLY_REFUSED,
			     strlen(REPLY_REFUSED)) < 0)
			break;
		p = lf + 1;
		if (quit)
			break;
	}
	tp_side_discard_input(&c->down);
	if (quit && c->answer_quit) {
		c->answer_quit = false;
		tp_side_send(&c->down, "221 2.0.0 Bye\r\n", 15);
		tp_side_end(&c->down);
		tp_conn_timer(c, TP_LINGER_MS);
	}
	tp_side_flush(&c->down);
	tp_side_update_read(&c->down);
}
