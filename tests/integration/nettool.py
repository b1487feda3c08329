#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Small network helpers for the integration harness (stdlib only).

  nettool.py freeport [N]           print N free loopback TCP ports (nginx only:
                                    mtlsd binds port 0 and logs what it got)
  nettool.py raw HOST PORT TIMEOUT  send stdin as-is, print what comes back
                                    (until EOF, a complete response, or TIMEOUT s;
                                    with RAW_EOF=1 only EOF or TIMEOUT end it;
                                    RAW_DELAY=S waits S s after connecting)
  nettool.py established PID PORT   count ESTABLISHED TCP connections owned by
                                    PID whose remote port is PORT
  nettool.py fds PID                list PID's descriptors, TCP sockets with their
                                    state and endpoints (leak diagnostics)
  nettool.py listening PORT         exit 0 if something accepts on 127.0.0.1:PORT
  nettool.py hold HOST PORT N READY RELEASE
                                    open N idle connections, then write "N" to the
                                    file READY; when the file RELEASE appears (or
                                    after 300 s) report how many the peer had
                                    closed ("closed-by-peer K"), close them all
  nettool.py burst HOST PORT N WAIT start N connections at once; WAIT s later
                                    print how many completed their handshake
                                    (a full accept queue drops the others' SYNs)
  nettool.py slowloris HOST PORT MODE TIMEOUT
                                    send an unfinished request head and wait for
                                    the peer to close: MODE stall (send once) or
                                    trickle (one more header byte every 0.2 s);
                                    prints "closed after S.SS s: FIRST-LINE" (exit
                                    0) or "open after TIMEOUT s" (exit 1)
"""
import os
import re
import select
import socket
import sys
import time


def freeport(n=1):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def _complete(buf):
    """True once buf holds a whole response with a Content-Length body
    (or a bodiless status). Chunked/close-delimited bodies wait for EOF."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = buf[:end].decode("latin-1")
    status = head.split("\r\n", 1)[0].split(" ")
    if len(status) > 1 and status[1] in ("100",):
        return _complete(buf[end + 4:])
    m = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
    if m:
        return len(buf) - end - 4 >= int(m.group(1))
    return len(status) > 1 and status[1] in ("204", "304")


def raw(host, port, timeout):
    payload = sys.stdin.buffer.read()
    deadline = time.monotonic() + float(timeout)
    s = socket.create_connection((host, int(port)), timeout=float(timeout))
    time.sleep(float(os.environ.get("RAW_DELAY", "0")))
    try:
        s.sendall(payload)
    except OSError as e:  # the peer may answer and close before reading it all
        sys.stderr.write("send: %s\n" % e)
    buf = b""
    until_eof = os.environ.get("RAW_EOF") == "1"
    while time.monotonic() < deadline and (until_eof or not _complete(buf)):
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            sys.stderr.write("raw: timed out after %ss\n" % timeout)
            break
        except OSError as e:
            sys.stderr.write("recv: %s\n" % e)
            break
        if not chunk:
            break
        buf += chunk
    s.close()
    sys.stdout.buffer.write(buf)
    return 0 if buf else 1


def _fd_targets(pid):
    """(fd, what it points to, socket inode or None) for each of PID's
    descriptors, in fd order."""
    fd_dir = "/proc/%s/fd" % pid
    for fd in sorted(os.listdir(fd_dir), key=int):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        yield fd, target, m.group(1) if m else None


_TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV",
               "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
               "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK",
               "0A": "LISTEN", "0B": "CLOSING"}


def _tcp_sockets():
    """inode -> (state name, local port, remote port) for every TCP
    socket (v4 and v6)."""
    socks = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            loc, rem = (int(a.rsplit(":", 1)[1], 16) for a in (f[1], f[2]))
            socks[f[9]] = (_TCP_STATES.get(f[3], f[3]), loc, rem)
    return socks


def established(pid, port):
    inodes = {inode for _, _, inode in _fd_targets(pid)}
    print(sum(1 for inode, (state, _, rem) in _tcp_sockets().items()
              if state == "ESTABLISHED" and rem == int(port) and inode in inodes))
    return 0


def fds(pid):
    socks = _tcp_sockets()
    for fd, target, inode in _fd_targets(pid):
        tcp = socks.get(inode)
        if tcp:
            target += " tcp %s :%d -> :%d" % tcp
        print("%s %s" % (fd, target))
    return 0


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
        return 0
    except OSError:
        return 1


def _raise_nofile(n):
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = n + 64
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (min(want, hard) if hard > 0 else want, hard))
    except (ImportError, ValueError, OSError) as e:
        sys.stderr.write("hold: cannot raise RLIMIT_NOFILE: %s\n" % e)


def _peer_closed(s):
    """True when the peer closed s (EOF or reset; data does not count)."""
    s.setblocking(False)  # a socket with a timeout would wait for data
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def hold(host, port, n, ready, release):
    n = int(n)
    _raise_nofile(n)
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection((host, int(port)), timeout=10))
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % len(socks))
    os.rename(ready + ".tmp", ready)
    deadline = time.monotonic() + 300
    # a poll interval, not a wait for an event: the test creates the file
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    closed = sum(1 for s in socks if _peer_closed(s))
    for s in socks:
        s.close()
    print("closed-by-peer %d" % closed)
    return 0


def burst(host, port, n, wait):
    n = int(n)
    _raise_nofile(n)
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, int(port)))
        socks.append(s)
    time.sleep(float(wait))
    done = 0
    for s in socks:
        _, w, _ = select.select([], [s], [], 0)
        if w and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            done += 1
    for s in socks:
        s.close()
    print(done)
    return 0


def slowloris(host, port, mode, timeout):
    head = b"GET /?t=slowloris-" + mode.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
    start = time.monotonic()
    deadline = start + float(timeout)
    s = socket.create_connection((host, int(port)), timeout=float(timeout))
    buf = b""
    closed = False
    try:
        s.sendall(head + b"X-Slow: ")
        while time.monotonic() < deadline:
            s.settimeout(0.2 if mode == "trickle" else max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                if mode == "trickle":
                    s.sendall(b"a")
                continue
            if not chunk:
                closed = True
                break
            buf += chunk
    except OSError:  # reset, or a send after the peer closed
        closed = True
    s.close()
    first = buf.split(b"\r\n", 1)[0].decode("latin-1")
    if closed:
        print("closed after %.2f s: %s" % (time.monotonic() - start, first))
        return 0
    print("open after %s s" % timeout)
    return 1


def main(argv):
    if len(argv) >= 2 and argv[1] == "freeport":
        freeport(int(argv[2]) if len(argv) > 2 else 1)
        return 0
    if len(argv) == 5 and argv[1] == "raw":
        return raw(argv[2], argv[3], argv[4])
    if len(argv) == 4 and argv[1] == "established":
        return established(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "fds":
        return fds(argv[2])
    if len(argv) == 3 and argv[1] == "listening":
        return listening(argv[2])
    if len(argv) == 7 and argv[1] == "hold":
        return hold(*argv[2:])
    if len(argv) == 6 and argv[1] == "burst":
        return burst(*argv[2:])
    if len(argv) == 6 and argv[1] == "slowloris" and argv[4] in ("stall", "trickle"):
        return slowloris(*argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
