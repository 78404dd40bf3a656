/*
 * blob.c - the encrypted blobs of a shard row.
 *
 *   blob = version (u32 BE) | nonce (24) | XChaCha20-Poly1305(strings)
 *   strings = (u32 BE length | bytes)*
 *   AD = "archived-search-blob-v1" | tenant | id | kind | version
 *
 * kind 'd': the display fields (from, to, subject); kind 'i': the texts
 * given to FTS5 (needed to delete a row from a contentless FTS5 table).
 * The key is keysvc_derive(tenant, version, "search-display").  Binding the
 * tenant, id and kind means a blob copied to another row does not open.
 */
#include "search/search_priv.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ar.h"

#define AD_TAG "archived-search-blob-v1"
#define NONCE  crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

static size_t make_ad(unsigned char *ad, const uint8_t tenant[16],
    const uint8_t id[16], char kind, uint32_t kver)
{
	size_t n = sizeof AD_TAG - 1;
	memcpy(ad, AD_TAG, n);
	memcpy(ad + n, tenant, SEARCH_TENANT_LEN);
	n += SEARCH_TENANT_LEN;
	memcpy(ad + n, id, SEARCH_ID_LEN);
	n += SEARCH_ID_LEN;
	ad[n++] = (unsigned char)kind;
	ar_put_u32(ad + n, kver);
	return n + 4;
}

int blob_seal(const uint8_t key[32], uint32_t kver,
    const uint8_t tenant[SEARCH_TENANT_LEN], const uint8_t id[SEARCH_ID_LEN],
    char kind, const char *const *strs, size_t n, uint8_t **out,
    size_t *outlen)
{
	unsigned char ad[64];
	size_t plen = 0, adlen;
	for (size_t i = 0; i < n; i++)
		plen += 4 + (strs[i] ? strlen(strs[i]) : 0);
	unsigned char *pt = malloc(plen ? plen : 1);
	unsigned char *b = malloc(4 + NONCE + plen + ABYTES);
	if (!pt || !b) {
		free(pt);
		free(b);
		return AR_ENOMEM;
	}
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strs[i] ? strlen(strs[i]) : 0;
		ar_put_u32(pt + off, (uint32_t)l);
		if (l)
			memcpy(pt + off + 4, strs[i], l);
		off += 4 + l;
	}
	ar_put_u32(b, kver);
	randombytes_buf(b + 4, NONCE);
	adlen = make_ad(ad, tenant, id, kind, kver);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(b + 4 + NONCE, &clen, pt,
	    plen, ad, adlen, NULL, b + 4, key);
	sodium_memzero(pt, plen);
	free(pt);
	*out = b;
	*outlen = 4 + NONCE + (size_t)clen;
	return 0;
}

uint32_t blob_version(const uint8_t *blob, size_t len)
{
	return len >= 4 + NONCE + ABYTES ? ar_get_u32(blob) : 0;
}

int blob_open(const uint8_t key[32], const uint8_t tenant[SEARCH_TENANT_LEN],
    const uint8_t id[SEARCH_ID_LEN], char kind, const uint8_t *blob,
    size_t len, char **strs, size_t n)
{
	unsigned char ad[64];
	for (size_t i = 0; i < n; i++)
		strs[i] = NULL;
	if (len < 4 + NONCE + ABYTES)
		return AR_ECORRUPT;
	uint32_t kver = ar_get_u32(blob);
	size_t adlen = make_ad(ad, tenant, id, kind, kver);
	size_t clen = len - 4 - NONCE;
	unsigned char *pt = malloc(clen);
	unsigned long long plen = 0;
	if (!pt)
		return AR_ENOMEM;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &plen, NULL,
	    blob + 4 + NONCE, clen, ad, adlen, blob + 4, key) != 0) {
		free(pt);
		return AR_ECORRUPT;
	}
	size_t off = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t l;
		if (off + 4 > plen || (l = ar_get_u32(pt + off)) > plen - off - 4) {
			rc = AR_ECORRUPT;
			break;
		}
		strs[i] = malloc((size_t)l + 1);
		if (!strs[i]) {
			rc = AR_ENOMEM;
			break;
		}
		memcpy(strs[i], pt + off + 4, l);
		strs[i][l] = 0;
		off += 4 + l;
	}
	sodium_memzero(pt, (size_t)plen);
	free(pt);
	if (rc)
		for (size_t i = 0; i < n; i++) {
			free(strs[i]);
			strs[i] = NULL;
		}
	return rc;
}
