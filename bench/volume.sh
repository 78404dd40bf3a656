#!/usr/bin/env bash
# bench/volume - issue 15's three volume runs one after the other,
# unattended, for a quiet machine (several hours at the default sizes):
#   bench/stream.sh       200,000 messages, 8 and 32 sessions, smtp-sink and archived
#   bench/backlog.sh      100,000 messages spooled with the drain stopped, then drained
#                         while 20,000 more arrive
#   tests/soak/crash.sh   100 SIGKILLs during a 100,000-message stream
# Each writes its files under OUT (default
# /var/tmp/ar-bench-results/volume-DATE); a failing one does not stop the
# others; the summaries are printed again at the end (and kept in
# OUT/summary.txt).
#   bench/volume.sh [BUILD_DIR]
#   env: STREAM_N (200000), STREAM_SESSIONS ("8 32"), BACKLOG_N (100000),
#        BACKLOG_STREAM (20000), CRASH_N (100000), CRASH_KILLS (100),
#        SESSIONS (8: backlog and crash), and those of each script
# Smoke (minutes): STREAM_N=3000 STREAM_SESSIONS=4 BACKLOG_N=3000
#   BACKLOG_STREAM=1000 CRASH_N=3000 CRASH_KILLS=5 SESSIONS=4 bench/volume.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd)
OUT=${OUT:-/var/tmp/ar-bench-results/volume-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
{
  echo "volume runs: $(git -C "$ROOT" log --oneline -1 2>/dev/null), build $B, $(date -u +%FT%TZ)"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1048576) " GiB"}' /proc/meminfo), uptime: $(uptime)"
} | tee "$OUT/summary.txt"

run() {  # run NAME COMMAND...: its output in OUT/NAME.log, its exit status noted
  local name=$1 t0=$SECONDS rc; shift
  echo "== $name: $*" | tee -a "$OUT/summary.txt"
  OUT="$OUT/$name" "$@" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
}
run stream "$ROOT/bench/stream.sh" "$B" "${STREAM_N:-200000}" ${STREAM_SESSIONS:-8 32}
run backlog "$ROOT/bench/backlog.sh" "$B" "${BACKLOG_N:-100000}" "${BACKLOG_STREAM:-20000}" "${SESSIONS:-8}"
run crash "$ROOT/tests/soak/crash.sh" "$B" "${CRASH_N:-100000}" "${CRASH_KILLS:-100}" "${SESSIONS:-8}"

{
  echo; echo "== summaries"
  cat "$OUT"/stream/summary-*.txt "$OUT"/backlog/summary.txt "$OUT"/crash/summary.txt 2>/dev/null
} | tee -a "$OUT/summary.txt"
echo "results in $OUT"
