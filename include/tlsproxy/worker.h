/*
 * worker.h - one event-loop thread: its loop, its listeners, its sessions
 * and its chunk pool.  The main thread talks to a worker only through
 * tp_worker_publish()/tp_worker_stop() (mutex + uv_async); everything
 * else here is touched by the worker's own thread only.
 */
#ifndef TLSPROXY_WORKER_H
#define TLSPROXY_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "tlsproxy/buf.h"

struct tp_gen;
struct tp_conn;
struct tp_listener;
struct tp_sesscache;
struct tp_dns;
struct tp_sts_curl;
struct tp_connpool;

#define TP_WORKER_MAGIC 0x574b5230u

struct tp_worker {
	uint32_t magic;
	int index;
	uv_loop_t loop;
	uv_async_t async;
	uv_timer_t grace;
	uv_thread_t thread;
	struct tp_pool pool;
	struct tp_gen *gen; /* current generation (a reference) */
	struct tp_listener *listeners;
	struct tp_conn *conns; /* every live session, for shutdown */
	unsigned nconns;
	uint32_t next_sid;
	struct tp_sesscache *sesscache; /* client TLS sessions (conn.c) */
	struct tp_dns *dns;             /* resolver contexts (dns.c) */
	struct tp_sts_curl *sts;        /* MTA-STS fetches (sts.c) */
	struct tp_connpool *connpool;   /* kept upstreams (connpool.c) */
	bool stopping;
	/* inbox, under lock */
	pthread_mutex_t lock;
	struct tp_gen *inbox_gen;
	bool inbox_stop;
	uint64_t grace_ms;
};

int tp_worker_start(struct tp_worker *w, int index, struct tp_gen *gen);
/* tp_worker_publish - hand a new generation over (takes a reference). */
void tp_worker_publish(struct tp_worker *w, struct tp_gen *gen);
/* tp_worker_stop - stop accepting; close sessions after grace_ms. */
void tp_worker_stop(struct tp_worker *w, uint64_t grace_ms);
void tp_worker_join(struct tp_worker *w);
/* tp_worker_session_done - a session was freed (called by conn.c). */
void tp_worker_session_done(struct tp_worker *w);

#endif
