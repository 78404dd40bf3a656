/*
 * catalog_priv.h - private to store/: the store handle, LMDB databases,
 * transaction helpers and record codecs shared by catalog.c, objects.c,
 * log.c, meta.c and verify.c.
 */
#ifndef STORE_CATALOG_PRIV_H
#define STORE_CATALOG_PRIV_H

#include <lmdb.h>
#include <pthread.h>

#include "store.h"

enum cat_dbi {
	DBI_META,         /* "schema" -> version */
	DBI_TENANTS,      /* tenant id -> JSON record */
	DBI_NAMES,        /* tenant name -> tenant id */
	DBI_ADDRS,        /* journal address -> tenant id */
	DBI_OBJECTS,      /* tenant id || object id -> object record */
	DBI_DEDUP,        /* tenant id || keyed digest -> object id */
	DBI_LOG,          /* tenant id || seq (BE) -> log entry */
	DBI_LOGHEAD,      /* tenant id -> head record */
	DBI_CHECKPOINTS,  /* tenant id || seq (BE) -> checkpoint */
	DBI_RECEIPTS,     /* tenant id || receipt -> object id */
	/* jobs (issue 6): new names go at the end */
	DBI_RETENTION,    /* tenant id -> sealed retention rules */
	DBI_HOLDS,        /* tenant id || u32 hold number -> sealed hold */
	DBI_USERS,        /* tenant id (zero: operator) || name -> user */
	/* the filtering gateway (store/gateway.c) */
	DBI_DOMAINS,      /* domain name -> JSON record (tenant, routes) */
	DBI_GWLISTS,      /* tenant id || list || H(scope) || H(entry) -> sealed */
	DBI_QUARANTINE,   /* tenant id || id -> record (store/quarantine.c) */
	DBI_QRELEASE,     /* tenant id || id -> "" : releases asked */
	DBI_GWREQ,        /* u64 seq (BE) -> JSON: operator requests to the
	                     running gateway (store/gateway.c) */
	/* the bucket as the source of truth (ship.c) */
	DBI_SHIP,         /* tenant id -> next segment, shipped seq, ckpt */
	DBI_SHIPQ,        /* tenant id || object id -> "" (record to ship) */
	DBI_GWSTATS,      /* tenant id || u32 day (BE) -> verdict counts;
	                     tenant id || ffffffff -> last digest time */
	DBI_DKIM,         /* tenant id || domain -> JSON: selector, record,
	                     sealed private key (store/dkim.c) */
	DBI_COUNT
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[DBI_COUNT];
	store_backend_t *be;
	keysvc_t *ks;
	uint32_t ckpt_entries;
	int64_t ckpt_seconds;
	/* Shared by every transaction of this process, exclusive while the
	 * map is resized (LMDB requires no transaction then). */
	pthread_rwlock_t resize_lock;
	pthread_mutex_t err_lock;
	char err[512];
	/* where log segments and checkpoints are written (ship.c): the
	 * backend when it keeps blobs, else none */
	store_backend_t *ship_be;
	pthread_mutex_t ship_lock;
};

/* Set the handle's error message; returns rc for tail calls. */
int cat_err(store_t *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* LMDB return code to AR_* status. */
int cat_status(int mdb_rc);

/*
 * Run fn inside a write transaction and commit it.  When the map is full
 * the transaction is aborted, the map grown and fn run again from the
 * start, so fn must have no effects outside the transaction (or
 * idempotent ones).  fn returns 0 or an AR_* status (non-zero aborts).
 */
typedef int (*cat_txn_fn)(store_t *st, MDB_txn *txn, void *arg);
int cat_write(store_t *st, cat_txn_fn fn, void *arg);
/* Same for a read-only transaction (never committed). */
int cat_read(store_t *st, cat_txn_fn fn, void *arg);

/* --- keys of composite records ------------------------------------------ */

#define CAT_KEY_TID(buf, tenant, id) do { \
	memcpy((buf), (tenant), STORE_TENANT_LEN); \
	memcpy((buf) + STORE_TENANT_LEN, (id), STORE_ID_LEN); } while (0)

/* --- metadata sealing (meta.c) -------------------------------------------
 * Small values that describe mail (hashes, subject, envelope ...) are
 * sealed with XChaCha20-Poly1305 under the tenant's "meta" subkey of the
 * given key version, associated data = label || tenant || id.
 * Blob layout: nonce (24) || ciphertext || tag (16).
 */
#define META_OVERHEAD 40u
int meta_seal(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t version, const char *label, const uint8_t *id, size_t idlen,
    const void *plain, size_t len, unsigned char **blob, size_t *bloblen);
int meta_open(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t version, const char *label, const uint8_t *id, size_t idlen,
    const void *blob, size_t bloblen, unsigned char **plain, size_t *len);
/* Keyed digest of a plaintext hash for the dedup index (tenant "dedup"
 * subkey, version 1: stable across key rotation). */
int meta_dedup_key(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t plain_sha256[STORE_HASH_LEN], uint8_t out[STORE_HASH_LEN]);

/* --- object records (objects.c) ------------------------------------------ */

int obj_decode(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], const MDB_val *v, int with_meta,
    store_object_t *o);

/* --- log (log.c) ------------------------------------------------------------ */

/* Append one entry inside txn; detail_blob is already sealed (or NULL). */
int log_append_txn(store_t *st, MDB_txn *txn,
    const uint8_t tenant[STORE_TENANT_LEN], uint32_t kind,
    const uint8_t *object, const uint8_t *digest, int64_t time,
    uint32_t detail_version, const unsigned char *detail_blob,
    size_t detail_len, uint64_t *seq_out);
/* Seal a detail JSON text for a log entry with the tenant's current key. */
int log_seal_detail(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t version, const char *detail, unsigned char **blob,
    size_t *len);
/* Sign the head if a checkpoint is due (force: always). */
int log_checkpoint_if_due(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], int force, uint64_t *seq_out);
/* Recompute an entry's hash from its fields and sealed detail. */
void log_entry_hash(const uint8_t tenant[STORE_TENANT_LEN],
    const store_log_entry_t *e, const unsigned char *detail_blob,
    size_t detail_len, uint8_t out[STORE_HASH_LEN]);
/* Decode a raw log value into e (detail left sealed: *blob points into
 * v).  AR_ECORRUPT on a malformed record. */
int log_decode(const MDB_val *v, store_log_entry_t *e, uint32_t *detail_ver,
    const unsigned char **blob, size_t *bloblen);
/* The message a checkpoint signature covers. */
size_t log_checkpoint_msg(const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t seq, const uint8_t head[STORE_HASH_LEN], int64_t time,
    unsigned char *out);

#define LOGHEAD_LEN (8 + 32 + 8 + 8)     /* seq, hash, ckpt seq, ckpt time */
#define CKPT_LEN    (8 + 32 + 64)        /* time, head, signature */
#define CKPT_MSG_MAX 128

/* --- the gateway policy in the tenant record (gateway.c) ------------------ */

#include <jansson.h>
json_t *gw_policy_json(const store_gw_policy_t *p);
/* Members absent from o keep the defaults. */
void gw_policy_from_json(const json_t *o, store_gw_policy_t *p);
/* An admin entry (detail, consumed) in tenant's log, inside txn. */
int gw_admin_log(store_t *st, MDB_txn *txn, const uint8_t *tenant,
    json_t *detail);

/* --- shipping to the bucket (ship.c) ------------------------------------ */

/* Remember (per thread) that a transaction appended to tenant's log. */
void ship_note(const uint8_t tenant[STORE_TENANT_LEN]);
void ship_note_reset(void);
/* After a commit: ship the log of every tenant noted (failures are
 * logged and left for the next ship). */
void ship_after_commit(store_t *st);
/* Ship what tenant's log has that the bucket has not (segments, then
 * checkpoints).  0 when there is no ship backend. */
int ship_tenant(store_t *st, const uint8_t tenant[STORE_TENANT_LEN]);
/* Queue an object record whose change made no log entry (inside txn). */
int ship_queue_object(store_t *st, MDB_txn *txn,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN]);

/* --- holds at the storage (holds_lock.c) --------------------------------- */

/* A newly stored object under an active hold gets the storage's legal
 * hold (no-op without STORE_BE_LOCK or active holds). */
int hold_lock_new(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN]);

/* --- retention (retention.c) -------------------------------------------- */

/* Retention days of a message being ingested (its meta JSON): the
 * tenant's default or the longest matching rule. */
int retention_days_msg(store_t *st, const store_tenant_t *t,
    const char *meta, uint32_t *days);

#endif
