/*
 * jobs.c - archived's scheduler thread.
 *
 * Every tick it signs each tenant's log head whose last checkpoint is
 * older than checkpoint_interval (or which has checkpoint_entries unsigned
 * entries), so the log is signed at an interval even when nothing else
 * asks for it.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ar.h"
#include "daemon.h"

static int ckpt_tenant(void *arg, const store_tenant_t *t)
{
	struct daemon *d = arg;
	store_tenant_stats_t s;
	char hex[2 * STORE_TENANT_LEN + 1];
	int rc;

	if (t->state == STORE_TENANT_SHREDDED)
		return 0;
	/* store_log_checkpoint signs only when there is something new; the
	 * interval check keeps it from signing every tick */
	if ((rc = store_tenant_stats(d->st, t->id, &s)))
		return 0;
	if (s.log_entries == s.last_checkpoint_seq)
		return 0;
	if (ar_now() - s.last_checkpoint_time < d->cfg.checkpoint_interval &&
	    s.log_entries - s.last_checkpoint_seq <
	    (uint64_t)d->cfg.checkpoint_entries)
		return 0;
	rc = store_log_checkpoint(d->st, t->id, NULL);
	ar_log(rc ? AR_LOG_WARN : AR_LOG_INFO, "tenant=%s job=checkpoint "
	    "status=%s%s%s", ar_hex(t->id, STORE_TENANT_LEN, hex),
	    rc ? "failed" : "ok", rc ? " reason=" : "",
	    rc ? store_errmsg(d->st) : "");
	return 0;
}

static void *jobs_main(void *arg)
{
	struct daemon *d = arg;
	int64_t tick = d->cfg.checkpoint_interval < 60 ?
	    d->cfg.checkpoint_interval : 60;

	pthread_mutex_lock(&d->jobs_lock);
	while (!d->stopping) {
		struct timespec until;
		pthread_mutex_unlock(&d->jobs_lock);
		store_tenant_walk(d->st, ckpt_tenant, d);
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
}
