/*
 * holds_lock.c - legal holds carried down to the storage: with a backend
 * that enforces them itself (S3 Object Lock), every object a hold covers
 * gets the storage's legal hold when the hold is created (and when it
 * arrives while an active hold covers it), and loses it when the last
 * active hold covering it is released.  A hold's query is not evaluated
 * here (the store knows no index): a hold with a query covers, at the
 * storage, every object its custodians and dates cover (the safe side);
 * disposition clears such a storage hold once it found the object
 * outside every hold (dispose.c).
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"

struct lock_walk {
	store_t *st;
	const store_hold_t *h;        /* the hold created or released */
	int on;
	uint8_t (*ids)[STORE_ID_LEN];
	size_t n, cap;
};

static int cover_cb(void *arg, const store_object_t *o)
{
	struct lock_walk *w = arg;
	int held;

	if (!store_hold_covers(w->h, o, -1))
		return 0;
	if (!w->on) {
		/* still covered by another active hold: keep it */
		if ((held = store_object_held(w->st, o, 0, NULL, 0)) < 0)
			return held;
		if (held)
			return 0;
	}
	if (ar_grow((void **)&w->ids, &w->cap, w->n, STORE_ID_LEN))
		return AR_ENOMEM;
	memcpy(w->ids[w->n++], o->id, STORE_ID_LEN);
	return 0;
}

int store_hold_storage(store_t *st, const store_tenant_t *t,
    const store_hold_t *h, int on, uint64_t *changed)
{
	struct lock_walk w = { st, NULL, on, NULL, 0, 0 };
	store_hold_t *active;
	char hex[2 * STORE_ID_LEN + 1];
	uint64_t failed = 0;
	int rc, first = 0;

	if (changed)
		*changed = 0;
	if (!(store_backend_caps(st->be) & STORE_BE_LOCK))
		return 0;
	if (!(active = malloc(sizeof *active)))
		return AR_ENOMEM;
	*active = *h;
	active->released = 0;      /* what it covered, released or not */
	w.h = active;
	rc = store_object_walk(st, t->id, 1, cover_cb, &w);
	for (size_t i = 0; rc == 0 && i < w.n; i++) {
		int r = store_backend_legal_hold(st->be, t->id, w.ids[i], on);
		if (r == AR_ENOENT)
			continue;
		if (r) {
			failed++;
			if (!first) {
				first = r;
				cat_err(st, r, "%s: %s", ar_hex(w.ids[i],
				    STORE_ID_LEN, hex),
				    store_backend_errmsg(st->be));
			}
			continue;
		}
		if (changed)
			(*changed)++;
	}
	ar_log(failed ? AR_LOG_ERR : AR_LOG_INFO, "hold number=%u "
	    "storage_legal_hold=%s objects=%zu failed=%llu", h->number,
	    on ? "on" : "off", w.n, (unsigned long long)failed);
	free(w.ids);
	free(active);
	return rc ? rc : first;
}

struct held_new {
	store_t *st;
	int active;
};

static int any_active_cb(void *arg, const store_hold_t *h)
{
	struct held_new *c = arg;
	if (!h->released)
		c->active = 1;
	return 0;
}

int hold_lock_new(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN])
{
	struct held_new c = { st, 0 };
	store_object_t o;
	int rc, held;

	if (!(store_backend_caps(st->be) & STORE_BE_LOCK))
		return 0;
	if ((rc = store_hold_walk(st, tenant, any_active_cb, &c)) || !c.active)
		return rc;
	if ((rc = store_object_get(st, tenant, id, &o)))
		return rc;
	held = store_object_held(st, &o, 0, NULL, 0);
	store_object_clear(&o);
	if (held <= 0)
		return held;
	if ((rc = store_backend_legal_hold(st->be, tenant, id, 1)))
		return cat_err(st, rc, "legal hold at the storage: %s",
		    store_backend_errmsg(st->be));
	return 0;
}
