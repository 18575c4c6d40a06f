#!/bin/sh
# mkcerts.sh DIR - a private test CA and leaf certificates for the tests.
#
#   ca.pem ca.key       test CA (RSA-2048)
#   rsa.pem rsa.key     RSA-2048 leaf, CN localhost, SAN DNS:localhost IP:127.0.0.1
#   ec.pem ec.key       ECDSA P-256 leaf, same names
#   rsa2.pem rsa2.key   RSA-2048 leaf, CN reloaded.test (for the reload test)
#
# Keys are mode 0600.  Idempotent: a complete DIR is left as it is.
set -eu
dir=${1:?usage: mkcerts.sh DIR}
mkdir -p "$dir"
cd "$dir"

files="ca.pem ca.key rsa.pem rsa.key ec.pem ec.key rsa2.pem rsa2.key"
complete=1
for f in $files; do [ -s "$f" ] || complete=0; done
if [ $complete = 1 ]; then
	chmod 600 ./*.key
	exit 0
fi

umask 077
days=3650
rsakey() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
eckey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# leaf NAME CN SAN: sign NAME.key's CSR with the CA into NAME.pem
leaf() {
	printf '%s\n' \
	    "basicConstraints = critical, CA:FALSE" \
	    "keyUsage = critical, digitalSignature, keyEncipherment" \
	    "extendedKeyUsage = serverAuth, clientAuth" \
	    "subjectAltName = $3" \
	    "subjectKeyIdentifier = hash" \
	    "authorityKeyIdentifier = keyid" >"$1.ext"
	openssl req -new -key "$1.key" -subj "/CN=$2" 2>/dev/null |
	    openssl x509 -req -CA ca.pem -CAkey ca.key -CAcreateserial \
		-days $days -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
	rm -f "$1.ext"
}

rsakey ca.key
openssl req -x509 -new -key ca.key -subj "/CN=tlsproxy test CA" -days $days \
    -sha256 -addext "basicConstraints = critical, CA:TRUE" \
    -addext "keyUsage = critical, keyCertSign, cRLSign" -out ca.pem 2>/dev/null
rsakey rsa.key
leaf rsa localhost "DNS:localhost, IP:127.0.0.1"
eckey ec.key
leaf ec localhost "DNS:localhost, IP:127.0.0.1"
rsakey rsa2.key
leaf rsa2 reloaded.test "DNS:reloaded.test, IP:127.0.0.1"
rm -f ca.srl
chmod 600 ./*.key
chmod 644 ./*.pem
