/*
 * relay.c - copy both ways between the two sides of a session, through
 * the SMTP tracker (smtp_filter.c) on every route: plaintext from a TLS
 * side is decrypted into a chunk, the tracker passes it on (dropping or
 * answering what the client may not send) and the bytes it emits for a
 * TLS side are encrypted together, so commands that arrived together
 * leave in one record (side.c).  A source stops at the destination's
 * high water and is restarted from the destination's write callback.
 *
 * Closing (spec 4.6): the client's half-close goes upstream only once
 * nothing is outstanding - every byte it sent passed on, every reply it
 * waits for relayed - so a server's 250 and 221 are never cut off by our
 * close_notify.  An upstream that goes away (EOF, reset, TLS error) or
 * falls silent while the client waits costs the client a 421 at a reply
 * boundary, never a silent close.  Worker thread only.
 */
#include "tlsproxy/session.h"

#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/connpool.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/smtp_filter.h"
#include "tlsproxy/wctx.h"

#define REPLY_PLAIN_STARTTLS                                                   \
	"454 4.7.0 TLS not available: this session goes on without TLS"

static void
relay_count(struct tp_conn *c, struct side *src, size_t n)
{
	if (src->is_down)
		c->bytes_in += n;
	else
		c->bytes_out += n;
}

/*
 * relay_tls_error - a TLS record or alert failed.  In client mode, an
 * alert from the upstream before it sent a byte is the end of its
 * handshake (TLS 1.3 servers refuse a client certificate after the
 * client has finished): implicit TLS tries the next address and ends in a
 * 421 like any handshake failure; after STARTTLS the local client, which
 * has its greeting, gets the 421 as the reply to its command.  Later, it
 * is a lost connection.
 */
static void
relay_tls_error(struct tp_conn *c, struct side *src, const char *why)
{
	tp_conn_log(c, TP_LOG_INFO, "TLS read from %s: %s",
	    src->is_down ? "client" : "server", why);
	if (src->is_down) {
		tp_conn_close(c, NULL);
		return;
	}
	if (c->r->mode != TP_MODE_CLIENT || c->bytes_out > 0) {
		tp_relay_lost(c, false, why);
		return;
	}
	c->state = CS_HANDSHAKE;
	if (c->r->tls == TP_TLS_IMPLICIT) {
		tp_upstream_failed(c, TP_ETLS, why);
		return;
	}
	c->state = CS_CONNECT;
	tp_conn_fail(c, "421 4.7.5 Cannot start TLS: handshake failure");
}

static int
emit_up(void *arg, const char *data, size_t len)
{
	struct tp_conn *c = arg;

	return tp_side_send(c->up, data, len);
}

static int
emit_down(void *arg, const char *data, size_t len)
{
	struct tp_conn *c = arg;
	int which;

	/* what the first session's client sees, for later ones (4.7) */
	if (c->reuse != NULL && !c->reused &&
	    (which = tp_filter_replying(c->filter)) != 0)
		tp_reuse_keep(c->reuse, which, data, len);
	return tp_side_send(&c->down, data, len);
}

/*
 * relay_plaintext - the next plaintext bytes from src into src->plain:
 * 1 some, 0 none for now, -1 the session ended.
 */
static int
relay_plaintext(struct tp_conn *c, struct side *src)
{
	char why[160];
	int rc = tp_side_plaintext(src, why, sizeof(why));

	if (rc == TP_SIDE_EOF)
		tp_conn_on_eof(c, src);
	else if (rc == TP_SIDE_TLSERR)
		relay_tls_error(c, src, why);
	else if (rc == TP_SIDE_OOM)
		tp_conn_close(c, "out of memory");
	return rc < 0 ? -1 : rc;
}

/*
 * relay_step - one chunk through the SMTP tracker: 1 go on, 0 stop (no
 * input, or held), -1 the session ended.
 */
static int
relay_step(struct tp_conn *c, struct side *src, bool *resume_down)
{
	struct tp_chunk *k;
	size_t len, used;
	bool resume = false;
	int rc = relay_plaintext(c, src);

	if (rc <= 0)
		return rc;
	k = src->plain;
	len = k->end - k->start;
	if (src->is_down) {
		used = tp_filter_client(
		    c->filter, k->data + k->start, len, emit_up, emit_down, c);
		if (used == (size_t)-1) {
			tp_conn_close(c, "out of memory");
			return -1;
		}
		tp_side_flush(&c->down); /* our own answers */
	} else {
		rc = tp_filter_server(
		    c->filter, k->data + k->start, len, emit_down, c, &resume);
		if (rc == TP_FILTER_EPROTO) {
			tp_conn_log(c, TP_LOG_WARNING,
			    "Protocol error: %s from %s[%s]:%u", c->filter->why,
			    c->up_host, c->up_ip, c->up_port);
			tp_conn_close(c, NULL);
			return -1;
		}
		if (rc < 0) {
			tp_conn_close(c, "out of memory");
			return -1;
		}
		used = len;
		if (resume && c->down.held) {
			c->down.held = false;
			*resume_down = true;
		}
	}
	relay_count(c, src, used);
	k->start += (uint32_t)used;
	if (k->start < k->end) {
		src->held = true;
		return 0;
	}
	tp_chunk_put(&c->w->pool, k);
	src->plain = NULL;
	return 1;
}

/*
 * tp_relay_settle - spec 4.6 Closing: relay the client's half-close once
 * nothing is outstanding; end the session when both directions are done.
 */
void
tp_relay_settle(struct tp_conn *c)
{
	struct side *d = &c->down, *u = c->up;

	if (c->closing || c->state != CS_RELAY)
		return;
	if (d->eof && !u->shut && d->in == NULL && d->plain == NULL &&
	    !tp_filter_waiting(c->filter))
		tp_side_end(u);
	if (!c->closing && d->eof && u->eof && d->shut_done && u->shut_done)
		tp_conn_close(c, NULL);
}

void
tp_relay_pump(struct side *src)
{
	struct tp_conn *c = tp_side_conn(src);
	struct side *dst = src->peer;
	bool resume_down = false;

	while (!c->closing && !src->blocked && !src->held) {
		if (tp_side_backlog(dst) >= TP_HIGH_WATER) {
			src->blocked = true;
			break;
		}
		/* 0: no input for now, or held; -1: EOF, or the end */
		if (relay_step(c, src, &resume_down) <= 0)
			break;
	}
	/* What the step before an EOF passed on still goes out. */
	if (c->closing || c->state != CS_RELAY)
		return;
	if (c->filter->quit && tp_filter_reuse(c->filter) != 0) {
		/* the RSET for the client's QUIT is answered */
		tp_side_flush(&c->down);
		if (!c->closing)
			tp_reuse_quit(c);
		return;
	}
	tp_side_flush(dst);
	tp_side_update_read(src);
	tp_relay_settle(c);
	if (resume_down && !c->closing && c->state == CS_RELAY)
		tp_relay_pump(&c->down);
}

/*
 * tp_relay_eof - a side sent its last byte.  The upstream's EOF is
 * relayed to the client when the server said goodbye (221, 421) or the
 * client had already finished; otherwise the client lost its server.
 */
void
tp_relay_eof(struct tp_conn *c, struct side *s)
{
	struct tp_filter *f = c->filter;

	if (!s->is_down) {
		if (!c->up->shut &&
		    (tp_filter_waiting(f) || tp_filter_phase(f) != NULL ||
			!tp_filter_bye(f))) {
			tp_relay_lost(c, false, "connection closed");
			return;
		}
		tp_side_end(&c->down);
		if (c->closing)
			return;
	}
	tp_relay_settle(c);
}

/*
 * tp_relay_lost - the upstream went away (EOF, reset, TLS error) or was
 * silent for idle_timeout: spec 4.6, the client hears why in a 421 at a
 * reply boundary (Postfix's words: "Lost connection while sending RCPT
 * TO"), then the session ends.  An implicit-TLS upstream that goes before
 * its first byte is a failed destination: the next address is tried.
 */
void
tp_relay_lost(struct tp_conn *c, bool timeout, const char *why)
{
	struct tp_filter *f = c->filter;
	const char *phase = tp_filter_phase(f);
	char line[510]; /* with CRLF within RFC 5321's 512 octets */

	if (c->closing || c->state != CS_RELAY)
		return;
	if (f->quit) {
		/* the client said goodbye: its 221 is ours to give */
		tp_conn_log(c, TP_LOG_DEBUG, "%s[%s]:%u after QUIT: %s",
		    c->up_host, c->up_ip, c->up_port, why);
		tp_reuse_quit(c);
		return;
	}
	if (timeout && !tp_filter_waiting(f)) {
		/* The client is the quiet one (Postfix smtpd's words). */
		snprintf(line, sizeof(line),
		    "421 4.4.2 %s Error: timeout "
		    "exceeded",
		    c->r->mode == TP_MODE_SERVER ? c->rt->hostname
						 : c->rt->helo);
		tp_conn_log(c, TP_LOG_INFO, "timeout after %s from %s",
		    phase ? phase : "the last reply", c->peer_addr);
	} else {
		snprintf(line, sizeof(line), "421 4.4.2 %s[%s]: %s%s%s",
		    c->up_host, c->up_ip,
		    timeout ? "Conversation timed out" : "Lost connection",
		    phase ? " while " : "", phase ? phase : "");
		tp_conn_log(c, TP_LOG_INFO, "%s with %s[%s]:%u%s%s (%s)",
		    timeout ? "conversation timed out" : "lost connection",
		    c->up_host, c->up_ip, c->up_port, phase ? " while " : "",
		    phase ? phase : "", why);
	}
	if (!tp_filter_boundary(f)) {
		/* What came of the reply goes out; nothing may follow it. */
		tp_conn_linger(c, NULL);
		return;
	}
	if (c->bytes_out == 0 && !timeout) {
		if (c->r->mode == TP_MODE_SERVER) {
			snprintf(line, sizeof(line),
			    "421 4.3.0 Server "
			    "unavailable, try again later");
		} else if (c->bytes_in == 0 && c->r->tls == TP_TLS_IMPLICIT) {
			snprintf(
			    tp_conn_reply(c), TP_CONN_REPLY_MAX, "%s", line);
			tp_upstream_failed(c, TP_EPROTO, why);
			return;
		}
	}
	tp_conn_fail(c, line);
}

void
tp_relay_start(struct tp_conn *c)
{
	const char *starttls;
	unsigned flags = 0;

	/* The greeting comes through the tunnel unless we replayed it
	 * (client STARTTLS) or consumed it (server STARTTLS). */
	if ((c->r->tls == TP_TLS_IMPLICIT || c->rt->ctx == NULL) && !c->reused)
		flags |= TP_FILTER_GREETING;
	if (c->r->mode == TP_MODE_SERVER)
		flags |= TP_FILTER_SERVER;
	tp_reuse_begin(c);
	if (c->reuse != NULL)
		flags |= TP_FILTER_REUSE;
	/* Postfix's answers to a STARTTLS it cannot take. */
	if (c->r->mode == TP_MODE_SERVER && c->go_plain)
		starttls = REPLY_PLAIN_STARTTLS;
	else if (c->r->mode == TP_MODE_SERVER && c->rt->ctx != NULL)
		starttls = "554 5.5.1 Error: TLS already active";
	else
		starttls = "454 4.7.0 TLS not available";
	if (c->filter != NULL) {
		tp_filter_free(c->filter);
	} else if ((c->filter = malloc(sizeof(*c->filter))) == NULL) {
		tp_conn_close(c, "out of memory");
		return;
	}
	tp_filter_init(c->filter, starttls, flags);
	if (c->reused)
		tp_filter_replay(c->filter, c->reuse->ehlo, c->reuse->helo,
		    c->reuse->chunking);
	tp_dialogue_free(c);
	c->state = CS_RELAY;
	c->last_active = uv_now(&c->w->loop);
	tp_conn_timer(c, c->r->v[TP_K_IDLE_TIMEOUT].n);
	/* Bytes that came with the end of the handshake or dialogue. */
	tp_relay_pump(&c->down);
	if (!c->closing && c->state == CS_RELAY)
		tp_relay_pump(c->up);
	if (c->closing || c->state != CS_RELAY)
		return;
	tp_side_update_read(&c->down);
	tp_side_update_read(c->up);
}
