#!/usr/bin/env bash
# A one-node Ceph RADOS Gateway for the S3 tests, from ../shared/tools:
#   scripts/rgw.sh up DIR     start it on free loopback ports, wait until it
#                             answers; DIR/env gets S3_ENDPOINT, S3_REGION,
#                             S3_ACCESS_KEY, S3_SECRET_KEY (about 20-30 s)
#   scripts/rgw.sh down DIR   stop the daemons it started (by PID)
# Needs the Debian packages ceph-mon ceph-osd radosgw ceph-common
# (scripts/deps.sh installs them).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=${RGW_TOOLS:-$HERE/../../shared/tools}
[ -x "$TOOLS/rgw-up.sh" ] || TOOLS=$HERE/../shared/tools
cmd=${1:?usage: rgw.sh up|down DIR}
DIR=${2:?usage: rgw.sh up|down DIR}

free_port() {
	python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case $cmd in
up)
	[ -x "$TOOLS/rgw-up.sh" ] || { echo "rgw.sh: no rgw-up.sh under $TOOLS" >&2; exit 1; }
	command -v radosgw >/dev/null || { echo "rgw.sh: radosgw is not installed (scripts/deps.sh)" >&2; exit 1; }
	[ -f "$DIR/pids" ] && "$TOOLS/rgw-down.sh" "$DIR" >/dev/null 2>&1 || true
	rm -rf "$DIR"
	mkdir -p "$DIR"
	RGW_PORT=$(free_port) MON_PORT=$(free_port) \
	    "$TOOLS/rgw-up.sh" "$DIR" >"$DIR/up.log" 2>&1 || {
		cat "$DIR/up.log" >&2; exit 1; }
	echo "rgw.sh: up, $(grep S3_ENDPOINT "$DIR/env")"
	;;
down)
	[ -d "$DIR" ] || exit 0
	"$TOOLS/rgw-down.sh" "$DIR"
	;;
*)
	echo "usage: rgw.sh up|down DIR" >&2
	exit 2
	;;
esac
