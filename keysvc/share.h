/*
 * share.h - M-of-N Shamir shares of a 32-byte backup key, with libgfshare
 * (private to keysvc/).
 *
 * Each share carries its label: the backup it belongs to (a random 16-byte
 * id), its index (1..n), the threshold m, the count n, the backup's time
 * and a check value over all of them, so a mistyped, altered, misplaced or
 * foreign share is refused with a message that says which and why.  The
 * check value catches mistakes; a deliberately forged share (check value
 * recomputed) is caught by the share commitments that the backup file
 * carries (share_commitment(), backup.c).
 *
 * Text form (one share a file, printable, typed back by hand if need be):
 *
 *   archive-keysvc backup share
 *   backup:  <32 hex>
 *   created: <YYYY-MM-DDTHH:MM:SSZ>
 *   share:   <index>
 *   shares:  <n>
 *   needed:  <m>
 *   data:    <64 hex, spaces allowed>
 *   check:   <16 hex>
 *
 * Secret bytes (the key, share data) live in memory the caller allocates
 * with sodium_malloc; this module wipes its own copies (libgfshare's
 * buffers are overwritten with random bytes by gfshare_ctx_free).
 */
#ifndef KEYSVC_SHARE_H
#define KEYSVC_SHARE_H

#include <stddef.h>
#include <stdint.h>

#define SHARE_SECRET_LEN 32
#define SHARE_ID_LEN     16
#define SHARE_MIN_M      2
#define SHARE_MAX_N      255
#define SHARE_TEXT_MAX   512    /* longest text form share_format writes */

struct share {
	uint8_t backup_id[SHARE_ID_LEN];
	int64_t created;
	unsigned index;         /* 1..n */
	unsigned m, n;
	uint8_t data[SHARE_SECRET_LEN];
};

/* Split secret into n shares (out[0..n-1], index 1..n), any m of which
 * restore it.  2 <= m <= n <= 255, else AR_EINVAL. */
int share_split(const uint8_t secret[SHARE_SECRET_LEN],
    const uint8_t backup_id[SHARE_ID_LEN], int64_t created, unsigned m,
    unsigned n, struct share *out);

/* Rebuild the secret from k shares.  Refused (AR_EINVAL, message in err)
 * when they are of different backups or thresholds, an index repeats or
 * is out of range, or fewer than m are given.  Any m of them suffice. */
int share_combine(const struct share *s, size_t k,
    uint8_t secret[SHARE_SECRET_LEN], char *err, size_t errlen);

/* BLAKE2b-256 over the label and the data: the backup file stores one per
 * share, so a share whose data was changed is refused by name. */
void share_commitment(const struct share *s, uint8_t out[32]);

/* Text form into buf (at least SHARE_TEXT_MAX bytes); its length, or
 * AR_ETOOBIG.  The caller wipes buf (it holds share data). */
int share_format(const struct share *s, char *buf, size_t len);

/* Parse the text form (len bytes, need not be NUL-terminated).
 * AR_EINVAL for a missing or malformed field, AR_ECORRUPT when the check
 * value does not match (mistyped or altered); err says which. */
int share_parse(const char *text, size_t len, struct share *out, char *err,
    size_t errlen);

#endif /* KEYSVC_SHARE_H */
