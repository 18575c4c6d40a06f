#!/bin/sh
# 140-postfix-mta: a real Postfix as the legacy MTA.  A private instance
# (its own config, queue and log under the test's tmpdir) has
# relayhost = [127.0.0.1]:PORT pointing at a client + starttls route, then
# (after postfix reload) at a client + implicit route; a message handed to
# its sendmail arrives at smtp-sink behind the matching server route.
#   sendmail -> Postfix smtp -> [out]  client+starttls -> [in]  server+starttls -> smtp-sink
#                            -> [outi] client+implicit -> [ini] server+implicit -> smtp-sink
. "$(dirname "$0")/lib.sh"
require_tool postfix postconf sendmail /usr/sbin/smtp-sink
require_root
need_certs

pin=$(free_port)
pini=$(free_port)
sink=$(free_port)
start_sink "$sink"
cat >"$TP_TMP/mta.ini" <<EOF
[global]
shutdown_grace = 5s

[in]
mode = server
tls = starttls
hostname = in.test
accept = 127.0.0.1:$pin
connect = 127.0.0.1:$sink
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key

[ini]
mode = server
tls = implicit
accept = 127.0.0.1:$pini
connect = 127.0.0.1:$sink
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key

[out]
mode = client
tls = starttls
security = encrypt
helo_name = out.test
accept = 127.0.0.1:0
connect = 127.0.0.1:$pin

[outi]
mode = client
tls = implicit
security = encrypt
accept = 127.0.0.1:0
connect = 127.0.0.1:$pini
EOF
start_proxy "$TP_TMP/mta.ini"
pout=$(route_port out)
pouti=$(route_port outi)

pf_init mta
mta=$PF_DIR
pf_main "$mta" "relayhost = [127.0.0.1]:$pout" relay_domains= \
    default_transport=smtp relay_transport=smtp smtp_helo_name=mta.test
pf_start "$mta"
mlog=$(pf_log "$mta")
wait_file "$mlog" 5 'daemon started' || note "no 'daemon started' in the Postfix log"

# send SUBJECT: hand one message to the instance's sendmail
send() {
	NSTATUS=$(grep -c ' status=' "$mlog" || true)
	printf 'From: sender@mta.test\nTo: rcpt@example.com\nSubject: %s\n\nhello from %s\n' "$1" "$1" |
	    MAIL_CONFIG=$mta timeout 20 sendmail -f sender@mta.test rcpt@example.com &&
	    rc=0 || rc=$?
	check "sendmail accepts '$1'" [ "$rc" = 0 ]
}
# arrived SUBJECT PORT: Postfix logged status=sent (250 ...) through
# 127.0.0.1:PORT, and the sink has the message
arrived() {
	_i=0
	while [ "$(grep -c ' status=' "$mlog" || true)" -le "$NSTATUS" ] && [ $_i -lt 150 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	_st=$(grep ' status=' "$mlog" | tail -n 1)
	if echo "$_st" | grep -Eq "relay=127\.0\.0\.1\[127\.0\.0\.1\]:$2,.* status=sent \(250 "; then
		pass "Postfix: status=sent (250 ...) via [127.0.0.1]:$2"
	else fail "Postfix: status=sent via [127.0.0.1]:$2" "${_st:-no status line within 15 s}"; fi
	if grep -l "Subject: $1" "$SINK_DIR"/* >/dev/null 2>&1; then pass "'$1' arrived at the sink"
	else fail "'$1' arrived at the sink" "the sink has $(sink_count) messages, none with that subject"; fi
}

# ---- relayhost = the client + starttls route
send via-starttls-route
arrived via-starttls-route "$pout"
tls='(Anonymous|Untrusted|Trusted|Verified) TLS connection established'
check "log: out: TLS connection established to [127.0.0.1]:$pin" \
    log_has "out/[^:]+: $tls to [^ ]*\\[127\\.0\\.0\\.1\\]:$pin: "
check "log: in: TLS connection established from [127.0.0.1]" \
    log_has "in/[^:]+: $tls from [^ ]*\\[127\\.0\\.0\\.1\\]"

# ---- relayhost = the client + implicit route
pf_main "$mta" "relayhost = [127.0.0.1]:$pouti"
postfix -c "$mta" reload >"$TP_TMP/reload.out" 2>&1 ||
    fail "postfix reload" "$(cat "$TP_TMP/reload.out")"
sleep 1		# qmgr and smtp restart with the new relayhost
send via-implicit-route
arrived via-implicit-route "$pouti"
check "log: outi: TLS connection established to [127.0.0.1]:$pini" \
    log_has "outi/[^:]+: $tls to [^ ]*\\[127\\.0\\.0\\.1\\]:$pini: "
expect_no_match "Postfix deferred nothing" "$mlog" 'status=deferred'

done_testing
