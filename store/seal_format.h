/*
 * seal_format.h - private to store/: the byte layout of a sealed object
 * (docs/formats.md, "Sealed object"), shared by seal.c and the backends
 * (which read retain-until from the header).  All integers big-endian.
 *
 *   header   SEAL_HEADER_LEN bytes
 *   chunks   chunk i = AES-256-GCM(plaintext i) || tag (16 bytes)
 *   trailer  manifest (SEAL_MANIFEST_LEN) || Ed25519 signature (64)
 */
#ifndef STORE_SEAL_FORMAT_H
#define STORE_SEAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "store/store.h"

#define SEAL_MAGIC          "ARCHSEAL"
#define SEAL_MAGIC_LEN      8
#define SEAL_VERSION        1
#define SEAL_HEADER_LEN     96
#define SEAL_PREFIX_LEN     7
#define SEAL_NONCE_LEN      12
#define SEAL_TAG_LEN        16
#define SEAL_KEYCHECK_LEN   16

/* header offsets */
#define SEAL_H_MAGIC        0    /* 8  "ARCHSEAL" */
#define SEAL_H_VERSION      8    /* u16 format version (1) */
#define SEAL_H_HLEN         10   /* u16 header length (96) */
#define SEAL_H_CHUNK        12   /* u32 chunk size */
#define SEAL_H_TENANT       16   /* 16 tenant id */
#define SEAL_H_KEYVER       32   /* u32 key version */
#define SEAL_H_ID           36   /* 16 object id */
#define SEAL_H_PREFIX       52   /* 7  random nonce prefix */
#define SEAL_H_RSVD1        59   /* u8 zero */
#define SEAL_H_RECEIVED     60   /* i64 received, seconds */
#define SEAL_H_RETAIN       68   /* i64 retain-until, seconds */
#define SEAL_H_KEYCHECK     76   /* 16 key-check value */
#define SEAL_H_RSVD2        92   /* u32 zero */

#define SEAL_MANIFEST_MAGIC     "ARMF"
#define SEAL_MANIFEST_VERSION   1
#define SEAL_MANIFEST_LEN       184
#define SEAL_TRAILER_LEN        (SEAL_MANIFEST_LEN + KEYSVC_SIG_LEN)

/* manifest offsets */
#define SEAL_M_MAGIC        0    /* 4  "ARMF" */
#define SEAL_M_VERSION      4    /* u16 manifest version (1) */
#define SEAL_M_LEN          6    /* u16 manifest length (184) */
#define SEAL_M_TENANT       8    /* 16 */
#define SEAL_M_ID           24   /* 16 */
#define SEAL_M_KEYVER       40   /* u32 */
#define SEAL_M_CHUNK        44   /* u32 chunk size */
#define SEAL_M_NCHUNKS      48   /* u64 chunk count */
#define SEAL_M_PLAIN        56   /* u64 plaintext size */
#define SEAL_M_SEALED       64   /* u64 size of the whole file */
#define SEAL_M_RECEIVED     72   /* i64 */
#define SEAL_M_RETAIN       80   /* i64 */
#define SEAL_M_HEADER_SHA   88   /* 32 SHA-256(header) */
#define SEAL_M_SEALED_SHA   120  /* 32 SHA-256(header || chunks) */
#define SEAL_M_PLAIN_DIGEST 152  /* 32 keyed digest of SHA-256(plaintext) */

/* Domain-separation strings (without their NUL). */
#define SEAL_CTX_OBJECT     "archived object v1"
#define SEAL_CTX_KEYCHECK   "archived key check v1"
#define SEAL_CTX_PLAIN      "archived plaintext v1"
#define SEAL_CTX_MANIFEST   "archived manifest v1"

typedef struct seal_header {
	uint16_t version;
	uint32_t chunk_size;
	uint8_t  tenant[STORE_TENANT_LEN];
	uint32_t key_version;
	uint8_t  id[STORE_ID_LEN];
	uint8_t  prefix[SEAL_PREFIX_LEN];
	int64_t  received;
	int64_t  retain_until;
	uint8_t  keycheck[SEAL_KEYCHECK_LEN];
} seal_header_t;

/* Encode h into out (SEAL_HEADER_LEN bytes). */
void seal_header_encode(const seal_header_t *h,
    unsigned char out[SEAL_HEADER_LEN]);

/*
 * Parse a header from the first len bytes of a sealed object.
 * AR_ETRUNC (len too short), AR_ECORRUPT (bad magic, length, chunk size
 * or reserved bytes), AR_EVERSION (unknown format version).  err (may be
 * NULL) receives a one-line reason.
 */
int seal_header_parse(const unsigned char *buf, size_t len, seal_header_t *h,
    char *err, size_t errlen);

/* --- manifest (seal_format.c) --- */

typedef struct seal_manifest {
	uint8_t  tenant[STORE_TENANT_LEN];
	uint8_t  id[STORE_ID_LEN];
	uint32_t key_version, chunk_size;
	uint64_t nchunks, plain_size, sealed_size;
	int64_t  received, retain_until;
	uint8_t  header_sha[32], sealed_sha[32], plain_digest[32];
} seal_manifest_t;

void seal_manifest_encode(const seal_manifest_t *m,
    unsigned char out[SEAL_MANIFEST_LEN]);
/* Fields only; the caller checks magic, version and signature. */
void seal_manifest_decode(const unsigned char *in, seal_manifest_t *m);
/* The signed message "archived manifest v1" || manifest into out;
 * returns its length. */
size_t seal_manifest_msg(const unsigned char *manifest,
    unsigned char out[sizeof SEAL_CTX_MANIFEST + SEAL_MANIFEST_LEN]);

/* --- geometry --- */

/* Chunks of a plaintext of plain bytes: an empty one is one empty chunk. */
uint64_t seal_count_chunks(uint64_t plain, uint32_t cs);
/* Bytes of the whole sealed file. */
uint64_t seal_sealed_size(uint64_t plain, uint64_t nchunks);

/* --- keys (caller wipes key with sodium_memzero) --- */

/* BLAKE2b-256(key = tenant "object" subkey, SEAL_CTX_OBJECT || id).
 * The subkey is wiped before returning.  keysvc_derive() codes pass. */
int seal_object_key(keysvc_t *ks, const uint8_t *tenant, uint32_t version,
    const uint8_t *id, uint8_t key[32]);
/* BLAKE2b-128(key = object key, SEAL_CTX_KEYCHECK). */
int seal_key_check(const uint8_t key[32], uint8_t out[SEAL_KEYCHECK_LEN]);
/* BLAKE2b-256(key = object key, SEAL_CTX_PLAIN || SHA-256(plaintext)). */
int seal_plain_digest(const uint8_t key[32], const uint8_t sha[32],
    uint8_t out[32]);

/* --- SHA-256 and AES-256-GCM (OpenSSL EVP); 0 or AR_* --- */

int seal_sha_new(EVP_MD_CTX **c);
int seal_sha_update(EVP_MD_CTX *c, const void *p, size_t n);
int seal_sha_final(EVP_MD_CTX *c, uint8_t out[32]);
int seal_sha256(const void *p, size_t n, uint8_t out[32]);
/* enc = 1 to seal, 0 to open; the context keeps the key. */
int seal_gcm_new(EVP_CIPHER_CTX **c, const uint8_t key[32], int enc);
/* nonce = prefix (7) || chunk index (u32 BE) || last-chunk flag (1) */
void seal_chunk_nonce(const uint8_t *prefix, uint64_t idx, int last,
    uint8_t nonce[SEAL_NONCE_LEN]);
/* in (len) -> out (len + tag), AAD = aad (32 bytes). */
int seal_gcm_seal(EVP_CIPHER_CTX *c, const uint8_t *nonce,
    const uint8_t aad[32], const uint8_t *in, size_t len, uint8_t *out);
/* in (len + tag) -> out (len); AR_ECORRUPT (out wiped) unless the tag
 * verifies. */
int seal_gcm_open(EVP_CIPHER_CTX *c, const uint8_t *nonce,
    const uint8_t aad[32], const uint8_t *in, size_t len, uint8_t *out);

#endif /* STORE_SEAL_FORMAT_H */
