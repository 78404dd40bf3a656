#!/bin/bash
# t_gw_dkim.sh - DKIM signing of outbound mail (issue 18 "Outbound"): a
# key per tenant domain (archivectl tenant dkim add: a PEM file, or
# generated, RSA or Ed25519), kept sealed (its PEM nowhere on disk in
# clear), its TXT record published in the test DNS (Knot, changed live
# with knotc); outgoing mail from that domain, sent from the tenant's
# network, is delivered by MX to smtp_testd signed, and the real rspamd
# of the test services (resolving through the same DNS) finds the
# signature valid (R_DKIM_ALLOW) - and invalid once the body is changed
# (R_DKIM_REJECT).  The archived copy is the signed one.  The key
# service down: 451, nothing sent unsigned.  A From: domain
# without a key: sent unsigned, logged dkim=none.  Rotation: a new key on
# standby signs nothing until activated, then signs (verified), the old
# one goes on standby; removed, mail goes unsigned.  An outgoing message
# quarantined and released is signed then; a message from outside with
# the tenant's domain in its From:, released, is not.  Bad input refused,
# saying what.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_relay.sh"

archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
ctl tenant add beta --journal-address journal@beta.example >/dev/null
gw_services dns clamd rspamd
P_IN=$(free_port)
P_MX=$(free_port)
testd_start in "$P_IN" -D acme.example
testd_start mx "$P_MX" -D local.test
# other.test and none.test are zones of the test DNS; acme.example is not
for d in "$GW_DOMAIN_OTHER" "$GW_DOMAIN_NONE" acme.example; do
	ctl tenant set acme --domain "$d" --relay-to "127.0.0.1:$P_IN" \
	    --tls none --outbound-network 127.0.0.2/32 >/dev/null
done
ctl tenant set beta --domain beta.example --relay-to "127.0.0.1:$P_IN" >/dev/null

# --- keys: bad input -------------------------------------------------------
refused() {   # refused PATTERN CMD...: fails, stderr has PATTERN
	local pat=$1
	shift
	! "$@" >"$T/out" 2>"$T/err" && grep -q -- "$pat" "$T/err"
}
check "a domain of no tenant: refused, saying so" \
    refused "nowhere.test is not a domain of this tenant" \
    ctl tenant dkim add --tenant acme --domain nowhere.test --selector s1
check "another tenant's domain: refused" \
    refused "beta.example is another tenant's domain" \
    ctl tenant dkim add --tenant acme --domain beta.example --selector s1
check "a bad selector: refused" refused "selector 'a;b'" \
    ctl tenant dkim add --tenant acme --domain "$GW_DOMAIN_OTHER" --selector 'a;b'
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$T/small.pem" 2>/dev/null
check "a 1024-bit RSA key: refused" refused "1024 bits" \
    ctl tenant dkim add --tenant acme --domain "$GW_DOMAIN_OTHER" --selector s1 --key-file "$T/small.pem"
echo "not a key" >"$T/junk.pem"
check "a file without a key: refused" refused "no PEM private key" \
    ctl tenant dkim add --tenant acme --domain "$GW_DOMAIN_OTHER" --selector s1 --key-file "$T/junk.pem"
check "nothing was added" \
    test -z "$(ctl tenant dkim list --tenant acme)"

# --- keys: added ---------------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.pem" 2>/dev/null
ctl tenant dkim add --tenant acme --domain "$GW_DOMAIN_OTHER" --selector arc1 \
    --key-file "$T/rsa.pem" >"$T/rec1" 2>"$T/add1.err"
check "an RSA key from a PEM file: the TXT record to publish" \
    grep -q "^arc1._domainkey.$GW_DOMAIN_OTHER IN TXT \"v=DKIM1; k=rsa; p=MII" "$T/rec1"
check "its public key is the file's" python3 - "$T/rec1" "$T/rsa.pem" <<'PYEOF'
import re, subprocess, sys, base64
rec = "".join(re.findall(r'"([^"]*)"', open(sys.argv[1]).read()))
p = rec.split("p=", 1)[1]
der = subprocess.run(["openssl", "pkey", "-in", sys.argv[2], "-pubout", "-outform", "DER"],
                     capture_output=True, check=True).stdout
sys.exit(0 if base64.b64decode(p) == der else 1)
PYEOF
check "a second active key for the same domain: refused" \
    refused "has an active key already (selector arc1): add this one with --standby" \
    ctl tenant dkim add --tenant acme --domain "$GW_DOMAIN_OTHER" --selector arc2 --generate
check "the same selector twice: refused" refused "has a key with selector arc1 already" \
    ctl tenant dkim add --tenant acme --domain "$GW_DOMAIN_OTHER" --selector arc1 --generate --standby
ctl tenant dkim add --tenant acme --domain "$GW_DOMAIN_NONE" --selector ed1 \
    --generate --algorithm ed25519 >"$T/rec2" 2>/dev/null
check "an Ed25519 key generated" \
    grep -q "^ed1._domainkey.$GW_DOMAIN_NONE IN TXT \"v=DKIM1; k=ed25519; p=" "$T/rec2"
ctl --json tenant dkim list --tenant acme >"$T/list.json"
check "tenant dkim list: both, with their records" python3 - "$T/list.json" <<'PYEOF'
import json, sys
d = {k["domain"]: k for k in json.load(open(sys.argv[1]))}
ok = d["other.test"]["selector"] == "arc1" and d["other.test"]["alg"] == "rsa-sha256" \
    and d["other.test"]["bits"] == 2048 and d["none.test"]["alg"] == "ed25519-sha256" \
    and d["none.test"]["dns_name"] == "ed1._domainkey.none.test" and len(d) == 2
sys.exit(0 if ok else 1)
PYEOF
check "tenant show names the keys" sh -c "'$CTL_BIN' -d '$DATA' tenant show acme | grep -q 'gateway dkim:    other.test signed with selector arc1 (rsa-sha256, 2048 bits)'"
check "tenant show --json too" sh -c "'$CTL_BIN' -d '$DATA' --json tenant show acme | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sorted(k[\"selector\"] for k in d[\"gateway\"][\"dkim\"]) == [\"arc1\", \"ed1\"] else 1)'"
# no plaintext key on disk: no line of the PEM's base64 anywhere under
# the data directory or the key service's
nokey() {
	local line
	while read -r line; do
		case $line in -----*) continue ;; esac
		[ ${#line} -ge 32 ] || continue
		if grep -rqF -- "$line" "$DATA" "$KEYS"; then
			echo "    found a line of the PEM on disk" >&2
			return 1
		fi
	done <"$T/rsa.pem"
}
check "the private key is nowhere on disk in clear" nokey

# --- the records in the test DNS ---------------------------------------------
publish() {   # publish RECORD-FILE ZONE: its TXT, live in Knot
	local name zone=$2 s
	local -a strs args
	name=$(awk '{print $1}' "$1")
	eval "strs=($(sed 's/^[^"]*//' "$1"))"     # the quoted strings
	for s in "${strs[@]}"; do args+=("\"$s\""); done
	knotc -s "$GW_SERVICES_DIR/dns/knot.sock" zone-begin "$zone" >/dev/null &&
	    knotc -s "$GW_SERVICES_DIR/dns/knot.sock" zone-set "$zone" "$name." 60 \
	        TXT "${args[@]}" >/dev/null &&
	    knotc -s "$GW_SERVICES_DIR/dns/knot.sock" zone-commit "$zone" >/dev/null
}
publish "$T/rec1" "$GW_DOMAIN_OTHER"
publish "$T/rec2" "$GW_DOMAIN_NONE"
check "the records are published" \
    wait_until 60 sh -c "dig @127.0.0.1 -p $DNS_PORT +short TXT arc1._domainkey.$GW_DOMAIN_OTHER | grep -q DKIM1 && dig @127.0.0.1 -p $DNS_PORT +short TXT ed1._domainkey.$GW_DOMAIN_NONE | grep -q DKIM1"

# --- signed outbound mail ---------------------------------------------------------
conf_put clamd_socket "$CLAMD_SOCKET"
conf_put gateway_dns "$DNS_ADDR"
conf_put gateway_hostname gw.archived.test
export AR_TEST_MX_PORT=$P_MX
gateway_start

mkmsg() {   # mkmsg FILE FROM SUBJECT
	printf 'From: Alice Example <%s>\r\nTo: carol@local.test\r\nSubject: %s\r\nDate: Thu, 03 Dec 2026 01:00:00 +0000\r\nMessage-ID: <%s@acme.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello from acme:  %s\r\n\r\nWith  some   spacing \t \r\n.leading dot line\r\n\r\n\r\n' \
	    "$2" "$3" "$(echo "$3" | tr ' ' -)" "$3" >"$1"
}
out() {    # out FILE FROM: from the tenant's network
	GW_SRC=127.0.0.2 python3 "$PY/gw_smtp.py" send "$GW_PORT" "$2" \
	    carol@local.test "$1" >"$T/out" 2>&1
}
# the key service down: 451 (the server sends it again), nothing sent
# unsigned (the relay queue needs the key service for each message
# before the signer does: the 451 comes from there)
keysvc_stop
mkmsg "$T/m1.eml" "alice@$GW_DOMAIN_OTHER" "signed rsa"
out "$T/m1.eml" "alice@$GW_DOMAIN_OTHER"
check "key service down, a message to sign: 451 (at DATA)" \
    sh -c "grep -q 'SMTPDataError: (451' '$T/out' && ! grep -q '^data 250' '$T/out'"
keysvc_start "$KEYS"
out "$T/m1.eml" "alice@$GW_DOMAIN_OTHER"
check "RSA: accepted once the key service is back" grep -q "^data 250" "$T/out"
check "... delivered by MX" wait_until 120 has_files "$T/mx" "*.eml" 1
check "... with a DKIM-Signature under our Received:, then the message as sent" \
    python3 - "$T/mx/1.eml" "$T/m1.eml" <<'PYEOF'
import sys
got = open(sys.argv[1], "rb").read()
sent = open(sys.argv[2], "rb").read()
i = got.find(b"\r\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=other.test; s=arc1;")
ok = got.startswith(b"Received: ") and i > 0 and got.endswith(sent)
sys.exit(0 if ok else 1)
PYEOF
check "logged dkim=signed d= s=" grep -q "dkim=signed d=$GW_DOMAIN_OTHER s=arc1 a=rsa-sha256" "$T/archived.log"

rspamd_check() {   # rspamd_check FILE: the symbols rspamd finds, in $T/rspamd.json
	curl -s --max-time 60 --data-binary @"$1" -H "IP: $GW_IP_PASS" \
	    -H "Helo: mail.$GW_DOMAIN_OTHER" -H "From: alice@$GW_DOMAIN_OTHER" \
	    -H "Rcpt: carol@local.test" "$RSPAMD_URL/checkv2" >"$T/rspamd.json"
}
has_symbol() {   # has_symbol NAME: in $T/rspamd.json
	python3 -c "import json,sys; d=json.load(open('$T/rspamd.json')); sys.exit(0 if '$1' in d.get('symbols',{}) else 1)"
}
symbols() { python3 -c "import json; print(' '.join(sorted(json.load(open('$T/rspamd.json')).get('symbols',{}))))"; }
rspamd_check "$T/mx/1.eml"
check "rspamd verifies the signature: R_DKIM_ALLOW" has_symbol R_DKIM_ALLOW
has_symbol R_DKIM_ALLOW || echo "    symbols: $(symbols)"
sed 's/With  some/With more/' "$T/mx/1.eml" >"$T/changed.eml"
rspamd_check "$T/changed.eml"
check "the body changed: R_DKIM_REJECT" has_symbol R_DKIM_REJECT
has_symbol R_DKIM_REJECT || echo "    symbols: $(symbols)"
python3 - "$T/mx/1.eml" "$T/from.eml" <<'PYEOF'
import sys
m = open(sys.argv[1], "rb").read()
i = m.index(b"\r\nDKIM-Signature")
open(sys.argv[2], "wb").write(m[:i + 2] + b"From: boss@other.test\r\n" + m[i + 2:])
PYEOF
rspamd_check "$T/from.eml"
check "a From: added on the way: R_DKIM_REJECT (From is oversigned)" has_symbol R_DKIM_REJECT

mkmsg "$T/m2.eml" "bob@$GW_DOMAIN_NONE" "signed ed25519"
out "$T/m2.eml" "bob@$GW_DOMAIN_NONE"
check "Ed25519: accepted and delivered" wait_until 120 has_files "$T/mx" "*.eml" 2
check "... signed ed25519-sha256" grep -q "a=ed25519-sha256; c=relaxed/relaxed; d=$GW_DOMAIN_NONE; s=ed1;" "$T/mx/2.eml"
rspamd_check "$T/mx/2.eml"
check "... and rspamd verifies it: R_DKIM_ALLOW" has_symbol R_DKIM_ALLOW
has_symbol R_DKIM_ALLOW || echo "    symbols: $(symbols)"

# a From: domain without a key: unsigned, logged
mkmsg "$T/m3.eml" "carl@acme.example" "unsigned"
out "$T/m3.eml" "carl@acme.example"
check "no key for the From: domain: delivered" wait_until 120 has_files "$T/mx" "*.eml" 3
check "... unsigned" sh -c "! grep -q '^DKIM-Signature' '$T/mx/3.eml'"
check "... logged dkim=none" grep -q "dkim=none from_domain=acme.example" "$T/archived.log"

# --- archived as sent -----------------------------------------------------------
check "the 3 outgoing messages are archived" wait_objects acme 3
ctl --json list --tenant acme >"$T/objs.json"
signed_archived() {
	local id n=0
	for id in $(python3 -c "import json; [print(o['id']) for o in json.load(open('$T/objs.json'))]"); do
		ctl get --tenant acme "$id" >"$T/arch.eml" 2>/dev/null || return 1
		head -1 "$T/arch.eml" | grep -q "^DKIM-Signature: v=1;" && n=$((n + 1))
	done
	[ "$n" -eq 2 ]
}
check "the archived copies of the signed ones begin with their DKIM-Signature" signed_archived

# --- rotation: a key on standby, published, activated; then removed ----------
ctl tenant dkim add --tenant acme --domain "$GW_DOMAIN_OTHER" --selector arc2 \
    --standby >"$T/rec3" 2>"$T/add3.err"
check "a second key, on standby: its record to publish" sh -c \
    "grep -q '^arc2._domainkey.$GW_DOMAIN_OTHER IN TXT \"v=DKIM1; k=rsa; p=' '$T/rec3' && grep -q 'on standby' '$T/add3.err'"
ctl tenant dkim list --tenant acme >"$T/list.txt"
check "tenant dkim list: which is active, which on standby" sh -c \
    "grep -q '^arc1._domainkey.$GW_DOMAIN_OTHER IN TXT .* ; active, rsa-sha256 2048 bits$' '$T/list.txt' && grep -q '^arc2._domainkey.$GW_DOMAIN_OTHER IN TXT .* ; standby, rsa-sha256 2048 bits$' '$T/list.txt'"
mkmsg "$T/m4.eml" "alice@$GW_DOMAIN_OTHER" "standby not used"
out "$T/m4.eml" "alice@$GW_DOMAIN_OTHER"
check "while the new key waits: delivered" wait_until 120 has_files "$T/mx" "*.eml" 4
check "... signed with the active key" grep -q "d=$GW_DOMAIN_OTHER; s=arc1;" "$T/mx/4.eml"
publish "$T/rec3" "$GW_DOMAIN_OTHER"
check "the new record is published" \
    wait_until 60 sh -c "dig @127.0.0.1 -p $DNS_PORT +short TXT arc2._domainkey.$GW_DOMAIN_OTHER | grep -q DKIM1"
ctl tenant dkim activate --tenant acme --domain "$GW_DOMAIN_OTHER" --selector arc2 >"$T/act.out"
check "activated: the old key goes on standby" grep -q "selector arc1 on standby" "$T/act.out"
mkmsg "$T/m5.eml" "alice@$GW_DOMAIN_OTHER" "rotated"
out "$T/m5.eml" "alice@$GW_DOMAIN_OTHER"
check "after the rotation: delivered" wait_until 120 has_files "$T/mx" "*.eml" 5
check "... signed with the new key" grep -q "d=$GW_DOMAIN_OTHER; s=arc2;" "$T/mx/5.eml"
rspamd_check "$T/mx/5.eml"
check "... which rspamd verifies: R_DKIM_ALLOW" has_symbol R_DKIM_ALLOW
check "logged dkim=signed with the new selector" grep -q "dkim=signed d=$GW_DOMAIN_OTHER s=arc2" "$T/archived.log"

check "remove without --selector when there are two: refused" refused "has 2 keys: name the one" \
    ctl tenant dkim remove --tenant acme --domain "$GW_DOMAIN_OTHER"
check "remove with a selector it does not have: refused" refused "has no DKIM key with selector nope" \
    ctl tenant dkim remove --tenant acme --domain "$GW_DOMAIN_OTHER" --selector nope
ctl tenant dkim remove --tenant acme --domain "$GW_DOMAIN_OTHER" --selector arc1 >"$T/rm1.out"
check "the old key removed" sh -c "grep -q 'DKIM key arc1 of $GW_DOMAIN_OTHER removed$' '$T/rm1.out' && ! '$CTL_BIN' -d '$DATA' tenant dkim list --tenant acme | grep -q arc1"
ctl tenant dkim remove --tenant acme --domain "$GW_DOMAIN_OTHER" >"$T/rm2.out"
check "the active one removed (the only one left: no --selector needed), saying mail goes unsigned" \
    grep -q "DKIM key arc2 of $GW_DOMAIN_OTHER removed: it was the active key" "$T/rm2.out"
mkmsg "$T/m6.eml" "alice@$GW_DOMAIN_OTHER" "after removal"
out "$T/m6.eml" "alice@$GW_DOMAIN_OTHER"
check "after removal: delivered" wait_until 120 has_files "$T/mx" "*.eml" 6
check "... unsigned" sh -c "! grep -q '^DKIM-Signature' '$T/mx/6.eml'"
check "the admin log has the keys' additions, activation and removals" \
    sh -c "'$CTL_BIN' -d '$DATA' log --tenant acme >'$T/log.txt' && grep -q dkim-add '$T/log.txt' && grep -q dkim-activate '$T/log.txt' && grep -q dkim-remove '$T/log.txt'"
check "still nothing of the key on disk" nokey
# --- quarantined, then released: the tenant's outgoing mail is signed as
# it would have been at once; mail from outside never is, whatever its
# From: says -----------------------------------------------------------------
ctl tenant set acme --virus-action quarantine >/dev/null
eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
vmsg() {   # vmsg FILE FROM TO SUBJECT: a message carrying the EICAR test file
	printf 'From: Bob Example <%s>\r\nTo: %s\r\nSubject: %s\r\nDate: Thu, 03 Dec 2026 02:00:00 +0000\r\nMessage-ID: <%s@acme.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n%s\r\n' \
	    "$2" "$3" "$4" "$(echo "$4" | tr ' ' -)" "$eicar" >"$1"
}
held_id() {   # held_id SUBJECT: the quarantine id of the message
	ctl --json quarantine list --tenant acme | python3 -c 'import json,sys
for q in json.load(sys.stdin):
    if sys.argv[1] in json.dumps(q):
        print(q["id"])' "$1"
}
is_held() { [ -n "$(held_id "$1")" ]; }
vmsg "$T/m7.eml" "bob@$GW_DOMAIN_NONE" carol@local.test "held outbound"
out "$T/m7.eml" "bob@$GW_DOMAIN_NONE"
check "an outgoing virus (virus-action quarantine): accepted" grep -q "^data 250" "$T/out"
check "... held in the quarantine" wait_until 60 is_held "held outbound"
check "... not delivered" test "$(files_in "$T/mx" "*.eml")" -eq 6
check "released" ctl quarantine release --tenant acme "$(held_id "held outbound")"
check "... delivered by MX" wait_until 120 has_files "$T/mx" "*.eml" 7
check "... DKIM-signed with its domain's active key" \
    grep -q "^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=$GW_DOMAIN_NONE; s=ed1;" "$T/mx/7.eml"
rspamd_check "$T/mx/7.eml"
check "... which rspamd verifies: R_DKIM_ALLOW" has_symbol R_DKIM_ALLOW
vmsg "$T/m8.eml" "bob@$GW_DOMAIN_NONE" carol@acme.example "held inbound"
python3 "$PY/gw_smtp.py" send "$GW_PORT" "bob@$GW_DOMAIN_NONE" \
    carol@acme.example "$T/m8.eml" >"$T/in8" 2>&1
check "a virus from outside with the tenant's domain in From: accepted" grep -q "^data 250" "$T/in8"
check "... held in the quarantine" wait_until 60 is_held "held inbound"
n_in=$(files_in "$T/in" "*.eml")
check "released" ctl quarantine release --tenant acme "$(held_id "held inbound")"
check "... delivered to the tenant's server" wait_until 120 has_files "$T/in" "*.eml" $((n_in + 1))
check "... not signed: mail from outside is never signed with the tenant's key" \
    sh -c "! grep -q '^DKIM-Signature' '$T/in/$((n_in + 1)).eml'"
archived_stop
