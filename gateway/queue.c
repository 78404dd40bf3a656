/*
 * queue.c - the relay queue's workers: what happens to a message after its
 * 250.  Each worker claims entries of the relay queue (spool_claim) and,
 * from the entry's state record, does what is left of these steps:
 *   1. the archive feed: a copy into the ingest spool with the verdict in
 *      its envelope (skipped for quarantined mail when the tenant does not
 *      archive it); outgoing mail signed when it was accepted (its
 *      DKIM-Signature field in the state record, dkim_out.c) is archived
 *      and delivered with that field in front: the copy kept is the copy
 *      sent;
 *   2. quarantine: a quarantined message becomes a quarantine object of
 *      the tenant (gw_quarantine_keep); its recipients are then final;
 *   3. delivery: pending and due recipients, grouped by domain, through the
 *      domain's routes (gw_relay_send): 2xx delivered, 5xx bounced, else
 *      deferred (1 min doubling to 1 h by default) until the tenant's
 *      queue lifetime, then bounced; a domain that cannot be reached is
 *      not tried again before its own next attempt (every recipient
 *      waiting for it then comes due together, in order of arrival), a
 *      held domain not at all; an operator's retry (archivectl relay
 *      retry) makes every recipient not tried since due at once;
 *   4. bounces: one DSN (RFC 3464) per message for its newly bounced
 *      recipients, queued as a message of its own to the sender - never
 *      for a null sender, never for a DSN;
 * then removes the entry once every recipient is final, or writes its
 * state back (durably) and puts it back until its next due recipient.
 * A crash before that repeats the steps: the archive copy is deduplicated
 * by the archive, a quarantine object is looked up by its entry first, a
 * delivery is repeated (a duplicate the SMTP protocol cannot avoid).  One
 * write per attempt, none for a message delivered at its first: a state
 * write (two reads, a signature, an fdatasync) after each step cost about
 * a third of the worker's CPU per message (docs/performance.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ar.h"
#include "gateway/gw_int.h"
#include "gateway/relay.h"

#define CLAIM_MAX    16
#define DOMAINS_MAX  64          /* remembered unreachable domains */
#define HELD_RECHECK 60          /* s: a held domain is looked at again */
#define REMOVED_SYNC_US 100000   /* finished entries' removal made durable */

/* --- unreachable domains (in memory) ---------------------------------------- */

/*
 * A domain none of whose hosts answered waits as a whole: its own backoff
 * (retry_min doubling to retry_max with its consecutive failures), and
 * every recipient waiting for it gets the same next attempt.  Equal due
 * times are claimed in order of arrival (spool_queue.c), so when the
 * domain is back its mail goes out in the order it came in.
 */
struct dom_down {
	char name[STORE_DOMAIN_MAX];
	int64_t until;
	int64_t fails;               /* consecutive attempts that reached no
	                                host */
};

static struct dom_down downs[DOMAINS_MAX];
static pthread_mutex_t downs_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t retry_delay(const gateway_t *g, int64_t attempts);

static int64_t domain_down_until(const char *name)
{
	int64_t until = 0;

	pthread_mutex_lock(&downs_lock);
	for (size_t i = 0; i < DOMAINS_MAX; i++)
		if (downs[i].until && !strcmp(downs[i].name, name))
			until = downs[i].until;
	pthread_mutex_unlock(&downs_lock);
	return until;
}

/* name reached no host at now: returns when it is tried next. */
static int64_t domain_mark(const gateway_t *g, const char *name, int64_t now)
{
	size_t slot = 0;
	int found = 0;
	int64_t until;

	pthread_mutex_lock(&downs_lock);
	for (size_t i = 0; i < DOMAINS_MAX; i++) {
		if (downs[i].name[0] && !strcmp(downs[i].name, name)) {
			slot = i;
			found = 1;
			break;
		}
		if (downs[i].until < downs[slot].until)
			slot = i;       /* the oldest (or a free) slot */
	}
	if (!found) {
		ar_strlcpy(downs[slot].name, name, sizeof downs[slot].name);
		downs[slot].fails = 0;
	}
	downs[slot].fails++;
	until = now + retry_delay(g, downs[slot].fails);
	downs[slot].until = until;
	pthread_mutex_unlock(&downs_lock);
	return until;
}

/* name answered: its backoff starts again. */
static void domain_reached(const char *name)
{
	pthread_mutex_lock(&downs_lock);
	for (size_t i = 0; i < DOMAINS_MAX; i++)
		if (downs[i].name[0] && !strcmp(downs[i].name, name))
			memset(&downs[i], 0, sizeof downs[i]);
	pthread_mutex_unlock(&downs_lock);
}

static void domains_clear(void)
{
	pthread_mutex_lock(&downs_lock);
	memset(downs, 0, sizeof downs);
	pthread_mutex_unlock(&downs_lock);
}

/* --- operator requests (archivectl relay retry / bounce) ---------------------- */

#define BOUNCES_MAX 256

static uint8_t bounces[BOUNCES_MAX][STORE_TENANT_LEN + SPOOL_ID_LEN];
static size_t nbounces;
static pthread_mutex_t bounces_lock = PTHREAD_MUTEX_INITIALIZER;

/* Was a bounce asked for this entry?  (Forgets it.) */
static int bounce_asked(const spool_ref_t *ref)
{
	int hit = 0;

	pthread_mutex_lock(&bounces_lock);
	for (size_t i = 0; i < nbounces && !hit; i++)
		if (!memcmp(bounces[i], ref->tenant, STORE_TENANT_LEN) &&
		    !memcmp(bounces[i] + STORE_TENANT_LEN, ref->id,
		    SPOOL_ID_LEN)) {
			memcpy(bounces[i], bounces[--nbounces],
			    sizeof bounces[i]);
			hit = 1;
		}
	pthread_mutex_unlock(&bounces_lock);
	return hit;
}

/* Retries asked for one entry, and when every entry's was (relay retry)
 * or every entry of a tenant's (the console's retry): a recipient not
 * tried since is due whatever its next attempt said. */
static uint8_t retries[BOUNCES_MAX][STORE_TENANT_LEN + SPOOL_ID_LEN];
static size_t nretries;
static int64_t retry_all_at;
/* Bumped by every retry request: an entry being worked on when one came
 * (claimed, so spool_retry_now did not see it) is put back due at once
 * rather than at the next attempt it was given. */
static uint64_t retry_gen;
#define TENANT_RETRIES 64
static struct {
	uint8_t tenant[STORE_TENANT_LEN];
	int64_t at;
} tretries[TENANT_RETRIES];

/* Was a retry asked for this entry?  (Forgets it.)  *all_at: when a
 * retry of everything, or of everything of its tenant, was last asked
 * (0: never). */
static int retry_asked(const spool_ref_t *ref, int64_t *all_at)
{
	int hit = 0;

	pthread_mutex_lock(&bounces_lock);
	for (size_t i = 0; i < nretries && !hit; i++)
		if (!memcmp(retries[i], ref->tenant, STORE_TENANT_LEN) &&
		    !memcmp(retries[i] + STORE_TENANT_LEN, ref->id,
		    SPOOL_ID_LEN)) {
			memcpy(retries[i], retries[--nretries],
			    sizeof retries[i]);
			hit = 1;
		}
	*all_at = retry_all_at;
	for (size_t i = 0; i < TENANT_RETRIES; i++)
		if (tretries[i].at > *all_at && !memcmp(tretries[i].tenant,
		    ref->tenant, STORE_TENANT_LEN))
			*all_at = tretries[i].at;
	pthread_mutex_unlock(&bounces_lock);
	return hit;
}

/* A retry of everything of tenant asked at now. */
static void tenant_retry(const uint8_t *tenant, int64_t now)
{
	size_t slot = 0;

	for (size_t i = 0; i < TENANT_RETRIES; i++) {
		if (!memcmp(tretries[i].tenant, tenant, STORE_TENANT_LEN)) {
			slot = i;
			break;
		}
		if (tretries[i].at < tretries[slot].at)
			slot = i;       /* the oldest (or a free) slot */
	}
	memcpy(tretries[slot].tenant, tenant, STORE_TENANT_LEN);
	tretries[slot].at = now;
}

static uint64_t retry_gen_get(void)
{
	uint64_t v;

	pthread_mutex_lock(&bounces_lock);
	v = retry_gen;
	pthread_mutex_unlock(&bounces_lock);
	return v;
}

/* The tenant's domains answered, as far as their backoff goes. */
static int domain_forget_cb(void *arg, const store_domain_t *d)
{
	(void)arg;
	domain_reached(d->name);
	return 0;
}

static int request_cb(void *arg, const char *text)
{
	gateway_t *g = arg;
	json_t *r = json_loads(text, 0, NULL);
	const char *op = json_string_value(json_object_get(r, "op"));
	const char *th = json_string_value(json_object_get(r, "tenant"));
	const char *ih = json_string_value(json_object_get(r, "id"));
	uint8_t key[STORE_TENANT_LEN + SPOOL_ID_LEN];
	int one = th && ih && !ar_unhex(th, key, STORE_TENANT_LEN) &&
	    !ar_unhex(ih, key + STORE_TENANT_LEN, SPOOL_ID_LEN);
	size_t n = 0;

	if (op && !strcmp(op, "retry") && th && !ih &&
	    !ar_unhex(th, key, STORE_TENANT_LEN)) {
		/* every entry of one tenant (the console's retry) */
		pthread_mutex_lock(&bounces_lock);
		tenant_retry(key, ar_now());
		retry_gen++;
		pthread_mutex_unlock(&bounces_lock);
		(void)store_domain_walk(g->st, key, domain_forget_cb, NULL);
		n = spool_retry_now(g->rq, key, NULL);
		ar_log(AR_LOG_INFO, "gateway request=retry tenant=%s entries=%zu",
		    th, n);
	} else if (op && !strcmp(op, "retry")) {
		pthread_mutex_lock(&bounces_lock);
		if (!one)
			retry_all_at = ar_now();
		else if (nretries < BOUNCES_MAX)
			memcpy(retries[nretries++], key, sizeof key);
		retry_gen++;
		pthread_mutex_unlock(&bounces_lock);
		if (!one)
			domains_clear();
		n = spool_retry_now(g->rq, one ? key : NULL, one ? key +
		    STORE_TENANT_LEN : NULL);
		ar_log(AR_LOG_INFO, "gateway request=retry entries=%zu", n);
	} else if (op && !strcmp(op, "bounce") && one) {
		pthread_mutex_lock(&bounces_lock);
		if (nbounces < BOUNCES_MAX)
			memcpy(bounces[nbounces++], key, sizeof key);
		pthread_mutex_unlock(&bounces_lock);
		spool_retry_now(g->rq, key, key + STORE_TENANT_LEN);
		ar_log(AR_LOG_INFO, "gateway request=bounce id=%s", ih);
	} else {
		ar_log(AR_LOG_WARN, "gateway request=unknown status=ignored");
	}
	json_decref(r);
	gw_queue_wake(g);
	return 0;
}

/* --- sources over relay queue entries --------------------------------------- */

struct entry_src {
	store_reader_t *r;
	uint64_t len, pos;
};

static int src_rewind(void *arg)
{
	struct entry_src *e = arg;
	e->pos = 0;
	return store_reader_seek(e->r, 0);
}

static int src_read(void *arg, void *buf, size_t len, size_t *got)
{
	struct entry_src *e = arg;
	int rc;

	*got = 0;
	if (e->pos >= e->len)
		return 0;
	if (len > e->len - e->pos)
		len = (size_t)(e->len - e->pos);
	if ((rc = store_reader_read(e->r, buf, len, got)))
		return rc;
	e->pos += *got;
	return 0;
}

/* --- state helpers ----------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static int64_t retry_delay(const gateway_t *g, int64_t attempts)
{
	int64_t d = g->o.retry_min > 0 ? g->o.retry_min : 60;
	int64_t max = g->o.retry_max > 0 ? g->o.retry_max : 3600;

	while (--attempts > 0 && d < max)
		d *= 2;
	return d < max ? d : max;
}

static int rcpt_final(const json_t *r)
{
	const char *s = jstr(r, "state");
	return !strcmp(s, "delivered") || !strcmp(s, "bounced") ||
	    !strcmp(s, "quarantined");
}

/* RFC 5322 date of t. */
static const char *rfc5322_date(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	return buf;
}

/* Our Received: line, for tagged mail the X-Spam-* fields, and for
 * signed outgoing mail its DKIM-Signature (dkim, may be ""). */
static char *prepend_fields(const gateway_t *g, const json_t *env,
    const json_t *verdict, const char *idhex, const char *dkim)
{
	char date[64], *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	const char *action = jstr(verdict, "action");
	json_t *score = json_object_get(verdict, "score");

	if (!f)
		return NULL;
	fprintf(f, "Received: from %s ([%s])\r\n\tby %s (archived gateway) "
	    "with %s id %s;\r\n\t%s\r\n", jstr(env, "helo")[0] ?
	    jstr(env, "helo") : "unknown", jstr(env, "client_ip"), g->hostname,
	    json_is_object(json_object_get(env, "tls")) ? "ESMTPS" : "ESMTP",
	    idhex, rfc5322_date(json_integer_value(json_object_get(env,
	    "arrived_unix")), date, sizeof date));
	if (!strcmp(action, "tag")) {
		if (!strcmp(jstr(verdict, "verdict"), "unscanned"))
			fprintf(f, "X-Archived-Unscanned: yes\r\n");
		else
			fprintf(f, "X-Spam-Flag: YES\r\n");
		if (json_is_number(score))
			fprintf(f, "X-Spam-Score: %.2f\r\nX-Spam-Status: Yes, "
			    "score=%.2f\r\n", json_number_value(score),
			    json_number_value(score));
	}
	fputs(dkim, f);
	fclose(f);
	return out;
}

/* --- 1. the archive feed ---------------------------------------------------- */

static int feed_archive(gateway_t *g, const store_tenant_t *t,
    const json_t *env, const json_t *verdict, const char *dkim,
    struct entry_src *src, char *why, size_t whylen)
{
	spool_put_t *p;
	json_t *e = json_deep_copy(env);
	char buf[65536], *text;
	size_t got;
	int rc;

	if (!e)
		return AR_ENOMEM;
	json_object_set(e, "gateway", (json_t *)verdict);
	text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(e);
	if (!text)
		return AR_ENOMEM;
	if ((rc = spool_put_begin(g->o.archive, t->id, t->key_version, &p))) {
		snprintf(why, whylen, "archive spool: %s", spool_errmsg());
		free(text);
		return rc;
	}
	/* outgoing mail is archived as it was sent: signed */
	if (dkim[0])
		rc = spool_put_write(p, dkim, strlen(dkim));
	if (rc == 0 && (rc = src_rewind(src)) == 0)
		while ((rc = src_read(src, buf, sizeof buf, &got)) == 0 && got &&
		    (rc = spool_put_write(p, buf, got)) == 0)
			;
	if (rc) {
		snprintf(why, whylen, "reading the queued message: %s",
		    ar_strerror(rc));
		spool_put_abort(p);
		free(text);
		return rc;
	}
	rc = spool_put_finish(p, text, NULL);
	free(text);
	if (rc) {
		snprintf(why, whylen, "archive spool: %s", spool_errmsg());
		return rc;
	}
	if (g->o.archive_wake)
		g->o.archive_wake(g->o.archive_wake_arg);
	return 0;
}

/* --- 4. bounces ----------------------------------------------------------- */

int gw_enqueue(gateway_t *g, const store_tenant_t *t, const char *mail_from,
    const char *const *rcpts, size_t n, const gw_source_t *src,
    const char *source, const json_t *verdict, const uint8_t *fixed_id,
    int sign, uint8_t id_out[16])
{
	spool_put_t *p = NULL;
	json_t *env, *rs = json_array(), *st, *list = json_array();
	uint8_t id[SPOOL_ID_LEN];
	char ts[32], buf[65536], *etext, *stext = NULL, *dkim = NULL, hex[33];
	size_t got;
	int rc, spooled = 0;

	for (size_t i = 0; i < n; i++) {
		json_array_append_new(rs, json_string(rcpts[i]));
		json_array_append_new(list, json_pack("{s:s, s:s, s:i}", "addr",
		    rcpts[i], "state", "pending", "attempts", 0));
	}
	env = json_pack("{s:s, s:o, s:s, s:s, s:s, s:I, s:s}", "mail_from",
	    mail_from, "rcpt_to", rs, "client_ip", "127.0.0.1", "helo",
	    g->hostname, "received_by", g->hostname, "arrived_unix",
	    (json_int_t)ar_now(), "source", source);
	json_object_set_new(env, "arrived", json_string(ar_time_fmt(ar_now(),
	    ts, sizeof ts)));
	st = json_pack("{s:O, s:s, s:s, s:o, s:I}", "verdict", verdict,
	    "archive", "skipped", "quarantine", "none", "rcpts", list,
	    "created", (json_int_t)ar_now());
	etext = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(env);
	rc = !etext || !st ? AR_ENOMEM : spool_put_begin_id(g->rq, t->id,
	    t->key_version, fixed_id, &p);
	if (rc == AR_EEXIST) {          /* queued by an earlier attempt */
		memcpy(id, fixed_id, SPOOL_ID_LEN);
		rc = 0;
		goto done;
	}
	if (rc == 0 && (rc = src->rewind(src->arg)) == 0)
		while ((rc = src->read(src->arg, buf, sizeof buf, &got)) == 0 &&
		    got && (rc = spool_put_write(p, buf, got)) == 0)
			;
	if (rc && p)
		spool_put_abort(p);
	if (rc == 0 && (rc = spool_put_finish(p, etext, id)) == 0)
		spooled = 1;
	/* the entry is durable: the signer reads it back (dkim_out.c); the
	 * state record carries the signature, which every copy that leaves
	 * the queue begins with */
	if (rc == 0 && sign && (rc = gw_dkim_outbound(g, t, id,
	    ar_hex(id, SPOOL_ID_LEN, hex), &dkim)) == 0 && dkim)
		json_object_set_new(st, "dkim", json_string(dkim));
	if (rc == 0 && !(stext = json_dumps(st, JSON_COMPACT |
	    JSON_SORT_KEYS)))
		rc = AR_ENOMEM;
	if (rc == 0)
		rc = spool_state_set(g->rq, t->id, id, t->key_version, stext);
	if (rc && spooled)             /* spooled without its state */
		spool_remove(g->rq, t->id, id);
	if (rc == 0)
		gw_stats_relay(g, t->id, STORE_RS_QUEUED, n);
done:
	if (rc == 0 && id_out)
		memcpy(id_out, id, SPOOL_ID_LEN);
	json_decref(st);
	free(etext);
	free(stext);
	free(dkim);
	if (rc == 0)
		gw_queue_wake(g);
	return rc;
}

/* A source over bytes in memory. */
struct mem_src {
	const char *data;
	size_t len, pos;
};

static int mem_rewind(void *arg)
{
	((struct mem_src *)arg)->pos = 0;
	return 0;
}

static int mem_read(void *arg, void *buf, size_t len, size_t *got)
{
	struct mem_src *m = arg;
	size_t k = m->len - m->pos < len ? m->len - m->pos : len;
	memcpy(buf, m->data + m->pos, k);
	m->pos += k;
	*got = k;
	return 0;
}

/* One DSN for the recipients of st that bounced since the last one (and,
 * with delay_dsn_hours, one "delayed" notice once). */
static void send_dsns(gateway_t *g, const store_tenant_t *t, const json_t *env,
    json_t *st, struct entry_src *src, const char *idhex)
{
	gw_dsn_rcpt_t d[256];
	json_t *r, *rcpts = json_object_get(st, "rcpts");
	const char *sender = jstr(env, "mail_from");
	int64_t arrival = json_integer_value(json_object_get(env,
	    "arrived_unix"));
	int delayed = 0;
	size_t i, n = 0;
	char *text = NULL;
	size_t len = 0;
	gw_source_t s = { src_rewind, src_read, src, src->len };

	/* never to the null sender, never for a DSN (no loops) */
	if (!sender[0] || !strcmp(jstr(env, "source"), "dsn"))
		return;
	json_array_foreach(rcpts, i, r) {
		const char *state = jstr(r, "state");
		int late = t->gw.delay_dsn_hours && !strcmp(state, "deferred") &&
		    !json_is_true(json_object_get(r, "delay_notified")) &&
		    ar_now() - arrival >= (int64_t)t->gw.delay_dsn_hours * 3600;
		if (n == AR_ARRAY_LEN(d) || json_is_true(json_object_get(r,
		    "dsn")) || (strcmp(state, "bounced") && !late))
			continue;
		d[n].rcpt = jstr(r, "addr");
		d[n].action = late ? "delayed" : "failed";
		d[n].status = jstr(r, "status")[0] ? jstr(r, "status") :
		    late ? "4.4.7" : "5.0.0";
		d[n].remote_mta = jstr(r, "host")[0] ? jstr(r, "host") : NULL;
		d[n].diagnostic = jstr(r, "reply")[0] ? jstr(r, "reply") : NULL;
		d[n].last_attempt = json_integer_value(json_object_get(r,
		    "last"));
		delayed |= late;
		n++;
	}
	if (!n)
		return;
	if (gw_dsn_build(g->hostname, sender, idhex, arrival, d, n, &s, 65536,
	    &text, &len) == 0) {
		json_t *v = json_pack("{s:s, s:s, s:[]}", "verdict", "dsn",
		    "action", "deliver", "reasons");
		uint8_t id[16];
		char hex[33];
		struct mem_src m = { text, len, 0 };
		gw_source_t ms = { mem_rewind, mem_read, &m, len };
		int rc = gw_enqueue(g, t, "", &sender, 1, &ms, "dsn", v, NULL,
		    0, id);
		json_decref(v);
		if (rc) {
			ar_log(AR_LOG_WARN, "gateway id=%s status=dsn_failed "
			    "reason=\"%s\"", idhex, ar_strerror(rc));
			free(text);
			return;    /* tried again with the next attempt */
		}
		ar_log(AR_LOG_INFO, "gateway id=%s status=dsn dsn_id=%s "
		    "recipients=%zu kind=%s", idhex, ar_hex(id, 16, hex), n,
		    delayed ? "delayed" : "failed");
		gw_stats_relay(g, t->id, STORE_RS_DSN, 1);
	}
	free(text);
	json_array_foreach(rcpts, i, r) {
		const char *state = jstr(r, "state");
		if (!strcmp(state, "bounced"))
			json_object_set_new(r, "dsn", json_true());
		else if (delayed && !strcmp(state, "deferred"))
			json_object_set_new(r, "delay_notified", json_true());
	}
}

/* --- 3. delivery ------------------------------------------------------------ */

/* The domain record for rcpt's domain: the tenant's own, or (a DSN to the
 * outside) one that looks up the MX with opportunistic TLS. */
static int route_of(gateway_t *g, const char *rcpt, store_domain_t *d)
{
	const char *at = strrchr(rcpt, '@');
	int rc;

	if (!at)
		return AR_EINVAL;
	rc = store_domain_get(g->st, at + 1, d);
	if (rc != AR_ENOENT)
		return rc;
	memset(d, 0, sizeof *d);
	ar_strlcpy(d->name, at + 1, sizeof d->name);
	if (store_domain_name_norm(d->name))
		return AR_EINVAL;
	d->n_routes = 1;
	ar_strlcpy(d->routes[0], "mx:", sizeof d->routes[0]);
	d->tls = STORE_TLS_OPPORTUNISTIC;
	return 0;
}

/* Milliseconds since the entry idhex was begun (its id starts with the
 * wall-clock time of its DATA in ms, spool_entry_id_new): with the
 * gateway's dur_ms (DATA to the 250) it gives 250 to remote reply. */
static int64_t age_ms(const char *idhex)
{
	char ms[13];
	struct timespec ts;

	memcpy(ms, idhex, 12);
	ms[12] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
	    (int64_t)strtoll(ms, NULL, 16);
}

/* Is recipient x due at now?  Its next attempt has come, or a retry was
 * asked for its entry (force) or for everything at all_at, after its
 * last attempt. */
static int rcpt_due(const json_t *x, int64_t now, int force, int64_t all_at)
{
	int64_t next = json_integer_value(json_object_get(x, "next"));
	int64_t last = json_integer_value(json_object_get(x, "last"));

	return next <= now || force || (all_at && last <= all_at);
}

/* Deliver the due recipients of st; returns how many changed. */
static size_t deliver(gateway_t *g, const store_tenant_t *t,
    const json_t *env, json_t *st,
    struct entry_src *src, const char *prepend, const char *idhex,
    int force, int64_t all_at)
{
	json_t *rcpts = json_object_get(st, "rcpts"), *r;
	int64_t now = ar_now(), created = json_integer_value(json_object_get(st,
	    "created"));
	int64_t expires = created + (int64_t)t->gw.queue_days * 86400;
	size_t i, changed = 0, n = json_array_size(rcpts);
	int *done = calloc(n ? n : 1, sizeof *done);
	gw_source_t s = { src_rewind, src_read, src, src->len };

	if (!done)
		return 0;
	for (i = 0; i < n; i++) {
		store_domain_t d;
		const char *list[256];
		size_t idx[256], k = 0;
		gw_rcpt_result_t res[256];
		int64_t down;
		int asked = 0;        /* an operator's retry: no waiting */

		r = json_array_get(rcpts, i);
		if (done[i] || rcpt_final(r) || !rcpt_due(r, now, force, all_at))
			continue;
		if (route_of(g, jstr(r, "addr"), &d)) {
			json_object_set_new(r, "state", json_string("bounced"));
			json_object_set_new(r, "status", json_string("5.1.2"));
			json_object_set_new(r, "reply", json_string("no route "
			    "to the recipient's domain"));
			gw_stats_relay(g, t->id, STORE_RS_BOUNCED, 1);
			changed++;
			continue;
		}
		/* every due recipient of the same domain goes together */
		for (size_t j = i; j < n && k < AR_ARRAY_LEN(list); j++) {
			json_t *x = json_array_get(rcpts, j);
			const char *a = jstr(x, "addr"), *at = strrchr(a, '@');
			if (done[j] || rcpt_final(x) ||
			    !rcpt_due(x, now, force, all_at) ||
			    !at || strcasecmp(at + 1, d.name))
				continue;
			if (json_integer_value(json_object_get(x, "next")) > now)
				asked = 1;
			done[j] = 1;
			idx[k] = j;
			list[k++] = a;
		}
		down = domain_down_until(d.name);
		if (d.held || (down > now && !asked)) {
			int64_t next = d.held ? now + HELD_RECHECK : down;
			for (size_t m = 0; m < k; m++)
				json_object_set_new(json_array_get(rcpts, idx[m]),
				    "next", json_integer(next));
			changed++;
			continue;
		}
		memset(res, 0, k * sizeof *res);
		if (gw_relay_send(g->relay, &d, jstr(env, "mail_from"), list, k,
		    prepend, &s, res)) {
			for (size_t m = 0; m < k; m++) {
				res[m].code = 0;
				ar_strlcpy(res[m].text, "local error reading the "
				    "queued message", sizeof res[m].text);
			}
		}
		int reached = 0;
		for (size_t m = 0; m < k; m++)
			reached |= res[m].code != 0;
		for (size_t m = 0; m < k; m++) {
			json_t *x = json_array_get(rcpts, idx[m]);
			int64_t att = json_integer_value(json_object_get(x,
			    "attempts")) + 1;
			const char *state;
			json_object_set_new(x, "attempts", json_integer(att));
			json_object_set_new(x, "last", json_integer(now));
			json_object_set_new(x, "reply", json_string(res[m].text));
			json_object_set_new(x, "host", json_string(res[m].host));
			json_object_set_new(x, "code", json_integer(res[m].code));
			if (res[m].enhanced[0])
				json_object_set_new(x, "status",
				    json_string(res[m].enhanced));
			if (res[m].code >= 200 && res[m].code < 300) {
				state = "delivered";
			} else if (res[m].code >= 500) {
				state = "bounced";
			} else if (now >= expires) {
				char why[600];
				state = "bounced";
				snprintf(why, sizeof why, "queue lifetime of %u "
				    "days expired; last reply: %s",
				    t->gw.queue_days, res[m].text[0] ?
				    res[m].text : "none");
				json_object_set_new(x, "status",
				    json_string("4.4.7"));
				json_object_set_new(x, "reply", json_string(why));
			} else {
				state = "deferred";
				json_object_set_new(x, "next", json_integer(now +
				    retry_delay(g, att)));
			}
			json_object_set_new(x, "state", json_string(state));
			gw_stats_relay(g, t->id, !strcmp(state, "delivered") ?
			    STORE_RS_DELIVERED : !strcmp(state, "bounced") ?
			    STORE_RS_BOUNCED : STORE_RS_DEFERRED, 1);
			ar_log(AR_LOG_INFO, "gateway id=%s rcpt=%zu domain=%s "
			    "status=%s code=%d host=%s attempts=%lld age_ms=%lld",
			    idhex, idx[m], d.name, state, res[m].code,
			    res[m].host[0] ? res[m].host : "-", (long long)att,
			    (long long)age_ms(idhex));
			changed++;
		}
		if (!reached) {     /* no host answered: wait for the domain */
			int64_t until = domain_mark(g, d.name, now);
			for (size_t m = 0; m < k; m++) {
				json_t *x = json_array_get(rcpts, idx[m]);
				if (!strcmp(jstr(x, "state"), "deferred"))
					json_object_set_new(x, "next",
					    json_integer(until));
			}
		} else {
			domain_reached(d.name);
		}
	}
	free(done);
	return changed;
}

/* --- one entry ------------------------------------------------------------- */

static int64_t next_due(const json_t *st)
{
	json_t *r;
	size_t i;
	int64_t due = 0;

	json_array_foreach(json_object_get(st, "rcpts"), i, r) {
		int64_t nx = json_integer_value(json_object_get(r, "next"));
		if (rcpt_final(r))
			continue;
		if (!due || nx < due)
			due = nx;
	}
	return due;
}

static int save(gateway_t *g, const store_tenant_t *t, const spool_ref_t *ref,
    json_t *st, const char *idhex)
{
	char *text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = text ? spool_state_set(g->rq, ref->tenant, ref->id,
	    t->key_version, text) : AR_ENOMEM;

	free(text);
	if (rc)
		ar_log(AR_LOG_WARN, "gateway id=%s status=state_not_saved "
		    "reason=\"%s\"", idhex, spool_errmsg());
	return rc;
}

/* Work on a claimed entry; gen: retry_gen before it was claimed. */
static void work(gateway_t *g, const spool_ref_t *ref, uint64_t gen)
{
	struct entry_src src = { NULL, 0, 0 };
	store_tenant_t t;
	json_t *st = NULL, *env = NULL, *verdict, *r;
	char *stext = NULL, *etext = NULL, idhex[33], why[256] = "";
	char *prepend = NULL;
	int64_t due;
	size_t i;
	int rc, pending = 0, dirty = 0;

	ar_hex(ref->id, SPOOL_ID_LEN, idhex);
	if ((rc = store_tenant_get_id(g->st, ref->tenant, &t)) ||
	    t.state == STORE_TENANT_SHREDDED) {
		ar_log(AR_LOG_WARN, "gateway id=%s status=dropped reason=\"tenant "
		    "%s\"", idhex, rc ? ar_strerror(rc) : "shredded");
		if (rc == AR_ENOENT || rc == 0)
			spool_claim_done(g->rq, ref);
		else
			spool_claim_retry(g->rq, ref, ar_now() + 60);
		return;
	}
	if ((rc = spool_state_get(g->rq, ref->tenant, ref->id, &stext)) ||
	    !(st = json_loads(stext, 0, NULL)) ||
	    (rc = spool_open_entry(g->rq, ref->tenant, ref->id, &src.r,
	    &src.len, &etext)) || !(env = json_loads(etext, 0, NULL))) {
		ar_log(AR_LOG_WARN, "gateway id=%s status=retry reason=\"%s\"",
		    idhex, rc ? spool_errmsg() : "state or envelope unreadable");
		spool_claim_retry(g->rq, ref, ar_now() + retry_delay(g,
		    ref->failures + 1));
		goto out;
	}
	verdict = json_object_get(st, "verdict");
	if (bounce_asked(ref)) {
		json_array_foreach(json_object_get(st, "rcpts"), i, r) {
			if (rcpt_final(r))
				continue;
			json_object_set_new(r, "state", json_string("bounced"));
			json_object_set_new(r, "status", json_string("5.0.0"));
			json_object_set_new(r, "reply", json_string("bounced by "
			    "the operator (archivectl relay bounce)"));
			gw_stats_relay(g, t.id, STORE_RS_BOUNCED, 1);
		}
		ar_log(AR_LOG_INFO, "gateway id=%s status=bounced_by_operator",
		    idhex);
		send_dsns(g, &t, env, st, &src, idhex);
		dirty = 1;
	}
	/* 1. the archive feed */
	if (!strcmp(jstr(st, "archive"), "pending")) {
		if (!strcmp(jstr(verdict, "action"), "quarantine") &&
		    !t.gw.archive_quarantined) {
			json_object_set_new(st, "archive", json_string("skipped"));
			dirty = 1;
		} else if ((rc = feed_archive(g, &t, env, verdict, jstr(st,
		    "dkim"), &src, why, sizeof why)) == 0) {
			json_object_set_new(st, "archive", json_string("done"));
			dirty = 1;
		} else {
			ar_log(AR_LOG_WARN, "gateway id=%s status=archive_retry "
			    "reason=\"%s\"", idhex, why);
			pending = 1;
		}
	}
	/* 2. quarantine */
	if (!strcmp(jstr(st, "quarantine"), "pending")) {
		uint8_t qid[16];
		char qhex[33];
		gw_source_t s = { src_rewind, src_read, &src, src.len };
		if ((rc = gw_quarantine_keep(g, &t, ref->id, env, verdict, &s,
		    qid)) == 0) {
			json_object_set_new(st, "quarantine",
			    json_string(ar_hex(qid, 16, qhex)));
			json_array_foreach(json_object_get(st, "rcpts"), i, r)
				json_object_set_new(r, "state",
				    json_string("quarantined"));
			dirty = 1;
		} else {
			pending = 1;
		}
	}
	/* 3. delivery and 4. bounces (a quarantined message is delivered
	 * only when released, as a message of its own) */
	if (strcmp(jstr(verdict, "action"), "quarantine")) {
		prepend = prepend_fields(g, env, verdict, idhex, jstr(st,
		    "dkim"));
		int64_t all_at;
		int force = retry_asked(ref, &all_at);
		if (deliver(g, &t, env, st, &src, prepend, idhex, force,
		    all_at)) {
			send_dsns(g, &t, env, st, &src, idhex);
			dirty = 1;
		}
	}
	/* The state is written once, at the end, and not at all when the
	 * entry is finished: it is removed instead (made durable within
	 * REMOVED_SYNC_US, queue_main).  A crash before either repeats what
	 * this call did, which each step allows (see the top). */
	due = next_due(st);
	if (!pending && !due) {
		if ((rc = spool_claim_done(g->rq, ref)) && rc != AR_ENOENT) {
			ar_log(AR_LOG_WARN, "gateway id=%s status=remove_failed "
			    "reason=\"%s\"", idhex, spool_errmsg());
		} else {
			ar_log(AR_LOG_INFO, "gateway id=%s status=done", idhex);
			pthread_mutex_lock(&g->qlock);
			g->removed_unsynced = 1;
			pthread_mutex_unlock(&g->qlock);
		}
	} else {
		if (dirty && save(g, &t, ref, st, idhex))
			pending = 1;
		if (pending && (!due || due > ar_now() + 60))
			due = ar_now() + retry_delay(g, ref->failures + 1);
		if (retry_gen_get() != gen)
			due = ar_now();     /* a retry came while it was claimed */
		spool_claim_retry(g->rq, ref, due);
	}
out:
	if (src.r)
		store_reader_close(src.r);
	json_decref(st);
	json_decref(env);
	free(stext);
	free(etext);
	free(prepend);
}

/* --- the workers ------------------------------------------------------------ */

/*
 * A finished entry is removed without a state write (work()); the removal
 * reaches the disk with the next fdatasync of its segment, which may be
 * long in coming for an older segment.  A crash of archived loses none of
 * it (the kernel has it), a power failure would bring the entries back and
 * deliver them again: so one worker syncs the removals every
 * REMOVED_SYNC_US while there are any (an idle worker wakes for it).
 * qlock held (released during the sync).
 */
static void removals_sync(gateway_t *g)
{
	g->removed_unsynced = 0;
	g->removed_synced_us = ar_mono_us();
	pthread_mutex_unlock(&g->qlock);
	if (spool_sync(g->rq))
		ar_log(AR_LOG_WARN, "gateway status=sync_failed reason=\"%s\"",
		    spool_errmsg());
	pthread_mutex_lock(&g->qlock);
}

static void *queue_main(void *arg)
{
	gateway_t *g = arg;
	spool_ref_t refs[CLAIM_MAX];

	ar_thread_setup("ar-relay", 0);
	pthread_mutex_lock(&g->qlock);
	while (!g->qstopping) {
		size_t n;
		uint64_t gen;
		int releases = 0;
		g->qwake = 0;
		/* one worker looks for quarantine releases every 2 s */
		if (ar_mono_us() - g->releases_checked_us >= 2000000) {
			g->releases_checked_us = ar_mono_us();
			releases = 1;
		}
		pthread_mutex_unlock(&g->qlock);
		if (releases) {
			gw_stats_flush(g);
			gw_quarantine_releases(g);
			if (store_gw_requests_take(g->st, request_cb, g))
				ar_log(AR_LOG_WARN, "gateway status=requests_failed "
				    "reason=\"%s\"", store_errmsg(g->st));
		}
		gen = retry_gen_get();
		n = spool_claim(g->rq, refs, CLAIM_MAX);
		for (size_t i = 0; i < n; i++)
			work(g, &refs[i], gen);
		pthread_mutex_lock(&g->qlock);
		if (g->removed_unsynced && ar_mono_us() -
		    g->removed_synced_us >= REMOVED_SYNC_US)
			removals_sync(g);
		if (n == 0 && !g->qwake && !g->qstopping) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			if (g->removed_unsynced) {   /* back for the sync */
				until.tv_nsec += REMOVED_SYNC_US * 1000;
				if (until.tv_nsec >= 1000000000) {
					until.tv_sec++;
					until.tv_nsec -= 1000000000;
				}
			} else {
				until.tv_sec += 1;    /* retries come due */
			}
			pthread_cond_timedwait(&g->qcond, &g->qlock, &until);
		}
	}
	pthread_mutex_unlock(&g->qlock);
	return NULL;
}

int gw_queue_start(gateway_t *g)
{
	gw_relay_opts_t ro;
	int rc;

	memset(&ro, 0, sizeof ro);
	ro.hostname = g->hostname;
	ro.connect_timeout_ms = g->o.relay_connect_timeout_ms;
	ro.command_timeout_ms = g->o.relay_command_timeout_ms;
	ro.data_timeout_ms = g->o.relay_data_timeout_ms;
	ro.max_per_host = g->o.relay_max_per_host;
	ro.dns_server = g->o.dns_server && g->o.dns_server[0] ?
	    g->o.dns_server : NULL;
	if ((rc = gw_relay_new(&g->relay, &ro)))
		return rc;
	g->nqueue = g->o.queue_workers > 0 ? g->o.queue_workers : 4;
	if (!(g->queue_threads = calloc((size_t)g->nqueue,
	    sizeof *g->queue_threads)))
		return AR_ENOMEM;
	for (int i = 0; i < g->nqueue; i++)
		if (pthread_create(&g->queue_threads[i], NULL, queue_main, g)) {
			g->nqueue = i;
			return AR_ENOMEM;
		}
	return 0;
}

void gw_queue_wake(gateway_t *g)
{
	pthread_mutex_lock(&g->qlock);
	g->qwake = 1;
	pthread_cond_broadcast(&g->qcond);
	pthread_mutex_unlock(&g->qlock);
}

void gw_queue_stop(gateway_t *g)
{
	pthread_mutex_lock(&g->qlock);
	g->qstopping = 1;
	pthread_cond_broadcast(&g->qcond);
	pthread_mutex_unlock(&g->qlock);
	for (int i = 0; i < g->nqueue; i++)
		pthread_join(g->queue_threads[i], NULL);
	pthread_mutex_lock(&g->qlock);
	if (g->removed_unsynced)     /* the last removals, durable */
		removals_sync(g);
	pthread_mutex_unlock(&g->qlock);
	free(g->queue_threads);
	g->queue_threads = NULL;
	g->nqueue = 0;
	gw_relay_free(g->relay);
	g->relay = NULL;
}
