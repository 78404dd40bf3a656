#!/usr/bin/env bash
# bench/relay - the gateway's relay queue at volume (issue 18): the same
# generated messages (bench/mailgen.h: unique, the corpus's sizes) sent by
# the same client (bench/smtpload, --resend) to
#
#   postfix   Postfix as a plain relay: relay_domains bench.example,
#             relayhost the smtp-sink below, its own queue fsync'd as
#             always (a private instance under the work directory);
#   archived  archived's gateway (MX listener, sealed fsync'd relay queue,
#             archive feed, delivery to smtp-sink with our own SMTP
#             client); no scanner unless SCANNERS=yes (clamd + rspamd
#             from scripts/gateway-services.sh);
#
# both delivering to the same Postfix smtp-sink, for each number of
# sessions; then the backlog drain: BACKLOG messages accepted by
# archived's gateway while its downstream is down (nothing listens), the
# downstream started, `archivectl relay retry`, and the time until the
# last one is delivered.
#
#   bench/relay.sh [BUILD_DIR] [MESSAGES] [SESSIONS...]
#     defaults: build 100000 "8 32"; smoke: BACKLOG=500 bench/relay.sh build 500 8
#   env: BACKLOG (50000; 0: no drain run), SCANNERS (no), SEED (1),
#        CLIENT_LIMIT (3600 s), DRAIN_LIMIT (1800 s),
#        TARGETS ("postfix archived"),
#        OUT (/var/tmp/ar-bench-results/relay-DATE)
#
# Prints per run: the accepted (250) rate, the delivered rate end to end
# (the first message sent to the last remote 250), 250 latency p50/p99,
# the time from our 250 to the remote 250 p50/p99 (archived: its log,
# age_ms - dur_ms per message; Postfix: delays b+c+d of each
# status=sent), archived's peak RSS (VmHWM) or Postfix's processes'
# summed RSS at the end, and archived/postfix (goal >= 3).  The drain:
# messages, MB, fill rate, drain rate, peak RSS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd)
N=${2:-100000}
shift $(($# > 2 ? 2 : $#))
SESSIONS=${*:-8 32}
BACKLOG=${BACKLOG:-50000}
SCANNERS=${SCANNERS:-no}
SEED=${SEED:-1}
CLIENT_LIMIT=${CLIENT_LIMIT:-3600}
DRAIN_LIMIT=${DRAIN_LIMIT:-1800}
TARGETS=${TARGETS:-postfix archived}
OUT=${OUT:-/var/tmp/ar-bench-results/relay-$(date +%Y%m%d-%H%M%S)}
PATH=$PATH:/usr/sbin
. "$ROOT/bench/lib.sh"
mkdir -p "$OUT"
bench_init relay
bench_corpus
PF=
SVC=no
cleanup_relay() {
  [ -n "$PF" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
  [ "$SVC" = yes ] && "$ROOT/scripts/gateway-services.sh" stop "$W/svc" >/dev/null 2>&1 || true
}
trap 'cleanup_relay; for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null; chmod -R u+w "$W"; rm -rf "$W"' EXIT

if [ "$SCANNERS" = yes ]; then
  env_file=$("$ROOT/scripts/gateway-services.sh" start "$W/svc" --db test clamd rspamd)
  SVC=yes
  . "$env_file"
fi
sink_start() {  # sink_start PORT: smtp-sink, no dumps; SINK_PID
  smtp-sink -u nobody 127.0.0.1:$1 1024 >/dev/null 2>&1 & SINK_PID=$!
  pids+=($SINK_PID)
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done
  echo "smtp-sink did not start"; exit 1
}
SINKPORT=$(bench_free_port)
sink_start "$SINKPORT"
$MAILGEN --seed "$SEED" --count "$N" | tee "$OUT/messages.txt"
{ echo "scanners: $SCANNERS"; echo "uptime: $(uptime)"; } | tee -a "$OUT/messages.txt"

result() { sed -n 's/^smtpload-result //p' "$1"; }
load() {  # load LABEL PORT SESSIONS [COUNT [FIRST]]
  $SMTPLOAD --port "$2" --sessions "$3" --count "${4:-$N}" --first "${5:-0}" \
    --seed "$SEED" --from bench@example.org --to user@bench.example \
    --label "$1" --csv "$OUT/$1.csv" --resend --max-time "$CLIENT_LIMIT" |
    tee "$OUT/$1.txt" || true
}
acked_of() { result "$OUT/$1.txt" | sed 's/.* acked=\([0-9]*\) .*/\1/'; }

# A private Postfix instance: a plain relay for bench.example.
postfix_start() {
  PF=$W/postfix
  rm -rf "$PF"; mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
  chown postfix "$PF/data"; chmod 755 "$W" "$PF"
  PFPORT=$(bench_free_port)
  cp /etc/postfix/master.cf "$PF/etc/"
  sed -i "s/^smtp \+inet .*smtpd$/127.0.0.1:$PFPORT inet n - n - - smtpd/" "$PF/etc/master.cf"
  cat >"$PF/etc/main.cf" <<EOC
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.example
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains = bench.example
relayhost = [127.0.0.1]:$SINKPORT
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = reject_unauth_destination
maillog_file = $PF/maillog
maillog_file_prefixes = $W
default_process_limit = 200
smtpd_client_connection_count_limit = 0
EOC
  postfix -c "$PF/etc" start >/dev/null 2>&1
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$PFPORT) 2>/dev/null && return 0; sleep 0.1; done
  echo "postfix did not start:"; tail -20 "$PF/maillog"; exit 1
}
postfix_drain() {  # postfix_drain LABEL: until every 250 is status=sent
  local acked sent t0 rss
  acked=$(acked_of "$1")
  t0=$(date +%s)
  while :; do
    sent=$(grep -c ' status=sent ' "$PF/maillog" 2>/dev/null || true)
    [ "$sent" -ge "$acked" ] && break
    [ $(($(date +%s) - t0)) -ge "$DRAIN_LIMIT" ] && break
    sleep 1
  done
  rss=$(for p in $(pgrep -f "$PF/etc" 2>/dev/null; pgrep -P "$(cat "$PF/queue/pid/master.pid" 2>/dev/null | tr -d ' ')" 2>/dev/null); do
      awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null; done | awk '{s += $1} END {print int(s / 1024)}')
  python3 - "$PF/maillog" "$OUT/$1.txt" "$acked" "$rss" "$1" <<'EOP' | tee "$OUT/$1-drain.txt"
import re, sys, time
log, res, acked, rss, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
year = time.localtime().tm_year
lat, stamps = [], []
for l in open(log):
    if " status=sent " not in l:
        continue
    m = re.search(r" delays=([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+)", l)
    if m:
        lat.append(sum(float(x) for x in m.groups()[1:]) * 1000)
    try:    # postlogd's maillog_file: "Dec  3 12:04:11 host ..." (local time)
        t = " ".join(l.split()[:3])
        stamps.append(time.mktime(time.strptime(f"{year} {t}", "%Y %b %d %H:%M:%S")))
    except ValueError:
        pass
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0
d = dict(kv.split("=", 1) for kv in open(res).read().split("smtpload-result ")[-1].split())
first = float(d.get("start_epoch", 0) or 0)
e2e = (f"; delivered end to end {len(lat) / (max(stamps) + 1 - first):.0f} msg/s "
       f"(first message sent to the last status=sent, whose time is in whole seconds)") \
    if stamps and first and max(stamps) > first else ""
print(f"  {label}: {len(lat)} of {acked} delivered; 250 -> remote 250 p50 {q(.5):.0f} ms, "
      f"p99 {q(.99):.0f} ms (delays b+c+d, 10 ms steps){e2e}; Postfix processes' RSS {rss} MB")
EOP
  postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
  PF=
}

archived_gateway() {  # archived_gateway ROUTE_PORT
  bench_archive_fresh
  $CTL tenant add bench --journal-address journal@bench.example >/dev/null
  $CTL tenant set bench --domain bench.example --relay-to "127.0.0.1:$1" --tls none >/dev/null
  { echo "gateway_listen = 127.0.0.1:0"
    if [ "$SCANNERS" = yes ]; then
      echo "clamd_socket = $CLAMD_SOCKET"; echo "rspamd_url = $RSPAMD_URL"
    fi; } >>"$W/data/archived.conf"
  : >"$W/archived.log"
  bench_archived_start gateway
  [ -n "$PORT" ] || { echo "archived's gateway did not start:"; tail -20 "$W/archived.log"; exit 1; }
}
# until every 250 is delivered (status=done per message), then the figures
archived_drain() {  # archived_drain LABEL ACKED [T0]
  local acked=$2 t0 done
  t0=$(date +%s)
  while :; do
    done=$(grep -c ' gateway id=.* status=done' "$W/archived.log" || true)
    [ "$done" -ge "$acked" ] && break
    [ $(($(date +%s) - t0)) -ge "$DRAIN_LIMIT" ] && break
    sleep 0.2
  done
  local rss
  rss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$APID/status" 2>/dev/null || echo 0)
  python3 - "$W/archived.log" "$acked" "$rss" "$1" "${3:-}" "$OUT/$1.txt" <<'EOP' | tee "$OUT/$1-drain.txt"
import os, re, sys
from datetime import datetime
log, acked, rss, label, t0, res = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
dur, age, done, last = {}, {}, 0, 0
for l in open(log):
    m = re.search(r" gateway id=([0-9a-f]{32}) tenant=\S+ .* reply=250 .* dur_ms=(\d+)", l)
    if m:
        dur[m.group(1)] = int(m.group(2)); continue
    m = re.search(r" gateway id=([0-9a-f]{32}) rcpt=0 .* status=delivered .* age_ms=(\d+)", l)
    if m:
        age[m.group(1)] = int(m.group(2)); continue
    if " status=done" in l:
        done += 1
        try:    # archived's log lines begin with the UTC time (seconds)
            last = datetime.fromisoformat(l.split()[0].replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
lat = sorted(age[i] - dur.get(i, 0) for i in age)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0
first = 0
if os.path.exists(res):
    d = dict(kv.split("=", 1) for kv in open(res).read().split("smtpload-result ")[-1].split())
    first = float(d.get("start_epoch", 0) or 0)
e2e = (f"; delivered end to end {done / (last + 1 - first):.0f} msg/s (first message sent to "
       f"the last status=done, whose time is in whole seconds)") if first and last > first else ""
print(f"  {label}: {done} of {acked} delivered; 250 -> remote 250 p50 {q(.5)} ms, "
      f"p99 {q(.99)} ms{e2e}; archived peak RSS {rss} MB")
EOP
  grep -E ' (warn|error): ' "$W/archived.log" | head -100 >"$OUT/$1-log.txt" || true
  bench_archived_stop
}

summary() {  # summary LABEL
  result "$OUT/$1.txt" | python3 -c "
import sys
d = dict(kv.split('=', 1) for kv in sys.stdin.read().split())
print(f\"  $1: {float(d['rate']):.0f} msg/s accepted ({d['acked']} 250, {d['permfail']} 5xx, \"
      f\"{d['tempfail']} 4xx, {d['conn_errors']} connection errors) in {float(d['seconds']):.1f} s; \"
      f\"250 p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms\")"
  cat "$OUT/$1-drain.txt" 2>/dev/null || true
}

for s in $SESSIONS; do
  echo "== $N messages, $s sessions"
  for t in $TARGETS; do
    case $t in
    postfix) postfix_start; load "postfix-$s" "$PFPORT" "$s"; postfix_drain "postfix-$s" ;;
    archived) archived_gateway "$SINKPORT"; load "archived-$s" "$PORT" "$s"
              archived_drain "archived-$s" "$(acked_of "archived-$s")" ;;
    esac
  done
  { echo "relay $s sessions, $N messages:"
    for t in $TARGETS; do summary "$t-$s"; done
    python3 - "$OUT" "$s" <<'EOP'
import sys
out, s = sys.argv[1], sys.argv[2]
def rate(name):
    try:
        for l in open(f"{out}/{name}"):
            if l.startswith("smtpload-result "):
                return float(dict(kv.split("=", 1) for kv in l.split()[1:])["rate"])
    except OSError:
        return None
a, p = rate(f"archived-{s}.txt"), rate(f"postfix-{s}.txt")
if a and p:
    print(f"  archived/postfix (accepted rate): {a / p:.2f} (goal >= 3)")
EOP
  } | tee "$OUT/summary-$s.txt"
done

# the backlog drain: BACKLOG messages queued while the downstream is down
if [ "$BACKLOG" -gt 0 ]; then
  echo "== backlog drain: $BACKLOG messages"
  $MAILGEN --seed "$SEED" --first "$N" --count "$BACKLOG" | tee -a "$OUT/messages.txt"
  DOWNPORT=$(bench_free_port)
  archived_gateway "$DOWNPORT"
  load backlog-fill "$PORT" 8 "$BACKLOG" "$N"
  acked=$(acked_of backlog-fill)
  mb=$(du -sm "$W/data/relay" | cut -f1)
  sink_start "$DOWNPORT"
  t0=$(date +%s.%N)
  $CTL relay retry >/dev/null
  archived_drain backlog-drain "$acked"
  t1=$(date +%s.%N)
  { echo "backlog drain, $BACKLOG messages:"
    summary backlog-fill
    python3 -c "print(f'  drained {$acked} queued messages ($mb MB in the relay queue) in {$t1 - $t0:.1f} s: {$acked / ($t1 - $t0):.0f} msg/s (from relay retry to the last status=done)')"
  } | tee "$OUT/summary-backlog.txt"
fi
echo "results in $OUT"
