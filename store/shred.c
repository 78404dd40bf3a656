/*
 * shred.c - what is left to do in the catalog once a tenant's keys are
 * destroyed: its mail records go (they are sealed and could no longer be
 * read anyway); its log and checkpoints stay as the record of what was.
 */
#include <errno.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"

static int purge_dbi(store_t *st, MDB_txn *txn, int dbi,
    const uint8_t tenant[STORE_TENANT_LEN])
{
	MDB_val k = { STORE_TENANT_LEN, (void *)tenant }, v;
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(txn, st->dbi[dbi], &cur)))
		return cat_status(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		if (k.mv_size < STORE_TENANT_LEN ||
		    memcmp(k.mv_data, tenant, STORE_TENANT_LEN))
			break;
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == MDB_NOTFOUND || rc == EINVAL)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : cat_status(rc);
}

static int purge_txn(store_t *st, MDB_txn *txn, void *arg)
{
	static const int dbis[] = { DBI_OBJECTS, DBI_DEDUP, DBI_RECEIPTS,
	    DBI_RETENTION, DBI_HOLDS, DBI_DKIM };
	int rc;

	for (size_t i = 0; i < AR_ARRAY_LEN(dbis); i++)
		if ((rc = purge_dbi(st, txn, dbis[i], arg)))
			return cat_err(st, rc, "purge: %s", ar_strerror(rc));
	return 0;
}

int store_tenant_purge(store_t *st, const uint8_t tenant[STORE_TENANT_LEN])
{
	return cat_write(st, purge_txn, (void *)tenant);
}

struct head_ctx {
	const uint8_t *tenant;
	uint64_t *seq;
	uint8_t *hash;
};

static int head_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct head_ctx *c = arg;
	MDB_val k = { STORE_TENANT_LEN, (void *)c->tenant }, v;
	int rc = mdb_get(txn, st->dbi[DBI_LOGHEAD], &k, &v);

	if (rc == MDB_NOTFOUND) {
		*c->seq = 0;
		memset(c->hash, 0, STORE_HASH_LEN);
		return 0;
	}
	if (rc)
		return cat_status(rc);
	if (v.mv_size != LOGHEAD_LEN)
		return cat_err(st, AR_ECORRUPT, "log head record malformed");
	*c->seq = ar_get_u64(v.mv_data);
	memcpy(c->hash, (unsigned char *)v.mv_data + 8, STORE_HASH_LEN);
	return 0;
}

int store_log_head(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t *seq, uint8_t hash[STORE_HASH_LEN])
{
	struct head_ctx c = { tenant, seq, hash };
	return cat_read(st, head_txn, &c);
}
