/*
 * config_dns.h - the [global] dns_* keys of the configuration: value
 * checks for config.c's key table, the derived form in struct tp_config
 * (dns_mode, dns_fwd, dns_stubs, dns_ta, dns_needed) and the two files
 * read at load: the trust anchors and /etc/resolv.conf.
 */
#ifndef TLSPROXY_CONFIG_DNS_H
#define TLSPROXY_CONFIG_DNS_H

#include <stdbool.h>
#include <stddef.h>

struct tp_config;
struct tp_cfg_route;

#define TP_DNS_MAX_ADDRS   16      /* forwarders, servers of one stub */
#define TP_DNS_MAX_STUBS   256     /* dns_stub lines */
#define TP_DNS_MAX_TA      256     /* DS/DNSKEY records in the anchor file */
#define TP_DNS_MAX_TA_SIZE 1048576 /* bytes of the anchor file */
#define TP_RESOLV_CONF     "/etc/resolv.conf"

/* tp_config_dns_resolver - check a dns_resolver value; 0 or -1 and why. */
int tp_config_dns_resolver(const char *value, const char **why);
/* tp_config_dns_stub - check a dns_stub value; 0 or -1 and why. */
int tp_config_dns_stub(const char *value, const char **why);
/*
 * tp_config_dns_route - R resolves names through the DNS layer: a client
 * route with a host name or mx:DOMAIN among its connect entries, or a
 * gateway route (which also gives DANE its TLSA records).
 */
bool tp_config_dns_route(const struct tp_cfg_route *r);
/*
 * tp_config_dns - the cross-key pass, after the routes are checked: fill
 * cfg's DNS fields and record every problem as FILE:LINE.
 */
void tp_config_dns(struct tp_config *cfg);
/* tp_config_dns_free - free what tp_config_dns filled in. */
void tp_config_dns_free(struct tp_config *cfg);
/*
 * tp_config_dns_read_anchor - the DS and DNSKEY records of PATH, one RR
 * string each (malloc'd array of malloc'd strings).  Returns the number
 * (at least 1), or -1 with why and *line (the file's line, 0 for the
 * whole file).
 */
int tp_config_dns_read_anchor(
    const char *path, char ***rrs, int *line, char *why, size_t len);
/*
 * tp_config_dns_read_resolvconf - the nameserver addresses of a
 * resolv.conf file (at most TP_DNS_MAX_ADDRS).  Returns the number (at
 * least 1), or -1 with why.
 */
int tp_config_dns_read_resolvconf(
    const char *path, char ***addrs, char *why, size_t len);
/* tp_config_dns_strv_free - free an array from the readers above. */
void tp_config_dns_strv_free(char **v, size_t n);

#endif
