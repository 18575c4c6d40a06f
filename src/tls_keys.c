/*
 * tls_keys.c - PEM chain and key loading with the checks -t reports:
 * unreadable files, unsafe key permissions, chains not leaf first.
 * OpenSSL only, no libuv; main thread only (start and reload).
 */
#include "tlsproxy/tls_keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static void
openssl_why(char *why, size_t len, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[200];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(why, len, "%s: %s", what, buf);
	} else {
		snprintf(why, len, "%s", what);
	}
	ERR_clear_error();
}

int
tp_keys_check_mode(const char *path, char *why, size_t len)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(why, len, "%s", strerror(errno));
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, len, "mode %04o is writable by %s",
		    (unsigned)(st.st_mode & 07777),
		    st.st_mode & S_IWOTH ? "others" : "the group");
		return -1;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(why, len, "mode %04o is readable by others",
		    (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

STACK_OF(X509) * tp_keys_load_chain(const char *path, char *why, size_t len)
{
	STACK_OF(X509) *chain = NULL;
	X509 *x;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(why, len, "%s", strerror(errno));
		return NULL;
	}
	chain = sk_X509_new_null();
	while (chain && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			break;
		}
	}
	fclose(f);
	/* The end of the file shows up as "no start line"; other errors are
	 * a broken certificate. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE &&
	    ERR_peek_last_error() != 0) {
		openssl_why(why, len, "bad PEM certificate");
		sk_X509_pop_free(chain, X509_free);
		return NULL;
	}
	ERR_clear_error();
	if (chain == NULL || sk_X509_num(chain) == 0) {
		snprintf(why, len, "no PEM certificate found");
		sk_X509_pop_free(chain, X509_free);
		return NULL;
	}
	/* Leaf first: each certificate is issued by the next one. */
	for (int i = 0; i + 1 < sk_X509_num(chain); i++) {
		X509 *cur = sk_X509_value(chain, i);
		X509 *next = sk_X509_value(chain, i + 1);

		if (X509_check_issued(next, cur) != X509_V_OK) {
			snprintf(why, len,
			    "certificate %d is not issued by "
			    "certificate %d: the chain must be leaf first, "
			    "then each issuer",
			    i + 1, i + 2);
			sk_X509_pop_free(chain, X509_free);
			return NULL;
		}
	}
	return chain;
}

EVP_PKEY *
tp_keys_load_key(const char *path, char *why, size_t len)
{
	EVP_PKEY *key;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(why, len, "%s", strerror(errno));
		return NULL;
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL)
		openssl_why(why, len, "no PEM private key found");
	return key;
}

int
tp_keys_selfsigned(const char *cn, X509 **certp, EVP_PKEY **keyp)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	char san[300];

	if (key == NULL || x == NULL)
		goto fail;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(
	    name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	snprintf(san, sizeof(san), "DNS:%s", cn);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (ext != NULL) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, key, EVP_sha256()) == 0)
		goto fail;
	*certp = x;
	*keyp = key;
	return 0;
fail:
	X509_free(x);
	EVP_PKEY_free(key);
	return -1;
}
