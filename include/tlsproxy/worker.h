/*
 * worker.h - one event-loop thread: its context (wctx.h: loop, listeners,
 * sessions, chunk pool).  The main thread talks to a worker only through
 * tp_worker_publish()/tp_worker_stop() (mutex + uv_async); everything
 * else here is touched by the worker's own thread only.
 */
#ifndef TLSPROXY_WORKER_H
#define TLSPROXY_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "tlsproxy/wctx.h"

#define TP_WORKER_MAGIC 0x574b5230u

struct tp_worker {
	uint32_t magic;
	struct tp_wctx ctx; /* what its listeners and sessions see */
	uv_async_t async;
	uv_timer_t grace;
	uv_thread_t thread;
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

#endif
