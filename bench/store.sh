#!/usr/bin/env bash
# bench/store - seal + put + catalog commit of the whole sample corpus
# (archivectl import into a fresh archive), beside the disk baseline in the
# same run: the same files copied with one fsync each (copy_fsync), with 1
# thread and with as many threads as the import uses.
#   bench/store.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
ROUNDS=${2:-3}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/ar-bench-store-XXXXXX")
trap 'kill $KPID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT

tar --zstd -xf "$ROOT/../shared/corpus/sample.tar.zst" -C "$W"
FILES=("$W"/sample/*.eml)
MB=$(du -cb "${FILES[@]}" | tail -1 | cut -f1)
echo "corpus: ${#FILES[@]} messages, $MB bytes; machine: $(nproc) cores"

"$B/keysvc/archive-keysvc" -d "$W/keys" 2>"$W/keysvc.log" &
KPID=$!
for _ in $(seq 100); do [ -S "$W/keys/keysvc.sock" ] && break; sleep 0.05; done
CTL="$B/tools/archivectl -d $W/data"
$CTL init --keysvc-socket "$W/keys/keysvc.sock" >/dev/null
THREADS=$(sed -n 's/^import_threads = //p' "$W/data/archived.conf")

for r in $(seq "$ROUNDS"); do
  sync
  b1=$("$B/bench/copy_fsync" 1 "$W/copy1-$r" "${FILES[@]}")
  sync
  bn=$("$B/bench/copy_fsync" "$THREADS" "$W/copyn-$r" "${FILES[@]}")
  sync
  $CTL tenant add "bench$r" --journal-address "j$r@bench.example" >/dev/null
  imp=$($CTL --json import --tenant "bench$r" "${FILES[@]}")
  python3 - "$b1" "$bn" "$imp" "$r" <<'PY'
import json, sys
b1, bn, imp, r = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
mps = imp["messages"] / imp["seconds"]
print(f"round {r}: archived import {mps:7.0f} msg/s {imp['bytes']/1e6/imp['seconds']:6.1f} MB/s"
      f"  p50 {imp['latency_p50_ms']:.1f} ms p99 {imp['latency_p99_ms']:.1f} ms"
      f"  peak RSS {imp['peak_rss_kb']/1024:.0f} MB"
      f" | baseline copy+fsync 1 thread {b1['files_per_s']:6.0f} files/s {b1['mb_per_s']:5.1f} MB/s,"
      f" {bn['threads']} threads {bn['files_per_s']:6.0f} files/s {bn['mb_per_s']:5.1f} MB/s"
      f" | archived/baseline {mps/b1['files_per_s']:.2f} (1 thread) {mps/bn['files_per_s']:.2f} ({bn['threads']} threads)")
PY
done
$CTL verify | tail -1
