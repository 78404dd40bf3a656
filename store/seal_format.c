/*
 * seal_format.c - sealed object encoding and primitives: header and
 * manifest codecs, key derivation, SHA-256 and AES-256-GCM helpers
 * (layout in seal_format.h and docs/formats.md).
 */
#include "store/seal_format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "ar.h"

/* --- header --------------------------------------------------------------- */

void seal_header_encode(const seal_header_t *h,
    unsigned char out[SEAL_HEADER_LEN])
{
	memset(out, 0, SEAL_HEADER_LEN);
	memcpy(out + SEAL_H_MAGIC, SEAL_MAGIC, SEAL_MAGIC_LEN);
	ar_put_u16(out + SEAL_H_VERSION, SEAL_VERSION);
	ar_put_u16(out + SEAL_H_HLEN, SEAL_HEADER_LEN);
	ar_put_u32(out + SEAL_H_CHUNK, h->chunk_size);
	memcpy(out + SEAL_H_TENANT, h->tenant, STORE_TENANT_LEN);
	ar_put_u32(out + SEAL_H_KEYVER, h->key_version);
	memcpy(out + SEAL_H_ID, h->id, STORE_ID_LEN);
	memcpy(out + SEAL_H_PREFIX, h->prefix, SEAL_PREFIX_LEN);
	ar_put_u64(out + SEAL_H_RECEIVED, (uint64_t)h->received);
	ar_put_u64(out + SEAL_H_RETAIN, (uint64_t)h->retain_until);
	memcpy(out + SEAL_H_KEYCHECK, h->keycheck, SEAL_KEYCHECK_LEN);
}

int seal_header_parse(const unsigned char *buf, size_t len, seal_header_t *h,
    char *err, size_t errlen)
{
	char dummy[1];

	if (!err) {
		err = dummy;
		errlen = sizeof dummy;
	}
	if (len < SEAL_HEADER_LEN) {
		snprintf(err, errlen, "header truncated (%zu of %d bytes)",
		    len, SEAL_HEADER_LEN);
		return AR_ETRUNC;
	}
	if (memcmp(buf + SEAL_H_MAGIC, SEAL_MAGIC, SEAL_MAGIC_LEN) != 0) {
		snprintf(err, errlen, "not a sealed object (bad magic)");
		return AR_ECORRUPT;
	}
	h->version = ar_get_u16(buf + SEAL_H_VERSION);
	if (h->version != SEAL_VERSION) {
		snprintf(err, errlen, "unsupported format version %u",
		    h->version);
		return AR_EVERSION;
	}
	if (ar_get_u16(buf + SEAL_H_HLEN) != SEAL_HEADER_LEN) {
		snprintf(err, errlen, "bad header length %u",
		    ar_get_u16(buf + SEAL_H_HLEN));
		return AR_ECORRUPT;
	}
	h->chunk_size = ar_get_u32(buf + SEAL_H_CHUNK);
	if (h->chunk_size < STORE_CHUNK_MIN || h->chunk_size > STORE_CHUNK_MAX) {
		snprintf(err, errlen, "bad chunk size %u", h->chunk_size);
		return AR_ECORRUPT;
	}
	if (buf[SEAL_H_RSVD1] != 0 || ar_get_u32(buf + SEAL_H_RSVD2) != 0) {
		snprintf(err, errlen, "reserved header bytes are not zero");
		return AR_ECORRUPT;
	}
	memcpy(h->tenant, buf + SEAL_H_TENANT, STORE_TENANT_LEN);
	h->key_version = ar_get_u32(buf + SEAL_H_KEYVER);
	memcpy(h->id, buf + SEAL_H_ID, STORE_ID_LEN);
	memcpy(h->prefix, buf + SEAL_H_PREFIX, SEAL_PREFIX_LEN);
	h->received = (int64_t)ar_get_u64(buf + SEAL_H_RECEIVED);
	h->retain_until = (int64_t)ar_get_u64(buf + SEAL_H_RETAIN);
	memcpy(h->keycheck, buf + SEAL_H_KEYCHECK, SEAL_KEYCHECK_LEN);
	return 0;
}

/* --- manifest ------------------------------------------------------------- */

void seal_manifest_encode(const seal_manifest_t *m,
    unsigned char out[SEAL_MANIFEST_LEN])
{
	memset(out, 0, SEAL_MANIFEST_LEN);
	memcpy(out + SEAL_M_MAGIC, SEAL_MANIFEST_MAGIC, 4);
	ar_put_u16(out + SEAL_M_VERSION, SEAL_MANIFEST_VERSION);
	ar_put_u16(out + SEAL_M_LEN, SEAL_MANIFEST_LEN);
	memcpy(out + SEAL_M_TENANT, m->tenant, STORE_TENANT_LEN);
	memcpy(out + SEAL_M_ID, m->id, STORE_ID_LEN);
	ar_put_u32(out + SEAL_M_KEYVER, m->key_version);
	ar_put_u32(out + SEAL_M_CHUNK, m->chunk_size);
	ar_put_u64(out + SEAL_M_NCHUNKS, m->nchunks);
	ar_put_u64(out + SEAL_M_PLAIN, m->plain_size);
	ar_put_u64(out + SEAL_M_SEALED, m->sealed_size);
	ar_put_u64(out + SEAL_M_RECEIVED, (uint64_t)m->received);
	ar_put_u64(out + SEAL_M_RETAIN, (uint64_t)m->retain_until);
	memcpy(out + SEAL_M_HEADER_SHA, m->header_sha, 32);
	memcpy(out + SEAL_M_SEALED_SHA, m->sealed_sha, 32);
	memcpy(out + SEAL_M_PLAIN_DIGEST, m->plain_digest, 32);
}

void seal_manifest_decode(const unsigned char *in, seal_manifest_t *m)
{
	memcpy(m->tenant, in + SEAL_M_TENANT, STORE_TENANT_LEN);
	memcpy(m->id, in + SEAL_M_ID, STORE_ID_LEN);
	m->key_version = ar_get_u32(in + SEAL_M_KEYVER);
	m->chunk_size = ar_get_u32(in + SEAL_M_CHUNK);
	m->nchunks = ar_get_u64(in + SEAL_M_NCHUNKS);
	m->plain_size = ar_get_u64(in + SEAL_M_PLAIN);
	m->sealed_size = ar_get_u64(in + SEAL_M_SEALED);
	m->received = (int64_t)ar_get_u64(in + SEAL_M_RECEIVED);
	m->retain_until = (int64_t)ar_get_u64(in + SEAL_M_RETAIN);
	memcpy(m->header_sha, in + SEAL_M_HEADER_SHA, 32);
	memcpy(m->sealed_sha, in + SEAL_M_SEALED_SHA, 32);
	memcpy(m->plain_digest, in + SEAL_M_PLAIN_DIGEST, 32);
}

/* Build the signed message "archived manifest v1" || manifest. */
size_t seal_manifest_msg(const unsigned char *manifest,
    unsigned char out[sizeof SEAL_CTX_MANIFEST + SEAL_MANIFEST_LEN])
{
	size_t n = sizeof SEAL_CTX_MANIFEST - 1;
	memcpy(out, SEAL_CTX_MANIFEST, n);
	memcpy(out + n, manifest, SEAL_MANIFEST_LEN);
	return n + SEAL_MANIFEST_LEN;
}

/* --- geometry, keys, primitives ----------------------------------------- */

uint64_t seal_count_chunks(uint64_t plain, uint32_t cs)
{
	return plain == 0 ? 1 : (plain + cs - 1) / cs;
}

uint64_t seal_sealed_size(uint64_t plain, uint64_t nchunks)
{
	return SEAL_HEADER_LEN + plain + nchunks * SEAL_TAG_LEN +
	    SEAL_TRAILER_LEN;
}

/* object key = BLAKE2b-256(key = tenant "object" subkey,
 *                          "archived object v1" || object id) */
int seal_object_key(keysvc_t *ks, const uint8_t *tenant, uint32_t version,
    const uint8_t *id, uint8_t key[32])
{
	crypto_generichash_state st;
	uint8_t sub[KEYSVC_KEY_LEN];
	int rc;

	if ((rc = keysvc_derive(ks, tenant, version, "object", sub)))
		return rc;
	if (crypto_generichash_init(&st, sub, sizeof sub, 32) != 0 ||
	    crypto_generichash_update(&st, (const uint8_t *)SEAL_CTX_OBJECT,
	    sizeof SEAL_CTX_OBJECT - 1) != 0 ||
	    crypto_generichash_update(&st, id, STORE_ID_LEN) != 0 ||
	    crypto_generichash_final(&st, key, 32) != 0)
		rc = AR_EIO;
	sodium_memzero(sub, sizeof sub);
	sodium_memzero(&st, sizeof st);
	return rc;
}

int seal_key_check(const uint8_t key[32], uint8_t out[SEAL_KEYCHECK_LEN])
{
	return crypto_generichash(out, SEAL_KEYCHECK_LEN,
	    (const uint8_t *)SEAL_CTX_KEYCHECK, sizeof SEAL_CTX_KEYCHECK - 1,
	    key, 32) == 0 ? 0 : AR_EIO;
}

/* keyed digest = BLAKE2b-256(key = object key,
 *                            "archived plaintext v1" || SHA-256(plain)) */
int seal_plain_digest(const uint8_t key[32], const uint8_t sha[32],
    uint8_t out[32])
{
	uint8_t msg[sizeof SEAL_CTX_PLAIN - 1 + 32];
	memcpy(msg, SEAL_CTX_PLAIN, sizeof SEAL_CTX_PLAIN - 1);
	memcpy(msg + sizeof SEAL_CTX_PLAIN - 1, sha, 32);
	return crypto_generichash(out, 32, msg, sizeof msg, key, 32) == 0
	    ? 0 : AR_EIO;
}

int seal_sha_new(EVP_MD_CTX **c)
{
	if (!(*c = EVP_MD_CTX_new()))
		return AR_ENOMEM;
	return EVP_DigestInit_ex(*c, EVP_sha256(), NULL) == 1 ? 0 : AR_EIO;
}

int seal_sha_update(EVP_MD_CTX *c, const void *p, size_t n)
{
	return EVP_DigestUpdate(c, p, n) == 1 ? 0 : AR_EIO;
}

int seal_sha_final(EVP_MD_CTX *c, uint8_t out[32])
{
	unsigned int n;
	return EVP_DigestFinal_ex(c, out, &n) == 1 && n == 32 ? 0 : AR_EIO;
}

int seal_sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned int len;
	return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 &&
	    len == 32 ? 0 : AR_EIO;
}

int seal_gcm_new(EVP_CIPHER_CTX **c, const uint8_t key[32], int enc)
{
	if (!(*c = EVP_CIPHER_CTX_new()))
		return AR_ENOMEM;
	if (EVP_CipherInit_ex(*c, EVP_aes_256_gcm(), NULL, NULL, NULL,
	    enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(*c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN,
	    NULL) != 1 ||
	    EVP_CipherInit_ex(*c, NULL, NULL, key, NULL, enc) != 1)
		return AR_EIO;
	return 0;
}

/* nonce = prefix (7) || chunk index (u32 BE) || last-chunk flag (1) */
void seal_chunk_nonce(const uint8_t *prefix, uint64_t idx, int last,
    uint8_t nonce[SEAL_NONCE_LEN])
{
	memcpy(nonce, prefix, SEAL_PREFIX_LEN);
	ar_put_u32(nonce + SEAL_PREFIX_LEN, (uint32_t)idx);
	nonce[SEAL_NONCE_LEN - 1] = last ? 1 : 0;
}

/* Encrypt len bytes of in into out (len + tag). */
int seal_gcm_seal(EVP_CIPHER_CTX *c, const uint8_t *nonce,
    const uint8_t aad[32], const uint8_t *in, size_t len, uint8_t *out)
{
	int n;
	if (EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, 1) != 1 ||
	    EVP_CipherUpdate(c, NULL, &n, aad, 32) != 1 ||
	    (len && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1) ||
	    EVP_CipherFinal_ex(c, out + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN,
	    out + len) != 1)
		return AR_EIO;
	return 0;
}

/* Decrypt in (len + tag) into out; 0 only when the tag verifies. */
int seal_gcm_open(EVP_CIPHER_CTX *c, const uint8_t *nonce,
    const uint8_t aad[32], const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t tag[SEAL_TAG_LEN];
	int n;

	memcpy(tag, in + len, SEAL_TAG_LEN);
	if (EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, 0) != 1 ||
	    EVP_CipherUpdate(c, NULL, &n, aad, 32) != 1 ||
	    (len && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN,
	    tag) != 1)
		return AR_EIO;
	if (EVP_CipherFinal_ex(c, out + len, &n) != 1) {
		sodium_memzero(out, len);
		return AR_ECORRUPT;
	}
	return 0;
}
