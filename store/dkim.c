/*
 * dkim.c - the DKIM signing keys of tenants' domains (store.h "DKIM
 * signing keys").  DBI_DKIM: tenant id || domain || 0 || selector -> JSON
 *   {"selector", "alg", "bits", "record", "created", "key_version",
 *    "active", "sealed": base64(nonce (24) || XChaCha20-Poly1305 of the
 *    PEM)}
 * sealed under keysvc_derive(tenant, key_version, "dkim"), associated
 * data "dkim" 0 tenant domain 0 selector.  The PEM is made, checked and
 * normalised (PKCS#8) here with OpenSSL; it never reaches the disk in
 * clear, and every copy in memory is wiped before it is freed.
 */
#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ar.h"
#include "catalog_priv.h"

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
static size_t dkim_ad(unsigned char *ad, const uint8_t *tenant,
    const char *domain, const char *selector)
{
	size_t n = 0, l;

	memcpy(ad, "dkim", 5);
	n = 5;
	memcpy(ad + n, tenant, STORE_TENANT_LEN);
	n += STORE_TENANT_LEN;
	l = strlen(domain) + 1;
	memcpy(ad + n, domain, l);
	n += l;
	l = strlen(selector);
	memcpy(ad + n, selector, l);
	return n + l;
}

#define AD_MAX (5 + STORE_TENANT_LEN + STORE_DOMAIN_MAX + \
	STORE_DKIM_SELECTOR_MAX)

static int selector_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= STORE_DKIM_SELECTOR_MAX || s[0] == '.' ||
	    s[n - 1] == '.')
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '.' ||
		    *s == '_'))
			return 0;
	return 1;
}

/* --- the key ------------------------------------------------------------------ */

/* key as PKCS#8 PEM in malloc'd memory (*pem, *len; wiped by the caller). */
static int key_pem(EVP_PKEY *key, char **pem, size_t *len)
{
	BIO *b = BIO_new(BIO_s_secmem());
	BUF_MEM *m = NULL;
	int rc = AR_ENOMEM;

	*pem = NULL;
	if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL,
	    NULL) == 1 && BIO_get_mem_ptr(b, &m) == 1 && m &&
	    (*pem = malloc(m->length + 1))) {
		memcpy(*pem, m->data, m->length);
		(*pem)[m->length] = '\0';
		*len = m->length;
		rc = 0;
	}
	BIO_free(b);                 /* secure memory: cleared */
	return rc;
}

/* The TXT record of key's public half; its algorithm and size. */
static int key_describe(EVP_PKEY *key, store_dkim_key_t *k, char *why,
    size_t whylen)
{
	unsigned char raw[32], *der = NULL;
	size_t rawlen = sizeof raw, n;
	int type = EVP_PKEY_get_base_id(key), dlen;
	char b64[STORE_DKIM_RECORD_MAX - 32];

	if (type == EVP_PKEY_RSA) {
		k->bits = (unsigned)EVP_PKEY_get_bits(key);
		if (k->bits < 2048 || k->bits > 4096) {
			snprintf(why, whylen, "an RSA key of %u bits: DKIM keys "
			    "here are 2048 to 4096 bits", k->bits);
			return AR_EINVAL;
		}
		ar_strlcpy(k->alg, "rsa-sha256", sizeof k->alg);
		if ((dlen = i2d_PUBKEY(key, &der)) <= 0)
			return AR_ENOMEM;
		n = (size_t)dlen;
		if (sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL)
		    > sizeof b64) {
			OPENSSL_free(der);
			return AR_ETOOBIG;
		}
		sodium_bin2base64(b64, sizeof b64, der, n,
		    sodium_base64_VARIANT_ORIGINAL);
		OPENSSL_free(der);
		snprintf(k->record, sizeof k->record, "v=DKIM1; k=rsa; p=%s",
		    b64);
		return 0;
	}
	if (type == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(key, raw, &rawlen) != 1)
			return AR_EINVAL;
		k->bits = 256;
		ar_strlcpy(k->alg, "ed25519-sha256", sizeof k->alg);
		sodium_bin2base64(b64, sizeof b64, raw, rawlen,
		    sodium_base64_VARIANT_ORIGINAL);
		snprintf(k->record, sizeof k->record, "v=DKIM1; k=ed25519; "
		    "p=%s", b64);
		return 0;
	}
	snprintf(why, whylen, "a key of type %s: DKIM signs with RSA or "
	    "Ed25519", OBJ_nid2sn(type));
	return AR_EINVAL;
}

/* --- sealing ------------------------------------------------------------------ */

static int seal(store_t *st, const uint8_t *tenant, uint32_t version,
    const char *domain, const char *selector, const char *pem, size_t len,
    char **b64)
{
	uint8_t key[KEYSVC_KEY_LEN];
	unsigned char ad[AD_MAX], *blob;
	unsigned long long clen;
	size_t blen, adlen, b64len;
	int rc;

	if ((rc = keysvc_derive(st->ks, tenant, version, "dkim", key)))
		return cat_err(st, rc, "%s", keysvc_errmsg(st->ks));
	blen = NONCE + len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
	if (!(blob = malloc(blen))) {
		sodium_memzero(key, sizeof key);
		return AR_ENOMEM;
	}
	adlen = dkim_ad(ad, tenant, domain, selector);
	randombytes_buf(blob, NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + NONCE, &clen,
	    (const unsigned char *)pem, len, ad, adlen, NULL, blob, key);
	sodium_memzero(key, sizeof key);
	b64len = sodium_base64_ENCODED_LEN(NONCE + (size_t)clen,
	    sodium_base64_VARIANT_ORIGINAL);
	if ((*b64 = malloc(b64len)))
		sodium_bin2base64(*b64, b64len, blob, NONCE + (size_t)clen,
		    sodium_base64_VARIANT_ORIGINAL);
	free(blob);
	return *b64 ? 0 : AR_ENOMEM;
}

static int unseal(store_t *st, const uint8_t *tenant, uint32_t version,
    const char *domain, const char *selector, const char *b64, char **pem,
    size_t *len)
{
	uint8_t key[KEYSVC_KEY_LEN];
	unsigned char ad[AD_MAX], *blob;
	unsigned long long plen;
	size_t blen, adlen, n = strlen(b64);
	char *out;
	int rc;

	if (!(blob = malloc(n)))
		return AR_ENOMEM;
	if (sodium_base642bin(blob, n, b64, n, NULL, &blen, NULL,
	    sodium_base64_VARIANT_ORIGINAL) ||
	    blen < NONCE + crypto_aead_xchacha20poly1305_ietf_ABYTES) {
		free(blob);
		return cat_err(st, AR_ECORRUPT, "DKIM key of %s: sealed value "
		    "malformed", domain);
	}
	if ((rc = keysvc_derive(st->ks, tenant, version, "dkim", key))) {
		free(blob);
		return cat_err(st, rc, "%s", keysvc_errmsg(st->ks));
	}
	if (!(out = malloc(blen + 1))) {
		sodium_memzero(key, sizeof key);
		free(blob);
		return AR_ENOMEM;
	}
	adlen = dkim_ad(ad, tenant, domain, selector);
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)out,
	    &plen, NULL, blob + NONCE, blen - NONCE, ad, adlen, blob, key);
	sodium_memzero(key, sizeof key);
	free(blob);
	if (rc) {
		free(out);
		return cat_err(st, AR_ECORRUPT, "DKIM key of %s fails "
		    "authentication", domain);
	}
	out[plen] = '\0';
	*pem = out;
	*len = (size_t)plen;
	return 0;
}

void store_dkim_pem_free(char *pem, size_t len)
{
	if (!pem)
		return;
	sodium_memzero(pem, len);
	free(pem);
}

/* --- records ------------------------------------------------------------------
 * Key: tenant || domain || 0x00 || selector; the domain's keys are the
 * records under tenant || domain || 0x00. */

#define KEY_MAX (STORE_TENANT_LEN + STORE_DOMAIN_MAX + STORE_DKIM_SELECTOR_MAX)

static size_t dkim_key(uint8_t *k, const uint8_t *tenant, const char *domain,
    const char *selector)
{
	size_t n = strlen(domain), s = selector ? strlen(selector) : 0;

	memcpy(k, tenant, STORE_TENANT_LEN);
	memcpy(k + STORE_TENANT_LEN, domain, n);
	k[STORE_TENANT_LEN + n] = 0;
	memcpy(k + STORE_TENANT_LEN + n + 1, selector ? selector : "", s);
	return STORE_TENANT_LEN + n + 1 + s;
}

static int decode(const MDB_val *k, const MDB_val *v, store_dkim_key_t *d,
    json_t **obj)
{
	json_t *o = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	const char *s, *kd = (const char *)k->mv_data + STORE_TENANT_LEN;
	size_t kl = k->mv_size - STORE_TENANT_LEN, dl;

	memset(d, 0, sizeof *d);
	if (!o || k->mv_size <= STORE_TENANT_LEN ||
	    !memchr(kd, 0, kl) || (dl = strlen(kd)) >= sizeof d->domain) {
		json_decref(o);
		return AR_ECORRUPT;
	}
	memcpy(d->domain, kd, dl);
	if ((s = json_string_value(json_object_get(o, "selector"))))
		ar_strlcpy(d->selector, s, sizeof d->selector);
	if ((s = json_string_value(json_object_get(o, "alg"))))
		ar_strlcpy(d->alg, s, sizeof d->alg);
	if ((s = json_string_value(json_object_get(o, "record"))))
		ar_strlcpy(d->record, s, sizeof d->record);
	d->bits = (unsigned)json_integer_value(json_object_get(o, "bits"));
	d->created = json_integer_value(json_object_get(o, "created"));
	d->active = json_is_true(json_object_get(o, "active"));
	if (obj)
		*obj = o;
	else
		json_decref(o);
	return 0;
}

/* Call fn for each key of tenant's domain (inside txn); fn returns 0 to
 * go on, 1 to stop, < 0 to fail. */
typedef int (*each_fn)(store_t *st, MDB_txn *txn, const MDB_val *k,
    const MDB_val *v, const store_dkim_key_t *d, void *arg);
static int domain_each(store_t *st, MDB_txn *txn, const uint8_t *tenant,
    const char *domain, each_fn fn, void *arg)
{
	uint8_t pre[KEY_MAX];
	size_t pl = dkim_key(pre, tenant, domain, NULL);
	MDB_val k = { pl, pre }, v;
	MDB_cursor *cur;
	store_dkim_key_t d;
	int rc, frc = 0;

	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_DKIM], &cur)))
		return cat_status(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > pl && !memcmp(k.mv_data, pre, pl)) {
		MDB_val kc = k, vc = v;
		if (decode(&kc, &vc, &d, NULL) == 0 &&
		    (frc = fn(st, txn, &kc, &vc, &d, arg)))
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (frc < 0)
		return frc;
	return frc || rc == 0 || rc == MDB_NOTFOUND ? 0 : cat_status(rc);
}

struct dkim_ctx {
	const uint8_t *tenant;
	const char *domain, *selector;
	const char *value;           /* add: the record */
	int standby;                 /* add */
	store_dkim_key_t *out;
	char *sealed;                /* get: base64, malloc'd */
	uint32_t version;
	/* the domain's keys as found by domain_each */
	size_t nkeys;
	store_dkim_key_t active, named, any;
	int has_active, has_named;
	/* walk */
	store_dkim_key_t *list;
	size_t n, cap;
};

static int survey_fn(store_t *st, MDB_txn *txn, const MDB_val *k,
    const MDB_val *v, const store_dkim_key_t *d, void *arg)
{
	struct dkim_ctx *c = arg;

	(void)st;
	(void)txn;
	(void)k;
	(void)v;
	c->nkeys++;
	c->any = *d;
	if (d->active) {
		c->active = *d;
		c->has_active = 1;
	}
	if (c->selector && !strcmp(d->selector, c->selector)) {
		c->named = *d;
		c->has_named = 1;
	}
	return 0;
}

/* What the domain has: c->nkeys, its active key, the key c->selector. */
static int survey(store_t *st, MDB_txn *txn, struct dkim_ctx *c)
{
	c->nkeys = 0;
	c->has_active = c->has_named = 0;
	return domain_each(st, txn, c->tenant, c->domain, survey_fn, c);
}

/* Set the "active" member of a record (inside txn). */
static int set_active(store_t *st, MDB_txn *txn, const uint8_t *tenant,
    const char *domain, const char *selector, int active)
{
	uint8_t kb[KEY_MAX];
	MDB_val k = { dkim_key(kb, tenant, domain, selector), kb }, v;
	json_t *o;
	char *text;
	int rc = mdb_get(txn, st->dbi[DBI_DKIM], &k, &v);

	if (rc)
		return cat_status(rc);
	if (!(o = json_loadb(v.mv_data, v.mv_size, 0, NULL)))
		return AR_ECORRUPT;
	json_object_set_new(o, "active", json_boolean(active));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return AR_ENOMEM;
	v.mv_size = strlen(text);
	v.mv_data = text;
	rc = mdb_put(txn, st->dbi[DBI_DKIM], &k, &v, 0);
	free(text);
	return rc ? cat_err(st, cat_status(rc), "dkim: %s", mdb_strerror(rc))
	    : 0;
}

static int add_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct dkim_ctx *c = arg;
	uint8_t kb[KEY_MAX];
	MDB_val k = { strlen(c->domain), (void *)c->domain }, v;
	char th[33];
	int rc = mdb_get(txn, st->dbi[DBI_DOMAINS], &k, &v);
	json_t *o;

	if (rc == MDB_NOTFOUND)
		return cat_err(st, AR_ENOENT, "%s is not a domain of this "
		    "tenant (add it with tenant set --domain)", c->domain);
	if (rc)
		return cat_err(st, cat_status(rc), "domains: %s",
		    mdb_strerror(rc));
	o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
	rc = strcmp(json_string_value(json_object_get(o, "tenant")) ?
	    json_string_value(json_object_get(o, "tenant")) : "",
	    ar_hex(c->tenant, STORE_TENANT_LEN, th));
	json_decref(o);
	if (rc)
		return cat_err(st, AR_ETENANT, "%s is another tenant's "
		    "domain", c->domain);
	if ((rc = survey(st, txn, c)))
		return rc;
	if (c->has_named)
		return cat_err(st, AR_EEXIST, "%s has a key with selector %s "
		    "already", c->domain, c->selector);
	if (c->nkeys >= STORE_DKIM_KEYS_MAX)
		return cat_err(st, AR_ETOOBIG, "%s has %u keys: remove one "
		    "first", c->domain, STORE_DKIM_KEYS_MAX);
	if (c->has_active && !c->standby)
		return cat_err(st, AR_EEXIST, "%s has an active key already "
		    "(selector %s): add this one with --standby, publish its "
		    "record, then activate it", c->domain, c->active.selector);
	k.mv_size = dkim_key(kb, c->tenant, c->domain, c->selector);
	k.mv_data = kb;
	v.mv_size = strlen(c->value);
	v.mv_data = (void *)c->value;
	if ((rc = mdb_put(txn, st->dbi[DBI_DKIM], &k, &v, 0)))
		return cat_err(st, cat_status(rc), "dkim: %s", mdb_strerror(rc));
	return gw_admin_log(st, txn, c->tenant, json_pack("{s:s, s:s, s:s, "
	    "s:s, s:b}", "action", "dkim-add", "domain", c->domain,
	    "selector", c->selector, "alg", c->out->alg, "active",
	    !c->standby));
}

/* domain normalised into dom (STORE_DOMAIN_MAX), or a cat_err. */
static int norm_domain(store_t *st, const char *domain, char *dom)
{
	if (!domain || strlen(domain) >= STORE_DOMAIN_MAX)
		return cat_err(st, AR_EINVAL, "no domain");
	ar_strlcpy(dom, domain, STORE_DOMAIN_MAX);
	if (store_domain_name_norm(dom))
		return cat_err(st, AR_EINVAL, "'%s' is not a domain name",
		    domain);
	return 0;
}

int store_dkim_add(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *domain, const char *selector, const char *pem, size_t len,
    const char *alg, int standby, store_dkim_key_t *out)
{
	char dom[STORE_DOMAIN_MAX], why[160] = "", *norm = NULL, *sealed = NULL;
	char *text = NULL;
	size_t nlen = 0;
	store_dkim_key_t k;
	store_tenant_t t;
	EVP_PKEY *key = NULL;
	struct dkim_ctx c;
	json_t *o;
	int rc;

	memset(&k, 0, sizeof k);
	if ((rc = norm_domain(st, domain, dom)))
		return rc;
	if (!selector_ok(selector))
		return cat_err(st, AR_EINVAL, "selector '%s': 1 to %d letters, "
		    "digits, '-', '_' or '.'", selector ? selector : "",
		    STORE_DKIM_SELECTOR_MAX - 1);
	if ((rc = store_tenant_get_id(st, tenant, &t)))
		return cat_err(st, rc, "no such tenant");
	if (pem) {
		BIO *b = BIO_new_mem_buf(pem, (int)len);
		key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") :
		    NULL;
		BIO_free(b);
		if (!key)
			return cat_err(st, AR_EINVAL, "the key file holds no "
			    "PEM private key (or an encrypted one)");
	} else if (!alg || !strcmp(alg, "rsa")) {
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	} else if (!strcmp(alg, "ed25519")) {
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	} else {
		return cat_err(st, AR_EINVAL, "algorithm '%s': rsa or ed25519",
		    alg);
	}
	if (!key)
		return cat_err(st, AR_ENOMEM, "generating the key failed");
	ar_strlcpy(k.domain, dom, sizeof k.domain);
	ar_strlcpy(k.selector, selector, sizeof k.selector);
	k.created = ar_now();
	k.active = !standby;
	if ((rc = key_describe(key, &k, why, sizeof why)) ||
	    (rc = key_pem(key, &norm, &nlen))) {
		EVP_PKEY_free(key);
		return cat_err(st, rc, "%s", why[0] ? why : ar_strerror(rc));
	}
	EVP_PKEY_free(key);
	rc = seal(st, tenant, t.key_version, dom, selector, norm, nlen,
	    &sealed);
	store_dkim_pem_free(norm, nlen);
	if (rc)
		return rc;
	o = json_pack("{s:s, s:s, s:i, s:s, s:I, s:i, s:s, s:b}", "selector",
	    selector, "alg", k.alg, "bits", (int)k.bits, "record", k.record,
	    "created", (json_int_t)k.created, "key_version",
	    (int)t.key_version, "sealed", sealed, "active", !standby);
	text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	free(sealed);
	if (!text)
		return AR_ENOMEM;
	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.domain = dom;
	c.selector = selector;
	c.value = text;
	c.standby = standby;
	c.out = &k;
	rc = cat_write(st, add_txn, &c);
	free(text);
	if (rc == 0 && out)
		*out = k;
	return rc;
}

static int activate_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct dkim_ctx *c = arg;
	int rc;

	if ((rc = survey(st, txn, c)))
		return rc;
	if (!c->has_named)
		return cat_err(st, AR_ENOENT, "%s has no key with selector %s",
		    c->domain, c->selector);
	if (c->has_active && !strcmp(c->active.selector, c->selector))
		return 0;                /* already */
	if ((c->has_active && (rc = set_active(st, txn, c->tenant, c->domain,
	    c->active.selector, 0))) ||
	    (rc = set_active(st, txn, c->tenant, c->domain, c->selector, 1)))
		return rc;
	return gw_admin_log(st, txn, c->tenant, json_pack("{s:s, s:s, s:s, "
	    "s:s?}", "action", "dkim-activate", "domain", c->domain,
	    "selector", c->selector, "previous", c->has_active ?
	    c->active.selector : NULL));
}

int store_dkim_activate(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *domain, const char *selector, store_dkim_key_t *previous)
{
	char dom[STORE_DOMAIN_MAX];
	struct dkim_ctx c;
	int rc;

	if ((rc = norm_domain(st, domain, dom)))
		return rc;
	if (!selector_ok(selector))
		return cat_err(st, AR_EINVAL, "selector '%s': not a selector",
		    selector ? selector : "");
	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.domain = dom;
	c.selector = selector;
	rc = cat_write(st, activate_txn, &c);
	if (previous) {
		memset(previous, 0, sizeof *previous);
		if (rc == 0 && c.has_active && strcmp(c.active.selector,
		    selector))
			*previous = c.active;
	}
	return rc;
}

static int remove_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct dkim_ctx *c = arg;
	uint8_t kb[KEY_MAX];
	MDB_val k;
	store_dkim_key_t *gone;
	int rc;

	if ((rc = survey(st, txn, c)))
		return rc;
	if (!c->nkeys)
		return cat_err(st, AR_ENOENT, "%s has no DKIM key", c->domain);
	if (c->selector && !c->has_named && c->nkeys == 1)
		return cat_err(st, AR_ENOENT, "%s has no DKIM key with selector "
		    "%s (its key's selector is %s)", c->domain, c->selector,
		    c->any.selector);
	if (c->selector && !c->has_named)
		return cat_err(st, AR_ENOENT, "%s has no DKIM key with selector "
		    "%s (see tenant dkim list)", c->domain, c->selector);
	if (!c->selector && c->nkeys > 1)
		return cat_err(st, AR_EINVAL, "%s has %zu keys: name the one to "
		    "remove with --selector", c->domain, c->nkeys);
	gone = c->selector ? &c->named : &c->any;
	k.mv_size = dkim_key(kb, c->tenant, c->domain, gone->selector);
	k.mv_data = kb;
	if ((rc = mdb_del(txn, st->dbi[DBI_DKIM], &k, NULL)))
		return cat_err(st, cat_status(rc), "dkim: %s", mdb_strerror(rc));
	*c->out = *gone;
	return gw_admin_log(st, txn, c->tenant, json_pack("{s:s, s:s, s:s, "
	    "s:b}", "action", "dkim-remove", "domain", c->domain, "selector",
	    gone->selector, "active", gone->active));
}

int store_dkim_remove(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *domain, const char *selector, store_dkim_key_t *removed)
{
	char dom[STORE_DOMAIN_MAX];
	store_dkim_key_t gone;
	struct dkim_ctx c;
	int rc;

	if ((rc = norm_domain(st, domain, dom)))
		return rc;
	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.domain = dom;
	c.selector = selector;
	c.out = &gone;
	rc = cat_write(st, remove_txn, &c);
	if (rc == 0 && removed)
		*removed = gone;
	return rc;
}

static int walk_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct dkim_ctx *c = arg;
	MDB_cursor *cur;
	MDB_val k = { STORE_TENANT_LEN, (void *)c->tenant }, v;
	int rc;

	c->n = 0;
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_DKIM], &cur)))
		return cat_status(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > STORE_TENANT_LEN &&
	    !memcmp(k.mv_data, c->tenant, STORE_TENANT_LEN)) {
		if (ar_grow((void **)&c->list, &c->cap, c->n + 1,
		    sizeof *c->list)) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		if (decode(&k, &v, &c->list[c->n], NULL) == 0)
			c->n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : cat_status(rc);
}

int store_dkim_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    store_dkim_cb cb, void *arg)
{
	struct dkim_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	rc = cat_read(st, walk_txn, &c);
	for (size_t i = 0; rc == 0 && i < c.n; i++)
		rc = cb(arg, &c.list[i]);
	free(c.list);
	return rc;
}

static int get_fn(store_t *st, MDB_txn *txn, const MDB_val *k,
    const MDB_val *v, const store_dkim_key_t *d, void *arg)
{
	struct dkim_ctx *c = arg;
	json_t *o = NULL;
	const char *s;

	(void)st;
	(void)txn;
	if (!d->active)
		return 0;
	if (decode(k, v, c->out, &o))
		return AR_ECORRUPT;
	c->version = (uint32_t)json_integer_value(json_object_get(o,
	    "key_version"));
	s = json_string_value(json_object_get(o, "sealed"));
	c->sealed = s ? strdup(s) : NULL;
	json_decref(o);
	return c->sealed ? 1 : AR_ECORRUPT;
}

static int get_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct dkim_ctx *c = arg;
	int rc;

	free(c->sealed);
	c->sealed = NULL;
	if ((rc = domain_each(st, txn, c->tenant, c->domain, get_fn, c)))
		return rc;
	return c->sealed ? 0 : AR_ENOENT;
}

int store_dkim_get(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *domain, store_dkim_key_t *k, char **pem, size_t *len)
{
	char dom[STORE_DOMAIN_MAX];
	struct dkim_ctx c;
	int rc;

	*pem = NULL;
	*len = 0;
	if (!domain || strlen(domain) >= sizeof dom)
		return AR_ENOENT;
	ar_strlcpy(dom, domain, sizeof dom);
	if (store_domain_name_norm(dom))
		return AR_ENOENT;
	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.domain = dom;
	c.out = k;
	if ((rc = cat_read(st, get_txn, &c)) == 0)
		rc = unseal(st, tenant, c.version, dom, k->selector, c.sealed,
		    pem, len);
	free(c.sealed);
	return rc;
}
