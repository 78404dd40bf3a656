/*
 * log_head.c - the sequence number of a tenant's last log entry, read from
 * its head record (no walk), for callers that page the log from its end.
 */
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"

struct head_seq_ctx {
	const uint8_t *tenant;
	uint64_t seq;
};

static int head_seq_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct head_seq_ctx *c = arg;
	MDB_val k = { STORE_TENANT_LEN, (void *)c->tenant }, v;
	int rc = mdb_get(txn, st->dbi[DBI_LOGHEAD], &k, &v);
	if (rc)
		return cat_status(rc);
	if (v.mv_size != LOGHEAD_LEN)
		return AR_ECORRUPT;
	c->seq = ar_get_u64(v.mv_data);
	return 0;
}

int store_log_head_seq(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t *seq)
{
	struct head_seq_ctx c = { tenant, 0 };
	int rc = cat_read(st, head_seq_txn, &c);
	*seq = rc ? 0 : c.seq;
	return rc;
}
