#!/usr/bin/env python3
"""bench/send_corpus.py PORT DIR [T0_FILE] - send every .eml of DIR to
journal@corpus.example on 127.0.0.1:PORT over 8 smtplib sessions; print
the rate to 250; write the start time (seconds since the epoch) to
T0_FILE when given.  Used by bench/ingest.sh and bench/drain.sh."""
import os, smtplib, sys, threading, time

port, d = int(sys.argv[1]), sys.argv[2]
files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".eml"))


def send(part):
    s = smtplib.SMTP("127.0.0.1", port)
    for f in part:
        with open(f, "rb") as fh:
            s.sendmail("bench@example.org", ["journal@corpus.example"], fh.read())
    s.quit()


t0 = time.time()
ts = [threading.Thread(target=send, args=(files[i::8],)) for i in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
t = time.time() - t0
print(f"corpus: {len(files)} messages to 250 in {t:.2f} s ({len(files)/t:.0f} msg/s, python smtplib client)")
if len(sys.argv) > 3:
    with open(sys.argv[3], "w") as fh:
        fh.write(str(t0))
