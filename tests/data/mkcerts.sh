#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# mkcerts.sh DIR: make a fresh PKI and one certs.d-style directory per test
# case under DIR, for tests/unit/test_certstore. Every date is absolute (the
# tests load the sets "as of" fixed instants), so the fixtures never age.
#
#   pki/            root CA, intermediates, openssl ca database, and
#                   basic-spki.hex / basic-key.der (expected values)
#   basic/          EC P-256 client.crt + client.key, intermediate, root,
#                   a dotfile, a CSR and a certificate.yaml (all ignored)
#   combined/       one PEM file: RSA key (traditional), leaf, intermediate
#   crossed/        alpha.crt holds beta.key's certificate and vice versa
#   rotation/       old, new, future and expired pairs
#   p12/ p12legacy/ p12rc2/ p12wrong/ p12nopass/ p12yaml/ p12yamlfile/ p12badpass/
#                   PKCS#12 variants
#   truncated/      a good pair and a half-written PEM
#   badmode/        key with mode 0644
#   orphans/        a good pair and a key without certificate
#   expired/ future/ eku/ weak/ p384/ der/ encrypted/ rootsigned/
#   samename/ dup/ renewed/ unreadable/ garbage/ empty/
#
# Needs only POSIX sh and the openssl command (1.1.1 or 3.x).
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
umask 077
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
PKI=$OUT/pki
mkdir -p "$PKI/newcerts"
: >"$PKI/index.txt"

cat >"$PKI/ca.cnf" <<'EOF'
[ ca ]
default_ca = ca_any
[ ca_any ]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ policy_any ]
organizationName = optional
commonName = supplied
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_client ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_server ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
[ v3_both ]
basicConstraints = CA:false
extendedKeyUsage = serverAuth,clientAuth
[ v3_noeku ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature
EOF

ossl() {
	openssl "$@" 2>"$PKI/openssl.err" || {
		cat "$PKI/openssl.err" >&2
		echo "mkcerts.sh: openssl $1 failed" >&2
		exit 1
	}
}

# newkey OUT TYPE: ec (P-256), ec384, rsa (2048), rsa1024; PKCS#8 PEM
newkey() {
	case $2 in
	ec) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
	ec384) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1" ;;
	rsa) ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" ;;
	rsa1024) ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$1" ;;
	*) echo "newkey: $2?" >&2; exit 1 ;;
	esac
}

# sign KEY OUT SERIAL SUBJECT SIGNER EXT START END
#   SIGNER: root | int | int2 | intold | self; dates as YYYYMMDDHHMMSSZ
sign() {
	_key=$1 _out=$2 _serial=$3 _subj=$4 _signer=$5 _ext=$6 _from=$7 _to=$8
	echo "$_serial" >"$PKI/serial"
	ossl req -new -config "$PKI/ca.cnf" -key "$_key" -subj "$_subj" \
	    -out "$PKI/req.csr"
	if [ "$_signer" = self ]; then
		set -- -selfsign -keyfile "$_key"
	else
		set -- -cert "$PKI/$_signer.crt" -keyfile "$PKI/$_signer.key"
	fi
	(cd "$PKI" && ossl ca -batch -config ca.cnf -notext -in req.csr \
	    -out "$_out" -extensions "$_ext" -startdate "$_from" \
	    -enddate "$_to" "$@")
}

# The CA hierarchy (valid 2000..2060): root -> int, root -> int2, and two
# intermediates that share one name but not a key (intold, intnew).
newkey "$PKI/root.key" ec
sign "$PKI/root.key" "$PKI/root.crt" 01 "/O=mtlsd test/CN=mtlsd test root" \
    self v3_ca 20000101000000Z 20600101000000Z
for i in int int2 intold intnew; do
	newkey "$PKI/$i.key" ec
done
sign "$PKI/int.key" "$PKI/int.crt" 02 "/O=mtlsd test/CN=mtlsd test intermediate" \
    root v3_ca 20000101000000Z 20600101000000Z
sign "$PKI/int2.key" "$PKI/int2.crt" 03 "/O=mtlsd test/CN=mtlsd test intermediate 2" \
    root v3_ca 20000101000000Z 20600101000000Z
sign "$PKI/intold.key" "$PKI/intold.crt" 04 "/O=mtlsd test/CN=mtlsd test rollover" \
    root v3_ca 20000101000000Z 20600101000000Z
sign "$PKI/intnew.key" "$PKI/intnew.crt" 05 "/O=mtlsd test/CN=mtlsd test rollover" \
    root v3_ca 20000101000000Z 20600101000000Z

# leaf DIR BASENAME KEYTYPE SERIAL CN [SIGNER EXT START END]
# writes DIR/BASENAME.crt and DIR/BASENAME.key (0600)
leaf() {
	mkdir -p "$1"
	newkey "$1/$2.key" "$3"
	sign "$1/$2.key" "$1/$2.crt" "$4" "/O=mtlsd test/CN=$5" "${6:-int}" \
	    "${7:-v3_client}" "${8:-20200101000000Z}" "${9:-20400101000000Z}"
}

# p12 OUT KEY CRT PASSWORD [extra openssl pkcs12 options]
p12() {
	_o=$1 _k=$2 _c=$3 _p=$4
	shift 4
	ossl pkcs12 -export -out "$_o" -inkey "$_k" -in "$_c" \
	    -certfile "$PKI/int.crt" -passout "pass:$_p" -name client "$@"
}

# basic: the everyday layout; everything but client.* is ignored or a CA
leaf "$OUT/basic" client ec 1001 basic-client
cp "$PKI/int.crt" "$OUT/basic/intermediate.pem"
cp "$PKI/root.crt" "$OUT/basic/root.pem"
echo "not a certificate" >"$OUT/basic/.hidden.pem"
cp "$PKI/req.csr" "$OUT/basic/client.csr"
printf 'rotation:\n  activate: immediately\n' >"$OUT/basic/certificate.yaml"
# what other tools say about basic/: SPKI pin (hex) and the key as DER
openssl x509 -in "$OUT/basic/client.crt" -pubkey -noout |
    openssl pkey -pubin -outform DER | openssl dgst -sha256 -r |
    cut -c1-64 >"$PKI/basic-spki.hex"
ossl pkcs8 -topk8 -nocrypt -in "$OUT/basic/client.key" -outform DER \
    -out "$PKI/basic-key.der"

# combined: key first, then leaf and intermediate, all in one file
leaf "$PKI/tmp-combined" leaf rsa C0FFEE combined-client
ossl pkey -in "$PKI/tmp-combined/leaf.key" -traditional -out "$PKI/tmp-combined/trad.key"
mkdir -p "$OUT/combined"
cat "$PKI/tmp-combined/trad.key" "$PKI/tmp-combined/leaf.crt" "$PKI/int.crt" \
    >"$OUT/combined/bundle.pem"

# crossed: file names lie; keys must pair by public key
leaf "$PKI/tmp-crossed" a ec 1003 crossed-a int v3_client 20210101000000Z 20400101000000Z
leaf "$PKI/tmp-crossed" b ec 1004 crossed-b int v3_client 20220101000000Z 20400101000000Z
mkdir -p "$OUT/crossed"
cp "$PKI/tmp-crossed/a.crt" "$OUT/crossed/alpha.crt"
cp "$PKI/tmp-crossed/b.key" "$OUT/crossed/alpha.key"
cp "$PKI/tmp-crossed/b.crt" "$OUT/crossed/beta.crt"
cp "$PKI/tmp-crossed/a.key" "$OUT/crossed/beta.key"
cp "$PKI/int.crt" "$OUT/crossed/ca.pem"

# rotation: tests load it as of 2030-01-01 (and other instants)
R=$OUT/rotation
leaf "$R" old ec 2001 rot-old int v3_client 20210101000000Z 20310101000000Z
leaf "$R" new ec 2002 rot-new int v3_client 20290601000000Z 20390601000000Z
leaf "$R" future ec 2003 rot-future int v3_client 20300601000000Z 20400601000000Z
leaf "$R" expired ec 2004 rot-expired int v3_client 20190101000000Z 20200102000000Z
cp "$PKI/int.crt" "$R/chain.pem"

# PKCS#12: modern (AES-256/PBKDF2 with openssl 3), legacy, wrong password,
# no password file, password from certificate.yaml
leaf "$PKI/tmp-p12" c ec 1010 p12-client
mkdir -p "$OUT/p12" "$OUT/p12legacy" "$OUT/p12wrong" "$OUT/p12nopass" "$OUT/p12yaml"
p12 "$OUT/p12/client.p12" "$PKI/tmp-p12/c.key" "$PKI/tmp-p12/c.crt" secret
printf 'secret\n' >"$OUT/p12/client.p12.pass"
# legacy: SHA-1 MAC and 3DES (what older Windows exports use); rc2: the
# 40-bit RC2 certificate bag of "openssl pkcs12 -legacy" (OpenSSL 1.x default)
legacy=
if openssl pkcs12 -help 2>&1 | grep -q -- '-legacy'; then
	legacy=-legacy
fi
p12 "$OUT/p12legacy/legacy.p12" "$PKI/tmp-p12/c.key" "$PKI/tmp-p12/c.crt" \
    secret $legacy -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1
printf 'secret\n' >"$OUT/p12legacy/legacy.p12.pass"
mkdir -p "$OUT/p12rc2"
p12 "$OUT/p12rc2/rc2.p12" "$PKI/tmp-p12/c.key" "$PKI/tmp-p12/c.crt" \
    secret $legacy -certpbe PBE-SHA1-RC2-40 -keypbe PBE-SHA1-3DES -macalg sha1
printf 'secret\n' >"$OUT/p12rc2/rc2.p12.pass"
p12 "$OUT/p12wrong/client.p12" "$PKI/tmp-p12/c.key" "$PKI/tmp-p12/c.crt" secret
printf 'not-the-password\n' >"$OUT/p12wrong/client.p12.pass"
p12 "$OUT/p12nopass/client.p12" "$PKI/tmp-p12/c.key" "$PKI/tmp-p12/c.crt" secret
p12 "$OUT/p12yaml/client.pfx" "$PKI/tmp-p12/c.key" "$PKI/tmp-p12/c.crt" 'yaml secret'
printf '# p12 password\npassword: "yaml secret"\n' >"$OUT/p12yaml/certificate.yaml"
mkdir -p "$OUT/p12yamlfile"
cp "$OUT/p12/client.p12" "$OUT/p12yamlfile/client.p12"
printf 'secret\n' >"$PKI/p12-password.txt"
printf 'p12_password_file: %s\n' "$PKI/p12-password.txt" >"$OUT/p12yamlfile/certificate.yaml"
mkdir -p "$OUT/p12badpass"
cp "$OUT/p12/client.p12" "$OUT/p12/client.p12.pass" "$OUT/p12badpass/"
chmod 0644 "$OUT/p12badpass/client.p12.pass"

# truncated: a good pair plus a copy cut in the middle of the base64
leaf "$OUT/truncated" client ec 1030 truncated-client
cp "$PKI/int.crt" "$OUT/truncated/intermediate.pem"
head -n 5 "$PKI/int.crt" >"$OUT/truncated/partial.pem"

# badmode: key readable by everyone
leaf "$OUT/badmode" client ec 1031 badmode-client
chmod 0644 "$OUT/badmode/client.key"

# orphans: a good pair and a stray key
leaf "$OUT/orphans" client ec 1032 orphans-client
newkey "$OUT/orphans/stray.key" ec

# expired and not-yet-valid only
leaf "$OUT/expired" client ec 1033 expired-client int v3_client \
    20190101000000Z 20250101000000Z
leaf "$OUT/future" client ec 1034 future-client int v3_client \
    20450101000000Z 20500101000000Z

# eku: serverAuth only (refused), none (accepted), both (accepted)
leaf "$OUT/eku" server ec 1040 eku-server int v3_server
leaf "$OUT/eku" noeku ec 1041 eku-none int v3_noeku 20210101000000Z 20400101000000Z
leaf "$OUT/eku" both ec 1042 eku-both int v3_both 20220101000000Z 20400101000000Z

# weak: RSA 1024 (refused) beside RSA 2048 (accepted)
leaf "$OUT/weak" rsa1024 rsa1024 1050 weak-1024
leaf "$OUT/weak" rsa2048 rsa 1051 weak-2048

# p384: an EC P-384 key
leaf "$OUT/p384" client ec384 1052 p384-client

# der: DER certificate and traditional DER EC key
leaf "$PKI/tmp-der" c ec 1053 der-client
mkdir -p "$OUT/der"
ossl x509 -in "$PKI/tmp-der/c.crt" -outform DER -out "$OUT/der/client.cer"
ossl pkey -in "$PKI/tmp-der/c.key" -traditional -outform DER -out "$OUT/der/client-key.der"

# encrypted: PKCS#8 with a passphrase (not supported, reported)
leaf "$PKI/tmp-enc" c ec 1054 encrypted-client
mkdir -p "$OUT/encrypted"
cp "$PKI/tmp-enc/c.crt" "$OUT/encrypted/client.crt"
ossl pkey -in "$PKI/tmp-enc/c.key" -aes256 -passout pass:x -out "$OUT/encrypted/client.key"

# rootsigned: leaf issued by the root itself; the root is never sent
leaf "$OUT/rootsigned" client ec 1055 rootsigned-client root
cp "$PKI/root.crt" "$OUT/rootsigned/root.pem"

# samename: two intermediates named alike; the leaf is signed by intnew,
# and a chain of unrelated int2 is present too
leaf "$OUT/samename" client ec 1056 samename-client intnew
cp "$PKI/intold.crt" "$OUT/samename/a-intold.pem"
cp "$PKI/intnew.crt" "$OUT/samename/b-intnew.pem"
cp "$PKI/int2.crt" "$OUT/samename/c-int2.pem"

# dup: cert.pem, fullchain.pem (same leaf + intermediate), privkey.pem
leaf "$PKI/tmp-dup" c ec 1057 dup-client
mkdir -p "$OUT/dup"
cp "$PKI/tmp-dup/c.crt" "$OUT/dup/cert.pem"
cat "$PKI/tmp-dup/c.crt" "$PKI/int.crt" >"$OUT/dup/fullchain.pem"
cp "$PKI/tmp-dup/c.key" "$OUT/dup/privkey.pem"

# renewed: two certificates for the same key
leaf "$OUT/renewed" first ec 1058 renewed-client int v3_client \
    20210101000000Z 20310101000000Z
mv "$OUT/renewed/first.key" "$OUT/renewed/key.pem"
sign "$OUT/renewed/key.pem" "$OUT/renewed/second.crt" 1059 \
    "/O=mtlsd test/CN=renewed-client" int v3_client 20290101000000Z 20390101000000Z

# unreadable: a good pair and a dangling symlink (unreadable even for root)
leaf "$OUT/unreadable" client ec 1060 unreadable-client
ln -s "$OUT/unreadable/nowhere.pem" "$OUT/unreadable/gone.pem"

# garbage: neither PEM nor DER
mkdir -p "$OUT/garbage"
printf 'hello world\n' >"$OUT/garbage/notes.crt"

mkdir -p "$OUT/empty"
rm -rf "$PKI"/tmp-*
