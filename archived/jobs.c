/*
 * jobs.c - archived's scheduler thread.
 *
 * Every tick it asks the store to sign each tenant's log head whose last
 * checkpoint is older than checkpoint_interval (or which has
 * checkpoint_entries unsigned entries), so the log is signed at an
 * interval even when nothing else asks for it.  Every dispose_interval
 * (and at start) it runs disposition (jobs_dispose), moves terminated
 * tenants on when their windows end (jobs_tenant_advance), and wipes
 * cached subkeys of shredded tenants.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ar.h"
#include "daemon.h"
#include "jobs/jobs.h"

static int ckpt_tenant(void *arg, const store_tenant_t *t)
{
	struct daemon *d = arg;
	char hex[2 * STORE_TENANT_LEN + 1];
	int rc;

	if (t->state == STORE_TENANT_SHREDDED) {
		/* shredded by another process (archivectl): nothing derived
		 * from its keys stays in this process's cache */
		keysvc_cache_purge(d->ks, t->id);
		return 0;
	}
	/* the store knows the rule (entries or age since the last one) */
	if ((rc = store_log_checkpoint_due(d->st, t->id, NULL)))
		ar_log(AR_LOG_WARN, "tenant=%s job=checkpoint status=failed "
		    "reason=\"%s\"", ar_hex(t->id, STORE_TENANT_LEN, hex),
		    store_errmsg(d->st));
	return 0;
}

static void dispose_log(void *arg, const store_tenant_t *t,
    const uint8_t id[STORE_ID_LEN], const char *what)
{
	char hex[2 * STORE_ID_LEN + 1], th[2 * STORE_TENANT_LEN + 1];
	(void)arg;
	if (!strcmp(what, "held"))
		return;
	ar_log(strcmp(what, "disposed") ? AR_LOG_WARN : AR_LOG_INFO,
	    "id=%s tenant=%s job=dispose status=%s",
	    ar_hex(id, STORE_ID_LEN, hex), ar_hex(t->id, STORE_TENANT_LEN, th),
	    strcmp(what, "disposed") ? "failed" : "disposed");
}

struct life_ctx {
	struct daemon *d;
	search_t *idx;
	char cert_dir[4200];
};

static int life_tenant(void *arg, const store_tenant_t *t)
{
	struct life_ctx *l = arg;
	jobs_advance_params_t p;
	jobs_shred_result_t r;
	char hex[2 * STORE_TENANT_LEN + 1], err[512];
	int state, rc;

	ar_hex(t->id, STORE_TENANT_LEN, hex);
	if (t->state == STORE_TENANT_SHREDDED ||
	    t->state == STORE_TENANT_ACTIVE || !l->d->cfg.tenant_auto_advance)
		return 0;
	memset(&p, 0, sizeof p);
	p.st = l->d->st;
	p.idx = l->idx;
	p.tenant = t->name;
	p.cert_dir = l->cert_dir;
	rc = jobs_tenant_advance(&p, &state, &r, err, sizeof err);
	if (rc == 0)
		ar_log(AR_LOG_INFO, "tenant=%s job=lifecycle status=%s", hex,
		    jobs_state_name(state));
	else if (rc != AR_EAGAIN)
		ar_log(AR_LOG_WARN, "tenant=%s job=lifecycle status=blocked "
		    "reason=\"%s\"", hex, err);
	return 0;
}

/* The gateway's quarantine: what is past its tenant's quarantine_days
 * goes (a log entry each, in the tenant's log). */
static void quarantine_expire(struct daemon *d)
{
	uint64_t n = 0;
	int rc = store_quarantine_expire(d->st, ar_now(), &n);

	if (rc)
		ar_log(AR_LOG_WARN, "job=quarantine status=failed reason=\"%s\"",
		    store_errmsg(d->st));
	else if (n)
		ar_log(AR_LOG_INFO, "job=quarantine status=done expired=%llu",
		    (unsigned long long)n);
}

/* Disposition, tenant lifecycle and the quarantine's expiry, every
 * dispose_interval. */
static void records_jobs(struct daemon *d)
{
	jobs_dispose_params_t p;
	jobs_dispose_result_t r;
	search_open_params_t so;
	struct life_ctx l;
	char err[512];
	int rc;

	memset(&so, 0, sizeof so);
	so.data_dir = d->cfg.data_dir;
	so.ks = d->ks;
	memset(&l, 0, sizeof l);
	l.d = d;
	if (search_open(&l.idx, &so))
		l.idx = NULL;      /* query holds then cover (the safe side) */
	snprintf(l.cert_dir, sizeof l.cert_dir, "%s/certificates",
	    d->cfg.data_dir);
	store_tenant_walk(d->st, life_tenant, &l);
	memset(&p, 0, sizeof p);
	p.st = d->st;
	p.idx = l.idx;
	p.batch = (size_t)d->cfg.dispose_batch;
	p.cb = dispose_log;
	rc = jobs_dispose(&p, &r, err, sizeof err);
	if (rc)
		ar_log(AR_LOG_WARN, "job=dispose status=failed reason=\"%s\"",
		    err);
	else if (r.disposed || r.failed)
		ar_log(AR_LOG_INFO, "job=dispose status=done examined=%llu "
		    "disposed=%llu held=%llu failed=%llu",
		    (unsigned long long)r.examined,
		    (unsigned long long)r.disposed, (unsigned long long)r.held,
		    (unsigned long long)r.failed);
	if (l.idx)
		search_close(l.idx);
	quarantine_expire(d);
}

/* The daily quarantine digest, once today's slot (gateway_digest_time)
 * has come; the store remembers which slots are done. */
static void digest_job(struct daemon *d)
{
	gateway_digest_opts_t o;
	char url[AR_CONF_STR_MAX + 64];
	int64_t now = ar_now(), slot = now / 86400 * 86400 + d->digest_offset;
	size_t sent = 0;
	int rc;

	if (now < slot)
		return;
	memset(&o, 0, sizeof o);
	o.slot = slot;
	o.link_ttl = d->cfg.gateway_digest_link_ttl;
	pthread_mutex_lock(&d->digest_lock);
	if (d->cfg.gateway_digest_url[0]) {
		ar_strlcpy(url, d->cfg.gateway_digest_url, sizeof url);
		if (url[0] && url[strlen(url) - 1] == '/')
			url[strlen(url) - 1] = '\0';
	} else if (d->digest_web_port) {
		snprintf(url, sizeof url, "%s://%s:%u", d->cfg.web.tls ?
		    "https" : "http", d->cfg.gateway_hostname[0] ?
		    d->cfg.gateway_hostname : d->cfg.smtp.hostname[0] ?
		    d->cfg.smtp.hostname : "localhost", d->digest_web_port);
	} else if (d->cfg.web_listen[0]) {
		pthread_mutex_unlock(&d->digest_lock);
		return;                /* the console is starting: its port */
	} else {
		url[0] = '\0';
	}
	o.base_url = url;
	if (d->digest_gw) {
		rc = gateway_digest_run(d->digest_gw, &o, &sent);
		if (rc && rc != AR_EAGAIN)
			ar_log(AR_LOG_WARN, "job=digest status=failed "
			    "reason=\"%s\"", ar_strerror(rc));
		else if (sent || rc)
			ar_log(AR_LOG_INFO, "job=digest status=%s queued=%zu",
			    rc ? "partial" : "done", sent);
	}
	pthread_mutex_unlock(&d->digest_lock);
}

static void *jobs_main(void *arg)
{
	struct daemon *d = arg;
	int64_t tick = d->cfg.checkpoint_interval < 60 ?
	    d->cfg.checkpoint_interval : 60;
	int64_t last_records = 0;

	pthread_setname_np(pthread_self(), "ar-jobs");
	if (d->cfg.dispose_interval < tick)
		tick = d->cfg.dispose_interval;
	pthread_mutex_lock(&d->jobs_lock);
	while (!d->stopping) {
		struct timespec until;
		pthread_mutex_unlock(&d->jobs_lock);
		store_tenant_walk(d->st, ckpt_tenant, d);
		digest_job(d);
		if (!last_records || ar_now() - last_records >=
		    d->cfg.dispose_interval || ar_now() < last_records) {
			last_records = ar_now();
			records_jobs(d);
		}
		pthread_mutex_lock(&d->jobs_lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += tick;
		while (!d->stopping && pthread_cond_timedwait(&d->jobs_cond,
		    &d->jobs_lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&d->jobs_lock);
	return NULL;
}

int jobs_start(struct daemon *d)
{
	pthread_mutex_init(&d->digest_lock, NULL);
	pthread_mutex_init(&d->jobs_lock, NULL);
	pthread_cond_init(&d->jobs_cond, NULL);
	if (pthread_create(&d->jobs_thread, NULL, jobs_main, d))
		return AR_ENOMEM;
	return 0;
}

void jobs_stop(struct daemon *d)
{
	pthread_mutex_lock(&d->jobs_lock);
	d->stopping = 1;
	pthread_cond_broadcast(&d->jobs_cond);
	pthread_mutex_unlock(&d->jobs_lock);
	pthread_join(d->jobs_thread, NULL);
	pthread_mutex_destroy(&d->jobs_lock);
	pthread_cond_destroy(&d->jobs_cond);
	pthread_mutex_destroy(&d->digest_lock);
}
