#!/bin/bash
# t_tls_listeners.sh - both TLS listeners of the real daemon, the console
# (libmicrohttpd + GnuTLS) and SMTP STARTTLS (OpenSSL), probed with
# openssl s_client and curl: TLS 1.0 and 1.1 are refused even when the
# client offers every suite at security level 0, TLS 1.2 only with
# forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305),
# TLS 1.3 accepted.  The certificate is RSA so that suites without
# forward secrecy (static RSA key exchange) can be offered at all.
. "$(dirname "$0")/lib.sh"
archive_init
mkdir -p "$DATA/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -keyout "$DATA/tls/key.pem" -out "$DATA/tls/cert.pem" 2>/dev/null
set_conf web_tls yes
archived_start
web_port() {
	WEB_PORT=$(sed -n 's/.*web listen=.* port=\([0-9]*\) tls=yes status=ready.*/\1/p' "$T/archived.log" | tail -1)
	[ -n "$WEB_PORT" ]
}
wait_until 120 web_port
check "the console listens with TLS" [ -n "$WEB_PORT" ]
check "SMTP offers STARTTLS" grep -q 'smtp listen=.*starttls=yes status=ready' "$T/archived.log"

# handshake NAME ARGS...: openssl s_client against the listener NAME (web
# or smtp); 0 when a session was made.  The negotiated protocol and suite
# go to $T/NAME.proto.
handshake() {
	local which=$1 port extra=()
	shift
	if [ "$which" = web ]; then
		port=$WEB_PORT
	else
		port=$SMTP_PORT
		extra=(-starttls smtp)
	fi
	timeout 30 openssl s_client -connect "127.0.0.1:$port" "${extra[@]}" \
	    "$@" </dev/null >"$T/$which.out" 2>&1
	sed -n 's/^New, \(TLSv[0-9.]*\), Cipher is \(.*\)/\1 \2/p' \
	    "$T/$which.out" >"$T/$which.proto"
	[ -s "$T/$which.proto" ] && ! grep -q '(NONE)' "$T/$which.proto"
}
refused() { ! handshake "$@"; }
weak='ALL:@SECLEVEL=0'
AEAD12='^TLSv1\.2 ECDHE-RSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$'

for L in web smtp; do
	check "$L: TLS 1.0 refused (every suite offered)" \
	    refused $L -tls1 -cipher "$weak"
	check "$L: TLS 1.1 refused (every suite offered)" \
	    refused $L -tls1_1 -cipher "$weak"
	check "$L: TLS 1.2, static RSA key exchange (no forward secrecy) refused" \
	    refused $L -tls1_2 -cipher 'AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA256:@SECLEVEL=0'
	check "$L: TLS 1.2, ECDHE with CBC (not AEAD) refused" \
	    refused $L -tls1_2 -cipher 'ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:@SECLEVEL=0'
	check "$L: TLS 1.2, DHE CBC and 3DES suites refused" \
	    refused $L -tls1_2 -cipher 'DHE-RSA-AES128-SHA:DES-CBC3-SHA:DHE-RSA-AES256-SHA256:@SECLEVEL=0'
	for c in ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384 \
	    ECDHE-RSA-CHACHA20-POLY1305; do
		check "$L: TLS 1.2 with $c" handshake $L -tls1_2 -cipher $c
	done
	handshake $L -tls1_2 -cipher "$weak"
	check "$L: TLS 1.2, every suite offered: an ECDHE AEAD one ($(cat "$T/$L.proto"))" \
	    grep -qE "$AEAD12" "$T/$L.proto"
	check "$L: TLS 1.3 accepted" handshake $L -tls1_3
	check "$L: ... ($(cat "$T/$L.proto"))" grep -q '^TLSv1\.3 TLS_' "$T/$L.proto"
	handshake $L
	check "$L: nothing forced: TLS 1.3 ($(cat "$T/$L.proto"))" \
	    grep -q '^TLSv1\.3 ' "$T/$L.proto"
done

W=https://127.0.0.1:$WEB_PORT
code=$(curl -k -s -o /dev/null -w '%{http_code}' --tlsv1.0 --tls-max 1.0 \
    --ciphers "$weak" "$W/" 2>/dev/null)
check "curl --tlsv1.0 --tls-max 1.0: no answer (got '$code')" [ "$code" = 000 ]
code=$(curl -k -s -o /dev/null -w '%{http_code}' --tlsv1.1 --tls-max 1.1 \
    --ciphers "$weak" "$W/" 2>/dev/null)
check "curl --tlsv1.1 --tls-max 1.1: no answer (got '$code')" [ "$code" = 000 ]
code=$(curl -k -s -o /dev/null -w '%{http_code}' --tlsv1.2 --tls-max 1.2 "$W/")
check "curl TLS 1.2: 200" [ "$code" = 200 ]
code=$(curl -k -s -o /dev/null -w '%{http_code}' --tlsv1.3 "$W/")
check "curl TLS 1.3: 200" [ "$code" = 200 ]
archived_stop
