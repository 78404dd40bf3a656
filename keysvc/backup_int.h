/*
 * backup_int.h - the backup file format shared by backup.c and restore.c
 * (private to those two files; the format is described in backup.c).
 */
#ifndef KEYSVC_BACKUP_INT_H
#define KEYSVC_BACKUP_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "keysvc/backup.h"

#define BK_MAGIC     "AKBK"
#define BP_MAGIC     "AKBP"
#define FMT_V1       1
#define FLAG_PASS    1
#define FLAG_SHARES  2
#define KEY_LEN      32
#define NONCE_LEN    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN      crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SALT_LEN     crypto_pwhash_SALTBYTES
#define HDR_FIXED    (4 + 1 + 1 + BACKUP_ID_LEN + 8 + KEYSVC_PK_LEN + 1 + 1)
#define SLOT_AAD     (SALT_LEN + 8 + 8 + 1)
#define SLOT_LEN     (SLOT_AAD + NONCE_LEN + KEY_LEN + TAG_LEN)
#define BLOB_MAX     256           /* largest key file taken */
#define FILE_MAX     (256u << 20)  /* largest backup file read */
#define SNAP_WAIT_MS 30000

struct key_rec {
	uint32_t version;
	uint16_t len;
	uint8_t blob[BLOB_MAX];
};

struct tenant_rec {
	uint8_t id[KEYSVC_TENANT_LEN];
	int destroyed;
	uint32_t mver;
	int64_t mtime;
	struct key_rec *keys;
	size_t nkeys, cap;
};

struct snap {
	struct tenant_rec *t;
	size_t n, cap;
	uint8_t sig[BLOB_MAX];
	size_t siglen;
	int kek_sealed;
};

struct header {
	uint8_t flags;
	uint8_t id[BACKUP_ID_LEN];
	int64_t created;
	uint8_t pk[KEYSVC_PK_LEN];
	unsigned m, n;
	const uint8_t *commit;         /* n x 32, inside the file buffer */
	const uint8_t *slot;           /* SLOT_LEN, or NULL */
	size_t slot_off;               /* offset of the slot in the file */
	uint32_t ctlen;
	size_t len;                    /* header bytes (the AD) */
};

void bkf_snap_free(struct snap *s);

/* Parse a decrypted payload: the KEK into kek (KEY_LEN bytes of locked
 * memory), the rest into s.  AR_ECORRUPT / AR_EVERSION. */
int bkf_payload_parse(const uint8_t *p, size_t len, struct snap *s,
    uint8_t *kek);

/* Parse and bounds-check a backup file's header (b, len: the whole file). */
int bkf_header_parse(const uint8_t *b, size_t len, struct header *h,
    const char *path, char *err, size_t errlen);

/* Open the passphrase slot: BK into bk (KEY_LEN bytes of locked memory).
 * AR_EKEY for a wrong passphrase. */
int bkf_slot_open(const uint8_t *hdr, const struct header *h, const char *pass,
    size_t passlen, uint8_t *bk, char *err, size_t errlen);

#endif /* KEYSVC_BACKUP_INT_H */
