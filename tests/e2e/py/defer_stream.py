#!/usr/bin/python3
"""defer_stream.py PORT RCPT LOG MODE SECONDS MIN_ACKED

The SMTP stream of t_ingest_defer: 4 sessions to 127.0.0.1:PORT, each
sending 2 KB messages to RCPT one after another with no pause of its own.
The client notes the time of every 250 (monotonic clock) and counts the
entries committed since it started from archived's log LOG (lines
"status=stored|duplicate|replayed").

MODE hold: the stream runs SECONDS, longer if need be until MIN_ACKED
    messages are acknowledged (45 s at most); then, while the sessions
    still send, the committed entries are counted (during).  archived
    drains only once no message arrived for 200 ms (or the oldest entry is
    due).  A message arrives between the client's last write of it and its
    250, so quiet_ms, the longest time from the first 250 to that count in
    which no message was both sent and acknowledged, bounds the pauses
    archived may have seen: under 200 ms, mail kept arriving for archived.
MODE until: the stream runs until the committed entries are a quarter of
    the acknowledged ones, with at least MIN_ACKED acknowledged (SECONDS at
    most); reached says whether that came while the sessions still sent.

Prints one line: acked=N during=N quiet_ms=N reached=0|1 errors=N.
"""
import re
import socket
import sys
import threading
import time

port, rcpt, logpath, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
seconds, min_acked = float(sys.argv[5]), int(sys.argv[6])
SESSIONS = 4
BODY = b"".join(b"line %04d of a message of two kilobytes, more or less....\r\n"
                % i for i in range(34))

acks = []            # (sent, acknowledged): monotonic times of a message's
                     # last write and of its 250 (list.append is atomic)
errors = [0]
stop = threading.Event()


def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3])


def quiet(done, until):
    """The longest time up to `until` in which no message (sent, acked)
    lay wholly, from the first 250 on: at each 250 and at `until`, the time
    since the latest start of a message acknowledged before."""
    done = sorted(done, key=lambda m: m[1])
    if not done:
        return until
    worst, latest = done[0][1] - done[0][0], done[0][0]
    for s, a in done[1:]:
        worst = max(worst, a - latest)
        latest = max(latest, s)
    return max(worst, until - latest)


def session(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO defer.test\r\n")
    reply(f)
    i = 0
    while not stop.is_set():
        i += 1
        # MAIL, RCPT and DATA in one write (PIPELINING), then the message
        s.sendall(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                  % rcpt.encode())
        codes = [reply(f), reply(f), reply(f)]
        if codes != [250, 250, 354]:
            errors[0] += 1
            s.sendall(b"RSET\r\n")
            reply(f)
            continue
        sent = time.monotonic()
        s.sendall(b"From: <sender@example.org>\r\nTo: <%s>\r\n"
                  b"Subject: defer %d.%d\r\nMessage-ID: <%d.%d.%f@defer.test>\r\n"
                  b"\r\n%s.\r\n" % (rcpt.encode(), n, i, n, i, time.time(), BODY))
        if reply(f) == 250:
            acks.append((sent, time.monotonic()))
        else:
            errors[0] += 1
    s.sendall(b"QUIT\r\n")
    s.close()


class Log:
    """Entries committed since the start, counted from archived's log."""
    pat = re.compile(rb"status=(stored|duplicate|replayed)\b")

    def __init__(self, path):
        self.f = open(path, "rb")
        self.f.seek(0, 2)
        self.rest, self.n = b"", 0

    def count(self):
        data = self.rest + self.f.read()
        cut = data.rfind(b"\n") + 1
        self.n += len(self.pat.findall(data[:cut]))
        self.rest = data[cut:]
        return self.n


log = Log(logpath)
threads = [threading.Thread(target=session, args=(n,), daemon=True)
           for n in range(SESSIONS)]
t0 = time.monotonic()
for t in threads:
    t.start()
during, gap, reached = 0, 0.0, 0
while True:
    time.sleep(0.02)
    now = time.monotonic()
    if not any(t.is_alive() for t in threads):
        break                       # every session failed: nothing to wait for
    if mode == "hold":
        if now - t0 >= 45 or (now - t0 >= seconds and len(acks) >= min_acked):
            during = log.count()
            gap = quiet(acks[:], time.monotonic())
            break
    else:
        during = log.count()
        if len(acks) >= min_acked and 4 * during >= len(acks):
            reached = 1
            break
        if now - t0 >= seconds:
            break
acked = len(acks)
stop.set()
for t in threads:
    t.join(30)
print("acked=%d during=%d quiet_ms=%d reached=%d errors=%d"
      % (acked, during, gap * 1000, reached, errors[0]))
