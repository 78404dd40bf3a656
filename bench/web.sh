#!/usr/bin/env bash
# bench/web - the search API under load: wrk with 50 connections, each
# request on one of 50 signed-in sessions, against archived's console
# (HTTPS, as deployed, and plain HTTP on loopback), on the sample corpus;
# in the same run the same query through the C search API (no HTTP) with
# as many threads as the server has, and as whole `archivectl search`
# commands.  Prints requests/s and p99.
#   bench/web.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
SECS=${2:-10}
Q=${BENCH_QUERY:-linux kernel}
PW=Bench-passw0rd-1
. "$ROOT/bench/lib.sh"
bench_init web
$CTL tenant add bench --journal-address journal@bench.example >/dev/null
echo "$PW" | $CTL user add --tenant bench --role officer reader >/dev/null
mkdir -p "$W/corpus"
tar --zstd -xf "$ROOT/../shared/corpus/sample.tar.zst" -C "$W/corpus"
$CTL import --tenant bench "$W/corpus" 2>/dev/null | tail -1
n=$("$B/tests/tools/index_tenant" "$W/data" bench)
echo "indexed $n messages"
bench_tls_cert
sed -i 's/^smtp_listen = .*/smtp_listen = 127.0.0.1:0/; s/^web_listen = .*/web_listen = 127.0.0.1:0/' \
  "$W/data/archived.conf"
threads=$(sed -n 's/^web_threads = //p' "$W/data/archived.conf")
qenc=$(python3 -c "import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1]))" "$Q")

run() {   # run tls|plain
  local scheme=https
  if [ "$1" = plain ]; then
    sed -i 's/^web_tls = .*/web_tls = no/' "$W/data/archived.conf"; scheme=http
  else
    sed -i 's/^web_tls = .*/web_tls = yes/' "$W/data/archived.conf"
  fi
  : >"$W/archived.log"
  bench_archived_start web
  URL=$scheme://127.0.0.1:$PORT
  : >"$W/cookies.lua"
  echo "cookies = {" >>"$W/cookies.lua"
  for i in $(seq 50); do
    c=$(bench_signin "$URL" bench reader "$PW")
    echo "  \"$c\"," >>"$W/cookies.lua"
  done
  cat >>"$W/cookies.lua" <<LUA
}
local i = 0
request = function()
  i = i % #cookies + 1
  return wrk.format("GET", "/api/v1/search?limit=25&q=$qenc" .. (os.getenv("SNIP") or ""),
    { ["Cookie"] = cookies[i] })
end
LUA
  for snip in "" "&snippets=0"; do
    SNIP=$snip wrk -t 2 -c 50 -d "${SECS}s" --latency -s "$W/cookies.lua" "$URL" >"$W/wrk.out" 2>&1
    rps=$(sed -n 's/^Requests\/sec: *//p' "$W/wrk.out")
    p99=$(sed -n 's/^ *99% *//p' "$W/wrk.out")
    p50=$(sed -n 's/^ *50% *//p' "$W/wrk.out")
    non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$W/wrk.out")
    printf '%-5s %-13s 50 conns/sessions: %8s req/s  p50 %8s  p99 %8s  non-2xx %s\n' \
      "$1" "${snip:-snippets}" "$rps" "$p50" "$p99" "${non2xx:-0}"
  done
  kill "$APID"; wait "$APID" 2>/dev/null || true
}
echo "query: $Q (25 rows a page)"
run tls
run plain
printf 'C API %-13s %s threads:         ' "no HTTP" "$threads"
"$B/bench/search_api" "$W/data" bench "$Q" "$threads" "$SECS" 25
printf 'C API %-13s 50 threads:        ' "no HTTP"
"$B/bench/search_api" "$W/data" bench "$Q" 50 "$SECS" 25
# the same query as a whole archivectl search command (a process each:
# open, key derivation, every shard, the audited log entry), one at a time
python3 - "$B/tools/archivectl" "$W/data" "$Q" "$SECS" <<'PY'
import subprocess, sys, time
ctl, data, q, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
lat, t0 = [], time.time()
while time.time() - t0 < secs:
    t = time.time()
    subprocess.run([ctl, "-d", data, "search", "--tenant", "bench", "--limit", "25", q],
                   check=True, stdout=subprocess.DEVNULL)
    lat.append(time.time() - t)
lat.sort()
print(f"archivectl search (no HTTP) 1 process at a time: {len(lat)/(time.time()-t0):8.1f} req/s"
      f"  p50 {lat[len(lat)//2]*1000:7.1f}ms  p99 {lat[min(len(lat)-1, len(lat)*99//100)]*1000:7.1f}ms")
PY
