# lib_relay.sh - shared by the gateway relay tests (sourced after lib.sh).
#
# The real scanners and test DNS (scripts/gateway-services.sh) under $T/gws,
# downstream servers (Postfix's smtp-sink, the project's smtp_testd) on
# free loopback ports, and archived with its gateway listener.  Everything
# started here is stopped at exit, before lib.sh's own finish.
GWS=$S/scripts/gateway-services.sh
SMTP_TESTD=$B/tests/tools/smtp_testd
PY=$S/tests/e2e/py
chmod 711 "$T"               # smtp-sink runs as nobody and writes under $T

relay_cleanup() {
	[ -d "$T/gws/pids" ] && "$GWS" stop "$T/gws" >/dev/null 2>&1
	return 0
}
trap 'relay_cleanup; finish; exit $?' EXIT

# gw_services SERVICE...: start them under $T/gws and source their env.
gw_services() {
	if ! "$GWS" start "$T/gws" --db test "$@" >"$T/gws.out" 2>"$T/gws.log"; then
		echo "gateway-services.sh failed:" >&2
		cat "$T/gws.log" >&2
		exit 1
	fi
	. "$T/gws/env"
}

# free_port: a TCP port free on 127.0.0.1 now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# listening PORT: something accepts connections on 127.0.0.1:PORT.
listening() {
	python3 -c "import socket,sys
s=socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(('127.0.0.1',$1))==0 else 1)"
}

# conf_put NAME VALUE: set a setting of $DATA/archived.conf (added when the
# file does not have the line yet).
conf_put() {
	if grep -q "^$1 = " "$DATA/archived.conf"; then
		set_conf "$1" "$2"
	else
		echo "$1 = $2" >>"$DATA/archived.conf"
	fi
}

# testd_start NAME PORT [OPTION...]: smtp_testd writing each message to
# $T/NAME/<n>.eml and <n>.env, on 127.0.0.1:PORT; sets TESTD_PID.
testd_start() {
	local name=$1 port=$2
	shift 2
	mkdir -p "$T/$name"
	"$SMTP_TESTD" -d "$T/$name" -l 127.0.0.1 -p "$port" "$@" \
	    >"$T/$name.out" 2>>"$T/testd-$name.log" &
	TESTD_PID=$!
	PIDS+=("$TESTD_PID")
	if ! wait_until 60 grep -q "^port=" "$T/$name.out"; then
		echo "smtp_testd $name did not start:" >&2
		cat "$T/testd-$name.log" >&2
		exit 1
	fi
}

# sink_start DIR PORT [OPTION...]: Postfix's smtp-sink dumping each message
# to DIR/m.* (-d), on 127.0.0.1:PORT; sets SINK_PID.
sink_start() {
	local dir=$1 port=$2
	shift 2
	mkdir -p "$dir"
	chmod 777 "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		smtp-sink -u nobody -d "$dir/m." "$@" "127.0.0.1:$port" 64 \
		    >>"$T/sink.log" 2>&1 &
	else
		smtp-sink -d "$dir/m." "$@" "127.0.0.1:$port" 64 \
		    >>"$T/sink.log" 2>&1 &
	fi
	SINK_PID=$!
	PIDS+=("$SINK_PID")
	wait_until 60 listening "$port" || { echo "smtp-sink did not start" >&2; exit 1; }
}

stop_pid() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 0; }

# gateway_start: archived (archived_start) with its gateway on a free
# loopback port; sets GW_PORT.  The gateway settings are conf_put before.
gw_ready() {
	GW_PORT=$(sed -n 's/.*gateway listen=.* port=\([0-9]*\) .*status=ready.*/\1/p' \
	    "$T/archived.log" | tail -1)
	[ -n "$GW_PORT" ]
}
gateway_start() {
	conf_put gateway_listen 127.0.0.1:0
	archived_start
	if ! wait_until 120 started_or_gone "$ARCHIVED_PID" gw_ready || ! gw_ready; then
		echo "the gateway did not start:" >&2
		cat "$T/archived.log" >&2
		exit 1
	fi
}

# files_in DIR GLOB: how many files match.
files_in() { find "$1" -maxdepth 1 -name "$2" -type f 2>/dev/null | wc -l; }
has_files() { [ "$(files_in "$1" "$2")" -ge "$3" ]; }

# relay_queue_json: archivectl relay queue --json into $T/rq.json.
relay_queue_json() { ctl --json relay queue >"$T/rq.json" 2>/dev/null; }
# rq DOMAIN FIELD: a field of the domain's line in relay queue --json.
rq() {
	relay_queue_json
	python3 -c "import json
d=json.load(open('$T/rq.json'))
for x in d['domains']:
    if x['domain']=='$1': print(x['$2'])"
}
# rq_waiting DOMAIN: its recipients not final yet (pending + deferred).
rq_waiting() {
	relay_queue_json
	python3 -c "import json
d=json.load(open('$T/rq.json'))
print(sum(x['pending']+x['deferred'] for x in d['domains'] if x['domain']=='$1'))"
}
