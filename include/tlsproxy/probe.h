/*
 * probe.h - learn each server+starttls route's backend capabilities (its
 * EHLO keywords: SIZE, AUTH, ...) for the proxy's own pre-TLS EHLO reply:
 * at start, on reload and every 5 minutes.  Runs on the main loop.
 */
#ifndef TLSPROXY_PROBE_H
#define TLSPROXY_PROBE_H

#include <uv.h>

struct tp_gen;

/* tp_probe_start - probe gen's routes now and every 5 minutes. */
void tp_probe_start(uv_loop_t *loop, struct tp_gen *gen);
/* tp_probe_stop - no more probes (shutdown). */
void tp_probe_stop(void);

#endif
