/*
 * tls_keys.h - certificate chains and private keys from PEM files:
 * permission checks (like OpenSSH: not group/world-writable, not
 * world-readable), key/certificate match and leaf-first order.
 */
#ifndef TLSPROXY_TLS_KEYS_H
#define TLSPROXY_TLS_KEYS_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * tp_keys_check_mode - 0 if the key file's mode is safe, else -1 with a
 * message like "mode 0644 is readable by others" in why.
 */
int tp_keys_check_mode(const char *path, char *why, size_t len);
/*
 * tp_keys_load_chain - read a PEM chain, leaf first.  Returns the chain
 * (leaf at index 0) or NULL with why filled.
 */
STACK_OF(X509) * tp_keys_load_chain(const char *path, char *why, size_t len);
/* tp_keys_load_key - read a PEM private key, or NULL with why filled. */
EVP_PKEY *tp_keys_load_key(const char *path, char *why, size_t len);
/* tp_keys_selfsigned - a fresh P-256 key and a self-signed certificate. */
int tp_keys_selfsigned(const char *cn, X509 **cert, EVP_PKEY **key);

#endif
