/*
 * run.c - search_run: fan out over the shards of a tenant in parallel,
 * merge, page with a MAC'd cursor, decrypt what the rows show.
 *
 * Cursor (base64url, no padding) of 42 bytes:
 *   1 | order | key (date int64, or rank double bits) | id (16) | MAC (16)
 *   MAC = BLAKE2b-128 keyed with the tenant's cursor key over
 *         "archived-search-cursor-v1" | tenant | order | key | id | query
 * The cursor key is derived from the tenant's "index" key (version 1).
 */
#include "search/search_priv.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ar.h"

#define CUR_RAW 42
#define CUR_TAG "archived-search-cursor-v1"

struct search_results {
	search_row_t *rows;
	size_t n;
	uint64_t total;
	char *next;
};

typedef struct hit {
	uint8_t id[SEARCH_ID_LEN];
	int64_t date;
	uint64_t size;
	uint32_t flags;
	int has_att;
	double rank;
	uint8_t *disp;
	size_t displen;
} hit_t;

typedef struct cursor {
	int set;
	int64_t date;
	double rank;
	uint8_t id[SEARCH_ID_LEN];
} cursor_t;

typedef struct job {
	search_t *idx;
	const uint8_t *tenant;
	const qc_out_t *qc;
	const cursor_t *cur;
	int order, limit, year;
	hit_t *hits;
	size_t nhits;
	uint64_t count;
	int rc;
	char err[256];
} job_t;

typedef struct pool {
	job_t *jobs;
	size_t njobs;
	size_t next;                /* atomic */
} pool_t;

/* ---- cursor ---------------------------------------------------------------- */

static int cursor_key(search_t *idx, const uint8_t *tenant, uint8_t out[32])
{
	uint8_t k[KEYSVC_KEY_LEN];
	static const char label[] = "archived search cursor key v1";
	int rc = keysvc_derive(idx->ks, tenant, 1, "index", k);
	if (rc)
		return search_fail(rc, "tenant index key: %s",
		    keysvc_errmsg(idx->ks));
	crypto_generichash(out, 32, (const unsigned char *)label,
	    sizeof label - 1, k, sizeof k);
	sodium_memzero(k, sizeof k);
	return 0;
}

static void cursor_mac(const uint8_t key[32], const uint8_t *tenant,
    const uint8_t *raw, const char *query, uint8_t mac[16])
{
	crypto_generichash_state s;
	crypto_generichash_init(&s, key, 32, 16);
	crypto_generichash_update(&s, (const unsigned char *)CUR_TAG,
	    sizeof CUR_TAG - 1);
	crypto_generichash_update(&s, tenant, SEARCH_TENANT_LEN);
	crypto_generichash_update(&s, raw, CUR_RAW - 16);
	crypto_generichash_update(&s, (const unsigned char *)query,
	    strlen(query));
	crypto_generichash_final(&s, mac, 16);
}

static char *cursor_make(const uint8_t key[32], const uint8_t *tenant,
    const char *query, int order, const hit_t *h)
{
	uint8_t raw[CUR_RAW];
	uint64_t k;
	raw[0] = 1;
	raw[1] = (uint8_t)order;
	if (order == SEARCH_BY_RANK)
		memcpy(&k, &h->rank, sizeof k);
	else
		k = (uint64_t)h->date;
	ar_put_u64(raw + 2, k);
	memcpy(raw + 10, h->id, SEARCH_ID_LEN);
	cursor_mac(key, tenant, raw, query, raw + CUR_RAW - 16);
	char *out = malloc(SEARCH_CURSOR_MAX);
	if (out)
		sodium_bin2base64(out, SEARCH_CURSOR_MAX, raw, CUR_RAW,
		    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

static int cursor_parse(const uint8_t key[32], const uint8_t *tenant,
    const char *query, int order, const char *text, cursor_t *c)
{
	uint8_t raw[CUR_RAW], mac[16];
	size_t n = 0;
	if (strlen(text) >= SEARCH_CURSOR_MAX ||
	    sodium_base642bin(raw, sizeof raw, text, strlen(text), NULL, &n,
	    NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != CUR_RAW || raw[0] != 1)
		return search_fail(AR_EINVAL, "malformed cursor");
	cursor_mac(key, tenant, raw, query, mac);
	if (sodium_memcmp(mac, raw + CUR_RAW - 16, 16) != 0)
		return search_fail(AR_EINVAL, "cursor does not belong to this "
		    "tenant and query");
	if (raw[1] != order)
		return search_fail(AR_EINVAL, "cursor of another sort order");
	uint64_t k = ar_get_u64(raw + 2);
	c->set = 1;
	c->date = (int64_t)k;
	memcpy(&c->rank, &k, sizeof k);
	memcpy(c->id, raw + 10, SEARCH_ID_LEN);
	return 0;
}

/* ---- one shard ------------------------------------------------------------- */

static void bind_common(sqlite3_stmt *st, const qc_out_t *qc, int where,
    int *i)
{
	if (qc->match)
		sqlite3_bind_text(st, (*i)++, qc->match, -1, SQLITE_STATIC);
	for (size_t k = 0; where && k < qc->nparams; k++) {
		if (qc->params[k].is_text)
			sqlite3_bind_text(st, (*i)++, qc->params[k].s, -1,
			    SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, (*i)++, qc->params[k].i);
	}
}

/* Rows of the shard, about (the highest rowid: cheap, and an upper bound). */
static int64_t shard_rows(sconn_t *c)
{
	sqlite3_stmt *st = NULL;
	int64_t n = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT max(rowid) FROM msg", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/*
 * One shard: the exact count, then the first page.
 *
 * A query that is all full text counts on the index alone: joining each
 * match to its msg row (one B-tree lookup per match, over wide rows) would
 * change nothing, since every fts row has its msg row.  So does a query
 * whose only other condition is a date range that covers the shard's
 * year.
 *
 * The page by date has two plans.  Few matches: take them from the index
 * and sort them (a lookup per match).  Many (at least 1 in WALK_SHARE of
 * the shard): SQLite materialises the match set once, then walks msg_date
 * from the newest and stops when the page is full, so a common word costs
 * a page's worth of steps instead of a lookup and a sort per match.
 */
#define WALK_SHARE 50

/*
 * Does the query's SQL condition hold for every row of this shard?  Yes
 * when there is none, or when it only bounds the date and the bounds
 * cover the shard's whole year (`energy after:2010-01-01` in the 2015
 * shard).  Shards 1 and 9999 also hold dates clamped into them.
 */
static int where_covers_shard(const qc_out_t *qc, int year)
{
	if (!strcmp(qc->where, "1"))
		return 1;
	return qc->where_dates && year > 1 && year < 9999 &&
	    qc->date_min <= shard_year_start(year) &&
	    shard_year_start(year + 1) <= qc->date_max;
}

static int job_sql(job_t *j, sconn_t *c)
{
	const qc_out_t *qc = j->qc;
	int by_rank = j->order == SEARCH_BY_RANK && qc->match, walk;
	int all = qc->match && where_covers_shard(qc, j->year);
	const char *where = all ? "1" : qc->where;
	sbuf_t base = { 0 }, q = { 0 };
	sqlite3_stmt *st = NULL;
	int rc = 0, i = 1;

	if (qc->match)
		sb_puts(&base, " FROM fts JOIN msg m ON m.rowid = fts.rowid "
		    "WHERE fts MATCH ? AND (");
	else
		sb_puts(&base, " FROM msg m WHERE (");
	sb_puts(&base, where);
	sb_puts(&base, ")");
	if (all) {
		sb_puts(&q, "SELECT count(*) FROM fts WHERE fts MATCH ?");
	} else {
		sb_puts(&q, "SELECT count(*)");
		sb_puts(&q, base.p ? base.p : "");
	}
	if (base.oom || q.oom) {
		rc = AR_ENOMEM;
		goto out;
	}
	if (sqlite3_prepare_v2(c->db, q.p, -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	bind_common(st, qc, !all, &i);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto sqlerr;
	j->count = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	walk = qc->match && !by_rank && j->count > 0 &&
	    (int64_t)j->count * WALK_SHARE >= shard_rows(c);

	q.len = 0;
	sb_puts(&q, "SELECT m.oid, m.date, m.size, m.flags, m.has_att, "
	    "m.display, ");
	if (walk) {
		/* by date: no rank is shown (nor used by the cursor) */
		sb_puts(&q, "0.0 FROM msg m INDEXED BY msg_date WHERE m.rowid "
		    "IN (SELECT rowid FROM fts WHERE fts MATCH ?) AND (");
		sb_puts(&q, where);
		sb_puts(&q, ")");
	} else {
		sb_puts(&q, qc->match ? "bm25(fts)" : "0.0");
		sb_puts(&q, base.p);
	}
	if (j->cur->set)
		sb_puts(&q, by_rank ? " AND (bm25(fts) > ? OR (bm25(fts) = ? AND "
		    "m.oid > ?))" : " AND (m.date < ? OR (m.date = ? AND "
		    "m.oid < ?))");
	sb_puts(&q, by_rank ? " ORDER BY 7 ASC, m.oid ASC LIMIT ?" :
	    " ORDER BY m.date DESC, m.oid DESC LIMIT ?");
	if (q.oom) {
		rc = AR_ENOMEM;
		goto out;
	}
	if (sqlite3_prepare_v2(c->db, q.p, -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	i = 1;
	bind_common(st, qc, !all, &i);
	if (j->cur->set) {
		for (int k = 0; k < 2; k++) {
			if (by_rank)
				sqlite3_bind_double(st, i++, j->cur->rank);
			else
				sqlite3_bind_int64(st, i++, j->cur->date);
		}
		sqlite3_bind_blob(st, i++, j->cur->id, SEARCH_ID_LEN,
		    SQLITE_STATIC);
	}
	sqlite3_bind_int(st, i++, j->limit + 1);
	if (!(j->hits = calloc((size_t)j->limit + 1, sizeof *j->hits))) {
		rc = AR_ENOMEM;
		goto out;
	}
	for (;;) {
		int s = sqlite3_step(st);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW || j->nhits > (size_t)j->limit)
			goto sqlerr;
		hit_t *h = &j->hits[j->nhits];
		if (sqlite3_column_bytes(st, 0) != SEARCH_ID_LEN)
			continue;
		memcpy(h->id, sqlite3_column_blob(st, 0), SEARCH_ID_LEN);
		h->date = sqlite3_column_int64(st, 1);
		h->size = (uint64_t)sqlite3_column_int64(st, 2);
		h->flags = (uint32_t)sqlite3_column_int64(st, 3);
		h->has_att = sqlite3_column_int(st, 4);
		h->displen = (size_t)sqlite3_column_bytes(st, 5);
		h->disp = malloc(h->displen ? h->displen : 1);
		if (!h->disp) {
			rc = AR_ENOMEM;
			goto out;
		}
		if (h->displen)
			memcpy(h->disp, sqlite3_column_blob(st, 5), h->displen);
		h->rank = sqlite3_column_double(st, 6);
		j->nhits++;
	}
	goto out;
sqlerr:
	rc = search_fail(AR_EIO, "shard %d: %s", j->year, sqlite3_errmsg(c->db));
out:
	sqlite3_finalize(st);
	free(base.p);
	free(q.p);
	return rc;
}

static void job_run(job_t *j)
{
	shard_t *sh;
	sconn_t *c;
	int rc = shard_get(j->idx, j->tenant, j->year, 0, &sh);
	if (rc == AR_ENOENT) {
		j->rc = 0;                 /* dropped meanwhile */
		return;
	}
	if (rc == 0 && (rc = shard_reader(j->idx, sh, &c)) == 0) {
		if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			rc = search_fail(AR_EIO, "%s", sqlite3_errmsg(c->db));
		else {
			rc = job_sql(j, c);
			sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
		}
		shard_release(j->idx, sh, c);
	}
	j->rc = rc;
	if (rc)
		ar_strlcpy(j->err, search_errmsg(j->idx), sizeof j->err);
}

static void *worker(void *arg)
{
	pool_t *p = arg;

	pthread_setname_np(pthread_self(), "ar-search");
	for (;;) {
		size_t k = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
		if (k >= p->njobs)
			return NULL;
		job_run(&p->jobs[k]);
	}
}

/* ---- merge ------------------------------------------------------------------- */

static int by_date(const void *a, const void *b)
{
	const hit_t *x = a, *y = b;
	if (x->date != y->date)
		return x->date < y->date ? 1 : -1;
	return -memcmp(x->id, y->id, SEARCH_ID_LEN);
}

static int by_rank(const void *a, const void *b)
{
	const hit_t *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return memcmp(x->id, y->id, SEARCH_ID_LEN);
}

static int fill_rows(search_t *idx, const uint8_t *tenant, hit_t *h,
    size_t n, search_results_t *r)
{
	uint8_t key[32];
	uint32_t kver = 0;
	int rc = 0;
	if (!(r->rows = calloc(n ? n : 1, sizeof *r->rows)))
		return AR_ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++) {
		search_row_t *row = &r->rows[i];
		char *v[3];
		uint32_t bv = blob_version(h[i].disp, h[i].displen);
		if (bv != kver && (rc = shard_display_key(idx, tenant, bv, key)))
			break;
		kver = bv;
		if ((rc = blob_open(key, tenant, h[i].id, 'd', h[i].disp,
		    h[i].displen, v, 3))) {
			rc = search_fail(rc, "display fields of a row do not "
			    "decrypt");
			break;
		}
		memcpy(row->id, h[i].id, SEARCH_ID_LEN);
		row->date = h[i].date;
		row->size = h[i].size;
		row->flags = h[i].flags & SEARCH_FLAGS_MASK;
		row->verdict = (int)(h[i].flags >> MSG_VERDICT_SHIFT) & 0xf;
		row->quarantined = (h[i].flags & MSG_QUARANTINED) != 0;
		row->has_attachment = h[i].has_att;
		row->rank = h[i].rank;
		row->from = v[0];
		row->to = v[1];
		row->subject = v[2];
		r->n++;
	}
	sodium_memzero(key, sizeof key);
	return rc;
}

int search_run(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN], const char *query,
    const search_options_t *opts, search_results_t **out)
{
	search_options_t o = { 0 };
	search_query_t *q = NULL;
	qc_out_t qc;
	cursor_t cur = { 0 };
	uint8_t ckey[32];
	char err[300];
	int *years = NULL, rc;
	size_t nyears = 0, njobs = 0, nhits = 0;
	job_t *jobs = NULL;
	hit_t *all = NULL;
	search_results_t *r = NULL;

	*out = NULL;
	if (opts)
		o = *opts;
	if (o.limit <= 0)
		o.limit = SEARCH_LIMIT_DEFAULT;
	if (o.limit > SEARCH_LIMIT_MAX)
		o.limit = SEARCH_LIMIT_MAX;
	if (!query)
		query = "";
	rc = search_query_parse(query, &q, err, sizeof err);
	if (rc == AR_ESYNTAX)
		return search_fail(rc, "%s", err);
	if (rc)
		return rc;
	rc = qc_compile(q, idx->pmin, &qc, err, sizeof err);
	search_query_free(q);
	if (rc == AR_ESYNTAX)
		return search_fail(rc, "%s", err);
	if (rc)
		return rc;
	if (!qc.match)
		o.order = SEARCH_BY_DATE;
	if ((rc = cursor_key(idx, tenant, ckey)))
		goto done;
	if (o.cursor && *o.cursor &&
	    (rc = cursor_parse(ckey, tenant, query, o.order, o.cursor, &cur)))
		goto done;
	if (!(r = calloc(1, sizeof *r))) {
		rc = AR_ENOMEM;
		goto done;
	}
	shard_refresh(idx, tenant);
	pthread_rwlock_rdlock(&idx->drop_lock);
	if ((rc = shard_years(idx, tenant, &years, &nyears)) ||
	    !(jobs = calloc(nyears ? nyears : 1, sizeof *jobs)))
		goto unlock;
	int ymin = qc.date_min == INT64_MIN ? 0 : shard_year_of(qc.date_min);
	int ymax = qc.date_max == INT64_MAX ? 10000 :
	    shard_year_of(qc.date_max - 1);
	for (size_t i = 0; i < nyears; i++) {
		if (years[i] < ymin || years[i] > ymax ||
		    qc.date_max <= qc.date_min)
			continue;
		jobs[njobs++] = (job_t){ idx, tenant, &qc, &cur, o.order,
			o.limit, years[i], NULL, 0, 0, 0, "" };
	}
	pool_t pool = { jobs, njobs, 0 };
	size_t nth = njobs < (size_t)idx->threads ? njobs : (size_t)idx->threads;
	pthread_t th[64];
	size_t started = 0;
	for (size_t i = 1; i < nth && i < 64; i++)
		if (pthread_create(&th[started], NULL, worker, &pool) == 0)
			started++;
	worker(&pool);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < njobs; i++) {
		if (jobs[i].rc && !rc) {
			rc = search_fail(jobs[i].rc, "%s", jobs[i].err);
		}
		r->total += jobs[i].count;
		nhits += jobs[i].nhits;
	}
	if (rc)
		goto unlock;
	if (!(all = calloc(nhits ? nhits : 1, sizeof *all))) {
		rc = AR_ENOMEM;
		goto unlock;
	}
	nhits = 0;
	for (size_t i = 0; i < njobs; i++) {
		memcpy(all + nhits, jobs[i].hits, jobs[i].nhits * sizeof *all);
		nhits += jobs[i].nhits;
		jobs[i].nhits = 0;         /* disp now owned by all */
	}
	qsort(all, nhits, sizeof *all, o.order == SEARCH_BY_RANK ? by_rank :
	    by_date);
	size_t take = nhits < (size_t)o.limit ? nhits : (size_t)o.limit;
	rc = fill_rows(idx, tenant, all, take, r);
	if (rc == 0 && nhits > take && take > 0 &&
	    !(r->next = cursor_make(ckey, tenant, query, o.order,
	    &all[take - 1])))
		rc = AR_ENOMEM;
unlock:
	pthread_rwlock_unlock(&idx->drop_lock);
done:
	for (size_t i = 0; i < njobs; i++) {
		for (size_t k = 0; k < jobs[i].nhits; k++)
			free(jobs[i].hits[k].disp);
		free(jobs[i].hits);
	}
	for (size_t i = 0; i < nhits; i++)
		free(all[i].disp);
	free(all);
	free(jobs);
	free(years);
	qc_free(&qc);
	sodium_memzero(ckey, sizeof ckey);
	if (rc) {
		search_results_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

size_t search_results_count(const search_results_t *r)
{
	return r ? r->n : 0;
}

const search_row_t *search_results_row(const search_results_t *r, size_t i)
{
	return r && i < r->n ? &r->rows[i] : NULL;
}

uint64_t search_results_total(const search_results_t *r)
{
	return r ? r->total : 0;
}

const char *search_results_next_cursor(const search_results_t *r)
{
	return r ? r->next : NULL;
}

void search_results_free(search_results_t *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free((char *)r->rows[i].from);
		free((char *)r->rows[i].to);
		free((char *)r->rows[i].subject);
	}
	free(r->rows);
	free(r->next);
	free(r);
}
