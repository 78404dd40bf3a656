/*
 * test_search_mem.c - the index path's memory does not grow with the
 * archive (issue 15), through the real key service, store (LMDB, fs
 * backend) and SQLite shards, with low caps so that 800 messages
 * spread over 16 year shards exceed them many times:
 *
 * - search_sync and search_reindex keep at most open_shards writers
 *   open (the shard files this process has open say so), SQLite's heap
 *   under a bound set by the caps, the same after 200 messages as after
 *   800 (high-water mark reset after a warm-up), and every batch near
 *   batch_bytes;
 * - after them the catalog's pages they read are not resident in this
 *   process (store_catalog_trim), though the walks read all of it;
 * - reconcile and reindex read the catalog a chunk at a time (chunk_ids
 *   lowered to 64: dozens of chunks) and still get every id right,
 *   including index rows denser in one range than a chunk.
 *
 * No figure here depends on the machine's speed: only on what is held.
 */
#include "testlib.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "ar.h"
#include "search/search.h"
#include "search/search_priv.h"

#define YEARS 16
#define WARM 200                   /* messages indexed before measuring */
#define TOTAL 800
#define CACHE (256 * 1024)
#define OPEN_SHARDS 4
#define BATCH_BYTES (256 * 1024)
/* SQLite's heap with those caps: 2 x 4 idle connections (schema, FTS5
 * structure and pending-terms hash, statements), one working connection's
 * cache: measured 0.5 MB.  Before the bounds every shard kept a writer
 * with up to 32 MB of its pages, the whole index cached: 5 MB after sync,
 * 12 MB after reindex for these messages. */
#define SQLITE_BOUND (2 << 20)

static const char *words[] = { "contract", "pipeline", "meeting",
	"gas", "power", "trading", "schedule", "report", "review", "budget",
	"forecast", "storage", "transport", "invoice", "credit", "risk",
	"desk", "curve", "price", "volume", "hedge", "swap", "option",
	"settlement", "counterparty", "nomination", "capacity", "tariff" };

struct rd { size_t off; const char *text; size_t len; };

static int read_cb(void *arg, void *buf, size_t len, size_t *got)
{
	struct rd *r = arg;
	size_t n = r->len - r->off;
	if (n > len)
		n = len;
	memcpy(buf, r->text + r->off, n);
	r->off += n;
	*got = n;
	return 0;
}

/* Message i: dated in year 1990 + i % YEARS, about 1 KB of words, one of
 * them its own. */
static char *message(int i, size_t *len)
{
	static const char *mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	size_t cap = 4096, n;
	char *s = malloc(cap);
	uint32_t x = (uint32_t)i * 2654435761u + 1;

	n = (size_t)snprintf(s, cap, "From: sender%d@x.example\r\n"
	    "To: desk%d@y.example\r\nSubject: note %d uniq%dword\r\n"
	    "Date: %d %s %d 10:00:00 +0000\r\nMessage-ID: <%d@mem.test>\r\n"
	    "\r\n", i % 97, i % 13, i, i, 1 + i % 28, mon[i % 12],
	    1990 + i % YEARS, i);
	while (n < 1000) {
		x = x * 1103515245u + 12345u;
		n += (size_t)snprintf(s + n, cap - n, "%s%s",
		    words[(x >> 8) % AR_ARRAY_LEN(words)],
		    (x >> 4) % 11 ? " " : ".\r\n");
	}
	n += (size_t)snprintf(s + n, cap - n, "\r\nuniq%dword\r\n", i);
	*len = n;
	return s;
}

/* Store messages [from, to) in batches of 100. */
static void store_range(store_t *st, const store_tenant_t *t, int from,
    int to)
{
	for (int i = from; i < to; i += 100) {
		store_batch_t *b;
		char *text[100];
		struct rd r[100];
		int k, n = to - i < 100 ? to - i : 100;
		CHECK_RC(store_batch_begin(st, &b), 0);
		for (k = 0; k < n; k++) {
			store_ingest_t m;
			size_t slot;
			text[k] = message(i + k, &r[k].len);
			r[k].off = 0;
			r[k].text = text[k];
			memset(&m, 0, sizeof m);
			m.tenant = t;
			m.received = ar_now();
			m.meta = "{\"source\":\"import\"}";
			m.read = read_cb;
			m.read_arg = &r[k];
			crypto_hash_sha256(m.plain_sha256,
			    (const unsigned char *)text[k], r[k].len);
			CHECK_RC(store_batch_add(b, &m, &slot), 0);
		}
		CHECK_RC(store_batch_commit(b), 0);
		store_batch_free(b);
		for (k = 0; k < n; k++)
			free(text[k]);
	}
}

/* Shard files (*.db) this process has open.  Distinct files: SQLite
 * keeps the descriptor of a closed connection while another connection
 * of the process holds a lock on the same file, and uses it again. */
static int open_shard_files(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], target[4096], seen[64][4096];
	int n = 0;
	while (d && (e = readdir(d)) != NULL) {
		ssize_t len;
		int dup = 0;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		if ((len = readlink(path, target, sizeof target - 1)) < 3)
			continue;
		target[len] = 0;
		if (strcmp(target + len - 3, ".db"))
			continue;
		for (int i = 0; i < n && i < 64 && !dup; i++)
			dup = !strcmp(seen[i], target);
		if (!dup && n < 64)
			memcpy(seen[n], target, (size_t)len + 1);
		n += !dup;
	}
	if (d)
		closedir(d);
	return n;
}

/* Resident kB of this process's mappings of file (smaps). */
static long resident_kb(const char *file)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[4600];
	long kb = 0, v;
	int in = 0;
	while (f && fgets(line, sizeof line, f)) {
		size_t n = strlen(line);
		if (strchr(line, '-') && strchr(line, ' ') &&
		    strchr(line, '-') < strchr(line, ' ')) {
			while (n && line[n - 1] == '\n')
				line[--n] = 0;
			in = n >= strlen(file) &&
			    !strcmp(line + n - strlen(file), file);
		} else if (in && sscanf(line, "Rss: %ld kB", &v) == 1) {
			kb += v;
		}
	}
	if (f)
		fclose(f);
	return kb;
}

static int64_t sqlite_highwater(int reset)
{
	sqlite3_int64 cur = 0, hi = 0;
	sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, reset);
	return hi;
}

static uint64_t count;
static int count_cb(void *arg, const uint8_t id[SEARCH_ID_LEN], int64_t d)
{
	(void)arg;
	(void)id;
	(void)d;
	count++;
	return 0;
}

static uint64_t hits(search_t *idx, const store_tenant_t *t, const char *q)
{
	search_results_t *r;
	uint64_t n;
	if (search_run(idx, t->id, q, NULL, &r))
		return (uint64_t)-1;
	n = search_results_total(r);
	search_results_free(r);
	return n;
}

static size_t years_on_disk(search_t *idx, const store_tenant_t *t)
{
	int *years;
	size_t n = 0;
	if (shard_years(idx, t->id, &years, &n) == 0)
		free(years);
	return n;
}

int main(void)
{
	char *dir = tl_tmpdir("searchmem"), ksdir[4096], sock[4200],
	    obj[4200], cat[4200], datafile[4300];
	store_open_params_t op;
	store_backend_t *be;
	store_t *st;
	keysvc_t *ks;
	store_tenant_t t;
	search_t *idx;
	search_sync_stats_t ss;
	search_reconcile_stats_t rs;
	pid_t pid;
	int64_t hi;
	long catalog_kb = 0;

	snprintf(ksdir, sizeof ksdir, "%s/keys", dir);
	snprintf(sock, sizeof sock, "%s/keysvc.sock", ksdir);
	snprintf(obj, sizeof obj, "%s/objects", dir);
	snprintf(cat, sizeof cat, "%s/catalog", dir);
	snprintf(datafile, sizeof datafile, "%s/data.mdb", cat);
	ar_mkdirs(ksdir, 0700);
	ar_mkdirs(cat, 0700);
	pid = tl_keysvc_start(ksdir);
	CHECK_RC(keysvc_open(&ks, sock, 0), 0);
	CHECK_RC(store_backend_open_fs(&be, obj), 0);
	memset(&op, 0, sizeof op);
	op.catalog_dir = cat;
	op.backend = be;
	op.ks = ks;
	op.map_size = 64 << 20;
	op.checkpoint_entries = 100000;
	op.checkpoint_seconds = 86400;
	CHECK_RC(store_open(&st, &op), 0);
	CHECK_RC(store_tenant_add(st, "acme", NULL, 0, 3650, &t), 0);

	search_open_params_t sp = { .data_dir = dir, .ks = ks,
		.language = "english", .shard_cache = CACHE,
		.open_shards = OPEN_SHARDS, .batch_bytes = BATCH_BYTES };
	CHECK_RC(search_open(&idx, &sp), 0);

	/* warm-up: every year's shard exists */
	store_range(st, &t, 0, WARM);
	CHECK_RC(search_sync(idx, st, t.id, 0, &ss), 0);
	CHECK(ss.indexed == WARM && ss.failed == 0);
	CHECK(years_on_disk(idx, &t) == YEARS);

	/* four times as many: the same bounds */
	store_range(st, &t, WARM, TOTAL);
	sqlite_highwater(1);
	CHECK_RC(search_sync(idx, st, t.id, 0, &ss), 0);
	CHECK(ss.indexed == TOTAL - WARM && ss.failed == 0);
	hi = sqlite_highwater(1);
	fprintf(stderr, "sync: sqlite high-water %lld bytes, largest batch "
	    "%llu bytes, %d shard files open\n", (long long)hi,
	    (unsigned long long)ss.batch_bytes_max, open_shard_files());
	CHECK(hi > 0 && hi < SQLITE_BOUND);
	CHECK(idx->nwriters <= OPEN_SHARDS);
	CHECK(open_shard_files() <= OPEN_SHARDS);
	/* a batch stops taking messages at batch_bytes: at most one more
	 * message (about 8 KB of texts and sealed rows) per thread */
	CHECK(ss.batch_bytes_max >= BATCH_BYTES / 2 &&
	    ss.batch_bytes_max < BATCH_BYTES + 64 * 1024);
	/* the catalog walked is not resident */
	{
		struct stat sb;
		CHECK(stat(datafile, &sb) == 0 && sb.st_size >= 256 << 10);
		catalog_kb = (long)(sb.st_size / 1024);
		fprintf(stderr, "catalog %ld kB, %ld kB of it resident\n",
		    catalog_kb, resident_kb("/catalog/data.mdb"));
	}
	CHECK(resident_kb("/catalog/data.mdb") < catalog_kb / 8);

	/* searches over all the years: idle readers are bounded too */
	CHECK(hits(idx, &t, "uniq1234word") == 0);
	CHECK(hits(idx, &t, "uniq777word") == 1);
	CHECK(hits(idx, &t, "note") == TOTAL);
	CHECK(idx->nidle <= OPEN_SHARDS);
	CHECK(open_shard_files() <= 2 * OPEN_SHARDS);

	/* reindex, the catalog 64 ids at a time */
	idx->chunk_ids = 64;
	sqlite_highwater(1);
	CHECK_RC(search_reindex(idx, st, t.id, &ss), 0);
	hi = sqlite_highwater(1);
	fprintf(stderr, "reindex: sqlite high-water %lld bytes, largest "
	    "batch %llu bytes\n", (long long)hi,
	    (unsigned long long)ss.batch_bytes_max);
	CHECK(ss.indexed == TOTAL && ss.failed == 0);
	CHECK(hi > 0 && hi < SQLITE_BOUND);
	CHECK(ss.batch_bytes_max < BATCH_BYTES + 64 * 1024);
	CHECK(resident_kb("/catalog/data.mdb") < catalog_kb / 8);
	CHECK(open_shard_files() <= 2 * OPEN_SHARDS);
	count = 0;
	CHECK_RC(search_index_list(idx, t.id, count_cb, NULL), 0);
	CHECK(count == TOTAL);
	CHECK(hits(idx, &t, "uniq799word") == 1);

	/* reconcile in chunks: 100 rows missing, 150 rows of objects the
	 * catalog does not have, 120 of them in one year, 60 amid the
	 * catalog's ids and 60 after every catalog id (denser than a chunk
	 * there: that shard's listing is cut while the other shards' rows
	 * go on past the cut, and must not be taken for extra rows) */
	{
		uint8_t id[SEARCH_ID_LEN], mid[SEARCH_ID_LEN];
		int removed = 0;
		search_results_t *r;
		/* an id in the middle of the catalog's */
		CHECK_RC(search_run(idx, t.id, "uniq401word", NULL, &r), 0);
		CHECK(search_results_count(r) == 1);
		memcpy(mid, search_results_row(r, 0)->id, SEARCH_ID_LEN);
		search_results_free(r);
		for (int i = 0; i < TOTAL && removed < 100; i += 7) {
			/* ids of the catalog through the index list: remove
			 * by searching their unique word */
			char q[64];
			snprintf(q, sizeof q, "uniq%dword", i);
			CHECK_RC(search_run(idx, t.id, q, NULL, &r), 0);
			if (search_results_count(r) == 1) {
				CHECK_RC(search_index_remove(idx, t.id,
				    search_results_row(r, 0)->id), 0);
				removed++;
			}
			search_results_free(r);
		}
		CHECK(removed == 100);
		for (int i = 0; i < 150; i++) {
			search_doc_t doc;
			memset(&doc, 0, sizeof doc);
			doc.subject = "phantom";
			doc.body = "phantom row";
			doc.date = i < 120 ? 946684800 :       /* 2000 */
			    946684800 - (int64_t)i * 86400 * 100;
			randombytes_buf(id, sizeof id);
			if (i < 60)            /* amid the catalog's ids */
				memcpy(id, mid, 8);
			else if (i < 120)      /* after all of them */
				id[0] = id[1] = 0xff;
			CHECK_RC(search_index_add(idx, t.id, id, &doc, NULL), 0);
		}
	}
	sqlite_highwater(1);
	CHECK_RC(search_reconcile(idx, st, t.id, &rs), 0);
	hi = sqlite_highwater(1);
	CHECK(rs.catalog == TOTAL && rs.missing == 100 && rs.extra == 150);
	CHECK(rs.indexed == TOTAL - 100 + 150);
	CHECK(hi > 0 && hi < SQLITE_BOUND);
	CHECK(hits(idx, &t, "phantom") == 0);
	count = 0;
	CHECK_RC(search_index_list(idx, t.id, count_cb, NULL), 0);
	CHECK(count == TOTAL);
	CHECK(hits(idx, &t, "note") == TOTAL);
	CHECK_RC(search_reconcile(idx, st, t.id, &rs), 0);
	CHECK(rs.missing == 0 && rs.extra == 0 && rs.indexed == TOTAL);

	/* objects stored while no indexer ran (a backlog, a crash): the
	 * reconcile at start indexes each once, and the log it then follows
	 * up to its head does not parse them again */
	store_range(st, &t, TOTAL, TOTAL + 300);
	CHECK_RC(search_reconcile(idx, st, t.id, &rs), 0);
	CHECK(rs.missing == 300 && rs.extra == 0 && rs.log_indexed == 0);
	CHECK(hits(idx, &t, "note") == TOTAL + 300);
	CHECK_RC(search_sync(idx, st, t.id, 0, &ss), 0);
	CHECK(ss.indexed == 0);

	/* a bounded sync (archived's indexer gives each tenant turns of
	 * at most INDEX_TURN log entries): it stops once past its bound
	 * with more to do, and the turns together index everything once */
	{
		uint64_t indexed = 0;
		int turns = 0;
		store_range(st, &t, TOTAL + 300, TOTAL + 900);
		do {
			CHECK_RC(search_sync_bounded(idx, st, t.id, 0, 250, &ss), 0);
			CHECK(ss.entries <= 250 + 256);
			indexed += ss.indexed;
			turns++;
		} while (ss.more && turns < 10);
		CHECK(!ss.more && indexed == 600 && turns >= 3 && turns <= 4);
		CHECK(hits(idx, &t, "note") == TOTAL + 900);
		CHECK_RC(search_sync_bounded(idx, st, t.id, 0, 250, &ss), 0);
		CHECK(ss.indexed == 0 && !ss.more);
	}

	search_close(idx);
	store_close(st);
	store_backend_close(be);
	keysvc_close(ks);
	tl_keysvc_stop(pid);
	tl_rmrf(dir);
	free(dir);
	return tl_done();
}
