#!/usr/bin/env python3
"""bench/scanners.py - what rspamd and clamd alone can scan on this machine
(bench/gateway.sh's ceiling): every .eml of DIR sent to rspamd's /checkv2
(keep-alive HTTP/1.1) and to clamd's INSTREAM (UNIX socket), both for each
message as archived's gateway does, from PARALLEL threads at once.

  scanners.py --dir DIR --rspamd http://127.0.0.1:P --clamd SOCK
              [--parallel N] [--only rspamd|clamd]

Prints one line "scanners-result key=value ...": messages, seconds,
rate (msg/s), p50_ms, p99_ms (both scans of a message), and the count of
each rspamd action and of clamd FOUND replies.
"""
import argparse
import http.client
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse


def clamd_scan(path, data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(b"zINSTREAM\0")
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        s.sendall(struct.pack("!I", len(chunk)) + chunk)
    s.sendall(struct.pack("!I", 0))
    reply = b""
    while not reply.endswith(b"\0"):
        b = s.recv(4096)
        if not b:
            break
        reply += b
    s.close()
    return reply.rstrip(b"\0").decode(errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--rspamd", required=True)
    ap.add_argument("--clamd", required=True)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--only", choices=["rspamd", "clamd"])
    a = ap.parse_args()
    files = sorted(os.path.join(a.dir, f) for f in os.listdir(a.dir)
                   if f.endswith(".eml"))
    if not files:
        sys.exit("scanners.py: no .eml in %s" % a.dir)
    u = urllib.parse.urlparse(a.rspamd)
    lock = threading.Lock()
    nxt = [0]
    lat, actions, found, errors = [], {}, [0], [0]

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        while True:
            with lock:
                if nxt[0] >= len(files):
                    break
                f = files[nxt[0]]
                nxt[0] += 1
            data = open(f, "rb").read()
            t0 = time.monotonic()
            act = None
            try:
                if a.only != "clamd":
                    conn.request("POST", "/checkv2", body=data, headers={
                        "IP": "192.0.2.10", "From": "bench@example.org",
                        "Rcpt": "user@bench.example", "Helo": "bench.example"})
                    r = conn.getresponse()
                    body = r.read()
                    act = body.split(b'"action":"', 1)[1].split(b'"', 1)[0] \
                        .decode() if b'"action":"' in body else "?"
                if a.only != "rspamd":
                    v = clamd_scan(a.clamd, data)
                    if v.endswith("FOUND"):
                        with lock:
                            found[0] += 1
            except Exception:
                with lock:
                    errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port,
                                                  timeout=60)
                continue
            dt = time.monotonic() - t0
            with lock:
                lat.append(dt)
                if act:
                    actions[act] = actions.get(act, 0) + 1
        conn.close()

    t0 = time.monotonic()
    th = [threading.Thread(target=worker) for _ in range(a.parallel)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    secs = time.monotonic() - t0
    lat.sort()

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0
    acts = " ".join("action_%s=%d" % (k.replace(" ", "_"), v)
                    for k, v in sorted(actions.items()))
    print("scanners-result messages=%d parallel=%d seconds=%.1f rate=%.1f "
          "p50_ms=%.1f p99_ms=%.1f clamd_found=%d errors=%d %s" % (
              len(lat), a.parallel, secs, len(lat) / secs if secs else 0,
              pct(0.5), pct(0.99), found[0], errors[0], acts))


if __name__ == "__main__":
    main()
