#!/usr/bin/env bash
# bench/ingest - SMTP ingest: Postfix's smtp-source drives archived (fsync
# before every 250) and Postfix's smtp-sink (this machine's SMTP ceiling,
# storing nothing) in the same run, 10 KB messages, 8 and 32 sessions; then
# the sample corpus end to end.  Prints messages/s to 250 and to catalog
# commit, p50/p99 of the 250 (archived's own per-message log: end of DATA
# to 250), archived's peak RSS.
#   bench/ingest.sh [BUILD_DIR] [MESSAGES]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
N=${2:-5000}
PATH=$PATH:/usr/sbin
. "$ROOT/bench/lib.sh"
bench_init ingest
$CTL tenant add bench --journal-address journal@bench.example >/dev/null
bench_archived_start
SINKPORT=$((20000 + RANDOM % 20000))
smtp-sink -u nobody 127.0.0.1:$SINKPORT 256 >/dev/null 2>&1 & pids+=($!)
sleep 0.3

now() { date +%s.%N; }
total=0
for s in 8 32; do
  t0=$(now); smtp-source -c -s $s -l 10240 -m "$N" -t journal@bench.example \
      -f bench@example.org 127.0.0.1:$SINKPORT >/dev/null; t1=$(now)
  sink=$(python3 -c "print($N / ($t1 - $t0))")
  lines0=$(wc -l <"$W/archived.log")
  t0=$(now); smtp-source -c -s $s -l 10240 -m "$N" -t journal@bench.example \
      -f bench@example.org 127.0.0.1:$PORT >/dev/null; t1=$(now)
  total=$((total + N))
  # smtp-source sends the same bytes each time: dedup keeps one object per
  # run, so "committed" is counted from the pipeline's log lines
  bench_wait_committed "$N" "$lines0" 60
  t2=$(now)
  bench_wait_indexed   # the next smtp-sink run gets the machine alone
  tail -n +"$lines0" "$W/archived.log" | python3 -c "
import re,sys
d=sorted(int(m.group(1)) for l in sys.stdin if 'event=message result=250' in l
         for m in [re.search(r'dur_ms=(\d+)', l)] if m)
n=$N; a=n/($t1-$t0); c=n/($t2-$t0); s=$sink
print(f'{$s:2d} sessions: archived {a:7.0f} msg/s to 250, {c:7.0f} msg/s to catalog commit,'
      f' 250 latency p50 {d[len(d)//2]} ms p99 {d[len(d)*99//100]} ms'
      f' | smtp-sink {s:7.0f} msg/s | archived/smtp-sink {a/s:.2f}')"
done
echo "archived peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$APID/status)"

# the sample corpus end to end, 8 client threads
tar --zstd -xf "$ROOT/../shared/corpus/sample.tar.zst" -C "$W"
$CTL tenant add corpus --journal-address journal@corpus.example >/dev/null
lines0=$(($(wc -l <"$W/archived.log") + 1))
python3 "$ROOT/bench/send_corpus.py" "$PORT" "$W/sample" "$W/t0"
t0=$(cat "$W/t0")
bench_wait_committed 2865 "$lines0" 60; n=$COMMITTED
python3 -c "import time; t=time.time()-$t0; print(f'corpus: {$n} messages in the catalog {t:.2f} s after the first was sent ({$n/t:.0f} msg/s end to end)')"
