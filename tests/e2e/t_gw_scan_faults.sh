#!/bin/bash
# t_gw_scan_faults.sh - replies the real scanners never give, through the
# real daemon: tests/tools/scanproxy.py sits between the gateway and the
# real rspamd (HTTP) and the real clamd (its UNIX socket) and answers as
# told: rspamd's reply truncated, cut short by a close, not JSON, HTTP 500,
# {"error"} with 200, wrong types, 16 MiB, empty, no answer (stall), the
# connection closed; clamd's garbage, a closed socket, "stream: OK" before
# the message was all sent, no answer.  Each must give the tenant's
# unscanned behaviour (docs/gateway.md): 451 4.7.1 by default, accepted and
# tagged X-Archived-Unscanned when the tenant accepts unscanned mail; a
# log line "status=unscanned" naming the scanner and the detail; never a
# message judged clean; the daemon keeps serving.
. "$(dirname "$0")/lib.sh"
gw_services
archive_init
sink_start
gw_tenant acme acme.example
# stall: the timeout answers (a bound, generous for a loaded machine)
set_conf gateway_scan_timeout 20s

# the proxies: rspamd's on a free port, clamd's on a socket of its own
RCTL=$T/rspamd.mode
CCTL=$T/clamd.mode
proxy_start() {   # proxy_start KIND UPSTREAM WHERE CONTROL READYFILE
	python3 "$S/tests/tools/scanproxy.py" "$1" "$2" "$3" "$4" \
	    "$T/proxy-$1.log" 2>>"$T/proxy-$1.err" &
	PIDS+=($!)
	if ! wait_until 120 started_or_gone $! test -s "$5" || [ ! -s "$5" ]; then
		echo "scanproxy $1 did not start:" >&2
		cat "$T/proxy-$1.err" >&2
		exit 1
	fi
}
proxy_start rspamd "${RSPAMD_URL##*:}" "$T/rproxy.port" "$RCTL" "$T/rproxy.port"
proxy_start clamd "$CLAMD_SOCKET" "$T/cproxy.sock" "$CCTL" "$T/cproxy.sock.ready"
RSPAMD_URL=http://127.0.0.1:$(cat "$T/rproxy.port")
CLAMD_SOCKET=$T/cproxy.sock
archived_start_gw

M=$S/tests/e2e/py/gw_mail.py
RCPT=user@acme.example
FROM=sender@other.test
RMODES="truncate short invalid http500 error200 badtypes huge empty stall close"
CMODES="garbage close early stall"
# the messages: one per mode and policy (r451-truncate, racc-truncate,
# c451-garbage ...), the controls through "pass", a GTUBE one
{
	for m in $RMODES; do
		echo "clean $T/r451-$m.eml $FROM $RCPT zqr451${m}marker"
		echo "clean $T/racc-$m.eml $FROM $RCPT zqracc${m}marker"
	done
	# "early": 1 MB, more than a UNIX socket holds, so that the answer
	# comes while the gateway is still sending
	for m in $CMODES; do
		k=clean
		[ "$m" = early ] && k=big
		echo "$k $T/c451-$m.eml $FROM $RCPT zqc451${m}marker"
		echo "$k $T/cacc-$m.eml $FROM $RCPT zqcacc${m}marker"
	done
	echo "clean $T/pass1.eml $FROM $RCPT zqpass1marker"
	echo "clean $T/pass2.eml $FROM $RCPT zqpass2marker"
	echo "gtube $T/gtube.eml $FROM $RCPT zqgtubemarker"
} | python3 "$M" -

send() {   # send NAME: its transcript in $T/NAME.out
	gw_send "$T/$1.eml" "$FROM" "$RCPT" --local-interface "$GW_IP_LOCAL_PASS" >"$T/$1.out"
}
answered() { grep -qE "^<(- |\*\*) $2 $3" "$T/$1.out"; }
nunscanned() { grep -c "gateway id=.* status=unscanned" "$T/archived.log"; }
last_unscanned() { grep "gateway id=.* status=unscanned" "$T/archived.log" | tail -1; }
gateway_greets() {
	swaks --server "127.0.0.1:$GW_PORT" --quit-after EHLO 2>&1 | grep -q "^<-  250"
}
proxied() { grep -q "^$2 " "$T/proxy-$1.log"; }   # proxied KIND MODE

# what the log's detail says for each mode (the scanner's own message)
rdetail() {
	case $1 in
	truncate | invalid | empty) echo "reply is not JSON" ;;
	short) echo "transfer closed" ;;
	http500) echo "HTTP 500: scanproxy: internal error" ;;
	error200) echo "rspamd: error: scanproxy: failed" ;;
	badtypes) echo "no numeric ?score?" ;;
	huge) echo "reply larger than 8 MiB" ;;
	stall) echo "Operation timed out" ;;
	close) echo "Empty reply from server" ;;
	esac
}
rstatus() {
	case $1 in stall) echo timeout ;; close) echo unavailable ;; *) echo failed ;; esac
}
cdetail() {
	case $1 in
	garbage) echo "unexpected reply" ;;
	close) echo "closed the connection" ;;
	early) echo "before the whole message was sent" ;;
	stall) echo "timed out" ;;
	esac
}
cstatus() {
	case $1 in stall) echo timeout ;; close) echo unavailable ;; *) echo failed ;; esac
}

# --- the path through the proxies works -------------------------------------------
echo pass >"$RCTL"
echo pass >"$CCTL"
send pass1
check "through both proxies, passing: accepted" answered pass1 250 2.0.0
check "... rspamd was asked through its proxy" proxied rspamd pass
check "... clamd too" proxied clamd pass

# --- the default policy: 451 4.7.1 -----------------------------------------------
for m in $RMODES; do
	echo "$m" >"$RCTL"
	n0=$(nunscanned)
	send "r451-$m"
	check "rspamd $m: 451 4.7.1" answered "r451-$m" 451 4.7.1
	check "... the proxy answered $m" proxied rspamd "$m"
	check "... one status=unscanned line" test "$(nunscanned)" -eq $((n0 + 1))
	line=$(last_unscanned)
	check "... naming rspamd $(rstatus "$m") and why ($(rdetail "$m"))" \
	    bash -c '[[ $1 == *"antivirus=\"ok\" spam=\"rspamd $2\""*"detail="*"$3"* ]]' \
	    _ "$line" "$(rstatus "$m")" "$(rdetail "$m")"
done
echo "$line"
echo truncate >"$RCTL"
send gtube
check "GTUBE with rspamd's reply truncated: 451 4.7.1 (not refused, not accepted)" \
    answered gtube 451 4.7.1
echo pass >"$RCTL"
check "the gateway still greets" gateway_greets

for m in $CMODES; do
	echo "$m" >"$CCTL"
	n0=$(nunscanned)
	send "c451-$m"
	check "clamd $m: 451 4.7.1" answered "c451-$m" 451 4.7.1
	check "... the proxy answered $m" proxied clamd "$m"
	check "... one status=unscanned line" test "$(nunscanned)" -eq $((n0 + 1))
	line=$(last_unscanned)
	check "... naming clamd $(cstatus "$m") and why ($(cdetail "$m"))" \
	    bash -c '[[ $1 == *"antivirus=\"clamd $2\" spam=\"ok\""*"detail="*"$3"* ]]' \
	    _ "$line" "$(cstatus "$m")" "$(cdetail "$m")"
done
echo "$line"
echo pass >"$CCTL"
check "nothing was queued" bash -c '"$1" -d "$2" --json relay queue | grep -q "\"messages\": *0[,}]"' _ "$CTL_BIN" "$DATA"
check "nothing was delivered but the control" test "$(sink_count)" -le 1

# --- a tenant that accepts unscanned mail: 250, tagged, never clean ---------------
ctl tenant set acme --unscanned accept >/dev/null
for m in $RMODES; do
	echo "$m" >"$RCTL"
	send "racc-$m"
	check "rspamd $m, unscanned accepted: 250" answered "racc-$m" 250 2.0.0
done
echo pass >"$RCTL"
for m in $CMODES; do
	echo "$m" >"$CCTL"
	send "cacc-$m"
	check "clamd $m, unscanned accepted: 250" answered "cacc-$m" 250 2.0.0
done
echo pass >"$CCTL"
send pass2
check "passing again: accepted" answered pass2 250 2.0.0
nacc=$(( $(wc -w <<<"$RMODES $CMODES") + 2 ))
check "the $nacc accepted are delivered" wait_until 300 sink_has $nacc
for m in $RMODES; do
	check "rspamd $m: delivered with X-Archived-Unscanned" \
	    grep -q "^X-Archived-Unscanned: yes" "$(sink_grep "zqracc${m}marker")"
done
for m in $CMODES; do
	check "clamd $m: delivered with X-Archived-Unscanned" \
	    grep -q "^X-Archived-Unscanned: yes" "$(sink_grep "zqcacc${m}marker")"
done
check "the controls are delivered untagged" \
    bash -c '! grep -q "^X-Archived-Unscanned" $(grep -rl zqpass "$1")' _ "$SINK_DIR"
check "they are archived" wait_objects acme $nacc
# NAME verdict action scanned, one line per archived message
ctl --json list --tenant acme | python3 -c 'import json, re, sys
for o in json.load(sys.stdin):
    m = o["meta"]
    n = re.search(r"zq(\w+)marker", m.get("subject") or "")
    g = m.get("gateway") or {}
    print(n.group(1) if n else "?", g.get("verdict"), g.get("action"),
          g.get("scanned"))' | sort >"$T/meta"
cat "$T/meta"
check "every one accepted unscanned is archived with verdict unscanned, tag" \
    test "$(grep -c '^[rc]acc.* unscanned tag False$' "$T/meta")" -eq $((nacc - 2))
check "only the two controls are clean" \
    test "$(grep ' clean ' "$T/meta" | cut -d' ' -f1 | tr '\n' ' ')" = "pass1 pass2 "
check "the daemon is still running" kill -0 "$ARCHIVED_PID"
archived_stop
check "verify passes" ctl verify
