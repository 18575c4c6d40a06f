/*
 * wctx.h - what the code on one worker thread shares: its loop, its chunk
 * pool, the generation it serves, its sessions, and the per-thread
 * resolver, MTA-STS fetcher, TLS session cache and connection pool.  The
 * worker (worker.c) owns it; listeners, sessions and the per-thread
 * services below them see only this, never the worker, and tell it that a
 * session ended through session_done.  Worker thread only.
 */
#ifndef TLSPROXY_WCTX_H
#define TLSPROXY_WCTX_H

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

struct tp_wctx {
	int index;
	uv_loop_t loop;
	struct tp_pool pool;
	struct tp_gen *gen; /* current generation (a reference) */
	struct tp_listener *listeners;
	struct tp_conn *conns; /* every live session, for shutdown */
	unsigned nconns;
	uint32_t next_sid;
	struct tp_sesscache *sesscache; /* client TLS sessions (sesscache.c) */
	struct tp_dns *dns;             /* resolver contexts (dns.c) */
	struct tp_sts_curl *sts;        /* MTA-STS fetches (sts.c) */
	struct tp_connpool *connpool;   /* kept upstreams (connpool.c) */
	bool stopping;
	/* a session was freed (called by conn.c) */
	void (*session_done)(struct tp_wctx *w);
};

#endif
