#!/usr/bin/env python3
"""Send COUNT distinct messages over SESSIONS concurrent SMTP connections,
retrying on failure, until every message got 250 or DEADLINE seconds
passed; print the SHA-256 of every message that got 250, one a line, to
ACKFILE.  Usage: smtp_stream.py PORTFILE RCPT COUNT SESSIONS DEADLINE ACKFILE
PORTFILE holds the port (re-read after each failure: the daemon restarts)."""
import hashlib, smtplib, sys, threading, time

portfile, rcpt, count, sessions, deadline, ackfile = sys.argv[1:7]
count, sessions, deadline = int(count), int(sessions), time.time() + float(deadline)
acked, lock = set(), threading.Lock()

def message(i):
    body = "".join(f"line {k} of message {i}: the quick brown fox {i*k}\r\n" for k in range(40))
    return (f"From: sender{i}@example.org\r\nTo: {rcpt}\r\nSubject: crash test {i}\r\n"
            f"Message-ID: <crash-{i}@example.org>\r\n\r\n{body}").encode()

def worker(ids):
    pending = list(ids)
    while pending and time.time() < deadline:
        try:
            port = int(open(portfile).read().strip() or 0)
            s = smtplib.SMTP("127.0.0.1", port, timeout=10)
            while pending:
                i = pending[0]
                raw = message(i)
                s.sendmail("sender@example.org", [rcpt], raw)  # raises unless 250
                with lock:
                    acked.add(hashlib.sha256(raw).hexdigest())
                pending.pop(0)
            s.quit()
        except Exception:
            time.sleep(0.05)

threads = [threading.Thread(target=worker, args=(range(k, count, sessions),))
           for k in range(sessions)]
for t in threads: t.start()
for t in threads: t.join()
open(ackfile, "w").write("\n".join(sorted(acked)) + "\n")
print(f"{len(acked)} of {count} acknowledged")
