/*
 * mx.c - the gateway's SMTP listener: the tenants' inbound MX.
 *
 * RCPT TO: the domain after the last '@' must be a tenant's domain
 * (store_domain_get), else 550 5.7.1 relay denied; local parts with '%',
 * '!' or '@' (quoted) are refused the same way, so nothing we accept can
 * be relayed onwards by a downstream server that honours those forms (a
 * source route "@a,@b:" is dropped by the engine, RFC 5321 C).  A domain
 * that checks recipients accepts listed ones only (550 5.1.1).  One tenant
 * per transaction: a recipient of another tenant gets 452 4.5.3 (the
 * client sends it again in a transaction of its own).  MAIL FROM is
 * answered 451 4.3.2 while the relay queue is over its back-pressure
 * limits.  A SIZE= above the tenant's size limit is refused at RCPT (552
 * 5.3.4); without SIZE=, at the end of DATA.  DATA goes into the relay queue, sealed under the tenant's key;
 * at the final dot the message goes to the scan workers (judge.c), which
 * answer it.
 *
 * Outbound: a recipient outside every tenant domain is taken only from a
 * tenant's own server sending its outgoing mail: MAIL FROM in one of the
 * tenant's domains, and the client in the tenant's outbound networks or
 * authenticated (AUTH, offered after STARTTLS only) as the tenant's SMTP
 * user; within the tenant's rate (messages a minute, a token bucket:
 * 451 4.7.0 over it).  Such a transaction is the sender's tenant's; it is
 * scanned, archived and queued like inbound mail and delivered by the
 * recipients' MX.  Anything else stays 550 5.7.1 relay denied.
 */
#include <string.h>

#include <sodium.h>
#include <unistd.h>

#include "ar.h"
#include "gateway/gw_int.h"
#include "net.h"

struct mx_session {
	char *mail_from;
	int have_tenant;
	store_tenant_t t;
	json_t *rcpts;               /* accepted, as given */
	int outbound;                /* a recipient outside: the tenant's own
	                                outgoing mail */
	int64_t size;                /* MAIL FROM's SIZE=, -1 when absent */
};

static struct mx_session *session_of(smtp_session_t *s)
{
	struct mx_session *ms = smtp_session_udata(s);
	if (!ms && (ms = calloc(1, sizeof *ms)))
		smtp_session_set_udata(s, ms);
	return ms;
}

static void session_reset(struct mx_session *ms)
{
	free(ms->mail_from);
	ms->mail_from = NULL;
	json_decref(ms->rcpts);
	ms->rcpts = NULL;
	ms->have_tenant = 0;
	ms->outbound = 0;
	ms->size = -1;
}

/* SIZE= above tenant t's limit: 552 5.3.4 at RCPT, before any byte of
 * DATA (RFC 1870 allows it there); 1 when refused. */
static int size_over(const struct mx_session *ms, const store_tenant_t *t,
    struct smtp_reply *r)
{
	if (!t->gw.max_size || ms->size < 0 ||
	    (uint64_t)ms->size <= t->gw.max_size)
		return 0;
	smtp_reply_set(r, 552, "5.3.4", "Message size exceeds the "
	    "recipient's limit (%llu bytes)",
	    (unsigned long long)t->gw.max_size);
	return 1;
}

/* Is the relay queue over a back-pressure limit?  (event loop) */
static int backlogged(gateway_t *g, const smtp_session_t *s)
{
	spool_queue_info_t qi;
	uint64_t waiting;
	const char *what;
	int64_t now;

	spool_queue_info(g->rq, 0, &qi);
	waiting = qi.ready + qi.retrying + qi.claimed;
	if (g->o.max_backlog_age > 0 && qi.backlog_age >= g->o.max_backlog_age)
		what = "age";
	else if (g->o.max_backlog_bytes && qi.bytes >= g->o.max_backlog_bytes)
		what = "bytes";
	else if (g->o.max_backlog_entries &&
	    waiting >= g->o.max_backlog_entries)
		what = "entries";
	else
		return 0;
	now = ar_mono_us();
	if (now - g->backlog_logged_us >= 10000000) {
		g->backlog_logged_us = now;
		ar_log(AR_LOG_WARN, "gateway session=%s status=backpressure "
		    "limit=%s waiting=%llu bytes=%llu oldest_age_s=%lld",
		    smtp_session_info(s)->id, what,
		    (unsigned long long)waiting, (unsigned long long)qi.bytes,
		    (long long)qi.backlog_age);
	}
	return 1;
}

static void on_mail_from(void *arg, smtp_session_t *s, const char *addr,
    const struct smtp_mail_params *p, struct smtp_reply *r)
{
	gateway_t *g = arg;
	struct mx_session *ms = session_of(s);

	if (!ms) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return;
	}
	session_reset(ms);
	ms->size = p ? p->size : -1;
	if (backlogged(g, s)) {
		smtp_reply_set(r, 451, "4.3.2", "Gateway busy: too much mail "
		    "queued, try again later");
		return;
	}
	if (!(ms->mail_from = strdup(addr)))
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
}

/* A local part we never pass on: '%' and '!' are old relay forms, a quoted
 * '@' is one too; a downstream server may honour them. */
static int local_part_ok(const char *addr, const char *at)
{
	for (const char *p = addr; p < at; p++)
		if (*p == '%' || *p == '!' || *p == '@' || *p == '"' ||
		    *p == '\\')
			return 0;
	return at > addr;
}

static void refuse_relay(smtp_session_t *s, const char *why,
    struct smtp_reply *r)
{
	const struct smtp_session_info *si = smtp_session_info(s);

	ar_log(AR_LOG_WARN, "gateway session=%s client=%s status=refused "
	    "reason=\"%s\"", si->id, si->client_ip, why);
	smtp_reply_set(r, 550, "5.7.1", "Relay access denied");
}

/* --- outbound ------------------------------------------------------------------ */

/* Take one message from tenant t's rate (a token bucket of outbound_rate
 * a minute, full at first): 0, or 1 when over it.  Event loop only. */
static int rate_take(gateway_t *g, const store_tenant_t *t)
{
	struct gw_bucket *b = NULL;
	int64_t now = ar_mono_us();
	double cap = t->gw.outbound_rate;

	if (!t->gw.outbound_rate)
		return 0;
	for (size_t i = 0; i < g->nbuckets; i++)
		if (!memcmp(g->buckets[i].tenant, t->id, STORE_TENANT_LEN))
			b = &g->buckets[i];
	if (!b) {
		size_t i = g->nbuckets < GW_BUCKETS ? g->nbuckets++ :
		    (size_t)randombytes_uniform(GW_BUCKETS);
		b = &g->buckets[i];
		memcpy(b->tenant, t->id, STORE_TENANT_LEN);
		b->tokens = cap;
		b->last_us = now;
	}
	b->tokens += (double)(now - b->last_us) / 60e6 * cap;
	b->last_us = now;
	if (b->tokens > cap)
		b->tokens = cap;
	if (b->tokens < 1.0)
		return 1;
	b->tokens -= 1.0;
	return 0;
}

/* May this client send tenant t's outgoing mail? */
static int outbound_client(const store_tenant_t *t,
    const struct smtp_session_info *si)
{
	struct ar_cidr net;

	if (si->auth_user[0] && t->smtp_user[0] &&
	    !strcmp(si->auth_user, t->smtp_user))
		return 1;
	for (size_t i = 0; i < t->gw.n_outbound; i++)
		if (ar_cidr_parse(t->gw.outbound_networks[i], &net) == 0 &&
		    si->client_addr && ar_cidr_match(&net, si->client_addr))
			return 1;
	return 0;
}

/* RCPT TO addr outside every tenant domain: the sender's tenant's own
 * outgoing mail, or relay denied. */
static void outbound_rcpt(gateway_t *g, smtp_session_t *s,
    struct mx_session *ms, const char *addr, struct smtp_reply *r)
{
	const struct smtp_session_info *si = smtp_session_info(s);
	const char *at = ms->mail_from ? strrchr(ms->mail_from, '@') : NULL;
	store_domain_t d;
	store_tenant_t t;
	int rc;

	if (!at || store_domain_get(g->st, at + 1, &d) ||
	    store_tenant_get_id(g->st, d.tenant, &t) ||
	    t.state != STORE_TENANT_ACTIVE || !outbound_client(&t, si)) {
		refuse_relay(s, "recipient domain is no tenant's", r);
		return;
	}
	if (ms->have_tenant && memcmp(ms->t.id, t.id, STORE_TENANT_LEN)) {
		smtp_reply_set(r, 452, "4.5.3", "Too many recipients: send "
		    "this one in another transaction");
		return;
	}
	if (size_over(ms, &t, r))
		return;
	if (!ms->outbound && rate_take(g, &t)) {
		char th[33];
		ar_log(AR_LOG_WARN, "gateway session=%s tenant=%s "
		    "status=rate_limited rate_per_min=%u", si->id,
		    ar_hex(t.id, STORE_TENANT_LEN, th), t.gw.outbound_rate);
		smtp_reply_set(r, 451, "4.7.0", "Sending rate exceeded, try "
		    "again later");
		return;
	}
	if (!ms->rcpts && !(ms->rcpts = json_array())) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return;
	}
	rc = json_array_append_new(ms->rcpts, json_string(addr));
	if (rc) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return;
	}
	if (!ms->have_tenant) {
		ms->t = t;
		ms->have_tenant = 1;
	}
	ms->outbound = 1;
}

static int user_cb(void *arg, const store_tenant_t *t)
{
	store_tenant_t *out = arg;

	if (t->smtp_user[0] && !strcmp(t->smtp_user, out->smtp_user) &&
	    t->state == STORE_TENANT_ACTIVE) {
		*out = *t;
		return 1;          /* stop the walk */
	}
	return 0;
}

/* AUTH (the engine offers it after STARTTLS only): a tenant's SMTP user
 * and password, for its outgoing mail.  An active tenant's user only; a
 * success within gateway_auth_cache passes without Argon2id again
 * (authcache.c). */
static int on_auth(void *arg, smtp_session_t *s, const char *user,
    const char *password)
{
	gateway_t *g = arg;
	const struct smtp_session_info *si = smtp_session_info(s);
	store_tenant_t t;
	char th[33];
	int rc, cached;

	if (strlen(user) >= sizeof t.smtp_user)
		return AR_EPERM;
	memset(&t, 0, sizeof t);
	ar_strlcpy(t.smtp_user, user, sizeof t.smtp_user);
	if ((rc = store_tenant_walk(g->st, user_cb, &t)) < 0)
		return AR_EAGAIN;
	if (!t.name[0] || !t.smtp_pass_hash[0])
		return AR_EPERM;
	cached = gw_authcache_check(g->auth, user, password,
	    t.smtp_pass_hash);
	if (!cached && crypto_pwhash_str_verify(t.smtp_pass_hash, password,
	    strlen(password)) != 0)
		return AR_EPERM;
	if (!cached)
		gw_authcache_remember(g->auth, user, password,
		    t.smtp_pass_hash);
	ar_log(AR_LOG_INFO, "gateway session=%s tenant=%s event=auth_check "
	    "cached=%s", si->id, ar_hex(t.id, STORE_TENANT_LEN, th),
	    cached ? "yes" : "no");
	return 0;
}

static void on_rcpt_to(void *arg, smtp_session_t *s, const char *addr,
    struct smtp_reply *r)
{
	gateway_t *g = arg;
	struct mx_session *ms = session_of(s);
	const char *at = strrchr(addr, '@');
	store_domain_t d;
	store_tenant_t t;
	int rc;

	if (!ms) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return;
	}
	if (!at || !local_part_ok(addr, at)) {
		refuse_relay(s, "recipient with a relay form", r);
		return;
	}
	rc = store_domain_get(g->st, at + 1, &d);
	if (rc == AR_ENOENT) {
		outbound_rcpt(g, s, ms, addr, r);
		return;
	}
	if (rc == 0)
		rc = store_tenant_get_id(g->st, d.tenant, &t);
	if (rc) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return;
	}
	if (t.state != STORE_TENANT_ACTIVE) {
		smtp_reply_set(r, 550, "5.7.1", "This domain no longer accepts "
		    "mail here");
		return;
	}
	if (ms->have_tenant && memcmp(ms->t.id, t.id, STORE_TENANT_LEN)) {
		smtp_reply_set(r, 452, "4.5.3", "Too many recipients: send "
		    "this one in another transaction");
		return;
	}
	if (size_over(ms, &t, r))
		return;
	if (d.check_recipients) {
		rc = store_gw_list_has(g->st, t.id, STORE_GW_RECIPIENTS, "",
		    addr);
		if (rc == AR_ENOENT) {
			smtp_reply_set(r, 550, "5.1.1", "Recipient address "
			    "rejected: user unknown");
			return;
		}
		if (rc) {
			smtp_reply_set(r, 451, "4.3.0", "Local error, try "
			    "again later");
			return;
		}
	}
	if (!ms->rcpts && !(ms->rcpts = json_array())) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return;
	}
	if (!ms->have_tenant) {
		ms->t = t;
		ms->have_tenant = 1;
	}
	json_array_append_new(ms->rcpts, json_string(addr));
}

/* The envelope kept in the relay queue with the message. */
static json_t *envelope(gateway_t *g, const struct mx_session *ms,
    const smtp_session_t *s)
{
	const struct smtp_session_info *si = smtp_session_info(s);
	char ts[32];
	json_t *o = json_object();

	json_object_set_new(o, "mail_from", json_string(ms->mail_from ?
	    ms->mail_from : ""));
	json_object_set(o, "rcpt_to", ms->rcpts);
	json_object_set_new(o, "client_ip", json_string(si->client_ip));
	json_object_set_new(o, "client_port", json_integer(si->client_port));
	json_object_set_new(o, "helo", json_string(si->helo));
	json_object_set_new(o, "esmtp", json_boolean(si->esmtp));
	json_object_set_new(o, "tls", si->tls ? json_pack("{s:s, s:s}",
	    "protocol", si->tls_protocol, "cipher", si->tls_cipher) :
	    json_null());
	json_object_set_new(o, "auth_user", si->auth_user[0] ?
	    json_string(si->auth_user) : json_null());
	json_object_set_new(o, "session", json_string(si->id));
	json_object_set_new(o, "received_by", json_string(g->hostname));
	json_object_set_new(o, "arrived", json_string(ar_time_fmt(ar_now(),
	    ts, sizeof ts)));
	json_object_set_new(o, "arrived_unix", json_integer(ar_now()));
	json_object_set_new(o, "source", json_string("gateway"));
	json_object_set_new(o, "direction", json_string(ms->outbound ?
	    "outbound" : "inbound"));
	return o;
}

static void *on_data_begin(void *arg, smtp_session_t *s,
    struct smtp_reply *r)
{
	gateway_t *g = arg;
	struct mx_session *ms = session_of(s);
	struct mx_job *j;
	int rc;

	if (!ms || !ms->have_tenant || !(j = calloc(1, sizeof *j))) {
		smtp_reply_set(r, 451, "4.3.0", "Local error, try again later");
		return NULL;
	}
	j->g = g;
	j->t = ms->t;
	j->started_us = ar_mono_us();
	ar_strlcpy(j->session, smtp_session_info(s)->id, sizeof j->session);
	if ((rc = spool_put_begin(g->rq, j->t.id, j->t.key_version,
	    &j->put))) {
		ar_log(AR_LOG_WARN, "gateway session=%s status=deferred "
		    "reason=\"%s\"", j->session, spool_errmsg());
		if (rc == AR_ENOSPC)
			smtp_reply_set(r, 452, "4.3.1", "Insufficient system "
			    "storage");
		else
			smtp_reply_set(r, 451, "4.3.0", "Local error, try again "
			    "later");
		free(j);
		return NULL;
	}
	return j;
}

static int on_data_write(void *arg, void *sink, const void *buf, size_t len)
{
	struct mx_job *j = sink;

	(void)arg;
	j->bytes += len;
	if (j->t.gw.max_size && j->bytes > j->t.gw.max_size) {
		j->too_big = 1;      /* the rest is read and dropped */
		return 0;
	}
	if (j->status == 0)
		j->status = spool_put_write(j->put, buf, len);
	if (j->status == 0)
		gw_job_copy(j, buf, len);
	return 0;
}

static void on_data_end(void *arg, void *sink, smtp_session_t *s,
    smtp_token_t *tok)
{
	gateway_t *g = arg;
	struct mx_session *ms = session_of(s);
	struct mx_job *j = sink;

	j->tok = tok;
	if (!ms || !(j->env = envelope(g, ms, s)))
		j->status = AR_ENOMEM;
	gw_judge_submit(g, j);
}

static void on_data_abort(void *arg, void *sink, int status)
{
	(void)arg;
	(void)status;
	gw_job_free(sink);
}

static void on_disconnect(void *arg, smtp_session_t *s)
{
	struct mx_session *ms = smtp_session_udata(s);

	(void)arg;
	if (ms) {
		session_reset(ms);
		free(ms);
		smtp_session_set_udata(s, NULL);
	}
}

/*
 * The scanners' copy of a message: each scanner (clamd, rspamd, the
 * attachment policy) reads the message whole, and from the spool each
 * read is a sealed reader of its own (opened, authenticated, decrypted
 * and hashed again).  A message that fits scan_mem_message, while all the
 * copies held fit scan_mem_max, is also kept in memory as it arrives
 * (never on disk; wiped when freed) and scanned from there.  The spool
 * entry is the same bytes, made durable before the scan either way.
 */
void gw_job_copy_drop(struct mx_job *j)
{
	if (j->copy) {
		sodium_memzero(j->copy, j->copy_cap);
		free(j->copy);
		__atomic_sub_fetch(&j->g->scan_mem_used, j->copy_cap,
		    __ATOMIC_RELAXED);
	}
	j->copy = NULL;
	j->copy_len = j->copy_cap = 0;
}

void gw_job_copy(struct mx_job *j, const void *buf, size_t len)
{
	const gateway_opts_t *o = &j->g->o;
	size_t cap;

	if (j->copy_off || !len)
		return;
	if (!o->scan_mem_max || j->copy_len + len > o->scan_mem_message) {
		gw_job_copy_drop(j);
		j->copy_off = 1;
		return;
	}
	if (j->copy_len + len > j->copy_cap) {
		size_t had = j->copy_cap;
		cap = ar_grow_cap(had, j->copy_len + len, o->scan_mem_message);
		if (__atomic_add_fetch(&j->g->scan_mem_used, cap - had,
		    __ATOMIC_RELAXED) > o->scan_mem_max ||
		    ar_wiped_move(&j->copy, &j->copy_cap, j->copy_len, cap)) {
			__atomic_sub_fetch(&j->g->scan_mem_used, cap - had,
			    __ATOMIC_RELAXED);
			gw_job_copy_drop(j);
			j->copy_off = 1;
			return;
		}
	}
	memcpy(j->copy + j->copy_len, buf, len);
	j->copy_len += len;
}

void gw_job_free(struct mx_job *j)
{
	if (!j)
		return;
	if (j->put)
		spool_put_abort(j->put);
	gw_job_copy_drop(j);
	json_decref(j->env);
	free(j);
}

/* --- the gateway ------------------------------------------------------------ */

int gateway_new(gateway_t **out, store_t *st, spool_t *rq,
    const struct smtp_config *cfg, const gateway_opts_t *o, char *err,
    size_t errlen)
{
	struct smtp_callbacks cb;
	gateway_t *g;
	int rc;

	*out = NULL;
	if (!st || !rq || !cfg || !o || !o->archive) {
		snprintf(err, errlen, "gateway: store, relay queue and archive "
		    "spool are needed");
		return AR_EINVAL;
	}
	if (!(g = calloc(1, sizeof *g)))
		return AR_ENOMEM;
	g->st = st;
	g->rq = rq;
	g->o = *o;
	ar_strlcpy(g->hostname, o->hostname && o->hostname[0] ? o->hostname :
	    cfg->hostname, sizeof g->hostname);
	if (!g->hostname[0] && gethostname(g->hostname, sizeof g->hostname))
		ar_strlcpy(g->hostname, "localhost", sizeof g->hostname);
	ar_strlcpy(g->clamd_socket, o->clamd_socket ? o->clamd_socket : "",
	    sizeof g->clamd_socket);
	ar_strlcpy(g->rspamd_url, o->rspamd_url ? o->rspamd_url : "",
	    sizeof g->rspamd_url);
	ar_strlcpy(g->dns_server, o->dns_server ? o->dns_server : "",
	    sizeof g->dns_server);
	g->o.dns_server = g->dns_server;
	g->o.hostname = g->hostname;
	g->o.clamd_socket = g->clamd_socket;
	g->o.rspamd_url = g->rspamd_url;
	g->backlog_logged_us = ar_mono_us() - 10000000;
	if ((rc = gw_authcache_new(&g->auth, o->auth_cache_ttl))) {
		free(g);
		return rc;
	}
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	pthread_mutex_init(&g->qlock, NULL);
	pthread_cond_init(&g->qcond, NULL);
	pthread_mutex_init(&g->slock, NULL);
	memset(&cb, 0, sizeof cb);
	cb.arg = g;
	cb.mail_from = on_mail_from;
	cb.rcpt_to = on_rcpt_to;
	cb.auth = on_auth;
	cb.data_begin = on_data_begin;
	cb.data_write = on_data_write;
	cb.data_end = on_data_end;
	cb.data_abort = on_data_abort;
	cb.disconnect = on_disconnect;
	if ((rc = smtp_server_new(cfg, &cb, &g->srv, err, errlen)) ||
	    (rc = gw_judge_start(g)) || (rc = gw_queue_start(g))) {
		if (rc && !err[0])
			snprintf(err, errlen, "gateway: %s", ar_strerror(rc));
		gateway_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

int gateway_listen(gateway_t *g, const char *hostport, unsigned *bound_port,
    char *err, size_t errlen)
{
	char host[256];
	unsigned port;
	int rc;

	if (ar_hostport_parse(hostport, host, sizeof host, &port)) {
		snprintf(err, errlen, "gateway_listen '%s': expected host:port",
		    hostport);
		return AR_ECONFIG;
	}
	rc = smtp_server_listen(g->srv, host, port, bound_port);
	if (rc)
		snprintf(err, errlen, "gateway_listen %s: %s", hostport,
		    smtp_server_errmsg(g->srv));
	return rc;
}

int gateway_run(gateway_t *g)
{
	return smtp_server_run(g->srv);
}

void gateway_stop(gateway_t *g)
{
	smtp_server_stop(g->srv);
}

void gateway_free(gateway_t *g)
{
	if (!g)
		return;
	/* the scan workers answer every message they hold, so that
	 * smtp_server_free (which waits for every answer) returns */
	gw_judge_stop(g);
	if (g->srv)
		smtp_server_free(g->srv);
	gw_queue_stop(g);
	gw_stats_flush(g);
	pthread_mutex_destroy(&g->slock);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->qlock);
	pthread_cond_destroy(&g->qcond);
	gw_authcache_free(g->auth);
	free(g);
}
