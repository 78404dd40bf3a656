#!/usr/bin/env python3
"""Build a larger corpus from the sample for bench/search.sh: N messages
in a maildir (DIR/cur), each a copy of a sample message with its own
Message-ID, a date spread over 2000-2025 and a few added subject words
(kwNNN: one of 500; uqNNN: this message only).  Headers are
rewritten, the body is kept byte for byte.
Usage: search_corpus.py SAMPLEDIR OUTDIR N"""
import os, re, sys
from email.utils import formatdate

src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = sorted(f for f in os.listdir(src) if f.endswith(".eml"))
msgs = [open(os.path.join(src, f), "rb").read() for f in names]
cur = os.path.join(out, "cur")
os.makedirs(cur, exist_ok=True)
os.makedirs(os.path.join(out, "new"), exist_ok=True)
os.makedirs(os.path.join(out, "tmp"), exist_ok=True)
t0, t1 = 946684800, 1767225600          # 2000-01-01 .. 2026-01-01
DROP = re.compile(rb"^(message-id|date|subject):", re.I)
for i in range(n):
    raw = msgs[i % len(msgs)]
    sep = raw.find(b"\n\n")
    head, body = (raw[:sep], raw[sep:]) if sep >= 0 else (raw, b"\n\n")
    lines, subj, keep = head.split(b"\n"), b"", []
    j = 0
    while j < len(lines):
        ln = lines[j]
        k = j + 1
        while k < len(lines) and lines[k][:1] in (b" ", b"\t"):
            k += 1
        if DROP.match(ln):
            if ln.lower().startswith(b"subject:"):
                subj = b" ".join(x.strip() for x in lines[j:k])[8:].strip()
        else:
            keep.extend(lines[j:k])
        j = k
    date = t0 + (i * 7919 * 3607) % (t1 - t0)
    extra = [b"Message-ID: <bench-%d@bench.example>" % i,
             b"Date: " + formatdate(date).encode(),
             b"Subject: " + subj + b" kw%d uq%d" % (i % 500, i)]
    with open(os.path.join(cur, "%08d:2,S" % i), "wb") as f:
        f.write(b"\n".join(extra + keep) + body)
