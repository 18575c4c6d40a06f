/*
 * gateway.c - a gateway session (spec 4.9): the local MTA talks to the
 * gateway's SMTP engine (smtp_gateway.c) until a transaction's first RCPT
 * names its destination domain; then that domain's policy (policy_file,
 * else the route's) and its MX hosts (dest.c) give an upstream session,
 * secured as the client routes do it (dialogue.c, conn.c); the engine
 * then relays that transaction, the message body passing through
 * untouched.  Every failure to reach or secure a destination is the
 * RCPT's 4xx (null MX and a nonexistent domain the only 5xx of the
 * gateway's own) and the MTA's session goes on; an upstream lost later
 * answers what waited for it, 451.  After a transaction the upstream
 * stays open for another one to the same domain, or is closed (QUIT)
 * when the next goes elsewhere.  Worker thread only.
 */
#include "tlsproxy/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/gen_policy.h"
#include "tlsproxy/metrics.h"
#include "tlsproxy/smtp_gateway.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/wctx.h"

struct tp_gateway {
	struct tp_gw gw;
	struct tp_gw_conf conf;
	struct tp_hostport hp; /* the destination, as a connect entry */
	bool connecting;       /* CONNECT: reaching g->domain */
	bool disconnecting;    /* DISCONNECT: the upstream is closing */
	bool ending;           /* CLOSE: our last reply is going out */
	/* the upstream's destination and policy: its key in the pool */
	char up_domain[256];
	const struct tp_dest_policy *policy;
};

static void gw_pump_down(struct tp_conn *c);
static void gw_event(struct tp_conn *c, enum tp_gw_event ev);

/* gw_out - what the engine has for either side goes out. */
static int
gw_out(struct tp_conn *c)
{
	struct tp_gw *g = &c->gwy->gw;

	if (g->down_len > 0) {
		/* (an MTA gone after its QUIT is owed nothing more) */
		if (c->down.open &&
		    tp_side_send(&c->down, g->down_out, g->down_len) < 0)
			goto oom;
		g->down_len = 0;
		tp_side_flush(&c->down);
	}
	if (g->up_len > 0) {
		if (c->up->open && !c->up->shut &&
		    tp_side_send(c->up, g->up_out, g->up_len) < 0)
			goto oom;
		g->up_len = 0;
	}
	if (c->up->open)
		tp_side_flush(c->up); /* commands, body bytes */
	return c->closing ? -1 : 0;
oom:
	tp_conn_close(c, "out of memory");
	return -1;
}

/* gw_reused - a kept upstream to the domain: no DNS, TLS nor EHLO. */
static void
gw_reused(struct tp_conn *c, unsigned caps)
{
	struct tp_gateway *gy = c->gwy;
	enum tp_gw_event ev = TP_GW_NONE;
	char peer[TP_HOST_MAX + 80];

	gy->connecting = false;
	c->state = CS_GW;
	c->last_active = uv_now(&c->w->loop);
	tp_conn_timer(c, c->r->v[TP_K_IDLE_TIMEOUT].n);
	snprintf(peer, sizeof(peer), "%s[%s]", c->up_host, c->up_ip);
	tp_gw_up_reused(&gy->gw, peer, caps, &ev);
	if (gw_out(c) < 0)
		return;
	gw_event(c, ev);
	if (!c->closing)
		tp_side_update_read(c->up);
}

/*
 * gw_park - the engine's TP_GW_PARK: the upstream answered the RSET that
 * ended its use; it goes to the pool, or, not kept, gets its QUIT.
 */
static void
gw_park(struct tp_conn *c)
{
	struct tp_gateway *gy = c->gwy;

	if (tp_reuse_gw_park(c, gy->up_domain, gy->policy, gy->gw.parked_caps) <
		0 &&
	    c->up->open) {
		if (tp_side_send(c->up, "QUIT\r\n", 6) < 0) {
			tp_conn_close(c, "out of memory");
			return;
		}
		gy->disconnecting = true;
		tp_side_end(c->up);
	}
	if (c->closing || !gy->gw.closed)
		return;
	if (!gy->ending)
		gw_event(c, TP_GW_CLOSE);
	else if (!c->up->open && (c->down.shut_done || !c->down.open))
		tp_conn_close(c, NULL);
}

/* gw_connect - reach the domain the engine named, by its policy. */
static void
gw_connect(struct tp_conn *c)
{
	struct tp_gateway *gy = c->gwy;
	const struct tp_dest_policy *p = tp_gen_policy(c->rt, gy->gw.domain);
	unsigned caps;

	gy->connecting = true;
	tp_dest_free(c); /* the last destination's hosts */
	c->dest_perm = 0;
	c->ctx = p->ctx;
	c->verify = p->verify;
	c->security = p->security;
	c->servername = p->servername;
	/* an entry of policy_file is the admin's choice, used as is (4.10) */
	c->sts_wanted = c->r->mta_sts && p->key == NULL;
	memset(&gy->hp, 0, sizeof(gy->hp));
	snprintf(gy->hp.host, sizeof(gy->hp.host), "%s", gy->gw.domain);
	gy->hp.port = (uint16_t)c->r->v[TP_K_PORT].n;
	gy->hp.mx = true;
	c->connect = &gy->hp;
	c->nconnect = 1;
	c->cidx = 0;
	c->last_err = 0;
	if (c->text != NULL)
		c->text->reply[0] = '\0';
	c->retry = c->retry_same = c->plain = c->plain_tried = false;
	if (p->key != NULL)
		tp_conn_log(c, TP_LOG_INFO,
		    "%s: policy_file entry %s (line %d)", gy->gw.domain, p->key,
		    p->line);
	snprintf(gy->up_domain, sizeof(gy->up_domain), "%s", gy->gw.domain);
	gy->policy = p;
	if (tp_reuse_gw_take(c, gy->gw.domain, p, &caps)) {
		gw_reused(c, caps);
		return;
	}
	c->state = CS_CONNECT;
	tp_side_update_read(&c->down);
	tp_upstream_next(c);
}

/* gw_event - what the engine asked for. */
static void
gw_event(struct tp_conn *c, enum tp_gw_event ev)
{
	struct tp_gateway *gy = c->gwy;

	switch (ev) {
	case TP_GW_CONNECT:
		gw_connect(c);
		break;
	case TP_GW_DISCONNECT:
		/* The QUIT is queued: FIN after it, then the handle goes
		 * (side.c calls tp_gateway_shutdown). */
		if (c->up->open) {
			gy->disconnecting = true;
			tp_side_end(c->up);
		}
		break;
	case TP_GW_CLOSE:
		gy->ending = true;
		if (c->down.open)
			tp_side_end(&c->down);
		/* a parking upstream waits for its RSET's answer */
		if (c->up->open && !c->up->shut && !tp_gw_parking(&gy->gw))
			tp_side_end(c->up);
		if (!c->closing)
			tp_conn_timer(c, TP_LINGER_MS);
		break;
	case TP_GW_PARK:
		gw_park(c);
		break;
	default:
		break;
	}
}

/* gw_busy - no MTA input while the engine waits on the upstream. */
static bool
gw_busy(const struct tp_conn *c)
{
	const struct tp_gateway *gy = c->gwy;

	return gy->connecting || gy->disconnecting || gy->ending ||
	    c->state != CS_GW;
}

/* gw_pump_down - MTA bytes through the engine. */
static void
gw_pump_down(struct tp_conn *c)
{
	struct tp_gw *g = &c->gwy->gw;
	struct side *d = &c->down;
	enum tp_gw_event ev;
	struct tp_chunk *k;
	size_t used, body;

	/* The engine is asked even with no input: it may hold a command
	 * it could not act on before (a RCPT waiting for a DISCONNECT). */
	while (!c->closing && !gw_busy(c)) {
		if (tp_side_backlog(c->up) >= TP_HIGH_WATER ||
		    tp_side_backlog(d) >= TP_HIGH_WATER) {
			d->blocked = true;
			break;
		}
		k = d->in;
		body = 0;
		ev = TP_GW_NONE;
		used = tp_gw_client(g, k ? k->data + k->start : "",
		    k ? k->end - k->start : 0, &body, &ev);
		/* Body bytes first: what the engine queued came after them. */
		if (body > 0 && c->up->open && !c->up->shut &&
		    tp_side_send(c->up, k->data + k->start, body) < 0) {
			tp_conn_close(c, "out of memory");
			return;
		}
		c->bytes_in += used;
		if (k != NULL) {
			k->start += (uint32_t)used;
			if (k->start == k->end)
				tp_side_discard_input(d);
		}
		if (gw_out(c) < 0)
			return;
		gw_event(c, ev);
		if (used == 0 && ev == TP_GW_NONE)
			break; /* the engine waits for the upstream */
	}
	if (!c->closing)
		tp_side_update_read(d);
}

/* gw_pump_up - upstream bytes (replies) through the engine. */
static void
gw_pump_up(struct tp_conn *c)
{
	struct tp_gw *g = &c->gwy->gw;
	struct side *u = c->up;
	struct tp_chunk *k;
	enum tp_gw_event ev;
	char why[160];
	int rc;

	while (!c->closing && c->state == CS_GW && u->open) {
		if ((rc = tp_side_plaintext(u, why, sizeof(why))) == 0)
			break;
		if (rc == TP_SIDE_OOM) {
			tp_conn_close(c, "out of memory");
			return;
		}
		if (rc == TP_SIDE_EOF) {
			u->eof = true;
			tp_gateway_eof(c, u);
			return;
		}
		if (rc < 0) {
			tp_gateway_up_lost(c, false, why);
			return;
		}
		k = u->plain;
		ev = TP_GW_NONE;
		rc = tp_gw_upstream(
		    g, k->data + k->start, k->end - k->start, &ev);
		c->bytes_out += k->end - k->start;
		tp_chunk_put(&c->w->pool, k);
		u->plain = NULL;
		if (gw_out(c) < 0)
			return;
		if (rc < 0) {
			tp_gateway_up_lost(c, false, "protocol error");
			return;
		}
		gw_event(c, ev);
		if (u != c->up)
			break; /* parked: the pool reads it now */
	}
	if (!c->closing && u == c->up && u->open)
		tp_side_update_read(u);
	if (!c->closing)
		gw_pump_down(c);
}

void
tp_gateway_input(struct tp_conn *c, struct side *s)
{
	c->last_active = uv_now(&c->w->loop);
	if (s->is_down)
		gw_pump_down(c);
	else
		gw_pump_up(c);
}

void
tp_gateway_resume(struct tp_conn *c)
{
	c->down.blocked = false;
	gw_pump_down(c);
}

int
tp_gateway_begin(struct tp_conn *c)
{
	struct tp_gateway *gy = calloc(1, sizeof(*gy));

	if (gy == NULL)
		return -1;
	c->gwy = gy;
	gy->conf.hostname = c->rt->hostname;
	gy->conf.helo = c->rt->helo;
	gy->conf.size = c->rt->smtps.size;
	gy->conf.reuse = c->r->v[TP_K_CONNECTION_REUSE].n != 0;
	tp_gw_init(&gy->gw, &gy->conf);
	tp_gw_greeting(&gy->gw);
	c->state = CS_GW;
	tp_conn_timer(c, c->r->v[TP_K_IDLE_TIMEOUT].n);
	if (gw_out(c) < 0)
		return 0;
	tp_side_update_read(&c->down);
	return 0;
}

/* gw_failed_reply - why the destination failed, as the RCPT's reply. */
static void
gw_failed_reply(struct tp_conn *c, char *out, size_t len)
{
	/* the only permanent answers of the gateway's own (spec 4.9.5) */
	if (c->dest_perm == TP_DEST_NULLMX) {
		snprintf(out, len,
		    "556 5.1.10 Recipient address rejected: Domain %s does "
		    "not accept mail (nullMX)",
		    c->gwy->gw.domain);
		return;
	}
	if (c->dest_perm == TP_DEST_NXDOMAIN) {
		snprintf(out, len,
		    "550 5.4.4 Recipient address rejected: Host or domain "
		    "name not found");
		return;
	}
	tp_conn_fail_reply(c, out, len);
	/* 421 means the gateway is closing: this is the RCPT's 451 */
	if (strncmp(out, "421", 3) == 0)
		out[1] = '5';
}

void
tp_gateway_up_failed(struct tp_conn *c)
{
	struct tp_gateway *gy = c->gwy;
	enum tp_gw_event ev = TP_GW_NONE;
	char reply[512];

	gw_failed_reply(c, reply, sizeof(reply));
	tp_conn_log(c, TP_LOG_INFO, "%s: %s", gy->gw.domain, reply);
	tp_metrics_domain(c->rt->stats, gy->gw.domain,
	    reply[0] == '5' ? TP_DR_REJECTED : TP_DR_DEFERRED);
	tp_dest_free(c);
	c->dane = NULL;
	gy->connecting = false;
	c->state = CS_GW;
	tp_conn_timer(c, c->r->v[TP_K_IDLE_TIMEOUT].n);
	tp_gw_up_failed(&gy->gw, reply, &ev);
	if (gw_out(c) < 0)
		return;
	gw_event(c, ev);
	gw_pump_down(c);
}

void
tp_gateway_up_ready(struct tp_conn *c)
{
	struct tp_gateway *gy = c->gwy;
	enum tp_gw_event ev = TP_GW_NONE;
	char peer[TP_HOST_MAX + 80];

	tp_dialogue_free(c);
	gy->connecting = false;
	c->state = CS_GW;
	c->last_active = uv_now(&c->w->loop);
	tp_conn_timer(c, c->r->v[TP_K_IDLE_TIMEOUT].n);
	snprintf(peer, sizeof(peer), "%s[%s]", c->up_host, c->up_ip);
	if (c->up->ssl == NULL)
		tp_metrics_domain(c->rt->stats, gy->gw.domain, TP_DR_PLAINTEXT);
	tp_reuse_gw_ready(c);
	tp_gw_up_ready(&gy->gw, peer, &ev);
	if (gw_out(c) < 0)
		return;
	gw_event(c, ev);
	tp_side_update_read(c->up);
	gw_pump_up(c); /* bytes that came with the end of the handshake */
}

/*
 * tp_gateway_up_lost - the upstream went (or fell silent): what waited
 * for it gets a 451 in Postfix's words; the MTA's session goes on.
 */
void
tp_gateway_up_lost(struct tp_conn *c, bool timeout, const char *why)
{
	struct tp_gateway *gy = c->gwy;
	const char *phase = tp_gw_phase(&gy->gw);
	enum tp_gw_event ev = TP_GW_NONE;
	char reply[512];

	if (!gy->disconnecting && !gy->ending)
		tp_conn_log(c, TP_LOG_INFO, "%s with %s[%s]:%u%s%s (%s)",
		    timeout ? "conversation timed out" : "lost connection",
		    c->up_host, c->up_ip, c->up_port, phase ? " while " : "",
		    phase ? phase : "", why);
	snprintf(reply, sizeof(reply), "451 4.4.2 %s[%s]: %s%s%s", c->up_host,
	    c->up_ip, timeout ? "Conversation timed out" : "Lost connection",
	    phase ? " while " : "", phase ? phase : "");
	tp_gw_up_lost(&gy->gw, reply, &ev);
	if (c->up->open) {
		tp_conn_close_handle(c, (uv_handle_t *)&c->up->tcp);
		gy->disconnecting = true; /* until the handle is closed */
	}
	if (gw_out(c) < 0)
		return;
	gw_event(c, ev);
}

void
tp_gateway_up_closed(struct tp_conn *c)
{
	struct tp_gateway *gy = c->gwy;

	gy->disconnecting = false;
	if (c->state != CS_GW || c->closing)
		return;
	if (gy->ending) {
		if (c->down.shut_done || !c->down.open)
			tp_conn_close(c, NULL);
		return;
	}
	gw_pump_down(c);
}

bool
tp_gateway_down_gone(struct tp_conn *c)
{
	struct tp_gateway *gy = c->gwy;
	struct side *d = &c->down;

	if (gy == NULL || !gy->ending || !tp_gw_parking(&gy->gw) ||
	    !c->up->open)
		return false;
	/* The MTA went after its QUIT (Postfix does not wait for the
	 * 221): the upstream's answer to its RSET still decides whether
	 * it is kept; the session ends then, or at the linger timer. */
	tp_side_discard_input(d);
	tp_side_abandon(d);
	d->eof = true;
	d->open = false;
	tp_conn_close_handle(c, (uv_handle_t *)&d->tcp);
	return true;
}

void
tp_gateway_eof(struct tp_conn *c, struct side *s)
{
	struct tp_gateway *gy = c->gwy;

	if (s->is_down) {
		/* The MTA went: whatever it was doing is moot (it would have
		 * said QUIT and read our 221 otherwise). */
		if (tp_gateway_down_gone(c))
			return;
		tp_conn_close(c, gy->ending ? NULL : "client went away");
		return;
	}
	if (gy->disconnecting || gy->ending) {
		tp_conn_close_handle(c, (uv_handle_t *)&c->up->tcp);
		return;
	}
	tp_gateway_up_lost(c, false, "connection closed");
}

void
tp_gateway_shutdown(struct tp_conn *c, struct side *s)
{
	struct tp_gateway *gy = c->gwy;

	if (!s->is_down) {
		if (gy->disconnecting || gy->ending)
			tp_conn_close_handle(c, (uv_handle_t *)&c->up->tcp);
		return;
	}
	if (gy->ending && !c->up->open)
		tp_conn_close(c, NULL);
}

void
tp_gateway_on_timer(struct tp_conn *c)
{
	struct tp_gateway *gy = c->gwy;
	uint64_t idle = c->r->v[TP_K_IDLE_TIMEOUT].n;
	uint64_t now = uv_now(&c->w->loop);
	const char *phase = tp_gw_phase(&gy->gw);
	char line[300];

	if (gy->ending) {
		tp_conn_close(c, NULL);
		return;
	}
	if (phase != NULL && strncmp(phase, "sending end of data", 19) == 0 &&
	    idle < c->r->v[TP_K_DATA_DONE_TIMEOUT].n)
		idle = c->r->v[TP_K_DATA_DONE_TIMEOUT].n;
	if (now - c->last_active < idle) {
		tp_conn_timer(c, idle - (now - c->last_active));
		return;
	}
	if (c->up->open && !tp_gw_idle(&gy->gw)) {
		/* the upstream is the quiet one */
		tp_gateway_up_lost(c, true, "idle timeout");
		c->last_active = now;
		tp_conn_timer(c, idle);
		return;
	}
	snprintf(line, sizeof(line), "421 4.4.2 %s Error: timeout exceeded",
	    c->rt->hostname);
	tp_conn_log(c, TP_LOG_INFO, "timeout from %s", c->peer_addr);
	tp_conn_fail(c, line);
}

const char *
tp_gateway_domain(const struct tp_conn *c)
{
	return c->gwy != NULL && c->gwy->gw.domain[0] ? c->gwy->gw.domain
						      : NULL;
}

void
tp_gateway_free(struct tp_conn *c)
{
	free(c->gwy);
	c->gwy = NULL;
}
