# shellcheck shell=bash
# The TLS suites mtlsd offers upstream: never a suite without encryption or
# without server authentication (wolfSSL's default list offers NULL,
# anonymous, RC4 and 3DES suites), and the bulk cipher the linked wolfSSL
# runs fastest first, and X25519 for the key exchange (see tls.c).

main_instance || return 0
pref=$(sed -n 's/.*ready: generation 1, .*(upstream TLS offers \([a-z0-9-]*\) first).*/\1/p' "$TMP/inst/main/mtlsd.log" | head -n 1)
case $pref in
chacha20-poly1305) want=TLS_CHACHA20_POLY1305_SHA256 ;;
aes-gcm) want=TLS_AES_128_GCM_SHA256 ;;
*) want="(no 'upstream TLS offers X first' in the ready line)" ;;
esac
req suite "http://127.0.0.1:$P_PEM/?t=suite-1"
chk_eq "status" 200 "$R_STATUS"
line=$(ngx_log 't=suite-1')
chk_eq "protocol nginx saw" TLSv1.3 "$(ngx_field "$line" proto)"
chk_eq "suite nginx saw (mtlsd prefers $pref)" "$want" "$(ngx_field "$line" cipher)"
chk_eq "key exchange group nginx saw" X25519 "$(ngx_field "$line" curve)"
t_done "tls: TLS 1.3 upstream, the suite mtlsd offers first is used ($want), X25519 key exchange"

# a man in the middle (it holds a certificate the trust store accepts, and
# does not ask for ours) that offers only suites mtlsd must never use: no
# encryption (NULL), no server authentication (anonymous DH/ECDH), 3DES.
# With wolfSSL's default list mtlsd agreed to ECDHE-ECDSA-NULL-SHA and sent
# the request in the clear (200 from s_server's status page).
# ss_start NAME S_SERVER-ARGS...: openssl s_server on a free port with the
# test server certificate, answering its status page (-www); sets SS_PORT,
# SS_PID, SS_LOG
ss_start() {
	local name=$1
	shift
	SS_PORT=$($NETTOOL freeport 1)
	SS_LOG=$TMP/r/s_server-$name.log
	openssl s_server -accept "127.0.0.1:$SS_PORT" -naccept 4 -cert "$PKI/server/localhost.crt" \
		-key "$PKI/server/localhost.key" -www "$@" >"$SS_LOG" 2>&1 &
	SS_PID=$!
	wait_until 15 _ss_ready || chk_fail "openssl s_server ($name) does not listen on $SS_PORT"
}
_ss_ready() {
	kill -0 "$SS_PID" 2>/dev/null || return 99
	$NETTOOL listening "$SS_PORT"
}

ss_start weak -tls1_2 -cipher 'eNULL:aNULL:3DES:@SECLEVEL=0'
weak_port=$SS_PORT weak_log=$SS_LOG weak_pid=$SS_PID
# a server with P-256 only (FIPS-style): our X25519 key share is not for it,
# it asks for P-256 (HelloRetryRequest) and the handshake goes on; it
# requires our client certificate
ss_start p256 -tls1_3 -groups P-256 -Verify 2 -verify_return_error \
	-CAfile "$PKI/trust/client-ca-bundle.pem"
p256_port=$SS_PORT p256_pid=$SS_PID
mtlsd_write_config suites
{
	echo "mappings:"
	mapping_yaml weak "https://localhost:$weak_port/" client-pem "validate: false"
	mapping_yaml p256 "https://localhost:$p256_port/" client-pem "validate: false"
} | mtlsd_mapping_file suites s.yaml
if mtlsd_start suites; then
	for i in 1 2; do
		req "weak-$i" "http://127.0.0.1:$(mtlsd_port suites weak)/?t=weak-$i-secret"
		refusal_checks "weak suites, try $i" 502 upstream_tls
	done
	chk_match "reason in the body" 'handshake|cipher|alert' "$(body)"
	chk_match "s_server's verdict" 'no shared cipher' "$(cat "$weak_log")"
	chk_nomatch "the request reached s_server" 'weak-[0-9]-secret' "$(cat "$weak_log")"
	t_done "tls: an upstream offering only NULL, anonymous or 3DES suites → 502 upstream_tls, nothing sent"

	req p256 "http://127.0.0.1:$(mtlsd_port suites p256)/?t=p256"
	chk_eq "status" 200 "$R_STATUS"
	chk_match "s_server's page: protocol" 'Protocol *: *TLSv1\.3' "$(body)"
	chk_match "s_server's page: the group agreed" 'Shared groups: secp256r1' "$(body)"
	chk_match "s_server's page: our certificate" 'Subject: .*CN ?= ?client-pem' "$(body)"
	t_done "tls: an upstream with P-256 only (no X25519) → the handshake retries with P-256, 200"
	mtlsd_stop suites
fi
pid_stop TERM "$weak_pid"
pid_stop TERM "$p256_pid"
