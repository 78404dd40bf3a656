/*
 * receive.c - the SMTP receiver of archived: the SMTP engine's callbacks.
 *
 * RCPT TO picks the tenant by its journal address and applies the
 * tenant's policy (allowed client networks, TLS, AUTH).  DATA is written
 * to one spool entry per tenant among the recipients, sealed under that
 * tenant's key.  At the final dot the entries go to a finisher thread,
 * which makes them durable together with every other message queued
 * meanwhile (group commit) and only then answers 250; a disk full
 * answers 452 4.3.1, an unreachable key service 451 4.3.0, anything else
 * 451 4.3.0: never 250 for what is not durable, never 5xx for what is
 * temporary.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "ingest/ingest.h"
#include "net.h"
#include "smtp/smtp.h"
#include "spool/spool.h"

#define MAX_TENANTS_PER_MSG 16
#define FINISH_GROUP_MAX    64   /* entries made durable together */

struct rtenant {                 /* one tenant among a message's rcpts */
	store_tenant_t t;
	json_t *rcpts;               /* the RCPT TO addresses that chose it */
};

struct rsession {
	char *mail_from;
	size_t n;
	struct rtenant tenants[MAX_TENANTS_PER_MSG];
};

struct rsink {
	size_t n;
	struct {
		uint8_t tenant[STORE_TENANT_LEN];
		spool_put_t *put;
		char *envelope;
	} e[MAX_TENANTS_PER_MSG];
	int status;                  /* sticky write error */
	uint64_t bytes;
	int64_t started_us;
	char session[64];
	smtp_token_t *tok;
	struct rsink *next;          /* finisher queue */
};

struct auth_cache {              /* last good password of each user */
	char user[STORE_NAME_MAX];
	uint8_t mac[32];
};

struct ingest_receiver {
	store_t *st;
	spool_t *sp;
	smtp_server_t *srv;
	ingest_receiver_opts_t o;
	int64_t backlog_logged_us;   /* last back-pressure warning */
	/* finishers */
	pthread_t *threads;
	int nthreads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rsink *head, *tail;
	int stopping;
	/* AUTH */
	uint8_t cache_key[32];
	struct auth_cache cache[64];
	pthread_mutex_t cache_lock;
};

/* --- sessions and recipients --------------------------------------------- */

static struct rsession *session_of(smtp_session_t *s)
{
	struct rsession *rs = smtp_session_udata(s);
	if (!rs && (rs = calloc(1, sizeof *rs)))
		smtp_session_set_udata(s, rs);
	return rs;
}

static void session_reset(struct rsession *rs)
{
	free(rs->mail_from);
	rs->mail_from = NULL;
	for (size_t i = 0; i < rs->n; i++)
		json_decref(rs->tenants[i].rcpts);
	rs->n = 0;
}

/* How old the oldest change not yet in a search index is (s), when the
 * max_index_lag limit is set; 0 otherwise or when there is none. */
static int64_t index_lag(const ingest_receiver_t *rv)
{
	int64_t oldest, now = ar_now();

	if (rv->o.max_index_lag <= 0 || !rv->o.index_oldest ||
	    (oldest = rv->o.index_oldest(rv->o.index_arg)) <= 0)
		return 0;
	return now > oldest ? now - oldest : 0;
}

/* Is the spool's drain queue over a max_backlog_* limit, or the index
 * over max_index_lag?  1 (2: the index) or 0.  (event loop) */
static int backlogged(ingest_receiver_t *rv, const smtp_session_t *s)
{
	spool_queue_info_t qi;
	uint64_t waiting;
	const char *what;
	int64_t now, lag = 0;

	spool_queue_info(rv->sp, 0, &qi);
	waiting = qi.ready + qi.retrying + qi.claimed;
	if (rv->o.max_backlog_age > 0 && qi.backlog_age >= rv->o.max_backlog_age)
		what = "age";
	else if (rv->o.max_backlog_bytes && qi.bytes >= rv->o.max_backlog_bytes)
		what = "bytes";
	else if (rv->o.max_backlog_entries &&
	    waiting >= rv->o.max_backlog_entries)
		what = "entries";
	else if ((lag = index_lag(rv)) >= rv->o.max_index_lag && lag > 0)
		what = "index_lag";
	else
		return 0;
	now = ar_mono_us();
	if (now - rv->backlog_logged_us >= 10000000) {
		rv->backlog_logged_us = now;
		if (lag)
			ar_log(AR_LOG_WARN, "session=%s status=backpressure "
			    "limit=index_lag index_lag_s=%lld limit_s=%lld "
			    "note=\"MAIL FROM answered 451 4.3.2 until the "
			    "search index catches up\"", smtp_session_info(s)->id,
			    (long long)lag, (long long)rv->o.max_index_lag);
		else
			ar_log(AR_LOG_WARN, "session=%s status=backpressure "
			    "limit=%s waiting=%llu bytes=%llu oldest_age_s=%lld "
			    "note=\"MAIL FROM answered 451 4.3.2 until the drain "
			    "catches up\"", smtp_session_info(s)->id, what,
			    (unsigned long long)waiting,
			    (unsigned long long)qi.bytes,
			    (long long)qi.backlog_age);
	}
	return lag ? 2 : 1;
}

static void on_mail_from(void *arg, smtp_session_t *s, const char *addr,
    const struct smtp_mail_params *p, struct smtp_reply *r)
{
	ingest_receiver_t *rv = arg;
	struct rsession *rs = session_of(s);
	(void)p;
	if (!rs) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return;
	}
	switch (backlogged(rv, s)) {
	case 1:
		smtp_reply_set(r, 451, "4.3.2", "Archive busy: too much mail "
		    "waiting to be archived, try again later");
		return;
	case 2:
		smtp_reply_set(r, 451, "4.3.2", "Archive busy: the search index "
		    "is behind, try again later");
		return;
	}
	session_reset(rs);
	rs->mail_from = strdup(addr);
}

static int network_allowed(const store_tenant_t *t, const struct sockaddr *sa)
{
	struct ar_cidr net;
	if (t->n_networks == 0)
		return 1;
	for (size_t i = 0; i < t->n_networks; i++)
		if (ar_cidr_parse(t->networks[i], &net) == 0 &&
		    ar_cidr_match(&net, sa))
			return 1;
	return 0;
}

static void on_rcpt_to(void *arg, smtp_session_t *s, const char *addr,
    struct smtp_reply *r)
{
	ingest_receiver_t *rv = arg;
	const struct smtp_session_info *si = smtp_session_info(s);
	struct rsession *rs = session_of(s);
	store_tenant_t t;
	size_t i;
	int rc;

	if (!rs) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return;
	}
	rc = store_tenant_by_address(rv->st, addr, &t);
	if (rc == AR_ENOENT) {
		smtp_reply_set(r, 550, "5.1.1", "No such journal address here");
		return;
	}
	if (rc) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return;
	}
	if (t.state != STORE_TENANT_ACTIVE) {
		smtp_reply_set(r, 550, "5.7.1", "This journal address no longer "
		    "accepts mail");
		return;
	}
	if (!network_allowed(&t, si->client_addr)) {
		ar_log(AR_LOG_WARN, "session=%s client=%s status=refused "
		    "reason=\"client network not allowed for the tenant\"",
		    si->id, si->client_ip);
		smtp_reply_set(r, 550, "5.7.1", "Client host not allowed to "
		    "deliver to this address");
		return;
	}
	if (t.require_tls && !si->tls) {
		smtp_reply_set(r, 530, "5.7.0", "Must issue a STARTTLS command "
		    "first");
		return;
	}
	if (t.require_auth && (!si->auth_user[0] ||
	    strcmp(si->auth_user, t.smtp_user))) {
		smtp_reply_set(r, 530, "5.7.0", "Authentication required");
		return;
	}
	for (i = 0; i < rs->n; i++)
		if (!memcmp(rs->tenants[i].t.id, t.id, STORE_TENANT_LEN))
			break;
	if (i == rs->n) {
		if (rs->n == MAX_TENANTS_PER_MSG) {
			smtp_reply_set(r, 452, "4.5.3", "Too many tenants in one "
			    "message, send the rest again");
			return;
		}
		rs->tenants[i].t = t;
		rs->tenants[i].rcpts = json_array();
		rs->n++;
	}
	json_array_append_new(rs->tenants[i].rcpts, json_string(addr));
}

struct user_find {
	const char *user;
	store_tenant_t *t;
	int found;
};

static int user_cb(void *arg, const store_tenant_t *t)
{
	struct user_find *f = arg;
	if (t->smtp_user[0] && !strcmp(t->smtp_user, f->user) &&
	    t->state == STORE_TENANT_ACTIVE) {
		*f->t = *t;
		f->found = 1;
		return 1;          /* stop the walk */
	}
	return 0;
}

static int on_auth(void *arg, smtp_session_t *s, const char *user,
    const char *password)
{
	ingest_receiver_t *rv = arg;
	store_tenant_t t;
	struct user_find f = { user, &t, 0 };
	uint8_t mac[32];
	size_t slot;
	int ok = 0, rc;

	(void)s;
	if (strlen(user) >= STORE_NAME_MAX)
		return AR_EPERM;
	/* A password verified before is checked against a keyed hash of it
	 * (the key lives in this process only): an Argon2id verification
	 * costs tens of milliseconds of the event loop. */
	crypto_generichash(mac, sizeof mac, (const uint8_t *)password,
	    strlen(password), rv->cache_key, sizeof rv->cache_key);
	slot = (size_t)(unsigned char)user[0] % AR_ARRAY_LEN(rv->cache);
	pthread_mutex_lock(&rv->cache_lock);
	if (!strcmp(rv->cache[slot].user, user) &&
	    sodium_memcmp(rv->cache[slot].mac, mac, sizeof mac) == 0)
		ok = 1;
	pthread_mutex_unlock(&rv->cache_lock);
	if (ok)
		return 0;
	rc = store_tenant_walk(rv->st, user_cb, &f);
	if (rc < 0)
		return AR_EAGAIN;
	if (!f.found || !t.smtp_pass_hash[0] ||
	    crypto_pwhash_str_verify(t.smtp_pass_hash, password,
	    strlen(password)) != 0)
		return AR_EPERM;
	pthread_mutex_lock(&rv->cache_lock);
	ar_strlcpy(rv->cache[slot].user, user, sizeof rv->cache[slot].user);
	memcpy(rv->cache[slot].mac, mac, sizeof mac);
	pthread_mutex_unlock(&rv->cache_lock);
	return 0;
}

/* --- DATA ------------------------------------------------------------------ */

static void sink_free(struct rsink *k)
{
	for (size_t i = 0; i < k->n; i++) {
		if (k->e[i].put)
			spool_put_abort(k->e[i].put);
		free(k->e[i].envelope);
	}
	free(k);
}

static void *on_data_begin(void *arg, smtp_session_t *s,
    struct smtp_reply *r)
{
	ingest_receiver_t *rv = arg;
	struct rsession *rs = session_of(s);
	struct rsink *k;
	int rc;

	if (!rs || rs->n == 0 || !(k = calloc(1, sizeof *k))) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return NULL;
	}
	k->started_us = ar_mono_us();
	ar_strlcpy(k->session, smtp_session_info(s)->id, sizeof k->session);
	for (size_t i = 0; i < rs->n; i++) {
		rc = spool_put_begin(rv->sp, rs->tenants[i].t.id,
		    rs->tenants[i].t.key_version, &k->e[i].put);
		if (rc) {
			ar_log(AR_LOG_WARN, "session=%s status=deferred "
			    "reason=\"%s\"", k->session, spool_errmsg());
			if (rc == AR_EKEYSVC)
				smtp_reply_set(r, 451, "4.3.0", "Key service "
				    "unavailable, try again later");
			else if (rc == AR_ENOSPC)
				smtp_reply_set(r, 452, "4.3.1", "Insufficient "
				    "system storage");
			else
				smtp_reply_set(r, 451, "4.3.0", "Local error, "
				    "try again later");
			sink_free(k);
			return NULL;
		}
		memcpy(k->e[i].tenant, rs->tenants[i].t.id, STORE_TENANT_LEN);
		k->n++;
	}
	return k;
}

static int on_data_write(void *arg, void *sink, const void *buf,
    size_t len)
{
	struct rsink *k = sink;
	(void)arg;
	k->bytes += len;
	/* A write error is kept and answered at the end (452 for a full
	 * disk): the rest of the message is read and dropped meanwhile. */
	for (size_t i = 0; i < k->n && k->status == 0; i++)
		k->status = spool_put_write(k->e[i].put, buf, len);
	return 0;
}

/* The envelope of one tenant's copy, as JSON text. */
static char *envelope_json(const struct rsession *rs, size_t i,
    const smtp_session_t *s)
{
	const struct smtp_session_info *si = smtp_session_info(s);
	json_t *o = json_object(), *tls;
	char ts[32], *out;

	json_object_set_new(o, "mail_from", json_string(rs->mail_from ?
	    rs->mail_from : ""));
	json_object_set(o, "rcpt_to", rs->tenants[i].rcpts);
	json_object_set_new(o, "client_ip", json_string(si->client_ip));
	json_object_set_new(o, "client_port", json_integer(si->client_port));
	json_object_set_new(o, "helo", json_string(si->helo ? si->helo : ""));
	json_object_set_new(o, "esmtp", json_boolean(si->esmtp));
	if (si->tls) {
		tls = json_object();
		json_object_set_new(tls, "protocol",
		    json_string(si->tls_protocol ? si->tls_protocol : ""));
		json_object_set_new(tls, "cipher",
		    json_string(si->tls_cipher ? si->tls_cipher : ""));
		json_object_set_new(o, "tls", tls);
	} else {
		json_object_set_new(o, "tls", json_null());
	}
	json_object_set_new(o, "auth_user", si->auth_user[0] ?
	    json_string(si->auth_user) : json_null());
	json_object_set_new(o, "session", json_string(si->id));
	json_object_set_new(o, "arrived", json_string(ar_time_fmt(ar_now(),
	    ts, sizeof ts)));
	json_object_set_new(o, "arrived_unix", json_integer(ar_now()));
	out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return out;
}

static void on_data_end(void *arg, void *sink, smtp_session_t *s,
    smtp_token_t *tok)
{
	ingest_receiver_t *rv = arg;
	struct rsession *rs = session_of(s);
	struct rsink *k = sink;

	k->tok = tok;
	for (size_t i = 0; i < k->n && rs; i++)
		if (!(k->e[i].envelope = envelope_json(rs, i, s)))
			k->status = AR_ENOMEM;
	/* the fsyncs happen on a finisher thread, never on the loop */
	pthread_mutex_lock(&rv->lock);
	if (rv->tail)
		rv->tail->next = k;
	else
		rv->head = k;
	rv->tail = k;
	pthread_cond_signal(&rv->cond);
	pthread_mutex_unlock(&rv->lock);
}

static void on_data_abort(void *arg, void *sink, int status)
{
	(void)arg;
	(void)status;
	sink_free(sink);
}

static void on_disconnect(void *arg, smtp_session_t *s)
{
	struct rsession *rs = smtp_session_udata(s);
	(void)arg;
	if (rs) {
		session_reset(rs);
		free(rs);
		smtp_session_set_udata(s, NULL);
	}
}

/* --- finishers ------------------------------------------------------------- */

/* Answer one message: 250 once every entry of it is durable. */
static void reply(ingest_receiver_t *rv, struct rsink *k, int rc,
    const char *ids)
{
	if (rc == 0) {
		char text[128];
		snprintf(text, sizeof text, "Ok: queued as %s", ids);
		smtp_session_reply(k->tok, 250, "2.0.0", text);
		if (rv->o.spooled)
			rv->o.spooled(rv->o.spooled_arg);
	} else if (rc == AR_ENOSPC) {
		smtp_session_reply(k->tok, 452, "4.3.1", "Insufficient system "
		    "storage");
	} else if (rc == AR_EKEYSVC) {
		smtp_session_reply(k->tok, 451, "4.3.0", "Key service "
		    "unavailable, try again later");
	} else {
		smtp_session_reply(k->tok, 451, "4.3.0", "Local error, try "
		    "again later");
	}
}

/*
 * Make the entries of n messages durable together (spool_put_finish_many:
 * one signing request, one sync), then answer each message.  A message
 * whose entry fails gets 4xx; copies of it already durable stay: the retry
 * arrives again and dedup merges it (a duplicate, not a loss).
 */
static void finish_group(ingest_receiver_t *rv, struct rsink **ks, size_t nk)
{
	spool_put_t *puts[FINISH_GROUP_MAX];
	const char *env[FINISH_GROUP_MAX];
	uint8_t ids[FINISH_GROUP_MAX][SPOOL_ID_LEN];
	int rcs[FINISH_GROUP_MAX];
	size_t n = 0;

	for (size_t j = 0; j < nk; j++) {
		struct rsink *k = ks[j];
		for (size_t i = 0; i < k->n; i++) {
			if (k->status) {
				spool_put_abort(k->e[i].put);
			} else {
				puts[n] = k->e[i].put;
				env[n++] = k->e[i].envelope;
			}
			k->e[i].put = NULL;
		}
	}
	if (n)
		spool_put_finish_many(puts, n, env, ids, rcs);
	n = 0;
	for (size_t j = 0; j < nk; j++) {
		struct rsink *k = ks[j];
		char first[2 * SPOOL_ID_LEN + 1] = "", hex[33], th[33];
		int rc = k->status;

		for (size_t i = 0; i < k->n && !k->status; i++, n++) {
			if (rcs[n]) {
				if (!rc)
					rc = rcs[n];
				continue;
			}
			ar_hex(ids[n], SPOOL_ID_LEN, hex);
			if (!first[0])
				ar_strlcpy(first, hex, sizeof first);
			ar_log(AR_LOG_INFO, "id=%s tenant=%s status=spooled "
			    "size=%llu session=%s dur_ms=%lld", hex,
			    ar_hex(k->e[i].tenant, STORE_TENANT_LEN, th),
			    (unsigned long long)k->bytes, k->session,
			    (long long)(ar_mono_us() - k->started_us) / 1000);
		}
		if (rc)
			ar_log(AR_LOG_WARN, "session=%s status=deferred "
			    "reason=\"%s\"", k->session, k->status ?
			    ar_strerror(rc) : spool_errmsg());
		reply(rv, k, rc, first);
		sink_free(k);
	}
}

/* Each finisher takes every message queued, up to FINISH_GROUP_MAX
 * entries, as one group: while it syncs, the next arrivals queue up for
 * the next finisher's group. */
static void *finisher_main(void *arg)
{
	ingest_receiver_t *rv = arg;
	struct rsink *ks[FINISH_GROUP_MAX];

	pthread_setname_np(pthread_self(), "ar-finisher");
	pthread_mutex_lock(&rv->lock);
	for (;;) {
		size_t nk = 0, entries = 0;
		while (rv->head && (nk == 0 ||
		    entries + rv->head->n <= FINISH_GROUP_MAX)) {
			struct rsink *k = rv->head;
			rv->head = k->next;
			if (!rv->head)
				rv->tail = NULL;
			entries += k->n;
			ks[nk++] = k;
		}
		if (nk == 0) {
			if (rv->stopping)
				break;
			pthread_cond_wait(&rv->cond, &rv->lock);
			continue;
		}
		pthread_mutex_unlock(&rv->lock);
		finish_group(rv, ks, nk);
		pthread_mutex_lock(&rv->lock);
	}
	pthread_mutex_unlock(&rv->lock);
	return NULL;
}

/* --- the receiver ------------------------------------------------------------ */

int ingest_receiver_new(ingest_receiver_t **out, store_t *st, spool_t *sp,
    const struct smtp_config *cfg, const ingest_receiver_opts_t *o,
    char *err, size_t errlen)
{
	struct smtp_callbacks cb;
	ingest_receiver_t *rv;
	int rc;

	*out = NULL;
	if (!(rv = calloc(1, sizeof *rv)))
		return AR_ENOMEM;
	rv->st = st;
	rv->sp = sp;
	rv->o = *o;
	rv->backlog_logged_us = ar_mono_us() - 10000000;
	randombytes_buf(rv->cache_key, sizeof rv->cache_key);
	pthread_mutex_init(&rv->lock, NULL);
	pthread_mutex_init(&rv->cache_lock, NULL);
	pthread_cond_init(&rv->cond, NULL);
	memset(&cb, 0, sizeof cb);
	cb.arg = rv;
	cb.mail_from = on_mail_from;
	cb.rcpt_to = on_rcpt_to;
	cb.auth = on_auth;
	cb.data_begin = on_data_begin;
	cb.data_write = on_data_write;
	cb.data_end = on_data_end;
	cb.data_abort = on_data_abort;
	cb.disconnect = on_disconnect;
	if ((rc = smtp_server_new(cfg, &cb, &rv->srv, err, errlen))) {
		ingest_receiver_free(rv);
		return rc;
	}
	rv->nthreads = o->finishers > 0 ? o->finishers : 1;
	rv->threads = calloc((size_t)rv->nthreads, sizeof *rv->threads);
	if (!rv->threads) {
		rv->nthreads = 0;
		ingest_receiver_free(rv);
		return AR_ENOMEM;
	}
	for (int i = 0; i < rv->nthreads; i++)
		if (pthread_create(&rv->threads[i], NULL, finisher_main, rv)) {
			rv->nthreads = i;
			ingest_receiver_free(rv);
			return AR_ENOMEM;
		}
	*out = rv;
	return 0;
}

int ingest_receiver_listen(ingest_receiver_t *rv, const char *hostport,
    unsigned *bound_port, char *err, size_t errlen)
{
	char host[256];
	unsigned port;
	int rc;

	if (ar_hostport_parse(hostport, host, sizeof host, &port)) {
		snprintf(err, errlen, "smtp_listen '%s': expected host:port",
		    hostport);
		return AR_ECONFIG;
	}
	rc = smtp_server_listen(rv->srv, host, port, bound_port);
	if (rc)
		snprintf(err, errlen, "smtp_listen %s: %s", hostport,
		    smtp_server_errmsg(rv->srv));
	return rc;
}

int ingest_receiver_run(ingest_receiver_t *rv)
{
	return smtp_server_run(rv->srv);
}

void ingest_receiver_stop(ingest_receiver_t *rv)
{
	smtp_server_stop(rv->srv);
}

void ingest_receiver_free(ingest_receiver_t *rv)
{
	if (!rv)
		return;
	/* finishers answer every queued message before they stop, so that
	 * smtp_server_free (which waits for every answer) returns */
	pthread_mutex_lock(&rv->lock);
	rv->stopping = 1;
	pthread_cond_broadcast(&rv->cond);
	pthread_mutex_unlock(&rv->lock);
	for (int i = 0; i < rv->nthreads; i++)
		pthread_join(rv->threads[i], NULL);
	free(rv->threads);
	if (rv->srv)
		smtp_server_free(rv->srv);
	sodium_memzero(rv->cache, sizeof rv->cache);
	sodium_memzero(rv->cache_key, sizeof rv->cache_key);
	pthread_mutex_destroy(&rv->lock);
	pthread_mutex_destroy(&rv->cache_lock);
	pthread_cond_destroy(&rv->cond);
	free(rv);
}
