# bench/lib.sh - shared by the benchmarks (sourced, not run).  Needs B
# (the build directory).
#   bench_init NAME       a work directory W removed at exit with every
#                         daemon started (pids); archive-keysvc running;
#                         the archive initialised (CTL), SMTP on a free port;
#                         lines in $BENCH_CONF (if set) appended to
#                         archived.conf, e.g. BENCH_CONF='pipeline_workers = 0'
#   bench_wait_committed N [FROM_LINE [SECONDS]]
#                         wait until archived's log, from line FROM_LINE
#                         (default 1), shows N messages committed by the
#                         pipeline (stored, duplicate or replayed), at most
#                         SECONDS (default: no limit); COMMITTED is the count.
#                         Log lines, not archivectl stats: polling would add
#                         a process and a walk of the catalog to what is timed
#   bench_wait_indexed    until the indexer has caught up (at most 120 s),
#                         polling archivectl stats (outside what is timed)
#   bench_keysvc_start    archive-keysvc on $W/keys (in pids), once its
#                         socket is there (bench_init runs it)
#   bench_tls_cert        a self-signed certificate in $W/data/tls unless
#                         one is there
#   bench_signin URL TENANT USER PASSWORD
#                         prints the session cookie (archived_session=...)
#   bench_archived_start [smtp|web]
#                         archived in the background, its log appended to
#                         $W/archived.log; APID (also in $W/archived.pid
#                         at once), and PORT of the listener named (smtp
#                         by default) once it is ready
#   bench_archived_stop [SIGNAL]
#                         stop archived (SIGTERM by default) and wait for it
#   bench_archive_fresh   stop archived if it runs, and make a new, empty
#                         archive in $W/data (like bench_init's); the
#                         volume benchmarks give each run its own
#   bench_corpus          the sample corpus unpacked in $W/sample (once);
#                         MAILGEN="$B/bench/mailgen" and SMTPLOAD= the load
#                         client, both given --corpus $W/sample (the model
#                         of the generated messages, see bench/mailgen.h)
#   bench_free_port       prints a free TCP port on 127.0.0.1

bench_init() {
  W=$(mktemp -d "${TMPDIR:-/var/tmp}/ar-bench-$1-XXXXXX")
  pids=()
  trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null; chmod -R u+w "$W"; rm -rf "$W"' EXIT
  bench_keysvc_start
  CTL="$B/tools/archivectl -d $W/data"
  bench_archive_init
}

bench_archive_init() {
  $CTL init --keysvc-socket "$W/keys/keysvc.sock" >/dev/null
  sed -i 's/^smtp_listen = .*/smtp_listen = 127.0.0.1:0/' "$W/data/archived.conf"
  if [ -n "${BENCH_CONF:-}" ]; then printf '%s\n' "$BENCH_CONF" >>"$W/data/archived.conf"; fi
}

bench_archived_stop() {
  [ -n "${APID:-}" ] || return 0
  kill -"${1:-TERM}" "$APID" 2>/dev/null || true
  wait "$APID" 2>/dev/null || true
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$APID" ] || keep+=("$p"); done
  pids=("${keep[@]}")
  APID=
}

bench_archive_fresh() {
  bench_archived_stop
  chmod -R u+w "$W/data" 2>/dev/null || true
  rm -rf "$W/data"
  bench_archive_init
}

bench_corpus() {
  [ -d "$W/sample" ] || tar --zstd -xf "$ROOT/../shared/corpus/sample.tar.zst" -C "$W"
  MAILGEN="$B/bench/mailgen --corpus $W/sample"
  SMTPLOAD="$B/bench/smtpload --corpus $W/sample"
}

bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bench_keysvc_start() {
  "$B/keysvc/archive-keysvc" -d "$W/keys" 2>>"$W/keysvc.log" & pids+=($!)
  for _ in $(seq 100); do [ -S "$W/keys/keysvc.sock" ] && break; sleep 0.05; done
}

bench_tls_cert() {
  mkdir -p "$W/data/tls"
  [ -f "$W/data/tls/cert.pem" ] || openssl req -x509 -newkey ec \
    -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=localhost" \
    -keyout "$W/data/tls/key.pem" -out "$W/data/tls/cert.pem" 2>/dev/null
}

bench_signin() {
  curl -s -k -D - -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"tenant\":\"$2\",\"user\":\"$3\",\"password\":\"$4\"}" \
    "$1/api/v1/session" | sed -n 's/^[Ss]et-[Cc]ookie: \(archived_session=[0-9a-f]*\).*/\1/p'
}

bench_wait_committed() {
  local n=$1 from=${2:-1} limit=${3:-0} t0=$SECONDS
  while :; do
    COMMITTED=$(tail -n +"$from" "$W/archived.log" | grep -c "status=\(stored\|duplicate\|replayed\)" || true)
    [ "$COMMITTED" -ge "$n" ] && return 0
    [ "$limit" -gt 0 ] && [ $((SECONDS - t0)) -ge "$limit" ] && return 0
    sleep 0.02
  done
}

# Wait (at most 120 s) until archived's indexer has caught up with the
# catalog for every tenant: nothing unindexed, no change pending.  So that
# the next measurement does not share the CPU with indexing left over.
bench_wait_indexed() {
  local t0=$SECONDS
  while [ $((SECONDS - t0)) -lt 120 ]; do
    $CTL --json stats 2>/dev/null | python3 -c 'import json,sys
t=json.load(sys.stdin)["tenants"]
sys.exit(0 if all(x["index"]["unindexed_objects"] == 0 and
                  x["index"]["pending_changes"] == 0 for x in t) else 1)' &&
      return 0
    sleep 0.2
  done
}

bench_archived_start() {
  local what=${1:-smtp}
  "$B/archived/archived" -d "$W/data" >>"$W/archived.log" 2>&1 & APID=$!; pids+=($APID)
  echo "$APID" >"$W/archived.pid"
  PORT=
  for _ in $(seq 200); do
    PORT=$(sed -n "s/.*$what listen=.* port=\([0-9]*\) .*status=ready.*/\1/p" "$W/archived.log" | tail -1)
    [ -n "$PORT" ] && break; sleep 0.05
  done
}
