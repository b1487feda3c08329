# shellcheck shell=bash
# Soak (issue 5, scope 6), count-based: SOAK_REQUESTS requests (default
# 200,000; 20,000 in sanitizer builds, which run several times slower)
# through one mapping over keep-alive connections from SOAK_CLIENTS (4)
# concurrent clients, while a new client certificate is dropped into the
# certificate's directory every second (rotation.activate: immediately) and
# SIGHUP reloads the daemon every 100 ms. Asserts what a user would see:
# every request got 200 and the upstream's body; the upstream saw more than
# one client serial (rotation happened under load); RSS grew by less than 5 %
# from the end of a warm-up (the same load for a tenth of the requests and
# until 16 certificates were adopted) to the end (not asserted under ASan);
# once the load stops the daemon holds as many descriptors as before it.
# No timing assertion: the run takes as long as it takes.

SOAK_N=${SOAK_REQUESTS:-200000}
[ "${IT_SANITIZER:-0}" = 1 ] && SOAK_N=${SOAK_REQUESTS:-20000}
SOAK_C=${SOAK_CLIENTS:-4}
SOAK_WARM=$((SOAK_N / 10))
SW=$TMP/soak-work
mkdir -p "$SW"
trust="trust: {ca_file: $PKI/trust/server-root.pem}"

# The load client: SOAK_C processes, each one keep-alive connection sending
# GET /?t=soak and reading the Content-Length response. A response that is
# not 200 with nginx's body, or a connection that fails mid-request, is a
# failed request. A connection the server closes after a response with
# "Connection: close", or between two requests before any byte of the next
# response (what RFC 9112 9.3.1 lets a client retry, and curl and browsers
# do), is reopened and counted as a reconnect. Prints one line:
# "requests N ok N failed N reconnects N serials S1,S2,..." and the first
# failures.
cat >"$SW/load.py" <<'PY'
import os, socket, sys

def worker(port, n, wfd, until):
    req = b"GET /?t=soak HTTP/1.1\r\nHost: localhost\r\n\r\n"
    ok = failed = reconnects = 0
    serials, errors = set(), []
    s, buf, fresh = None, b"", True

    def fail(why):
        nonlocal failed, s
        failed += 1
        if len(errors) < 5:
            errors.append(why)
        if s:
            s.close()
        s = None

    i = 0
    # n requests; with an until-file, on until it exists as well (checked
    # every 500 requests)
    while i < n or (until and (i % 500 or not os.path.exists(until))):
        if s is None:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
            except OSError as e:
                fail("connect: %s" % e)
                i += 1
                continue
            buf, fresh = b"", True
        try:
            s.sendall(req)
            while b"\r\n\r\n" not in buf:
                c = s.recv(65536)
                if not c:
                    raise EOFError
                buf += c
        except (EOFError, OSError) as e:
            if not buf and not fresh:  # closed while idle: reopen, resend
                reconnects += 1
                s.close()
                s = None
                continue
            fail("request %d: %r after %d bytes" % (i, e, len(buf)))
            i += 1
            continue
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        try:
            need = int(hdrs.get("content-length", "-1"))
            while need >= 0 and len(buf) < need:
                c = s.recv(65536)
                if not c:
                    raise EOFError
                buf += c
        except (EOFError, OSError, ValueError) as e:
            fail("request %d: body: %r" % (i, e))
            i += 1
            continue
        body, buf = buf[:need], buf[need:]
        i += 1
        fresh = False
        if lines[0].split(" ")[1:2] == ["200"] and body == b"hello from nginx\n":
            ok += 1
            serials.add(hdrs.get("x-client-serial", "?"))
        else:
            fail("request %d: %s %r" % (i, lines[0], body[:80]))
            continue
        if hdrs.get("connection", "").lower() == "close":
            reconnects += 1
            s.close()
            s = None
    os.write(wfd, ("%d %d %d %d %s %s\n" % (i, ok, failed, reconnects, ",".join(sorted(serials)),
                                          " | ".join(errors).replace("\n", " "))).encode())

def main():
    port, total, clients = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    until = sys.argv[4] if len(sys.argv) > 4 else None
    r, w = os.pipe()
    pids = []
    for k in range(clients):
        n = total // clients + (1 if k < total % clients else 0)
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                worker(port, n, w, until)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(w)
    out = b""
    while True:
        c = os.read(r, 65536)
        if not c:
            break
        out += c
    for p in pids:
        os.waitpid(p, 0)
    done = ok = failed = rec = 0
    serials, errors = set(), []
    lines = out.decode().splitlines()
    for l in lines:
        f = l.split(" ", 5)
        done += int(f[0]); ok += int(f[1]); failed += int(f[2]); rec += int(f[3])
        serials.update(x for x in f[4].split(",") if x)
        if len(f) > 5 and f[5]:
            errors.append(f[5])
    if len(lines) < clients:  # a client died: its requests count as failed
        failed += (clients - len(lines)) * (total // clients)
        errors.append("%d client(s) died" % (clients - len(lines)))
    print("requests %d ok %d failed %d reconnects %d serials %s" %
          (done, ok, failed, rec, ",".join(sorted(serials))))
    for e in errors[:5]:
        print("# failure: " + e)

main()
PY

# soak_cert N: a fresh client key + certificate N (client-root) moved into
# the certificate's directory (mv: whole files only); keeps the last three
# pairs (the current one among them) and removes older ones
soak_cert() {
	local n=$1 w=$SW/new
	mkdir -p "$w"
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$w/c$n.key" 2>/dev/null)
	openssl req -new -key "$w/c$n.key" -subj "/O=mtlsd test/CN=soak-$n" -out "$w/c$n.csr" 2>/dev/null
	openssl x509 -req -sha256 -days 30 -in "$w/c$n.csr" -CA "$PKI/ca/client-root.crt" \
		-CAkey "$PKI/ca/client-root.key" -set_serial "0x4$(openssl rand -hex 11)" \
		-extfile "$SW/ext" -out "$w/c$n.crt" 2>/dev/null || return 1
	mv "$w/c$n.key" "$SD/certs.d/soak/c$n.key"
	mv "$w/c$n.crt" "$SD/certs.d/soak/c$n.crt"
	rm -f "$w/c$n.csr" "$SD/certs.d/soak/c$((n - 3))."*
}

SD=$TMP/inst/soak
mtlsd_write_config soak "admin: {listen: \"127.0.0.1:0\"}
rotation: {activate: immediately}
pool: {idle_timeout: 1s}"
# the access log would be 200,000 lines: the counts come from the client
sed -i "s|^certs_dir: .*|certs_dir: certs.d|; s|access_log: true|access_log: false|" "$SD/mtlsd.yaml"
mkdir -p "$SD/certs.d/soak"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$SW/ext"
soak_cert 1 || chk_fail "could not make the first soak certificate"
mtlsd_mapping_file soak soak.yaml <<EOF
mappings:
  - name: soak
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: soak
    $trust
EOF
mtlsd_start soak || return 0
S_PID=$(mtlsd_pid soak)
S_PORT=$(mtlsd_port soak soak)
_s_no_upstream() { [ "$(upstream_conns soak)" = 0 ]; }

req soak-first "http://127.0.0.1:$S_PORT/?t=soak-first"
chk_eq "first request status" 200 "$R_STATUS"
# descriptor baseline: warmed up, its pooled connection gone (idle 1s)
wait_until 15 _s_no_upstream || chk_fail "pooled upstream connection not closed after idle_timeout"
S_FD0=$(proc_fds "$S_PID")
t_done "soak: instance up (rotation immediately, admin endpoint), baseline $S_FD0 descriptors"

# the churn: a certificate a second, SIGHUP every 100 ms, until $SW/stop
# (or the daemon or the temp dir is gone: an aborted run leaves no loop
# behind). The pauses pace the load; nothing waits on them.
rm -f "$SW/stop"
(
	n=1
	while [ ! -e "$SW/stop" ] && [ -d "$SW" ] && kill -0 "$S_PID" 2>/dev/null; do
		sleep 1
		n=$((n + 1))
		soak_cert "$n" && echo "$n" >"$SW/certs-dropped"
	done
) &
s_rot=$!
(
	h=0
	while [ ! -e "$SW/stop" ] && kill -HUP "$S_PID" 2>/dev/null; do
		h=$((h + 1))
		echo "$h" >"$SW/hups"
		sleep 0.1
	done
) &
s_hup=$!

# warm-up: the same load for at least a tenth of the requests and until 16
# new certificates have been validated and adopted (each brings new
# upstream handshakes: wolfSSL's fixed-point ECC cache, ~12 MiB when full,
# is full by then; see leak_mark in lib.sh)
_s_adopted() { [ "$(grep -c 'new certificate serial [0-9A-F]* validated' "$SD/mtlsd.log")" -ge 16 ]; }
python3 "$SW/load.py" "$S_PORT" "$SOAK_WARM" "$SOAK_C" "$SW/warm-done" >"$SW/warm.out" 2>&1 &
s_warm=$!
wait_until 600 _s_adopted || chk_fail "fewer than 16 certificates adopted after 600 s"
touch "$SW/warm-done"
wait "$s_warm"
S_RSS0=$(proc_rss_kb "$S_PID")
python3 "$SW/load.py" "$S_PORT" "$SOAK_N" "$SOAK_C" >"$SW/soak.out" 2>&1
S_RSS1=$(proc_rss_kb "$S_PID")
touch "$SW/stop"
wait "$s_rot" "$s_hup"

# the summaries, with the serial lists shortened to their length
shorten() { awk '{ for (i = 1; i < NF; i++) if ($i == "serials") $(i + 1) = "(" split($(i + 1), a, ",") ")"; print }'; }
shorten <"$SW/warm.out" | sed -n 's/^/# warm-up: /p' | head -n 6
shorten <"$SW/soak.out" | sed -n 's/^/# soak: /p' | head -n 6
w_line=$(grep '^requests' "$SW/warm.out")
s_line=$(grep '^requests' "$SW/soak.out")
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$2"; }
w_n=$(field requests "$w_line")
chk_eq "warm-up requests that failed" 0 "$(field failed "$w_line")"
chk_ge "warm-up requests" "$SOAK_WARM" "$w_n"
chk_eq "warm-up requests answered 200 with nginx's body" "$w_n" "$(field ok "$w_line")"
chk_eq "soak requests that failed" 0 "$(field failed "$s_line")"
chk_eq "soak requests answered 200 with nginx's body" "$SOAK_N" "$(field ok "$s_line")"
t_done "soak: $((${w_n:-0} + SOAK_N)) keep-alive requests from $SOAK_C clients, none failed"

serials=$(field serials "$s_line")
n_serials=$(tr ',' '\n' <<<"$serials" | grep -c .)
chk_ge "client serials the upstream saw during the soak" 2 "$n_serials"
chk_ge "certificates dropped" 2 "$(cat "$SW/certs-dropped" 2>/dev/null)"
reloads=$(mtlsd_metric soak 'mtlsd_reloads_total{result="ok"}')
chk_ge "reloads applied (of $(cat "$SW/hups" 2>/dev/null) SIGHUPs; they coalesce)" 10 "${reloads:-0}"
chk_eq "reloads failed" 0 "$(mtlsd_metric soak 'mtlsd_reloads_total{result="failed"}')"
t_done "soak: $(cat "$SW/certs-dropped" 2>/dev/null) certificates dropped, $n_serials serials seen by the upstream, ${reloads:-0} reloads applied"

growth=$(awk -v a="$S_RSS0" -v b="$S_RSS1" 'BEGIN { printf "%.2f", (b - a) * 100 / a }')
echo "# soak: RSS $S_RSS0 kB after the warm-up, $S_RSS1 kB after $SOAK_N more requests: ${growth} %"
if [ "${IT_SANITIZER:-0}" = 1 ] || [ -n "${MTLSD_WRAPPER:-}" ]; then
	# ASan's quarantine holds freed memory (up to 256 MiB) and valgrind
	# has its own heap: RSS says nothing there; their leak checks apply
	echo "# soak: RSS growth not asserted under a sanitizer or wrapper"
else
	chk_le "RSS growth after the warm-up in %" 4.99 "$growth"
fi
wait_until 30 _s_no_upstream || chk_fail "pooled upstream connections not closed after idle_timeout"
_s_fds_back() { [ "$(proc_fds "$S_PID")" -le "$S_FD0" ]; }
wait_until 30 _s_fds_back
chk_eq "descriptors once the load stopped (baseline)" "$S_FD0" "$(proc_fds "$S_PID")"
t_done "soak: RSS grew ${growth} % (< 5 %) after the warm-up, descriptors back to the baseline"
mtlsd_stop soak
