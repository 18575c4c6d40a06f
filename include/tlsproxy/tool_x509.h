/*
 * tool_x509.h - what `tlsproxy tls` makes with OpenSSL: new private keys,
 * self-signed certificates, certificate signing requests, DANE TLSA
 * "3 1 1" records, and the dated key-/cert-YYYYMMDD-HHMMSS.pem files
 * they are written to.  No configuration, no messages of its own:
 * failures come back as text in a caller's buffer.  No libuv.
 */
#ifndef TLSPROXY_TOOL_X509_H
#define TLSPROXY_TOOL_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* The most hostnames one certificate or CSR names. */
#define TP_X509_MAX_HOSTS 100

/* A key's algorithm as the tool tells them apart (NONE: no key). */
enum tp_x509_alg { TP_X509_NONE, TP_X509_RSA, TP_X509_EC, TP_X509_OTHER };

/* A key to generate: `tls` options -a and -b. */
struct tp_x509_keyspec {
	enum tp_x509_alg alg; /* TP_X509_RSA or TP_X509_EC */
	int bits;             /* RSA */
	const char *curve;    /* EC: OpenSSL's name */
};

/* tp_x509_key_alg - the algorithm of KEY. */
enum tp_x509_alg tp_x509_key_alg(const EVP_PKEY *key);

/* tp_x509_key_desc - "RSA 2048-bit", "ECDSA prime256v1", ... in BUF. */
void tp_x509_key_desc(const EVP_PKEY *key, char *buf, size_t len);

/*
 * tp_x509_genkey - a new private key as KS says, or NULL with the OpenSSL
 * error in why (the error queue is cleared).
 */
EVP_PKEY *tp_x509_genkey(
    const struct tp_x509_keyspec *ks, char *why, size_t whylen);

/*
 * tp_x509_make_cert - a self-signed certificate for KEY: CN hosts[0], a
 * DNS subjectAltName for each host, valid for 100 years.  HOSTS are 1 to
 * TP_X509_MAX_HOSTS DNS names (no ',' nor ':').  NULL with why filled.
 */
X509 *tp_x509_make_cert(
    EVP_PKEY *key, const char **hosts, int nhosts, char *why, size_t whylen);

/*
 * tp_x509_make_csr - a certificate signing request for KEY and HOSTS (as
 * for tp_x509_make_cert()).  NULL with why filled.
 */
X509_REQ *tp_x509_make_csr(
    EVP_PKEY *key, const char **hosts, int nhosts, char *why, size_t whylen);

/*
 * tp_x509_put_tlsa - "INDENT_PORT._tcp.HOST. IN TLSA 3 1 1 HEX" on F: the
 * SHA-256 of KEY's DER SubjectPublicKeyInfo (RFC 7671 section 5.1).
 * Returns 0, or -1 when the key cannot be encoded.
 */
int tp_x509_put_tlsa(FILE *f, const char *indent, const char *host,
    unsigned port, EVP_PKEY *key);

/*
 * tp_x509_read_key - the private key in PATH, else the public key of the
 * first certificate in it (same SPKI, for TLSA records), else NULL.
 */
EVP_PKEY *tp_x509_read_key(const char *path);

/* New dated key and/or certificate files in one directory. */
struct tp_x509_files {
	char *kname, *cname; /* bare names, relative to the directory */
	char *kpath, *cpath; /* with the directory */
	int kfd, cfd;        /* open until written; -1 otherwise */
};

/*
 * tp_x509_create_files - in DIR, create KPREFIX-STAMP.pem (mode 0600) if
 * KPREFIX is not NULL and CPREFIX-STAMP.pem (0644) if CPREFIX is not NULL,
 * with O_EXCL, one UTC stamp YYYYMMDD-HHMMSS for both; when a name is
 * taken the stamp moves on by a second.  Returns 0, or -1 with why filled
 * and nothing left behind.
 */
int tp_x509_create_files(const char *dir, const char *kprefix,
    const char *cprefix, struct tp_x509_files *nf, char *why, size_t whylen);

/*
 * tp_x509_write_files - KEY into the key file and X into the certificate
 * file, those of NF that are open, synced and closed.  Returns 0, or -1
 * with why filled and NF freed with its files removed.
 */
int tp_x509_write_files(
    struct tp_x509_files *nf, EVP_PKEY *key, X509 *x, char *why, size_t whylen);

/*
 * tp_x509_files_free - close and free NF; UNLINK_THEM removes the files.
 * NF is left empty (fds -1), so freeing twice is harmless.
 */
void tp_x509_files_free(struct tp_x509_files *nf, bool unlink_them);

#endif
