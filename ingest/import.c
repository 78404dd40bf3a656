/*
 * import.c - archivectl import: seal messages from files with several
 * threads (their fsyncs overlap) and commit them to the catalog in
 * batches, one LMDB transaction each.
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

struct src {
	size_t path;            /* index into paths */
	uint64_t offset, length;
};

struct import {
	store_t *st;
	const store_tenant_t *t;
	const ingest_import_opts_t *o;
	char **paths;
	size_t npaths, pcap;
	struct src *srcs;
	size_t n, cap;
	uint64_t skipped;       /* sources that are not messages */
	/* the batch being worked on */
	store_batch_t *batch;
	size_t first, last;     /* sources [first, last) */
	atomic_size_t next;
	size_t *slots;          /* per source of the batch; SIZE_MAX: failed */
	int *status;
	int64_t *started;       /* per source of the batch: sealing began */
	int64_t *lat;           /* latency of every message so far (us) */
	size_t nlat;
	atomic_int fatal;       /* first error that fails everything */
	pthread_mutex_t lock;
	char fatal_msg[512];
};

static int collect(void *arg, const ingest_source_t *s)
{
	struct import *im = arg;
	if (s->problem && !im->o->force) {
		im->skipped++;
		if (im->o->skipped)
			im->o->skipped(im->o->skipped_arg, s);
		return 0;
	}
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
	rc = store_batch_add(im->batch, &m, &slot);
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

	if ((rc = store_batch_begin(im->st, &im->batch)))
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

	rc = store_batch_commit(im->batch);
	if (rc == 0) {
		int64_t done = ar_mono_us();
		for (size_t i = 0; i < nb; i++) {
			const store_ingest_result_t *res;
			if (im->slots[i] != SIZE_MAX)
				im->lat[im->nlat++] = done - im->started[i];
			stats->messages++;
			if (im->slots[i] == SIZE_MAX) {
				if (im->status[i] != 0 || !atomic_load(
				    &im->fatal))
					stats->failed++;
				else
					stats->messages--;   /* not tried */
				continue;
			}
			res = store_batch_result(im->batch, im->slots[i]);
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
	store_batch_free(im->batch);
	im->batch = NULL;
	return rc;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int ingest_import(store_t *st, const store_tenant_t *t,
    const char *const *paths, size_t npaths, const ingest_import_opts_t *o,
    ingest_import_stats_t *stats, char *err, size_t errlen)
{
	struct import im;
	size_t batch = o->batch > 0 ? (size_t)o->batch : 256;
	int64_t t0 = ar_mono_us();
	int rc = 0;

	memset(&im, 0, sizeof im);
	memset(stats, 0, sizeof *stats);
	im.st = st;
	im.t = t;
	im.o = o;
	pthread_mutex_init(&im.lock, NULL);
	for (size_t i = 0; i < npaths && rc == 0; i++)
		rc = ingest_sources(paths[i], collect, &im, err, errlen);
	stats->skipped = im.skipped;
	if (rc == 0) {
		im.slots = calloc(batch, sizeof *im.slots);
		im.status = calloc(batch, sizeof *im.status);
		im.started = calloc(batch, sizeof *im.started);
		im.lat = calloc(im.n ? im.n : 1, sizeof *im.lat);
		if (!im.slots || !im.status || !im.started || !im.lat)
			rc = AR_ENOMEM;
	}
	for (im.first = 0; rc == 0 && im.first < im.n; im.first = im.last) {
		im.last = im.first + batch < im.n ? im.first + batch : im.n;
		if ((rc = run_batch(&im, stats))) {
			snprintf(err, errlen, "%s", store_errmsg(st));
			break;
		}
		stats->elapsed_us = ar_mono_us() - t0;
		if (o->progress)
			o->progress(o->progress_arg, stats);
		if ((rc = atomic_load(&im.fatal)))
			snprintf(err, errlen, "%s", im.fatal_msg);
	}
	stats->elapsed_us = ar_mono_us() - t0;
	if (im.nlat) {
		qsort(im.lat, im.nlat, sizeof *im.lat, cmp_i64);
		stats->latency_p50_us = im.lat[im.nlat / 2];
		stats->latency_p99_us = im.lat[im.nlat * 99 / 100];
		stats->latency_max_us = im.lat[im.nlat - 1];
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
	free(im.lat);
	pthread_mutex_destroy(&im.lock);
	if (rc == 0 && stats->failed)
		return AR_EIO;
	return rc;
}
