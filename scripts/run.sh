#!/usr/bin/env bash
# make run: initialise ./var on first start, start archive-keysvc and
# archived in the foreground, print where everything is; Ctrl-C stops both.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${AR_BIN:-$ROOT/build}
VAR=${AR_VAR:-$ROOT/var}
DATA=$VAR/data
KEYS=$VAR/keys
CTL="$BIN/tools/archivectl -d $DATA"

mkdir -p "$VAR"
chmod 700 "$VAR"
if [ ! -f "$DATA/archived.conf" ]; then
  $CTL init
fi
if [ ! -f "$DATA/tls/cert.pem" ]; then
  mkdir -p "$DATA/tls" && chmod 700 "$DATA/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 825 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$DATA/tls/key.pem" -out "$DATA/tls/cert.pem" 2>/dev/null
  chmod 600 "$DATA/tls/key.pem"
  echo "created a self-signed TLS certificate: $DATA/tls/cert.pem"
fi

pids=()
stop() {
  trap - INT TERM
  echo
  echo "stopping archived and archive-keysvc ..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  exit 0
}
trap stop INT TERM

"$BIN/keysvc/archive-keysvc" -d "$KEYS" &
pids+=($!)
for _ in $(seq 1 100); do
  [ -S "$KEYS/keysvc.sock" ] && break
  sleep 0.1
done
[ -S "$KEYS/keysvc.sock" ] || { echo "archive-keysvc did not start" >&2; stop; }

# First start: a "demo" tenant with an admin, and an operator, each with a
# random password printed once (only its Argon2id hash is kept).  Nothing
# is created again once var/.console-initialised exists.
first_login=""
if [ ! -f "$VAR/.console-initialised" ]; then
  $CTL tenant show demo >/dev/null 2>&1 ||
    $CTL tenant add demo --journal-address journal@demo.example >/dev/null
  admin_pw=$(openssl rand -base64 18)
  op_pw=$(openssl rand -base64 18)
  if echo "$admin_pw" | $CTL user add --tenant demo \
       --role admin,officer,legal,auditor admin >/dev/null &&
     echo "$op_pw" | $CTL user add --operator operator >/dev/null; then
    touch "$VAR/.console-initialised"
    first_login="  first sign-in    tenant demo, user admin, password $admin_pw
                   (operator: no tenant, user operator, password $op_pw)
                   shown this once: write them down, or reset with
                   echo NEWPASS | $CTL user set --tenant demo admin --password"
  fi
  unset admin_pw op_pw
fi

"$BIN/archived/archived" -d "$DATA" &
pids+=($!)

conf() { sed -n "s/^$1 *= *//p" "$DATA/archived.conf"; }
web_url="https://$(conf web_listen)/"
[ "$(conf web_tls)" = no ] && web_url="http://$(conf web_listen)/"
cat <<INFO

  archived is running (Ctrl-C stops it and the key service)

  data directory   $DATA
  key service      $KEYS (socket $KEYS/keysvc.sock)
  SMTP             $(conf smtp_listen)  (journal reports, Google copies, BCC copies;
                   STARTTLS with $DATA/tls/cert.pem)
  configuration    $DATA/archived.conf
  console and API  $web_url  (self-signed certificate: accept it once)
${first_login:+
$first_login
}
  add a tenant     $CTL tenant add acme --journal-address journal@acme.example
  import mail      $CTL import --tenant acme path/to/maildir-or-mbox-or.eml
  send a message   swaks --server $(conf smtp_listen) --to journal@acme.example
  list, verify     $CTL list --tenant acme ; $CTL verify
  spool            $CTL queue

INFO
wait -n "${pids[@]}" || true
stop
