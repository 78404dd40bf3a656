#!/usr/bin/env bash
# bench/export - legal export of a tenant (archivectl export: decrypt,
# check, write .eml + decoded attachments + CSV + signed manifest) beside
# `tar` of the same raw .eml files, in the same run, to the same disk.
# Prints MB/s (of message bytes), messages/s, wall and CPU seconds (the
# machine is shared: CPU time is the steadier figure) and peak RSS.
#   [BEFORE=OLD_BUILD_DIR] bench/export.sh [BUILD_DIR] [SYNTHETIC_MESSAGES]
# With BEFORE, the directory export is also run with that build's
# archivectl (e.g. of the previous commit), in the same run, for a
# before/after on the same machine load.
# With SYNTHETIC_MESSAGES (e.g. 100000) a second tenant of that many
# generated messages (copies of the corpus with a unique header, so none
# is a duplicate) is imported and exported too.
set -euo pipefail
uptime
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
N=${2:-0}
. "$ROOT/bench/lib.sh"
bench_init export

run() {  # run LABEL NMSG BYTES COMMAND...: time and peak RSS of one command
  local label=$1 n=$2 bytes=$3 tp cp anon=0 file=0 a r; shift 3
  # start clean: the export's syncfs would otherwise also pay for the
  # writeback of whatever ran before it (the import, the previous run)
  sync
  /usr/bin/time -f "%e %M %U %S" -o "$W/time" "$@" >/dev/null &
  tp=$!
  # peak RSS split: anonymous (heap, stacks: what the process allocated)
  # and file-backed (mapped files, e.g. the LMDB catalog: reclaimable),
  # sampled from /proc/PID/smaps_rollup every 50 ms
  while kill -0 "$tp" 2>/dev/null; do
    cp=$(pgrep -P "$tp" 2>/dev/null | head -1) || true
    if [ -n "$cp" ] && [ -r "/proc/$cp/smaps_rollup" ]; then
      read -r a r < <(awk '/^Rss:/{r=$2} /^Anonymous:/{a=$2} END{print a+0, r+0}' \
          "/proc/$cp/smaps_rollup" 2>/dev/null || echo "0 0")
      [ "$a" -gt "$anon" ] && anon=$a
      [ $((r - a)) -gt "$file" ] && file=$((r - a))
    fi
    sleep 0.05
  done
  wait "$tp"
  read -r secs rss usr sys <"$W/time"
  python3 -c "s=max($secs,0.001); c=max($usr+$sys,0.001); print(f'{\"$label\":<34s} {$bytes/s/1e6:7.1f} MB/s {$n/s:8.0f} msg/s  {s:7.2f} s wall  {c:6.2f} s CPU ({$bytes/c/1e6:6.1f} MB/s of CPU)  peak RSS {$rss/1024:6.1f} MB (sampled: anon {$anon/1024:5.1f} MB, file-backed {$file/1024:5.1f} MB)')"
}

bench_tenant() {  # bench_tenant NAME DIR_OF_EML
  local name=$1 dir=$2 n bytes
  $CTL tenant add "$name" --journal-address "journal@$name.example" >/dev/null
  $CTL import --tenant "$name" "$dir" >/dev/null
  n=$(ls "$dir" | wc -l)
  bytes=$(du -sb --apparent-size "$dir" | cut -f1)
  echo "$name: $n messages, $((bytes / 1000000)) MB of .eml"
  run "tar of the raw .eml files" "$n" "$bytes" tar -cf "$W/$name.tar" -C "$dir" .
  # the floor of any export: every object read, decrypted and checked
  # (GCM tags, Ed25519 manifest signature, digests) with nothing written
  run "verify (read + check, no output)" "$n" "$bytes" \
      $CTL verify --tenant "$name"
  run "export --dir (eml+attachments+csv)" "$n" "$bytes" \
      $CTL export --tenant "$name" --all --dir "$W/$name.dir"
  if [ -n "${BEFORE:-}" ]; then
    run "export --dir (BEFORE build)" "$n" "$bytes" \
        "$BEFORE/tools/archivectl" -d "$W/data" export --tenant "$name" --all \
        --dir "$W/$name.before"
    rm -rf "$W/$name.before"
  fi
  run "export --zip" "$n" "$bytes" \
      $CTL export --tenant "$name" --all --zip "$W/$name.zip"
  run "export --dir --mbox --dat" "$n" "$bytes" \
      $CTL export --tenant "$name" --all --dir "$W/$name.all" --mbox --dat
  run "verify-export" "$n" "$bytes" $CTL verify-export "$W/$name.dir"
  rm -rf "$W/$name.tar" "$W/$name.dir" "$W/$name.zip" "$W/$name.all"
}

mkdir -p "$W/corpus"
tar --zstd -xf "$ROOT/../shared/corpus/sample.tar.zst" -C "$W/corpus"
bench_tenant corpus "$W/corpus/sample"

if [ "$N" -gt 0 ]; then
  mkdir -p "$W/synth"
  python3 - "$W/corpus/sample" "$W/synth" "$N" <<'PY'
import os, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted(f for f in os.listdir(src) if f.endswith(".eml"))
raw = [open(os.path.join(src, f), "rb").read() for f in files]
for i in range(n):
    with open(os.path.join(dst, f"{i:07d}.eml"), "wb") as f:
        f.write(b"X-Bench-Copy: %d\r\n" % i + raw[i % len(raw)])
PY
  bench_tenant synth "$W/synth"
fi
