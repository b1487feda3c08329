# shellcheck shell=bash
# mtlsd -t: configuration and certificate errors, exit status and
# "file:line:col: message" output.

trust="trust: {ca_file: $PKI/trust/server-root.pem}"

# chk_config NAME: config dir for one -t case, certs_dir of its own
chk_config() {
	local d=$TMP/inst/$1
	mtlsd_write_config "$1"
	mkdir -p "$d/certs.d"
	cp -a "$PKI/certs.d/client-pem" "$d/certs.d/"
	sed -i "s|^certs_dir: .*|certs_dir: certs.d|" "$d/mtlsd.yaml"
}

# good mapping used by several cases
good_mapping() {
	cat <<EOF
mappings:
  - name: ok
    url: https://localhost:$NG_PORT/
    certificate: ${1:-client-pem}
    $trust
EOF
}

chk_config chk-good
good_mapping | mtlsd_mapping_file chk-good ok.yaml
mtlsd_check "$TMP/inst/chk-good/mtlsd.yaml"
chk_eq "exit status" 0 "$CHK_RC"
[ "$CHK_RC" = 0 ] || chk_fail "output: $CHK_OUT"
t_done "check: -t on a good configuration exits 0"

# unknown key on line 5 of a mapping file
chk_config chk-badkey
good_mapping | mtlsd_mapping_file chk-badkey a-ok.yaml
mtlsd_mapping_file chk-badkey b-bad.yaml <<EOF
mappings:
  - name: bad
    url: https://localhost:$NG_PORT/bad/
    certificate: client-pem
    colour: blue
    $trust
EOF
mtlsd_check "$TMP/inst/chk-badkey/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "output names FILE:5:COL:" "b-bad\\.yaml:5:[0-9]+:" "$CHK_OUT"
chk_match "output names the key" "colour" "$CHK_OUT"
t_done "check: unknown key in a mapping file → exit 1, FILE:LINE:COL: names it"

# unknown key on line 2 of the main file
chk_config chk-mainkey
good_mapping | mtlsd_mapping_file chk-mainkey ok.yaml
sed -i '2i\frobnicate: yes' "$TMP/inst/chk-mainkey/mtlsd.yaml"
mtlsd_check "$TMP/inst/chk-mainkey/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "output names mtlsd.yaml:2:COL:" "mtlsd\\.yaml:2:[0-9]+:" "$CHK_OUT"
t_done "check: unknown key in the main file → exit 1, FILE:LINE:COL:"

# YAML syntax error
chk_config chk-syntax
good_mapping | mtlsd_mapping_file chk-syntax ok.yaml
printf 'mappings:\n  - name: broken\n    url: [unclosed\n' | mtlsd_mapping_file chk-syntax broken.yaml
mtlsd_check "$TMP/inst/chk-syntax/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "output names broken.yaml:LINE:COL:" "broken\\.yaml:[0-9]+:[0-9]+:" "$CHK_OUT"
t_done "check: YAML syntax error → exit 1, FILE:LINE:COL:"

# plaintext upstream: never allowed
chk_config chk-http
mtlsd_mapping_file chk-http plain.yaml <<EOF
mappings:
  - name: plain
    url: http://localhost:$NG_PORT/
    certificate: client-pem
EOF
mtlsd_check "$TMP/inst/chk-http/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "output names plain.yaml:3:COL:" "plain\\.yaml:3:[0-9]+:" "$CHK_OUT"
t_done "check: an http:// (plaintext) url → exit 1, FILE:LINE:COL:"

# non-loopback listener without allow_remote
chk_config chk-remote
mtlsd_mapping_file chk-remote remote.yaml <<EOF
mappings:
  - name: remote
    url: https://localhost:$NG_PORT/
    listen: 0.0.0.0:0
    certificate: client-pem
    $trust
EOF
mtlsd_check "$TMP/inst/chk-remote/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "output names remote.yaml:4:COL:" "remote\\.yaml:4:[0-9]+:" "$CHK_OUT"
t_done "check: non-loopback listen without allow_remote → exit 1, FILE:LINE:COL:"

# certificate directory with a certificate but no matching key
chk_config chk-nopair
mkdir -p "$TMP/inst/chk-nopair/certs.d/lonely"
cp "$PKI/certs.d/client-pem/client.crt" "$TMP/inst/chk-nopair/certs.d/lonely/"
good_mapping lonely | mtlsd_mapping_file chk-nopair ok.yaml
mtlsd_check "$TMP/inst/chk-nopair/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "output names the certificate" "lonely" "$CHK_OUT"
t_done "check: certificate dir without a usable cert/key pair → exit 1, names it"

# certificate name with no directory at all
chk_config chk-nocert
good_mapping nosuchcert | mtlsd_mapping_file chk-nocert ok.yaml
mtlsd_check "$TMP/inst/chk-nocert/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "output names the certificate" "nosuchcert" "$CHK_OUT"
t_done "check: mapping names a certificate that does not exist → exit 1, names it"

# private key readable by everyone
chk_config chk-keymode
chmod 0644 "$TMP/inst/chk-keymode/certs.d/client-pem/client.key"
good_mapping | mtlsd_mapping_file chk-keymode ok.yaml
mtlsd_check "$TMP/inst/chk-keymode/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "output names the key file" "client-pem/client\\.key" "$CHK_OUT"
t_done "check: private key with mode 0644 refused, message names the file"

# trust file that does not exist
chk_config chk-notrust
mtlsd_mapping_file chk-notrust ok.yaml <<EOF
mappings:
  - name: ok
    url: https://localhost:$NG_PORT/
    certificate: client-pem
    trust: {ca_file: $TMP/does-not-exist.pem}
EOF
mtlsd_check "$TMP/inst/chk-notrust/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "output names the file" "does-not-exist\\.pem" "$CHK_OUT"
t_done "check: missing trust.ca_file → exit 1, names it"
