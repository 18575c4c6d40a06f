/*
 * tool_x509.c - the keys, certificates, CSRs, TLSA records and files that
 * `tlsproxy tls` (tool_tls*.c) makes.
 *
 * Keys are RSA (2048, 3072, 4096 bits) or ECDSA (prime256v1, secp384r1,
 * secp521r1), as tool_tls_args.c parses -a and -b.  Certificates are
 * self-signed, X.509v3, with a random positive 128-bit serial, CN the
 * first hostname, a DNS subjectAltName per hostname, extended key usage
 * serverAuth and clientAuth, CA:FALSE and a subject key id, valid for 100
 * years as Postfix's `postfix tls` makes them.  CSRs carry the same
 * subject, subjectAltName and extended key usage.  TLSA records are
 * "3 1 1" (DANE-EE, SPKI, SHA-256: RFC 7671 section 5.1), so they stay
 * valid across certificates for one key.
 *
 * Files go into the configuration directory named key-/cert-YYYYMMDD-
 * HHMMSS.pem (UTC; eckey-/eccert- for ECDSA, the caller's prefixes), are
 * created with O_CREAT|O_EXCL|O_NOFOLLOW, keys with mode 0600 from the
 * start (never chmod-ed later), certificates 0644; a stamp already taken
 * moves on by a second.  A file that cannot be written completely is
 * removed.
 *
 * Runs on the main thread of the short-lived `tls` process; no event
 * loop.  Prints nothing but TLSA records: failures come back as text in
 * the caller's why buffer, and tool_tls*.c word the messages.
 */
#include "tlsproxy/tool_x509.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tlsproxy/tls_keys.h"

#define CERT_DAYS 36525 /* 100 years, as postfix tls */

/* openssl_err - the last OpenSSL error as text in BUF (queue cleared). */
static const char *
openssl_err(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* ----------------------------------------------------------- keys */

enum tp_x509_alg
tp_x509_key_alg(const EVP_PKEY *key)
{
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		return TP_X509_RSA;
	case EVP_PKEY_EC:
		return TP_X509_EC;
	default:
		return TP_X509_OTHER;
	}
}

void
tp_x509_key_desc(const EVP_PKEY *key, char *buf, size_t len)
{
	char group[80] = "";

	switch (tp_x509_key_alg(key)) {
	case TP_X509_RSA:
		snprintf(buf, len, "RSA %d-bit", EVP_PKEY_get_bits(key));
		break;
	case TP_X509_EC:
		if (!EVP_PKEY_get_utf8_string_param(key,
			OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL))
			snprintf(group, sizeof(group), "%d-bit",
			    EVP_PKEY_get_bits(key));
		snprintf(buf, len, "ECDSA %s", group);
		break;
	default:
		snprintf(buf, len, "%s", EVP_PKEY_get0_type_name(key));
		break;
	}
}

EVP_PKEY *
tp_x509_genkey(const struct tp_x509_keyspec *ks, char *why, size_t whylen)
{
	EVP_PKEY *key;

	if (ks->alg == TP_X509_RSA)
		key = EVP_RSA_gen((unsigned)ks->bits);
	else
		key = EVP_EC_gen(ks->curve);
	if (key == NULL)
		openssl_err(why, whylen);
	return key;
}

EVP_PKEY *
tp_x509_read_key(const char *path)
{
	char why[300];
	EVP_PKEY *key;
	X509 *x = NULL;
	FILE *f;

	if ((key = tp_keys_load_key(path, why, sizeof(why))) == NULL &&
	    (f = fopen(path, "r")) != NULL) {
		/* A certificate file serves as well: same public key. */
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		ERR_clear_error();
		if (x != NULL && (key = X509_get_pubkey(x)) == NULL)
			ERR_clear_error();
	}
	X509_free(x);
	return key;
}

/* sign_md - the digest to sign with KEY (NULL for EdDSA). */
static const EVP_MD *
sign_md(const EVP_PKEY *key)
{
	int bits = EVP_PKEY_get_bits(key);

	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_EC:
		return bits > 384 ? EVP_sha512()
		    : bits > 256  ? EVP_sha384()
				  : EVP_sha256();
	case EVP_PKEY_ED25519:
	case EVP_PKEY_ED448:
		return NULL;
	default:
		return EVP_sha256();
	}
}

/* ----------------------------------------------------------- TLSA */

/*
 * spki_sha256 - the TLSA 3 1 1 data: SHA-256 of the DER
 * SubjectPublicKeyInfo, in lower-case hex.  0 or -1.
 */
static int
spki_sha256(EVP_PKEY *key, char hex[65])
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int n = i2d_PUBKEY(key, &der);

	if (n <= 0)
		return -1;
	if (!EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != 32) {
		OPENSSL_free(der);
		return -1;
	}
	OPENSSL_free(der);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int
tp_x509_put_tlsa(
    FILE *f, const char *indent, const char *host, unsigned port, EVP_PKEY *key)
{
	char hex[65];
	size_t n = strlen(host);

	if (spki_sha256(key, hex) < 0)
		return -1;
	fprintf(f, "%s_%u._tcp.%s%s IN TLSA 3 1 1 %s\n", indent, port, host,
	    n > 0 && host[n - 1] == '.' ? "" : ".", hex);
	return 0;
}

/* --------------------------------------------- certificates and CSRs */

/* add_ext - one X.509v3 extension from its OpenSSL config text. */
static int
add_ext(STACK_OF(X509_EXTENSION) * exts, X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	if (!sk_X509_EXTENSION_push(exts, ext)) {
		X509_EXTENSION_free(ext);
		return -1;
	}
	return 0;
}

/*
 * make_exts - subjectAltName DNS for each host, extended key usage, and
 * (for a certificate, X) basic constraints, key usage and key id.
 */
static STACK_OF(X509_EXTENSION) *
    make_exts(X509 *x, const EVP_PKEY *key, const char **hosts, int nhosts)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	char san[TP_X509_MAX_HOSTS * 260 + 1];
	size_t o = 0;

	if (exts == NULL)
		return NULL;
	/* Hostnames are DNS names (tool_tls_args.c checks): no ',' nor ':', at
	 * most 253 octets, so each "DNS:name," fits in 260. */
	for (int i = 0; i < nhosts; i++)
		o += (size_t)snprintf(san + o, sizeof(san) - o, "%sDNS:%s",
		    i ? "," : "", hosts[i]);
	if (add_ext(exts, x, NID_subject_alt_name, san) < 0 ||
	    add_ext(exts, x, NID_ext_key_usage, "serverAuth,clientAuth") < 0)
		goto fail;
	if (x != NULL &&
	    (add_ext(exts, x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
		add_ext(exts, x, NID_key_usage,
		    tp_x509_key_alg(key) == TP_X509_RSA
			? "critical,digitalSignature,keyEncipherment"
			: "critical,digitalSignature") < 0 ||
		add_ext(exts, x, NID_subject_key_identifier, "hash") < 0))
		goto fail;
	return exts;
fail:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return NULL;
}

/* hosts_ok - the host count the API promises to handle. */
static bool
hosts_ok(int nhosts, char *why, size_t whylen)
{
	if (nhosts >= 1 && nhosts <= TP_X509_MAX_HOSTS)
		return true;
	snprintf(
	    why, whylen, "%d hostnames (1 to %d)", nhosts, TP_X509_MAX_HOSTS);
	return false;
}

X509 *
tp_x509_make_cert(
    EVP_PKEY *key, const char **hosts, int nhosts, char *why, size_t whylen)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	unsigned char rnd[16];
	BIGNUM *bn = NULL;
	X509 *x;
	X509_NAME *name;

	if (!hosts_ok(nhosts, why, whylen))
		return NULL;
	if ((x = X509_new()) == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto fail;
	rnd[0] &= 0x7f; /* a positive serial number */
	rnd[0] |= 0x01;
	if ((bn = BN_bin2bn(rnd, sizeof(rnd), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto fail;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) ==
		NULL ||
	    !X509_set_pubkey(x, key))
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		(const unsigned char *)hosts[0], -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto fail;
	if ((exts = make_exts(x, key, hosts, nhosts)) == NULL)
		goto fail;
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
		if (!X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1))
			goto fail;
	if (X509_sign(x, key, sign_md(key)) <= 0)
		goto fail;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	BN_free(bn);
	return x;
fail:
	openssl_err(why, whylen);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	BN_free(bn);
	X509_free(x);
	return NULL;
}

X509_REQ *
tp_x509_make_csr(
    EVP_PKEY *key, const char **hosts, int nhosts, char *why, size_t whylen)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_REQ *req;
	X509_NAME *name;

	if (!hosts_ok(nhosts, why, whylen))
		return NULL;
	if ((req = X509_REQ_new()) == NULL || !X509_REQ_set_version(req, 0) ||
	    !X509_REQ_set_pubkey(req, key))
		goto fail;
	name = X509_REQ_get_subject_name(req);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		(const unsigned char *)hosts[0], -1, -1, 0))
		goto fail;
	if ((exts = make_exts(NULL, key, hosts, nhosts)) == NULL ||
	    !X509_REQ_add_extensions(req, exts))
		goto fail;
	if (X509_REQ_sign(req, key, sign_md(key)) <= 0)
		goto fail;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return req;
fail:
	openssl_err(why, whylen);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return NULL;
}

/* ------------------------------------------------------------- files */

void
tp_x509_files_free(struct tp_x509_files *nf, bool unlink_them)
{
	if (nf->kfd >= 0)
		close(nf->kfd);
	if (nf->cfd >= 0)
		close(nf->cfd);
	if (unlink_them && nf->kpath != NULL)
		unlink(nf->kpath);
	if (unlink_them && nf->cpath != NULL)
		unlink(nf->cpath);
	free(nf->kname);
	free(nf->cname);
	free(nf->kpath);
	free(nf->cpath);
	memset(nf, 0, sizeof(*nf));
	nf->kfd = nf->cfd = -1;
}

/* open_new - create DIR/PREFIX-STAMP.pem, never following or reusing a
 * name.  The fd, or -1 with errno set and *name, *path NULL. */
static int
open_new(const char *dir, const char *prefix, const char *stamp, mode_t mode,
    char **name, char **path)
{
	int fd;

	if (asprintf(name, "%s-%s.pem", prefix, stamp) < 0) {
		*name = NULL;
		return -1;
	}
	/* As tool_tls_route.c resolves a relative name: "." adds nothing. */
	if (strcmp(dir, ".") == 0)
		*path = strdup(*name);
	else if (asprintf(path, "%s/%s", dir, *name) < 0)
		*path = NULL;
	if (*path == NULL)
		return -1;
	fd = open(
	    *path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		int e = errno;

		free(*name);
		free(*path);
		*name = *path = NULL;
		errno = e;
	}
	return fd;
}

int
tp_x509_create_files(const char *dir, const char *kprefix, const char *cprefix,
    struct tp_x509_files *nf, char *why, size_t whylen)
{
	time_t now = time(NULL);
	char stamp[32];
	struct tm tm;

	memset(nf, 0, sizeof(*nf));
	nf->kfd = nf->cfd = -1;
	for (int i = 0; i < 100; i++) {
		time_t when = now + i;

		if (gmtime_r(&when, &tm) == NULL ||
		    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm) == 0) {
			snprintf(why, whylen, "cannot format the time");
			return -1;
		}
		if (kprefix != NULL &&
		    (nf->kfd = open_new(dir, kprefix, stamp, 0600, &nf->kname,
			 &nf->kpath)) < 0) {
			if (errno == EEXIST)
				continue;
			snprintf(why, whylen, "cannot create %s/%s-%s.pem: %s",
			    dir, kprefix, stamp, strerror(errno));
			return -1;
		}
		if (cprefix != NULL &&
		    (nf->cfd = open_new(dir, cprefix, stamp, 0644, &nf->cname,
			 &nf->cpath)) < 0) {
			int e = errno;

			tp_x509_files_free(nf, true);
			if (e == EEXIST)
				continue;
			snprintf(why, whylen, "cannot create %s/%s-%s.pem: %s",
			    dir, cprefix, stamp, strerror(e));
			return -1;
		}
		return 0;
	}
	snprintf(why, whylen, "cannot find a free file name in %s", dir);
	return -1;
}

/* write_pem - KEY or X into FD (closed).  0 or -1. */
static int
write_pem(int fd, EVP_PKEY *key, X509 *x)
{
	FILE *f = fdopen(fd, "w");
	int ok;

	if (f == NULL) {
		close(fd);
		return -1;
	}
	ok = key != NULL
	    ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
	    : PEM_write_X509(f, x);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

int
tp_x509_write_files(
    struct tp_x509_files *nf, EVP_PKEY *key, X509 *x, char *why, size_t whylen)
{
	char err[200];
	int fd;

	if (nf->kfd >= 0) {
		fd = nf->kfd;
		nf->kfd = -1;
		if (write_pem(fd, key, NULL) < 0)
			goto fail;
	}
	if (nf->cfd >= 0) {
		fd = nf->cfd;
		nf->cfd = -1;
		if (write_pem(fd, NULL, x) < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(why, whylen, "cannot write %s: %s",
	    nf->kpath ? nf->kpath : nf->cpath,
	    ERR_peek_last_error() ? openssl_err(err, sizeof(err))
				  : strerror(errno));
	tp_x509_files_free(nf, true);
	return -1;
}
