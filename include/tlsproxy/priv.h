/*
 * priv.h - privilege drop after the listeners are bound and the keys
 * read (Postfix's pre-jail init): setgroups, setresgid, setresuid.
 * Main thread, before any worker starts.
 */
#ifndef TLSPROXY_PRIV_H
#define TLSPROXY_PRIV_H

struct tp_config;

/* tp_priv_drop - become cfg's user/group; 0, or -1 (logged). */
int tp_priv_drop(const struct tp_config *cfg);

#endif
