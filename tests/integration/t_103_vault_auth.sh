# shellcheck shell=bash
# Vault authentication and configuration: `mtlsd -t` names a broken vault:
# setting by file and line; AppRole with a wrong secret_id is a clear error
# (log, /status, the 503's reason) and logs in once the file is fixed;
# token_file: a token Vault refuses, then a good one written into the file
# (noticed by itself), then another (the next requests use it), and a token
# file that others can read is refused. No secret reaches the log.

vaultd_start auth || return 0
if ! vnginx_start; then
	t_fail "vault auth: setup" "vnginx did not start"
	return 0
fi

# --- mtlsd -t with broken vault: settings
tc=$TMP/vault-check
mkdir -p "$tc/certs.d/bad" "$tc/maps"
cat >"$tc/maps/m.yaml" <<EOF
mappings:
  - name: m
    url: https://localhost:$VNG_PORT/
    certificate: bad
    trust: {ca_file: $PKI/trust/server-root.pem}
EOF
_tc_main() { # _tc_main VAULT-ADDRESS AUTH-YAML
	cat >"$tc/mtlsd.yaml" <<EOF
proxy: {listen: ["127.0.0.1:0"]}
mappings_dir: maps
certs_dir: certs.d
state_dir: $tc/state
vault:
  address: $1
  ca_file: $VD_CA
  auth: $2
EOF
}
(umask 077 && echo sometoken >"$tc/token")
_tc_main "$VD_ADDR" "{token_file: $tc/token}"
printf 'vault:\n  pki: pki/issue/client\n  common_name: x.mtlsd.test\n  ttl: soon\n' >"$tc/certs.d/bad/certificate.yaml"
mtlsd_check "$tc/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "message" 'certificate\.yaml: line 4: vault\.ttl: expected a duration of at least 1s' "$CHK_OUT"
t_done "vault: mtlsd -t: a bad vault.ttl → 'certificate.yaml: line 4: vault.ttl: ...', exit 1"

printf '# x\nvault:\n  pki: pki/issue/client\n  common_nme: x.mtlsd.test\n' >"$tc/certs.d/bad/certificate.yaml"
mtlsd_check "$tc/mtlsd.yaml"
chk_eq "exit status" 1 "$CHK_RC"
chk_match "message" 'certificate\.yaml: line 4: vault\.common_nme: unknown key' "$CHK_OUT"
printf 'vault: {kv: secret/data/x, fields: {certificat: tls.crt}}\n' >"$tc/certs.d/bad/certificate.yaml"
mtlsd_check "$tc/mtlsd.yaml"
chk_eq "exit status (fields)" 1 "$CHK_RC"
chk_match "message (fields)" 'certificate\.yaml: line 1: vault\.fields: unknown field certificat' "$CHK_OUT"
printf 'vault: {pki: pki/revoke/client, common_name: x.mtlsd.test}\n' >"$tc/certs.d/bad/certificate.yaml"
mtlsd_check "$tc/mtlsd.yaml"
chk_eq "exit status (pki path)" 1 "$CHK_RC"
chk_match "message (pki path)" 'certificate\.yaml: line 1: vault\.pki: expected MOUNT/issue/ROLE or MOUNT/sign/ROLE' "$CHK_OUT"
t_done "vault: mtlsd -t: an unknown key, field or PKI path → 'certificate.yaml: line N: vault.KEY: ...', exit 1"

printf 'vault: {pki: pki/issue/client, common_name: x.mtlsd.test, ttl: 1h}\n' >"$tc/certs.d/bad/certificate.yaml"
mtlsd_check "$tc/mtlsd.yaml"
chk_eq "exit status of the good configuration" 0 "$CHK_RC"
_tc_main "http://vault.example.com:8200" "{token_file: $tc/token}"
mtlsd_check "$tc/mtlsd.yaml"
chk_eq "exit status (http address)" 1 "$CHK_RC"
chk_match "message (http address)" 'mtlsd\.yaml:[0-9]+:[0-9]+: vault\.address: plain http is allowed only to a loopback address' "$CHK_OUT"
_tc_main "http://127.0.0.1:8200" "{token_file: $tc/token}"
mtlsd_check "$tc/mtlsd.yaml"
chk_eq "exit status (http to loopback)" 0 "$CHK_RC"
_tc_main "$VD_ADDR" "{}"
mtlsd_check "$tc/mtlsd.yaml"
chk_eq "exit status (no auth)" 1 "$CHK_RC"
chk_match "message (no auth)" 'mtlsd\.yaml:[0-9]+:[0-9]+: vault\.auth: needs token_file or approle' "$CHK_OUT"
t_done "vault: mtlsd -t: http:// only to loopback; vault.auth needs token_file or approle"
CHK_OUT=

# --- AppRole with a wrong secret_id, then fixed
va_d=$TMP/inst/vapp
mtlsd_vault_config vapp "$(mtlsd_vault_approle vapp wrong-secret-id)"
vault_cert_yaml vapp va <<<"vault: {pki: pki/issue/client, common_name: va.mtlsd.test, ttl: 1h}"
{ echo "mappings:"; vault_mapping_yaml va va; } | mtlsd_mapping_file vapp va.yaml
mtlsd_start vapp || return 0
mtlsd_wait_log vapp 0 'vault: AppRole login failed: Vault answered 400: invalid role or secret ID; trying again in [0-9]+s' 20 ||
	chk_fail "no 'vault: AppRole login failed: Vault answered 400: invalid role or secret ID; trying again in Ns'"
req va-wrong "http://127.0.0.1:$(mtlsd_port vapp va)/?t=va-wrong"
refusal_checks "va with a wrong secret_id" 503 no_certificate
chk_match "503 body" 'waiting for Vault login: AppRole login failed: Vault answered 400: invalid role or secret ID' "$(body)"
vstatus_chk vapp \
	"vault.auth" approle 'd["vault"]["auth"]' \
	"vault.token_state" error 'd["vault"]["token_state"]' \
	"vault.last_error" "AppRole login failed: Vault answered 400: invalid role or secret ID" 'd["vault"]["last_error"]' \
	"vault.logins" 0 'd["vault"]["logins"]' \
	"va state" "waiting for login" 'vc("va")["vault"]["state"]'
chk_eq "/metrics mtlsd_vault_token_valid" 0 "$(mtlsd_metric vapp mtlsd_vault_token_valid)"
t_done "vault approle: a wrong secret_id → 'AppRole login failed: Vault answered 400: invalid role or secret ID' in the log, /status and the 503"

# fix the file once the login backoff is long (≥ 6 s), then SIGHUP: the
# login follows the fix, not the backoff timer
mtlsd_wait_log vapp 0 'AppRole login failed: .*; trying again in ([6-9]|[1-9][0-9])s' 30 ||
	chk_fail "the login backoff did not reach 6 s within 30 s"
backoff=$(mtlsd_log_since vapp 0 | sed -n 's/.*AppRole login failed: .*; trying again in \([0-9]*\)s$/\1/p' | tail -n 1)
off=$(mtlsd_log_offset vapp)
(umask 077 && echo sidecar-secret-id >"$va_d/.secret_id.new") && mv -f "$va_d/.secret_id.new" "$va_d/secret_id"
kill -HUP "$(mtlsd_pid vapp)"
name="vault approle: the fixed secret_id file → logged in after SIGHUP, the certificate is obtained and served"
# well before the backoff (${backoff:-6} s) runs out
if mtlsd_wait_log vapp "$off" 'vault: logged in with AppRole \(token ttl 3600s, renewable\)' $((${backoff:-6} - 2)); then
	:
elif mtlsd_wait_log vapp "$off" 'vault: logged in with AppRole' 35; then
	chk_fail "logged in only when the login backoff ran out, not on the fixed file + SIGHUP ($(mtlsd_log_since vapp "$off" | grep -c 'AppRole login failed') more failed logins after the fix)"
else
	chk_fail "no login within 35 s of fixing secret_id_file and SIGHUP"
fi
_va_ok() { req va-ok "http://127.0.0.1:$(mtlsd_port vapp va)/?t=va-ok"; [ "$R_STATUS" = 200 ]; }
wait_until 20 _va_ok || chk_fail "va: no 200 after the login (last: $R_STATUS $(body))"
chk_eq "va serial the upstream saw" "$(vault_obtained vapp va)" "$(hdr X-Client-Serial)"
vstatus_chk vapp "vault.token_state" ok 'd["vault"]["token_state"]' "vault.logins" 1 'd["vault"]["logins"]'
t_done "$name"

mtlsd_admin vapp /status >"$TMP/r/vapp-status.json"
secrets="sidecar-secret-id wrong-secret-id $(vctl tokens | vjson - '" ".join(t["id"] for t in d["tokens"] if t["id"] != "root")')"
vault_no_secrets "vault approle" "$secrets" "$va_d/mtlsd.log" "$TMP/r/vapp-status.json"
t_done "vault approle: no secret_id, token or private key in mtlsd's log or /status"
mtlsd_stop vapp

# --- token_file
vt_d=$TMP/inst/vtok
mkdir -p "$vt_d"
tok1=$(vctl token/create '{"ttl": "1h", "policies": ["pki-client"], "renewable": true}' | vjson - 'd["token"]')
tok2=$(vctl token/create '{"ttl": "2h", "policies": ["pki-client"], "renewable": true}' | vjson - 'd["token"]')
bogus=hvs.bogus$(openssl rand -hex 10)
_tok_write() { (umask 077 && echo "$1" >"$vt_d/.token.new") && mv -f "$vt_d/.token.new" "$vt_d/token"; }
_tok_write "$bogus"
mtlsd_vault_config vtok "{token_file: $vt_d/token}"
vault_cert_yaml vtok vt <<<"vault: {pki: pki/issue/client, common_name: vt.mtlsd.test, ttl: 1h}"
{ echo "mappings:"; vault_mapping_yaml vt vt; } | mtlsd_mapping_file vtok vt.yaml
mtlsd_start vtok || return 0
vt_port=$(mtlsd_port vtok vt)
mtlsd_wait_log vtok 0 'vault: token from token_file not accepted: Vault answered 403: permission denied.*; trying again in [0-9]+s' 20 ||
	chk_fail "no 'vault: token from token_file not accepted: Vault answered 403: permission denied...; trying again in Ns'"
req vt-bogus "http://127.0.0.1:$vt_port/?t=vt-bogus"
refusal_checks "vt with a refused token" 503 no_certificate
chk_match "503 body" 'waiting for Vault login: token from token_file not accepted: Vault answered 403: permission denied' "$(body)"
vstatus_chk vtok "vault.auth" token_file 'd["vault"]["auth"]' "vault.token_state" error 'd["vault"]["token_state"]'
t_done "vault token_file: a token Vault refuses → 'token from token_file not accepted: ...' and 503 'waiting for Vault login: ...'"

off=$(mtlsd_log_offset vtok)
_tok_write "$tok1"
name="vault token_file: a good token written into the file is noticed by itself (no SIGHUP) and used"
if ! mtlsd_wait_log vtok "$off" 'vault: using the token from token_file \(token ttl [0-9]+s, renewable\)' 15; then
	kill -HUP "$(mtlsd_pid vtok)"
	if mtlsd_wait_log vtok "$off" 'vault: using the token from token_file' 10; then
		chk_fail "the new token was used only after SIGHUP (not noticed within 15 s)"
	else
		chk_fail "no 'vault: using the token from token_file (...)' within 15 s nor after SIGHUP"
	fi
fi
_vt_ok() { req vt-ok "http://127.0.0.1:$vt_port/?t=vt-ok"; [ "$R_STATUS" = 200 ]; }
wait_until 30 _vt_ok || chk_fail "vt: no 200 after the good token (last: $R_STATUS $(body))"
vt1=$(vault_obtained vtok vt)
chk_eq "vt serial the upstream saw" "$vt1" "$(hdr X-Client-Serial)"
chk_eq "token used for pki/issue" "$tok1" "$(vctl 'requests?path=pki/issue/client' | vjson - '[r["headers"].get("X-Vault-Token") for r in d["requests"] if r["status"] == 200][-1]')"
vstatus_chk vtok "vault.token_state" ok 'd["vault"]["token_state"]'
t_done "$name"

# another token replaces it; the old one is revoked; a new issue uses the new one
off=$(mtlsd_log_offset vtok)
_tok_write "$tok2"
mtlsd_wait_log vtok "$off" 'vault: using the token from token_file \(token ttl 7[0-9]{3}s, renewable\)' 15 ||
	chk_fail "the replaced token (ttl 2h) was not taken within 15 s"
vctl token/revoke "{\"token\": \"$tok1\"}" >/dev/null
vault_cert_yaml vtok vt <<<"vault: {pki: pki/issue/client, common_name: vt.mtlsd.test, ttl: 2h}"
wait_until 20 vault_obtained_other vtok vt "$vt1" "$off" || chk_fail "vt: no new certificate after its settings changed"
chk_eq "token used for the new pki/issue" "$tok2" "$(vctl 'requests?path=pki/issue/client' | vjson - '[r["headers"].get("X-Vault-Token") for r in d["requests"]][-1]')"
chk_nomatch "log" 'token is no longer valid' "$(mtlsd_log_since vtok "$off")"
t_done "vault token_file: a token replaced in the file is used for the next requests"

# vault.namespace: every request carries X-Vault-Namespace
vctl config '{"namespaces": ["team1"]}' >/dev/null
off=$(mtlsd_log_offset vtok)
sed "s|^  ca_file: .*|&\n  namespace: team1|" "$vt_d/mtlsd.yaml" >"$vt_d/.mtlsd.yaml.new" && mv -f "$vt_d/.mtlsd.yaml.new" "$vt_d/mtlsd.yaml"
kill -HUP "$(mtlsd_pid vtok)"
mtlsd_wait_log vtok "$off" 'vault: settings changed; logging in again' 15 || chk_fail "no 'vault: settings changed; logging in again' after adding vault.namespace"
mtlsd_wait_log vtok "$off" 'vault: using the token from token_file' 15 || chk_fail "the token was not looked up again in the namespace"
vt2=$(vault_obtained vtok vt)
vault_cert_yaml vtok vt <<<"vault: {pki: pki/issue/client, common_name: vt.mtlsd.test, ttl: 3h}"
wait_until 20 vault_obtained_other vtok vt "$vt2" "$off" || chk_fail "vt: no new certificate in the namespace"
chk_eq "namespace of the last pki/issue request (header, as vaultd resolved it)" "team1 team1" \
	"$(vctl 'requests?path=pki/issue/client' | vjson - '[r["headers"].get("X-Vault-Namespace") for r in d["requests"]][-1]' '[r["namespace"] for r in d["requests"]][-1]' | tr '\n' ' ' | sed 's/ $//')"
t_done "vault: vault.namespace → requests carry X-Vault-Namespace"

# a token file that others can read is refused
off=$(mtlsd_log_offset vtok)
chmod 0644 "$vt_d/token"
kill -HUP "$(mtlsd_pid vtok)"
mtlsd_wait_log vtok "$off" "token_file $vt_d/token has mode 0644; it must not be readable by others" 15 ||
	chk_fail "no 'token_file ... has mode 0644; it must not be readable by others' after chmod 644 + SIGHUP"
t_done "vault token_file: a token file readable by others is refused with its mode named"

mtlsd_admin vtok /status >"$TMP/r/vtok-status.json"
secrets="$tok1 $tok2 $bogus"
vault_no_secrets "vault token_file" "$secrets" "$vt_d/mtlsd.log" "$TMP/r/vtok-status.json"
t_done "vault token_file: no token or private key in mtlsd's log or /status"

mtlsd_stop vtok
vaultd_stop auth
