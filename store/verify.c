/*
 * verify.c - prove an archive intact: every object re-read and checked,
 * every log chain recomputed, every checkpoint signature checked, and the
 * catalog, the log and the store cross-checked against each other.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"

struct logged {
	uint8_t id[STORE_ID_LEN];
	uint8_t digest[STORE_HASH_LEN];
	uint64_t seq;
	int disposed, in_catalog;
};

struct ckpt {
	uint64_t seq;
	int64_t time;
	uint8_t head[32], sig[KEYSVC_SIG_LEN];
};

struct vctx {
	store_t *st;
	store_verify_cb cb;
	void *arg;
	store_verify_stats_t *stats;
	const store_tenant_t *t;
	uint8_t pk[KEYSVC_PK_LEN];
	struct logged *ids;
	size_t n, cap;
	struct ckpt *ckpts;
	size_t nckpt, ckcap;
	uint64_t tombstones;
};

static void report(struct vctx *c, int error, const uint8_t *id,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(struct vctx *c, int error, const uint8_t *id,
    const char *fmt, ...)
{
	char what[512], hex[2 * STORE_ID_LEN + 1] = "-";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (id)
		ar_hex(id, STORE_ID_LEN, hex);
	if (error)
		c->stats->errors++;
	else
		c->stats->warnings++;
	c->cb(c->arg, c->t ? c->t->name : "-", error ? "error" : "warning",
	    hex, what);
}

static int cmp_logged(const void *a, const void *b)
{
	return memcmp(((const struct logged *)a)->id,
	    ((const struct logged *)b)->id, STORE_ID_LEN);
}

static struct logged *find_logged(struct vctx *c, const uint8_t *id)
{
	struct logged key;
	memcpy(key.id, id, STORE_ID_LEN);
	return c->n ? bsearch(&key, c->ids, c->n, sizeof key, cmp_logged)
	    : NULL;
}

static int add_logged(struct vctx *c, const store_log_entry_t *e)
{
	if (ar_grow((void **)&c->ids, &c->cap, c->n, sizeof *c->ids))
		return AR_ENOMEM;
	memset(&c->ids[c->n], 0, sizeof c->ids[c->n]);
	memcpy(c->ids[c->n].id, e->object, STORE_ID_LEN);
	memcpy(c->ids[c->n].digest, e->digest, STORE_HASH_LEN);
	c->ids[c->n].seq = e->seq;
	c->n++;
	return 0;
}

/* --- the log chain and its checkpoints --------------------------------------- */

static int load_ckpts(store_t *st, MDB_txn *txn, struct vctx *c)
{
	MDB_val k = { STORE_TENANT_LEN, (void *)c->t->id }, v;
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_CHECKPOINTS], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *kp = k.mv_data, *vp = v.mv_data;
		struct ckpt *ck;
		if (k.mv_size != STORE_TENANT_LEN + 8 ||
		    memcmp(kp, c->t->id, STORE_TENANT_LEN))
			break;
		if (ar_grow((void **)&c->ckpts, &c->ckcap, c->nckpt,
		    sizeof *c->ckpts)) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		ck = &c->ckpts[c->nckpt];
		ck->seq = ar_get_u64(kp + STORE_TENANT_LEN);
		if (v.mv_size != CKPT_LEN) {
			report(c, 1, NULL, "checkpoint at seq %llu malformed",
			    (unsigned long long)ck->seq);
			continue;
		}
		ck->time = (int64_t)ar_get_u64(vp);
		memcpy(ck->head, vp + 8, 32);
		memcpy(ck->sig, vp + 40, KEYSVC_SIG_LEN);
		c->nckpt++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : cat_status(rc);
}

static void check_ckpt(struct vctx *c, const struct ckpt *ck,
    const uint8_t computed[32])
{
	unsigned char msg[CKPT_MSG_MAX];
	size_t n = log_checkpoint_msg(c->t->id, ck->seq, ck->head, ck->time,
	    msg);

	c->stats->checkpoints++;
	if (keysvc_verify(c->pk, msg, n, ck->sig))
		report(c, 1, NULL, "checkpoint at seq %llu: signature does "
		    "not verify", (unsigned long long)ck->seq);
	else if (memcmp(computed, ck->head, 32))
		report(c, 1, NULL, "log entries up to seq %llu were altered: "
		    "the chain no longer matches the signed checkpoint",
		    (unsigned long long)ck->seq);
}

static int chain_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct vctx *c = arg;
	MDB_val k = { STORE_TENANT_LEN, (void *)c->t->id }, v;
	MDB_cursor *cur;
	uint8_t prev[32] = { 0 }, computed[32] = { 0 };
	uint64_t expect = 1, head_seq = 0;
	size_t ci = 0;
	int rc;

	if ((rc = load_ckpts(st, txn, c)))
		return rc;
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_LOG], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *kp = k.mv_data, *blob;
		store_log_entry_t e;
		uint32_t dver;
		size_t bloblen;

		if (k.mv_size != STORE_TENANT_LEN + 8 ||
		    memcmp(kp, c->t->id, STORE_TENANT_LEN))
			break;
		c->stats->log_entries++;
		head_seq = ar_get_u64(kp + STORE_TENANT_LEN);
		if (log_decode(&v, &e, &dver, &blob, &bloblen)) {
			report(c, 1, NULL, "log entry seq %llu malformed",
			    (unsigned long long)head_seq);
			expect = head_seq + 1;
			continue;
		}
		e.seq = head_seq;
		if (e.seq != expect)
			report(c, 1, NULL, "log entries %llu..%llu are missing",
			    (unsigned long long)expect,
			    (unsigned long long)e.seq - 1);
		expect = e.seq + 1;
		if (memcmp(e.prev, prev, 32))
			report(c, 1, e.kind == STORE_LOG_TENANT ? NULL :
			    e.object, "log entry seq %llu (%s) does not chain "
			    "to the entry before it", (unsigned long long)e.seq,
			    store_log_kind_name(e.kind));
		{
			store_log_entry_t r = e;
			memcpy(r.prev, computed, 32);
			log_entry_hash(c->t->id, &r, blob, bloblen, computed);
			/* the entry as stored, against its own prev field */
			uint8_t own[32];
			log_entry_hash(c->t->id, &e, blob, bloblen, own);
			if (memcmp(own, e.hash, 32))
				report(c, 1, e.kind == STORE_LOG_TENANT ? NULL :
				    e.object, "log entry seq %llu (%s) was "
				    "altered: its hash does not match",
				    (unsigned long long)e.seq,
				    store_log_kind_name(e.kind));
		}
		memcpy(prev, e.hash, 32);
		while (ci < c->nckpt && c->ckpts[ci].seq < e.seq) {
			report(c, 1, NULL, "checkpoint at seq %llu has no log "
			    "entry", (unsigned long long)c->ckpts[ci].seq);
			ci++;
		}
		if (ci < c->nckpt && c->ckpts[ci].seq == e.seq)
			check_ckpt(c, &c->ckpts[ci++], computed);
		if (e.kind == STORE_LOG_INGEST && (rc = add_logged(c, &e)))
			break;
		if (e.kind == STORE_LOG_DISPOSE) {
			c->tombstones++;
			for (size_t i = 0; i < c->n; i++)
				if (!memcmp(c->ids[i].id, e.object,
				    STORE_ID_LEN))
					c->ids[i].disposed = 1;
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND && rc != 0)
		return cat_status(rc);
	for (; ci < c->nckpt; ci++)
		report(c, 1, NULL, "log truncated: checkpoint at seq %llu but "
		    "the log ends at seq %llu",
		    (unsigned long long)c->ckpts[ci].seq,
		    (unsigned long long)head_seq);
	{
		uint64_t last = c->nckpt ? c->ckpts[c->nckpt - 1].seq : 0;
		if (head_seq > last)
			report(c, 0, NULL, "log entries %llu..%llu are after the "
			    "last signed checkpoint (archivectl checkpoint "
			    "signs them)", (unsigned long long)last + 1,
			    (unsigned long long)head_seq);
	}
	if (c->n)
		qsort(c->ids, c->n, sizeof *c->ids, cmp_logged);
	return 0;
}

/* --- objects ---------------------------------------------------------------- */

static int object_cb(void *arg, const store_object_t *o)
{
	struct vctx *c = arg;
	store_object_info_t info;
	struct logged *l = find_logged(c, o->id);
	char why[256] = "";
	int rc;

	c->stats->objects++;
	c->stats->bytes += o->plain_size;
	if (!l) {
		report(c, 1, o->id, "catalog entry has no ingest log entry");
	} else {
		l->in_catalog = 1;
		if (l->disposed)
			report(c, 1, o->id, "catalog entry of a disposed "
			    "object");
		if (memcmp(l->digest, o->manifest_digest, STORE_HASH_LEN))
			report(c, 1, o->id, "manifest digest differs from its "
			    "ingest log entry (seq %llu)",
			    (unsigned long long)l->seq);
	}
	rc = store_object_check(c->st->be, c->st->ks, c->t->id, o->id, &info,
	    why, sizeof why);
	if (rc == AR_ENOENT) {
		report(c, 1, o->id, "object file missing");
		return 0;
	}
	if (rc == AR_EKEYSVC)
		return rc;
	if (rc) {
		/* why already starts with the status text */
		report(c, 1, o->id, "%s", why[0] ? why : ar_strerror(rc));
		return 0;
	}
	if (memcmp(info.plain_sha256, o->plain_sha256, STORE_HASH_LEN))
		report(c, 1, o->id, "plaintext SHA-256 differs from the "
		    "catalog");
	if (memcmp(info.sealed_sha256, o->sealed_sha256, STORE_HASH_LEN) ||
	    memcmp(info.manifest_digest, o->manifest_digest, STORE_HASH_LEN))
		report(c, 1, o->id, "sealed object differs from the one the "
		    "catalog recorded (replaced?)");
	/* the catalog's retain-until may be later than the sealed one (a
	 * policy extended it), never earlier */
	if (info.plain_size != o->plain_size ||
	    info.key_version != o->key_version ||
	    info.retain_until > o->retain_until)
		report(c, 1, o->id, "size, key version or retain-until "
		    "differs from the catalog");
	return 0;
}

static int store_walk_cb(void *arg, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN])
{
	struct vctx *c = arg;
	struct logged *l = find_logged(c, id);
	store_object_t o;

	(void)tenant;
	if (l && l->in_catalog)
		return 0;
	if (l && l->disposed) {
		report(c, 0, id, "disposed object's file is still present (an "
		    "interrupted disposition; archivectl dispose removes it)");
		return 0;
	}
	if (l)      /* reported below as a missing catalog entry */
		return 0;
	if (store_object_get(c->st, c->t->id, id, &o) == 0) {
		store_object_clear(&o);
		return 0;   /* in the catalog without a log entry: reported */
	}
	{
		/* a quarantined message (the gateway's): its own record */
		store_quarantine_t q;
		if (store_quarantine_get(c->st, c->t->id, id, &q) == 0) {
			store_quarantine_clear(&q);
			return 0;
		}
	}
	report(c, 0, id, "orphan object: stored but never committed to the "
	    "catalog (an interrupted ingest; it holds a copy, nothing points "
	    "at it)");
	return 0;
}

/* Every tombstone's signature (its detail is sealed: a log walk). */
static int tomb_cb(void *arg, const store_log_entry_t *e)
{
	struct vctx *c = arg;
	unsigned char msg[128];
	uint8_t sig[KEYSVC_SIG_LEN];
	json_t *d;
	const char *hex;

	if (e->kind != STORE_LOG_DISPOSE)
		return 0;
	c->stats->disposed++;
	d = e->detail ? json_loads(e->detail, 0, NULL) : NULL;
	hex = json_string_value(json_object_get(d, "sig"));
	if (!hex || strlen(hex) != 2 * KEYSVC_SIG_LEN ||
	    ar_unhex(hex, sig, sizeof sig) ||
	    keysvc_verify(c->pk, msg, store_tombstone_msg(c->t->id, e->object,
	    e->digest, e->time, msg), sig))
		report(c, 1, e->object, "tombstone at log seq %llu: signature "
		    "does not verify", (unsigned long long)e->seq);
	json_decref(d);
	return 0;
}

static int verify_tenant(void *arg, const store_tenant_t *t)
{
	struct vctx *c = arg;
	int rc;

	c->t = t;
	c->n = 0;
	c->nckpt = 0;
	c->tombstones = 0;
	c->stats->tenants++;
	if (t->state == STORE_TENANT_SHREDDED) {
		report(c, 0, NULL, "tenant shredded: keys destroyed, nothing "
		    "to verify");
		return 0;
	}
	if ((rc = cat_read(c->st, chain_txn, c)))
		return rc;
	if (c->tombstones && (rc = store_log_walk(c->st, t->id, 1, tomb_cb, c)))
		return rc;
	if ((rc = store_object_walk(c->st, t->id, 1, object_cb, c)))
		return rc == AR_EKEYSVC ? cat_err(c->st, rc, "%s",
		    keysvc_errmsg(c->st->ks)) : rc;
	for (size_t i = 0; i < c->n; i++)
		if (!c->ids[i].in_catalog && !c->ids[i].disposed)
			report(c, 1, c->ids[i].id, "catalog entry missing "
			    "(ingested at log seq %llu)",
			    (unsigned long long)c->ids[i].seq);
	rc = store_backend_walk(c->st->be, t->id, store_walk_cb, c);
	return rc == AR_ENOENT ? 0 : rc;
}

int store_verify(store_t *st, const uint8_t *tenant, store_verify_cb cb,
    void *arg, store_verify_stats_t *stats)
{
	struct vctx c;
	int rc;

	memset(&c, 0, sizeof c);
	memset(stats, 0, sizeof *stats);
	c.st = st;
	c.cb = cb;
	c.arg = arg;
	c.stats = stats;
	if ((rc = keysvc_public_key(st->ks, c.pk)))
		return cat_err(st, rc, "%s", keysvc_errmsg(st->ks));
	if (tenant) {
		store_tenant_t t;
		if ((rc = store_tenant_get_id(st, tenant, &t)) == 0)
			rc = verify_tenant(&c, &t);
	} else {
		rc = store_tenant_walk(st, verify_tenant, &c);
	}
	free(c.ids);
	free(c.ckpts);
	if (rc)
		return rc;
	return stats->errors ? AR_ECORRUPT : 0;
}
