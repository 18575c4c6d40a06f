/*
 * listener.h - listening sockets: bound on the main thread (one socket
 * per worker with SO_REUSEPORT, so the kernel spreads connections), then
 * adopted by each worker's loop, which accepts and starts sessions.
 */
#ifndef TLSPROXY_LISTENER_H
#define TLSPROXY_LISTENER_H

#include <stddef.h>

struct tp_hostport;
struct tp_wctx;

/*
 * tp_listener_bind - n sockets bound to hp (main thread).  The first is
 * bound without SO_REUSEPORT so an address already in use by anyone is
 * refused; the rest share its port.  *port gets the real port.
 * Returns 0, or -1 with why filled and nothing left open.
 */
int tp_listener_bind(const struct tp_hostport *hp, unsigned n, int *fds,
    unsigned *port, char *why, size_t len);
/* tp_listener_sync - adopt/keep/drop listeners to match w->gen. */
void tp_listener_sync(struct tp_wctx *w);
/* tp_listener_close_all - stop accepting (shutdown). */
void tp_listener_close_all(struct tp_wctx *w);

#endif
