/*
 * indexer.c - archived's indexer thread: keeps every tenant's search
 * index in step with the store (search_sync follows each tenant's log).
 *
 * At start it reconciles every tenant (an index can lose its last
 * transactions in a power cut; objects stored while no indexer ran are
 * found).  Then it follows the logs: woken by the pipeline after each
 * committed batch, and every INDEX_TICK seconds anyway (archivectl import
 * commits from another process and indexes itself; the tick catches
 * anything it left).  Each tenant gets a turn of at most INDEX_TURN log
 * entries, then the next: a tenant that keeps receiving cannot hold the
 * others' indexes back, and every turn logs its progress.  While a
 * tenant's oldest unindexed change is older than index_warn_age, a
 * warning says so once a minute, or every index_warn_age when shorter
 * (the same lag is in archivectl stats).  After each round the time of
 * the oldest change still waiting, over every tenant, is in
 * d->index_oldest: the SMTP receiver's index_max_lag back-pressure.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ar.h"
#include "daemon.h"

#define INDEX_TICK 5
#define INDEX_TURN 4096          /* log entries per tenant per turn */
#define INDEX_WARN_EVERY 60      /* seconds between lag checks (at most) */

/* The state of one round over the tenants. */
typedef struct round {
	struct daemon *d;
	int more;                /* a tenant stopped at its turn's bound */
	int check_lag;           /* this round compares lags with the limit */
	int64_t oldest;          /* the oldest change left waiting (0: none) */
} round_t;

/*
 * A tenant whose turn left changes waiting (or failed): its oldest change
 * counts toward the round's (index_max_lag), and with warn, on a round
 * that checks lags, it is logged past index_warn_age.  One read of the
 * first entry after the mark and of the log head (search_lag_oldest), not
 * a walk of the whole lag (search_lag's: archivectl stats counts
 * exactly).
 */
static void lag_left(round_t *r, const store_tenant_t *t, const char *hex,
    int warn)
{
	struct daemon *d = r->d;
	uint64_t waiting;
	int64_t oldest, age;

	if (search_lag_oldest(d->idx, d->st, t->id, &oldest, &waiting) ||
	    !oldest)
		return;
	if (!r->oldest || oldest < r->oldest)
		r->oldest = oldest;
	if (!warn || !r->check_lag || d->cfg.index_warn_age <= 0)
		return;
	age = (int64_t)time(NULL) - oldest;
	if (age >= d->cfg.index_warn_age)
		ar_log(AR_LOG_WARN, "tenant=%s job=index status=lagging "
		    "unindexed=%llu oldest_age_s=%lld limit_s=%lld "
		    "msg=\"the index is not keeping up: search misses mail "
		    "archived in the last %lld s\"", hex,
		    (unsigned long long)waiting, (long long)age,
		    (long long)d->cfg.index_warn_age, (long long)age);
}

static int index_tenant(void *arg, const store_tenant_t *t)
{
	round_t *r0 = arg;
	struct daemon *d = r0->d;
	char hex[2 * STORE_TENANT_LEN + 1];
	int64_t t0 = ar_mono_us();
	int rc;

	if (t->state == STORE_TENANT_SHREDDED)
		return 0;
	ar_hex(t->id, STORE_TENANT_LEN, hex);
	if (!d->index_reconciled) {
		search_reconcile_stats_t r;
		if ((rc = search_reconcile(d->idx, d->st, t->id, &r)))
			goto failed;
		if (r.missing || r.extra)
			ar_log(AR_LOG_INFO, "tenant=%s job=reconcile missing=%llu "
			    "extra=%llu dur_ms=%lld", hex,
			    (unsigned long long)r.missing,
			    (unsigned long long)r.extra,
			    (long long)(ar_mono_us() - t0) / 1000);
		return 0;
	}
	search_sync_stats_t s;
	if ((rc = search_sync_bounded(d->idx, d->st, t->id, 0, INDEX_TURN,
	    &s)))
		goto failed;
	if (s.indexed || s.removed)
		ar_log(AR_LOG_INFO, "tenant=%s job=index indexed=%llu removed=%llu "
		    "unreadable=%llu seq=%llu more=%s dur_ms=%lld", hex,
		    (unsigned long long)s.indexed, (unsigned long long)s.removed,
		    (unsigned long long)s.failed, (unsigned long long)s.seq,
		    s.more ? "yes" : "no",
		    (long long)(ar_mono_us() - t0) / 1000);
	if (s.more) {
		r0->more = 1;
		lag_left(r0, t, hex, 1);
	}
	return 0;
failed:
	ar_log(AR_LOG_WARN, "tenant=%s job=index status=failed reason=\"%s\"",
	    hex, search_errmsg(d->idx));
	if (d->index_reconciled)
		lag_left(r0, t, hex, 0);
	return 0;
}

static void *indexer_main(void *arg)
{
	struct daemon *d = arg;
	int64_t lag_checked = ar_mono_us();
	int64_t every = d->cfg.index_warn_age < INDEX_WARN_EVERY ?
	    d->cfg.index_warn_age : INDEX_WARN_EVERY;

	/* the extraction threads search_sync starts inherit the nice value */
	ar_thread_setup("ar-indexer", (int)d->cfg.index_nice);

	pthread_mutex_lock(&d->index_lock);
	while (!d->index_stopping) {
		struct timespec until;
		round_t r = { .d = d };
		d->index_wake = 0;
		pthread_mutex_unlock(&d->index_lock);
		if (ar_mono_us() - lag_checked >= every * 1000000LL) {
			r.check_lag = 1;
			lag_checked = ar_mono_us();
		}
		store_tenant_walk(d->st, index_tenant, &r);
		if (d->index_reconciled)
			atomic_store(&d->index_oldest, r.oldest);
		/* the catalog pages every thread read meanwhile: out of our
		 * resident size (they stay in the page cache) */
		store_catalog_trim(d->st);
		pthread_mutex_lock(&d->index_lock);
		if (!d->index_reconciled)
			r.more = 1;        /* now follow the logs at once */
		d->index_reconciled = 1;
		if (r.more)
			continue;          /* the next turn, without waiting */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += INDEX_TICK;
		while (!d->index_stopping && !d->index_wake &&
		    pthread_cond_timedwait(&d->index_cond, &d->index_lock,
		    &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&d->index_lock);
	return NULL;
}

int indexer_start(struct daemon *d)
{
	search_open_params_t p;
	int rc;

	memset(&p, 0, sizeof p);
	p.data_dir = d->cfg.data_dir;
	p.ks = d->ks;
	p.shard_cache = (size_t)d->cfg.index_shard_cache;
	p.open_shards = (int)d->cfg.index_open_shards;
	p.batch_bytes = (size_t)d->cfg.index_batch_bytes;
	p.body_max = (size_t)d->cfg.index_body_max;
	p.terms_max = (size_t)d->cfg.index_terms_max;
	p.language = SEARCH_LANGUAGE_DEFAULT;
	if ((rc = search_open(&d->idx, &p))) {
		ar_log(AR_LOG_ERR, "index error=\"%s\"", search_errmsg(NULL));
		return rc;
	}
	pthread_mutex_init(&d->index_lock, NULL);
	pthread_cond_init(&d->index_cond, NULL);
	if (pthread_create(&d->index_thread, NULL, indexer_main, d))
		return AR_ENOMEM;
	d->index_running = 1;
	return 0;
}

void indexer_wake(struct daemon *d)
{
	pthread_mutex_lock(&d->index_lock);
	d->index_wake = 1;
	pthread_cond_broadcast(&d->index_cond);
	pthread_mutex_unlock(&d->index_lock);
}

void indexer_stop(struct daemon *d)
{
	if (d->index_running) {
		pthread_mutex_lock(&d->index_lock);
		d->index_stopping = 1;
		pthread_cond_broadcast(&d->index_cond);
		pthread_mutex_unlock(&d->index_lock);
		pthread_join(d->index_thread, NULL);
		pthread_mutex_destroy(&d->index_lock);
		pthread_cond_destroy(&d->index_cond);
		d->index_running = 0;
	}
	search_close(d->idx);
	d->idx = NULL;
}
