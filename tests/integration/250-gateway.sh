#!/bin/sh
# 250-gateway: the outbound gateway (spec 4.9) against the offline DNSSEC lab
# of 240 (tests/dns/mkzones.sh): one local port for every domain, the
# destination from the first RCPT's domain, its MX hosts and TLSA records
# with DNSSEC, the policy from policy_file, else the route's (dane).
TP_TIMEOUT=${TP_TIMEOUT:-90}
. "$(dirname "$0")/lib.sh"
require_tool openssl ldns-keygen ldns-signzone ldns-key2ds unbound-host
command -v nsd >/dev/null 2>&1 || [ -x /usr/sbin/nsd ] || skip_all "nsd not installed"
need_certs

DNSPORT=$(free_port)
UP=$(free_port)
LAB=$TP_TMP/lab
sh "$TP_ROOT/tests/dns/mkzones.sh" "$LAB" "$DNSPORT" "$UP" \
    "$CERTS/ca.key" "$CERTS/ca.pem" >"$TP_TMP/mkzones.out" 2>&1 ||
    bail "mkzones" "$(tail -n 5 "$TP_TMP/mkzones.out" | tr '\n' ' ')"
. "$LAB/lab.env"
start_dns "$LAB"

start_smtpd up1 "$UP" --addr 127.0.0.1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key"
start_smtpd up2 "$UP" --addr 127.0.0.2 --cert "$LAB/lab2.pem" --key "$LAB/lab2.key"
U1=$TP_TMP/up1.log U2=$TP_TMP/up2.log

cat >"$TP_TMP/policy" <<EOF2
# Postfix smtp_tls_policy_maps, as admins write them
bad.test	dane
EOF2
cat >"$TP_TMP/gw.ini" <<EOF2
[global]
shutdown_grace = 2s
dns_stub = test. 127.0.0.1@$DNSPORT
dns_trust_anchor = $LAB/test.ds
dns_timeout = 3s

[gw]
mode = gateway
accept = 127.0.0.1:0
port = $UP
hostname = gw.test
helo_name = gw.proxy.test
policy_file = $TP_TMP/policy
EOF2
start_proxy "$TP_TMP/gw.ini"
GW=$(route_port gw)

# msg NAME STEP...: one session through the gateway
msg() {
	_n=$1
	shift
	dialog "$_n" "$GW" --timeout 15 r "s:EHLO mta.test" r "$@" s:QUIT r eof
}

msg one "s:MAIL FROM:<a@mta.test>" r "s:RCPT TO:<u@good.test>" r s:DATA r \
    "x:Subject: one\r\n\r\nbody\r\n.\r\n" r
expect_reply "greeting" "$DLG" "" "220 gw.test ESMTP"
expect_reply "RCPT relayed: the upstream's 250" "$DLG" "RCPT TO:<u@good.test>" "250 2.0.0 Ok"
expect_match "message accepted by mx.good.test" "$DLG" '^S: 250 2\.0\.0 Ok: queued as TEST'
check "log: Verified TLS connection established to mx.good.test[127.0.0.1] for good.test" \
    log_has "gw/[^:]+: Verified TLS connection established to mx\\.good\\.test\\[127\\.0\\.0\\.1\\]:$UP: .* for good\\.test"

done_testing
