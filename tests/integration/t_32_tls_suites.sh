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
ss_port=$($NETTOOL freeport 1)
ss_log=$TMP/r/s_server-weak.log
openssl s_server -accept "127.0.0.1:$ss_port" -naccept 4 -tls1_2 \
	-cipher 'eNULL:aNULL:3DES:@SECLEVEL=0' -cert "$PKI/server/localhost.crt" \
	-key "$PKI/server/localhost.key" -www >"$ss_log" 2>&1 &
ss_pid=$!
_ss_ready() {
	kill -0 "$ss_pid" 2>/dev/null || return 99
	$NETTOOL listening "$ss_port"
}
wait_until 15 _ss_ready || chk_fail "openssl s_server does not listen on $ss_port"
mtlsd_write_config suites
mtlsd_mapping_file suites weak.yaml <<EOF
mappings:
  - name: weak
    url: https://localhost:$ss_port/
    listen: 127.0.0.1:0
    certificate: client-pem
    trust: {ca_file: $PKI/trust/server-root.pem}
    validate: false
EOF
if mtlsd_start suites; then
	for i in 1 2; do
		req "weak-$i" "http://127.0.0.1:$(mtlsd_port suites weak)/?t=weak-$i-secret"
		refusal_checks "weak suites, try $i" 502 upstream_tls
	done
	chk_match "reason in the body" 'handshake|cipher|alert' "$(body)"
	chk_match "s_server's verdict" 'no shared cipher' "$(cat "$ss_log")"
	chk_nomatch "the request reached s_server" 'weak-[0-9]-secret' "$(cat "$ss_log")"
	t_done "tls: an upstream offering only NULL, anonymous or 3DES suites → 502 upstream_tls, nothing sent"
	mtlsd_stop suites
fi
kill "$ss_pid" 2>/dev/null
wait "$ss_pid" 2>/dev/null
