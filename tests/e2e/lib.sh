# lib.sh - shared by the end-to-end tests (sourced, not run).
#
# Gives each test a temp directory, the real archive-keysvc and archivectl
# from $AR_BUILD_DIR, the sample corpus, checks that count, and a final
# "N passed, N failed" line.  Every daemon's log is scanned for sanitizer
# reports at the end.
set -u
: "${AR_BUILD_DIR:?AR_BUILD_DIR must name the build directory}"
: "${AR_SOURCE_DIR:?AR_SOURCE_DIR must name the source directory}"

B=$AR_BUILD_DIR
S=$AR_SOURCE_DIR
CTL_BIN=$B/tools/archivectl
KEYSVC_BIN=$B/keysvc/archive-keysvc
TAMPER=$B/tests/tools/lmdb_tamper
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

T=$(mktemp -d "${TMPDIR:-/tmp}/ar-e2e-XXXXXX")
PASSED=0
FAILED=0
PIDS=()

ok()   { PASSED=$((PASSED + 1)); echo "ok: $*"; }
bad()  { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND...: the command's exit status decides.
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# wait_until SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds;
# false once SECONDS have passed on the clock (a bound, not a count of
# rounds, which a loaded machine stretches).  Tests wait for a condition
# with a generous bound, never for a guess at the machine's speed: the
# bound only matters when the condition never comes.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

# finish [STATUS]: the end of every test (the EXIT trap).  A test that
# stopped before its end (an unbound variable under set -u, a service that
# did not start: exit status STATUS not 0) fails, whatever its checks said.
finish() {
	local p rc=${1:-0}
	[ "$rc" -eq 0 ] ||
	    bad "the test stopped before its end (exit status $rc; the error is above)"
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	# the gateway's scanners (gw_services), by the pids under their dir
	[ -z "${GW_DIR:-}" ] ||
	    "$S/scripts/gateway-services.sh" stop "$GW_DIR" >/dev/null 2>&1
	if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" \
	    "$T"/*.log >/dev/null 2>&1; then
		bad "sanitizer report in a daemon log:"
		grep -hE -A20 "ERROR: (Address|Leak)Sanitizer|runtime error:" \
		    "$T"/*.log | head -60
	fi
	echo "$PASSED passed, $FAILED failed"
	chmod -R u+w "$T" 2>/dev/null
	if [ -n "${AR_E2E_KEEP:-}" ]; then
		echo "kept: $T"         # AR_E2E_KEEP=1: look at a failed run
	else
		rm -rf "$T"
	fi
	[ "$FAILED" -eq 0 ]
}
trap 'finish $?; exit $?' EXIT

# keysvc_start DIR: run the real key service on DIR, wait until its socket
# answers (a connect through archivectl is not needed: the socket appears
# only once the daemon listens).  Sets KEYSVC_PID.
keysvc_ready() {
	grep -q "status=ready" "$T/keysvc.log" 2>/dev/null && [ -S "$1/keysvc.sock" ]
}
keysvc_start() {
	local dir=$1
	"$KEYSVC_BIN" -d "$dir" >>"$T/keysvc.log" 2>&1 &
	KEYSVC_PID=$!
	PIDS+=("$KEYSVC_PID")
	wait_until 120 started_or_gone "$KEYSVC_PID" keysvc_ready "$dir" &&
	    keysvc_ready "$dir" && return 0
	echo "archive-keysvc did not start:" >&2
	cat "$T/keysvc.log" >&2
	exit 1
}

keysvc_stop() {
	kill -TERM "$KEYSVC_PID" 2>/dev/null
	wait "$KEYSVC_PID" 2>/dev/null
	# the log keeps accumulating; reset the ready marker for a restart
	sed -i 's/status=ready/status=was-ready/' "$T/keysvc.log"
}

# An archive in $T/data with its key service in $T/keys.
archive_init() {
	DATA=$T/data
	KEYS=$T/keys
	keysvc_start "$KEYS"
	"$CTL_BIN" -d "$DATA" init --keysvc-socket "$KEYS/keysvc.sock" >/dev/null
}

ctl() { "$CTL_BIN" -d "$DATA" "$@"; }

# The sample corpus, unpacked once per build directory.
corpus() {
	local dir=$B/corpus
	if [ ! -f "$dir/.done" ]; then
		(
			flock 9
			if [ ! -f "$dir/.done" ]; then
				rm -rf "$dir" && mkdir -p "$dir"
				tar --zstd -xf "$S/../shared/corpus/sample.tar.zst" \
				    -C "$dir" && touch "$dir/.done"
			fi
		) 9>"$B/corpus.lock"
	fi
	CORPUS=$dir/sample
}

# set_conf NAME VALUE: change one setting of $DATA/archived.conf (added
# when the file does not name it).
set_conf() {
	if grep -q "^$1 = " "$DATA/archived.conf"; then
		sed -i "s|^$1 = .*|$1 = $2|" "$DATA/archived.conf"
	else
		echo "$1 = $2" >>"$DATA/archived.conf"
	fi
}

# ended PID: process PID is gone, or has exited and waits to be reaped (a
# zombie, which kill -0 still finds)
ended() {
	[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo Z)" = Z ]
}

# started_or_gone PID CHECK...: CHECK passes, or process PID has ended (no
# use waiting longer); for wait_until
started_or_gone() {
	local pid=$1
	shift
	"$@" || ended "$pid"
}

# archived_start: the real daemon on $DATA with SMTP on a free port
# (SMTP_PORT), waiting until it listens.  Sets ARCHIVED_PID.
smtp_ready() {
	SMTP_PORT=$(sed -n 's/.*smtp listen=.* port=\([0-9]*\) .*status=ready.*/\1/p' \
	    "$T/archived.log" | tail -1)
	[ -n "$SMTP_PORT" ]
}
archived_start() {
	set_conf smtp_listen 127.0.0.1:0
	set_conf web_listen 127.0.0.1:0   # never a fixed port in tests
	: >"$T/archived.log"
	"$B/archived/archived" -d "$DATA" >>"$T/archived.log" 2>&1 &
	ARCHIVED_PID=$!
	PIDS+=("$ARCHIVED_PID")
	wait_until 120 started_or_gone "$ARCHIVED_PID" smtp_ready &&
	    smtp_ready && return 0
	echo "archived did not start:" >&2
	cat "$T/archived.log" >&2
	exit 1
}

archived_stop() {
	kill -TERM "$ARCHIVED_PID" 2>/dev/null
	wait "$ARCHIVED_PID" 2>/dev/null
	return 0
}

# objects_of TENANT: how many objects the tenant has.
objects_of() {
	ctl --json stats 2>/dev/null | python3 -c "import json,sys
for t in json.load(sys.stdin)['tenants']:
    if t['tenant'] == '$1': print(t['objects'])"
}

# wait_objects TENANT N: until the tenant has N objects (at most 300 s).
has_objects() { local n; n=$(objects_of "$1"); [ "${n:-0}" -ge "$2" ]; }
wait_objects() { wait_until 300 has_objects "$1" "$2"; }

# archived_start_web: archived_start with the console on a free loopback
# port over plain HTTP (web_tls = no); sets WEB_PORT and WEB (base URL).
web_ready() {
	WEB_PORT=$(sed -n 's/.*web listen=.* port=\([0-9]*\) .*status=ready.*/\1/p' \
	    "$T/archived.log" | tail -1)
	[ -n "$WEB_PORT" ]
}
archived_start_web() {
	set_conf web_tls no
	archived_start
	if ! wait_until 120 started_or_gone "$ARCHIVED_PID" web_ready ||
	    ! web_ready; then
		echo "the console did not start:" >&2
		cat "$T/archived.log" >&2
		exit 1
	fi
	WEB=http://127.0.0.1:$WEB_PORT
}

# A JSON API client for the web tests.  api METHOD PATH [JSON]: with the
# cookie jar $JAR and the CSRF token $CSRF; sets CODE, the body in
# $T/body and the headers in $T/hdr.  js EXPR: EXPR over the body as d.
# login TENANT USER [PASSWORD]: a new jar; CSRF set on success (the
# password defaults to $PW).
JAR=${T:-/tmp}/jar
CSRF=
api() {
	local args=(-s -o "$T/body" -D "$T/hdr" -w '%{http_code}' -X "$1"
	    -b "$JAR" -c "$JAR")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json'
	    --data-binary "$3")
	[ -n "$CSRF" ] && args+=(-H "X-CSRF-Token: $CSRF")
	CODE=$(curl "${args[@]}" "$WEB$2")
}
js() { python3 -c "import json,sys
d=json.load(open('$T/body'))
print($1)"; }
login() {
	JAR=$T/jar.$2
	rm -f "$JAR"
	CSRF=
	api POST /api/v1/session "{\"tenant\":\"$1\",\"user\":\"$2\",\"password\":\"${3:-$PW}\"}"
	[ "$CODE" = 200 ] && CSRF=$(js 'd["csrf_token"]')
	return 0
}
code_is() { [ "$CODE" = "$1" ]; }
err_is() { [ "$(js 'd["error"]["code"]')" = "$1" ]; }

# --- S3 (Ceph RGW) -----------------------------------------------------------
# The S3 tests (t_s3_*.sh) share one RGW that ctest starts first (fixture
# "rgw": scripts/rgw.sh up $B/rgw); run alone, a test starts its own.
rgw_env() {
	if [ ! -f "$B/rgw/env" ] || ! curl -s -o /dev/null --max-time 5 \
	    "$(. "$B/rgw/env"; echo "$S3_ENDPOINT")/"; then
		"$S/scripts/rgw.sh" up "$T/rgw" >/dev/null || exit 1
		RGW_OWN=$T/rgw
		. "$T/rgw/env"
	else
		. "$B/rgw/env"
	fi
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	S3_PORT=${S3_ENDPOINT##*:}
}
rgw_own_down() {
	[ -z "${RGW_OWN:-}" ] || "$S/scripts/rgw.sh" down "$RGW_OWN" >/dev/null
	return 0
}

# s3 ARGS...: curl signed with the test user's keys (the payload hash of an
# empty body unless the caller sets its own x-amz-content-sha256).
S3_EMPTY=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3() {
	curl -s --aws-sigv4 "aws:amz:us-east-1:s3" \
	    --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@"
}
# s3_put_xml URL XML: a PUT of a small XML body (retention, legal hold).
s3_put_xml() {
	local sha
	sha=$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)
	s3 -X PUT --data-binary "$2" -H "x-amz-content-sha256: $sha" \
	    -o "$T/s3.out" -w '%{http_code}' "$1"
}
# bucket_new NAME [nolock|noversioning]: a fresh bucket (unique name per
# test run), with Object Lock unless told otherwise.  Sets BUCKET.
bucket_new() {
	BUCKET=$1-$(basename "$T" | tr 'A-Z_' 'a-z-' | tr -cd 'a-z0-9-' | tail -c 20)
	local h=()
	[ "${2:-}" = "" ] && h=(-H 'x-amz-bucket-object-lock-enabled: true')
	s3 -X PUT -H "x-amz-content-sha256: $S3_EMPTY" "${h[@]}" \
	    -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/$BUCKET" | grep -q 200
}
# archive_init_s3 BUCKET [ENDPOINT]: archive_init on the s3 backend.
archive_init_s3() {
	DATA=$T/data
	KEYS=$T/keys
	keysvc_start "$KEYS"
	"$CTL_BIN" -d "$DATA" init --keysvc-socket "$KEYS/keysvc.sock" \
	    --backend s3 --s3-endpoint "${2:-$S3_ENDPOINT}" --s3-bucket "$1" \
	    >/dev/null
}
# s3proxy_start: the logging/delaying proxy in front of RGW; sets
# PROXY_PORT, PROXY_PID, PROXY_LOG, PROXY_CTL (echo "delay 500" > it).
s3proxy_start() {
	local port=${1:-0}
	PROXY_LOG=$T/proxy.requests
	PROXY_CTL=$T/proxy.control
	rm -f "$T/proxy.port"
	python3 "$S/tests/tools/s3proxy.py" "$S3_PORT" "$T/proxy.port" \
	    "$PROXY_LOG" "$PROXY_CTL" "$port" 2>>"$T/proxy.err" &
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	# python's start can take seconds on a loaded machine: up to 2 min
	wait_until 120 started_or_gone "$PROXY_PID" test -s "$T/proxy.port"
	PROXY_PORT=$(cat "$T/proxy.port" 2>/dev/null)
	if [ -z "$PROXY_PORT" ]; then
		echo "s3proxy did not start:" >&2
		cat "$T/proxy.err" >&2
		exit 1
	fi
}
s3proxy_stop() { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; }
# --- the filtering gateway ---------------------------------------------------
#
# gw_services: the real scanners (Knot DNS with the test zones, clamd with
# the test signatures, rspamd with gateway/rspamd) under $T/gw, started
# once by scripts/gateway-services.sh --db test and stopped at the end
# (finish); sources their env file (CLAMD_SOCKET, RSPAMD_URL, DNS_ADDR,
# DKIM_*, GW_DOMAIN_*, GW_IP_*).  The gateway stays off in every test that
# does not call archived_start_gw.
gw_services() {
	GW_DIR=$T/gw
	chmod a+x "$T"        # rspamd runs as _rspamd when we are root
	if ! "$S/scripts/gateway-services.sh" start "$GW_DIR" --db test \
	    >"$T/gw-services.out" 2>&1; then
		echo "gateway-services.sh did not start:" >&2
		cat "$T/gw-services.out" >&2
		exit 1
	fi
	# shellcheck disable=SC1091
	. "$GW_DIR/env"
}
# gw_rspamd_test_conf [MAX_MESSAGE]: call before gw_services: rspamd gets
# the project's configuration (gateway/rspamd) plus the tests' own rule,
# tests/e2e/rspamd/rspamd.local.lua ("X-Archived-Test-Score: N" adds N to
# the score, symbol ARCHIVED_TEST_SCORE; gw_mail.py's score-N), and, when
# given, rspamd's max_message (e.g. 100Mb; rspamd's default is 50Mb).
gw_rspamd_test_conf() {
	local d=$T/rspamd-conf
	rm -rf "$d"
	cp -r "$S/gateway/rspamd" "$d" &&
	    cp "$S/tests/e2e/rspamd/rspamd.local.lua" "$d/" || exit 1
	[ -z "${1:-}" ] || echo "max_message = $1;" >>"$d/local.d/options.inc"
	export AR_GW_RSPAMD_CONF=$d
}
# gw_service_stop|gw_service_start NAME: one scanner (clamd, rspamd)
gw_service_stop() {
	"$S/scripts/gateway-services.sh" stop "$GW_DIR" "$1" >>"$T/gw-services.out" 2>&1
}
gw_service_start() {
	"$S/scripts/gateway-services.sh" start "$GW_DIR" --db test "$1" \
	    >>"$T/gw-services.out" 2>&1
}

# archived_start_gw: archived_start with the gateway on a free loopback
# port (GW_PORT) and the scanners of gw_services; waits for the log line
# "gateway listen=... port=N ... status=ready".
gw_ready() {
	GW_PORT=$(sed -n 's/.*gateway listen=.* port=\([0-9]*\) .*status=ready.*/\1/p' \
	    "$T/archived.log" | tail -1)
	[ -n "$GW_PORT" ]
}
archived_start_gw() {
	set_conf gateway_listen 127.0.0.1:0
	set_conf clamd_socket "$CLAMD_SOCKET"
	set_conf rspamd_url "$RSPAMD_URL"
	set_conf gateway_dns "$DNS_ADDR"
	archived_start
	if ! wait_until 120 started_or_gone "$ARCHIVED_PID" gw_ready ||
	    ! gw_ready; then
		echo "the gateway did not start:" >&2
		cat "$T/archived.log" >&2
		exit 1
	fi
}

# free_port: a TCP port free on 127.0.0.1 now
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# sink_start [NAME]: Postfix smtp-sink as the tenant's own mail server on a
# free port (SINK_PORT), every message it accepts dumped as one file under
# $T/NAME (default sink: SINK_DIR).  Stopped at the end.
sink_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$SINK_PORT") 2>/dev/null; }
sink_start() {
	SINK_DIR=$T/${1:-sink}
	mkdir -p "$SINK_DIR"
	SINK_PORT=$(free_port)
	smtp-sink -u "$(id -un)" -h sink.test -d "$SINK_DIR/%Y%m%d%H%M%S." \
	    "127.0.0.1:$SINK_PORT" 100 >>"$T/sink.log" 2>&1 &
	SINK_PID=$!
	PIDS+=("$SINK_PID")
	wait_until 60 started_or_gone "$SINK_PID" sink_ready && sink_ready &&
	    return 0
	echo "smtp-sink did not start:" >&2
	cat "$T/sink.log" >&2
	exit 1
}
# sink_count: messages the sink received
sink_count() { find "$SINK_DIR" -type f | wc -l; }
sink_has() { [ "$(sink_count)" -ge "$1" ]; }
# sink_grep TEXT: files of the sink holding TEXT
sink_grep() { grep -rl -- "$1" "$SINK_DIR" 2>/dev/null; }

# gw_tenant NAME DOMAIN: a tenant receiving DOMAIN's mail through the
# gateway, delivered to the sink (sink_start first)
gw_tenant() {
	ctl tenant add "$1" --journal-address "journal@$1.journal.test" >/dev/null &&
	    ctl tenant set "$1" --domain "$2" --relay-to "127.0.0.1:$SINK_PORT" \
	    --tls none >/dev/null
}

# gw_send FILE FROM TO [swaks options...]: FILE through the gateway; the
# transcript on stdout
gw_send() {
	local f=$1 from=$2 to=$3
	shift 3
	swaks --server "127.0.0.1:$GW_PORT" --from "$from" --to "$to" \
	    --data "$f" --timeout 120 "$@" 2>&1
}
