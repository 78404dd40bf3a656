/*
 * authcache.c - SMTP AUTH checks that succeeded recently.
 *
 * A tenant's mail server opens a session per batch of outgoing mail and
 * authenticates in each.  Checking the password is Argon2id at libsodium's
 * "interactive" cost (tools/ctl_tenant.c): about 0.1 s of CPU and 64 MB of
 * memory, on the gateway's event loop, which serves every other session
 * meanwhile.  So a success is remembered for auth_cache_ttl seconds and the
 * same user, password and stored hash pass again at the cost of one keyed
 * hash.
 *
 * An entry is BLAKE2b-256 (crypto_generichash), keyed with a random key of
 * this process that never leaves its memory (sodium_malloc: guarded,
 * locked, wiped when freed), over user, password and stored hash; nothing
 * in it gives the password back without the key.  A new password is a new
 * stored hash, so the old password misses and is checked (and refused) in
 * full; a suspended tenant is refused before the cache is asked (mx.c).
 * Failures are never remembered: each costs the full check.  Event loop
 * only: no lock.
 */
#include "gateway/gw_int.h"

#include <string.h>

#include <sodium.h>

#include "ar.h"

#define AC_ENTRIES 64               /* users remembered at once */

struct gw_authcache {
	uint8_t key[crypto_generichash_KEYBYTES];
	struct ac_entry {
		uint8_t tag[crypto_generichash_BYTES];
		int64_t until_us;       /* 0: empty */
	} e[AC_ENTRIES];
	int64_t ttl_us;
	unsigned next;              /* the slot replaced when none is free */
};

int gw_authcache_new(struct gw_authcache **out, int64_t ttl_s)
{
	struct gw_authcache *c;

	*out = NULL;
	if (ttl_s <= 0)
		return 0;               /* off: every AUTH is checked in full */
	if (sodium_init() < 0 || !(c = sodium_malloc(sizeof *c)))
		return AR_ENOMEM;
	memset(c, 0, sizeof *c);
	randombytes_buf(c->key, sizeof c->key);
	c->ttl_us = ttl_s * 1000000;
	*out = c;
	return 0;
}

void gw_authcache_free(struct gw_authcache *c)
{
	if (c)
		sodium_free(c);         /* wipes the key and the tags */
}

static void tag_of(const struct gw_authcache *c, const char *user,
    const char *password, const char *stored,
    uint8_t tag[crypto_generichash_BYTES])
{
	crypto_generichash_state h;
	static const uint8_t zero;

	crypto_generichash_init(&h, c->key, sizeof c->key,
	    crypto_generichash_BYTES);
	crypto_generichash_update(&h, (const uint8_t *)user, strlen(user));
	crypto_generichash_update(&h, &zero, 1);
	crypto_generichash_update(&h, (const uint8_t *)password,
	    strlen(password));
	crypto_generichash_update(&h, &zero, 1);
	crypto_generichash_update(&h, (const uint8_t *)stored, strlen(stored));
	crypto_generichash_final(&h, tag, crypto_generichash_BYTES);
	sodium_memzero(&h, sizeof h);
}

int gw_authcache_check(struct gw_authcache *c, const char *user,
    const char *password, const char *stored)
{
	uint8_t tag[crypto_generichash_BYTES];
	int64_t now = ar_mono_us();
	int hit = 0;

	if (!c)
		return 0;
	tag_of(c, user, password, stored, tag);
	for (size_t i = 0; i < AC_ENTRIES; i++) {
		struct ac_entry *e = &c->e[i];
		if (e->until_us && e->until_us <= now) {
			sodium_memzero(e, sizeof *e);
			continue;
		}
		if (e->until_us && sodium_memcmp(e->tag, tag, sizeof tag) == 0)
			hit = 1;
	}
	sodium_memzero(tag, sizeof tag);
	return hit;
}

void gw_authcache_remember(struct gw_authcache *c, const char *user,
    const char *password, const char *stored)
{
	struct ac_entry *slot = NULL;
	int64_t now = ar_mono_us();

	if (!c)
		return;
	for (size_t i = 0; i < AC_ENTRIES && !slot; i++)
		if (c->e[i].until_us <= now)
			slot = &c->e[i];
	if (!slot) {
		slot = &c->e[c->next];
		c->next = (c->next + 1) % AC_ENTRIES;
	}
	tag_of(c, user, password, stored, slot->tag);
	slot->until_us = now + c->ttl_us;
}
