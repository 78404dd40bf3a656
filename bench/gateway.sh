#!/usr/bin/env bash
# bench/gateway - the filtering gateway at volume (issue 17): the same
# generated messages (bench/mailgen.h: unique, the corpus's sizes; SPAM
# in a thousand carry GTUBE, VIRUS in a thousand the EICAR test file, see
# smtpload --spam/--virus) sent by the same client (bench/smtpload) to
#
#   postfix   Postfix relaying to smtp-sink, with rspamd's milter proxy
#             and clamav-milter (the standard open-source stack), the same
#             rspamd and clamd archived uses (scripts/gateway-services.sh);
#   archived  archived's gateway (MX listener, clamd INSTREAM + rspamd
#             /checkv2 before the 250, archive feed, relay to smtp-sink);
#   bare      archived's gateway with no scanner configured (where the
#             time goes: receiving, spooling, archiving, relaying);
#
# and the ceiling: what rspamd and clamd alone scan when driven directly
# with PARALLEL requests (bench/scanners.py, SCAN_N messages).
#
#   bench/gateway.sh [BUILD_DIR] [MESSAGES] [SESSIONS...]
#     defaults: build 100000 "8 32"; smoke: bench/gateway.sh build 2000 8
#   env: SPAM (50), VIRUS (10)   per mille of the messages
#        DB (test)               clamd's database: test (the project's
#                                signatures), system, auto
#        SEED (1), CLIENT_LIMIT (3600 s), DRAIN_LIMIT (900 s)
#        SCAN_N (5000), PARALLEL (16)   the ceiling run
#        TARGETS ("postfix archived bare")
#        OUT (/var/tmp/ar-bench-results/gateway-DATE)
#
# Prints per run: the accepted (250) rate over the whole run, 250 latency
# p50/p99, 5xx (refused: spam and viruses; the same count is expected of
# both stacks), 4xx, archived's peak RSS (VmHWM), and for archived the
# time from the last 250 until every accepted message was delivered to
# smtp-sink and archived (log lines), then the ratio archived/postfix
# (goal >= 3) and archived/ceiling (goal >= 0.8).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd)
N=${2:-100000}
shift $(($# > 2 ? 2 : $#))
SESSIONS=${*:-8 32}
SPAM=${SPAM:-50}
VIRUS=${VIRUS:-10}
DB=${DB:-test}
SEED=${SEED:-1}
CLIENT_LIMIT=${CLIENT_LIMIT:-3600}
DRAIN_LIMIT=${DRAIN_LIMIT:-900}
SCAN_N=${SCAN_N:-5000}
PARALLEL=${PARALLEL:-16}
TARGETS=${TARGETS:-postfix archived bare}
OUT=${OUT:-/var/tmp/ar-bench-results/gateway-$(date +%Y%m%d-%H%M%S)}
PATH=$PATH:/usr/sbin
. "$ROOT/bench/lib.sh"
mkdir -p "$OUT"
bench_init gateway
bench_corpus
PF=
cleanup_gateway() {
  [ -n "$PF" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
  "$ROOT/scripts/gateway-services.sh" stop "$W/svc" >/dev/null 2>&1 || true
}
trap 'cleanup_gateway; for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null; chmod -R u+w "$W"; rm -rf "$W"' EXIT

env_file=$("$ROOT/scripts/gateway-services.sh" start "$W/svc" --db "$DB" dns clamd rspamd milter)
. "$env_file"
SINKPORT=$(bench_free_port)
smtp-sink -u nobody 127.0.0.1:$SINKPORT 1024 >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$SINKPORT) 2>/dev/null && break; sleep 0.05; done
$MAILGEN --seed "$SEED" --count "$N" | tee "$OUT/messages.txt"
{ echo "mix: $SPAM/1000 GTUBE, $VIRUS/1000 EICAR; clamd database: $CLAMD_DB"
  echo "uptime: $(uptime)"; } | tee -a "$OUT/messages.txt"

result() { sed -n 's/^smtpload-result //p' "$1"; }
load() {  # load LABEL PORT SESSIONS
  $SMTPLOAD --port "$2" --sessions "$3" --count "$N" --seed "$SEED" \
    --from bench@example.org --to user@bench.example --spam "$SPAM" \
    --virus "$VIRUS" --label "$1" --csv "$OUT/$1.csv" --resend \
    --max-time "$CLIENT_LIMIT" | tee "$OUT/$1.txt" || true
}

# A private Postfix instance: relay for bench.example to smtp-sink, the
# milters in front (a milter failure: tempfail, like archived's default).
postfix_start() {
  PF=$W/postfix
  rm -rf "$PF"; mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
  chown postfix "$PF/data"; chmod 755 "$W" "$PF"
  PFPORT=$(bench_free_port)
  local cm=${CLAMAV_MILTER:-inet:127.0.0.1:$(sed -n 's/^clamav_milter=//p' "$W/svc/ports" 2>/dev/null)}
  cp /etc/postfix/master.cf "$PF/etc/"
  sed -i "s/^smtp \+inet .*smtpd$/127.0.0.1:$PFPORT inet n - n - - smtpd/" "$PF/etc/master.cf"
  cat >"$PF/etc/main.cf" <<EOF
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
smtpd_milters = $RSPAMD_MILTER, $cm
milter_default_action = tempfail
milter_protocol = 6
maillog_file = $PF/maillog
maillog_file_prefixes = $W
default_process_limit = 200
smtpd_client_connection_count_limit = 0
EOF
  postfix -c "$PF/etc" start >/dev/null 2>&1
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$PFPORT) 2>/dev/null && return 0; sleep 0.1; done
  echo "postfix did not start:"; tail -20 "$PF/maillog"; exit 1
}
postfix_stop() { postfix -c "$PF/etc" stop >/dev/null 2>&1 || true; PF=; }

archived_gateway() {  # archived_gateway yes|no (scanners)
  bench_archive_fresh
  $CTL tenant add bench --journal-address journal@bench.example >/dev/null
  $CTL tenant set bench --domain bench.example --relay-to "127.0.0.1:$SINKPORT" >/dev/null
  { echo "gateway_listen = 127.0.0.1:0"
    echo "gateway_dns = $DNS_ADDR"
    if [ "$1" = yes ]; then
      echo "clamd_socket = $CLAMD_SOCKET"; echo "rspamd_url = $RSPAMD_URL"
    fi; } >>"$W/data/archived.conf"
  : >"$W/archived.log"
  bench_archived_start gateway
  [ -n "$PORT" ] || { echo "archived's gateway did not start:"; tail -20 "$W/archived.log"; exit 1; }
}

# until every message that got a 250 was delivered and archived (the
# gateway's status=done and the pipeline's status=stored lines)
archived_drain() {  # archived_drain LABEL
  local acked last t0 done stored
  acked=$(result "$OUT/$1.txt" | sed 's/.* acked=\([0-9]*\) .*/\1/')
  last=$(result "$OUT/$1.txt" | sed 's/.* last_ack_epoch=\([0-9.]*\).*/\1/')
  t0=$(date +%s)
  while :; do
    done=$(grep -c ' gateway id=.* status=done' "$W/archived.log" || true)
    stored=$(grep -c ' status=stored ' "$W/archived.log" || true)
    [ "$done" -ge "$acked" ] && [ "$stored" -ge "$acked" ] && break
    [ $(($(date +%s) - t0)) -ge "$DRAIN_LIMIT" ] && break
    sleep 1
  done
  local rss
  rss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$APID/status" 2>/dev/null || echo 0)
  echo "  $1: $done of $acked delivered, $stored archived, $(python3 -c "import time; print(f'{time.time() - $last:.1f}')") s after the last 250; peak RSS ${rss} MB" |
    tee "$OUT/$1-drain.txt"
  grep -E ' (warn|error): ' "$W/archived.log" | grep -v 'verdict=' | head -100 >"$OUT/$1-log.txt" || true
  bench_archived_stop
}

summary() {  # summary LABEL
  result "$OUT/$1.txt" | python3 -c "
import sys
d = dict(kv.split('=', 1) for kv in sys.stdin.read().split())
print(f\"  $1: {float(d['rate']):.0f} msg/s accepted ({d['acked']} 250, {d['permfail']} 5xx, \"
      f\"{d['tempfail']} 4xx, {d['conn_errors']} connection errors) in {float(d['seconds']):.1f} s; \"
      f\"250 p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms\")"
}

# the ceiling: the scanners driven directly
mkdir -p "$W/scan"
$MAILGEN --seed "$SEED" --count "$SCAN_N" --out "$W/scan" >/dev/null
python3 "$ROOT/bench/scanners.py" --dir "$W/scan" --rspamd "$RSPAMD_URL" \
  --clamd "$CLAMD_SOCKET" --parallel "$PARALLEL" | tee "$OUT/ceiling.txt"
rm -rf "$W/scan"

for s in $SESSIONS; do
  echo "== $N messages, $s sessions"
  for t in $TARGETS; do
    case $t in
    postfix) postfix_start; load "postfix-$s" "$PFPORT" "$s"; postfix_stop ;;
    archived) archived_gateway yes; load "archived-$s" "$PORT" "$s"; archived_drain "archived-$s" ;;
    bare) archived_gateway no; load "bare-$s" "$PORT" "$s"; archived_drain "bare-$s" ;;
    esac
  done
  { echo "gateway $s sessions, $N messages:"
    for t in $TARGETS; do summary "$t-$s"; cat "$OUT/$t-$s-drain.txt" 2>/dev/null || true; done
    python3 - "$OUT" "$s" <<'EOF'
import sys
out, s = sys.argv[1], sys.argv[2]
def rate(name):
    try:
        for l in open(f"{out}/{name}"):
            for key in ("smtpload-result ", "scanners-result "):
                if l.startswith(key):
                    return float(dict(kv.split("=", 1) for kv in l.split()[1:])["rate"])
    except OSError:
        return None
a, p, c = rate(f"archived-{s}.txt"), rate(f"postfix-{s}.txt"), rate("ceiling.txt")
if a and p:
    print(f"  archived/postfix+milters: {a / p:.2f} (goal >= 3)")
if a and c:
    print(f"  archived/scanners' ceiling ({c:.0f} msg/s): {a / c:.2f} (goal >= 0.8)")
EOF
  } | tee "$OUT/summary-$s.txt"
done
echo "results in $OUT"
