/*
 * tls_ctx.h - one SSL_CTX per route from its policy and keys.
 * Built on the main thread at start and on reload; read-only afterwards
 * (OpenSSL's SSL_CTX is safe to share between worker threads for SSL_new).
 */
#ifndef TLSPROXY_TLS_CTX_H
#define TLSPROXY_TLS_CTX_H

#include <openssl/ssl.h>

struct tp_config;
struct tp_cfg_route;

/*
 * tp_tls_ctx_new - the SSL_CTX for route r, or NULL after reporting every
 * problem with tp_config_diag() at the line of the key concerned.
 * Returns NULL without error for a route with security = none.
 */
SSL_CTX *tp_tls_ctx_new(
    struct tp_config *cfg, const struct tp_cfg_route *r, int *failed);
/* tp_tls_init - once at start: OpenSSL strings, ex_data index. */
void tp_tls_init(void);

#endif
