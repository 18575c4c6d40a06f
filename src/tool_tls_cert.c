/*
 * tool_tls_cert.c - the `tlsproxy tls` verbs that make and deploy a
 * server's key and certificate: new-server-key, new-server-cert,
 * deploy-server-cert and output-server-csr, with the hints they print
 * (the deploy and CSR commands, DANE key rollover).
 *
 * new-server-cert signs a new certificate for the key the route uses now
 * (the key is not copied).  New files go into the configuration
 * directory (tool_x509.c); on failure they are removed.  Results go to
 * stdout, except with output-server-csr, whose stdout is the CSR.
 *
 * Runs on the main thread of the short-lived `tls` process; no event
 * loop.  Called by tool_tls.c; enable-server (tool_tls_enable.c) shares
 * tp_tool_tls_new_key_and_cert() and tp_tool_tls_put_created().
 */
#include "tlsproxy/tool_tls_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tls_keys.h"
#include "tlsproxy/tool_x509.h"

/* ------------------------------------------------------------- files */

/* create_files - tp_x509_create_files() in the configuration directory
 * (KP, CP: the file name prefixes).  0 or an exit code. */
static int
create_files(const struct tp_tool_tls *t, const char *kp, const char *cp,
    struct tp_x509_files *nf)
{
	char why[PATH_MAX + 300];

	if (tp_x509_create_files(t->dir, kp, cp, nf, why, sizeof(why)) < 0)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL, "%s", why);
	return 0;
}

/* write_new - tp_x509_write_files(): on failure the new files are
 * removed.  0 or an exit code. */
static int
write_new(const struct tp_tool_tls *t, struct tp_x509_files *nf, EVP_PKEY *key,
    X509 *x)
{
	char why[PATH_MAX + 300];

	if (tp_x509_write_files(nf, key, x, why, sizeof(why)) < 0)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL, "%s", why);
	return 0;
}

/* ------------------------------------------------------------ hints */

/* put_cmd - "  tlsproxy -c CONFIG tls VERB" (the caller adds the rest). */
static void
put_cmd(FILE *f, const struct tp_tool_tls *t, const char *verb)
{
	fputs("  tlsproxy -c ", f);
	tp_tool_tls_put_arg(f, t->path);
	fprintf(f, " tls %s", verb);
}

/* put_csr_hint - how to get a CA-signed certificate for KEYNAME. */
static void
put_csr_hint(const struct tp_tool_tls *t, FILE *f, const char *keyname,
    const char **hosts, int nhosts)
{
	fprintf(f,
	    "\nTo have the key certified by a CA instead, make a "
	    "certificate signing request:\n");
	put_cmd(f, t, "output-server-csr -k ");
	tp_tool_tls_put_arg(f, keyname);
	fputs(" -r ", f);
	tp_tool_tls_put_arg(f, t->route->name);
	for (int i = 0; i < nhosts; i++) {
		fputc(' ', f);
		tp_tool_tls_put_arg(f, hosts[i]);
	}
	fputs(" > csr.pem\n", f);
	fprintf(f,
	    "then save the signed chain (the server certificate first, "
	    "then the\nintermediate CA certificates) in the configuration "
	    "directory and deploy\nit with the key as above.\n");
}

/* put_deploy_hint - the deploy-server-cert command for the pair. */
static void
put_deploy_hint(const struct tp_tool_tls *t, FILE *f, const char *what,
    const char *cert, const char *key)
{
	fprintf(
	    f, "\nTo deploy the new %s on route [%s]:\n", what, t->route->name);
	put_cmd(f, t, "deploy-server-cert -r ");
	tp_tool_tls_put_arg(f, t->route->name);
	fputc(' ', f);
	tp_tool_tls_put_arg(f, cert);
	fputc(' ', f);
	tp_tool_tls_put_arg(f, key);
	fputc('\n', f);
}

static const char rollover[] =
    "\nKey rollover: DANE clients check this server's key against the TLSA\n"
    "records in DNS.  Publish the record above next to the current ones\n"
    "BEFORE deploying the new key, wait for the secondary name servers to\n"
    "update and for the old records' TTL to pass in remote DNS caches,\n"
    "then deploy; remove the old record afterwards.  To renew only the\n"
    "certificate, use \"tlsproxy tls new-server-cert\": it keeps the key,\n"
    "so a published \"3 1 1\" record stays valid.\n";

/* ------------------------------------------------------ subcommands */

int
tp_tool_tls_new_key_and_cert(struct tp_tool_tls *t,
    const struct tp_x509_keyspec *ks, const char **hosts, int nhosts,
    EVP_PKEY **keyp, struct tp_x509_files *nf)
{
	char why[300];
	EVP_PKEY *key;
	X509 *x = NULL;
	int rc;

	*keyp = NULL;
	if ((key = tp_x509_genkey(ks, why, sizeof(why))) == NULL)
		return tp_tool_tls_say(
		    t, TP_TOOL_TLS_EX_FAIL, "cannot make a key: %s", why);
	if ((x = tp_x509_make_cert(key, hosts, nhosts, why, sizeof(why))) ==
	    NULL) {
		rc = tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "cannot make a certificate: %s", why);
		goto out;
	}
	if ((rc = create_files(t, ks->alg == TP_X509_EC ? "eckey" : "key",
		 ks->alg == TP_X509_EC ? "eccert" : "cert", nf)) != 0 ||
	    (rc = write_new(t, nf, key, x)) != 0)
		goto out;
	*keyp = key;
	key = NULL;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

void
tp_tool_tls_put_created(EVP_PKEY *key, const struct tp_x509_files *nf,
    const char **hosts, int nhosts)
{
	char desc[100];

	tp_x509_key_desc(key, desc, sizeof(desc));
	printf("New %s private key: %s (mode 0600)\n", desc, nf->kpath);
	printf("New self-signed certificate for %s, valid for 100 years: %s\n",
	    hosts[0], nf->cpath);
	printf("\nDANE TLSA record%s for the new key (publish before "
	       "deploying, see below):\n",
	    nhosts > 1 ? "s" : "");
	for (int i = 0; i < nhosts; i++)
		tp_x509_put_tlsa(stdout, "  ", hosts[i], 25, key);
}

int
tp_tool_tls_new_server_key(struct tp_tool_tls *t, int argc, char **argv)
{
	const char *hosts[TP_X509_MAX_HOSTS];
	char hbuf[256];
	struct tp_x509_files nf;
	struct tp_x509_keyspec ks;
	struct tp_tool_tls_opts o;
	EVP_PKEY *key = NULL;
	int nhosts, rc;

	if ((rc = tp_tool_tls_get_opts(t, argc, argv, "a:b:r:", &o)) != 0 ||
	    (rc = tp_tool_tls_parse_keyspec(t, o.a, o.b, &ks)) != 0 ||
	    (rc = tp_tool_tls_pick_route(t, TP_TOOL_TLS_SERVER, false)) != 0 ||
	    (rc = tp_tool_tls_get_hosts(
		 t, o.argc, o.argv, hosts, &nhosts, hbuf, sizeof(hbuf))) != 0)
		return rc;
	if ((rc = tp_tool_tls_new_key_and_cert(
		 t, &ks, hosts, nhosts, &key, &nf)) != 0)
		return rc;
	tp_tool_tls_put_created(key, &nf, hosts, nhosts);
	put_deploy_hint(t, stdout, "key and certificate", nf.cname, nf.kname);
	put_csr_hint(t, stdout, nf.kname, hosts, nhosts);
	fputs(rollover, stdout);
	printf("\nFile names are relative to the configuration directory %s, "
	       "as in the INI file.\n",
	    t->dir);
	EVP_PKEY_free(key);
	tp_x509_files_free(&nf, false);
	return TP_TOOL_TLS_EX_OK;
}

int
tp_tool_tls_new_server_cert(struct tp_tool_tls *t, int argc, char **argv)
{
	const char *hosts[TP_X509_MAX_HOSTS];
	const struct tp_cval *kv;
	enum tp_x509_alg want = TP_X509_NONE;
	char hbuf[256], desc[100], why[300];
	struct tp_x509_files nf;
	struct tp_tool_tls_opts o;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int nhosts, rc;

	if ((rc = tp_tool_tls_get_opts(t, argc, argv, "a:r:", &o)) != 0)
		return rc;
	if (o.a != NULL && tp_tool_tls_parse_alg(o.a, &want) < 0)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
		    "bad algorithm \"%s\": use rsa or "
		    "ecdsa",
		    o.a);
	if ((rc = tp_tool_tls_pick_route(t, TP_TOOL_TLS_SERVER, false)) != 0 ||
	    (rc = tp_tool_tls_get_hosts(
		 t, o.argc, o.argv, hosts, &nhosts, hbuf, sizeof(hbuf))) != 0 ||
	    (rc = tp_tool_tls_route_key(t, want, &key, &kv)) != 0)
		return rc;
	if ((x = tp_x509_make_cert(key, hosts, nhosts, why, sizeof(why))) ==
	    NULL) {
		rc = tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "cannot make a certificate: %s", why);
		goto out;
	}
	if ((rc = create_files(t, NULL,
		 tp_x509_key_alg(key) == TP_X509_EC ? "eccert" : "cert",
		 &nf)) != 0 ||
	    (rc = write_new(t, &nf, NULL, x)) != 0)
		goto out;
	tp_x509_key_desc(key, desc, sizeof(desc));
	printf("New self-signed certificate for %s, valid for 100 years: %s\n"
	       "for the current %s key of route [%s]: %s\n",
	    hosts[0], nf.cpath, desc, t->route->name, kv->s);
	printf("\nThe key is unchanged, so its DANE TLSA \"3 1 1\" "
	       "record%s stay%s valid:\n",
	    nhosts > 1 ? "s" : "", nhosts > 1 ? "" : "s");
	for (int i = 0; i < nhosts; i++)
		tp_x509_put_tlsa(stdout, "  ", hosts[i], 25, key);
	put_deploy_hint(t, stdout, "certificate", nf.cname, kv->raw);
	put_csr_hint(t, stdout, kv->raw, hosts, nhosts);
	printf("\nFile names are relative to the configuration directory %s, "
	       "as in the INI file.\n",
	    t->dir);
	tp_x509_files_free(&nf, false);
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int
tp_tool_tls_deploy_server_cert(struct tp_tool_tls *t, int argc, char **argv)
{
	struct tp_tool_tls_slot s;
	struct tp_tool_tls_opts o;
	int rc;

	if ((rc = tp_tool_tls_get_opts(t, argc, argv, "r:", &o)) != 0)
		return rc;
	if (o.argc != 2) {
		tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
		    "expected a certificate file and a key file");
		return tp_tool_tls_usage(t->cmd);
	}
	if ((rc = tp_tool_tls_pick_route(t, TP_TOOL_TLS_SERVER, false)) != 0 ||
	    (rc = tp_tool_tls_deploy(t, o.argv[0], o.argv[1], NULL, 0, &s)) !=
		0)
		return rc;
	printf("Deployed on route [%s] in %s:\n  %s = %s\n  %s = %s\n",
	    t->route->name, t->path, tp_keys[s.cert].name, o.argv[0],
	    tp_keys[s.key].name, o.argv[1]);
	tp_tool_tls_put_reload(t, stdout);
	return TP_TOOL_TLS_EX_OK;
}

int
tp_tool_tls_output_server_csr(struct tp_tool_tls *t, int argc, char **argv)
{
	const char *hosts[TP_X509_MAX_HOSTS];
	const struct tp_cval *kv;
	struct tp_x509_files nf = {.kfd = -1, .cfd = -1};
	struct tp_x509_keyspec ks;
	enum tp_x509_alg newalg = TP_X509_NONE;
	char hbuf[256], why[300], *kpath = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *key = NULL;
	struct tp_tool_tls_opts o;
	int nhosts, rc;

	if ((rc = tp_tool_tls_get_opts(t, argc, argv, "k:b:r:", &o)) != 0)
		return rc;
	if (o.k != NULL && tp_tool_tls_parse_alg(o.k, &newalg) == 0) {
		if ((rc = tp_tool_tls_parse_keyspec(t, o.k, o.b, &ks)) != 0)
			return rc;
	} else if (o.b != NULL) {
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
		    "-b goes with -k rsa or -k ecdsa (a "
		    "new key)");
	}
	if ((o.k == NULL || newalg != TP_X509_NONE) &&
	    (rc = tp_tool_tls_pick_route(t, TP_TOOL_TLS_SERVER, false)) != 0)
		return rc;
	if ((rc = tp_tool_tls_get_hosts(
		 t, o.argc, o.argv, hosts, &nhosts, hbuf, sizeof(hbuf))) != 0)
		return rc;
	if (newalg != TP_X509_NONE) {
		if ((key = tp_x509_genkey(&ks, why, sizeof(why))) == NULL)
			return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
			    "cannot make a key: %s", why);
		if ((rc = create_files(t,
			 newalg == TP_X509_EC ? "eckey" : "key", NULL, &nf)) !=
			0 ||
		    (rc = write_new(t, &nf, key, NULL)) != 0)
			goto out;
	} else if (o.k != NULL) {
		if ((kpath = tp_tool_tls_resolve(t, o.k)) == NULL) {
			rc = tp_tool_tls_say(
			    t, TP_TOOL_TLS_EX_FAIL, "out of memory");
			goto out;
		}
		if ((rc = tp_tool_tls_exists_or_say(t, o.k, kpath)) != 0)
			goto out;
		if ((key = tp_keys_load_key(kpath, why, sizeof(why))) == NULL) {
			rc = tp_tool_tls_say(
			    t, TP_TOOL_TLS_EX_FAIL, "%s: %s", kpath, why);
			goto out;
		}
	} else if ((rc = tp_tool_tls_route_key(t, TP_X509_NONE, &key, &kv)) !=
	    0) {
		goto out;
	}
	if ((req = tp_x509_make_csr(key, hosts, nhosts, why, sizeof(why))) ==
	    NULL) {
		rc = tp_tool_tls_say(
		    t, TP_TOOL_TLS_EX_FAIL, "cannot make the CSR: %s", why);
		goto out;
	}
	if (!PEM_write_X509_REQ(stdout, req) || fflush(stdout) != 0) {
		rc = tp_tool_tls_say(
		    t, TP_TOOL_TLS_EX_FAIL, "cannot write the CSR");
		goto out;
	}
	if (newalg != TP_X509_NONE) {
		/* stdout is the CSR: the rest goes to stderr. */
		tp_x509_key_desc(key, why, sizeof(why));
		fprintf(stderr, "New %s private key: %s (mode 0600)\n", why,
		    nf.kpath);
		fprintf(stderr,
		    "DANE TLSA record%s for the new key (publish "
		    "before deploying it):\n",
		    nhosts > 1 ? "s" : "");
		for (int i = 0; i < nhosts; i++)
			tp_x509_put_tlsa(stderr, "  ", hosts[i], 25, key);
		fprintf(stderr,
		    "Save the signed certificate chain (server "
		    "certificate first) in the\nconfiguration directory %s, "
		    "then deploy it with the key:\n",
		    t->dir);
		put_cmd(stderr, t, "deploy-server-cert -r ");
		tp_tool_tls_put_arg(stderr, t->route->name);
		fprintf(stderr, " CERTFILE ");
		tp_tool_tls_put_arg(stderr, nf.kname);
		fputc('\n', stderr);
		fputs(rollover, stderr);
	}
	rc = TP_TOOL_TLS_EX_OK;
out:
	tp_x509_files_free(&nf, rc != TP_TOOL_TLS_EX_OK);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	free(kpath);
	return rc;
}
