/*
 * conn.h - one proxied session: the accepted side (down), the destination
 * side (up), its timer and its state, on one worker thread.
 *
 * accept -> [client: connect up] -> TLS handshake -> [server: connect
 * backend] -> relay; a failure before the relay becomes a 421 to the
 * local client in client mode (mail is deferred, never lost).
 */
#ifndef TLSPROXY_CONN_H
#define TLSPROXY_CONN_H

#include <stdatomic.h>

#include <uv.h>

struct tp_wctx;
struct tp_route_rt;
struct tp_conn;

/*
 * tp_conn_accept - accept a pending connection on server and start a
 * session for route rt (index into the worker's current generation).
 */
void tp_conn_accept(struct tp_wctx *w, uv_stream_t *server, size_t route);
/* tp_conn_close - end a session (asynchronous, idempotent). */
void tp_conn_close(struct tp_conn *c, const char *reason);
/* tp_conn_worker_done - free the worker's client session cache. */
void tp_conn_worker_done(struct tp_wctx *w);
/* tp_conn_next - the next session in the worker's list. */
struct tp_conn *tp_conn_next(struct tp_conn *c);

/* Sessions accepted across all routes and workers (max_connections). */
extern atomic_uint tp_conn_active_total;

#endif
