#!/bin/sh
# 170-closing: spec 4.6 Closing, against a real Postfix smtpd upstream.  A
# local client that sends ".\r\nQUIT\r\n" in one write and shuts down its
# side at once (Exim's way) must still get the upstream's 250 and 221: the
# proxy passes both commands on together and relays the half-close only
# after the 221.  Before the fix, the close_notify + FIN left right behind
# the commands, Postfix closed with it unread, and its RST took the replies
# away: Exim deferred mail that Postfix had accepted, then sent it again.
#   halfclose_client -> [cs] client+starttls -> Postfix smtpd (STARTTLS)
#                    -> [ci] client+implicit -> Postfix smtpd (wrappermode)
. "$(dirname "$0")/lib.sh"
require_tool postfix postconf
require_root
need_certs

N=${TP_CLOSING_N:-60}
pfs=$(free_port)
pfi=$(free_port)
pf_init up
up=$PF_DIR
tls="-o smtpd_tls_cert_file=$CERTS/rsa.pem -o smtpd_tls_key_file=$CERTS/rsa.key"
pf_main "$up" smtpd_client_connection_rate_limit=0 \
    smtpd_client_connection_count_limit=0 smtpd_client_message_rate_limit=0
pf_master "$up" "127.0.0.1:$pfs inet n - n - 50 smtpd -o smtpd_tls_security_level=may $tls"
pf_master "$up" "127.0.0.1:$pfi inet n - n - 50 smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt $tls"
pf_start "$up"
uplog=$(pf_log "$up")
for p in $pfs $pfi; do
	wait_port "$p" 10 || bail "postfix" "smtpd not listening on $p: $(tail -n 5 "$uplog" | tr '\n' ' ')"
done

cat >"$TP_TMP/closing.ini" <<EOF2
[global]
shutdown_grace = 5s

[cs]
mode = client
tls = starttls
security = encrypt
helo_name = closing.test
accept = 127.0.0.1:0
connect = 127.0.0.1:$pfs

[ci]
mode = client
tls = implicit
security = encrypt
accept = 127.0.0.1:0
connect = 127.0.0.1:$pfi
EOF2
start_proxy "$TP_TMP/closing.ini"

for r in cs ci; do
	"$PY" "$TP_PEERS/halfclose_client.py" "$(route_port "$r")" "$N" 4 \
	    >"$TP_TMP/$r.out" 2>&1 || true
	sum=$(grep '^sessions=' "$TP_TMP/$r.out" || echo "no summary")
	note "$r: $sum"
	check "$r: every one of $N sessions got the 250 to '.' ($sum)" \
	    grep -q "^sessions=$N got250=$N " "$TP_TMP/$r.out"
	check "$r: every one of $N sessions got the 221 to QUIT ($sum)" \
	    grep -q "^sessions=$N got250=[0-9]* got221=$N\$" "$TP_TMP/$r.out"
	[ "$(grep -c '^session ' "$TP_TMP/$r.out")" = 0 ] ||
	    note "$(grep -m 3 '^session ' "$TP_TMP/$r.out")"
done

# Postfix saw a QUIT from every session, and none ended otherwise.
wait_log_count 'smtpd\[[0-9]+\]: disconnect from ' $((2 * N)) 10 "$uplog" || true
quits=$(grep -c 'smtpd\[[0-9]*\]: disconnect from .* quit=1' "$uplog" || true)
check "Postfix: $((2 * N)) sessions ended with QUIT (got $quits)" [ "$quits" = $((2 * N)) ]
expect_no_match "Postfix: no 'lost connection' after END-OF-MESSAGE" "$uplog" \
    'lost connection after (END-OF-MESSAGE|DATA)'
check "proxy: no connection reset logged" [ "$(log_count 'reset by peer')" = 0 ]

# Commands that arrived together leave together: one TLS record for
# ".\r\nQUIT\r\n" (an upstream's SSL_read returns one record at a time).
rp=$(free_port)
spawn "$TP_TMP/rec.out" "$PY" "$TP_PEERS/record_server.py" "$rp" \
    "$CERTS/rsa.pem" "$CERTS/rsa.key" "$TP_TMP/rec.log" starttls
wait_file "$TP_TMP/rec.out" 5 '^ready' || bail "record_server" "not ready"
cat >"$TP_TMP/rec.ini" <<EOF2
[global]
shutdown_grace = 5s

[rec]
mode = client
tls = starttls
security = encrypt
accept = 127.0.0.1:0
connect = 127.0.0.1:$rp
EOF2
start_proxy "$TP_TMP/rec.ini"
"$PY" "$TP_PEERS/halfclose_client.py" "$(route_port rec)" 3 >"$TP_TMP/rec.cl" 2>&1 || true
check "rec: 3 sessions got 250 and 221" grep -q '^sessions=3 got250=3 got221=3$' "$TP_TMP/rec.cl"
# (the body may share it too, when it came in the same read)
recs=$(grep -c "record: b'\(.*\\\\n\)\?\.\\\\r\\\\nQUIT\\\\r\\\\n'\$" "$TP_TMP/rec.log" || true)
check "rec: '.' and QUIT reached the server in one TLS record, 3 times (got $recs)" [ "$recs" = 3 ]

done_testing
