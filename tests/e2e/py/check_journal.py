#!/usr/bin/env python3
"""After every journal golden and fixture was sent with swaks: each
original named by the .ref files is stored once, byte for byte, with the
envelope recipients from the report; messages that are not reports are
stored as sent.  Usage: check_journal.py ARCHIVECTL DATADIR TENANT GOLDENDIR
SENTDIR"""
import hashlib, json, os, re, subprocess, sys, tempfile

ctl, data, tenant, golden, sent = sys.argv[1:6]
objs = json.loads(subprocess.run([ctl, "-d", data, "--json", "list", "--tenant",
                                  tenant], check=True, capture_output=True).stdout)
by_sha = {}
for o in objs:
    by_sha.setdefault(o["sha256"], []).append(o)
problems, checked = [], 0
for ref in sorted(os.listdir(golden)):
    if not ref.endswith(".ref"):
        continue
    name = ref[:-4]
    text = open(os.path.join(golden, ref)).read()
    kind = re.search(r"^kind: (\S+)", text, re.M).group(1)
    if kind == "plain":
        # stored whole, as swaks sent it (swaks adds CRLF before the dot)
        raw = open(os.path.join(sent, name.replace("fixture_", "") + ".eml"), "rb").read()
        shas = [hashlib.sha256(raw + b"\r\n").hexdigest()]
    else:
        shas = re.findall(r"^original \d+: .*sha256=([0-9a-f]{64})", text, re.M)
    for i, sha in enumerate(shas):
        checked += 1
        got = by_sha.get(sha, [])
        if len(got) != 1:
            problems.append(f"{name} original {i}: stored {len(got)} times")
            continue
        o = got[0]
        if kind not in [o["meta"].get("journal")] + o["meta"].get("journal_seen", []):
            problems.append(f"{name}: journal kind {o['meta'].get('journal')}, want {kind}")
        if kind != "plain":
            want = sorted(re.findall(r"^rcpt: (\S+) (\S+)", text, re.M))
            have = sorted((r["type"], r["address"]) for r in
                          o["meta"].get("envelope", {}).get("recipients", []))
            # arrivals of the same original merge their envelopes
            if not {(t, a.lower()) for t, a in want} <= {(t, a.lower()) for t, a in have}:
                problems.append(f"{name}: recipients {have}, want {want}")
            for line in re.findall(r"^rcpt: .*", text, re.M):
                for ann in ("expanded", "forwarded"):
                    m = re.search(ann + r"[=:]\s*(\S+)", line)
                    if m and not any(r.get(ann + "_from") for r in
                                     o["meta"]["envelope"]["recipients"]):
                        problems.append(f"{name}: {ann} annotation lost")
            if i > 0 and "linked" not in o["flags"]:
                problems.append(f"{name} original {i}: not flagged linked")
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([ctl, "-d", data, "get", "--tenant", tenant, "--out", d,
                                o["id"]], capture_output=True)
            back = open(os.path.join(d, o["id"] + ".eml"), "rb").read() if r.returncode == 0 else b""
            if hashlib.sha256(back).hexdigest() != sha:
                problems.append(f"{name} original {i}: get returned other bytes")
for p in problems:
    print(p)
print(f"{checked} originals checked, {len(problems)} problems")
sys.exit(1 if problems or checked < 10 else 0)
