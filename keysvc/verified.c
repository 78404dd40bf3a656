/*
 * verified.c - keysvc_verify(): the local check of an Ed25519 signature,
 * and the checks already passed.
 *
 * An object is opened several times on its way through archived (a
 * gateway message: each scanner, the relay queue, the archive feed; a
 * stored message: the drain, the indexer), and every open checks its
 * manifest's signature: about 80 us of CPU on the reference machine, most
 * of libsodium's share of the gateway's path (docs/performance.md).  The
 * same public key, message and signature verify the same way every time,
 * so a check that passed is remembered: a BLAKE2b-256 of (public key,
 * signature, message) under a key drawn at the first call (so nothing
 * outside the process can choose inputs whose digests meet), in a
 * direct-mapped table of VERIFIED_SLOTS digests (256 KiB).  Only
 * successes are kept: a byte changed on disk is another message, checked
 * in full, and a failure is a failure every time.
 */
#include "keysvc/keysvc.h"

#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "ar.h"

#define VERIFIED_SLOTS 8192              /* a power of two */
#define DIGEST_LEN     32

static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	int ready;
	uint8_t key[crypto_generichash_KEYBYTES];
	uint8_t slot[VERIFIED_SLOTS][DIGEST_LEN];
	uint64_t hits;
} vc = { PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, 0, { 0 }, { { 0 } },
    0 };

static void vc_init(void)
{
	if (sodium_init() < 0)
		return;
	randombytes_buf(vc.key, sizeof vc.key);
	vc.ready = 1;
}

static void vc_digest(const uint8_t *pk, const void *msg, size_t len,
    const uint8_t *sig, uint8_t out[DIGEST_LEN])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, vc.key, sizeof vc.key, DIGEST_LEN);
	crypto_generichash_update(&h, pk, KEYSVC_PK_LEN);
	crypto_generichash_update(&h, sig, KEYSVC_SIG_LEN);
	crypto_generichash_update(&h, msg, len);
	crypto_generichash_final(&h, out, DIGEST_LEN);
}

static size_t vc_index(const uint8_t d[DIGEST_LEN])
{
	uint64_t x;

	memcpy(&x, d, sizeof x);
	return (size_t)(x & (VERIFIED_SLOTS - 1));
}

int keysvc_verify(const uint8_t pk[KEYSVC_PK_LEN], const void *msg,
    size_t len, const uint8_t sig[KEYSVC_SIG_LEN])
{
	uint8_t d[DIGEST_LEN];
	size_t i;
	int hit;

	if (pthread_once(&vc.once, vc_init) != 0 || !vc.ready)
		return AR_ENOMEM;
	vc_digest(pk, msg, len, sig, d);
	i = vc_index(d);
	pthread_mutex_lock(&vc.lock);
	hit = sodium_memcmp(vc.slot[i], d, DIGEST_LEN) == 0;
	if (hit)
		vc.hits++;
	pthread_mutex_unlock(&vc.lock);
	if (hit)
		return 0;
	if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
		return AR_ESIG;
	pthread_mutex_lock(&vc.lock);
	memcpy(vc.slot[i], d, DIGEST_LEN);
	pthread_mutex_unlock(&vc.lock);
	return 0;
}

uint64_t keysvc_verify_hits(void)
{
	uint64_t n;

	pthread_mutex_lock(&vc.lock);
	n = vc.hits;
	pthread_mutex_unlock(&vc.lock);
	return n;
}
