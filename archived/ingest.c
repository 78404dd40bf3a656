/*
 * ingest.c - archived's ingest threads: the SMTP receiver (one event-loop
 * thread plus its finishers) and the pipeline draining the spool.
 */
#include <string.h>
#include <sys/stat.h>

#include "ar.h"
#include "daemon.h"
#include "mime/mime.h"

static void spooled(void *arg)
{
	struct daemon *d = arg;
	if (d->pipeline)
		ingest_pipeline_wake(d->pipeline);
}

/* the receiver's index_max_lag: as of the indexer's last round */
static int64_t index_oldest(void *arg)
{
	struct daemon *d = arg;
	return atomic_load(&d->index_oldest);
}

/* a batch reached the catalog: the indexer follows */
static void committed(void *arg)
{
	indexer_wake(arg);
}

static void *smtp_main(void *arg)
{
	struct daemon *d = arg;
	int rc;

	pthread_setname_np(pthread_self(), "ar-smtp");
	rc = ingest_receiver_run(d->receiver);
	if (rc)
		ar_log(AR_LOG_ERR, "smtp status=stopped error=\"%s\"",
		    ar_strerror(rc));
	return NULL;
}

static int file_exists(const char *p)
{
	struct stat st;
	return p[0] && stat(p, &st) == 0;
}

void smtp_tls_default(const struct ar_config *c, struct smtp_config *smtp)
{
	/* STARTTLS uses the instance certificate unless SMTP has its own */
	if (!smtp->tls_cert[0] && file_exists(c->tls_cert) &&
	    file_exists(c->tls_key)) {
		ar_strlcpy(smtp->tls_cert, c->tls_cert, sizeof smtp->tls_cert);
		ar_strlcpy(smtp->tls_key, c->tls_key, sizeof smtp->tls_key);
	}
}

int ingest_start(struct daemon *d)
{
	struct smtp_config smtp = d->cfg.smtp;
	ingest_pipeline_opts_t po;
	ingest_receiver_opts_t ro;
	char path[AR_CONF_STR_MAX + 16], err[512];
	int rc;

	mime_init();
	ar_config_path(&d->cfg, "spool", path, sizeof path);
	if ((rc = spool_open(&d->spool, path, d->ks))) {
		ar_log(AR_LOG_ERR, "spool dir=%s error=\"%s\"", path,
		    spool_errmsg());
		return rc;
	}
	memset(&po, 0, sizeof po);
	po.workers = (int)d->cfg.pipeline_workers;
	po.batch = (int)d->cfg.pipeline_batch;
	po.nice = (int)d->cfg.pipeline_nice;
	po.defer = (int)d->cfg.pipeline_defer;
	po.backlog_warn = (int)d->cfg.spool_warn_age;
	po.committed = committed;
	po.committed_arg = d;
	if (po.workers == 0)
		ar_log(AR_LOG_WARN, "pipeline workers=0 status=disabled "
		    "note=\"mail is spooled, not archived, until a restart "
		    "with pipeline_workers > 0\"");
	else if ((rc = ingest_pipeline_start(&d->pipeline, d->st, d->spool,
	    &po)))
		return rc;
	smtp_tls_default(&d->cfg, &smtp);
	memset(&ro, 0, sizeof ro);
	ro.finishers = (int)d->cfg.smtp_finishers;
	ro.max_backlog_age = d->cfg.spool_max_age;
	ro.max_backlog_bytes = (uint64_t)d->cfg.spool_max_bytes;
	ro.max_backlog_entries = (uint64_t)d->cfg.spool_max_entries;
	ro.spooled = spooled;
	ro.spooled_arg = d;
	ro.max_index_lag = d->cfg.index_max_lag;
	ro.index_oldest = index_oldest;
	ro.index_arg = d;
	if ((rc = ingest_receiver_new(&d->receiver, d->st, d->spool, &smtp,
	    &ro, err, sizeof err))) {
		ar_log(AR_LOG_ERR, "smtp error=\"%s\"", err);
		return rc;
	}
	if ((rc = ingest_receiver_listen(d->receiver, d->cfg.smtp_listen,
	    &d->smtp_port, err, sizeof err))) {
		ar_log(AR_LOG_ERR, "smtp error=\"%s\"", err);
		return rc;
	}
	if (pthread_create(&d->smtp_thread, NULL, smtp_main, d))
		return AR_ENOMEM;
	d->smtp_running = 1;
	ar_log(AR_LOG_INFO, "smtp listen=%s port=%u starttls=%s status=ready",
	    d->cfg.smtp_listen, d->smtp_port, smtp.tls_cert[0] ? "yes" : "no");
	return 0;
}

void ingest_stop(struct daemon *d)
{
	if (d->smtp_running) {
		ingest_receiver_stop(d->receiver);
		pthread_join(d->smtp_thread, NULL);
		d->smtp_running = 0;
	}
	/* answers every message still being made durable */
	ingest_receiver_free(d->receiver);
	d->receiver = NULL;
	ingest_pipeline_stop(d->pipeline);
	d->pipeline = NULL;
	spool_close(d->spool);
	d->spool = NULL;
}
