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
/*
 * The TLS settings a context is built with: a route's, or a gateway's
 * policy_file entry's (protocols, ciphers, exclude), and where they were
 * set, for messages.
 */
struct tp_tls_params {
	int proto_min, proto_max; /* wire versions */
	int grade;                /* enum tp_grade */
	const char *exclude;      /* cipher names to remove; NULL: none */
	const char *protocols;    /* as written, for messages */
	const char *file;         /* NULL: the INI file, else policy_file */
	const char *prefix;       /* "" or "KEY: " before messages */
	int proto_line, cipher_line;
};

/* tp_tls_params_route - route r's own settings. */
void tp_tls_params_route(const struct tp_cfg_route *r, struct tp_tls_params *p);
/*
 * tp_tls_ctx_client - a client context with p's settings and route r's
 * client certificate (cert_file, key_file), for a gateway's default and
 * per-destination policies; NULL after reporting every problem.
 */
SSL_CTX *tp_tls_ctx_client(struct tp_config *cfg, const struct tp_cfg_route *r,
    const struct tp_tls_params *p);
/* tp_tls_init - once at start: OpenSSL strings, ex_data index. */
void tp_tls_init(void);

#endif
