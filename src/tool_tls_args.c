/*
 * tool_tls_args.c - the arguments of the `tlsproxy tls` verbs: options
 * (getopt over the subcommand's argv, -r kept in the tool state), the
 * -a/-b key specification, hostname operands and the default hostname.
 * Bad arguments are usage errors (exit 2) with a message.
 *
 * Runs on the main thread of the short-lived `tls` process; no event
 * loop.  Called by the verbs (tool_tls_cert.c, tool_tls_tlsa.c,
 * tool_tls_enable.c).
 */
#include "tlsproxy/tool_tls_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tool_x509.h"

/* ------------------------------------------------------------- options */

int
tp_tool_tls_get_opts(struct tp_tool_tls *t, int argc, char **argv,
    const char *optstring, struct tp_tool_tls_opts *o)
{
	char spec[32];
	int ch;

	memset(o, 0, sizeof(*o));
	snprintf(spec, sizeof(spec), "+:%s", optstring);
	optind = 0; /* glibc: start afresh after main's getopt */
	opterr = 0;
	while ((ch = getopt(argc, argv, spec)) != -1) {
		switch (ch) {
		case 'a':
			o->a = optarg;
			break;
		case 'b':
			o->b = optarg;
			break;
		case 'h':
			o->h = optarg;
			break;
		case 'k':
			o->k = optarg;
			break;
		case 'p':
			o->p = optarg;
			break;
		case 'r':
			t->ropt = optarg;
			break;
		case ':':
			tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
			    "option -%c needs an argument", optopt);
			return tp_tool_tls_usage(t->cmd);
		default:
			tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
			    "unknown option -%c", optopt);
			return tp_tool_tls_usage(t->cmd);
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	return 0;
}

/* ----------------------------------------------------------- hostnames */

void
tp_tool_tls_default_host(const struct tp_cfg_route *r, char *buf, size_t len)
{
	if (r != NULL && r->v[TP_K_HOSTNAME].set) {
		snprintf(buf, len, "%s", r->v[TP_K_HOSTNAME].raw);
		return;
	}
	if (gethostname(buf, len - 1) < 0 || buf[0] == '\0')
		snprintf(buf, len, "localhost");
	buf[len - 1] = '\0';
}

bool
tp_tool_tls_hostname_ok(const char *h)
{
	size_t n = strlen(h), label = 0;

	if (strncmp(h, "*.", 2) == 0)
		h += 2, n -= 2;
	if (n == 0 || n > 253 || h[0] == '.' || h[n - 1] == '.' ||
	    strstr(h, "..") != NULL)
		return false;
	for (; *h; h++) {
		if (*h == '.') {
			label = 0;
			continue;
		}
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
			(*h >= '0' && *h <= '9') || *h == '-' || *h == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

int
tp_tool_tls_get_hosts(struct tp_tool_tls *t, int argc, char **argv,
    const char **hosts, int *nhosts, char *buf, size_t len)
{
	int rc;

	if (argc > TP_X509_MAX_HOSTS)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
		    "at most %d hostnames", TP_X509_MAX_HOSTS);
	for (int i = 0; i < argc; i++) {
		if (!tp_tool_tls_hostname_ok(argv[i]))
			return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
			    "bad hostname \"%s\": use "
			    "a DNS name",
			    argv[i]);
		hosts[i] = argv[i];
	}
	*nhosts = argc;
	if (argc > 0)
		return 0;
	if ((rc = tp_tool_tls_pick_route(t, TP_TOOL_TLS_SERVER, false)) != 0)
		return rc;
	tp_tool_tls_default_host(t->route, buf, len);
	if (!tp_tool_tls_hostname_ok(buf))
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
		    "the default hostname \"%s\" is not "
		    "a DNS name: give one as an argument",
		    buf);
	hosts[0] = buf;
	*nhosts = 1;
	return 0;
}

/* ---------------------------------------------------- key options */

int
tp_tool_tls_parse_alg(const char *s, enum tp_x509_alg *alg)
{
	if (strcmp(s, "rsa") == 0)
		*alg = TP_X509_RSA;
	else if (strcmp(s, "ecdsa") == 0)
		*alg = TP_X509_EC;
	else
		return -1;
	return 0;
}

int
tp_tool_tls_parse_keyspec(const struct tp_tool_tls *t, const char *a,
    const char *b, struct tp_x509_keyspec *ks)
{
	static const struct {
		const char *name, *ossl;
	} curves[] = {
	    {"secp256r1", "prime256v1"},
	    {"prime256v1", "prime256v1"},
	    {"P-256", "prime256v1"},
	    {"256", "prime256v1"},
	    {"secp384r1", "secp384r1"},
	    {"P-384", "secp384r1"},
	    {"384", "secp384r1"},
	    {"secp521r1", "secp521r1"},
	    {"P-521", "secp521r1"},
	    {"521", "secp521r1"},
	};

	memset(ks, 0, sizeof(*ks));
	ks->alg = TP_X509_RSA;
	if (a != NULL && tp_tool_tls_parse_alg(a, &ks->alg) < 0)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
		    "bad algorithm \"%s\": use rsa or "
		    "ecdsa",
		    a);
	if (a == NULL && b != NULL && strspn(b, "0123456789") != strlen(b))
		ks->alg = TP_X509_EC;
	if (ks->alg == TP_X509_RSA) {
		ks->bits = 2048;
		if (b == NULL)
			return 0;
		if (strcmp(b, "2048") == 0 || strcmp(b, "3072") == 0 ||
		    strcmp(b, "4096") == 0) {
			ks->bits = atoi(b);
			return 0;
		}
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
		    "bad RSA key size \"%s\": use 2048, "
		    "3072 or 4096",
		    b);
	}
	ks->curve = "prime256v1";
	if (b == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (strcmp(b, curves[i].name) == 0) {
			ks->curve = curves[i].ossl;
			return 0;
		}
	return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
	    "bad ECDSA curve \"%s\": use secp256r1 (also "
	    "called prime256v1), secp384r1 or secp521r1",
	    b);
}
