#!/usr/bin/env python3
"""Check an export directory against the archive.
Usage: check_export.py ARCHIVECTL DATADIR TENANT EXPORTDIR N [mbox] [dat]
messages.csv parses with the csv module, one row per message (N rows),
every .eml has the SHA-256 and size the catalog lists (archivectl list),
every .eml is byte-identical to `archivectl get` (every Nth only with
AR_EXPORT_GET_EVERY=N: each get is an audited read), every attachment path
exists, the optional MBOX holds N messages and the DAT load file N rows
with the Concordance delimiters."""
import csv, mailbox, os, subprocess, sys, tempfile

ctl, data, tenant, exp, n = sys.argv[1:6]
n = int(n)
extra = sys.argv[6:]
problems = []
with open(os.path.join(exp, "messages.csv"), newline="",
          encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
if len(rows) != n:
    problems.append(f"messages.csv has {len(rows)} rows, expected {n}")
cols = ["id", "date", "from", "to", "cc", "bcc", "subject", "message_id",
        "size", "sha256", "attachment_names", "eml_path", "attachment_paths"]
if rows and list(rows[0].keys()) != cols:
    problems.append(f"columns {list(rows[0].keys())}")
ids = [r["id"] for r in rows]
if len(set(ids)) != len(ids):
    problems.append("an id appears twice")
import hashlib, json
listed = {o["id"]: o for o in json.loads(subprocess.run(
    [ctl, "-d", data, "--json", "list", "--tenant", tenant], check=True,
    capture_output=True).stdout)}
if set(listed) != set(ids):
    problems.append(f"csv ids differ from the tenant's {len(listed)} objects")
sample = ids[::int(os.environ.get("AR_EXPORT_GET_EVERY", "1"))]
out = tempfile.mkdtemp(dir=os.environ.get("TMPDIR", "/tmp"))
for i in range(0, len(sample), 500):
    r = subprocess.run([ctl, "-d", data, "get", "--tenant", tenant, "--out",
                        out] + sample[i:i + 500], capture_output=True)
    if r.returncode:
        problems.append("get failed: " + r.stderr.decode(errors="replace"))
        break
natt = 0
try_ids = set(sample)
for r in rows:
    a = open(os.path.join(exp, r["eml_path"]), "rb").read()
    o = listed.get(r["id"], {})
    if hashlib.sha256(a).hexdigest() != o.get("sha256") or \
            r["sha256"] != o.get("sha256") or len(a) != o.get("size"):
        problems.append(f"{r['eml_path']}: not the stored message")
    if r["id"] in try_ids:
        try:
            b = open(os.path.join(out, r["id"] + ".eml"), "rb").read()
        except OSError:
            b = None
        if a != b:
            problems.append(f"{r['eml_path']} differs from archivectl get")
    if int(r["size"]) != len(a):
        problems.append(f"{r['id']}: size column {r['size']} != {len(a)}")
    paths = [p for p in r["attachment_paths"].split("; ") if p]
    names = [p for p in r["attachment_names"].split("; ") if p]
    natt += len(paths)
    if len(paths) != len(names):
        problems.append(f"{r['id']}: {len(names)} names, {len(paths)} paths")
    for p in paths:
        if not os.path.isfile(os.path.join(exp, p)):
            problems.append(f"{p} missing")
if natt == 0:
    problems.append("no attachment exported from the corpus")
if "mbox" in extra:
    m = mailbox.mbox(os.path.join(exp, "messages.mbox"))
    if len(m) != n:
        problems.append(f"messages.mbox holds {len(m)} messages, not {n}")
if "dat" in extra:
    raw = open(os.path.join(exp, "messages.dat"), "rb").read().decode()
    lines = raw.split("\r\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) != n + 1:
        problems.append(f"messages.dat has {len(lines) - 1} rows")
    for ln in lines:
        fields = ln.split("\x14")
        if len(fields) != 13 or not all(
                x.startswith("\u00fe") and x.endswith("\u00fe") and
                len(x) >= 2 for x in fields):
            problems.append("bad DAT row: " + ln[:80])
            break
    if lines and lines[0].split("\x14")[0] != "\u00feBEGDOC\u00fe":
        problems.append("DAT header")
for p in problems[:20]:
    print(p)
print(f"{len(rows)} rows, {natt} attachments, {len(problems)} problems")
sys.exit(1 if problems else 0)
