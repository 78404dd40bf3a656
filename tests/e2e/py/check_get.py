#!/usr/bin/env python3
"""Check that `archivectl get` returns, for every corpus message, exactly
the bytes that were imported, and that every message is stored once.
Usage: check_get.py ARCHIVECTL DATADIR TENANT CORPUSDIR [EVERY]
With EVERY, only every EVERY-th message is fetched (all are counted)."""
import hashlib, json, os, subprocess, sys
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

def get(item):
    sha, (name, raw) = item
    ids = by_sha.get(sha)
    if not ids:
        return None
    r = subprocess.run([ctl, "-d", data, "get", "--tenant", tenant, ids[0]],
                       capture_output=True)
    if r.returncode != 0:
        return f"{name}: get failed: {r.stderr.decode(errors='replace').strip()}"
    if r.stdout != raw:
        return f"{name}: get returned {len(r.stdout)} bytes that differ"
    return None

with ThreadPoolExecutor(4) as ex:
    problems += [p for p in ex.map(get, list(files.items())[::every]) if p]
for p in problems[:20]:
    print(p)
print(f"{len(files)} messages checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
