/*
 * tool_tls.h - `tlsproxy [-c FILE] tls SUBCOMMAND ...` (spec 7), after
 * Postfix's `postfix tls`: key and certificate management for routes.
 * Runs in the foreground, no event loop; OpenSSL and the config only.
 * Made of tool_tls*.c; what those files share is tool_tls_int.h.
 */
#ifndef TLSPROXY_TOOL_TLS_H
#define TLSPROXY_TOOL_TLS_H

/*
 * tp_tool_tls - run `tls` with argv[0] = the subcommand; path is the
 * configuration file.  Returns the process exit code.
 */
int tp_tool_tls(const char *path, int argc, char **argv);

#endif
