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

/*
 * reuse_install - the kept endpoint s (with its record r) replaces the
 * session's unused one.
 */
static void
reuse_install(struct tp_conn *c, struct side *s, struct tp_reuse *r)
{
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
	tp_metrics_add(&c->rt->stats->reused, 1);
	tp_conn_log(c, TP_LOG_INFO,
	    "reusing connection to %s[%s]:%u (session %u, %.1fs old)",
	    c->up_host, c->up_ip, c->up_port, r->uses + 1,
	    (uv_now(&c->w->loop) - r->born) / 1000.0);
}

/*
 * reuse_put - c->up, idle and clean, goes to the pool under key (and the
 * session gets a fresh, unopened endpoint): 0, or -1 (not kept; c->up is
 * the caller's still).
 */
static int
reuse_put(struct tp_conn *c, const char *key)
{
	struct side *u = c->up, *fresh;
	const struct tp_cfg_route *r = c->r;
	uint64_t limit = r->v[TP_K_CONNECTION_REUSE_COUNT].n;
	uint64_t age = uv_now(&c->w->loop) - c->reuse->born;

	if (!u->open || u->eof || u->shut || u->in != NULL ||
	    u->plain != NULL || tp_side_backlog(u) > 0 || u->inflight > 0 ||
	    (u->ssl != NULL && SSL_pending(u->ssl) > 0) ||
	    (limit > 0 && c->reuse->uses + 1 >= limit) ||
	    age >= r->v[TP_K_CONNECTION_REUSE_TIME].n || c->w->stopping)
		return -1;
	if ((fresh = malloc(sizeof(*fresh))) == NULL)
		return -1;
	snprintf(c->reuse->key, sizeof(c->reuse->key), "%s", key);
	snprintf(c->reuse->host, sizeof(c->reuse->host), "%s", c->up_host);
	snprintf(c->reuse->ip, sizeof(c->reuse->ip), "%s", c->up_ip);
	c->reuse->port = c->up_port;
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
	reuse_install(c, s, r);
	uv_timer_stop(&c->timer);
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
	char key[TP_REUSE_KEY_MAX];

	if (tp_filter_reuse(c->filter) != 1 || !tp_reuse_ready(c->reuse))
		return -1;
	reuse_key(c, key, sizeof(key));
	return reuse_put(c, key);
}

/*
 * Gateways (spec 4.7, 4.9): an upstream is kept per destination domain
 * and its policy, after the RSET that ended its use got 250 (the engine's
 * TP_GW_PARK); the next transaction to that domain on this worker, in
 * any gateway session of the route, takes it without DNS, TCP, TLS or
 * EHLO.  DNS, TLSA and MTA-STS changes reach it within
 * connection_reuse_time, as with Postfix's connection cache.
 */

static bool
gw_reuse_on(const struct tp_conn *c)
{
	return c->r->mode == TP_MODE_GATEWAY &&
	    c->r->v[TP_K_CONNECTION_REUSE].n && c->w->connpool != NULL;
}

static void
gw_key(const struct tp_conn *c, const char *domain, const void *policy,
    char *key, size_t len)
{
	snprintf(key, len, "%p/%zu/gw/%.255s/%p", (const void *)c->gen,
	    c->rt->index, domain, policy);
}

bool
tp_reuse_gw_take(
    struct tp_conn *c, const char *domain, const void *policy, unsigned *caps)
{
	char key[TP_REUSE_KEY_MAX];
	struct tp_reuse *r;
	struct side *s;

	tp_reuse_free(c->reuse);
	c->reuse = NULL;
	if (!gw_reuse_on(c))
		return false;
	gw_key(c, domain, policy, key, sizeof(key));
	s = tp_connpool_take(
	    c->w->connpool, key, c->r->v[TP_K_CONNECTION_REUSE_TIME].n, &r);
	if (s == NULL)
		return false;
	snprintf(c->up_host, sizeof(c->up_host), "%s", r->host);
	snprintf(c->up_ip, sizeof(c->up_ip), "%s", r->ip);
	c->up_port = r->port;
	*caps = r->gw_caps;
	reuse_install(c, s, r);
	return true;
}

void
tp_reuse_gw_ready(struct tp_conn *c)
{
	tp_reuse_free(c->reuse);
	c->reuse = gw_reuse_on(c) ? tp_reuse_new(uv_now(&c->w->loop)) : NULL;
	c->reused = false;
}

int
tp_reuse_gw_park(
    struct tp_conn *c, const char *domain, const void *policy, unsigned caps)
{
	char key[TP_REUSE_KEY_MAX];

	if (c->reuse == NULL || !gw_reuse_on(c))
		return -1;
	gw_key(c, domain, policy, key, sizeof(key));
	c->reuse->gw_caps = caps;
	return reuse_put(c, key);
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
