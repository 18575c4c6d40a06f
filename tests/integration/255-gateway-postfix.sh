#!/bin/sh
# 255-gateway-postfix: a real Postfix as the legacy MTA behind the outbound
# gateway (spec 4.9 step 3: one destination domain per transaction).
#
# The offline DNSSEC lab of 240 (tests/dns/mkzones.sh): good.test (MX
# mx.good.test, 127.0.0.1, TLSA 3 1 1) and ta.test (MX mx.ta.test,
# 127.0.0.3, TLSA 2 1 1 of the CA), upstreams tests/peers/smtp_server.py
# on 127.0.0.1 (up1) and 127.0.0.3 (up3) at the lab's UPPORT.  One gateway
# route (security dane, the default).  A private Postfix instance (pf_init,
# as 140) has relayhost = [127.0.0.1]:GWPORT, smtp_tls_security_level =
# none, default_transport = smtp, relay_domains empty; its sendmail gets
# ONE message to u@good.test and v@ta.test (qmgr sorts a delivery's
# recipients by domain: good.test's RCPT goes first):
#   - the gateway answers the first RCPT with the upstream's 250 and the
#     second with "452 4.5.3 Try again later: one destination domain per
#     transaction": Postfix logs status=sent for the first recipient and
#     status=deferred (... 452 4.5.3 ...) for the second;
#   - the first recipient's MX got the message (its upstream log: MAIL,
#     RCPT, the body) and never heard of the second recipient; the second
#     MX got nothing yet;
#   - postqueue -f: the deferred recipient is delivered (status=sent) to
#     its own MX, the queue is empty;
#   - nothing lost, nothing duplicated: each recipient reached exactly one
#     upstream, once, with the body; no bounce; both sessions Verified.
# The route has connection_reuse = yes (workers = 1: one pool): then two
# more messages to good.test, each its own Postfix session (Postfix sends
# QUIT and closes without reading the 221): both sent, over one upstream
# connection, kept between them ("reusing connection" logged).
TP_TIMEOUT=${TP_TIMEOUT:-90}
. "$(dirname "$0")/lib.sh"
require_tool openssl ldns-keygen ldns-signzone ldns-key2ds unbound-host \
    postfix postconf postqueue sendmail
command -v nsd >/dev/null 2>&1 || [ -x /usr/sbin/nsd ] || skip_all "nsd not installed"
require_root
need_certs

start_lab

start_smtpd up1 "$UP" --addr 127.0.0.1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key"
start_smtpd up3 "$UP" --addr 127.0.0.3 --cert "$LAB/lab3.pem" --key "$LAB/lab3.key"
U1=$TP_TMP/up1.log U3=$TP_TMP/up3.log

cat >"$TP_TMP/gw.ini" <<EOF2
[global]
workers = 1
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
connection_reuse = yes
connection_cache_time = 30s
EOF2
start_proxy "$TP_TMP/gw.ini"
GW=$(route_port gw)

pf_init mta
mta=$PF_DIR
pf_main "$mta" "relayhost = [127.0.0.1]:$GW" relay_domains= \
    default_transport=smtp relay_transport=smtp smtp_helo_name=mta.test \
    smtp_tls_security_level=none
pf_start "$mta"
mlog=$(pf_log "$mta")
wait_file "$mlog" 5 'daemon started' || note "no 'daemon started' in the Postfix log"

# status_of RCPT: the last status= line of Postfix's log for to=<RCPT>
status_of() { grep -F " to=<$1>," "$mlog" | grep ' status=' | tail -n 1; }
# wait_status RCPT WORD N: until RCPT has N status=WORD lines (15 s)
wait_status() {
	_i=0
	while [ "$(grep -F " to=<$1>," "$mlog" | grep -c " status=$2 " || true)" -lt "$3" ] &&
	    [ $_i -lt 150 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
}
# rcpts LOG ADDR: how many times the upstream whose log is LOG got RCPT
# TO:<ADDR> (inside TLS or not)
rcpts() { grep -Ec "^[0-9]+ [TC]: RCPT TO:<$2>" "$1" || true; }
# conn_of LOG ADDR: the upstream connection that got RCPT TO:<ADDR>
conn_of() { sed -n "s/^\\([0-9]*\\) [TC]: RCPT TO:<$2>.*/\\1/p" "$1" | head -n 1; }
ulines() { awk -v n="$2" '$1 == n { sub(/^[0-9]+ /, ""); print }' "$1"; }

A=u@good.test
B=v@ta.test
SUBJ=gateway-two-domains
printf 'From: sender@mta.test\nTo: %s, %s\nSubject: %s\n\nhello from %s\n' \
    "$A" "$B" "$SUBJ" "$SUBJ" |
    MAIL_CONFIG=$mta timeout 20 sendmail -f sender@mta.test "$A" "$B" &&
    rc=0 || rc=$?
check "sendmail accepts one message to $A and $B" [ "$rc" = 0 ]

# ---- the first attempt: one recipient sent, the other deferred with the 452
wait_status "$A" sent 1
wait_status "$B" deferred 1
sa=$(status_of "$A")
sb=$(status_of "$B")
if printf '%s\n' "$sa" | grep -Eq "relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$GW,.* status=sent \\(250 2\\.0\\.0 Ok: queued as TEST\\)"; then
	pass "Postfix: $A status=sent (250 2.0.0 Ok: queued as TEST) via the gateway"
else fail "Postfix: $A status=sent via the gateway" "${sa:-no status line within 15 s}"; fi
if printf '%s\n' "$sb" | grep -Fq " status=deferred (host 127.0.0.1[127.0.0.1] said: 452 4.5.3 Try again later: one destination domain per transaction (in reply to RCPT TO command))"; then
	pass "Postfix: $B status=deferred (... said: 452 4.5.3 Try again later: one destination domain per transaction ...)"
else fail "Postfix: $B status=deferred with the 452 4.5.3" "${sb:-no status line within 15 s}"; fi

c1=$(conn_of "$U1" "$A")
ulines "$U1" "${c1:-none}" >"$TP_TMP/first.conn"
check "mx.good.test got RCPT TO:<$A> once (got $(rcpts "$U1" "$A"))" [ "$(rcpts "$U1" "$A")" = 1 ]
check "mx.good.test got MAIL FROM:<sender@mta.test> inside TLS" \
    grep -Eq '^T: MAIL FROM:<sender@mta\.test>( |$)' "$TP_TMP/first.conn"
check "mx.good.test got the body (Subject: $SUBJ)" \
    grep -Fxq "body: Subject: $SUBJ" "$TP_TMP/first.conn"
check "mx.good.test got the body (hello from $SUBJ)" \
    grep -Fxq "body: hello from $SUBJ" "$TP_TMP/first.conn"
check "mx.good.test never heard of $B" [ "$(grep -c "<$B>" "$U1" || true)" = 0 ]
check "mx.ta.test got nothing before the queue run" [ "$(rcpts "$U3" "$B")" = 0 ]
check "log: Verified TLS connection to mx.good.test[127.0.0.1]:UP for good.test" \
    log_has "gw/[^: ]+: Verified TLS connection (established|reused) to mx\\.good\\.test\\[127\\.0\\.0\\.1\\]:$UP: .* for good\\.test\$"

# ---- the queue run: the deferred recipient goes to its own MX
postqueue -c "$mta" -f >"$TP_TMP/flush.out" 2>&1 ||
    fail "postqueue -f" "$(oneline "$TP_TMP/flush.out")"
wait_status "$B" sent 1
sb=$(status_of "$B")
if printf '%s\n' "$sb" | grep -Eq "relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$GW,.* status=sent \\(250 2\\.0\\.0 Ok: queued as TEST\\)"; then
	pass "Postfix: after postqueue -f, $B status=sent (250 2.0.0 Ok: queued as TEST)"
else fail "Postfix: after postqueue -f, $B status=sent" "${sb:-no status line within 15 s}"; fi
c3=$(conn_of "$U3" "$B")
ulines "$U3" "${c3:-none}" >"$TP_TMP/second.conn"
check "mx.ta.test got RCPT TO:<$B> once (got $(rcpts "$U3" "$B"))" [ "$(rcpts "$U3" "$B")" = 1 ]
check "mx.ta.test got MAIL FROM:<sender@mta.test> inside TLS" \
    grep -Eq '^T: MAIL FROM:<sender@mta\.test>( |$)' "$TP_TMP/second.conn"
check "mx.ta.test got the body (Subject: $SUBJ)" \
    grep -Fxq "body: Subject: $SUBJ" "$TP_TMP/second.conn"
check "mx.ta.test got the body (hello from $SUBJ)" \
    grep -Fxq "body: hello from $SUBJ" "$TP_TMP/second.conn"
check "log: Verified TLS connection to mx.ta.test[127.0.0.3]:UP for ta.test" \
    log_has "gw/[^: ]+: Verified TLS connection (established|reused) to mx\\.ta\\.test\\[127\\.0\\.0\\.3\\]:$UP: .* for ta\\.test\$"

# ---- nothing lost, nothing duplicated
check "each recipient reached exactly one upstream, once ($A: up1 $(rcpts "$U1" "$A") up3 $(rcpts "$U3" "$A"); $B: up1 $(rcpts "$U1" "$B") up3 $(rcpts "$U3" "$B"))" \
    [ "$(rcpts "$U1" "$A")$(rcpts "$U3" "$A")$(rcpts "$U1" "$B")$(rcpts "$U3" "$B")" = 1001 ]
m1=$(grep -Ec '^[0-9]+ [TC]: MAIL FROM:' "$U1" || true)
m3=$(grep -Ec '^[0-9]+ [TC]: MAIL FROM:' "$U3" || true)
b1=$(grep -c "body: Subject: $SUBJ\$" "$U1" || true)
b3=$(grep -c "body: Subject: $SUBJ\$" "$U3" || true)
check "one transaction and one body at each MX (MAIL: $m1, $m3; bodies: $b1, $b3)" \
    [ "$m1$m3$b1$b3" = 1111 ]
expect_no_match "Postfix bounced nothing" "$mlog" 'status=bounced'
c=$(grep -F " to=<$A>," "$mlog" | grep -c ' status=' || true)
check "Postfix: one status line for $A (got $c)" [ "$c" = 1 ]
_i=0
while ! postqueue -c "$mta" -p 2>&1 | grep -q 'Mail queue is empty' && [ $_i -lt 50 ]; do
	sleep 0.1
	_i=$((_i + 1))
done
postqueue -c "$mta" -p >"$TP_TMP/queue.out" 2>&1 || true
expect_match "Postfix: the queue is empty" "$TP_TMP/queue.out" 'Mail queue is empty'
for u in "$U1" "$U3"; do
	expect_no_match "$(basename "$u" .log): no MAIL/RCPT/DATA in plaintext" "$u" \
	    '^[0-9]+ C: (MAIL|RCPT|DATA)'
done

# ---- connection_reuse: Postfix sessions one after another, one upstream
for n in 2 3; do
	printf 'From: sender@mta.test\nTo: w%s@good.test\nSubject: reuse-%s\n\nhello\n' "$n" "$n" |
	    MAIL_CONFIG=$mta timeout 20 sendmail -f sender@mta.test "w$n@good.test" ||
	    fail "sendmail w$n@good.test" "exit $?"
	wait_status "w$n@good.test" sent 1
	s=$(status_of "w$n@good.test")
	if printf '%s\n' "$s" | grep -q 'status=sent (250 2.0.0 Ok: queued as TEST)'; then
		pass "reuse: Postfix: w$n@good.test status=sent"
	else fail "reuse: Postfix: w$n@good.test status=sent" "${s:-no status line within 15 s}"; fi
done
w2=$(conn_of "$U1" w2@good.test)
w3=$(conn_of "$U1" w3@good.test)
check "reuse: both messages over one upstream connection ('$w2', '$w3')" \
    [ "${w2:-none}" = "${w3:-no}" ]
ulines "$U1" "${w3:-none}" >"$TP_TMP/reuse.conn"
check "reuse: RSET between them on that connection" grep -q '^T: RSET$' "$TP_TMP/reuse.conn"
check "reuse: the body of the second arrived" grep -Fxq 'body: Subject: reuse-3' "$TP_TMP/reuse.conn"
check "reuse: 'reusing connection to mx.good.test[127.0.0.1]' logged" \
    log_has "gw/[0-9a-f]+: reusing connection to mx\\.good\\.test\\[127\\.0\\.0\\.1\\]:$UP "
check "reuse: each message reached the MX once" \
    [ "$(rcpts "$U1" w2@good.test)$(rcpts "$U1" w3@good.test)" = 11 ]

done_testing
