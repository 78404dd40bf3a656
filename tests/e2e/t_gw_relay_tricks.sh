#!/bin/bash
# t_gw_relay_tricks.sh - bad input at the gateway, through the real daemon:
# unknown domains and every open-relay form (RCPT TO another domain, '%'
# and '!' routing in the local part, source routes, quoted local parts,
# address literals) get 550 5.7.1 and nothing is queued, delivered or
# archived; a source route to one of our domains is dropped (RFC 5321 C)
# and the mail goes to the mailbox only.  Header and line injection in
# the gateway's policy values through archivectl: refused with a clear
# message, the tenant's settings unchanged.
. "$(dirname "$0")/lib.sh"
gw_services
archive_init
sink_start
gw_tenant acme acme.example
archived_start_gw
M=$S/tests/e2e/py/gw_mail.py
python3 "$M" clean "$T/m.eml" sender@other.test user@acme.example zqtrickmarker

# rcpt ADDR: the reply to RCPT TO:<ADDR> (raw, as a client could send it)
rcpt() {
	python3 - "$GW_PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
f = s.makefile("rb")
def reply():
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line.decode(errors="replace").strip()
reply()
s.sendall(b"EHLO client.test\r\n"); reply()
s.sendall(b"MAIL FROM:<sender@other.test>\r\n"); reply()
s.sendall(b"RCPT TO:<" + sys.argv[2].encode() + b">\r\n")
print(reply())
s.sendall(b"QUIT\r\n")
PY
}
denied() {
	local r
	r=$(rcpt "$1")
	[[ $r == "550 5.7.1"* ]] || { echo "  RCPT TO:<$1> -> $r"; return 1; }
}
for a in \
    user@elsewhere.example \
    user@unknown.test \
    'user%elsewhere.example@acme.example' \
    'elsewhere.example!user@acme.example' \
    '@acme.example:user@elsewhere.example' \
    '@acme.example,@relay.test:user@elsewhere.example' \
    '"user@elsewhere.example"@acme.example' \
    '"user%elsewhere"@acme.example' \
    '"a\@b"@acme.example' \
    'user@[127.0.0.1]' \
    'user@acme.example.elsewhere.example' \
    'user@sub.acme.example' \
    'postmaster@elsewhere.example'; do
	check "RCPT TO:<$a>: 550 5.7.1" denied "$a"
done
check "every refusal is logged" \
    test "$(grep -c 'gateway session=.* status=refused' "$T/archived.log")" -ge 13
no_domain() { [[ $(rcpt 'user%elsewhere.example') == "501 5.1.3"* ]]; }
check "RCPT TO:<user%elsewhere.example> (no domain): 501 5.1.3" no_domain

accepted_rcpt() { [[ $(rcpt "$1") == "250 "* ]]; }
check "our domain, any case: accepted" accepted_rcpt User@ACME.Example
check "a source route to our domain: the route is dropped, accepted" \
    accepted_rcpt '@elsewhere.example:user@acme.example'

# a whole transaction with a refused and an accepted recipient: only ours
out=$(swaks --server "127.0.0.1:$GW_PORT" --from sender@other.test \
    --to user@acme.example,victim@elsewhere.example --data "$T/m.eml" \
    --local-interface "$GW_IP_LOCAL_PASS" 2>&1)
check "mixed recipients: the foreign one refused" \
    grep -q "^<\*\* 550 5.7.1" <<<"$out"
check "... the message accepted for ours" grep -q "^<-  250 2.0.0 Ok: queued" <<<"$out"
check "... delivered once" wait_until 120 sink_has 1
check "... to our recipient only" \
    bash -c 'grep -q "^X-Rcpt-Args: <user@acme.example>" "$0" &&
    ! grep -q "elsewhere" "$0"' "$(sink_grep zqtrickmarker)"
check "... archived once" wait_objects acme 1
check "nothing else was archived" test "$(objects_of acme)" -eq 1
check "nothing else delivered" test "$(sink_count)" -eq 1
check "the relay queue is empty" wait_until 60 \
    bash -c '"$0" -d "$1" --json relay queue | grep -q "\"messages\": *0[,}]"' "$CTL_BIN" "$DATA"

# --- injection in policy values through archivectl ---------------------------
before=$(ctl --json tenant show acme)
CR=$'\r'
LF=$'\n'
# refused CMD...: the command fails with a message naming what was wrong
refused() {
	local out
	if out=$("$CTL_BIN" -d "$DATA" "$@" 2>&1); then
		echo "  accepted: $*"
		return 1
	fi
	[ -n "$out" ] || { echo "  no message"; return 1; }
	! grep -q "Segmentation\|runtime error\|Sanitizer" <<<"$out"
}
check "--relay-to with CRLF and a header: refused" \
    refused tenant set acme --relay-to "127.0.0.1:25${CR}${LF}X-Evil: 1"
check "--relay-to with a bare LF: refused" \
    refused tenant set acme --relay-to "mail.acme.example:25${LF}RCPT TO:<x@evil.test>"
check "--domain with CRLF and Bcc: refused" \
    refused tenant set acme --domain "evil.example${CR}${LF}Bcc: x@evil.test" \
    --relay-to 127.0.0.1:25
check "--domain with a space: refused" \
    refused tenant set acme --domain "evil example" --relay-to 127.0.0.1:25
check "--blocked-types with CRLF: refused" \
    refused tenant set acme --blocked-types "pe${CR}${LF}X-Evil: 1"
check "--spam-tag not a number: refused" \
    refused tenant set acme --spam-tag "5${LF}6"
check "allow list entry with CRLF: refused" \
    refused gateway allow add --tenant acme "a@b.example${CR}${LF}X-Evil: 1"
check "block list entry with a NUL-free control byte: refused" \
    refused gateway block add --tenant acme "a@b.example$(printf '\x01')"
check "recipient list entry with LF: refused" \
    refused gateway recipients add --tenant acme "u@acme.example${LF}v@acme.example"
check "--smtp-user with CRLF: refused" \
    bash -c 'echo "password password" | "$0" -d "$1" tenant set acme --smtp-user "$2" >/dev/null 2>&1; [ $? -ne 0 ]' \
    "$CTL_BIN" "$DATA" "u${CR}${LF}X: y"
after=$(ctl --json tenant show acme)
check "the tenant's settings are unchanged" test "$before" = "$after"
lists_empty() {
	local l
	for l in allow block recipients; do
		[ "$(ctl --json gateway $l list --tenant acme | tr -d ' \n')" = "[]" ] || return 1
	done
}
check "the lists are empty" lists_empty
check "and the gateway still serves" accepted_rcpt user@acme.example
archived_stop
check "verify passes" ctl verify
