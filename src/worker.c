/*
 * worker.c - one uv_loop_t per thread with its listeners and sessions.
 *
 * The main thread hands over new generations and the stop request through
 * a mutex-protected inbox and uv_async_send(); the worker applies them on
 * its own thread.  On stop it closes its listeners, lets sessions finish
 * for the grace period, then closes what is left; its loop ends when its
 * last handle is closed.
 */
#include "tlsproxy/worker.h"

#include <stdlib.h>

#include "tlsproxy/common.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/connpool.h"
#include "tlsproxy/dns.h"
#include "tlsproxy/sts.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/listener.h"
#include "tlsproxy/log.h"

#define TP_POOL_KEEP 64 /* free chunks kept per worker (2 MB) */

static void
worker_finish(struct tp_worker *w)
{
	tp_sts_worker_finish(&w->ctx);
	tp_dns_worker_finish(&w->ctx);
	if (!uv_is_closing((uv_handle_t *)&w->async))
		uv_close((uv_handle_t *)&w->async, NULL);
	if (!uv_is_closing((uv_handle_t *)&w->grace))
		uv_close((uv_handle_t *)&w->grace, NULL);
}

static void
worker_on_grace(uv_timer_t *t)
{
	struct tp_worker *w = t->data;
	struct tp_conn *c;

	TP_CHECK_MAGIC(w, TP_WORKER_MAGIC);
	if (w->ctx.nconns > 0)
		tp_log(TP_LOG_INFO,
		    "shutdown grace over: closing %u "
		    "session(s)",
		    w->ctx.nconns);
	/* tp_conn_close never frees synchronously: the list stays valid. */
	for (c = w->ctx.conns; c != NULL; c = tp_conn_next(c))
		tp_conn_close(c, "shutdown");
}

static void
worker_on_async(uv_async_t *a)
{
	struct tp_worker *w = a->data;
	struct tp_gen *gen;
	bool stop;

	TP_CHECK_MAGIC(w, TP_WORKER_MAGIC);
	pthread_mutex_lock(&w->lock);
	gen = w->inbox_gen;
	w->inbox_gen = NULL;
	stop = w->inbox_stop;
	pthread_mutex_unlock(&w->lock);
	if (gen != NULL) {
		if (w->ctx.stopping) {
			tp_gen_unref(gen);
		} else {
			tp_gen_unref(w->ctx.gen);
			w->ctx.gen = gen;
			tp_listener_sync(&w->ctx);
			/* never reused under other rules (spec 4.7) */
			tp_connpool_drain(w->ctx.connpool, w->ctx.gen);
		}
	}
	if (stop && !w->ctx.stopping) {
		w->ctx.stopping = true;
		tp_listener_close_all(&w->ctx);
		tp_connpool_shutdown(w->ctx.connpool);
		if (w->ctx.nconns == 0)
			worker_finish(w);
		else
			uv_timer_start(
			    &w->grace, worker_on_grace, w->grace_ms, 0);
	}
}

static void
worker_session_done(struct tp_wctx *x)
{
	struct tp_worker *w = tp_container_of(x, struct tp_worker, ctx);

	w->ctx.nconns--;
	if (w->ctx.stopping && w->ctx.nconns == 0)
		worker_finish(w);
}

static void
worker_main(void *arg)
{
	struct tp_worker *w = arg;

	uv_run(&w->ctx.loop, UV_RUN_DEFAULT);
}

int
tp_worker_start(struct tp_worker *w, int index, struct tp_gen *gen)
{
	int rc;

	w->magic = TP_WORKER_MAGIC;
	w->ctx.index = index;
	tp_pool_init(&w->ctx.pool, TP_POOL_KEEP);
	pthread_mutex_init(&w->lock, NULL);
	if ((rc = uv_loop_init(&w->ctx.loop)) < 0)
		return rc;
	w->ctx.session_done = worker_session_done;
	uv_async_init(&w->ctx.loop, &w->async, worker_on_async);
	w->async.data = w;
	uv_timer_init(&w->ctx.loop, &w->grace);
	w->grace.data = w;
	if ((w->ctx.connpool = malloc(sizeof(*w->ctx.connpool))) == NULL)
		return UV_ENOMEM;
	tp_connpool_init(w->ctx.connpool, &w->ctx.loop, &w->ctx.pool);
	tp_gen_ref(gen);
	w->ctx.gen = gen;
	/* Handles are set up here, before the thread exists. */
	tp_listener_sync(&w->ctx);
	return uv_thread_create(&w->thread, worker_main, w);
}

void
tp_worker_publish(struct tp_worker *w, struct tp_gen *gen)
{
	tp_gen_ref(gen);
	pthread_mutex_lock(&w->lock);
	if (w->inbox_gen != NULL)
		tp_gen_unref(w->inbox_gen);
	w->inbox_gen = gen;
	pthread_mutex_unlock(&w->lock);
	uv_async_send(&w->async);
}

void
tp_worker_stop(struct tp_worker *w, uint64_t grace_ms)
{
	pthread_mutex_lock(&w->lock);
	w->inbox_stop = true;
	w->grace_ms = grace_ms;
	pthread_mutex_unlock(&w->lock);
	uv_async_send(&w->async);
}

void
tp_worker_join(struct tp_worker *w)
{
	uv_thread_join(&w->thread);
	uv_loop_close(&w->ctx.loop);
	pthread_mutex_lock(&w->lock);
	if (w->inbox_gen != NULL)
		tp_gen_unref(w->inbox_gen);
	w->inbox_gen = NULL;
	pthread_mutex_unlock(&w->lock);
	tp_conn_worker_done(&w->ctx);
	tp_gen_unref(w->ctx.gen);
	w->ctx.gen = NULL;
	free(w->ctx.connpool);
	w->ctx.connpool = NULL;
	tp_pool_destroy(&w->ctx.pool);
	pthread_mutex_destroy(&w->lock);
}
