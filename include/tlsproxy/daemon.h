/*
 * daemon.h - the process: load, bind, start workers, signals, reload,
 * graceful shutdown.  Main thread only.
 */
#ifndef TLSPROXY_DAEMON_H
#define TLSPROXY_DAEMON_H

/* tp_daemon_check - -t: load everything, print diagnostics; exit code. */
int tp_daemon_check(const char *path);
/* tp_daemon_run - run until SIGTERM/SIGINT; exit code. */
int tp_daemon_run(const char *path);

#endif
