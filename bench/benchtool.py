#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for bench/run.sh (stdlib only).

  benchtool.py freeport N                 N free loopback TCP ports
  benchtool.py listening PORT             exit 0 when 127.0.0.1:PORT accepts
  benchtool.py probe PORT [PATH]          one GET; prints "STATUS|SERIAL|TLS|BODY"
  benchtool.py pids PID                   PID and its child processes, one line
  benchtool.py measure OUT.jsonl KEY=VAL... --pids P,P -- WRK-ARGS...
                                          one wrk run: resets the contender's
                                          peak RSS, samples its CPU time around
                                          the run, appends one JSON line
  benchtool.py idle PORT N MODE --pids P,P [--settle S]
                                          open N idle client connections
                                          (MODE: open = TCP only, ka = after one
                                          keep-alive request each); print JSON
                                          with the RSS delta per connection
  benchtool.py seq PORT N [--pause-after W --pause-file F]
                                          N sequential keep-alive GETs on one
                                          connection (the callgrind client)
  benchtool.py certdrop PORT DIR CA-CRT CA-KEY DROPS
                                          time from a certificate file rename
                                          into certs.d/NAME to the first
                                          response showing its serial; JSON
  benchtool.py report RESULTS-DIR         the tables (stdout)
"""
import json
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------ small helpers

def freeport(n):
    socks = []
    for _ in range(int(n)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def listening(port):
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=1)
        s.close()
        return 0
    except OSError:
        return 1


def _pids(spec):
    """Comma-separated PIDs, each expanded with its child processes (nginx
    master -> workers): the contender's whole process tree."""
    out = []
    pending = [int(p) for p in spec.split(",") if p.strip()]
    # parent -> children from /proc/*/stat (/proc/PID/task/TID/children needs
    # CONFIG_PROC_CHILDREN, which not every kernel has)
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError):
            pass
    while pending:
        p = pending.pop()
        if p in out:
            continue
        out.append(p)
        pending.extend(kids.get(p, []))
    return out


def cpu_ticks(pids):
    """utime+stime of every process (all threads; dead threads included)."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def sleeps(pids):
    """Voluntary context switches of every thread: how often the process
    blocked (mostly in epoll_wait) and needed waking up again."""
    total = 0
    for p in pids:
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tids:
            try:
                with open("/proc/%d/task/%s/status" % (p, t)) as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
            except OSError:
                pass
    return total


def status_kb(pids, key):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_busy_ticks():
    """Busy jiffies of the whole machine (all CPUs) from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return sum(v[:3]) + sum(v[5:8]), v[7] if len(v) > 7 else 0


def reset_hwm(pids):
    for p in pids:
        try:
            with open("/proc/%d/clear_refs" % p, "w") as f:
                f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        except OSError:
            pass


# ------------------------------------------------------------------- HTTP

class Conn:
    """A minimal keep-alive HTTP/1.1 client on a raw socket (http.client's
    per-request overhead would dominate the cheap loopback requests)."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def get(self, path="/", headers=""):
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (path, self.port, headers)).encode()
        self.s.sendall(req)
        return self.read_response()

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by peer")
        self.buf += chunk

    def read_response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n")
        head = self.buf[:end].decode("latin-1")
        self.buf = self.buf[end + 4:]
        lines = head.split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                i = self.buf.index(b"\r\n")
                size = int(self.buf[:i].split(b";")[0], 16)
                self.buf = self.buf[i + 2:]
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            body = b""
            if status not in (204, 304):
                try:
                    while True:
                        self._fill()
                except ConnectionError:
                    pass
                body, self.buf = self.buf, b""
        return status, hdrs, body

    def close(self):
        self.s.close()


def probe(port, path="/"):
    try:
        c = Conn(int(port), timeout=10)
        st, h, body = c.get(path, "Connection: close\r\n")
        c.close()
        b = body.decode("latin-1").strip().replace("\n", " ")[:80]
        print("%d|%s|%s|%s" % (st, h.get("x-client-serial", ""), h.get("x-tls", ""), b))
    except (OSError, ValueError, IndexError) as e:
        print("000|||%s" % str(e).replace("|", "/"))


# ------------------------------------------------------------- wrk runs

def measure(out, kv, pidspec, auxspec, wrk_args):
    meta = dict(a.split("=", 1) for a in kv)
    pids = _pids(pidspec)
    aux = _pids(auxspec) if auxspec else []
    reset_hwm(pids)
    rss0 = status_kb(pids, "VmRSS")
    c0 = cpu_ticks(pids)
    s0 = sleeps(pids)
    a0 = cpu_ticks(aux)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b0, st0 = cpu_busy_ticks()
    t0 = time.monotonic()
    p = subprocess.run(wrk_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t1 = time.monotonic()
    b1, st1 = cpu_busy_ticks()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pids = _pids(pidspec)
    c1 = cpu_ticks(pids)
    s1 = sleeps(pids)
    a1 = cpu_ticks(aux)
    hwm = status_kb(pids, "VmHWM")
    # the load side (upstream nginx + wrk), all pinned to one CPU
    load_s = (a1 - a0) / CLK_TCK + (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    rec = dict(meta)
    rec["wall_s"] = round(t1 - t0, 3)
    line = [l for l in p.stdout.splitlines() if l.startswith("WRKJSON ")]
    if p.returncode != 0 or not line:
        rec["error"] = "wrk failed (rc %d): %s" % (p.returncode, p.stdout.strip()[-300:])
    else:
        w = json.loads(line[-1][8:])
        dur = w["duration_us"] / 1e6
        n = w["requests"]
        errs = w["connect"] + w["read"] + w["write"] + w["timeout"] + w["status"]
        cpu_s = (c1 - c0) / CLK_TCK
        rec.update({
            "requests": n,
            "rps": n / dur if dur > 0 else 0,
            # both directions: response bytes wrk read + request bodies sent
            "mbps": (w["bytes"] + n * int(meta.get("req_bytes", 0))) / dur / 1e6 if dur > 0 else 0,
            "p50_ms": w["p50"] / 1000.0,
            "p99_ms": w["p99"] / 1000.0,
            "max_ms": w["max"] / 1000.0,
            "errors": errs,
            "err_detail": "connect %d read %d write %d timeout %d status %d" % (
                w["connect"], w["read"], w["write"], w["timeout"], w["status"]),
            "cpu_us_per_req": cpu_s * 1e6 / n if n else None,
            "cpu_util": cpu_s / dur if dur > 0 else None,
            "load_util": load_s / (t1 - t0) if t1 > t0 else None,
            # the load side's CPU per request, and how often the contender
            # went to sleep: each sleep makes the next packet sent to it
            # pay for a cross-CPU wake-up on the load side's CPU
            "load_us_per_req": load_s * 1e6 / n if n else None,
            "sleeps_per_req": (s1 - s0) / n if n else None,
            # CPU used by anything else on the machine during the run (other
            # people's processes; the benchmark's own python), in CPUs
            "other_util": max(0.0, (b1 - b0) / CLK_TCK - cpu_s - load_s) / (t1 - t0) if t1 > t0 else None,
            "steal_util": (st1 - st0) / CLK_TCK / (t1 - t0) if t1 > t0 else None,
            "hwm_kb": hwm,
            "rss0_kb": rss0,
        })
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    if "error" in rec:
        print("  %-16s %-12s rep %s: %s" % (meta.get("contender"), meta.get("workload"), meta.get("rep"), rec["error"]))
    else:
        print("  %-16s %-12s rep %s: %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  CPU %6.1f us/req (%3.0f%%, load side %3.0f%%, others %3.0f%%)  HWM %6.1f MiB%s" % (
            meta.get("contender"), meta.get("workload"), meta.get("rep"), rec["rps"], rec["p50_ms"],
            rec["p99_ms"], rec["cpu_us_per_req"] or 0, 100 * (rec["cpu_util"] or 0),
            100 * (rec["load_util"] or 0), 100 * (rec["other_util"] or 0), hwm / 1024.0,
            ("  ERRORS %d (%s)" % (errs, rec["err_detail"])) if errs else ""))
    sys.stdout.flush()


# ----------------------------------------------------- idle connections

def _raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 256) if hard != resource.RLIM_INFINITY else n + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def idle(port, n, mode, pidspec, settle):
    port, n = int(port), int(n)
    lim = _raise_nofile(n)
    res = {"n": n, "mode": mode}
    if lim < n + 64:
        res["error"] = "RLIMIT_NOFILE %d too low for %d connections" % (lim, n)
        print(json.dumps(res))
        return
    pids = _pids(pidspec)
    # a first connection + request so that lazily created state (the upstream
    # pool, TLS session) exists before the baseline
    c = Conn(port)
    c.get("/")
    time.sleep(settle)
    base = status_kb(pids, "VmRSS")
    conns = []
    t0 = time.monotonic()
    try:
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            conns.append(s)
        if mode == "ka":
            # one request per connection, strictly one at a time (no upstream
            # burst: the pool keeps a single upstream connection busy)
            for s in conns:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                buf = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed before the response")
                    buf += chunk
                    e = buf.find(b"\r\n\r\n")
                    if e >= 0:
                        head = buf[:e].lower()
                        i = head.find(b"content-length:")
                        if i < 0:
                            break
                        cl = int(head[i + 15:].split(b"\r\n")[0])
                        if len(buf) - e - 4 >= cl:
                            break
    except OSError as e:
        res["error"] = "after %d connections: %s" % (len(conns), e)
    t1 = time.monotonic()
    time.sleep(settle)
    pids = _pids(pidspec)
    after = status_kb(pids, "VmRSS")
    # are they all still open? (a peer that closed idle connections would
    # make the delta meaningless)
    alive = 0
    poller = select.poll()  # select() cannot watch descriptors above 1023
    for s in conns:
        poller.register(s, select.POLLIN)
    readable = {fd for fd, _ in poller.poll(0)}
    for s in conns:
        if s.fileno() not in readable:
            alive += 1          # nothing to read: open and idle
            continue
        try:                    # readable: data (alive) or EOF (closed)
            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    res.update({"opened": len(conns), "alive": alive, "rss_before_kb": base, "rss_after_kb": after,
                "bytes_per_conn": (after - base) * 1024.0 / max(1, len(conns)),
                "open_s": round(t1 - t0, 2)})
    for s in conns:
        s.close()
    c.close()
    print(json.dumps(res))


# ------------------------------------------------------------ callgrind client

def seq(port, n, pause_after=0, pause_file=None, close=False):
    """N sequential GETs on one keep-alive connection (with close: a new
    connection and "Connection: close" per request). With --pause-after W:
    do W requests, create PAUSE_FILE.ready, wait until PAUSE_FILE.go exists,
    then do the N (so the caller can zero the counters in between); then
    create PAUSE_FILE.done and wait for PAUSE_FILE.end."""
    port, n = int(port), int(n)
    c = None if close else Conn(port, timeout=120)
    bad = 0

    def one():
        if not close:
            return c.get("/")[0]
        k = Conn(port, timeout=120)
        st = k.get("/", "Connection: close\r\n")[0]
        k.close()
        return st

    if pause_after:
        for _ in range(int(pause_after)):
            bad += one() != 200
        open(pause_file + ".ready", "w").close()
        while not os.path.exists(pause_file + ".go"):
            time.sleep(0.05)
    t0 = time.monotonic()
    for _ in range(n):
        bad += one() != 200
    t1 = time.monotonic()
    if pause_file:
        open(pause_file + ".done", "w").close()
        deadline = time.monotonic() + 300
        while not os.path.exists(pause_file + ".end") and time.monotonic() < deadline:
            time.sleep(0.05)
    if c:
        c.close()
    print(json.dumps({"requests": n, "non200": bad, "seconds": round(t1 - t0, 2)}))


def cgresult(contender, requests, dump, annotate_out, mode="ka"):
    """One JSON line: Ir per request and the top functions by self cost.
    Functions that were on the stack when the counters were zeroed (main,
    the event loop) show their whole inclusive cost as self cost in
    callgrind_annotate; they are left out of the top list."""
    requests = int(requests)
    total = None
    with open(dump) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
                break
    res = {"kind": "callgrind", "contender": contender, "requests": requests, "mode": mode}
    if not total:
        res["error"] = "no totals in " + dump
        print(json.dumps(res))
        return
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", dump],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    with open(annotate_out, "w") as f:
        f.write(ann)
    top = []
    seen_header = False
    for line in ann.splitlines():
        if "file:function" in line:
            seen_header = True
            continue
        if not seen_header:
            continue
        if line.startswith("-- ") or line.startswith("--------") and top:
            if top:
                break
            continue
        parts = line.strip().split(None, 2)
        if len(parts) < 3 or not parts[0].replace(",", "").isdigit():
            continue
        ir = int(parts[0].replace(",", ""))
        if ir >= 0.99 * total:
            continue
        name = parts[2]
        # "file:function [object]" -> "function (object basename)"
        obj = ""
        if name.endswith("]") and " [" in name:
            name, obj = name[:-1].rsplit(" [", 1)
            obj = os.path.basename(obj)
        fn = name.rsplit(":", 1)[-1] if ":" in name else name
        top.append([round(100.0 * ir / total, 2), "%s (%s)" % (fn, obj) if obj else fn])
        if len(top) >= 15:
            break
    res.update({"ir": total, "ir_per_req": round(total / requests), "top": top})
    print(json.dumps(res))


# ------------------------------------------------------------- cert drop

def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def certdrop(port, certdir, ca_crt, ca_key, drops, timeout=10.0):
    port, drops = int(port), int(drops)
    res = {"drops": drops, "ms": [], "errors": []}
    work = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(certdir)), prefix=".drop-")
    ext = os.path.join(work, "ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    c = Conn(port)
    st, h, _ = c.get("/")
    last_nb = int(time.time())
    for i in range(drops):
        # a newer not-before than every certificate so far (second precision):
        # mtlsd makes the newest valid pair current
        while int(time.time()) <= last_nb:
            time.sleep(0.02)
        key, csr, crt = (os.path.join(work, "d%d.%s" % (i, x)) for x in ("key", "csr", "crt"))
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        _openssl("req", "-new", "-key", key, "-subj", "/O=mtlsd bench/CN=drop-%d" % i, "-out", csr)
        serial = os.urandom(12).hex().upper()
        if serial[0] in "89ABCDEF":
            serial = "1" + serial[1:]
        _openssl("x509", "-req", "-sha256", "-days", "30", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                 "-set_serial", "0x" + serial, "-extfile", ext, "-out", crt)
        last_nb = int(time.time())
        pem = os.path.join(work, "drop-%d.pem" % i)
        with open(pem, "wb") as f:
            f.write(open(crt, "rb").read() + open(key, "rb").read())
        os.chmod(pem, 0o600)
        want = serial.lstrip("0")
        time.sleep(0.3)  # let the previous reload (if any) settle
        t0 = time.monotonic()
        os.rename(pem, os.path.join(certdir, "drop-%d.pem" % i))
        seen = None
        polls = 0
        while time.monotonic() - t0 < timeout:
            try:
                st, h, _ = c.get("/")
            except OSError:
                c.close()
                c = Conn(port)
                continue
            polls += 1
            if h.get("x-client-serial", "").lstrip("0") == want:
                seen = time.monotonic()
                break
            time.sleep(0.002)
        if seen is None:
            res["errors"].append("drop %d: serial %s not seen within %.0fs (last %s %s)" % (
                i, serial, timeout, st, h.get("x-client-serial")))
        else:
            res["ms"].append(round((seen - t0) * 1000.0, 1))
    c.close()
    print(json.dumps(res))


# ----------------------------------------------------------------- report

def load_side_table(p, by, contenders):
    """Per workload and contender: what one request cost the load side, and
    how often the contender slept (older runs lack both)."""
    rows = []
    for wl in WL_ORDER + sorted(set(k[0] for k in by) - set(WL_ORDER)):
        for c in contenders:
            rs = [r for r in by.get((wl, c), []) if "error" not in r and r.get("load_us_per_req")]
            if rs:
                rows.append((wl, c, _med([r["load_us_per_req"] for r in rs]),
                             _med([r.get("sleeps_per_req") for r in rs])))
    if not rows:
        return
    p("== the load side: wrk + upstream nginx CPU per request, and the contender's sleeps per request")
    p("   %-12s %-12s %12s %11s" % ("workload", "contender", "load us/req", "sleeps/req"))
    for wl, c, lu, sl in rows:
        p("   %-12s %-12s %12.1f %11s" % (wl, c, lu, "-" if sl is None else "%.2f" % sl))
    p("   when the load side is the limit (load% near 100), req/s = 1 / load us/req: a contender that often")
    p("   sleeps (it has idle CPU) makes each packet sent to it pay a cross-CPU wake-up on the load side's CPU")
    p("")


WL_ORDER = ["ka-small", "close-small", "ka-64k", "upload-1m"]
WL_TITLE = {
    "ka-small": "keep-alive, small response",
    "close-small": "connection per request (Connection: close), small response",
    "ka-64k": "keep-alive, 64 KiB response",
    "upload-1m": "1 MiB upload (POST), keep-alive",
}


def _med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _f(x, fmt):
    return "-" if x is None else fmt % x


def report(rdir):
    recs = []
    with open(os.path.join(rdir, "runs.jsonl")) as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    extra = {}
    if os.path.exists(os.path.join(rdir, "extra.json")):
        with open(os.path.join(rdir, "extra.json")) as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    extra.setdefault(d["kind"], []).append(d)
    meta = {}
    if os.path.exists(os.path.join(rdir, "meta.json")):
        meta = json.load(open(os.path.join(rdir, "meta.json")))
    out = []
    p = out.append
    contenders = []
    for r in recs:
        if r["contender"] not in contenders:
            contenders.append(r["contender"])
    mtlsds = [c for c in contenders if c.startswith("mtlsd")]
    peers = [c for c in contenders if not c.startswith("mtlsd")]
    p("mtlsd benchmark — %s" % meta.get("date", ""))
    for k in ("host", "cpu", "kernel", "versions", "settings"):
        if k in meta:
            p("  %-9s %s" % (k + ":", meta[k]))
    for note in meta.get("notes", []):
        p("  note:     %s" % note)
    p("")
    by = {}
    for r in recs:
        by.setdefault((r["workload"], r["contender"]), []).append(r)
    summary = {}  # (workload, contender) -> medians
    for wl in WL_ORDER + sorted(set(r["workload"] for r in recs) - set(WL_ORDER)):
        if not any(k[0] == wl for k in by):
            continue
        p("== %s (%s)" % (wl, WL_TITLE.get(wl, wl)))
        p("   %-12s %8s %7s %7s %8s %10s %5s %5s %6s %8s %4s %s" % (
            "contender", "req/s", "MB/s", "p50 ms", "p99 ms", "CPU us/req", "CPU%", "load%", "other%", "peak MiB", "runs", "errors"))
        for c in contenders:
            rs = [r for r in by.get((wl, c), []) if "error" not in r]
            bad = [r for r in by.get((wl, c), []) if "error" in r]
            if not rs:
                if bad:
                    p("   %-12s failed: %s" % (c, bad[0]["error"][:100]))
                continue
            m = {
                "rps": _med([r["rps"] for r in rs]),
                "mbps": _med([r["mbps"] for r in rs]),
                "p50": _med([r["p50_ms"] for r in rs]),
                "p99": _med([r["p99_ms"] for r in rs]),
                "cpu": _med([r["cpu_us_per_req"] for r in rs]),
                "util": _med([r["cpu_util"] for r in rs]),
                "load": _med([r.get("load_util") for r in rs]),
                "other": _med([r.get("other_util") for r in rs]),
                "hwm": max(r["hwm_kb"] for r in rs) / 1024.0,
                "errors": sum(r["errors"] for r in rs),
                "requests": sum(r["requests"] for r in rs),
            }
            summary[(wl, c)] = m
            errs = "%d" % m["errors"]
            if m["errors"]:
                errs += " (%.2f%%)" % (100.0 * m["errors"] / max(1, m["requests"]))
            if bad:
                errs += " +%d failed runs" % len(bad)
            p("   %-12s %8.0f %7.1f %7.2f %8.2f %10.1f %5.0f %5.0f %6.0f %8.1f %4d %s" % (
                c, m["rps"], m["mbps"], m["p50"], m["p99"], m["cpu"] or 0, 100 * (m["util"] or 0),
                100 * (m["load"] or 0), 100 * (m["other"] or 0), m["hwm"], len(rs), errs))
        # paired ratios
        for mc in mtlsds:
            for pc in peers:
                rows = []
                for what, key, better in (("req/s", "rps", "hi"), ("CPU/req", "cpu_us_per_req", "lo"),
                                          ("p99", "p99_ms", "lo"), ("peak RSS", "hwm_kb", "lo")):
                    ratios = []
                    for ra in by.get((wl, mc), []):
                        rb = [x for x in by.get((wl, pc), []) if x.get("rep") == ra.get("rep")]
                        if "error" in ra or not rb or "error" in rb[0]:
                            continue
                        a, b = ra.get(key), rb[0].get(key)
                        if a is not None and b:
                            ratios.append(a / b)
                    if ratios:
                        rows.append("%s %.2fx [%.2f-%.2f]" % (what, statistics.median(ratios), min(ratios), max(ratios)))
                        summary.setdefault(("ratio", wl, mc, pc), {})[key] = statistics.median(ratios)
                if rows:
                    p("   %-24s %s" % ("%s / %s:" % (mc, pc), "   ".join(rows)))
        p("")
    load_side_table(p, by, contenders)
    p("   columns: medians over the runs; CPU us/req = the contender's utime+stime (all its processes and threads)")
    p("   per request; CPU% = the contender's CPU use (100 = one CPU); load% = wrk + upstream nginx (they share one")
    p("   CPU: near 100 means the load side, not the contender, was the limit); other% = everything else on the")
    p("   machine during the run (other people's processes); peak MiB = VmHWM of the contender during the run")
    p("   (reset before it), summed over its processes.")
    p("   ratios: median over the A/B pairs of one run [min-max]; req/s > 1 is better for mtlsd, CPU/req, p99 and peak RSS < 1 are better")
    p("")
    # callgrind
    if "callgrind" in extra:
        p("== callgrind: instructions (Ir) per request, steady state, small response; top functions by self cost")
        p("   (ka: one keep-alive client connection; close: a new client connection per request, upstream pooled)")
        for d in sorted(extra["callgrind"], key=lambda d: (d.get("mode", "ka") != "ka", d.get("mode", "ka"))):
            label = "%s (%s)" % (d["contender"], d.get("mode", "ka"))
            if "error" in d:
                p("   %-20s %s" % (label, d["error"]))
            else:
                p("   %-20s %10.0f Ir/request over %d requests (total %d Ir)" % (
                    label, d["ir_per_req"], d["requests"], d["ir"]))
                for fn in d.get("top", [])[:8]:
                    p("        %5.1f%%  %s" % (fn[0], fn[1][:100]))
        p("")
    if "idle" in extra:
        p("== memory per idle client connection (RSS delta / n; kernel socket buffers are not in RSS)")
        p("   %-16s %-5s %7s %14s %8s %s" % ("contender", "mode", "n", "bytes/conn", "alive", "note"))
        for d in extra["idle"]:
            if "error" in d and "bytes_per_conn" not in d:
                p("   %-16s %-5s %7s %s" % (d["contender"], d.get("mode", ""), d.get("n", ""), d["error"]))
                continue
            p("   %-16s %-5s %7d %14.0f %8d %s" % (d["contender"], d["mode"], d["n"], d["bytes_per_conn"],
                                                   d["alive"], d.get("error", "")))
        p("   modes: open = TCP connection accepted, nothing sent; ka = after one keep-alive request each")
        p("")
    if "certdrop" in extra:
        p("== certificate drop into certs.d -> first request presenting it (mtlsd, inotify, validate: true)")
        for d in extra["certdrop"]:
            ms = sorted(d.get("ms", []))
            if ms:
                p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
                p("   %-16s n=%d  p50 %.0f ms  p99 %.0f ms  min %.0f  max %.0f%s" % (
                    d["contender"], len(ms), statistics.median(ms), p99, ms[0], ms[-1],
                    ("  errors: " + "; ".join(d["errors"])) if d.get("errors") else ""))
                summary[("certdrop", d["contender"])] = p99
            else:
                p("   %-16s no successful drop: %s" % (d["contender"], "; ".join(d.get("errors", [])) or d.get("error", "")))
        p("")
    # targets
    p("== targets (issue 6), per mtlsd build")
    for mc in mtlsds:
        p("   %s:" % mc)

        def rat(wl, pc, key):
            return summary.get(("ratio", wl, mc, pc), {}).get(key)

        def verdict(ok):
            return "n/a " if ok is None else ("MET " if ok else "MISS")

        def line(ok, text):
            p("     %s %s" % (verdict(ok), text))

        r_cpu = rat("ka-small", "haproxy", "cpu_us_per_req")
        r_rps = rat("ka-small", "haproxy", "rps")
        util = summary.get(("ka-small", mc), {}).get("util")
        load = summary.get(("ka-small", mc), {}).get("load")
        line(None if r_cpu is None else r_cpu <= 0.8, "keep-alive small: CPU/req <= 0.8x HAProxy  (%s)" % _f(r_cpu, "%.2fx"))
        # "the upstream/wrk limit binds first": the load CPU was saturated
        # while the contender's was not
        bound = load is not None and util is not None and load >= 0.9 and util < 0.9
        line(None if r_rps is None else (r_rps >= 1.2 or bound),
             "keep-alive small: req/s >= 1.2x HAProxy or load-bound  (%s; mtlsd CPU %s, load CPU %s%s)" % (
                 _f(r_rps, "%.2fx"), _f(None if util is None else util * 100, "%.0f%%"),
                 _f(None if load is None else load * 100, "%.0f%%"),
                 ": the load side was the limit" if bound else ""))
        r = rat("close-small", "stunnel", "rps")
        line(None if r is None else r >= 5, "connection per request: req/s >= 5x stunnel  (%s)" % _f(r, "%.2fx"))
        r = rat("close-small", "haproxy", "rps")
        line(None if r is None else r >= 1.2, "connection per request: req/s >= 1.2x HAProxy  (%s)" % _f(r, "%.2fx"))
        r = rat("ka-64k", "haproxy", "rps")
        line(None if r is None else r >= 1.0, "keep-alive 64 KiB: req/s >= 1.0x HAProxy  (%s)" % _f(r, "%.2fx"))
        r = rat("upload-1m", "haproxy", "rps")
        line(None if r is None else r >= 1.0, "1 MiB upload: throughput >= 1.0x HAProxy  (%s)" % _f(r, "%.2fx"))
        lat = [(wl, rat(wl, "haproxy", "p99_ms")) for wl in WL_ORDER]
        lat = [(wl, x) for wl, x in lat if x is not None]
        line(None if not lat else all(x <= 1.0 for _, x in lat),
             "p99 <= HAProxy in every workload  (%s)" % ", ".join("%s %.2fx" % (wl, x) for wl, x in lat))
        hw = [(wl, summary.get((wl, mc), {}).get("hwm"), summary.get((wl, "haproxy"), {}).get("hwm")) for wl in WL_ORDER]
        hw = [(wl, a, b) for wl, a, b in hw if a is not None and b is not None]
        if hw:
            am, bm = max(a for _, a, _ in hw), max(b for _, _, b in hw)
            line(am <= bm, "peak RSS <= HAProxy's  (%.1f MiB vs %.1f MiB, max over workloads)" % (am, bm))
        else:
            line(None, "peak RSS <= HAProxy's")
        idl = [d for d in extra.get("idle", []) if d["contender"] == mc and "bytes_per_conn" in d]
        if idl:
            worst = max(d["bytes_per_conn"] for d in idl)
            line(worst <= 16384, "per idle connection <= 16 KiB  (worst %.0f B: %s)" % (
                worst, ", ".join("%s n=%d %.0f B" % (d["mode"], d["n"], d["bytes_per_conn"]) for d in idl)))
        else:
            line(None, "per idle connection <= 16 KiB")
        cd = summary.get(("certdrop", mc))
        line(None if cd is None else cd < 200, "certificate drop -> first use p99 < 200 ms  (%s)" % _f(cd, "%.0f ms"))
    print("\n".join(out))


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        freeport(args[0] if args else 1)
    elif cmd == "listening":
        return listening(args[0])
    elif cmd == "probe":
        probe(args[0], args[1] if len(args) > 1 else "/")
    elif cmd == "pids":
        print(" ".join(map(str, _pids(args[0]))))
    elif cmd == "measure":
        i = args.index("--")
        head, wrk = args[:i], args[i + 1:]
        pids = head[head.index("--pids") + 1]
        aux = head[head.index("--aux-pids") + 1] if "--aux-pids" in head else ""
        kv = [a for a in head[1:] if "=" in a and a not in (pids, aux)]
        measure(head[0], kv, pids, aux, wrk)
    elif cmd == "idle":
        pids = args[args.index("--pids") + 1]
        settle = float(args[args.index("--settle") + 1]) if "--settle" in args else 1.0
        idle(args[0], args[1], args[2], pids, settle)
    elif cmd == "seq":
        pa = int(args[args.index("--pause-after") + 1]) if "--pause-after" in args else 0
        pf = args[args.index("--pause-file") + 1] if "--pause-file" in args else None
        seq(args[0], args[1], pa, pf, "--close" in args)
    elif cmd == "cgresult":
        cgresult(*args[:5])
    elif cmd == "certdrop":
        certdrop(*args[:5])
    elif cmd == "report":
        report(args[0])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
