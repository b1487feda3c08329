# shellcheck shell=bash
# Vault KV: a certificate and key kept in a KV v2 secret (PEM fields, with
# custom field names, or a base64 PKCS#12 and its password) or a KV v1
# secret is read, cached and served; a new version is picked up on POST
# /reload and by itself every `refresh`; an unchanged version is not cached
# again; a version whose key does not match is refused and the current pair
# keeps serving.
#
# The material is issued by hand from vaultd's PKI (root token) and written
# with the control API. Certificates: kp (secret/data/app/kp, PEM), kr
# (secret/data/app/kr, fields tls.crt/tls.key, refresh 4s), k12
# (secret/data/app/k12, PKCS#12), k1 (kv/app/k1, KV v1).

vaultd_start kv || return 0
if ! vnginx_start; then
	t_fail "vault kv: setup" "vnginx did not start"
	return 0
fi
kv_d=$TMP/inst/vkv
kv_w=$TMP/kv-work
mkdir -p "$kv_w"

# _kv_issue NAME: a pair for NAME.mtlsd.test from vaultd's PKI, in
# $kv_w/NAME.json (the answer) and NAME.crt/.key/.chain; prints its serial
_kv_issue() {
	vapi POST pki/issue/client "{\"common_name\": \"$1.mtlsd.test\", \"ttl\": \"2h\"}" >"$kv_w/$1.json"
	python3 - "$kv_w" "$1" <<'PY'
import json, sys
w, n = sys.argv[1], sys.argv[2]
d = json.load(open("%s/%s.json" % (w, n)))["data"]
open("%s/%s.crt" % (w, n), "w").write(d["certificate"] + "\n")
open("%s/%s.key" % (w, n), "w").write(d["private_key"] + "\n")
open("%s/%s.chain" % (w, n), "w").write("\n".join(d["ca_chain"]) + "\n")
print(d["serial_number"].replace(":", "").upper())
PY
}

# _kv_put MOUNT PATH CERT-NAME [KEY-NAME [CERT-FIELD KEY-FIELD]]: write
# CERT-NAME's certificate and chain and KEY-NAME's key (default: its own) as
# a new version of MOUNT/PATH
_kv_put() {
	python3 - "$kv_w" "$@" >"$kv_w/put.json" <<'PY'
import json, sys
w, mount, path, cn = sys.argv[1:5]
kn = sys.argv[5] if len(sys.argv) > 5 else cn
cf = sys.argv[6] if len(sys.argv) > 6 else "certificate"
kf = sys.argv[7] if len(sys.argv) > 7 else "private_key"
c = json.load(open("%s/%s.json" % (w, cn)))["data"]
k = json.load(open("%s/%s.json" % (w, kn)))["data"]
print(json.dumps({"mount": mount, "path": path,
                  "data": {cf: c["certificate"], kf: k["private_key"], "ca_chain": c["ca_chain"]}}))
PY
	vctl kv/put "$(cat "$kv_w/put.json")" >/dev/null
}

# a new version's certificate must be newer (a later not-before second):
# "immediately" presents the newest valid pair, and a tie is no newer
s_kp1=$(_kv_issue kp1)
s_kr1=$(_kv_issue kr1)
sleep 1.1
s_kp2=$(_kv_issue kp2)
s_kr2=$(_kv_issue kr2)
s_k12=$(_kv_issue k12)
s_k1=$(_kv_issue k1)
_kv_put secret app/kp kp1
_kv_put secret app/kr kr1 kr1 tls.crt tls.key
_kv_put kv app/k1 k1
# the PKCS#12, with AES-256 (wolfSSL reads no RC2/3DES)
k12_pass=p12-$(openssl rand -hex 8)
openssl pkcs12 -export -in "$kv_w/k12.crt" -inkey "$kv_w/k12.key" -certfile "$kv_w/k12.chain" \
	-passout "pass:$k12_pass" -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 \
	-out "$kv_w/k12.p12" 2>"$kv_w/p12.err" || chk_fail "openssl pkcs12: $(cat "$kv_w/p12.err")"
k12_b64=$(base64 -w0 "$kv_w/k12.p12")
vctl kv/put "{\"mount\": \"secret\", \"path\": \"app/k12\", \"data\": {\"p12\": \"$k12_b64\", \"p12_password\": \"$k12_pass\"}}" >/dev/null

mtlsd_vault_config vkv "$(mtlsd_vault_approle vkv)"
vault_cert_yaml vkv kp <<<"vault: {kv: secret/data/app/kp}"
vault_cert_yaml vkv kr <<YAML
vault:
  kv: secret/data/app/kr
  refresh: 4s
  fields: {certificate: tls.crt, private_key: tls.key}
YAML
vault_cert_yaml vkv k12 <<<"vault: {kv: secret/data/app/k12, fields: {p12: p12, p12_password: p12_password}}"
vault_cert_yaml vkv k1 <<<"vault: {kv: kv/app/k1, kv_version: 1}"
{
	echo "mappings:"
	for n in kp kr k12 k1; do vault_mapping_yaml "$n" "$n"; done
} | mtlsd_mapping_file vkv kv.yaml
mtlsd_start vkv || return 0

_kv_serves() { # _kv_serves MAPPING SERIAL: a 200 through MAPPING presenting SERIAL
	KV_N=$((KV_N + 1))
	req "kv-$1-$KV_N" "http://127.0.0.1:$(mtlsd_port vkv "$1")/?t=kv-$1-$KV_N-"
	[ "$R_STATUS" = 200 ] && [ "$(hdr X-Client-Serial)" = "$2" ]
}
KV_N=0
kv_log() { mtlsd_log_since vkv 0; }
wait_until 30 _kv_serves kp "$s_kp1" || chk_fail "kp: no 200 with serial $s_kp1 (last: $R_STATUS $(hdr X-Client-Serial) $(body))"
chk_match "log" "vault: certificate 'kp': obtained serial $s_kp1 from secret/data/app/kp version 1 \\(not after [^)]+\\); cached in $kv_d/state/vault/kp/$s_kp1\\.pem" "$(kv_log)"
f=$kv_d/state/vault/kp/$s_kp1.pem
chk_eq "cache file mode" 600 "$(stat -c %a "$f" 2>/dev/null)"
vstatus_chk vkv \
	"kp source" vault 'vc("kp")["source"]' \
	"kp kind" kv 'vc("kp")["vault"]["kind"]' \
	"kp path" secret/data/app/kp 'vc("kp")["vault"]["path"]' \
	"kp kv_version" 1 'vc("kp")["vault"]["kv_version"]' \
	"kp serial" "$s_kp1" 'vc("kp")["current"]["serial"]' \
	"k1 has no kv_version (KV v1)" none 'vc("k1")["vault"].get("kv_version", "none")' \
	"kp: the next read is due refresh (5m) x 0.85-0.95 after the last" true \
	'254 <= (lambda p: p(vc("kp")["vault"]["next_attempt"]) - p(vc("kp")["vault"]["last_success"]))(lambda t: __import__("calendar").timegm(__import__("time").strptime(t, "%Y-%m-%dT%H:%M:%SZ"))) <= 286'
t_done "vault kv: a KV v2 secret with PEM fields is read, cached and served (log names the version)"

wait_until 20 _kv_serves kr "$s_kr1" || chk_fail "kr: no 200 with serial $s_kr1 (last: $R_STATUS $(hdr X-Client-Serial) $(body))"
t_done "vault kv: fields: maps custom field names (tls.crt, tls.key)"

wait_until 20 _kv_serves k12 "$s_k12" || chk_fail "k12: no 200 with serial $s_k12 (last: $R_STATUS $(hdr X-Client-Serial) $(body))"
chk_match "log" "vault: certificate 'k12': obtained serial $s_k12 from secret/data/app/k12 version 1 " "$(kv_log)"
f=$kv_d/state/vault/k12/$s_k12.pem
# the EC private scalar of the cached key and of the PKCS#12's, as openssl
# prints it (whatever the PEM form: SEC1 or PKCS#8)
_kv_scalar() { openssl pkey -in "$1" -noout -text 2>/dev/null | sed -n '/^priv:/,/^pub:/p' | tr -d ' :\n'; }
sed -n '/-----BEGIN.*PRIVATE KEY-----/,/-----END.*PRIVATE KEY-----/p' "$f" >"$kv_w/k12-cached.key"
chk_ne "cached private scalar" "privpub" "$(_kv_scalar "$kv_w/k12-cached.key")"
chk_eq "cached key is the PKCS#12's" "$(_kv_scalar "$kv_w/k12.key")" "$(_kv_scalar "$kv_w/k12-cached.key")"
t_done "vault kv: a base64 PKCS#12 with its password is read and served"

chk_eq "openssl reads the cached key (its public key matches the certificate's)" \
	"$(openssl x509 -in "$f" -noout -pubkey 2>&1 | sha256sum)" "$(openssl pkey -in "$f" -pubout 2>&1 | sha256sum)"
t_done "vault kv: the key taken from a PKCS#12 is cached as a standard PEM key (openssl reads it)"

wait_until 20 _kv_serves k1 "$s_k1" || chk_fail "k1: no 200 with serial $s_k1 (last: $R_STATUS $(hdr X-Client-Serial) $(body))"
chk_match "log" "vault: certificate 'k1': obtained serial $s_k1 from kv/app/k1 \\(not after " "$(kv_log)"
t_done "vault kv: a KV v1 secret is read and served"

# --- kr re-reads every ~4 s: an unchanged version is not cached again
_kr_reads() { [ "$(vctl 'requests?path=secret/data/app/kr' | vjson - 'len(d["requests"])')" -ge "$1" ]; }
wait_until 30 _kr_reads 3 || chk_fail "kr: fewer than 3 reads of secret/data/app/kr within 30 s (refresh: 4s)"
chk_eq "kr: obtained lines" 1 "$(kv_log | grep -c "certificate 'kr': obtained serial")"
vstatus_chk vkv "kr obtained" 1 'vc("kr")["vault"]["obtained"]' \
	"kr consecutive_failures" 0 'vc("kr")["vault"]["consecutive_failures"]'
t_done "vault kv: re-read every refresh; an unchanged version is not cached again"

# --- a new version, picked up by refresh (no reload)
off=$(mtlsd_log_offset vkv)
_kv_put secret app/kr kr2 kr2 tls.crt tls.key
mtlsd_wait_log vkv "$off" "vault: certificate 'kr': obtained serial $s_kr2 from secret/data/app/kr version 2 " 20 ||
	chk_fail "kr: version 2 not obtained within 20 s (refresh: 4s)"
wait_until 15 _kv_serves kr "$s_kr2" || chk_fail "kr: the new serial $s_kr2 is not presented (last: $(hdr X-Client-Serial))"
t_done "vault kv: a new version is picked up by the periodic refresh"

# --- a new version, picked up on POST /reload
off=$(mtlsd_log_offset vkv)
_kv_put secret app/kp kp2
r=$(mtlsd_admin vkv /reload -X POST -o /dev/null -w '%{http_code}')
chk_match "POST /reload status" '^20[0-9]$' "$r"
mtlsd_wait_log vkv "$off" "vault: certificate 'kp': obtained serial $s_kp2 from secret/data/app/kp version 2 " 20 ||
	chk_fail "kp: version 2 not obtained within 20 s of POST /reload"
wait_until 15 _kv_serves kp "$s_kp2" || chk_fail "kp: the new serial $s_kp2 is not presented (last: $(hdr X-Client-Serial))"
vstatus_chk vkv "kp kv_version" 2 'vc("kp")["vault"]["kv_version"]' \
	"kp vault.serial" "$s_kp2" 'vc("kp")["vault"]["serial"]'
t_done "vault kv: a new version is picked up on POST /reload"

# --- a version whose key does not match: refused, the current pair stays
off=$(mtlsd_log_offset vkv)
_kv_put secret app/kp kp1 kp2
kill -HUP "$(mtlsd_pid vkv)"
mtlsd_wait_log vkv "$off" "vault: certificate 'kp': secret/data/app/kp: refused Vault's answer: certificate serial $s_kp1 and the private key do not match; keeping the cached certificate; next attempt in [0-9]+s" 20 ||
	chk_fail "no \"vault: certificate 'kp': secret/data/app/kp: refused Vault's answer: certificate serial $s_kp1 and the private key do not match; keeping the cached certificate; ...\" after SIGHUP"
_kv_serves kp "$s_kp2" || chk_fail "kp: $R_STATUS serial $(hdr X-Client-Serial), not $s_kp2"
vstatus_chk vkv \
	"kp consecutive_failures > 0" true 'vc("kp")["vault"]["consecutive_failures"] > 0' \
	"kp last_error" "refused Vault's answer: certificate serial $s_kp1 and the private key do not match" 'vc("kp")["vault"]["last_error"]' \
	"kp current serial" "$s_kp2" 'vc("kp")["current"]["serial"]'
t_done "vault kv: a version with a mismatched key is refused (SIGHUP re-read); the current pair keeps serving"

# --- no secret in the log or /status
mtlsd_admin vkv /status >"$TMP/r/vkv-status.json"
secrets="sidecar-secret-id $k12_pass ${k12_b64:0:64} ${k12_b64: -64} $(vctl tokens | vjson - '" ".join(t["id"] for t in d["tokens"] if t["id"] != "root")')"
vault_no_secrets "vault kv" "$secrets" "$kv_d/mtlsd.log" "$TMP/r/vkv-status.json"
t_done "vault kv: no private key, PKCS#12, password, secret_id or token in mtlsd's log or /status"

mtlsd_stop vkv
vaultd_stop kv
