/*
 * daemon.h - private to archived/: the running daemon's shared state and
 * its threads.  Each thread has a start/stop pair; main() wires them.
 */
#ifndef ARCHIVED_DAEMON_H
#define ARCHIVED_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>

#include "archived/config.h"
#include "gateway/gateway.h"
#include "ingest/ingest.h"
#include "spool/spool.h"
#include "keysvc/keysvc.h"
#include "search/search.h"
#include "store/store.h"
#include "web/web.h"

struct daemon {
	struct ar_config cfg;
	keysvc_t *ks;
	store_backend_t *be;
	store_t *st;
	/* jobs thread (jobs.c) */
	pthread_t jobs_thread;
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cond;
	int stopping;
	/* the gateway, for the digest job: set and cleared under digest_lock,
	 * which the job holds while it runs */
	pthread_mutex_t digest_lock;
	gateway_t *digest_gw;
	unsigned digest_web_port;    /* the console's, for the links (0: none) */
	int64_t digest_offset;       /* gateway_digest_time, s after 00:00 */
	/* ingest (ingest.c) */
	spool_t *spool;
	ingest_pipeline_t *pipeline;
	ingest_receiver_t *receiver;
	pthread_t smtp_thread;
	int smtp_running;
	unsigned smtp_port;
	/* the filtering gateway (gateway.c) */
	spool_t *relay;
	gateway_t *gateway;
	pthread_t gateway_thread;
	int gateway_running;
	unsigned gateway_port;
	/* indexer thread (indexer.c) */
	search_t *idx;
	pthread_t index_thread;
	pthread_mutex_t index_lock;
	pthread_cond_t index_cond;
	int index_running, index_stopping, index_wake, index_reconciled;
	_Atomic int64_t index_oldest;   /* time of the oldest change not in
	                                   the index, any tenant, as of the
	                                   last round (0: none) */
	/* web console and API (web.c) */
	search_t *web_search;
	web_t *web;
};

/* SMTP receiver, spool and pipeline: start listening and draining. */
int ingest_start(struct daemon *d);
void ingest_stop(struct daemon *d);

/* The SMTP engine's STARTTLS certificate: the instance's unless SMTP has
 * its own (both listeners). */
void smtp_tls_default(const struct ar_config *c, struct smtp_config *smtp);
/* The filtering gateway (when gateway_listen is set); after ingest_start
 * (it feeds the ingest spool), stopped before ingest_stop. */
int gateway_glue_start(struct daemon *d);
void gateway_glue_stop(struct daemon *d);

/* The indexer: reconciles every tenant's index at start, then follows
 * their logs; indexer_wake after a catalog commit.  Start it before
 * ingest (the pipeline wakes it), stop it after. */
int indexer_start(struct daemon *d);
void indexer_wake(struct daemon *d);
void indexer_stop(struct daemon *d);
/* The console and JSON API (when web_listen is set). */
int web_glue_start(struct daemon *d);
void web_glue_stop(struct daemon *d);

/* The scheduler: signed checkpoints at their interval (and, as features
 * arrive, retention and other periodic jobs). */
int jobs_start(struct daemon *d);
void jobs_stop(struct daemon *d);

#endif
