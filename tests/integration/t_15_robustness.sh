# shellcheck shell=bash
# What real clients do that the happy path does not: parallel clients,
# pipelining, clients that hang up mid-response.

main_instance || return 0

# --- parallel clients: 3 downloads of the 50 MB file and 12 small requests
pids=()
for i in 1 2 3; do
	(REQ_TIMEOUT=120 req "par-big-$i" "http://127.0.0.1:$P_PEM/big?t=par-big-$i-") &
	pids+=($!)
done
for i in $(seq 1 12); do
	case $((i % 3)) in
	0) url="http://127.0.0.1:$P_PEM/?t=par-$i-" ;;
	1) url="http://127.0.0.1:$P_P12/?t=par-$i-" ;;
	2) url="http://127.0.0.1:$P_PEM/chunked?t=par-$i-" ;;
	esac
	(req "par-$i" "$url") &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for i in 1 2 3; do
	chk_eq "download $i status" 200 "$(cat "$TMP/r/par-big-$i.s")"
	chk_eq "download $i sha256" "$BIG_SHA" "$(sha "$TMP/r/par-big-$i.b" 2>/dev/null)"
	rm -f "$TMP/r/par-big-$i.b"
done
for i in $(seq 1 12); do
	chk_eq "small request $i status" 200 "$(cat "$TMP/r/par-$i.s")"
done
chk_eq "p12 requests' serial at nginx" "$SERIAL_P12" "$(ngx_field "$(ngx_log 't=par-4-')" serial)"
t_done "parallel: 3 × 50 MB downloads and 12 small requests at once, all intact"

# --- pipelining: two requests in one write, answered in order
main_instance
RAW_EOF=1 raw "$P_PEM" 10 < <(printf 'GET /?t=pipe-1 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /teapot?t=pipe-2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
chk_eq "statuses in order" "200 418" "$(grep -E '^HTTP/1\.1 [0-9]{3}' <<<"$RAW" | awk '{ printf "%s%s", sep, $2; sep = " " }')"
chk_match "first body" 'hello from nginx' "$RAW"
chk_match "second body" 'short and stout' "$RAW"
chk_nomatch "closed after Connection: close (no timeout)" '.' "$(grep 'timed out' "$TMP/r/raw.e" 2>/dev/null)"
t_done "pipelining: two requests in one packet get two responses in order"

# --- a client that hangs up after 1 MB of the 50 MB download
main_instance
curl -sS --max-time 30 "http://127.0.0.1:$P_PEM/big?t=abort" 2>/dev/null | head -c 1000000 >/dev/null
req after-abort "http://127.0.0.1:$P_PEM/teapot?t=after-abort"
chk_eq "next status" 418 "$R_STATUS"
chk_eq "next body" "short and stout" "$(body)"
req after-abort-2 "http://127.0.0.1:$P_PEM/?t=after-abort-2"
chk_eq "second next body" "hello from nginx" "$(body)"
t_done "abort: a client hanging up mid-download leaves later requests correct"

# --- a client that hangs up while its upload is being forwarded
main_instance
head -c 20000000 /dev/urandom >"$TMP/payload.abort"
curl -sS --max-time 30 --limit-rate 2M -T "$TMP/payload.abort" \
	"http://127.0.0.1:$P_PEM/upload/abort.bin?t=up-abort" >/dev/null 2>&1 &
upl=$!
_upload_started() { [ -f "$WWW/upload/abort.bin" ] || ls "$NG_DIR"/body/* >/dev/null 2>&1; }
wait_until 10 _upload_started || chk_fail "upload never reached nginx"
kill "$upl" 2>/dev/null
wait "$upl" 2>/dev/null
req after-up-abort "http://127.0.0.1:$P_PEM/?t=after-up-abort"
chk_eq "next status" 200 "$R_STATUS"
chk_eq "next body" "hello from nginx" "$(body)"
chk_eq "no partial file stored" "" "$(ls "$WWW/upload/abort.bin" 2>/dev/null)"
t_done "abort: a client hanging up mid-upload leaves later requests correct, nothing stored"
rm -f "$TMP/payload.abort"

# --- a burst of new connections while the workers are busy: the kernel
# queues 511 per listening socket (libevent's default of 128 made the
# 130th client wait for a SYN retransmission, a second or more)
main_instance
pid=$(mtlsd_pid main)
if ! command -v ss >/dev/null; then
	t_fail "accept queue: ss" "not installed (tests/run-all.sh installs iproute2)"
else
	for port in "$P_PROXY" "$P_PEM" "$(mtlsd_admin_port main)"; do
		q=$(ss -Hltn "sport = :$port" | awk '{ print $3 }' | sort -u | tr '\n' ' ')
		chk_eq "port $port: accept queue of each listening socket" "511 " "$q"
	done
	kill -STOP "$pid"
	n=$($NETTOOL burst 127.0.0.1 "$P_PEM" 400 0.5)
	kill -CONT "$pid"
	chk_eq "connections of a burst of 400 that completed while mtlsd was stopped" 400 "$n"
	req after-burst "http://127.0.0.1:$P_PEM/?t=after-burst"
	chk_eq "next status" 200 "$R_STATUS"
	chk_eq "next body" "hello from nginx" "$(body)"
	t_done "accept queue: 511 per listening socket; a burst of 400 connections waits in it"
fi
