/*
 * holds.c - legal holds: named, scoped by custodian addresses, a date
 * range of the message date and/or a query; a message may be under many.
 * Release is a logged act; a released hold stays on record.
 *
 * Record (DBI_HOLDS): tenant id || u32 number (BE) -> u32 key version ||
 * meta_seal("hold", tenant, number; JSON).  Names, descriptions,
 * custodians and queries are readable only with the tenant's key.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ar.h"
#include "catalog_priv.h"

static json_t *hold_json(const store_hold_t *h)
{
	json_t *j = json_object(), *c = json_array();

	json_object_set_new(j, "number", json_integer(h->number));
	json_object_set_new(j, "name", json_string(h->name));
	json_object_set_new(j, "description", json_string(h->description));
	for (size_t i = 0; i < h->n_custodians; i++)
		json_array_append_new(c, json_string(h->custodians[i]));
	json_object_set_new(j, "custodians", c);
	json_object_set_new(j, "from", json_integer(h->from));
	json_object_set_new(j, "until", json_integer(h->until));
	json_object_set_new(j, "query", json_string(h->query));
	json_object_set_new(j, "created", json_integer(h->created));
	json_object_set_new(j, "created_by", json_string(h->created_by));
	json_object_set_new(j, "released", json_boolean(h->released));
	json_object_set_new(j, "released_at", json_integer(h->released_at));
	json_object_set_new(j, "released_by", json_string(h->released_by));
	json_object_set_new(j, "release_reason",
	    json_string(h->release_reason));
	return j;
}

static void str_of(json_t *j, const char *k, char *out, size_t len)
{
	const char *v = json_string_value(json_object_get(j, k));
	ar_strlcpy(out, v ? v : "", len);
}

static int hold_from_json(json_t *j, store_hold_t *h)
{
	json_t *v;
	size_t i;

	memset(h, 0, sizeof *h);
	if (!json_is_object(j))
		return AR_ECORRUPT;
	h->number = (uint32_t)json_integer_value(json_object_get(j, "number"));
	str_of(j, "name", h->name, sizeof h->name);
	str_of(j, "description", h->description, sizeof h->description);
	json_array_foreach(json_object_get(j, "custodians"), i, v)
		if (h->n_custodians < STORE_HOLD_CUSTODIANS_MAX)
			ar_strlcpy(h->custodians[h->n_custodians++],
			    json_string_value(v) ?: "", STORE_ADDR_MAX);
	h->from = json_integer_value(json_object_get(j, "from"));
	h->until = json_integer_value(json_object_get(j, "until"));
	str_of(j, "query", h->query, sizeof h->query);
	h->created = json_integer_value(json_object_get(j, "created"));
	str_of(j, "created_by", h->created_by, sizeof h->created_by);
	h->released = json_is_true(json_object_get(j, "released"));
	h->released_at = json_integer_value(json_object_get(j, "released_at"));
	str_of(j, "released_by", h->released_by, sizeof h->released_by);
	str_of(j, "release_reason", h->release_reason,
	    sizeof h->release_reason);
	return 0;
}

/* --- reading ---------------------------------------------------------------- */

struct hwalk {
	const uint8_t *tenant;
	unsigned char **vals;
	size_t *lens;
	size_t n, cap, lcap;
};

static int hwalk_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct hwalk *w = arg;
	MDB_val k = { STORE_TENANT_LEN, (void *)w->tenant }, v;
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_HOLDS], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		unsigned char *copy;
		if (k.mv_size != STORE_TENANT_LEN + 4 ||
		    memcmp(k.mv_data, w->tenant, STORE_TENANT_LEN))
			break;
		if (ar_grow((void **)&w->vals, &w->cap, w->n, sizeof *w->vals)
		    || ar_grow((void **)&w->lens, &w->lcap, w->n,
		    sizeof *w->lens) || !(copy = malloc(v.mv_size + 4))) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		memcpy(copy, (unsigned char *)k.mv_data + STORE_TENANT_LEN, 4);
		memcpy(copy + 4, v.mv_data, v.mv_size);
		w->vals[w->n] = copy;
		w->lens[w->n++] = v.mv_size + 4;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : cat_status(rc);
}

int store_hold_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    store_hold_cb cb, void *arg)
{
	struct hwalk w = { tenant, NULL, NULL, 0, 0, 0 };
	store_hold_t *h = malloc(sizeof *h);
	int rc;

	if (!h)
		return AR_ENOMEM;
	rc = cat_read(st, hwalk_txn, &w);
	for (size_t i = 0; i < w.n; i++) {
		unsigned char *plain;
		size_t plen;
		json_t *j;
		if (rc || w.lens[i] < 8) {
			rc = rc ? rc : AR_ECORRUPT;
			continue;
		}
		rc = meta_open(st, tenant, ar_get_u32(w.vals[i] + 4), "hold",
		    w.vals[i], 4, w.vals[i] + 8, w.lens[i] - 8, &plain, &plen);
		if (rc) {
			cat_err(st, rc, "hold record: %s", ar_strerror(rc));
			continue;
		}
		j = json_loadb((const char *)plain, plen, 0, NULL);
		sodium_memzero(plain, plen);
		free(plain);
		rc = hold_from_json(j, h);
		json_decref(j);
		if (rc == 0)
			rc = cb(arg, h);
		sodium_memzero(h, sizeof *h);
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.vals[i]);
	free(w.vals);
	free(w.lens);
	free(h);
	return rc;
}

struct hfind {
	const char *name;
	store_hold_t *out;
	int found;
	uint32_t max;
};

static int hfind_cb(void *arg, const store_hold_t *h)
{
	struct hfind *f = arg;
	if (h->number > f->max)
		f->max = h->number;
	if (f->name && !strcmp(h->name, f->name) && (!f->found ||
	    (!h->released && f->out->released) ||
	    h->released == f->out->released)) {
		/* the active hold of that name, else the latest released */
		*f->out = *h;
		f->found = 1;
	}
	return 0;
}

int store_hold_get(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *name, store_hold_t *out)
{
	struct hfind f = { name, out, 0, 0 };
	int rc = store_hold_walk(st, tenant, hfind_cb, &f);

	if (rc)
		return rc;
	if (!f.found)
		return cat_err(st, AR_ENOENT, "no hold named '%s'", name);
	return 0;
}

/* --- writing ------------------------------------------------------------------ */

struct hput {
	const uint8_t *tenant;
	uint32_t number, version;
	unsigned char *val;
	size_t len;
	const char *detail;
	int fresh;
};

static int hput_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct hput *p = arg;
	unsigned char key[STORE_TENANT_LEN + 4], *blob = NULL;
	MDB_val k = { sizeof key, key }, v = { p->len, p->val };
	size_t bloblen = 0;
	int rc;

	memcpy(key, p->tenant, STORE_TENANT_LEN);
	ar_put_u32(key + STORE_TENANT_LEN, p->number);
	rc = mdb_put(txn, st->dbi[DBI_HOLDS], &k, &v, p->fresh ?
	    MDB_NOOVERWRITE : 0);
	if (rc == MDB_KEYEXIST)
		return cat_err(st, AR_EAGAIN, "hold number taken meanwhile");
	if (rc)
		return cat_err(st, cat_status(rc), "hold: %s", mdb_strerror(rc));
	if ((rc = log_seal_detail(st, p->tenant, p->version, p->detail, &blob,
	    &bloblen)))
		return rc;
	rc = log_append_txn(st, txn, p->tenant, STORE_LOG_HOLD, NULL, NULL,
	    ar_now(), p->version, blob, bloblen, NULL);
	free(blob);
	return rc;
}

static int hold_save(store_t *st, const store_tenant_t *t,
    const store_hold_t *h, int fresh, const char *action)
{
	json_t *j = hold_json(h), *d = json_object();
	struct hput p = { t->id, h->number, t->key_version, NULL, 0, NULL,
	    fresh };
	unsigned char num[4], *blob = NULL;
	size_t bloblen;
	char *s = json_dumps(j, JSON_COMPACT), *detail;
	int rc;

	json_decref(j);
	json_object_set_new(d, "action", json_string(action));
	json_object_set_new(d, "hold", json_integer(h->number));
	json_object_set_new(d, "name", json_string(h->name));
	json_object_set_new(d, "by", json_string(fresh ? h->created_by :
	    h->released_by));
	if (!fresh)
		json_object_set_new(d, "reason",
		    json_string(h->release_reason));
	if (h->client[0]) {     /* a web request: who and from where */
		json_object_set_new(d, "user", json_string(fresh ?
		    h->created_by : h->released_by));
		json_object_set_new(d, "client", json_string(h->client));
	}
	detail = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (!s || !detail) {
		free(s);
		free(detail);
		return AR_ENOMEM;
	}
	ar_put_u32(num, h->number);
	rc = meta_seal(st, t->id, t->key_version, "hold", num, 4, s,
	    strlen(s), &blob, &bloblen);
	sodium_memzero(s, strlen(s));
	free(s);
	if (rc == 0 && !(p.val = malloc(4 + bloblen)))
		rc = AR_ENOMEM;
	if (rc) {
		free(blob);
		free(detail);
		return cat_err(st, rc, "hold: %s", ar_strerror(rc));
	}
	ar_put_u32(p.val, t->key_version);
	memcpy(p.val + 4, blob, bloblen);
	p.len = 4 + bloblen;
	p.detail = detail;
	free(blob);
	rc = cat_write(st, hput_txn, &p);
	free(p.val);
	free(detail);
	return rc;
}

int store_hold_create(store_t *st, const store_tenant_t *t, store_hold_t *h)
{
	store_hold_t *cur = malloc(sizeof *cur);
	struct hfind f = { h->name, cur, 0, 0 };
	int rc;

	if (!cur)
		return AR_ENOMEM;
	if (!h->name[0] || strlen(h->name) >= sizeof h->name) {
		free(cur);
		return cat_err(st, AR_EINVAL, "a hold needs a name");
	}
	if (!h->n_custodians && !h->from && !h->until && !h->query[0]) {
		free(cur);
		return cat_err(st, AR_EINVAL, "hold %s has no scope: give "
		    "custodians, a date range or a query", h->name);
	}
	for (size_t i = 0; i < h->n_custodians; i++)
		if (store_retention_match_valid(h->custodians[i])) {
			rc = cat_err(st, AR_EINVAL, "custodian '%s' is not an "
			    "address or @domain", h->custodians[i]);
			free(cur);
			return rc;
		}
	if (h->from && h->until && h->until < h->from) {
		free(cur);
		return cat_err(st, AR_EINVAL, "hold %s: the date range ends "
		    "before it starts", h->name);
	}
	if ((rc = store_hold_walk(st, t->id, hfind_cb, &f))) {
		free(cur);
		return rc;
	}
	if (f.found && !cur->released) {
		free(cur);
		return cat_err(st, AR_EEXIST, "hold '%s' exists and is active",
		    h->name);
	}
	free(cur);
	h->number = f.max + 1;
	h->created = ar_now();
	h->released = 0;
	if ((rc = hold_save(st, t, h, 1, "hold-create")))
		return rc;
	/* the storage enforces it too, where it can */
	if ((rc = store_hold_storage(st, t, h, 1, NULL)))
		return cat_err(st, rc, "hold %s created, but the storage's legal "
		    "hold could not be set on every object it covers (%s): "
		    "release and create it again", h->name, st->err);
	return 0;
}

int store_hold_release(store_t *st, const store_tenant_t *t,
    const char *name, const char *by, const char *reason)
{
	return store_hold_release_from(st, t, name, by, NULL, reason);
}

int store_hold_release_from(store_t *st, const store_tenant_t *t,
    const char *name, const char *by, const char *client,
    const char *reason)
{
	store_hold_t *h = malloc(sizeof *h);
	int rc;

	if (!h)
		return AR_ENOMEM;
	if ((rc = store_hold_get(st, t->id, name, h)) == 0) {
		if (h->released) {
			rc = cat_err(st, AR_EINVAL, "hold '%s' was already "
			    "released", name);
		} else {
			h->released = 1;
			h->released_at = ar_now();
			ar_strlcpy(h->released_by, by ? by : "?",
			    sizeof h->released_by);
			ar_strlcpy(h->release_reason, reason ? reason : "",
			    sizeof h->release_reason);
			ar_strlcpy(h->client, client ? client : "",
			    sizeof h->client);
			rc = hold_save(st, t, h, 0, "hold-release");
			if (rc == 0 && (rc = store_hold_storage(st, t, h, 0,
			    NULL)))
				rc = cat_err(st, rc, "hold %s released, but the "
				    "storage's legal hold could not be cleared "
				    "on every object (%s)", name, st->err);
		}
	}
	sodium_memzero(h, sizeof *h);
	free(h);
	return rc;
}

/* --- scope -------------------------------------------------------------------- */

static int addr_is(const char *addr, const char *m)
{
	size_t la = strlen(addr), lm = strlen(m);

	if (m[0] == '@')
		return la > lm && !strcasecmp(addr + la - lm, m);
	return !strcasecmp(addr, m);
}

static int custodian_in(const store_hold_t *h, const char *a)
{
	if (!a)
		return 0;
	for (size_t i = 0; i < h->n_custodians; i++)
		if (addr_is(a, h->custodians[i]))
			return 1;
	return 0;
}

int store_hold_covers(const store_hold_t *h, const store_object_t *o,
    int query_match)
{
	json_t *j = o->meta ? json_loads(o->meta, 0, NULL) : NULL, *v, *env;
	int64_t date = o->received;
	size_t i;
	int hit;

	if (h->released)
		goto no;
	if (json_is_integer(json_object_get(j, "date")))
		date = json_integer_value(json_object_get(j, "date"));
	if ((h->from && date < h->from) || (h->until && date > h->until))
		goto no;
	if (h->n_custodians) {
		hit = custodian_in(h, json_string_value(json_object_get(j,
		    "from")));
		json_array_foreach(json_object_get(j, "to"), i, v)
			hit |= custodian_in(h, json_string_value(v));
		json_array_foreach(json_object_get(j, "cc"), i, v)
			hit |= custodian_in(h, json_string_value(v));
		env = json_object_get(j, "envelope");
		hit |= custodian_in(h, json_string_value(json_object_get(env,
		    "sender")));
		json_array_foreach(json_object_get(env, "recipients"), i, v)
			hit |= custodian_in(h, json_string_value(
			    json_object_get(v, "address")));
		if (!hit)
			goto no;
	}
	/* a query the caller could not evaluate covers (the safe side) */
	if (h->query[0] && query_match == 0)
		goto no;
	json_decref(j);
	return 1;
no:
	json_decref(j);
	return 0;
}
