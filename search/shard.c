/*
 * shard.c - one SQLite file per tenant and year: schema, connections.
 *
 * Schema (docs/search.md):
 *   meta(k, v)   format, tenant (hex), year, lang, prefix_min, prefix_max,
 *                tokens (2: lean documents, see tokenizer.c; absent in
 *                shards written before, which keep every token),
 *                terms_max (distinct tokens of one field, tokenizer.c;
 *                absent in shards written before: no limit)
 *   msg(rowid, oid, date, size, has_att, flags, display, itext)
 *   fts          FTS5, contentless (content=''), detail=full, tokenizer
 *                "blind": holds only keyed hashes
 *
 * Files are created 0600 in a 0700 directory; WAL mode, temp_store=MEMORY
 * (no temp files), secure_delete=ON (deleted rows are zeroed).  Each
 * connection has its own tokenizer context holding the tenant's token key
 * (derived from keysvc "index" version 1, so rotation does not change it).
 */
#include "search/search_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"

int shard_year_of(int64_t date)
{
	time_t t = (time_t)date;
	struct tm tm;
	if (date < -62135596800LL)            /* before year 1 */
		return 1;
	if (date > 253402300799LL)            /* after 9999 */
		return 9999;
	if (!gmtime_r(&t, &tm))
		return 1970;
	int y = tm.tm_year + 1900;
	return y < 1 ? 1 : y > 9999 ? 9999 : y;
}

int64_t shard_year_start(int year)
{
	/* days from 1970-01-01 to YEAR-01-01, proleptic Gregorian */
	int64_t y = (int64_t)year - 1;
	int64_t days = 365 * y + y / 4 - y / 100 + y / 400 - 719162;
	return days * 86400;
}

int shard_tenant_dir(const search_t *idx, const uint8_t *tenant, char *buf,
    size_t len)
{
	char hex[2 * SEARCH_TENANT_LEN + 1];
	ar_hex(tenant, SEARCH_TENANT_LEN, hex);
	return ar_path(buf, len, "%s/%s", idx->dir, hex);
}

static int cmp_desc(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x < y) - (x > y);
}

int shard_years(const search_t *idx, const uint8_t *tenant, int **years,
    size_t *n)
{
	char dir[4096];
	DIR *d;
	struct dirent *e;
	int *v = NULL;
	size_t cnt = 0, cap = 0;

	*years = NULL;
	*n = 0;
	if (shard_tenant_dir(idx, tenant, dir, sizeof dir))
		return AR_ETOOBIG;
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : search_fail(AR_EIO,
		    "opendir %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		const char *s = e->d_name;
		if (strlen(s) != 7 || strcmp(s + 4, ".db") != 0 ||
		    strspn(s, "0123456789") != 4)
			continue;
		if (cnt == cap) {
			int *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
			if (!nv) {
				free(v);
				closedir(d);
				return AR_ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = atoi(s);
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, cmp_desc);
	*years = v;
	*n = cnt;
	return 0;
}

int shard_display_key(search_t *idx, const uint8_t *tenant, uint32_t kver,
    uint8_t key[32])
{
	int rc = keysvc_derive(idx->ks, tenant, kver, DISPLAY_CONTEXT, key);
	if (rc)
		return search_fail(rc, "tenant key (display v%u): %s", kver,
		    keysvc_errmsg(idx->ks));
	return 0;
}

static int token_key(search_t *idx, const uint8_t *tenant,
    uint8_t out[TK_KEY_LEN])
{
	uint8_t k[KEYSVC_KEY_LEN];
	static const char label[] = "archived search token key v1";
	int rc = keysvc_derive(idx->ks, tenant, 1, "index", k);
	if (rc)
		return search_fail(rc, "tenant index key: %s",
		    keysvc_errmsg(idx->ks));
	crypto_generichash(out, TK_KEY_LEN, (const unsigned char *)label,
	    sizeof label - 1, k, sizeof k);
	sodium_memzero(k, sizeof k);
	return 0;
}

static int tenant_language(search_t *idx, const uint8_t *tenant, char *lang,
    size_t len)
{
	char path[4096];
	unsigned char *buf = NULL;
	size_t n = 0;
	ar_strlcpy(lang, idx->lang, len);
	if (shard_tenant_dir(idx, tenant, path, sizeof path) ||
	    strlen(path) + 10 > sizeof path)
		return AR_ETOOBIG;
	strcat(path, "/language");
	int rc = ar_file_read(path, 63, &buf, &n);
	if (rc == AR_ENOENT || (rc == AR_EIO && errno == ENOENT))
		return 0;
	if (rc)
		return search_fail(rc, "read %s", path);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(lang, buf, n);
	lang[n] = 0;
	free(buf);
	return 0;
}

int shard_schema_create(sqlite3 *db, const char *tenant_hex, int year,
    const char *lang, int prefix_min, int prefix_max, size_t terms_max)
{
	static const char ddl[] =
	    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
	    "CREATE TABLE IF NOT EXISTS msg(rowid INTEGER PRIMARY KEY "
	    "AUTOINCREMENT, oid BLOB NOT NULL UNIQUE, date INTEGER NOT NULL, "
	    "size INTEGER NOT NULL, has_att INTEGER NOT NULL, "
	    "flags INTEGER NOT NULL, display BLOB NOT NULL, "
	    "itext BLOB NOT NULL);"
	    "CREATE INDEX IF NOT EXISTS msg_date ON msg(date, oid);"
	    "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(from_addr, "
	    "to_addr, cc_addr, bcc_addr, subject, body, filename, content='', "
	    "detail=full, tokenize='" TK_NAME "');";
	sqlite3_stmt *st = NULL;
	char y[16], pmin[16], pmax[16];
	char tkv[16], tmax[24];
	const char *kv[][2] = { { "format", "1" }, { "tokenizer", tkv },
		{ "tenant", tenant_hex },
		{ "year", y }, { "lang", lang && *lang ? lang : "none" },
		{ "prefix_min", pmin }, { "prefix_max", pmax },
		{ "tokens", "2" }, { "terms_max", tmax } };

	snprintf(tkv, sizeof tkv, "%d", TK_VERSION);
	snprintf(y, sizeof y, "%d", year);
	snprintf(pmin, sizeof pmin, "%d", prefix_min);
	snprintf(pmax, sizeof pmax, "%d", prefix_max);
	snprintf(tmax, sizeof tmax, "%zu", terms_max);
	if (sqlite3_exec(db, ddl, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO meta VALUES(?, ?)",
	    -1, &st, NULL) != SQLITE_OK)
		return search_fail(AR_EIO, "shard schema: %s",
		    sqlite3_errmsg(db));
	for (size_t i = 0; i < AR_ARRAY_LEN(kv); i++) {
		sqlite3_bind_text(st, 1, kv[i][0], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, kv[i][1], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return search_fail(AR_EIO, "shard meta: %s",
			    sqlite3_errmsg(db));
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return 0;
}

/* meta value k into buf; 0, or AR_ENOENT when absent (no table too) */
static int meta_get(sqlite3 *db, const char *k, char *buf, size_t len)
{
	sqlite3_stmt *st = NULL;
	int rc = AR_ENOENT;
	if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = ?", -1, &st,
	    NULL) != SQLITE_OK)
		return AR_ENOENT;
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		ar_strlcpy(buf, v ? v : "", len);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

int shard_tokenizer_version(sconn_t *c)
{
	char v[16];
	if (meta_get(c->db, "tokenizer", v, sizeof v))
		return 1;
	return atoi(v) > 0 ? atoi(v) : 1;
}

int shard_count_old(search_t *idx, const uint8_t *tenant, uint64_t *n)
{
	int *years, rc;
	size_t ny;

	*n = 0;
	shard_refresh(idx, tenant);
	pthread_rwlock_rdlock(&idx->drop_lock);
	if ((rc = shard_years(idx, tenant, &years, &ny)) == 0) {
		for (size_t i = 0; i < ny && rc == 0; i++) {
			shard_t *sh;
			sconn_t *c;
			if ((rc = shard_get(idx, tenant, years[i], 0, &sh)) ||
			    (rc = shard_reader(idx, sh, &c)))
				break;
			if (shard_tokenizer_version(c) < TK_VERSION)
				(*n)++;
			shard_release(idx, sh, c);
		}
		free(years);
	}
	pthread_rwlock_unlock(&idx->drop_lock);
	return rc;
}

void shard_conn_close(sconn_t *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close_v2(c->db);
	free(c);
}

/*
 * FTS5's merge settings of a shard written to (stored in its fts_config,
 * so set once): the pending terms of a transaction are flushed as a new
 * segment every `hashsize` bytes (FTS5's default, 1 MB, cuts one indexer
 * batch into tens of segments), and a level is merged once it holds
 * FTS_AUTOMERGE segments (default 4).  With a batch's size and 8, a
 * reindex of 30,000 messages took 33 s instead of 47 s, for the same
 * index size (docs/performance.md, "Where the CPU goes").
 */
#define FTS_AUTOMERGE 8

static int fts_config_get(sqlite3 *db, const char *k, long long *v)
{
	sqlite3_stmt *st;
	int rc = AR_ENOENT;

	if (sqlite3_prepare_v2(db, "SELECT v FROM fts_config WHERE k = ?",
	    -1, &st, NULL) != SQLITE_OK)
		return AR_EIO;
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

static int fts_tune(sqlite3 *db, const char *path, size_t batch_bytes)
{
	long long hashsize = (long long)batch_bytes, v;
	const struct { const char *k; long long v; } want[] = {
		{ "hashsize", hashsize < (1 << 20) ? (1 << 20) : hashsize },
		{ "automerge", FTS_AUTOMERGE },
	};
	char sql[128];

	for (size_t i = 0; i < AR_ARRAY_LEN(want); i++) {
		if (fts_config_get(db, want[i].k, &v) == 0 && v == want[i].v)
			continue;
		snprintf(sql, sizeof sql, "INSERT INTO fts(fts, rank) "
		    "VALUES('%s', %lld)", want[i].k, want[i].v);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			return search_fail(AR_EIO, "%s: fts %s: %s", path,
			    want[i].k, sqlite3_errmsg(db));
	}
	return 0;
}

static int conn_open(search_t *idx, shard_t *sh, int create, sconn_t **out)
{
	char hex[2 * SEARCH_TENANT_LEN + 1], v[64], lang[64];
	uint8_t key[TK_KEY_LEN];
	sconn_t *c;
	int rc, fresh;

	*out = NULL;
	ar_hex(sh->tenant, SEARCH_TENANT_LEN, hex);
	if (create) {
		char dir[4096];
		if (shard_tenant_dir(idx, sh->tenant, dir, sizeof dir) ||
		    (rc = ar_mkdirs(dir, 0700)) != 0)
			return search_fail(AR_EIO, "mkdir %s", dir);
		int fd = open(sh->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
		if (fd >= 0)
			close(fd);
		else if (errno != EEXIST)
			return search_fail(ar_status_from_errno(errno),
			    "create %s: %s", sh->path, strerror(errno));
	}
	if (!(c = calloc(1, sizeof *c)))
		return AR_ENOMEM;
	if (sqlite3_open_v2(sh->path, &c->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = search_fail(AR_EIO, "open %s: %s", sh->path,
		    c->db ? sqlite3_errmsg(c->db) : "out of memory");
		goto bad;
	}
	sqlite3_busy_timeout(c->db, 10000);
	if (sqlite3_exec(c->db, "PRAGMA temp_store=MEMORY;"
	    "PRAGMA secure_delete=ON; PRAGMA synchronous=NORMAL;"
	    "PRAGMA journal_mode=WAL;", NULL, NULL, NULL) != SQLITE_OK) {
		rc = search_fail(AR_EIO, "%s: %s", sh->path,
		    sqlite3_errmsg(c->db));
		goto bad;
	}
	fresh = meta_get(c->db, "tenant", v, sizeof v) == AR_ENOENT;
	if (fresh && !create) {
		rc = search_fail(AR_ENOENT, "%s: not a shard yet", sh->path);
		goto bad;
	}
	if (!fresh && strcmp(v, hex) != 0) {
		rc = search_fail(AR_ETENANT, "%s belongs to tenant %s", sh->path,
		    v);
		goto bad;
	}
	int pmin = idx->pmin, pmax = idx->pmax, lean = 1;
	size_t terms_max = idx->terms_max;
	if (fresh) {
		if ((rc = tenant_language(idx, sh->tenant, lang, sizeof lang)))
			goto bad;
	} else {
		if (meta_get(c->db, "lang", lang, sizeof lang))
			ar_strlcpy(lang, "none", sizeof lang);
		if (meta_get(c->db, "prefix_min", v, sizeof v) == 0)
			pmin = atoi(v);
		if (meta_get(c->db, "prefix_max", v, sizeof v) == 0)
			pmax = atoi(v);
		lean = meta_get(c->db, "tokens", v, sizeof v) == 0 &&
		    strcmp(v, "2") == 0;
		/* a shard from before the limit was written without one:
		 * its rows are deleted by the tokens they were given */
		terms_max = meta_get(c->db, "terms_max", v, sizeof v) == 0 ?
		    (size_t)strtoull(v, NULL, 10) : 0;
	}
	if ((rc = token_key(idx, sh->tenant, key)))
		goto bad;
	tk_ctx_t *ctx = tk_ctx_new(key, lang, pmin, pmax, lean,
	    terms_max);
	sodium_memzero(key, sizeof key);
	if (!ctx) {
		rc = search_fail(AR_ECONFIG, "%s: unknown stemmer language '%s'",
		    sh->path, lang);
		goto bad;
	}
	if ((rc = tk_register(c->db, ctx))) {
		search_fail(rc, "%s: cannot register the tokenizer", sh->path);
		goto bad;
	}
	if (fresh) {
		if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
		    SQLITE_OK) {
			rc = search_fail(AR_EIO, "%s: %s", sh->path,
			    sqlite3_errmsg(c->db));
			goto bad;
		}
		rc = shard_schema_create(c->db, hex, sh->year, lang, pmin, pmax,
		    terms_max);
		if (rc == 0 && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) !=
		    SQLITE_OK)
			rc = search_fail(AR_EIO, "%s: %s", sh->path,
			    sqlite3_errmsg(c->db));
		if (rc) {
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			goto bad;
		}
		if ((rc = ar_fsync_dir(idx->dir)) != 0)
			goto bad;
	}
	if (create && (rc = fts_tune(c->db, sh->path, idx->batch_bytes)))
		goto bad;
	*out = c;
	return 0;
bad:
	shard_conn_close(c);
	return rc;
}

int shard_get(search_t *idx, const uint8_t *tenant, int year, int create,
    shard_t **out)
{
	shard_t *sh;
	char dir[4096];

	*out = NULL;
	pthread_mutex_lock(&idx->shards_mu);
	for (sh = idx->shards; sh; sh = sh->next)
		if (sh->year == year && memcmp(sh->tenant, tenant,
		    SEARCH_TENANT_LEN) == 0)
			break;
	if (!sh) {
		struct stat stb;
		char path[4200];
		if (shard_tenant_dir(idx, tenant, dir, sizeof dir) ||
		    ar_path(path, sizeof path, "%s/%04d.db", dir, year)) {
			pthread_mutex_unlock(&idx->shards_mu);
			return AR_ETOOBIG;
		}
		if (!create && stat(path, &stb) < 0) {
			pthread_mutex_unlock(&idx->shards_mu);
			return AR_ENOENT;
		}
		if (!(sh = calloc(1, sizeof *sh + strlen(path) + 1))) {
			pthread_mutex_unlock(&idx->shards_mu);
			return AR_ENOMEM;
		}
		memcpy(sh->tenant, tenant, SEARCH_TENANT_LEN);
		sh->year = year;
		strcpy(sh->path, path);
		sh->next = idx->shards;
		idx->shards = sh;
	}
	pthread_mutex_unlock(&idx->shards_mu);
	*out = sh;
	return 0;
}

/* A connection's page cache: at most idx->cache bytes. */
static void conn_cache(const search_t *idx, sconn_t *c)
{
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA cache_size=-%zu",
	    idx->cache / 1024 ? idx->cache / 1024 : 1);
	sqlite3_exec(c->db, sql, NULL, NULL, NULL);
}

/* Close a connection the LRU evicts, which may be needed again soon:
 * without the checkpoint SQLite runs when the last connection to a file
 * closes (its fsyncs, and a new WAL whose header is synced at the next
 * commit); the WAL stays and is read back when the file is opened again.
 * search_close and tenant drops close with the checkpoint. */
static void conn_evict(sconn_t *c)
{
	if (!c)
		return;
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
	    (int *)NULL);
	shard_conn_close(c);
}

static void idle_unlink(search_t *idx, sconn_t *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		idx->idle = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		idx->idle_last = c->prev;
	c->prev = c->next = NULL;
	idx->nidle--;
}

int shard_reader(search_t *idx, shard_t *sh, sconn_t **out)
{
	sconn_t *c;
	int rc;

	pthread_mutex_lock(&idx->idle_mu);
	for (c = idx->idle; c && c->sh != sh; c = c->next)
		;
	if (c)
		idle_unlink(idx, c);
	pthread_mutex_unlock(&idx->idle_mu);
	if (c) {
		*out = c;
		return 0;
	}
	if ((rc = conn_open(idx, sh, 0, out)) == 0) {
		(*out)->sh = sh;
		conn_cache(idx, *out);
	}
	return rc;
}

void shard_release(search_t *idx, shard_t *sh, sconn_t *c)
{
	sconn_t *old = NULL;

	/* an idle connection keeps its schema and statements, not pages */
	sqlite3_db_release_memory(c->db);
	c->sh = sh;
	pthread_mutex_lock(&idx->idle_mu);
	c->prev = NULL;
	c->next = idx->idle;
	if (idx->idle)
		idx->idle->prev = c;
	else
		idx->idle_last = c;
	idx->idle = c;
	idx->nidle++;
	if (idx->nidle > idx->open_max) {
		old = idx->idle_last;
		idle_unlink(idx, old);
	}
	pthread_mutex_unlock(&idx->idle_mu);
	conn_evict(old);
}

/* Close the least recently used writer (caller holds write_mu). */
static void writer_evict(search_t *idx, const shard_t *keep)
{
	shard_t *lru = NULL;
	pthread_mutex_lock(&idx->shards_mu);
	for (shard_t *sh = idx->shards; sh; sh = sh->next)
		if (sh->writer && sh != keep && (!lru || sh->wused < lru->wused))
			lru = sh;
	if (lru) {
		conn_evict(lru->writer);
		lru->writer = NULL;
		idx->nwriters--;
	}
	pthread_mutex_unlock(&idx->shards_mu);
}

int shard_writer(search_t *idx, shard_t *sh, sconn_t **out)
{
	int rc = 0;

	*out = NULL;
	if (!sh->writer) {
		while (idx->nwriters >= idx->open_max && idx->nwriters > 0) {
			int before = idx->nwriters;
			writer_evict(idx, sh);
			if (idx->nwriters == before)
				break;
		}
		if ((rc = conn_open(idx, sh, 1, &sh->writer)))
			return rc;
		idx->nwriters++;
		conn_cache(idx, sh->writer);
	}
	sh->wused = ++idx->wtick;
	*out = sh->writer;
	return 0;
}

void shard_writer_done(sconn_t *w)
{
	if (w)
		sqlite3_db_release_memory(w->db);
}

/* Caller holds shards_mu (and write_mu, or is the only user). */
static void shard_free(search_t *idx, shard_t *sh)
{
	sconn_t *c, *next, *dead = NULL;

	pthread_mutex_lock(&idx->idle_mu);
	for (c = idx->idle; c; c = next) {
		next = c->next;
		if (c->sh != sh)
			continue;
		idle_unlink(idx, c);
		c->next = dead;
		dead = c;
	}
	pthread_mutex_unlock(&idx->idle_mu);
	while (dead) {
		c = dead;
		dead = c->next;
		shard_conn_close(c);
	}
	if (sh->writer) {
		shard_conn_close(sh->writer);
		idx->nwriters--;
	}
	free(sh);
}

void shard_forget_tenant(search_t *idx, const uint8_t *tenant)
{
	pthread_mutex_lock(&idx->shards_mu);
	for (shard_t **pp = &idx->shards; *pp;) {
		shard_t *sh = *pp;
		if (tenant && memcmp(sh->tenant, tenant, SEARCH_TENANT_LEN)) {
			pp = &sh->next;
			continue;
		}
		*pp = sh->next;
		shard_free(idx, sh);
	}
	pthread_mutex_unlock(&idx->shards_mu);
}

void shard_forget_all(search_t *idx)
{
	shard_forget_tenant(idx, NULL);
	pthread_mutex_lock(&idx->shards_mu);
	while (idx->gens) {
		struct tgen *g = idx->gens;
		idx->gens = g->next;
		free(g);
	}
	pthread_mutex_unlock(&idx->shards_mu);
}

void shard_refresh(search_t *idx, const uint8_t *tenant)
{
	char dir[4096];
	struct stat stb;
	struct tgen *g;
	uint64_t ino = 0;
	int forget = 0;

	if (shard_tenant_dir(idx, tenant, dir, sizeof dir))
		return;
	if (stat(dir, &stb) == 0)
		ino = (uint64_t)stb.st_ino;
	pthread_mutex_lock(&idx->shards_mu);
	for (g = idx->gens; g; g = g->next)
		if (!memcmp(g->tenant, tenant, SEARCH_TENANT_LEN))
			break;
	if (!g) {
		if ((g = calloc(1, sizeof *g)) != NULL) {
			memcpy(g->tenant, tenant, SEARCH_TENANT_LEN);
			g->ino = ino;
			g->next = idx->gens;
			idx->gens = g;
		}
	} else if (g->ino != ino) {
		forget = g->ino != 0;
		g->ino = ino;
	}
	pthread_mutex_unlock(&idx->shards_mu);
	if (!forget)
		return;
	pthread_mutex_lock(&idx->write_mu);
	pthread_rwlock_wrlock(&idx->drop_lock);
	shard_forget_tenant(idx, tenant);
	pthread_rwlock_unlock(&idx->drop_lock);
	pthread_mutex_unlock(&idx->write_mu);
}
