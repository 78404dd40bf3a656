/*
 * session.c - sessions in server memory: random 256-bit ids (only their
 * BLAKE2b hash is kept), CSRF tokens, idle and absolute expiry on ar_now(),
 * and the per-client sliding window of failed sign-ins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "ar.h"
#include "web_priv.h"

#define IPFAIL_WINDOW 300       /* seconds */
#define IPFAIL_MAX    30        /* failed sign-ins per window and client */

int web_sessions_init(struct web *w)
{
	w->sessions = calloc((size_t)w->cfg.max_sessions,
	    sizeof *w->sessions);
	return w->sessions ? 0 : AR_ENOMEM;
}

void web_sessions_free(struct web *w)
{
	if (!w->sessions)
		return;
	sodium_memzero(w->sessions, (size_t)w->cfg.max_sessions *
	    sizeof *w->sessions);
	free(w->sessions);
	w->sessions = NULL;
}

static int expired(const struct web *w, const struct web_session *s,
    int64_t now)
{
	return now - s->last_seen >= w->cfg.session_idle ||
	    now - s->created >= w->cfg.session_max || now < s->created;
}

int web_session_new(struct web *w, const store_user_t *u,
    const char *tenant_name, const char *client, struct web_session *out,
    char sid_hex[2 * WEB_SID_LEN + 1])
{
	uint8_t sid[WEB_SID_LEN], csrf[WEB_CSRF_LEN];
	int64_t now = ar_now();
	struct web_session *slot = NULL;
	size_t n = (size_t)w->cfg.max_sessions;

	randombytes_buf(sid, sizeof sid);
	randombytes_buf(csrf, sizeof csrf);
	memset(out, 0, sizeof *out);
	out->used = 1;
	crypto_generichash(out->sid_hash, sizeof out->sid_hash, sid,
	    sizeof sid, NULL, 0);
	ar_hex(csrf, sizeof csrf, out->csrf);
	memcpy(out->tenant, u->tenant, STORE_TENANT_LEN);
	ar_strlcpy(out->tenant_name, tenant_name, sizeof out->tenant_name);
	ar_strlcpy(out->user, u->name, sizeof out->user);
	out->roles = u->roles;
	out->created = out->last_seen = now;
	ar_strlcpy(out->client, client, sizeof out->client);
	ar_hex(sid, sizeof sid, sid_hex);
	sodium_memzero(sid, sizeof sid);
	sodium_memzero(csrf, sizeof csrf);

	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < n; i++) {
		struct web_session *s = &w->sessions[i];
		if (s->used && expired(w, s, now))
			sodium_memzero(s, sizeof *s);
		if (!s->used) {
			slot = s;
			break;
		}
		if (!slot || s->last_seen < slot->last_seen)
			slot = s;   /* all full: the least recently used */
	}
	*slot = *out;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* The session id of the request's cookie (64 hex digits). */
static int cookie_sid(struct web_req *r, uint8_t sid[WEB_SID_LEN])
{
	const char *v = MHD_lookup_connection_value(r->conn,
	    MHD_COOKIE_KIND, WEB_COOKIE);
	if (!v || strlen(v) != 2 * WEB_SID_LEN)
		return AR_ENOENT;
	return ar_unhex(v, sid, WEB_SID_LEN) ? AR_ENOENT : 0;
}

int web_session_find(struct web *w, struct web_req *r,
    struct web_session *out)
{
	uint8_t sid[WEB_SID_LEN], h[32];
	int64_t now = ar_now();
	size_t n = (size_t)w->cfg.max_sessions;
	int rc = AR_ENOENT;

	if (cookie_sid(r, sid))
		return AR_ENOENT;
	crypto_generichash(h, sizeof h, sid, sizeof sid, NULL, 0);
	sodium_memzero(sid, sizeof sid);
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < n; i++) {
		struct web_session *s = &w->sessions[i];
		if (!s->used || sodium_memcmp(s->sid_hash, h, sizeof h))
			continue;
		if (expired(w, s, now)) {
			sodium_memzero(s, sizeof *s);
			rc = AR_ETIMEOUT;
			break;
		}
		s->last_seen = now;
		*out = *s;
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&w->lock);
	return rc == AR_ETIMEOUT ? AR_ENOENT : rc;
}

void web_session_drop(struct web *w, const struct web_session *s)
{
	size_t n = (size_t)w->cfg.max_sessions;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < n; i++)
		if (w->sessions[i].used && !sodium_memcmp(
		    w->sessions[i].sid_hash, s->sid_hash, 32))
			sodium_memzero(&w->sessions[i], sizeof w->sessions[i]);
	pthread_mutex_unlock(&w->lock);
}

void web_session_drop_user(struct web *w, const uint8_t *tenant,
    const char *user)
{
	size_t n = (size_t)w->cfg.max_sessions;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < n; i++) {
		struct web_session *s = &w->sessions[i];
		if (s->used && !memcmp(s->tenant, tenant, STORE_TENANT_LEN) &&
		    !strcmp(s->user, user))
			sodium_memzero(s, sizeof *s);
	}
	pthread_mutex_unlock(&w->lock);
}

void web_session_cookie(struct web *w, const char *sid_hex, char *buf,
    size_t len)
{
	/* Secure is left out only on the plain-HTTP loopback listener,
	 * where a browser would otherwise drop the cookie. */
	snprintf(buf, len, "%s=%s; Path=/; HttpOnly; SameSite=Strict%s%s",
	    WEB_COOKIE, sid_hex ? sid_hex : "", w->tls ? "; Secure" : "",
	    sid_hex ? "" : "; Max-Age=0");
}

int web_ipfail_check(struct web *w, const char *client, int add)
{
	int64_t now = ar_now();
	struct web_ipfail *e = NULL, *old = NULL;
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < AR_ARRAY_LEN(w->ipfail); i++) {
		struct web_ipfail *x = &w->ipfail[i];
		if (x->addr[0] && strcmp(x->addr, client) == 0) {
			e = x;
			break;
		}
		if (!old || x->window_start < old->window_start)
			old = x;
	}
	if (e && now - e->window_start >= IPFAIL_WINDOW) {
		e->window_start = now;
		e->count = 0;
	}
	if (!e && add) {
		e = old;
		memset(e, 0, sizeof *e);
		ar_strlcpy(e->addr, client, sizeof e->addr);
		e->window_start = now;
	}
	if (e && add)
		e->count++;
	if (e && e->count >= IPFAIL_MAX)
		rc = AR_EAGAIN;
	pthread_mutex_unlock(&w->lock);
	return rc;
}
