/*
 * quarantine.c - the gateway's quarantine in the store (store.h
 * "quarantine").  Record (DBI_QUARANTINE, key tenant || id):
 *
 *   0   1  state
 *   1   8  received (BE)
 *   9   8  expires (BE)
 *   17  8  changed (BE)
 *   25  8  size (BE)
 *   33  4  key version of the details (BE)
 *   37  -  details JSON sealed with the tenant's meta key (label
 *          "quarantine", the id as associated data)
 *
 * The object itself is a sealed object of the tenant in the backend, id =
 * the record's id, retain-until 0: a quarantine copy is no archive record
 * (the archive keeps its own copy, under retention), so an officer may
 * delete it before it expires; the jobs remove it when it does.  DBI_QRELEASE (tenant || id) lists the
 * releases asked for and not yet done, so the gateway finds them without a
 * walk of every record.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"

#define REC_FIXED 37

static const char *state_names[] = { "held", "release", "released",
    "deleted" };

struct q_ctx {
	const uint8_t *tenant;
	const uint8_t *id;
	int state;
	const char *who, *why;
	/* put */
	const store_tenant_t *t;
	unsigned char *value;
	size_t value_len;
	unsigned char *logblob;
	size_t loglen;
	uint32_t logver;
	/* get / walk */
	store_quarantine_t *out;
	MDB_val raw;
	store_quarantine_cb cb;
	void *arg;
	struct raw_rec *recs;
	size_t n, cap;
	int64_t now;
	uint64_t expired;
};

struct raw_rec {
	uint8_t tenant[STORE_TENANT_LEN];
	uint8_t id[STORE_ID_LEN];
	int64_t expires;
	int state;
};

static void key_of(uint8_t *k, const uint8_t *tenant, const uint8_t *id)
{
	memcpy(k, tenant, STORE_TENANT_LEN);
	memcpy(k + STORE_TENANT_LEN, id, STORE_ID_LEN);
}

/* A log detail for a change of id, sealed with the tenant's key. */
static int log_detail(store_t *st, const uint8_t *tenant, uint32_t ver,
    const char *action, const uint8_t *id, const char *who, const char *why,
    unsigned char **blob, size_t *len)
{
	char hex[2 * STORE_ID_LEN + 1], *text;
	json_t *d = json_pack("{s:s, s:s}", "action", action, "id",
	    ar_hex(id, STORE_ID_LEN, hex));
	int rc;

	if (!d)
		return AR_ENOMEM;
	if (who && who[0])
		json_object_set_new(d, "user", json_string(who));
	if (why && why[0])
		json_object_set_new(d, "reason", json_string(why));
	text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (!text)
		return AR_ENOMEM;
	rc = log_seal_detail(st, tenant, ver, text, blob, len);
	free(text);
	return rc;
}

static int decode(store_t *st, const uint8_t *tenant, const uint8_t *id,
    const MDB_val *v, store_quarantine_t *q)
{
	const unsigned char *p = v->mv_data;
	unsigned char *plain;
	size_t len;
	int rc;

	memset(q, 0, sizeof *q);
	if (v->mv_size < REC_FIXED)
		return cat_err(st, AR_ECORRUPT, "quarantine record too short");
	memcpy(q->id, id, STORE_ID_LEN);
	q->state = p[0];
	q->received = (int64_t)ar_get_u64(p + 1);
	q->expires = (int64_t)ar_get_u64(p + 9);
	q->changed = (int64_t)ar_get_u64(p + 17);
	q->size = ar_get_u64(p + 25);
	if ((rc = meta_open(st, tenant, ar_get_u32(p + 33), "quarantine", id,
	    STORE_ID_LEN, p + REC_FIXED, v->mv_size - REC_FIXED, &plain, &len)))
		return rc;
	q->details = (char *)plain;
	return 0;
}

void store_quarantine_clear(store_quarantine_t *q)
{
	if (q->details) {
		sodium_memzero(q->details, strlen(q->details));
		free(q->details);
	}
	q->details = NULL;
}

/* --- keeping ------------------------------------------------------------- */

static int exists_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct q_ctx *c = arg;
	uint8_t k[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val key = { sizeof k, k }, v;

	key_of(k, c->tenant, c->id);
	return cat_status(mdb_get(txn, st->dbi[DBI_QUARANTINE], &key, &v));
}

static int put_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct q_ctx *c = arg;
	uint8_t k[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val key = { sizeof k, k }, v = { c->value_len, c->value };
	int rc;

	key_of(k, c->tenant, c->id);
	rc = mdb_put(txn, st->dbi[DBI_QUARANTINE], &key, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return 0;
	if (rc)
		return cat_err(st, cat_status(rc), "quarantine: %s",
		    mdb_strerror(rc));
	return log_append_txn(st, txn, c->tenant, STORE_LOG_QUARANTINE, c->id,
	    NULL, ar_now(), c->logver, c->logblob, c->loglen, NULL);
}

int store_quarantine_put(store_t *st, const store_tenant_t *t,
    const uint8_t id[STORE_ID_LEN], const char *details, store_read_cb read,
    void *arg, int64_t expires)
{
	struct q_ctx c;
	store_seal_params_t p;
	store_object_info_t info;
	store_sealer_t *s;
	unsigned char buf[64 * 1024], *blob = NULL;
	size_t bloblen = 0;
	int rc;

	memset(&c, 0, sizeof c);
	c.tenant = t->id;
	c.id = id;
	if ((rc = cat_read(st, exists_txn, &c)) == 0)
		return 0;                     /* kept before */
	if (rc != AR_ENOENT)
		return rc;
	memset(&p, 0, sizeof p);
	memcpy(p.tenant, t->id, STORE_TENANT_LEN);
	memcpy(p.id, id, STORE_ID_LEN);
	p.key_version = t->key_version;
	p.received = ar_now();
	p.retain_until = 0;
	memset(&info, 0, sizeof info);
	rc = store_seal_begin(st->be, st->ks, &p, &s);
	if (rc == AR_EEXIST) {
		/* sealed before a crash, not recorded: measure it again */
		store_reader_t *r;
		if ((rc = store_reader_open(st->be, st->ks, t->id, id, &r)))
			return cat_err(st, rc, "quarantine object: %s",
			    ar_strerror(rc));
		info = *store_reader_info(r);
		store_reader_close(r);
	} else if (rc) {
		return cat_err(st, rc, "seal: %s", rc == AR_EKEYSVC ?
		    keysvc_errmsg(st->ks) : store_backend_errmsg(st->be));
	} else {
		for (;;) {
			size_t got = 0;
			if ((rc = read(arg, buf, sizeof buf, &got)) ||
			    (got && (rc = store_seal_write(s, buf, got)))) {
				store_seal_abort(s);
				return cat_err(st, rc, "quarantine: %s",
				    ar_strerror(rc));
			}
			if (!got)
				break;
		}
		if ((rc = store_seal_finish(s, &info)))
			return cat_err(st, rc, "seal: %s",
			    store_backend_errmsg(st->be));
	}
	if ((rc = meta_seal(st, t->id, t->key_version, "quarantine", id,
	    STORE_ID_LEN, details, strlen(details), &blob, &bloblen)))
		return rc;
	if (!(c.value = malloc(REC_FIXED + bloblen))) {
		free(blob);
		return AR_ENOMEM;
	}
	c.value[0] = STORE_Q_HELD;
	ar_put_u64(c.value + 1, (uint64_t)info.received);
	ar_put_u64(c.value + 9, (uint64_t)expires);
	ar_put_u64(c.value + 17, (uint64_t)ar_now());
	ar_put_u64(c.value + 25, info.plain_size);
	ar_put_u32(c.value + 33, t->key_version);
	memcpy(c.value + REC_FIXED, blob, bloblen);
	c.value_len = REC_FIXED + bloblen;
	free(blob);
	c.logver = t->key_version;
	if ((rc = log_detail(st, t->id, t->key_version, "kept", id, NULL, NULL,
	    &c.logblob, &c.loglen)) == 0)
		rc = cat_write(st, put_txn, &c);
	free(c.value);
	free(c.logblob);
	return rc;
}

/* --- reading ---------------------------------------------------------------- */

static int get_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct q_ctx *c = arg;
	uint8_t k[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val key = { sizeof k, k }, v;
	int rc;

	key_of(k, c->tenant, c->id);
	if ((rc = mdb_get(txn, st->dbi[DBI_QUARANTINE], &key, &v)))
		return cat_status(rc);
	return decode(st, c->tenant, c->id, &v, c->out);
}

int store_quarantine_get(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], store_quarantine_t *out)
{
	struct q_ctx c;

	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.id = id;
	c.out = out;
	memset(out, 0, sizeof *out);
	return cat_read(st, get_txn, &c);
}

int store_quarantine_open(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], store_reader_t **out)
{
	store_quarantine_t q;
	int rc;

	*out = NULL;
	if ((rc = store_quarantine_get(st, tenant, id, &q)))
		return rc;
	rc = q.state == STORE_Q_DELETED ? AR_ENOENT : 0;
	store_quarantine_clear(&q);
	if (rc)
		return cat_err(st, rc, "quarantined message deleted");
	return store_reader_open(st->be, st->ks, tenant, id, out);
}

/* Ids (and clear fields) of records, copied out of the transaction. */
static int collect_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct q_ctx *c = arg;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op;

	c->n = 0;
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_QUARANTINE], &cur)))
		return cat_status(rc);
	if (c->tenant) {
		k.mv_size = STORE_TENANT_LEN;
		k.mv_data = (void *)c->tenant;
		op = MDB_SET_RANGE;
	} else {
		op = MDB_FIRST;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		const unsigned char *p = v.mv_data;
		op = MDB_NEXT;
		if (k.mv_size != STORE_TENANT_LEN + STORE_ID_LEN ||
		    v.mv_size < REC_FIXED)
			continue;
		if (c->tenant && memcmp(k.mv_data, c->tenant,
		    STORE_TENANT_LEN))
			break;
		if (ar_grow((void **)&c->recs, &c->cap, c->n,
		    sizeof *c->recs)) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		memcpy(c->recs[c->n].tenant, k.mv_data, STORE_TENANT_LEN);
		memcpy(c->recs[c->n].id, (uint8_t *)k.mv_data +
		    STORE_TENANT_LEN, STORE_ID_LEN);
		c->recs[c->n].state = p[0];
		c->recs[c->n].expires = (int64_t)ar_get_u64(p + 9);
		c->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : cat_status(rc);
}

int store_quarantine_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    store_quarantine_cb cb, void *arg)
{
	struct q_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	rc = cat_read(st, collect_txn, &c);
	/* ids are time-ordered: newest first */
	for (size_t i = c.n; rc == 0 && i-- > 0;) {
		store_quarantine_t q;
		if ((rc = store_quarantine_get(st, tenant, c.recs[i].id, &q)))
			break;
		rc = cb(arg, &q);
		store_quarantine_clear(&q);
	}
	free(c.recs);
	return rc;
}

/* --- changes ---------------------------------------------------------------- */

static int allowed(int from, int to)
{
	switch (to) {
	case STORE_Q_RELEASE:  return from == STORE_Q_HELD;
	case STORE_Q_RELEASED: return from == STORE_Q_RELEASE ||
	    from == STORE_Q_HELD;
	case STORE_Q_DELETED:  return from != STORE_Q_DELETED &&
	    from != STORE_Q_RELEASE;
	default:               return 0;
	}
}

static int state_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct q_ctx *c = arg;
	uint8_t k[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val key = { sizeof k, k }, v, nv;
	unsigned char *copy;
	int rc, from;

	key_of(k, c->tenant, c->id);
	if ((rc = mdb_get(txn, st->dbi[DBI_QUARANTINE], &key, &v)))
		return cat_err(st, cat_status(rc), "no such quarantined message");
	if (v.mv_size < REC_FIXED)
		return cat_err(st, AR_ECORRUPT, "quarantine record too short");
	from = ((unsigned char *)v.mv_data)[0];
	if (!allowed(from, c->state))
		return cat_err(st, AR_EINVAL, "quarantined message is %s: it "
		    "cannot be %s", state_names[from & 3], c->state ==
		    STORE_Q_DELETED ? "deleted" : "released");
	if (!(copy = malloc(v.mv_size)))
		return AR_ENOMEM;
	memcpy(copy, v.mv_data, v.mv_size);
	copy[0] = (unsigned char)c->state;
	ar_put_u64(copy + 17, (uint64_t)ar_now());
	nv.mv_size = v.mv_size;
	nv.mv_data = copy;
	rc = mdb_put(txn, st->dbi[DBI_QUARANTINE], &key, &nv, 0);
	free(copy);
	if (rc)
		return cat_err(st, cat_status(rc), "quarantine: %s",
		    mdb_strerror(rc));
	nv.mv_size = 0;
	nv.mv_data = "";
	if (c->state == STORE_Q_RELEASE)
		rc = mdb_put(txn, st->dbi[DBI_QRELEASE], &key, &nv, 0);
	else if (from == STORE_Q_RELEASE)
		rc = mdb_del(txn, st->dbi[DBI_QRELEASE], &key, NULL);
	if (rc && rc != MDB_NOTFOUND)
		return cat_err(st, cat_status(rc), "quarantine: %s",
		    mdb_strerror(rc));
	return log_append_txn(st, txn, c->tenant, STORE_LOG_QUARANTINE, c->id,
	    NULL, ar_now(), c->logver, c->logblob, c->loglen, NULL);
}

int store_quarantine_set_state(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    int state, const char *who, const char *why)
{
	store_tenant_t t;
	struct q_ctx c;
	int rc;

	if (state != STORE_Q_RELEASE && state != STORE_Q_RELEASED &&
	    state != STORE_Q_DELETED)
		return cat_err(st, AR_EINVAL, "no such quarantine change");
	if ((rc = store_tenant_get_id(st, tenant, &t)))
		return rc;
	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.id = id;
	c.state = state;
	c.logver = t.key_version;
	if ((rc = log_detail(st, tenant, t.key_version, state ==
	    STORE_Q_RELEASE ? "release-asked" : state == STORE_Q_RELEASED ?
	    "released" : "deleted", id, who, why, &c.logblob, &c.loglen)))
		return rc;
	/* the object goes first: a record that says deleted never points at
	 * an object still there, unless its deletion failed (reported) */
	if (state == STORE_Q_DELETED) {
		store_quarantine_t q;
		if ((rc = store_quarantine_get(st, tenant, id, &q)) == 0) {
			int from = q.state;
			store_quarantine_clear(&q);
			if (!allowed(from, state))
				rc = cat_err(st, AR_EINVAL, "quarantined message "
				    "is %s: it cannot be deleted",
				    state_names[from & 3]);
			else if ((rc = store_backend_delete(st->be, tenant,
			    id)) == AR_ENOENT)
				rc = 0;
		}
		if (rc) {
			free(c.logblob);
			return rc == AR_EINVAL || rc == AR_ENOENT ? rc :
			    cat_err(st, rc, "quarantine object: %s",
			    store_backend_errmsg(st->be));
		}
	}
	rc = cat_write(st, state_txn, &c);
	free(c.logblob);
	return rc;
}

struct rid_ctx {
	const uint8_t *tenant, *id;
	uint8_t *rid;
};

static int rid_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct rid_ctx *c = arg;
	uint8_t k[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val key = { sizeof k, k }, v;
	int rc;

	key_of(k, c->tenant, c->id);
	if ((rc = mdb_get(txn, st->dbi[DBI_QRELEASE], &key, &v)))
		return cat_status(rc);
	if (v.mv_size == STORE_ID_LEN) {
		memcpy(c->rid, v.mv_data, STORE_ID_LEN);
		return 0;
	}
	v.mv_size = STORE_ID_LEN;
	v.mv_data = c->rid;
	rc = mdb_put(txn, st->dbi[DBI_QRELEASE], &key, &v, 0);
	return rc ? cat_err(st, cat_status(rc), "quarantine: %s",
	    mdb_strerror(rc)) : 0;
}

int store_quarantine_release_id(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    uint8_t rid[STORE_ID_LEN])
{
	struct rid_ctx c = { tenant, id, rid };
	return cat_write(st, rid_txn, &c);
}

static int releases_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct q_ctx *c = arg;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	c->n = 0;
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_QRELEASE], &cur)))
		return cat_status(rc);
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		if (k.mv_size != STORE_TENANT_LEN + STORE_ID_LEN)
			continue;
		if (ar_grow((void **)&c->recs, &c->cap, c->n,
		    sizeof *c->recs)) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		memcpy(c->recs[c->n].tenant, k.mv_data, STORE_TENANT_LEN);
		memcpy(c->recs[c->n].id, (uint8_t *)k.mv_data +
		    STORE_TENANT_LEN, STORE_ID_LEN);
		c->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : cat_status(rc);
}

int store_quarantine_releases(store_t *st, store_quarantine_release_cb cb,
    void *arg)
{
	struct q_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	rc = cat_read(st, releases_txn, &c);
	for (size_t i = 0; rc == 0 && i < c.n; i++)
		rc = cb(arg, c.recs[i].tenant, c.recs[i].id);
	free(c.recs);
	return rc;
}

static int expire_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct q_ctx *c = arg;
	uint8_t k[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val key = { sizeof k, k };
	int rc;

	key_of(k, c->tenant, c->id);
	rc = mdb_del(txn, st->dbi[DBI_QUARANTINE], &key, NULL);
	if (rc == 0)
		rc = mdb_del(txn, st->dbi[DBI_QRELEASE], &key, NULL);
	if (rc && rc != MDB_NOTFOUND)
		return cat_err(st, cat_status(rc), "quarantine: %s",
		    mdb_strerror(rc));
	return log_append_txn(st, txn, c->tenant, STORE_LOG_QUARANTINE, c->id,
	    NULL, ar_now(), c->logver, c->logblob, c->loglen, NULL);
}

int store_quarantine_expire(store_t *st, int64_t now, uint64_t *n)
{
	struct q_ctx c, one;
	int rc;

	*n = 0;
	memset(&c, 0, sizeof c);
	if ((rc = cat_read(st, collect_txn, &c)))
		return rc;
	for (size_t i = 0; rc == 0 && i < c.n; i++) {
		store_tenant_t t;
		struct raw_rec *r = &c.recs[i];
		if (r->expires > now || r->state == STORE_Q_RELEASE)
			continue;
		if ((rc = store_tenant_get_id(st, r->tenant, &t)))
			break;
		/* a deleted one has no object left; a held or released
		 * one's object may go now (retain-until passed) */
		if (r->state != STORE_Q_DELETED &&
		    (rc = store_backend_delete(st->be, r->tenant, r->id)) &&
		    rc != AR_ENOENT) {
			cat_err(st, rc, "quarantine object: %s",
			    store_backend_errmsg(st->be));
			break;
		}
		memset(&one, 0, sizeof one);
		one.tenant = r->tenant;
		one.id = r->id;
		one.logver = t.key_version;
		if ((rc = log_detail(st, r->tenant, t.key_version, "expired",
		    r->id, NULL, NULL, &one.logblob, &one.loglen)) == 0)
			rc = cat_write(st, expire_txn, &one);
		free(one.logblob);
		if (rc == 0)
			(*n)++;
	}
	free(c.recs);
	return rc;
}

/* --- digest release links ------------------------------------------------ */

int store_quarantine_link_mac(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    const char *rcpt, int64_t expires, uint8_t mac[STORE_QLINK_MAC_LEN])
{
	crypto_auth_hmacsha256_state h;
	uint8_t key[KEYSVC_KEY_LEN], ex[8];
	int rc;

	if (!rcpt || !rcpt[0] || strlen(rcpt) >= STORE_ADDR_MAX)
		return cat_err(st, AR_EINVAL, "digest link: no recipient");
	if ((rc = keysvc_derive(st->ks, tenant, 1, "qlink", key)))
		return cat_err(st, rc, "%s", keysvc_errmsg(st->ks));
	crypto_auth_hmacsha256_init(&h, key, sizeof key);
	sodium_memzero(key, sizeof key);
	crypto_auth_hmacsha256_update(&h, (const unsigned char *)"qlink1", 6);
	crypto_auth_hmacsha256_update(&h, tenant, STORE_TENANT_LEN);
	crypto_auth_hmacsha256_update(&h, id, STORE_ID_LEN);
	ar_put_u64(ex, (uint64_t)expires);
	crypto_auth_hmacsha256_update(&h, ex, sizeof ex);
	for (const char *p = rcpt; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		crypto_auth_hmacsha256_update(&h, &ch, 1);
	}
	crypto_auth_hmacsha256_final(&h, mac);
	sodium_memzero(&h, sizeof h);
	return 0;
}

int store_quarantine_link_check(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    const char *rcpt, int64_t expires, const uint8_t mac[STORE_QLINK_MAC_LEN])
{
	uint8_t want[STORE_QLINK_MAC_LEN];
	int rc;

	if ((rc = store_quarantine_link_mac(st, tenant, id, rcpt, expires,
	    want)))
		return rc;
	rc = sodium_memcmp(want, mac, sizeof want) ? AR_EPERM : 0;
	sodium_memzero(want, sizeof want);
	return rc;
}
