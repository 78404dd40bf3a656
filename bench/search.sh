#!/usr/bin/env bash
# bench/search.sh BUILD [N]: the search index against notmuch, same run,
# same corpus: N messages (default 200,000) built from the sample
# (bench/search_corpus.py), imported with archivectl import --no-index,
# then indexed with archived's indexer (archivectl reindex: store -> read
# sealed -> GMime -> blind FTS5, the code path archived's indexer thread
# runs) and with `notmuch new` (GMime + Xapian, plaintext).  Prints
# messages/s, index size and p50/p95/p99 latency of 20 queries, each run
# 5 times: archived in process (search_run: exact count + first page of
# 50 by date, display rows decrypted) and as a whole command
# (archivectl search), notmuch as commands (notmuch count + notmuch
# search --output=messages --limit=50) and warm in one process
# (bench/notmuch_warm.py, the same count and first 50 through libnotmuch).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-200000}
B=$PWD/$BUILD
W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ar-bench-search-XXXXXX")}
CTL="$B/tools/archivectl -d $W/data"
mkdir -p "$W"
trap '[ -n "${KPID:-}" ] && kill $KPID 2>/dev/null; [ -z "${KEEP:-}" ] && rm -rf "$W"' EXIT

if [ ! -d "$W/sample" ]; then
	tar --zstd -xf ../shared/corpus/sample.tar.zst -C "$W"
fi
echo "corpus: $N messages from the sample into $W/mail"
python3 bench/search_corpus.py "$W/sample" "$W/mail" "$N"
du -sh "$W/mail/cur" | awk '{print "corpus size: " $1}'

"$B/keysvc/archive-keysvc" -d "$W/keys" >"$W/keysvc.log" 2>&1 &
KPID=$!
for _ in $(seq 100); do [ -S "$W/keys/keysvc.sock" ] && break; sleep 0.1; done
$CTL init --keysvc-socket "$W/keys/keysvc.sock" >/dev/null
$CTL tenant add bench --journal-address journal@bench.example >/dev/null
$CTL --json import --no-index --tenant bench "$W/mail" >"$W/import.json"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("import (not part of indexing): %d stored in %.0f s" % (j["stored"], j["seconds"]))' "$W/import.json"

sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(date +%s.%N)
$CTL --json reindex --tenant bench >"$W/reindex.json"
t1=$(date +%s.%N)
ar_idx=$(du -sb "$W/data/index" | cut -f1)

cat >"$W/notmuch-config" <<CONF
[database]
path=$W/mail
[user]
name=Bench
primary_email=bench@bench.example
[new]
tags=
[search]
exclude_tags=
[maildir]
synchronize_flags=false
CONF
export NOTMUCH_CONFIG=$W/notmuch-config
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
t2=$(date +%s.%N)
notmuch new --quiet
t3=$(date +%s.%N)
nm_idx=$(du -sb "$W/mail/.notmuch" | cut -f1)
nm_n=$(notmuch count '*')

python3 bench/search_queries.py "$CTL" bench "$W" "$N" "$t0" "$t1" "$t2" \
    "$t3" "$ar_idx" "$nm_idx" "$nm_n"
echo
echo "notmuch warm, in one process (bench/notmuch_warm.py): median ms per query"
python3 bench/notmuch_warm.py "$W"
