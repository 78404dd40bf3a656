/*
 * store.h - the storage spine: sealed objects, object store backends,
 * the LMDB catalog and the per-tenant hash-chained log.
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h).
 * Ids are raw bytes; their text form is lower-case hex (ar_hex).
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

#include "keysvc/keysvc.h"

#define STORE_ID_LEN      16            /* object id: random, 128 bits */
#define STORE_TENANT_LEN  KEYSVC_TENANT_LEN
#define STORE_HASH_LEN    32            /* SHA-256 */
#define STORE_CHUNK_DEFAULT (64u * 1024)
#define STORE_CHUNK_MIN     (4u * 1024)
#define STORE_CHUNK_MAX     (1u * 1024 * 1024)

/* ======================================================================
 * Object store backends (store/backend.c, store/backend_fs.c)
 *
 * A backend keeps opaque objects named (tenant, id).  Objects are
 * write-once: a second put of the same name is refused with AR_EEXIST.
 * Deleting before the object's retain-until date is refused with
 * AR_ERETAINED whoever asks.  The fs backend is the embedded default; the
 * s3 backend (S3 Object Lock, below) implements the same operations.
 * ====================================================================== */

typedef struct store_backend store_backend_t;
typedef struct store_put store_put_t;    /* an object being written */
typedef struct store_get store_get_t;    /* an object open for reading */

/*
 * fs backend rooted at dir (created 0700 if missing).  Layout:
 * dir/<tenant hex>/<id hex, first 2 chars>/<id hex>, files mode 0400,
 * temp files in dir/tmp/.
 */
int store_backend_open_fs(store_backend_t **out, const char *dir);
/*
 * seg backend rooted at dir (store/backend_seg.c; the spool's): objects are
 * records appended to shared files dir/seg/<n>.seg, objects over 256 KiB
 * written to dir/tmp/ first.  A commit is durable when it returns (one
 * fdatasync for all the puts of store_put_commit_many); store_backend_sync()
 * makes deletions durable.  Opening scans every segment; rdonly: the view
 * of another process, which refuses puts and deletions.
 */
int store_backend_open_seg(store_backend_t **out, const char *dir,
    int rdonly);
/*
 * Damage a seg backend found in its segments when it was opened: byte
 * ranges that hold no intact record (the intact records after them are
 * kept), in segments still holding records (moved 0) and in segments
 * moved to dir/corrupt/ once drained (moved 1; never deleted).  A torn
 * append at a segment's end (a crash while it was written, never
 * acknowledged) is not damage.  cb's non-zero return stops and is
 * returned; AR_EINVAL for a backend of another kind.
 */
typedef struct store_seg_damage {
	char     file[4096];          /* the segment file */
	uint64_t file_size;
	uint64_t offset, length;      /* the damaged bytes */
	uint64_t live_records;        /* intact records still in it */
	int      moved;               /* 1: in dir/corrupt/ */
} store_seg_damage_t;
typedef int (*store_seg_damage_cb)(void *arg, const store_seg_damage_t *d);
int store_backend_seg_damage(store_backend_t *be, store_seg_damage_cb cb,
    void *arg);
void store_backend_close(store_backend_t *be);
/* Last error message; owned by the handle, valid until the next call. */
const char *store_backend_errmsg(const store_backend_t *be);

/*
 * Start writing object (tenant, id).  Data goes to a temp file (O_EXCL,
 * 0600).  AR_EEXIST if the name is already taken.
 */
int store_backend_put_begin(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_put_t **out);
int store_put_write(store_put_t *put, const void *buf, size_t len);
/*
 * fsync + close + rename (never replacing: AR_EEXIST if the name appeared
 * meanwhile) + chmod 0400.  The new name is durable only after
 * store_backend_sync().  Frees put whatever the result.
 */
int store_put_commit(store_put_t *put, int64_t retain_until);
/* Remove the temp file and free put. */
void store_put_abort(store_put_t *put);
/* store_put_commit of n puts of one backend, made durable together where
 * the backend can (the fs backend: one syncfs instead of n fsyncs).
 * rcs[i] is put i's result; every put is freed.  The first failure. */
int store_put_commit_many(store_put_t **puts, size_t n,
    const int64_t *retain_until, int *rcs);

/* Make every committed put's directory entry durable (one fsync per
 * directory touched since the last sync).  Call before the catalog commit
 * that points at the objects.  Thread-safe. */
int store_backend_sync(store_backend_t *be);

int store_backend_get_open(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_get_t **out);
uint64_t store_get_size(const store_get_t *get);
/* Read up to len bytes at off; *got is 0 at end of object. */
int store_get_pread(store_get_t *get, void *buf, size_t len, uint64_t off,
    size_t *got);
void store_get_close(store_get_t *get);

/*
 * Delete an object.  Refused with AR_ERETAINED when ar_now() is before the
 * object's retain-until date (read from the sealed object's header, so the
 * backend needs no catalog).  AR_ENOENT if absent.
 */
int store_backend_delete(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN]);
/* The same, but the removal of the name becomes durable only with the next
 * store_backend_sync() (for copies that may harmlessly come back after a
 * crash, such as drained spool entries). */
int store_backend_delete_deferred(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN]);

/* Call cb for every stored object (of one tenant, or all when tenant is
 * NULL).  A non-zero return from cb stops the walk and is returned. */
typedef int (*store_backend_walk_cb)(void *arg,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN]);
int store_backend_walk(store_backend_t *be,
    const uint8_t *tenant, store_backend_walk_cb cb, void *arg);

/* Remove every object of a tenant regardless of retain-until: used only
 * after the tenant's keys were destroyed (crypto-shredding), when the bytes
 * can no longer be read by anyone. */
int store_backend_drop_tenant(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN]);

/* ----------------------------------------------------------------------
 * The s3 backend (store/backend_s3*.c): S3 with Object Lock (COMPLIANCE),
 * through libcurl.  Objects are <prefix>/<tenant hex>/o/<id hex>; every
 * put carries x-amz-object-lock-mode COMPLIANCE and the retain-until of
 * the sealed header.  A commit is durable when the server answered 200.
 * Layout and behaviour: docs/formats.md "Bucket layout".
 * ---------------------------------------------------------------------- */
typedef struct store_s3_params {
	const char *endpoint;          /* http(s)://host[:port] */
	const char *region;
	const char *bucket;
	const char *prefix;            /* key prefix, "" for none */
	int virtual_host;              /* 1: bucket.host/key, 0: host/bucket/key */
	const char *access_key, *secret_key, *session_token;
	const char *ca_file;           /* "" or NULL: the system's */
	int connections;               /* parallel requests (pool size) */
	int64_t connect_timeout_ms;
	int64_t timeout_ms;            /* an attempt without progress fails */
	int retries;                   /* further attempts of a transient failure */
	uint64_t part_size;            /* multipart part size, >= 5 MiB */
	int write_check;               /* list versions around puts (write-once
	                                  where If-None-Match is ignored) */
} store_s3_params_t;

/* Open the s3 backend (no request is made; store_backend_check does).
 * err receives the reason of a failure. */
int store_backend_open_s3(store_backend_t **out, const store_s3_params_t *p,
    char *err, size_t errlen);

/* "fs", "seg" or "s3". */
const char *store_backend_name(const store_backend_t *be);

/* What a backend offers beyond the basic operations. */
#define STORE_BE_LOCK  0x1u    /* storage-enforced retention and legal hold */
#define STORE_BE_BLOBS 0x2u    /* named write-once blobs (log segments) */
unsigned store_backend_caps(const store_backend_t *be);

/*
 * Checks before use (s3: credentials, bucket, versioning and Object Lock
 * enabled, clock skew against the server's Date, within max_skew
 * seconds).  cb (may be NULL) receives each item checked: its name, 1 if
 * it passed, a one-line detail.  0 when everything passed, else the
 * status of the first failure (AR_EPERM credentials, AR_ENOENT bucket,
 * AR_ECONFIG versioning/Object Lock/clock, AR_EAGAIN unreachable), its
 * reason in store_backend_errmsg().  Backends without checks: 0.
 */
typedef void (*store_check_cb)(void *arg, const char *item, int ok,
    const char *detail);
int store_backend_check(store_backend_t *be, int64_t max_skew,
    store_check_cb cb, void *arg);

/* STORE_BE_LOCK: set (on) or clear the legal hold of an object. */
int store_backend_legal_hold(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    int on);
/* STORE_BE_LOCK: raise the storage retain-until to until (never lowers:
 * an earlier date is left as it is, 0). */
int store_backend_extend_retention(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    int64_t until);
typedef struct store_lock_info {
	char     mode[16];             /* "COMPLIANCE", "GOVERNANCE", "" */
	int64_t  retain_until;         /* 0: none */
	int      legal_hold;
	uint64_t size;
} store_lock_info_t;
/* STORE_BE_LOCK: the storage's lock state of an object.  AR_ENOENT. */
int store_backend_lock_info(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_lock_info_t *out);

/*
 * STORE_BE_BLOBS: small named write-once objects of a tenant beside its
 * mail (name: [a-z0-9/._-], e.g. "log/0000000000000001"), retained (and
 * locked) until retain_until.  put: AR_EEXIST when the name is taken.
 * get: *data malloc'd, the caller frees.  list: names under dir/ in
 * order, without the dir/ part.  tenants: every tenant with anything
 * stored.
 */
int store_backend_blob_put(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const char *name,
    const void *data, size_t len, int64_t retain_until);
int store_backend_blob_get(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const char *name,
    unsigned char **data, size_t *len);
typedef int (*store_blob_cb)(void *arg, const char *name);
int store_backend_blob_list(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const char *dir,
    store_blob_cb cb, void *arg);
typedef int (*store_tenant_id_cb)(void *arg,
    const uint8_t tenant[STORE_TENANT_LEN]);
int store_backend_tenants(store_backend_t *be, store_tenant_id_cb cb,
    void *arg);

/* ======================================================================
 * Sealed objects (store/seal.c) - format in docs/formats.md
 *
 * A sealed object is a header, the plaintext in fixed-size chunks each
 * sealed with AES-256-GCM (streaming AEAD: chunk index and last-chunk flag
 * in the nonce, header hash as associated data), and a trailer holding a
 * manifest signed by keysvc.  Memory use is bounded by the chunk size.
 *
 * Keys: the per-object key is derived from the tenant's "object" subkey
 * (keysvc_derive(.., version, "object", ..)) and the object id.
 * ====================================================================== */

typedef struct store_object_info {
	uint8_t  tenant[STORE_TENANT_LEN];
	uint8_t  id[STORE_ID_LEN];
	uint32_t key_version;
	uint32_t chunk_size;
	int64_t  received;                    /* seconds since the epoch */
	int64_t  retain_until;                /* seconds since the epoch */
	uint64_t plain_size;
	uint64_t sealed_size;                 /* bytes of the whole file */
	uint8_t  plain_sha256[STORE_HASH_LEN];    /* of the original bytes */
	uint8_t  sealed_sha256[STORE_HASH_LEN];   /* of header + chunks */
	uint8_t  manifest_digest[STORE_HASH_LEN]; /* of manifest + signature */
} store_object_info_t;

typedef struct store_seal_params {
	uint8_t  tenant[STORE_TENANT_LEN];
	uint8_t  id[STORE_ID_LEN];
	uint32_t key_version;
	uint32_t chunk_size;                  /* 0: STORE_CHUNK_DEFAULT */
	int64_t  received;
	int64_t  retain_until;
} store_seal_params_t;

typedef struct store_sealer store_sealer_t;
typedef struct store_reader store_reader_t;

/* Start sealing an object into be; keys and the signature come from ks. */
int store_seal_begin(store_backend_t *be, keysvc_t *ks,
    const store_seal_params_t *params, store_sealer_t **out);
/* Append plaintext; encrypts and writes each full chunk. */
int store_seal_write(store_sealer_t *s, const void *buf, size_t len);
/*
 * Seal the last chunk, have keysvc sign the manifest, write the trailer and
 * commit the put (store_put_commit).  Fills *info.  Frees s whatever the
 * result; on failure nothing is left in the backend.
 */
int store_seal_finish(store_sealer_t *s, store_object_info_t *info);
/*
 * Seal the last chunk and build the manifest, without signing it; frees the
 * cipher state, so a closed sealer holds little more than its open put.
 * Fills *info but for manifest_digest.  The sealer still needs finishing
 * (or aborting), whatever the result.
 */
int store_seal_close(store_sealer_t *s, store_object_info_t *info);
/*
 * store_seal_finish for n sealers at once (begun with one backend and one
 * key service): their manifests are signed in one keysvc request and
 * their puts committed together (one filesystem sync in the fs backend).
 * rcs[i] and info[i] (info may be NULL) are each sealer's result.  Frees
 * every sealer and sets s[i] to NULL.  Returns the first failure, 0 if
 * none.
 */
int store_seal_finish_many(store_sealer_t **s, size_t n,
    store_object_info_t *info, int *rcs);
void store_seal_abort(store_sealer_t *s);

/*
 * Open (tenant, id) for reading.  Checks before returning: the header
 * parses and names this tenant (AR_ETENANT) and id, the key is right
 * (AR_EKEY), the manifest signature verifies (AR_ESIG), the size matches
 * the manifest (AR_ETRUNC), and the last chunk authenticates with the
 * last-chunk flag (AR_ETRUNC / AR_ECORRUPT).
 */
int store_reader_open(store_backend_t *be, keysvc_t *ks,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_reader_t **out);
/* Manifest fields (plain_sha256 is filled only after the whole object was
 * read to its end).  Owned by the reader. */
const store_object_info_t *store_reader_info(const store_reader_t *r);
/*
 * Next plaintext bytes, in order.  Each chunk is authenticated before any
 * of its bytes are released: AR_ECORRUPT (flipped bit), AR_EREORDER,
 * AR_ETRUNC.  At the end (*got == 0) the plaintext digest is checked
 * against the manifest (AR_ECORRUPT).
 */
int store_reader_read(store_reader_t *r, void *buf, size_t len, size_t *got);
/*
 * Random access: the next store_reader_read() returns plaintext from
 * plain_offset (0 .. plain_size; plain_size is the end).  The chunk
 * holding the offset is read and authenticated here, before any of its
 * bytes can be released (AR_ECORRUPT, AR_EREORDER, AR_ETRUNC: sticky, as
 * for read).  Seeking to the current position, or inside the chunk already
 * loaded, costs nothing.  AR_EINVAL beyond the end.
 *
 * Checks after a seek: every chunk is still authenticated (AEAD; the chunk
 * index and last-chunk flag in the nonce already refuse reordered, moved or
 * dropped chunks), but the whole-object checks (plaintext digest and
 * ciphertext hash against the manifest, and info->plain_sha256) are made
 * only by a pass that read every chunk in order from offset 0 to the end.
 * A seek to 0 starts such a pass afresh; a seek elsewhere ends the current
 * one.
 */
int store_reader_seek(store_reader_t *r, uint64_t plain_offset);
/* Plaintext offset the next read starts at.  The plaintext size is
 * store_reader_info(r)->plain_size. */
uint64_t store_reader_tell(const store_reader_t *r);
/* Error text of the last failure (names the chunk). */
const char *store_reader_errmsg(const store_reader_t *r);
void store_reader_close(store_reader_t *r);

/*
 * Full check of one object: everything store_reader_open checks, plus the
 * ciphertext hash and every chunk, and the plaintext digest.  Fills *info
 * (plain_sha256 included).  errbuf (may be NULL) receives a one-line reason.
 */
int store_object_check(store_backend_t *be, keysvc_t *ks,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_object_info_t *info, char *errbuf, size_t errlen);

/* ======================================================================
 * Catalog (LMDB) and per-tenant log (store/catalog.c, store/log.c)
 * ====================================================================== */

/*
 * store_t is the whole storage spine of one data directory: the LMDB
 * catalog (tenants, objects, dedup index, per-tenant log, checkpoints), the
 * object backend and the key service.  Several processes may open the same
 * data directory at once (archived and archivectl): LMDB serialises their
 * writers.  A store_t may be used from several threads.
 */
typedef struct store store_t;

typedef struct store_open_params {
	const char *catalog_dir;        /* LMDB environment directory */
	store_backend_t *backend;       /* borrowed; outlives the store */
	keysvc_t *ks;                   /* borrowed; outlives the store */
	int64_t map_size;               /* initial LMDB map size; grows */
	uint32_t checkpoint_entries;    /* sign the log head every N entries */
	int64_t checkpoint_seconds;     /* ... or when the last one is older */
} store_open_params_t;

int store_open(store_t **out, const store_open_params_t *p);
void store_close(store_t *st);
/* Last error message of this handle (thread-local per call site is not
 * kept: read it right after the failing call).  Owned by the handle. */
const char *store_errmsg(const store_t *st);
store_backend_t *store_get_backend(store_t *st);
keysvc_t *store_get_keysvc(store_t *st);

/* --- tenants -------------------------------------------------------- */

#define STORE_NAME_MAX     64       /* tenant names: [a-z0-9][a-z0-9._-]* */
#define STORE_ADDR_MAX     320      /* an address, with its NUL */
#define STORE_JOURNAL_MAX  16       /* journal addresses per tenant */
#define STORE_NETWORKS_MAX 16       /* allowed client networks */
#define STORE_CIDR_MAX     64       /* "2001:db8::/32", "192.0.2.0/24" */
#define STORE_PWHASH_MAX   128      /* crypto_pwhash_STRBYTES */

enum store_tenant_state {
	STORE_TENANT_ACTIVE = 0,
	STORE_TENANT_TERMINATED = 1,
	STORE_TENANT_INACTIVE = 2,
	STORE_TENANT_SHREDDED = 3,
};

/*
 * The filtering gateway's policy of a tenant (DESIGN.md "Filtering
 * gateway"), kept in the tenant record.  Scores are rspamd's.  A tenant
 * created before the gateway, or a record without one, reads the defaults
 * (store_gw_policy_defaults).
 */
enum store_gw_action {
	STORE_GW_DELIVER    = 0,
	STORE_GW_TAG        = 1,       /* deliver with X-Spam-* headers */
	STORE_GW_QUARANTINE = 2,
	STORE_GW_REJECT     = 3,       /* 5xx before the 250: no backscatter */
};
#define STORE_GW_TYPES_MAX 512
#define STORE_OUTBOUND_MAX 8           /* outbound client networks */

typedef struct store_gw_policy {
	double   spam_tag;             /* score >= : tag (default 6) */
	double   spam_quarantine;      /* score >= : quarantine (10) */
	double   spam_reject;          /* score >= : reject 550 (15) */
	int      virus_action;         /* REJECT (554) or QUARANTINE */
	int      dmarc_reject;         /* 1: DMARC p=reject failure: reject */
	int      unscanned_accept;     /* scanner down: 0 = 451 (default),
	                                  1 = accept and tag as unscanned */
	int      blocked_action;       /* a blocked attachment type: REJECT,
	                                  QUARANTINE */
	int      encrypted_action;     /* encrypted archive: TAG, QUARANTINE
	                                  (default) or REJECT */
	char     blocked_types[STORE_GW_TYPES_MAX];  /* comma-separated real
	                                  types (gateway/scan.h names: pe,
	                                  script, iso, ooxml-macro ...) */
	uint64_t max_size;             /* bytes; 0: only the SMTP limit */
	uint32_t quarantine_days;      /* quarantined mail kept (14) */
	int      archive_quarantined;  /* quarantined mail archived too (1) */
	int      digest;               /* daily quarantine digest (1) */
	uint32_t queue_days;           /* relay queue lifetime (7) */
	uint32_t delay_dsn_hours;      /* "delayed" DSN after; 0: never */
	/* outbound: the tenant's own server relaying its outgoing mail
	 * through the gateway, from these client networks (CIDR) or with
	 * SMTP AUTH after STARTTLS as the tenant's smtp_user */
	size_t   n_outbound;
	char     outbound_networks[STORE_OUTBOUND_MAX][STORE_CIDR_MAX];
	uint32_t outbound_rate;        /* messages a minute (600); 0: no
	                                  limit */
} store_gw_policy_t;

void store_gw_policy_defaults(store_gw_policy_t *p);
/* 0, or AR_EINVAL with why filled (a field out of range, thresholds not
 * tag <= quarantine <= reject, an unknown type name). */
int store_gw_policy_check(const store_gw_policy_t *p, char *why,
    size_t whylen);
const char *store_gw_action_name(int action);   /* "deliver" ... */
int store_gw_action_parse(const char *name);    /* or -1 */

typedef struct store_tenant {
	uint8_t  id[STORE_TENANT_LEN];
	char     name[STORE_NAME_MAX];
	uint32_t retention_days;
	uint32_t key_version;           /* current version for new objects */
	int64_t  created;
	int      state;                 /* enum store_tenant_state */
	size_t   n_journal;
	char     journal[STORE_JOURNAL_MAX][STORE_ADDR_MAX];
	/* SMTP policy: client networks allowed to deliver (CIDR; none: any),
	 * TLS and AUTH required, the AUTH user and its Argon2id hash. */
	size_t   n_networks;
	char     networks[STORE_NETWORKS_MAX][STORE_CIDR_MAX];
	int      require_tls;
	int      require_auth;
	char     smtp_user[STORE_NAME_MAX];
	char     smtp_pass_hash[STORE_PWHASH_MAX];
	/* Termination (jobs/terminate.c): when the state was entered, and
	 * the export window (terminated -> inactive) and the keeping window
	 * (inactive -> shredded), in days; 0 reads as 30 and 120. */
	int64_t  state_since;
	uint32_t terminated_days;
	uint32_t inactive_days;
	/* the filtering gateway (store/gateway.c) */
	store_gw_policy_t gw;
} store_tenant_t;

#define STORE_TERMINATED_DAYS_DEFAULT 30
#define STORE_INACTIVE_DAYS_DEFAULT   120

/* Change a tenant's settings: the fields of *t other than id, name,
 * created, key_version and journal addresses are written as given (an
 * admin log entry records what changed, never the password hash). */
int store_tenant_update(store_t *st, const store_tenant_t *t);

/* A tenant name is valid: 1..63 bytes of [a-z0-9._-], starting with a
 * letter or digit.  0 or AR_EINVAL. */
int store_tenant_name_valid(const char *name);
/*
 * Create a tenant: a new random id, its key in keysvc, its record, its
 * journal addresses (lower-cased; each may belong to one tenant only:
 * AR_EEXIST), and the first log entry.  AR_EEXIST if the name is taken.
 */
int store_tenant_add(store_t *st, const char *name,
    const char *const *journal, size_t n_journal, uint32_t retention_days,
    store_tenant_t *out);
int store_tenant_get(store_t *st, const char *name, store_tenant_t *out);
int store_tenant_get_id(store_t *st, const uint8_t id[STORE_TENANT_LEN],
    store_tenant_t *out);
/* Tenant owning a journal address (case-insensitive).  AR_ENOENT. */
int store_tenant_by_address(store_t *st, const char *addr,
    store_tenant_t *out);
typedef int (*store_tenant_cb)(void *arg, const store_tenant_t *t);
int store_tenant_walk(store_t *st, store_tenant_cb cb, void *arg);
/* Rotate the tenant's data key: new objects use the new version. */
int store_tenant_rotate_key(store_t *st, const char *name,
    uint32_t *new_version);

/* --- gateway domains and lists (store/gateway.c) ---------------------------
 *
 * A tenant receives mail for its domains through the gateway (its MX points
 * at us).  A domain belongs to one tenant; its record carries the routes to
 * the tenant's own server and the TLS policy of that delivery.  Domain
 * names are kept in clear (they route mail before any tenant is known, as
 * journal addresses do); the lists below are blind.
 */
#define STORE_DOMAIN_MAX   256      /* a domain name, with its NUL */
#define STORE_ROUTES_MAX   8
#define STORE_ROUTE_MAX    272      /* "host:port", "[addr]:port", "mx:" */

enum store_tls_policy {
	STORE_TLS_NONE = 0,             /* never STARTTLS */
	STORE_TLS_OPPORTUNISTIC = 1,    /* STARTTLS when offered (default) */
	STORE_TLS_VERIFY = 2,           /* STARTTLS required, certificate
	                                   verified (CA file) or key pinned */
};

typedef struct store_domain {
	char     name[STORE_DOMAIN_MAX];     /* lower case, no trailing dot */
	uint8_t  tenant[STORE_TENANT_LEN];
	int      check_recipients;           /* 1: listed recipients only
	                                        (STORE_GW_RECIPIENTS) */
	size_t   n_routes;                   /* next hops, in priority order: */
	char     routes[STORE_ROUTES_MAX][STORE_ROUTE_MAX]; /* "host:port",
	                                        "[192.0.2.1]:25", "mx:" (the
	                                        domain's MX) or "mx:other.tld" */
	int      tls;                        /* enum store_tls_policy */
	char     tls_ca[512];                /* CA file for verify ("": the
	                                        system's) */
	char     tls_pin[65];                /* hex SHA-256 of the server's
	                                        public key (SPKI), verify */
	int      held;                       /* relay hold: queued, not sent */
} store_domain_t;

/* Is name a domain name we accept (LDH labels, 1..253 bytes, a dot)?
 * Lower-cases it in place.  0 or AR_EINVAL. */
int store_domain_name_norm(char *name);
/* Is route "host:port", "[v4 or v6]:port", "mx:" or "mx:domain"?  0 or
 * AR_EINVAL. */
int store_route_check(const char *route);
/* Add or replace d (d->name normalised); AR_EEXIST when another tenant
 * owns the name.  Logged (admin) in the tenant's log. */
int store_domain_set(store_t *st, const store_domain_t *d);
/* The domain named name (case-insensitive).  AR_ENOENT. */
int store_domain_get(store_t *st, const char *name, store_domain_t *out);
/* Remove a tenant's domain.  AR_ENOENT, AR_ETENANT (another's). */
int store_domain_remove(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *name);
typedef int (*store_domain_cb)(void *arg, const store_domain_t *d);
/* Every domain (of one tenant, or of all when tenant is NULL). */
int store_domain_walk(store_t *st, const uint8_t *tenant, store_domain_cb cb,
    void *arg);

/*
 * Lists of a tenant: valid recipients of its domains that check them,
 * senders allowed (never overriding a virus) and blocked.  An entry is an
 * address (local@domain) or a domain (@domain); scope is "" for the whole
 * tenant or a recipient address (that recipient's own list).  Stored
 * blind: keyed hashes (tenant "gwlist" subkey) as keys, the text sealed
 * with the tenant's meta key, so no address is on disk in clear.
 */
enum store_gw_list {
	STORE_GW_RECIPIENTS = 1,
	STORE_GW_ALLOW = 2,
	STORE_GW_BLOCK = 3,
};
/* Entry and scope are normalised (lower case); AR_EINVAL if malformed. */
int store_gw_list_add(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, const char *scope, const char *entry);
int store_gw_list_remove(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, const char *scope, const char *entry);
/* 0 when entry is on the list, AR_ENOENT when not. */
int store_gw_list_has(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, const char *scope, const char *entry);
/* 0 when address, or its @domain, is on the list of scope "" or of
 * rcpt (may be NULL); AR_ENOENT when neither. */
int store_gw_list_match(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, const char *rcpt, const char *address);
typedef int (*store_gw_list_cb)(void *arg, const char *scope,
    const char *entry);
int store_gw_list_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, store_gw_list_cb cb, void *arg);

/*
 * DKIM signing keys of a tenant's domains (store/dkim.c): for the gateway
 * to sign the tenant's outgoing mail whose From: is in that domain.  A
 * domain has up to STORE_DKIM_KEYS_MAX keys, each under its selector, and
 * at most one of them active (the one that signs); the others wait on
 * standby (a new key while its DNS record spreads, an old one while mail
 * it signed may still be checked).  The private key is kept only sealed:
 * XChaCha20-Poly1305 under the tenant's "dkim" subkey (keysvc_derive) of
 * the key version current when it was added, associated data = tenant,
 * domain and selector; shredding the tenant's keys makes it unreadable.
 * The selector, algorithm and public record are in clear (they are
 * published in DNS).  Every change is an admin entry in the tenant's log.
 */
#define STORE_DKIM_SELECTOR_MAX 64
#define STORE_DKIM_RECORD_MAX   1024
#define STORE_DKIM_KEYS_MAX     4
typedef struct store_dkim_key {
	char    domain[STORE_DOMAIN_MAX];
	char    selector[STORE_DKIM_SELECTOR_MAX];
	char    alg[24];                  /* "rsa-sha256", "ed25519-sha256" */
	unsigned bits;                    /* RSA modulus bits (Ed25519: 256) */
	char    record[STORE_DKIM_RECORD_MAX]; /* the TXT record's text:
	                                     "v=DKIM1; k=rsa; p=..." */
	int64_t created;
	int     active;                   /* 1: signs the domain's mail */
} store_dkim_key_t;
/*
 * Add a key of domain (one of the tenant's domains: AR_ENOENT when no
 * tenant has it, AR_ETENANT when another tenant does) under selector
 * (letters, digits, '-', '.', '_'; 1..63; AR_EEXIST when the domain has
 * it already).  pem: a PEM private key (RSA of 2048..4096 bits, or
 * Ed25519), or NULL to generate one (alg "rsa" - 2048 bits - or
 * "ed25519"; NULL: "rsa").  The key is active unless standby; a domain
 * with an active key takes new ones on standby only (AR_EEXIST).  *out
 * (may be NULL) receives the key's description with its DNS record.  The
 * caller wipes its copy of pem; the store's are wiped.
 */
int store_dkim_add(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *domain, const char *selector, const char *pem, size_t len,
    const char *alg, int standby, store_dkim_key_t *out);
/* Make the key selector of domain the one that signs; the active one
 * before (into *previous, selector "" when none; may be NULL) goes on
 * standby.  AR_ENOENT when the domain has no such key. */
int store_dkim_activate(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *domain, const char *selector, store_dkim_key_t *previous);
/* Remove domain's key selector (NULL: its only key; AR_EINVAL when it
 * has several); AR_ENOENT.  *removed (may be NULL) receives it. */
int store_dkim_remove(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *domain, const char *selector, store_dkim_key_t *removed);
typedef int (*store_dkim_cb)(void *arg, const store_dkim_key_t *k);
/* The tenant's keys, by domain and selector (no private key). */
int store_dkim_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    store_dkim_cb cb, void *arg);
/*
 * The active key of the tenant's domain: its description into *k and
 * the private key (PEM) unsealed into *pem (*len bytes, NUL-terminated),
 * in memory the caller wipes and frees with store_dkim_pem_free.
 * AR_ENOENT when the domain has no active key; AR_EKEYSVC, AR_ESHREDDED.
 */
int store_dkim_get(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *domain, store_dkim_key_t *k, char **pem, size_t *len);
void store_dkim_pem_free(char *pem, size_t len);

/*
 * Requests to the running gateway from another process (archivectl relay
 * retry / bounce): small JSON texts kept in the catalog until the gateway
 * takes them (in order; each is removed once cb returned 0 for it).
 */
int store_gw_request_add(store_t *st, const char *json);
typedef int (*store_gw_request_cb)(void *arg, const char *json);
int store_gw_requests_take(store_t *st, store_gw_request_cb cb, void *arg);

/* --- quarantine (store/quarantine.c) ---------------------------------------
 *
 * Messages the gateway quarantined: a sealed object of the tenant (same
 * keys, signed manifest; no retain-until: the archive keeps its own copy
 * under retention), and a catalog record
 * whose details (envelope, verdict, header summary: JSON) are sealed with
 * the tenant's meta key; the state and dates are in clear for the jobs.
 * The id is the relay queue entry's, so keeping is idempotent.  Every
 * change is a STORE_LOG_QUARANTINE entry in the tenant's log.  Quarantine
 * objects are not archive objects: verify knows them, search never sees
 * them.
 */
/* Reads the next bytes of a message into buf: *got 0 at its end. */
typedef int (*store_read_cb)(void *arg, void *buf, size_t len, size_t *got);

enum store_quarantine_state {
	STORE_Q_HELD = 0,
	STORE_Q_RELEASE = 1,            /* release asked, not yet queued */
	STORE_Q_RELEASED = 2,
	STORE_Q_DELETED = 3,            /* object removed, record kept */
};

typedef struct store_quarantine {
	uint8_t  id[STORE_ID_LEN];
	int      state;                 /* enum store_quarantine_state */
	int64_t  received, expires, changed;
	uint64_t size;
	char    *details;               /* JSON, malloc'd (store_quarantine_clear) */
} store_quarantine_t;

/*
 * Keep a message (read to its end through read) as quarantine object id of
 * tenant t until expires, with details (JSON text).  0 if it was kept
 * before (a repeat after a crash).
 */
int store_quarantine_put(store_t *st, const store_tenant_t *t,
    const uint8_t id[STORE_ID_LEN], const char *details, store_read_cb read,
    void *arg, int64_t expires);
int store_quarantine_get(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], store_quarantine_t *out);
void store_quarantine_clear(store_quarantine_t *q);
/* The message, for reading (store_reader_close it).  AR_ENOENT once
 * deleted. */
int store_quarantine_open(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], store_reader_t **out);
/* Each record of the tenant, newest first; q valid during the call. */
typedef int (*store_quarantine_cb)(void *arg, const store_quarantine_t *q);
int store_quarantine_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    store_quarantine_cb cb, void *arg);
/*
 * Ask for a release (HELD -> RELEASE: the gateway delivers it and marks
 * it RELEASED), mark it released, or delete it (the object goes, the
 * record stays with state DELETED).  who and why go into the log entry.
 * AR_EINVAL for a change its state does not allow (e.g. releasing a
 * deleted one), AR_ENOENT.
 */
int store_quarantine_set_state(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    int state, const char *who, const char *why);
/* The relay queue entry id of a release asked for: rid (the caller's new
 * id) is kept the first time, and the kept one returned into rid after, so
 * a release repeated after a crash queues the same entry.  AR_ENOENT when
 * no release is asked. */
int store_quarantine_release_id(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    uint8_t rid[STORE_ID_LEN]);
/* Records asked to be released, of every tenant (the gateway's work). */
typedef int (*store_quarantine_release_cb)(void *arg,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN]);
int store_quarantine_releases(store_t *st, store_quarantine_release_cb cb,
    void *arg);
/* Delete every held quarantine object whose time has come (jobs); the
 * records are removed (an "expired" log entry each).  *n: how many. */
int store_quarantine_expire(store_t *st, int64_t now, uint64_t *n);

/*
 * Release links of the quarantine digest (no password): HMAC-SHA-256 with
 * the tenant's "qlink" subkey (keysvc_derive, version 1) over tenant, id,
 * expiry and the recipient (lower case) the link was sent to.  check: 0
 * when mac matches, AR_EPERM when not.  One use and expiry are the
 * caller's (the record's state, the time).
 */
#define STORE_QLINK_MAC_LEN 32
int store_quarantine_link_mac(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    const char *rcpt, int64_t expires, uint8_t mac[STORE_QLINK_MAC_LEN]);
int store_quarantine_link_check(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    const char *rcpt, int64_t expires, const uint8_t mac[STORE_QLINK_MAC_LEN]);

/* --- gateway verdict counts (store/gwstats.c) ------------------------------
 *
 * Per tenant per UTC day (days since 1970): messages judged by verdict
 * kind (the first five) and by what was done (the last five).  The gateway
 * adds its counts in batches; the console draws them.  Counts only, in
 * clear.
 */
enum store_gw_stat {
	STORE_GWS_CLEAN = 0, STORE_GWS_SPAM, STORE_GWS_VIRUS, STORE_GWS_POLICY,
	STORE_GWS_UNSCANNED,
	STORE_GWS_DELIVERED, STORE_GWS_TAGGED, STORE_GWS_QUARANTINED,
	STORE_GWS_REJECTED, STORE_GWS_TEMPFAILED,
	STORE_GWS_COUNT
};
const char *store_gw_stat_name(int i);          /* "clean" ... */
int store_gw_stat_of(const char *name);         /* or -1 */
/*
 * The relay queue's counts, kept in the same per-day record after the
 * verdict counts: recipients queued for delivery (accepted mail that is
 * delivered or tagged, released quarantined mail, our own DSNs and
 * digests), recipients delivered (the remote's 2xx), delivery attempts
 * deferred (a 4xx or no server reached, one per recipient per attempt),
 * recipients bounced (a 5xx, the queue lifetime, no route, the
 * operator), and DSNs queued (failed or delayed notices, one per message
 * and occasion).
 */
enum store_relay_stat {
	STORE_RS_QUEUED = 0, STORE_RS_DELIVERED, STORE_RS_DEFERRED,
	STORE_RS_BOUNCED, STORE_RS_DSN,
	STORE_RS_COUNT
};
const char *store_relay_stat_name(int i);       /* "queued" ... */
/* Adds to the tenant's counts of day: add (verdicts) and relay (the
 * relay queue's); either may be NULL. */
int store_gw_stats_add(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int64_t day, const uint64_t add[STORE_GWS_COUNT],
    const uint64_t relay[STORE_RS_COUNT]);
/* Each day from_day..to_day that has counts, oldest first. */
typedef int (*store_gw_stats_cb)(void *arg, int64_t day,
    const uint64_t n[STORE_GWS_COUNT]);
int store_gw_stats_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int64_t from_day, int64_t to_day, store_gw_stats_cb cb, void *arg);
/* The same for the relay queue's counts (days without any are skipped). */
typedef int (*store_relay_stats_cb)(void *arg, int64_t day,
    const uint64_t n[STORE_RS_COUNT]);
int store_relay_stats_walk(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], int64_t from_day,
    int64_t to_day, store_relay_stats_cb cb, void *arg);
/* The daily quarantine digest: due (0, *prev = the last one's time, 0
 * if none) or AR_EEXIST when one was sent at or after day_start; done
 * records it (at now). */
int store_gw_digest_due(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int64_t day_start, int64_t *prev);
int store_gw_digest_done(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int64_t day_start, int64_t now);

/* --- objects ----------------------------------------------------------- */

/* Object flags */
#define STORE_OBJ_UNPARSED  0x0001u   /* archived as received: not parsed */
#define STORE_OBJ_JOURNAL   0x0002u   /* unwrapped from a journal report */
#define STORE_OBJ_LINKED    0x0004u   /* linked copy (e.g. decrypted IRM) */

typedef struct store_object {
	uint8_t  tenant[STORE_TENANT_LEN];
	uint8_t  id[STORE_ID_LEN];
	uint32_t key_version;
	uint32_t flags;
	int64_t  received;
	int64_t  retain_until;
	uint64_t plain_size;
	uint64_t sealed_size;
	uint64_t log_seq;                  /* the ingest log entry */
	uint32_t arrivals;                 /* times it arrived (dedup) */
	uint8_t  sealed_sha256[STORE_HASH_LEN];
	uint8_t  manifest_digest[STORE_HASH_LEN];
	uint8_t  plain_sha256[STORE_HASH_LEN];   /* decrypted from the catalog */
	char    *meta;     /* decrypted metadata, JSON text; NULL if none.
	                      Owned by the struct: store_object_clear(). */
} store_object_t;

void store_object_clear(store_object_t *o);

/* A new object id: a 48-bit big-endian millisecond timestamp then 80
 * random bits, so ids sort by creation time and the objects written
 * together share a directory in the fs backend. */
void store_object_id_new(uint8_t id[STORE_ID_LEN]);

/*
 * One message to ingest.  The plaintext is streamed by read(arg, buf,
 * len, &got) (got == 0 at the end); it is read once.  plain_sha256 must be
 * the SHA-256 of exactly those bytes (the caller computed it for dedup).
 * meta is JSON text (headers summary, envelope, source) sealed with the
 * tenant's meta key.
 */

typedef struct store_ingest {
	const store_tenant_t *tenant;
	int64_t  received;
	uint32_t flags;
	uint8_t  plain_sha256[STORE_HASH_LEN];
	const char *meta;                  /* JSON text, may be NULL */
	store_read_cb read;
	void    *read_arg;
	/* Optional receipt (e.g. spool entry id and part number): committed in
	 * the same transaction as the object, so a replay of the same receipt
	 * after a crash is recognised and changes nothing. */
	const uint8_t *receipt;
	size_t   receipt_len;              /* 0..STORE_RECEIPT_MAX */
} store_ingest_t;

#define STORE_RECEIPT_MAX 32

/* What the ingest of one message did. */
typedef struct store_ingest_result {
	int      status;                   /* 0, or why it was not stored */
	uint8_t  id[STORE_ID_LEN];
	int      duplicate;                /* 1: already stored; an arrival */
	int      replayed;                 /* 1: its receipt was committed
	                                      before: nothing was done */
	uint64_t log_seq;
	store_object_info_t info;          /* valid when !duplicate */
} store_ingest_result_t;

/*
 * Ingest in batches: store_batch_add seals one object (thread-safe:
 * several threads may add to one batch); the batch's objects are signed
 * in one keysvc request and made durable together (store_seal_finish_many)
 * in groups of 64 as they come, the rest at commit.  store_batch_commit
 * makes the backend durable and writes every catalog record, dedup entry
 * and log entry of the batch in one LMDB transaction, then signs a
 * checkpoint when one is due.  A message whose plaintext is already stored for the tenant
 * (keyed SHA-256 dedup) is not sealed again: it becomes an "arrival" log
 * entry on the existing object.  Results are filled at commit.
 * Objects put by a batch that is aborted or never committed are orphans:
 * verify reports them, nothing points at them.
 */
typedef struct store_batch store_batch_t;
int store_batch_begin(store_t *st, store_batch_t **out);
/* *slot receives the index of this message's result in the batch. */
int store_batch_add(store_batch_t *b, const store_ingest_t *msg,
    size_t *slot);
size_t store_batch_count(const store_batch_t *b);
int store_batch_commit(store_batch_t *b);
/* Result of message slot after a successful commit (check its status: a
 * message whose sealing failed, or whose twin in the batch failed, is not
 * stored); owned by the batch. */
const store_ingest_result_t *store_batch_result(const store_batch_t *b,
    size_t slot);
void store_batch_free(store_batch_t *b);

/* Look an object up (metadata decrypted).  AR_ENOENT. */
int store_object_get(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], store_object_t *out);
/* Walk a tenant's objects in id order. The object passed to cb is valid
 * only during the call. */
typedef int (*store_object_cb)(void *arg, const store_object_t *o);
int store_object_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int with_meta, store_object_cb cb, void *arg);
/* The same from the first object whose id is greater than after (NULL:
 * from the first): a long walk in pieces, each its own read transaction,
 * the callback stopping each piece (a non-zero return, returned). */
int store_object_walk_from(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t *after,
    int with_meta, store_object_cb cb, void *arg);
/* Was this receipt committed?  0 and the object id, or AR_ENOENT. */
int store_receipt_lookup(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t *receipt, size_t len, uint8_t id[STORE_ID_LEN]);
/* Is this plaintext already stored for the tenant?  0 and *id, or
 * AR_ENOENT. */
int store_dedup_lookup(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t plain_sha256[STORE_HASH_LEN], uint8_t id[STORE_ID_LEN]);

/* --- per-tenant log -------------------------------------------------- */

enum store_log_kind {
	STORE_LOG_TENANT   = 1,   /* tenant created */
	STORE_LOG_INGEST   = 2,   /* object stored */
	STORE_LOG_ARRIVAL  = 3,   /* a stored object arrived again */
	STORE_LOG_DISPOSE  = 4,   /* object removed by policy (tombstone) */
	STORE_LOG_HOLD     = 5,
	STORE_LOG_EXPORT   = 6,
	STORE_LOG_ACCESS   = 7,   /* search, view, download */
	STORE_LOG_ADMIN    = 8,   /* key rotation, settings, users */
	STORE_LOG_QUARANTINE = 9, /* gateway quarantine: kept, released,
	                             deleted, expired */
};

typedef struct store_log_entry {
	uint64_t seq;
	int64_t  time;
	uint32_t kind;
	uint8_t  object[STORE_ID_LEN];       /* zero when none */
	uint8_t  digest[STORE_HASH_LEN];     /* e.g. manifest digest */
	uint8_t  prev[STORE_HASH_LEN];
	uint8_t  hash[STORE_HASH_LEN];
	char    *detail;   /* decrypted detail JSON or NULL; owned by entry */
} store_log_entry_t;

const char *store_log_kind_name(uint32_t kind);
/* Append an entry (its own transaction).  detail: JSON text or NULL,
 * stored encrypted with the tenant's meta key. */
int store_log_append(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t kind, const uint8_t *object, const uint8_t *digest,
    const char *detail, uint64_t *seq_out);
typedef int (*store_log_cb)(void *arg, const store_log_entry_t *e);
/* Walk entries from seq 'from' (1 = all) in order, decrypting details. */
int store_log_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t from, store_log_cb cb, void *arg);
/* Sequence number of the tenant's last entry (store/log_head.c), without
 * a walk.  AR_ENOENT for a tenant without a log. */
int store_log_head_seq(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t *seq);
/* Sign the tenant's log head if a checkpoint is due: checkpoint_entries
 * unsigned entries, or the last checkpoint older than checkpoint_seconds.
 * *seq_out (may be NULL) receives the last signed seq. */
int store_log_checkpoint_due(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], uint64_t *seq_out);
/* Sign the tenant's current log head now (on demand). */
int store_log_checkpoint(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t *seq_out);

/* --- the bucket as the source of truth (store/ship.c, store/rebuild.c) --
 *
 * With a backend that keeps blobs (s3), every catalog transaction that
 * appends to a tenant's log is followed by a log segment written to the
 * bucket (the new entries, the records they name, a snapshot of the
 * tenant's settings, holds and users), and every checkpoint by its blob;
 * docs/formats.md "Bucket layout".  A failure is logged and retried by
 * the next write or store_ship().
 */
/* Ship segments and checkpoints to be (s3) instead of the store's own
 * backend (migration from fs); NULL: none. */
void store_set_ship_backend(store_t *st, store_backend_t *be);
/* Ship what the bucket lacks now (tenant NULL: every tenant). */
int store_ship(store_t *st, const uint8_t *tenant);
/* The tenant's last log entry, the last one in the bucket, and the
 * segments written. */
int store_ship_status(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t *head, uint64_t *shipped, uint64_t *segments);

/*
 * Rebuild the catalog records of one tenant from the bucket alone (be's
 * blobs and objects, keysvc's keys): log entries (every hash and link
 * checked), object records, dedup entries, checkpoints (signatures
 * checked against the chain), settings, retention rules, holds and users.
 * The tenant must not be in this catalog (AR_EEXIST).  Reads nothing
 * outside the tenant's prefix.
 */
typedef struct store_rebuild_stats {
	uint64_t segments, entries, objects, checkpoints, bytes;
	uint64_t stored;               /* objects found in the bucket */
	uint64_t missing;              /* records whose object is absent */
	uint64_t orphans;              /* objects no record names */
	char     name[STORE_NAME_MAX]; /* the tenant's name */
} store_rebuild_stats_t;
typedef void (*store_rebuild_progress)(void *arg,
    const store_rebuild_stats_t *s);
int store_rebuild_tenant(store_t *st, store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], store_rebuild_progress progress,
    void *arg, store_rebuild_stats_t *stats);

/* --- retention (store/retention.c) -------------------------------------
 *
 * A tenant's policy: its default period (store_tenant_t.retention_days)
 * and rules by sender or recipient address ("a@b.example") or domain
 * ("@b.example").  A message's retain-until is fixed at ingest: received
 * + the longest period among the default and every rule matching its
 * From, To, Cc or envelope addresses.  Periods can be lengthened, never
 * shortened (AR_EPERM), and a stored object's retain-until can be
 * extended, never reduced (AR_EPERM).  Rules are stored sealed with the
 * tenant's meta key; every change is an admin log entry.
 */
#define STORE_RULES_MAX 64

typedef struct store_retention_rule {
	char     match[STORE_ADDR_MAX];      /* lower case */
	uint32_t days;
} store_retention_rule_t;

typedef struct store_retention {
	uint32_t default_days;
	size_t   n_rules;
	store_retention_rule_t rules[STORE_RULES_MAX];
} store_retention_t;

/* "addr@domain" or "@domain": 0 or AR_EINVAL. */
int store_retention_match_valid(const char *match);
int store_retention_get(store_t *st, const store_tenant_t *t,
    store_retention_t *out);
/* Raise the default period (AR_EPERM if days is shorter). */
int store_retention_set_default(store_t *st, const char *tenant,
    uint32_t days);
/* Add a rule, or lengthen an existing one (AR_EPERM if shorter). */
int store_retention_rule_add(store_t *st, const store_tenant_t *t,
    const char *match, uint32_t days);
/* Remove a rule: mail already stored keeps its retain-until; mail that
 * arrives afterwards no longer gets the rule's period.  AR_ENOENT. */
int store_retention_rule_remove(store_t *st, const store_tenant_t *t,
    const char *match);
/* Days the policy gives a message with this meta JSON (may be NULL). */
uint32_t store_retention_days_for(const store_retention_t *p,
    const char *meta);
/* Extend one object's retain-until in the catalog (the sealed header
 * keeps the date it was stored with: the later of the two applies).
 * AR_EPERM if until is earlier than the current date, AR_ENOENT. */
int store_object_extend_retention(store_t *st,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    int64_t until);
/* Apply the current policy to stored mail: every object whose policy
 * date is later than its retain-until is extended; none is reduced. */
int store_retention_apply(store_t *st, const store_tenant_t *t,
    uint64_t *extended);

/* --- legal holds (store/holds.c) ---------------------------------------
 *
 * A hold covers a message when every criterion it has matches: one of its
 * custodians (address or @domain) among the message's From/To/Cc/envelope
 * addresses, its message date (Date header, else received) within
 * [from, until] (0: open), and its query (evaluated by the caller through
 * the index).  Holds apply to stored and newly arriving mail alike (they
 * are evaluated when mail would be disposed of).  Stored sealed; create
 * and release are STORE_LOG_HOLD entries.
 */
#define STORE_HOLD_CUSTODIANS_MAX 32

typedef struct store_hold {
	uint32_t number;                 /* 1, 2, ... per tenant */
	char     name[64];
	char     description[512];
	size_t   n_custodians;
	char     custodians[STORE_HOLD_CUSTODIANS_MAX][STORE_ADDR_MAX];
	int64_t  from, until;            /* message date range; 0: open */
	char     query[1024];            /* "" for none */
	int64_t  created;
	char     created_by[64];
	int      released;
	int64_t  released_at;
	char     released_by[64];
	char     release_reason[512];
	char     client[64];             /* who asked from where (e.g. the
	                                    web client's address): put in the
	                                    log entry only, not the record */
} store_hold_t;

/* Create a hold (number and created are set).  AR_EEXIST when an active
 * hold has that name; AR_EINVAL without a scope or with a bad address. */
int store_hold_create(store_t *st, const store_tenant_t *t, store_hold_t *h);
/* The active hold of that name, else the latest released one. */
int store_hold_get(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *name, store_hold_t *out);
typedef int (*store_hold_cb)(void *arg, const store_hold_t *h);
int store_hold_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    store_hold_cb cb, void *arg);
/* Release (a logged act, with who and why).  AR_ENOENT, AR_EINVAL when
 * already released. */
int store_hold_release(store_t *st, const store_tenant_t *t,
    const char *name, const char *by, const char *reason);
/* The same, with the client address (may be NULL) in the log entry. */
int store_hold_release_from(store_t *st, const store_tenant_t *t,
    const char *name, const char *by, const char *client,
    const char *reason);
/* With a backend that enforces legal holds (STORE_BE_LOCK): set (on) the
 * storage's legal hold of every object h covers (its query counted as
 * matching), or clear it (on == 0) on those no other active hold covers.
 * Called by create and release; *changed (may be NULL) counts the
 * objects set or cleared.  0 without STORE_BE_LOCK. */
int store_hold_storage(store_t *st, const store_tenant_t *t,
    const store_hold_t *h, int on, uint64_t *changed);
/* Does active hold h cover object o (meta needed)?  query_match: 1 the
 * hold's query matches o, 0 it does not, -1 unknown (a hold with a query
 * then covers o).  1 or 0. */
int store_hold_covers(const store_hold_t *h, const store_object_t *o,
    int query_match);
/* Is o under any active hold (query_checked: the caller already found o
 * outside every hold's query)?  1, 0 or a status; hold_name (may be NULL)
 * receives one covering hold's name. */
int store_object_held(store_t *st, const store_object_t *o,
    int query_checked, char *hold_name, size_t len);

/* --- disposition (store/dispose.c) -------------------------------------
 *
 * Remove an object past its retain-until and under no hold: its catalog
 * record and dedup entry are deleted and a tombstone written (a
 * STORE_LOG_DISPOSE entry; its digest is the object's manifest digest and
 * its detail carries an Ed25519 signature by keysvc over
 * store_tombstone_msg()) in one transaction; then the file is deleted.
 * AR_ERETAINED before retain-until, AR_EHOLD under a hold, AR_ENOENT.
 * The index entry is the caller's (jobs/): the store knows no index.
 */
int store_object_dispose(store_t *st, const store_tenant_t *t,
    const uint8_t id[STORE_ID_LEN], int query_holds_checked,
    const char *reason, uint64_t *seq_out);
/* Delete the file of an object that has a tombstone (a disposition
 * interrupted after its transaction).  0 also when already gone. */
int store_object_dispose_file(store_t *st, const store_tenant_t *t,
    const uint8_t id[STORE_ID_LEN]);
/* The message a tombstone signature covers (out: >= 96 bytes). */
size_t store_tombstone_msg(const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], const uint8_t digest[STORE_HASH_LEN],
    int64_t time, unsigned char *out);

/* --- shredding (store/shred.c) ----------------------------------------- */

/* Delete every catalog record of a tenant's mail (objects, dedup,
 * receipts, retention rules, holds); the log and its checkpoints stay as
 * evidence.  Used after the tenant's keys were destroyed. */
int store_tenant_purge(store_t *st, const uint8_t tenant[STORE_TENANT_LEN]);
/* The tenant's last log entry: seq and hash (0 and zeros when empty). */
int store_log_head(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint64_t *seq, uint8_t hash[STORE_HASH_LEN]);

/* --- verify ---------------------------------------------------------- */

/*
 * Re-read every object of the tenant (or of all tenants when tenant is
 * NULL): signature, ciphertext hash, decrypted plaintext digest against
 * the catalog; walk the log chain and check every checkpoint signature;
 * cross-check catalog <-> log <-> store.  Each problem is reported through
 * cb (severity "error" or "warning", object id hex or "-", text).
 * Returns 0 when there were no errors, AR_ECORRUPT when there were, or
 * another status when verify itself could not run.
 */
typedef void (*store_verify_cb)(void *arg, const char *tenant_name,
    const char *severity, const char *object, const char *what);
typedef struct store_verify_stats {
	uint64_t tenants, objects, bytes, log_entries, checkpoints;
	uint64_t errors, warnings;
	uint64_t disposed;          /* tombstones (signature checked) */
} store_verify_stats_t;
int store_verify(store_t *st, const uint8_t *tenant, store_verify_cb cb,
    void *arg, store_verify_stats_t *stats);

/* --- stats ------------------------------------------------------------- */

typedef struct store_tenant_stats {
	uint64_t objects, plain_bytes, sealed_bytes, log_entries;
	uint64_t last_checkpoint_seq;
	int64_t  last_checkpoint_time;
} store_tenant_stats_t;
int store_tenant_stats(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    store_tenant_stats_t *out);
/* LMDB map size and the part in use, in bytes. */
int store_catalog_size(store_t *st, uint64_t *map_size, uint64_t *used);
/*
 * Unmap the catalog pages this process has read (madvise MADV_DONTNEED on
 * LMDB's read-only map): they stay in the kernel's page cache and are
 * mapped again when read, but stop counting in the process's resident
 * size, which would otherwise grow to the whole catalog after walks over
 * it (the indexer calls it after each batch).  Safe at any time, also
 * while other threads read or write.
 */
void store_catalog_trim(store_t *st);

/* ======================================================================
 * Console accounts (store/users.c)
 *
 * Users of the web console and API, per tenant, and operators (no tenant:
 * they manage tenants and keys and read no mail).  A tenant user's record
 * is sealed with the tenant's meta key (password hash and TOTP secret
 * included); an operator's record holds only its name, Argon2id hash and
 * counters, in clear.  User names: 1..63 of [a-z0-9._-], starting with a
 * letter or digit (store_tenant_name_valid).
 * ====================================================================== */

/* Roles are bits: a user may hold several (e.g. officer,auditor); an
 * operator holds STORE_ROLE_OPERATOR alone. */
enum store_role {
	STORE_ROLE_ADMIN    = 1 << 0,  /* users and policies of its tenant */
	STORE_ROLE_OFFICER  = 1 << 1,  /* search, read, export */
	STORE_ROLE_LEGAL    = 1 << 2,  /* holds (and search, read) */
	STORE_ROLE_AUDITOR  = 1 << 3,  /* the audit log */
	STORE_ROLE_OPERATOR = 1 << 4,  /* tenants and keys; no tenant */
	STORE_ROLE_RECIPIENT = 1 << 5, /* its own quarantined mail only (the
	                                  user's addresses) */
};
#define STORE_ROLES_ALL 0x3fu
#define STORE_USER_ADDRS_MAX 1024     /* comma-separated addresses */

#define STORE_TOTP_SECRET_LEN 20      /* RFC 6238 with HMAC-SHA-1 */

typedef struct store_user {
	uint8_t  tenant[STORE_TENANT_LEN];   /* all zero for an operator */
	char     name[STORE_NAME_MAX];
	uint32_t roles;                      /* enum store_role bits */
	int      disabled;
	int      totp_enabled;               /* sign-in needs a TOTP code */
	uint8_t  totp_secret[STORE_TOTP_SECRET_LEN];
	char     pwhash[STORE_PWHASH_MAX];   /* Argon2id string */
	int64_t  created;
	uint32_t failures;                   /* consecutive failed sign-ins */
	int64_t  last_failure;
	int64_t  locked_until;               /* 0: not locked */
	uint64_t last_totp_step;             /* a TOTP code is used once */
	char     addresses[STORE_USER_ADDRS_MAX]; /* the user's own mail
	                                        addresses, comma-separated,
	                                        lower case ("" none): what a
	                                        recipient role may see */
} store_user_t;
/* Normalise a comma-separated address list (trimmed, lower case, each
 * local@domain) into out; AR_EINVAL naming the bad entry in why. */
int store_user_addresses_norm(const char *in, char *out, size_t outlen,
    char *why, size_t whylen);
/* 0 when address (any case) is one of the user's addresses, else
 * AR_ENOENT. */
int store_user_has_address(const store_user_t *u, const char *address);

/* Roles as text, "officer,auditor" (names in bit order) into buf, and
 * back: a comma-separated list to bits, AR_EINVAL for an unknown name, an
 * empty list, or operator mixed with another role. */
const char *store_roles_format(uint32_t roles, char *buf, size_t len);
int store_roles_parse(const char *text, uint32_t *roles);
/* Wipe the secrets of *u (sodium_memzero). */
void store_user_wipe(store_user_t *u);
/*
 * Write a user.  create != 0: AR_EEXIST if the name is taken in that
 * tenant.  create == 0: AR_ENOENT if it is not.  An operator (roles
 * STORE_ROLE_OPERATOR) must have a zero tenant, and a tenant user a
 * tenant that exists (AR_EINVAL / AR_ENOENT).
 */
int store_user_put(store_t *st, const store_user_t *u, int create);
/* tenant NULL: an operator.  AR_ENOENT. */
int store_user_get(store_t *st, const uint8_t *tenant, const char *name,
    store_user_t *out);
/* Every user of a tenant (NULL: every operator) in name order; the record
 * passed to cb is valid only during the call. */
typedef int (*store_user_cb)(void *arg, const store_user_t *u);
int store_user_walk(store_t *st, const uint8_t *tenant, store_user_cb cb,
    void *arg);

#endif /* STORE_H */
