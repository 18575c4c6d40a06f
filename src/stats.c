/*
 * stats.c - a minimal HTTP/1.0 server for /metrics on the main loop.
 * One request per connection, read up to the blank line (at most 4 KB,
 * 5 s), answered and closed; anything but GET /metrics gets 404.  The
 * endpoint listens where `stats` says (loopback unless the administrator
 * names another address).  Main thread only.
 */
#include "tlsproxy/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/listener.h"
#include "tlsproxy/log.h"
#include "tlsproxy/metrics.h"
#include "tlsproxy/parse.h"

#define REQ_MAX 4096

struct client {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	int nopen;
	bool done;
	size_t len;
	char req[REQ_MAX];
	char *resp;
};

static uv_tcp_t stats_server;
static bool stats_running;
static struct tp_gen *stats_gen;

void
tp_stats_set_gen(struct tp_gen *gen)
{
	if (stats_gen != NULL)
		tp_gen_unref(stats_gen);
	tp_gen_ref(gen);
	stats_gen = gen;
}

static void
client_on_closed(uv_handle_t *h)
{
	struct client *cl = h->data;

	if (--cl->nopen == 0) {
		free(cl->resp);
		free(cl);
	}
}

static void
client_end(struct client *cl)
{
	if (cl->done)
		return;
	cl->done = true;
	uv_close((uv_handle_t *)&cl->tcp, client_on_closed);
	uv_close((uv_handle_t *)&cl->timer, client_on_closed);
}

static void
client_on_written(uv_write_t *req, int status)
{
	(void)status;
	client_end(req->data);
}

static void
client_respond(struct client *cl)
{
	const char *status = "404 Not Found", *ctype = "text/plain";
	char *body = NULL, head[256];
	size_t blen = 0, hlen;
	uv_buf_t b;

	uv_read_stop((uv_stream_t *)&cl->tcp);
	if (strncmp(cl->req, "GET /metrics ", 13) == 0 ||
	    strncmp(cl->req, "GET /metrics\r", 13) == 0) {
		body = stats_gen ? tp_metrics_render(stats_gen, &blen) : NULL;
		if (body != NULL) {
			status = "200 OK";
			ctype = "text/plain; version=0.0.4";
		} else {
			status = "500 Internal Server Error";
		}
	}
	if (body == NULL) {
		body = strdup("not found\n");
		blen = body ? strlen(body) : 0;
	}
	hlen = (size_t)snprintf(head, sizeof(head),
	    "HTTP/1.0 %s\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
	    "\r\n",
	    status, ctype, blen);
	cl->resp = malloc(hlen + blen);
	if (cl->resp == NULL) {
		free(body);
		client_end(cl);
		return;
	}
	memcpy(cl->resp, head, hlen);
	if (body != NULL)
		memcpy(cl->resp + hlen, body, blen);
	free(body);
	b = uv_buf_init(cl->resp, (unsigned)(hlen + blen));
	cl->wreq.data = cl;
	if (uv_write(&cl->wreq, (uv_stream_t *)&cl->tcp, &b, 1,
		client_on_written) < 0)
		client_end(cl);
}

static void
client_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct client *cl = h->data;

	(void)hint;
	*buf = uv_buf_init(
	    cl->req + cl->len, (unsigned)(sizeof(cl->req) - 1 - cl->len));
}

static void
client_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct client *cl = s->data;

	(void)buf;
	if (cl->done)
		return;
	if (n < 0) {
		client_end(cl);
		return;
	}
	cl->len += (size_t)n;
	cl->req[cl->len] = '\0';
	if (strstr(cl->req, "\r\n\r\n") != NULL ||
	    strstr(cl->req, "\n\n") != NULL || cl->len >= sizeof(cl->req) - 1)
		client_respond(cl);
}

static void
client_on_timeout(uv_timer_t *t)
{
	client_end(t->data);
}

static void
stats_on_connection(uv_stream_t *server, int status)
{
	struct client *cl;

	if (status < 0 || (cl = calloc(1, sizeof(*cl))) == NULL)
		return;
	uv_tcp_init(server->loop, &cl->tcp);
	uv_timer_init(server->loop, &cl->timer);
	cl->tcp.data = cl->timer.data = cl;
	cl->nopen = 2;
	if (uv_accept(server, (uv_stream_t *)&cl->tcp) < 0) {
		client_end(cl);
		return;
	}
	uv_timer_start(&cl->timer, client_on_timeout, 5000, 0);
	uv_read_start((uv_stream_t *)&cl->tcp, client_on_alloc, client_on_read);
}

int
tp_stats_start(uv_loop_t *loop, const struct tp_hostport *hp)
{
	unsigned port = 0;
	char why[200], addr[300];
	int fd;

	if (tp_listener_bind(hp, 1, &fd, &port, why, sizeof(why)) < 0) {
		tp_log(TP_LOG_ERROR, "stats: cannot listen on %s:%u: %s",
		    hp->host, hp->port, why);
		return -1;
	}
	uv_tcp_init(loop, &stats_server);
	if (uv_tcp_open(&stats_server, fd) < 0 ||
	    uv_listen((uv_stream_t *)&stats_server, 64, stats_on_connection) <
		0) {
		tp_log(TP_LOG_ERROR, "stats: cannot listen");
		uv_close((uv_handle_t *)&stats_server, NULL);
		return -1;
	}
	stats_running = true;
	{
		struct tp_hostport real = *hp;

		real.port = (uint16_t)port;
		tp_hostport_format(&real, addr, sizeof(addr));
		tp_log(
		    TP_LOG_INFO, "stats: listening on %s (GET /metrics)", addr);
	}
	return 0;
}

void
tp_stats_stop(void)
{
	if (stats_running) {
		uv_close((uv_handle_t *)&stats_server, NULL);
		stats_running = false;
	}
	if (stats_gen != NULL) {
		tp_gen_unref(stats_gen);
		stats_gen = NULL;
	}
}
