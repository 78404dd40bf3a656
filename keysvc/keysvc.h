/*
 * keysvc.h - client of archive-keysvc, the key service.
 *
 * archive-keysvc holds the master key (KEK) and the Ed25519 signing key in
 * its own data directory and never sees mail.  Per-tenant data keys exist
 * on its disk only wrapped by the KEK.  Callers never receive a data key:
 * they receive subkeys derived from it for one purpose ("object", "meta",
 * "dedup", "index", "spool" ...), so a leaked subkey exposes one use only.
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h).  When the
 * service cannot be reached, or does not answer within the handle's
 * timeout, calls return AR_EKEYSVC ("key service unavailable"), a temporary
 * error; the handle reconnects on the next call.  Calls never hang longer
 * than the timeout and never crash on a dead peer (SIGPIPE is not raised).
 *
 * A handle may be shared between threads: requests are serialised inside.
 */
#ifndef KEYSVC_H
#define KEYSVC_H

#include <stddef.h>
#include <stdint.h>

#define KEYSVC_TENANT_LEN  16   /* tenant uuid, random, never reused */
#define KEYSVC_KEY_LEN     32
#define KEYSVC_SIG_LEN     64   /* Ed25519 detached signature */
#define KEYSVC_PK_LEN      32   /* Ed25519 public key */
#define KEYSVC_CONTEXT_MAX 32   /* longest subkey context string */
#define KEYSVC_SIGN_MAX    (1u << 20)  /* longest message sign() takes */

typedef struct keysvc keysvc_t;

/*
 * Make a handle for the service listening on socket_path.  Nothing is
 * connected until the first request.  timeout_ms bounds connect, send and
 * receive of each request (0 means 5000).
 */
int keysvc_open(keysvc_t **out, const char *socket_path, int timeout_ms);
/* Close the connection, wipe cached keys (sodium_memzero) and free. */
void keysvc_close(keysvc_t *ks);
/* Last error message of this handle; owned by the handle, valid until the
 * next call on it. */
const char *keysvc_errmsg(const keysvc_t *ks);

/* Round trip with no effect: 0 when the service answers. */
int keysvc_ping(keysvc_t *ks);

/* Create version 1 of a tenant's data key.  AR_EEXIST if it has one. */
int keysvc_tenant_create(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN]);
/* Make a new current version; old versions keep deriving (decrypting). */
int keysvc_tenant_rotate(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN],
    uint32_t *new_version);
/* Destroy every version (crypto-shredding).  Irreversible.  Afterwards
 * derive() answers AR_ESHREDDED for this tenant. */
int keysvc_tenant_destroy(keysvc_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN]);
/* Wipe this handle's cached subkeys of a tenant now (no request).  A
 * process that learns a tenant was shredded by another process calls it
 * so nothing derived stays in its memory until the cache expires. */
void keysvc_cache_purge(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN]);

/* Current key version, and whether the tenant's keys were destroyed.
 * AR_ENOENT if the tenant has no key. */
int keysvc_tenant_info(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN],
    uint32_t *current_version, int *destroyed);

/*
 * Subkey for one purpose: KDF(data key of tenant at version, context).
 * context is a NUL-terminated string of 1..KEYSVC_CONTEXT_MAX bytes.
 * Results are cached in the handle in locked memory (sodium_mlock).
 * AR_ENOENT (no such tenant or version), AR_ESHREDDED, AR_EKEYSVC.
 */
int keysvc_derive(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN],
    uint32_t version, const char *context, uint8_t key[KEYSVC_KEY_LEN]);

/* Ed25519 signature of msg (at most KEYSVC_SIGN_MAX bytes) with the
 * service's signing key. */
int keysvc_sign(keysvc_t *ks, const void *msg, size_t len,
    uint8_t sig[KEYSVC_SIG_LEN]);
/* Signatures of n messages, into sigs (n x KEYSVC_SIG_LEN), in as few
 * requests as the protocol allows (KSP_SIGN_MANY); the first failure. */
int keysvc_sign_many(keysvc_t *ks, size_t n, const void *const *msg,
    const size_t *len, uint8_t *sigs);
/* The signing key's public half (cached after the first call). */
int keysvc_public_key(keysvc_t *ks, uint8_t pk[KEYSVC_PK_LEN]);

/* Local check of a signature; needs no service.  0 or AR_ESIG.  A check
 * that passed is remembered for the process's life (keysvc/verified.c):
 * the same key, message and signature pass again without the curve
 * arithmetic; a failure is never remembered. */
int keysvc_verify(const uint8_t pk[KEYSVC_PK_LEN], const void *msg,
    size_t len, const uint8_t sig[KEYSVC_SIG_LEN]);
/* How many keysvc_verify calls were answered from what was remembered. */
uint64_t keysvc_verify_hits(void);

#endif /* KEYSVC_H */
