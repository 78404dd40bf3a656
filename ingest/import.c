/*
 * import.c - archivectl import: seal messages from files with several
 * threads (their fsyncs overlap) and commit them to the catalog in
 * batches, one LMDB transaction each.
 *
 * Memory: the sources are found a batch at a time while they are
 * imported (a first walk only checks them, so that bad input fails before
 * anything is stored); latencies go into a histogram.  What the import
 * holds does not grow with the number of messages.
 *
 * Crash safety: a batch is in the catalog entirely or not at all.  Objects
 * sealed by a batch that never committed are orphans; running the import
 * again stores those messages anew, and messages already committed are
 * recognised by the dedup index, so each message is present exactly once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ar.h"
#include "ingest/ingest.h"
#include "mime/mime.h"

#define HEADER_PEEK (64 * 1024)

/* Latency histogram: 64 buckets per power of two (1.6% wide), exact
 * below 64 us, up to 2^40 us. */
#define LAT_SUB_BITS 6
#define LAT_SUB (1 << LAT_SUB_BITS)
#define LAT_BUCKETS (41 * LAT_SUB)

struct src {
	size_t path;            /* index into paths */
	uint64_t offset, length;
};

struct import {
	store_t *st;
	const store_tenant_t *t;
	const ingest_import_opts_t *o;
	ingest_import_stats_t *stats;
	int64_t t0;
	char *err;
	size_t errlen;
	/* the sources of the next batch (at most batch) and their paths */
	char **paths;
	size_t npaths, pcap;
	struct src *srcs;
	size_t n, cap, batch;
	uint64_t skipped;       /* sources that are not messages */
	/* the batch being worked on */
	store_batch_t *batch_st;
	size_t first, last;     /* sources [first, last) */
	atomic_size_t next;
	size_t *slots;          /* per source of the batch; SIZE_MAX: failed */
	int *status;
	int64_t *started;       /* per source of the batch: sealing began */
	uint64_t lat[LAT_BUCKETS];  /* latencies so far (histogram) */
	uint64_t nlat;
	int64_t lat_max;
	atomic_int fatal;       /* first error that fails everything */
	pthread_mutex_t lock;
	char fatal_msg[512];
};

static size_t lat_bucket(int64_t us)
{
	uint64_t v = us < 1 ? 1 : (uint64_t)us;
	int e = 63 - __builtin_clzll(v);
	if (e < LAT_SUB_BITS)
		return (size_t)v;
	size_t b = (size_t)(e - LAT_SUB_BITS + 1) * LAT_SUB +
	    (size_t)((v >> (e - LAT_SUB_BITS)) & (LAT_SUB - 1));
	return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

/* The smallest latency of bucket b. */
static int64_t lat_value(size_t b)
{
	if (b < LAT_SUB)
		return (int64_t)b;
	int e = (int)(b / LAT_SUB) + LAT_SUB_BITS - 1;
	return (int64_t)((LAT_SUB + b % LAT_SUB) << (e - LAT_SUB_BITS));
}

static void lat_add(struct import *im, int64_t us)
{
	im->lat[lat_bucket(us)]++;
	im->nlat++;
	if (us > im->lat_max)
		im->lat_max = us;
}

/* The latency of rank k (0-based) in increasing order. */
static int64_t lat_rank(const struct import *im, uint64_t k)
{
	uint64_t cum = 0;
	for (size_t b = 0; b < LAT_BUCKETS; b++)
		if ((cum += im->lat[b]) > k)
			return lat_value(b) < im->lat_max ? lat_value(b) :
			    im->lat_max;
	return im->lat_max;
}

static int run_batch(struct import *im, ingest_import_stats_t *stats);

/* Import the sources collected so far as one batch; then forget them,
 * but for the last path (an mbox goes on). */
static int flush(struct import *im)
{
	int rc;

	im->first = 0;
	im->last = im->n;
	if ((rc = run_batch(im, im->stats))) {
		snprintf(im->err, im->errlen, "%s", store_errmsg(im->st));
		return rc;
	}
	/* the catalog pages the batch read: out of our resident size */
	store_catalog_trim(im->st);
	im->stats->elapsed_us = ar_mono_us() - im->t0;
	if (im->o->progress)
		im->o->progress(im->o->progress_arg, im->stats);
	if ((rc = atomic_load(&im->fatal))) {
		snprintf(im->err, im->errlen, "%s", im->fatal_msg);
		return rc;
	}
	im->n = 0;
	if (im->npaths > 1) {
		for (size_t i = 0; i + 1 < im->npaths; i++)
			free(im->paths[i]);
		im->paths[0] = im->paths[im->npaths - 1];
		im->npaths = 1;
	}
	return 0;
}

/* First walk: the sources are there and readable. */
static int check(void *arg, const ingest_source_t *s)
{
	(void)s;
	(*(uint64_t *)arg)++;
	return 0;
}

static int collect(void *arg, const ingest_source_t *s)
{
	struct import *im = arg;
	int rc;
	if (s->problem && !im->o->force) {
		im->skipped++;
		if (im->o->skipped)
			im->o->skipped(im->o->skipped_arg, s);
		return 0;
	}
	if (im->n == im->batch && (rc = flush(im)))
		return rc;
	if (im->npaths == 0 || strcmp(im->paths[im->npaths - 1], s->path)) {
		if (ar_grow((void **)&im->paths, &im->pcap, im->npaths,
		    sizeof *im->paths))
			return AR_ENOMEM;
		if (!(im->paths[im->npaths] = strdup(s->path)))
			return AR_ENOMEM;
		im->npaths++;
	}
	if (ar_grow((void **)&im->srcs, &im->cap, im->n, sizeof *im->srcs))
		return AR_ENOMEM;
	im->srcs[im->n].path = im->npaths - 1;
	im->srcs[im->n].offset = s->offset;
	im->srcs[im->n].length = s->length;
	im->n++;
	return 0;
}

struct reader {
	int fd;
	uint64_t off, end;
};

static int read_cb(void *arg, void *buf, size_t len, size_t *got)
{
	struct reader *r = arg;
	size_t want = len;
	ssize_t n;

	if (r->off >= r->end) {
		*got = 0;
		return 0;
	}
	if (want > r->end - r->off)
		want = (size_t)(r->end - r->off);
	do {
		n = pread(r->fd, buf, want, (off_t)r->off);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return AR_EIO;
	if (n == 0)
		return AR_ETRUNC;      /* the file shrank under us */
	r->off += (uint64_t)n;
	*got = (size_t)n;
	return 0;
}

static void fail(struct import *im, size_t i, int rc, const char *why)
{
	const struct src *s = &im->srcs[i];
	ingest_source_t src = { im->paths[s->path], s->offset, s->length,
	    INGEST_EML, NULL };
	im->status[i - im->first] = rc;
	/* A failure that fails every message is reported once, at the end. */
	if (im->o->failure && rc != AR_EKEYSVC && rc != AR_ENOSPC)
		im->o->failure(im->o->failure_arg, &src, rc, why);
	if (rc == AR_EKEYSVC || rc == AR_ENOSPC) {
		int zero = 0;
		pthread_mutex_lock(&im->lock);
		if (atomic_compare_exchange_strong(&im->fatal, &zero, rc))
			ar_strlcpy(im->fatal_msg, why, sizeof im->fatal_msg);
		pthread_mutex_unlock(&im->lock);
	}
}

static void import_one(struct import *im, size_t i)
{
	const struct src *s = &im->srcs[i];
	const char *path = im->paths[s->path];
	unsigned char buf[HEADER_PEEK];
	struct reader r;
	store_ingest_t m;
	char why[600];
	size_t peek = 0, slot;
	int fd, parsed = 0, rc;

	im->started[i - im->first] = ar_mono_us();
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, sizeof why, "%s: %s", path, strerror(errno));
		fail(im, i, AR_EIO, why);
		return;
	}
	/* First pass: the SHA-256 for dedup, and the header to summarise. */
	r.fd = fd;
	r.off = s->offset;
	r.end = s->offset + s->length;
	memset(&m, 0, sizeof m);
	if ((rc = mime_digest(read_cb, &r, m.plain_sha256, buf, sizeof buf,
	    &peek))) {
		snprintf(why, sizeof why, "%s: %s", path, ar_strerror(rc));
		close(fd);
		fail(im, i, rc, why);
		return;
	}
	m.tenant = im->t;
	m.received = ar_now();
	m.meta = mime_header_summary(buf, peek, "{\"source\":\"import\"}",
	    &parsed);
	m.flags = parsed ? 0 : STORE_OBJ_UNPARSED;
	/* Second pass: the bytes themselves, into the sealed object. */
	r.off = s->offset;
	m.read = read_cb;
	m.read_arg = &r;
	rc = store_batch_add(im->batch_st, &m, &slot);
	free((char *)m.meta);
	close(fd);
	if (rc) {
		snprintf(why, sizeof why, "%s: %s", path,
		    store_errmsg(im->st));
		fail(im, i, rc, why);
		return;
	}
	im->slots[i - im->first] = slot;
}

static void *worker(void *arg)
{
	struct import *im = arg;

	pthread_setname_np(pthread_self(), "ar-import");
	for (;;) {
		size_t i = atomic_fetch_add(&im->next, 1);
		if (i >= im->last || atomic_load(&im->fatal))
			break;
		import_one(im, i);
	}
	return NULL;
}

static int run_batch(struct import *im, ingest_import_stats_t *stats)
{
	size_t nb = im->last - im->first;
	int threads = im->o->threads > 0 ? im->o->threads : 1;
	pthread_t tid[64];
	int started = 0, rc;

	if ((rc = store_batch_begin(im->st, &im->batch_st)))
		return rc;
	for (size_t i = 0; i < nb; i++) {
		im->slots[i] = SIZE_MAX;
		im->status[i] = 0;
	}
	atomic_store(&im->next, im->first);
	if (threads > 64)
		threads = 64;
	for (int t = 1; t < threads; t++)
		if (pthread_create(&tid[started], NULL, worker, im) == 0)
			started++;
	worker(im);
	for (int t = 0; t < started; t++)
		pthread_join(tid[t], NULL);

	rc = store_batch_commit(im->batch_st);
	if (rc == 0) {
		int64_t done = ar_mono_us();
		for (size_t i = 0; i < nb; i++) {
			const store_ingest_result_t *res;
			if (im->slots[i] != SIZE_MAX)
				lat_add(im, done - im->started[i]);
			stats->messages++;
			if (im->slots[i] == SIZE_MAX) {
				if (im->status[i] != 0 || !atomic_load(
				    &im->fatal))
					stats->failed++;
				else
					stats->messages--;   /* not tried */
				continue;
			}
			res = store_batch_result(im->batch_st, im->slots[i]);
			if (res->status) {
				stats->failed++;
				fail(im, im->first + i, res->status,
				    ar_strerror(res->status));
			} else if (res->duplicate) {
				stats->duplicates++;
			} else {
				stats->stored++;
				stats->bytes += res->info.plain_size;
			}
		}
	}
	store_batch_free(im->batch_st);
	im->batch_st = NULL;
	return rc;
}

int ingest_import(store_t *st, const store_tenant_t *t,
    const char *const *paths, size_t npaths, const ingest_import_opts_t *o,
    ingest_import_stats_t *stats, char *err, size_t errlen)
{
	struct import im;
	uint64_t found = 0;
	int rc = 0;

	memset(&im, 0, sizeof im);
	memset(stats, 0, sizeof *stats);
	im.st = st;
	im.t = t;
	im.o = o;
	im.stats = stats;
	im.t0 = ar_mono_us();
	im.err = err;
	im.errlen = errlen;
	im.batch = o->batch > 0 ? (size_t)o->batch : 256;
	pthread_mutex_init(&im.lock, NULL);
	for (size_t i = 0; i < npaths && rc == 0; i++)
		rc = ingest_sources(paths[i], check, &found, err, errlen);
	if (rc == 0) {
		im.slots = calloc(im.batch, sizeof *im.slots);
		im.status = calloc(im.batch, sizeof *im.status);
		im.started = calloc(im.batch, sizeof *im.started);
		if (!im.slots || !im.status || !im.started)
			rc = AR_ENOMEM;
	}
	for (size_t i = 0; i < npaths && rc == 0; i++)
		rc = ingest_sources(paths[i], collect, &im, err, errlen);
	if (rc == 0 && im.n)
		rc = flush(&im);
	stats->skipped = im.skipped;
	stats->elapsed_us = ar_mono_us() - im.t0;
	if (im.nlat) {
		stats->latency_p50_us = lat_rank(&im, im.nlat / 2);
		stats->latency_p99_us = lat_rank(&im, im.nlat * 99 / 100);
		stats->latency_max_us = im.lat_max;
	}
	if (rc == 0 && stats->failed)
		snprintf(err, errlen, "%llu of %llu messages could not be "
		    "stored", (unsigned long long)stats->failed,
		    (unsigned long long)stats->messages);
	for (size_t i = 0; i < im.npaths; i++)
		free(im.paths[i]);
	free(im.paths);
	free(im.srcs);
	free(im.slots);
	free(im.status);
	free(im.started);
	pthread_mutex_destroy(&im.lock);
	if (rc == 0 && stats->failed)
		return AR_EIO;
	return rc;
}
