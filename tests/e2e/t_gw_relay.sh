#!/bin/bash
# t_gw_relay.sh - the gateway's relay queue through the real daemon
# (issue 18 "Must hold"): mail accepted on the MX listener reaches the
# tenant's server, byte for byte (Postfix's smtp-sink, the project's
# smtp_testd); a server down for a while gets its mail when it is back, in
# order of arrival; past the queue lifetime (AR_TEST_NOW moved 8 days on)
# a deferred recipient is bounced with an RFC 3464 DSN to the sender
# (delivered by MX lookup through the test DNS), never to a null sender;
# one recipient of three refused 5xx gets one DSN, the others are
# delivered; TLS verify against a server with the wrong certificate is
# deferred with the reason and nothing goes out in clear; the classic
# open-relay tricks are all refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_relay.sh"

archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
gw_services dns clamd

# --- the downstream servers -------------------------------------------------
P_SINK=$(free_port)          # smtp-sink -d: acme.example
P_B=$(free_port)             # smtp_testd, stopped and started: b.acme.example
P_C=$(free_port)             # nothing ever listens: c.acme.example
P_D=$(free_port)             # smtp_testd refusing carol: d.acme.example
P_E=$(free_port)             # smtp_testd with STARTTLS: e.acme.example
P_MX=$(free_port)            # the MX of local.test (the senders' domain)
sink_start "$T/sink" "$P_SINK"
testd_start b1 "$P_B" -D b.acme.example
B1_PID=$TESTD_PID
testd_start d "$P_D" -D d.acme.example -x carol@d.acme.example=550
testd_start mx "$P_MX" -D local.test

# a CA the route trusts, and a server certificate it did not sign
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=trusted-ca \
    -keyout "$T/ca.key" -out "$T/ca.pem" >/dev/null 2>&1
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$T/srv.key" -out "$T/srv.pem" >/dev/null 2>&1
testd_start e "$P_E" -D e.acme.example -c "$T/srv.pem" -k "$T/srv.key" -S

ctl tenant set acme --domain acme.example --relay-to "127.0.0.1:$P_SINK" \
    --tls none >/dev/null
ctl tenant set acme --domain b.acme.example --relay-to "127.0.0.1:$P_B" \
    --tls none >/dev/null
ctl tenant set acme --domain c.acme.example --relay-to "127.0.0.1:$P_C" \
    --tls none >/dev/null
ctl tenant set acme --domain d.acme.example --relay-to "127.0.0.1:$P_D" \
    --tls opportunistic >/dev/null
ctl tenant set acme --domain e.acme.example --relay-to "127.0.0.1:$P_E" \
    --tls verify --tls-ca "$T/ca.pem" >/dev/null

conf_put clamd_socket "$CLAMD_SOCKET"
conf_put gateway_dns "$DNS_ADDR"
conf_put gateway_hostname gw.archived.test
conf_put relay_retry_min 1s
conf_put relay_retry_max 2s
conf_put relay_connect_timeout 5s
: >"$T/clock"                          # empty: the real time
export AR_TEST_NOW=@$T/clock AR_TEST_MX_PORT=$P_MX
gateway_start
echo "gateway on port $GW_PORT"

send() { python3 "$PY/gw_smtp.py" send "$GW_PORT" "$@" >>"$T/send.log" 2>&1; }

# mkmsg FILE SUBJECT: a message with CRLF lines, a line starting with a dot
# (dot-stuffing both ways), a long folded header, trailing white space.
mkmsg() {
	python3 - "$1" "$2" <<'PYEOF'
import sys
path, subj = sys.argv[1:3]
lines = ["From: Alice <alice@local.test>", "To: bob@acme.example",
         "Subject: " + subj, "Message-ID: <%s@local.test>" % subj.replace(" ", "-"),
         "Date: Wed, 02 Dec 2026 10:00:00 +0000",
         "X-Long: " + " ".join("word%d" % i for i in range(30)),
         "\tcontinued folded line", "MIME-Version: 1.0",
         "Content-Type: text/plain; charset=us-ascii", ""]
lines += ["line %d of %s   " % (i, subj) for i in range(200)]
lines += [".a line that starts with a dot", "..two dots", ".", " ", "last line"]
open(path, "wb").write(("\r\n".join(lines) + "\r\n").encode())
PYEOF
}

# --- 1. delivered byte for byte, envelope exactly as accepted ---------------
mkmsg "$T/m1.eml" "identical one"
check "a clean message to two recipients is accepted" \
    send alice@local.test bob@acme.example,Carol@acme.example "$T/m1.eml"
check "smtp-sink received it" wait_until 120 has_files "$T/sink" "m.*" 1
check "delivered byte for byte apart from our Received: header, envelope exact" \
    python3 - "$T/sink" "$T/m1.eml" <<'PYEOF'
import glob, sys
dump = open(glob.glob(sys.argv[1] + "/m.*")[0], "rb").read().decode()
sent = open(sys.argv[2], "rb").read().decode().replace("\r\n", "\n")
ok = True
mail = [l for l in dump.split("\n") if l.startswith("X-Mail-Args:")]
rcpt = [l for l in dump.split("\n") if l.startswith("X-Rcpt-Args:")]
if mail != ["X-Mail-Args: <alice@local.test>"] or \
        rcpt != ["X-Rcpt-Args: <bob@acme.example>", "X-Rcpt-Args: <Carol@acme.example>"]:
    print("envelope:", mail, rcpt); ok = False
i = dump.find("\nReceived: from client.test ([127.0.0.1])\n\tby gw.archived.test (archived gateway) with ESMTP id ")
if i < 0:
    print("our Received: header is missing"); sys.exit(1)
rest = dump[i + 1:]
lines = rest.split("\n")
if not lines[2].startswith("\t") or lines[3].startswith("\t"):
    print("our Received: header is not 3 lines"); ok = False
body = "\n".join(lines[3:])
# smtp-sink writes LF lines and one empty line after the message
if body != sent + "\n":
    print("content differs"); ok = False
    import difflib
    for l in list(difflib.unified_diff(sent.split("\n"), body.split("\n"), lineterm=""))[:20]:
        print(l)
sys.exit(0 if ok else 1)
PYEOF

# --- 2. open relay: every classic trick refused ------------------------------
check "open-relay tricks are all refused (5xx at MAIL or RCPT)" \
    python3 "$PY/gw_smtp.py" tricks "$GW_PORT"
grep -q "reason=\"recipient domain is no tenant's\"" "$T/archived.log"
check "refusals are logged with their reason" [ $? -eq 0 ]

# --- 3. 5xx for one recipient of three ---------------------------------------
mkmsg "$T/m3.eml" "one of three"
check "a message to three recipients of d.acme.example is accepted" \
    send alice@local.test bob@d.acme.example,carol@d.acme.example,dave@d.acme.example "$T/m3.eml"
check "the two others are delivered" wait_until 120 has_files "$T/d" "*.eml" 1
check "delivered to bob and dave only, byte for byte (CRLF) after our Received:" \
    python3 - "$T/d" "$T/m3.eml" <<'PYEOF'
import sys
env = open(sys.argv[1] + "/1.env").read().split("\n")
rc = [l for l in env if l.startswith("rcpt=")]
if rc != ["rcpt=bob@d.acme.example", "rcpt=dave@d.acme.example"]:
    print("recipients:", rc); sys.exit(1)
got = open(sys.argv[1] + "/1.eml", "rb").read()
sent = open(sys.argv[2], "rb").read()
if not got.startswith(b"Received: from client.test ([127.0.0.1])\r\n\tby gw.archived.test"):
    print("no Received: first"); sys.exit(1)
parts = got.split(b"\r\n", 3)
if not parts[1].startswith(b"\t") or not parts[2].startswith(b"\t") or parts[3] != sent:
    print("content differs"); sys.exit(1)
PYEOF
dsn_for() {   # dsn_for RCPT: the number of DSNs in $T/mx naming RCPT
	python3 "$PY/dsn_check.py" "$T/mx" >"$T/dsns.json" 2>>"$T/dsn_check.log"
	python3 -c "import json,sys
n=0
for l in open('$T/dsns.json'):
    d=json.loads(l)
    n+=sum(1 for r in d['recipients'] if r['final'].lower()=='rfc822; $1'.lower())
print(n)"
}
has_dsn_for() { [ "$(dsn_for "$1")" -ge 1 ]; }
check "a DSN for carol reaches the sender through the MX of local.test" \
    wait_until 120 has_dsn_for carol@d.acme.example
check "the DSN for carol is one RFC 3464 report: failed 5.x.x, the 550, null sender" \
    python3 - "$T/dsns.json" <<'PYEOF'
import json, sys
ds = [json.loads(l) for l in open(sys.argv[1])]
mine = [d for d in ds if any("carol@d.acme.example" in r["final"] for r in d["recipients"])]
if len(mine) != 1:
    print("DSNs for carol:", len(mine)); sys.exit(1)
d = mine[0]
r = d["recipients"]
ok = (d["report"] and d["mail_from"] == "" and d["rcpt"] == ["alice@local.test"]
      and len(r) == 1 and r[0]["action"] == "failed" and r[0]["status"].startswith("5.")
      and r[0]["diagnostic"].startswith("smtp; 550") and d["subject"] == "one of three"
      and d["reporting_mta"].startswith("dns; gw.archived.test"))
print(d)
sys.exit(0 if ok else 1)
PYEOF

# --- 4. TLS verify against the wrong certificate ----------------------------
mkmsg "$T/m4.eml" "tls verify"
check "a message for e.acme.example (tls verify) is accepted" \
    send tls@local.test eve@e.acme.example "$T/m4.eml"
deferred_with_reason() {
	[ "$(rq e.acme.example deferred)" = 1 ] &&
	    rq e.acme.example last_error | grep -qiE "certificate|verif"
}
check "deferred, with the certificate failure as its reason" \
    wait_until 120 deferred_with_reason
rq e.acme.example last_error | sed 's/^/    last error: /'
grep -q "mails=0" "$T/e/stats" 2>/dev/null || [ ! -f "$T/e/stats" ]
check "the server never saw a MAIL FROM (nothing in clear)" [ $? -eq 0 ]
check "and got no message" [ "$(files_in "$T/e" "*.eml")" -eq 0 ]
# the same server, its own certificate as the CA: delivered over TLS
ctl tenant set acme --domain e.acme.example --tls-ca "$T/srv.pem" >/dev/null
ctl relay retry >/dev/null
check "with the right CA it is delivered, over TLS" \
    wait_until 120 has_files "$T/e" "*.eml" 1
check "... and the session was TLS" grep -q "^tls=TLS" "$T/e/1.env"

# --- 5. downstream down, then back: delivered in order of arrival ------------
mkmsg "$T/b0.eml" "b before"
send alice@local.test bob@b.acme.example "$T/b0.eml"
check "b.acme.example takes mail while up" wait_until 120 has_files "$T/b1" "*.eml" 1
stop_pid "$B1_PID"
for i in 1 2 3 4 5 6; do
	mkmsg "$T/b$i.eml" "b down $i"
	to=bob@b.acme.example
	[ $((i % 2)) -eq 0 ] && to=bob@b.acme.example,dan@b.acme.example
	send alice@local.test "$to" "$T/b$i.eml" || bad "b down $i not accepted"
done
all_deferred() { [ "$(rq_waiting b.acme.example)" -ge 9 ]; }
check "while it is down, its 9 recipients wait (pending or deferred)" \
    wait_until 120 all_deferred
rq b.acme.example last_error | sed 's/^/    last error: /'
testd_start b2 "$P_B" -D b.acme.example
check "once it is back, every message arrives" wait_until 120 has_files "$T/b2" "*.eml" 6
check "in order of arrival, for each recipient" python3 - "$T/b2" <<'PYEOF'
import sys, re
order = {}
for n in range(1, 7):
    eml = open("%s/%d.eml" % (sys.argv[1], n), "rb").read().decode()
    subj = re.search(r"^Subject: b down (\d+)\r$", eml, re.M).group(1)
    for l in open("%s/%d.env" % (sys.argv[1], n)):
        if l.startswith("rcpt="):
            order.setdefault(l.strip()[5:], []).append(int(subj))
print(order)
ok = order.get("bob@b.acme.example") == [1, 2, 3, 4, 5, 6] and \
    order.get("dan@b.acme.example") == [2, 4, 6]
sys.exit(0 if ok else 1)
PYEOF

# --- 6. past the queue lifetime: bounced, one DSN, none to a null sender ----
mkmsg "$T/c1.eml" "c expired"
mkmsg "$T/c2.eml" "c expired null sender"
check "a message for the dead c.acme.example is accepted" \
    send alice@local.test xavier@c.acme.example "$T/c1.eml"
check "and one from the null sender" send "" yann@c.acme.example "$T/c2.eml"
c_deferred() { [ "$(rq_waiting c.acme.example)" = 2 ]; }
check "both wait" wait_until 120 c_deferred
echo "+$((8 * 86400))" >"$T/clock"      # 8 days later (queue lifetime 7)
check "after 7 days a DSN for xavier reaches the sender" \
    wait_until 120 has_dsn_for xavier@c.acme.example
queue_empty() { relay_queue_json && [ "$(python3 -c "import json; print(json.load(open('$T/rq.json'))['messages'])")" = 0 ]; }
check "the relay queue empties (every recipient final, DSNs delivered)" \
    wait_until 120 queue_empty
check "the expiry DSN: failed 4.4.7, the last reply, the original header" \
    python3 - "$T/dsns.json" <<'PYEOF'
import json, sys
ds = [json.loads(l) for l in open(sys.argv[1])]
x = [d for d in ds if any("xavier@c.acme.example" in r["final"] for r in d["recipients"])]
if len(x) != 1:
    print("DSNs for xavier:", len(x)); sys.exit(1)
d = x[0]; r = d["recipients"][0]
print(d)
sys.exit(0 if d["report"] and d["mail_from"] == "" and d["rcpt"] == ["alice@local.test"]
         and r["action"] == "failed" and r["status"] == "4.4.7"
         and "queue lifetime" in r["diagnostic"] and d["subject"] == "c expired" else 1)
PYEOF
check "no DSN for the null sender's message" [ "$(dsn_for yann@c.acme.example)" = 0 ]
grep -q "status=bounced" "$T/archived.log"
check "the bounces are logged" [ $? -eq 0 ]
check "every DSN went out from the null sender, to a sender, as a report" \
    python3 -c "import json,sys
ds=[json.loads(l) for l in open('$T/dsns.json')]
print(len(ds),'DSNs')
sys.exit(0 if ds and all(d['report'] and d['mail_from']=='' and d['rcpt'][0].endswith('@local.test') for d in ds) else 1)"
echo "--- send log"; cat "$T/send.log"
archived_stop
