# shellcheck shell=bash
# Large and chunked bodies, both directions, checked byte for byte.

main_instance || return 0

REQ_TIMEOUT=120 req big-down "http://127.0.0.1:$P_PEM/big?t=big-down"
chk_eq "status" 200 "$R_STATUS"
chk_eq "bytes" 52428800 "$(wc -c <"$R_B")"
chk_eq "sha256" "$BIG_SHA" "$(sha "$R_B")"
t_done "download: 50 MB arrive intact (sha256)"
rm -f "$R_B"

head -c 52428800 /dev/urandom >"$TMP/payload.up"
REQ_TIMEOUT=120 req big-up -T "$TMP/payload.up" "http://127.0.0.1:$P_PEM/upload/big-up.bin?t=big-up"
chk_match "status" '^20[14]$' "$R_STATUS"
chk_eq "request_length at nginx >= body" 1 "$(awk -v l="$(ngx_field "$(ngx_log 't=big-up')" len)" 'BEGIN { print (l >= 52428800) ? 1 : 0 }')"
chk_eq "sha256 on the upstream's disk" "$(sha "$TMP/payload.up")" "$(sha "$WWW/upload/big-up.bin" 2>/dev/null)"
t_done "upload: 50 MB PUT arrives intact (sha256 on nginx's disk)"
rm -f "$TMP/payload.up" "$WWW/upload/big-up.bin"

head -c 5000000 /dev/urandom >"$TMP/payload.chunked"
REQ_TIMEOUT=60 req chunked-up -X PUT -H 'Transfer-Encoding: chunked' \
	--data-binary @"$TMP/payload.chunked" "http://127.0.0.1:$P_PEM/upload/chunked.bin?t=chunked-up"
chk_match "status" '^20[14]$' "$R_STATUS"
chk_eq "sha256 on the upstream's disk" "$(sha "$TMP/payload.chunked")" "$(sha "$WWW/upload/chunked.bin" 2>/dev/null)"
t_done "upload: chunked request body (5 MB) arrives intact"

# many small chunks: curl reads the file in 64 KiB pieces; a pipe forces
# small writes, each its own chunk
head -c 300000 /dev/urandom >"$TMP/payload.small"
out=$(for i in 0 1 2 3 4 5; do dd if="$TMP/payload.small" bs=50000 skip="$i" count=1 status=none; done |
	curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -X PUT -H 'Transfer-Encoding: chunked' \
		--data-binary @- "http://127.0.0.1:$P_PEM/upload/pipe.bin?t=pipe-up" 2>"$TMP/r/pipe.e")
chk_match "status" '^20[14]$' "$out"
chk_eq "sha256 on the upstream's disk" "$(sha "$TMP/payload.small")" "$(sha "$WWW/upload/pipe.bin" 2>/dev/null)"
t_done "upload: chunked body from a pipe arrives intact"

out=$(curl -sS --max-time 30 -X PUT --data-binary 'small body' -o /dev/null -w '%{http_code} %{num_connects} ' \
	"http://127.0.0.1:$P_PEM/upload/small.txt?t=small-put" \
	--next -sS --max-time 30 -o "$TMP/r/after-put.b" -w '%{http_code} %{num_connects}' \
	"http://127.0.0.1:$P_PEM/?t=after-put" 2>"$TMP/r/after-put.e")
read -r s1 c1 s2 c2 <<<"$out"
chk_match "PUT status" '^20[14]$' "$s1"
chk_eq "stored body" "small body" "$(cat "$WWW/upload/small.txt" 2>/dev/null)"
chk_eq "GET status" 200 "$s2"
chk_eq "GET body" "hello from nginx" "$(cat "$TMP/r/after-put.b" 2>/dev/null)"
chk_eq "client connections opened" 1 "$((${c1:-9} + ${c2:-9}))"
t_done "keep-alive: a GET after a PUT on the same client connection"
