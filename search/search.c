/*
 * search.c - the index handle: open/close, add, remove, list, drop.
 */
#include "search/search_priv.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"

static __thread char errmsg[512];

int search_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	va_end(ap);
	return rc;
}

static const char *const verdict_names[] = { "none", "clean", "spam",
	"virus", "policy", "unscanned" };

int search_verdict_parse(const char *name, size_t len)
{
	for (size_t i = 0; name && i < AR_ARRAY_LEN(verdict_names); i++)
		if (strlen(verdict_names[i]) == len &&
		    strncasecmp(verdict_names[i], name, len) == 0)
			return (int)i;
	return -1;
}

const char *search_verdict_name(int verdict)
{
	return verdict >= 0 && (size_t)verdict < AR_ARRAY_LEN(verdict_names) ?
	    verdict_names[verdict] : "none";
}

const char *search_errmsg(const search_t *idx)
{
	return errmsg[0] ? errmsg : "no error";
}

static void locks_init(search_t *idx)
{
	pthread_mutex_init(&idx->write_mu, NULL);
	pthread_rwlock_init(&idx->drop_lock, NULL);
	pthread_mutex_init(&idx->shards_mu, NULL);
	pthread_mutex_init(&idx->idle_mu, NULL);
	pthread_mutex_init(&idx->ver_mu, NULL);
}

int search_open(search_t **out, const search_open_params_t *p)
{
	search_t *idx;
	int rc;

	*out = NULL;
	if (!p || !p->data_dir || !p->ks)
		return search_fail(AR_EINVAL, "search_open: data_dir and ks "
		    "are required");
	if (!tk_language_valid(p->language))
		return search_fail(AR_ECONFIG, "unknown stemmer language '%s'",
		    p->language);
	if (sodium_init() < 0)
		return search_fail(AR_EIO, "sodium_init failed");
	if (!(idx = calloc(1, sizeof *idx)))
		return AR_ENOMEM;
	if (asprintf(&idx->dir, "%s/index", p->data_dir) < 0) {
		free(idx);
		return AR_ENOMEM;
	}
	if ((rc = ar_mkdirs(idx->dir, 0700)) != 0) {
		search_fail(rc, "mkdir %s: %s", idx->dir, strerror(errno));
		free(idx->dir);
		free(idx);
		return rc;
	}
	idx->ks = p->ks;
	ar_strlcpy(idx->lang, p->language && *p->language ? p->language :
	    "none", sizeof idx->lang);
	idx->pmin = p->prefix_min > 0 ? p->prefix_min : 3;
	idx->pmax = p->prefix_max > 0 ? p->prefix_max : 12;
	if (idx->pmax < idx->pmin)
		idx->pmax = idx->pmin;
	idx->body_max = p->body_max ? p->body_max : 4u << 20;
	idx->terms_max = p->terms_max ? p->terms_max :
	    SEARCH_TERMS_MAX_DEFAULT;
	idx->threads = p->threads > 0 ? p->threads : 4;
	idx->cache = p->shard_cache ? p->shard_cache :
	    SEARCH_SHARD_CACHE_DEFAULT;
	idx->open_max = p->open_shards > 0 ? p->open_shards :
	    SEARCH_OPEN_SHARDS_DEFAULT;
	idx->batch_bytes = p->batch_bytes ? p->batch_bytes :
	    SEARCH_BATCH_BYTES_DEFAULT;
	idx->chunk_ids = 4096;
	locks_init(idx);
	*out = idx;
	return 0;
}

int search_open_at(search_t **out, const search_t *like, const char *dir)
{
	search_t *idx;
	int rc;

	*out = NULL;
	if ((rc = ar_mkdirs(dir, 0700)) != 0)
		return search_fail(rc, "mkdir %s: %s", dir, strerror(errno));
	if (!(idx = calloc(1, sizeof *idx)) || !(idx->dir = strdup(dir))) {
		free(idx);
		return AR_ENOMEM;
	}
	idx->ks = like->ks;
	ar_strlcpy(idx->lang, like->lang, sizeof idx->lang);
	idx->pmin = like->pmin;
	idx->pmax = like->pmax;
	idx->body_max = like->body_max;
	idx->terms_max = like->terms_max;
	idx->threads = like->threads;
	idx->cache = like->cache;
	idx->open_max = like->open_max;
	idx->batch_bytes = like->batch_bytes;
	idx->chunk_ids = like->chunk_ids;
	locks_init(idx);
	*out = idx;
	return 0;
}

void search_close(search_t *idx)
{
	if (!idx)
		return;
	shard_forget_all(idx);
	pthread_mutex_destroy(&idx->write_mu);
	pthread_rwlock_destroy(&idx->drop_lock);
	pthread_mutex_destroy(&idx->shards_mu);
	pthread_mutex_destroy(&idx->idle_mu);
	pthread_mutex_destroy(&idx->ver_mu);
	free(idx->dir);
	free(idx);
}

int search_tenant_set_language(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    const char *language)
{
	char dir[4096], path[4200];
	const char *l = language && *language ? language : "none";
	int rc;
	if (!tk_language_valid(l))
		return search_fail(AR_EINVAL, "unknown stemmer language '%s'", l);
	if (shard_tenant_dir(idx, tenant, dir, sizeof dir))
		return AR_ETOOBIG;
	pthread_mutex_lock(&idx->write_mu);
	rc = ar_mkdirs(dir, 0700);
	if (rc == 0) {
		snprintf(path, sizeof path, "%s/language", dir);
		rc = ar_file_write_atomic(path, l, strlen(l), 0600);
	}
	pthread_mutex_unlock(&idx->write_mu);
	return rc ? search_fail(rc, "write %s/language", dir) : 0;
}

/* current key version of a tenant, cached for a minute */
static int key_version(search_t *idx, const uint8_t *tenant, uint32_t *v)
{
	int64_t now = ar_mono_us();
	struct kver_cache *slot = &idx->kver[tenant[0] % AR_ARRAY_LEN(idx->kver)];
	int destroyed = 0, rc;

	pthread_mutex_lock(&idx->ver_mu);
	if (slot->version && memcmp(slot->tenant, tenant, SEARCH_TENANT_LEN) == 0 &&
	    now - slot->at_us < 60 * 1000000LL) {
		*v = slot->version;
		pthread_mutex_unlock(&idx->ver_mu);
		return 0;
	}
	pthread_mutex_unlock(&idx->ver_mu);
	rc = keysvc_tenant_info(idx->ks, tenant, v, &destroyed);
	if (rc)
		return search_fail(rc, "tenant key info: %s",
		    keysvc_errmsg(idx->ks));
	if (destroyed)
		return search_fail(AR_ESHREDDED, "tenant keys destroyed");
	pthread_mutex_lock(&idx->ver_mu);
	memcpy(slot->tenant, tenant, SEARCH_TENANT_LEN);
	slot->version = *v;
	slot->at_us = now;
	pthread_mutex_unlock(&idx->ver_mu);
	return 0;
}

/* ---- column texts -------------------------------------------------------- */

static void join(sbuf_t *b, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!v[i])
			continue;
		if (b->len)
			sb_puts(b, "\n");
		sb_puts(b, v[i]);
	}
}

/* bare address of "Name <addr>" */
static void bare(const char *s, char *out, size_t len)
{
	const char *lt = strrchr(s, '<'), *gt;
	if (lt && (gt = strchr(lt, '>')) != NULL) {
		size_t n = (size_t)(gt - lt - 1);
		if (n >= len)
			n = len - 1;
		memcpy(out, lt + 1, n);
		out[n] = 0;
	} else {
		ar_strlcpy(out, s, len);
	}
}

static int utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return (int)n;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return (int)max;
}

typedef struct cols {
	char *v[SHARD_COLUMNS];
} cols_t;

static void cols_free(cols_t *c)
{
	for (int i = 0; i < SHARD_COLUMNS; i++)
		free(c->v[i]);
}

static int make_cols(const search_t *idx, const search_doc_t *d, cols_t *c)
{
	sbuf_t b[SHARD_COLUMNS] = { { 0 } };
	sbuf_t tocc = { 0 };
	char addr[512];

	memset(c, 0, sizeof *c);
	sb_puts(&b[0], d->from ? d->from : "");
	join(&b[1], d->to, d->n_to);
	join(&b[1], d->rcpt, d->n_rcpt);
	join(&b[2], d->cc, d->n_cc);
	join(&b[3], d->bcc, d->n_bcc);
	join(&tocc, d->to, d->n_to);
	join(&tocc, d->cc, d->n_cc);
	for (size_t i = 0; i < d->n_rcpt; i++) {
		if (!d->rcpt[i])
			continue;
		bare(d->rcpt[i], addr, sizeof addr);
		if (!addr[0] || (tocc.p && strcasestr(tocc.p, addr)))
			continue;
		if (b[3].len)
			sb_puts(&b[3], "\n");
		sb_puts(&b[3], addr);
	}
	free(tocc.p);
	sb_puts(&b[4], d->subject ? d->subject : "");
	if (d->body)
		sb_add(&b[5], d->body, (size_t)utf8_cut(d->body, idx->body_max));
	else
		sb_puts(&b[5], "");
	join(&b[6], d->filenames, d->n_filenames);
	int oom = 0;
	for (int i = 0; i < SHARD_COLUMNS; i++) {
		if (!b[i].p)
			sb_puts(&b[i], "");
		oom |= b[i].oom;
		c->v[i] = b[i].p;
	}
	if (oom) {
		cols_free(c);
		return AR_ENOMEM;
	}
	return 0;
}

/* ---- rows ---------------------------------------------------------------- */

static int prep(sconn_t *c, int i, const char *sql, sqlite3_stmt **st)
{
	if (!c->st[i] && sqlite3_prepare_v3(c->db, sql, -1,
	    SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL) != SQLITE_OK)
		return search_fail(AR_EIO, "prepare: %s", sqlite3_errmsg(c->db));
	*st = c->st[i];
	sqlite3_reset(*st);
	sqlite3_clear_bindings(*st);
	return 0;
}

static int sql_fail(sconn_t *c, const char *what)
{
	int e = sqlite3_errcode(c->db);
	return search_fail(e == SQLITE_FULL ? AR_ENOSPC : AR_EIO, "%s: %s",
	    what, sqlite3_errmsg(c->db));
}

/* Delete (tenant, id) from the shard of w: 1 deleted, 0 absent, < 0. */
static int row_delete(search_t *idx, sconn_t *w, const uint8_t *tenant,
    const uint8_t *id)
{
	sqlite3_stmt *st = NULL;
	int rc;
	char *v[SHARD_COLUMNS];
	uint8_t key[32];

	if ((rc = prep(w, ST_FIND, "SELECT rowid, itext FROM msg WHERE oid = ?",
	    &st)))
		return rc;
	sqlite3_bind_blob(st, 1, id, SEARCH_ID_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return sql_fail(w, "find");
	int64_t rowid = sqlite3_column_int64(st, 0);
	const uint8_t *blob = sqlite3_column_blob(st, 1);
	size_t blen = (size_t)sqlite3_column_bytes(st, 1);
	if ((rc = shard_display_key(idx, tenant, blob_version(blob, blen), key)))
		return rc;
	rc = blob_open(key, tenant, id, 'i', blob, blen, v, SHARD_COLUMNS);
	sodium_memzero(key, sizeof key);
	sqlite3_reset(st);
	if (rc)
		return search_fail(rc, "row of the index does not decrypt");
	if ((rc = prep(w, ST_DEL_FTS, "INSERT INTO fts(fts, rowid, from_addr, "
	    "to_addr, cc_addr, bcc_addr, subject, body, filename) "
	    "VALUES('delete', ?, ?, ?, ?, ?, ?, ?, ?)", &st)) == 0) {
		sqlite3_bind_int64(st, 1, rowid);
		for (int i = 0; i < SHARD_COLUMNS; i++)
			sqlite3_bind_text(st, i + 2, v[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = sql_fail(w, "fts delete");
		sqlite3_reset(st);
	}
	for (int i = 0; i < SHARD_COLUMNS; i++) {
		if (v[i])
			sodium_memzero(v[i], strlen(v[i]));
		free(v[i]);
	}
	if (rc || (rc = prep(w, ST_DEL_MSG, "DELETE FROM msg WHERE rowid = ?",
	    &st)))
		return rc;
	sqlite3_bind_int64(st, 1, rowid);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sql_fail(w, "delete");
	sqlite3_reset(st);
	return 1;
}

static int row_insert(sconn_t *w, const uint8_t *id, int64_t date,
    uint64_t size, int has_att, uint32_t flags, const uint8_t *disp,
    size_t displen, const uint8_t *it, size_t itlen, const cols_t *c)
{
	sqlite3_stmt *st = NULL;
	int rc;
	if ((rc = prep(w, ST_INS_MSG, "INSERT INTO msg(oid, date, size, has_att,"
	    " flags, display, itext) VALUES(?, ?, ?, ?, ?, ?, ?)", &st)))
		return rc;
	sqlite3_bind_blob(st, 1, id, SEARCH_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, date);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	sqlite3_bind_int(st, 4, has_att ? 1 : 0);
	sqlite3_bind_int64(st, 5, flags);
	sqlite3_bind_blob(st, 6, disp, (int)displen, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, it, (int)itlen, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sql_fail(w, "insert");
	sqlite3_reset(st);
	int64_t rowid = sqlite3_last_insert_rowid(w->db);
	if ((rc = prep(w, ST_INS_FTS, "INSERT INTO fts(rowid, from_addr, "
	    "to_addr, cc_addr, bcc_addr, subject, body, filename) "
	    "VALUES(?, ?, ?, ?, ?, ?, ?, ?)", &st)))
		return rc;
	sqlite3_bind_int64(st, 1, rowid);
	for (int i = 0; i < SHARD_COLUMNS; i++)
		sqlite3_bind_text(st, i + 2, c->v[i], -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sql_fail(w, "fts insert");
	sqlite3_reset(st);
	return 0;
}

/* 1 if id has a row in the shard of w, 0 if not, < 0 on error */
static int row_exists(sconn_t *w, const uint8_t *id)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(w, ST_FIND, "SELECT rowid, itext FROM msg WHERE oid = ?",
	    &st);
	if (rc)
		return rc;
	sqlite3_bind_blob(st, 1, id, SEARCH_ID_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 :
	    sql_fail(w, "find");
}

static int tx(sconn_t *w, const char *sql)
{
	return sqlite3_exec(w->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 :
	    sql_fail(w, sql);
}

/* ---- batches --------------------------------------------------------------- */

typedef struct brow {
	uint8_t id[SEARCH_ID_LEN];
	int remove;                /* 1: only remove the object */
	int year;
	int64_t date;
	uint64_t size;
	int has_att;
	uint32_t flags;
	cols_t c;
	uint8_t *disp, *it;        /* sealed display and index texts */
	size_t displen, itlen;
} brow_t;

struct search_batch {
	search_t *idx;
	uint8_t tenant[SEARCH_TENANT_LEN];
	pthread_mutex_t mu;        /* rows, for search_batch_add from threads */
	brow_t *rows;
	size_t n, cap;
	size_t bytes;              /* texts and blobs of the rows */
	uint64_t removed;          /* rows deleted from shards at commit */
};

static void brow_clear(brow_t *r)
{
	for (int i = 0; i < SHARD_COLUMNS; i++)
		if (r->c.v[i])
			sodium_memzero(r->c.v[i], strlen(r->c.v[i]));
	cols_free(&r->c);
	free(r->disp);
	free(r->it);
	memset(r, 0, sizeof *r);
}

int search_batch_begin(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    search_batch_t **out)
{
	search_batch_t *b;

	*out = NULL;
	if (!idx || !tenant)
		return search_fail(AR_EINVAL, "search_batch_begin: missing "
		    "argument");
	if (!(b = calloc(1, sizeof *b)))
		return AR_ENOMEM;
	b->idx = idx;
	memcpy(b->tenant, tenant, SEARCH_TENANT_LEN);
	pthread_mutex_init(&b->mu, NULL);
	*out = b;
	return 0;
}

size_t search_batch_count(const search_batch_t *b)
{
	return b ? b->n : 0;
}

size_t search_batch_bytes(search_batch_t *b)
{
	size_t n;
	if (!b)
		return 0;
	pthread_mutex_lock(&b->mu);
	n = b->bytes;
	pthread_mutex_unlock(&b->mu);
	return n;
}

static size_t brow_bytes(const brow_t *r)
{
	size_t n = r->displen + r->itlen + sizeof *r;
	for (int i = 0; i < SHARD_COLUMNS; i++)
		n += r->c.v[i] ? strlen(r->c.v[i]) + 1 : 0;
	return n;
}

void search_batch_free(search_batch_t *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		brow_clear(&b->rows[i]);
	free(b->rows);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

/* Put r into the batch; an earlier change of the same id is replaced. */
static int batch_put(search_batch_t *b, brow_t *r)
{
	int rc = 0;
	size_t bytes = brow_bytes(r);
	pthread_mutex_lock(&b->mu);
	for (size_t i = 0; i < b->n; i++)
		if (!memcmp(b->rows[i].id, r->id, SEARCH_ID_LEN)) {
			b->bytes -= brow_bytes(&b->rows[i]);
			brow_clear(&b->rows[i]);
			b->rows[i] = *r;
			b->bytes += bytes;
			pthread_mutex_unlock(&b->mu);
			return 0;
		}
	if (ar_grow((void **)&b->rows, &b->cap, b->n, sizeof *b->rows))
		rc = AR_ENOMEM;
	else {
		b->rows[b->n++] = *r;
		b->bytes += bytes;
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int search_batch_add(search_batch_t *b, const uint8_t id[SEARCH_ID_LEN],
    const search_doc_t *doc, const search_display_t *display)
{
	search_t *idx;
	sbuf_t to = { 0 };
	uint8_t key[32];
	uint32_t kver;
	brow_t r;
	int rc;

	if (!b || !id || !doc)
		return search_fail(AR_EINVAL, "search_batch_add: missing "
		    "argument");
	idx = b->idx;
	memset(&r, 0, sizeof r);
	memcpy(r.id, id, SEARCH_ID_LEN);
	if ((rc = make_cols(idx, doc, &r.c)))
		return rc;
	for (size_t i = 0; i < doc->n_to; i++) {
		if (!doc->to[i])
			continue;
		if (to.len)
			sb_puts(&to, ", ");
		sb_puts(&to, doc->to[i]);
	}
	const char *dv[3] = {
		display ? display->from : doc->from,
		display ? display->to : to.p,
		display ? display->subject : doc->subject };
	if ((rc = key_version(idx, b->tenant, &kver)) ||
	    (rc = shard_display_key(idx, b->tenant, kver, key)))
		goto fail;
	rc = blob_seal(key, kver, b->tenant, id, 'd', dv, 3, &r.disp,
	    &r.displen);
	if (rc == 0)
		rc = blob_seal(key, kver, b->tenant, id, 'i',
		    (const char *const *)r.c.v, SHARD_COLUMNS, &r.it, &r.itlen);
	sodium_memzero(key, sizeof key);
	if (rc)
		goto fail;
	r.year = shard_year_of(doc->date);
	r.date = doc->date;
	r.size = doc->size;
	r.has_att = doc->has_attachment;
	r.flags = MSG_FLAGS_PACK(doc->flags, doc->verdict, doc->quarantined);
	if ((rc = batch_put(b, &r)))
		goto fail;
	free(to.p);
	return 0;
fail:
	free(to.p);
	brow_clear(&r);
	return rc;
}

int search_batch_remove(search_batch_t *b, const uint8_t id[SEARCH_ID_LEN])
{
	brow_t r;
	int rc;
	if (!b || !id)
		return search_fail(AR_EINVAL, "search_batch_remove: missing "
		    "argument");
	memset(&r, 0, sizeof r);
	memcpy(r.id, id, SEARCH_ID_LEN);
	r.remove = 1;
	r.year = -1;
	if ((rc = batch_put(b, &r)))
		brow_clear(&r);
	return rc;
}

/* The rows of one year into its shard: one transaction. */
static int commit_year(search_t *idx, search_batch_t *b, int year)
{
	shard_t *sh;
	sconn_t *w;
	int rc;

	if ((rc = shard_get(idx, b->tenant, year, 1, &sh)) ||
	    (rc = shard_writer(idx, sh, &w)) ||
	    (rc = tx(w, "BEGIN IMMEDIATE")))
		return rc;
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		const brow_t *r = &b->rows[i];
		if (r->remove || r->year != year)
			continue;
		int d = row_delete(idx, w, b->tenant, r->id);
		rc = d < 0 ? d : row_insert(w, r->id, r->date, r->size,
		    r->has_att, r->flags, r->disp, r->displen, r->it, r->itlen,
		    &r->c);
	}
	if (rc == 0)
		rc = tx(w, "COMMIT");
	if (rc)
		sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
	shard_writer_done(w);
	return rc;
}

/* Remove from the shard of year every row of the batch that does not
 * belong there (removals, and objects whose date moved them): one
 * transaction, opened only when there is something to delete. */
static int cleanup_year(search_t *idx, search_batch_t *b, int year)
{
	shard_t *sh;
	sconn_t *w;
	char *hit;
	size_t nhit = 0;
	int rc;

	if ((rc = shard_get(idx, b->tenant, year, 0, &sh)))
		return rc == AR_ENOENT ? 0 : rc;
	if ((rc = shard_writer(idx, sh, &w)))
		return rc;
	if (!(hit = calloc(b->n, 1)))
		return AR_ENOMEM;
	/* the common case, nothing to delete: lookups in one read transaction */
	if ((rc = tx(w, "BEGIN")))
		goto out;
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		const brow_t *r = &b->rows[i];
		if (!r->remove && r->year == year)
			continue;
		int has = row_exists(w, r->id);
		if (has < 0)
			rc = has;
		else if (has)
			hit[i] = 1, nhit++;
	}
	sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL);
	if (rc || nhit == 0 || (rc = tx(w, "BEGIN IMMEDIATE")))
		goto out;
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		if (!hit[i])
			continue;
		int d = row_delete(idx, w, b->tenant, b->rows[i].id);
		if (d < 0)
			rc = d;
		else
			b->removed += (uint64_t)d;
	}
	if (rc == 0)
		rc = tx(w, "COMMIT");
	if (rc)
		sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
out:
	shard_writer_done(w);
	free(hit);
	return rc;
}

int search_batch_commit(search_batch_t *b)
{
	search_t *idx;
	int *years = NULL, rc = 0;
	size_t nyears = 0;

	if (!b)
		return search_fail(AR_EINVAL, "search_batch_commit: no batch");
	if (b->n == 0)
		return 0;
	idx = b->idx;
	shard_refresh(idx, b->tenant);
	pthread_mutex_lock(&idx->write_mu);
	pthread_rwlock_rdlock(&idx->drop_lock);
	/* the new rows, one transaction per year, are committed before an
	 * old copy in another year's shard is removed */
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		int y = b->rows[i].year, seen = 0;
		if (b->rows[i].remove)
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = !b->rows[k].remove && b->rows[k].year == y;
		if (!seen)
			rc = commit_year(idx, b, y);
	}
	if (rc == 0)
		rc = shard_years(idx, b->tenant, &years, &nyears);
	for (size_t i = 0; i < nyears && rc == 0; i++)
		rc = cleanup_year(idx, b, years[i]);
	free(years);
	pthread_rwlock_unlock(&idx->drop_lock);
	pthread_mutex_unlock(&idx->write_mu);
	return rc;
}

int search_index_add(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    const uint8_t id[SEARCH_ID_LEN], const search_doc_t *doc,
    const search_display_t *display)
{
	search_batch_t *b;
	int rc;
	if (!idx || !tenant || !id || !doc)
		return search_fail(AR_EINVAL, "search_index_add: missing argument");
	if ((rc = search_batch_begin(idx, tenant, &b)))
		return rc;
	if ((rc = search_batch_add(b, id, doc, display)) == 0)
		rc = search_batch_commit(b);
	search_batch_free(b);
	return rc;
}

int search_index_remove(search_t *idx,
    const uint8_t tenant[SEARCH_TENANT_LEN], const uint8_t id[SEARCH_ID_LEN])
{
	search_batch_t *b;
	int rc;
	if ((rc = search_batch_begin(idx, tenant, &b)))
		return rc;
	if ((rc = search_batch_remove(b, id)) == 0)
		rc = search_batch_commit(b);
	if (rc == 0 && b->removed == 0)
		rc = search_fail(AR_ENOENT, "object not indexed");
	search_batch_free(b);
	return rc;
}

int search_index_list(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    search_list_cb cb, void *arg)
{
	int *years, rc;
	size_t n;
	shard_refresh(idx, tenant);
	pthread_rwlock_rdlock(&idx->drop_lock);
	if ((rc = shard_years(idx, tenant, &years, &n))) {
		pthread_rwlock_unlock(&idx->drop_lock);
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		shard_t *sh;
		sconn_t *c;
		sqlite3_stmt *st = NULL;
		if ((rc = shard_get(idx, tenant, years[i], 0, &sh)) ||
		    (rc = shard_reader(idx, sh, &c)))
			break;
		if (sqlite3_prepare_v2(c->db, "SELECT oid, date FROM msg ORDER BY "
		    "date DESC, oid DESC", -1, &st, NULL) != SQLITE_OK)
			rc = sql_fail(c, "list");
		while (rc == 0) {
			int s = sqlite3_step(st);
			if (s == SQLITE_DONE)
				break;
			if (s != SQLITE_ROW) {
				rc = sql_fail(c, "list");
				break;
			}
			if (sqlite3_column_bytes(st, 0) != SEARCH_ID_LEN)
				continue;
			rc = cb(arg, sqlite3_column_blob(st, 0),
			    sqlite3_column_int64(st, 1));
		}
		sqlite3_finalize(st);
		shard_release(idx, sh, c);
	}
	free(years);
	pthread_rwlock_unlock(&idx->drop_lock);
	return rc;
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SEARCH_ID_LEN);
}

int index_ids_range(search_t *idx, const uint8_t *tenant, const uint8_t *lo,
    const uint8_t *hi, size_t max, uint8_t (**ids)[SEARCH_ID_LEN],
    size_t *n, int *cut, uint8_t cut_at[SEARCH_ID_LEN])
{
	/* oid blobs compare as memcmp, like the catalog's keys: nothing is
	 * below the empty blob, every 16-byte id is below 17 bytes of ff */
	static const uint8_t top[SEARCH_ID_LEN + 1] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t (*v)[SEARCH_ID_LEN] = NULL;
	size_t cnt = 0, cap = 0, nyears;
	int *years, rc;

	*ids = NULL;
	*n = 0;
	*cut = 0;
	shard_refresh(idx, tenant);
	pthread_rwlock_rdlock(&idx->drop_lock);
	if ((rc = shard_years(idx, tenant, &years, &nyears))) {
		pthread_rwlock_unlock(&idx->drop_lock);
		return rc;
	}
	for (size_t i = 0; i < nyears && rc == 0; i++) {
		shard_t *sh;
		sconn_t *c;
		sqlite3_stmt *st = NULL;
		size_t got = 0, first = cnt;
		if ((rc = shard_get(idx, tenant, years[i], 0, &sh)) ||
		    (rc = shard_reader(idx, sh, &c)))
			break;
		if (sqlite3_prepare_v2(c->db, "SELECT oid FROM msg WHERE oid > ? "
		    "AND oid <= ? ORDER BY oid LIMIT ?", -1, &st, NULL) !=
		    SQLITE_OK) {
			rc = sql_fail(c, "list");
		} else {
			sqlite3_bind_blob(st, 1, lo ? lo : top, lo ? SEARCH_ID_LEN :
			    0, SQLITE_STATIC);
			sqlite3_bind_blob(st, 2, hi ? hi : top, hi ? SEARCH_ID_LEN :
			    (int)sizeof top, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
		}
		while (rc == 0) {
			int s = sqlite3_step(st);
			if (s == SQLITE_DONE)
				break;
			if (s != SQLITE_ROW) {
				rc = sql_fail(c, "list");
				break;
			}
			const uint8_t *id = sqlite3_column_blob(st, 0);
			got++;
			if (sqlite3_column_bytes(st, 0) != SEARCH_ID_LEN)
				continue;
			if (ar_grow((void **)&v, &cap, cnt, sizeof *v)) {
				rc = AR_ENOMEM;
				break;
			}
			memcpy(v[cnt++], id, SEARCH_ID_LEN);
		}
		/* this shard may hold more: complete only up to its last */
		if (rc == 0 && got == max && cnt > first && (!*cut ||
		    memcmp(v[cnt - 1], cut_at, SEARCH_ID_LEN) < 0)) {
			*cut = 1;
			memcpy(cut_at, v[cnt - 1], SEARCH_ID_LEN);
		}
		sqlite3_finalize(st);
		shard_release(idx, sh, c);
	}
	free(years);
	pthread_rwlock_unlock(&idx->drop_lock);
	if (rc) {
		free(v);
		return rc;
	}
	if (cnt)
		qsort(v, cnt, sizeof *v, id_cmp);
	*ids = v;
	*n = cnt;
	return 0;
}

int search_tenant_drop(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN])
{
	char dir[4096], path[4400];
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (shard_tenant_dir(idx, tenant, dir, sizeof dir))
		return AR_ETOOBIG;
	pthread_mutex_lock(&idx->write_mu);
	pthread_rwlock_wrlock(&idx->drop_lock);
	shard_forget_tenant(idx, tenant);
	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			const char *s = e->d_name;
			if (strspn(s, "0123456789") != 4 || strncmp(s + 4, ".db", 3))
				continue;
			snprintf(path, sizeof path, "%s/%s", dir, s);
			if (unlink(path) < 0 && errno != ENOENT)
				rc = search_fail(AR_EIO, "unlink %s: %s", path,
				    strerror(errno));
		}
		closedir(d);
		if (rc == 0)
			rc = ar_fsync_dir(dir);
	} else if (errno != ENOENT) {
		rc = search_fail(AR_EIO, "opendir %s: %s", dir, strerror(errno));
	}
	pthread_rwlock_unlock(&idx->drop_lock);
	pthread_mutex_unlock(&idx->write_mu);
	return rc;
}
