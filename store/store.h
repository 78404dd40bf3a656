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
 * AR_ERETAINED whoever asks.  The fs backend is the embedded default; an
 * S3 Object Lock backend implements the same operations later.
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

/* (declared below by the catalog section) */

#endif /* STORE_H */
