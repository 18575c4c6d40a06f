#!/bin/sh
# 250-gateway: the outbound gateway (spec 4.9) against the offline DNSSEC lab
# of 240 (tests/dns/mkzones.sh): one local port for every domain, the
# destination from the first RCPT's domain, its MX hosts and TLSA records
# with DNSSEC, the policy from policy_file, else the route's (dane).
#
# Upstreams (tests/peers/smtp_server.py on the lab's UPPORT): up1 on
# 127.0.0.1 (lab1: mx.good.test, mx.insecure.test, mx.notlsa.test,
# nomx.test, ...; --log-sni; no 8BITMIME inside TLS, the default), up2 on
# 127.0.0.2 (lab2: mx.bad.test, mx1.two.test; 8BITMIME inside TLS), up3 on
# 127.0.0.3 (lab3: mx.ta.test), up5 on 127.0.0.5 (mx.plain.test: no
# certificate, and an EHLO reply without STARTTLS, with 8BITMIME); nothing
# listens on 127.0.0.4 (mx.down.test).  One proxy: route gw (the one under
# test: hostname gw.test, helo_name gw.proxy.test, ca_file = the test CA,
# message_size_limit, policy_file below) and route gw2 (no SIZE: only its
# EHLO reply is looked at).  Policy file:
#   bad.test       dane
#   notlsa.test    secure match=mx.notlsa.test   (private CA: ca_file)
#   two.test       fingerprint of lab2's certificate (AB:CD:... as Postfix
#                  prints it)
#   nomx.test      fingerprint of lab1's public key
#   ta.test        fingerprint of a key nobody serves
#   plain.test     may
#   plainenc.test  encrypt
# Every session is one smtp_dialog.py run, in turn; each transaction has a
# sender of its own, which finds its upstream connection ("N T: MAIL
# FROM:<...>" in an upstream log).  Replies asserted exactly where they
# are exact:
#   EHLO (with and without SIZE), STARTTLS/AUTH/BDAT (502 5.5.1), an
#     oversized MAIL SIZE= (552 5.3.4), QUIT;
#   good.test (DANE) delivered, Verified ... for good.test, SNI; BODY=
#     dropped (the upstream has no 8BITMIME) / kept (up2, up5 offer it);
#   bad.test (TLSA mismatch): RCPT 451 4.7.5 Server certificate not
#     trusted: ..., then a transaction to good.test in the same session is
#     delivered; nothing in plaintext after STARTTLS at 127.0.0.2;
#   insecure.test delivered, not Verified;
#   policy_file secure / fingerprint (certificate, public key) Verified;
#     a wrong fingerprint: 451 4.7.5;
#   may to a server without STARTTLS: delivered in plaintext; encrypt:
#     451 4.7.4 TLS is required, but was not offered by host ...;
#   null MX 556 5.1.10, NXDOMAIN 550 5.4.4, bogus 451 4.4.3, refused
#     451 4.4.1 (in one transaction, which then delivers to good.test);
#   two domains in one transaction: 452 4.5.3, never sent upstream;
#   the next transaction to another domain: QUIT to the first upstream,
#     then a new connection; the same domain twice: one connection;
#   pipelining: five commands in one write, five replies in order.
# Then: metrics (exposition lint, DANE results of route gw).  Run it with
# the ASan build too (lib.sh checks the proxy logs at exit).
TP_TIMEOUT=${TP_TIMEOUT:-90}
. "$(dirname "$0")/lib.sh"
require_tool openssl ldns-keygen ldns-signzone ldns-key2ds unbound-host
command -v nsd >/dev/null 2>&1 || [ -x /usr/sbin/nsd ] || skip_all "nsd not installed"
need_certs

start_lab

start_smtpd up1 "$UP" --addr 127.0.0.1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key" --log-sni
start_smtpd up2 "$UP" --addr 127.0.0.2 --cert "$LAB/lab2.pem" --key "$LAB/lab2.key" \
    --ehlo-tls '250-upstream.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS\r\n'
start_smtpd up3 "$UP" --addr 127.0.0.3 --cert "$LAB/lab3.pem" --key "$LAB/lab3.key"
start_smtpd up5 "$UP" --addr 127.0.0.5 \
    --ehlo '250-upstream.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n'
U1=$TP_TMP/up1.log U2=$TP_TMP/up2.log U3=$TP_TMP/up3.log U5=$TP_TMP/up5.log

# sha256 of lab2's certificate, as Postfix logs it (AB:CD:...)
FP2=$(openssl x509 -in "$LAB/lab2.pem" -noout -fingerprint -sha256 | sed 's/^.*=//')
[ ${#FP2} = 95 ] || bail "lab2 fingerprint" "openssl printed '$FP2'"
cat >"$TP_TMP/policy" <<EOF2
# Postfix smtp_tls_policy_maps, as admins write them
bad.test	dane
notlsa.test	secure match=mx.notlsa.test
two.test	fingerprint
	match=$FP2
nomx.test	fingerprint match=$LAB_SPKI1
ta.test		fingerprint match=$LAB_SPKI_WRONG
plain.test	may
plainenc.test	encrypt
EOF2
SIZE=10240000
cat >"$TP_TMP/gw.ini" <<EOF2
[global]
shutdown_grace = 2s
stats = 127.0.0.1:0
dns_stub = test. 127.0.0.1@$DNSPORT
dns_trust_anchor = $LAB/test.ds
dns_timeout = 3s

[gw]
mode = gateway
accept = 127.0.0.1:0
port = $UP
hostname = gw.test
helo_name = gw.proxy.test
ca_file = $CERTS/ca.pem
message_size_limit = $SIZE
policy_file = $TP_TMP/policy
connect_timeout = 3s
smtp_timeout = 10s

[gw2]
mode = gateway
accept = 127.0.0.1:0
port = $UP
hostname = gw2.test
EOF2
start_proxy "$TP_TMP/gw.ini"
GW=$(route_port gw)
GW2=$(route_port gw2)
upre=$UP

# ---------------------------------------------------------------- helpers

# msg NAME STEP...: one session through the gateway (EHLO first, QUIT last)
msg() {
	_n=$1
	shift
	dialog "$_n" "$GW" --timeout 15 r "s:EHLO mta.test" r "$@" s:QUIT r eof
}

# reply_n FILE CMD N: the reply to the Nth "C: CMD" (see reply_to)
# expect_reply_n NAME FILE CMD N REPLY
expect_reply_n() {
	_got=$(reply_to "$2" "$3" "$4")
	if [ "$_got" = "$5" ]; then pass "$1"
	else fail "$1" "expected '$5', got '$_got' [$(oneline "$2")]"; fi
}

# uconn LOG SENDER: the number of the upstream connection that got MAIL
# FROM:<SENDER> (with or without parameters), "" if none
uconn() {
	awk -v m="MAIL FROM:<$2>" '
		($2 == "T:" || $2 == "C:") { l = $0; sub(/^[0-9]+ [TC]: /, "", l)
		    if (l == m || index(l, m " ") == 1) { print $1; exit } }' "$1"
}
# ulines LOG N: connection N's events (without the number), in order
ulines() { awk -v n="$2" '$1 == n { sub(/^[0-9]+ /, ""); print }' "$1"; }

# upgot NAME LOG SENDER RCPT SUBJECT [C]: the upstream whose log is LOG got
# the transaction of SENDER: its MAIL, RCPT TO:<RCPT> and a body with
# "Subject: SUBJECT", all inside TLS ("T:"; C: plaintext); sets UC
upgot() {
	_p=${6:-T}
	UC=$(uconn "$2" "$3")
	ulines "$2" "${UC:-none}" >"$TP_TMP/$1.conn"
	if [ -n "$UC" ] && grep -Eq "^$_p: MAIL FROM:<$3>" "$TP_TMP/$1.conn" &&
	    grep -Fxq "$_p: RCPT TO:<$4>" "$TP_TMP/$1.conn" &&
	    grep -Fxq "body: Subject: $5" "$TP_TMP/$1.conn"; then
		pass "$1: $(basename "$2" .log) got MAIL FROM:<$3>, RCPT TO:<$4> and the body ($_p:)"
	else
		fail "$1: $(basename "$2" .log) got MAIL FROM:<$3>, RCPT TO:<$4> and the body ($_p:)" \
		    "connection '${UC:-none}': $(oneline "$TP_TMP/$1.conn")"
	fi
}

# est TRUST HOST IP DOMAIN [HOW]: ERE of route gw's "TRUST TLS connection
# HOW to HOST[IP]:UP: ... for DOMAIN" (TRUST, HOST, HOW EREs; HOW by
# default established or reused: the session cache may resume a session
# to the same address)
est() {
	printf 'gw/[^: ]+: %s TLS connection %s to %s\\[%s\\]:%s: .* for %s$' \
	    "$1" "${5:-(established|reused)}" "$2" \
	    "$(printf '%s' "$3" | sed 's/\./\\./g')" "$upre" \
	    "$(printf '%s' "$4" | sed 's/\./\\./g')"
}
NOTV='(Untrusted|Anonymous|Trusted)'
QUEUED='250 2.0.0 Ok: queued as TEST'
T452='452 4.5.3 Try again later: one destination domain per transaction'

# ---------------------------------------------------------------- EHLO, own replies

dialog ehlo "$GW" --timeout 10 r "s:EHLO mta.test" r s:STARTTLS r \
    "s:AUTH PLAIN AGdpZ2kAc2VjcmV0" r "s:BDAT 10 LAST" r \
    "s:MAIL FROM:<big@mta.test> SIZE=$((SIZE + 1))" r s:NOOP r s:QUIT r eof
expect_reply "greeting" "$DLG" "" "220 gw.test ESMTP"
expect_reply "EHLO: PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8, LIMITS RCPTDOMAINMAX=1" \
    "$DLG" "EHLO mta.test" \
    "250-gw.test|250-PIPELINING|250-SIZE $SIZE|250-8BITMIME|250-ENHANCEDSTATUSCODES|250-SMTPUTF8|250 LIMITS RCPTDOMAINMAX=1"
expect_reply "STARTTLS answered by the gateway" "$DLG" "STARTTLS" \
    "502 5.5.1 Error: command not implemented"
expect_reply "AUTH answered by the gateway" "$DLG" "AUTH PLAIN AGdpZ2kAc2VjcmV0" \
    "502 5.5.1 Error: command not implemented"
expect_reply "BDAT answered by the gateway" "$DLG" "BDAT 10 LAST" \
    "502 5.5.1 Error: command not implemented"
expect_reply "MAIL SIZE= over message_size_limit" "$DLG" \
    "MAIL FROM:<big@mta.test> SIZE=$((SIZE + 1))" "552 5.3.4 Message size exceeds fixed limit"
expect_reply "NOOP" "$DLG" "NOOP" "250 2.0.0 Ok"
expect_reply "QUIT" "$DLG" "QUIT" "221 2.0.0 Bye"
expect_line "the gateway closes after QUIT" "$DLG" "EOF"
dialog ehlo2 "$GW2" --timeout 10 r "s:EHLO mta.test" r s:QUIT r eof
expect_reply "EHLO without message_size_limit: no SIZE" "$DLG" "EHLO mta.test" \
    "250-gw2.test|250-PIPELINING|250-8BITMIME|250-ENHANCEDSTATUSCODES|250-SMTPUTF8|250 LIMITS RCPTDOMAINMAX=1"
c=$(cat "$U1" "$U2" "$U3" "$U5" | grep -c ' connect from ' || true)
check "no upstream connection for sessions without RCPT (got $c)" [ "$c" = 0 ]

# ---------------------------------------------------------------- DANE

# good.test: DANE match; BODY=8BITMIME dropped (up1 has no 8BITMIME in TLS)
msg good "s:MAIL FROM:<good@mta.test> BODY=8BITMIME" r "s:RCPT TO:<u@good.test>" r \
    s:DATA r "x:Subject: good\r\n\r\nbody\r\n.\r\n" r
expect_reply "good: MAIL answered by the gateway" "$DLG" \
    "MAIL FROM:<good@mta.test> BODY=8BITMIME" "250 2.1.0 Ok"
expect_reply "good: RCPT relayed: the upstream's 250" "$DLG" "RCPT TO:<u@good.test>" "250 2.0.0 Ok"
expect_reply "good: DATA: the upstream's 354" "$DLG" "DATA" "354 End data with <CR><LF>.<CR><LF>"
expect_match "good: message accepted by mx.good.test" "$DLG" "^S: $QUEUED\$"
expect_reply "good: QUIT" "$DLG" "QUIT" "221 2.0.0 Bye"
upgot good "$U1" good@mta.test u@good.test good
check "good: log: Verified TLS connection established to mx.good.test[127.0.0.1]:UP: ... for good.test" \
    log_has "$(est Verified 'mx\.good\.test' 127.0.0.1 good.test established)"
check "good: the upstream's EHLO is helo_name (EHLO gw.proxy.test inside TLS)" \
    grep -Fxq "T: EHLO gw.proxy.test" "$TP_TMP/good.conn"
check "good: SNI mx.good.test" grep -Fxq "sni mx.good.test" "$TP_TMP/good.conn"
check "good: BODY=8BITMIME dropped: the upstream offers no 8BITMIME" \
    grep -Fxq "T: MAIL FROM:<good@mta.test>" "$TP_TMP/good.conn"
check "good: QUIT to the upstream after the MTA's QUIT" \
    grep -Fxq "T: QUIT" "$TP_TMP/good.conn"

# bad.test: DANE mismatch; the session goes on to good.test
msg bad "s:MAIL FROM:<bad@mta.test>" r "s:RCPT TO:<x@bad.test>" r s:DATA r s:RSET r \
    "s:MAIL FROM:<bad2@mta.test>" r "s:RCPT TO:<u@good.test>" r s:DATA r \
    "x:Subject: bad2\r\n\r\nbody\r\n.\r\n" r
expect_reply_match "bad: RCPT 451 4.7.5 Server certificate not trusted: ..." "$DLG" \
    "RCPT TO:<x@bad.test>" '^451 4\.7\.5 Server certificate not trusted: [^|]+$'
expect_reply "bad: DATA without a recipient" "$DLG" "DATA" "554 5.5.1 Error: no valid recipients"
expect_reply "bad: RSET" "$DLG" "RSET" "250 2.0.0 Ok"
expect_reply "bad: the next transaction's RCPT to good.test" "$DLG" "RCPT TO:<u@good.test>" "250 2.0.0 Ok"
expect_reply_n "bad: the next transaction delivered" "$DLG" "DATA" 2 \
    "354 End data with <CR><LF>.<CR><LF>"
expect_match "bad: message accepted by mx.good.test" "$DLG" "^S: $QUEUED\$"
upgot bad2 "$U1" bad2@mta.test u@good.test bad2
check "bad: log: verification failed for mx.bad.test[127.0.0.2]:UP" \
    log_has "gw/[^: ]+: .*verification failed for mx\\.bad\\.test\\[127\\.0\\.0\\.2\\]:$upre"
check "bad: the gateway reached mx.bad.test (127.0.0.2) and sent STARTTLS" \
    grep -Eq '^[0-9]+ C: STARTTLS$' "$U2"
expect_no_match "bad: no MAIL for bad.test reached 127.0.0.2" "$U2" 'MAIL FROM:<bad@'

# insecure.test: no DS, delivered opportunistically
msg insecure "s:MAIL FROM:<ins@mta.test>" r "s:RCPT TO:<u@insecure.test>" r s:DATA r \
    "x:Subject: insecure\r\n\r\nbody\r\n.\r\n" r
expect_reply "insecure: RCPT" "$DLG" "RCPT TO:<u@insecure.test>" "250 2.0.0 Ok"
expect_match "insecure: message accepted" "$DLG" "^S: $QUEUED\$"
upgot insecure "$U1" ins@mta.test u@insecure.test insecure
check "insecure: log: $NOTV TLS connection established to mx.insecure.test[127.0.0.1]:UP ... for insecure.test" \
    log_has "$(est "$NOTV" 'mx\.insecure\.test' 127.0.0.1 insecure.test)"
expect_no_match "insecure: not Verified" "$PROXY_LOG" \
    "$(est Verified '[^[]+' 127.0.0.1 insecure.test)"

# ---------------------------------------------------------------- policy_file

msg secure "s:MAIL FROM:<sec@mta.test>" r "s:RCPT TO:<u@notlsa.test>" r s:DATA r \
    "x:Subject: secure\r\n\r\nbody\r\n.\r\n" r
expect_reply "secure: RCPT" "$DLG" "RCPT TO:<u@notlsa.test>" "250 2.0.0 Ok"
expect_match "secure: message accepted" "$DLG" "^S: $QUEUED\$"
upgot secure "$U1" sec@mta.test u@notlsa.test secure
check "secure: log: Verified TLS connection established to mx.notlsa.test[127.0.0.1]:UP ... for notlsa.test" \
    log_has "$(est Verified 'mx\.notlsa\.test' 127.0.0.1 notlsa.test)"
check "secure: log: policy_file entry notlsa.test (line 3)" \
    log_has "gw/[^: ]+: notlsa\\.test: policy_file entry notlsa\\.test \\(line 3\\)"

# fingerprint of the certificate; BODY=8BITMIME kept (up2 offers 8BITMIME)
msg fpcert "s:MAIL FROM:<fpc@mta.test> BODY=8BITMIME" r "s:RCPT TO:<u@two.test>" r s:DATA r \
    "x:Subject: fpcert\r\n\r\nbody\r\n.\r\n" r
expect_reply "fpcert: RCPT" "$DLG" "RCPT TO:<u@two.test>" "250 2.0.0 Ok"
expect_match "fpcert: message accepted" "$DLG" "^S: $QUEUED\$"
upgot fpcert "$U2" fpc@mta.test u@two.test fpcert
check "fpcert: log: Verified TLS connection established to mx1.two.test[127.0.0.2]:UP ... for two.test" \
    log_has "$(est Verified 'mx1\.two\.test' 127.0.0.2 two.test)"
check "fpcert: BODY=8BITMIME kept: the upstream offers 8BITMIME" \
    grep -Fxq "T: MAIL FROM:<fpc@mta.test> BODY=8BITMIME" "$TP_TMP/fpcert.conn"

# fingerprint of the public key
msg fpkey "s:MAIL FROM:<fpk@mta.test>" r "s:RCPT TO:<u@nomx.test>" r s:DATA r \
    "x:Subject: fpkey\r\n\r\nbody\r\n.\r\n" r
expect_reply "fpkey: RCPT" "$DLG" "RCPT TO:<u@nomx.test>" "250 2.0.0 Ok"
expect_match "fpkey: message accepted" "$DLG" "^S: $QUEUED\$"
upgot fpkey "$U1" fpk@mta.test u@nomx.test fpkey
check "fpkey: log: Verified TLS connection established to nomx.test[127.0.0.1]:UP ... for nomx.test" \
    log_has "$(est Verified 'nomx\.test' 127.0.0.1 nomx.test)"

# a fingerprint nobody serves
msg fpwrong "s:MAIL FROM:<fpw@mta.test>" r "s:RCPT TO:<u@ta.test>" r s:RSET r
expect_reply_match "fpwrong: RCPT 451 4.7.5 Server certificate not verified" "$DLG" \
    "RCPT TO:<u@ta.test>" '^451 4\.7\.5 Server certificate not verified[^|]*$'
expect_reply "fpwrong: the session goes on (RSET)" "$DLG" "RSET" "250 2.0.0 Ok"
check "fpwrong: the gateway reached mx.ta.test (127.0.0.3)" grep -q ' connect from ' "$U3"
expect_no_match "fpwrong: no MAIL reached 127.0.0.3" "$U3" 'MAIL FROM:'

# ---------------------------------------------------------------- no STARTTLS

# may: plaintext; BODY=8BITMIME kept (offered)
msg plainmay "s:MAIL FROM:<pm@mta.test> BODY=8BITMIME" r "s:RCPT TO:<u@plain.test>" r \
    s:DATA r "x:Subject: plainmay\r\n\r\nbody\r\n.\r\n" r
expect_reply "plainmay: RCPT" "$DLG" "RCPT TO:<u@plain.test>" "250 2.0.0 Ok"
expect_match "plainmay: message accepted" "$DLG" "^S: $QUEUED\$"
upgot plainmay "$U5" pm@mta.test u@plain.test plainmay C
check "plainmay: BODY=8BITMIME kept (plaintext upstream offers 8BITMIME)" \
    grep -Fxq "C: MAIL FROM:<pm@mta.test> BODY=8BITMIME" "$TP_TMP/plainmay.conn"
expect_no_match "plainmay: no STARTTLS to a server that does not offer it" \
    "$TP_TMP/plainmay.conn" 'STARTTLS'
check "plainmay: log: mx.plain.test[127.0.0.5]:UP: continuing in plaintext (security = may)" \
    log_has "gw/[^: ]+: mx\\.plain\\.test\\[127\\.0\\.0\\.5\\]:$upre: .*continuing in plaintext \\(security = may\\)"
expect_no_match "plainmay: no TLS connection logged for plain.test" "$PROXY_LOG" \
    'TLS connection .* for plain\.test$'
# encrypt: refused
n5=$(grep -c ' connect from ' "$U5" || true)
msg plainenc "s:MAIL FROM:<pe@mta.test>" r "s:RCPT TO:<u@plainenc.test>" r s:RSET r
expect_reply "plainenc: RCPT 451 4.7.4 TLS is required, but was not offered" "$DLG" \
    "RCPT TO:<u@plainenc.test>" \
    "451 4.7.4 TLS is required, but was not offered by host mx.plain.test[127.0.0.5]"
expect_reply "plainenc: the session goes on (RSET)" "$DLG" "RSET" "250 2.0.0 Ok"
check "plainenc: the gateway reached mx.plain.test (127.0.0.5)" \
    [ "$(grep -c ' connect from ' "$U5" || true)" -gt "$n5" ]
expect_no_match "plainenc: no MAIL sent in plaintext" "$U5" 'MAIL FROM:<pe@'

# ---------------------------------------------------------------- DNS and connect failures

msg fail "s:MAIL FROM:<fail@mta.test>" r "s:RCPT TO:<u@nullmx.test>" r \
    "s:RCPT TO:<u@nothere.test>" r "s:RCPT TO:<u@bogus.test>" r \
    "s:RCPT TO:<u@down.test>" r "s:RCPT TO:<u@good.test>" r s:DATA r \
    "x:Subject: fail\r\n\r\nbody\r\n.\r\n" r
expect_reply "nullmx: RCPT 556 5.1.10" "$DLG" "RCPT TO:<u@nullmx.test>" \
    "556 5.1.10 Recipient address rejected: Domain nullmx.test does not accept mail (nullMX)"
expect_reply "nxdomain: RCPT 550 5.4.4" "$DLG" "RCPT TO:<u@nothere.test>" \
    "550 5.4.4 Recipient address rejected: Host or domain name not found"
expect_reply_match "bogus: RCPT 451 4.4.3" "$DLG" "RCPT TO:<u@bogus.test>" '^451 4\.4\.3 [^|]*$'
expect_reply_match "down: RCPT 451 4.4.1 Connection refused by mx.down.test[127.0.0.4]:UP" \
    "$DLG" "RCPT TO:<u@down.test>" \
    "^451 4\\.4\\.1 Connection refused by mx\\.down\\.test\\[127\\.0\\.0\\.4\\]:$upre\$"
expect_reply "fail: failed RCPTs fix no domain: good.test next" "$DLG" \
    "RCPT TO:<u@good.test>" "250 2.0.0 Ok"
expect_match "fail: message accepted by mx.good.test" "$DLG" "^S: $QUEUED\$"
upgot fail "$U1" fail@mta.test u@good.test fail
check "fail: the good.test connection got one RCPT" \
    [ "$(grep -c '^T: RCPT ' "$TP_TMP/fail.conn" || true)" = 1 ]

# ---------------------------------------------------------------- one domain per transaction

msg mixed "s:MAIL FROM:<mix@mta.test>" r "s:RCPT TO:<mixu@good.test>" r \
    "s:RCPT TO:<mixv@insecure.test>" r s:DATA r \
    "x:Subject: mixed\r\n\r\nbody\r\n.\r\n" r
expect_reply "mixed: first RCPT (good.test)" "$DLG" "RCPT TO:<mixu@good.test>" "250 2.0.0 Ok"
expect_reply "mixed: RCPT to another domain: 452 4.5.3" "$DLG" \
    "RCPT TO:<mixv@insecure.test>" "$T452"
expect_reply "mixed: DATA" "$DLG" "DATA" "354 End data with <CR><LF>.<CR><LF>"
expect_match "mixed: message accepted by mx.good.test" "$DLG" "^S: $QUEUED\$"
upgot mixed "$U1" mix@mta.test mixu@good.test mixed
check "mixed: the upstream got one RCPT" \
    [ "$(grep -c '^T: RCPT ' "$TP_TMP/mixed.conn" || true)" = 1 ]
c=$(cat "$U1" "$U2" "$U3" "$U5" | grep -c 'mixv@' || true)
check "mixed: no upstream ever saw mixv@insecure.test (got $c)" [ "$c" = 0 ]

# the next transaction to another domain: QUIT, a new connection
msg next "s:MAIL FROM:<next1@mta.test>" r "s:RCPT TO:<u@good.test>" r s:DATA r \
    "x:Subject: next1\r\n\r\nbody\r\n.\r\n" r \
    "s:MAIL FROM:<next2@mta.test>" r "s:RCPT TO:<v@insecure.test>" r s:DATA r \
    "x:Subject: next2\r\n\r\nbody\r\n.\r\n" r
expect_reply "next: second transaction's MAIL" "$DLG" "MAIL FROM:<next2@mta.test>" "250 2.1.0 Ok"
expect_reply "next: second transaction's RCPT (insecure.test)" "$DLG" \
    "RCPT TO:<v@insecure.test>" "250 2.0.0 Ok"
c=$(grep -c "^S: $QUEUED\$" "$DLG" || true)
check "next: both messages accepted (got $c)" [ "$c" = 2 ]
upgot next1 "$U1" next1@mta.test u@good.test next1
N1=$UC
upgot next2 "$U1" next2@mta.test v@insecure.test next2
N2=$UC
r=no
if [ -n "$N1" ] && [ -n "$N2" ] && [ "$N1" != "$N2" ]; then r=yes; fi
check "next: two upstream connections (${N1:-none}, ${N2:-none})" [ "$r" = yes ]
check "next: the first upstream got QUIT" grep -Fxq "T: QUIT" "$TP_TMP/next1.conn"
ql=$(grep -n "^${N1:-none} T: QUIT\$" "$U1" | head -n 1 | cut -d: -f1)
cl=$(grep -n "^${N2:-none} connect from " "$U1" | head -n 1 | cut -d: -f1)
r=no
if [ -n "$ql" ] && [ -n "$cl" ] && [ "$ql" -lt "$cl" ]; then r=yes; fi
check "next: QUIT to the first (line ${ql:-none}) before the second connection (line ${cl:-none})" \
    [ "$r" = yes ]
expect_no_match "next: the first connection got nothing of the second transaction" \
    "$TP_TMP/next1.conn" 'next2@|v@insecure'

# the same domain twice: one connection
msg same "s:MAIL FROM:<same1@mta.test>" r "s:RCPT TO:<u@good.test>" r s:DATA r \
    "x:Subject: same1\r\n\r\nbody\r\n.\r\n" r \
    "s:MAIL FROM:<same2@mta.test>" r "s:RCPT TO:<w@good.test>" r s:DATA r \
    "x:Subject: same2\r\n\r\nbody\r\n.\r\n" r
c=$(grep -c "^S: $QUEUED\$" "$DLG" || true)
check "same: both messages accepted (got $c)" [ "$c" = 2 ]
upgot same1 "$U1" same1@mta.test u@good.test same1
S1=$UC
upgot same2 "$U1" same2@mta.test w@good.test same2
S2=$UC
check "same: one upstream connection for both (${S1:-none}, ${S2:-none})" \
    [ "${S1:-none}" = "${S2:-other}" ]
c=$(grep '^T: ' "$TP_TMP/same1.conn" | grep -n '^T: QUIT$' | tr '\n' ' ')
t=$(grep -c '^T: ' "$TP_TMP/same1.conn" || true)
check "same: one QUIT to the upstream, its last command (QUIT at ${c:-none}of $t commands)" \
    [ "$c" = "$t:T: QUIT " ]
c=$(grep -c '^T: EHLO ' "$TP_TMP/same1.conn" || true)
check "same: one EHLO inside TLS (got $c)" [ "$c" = 1 ]

# ---------------------------------------------------------------- pipelining

dialog pipe "$GW" --timeout 15 r "s:EHLO mta.test" r \
    "x:MAIL FROM:<pipe@mta.test>\r\nRCPT TO:<u@good.test>\r\nRCPT TO:<w@good.test>\r\nRCPT TO:<z@insecure.test>\r\nDATA\r\n" \
    r r r r r "x:Subject: pipe\r\n\r\nbody\r\n.\r\n" r s:QUIT r eof
expect_reply "pipe: five replies in order" "$DLG" \
    "<raw MAIL FROM:<pipe@mta.test>\\r\\nRCPT TO:<u@good.test>\\r\\nRCPT TO:<w@good.test>\\r\\nRCPT TO:<z@insecure.test>\\r\\nDATA\\r\\n>" \
    "250 2.1.0 Ok|250 2.0.0 Ok|250 2.0.0 Ok|$T452|354 End data with <CR><LF>.<CR><LF>"
expect_reply "pipe: message accepted" "$DLG" "<raw Subject: pipe\\r\\n\\r\\nbody\\r\\n.\\r\\n>" "$QUEUED"
upgot pipe "$U1" pipe@mta.test u@good.test pipe
check "pipe: the upstream got RCPT u and w, not z" \
    [ "$(grep '^T: RCPT ' "$TP_TMP/pipe.conn" | tr '\n' '|')" = "T: RCPT TO:<u@good.test>|T: RCPT TO:<w@good.test>|" ]

# ---------------------------------------------------------------- everywhere

for u in "$U1" "$U2" "$U3"; do
	n=$(basename "$u" .log)
	after=$(awk '$2 == "C:" && toupper($3) == "STARTTLS" { st[$1] = 1; next }
		$2 == "C:" && st[$1] { print; exit }' "$u")
	check "$n: no plaintext command after STARTTLS${after:+ (got '$after')}" [ -z "$after" ]
	expect_no_match "$n: no MAIL/RCPT/DATA in plaintext" "$u" '^[0-9]+ C: (MAIL|RCPT|DATA)'
done

# ---------------------------------------------------------------- metrics

sport=$(sed -n 's/.*stats: listening on .*:\([0-9][0-9]*\) (GET \/metrics)$/\1/p' "$PROXY_LOG" | tail -n 1)
M=$TP_TMP/metrics.txt
if ! command -v curl >/dev/null 2>&1; then
	note "curl not installed: metrics not checked"
elif [ -n "$sport" ] && curl -s -m 5 -o "$M" "http://127.0.0.1:$sport/metrics"; then
	prom() { "$PY" "$TP_PEERS/prom.py" "$@"; }
	if prom lint "$M" >"$TP_TMP/lint.out" 2>&1; then pass "metrics: exposition format (prom.py lint)"
	else fail "metrics: exposition format (prom.py lint)" "$(head -n 3 "$TP_TMP/lint.out" | tr '\n' '|')"; fi
	for res in verified mismatch; do
		v=$(prom get "$M" tlsproxy_dane_total route=gw "result=$res")
		check "metrics: tlsproxy_dane_total{route=\"gw\",result=\"$res\"} >= 1 (got $v)" \
		    awk -v v="$v" 'BEGIN { exit !(v ~ /^[0-9]+$/ && v + 0 >= 1) }'
	done
else
	fail "metrics" "no stats port in the log, or curl failed"
fi

done_testing
