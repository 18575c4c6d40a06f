#!/bin/sh
# 120-server-starttls: the postscreen-style front end.  The proxy speaks the
# pre-TLS dialogue itself (greeting, EHLO capability list, HELO, NOOP, RSET,
# HELP, QUIT, syntax errors), answers STARTTLS with 220, and after the
# handshake relays to the backend (tests/peers/smtp_server.py), whose
# greeting it consumes; inside TLS STARTTLS is removed from EHLO replies and
# a STARTTLS command gets 554 from the proxy.  security = may relays a
# client that goes on without TLS (its EHLO/HELO replayed to the backend);
# security = encrypt answers 530.
. "$(dirname "$0")/lib.sh"
need_certs

be1=$(free_port)
be2=$(free_port)
start_smtpd be1 "$be1" --greeting '220 backend.test ESMTP backend\r\n' \
    --ehlo '250-backend.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 CHUNKING\r\n'
start_smtpd be2 "$be2" --greeting '220-backend2.test ESMTP\r\n220 second line\r\n' \
    --ehlo '250-backend2.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n'

route() { # NAME BACKEND-PORT [EXTRA LINES]
	printf '\n[%s]\nmode = server\ntls = starttls\naccept = 127.0.0.1:0\n' "$1"
	printf 'connect = 127.0.0.1:%s\ncert_file = %s\nkey_file = %s\n' \
	    "$2" "$CERTS/rsa.pem" "$CERTS/rsa.key"
	printf 'smtp_timeout = 10s\n%s\n' "${3:-}"
}
{
	printf '[global]\nshutdown_grace = 5s\n'
	route front "$be1" "hostname = front.test
security = may"
	route strict "$be1" "hostname = strict.test
security = encrypt
auth_only = yes
message_size_limit = 12345
banner = strict.test ESMTP ready"
	route last "$be2" "hostname = last.test"
	route dflt "$be2"
} >"$TP_TMP/server.ini"
start_proxy "$TP_TMP/server.ini"
front=$(route_port front)
b1=$TP_TMP/be1.log
# The proxy learns the backend's capabilities with an EHLO probe at start.
wait_file "$b1" 5 ' C: EHLO ' || note "no EHLO probe of the backend seen within 5 s"

# session_of LOG CMD: the number of the backend connection that received CMD
session_of() { grep -F -- " $2" "$1" | head -n 1 | cut -d' ' -f1; }
# cmds_of LOG N: the commands of backend connection N, joined with "|"
cmds_of() { grep "^$2 [CT]: " "$1" | cut -d' ' -f2- | tr '\n' '|'; }

# ---- the proxy's own pre-TLS dialogue
dialog pre "$front" r "s:EHLO c.test" r "s:HELO c.test" r s:NOOP r s:RSET r \
    s:HELP r "s:STARTTLS foo" r s:EHLO r s:QUIT r eof
d=$DLG
expect_reply "greeting '220 front.test ESMTP'" "$d" "" "220 front.test ESMTP"
ehlo=$(reply_to "$d" "EHLO c.test")
echo "$ehlo" | tr '|' '\n' >"$TP_TMP/ehlo.txt"
expect_line "EHLO: first line 250-front.test" "$TP_TMP/ehlo.txt" "250-front.test"
for cap in PIPELINING STARTTLS ENHANCEDSTATUSCODES 8BITMIME "SIZE 10240000" "AUTH PLAIN LOGIN"; do
	expect_match "EHLO advertises $cap" "$TP_TMP/ehlo.txt" "^250[- ]$cap\$"
done
expect_no_match "EHLO never advertises CHUNKING" "$TP_TMP/ehlo.txt" 'CHUNKING'
if echo "$ehlo" | awk -F'|' '{ for (i = 1; i < NF; i++) if ($i !~ /^250-/) exit 1; exit $NF !~ /^250 / }'; then
	pass "EHLO: 250- on every line but the last, '250 ' on the last"
else fail "EHLO: 250- on every line but the last, '250 ' on the last" "$ehlo"; fi
expect_reply "HELO c.test: 250 front.test" "$d" "HELO c.test" "250 front.test"
expect_reply "NOOP: 250 2.0.0 Ok" "$d" "NOOP" "250 2.0.0 Ok"
expect_reply "RSET: 250 2.0.0 Ok" "$d" "RSET" "250 2.0.0 Ok"
expect_reply_match "HELP: 214" "$d" "HELP" '^214[ -]'
expect_reply "STARTTLS foo: 501 5.5.4" "$d" "STARTTLS foo" "501 5.5.4 Syntax: STARTTLS"
expect_reply "EHLO without a name: 501 5.5.4" "$d" "EHLO" "501 5.5.4 Syntax: EHLO hostname"
expect_reply "QUIT: 221 2.0.0 Bye" "$d" "QUIT" "221 2.0.0 Bye"
expect_line "closed after QUIT" "$d" "EOF"
expect_no_match "the backend saw nothing of the pre-TLS dialogue" "$b1" 'c\.test|NOOP|HELP'

# ---- STARTTLS, then a whole message through TLS to the backend
dialog tls "$front" r "s:EHLO c.test" r s:STARTTLS r tls quiet:0.5 \
    "s:EHLO tls.test" r s:STARTTLS r "s:MAIL FROM:<a@example.org>" r \
    "s:RCPT TO:<b@example.com>" r s:DATA r "s:Subject: body test" s: \
    s:STARTTLS "s:MAIL FROM:<evil@example.org>" "s:EHLO evil.test" s:. r \
    s:NOOP r s:QUIT r eof
d=$DLG
expect_reply "STARTTLS: 220 2.0.0 Ready to start TLS" "$d" "STARTTLS" "220 2.0.0 Ready to start TLS"
expect_match "TLS handshake with the proxy" "$d" '^TLS: TLSv1\.[23] '
expect_line "nothing arrives after the handshake before the client speaks (backend greeting consumed)" "$d" "QUIET"
expect_reply "in TLS: the backend's EHLO reply, STARTTLS removed" "$d" "EHLO tls.test" \
    "250-backend.test|250-PIPELINING|250-SIZE 10240000|250-AUTH PLAIN LOGIN|250-ENHANCEDSTATUSCODES|250-8BITMIME|250 CHUNKING"
got=$(reply_to "$d" STARTTLS 2)
if [ "$got" = "554 5.5.1 Error: TLS already active" ]; then pass "in TLS: STARTTLS gets 554 5.5.1 from the proxy"
else fail "in TLS: STARTTLS gets 554 5.5.1 from the proxy" "got '$got'"; fi
expect_reply "in TLS: MAIL: 250" "$d" "MAIL FROM:<a@example.org>" "250 2.0.0 Ok"
expect_reply "in TLS: DATA: 354" "$d" "DATA" "354 End data with <CR><LF>.<CR><LF>"
expect_reply "in TLS: end of data: 250" "$d" "." "250 2.0.0 Ok: queued as TEST"
expect_reply "in TLS: NOOP after the message: 250" "$d" "NOOP" "250 2.0.0 Ok"
expect_reply "in TLS: QUIT: 221" "$d" "QUIT" "221 2.0.0 Bye"
expect_no_match "the client never saw the backend's greeting" "$d" '^S: 220 backend\.test'
n=$(session_of "$b1" "C: MAIL FROM:<a@example.org>")
if [ -n "$n" ]; then
	cmds=$(cmds_of "$b1" "$n")
	exp="C: EHLO tls.test|C: MAIL FROM:<a@example.org>|C: RCPT TO:<b@example.com>|C: DATA|C: NOOP|C: QUIT|"
	if [ "$cmds" = "$exp" ]; then pass "backend got exactly the client's commands from inside TLS"
	else fail "backend got exactly the client's commands from inside TLS" "got '$cmds'"; fi
	expect_line "body line 'STARTTLS' passed untouched" "$b1" "$n body: STARTTLS"
	expect_line "body line 'MAIL FROM:<evil@...>' passed untouched" "$b1" "$n body: MAIL FROM:<evil@example.org>"
	expect_line "body line 'EHLO evil.test' passed untouched" "$b1" "$n body: EHLO evil.test"
else
	fail "backend received the MAIL from inside TLS" "$(oneline "$b1")"
fi
expect_no_match "backend never received a STARTTLS" "$b1" ' [CT]: STARTTLS'
tls='(Anonymous|Untrusted|Trusted|Verified) TLS connection established'
check "log: front: TLS connection established from HOST[127.0.0.1]" \
    log_has "front/[^:]+: $tls from [^ ]*\\[127\\.0\\.0\\.1\\]"
wait_log_count 'front/[^:]+: disconnect in=' 2 3 || true
check "log: front: disconnect in=... out=..." \
    log_has 'front/[^:]+: disconnect in=[0-9.]+[kMG]?B out=[0-9.]+[kMG]?B'

# ---- the last capability line was STARTTLS: the separator is fixed
dialog last "$(route_port last)" r "s:EHLO c.test" r s:STARTTLS r tls "s:EHLO last.test" r s:QUIT r
expect_reply "last: greeting '220 last.test ESMTP'" "$DLG" "" "220 last.test ESMTP"
expect_reply "last: in TLS, STARTTLS removed and the reply ends '250 PIPELINING'" \
    "$DLG" "EHLO last.test" "250-backend2.test|250 PIPELINING"

# ---- security = may: a client that goes on without STARTTLS
dialog plain "$front" r "s:EHLO plain.test" r "s:MAIL FROM:<plain@example.org>" r \
    "s:RCPT TO:<b@example.com>" r s:DATA r "s:Subject: plain" s: s:hello s:. r \
    s:STARTTLS r s:QUIT r eof
d=$DLG
expect_reply "may: MAIL before STARTTLS is relayed: 250 from the backend" "$d" \
    "MAIL FROM:<plain@example.org>" "250 2.0.0 Ok"
expect_reply "may: end of data: 250" "$d" "." "250 2.0.0 Ok: queued as TEST"
expect_reply_match "may: STARTTLS after plaintext relay: 454 4.7.0" "$d" "STARTTLS" \
    '^454 4\.7\.0 TLS not available'
expect_reply "may: QUIT: 221" "$d" "QUIT" "221 2.0.0 Bye"
n=$(session_of "$b1" "C: MAIL FROM:<plain@example.org>")
if [ -n "$n" ]; then
	cmds=$(cmds_of "$b1" "$n")
	exp="C: EHLO plain.test|C: MAIL FROM:<plain@example.org>|C: RCPT TO:<b@example.com>|C: DATA|C: QUIT|"
	if [ "$cmds" = "$exp" ]; then pass "may: backend got the replayed EHLO, then the client's commands"
	else fail "may: backend got the replayed EHLO, then the client's commands" "got '$cmds'"; fi
else fail "may: backend received the plaintext MAIL" "$(oneline "$b1")"; fi

dialog helo "$front" r "s:HELO helo.test" r "s:MAIL FROM:<helo@example.org>" r s:QUIT r eof
expect_reply "may: HELO answered by the proxy" "$DLG" "HELO helo.test" "250 front.test"
expect_reply "may: MAIL after HELO relayed" "$DLG" "MAIL FROM:<helo@example.org>" "250 2.0.0 Ok"
n=$(session_of "$b1" "C: MAIL FROM:<helo@example.org>")
if [ -n "$n" ] && [ "$(cmds_of "$b1" "$n")" = "C: HELO helo.test|C: MAIL FROM:<helo@example.org>|C: QUIT|" ]; then
	pass "may: backend got the replayed HELO"
else fail "may: backend got the replayed HELO" "session '$n': $(cmds_of "$b1" "${n:-0}")"; fi

# ---- security = encrypt, auth_only, configured SIZE and banner
dialog strict "$(route_port strict)" r "s:EHLO c.test" r "s:MAIL FROM:<strict@example.org>" r \
    s:QUIT r eof
d=$DLG
expect_reply "strict: banner" "$d" "" "220 strict.test ESMTP ready"
reply_to "$d" "EHLO c.test" | tr '|' '\n' >"$TP_TMP/ehlo2.txt"
expect_line "strict: EHLO first line 250-strict.test" "$TP_TMP/ehlo2.txt" "250-strict.test"
expect_match "strict: SIZE 12345 (message_size_limit)" "$TP_TMP/ehlo2.txt" '^250[- ]SIZE 12345$'
expect_match "strict: STARTTLS offered" "$TP_TMP/ehlo2.txt" '^250[- ]STARTTLS$'
expect_no_match "strict: no AUTH with auth_only = yes" "$TP_TMP/ehlo2.txt" 'AUTH'
expect_reply "strict: MAIL before STARTTLS: 530 5.7.0" "$d" "MAIL FROM:<strict@example.org>" \
    "530 5.7.0 Must issue a STARTTLS command first"
expect_reply "strict: QUIT: 221" "$d" "QUIT" "221 2.0.0 Bye"
expect_no_match "strict: the backend never saw the MAIL" "$b1" 'strict@example\.org'

# ---- default hostname: the system's
host=$(hostname)
dialog dflt "$(route_port dflt)" r "s:EHLO c.test" r s:QUIT r
expect_reply "dflt: greeting '220 $host ESMTP'" "$DLG" "" "220 $host ESMTP"
expect_match "dflt: EHLO first line 250-$host" "$DLG" "^S: 250-$host\$"

done_testing
