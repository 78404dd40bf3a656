/*
 * backup.h - backup and restore of archive-keysvc's key store (private to
 * keysvc/; the command line is in backup_cli.c, the format and the design
 * in docs/keysvc.md "Backup and restore").
 *
 * A backup is one file holding, encrypted with XChaCha20-Poly1305 under a
 * random 32-byte backup key (BK): the KEK, the signing key file (sealed by
 * the KEK), every tenant's wrapped data keys with their versions, and the
 * destroyed markers.  Its header (authenticated, never secret) names the
 * backup id, time, signing public key and how BK is kept:
 *   - sealed under a passphrase (Argon2id), and/or
 *   - split M-of-N (share.h), each share a text file for one person; the
 *     header keeps a commitment per share, so an altered share is refused.
 * No key byte is ever written in plaintext: not in the backup file, not
 * in a share (fewer than M shares tell nothing about BK).
 *
 * Secrets (KEK, BK, passphrase keys, shares, the decrypted payload) live
 * in sodium_malloc'd memory and are wiped after use.
 */
#ifndef KEYSVC_BACKUP_H
#define KEYSVC_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "keysvc/keystore.h"
#include "keysvc/share.h"

#define BACKUP_ID_LEN SHARE_ID_LEN

struct backup_opts {
	const char *dir;               /* the key store */
	const char *kek_pass;          /* to unseal its KEK, or NULL */
	size_t kek_passlen;
	const char *out;               /* the backup file (must not exist) */
	const char *backup_pass;       /* seal BK with it, or NULL */
	size_t backup_passlen;
	enum keystore_cost cost;       /* Argon2id cost for backup_pass */
	unsigned m, n;                 /* split BK m-of-n; n == 0: no shares */
	const char *share_dir;         /* where the n share files go */
};

struct backup_summary {
	uint8_t id[BACKUP_ID_LEN];
	int64_t created;
	uint8_t pk[KEYSVC_PK_LEN];
	int has_pass;
	unsigned m, n;
	unsigned tenants;              /* tenants with keys */
	unsigned keys;                 /* wrapped key versions */
	unsigned destroyed;            /* tenants with a destroyed marker */
	int kek_sealed;                /* the source kek file was sealed */
};

/*
 * Make a backup of o->dir.  Needs o->backup_pass or o->n > 0 (or both).
 * Holds the snapshot lock (shared) while it reads the key files, so it
 * runs while the daemon serves; every wrapped key is checked to open
 * under the KEK before it is written.  Share files are
 * share_dir/<id8>-share-<i>-of-<n>.txt (backup_share_path()).  Nothing is
 * left behind on failure.
 */
int backup_create(const struct backup_opts *o, struct backup_summary *sum,
    char *err, size_t errlen);

/* Path of share i of n of backup id in dir. */
int backup_share_path(char *buf, size_t len, const char *dir,
    const uint8_t id[BACKUP_ID_LEN], unsigned i, unsigned n);

/* What a backup file's header says; needs no secret.  Counts stay 0. */
int backup_info(const char *path, struct backup_summary *sum, char *err,
    size_t errlen);

struct restore_opts {
	const char *dir;               /* the key store to create */
	const char *in;                /* the backup file */
	const char *backup_pass;       /* open BK with it ... */
	size_t backup_passlen;
	const char *const *share_files;/* ... or with these shares */
	size_t nshares;
	const char *kek_pass;          /* seal the restored KEK with it */
	size_t kek_passlen;
	enum keystore_cost cost;
	int unsealed;                  /* allow an unsealed kek when the
	                                  backed-up one was sealed */
	int shred_list;                /* a list was given (may be empty) */
	const uint8_t (*shredded)[KEYSVC_TENANT_LEN]; /* stay destroyed */
	size_t nshredded;
	int no_shred_list;             /* no list given, on purpose: the
	                                  caller warns about sum->alive */
	int force;                     /* replace a key store in dir */
	const uint8_t *expect_pk;      /* NULL or the public key to match */
};

struct restore_summary {
	struct backup_summary backup;  /* id, created, pk, counts of it */
	unsigned tenants;              /* tenants restored with their keys */
	unsigned keys;                 /* key versions restored */
	unsigned kept_destroyed;       /* destroyed in the backup already */
	unsigned shredded_now;         /* keys in the backup, not restored:
	                                  the tenant was shredded since */
	unsigned marked;               /* markers for listed tenants the
	                                  backup did not know */
	char replaced[4096];           /* where the replaced store went */
	/* tenants restored alive with no shred list (no_shred_list) */
	uint8_t (*alive)[KEYSVC_TENANT_LEN];
	size_t nalive;
};

/*
 * Restore o->in into o->dir: refused while archive-keysvc runs on dir,
 * and over an existing key store unless o->force (then it is moved to
 * dir.replaced-<time>, never deleted).  Tenants listed in o->shredded, or
 * destroyed in the store being replaced, get a destroyed marker and no
 * key.  The new store is built in a sibling directory, opened and checked
 * key by key with the keystore code, then swapped in atomically.
 * sum->alive is malloc'd; free it with restore_summary_free().
 */
int restore_run(const struct restore_opts *o, struct restore_summary *sum,
    char *err, size_t errlen);
void restore_summary_free(struct restore_summary *sum);

/* Read a shred list: one tenant id (32 hex) a line, optionally followed
 * by blanks and anything; '#' comments and blank lines skipped.  *ids is
 * malloc'd.  AR_EINVAL names the file and line. */
int backup_read_shred_list(const char *path,
    uint8_t (**ids)[KEYSVC_TENANT_LEN], size_t *n, char *err, size_t errlen);

#endif /* KEYSVC_BACKUP_H */
