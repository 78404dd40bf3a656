/*
 * ingest.h - how mail enters the archive: importers (eml, mbox, maildir)
 * and the header summary kept, encrypted, in the catalog.  The SMTP engine
 * (smtp_server.h) and journal unwrapping (journal.h) are this module's
 * other entry points.
 */
#ifndef INGEST_H
#define INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* One message inside a file: bytes [offset, offset + length). */
enum ingest_kind { INGEST_EML, INGEST_MBOX, INGEST_MAILDIR };

typedef struct ingest_source {
	const char *path;
	uint64_t offset, length;
	enum ingest_kind kind;
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

/*
 * JSON text summarising a message's header (subject, from, to, cc, date,
 * message_id), from at most the first len bytes of the message; RFC 2047
 * words decoded to UTF-8.  *parsed is 0 when no header could be read.
 * Returns a malloc'd string the caller frees (never NULL unless out of
 * memory).  extra (may be NULL) is a JSON object text whose members are
 * added (e.g. the source).
 */
char *ingest_header_summary(const unsigned char *buf, size_t len,
    const char *extra, int *parsed);

/* --- archivectl import -------------------------------------------------- */

typedef struct ingest_import_stats {
	uint64_t messages, stored, duplicates, failed, bytes;
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
} ingest_import_opts_t;

/*
 * Import every message under paths into tenant t.  A message already
 * stored for the tenant is counted as a duplicate (and logged as an
 * arrival).  Stops at the first error that would fail every further
 * message (key service unavailable, disk full) and returns it; returns 0
 * when every message was stored or was already there.
 * errbuf receives a one-line reason on failure.
 */
int ingest_import(store_t *st, const store_tenant_t *t,
    const char *const *paths, size_t npaths, const ingest_import_opts_t *o,
    ingest_import_stats_t *stats, char *err, size_t errlen);

#endif
