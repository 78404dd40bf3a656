/*
 * indexer.c - keep a tenant's index in step with the store: follow the
 * tenant's hash-chained log (search_sync), compare with the catalog and
 * repair (search_reconcile), rebuild aside and swap (search_reindex),
 * and report what is not indexed yet (search_lag).
 *
 * Position: data_dir/index/<tenant hex>/indexed holds the seq of the
 * last log entry applied, written (atomically) after the batch that
 * applied it was committed; a crash in between re-applies the batch,
 * which changes nothing (adding an object replaces it).
 *
 * Lock: data_dir/index/<tenant hex>.lock, flock(LOCK_EX), taken by every
 * writer of this file (archived's indexer thread, archivectl import,
 * reconcile and reindex), so they never interleave across processes.
 *
 * Objects are read through the store (sealed, authenticated chunks,
 * GMime over a stream: no plaintext on disk), their text extracted in
 * parallel threads, and written with one transaction per shard per batch.
 */
#include "search/search_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <jansson.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "ar.h"
#include "mime/mime.h"

#define BATCH_DEFAULT 1024       /* items per transaction (and at most
                                    index_batch_bytes) */
#define WALK_BATCHES 16          /* search batches per walk of the log */
#define PREP_THREADS_MAX 4

/* ---- position and lock ------------------------------------------------ */

static int mark_path(const search_t *idx, const uint8_t *tenant, char *buf,
    size_t len)
{
	char dir[4096];
	if (shard_tenant_dir(idx, tenant, dir, sizeof dir))
		return AR_ETOOBIG;
	return ar_path(buf, len, "%s/indexed", dir);
}

static int mark_read(const search_t *idx, const uint8_t *tenant,
    uint64_t *seq)
{
	char path[4200], txt[32];
	unsigned char *buf = NULL;
	size_t n = 0;
	int rc;

	*seq = 0;
	if ((rc = mark_path(idx, tenant, path, sizeof path)))
		return rc;
	rc = ar_file_read(path, 31, &buf, &n);
	if (rc == AR_ENOENT || (rc == AR_EIO && errno == ENOENT))
		return 0;
	if (rc)
		return search_fail(rc, "read %s", path);
	memcpy(txt, buf, n);
	txt[n] = 0;
	free(buf);
	*seq = strtoull(txt, NULL, 10);
	return 0;
}

static int mark_write(const search_t *idx, const uint8_t *tenant,
    uint64_t seq)
{
	char dir[4096], path[4200], txt[32];
	int rc, n;
	if (shard_tenant_dir(idx, tenant, dir, sizeof dir) ||
	    (rc = mark_path(idx, tenant, path, sizeof path)))
		return AR_ETOOBIG;
	if ((rc = ar_mkdirs(dir, 0700)))
		return search_fail(rc, "mkdir %s: %s", dir, strerror(errno));
	n = snprintf(txt, sizeof txt, "%llu\n", (unsigned long long)seq);
	if ((rc = ar_file_write_atomic(path, txt, (size_t)n, 0600)))
		return search_fail(rc, "write %s: %s", path, strerror(errno));
	return 0;
}

/* Lock the tenant's index for writing: returns the descriptor (>= 0). */
static int tenant_lock(const search_t *idx, const uint8_t *tenant)
{
	char hex[2 * SEARCH_TENANT_LEN + 1], path[4200];
	int fd;
	ar_hex(tenant, SEARCH_TENANT_LEN, hex);
	if (ar_path(path, sizeof path, "%s/%s.lock", idx->dir, hex))
		return AR_ETOOBIG;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return search_fail(ar_status_from_errno(errno), "open %s: %s",
		    path, strerror(errno));
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		return search_fail(AR_EIO, "lock %s: %s", path,
		    strerror(errno));
	}
	return fd;
}

static void tenant_unlock(int fd)
{
	if (fd >= 0)
		close(fd);       /* releases the flock */
}

/* ---- one object -> one document ---------------------------------------- */

/* Envelope recipients of the object's metadata (addresses, and the lists
 * and forwarders they were expanded from), without repeats.  The strings
 * belong to *root (json_decref). */
static size_t envelope_rcpts(const char *meta, json_t **root,
    const char **out, size_t max)
{
	json_t *r, *a;
	size_t i, n = 0;
	static const char *const keys[] = { "address", "expanded_from",
		"forwarded_from" };

	*root = meta ? json_loads(meta, 0, NULL) : NULL;
	r = json_object_get(json_object_get(*root, "envelope"), "recipients");
	json_array_foreach(r, i, a) {
		for (size_t k = 0; k < AR_ARRAY_LEN(keys); k++) {
			const char *s = json_string_value(json_object_get(a,
			    keys[k]));
			int dup = 0;
			if (!s || !*s)
				continue;
			for (size_t j = 0; j < n && !dup; j++)
				dup = strcasecmp(out[j], s) == 0;
			if (!dup && n < max)
				out[n++] = s;
		}
	}
	return n;
}

#define RCPT_MAX 1024

/* The filtering gateway's verdict kept in the metadata (ingest/pipeline.c:
 * "gateway": {"verdict": "spam", "action": "quarantine", ...}). */
static void gateway_verdict(const json_t *meta, search_doc_t *doc)
{
	const json_t *g = json_object_get(meta, "gateway");
	const char *v = json_string_value(json_object_get(g, "verdict"));
	const char *a = json_string_value(json_object_get(g, "action"));
	int n;

	if (!json_is_object(g))
		return;
	n = v ? search_verdict_parse(v, strlen(v)) : -1;
	doc->verdict = n > 0 ? n : SEARCH_VERDICT_NONE;
	doc->quarantined = a && !strcmp(a, "quarantine");
}

/* Parse the stored message and add it to b.  0, or a status that stops the
 * batch (key service, catalog); an object that cannot be read or parsed is
 * indexed with what the catalog knows and counted in *failed. */
static int index_object(search_t *idx, store_t *st, const uint8_t *tenant,
    const uint8_t *id, int arrival, search_batch_t *b, int *failed,
    int *gone)
{
	store_object_t o;
	store_reader_t *r = NULL;
	GMimeStream *s = NULL;
	GMimeParser *ps = NULL;
	GMimeMessage *m = NULL;
	search_doc_t *d = NULL, local;
	const char **rcpt = NULL;
	json_t *meta = NULL;
	int rc;

	*failed = *gone = 0;
	if ((rc = store_object_get(st, tenant, id, &o)) == AR_ENOENT) {
		*gone = 1;
		return search_batch_remove(b, id);
	}
	if (rc)
		return search_fail(rc, "catalog: %s", store_errmsg(st));
	if (!(rcpt = calloc(RCPT_MAX, sizeof *rcpt))) {
		rc = AR_ENOMEM;
		goto out;
	}
	size_t n_rcpt = envelope_rcpts(o.meta, &meta, rcpt, RCPT_MAX);
	/* an arrival changes what is indexed only through the envelope it
	 * merged: one without recipients (an import of the same file) leaves
	 * the row as it is */
	if (arrival && n_rcpt == 0) {
		*gone = -1;
		goto out;
	}
	rc = store_reader_open(store_get_backend(st), store_get_keysvc(st),
	    tenant, id, &r);
	if (rc == AR_EKEYSVC || rc == AR_ENOMEM) {
		rc = search_fail(rc, "reading object: %s", ar_strerror(rc));
		goto out;
	}
	if (rc == 0 && (s = mime_sealed_stream_new(r, 1)) == NULL) {
		store_reader_close(r);
		rc = AR_ENOMEM;
		goto out;
	}
	if (s) {
		/* loose: keep addresses such as a..price@example.com (common
		 * in old archives) instead of dropping them */
		GMimeParserOptions *po = g_mime_parser_options_new();
		g_mime_parser_options_set_address_compliance_mode(po,
		    GMIME_RFC_COMPLIANCE_LOOSE);
		ps = g_mime_parser_new_with_stream(s);
		m = g_mime_parser_construct_message(ps, po);
		g_mime_parser_options_free(po);
		if (mime_sealed_stream_status(s) == AR_EKEYSVC) {
			rc = search_fail(AR_EKEYSVC, "reading object: %s",
			    ar_strerror(AR_EKEYSVC));
			goto out;
		}
		if (m && mime_sealed_stream_status(s) == 0 &&
		    (rc = search_doc_extract(m, idx->body_max, &d)) != 0)
			goto out;
	}
	if (!d) {
		/* unreadable or not a message: date and size still count */
		memset(&local, 0, sizeof local);
		*failed = rc != 0 || (s && mime_sealed_stream_status(s) != 0);
		rc = 0;
	}
	search_doc_t *doc = d ? d : &local;
	doc->rcpt = rcpt;
	doc->n_rcpt = n_rcpt;
	doc->size = o.plain_size;
	doc->flags = o.flags;
	gateway_verdict(meta, doc);
	if (doc->date <= 0)
		doc->date = o.received;
	rc = search_batch_add(b, id, doc, NULL);
out:
	free(rcpt);
	json_decref(meta);
	if (d)
		search_doc_free(d);
	if (m)
		g_object_unref(m);
	if (ps)
		g_object_unref(ps);
	if (s)
		g_object_unref(s);
	store_object_clear(&o);
	return rc;
}

/* ---- applying a list of changes in batches ------------------------------- */

typedef struct item {
	uint8_t id[SEARCH_ID_LEN];
	int remove;
	int arrival;               /* re-index only for a merged envelope */
} item_t;

typedef struct prep {
	search_t *idx;
	store_t *st;
	const uint8_t *tenant;
	search_batch_t *b;
	const item_t *items;
	size_t n;
	atomic_size_t next;
	atomic_int rc;
	atomic_ulong indexed, removed, failed;
} prep_t;

static void *prep_main(void *arg)
{
	prep_t *p = arg;
	size_t i;

	pthread_setname_np(pthread_self(), "ar-index-prep");
	/* the batch stops taking items once it holds batch_bytes: each
	 * thread adds at most the one it is working on */
	while (atomic_load(&p->rc) == 0 &&
	    search_batch_bytes(p->b) < p->idx->batch_bytes &&
	    (i = atomic_fetch_add(&p->next, 1)) < p->n) {
		const item_t *it = &p->items[i];
		int failed = 0, gone = 0, rc;
		if (it->remove) {
			rc = search_batch_remove(p->b, it->id);
			gone = 1;
		} else {
			rc = index_object(p->idx, p->st, p->tenant, it->id,
			    it->arrival, p->b, &failed, &gone);
		}
		if (rc == 0 && gone < 0)
			continue;          /* nothing to change */
		if (rc) {
			int zero = 0;
			atomic_compare_exchange_strong(&p->rc, &zero, rc);
			break;
		}
		if (gone)
			atomic_fetch_add(&p->removed, 1);
		else
			atomic_fetch_add(&p->indexed, 1);
		if (failed)
			atomic_fetch_add(&p->failed, 1);
	}
	return NULL;
}

/*
 * Giving memory back after a batch (the heap's free pages, the catalog
 * pages read) costs an madvise per range and a TLB shoot-down that stops
 * every other thread of the process: in archived, with the receivers and
 * the pipeline running, trimming after every batch took half of the
 * extraction thread's time.  At most once per TRIM_EVERY_US: what a few
 * batches leave resident meanwhile is bounded by index_batch_bytes.
 */
#define TRIM_EVERY_US 1000000

static int trim_due(void)
{
	static _Atomic int64_t last;
	int64_t now = ar_mono_us(), was = atomic_load(&last);

	return now - was >= TRIM_EVERY_US &&
	    atomic_compare_exchange_strong(&last, &was, now);
}

/* A batch was written and freed: give the heap's free pages back.  glibc
 * keeps freed memory in the arena of each thread that used it; with the
 * extraction and commit threads the free space left between live blocks
 * adds up to tens of MB, resident, and grows with the index.  The catalog
 * pages the batch read go too (store_catalog_trim). */
static void heap_trim(store_t *st)
{
	if (!trim_due())
		return;
	store_catalog_trim(st);
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static int prep_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > PREP_THREADS_MAX ? PREP_THREADS_MAX : (int)n;
}

/* Prepare items[0..*done) as one search batch (*out), not yet committed:
 * as many of items[0..n) as fit in the index's batch_bytes, at least
 * one. */
static int prepare(search_t *idx, store_t *st, const uint8_t *tenant,
    const item_t *items, size_t n, search_sync_stats_t *stats,
    search_batch_t **out, size_t *done)
{
	pthread_t th[PREP_THREADS_MAX];
	int nth = 0, want = prep_threads(), rc;
	prep_t p;

	*out = NULL;
	*done = 0;
	mime_init();             /* GMime, once per process */
	memset(&p, 0, sizeof p);
	p.idx = idx;
	p.st = st;
	p.tenant = tenant;
	p.items = items;
	p.n = n;
	if ((rc = search_batch_begin(idx, tenant, &p.b)))
		return rc;
	for (int i = 1; i < want && (size_t)i < n; i++)
		if (pthread_create(&th[nth], NULL, prep_main, &p) == 0)
			nth++;
	prep_main(&p);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if ((rc = atomic_load(&p.rc))) {
		search_batch_free(p.b);
		return rc;
	}
	if (stats) {
		size_t bytes = search_batch_bytes(p.b);
		stats->indexed += atomic_load(&p.indexed);
		stats->removed += atomic_load(&p.removed);
		stats->failed += atomic_load(&p.failed);
		if (bytes > stats->batch_bytes_max)
			stats->batch_bytes_max = bytes;
	}
	*done = atomic_load(&p.next) < n ? atomic_load(&p.next) : n;
	*out = p.b;
	return 0;
}

static int apply_all(search_t *idx, store_t *st, const uint8_t *tenant,
    const item_t *items, size_t n, size_t batch, search_sync_stats_t *stats);

/* ---- following the log ---------------------------------------------------- */

typedef struct collect {
	item_t *items;
	size_t n, max;
	uint64_t last, entries;
	uint64_t until;            /* stop after this entry (0: the log's end) */
	int skip_ingest;           /* objects stored: reconcile indexed them */
	/* lag */
	uint64_t objects, changes;
	int64_t oldest;
} collect_t;

static int log_kind_indexed(uint32_t kind)
{
	return kind == STORE_LOG_INGEST || kind == STORE_LOG_ARRIVAL ||
	    kind == STORE_LOG_DISPOSE;
}

static int collect_cb(void *arg, const store_log_entry_t *e)
{
	static const uint8_t zero[SEARCH_ID_LEN];
	collect_t *c = arg;
	if (c->until && e->seq > c->until)
		return 1;
	c->last = e->seq;
	c->entries++;
	if (!log_kind_indexed(e->kind) ||
	    (c->skip_ingest && e->kind == STORE_LOG_INGEST) ||
	    !memcmp(e->object, zero, SEARCH_ID_LEN))
		return 0;
	memcpy(c->items[c->n].id, e->object, SEARCH_ID_LEN);
	c->items[c->n].remove = e->kind == STORE_LOG_DISPOSE;
	c->items[c->n].arrival = e->kind == STORE_LOG_ARRIVAL;
	return ++c->n == c->max;       /* 1 stops the walk: batch full */
}

/*
 * Apply the log after the tenant's mark, at most max_entries entries (0:
 * no bound) and none after `until` (0: to the end), moving the mark after
 * each walk.  skip_ingest: what was stored is left out (reconcile has just
 * indexed every object of the catalog), arrivals and disposals are applied.
 */
static int follow_log(search_t *idx, store_t *st, const uint8_t *tenant,
    int batch, uint64_t max_entries, uint64_t until, int skip_ingest,
    search_sync_stats_t *out)
{
	collect_t c;
	uint64_t mark;
	int rc;

	/* a walk of the log collects up to WALK_BATCHES search batches:
	 * apply_all reads and parses one while the previous one commits */
	size_t per = batch > 0 ? (size_t)batch : BATCH_DEFAULT;
	size_t walk = per * WALK_BATCHES;
	memset(&c, 0, sizeof c);
	c.until = until;
	c.skip_ingest = skip_ingest;
	if ((rc = mark_read(idx, tenant, &mark)))
		return rc;
	out->seq = mark;
	if (!(c.items = calloc(walk, sizeof *c.items)))
		return AR_ENOMEM;
	for (;;) {
		if (until && mark >= until) {
			rc = 0;
			break;
		}
		c.n = 0;
		c.entries = 0;
		c.last = mark;
		c.max = walk;
		if (max_entries && max_entries - out->entries < walk)
			c.max = (size_t)(max_entries - out->entries);
		rc = store_log_walk(st, tenant, mark + 1, collect_cb, &c);
		if (rc < 0) {
			rc = search_fail(rc, "log: %s", store_errmsg(st));
			break;
		}
		if (c.entries == 0) {
			rc = 0;
			break;
		}
		if ((rc = apply_all(idx, st, tenant, c.items, c.n, per, out)))
			break;
		if ((rc = mark_write(idx, tenant, c.last)))
			break;
		mark = c.last;
		out->seq = mark;
		out->entries += c.entries;
		if (max_entries && out->entries >= max_entries) {
			out->more = 1;     /* perhaps: the next call says */
			break;
		}
	}
	free(c.items);
	store_catalog_trim(st);    /* the log pages walked */
	return rc;
}

static int sync_locked(search_t *idx, store_t *st, const uint8_t *tenant,
    int batch, uint64_t max_entries, search_sync_stats_t *out)
{
	return follow_log(idx, st, tenant, batch, max_entries, 0, 0, out);
}

int search_sync(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], int batch,
    search_sync_stats_t *out)
{
	return search_sync_bounded(idx, st, tenant, batch, 0, out);
}

int search_sync_bounded(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], int batch, uint64_t max_entries,
    search_sync_stats_t *out)
{
	search_sync_stats_t dummy;
	int fd, rc;
	if (!out)
		out = &dummy;
	memset(out, 0, sizeof *out);
	if (!idx || !st || !tenant)
		return search_fail(AR_EINVAL, "search_sync: missing argument");
	if ((fd = tenant_lock(idx, tenant)) < 0)
		return fd;
	rc = sync_locked(idx, st, tenant, batch, max_entries, out);
	tenant_unlock(fd);
	return rc;
}

static int lag_cb(void *arg, const store_log_entry_t *e)
{
	collect_t *c = arg;
	if (!log_kind_indexed(e->kind))
		return 0;
	c->changes++;
	if (e->kind == STORE_LOG_INGEST)
		c->objects++;
	if (!c->oldest || e->time < c->oldest)
		c->oldest = e->time;
	return 0;
}

int search_lag(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], search_lag_t *out)
{
	collect_t c;
	int rc;
	memset(out, 0, sizeof *out);
	memset(&c, 0, sizeof c);
	if ((rc = mark_read(idx, tenant, &out->indexed_seq)))
		return rc;
	if ((rc = store_log_walk(st, tenant, out->indexed_seq + 1, lag_cb, &c)))
		return search_fail(rc, "log: %s", store_errmsg(st));
	out->objects = c.objects;
	out->changes = c.changes;
	out->oldest = c.oldest;
	return 0;
}

static int first_cb(void *arg, const store_log_entry_t *e)
{
	int64_t *oldest = arg;
	if (!log_kind_indexed(e->kind))
		return 0;
	*oldest = e->time;
	return 1;                      /* stop: log entries are in time order */
}

int search_lag_oldest(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], int64_t *oldest,
    uint64_t *waiting)
{
	uint64_t mark, head = 0;
	int rc;

	*oldest = 0;
	if (waiting)
		*waiting = 0;
	if ((rc = mark_read(idx, tenant, &mark)))
		return rc;
	rc = store_log_head_seq(st, tenant, &head);
	if (rc == AR_ENOENT || (rc == 0 && head <= mark))
		return 0;
	if (rc)
		return search_fail(rc, "log: %s", store_errmsg(st));
	if (waiting)
		*waiting = head - mark;
	rc = store_log_walk(st, tenant, mark + 1, first_cb, oldest);
	if (rc < 0)
		return search_fail(rc, "log: %s", store_errmsg(st));
	return 0;
}

/* ---- reconcile and reindex: the catalog in chunks ------------------------- */

/* Catalog ids are read chunk_ids at a time (one read transaction each)
 * by reconcile and reindex: what they hold of the catalog, whatever its
 * size. */
typedef struct chunk {
	item_t *items;             /* max */
	size_t n, max;
} chunk_t;

static int chunk_cb(void *arg, const store_object_t *o)
{
	chunk_t *c = arg;
	memset(&c->items[c->n], 0, sizeof c->items[c->n]);
	memcpy(c->items[c->n].id, o->id, SEARCH_ID_LEN);
	return ++c->n == c->max;       /* 1 stops the walk: chunk full */
}

/* The next chunk of the tenant's catalog after *after (NULL: the first):
 * c->n ids in id order; *more when the catalog may go on. */
static int chunk_next(store_t *st, const uint8_t *tenant, const uint8_t *after,
    chunk_t *c, int *more)
{
	int rc;
	c->n = 0;
	rc = store_object_walk_from(st, tenant, after, 0, chunk_cb, c);
	if (rc < 0)
		return search_fail(rc, "catalog: %s", store_errmsg(st));
	*more = rc == 1;
	return 0;
}
/* A batch committed by its own thread while the next one is prepared. */
typedef struct committer {
	pthread_t th;
	store_t *st;               /* trimmed after a batch (heap_trim) */
	search_batch_t *b;
	int rc, active;
} committer_t;

static void *commit_main(void *arg)
{
	committer_t *c = arg;

	pthread_setname_np(pthread_self(), "ar-index-commit");
	c->rc = search_batch_commit(c->b);
	return NULL;
}

/* Wait for the batch in flight; its status. */
static int commit_wait(committer_t *c)
{
	if (!c->active)
		return 0;
	pthread_join(c->th, NULL);
	search_batch_free(c->b);
	heap_trim(c->st);
	c->b = NULL;
	c->active = 0;
	return c->rc;
}

/* Apply items in batches of at most batch items (and batch_bytes):
 * reading and parsing batch k + 1 overlaps the commit of batch k. */
static int apply_all(search_t *idx, store_t *st, const uint8_t *tenant,
    const item_t *items, size_t n, size_t batch, search_sync_stats_t *stats)
{
	committer_t c = { .st = st };
	size_t done = 0;
	int rc = 0, wrc;
	for (size_t i = 0; i < n && rc == 0; i += done) {
		search_batch_t *b = NULL;
		rc = prepare(idx, st, tenant, items + i, n - i < batch ? n - i :
		    batch, stats, &b, &done);
		if ((wrc = commit_wait(&c)) && rc == 0)
			rc = wrc;
		if (rc) {
			search_batch_free(b);
			break;
		}
		c.b = b;
		if (pthread_create(&c.th, NULL, commit_main, &c)) {
			rc = search_batch_commit(b);
			search_batch_free(b);
			c.b = NULL;
		} else {
			c.active = 1;
		}
	}
	if ((wrc = commit_wait(&c)) && rc == 0)
		rc = wrc;
	return rc;
}

/*
 * One step of reconcile: the catalog's ids after lo (a chunk) against the
 * index's ids in the same range; what only the catalog has is indexed,
 * what only the index has is removed, an id in two shards is indexed
 * again (which removes the copy in the wrong year).  *lo moves on; *more
 * when the catalog or the index may go on.
 */
static int reconcile_step(search_t *idx, store_t *st, const uint8_t *tenant,
    uint8_t *lo, int *have_lo, chunk_t *cat,
    search_reconcile_stats_t *out, search_sync_stats_t *ss, int *more)
{
	uint8_t (*ind)[SEARCH_ID_LEN] = NULL, hi[SEARCH_ID_LEN];
	uint8_t cut_at[SEARCH_ID_LEN];
	size_t nind = 0, ncat, i = 0, j = 0, n = 0;
	int cat_more = 0, cut = 0, rc;
	item_t *v;

	if ((rc = chunk_next(st, tenant, *have_lo ? lo : NULL, cat, &cat_more)))
		return rc;
	ncat = cat->n;
	/* the index is listed up to the last catalog id of the chunk (to
	 * the end after the last chunk), at most a chunk from each shard */
	if (cat_more)
		memcpy(hi, cat->items[ncat - 1].id, SEARCH_ID_LEN);
	if ((rc = index_ids_range(idx, tenant, *have_lo ? lo : NULL,
	    cat_more ? hi : NULL, cat->max, &ind, &nind, &cut, cut_at)))
		return rc;
	/* a shard was cut: this step ends at cut_at (<= hi), for the
	 * catalog's ids and for the other shards' rows, which went on past
	 * it (they are compared in the next step) */
	if (cut) {
		memcpy(hi, cut_at, SEARCH_ID_LEN);
		while (ncat && memcmp(cat->items[ncat - 1].id, hi,
		    SEARCH_ID_LEN) > 0)
			ncat--;
		while (nind && memcmp(ind[nind - 1], hi, SEARCH_ID_LEN) > 0)
			nind--;
	}
	*more = cat_more || cut;
	if (*more) {
		memcpy(lo, hi, SEARCH_ID_LEN);
		*have_lo = 1;
	}
	if (!(v = calloc(ncat + nind + 1, sizeof *v))) {
		free(ind);
		return AR_ENOMEM;
	}
	out->catalog += ncat;
	while (i < ncat || j < nind) {
		int c = i == ncat ? 1 : j == nind ? -1 :
		    memcmp(cat->items[i].id, ind[j], SEARCH_ID_LEN);
		if (c >= 0)
			out->indexed++;
		if (c == 0) {
			int dup = 0;
			while (j + 1 < nind && !memcmp(ind[j + 1], ind[j],
			    SEARCH_ID_LEN)) {
				j++;
				out->indexed++;
				dup = 1;
			}
			if (dup) {
				memset(&v[n], 0, sizeof v[n]);
				memcpy(v[n++].id, ind[j], SEARCH_ID_LEN);
				out->extra++;
			}
			i++;
			j++;
		} else if (c < 0) {
			memset(&v[n], 0, sizeof v[n]);
			memcpy(v[n++].id, cat->items[i++].id, SEARCH_ID_LEN);
			out->missing++;
		} else {
			memset(&v[n], 0, sizeof v[n]);
			memcpy(v[n].id, ind[j++], SEARCH_ID_LEN);
			v[n++].remove = 1;
			out->extra++;
		}
	}
	free(ind);
	rc = apply_all(idx, st, tenant, v, n, BATCH_DEFAULT, ss);
	free(v);
	return rc;
}

int search_reconcile(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], search_reconcile_stats_t *out)
{
	uint8_t lo[SEARCH_ID_LEN];
	chunk_t cat = { 0 };
	search_sync_stats_t ss;
	uint64_t head = 0;
	int fd, rc = 0, have_lo = 0, more = 1;

	memset(out, 0, sizeof *out);
	memset(&ss, 0, sizeof ss);
	if ((fd = tenant_lock(idx, tenant)) < 0)
		return fd;
	/* everything logged up to head is in the catalog the steps walk:
	 * after them, the log up to head is applied without what it stored
	 * (indexed by the steps; the index's own mark can be far behind
	 * after a crash or a backlog, and each would be parsed twice), then
	 * the log after head as usual */
	if ((rc = store_log_head_seq(st, tenant, &head)) == AR_ENOENT)
		rc = 0;            /* nothing logged yet */
	else if (rc)
		rc = search_fail(rc, "catalog: %s", store_errmsg(st));
	cat.max = idx->chunk_ids;
	if (rc == 0 && !(cat.items = calloc(cat.max, sizeof *cat.items)))
		rc = AR_ENOMEM;
	while (rc == 0 && more)
		rc = reconcile_step(idx, st, tenant, lo, &have_lo, &cat, out,
		    &ss, &more);
	if (rc == 0 && head) {
		search_sync_stats_t ls;
		memset(&ls, 0, sizeof ls);
		rc = follow_log(idx, st, tenant, 0, 0, head, 1, &ls);
		out->log_indexed = ls.indexed;
	}
	if (rc == 0)
		rc = sync_locked(idx, st, tenant, 0, 0, &ss);
	if (rc == 0)
		rc = shard_count_old(idx, tenant, &out->old_shards);
	tenant_unlock(fd);
	free(cat.items);
	return rc;
}

/* ---- reindex ------------------------------------------------------------------ */

/* Remove a directory holding only files (a tenant's shard directory). */
static int rm_flat_dir(const char *dir)
{
	char path[4400];
	struct dirent *e;
	DIR *d = opendir(dir);
	int rc = 0;
	if (!d)
		return errno == ENOENT ? 0 : search_fail(AR_EIO, "opendir %s: %s",
		    dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (unlink(path) < 0 && errno != ENOENT)
			rc = search_fail(AR_EIO, "unlink %s: %s", path,
			    strerror(errno));
	}
	closedir(d);
	if (rc == 0 && rmdir(dir) < 0 && errno != ENOENT)
		rc = search_fail(AR_EIO, "rmdir %s: %s", dir, strerror(errno));
	return rc;
}

static int copy_language(const search_t *from, search_t *to,
    const uint8_t *tenant)
{
	char src[4200], dir[4096];
	unsigned char *buf = NULL;
	size_t n = 0;
	int rc;
	if (shard_tenant_dir(from, tenant, dir, sizeof dir) ||
	    ar_path(src, sizeof src, "%s/language", dir))
		return AR_ETOOBIG;
	rc = ar_file_read(src, 63, &buf, &n);
	if (rc == AR_ENOENT || (rc == AR_EIO && errno == ENOENT))
		return 0;
	if (rc)
		return search_fail(rc, "read %s", src);
	buf[n < 63 ? n : 63] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	rc = search_tenant_set_language(to, tenant, (const char *)buf);
	free(buf);
	return rc;
}

int search_reindex(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], search_sync_stats_t *out)
{
	char side_root[4200], side_dir[4300], dir[4096];
	search_t *side = NULL;
	uint64_t head = 0;
	search_sync_stats_t dummy;
	uint8_t last[SEARCH_ID_LEN];
	chunk_t cat = { 0 };
	int fd = -1, rc;

	if (!out)
		out = &dummy;
	memset(out, 0, sizeof *out);
	if (ar_path(side_root, sizeof side_root, "%s/.rebuild", idx->dir) ||
	    shard_tenant_dir(idx, tenant, dir, sizeof dir))
		return AR_ETOOBIG;
	if ((rc = search_open_at(&side, idx, side_root)))
		return rc;
	if (shard_tenant_dir(side, tenant, side_dir, sizeof side_dir)) {
		rc = AR_ETOOBIG;
		goto out;
	}
	/* what an interrupted reindex left */
	if ((rc = rm_flat_dir(side_dir)) || (rc = ar_mkdirs(side_dir, 0700)) ||
	    (rc = copy_language(idx, side, tenant)))
		goto out;
	/* everything logged up to head is in the catalog walked below;
	 * what comes after is applied from the log.  The head record alone:
	 * store_tenant_stats would walk every object first (and make the
	 * whole catalog resident in this process) */
	if ((rc = store_log_head_seq(st, tenant, &head)) && rc != AR_ENOENT) {
		rc = search_fail(rc, "catalog: %s", store_errmsg(st));
		goto out;
	}
	rc = 0;                    /* AR_ENOENT: nothing logged yet */
	cat.max = idx->chunk_ids;
	if (!(cat.items = calloc(cat.max, sizeof *cat.items))) {
		rc = AR_ENOMEM;
		goto out;
	}
	/* the catalog a chunk at a time: what the reindex holds does not
	 * grow with the archive */
	for (int more = 1, first = 1; more; first = 0) {
		if ((rc = chunk_next(st, tenant, first ? NULL : last, &cat,
		    &more)))
			goto out;
		if (cat.n == 0)
			break;
		memcpy(last, cat.items[cat.n - 1].id, SEARCH_ID_LEN);
		if ((rc = apply_all(side, st, tenant, cat.items, cat.n, 1024,
		    out)))
			goto out;
	}
	if ((rc = mark_write(side, tenant, head)))
		goto out;
	if ((fd = tenant_lock(idx, tenant)) < 0) {
		rc = fd;
		goto out;
	}
	search_sync_stats_t tail;
	memset(&tail, 0, sizeof tail);
	if ((rc = sync_locked(side, st, tenant, 0, 0, &tail)))
		goto out;
	out->indexed += tail.indexed;
	out->removed += tail.removed;
	out->failed += tail.failed;
	if (tail.batch_bytes_max > out->batch_bytes_max)
		out->batch_bytes_max = tail.batch_bytes_max;
	out->entries = tail.entries;
	out->seq = tail.seq;
	search_close(side);        /* checkpoints and closes the new shards */
	side = NULL;
	if (renameat2(AT_FDCWD, side_dir, AT_FDCWD, dir, RENAME_EXCHANGE) < 0) {
		if (errno != ENOENT || rename(side_dir, dir) < 0) {
			rc = search_fail(AR_EIO, "swap %s and %s: %s", side_dir,
			    dir, strerror(errno));
			goto out;
		}
	}
	if ((rc = ar_fsync_dir(idx->dir)) || (rc = ar_fsync_dir(side_root)))
		goto out;
	tenant_unlock(fd);
	fd = -1;
	/* side_dir now holds the old shards */
	rc = rm_flat_dir(side_dir);
	shard_refresh(idx, tenant);
out:
	tenant_unlock(fd);
	if (side)
		search_close(side);
	free(cat.items);
	return rc;
}
