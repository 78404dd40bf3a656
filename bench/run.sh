#!/usr/bin/env bash
# make bench: every benchmark, one after the other, printing its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/store.sh build 3
bench/ingest.sh build 5000
bench/drain.sh build
bench/web.sh build 10
bench/export.sh build
# bench/search.sh (200,000 messages, about an hour here): make bench-search;
# then, on an archive it kept (KEEP=1 BENCH_DIR=DIR), the same queries
# through the HTTPS API: bench/search_web.sh build DIR
