/*
 * dispose.c - removal of one object by policy: past its retain-until and
 * under no legal hold.  The catalog record and dedup entry go, and a
 * tombstone (a STORE_LOG_DISPOSE entry whose detail carries an Ed25519
 * signature by keysvc) is written in the same transaction; then the
 * object file is deleted (the backend refuses before its own
 * retain-until).  A crash between the two leaves a file with a tombstone:
 * verify warns, and store_object_dispose of the same id removes it.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"

#define TOMB_PREFIX "archived-tombstone-v1"

size_t store_tombstone_msg(const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], const uint8_t digest[STORE_HASH_LEN],
    int64_t time, unsigned char *out)
{
	size_t n = sizeof TOMB_PREFIX - 1;

	memcpy(out, TOMB_PREFIX, n);
	memcpy(out + n, tenant, STORE_TENANT_LEN);
	n += STORE_TENANT_LEN;
	memcpy(out + n, id, STORE_ID_LEN);
	n += STORE_ID_LEN;
	memcpy(out + n, digest, STORE_HASH_LEN);
	n += STORE_HASH_LEN;
	ar_put_u64(out + n, (uint64_t)time);
	return n + 8;
}

struct held_ctx {
	const store_object_t *o;
	int query_checked;
	char name[64];
	int held;
};

static int held_cb(void *arg, const store_hold_t *h)
{
	struct held_ctx *c = arg;
	if (store_hold_covers(h, c->o, c->query_checked ? 0 : -1)) {
		c->held = 1;
		ar_strlcpy(c->name, h->name, sizeof c->name);
	}
	return 0;
}

int store_object_held(store_t *st, const store_object_t *o,
    int query_checked, char *hold_name, size_t len)
{
	struct held_ctx c = { o, query_checked, "", 0 };
	int rc = store_hold_walk(st, o->tenant, held_cb, &c);

	if (rc)
		return rc;
	if (c.held && hold_name)
		ar_strlcpy(hold_name, c.name, len);
	return c.held;
}

struct tomb_ctx {
	const store_tenant_t *t;
	const uint8_t *id;
	uint8_t dkey[STORE_HASH_LEN];
	int64_t time;
	unsigned char *blob;
	size_t bloblen;
	uint64_t seq;
};

static int tomb_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct tomb_ctx *c = arg;
	unsigned char key[STORE_TENANT_LEN + STORE_HASH_LEN];
	MDB_val k = { STORE_TENANT_LEN + STORE_ID_LEN, key }, v;
	uint8_t digest[STORE_HASH_LEN];
	int rc;

	CAT_KEY_TID(key, c->t->id, c->id);
	if ((rc = mdb_get(txn, st->dbi[DBI_OBJECTS], &k, &v)))
		return rc == MDB_NOTFOUND ? AR_ENOENT : cat_status(rc);
	if (v.mv_size < 117)
		return AR_ECORRUPT;
	memcpy(digest, (unsigned char *)v.mv_data + 85, STORE_HASH_LEN);
	if ((rc = mdb_del(txn, st->dbi[DBI_OBJECTS], &k, NULL)))
		return cat_status(rc);
	memcpy(key + STORE_TENANT_LEN, c->dkey, STORE_HASH_LEN);
	k.mv_size = STORE_TENANT_LEN + STORE_HASH_LEN;
	rc = mdb_del(txn, st->dbi[DBI_DEDUP], &k, NULL);
	if (rc && rc != MDB_NOTFOUND)
		return cat_status(rc);
	return log_append_txn(st, txn, c->t->id, STORE_LOG_DISPOSE, c->id,
	    digest, c->time, c->t->key_version, c->blob, c->bloblen, &c->seq);
}

int store_object_dispose(store_t *st, const store_tenant_t *t,
    const uint8_t id[STORE_ID_LEN], int query_holds_checked,
    const char *reason, uint64_t *seq_out)
{
	unsigned char msg[128];
	uint8_t sig[KEYSVC_SIG_LEN];
	char hex[2 * STORE_ID_LEN + 1], sighex[2 * KEYSVC_SIG_LEN + 1];
	char until[32], hold[64] = "";
	struct tomb_ctx c;
	store_object_t o;
	json_t *d;
	char *detail;
	int rc;

	memset(&c, 0, sizeof c);
	c.t = t;
	c.id = id;
	ar_hex(id, STORE_ID_LEN, hex);
	if ((rc = store_object_get(st, t->id, id, &o)))
		return rc;
	c.time = ar_now();
	if (c.time < o.retain_until) {
		store_object_clear(&o);
		return cat_err(st, AR_ERETAINED, "%s is retained until %s", hex,
		    ar_time_fmt(o.retain_until, until, sizeof until));
	}
	if ((rc = store_object_held(st, &o, query_holds_checked, hold,
	    sizeof hold)) != 0) {
		store_object_clear(&o);
		if (rc < 0)
			return rc;
		return cat_err(st, AR_EHOLD, "%s is under legal hold '%s'",
		    hex, hold);
	}
	if ((rc = meta_dedup_key(st, t->id, o.plain_sha256, c.dkey))) {
		store_object_clear(&o);
		return cat_err(st, rc, "dedup key: %s", ar_strerror(rc));
	}
	/* the tombstone, signed by the key service */
	rc = keysvc_sign(st->ks, msg, store_tombstone_msg(t->id, id,
	    o.manifest_digest, c.time, msg), sig);
	if (rc) {
		store_object_clear(&o);
		return cat_err(st, rc, "tombstone signature: %s",
		    keysvc_errmsg(st->ks));
	}
	d = json_object();
	json_object_set_new(d, "action", json_string("dispose"));
	json_object_set_new(d, "reason", json_string(reason ? reason :
	    "retention"));
	json_object_set_new(d, "retain_until", json_string(ar_time_fmt(
	    o.retain_until, until, sizeof until)));
	json_object_set_new(d, "size", json_integer((json_int_t)o.plain_size));
	json_object_set_new(d, "sig", json_string(ar_hex(sig, sizeof sig,
	    sighex)));
	store_object_clear(&o);
	detail = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (!detail)
		return AR_ENOMEM;
	rc = log_seal_detail(st, t->id, t->key_version, detail, &c.blob,
	    &c.bloblen);
	free(detail);
	if (rc)
		return rc;
	rc = cat_write(st, tomb_txn, &c);
	free(c.blob);
	if (rc)
		return rc == AR_ENOENT ? cat_err(st, rc, "%s was disposed of "
		    "meanwhile", hex) : rc;
	if (seq_out)
		*seq_out = c.seq;
	return store_object_dispose_file(st, t, id);
}

int store_object_dispose_file(store_t *st, const store_tenant_t *t,
    const uint8_t id[STORE_ID_LEN])
{
	char hex[2 * STORE_ID_LEN + 1];
	store_lock_info_t li;
	int rc;

	/* a storage legal hold set for a hold whose query turned out not to
	 * match (holds_lock.c) goes first: no hold covers the object */
	if ((store_backend_caps(st->be) & STORE_BE_LOCK) &&
	    store_backend_lock_info(st->be, t->id, id, &li) == 0 &&
	    li.legal_hold &&
	    (rc = store_backend_legal_hold(st->be, t->id, id, 0)))
		return cat_err(st, rc, "%s: tombstone written, the storage's "
		    "legal hold not cleared: %s", ar_hex(id, STORE_ID_LEN, hex),
		    store_backend_errmsg(st->be));
	rc = store_backend_delete(st->be, t->id, id);

	if (rc == 0 || rc == AR_ENOENT)
		return 0;
	return cat_err(st, rc, "%s: tombstone written, file not deleted: %s",
	    ar_hex(id, STORE_ID_LEN, hex), store_backend_errmsg(st->be));
}
