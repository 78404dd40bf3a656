/*
 * hold.c - what a legal hold covers: its custodian and date criteria
 * (store_hold_covers) and its query, run through the index.
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "jobs_priv.h"

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_ID_LEN);
}

int jobs_query_check(const char *query, char *err, size_t errlen)
{
	search_query_t *q;
	char msg[512];
	int rc, all;

	if (!query)
		return jobs_fail(err, errlen, AR_EINVAL, "query: none given");
	rc = search_query_parse(query, &q, msg, sizeof msg);
	if (rc == AR_ESYNTAX)
		return jobs_fail(err, errlen, rc, "query: %s", msg);
	if (rc)
		return jobs_fail(err, errlen, rc, "query: %s", ar_strerror(rc));
	all = search_query_selects_all(q);
	search_query_free(q);
	if (all)
		return jobs_fail(err, errlen, AR_EINVAL, "query: an empty query "
		    "would select every message; give a term or a filter");
	return 0;
}

int jobs_query_ids(search_t *idx, const uint8_t tenant[STORE_TENANT_LEN],
    const char *query, uint8_t **ids, size_t *n, char *err, size_t errlen)
{
	char cursor[SEARCH_CURSOR_MAX] = "";
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if ((rc = jobs_query_check(query, err, errlen)))
		return rc;
	if (!idx)
		return jobs_fail(err, errlen, AR_EINVAL, "a query needs the "
		    "index");
	for (;;) {
		search_options_t so;
		search_results_t *r;
		const char *next;
		memset(&so, 0, sizeof so);
		so.limit = SEARCH_LIMIT_MAX;
		so.cursor = *cursor ? cursor : NULL;
		if ((rc = search_run(idx, tenant, query, &so, &r))) {
			free(*ids);
			*ids = NULL;
			*n = 0;
			return jobs_fail(err, errlen, rc, "query: %s",
			    search_errmsg(idx));
		}
		for (size_t i = 0; i < search_results_count(r) && !rc; i++) {
			if (ar_grow((void **)ids, &cap, *n, STORE_ID_LEN))
				rc = AR_ENOMEM;
			else
				memcpy(*ids + (*n)++ * STORE_ID_LEN,
				    search_results_row(r, i)->id, STORE_ID_LEN);
		}
		next = search_results_next_cursor(r);
		if (next)
			ar_strlcpy(cursor, next, sizeof cursor);
		search_results_free(r);
		if (rc)
			return rc;
		if (!next)
			break;
	}
	if (*n)
		qsort(*ids, *n, STORE_ID_LEN, id_cmp);
	return 0;
}

int jobs_ids_has(const uint8_t *ids, size_t n, const uint8_t id[STORE_ID_LEN])
{
	return n && bsearch(id, ids, n, STORE_ID_LEN, id_cmp) != NULL;
}

struct cover_ctx {
	const store_hold_t *h;
	uint8_t *qids;
	size_t nq;
	int have_query;
	uint8_t *ids;
	size_t n, cap;
};

static int cover_cb(void *arg, const store_object_t *o)
{
	struct cover_ctx *c = arg;
	int qm = !c->h->query[0] ? 1 : !c->have_query ? -1 :
	    jobs_ids_has(c->qids, c->nq, o->id);

	if (!store_hold_covers(c->h, o, qm))
		return 0;
	if (ar_grow((void **)&c->ids, &c->cap, c->n, STORE_ID_LEN))
		return AR_ENOMEM;
	memcpy(c->ids + c->n++ * STORE_ID_LEN, o->id, STORE_ID_LEN);
	return 0;
}

int jobs_hold_ids(store_t *st, search_t *idx, const store_tenant_t *t,
    const store_hold_t *h, uint8_t **ids, size_t *n, char *err,
    size_t errlen)
{
	struct cover_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	c.h = h;
	*ids = NULL;
	*n = 0;
	if (h->query[0] && idx) {
		if ((rc = jobs_query_ids(idx, t->id, h->query, &c.qids, &c.nq,
		    err, errlen)))
			return rc;
		c.have_query = 1;
	}
	rc = store_object_walk(st, t->id, 1, cover_cb, &c);
	free(c.qids);
	if (rc) {
		free(c.ids);
		return jobs_fail(err, errlen, rc, "catalog: %s",
		    store_errmsg(st));
	}
	*ids = c.ids;
	*n = c.n;
	return 0;
}
