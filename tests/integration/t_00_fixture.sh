# shellcheck shell=bash
# The upstream fixture itself: nginx must really demand a client certificate,
# or every "nginx saw serial X" assertion below would prove nothing.

req fixture-nocert --cacert "$PKI/trust/server-root.pem" "https://localhost:$NG_PORT/?t=fixture-nocert"
chk_eq "status without a client certificate" 400 "$R_STATUS"
chk_match "nginx's reason" "No required SSL certificate" "$(body)"
t_done "fixture: nginx refuses a client without certificate"

req fixture-cert --cacert "$PKI/trust/server-root.pem" \
	--cert "$PKI/certs.d/client-pem/client.crt" --key "$PKI/certs.d/client-pem/client.key" \
	"https://localhost:$NG_PORT/?t=fixture-cert"
chk_eq "status" 200 "$R_STATUS"
chk_eq "X-Client-Serial" "$SERIAL_PEM" "$(hdr X-Client-Serial)"
line=$(ngx_log fixture-cert)
chk_eq "nginx log serial" "$SERIAL_PEM" "$(ngx_field "$line" serial)"
chk_eq "nginx log verify" SUCCESS "$(ngx_field "$line" verify)"
t_done "fixture: nginx accepts the client-pem certificate and logs its serial"

# the chain certificate only verifies through the intermediate it sends
req fixture-chain --cacert "$PKI/trust/server-root.pem" \
	--cert "$PKI/certs.d/client-chain/combined.pem" \
	"https://localhost:$NG_PORT/?t=fixture-chain"
chk_eq "status" 200 "$R_STATUS"
chk_eq "X-Client-Serial" "$SERIAL_CHAIN" "$(hdr X-Client-Serial)"
t_done "fixture: nginx verifies client-chain via the intermediate the client sends"
