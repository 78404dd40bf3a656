#!/usr/bin/env python3
"""Distinctive strings of a mail corpus, one a line, for the "nothing
readable at rest" grep: subjects, addresses, and phrases from the bodies
(including rare words).  Usage: corpus_strings.py DIR [MAX_PER_KIND]"""
import email, email.policy, os, re, sys

def main():
    root = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    subjects, addrs, phrases, rare = set(), set(), set(), set()
    words = {}
    for name in sorted(os.listdir(root)):
        if not name.endswith(".eml"):
            continue
        raw = open(os.path.join(root, name), "rb").read()
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        subj = str(msg.get("Subject", "") or "")
        if len(subj) >= 14 and subj.isascii() and "=?" not in subj:
            subjects.add(subj.strip())
        for h in ("From", "To", "Cc"):
            for a in re.findall(r"[\w.+-]{3,}@[\w-]+\.[\w.-]+", str(msg.get(h, ""))):
                addrs.add(a.lower() if False else a)
        body = raw.split(b"\n\n", 1)[-1].decode("latin-1")
        for line in body.splitlines():
            line = line.strip()
            if 30 <= len(line) <= 70 and re.fullmatch(r"[A-Za-z ,.']+", line) \
                    and len(line.split()) >= 5:
                phrases.add(line)
        for w in re.findall(r"\b[a-z]{9,}\b", body):
            words[w] = words.get(w, 0) + 1
    rare = {w for w, n in words.items() if n == 1}
    out = []
    for kind in (subjects, addrs, phrases, rare):
        out.extend(sorted(kind)[:limit])
    sys.stdout.write("\n".join(out) + "\n")

main()
