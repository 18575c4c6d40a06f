#!/bin/sh
# 30-certs: a server route with an RSA and an ECDSA certificate serves each
# client the one its signature algorithms allow; a route without cert_file
# serves a self-signed ECDSA certificate.
. "$(dirname "$0")/lib.sh"
require_tool openssl /usr/sbin/smtp-sink
need_certs

p=$(free_port)
sink=$(free_port)
start_sink "$sink"
cat >"$TP_TMP/certs.ini" <<EOF
[global]
shutdown_grace = 5s

[dual]
mode = server
accept = 127.0.0.1:$p
connect = 127.0.0.1:$sink
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
eccert_file = $CERTS/ec.pem
eckey_file = $CERTS/ec.key

[nocert]
mode = server
accept = 127.0.0.1:0
connect = 127.0.0.1:$sink
EOF
start_proxy "$TP_TMP/certs.ini"

# leaf PORT ARGS...: handshake with s_client; print the leaf's key algorithm
# (rsaEncryption / id-ecPublicKey) and subject; keep the output in $TP_TMP/sc.
leaf() {
	_port=$1
	shift
	openssl s_client -connect "127.0.0.1:$_port" -servername localhost "$@" \
	    </dev/null >"$TP_TMP/sc" 2>&1 || true
	openssl x509 -noout -text <"$TP_TMP/sc" >"$TP_TMP/leaf" 2>/dev/null || true
	echo "$(sed -n 's/^ *Public Key Algorithm: //p' "$TP_TMP/leaf")" \
	    "$(sed -n 's/^ *Subject: //p' "$TP_TMP/leaf")"
}

rsa_only="rsa_pss_rsae_sha256:RSA+SHA256"
for v in tls1_2 tls1_3; do
	got=$(leaf "$p" "-$v" -sigalgs "$rsa_only")
	case $got in
	rsaEncryption*"CN = localhost"*) pass "RSA-only $v client gets the RSA leaf" ;;
	*) fail "RSA-only $v client gets the RSA leaf" "got '$got'; $(grep -E 'error|alert|Cipher is' "$TP_TMP/sc" | head -n 3 | tr '\n' ' ')" ;;
	esac
	if grep -q "New, $(echo "$v" | sed 's/tls1_/TLSv1./')," "$TP_TMP/sc"; then
		pass "$v negotiated"
	else fail "$v negotiated" "$(grep -E 'New,|error' "$TP_TMP/sc" | head -n 2)"; fi

	got=$(leaf "$p" "-$v" -sigalgs "ECDSA+SHA256")
	case $got in
	id-ecPublicKey*"CN = localhost"*) pass "ECDSA $v client gets the ECDSA leaf" ;;
	*) fail "ECDSA $v client gets the ECDSA leaf" "got '$got'; $(grep -E 'error|alert|Cipher is' "$TP_TMP/sc" | head -n 3 | tr '\n' ' ')" ;;
	esac
done

# The backend's greeting arrives through TLS on a server route.
"$PY" "$TP_PEERS/smtp_chat.py" --tls --timeout 10 --send QUIT "$p" \
    >"$TP_TMP/chat" 2>&1 || true
if grep -q '^greeting: 220 ' "$TP_TMP/chat" && grep -q '^reply: 221' "$TP_TMP/chat"
then pass "backend dialogue relayed through TLS"
else fail "backend dialogue relayed through TLS" "$(tr '\n' '|' <"$TP_TMP/chat")"; fi

got=$(leaf "$(route_port nocert)")
case $got in
id-ecPublicKey*) pass "no cert_file: a self-signed ECDSA certificate" ;;
*) fail "no cert_file: a self-signed ECDSA certificate" "got '$got'" ;;
esac

done_testing
