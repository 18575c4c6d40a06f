#!/bin/sh
# mkserverextra.sh DIR CERTS - extra certificates for the server-TLS tests
# (210-server-tls, 230-resumption), signed by the test CA in CERTS (made by
# mkcerts.sh: CERTS/ca.pem, CERTS/ca.key).  ECDSA P-256 keys (quick to make).
#
#   exact.pem exact.key      CN mail.example.com, SAN DNS:mail.example.com
#   wild.pem wild.key        CN wild.example.com, SAN DNS:*.example.com
#   other.pem other.key      CN other.example.net, SAN DNS:other.example.net
#   client.pem client.key    CN client.example.org, clientAuth, signed by the CA
#   rogue.pem rogue.key      CN rogue.example.org, self-signed (not trusted)
#
# Keys are mode 0600.  Idempotent: a complete DIR is left as it is.
set -eu
dir=${1:?usage: mkserverextra.sh DIR CERTS}
ca=${2:?usage: mkserverextra.sh DIR CERTS}
ca=$(cd "$ca" && pwd)
mkdir -p "$dir"
cd "$dir"

names="exact wild other client rogue"
complete=1
for n in $names; do [ -s "$n.pem" ] && [ -s "$n.key" ] || complete=0; done
if [ $complete = 1 ]; then
	chmod 600 ./*.key
	exit 0
fi

umask 077
for n in $names; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$n.key" 2>/dev/null
done

# leaf NAME CN SAN EKU: NAME.key's CSR signed by the test CA into NAME.pem
leaf() {
	printf '%s\n' \
	    "basicConstraints = critical, CA:FALSE" \
	    "keyUsage = critical, digitalSignature" \
	    "extendedKeyUsage = $4" \
	    "subjectAltName = $3" \
	    "subjectKeyIdentifier = hash" \
	    "authorityKeyIdentifier = keyid" >"$1.ext"
	openssl req -new -key "$1.key" -subj "/CN=$2" 2>/dev/null |
	    openssl x509 -req -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days 3650 -sha256 \
		-extfile "$1.ext" -out "$1.pem" 2>/dev/null
	rm -f "$1.ext"
}

leaf exact mail.example.com "DNS:mail.example.com" serverAuth
leaf wild wild.example.com "DNS:*.example.com" serverAuth
leaf other other.example.net "DNS:other.example.net" serverAuth
leaf client client.example.org "DNS:client.example.org" "clientAuth, serverAuth"
openssl req -x509 -new -key rogue.key -subj "/CN=rogue.example.org" \
    -days 3650 -sha256 -addext "extendedKeyUsage = clientAuth" \
    -out rogue.pem 2>/dev/null
for n in $names; do
	[ -s "$n.pem" ] || { echo "mkserverextra: no $n.pem" >&2; exit 1; }
done
chmod 600 ./*.key
chmod 644 ./*.pem
