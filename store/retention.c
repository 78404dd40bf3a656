/*
 * retention.c - per-tenant retention policies (default period and rules
 * by sender/recipient address or domain; the longest matching period
 * wins), applied at ingest, and extensions of stored mail's retain-until.
 *
 * Record (DBI_RETENTION): tenant id -> u32 key version || meta_seal(
 * "retention", tenant; JSON {"rules":[{"match":..,"days":..}]}).  The
 * default period is the tenant's retention_days.  Periods only grow
 * (preservation lock): a shorter default or rule is refused with
 * AR_EPERM, and no retain-until of stored mail is ever reduced.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ar.h"
#include "catalog_priv.h"

#define RET_DAYS_MAX 36500

int store_retention_match_valid(const char *m)
{
	const char *at = m ? strchr(m, '@') : NULL;
	size_t len = m ? strlen(m) : 0;

	if (!at || len < 2 || len >= STORE_ADDR_MAX || strchr(at + 1, '@') ||
	    !at[1] || strpbrk(m, " \t\r\n,;<>\"") || at[1] == '.')
		return AR_EINVAL;
	return 0;
}

/* --- the record ---------------------------------------------------------- */

struct ret_get {
	const uint8_t *tenant;
	unsigned char *val;
	size_t len;
};

static int ret_get_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct ret_get *g = arg;
	MDB_val k = { STORE_TENANT_LEN, (void *)g->tenant }, v;
	int rc = mdb_get(txn, st->dbi[DBI_RETENTION], &k, &v);

	if (rc == MDB_NOTFOUND)
		return AR_ENOENT;
	if (rc)
		return cat_status(rc);
	if (v.mv_size < 4 || !(g->val = malloc(v.mv_size)))
		return v.mv_size < 4 ? AR_ECORRUPT : AR_ENOMEM;
	memcpy(g->val, v.mv_data, v.mv_size);
	g->len = v.mv_size;
	return 0;
}

static int rules_load(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    json_t **out)
{
	struct ret_get g = { tenant, NULL, 0 };
	unsigned char *plain;
	size_t plen;
	json_t *j;
	int rc = cat_read(st, ret_get_txn, &g);

	*out = NULL;
	if (rc == AR_ENOENT) {
		*out = json_array();
		return 0;
	}
	if (rc)
		return cat_err(st, rc, "retention record: %s", ar_strerror(rc));
	rc = meta_open(st, tenant, ar_get_u32(g.val), "retention", tenant,
	    STORE_TENANT_LEN, g.val + 4, g.len - 4, &plain, &plen);
	free(g.val);
	if (rc)
		return cat_err(st, rc, "retention record: %s", ar_strerror(rc));
	j = json_loadb((const char *)plain, plen, 0, NULL);
	sodium_memzero(plain, plen);
	free(plain);
	*out = json_incref(json_object_get(j, "rules"));
	json_decref(j);
	if (!json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		return cat_err(st, AR_ECORRUPT, "retention record malformed");
	}
	return 0;
}

struct ret_put {
	const uint8_t *tenant;
	unsigned char *val;
	size_t len;
	const char *detail;
	uint32_t version;
};

static int ret_put_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct ret_put *p = arg;
	MDB_val k = { STORE_TENANT_LEN, (void *)p->tenant };
	MDB_val v = { p->len, p->val };
	unsigned char *blob = NULL;
	size_t bloblen = 0;
	int rc = mdb_put(txn, st->dbi[DBI_RETENTION], &k, &v, 0);

	if (rc)
		return cat_err(st, cat_status(rc), "retention: %s",
		    mdb_strerror(rc));
	if ((rc = log_seal_detail(st, p->tenant, p->version, p->detail, &blob,
	    &bloblen)))
		return rc;
	rc = log_append_txn(st, txn, p->tenant, STORE_LOG_ADMIN, NULL, NULL,
	    ar_now(), p->version, blob, bloblen, NULL);
	free(blob);
	return rc;
}

static int rules_save(store_t *st, const store_tenant_t *t, json_t *rules,
    const char *action, const char *match, uint32_t days)
{
	json_t *j = json_object(), *d = json_object();
	struct ret_put p = { t->id, NULL, 0, NULL, t->key_version };
	unsigned char *blob = NULL;
	size_t bloblen;
	char *s, *detail;
	int rc;

	json_object_set(j, "rules", rules);
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	json_object_set_new(d, "action", json_string(action));
	json_object_set_new(d, "match", json_string(match));
	json_object_set_new(d, "days", json_integer(days));
	detail = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (!s || !detail) {
		free(s);
		free(detail);
		return AR_ENOMEM;
	}
	rc = meta_seal(st, t->id, t->key_version, "retention", t->id,
	    STORE_TENANT_LEN, s, strlen(s), &blob, &bloblen);
	sodium_memzero(s, strlen(s));
	free(s);
	if (rc) {
		free(detail);
		return cat_err(st, rc, "retention: sealing: %s",
		    ar_strerror(rc));
	}
	if (!(p.val = malloc(4 + bloblen))) {
		free(blob);
		free(detail);
		return AR_ENOMEM;
	}
	ar_put_u32(p.val, t->key_version);
	memcpy(p.val + 4, blob, bloblen);
	p.len = 4 + bloblen;
	p.detail = detail;
	free(blob);
	rc = cat_write(st, ret_put_txn, &p);
	free(p.val);
	free(detail);
	return rc;
}

/* --- public -------------------------------------------------------------- */

int store_retention_get(store_t *st, const store_tenant_t *t,
    store_retention_t *out)
{
	json_t *rules, *r;
	size_t i;
	int rc;

	memset(out, 0, sizeof *out);
	out->default_days = t->retention_days;
	if ((rc = rules_load(st, t->id, &rules)))
		return rc;
	json_array_foreach(rules, i, r) {
		if (out->n_rules >= STORE_RULES_MAX)
			break;
		ar_strlcpy(out->rules[out->n_rules].match, json_string_value(
		    json_object_get(r, "match")) ?: "", STORE_ADDR_MAX);
		out->rules[out->n_rules].days = (uint32_t)json_integer_value(
		    json_object_get(r, "days"));
		out->n_rules++;
	}
	json_decref(rules);
	return 0;
}

int store_retention_rule_add(store_t *st, const store_tenant_t *t,
    const char *match, uint32_t days)
{
	json_t *rules, *r, *nr;
	char m[STORE_ADDR_MAX];
	size_t i;
	int rc;

	if (store_retention_match_valid(match))
		return cat_err(st, AR_EINVAL, "'%s' is not an address or "
		    "@domain", match ? match : "");
	if (days == 0 || days > RET_DAYS_MAX)
		return cat_err(st, AR_EINVAL, "retention days %u: use 1..%d",
		    days, RET_DAYS_MAX);
	ar_strlcpy(m, match, sizeof m);
	for (char *p = m; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if ((rc = rules_load(st, t->id, &rules)))
		return rc;
	json_array_foreach(rules, i, r) {
		const char *x = json_string_value(json_object_get(r, "match"));
		uint32_t d = (uint32_t)json_integer_value(json_object_get(r,
		    "days"));
		if (!x || strcmp(x, m))
			continue;
		if (days < d) {
			json_decref(rules);
			return cat_err(st, AR_EPERM, "rule %s keeps mail %u "
			    "days: a retention period can be lengthened, "
			    "never shortened", m, d);
		}
		json_object_set_new(r, "days", json_integer(days));
		rc = rules_save(st, t, rules, "retention-rule-lengthen", m,
		    days);
		json_decref(rules);
		return rc;
	}
	if (json_array_size(rules) >= STORE_RULES_MAX) {
		json_decref(rules);
		return cat_err(st, AR_ETOOBIG, "at most %d retention rules",
		    STORE_RULES_MAX);
	}
	nr = json_object();
	json_object_set_new(nr, "match", json_string(m));
	json_object_set_new(nr, "days", json_integer(days));
	json_array_append_new(rules, nr);
	rc = rules_save(st, t, rules, "retention-rule-add", m, days);
	json_decref(rules);
	return rc;
}

int store_retention_rule_remove(store_t *st, const store_tenant_t *t,
    const char *match)
{
	json_t *rules, *r;
	size_t i;
	int rc;

	if ((rc = rules_load(st, t->id, &rules)))
		return rc;
	json_array_foreach(rules, i, r) {
		const char *x = json_string_value(json_object_get(r, "match"));
		if (x && match && !strcasecmp(x, match)) {
			uint32_t d = (uint32_t)json_integer_value(
			    json_object_get(r, "days"));
			json_array_remove(rules, i);
			/* stored mail keeps its retain-until: the rule stops
			 * applying to mail that arrives from now on */
			rc = rules_save(st, t, rules, "retention-rule-remove",
			    match, d);
			json_decref(rules);
			return rc;
		}
	}
	json_decref(rules);
	return cat_err(st, AR_ENOENT, "no retention rule for '%s'",
	    match ? match : "");
}

int store_retention_set_default(store_t *st, const char *tenant,
    uint32_t days)
{
	store_tenant_t t;
	int rc;

	if ((rc = store_tenant_get(st, tenant, &t)))
		return rc;
	if (days < t.retention_days)
		return cat_err(st, AR_EPERM, "tenant %s keeps mail %u days: a "
		    "retention period can be lengthened, never shortened",
		    tenant, t.retention_days);
	t.retention_days = days;
	return store_tenant_update(st, &t);
}

static int addr_matches(const char *addr, const char *m)
{
	size_t la = strlen(addr), lm = strlen(m);

	if (m[0] == '@')
		return la > lm && !strcasecmp(addr + la - lm, m);
	return !strcasecmp(addr, m);
}

static void rule_scan(const store_retention_t *p, const char *a,
    uint32_t *days)
{
	if (!a)
		return;
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].days > *days && addr_matches(a, p->rules[i].match))
			*days = p->rules[i].days;
}

uint32_t store_retention_days_for(const store_retention_t *p,
    const char *meta)
{
	uint32_t days = p->default_days;
	json_t *j, *v, *env;
	size_t i;

	if (!p->n_rules || !meta || !(j = json_loads(meta, 0, NULL)))
		return days;
	rule_scan(p, json_string_value(json_object_get(j, "from")), &days);
	json_array_foreach(json_object_get(j, "to"), i, v)
		rule_scan(p, json_string_value(v), &days);
	json_array_foreach(json_object_get(j, "cc"), i, v)
		rule_scan(p, json_string_value(v), &days);
	env = json_object_get(j, "envelope");
	rule_scan(p, json_string_value(json_object_get(env, "sender")), &days);
	json_array_foreach(json_object_get(env, "recipients"), i, v)
		rule_scan(p, json_string_value(json_object_get(v, "address")),
		    &days);
	rule_scan(p, json_string_value(json_object_get(json_object_get(j,
	    "smtp"), "mail_from")), &days);
	json_array_foreach(json_object_get(json_object_get(j, "smtp"),
	    "rcpt_to"), i, v)
		rule_scan(p, json_string_value(v), &days);
	json_decref(j);
	return days;
}

/* --- extending stored mail --------------------------------------------------- */

struct extend_ctx {
	const uint8_t *tenant, *id;
	int64_t until;
	int changed;
};

static int extend_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct extend_ctx *c = arg;
	unsigned char key[STORE_TENANT_LEN + STORE_ID_LEN], *val;
	MDB_val k = { sizeof key, key }, v, nv;
	int64_t cur;
	int rc;

	c->changed = 0;
	CAT_KEY_TID(key, c->tenant, c->id);
	if ((rc = mdb_get(txn, st->dbi[DBI_OBJECTS], &k, &v)))
		return rc == MDB_NOTFOUND ? AR_ENOENT : cat_status(rc);
	if (v.mv_size < 25)
		return AR_ECORRUPT;
	cur = (int64_t)ar_get_u64((const unsigned char *)v.mv_data + 17);
	if (c->until < cur)
		return cat_err(st, AR_EPERM, "retain-until can be extended, "
		    "never reduced");
	if (c->until == cur)
		return 0;
	if (!(val = malloc(v.mv_size)))
		return AR_ENOMEM;
	memcpy(val, v.mv_data, v.mv_size);
	ar_put_u64(val + 17, (uint64_t)c->until);
	nv.mv_size = v.mv_size;
	nv.mv_data = val;
	rc = mdb_put(txn, st->dbi[DBI_OBJECTS], &k, &nv, 0);
	free(val);
	if (rc)
		return cat_status(rc);
	c->changed = 1;
	/* no log entry names it: the bucket gets the record by the queue */
	return ship_queue_object(st, txn, c->tenant, c->id);
}

int store_object_extend_retention(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    int64_t until)
{
	struct extend_ctx c = { tenant, id, until, 0 };
	store_object_t o;
	int rc;

	/* the storage's own retention first: never shorter than ours */
	if (store_backend_caps(st->be) & STORE_BE_LOCK) {
		if ((rc = store_object_get(st, tenant, id, &o)))
			return rc;
		store_object_clear(&o);
		if (until > o.retain_until &&
		    (rc = store_backend_extend_retention(st->be, tenant, id,
		    until)))
			return cat_err(st, rc, "retention at the storage: %s",
			    store_backend_errmsg(st->be));
	}
	return cat_write(st, extend_txn, &c);
}

struct apply_ctx {
	store_t *st;
	store_retention_t *pol;
	uint8_t *ids;
	int64_t *until;
	size_t n, cap, ucap;
};

static int apply_cb(void *arg, const store_object_t *o)
{
	struct apply_ctx *a = arg;
	int64_t until = o->received + (int64_t)store_retention_days_for(
	    a->pol, o->meta) * 86400;

	if (until <= o->retain_until)
		return 0;
	if (ar_grow((void **)&a->ids, &a->cap, a->n, STORE_ID_LEN) ||
	    ar_grow((void **)&a->until, &a->ucap, a->n, sizeof *a->until))
		return AR_ENOMEM;
	memcpy(a->ids + a->n * STORE_ID_LEN, o->id, STORE_ID_LEN);
	a->until[a->n++] = until;
	return 0;
}

int store_retention_apply(store_t *st, const store_tenant_t *t,
    uint64_t *extended)
{
	struct apply_ctx a;
	int rc;

	memset(&a, 0, sizeof a);
	a.st = st;
	if (extended)
		*extended = 0;
	if (!(a.pol = malloc(sizeof *a.pol)))
		return AR_ENOMEM;
	if ((rc = store_retention_get(st, t, a.pol)) == 0)
		rc = store_object_walk(st, t->id, 1, apply_cb, &a);
	for (size_t i = 0; i < a.n && !rc; i++) {
		rc = store_object_extend_retention(st, t->id,
		    a.ids + i * STORE_ID_LEN, a.until[i]);
		if (rc == AR_ENOENT)     /* disposed of meanwhile */
			rc = 0;
		else if (!rc && extended)
			(*extended)++;
	}
	if (!rc && a.n) {
		char d[128];
		snprintf(d, sizeof d, "{\"action\":\"retention-apply\","
		    "\"extended\":%zu}", a.n);
		rc = store_log_append(st, t->id, STORE_LOG_ADMIN, NULL, NULL, d,
		    NULL);
	}
	free(a.ids);
	free(a.until);
	free(a.pol);
	return rc;
}

int retention_days_msg(store_t *st, const store_tenant_t *t,
    const char *meta, uint32_t *days)
{
	store_retention_t *p;
	int rc;

	*days = t->retention_days;
	if (!(p = malloc(sizeof *p)))
		return AR_ENOMEM;
	if ((rc = store_retention_get(st, t, p)) == 0)
		*days = store_retention_days_for(p, meta);
	free(p);
	return rc;
}
