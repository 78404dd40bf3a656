/*
 * rebuild.c - a tenant's catalog records rebuilt from the bucket and
 * keysvc alone (archivectl rebuild --from-store): its log segments in
 * order (every entry's hash recomputed and linked to the one before, each
 * segment's signature checked), the object records they carry, the
 * settings, retention rules, holds and users of the last segment, the
 * checkpoints (signature checked, and their head against the rebuilt
 * chain), the dedup index (from each record's sealed SHA-256), and a
 * listing of the tenant's objects to count what is missing or orphaned.
 * Every request stays under the tenant's own prefix.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"
#include "store/ship.h"

struct rb {
	store_t *st;
	store_backend_t *be;
	const uint8_t *tenant;
	uint8_t pk[KEYSVC_PK_LEN];
	char (*names)[64];
	size_t n, cap;
	uint64_t head, ckpt_seq;
	int64_t ckpt_time;
	uint8_t head_hash[32];
	segment_t seg;                  /* the one being applied */
	uint64_t head0, entries0;       /* before it (a retried txn) */
	uint8_t hash0[32];
	unsigned char *last_buf;        /* the last segment (its state) */
	segment_t last;
	uint8_t (*ids)[STORE_ID_LEN];   /* object records, sorted at the end */
	size_t nids, idcap;
	store_rebuild_stats_t *stats;
	char why[300];
};

static int name_cb(void *arg, const char *name)
{
	struct rb *r = arg;
	if (strlen(name) != 16)
		return 0;
	if (ar_grow((void **)&r->names, &r->cap, r->n, sizeof *r->names))
		return AR_ENOMEM;
	ar_strlcpy(r->names[r->n++], name, sizeof r->names[0]);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int list_names(struct rb *r, const char *dir)
{
	int rc;

	r->n = 0;
	if ((rc = store_backend_blob_list(r->be, r->tenant, dir, name_cb, r)))
		return cat_err(r->st, rc, "listing %s/ in the bucket: %s", dir,
		    store_backend_errmsg(r->be));
	if (r->n)
		qsort(r->names, r->n, sizeof *r->names, cmp_name);
	return 0;
}

/* --- one segment ------------------------------------------------------------- */

static int entry_hash_at(store_t *st, MDB_txn *txn, const uint8_t *tenant,
    uint64_t seq, uint8_t hash[32])
{
	unsigned char key[STORE_TENANT_LEN + 8];
	MDB_val k = { sizeof key, key }, v;
	store_log_entry_t e;
	const unsigned char *blob;
	size_t bloblen;
	uint32_t dver;
	int rc;

	memcpy(key, tenant, STORE_TENANT_LEN);
	ar_put_u64(key + STORE_TENANT_LEN, seq);
	if ((rc = mdb_get(txn, st->dbi[DBI_LOG], &k, &v)))
		return cat_status(rc);
	if ((rc = log_decode(&v, &e, &dver, &blob, &bloblen)))
		return rc;
	memcpy(hash, e.hash, 32);
	return 0;
}

static int apply_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct rb *r = arg;
	segment_t *s = &r->seg;
	unsigned char key[STORE_TENANT_LEN + STORE_ID_LEN + 8];
	MDB_val k, v;
	int rc;

	/* run again from the start when the map grew */
	r->head = r->head0;
	memcpy(r->head_hash, r->hash0, 32);
	r->stats->entries = r->entries0;
	for (size_t i = 0; i < s->nentries; i++) {
		store_log_entry_t e;
		const unsigned char *blob;
		size_t bloblen;
		uint32_t dver;
		uint8_t h[32];
		MDB_val ev = { s->entries[i].len,
		    (void *)s->entries[i].val };

		if ((rc = log_decode(&ev, &e, &dver, &blob, &bloblen)))
			return cat_err(st, rc, "segment %llu: log entry %llu "
			    "malformed", (unsigned long long)s->number,
			    (unsigned long long)s->entries[i].seq);
		e.seq = s->entries[i].seq;
		if (e.seq <= r->head) {
			/* sent twice (a retried ship): must be the same */
			if ((rc = entry_hash_at(st, txn, r->tenant, e.seq, h)) ||
			    memcmp(h, e.hash, 32))
				return cat_err(st, AR_ECORRUPT, "segment %llu: "
				    "log entry %llu differs from the one an "
				    "earlier segment holds",
				    (unsigned long long)s->number,
				    (unsigned long long)e.seq);
			continue;
		}
		if (e.seq != r->head + 1)
			return cat_err(st, AR_ECORRUPT, "segment %llu: log "
			    "entries %llu..%llu are missing from the bucket",
			    (unsigned long long)s->number,
			    (unsigned long long)r->head + 1,
			    (unsigned long long)e.seq - 1);
		if (memcmp(e.prev, r->head_hash, 32))
			return cat_err(st, AR_ECORRUPT, "log entry %llu does "
			    "not chain to the entry before it",
			    (unsigned long long)e.seq);
		log_entry_hash(r->tenant, &e, blob, bloblen, h);
		if (memcmp(h, e.hash, 32))
			return cat_err(st, AR_ECORRUPT, "log entry %llu was "
			    "altered: its hash does not match",
			    (unsigned long long)e.seq);
		memcpy(key, r->tenant, STORE_TENANT_LEN);
		ar_put_u64(key + STORE_TENANT_LEN, e.seq);
		k.mv_size = STORE_TENANT_LEN + 8;
		k.mv_data = key;
		if ((rc = mdb_put(txn, st->dbi[DBI_LOG], &k, &ev,
		    MDB_NOOVERWRITE)))
			return cat_err(st, cat_status(rc), "log: %s",
			    mdb_strerror(rc));
		r->head = e.seq;
		memcpy(r->head_hash, e.hash, 32);
		r->stats->entries++;
		if (e.kind == STORE_LOG_DISPOSE) {
			CAT_KEY_TID(key, r->tenant, e.object);
			k.mv_size = STORE_TENANT_LEN + STORE_ID_LEN;
			rc = mdb_del(txn, st->dbi[DBI_OBJECTS], &k, NULL);
			if (rc && rc != MDB_NOTFOUND)
				return cat_status(rc);
		}
	}
	for (size_t i = 0; i < s->nrecs; i++) {
		const seg_rec_t *rec = &s->recs[i];
		if (rec->type != SEG_REC_OBJECT)
			continue;     /* the state: from the last segment */
		if (rec->klen != STORE_ID_LEN || rec->vlen < 117)
			return cat_err(st, AR_ECORRUPT, "segment %llu: object "
			    "record malformed", (unsigned long long)s->number);
		CAT_KEY_TID(key, r->tenant, rec->key);
		k.mv_size = STORE_TENANT_LEN + STORE_ID_LEN;
		k.mv_data = key;
		v.mv_size = rec->vlen;
		v.mv_data = (void *)rec->val;
		if ((rc = mdb_put(txn, st->dbi[DBI_OBJECTS], &k, &v, 0)))
			return cat_err(st, cat_status(rc), "objects: %s",
			    mdb_strerror(rc));
	}
	return 0;
}

static int apply_segment(struct rb *r, size_t i, const char *seg)
{
	unsigned char *buf;
	size_t len;
	char name[80];
	int rc;

	snprintf(name, sizeof name, "log/%s", seg);
	if ((rc = store_backend_blob_get(r->be, r->tenant, name, &buf, &len)))
		return cat_err(r->st, rc, "%s: %s", name,
		    store_backend_errmsg(r->be));
	if ((rc = segment_decode(buf, len, r->pk, &r->seg, r->why,
	    sizeof r->why))) {
		free(buf);
		return cat_err(r->st, rc, "%s: %s", name, r->why);
	}
	if (memcmp(r->seg.tenant, r->tenant, STORE_TENANT_LEN) ||
	    r->seg.number != i + 1) {
		segment_free(&r->seg);
		free(buf);
		return cat_err(r->st, AR_ECORRUPT, "%s names another tenant or "
		    "number", name);
	}
	r->head0 = r->head;
	memcpy(r->hash0, r->head_hash, 32);
	r->entries0 = r->stats->entries;
	rc = cat_write(r->st, apply_txn, r);
	r->stats->segments++;
	r->stats->bytes += len;
	if (rc == 0) {
		/* keep it: its snapshot may be the last */
		segment_free(&r->last);
		free(r->last_buf);
		r->last = r->seg;
		r->last_buf = buf;
		memset(&r->seg, 0, sizeof r->seg);
	} else {
		segment_free(&r->seg);
		free(buf);
	}
	return rc;
}

/* --- the tenant's state, checkpoints, head, dedup ----------------------------- */

static int put_raw(store_t *st, MDB_txn *txn, int dbi, const void *key,
    size_t klen, const void *val, size_t vlen, unsigned flags)
{
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
	int rc = mdb_put(txn, st->dbi[dbi], &k, &v, flags);
	if (rc == MDB_KEYEXIST)
		return AR_EEXIST;
	return rc ? cat_status(rc) : 0;
}

struct state_ctx {
	struct rb *r;
	char *json;
};

static int state_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct state_ctx *c = arg;
	struct rb *r = c->r;
	json_t *j = json_loads(c->json, 0, NULL), *a;
	const char *name = json_string_value(json_object_get(j, "name"));
	unsigned char key[STORE_TENANT_LEN + 256];
	size_t i;
	int rc;

	if (!name) {
		json_decref(j);
		return cat_err(st, AR_ECORRUPT, "tenant record malformed");
	}
	ar_strlcpy(r->stats->name, name, sizeof r->stats->name);
	if ((rc = put_raw(st, txn, DBI_TENANTS, r->tenant, STORE_TENANT_LEN,
	    c->json, strlen(c->json), 0)) ||
	    (rc = put_raw(st, txn, DBI_NAMES, name, strlen(name), r->tenant,
	    STORE_TENANT_LEN, MDB_NOOVERWRITE))) {
		json_decref(j);
		return cat_err(st, rc, "tenant %s: %s", name, rc == AR_EEXIST ?
		    "another tenant of this catalog has that name" :
		    ar_strerror(rc));
	}
	json_array_foreach(json_object_get(j, "journal"), i, a) {
		const char *addr = json_string_value(a);
		if (addr && (rc = put_raw(st, txn, DBI_ADDRS, addr,
		    strlen(addr), r->tenant, STORE_TENANT_LEN,
		    MDB_NOOVERWRITE))) {
			json_decref(j);
			return cat_err(st, rc, "journal address %s: %s", addr,
			    rc == AR_EEXIST ? "belongs to another tenant of "
			    "this catalog" : ar_strerror(rc));
		}
	}
	json_decref(j);
	for (size_t n = 0; n < r->last.nrecs; n++) {
		const seg_rec_t *rec = &r->last.recs[n];
		int dbi = rec->type == SEG_REC_RETENTION ? DBI_RETENTION :
		    rec->type == SEG_REC_HOLD ? DBI_HOLDS :
		    rec->type == SEG_REC_USER ? DBI_USERS : -1;
		if (dbi < 0 || rec->klen > 255)
			continue;
		memcpy(key, r->tenant, STORE_TENANT_LEN);
		memcpy(key + STORE_TENANT_LEN, rec->key, rec->klen);
		if ((rc = put_raw(st, txn, dbi, key, STORE_TENANT_LEN +
		    rec->klen, rec->val, rec->vlen, 0)))
			return cat_err(st, rc, "tenant records: %s",
			    ar_strerror(rc));
	}
	return 0;
}

static int apply_state(struct rb *r)
{
	struct state_ctx c = { r, NULL };
	unsigned char *plain = NULL;
	size_t plen = 0;
	int rc = AR_ENOENT;

	for (size_t n = 0; n < r->last.nrecs; n++) {
		const seg_rec_t *rec = &r->last.recs[n];
		if (rec->type != SEG_REC_TENANT || rec->vlen < 4)
			continue;
		rc = meta_open(r->st, r->tenant, ar_get_u32(rec->val), "tenant",
		    NULL, 0, rec->val + 4, rec->vlen - 4, &plain, &plen);
		break;
	}
	if (rc == AR_ESHREDDED) {
		char hex[2 * STORE_TENANT_LEN + 1];
		/* keys destroyed: the log stays as evidence, nothing else */
		ar_hex(r->tenant, STORE_TENANT_LEN, hex);
		if (asprintf(&c.json, "{\"name\":\"shredded-%.12s\",\"state\":"
		    "%d,\"key_version\":1,\"retention_days\":1}", hex,
		    STORE_TENANT_SHREDDED) < 0)
			return AR_ENOMEM;
		r->last.nrecs = 0;
	} else if (rc) {
		return cat_err(r->st, rc, "the tenant's settings in the last "
		    "segment cannot be read: %s", ar_strerror(rc));
	} else {
		if (!(c.json = malloc(plen + 1))) {
			free(plain);
			return AR_ENOMEM;
		}
		memcpy(c.json, plain, plen);
		c.json[plen] = '\0';
		sodium_memzero(plain, plen);
		free(plain);
	}
	rc = cat_write(r->st, state_txn, &c);
	sodium_memzero(c.json, strlen(c.json));
	free(c.json);
	return rc;
}

struct ckpt_apply {
	struct rb *r;
	uint64_t seq;
	const unsigned char *val;   /* time, head, sig */
};

static int ckpt_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct ckpt_apply *c = arg;
	unsigned char key[STORE_TENANT_LEN + 8];
	uint8_t h[32];
	int rc;

	if ((rc = entry_hash_at(st, txn, c->r->tenant, c->seq, h)))
		return cat_err(st, AR_ECORRUPT, "checkpoint at seq %llu: no "
		    "such log entry in the bucket", (unsigned long long)c->seq);
	if (memcmp(h, c->val + 8, 32))
		return cat_err(st, AR_ECORRUPT, "checkpoint at seq %llu: the "
		    "log in the bucket no longer matches the signed head",
		    (unsigned long long)c->seq);
	memcpy(key, c->r->tenant, STORE_TENANT_LEN);
	ar_put_u64(key + STORE_TENANT_LEN, c->seq);
	return put_raw(st, txn, DBI_CHECKPOINTS, key, sizeof key, c->val,
	    CKPT_LEN, 0);
}

static int apply_checkpoints(struct rb *r)
{
	int rc;

	if ((rc = list_names(r, "ckpt")))
		return rc;
	for (size_t i = 0; i < r->n; i++) {
		unsigned char *buf, msg[CKPT_MSG_MAX];
		struct ckpt_apply c = { r, 0, NULL };
		char name[80];
		size_t len, n;

		snprintf(name, sizeof name, "ckpt/%s", r->names[i]);
		if ((rc = store_backend_blob_get(r->be, r->tenant, name, &buf,
		    &len)))
			return cat_err(r->st, rc, "%s: %s", name,
			    store_backend_errmsg(r->be));
		if (len != CKPT_BLOB_LEN || memcmp(buf, CKPT_MAGIC, 8) ||
		    memcmp(buf + 8, r->tenant, STORE_TENANT_LEN)) {
			free(buf);
			return cat_err(r->st, AR_ECORRUPT, "%s malformed", name);
		}
		c.seq = ar_get_u64(buf + 8 + STORE_TENANT_LEN);
		c.val = buf + 16 + STORE_TENANT_LEN;
		n = log_checkpoint_msg(r->tenant, c.seq, c.val + 8,
		    (int64_t)ar_get_u64(c.val), msg);
		if (keysvc_verify(r->pk, msg, n, c.val + 40)) {
			free(buf);
			return cat_err(r->st, AR_ESIG, "%s: signature does not "
			    "verify", name);
		}
		if (c.seq > r->head) {
			free(buf);
			return cat_err(r->st, AR_ECORRUPT, "%s is past the end "
			    "of the log in the bucket (seq %llu): segments are "
			    "missing", name, (unsigned long long)r->head);
		}
		rc = cat_write(r->st, ckpt_txn, &c);
		if (rc == 0 && c.seq >= r->ckpt_seq) {
			r->ckpt_seq = c.seq;
			r->ckpt_time = (int64_t)ar_get_u64(c.val);
		}
		free(buf);
		if (rc)
			return rc;
		r->stats->checkpoints++;
	}
	return 0;
}

static int head_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct rb *r = arg;
	unsigned char val[LOGHEAD_LEN], ship[24];
	int rc;

	ar_put_u64(val, r->head);
	memcpy(val + 8, r->head_hash, 32);
	ar_put_u64(val + 40, r->ckpt_seq);
	ar_put_u64(val + 48, (uint64_t)r->ckpt_time);
	if ((rc = put_raw(st, txn, DBI_LOGHEAD, r->tenant, STORE_TENANT_LEN,
	    val, sizeof val, 0)))
		return rc;
	/* everything rebuilt is in the bucket already */
	ar_put_u64(ship, r->stats->segments + 1);
	ar_put_u64(ship + 8, r->head);
	ar_put_u64(ship + 16, r->ckpt_seq);
	return put_raw(st, txn, DBI_SHIP, r->tenant, STORE_TENANT_LEN, ship,
	    sizeof ship, 0);
}

static int collect_cb(void *arg, const store_object_t *o)
{
	struct rb *r = arg;
	uint8_t dk[STORE_HASH_LEN];
	unsigned char key[STORE_TENANT_LEN + STORE_HASH_LEN];
	int rc;

	if (ar_grow((void **)&r->ids, &r->idcap, r->nids, STORE_ID_LEN))
		return AR_ENOMEM;
	memcpy(r->ids[r->nids++], o->id, STORE_ID_LEN);
	r->stats->objects++;
	if ((rc = meta_dedup_key(r->st, r->tenant, o->plain_sha256, dk)))
		return rc;
	/* dedup keys, written in one transaction below */
	memcpy(key, r->tenant, STORE_TENANT_LEN);
	memcpy(key + STORE_TENANT_LEN, dk, STORE_HASH_LEN);
	if (ar_grow((void **)&r->names, &r->cap, r->n, sizeof *r->names))
		return AR_ENOMEM;
	memcpy(r->names[r->n], key, sizeof key);
	memcpy(r->names[r->n] + sizeof key, o->id, STORE_ID_LEN);
	r->n++;
	return 0;
}

static int dedup_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct rb *r = arg;
	const size_t kl = STORE_TENANT_LEN + STORE_HASH_LEN;
	int rc;

	for (size_t i = 0; i < r->n; i++)
		if ((rc = put_raw(st, txn, DBI_DEDUP, r->names[i], kl,
		    r->names[i] + kl, STORE_ID_LEN, 0)))
			return rc;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, STORE_ID_LEN);
}

static int stored_cb(void *arg, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN])
{
	struct rb *r = arg;
	(void)tenant;
	r->stats->stored++;
	if (!r->nids || !bsearch(id, r->ids, r->nids, STORE_ID_LEN, cmp_id))
		r->stats->orphans++;
	return 0;
}

int store_rebuild_tenant(store_t *st, store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], store_rebuild_progress progress,
    void *arg, store_rebuild_stats_t *stats)
{
	struct rb r;
	store_tenant_t t;
	char hex[2 * STORE_TENANT_LEN + 1];
	int rc;

	memset(&r, 0, sizeof r);
	memset(stats, 0, sizeof *stats);
	r.st = st;
	r.be = be;
	r.tenant = tenant;
	r.stats = stats;
	ar_hex(tenant, STORE_TENANT_LEN, hex);
	if (store_tenant_get_id(st, tenant, &t) == 0)
		return cat_err(st, AR_EEXIST, "tenant %s (%s) is already in this "
		    "catalog: rebuild into a new data directory", t.name, hex);
	if ((rc = keysvc_public_key(st->ks, r.pk)))
		return cat_err(st, rc, "%s", keysvc_errmsg(st->ks));
	if ((rc = list_names(&r, "log")))
		goto out;
	if (r.n == 0) {
		rc = cat_err(st, AR_ENOENT, "no log segment of tenant %s in "
		    "the bucket", hex);
		goto out;
	}
	{
		/* the names are fixed, so keep them apart from later lists */
		char (*segs)[64] = r.names;
		size_t nseg = r.n;
		r.names = NULL;
		r.n = r.cap = 0;
		for (size_t i = 0; i < nseg && rc == 0; i++) {
			char want[17];
			snprintf(want, sizeof want, "%016llx",
			    (unsigned long long)i + 1);
			if (strcmp(segs[i], want))
				rc = cat_err(st, AR_ECORRUPT, "log segment %s is "
				    "missing from the bucket (found %s next)",
				    want, segs[i]);
			else
				rc = apply_segment(&r, i, segs[i]);
			if (progress)
				progress(arg, stats);
		}
		free(segs);
	}
	if (rc || (rc = apply_state(&r)) || (rc = apply_checkpoints(&r)) ||
	    (rc = cat_write(st, head_txn, &r)))
		goto out;
	/* dedup entries and the objects actually stored */
	r.n = 0;
	if ((rc = store_object_walk(st, tenant, 1, collect_cb, &r)) ||
	    (rc = cat_write(st, dedup_txn, &r)))
		goto out;
	if (r.nids)
		qsort(r.ids, r.nids, STORE_ID_LEN, cmp_id);
	if ((rc = store_backend_walk(be, tenant, stored_cb, &r)))
		rc = cat_err(st, rc, "listing the tenant's objects: %s",
		    store_backend_errmsg(be));
	stats->missing = stats->objects + stats->orphans > stats->stored ?
	    stats->objects + stats->orphans - stats->stored : 0;
	if (progress)
		progress(arg, stats);
out:
	segment_free(&r.seg);
	segment_free(&r.last);
	free(r.last_buf);
	free(r.names);
	free(r.ids);
	return rc;
}
