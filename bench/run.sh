#!/usr/bin/env bash
# make bench: every benchmark, one after the other, printing its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/store.sh build 3
bench/ingest.sh build 5000
bench/web.sh build 10
