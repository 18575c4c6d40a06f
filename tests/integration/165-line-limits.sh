#!/bin/sh
# 165-line-limits: over-long lines are acted on as soon as they pass the
# limit (spec 4.2.4, 5), never when (or if) their LF comes; every route has
# smtp_timeout = 300s, so a proxy that waits for the LF hangs here and the
# timing checks fail.
#   - client + starttls: an upstream greeting of 100,000 '2's and no LF gets
#     the local client "421 4.5.0 Protocol error: reply line longer than 2048
#     octets from HOST[ADDR]" at once, then close;
#   - server + starttls: a pre-TLS client line of 100 kB and no LF gets
#     "500 5.5.2 Line too long" at once; its LF and the rest of it get no
#     second reply, a NOOP after it exactly one 250; the third over-long
#     line gets "421 4.7.0 Too many errors" (before its LF) and close.
. "$(dirname "$0")/lib.sh"
need_certs

# A greeting that never ends: 100,000 '2's, no CR LF.
up=$(free_port)
start_smtpd up "$up" --greeting "$(awk 'BEGIN { s = "2222222222"
	while (length(s) < 100000) s = s s; printf "%s", substr(s, 1, 100000) }')"
be=$(free_port)
start_smtpd be "$be" --greeting '220 backend.test ESMTP\r\n' \
    --ehlo '250-backend.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n'

{
	printf '[global]\nshutdown_grace = 5s\n'
	printf '\n[cli]\nmode = client\ntls = starttls\nsecurity = encrypt\n'
	printf 'accept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$up"
	printf 'helo_name = proxy.test\nsmtp_timeout = 300s\n'
	printf '\n[srv]\nmode = server\ntls = starttls\nsecurity = may\n'
	printf 'accept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$be"
	printf 'cert_file = %s\nkey_file = %s\n' "$CERTS/rsa.pem" "$CERTS/rsa.key"
	printf 'hostname = srv.test\nsmtp_timeout = 300s\n'
} >"$TP_TMP/lines.ini"
start_proxy "$TP_TMP/lines.ini"
# The backend probe's QUIT: what it learned is in place.
wait_file "$TP_TMP/be.log" 5 '^1 C: QUIT$' || note "no backend probe within 5 s"

# at_once NAME MS: MS is "at once" (well under any timeout; ASan slack)
at_once() {
	check "$1 ($(ms_to_s "$2")s)" [ "$2" -lt $((2000 + TP_SLACK * 1000)) ]
}

# ---- (a) client route: an upstream greeting line that never ends
t0=$(now_ms)
dialog cli "$(route_port cli)" --timeout 10 r eof:5
el=$(($(now_ms) - t0))
expect_reply "cli: 421 4.5.0 for the endless greeting line" "$DLG" "" \
    "421 4.5.0 Protocol error: reply line longer than 2048 octets from 127.0.0.1[127.0.0.1]"
expect_line "cli: closed after the 421" "$DLG" "EOF"
at_once "cli: the 421 and the close came at once, not at smtp_timeout" "$el"
wait_file "$TP_TMP/up.log" 5 '^1 close$' || true
expect_match "cli: the proxy hung up on the upstream" "$TP_TMP/up.log" '^1 close$'
expect_no_match "cli: the upstream got no command" "$TP_TMP/up.log" ' [CT]: '

# ---- (b) server route: a pre-TLS client line that never ends
srv=$(route_port srv)
t0=$(now_ms)
dialog srv-once "$srv" --timeout 10 r big:102400 r
el=$(($(now_ms) - t0))
expect_reply "srv: 100 kB without LF: 500 5.5.2 before any LF" "$DLG" \
    "<102400 octets without CRLF>" "500 5.5.2 Line too long"
at_once "srv: the 500 came at once, not at the LF or smtp_timeout" "$el"

dialog srv "$srv" --timeout 10 r big:102400 r 'x:aaaa\r\nNOOP\r\n' r quiet:1 \
    long:600 r big:100000 r eof:5
d=$DLG
expect_reply "srv: first over-long line: 500 5.5.2 at once" "$d" \
    "<102400 octets without CRLF>" "500 5.5.2 Line too long"
expect_reply "srv: its LF and a NOOP: exactly one 250, no second 500" "$d" \
    '<raw aaaa\r\nNOOP\r\n>' "250 2.0.0 Ok"
expect_line "srv: nothing more after the 250" "$d" "QUIET"
expect_reply "srv: second over-long line: 500 5.5.2" "$d" "<long 600>" \
    "500 5.5.2 Line too long"
expect_reply "srv: third over-long line, no LF: 421 4.7.0 Too many errors" "$d" \
    "<100000 octets without CRLF>" "421 4.7.0 Too many errors"
expect_line "srv: closed after the 421" "$d" "EOF"
expect_no_match "srv: the backend saw only the probe" "$TP_TMP/be.log" \
    '^([2-9]|[1-9][0-9]+) |NOOP|aaaa'

check "the proxy is still running" alive "$PROXY_PID"

done_testing
