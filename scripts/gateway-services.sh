#!/usr/bin/env bash
# gateway-services.sh - the real scanners the filtering gateway talks to,
# started on loopback under one directory for `make run` and the tests:
#
#   dns     Knot DNS, authoritative only, on 127.0.0.1:<port> (UDP+TCP),
#           serving the test zones: a DNSBL (bl.test lists 127.0.0.2), SPF,
#           a DKIM key made at start, DMARC p=reject / p=none
#   clamd   clamav-daemon on DIR/clamd/clamd.sock with the system's
#           database or the project's test signatures (EICAR, a marker)
#   rspamd  rspamd with the configuration in gateway/rspamd/ (local only,
#           its one resolver is the dns above), normal worker (/checkv2),
#           controller (/ping, /stat) and a milter proxy worker
#   milter  clamav-milter in front of that clamd (for bench/gateway.sh's
#           Postfix reference stack; not started unless named)
#
# Usage:
#   gateway-services.sh start DIR [--db auto|test|system] [SERVICE...]
#       start SERVICEs (default: dns clamd rspamd), wait until each answers
#       (DNS query, clamd PING, rspamd /ping; no fixed sleeps) and print
#       the path of DIR/env, a shell file to source (CLAMD_SOCKET,
#       RSPAMD_URL, DNS_ADDR, DKIM_*, GW_* test names).  A service already
#       running under DIR is left as it is; one started after a stop gets
#       the ports it had before.
#   gateway-services.sh stop DIR [SERVICE...]
#       stop them (SIGTERM, then SIGKILL after 10 s; a stopped (SIGSTOP)
#       daemon is continued first), by the pids under DIR/pids only.
#   gateway-services.sh status DIR      one line per service
#
# Environment:
#   AR_GW_STREAM_MAX   clamd StreamMaxLength (default 100M; also its
#                      MaxFileSize and MaxScanSize floor)
#   AR_GW_CLAMD_THREADS clamd MaxThreads (default 8)
#   AR_GW_RSPAMD_WORKERS rspamd normal workers (default: number of CPUs)
#   AR_GW_RSPAMD_HS_CACHE rspamd's compiled Hyperscan databases, shared
#                      by every start (default /var/tmp/archived-rspamd-hs-UID):
#                      the first start compiles them (seconds idle, minutes
#                      on a loaded machine), later ones load them
#   AR_GW_DNS_PORT, AR_GW_RSPAMD_PORT, AR_GW_RSPAMD_CTL_PORT,
#   AR_GW_RSPAMD_MILTER_PORT, AR_GW_CLAMAV_MILTER_PORT
#                      fixed ports (default: free ports picked at start)
#
# --db auto (the default) uses the system's ClamAV database
# (/var/lib/clamav/*.cvd|*.cld) when there is one and says so, else the
# test signatures; --db test always the test signatures (the tests: clamd
# then starts in well under a second); --db system requires the system's.
# Run as root, clamd and knot run as root and rspamd drops to _rspamd (the
# package's user; DIR is made traversable for it); as another user all run
# as that user.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RSPAMD_CONF_SRC=${AR_GW_RSPAMD_CONF:-$ROOT/gateway/rspamd}

T0=$(date +%s%N)
say() {
	local ms=$((($(date +%s%N) - T0) / 1000000))
	printf 'gateway-services: [%d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&2
}
die() { echo "gateway-services: $*" >&2; exit 1; }

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
shift 2
DB_MODE=auto
SERVICES=()
while [ $# -gt 0 ]; do
	case $1 in
	--db) DB_MODE=${2:?--db needs auto, test or system}; shift 2 ;;
	--db=*) DB_MODE=${1#--db=}; shift ;;
	dns | clamd | rspamd | milter) SERVICES+=("$1"); shift ;;
	*) die "unknown argument '$1' (services: dns clamd rspamd milter)" ;;
	esac
done
case $DB_MODE in auto | test | system) ;; *) die "--db: '$DB_MODE' is not auto, test or system" ;; esac

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PIDDIR=$DIR/pids
PORTS=$DIR/ports
mkdir -p "$PIDDIR"
touch "$PORTS"

ISROOT=0
[ "$(id -u)" -eq 0 ] && ISROOT=1

# --- small helpers ---------------------------------------------------------

pid_of() { [ -f "$PIDDIR/$1.pid" ] && cat "$PIDDIR/$1.pid" || true; }
running() {
	local p
	p=$(pid_of "$1")
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

# port NAME ENVVAR: the port recorded for NAME under DIR, else $ENVVAR,
# else a free one (TCP and UDP both free on 127.0.0.1, not one recorded).
port() {
	local name=$1 var=$2 p
	p=$(sed -n "s/^$name=//p" "$PORTS")
	if [ -z "$p" ]; then
		p=${!var:-}
		[ -n "$p" ] || p=$(python3 - "$PORTS" <<'EOF'
import random, socket, sys
taken = {l.split("=", 1)[1].strip() for l in open(sys.argv[1]) if "=" in l}
for _ in range(500):
    p = random.randint(20000, 59999)
    if str(p) in taken:
        continue
    try:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            s.bind(("127.0.0.1", p))
            s.close()
    except OSError:
        continue
    print(p)
    break
EOF
)
		[ -n "$p" ] || die "no free port for $name"
		echo "$name=$p" >>"$PORTS"
	fi
	echo "$p"
}

# wait_for WHAT PIDNAME SECONDS COMMAND...: poll COMMAND until it succeeds;
# fail early when the daemon died, or after SECONDS.
wait_for() {
	local what=$1 name=$2 secs=$3 end
	shift 3
	end=$(($(date +%s) + secs))
	while ! "$@" >/dev/null 2>&1; do
		if ! running "$name"; then
			die "$what exited during start (log: $(ls "$DIR/$name"/*.log 2>/dev/null | head -1))"
		fi
		[ "$(date +%s)" -lt "$end" ] || die "$what did not answer within ${secs}s"
		sleep 0.05
	done
}

# Bytes from "100M", "512K", "2G" or a plain number.
bytes() {
	local v=$1
	case $v in
	*[kK]) echo $((${v%?} * 1024)) ;;
	*[mM]) echo $((${v%?} * 1024 * 1024)) ;;
	*[gG]) echo $((${v%?} * 1024 * 1024 * 1024)) ;;
	*) echo "$v" ;;
	esac
}

clamd_ping() {
	python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"zPING\0")
sys.exit(0 if s.recv(16).startswith(b"PONG") else 1)
EOF
}

# --- dns: Knot DNS with the test zones -----------------------------------

TEST_DOMAIN_REJECT=reject.test   # DMARC p=reject, SPF, DKIM key
TEST_DOMAIN_NONE=none.test       # DMARC p=none, SPF, DKIM key
TEST_DOMAIN_OTHER=other.test     # SPF only, no DMARC
DNSBL_ZONE=bl.test               # lists 127.0.0.2
TEST_DOMAIN_LOCAL=local.test     # MX on 127.0.0.1 (relay tests: the port
                                 # is archived's AR_TEST_MX_PORT)
IP_PASS=192.0.2.10               # in every test domain's SPF (TEST-NET-1)
IP_FAIL=198.51.100.7             # in none (TEST-NET-2)
# loopback addresses a test can connect from (Linux routes all of 127/8 to
# lo): 127.0.0.3 is in every test domain's SPF, 127.0.0.1 in none,
# 127.0.0.2 is the DNSBL's listed address
IP_LOCAL_PASS=127.0.0.3
DKIM_SELECTOR=ar1

make_zone() {   # make_zone DOMAIN DMARC-TXT-or-empty
	local d=$1 dmarc=$2 f=$DIR/dns/zones/$1.zone
	{
		printf '$ORIGIN %s.\n$TTL 60\n' "$d"
		printf '@ SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60\n' "$d" "$d"
		printf '@ NS ns\nns A 127.0.0.1\n'
		printf '@ MX 10 mx\nmx A %s\n' "$IP_PASS"
		printf '@ TXT "v=spf1 ip4:%s ip4:%s -all"\n' "$IP_PASS" "$IP_LOCAL_PASS"
		[ -z "$dmarc" ] || printf '_dmarc TXT "%s"\n' "$dmarc"
		# the DKIM public key (opendkim-genkey's record, zone syntax)
		sed 's/ *; -----.*$//' "$DIR/dkim/$DKIM_SELECTOR.txt"
	} >"$f"
}

start_dns() {
	local p
	p=$(port dns AR_GW_DNS_PORT)
	mkdir -p "$DIR/dns/zones" "$DIR/dns/db" "$DIR/dkim"
	chmod 700 "$DIR/dkim"
	if [ ! -f "$DIR/dkim/$DKIM_SELECTOR.private" ]; then
		# one RSA-2048 key pair for the test selector of every test
		# domain; no "h=sha256" in the record: opendkim-testmsg (the
		# test signer, scripts/dkim-sign) signs rsa-sha1
		opendkim-genkey -b 2048 -s "$DKIM_SELECTOR" \
		    -D "$DIR/dkim" -d "$TEST_DOMAIN_REJECT" ||
		    die "opendkim-genkey failed"
		chmod 600 "$DIR/dkim/$DKIM_SELECTOR.private"
	fi
	make_zone "$TEST_DOMAIN_REJECT" "v=DMARC1; p=reject; adkim=r; aspf=r"
	make_zone "$TEST_DOMAIN_NONE" "v=DMARC1; p=none"
	make_zone "$TEST_DOMAIN_OTHER" ""
	cat >"$DIR/dns/zones/$TEST_DOMAIN_LOCAL.zone" <<EOF
\$ORIGIN $TEST_DOMAIN_LOCAL.
\$TTL 60
@ SOA ns.$TEST_DOMAIN_LOCAL. hostmaster.$TEST_DOMAIN_LOCAL. 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
@ MX 10 mx
mx A 127.0.0.1
EOF
	cat >"$DIR/dns/zones/$DNSBL_ZONE.zone" <<EOF
\$ORIGIN $DNSBL_ZONE.
\$TTL 60
@ SOA ns.$DNSBL_ZONE. hostmaster.$DNSBL_ZONE. 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
; RFC 5782 test entry: 127.0.0.2 is listed, 127.0.0.1 is not
2.0.0.127 A 127.0.0.2
2.0.0.127 TXT "127.0.0.2 is listed in the archived test DNSBL"
EOF
	cat >"$DIR/dns/knot.conf" <<EOF
server:
    rundir: "$DIR/dns"
    listen: 127.0.0.1@$p
    tcp-workers: 2
    udp-workers: 2
    background-workers: 1
log:
  - target: "$DIR/dns/knot.log"
    any: info
database:
    storage: "$DIR/dns/db"
template:
  - id: default
    storage: "$DIR/dns/zones"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $TEST_DOMAIN_REJECT
  - domain: $TEST_DOMAIN_NONE
  - domain: $TEST_DOMAIN_OTHER
  - domain: $TEST_DOMAIN_LOCAL
  - domain: $DNSBL_ZONE
EOF
	knotd -c "$DIR/dns/knot.conf" -s "$DIR/dns/knot.sock" \
	    >>"$DIR/dns/knot.log" 2>&1 &
	echo $! >"$PIDDIR/dns.pid"
	wait_for "knotd" dns 30 dns_ready "$p"
	say "dns: knotd $(knotd -V | awk '{print $NF}') on 127.0.0.1:$p (zones $TEST_DOMAIN_REJECT $TEST_DOMAIN_NONE $TEST_DOMAIN_OTHER $TEST_DOMAIN_LOCAL $DNSBL_ZONE)"
}

dns_ready() {
	# every zone loaded: the last one written answers, and so does the DKIM key
	dig @127.0.0.1 -p "$1" +time=1 +tries=1 +short A "2.0.0.127.$DNSBL_ZONE" | grep -qx 127.0.0.2 &&
	    dig @127.0.0.1 -p "$1" +time=1 +tries=1 +short TXT "$DKIM_SELECTOR._domainkey.$TEST_DOMAIN_OTHER" | grep -q "v=DKIM1"
}

# --- clamd ------------------------------------------------------------------

# The test signatures: the EICAR test file, and a marker of our own that
# no other product knows (so a test shows that the database is ours).
GW_VIRUS_MARKER=ARCHIVED-TEST-MALWARE-5b1d0c7e
# The EICAR test file, as hex (the string itself would make every
# antivirus on a developer's machine flag this script).
EICAR_HEX=58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a

hexof() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

make_test_db() {
	local db=$1
	mkdir -p "$db"
	{
		echo "Archived.Test.EICAR:0:*:$EICAR_HEX"
		echo "Archived.Test.Marker:0:*:$(hexof "$GW_VIRUS_MARKER")"
	} >"$db/archived-test.ndb"
}

system_db() { ls /var/lib/clamav/*.cvd /var/lib/clamav/*.cld 2>/dev/null | head -1; }

start_clamd() {
	local sock=$DIR/clamd/clamd.sock max maxb db which
	max=${AR_GW_STREAM_MAX:-100M}
	maxb=$(bytes "$max")
	# clamd writes the stream it scans, and the parts it decodes, to its
	# TemporaryDirectory: keep them in memory (no plaintext mail on disk)
	local tmp=$DIR/clamd/tmp
	mkdir -p "$DIR/clamd"
	rm -rf "$tmp"
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		tmp=$(mktemp -d /dev/shm/archived-clamd.XXXXXX)
		ln -sfn "$tmp" "$DIR/clamd/tmp"
	else
		mkdir -p "$tmp"
	fi
	case $DB_MODE in
	test) which=test ;;
	system) [ -n "$(system_db)" ] || die "--db system: no ClamAV database in /var/lib/clamav"; which=system ;;
	auto) if [ -n "$(system_db)" ]; then which=system; else which=test; fi ;;
	esac
	if [ $which = system ]; then
		db=/var/lib/clamav
		say "clamd: using the system's ClamAV database in $db (start takes a while: it loads every signature)"
	else
		db=$DIR/clamd/db
		make_test_db "$db"
		[ "$DB_MODE" = test ] ||
		    say "clamd: no ClamAV database in /var/lib/clamav (freshclam cannot download here): using the project's test signatures (EICAR, $GW_VIRUS_MARKER) only"
	fi
	cat >"$DIR/clamd/clamd.conf" <<EOF
LocalSocket $sock
LocalSocketMode 660
FixStaleSocket yes
Foreground yes
PidFile $DIR/clamd/clamd.pid
LogFile $DIR/clamd/clamd.log
LogTime yes
DatabaseDirectory $db
TemporaryDirectory $tmp
MaxThreads ${AR_GW_CLAMD_THREADS:-8}
MaxQueue 100
ReadTimeout 30
CommandReadTimeout 10
StreamMaxLength $max
MaxFileSize $max
MaxScanSize $((maxb * 4 / 1024 / 1024 + 1))M
ScanArchive yes
ScanMail yes
ScanPE yes
ScanOLE2 yes
ScanPDF yes
ScanHTML yes
AlertEncrypted no
SelfCheck 0
Bytecode no
EOF
	echo "$which" >"$DIR/clamd/db-kind"
	echo "$maxb" >"$DIR/clamd/stream-max"
	rm -f "$sock"
	clamd -c "$DIR/clamd/clamd.conf" >>"$DIR/clamd/clamd.stdout.log" 2>&1 &
	echo $! >"$PIDDIR/clamd.pid"
	wait_for "clamd" clamd 300 clamd_ping "$sock"
	say "clamd: $(clamd --version | cut -d/ -f1) on $sock ($which signatures, StreamMaxLength $max)"
}

# --- rspamd ------------------------------------------------------------------

start_rspamd() {
	local p c m dnsp r=$DIR/rspamd workers
	[ -f "$RSPAMD_CONF_SRC/rspamd.conf" ] || die "no rspamd configuration in $RSPAMD_CONF_SRC"
	p=$(port rspamd AR_GW_RSPAMD_PORT)
	c=$(port rspamd_ctl AR_GW_RSPAMD_CTL_PORT)
	m=$(port rspamd_milter AR_GW_RSPAMD_MILTER_PORT)
	dnsp=$(sed -n 's/^dns=//p' "$PORTS")
	[ -n "$dnsp" ] || die "rspamd needs the test DNS: start dns first"
	workers=${AR_GW_RSPAMD_WORKERS:-$(nproc)}
	rm -rf "$r/conf"
	mkdir -p "$r/db" "$r/run" "$r/log"
	cp -r "$RSPAMD_CONF_SRC" "$r/conf"
	echo "count = $workers;" >"$r/run/worker-normal-count.inc"
	# the public suffix list with the test TLD added (.test is not in it,
	# and DMARC needs the organisational domain of reject.test)
	{ cat /usr/share/rspamd/effective_tld_names.dat; printf '\n// archived tests\ntest\n'; } >"$r/conf/effective_tld_names.dat"
	local user=() hs=${AR_GW_RSPAMD_HS_CACHE:-/var/tmp/archived-rspamd-hs-$(id -u)} secs=60
	mkdir -p "$hs"
	if [ ! -f "$hs/.archived-complete" ]; then
		secs=900
		say "rspamd: first start with the Hyperscan cache $hs: compiling it (once; minutes on a loaded machine)"
	fi
	if [ $ISROOT = 1 ]; then
		chmod a+x "$DIR"
		chown -R _rspamd:_rspamd "$r" "$hs"
		user=(-u _rspamd -g _rspamd)
	fi
	rspamd -f -c "$r/conf/rspamd.conf" "${user[@]}" -p "$r/run/rspamd.pid" \
	    --var="LOCAL_CONFDIR=$r/conf" --var="DBDIR=$r/db" \
	    --var="RUNDIR=$r/run" --var="LOGDIR=$r/log" \
	    --var="AR_RSPAMD_PORT=$p" --var="AR_RSPAMD_CTL_PORT=$c" \
	    --var="AR_RSPAMD_MILTER_PORT=$m" \
	    --var="AR_DNS=127.0.0.1:$dnsp" --var="AR_DNSBL_ZONE=$DNSBL_ZONE" \
	    --var="AR_TLD_FILE=$r/conf/effective_tld_names.dat" \
	    --var="AR_HS_CACHE=$hs" \
	    >>"$r/log/rspamd.stdout.log" 2>&1 &
	echo $! >"$PIDDIR/rspamd.pid"
	wait_for "rspamd" rspamd "$secs" rspamd_ready "$p" "$c" "$m"
	touch "$hs/.archived-complete"
	say "rspamd: $(rspamd --version | awk '{print $NF}') on 127.0.0.1:$p (controller :$c, milter :$m; resolver 127.0.0.1:$dnsp only)"
}

rspamd_ready() {
	curl -sf --max-time 2 "http://127.0.0.1:$1/ping" | grep -q pong &&
	    curl -sf --max-time 2 "http://127.0.0.1:$2/ping" | grep -q pong &&
	    (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null
}

# --- clamav-milter (bench reference only) ------------------------------------

start_milter() {
	local p
	running clamd || die "clamav-milter needs clamd: start clamd first"
	p=$(port clamav_milter AR_GW_CLAMAV_MILTER_PORT)
	mkdir -p "$DIR/milter"
	cat >"$DIR/milter/clamav-milter.conf" <<EOF
MilterSocket inet:$p@127.0.0.1
Foreground yes
PidFile $DIR/milter/clamav-milter.pid
ClamdSocket unix:$DIR/clamd/clamd.sock
LogFile $DIR/milter/clamav-milter.log
OnInfected Reject
OnFail Defer
MaxFileSize $(cat "$DIR/clamd/stream-max")
AddHeader Replace
EOF
	[ $ISROOT = 1 ] && echo "User root" >>"$DIR/milter/clamav-milter.conf"
	clamav-milter -c "$DIR/milter/clamav-milter.conf" \
	    >>"$DIR/milter/clamav-milter.stdout.log" 2>&1 &
	echo $! >"$PIDDIR/milter.pid"
	wait_for "clamav-milter" milter 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p"
	say "milter: clamav-milter on inet:$p@127.0.0.1"
}

# --- env file ---------------------------------------------------------------

write_env() {
	local f=$DIR/env tmp
	tmp=$f.tmp
	{
		echo "# written by scripts/gateway-services.sh; source it"
		echo "export GW_SERVICES_DIR=$DIR"
		if [ -S "$DIR/clamd/clamd.sock" ] || [ -f "$DIR/clamd/clamd.conf" ]; then
			echo "export CLAMD_SOCKET=$DIR/clamd/clamd.sock"
			echo "export CLAMD_STREAM_MAX=$(cat "$DIR/clamd/stream-max" 2>/dev/null)"
			echo "export CLAMD_DB=$(cat "$DIR/clamd/db-kind" 2>/dev/null)"
			echo "export GW_VIRUS_MARKER=$GW_VIRUS_MARKER"
		fi
		local p
		p=$(sed -n 's/^rspamd=//p' "$PORTS")
		if [ -n "$p" ]; then
			echo "export RSPAMD_URL=http://127.0.0.1:$p"
			echo "export RSPAMD_CONTROLLER_URL=http://127.0.0.1:$(sed -n 's/^rspamd_ctl=//p' "$PORTS")"
			echo "export RSPAMD_MILTER=inet:127.0.0.1:$(sed -n 's/^rspamd_milter=//p' "$PORTS")"
		fi
		p=$(sed -n 's/^clamav_milter=//p' "$PORTS")
		[ -z "$p" ] || echo "export CLAMAV_MILTER=inet:127.0.0.1:$p"
		p=$(sed -n 's/^dns=//p' "$PORTS")
		if [ -n "$p" ]; then
			echo "export DNS_ADDR=127.0.0.1:$p"
			echo "export DNS_PORT=$p"
			echo "export DKIM_SELECTOR=$DKIM_SELECTOR"
			echo "export DKIM_KEY=$DIR/dkim/$DKIM_SELECTOR.private"
			echo "export DKIM_DNS_RECORD=$DIR/dkim/$DKIM_SELECTOR.txt"
			echo "export GW_DOMAIN_REJECT=$TEST_DOMAIN_REJECT"
			echo "export GW_DOMAIN_NONE=$TEST_DOMAIN_NONE"
			echo "export GW_DOMAIN_OTHER=$TEST_DOMAIN_OTHER"
			echo "export GW_DOMAIN_LOCAL=$TEST_DOMAIN_LOCAL"
			echo "export GW_DNSBL_ZONE=$DNSBL_ZONE"
			echo "export GW_IP_PASS=$IP_PASS"
			echo "export GW_IP_FAIL=$IP_FAIL"
			echo "export GW_IP_LISTED=127.0.0.2"
			echo "export GW_IP_LOCAL_PASS=$IP_LOCAL_PASS"
			echo "export GW_IP_LOCAL_FAIL=127.0.0.1"
		fi
	} >"$tmp"
	mv "$tmp" "$f"
	echo "$f"
}

# --- stop ---------------------------------------------------------------------

stop_one() {
	local name=$1 p i kids
	p=$(pid_of "$name")
	[ -n "$p" ] || return 0
	if kill -0 "$p" 2>/dev/null; then
		# rspamd's workers are its children; a stopped (SIGSTOP) daemon
		# or worker is continued so that it can exit
		kids=$(pgrep -P "$p" || true)
		kill -TERM "$p" 2>/dev/null || true
		for i in $p $kids; do kill -CONT "$i" 2>/dev/null || true; done
		for i in $(seq 1 200); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.05
		done
		if kill -0 "$p" 2>/dev/null; then
			say "$name (pid $p) did not stop in 10 s: SIGKILL"
			kill -KILL "$p" 2>/dev/null || true
		fi
		for i in $kids; do
			kill -0 "$i" 2>/dev/null && kill -KILL "$i" 2>/dev/null || true
		done
	fi
	if [ "$name" = clamd ] && [ -L "$DIR/clamd/tmp" ]; then
		rm -rf "$(readlink "$DIR/clamd/tmp")" "$DIR/clamd/tmp"
	fi
	rm -f "$PIDDIR/$name.pid"
}

# --- main ---------------------------------------------------------------------

case $CMD in
start)
	[ ${#SERVICES[@]} -gt 0 ] || SERVICES=(dns clamd rspamd)
	for s in "${SERVICES[@]}"; do
		command -v "$(case $s in dns) echo knotd ;; milter) echo clamav-milter ;; *) echo "$s" ;; esac)" >/dev/null ||
		    die "$s: not installed (scripts/deps.sh installs it)"
	done
	OK=0
	STARTED=()
	trap '[ $OK = 1 ] || { echo "gateway-services: start failed; stopping what this call started" >&2; for s in "${STARTED[@]}"; do stop_one "$s"; done; }' EXIT
	want() { case " ${SERVICES[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
	# ports first (one at a time: they are picked against DIR/ports)
	if want dns || want rspamd; then port dns AR_GW_DNS_PORT >/dev/null; fi
	if want rspamd; then
		port rspamd AR_GW_RSPAMD_PORT >/dev/null
		port rspamd_ctl AR_GW_RSPAMD_CTL_PORT >/dev/null
		port rspamd_milter AR_GW_RSPAMD_MILTER_PORT >/dev/null
	fi
	if want milter; then port clamav_milter AR_GW_CLAMAV_MILTER_PORT >/dev/null; fi
	# dns, clamd and rspamd start side by side (rspamd needs the resolver
	# only once it scans); the milter needs clamd
	jobs_=()
	for s in dns clamd rspamd; do
		want "$s" || continue
		if running "$s"; then
			say "$s: already running (pid $(pid_of "$s"))"
			continue
		fi
		STARTED=("$s" "${STARTED[@]}")
		("start_$s") &
		jobs_+=($!)
	done
	failed=0
	for j in "${jobs_[@]}"; do wait "$j" || failed=1; done
	[ $failed = 0 ] || exit 1
	if want milter; then
		if running milter; then
			say "milter: already running (pid $(pid_of milter))"
		else
			STARTED=(milter "${STARTED[@]}")
			start_milter
		fi
	fi
	write_env
	OK=1
	;;
stop)
	[ ${#SERVICES[@]} -gt 0 ] || SERVICES=(milter rspamd clamd dns)
	for s in "${SERVICES[@]}"; do stop_one "$s"; done
	;;
status)
	for s in dns clamd rspamd milter; do
		if running "$s"; then echo "$s running pid=$(pid_of "$s")"; else echo "$s stopped"; fi
	done
	;;
*) usage ;;
esac
