/*
 * dispose.c - the disposition job: every object past its retain-until
 * and under no hold is removed from the index, the store and the catalog
 * (store_object_dispose writes the signed tombstone), in bounded batches.
 * Idempotent: an object is gone or still there; running again continues.
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "jobs_priv.h"

struct qhold {
	store_hold_t *h;
	uint8_t *ids;         /* query result, sorted */
	size_t n;
	int known;            /* 0: the query could not run */
};

struct dctx {
	const jobs_dispose_params_t *p;
	const store_tenant_t *t;
	jobs_dispose_result_t *res;
	struct qhold *qh;
	size_t nqh, qcap;
	int64_t now;
	uint8_t *batch;       /* ids due, this batch */
	size_t nb, bcap, limit;
	uint8_t after[STORE_ID_LEN];
	int have_after, more;
	char *err;
	size_t errlen;
};

static int qhold_cb(void *arg, const store_hold_t *h)
{
	struct dctx *d = arg;
	struct qhold *q;

	if (h->released || !h->query[0])
		return 0;
	if (ar_grow((void **)&d->qh, &d->qcap, d->nqh, sizeof *d->qh))
		return AR_ENOMEM;
	q = &d->qh[d->nqh];
	memset(q, 0, sizeof *q);
	if (!(q->h = malloc(sizeof *q->h)))
		return AR_ENOMEM;
	*q->h = *h;
	d->nqh++;
	/* unknown (no index, or it failed): the hold covers, the safe side */
	q->known = d->p->idx && jobs_query_ids(d->p->idx, d->t->id, h->query,
	    &q->ids, &q->n, NULL, 0) == 0;
	return 0;
}

/* Under a query hold?  The store checks custodian/date-only holds. */
static int query_held(struct dctx *d, const store_object_t *o)
{
	for (size_t i = 0; i < d->nqh; i++) {
		struct qhold *q = &d->qh[i];
		int qm = q->known ? jobs_ids_has(q->ids, q->n, o->id) : -1;
		if (store_hold_covers(q->h, o, qm))
			return 1;
	}
	return 0;
}

static int due_cb(void *arg, const store_object_t *o)
{
	struct dctx *d = arg;

	if (d->have_after && memcmp(o->id, d->after, STORE_ID_LEN) <= 0)
		return 0;
	d->res->examined++;
	memcpy(d->after, o->id, STORE_ID_LEN);
	d->have_after = 1;
	if (o->retain_until > d->now)
		goto next;
	d->res->due++;
	if (query_held(d, o) || store_object_held(d->p->st, o, 1, NULL, 0)
	    == 1) {
		d->res->held++;
		if (d->p->cb)
			d->p->cb(d->p->arg, d->t, o->id, "held");
		goto next;
	}
	if (ar_grow((void **)&d->batch, &d->bcap, d->nb, STORE_ID_LEN))
		return AR_ENOMEM;
	memcpy(d->batch + d->nb++ * STORE_ID_LEN, o->id, STORE_ID_LEN);
next:
	if (d->nb >= d->limit) {
		d->more = 1;
		return 1;      /* stop the walk: this batch is full */
	}
	return 0;
}

/* --- files left by an interrupted disposition ------------------------ */

struct sweep {
	store_t *st;
	const store_tenant_t *t;
	uint8_t *cat, *orph;
	size_t ncat, ccap, norph, ocap;
	uint64_t removed;
	int rc;
};

static int sweep_cat(void *arg, const store_object_t *o)
{
	struct sweep *s = arg;
	if (ar_grow((void **)&s->cat, &s->ccap, s->ncat, STORE_ID_LEN))
		return AR_ENOMEM;
	memcpy(s->cat + s->ncat++ * STORE_ID_LEN, o->id, STORE_ID_LEN);
	return 0;
}

static int sweep_file(void *arg, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN])
{
	struct sweep *s = arg;
	(void)tenant;
	if (jobs_ids_has(s->cat, s->ncat, id))
		return 0;
	if (ar_grow((void **)&s->orph, &s->ocap, s->norph, STORE_ID_LEN))
		return AR_ENOMEM;
	memcpy(s->orph + s->norph++ * STORE_ID_LEN, id, STORE_ID_LEN);
	return 0;
}

static int sweep_log(void *arg, const store_log_entry_t *e)
{
	struct sweep *s = arg;
	if (e->kind != STORE_LOG_DISPOSE ||
	    !jobs_ids_has(s->orph, s->norph, e->object))
		return 0;
	if (store_object_dispose_file(s->st, s->t, e->object) == 0)
		s->removed++;
	return 0;
}

static int id_order(const void *a, const void *b)
{
	return memcmp(a, b, STORE_ID_LEN);
}

/* A file without a catalog record whose tombstone is in the log: its
 * disposition stopped between the transaction and the delete.  Files
 * without a tombstone (interrupted ingests) are left for verify. */
static int sweep_tenant(struct dctx *d)
{
	struct sweep s;
	int rc;

	memset(&s, 0, sizeof s);
	s.st = d->p->st;
	s.t = d->t;
	rc = store_object_walk(s.st, d->t->id, 0, sweep_cat, &s);
	if (!rc) {
		rc = store_backend_walk(store_get_backend(s.st), d->t->id,
		    sweep_file, &s);
		if (rc == AR_ENOENT)
			rc = 0;
	}
	if (!rc && s.norph) {
		qsort(s.orph, s.norph, STORE_ID_LEN, id_order);
		rc = store_log_walk(s.st, d->t->id, 1, sweep_log, &s);
	}
	d->res->swept += s.removed;
	free(s.cat);
	free(s.orph);
	return rc;
}

static int dispose_tenant(struct dctx *d)
{
	const jobs_dispose_params_t *p = d->p;
	int rc = 0;

	if (d->t->state == STORE_TENANT_SHREDDED)
		return 0;
	d->now = ar_now();
	if ((rc = store_hold_walk(p->st, d->t->id, qhold_cb, d)))
		return jobs_fail(d->err, d->errlen, rc, "holds: %s",
		    store_errmsg(p->st));
	d->have_after = 0;
	do {
		d->more = 0;
		d->nb = 0;
		rc = store_object_walk(p->st, d->t->id, 1, due_cb, d);
		if (rc == 1)
			rc = 0;
		if (rc)
			return jobs_fail(d->err, d->errlen, rc, "catalog: %s",
			    store_errmsg(p->st));
		for (size_t i = 0; i < d->nb; i++) {
			const uint8_t *id = d->batch + i * STORE_ID_LEN;
			if (p->dry_run) {
				if (p->cb)
					p->cb(p->arg, d->t, id, "would-dispose");
				d->res->disposed++;
				continue;
			}
			/* index first: a message must never be found whose
			 * bytes are gone; a re-run removes it again */
			if (p->idx && (rc = search_index_remove(p->idx, d->t->id,
			    id)) && rc != AR_ENOENT) {
				d->res->failed++;
				if (p->cb)
					p->cb(p->arg, d->t, id, "index-failed");
				continue;
			}
			rc = store_object_dispose(p->st, d->t, id, 1,
			    "retention", NULL);
			if (rc == 0) {
				d->res->disposed++;
				if (p->cb)
					p->cb(p->arg, d->t, id, "disposed");
			} else if (rc == AR_EKEYSVC) {
				return jobs_fail(d->err, d->errlen, rc, "%s",
				    store_errmsg(p->st));
			} else {
				d->res->failed++;
				if (p->cb)
					p->cb(p->arg, d->t, id,
					    store_errmsg(p->st));
			}
		}
		rc = 0;
		if (!p->dry_run && d->nb)
			store_log_checkpoint(p->st, d->t->id, NULL);
	} while (d->more && !(p->max && d->res->disposed >= p->max));
	if (!p->dry_run && (rc = sweep_tenant(d)))
		return jobs_fail(d->err, d->errlen, rc, "sweep: %s",
		    store_errmsg(p->st));
	return 0;
}

static void qholds_free(struct dctx *d)
{
	for (size_t i = 0; i < d->nqh; i++) {
		free(d->qh[i].h);
		free(d->qh[i].ids);
	}
	free(d->qh);
	d->qh = NULL;
	d->nqh = d->qcap = 0;
}

static int tenant_cb(void *arg, const store_tenant_t *t)
{
	struct dctx *d = arg;
	int rc;

	d->t = t;
	rc = dispose_tenant(d);
	qholds_free(d);
	return rc;
}

int jobs_dispose(const jobs_dispose_params_t *p, jobs_dispose_result_t *res,
    char *err, size_t errlen)
{
	struct dctx d;
	int rc;

	memset(&d, 0, sizeof d);
	memset(res, 0, sizeof *res);
	d.p = p;
	d.res = res;
	d.err = err;
	d.errlen = errlen;
	d.limit = p->batch ? p->batch : 1000;
	if (err && errlen)
		*err = 0;
	if (p->tenant) {
		rc = tenant_cb(&d, p->tenant);
	} else {
		rc = store_tenant_walk(p->st, tenant_cb, &d);
	}
	free(d.batch);
	return rc;
}
