#!/usr/bin/env bash
# bench/backlog - backlog recovery (issue 15): MESSAGES generated messages
# (bench/mailgen.h) acknowledged while the drain is stopped
# (pipeline_workers = 0: spool only), then archived restarted with its
# pipeline: how fast the backlog drains to the catalog and to the index,
# archived's peak RSS, and a new stream (STREAM messages, SESSIONS
# sessions) sent meanwhile, whose 250 latency is compared with the same
# stream (the same messages) sent to an idle archived first.
#
#   bench/backlog.sh [BUILD_DIR] [MESSAGES] [STREAM] [SESSIONS]
#     defaults: build 100000 20000 8; smoke: bench/backlog.sh build 3000 1000 4
#   env: SEED (1), OUT (/var/tmp/ar-bench-results/backlog-DATE),
#        CLIENT_LIMIT (3600 s a client run may take), DRAIN_LIMIT (1800 s
#        the drain may take), STREAM_AFTER (1000: the stream starts once
#        this many backlog messages are committed, i.e. the drain runs)
#
# Phases, each on a fresh archive:
#   1. idle: STREAM messages (indices MESSAGES.. of the generator) to an
#      idle archived with its pipeline on; their 250 p50/p99; drained.
#   2. fill: messages 0..MESSAGES-1 with pipeline_workers = 0, every one
#      acknowledged (the client resends what got no 250); archived stopped;
#      the spool counted once (archivectl queue).
#   3. drain: archived restarted with the pipeline on (timed from its
#      start); once STREAM_AFTER messages are committed, the same STREAM
#      messages as in phase 1 are sent; until everything (backlog +
#      stream) is in the catalog and the index.
# Prints the fill rate, the backlog (messages, MB), the drain rate to the
# catalog and to the index (backlog + stream, from archived's start),
# commits per 10 s (min / median / max), the stream's 250 p50/p99 during
# the drain against phase 1, the largest backlog line, peak RSS of each
# phase.  Files in OUT: the clients' output and CSVs, watch-*.csv (every
# second: acks, committed, indexed, backlog, RSS), log-*.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd)
N=${2:-100000}
STREAM=${3:-20000}
SESSIONS=${4:-8}
SEED=${SEED:-1}
OUT=${OUT:-/var/tmp/ar-bench-results/backlog-$(date +%Y%m%d-%H%M%S)}
CLIENT_LIMIT=${CLIENT_LIMIT:-3600}
DRAIN_LIMIT=${DRAIN_LIMIT:-1800}
STREAM_AFTER=${STREAM_AFTER:-1000}
. "$ROOT/bench/lib.sh"
mkdir -p "$OUT"
bench_init backlog
bench_corpus
$MAILGEN --seed "$SEED" --count "$N" | tee "$OUT/messages.txt"
echo "uptime: $(uptime)" | tee -a "$OUT/messages.txt"

result() { sed -n 's/^smtpload-result //p' "$1"; }
field() { result "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# watch NAME TARGET_FILE: logwatch.py on archived's log (fresh per phase)
watch() {  # started before archived: every commit line is seen as it comes
  rm -f "$W/archived.pid" "$OUT/watch-$1.json"
  python3 "$ROOT/bench/logwatch.py" --log "$W/archived.log" --pid-file "$W/archived.pid" \
    --csv "$OUT/watch-$1.csv" --state "$OUT/watch-$1.json" --target-file "$2" \
    --limit "$DRAIN_LIMIT" --ctl "$CTL" & WPID=$!; pids+=($WPID)
  for _ in $(seq 600); do [ -f "$OUT/watch-$1.json" ] && break; sleep 0.1; done
}
keep_log() {
  { grep -E ' (warn|error): ' "$W/archived.log" | head -200 || true
    echo "--- last lines"; tail -50 "$W/archived.log"; } >"$OUT/log-$1.txt"
}
stream() {  # stream LABEL: the STREAM messages on $PORT
  $SMTPLOAD --port "$PORT" --sessions "$SESSIONS" --first "$N" --count "$STREAM" \
    --seed "$SEED" --label "$1" --csv "$OUT/$1.csv" --resend \
    --max-time "$CLIENT_LIMIT" | tee "$OUT/$1.txt" || true
}

echo "== 1. idle: $STREAM messages, $SESSIONS sessions, to an idle archived"
bench_archive_fresh
$CTL tenant add bench --journal-address journal@bench.example >/dev/null
: >"$W/archived.log"; rm -f "$W/target"
watch idle "$W/target"
bench_archived_start
stream idle
field "$OUT/idle.txt" acked >"$W/target"
wait $WPID || true
keep_log idle
bench_archived_stop

echo "== 2. fill: $N messages, $SESSIONS sessions, pipeline_workers = 0"
BENCH_CONF="${BENCH_CONF:+$BENCH_CONF
}pipeline_workers = 0" bench_archive_fresh
$CTL tenant add bench --journal-address journal@bench.example >/dev/null
: >"$W/archived.log"
bench_archived_start
$SMTPLOAD --port "$PORT" --sessions "$SESSIONS" --count "$N" --seed "$SEED" \
  --label fill --csv "$OUT/fill.csv" --resend --max-time "$CLIENT_LIMIT" \
  | tee "$OUT/fill.txt" || true
fill_rss=$(awk '/VmHWM/ {print $2}' /proc/$APID/status)
keep_log fill
bench_archived_stop
queued=$($CTL --json queue | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
spool_mb=$(du -sm "$W/data/spool" | cut -f1)
echo "backlog: $queued messages in the spool ($spool_mb MB sealed); archived peak RSS while filling $((fill_rss / 1024)) MB"

echo "== 3. drain: archived restarted with its pipeline; $STREAM messages sent meanwhile"
sed -i '/^pipeline_workers = 0$/d' "$W/data/archived.conf"
: >"$W/archived.log"; rm -f "$W/target"
watch drain "$W/target"
t0=$(date +%s.%N)
bench_archived_start
t_ready=$(date +%s.%N)
after=$((STREAM_AFTER < queued ? STREAM_AFTER : queued))
for _ in $(seq 600); do   # at most 120 s for the drain to start
  c=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["committed"])' \
      "$OUT/watch-drain.json" 2>/dev/null || echo 0)
  [ "$c" -ge "$after" ] && break
  sleep 0.2
done
stream during-drain
echo $((queued + $(field "$OUT/during-drain.txt" acked))) >"$W/target"
wait $WPID || true
keep_log drain
bench_archived_stop

python3 - "$OUT" "$t0" "$queued" "$spool_mb" "$fill_rss" "$t_ready" <<'EOF' | tee "$OUT/summary.txt"
import csv, json, statistics, sys
out, t0, queued, mb, fill_rss = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t_ready = float(sys.argv[6])
def res(name):
    for l in open(f"{out}/{name}.txt"):
        if l.startswith("smtpload-result "):
            return dict(kv.split("=", 1) for kv in l.split()[1:])
f, i, d = res("fill"), res("idle"), res("during-drain")
wi, wd = json.load(open(f"{out}/watch-idle.json")), json.load(open(f"{out}/watch-drain.json"))
print(f"fill (pipeline off): {f['acked']} of {f['count']} acknowledged at {float(f['rate']):.0f} msg/s, "
      f"250 p50 {f['p50_ms']} ms p99 {f['p99_ms']} ms; archived peak RSS {fill_rss // 1024} MB")
print(f"backlog: {queued} messages in the spool, {mb} MB")
total = wd["target"]
def rate(t, what):
    if not t:
        return f"NOT REACHED: {wd[what]} of {total} after {wd['end_epoch'] - t0:.0f} s"
    return f"{total} in {t - t0:.1f} s: {total / (t - t0):.0f} msg/s"
fc = wd["first_commit_epoch"]
print(f"drain: archived's SMTP ready {t_ready - t0:.1f} s after its start, its first commit at "
      f"{fc - t0 if fc else float('nan'):.1f} s")
print(f"drain (backlog + stream, from archived's start): to the catalog {rate(wd['catalog_done_epoch'], 'committed')}; "
      f"to the index {rate(wd['index_done_epoch'], 'indexed')}")
rows = list(csv.DictReader(open(f"{out}/watch-drain.csv")))
per10 = [int(rows[k + 10]["committed"]) - int(rows[k]["committed"]) for k in range(0, len(rows) - 10, 10)]
per10 = [x / 10 for x in per10 if x > 0] or [0]
print(f"drain: commits per second over 10 s windows (while committing): min {min(per10):.0f} / "
      f"median {statistics.median(per10):.0f} / max {max(per10):.0f}")
mw = wd["max_waiting"]
print(f"drain: largest backlog line waiting= {mw if mw is not None else 'n/a (no backlog line in the log)'}, "
      f"oldest_age_s {wd['max_oldest_age_s']}; archived peak RSS {(wd['vmhwm_kb'] or 0) // 1024} MB "
      f"(idle phase {(wi['vmhwm_kb'] or 0) // 1024} MB)")
for name, r in (("an idle archived", i), ("archived during the drain", d)):
    print(f"stream of {r['count']} messages, {r['sessions']} sessions, to {name}: {float(r['rate']):.0f} msg/s, 250 p50 {r['p50_ms']} ms, "
          f"p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms; 4xx {r['tempfail']}, unacked {r['unacked']}")
pi, pd = float(i["p99_ms"]), float(d["p99_ms"])
print(f"stream during the drain: p99 {pd / pi if pi else 0:.2f}x the idle p99, rate {float(d['rate']) / float(i['rate']) if float(i['rate']) else 0:.2f}x")
EOF
echo "results in $OUT"
