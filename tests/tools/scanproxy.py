#!/usr/bin/env python3
"""scanproxy.py - a proxy between archived's gateway and a real scanner,
for the tests of replies the real one never gives (tests/e2e/
t_gw_scan_faults.sh): it passes requests to the scanner, or answers them
badly, as its control file says.

  scanproxy.py rspamd UPSTREAM_PORT PORT_FILE CONTROL_FILE LOG_FILE
      HTTP/1.1 on 127.0.0.1 (a free port, written to PORT_FILE), in front
      of rspamd's normal worker on UPSTREAM_PORT.  Each POST /checkv2 is
      read whole, then per the first word of CONTROL_FILE (read for each
      request; no file: pass):
        pass       rspamd's reply as it is
        truncate   rspamd's reply cut in half (Content-Length says so)
        short      Content-Length of the whole reply, half of it sent,
                   then the connection closed
        invalid    200 with a body that is not JSON
        http500    500 with {"error": ...}, as rspamd reports a failure
        error200   200 with {"error": ...}
        badtypes   rspamd's reply with "score" as a string
        huge       rspamd's reply with a 16 MiB string added (valid JSON,
                   clean if it were believed)
        empty      200 with an empty body
        stall      no answer, until the client gives up (closes)
        close      the connection closed without an answer
      Anything else (GET /ping ...) passes.
  scanproxy.py clamd UPSTREAM_SOCKET LISTEN_SOCKET CONTROL_FILE LOG_FILE
      clamd's UNIX socket protocol, in front of clamd's socket.  Per
      connection, per CONTROL_FILE:
        pass       bytes both ways as they come
        garbage    the INSTREAM read whole, then bytes that are no reply
        close      the connection closed after the command, no reply
        early      "stream: OK" after the first chunk, then closed (an
                   answer before the message was all sent)
        stall      the INSTREAM read whole, no reply until the client
                   gives up

Each request or connection adds "MODE WHAT" to LOG_FILE, so a test sees
that the proxy was on the path.
"""
import json
import os
import socket
import struct
import sys
import threading

KIND = sys.argv[1]
CONTROL, LOG = sys.argv[4], sys.argv[5]
log_lock = threading.Lock()


def mode():
    try:
        with open(CONTROL) as f:
            w = f.read().split()
        return w[0] if w else "pass"
    except OSError:
        return "pass"


def log(line):
    with log_lock, open(LOG, "a") as f:
        f.write(line + "\n")


def recv_exact(s, n, buf=b""):
    while len(buf) < n:
        b = s.recv(max(65536, n - len(buf)))
        if not b:
            raise EOFError
        buf += b
    return buf


def wait_close(s):
    """Hold the connection, reading and dropping, until the peer closes."""
    s.settimeout(600)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass


# --- rspamd (HTTP) -------------------------------------------------------------

def read_http(s, buf):
    """One HTTP message from s: (head lines, body, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise EOFError
        buf += b
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = None
    for h in lines[1:]:
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    if length is None:
        if lines[0].startswith(b"HTTP/"):
            # a reply without a length: until the server closes
            while True:
                b = s.recv(65536)
                if not b:
                    break
                buf += b
            return lines, buf, b""
        length = 0
    buf = recv_exact(s, length, buf)
    return lines, buf[:length], buf[length:]


def upstream(lines, body):
    """The request to the real rspamd, on a connection of its own: its
    status line, headers and body."""
    u = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    keep = [h for h in lines[1:] if h.split(b":")[0].strip().lower()
            not in (b"connection", b"keep-alive")]
    u.sendall(b"\r\n".join([lines[0]] + keep + [b"Connection: close"]) +
              b"\r\n\r\n" + body)
    rl, rb, _ = read_http(u, b"")
    u.close()
    return rl[0], rb


def reply(c, status, body, ctype=b"application/json", length=None):
    c.sendall(b"HTTP/1.1 " + status + b"\r\nServer: scanproxy\r\n"
              b"Content-Type: " + ctype + b"\r\nContent-Length: " +
              str(len(body) if length is None else length).encode() +
              b"\r\nConnection: keep-alive\r\n\r\n" + body)


def serve_http(c):
    buf = b""
    try:
        while True:
            lines, body, buf = read_http(c, buf)
            m = mode() if b"/checkv2" in lines[0] else "pass"
            log(f"{m} {lines[0].decode('latin-1')} {len(body)}")
            if m == "stall":
                wait_close(c)
                return
            if m == "close":
                return
            if m == "invalid":
                reply(c, b"200 OK", b"<html>this is not JSON</html>\r\n",
                      b"text/html")
                continue
            if m == "http500":
                reply(c, b"500 Internal Server Error",
                      b'{"error":"scanproxy: internal error"}')
                continue
            if m == "error200":
                reply(c, b"200 OK", b'{"error":"scanproxy: failed"}')
                continue
            if m == "empty":
                reply(c, b"200 OK", b"")
                continue
            status, rbody = upstream(lines, body)
            status = status.split(b" ", 1)[1]
            if m == "truncate":
                reply(c, status, rbody[:len(rbody) // 2])
            elif m == "short":
                reply(c, status, rbody[:len(rbody) // 2], length=len(rbody))
                return
            elif m == "badtypes":
                j = json.loads(rbody)
                j["score"] = "low"
                reply(c, status, json.dumps(j).encode())
            elif m == "huge":
                j = json.loads(rbody)
                j["padding"] = "x" * (16 << 20)
                reply(c, status, json.dumps(j).encode())
            else:
                reply(c, status, rbody)
    except (EOFError, OSError, ValueError):
        pass
    finally:
        c.close()


# --- clamd (UNIX socket) --------------------------------------------------------

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


def read_instream(c, stop_after_first=False):
    """The command and the chunks up to the zero length: (command, bytes)."""
    buf = b""
    while b"\0" not in buf and b"\n" not in buf:
        b = c.recv(64)
        if not b:
            raise EOFError
        buf += b
    end = min(i for i in (buf.find(b"\0"), buf.find(b"\n")) if i >= 0)
    cmd, buf = buf[:end], buf[end + 1:]
    total = 0
    while True:
        buf = recv_exact(c, 4, buf)
        n = struct.unpack(">I", buf[:4])[0]
        buf = recv_exact(c, 4 + n, buf)[4 + n:]
        if n == 0:
            break
        total += n
        if stop_after_first:
            break
    return cmd, total


def serve_clamd(c):
    m = mode()
    try:
        if m == "pass":
            u = socket.socket(socket.AF_UNIX)
            u.connect(sys.argv[2])
            log("pass connection")
            threading.Thread(target=pump, args=(u, c), daemon=True).start()
            pump(c, u)
            return
        if m == "close":
            c.recv(16)
            log("close connection")
            return
        cmd, total = read_instream(c, stop_after_first=(m == "early"))
        log(f"{m} {cmd.decode('latin-1')} {total}")
        if m == "garbage":
            c.sendall(b"\x16\x03\x01 no idea what you mean\xff\0")
        elif m == "early":
            c.sendall(b"stream: OK\0")
        elif m == "stall":
            wait_close(c)
    except (EOFError, OSError):
        pass
    finally:
        c.close()


def main():
    if KIND == "rspamd":
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        serve = serve_http
        where = str(ls.getsockname()[1])
        port_file = sys.argv[3]
    elif KIND == "clamd":
        ls = socket.socket(socket.AF_UNIX)
        if os.path.exists(sys.argv[3]):
            os.unlink(sys.argv[3])
        ls.bind(sys.argv[3])
        serve = serve_clamd
        where = sys.argv[3]
        port_file = sys.argv[3] + ".ready"
    else:
        sys.exit(__doc__)
    ls.listen(128)
    with open(port_file + ".tmp", "w") as f:
        f.write(where)
    os.rename(port_file + ".tmp", port_file)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
