/*
 * stats.h - the plain-HTTP metrics endpoint (`stats = ADDRESS:PORT`):
 * GET /metrics answers Prometheus text.  Runs on the main loop.
 */
#ifndef TLSPROXY_STATS_H
#define TLSPROXY_STATS_H

#include <uv.h>

struct tp_gen;
struct tp_hostport;

/* tp_stats_start - listen on hp; 0 or -1 (logged). */
int tp_stats_start(uv_loop_t *loop, const struct tp_hostport *hp);
/* tp_stats_set_gen - the generation whose routes are reported. */
void tp_stats_set_gen(struct tp_gen *gen);
void tp_stats_stop(void);

#endif
