/*
 * smtp_tls.c - STARTTLS with non-blocking OpenSSL: TLS 1.2 and 1.3, and
 * in TLS 1.2 only forward-secret AEAD suites (ECDHE with AES-GCM or
 * ChaCha20-Poly1305; every TLS 1.3 suite is both).
 */
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

#include "smtp/smtp_int.h"

static void ssl_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, len);
	else
		ar_strlcpy(buf, "unknown error", len);
	ERR_clear_error();
}

int smtp_tls_ctx_new(smtp_server_t *srv, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char e[256];

	if (!ctx) {
		snprintf(err, errlen, "smtp: SSL_CTX_new failed");
		return AR_ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
		snprintf(err, errlen, "smtp: no TLS 1.2 cipher suite");
		SSL_CTX_free(ctx);
		return AR_ECONFIG;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, srv->cfg.tls_cert) != 1) {
		ssl_errstr(e, sizeof e);
		snprintf(err, errlen, "smtp_tls_cert: %s: %s",
		    srv->cfg.tls_cert, e);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, srv->cfg.tls_key,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_errstr(e, sizeof e);
		snprintf(err, errlen, "smtp_tls_key: %s: %s", srv->cfg.tls_key,
		    e);
		goto fail;
	}
	srv->tls = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return AR_ECONFIG;
}

void smtp_tls_ctx_free(smtp_server_t *srv)
{
	SSL_CTX_free(srv->tls);
	srv->tls = NULL;
}

/* Attach TLS to the session (after "220 Ready to start TLS" went out). */
int smtp_tls_start(struct smtp_session *s)
{
	s->ssl = SSL_new(s->srv->tls);
	if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1) {
		ERR_clear_error();
		return AR_ENOMEM;
	}
	SSL_set_accept_state(s->ssl);
	s->handshake = 1;
	s->pause_read = 0;
	smtp_sess_set_timeout(s, s->srv->cfg.timeout_command_ms);
	return 0;
}

/* Drive the handshake: 1 done, 0 in progress, AR_EIO failed. */
int smtp_tls_handshake(struct smtp_session *s)
{
	int r = SSL_do_handshake(s->ssl);
	char e[256];

	s->rd_wants_write = 0;
	if (r == 1) {
		s->handshake = 0;
		ar_strlcpy(s->tls_proto, SSL_get_version(s->ssl),
		    sizeof s->tls_proto);
		ar_strlcpy(s->tls_cipher, SSL_get_cipher_name(s->ssl),
		    sizeof s->tls_cipher);
		s->info.tls = 1;
		ar_log(AR_LOG_INFO, "session=%s event=tls proto=%s cipher=%s",
		    s->id, s->tls_proto, s->tls_cipher);
		return 1;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		s->rd_wants_write = 1;
		return 0;
	default:
		ssl_errstr(e, sizeof e);
		ar_log(AR_LOG_WARN, "session=%s event=tls_failed client=%s "
		    "error=\"%s\"", s->id, s->ip, e);
		return AR_EIO;
	}
}
