/*
 * log.c - the per-tenant hash-chained log and its signed checkpoints.
 *
 * Entry value (version 1), big-endian:
 *   u8 version | i64 time | u32 kind | object[16] | digest[32] | prev[32] |
 *   hash[32] | u32 detail key version | u32 detail length | detail blob
 * hash = SHA-256("archived log v1\0" || tenant || seq || time || kind ||
 *                object || digest || detail key version ||
 *                SHA-256(detail blob) or zeros || prev)
 * The detail blob is JSON sealed with the tenant's meta key (meta.c); the
 * chain covers its ciphertext, so verify needs no key to walk the chain.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"

#define LOG_VERSION 1
/* version, time, kind, object, digest, prev, hash, detail version, length */
#define LOG_FIXED (1 + 8 + 4 + STORE_ID_LEN + 32 + 32 + 32 + 4 + 4)

static const char *kind_names[] = {
	[STORE_LOG_TENANT] = "tenant", [STORE_LOG_INGEST] = "ingest",
	[STORE_LOG_ARRIVAL] = "arrival", [STORE_LOG_DISPOSE] = "dispose",
	[STORE_LOG_HOLD] = "hold", [STORE_LOG_EXPORT] = "export",
	[STORE_LOG_ACCESS] = "access", [STORE_LOG_ADMIN] = "admin",
	[STORE_LOG_QUARANTINE] = "quarantine",
};

const char *store_log_kind_name(uint32_t kind)
{
	if (kind < AR_ARRAY_LEN(kind_names) && kind_names[kind])
		return kind_names[kind];
	return "unknown";
}

void log_entry_hash(const uint8_t tenant[STORE_TENANT_LEN],
    const store_log_entry_t *e, const unsigned char *blob, size_t bloblen,
    uint8_t out[STORE_HASH_LEN])
{
	static const char label[] = "archived log v1";
	crypto_hash_sha256_state h;
	unsigned char num[8], dh[32];

	crypto_hash_sha256_init(&h);
	crypto_hash_sha256_update(&h, (const unsigned char *)label,
	    sizeof label);
	crypto_hash_sha256_update(&h, tenant, STORE_TENANT_LEN);
	ar_put_u64(num, e->seq);
	crypto_hash_sha256_update(&h, num, 8);
	ar_put_u64(num, (uint64_t)e->time);
	crypto_hash_sha256_update(&h, num, 8);
	ar_put_u32(num, e->kind);
	crypto_hash_sha256_update(&h, num, 4);
	crypto_hash_sha256_update(&h, e->object, STORE_ID_LEN);
	crypto_hash_sha256_update(&h, e->digest, STORE_HASH_LEN);
	if (bloblen) {
		crypto_hash_sha256(dh, blob, bloblen);
	} else {
		memset(dh, 0, sizeof dh);
	}
	crypto_hash_sha256_update(&h, dh, sizeof dh);
	crypto_hash_sha256_update(&h, e->prev, STORE_HASH_LEN);
	crypto_hash_sha256_final(&h, out);
}

int log_decode(const MDB_val *v, store_log_entry_t *e, uint32_t *detail_ver,
    const unsigned char **blob, size_t *bloblen)
{
	const unsigned char *p = v->mv_data;
	uint32_t dlen;

	memset(e, 0, sizeof *e);
	if (v->mv_size < LOG_FIXED || p[0] != LOG_VERSION)
		return AR_ECORRUPT;
	e->time = (int64_t)ar_get_u64(p + 1);
	e->kind = ar_get_u32(p + 9);
	memcpy(e->object, p + 13, STORE_ID_LEN);
	memcpy(e->digest, p + 29, 32);
	memcpy(e->prev, p + 61, 32);
	memcpy(e->hash, p + 93, 32);
	*detail_ver = ar_get_u32(p + 125);
	dlen = ar_get_u32(p + 129);
	if (v->mv_size != LOG_FIXED + (size_t)dlen)
		return AR_ECORRUPT;
	*blob = dlen ? p + LOG_FIXED : NULL;
	*bloblen = dlen;
	return 0;
}

static int head_get(store_t *st, MDB_txn *txn,
    const uint8_t tenant[STORE_TENANT_LEN], uint64_t *seq, uint8_t hash[32],
    uint64_t *ckpt_seq, int64_t *ckpt_time)
{
	MDB_val k = { STORE_TENANT_LEN, (void *)tenant }, v;
	int rc = mdb_get(txn, st->dbi[DBI_LOGHEAD], &k, &v);
	const unsigned char *p;

	if (rc == MDB_NOTFOUND) {
		*seq = 0;
		memset(hash, 0, 32);
		*ckpt_seq = 0;
		*ckpt_time = 0;
		return 0;
	}
	if (rc)
		return cat_status(rc);
	if (v.mv_size != LOGHEAD_LEN)
		return cat_err(st, AR_ECORRUPT, "log head record malformed");
	p = v.mv_data;
	*seq = ar_get_u64(p);
	memcpy(hash, p + 8, 32);
	*ckpt_seq = ar_get_u64(p + 40);
	*ckpt_time = (int64_t)ar_get_u64(p + 48);
	return 0;
}

static int head_put(store_t *st, MDB_txn *txn,
    const uint8_t tenant[STORE_TENANT_LEN], uint64_t seq,
    const uint8_t hash[32], uint64_t ckpt_seq, int64_t ckpt_time)
{
	unsigned char buf[LOGHEAD_LEN];
	MDB_val k = { STORE_TENANT_LEN, (void *)tenant }, v = { sizeof buf,
	    buf };
	int rc;

	ar_put_u64(buf, seq);
	memcpy(buf + 8, hash, 32);
	ar_put_u64(buf + 40, ckpt_seq);
	ar_put_u64(buf + 48, (uint64_t)ckpt_time);
	rc = mdb_put(txn, st->dbi[DBI_LOGHEAD], &k, &v, 0);
	return rc ? cat_err(st, cat_status(rc), "log head: %s",
	    mdb_strerror(rc)) : 0;
}

int log_append_txn(store_t *st, MDB_txn *txn,
    const uint8_t tenant[STORE_TENANT_LEN], uint32_t kind,
    const uint8_t *object, const uint8_t *digest, int64_t time,
    uint32_t detail_version, const unsigned char *blob, size_t bloblen,
    uint64_t *seq_out)
{
	store_log_entry_t e;
	uint64_t ckpt_seq;
	int64_t ckpt_time;
	unsigned char key[STORE_TENANT_LEN + 8], *val;
	MDB_val k = { sizeof key, key }, v;
	int rc;

	memset(&e, 0, sizeof e);
	if ((rc = head_get(st, txn, tenant, &e.seq, e.prev, &ckpt_seq,
	    &ckpt_time)))
		return rc;
	e.seq++;
	e.time = time;
	e.kind = kind;
	if (object)
		memcpy(e.object, object, STORE_ID_LEN);
	if (digest)
		memcpy(e.digest, digest, STORE_HASH_LEN);
	log_entry_hash(tenant, &e, blob, bloblen, e.hash);

	v.mv_size = LOG_FIXED + bloblen;
	if (!(val = malloc(v.mv_size)))
		return AR_ENOMEM;
	val[0] = LOG_VERSION;
	ar_put_u64(val + 1, (uint64_t)e.time);
	ar_put_u32(val + 9, e.kind);
	memcpy(val + 13, e.object, STORE_ID_LEN);
	memcpy(val + 29, e.digest, 32);
	memcpy(val + 61, e.prev, 32);
	memcpy(val + 93, e.hash, 32);
	ar_put_u32(val + 125, detail_version);
	ar_put_u32(val + 129, (uint32_t)bloblen);
	if (bloblen)
		memcpy(val + LOG_FIXED, blob, bloblen);
	v.mv_data = val;
	memcpy(key, tenant, STORE_TENANT_LEN);
	ar_put_u64(key + STORE_TENANT_LEN, e.seq);
	rc = mdb_put(txn, st->dbi[DBI_LOG], &k, &v, MDB_NOOVERWRITE);
	free(val);
	if (rc)
		return cat_err(st, cat_status(rc), "log append: %s",
		    mdb_strerror(rc));
	if ((rc = head_put(st, txn, tenant, e.seq, e.hash, ckpt_seq,
	    ckpt_time)))
		return rc;
	ship_note(tenant);
	if (seq_out)
		*seq_out = e.seq;
	return 0;
}

int log_seal_detail(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t version, const char *detail, unsigned char **blob,
    size_t *len)
{
	*blob = NULL;
	*len = 0;
	if (!detail)
		return 0;
	return meta_seal(st, tenant, version, "log", NULL, 0, detail,
	    strlen(detail), blob, len);
}

struct append_ctx {
	const uint8_t *tenant, *object, *digest;
	uint32_t kind, version;
	unsigned char *blob;
	size_t bloblen;
	uint64_t seq;
};

static int append_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct append_ctx *c = arg;
	return log_append_txn(st, txn, c->tenant, c->kind, c->object,
	    c->digest, ar_now(), c->version, c->blob, c->bloblen, &c->seq);
}

int store_log_append(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t kind, const uint8_t *object, const uint8_t *digest,
    const char *detail, uint64_t *seq_out)
{
	store_tenant_t t;
	struct append_ctx c = { tenant, object, digest, kind, 0, NULL, 0, 0 };
	int rc;

	if ((rc = store_tenant_get_id(st, tenant, &t)))
		return rc;
	c.version = t.key_version;
	if ((rc = log_seal_detail(st, tenant, c.version, detail, &c.blob,
	    &c.bloblen)))
		return rc;
	rc = cat_write(st, append_txn, &c);
	free(c.blob);
	if (rc == 0) {
		if (seq_out)
			*seq_out = c.seq;
		log_checkpoint_if_due(st, tenant, 0, NULL);
	}
	return rc;
}

struct walk_ctx {
	const uint8_t *tenant;
	uint64_t from;
	store_log_cb cb;
	void *arg;
};

static int walk_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct walk_ctx *c = arg;
	unsigned char key[STORE_TENANT_LEN + 8];
	MDB_val k = { sizeof key, key }, v;
	MDB_cursor *cur;
	int rc;

	memcpy(key, c->tenant, STORE_TENANT_LEN);
	ar_put_u64(key + STORE_TENANT_LEN, c->from);
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_LOG], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		store_log_entry_t e;
		const unsigned char *blob;
		size_t bloblen, plen;
		uint32_t dver;
		int crc;

		if (k.mv_size != sizeof key ||
		    memcmp(k.mv_data, c->tenant, STORE_TENANT_LEN))
			break;
		if (log_decode(&v, &e, &dver, &blob, &bloblen)) {
			rc = cat_err(st, AR_ECORRUPT, "log entry malformed");
			break;
		}
		e.seq = ar_get_u64((unsigned char *)k.mv_data +
		    STORE_TENANT_LEN);
		if (bloblen)
			meta_open(st, c->tenant, dver, "log", NULL, 0, blob,
			    bloblen, (unsigned char **)&e.detail, &plen);
		crc = c->cb(c->arg, &e);
		free(e.detail);
		if (crc) {
			mdb_cursor_close(cur);
			return crc;
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : cat_status(rc);
}

int store_log_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t from, store_log_cb cb, void *arg)
{
	struct walk_ctx c = { tenant, from ? from : 1, cb, arg };
	return cat_read(st, walk_txn, &c);
}

/* --- checkpoints ------------------------------------------------------------ */

size_t log_checkpoint_msg(const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t seq, const uint8_t head[STORE_HASH_LEN], int64_t time,
    unsigned char *out)
{
	static const char label[] = "archived checkpoint v1";
	size_t n = sizeof label;
	memcpy(out, label, n);
	memcpy(out + n, tenant, STORE_TENANT_LEN);
	n += STORE_TENANT_LEN;
	ar_put_u64(out + n, seq);
	n += 8;
	memcpy(out + n, head, STORE_HASH_LEN);
	n += STORE_HASH_LEN;
	ar_put_u64(out + n, (uint64_t)time);
	return n + 8;
}

struct head_ctx {
	const uint8_t *tenant;
	uint64_t seq, ckpt_seq;
	uint8_t hash[32];
	int64_t ckpt_time, time;
	uint8_t sig[KEYSVC_SIG_LEN];
};

static int head_read_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct head_ctx *c = arg;
	return head_get(st, txn, c->tenant, &c->seq, c->hash, &c->ckpt_seq,
	    &c->ckpt_time);
}

static int ckpt_write_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct head_ctx *c = arg;
	unsigned char key[STORE_TENANT_LEN + 8], val[CKPT_LEN];
	MDB_val k = { sizeof key, key }, v = { sizeof val, val };
	uint64_t seq, ckpt_seq;
	int64_t ckpt_time;
	uint8_t hash[32];
	int rc;

	memcpy(key, c->tenant, STORE_TENANT_LEN);
	ar_put_u64(key + STORE_TENANT_LEN, c->seq);
	ar_put_u64(val, (uint64_t)c->time);
	memcpy(val + 8, c->hash, 32);
	memcpy(val + 40, c->sig, KEYSVC_SIG_LEN);
	rc = mdb_put(txn, st->dbi[DBI_CHECKPOINTS], &k, &v, 0);
	if (rc)
		return cat_err(st, cat_status(rc), "checkpoint: %s",
		    mdb_strerror(rc));
	if ((rc = head_get(st, txn, c->tenant, &seq, hash, &ckpt_seq,
	    &ckpt_time)))
		return rc;
	if (ckpt_seq >= c->seq)
		return 0;
	return head_put(st, txn, c->tenant, seq, hash, c->seq, c->time);
}

int log_checkpoint_if_due(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], int force, uint64_t *seq_out)
{
	struct head_ctx c;
	unsigned char msg[CKPT_MSG_MAX];
	size_t n;
	int rc;

	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	if ((rc = cat_read(st, head_read_txn, &c)))
		return rc;
	if (seq_out)
		*seq_out = c.ckpt_seq;
	c.time = ar_now();
	if (c.seq == 0 || c.seq == c.ckpt_seq)
		return 0;
	if (!force && c.seq - c.ckpt_seq < st->ckpt_entries &&
	    c.time - c.ckpt_time < st->ckpt_seconds)
		return 0;
	n = log_checkpoint_msg(tenant, c.seq, c.hash, c.time, msg);
	if ((rc = keysvc_sign(st->ks, msg, n, c.sig)))
		return cat_err(st, rc, "checkpoint: %s", keysvc_errmsg(st->ks));
	if ((rc = cat_write(st, ckpt_write_txn, &c)))
		return rc;
	if (seq_out)
		*seq_out = c.seq;
	/* the signed head goes to the bucket too (a failure is logged: the
	 * next ship sends it) */
	ship_tenant(st, tenant);
	return 0;
}

int store_log_checkpoint_due(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], uint64_t *seq_out)
{
	int rc = log_checkpoint_if_due(st, tenant, 0, seq_out);

	/* archived's scheduler comes here every minute: a segment that
	 * could not be written before (object store down) goes out now */
	if (rc == 0)
		ship_tenant(st, tenant);
	return rc;
}

int store_log_checkpoint(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t *seq_out)
{
	return log_checkpoint_if_due(st, tenant, 1, seq_out);
}
