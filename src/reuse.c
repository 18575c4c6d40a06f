/*
 * reuse.c - connection reuse in a session (spec 4.7, connection_reuse =
 * yes on client routes): the first session keeps what its client saw of
 * the server (greeting, EHLO reply); its client's QUIT goes up as RSET
 * (smtp_filter.c) and a 250 puts the connection in the worker's pool
 * (connpool.c) while the client gets its 221 from the proxy.  A later
 * session of the route, about to connect to the same address under the
 * same rules, takes it instead: the client gets the kept greeting, its
 * EHLO the kept reply, and the relay starts without a TCP, TLS or SMTP
 * round trip to the server.  Worker thread only.
 */
#include "tlsproxy/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/connpool.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/metrics.h"
#include "tlsproxy/smtp_filter.h"
#include "tlsproxy/wctx.h"

#define REPLY_BYE "221 2.0.0 Bye\r\n"

static bool
reuse_on(const struct tp_conn *c)
{
	return c->r->mode == TP_MODE_CLIENT &&
	    c->r->v[TP_K_CONNECTION_REUSE].n && c->w->connpool != NULL;
}

/* reuse_key - the route of this generation, the address, the rules. */
static void
reuse_key(const struct tp_conn *c, char *key, size_t len)
{
	char dest[TP_REUSE_KEY_MAX];

	tp_sesscache_key(c, dest, sizeof(dest));
	snprintf(key, len, "%p/%zu/%s/%s/%d%d", (const void *)c->gen,
	    c->rt->index, dest, c->servername ? c->servername : "", c->sts_mode,
	    c->sts_match);
}

void
tp_reuse_begin(struct tp_conn *c)
{
	if (c->reuse == NULL && reuse_on(c))
		c->reuse = tp_reuse_new(uv_now(&c->w->loop));
}

bool
tp_reuse_try(struct tp_conn *c)
{
	char key[TP_REUSE_KEY_MAX];
	struct tp_reuse *r;
	struct side *s;

	if (!reuse_on(c) || c->plain)
		return false;
	reuse_key(c, key, sizeof(key));
	s = tp_connpool_take(
	    c->w->connpool, key, c->r->v[TP_K_CONNECTION_REUSE_TIME].n, &r);
	if (s == NULL)
		return false;
	/* the kept endpoint replaces the unused one */
	tp_side_release(c->up);
	free(c->up);
	c->up = s;
	s->ops = &tp_conn_side_ops;
	s->owner = c;
	s->peer = &c->down;
	c->down.peer = s;
	s->tcp.data = c;
	if (s->ssl != NULL)
		SSL_set_app_data(s->ssl, c);
	c->nopen++;
	tp_reuse_free(c->reuse);
	c->reuse = r;
	r->uses++;
	c->reused = true;
	uv_timer_stop(&c->timer);
	tp_metrics_add(&c->rt->stats->reused, 1);
	tp_conn_log(c, TP_LOG_INFO,
	    "reusing connection to %s[%s]:%u (session %u, %.1fs old)",
	    c->up_host, c->up_ip, c->up_port, r->uses + 1,
	    (uv_now(&c->w->loop) - r->born) / 1000.0);
	if (tp_side_send(&c->down, r->greeting, r->glen) < 0) {
		tp_conn_close(c, "out of memory");
		return true;
	}
	tp_relay_start(c);
	return true;
}

/* reuse_keep - the connection goes to the pool: 0, or -1 (not kept). */
static int
reuse_keep(struct tp_conn *c)
{
	struct side *u = c->up, *fresh;
	const struct tp_cfg_route *r = c->r;
	uint64_t limit = r->v[TP_K_CONNECTION_REUSE_COUNT].n;
	uint64_t age = uv_now(&c->w->loop) - c->reuse->born;

	if (tp_filter_reuse(c->filter) != 1 || !tp_reuse_ready(c->reuse) ||
	    !u->open || u->eof || u->shut || u->in != NULL ||
	    u->plain != NULL || tp_side_backlog(u) > 0 || u->inflight > 0 ||
	    (u->ssl != NULL && SSL_pending(u->ssl) > 0) ||
	    (limit > 0 && c->reuse->uses + 1 >= limit) ||
	    age >= r->v[TP_K_CONNECTION_REUSE_TIME].n || c->w->stopping)
		return -1;
	if ((fresh = calloc(1, sizeof(*fresh))) == NULL)
		return -1;
	reuse_key(c, c->reuse->key, sizeof(c->reuse->key));
	if (tp_connpool_put(c->w->connpool, u, c->reuse, c->gen, c->rt->index,
		r->v[TP_K_CONNECTION_CACHE_TIME].n,
		(unsigned)r->v[TP_K_CONNECTION_CACHE_SIZE].n) < 0) {
		free(fresh);
		return -1;
	}
	tp_conn_log(c, TP_LOG_DEBUG, "keeping connection to %s[%s]:%u",
	    c->up_host, c->up_ip, c->up_port);
	c->reuse = NULL;
	c->nopen--;
	tp_side_init(fresh, &tp_conn_side_ops, c, &c->w->pool);
	fresh->peer = &c->down;
	c->down.peer = fresh;
	c->up = fresh;
	return 0;
}

void
tp_reuse_quit(struct tp_conn *c)
{
	if (reuse_keep(c) < 0 && c->up->open)
		tp_conn_close_handle(c, (uv_handle_t *)&c->up->tcp);
	if (!c->down.open) {
		/* the client went after its QUIT (side.c) */
		tp_conn_close(c, NULL);
		return;
	}
	c->state = CS_LINGER;
	tp_side_discard_input(&c->down);
	if (tp_side_send(&c->down, REPLY_BYE, strlen(REPLY_BYE)) < 0) {
		tp_conn_close(c, "out of memory");
		return;
	}
	tp_side_end(&c->down);
	if (c->closing)
		return;
	tp_conn_timer(c, TP_LINGER_MS);
	tp_side_update_read(&c->down);
}
