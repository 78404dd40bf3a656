/*
 * smtp_auth.c - AUTH PLAIN and AUTH LOGIN (RFC 4954, 4616), offered only
 * inside TLS and verified by the application's auth callback.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "smtp/smtp_int.h"

enum { MECH_PLAIN = 1, MECH_LOGIN = 2 };

/* Decode base64 into buf (NUL-terminated).  Length, or -1. */
static long b64dec(const char *in, unsigned char *buf, size_t cap)
{
	size_t n = 0;

	if (!strcmp(in, "="))
		n = 0;          /* RFC 4954: "=" is an empty response */
	else if (sodium_base642bin(buf, cap - 1, in, strlen(in), NULL, &n,
	    NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	buf[n] = '\0';
	return (long)n;
}

static void auth_done(struct smtp_session *s)
{
	s->st = SMTP_S_READY;
	s->auth_mech = s->auth_step = 0;
	sodium_memzero(s->auth_login_user, sizeof s->auth_login_user);
}

static void verify(struct smtp_session *s, const char *user, char *pass)
{
	smtp_server_t *srv = s->srv;
	int rc = srv->cb.auth(srv->cb.arg, s, user, pass);

	sodium_memzero(pass, strlen(pass));
	if (rc == 0) {
		ar_strlcpy(s->auth_user, user, sizeof s->auth_user);
		ar_log(AR_LOG_INFO, "session=%s event=auth result=ok", s->id);
		smtp_send(s, 235, "2.7.0", "Authentication successful");
	} else {
		ar_log(AR_LOG_WARN, "session=%s event=auth client=%s "
		    "result=%s", s->id, s->ip, rc == AR_EPERM ? "refused" :
		    "temporary_failure");
		if (rc == AR_EPERM)
			smtp_proto_error(s, 535, "5.7.8",
			    "Authentication credentials invalid");
		else
			smtp_send(s, 454, "4.7.0",
			    "Temporary authentication failure");
	}
}

/* "authzid\0authcid\0passwd" (RFC 4616). */
static void plain_response(struct smtp_session *s, const char *b64)
{
	unsigned char buf[1024];
	long n = b64dec(b64, buf, sizeof buf);
	char *zid, *cid, *pw;
	size_t zl, cl;

	if (n < 0) {
		smtp_proto_error(s, 501, "5.5.2", "Invalid base64 data");
		return;
	}
	zid = (char *)buf;
	zl = strnlen(zid, (size_t)n);
	if (zl + 1 >= (size_t)n) {
		smtp_proto_error(s, 501, "5.5.2", "Malformed PLAIN response");
		goto out;
	}
	cid = zid + zl + 1;
	cl = strnlen(cid, (size_t)n - zl - 1);
	if (zl + cl + 2 > (size_t)n || !cl || cl >= sizeof s->auth_user) {
		smtp_proto_error(s, 501, "5.5.2", "Malformed PLAIN response");
		goto out;
	}
	pw = cid + cl + 1;
	if (strlen(pw) != (size_t)n - zl - cl - 2) {
		smtp_proto_error(s, 501, "5.5.2", "Malformed PLAIN response");
		goto out;
	}
	if (zl && strcmp(zid, cid)) {
		smtp_proto_error(s, 535, "5.7.8",
		    "Authorization identity not allowed");
		goto out;
	}
	verify(s, cid, pw);
out:
	sodium_memzero(buf, sizeof buf);
}

void smtp_auth_command(struct smtp_session *s, char *arg)
{
	char *ir;

	if (!s->srv->cb.auth) {
		smtp_proto_error(s, 502, "5.5.1", "AUTH not available");
		return;
	}
	if (!s->ssl) {
		smtp_proto_error(s, 538, "5.7.11", "Encryption required for "
		    "requested authentication mechanism");
		return;
	}
	if (s->st != SMTP_S_READY || !s->info.esmtp) {
		smtp_proto_error(s, 503, "5.5.1", s->st == SMTP_S_MAIL ?
		    "AUTH not allowed during a mail transaction" :
		    "Send EHLO first");
		return;
	}
	if (s->auth_user[0]) {
		smtp_proto_error(s, 503, "5.5.1", "Already authenticated");
		return;
	}
	if ((ir = strchr(arg, ' ')) != NULL) {
		*ir++ = '\0';
		while (*ir == ' ')
			ir++;
	}
	if (!strcasecmp(arg, "PLAIN")) {
		if (ir && *ir) {
			plain_response(s, ir);
			sodium_memzero(ir, strlen(ir));
			return;
		}
		s->auth_mech = MECH_PLAIN;
		s->st = SMTP_S_AUTH;
		smtp_send(s, 334, "-", "%s", "");
	} else if (!strcasecmp(arg, "LOGIN")) {
		s->auth_mech = MECH_LOGIN;
		s->st = SMTP_S_AUTH;
		if (ir && *ir) {
			smtp_auth_line(s, ir);
			return;
		}
		s->auth_step = 0;
		smtp_send(s, 334, "-", "VXNlcm5hbWU6");    /* "Username:" */
	} else {
		smtp_proto_error(s, 504, "5.5.4",
		    "Unrecognized authentication type");
	}
}

/* A continuation line while in SMTP_S_AUTH. */
void smtp_auth_line(struct smtp_session *s, char *line)
{
	unsigned char buf[512];
	long n;

	if (!strcmp(line, "*")) {
		auth_done(s);
		smtp_proto_error(s, 501, "5.0.0", "Authentication aborted");
		return;
	}
	if (s->auth_mech == MECH_PLAIN) {
		auth_done(s);
		plain_response(s, line);
		sodium_memzero(line, strlen(line));
		return;
	}
	n = b64dec(line, buf, sizeof buf);
	sodium_memzero(line, strlen(line));
	if (n < 0 || strlen((char *)buf) != (size_t)n) {
		auth_done(s);
		smtp_proto_error(s, 501, "5.5.2", "Invalid base64 data");
		goto out;
	}
	if (s->auth_step == 0) {
		if (!n || (size_t)n >= sizeof s->auth_login_user) {
			auth_done(s);
			smtp_proto_error(s, 501, "5.5.2", "Invalid user name");
			goto out;
		}
		memcpy(s->auth_login_user, buf, (size_t)n + 1);
		s->auth_step = 1;
		smtp_send(s, 334, "-", "UGFzc3dvcmQ6");    /* "Password:" */
		goto out;
	}
	{
		char user[sizeof s->auth_login_user];

		memcpy(user, s->auth_login_user, sizeof user);
		auth_done(s);
		verify(s, user, (char *)buf);
		sodium_memzero(user, sizeof user);
	}
out:
	sodium_memzero(buf, sizeof buf);
}
