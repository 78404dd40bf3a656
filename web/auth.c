/*
 * auth.c - passwords (Argon2id), TOTP (RFC 6238), sign-in with its
 * slow-down and lockout, sign-out, "me", and the role and CSRF checks
 * every handler starts with.
 */
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "ar.h"
#include "web_priv.h"

/* --- passwords and TOTP ------------------------------------------------- */

int web_password_hash(const char *password, char *out)
{
	size_t n = strlen(password);
	if (n < 8 || n > 1024)
		return AR_EINVAL;
	if (crypto_pwhash_str(out, password, n,
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE))
		return AR_ENOMEM;
	return 0;
}

int web_password_check(const char *hash, const char *password)
{
	if (!hash[0])
		return AR_EPERM;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) ?
	    AR_EPERM : 0;
}

uint32_t web_totp_code(const uint8_t secret[STORE_TOTP_SECRET_LEN],
    uint64_t step)
{
	unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	uint32_t bin;
	int off;

	ar_put_u64(msg, step);
	HMAC(EVP_sha1(), secret, STORE_TOTP_SECRET_LEN, msg, sizeof msg, mac,
	    &maclen);
	off = mac[maclen - 1] & 0x0f;
	bin = ((uint32_t)(mac[off] & 0x7f) << 24) |
	    ((uint32_t)mac[off + 1] << 16) | ((uint32_t)mac[off + 2] << 8) |
	    mac[off + 3];
	sodium_memzero(mac, sizeof mac);
	return bin % 1000000;
}

void web_totp_new(uint8_t secret[STORE_TOTP_SECRET_LEN])
{
	randombytes_buf(secret, STORE_TOTP_SECRET_LEN);
}

int web_totp_uri(const uint8_t secret[STORE_TOTP_SECRET_LEN],
    const char *tenant, const char *user, char *uri, size_t len)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	char enc[40];
	size_t n = 0;
	uint32_t buf = 0;
	int bits = 0, rc;

	for (size_t i = 0; i < STORE_TOTP_SECRET_LEN; i++) {
		buf = (buf << 8) | secret[i];
		bits += 8;
		while (bits >= 5) {
			enc[n++] = b32[(buf >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits)
		enc[n++] = b32[(buf << (5 - bits)) & 31];
	enc[n] = '\0';
	rc = snprintf(uri, len, "otpauth://totp/archived:%s%%40%s?secret=%s"
	    "&issuer=archived&algorithm=SHA1&digits=6&period=%d", user,
	    tenant && *tenant ? tenant : "operator", enc, WEB_TOTP_STEP);
	sodium_memzero(enc, sizeof enc);
	return rc < 0 || (size_t)rc >= len ? AR_ETOOBIG : 0;
}

/* A code of the current step or one either side, never one used before;
 * *step receives the step matched. */
static int totp_check(const store_user_t *u, const char *code,
    uint64_t *step)
{
	uint64_t now = (uint64_t)ar_now() / WEB_TOTP_STEP;
	char want[8];
	int ok = 0;

	if (!code || strlen(code) != 6)
		return AR_EPERM;
	for (uint64_t s = now - 1; s <= now + 1; s++) {
		snprintf(want, sizeof want, "%06u", web_totp_code(u->totp_secret,
		    s));
		if (sodium_memcmp(want, code, 6) == 0 &&
		    s > u->last_totp_step) {
			*step = s;
			ok = 1;
		}
	}
	sodium_memzero(want, sizeof want);
	return ok ? 0 : AR_EPERM;
}

/* --- checks every handler makes ---------------------------------------- */

int web_require(struct web_req *r, uint32_t roles)
{
	if (!r->has_sess) {
		if (web_session_find(r->w, r, &r->sess)) {
			/* an attempt at mail without a session is a refusal
			 * like any other (the console's own look at its
			 * session is not: it asks before every sign-in) */
			if (!strncmp(r->url, "/api/v1/messages/", 17) ||
			    !strncmp(r->url, "/api/v1/search", 14) ||
			    !strncmp(r->url, "/api/v1/exports", 15))
				web_refused(r, "unauthenticated", NULL);
			web_reply_error(r, 401, "unauthenticated",
			    "sign in first (the session is missing or "
			    "expired)", NULL);
			return 1;
		}
		r->has_sess = 1;
	}
	if (roles && !(r->sess.roles & roles)) {
		web_refused(r, "forbidden", NULL);
		web_reply_error(r, 403, "forbidden", "your role does not "
		    "allow this", NULL);
		return 1;
	}
	return 0;
}

int web_require_csrf(struct web_req *r)
{
	const char *t = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "X-CSRF-Token");
	if (!t || strlen(t) != 2 * WEB_CSRF_LEN ||
	    sodium_memcmp(t, r->sess.csrf, 2 * WEB_CSRF_LEN)) {
		web_refused(r, "csrf_rejected", json_pack("{s:s}", "reason",
		    t ? "wrong_token" : "no_token"));
		web_reply_error(r, 403, "csrf", "missing or wrong X-CSRF-Token "
		    "header (it is given at sign-in and by GET "
		    "/api/v1/session)", NULL);
		return 1;
	}
	return 0;
}

/* --- sign-in ---------------------------------------------------------- */

static json_t *roles_json(uint32_t roles)
{
	json_t *a = json_array();
	static const char *names[] = { "admin", "officer", "legal", "auditor",
	    "operator" };
	for (size_t i = 0; i < AR_ARRAY_LEN(names); i++)
		if (roles & (1u << i))
			json_array_append_new(a, json_string(names[i]));
	return a;
}

static json_t *session_json(struct web *w, const struct web_session *s)
{
	return json_pack("{s:s,s:s?,s:o,s:s,s:I,s:I,s:b}", "user", s->user,
	    "tenant", s->tenant_name[0] ? s->tenant_name : NULL, "roles",
	    roles_json(s->roles), "csrf_token", s->csrf, "idle_timeout",
	    (json_int_t)w->cfg.session_idle, "expires_at",
	    (json_int_t)(s->created + w->cfg.session_max), "operator",
	    (s->roles & STORE_ROLE_OPERATOR) != 0);
}

/* Spend the time of a password check when there is no user, so that a
 * wrong user name cannot be told from a wrong password by timing. */
static char dummy_hash[STORE_PWHASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void dummy_init(void)
{
	web_password_hash("not a password at all", dummy_hash);
}

static void dummy_check(const char *password)
{
	pthread_once(&dummy_once, dummy_init);
	web_password_check(dummy_hash, password);
}

static int fail(struct web_req *r, const uint8_t *tenant, const char *user,
    const char *reason, unsigned status, const char *code)
{
	web_ipfail_check(r->w, r->client, 1);
	if (tenant)
		web_audit(r, tenant, STORE_LOG_ACCESS, "signin_failed", user,
		    NULL, json_pack("{s:s}", "reason", reason));
	ar_log(AR_LOG_INFO, "web signin status=failed reason=%s client=%s",
	    reason, r->client);
	return web_reply_error(r, status, code, status == 401 &&
	    !strcmp(code, "bad_credentials") ? "wrong tenant, user or "
	    "password" : reason, NULL);
}

static int login(struct web_req *r)
{
	struct web *w = r->w;
	json_t *b = web_body_json(r);
	const char *tname, *uname, *pw, *code;
	store_tenant_t t;
	store_user_t u;
	struct web_session s;
	char sid[2 * WEB_SID_LEN + 1], cookie[256];
	const uint8_t *tid = NULL;
	int64_t now = ar_now();
	uint64_t step = 0;
	int ret, rc, dirty = 0;

	if (!b)
		return MHD_YES;
	tname = json_string_value(json_object_get(b, "tenant"));
	uname = json_string_value(json_object_get(b, "user"));
	pw = json_string_value(json_object_get(b, "password"));
	code = json_string_value(json_object_get(b, "totp"));
	if (!uname || !pw || (json_object_get(b, "tenant") && !tname &&
	    !json_is_null(json_object_get(b, "tenant"))) ||
	    (json_object_get(b, "totp") && !code)) {
		json_decref(b);
		return web_reply_error(r, 400, "bad_request", "give user and "
		    "password (and tenant, except for operators)", NULL);
	}
	if (web_ipfail_check(w, r->client, 0)) {
		/* refused before any check of the password: audited where
		 * the tenant exists, whatever the password was */
		if (tname && *tname && store_tenant_get(w->st, tname, &t) == 0 &&
		    t.state == STORE_TENANT_ACTIVE)
			web_audit(r, t.id, STORE_LOG_ACCESS, "signin_throttled",
			    uname, NULL, json_pack("{s:s}", "limit", "address"));
		else
			ar_log(AR_LOG_WARN, "web audit action=signin_throttled "
			    "limit=address operator=%s client=%s",
			    tname && *tname ? "no" : "yes", r->client);
		json_decref(b);
		return web_reply_error(r, 429, "too_many_attempts", "too many "
		    "failed sign-ins from your address; wait a few minutes",
		    NULL);
	}
	memset(&u, 0, sizeof u);
	pthread_mutex_lock(&w->login_lock);
	if (tname && *tname) {
		if (store_tenant_get(w->st, tname, &t) ||
		    t.state != STORE_TENANT_ACTIVE) {
			dummy_check(pw);
			ret = fail(r, NULL, uname, "unknown_tenant", 401,
			    "bad_credentials");
			goto out;
		}
		tid = t.id;
		rc = store_user_get(w->st, t.id, uname, &u);
	} else {
		tname = "";
		rc = store_user_get(w->st, NULL, uname, &u);
	}
	if (rc) {
		dummy_check(pw);
		ret = fail(r, tid, uname, rc == AR_ENOENT ? "unknown_user" :
		    ar_strerror(rc), 401, "bad_credentials");
		goto out;
	}
	if (u.locked_until && now >= u.locked_until) {
		u.locked_until = 0;      /* the lockout is over */
		u.failures = 0;
		dirty = 1;
	}
	if (u.locked_until) {
		ret = fail(r, tid, uname, "account_locked", 403,
		    "account_locked");
		goto out;
	}
	if (u.failures >= (uint32_t)w->cfg.login_slow_after) {
		uint32_t k = u.failures - (uint32_t)w->cfg.login_slow_after;
		int64_t wait = (int64_t)2 << (k > 5 ? 5 : k);
		if (now < u.last_failure + wait) {
			json_int_t ra = (json_int_t)(u.last_failure + wait -
			    now);
			web_audit(r, tid ? tid : u.tenant, STORE_LOG_ACCESS,
			    "signin_throttled", uname, NULL, json_pack("{s:s,s:I}",
			    "limit", "user", "retry_after", ra));
			ret = web_reply_error(r, 429, "too_many_attempts",
			    "too many failed sign-ins: wait before trying "
			    "again", json_pack("{s:I}", "retry_after", ra));
			goto out;
		}
	}
	if (web_password_check(u.pwhash, pw) || u.disabled ||
	    (u.totp_enabled && code && totp_check(&u, code, &step))) {
		const char *why = u.disabled ? "disabled" :
		    web_password_check(u.pwhash, pw) ? "bad_password" :
		    "bad_totp";
		u.failures++;
		u.last_failure = now;
		if (u.failures >= (uint32_t)w->cfg.login_lock_after)
			u.locked_until = now + w->cfg.lockout;
		store_user_put(w->st, &u, 0);
		dirty = 0;
		ret = fail(r, tid, uname, why, 401, "bad_credentials");
		if (u.locked_until && tid)
			web_audit(r, tid, STORE_LOG_ADMIN, "account_locked",
			    uname, NULL, NULL);
		goto out;
	}
	if (u.totp_enabled && !code) {
		ret = web_reply_error(r, 401, "totp_required", "give the "
		    "6-digit code of your authenticator app as totp", NULL);
		goto out;
	}
	if (u.failures || step) {
		u.failures = 0;
		if (step)
			u.last_totp_step = step;
		dirty = 1;
	}
	if (dirty)
		store_user_put(w->st, &u, 0);
	dirty = 0;
	/* a browser signing in again: its old session ends here */
	{
		struct web_session old;
		if (web_session_find(w, r, &old) == 0) {
			web_session_drop(w, &old);
			if (!sodium_is_zero(old.tenant, STORE_TENANT_LEN)) {
				r->sess = old;
				r->has_sess = 1;
				web_audit(r, old.tenant, STORE_LOG_ACCESS,
				    "signout", NULL, NULL, json_pack("{s:s}",
				    "reason", "signed_in_again"));
			}
			sodium_memzero(&old, sizeof old);
		}
	}
	web_session_new(w, &u, tname, r->client, &s, sid);
	r->sess = s;
	r->has_sess = 1;
	if (tid)
		web_audit(r, tid, STORE_LOG_ACCESS, "signin", NULL, NULL, NULL);
	ar_log(AR_LOG_INFO, "web signin status=ok operator=%s client=%s",
	    tid ? "no" : "yes", r->client);
	json_t *j = session_json(w, &s);
	char *body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    strlen(body), body, MHD_RESPMEM_MUST_FREE);
	web_session_cookie(w, sid, cookie, sizeof cookie);
	MHD_add_response_header(resp, "Set-Cookie", cookie);
	MHD_add_response_header(resp, "Content-Type",
	    "application/json; charset=utf-8");
	ret = web_reply(r, 200, resp, NULL);
	sodium_memzero(sid, sizeof sid);
	sodium_memzero(cookie, sizeof cookie);
out:
	if (dirty)
		store_user_put(w->st, &u, 0);
	pthread_mutex_unlock(&w->login_lock);
	store_user_wipe(&u);
	json_decref(b);   /* the password string goes with it */
	return ret;
}

static int logout(struct web_req *r)
{
	char cookie[256];
	struct MHD_Response *resp;

	if (web_require(r, 0) || web_require_csrf(r))
		return MHD_YES;
	web_session_drop(r->w, &r->sess);
	if (!sodium_is_zero(r->sess.tenant, STORE_TENANT_LEN))
		web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "signout", NULL,
		    NULL, NULL);
	resp = MHD_create_response_from_buffer(2, "{}",
	    MHD_RESPMEM_PERSISTENT);
	web_session_cookie(r->w, NULL, cookie, sizeof cookie);
	MHD_add_response_header(resp, "Set-Cookie", cookie);
	MHD_add_response_header(resp, "Content-Type",
	    "application/json; charset=utf-8");
	return web_reply(r, 200, resp, NULL);
}

int web_api_session(struct web_req *r, const char *path)
{
	if (strcmp(path, "session"))
		return AR_ENOENT;
	if (!strcmp(r->method, "POST"))
		return login(r);
	if (!strcmp(r->method, "DELETE"))
		return logout(r);
	if (!strcmp(r->method, "GET")) {
		if (web_require(r, 0))
			return MHD_YES;
		return web_reply_json(r, 200, session_json(r->w, &r->sess));
	}
	return web_reply_error(r, 405, "method_not_allowed",
	    "session takes GET, POST or DELETE", NULL);
}
