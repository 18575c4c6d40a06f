/*
 * conn_io.c - what a session's two endpoints (side.h) report, handed to
 * the session's current stage: input to the dialogue, handshake, relay
 * or gateway; EOF and errors to whoever can still do something about
 * them (a 421 to the client, the next address, or the end); a drained
 * write to the stage that waited for it.  Worker thread only.
 */
#include "tlsproxy/session.h"

#include "tlsproxy/common.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/smtp_filter.h"
#include "tlsproxy/wctx.h"

/* io_quiet - after the peer closed, its reset or broken pipe is news
 * to no one; nor is a client's reset after its server said goodbye (a
 * client that closes after 221 without reading our close_notify). */
static bool
io_quiet(struct tp_conn *c, struct side *s, int err)
{
	if (err != UV_ECONNRESET && err != UV_EPIPE)
		return false;
	return s->eof ||
	    (s->is_down && c->filter != NULL &&
		((tp_filter_bye(c->filter) && !tp_filter_waiting(c->filter)) ||
		    c->filter->quit));
}

static void
io_on_input(struct side *s)
{
	struct tp_conn *c = tp_side_conn(s);

	c->last_active = uv_now(&c->w->loop);
	switch (c->state) {
	case CS_RELAY:
		tp_relay_pump(s);
		break;
	case CS_GW:
		tp_gateway_input(c, s);
		break;
	case CS_HANDSHAKE:
		tp_conn_advance(c);
		break;
	case CS_PROXY_IN:
		tp_dialogue_proxy_input(c);
		break;
	case CS_SMTP_DOWN:
		tp_dialogue_down_input(c);
		break;
	case CS_SMTP_UP:
		tp_dialogue_up_input(c);
		break;
	case CS_LINGER:
		tp_dialogue_linger_input(c);
		break;
	default:
		tp_side_discard_input(s);
		break;
	}
}

static void
io_on_eof(struct side *s)
{
	tp_conn_on_eof(tp_side_conn(s), s);
}

/*
 * io_failed - a socket error.  The client gone ends the session; the
 * destination gone is, by stage, a lost connection (a 421 to the client,
 * spec 4.6), a failed dialogue or a failed handshake (the next address).
 */
static void
io_failed(struct tp_conn *c, struct side *s, const char *what, int err)
{
	if (c->state == CS_RELAY || c->state == CS_LINGER)
		tp_conn_log(c, io_quiet(c, s, err) ? TP_LOG_DEBUG : TP_LOG_INFO,
		    "%s %s: %s", what, s->is_down ? "client" : "server",
		    uv_strerror(err));
	if (c->state == CS_GW && s->is_down && tp_gateway_down_gone(c))
		return;
	if (c->state == CS_GW && !s->is_down) {
		if (!io_quiet(c, s, err) && !s->eof)
			tp_gateway_up_lost(c, false, uv_strerror(err));
		else
			tp_conn_close_handle(c, (uv_handle_t *)&s->tcp);
	} else if (!s->is_down && s->eof && c->state == CS_RELAY) {
		/* It went first: what we still had for it is moot, and the
		 * client may still be reading the last replies. */
		tp_side_abandon(s);
		tp_relay_settle(c);
	} else if (s->is_down && c->state == CS_RELAY && c->filter->quit &&
	    tp_filter_reuse(c->filter) == 0) {
		/* A client that said QUIT need not read the 221 (Postfix's
		 * smtp_skip_quit_response): the RSET in its place is still
		 * answered, and the connection kept (spec 4.7). */
		tp_side_discard_input(s);
		tp_side_abandon(s);
		s->eof = true;
		s->open = false;
		tp_conn_close_handle(c, (uv_handle_t *)&s->tcp);
	} else if (s->is_down || c->state == CS_LINGER || s->eof)
		tp_conn_close(c, NULL);
	else if (c->state == CS_RELAY)
		tp_relay_lost(c, false, uv_strerror(err));
	else if (c->state == CS_SMTP_UP)
		tp_dialogue_up_lost(c, false); /* not a TLS problem */
	else
		tp_upstream_failed(c, TP_ETLS, uv_strerror(err));
}

static void
io_on_error(struct side *s, enum tp_side_op op, int err)
{
	struct tp_conn *c = tp_side_conn(s);

	if (c->closing)
		return;
	switch (op) {
	case TP_SIDE_WRITE_START:
		tp_conn_close(c, uv_strerror(err));
		break;
	case TP_SIDE_TLS_WRITE:
		tp_conn_close(c, "TLS write failed");
		break;
	case TP_SIDE_SHUTDOWN:
		tp_conn_close(c, NULL);
		break;
	default:
		io_failed(c, s, tp_side_op_name(op), err);
		break;
	}
}

static void
io_on_drain(struct side *s)
{
	struct tp_conn *c = tp_side_conn(s);
	struct side *src = s->peer;

	if (c->closing)
		return;
	/* STARTTLS: the handshake begins once our 220 has left (RFC 3207). */
	if (c->state == CS_STARTTLS_WAIT && s->is_down && s->out.bytes == 0) {
		tp_conn_advance(c);
		return;
	}
	if (src->blocked && tp_side_backlog(s) <= TP_LOW_WATER) {
		src->blocked = false;
		if (c->state == CS_GW)
			tp_gateway_resume(c);
		else
			tp_relay_pump(src);
	}
}

static void
io_on_shutdown(struct side *s)
{
	struct tp_conn *c = tp_side_conn(s);

	if (c->closing)
		return;
	if (c->state == CS_GW) {
		tp_gateway_shutdown(c, s);
		return;
	}
	/* Both directions finished (or our last word to a client that has
	 * finished too): the session is over. */
	if (c->state == CS_LINGER ? s->is_down && s->eof
				  : c->down.eof && c->up->eof &&
		    c->down.shut_done && c->up->shut_done)
		tp_conn_close(c, NULL);
}

/* io_want_read - which states read from which side. */
static bool
io_want_read(struct side *s)
{
	struct tp_conn *c = tp_side_conn(s);
	bool idle = s->in == NULL && s->plain == NULL && !s->eof;

	if (c->closing)
		return false;
	switch (c->state) {
	case CS_HANDSHAKE:
		return s->ssl != NULL && s->in == NULL;
	case CS_PROXY_IN:
	case CS_SMTP_DOWN:
	case CS_LINGER:
		return s->is_down && idle;
	case CS_SMTP_UP:
		return !s->is_down && idle;
	case CS_RELAY:
		return idle && !s->blocked && !s->held;
	case CS_GW:
		return idle && !s->blocked;
	default:
		return false;
	}
}

/* io_want_drain - STARTTLS waits for its 220 to leave; a blocked side
 * (and the gateway, which blocks on either backlog) for the backlog to
 * drain. */
static bool
io_want_drain(struct side *s)
{
	struct tp_conn *c = tp_side_conn(s);

	return c->state == CS_STARTTLS_WAIT || c->state == CS_GW ||
	    s->blocked || (s->peer != NULL && s->peer->blocked);
}

const struct tp_side_ops tp_conn_side_ops = {
    .on_input = io_on_input,
    .on_eof = io_on_eof,
    .on_error = io_on_error,
    .on_drain = io_on_drain,
    .on_shutdown = io_on_shutdown,
    .want_read = io_want_read,
    .want_drain = io_want_drain,
};
