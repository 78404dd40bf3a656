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

const char *search_errmsg(const search_t *idx)
{
	return errmsg[0] ? errmsg : "no error";
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
	idx->threads = p->threads > 0 ? p->threads : 4;
	pthread_mutex_init(&idx->write_mu, NULL);
	pthread_rwlock_init(&idx->drop_lock, NULL);
	pthread_mutex_init(&idx->shards_mu, NULL);
	pthread_mutex_init(&idx->ver_mu, NULL);
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

static int row_insert(sconn_t *w, const uint8_t *id, const search_doc_t *d,
    const uint8_t *disp, size_t displen, const uint8_t *it, size_t itlen,
    const cols_t *c)
{
	sqlite3_stmt *st = NULL;
	int rc;
	if ((rc = prep(w, ST_INS_MSG, "INSERT INTO msg(oid, date, size, has_att,"
	    " flags, display, itext) VALUES(?, ?, ?, ?, ?, ?, ?)", &st)))
		return rc;
	sqlite3_bind_blob(st, 1, id, SEARCH_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, d->date);
	sqlite3_bind_int64(st, 3, (int64_t)d->size);
	sqlite3_bind_int(st, 4, d->has_attachment ? 1 : 0);
	sqlite3_bind_int64(st, 5, d->flags);
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

/* remove id from every shard of the tenant except year keep; count */
static int remove_except(search_t *idx, const uint8_t *tenant,
    const uint8_t *id, int keep, int *count)
{
	int *years, rc;
	size_t n;
	if ((rc = shard_years(idx, tenant, &years, &n)))
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		shard_t *sh;
		sconn_t *w;
		if (years[i] == keep)
			continue;
		if ((rc = shard_get(idx, tenant, years[i], 0, &sh)) ||
		    (rc = shard_writer(idx, sh, &w)))
			break;
		int has = row_exists(w, id);
		if (has <= 0) {           /* the common case: no transaction */
			rc = has;
			continue;
		}
		if ((rc = tx(w, "BEGIN IMMEDIATE")))
			break;
		int d = row_delete(idx, w, tenant, id);
		if (d < 0) {
			sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
			rc = d;
		} else {
			*count += d;
			rc = tx(w, "COMMIT");
		}
	}
	free(years);
	return rc;
}

int search_index_add(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN], const uint8_t id[SEARCH_ID_LEN],
    const search_doc_t *doc, const search_display_t *display)
{
	cols_t c;
	sbuf_t to = { 0 };
	uint8_t key[32], *disp = NULL, *it = NULL;
	size_t displen = 0, itlen = 0;
	uint32_t kver;
	shard_t *sh;
	sconn_t *w;
	int rc, year, dummy = 0;

	if (!idx || !tenant || !id || !doc)
		return search_fail(AR_EINVAL, "search_index_add: missing argument");
	if ((rc = make_cols(idx, doc, &c)))
		return rc;
	join(&to, doc->to, doc->n_to);
	const char *dv[3] = {
		display ? display->from : doc->from,
		display ? display->to : to.p,
		display ? display->subject : doc->subject };
	if ((rc = key_version(idx, tenant, &kver)) ||
	    (rc = shard_display_key(idx, tenant, kver, key)))
		goto out;
	rc = blob_seal(key, kver, tenant, id, 'd', dv, 3, &disp, &displen);
	if (rc == 0)
		rc = blob_seal(key, kver, tenant, id, 'i',
		    (const char *const *)c.v, SHARD_COLUMNS, &it, &itlen);
	sodium_memzero(key, sizeof key);
	if (rc)
		goto out;
	year = shard_year_of(doc->date);
	pthread_mutex_lock(&idx->write_mu);
	pthread_rwlock_rdlock(&idx->drop_lock);
	if ((rc = shard_get(idx, tenant, year, 1, &sh)) == 0 &&
	    (rc = shard_writer(idx, sh, &w)) == 0 &&
	    (rc = tx(w, "BEGIN IMMEDIATE")) == 0) {
		int d = row_delete(idx, w, tenant, id);
		rc = d < 0 ? d : row_insert(w, id, doc, disp, displen, it, itlen,
		    &c);
		if (rc == 0)
			rc = tx(w, "COMMIT");
		if (rc)
			sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
	}
	/* the new row is committed before an old copy is removed */
	if (rc == 0)
		rc = remove_except(idx, tenant, id, year, &dummy);
	pthread_rwlock_unlock(&idx->drop_lock);
	pthread_mutex_unlock(&idx->write_mu);
out:
	free(to.p);
	free(disp);
	free(it);
	for (int i = 0; i < SHARD_COLUMNS; i++)
		if (c.v[i])
			sodium_memzero(c.v[i], strlen(c.v[i]));
	cols_free(&c);
	return rc;
}

int search_index_remove(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    const uint8_t id[SEARCH_ID_LEN])
{
	int count = 0, rc;
	pthread_mutex_lock(&idx->write_mu);
	pthread_rwlock_rdlock(&idx->drop_lock);
	rc = remove_except(idx, tenant, id, -1, &count);
	pthread_rwlock_unlock(&idx->drop_lock);
	pthread_mutex_unlock(&idx->write_mu);
	if (rc == 0 && count == 0)
		return search_fail(AR_ENOENT, "object not indexed");
	return rc;
}

int search_index_list(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    search_list_cb cb, void *arg)
{
	int *years, rc;
	size_t n;
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
		shard_release(sh, c);
	}
	free(years);
	pthread_rwlock_unlock(&idx->drop_lock);
	return rc;
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
