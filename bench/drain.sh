#!/usr/bin/env bash
# bench/drain - how fast the pipeline drains a full spool into the catalog.
# The sample corpus is sent over SMTP to archived running spool-only
# (pipeline_workers = 0); archived is restarted with the pipeline on and
# timed from its start until the last message is committed.  Prints
# messages/s and MB/s to catalog commit and archived's peak RSS.
#   bench/drain.sh [BUILD_DIR] [WORKERS] [BATCH]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
WORKERS=${2:-8}
BATCH=${3:-64}
. "$ROOT/bench/lib.sh"
bench_init drain
echo "pipeline_workers = 0" >>"$W/data/archived.conf"
$CTL tenant add corpus --journal-address journal@corpus.example >/dev/null
tar --zstd -xf "$ROOT/../shared/corpus/sample.tar.zst" -C "$W"

bench_archived_start
python3 "$ROOT/bench/send_corpus.py" "$PORT" "$W/sample" >/dev/null
kill $APID; wait $APID || true
spooled=$($CTL --json queue | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
mb=$(du -sm "$W/data/spool" | cut -f1)
sed -i "s/^pipeline_workers = 0/pipeline_workers = $WORKERS\npipeline_batch = $BATCH/" "$W/data/archived.conf"
t0=$(date +%s.%N)
: >"$W/archived.log"
bench_archived_start
if [ -n "${PERF:-}" ]; then    # PERF=file.data: profile the drain (PERFARGS: perf record options, default -g)
  perf record ${PERFARGS:--g} -o "$PERF" -p $APID >/dev/null 2>&1 & PERFPID=$!
elif [ -n "${STRACE:-}" ]; then  # STRACE=file: syscall summary of the drain
  strace -c -f -w -o "$STRACE" -p $APID 2>/dev/null & PERFPID=$!
fi
bench_wait_committed "$spooled"; n=$COMMITTED
t1=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2, $3}' /proc/$APID/status)
cpuof() { awk -v hz="$(getconf CLK_TCK)" '{printf "user %.2f s, system %.2f s", $14/hz, $15/hz}' /proc/$1/stat; }
cpu="$(cpuof $APID); keysvc CPU (whole run) $(cpuof ${pids[0]})"
[ -n "${PERF:-}${STRACE:-}" ] && { kill -INT $PERFPID; wait $PERFPID || true; }
kill $APID; wait $APID || true
python3 -c "t=$t1-$t0; print(f'drain: {$n} of $spooled spooled messages ({$mb} MB sealed) committed in {t:.2f} s: {$n/t:.0f} msg/s, {$mb/t:.1f} MB/s; workers=$WORKERS batch=$BATCH; archived peak RSS $rss; archived CPU $cpu')"
