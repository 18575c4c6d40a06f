/*
 * connpool.h - connection reuse (spec 4.7): each worker's idle upstream
 * connections, kept after a session whose client said QUIT (which went
 * up as RSET and got its 250) and handed to a later session of the same
 * route, destination and rules.  An entry owns its endpoint (struct side:
 * socket, TLS) and what the first session's client saw of the server (the
 * greeting and the EHLO reply, which later clients get from the proxy).
 * While idle nothing is read: a server that sends anything or closes, an
 * idle time over connection_cache_time, or a new generation (reload)
 * closes the entry.  Worker thread only.
 */
#ifndef TLSPROXY_CONNPOOL_H
#define TLSPROXY_CONNPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tlsproxy/parse.h"

struct side;
struct tp_gen;
struct tp_pool;
struct tp_pooled;

#define TP_REUSE_KEY_MAX  (TP_HOST_MAX + 160)
#define TP_REUSE_TEXT_MAX 4096 /* a greeting or EHLO reply kept, at most */

/*
 * What a reusable connection carries from session to session: how it was
 * chosen (key: route, destination, the rules it was verified under), what
 * its first client saw, and its age and uses.
 */
struct tp_reuse {
	char key[TP_REUSE_KEY_MAX];
	char *greeting; /* whole reply, CRLF-terminated lines */
	size_t glen;
	char *ehlo; /* the 250 to EHLO as rewritten (or to HELO), no CRLF */
	size_t elen;
	char *helo;       /* "250 NAME": the answer to a HELO */
	bool chunking;    /* the EHLO reply offers CHUNKING */
	bool spoiled;     /* too long to keep, or out of memory: not reusable */
	bool ehlo_done;   /* the EHLO reply is complete */
	unsigned uses;    /* sessions served before the current one */
	unsigned gw_caps; /* gateways: TP_GW_UP_* (smtp_gateway.h) */
	char host[TP_HOST_MAX]; /* the server, for the sessions' log lines */
	char ip[64];
	unsigned port;
	uint64_t born; /* uv_now() when the connection was made */
};

struct tp_connpool {
	uv_loop_t *loop;
	struct tp_pool *chunks;
	uv_timer_t timer;
	struct tp_pooled *head; /* oldest first */
	unsigned n;
	bool closing;
};

/* tp_reuse_new / tp_reuse_free - an empty record (NULL: no memory). */
struct tp_reuse *tp_reuse_new(uint64_t now);
void tp_reuse_free(struct tp_reuse *r);
/* tp_reuse_keep - add reply bytes (which: TP_FILTER_R_GREETING or _EHLO). */
void tp_reuse_keep(struct tp_reuse *r, int which, const char *data, size_t len);
/* tp_reuse_greeting - the greeting, a line without CRLF (client STARTTLS). */
void tp_reuse_greeting(struct tp_reuse *r, const char *line);
/* tp_reuse_ready - the greeting and a whole EHLO reply are kept. */
bool tp_reuse_ready(struct tp_reuse *r);

void tp_connpool_init(
    struct tp_connpool *cp, uv_loop_t *loop, struct tp_pool *chunks);
/* tp_connpool_shutdown - close every idle connection; take no more. */
void tp_connpool_shutdown(struct tp_connpool *cp);
/* tp_connpool_drain - close the connections of other generations. */
void tp_connpool_drain(struct tp_connpool *cp, const struct tp_gen *gen);
/*
 * tp_connpool_put - keep s (no bytes pending either way, its handle open)
 * and r for route (an index into gen) for at most idle_ms, when fewer
 * than max connections of that route are kept: 0, the pool owns both; -1,
 * the caller still does (and closes s).
 */
int tp_connpool_put(struct tp_connpool *cp, struct side *s, struct tp_reuse *r,
    struct tp_gen *gen, size_t route, uint64_t idle_ms, unsigned max);
/*
 * tp_connpool_take - the most recently kept connection whose key is key,
 * made less than max_age_ms ago (older ones are closed), or NULL; *r gets
 * its record.  The caller owns both and reads from s with its own
 * callbacks.
 */
struct side *tp_connpool_take(struct tp_connpool *cp, const char *key,
    uint64_t max_age_ms, struct tp_reuse **r);
/* tp_connpool_count - connections kept for route of gen. */
unsigned tp_connpool_count(
    const struct tp_connpool *cp, const struct tp_gen *gen, size_t route);

#endif
