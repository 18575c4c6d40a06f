#!/bin/sh
# 166-no-xclient: a client must not speak for the proxy (spec 5), pre-TLS.
# The backend (tests/peers/smtp_server.py) advertises XCLIENT, XFORWARD and
# PIPECONNECT, and the server route's probe learns its keywords at start;
# a backend that trusts its loopback peer would take XCLIENT from anyone
# the proxy passes it on for.
#   - the proxy's pre-TLS EHLO reply keeps the backend's other keywords
#     (so they were learned) but never offers XCLIENT, XFORWARD, PIPECONNECT;
#   - XCLIENT and XFORWARD, with any arguments, get "550 5.7.0 Error:
#     insufficient authorization" from the proxy at may and at encrypt, and
#     never reach the backend; at may they do not start the plaintext relay,
#     the next command does, and the backend sees that one.
. "$(dirname "$0")/lib.sh"
need_certs

be=$(free_port)
start_smtpd be "$be" --greeting '220 backend.test ESMTP\r\n' \
    --ehlo '250-backend.test\r\n250-PIPELINING\r\n250-XCLIENT NAME ADDR PROTO HELO\r\n250-XFORWARD NAME ADDR PROTO HELO SOURCE\r\n250-PIPECONNECT\r\n250-DSN\r\n250-STARTTLS\r\n250 8BITMIME\r\n'
b=$TP_TMP/be.log

route() { # NAME SECURITY
	printf '\n[%s]\nmode = server\ntls = starttls\nsecurity = %s\n' "$1" "$2"
	printf 'accept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$be"
	printf 'cert_file = %s\nkey_file = %s\n' "$CERTS/rsa.pem" "$CERTS/rsa.key"
	printf 'hostname = %s.test\nsmtp_timeout = 10s\n' "$1"
}
{
	printf '[global]\nshutdown_grace = 5s\n'
	route may may
	route enc encrypt
} >"$TP_TMP/xc.ini"
start_proxy "$TP_TMP/xc.ini"
# One probe per route; each sends QUIT once it has learned the keywords.
wait_log_count ' C: QUIT$' 2 5 "$b" || note "backend probes not done within 5 s"
probes=$(grep -c ' connect from ' "$b" || true)

NO_AUTHZ="550 5.7.0 Error: insufficient authorization"

for r in may enc; do
	dialog "pre-$r" "$(route_port $r)" r "s:EHLO c.test" r \
	    "s:XCLIENT ADDR=1.2.3.4" r "s:xforward NAME=spoofed.example ADDR=1.2.3.4" r \
	    'x:\tXCLIENT\tADDR=1.2.3.4 NAME=spoofed.example\r\n' r s:NOOP r s:QUIT r eof
	d=$DLG
	reply_to "$d" "EHLO c.test" | tr '|' '\n' >"$TP_TMP/ehlo-$r.txt"
	for cap in PIPELINING DSN 8BITMIME STARTTLS; do
		expect_match "$r: EHLO offers the learned $cap" "$TP_TMP/ehlo-$r.txt" \
		    "^250[- ]$cap\$"
	done
	expect_no_match "$r: EHLO never offers XCLIENT, XFORWARD, PIPECONNECT" \
	    "$TP_TMP/ehlo-$r.txt" '(XCLIENT|XFORWARD|PIPECONNECT)'
	expect_reply "$r: XCLIENT ADDR=1.2.3.4: 550 5.7.0 from the proxy" "$d" \
	    "XCLIENT ADDR=1.2.3.4" "$NO_AUTHZ"
	expect_reply "$r: xforward ...: 550 5.7.0 from the proxy" "$d" \
	    "xforward NAME=spoofed.example ADDR=1.2.3.4" "$NO_AUTHZ"
	expect_reply "$r: TAB-separated XCLIENT: 550 5.7.0 from the proxy" "$d" \
	    '<raw \tXCLIENT\tADDR=1.2.3.4 NAME=spoofed.example\r\n>' "$NO_AUTHZ"
	expect_reply "$r: the dialogue goes on: NOOP 250" "$d" NOOP "250 2.0.0 Ok"
	expect_reply "$r: QUIT 221" "$d" QUIT "221 2.0.0 Bye"
done
check "no backend connection but the probes ($(grep -c ' connect from ' "$b") of $probes)" \
    [ "$(grep -c ' connect from ' "$b")" = "$probes" ]

# At may, the command after the XCLIENT starts the plaintext relay; the
# backend gets the replayed EHLO and that command, never the XCLIENT.
dialog relay "$(route_port may)" r "s:EHLO relay.test" r "s:XCLIENT ADDR=1.2.3.4" r \
    "s:MAIL FROM:<relay@example.org>" r s:QUIT r eof
d=$DLG
expect_reply "relay: XCLIENT: 550 5.7.0 from the proxy" "$d" \
    "XCLIENT ADDR=1.2.3.4" "$NO_AUTHZ"
expect_reply "relay: MAIL relayed to the backend: 250" "$d" \
    "MAIL FROM:<relay@example.org>" "250 2.0.0 Ok"
n=$(grep -F ' C: MAIL FROM:<relay@example.org>' "$b" | cut -d' ' -f1)
check "relay: the backend got the MAIL" [ -n "$n" ]
expect_match "relay: the backend got the replayed EHLO" "$b" "^$n C: EHLO relay\\.test\$"
# any case, any leading white space: nothing of the sort reached it
expect_no_match "the backend never saw XCLIENT or XFORWARD" "$b" \
    ' [CT]: .*([Xx][Cc][Ll][Ii][Ee][Nn][Tt]|[Xx][Ff][Oo][Rr][Ww][Aa][Rr][Dd])'

check "the proxy is still running" alive "$PROXY_PID"

done_testing
