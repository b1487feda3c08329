# shellcheck shell=bash
# Vault outages: while Vault is unreachable mtlsd keeps serving with what it
# has; a certificate it has never obtained answers 503 no_certificate naming
# the reason, and is obtained (200) as soon as Vault is back, without a
# restart; a restart while Vault is down serves from the cache, and a
# certificate with no cache waits for the login, then arrives.
#
# Certificates: vo (obtained while Vault is up), vn (added while Vault is
# down after the login), vz (added while mtlsd restarts with Vault down).

vaultd_start outage || return 0
if ! vnginx_start; then
	t_fail "vault outage: setup" "vnginx did not start"
	return 0
fi
vo_d=$TMP/inst/vout
mtlsd_vault_config vout "$(mtlsd_vault_approle vout)"
for n in vo vn vz; do
	echo "vault: {pki: pki/issue/client, common_name: $n.mtlsd.test, ttl: 1h}" >"$TMP/r/$n.certificate.yaml"
done
vault_cert_yaml vout vo <"$TMP/r/vo.certificate.yaml"
{ echo "mappings:"; vault_mapping_yaml vo vo; } | mtlsd_mapping_file vout vo.yaml
mtlsd_start vout || return 0
vo_pid=$(mtlsd_pid vout)

_vo_ok() { # _vo_ok MAPPING TAG: a 200 through MAPPING
	VO_N=$((VO_N + 1))
	req "$2-$VO_N" "http://127.0.0.1:$(mtlsd_port vout "$1")/?t=$2-$VO_N-"
	[ "$R_STATUS" = 200 ]
}
_vo_listening() { [ -n "$(mtlsd_port vout "$1")" ]; }
VO_N=0
wait_until 30 _vo_ok vo vo-first || chk_fail "no 200 through vo within 30 s (last: $R_STATUS $(body))"
s_vo=$(vault_obtained vout vo)
chk_eq "serial the upstream saw" "$s_vo" "$(hdr X-Client-Serial)"
t_done "vault outage: vo is obtained and served while Vault is up"

# --- Vault goes away; a new Vault-made certificate has nothing cached
vctl down >/dev/null
off=$(mtlsd_log_offset vout)
vault_cert_yaml vout vn <"$TMP/r/vn.certificate.yaml"
{ echo "mappings:"; vault_mapping_yaml vn vn; } | mtlsd_mapping_file vout vn.yaml
kill -HUP "$vo_pid"
wait_until 15 _vo_listening vn || chk_fail "no 'listening on ... (mapping vn)' after adding it"
mtlsd_wait_log vout "$off" "vault: certificate 'vn': pki/issue/client: cannot reach Vault at $VD_ADDR: .*; no certificate yet \\(requests get 503\\); next attempt in [0-9]+s" 20 ||
	chk_fail "no \"vault: certificate 'vn': pki/issue/client: cannot reach Vault at $VD_ADDR: ...; no certificate yet (requests get 503); next attempt in Ns\""
req vn-down "http://127.0.0.1:$(mtlsd_port vout vn)/?t=vn-down"
refusal_checks "vn while Vault is down" 503 no_certificate
chk_match "503 body" "waiting for Vault: cannot reach Vault at $VD_ADDR: .*; next attempt in [0-9]+s" "$(body)"
t_done "vault outage: no certificate yet → 503 no_certificate naming 'waiting for Vault: cannot reach Vault at ...; next attempt in Ns'"

_vo_ok vo vo-down || chk_fail "vo: $R_STATUS while Vault is down"
chk_eq "vo serial while Vault is down" "$s_vo" "$(hdr X-Client-Serial)"
vstatus_chk vout \
	"vault.up" false 'd["vault"]["up"]' \
	"vn state" retrying 'vc("vn")["vault"]["state"]' \
	"vn failing" true 'vc("vn")["vault"]["consecutive_failures"] >= 1' \
	"vn last_error" "cannot reach Vault at $VD_ADDR" 'vc("vn")["vault"]["last_error"][:len("cannot reach Vault at '"$VD_ADDR"'")]' \
	"vn next_attempt set" true 'vc("vn")["vault"]["next_attempt"] is not None' \
	"vn current" null 'vc("vn")["current"]' \
	"vo current serial" "$s_vo" 'vc("vo")["current"]["serial"]'
m=$(mtlsd_admin vout /metrics)
_vm() { awk -v s="$1" 'index($0, s " ") == 1 { print substr($0, length(s) + 2) }' <<<"$m"; }
chk_eq "mtlsd_vault_up" 0 "$(_vm mtlsd_vault_up)"
chk_ge "errors_total{vn}" 1 "$(_vm 'mtlsd_vault_certificate_errors_total{certificate="vn"}')"
chk_ge "requests_total{failed}" 1 "$(_vm 'mtlsd_vault_requests_total{result="failed"}')"
chk_eq "obtained_total{vn}" 0 "$(_vm 'mtlsd_vault_certificate_obtained_total{certificate="vn"}')"
t_done "vault outage: the cached certificate keeps serving; /status and /metrics show Vault down and vn's errors"

vstatus_chk vout \
	"top-level vault.last_error while Vault is down" "cannot reach Vault at $VD_ADDR" \
	'(d["vault"]["last_error"] or "null")[:len("cannot reach Vault at '"$VD_ADDR"'")]'
t_done "vault outage: /status vault.last_error says Vault cannot be reached"

vctl up >/dev/null
wait_until 40 _vo_ok vn vn-back || chk_fail "vn: no 200 within 40 s of Vault coming back (last: $R_STATUS $(body))"
s_vn=$(vault_obtained vout vn)
chk_eq "vn serial the upstream saw" "$s_vn" "$(hdr X-Client-Serial)"
chk_eq "same mtlsd process" "$vo_pid" "$(mtlsd_pid vout)"
vstatus_chk vout \
	"vault.up" true 'd["vault"]["up"]' \
	"vn consecutive_failures" 0 'vc("vn")["vault"]["consecutive_failures"]' \
	"vn state" ok 'vc("vn")["vault"]["state"]'
t_done "vault outage: Vault back → vn is obtained and served (200) without restarting mtlsd"

# --- Vault answers with a certificate that vault.ca_file does not trust:
# nothing is sent (no token, no request), the mapping waits, and recovers
vctl tls '{"mode": "untrusted"}' >/dev/null
seq0=$(vctl requests | vjson - 'd["last"]')
off=$(mtlsd_log_offset vout)
echo "vault: {pki: pki/issue/client, common_name: vu.mtlsd.test, ttl: 1h}" | vault_cert_yaml vout vu
{ echo "mappings:"; vault_mapping_yaml vu vu; } | mtlsd_mapping_file vout vu.yaml
kill -HUP "$vo_pid"
wait_until 15 _vo_listening vu || chk_fail "no 'listening on ... (mapping vu)' after adding it"
mtlsd_wait_log vout "$off" "vault: certificate 'vu': pki/issue/client: cannot reach Vault at $VD_ADDR: .*; no certificate yet \\(requests get 503\\); next attempt in [0-9]+s" 20 ||
	chk_fail "no \"vault: certificate 'vu': pki/issue/client: cannot reach Vault at $VD_ADDR: ...; no certificate yet\" with an untrusted Vault certificate"
chk_match "the reason names the certificate problem" "certificate 'vu': .*(certificate|SSL|verif)" "$(mtlsd_log_since vout "$off" | grep "vault: certificate 'vu'" | head -n 1)"
req vu-untrusted "http://127.0.0.1:$(mtlsd_port vout vu)/?t=vu-untrusted"
refusal_checks "vu while Vault's certificate is untrusted" 503 no_certificate
chk_eq "requests vaultd received meanwhile" 0 "$(vctl "requests?since=$seq0" | vjson - 'len(d["requests"])')"
vctl tls '{"mode": "normal"}' >/dev/null
wait_until 40 _vo_ok vu vu-back || chk_fail "vu: no 200 within 40 s of Vault's normal certificate (last: $R_STATUS $(body))"
t_done "vault outage: Vault's TLS certificate not trusted by vault.ca_file → nothing sent, 503; recovers with the right certificate"

# --- restart while Vault is down: the cache serves; vz has none
mtlsd_stop vout
cp "$vo_d/mtlsd.log" "$vo_d/mtlsd.log.1"
vctl down >/dev/null
vault_cert_yaml vout vz <"$TMP/r/vz.certificate.yaml"
{ echo "mappings:"; vault_mapping_yaml vz vz; } | mtlsd_mapping_file vout vz.yaml
mtlsd_start vout || return 0
wait_until 10 _vo_ok vo vo-restart || chk_fail "vo: $R_STATUS after a restart with Vault down ($(body))"
chk_eq "vo serial (from the cache)" "$s_vo" "$(hdr X-Client-Serial)"
_vo_ok vn vn-restart || chk_fail "vn: $R_STATUS after a restart with Vault down ($(body))"
chk_eq "vn serial (from the cache)" "$s_vn" "$(hdr X-Client-Serial)"
t_done "vault outage: restarted while Vault is down → serves 200 from the cache"

mtlsd_wait_log vout 0 "vault: AppRole login failed: cannot reach Vault at $VD_ADDR: .*; trying again in [0-9]+s" 20 ||
	chk_fail "no 'vault: AppRole login failed: cannot reach Vault at ...; trying again in Ns'"
req vz-down "http://127.0.0.1:$(mtlsd_port vout vz)/?t=vz-down"
refusal_checks "vz with Vault down since the start" 503 no_certificate
chk_match "503 body" "waiting for Vault login: AppRole login failed: cannot reach Vault at $VD_ADDR" "$(body)"
vstatus_chk vout \
	"vault.token_state" error 'd["vault"]["token_state"]' \
	"vault.up" false 'd["vault"]["up"]' \
	"vault.last_error" "AppRole login failed: cannot reach Vault at $VD_ADDR" \
	'(d["vault"]["last_error"] or "null")[:len("AppRole login failed: cannot reach Vault at '"$VD_ADDR"'")]' \
	"vz state" "waiting for login" 'vc("vz")["vault"]["state"]'
chk_eq "/metrics mtlsd_vault_token_valid" 0 "$(mtlsd_metric vout mtlsd_vault_token_valid)"
t_done "vault outage: login fails while Vault is down → 503 'waiting for Vault login: ...' for a certificate with no cache"

vstatus_chk vout \
	"vo serial" "$s_vo" 'vc("vo")["vault"]["serial"]' \
	"vo state is not 'not issued yet'" true 'vc("vo")["vault"]["state"] != "not issued yet"'
t_done "vault outage: after a restart, /status of a certificate served from the cache does not say 'not issued yet'"

off=$(mtlsd_log_offset vout)
vctl up >/dev/null
mtlsd_wait_log vout "$off" 'vault: logged in with AppRole' 40 || chk_fail "no AppRole login within 40 s of Vault coming back"
wait_until 30 _vo_ok vz vz-back || chk_fail "vz: no 200 within 30 s of the login (last: $R_STATUS $(body))"
chk_eq "vz serial the upstream saw" "$(vault_obtained vout vz)" "$(hdr X-Client-Serial)"
chk_eq "vo: serials vaultd issued (the cache was reused)" 1 "$(vaultd_issued vo.mtlsd.test | wc -l)"
chk_eq "vn: serials vaultd issued (the cache was reused)" 1 "$(vaultd_issued vn.mtlsd.test | wc -l)"
chk_eq "vu: serials vaultd issued (the cache was reused)" 1 "$(vaultd_issued vu.mtlsd.test | wc -l)"
t_done "vault outage: Vault back → login, vz obtained; the cached vo and vn are not issued again"

mtlsd_admin vout /status >"$TMP/r/vout-status.json"
secrets="sidecar-secret-id $(vctl tokens | vjson - '" ".join(t["id"] for t in d["tokens"] if t["id"] != "root")')"
vault_no_secrets "vault outage" "$secrets" "$vo_d/mtlsd.log" "$vo_d/mtlsd.log.1" "$TMP/r/vout-status.json"
t_done "vault outage: no private key, secret_id or token in mtlsd's logs or /status"

mtlsd_stop vout
vaultd_stop outage
