# shellcheck shell=bash
# workers: N — event-loop threads. What a user sees with workers: 4:
#  - the ready line says "4 workers"; threads mtlsd-w1..mtlsd-w3 exist;
#  - many client connections on a dedicated port, the proxy port and a unix
#    socket all get the upstream's 200 with our client certificate, are
#    spread over several workers (SO_REUSEPORT), and /status "workers" and
#    /metrics count each one exactly once;
#  - upstream TLS connections are still pooled (handshakes ≪ requests);
#  - reloads and a certificate swap under load fail no request, a mapping a
#    reload adds is served by every worker, traffic moves to the new serial;
#  - rate_limit and limits.max_connections hold for the whole process,
#    whatever worker a connection lands on;
#  - a reload that changes workers keeps the running number and says so;
#  - SIGTERM: no worker accepts any more, requests in flight on every worker
#    finish, exit 0.
# And workers: 1 names no extra thread and logs "1 worker".
# Instances: wk (workers 4: dedicated port, proxy port, unix socket, a rate
# limited mapping; reloads and rotation), wkmax (workers 4,
# max_connections 12), wkdrain (workers 4, SIGTERM), wk1 (workers 1).
#
# Spreading: the kernel picks the SO_REUSEPORT socket by a hash of the
# connection's addresses and ports, so which worker gets a connection is not
# known in advance; the checks hold wherever each one lands. "At least 2
# workers got some" out of 40 or more connections fails by chance with a
# probability below 4 x (1/4)^39 (never in practice), and fails for sure
# when only one worker listens on the port.

trust="trust: {ca_file: $PKI/trust/server-root.pem}"
WK=$TMP/wk-work
mkdir -p "$WK"
WK_LIMIT=30
[ -n "${MTLSD_WRAPPER:-}" ] && WK_LIMIT=120

# ------------------------------------------------------------- the client

# load.py: plain-HTTP clients over raw sockets (one python3 run per batch:
# starting 200 curls costs more than the requests).
#   batch: N requests, each on its own connection ("Connection: close"),
#          CONC at a time;
#   loop:  CONC threads, each opening a connection, sending KEEP keep-alive
#          requests on it (the last with "Connection: close"), again, until
#          the --stop file exists; a keep-alive connection closed by the
#          server between two requests is reopened (RFC 9112 9.3.1) and
#          counted as a reconnect, not a failure;
#   upload: N PUTs of 10 bytes with 5 sent, the rest once --release exists
#          (requests held in flight for as long as the test wants).
# Each request's line goes to --out: "I STATUS SERIAL X-MTLSD-ERROR
# RETRY-AFTER ok|bad" (ok: 200 with nginx's body). Prints
#   requests N ok K failed F reconnects R elapsed S
#   statuses 200:N,...        serials SERIAL:N,... (of the ok ones)
#   error ... (the first five failures)
cat >"$WK/load.py" <<'PY'
import argparse, os, socket, sys, threading, time

def connect(target):
    if target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(target[5:])
        return s
    return socket.create_connection(("127.0.0.1", int(target)), timeout=60)

def head_bytes(a, path, close):
    if a.proxy:
        h = "GET http://%s%s HTTP/1.1\r\nHost: %s\r\n" % (a.proxy, path, a.proxy)
    else:
        h = "GET %s HTTP/1.1\r\nHost: localhost\r\n" % path
    if close:
        h += "Connection: close\r\n"
    return (h + "\r\n").encode()

def read_response(s, buf):
    """(status, headers, body, rest); EOFError when the peer closed before
    the first byte of a response, OSError/ValueError on a broken one."""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c:
            if not buf:
                raise EOFError
            raise ValueError("closed within the head after %d bytes" % len(buf))
        buf += c
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    parts = lines[0].split(" ")
    status = parts[1] if len(parts) > 1 else "000"
    if "content-length" in hdrs:
        need = int(hdrs["content-length"])
        while len(buf) < need:
            c = s.recv(65536)
            if not c:
                raise ValueError("closed within the body")
            buf += c
        return status, hdrs, buf[:need], buf[need:]
    while True:  # close-delimited (or chunked: kept raw, never "ok")
        c = s.recv(65536)
        if not c:
            return status, hdrs, buf, b""
        buf += c

class Run:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.n = 0
        self.results = []
        self.errors = []
        self.reconnects = 0
        self.out = open(a.out, "a", buffering=1) if a.out else None

    def next_index(self):
        with self.lock:
            self.n += 1
            return self.n

    def record(self, i, status, hdrs, body):
        ok = status == "200" and body == b"hello from nginx\n"
        r = (i, status, hdrs.get("x-client-serial") or "-",
             hdrs.get("x-mtlsd-error") or "-", hdrs.get("retry-after") or "-", ok)
        with self.lock:
            self.results.append(r)
            if not ok and status not in self.a.expect and len(self.errors) < 5:
                self.errors.append("request %d: %s %r" % (i, status, body[:60]))
            if self.out:
                self.out.write("%d %s %s %s %s %s\n" % (r[:5] + ("ok" if ok else "bad",)))

    def fail(self, i, why):
        with self.lock:
            self.results.append((i, "000", "-", "-", "-", False))
            if len(self.errors) < 5:
                self.errors.append("request %d: %s" % (i, why))
            if self.out:
                self.out.write("%d 000 - - - bad\n" % i)

    def summary(self, elapsed):
        st, se = {}, {}
        for r in self.results:
            st[r[1]] = st.get(r[1], 0) + 1
            if r[5]:
                se[r[2]] = se.get(r[2], 0) + 1
        print("requests %d ok %d failed %d reconnects %d elapsed %.3f" % (
            len(self.results), sum(1 for r in self.results if r[5]),
            sum(1 for r in self.results if not r[5] and r[1] not in self.a.expect),
            self.reconnects, elapsed))
        print("statuses " + ",".join("%s:%d" % kv for kv in sorted(st.items())))
        print("serials " + ",".join("%s:%d" % kv for kv in sorted(se.items())))
        for e in self.errors:
            print("error " + e.replace("\n", " "))

def batch_thread(run):
    a = run.a
    while True:
        i = run.next_index()
        if i > a.n:
            return
        try:
            s = connect(a.target)
        except OSError as e:
            run.fail(i, "connect: %s" % e)
            continue
        try:
            s.sendall(head_bytes(a, "%s?t=%s-%d-" % (a.path, a.tag, i), True))
            status, hdrs, body, _ = read_response(s, b"")
            run.record(i, status, hdrs, body)
        except (EOFError, OSError, ValueError) as e:
            run.fail(i, "%r" % e)
        finally:
            s.close()

def loop_thread(run):
    a = run.a
    while not os.path.exists(a.stop):
        try:
            s = connect(a.target)
        except OSError as e:
            run.fail(run.next_index(), "connect: %s" % e)
            time.sleep(0.05)
            continue
        buf, k, fresh, i = b"", 0, True, 0
        try:
            while k < a.keep:
                i = run.next_index()
                k += 1
                req = head_bytes(a, "%s?t=%s-%d-" % (a.path, a.tag, i), k == a.keep)
                try:
                    s.sendall(req)
                    status, hdrs, body, buf = read_response(s, buf)
                except (EOFError, ConnectionResetError, BrokenPipeError):
                    if fresh or buf:
                        raise
                    with run.lock:
                        run.reconnects += 1
                    s.close()
                    s = connect(a.target)
                    s.sendall(req)
                    status, hdrs, body, buf = read_response(s, b"")
                fresh = False
                run.record(i, status, hdrs, body)
                if hdrs.get("connection", "").lower() == "close":
                    break
                time.sleep(a.pause)
        except (EOFError, OSError, ValueError) as e:
            run.fail(i, "%r" % e)
        finally:
            s.close()

def upload(a):
    socks = []
    for i in range(1, a.n + 1):
        s = connect(a.target)
        s.sendall(("PUT /upload/%s-%d.bin?t=%s-%d- HTTP/1.1\r\nHost: localhost\r\n"
                   "Content-Length: 10\r\n\r\n01234" % (a.tag, i, a.tag, i)).encode())
        socks.append(s)
    with open(a.ready + ".tmp", "w") as f:
        f.write("%d\n" % len(socks))
    os.rename(a.ready + ".tmp", a.ready)
    deadline = time.monotonic() + 300
    while not os.path.exists(a.release) and time.monotonic() < deadline:
        time.sleep(0.05)   # a poll interval: the test creates the file
    st = {}
    for i, s in enumerate(socks, 1):
        try:
            s.sendall(b"56789")
            status = read_response(s, b"")[0]
        except (EOFError, OSError, ValueError) as e:
            status = "000"
            print("error upload %d: %r" % (i, e))
        st[status] = st.get(status, 0) + 1
        s.close()
    print("statuses " + ",".join("%s:%d" % kv for kv in sorted(st.items())))

def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("batch", "loop", "upload"))
    p.add_argument("--target", required=True, help="PORT or unix:PATH")
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--conc", type=int, default=1)
    p.add_argument("--keep", type=int, default=3)
    p.add_argument("--tag", default="wk")
    p.add_argument("--path", default="/")
    p.add_argument("--proxy", default="", help="HOST:PORT: absolute-form requests")
    p.add_argument("--expect", default="", help="statuses that are no failure")
    p.add_argument("--out", default="")
    p.add_argument("--stop", default="")
    p.add_argument("--ready", default="")
    p.add_argument("--release", default="")
    p.add_argument("--pause", type=float, default=0, help="loop: seconds between requests")
    a = p.parse_args()
    a.expect = [x for x in a.expect.split(",") if x]
    if a.mode == "upload":
        upload(a)
        return 0
    run = Run(a)
    fn = batch_thread if a.mode == "batch" else loop_thread
    t0 = time.monotonic()
    ts = [threading.Thread(target=fn, args=(run,)) for _ in range(a.conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    run.summary(time.monotonic() - t0)
    return 0

sys.exit(main())
PY

# wk_batch NAME TARGET N CONC [LOAD-ARGS...]: a batch; its summary in
# $WK/NAME.out, its request lines in $WK/NAME.lines; sets WB_REQ, WB_OK,
# WB_FAILED, WB_STATUSES, WB_SERIALS, WB_ELAPSED, WB_ERR (first error)
wk_batch() {
	local name=$1 target=$2 n=$3 conc=$4
	shift 4
	: >"$WK/$name.lines"
	timeout 300 python3 "$WK/load.py" batch --target "$target" --n "$n" --conc "$conc" \
		--tag "$name" --out "$WK/$name.lines" "$@" >"$WK/$name.out" 2>&1
	_wk_summary "$WK/$name.out"
}

_wk_summary() {
	read -r _ WB_REQ _ WB_OK _ WB_FAILED _ WB_RECONNECTS _ WB_ELAPSED < <(grep '^requests ' "$1")
	WB_STATUSES=$(sed -n 's/^statuses //p' "$1")
	WB_SERIALS=$(sed -n 's/^serials //p' "$1")
	WB_ERR=$(grep -m1 -E '^error|Traceback|Error' "$1")
}

# wk_loop_start NAME TARGET [LOAD-ARGS...] / wk_loop_stop NAME: the loop
# client in the background (4 threads, 3 requests per connection, 10 ms
# between two requests of a thread: a steady load, not a flood); its
# request lines accumulate in $WK/NAME.lines as they complete
wk_loop_start() {
	local name=$1 target=$2
	shift 2
	: >"$WK/$name.lines"
	rm -f "$WK/$name.stop"
	timeout 600 python3 "$WK/load.py" loop --target "$target" --conc 4 --keep 3 --pause 0.01 \
		--tag "$name" --out "$WK/$name.lines" --stop "$WK/$name.stop" "$@" \
		>"$WK/$name.out" 2>&1 &
	eval "WK_LOOP_$name=$!"
}

wk_loop_stop() {
	local pid
	eval "pid=\${WK_LOOP_$1:-}"
	touch "$WK/$1.stop"
	[ -n "$pid" ] && wait "$pid"
	_wk_summary "$WK/$1.out"
}

# wk_loop_count NAME: requests the loop has completed so far
wk_loop_count() { wc -l <"$WK/$1.lines"; }
_wk_loop_beyond() { [ "$(wk_loop_count "$1")" -ge "$2" ]; }

# wk_json INST EXPR...: each EXPR over INST's /status (d), one a line
wk_json() {
	local inst=$1
	shift
	mtlsd_admin "$inst" /status >"$WK/status-$inst.json" 2>/dev/null
	vjson "$WK/status-$inst.json" "$@"
}

# wk_accepted INST: each worker's "accepted", in worker order, space-separated
wk_accepted() {
	wk_json "$1" '" ".join(str(w["accepted"]) for w in sorted(d["workers"], key=lambda w: w["worker"]))'
}

# wk_conns INST: each worker's open client connections, in worker order
wk_conns() {
	wk_json "$1" '" ".join(str(w["connections"]) for w in sorted(d["workers"], key=lambda w: w["worker"]))'
}

# wk_delta BEFORE AFTER: per-worker difference of two wk_accepted lines;
# sets WD (the differences), WD_SUM and WD_SPREAD (workers with more than 0)
wk_delta() {
	read -r WD WD_SUM WD_SPREAD < <(awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, x, " "); m = split(b, y, " ")
		if (n != m || n == 0) { print "mismatch -1 -1"; exit }
		s = 0; k = 0; d = ""
		for (i = 1; i <= n; i++) { v = y[i] - x[i]; s += v; if (v > 0) k++; d = d (i > 1 ? "," : "") v }
		print d, s, k }')
}

# wk_spread_checks WHAT N BEFORE AFTER: the N connections of a batch were
# each counted once, by at least two workers
wk_spread_checks() {
	wk_delta "$3" "$4"
	echo "# $1: accepted per worker +$WD"
	chk_eq "$1: client connections counted in /status workers[].accepted" "$2" "$WD_SUM"
	chk_ge "$1: workers that accepted some (of 4; per worker: $WD)" 2 "$WD_SPREAD"
}

# wk_ngx_serials TAG: "COUNT SERIAL VERIFY" for each serial nginx logged for
# requests tagged TAG
wk_ngx_serials() {
	grep -- "uri=[^ ]*t=$1-" "$NG_DIR/access.log" |
		sed -n 's/.* serial=\([^ ]*\) verify=\([^ ]*\) .*/\1 \2/p' | sort | uniq -c |
		awk '{ printf "%s%s %s %s", sep, $1, $2, $3; sep = "; " }'
}
_wk_ngx_logged() { [ "$(grep -c -- "uri=[^ ]*t=$1-" "$NG_DIR/access.log")" -ge "$2" ]; }

# wk_threads PID: the names of PID's threads called mtlsd-w*, sorted
wk_threads() {
	cat /proc/"$1"/task/*/comm 2>/dev/null | grep '^mtlsd-w' | sort -V | tr '\n' ' ' | sed 's/ $//'
}

# wk_ready INST: the ready line
wk_ready() { grep -m1 'ready: generation 1' "$TMP/inst/$1/mtlsd.log"; }

# ================================================================ wk
wk_d=$TMP/inst/wk
WK_SOCK=$wk_d/wk.sock
mtlsd_write_config wk 'workers: 4
admin: {listen: "127.0.0.1:0"}'
mkdir -p "$wk_d/certs.d"
cp -a "$PKI/certs.d/client-pem" "$wk_d/certs.d/"
sed -i "s|^certs_dir: .*|certs_dir: certs.d|" "$wk_d/mtlsd.yaml"
mtlsd_mapping_file wk wk.yaml <<EOF
mappings:
$(mapping_yaml wk "https://localhost:$NG_PORT/" client-pem)
  - name: wksock
    url: https://localhost:$NG_PORT/sock/
    listen: {address: "unix:$WK_SOCK", mode: 0600}
    certificate: client-pem
    $trust
  - name: wklimited
    url: https://localhost:$NG_PORT/limited/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
    rate_limit: 1/m
    validate: false
EOF
mtlsd_start wk || return 0
WK_PID=$(mtlsd_pid wk)
P_WK=$(mtlsd_port wk wk)
P_WKLIM=$(mtlsd_port wk wklimited)
P_WKPROXY=$(mtlsd_proxy_port wk)

chk_match "ready line" 'ready: generation 1, 3 mappings, 4 workers \(upstream TLS offers [^ ]+ first\)' "$(wk_ready wk)"
_wk_threads3() { [ "$(wk_threads "$1")" = "mtlsd-w1 mtlsd-w2 mtlsd-w3" ]; }
wait_until 10 _wk_threads3 "$WK_PID"
chk_eq "threads named mtlsd-w* (/proc/PID/task/*/comm)" "mtlsd-w1 mtlsd-w2 mtlsd-w3" "$(wk_threads "$WK_PID")"
chk_eq "/status workers[].worker" "[0, 1, 2, 3]" "$(wk_json wk '[w["worker"] for w in d["workers"]]')"
chk_eq "/status workers[].connections at start" "0 0 0 0" "$(wk_conns wk)"
[ -n "$P_WK" ] || chk_fail "no 'listening on 127.0.0.1:PORT (mapping wk)' line"
[ -n "$P_WKPROXY" ] || chk_fail "no 'listening on 127.0.0.1:PORT (proxy)' line"
chk_match "unix listener logged" "listening on unix:$WK_SOCK \\(mapping wksock\\)" "$(grep 'listening on unix:' "$wk_d/mtlsd.log")"
t_done "workers 4: ready line says 4 workers, threads mtlsd-w1..w3, /status lists workers 0-3"

# --- 200 connections on the dedicated port (port 0: every worker serves
# the port the kernel gave the first one)
a0=$(wk_accepted wk)
s0=$(wk_json wk '[m for m in d["mappings"] if m["name"] == "wk"][0]["requests"]' \
	'[m for m in d["mappings"] if m["name"] == "wk"][0]["upstream_handshakes"]')
{ read -r req0; read -r hs0; } <<<"$s0"
wk_batch wkA "${P_WK:-1}" 200 8
a1=$(wk_accepted wk)
chk_eq "requests answered 200 with nginx's body" "200 of 200" "$WB_OK of $WB_REQ"
chk_eq "serials presented (X-Client-Serial)" "$SERIAL_PEM:200" "$WB_SERIALS"
[ -z "$WB_ERR" ] || chk_fail "first error: $WB_ERR"
wait_until 5 _wk_ngx_logged wkA 200
chk_eq "nginx: requests, client serial, verify" "200 $SERIAL_PEM SUCCESS" "$(wk_ngx_serials wkA)"
t_done "workers 4: 200 connections on a dedicated port: all 200, nginx verified our client certificate"

wk_spread_checks "dedicated port" 200 "$a0" "$a1"
_wk_idle() { [ "$(wk_conns wk)" = "0 0 0 0" ]; }
wait_until 10 _wk_idle || chk_fail "open client connections per worker after the batch: $(wk_conns wk)"
chk_eq "/status connections (total) after the batch" 0 "$(wk_json wk 'd["connections"]')"
t_done "workers 4: /status workers[].accepted counts each connection once; SO_REUSEPORT spread them"

# --- keep-alive to the upstream still works per worker
s1=$(wk_json wk '[m for m in d["mappings"] if m["name"] == "wk"][0]["requests"]' \
	'[m for m in d["mappings"] if m["name"] == "wk"][0]["upstream_handshakes"]')
{ read -r req1; read -r hs1; } <<<"$s1"
for v in req0 hs0 req1 hs1; do [[ "${!v}" =~ ^[0-9]+$ ]] || { chk_fail "/status mapping wk: $v is '${!v}'"; printf -v "$v" -- -1; }; done
chk_eq "mapping wk: requests counted" 200 "$((req1 - req0))"
# 8 clients at a time: a worker seldom needs more than 8 upstream
# connections (32 over 4 workers); without pooling there would be 200
chk_le "mapping wk: upstream handshakes for 200 requests (a quarter)" 50 "$((hs1 - hs0))"
chk_ge "mapping wk: upstream handshakes" 1 "$((hs1 - hs0))"
# pool_idle is the total over the workers' pools: every upstream connection
# mtlsd holds is idle now
_wk_pool_total() {
	WK_PI=$(wk_json wk 'sum(m["pool_idle"] for m in d["mappings"])')
	WK_UC=$(upstream_conns wk)
	[ "$WK_PI" = "$WK_UC" ]
}
wait_until 10 _wk_pool_total
chk_eq "sum of pool_idle vs ESTABLISHED connections to nginx" "$WK_UC" "$WK_PI"
chk_ge "idle pooled connections" 1 "$WK_PI"
t_done "workers 4: upstream connections are pooled and reused (handshakes ≪ requests), pool_idle totals every worker's pool"

# --- the proxy port and a unix socket
a0=$(wk_accepted wk)
wk_batch wkP "${P_WKPROXY:-1}" 40 4 --proxy "localhost:$NG_PORT"
a1=$(wk_accepted wk)
chk_eq "requests answered 200 with nginx's body" "40 of 40" "$WB_OK of $WB_REQ"
chk_eq "serials" "$SERIAL_PEM:40" "$WB_SERIALS"
[ -z "$WB_ERR" ] || chk_fail "first error: $WB_ERR"
wk_spread_checks "proxy port" 40 "$a0" "$a1"
t_done "workers 4: 40 connections on the proxy port: all 200, spread over the workers"

a0=$(wk_accepted wk)
wk_batch wkU "unix:$WK_SOCK" 40 4
a1=$(wk_accepted wk)
chk_eq "requests answered 200 with nginx's body" "40 of 40" "$WB_OK of $WB_REQ"
chk_eq "serials" "$SERIAL_PEM:40" "$WB_SERIALS"
[ -z "$WB_ERR" ] || chk_fail "first error: $WB_ERR"
wait_until 5 _wk_ngx_logged wkU 40
chk_match "URI at nginx (mapping wksock's prefix)" 'uri=/sock/\?t=wkU-' "$(grep -m1 't=wkU-' "$NG_DIR/access.log")"
# one socket shared by the workers: whichever is woken accepts; only the
# count is asserted
wk_delta "$a0" "$a1"
echo "# unix socket: accepted per worker +$WD"
chk_eq "unix socket: client connections counted in /status workers[].accepted" 40 "$WD_SUM"
t_done "workers 4: 40 connections on a unix-socket listener: all 200, each counted once"

# --- /metrics: one series per worker, totals agree with /status
req wk-metrics "http://127.0.0.1:$(mtlsd_admin_port wk)/metrics"
wkm=$R_B
wk_json wk '" ".join(str(w["accepted"]) for w in sorted(d["workers"], key=lambda w: w["worker"]))' \
	'sum(w["connections"] for w in d["workers"])' 'd["connections"]' >"$WK/st.txt"
for f in mtlsd_worker_connections mtlsd_worker_accepted_total; do
	grep -q "^# HELP $f " "$wkm" || chk_fail "no HELP line for $f"
done
grep -q '^# TYPE mtlsd_worker_connections gauge$' "$wkm" || chk_fail "mtlsd_worker_connections is not a gauge"
grep -q '^# TYPE mtlsd_worker_accepted_total counter$' "$wkm" || chk_fail "mtlsd_worker_accepted_total is not a counter"
chk_eq "mtlsd_worker_accepted_total series" \
	'mtlsd_worker_accepted_total{worker="0"} mtlsd_worker_accepted_total{worker="1"} mtlsd_worker_accepted_total{worker="2"} mtlsd_worker_accepted_total{worker="3"}' \
	"$(grep -o '^mtlsd_worker_accepted_total{[^}]*}' "$wkm" | sort | tr '\n' ' ' | sed 's/ $//')"
chk_eq "mtlsd_worker_connections series" 4 "$(grep -c '^mtlsd_worker_connections{worker="[0-3]"} [0-9]' "$wkm")"
chk_eq "accepted per worker: /metrics vs /status" "$(sed -n 1p "$WK/st.txt")" \
	"$(for i in 0 1 2 3; do adm=$(awk -v s="mtlsd_worker_accepted_total{worker=\"$i\"}" 'index($0, s " ") == 1 { print substr($0, length(s) + 2) }' "$wkm"); printf '%s ' "$adm"; done | sed 's/ $//')"
chk_eq "sum of accepted" $((200 + 40 + 40)) \
	"$(awk '/^mtlsd_worker_accepted_total\{/ { s += $2 } END { print s + 0 }' "$wkm")"
chk_eq "mtlsd_connections = sum of mtlsd_worker_connections" \
	"$(awk '/^mtlsd_connections / { print $2 }' "$wkm")" \
	"$(awk '/^mtlsd_worker_connections\{/ { s += $2 } END { print s + 0 }' "$wkm")"
chk_eq "/status connections = sum of workers[].connections" "$(sed -n 3p "$WK/st.txt")" "$(sed -n 2p "$WK/st.txt")"
t_done "workers 4: /metrics has mtlsd_worker_connections and mtlsd_worker_accepted_total per worker, totals agree"

# --- rate_limit is one bucket per mapping, shared by the workers. A rate
# of 1/m has a burst of 1 (one second's worth, at least one) and refills one
# token a minute: of 20 requests on 20 connections, spread over the workers,
# exactly one passes (one more per whole minute the batch took). With a
# bucket per worker, every worker that got a connection would pass one.
a0=$(wk_accepted wk)
wk_batch wkR "${P_WKLIM:-1}" 20 1 --expect 429
a1=$(wk_accepted wk)
n200=$(awk '$2 == 200' "$WK/wkR.lines" | wc -l)
n429=$(awk '$2 == 429' "$WK/wkR.lines" | wc -l)
refill=$(awk -v e="${WB_ELAPSED:-0}" 'BEGIN { print int(e / 60) }')
chk_ge "200s (the burst of 1)" 1 "$n200"
chk_le "200s (burst 1 + $refill refilled)" $((1 + refill)) "$n200"
chk_eq "200s + 429s" 20 "$((n200 + n429))"
chk_eq "429s without X-Mtlsd-Error: rate_limited" 0 "$(awk '$2 == 429 && $4 != "rate_limited"' "$WK/wkR.lines" | wc -l)"
chk_eq "429s without a Retry-After in seconds" 0 "$(awk '$2 == 429 && $5 !~ /^[1-9][0-9]*$/' "$WK/wkR.lines" | wc -l)"
wk_spread_checks "rate limited port" 20 "$a0" "$a1"
t_done "workers 4: rate_limit 1/m is shared: 20 connections over several workers → one 200, 19 × 429 rate_limited"

# --- reloads under load: a loop of requests over several connections while
# a mapping is added (SIGHUP) and the admin endpoint asks for three reloads
wk_loop_start wkL1 "${P_WK:-1}"
wait_until 30 _wk_loop_beyond wkL1 30 || chk_fail "the loop client completed $(wk_loop_count wkL1) requests in 30 s"
off=$(mtlsd_log_offset wk)
mtlsd_mapping_file wk wknew.yaml <<EOF
mappings:
$(mapping_yaml wknew "https://localhost:$NG_PORT/new/" client-pem)
EOF
kill -HUP "$WK_PID"
_wk_new_listening() { _log_has_since wk "$off" 'listening on 127\.0\.0\.1:[0-9]+ \(mapping wknew\)'; }
mtlsd_wait_log wk "$off" 'reload: generation [0-9]+ applied' 15 ||
	chk_fail "no 'reload: generation N applied' within 15 s"
wait_until 5 _wk_new_listening || chk_fail "no 'listening on ... (mapping wknew)' after the reload"
P_WKNEW=$(mtlsd_port wk wknew)
req wknew-1 "http://127.0.0.1:${P_WKNEW:-1}/x?t=wknew-1"
chk_eq "new mapping during the load: status" 200 "$R_STATUS"
chk_eq "new mapping: URI at nginx" "/new/x?t=wknew-1" "$(ngx_field "$(ngx_log 't=wknew-1')" uri)"
adm_url=http://127.0.0.1:$(mtlsd_admin_port wk)
for i in 1 2 3; do
	n=$(wk_loop_count wkL1)
	off=$(mtlsd_log_offset wk)
	req "wk-reload-$i" -X POST "$adm_url/reload"
	chk_eq "POST /reload $i" 202 "$R_STATUS"
	mtlsd_wait_log wk "$off" 'reload: generation [0-9]+ applied' 15 ||
		chk_fail "no 'reload: generation N applied' after POST /reload $i"
	wait_until 30 _wk_loop_beyond wkL1 $((n + 10)) || chk_fail "the loop made no progress after reload $i"
done
wk_loop_stop wkL1
chk_eq "loop requests that failed" 0 "${WB_FAILED:-?}"
chk_eq "loop requests answered 200 (ok of all)" "$WB_REQ" "$WB_OK"
[ -z "$WB_ERR" ] || chk_fail "first error: $WB_ERR"
chk_ge "loop requests" 70 "$WB_REQ"
echo "# reload loop: $WB_REQ requests, $WB_RECONNECTS reconnects, statuses $WB_STATUSES"
t_done "workers 4: SIGHUP and 3 × POST /reload under a 4-connection load: no request fails; the new mapping is served"

a0=$(wk_accepted wk)
wk_batch wkN "${P_WKNEW:-1}" 40 4 --path /y
a1=$(wk_accepted wk)
chk_eq "requests answered 200 with nginx's body" "40 of 40" "$WB_OK of $WB_REQ"
[ -z "$WB_ERR" ] || chk_fail "first error: $WB_ERR"
wk_spread_checks "port of the mapping the reload added" 40 "$a0" "$a1"
t_done "workers 4: a listener a reload adds (port 0) is served by several workers"

# --- certificate swap under load: a newer client-pem is dropped into certs.d
wk_loop_start wkL2 "${P_WK:-1}"
wait_until 30 _wk_loop_beyond wkL2 20 || chk_fail "the loop client completed $(wk_loop_count wkL2) requests in 30 s"
WK_NEW_SERIAL=$(client_cert_drop "$WK/rot" "$wk_d/certs.d/client-pem" client-pem-workers)
_wk_loop_new_serial() { grep -q " 200 $WK_NEW_SERIAL " "$WK/wkL2.lines"; }
wait_until 20 _wk_loop_new_serial ||
	chk_fail "no request of the loop presented serial $WK_NEW_SERIAL within 20 s of the drop"
n=$(wk_loop_count wkL2)
wait_until 30 _wk_loop_beyond wkL2 $((n + 20)) || chk_fail "the loop made no progress after the swap"
wk_loop_stop wkL2
chk_eq "loop requests that failed" 0 "${WB_FAILED:-?}"
chk_eq "loop requests answered 200 (ok of all)" "$WB_REQ" "$WB_OK"
[ -z "$WB_ERR" ] || chk_fail "first error: $WB_ERR"
chk_match "serials the loop saw" "^$SERIAL_PEM:[0-9]+,$WK_NEW_SERIAL:[0-9]+\$|^$WK_NEW_SERIAL:[0-9]+,$SERIAL_PEM:[0-9]+\$" "$WB_SERIALS"
t_done "workers 4: a certificate swap under a 4-connection load: no request fails, traffic moves to the new serial"

# every worker's pool had connections that presented the old certificate
# (the batches above): a fresh batch spread over the workers presents only
# the new one (a worker switches within a poll or two of the first)
_wk_all_new() {
	wk_batch wkS "${P_WK:-1}" 20 4
	[ "$WB_SERIALS" = "$WK_NEW_SERIAL:20" ]
}
wait_until 10 _wk_all_new || chk_fail "a batch of 20 still saw serials $WB_SERIALS 10 s after the switch"
a0=$(wk_accepted wk)
wk_batch wkT "${P_WK:-1}" 80 8
a1=$(wk_accepted wk)
chk_eq "requests answered 200 with nginx's body" "80 of 80" "$WB_OK of $WB_REQ"
chk_eq "serials presented" "$WK_NEW_SERIAL:80" "$WB_SERIALS"
wait_until 5 _wk_ngx_logged wkT 80
chk_eq "nginx: requests, client serial, verify" "80 $WK_NEW_SERIAL SUCCESS" "$(wk_ngx_serials wkT)"
wk_spread_checks "after the swap" 80 "$a0" "$a1"
t_done "workers 4: after the swap every worker presents the new certificate (80 connections, nginx's log)"

# --- workers needs a restart: a reload that changes it keeps 4 and says so
off=$(mtlsd_log_offset wk)
sed 's/^workers: 4$/workers: 2/' "$wk_d/mtlsd.yaml" >"$wk_d/.mtlsd.yaml.tmp"
grep -q '^workers: 2$' "$wk_d/.mtlsd.yaml.tmp" || chk_fail "test setup: no 'workers: 4' line to change"
mv "$wk_d/.mtlsd.yaml.tmp" "$wk_d/mtlsd.yaml"
kill -HUP "$WK_PID"
mtlsd_wait_log wk "$off" 'reload: generation [0-9]+ applied|reload failed' 15 ||
	chk_fail "no reload result within 15 s"
_wk_workers_warned() { _log_has_since wk "$off" 'workers.*restart|restart.*workers'; }
wait_until 5 _wk_workers_warned
chk_match "warning about workers" 'workers.*restart|restart.*workers' \
	"$(mtlsd_log_since wk "$off" | grep -E 'workers.*restart|restart.*workers' | head -n 1)"
chk_nomatch "reload result" 'reload failed' "$(mtlsd_log_since wk "$off")"
chk_eq "/status workers[].worker" "[0, 1, 2, 3]" "$(wk_json wk '[w["worker"] for w in d["workers"]]')"
chk_eq "threads" "mtlsd-w1 mtlsd-w2 mtlsd-w3" "$(wk_threads "$WK_PID")"
a0=$(wk_accepted wk)
wk_batch wkW "${P_WK:-1}" 40 4
a1=$(wk_accepted wk)
chk_eq "requests answered 200 with nginx's body" "40 of 40" "$WB_OK of $WB_REQ"
wk_delta "$a0" "$a1"
chk_eq "client connections counted" 40 "$WD_SUM"
t_done "workers 4: a reload that sets workers: 2 keeps 4 workers, with a warning that it needs a restart"

mtlsd_stop wk

# ================================================================ wkmax
# max_connections counts over all workers: 12 idle connections spread over
# the workers, then every further connection gets 503 overloaded, whatever
# worker it lands on (with a count per worker none would be full)
mtlsd_write_config wkmax 'workers: 4
limits: {max_connections: 12}
timeouts: {client_header: 60s}
admin: {listen: "127.0.0.1:0"}'
mtlsd_mapping_file wkmax wkmax.yaml <<EOF
mappings:
$(mapping_yaml wkmax "https://localhost:$NG_PORT/" client-pem)
EOF
if mtlsd_start wkmax; then
	P_M=$(mtlsd_port wkmax wkmax)
	rm -f "$WK/hold.ready" "$WK/hold.release"
	$NETTOOL hold 127.0.0.1 "${P_M:-1}" 12 "$WK/hold.ready" "$WK/hold.release" >"$WK/hold.out" 2>&1 &
	holder=$!
	_wk_held() { [ -f "$WK/hold.ready" ] || { kill -0 "$holder" 2>/dev/null || return 99; return 1; }; }
	_wk_max_open() { [ "$(wk_json wkmax 'd["connections"]')" = "${1:-12}" ]; }
	wait_until 20 _wk_held || chk_fail "could not open 12 connections: $(tail -n 2 "$WK/hold.out")"
	wait_until 10 _wk_max_open 12 || chk_fail "/status connections is $(wk_json wkmax 'd["connections"]'), not 12"
	held=$(wk_conns wkmax)
	echo "# max_connections: held connections per worker: $held"
	chk_ge "workers holding some of the 12" 2 "$(tr ' ' '\n' <<<"$held" | awk '$1 > 0' | wc -l)"
	for i in 1 2 3 4 5 6 7 8; do
		RAW_EOF=1 raw "${P_M:-1}" 10 < <(printf 'GET /?t=wkmax-over-%s HTTP/1.1\r\nHost: localhost\r\n\r\n' "$i")
		chk_eq "connection 12+$i: status" 503 "$RAW_STATUS"
		chk_eq "connection 12+$i: X-Mtlsd-Error" overloaded "$(raw_hdr X-Mtlsd-Error)"
	done
	wait_until 10 _wk_max_open 12 || chk_fail "/status connections is $(wk_json wkmax 'd["connections"]') after the refusals, not 12"
	touch "$WK/hold.release"
	wait "$holder"
	chk_eq "held connections kept until released" "closed-by-peer 0" "$(tail -n 1 "$WK/hold.out")"
	wait_until 10 _wk_max_open 0 || chk_fail "/status connections is $(wk_json wkmax 'd["connections"]') after the release, not 0"
	req wkmax-after "http://127.0.0.1:${P_M:-1}/?t=wkmax-after"
	chk_eq "after they closed: status" 200 "$R_STATUS"
	chk_eq "requests nginx saw from the refused ones" 0 "$(grep -c 'uri=[^ ]*t=wkmax-over' "$NG_DIR/access.log")"
	t_done "workers 4: max_connections 12 counts all workers: 8 more connections each get 503 overloaded"
	mtlsd_stop wkmax
fi

# ================================================================ wkdrain
# SIGTERM with requests in flight on several workers: 12 uploads the test
# holds half-sent (in flight for as long as the test wants: the drain cannot
# end before the test has looked at the listeners) and 8 slow GETs (nginx
# answers after 3 s)
mtlsd_write_config wkdrain 'workers: 4
admin: {listen: "127.0.0.1:0"}'
mtlsd_mapping_file wkdrain wkdrain.yaml <<EOF
mappings:
$(mapping_yaml wkdrain "https://localhost:$NG_PORT/" client-pem "validate: false")
EOF
if mtlsd_start wkdrain; then
	D_PID=$(mtlsd_pid wkdrain)
	P_D=$(mtlsd_port wkdrain wkdrain)
	P_DPROXY=$(mtlsd_proxy_port wkdrain)
	rm -f "$WK/up.ready" "$WK/up.release"
	timeout 300 python3 "$WK/load.py" upload --target "${P_D:-1}" --n 12 --tag wkd-up \
		--ready "$WK/up.ready" --release "$WK/up.release" >"$WK/up.out" 2>&1 &
	uploader=$!
	slow=()
	for i in 1 2 3 4 5 6 7 8; do
		REQ_TIMEOUT=60 req "wkd-slow-$i" "http://127.0.0.1:${P_D:-1}/slow?t=wkd-slow-$i" &
		slow+=($!)
	done
	# forwarded: each request has had its own upstream connection (validate:
	# false, so this instance made none before; a finished one stays pooled)
	_wk_inflight() { [ "$(upstream_conns wkdrain)" -ge 20 ]; }
	wait_until 30 _wk_inflight || chk_fail "only $(upstream_conns wkdrain) upstream connections for 20 requests"
	busy=$(wk_conns wkdrain)
	echo "# drain: client connections per worker at SIGTERM: $busy"
	chk_ge "client connections at SIGTERM" 12 "$(wk_json wkdrain 'd["connections"]')"
	chk_ge "workers with requests in flight" 2 "$(tr ' ' '\n' <<<"$busy" | awk '$1 > 0' | wc -l)"
	off=$(mtlsd_log_offset wkdrain)
	mtlsd_term wkdrain
	mtlsd_wait_log wkdrain "$off" 'shutdown \(signal' 10 || chk_fail "no 'shutdown (signal' line"
	_wk_refusing() { ! $NETTOOL listening "${P_D:-1}" && ! $NETTOOL listening "${P_DPROXY:-1}"; }
	wait_until 10 _wk_refusing ||
		chk_fail "a port still accepts connections 10 s after SIGTERM (a worker kept its listener)"
	chk_eq "mtlsd still draining (the uploads are held)" yes "$(kill -0 "$D_PID" 2>/dev/null && echo yes)"
	t_done "workers 4: SIGTERM: no worker accepts new connections (dedicated and proxy port refuse)"

	touch "$WK/up.release"
	for p in "${slow[@]}"; do wait "$p"; done
	wait "$uploader"
	st=""
	for i in 1 2 3 4 5 6 7 8; do
		st+="$(cat "$TMP/r/wkd-slow-$i.s" 2>/dev/null || echo none):$(cat "$TMP/r/wkd-slow-$i.b" 2>/dev/null) "
	done
	chk_eq "slow requests: status:body" "$(printf '200:slow done %.0s' 1 2 3 4 5 6 7 8)" "$st"
	chk_eq "held uploads" "statuses 201:12" "$(grep '^statuses' "$WK/up.out")"
	chk_eq "uploaded bodies" "$(printf '0123456789 %.0s' $(seq 12))" \
		"$(for i in $(seq 12); do cat "$WWW/upload/wkd-up-$i.bin" 2>/dev/null || printf missing; printf ' '; done)"
	t_done "workers 4: requests in flight on several workers at SIGTERM all complete (8 × 200, 12 × 201)"

	# the drain is bounded by timeouts.upstream_response (30 s) + 2 s
	if wait_until $((WK_LIMIT + 10)) _not_running "$D_PID"; then
		wait "$D_PID" 2>/dev/null
		rc=$?
	else
		kill -KILL "$D_PID" 2>/dev/null
		wait "$D_PID" 2>/dev/null
		rc="still running $((WK_LIMIT + 10)) s after SIGTERM"
	fi
	rm -f "$TMP/inst/wkdrain/pid"
	chk_eq "exit status" 0 "$rc"
	chk_nomatch "log" 'still busy after the drain period' "$(mtlsd_log_since wkdrain "$off")"
	grep -Eq "$SAN_ERE" "$TMP/inst/wkdrain/mtlsd.log" &&
		chk_fail "sanitizer report: $(grep -Em1 "$SAN_ERE" "$TMP/inst/wkdrain/mtlsd.log")"
	t_done "workers 4: after the drain mtlsd exits 0, log free of sanitizer reports"
fi

# ================================================================ wk1
mtlsd_write_config wk1 'workers: 1
admin: {listen: "127.0.0.1:0"}'
mtlsd_mapping_file wk1 wk1.yaml <<EOF
mappings:
$(mapping_yaml wk1 "https://localhost:$NG_PORT/" client-pem)
EOF
if mtlsd_start wk1; then
	chk_match "ready line" 'ready: generation 1, 1 mappings?, 1 worker \(upstream TLS offers [^ ]+ first\)' "$(wk_ready wk1)"
	chk_eq "threads named mtlsd-w*" "" "$(wk_threads "$(mtlsd_pid wk1)")"
	a0=$(wk_accepted wk1)
	wk_batch wk1B "$(mtlsd_port wk1 wk1)" 10 2
	a1=$(wk_accepted wk1)
	chk_eq "requests answered 200 with nginx's body" "10 of 10" "$WB_OK of $WB_REQ"
	chk_eq "serials" "$SERIAL_PEM:10" "$WB_SERIALS"
	chk_eq "/status workers[].accepted (before → after)" "0 → 10" "$a0 → $a1"
	chk_eq "mtlsd_worker_accepted_total series" 'mtlsd_worker_accepted_total{worker="0"} 10' \
		"$(mtlsd_admin wk1 /metrics | grep '^mtlsd_worker_accepted_total{')"
	t_done "workers 1: ready line says 1 worker, no mtlsd-w* thread, one worker in /status and /metrics"
	mtlsd_stop wk1
fi
