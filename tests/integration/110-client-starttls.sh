#!/bin/sh
# 110-client-starttls: client routes with tls = starttls against a scripted
# upstream (tests/peers/smtp_server.py).  The proxy reads the (multi-line)
# greeting, sends EHLO helo_name, finds STARTTLS in any case on any line,
# negotiates TLS, replays only the first greeting line as "220 TEXT", and
# tunnels; inside the tunnel STARTTLS is never advertised to the local client
# and a STARTTLS from it is answered 454 by the proxy, never forwarded.
. "$(dirname "$0")/lib.sh"
need_certs

tlsup="--cert $CERTS/rsa.pem --key $CERTS/rsa.key"
up1=$(free_port)	# two-line 220- greeting, lower-case "starttls" mid-list
up2=$(free_port)	# one-line greeting, STARTTLS first, mid-list in TLS
up3=$(free_port)	# STARTTLS the only capability inside TLS
up4=$(free_port)	# 554 greeting
up5=$(free_port)	# every reply dribbled one octet at a time
# shellcheck disable=SC2086
start_smtpd up1 "$up1" $tlsup
# shellcheck disable=SC2086
start_smtpd up2 "$up2" $tlsup --greeting '220 single.test ESMTP hi\r\n' \
    --ehlo '250-up2.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n' \
    --ehlo-tls '250-up2.test\r\n250-STARTTLS\r\n250-PIPELINING\r\n250 8BITMIME\r\n'
# shellcheck disable=SC2086
start_smtpd up3 "$up3" $tlsup --greeting '220-up3.test\r\n220-more\r\n220 end\r\n' \
    --ehlo '250-up3.test\r\n250 STARTTLS\r\n' --ehlo-tls '250-up3.test\r\n250 STARTTLS\r\n'
# shellcheck disable=SC2086
start_smtpd up4 "$up4" $tlsup --greeting '554 5.7.1 go away\r\n'
# shellcheck disable=SC2086
start_smtpd up5 "$up5" $tlsup --dribble

route() { # NAME UPSTREAM-PORT SECURITY
	printf '\n[%s]\nmode = client\ntls = starttls\nsecurity = %s\n' "$1" "$3"
	printf 'accept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$2"
	printf 'helo_name = proxy.test\nsmtp_timeout = 10s\n'
}
{
	printf '[global]\nshutdown_grace = 5s\n'
	route enc "$up1" encrypt
	route may "$up1" may
	route one "$up2" encrypt
	route only "$up3" encrypt
	route deny "$up4" encrypt
	route drib "$up5" encrypt
} >"$TP_TMP/client.ini"
start_proxy "$TP_TMP/client.ini"

# ---- a full session through the tunnel (encrypt)
dialog enc "$(route_port enc)" r "s:EHLO client.test" r s:STARTTLS r \
    "s:MAIL FROM:<a@example.org>" r "s:RCPT TO:<b@example.com>" r s:DATA r \
    "s:Subject: starttls test" s: s:STARTTLS "s:EHLO inside.body" s:. r \
    'x:NOOP\r\nSTARTTLS\r\nRSET\r\n' r r r s:starttls r s:QUIT r eof
d=$DLG
expect_reply "enc: greeting is the first upstream line, 220- made 220 SP" \
    "$d" "" "220 upstream.test ESMTP first line"
expect_reply "enc: EHLO reply without STARTTLS, last line fixed to '250 '" \
    "$d" "EHLO client.test" "250-upstream.test|250-PIPELINING|250 SIZE 1000000"
expect_reply "enc: STARTTLS from the local client: 454 4.7.0" \
    "$d" "STARTTLS" "454 4.7.0 TLS not available"
expect_reply "enc: MAIL FROM relayed: 250" "$d" "MAIL FROM:<a@example.org>" "250 2.0.0 Ok"
expect_reply "enc: DATA: 354" "$d" "DATA" "354 End data with <CR><LF>.<CR><LF>"
expect_reply "enc: end of data: 250" "$d" "." "250 2.0.0 Ok: queued as TEST"
got=$(awk '/^C: <raw NOOP/ { on = 1; next } on && /^S: / { print substr($0, 4) } on && /^C: / { exit }' "$d" | tr '\n' '|')
if [ "$got" = "250 2.0.0 Ok|454 4.7.0 TLS not available|250 2.0.0 Ok|" ]; then
	pass "enc: pipelined NOOP, STARTTLS, RSET answered in order"
else fail "enc: pipelined NOOP, STARTTLS, RSET answered in order" "got '$got'"; fi
expect_reply "enc: 'starttls' in lower case: 454 4.7.0 too" "$d" "starttls" "454 4.7.0 TLS not available"
expect_reply "enc: QUIT: 221" "$d" "QUIT" "221 2.0.0 Bye"
expect_line "enc: closed after QUIT" "$d" "EOF"
expect_no_match "enc: no STARTTLS in anything the local client read" "$d" '^S: .*[Ss][Tt][Aa][Rr][Tt][Tt][Ll][Ss]'

u=$TP_TMP/up1.log
seq=$(grep '^1 ' "$u" | grep -v ' connect from ' | head -n 4 | sed 's/ tls ok .*/ tls ok/' | tr '\n' '|')
if [ "$seq" = "1 C: EHLO proxy.test|1 C: STARTTLS|1 tls ok|1 T: EHLO client.test|" ]; then
	pass "upstream: EHLO helo_name, STARTTLS, handshake, then the client's EHLO in TLS"
else fail "upstream: EHLO helo_name, STARTTLS, handshake, client's EHLO in TLS" "got '$seq'"; fi
expect_line "upstream: MAIL arrived inside TLS" "$u" "1 T: MAIL FROM:<a@example.org>"
expect_no_match "upstream: nothing of the mail in plaintext" "$u" '^1 C: (MAIL|RCPT|DATA)'
expect_no_match "upstream: the client's STARTTLS was never forwarded" "$u" '^1 T: [Ss][Tt][Aa][Rr][Tt][Tt][Ll][Ss]'
expect_line "upstream: a body line 'STARTTLS' passes untouched" "$u" "1 body: STARTTLS"
expect_line "upstream: a body line 'EHLO inside.body' passes untouched" "$u" "1 body: EHLO inside.body"
expect_line "upstream: pipelined NOOP and RSET forwarded" "$u" "1 T: RSET"
tls='(Anonymous|Untrusted|Trusted|Verified) TLS connection established'
check "log: enc: TLS connection established to HOST[127.0.0.1]:$up1" \
    log_has "enc/[^:]+: $tls to [^ ]*\\[127\\.0\\.0\\.1\\]:$up1: TLSv1\\.[23] with cipher "
wait_for_log 'enc/[^:]+: disconnect in=' 3 || true
check "log: enc: disconnect in=... out=..." \
    log_has 'enc/[^:]+: disconnect in=[0-9.]+[kMG]?B out=[0-9.]+[kMG]?B'

# ---- security = may uses TLS when it is offered
n=$(grep -c ' connect from ' "$u" || true)
dialog may "$(route_port may)" r "s:EHLO client.test" r "s:MAIL FROM:<may@example.org>" r s:QUIT r
expect_reply "may: greeting" "$DLG" "" "220 upstream.test ESMTP first line"
expect_reply "may: MAIL relayed" "$DLG" "MAIL FROM:<may@example.org>" "250 2.0.0 Ok"
m=$((n + 1))
expect_match "may: upstream negotiated TLS" "$u" "^$m tls ok TLSv1"
expect_line "may: MAIL arrived inside TLS" "$u" "$m T: MAIL FROM:<may@example.org>"

# ---- one-line greeting, STARTTLS in upper case on the first capability line
dialog one "$(route_port one)" r "s:EHLO client.test" r s:QUIT r eof
expect_reply "one: one-line greeting replayed" "$DLG" "" "220 single.test ESMTP hi"
expect_reply "one: STARTTLS removed from the middle of the EHLO reply" \
    "$DLG" "EHLO client.test" "250-up2.test|250-PIPELINING|250 8BITMIME"
expect_match "one: upstream negotiated TLS" "$TP_TMP/up2.log" '^1 tls ok'

# ---- STARTTLS the only capability: the reply shrinks to one line
dialog only "$(route_port only)" r "s:EHLO client.test" r s:QUIT r eof
expect_reply "only: first line of a three-line greeting" "$DLG" "" "220 up3.test"
expect_reply "only: EHLO reply '250 up3.test'" "$DLG" "EHLO client.test" "250 up3.test"

# ---- every upstream reply split into one-octet segments (and TLS records)
dialog drib "$(route_port drib)" r "s:EHLO client.test" r "s:MAIL FROM:<drib@example.org>" r s:QUIT r eof
expect_reply "drib: greeting assembled from one-octet segments" "$DLG" "" "220 upstream.test ESMTP first line"
expect_reply "drib: dribbled EHLO reply inside TLS, STARTTLS removed" "$DLG" "EHLO client.test" \
    "250-upstream.test|250-PIPELINING|250 SIZE 1000000"
expect_reply "drib: MAIL relayed" "$DLG" "MAIL FROM:<drib@example.org>" "250 2.0.0 Ok"
expect_line "drib: MAIL arrived inside TLS" "$TP_TMP/up5.log" "1 T: MAIL FROM:<drib@example.org>"

# ---- upstream greeting 554: relayed as is, QUIT answered by the proxy
dialog deny "$(route_port deny)" r s:QUIT r eof
expect_reply "deny: 554 greeting relayed as is" "$DLG" "" "554 5.7.1 go away"
expect_reply "deny: QUIT answered 221 2.0.0 Bye" "$DLG" "QUIT" "221 2.0.0 Bye"
expect_line "deny: closed after QUIT" "$DLG" "EOF"
expect_no_match "deny: the upstream never saw a STARTTLS" "$TP_TMP/up4.log" ' STARTTLS$'

done_testing
