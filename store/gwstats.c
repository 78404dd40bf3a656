/*
 * gwstats.c - the gateway's verdict counts per tenant per day, and the
 * day of the last quarantine digest (store.h "gateway verdict counts").
 *
 * DBI_GWSTATS, key tenant || u32 day (days since 1970, UTC, BE): value
 * STORE_GWS_COUNT u64 verdict counters then STORE_RS_COUNT u64 relay
 * queue counters (BE); a shorter value (written by an older program)
 * reads as zeros for the missing ones.  Key tenant || ffffffff:
 * the time of the tenant's last digest (u64 BE).  Counts only: no mail,
 * no address, so they are kept in clear.
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"

#define DIGEST_DAY 0xffffffffu

#define NALL (STORE_GWS_COUNT + STORE_RS_COUNT)

static const char *stat_names[STORE_GWS_COUNT] = {
	"clean", "spam", "virus", "policy", "unscanned",
	"delivered", "tagged", "quarantined", "rejected", "tempfailed",
};
static const char *relay_names[STORE_RS_COUNT] = {
	"queued", "delivered", "deferred", "bounced", "dsn",
};

const char *store_relay_stat_name(int i)
{
	return i >= 0 && i < STORE_RS_COUNT ? relay_names[i] : "?";
}

const char *store_gw_stat_name(int i)
{
	return i >= 0 && i < STORE_GWS_COUNT ? stat_names[i] : "?";
}

int store_gw_stat_of(const char *name)
{
	for (int i = 0; name && i < STORE_GWS_COUNT; i++)
		if (!strcmp(name, stat_names[i]))
			return i;
	return -1;
}

struct gs_ctx {
	const uint8_t *tenant;
	uint32_t day, from, to;
	const uint64_t *add, *relay;
	int64_t now, day_start, prev;
	uint32_t *days;
	uint64_t (*counts)[NALL];
	size_t n, cap;
};

static void key_of(uint8_t k[STORE_TENANT_LEN + 4], const uint8_t *tenant,
    uint32_t day)
{
	memcpy(k, tenant, STORE_TENANT_LEN);
	ar_put_u32(k + STORE_TENANT_LEN, day);
}

static void decode(const MDB_val *v, uint64_t n[NALL])
{
	size_t have = v->mv_size / 8;

	for (size_t i = 0; i < NALL; i++)
		n[i] = i < have ? ar_get_u64((const uint8_t *)v->mv_data +
		    8 * i) : 0;
}

static int add_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct gs_ctx *c = arg;
	uint8_t k[STORE_TENANT_LEN + 4], val[8 * NALL];
	uint64_t n[NALL];
	MDB_val key = { sizeof k, k }, v;
	int rc;

	key_of(k, c->tenant, c->day);
	rc = mdb_get(txn, st->dbi[DBI_GWSTATS], &key, &v);
	if (rc == 0)
		decode(&v, n);
	else if (rc == MDB_NOTFOUND)
		memset(n, 0, sizeof n);
	else
		return cat_err(st, cat_status(rc), "gateway counts: %s",
		    mdb_strerror(rc));
	for (size_t i = 0; i < STORE_GWS_COUNT; i++)
		ar_put_u64(val + 8 * i, n[i] + (c->add ? c->add[i] : 0));
	for (size_t i = 0; i < STORE_RS_COUNT; i++)
		ar_put_u64(val + 8 * (STORE_GWS_COUNT + i), n[STORE_GWS_COUNT +
		    i] + (c->relay ? c->relay[i] : 0));
	v.mv_size = sizeof val;
	v.mv_data = val;
	if ((rc = mdb_put(txn, st->dbi[DBI_GWSTATS], &key, &v, 0)))
		return cat_err(st, cat_status(rc), "gateway counts: %s",
		    mdb_strerror(rc));
	return 0;
}

int store_gw_stats_add(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int64_t day, const uint64_t add[STORE_GWS_COUNT],
    const uint64_t relay[STORE_RS_COUNT])
{
	struct gs_ctx c;

	if (day < 0 || day >= DIGEST_DAY)
		return cat_err(st, AR_EINVAL, "gateway counts: day %lld",
		    (long long)day);
	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.day = (uint32_t)day;
	c.add = add;
	c.relay = relay;
	return cat_write(st, add_txn, &c);
}

static int walk_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct gs_ctx *c = arg;
	uint8_t k[STORE_TENANT_LEN + 4];
	MDB_val key = { sizeof k, k }, v;
	MDB_cursor *cur;
	int rc, op = MDB_SET_RANGE;

	c->n = 0;
	key_of(k, c->tenant, c->from);
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_GWSTATS], &cur)))
		return cat_status(rc);
	while ((rc = mdb_cursor_get(cur, &key, &v, op)) == 0) {
		uint32_t day;
		op = MDB_NEXT;
		if (key.mv_size != STORE_TENANT_LEN + 4 ||
		    memcmp(key.mv_data, c->tenant, STORE_TENANT_LEN))
			break;
		day = ar_get_u32((const uint8_t *)key.mv_data +
		    STORE_TENANT_LEN);
		if (day > c->to || day == DIGEST_DAY)
			break;
		if (ar_grow((void **)&c->days, &c->cap, c->n, sizeof *c->days)
		    || !(c->counts = realloc(c->counts, c->cap *
		    sizeof *c->counts))) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		c->days[c->n] = day;
		decode(&v, c->counts[c->n]);
		c->n++;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : cat_status(rc);
}

/* Every day's record from_day..to_day into c (the caller frees). */
static int load(store_t *st, const uint8_t *tenant, int64_t from_day,
    int64_t to_day, struct gs_ctx *c)
{
	memset(c, 0, sizeof *c);
	c->tenant = tenant;
	c->from = from_day < 0 ? 0 : from_day >= DIGEST_DAY ? DIGEST_DAY - 1 :
	    (uint32_t)from_day;
	c->to = to_day < 0 ? 0 : to_day >= DIGEST_DAY ? DIGEST_DAY - 1 :
	    (uint32_t)to_day;
	return cat_read(st, walk_txn, c);
}

int store_gw_stats_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int64_t from_day, int64_t to_day, store_gw_stats_cb cb, void *arg)
{
	struct gs_ctx c;
	int rc;

	rc = load(st, tenant, from_day, to_day, &c);
	for (size_t i = 0; rc == 0 && i < c.n; i++)
		rc = cb(arg, c.days[i], c.counts[i]);
	free(c.days);
	free(c.counts);
	return rc;
}

int store_relay_stats_walk(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], int64_t from_day,
    int64_t to_day, store_relay_stats_cb cb, void *arg)
{
	struct gs_ctx c;
	int rc;

	rc = load(st, tenant, from_day, to_day, &c);
	for (size_t i = 0; rc == 0 && i < c.n; i++) {
		const uint64_t *n = c.counts[i] + STORE_GWS_COUNT;
		uint64_t any = 0;
		for (size_t k = 0; k < STORE_RS_COUNT; k++)
			any |= n[k];
		if (any)
			rc = cb(arg, c.days[i], n);
	}
	free(c.days);
	free(c.counts);
	return rc;
}

static int claim_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct gs_ctx *c = arg;
	uint8_t k[STORE_TENANT_LEN + 4], val[8];
	MDB_val key = { sizeof k, k }, v;
	int rc;

	key_of(k, c->tenant, DIGEST_DAY);
	rc = mdb_get(txn, st->dbi[DBI_GWSTATS], &key, &v);
	c->prev = 0;
	if (rc == 0 && v.mv_size == 8)
		c->prev = (int64_t)ar_get_u64(v.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return cat_err(st, cat_status(rc), "digest: %s",
		    mdb_strerror(rc));
	if (c->prev >= c->day_start)
		return AR_EEXIST;
	if (!c->now)
		return 0;                         /* asked, not claimed */
	ar_put_u64(val, (uint64_t)c->now);
	v.mv_size = sizeof val;
	v.mv_data = val;
	if ((rc = mdb_put(txn, st->dbi[DBI_GWSTATS], &key, &v, 0)))
		return cat_err(st, cat_status(rc), "digest: %s",
		    mdb_strerror(rc));
	return 0;
}

int store_gw_digest_due(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int64_t day_start, int64_t *prev)
{
	struct gs_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.day_start = day_start;
	rc = cat_read(st, claim_txn, &c);
	if (prev)
		*prev = c.prev;
	return rc;
}

int store_gw_digest_done(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int64_t day_start, int64_t now)
{
	struct gs_ctx c;

	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.day_start = day_start;
	c.now = now > day_start ? now : day_start;
	return cat_write(st, claim_txn, &c);
}
