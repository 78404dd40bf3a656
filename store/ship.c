/*
 * ship.c - the bucket as the archive's source of truth: every tenant's
 * log, the catalog records it speaks of and its signed checkpoints are
 * written to the object store as write-once blobs, so that the catalog
 * can be rebuilt from the bucket and keysvc alone (rebuild.c).
 *
 * After each catalog transaction that appended to a tenant's log (and
 * after each checkpoint) the entries the bucket lacks go out as one
 * segment, log/<number, 16 hex>: the raw log entries, the current record
 * of every object they name (and of every object queued in shipq, e.g. a
 * retain-until extended), and a snapshot of the tenant's small records
 * (tenant, retention rules, holds, users), signed by keysvc.  Then each
 * new checkpoint goes out as ckpt/<seq, 16 hex>.  The catalog remembers
 * what was shipped (DBI_SHIP).  Format: docs/formats.md "Bucket layout".
 *
 * Two processes shipping at once race for a segment number: write-once
 * makes one of them lose (AR_EEXIST); the loser reads the winner's
 * segment, moves past it and ships the rest under the next number.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"
#include "store/ship.h"

#define SHIP_LEN      24               /* next segment, shipped, ckpt */
#define SEG_ENTRIES   4096
#define SEG_BYTES     (6u << 20)
#define SEG_LABEL     "archived log segment v1"
#define NOTE_MAX      8

/* --- which tenants a transaction touched (per thread) ----------------------- */

static __thread uint8_t noted[NOTE_MAX][STORE_TENANT_LEN];
static __thread int nnoted, noted_all;

void ship_note(const uint8_t tenant[STORE_TENANT_LEN])
{
	for (int i = 0; i < nnoted; i++)
		if (!memcmp(noted[i], tenant, STORE_TENANT_LEN))
			return;
	if (nnoted < NOTE_MAX)
		memcpy(noted[nnoted++], tenant, STORE_TENANT_LEN);
	else
		noted_all = 1;
}

void ship_note_reset(void)
{
	nnoted = 0;
	noted_all = 0;
}

static int ship_all_cb(void *arg, const store_tenant_t *t)
{
	ship_tenant(arg, t->id);
	return 0;
}

void ship_after_commit(store_t *st)
{
	uint8_t list[NOTE_MAX][STORE_TENANT_LEN];
	int n = nnoted, all = noted_all;

	if (!st->ship_be || (n == 0 && !all))
		return;
	memcpy(list, noted, (size_t)n * STORE_TENANT_LEN);
	ship_note_reset();
	if (all) {
		store_tenant_walk(st, ship_all_cb, st);
		return;
	}
	for (int i = 0; i < n; i++)
		ship_tenant(st, list[i]);
}

/* --- the growing segment ------------------------------------------------------ */

struct buf {
	unsigned char *p;
	size_t len, cap;
	int oom;
};

static void put(struct buf *b, const void *data, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 64 * 1024;
		unsigned char *np;
		while (cap < b->len + n)
			cap *= 2;
		if (!(np = realloc(b->p, cap))) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put_u8(struct buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(struct buf *b, uint16_t v)
{
	unsigned char x[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	put(b, x, 2);
}
static void put_u32(struct buf *b, uint32_t v)
{
	unsigned char x[4];
	ar_put_u32(x, v);
	put(b, x, 4);
}
static void put_u64(struct buf *b, uint64_t v)
{
	unsigned char x[8];
	ar_put_u64(x, v);
	put(b, x, 8);
}

static void put_rec(struct buf *b, uint8_t type, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	put_u8(b, type);
	put_u16(b, (uint16_t)klen);
	put(b, key, klen);
	put_u32(b, (uint32_t)vlen);
	put(b, val, vlen);
}

/* --- reading the catalog for a segment ----------------------------------------- */

struct ship_rec {
	uint64_t next, shipped, ckpt;
};

static int ship_get(store_t *st, MDB_txn *txn, const uint8_t *tenant,
    struct ship_rec *r)
{
	MDB_val k = { STORE_TENANT_LEN, (void *)tenant }, v;
	int rc = mdb_get(txn, st->dbi[DBI_SHIP], &k, &v);

	memset(r, 0, sizeof *r);
	r->next = 1;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return cat_status(rc);
	if (v.mv_size != SHIP_LEN)
		return cat_err(st, AR_ECORRUPT, "ship record malformed");
	r->next = ar_get_u64(v.mv_data);
	r->shipped = ar_get_u64((unsigned char *)v.mv_data + 8);
	r->ckpt = ar_get_u64((unsigned char *)v.mv_data + 16);
	return 0;
}

static int ship_put(store_t *st, MDB_txn *txn, const uint8_t *tenant,
    const struct ship_rec *r)
{
	unsigned char val[SHIP_LEN];
	MDB_val k = { STORE_TENANT_LEN, (void *)tenant }, v = { SHIP_LEN, val };
	int rc;

	ar_put_u64(val, r->next);
	ar_put_u64(val + 8, r->shipped);
	ar_put_u64(val + 16, r->ckpt);
	rc = mdb_put(txn, st->dbi[DBI_SHIP], &k, &v, 0);
	return rc ? cat_err(st, cat_status(rc), "ship record: %s",
	    mdb_strerror(rc)) : 0;
}

int ship_queue_object(store_t *st, MDB_txn *txn,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN])
{
	unsigned char key[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val k = { sizeof key, key }, v = { 0, "" };
	int rc;

	if (!st->ship_be)
		return 0;
	CAT_KEY_TID(key, tenant, id);
	rc = mdb_put(txn, st->dbi[DBI_SHIPQ], &k, &v, 0);
	if (rc == 0)
		ship_note(tenant);
	return rc ? cat_err(st, cat_status(rc), "ship queue: %s",
	    mdb_strerror(rc)) : 0;
}

/* Every record of dbi whose key starts with tenant, as type records with
 * the tenant part of the key cut off. */
static int put_prefixed(store_t *st, MDB_txn *txn, int dbi,
    const uint8_t *tenant, uint8_t type, struct buf *b)
{
	MDB_val k = { STORE_TENANT_LEN, (void *)tenant }, v;
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(txn, st->dbi[dbi], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < STORE_TENANT_LEN ||
		    memcmp(k.mv_data, tenant, STORE_TENANT_LEN))
			break;
		put_rec(b, type, (unsigned char *)k.mv_data + STORE_TENANT_LEN,
		    k.mv_size - STORE_TENANT_LEN, v.mv_data, v.mv_size);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : cat_status(rc);
}

struct build {
	const uint8_t *tenant;
	struct ship_rec ship;
	uint64_t head;
	struct buf b;
	uint64_t first, last;
	uint32_t nentries, nrecs;
	int64_t retain;                /* latest retain-until of a record */
	uint8_t (*queued)[STORE_ID_LEN];
	size_t nqueued, qcap;
	uint32_t key_version, retention_days;
	unsigned char *tenant_json;
	size_t tenant_len;
};

static int put_object_rec(store_t *st, MDB_txn *txn, struct build *c,
    const uint8_t *id)
{
	unsigned char key[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val k = { sizeof key, key }, v;
	int rc;

	CAT_KEY_TID(key, c->tenant, id);
	rc = mdb_get(txn, st->dbi[DBI_OBJECTS], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;        /* disposed of since: its entry says so */
	if (rc)
		return cat_status(rc);
	if (v.mv_size >= 25) {
		int64_t until = (int64_t)ar_get_u64((unsigned char *)v.mv_data +
		    17);
		if (until > c->retain)
			c->retain = until;
	}
	put_rec(&c->b, SEG_REC_OBJECT, id, STORE_ID_LEN, v.mv_data, v.mv_size);
	c->nrecs++;
	return 0;
}

static int build_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct build *c = arg;
	unsigned char key[STORE_TENANT_LEN + 8];
	MDB_val k = { sizeof key, key }, v;
	MDB_cursor *cur;
	int rc;

	if ((rc = ship_get(st, txn, c->tenant, &c->ship)))
		return rc;
	k.mv_size = STORE_TENANT_LEN;
	k.mv_data = (void *)c->tenant;
	if ((rc = mdb_get(txn, st->dbi[DBI_LOGHEAD], &k, &v)) == 0 &&
	    v.mv_size == LOGHEAD_LEN)
		c->head = ar_get_u64(v.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return cat_status(rc);
	if ((rc = mdb_get(txn, st->dbi[DBI_TENANTS], &k, &v)))
		return rc == MDB_NOTFOUND ? AR_ENOENT : cat_status(rc);
	if (!(c->tenant_json = malloc(v.mv_size)))
		return AR_ENOMEM;
	memcpy(c->tenant_json, v.mv_data, v.mv_size);
	c->tenant_len = v.mv_size;

	/* entries after the shipped ones */
	c->first = c->ship.shipped + 1;
	c->last = c->ship.shipped;
	put_u32(&c->b, 0);                      /* entry count, set below */
	memcpy(key, c->tenant, STORE_TENANT_LEN);
	ar_put_u64(key + STORE_TENANT_LEN, c->first);
	k.mv_size = sizeof key;
	k.mv_data = key;
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_LOG], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 &&
	    c->nentries < SEG_ENTRIES && c->b.len < SEG_BYTES;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != sizeof key ||
		    memcmp(k.mv_data, c->tenant, STORE_TENANT_LEN))
			break;
		c->last = ar_get_u64((unsigned char *)k.mv_data +
		    STORE_TENANT_LEN);
		put_u64(&c->b, c->last);
		put_u32(&c->b, (uint32_t)v.mv_size);
		put(&c->b, v.mv_data, v.mv_size);
		c->nentries++;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return cat_status(rc);
	if (c->b.p)
		ar_put_u32(c->b.p, c->nentries);
	return 0;
}

/* The records part: objects of the entries and of shipq, and the
 * tenant's small records. */
static int build_recs_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct build *c = arg;
	static const uint8_t zero[STORE_ID_LEN];
	size_t at_e = 4, count_at = c->b.len;
	MDB_val k, v;
	MDB_cursor *cur;
	int rc;

	put_u32(&c->b, 0);                      /* record count, set below */
	for (uint32_t i = 0; i < c->nentries; i++) {
		/* offsets: the buffer moves as records are added to it */
		uint32_t len = ar_get_u32(c->b.p + at_e + 8);
		size_t e = at_e + 12;       /* version, time, kind, object */
		uint32_t kind = ar_get_u32(c->b.p + e + 9);
		uint8_t obj[STORE_ID_LEN];
		memcpy(obj, c->b.p + e + 13, STORE_ID_LEN);
		if ((kind == STORE_LOG_INGEST || kind == STORE_LOG_ARRIVAL) &&
		    memcmp(obj, zero, STORE_ID_LEN) &&
		    (rc = put_object_rec(st, txn, c, obj)))
			return rc;
		at_e += 12 + len;
	}
	/* records changed without an entry (a retain-until extended) */
	k.mv_size = STORE_TENANT_LEN;
	k.mv_data = (void *)c->tenant;
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_SHIPQ], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 &&
	    c->nqueued < SEG_ENTRIES; rc = mdb_cursor_get(cur, &k, &v,
	    MDB_NEXT)) {
		const uint8_t *id = (uint8_t *)k.mv_data + STORE_TENANT_LEN;
		if (k.mv_size != STORE_TENANT_LEN + STORE_ID_LEN ||
		    memcmp(k.mv_data, c->tenant, STORE_TENANT_LEN))
			break;
		if (ar_grow((void **)&c->queued, &c->qcap, c->nqueued,
		    STORE_ID_LEN)) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		memcpy(c->queued[c->nqueued++], id, STORE_ID_LEN);
		if ((rc = put_object_rec(st, txn, c, id))) {
			mdb_cursor_close(cur);
			return rc;
		}
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return cat_status(rc);
	/* the tenant's small records, as they are now */
	{
		json_t *j = json_loadb((char *)c->tenant_json, c->tenant_len, 0,
		    NULL);
		unsigned char *blob = NULL, ver[4];
		size_t bloblen = 0;
		c->key_version = (uint32_t)json_integer_value(json_object_get(j,
		    "key_version"));
		c->retention_days = (uint32_t)json_integer_value(
		    json_object_get(j, "retention_days"));
		json_decref(j);
		if (c->key_version == 0)
			c->key_version = 1;
		if ((rc = meta_seal(st, c->tenant, c->key_version, "tenant",
		    NULL, 0, c->tenant_json, c->tenant_len, &blob, &bloblen)))
			return rc;
		ar_put_u32(ver, c->key_version);
		put_u8(&c->b, SEG_REC_TENANT);
		put_u16(&c->b, 0);
		put_u32(&c->b, (uint32_t)(4 + bloblen));
		put(&c->b, ver, 4);
		put(&c->b, blob, bloblen);
		free(blob);
		c->nrecs++;
	}
	k.mv_size = STORE_TENANT_LEN;
	k.mv_data = (void *)c->tenant;
	if ((rc = mdb_get(txn, st->dbi[DBI_RETENTION], &k, &v)) == 0) {
		put_rec(&c->b, SEG_REC_RETENTION, NULL, 0, v.mv_data,
		    v.mv_size);
		c->nrecs++;
	} else if (rc != MDB_NOTFOUND) {
		return cat_status(rc);
	}
	if ((rc = put_prefixed(st, txn, DBI_HOLDS, c->tenant, SEG_REC_HOLD,
	    &c->b)) || (rc = put_prefixed(st, txn, DBI_USERS, c->tenant,
	    SEG_REC_USER, &c->b)))
		return rc;
	/* the count covers the records put by put_prefixed too */
	{
		uint32_t n = 0;
		size_t at = count_at + 4;
		while (at < c->b.len && !c->b.oom) {
			uint16_t kl = (uint16_t)(c->b.p[at + 1] << 8 |
			    c->b.p[at + 2]);
			uint32_t vl = ar_get_u32(c->b.p + at + 3 + kl);
			at += 1 + 2 + kl + 4 + vl;
			n++;
		}
		if (!c->b.oom)
			ar_put_u32(c->b.p + count_at, n);
		c->nrecs = n;
	}
	return c->b.oom ? AR_ENOMEM : 0;
}

struct done_ctx {
	const uint8_t *tenant;
	uint64_t number, last;
	uint8_t (*queued)[STORE_ID_LEN];
	size_t nqueued;
};

static int done_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct done_ctx *d = arg;
	struct ship_rec r;
	int rc;

	if ((rc = ship_get(st, txn, d->tenant, &r)))
		return rc;
	if (r.next <= d->number)
		r.next = d->number + 1;
	if (r.shipped < d->last)
		r.shipped = d->last;
	for (size_t i = 0; i < d->nqueued; i++) {
		unsigned char key[STORE_TENANT_LEN + STORE_ID_LEN];
		MDB_val k = { sizeof key, key };
		CAT_KEY_TID(key, d->tenant, d->queued[i]);
		rc = mdb_del(txn, st->dbi[DBI_SHIPQ], &k, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return cat_status(rc);
	}
	return ship_put(st, txn, d->tenant, &r);
}

/* Sign and send one segment; AR_EEXIST when the number was taken. */
static int send_segment(store_t *st, struct build *c, uint64_t number)
{
	unsigned char sha[32];
	unsigned char msg[sizeof SEG_LABEL + 32];
	uint8_t sig[KEYSVC_SIG_LEN];
	struct buf out = { NULL, 0, 0, 0 };
	char name[64];
	int64_t retain;
	int rc;

	put(&out, SEG_MAGIC, 8);
	put_u16(&out, SEG_VERSION);
	put_u16(&out, 0);
	put(&out, c->tenant, STORE_TENANT_LEN);
	put_u64(&out, number);
	put_u64(&out, c->first);
	put_u64(&out, c->last);
	put_u64(&out, (uint64_t)ar_now());
	put(&out, c->b.p, c->b.len);
	if (out.oom) {
		free(out.p);
		return AR_ENOMEM;
	}
	crypto_hash_sha256(sha, out.p, out.len);
	memcpy(msg, SEG_LABEL, sizeof SEG_LABEL);
	memcpy(msg + sizeof SEG_LABEL, sha, 32);
	if ((rc = keysvc_sign(st->ks, msg, sizeof msg, sig))) {
		free(out.p);
		return cat_err(st, rc, "log segment signature: %s",
		    keysvc_errmsg(st->ks));
	}
	put(&out, sig, sizeof sig);
	/* kept as long as the tenant keeps mail, and as its records */
	retain = ar_now() + (int64_t)(c->retention_days ? c->retention_days :
	    1) * 86400;
	if (c->retain > retain)
		retain = c->retain;
	snprintf(name, sizeof name, "log/%016llx", (unsigned long long)number);
	rc = out.oom ? AR_ENOMEM : store_backend_blob_put(st->ship_be,
	    c->tenant, name, out.p, out.len, retain);
	free(out.p);
	return rc;
}

/* A segment someone else wrote under our number: its last seq. */
static int taken_segment(store_t *st, const uint8_t *tenant, uint64_t number,
    uint64_t *last)
{
	unsigned char *data;
	size_t len;
	char name[64];
	int rc;

	snprintf(name, sizeof name, "log/%016llx", (unsigned long long)number);
	if ((rc = store_backend_blob_get(st->ship_be, tenant, name, &data,
	    &len)))
		return rc;
	if (len < SEG_HEAD_LEN || memcmp(data, SEG_MAGIC, 8) ||
	    memcmp(data + 12, tenant, STORE_TENANT_LEN)) {
		free(data);
		return cat_err(st, AR_ECORRUPT, "segment %s in the bucket is "
		    "not this tenant's", name);
	}
	*last = ar_get_u64(data + 12 + STORE_TENANT_LEN + 16);
	free(data);
	return 0;
}

struct ckpt_ship {
	const uint8_t *tenant;
	uint64_t from, upto;
	unsigned char (*vals)[8 + CKPT_LEN];
	size_t n, cap;
};

static int ckpt_list_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct ckpt_ship *c = arg;
	unsigned char key[STORE_TENANT_LEN + 8];
	MDB_val k = { sizeof key, key }, v;
	MDB_cursor *cur;
	int rc;

	c->n = 0;
	memcpy(key, c->tenant, STORE_TENANT_LEN);
	ar_put_u64(key + STORE_TENANT_LEN, c->from);
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_CHECKPOINTS], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t seq;
		if (k.mv_size != sizeof key ||
		    memcmp(k.mv_data, c->tenant, STORE_TENANT_LEN))
			break;
		seq = ar_get_u64((unsigned char *)k.mv_data + STORE_TENANT_LEN);
		if (seq > c->upto || v.mv_size != CKPT_LEN)
			break;
		if (ar_grow((void **)&c->vals, &c->cap, c->n, sizeof *c->vals)) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		ar_put_u64(c->vals[c->n], seq);
		memcpy(c->vals[c->n] + 8, v.mv_data, CKPT_LEN);
		c->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : cat_status(rc);
}

struct ckpt_done {
	const uint8_t *tenant;
	uint64_t seq;
};

static int ckpt_done_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct ckpt_done *d = arg;
	struct ship_rec r;
	int rc;

	if ((rc = ship_get(st, txn, d->tenant, &r)))
		return rc;
	if (r.ckpt < d->seq)
		r.ckpt = d->seq;
	return ship_put(st, txn, d->tenant, &r);
}

static int ship_checkpoints(store_t *st, const uint8_t *tenant,
    const struct ship_rec *r, int64_t retain)
{
	struct ckpt_ship c = { tenant, r->ckpt + 1, r->shipped, NULL, 0, 0 };
	int rc;

	if (r->shipped <= r->ckpt)
		return 0;
	if ((rc = cat_read(st, ckpt_list_txn, &c)))
		goto out;
	for (size_t i = 0; i < c.n; i++) {
		unsigned char blob[CKPT_BLOB_LEN];
		struct ckpt_done d = { tenant, ar_get_u64(c.vals[i]) };
		char name[64];

		memcpy(blob, CKPT_MAGIC, 8);
		memcpy(blob + 8, tenant, STORE_TENANT_LEN);
		memcpy(blob + 8 + STORE_TENANT_LEN, c.vals[i], 8 + CKPT_LEN);
		snprintf(name, sizeof name, "ckpt/%016llx",
		    (unsigned long long)d.seq);
		rc = store_backend_blob_put(st->ship_be, tenant, name, blob,
		    sizeof blob, retain);
		if (rc == AR_EEXIST)
			rc = 0;       /* sent before a crash; rebuild checks it */
		if (rc) {
			cat_err(st, rc, "checkpoint to the bucket: %s",
			    store_backend_errmsg(st->ship_be));
			break;
		}
		if ((rc = cat_write(st, ckpt_done_txn, &d)))
			break;
	}
out:
	free(c.vals);
	return rc;
}

int ship_tenant(store_t *st, const uint8_t tenant[STORE_TENANT_LEN])
{
	char th[2 * STORE_TENANT_LEN + 1];
	int rc = 0;

	if (!st->ship_be)
		return 0;
	pthread_mutex_lock(&st->ship_lock);
	for (int round = 0; round < 100000; round++) {
		struct build c;
		struct done_ctx d;

		memset(&c, 0, sizeof c);
		c.tenant = tenant;
		rc = cat_read(st, build_txn, &c);
		if (rc == 0)
			rc = cat_read(st, build_recs_txn, &c);
		if (rc == 0 && c.nentries == 0 && c.nqueued == 0) {
			/* nothing new: the checkpoints, if any */
			int64_t retain = ar_now() + (int64_t)(c.retention_days ?
			    c.retention_days : 1) * 86400;
			free(c.b.p);
			free(c.queued);
			free(c.tenant_json);
			rc = ship_checkpoints(st, tenant, &c.ship, retain);
			break;
		}
		if (rc == 0)
			rc = send_segment(st, &c, c.ship.next);
		memset(&d, 0, sizeof d);
		d.tenant = tenant;
		d.number = c.ship.next;
		d.last = c.last;
		if (rc == AR_EEXIST) {
			/* another process shipped this number first */
			d.nqueued = 0;
			rc = taken_segment(st, tenant, c.ship.next, &d.last);
		} else {
			d.queued = c.queued;
			d.nqueued = c.nqueued;
		}
		if (rc == 0)
			rc = cat_write(st, done_txn, &d);
		else
			cat_err(st, rc, "log segment %llu to the bucket: %s",
			    (unsigned long long)c.ship.next, rc == AR_EKEYSVC ?
			    keysvc_errmsg(st->ks) :
			    store_backend_errmsg(st->ship_be));
		free(c.b.p);
		free(c.queued);
		free(c.tenant_json);
		if (rc)
			break;
	}
	pthread_mutex_unlock(&st->ship_lock);
	if (rc)
		ar_log(AR_LOG_WARN, "ship tenant=%s status=%s reason=\"%s\"",
		    ar_hex(tenant, STORE_TENANT_LEN, th), ar_strerror(rc),
		    st->err);
	return rc;
}

/* --- public -------------------------------------------------------------------- */

void store_set_ship_backend(store_t *st, store_backend_t *be)
{
	st->ship_be = be && (store_backend_caps(be) & STORE_BE_BLOBS) ? be :
	    NULL;
}

struct ship_all {
	store_t *st;
	int rc;
};

static int ship_each_cb(void *arg, const store_tenant_t *t)
{
	struct ship_all *a = arg;
	int rc = ship_tenant(a->st, t->id);
	if (rc && !a->rc)
		a->rc = rc;
	return 0;
}

int store_ship(store_t *st, const uint8_t *tenant)
{
	struct ship_all a = { st, 0 };
	int rc;

	if (!st->ship_be)
		return 0;
	if (tenant)
		return ship_tenant(st, tenant);
	rc = store_tenant_walk(st, ship_each_cb, &a);
	return rc ? rc : a.rc;
}

struct status_ctx {
	const uint8_t *tenant;
	uint64_t head;
	struct ship_rec r;
};

static int status_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct status_ctx *c = arg;
	MDB_val k = { STORE_TENANT_LEN, (void *)c->tenant }, v;
	int rc;

	if ((rc = mdb_get(txn, st->dbi[DBI_LOGHEAD], &k, &v)) == 0 &&
	    v.mv_size == LOGHEAD_LEN)
		c->head = ar_get_u64(v.mv_data);
	return ship_get(st, txn, c->tenant, &c->r);
}

int store_ship_status(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t *head, uint64_t *shipped, uint64_t *segments)
{
	struct status_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	if ((rc = cat_read(st, status_txn, &c)))
		return rc;
	*head = c.head;
	*shipped = c.r.shipped;
	*segments = c.r.next - 1;
	return 0;
}
