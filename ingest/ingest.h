/*
 * ingest.h - how journal mail enters the archive: importers (eml, mbox,
 * maildir), the journal receiver (the SMTP engine, smtp/smtp.h, with
 * archived's callbacks) and the pipeline draining the spool (spool/spool.h)
 * into the store.  Journal unwrapping (journal.h) is private to it.
 */
#ifndef INGEST_H
#define INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct smtp_config;
typedef struct spool spool_t;

/* One message inside a file: bytes [offset, offset + length). */
enum ingest_kind { INGEST_EML, INGEST_MBOX, INGEST_MAILDIR };

typedef struct ingest_source {
	const char *path;
	uint64_t offset, length;
	enum ingest_kind kind;
	/* NULL when the bytes begin with an RFC 5322 header block (every
	 * line up to the first empty one a "Name: value" field or its
	 * continuation; an mbox "From " line may come first), else why not
	 * (a static string), e.g. a .tsv or a README among the mail. */
	const char *problem;
} ingest_source_t;

typedef int (*ingest_source_cb)(void *arg, const ingest_source_t *src);

/*
 * Every message under path: a single-message file (.eml, or any file not
 * starting with an mbox "From " line), an mbox file (split on "From "
 * lines; the separator line and the blank line before the next one are
 * not part of a message, nothing else is changed), a maildir (files in
 * cur/ and new/), or a directory of these (walked in name order).  A
 * non-zero return of cb stops the walk and is returned.  Errors name the
 * path in err.
 */
int ingest_sources(const char *path, ingest_source_cb cb, void *arg,
    char *err, size_t errlen);

/* --- archivectl import -------------------------------------------------- */

typedef struct ingest_import_stats {
	uint64_t messages, stored, duplicates, failed, bytes;
	uint64_t skipped;         /* sources that are not messages (not in
	                             messages) */
	int64_t elapsed_us;
	/* Per message, from the start of its sealing to the commit of its
	 * batch (when it is durable in the catalog): percentiles in us. */
	int64_t latency_p50_us, latency_p99_us, latency_max_us;
} ingest_import_stats_t;

typedef struct ingest_import_opts {
	int threads;              /* sealing threads */
	int batch;                /* messages per catalog transaction */
	/* Called after each committed batch (may be NULL). */
	void (*progress)(void *arg, const ingest_import_stats_t *s);
	void *progress_arg;
	/* Called for each message that could not be stored (may be NULL). */
	void (*failure)(void *arg, const ingest_source_t *src, int status,
	    const char *why);
	void *failure_arg;
	/* 0: a source that is not a message (src->problem) is skipped and
	 * counted, and skipped() is called for it (may be NULL); 1: it is
	 * stored like any other, flagged unparsed. */
	int force;
	void (*skipped)(void *arg, const ingest_source_t *src);
	void *skipped_arg;
} ingest_import_opts_t;

/*
 * Import every message under paths into tenant t.  A message already
 * stored for the tenant is counted as a duplicate (and logged as an
 * arrival).  Stops at the first error that would fail every further
 * message (key service unavailable, disk full) and returns it; returns 0
 * when every message was stored or was already there (sources skipped as
 * not messages are counted in stats->skipped, not as failures).
 * errbuf receives a one-line reason on failure.
 */
int ingest_import(store_t *st, const store_tenant_t *t,
    const char *const *paths, size_t npaths, const ingest_import_opts_t *o,
    ingest_import_stats_t *stats, char *err, size_t errlen);

/* --- the SMTP receiver (receive.c) ------------------------------------------
 *
 * The SMTP engine (smtp/smtp.h) with archived's callbacks: tenant by
 * journal address and its policy at RCPT, one spool entry per tenant during
 * DATA, fsync on one of `finishers` threads before 250.  spooled(arg) is
 * called after each message made durable (to wake the pipeline).
 *
 * Back-pressure: while the spool's drain queue (spool.h) is over one of
 * the max_backlog_* limits, MAIL FROM is answered 451 4.3.2 (the sender
 * retries later) and a warning is logged every 10 s: the spool never grows
 * to the disk's end because the drain cannot keep up or is stopped.  The
 * same while index_oldest(arg) (the time of the oldest change not yet in
 * a search index, 0: none) is max_index_lag seconds old or more: mail is
 * searchable within about that long of its 250.
 */
typedef struct ingest_receiver ingest_receiver_t;

typedef struct ingest_receiver_opts {
	int finishers;                /* threads making messages durable */
	int64_t  max_backlog_age;     /* s, oldest entry not tried; 0: none */
	uint64_t max_backlog_bytes;   /* of entries not drained; 0: none */
	uint64_t max_backlog_entries; /* entries not drained; 0: none */
	void (*spooled)(void *arg);   /* may be NULL */
	void *spooled_arg;
	int64_t max_index_lag;        /* s; 0: none */
	int64_t (*index_oldest)(void *arg);   /* NULL: no index limit */
	void *index_arg;
} ingest_receiver_opts_t;

int ingest_receiver_new(ingest_receiver_t **out, store_t *st, spool_t *sp,
    const struct smtp_config *cfg, const ingest_receiver_opts_t *o,
    char *err, size_t errlen);
/* "host:port" ("[v6]:port"); port 0 picks a free one (*bound_port). */
int ingest_receiver_listen(ingest_receiver_t *rv, const char *hostport,
    unsigned *bound_port, char *err, size_t errlen);
/* Serve until ingest_receiver_stop (from another thread or a signal). */
int ingest_receiver_run(ingest_receiver_t *rv);
void ingest_receiver_stop(ingest_receiver_t *rv);
/* Answers every message still being made durable, then frees. */
void ingest_receiver_free(ingest_receiver_t *rv);

/* --- the pipeline (pipeline.c): spool -> unwrap -> store ------------------- */

typedef struct ingest_pipeline ingest_pipeline_t;

typedef struct ingest_pipeline_opts {
	int workers;          /* threads */
	int batch;            /* spool entries per catalog transaction */
	int nice;             /* nice value of the threads (0..19) */
	/* seconds draining waits while messages keep arriving (receiving
	 * first), at most, for any entry; 0: never waits */
	int defer;
	/* seconds: a backlog whose oldest entry waited this long is logged
	 * as a warning (the drain is not keeping up); 0: never */
	int backlog_warn;
	/* Called after each batch committed to the catalog (may be NULL):
	 * archived wakes its indexer. */
	void (*committed)(void *arg);
	void *committed_arg;
} ingest_pipeline_opts_t;

/* Start draining sp into st (from its drain queue, spool.h); every entry
 * already spooled (after a crash) is drained first.  Failed entries are
 * retried after 30 s, doubling up to 1 h. */
int ingest_pipeline_start(ingest_pipeline_t **out, store_t *st, spool_t *sp,
    const ingest_pipeline_opts_t *o);
/* A message was spooled: look now rather than at the next tick (or, with
 * opts.defer, note that receiving goes on). */
void ingest_pipeline_wake(ingest_pipeline_t *p);
/* Messages stored, arrivals of stored ones, failed attempts, so far. */
void ingest_pipeline_counts(ingest_pipeline_t *p, uint64_t *stored,
    uint64_t *duplicates, uint64_t *failed);
/* Finish the batches in hand and stop; entries left stay spooled. */
void ingest_pipeline_stop(ingest_pipeline_t *p);

#endif
