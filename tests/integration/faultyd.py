#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""faultyd: a misbehaving mTLS upstream for the faulty-upstream tests (stdlib only).

  faultyd.py --cert CRT --key KEY --client-ca PEM --port-file F --log F
             [--exit-with-parent]

Listens on 127.0.0.1 (a port of its own, written to --port-file once it
accepts), requires a client certificate that chains to --client-ca (as the
nginx upstream does), and answers each request according to its path (the
query string is ignored; tests use it to tag requests):

  /ok                    200, keep-alive, body "ok conn=N serial=S"
  /stats                 200, keep-alive, body "connections=N open=M"
  /reset-before-headers  read the request, then reset (RST) the connection
  /reset-in-headers      "HTTP/1.1 200 OK\\r\\nContent-Le", then reset
  /reset-mid-body        Content-Length: 100000, 5000 body bytes, a pause, reset
  /reset-mid-body-now    the same without the pause (head, bytes, reset at once)
  /close-mid-body        the same, then a clean close (close_notify + FIN)
  /close-mid-chunked     chunked: one chunk, then a clean close (no last chunk)
  /eof-body              no length, no chunking: body, then a clean close
                         (a legitimate close-delimited response)
  /reset-eof-body        the same, but reset (RST) instead of the clean close:
                         the close-delimited body is cut, not complete
  /fin-eof-body          the same, but a bare FIN (no close_notify): nothing
                         tells a cut from the end, so it is not complete
  /fin-cl-body           Content-Length: 3000, the whole body, then a bare FIN:
                         complete (the length says so)
  /bad-status            "HTTP/1.1 2x0 OK"
  /bad-header-nocolon    a header line without a colon
  /bad-header-nul        a NUL byte in a header value
  /bad-header-space      whitespace between a header name and its colon
  /bad-cl                two different Content-Length headers
  /bad-huge-header       a 40 kB header (more than mtlsd's 32 kB default limit)
  /bad-chunk             chunked: one good chunk, a pause, an invalid chunk size
  /bad-chunk-now         the same without the pause (head and fault in one write)
  /slow-body             Content-Length: 10000, 10 bytes, then silence
  /slow-eof-body         no length, no chunking: 10 bytes, then silence
  /silence               never answers
  /close-but-keep        200 with "Connection: close", then keeps the connection
                         open; a request arriving on it anyway is logged
                         ("REUSED after Connection: close") and answered 409
  TLS alert              a client that asks for server name alert-NAME.test
                         (SNI) gets the fatal alert NAME (e.g. unrecognized_name)
                         instead of a handshake

Faults that wait (silence, slow-body, slow-eof-body, close-but-keep) hold the connection
until the peer closes it (or 300 s), and log that. One log line per event
in --log: "conn N accepted", "conn N request GET /path?query", "conn N reset",
"conn N closed by peer", ...  Stops on SIGTERM, or when its parent goes
(--exit-with-parent), so an aborted run leaves nothing behind.
"""
import argparse
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time

HOLD_MAX = 300          # longest a waiting fault keeps a connection
LOCK = threading.Lock()
STATS = {"connections": 0, "open": 0}
LOG = None


def log(msg):
    with LOCK:
        LOG.write("%.3f %s\n" % (time.time(), msg))
        LOG.flush()


def reset(conn):
    # SO_LINGER 0: close() sends a TCP RST, and no close_notify is sent
    # (closing an SSLSocket without unwrap() never sends one)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def clean_close(conn):
    # close_notify, then FIN: a proper end that must still not make a
    # truncated body look complete. unwrap() may wait for the peer's reply.
    try:
        conn.settimeout(2)
        conn.unwrap().close()
    except (OSError, ValueError):
        conn.close()


def fin_close(conn):
    # a bare FIN: shut the TCP socket under the TLS layer, so no
    # close_notify goes out (what a truncation attack looks like)
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def wait_peer_close(conn, n):
    """Hold the connection until the peer closes it; True if it did."""
    conn.settimeout(HOLD_MAX)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            # a request on a connection we said we would close
            log("conn %d REUSED after Connection: close: %r" % (n, data[:60]))
            conn.sendall(b"HTTP/1.1 409 Conflict\r\nContent-Length: 33\r\n"
                         b"Connection: close\r\n\r\nREUSED after Connection: close!!\n")
    except socket.timeout:
        log("conn %d still open after %d s" % (n, HOLD_MAX))
        return False
    except OSError as e:
        log("conn %d closed by peer (%s)" % (n, e.__class__.__name__))
        return True
    log("conn %d closed by peer" % n)
    return True


def read_request(conn, buf):
    """(request line, headers dict, rest of buf) or None at EOF."""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    # requests through mtlsd carry no body in these tests; skip one if any
    need = int(headers.get("content-length", "0") or 0)
    while len(buf) < need:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    return lines[0], headers, buf[need:]


def answer(conn, status, body, extra=""):
    conn.sendall(("HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
                  % (status, len(body), extra)).encode() + body)


def handle(conn, n):
    """Serve one connection; returns when it is closed."""
    serial = (conn.getpeercert() or {}).get("serialNumber", "-")
    buf = b""
    while True:
        try:
            r = read_request(conn, buf)
        except OSError as e:
            log("conn %d read failed: %s" % (n, e))
            conn.close()
            return
        if r is None:
            log("conn %d closed by peer" % n)
            conn.close()
            return
        line, _, buf = r
        log("conn %d request %s serial=%s" % (n, line, serial))
        parts = line.split(" ")
        path = parts[1].split("?", 1)[0] if len(parts) > 1 else ""
        ident = "X-Faulty-Conn: %d\r\n" % n
        if path == "/ok":
            answer(conn, "200 OK", ("ok conn=%d serial=%s\n" % (n, serial)).encode(), ident)
            continue
        if path == "/stats":
            with LOCK:
                body = "connections=%d open=%d\n" % (STATS["connections"], STATS["open"])
            answer(conn, "200 OK", body.encode(), ident)
            continue
        fault(conn, n, path, ident)
        return


def fault(conn, n, path, ident):
    big = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
          "Content-Length: 100000\r\n" + ident + "\r\n"
    if path == "/reset-before-headers":
        reset(conn)
    elif path == "/reset-in-headers":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
        time.sleep(0.3)         # let the half head arrive on its own first
        reset(conn)
    elif path in ("/reset-mid-body", "/reset-mid-body-now", "/close-mid-body"):
        conn.sendall(big.encode() + b"x" * 5000)
        if path != "/reset-mid-body-now":
            time.sleep(0.5)     # the part before the fault reaches the client
        if path.startswith("/reset"):
            reset(conn)
        else:
            clean_close(conn)
    elif path == "/close-mid-chunked":
        conn.sendall(("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n"
                      "10\r\nfirst chunk only\r\n" % ident).encode())
        time.sleep(0.5)
        clean_close(conn)
    elif path in ("/eof-body", "/reset-eof-body", "/fin-eof-body"):
        conn.sendall(("HTTP/1.1 200 OK\r\nConnection: close\r\n%s\r\n" % ident).encode() +
                     b"e" * 3000 + b"\nend of a close-delimited body\n")
        if path == "/eof-body":
            clean_close(conn)
        elif path == "/fin-eof-body":
            time.sleep(0.5)     # the part before the fault reaches the client
            fin_close(conn)
        else:
            time.sleep(0.5)     # the part before the fault reaches the client
            reset(conn)
    elif path == "/fin-cl-body":
        conn.sendall(("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3000\r\n%s\r\n"
                      % ident).encode() + b"f" * 3000)
        fin_close(conn)
    elif path.startswith("/bad-"):
        head = {
            "/bad-status": "HTTP/1.1 2x0 OK\r\nContent-Length: 3\r\n",
            "/bad-header-nocolon": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nThis is no header\r\n",
            "/bad-header-nul": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Nul: a\0b\r\n",
            "/bad-header-space": "HTTP/1.1 200 OK\r\nContent-Length : 3\r\n",
            "/bad-cl": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 30\r\n",
            "/bad-huge-header": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Huge: %s\r\n"
                                % ("h" * 40000),
        }.get(path, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n")
        body = "bad"
        if path in ("/bad-chunk", "/bad-chunk-now"):
            head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
            body = "5\r\nhello\r\n"
        if path == "/bad-chunk-now":
            body += "zz\r\nbad chunk size\r\n0\r\n\r\n"
        conn.sendall((head + ident + "\r\n" + body).encode())
        if path == "/bad-chunk":
            time.sleep(0.5)     # the good chunk reaches the client first
            conn.sendall(b"zz\r\nbad chunk size\r\n0\r\n\r\n")
        wait_peer_close(conn, n)
        conn.close()
    elif path in ("/slow-body", "/slow-eof-body"):
        length = "Content-Length: 10000\r\n" if path == "/slow-body" else "Connection: close\r\n"
        conn.sendall(("HTTP/1.1 200 OK\r\n%s%s\r\n" % (length, ident)).encode() + b"0123456789")
        wait_peer_close(conn, n)
        conn.close()
    elif path == "/silence":
        wait_peer_close(conn, n)
        conn.close()
    elif path == "/close-but-keep":
        answer(conn, "200 OK", ("close-but-keep conn=%d\n" % n).encode(),
               ident + "Connection: close\r\n")
        wait_peer_close(conn, n)
        conn.close()
    else:
        answer(conn, "404 Not Found", b"no such fault\n", ident)
        wait_peer_close(conn, n)
        conn.close()
    log("conn %d fault %s done" % (n, path))


def serve(ctx, raw, n):
    with LOCK:
        STATS["open"] += 1
    try:
        # the handshake runs here, not in the accept loop: a stuck client
        # must not stop the others
        raw.settimeout(10)
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as e:
            log("conn %d handshake failed: %s" % (n, e))
            raw.close()
            return
        conn.settimeout(HOLD_MAX)
        try:
            handle(conn, n)
        except OSError as e:
            log("conn %d error: %s" % (n, e))
            conn.close()
    finally:
        with LOCK:
            STATS["open"] -= 1


def sni(sslobj, name, ctx):
    # alert-NAME.test: refuse the handshake with the fatal alert NAME
    if name and name.startswith("alert-") and name.endswith(".test"):
        alert = name[6:-5].replace("-", "_").upper()
        log("handshake refused for SNI %s: alert %s" % (name, alert))
        return getattr(ssl, "ALERT_DESCRIPTION_" + alert, ssl.ALERT_DESCRIPTION_INTERNAL_ERROR)
    return None


def main():
    global LOG
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--exit-with-parent", action="store_true")
    a = ap.parse_args()
    LOG = open(a.log, "a")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    ctx.load_verify_locations(a.client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.sni_callback = sni

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if a.exit_with_parent:
        parent = os.getppid()

        def watch():    # reparented: the test run is gone
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    port = ls.getsockname()[1]
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(a.port_file + ".tmp", a.port_file)
    log("listening on 127.0.0.1:%d" % port)
    while True:
        raw, _ = ls.accept()
        with LOCK:
            STATS["connections"] += 1
            n = STATS["connections"]
        log("conn %d accepted" % n)
        threading.Thread(target=serve, args=(ctx, raw, n), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
