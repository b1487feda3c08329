# shellcheck shell=bash
# mtlsctl, the admin tool, against real files, the real daemon (admin
# endpoint on a unix socket) and the real nginx upstream, the way issue 7
# will be checked: create a key and CSR, sign it with a separate CA, drop
# it in, map two URLs to it, test a mapping against an upstream that
# rejects it, export it, check good and bad PKCS#12 files (legacy, weak,
# wrong password, missing intermediate), remove a certificate in use.
#
# MTLSCTL_BIN (default: mtlsctl next to MTLSD_BIN) is the tool under test.

CTL_BIN=${MTLSCTL_BIN:-$(dirname "$MTLSD_BIN")/mtlsctl}
ctl_d=$TMP/inst/ctl
ctl_w=$TMP/ctl-work
trust="trust: {ca_file: $PKI/trust/server-root.pem}"

if [ ! -x "$CTL_BIN" ]; then
	t_fail "mtlsctl: binary" "$CTL_BIN is not executable (set MTLSCTL_BIN)"
	return 0
fi
echo "# mtlsctl: $CTL_BIN"

# ctl NAME ARGS...: mtlsctl -c INSTANCE-CONFIG ARGS; sets CTL_RC, CTL_OUT
# (stdout), CTL_ERR (stderr); the output files are $TMP/r/ctl-NAME.{out,err}
ctl() {
	local n=$1
	shift
	timeout 120 "$CTL_BIN" -c "$ctl_d/mtlsd.yaml" "$@" >"$TMP/r/ctl-$n.out" 2>"$TMP/r/ctl-$n.err"
	CTL_RC=$?
	CTL_OUT=$(cat "$TMP/r/ctl-$n.out")
	CTL_ERR=$(cat "$TMP/r/ctl-$n.err")
}

# ctl_json NAME EXPR: the Python expression EXPR over the JSON document
# mtlsctl NAME printed (d); lists, dicts, booleans and None as JSON;
# "JSON-ERROR ..." / "EXPR-ERROR ..." when it cannot
ctl_json() {
	python3 - "$TMP/r/ctl-$1.out" "$2" <<'EOF' 2>&1
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        d = json.load(f)
except Exception as e:
    print("JSON-ERROR", e)
    sys.exit(0)
try:
    v = eval(sys.argv[2])
except Exception as e:
    print("EXPR-ERROR", repr(e))
    sys.exit(0)
print(json.dumps(v) if v is None or isinstance(v, (dict, list, bool)) else v)
EOF
}

# ctl_sign CSR CA OUT START END [EKU]: a certificate for CSR valid from START
# to END (date -d forms), issued by ca/CA (or by CA.crt/CA.key when CA is a
# path prefix), with extendedKeyUsage EKU (default clientAuth). openssl ca,
# since openssl x509 cannot set a not-before: the tests need distinct ones.
ctl_sign() {
	local ca=$2
	[ -f "$ca.crt" ] || ca=$PKI/ca/$2
	: >"$ctl_w/index.txt"
	echo "5$(openssl rand -hex 12 | cut -c2-)" >"$ctl_w/serial"
	cat >"$ctl_w/ca.cnf" <<EOF
[ca]
default_ca = d
[d]
database = $ctl_w/index.txt
new_certs_dir = $ctl_w
serial = $ctl_w/serial
default_md = sha256
policy = p
unique_subject = no
x509_extensions = ext
[p]
commonName = supplied
organizationName = optional
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = ${6:-clientAuth}
subjectAltName = DNS:partner.client.test,IP:10.1.2.3
EOF
	openssl ca -batch -notext -config "$ctl_w/ca.cnf" -cert "$ca.crt" -keyfile "$ca.key" \
		-in "$1" -out "$3" -startdate "$(date -u -d "$4" +%Y%m%d%H%M%SZ)" \
		-enddate "$(date -u -d "$5" +%Y%m%d%H%M%SZ)" >"$ctl_w/ca.log" 2>&1 || {
		chk_fail "openssl ca: $(tail -n 2 "$ctl_w/ca.log" | tr '\n' ' ')"
		return 1
	}
}

serial_of() { openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'; }

mkdir -p -m 0700 "$ctl_w"
mtlsd_write_config ctl "admin: {listen: \"unix:$ctl_d/admin.sock\"}"
mkdir -p "$ctl_d/certs.d"
cp -a "$PKI/certs.d/client-pem" "$PKI/certs.d/client-p12" "$ctl_d/certs.d/"
sed -i "s|^certs_dir: .*|certs_dir: certs.d|" "$ctl_d/mtlsd.yaml"

# --- usage ----------------------------------------------------------------
ctl help --help
chk_eq "--help exit" 0 "$CTL_RC"
ctl_help=$CTL_OUT
for c in status certs reload check-p12 new-key export rm test; do
	chk_match "--help lists $c" "  $c " "$ctl_help"
	ctl "help-$c" "$c" --help
	chk_eq "$c --help exit" 0 "$CTL_RC"
	chk_match "$c --help" "^usage: mtlsctl .*$c" "$CTL_OUT"
done
ctl bogus bogus
chk_eq "unknown command exit" 2 "$CTL_RC"
chk_match "unknown command message" "unknown command 'bogus'" "$CTL_ERR"
ctl noarg check-p12
chk_eq "check-p12 without FILE exit" 2 "$CTL_RC"
ctl nocn new-key x
chk_eq "new-key without --cn exit" 2 "$CTL_RC"
ctl badopt certs --frobnicate
chk_eq "unknown option exit" 2 "$CTL_RC"
t_done "mtlsctl: --help for every command, exit 2 on wrong usage"

# --- new-key: a key and a CSR, signed by a separate CA ---------------------
ctl newkey new-key partner --cn partner.client.test --san DNS:partner.client.test,IP:10.1.2.3
chk_eq "exit" 0 "$CTL_RC"
chk_match "says what it wrote" "wrote .*/certs.d/partner/client.key \(EC P-256, mode 0600\)" "$CTL_OUT"
chk_eq "key mode" 600 "$(stat -c %a "$ctl_d/certs.d/partner/client.key" 2>&1)"
chk_match "CSR verifies" "verify OK" "$(openssl req -in "$ctl_d/certs.d/partner/client.csr" -verify -noout 2>&1)"
ctl_csr_text=$(openssl req -in "$ctl_d/certs.d/partner/client.csr" -noout -text 2>&1)
chk_match "CSR subject" "Subject: CN ?= ?partner.client.test" "$ctl_csr_text"
chk_match "CSR SANs" "DNS:partner.client.test, IP Address:10.1.2.3" "$ctl_csr_text"
chk_eq "CSR key is the key's" "$(openssl pkey -in "$ctl_d/certs.d/partner/client.key" -pubout 2>&1)" \
	"$(openssl req -in "$ctl_d/certs.d/partner/client.csr" -pubkey -noout 2>&1)"
ctl newkey-rsa new-key spare --cn spare --key rsa-3072
chk_eq "rsa-3072 exit" 0 "$CTL_RC"
chk_match "rsa-3072 key" "3072 bit" "$(openssl pkey -in "$ctl_d/certs.d/spare/client.key" -noout -text 2>&1 | head -n 1)"
ctl newkey-weak new-key spare --cn spare --key rsa-1024
chk_eq "rsa-1024 refused (usage)" 2 "$CTL_RC"
ctl newkey-name new-key ../escape --cn x
chk_eq "bad name exit" 1 "$CTL_RC"
chk_eq "nothing outside certs.d" no "$([ -e "$ctl_d/escape" ] && echo yes || echo no)"
t_done "mtlsctl new-key: key 0600 and a CSR that openssl req -verify accepts, with the SANs asked for"

# a separate CA that nginx does not trust signs the request
openssl req -new -x509 -sha256 -days 400 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$ctl_w/sep-root.key" -subj "/O=mtlsd test/CN=mtlsctl separate root" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
	-out "$ctl_w/sep-root.crt" 2>/dev/null
ctl_sign "$ctl_d/certs.d/partner/client.csr" "$ctl_w/sep-root" "$ctl_w/partner.crt" \
	'-1 hour' '+45 days'
ctl_bad_serial=$(serial_of "$ctl_w/partner.crt")
mv "$ctl_w/partner.crt" "$ctl_d/certs.d/partner/client.crt"
# its successor (new-key again: dated names), signed by the root nginx trusts;
# before-expiry keeps it pending while the first one is valid
ctl newkey2 new-key partner --cn partner.client.test
chk_eq "second new-key exit" 0 "$CTL_RC"
ctl_next=$(sed -n 's|.*certs.d/partner/\(client-[0-9TZ]*\)\.key .*|\1|p' <<<"$CTL_OUT")
chk_match "dated file name" '^client-[0-9]{8}T[0-9]{6}Z$' "$ctl_next"
chk_eq "first key kept" 600 "$(stat -c %a "$ctl_d/certs.d/partner/client.key" 2>&1)"
ctl_sign "$ctl_d/certs.d/partner/$ctl_next.csr" client-root "$ctl_w/next.crt" \
	'-10 minutes' '+365 days'
ctl_good_serial=$(serial_of "$ctl_w/next.crt")
mv "$ctl_w/next.crt" "$ctl_d/certs.d/partner/$ctl_next.crt"
printf 'rotation: {activate: before-expiry}\n' >"$ctl_d/certs.d/partner/certificate.yaml"
t_done "mtlsctl new-key on an existing name writes dated files beside the old ones"

# an upstream that refuses unknown issuers with a TLS alert, as OpenSSL,
# Java, Go and HAProxy servers do (nginx instead completes the handshake and
# answers 400); three connections (the readiness check and two tests), then
# it exits by itself
ctl_ss_port=$($NETTOOL freeport 1)
openssl s_server -accept "127.0.0.1:$ctl_ss_port" -naccept 3 -cert "$PKI/server/localhost.crt" \
	-key "$PKI/server/localhost.key" -Verify 2 -verify_return_error \
	-CAfile "$PKI/trust/client-ca-bundle.pem" -www -quiet >"$ctl_w/s_server.log" 2>&1 &
ctl_ss_pid=$!
_ctl_ss_ready() {
	kill -0 "$ctl_ss_pid" 2>/dev/null || return 99
	$NETTOOL listening "$ctl_ss_port"
}
wait_until 15 _ctl_ss_ready || chk_fail "openssl s_server does not listen on $ctl_ss_port"

mtlsd_mapping_file ctl ctl.yaml <<EOF
mappings:
  - name: ctl-a
    url: https://localhost:$NG_PORT/
    certificate: partner
    $trust
    validate: false
  - name: ctl-b
    url: https://localhost:$NG_PORT/b/
    certificate: partner
    $trust
    validate: false
  - name: ctl-pem
    url: https://localhost:$NG_PORT/pem/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
  - name: ctl-untrusted
    url: https://localhost:$NG_UNTRUST/
    certificate: client-pem
    $trust
    validate: false
  - name: ctl-strict
    url: https://localhost:$ctl_ss_port/
    certificate: partner
    $trust
    validate: false
  - name: ctl-off
    url: https://localhost:$NG_PORT/off/
    certificate: client-p12
    $trust
    enabled: false
EOF

# --- without the daemon -----------------------------------------------------
ctl status-down status
chk_eq "status exit" 1 "$CTL_RC"
chk_match "status says why" "cannot connect to mtlsd's admin endpoint unix:.*admin.sock.*is mtlsd running" "$CTL_ERR"
ctl certs-off certs partner
chk_eq "certs exit" 0 "$CTL_RC"
chk_match "read from the files" "mtlsd not reachable" "$CTL_OUT"
chk_match "current" "current +serial $ctl_bad_serial" "$CTL_OUT"
chk_match "pending" "pending +serial $ctl_good_serial" "$CTL_OUT"
chk_match "pending reason" "pending: +rotation before-expiry: becomes current at" "$CTL_OUT"
chk_match "used by" "used by: +ctl-a, ctl-b, ctl-strict" "$CTL_OUT"
chk_match "source" "partner \(files: .*/certs.d/partner\)" "$CTL_OUT"
ctl certs-off-json certs --json
chk_eq "json source" files "$(ctl_json certs-off-json 'd["source"]')"
chk_eq "json names" '["client-p12", "client-pem", "partner", "spare"]' "$(ctl_json certs-off-json '[c["name"] for c in d["certificates"]]')"
chk_eq "spare has no pair" null "$(ctl_json certs-off-json '[c for c in d["certificates"] if c["name"] == "spare"][0]["current"]')"
chk_match "spare's problem" "no certificate matches this private key" "$(ctl_json certs-off-json '[c for c in d["certificates"] if c["name"] == "spare"][0]["problems"]')"
t_done "mtlsctl without mtlsd: status exits 1 saying why, certs reads the files"

if ! mtlsd_start ctl; then
	kill "$ctl_ss_pid" 2>/dev/null
	return 0
fi

# --- status ------------------------------------------------------------------
ctl status status
chk_eq "exit" 0 "$CTL_RC"
chk_match "header" "^mtlsd [0-9.]+, pid $(mtlsd_pid ctl), .*generation 1" "$CTL_OUT"
chk_match "last reload" "last reload: ok" "$CTL_OUT"
chk_match "mapping ctl-a" "ctl-a +https://localhost:$NG_PORT/ +- +partner +0 +ok" "$CTL_OUT"
chk_match "mapping ctl-pem has a listener" "ctl-pem +https://localhost:$NG_PORT/pem/ +127\\.0\\.0\\.1:0 +client-pem" "$CTL_OUT"
chk_match "disabled mapping" "ctl-off .* disabled" "$CTL_OUT"
chk_match "certificate line" "certificate partner \(files\): current serial $ctl_bad_serial, 4[45] days left; 1 pending" "$CTL_OUT"
ctl status-json status --json
chk_eq "json generation" 1 "$(ctl_json status-json 'd["generation"]')"
chk_eq "json mappings" '["ctl-a", "ctl-b", "ctl-pem", "ctl-untrusted", "ctl-strict", "ctl-off"]' "$(ctl_json status-json '[m["name"] for m in d["mappings"]]')"
t_done "mtlsctl status: generation, last reload, each mapping's url, listener, certificate and state"

# --- certs --------------------------------------------------------------------
ctl certs certs partner
chk_eq "exit" 0 "$CTL_RC"
chk_nomatch "from the daemon" "not reachable|not loaded by mtlsd" "$CTL_OUT"
chk_match "source files" "^partner \(files: " "$CTL_OUT"
chk_match "current serial" "current +serial $ctl_bad_serial" "$CTL_OUT"
chk_match "subject" "subject: +CN=partner.client.test" "$CTL_OUT"
chk_match "SANs" "SANs: +DNS:partner.client.test, IP:10.1.2.3" "$CTL_OUT"
chk_match "issuer" "issuer: +CN=mtlsctl separate root,O=mtlsd test" "$CTL_OUT"
chk_match "validity and days left" "valid: +[0-9T:Z-]+ \.\. [0-9T:Z-]+ \(4[45] days left\)" "$CTL_OUT"
chk_match "pending one" "pending +serial $ctl_good_serial" "$CTL_OUT"
chk_match "why pending" "pending: +rotation before-expiry: becomes current at" "$CTL_OUT"
chk_match "users" "used by: +ctl-a, ctl-b, ctl-strict" "$CTL_OUT"
ctl certs-json certs --json
chk_eq "json source" mtlsd "$(ctl_json certs-json 'd["source"]')"
chk_eq "json current" "$ctl_bad_serial" "$(ctl_json certs-json '[c for c in d["certificates"] if c["name"] == "partner"][0]["current"]["serial"]')"
chk_eq "json pending" "[\"$ctl_good_serial\"]" "$(ctl_json certs-json '[p["serial"] for p in [c for c in d["certificates"] if c["name"] == "partner"][0]["pending"]]')"
chk_eq "json source per certificate" files "$(ctl_json certs-json '[c for c in d["certificates"] if c["name"] == "partner"][0]["source"]')"
chk_eq "json loaded" true "$(ctl_json certs-json '[c for c in d["certificates"] if c["name"] == "partner"][0]["loaded_by_mtlsd"]')"
chk_eq "json used_by" '[["ctl-a", true], ["ctl-b", true], ["ctl-strict", true]]' "$(ctl_json certs-json '[[u["mapping"], u["enabled"]] for u in [c for c in d["certificates"] if c["name"] == "partner"][0]["used_by"]]')"
chk_eq "unused name read from files" false "$(ctl_json certs-json '[c for c in d["certificates"] if c["name"] == "spare"][0]["loaded_by_mtlsd"]')"
ctl certs-unknown certs no-such-name
chk_eq "unknown name exit" 1 "$CTL_RC"
chk_match "unknown name message" "no certificate named 'no-such-name'" "$CTL_ERR"
t_done "mtlsctl certs: current and pending with subject, SANs, issuer, validity, source and users"

# --- test: the partner rejects the certificate from the separate CA ----------
ctl test-alert test ctl-strict
chk_eq "exit" 1 "$CTL_RC"
chk_match "verdict" "FAILED \(tls\): the server rejected our certificate: alert unknown_ca — the remote side must trust issuer CN=mtlsctl separate root,O=mtlsd test" "$CTL_OUT"
chk_match "names the certificate tried" "certificate partner: current serial $ctl_bad_serial" "$CTL_OUT"
ctl test-alert-json test ctl-strict --json
chk_eq "json ok" false "$(ctl_json test-alert-json 'd["ok"]')"
chk_eq "json stage" tls "$(ctl_json test-alert-json 'd["stage"]')"
chk_match "json error" "alert unknown_ca" "$(ctl_json test-alert-json 'd["error"]')"
chk_match "json explanation" "must trust issuer CN=mtlsctl separate root" "$(ctl_json test-alert-json 'd["explanation"]')"
wait_until 10 _not_running "$ctl_ss_pid" || kill "$ctl_ss_pid" 2>/dev/null
wait "$ctl_ss_pid" 2>/dev/null
t_done "mtlsctl test: a TLS server that does not trust our issuer → 'alert unknown_ca — the remote side must trust issuer X', exit 1"

ctl test-bad test ctl-a
chk_eq "exit" 1 "$CTL_RC"
chk_match "verdict" "FAILED \(http\): the server rejected our certificate after the handshake: HTTP 400 \"The SSL certificate error\" — the remote side must trust issuer CN=mtlsctl separate root,O=mtlsd test" "$CTL_OUT"
chk_match "handshake line" "tls +TLSv1\.[23], server certificate verified as localhost" "$CTL_OUT"
ngx_bad=$(grep -c 'client SSL certificate verify error' "$NG_DIR/error.log")
chk_ge "nginx logged the verify error" 1 "$ngx_bad"
t_done "mtlsctl test: nginx not trusting our issuer (400 after the handshake) → 'the remote side must trust issuer X', exit 1"

ctl test-pending test ctl-b --pending
chk_eq "exit" 0 "$CTL_RC"
chk_match "verdict" "^OK: localhost accepted our certificate \(serial $ctl_good_serial\) and answered 200" "$(tail -n 1 <<<"$CTL_OUT")"
chk_match "tls line" "tls +TLSv1\.[23], server certificate verified as localhost" "$CTL_OUT"
chk_match "http line" "GET /b/ -> 200" "$CTL_OUT"
t_done "mtlsctl test --pending: the pending certificate is accepted (exit 0)"

ctl test-url test "https://localhost:$NG_PORT/pem/x?t=ctl-url"
chk_eq "exit" 0 "$CTL_RC"
chk_match "mapping chosen by the URL" "^mapping ctl-pem " "$CTL_OUT"
ngx_line=$(ngx_log ctl-url)
chk_eq "nginx saw our certificate" "$SERIAL_PEM" "$(ngx_field "$ngx_line" serial)"
chk_eq "nginx verified it" SUCCESS "$(ngx_field "$ngx_line" verify)"
ctl test-url-json test "https://localhost:$NG_PORT/pem/?t=ctl-json" --json
chk_eq "json ok" true "$(ctl_json test-url-json 'd["ok"]')"
chk_eq "json status" 200 "$(ctl_json test-url-json 'd["http_status"]')"
chk_eq "json serial" "$SERIAL_PEM" "$(ctl_json test-url-json 'd["serial"]')"
ctl test-nomap test https://nowhere.example/
chk_eq "unmapped URL exit" 1 "$CTL_RC"
chk_match "unmapped URL message" "no mapping for host nowhere.example" "$CTL_ERR"
ctl test-untrusted test ctl-untrusted
chk_eq "untrusted server exit" 1 "$CTL_RC"
chk_match "untrusted server verdict" "we do not trust the server's certificate: its issuer is not in .*server-root.pem" "$CTL_OUT"
t_done "mtlsctl test URL: routes like the proxy port; nginx sees and verifies the certificate; server trust failures explained"

# --- reload -------------------------------------------------------------------
ctl reload reload
chk_eq "exit" 0 "$CTL_RC"
chk_match "result" "^reload: generation [0-9]+ applied \(6 mappings\)$" "$CTL_OUT"
printf 'mappings:\n  - name: broken\n    url: [unclosed\n' | mtlsd_mapping_file ctl zz-broken.yaml
ctl reload-kept reload
chk_eq "kept-out exit" 0 "$CTL_RC"
chk_match "kept-out result" "applied \(6 mappings\) with [0-9]+ problem\(s\) kept out" "$CTL_OUT"
chk_match "kept-out file:line:col" "zz-broken\.yaml:[0-9]+:[0-9]+: " "$CTL_OUT"
rm -f "$ctl_d/mappings.d/zz-broken.yaml"
cp "$ctl_d/mtlsd.yaml" "$ctl_w/mtlsd.yaml.good"
echo 'timeouts: {connect: soon}' >>"$ctl_d/mtlsd.yaml"
ctl reload-fail --admin "unix:$ctl_d/admin.sock" reload
chk_eq "failed reload exit" 1 "$CTL_RC"
chk_match "failed reload result" "^reload failed: [0-9]+ error\(s\); still serving generation" "$CTL_OUT"
chk_match "failed reload error" "mtlsd\.yaml:[0-9]+:[0-9]+: " "$CTL_OUT"
cp "$ctl_w/mtlsd.yaml.good" "$ctl_d/.mtlsd.yaml.tmp" && mv "$ctl_d/.mtlsd.yaml.tmp" "$ctl_d/mtlsd.yaml"
ctl reload-again reload
chk_eq "repaired reload exit" 0 "$CTL_RC"
t_done "mtlsctl reload: prints the result (applied / problems kept out with file:line:col / failed, exit 1)"

# --- rm -------------------------------------------------------------------------
ctl rm-used rm partner
chk_eq "in use exit" 1 "$CTL_RC"
chk_match "in use message" "refusing to remove certificate 'partner': enabled mapping\(s\) use it: ctl-a \(.*ctl\.yaml:[0-9]+\), ctl-b" "$CTL_ERR"
chk_eq "still there" yes "$([ -d "$ctl_d/certs.d/partner" ] && echo yes)"
ctl rm-disabled rm client-p12
chk_eq "named by a disabled mapping exit" 1 "$CTL_RC"
chk_match "disabled message" "disabled mapping\(s\) still name it: ctl-off" "$CTL_ERR"
ctl rm-spare rm spare
chk_eq "unused exit" 0 "$CTL_RC"
chk_eq "gone from certs.d" no "$([ -e "$ctl_d/certs.d/spare" ] && echo yes || echo no)"
ctl_trashed=$(ls -d "$ctl_d/certs.d/.trash/spare-"* 2>/dev/null | head -n 1)
chk_match "in the trash, with a timestamp" "/certs.d/\.trash/spare-[0-9]{8}T[0-9]{6}Z$" "$ctl_trashed"
chk_eq "its key came along" 600 "$(stat -c %a "$ctl_trashed/client.key" 2>&1)"
chk_eq "trash mode" 700 "$(stat -c %a "$ctl_d/certs.d/.trash" 2>&1)"
chk_match "says how to restore" "restore: mv " "$CTL_OUT"
ctl rm-gone rm spare
chk_eq "second rm exit" 1 "$CTL_RC"
ctl reload-after-rm reload
chk_eq "reload after rm" 0 "$CTL_RC"
t_done "mtlsctl rm: refused while a mapping uses the certificate; otherwise moved to certs.d/.trash/NAME-TIMESTAMP"

# --- export ---------------------------------------------------------------------
ctl export export partner --p12 "$ctl_w/partner.p12"
chk_eq "exit" 0 "$CTL_RC"
chk_eq "file mode" 600 "$(stat -c %a "$ctl_w/partner.p12" 2>&1)"
chk_eq "password file mode" 600 "$(stat -c %a "$ctl_w/partner.p12.pass" 2>&1)"
chk_match "says the format" "PBES2 \(PBKDF2-HMAC-SHA256, AES-256-CBC\), HMAC-SHA256 MAC" "$CTL_OUT"
openssl pkcs12 -in "$ctl_w/partner.p12" -nodes -passin "file:$ctl_w/partner.p12.pass" \
	-out "$ctl_w/partner.pem" 2>"$ctl_w/pkcs12.err"
chk_eq "openssl pkcs12 reads it" 0 "$?"
chk_eq "the current certificate" "$ctl_bad_serial" "$(serial_of "$ctl_w/partner.pem")"
chk_eq "key matches certificate" "$(openssl x509 -in "$ctl_w/partner.pem" -pubkey -noout 2>&1)" \
	"$(openssl pkey -in "$ctl_w/partner.pem" -pubout 2>&1)"
chk_match "modern encryption" "PBES2, PBKDF2, AES-256-CBC" "$(openssl pkcs12 -in "$ctl_w/partner.p12" -info -noout -passin "file:$ctl_w/partner.p12.pass" 2>&1)"
if command -v keytool >/dev/null 2>&1; then
	chk_match "Java's keytool reads it" "PrivateKeyEntry" "$(keytool -list -storetype PKCS12 -keystore "$ctl_w/partner.p12" -storepass "$(cat "$ctl_w/partner.p12.pass")" 2>&1)"
else
	echo "# keytool not installed: Java check skipped"
fi
ctl export-again export partner --p12 "$ctl_w/partner.p12"
chk_eq "no overwrite without --force" 1 "$CTL_RC"
chk_match "says it exists" "exists \(--force replaces it\)" "$CTL_ERR"
echo "correct horse battery staple" >"$ctl_w/pw"
ctl export-pw export client-pem --p12 "$ctl_w/pem.p12" --password-file "$ctl_w/pw"
chk_eq "with a password file exit" 0 "$CTL_RC"
chk_eq "no .pass written" no "$([ -e "$ctl_w/pem.p12.pass" ] && echo yes || echo no)"
chk_eq "openssl with that password" "$SERIAL_PEM" "$(openssl pkcs12 -in "$ctl_w/pem.p12" -nodes -passin "file:$ctl_w/pw" 2>/dev/null | openssl x509 -noout -serial 2>&1 | sed 's/^serial=//')"
mkdir -p -m 0755 "$ctl_w/public"
ctl export-public export partner --p12 "$ctl_w/public/x.p12"
chk_eq "readable directory exit" 1 "$CTL_RC"
chk_match "readable directory message" "refusing to write into .*/public: mode 0755 lets others list it" "$CTL_ERR"
chk_eq "nothing written there" "" "$(ls -A "$ctl_w/public")"
mkdir -p -m 0770 "$ctl_w/shared"
ctl export-shared export partner --p12 "$ctl_w/shared/x.p12"
chk_eq "group-writable directory exit" 1 "$CTL_RC"
t_done "mtlsctl export: PKCS#12 (PBES2/AES) 0600, re-importable by openssl pkcs12; refuses directories others can read"

# --- check-p12 --------------------------------------------------------------------
ctl p12-export check-p12 "$ctl_w/partner.p12" --ca-file "$ctl_w/sep-root.crt"
chk_eq "our export exit" 0 "$CTL_RC"
chk_match "our export verdict" "partner\.p12: OK$" "$(head -n 1 <<<"$CTL_OUT")"
chk_match "chain complete" "complete: leaf <- CN=mtlsctl separate root" "$CTL_OUT"
ctl p12-good check-p12 "$PKI/certs.d/client-p12/client.p12"
chk_eq "PKI's p12 (password from FILE.pass) exit" 0 "$CTL_RC"
chk_match "PKI's p12 password" "ok +password +the password \(FILE.pass\) opens it" "$CTL_OUT"
chk_match "PKI's p12 java" "ok +java +modern format" "$CTL_OUT"
echo "not-the-password" >"$ctl_w/wrong"
ctl p12-wrong check-p12 "$PKI/certs.d/client-p12/client.p12" --password-file "$ctl_w/wrong"
chk_eq "wrong password exit" 1 "$CTL_RC"
chk_match "wrong password verdict" "NOT USABLE: wrong password" "$(head -n 1 <<<"$CTL_OUT")"
t_done "mtlsctl check-p12: a good file passes; a wrong password is named (exit 1)"

# legacy: OpenSSL 3's -legacy (RC2-40 certificates, 3DES key, SHA-1 MAC)
openssl pkcs12 -export -legacy -in "$PKI/certs.d/client-pem/client.crt" \
	-inkey "$PKI/certs.d/client-pem/client.key" -passout pass:legacy-pw -out "$ctl_w/legacy.p12" 2>"$ctl_w/legacy.err" ||
	chk_fail "openssl pkcs12 -export -legacy failed: $(head -c 200 "$ctl_w/legacy.err")"
echo legacy-pw >"$ctl_w/legacy.p12.pass"
ctl p12-legacy check-p12 "$ctl_w/legacy.p12"
chk_eq "exit" 1 "$CTL_RC"
chk_match "verdict" "NOT USABLE: the password is right, but mtlsd cannot decrypt its legacy RC2/RC4 encryption" "$(head -n 1 <<<"$CTL_OUT")"
chk_match "names RC2" "WARN +certificate encryption +pbeWithSHAAnd40BitRC2-CBC" "$CTL_OUT"
chk_match "names 3DES" "WARN +key encryption +pbeWithSHAAnd3-KeyTripleDES-CBC" "$CTL_OUT"
chk_match "OpenSSL 3 needs -legacy" "OpenSSL 3 opens it only with -legacy" "$CTL_OUT"
chk_match "Java" "every Java release" "$CTL_OUT"
ctl p12-legacy-json check-p12 "$ctl_w/legacy.p12" --json
chk_eq "json verdict" bad "$(ctl_json p12-legacy-json 'd["verdict"]')"
chk_eq "json legacy parts" '[true, true]' "$(ctl_json p12-legacy-json '[p["legacy"] for p in d["encryption"]]')"
chk_eq "json mac" HMAC-SHA1 "$(ctl_json p12-legacy-json 'd["mac"]')"
t_done "mtlsctl check-p12: a legacy (openssl -legacy, RC2/3DES) PKCS#12 is flagged, naming who can open it"

# weak key: RSA 1024 from the trusted root
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$ctl_w/weak.key" 2>/dev/null
openssl req -new -key "$ctl_w/weak.key" -subj "/CN=weak" -out "$ctl_w/weak.csr"
ctl_sign "$ctl_w/weak.csr" client-root "$ctl_w/weak.crt" '-1 hour' '+365 days'
openssl pkcs12 -export -in "$ctl_w/weak.crt" -inkey "$ctl_w/weak.key" -passout pass:weak \
	-out "$ctl_w/weak.p12"
echo weak >"$ctl_w/weak.pw"
ctl p12-weak check-p12 "$ctl_w/weak.p12" --password-file "$ctl_w/weak.pw"
chk_eq "exit" 1 "$CTL_RC"
chk_match "verdict" "NOT USABLE: weak key: RSA 1024" "$(head -n 1 <<<"$CTL_OUT")"
# for servers only (EKU serverAuth)
openssl pkcs12 -export -in "$PKI/server/localhost.crt" -inkey "$PKI/server/localhost.key" \
	-passout pass:weak -out "$ctl_w/server.p12"
ctl p12-server check-p12 "$ctl_w/server.p12" --password-file "$ctl_w/weak.pw"
chk_eq "server certificate exit" 1 "$CTL_RC"
chk_match "server certificate verdict" "NOT USABLE: not for TLS client authentication" "$(head -n 1 <<<"$CTL_OUT")"
ctl p12-pem check-p12 "$PKI/certs.d/client-pem/client.crt"
chk_eq "not a PKCS#12 exit" 1 "$CTL_RC"
chk_match "not a PKCS#12 verdict" "NOT USABLE: not a PKCS#12 file" "$(head -n 1 <<<"$CTL_OUT")"
t_done "mtlsctl check-p12: a weak key, a server-only certificate and a non-PKCS#12 file are not usable"

# missing intermediate: the client-chain leaf (under client-int) without it
sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$PKI/certs.d/client-chain/combined.pem" | \
	awk '/BEGIN CERTIFICATE/ { n++ } n == 1' >"$ctl_w/chain-leaf.crt"
openssl pkcs12 -export -in "$ctl_w/chain-leaf.crt" -inkey "$PKI/certs.d/client-chain/combined.pem" \
	-passout pass:weak -out "$ctl_w/noint.p12"
ctl p12-noint check-p12 "$ctl_w/noint.p12" --password-file "$ctl_w/weak.pw" --ca-file "$PKI/trust/client-ca-bundle.pem"
chk_eq "missing intermediate exit" 1 "$CTL_RC"
chk_match "missing intermediate verdict" "NOT USABLE: incomplete: CN=client-chain,O=mtlsd test is issued by CN=mtlsd test client intermediate,O=mtlsd test, which is neither in the file nor in .*: the intermediate CA certificate is missing" "$(head -n 1 <<<"$CTL_OUT")"
openssl pkcs12 -export -in "$PKI/certs.d/client-chain/combined.pem" -passout pass:weak \
	-out "$ctl_w/withint.p12"
ctl p12-withint check-p12 "$ctl_w/withint.p12" --password-file "$ctl_w/weak.pw" --ca-file "$PKI/trust/client-ca-bundle.pem"
chk_eq "with the intermediate exit" 0 "$CTL_RC"
chk_match "with the intermediate chain" "complete: leaf <- CN=mtlsd test client intermediate,O=mtlsd test <- CN=mtlsd test client root" "$CTL_OUT"
ctl p12-noint-noca check-p12 "$ctl_w/noint.p12" --password-file "$ctl_w/weak.pw"
chk_eq "without --ca-file: a warning only" 0 "$CTL_RC"
chk_match "without --ca-file: says what the server needs" "WARN +chain +no CA certificate in the file: the server must have the issuer CN=mtlsd test client intermediate" "$CTL_OUT"
t_done "mtlsctl check-p12: a missing intermediate is found (--ca-file), a complete chain passes"

# a sanitizer build reports leaks and undefined behaviour of mtlsctl on its
# stderr (and the exit status, which the checks above would catch as well)
ctl_san=$(grep -El "$SAN_ERE" "$TMP"/r/ctl-*.err 2>/dev/null | head -n 3 | xargs -r -n 1 basename)
chk_eq "mtlsctl runs with a sanitizer report" "" "$ctl_san"
t_done "mtlsctl: no sanitizer report in any run"

mtlsd_stop ctl
