#!/usr/bin/env python3
"""Second half of bench/search.sh: 20 queries, each run 5 times against
archived (archivectl search, exact total + first page of 50) and notmuch
(notmuch count + notmuch search --output=messages --limit=50), then one
table of figures.  Arguments come from bench/search.sh."""
import json, shlex, statistics, subprocess, sys, time

ctl = shlex.split(sys.argv[1])
tenant, work, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
t0, t1, t2, t3 = map(float, sys.argv[5:9])
ar_idx, nm_idx, nm_n = int(sys.argv[9]), int(sys.argv[10]), int(sys.argv[11])
rare = "uq%d" % (n * 2 // 3)

QUERIES = [  # (kind, archived, notmuch)
    ("word", "energy", "energy"),
    ("word", "kernel", "kernel"),
    ("word", "meeting", "meeting"),
    ("common word", "the", "the"),
    ("rare word", rare, rare),
    ("rare word", "aaaticketsource", "aaaticketsource"),
    ("word", "kw42", "kw42"),
    ("phrase", '"please let me know"', '"please let me know"'),
    ("phrase", '"conference call"', '"conference call"'),
    ("prefix", "contra*", "contra*"),
    ("prefix", "pipel*", "pipel*"),
    ("address", "from:@enron.com", "from:enron.com"),
    ("address", "from:torvalds@linux-foundation.org",
     "from:torvalds@linux-foundation.org"),
    ("address", "to:@vger.kernel.org", "to:vger.kernel.org"),
    ("field", "subject:patch", "subject:patch"),
    ("date range", "after:2001-01-01 before:2002-01-01",
     "date:2001-01-01..2001-12-31"),
    ("word + date", "energy after:2010-01-01", "energy and date:2010-01-01.."),
    ("boolean", "energy -gas", "energy and not gas"),
    ("boolean", "kernel OR pipeline", "kernel or pipeline"),
    ("boolean", "(meeting OR call) from:@enron.com -subject:re",
     "(meeting or call) and from:enron.com and not subject:re"),
]
RUNS = 5


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


ar_in, ar_cmd, nm_cmd, rows = [], [], [], []
for kind, aq, nq in QUERIES:
    a_in, a_cmd, n_cmd = [], [], []
    for _ in range(RUNS):
        s = time.monotonic()
        r = subprocess.run(ctl + ["--json", "search", "--tenant", tenant,
                                  "--limit", "50", aq],
                           capture_output=True, text=True, check=True)
        a_cmd.append((time.monotonic() - s) * 1000)
        j = json.loads(r.stdout)
        a_in.append(j["elapsed_ms"])
        s = time.monotonic()
        c = subprocess.run(["notmuch", "count", nq], capture_output=True,
                           text=True, check=True)
        subprocess.run(["notmuch", "search", "--output=messages",
                        "--limit=50", nq], capture_output=True, check=True)
        n_cmd.append((time.monotonic() - s) * 1000)
    ar_in += a_in
    ar_cmd += a_cmd
    nm_cmd += n_cmd
    rows.append((kind, aq, j["total"], statistics.median(a_in),
                 statistics.median(a_cmd), nq, int(c.stdout),
                 statistics.median(n_cmd)))

# warm: one process, the index opened once (what archived and the web
# console see); RUNS runs of each query after one warm-up run
import os
lat = os.path.join(os.path.dirname(ctl[0]), "..", "bench", "search_latency")
tid = json.loads(subprocess.run(ctl + ["--json", "tenant", "show", tenant],
                                capture_output=True, text=True,
                                check=True).stdout)["id"]
with open(work + "/queries.txt", "w") as f:
    f.write("".join(aq + "\n" for _, aq, _ in QUERIES))
with open(work + "/nm_queries.txt", "w") as f:     # bench/notmuch_warm.py
    f.write("".join(nq + "\n" for _, _, nq in QUERIES))
out = subprocess.run([lat, work + "/keys/keysvc.sock", work + "/data", tid,
                      work + "/queries.txt", str(RUNS + 1)],
                     capture_output=True, text=True, check=True).stdout
ar_warm, warm_q = [], {}
for i, l in enumerate(out.splitlines()):
    if i % (RUNS + 1) == 0:
        continue                       # the warm-up run
    ms, _, q = l.split("\t", 2)
    ar_warm.append(float(ms))
    warm_q.setdefault(q, []).append(float(ms))

ar_rate = n / (t1 - t0)
nm_rate = nm_n / (t3 - t2)
print()
print("| query | archived total | archived ms (warm / cold in process / "
      "command) | notmuch query | notmuch total | notmuch ms (count + "
      "search commands) |")
print("|---|---|---|---|---|---|")
for kind, aq, at, ai, ac, nq, nt, nc in rows:
    print(f"| {kind}: `{aq}` | {at:,} | "
          f"{statistics.median(warm_q[aq]):.1f} / {ai:.1f} / {ac:.0f} | "
          f"`{nq}` | {nt:,} | {nc:.0f} |")
print()
print("| | archived | notmuch |")
print("|---|---|---|")
print(f"| messages indexed | {n:,} | {nm_n:,} |")
print(f"| indexing time | {t1 - t0:.0f} s | {t3 - t2:.0f} s |")
print(f"| indexing rate | {ar_rate:,.0f} msg/s | {nm_rate:,.0f} msg/s |")
print(f"| index size | {ar_idx / 2**20:,.0f} MiB | {nm_idx / 2**20:,.0f} MiB |")
for p in (50, 95, 99):
    print(f"| p{p} latency | {pct(ar_warm, p):.1f} ms warm, "
          f"{pct(ar_in, p):.1f} ms cold in process, "
          f"{pct(ar_cmd, p):.0f} ms as a command | {pct(nm_cmd, p):.0f} ms "
          f"as commands |")
json.dump({"n": n, "archived_rate": ar_rate, "notmuch_rate": nm_rate,
           "archived_index_bytes": ar_idx, "notmuch_index_bytes": nm_idx,
           "rows": rows}, open(work + "/results.json", "w"), indent=1)
