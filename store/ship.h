/*
 * ship.h - private to store/: the bucket's log segments and checkpoints
 * (written by ship.c, read by segment.c for rebuild.c and verify).
 * Format: docs/formats.md "Bucket layout".
 */
#ifndef STORE_SHIP_H
#define STORE_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define SEG_MAGIC     "ARLOGSEG"
#define SEG_VERSION   1
/* magic, version, reserved, tenant, number, first, last, time */
#define SEG_HEAD_LEN  (8 + 2 + 2 + STORE_TENANT_LEN + 8 + 8 + 8 + 8)
#define SEG_SIG_LABEL "archived log segment v1"

enum seg_rec_type {
	SEG_REC_OBJECT    = 1,   /* key: object id; value: object record */
	SEG_REC_TENANT    = 2,   /* value: u32 key version || sealed JSON */
	SEG_REC_RETENTION = 3,   /* value: the retention record */
	SEG_REC_HOLD      = 4,   /* key: u32 number; value: hold record */
	SEG_REC_USER      = 5,   /* key: user name; value: user record */
};

#define CKPT_MAGIC    "ARCKPT01"
/* magic, tenant, seq, then the catalog's checkpoint value (time, head,
 * signature) */
#define CKPT_BLOB_LEN (8 + STORE_TENANT_LEN + 8 + 8 + 32 + 64)

typedef struct seg_entry {
	uint64_t seq;
	const unsigned char *val;      /* the log value, as in the catalog */
	size_t len;
} seg_entry_t;

typedef struct seg_rec {
	uint8_t type;
	const unsigned char *key, *val;
	size_t klen, vlen;
} seg_rec_t;

typedef struct segment {
	uint8_t tenant[STORE_TENANT_LEN];
	uint64_t number, first, last;
	int64_t time;
	size_t nentries, nrecs;
	seg_entry_t *entries;          /* point into the buffer decoded */
	seg_rec_t *recs;
} segment_t;

/* Decode and authenticate (keysvc's public key) a segment: 0,
 * AR_ECORRUPT / AR_ETRUNC / AR_ESIG with why filled.  The entries and
 * records point into buf, which must outlive *out. */
int segment_decode(const unsigned char *buf, size_t len,
    const uint8_t pk[KEYSVC_PK_LEN], segment_t *out, char *why,
    size_t whylen);
void segment_free(segment_t *s);

#endif
