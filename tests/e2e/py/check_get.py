#!/usr/bin/env python3
"""Check that `archivectl get` returns, for every corpus message, exactly
the bytes that were imported, and that every message is stored once.
Usage: check_get.py ARCHIVECTL DATADIR TENANT CORPUSDIR [EVERY]
With EVERY, only every EVERY-th message is fetched (all are counted)."""
import hashlib, json, os, shutil, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor

ctl, data, tenant, corpus = sys.argv[1:5]
every = int(sys.argv[5]) if len(sys.argv) > 5 else 1
objs = json.loads(subprocess.run([ctl, "-d", data, "--json", "list",
                                  "--tenant", tenant], check=True,
                                 capture_output=True).stdout)
by_sha = {}
for o in objs:
    by_sha.setdefault(o["sha256"], []).append(o["id"])
files = {}
for name in sorted(os.listdir(corpus)):
    if name.endswith(".eml"):
        raw = open(os.path.join(corpus, name), "rb").read()
        files.setdefault(hashlib.sha256(raw).hexdigest(), (name, raw))
problems = []
for sha, (name, _) in files.items():
    ids = by_sha.get(sha, [])
    if len(ids) != 1:
        problems.append(f"{name}: stored {len(ids)} times")
if len(objs) != len(files):
    problems.append(f"{len(objs)} objects for {len(files)} distinct messages")

todo = list(files.items())[::every]

def get(batch):
    """Fetch a batch of messages with one archivectl get --out."""
    out = tempfile.mkdtemp(dir=os.environ.get("TMPDIR", "/tmp"))
    try:
        ids = [by_sha[sha][0] for sha, _ in batch if sha in by_sha]
        r = subprocess.run([ctl, "-d", data, "get", "--tenant", tenant,
                            "--out", out] + ids, capture_output=True)
        if r.returncode != 0:
            return [f"get failed: {r.stderr.decode(errors='replace').strip()}"]
        bad = []
        for sha, (name, raw) in batch:
            if sha not in by_sha:
                continue
            back = open(os.path.join(out, by_sha[sha][0] + ".eml"), "rb").read()
            if back != raw:
                bad.append(f"{name}: get returned {len(back)} bytes that differ")
        return bad
    finally:
        shutil.rmtree(out)

batches = [todo[i:i + 200] for i in range(0, len(todo), 200)]
with ThreadPoolExecutor(2) as ex:
    for bad in ex.map(get, batches):
        problems += bad
for p in problems[:20]:
    print(p)
print(f"{len(files)} messages checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
