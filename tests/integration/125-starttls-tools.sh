#!/bin/sh
# 125-starttls-tools: real STARTTLS clients against a server + starttls route
# in front of smtp-sink (swaks --tls, openssl s_client -starttls smtp,
# posttls-finger), and mail through the pair client + starttls -> server +
# starttls -> smtp-sink (swaks, smtp-source); smtp-source also in plaintext
# through the server route (security = may relays a client without TLS).
. "$(dirname "$0")/lib.sh"
require_tool swaks openssl posttls-finger /usr/sbin/smtp-sink /usr/sbin/smtp-source
need_certs

pin=$(free_port)
sink=$(free_port)
start_sink "$sink"
cat >"$TP_TMP/tools.ini" <<EOF
[global]
shutdown_grace = 5s

[in]
mode = server
tls = starttls
security = may
hostname = in.test
accept = 127.0.0.1:$pin
connect = 127.0.0.1:$sink
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
eccert_file = $CERTS/ec.pem
eckey_file = $CERTS/ec.key

[out]
mode = client
tls = starttls
security = encrypt
helo_name = out.test
accept = 127.0.0.1:0
connect = 127.0.0.1:$pin
EOF
start_proxy "$TP_TMP/tools.ini"
pout=$(route_port out)
tls='(Anonymous|Untrusted|Trusted|Verified) TLS connection established'

# ---- swaks --tls
swaks --server "127.0.0.1:$pin" --tls --to a@example.com --from b@example.org \
    --header "Subject: swaks-tls" --timeout 20 >"$TP_TMP/swaks-tls.out" 2>&1 && rc=0 || rc=$?
s=$TP_TMP/swaks-tls.out
check "swaks --tls exits 0" [ "$rc" = 0 ]
expect_line "swaks --tls: greeting '220 in.test ESMTP'" "$s" "<-  220 in.test ESMTP"
expect_line "swaks --tls: STARTTLS answered 220 2.0.0" "$s" "<-  220 2.0.0 Ready to start TLS"
expect_match "swaks --tls: TLS started" "$s" '^=== TLS started with cipher TLSv1\.[23]'
expect_match "swaks --tls: the EHLO inside TLS is answered by smtp-sink" "$s" '^<~  250-smtp-sink$'
expect_no_match "swaks --tls: no STARTTLS advertised inside TLS" "$s" '^<~  250.STARTTLS'
expect_match "swaks --tls: message accepted inside TLS" "$s" '^<~  250 2\.0\.0 Ok'
check "swaks --tls: the sink got the message" [ "$(sink_count)" = 1 ]

# ---- openssl s_client -starttls smtp, verifying the chain and the name
# sclient NAME [EXTRA ARGS]: the server's data (after TLS) in NAME.out, the
# connection report in NAME.err, the exit status in SC_RC
sclient() {
	_o=$TP_TMP/$1
	shift
	printf 'EHLO sclient.test\nQUIT\n' | timeout 20 openssl s_client -starttls smtp \
	    -connect "127.0.0.1:$pin" -servername localhost -CAfile "$CERTS/ca.pem" \
	    -verify_return_error -verify_hostname localhost -brief -crlf -ign_eof "$@" \
	    >"$_o.out" 2>"$_o.err" && SC_RC=0 || SC_RC=$?
}
sclient sclient
s=$TP_TMP/sclient
check "openssl s_client -starttls smtp exits 0" [ "$SC_RC" = 0 ]
expect_line "s_client: Verification: OK" "$s.err" "Verification: OK"
expect_match "s_client: TLSv1.2 or 1.3" "$s.err" '^Protocol version: TLSv1\.[23]$'
expect_match "s_client: EHLO inside TLS answered by smtp-sink" "$s.out" '^250-smtp-sink'
expect_no_match "s_client: no STARTTLS inside TLS" "$s.out" 'STARTTLS'
expect_match "s_client: QUIT answered" "$s.out" '^221 '
sclient sclient-ec -sigalgs ECDSA+SHA256
check "s_client with ECDSA only exits 0" [ "$SC_RC" = 0 ]
expect_match "s_client: the ECDSA certificate is served to an ECDSA-only client" \
    "$TP_TMP/sclient-ec.err" '^(Peer )?[Ss]ignature type: ECDSA'

# ---- posttls-finger (needs a main.cf to read: an empty private one)
mkdir -p "$TP_TMP/ptf"
echo "compatibility_level = 3.6" >"$TP_TMP/ptf/main.cf"
MAIL_CONFIG=$TP_TMP/ptf timeout 20 posttls-finger -t 5 -T 5 -l secure -F "$CERTS/ca.pem" \
    "[127.0.0.1]:$pin" localhost >"$TP_TMP/ptf.out" 2>&1 && rc=0 || rc=$?
s=$TP_TMP/ptf.out
check "posttls-finger exits 0" [ "$rc" = 0 ]
expect_line "posttls-finger: greeting" "$s" "posttls-finger: < 220 in.test ESMTP"
expect_line "posttls-finger: pre-TLS EHLO answered by the proxy" "$s" "posttls-finger: < 250-in.test"
expect_line "posttls-finger: STARTTLS offered" "$s" "posttls-finger: < 250-STARTTLS"
expect_match "posttls-finger: Verified TLS connection established (secure, match localhost)" "$s" \
    "^posttls-finger: Verified TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$pin: TLSv1\\.[23] "
sed -n '/TLS connection established/,$p' "$s" >"$TP_TMP/ptf-tls.out"
expect_line "posttls-finger: EHLO inside TLS answered by smtp-sink" "$TP_TMP/ptf-tls.out" "posttls-finger: < 250-smtp-sink"
expect_no_match "posttls-finger: no STARTTLS inside TLS" "$TP_TMP/ptf-tls.out" 'STARTTLS'

# ---- swaks through client + starttls -> server + starttls -> smtp-sink
base=$(sink_count)
swaks --server "127.0.0.1:$pout" --to a@example.com --from b@example.org \
    --header "Subject: swaks-chain" --timeout 20 >"$TP_TMP/swaks-chain.out" 2>&1 && rc=0 || rc=$?
s=$TP_TMP/swaks-chain.out
check "chain: swaks exits 0" [ "$rc" = 0 ]
expect_line "chain: greeting of the server route replayed" "$s" "<-  220 in.test ESMTP"
expect_line "chain: EHLO answered by smtp-sink through the tunnel" "$s" "<-  250-smtp-sink"
expect_no_match "chain: no STARTTLS advertised to the local client" "$s" '^<-  250.STARTTLS'
check "chain: delivered to the sink" [ "$(sink_count)" = $((base + 1)) ]
if grep -l 'Subject: swaks-chain' "$SINK_DIR"/* >/dev/null 2>&1; then pass "chain: the sink has the message"
else fail "chain: the sink has the message" "no file with 'Subject: swaks-chain'"; fi
check "log: out: TLS connection established to HOST[127.0.0.1]:$pin" \
    log_has "out/[^:]+: $tls to [^ ]*\\[127\\.0\\.0\\.1\\]:$pin: TLSv1\\.[23] "
check "log: in: TLS connection established from HOST[127.0.0.1]" \
    log_has "in/[^:]+: $tls from [^ ]*\\[127\\.0\\.0\\.1\\]"

# ---- smtp-source: 20 messages over 4 sessions through the pair, and 10 in
# plaintext straight to the server route
base=$(sink_count)
timeout 40 /usr/sbin/smtp-source -s 4 -m 20 -l 2000 "127.0.0.1:$pout" \
    >"$TP_TMP/source.out" 2>&1 && rc=0 || rc=$?
check "chain: smtp-source exits 0" [ "$rc" = 0 ]
n=$(($(sink_count) - base))
check "chain: smtp-source delivered 20 messages ($n)" [ "$n" = 20 ]
base=$(sink_count)
timeout 40 /usr/sbin/smtp-source -s 2 -m 10 -l 2000 "127.0.0.1:$pin" \
    >"$TP_TMP/source-plain.out" 2>&1 && rc=0 || rc=$?
check "plaintext (may): smtp-source exits 0" [ "$rc" = 0 ]
n=$(($(sink_count) - base))
check "plaintext (may): smtp-source delivered 10 messages ($n)" [ "$n" = 10 ]

done_testing
