/*
 * listener.c - bind (main thread) and accept (worker threads).
 *
 * Each route has one socket per worker, all bound to one address with
 * SO_REUSEPORT; each worker adopts its own with uv_tcp_open().  A worker
 * keeps a listener across reloads while the generation still has a route
 * with the same accept key, and closes the ones that disappeared.
 */
#include "tlsproxy/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/log.h"
#include "tlsproxy/parse.h"
#include "tlsproxy/wctx.h"

#define TP_LISTENER_MAGIC 0x4c53544eu
#define TP_BACKLOG        511

struct tp_listener {
	uint32_t magic;
	uv_tcp_t tcp;
	struct tp_wctx *w;
	char *key;
	size_t route;
	bool keep;
	struct tp_listener *next;
};

static int
make_addr(const struct tp_hostport *hp, struct sockaddr_storage *ss,
    socklen_t *sl, bool v6any)
{
	memset(ss, 0, sizeof(*ss));
	if (hp->wildcard && v6any) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons(hp->port);
		*sl = sizeof(*s6);
		return 0;
	}
	if (hp->is_v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(hp->port);
		*sl = sizeof(*s6);
		return inet_pton(AF_INET6, hp->host, &s6->sin6_addr) == 1 ? 0
									  : -1;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(hp->port);
	*sl = sizeof(*s4);
	if (hp->wildcard) {
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		return 0;
	}
	return inet_pton(AF_INET,
		   strcmp(hp->host, "localhost") == 0 ? "127.0.0.1" : hp->host,
		   &s4->sin_addr) == 1
	    ? 0
	    : -1;
}

static void
set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

int
tp_listener_bind(const struct tp_hostport *hp, unsigned n, int *fds,
    unsigned *port, char *why, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, zero = 0, fd;
	unsigned i;

	if (make_addr(hp, &ss, &sl, true) < 0) {
		snprintf(why, len, "bad address");
		return -1;
	}
	for (i = 0; i < n; i++) {
		fd = socket(ss.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 && i == 0 && hp->wildcard &&
		    ss.ss_family == AF_INET6) {
			/* no IPv6 here: IPv4 only */
			make_addr(hp, &ss, &sl, false);
			fd = socket(AF_INET,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		}
		if (fd < 0)
			goto fail;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
			    hp->wildcard ? &zero : &one, sizeof(one));
		/* The first socket detects an address already in use. */
		if (i > 0 &&
		    setsockopt(
			fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
			goto fail_fd;
		if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
			goto fail_fd;
		if (i == 0) {
			struct sockaddr_storage got;
			socklen_t gl = sizeof(got);

			if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
				sizeof(one)) < 0 ||
			    getsockname(fd, (struct sockaddr *)&got, &gl) < 0)
				goto fail_fd;
			*port = ntohs(got.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&got)->sin6_port
				: ((struct sockaddr_in *)&got)->sin_port);
			set_port(&ss, *port);
		}
		if (listen(fd, TP_BACKLOG) < 0)
			goto fail_fd;
		fds[i] = fd;
	}
	return 0;
fail_fd:
	snprintf(why, len, "%s", strerror(errno));
	close(fd);
	goto out;
fail:
	snprintf(why, len, "%s", strerror(errno));
out:
	while (i-- > 0)
		close(fds[i]);
	return -1;
}

static void
listener_on_connection(uv_stream_t *server, int status)
{
	struct tp_listener *l = server->data;
	static __thread uint64_t last_warn;

	TP_CHECK_MAGIC(l, TP_LISTENER_MAGIC);
	if (status < 0) {
		/* EMFILE and friends: say so at most once a second. */
		if (uv_now(&l->w->loop) - last_warn >= 1000) {
			last_warn = uv_now(&l->w->loop);
			tp_log(
			    TP_LOG_WARNING, "accept: %s", uv_strerror(status));
		}
		return;
	}
	tp_conn_accept(l->w, server, l->route);
}

static void
listener_on_closed(uv_handle_t *h)
{
	struct tp_listener *l = h->data;

	free(l->key);
	l->magic = 0;
	free(l);
}

static void
listener_drop(struct tp_listener *l)
{
	uv_close((uv_handle_t *)&l->tcp, listener_on_closed);
}

void
tp_listener_sync(struct tp_wctx *w)
{
	struct tp_listener *l, **pp;
	struct tp_gen *g = w->gen;
	int rc;

	for (l = w->listeners; l != NULL; l = l->next)
		l->keep = false;
	for (size_t i = 0; i < g->nroutes; i++) {
		struct tp_route_rt *rt = &g->routes[i];

		for (l = w->listeners; l != NULL; l = l->next)
			if (strcmp(l->key, rt->listen_key) == 0)
				break;
		if (l != NULL) {
			l->keep = true;
			l->route = i;
			continue;
		}
		if ((l = calloc(1, sizeof(*l))) == NULL ||
		    (l->key = strdup(rt->listen_key)) == NULL) {
			tp_log(
			    TP_LOG_ERROR, "%s: out of memory", rt->cfg->name);
			free(l);
			continue;
		}
		l->magic = TP_LISTENER_MAGIC;
		l->w = w;
		l->route = i;
		l->keep = true;
		uv_tcp_init(&w->loop, &l->tcp);
		l->tcp.data = l;
		if ((rc = uv_tcp_open(&l->tcp, rt->fds[w->index])) < 0 ||
		    (rc = uv_listen((uv_stream_t *)&l->tcp, TP_BACKLOG,
			 listener_on_connection)) < 0)
			tp_log(TP_LOG_ERROR, "%s: listen: %s", rt->cfg->name,
			    uv_strerror(rc));
		l->next = w->listeners;
		w->listeners = l;
	}
	for (pp = &w->listeners; (l = *pp) != NULL;) {
		if (l->keep) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		listener_drop(l);
	}
}

void
tp_listener_close_all(struct tp_wctx *w)
{
	struct tp_listener *l;

	while ((l = w->listeners) != NULL) {
		w->listeners = l->next;
		listener_drop(l);
	}
}
