#!/bin/sh
# shellcheck disable=SC2154 # the P_NAME port variables are set by eval
# 175-late-failures: spec 4.6 - a failure late in a session reaches the
# client as a reply at a reply boundary (Postfix smtp(8) wording), never as
# a silent close.  Upstreams and backends are tests/peers/smtp_server.py
# with --fault STAGE[:close|reset|silent] (and --implicit for implicit TLS).
#   - client routes, tls = starttls and implicit, security = encrypt: the
#     upstream closes / resets after MAIL, after RCPT, mid-body, after the
#     final "." -> "421 4.4.2 HOST[IP]: Lost connection while sending ...",
#     then EOF; silent after RCPT past idle_timeout -> "Conversation timed
#     out while sending RCPT TO"; an idle local client -> "421 4.4.2
#     HELONAME Error: timeout exceeded";
#   - client + implicit: an upstream that closes / resets after the
#     handshake, before its greeting -> "Lost connection while receiving
#     the initial server greeting"; with a second, healthy connect address
#     the client gets that one's greeting;
#   - server routes (implicit and starttls): backend lost after RCPT ->
#     the 421 inside TLS; backend lost before its greeting -> 421 4.3.0
#     (starttls: logged as such, not as a TLS handshake failure);
#   - never a reply injected mid-reply: "250-first line" then close -> the
#     client reads that line, then EOF, no 421 (also when the line and the
#     close_notify arrive in one segment: smtp_server.py --cork);
#   - a client that reads 221 and drops the connection (FIN or RST, no
#     close_notify) is no news: no info-level "reset by peer".
. "$(dirname "$0")/lib.sh"
need_certs

T=6	# seconds a dialog waits for one reply
tlsup="--cert $CERTS/rsa.pem --key $CERTS/rsa.key"
UPS=
# up NAME [OPTION...]: smtp_server.py on a port of its own ($P_NAME), its
# events in $TP_TMP/NAME.log; started in the background (ups_ready waits).
up() {
	_name=$1
	shift
	_port=$(free_port)
	eval "P_$_name=$_port"
	: >"$TP_TMP/$_name.log"
	# shellcheck disable=SC2086
	spawn "$TP_TMP/$_name.out" "$PY" "$TP_PEERS/smtp_server.py" "$_port" \
	    "$TP_TMP/$_name.log" $tlsup "$@"
	UPS="$UPS $_name"
}
ups_ready() {
	for _n in $UPS; do
		wait_file "$TP_TMP/$_n.out" 10 '^ready' ||
		    bail "smtp_server $_n" "not ready: $(tr '\n' ' ' <"$TP_TMP/$_n.out")"
	done
}
port() { eval echo "\$P_$1"; }

# Client-route upstreams: STARTTLS (_s) and implicit TLS (_i).
for t in s i; do
	imp=
	[ $t = i ] && imp=--implicit
	up "rcptclose_$t" $imp --fault rcpt:close
	up "rcptreset_$t" $imp --fault rcpt:reset
	up "mail_$t" $imp --fault mail:close
	up "body_$t" $imp --fault data:close
	up "dot_$t" $imp --fault dot:close
	up "silent_$t" $imp --fault rcpt:silent
	up "partial_$t" $imp --fault rcpt:close --partial-reply '250-first line\r\n'
	# the same, the line and the close_notify in one segment
	up "partialc_$t" $imp --fault rcpt:close --partial-reply '250-first line\r\n' --cork
done
up gclose_i --implicit --fault greeting:close
up greset_i --implicit --fault greeting:reset
up second_i --implicit --greeting '220 second.test ESMTP healthy\r\n'
# Server-route backends (plaintext).
up be_rcpt --fault rcpt:close
up be_gclose --fault greeting:close
up be_greset --fault greeting:reset
up be_partial --fault rcpt:close --partial-reply '250-first line\r\n'
up be_ok
ups_ready

client() { # NAME TLS CONNECT [IDLE]
	printf '\n[%s]\nmode = client\ntls = %s\nsecurity = encrypt\n' "$1" "$2"
	printf 'accept = 127.0.0.1:0\nconnect = %s\n' "$3"
	printf 'helo_name = late.test\nsmtp_timeout = 5s\nidle_timeout = %s\n' "${4:-10s}"
}
server() { # NAME TLS BACKEND-PORT
	printf '\n[%s]\nmode = server\ntls = %s\nsecurity = may\n' "$1" "$2"
	printf 'accept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$3"
	printf 'cert_file = %s\nkey_file = %s\n' "$CERTS/rsa.pem" "$CERTS/rsa.key"
	printf 'hostname = %s.test\nsmtp_timeout = 5s\nidle_timeout = 10s\n' "$1"
}
{
	printf '[global]\nshutdown_grace = 5s\nlog_level = info\n'
	for t in s i; do
		tls=starttls
		[ $t = i ] && tls=implicit
		for u in rcptclose rcptreset mail body dot partial partialc; do
			client "${u}_$t" $tls "127.0.0.1:$(port "${u}_$t")"
		done
		client "silent_$t" $tls "127.0.0.1:$(port "silent_$t")" 2s
	done
	client gclose_i implicit "127.0.0.1:$P_gclose_i"
	client greset_i implicit "127.0.0.1:$P_greset_i"
	client failover_i implicit "127.0.0.1:$P_gclose_i, 127.0.0.1:$P_second_i"
	client failover2_i implicit "127.0.0.1:$P_greset_i, 127.0.0.1:$P_second_i"
	server si_rcpt implicit "$P_be_rcpt"
	server ss_rcpt starttls "$P_be_rcpt"
	server si_gclose implicit "$P_be_gclose"
	server si_greset implicit "$P_be_greset"
	server ss_gclose starttls "$P_be_gclose"
	server ss_greset starttls "$P_be_greset"
	server si_partial implicit "$P_be_partial"
	server si_quit implicit "$P_be_ok"
} >"$TP_TMP/late.ini"
start_proxy "$TP_TMP/late.ini"

H='127.0.0.1[127.0.0.1]'
lost() { echo "421 4.4.2 $H: Lost connection while $1"; }

# reply_after FILE ERE: the reply (its "S:" lines, joined with "|") that
# follows the first transcript line matching ERE
reply_after() {
	TP_ERE=$2 awk '
		!on && $0 ~ ENVIRON["TP_ERE"] { on = 1; next }
		on && /^S: / { out = out (out == "" ? "" : "|") substr($0, 4); next }
		on { exit }
		END { print out }' "$1"
}
expect_reply_after() { # NAME FILE ERE REPLY
	_got=$(reply_after "$2" "$3")
	if [ "$_got" = "$4" ]; then pass "$1"
	else fail "$1" "expected '$4', got '$_got' [$(oneline "$2")]"; fi
}

# between N LO HI: LO <= N <= HI
between() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

for t in s i; do
	# ---- lost after RCPT (close, reset), after MAIL
	for u in rcptclose rcptreset; do
		n=${u}_$t
		dialog "$n" "$(route_port "$n")" --timeout $T r "s:EHLO c.test" r \
		    "s:MAIL FROM:<$n@example.org>" r "s:RCPT TO:<rcpt@example.com>" r eof:5
		expect_reply "$n: MAIL 250 (relayed)" "$DLG" "MAIL FROM:<$n@example.org>" "250 2.0.0 Ok"
		expect_reply "$n: RCPT: 421 lost connection while sending RCPT TO" "$DLG" \
		    "RCPT TO:<rcpt@example.com>" "$(lost "sending RCPT TO")"
		expect_line "$n: then EOF" "$DLG" EOF
		expect_match "$n: the upstream had its fault" "$TP_TMP/$n.log" ' fault rcpt (close|reset)$'
	done
	n=mail_$t
	dialog "$n" "$(route_port "$n")" --timeout $T r "s:EHLO c.test" r \
	    "s:MAIL FROM:<$n@example.org>" r eof:5
	expect_reply "$n: MAIL: 421 lost connection while sending MAIL FROM" "$DLG" \
	    "MAIL FROM:<$n@example.org>" "$(lost "sending MAIL FROM")"
	expect_line "$n: then EOF" "$DLG" EOF

	# ---- lost mid-body: the reply to "." is the 421
	n=body_$t
	dialog "$n" "$(route_port "$n")" --timeout $T r "s:EHLO c.test" r \
	    "s:MAIL FROM:<$n@example.org>" r "s:RCPT TO:<rcpt@example.com>" r s:DATA r \
	    "s:Subject: $n" s: "s:line 1" "s:line 2" sleep:0.5 s:. r eof:5
	expect_reply_match "$n: DATA 354" "$DLG" DATA '^354 '
	expect_reply "$n: '.': 421 lost connection while sending message body" "$DLG" \
	    "." "$(lost "sending message body")"
	expect_line "$n: then EOF" "$DLG" EOF
	expect_match "$n: the upstream had its fault mid-body" "$TP_TMP/$n.log" ' fault data close$'

	# ---- lost after the final ".", before the reply
	n=dot_$t
	dialog "$n" "$(route_port "$n")" --timeout $T r "s:EHLO c.test" r \
	    "s:MAIL FROM:<$n@example.org>" r "s:RCPT TO:<rcpt@example.com>" r s:DATA r \
	    "s:Subject: $n" s: "s:line 1" s:. r eof:5
	expect_reply "$n: '.': 421 lost connection while sending end of data" "$DLG" \
	    "." "$(lost "sending end of data -- message may be sent more than once")"
	expect_line "$n: then EOF" "$DLG" EOF
	expect_match "$n: the upstream got the whole message" "$TP_TMP/$n.log" ' fault dot close$'

	# ---- never a 421 in the middle of a reply; nor is the part of the
	# reply that came lost, even when the close came with it
	for n in partial_$t partialc_$t; do
		dialog "$n" "$(route_port "$n")" --timeout $T r "s:EHLO c.test" r \
		    "s:MAIL FROM:<$n@example.org>" r "s:RCPT TO:<rcpt@example.com>" r eof:5
		expect_reply "$n: RCPT: '250-first line', then EOF" "$DLG" \
		    "RCPT TO:<rcpt@example.com>" "250-first line|<EOF>"
		expect_no_match "$n: no 421 at all" "$DLG" '^S: 421'
	done
done

# ---- silent upstream after RCPT, and an idle local client (idle_timeout
# 2s): four sessions at once, each timed
timed() { # NAME PORT STEP...
	_n=$1
	shift
	# shellcheck disable=SC2016
	spawn "$TP_TMP/$_n.dlg" sh -c 't0=$(date +%s%N); "$@"; echo "ms=$((($(date +%s%N) - t0) / 1000000))"' \
	    sh "$PY" "$TP_PEERS/smtp_dialog.py" --timeout 8 "$@"
	TIMED="$TIMED $BG_PID"
}
TIMED=
for t in s i; do
	timed "silent_$t" "$(route_port "silent_$t")" r "s:EHLO c.test" r \
	    "s:MAIL FROM:<silent_$t@example.org>" r "s:RCPT TO:<rcpt@example.com>" r eof:5
	timed "idle_$t" "$(route_port "silent_$t")" r "s:EHLO c.test" r quiet:0.5 r eof:5
done
for p in $TIMED; do wait_pid "$p" 20; done
for t in s i; do
	d=$TP_TMP/silent_$t.dlg
	expect_reply "silent_$t: RCPT: 421 conversation timed out while sending RCPT TO" "$d" \
	    "RCPT TO:<rcpt@example.com>" "421 4.4.2 $H: Conversation timed out while sending RCPT TO"
	expect_line "silent_$t: then EOF" "$d" EOF
	ms=$(sed -n 's/^ms=//p' "$d")
	check "silent_$t: the 421 came after idle_timeout 2s (session took ${ms:-?} ms)" \
	    between "${ms:-0}" 2000 $((4500 + TP_SLACK * 1000))
	d=$TP_TMP/idle_$t.dlg
	expect_reply_match "idle_$t: EHLO answered by the upstream" "$d" "EHLO c.test" '^250-upstream\.test\|'
	expect_reply_after "idle_$t: idle client: 421 4.4.2 late.test Error: timeout exceeded" "$d" \
	    '^QUIET$' "421 4.4.2 late.test Error: timeout exceeded"
	expect_line "idle_$t: then EOF" "$d" EOF
	ms=$(sed -n 's/^ms=//p' "$d")
	check "idle_$t: after idle_timeout 2s (session took ${ms:-?} ms)" \
	    between "${ms:-0}" 2000 $((4500 + TP_SLACK * 1000))
done
expect_match "log: lost connection while sending RCPT TO" "$PROXY_LOG" \
    ": rcptclose_s/[^ ]*: lost connection with 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$P_rcptclose_s while sending RCPT TO"
expect_match "log: conversation timed out while sending RCPT TO" "$PROXY_LOG" \
    ": silent_i/[^ ]*: conversation timed out with 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$P_silent_i while sending RCPT TO"

# ---- client + implicit: lost after the handshake, before the greeting
for m in close reset; do
	n=g${m}_i
	dialog "$n" "$(route_port "$n")" --timeout $T r eof:5
	expect_reply "$n: greeting: 421 lost connection while receiving the initial server greeting" \
	    "$DLG" "" "$(lost "receiving the initial server greeting")"
	expect_line "$n: then EOF" "$DLG" EOF
done
expect_match "gclose_i: the upstream completed the handshake" "$TP_TMP/gclose_i.log" '^[0-9]+ tls ok TLSv1'
expect_match "greset_i: the upstream completed the handshake" "$TP_TMP/greset_i.log" '^[0-9]+ tls ok TLSv1'
for n in failover_i failover2_i; do
	dialog "$n" "$(route_port "$n")" --timeout $T r "s:EHLO c.test" r s:QUIT r eof:5
	expect_reply "$n: the second address's greeting" "$DLG" "" "220 second.test ESMTP healthy"
	expect_reply "$n: QUIT 221 from the second" "$DLG" QUIT "221 2.0.0 Bye"
done

# ---- server routes: the backend lost after RCPT, inside TLS
dialog si_rcpt "$(route_port si_rcpt)" --tls --timeout $T r "s:EHLO c.test" r \
    "s:MAIL FROM:<si_rcpt@example.org>" r "s:RCPT TO:<rcpt@example.com>" r eof:5
expect_match "si_rcpt: implicit TLS" "$DLG" '^TLS: TLSv1\.[23] '
expect_reply "si_rcpt: RCPT: 421 lost connection while sending RCPT TO" "$DLG" \
    "RCPT TO:<rcpt@example.com>" "$(lost "sending RCPT TO")"
expect_line "si_rcpt: then EOF" "$DLG" EOF
dialog ss_rcpt "$(route_port ss_rcpt)" --timeout $T r "s:EHLO c.test" r s:STARTTLS r tls \
    "s:EHLO in.test" r "s:MAIL FROM:<ss_rcpt@example.org>" r "s:RCPT TO:<rcpt@example.com>" r eof:5
expect_match "ss_rcpt: STARTTLS" "$DLG" '^TLS: TLSv1\.[23] '
expect_reply "ss_rcpt: RCPT: 421 lost connection while sending RCPT TO" "$DLG" \
    "RCPT TO:<rcpt@example.com>" "$(lost "sending RCPT TO")"
expect_line "ss_rcpt: then EOF" "$DLG" EOF

# ---- server routes: the backend lost before its greeting
for n in si_gclose si_greset; do
	dialog "$n" "$(route_port "$n")" --tls --timeout $T r eof:5
	expect_match "$n: implicit TLS" "$DLG" '^TLS: TLSv1\.[23] '
	expect_reply "$n: greeting inside TLS: 421 4.3.0" "$DLG" "" \
	    "421 4.3.0 Server unavailable, try again later"
	expect_line "$n: then EOF" "$DLG" EOF
done
for n in ss_gclose ss_greset; do
	dialog "$n" "$(route_port "$n")" --timeout $T r "s:EHLO c.test" r s:STARTTLS r tls r eof:5
	expect_match "$n: STARTTLS" "$DLG" '^TLS: TLSv1\.[23] '
	expect_reply_after "$n: inside TLS right after the handshake: 421 4.3.0" "$DLG" \
	    '^TLS: ' "421 4.3.0 Server unavailable, try again later"
	expect_line "$n: then EOF" "$DLG" EOF
	# (a reset that beats the connect callback fails the connect itself)
	expect_match "$n: log: lost connection while reading the backend's greeting" "$PROXY_LOG" \
	    ": $n/[^ ]*: (127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:[0-9]+: lost connection while reading the backend's greeting|connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:[0-9]+: connection reset by peer)"
	expect_no_match "$n: log: not a TLS handshake failure" "$PROXY_LOG" \
	    ": $n/.*Cannot start TLS: handshake failure"
done

# ---- server route: never a 421 in the middle of a reply
dialog si_partial "$(route_port si_partial)" --tls --timeout $T r "s:EHLO c.test" r \
    "s:MAIL FROM:<si_partial@example.org>" r "s:RCPT TO:<rcpt@example.com>" r eof:5
expect_reply "si_partial: RCPT: '250-first line', then EOF" "$DLG" \
    "RCPT TO:<rcpt@example.com>" "250-first line|<EOF>"
expect_no_match "si_partial: no 421 at all" "$DLG" '^S: 421'

# ---- a client that reads 221 and drops the connection without reading
# our close_notify (FIN or RST): no info-level "reset by peer"
i=0
for how in close reset close reset close reset close reset close reset; do
	i=$((i + 1))
	dialog "quit$i" "$(route_port si_quit)" --tls --timeout $T r "s:EHLO c.test" r \
	    s:QUIT r "$how"
	expect_reply "si_quit $i ($how): QUIT 221" "$DLG" QUIT "221 2.0.0 Bye"
done
wait_log_count ': si_quit/[^ ]*: disconnect ' 10 5 ||
    note "si_quit: $(log_count ': si_quit/[^ ]*: disconnect ') of 10 sessions ended within 5 s"
check "si_quit: all 10 sessions ended" [ "$(log_count ': si_quit/[^ ]*: disconnect ')" = 10 ]
expect_no_match "si_quit: no 'reset by peer' logged (log_level = info)" "$PROXY_LOG" \
    ': si_quit/.*reset by peer'

check "the proxy is still running" alive "$PROXY_PID"

done_testing
