#!/bin/sh
# 160-server-adversarial: server + starttls routes against hostile clients.
#   - command injection: "STARTTLS\r\nMAIL FROM:<...>\r\n" in one write; the
#     MAIL never reaches the backend and gets no reply inside TLS;
#   - the in-TLS filter follows the command/reply state: pipelined STARTTLS
#     answered in order, BDAT chunk content passes untouched, the end of DATA
#     and a STARTTLS in one write, a DATA the backend refuses, replies split
#     into one-octet segments, lower-case commands;
#   - pre-TLS lines over 512 octets: 500 5.5.2, the third 421 4.7.0 and close;
#     a 200 kB line without CRLF does not wedge the session;
#   - pipelined pre-TLS commands answered in order;
#   - backend unreachable: 421 4.3.0 inside TLS, then close.
. "$(dirname "$0")/lib.sh"
need_certs

be=$(free_port)
berej=$(free_port)
bedrib=$(free_port)
refused=$(free_port)
start_smtpd be "$be" --greeting '220 backend.test ESMTP\r\n' \
    --ehlo '250-backend.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 CHUNKING\r\n'
start_smtpd berej "$berej" --data-reply '554 5.5.1 Error: no valid recipients\r\n'
start_smtpd bedrib "$bedrib" --dribble --greeting '220-bedrib.test ESMTP\r\n220 more\r\n' \
    --ehlo '250-bedrib.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n'

route() { # NAME SECURITY BACKEND-PORT
	printf '\n[%s]\nmode = server\ntls = starttls\nsecurity = %s\n' "$1" "$2"
	printf 'accept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$3"
	printf 'cert_file = %s\nkey_file = %s\n' "$CERTS/rsa.pem" "$CERTS/rsa.key"
	printf 'hostname = %s.test\nsmtp_timeout = 10s\n' "$1"
}
{
	printf '[global]\nshutdown_grace = 5s\n'
	route may may "$be"
	route enc encrypt "$be"
	route down may "$refused"
	route rej may "$berej"
	route drib may "$bedrib"
} >"$TP_TMP/srv.ini"
start_proxy "$TP_TMP/srv.ini"
may=$(route_port may)
enc=$(route_port enc)
b=$TP_TMP/be.log

# ---- command injection, on a may and on an encrypt route
for r in may enc; do
	inj="STARTTLS\\r\\nMAIL FROM:<inject-$r@example.org>\\r\\n"
	dialog "inject-$r" "$(route_port $r)" r "s:EHLO c.test" r "x:$inj" r tls \
	    quiet:1 "s:EHLO after.test" r s:QUIT r eof
	d=$DLG
	expect_reply "inject-$r: one reply to the injected write: 220 2.0.0" "$d" \
	    "<raw $inj>" "220 2.0.0 Ready to start TLS"
	expect_match "inject-$r: TLS handshake" "$d" '^TLS: TLSv1\.[23] '
	expect_line "inject-$r: no reply inside TLS to the injected MAIL" "$d" "QUIET"
	expect_reply_match "inject-$r: the first reply in TLS answers the client's EHLO" "$d" \
	    "EHLO after.test" '^250-backend\.test\|'
	expect_no_match "inject-$r: the injected MAIL never reached the backend" "$b" "inject-$r@"
done

# ---- inside TLS: pipelining, STARTTLS in order, BDAT content untouched
dialog filter "$may" r "s:EHLO c.test" r s:STARTTLS r tls "s:EHLO in.test" r \
    'x:NOOP\r\nSTARTTLS\r\nRSET\r\n' r r r \
    "s:MAIL FROM:<bdat@example.org>" r "s:RCPT TO:<b@example.com>" r \
    'x:BDAT 20 LAST\r\nSTARTTLS\r\nEHLO x.y\r\n' r s:STARTTLS r s:QUIT r eof
d=$DLG
expect_reply "filter: pipelined NOOP, STARTTLS, RSET answered in order" "$d" \
    '<raw NOOP\r\nSTARTTLS\r\nRSET\r\n>' "250 2.0.0 Ok|554 5.5.1 Error: TLS already active|250 2.0.0 Ok"
expect_reply "filter: BDAT chunk with STARTTLS inside relayed" "$d" \
    '<raw BDAT 20 LAST\r\nSTARTTLS\r\nEHLO x.y\r\n>' "250 2.0.0 Ok: 20 octets"
got=$(reply_to "$d" STARTTLS 2)
if [ "$got" = "554 5.5.1 Error: TLS already active" ]; then
	pass "filter: STARTTLS after the BDAT chunk: 554 5.5.1"
else fail "filter: STARTTLS after the BDAT chunk: 554 5.5.1" "got '$got'"; fi
expect_match "filter: BDAT content 'STARTTLS' reached the backend" "$b" '^[0-9]+ body: STARTTLS$'
expect_match "filter: BDAT content 'EHLO x.y' reached the backend" "$b" '^[0-9]+ body: EHLO x\.y$'
expect_no_match "filter: no STARTTLS command reached the backend" "$b" ' [CT]: STARTTLS'
expect_match "filter: the pipelined RSET reached the backend" "$b" '^[0-9]+ C: RSET$'

# ---- commands are case-insensitive, STARTTLS included
dialog lower "$may" r "s:ehlo c.test" r s:starttls r tls "s:ehlo in.test" r s:starttls r s:QUIT r eof
d=$DLG
expect_reply_match "lower: 'ehlo' answered by the proxy" "$d" "ehlo c.test" '^250-may\.test\|'
expect_reply "lower: 'starttls': 220 2.0.0" "$d" starttls "220 2.0.0 Ready to start TLS"
got=$(reply_to "$d" starttls 2)
if [ "$got" = "554 5.5.1 Error: TLS already active" ]; then pass "lower: 'starttls' inside TLS: 554 5.5.1"
else fail "lower: 'starttls' inside TLS: 554 5.5.1" "got '$got'"; fi
expect_no_match "lower: no starttls reached the backend" "$b" ' [CT]: [Ss][Tt][Aa][Rr][Tt][Tt][Ll][Ss]'

# ---- the end of DATA and a STARTTLS in one write
dialog dot "$may" r "s:EHLO c.test" r s:STARTTLS r tls "s:EHLO dot.test" r \
    "s:MAIL FROM:<dot@example.org>" r "s:RCPT TO:<b@example.com>" r s:DATA r \
    'x:Subject: dot\r\n\r\nSTARTTLS\r\n.\r\nSTARTTLS\r\nNOOP\r\n' r r r s:QUIT r eof
d=$DLG
expect_reply "dot: end of data, STARTTLS, NOOP in one write answered in order" "$d" \
    '<raw Subject: dot\r\n\r\nSTARTTLS\r\n.\r\nSTARTTLS\r\nNOOP\r\n>' \
    "250 2.0.0 Ok: queued as TEST|554 5.5.1 Error: TLS already active|250 2.0.0 Ok"
n=$(grep -F ' C: MAIL FROM:<dot@example.org>' "$b" | head -n 1 | cut -d' ' -f1)
expect_line "dot: the body line STARTTLS reached the backend" "$b" "${n:-0} body: STARTTLS"
expect_no_match "dot: the STARTTLS after the dot did not" "$b" ' [CT]: STARTTLS'

# ---- DATA refused by the backend: what follows it is a command again
dialog rej "$(route_port rej)" r "s:EHLO c.test" r s:STARTTLS r tls "s:EHLO rej.test" r \
    "s:MAIL FROM:<rej@example.org>" r 'x:DATA\r\nSTARTTLS\r\n' r r s:QUIT r eof
expect_reply "rej: DATA refused, then STARTTLS answered 554 by the proxy" "$DLG" \
    '<raw DATA\r\nSTARTTLS\r\n>' "554 5.5.1 Error: no valid recipients|554 5.5.1 Error: TLS already active"
expect_no_match "rej: the STARTTLS after a refused DATA never reached the backend" \
    "$TP_TMP/berej.log" 'STARTTLS'

# ---- a backend that writes one octet at a time
dialog drib "$(route_port drib)" r "s:EHLO c.test" r s:STARTTLS r tls quiet:0.5 \
    "s:EHLO drib.test" r s:QUIT r eof
expect_line "drib: the dribbled backend greeting is consumed" "$DLG" "QUIET"
expect_reply "drib: dribbled EHLO reply, STARTTLS removed, last line fixed" "$DLG" \
    "EHLO drib.test" "250-bedrib.test|250 PIPELINING"

# ---- injection in a segment of its own, right after STARTTLS
dialog inject-late "$may" r "s:EHLO c.test" r s:STARTTLS "s:MAIL FROM:<late@example.org>" r \
    tls "s:EHLO late.test" r s:QUIT r eof
expect_no_match "inject-late: a MAIL sent right after STARTTLS never reached the backend" "$b" 'late@'

# ---- pre-TLS line length
pad=$(printf '%505s' '' | tr ' ' a)
dialog bound "$enc" r "s:NOOP $pad" r "s:NOOP ${pad}a" r s:QUIT r eof
expect_reply_match "bound: a 512-octet line (CRLF included) is not too long" "$DLG" \
    "NOOP $pad" '^250 '
expect_reply "bound: a 513-octet line is: 500 5.5.2" "$DLG" "NOOP ${pad}a" "500 5.5.2 Line too long"

dialog toolong "$enc" r long:1000 r long:600 r long:513 r eof
d=$DLG
expect_reply "toolong: 1000-octet line: 500 5.5.2" "$d" "<long 1000>" "500 5.5.2 Line too long"
expect_reply "toolong: 600-octet line: 500 5.5.2" "$d" "<long 600>" "500 5.5.2 Line too long"
expect_reply "toolong: third offence: 421 4.7.0 Too many errors" "$d" "<long 513>" \
    "421 4.7.0 Too many errors"
expect_line "toolong: closed after the 421" "$d" "EOF"

dialog huge "$enc" r big:200000 'x:\r\nNOOP\r\n' r r s:QUIT r eof
expect_reply "huge: 200 kB line without CRLF: 500, then NOOP answered" "$DLG" \
    '<raw \r\nNOOP\r\n>' "500 5.5.2 Line too long|250 2.0.0 Ok"
expect_reply "huge: QUIT: 221" "$DLG" "QUIT" "221 2.0.0 Bye"

# ---- pre-TLS pipelining
dialog pipe "$enc" r 'x:EHLO c.test\r\nNOOP\r\nRSET\r\nHELO h.test\r\n' r r r r s:QUIT r
expect_reply_match "pipe: EHLO, NOOP, RSET, HELO answered in order" "$DLG" \
    '<raw EHLO c.test\r\nNOOP\r\nRSET\r\nHELO h.test\r\n>' \
    '^250-enc\.test\|.*\|250 [^|]*\|250 2\.0\.0 Ok\|250 2\.0\.0 Ok\|250 enc\.test$'

# ---- backend unreachable
dialog down "$(route_port down)" r "s:EHLO c.test" r s:STARTTLS r tls r eof
expect_reply "down: STARTTLS: 220" "$DLG" STARTTLS "220 2.0.0 Ready to start TLS"
expect_match "down: TLS handshake" "$DLG" '^TLS: TLSv1\.[23] '
if awk '/^TLS: TLSv1/ { on = 1; next } on && /^S: / { print; exit }' "$DLG" | grep -q '^S: 421 4\.3\.0 '; then
	pass "down: 421 4.3.0 inside TLS right after the handshake"
else fail "down: 421 4.3.0 inside TLS right after the handshake" "$(oneline "$DLG")"; fi
expect_line "down: closed after the 421" "$DLG" "EOF"

dialog downplain "$(route_port down)" r "s:EHLO c.test" r "s:MAIL FROM:<a@example.org>" r eof
expect_reply_match "down, plaintext relay (may): MAIL gets 421 4.3.0" "$DLG" \
    "MAIL FROM:<a@example.org>" '^421 4\.3\.0 '

check "the proxy is still running" alive "$PROXY_PID"

done_testing
