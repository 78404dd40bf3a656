#!/usr/bin/env bash
# bench/search_web.sh BUILD DIR: bench/search.sh's 20 queries through
# archived's HTTPS API, on the archive a run kept (KEEP=1 BENCH_DIR=DIR
# bench/search.sh ...): archived started on DIR/data, one signed-in officer
# session, one keep-alive connection, 5 timed requests per query after a
# warm-up; limit 50, snippets off (notmuch prints none).  Prints the median
# per query and p50/p95/p99 over all requests.  Changes DIR/data's
# listeners to free loopback ports and adds a user and a certificate.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$PWD/${1:?usage: bench/search_web.sh BUILD DIR}
W=${2:?usage: bench/search_web.sh BUILD DIR}
PW=Bench-passw0rd-1
[ -f "$W/queries.txt" ] || { echo "$W has no queries.txt: run bench/search.sh with KEEP=1 BENCH_DIR=$W" >&2; exit 1; }
. bench/lib.sh
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null' EXIT
CTL="$B/tools/archivectl -d $W/data"
bench_keysvc_start
echo "$PW" | $CTL user add --tenant bench --role officer reader >/dev/null 2>&1 || true
bench_tls_cert
sed -i 's/^smtp_listen = .*/smtp_listen = 127.0.0.1:0/; s/^web_listen = .*/web_listen = 127.0.0.1:0/; s/^web_tls = .*/web_tls = yes/' "$W/data/archived.conf"
: >"$W/archived.log"
bench_archived_start web
URL=https://127.0.0.1:$PORT
# wait until archived is idle (indexer reconcile, jobs)
for _ in $(seq 120); do
  a=$(awk '{print $14+$15}' /proc/$APID/stat); sleep 1; b=$(awk '{print $14+$15}' /proc/$APID/stat)
  [ $((b - a)) -le 2 ] && break
done
cookie=$(bench_signin "$URL" bench reader "$PW")
python3 - "$URL" "$cookie" "$W/queries.txt" <<'PY'
import http.client, ssl, sys, time, urllib.parse, statistics, json
url, cookie, qf = sys.argv[1:4]
host, port = url.split("//")[1].split(":")
ctx = ssl._create_unverified_context()
c = http.client.HTTPSConnection(host, int(port), context=ctx)
qs = [l.rstrip("\n") for l in open(qf) if l.strip()]
allv, rows = [], []
for q in qs:
    v = []
    for i in range(6):
        path = "/api/v1/search?limit=50&snippets=0&q=" + urllib.parse.quote(q)
        s = time.monotonic()
        c.request("GET", path, headers={"Cookie": cookie})
        r = c.getresponse(); body = r.read()
        ms = (time.monotonic() - s) * 1000
        if r.status != 200: sys.exit(f"{q}: HTTP {r.status} {body[:200]}")
        if i: v.append(ms)
    total = json.loads(body).get("total")
    allv += v; rows.append((q, total, statistics.median(v)))
def pct(v, p):
    v = sorted(v); return v[min(len(v)-1, int(round(p/100*(len(v)-1))))]
for q, t, m in rows: print(f"| `{q}` | {t:,} | {m:.1f} |")
print(f"| **p50 / p95 / p99** | | {pct(allv,50):.1f} / {pct(allv,95):.1f} / {pct(allv,99):.1f} |")
PY
