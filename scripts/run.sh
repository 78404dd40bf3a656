#!/usr/bin/env bash
# make run: initialise ./var on first start, start the filtering gateway's
# scanners (scripts/gateway-services.sh under ./var/gw: Knot DNS with the
# test zones, clamd, rspamd), archive-keysvc and archived in the
# foreground, print where everything is; Ctrl-C stops them all.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${AR_BIN:-$ROOT/build}
VAR=${AR_VAR:-$ROOT/var}
DATA=$VAR/data
KEYS=$VAR/keys
CTL="$BIN/tools/archivectl -d $DATA"

GW=$VAR/gw
mkdir -p "$VAR"
# traversable (not listable) by rspamd, which drops to _rspamd and reads
# its configuration under var/gw; data and keys keep their own 0700
chmod 711 "$VAR"
# setconf NAME VALUE: one setting of archived.conf (added when absent)
setconf() {
  if grep -q "^$1 *=" "$DATA/archived.conf"; then
    sed -i "s|^$1 *=.*|$1 = $2|" "$DATA/archived.conf"
  else
    echo "$1 = $2" >>"$DATA/archived.conf"
  fi
}
if [ ! -f "$DATA/archived.conf" ]; then
  $CTL init
  # the embedded default configuration, plus the filtering gateway on a
  # loopback port (port 25 in production: docs/operator-guide.md)
  setconf gateway_listen 127.0.0.1:2526
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
gw_started=0
stop() {
  trap - INT TERM
  echo
  echo "stopping archived, archive-keysvc and the gateway's scanners ..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ $gw_started = 0 ] || "$ROOT/scripts/gateway-services.sh" stop "$GW" || true
  exit 0
}
trap stop INT TERM

# The gateway's scanners, when the gateway is on: clamd with the system's
# ClamAV database when there is one (else the project's test signatures:
# gateway-services.sh says which), rspamd with gateway/rspamd, the test
# DNS as rspamd's resolver.  Their socket, URL and DNS go into
# archived.conf (unless the operator pointed them elsewhere).
gw_note="off (gateway_listen is empty)"
if [ -n "$(sed -n 's/^gateway_listen *= *//p' "$DATA/archived.conf")" ]; then
  echo "starting the gateway's scanners under $GW (clamd, rspamd, DNS) ..."
  if "$ROOT/scripts/gateway-services.sh" start "$GW" >/dev/null; then
    gw_started=1
    # shellcheck disable=SC1091
    . "$GW/env"
    # set when empty or still what make run set last time (the ports of
    # var/gw are kept across starts; an operator's own value stays)
    for kv in "clamd_socket=$CLAMD_SOCKET" "rspamd_url=$RSPAMD_URL" \
        "gateway_dns=$DNS_ADDR"; do
      k=${kv%%=*} v=${kv#*=}
      cur=$(sed -n "s/^$k *= *//p" "$DATA/archived.conf")
      last=$(sed -n "s|^$k=||p" "$GW/conf-set" 2>/dev/null || true)
      if [ -z "$cur" ] || [ "$cur" = "$last" ]; then
        setconf "$k" "$v"
      fi
    done
    printf 'clamd_socket=%s\nrspamd_url=%s\ngateway_dns=%s\n' \
      "$CLAMD_SOCKET" "$RSPAMD_URL" "$DNS_ADDR" >"$GW/conf-set"
    if [ "$CLAMD_DB" = system ]; then
      gw_note="clamd with the system's ClamAV database"
    else
      gw_note="clamd with the project's TEST signatures only (no ClamAV database in /var/lib/clamav: install clamav-freshclam and run freshclam)"
    fi
  else
    gw_note="scanners did not start (see above): the gateway answers 451 until they do"
  fi
fi

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

  archived is running (Ctrl-C stops it, the key service and the scanners)

  data directory   $DATA
  key service      $KEYS (socket $KEYS/keysvc.sock)
  SMTP             $(conf smtp_listen)  (journal reports, Google copies, BCC copies;
                   STARTTLS with $DATA/tls/cert.pem)
  configuration    $DATA/archived.conf
  gateway (MX)     $(conf gateway_listen)  (the tenants' domains: scanned by clamd and rspamd,
                   then delivered to the tenant's server and archived)
                   $gw_note
  console and API  $web_url  (self-signed certificate: accept it once)
${first_login:+
$first_login
}
  add a tenant     $CTL tenant add acme --journal-address journal@acme.example
  import mail      $CTL import --tenant acme path/to/maildir-or-mbox-or.eml
  send a message   swaks --server $(conf smtp_listen) --to journal@acme.example
  list, verify     $CTL list --tenant acme ; $CTL verify
  spool            $CTL queue
  gateway domain   $CTL tenant set acme --domain acme.example --relay-to mail.acme.example:25
  quarantine       $CTL quarantine list --tenant acme ; $CTL relay queue

INFO
wait -n "${pids[@]}" || true
stop
