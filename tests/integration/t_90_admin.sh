# shellcheck shell=bash
# The admin endpoint: /status (JSON), /metrics (Prometheus), /certificates
# (public PEM, never a key), POST /reload; on loopback TCP and on a unix
# socket with mode and allowed_uids.
#
# The endpoint's port is learnt from "admin endpoint listening on
# 127.0.0.1:PORT". The instance has its own certs.d: client-pem plus a newer
# client certificate that is not valid for 30 days yet (a pending one).

trust="trust: {ca_file: $PKI/trust/server-root.pem}"
adm_d=$TMP/inst/admin

# adm_port INST: the admin endpoint's TCP port, from the log
adm_port() {
	sed -n 's/.*admin endpoint listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
		"$TMP/inst/$1/mtlsd.log" | tail -n 1
}

# adm_json FILE EXPR: the Python expression EXPR over the parsed document d
# (lists, dicts and booleans as JSON); "JSON-ERROR ..." when FILE is not JSON
adm_json() {
	python3 - "$1" "$2" <<'EOF' 2>&1
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

# adm_metric FILE SERIES: the value of the sample named exactly SERIES
# (name{labels}) in a Prometheus text file
adm_metric() {
	awk -v s="$2" 'index($0, s " ") == 1 { print substr($0, length(s) + 2) }' "$1"
}

# adm_epoch "notAfter=..." (openssl x509 -enddate/-startdate) as Unix time
adm_epoch() { date -u -d "${1#*=}" +%s; }

# adm_future_cert DIR: a client-pem successor, valid from now+30d to
# now+400d (openssl ca, since `openssl x509` cannot set a not-before);
# sets ADM_NEXT_SERIAL
adm_future_cert() {
	local w=$1
	mkdir -p "$w"
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$w/next.key" 2>/dev/null)
	openssl req -new -key "$w/next.key" -subj "/O=mtlsd test/CN=client-pem-next" \
		-out "$w/next.csr" || return 1
	: >"$w/index.txt"
	# a first nibble of 4: positive, no leading zero byte, 12 bytes
	echo "4$(openssl rand -hex 12 | cut -c2-)" >"$w/serial"
	cat >"$w/ca.cnf" <<EOF
[ca]
default_ca = d
[d]
database = $w/index.txt
new_certs_dir = $w
serial = $w/serial
default_md = sha256
policy = p
unique_subject = no
x509_extensions = ext
[p]
organizationName = optional
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
EOF
	openssl ca -batch -config "$w/ca.cnf" -cert "$PKI/ca/client-root.crt" \
		-keyfile "$PKI/ca/client-root.key" -in "$w/next.csr" -out "$w/next.crt" -notext \
		-startdate "$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)" \
		-enddate "$(date -u -d '+400 days' +%Y%m%d%H%M%SZ)" >"$w/ca.log" 2>&1 || {
		cat "$w/ca.log" >&2
		return 1
	}
	ADM_NEXT_SERIAL=$(openssl x509 -in "$w/next.crt" -noout -serial | sed 's/^serial=//')
}

mtlsd_write_config admin 'admin: {listen: "127.0.0.1:0"}'
mkdir -p "$adm_d/certs.d"
cp -a "$PKI/certs.d/client-pem" "$adm_d/certs.d/"
sed -i "s|^certs_dir: .*|certs_dir: certs.d|" "$adm_d/mtlsd.yaml"
if ! adm_future_cert "$TMP/admin-work"; then
	t_fail "admin: setup" "could not make a not-yet-valid certificate"
	return 0
fi
mv "$TMP/admin-work/next.key" "$adm_d/certs.d/client-pem/next.key"
mv "$TMP/admin-work/next.crt" "$adm_d/certs.d/client-pem/next.crt"
mkdir -p "$adm_d/certs.d/client-chain"
cp -a "$PKI/certs.d/client-chain/." "$adm_d/certs.d/client-chain/"
mtlsd_mapping_file admin adm.yaml <<EOF
mappings:
  - name: adm
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
  - name: admchain
    url: https://localhost:$NG_PORT/chain/
    listen: 127.0.0.1:0
    certificate: client-chain
    $trust
EOF
mtlsd_start admin || return 0
adm_port_tcp=$(adm_port admin)
adm_url=http://127.0.0.1:${adm_port_tcp:-1}
[ -n "$adm_port_tcp" ] || chk_fail "no 'admin endpoint listening on 127.0.0.1:PORT' line"
t_done "admin: logs 'admin endpoint listening on 127.0.0.1:PORT'"

# --- /status
req adm-status "$adm_url/status"
chk_eq "status" 200 "$R_STATUS"
chk_match "Content-Type" '^application/json' "$(hdr Content-Type)"
chk_eq "parses as JSON" ok "$(adm_json "$R_B" '"ok"')"
chk_eq "generation" 1 "$(adm_json "$R_B" 'd["generation"]')"
chk_eq "pid" "$(mtlsd_pid admin)" "$(adm_json "$R_B" 'd["pid"]')"
chk_eq "mapping names" '["adm", "admchain"]' "$(adm_json "$R_B" '[m["name"] for m in d["mappings"]]')"
chk_eq "adm's certificate" client-pem "$(adm_json "$R_B" 'd["mappings"][0]["certificate"]')"
chk_eq "adm's serial" "$SERIAL_PEM" "$(adm_json "$R_B" 'd["mappings"][0]["certificate_serial"]')"
chk_eq "last reload ok" true "$(adm_json "$R_B" 'd["last_reload"]["ok"]')"
t_done "admin: GET /status is JSON naming the generation, pid and mappings"

adm_cert='[c for c in d["certificates"] if c["name"] == "client-pem"][0]'
chk_eq "current serial" "$SERIAL_PEM" "$(adm_json "$R_B" "${adm_cert}[\"current\"][\"serial\"]")"
chk_eq "current subject" "CN=client-pem,O=mtlsd test" "$(adm_json "$R_B" "${adm_cert}[\"current\"][\"subject\"]")"
adm_na=$(adm_epoch "$(openssl x509 -in "$PKI/info/client-pem.crt" -noout -enddate)")
chk_eq "current not_after" "$(date -u -d "@$adm_na" +%Y-%m-%dT%H:%M:%SZ)" "$(adm_json "$R_B" "${adm_cert}[\"current\"][\"not_after\"]")"
chk_match "current days_left" '^36[45]$' "$(adm_json "$R_B" "${adm_cert}[\"current\"][\"days_left\"]")"
chk_eq "current files" '["client.crt", "client.key"]' "$(adm_json "$R_B" "${adm_cert}[\"current\"][\"files\"]")"
chk_eq "pending serials" "[\"$ADM_NEXT_SERIAL\"]" "$(adm_json "$R_B" "[p[\"serial\"] for p in ${adm_cert}[\"pending\"]]")"
adm_nb=$(adm_epoch "$(openssl x509 -in "$adm_d/certs.d/client-pem/next.crt" -noout -startdate)")
adm_nb_iso=$(date -u -d "@$adm_nb" +%Y-%m-%dT%H:%M:%SZ)
chk_eq "pending reason" "[\"not valid before $adm_nb_iso\"]" "$(adm_json "$R_B" "[p[\"reason\"] for p in ${adm_cert}[\"pending\"]]")"
chk_eq "pending activates" "[\"$adm_nb_iso\"]" "$(adm_json "$R_B" "[p[\"activates\"] for p in ${adm_cert}[\"pending\"]]")"
chk_eq "used_by" '["adm"]' "$(adm_json "$R_B" "${adm_cert}[\"used_by\"]")"
chk_eq "problems" '[]' "$(adm_json "$R_B" "${adm_cert}[\"problems\"]")"
chk_eq "client-chain current serial" "$SERIAL_CHAIN" "$(adm_json "$R_B" '[c for c in d["certificates"] if c["name"] == "client-chain"][0]["current"]["serial"]')"
t_done "admin: /status shows each certificate's current pair, the pending one and its users"

# --- requests counter
adm_before=$(adm_json "$R_B" 'd["mappings"][0]["requests"]')
adm_p=$(mtlsd_port admin adm)
for i in 1 2 3; do
	req "adm-r$i" "http://127.0.0.1:${adm_p:-1}/?t=adm-r$i"
	chk_eq "request $i" 200 "$R_STATUS"
done
req adm-status2 "$adm_url/status"
chk_eq "requests after 3 more" "$((adm_before + 3))" "$(adm_json "$R_B" 'd["mappings"][0]["requests"]')"
chk_ge "upstream handshakes" 1 "$(adm_json "$R_B" 'd["mappings"][0]["upstream_handshakes"]')"
chk_ge "idle pooled connections" 1 "$(adm_json "$R_B" 'd["mappings"][0]["pool_idle"]')"
chk_eq "admchain untouched" 0 "$(adm_json "$R_B" 'd["mappings"][1]["requests"]')"
t_done "admin: a mapping's request counter follows its requests"

# --- /metrics
req adm-metrics "$adm_url/metrics"
adm_m=$R_B
chk_eq "status" 200 "$R_STATUS"
chk_match "Content-Type" '^text/plain; version=0\.0\.4' "$(hdr Content-Type)"
for f in mtlsd_generation mtlsd_reloads_total mtlsd_last_reload_success_timestamp_seconds \
	mtlsd_requests_total mtlsd_upstream_handshakes_total mtlsd_upstream_resumed_total \
	mtlsd_pool_idle_connections mtlsd_connections mtlsd_certificate_usable \
	mtlsd_certificate_not_after_timestamp_seconds mtlsd_certificate_not_before_timestamp_seconds; do
	grep -q "^# HELP $f " "$adm_m" || chk_fail "no HELP line for $f"
	grep -q "^# TYPE $f \(gauge\|counter\)$" "$adm_m" || chk_fail "no TYPE line for $f"
done
chk_eq "generation" 1 "$(adm_metric "$adm_m" mtlsd_generation)"
chk_eq "requests" "$((adm_before + 3))" "$(adm_metric "$adm_m" 'mtlsd_requests_total{mapping="adm"}')"
chk_eq "reloads ok" 0 "$(adm_metric "$adm_m" 'mtlsd_reloads_total{result="ok"}')"
chk_eq "reloads failed" 0 "$(adm_metric "$adm_m" 'mtlsd_reloads_total{result="failed"}')"
chk_eq "current not_after" "$adm_na" "$(adm_metric "$adm_m" "mtlsd_certificate_not_after_timestamp_seconds{certificate=\"client-pem\",state=\"current\",serial=\"$SERIAL_PEM\"}")"
chk_eq "current not_before" "$(adm_epoch "$(openssl x509 -in "$PKI/info/client-pem.crt" -noout -startdate)")" \
	"$(adm_metric "$adm_m" "mtlsd_certificate_not_before_timestamp_seconds{certificate=\"client-pem\",state=\"current\",serial=\"$SERIAL_PEM\"}")"
chk_eq "pending not_after" "$(adm_epoch "$(openssl x509 -in "$adm_d/certs.d/client-pem/next.crt" -noout -enddate)")" \
	"$(adm_metric "$adm_m" "mtlsd_certificate_not_after_timestamp_seconds{certificate=\"client-pem\",state=\"pending\",serial=\"$ADM_NEXT_SERIAL\"}")"
chk_eq "pending activation" "$adm_nb" \
	"$(adm_metric "$adm_m" "mtlsd_certificate_activation_timestamp_seconds{certificate=\"client-pem\",state=\"pending\",serial=\"$ADM_NEXT_SERIAL\"}")"
chk_eq "usable" 1 "$(adm_metric "$adm_m" 'mtlsd_certificate_usable{certificate="client-pem"}')"
chk_eq "client-chain not_after" "$(adm_epoch "$(openssl x509 -in "$PKI/info/client-chain.crt" -noout -enddate)")" \
	"$(adm_metric "$adm_m" "mtlsd_certificate_not_after_timestamp_seconds{certificate=\"client-chain\",state=\"current\",serial=\"$SERIAL_CHAIN\"}")"
# every line is a comment or "name{labels} number"
adm_bad=$(grep -Ev '^(# (HELP|TYPE) .*|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9]+)$' "$adm_m" | head -n 1)
chk_eq "malformed lines" "" "$adm_bad"
t_done "admin: GET /metrics: counters, generation, and each certificate's validity by state"

# --- /certificates
req adm-pem "$adm_url/certificates/client-pem"
chk_eq "status" 200 "$R_STATUS"
chk_eq "Content-Type" application/x-pem-file "$(hdr Content-Type)"
chk_eq "first certificate's serial" "serial=$SERIAL_PEM" "$(openssl x509 -in "$R_B" -noout -serial 2>&1)"
chk_match "comment before the current one" "# current: client-pem" "$(head -n 1 "$R_B")"
chk_match "serial in the comments" "# serial: $SERIAL_PEM" "$(body)"
chk_match "pending one shown" "# pending: client-pem" "$(body)"
chk_eq "certificates in it" 2 "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$R_B")"
chk_eq "PRIVATE KEY in it" 0 "$(grep -c 'PRIVATE KEY' "$R_B")"
chk_eq "pending one's serial" "serial=$ADM_NEXT_SERIAL" "$(awk '/^# pending/ { p = 1 } p' "$R_B" | openssl x509 -noout -serial 2>&1)"
t_done "admin: GET /certificates/NAME: current and pending PEM, no key"

req adm-pem-all "$adm_url/certificates"
chk_eq "status" 200 "$R_STATUS"
chk_eq "PRIVATE KEY in it" 0 "$(grep -c 'PRIVATE KEY' "$R_B")"
chk_eq "KEY blocks in it" 0 "$(grep -c 'BEGIN .*KEY' "$R_B")"
# client-pem current + pending, client-chain leaf + intermediate
chk_eq "certificates in it" 4 "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$R_B")"
chk_match "client-chain in it" "# current: client-chain" "$(body)"
req adm-pem-chain "$adm_url/certificates/client-chain"
chk_eq "client-chain serial" "serial=$SERIAL_CHAIN" "$(openssl x509 -in "$R_B" -noout -serial 2>&1)"
t_done "admin: GET /certificates lists every certificate, no key"

req adm-pem-unknown "$adm_url/certificates/no-such-cert"
chk_eq "unknown certificate status" 404 "$R_STATUS"
chk_eq "unknown certificate error" "no such certificate" "$(adm_json "$R_B" 'd["error"]')"
req adm-unknown "$adm_url/nothing-here"
chk_eq "unknown path status" 404 "$R_STATUS"
chk_eq "unknown path body is JSON" ok "$(adm_json "$R_B" '"ok"')"
req adm-get-reload "$adm_url/reload"
chk_eq "GET /reload" 405 "$R_STATUS"
chk_eq "GET /reload Allow" POST "$(hdr Allow)"
req adm-post-status -X POST "$adm_url/status"
chk_eq "POST /status" 405 "$R_STATUS"
t_done "admin: unknown certificate or path → 404 JSON, wrong method → 405"

# --- a web page must not reach it (DNS rebinding, cross-site POST)
req adm-host-ok -H "Host: localhost:$adm_port_tcp" "$adm_url/status"
chk_eq "Host: localhost" 200 "$R_STATUS"
req adm-rebind -H "Host: attacker.example:$adm_port_tcp" "$adm_url/status"
chk_eq "foreign Host" 403 "$R_STATUS"
chk_nomatch "foreign Host body" '"mappings"' "$(body)"
adm_off=$(mtlsd_log_offset admin)
req adm-origin -X POST -H "Origin: http://attacker.example" "$adm_url/reload"
chk_eq "POST /reload with Origin" 403 "$R_STATUS"
chk_nomatch "log after the refused POST" 'reload requested|reload: reading' "$(mtlsd_log_since admin "$adm_off")"
t_done "admin: a foreign Host or a request with Origin (a web page) → 403"

# --- POST /reload
adm_off=$(mtlsd_log_offset admin)
req adm-reload -X POST "$adm_url/reload"
chk_eq "status" 202 "$R_STATUS"
chk_eq "requested" true "$(adm_json "$R_B" 'd["requested"]')"
chk_eq "generation" 1 "$(adm_json "$R_B" 'd["generation"]')"
mtlsd_wait_log admin "$adm_off" 'reload: generation 2 applied' 15 ||
	chk_fail "no 'reload: generation 2 applied' within 15 s of POST /reload"
req adm-status3 "$adm_url/status"
chk_eq "generation after" 2 "$(adm_json "$R_B" 'd["generation"]')"
chk_eq "reloads ok" 1 "$(adm_json "$R_B" 'd["reloads"]["ok"]')"
chk_eq "requests carried into generation 2" "$((adm_before + 3))" "$(adm_json "$R_B" 'd["mappings"][0]["requests"]')"
req adm-metrics2 "$adm_url/metrics"
chk_eq "mtlsd_generation" 2 "$(adm_metric "$R_B" mtlsd_generation)"
chk_eq "mtlsd_reloads_total ok" 1 "$(adm_metric "$R_B" 'mtlsd_reloads_total{result="ok"}')"
t_done "admin: POST /reload → 202, then 'reload: generation 2 applied'"

# --- a broken mapping file is kept out of a reload that applies: /status
# and /metrics show why (file:line:col)
adm_off=$(mtlsd_log_offset admin)
printf 'mappings:\n  - name: broken\n    url: [unclosed\n' | mtlsd_mapping_file admin zz-broken.yaml
kill -HUP "$(mtlsd_pid admin)"
mtlsd_wait_log admin "$adm_off" 'reload: generation [0-9]+ applied .*problem' 15 ||
	chk_fail "no 'generation N applied ... problem(s) kept out' within 15 s"
req adm-status4 "$adm_url/status"
chk_eq "last reload ok" true "$(adm_json "$R_B" 'd["last_reload"]["ok"]')"
chk_match "first error" 'zz-broken\.yaml:[0-9]+:[0-9]+: ' "$(adm_json "$R_B" 'd["last_reload"]["errors"][0]')"
chk_eq "generation of the last reload" "$(adm_json "$R_B" 'd["generation"]')" "$(adm_json "$R_B" 'd["last_reload"]["generation"]')"
req adm-metrics3 "$adm_url/metrics"
chk_ge "mtlsd_last_reload_errors" 1 "$(adm_metric "$R_B" mtlsd_last_reload_errors)"
chk_eq "mtlsd_last_reload_successful" 1 "$(adm_metric "$R_B" mtlsd_last_reload_successful)"
chk_eq "mtlsd_reloads_total failed" 0 "$(adm_metric "$R_B" 'mtlsd_reloads_total{result="failed"}')"
t_done "admin: problems a reload kept out show in /status (file:line:col) and /metrics"

# --- a broken main file fails the reload
cp "$adm_d/mtlsd.yaml" "$TMP/admin-mtlsd.yaml.good"
adm_gen=$(adm_metric "$R_B" mtlsd_generation)
adm_off=$(mtlsd_log_offset admin)
echo 'timeouts: {connect: soon}' >>"$adm_d/mtlsd.yaml"
kill -HUP "$(mtlsd_pid admin)"
mtlsd_wait_log admin "$adm_off" 'reload failed' 15 || chk_fail "no 'reload failed' within 15 s"
req adm-status5 "$adm_url/status"
chk_eq "last reload ok" false "$(adm_json "$R_B" 'd["last_reload"]["ok"]')"
chk_match "first error" 'mtlsd\.yaml:[0-9]+:[0-9]+: ' "$(adm_json "$R_B" 'd["last_reload"]["errors"][0]')"
chk_eq "still the same generation" "$adm_gen" "$(adm_json "$R_B" 'd["generation"]')"
chk_ge "reloads failed" 1 "$(adm_json "$R_B" 'd["reloads"]["failed"]')"
req adm-metrics4 "$adm_url/metrics"
chk_ge "mtlsd_reloads_total failed" 1 "$(adm_metric "$R_B" 'mtlsd_reloads_total{result="failed"}')"
chk_eq "mtlsd_last_reload_successful" 0 "$(adm_metric "$R_B" mtlsd_last_reload_successful)"
t_done "admin: a failed reload shows in /status (file:line:col errors) and /metrics"

adm_off=$(mtlsd_log_offset admin)
rm -f "$adm_d/mappings.d/zz-broken.yaml"
cp "$TMP/admin-mtlsd.yaml.good" "$adm_d/.mtlsd.yaml.tmp"
mv "$adm_d/.mtlsd.yaml.tmp" "$adm_d/mtlsd.yaml"
kill -HUP "$(mtlsd_pid admin)"
_adm_clean_reload() {
	req adm-status6 "$adm_url/status"
	[ "$(adm_json "$R_B" 'd["last_reload"]["ok"] and not d["last_reload"]["errors"]')" = true ]
}
wait_until 15 _adm_clean_reload || chk_fail "no clean reload within 15 s of the repair: $(adm_json "$R_B" 'd["last_reload"]')"
req adm-metrics5 "$adm_url/metrics"
chk_eq "mtlsd_last_reload_errors" 0 "$(adm_metric "$R_B" mtlsd_last_reload_errors)"
chk_eq "mtlsd_last_reload_successful" 1 "$(adm_metric "$R_B" mtlsd_last_reload_successful)"
t_done "admin: after the repair the last reload is clean again"

mtlsd_stop admin
_adm_closed() { ! $NETTOOL listening "${adm_port_tcp:-1}"; }
wait_until 5 _adm_closed || chk_fail "admin port ${adm_port_tcp:-?} still accepts connections after exit"
t_done "admin: the endpoint closes with the daemon"

# --- unix socket: mode, allowed_uids
adm_uid=$(id -u)
adm_sd=$TMP/inst/adminsock
adm_sock=$adm_sd/admin.sock
adm_unix_config() { # MODE UIDS
	mtlsd_write_config adminsock "admin:
  listen: {address: \"unix:$adm_sock\", mode: $1, allowed_uids: [$2]}"
}
adm_unix_config 0600 "$adm_uid"
mtlsd_mapping_file adminsock adm.yaml <<EOF
mappings:
  - name: admsock
    url: https://localhost:$NG_PORT/
    certificate: client-pem
    $trust
EOF
mtlsd_start adminsock || return 0
chk_match "log line" "admin endpoint listening on unix:$adm_sock" "$(grep 'admin endpoint' "$adm_sd/mtlsd.log")"
chk_eq "socket mode" 600 "$(stat -c %a "$adm_sock" 2>&1)"
chk_eq "is a socket" yes "$([ -S "$adm_sock" ] && echo yes)"
req adms-status --unix-socket "$adm_sock" http://localhost/status
chk_eq "status over the socket" 200 "$R_STATUS"
chk_eq "mapping over the socket" '["admsock"]' "$(adm_json "$R_B" '[m["name"] for m in d["mappings"]]')"
req adms-metrics --unix-socket "$adm_sock" http://localhost/metrics
chk_eq "metrics over the socket" 200 "$R_STATUS"
chk_eq "usable over the socket" 1 "$(adm_metric "$R_B" 'mtlsd_certificate_usable{certificate="client-pem"}')"
t_done "admin: unix socket with mode 0600 and allowed_uids [own uid] serves /status and /metrics"

# a reload that drops our uid from allowed_uids (and changes the mode)
adm_off=$(mtlsd_log_offset adminsock)
adm_unix_config 0660 "$((adm_uid + 4242))"
kill -HUP "$(mtlsd_pid adminsock)"
mtlsd_wait_log adminsock "$adm_off" 'reload: generation [0-9]+ applied' 15 ||
	chk_fail "no 'reload: generation N applied' within 15 s"
chk_eq "socket mode after the reload" 660 "$(stat -c %a "$adm_sock" 2>&1)"
req adms-refused --unix-socket "$adm_sock" http://localhost/status
[[ "$R_STATUS" == 403 || "$R_STATUS" == 000 ]] ||
	chk_fail "a uid outside allowed_uids got HTTP $R_STATUS (expected 403 or a closed connection)"
chk_nomatch "refused body" '"mappings"' "$(body)"
[[ "$R_STATUS" == 000 ]] || chk_match "Connection" close "$(hdr Connection)"
mtlsd_wait_log adminsock "$adm_off" "refused a request from uid $adm_uid" 5 ||
	chk_fail "no 'refused a request from uid $adm_uid' log line"
adm_off2=$(mtlsd_log_offset adminsock)
req adms-refused-reload --unix-socket "$adm_sock" -X POST http://localhost/reload
[[ "$R_STATUS" == 403 || "$R_STATUS" == 000 ]] ||
	chk_fail "POST /reload from a uid outside allowed_uids got HTTP $R_STATUS"
chk_nomatch "log after the refused POST /reload" 'reload requested' "$(mtlsd_log_since adminsock "$adm_off2")"
t_done "admin: a uid not in allowed_uids is refused (403, connection closed)"

mtlsd_stop adminsock
chk_eq "socket removed at exit" no "$([ -e "$adm_sock" ] && echo yes || echo no)"
t_done "admin: the unix socket is removed at exit"
