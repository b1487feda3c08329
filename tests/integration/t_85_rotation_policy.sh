# shellcheck shell=bash
# Rotation policy: a pending certificate with a future not-before activates
# by itself when it becomes valid; before-expiry (certificate.yaml) keeps a
# newer certificate pending until the current one enters its window; files
# that disappear never take the loaded certificate out of service;
# issuer_ca_file and stray keys are reported and skipped.

trust="trust: {ca_file: $PKI/trust/server-root.pem}"
RW=$TMP/rotpol-work
mkdir -p "$RW"
: >"$RW/index.txt"
echo 1000 >"$RW/serial"
cat >"$RW/ca.cnf" <<CNF
[ca]
default_ca = c
[c]
database = $RW/index.txt
new_certs_dir = $RW
serial = $RW/serial
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
organizationName = optional
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF

# mint NAME CA FROM TO: key + certificate in $RW/NAME.{key,crt} signed by
# $PKI/ca/CA, valid FROM..TO (date -d expressions); prints its serial
mint() {
	local n=$1 ca=$2 from to
	from=$(date -u -d "$3" +%Y%m%d%H%M%SZ)
	to=$(date -u -d "$4" +%Y%m%d%H%M%SZ)
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$RW/$n.key" 2>/dev/null)
	openssl req -new -key "$RW/$n.key" -subj "/O=mtlsd test/CN=$n" -out "$RW/$n.csr" 2>/dev/null
	openssl ca -batch -config "$RW/ca.cnf" -cert "$PKI/ca/$ca.crt" -keyfile "$PKI/ca/$ca.key" \
		-in "$RW/$n.csr" -out "$RW/$n.crt" -startdate "$from" -enddate "$to" \
		-extensions ext -notext 2>"$RW/$n.err" >/dev/null || cat "$RW/$n.err" >&2
	openssl x509 -in "$RW/$n.crt" -noout -serial | sed 's/^serial=//'
}

# drop NAME DIR: move NAME's key then certificate into DIR atomically
drop() {
	cp "$RW/$1.key" "$2/.$1.key.tmp" && mv "$2/.$1.key.tmp" "$2/$1.key"
	cp "$RW/$1.crt" "$2/.$1.crt.tmp" && mv "$2/.$1.crt.tmp" "$2/$1.crt"
}

# serial_seen PORT TAG: the serial nginx saw for one request
serial_seen() {
	req "$2" "http://127.0.0.1:$1/?t=$2"
	[ "$R_STATUS" = 200 ] || echo "status-$R_STATUS"
	hdr X-Client-Serial
}

# rp_instance INST: an instance with its own certs.d/c and mapping m
rp_instance() {
	mtlsd_write_config "$1"
	mkdir -p "$TMP/inst/$1/certs.d/c"
	sed -i "s|^certs_dir: .*|certs_dir: certs.d|" "$TMP/inst/$1/mtlsd.yaml"
	mtlsd_mapping_file "$1" m.yaml <<MAP
mappings:
  - {name: m, url: "https://localhost:$NG_PORT/", listen: 127.0.0.1:0, certificate: c, $trust}
MAP
}

# ---- 1. a future not-before: pending, then current without any signal
rp_instance rp1
d=$TMP/inst/rp1
s_old=$(mint rp1-old client-root "-1 hour" "+30 days")
drop rp1-old "$d/certs.d/c"
if mtlsd_start rp1; then
	port=$(mtlsd_port rp1 m)
	s_new=$(mint rp1-new client-root "+5 seconds" "+60 days")
	off=$(mtlsd_log_offset rp1)
	drop rp1-new "$d/certs.d/c"
	mtlsd_wait_log rp1 "$off" 'reload: generation [0-9]+ applied' 10 ||
		chk_fail "the dropped files were not noticed"
	chk_eq "serial while the new one is not yet valid" "$s_old" "$(serial_seen "$port" rp1-a)"
	_rp1_new() { [ "$(serial_seen "$port" rp1-poll)" = "$s_new" ]; }
	wait_until 15 _rp1_new || chk_fail "new serial not presented within 15 s of its not-before"
	t_done "rotation: a pending certificate (future not-before) becomes current when valid, no signal"

	# ---- files disappear: the loaded certificate stays in service
	off=$(mtlsd_log_offset rp1)
	rm -f "$d/certs.d/c/"*
	mtlsd_wait_log rp1 "$off" 'keeping serial' 10 ||
		chk_fail "no 'keeping serial' warning after the files were removed"
	chk_eq "serial after every file was deleted" "$s_new" "$(serial_seen "$port" rp1-gone)"
	t_done "rotation: deleting every file keeps the loaded certificate in service (warning logged)"

	# ---- a stray key and a certificate from another CA under issuer_ca_file
	drop rp1-new "$d/certs.d/c"
	printf 'issuer_ca_file: %s\n' "$PKI/ca/client-root.crt" >"$d/certs.d/c/certificate.yaml"
	s_bad=$(mint rp1-other other-root "-1 hour" "+90 days")
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$RW/stray.key" 2>/dev/null && mv "$RW/stray.key" "$d/certs.d/c/stray.key")
	off=$(mtlsd_log_offset rp1)
	drop rp1-other "$d/certs.d/c"
	mtlsd_wait_log rp1 "$off" 'not issued by the CA in issuer_ca_file' 10 ||
		chk_fail "certificate from another CA not reported"
	chk_match "stray key reported" 'stray.key: no certificate matches this private key' \
		"$(mtlsd_log_since rp1 "$off")"
	chk_eq "serial (the other CA's newer certificate is skipped)" "$s_new" \
		"$(serial_seen "$port" rp1-issuer)"
	chk_ne "not the other CA's certificate" "$s_bad" "$(hdr X-Client-Serial)"
	t_done "rotation: issuer_ca_file rejects a certificate from another CA; a stray key is reported"
	mtlsd_stop rp1
fi

# ---- 2. before-expiry (certificate.yaml): newer stays pending until the
# current one enters its activation window, then takes over by itself; the
# admin endpoint shows both certificates meanwhile
rp_instance rp2
d=$TMP/inst/rp2
echo 'admin: {listen: "127.0.0.1:0"}' >>"$d/mtlsd.yaml"
# the old one enters its 72h window 8 s from now
s_old=$(mint rp2-old client-root "-1 hour" "+72 hours 8 seconds")
s_new=$(mint rp2-new client-root "-1 minute" "+365 days")
drop rp2-old "$d/certs.d/c"
drop rp2-new "$d/certs.d/c"
printf 'rotation:\n  activate: before-expiry\n  activate_before_expiry: 72h\n' \
	>"$d/certs.d/c/certificate.yaml"
if mtlsd_start rp2; then
	port=$(mtlsd_port rp2 m)
	chk_eq "serial before the window (newer one pending)" "$s_old" "$(serial_seen "$port" rp2-a)"
	t_done "rotation: before-expiry keeps a newer certificate pending"
	aport=$(sed -n 's/.*admin endpoint listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
		"$d/mtlsd.log" | tail -n 1)
	curl -s --max-time 5 "http://127.0.0.1:${aport:-1}/certificates/c" >"$RW/rp2.pem"
	serials=$(awk '/BEGIN CERTIFICATE/{f=1; b=""} f{b=b $0 "\n"} /END CERTIFICATE/{f=0; printf "%s", b | "openssl x509 -noout -serial"; close("openssl x509 -noout -serial")}' "$RW/rp2.pem" | sed 's/^serial=//' | tr '\n' ' ')
	chk_match "current certificate in /certificates/c" "$s_old" "$serials"
	chk_match "pending certificate in /certificates/c" "$s_new" "$serials"
	chk_match "marked current and pending" '# current.*' "$(grep -i '^# current' "$RW/rp2.pem")"
	chk_match "pending marked" '# pending' "$(grep -i '^# pending' "$RW/rp2.pem")"
	chk_nomatch "no private key" 'PRIVATE KEY' "$(cat "$RW/rp2.pem")"
	t_done "rotation: /certificates/NAME shows the current and the pending certificate (PEM)"
	_rp2_new() { [ "$(serial_seen "$port" rp2-poll)" = "$s_new" ]; }
	wait_until 20 _rp2_new || chk_fail "new serial not presented after the window opened"
	t_done "rotation: before-expiry activates the pending certificate when the window opens"
	mtlsd_stop rp2
fi

# ---- 3. validate: true — a certificate the endpoint does not accept stays
# pending with the reason, the current one keeps serving
rp_instance rp3
d=$TMP/inst/rp3
s_old=$(mint rp3-old client-root "-1 hour" "+30 days")
drop rp3-old "$d/certs.d/c"
if mtlsd_start rp3; then
	port=$(mtlsd_port rp3 m)
	s_bad=$(mint rp3-untrusted other-root "-1 minute" "+60 days")
	off=$(mtlsd_log_offset rp3)
	drop rp3-untrusted "$d/certs.d/c"
	mtlsd_wait_log rp3 "$off" "serial $s_bad .* was not accepted by" 15 ||
		chk_fail "no 'was not accepted' line for the untrusted certificate"
	chk_eq "serial while the new one is rejected" "$s_old" "$(serial_seen "$port" rp3-a)"
	chk_match "the reason names what the server said" 'does not accept the certificate|alert' \
		"$(mtlsd_log_since rp3 "$off" | grep 'was not accepted')"
	t_done "validate: a certificate the endpoint rejects stays pending; the current one keeps serving"

	s_good=$(mint rp3-good client-root "-1 minute" "+90 days")
	off=$(mtlsd_log_offset rp3)
	drop rp3-good "$d/certs.d/c"
	mtlsd_wait_log rp3 "$off" "serial $s_good validated" 15 ||
		chk_fail "no 'validated' line for the accepted certificate"
	_rp3_new() { [ "$(serial_seen "$port" rp3-poll)" = "$s_good" ]; }
	wait_until 10 _rp3_new || chk_fail "validated certificate not presented"
	t_done "validate: an accepted certificate becomes current after its test request"
	mtlsd_stop rp3
fi

# ---- 4. a reload that changes nothing for a destination keeps its pooled
# upstream connection (no new handshake); a certificate change does not
rp_instance rp4
d=$TMP/inst/rp4
# one worker: the two requests below must meet the same pool (each worker
# has its own; t_34 covers pools with several)
sed -i '/^workers:/d' "$d/mtlsd.yaml" && echo "workers: 1" >>"$d/mtlsd.yaml"
s_old=$(mint rp4-old client-root "-1 hour" "+30 days")
drop rp4-old "$d/certs.d/c"
if mtlsd_start rp4; then
	port=$(mtlsd_port rp4 m)
	req rp4-a "http://127.0.0.1:$port/?t=rp4-a"
	c1=$(hdr X-Upstream-Conn)
	off=$(mtlsd_log_offset rp4)
	kill -HUP "$(mtlsd_pid rp4)"
	mtlsd_wait_log rp4 "$off" 'reload: generation 2 applied' 10 || chk_fail "no reload"
	req rp4-b "http://127.0.0.1:$port/?t=rp4-b"
	chk_eq "upstream connection after a reload that changed nothing" "$c1" "$(hdr X-Upstream-Conn)"
	t_done "pool: a reload that changes nothing keeps pooled upstream connections"
	s_new=$(mint rp4-new client-root "-1 minute" "+60 days")
	off=$(mtlsd_log_offset rp4)
	drop rp4-new "$d/certs.d/c"
	_rp4_new() { [ "$(serial_seen "$port" rp4-poll)" = "$s_new" ]; }
	wait_until 10 _rp4_new || chk_fail "new certificate not presented"
	req rp4-c "http://127.0.0.1:$port/?t=rp4-c"
	chk_eq "serial" "$s_new" "$(hdr X-Client-Serial)"
	chk_ne "upstream connection after the certificate changed" "$c1" "$(hdr X-Upstream-Conn)"
	t_done "pool: after a certificate change the old pooled connection is not reused"
	mtlsd_stop rp4
fi
