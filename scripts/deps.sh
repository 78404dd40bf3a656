#!/usr/bin/env bash
# Install the Debian packages archived needs to build, run and test, when
# they are missing.  Used by `make run`, `make test` and CI alike.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config
  libsodium-dev libssl-dev liblmdb-dev libsqlite3-dev libgmime-3.0-dev
  libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libarchive-dev
  libstemmer-dev libutf8proc-dev
  # keysvc backups: Shamir M-of-N shares (build, runtime)
  libgfshare-dev libgfshare2
  # run: self-signed certificate on first start
  openssl
  # tests: corpus, real SMTP clients, scripting
  zstd swaks postfix curl python3 procps time
  # bench/search: the reference indexer
  notmuch
  # bench/stream.sh: the plot of the 250 rate per 10 s window (PNG)
  gnuplot-nox
  # web console tests: headless Chromium driven by Selenium (WebDriver);
  # web benchmark
  chromium chromium-driver python3-selenium wrk
)

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
