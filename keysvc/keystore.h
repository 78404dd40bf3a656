/*
 * keystore.h - archive-keysvc's data directory: the KEK, the signing key
 * and the per-tenant data keys wrapped by the KEK (private to keysvc/).
 *
 * Layout of DIR (every file 0600, written temp -> fsync -> rename -> fsync
 * dir with ar_file_write_atomic):
 *   kek                      "AKEK" fmt mode, then the key (mode 0) or
 *                            Argon2id salt/limits + XChaCha20-Poly1305
 *                            sealed key (mode 1)
 *   signing.key              Ed25519 seed sealed by the KEK
 *   signing.pub              public key, hex (not secret)
 *   tenants/<hex>/v<N>.key   data key version N sealed by the KEK,
 *                            associated data = magic|fmt|tenant|N
 *   tenants/<hex>/destroyed  crypto-shredding marker (last version, time)
 *   snapshot.lock            flock: tenant creation, rotation and
 *                            destruction hold it exclusively, a backup
 *                            holds it shared while it reads (backup.h)
 *
 * Secrets held by an open keystore live in sodium_malloc'd (locked,
 * guarded) memory and are wiped by keystore_close().
 */
#ifndef KEYSVC_KEYSTORE_H
#define KEYSVC_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "keysvc/keysvc.h"

typedef struct keystore keystore_t;

/* Argon2id cost for a sealed KEK. */
enum keystore_cost {
	KEYSTORE_COST_INTERACTIVE,
	KEYSTORE_COST_MODERATE,
	KEYSTORE_COST_SENSITIVE,
};

/*
 * State of DIR: 0 initialised (kek present), AR_ENOENT when DIR holds no
 * key material at all (safe to initialise), AR_ECORRUPT when the kek is
 * missing but other key files exist (never initialise over them).
 */
int keystore_probe(const char *dir);

/*
 * Create DIR (0700), a new KEK (sealed with pass when pass != NULL), a new
 * signing key.  AR_EEXIST when DIR already has a KEK.  Messages go to
 * err (never any secret).
 */
int keystore_init(const char *dir, const char *pass, size_t passlen,
    enum keystore_cost cost, char *err, size_t errlen);

/*
 * Load the KEK (unsealing it with pass when it is sealed) and the signing
 * key.  AR_EPERM: sealed and no pass; AR_EKEY: wrong pass;
 * AR_ENOENT: not initialised; AR_ECORRUPT: damaged files.
 */
int keystore_open(keystore_t **out, const char *dir, const char *pass,
    size_t passlen, char *err, size_t errlen);
void keystore_close(keystore_t *ks);

/* 1 when the KEK file is sealed with a passphrase. */
int keystore_sealed(const keystore_t *ks);

void keystore_public_key(const keystore_t *ks, uint8_t pk[KEYSVC_PK_LEN]);
int keystore_sign(keystore_t *ks, const void *msg, size_t len,
    uint8_t sig[KEYSVC_SIG_LEN]);

int keystore_tenant_create(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN]);
int keystore_tenant_rotate(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN], uint32_t *new_version);
int keystore_tenant_destroy(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN]);
int keystore_tenant_info(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN], uint32_t *current,
    int *destroyed);
/* key = BLAKE2b-256 keyed with the data key over a domain label, tenant,
 * version and context.  ctx must satisfy ksp_context_ok(). */
int keystore_derive(keystore_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN],
    uint32_t version, const unsigned char *ctx, size_t ctxlen,
    uint8_t key[KEYSVC_KEY_LEN]);

/* --- for backup and restore (backup.c) ------------------------------- */

/* The KEK of an open keystore, in its locked memory; valid until
 * keystore_close().  Never copied outside sodium_malloc'd memory. */
const uint8_t *keystore_kek(const keystore_t *ks);

/* Write DIR/kek holding kek, sealed with pass when pass != NULL. */
int keystore_kek_write(const char *dir, const uint8_t kek[KEYSVC_KEY_LEN],
    const char *pass, size_t passlen, enum keystore_cost cost);

/* 0 when blob (a v<N>.key file) is the tenant's data key `version`
 * sealed by this keystore's KEK; AR_ECORRUPT or AR_EVERSION otherwise.
 * The unwrapped key is wiped at once. */
int keystore_wrapped_check(const keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN], uint32_t version,
    const uint8_t *blob, size_t len);

/*
 * DIR/snapshot.lock: taken shared by a backup while it reads the key
 * files, exclusively by every change of tenants/ (create, rotate,
 * destroy), so a backup is a point-in-time copy even while the daemon
 * runs.  Waits up to timeout_ms; AR_EAGAIN when still held.  *fd is
 * released with keystore_snapshot_unlock().
 */
int keystore_snapshot_lock(const char *dir, int exclusive, int timeout_ms,
    int *fd);
void keystore_snapshot_unlock(int fd);

#endif /* KEYSVC_KEYSTORE_H */
