#!/bin/bash
# t_ingest_policy.sh - per-tenant SMTP policy against the real daemon:
# allowed client networks (550 5.7.1), required TLS (530 5.7.0), required
# AUTH (530 5.7.0; offered only after STARTTLS), and garbage input that
# gets an error while the daemon keeps serving.
. "$(dirname "$0")/lib.sh"
archive_init
mkdir -p "$DATA/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=localhost" -keyout "$DATA/tls/key.pem" -out "$DATA/tls/cert.pem" 2>/dev/null
ctl tenant add open --journal-address j@open.example >/dev/null
ctl tenant add netonly --journal-address j@netonly.example >/dev/null
ctl tenant add tlsonly --journal-address j@tlsonly.example >/dev/null
ctl tenant add authonly --journal-address j@authonly.example >/dev/null
ctl tenant set netonly --network 192.0.2.0/24 >/dev/null
ctl tenant set tlsonly --require-tls yes >/dev/null
echo "correct horse battery staple" | ctl tenant set authonly --require-tls yes \
    --require-auth yes --smtp-user authjournal >/dev/null
archived_start
printf 'Subject: policy\r\n\r\nhello\r\n' >"$T/m.eml"
# swaks marks TLS lines with ~: "<~  250", "<~* 530"
ok250() { grep -qE "<[-~]  250 2.0.0"; }
err() { grep -qE "<[~*]\* $1"; }
sw() { swaks --server 127.0.0.1:$SMTP_PORT --from a@example.org --data "$T/m.eml" "$@" 2>&1; }

check "open tenant: 250" grep -q "<-  250 2.0.0" <<<"$(sw --to j@open.example)"
check "network not allowed: 550 5.7.1" \
    grep -q "<\*\* 550 5.7.1" <<<"$(sw --to j@netonly.example)"
check "TLS required, plain session: 530 5.7.0" \
    grep -q "<\*\* 530 5.7.0" <<<"$(sw --to j@tlsonly.example)"
check "TLS required, STARTTLS session: 250" \
    ok250 <<<"$(sw --to j@tlsonly.example -tls)"
out=$(sw --to j@authonly.example -tls)
check "AUTH required, none given: 530 5.7.0" err "530 5.7.0" <<<"$out"
check "AUTH is offered after STARTTLS" grep -q "250-AUTH\|250 AUTH" <<<"$out"
out=$(sw --to j@authonly.example --quit-after EHLO)
check "AUTH is not offered without TLS" bash -c '! grep -q "AUTH" <<<"$1"' _ "$out"
check "AUTH with a wrong password: 535" err 535 <<<"$(sw --to j@authonly.example \
    -tls --auth PLAIN --auth-user authjournal --auth-password wrong-password-here)"
check "AUTH with the right password: 250" ok250 <<<"$(sw --to j@authonly.example \
    -tls --auth PLAIN --auth-user authjournal --auth-password 'correct horse battery staple')"

# garbage: binary junk, NUL bytes, a huge line, a client that never ends DATA
python3 - "$SMTP_PORT" >"$T/garbage.out" 2>&1 <<'PY'
import os, socket, sys
port = int(sys.argv[1])
def session(data, read=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.recv(4096)
    s.sendall(data)
    try:
        out = s.recv(65536) if read else b""
    except socket.timeout:
        out = b"timeout"
    s.close()
    return out
print("junk:", session(os.urandom(3000)).split(b"\r\n")[0])
print("nul:", session(b"EHLO a\x00b\r\n").split(b"\r\n")[0])
print("long:", session(b"EHLO " + b"x" * (2 << 20) + b"\r\n").split(b"\r\n")[0])
PY
cat "$T/garbage.out"
check "binary junk gets a 5xx" grep -q "^junk: b'5" "$T/garbage.out"
check "NUL bytes get a 5xx" grep -q "^nul: b'5" "$T/garbage.out"
check "a 2 MB command line gets a 5xx" grep -q "^long: b'5" "$T/garbage.out"
check "and the daemon still serves: 250" grep -q "<-  250 2.0.0" <<<"$(sw --to j@open.example)"
check "the open tenant's identical messages are stored once" wait_objects open 1
archived_stop
check "verify passes" ctl verify
