#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# mkpki.sh DIR — make a fresh throw-away PKI for the mtlsd demo and tests.
#
# Layout (keys are 0600, everything else 0644):
#   DIR/ca/                      the CAs' own keys and certificates
#       server-root.{crt,key}    root of the servers we talk to
#       client-root.{crt,key}    root of our client certificates
#       client-int.{crt,key}     intermediate under client-root (pathlen 0)
#       other-root.{crt,key}     an unrelated CA nobody trusts
#   DIR/server/
#       localhost.{crt,key}      SAN DNS:localhost, IP:127.0.0.1 (server-root)
#       wrong-name.{crt,key}     SAN DNS:wrong.example           (server-root)
#       untrusted.{crt,key}      SAN DNS:localhost, IP:127.0.0.1 (other-root)
#   DIR/certs.d/                 certs.d-style material for mtlsd
#       client-pem/client.crt client.key     leaf signed by client-root
#       client-chain/combined.pem            leaf (client-int) + client-int + key
#       client-p12/client.p12 client.p12.pass  leaf signed by client-root
#   DIR/trust/
#       server-root.pem          what mtlsd trusts for the servers
#       client-ca-bundle.pem     what nginx trusts for clients (client-root only:
#                                chains through client-int are verified with the
#                                intermediate the client sends; ssl_verify_depth 3)
#   DIR/info/<name>.serial       serial of each client leaf, as nginx prints it
#                                ($ssl_client_serial), e.g. 3F0A...
#   DIR/info/<name>.subject      its subject, RFC 2253 ($ssl_client_s_dn)
#
# Client leaves are EC P-256 with EKU clientAuth; servers are EC P-256 with
# EKU serverAuth. Every run makes new keys and random serials.
set -euo pipefail

die() { echo "mkpki: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: mkpki.sh DIR"
command -v openssl >/dev/null || die "openssl not found"

DIR=$1
DAYS=${MKPKI_DAYS:-365}
umask 022
mkdir -p "$DIR"/{ca,server,trust,info,certs.d/client-pem,certs.d/client-chain,certs.d/client-p12}
DIR=$(cd "$DIR" && pwd)
WORK=$(mktemp -d "$DIR/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# newkey FILE — EC P-256 key in PKCS#8 PEM, mode 0600
newkey() {
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$1" 2>/dev/null)
	chmod 0600 "$1"
}

# mkroot NAME CN — self-signed CA in ca/NAME.{crt,key}
mkroot() {
	newkey "$DIR/ca/$1.key"
	openssl req -new -x509 -sha256 -days "$((DAYS * 2))" -key "$DIR/ca/$1.key" \
		-subj "/O=mtlsd test/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" \
		-out "$DIR/ca/$1.crt"
}

# sign OUTCRT KEY SUBJ CA EXTS — certificate for KEY signed by ca/CA
sign() {
	local out=$1 key=$2 subj=$3 ca=$4 exts=$5 csr ext
	csr="$WORK/$(basename "$out").csr"
	ext="$WORK/$(basename "$out").ext"
	printf '%b\n' "$exts" >"$ext"
	openssl req -new -sha256 -key "$key" -subj "$subj" -out "$csr"
	openssl x509 -req -sha256 -days "$DAYS" -in "$csr" \
		-CA "$DIR/ca/$ca.crt" -CAkey "$DIR/ca/$ca.key" -set_serial "0x$(openssl rand -hex 12)" \
		-extfile "$ext" -out "$out" 2>/dev/null
}

LEAF_COMMON='basicConstraints=critical,CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid'
CLIENT_EXT="$LEAF_COMMON\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
server_ext() { printf "%s" "$LEAF_COMMON\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=$1"; }

# CAs
mkroot server-root "mtlsd test server root"
mkroot client-root "mtlsd test client root"
mkroot other-root "mtlsd test untrusted root"
newkey "$DIR/ca/client-int.key"
sign "$DIR/ca/client-int.crt" "$DIR/ca/client-int.key" "/O=mtlsd test/CN=mtlsd test client intermediate" \
	client-root "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid"

# servers
for s in localhost:server-root:DNS:localhost,IP:127.0.0.1 \
	wrong-name:server-root:DNS:wrong.example \
	untrusted:other-root:DNS:localhost,IP:127.0.0.1; do
	name=${s%%:*}; rest=${s#*:}; ca=${rest%%:*}; san=${rest#*:}
	newkey "$DIR/server/$name.key"
	cn=${san#DNS:}; cn=${cn%%,*}
	sign "$DIR/server/$name.crt" "$DIR/server/$name.key" "/O=mtlsd test/CN=$cn" "$ca" "$(server_ext "$san")"
done

# client-pem: leaf directly under the client root, .crt/.key pair
d="$DIR/certs.d/client-pem"
newkey "$d/client.key"
sign "$d/client.crt" "$d/client.key" "/O=mtlsd test/CN=client-pem" client-root "$CLIENT_EXT"

# client-chain: leaf under the intermediate; leaf + intermediate + key in one file
d="$DIR/certs.d/client-chain"
newkey "$WORK/chain.key"
sign "$WORK/chain.crt" "$WORK/chain.key" "/O=mtlsd test/CN=client-chain" client-int "$CLIENT_EXT"
(umask 077 && cat "$WORK/chain.crt" "$DIR/ca/client-int.crt" "$WORK/chain.key" >"$d/combined.pem")
chmod 0600 "$d/combined.pem"
cp "$WORK/chain.crt" "$DIR/info/client-chain.crt"

# client-p12: leaf under the client root as password-protected PKCS#12
d="$DIR/certs.d/client-p12"
newkey "$WORK/p12.key"
sign "$WORK/p12.crt" "$WORK/p12.key" "/O=mtlsd test/CN=client-p12" client-root "$CLIENT_EXT"
(umask 077 && openssl rand -hex 12 >"$d/client.p12.pass")
(umask 077 && openssl pkcs12 -export -in "$WORK/p12.crt" -inkey "$WORK/p12.key" \
	-name client-p12 -passout "file:$d/client.p12.pass" -out "$d/client.p12")
chmod 0600 "$d/client.p12" "$d/client.p12.pass"
cp "$WORK/p12.crt" "$DIR/info/client-p12.crt"
cp "$DIR/certs.d/client-pem/client.crt" "$DIR/info/client-pem.crt"

# trust anchors
cp "$DIR/ca/server-root.crt" "$DIR/trust/server-root.pem"
cp "$DIR/ca/client-root.crt" "$DIR/trust/client-ca-bundle.pem"

# serial and subject of each client leaf, in nginx's notation
for n in client-pem client-chain client-p12; do
	openssl x509 -in "$DIR/info/$n.crt" -noout -serial | sed 's/^serial=//' >"$DIR/info/$n.serial"
	openssl x509 -in "$DIR/info/$n.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//' >"$DIR/info/$n.subject"
done

# self-check: every leaf verifies against its root (client-chain via the intermediate)
openssl verify -CAfile "$DIR/trust/client-ca-bundle.pem" "$DIR/info/client-pem.crt" "$DIR/info/client-p12.crt" >/dev/null
openssl verify -CAfile "$DIR/trust/client-ca-bundle.pem" -untrusted "$DIR/ca/client-int.crt" "$DIR/info/client-chain.crt" >/dev/null
openssl verify -CAfile "$DIR/trust/server-root.pem" "$DIR/server/localhost.crt" "$DIR/server/wrong-name.crt" >/dev/null
if openssl verify -CAfile "$DIR/trust/server-root.pem" "$DIR/server/untrusted.crt" >/dev/null 2>&1; then
	die "self-check: untrusted server certificate verifies against server-root"
fi
echo "mkpki: PKI in $DIR"
