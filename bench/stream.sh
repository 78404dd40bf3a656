#!/usr/bin/env bash
# bench/stream - sustained SMTP ingest at volume (issue 15): the same
# generated messages (bench/mailgen.h: unique, sizes drawn from the sample
# corpus, a few of 1-10 MB) sent by the same client (bench/smtpload) to
# Postfix's smtp-sink (this machine's SMTP ceiling, storing nothing) and
# to archived (a fresh archive per run), once per session count.
#
#   bench/stream.sh [BUILD_DIR] [MESSAGES] [SESSIONS...]
#     defaults: build 200000 "8 32"; smoke: bench/stream.sh build 3000 4
#   env: SEED (1)            generator seed
#        OUT (/var/tmp/ar-bench-results/stream-DATE)  where results go
#        CLIENT_LIMIT (3600) seconds a client run may take at most
#        DRAIN_LIMIT (900)   seconds to wait after the last 250 for the
#                            catalog and the index
#        RESEND (1)          the client resends what got no 250 (4xx
#                            back-pressure, as an MTA would); 0: once only
#        BENCH_CONF          lines added to archived.conf (bench/lib.sh)
#
# Prints per run: the 250 rate over the whole run (both targets) and the
# ratio archived/smtp-sink (goal >= 0.5); the 250 rate per 10-second
# window (min / median / max; CSV per target); 250 latency p50/p99 (end
# of data to reply, client side); 4xx / connection errors; the time from
# the last 250 until every acknowledged message is in the catalog and
# until it is in the index (goal <= 60 s); the largest backlog seen
# (`waiting=` of the pipeline's backlog lines, and acknowledged minus
# committed from the log); archived's peak RSS (VmHWM).  Files in OUT:
# sink-S.csv / archived-S.csv (10-second windows of the client),
# watch-S.csv (every second: acks, committed, indexed, backlog, RSS),
# *.txt (the client's output), log-S.txt (archived's warnings and its
# last lines), stream-S.png (with gnuplot: 250/s of both and the backlog).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd)
N=${2:-200000}
shift $(($# > 2 ? 2 : $#))
SESSIONS=${*:-8 32}
SEED=${SEED:-1}
OUT=${OUT:-/var/tmp/ar-bench-results/stream-$(date +%Y%m%d-%H%M%S)}
CLIENT_LIMIT=${CLIENT_LIMIT:-3600}
DRAIN_LIMIT=${DRAIN_LIMIT:-900}
RESEND=${RESEND:-1}
PATH=$PATH:/usr/sbin
. "$ROOT/bench/lib.sh"
mkdir -p "$OUT"
bench_init stream
bench_corpus
resend=; [ "$RESEND" = 1 ] && resend=--resend
SINKPORT=$(bench_free_port)
smtp-sink -u nobody 127.0.0.1:$SINKPORT 256 >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$SINKPORT) 2>/dev/null && break; sleep 0.05; done
$MAILGEN --seed "$SEED" --count "$N" | tee "$OUT/messages.txt"
echo "uptime: $(uptime)" | tee -a "$OUT/messages.txt"

result() { sed -n 's/^smtpload-result //p' "$1"; }

for s in $SESSIONS; do
  echo "== $N messages, $s sessions"
  $SMTPLOAD --port "$SINKPORT" --sessions "$s" --count "$N" --seed "$SEED" \
    --to journal@bench.example --label "smtp-sink-$s" --csv "$OUT/sink-$s.csv" \
    $resend --max-time "$CLIENT_LIMIT" | tee "$OUT/sink-$s.txt" || true

  bench_archive_fresh
  $CTL tenant add bench --journal-address journal@bench.example >/dev/null
  : >"$W/archived.log"
  rm -f "$W/target" "$W/archived.pid" "$W/watch.json"
  python3 "$ROOT/bench/logwatch.py" --log "$W/archived.log" --pid-file "$W/archived.pid" \
    --csv "$OUT/watch-$s.csv" --state "$W/watch.json" --target-file "$W/target" \
    --limit "$DRAIN_LIMIT" --ctl "$CTL" & WPID=$!; pids+=($WPID)
  # archived starts once the watcher reads the log (python can be slow to start)
  for _ in $(seq 600); do [ -f "$W/watch.json" ] && break; sleep 0.1; done
  bench_archived_start
  $SMTPLOAD --port "$PORT" --sessions "$s" --count "$N" --seed "$SEED" \
    --to journal@bench.example --label "archived-$s" --csv "$OUT/archived-$s.csv" \
    $resend --max-time "$CLIENT_LIMIT" | tee "$OUT/archived-$s.txt" || true
  result "$OUT/archived-$s.txt" | sed 's/.* acked=\([0-9]*\) .*/\1/' >"$W/target"
  wait $WPID || true
  grep -E ' (warn|error): ' "$W/archived.log" | head -200 >"$OUT/log-$s.txt" || true
  { echo "--- last lines"; tail -50 "$W/archived.log"; } >>"$OUT/log-$s.txt"
  bench_archived_stop
  cp "$W/watch.json" "$OUT/watch-$s.json"

  python3 - "$OUT" "$s" <<'EOF' | tee "$OUT/summary-$s.txt"
import csv, json, statistics, sys
out, s = sys.argv[1], sys.argv[2]
def res(path):
    for l in open(path):
        if l.startswith("smtpload-result "):
            return dict(kv.split("=", 1) for kv in l.split()[1:])
    return None
def windows(path):
    rows = list(csv.DictReader(open(path)))
    # the last window is partial: leave it out of min/median unless alone
    full = [float(r["rate_per_s"]) for r in rows[:-1]] or [float(r["rate_per_s"]) for r in rows]
    return min(full), statistics.median(full), max(full), len(rows)
k, a = res(f"{out}/sink-{s}.txt"), res(f"{out}/archived-{s}.txt")
w = json.load(open(f"{out}/watch-{s}.json"))
kw, aw = windows(f"{out}/sink-{s}.csv"), windows(f"{out}/archived-{s}.csv")
ratio = float(a["rate"]) / float(k["rate"]) if float(k["rate"]) else 0
print(f"stream {s} sessions, {a['count']} messages:")
print(f"  smtp-sink: {float(k['rate']):.0f} msg/s to 250 over the whole run; per 10 s window "
      f"min {kw[0]:.0f} / median {kw[1]:.0f} / max {kw[2]:.0f}; 250 p50 {k['p50_ms']} ms, p99 {k['p99_ms']} ms")
print(f"  archived:  {float(a['rate']):.0f} msg/s to 250 over the whole run ({a['acked']} 250s in "
      f"{float(a['seconds']):.1f} s), archived/smtp-sink {ratio:.2f} (goal >= 0.50); per 10 s window "
      f"min {aw[0]:.0f} / median {aw[1]:.0f} / max {aw[2]:.0f} ({aw[3]} windows)")
print(f"  archived:  250 p50 {a['p50_ms']} ms, p90 {a['p90_ms']} ms, p99 {a['p99_ms']} ms, max {a['max_ms']} ms; "
      f"4xx {a['tempfail']}, 5xx {a['permfail']}, connection errors {a['conn_errors']}, "
      f"without a 250 at the end {a['unacked']}")
last = float(a["last_ack_epoch"])
def after(t):
    return f"{t - last:.1f} s" if t else f"NOT REACHED within {w['end_epoch'] - last:.0f} s"
print(f"  last 250 -> all {w['target']} in the catalog: {after(w['catalog_done_epoch'])} "
      f"(committed {w['committed']}); -> all in the index: {after(w['index_done_epoch'])} "
      f"(archivectl stats; the indexer's log said so {after(w['index_log_epoch'])}) (goal <= 60 s)")
mw = w["max_waiting"]
print(f"  largest backlog: pipeline waiting= {mw if mw is not None else 'n/a (no backlog line in the log)'}"
      f", oldest_age_s {w['max_oldest_age_s']}; acknowledged and not yet committed {w['max_gap']}")
print(f"  archived peak RSS (VmHWM): {w['vmhwm_kb'] / 1024 if w['vmhwm_kb'] else 0:.0f} MB")
EOF

  if command -v gnuplot >/dev/null; then
    t0=$(result "$OUT/archived-$s.txt" | sed 's/.* start_epoch=\([0-9.]*\) .*/\1/')
    waiting=   # the pipeline's backlog lines, when its log has them
    awk -F, 'NR > 1 && $7 != "" {f=1} END {exit !f}' "$OUT/watch-$s.csv" &&
      waiting=", \"$OUT/watch-$s.csv\" using (\$2-$t0):7 axes x1y2 with lines title \"archived: pipeline waiting= (right)\""
    gnuplot <<EOF || echo "(gnuplot failed: no plot)"
set terminal pngcairo size 1100,600
set output "$OUT/stream-$s.png"
set datafile separator ","
set key top left
set title "$N messages, $s sessions: 250/s per 10 s window (same client, same messages), and archived's backlog"
set xlabel "seconds since the first message"
set ylabel "250/s"
set y2label "messages"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set key autotitle columnhead
plot "$OUT/sink-$s.csv" using ((\$1+\$2)/2):4 with linespoints lw 2 pt 7 ps 0.6 title "smtp-sink 250/s", \
     "$OUT/archived-$s.csv" using ((\$1+\$2)/2):4 with linespoints lw 2 pt 7 ps 0.6 title "archived 250/s", \
     "$OUT/watch-$s.csv" using (\$2-$t0):6 axes x1y2 with lines title "archived: acknowledged, not in the catalog (right)" $waiting
EOF
  fi
done
echo "results in $OUT"
