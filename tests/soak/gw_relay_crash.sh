#!/usr/bin/env bash
# tests/soak/gw_relay_crash.sh - the gateway relay crash test at the size
# of issue 18 (50 SIGKILLs of archived during a 5,000-message stream
# through the gateway to a downstream), run by hand: it takes tens of
# minutes under the sanitizers.  The same test as the suite's
# tests/e2e/t_gw_relay_crash.sh (10 kills over 1,000 messages), larger;
# prints acknowledged, lost, duplicates; exit 0 when nothing was lost.
#
#   tests/soak/gw_relay_crash.sh [BUILD_DIR] [MESSAGES] [KILLS] [SESSIONS]
#     defaults: build 5000 50 8
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
export AR_BUILD_DIR=$BUILD AR_SOURCE_DIR=$ROOT
export AR_GW_CRASH_COUNT=${2:-5000} AR_GW_CRASH_KILLS=${3:-50}
export AR_GW_CRASH_SESSIONS=${4:-8}
start=$(date +%s)
set +e
bash "$ROOT/tests/e2e/t_gw_relay_crash.sh" 2>&1 | tee /dev/stderr |
    grep -E "^gw_relay_crash:|acknowledged=|passed, .* failed" >"${TMPDIR:-/tmp}/gw_relay_crash.$$"
rc=${PIPESTATUS[0]}
set -e
echo "--- summary ($(($(date +%s) - start)) s)"
cat "${TMPDIR:-/tmp}/gw_relay_crash.$$"
rm -f "${TMPDIR:-/tmp}/gw_relay_crash.$$"
exit "$rc"
