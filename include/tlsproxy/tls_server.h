/*
 * tls_server.h - server-role extras on a route's SSL_CTX: SNI chains,
 * client certificates, shared session-ticket keys.  Main thread.
 */
#ifndef TLSPROXY_TLS_SERVER_H
#define TLSPROXY_TLS_SERVER_H

#include <openssl/ssl.h>

struct tp_config;
struct tp_cfg_route;

/*
 * A context like the route's own but serving CERT/KEY (for an `sni`
 * entry whose line is line); NULL after reporting a problem.
 */
typedef SSL_CTX *(*tp_tls_ctx_factory)(struct tp_config *cfg,
    const struct tp_cfg_route *r, int line, const char *cert, const char *key);

/* tp_tls_server_setup - 0, or -1 after tp_config_diag. */
int tp_tls_server_setup(struct tp_config *cfg, const struct tp_cfg_route *r,
    SSL_CTX *ctx, tp_tls_ctx_factory make);

#endif
