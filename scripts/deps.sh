#!/usr/bin/env bash
# deps.sh - the Debian packages archived needs to build, run and test.
#
#   scripts/deps.sh          install the packages of PKGS that are missing
#   scripts/deps.sh --check  prove that every tool can do what the tests
#                            and `make run` ask of it; each failure names
#                            the Debian package that brings the tool
#   scripts/deps.sh --list   print PKGS, one a line
#
# `make run` and `make test` install through it; `make test`'s first test
# (env.tools, which every end-to-end test requires) runs --check.  To add a
# tool: its package is one line in PKGS, its proof one `cap` line in
# capabilities() (with a small function when one command cannot show it).
set -euo pipefail

# --- packages --------------------------------------------------------------
# Installed with --no-install-recommends, so the set is exactly this list:
# a package the tests need only as another's Recommends is listed itself.
PKGS=(
  # build
  build-essential
  cmake
  pkg-config
  libsodium-dev
  libssl-dev
  liblmdb-dev
  libsqlite3-dev
  libgmime-3.0-dev
  libmicrohttpd-dev
  libcurl4-openssl-dev
  libjansson-dev
  libarchive-dev
  libstemmer-dev
  libutf8proc-dev
  # keysvc backups: Shamir M-of-N shares (build, runtime)
  libgfshare-dev
  libgfshare2
  # run: the self-signed certificate of the first start; tests: certificates,
  # signatures checked with openssl alone
  openssl
  # tests: the sample corpus (tar --zstd)
  zstd
  # tests: real SMTP clients.  swaks speaks STARTTLS only with Net::SSLeay,
  # which is only a Recommends of swaks
  swaks
  libnet-ssleay-perl
  # tests: smtp-source and smtp-sink (Postfix installed for them only)
  postfix
  # tests: the JSON API over HTTP and HTTPS
  curl
  ca-certificates
  # tests: scripting
  python3
  procps
  # web console tests: headless Chromium driven by Selenium (WebDriver)
  chromium
  chromium-driver
  python3-selenium
  # the gateway's scanners (scripts/gateway-services.sh: tests, make run):
  # clamd, rspamd, Knot DNS for the test zones, dig, the DKIM test signer;
  # clamav-milter for bench/gateway.sh's Postfix reference stack
  clamav-daemon
  clamav-milter
  rspamd
  knot
  bind9-dnsutils
  opendkim-tools
  # bench (make bench, make bench-search): timing, web load, the reference
  # indexer, bench/stream.sh's plot of the 250 rate per 10 s window (PNG)
  time
  wrk
  notmuch
  gnuplot-nox
  # S3 backend tests: a one-node Ceph RADOS Gateway (scripts/rgw.sh over
  # ../shared/tools/rgw-up.sh)
  ceph-mon
  ceph-osd
  radosgw
  ceph-common
)

# --- capabilities ----------------------------------------------------------
# One a line: cap PACKAGE "what is proved" COMMAND [ARG...].  --check runs
# COMMAND in a scratch directory ($W) with a time limit; when it fails, the
# line names PACKAGE as the one to install.
capabilities() {
  cap build-essential   "cc compiles and links a program"   cc_works
  cap cmake             "cmake runs"                        cmake --version
  cap openssl           "openssl makes an EC certificate and checks an Ed25519 signature" openssl_works
  cap zstd              "tar --zstd packs and unpacks"      zstd_tar
  cap swaks             "swaks runs"                        swaks --version
  cap libnet-ssleay-perl "swaks -tls: STARTTLS support (Net::SSLeay)" swaks_supports 'TLS'
  cap swaks             "swaks --auth PLAIN/LOGIN"          swaks_supports 'Basic AUTH'
  cap postfix           "smtp-source delivers a message to smtp-sink on loopback" smtp_pair
  cap curl              "curl fetches a page over HTTPS (openssl s_server)" curl_https
  cap python3           "python3 (first in PATH) has json, csv, zipfile, smtplib, ssl" \
                        python3 -c 'import json, csv, zipfile, smtplib, ssl, hmac, base64'
  cap python3           "/usr/bin/python3 runs"             /usr/bin/python3 -c 'import json'
  cap procps            "ps lists processes"                ps -p $$
  cap python3-selenium  "/usr/bin/python3 imports selenium" /usr/bin/python3 -c 'import selenium.webdriver'
  cap chromium          "headless Chromium renders a page"  chromium_dom
  cap chromium-driver   "chromedriver drives headless Chromium through Selenium" webdriver_page
  cap clamav-daemon     "clamd runs"                        clamd --version
  cap clamav-milter     "clamav-milter runs"                clamav-milter --version
  cap rspamd            "rspamd runs"                       rspamd --version
  cap knot              "knotd runs"                        knotd --version
  cap bind9-dnsutils    "dig runs"                          dig -v
  cap opendkim-tools    "opendkim-genkey and opendkim-testmsg are there" \
                        sh -c 'command -v opendkim-genkey && command -v opendkim-testmsg'
  cap ceph-mon          "ceph-mon and monmaptool run (the S3 tests' RGW)" ceph_mon_works
  cap ceph-osd          "ceph-osd runs (the S3 tests' RGW)" ceph-osd --version
  cap radosgw           "radosgw and radosgw-admin run (the S3 tests' RGW)" radosgw_works
  cap ceph-common       "ceph and ceph-authtool run (the S3 tests' RGW)" ceph_common_works
}

# --- the checks that need more than one command ------------------------------
# Chromium's flags: no sandbox (root), and no background connections (a
# closed network refuses them; each start would otherwise try).
export CHROMIUM_FLAGS="--headless=new --no-sandbox --disable-gpu
  --disable-dev-shm-usage --disable-quic --no-first-run
  --disable-background-networking --disable-component-update
  --disable-sync --disable-extensions"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_port PORT: until something listens on 127.0.0.1:PORT (at most 60 s)
wait_port() {
  local end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ]; do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# bg_start COMMAND...: run in the background; stopped when the check ends
# (the pids are kept in $W/bg, the check runs in a shell of its own)
bg_start() { "$@" & echo $! >>"$W/bg"; }
bg_stop() {
  local p
  [ -f "$W/bg" ] || return 0
  for p in $(cat "$W/bg"); do kill "$p" 2>/dev/null || true; done
  for p in $(cat "$W/bg"); do wait "$p" 2>/dev/null || true; done
  rm -f "$W/bg"
}

ceph_mon_works() { ceph-mon --version && command -v monmaptool >/dev/null; }
radosgw_works() { radosgw --version && command -v radosgw-admin >/dev/null; }
ceph_common_works() { ceph --version && command -v ceph-authtool >/dev/null; }
cc_works() {
  printf '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n' >"$W/t.c"
  cc -o "$W/t" "$W/t.c" && [ "$("$W/t")" = ok ]
}
openssl_works() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 1 -subj /CN=localhost -keyout "$W/k.pem" -out "$W/c.pem" &&
  openssl genpkey -algorithm ed25519 -out "$W/ed.pem" &&
  openssl pkey -in "$W/ed.pem" -pubout -out "$W/ed.pub" &&
  echo data >"$W/d" &&
  openssl pkeyutl -sign -inkey "$W/ed.pem" -rawin -in "$W/d" -out "$W/d.sig" &&
  openssl pkeyutl -verify -pubin -inkey "$W/ed.pub" -rawin -in "$W/d" \
    -sigfile "$W/d.sig"
}
zstd_tar() {
  mkdir -p "$W/z/in" "$W/z/out" && echo corpus >"$W/z/in/f" &&
  tar --zstd -cf "$W/z/t.tar.zst" -C "$W/z/in" f &&
  tar --zstd -xf "$W/z/t.tar.zst" -C "$W/z/out" && cmp "$W/z/in/f" "$W/z/out/f"
}
# swaks_supports FEATURE: swaks --support lists "=== FEATURE supported"
swaks_supports() { swaks --support 2>&1 | tee /dev/stderr | grep -q "^=== $1 supported"; }
smtp_pair() {
  local port i
  export PATH="$PATH:/usr/sbin:/sbin"
  port=$(free_port)
  # -c: a running count of sessions and messages ("mesg=N") on stdout
  bg_start smtp-sink -u nobody -c "127.0.0.1:$port" 10 >"$W/sink.out"
  wait_port "$port" || return 1
  smtp-source -m 2 -f a@example.org -t b@example.org "127.0.0.1:$port" || return 1
  for i in $(seq 1 100); do
    tr '\r' '\n' <"$W/sink.out" | grep -q "mesg=2" && return 0
    sleep 0.1
  done
  tr '\r' '\n' <"$W/sink.out"
  return 1
}
curl_https() {
  local port
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 1 -subj /CN=localhost -keyout "$W/sk.pem" -out "$W/sc.pem" 2>/dev/null
  port=$(free_port)
  bg_start openssl s_server -quiet -www -accept "127.0.0.1:$port" \
    -cert "$W/sc.pem" -key "$W/sk.pem"
  wait_port "$port" || return 1
  [ "$(curl -sS --cacert "$W/sc.pem" -o /dev/null -w '%{http_code}' \
    "https://localhost:$port/")" = 200 ]
}
chromium_dom() {
  printf '<title>t</title><p>archived %s check</p>\n' dom >"$W/p.html"
  # shellcheck disable=SC2086
  HOME=$W /usr/bin/chromium $CHROMIUM_FLAGS \
    --user-data-dir="$W/chromium-profile" --dump-dom "file://$W/p.html" |
    grep -q 'archived dom check'
}
webdriver_page() {
  printf '<title>archived</title><p id="x">web%s</p>\n' driver >"$W/w.html"
  # shellcheck disable=SC2086
  HOME=$W /usr/bin/python3 - "$W" $CHROMIUM_FLAGS <<'PY'
import sys
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
w, flags = sys.argv[1], sys.argv[2:]
o = webdriver.ChromeOptions()
o.binary_location = "/usr/bin/chromium"
for f in flags + ["--user-data-dir=" + w + "/webdriver-profile"]:
    o.add_argument(f)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
try:
    d.get("file://" + w + "/w.html")
    t = d.find_element(By.ID, "x").text
    print("page text:", t)
    sys.exit(0 if t == "webdriver" else 1)
finally:
    d.quit()
PY
}

# --- --check -----------------------------------------------------------------
FAILED=()
cap() {
  local pkg=$1 what=$2 rc=0 t0=$SECONDS
  shift 2
  rm -rf "$W" && mkdir -p "$W"
  # a shell of its own, so that the time limit ends whatever it started
  timeout 120 bash -c 'trap bg_stop EXIT; "$@"' check "$@" >"$W.out" 2>&1 ||
    rc=$?
  if [ $rc -eq 0 ]; then
    echo "ok: $what ($((SECONDS - t0)) s)"
  else
    echo "FAIL: $what (exit $rc after $((SECONDS - t0)) s) -- needs Debian package $pkg"
    sed 's/^/    /' "$W.out" | tail -15
    FAILED+=("$pkg")
  fi
}

check_all() {
  local p missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "FAIL: not installed: ${missing[*]}"
  else
    echo "ok: all ${#PKGS[@]} packages installed"
  fi
  W=$(mktemp -d "${TMPDIR:-/tmp}/ar-deps-XXXXXX")/w
  export W
  trap 'rm -rf "${W%/w}"' EXIT
  # every check function, for the shells that cap starts
  export -f $(compgen -A function)
  capabilities
  if [ ${#missing[@]} -gt 0 ] || [ ${#FAILED[@]} -gt 0 ]; then
    local all
    all=$(printf '%s\n' "${missing[@]}" "${FAILED[@]}" | sort -u | paste -sd ' ')
    echo "deps: missing or broken: $all"
    echo "deps: install with scripts/deps.sh (or apt-get install --no-install-recommends $all)"
    return 1
  fi
  echo "deps: every tool the tests use works"
}

case "${1:-}" in
  --check) check_all; exit $? ;;
  --list) printf '%s\n' "${PKGS[@]}"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--check|--list]" >&2; exit 2 ;;
esac

# --- install -----------------------------------------------------------------
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix is installed for its smtp-source/smtp-sink test tools only.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
