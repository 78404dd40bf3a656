#!/usr/bin/env bash
# tests/soak/crash.sh - crash at volume (issue 15), run by hand (not in
# ctest: it takes an hour or more at the default size), bounded in time.
#
# MESSAGES generated messages (bench/mailgen.h) are sent over SMTP by
# bench/smtpload --resend (a message that got no 250 is sent again, on a
# new connection once archived is back) while archived is killed with
# SIGKILL KILLS times at random moments: each kill waits for a random
# count of acknowledged messages (uniform over the first 95% of the
# stream) plus 0-0.5 s; EARLY percent of the kills instead hit archived
# 0-1 s after its restart, before or while it recovers its spool.  After
# each kill archived is restarted and the next kill waits for its SMTP
# port.  When the stream is over, the drain is awaited (archivectl stats:
# every acknowledged message in the catalog and the index; then an empty
# spool), archived is stopped, and:
#   - every message that got a 250 is in the catalog exactly once, by
#     Message-ID (`archivectl --json list`): lost and duplicates must be 0;
#   - `archivectl verify` passes.
# Prints kills, acknowledged, lost, duplicates, the verify result, the
# restart times; exit 0 when all hold, 1 otherwise.
#
#   tests/soak/crash.sh [BUILD_DIR] [MESSAGES] [KILLS] [SESSIONS]
#     defaults: build 100000 100 8; smoke: tests/soak/crash.sh build 3000 5 4
#   env: SEED (1); EARLY (10); CLIENT_LIMIT (5400 s for the stream);
#        DRAIN_LIMIT (1800 s for the drain afterwards); READY_LIMIT (120 s
#        for archived to be back after a kill); OUT (where the summary,
#        the client's output and archived's warnings are kept:
#        /var/tmp/ar-soak-results/crash-DATE)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd)
N=${2:-100000}
KILLS=${3:-100}
SESSIONS=${4:-8}
SEED=${SEED:-1}
EARLY=${EARLY:-10}
CLIENT_LIMIT=${CLIENT_LIMIT:-5400}
DRAIN_LIMIT=${DRAIN_LIMIT:-1800}
READY_LIMIT=${READY_LIMIT:-120}
OUT=${OUT:-/var/tmp/ar-soak-results/crash-$(date +%Y%m%d-%H%M%S)}
[ "$KILLS" -le $((N * 95 / 100)) ] || { echo "crash: KILLS must be at most 95% of MESSAGES" >&2; exit 2; }
. "$ROOT/bench/lib.sh"
mkdir -p "$OUT"
bench_init crash
bench_corpus
T0=$SECONDS
P=$(bench_free_port)
sed -i "s/^smtp_listen = .*/smtp_listen = 127.0.0.1:$P/" "$W/data/archived.conf"
$CTL tenant add bench --journal-address journal@bench.example >/dev/null
LOG="$W/archived.log"
: >"$LOG"

# archived in the background (APID); with "wait": until its SMTP port is
# ready (READY_LIMIT); restart times collected in RESTARTS
RESTARTS=()
archived_start() {
  local off t0 ok=1
  off=$(stat -c %s "$LOG")
  t0=$(date +%s%N)
  "$B/archived/archived" -d "$W/data" >>"$LOG" 2>&1 & APID=$!; pids+=($APID)
  [ "${1:-}" = wait ] || return 0
  for _ in $(seq $((READY_LIMIT * 10))); do
    if tail -c +$((off + 1)) "$LOG" | grep -q 'smtp listen=.* status=ready'; then ok=0; break; fi
    kill -0 "$APID" 2>/dev/null || break
    sleep 0.1
  done
  RESTARTS+=($(( ($(date +%s%N) - t0) / 1000000 )))
  if [ $ok != 0 ]; then      # why: gone (its status) or still silent
    if kill -0 "$APID" 2>/dev/null; then
      echo "archived (pid $APID) runs but never said smtp ... status=ready; its threads:" >"$OUT/not-ready.txt"
      gdb -p "$APID" -batch -ex 'thread apply all bt 8' >>"$OUT/not-ready.txt" 2>&1 || true
    else
      wait "$APID"; echo "archived (pid $APID) exited with status $? before it was ready" >"$OUT/not-ready.txt"
    fi
    cat "$OUT/not-ready.txt" | head -5
  fi
  return $ok
}
fail_keep() {
  echo "crash: FAIL: $*" | tee -a "$OUT/summary.txt"
  tail -100 "$LOG" >"$OUT/log-tail.txt"
  grep -E ' (warn|error): ' "$LOG" | head -500 >"$OUT/log-warnings.txt" || true
  echo "archived's last lines: $OUT/log-tail.txt"
  exit 1
}

archived_start wait || fail_keep "archived did not start"
$SMTPLOAD --port "$P" --sessions "$SESSIONS" --count "$N" --seed "$SEED" --resend \
  --acked "$W/acked" --progress "$W/progress" --max-time "$CLIENT_LIMIT" \
  --label crash >"$OUT/client.txt" 2>&1 & CPID=$!; pids+=($CPID)

mapfile -t TH < <(shuf -i 1-$((N * 95 / 100)) -n "$KILLS" | sort -n)
kills=0 early=0 next_early=0
while [ "$kills" -lt "$KILLS" ]; do
  if [ "$next_early" = 1 ]; then
    sleep "0.$(printf %03d $((RANDOM % 1000)))"
    early=$((early + 1))
  else
    while :; do
      kill -0 "$CPID" 2>/dev/null || break 2
      p=$(cat "$W/progress" 2>/dev/null || true)
      [ "${p:-0}" -ge "${TH[$kills]}" ] && break
      sleep 0.05
    done
    sleep "0.$(printf %03d $((RANDOM % 500)))"
  fi
  kill -KILL "$APID" 2>/dev/null || true
  wait "$APID" 2>/dev/null || true
  kills=$((kills + 1))
  echo "kill $kills/$KILLS at $(cat "$W/progress" 2>/dev/null || echo 0) acknowledged$([ "$next_early" = 1 ] && echo ' (early: during the restart)')"
  next_early=0
  if [ "$kills" -lt "$KILLS" ] && [ $((RANDOM % 100)) -lt "$EARLY" ]; then
    next_early=1
    archived_start
  else
    archived_start wait || fail_keep "archived did not come back within $READY_LIMIT s after kill $kills"
  fi
done
wait "$CPID" || true
cat "$OUT/client.txt" | grep -v '^crash: t=' || true
acked=$(wc -l <"$W/acked")
stream_s=$((SECONDS - T0))

# the drain: every acknowledged message in the catalog and the index
# (stats once a second), then an empty spool (queue every 5 s)
drained=0 t1=$SECONDS
while [ $((SECONDS - t1)) -lt "$DRAIN_LIMIT" ]; do
  if $CTL --json stats 2>/dev/null | python3 -c 'import json,sys
t=json.load(sys.stdin)["tenants"]
sys.exit(0 if sum(x["objects"] for x in t) >= int(sys.argv[1]) and
         all(x["index"]["unindexed_objects"] == 0 and x["index"]["pending_changes"] == 0 for x in t) else 1)' "$acked"
  then drained=1; break; fi
  kill -0 "$APID" 2>/dev/null || fail_keep "archived exited during the drain"
  sleep 1
done
spool=unknown
while [ $((SECONDS - t1)) -lt "$DRAIN_LIMIT" ]; do
  spool=$($CTL --json queue | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  [ "$spool" = 0 ] && break
  sleep 5
done
drain_s=$((SECONDS - t1))
grep -E ' (warn|error): ' "$LOG" | head -500 >"$OUT/log-warnings.txt" || true
bench_archived_stop

$CTL --json list --tenant bench >"$W/list.json"
set +e
$CTL verify >"$OUT/verify.txt" 2>&1; vrc=$?
set -e
python3 - "$W/acked" "$W/list.json" "$SEED" "$OUT/verify.txt" "$vrc" <<EOF | tee "$OUT/summary.txt"
import collections, json, re, sys
acked_f, list_f, seed, verify_f, vrc = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
acked = set(int(l) for l in open(acked_f) if l.strip())
ids = collections.Counter()
foreign = 0
for o in json.load(open(list_f)):
    m = re.match(r"<?mg-(\d+)-(\d+)-", (o.get("meta") or {}).get("message_id") or "")
    if m and int(m.group(1)) == seed:
        ids[int(m.group(2))] += 1
    else:
        foreign += 1
lost = sorted(acked - set(ids))
dups = {i: c for i, c in ids.items() if c > 1}
extra = set(ids) - acked
restarts = [int(x) for x in "${RESTARTS[*]}".split()]
print(f"crash: {$N} messages, {$SESSIONS} sessions, kills {$kills} ({$early} during a restart), "
      f"stream {$stream_s} s, drain afterwards {$drain_s} s (catalog and index {'done' if $drained else 'NOT done'}, spool left: $spool)")
print(f"crash: acknowledged {len(acked)}, in the catalog {sum(ids.values())} objects for {len(ids)} messages "
      f"(stored but never acknowledged: {len(extra)}; not ours: {foreign})")
print(f"crash: lost {len(lost)} (must be 0){': ' + ' '.join(map(str, lost[:20])) if lost else ''}")
print(f"crash: duplicates {sum(c - 1 for c in dups.values())} (must be 0){': ' + str(sorted(dups.items())[:20]) if dups else ''}")
print(f"crash: archivectl verify {'passed' if vrc == 0 else 'FAILED (exit %d): see %s' % (vrc, verify_f)}")
if restarts:
    print(f"crash: archived SMTP-ready after a (re)start in {sum(restarts) / len(restarts) / 1000:.2f} s on average, "
          f"{max(restarts) / 1000:.2f} s at most ({len(restarts)} restarts)")
ok = not lost and not dups and vrc == 0 and $drained
print("crash: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
EOF
