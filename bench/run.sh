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
#
# At volume (issue 15; hours at the default sizes, run by hand on a quiet
# machine, not part of make bench; each script's header says what it
# prints and which environment variables it takes):
#   bench/stream.sh build 200000 8 32    sustained stream, smtp-sink and archived
#   bench/backlog.sh build 100000 20000  backlog recovery, a stream meanwhile
#   tests/soak/crash.sh build 100000 100 100 SIGKILLs during a stream
#   bench/volume.sh build                the three in a row, unattended
# They send the messages of bench/mailgen (unique, the sample corpus's sizes
# and words) with bench/smtpload; `build/bench/mailgen --corpus DIR --count N
# --out OUTDIR` writes the same messages as .eml files (for import runs).
