#!/bin/bash
# t_gw_outbound.sh - outbound mail through the gateway (issue 18
# "Outbound"): the tenant's own server relays its outgoing mail through
# us.  Taken from the tenant's outbound network, or with AUTH after
# STARTTLS as the tenant's SMTP user; from elsewhere without AUTH refused
# 550 5.7.1, AUTH never offered in clear, a sender outside the tenant's
# domains refused; scanned (a virus: 554); rate-limited per tenant (451
# 4.7.0 over the rate); archived like inbound mail; delivered by MX lookup
# to the host the test DNS names.  (DKIM signing: t_gw_dkim.sh.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_relay.sh"

archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
gw_services dns clamd
P_IN=$(free_port)
P_MX=$(free_port)
testd_start in "$P_IN" -D acme.example
testd_start mx "$P_MX" -D local.test
MX_PID=$TESTD_PID
ctl tenant set acme --domain acme.example --relay-to "127.0.0.1:$P_IN" \
    --tls none --outbound-network 127.0.0.2/32 >/dev/null
echo "outbound-password-1234" | ctl tenant set acme --smtp-user acme-out >/dev/null
check "tenant show lists the outbound network and rate" \
    sh -c "'$CTL_BIN' -d '$DATA' tenant show acme | grep -q 'gateway outbound: from 127.0.0.2/32 or AUTH as the SMTP user; 600 messages a minute'"
ctl tenant set acme --outbound-network 300.1.2.3/8 >/dev/null 2>"$T/err"
check "a bad outbound network is refused, saying what" \
    sh -c "[ $? -ne 0 ] && grep -q \"outbound-network '300.1.2.3/8': not an address\" '$T/err'"
mkdir -p "$DATA/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$DATA/tls/key.pem" -out "$DATA/tls/cert.pem" \
    >/dev/null 2>&1
conf_put clamd_socket "$CLAMD_SOCKET"
conf_put gateway_dns "$DNS_ADDR"
conf_put gateway_hostname gw.archived.test
conf_put relay_retry_min 10m       # nothing here waits for a retry but
conf_put relay_retry_max 1h        # the operator's (section 6)
export AR_TEST_MX_PORT=$P_MX
gateway_start

mkmsg() {   # mkmsg FILE SUBJECT [EXTRA-BODY-LINE]
	printf 'From: alice@acme.example\r\nTo: carol@local.test\r\nSubject: %s\r\nMessage-ID: <%s@acme.example>\r\n\r\nHello from acme: %s\r\n%s\r\n' \
	    "$2" "$(echo "$2" | tr ' ' -)" "$2" "${3:-}" >"$1"
}
out() {    # out FILE [FROM [RCPT]]: send from the environment's client; its output in $T/out
	python3 "$PY/gw_smtp.py" send "$GW_PORT" "${2:-alice@acme.example}" \
	    "${3:-carol@local.test}" "$1" >"$T/out" 2>&1
}
said() { grep -q "$1" "$T/out"; }

# 1. from the tenant's network
mkmsg "$T/o1.eml" "outbound one"
GW_SRC=127.0.0.2 out "$T/o1.eml"
check "from the tenant's outbound network: accepted" said "^data 250"
check "delivered to the MX of local.test (test DNS, AR_TEST_MX_PORT)" \
    wait_until 120 has_files "$T/mx" "*.eml" 1
check "envelope and bytes as sent, after our Received:" python3 - "$T/mx" "$T/o1.eml" <<'PYEOF'
import sys
env = open(sys.argv[1] + "/1.env").read().split("\n")
got = open(sys.argv[1] + "/1.eml", "rb").read()
sent = open(sys.argv[2], "rb").read()
ok = "mail_from=alice@acme.example" in env and "rcpt=carol@local.test" in env
ok = ok and got.startswith(b"Received: from client.test ([127.0.0.2])") and got.split(b"\r\n", 3)[3] == sent
sys.exit(0 if ok else 1)
PYEOF

# 2. from elsewhere, without AUTH: relay denied
mkmsg "$T/o2.eml" "outbound two"
GW_SRC=127.0.0.3 out "$T/o2.eml"
check "from another address without AUTH: 550 (relay denied)" \
    said "^rcpt carol@local.test 550"
GW_SRC=127.0.0.3 GW_AUTH=acme-out:outbound-password-1234 GW_AUTH_CLEAR=1 out "$T/o2.eml"
check "AUTH is not offered before STARTTLS" said "^auth not offered"
GW_SRC=127.0.0.3 GW_AUTH=acme-out:wrong-password-123 out "$T/o2.eml"
check "a wrong password: 535" said "^auth 535"
# a sender outside the tenant's domains, even from its network
GW_SRC=127.0.0.2 out "$T/o2.eml" mallory@other.test
check "a sender outside the tenant's domains: 550, even from its network" \
    said "^rcpt carol@local.test 550"

# 3. AUTH after STARTTLS
GW_SRC=127.0.0.3 GW_AUTH=acme-out:outbound-password-1234 out "$T/o2.eml"
check "AUTH after STARTTLS: 235, then accepted" \
    sh -c "grep -q '^auth 235' '$T/out' && grep -q '^data 250' '$T/out'"
check "... and delivered by MX" wait_until 120 has_files "$T/mx" "*.eml" 2
# the check (Argon2id) once; the same password again within
# gateway_auth_cache passes from the cache; a changed password never
# does.  These sessions stop at RCPT (a sender outside the tenant's
# domains), so nothing more is delivered.
checks() { grep -c "event=auth_check cached=$1" "$T/archived.log" || true; }
check "the first AUTH was checked in full" [ "$(checks no)" -eq 1 ]
GW_SRC=127.0.0.3 GW_AUTH=acme-out:outbound-password-1234 out "$T/o2.eml" mallory@other.test
check "the same password again: 235, from the cache" \
    sh -c "grep -q '^auth 235' '$T/out' && [ \$(grep -c 'event=auth_check cached=yes' '$T/archived.log') -eq 1 ]"
echo "outbound-password-5678" | ctl tenant set acme --smtp-user acme-out >/dev/null
GW_SRC=127.0.0.3 GW_AUTH=acme-out:outbound-password-1234 out "$T/o2.eml" mallory@other.test
check "the old password once changed: 535, however recently it passed" said "^auth 535"
GW_SRC=127.0.0.3 GW_AUTH=acme-out:outbound-password-5678 out "$T/o2.eml" mallory@other.test
check "the new one: 235, checked in full" \
    sh -c "grep -q '^auth 235' '$T/out' && [ \$(grep -c 'event=auth_check cached=no' '$T/archived.log') -eq 2 ]"

# 4. scanned: a virus is refused
mkmsg "$T/o3.eml" "outbound virus" "$GW_VIRUS_MARKER"
GW_SRC=127.0.0.2 out "$T/o3.eml"
check "a virus in outgoing mail: 554" said "^data 554"

# 5. the tenant's rate
ctl tenant set acme --outbound-rate 2 >/dev/null
for i in 1 2 3; do
	mkmsg "$T/r$i.eml" "outbound rate $i"
	GW_SRC=127.0.0.2 out "$T/r$i.eml"
	cp "$T/out" "$T/rate$i.out"
done
check "within the rate (2 a minute): accepted" \
    sh -c "grep -q '^data 250' '$T/rate1.out' && grep -q '^data 250' '$T/rate2.out'"
check "over it: 451 4.7.0" grep -q "^rcpt carol@local.test 451" "$T/rate3.out"
grep -q "status=rate_limited" "$T/archived.log"
check "and logged" [ $? -eq 0 ]
check "everything accepted is delivered (4)" wait_until 120 has_files "$T/mx" "*.eml" 4

# 6. the MX down: deferred; back, and archivectl relay retry sends it at
# once (its own next attempt is 10 minutes away)
stop_pid "$MX_PID"
ctl tenant set acme --outbound-rate 0 >/dev/null
mkmsg "$T/o6.eml" "outbound while down"
GW_SRC=127.0.0.2 out "$T/o6.eml"
check "accepted while the recipient's MX is down" said "^data 250"
waiting() { [ "$(rq_waiting local.test)" -ge 1 ]; }
check "deferred for local.test" wait_until 120 waiting
rq local.test last_error | sed 's/^/    last error: /'
testd_start mx2 "$P_MX" -D local.test
ctl relay retry >/dev/null
check "back up, relay retry delivers it without waiting for its next attempt" \
    wait_until 120 has_files "$T/mx2" "*.eml" 1

# 7. archived like inbound mail
check "every accepted outgoing message is archived (5)" wait_objects acme 5
archived_stop
