# shellcheck shell=bash
# What a dedicated port puts on the wire (issue 6), captured with tcpdump
# on lo:
# - a connection-per-request exchange: the response's last segment carries
#   the FIN (no segment of its own), and the request is acknowledged by the
#   response, not by a pure ACK of its own (delayed-ACK mode on accepted
#   sockets) — the server sends three segments in all: SYN-ACK, data+FIN,
#   the ACK of the client's FIN;
# - a keep-alive response is sent at once, without the FIN;
# - a client that connects and stays silent for 1.5 s is served once it
#   speaks (its request was not there at the accept).

main_instance || return 0
WIRE=$TMP/r/wire
mkdir -p "$WIRE"

# wire_capture FILE: tcpdump on lo for P_PEM, started; WIRE_PID set
wire_capture() {
	tcpdump -i lo -nn -U --immediate-mode -w "$1" "tcp port $P_PEM" 2>"$1.err" &
	WIRE_PID=$!
	_w_listening() { grep -q "listening on" "$1.err" 2>/dev/null; }
	wait_until 10 _w_listening "$1"
}

# wire_stop FILE: stop the capture, print its segments per connection
wire_stop() {
	sleep 0.3 # the last ACK
	kill -INT "$WIRE_PID" 2>/dev/null
	wait "$WIRE_PID" 2>/dev/null
	tcpdump -nn -r "$1" 2>/dev/null | python3 "$IT_DIR/wire.py" "$P_PEM"
}

if ! command -v tcpdump >/dev/null; then
	t_fail "wire: tcpdump" "not installed (tests/run-all.sh installs it)"
	return 0
fi

# a pooled upstream connection first: the exchanges below then take no
# handshake, and answer well within the 40 ms delayed-ACK timer
req wire-warm "http://127.0.0.1:$P_PEM/?t=wire-warm"
chk_eq "warm-up status" 200 "$R_STATUS"

if wire_capture "$WIRE/close.pcap"; then
	for i in 1 2 3 4 5; do
		req "wire-close-$i" -H 'Connection: close' "http://127.0.0.1:$P_PEM/?t=wire-close-$i"
		chk_eq "close $i: status" 200 "$R_STATUS"
		chk_eq "close $i: body" "hello from nginx" "$(body)"
	done
	wire_stop "$WIRE/close.pcap" >"$WIRE/close.txt"
	chk_eq "connections captured" 5 "$(wc -l <"$WIRE/close.txt")"
	chk_eq "connections whose response ended with data+FIN in one segment" 5 \
		"$(grep -c ' data=1 fin_on_data=1 ' "$WIRE/close.txt")"
	chk_eq "connections where the server sent 3 segments (SYN-ACK, data+FIN, ACK)" 5 \
		"$(grep -c ' server=3 ' "$WIRE/close.txt")"
	# a pure ACK may still come from the 40 ms timer on a loaded machine;
	# without delayed-ACK mode every connection had one (10 segments)
	chk_ne "connections without a pure ACK of the request" 0 \
		"$(grep -c 'ack_before_data=0' "$WIRE/close.txt")"
	[ -z "${_t_errs[*]:-}" ] || chk_fail "segments: $(tr '\n' ';' <"$WIRE/close.txt")"
else
	chk_fail "tcpdump did not start: $(head -c 300 "$WIRE/close.pcap.err")"
fi
t_done "wire: Connection: close — the FIN rides on the response, no pure ACK of the request"

if wire_capture "$WIRE/ka.pcap"; then
	# two requests over one connection (curl reuses it)
	codes=$(curl -sS --max-time 30 -o "$WIRE/ka1.b" -o "$WIRE/ka2.b" -w '%{http_code} ' \
		"http://127.0.0.1:$P_PEM/?t=wire-ka-1" "http://127.0.0.1:$P_PEM/?t=wire-ka-2" 2>"$WIRE/ka.e")
	chk_eq "keep-alive: statuses" "200 200 " "$codes"
	chk_eq "keep-alive: bodies" $'hello from nginx\nhello from nginx' "$(cat "$WIRE/ka1.b" "$WIRE/ka2.b")"
	wire_stop "$WIRE/ka.pcap" >"$WIRE/ka.txt"
	chk_eq "keep-alive: one connection for both" 1 "$(wc -l <"$WIRE/ka.txt")"
	chk_match "keep-alive: two responses, the FIN not on the last one" \
		' data=2 fin_on_data=0 ' "$(cat "$WIRE/ka.txt")"
else
	chk_fail "tcpdump did not start: $(head -c 300 "$WIRE/ka.pcap.err")"
fi
t_done "wire: keep-alive responses are sent without the FIN"

RAW_DELAY=1.5 raw "$P_PEM" 10 < <(printf 'GET /?t=wire-late HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
chk_eq "silent 1.5 s, then a request: status" 200 "$RAW_STATUS"
chk_match "silent 1.5 s, then a request: body" 'hello from nginx' "$RAW"
chk_ne "nginx saw it" "" "$(ngx_log 't=wire-late')"
t_done "wire: a client silent for 1.5 s after connecting is served once it speaks"
