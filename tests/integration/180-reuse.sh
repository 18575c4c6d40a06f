#!/bin/sh
# 180-reuse: connection reuse on client routes (spec 4.7,
# connection_reuse = yes).  The local client's QUIT goes up as RSET; on
# 250 the upstream connection waits in the worker's pool and the next
# client of the route gets it: the greeting and EHLO reply the first
# client saw come from the proxy, its commands go straight up.
#   Part 1, a real Postfix smtpd upstream (STARTTLS and wrappermode): two
#   clients in a row share one upstream session - Postfix logs one
#   connection with two transactions (mail=2 rset=2) - and the second
#   client sees the first one's greeting and EHLO reply.
#   Part 2, scripted upstreams (tests/peers/smtp_server.py): a connection
#   the server closes, answers 421 on, or speaks on while it is kept is
#   never handed out; RSET refused -> closed, the client still gets 221;
#   a reload, connection_cache_time and connection_reuse_count end kept
#   connections; HELO on a reused connection; 12 clients at once: no
#   upstream session carries two transactions at a time, every message
#   arrives once, connection_cache_size bounds the pool; metrics.
. "$(dirname "$0")/lib.sh"
need_certs

STATS() { sed -n 's/.*stats: listening on .*:\([0-9][0-9]*\) (GET \/metrics)$/\1/p' "$PROXY_LOG" | tail -n 1; }
# metric NAME ROUTE: the value of NAME{route="ROUTE"} now
metric() {
	curl -s -m 5 -o "$TP_TMP/m.txt" "http://127.0.0.1:$(STATS)/metrics" || { echo none; return; }
	"$PY" "$TP_PEERS/prom.py" get "$TP_TMP/m.txt" "$1" "route=$2"
}
# msg NAME PORT SUBJECT [GREETING-CMD]: one message, then QUIT and EOF
msg() {
	dialog "$1" "$2" r "s:${4:-EHLO client.test}" r "s:MAIL FROM:<a@example.org>" r \
	    "s:RCPT TO:<u@example.com>" r s:DATA r "s:Subject: $3" s: s:. r s:QUIT r eof
}
# delivered NAME: the message was accepted and the session ended with 221
delivered() {
	expect_reply_match "$1: message accepted" "$TP_TMP/$1.dlg" . '^250 '
	expect_reply "$1: QUIT answered 221" "$TP_TMP/$1.dlg" QUIT "221 2.0.0 Bye"
	expect_line "$1: the proxy then closed" "$TP_TMP/$1.dlg" EOF
}

# ------------------------------------------------------------------ Part 1
if command -v postfix >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	pfs=$(free_port)
	pfi=$(free_port)
	pf_init up
	up=$PF_DIR
	tls="-o smtpd_tls_cert_file=$CERTS/rsa.pem -o smtpd_tls_key_file=$CERTS/rsa.key"
	pf_main "$up" smtpd_client_connection_rate_limit=0 \
	    smtpd_client_connection_count_limit=0 smtpd_client_message_rate_limit=0
	pf_master "$up" "127.0.0.1:$pfs inet n - n - 10 smtpd -o smtpd_tls_security_level=may $tls"
	pf_master "$up" "127.0.0.1:$pfi inet n - n - 10 smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt $tls"
	pf_start "$up"
	uplog=$(pf_log "$up")
	for p in $pfs $pfi; do
		wait_port "$p" 10 || bail "postfix" "smtpd not listening on $p"
	done
	cat >"$TP_TMP/pf.ini" <<EOF
[global]
workers = 1
stats = 127.0.0.1:0
shutdown_grace = 2s

[cs]
mode = client
tls = starttls
security = encrypt
helo_name = reuse.test
accept = 127.0.0.1:0
connect = 127.0.0.1:$pfs
connection_reuse = yes
connection_cache_time = 2s

[ci]
mode = client
tls = implicit
security = encrypt
accept = 127.0.0.1:0
connect = 127.0.0.1:$pfi
connection_reuse = yes
connection_cache_time = 2s
EOF
	start_proxy "$TP_TMP/pf.ini"
	for r in cs ci; do
		before=$(grep -c 'smtpd\[[0-9]*\]: connect from' "$uplog" || true)
		msg "${r}1" "$(route_port $r)" "$r first"
		msg "${r}2" "$(route_port $r)" "$r second"
		delivered "${r}1"
		delivered "${r}2"
		g1=$(reply_to "$TP_TMP/${r}1.dlg" "")
		g2=$(reply_to "$TP_TMP/${r}2.dlg" "")
		check "$r: the second client gets the first one's greeting ($g2)" [ -n "$g1" ] && [ "$g1" = "$g2" ]
		e1=$(reply_to "$TP_TMP/${r}1.dlg" "EHLO client.test")
		e2=$(reply_to "$TP_TMP/${r}2.dlg" "EHLO client.test")
		check "$r: ... and its EHLO reply ($e2)" [ -n "$e1" ] && [ "$e1" = "$e2" ]
		check "$r: no STARTTLS in the kept EHLO reply" sh -c "! echo '$e2' | grep -qi starttls"
		# one connection, two transactions; Postfix logs it when the
		# kept connection ends (connection_cache_time = 2s)
		i=0
		while [ "$(grep -c 'smtpd\[[0-9]*\]: disconnect from' "$uplog" || true)" -le "$before" ] && [ $i -lt 60 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		after=$(grep -c 'smtpd\[[0-9]*\]: connect from' "$uplog" || true)
		check "$r: Postfix saw one connection for two clients (got $((after - before)))" [ $((after - before)) = 1 ]
		last=$(grep 'smtpd\[[0-9]*\]: disconnect from' "$uplog" | tail -n 1)
		note "$r: $last"
		check "$r: ... carrying two transactions, each ended by RSET" \
		    sh -c "echo '$last' | grep -q ' mail=2 rcpt=2 data=2 rset=2 .*commands='"
		check "$r: ... and a QUIT when the pool closed it idle" sh -c "echo '$last' | grep -q ' quit=1 '"
		check "$r: the proxy logged the reuse" [ "$(log_count "$r/[0-9a-f]+: reusing connection to 127.0.0.1\\[127.0.0.1\\]:[0-9]+ \\(session 2, ")" = 1 ]
		check "$r: tlsproxy_reuse_total = 1" [ "$(metric tlsproxy_reuse_total $r)" = 1 ]
	done
	check "Postfix: two messages per route reached cleanup" [ "$(grep -c 'cleanup\[[0-9]*\]: [0-9A-F]*: message-id' "$uplog" || true)" = 4 ]
	# Postfix's smtp-source as the legacy MTA: HELO, and QUIT without
	# waiting for its reply (as Postfix's smtp_skip_quit_response)
	if command -v smtp-source >/dev/null 2>&1; then
		c0=$(grep -c 'smtpd\[[0-9]*\]: connect from' "$uplog" || true)
		m0=$(grep -c 'cleanup\[[0-9]*\]: [0-9A-F]*: message-id' "$uplog" || true)
		timeout 60 smtp-source -s 1 -m 6 -l 300 -t u@example.com "127.0.0.1:$(route_port cs)" \
		    >"$TP_TMP/src.out" 2>&1 || note "smtp-source: $(cat "$TP_TMP/src.out")"
		i=0
		while [ "$(grep -c 'cleanup\[[0-9]*\]: [0-9A-F]*: message-id' "$uplog" || true)" -lt $((m0 + 6)) ] && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		c1=$(grep -c 'smtpd\[[0-9]*\]: connect from' "$uplog" || true)
		m1=$(grep -c 'cleanup\[[0-9]*\]: [0-9A-F]*: message-id' "$uplog" || true)
		check "smtp-source: 6 messages (HELO, QUIT unread) reached Postfix (got $((m1 - m0)))" [ $((m1 - m0)) = 6 ]
		check "smtp-source: over one upstream connection (got $((c1 - c0)))" [ $((c1 - c0)) = 1 ]
	fi
	# (wait_port's probe connections are lost after CONNECT)
	expect_no_match "Postfix: no lost connection in a session" "$uplog" \
	    'lost connection after (EHLO|STARTTLS|MAIL|RCPT|DATA|END-OF-MESSAGE|RSET)'
	stop_proxy
	check_sanitizers "$PROXY_LOG"
else
	note "Part 1 skipped: needs root and postfix"
fi

# ------------------------------------------------------------------ Part 2
# one scripted upstream per behaviour, all implicit TLS
i=0
for b in plain close 421 noise refuse reload idle count many; do
	i=$((i + 1))
	eval "p_$b=\$(free_port)"
	eval "_p=\$p_$b"
	case $b in
	close) extra="--after-rset close:0.2" ;;
	421) extra="--after-rset 421:0.2" ;;
	noise) extra="--after-rset noise:0.2" ;;
	refuse) extra="--rset-reply 502\\x205.5.2\\x20no\\r\\n" ;;
	*) extra= ;;
	esac
	# shellcheck disable=SC2086
	start_smtpd "$b" "$_p" --cert "$CERTS/rsa.pem" --key "$CERTS/rsa.key" --implicit $extra
done
route() { # NAME [EXTRA LINE]
	eval "_p=\$p_$1"
	printf '\n[%s]\nmode = client\ntls = implicit\nsecurity = encrypt\naccept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\nconnection_reuse = yes\n%s\n' \
	    "$1" "$_p" "${2:-connection_cache_time = 10s}"
}
{
	printf '[global]\nworkers = 1\nstats = 127.0.0.1:0\nshutdown_grace = 2s\n'
	route plain
	route close
	route 421
	route noise
	route refuse
	route reload
	route idle "connection_cache_time = 1s"
	route count "connection_reuse_count = 2
connection_cache_time = 10s"
	route many "connection_cache_size = 3
connection_cache_time = 10s"
} >"$TP_TMP/s.ini"
start_proxy "$TP_TMP/s.ini"
# conns NAME: connections the upstream NAME has accepted
conns() { grep -c '^[0-9]* connect from' "$TP_TMP/$1.log" || true; }

# plain: reused, and HELO on the reused connection gets the kept name
msg plain1 "$(route_port plain)" "p1"
msg plain2 "$(route_port plain)" "p2" "HELO client.test"
delivered plain1
delivered plain2
expect_reply "plain: HELO on a reused connection: the kept name" "$TP_TMP/plain2.dlg" \
    "HELO client.test" "250 upstream.test"
check "plain: one upstream connection (got $(conns plain))" [ "$(conns plain)" = 1 ]
check "plain: the upstream saw one EHLO and no HELO" \
    [ "$(grep -ci ' T: \(ehlo\|helo\)' "$TP_TMP/plain.log")" = 1 ]
check "plain: the upstream saw RSET for each QUIT, never QUIT" \
    [ "$(grep -c ' T: RSET$' "$TP_TMP/plain.log")" = 2 ] && [ "$(grep -c ' T: QUIT' "$TP_TMP/plain.log")" = 0 ]
# greeting (2 lines), HELO, MAIL, RCPT, DATA, ".", QUIT: 8 reply lines
check "plain: the RSET's 250 never reached a client (reply lines $(grep -c '^S: ' "$TP_TMP/plain2.dlg"))" \
    [ "$(grep -c '^S: ' "$TP_TMP/plain2.dlg")" = 8 ]
check "plain: one connection kept now (tlsproxy_reuse_idle)" [ "$(metric tlsproxy_reuse_idle plain)" = 1 ]

# a client that sends QUIT and goes without reading the 221 (Postfix's
# smtp_skip_quit_response = yes), even with a reset: still kept, reused
dialog plain3 "$(route_port plain)" r "s:EHLO client.test" r "s:MAIL FROM:<a@example.org>" r \
    "s:RCPT TO:<u@example.com>" r s:DATA r "s:Subject: p3" s: s:. r s:QUIT close
dialog plain4 "$(route_port plain)" r "s:EHLO client.test" r s:QUIT reset
msg plain5 "$(route_port plain)" "p5"
delivered plain5
check "plain: clients gone right after QUIT did not cost the connection (connections $(conns plain))" \
    [ "$(conns plain)" = 1 ]
check "plain: ... 4 messages over it" [ "$(grep -c ' body: Subject: p[0-9]' "$TP_TMP/plain.log")" = 4 ]

# close / 421 / noise: the kept connection ends; the next client connects
for b in close 421 noise; do
	msg "${b}1" "$(route_port $b)" "${b}1"
	wait_file "$TP_TMP/$b.log" 5 "^1 after-rset $b" || note "$b: no after-rset event"
	j=0
	while [ "$(metric tlsproxy_reuse_idle $b)" != 0 ] && [ $j -lt 30 ]; do sleep 0.1; j=$((j + 1)); done
	msg "${b}2" "$(route_port $b)" "${b}2"
	delivered "${b}1"
	delivered "${b}2"
	check "$b: the kept connection was dropped, the next client got a new one (connections $(conns $b))" \
	    [ "$(conns $b)" = 2 ]
	check "$b: tlsproxy_reuse_expired_total = 1" [ "$(metric tlsproxy_reuse_expired_total $b)" = 1 ]
	check "$b: nothing reused" [ "$(metric tlsproxy_reuse_total $b)" = 0 ]
done

# refuse: RSET refused -> closed at once; the client still gets its 221
msg refuse1 "$(route_port refuse)" "r1"
delivered refuse1
wait_file "$TP_TMP/refuse.log" 5 '^1 close' || true
check "refuse: the upstream connection was closed" grep -q '^1 close' "$TP_TMP/refuse.log"
check "refuse: nothing kept" [ "$(metric tlsproxy_reuse_idle refuse)" = 0 ]
msg refuse2 "$(route_port refuse)" "r2"
delivered refuse2
check "refuse: two upstream connections" [ "$(conns refuse)" = 2 ]

# reload: a kept connection is never reused under a new generation
msg reload1 "$(route_port reload)" "l1"
check "reload: one connection kept" [ "$(metric tlsproxy_reuse_idle reload)" = 1 ]
n0=$(log_count 'reloaded configuration')
kill -HUP "$PROXY_PID"
wait_log_count 'reloaded configuration' $((n0 + 1)) 5 || fail "reload" "no 'reloaded configuration' line"
wait_file "$TP_TMP/reload.log" 5 '^1 close' || true
check "reload: the kept connection was closed by the reload" grep -q '^1 close' "$TP_TMP/reload.log"
msg reload2 "$(route_port reload)" "l2"
delivered reload2
check "reload: the next client got a new connection" [ "$(conns reload)" = 2 ]
check "reload: nothing reused" [ "$(log_count 'reload/[0-9a-f]+: reusing')" = 0 ]

# idle: connection_cache_time = 1s
msg idle1 "$(route_port idle)" "i1"
sleep 1.6
check "idle: the kept connection ended after connection_cache_time" grep -q '^1 close' "$TP_TMP/idle.log"
msg idle2 "$(route_port idle)" "i2"
delivered idle2
check "idle: the next client got a new connection" [ "$(conns idle)" = 2 ]

# count: connection_reuse_count = 2: sessions 1 and 2 share, 3 is new
for k in 1 2 3; do msg "count$k" "$(route_port count)" "c$k"; done
delivered count3
check "count: three sessions over two connections (got $(conns count))" [ "$(conns count)" = 2 ]
check "count: the first connection carried two transactions" \
    [ "$(grep -ci '^1 T: mail' "$TP_TMP/count.log")" = 2 ]
check "count: ... and was closed after the second" grep -q '^1 close' "$TP_TMP/count.log"

# many: 12 clients at once, twice; connection_cache_size = 3
for round in a b; do
	pids=
	for k in 1 2 3 4 5 6 7 8 9 10 11 12; do
		msg "many$round$k" "$(route_port many)" "many-$round-$k" &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p" || true; done
	ok=0
	for k in 1 2 3 4 5 6 7 8 9 10 11 12; do
		grep -q '^S: 221 2.0.0 Bye$' "$TP_TMP/many$round$k.dlg" && ok=$((ok + 1))
	done
	check "many ($round): 12 of 12 sessions ended with 221 (got $ok)" [ $ok = 12 ]
	idle=$(metric tlsproxy_reuse_idle many)
	check "many ($round): at most 3 connections kept (got $idle)" [ "$idle" -le 3 ]
done
# every message arrived exactly once
dup=0
for round in a b; do
	for k in 1 2 3 4 5 6 7 8 9 10 11 12; do
		c=$(grep -c "body: Subject: many-$round-$k\$" "$TP_TMP/many.log" || true)
		[ "$c" = 1 ] || dup=$((dup + 1))
	done
done
check "many: each of 24 messages reached the upstream exactly once" [ $dup = 0 ]
check "many: the second round reused kept connections (tlsproxy_reuse_total $(metric tlsproxy_reuse_total many))" \
    [ "$(metric tlsproxy_reuse_total many)" -ge 1 ]
check "many: fewer than 24 upstream connections (got $(conns many))" [ "$(conns many)" -lt 24 ]
# no upstream session carried two transactions at once: on each connection
# the commands follow (EHLO) (MAIL RCPT DATA RSET)*
bad=$(awk '$2 == "T:" { n = $1; v = toupper($3); s = st[n]
	if (v == "EHLO") { if (s != "") bad++; st[n] = "E" }
	else if (v == "MAIL") { if (s != "E" && s != "R") bad++; st[n] = "M" }
	else if (v == "RCPT") { if (s != "M") bad++; st[n] = "T" }
	else if (v == "DATA") { if (s != "T") bad++; st[n] = "D" }
	else if (v == "RSET") { if (s != "D") bad++; st[n] = "R" }
	else bad++ }
	END { print bad + 0 }' "$TP_TMP/many.log")
check "many: every upstream connection ran its transactions one at a time ($bad out of order)" [ "$bad" = 0 ]

stop_proxy
check_sanitizers "$PROXY_LOG"
done_testing
