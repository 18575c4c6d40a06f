/*
 * test_tls_keys.c - PEM chains and keys (tls_keys.h): key-file modes,
 * leaf-first chains, key loading.  Keys and certificates are made at test
 * time and written to a mkdtemp() directory that the teardown removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tlsproxy/tls_keys.h"

static struct {
	char dir[64];
	EVP_PKEY *root_key, *int_key, *leaf_key, *rsa_key, *other_key;
	X509 *root, *inter, *leaf, *other;
} fx;

/* ---- fixtures ---- */

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* make_cert - CN signed by issuer (issuer == NULL: self-signed). */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, bool ca,
    long serial)
{
	X509 *x = X509_new();
	X509_NAME *name;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(
	    name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	assert_int_equal(X509_set_issuer_name(
			     x, issuer ? X509_get_subject_name(issuer) : name),
	    1);
	add_ext(x, issuer ? issuer : x, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca)
		add_ext(x, issuer ? issuer : x, NID_key_usage,
		    "critical,keyCertSign,cRLSign");
	add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
	add_ext(x, issuer ? issuer : x, NID_authority_key_identifier,
	    "keyid:always");
	assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static int
group_setup(void **state)
{
	(void)state;
	strcpy(fx.dir, "/tmp/tp_test_keys.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	fx.root_key = EVP_EC_gen("P-256");
	fx.int_key = EVP_EC_gen("P-256");
	fx.leaf_key = EVP_EC_gen("P-256");
	fx.rsa_key = EVP_RSA_gen(2048);
	if (!fx.root_key || !fx.int_key || !fx.leaf_key || !fx.rsa_key)
		return -1;
	fx.root = make_cert("Test Root", fx.root_key, NULL, NULL, true, 1);
	fx.inter = make_cert(
	    "Test Intermediate", fx.int_key, fx.root, fx.root_key, true, 2);
	fx.leaf = make_cert(
	    "mx.example.test", fx.leaf_key, fx.inter, fx.int_key, false, 3);
	if (tp_keys_selfsigned(
		"other.example.test", &fx.other, &fx.other_key) != 0)
		return -1;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
group_teardown(void **state)
{
	(void)state;
	X509_free(fx.root);
	X509_free(fx.inter);
	X509_free(fx.leaf);
	X509_free(fx.other);
	EVP_PKEY_free(fx.root_key);
	EVP_PKEY_free(fx.int_key);
	EVP_PKEY_free(fx.leaf_key);
	EVP_PKEY_free(fx.rsa_key);
	EVP_PKEY_free(fx.other_key);
	if (fx.dir[0] != '\0')
		nftw(fx.dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* path_of - NAME inside the temp dir (static buffer, one at a time). */
static const char *
path_of(const char *name)
{
	static char p[2][128];
	static int i;

	i ^= 1;
	snprintf(p[i], sizeof(p[i]), "%s/%s", fx.dir, name);
	return p[i];
}

/*
 * write_pem - NAME with MODE, holding in order the certificates and keys
 * given as a NULL-terminated list of 'c'/'k' tagged pointers.
 */
static const char *
write_pem(const char *name, mode_t mode, const char *what, ...)
{
	const char *path = path_of(name);
	va_list ap;
	FILE *f;
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	va_start(ap, what);
	for (const char *w = what; *w; w++) {
		if (*w == 'c') {
			X509 *x = va_arg(ap, X509 *);

			assert_int_equal(PEM_write_X509(f, x), 1);
		} else if (*w == 'k') {
			EVP_PKEY *k = va_arg(ap, EVP_PKEY *);

			assert_int_equal(PEM_write_PrivateKey(
					     f, k, NULL, NULL, 0, NULL, NULL),
			    1);
		} else {
			const char *text = va_arg(ap, const char *);

			fputs(text, f);
		}
	}
	va_end(ap);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* ---- tp_keys_check_mode ---- */

static void
expect_mode(mode_t mode, int rc, const char *msg1, const char *msg2)
{
	char why[256] = "";
	const char *path;
	char name[32];

	snprintf(name, sizeof(name), "mode-%04o.pem", (unsigned)mode);
	path = write_pem(name, mode, "k", fx.leaf_key);
	if (tp_keys_check_mode(path, why, sizeof(why)) != rc)
		fail_msg("mode %04o: rc != %d (%s)", (unsigned)mode, rc, why);
	if (msg1 && strstr(why, msg1) == NULL)
		fail_msg("mode %04o: \"%s\" lacks \"%s\"", (unsigned)mode, why,
		    msg1);
	if (msg2 && strstr(why, msg2) == NULL)
		fail_msg("mode %04o: \"%s\" lacks \"%s\"", (unsigned)mode, why,
		    msg2);
	unlink(path);
}

static void
test_mode_safe(void **state)
{
	(void)state;
	expect_mode(0600, 0, NULL, NULL);
	expect_mode(0400, 0, NULL, NULL);
	expect_mode(0640, 0, NULL, NULL);
	expect_mode(0440, 0, NULL, NULL);
	expect_mode(0700, 0, NULL, NULL);
	expect_mode(0000, 0, NULL, NULL);
}

static void
test_mode_world_readable(void **state)
{
	char why[256];
	const char *path;

	(void)state;
	expect_mode(0644, -1, "0644", "readable by others");
	expect_mode(0604, -1, "0604", "readable by others");
	expect_mode(0444, -1, "0444", "readable by others");
	/* the exact wording -t prints after "key_file PATH: " */
	path = write_pem("m644.pem", 0644, "k", fx.leaf_key);
	assert_int_equal(tp_keys_check_mode(path, why, sizeof(why)), -1);
	assert_string_equal(why, "mode 0644 is readable by others");
}

static void
test_mode_writable(void **state)
{
	(void)state;
	expect_mode(0660, -1, "0660", "writable");
	expect_mode(0620, -1, "0620", "writable by the group");
	expect_mode(0662, -1, "0662", "writable by others");
	expect_mode(0602, -1, "0602", "writable by others");
	expect_mode(0666, -1, "0666", "writable");
	expect_mode(0777, -1, "0777", "writable");
}

static void
test_mode_missing(void **state)
{
	char why[256] = "";

	(void)state;
	assert_int_equal(
	    tp_keys_check_mode(path_of("no-such-file.pem"), why, sizeof(why)),
	    -1);
	assert_string_equal(why, strerror(ENOENT));
}

static void
test_mode_small_why(void **state)
{
	char why[8];
	const char *path;

	(void)state;
	path = write_pem("small.pem", 0644, "k", fx.leaf_key);
	memset(why, 'X', sizeof(why));
	assert_int_equal(tp_keys_check_mode(path, why, sizeof(why)), -1);
	assert_non_null(memchr(why, '\0', sizeof(why)));
}

/* ---- tp_keys_load_chain ---- */

static void
test_chain_leaf_first(void **state)
{
	char why[256] = "";
	const char *path;
	STACK_OF(X509) * chain;

	(void)state;
	path = write_pem("chain3.pem", 0644, "ccc", fx.leaf, fx.inter, fx.root);
	chain = tp_keys_load_chain(path, why, sizeof(why));
	if (chain == NULL)
		fail_msg("chain refused: %s", why);
	assert_int_equal(sk_X509_num(chain), 3);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), fx.leaf), 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), fx.inter), 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 2), fx.root), 0);
	sk_X509_pop_free(chain, X509_free);

	path = write_pem("chain2.pem", 0644, "cc", fx.leaf, fx.inter);
	chain = tp_keys_load_chain(path, why, sizeof(why));
	assert_non_null(chain);
	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), fx.leaf), 0);
	sk_X509_pop_free(chain, X509_free);
}

static void
test_chain_single(void **state)
{
	char why[256] = "";
	const char *path;
	STACK_OF(X509) * chain;

	(void)state;
	path = write_pem("single.pem", 0644, "c", fx.other);
	chain = tp_keys_load_chain(path, why, sizeof(why));
	assert_non_null(chain);
	assert_int_equal(sk_X509_num(chain), 1);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), fx.other), 0);
	sk_X509_pop_free(chain, X509_free);
}

static void
test_chain_with_key(void **state)
{
	char why[256] = "";
	const char *path;
	STACK_OF(X509) * chain;

	(void)state;
	/* key_file defaults to cert_file: a PEM with both must load */
	path =
	    write_pem("both1.pem", 0600, "kcc", fx.leaf_key, fx.leaf, fx.inter);
	chain = tp_keys_load_chain(path, why, sizeof(why));
	if (chain == NULL)
		fail_msg("key + chain refused: %s", why);
	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), fx.leaf), 0);
	sk_X509_pop_free(chain, X509_free);

	path =
	    write_pem("both2.pem", 0600, "cck", fx.leaf, fx.inter, fx.leaf_key);
	chain = tp_keys_load_chain(path, why, sizeof(why));
	assert_non_null(chain);
	assert_int_equal(sk_X509_num(chain), 2);
	sk_X509_pop_free(chain, X509_free);
}

static void
test_chain_reversed(void **state)
{
	char why[256] = "";
	const char *path;

	(void)state;
	path = write_pem("rev2.pem", 0644, "cc", fx.inter, fx.leaf);
	assert_null(tp_keys_load_chain(path, why, sizeof(why)));
	assert_non_null(strstr(why, "leaf first"));

	why[0] = '\0';
	path = write_pem("rev3.pem", 0644, "ccc", fx.root, fx.inter, fx.leaf);
	assert_null(tp_keys_load_chain(path, why, sizeof(why)));
	assert_non_null(strstr(why, "leaf first"));

	/* right start, wrong middle: root before the intermediate */
	why[0] = '\0';
	path = write_pem("mixed.pem", 0644, "ccc", fx.leaf, fx.root, fx.inter);
	assert_null(tp_keys_load_chain(path, why, sizeof(why)));
	assert_non_null(strstr(why, "leaf first"));
	assert_non_null(strstr(why,
	    "certificate 1 is not issued by "
	    "certificate 2"));
}

static void
test_chain_unrelated(void **state)
{
	char why[256] = "";
	const char *path;

	(void)state;
	path = write_pem("unrel.pem", 0644, "cc", fx.leaf, fx.other);
	assert_null(tp_keys_load_chain(path, why, sizeof(why)));
	assert_non_null(strstr(why, "leaf first"));
	/* leaf then root, skipping the intermediate */
	why[0] = '\0';
	path = write_pem("skip.pem", 0644, "cc", fx.leaf, fx.root);
	assert_null(tp_keys_load_chain(path, why, sizeof(why)));
	assert_non_null(strstr(why, "not issued by"));
}

static void
test_chain_no_pem(void **state)
{
	char why[256] = "";
	const char *path;

	(void)state;
	path = write_pem("empty.pem", 0644, "");
	assert_null(tp_keys_load_chain(path, why, sizeof(why)));
	assert_non_null(strstr(why, "no PEM certificate"));

	why[0] = '\0';
	path = write_pem("text.pem", 0644, "t", "this is not a certificate\n");
	assert_null(tp_keys_load_chain(path, why, sizeof(why)));
	assert_non_null(strstr(why, "no PEM certificate"));

	why[0] = '\0';
	path = write_pem("keyonly.pem", 0600, "k", fx.leaf_key);
	assert_null(tp_keys_load_chain(path, why, sizeof(why)));
	assert_non_null(strstr(why, "no PEM certificate"));

	why[0] = '\0';
	path = write_pem("broken.pem", 0644, "t",
	    "-----BEGIN CERTIFICATE-----\nAAAA!!!!\n"
	    "-----END CERTIFICATE-----\n");
	assert_null(tp_keys_load_chain(path, why, sizeof(why)));
	assert_true(why[0] != '\0');
	/* the OpenSSL error queue is left clean */
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_chain_missing(void **state)
{
	char why[256] = "";

	(void)state;
	assert_null(tp_keys_load_chain(path_of("nope.pem"), why, sizeof(why)));
	assert_string_equal(why, strerror(ENOENT));
}

/* ---- tp_keys_load_key ---- */

static void
test_key_ec(void **state)
{
	char why[256] = "";
	const char *path;
	EVP_PKEY *k;

	(void)state;
	path = write_pem("leaf.key", 0600, "k", fx.leaf_key);
	k = tp_keys_load_key(path, why, sizeof(why));
	if (k == NULL)
		fail_msg("key refused: %s", why);
	assert_int_equal(EVP_PKEY_eq(k, fx.leaf_key), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(fx.leaf), k), 1);
	assert_int_equal(X509_check_private_key(fx.leaf, k), 1);
	assert_int_not_equal(X509_check_private_key(fx.inter, k), 1);
	ERR_clear_error();
	EVP_PKEY_free(k);
}

static void
test_key_rsa(void **state)
{
	char why[256] = "";
	const char *path;
	EVP_PKEY *k;

	(void)state;
	path = write_pem("rsa.key", 0600, "k", fx.rsa_key);
	k = tp_keys_load_key(path, why, sizeof(why));
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_eq(k, fx.rsa_key), 1);
	EVP_PKEY_free(k);
}

static void
test_key_in_cert_file(void **state)
{
	char why[256] = "";
	const char *path;
	EVP_PKEY *k;

	(void)state;
	/* key_file defaults to cert_file: the key after the chain */
	path =
	    write_pem("both3.pem", 0600, "cck", fx.leaf, fx.inter, fx.leaf_key);
	k = tp_keys_load_key(path, why, sizeof(why));
	if (k == NULL)
		fail_msg("key after chain refused: %s", why);
	assert_int_equal(EVP_PKEY_eq(k, fx.leaf_key), 1);
	EVP_PKEY_free(k);
	ERR_clear_error();
}

static void
test_key_errors(void **state)
{
	char why[256] = "";
	const char *path;

	(void)state;
	path = write_pem("certonly.pem", 0600, "c", fx.leaf);
	assert_null(tp_keys_load_key(path, why, sizeof(why)));
	assert_non_null(strstr(why, "no PEM private key"));

	why[0] = '\0';
	path = write_pem("empty.key", 0600, "");
	assert_null(tp_keys_load_key(path, why, sizeof(why)));
	assert_non_null(strstr(why, "no PEM private key"));

	why[0] = '\0';
	path = write_pem("garbage.key", 0600, "t",
	    "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
	    "-----END PRIVATE KEY-----\n");
	assert_null(tp_keys_load_key(path, why, sizeof(why)));
	assert_non_null(strstr(why, "no PEM private key"));
	assert_int_equal(ERR_peek_error(), 0);

	why[0] = '\0';
	assert_null(tp_keys_load_key(path_of("missing.key"), why, sizeof(why)));
	assert_string_equal(why, strerror(ENOENT));
}

/* ---- tp_keys_selfsigned ---- */

static void
test_selfsigned(void **state)
{
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	char cn[64] = "";
	const char *path;
	char why[256] = "";
	STACK_OF(X509) * chain;

	(void)state;
	assert_int_equal(tp_keys_selfsigned("relay.example.test", &x, &k), 0);
	assert_non_null(x);
	assert_non_null(k);
	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_int_equal(X509_verify(x, k), 1);
	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
	X509_NAME_get_text_by_NID(
	    X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, "relay.example.test");
	assert_int_equal(
	    X509_check_host(x, "relay.example.test", 0, 0, NULL), 1);
	assert_int_equal(X509_cmp_current_time(X509_get0_notBefore(x)), -1);
	assert_int_equal(X509_cmp_current_time(X509_get0_notAfter(x)), 1);
	/* and it round-trips through the loaders */
	path = write_pem("self.pem", 0600, "ck", x, k);
	chain = tp_keys_load_chain(path, why, sizeof(why));
	assert_non_null(chain);
	assert_int_equal(sk_X509_num(chain), 1);
	sk_X509_pop_free(chain, X509_free);
	assert_int_equal(tp_keys_check_mode(path, why, sizeof(why)), 0);
	X509_free(x);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mode_safe),
	    cmocka_unit_test(test_mode_world_readable),
	    cmocka_unit_test(test_mode_writable),
	    cmocka_unit_test(test_mode_missing),
	    cmocka_unit_test(test_mode_small_why),
	    cmocka_unit_test(test_chain_leaf_first),
	    cmocka_unit_test(test_chain_single),
	    cmocka_unit_test(test_chain_with_key),
	    cmocka_unit_test(test_chain_reversed),
	    cmocka_unit_test(test_chain_unrelated),
	    cmocka_unit_test(test_chain_no_pem),
	    cmocka_unit_test(test_chain_missing),
	    cmocka_unit_test(test_key_ec),
	    cmocka_unit_test(test_key_rsa),
	    cmocka_unit_test(test_key_in_cert_file),
	    cmocka_unit_test(test_key_errors),
	    cmocka_unit_test(test_selfsigned),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
