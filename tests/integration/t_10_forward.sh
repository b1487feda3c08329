# shellcheck shell=bash
# Forwarding through dedicated ports and the proxy port: which certificate
# the upstream saw, path mapping, headers, keep-alive.

mtlsd_write_config main-check
_main_instance_config
mtlsd_check "$TMP/inst/main/mtlsd.yaml"
chk_eq "exit status" 0 "$CHK_RC"
[ "$CHK_RC" = 0 ] || chk_fail "output: $CHK_OUT"
t_done "check: mtlsd -t accepts the test configuration"

main_instance || return 0

# --- one dedicated port per certificate format
req pem "http://127.0.0.1:$P_PEM/?t=pem-1"
chk_eq "status" 200 "$R_STATUS"
chk_eq "body" "hello from nginx" "$(body)"
t_done "pem: dedicated port returns the upstream's 200 and body"

line=$(ngx_log 't=pem-1')
chk_eq "X-Client-Serial seen by the client" "$SERIAL_PEM" "$(hdr X-Client-Serial)"
chk_eq "serial in nginx's log" "$SERIAL_PEM" "$(ngx_field "$line" serial)"
chk_eq "nginx verify result" SUCCESS "$(ngx_field "$line" verify)"
chk_eq "URI at nginx (prefix / keeps the path)" "/?t=pem-1" "$(ngx_field "$line" uri)"
t_done "pem: nginx verified the client-pem certificate (serial)"

req p12 "http://127.0.0.1:$P_P12/?t=p12-1"
chk_eq "status" 200 "$R_STATUS"
chk_eq "serial in nginx's log" "$SERIAL_P12" "$(ngx_field "$(ngx_log 't=p12-1')" serial)"
t_done "p12: PKCS#12 certificate presented (nginx saw its serial)"

req chain "http://127.0.0.1:$P_CHAIN/?t=chain-1"
chk_eq "status" 200 "$R_STATUS"
line=$(ngx_log 't=chain-1')
chk_eq "serial in nginx's log" "$SERIAL_CHAIN" "$(ngx_field "$line" serial)"
chk_eq "nginx verify result" SUCCESS "$(ngx_field "$line" verify)"
t_done "chain: leaf+intermediate file presented, nginx verified via the intermediate"

req prefix "http://127.0.0.1:$P_P12/deeper/path?t=prefix-1&x=%20y"
chk_eq "status" 200 "$R_STATUS"
chk_eq "URI at nginx" "/p12/deeper/path?t=prefix-1&x=%20y" "$(ngx_field "$(ngx_log 't=prefix-1')" uri)"
t_done "path: dedicated port maps /x to the url's prefix + /x, query intact"

# --- the proxy port (absolute-form requests)
req proxy -x "http://127.0.0.1:$P_PROXY" "http://localhost:$NG_PORT/?t=proxy-1"
chk_eq "status" 200 "$R_STATUS"
chk_eq "body" "hello from nginx" "$(body)"
line=$(ngx_log 't=proxy-1')
chk_eq "serial in nginx's log" "$SERIAL_PEM" "$(ngx_field "$line" serial)"
chk_eq "URI at nginx (origin-form)" "/?t=proxy-1" "$(ngx_field "$line" uri)"
t_done "proxy: absolute-form request forwarded with the mapping's certificate"

req proxy-p12 -x "http://127.0.0.1:$P_PROXY" "http://localhost:$NG_PORT/p12/x?t=proxy-p12"
chk_eq "p12 status" 200 "$R_STATUS"
chk_eq "serial for /p12/x" "$SERIAL_P12" "$(ngx_field "$(ngx_log 't=proxy-p12')" serial)"
req proxy-chain -x "http://127.0.0.1:$P_PROXY" "http://localhost:$NG_PORT/chain/y?t=proxy-chain"
chk_eq "chain status" 200 "$R_STATUS"
chk_eq "serial for /chain/y" "$SERIAL_CHAIN" "$(ngx_field "$(ngx_log 't=proxy-chain')" serial)"
req proxy-root -x "http://127.0.0.1:$P_PROXY" "http://localhost:$NG_PORT/p12x?t=proxy-root"
chk_eq "serial for /p12x (not under /p12/)" "$SERIAL_PEM" "$(ngx_field "$(ngx_log 't=proxy-root')" serial)"
t_done "proxy: longest path prefix picks the mapping (and its certificate)"

req proxy-hop -x "http://127.0.0.1:$P_PROXY" -U "user:secret" --proxy-basic \
	-H 'X-Custom: via-proxy' "http://localhost:$NG_PORT/headers?t=proxy-hop"
chk_eq "status" 200 "$R_STATUS"
chk_match "Proxy-Connection dropped" 'proxy_connection=\[\]' "$(body)"
chk_match "Proxy-Authorization dropped" 'proxy_authorization=\[\]' "$(body)"
chk_match "X-Custom kept" 'x_custom=\[via-proxy\]' "$(body)"
t_done "proxy: Proxy-Connection and Proxy-Authorization are not forwarded"

# --- what passes through, what does not
req passthru "http://127.0.0.1:$P_PEM/?t=passthru"
chk_eq "X-Upstream-Test" "passed-through" "$(hdr X-Upstream-Test)"
chk_eq "both X-Multi headers, in order" "one,two" "$(hdr_all X-Multi)"
chk_match "Content-Type" '^text/plain' "$(hdr Content-Type)"
t_done "headers: upstream response headers pass through (repeated ones too)"

req teapot "http://127.0.0.1:$P_PEM/teapot?t=teapot"
chk_eq "status" 418 "$R_STATUS"
chk_eq "body" "short and stout" "$(body)"
chk_eq "no X-Mtlsd-Error on upstream answers" "" "$(hdr X-Mtlsd-Error)"
t_done "status: an upstream 418 (no reason phrase) reaches the client as is"

req hop -H 'Connection: keep-alive, X-Drop-Me' -H 'X-Drop-Me: 1' \
	-H 'Keep-Alive: timeout=5' -H 'Proxy-Connection: keep-alive' \
	-H 'X-Custom: present' "http://127.0.0.1:$P_PEM/headers?t=hop"
chk_eq "status" 200 "$R_STATUS"
chk_match "Keep-Alive dropped" 'keep_alive=\[\]' "$(body)"
chk_match "Proxy-Connection dropped" 'proxy_connection=\[\]' "$(body)"
chk_match "header named in Connection dropped" 'x_drop_me=\[\]' "$(body)"
t_done "headers: hop-by-hop headers are not forwarded"
chk_match "X-Custom" 'x_custom=\[present\]' "$(body)"
t_done "headers: end-to-end request headers are forwarded"

# HEAD, then a GET on the same client connection: a daemon that waited for
# (or forwarded) a body after HEAD would stall or corrupt the second answer
out=$(curl -sS --max-time 20 -I -o "$TMP/r/head.h" -w '%{http_code} %{num_connects} ' \
	"http://127.0.0.1:$P_PEM/big?t=head" \
	--next -sS --max-time 20 -o "$TMP/r/after-head.b" -w '%{http_code} %{num_connects} %{time_total}' \
	"http://127.0.0.1:$P_PEM/?t=after-head" 2>"$TMP/r/head.e")
read -r s1 c1 s2 c2 t2 <<<"$out"
chk_eq "HEAD status" 200 "$s1"
chk_eq "HEAD Content-Length" 52428800 "$(hdr Content-Length "$TMP/r/head.h")"
chk_eq "method at nginx" HEAD "$(ngx_field "$(ngx_log 't=head')" method)"
chk_eq "next GET status" 200 "$s2"
chk_eq "next GET body" "hello from nginx" "$(cat "$TMP/r/after-head.b" 2>/dev/null)"
chk_eq "client connections opened" 1 "$((${c1:-9} + ${c2:-9}))"
t_done "HEAD: headers only (Content-Length of the 50 MB file), then a GET on the same connection"

req chunked-resp "http://127.0.0.1:$P_PEM/chunked?t=chunked-resp"
chk_eq "status" 200 "$R_STATUS"
chk_eq "body" $'part one\npart two\npart three' "$(body)"
t_done "chunked: a chunked upstream response arrives whole"

head -c 262144 /dev/urandom >"$TMP/payload.expect"
req expect -T "$TMP/payload.expect" -H 'Expect: 100-continue' --expect100-timeout 20 \
	"http://127.0.0.1:$P_PEM/upload/expect.bin?t=expect"
chk_match "status" '^20[14]$' "$R_STATUS"
chk_le "seconds (no stall waiting for 100 Continue)" 10 "$R_TIME"
chk_eq "sha256 on the upstream's disk" "$(sha "$TMP/payload.expect")" "$(sha "$WWW/upload/expect.bin" 2>/dev/null)"
t_done "Expect: 100-continue upload completes promptly and intact"

# --- keep-alive
for i in $(seq 1 20); do
	req "ka-$i" "http://127.0.0.1:$P_PEM/?t=ka-$i-"
	[ "$R_STATUS" = 200 ] || chk_fail "request $i: status $R_STATUS"
done
ngx_log 't=ka-20-' >/dev/null
conns=$(grep -E 'uri=[^ ]*t=ka-[0-9]+-' "$NG_DIR/access.log" | sed 's/^conn=\([0-9]*\).*/\1/' | sort -u | wc -l)
chk_le "distinct upstream connections for 20 client connections" 3 "$conns"
t_done "pool: 20 separate clients reuse pooled upstream connections"

args=()
for i in $(seq 1 20); do args+=(-o /dev/null "http://127.0.0.1:$P_PEM/?t=dka-$i-"); done
out=$(curl -sS --max-time 30 -w '%{http_code} %{num_connects}\n' "${args[@]}" 2>"$TMP/r/dka.e")
chk_eq "statuses" "200" "$(awk '{ print $1 }' <<<"$out" | sort -u | tr '\n' ' ' | sed 's/ $//')"
chk_eq "responses" 20 "$(grep -c . <<<"$out")"
chk_eq "client connections opened" 1 "$(awk '{ s += $2 } END { print s + 0 }' <<<"$out")"
t_done "keep-alive: 20 requests over one client connection"
