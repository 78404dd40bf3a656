/*
 * jobs.c - archived's scheduler thread.
 *
 * Every tick it asks the store to sign each tenant's log head whose last
 * checkpoint is older than checkpoint_interval (or which has
 * checkpoint_entries unsigned entries), so the log is signed at an
 * interval even when nothing else asks for it.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ar.h"
#include "daemon.h"

static int ckpt_tenant(void *arg, const store_tenant_t *t)
{
	struct daemon *d = arg;
	char hex[2 * STORE_TENANT_LEN + 1];
	int rc;

	if (t->state == STORE_TENANT_SHREDDED)
		return 0;
	/* the store knows the rule (entries or age since the last one) */
	if ((rc = store_log_checkpoint_due(d->st, t->id, NULL)))
		ar_log(AR_LOG_WARN, "tenant=%s job=checkpoint status=failed "
		    "reason=\"%s\"", ar_hex(t->id, STORE_TENANT_LEN, hex),
		    store_errmsg(d->st));
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
