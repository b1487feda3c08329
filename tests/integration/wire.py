#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Segments of each TCP connection to PORT in a capture, as the server sent
them (stdlib only; reads `tcpdump -nn -r FILE` text on stdin).

  wire.py PORT < tcpdump-text

One line per connection, in the order they opened:
  CLIENT_PORT server=N data=D fin_on_data=0|1 ack_before_data=0|1
N: segments the server sent; D: those that carried bytes; fin_on_data: its
last data segment also carried the FIN; ack_before_data: it sent a pure ACK
after the client's first bytes and before its own first bytes.
"""
import re
import sys

LINE = re.compile(r"IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): Flags \[([^\]]*)\].*length (\d+)")


def main(argv):
    port = argv[1]
    conns = {}
    order = []
    for line in sys.stdin:
        m = LINE.search(line)
        if not m:
            continue
        src, dst, flags, length = m.group(1), m.group(2), m.group(3), int(m.group(4))
        from_server = src == port
        client = dst if from_server else src
        if client not in conns:
            conns[client] = []
            order.append(client)
        conns[client].append((from_server, flags, length))
    for client in order:
        segs = conns[client]
        server = [s for s in segs if s[0]]
        data = [s for s in server if s[2] > 0]
        fin_on_data = int(bool(data) and "F" in data[-1][1])
        ack_before = 0
        asked = False
        for from_server, flags, length in segs:
            if not from_server and length > 0:
                asked = True
            elif from_server and length > 0:
                break
            elif from_server and asked and flags == ".":
                ack_before = 1
        print("%s server=%d data=%d fin_on_data=%d ack_before_data=%d" %
              (client, len(server), len(data), fin_on_data, ack_before))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
