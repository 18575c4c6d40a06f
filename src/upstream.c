/*
 * upstream.c - the destination side: the connect entries in order (an IP
 * literal at once; a name or mx:DOMAIN through the DNS layer, dest.c),
 * connect with connect_timeout, and fail over to the next address, then
 * the next connect entry, on refusal, timeout, TLS handshake failure or a
 * failed STARTTLS dialogue.  After the last one the session fails with the
 * last error (a 421 to the client).  Worker thread only.
 */
#include "tlsproxy/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/metrics.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/wctx.h"

void
tp_upstream_failed(struct tp_conn *c, int err, const char *why)
{
	if (err == TP_ETLS)
		tp_conn_log(c, TP_LOG_INFO,
		    "%s[%s]:%u: Cannot start TLS: "
		    "handshake failure: %s",
		    c->up_host, c->up_ip, c->up_port, why);
	else
		tp_conn_log(c, TP_LOG_INFO, "%s %s[%s]:%u: %s",
		    err == TP_EPROTO ? "session with" : "connect to",
		    c->up_host, c->up_ip, c->up_port, why);
	/* What a server said or did over TLS tells more than a refusal by
	 * the next address: that is the 421 the client gets. */
	if (!(c->last_err == TP_EPROTO || c->last_err == TP_ETLS) ||
	    err == TP_EPROTO || err == TP_ETLS) {
		c->last_err = err;
		snprintf(tp_conn_why(c), TP_CONN_WHY_MAX, "%s", why);
	}
	if (err != TP_ETLS && err != TP_EPROTO)
		tp_metrics_add(&c->rt->stats->connect_failures, 1);
	/* may: one more try at the same address, in plaintext (Postfix). */
	if (err == TP_ETLS && tp_conn_level(c) == TP_SEC_MAY &&
	    !c->plain_tried && c->r->tls == TP_TLS_STARTTLS) {
		c->plain_tried = c->plain = true;
		c->retry_same = true;
		tp_conn_log(c, TP_LOG_INFO,
		    "%s[%s]:%u: trying again without "
		    "TLS (security = may)",
		    c->up_host, c->up_ip, c->up_port);
	}
	c->state = CS_CONNECT;
	uv_timer_stop(&c->timer);
	tp_dialogue_free(c);
	if (!c->up->open) {
		tp_upstream_next(c);
		return;
	}
	c->retry = true;
	tp_conn_close_handle(c, (uv_handle_t *)&c->up->tcp);
}

static void
upstream_on_connect(uv_connect_t *req, int status)
{
	struct tp_conn *c = tp_container_of(req, struct tp_conn, creq);

	if (status == UV_ECANCELED || c->closing)
		return;
	if (status < 0) {
		tp_upstream_failed(c, status, uv_strerror(status));
		return;
	}
	uv_timer_stop(&c->timer);
	uv_tcp_nodelay(&c->up->tcp, 1);
	tp_dest_session(c);
	tp_conn_on_upstream(c);
}

static void
upstream_try(struct tp_conn *c, const struct sockaddr *sa)
{
	int rc;

	if (sa != (struct sockaddr *)&c->up_ss)
		memcpy(&c->up_ss, sa,
		    sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					      : sizeof(struct sockaddr_in));
	if (sa->sa_family == AF_INET6)
		uv_ip6_name((const struct sockaddr_in6 *)sa, c->up_ip,
		    sizeof(c->up_ip));
	else
		uv_ip4_name(
		    (const struct sockaddr_in *)sa, c->up_ip, sizeof(c->up_ip));
	if (tp_reuse_try(c))
		return; /* a kept connection (spec 4.7) */
	uv_tcp_init(&c->w->loop, &c->up->tcp);
	c->up->tcp.data = c;
	c->up->open = true;
	c->nopen++;
	c->state = CS_CONNECT;
	tp_conn_timer(c, c->r->v[TP_K_CONNECT_TIMEOUT].n);
	rc = uv_tcp_connect(&c->creq, &c->up->tcp,
	    (const struct sockaddr *)&c->up_ss, upstream_on_connect);
	if (rc < 0)
		tp_upstream_failed(c, rc, uv_strerror(rc));
}

void
tp_upstream_closed(struct tp_conn *c)
{
	struct side *s = c->up;

	s->open = false;
	tp_side_release(s);
	s->reading = s->eof = s->shut = s->held = false;
	s->shut_sent = s->shut_done = s->blocked = false;
	if (c->closing)
		return;
	if (c->retry_same) {
		c->retry = c->retry_same = false;
		upstream_try(c, (struct sockaddr *)&c->up_ss);
	} else if (c->retry) {
		c->retry = false;
		tp_upstream_next(c);
	} else if (c->gwy != NULL) {
		tp_gateway_up_closed(c);
	}
}

void
tp_upstream_next(struct tp_conn *c)
{
	const struct tp_hostport *hp;
	struct sockaddr_storage ss;

	c->plain = c->plain_tried = false;
	c->dane = NULL;
	if (c->dest != NULL) {
		switch (tp_dest_next(c)) {
		case 1:
			upstream_try(c, (struct sockaddr *)&c->up_ss);
			return;
		case 0:
			return; /* resolving: dest.c calls again */
		default:
			tp_dest_free(c);
			break;
		}
	}
	if (c->cidx >= c->nconnect) {
		tp_conn_fail(c, NULL);
		return;
	}
	hp = &c->connect[c->cidx++];
	snprintf(c->up_host, sizeof(c->up_host), "%s", hp->host);
	c->up_port = hp->port;
	c->state = CS_CONNECT;
	if (!hp->is_ip) {
		if (tp_dest_start(c, hp) < 0)
			tp_conn_close(c, "out of memory");
		return;
	}
	memset(&ss, 0, sizeof(ss));
	if (hp->is_v6)
		uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss);
	else
		uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss);
	upstream_try(c, (struct sockaddr *)&ss);
}
