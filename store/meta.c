/*
 * meta.c - sealing of the small catalog values that describe mail, and the
 * keyed dedup digest.  See catalog_priv.h.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"

/* Associated data: label || tenant || id, so a blob moved to another
 * record, tenant or purpose fails to open. */
static size_t meta_ad(unsigned char *ad, const char *label,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t *id, size_t idlen)
{
	size_t n = strlen(label);
	memcpy(ad, label, n);
	ad[n++] = 0;
	memcpy(ad + n, tenant, STORE_TENANT_LEN);
	n += STORE_TENANT_LEN;
	if (idlen) {
		memcpy(ad + n, id, idlen);
		n += idlen;
	}
	return n;
}

static int meta_key(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t version, const char *ctx, uint8_t key[KEYSVC_KEY_LEN])
{
	int rc = keysvc_derive(st->ks, tenant, version, ctx, key);
	return rc ? cat_err(st, rc, "%s", keysvc_errmsg(st->ks)) : 0;
}

int meta_seal(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t version, const char *label, const uint8_t *id, size_t idlen,
    const void *plain, size_t len, unsigned char **blob, size_t *bloblen)
{
	uint8_t key[KEYSVC_KEY_LEN];
	unsigned char ad[64 + STORE_TENANT_LEN + 64], *out;
	size_t adlen;
	unsigned long long clen;
	int rc;

	if (strlen(label) > 63 || idlen > 64)
		return AR_EINVAL;
	if ((rc = meta_key(st, tenant, version, "meta", key)))
		return rc;
	out = malloc(len + META_OVERHEAD);
	if (!out) {
		sodium_memzero(key, sizeof key);
		return AR_ENOMEM;
	}
	adlen = meta_ad(ad, label, tenant, id, idlen);
	randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, &clen, plain,
	    len, ad, adlen, NULL, out, key);
	sodium_memzero(key, sizeof key);
	*blob = out;
	*bloblen = 24 + (size_t)clen;
	return 0;
}

int meta_open(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t version, const char *label, const uint8_t *id, size_t idlen,
    const void *blob, size_t bloblen, unsigned char **plain, size_t *len)
{
	uint8_t key[KEYSVC_KEY_LEN];
	unsigned char ad[64 + STORE_TENANT_LEN + 64], *out;
	const unsigned char *b = blob;
	size_t adlen;
	unsigned long long plen;
	int rc;

	*plain = NULL;
	*len = 0;
	if (bloblen < META_OVERHEAD || strlen(label) > 63 || idlen > 64)
		return cat_err(st, AR_ECORRUPT, "sealed %s value too short",
		    label);
	if ((rc = meta_key(st, tenant, version, "meta", key)))
		return rc;
	out = malloc(bloblen - META_OVERHEAD + 1);
	if (!out) {
		sodium_memzero(key, sizeof key);
		return AR_ENOMEM;
	}
	adlen = meta_ad(ad, label, tenant, id, idlen);
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL,
	    b + 24, bloblen - 24, ad, adlen, b, key);
	sodium_memzero(key, sizeof key);
	if (rc != 0) {
		free(out);
		return cat_err(st, AR_ECORRUPT, "sealed %s value fails "
		    "authentication", label);
	}
	out[plen] = '\0';
	*plain = out;
	*len = (size_t)plen;
	return 0;
}

int meta_dedup_key(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t plain_sha256[STORE_HASH_LEN], uint8_t out[STORE_HASH_LEN])
{
	uint8_t key[KEYSVC_KEY_LEN];
	int rc = meta_key(st, tenant, 1, "dedup", key);
	if (rc)
		return rc;
	crypto_generichash(out, STORE_HASH_LEN, plain_sha256, STORE_HASH_LEN,
	    key, sizeof key);
	sodium_memzero(key, sizeof key);
	return 0;
}
