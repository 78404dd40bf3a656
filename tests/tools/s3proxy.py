#!/usr/bin/env python3
"""s3proxy.py - an HTTP/1.1 proxy between archived and a real S3 server
(Ceph RGW) for the fault tests: it logs the request line of every request
and can delay each request.

  s3proxy.py UPSTREAM_PORT PORT_FILE LOG_FILE CONTROL_FILE [PORT]

Listens on 127.0.0.1 (PORT, or a free one written to PORT_FILE).  For each
request, CONTROL_FILE is read: "delay MS [METHOD]" waits MS milliseconds
before the request (of that method only, if given) goes on; anything else
(or no file) passes it at once.  Killing
the process refuses every connection, as a stopped server does.
"""
import os
import socket
import sys
import threading
import time

UP, PORT_FILE, LOG, CONTROL = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
PORT = int(sys.argv[5]) if len(sys.argv) > 5 else 0
log_lock = threading.Lock()


def delay_ms(method):
    try:
        with open(CONTROL) as f:
            words = f.read().split()
        if len(words) in (2, 3) and words[0] == "delay" and (
                len(words) == 2 or words[2] == method):
            return int(words[1])
    except OSError:
        pass
    return 0


def pump(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client):
    try:
        up = socket.create_connection(("127.0.0.1", UP))
    except OSError:
        client.close()
        return
    threading.Thread(target=pump, args=(up, client), daemon=True).start()
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                b = client.recv(65536)
                if not b:
                    raise EOFError
                buf += b
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            length = 0
            for h in lines[1:]:
                k, _, v = h.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            with log_lock, open(LOG, "a") as f:
                f.write(lines[0].decode("latin-1") + "\n")
            ms = delay_ms(lines[0].split(b" ")[0].decode("latin-1"))
            if ms:
                time.sleep(ms / 1000)
            up.sendall(head + b"\r\n\r\n")
            # the body, as it comes
            while length > 0:
                if not buf:
                    buf = client.recv(65536)
                    if not buf:
                        raise EOFError
                n = min(length, len(buf))
                up.sendall(buf[:n])
                buf = buf[n:]
                length -= n
    except (EOFError, OSError, ValueError):
        pass
    for s in (client, up):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", PORT))
    ls.listen(128)
    tmp = PORT_FILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(tmp, PORT_FILE)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
