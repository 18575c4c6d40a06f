/*
 * probe.c - the backend probe (spec 3, message_size_limit): connect to
 * the first backend address, send the PROXY header when the route does,
 * read the greeting, send EHLO, keep the keyword lines of the reply,
 * QUIT.  What it learns goes to the route's shared state (gen.c), which
 * new sessions copy when they start their pre-TLS dialogue; a failed probe
 * keeps what was learned before.  Each probe is bounded by a 10 s timer.
 * Main thread only.
 */
#include "tlsproxy/probe.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/log.h"
#include "tlsproxy/proxy_proto.h"
#include "tlsproxy/smtp_line.h"
#include "tlsproxy/smtp_server.h"

#define PROBE_EVERY_MS   (5 * 60 * 1000)
#define PROBE_TIMEOUT_MS 10000

struct probe {
	struct probe *next, *prev; /* in flight, for tp_probe_stop */
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	uv_write_t wreq;
	struct tp_gen *gen;
	size_t route;
	int state; /* 0 greeting, 1 EHLO reply, 2 done */
	int nopen;
	bool done;
	struct tp_linereader lr;
	struct tp_reply reply;
	char caps[TP_CAPS_MAX];
	char wbuf[600];
	char rbuf[4096];
};

static uv_loop_t *probe_loop;
static uv_timer_t probe_every;
static bool probe_every_init;
static struct tp_gen *probe_gen;
static struct probe *probes;

static void
probe_on_closed(uv_handle_t *h)
{
	struct probe *p = h->data;

	if (--p->nopen == 0) {
		tp_gen_unref(p->gen);
		free(p);
	}
}

static void
probe_end(struct probe *p, const char *why)
{
	const struct tp_route_rt *rt = &p->gen->routes[p->route];

	if (p->done)
		return;
	p->done = true;
	if (p->prev)
		p->prev->next = p->next;
	else
		probes = p->next;
	if (p->next)
		p->next->prev = p->prev;
	if (why != NULL)
		tp_log(
		    TP_LOG_INFO, "%s: backend probe: %s", rt->cfg->name, why);
	uv_close((uv_handle_t *)&p->tcp, probe_on_closed);
	uv_close((uv_handle_t *)&p->timer, probe_on_closed);
}

static void
probe_on_written(uv_write_t *req, int status)
{
	(void)req;
	(void)status;
}

static void
probe_send(struct probe *p, const char *data, size_t len)
{
	uv_buf_t b;

	if (len > sizeof(p->wbuf))
		len = sizeof(p->wbuf);
	memcpy(p->wbuf, data, len);
	b = uv_buf_init(p->wbuf, (unsigned)len);
	/* one short command at a time: the socket buffer takes it whole */
	if (uv_try_write((uv_stream_t *)&p->tcp, &b, 1) != (int)len)
		probe_end(p, "write failed");
}

static void
probe_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct probe *p = h->data;

	(void)hint;
	*buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void
probe_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct probe *p = s->data;
	const struct tp_route_rt *rt = &p->gen->routes[p->route];
	const char *data = buf->base, *why;
	size_t len = n > 0 ? (size_t)n : 0;
	char cmd[300];
	int rc;

	if (p->done)
		return;
	if (n < 0) {
		probe_end(p, "connection closed");
		return;
	}
	while (len > 0) {
		enum tp_line_rc lrc = tp_line_feed(&p->lr, &data, &len);

		if (lrc == TP_LINE_MORE)
			break;
		if (lrc == TP_LINE_TOOLONG) {
			probe_end(p, "reply line too long");
			return;
		}
		rc = tp_reply_line(&p->reply, p->lr.buf, p->lr.len, &why);
		if (rc < 0) {
			probe_end(p, why);
			return;
		}
		if (p->state == 1 && p->reply.nlines > 1)
			tp_smtps_caps_add(
			    p->caps, sizeof(p->caps), p->lr.buf, p->lr.len);
		if (rc == 0)
			continue;
		if (p->state == 0) {
			if (p->reply.code != 220) {
				probe_end(p, "greeting is not 220");
				return;
			}
			snprintf(cmd, sizeof(cmd), "EHLO %s\r\n", rt->hostname);
			probe_send(p, cmd, strlen(cmd));
			p->state = 1;
			continue;
		}
		if (p->reply.code != 250) {
			probe_end(p, "EHLO refused");
			return;
		}
		tp_caps_set(rt->stats, p->caps);
		tp_log(TP_LOG_DEBUG,
		    "%s: backend probe: learned %zu bytes of "
		    "EHLO keywords",
		    rt->cfg->name, strlen(p->caps));
		probe_send(p, "QUIT\r\n", 6);
		probe_end(p, NULL);
		return;
	}
}

static void
probe_on_connect(uv_connect_t *req, int status)
{
	struct probe *p = tp_container_of(req, struct probe, creq);
	const struct tp_route_rt *rt = &p->gen->routes[p->route];
	struct sockaddr_storage self, peer;
	int sl = sizeof(self), pl = sizeof(peer), n;
	char hdr[TP_PROXY_V1_MAX + 64];

	if (status == UV_ECANCELED || p->done)
		return;
	if (status < 0) {
		probe_end(p, uv_strerror(status));
		return;
	}
	if (rt->cfg->v[TP_K_PROXY_PROTOCOL].e != 0) {
		uv_tcp_getsockname(&p->tcp, (struct sockaddr *)&self, &sl);
		uv_tcp_getpeername(&p->tcp, (struct sockaddr *)&peer, &pl);
		n = tp_proxy_encode(rt->cfg->v[TP_K_PROXY_PROTOCOL].e, &self,
		    &peer, NULL, hdr, sizeof(hdr));
		if (n > 0)
			probe_send(p, hdr, (size_t)n);
	}
	uv_read_start((uv_stream_t *)&p->tcp, probe_on_alloc, probe_on_read);
	(void)probe_on_written;
}

static void
probe_on_timeout(uv_timer_t *t)
{
	probe_end(t->data, "timed out");
}

static void
probe_route(struct tp_gen *gen, size_t i)
{
	const struct tp_cfg_route *r = gen->routes[i].cfg;
	struct addrinfo hints, *ai = NULL;
	char port[8];
	struct probe *p;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", r->connect[0].port);
	if (getaddrinfo(r->connect[0].host, port, &hints, &ai) != 0 ||
	    ai == NULL)
		return;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		freeaddrinfo(ai);
		return;
	}
	p->gen = gen;
	tp_gen_ref(gen);
	p->next = probes;
	if (probes)
		probes->prev = p;
	probes = p;
	p->route = i;
	p->nopen = 2;
	tp_line_init(&p->lr, TP_LINE_MAX);
	tp_reply_init(&p->reply);
	uv_tcp_init(probe_loop, &p->tcp);
	uv_timer_init(probe_loop, &p->timer);
	p->tcp.data = p->timer.data = p;
	uv_timer_start(&p->timer, probe_on_timeout, PROBE_TIMEOUT_MS, 0);
	if (uv_tcp_connect(&p->creq, &p->tcp, ai->ai_addr, probe_on_connect) <
	    0)
		probe_end(p, "cannot connect");
	freeaddrinfo(ai);
}

static void
probe_all(uv_timer_t *t)
{
	(void)t;
	for (size_t i = 0; probe_gen != NULL && i < probe_gen->nroutes; i++) {
		const struct tp_route_rt *rt = &probe_gen->routes[i];

		if (rt->cfg->mode == TP_MODE_SERVER &&
		    rt->cfg->tls == TP_TLS_STARTTLS && rt->ctx != NULL &&
		    rt->cfg->nconnect > 0)
			probe_route(probe_gen, i);
	}
}

void
tp_probe_start(uv_loop_t *loop, struct tp_gen *gen)
{
	probe_loop = loop;
	if (probe_gen != NULL)
		tp_gen_unref(probe_gen);
	tp_gen_ref(gen);
	probe_gen = gen;
	if (!probe_every_init) {
		uv_timer_init(loop, &probe_every);
		uv_unref((uv_handle_t *)&probe_every);
		probe_every_init = true;
	}
	probe_all(NULL);
	uv_timer_start(&probe_every, probe_all, PROBE_EVERY_MS, PROBE_EVERY_MS);
}

void
tp_probe_stop(void)
{
	if (probe_every_init) {
		uv_close((uv_handle_t *)&probe_every, NULL);
		probe_every_init = false;
	}
	if (probe_gen != NULL) {
		tp_gen_unref(probe_gen);
		probe_gen = NULL;
	}
	while (probes != NULL)
		probe_end(probes, NULL);
}
