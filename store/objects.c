/*
 * objects.c - object records, the dedup index and batched ingest.
 *
 * Object value (version 1), big-endian:
 *   u8 version | u32 key version | u32 flags | i64 received |
 *   i64 retain-until | u64 plain size | u64 sealed size | u64 log seq |
 *   u32 arrivals | sealed_sha256[32] | manifest_digest[32] |
 *   u32 blob length | blob
 * blob = meta_seal("object", tenant, id; plain_sha256[32] || meta JSON)
 * with the object's key version: nothing describing the mail is readable
 * without the tenant key.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ar.h"
#include "catalog_priv.h"

#define OBJ_VERSION 1
#define OBJ_FIXED (1 + 4 + 4 + 8 + 8 + 8 + 8 + 8 + 4 + 32 + 32 + 4)
#define OBJ_ARRIVALS_OFF (1 + 4 + 4 + 8 + 8 + 8 + 8 + 8)

void store_object_clear(store_object_t *o)
{
	free(o->meta);
	o->meta = NULL;
}

void store_object_id_new(uint8_t id[STORE_ID_LEN])
{
	struct timespec ts;
	uint64_t ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (int i = 0; i < 6; i++)
		id[i] = (uint8_t)(ms >> (40 - 8 * i));
	randombytes_buf(id + 6, STORE_ID_LEN - 6);
}

int obj_decode(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], const MDB_val *v, int with_meta,
    store_object_t *o)
{
	const unsigned char *p = v->mv_data;
	unsigned char *plain;
	size_t plen;
	uint32_t blen;
	int rc;

	memset(o, 0, sizeof *o);
	if (v->mv_size < OBJ_FIXED || p[0] != OBJ_VERSION)
		return cat_err(st, AR_ECORRUPT, "object record malformed");
	memcpy(o->tenant, tenant, STORE_TENANT_LEN);
	memcpy(o->id, id, STORE_ID_LEN);
	o->key_version = ar_get_u32(p + 1);
	o->flags = ar_get_u32(p + 5);
	o->received = (int64_t)ar_get_u64(p + 9);
	o->retain_until = (int64_t)ar_get_u64(p + 17);
	o->plain_size = ar_get_u64(p + 25);
	o->sealed_size = ar_get_u64(p + 33);
	o->log_seq = ar_get_u64(p + 41);
	o->arrivals = ar_get_u32(p + 49);
	memcpy(o->sealed_sha256, p + 53, 32);
	memcpy(o->manifest_digest, p + 85, 32);
	blen = ar_get_u32(p + 117);
	if (v->mv_size != OBJ_FIXED + (size_t)blen)
		return cat_err(st, AR_ECORRUPT, "object record malformed");
	if (!with_meta)
		return 0;
	rc = meta_open(st, tenant, o->key_version, "object", id, STORE_ID_LEN,
	    p + OBJ_FIXED, blen, &plain, &plen);
	if (rc)
		return rc;
	if (plen < STORE_HASH_LEN) {
		free(plain);
		return cat_err(st, AR_ECORRUPT, "object metadata malformed");
	}
	memcpy(o->plain_sha256, plain, STORE_HASH_LEN);
	if (plen > STORE_HASH_LEN) {
		memmove(plain, plain + STORE_HASH_LEN, plen - STORE_HASH_LEN);
		plain[plen - STORE_HASH_LEN] = '\0';
		o->meta = (char *)plain;
	} else {
		free(plain);
	}
	return 0;
}

/* --- lookups ---------------------------------------------------------------- */

struct get_ctx {
	const uint8_t *tenant, *id;
	store_object_t *out;
	int with_meta;
};

static int get_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct get_ctx *c = arg;
	unsigned char key[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val k = { sizeof key, key }, v;
	int rc;

	CAT_KEY_TID(key, c->tenant, c->id);
	rc = mdb_get(txn, st->dbi[DBI_OBJECTS], &k, &v);
	if (rc)
		return cat_status(rc);
	return obj_decode(st, c->tenant, c->id, &v, c->with_meta, c->out);
}

int store_object_get(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], store_object_t *out)
{
	struct get_ctx c = { tenant, id, out, 1 };
	int rc = cat_read(st, get_txn, &c);
	if (rc == AR_ENOENT) {
		char hex[2 * STORE_ID_LEN + 1];
		return cat_err(st, rc, "no object %s in this tenant",
		    ar_hex(id, STORE_ID_LEN, hex));
	}
	return rc;
}

struct owalk_ctx {
	const uint8_t *tenant;
	const uint8_t *after;      /* NULL: from the first */
	int with_meta;
	store_object_cb cb;
	void *arg;
};

static int owalk_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct owalk_ctx *c = arg;
	unsigned char start[STORE_TENANT_LEN + STORE_ID_LEN];
	MDB_val k = { STORE_TENANT_LEN, start }, v;
	MDB_cursor *cur;
	int rc;

	memcpy(start, c->tenant, STORE_TENANT_LEN);
	if (c->after) {
		memcpy(start + STORE_TENANT_LEN, c->after, STORE_ID_LEN);
		k.mv_size = sizeof start;
	}
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_OBJECTS], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		store_object_t o;
		const uint8_t *kp = k.mv_data;
		int crc;

		if (k.mv_size != STORE_TENANT_LEN + STORE_ID_LEN ||
		    memcmp(kp, c->tenant, STORE_TENANT_LEN))
			break;
		if (c->after && !memcmp(kp + STORE_TENANT_LEN, c->after,
		    STORE_ID_LEN))
			continue;          /* after, not from */
		crc = obj_decode(st, c->tenant, kp + STORE_TENANT_LEN, &v,
		    c->with_meta, &o);
		if (crc == 0)
			crc = c->cb(c->arg, &o);
		store_object_clear(&o);
		if (crc) {
			mdb_cursor_close(cur);
			return crc;
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : cat_status(rc);
}

int store_object_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int with_meta, store_object_cb cb, void *arg)
{
	struct owalk_ctx c = { tenant, NULL, with_meta, cb, arg };
	return cat_read(st, owalk_txn, &c);
}

int store_object_walk_from(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t *after,
    int with_meta, store_object_cb cb, void *arg)
{
	struct owalk_ctx c = { tenant, after, with_meta, cb, arg };
	return cat_read(st, owalk_txn, &c);
}

struct dedup_ctx {
	const uint8_t *tenant;
	uint8_t dkey[STORE_HASH_LEN];
	uint8_t *id;
};

static int dedup_get(store_t *st, MDB_txn *txn, const uint8_t *tenant,
    const uint8_t dkey[STORE_HASH_LEN], uint8_t id[STORE_ID_LEN])
{
	unsigned char key[STORE_TENANT_LEN + STORE_HASH_LEN];
	MDB_val k = { sizeof key, key }, v;
	int rc;

	memcpy(key, tenant, STORE_TENANT_LEN);
	memcpy(key + STORE_TENANT_LEN, dkey, STORE_HASH_LEN);
	rc = mdb_get(txn, st->dbi[DBI_DEDUP], &k, &v);
	if (rc)
		return cat_status(rc);
	if (v.mv_size != STORE_ID_LEN)
		return cat_err(st, AR_ECORRUPT, "dedup record malformed");
	memcpy(id, v.mv_data, STORE_ID_LEN);
	return 0;
}

static int dedup_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct dedup_ctx *c = arg;
	return dedup_get(st, txn, c->tenant, c->dkey, c->id);
}

int store_dedup_lookup(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t plain_sha256[STORE_HASH_LEN], uint8_t id[STORE_ID_LEN])
{
	struct dedup_ctx c = { tenant, { 0 }, id };
	int rc = meta_dedup_key(st, tenant, plain_sha256, c.dkey);
	return rc ? rc : cat_read(st, dedup_txn, &c);
}

/* --- batched ingest ---------------------------------------------------------- */

enum item_state { ITEM_SEALED, ITEM_DUPLICATE };

struct batch_item {
	enum item_state state;
	uint8_t tenant[STORE_TENANT_LEN];
	uint32_t key_version, flags;
	int64_t received, retain_until;
	uint8_t dkey[STORE_HASH_LEN];
	unsigned char *blob;          /* sealed object metadata (SEALED) */
	size_t bloblen;
	unsigned char *detail;        /* sealed arrival detail (DUPLICATE) */
	size_t detaillen;
	char *meta;                   /* plain meta of an arrival, to merge */
	store_sealer_t *sealer;       /* closed, finished at commit (SEALED) */
	int ready;                    /* sealing finished */
	uint8_t receipt[STORE_RECEIPT_MAX];
	size_t receipt_len;
	store_ingest_result_t res;
};

/* Sealed objects of a batch waiting to be finished (signed and made
 * durable together); each holds an open file, so a larger batch finishes
 * them in groups of this many as it goes. */
#define BATCH_OPEN_MAX 64

struct store_batch {
	store_t *st;
	pthread_mutex_t lock;
	struct batch_item *items;
	size_t n, cap;
	size_t nopen;                 /* items holding a closed sealer */
};

static int finish_objects(store_batch_t *b);

int store_batch_begin(store_t *st, store_batch_t **out)
{
	store_batch_t *b = calloc(1, sizeof *b);
	if (!b)
		return AR_ENOMEM;
	b->st = st;
	pthread_mutex_init(&b->lock, NULL);
	*out = b;
	return 0;
}

size_t store_batch_count(const store_batch_t *b)
{
	return b->n;
}

void store_batch_free(store_batch_t *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->items[i].blob);
		free(b->items[i].detail);
		free(b->items[i].meta);
		store_seal_abort(b->items[i].sealer);
	}
	free(b->items);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

const store_ingest_result_t *store_batch_result(const store_batch_t *b,
    size_t slot)
{
	return slot < b->n ? &b->items[slot].res : NULL;
}

/* Reserve a slot; a message already pending in this batch with the same
 * dedup key becomes a duplicate of it at once. */
static int batch_reserve(store_batch_t *b, const struct batch_item *proto,
    size_t *slot)
{
	struct batch_item *it;

	pthread_mutex_lock(&b->lock);
	if (ar_grow((void **)&b->items, &b->cap, b->n, sizeof *b->items)) {
		pthread_mutex_unlock(&b->lock);
		return AR_ENOMEM;
	}
	it = &b->items[b->n];
	*it = *proto;
	for (size_t i = 0; i < b->n && it->state == ITEM_SEALED; i++) {
		struct batch_item *o = &b->items[i];
		if (o->state == ITEM_SEALED &&
		    !memcmp(o->tenant, it->tenant, STORE_TENANT_LEN) &&
		    !memcmp(o->dkey, it->dkey, STORE_HASH_LEN)) {
			it->state = ITEM_DUPLICATE;
			memcpy(it->res.id, o->res.id, STORE_ID_LEN);
		}
	}
	*slot = b->n++;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static int seal_object(store_t *st, const store_ingest_t *m,
    struct batch_item *it)
{
	store_seal_params_t p;
	store_sealer_t *s;
	unsigned char buf[64 * 1024];
	int rc;

	memset(&p, 0, sizeof p);
	memcpy(p.tenant, it->tenant, STORE_TENANT_LEN);
	memcpy(p.id, it->res.id, STORE_ID_LEN);
	p.key_version = it->key_version;
	p.received = it->received;
	p.retain_until = it->retain_until;
	if ((rc = store_seal_begin(st->be, st->ks, &p, &s)))
		return cat_err(st, rc, "seal: %s", rc == AR_EKEYSVC ?
		    keysvc_errmsg(st->ks) : store_backend_errmsg(st->be));
	for (;;) {
		size_t got = 0;
		if ((rc = m->read(m->read_arg, buf, sizeof buf, &got))) {
			store_seal_abort(s);
			return cat_err(st, rc, "reading the message: %s",
			    ar_strerror(rc));
		}
		if (got == 0)
			break;
		if ((rc = store_seal_write(s, buf, got))) {
			store_seal_abort(s);
			return cat_err(st, rc, "seal: %s",
			    store_backend_errmsg(st->be));
		}
	}
	/* signed and committed with the rest of the batch */
	if ((rc = store_seal_close(s, &it->res.info))) {
		store_seal_abort(s);
		return cat_err(st, rc, "seal: %s", store_backend_errmsg(st->be));
	}
	it->sealer = s;
	if (memcmp(it->res.info.plain_sha256, m->plain_sha256, STORE_HASH_LEN))
		return cat_err(st, AR_EINVAL, "message changed while it was "
		    "read (SHA-256 differs)");
	return 0;
}

int store_batch_add(store_batch_t *b, const store_ingest_t *m, size_t *slot)
{
	store_t *st = b->st;
	struct batch_item proto;
	unsigned char *metabuf;
	size_t metalen = m->meta ? strlen(m->meta) : 0;
	uint8_t existing[STORE_ID_LEN];
	struct batch_item *it;
	int rc;

	memset(&proto, 0, sizeof proto);
	if (m->receipt_len > STORE_RECEIPT_MAX)
		return cat_err(st, AR_EINVAL, "receipt longer than %d bytes",
		    STORE_RECEIPT_MAX);
	if (m->receipt_len) {
		memcpy(proto.receipt, m->receipt, m->receipt_len);
		proto.receipt_len = m->receipt_len;
	}
	if (m->tenant->state != STORE_TENANT_ACTIVE)
		return cat_err(st, AR_EPERM, "tenant %s is not active",
		    m->tenant->name);
	memcpy(proto.tenant, m->tenant->id, STORE_TENANT_LEN);
	proto.key_version = m->tenant->key_version;
	proto.flags = m->flags;
	proto.received = m->received;
	{
		/* the tenant's default, or its longest matching rule */
		uint32_t days;
		if ((rc = retention_days_msg(st, m->tenant, m->meta, &days)))
			return rc;
		proto.retain_until = m->received + (int64_t)days * 86400;
	}
	if ((rc = meta_dedup_key(st, proto.tenant, m->plain_sha256,
	    proto.dkey)))
		return rc;
	{
		struct dedup_ctx c = { proto.tenant, { 0 }, existing };
		memcpy(c.dkey, proto.dkey, STORE_HASH_LEN);
		rc = cat_read(st, dedup_txn, &c);
	}
	if (rc == 0) {
		proto.state = ITEM_DUPLICATE;
		memcpy(proto.res.id, existing, STORE_ID_LEN);
	} else if (rc == AR_ENOENT) {
		proto.state = ITEM_SEALED;
		store_object_id_new(proto.res.id);
	} else {
		return rc;
	}
	if ((rc = batch_reserve(b, &proto, slot)))
		return rc;

	/* Sealing happens outside the lock; the slot is ours alone. */
	pthread_mutex_lock(&b->lock);
	proto = b->items[*slot];
	pthread_mutex_unlock(&b->lock);
	if (proto.state == ITEM_SEALED) {
		if ((rc = seal_object(st, m, &proto)))
			goto fail;
		if (!(metabuf = malloc(STORE_HASH_LEN + metalen))) {
			rc = AR_ENOMEM;
			goto fail;
		}
		memcpy(metabuf, m->plain_sha256, STORE_HASH_LEN);
		if (metalen)
			memcpy(metabuf + STORE_HASH_LEN, m->meta, metalen);
		rc = meta_seal(st, proto.tenant, proto.key_version, "object",
		    proto.res.id, STORE_ID_LEN, metabuf,
		    STORE_HASH_LEN + metalen, &proto.blob, &proto.bloblen);
		free(metabuf);
	} else {
		/* Already stored: the message is not read at all. */
		rc = log_seal_detail(st, proto.tenant, proto.key_version,
		    m->meta, &proto.detail, &proto.detaillen);
		if (rc == 0 && m->meta && !(proto.meta = strdup(m->meta)))
			rc = AR_ENOMEM;
		proto.res.duplicate = 1;
	}
fail:
	pthread_mutex_lock(&b->lock);
	it = &b->items[*slot];
	if (rc == 0) {
		proto.ready = 1;
		*it = proto;
		if (proto.sealer && ++b->nopen >= BATCH_OPEN_MAX) {
			/* a failure is the items' own (or, out of memory,
			 * left for the commit to try again) */
			pthread_mutex_unlock(&b->lock);
			(void)finish_objects(b);
			return 0;
		}
	} else {
		/* Keep the slot but mark it failed: commit skips it. */
		it->ready = -1;
		it->res.status = rc;
		store_seal_abort(proto.sealer);
		free(proto.blob);
		free(proto.detail);
		free(proto.meta);
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static int put_object(store_t *st, MDB_txn *txn, struct batch_item *it)
{
	const store_object_info_t *in = &it->res.info;
	unsigned char key[STORE_TENANT_LEN + STORE_ID_LEN], *val;
	MDB_val k = { sizeof key, key }, v;
	int rc;

	v.mv_size = OBJ_FIXED + it->bloblen;
	if (!(val = malloc(v.mv_size)))
		return AR_ENOMEM;
	val[0] = OBJ_VERSION;
	ar_put_u32(val + 1, it->key_version);
	ar_put_u32(val + 5, it->flags);
	ar_put_u64(val + 9, (uint64_t)it->received);
	ar_put_u64(val + 17, (uint64_t)it->retain_until);
	ar_put_u64(val + 25, in->plain_size);
	ar_put_u64(val + 33, in->sealed_size);
	ar_put_u64(val + 41, it->res.log_seq);
	ar_put_u32(val + 49, 1);
	memcpy(val + 53, in->sealed_sha256, 32);
	memcpy(val + 85, in->manifest_digest, 32);
	ar_put_u32(val + 117, (uint32_t)it->bloblen);
	memcpy(val + OBJ_FIXED, it->blob, it->bloblen);
	v.mv_data = val;
	CAT_KEY_TID(key, it->tenant, it->res.id);
	rc = mdb_put(txn, st->dbi[DBI_OBJECTS], &k, &v, MDB_NOOVERWRITE);
	free(val);
	if (rc)
		return cat_err(st, cat_status(rc), "object record: %s",
		    mdb_strerror(rc));
	{
		unsigned char dk[STORE_TENANT_LEN + STORE_HASH_LEN];
		MDB_val dkv = { sizeof dk, dk }, idv = { STORE_ID_LEN,
		    it->res.id };
		memcpy(dk, it->tenant, STORE_TENANT_LEN);
		memcpy(dk + STORE_TENANT_LEN, it->dkey, STORE_HASH_LEN);
		rc = mdb_put(txn, st->dbi[DBI_DEDUP], &dkv, &idv, 0);
	}
	return rc ? cat_err(st, cat_status(rc), "dedup record: %s",
	    mdb_strerror(rc)) : 0;
}

/* Add to dst's array `key` the members of src's that it lacks. */
static void union_array(json_t *dst, const char *key, json_t *src)
{
	json_t *d = json_object_get(dst, key), *v;
	size_t i, j;

	if (!json_is_array(src))
		return;
	if (!json_is_array(d)) {
		d = json_array();
		json_object_set_new(dst, key, d);
	}
	json_array_foreach(src, i, v) {
		json_t *w;
		int seen = 0;
		json_array_foreach(d, j, w)
			if (json_equal(v, w))
				seen = 1;
		if (!seen && json_array_size(d) < 10000)
			json_array_append(d, v);
	}
}

/*
 * Merge an arrival's metadata into the stored object's: every envelope
 * recipient (with its type and annotations) and every journal kind it
 * arrived as.  Returns the new metadata text (malloc'd) or NULL when
 * nothing changed.
 */
static char *merge_meta(const char *stored, const char *arrival)
{
	json_t *a = json_loads(stored, 0, NULL), *b = json_loads(arrival, 0,
	    NULL), *env, *kinds;
	char *out = NULL, *before;

	if (!json_is_object(a) || !json_is_object(b))
		goto done;
	before = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
	env = json_object_get(a, "envelope");
	if (!json_is_object(env)) {
		env = json_object();
		json_object_set_new(a, "envelope", env);
	}
	union_array(env, "recipients", json_object_get(json_object_get(b,
	    "envelope"), "recipients"));
	kinds = json_array();
	if (json_is_string(json_object_get(a, "journal")))
		json_array_append(kinds, json_object_get(a, "journal"));
	if (json_is_string(json_object_get(b, "journal")))
		json_array_append(kinds, json_object_get(b, "journal"));
	union_array(a, "journal_seen", kinds);
	json_decref(kinds);
	out = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
	if (out && before && !strcmp(out, before)) {
		free(out);
		out = NULL;
	}
	free(before);
done:
	json_decref(a);
	json_decref(b);
	return out;
}

/* A new blob for an object record whose metadata changed. */
static int reseal_meta(store_t *st, const uint8_t *tenant, const uint8_t *id,
    const unsigned char *rec, size_t reclen, const char *arrival,
    unsigned char **out, size_t *outlen)
{
	uint32_t ver = ar_get_u32(rec + 1), blen = ar_get_u32(rec + 117);
	unsigned char *plain, *blob, *buf;
	size_t plen, bloblen, mlen;
	char *merged;
	int rc;

	*out = NULL;
	if (reclen != OBJ_FIXED + (size_t)blen)
		return cat_err(st, AR_ECORRUPT, "object record malformed");
	if ((rc = meta_open(st, tenant, ver, "object", id, STORE_ID_LEN,
	    rec + OBJ_FIXED, blen, &plain, &plen)))
		return rc;
	if (plen < STORE_HASH_LEN) {
		free(plain);
		return cat_err(st, AR_ECORRUPT, "object metadata malformed");
	}
	merged = merge_meta(plen > STORE_HASH_LEN ?
	    (char *)plain + STORE_HASH_LEN : "{}", arrival);
	if (!merged) {
		sodium_memzero(plain, plen);
		free(plain);
		return 0;
	}
	mlen = strlen(merged);
	if (!(buf = malloc(STORE_HASH_LEN + mlen))) {
		free(merged);
		free(plain);
		return AR_ENOMEM;
	}
	memcpy(buf, plain, STORE_HASH_LEN);
	memcpy(buf + STORE_HASH_LEN, merged, mlen);
	rc = meta_seal(st, tenant, ver, "object", id, STORE_ID_LEN, buf,
	    STORE_HASH_LEN + mlen, &blob, &bloblen);
	sodium_memzero(plain, plen);
	free(plain);
	free(buf);
	free(merged);
	if (rc)
		return rc;
	if (!(*out = malloc(OBJ_FIXED + bloblen))) {
		free(blob);
		return AR_ENOMEM;
	}
	memcpy(*out, rec, OBJ_FIXED);
	ar_put_u32(*out + 117, (uint32_t)bloblen);
	memcpy(*out + OBJ_FIXED, blob, bloblen);
	*outlen = OBJ_FIXED + bloblen;
	free(blob);
	return 0;
}

/* A further arrival of a stored object: count it, merge its envelope
 * into the object's metadata, and log it. */
static int put_arrival(store_t *st, MDB_txn *txn, struct batch_item *it)
{
	unsigned char key[STORE_TENANT_LEN + STORE_ID_LEN], *val;
	MDB_val k = { sizeof key, key }, v;
	uint8_t digest[STORE_HASH_LEN];
	int rc;

	CAT_KEY_TID(key, it->tenant, it->res.id);
	rc = mdb_get(txn, st->dbi[DBI_OBJECTS], &k, &v);
	if (rc == MDB_NOTFOUND) {
		/* Its twin earlier in this batch failed: neither is stored. */
		it->res.status = AR_EAGAIN;
		return 0;
	}
	if (rc)
		return cat_err(st, cat_status(rc), "object record: %s",
		    mdb_strerror(rc));
	if (v.mv_size < OBJ_FIXED)
		return cat_err(st, AR_ECORRUPT, "object record malformed");
	val = NULL;
	if (it->meta && (rc = reseal_meta(st, it->tenant, it->res.id,
	    v.mv_data, v.mv_size, it->meta, &val, &v.mv_size)))
		return rc;
	if (!val) {
		if (!(val = malloc(v.mv_size)))
			return AR_ENOMEM;
		memcpy(val, v.mv_data, v.mv_size);
	}
	ar_put_u32(val + OBJ_ARRIVALS_OFF,
	    ar_get_u32(val + OBJ_ARRIVALS_OFF) + 1);
	memcpy(digest, val + 85, STORE_HASH_LEN);
	v.mv_data = val;
	rc = mdb_put(txn, st->dbi[DBI_OBJECTS], &k, &v, 0);
	free(val);
	if (rc)
		return cat_err(st, cat_status(rc), "object record: %s",
		    mdb_strerror(rc));
	return log_append_txn(st, txn, it->tenant, STORE_LOG_ARRIVAL,
	    it->res.id, digest, it->received, it->key_version, it->detail,
	    it->detaillen, &it->res.log_seq);
}

static int receipt_key(const uint8_t *tenant, const uint8_t *receipt,
    size_t len, unsigned char *key)
{
	memcpy(key, tenant, STORE_TENANT_LEN);
	memcpy(key + STORE_TENANT_LEN, receipt, len);
	return (int)(STORE_TENANT_LEN + len);
}

static int receipt_get(store_t *st, MDB_txn *txn, const uint8_t *tenant,
    const uint8_t *receipt, size_t len, uint8_t id[STORE_ID_LEN])
{
	unsigned char key[STORE_TENANT_LEN + STORE_RECEIPT_MAX];
	MDB_val k, v;
	int rc;

	k.mv_data = key;
	k.mv_size = (size_t)receipt_key(tenant, receipt, len, key);
	if ((rc = mdb_get(txn, st->dbi[DBI_RECEIPTS], &k, &v)))
		return cat_status(rc);
	if (v.mv_size != STORE_ID_LEN)
		return cat_err(st, AR_ECORRUPT, "receipt record malformed");
	memcpy(id, v.mv_data, STORE_ID_LEN);
	return 0;
}

static int receipt_put(store_t *st, MDB_txn *txn, struct batch_item *it)
{
	unsigned char key[STORE_TENANT_LEN + STORE_RECEIPT_MAX];
	MDB_val k, v = { STORE_ID_LEN, it->res.id };
	int rc;

	if (!it->receipt_len)
		return 0;
	k.mv_data = key;
	k.mv_size = (size_t)receipt_key(it->tenant, it->receipt,
	    it->receipt_len, key);
	rc = mdb_put(txn, st->dbi[DBI_RECEIPTS], &k, &v, 0);
	return rc ? cat_err(st, cat_status(rc), "receipt record: %s",
	    mdb_strerror(rc)) : 0;
}

struct receipt_ctx {
	const uint8_t *tenant, *receipt;
	size_t len;
	uint8_t *id;
};

static int receipt_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct receipt_ctx *c = arg;
	return receipt_get(st, txn, c->tenant, c->receipt, c->len, c->id);
}

int store_receipt_lookup(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t *receipt, size_t len, uint8_t id[STORE_ID_LEN])
{
	struct receipt_ctx c = { tenant, receipt, len, id };
	if (len == 0 || len > STORE_RECEIPT_MAX)
		return AR_EINVAL;
	return cat_read(st, receipt_txn, &c);
}

static int commit_txn(store_t *st, MDB_txn *txn, void *arg)
{
	store_batch_t *b = arg;
	int rc;

	for (size_t i = 0; i < b->n; i++) {
		struct batch_item *it = &b->items[i];
		uint8_t existing[STORE_ID_LEN];

		if (it->ready != 1)
			continue;
		it->res.status = 0;
		it->res.replayed = 0;
		if (it->receipt_len) {
			rc = receipt_get(st, txn, it->tenant, it->receipt,
			    it->receipt_len, existing);
			if (rc == 0) {
				/* committed before a crash: nothing to do */
				memcpy(it->res.id, existing, STORE_ID_LEN);
				it->res.duplicate = 1;
				it->res.replayed = 1;
				continue;
			}
			if (rc != AR_ENOENT)
				return rc;
		}
		if (it->state == ITEM_SEALED) {
			rc = dedup_get(st, txn, it->tenant, it->dkey, existing);
			if (rc == 0) {
				/* Committed meanwhile by another writer: this
				 * copy stays an orphan, the arrival counts. */
				char hex[2 * STORE_ID_LEN + 1];
				ar_log(AR_LOG_WARN, "id=%s status=orphan "
				    "reason=\"stored concurrently\"",
				    ar_hex(it->res.id, STORE_ID_LEN, hex));
				memcpy(it->res.id, existing, STORE_ID_LEN);
				it->res.duplicate = 1;
				if ((rc = put_arrival(st, txn, it)))
					return rc;
				if (it->res.status == 0 &&
				    (rc = receipt_put(st, txn, it)))
					return rc;
				continue;
			}
			if (rc != AR_ENOENT)
				return rc;
			it->res.duplicate = 0;
			if ((rc = log_append_txn(st, txn, it->tenant,
			    STORE_LOG_INGEST, it->res.id,
			    it->res.info.manifest_digest, it->received, 0,
			    NULL, 0, &it->res.log_seq)))
				return rc;
			if ((rc = put_object(st, txn, it)))
				return rc;
		} else if ((rc = put_arrival(st, txn, it))) {
			return rc;
		}
		if (it->res.status == 0 && (rc = receipt_put(st, txn, it)))
			return rc;
	}
	return 0;
}

/* Sign the batch's closed objects and make them durable together; an
 * object that fails fails its item alone.  Other threads may be adding to
 * the batch meanwhile: the items are touched under the lock only. */
static int finish_objects(store_batch_t *b)
{
	store_t *st = b->st;
	store_sealer_t **s = NULL;
	store_object_info_t *info = NULL;
	size_t *which = NULL, n = 0;
	int *rcs = NULL, rc = 0;

	pthread_mutex_lock(&b->lock);
	if (b->nopen && (!(s = calloc(b->nopen, sizeof *s)) ||
	    !(info = calloc(b->nopen, sizeof *info)) ||
	    !(which = calloc(b->nopen, sizeof *which)) ||
	    !(rcs = calloc(b->nopen, sizeof *rcs)))) {
		pthread_mutex_unlock(&b->lock);
		rc = cat_err(st, AR_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n && n < b->nopen; i++) {
		struct batch_item *it = &b->items[i];
		if (it->ready == 1 && it->sealer) {
			s[n] = it->sealer;
			it->sealer = NULL;
			which[n++] = i;
		}
	}
	b->nopen -= n;
	pthread_mutex_unlock(&b->lock);
	if (n == 0)
		goto out;
	store_seal_finish_many(s, n, info, rcs);
	pthread_mutex_lock(&b->lock);
	for (size_t j = 0, told = 0; j < n; j++) {
		struct batch_item *it = &b->items[which[j]];
		if (rcs[j] == 0) {
			it->res.info = info[j];
			continue;
		}
		it->ready = -1;
		it->res.status = rcs[j];
		if (!told++)
			cat_err(st, rcs[j], "seal: %s", rcs[j] == AR_EKEYSVC ?
			    keysvc_errmsg(st->ks) :
			    store_backend_errmsg(st->be));
	}
	pthread_mutex_unlock(&b->lock);
out:
	free(s);
	free(info);
	free(which);
	free(rcs);
	return rc;
}

int store_batch_commit(store_batch_t *b)
{
	store_t *st = b->st;
	int rc;

	if (b->n == 0)
		return 0;
	if ((rc = finish_objects(b)))
		return rc;
	if ((rc = store_backend_sync(st->be)))
		return cat_err(st, rc, "store sync: %s",
		    store_backend_errmsg(st->be));
	if ((rc = cat_write(st, commit_txn, b)))
		return rc;
	/* new objects under an active hold: the storage's legal hold */
	for (size_t i = 0; i < b->n; i++) {
		struct batch_item *it = &b->items[i];
		if (it->ready == 1 && it->res.status == 0 &&
		    !it->res.duplicate && (rc = hold_lock_new(st, it->tenant,
		    it->res.id)))
			return rc;
	}
	/* Checkpoints are signed after the commit, once per tenant; the
	 * log must have reached the bucket (where there is one) before the
	 * caller lets the messages go. */
	for (size_t i = 0; i < b->n; i++) {
		int seen = 0;
		for (size_t j = 0; j < i && !seen; j++)
			seen = !memcmp(b->items[j].tenant, b->items[i].tenant,
			    STORE_TENANT_LEN);
		if (seen)
			continue;
		log_checkpoint_if_due(st, b->items[i].tenant, 0, NULL);
		if ((rc = ship_tenant(st, b->items[i].tenant)))
			return rc;
	}
	/* a put the object store could not take: the whole batch stops
	 * (what was stored is committed; the rest is tried again) */
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].ready == -1 &&
		    (b->items[i].res.status == AR_EAGAIN ||
		    b->items[i].res.status == AR_ETIMEOUT))
			return cat_err(st, b->items[i].res.status, "object store: "
			    "%s", store_backend_errmsg(st->be));
	return 0;
}

/* --- stats ------------------------------------------------------------------ */

static int stats_cb(void *arg, const store_object_t *o)
{
	store_tenant_stats_t *s = arg;
	s->objects++;
	s->plain_bytes += o->plain_size;
	s->sealed_bytes += o->sealed_size;
	return 0;
}

struct ckpt_stat_ctx {
	const uint8_t *tenant;
	store_tenant_stats_t *s;
};

static int head_stat_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct ckpt_stat_ctx *c = arg;
	MDB_val k = { STORE_TENANT_LEN, (void *)c->tenant }, v;
	int rc = mdb_get(txn, st->dbi[DBI_LOGHEAD], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc || v.mv_size != LOGHEAD_LEN)
		return rc ? cat_status(rc) : AR_ECORRUPT;
	c->s->log_entries = ar_get_u64(v.mv_data);
	c->s->last_checkpoint_seq = ar_get_u64((unsigned char *)v.mv_data +
	    40);
	c->s->last_checkpoint_time = (int64_t)ar_get_u64(
	    (unsigned char *)v.mv_data + 48);
	return 0;
}

int store_tenant_stats(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    store_tenant_stats_t *out)
{
	struct ckpt_stat_ctx c = { tenant, out };
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = store_object_walk(st, tenant, 0, stats_cb, out)))
		return rc;
	return cat_read(st, head_stat_txn, &c);
}
