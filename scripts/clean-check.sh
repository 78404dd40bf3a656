#!/usr/bin/env bash
# clean-check.sh - the README's two commands on a fresh Debian 12: a
# bookworm chroot made by mmdebstrap (variant apt, the smallest with apt:
# the Essential packages and apt, plus git and make, which the README's
# commands need to exist), a clone of this repository's HEAD at
# /work/archived with a read-only copy of ../shared beside it (the layout
# CI has), then `bash .ci/run` (make test, which installs every package
# through scripts/deps.sh) and `make run` (started, its console fetched
# over HTTPS, stopped).  Whatever a machine had installed by hand is not
# there, so a missing install step fails here.
#
#   scripts/clean-check.sh [DIR]    DIR: where the chroot goes
#                                   (default /var/tmp/archived-clean-check)
#   KEEP=1 scripts/clean-check.sh   keep the chroot afterwards
#   TESTS=REGEX                     instead of the whole suite: `make
#                                   build-test` (which runs deps.sh) and
#                                   the ctest tests matching REGEX, e.g.
#                                   TESTS=env.tools for every package and
#                                   tool capability (minutes, not 40)
#   MIRROR=URL                      the Debian mirror (default: the first
#                                   deb.debian.org-style URI of
#                                   /etc/apt/sources.list*)
#
# Needs root (chroot, mounts); installs mmdebstrap when missing.  Takes
# 20-40 minutes on 2 cores (packages, build, the whole suite).  The run
# happens in a mount namespace of its own: /proc, /sys, /dev, /dev/shm and
# a tmpfs /tmp are mounted inside it and vanish with it.  The network is
# the host's: the tests use loopback only, apt the mirror.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$(cd "$ROOT/../shared" && pwd)
DIR=${1:-/var/tmp/archived-clean-check}
CH=$DIR/root
LOG=$DIR/clean-check.log

[ "$(id -u)" -eq 0 ] || { echo "clean-check: needs root" >&2; exit 1; }
if ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list 2>/dev/null || true) |
    sed -n -e 's/^URIs: *\([^ ]*\).*/\1/p' -e 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) bookworm .*/\2/p' |
    grep -v security | head -1) || true
fi
[ -n "$MIRROR" ] || { echo "clean-check: no Debian mirror found; set MIRROR" >&2; exit 1; }

if [ -e "$CH" ]; then
  echo "clean-check: $CH exists: remove it (rm -rf $DIR) or name another DIR" >&2
  exit 1
fi
mkdir -p "$DIR"
: >"$LOG"
say() { echo "clean-check: $*" | tee -a "$LOG"; }
t0=$SECONDS

say "mmdebstrap bookworm (variant apt + git, make) from $MIRROR into $CH"
# Check-Valid-Until off: a mirror may serve a dated snapshot
mmdebstrap --variant=apt --include=git,make,ca-certificates \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  bookworm "$CH" "deb $MIRROR bookworm main" \
  "deb $MIRROR bookworm-updates main" >>"$LOG" 2>&1
say "chroot made ($((SECONDS - t0)) s): $(chroot "$CH" dpkg-query -W | wc -l) packages"

# the repository as a fresh clone would have it, shared/ beside it, read-only
mkdir -p "$CH/work"
git clone -q --no-local "$ROOT" "$CH/work/archived"
cp -a "$SHARED" "$CH/work/shared"
chmod -R a-w "$CH/work/shared"
cp /etc/resolv.conf "$CH/etc/resolv.conf" 2>/dev/null || true
printf '%s\n' "${TESTS:-}" >"$CH/work/tests-re"
say "cloned $(git -C "$ROOT" rev-parse --short HEAD) into /work/archived"

# inside: a mount namespace of its own; CI=true as CI runs it
cat >"$CH/work/clean-run.sh" <<'IN'
#!/bin/bash
# runs inside the chroot (scripts/clean-check.sh)
set -u
cd /work/archived
export CI=true HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
t0=$SECONDS
re=$(cat /work/tests-re)
if [ -n "$re" ]; then
  echo "== make build-test; ctest -R '$re'"
  make build-test </dev/null && (cd build-test && ctest -R "$re" --output-on-failure)
  rc=$?
  echo "== build-test and ctest -R '$re' exit $rc after $((SECONDS - t0)) s"
else
  echo "== bash .ci/run (make test)"
  bash .ci/run </dev/null
  rc=$?
  echo "== .ci/run exit $rc after $((SECONDS - t0)) s"
fi
t1=$SECONDS
echo "== make run"
# a process group of its own: an asynchronous command of a script
# ignores SIGINT, so make run is stopped with SIGTERM to its group
# (scripts/run.sh traps it and stops keysvc, archived and the scanners)
setsid make run >/tmp/run.out 2>&1 </dev/null &
pid=$!
url=
for _ in $(seq 1 3000); do     # until it says where the console is (300 s)
  url=$(sed -n 's/^ *console and API *\(https:[^ ]*\).*/\1/p' /tmp/run.out)
  [ -n "$url" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
code=000
for _ in $(seq 1 600); do      # until the console answers (60 s)
  code=$(curl -sk -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)
  [ "$code" = 200 ] && break
  sleep 0.1
done
kill -TERM -- -$pid 2>/dev/null
wait $pid
cat /tmp/run.out
echo "== make run: console $url answered $code after $((SECONDS - t1)) s"
[ "$code" = 200 ] || rc=1
echo "== installed by deps.sh: $(dpkg-query -W | wc -l) packages in all"
exit $rc
IN
chmod +x "$CH/work/clean-run.sh"

say "running .ci/run and make run inside (log: $LOG)"
rc=0
unshare --mount --propagation private -- bash -c '
  set -e
  CH=$1
  mount -t proc proc "$CH/proc"
  mount -t sysfs sys "$CH/sys"
  mount --rbind /dev "$CH/dev"
  mount -t tmpfs -o mode=1777 shm "$CH/dev/shm"
  mount -t tmpfs -o mode=1777 tmp "$CH/tmp"
  exec chroot "$CH" /work/clean-run.sh
' _ "$CH" >>"$LOG" 2>&1 || rc=$?
grep -E '^== |tests passed|tests failed|^deps: installing' "$LOG" | tee /dev/stderr >/dev/null
say "done in $((SECONDS - t0)) s, exit $rc"
if [ "${KEEP:-0}" != 1 ]; then
  rm -rf "$CH"
fi
exit $rc
