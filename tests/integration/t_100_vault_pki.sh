# shellcheck shell=bash
# Vault PKI: mtlsd logs in with AppRole, obtains its client certificates from
# pki/issue (Vault makes the key) and pki/sign (the key is made here), caches
# them under state_dir, serves with them, and renews a short-lived one before
# it expires while traffic flows: zero failed requests, the upstream sees
# every serial Vault issued, and a token that expires is replaced by a new
# login. Then Vault misbehaves (429 with Retry-After, garbage, a mismatched
# pair, an expired certificate, sealed): each answer is refused with its
# reason, the current certificate keeps serving, and mtlsd recovers.
#
# Certificates: vp (pki/issue, ttl 15s: renewed every ~10 s), vs (pki/sign),
# vf (pki/issue on its own role "faulty", so that injected faults hit only
# it; a new issue is asked for by changing its certificate.yaml).

# vpub_cert/vpub_key FILE: the public key of the certificate / key in FILE
vpub_cert() { openssl x509 -in "$1" -noout -pubkey 2>&1 | sha256sum | cut -c1-16; }
vpub_key() { openssl pkey -in "$1" -pubout 2>&1 | sha256sum | cut -c1-16; }

vaultd_start pki || return 0
if ! vnginx_start; then
	t_fail "vault pki: setup" "vnginx did not start"
	return 0
fi
vp_d=$TMP/inst/vpki
mtlsd_vault_config vpki "$(mtlsd_vault_approle vpki)"
vctl pki/role '{"name":"faulty","allow_any_name":true,"server_flag":false,"client_flag":true,"ttl":"1h","max_ttl":"24h","key_type":"ec","key_bits":256}' >/dev/null
vault_cert_yaml vpki vp <<YAML
vault: {pki: pki/issue/client, common_name: vp.mtlsd.test, ttl: 15s}
YAML
vault_cert_yaml vpki vs <<YAML
vault:
  pki: pki/sign/client
  common_name: vs.mtlsd.test
  alt_names: [vs-alt.mtlsd.test]
  ttl: 1h
YAML
# _vf_yaml N: vf's certificate.yaml with alt name vf-N (a change of settings:
# mtlsd asks Vault for a new certificate at once)
_vf_yaml() {
	vault_cert_yaml vpki vf <<YAML
vault: {pki: pki/issue/faulty, common_name: vf.mtlsd.test, alt_names: [vf-$1.mtlsd.test], ttl: 1h}
YAML
}
_vf_yaml 0
# vr: held back by its rotation policy (before-expiry)
_vr_yaml() {
	vault_cert_yaml vpki vr <<YAML
rotation: {activate: before-expiry, activate_before_expiry: 30m}
vault: {pki: pki/issue/client, common_name: vr.mtlsd.test, alt_names: [vr-$1.mtlsd.test], ttl: 2h}
YAML
}
_vr_yaml 0
{
	echo "mappings:"
	vault_mapping_yaml vp vp
	vault_mapping_yaml vs vs
	vault_mapping_yaml vf vf
	vault_mapping_yaml vr vr
	vault_mapping_yaml vfile client-pem
} | mtlsd_mapping_file vpki v.yaml
cp -a "$PKI/certs.d/client-pem" "$vp_d/certs.d/"
mtlsd_start vpki || return 0
vp_port=$(mtlsd_port vpki vp)
vs_port=$(mtlsd_port vpki vs)
vf_port=$(mtlsd_port vpki vf)

_vp_serving() { # _vp_serving PORT TAG: a 200 through PORT
	VP_N=$((VP_N + 1))
	req "$2-$VP_N" "http://127.0.0.1:$1/?t=$2-$VP_N-"
	[ "$R_STATUS" = 200 ]
}
VP_N=0
wait_until 30 _vp_serving "$vp_port" vp-first || chk_fail "no 200 through vp within 30 s (last: $R_STATUS $(body))"
# traffic from now on, through two renewals and a token expiry (checked below)
vtraffic_start vt "$vp_port"
s1=$(vault_obtained vpki vp)
chk_match "log: logged in" 'vault: logged in with AppRole \(token ttl 3600s, renewable\)' "$(mtlsd_log_since vpki 0)"
chk_match "log: obtained" "vault: certificate 'vp': obtained serial [0-9A-F]+ from pki/issue/client \(not after [^)]+\); cached in $vp_d/state/vault/vp/[0-9A-F]+\.pem" "$(mtlsd_log_since vpki 0)"
chk_match "the serial vaultd issued" "^$s1\$" "$(vaultd_issued vp.mtlsd.test | head -n 1)"
chk_eq "serial the upstream saw" "$s1" "$(hdr X-Client-Serial)"
chk_eq "body" "vault upstream" "$(body)"
t_done "vault pki: issues the certificate and serves with it (upstream sees Vault's serial)"

# libcurl (and the OpenSSL, GnuTLS, Kerberos ... it brings: 3.5 MiB
# resident) is loaded only by a daemon whose configuration uses Vault
_maps_curl() { grep -c 'libcurl\.so' "/proc/$1/maps" 2>/dev/null; }
chk_ge "libcurl mappings in the Vault daemon" 1 "$(_maps_curl "$(mtlsd_pid vpki)")"
if main_instance; then
	chk_eq "libcurl mappings in the main daemon (no vault:)" 0 "$(_maps_curl "$(mtlsd_pid main)")"
fi
t_done "vault: libcurl is loaded only by a daemon that uses Vault"

f=$vp_d/state/vault/vp/$s1.pem
chk_eq "cache file" yes "$([ -f "$f" ] && echo yes)"
chk_eq "cache file mode" 600 "$(stat -c %a "$f" 2>/dev/null)"
chk_eq "cache dir mode" 700 "$(stat -c %a "$vp_d/state/vault/vp" 2>/dev/null)"
chk_eq "state/vault mode" 700 "$(stat -c %a "$vp_d/state/vault" 2>/dev/null)"
chk_eq "cached certificate serial" "serial=$s1" "$(openssl x509 -in "$f" -noout -serial 2>&1)"
chk_eq "cached key matches" "$(vpub_cert "$f")" "$(vpub_key "$f")"
t_done "vault pki: cached in state_dir/vault/NAME/SERIAL.pem (file 0600, directories 0700)"

vstatus_chk vpki \
	"source" vault 'vc("vp")["source"]' \
	"vault.serial" "$s1" 'vc("vp")["vault"]["serial"] if vc("vp")["vault"]["serial"] == vc("vp")["current"]["serial"] else "differs from current.serial"' \
	"vault.kind" pki/issue 'vc("vp")["vault"]["kind"]' \
	"vault.path" pki/issue/client 'vc("vp")["vault"]["path"]' \
	"vault.state" ok 'vc("vp")["vault"]["state"]' \
	"vault.cache_dir" "$vp_d/state/vault/vp" 'vc("vp")["vault"]["cache_dir"]' \
	"vault.consecutive_failures" 0 'vc("vp")["vault"]["consecutive_failures"]' \
	"vault.obtained" 1 'vc("vp")["vault"]["obtained"]' \
	"next_attempt after last_success" true 'vc("vp")["vault"]["next_attempt"] > vc("vp")["vault"]["last_success"]' \
	"a files certificate's source" files 'vc("client-pem")["source"]' \
	"a files certificate has no vault" none 'vc("client-pem").get("vault", "none")' \
	"vault.address" "$VD_ADDR" 'd["vault"]["address"]' \
	"vault.auth" approle 'd["vault"]["auth"]' \
	"vault.token_state" ok 'd["vault"]["token_state"]' \
	"vault.token_renewable" true 'd["vault"]["token_renewable"]' \
	"vault.token_expires set" true 'd["vault"]["token_expires"] is not None' \
	"vault.up" true 'd["vault"]["up"]' \
	"vault.logins" 1 'd["vault"]["logins"]' \
	"vault.last_error" null 'd["vault"]["last_error"]'
t_done "vault pki: /status shows the source, the serial, the job and the token"

m=$(mtlsd_admin vpki /metrics)
_vm() { awk -v s="$1" 'index($0, s " ") == 1 { print substr($0, length(s) + 2) }' <<<"$m"; }
chk_eq "mtlsd_vault_up" 1 "$(_vm mtlsd_vault_up)"
chk_eq "mtlsd_vault_token_valid" 1 "$(_vm mtlsd_vault_token_valid)"
chk_ge "mtlsd_vault_requests_total{result=\"ok\"}" 4 "$(_vm 'mtlsd_vault_requests_total{result="ok"}')"
chk_eq "mtlsd_vault_requests_total{result=\"failed\"}" 0 "$(_vm 'mtlsd_vault_requests_total{result="failed"}')"
chk_ge "mtlsd_vault_token_expiry_timestamp_seconds" "$(($(date +%s) + 3000))" "$(_vm mtlsd_vault_token_expiry_timestamp_seconds)"
chk_ge "mtlsd_vault_last_success_timestamp_seconds" "$(($(date +%s) - 60))" "$(_vm mtlsd_vault_last_success_timestamp_seconds)"
chk_ge "obtained_total{vp}" 1 "$(_vm 'mtlsd_vault_certificate_obtained_total{certificate="vp"}')"
chk_eq "errors_total{vs}" 0 "$(_vm 'mtlsd_vault_certificate_errors_total{certificate="vs"}')"
chk_ge "next_attempt{vp}" "$(($(date +%s) - 5))" "$(_vm 'mtlsd_vault_certificate_next_attempt_timestamp_seconds{certificate="vp"}')"
chk_ge "last_success{vf}" "$(($(date +%s) - 60))" "$(_vm 'mtlsd_vault_certificate_last_success_timestamp_seconds{certificate="vf"}')"
t_done "vault pki: /metrics has the Vault series (up, requests, token, per certificate)"

# --- pki/sign: the key is made here; Vault sees only a CSR
wait_until 20 _vp_serving "$vs_port" vs || chk_fail "no 200 through vs (last: $R_STATUS $(body))"
s_vs=$(vault_obtained vpki vs)
chk_eq "vs serial the upstream saw" "$s_vs" "$(hdr X-Client-Serial)"
chk_match "log" "vault: certificate 'vs': obtained serial $s_vs from pki/sign/client " "$(mtlsd_log_since vpki 0)"
vctl 'requests?path=pki/sign/client' >"$TMP/r/vs-requests.json"
mapfile -t vsr < <(vjson "$TMP/r/vs-requests.json" 'len(d["requests"])' 'sorted(d["requests"][0]["body"])' 'd["requests"][0]["body"]["csr"]')
chk_eq "requests to pki/sign/client" 1 "${vsr[0]}"
chk_eq "request body keys" '["alt_names", "common_name", "csr", "format", "ttl"]' "${vsr[1]}"
chk_nomatch "request" 'PRIVATE KEY' "$(cat "$TMP/r/vs-requests.json")"
printf '%b\n' "${vsr[2]}" >"$TMP/r/vs.csr"
chk_match "CSR subject" 'CN ?= ?vs\.mtlsd\.test' "$(openssl req -in "$TMP/r/vs.csr" -noout -subject 2>&1)"
chk_match "CSR SANs" 'DNS:vs-alt\.mtlsd\.test' "$(openssl req -in "$TMP/r/vs.csr" -noout -text 2>&1 | tr -d '\n')"
f=$vp_d/state/vault/vs/$s_vs.pem
chk_eq "cached key matches the certificate" "$(vpub_cert "$f")" "$(vpub_key "$f")"
chk_eq "cached key is the CSR's" "$(openssl req -in "$TMP/r/vs.csr" -noout -pubkey 2>&1 | sha256sum | cut -c1-16)" "$(vpub_key "$f")"
chk_eq "vaultd: signed" '[true]' "$(vctl pki/issued | vjson - "[e['signed'] for e in d['issued'] if e['common_name'] == 'vs.mtlsd.test']")"
# the renewal point: renew_at (0.66) of the lifetime from when it was
# obtained, jittered 95-100 %: for vs (1h) 2257-2376 s after its success
_vsecs='(lambda p: p(vc("vs")["vault"]["next_attempt"]) - p(vc("vs")["vault"]["last_success"]))(lambda t: __import__("calendar").timegm(__import__("time").strptime(t, "%Y-%m-%dT%H:%M:%SZ")))'
vs_after=$(vstatus vpki "$_vsecs")
chk_ge "vs: next_attempt - last_success (s)" 2255 "$vs_after"
chk_le "vs: next_attempt - last_success (s)" 2378 "$vs_after"
t_done "vault pki/sign: the key is made locally (only a CSR goes to Vault) and matches the cached certificate"

# --- renewal under traffic, with a token that expires on the way
wait_until 40 vault_obtained_other vpki vp "$s1" || chk_fail "no renewal of vp within 40 s"
s2=$(vault_obtained vpki vp)
# the traffic's own requests (mtlsd's validation handshake of a new
# certificate also reaches the upstream with it)
_vt_seen() { grep -q "serial=$1 .*uri=/?t=vt-[0-9]*-" "$VNG_DIR/access.log"; }
wait_until 20 _vt_seen "$s2" || chk_fail "the traffic never went out with the renewed serial $s2"
off=$(mtlsd_log_offset vpki)
vctl token/expire '{"all": true}' >/dev/null
mtlsd_wait_log vpki "$off" 'vault: the token is no longer valid \(.*invalid token.*\); logging in again' 40 ||
	chk_fail "no 'the token is no longer valid ...; logging in again' within 40 s of the token's expiry"
mtlsd_wait_log vpki "$off" 'vault: logged in with AppRole' 30 || chk_fail "no new AppRole login after the token expired"
wait_until 40 vault_obtained_other vpki vp "$s2" "$off" || chk_fail "no renewal of vp after the new login"
s3=$(vault_obtained vpki vp)
wait_until 20 _vt_seen "$s3" || chk_fail "the traffic never went out with serial $s3 (after the new login)"
vtraffic_stop vt
chk_eq "failed requests (of $VT_TOTAL)" "" "$VT_FAILED"
chk_ge "requests sent" 20 "$VT_TOTAL"
issued=$(vaultd_issued vp.mtlsd.test)
n_issued=$(wc -l <<<"$issued")
chk_ge "serials vaultd issued for vp" 3 "$n_issued"
missing=""
for s in $(head -n $((n_issued - 1)) <<<"$issued"); do
	vng_seen "$s" || missing+=" $s"
done
chk_eq "issued serials (but the last) the upstream never saw" "" "$missing"
# the serials of the traffic, in request order: each appears in one run, in
# the order Vault issued them (no request went out with an older one again)
runs=$(grep -o 'serial=[^ ]* .*uri=/?t=vt-[0-9]*-' "$VNG_DIR/access.log" | sed 's/serial=\([^ ]*\) .*/\1/' | uniq)
# the first serial may already have been renewed before the traffic's first
# request on a slow machine (the probes above saw it): at least one renewal
# must happen under the traffic, ending with s3
chk_ge "serials seen by the traffic" 2 "$(wc -l <<<"$runs")"
chk_eq "the traffic saw s2 and s3" "yes yes" "$(grep -qx "$s2" <<<"$runs" && echo yes) $(grep -qx "$s3" <<<"$runs" && echo yes)"
chk_eq "serials that come back after a newer one" "" "$(sort <<<"$runs" | uniq -d)"
chk_eq "serial runs follow the issue order" "$(grep -Fxf <(echo "$runs") <<<"$issued" | tr '\n' ' ')" "$(tr '\n' ' ' <<<"$runs")"
t_done "vault pki: renewed before expiry under traffic: zero failed requests, the upstream saw every serial, never an old one after a new one"

chk_match "re-login line" 'vault: logged in with AppRole \(token ttl 3600s, renewable\)' "$(mtlsd_log_since vpki "$off")"
vstatus_chk vpki \
	"vault.logins" 2 'd["vault"]["logins"]' \
	"vault.token_state" ok 'd["vault"]["token_state"]' \
	"vp consecutive_failures" 0 'vc("vp")["vault"]["consecutive_failures"]'
t_done "vault pki: an expired token → 403 invalid token → a new AppRole login; renewals continue"

chk_match "prune log" "vault: removed $vp_d/state/vault/vp/[0-9A-F]+\\.pem \\((expired|superseded)\\)" "$(mtlsd_log_since vpki 0)"
chk_le "files in the cache dir" 3 "$(find "$vp_d/state/vault/vp" -name '*.pem' | wc -l)"
chk_eq "the newest serial is cached" yes "$([ -f "$vp_d/state/vault/vp/$s3.pem" ] && echo yes)"
t_done "vault pki: old cached pairs are removed (expired or superseded)"

# --- a renewed pair follows certificate.yaml's rotation policy
_vr_ok() { req vr-ok "http://127.0.0.1:$(mtlsd_port vpki vr)/?t=vr-ok"; [ "$R_STATUS" = 200 ]; }
wait_until 10 _vr_ok || chk_fail "vr: no 200 (last: $R_STATUS $(body))"
vr0=$(vault_obtained vpki vr)
chk_eq "vr: the first pair is presented at once" "$vr0" "$(hdr X-Client-Serial)"
off=$(mtlsd_log_offset vpki)
_vr_yaml 1
wait_until 20 vault_obtained_other vpki vr "$vr0" "$off" || chk_fail "vr: no new pair after its settings changed"
vr1=$(vault_obtained vpki vr "$off")
mtlsd_wait_log vpki "$off" 'reload: generation [0-9]+ applied' 10 || chk_fail "no reload after vr's new pair"
_vr_ok || chk_fail "vr: $R_STATUS after the new pair"
chk_eq "vr: still presents the current pair" "$vr0" "$(hdr X-Client-Serial)"
vstatus_chk vpki \
	"vr current serial" "$vr0" 'vc("vr")["current"]["serial"]' \
	"vr pending serials" "[\"$vr1\"]" '[p["serial"] for p in vc("vr")["pending"]]' \
	"vr vault.serial (newest obtained)" "$vr1" 'vc("vr")["vault"]["serial"]'
t_done "vault pki: a new pair from Vault follows rotation: activate: before-expiry (pending, the current one serves)"

# --- faults, on vf
vf0=$(vault_obtained vpki vf)
# _vf_check TAG SERIAL: vf serves, with SERIAL
_vf_check() {
	req "vf-$1" "http://127.0.0.1:$vf_port/?t=vf-$1-"
	chk_eq "$1: vf status" 200 "$R_STATUS"
	chk_eq "$1: vf serial the upstream saw" "$2" "$(hdr X-Client-Serial)"
}
_vf_serves() { # _vf_serves SERIAL
	VP_N=$((VP_N + 1))
	req "vf-poll-$VP_N" "http://127.0.0.1:$vf_port/?t=vf-poll-$VP_N-"
	[ "$R_STATUS" = 200 ] && [ "$(hdr X-Client-Serial)" = "$1" ]
}
_vf_failing() { [ "$(vstatus vpki 'vc("vf")["vault"]["consecutive_failures"]')" -ge 1 ] 2>/dev/null; }
_vf_ok() { [ "$(vstatus vpki 'vc("vf")["vault"]["consecutive_failures"]')" = 0 ]; }
vf_lead="vault: certificate 'vf': pki/issue/faulty:"

# 429 with Retry-After, then garbage
vctl fail '{"path": "pki/issue/faulty", "status": 429, "retry_after": 4, "count": 1}' >/dev/null
vctl fail '{"path": "pki/issue/faulty", "mode": "garbage", "count": 1}' >/dev/null
seq0=$(vctl 'requests' | vjson - 'd["last"]')
off=$(mtlsd_log_offset vpki)
_vf_yaml 1
mtlsd_wait_log vpki "$off" "$vf_lead Vault answered 429: .*rate limit quota exceeded; keeping the cached certificate; next attempt in 4s" 20 ||
	chk_fail "no '$vf_lead Vault answered 429: ...; keeping the cached certificate; next attempt in 4s' (Retry-After: 4)"
_vf_failing || chk_fail "/status: vf consecutive_failures not > 0 while Vault fails"
_vf_check during-429 "$vf0"
mtlsd_wait_log vpki "$off" "$vf_lead Vault's answer \\(HTTP 200\\) is not JSON.*; keeping the cached certificate; next attempt in [0-9]+s" 20 ||
	chk_fail "no '$vf_lead Vault's answer (HTTP 200) is not JSON: ...; keeping the cached certificate'"
wait_until 30 vault_obtained_other vpki vf "$vf0" "$off" || chk_fail "vf: nothing obtained after the faults"
vf1=$(vault_obtained vpki vf "$off")
wait_until 15 _vf_serves "$vf1" || chk_fail "vf: the new serial $vf1 is not presented"
wait_until 10 _vf_ok || chk_fail "/status: vf consecutive_failures not back to 0"
# Retry-After honoured: the request after the 429 came at least 3 s later
# (Retry-After 4, whole seconds)
gap=$(vctl "requests?since=$seq0&path=pki/issue/faulty" | vjson - \
	'"%.1f" % ([r["real_time"] for r in d["requests"]][1] - [r["real_time"] for r in d["requests"]][0])')
chk_ge "seconds between the 429 and the next request" 3 "$gap"
t_done "vault pki: 429 (Retry-After honoured) and a garbage answer → refused, the current certificate serves, then recovers"

# a mismatched pair, then an expired certificate
vctl fail '{"path": "pki/issue/faulty", "mode": "mismatch", "count": 1}' >/dev/null
vctl fail '{"path": "pki/issue/faulty", "mode": "expired", "count": 1}' >/dev/null
off=$(mtlsd_log_offset vpki)
_vf_yaml 2
mtlsd_wait_log vpki "$off" "$vf_lead refused Vault's answer: certificate serial [0-9A-F]+ and the private key do not match; keeping the cached certificate; next attempt in [0-9]+s" 20 ||
	chk_fail "no '$vf_lead refused Vault's answer: certificate serial X and the private key do not match; keeping the cached certificate'"
_vf_check during-mismatch "$vf1"
mtlsd_wait_log vpki "$off" "$vf_lead refused Vault's answer: certificate serial [0-9A-F]+ is expired; keeping the cached certificate; next attempt in [0-9]+s" 20 ||
	chk_fail "no '$vf_lead refused Vault's answer: certificate serial X is expired; keeping the cached certificate'"
wait_until 30 vault_obtained_other vpki vf "$vf1" "$off" || chk_fail "vf: nothing obtained after the faults"
vf2=$(vault_obtained vpki vf "$off")
mapfile -t faulty < <(vctl pki/issued | vjson - \
	"[e['serial_number'].replace(':', '').upper() for e in d['issued'] if e['fault'] == 'mismatch'][-1]" \
	"[e['serial_number'].replace(':', '').upper() for e in d['issued'] if e['fault'] == 'expired'][-1]")
chk_match "the mismatched serial is named" "certificate serial ${faulty[0]} and the private key do not match" "$(mtlsd_log_since vpki "$off")"
chk_match "the expired serial is named" "certificate serial ${faulty[1]} is expired" "$(mtlsd_log_since vpki "$off")"
chk_eq "refused pairs in the cache" "" "$(find "$vp_d/state/vault/vf" -name "${faulty[0]}*" -o -name "${faulty[1]}*")"
wait_until 15 _vf_serves "$vf2" || chk_fail "vf: the new serial $vf2 is not presented"
wait_until 10 _vf_ok || chk_fail "/status: vf consecutive_failures not back to 0"
vstatus_chk vpki \
	"vf failures" 4 'vc("vf")["vault"]["failures"]' \
	"vf last_error" null 'vc("vf")["vault"]["last_error"]' \
	"vf state" ok 'vc("vf")["vault"]["state"]'
chk_eq "/metrics errors_total{vf}" 4 "$(mtlsd_metric vpki 'mtlsd_vault_certificate_errors_total{certificate="vf"}')"
t_done "vault pki: a mismatched pair and an expired certificate → refused with the serial named, never cached; recovers"

# sealed
vctl seal >/dev/null
off=$(mtlsd_log_offset vpki)
_vf_yaml 3
mtlsd_wait_log vpki "$off" "$vf_lead Vault answered 503: Vault is sealed; keeping the cached certificate; next attempt in [0-9]+s" 20 ||
	chk_fail "no '$vf_lead Vault answered 503: Vault is sealed; keeping the cached certificate; next attempt in Ns'"
chk_eq "/metrics mtlsd_vault_up while sealed" 0 "$(mtlsd_metric vpki mtlsd_vault_up)"
vstatus_chk vpki \
	"vault.up while sealed" false 'd["vault"]["up"]' \
	"vf last_error while sealed" "Vault answered 503: Vault is sealed" 'vc("vf")["vault"]["last_error"]' \
	"vf state while sealed" retrying 'vc("vf")["vault"]["state"]'
_vf_check sealed "$vf2"
vctl unseal >/dev/null
wait_until 40 vault_obtained_other vpki vf "$vf2" "$off" || chk_fail "vf: nothing obtained after the unseal"
vf3=$(vault_obtained vpki vf "$off")
wait_until 15 _vf_serves "$vf3" || chk_fail "vf: the new serial $vf3 is not presented"
chk_eq "/metrics mtlsd_vault_up after the unseal" 1 "$(mtlsd_metric vpki mtlsd_vault_up)"
t_done "vault pki: sealed Vault → 503 refused, the current certificate serves, recovers once unsealed"

# --- no secret in the log, /status or /metrics
mtlsd_admin vpki /status >"$TMP/r/vpki-status.json"
mtlsd_admin vpki /metrics >"$TMP/r/vpki-metrics.txt"
secrets="sidecar-secret-id $(vctl tokens | vjson - '" ".join(t["id"] for t in d["tokens"] if t["id"] != "root")')"
vault_no_secrets "vault pki" "$secrets" "$vp_d/mtlsd.log" "$TMP/r/vpki-status.json" "$TMP/r/vpki-metrics.txt"
t_done "vault pki: no private key, secret_id or token in mtlsd's log, /status or /metrics"

mtlsd_stop vpki
vaultd_stop pki
