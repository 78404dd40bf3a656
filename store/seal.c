/*
 * seal.c - sealed objects: the sealer, the reader and the full check
 * (layout in seal_format.h and docs/formats.md).
 *
 * The sealer and the reader each hold one chunk of plaintext and one of
 * ciphertext, whatever the object size.  The reader authenticates a chunk
 * before releasing any byte of it, and the last chunk (with its last-chunk
 * flag) before releasing anything at all.  A reader may seek: each chunk
 * is still authenticated before use, but the whole-object digests are
 * checked only by a pass that went through every chunk in order from 0.
 */
#include "store/seal_format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "ar.h"

#define REORDER_WINDOW 64   /* chunk positions searched either side */

/* ======================================================================
 * Sealer
 * ====================================================================== */

struct store_sealer {
	store_put_t *put;
	keysvc_t *ks;
	seal_header_t h;
	uint8_t header[SEAL_HEADER_LEN];
	uint8_t aad[32];
	uint8_t key[32];
	EVP_CIPHER_CTX *gcm;
	EVP_MD_CTX *plain_sha, *sealed_sha;
	uint8_t *buf;                 /* plaintext, chunk_size */
	uint8_t *out;                 /* ciphertext, chunk_size + tag */
	size_t fill;
	uint64_t nchunks, plain_size;
	int status;                   /* sticky error */
	int closed;                   /* last chunk written, trailer built */
	uint8_t trailer[SEAL_TRAILER_LEN];  /* manifest, then its signature */
	store_object_info_t info;     /* filled by seal_close */
};

/* The cipher state and buffers: not needed once the sealer is closed. */
static void sealer_release(store_sealer_t *s)
{
	if (s->buf) {
		/* the plaintext the buffer ever held: no more than was
		 * written (a small message does not wipe a whole chunk) */
		uint64_t held = s->plain_size + s->fill;
		sodium_memzero(s->buf, held < s->h.chunk_size ? (size_t)held :
		    s->h.chunk_size);
		free(s->buf);
	}
	free(s->out);
	EVP_CIPHER_CTX_free(s->gcm);
	EVP_MD_CTX_free(s->plain_sha);
	EVP_MD_CTX_free(s->sealed_sha);
	s->buf = s->out = NULL;
	s->gcm = NULL;
	s->plain_sha = s->sealed_sha = NULL;
	sodium_memzero(s->key, sizeof s->key);
}

static void sealer_free(store_sealer_t *s)
{
	if (s->put)
		store_put_abort(s->put);
	sealer_release(s);
	sodium_memzero(&s->info, sizeof s->info);
	free(s);
}

int store_seal_begin(store_backend_t *be, keysvc_t *ks,
    const store_seal_params_t *params, store_sealer_t **out)
{
	store_sealer_t *s;
	uint32_t cs;
	int rc;

	if (!out)
		return AR_EINVAL;
	*out = NULL;
	if (!be || !ks || !params)
		return AR_EINVAL;
	cs = params->chunk_size ? params->chunk_size : STORE_CHUNK_DEFAULT;
	if (cs < STORE_CHUNK_MIN || cs > STORE_CHUNK_MAX)
		return AR_EINVAL;
	if (sodium_init() < 0)
		return AR_EIO;
	if (!(s = calloc(1, sizeof *s)))
		return AR_ENOMEM;
	s->ks = ks;
	s->h.version = SEAL_VERSION;
	s->h.chunk_size = cs;
	memcpy(s->h.tenant, params->tenant, STORE_TENANT_LEN);
	s->h.key_version = params->key_version;
	memcpy(s->h.id, params->id, STORE_ID_LEN);
	randombytes_buf(s->h.prefix, SEAL_PREFIX_LEN);
	s->h.received = params->received;
	s->h.retain_until = params->retain_until;

	if ((rc = seal_object_key(ks, s->h.tenant, s->h.key_version, s->h.id,
	    s->key)) ||
	    (rc = seal_key_check(s->key, s->h.keycheck)))
		goto fail;
	seal_header_encode(&s->h, s->header);
	if ((rc = seal_sha256(s->header, SEAL_HEADER_LEN, s->aad)) ||
	    (rc = seal_gcm_new(&s->gcm, s->key, 1)) ||
	    (rc = seal_sha_new(&s->plain_sha)) ||
	    (rc = seal_sha_new(&s->sealed_sha)) ||
	    (rc = seal_sha_update(s->sealed_sha, s->header, SEAL_HEADER_LEN)))
		goto fail;
	if (!(s->buf = malloc(cs)) || !(s->out = malloc(cs + SEAL_TAG_LEN))) {
		rc = AR_ENOMEM;
		goto fail;
	}
	if ((rc = store_backend_put_begin(be, s->h.tenant, s->h.id, &s->put)) ||
	    (rc = store_put_write(s->put, s->header, SEAL_HEADER_LEN)))
		goto fail;
	*out = s;
	return 0;
fail:
	sealer_free(s);
	return rc;
}

/* Encrypt and write the buffered plaintext as the next chunk. */
static int seal_flush(store_sealer_t *s, int last)
{
	uint8_t nonce[SEAL_NONCE_LEN];
	int rc;

	if (s->nchunks > UINT32_MAX)
		return AR_ETOOBIG;
	seal_chunk_nonce(s->h.prefix, s->nchunks, last, nonce);
	if ((rc = seal_gcm_seal(s->gcm, nonce, s->aad, s->buf, s->fill, s->out)) ||
	    (rc = seal_sha_update(s->plain_sha, s->buf, s->fill)) ||
	    (rc = seal_sha_update(s->sealed_sha, s->out, s->fill + SEAL_TAG_LEN)) ||
	    (rc = store_put_write(s->put, s->out, s->fill + SEAL_TAG_LEN)))
		return rc;
	s->nchunks++;
	s->plain_size += s->fill;
	s->fill = 0;
	return 0;
}

int store_seal_write(store_sealer_t *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!s || (!buf && len))
		return AR_EINVAL;
	if (s->status)
		return s->status;
	while (len > 0) {
		size_t n;
		/* a full buffer is flushed only once more data follows, so
		 * the last chunk is always known at finish */
		if (s->fill == s->h.chunk_size &&
		    (s->status = seal_flush(s, 0)))
			return s->status;
		n = s->h.chunk_size - s->fill;
		if (n > len)
			n = len;
		memcpy(s->buf + s->fill, p, n);
		s->fill += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* Seal the last chunk and build the unsigned manifest; release the
 * cipher state.  s->info is filled but for the manifest digest. */
static int seal_close(store_sealer_t *s)
{
	store_object_info_t *info = &s->info;
	seal_manifest_t m;
	int rc;

	if (s->closed)
		return 0;
	if ((rc = s->status) || (rc = seal_flush(s, 1)))
		return s->status = rc;
	memset(&m, 0, sizeof m);
	memcpy(m.tenant, s->h.tenant, STORE_TENANT_LEN);
	memcpy(m.id, s->h.id, STORE_ID_LEN);
	m.key_version = s->h.key_version;
	m.chunk_size = s->h.chunk_size;
	m.nchunks = s->nchunks;
	m.plain_size = s->plain_size;
	m.sealed_size = seal_sealed_size(s->plain_size, s->nchunks);
	m.received = s->h.received;
	m.retain_until = s->h.retain_until;
	memcpy(m.header_sha, s->aad, 32);
	memset(info, 0, sizeof *info);
	if ((rc = seal_sha_final(s->sealed_sha, m.sealed_sha)) ||
	    (rc = seal_sha_final(s->plain_sha, info->plain_sha256)) ||
	    (rc = seal_plain_digest(s->key, info->plain_sha256,
	    m.plain_digest)))
		return s->status = rc;
	seal_manifest_encode(&m, s->trailer);
	memcpy(info->tenant, m.tenant, STORE_TENANT_LEN);
	memcpy(info->id, m.id, STORE_ID_LEN);
	info->key_version = m.key_version;
	info->chunk_size = m.chunk_size;
	info->received = m.received;
	info->retain_until = m.retain_until;
	info->plain_size = m.plain_size;
	info->sealed_size = m.sealed_size;
	memcpy(info->sealed_sha256, m.sealed_sha, 32);
	sealer_release(s);
	s->closed = 1;
	return 0;
}

int store_seal_close(store_sealer_t *s, store_object_info_t *info)
{
	int rc;

	if (!s)
		return AR_EINVAL;
	if ((rc = seal_close(s))) {
		if (info)
			memset(info, 0, sizeof *info);
		return rc;
	}
	if (info)
		*info = s->info;
	return 0;
}

int store_seal_finish_many(store_sealer_t **s, size_t n,
    store_object_info_t *info, int *rcs)
{
	enum { MSG_LEN = sizeof SEAL_CTX_MANIFEST + SEAL_MANIFEST_LEN };
	unsigned char (*msg)[MSG_LEN] = NULL;
	const void **mp = NULL;
	size_t *ml = NULL, k = 0;
	uint8_t *sigs = NULL;
	store_put_t **puts = NULL;
	int64_t *retain = NULL;
	size_t *which = NULL;
	int *prc = NULL, rc = 0, first = 0;

	if (n == 0)
		return 0;
	if (!(msg = calloc(n, sizeof *msg)) || !(mp = calloc(n, sizeof *mp)) ||
	    !(ml = calloc(n, sizeof *ml)) ||
	    !(sigs = calloc(n, KEYSVC_SIG_LEN)) ||
	    !(puts = calloc(n, sizeof *puts)) ||
	    !(retain = calloc(n, sizeof *retain)) ||
	    !(which = calloc(n, sizeof *which)) ||
	    !(prc = calloc(n, sizeof *prc))) {
		for (size_t i = 0; i < n; i++)
			rcs[i] = AR_ENOMEM;
		first = AR_ENOMEM;
		goto out;
	}
	/* 1. close every sealer; the manifests of those that closed */
	for (size_t i = 0; i < n; i++) {
		if (!s[i]) {
			rcs[i] = AR_EINVAL;
			continue;
		}
		if ((rcs[i] = seal_close(s[i])))
			continue;
		ml[k] = seal_manifest_msg(s[i]->trailer, msg[k]);
		mp[k] = msg[k];
		which[k++] = i;
	}
	/* 2. one signing request (or as few as the protocol allows) */
	if (k && (rc = keysvc_sign_many(s[which[0]]->ks, k, mp, ml, sigs)))
		for (size_t j = 0; j < k; j++)
			rcs[which[j]] = rc;
	/* 3. the trailers, then every put committed together */
	for (size_t j = 0; !rc && j < k; j++) {
		store_sealer_t *x = s[which[j]];
		memcpy(x->trailer + SEAL_MANIFEST_LEN, sigs + j * KEYSVC_SIG_LEN,
		    KEYSVC_SIG_LEN);
		if ((rcs[which[j]] = store_put_write(x->put, x->trailer,
		    sizeof x->trailer)) == 0)
			rcs[which[j]] = seal_sha256(x->trailer,
			    sizeof x->trailer, x->info.manifest_digest);
	}
	if (!rc) {
		size_t np = 0;
		for (size_t j = 0; j < k; j++) {
			store_sealer_t *x = s[which[j]];
			if (rcs[which[j]])
				continue;
			puts[np] = x->put;
			retain[np] = x->h.retain_until;
			which[np++] = which[j];
			x->put = NULL;    /* the commit frees it */
		}
		if (np)
			store_put_commit_many(puts, np, retain, prc);
		for (size_t j = 0; j < np; j++)
			rcs[which[j]] = prc[j];
	}
out:
	for (size_t i = 0; i < n; i++) {
		if (rcs[i] && !first)
			first = rcs[i];
		if (info) {
			if (rcs[i] == 0)
				info[i] = s[i]->info;
			else
				memset(&info[i], 0, sizeof info[i]);
		}
		if (s[i])
			sealer_free(s[i]);
		s[i] = NULL;
	}
	free(msg);
	free(mp);
	free(ml);
	free(sigs);
	free(puts);
	free(retain);
	free(which);
	free(prc);
	return first;
}

int store_seal_finish(store_sealer_t *s, store_object_info_t *info)
{
	int rc;

	if (!s)
		return AR_EINVAL;
	store_seal_finish_many(&s, 1, info, &rc);
	return rc;
}

void store_seal_abort(store_sealer_t *s)
{
	if (s)
		sealer_free(s);
}

/* ======================================================================
 * Reader
 * ====================================================================== */

struct store_reader {
	store_get_t *get;
	store_object_info_t info;
	seal_header_t h;
	uint8_t header[SEAL_HEADER_LEN];
	uint8_t aad[32];
	uint8_t key[32];
	uint8_t plain_digest[32];
	EVP_CIPHER_CTX *gcm;
	EVP_MD_CTX *plain_sha, *sealed_sha;
	uint64_t nchunks, next;       /* next: chunk after the loaded one */
	uint8_t *ct;                  /* chunk_size + tag */
	uint8_t *pt;                  /* chunk_size */
	size_t pt_len, pt_pos;
	uint64_t cached;              /* 1 + the chunk ct and pt hold, or 0:
	                               * read again, it is not read twice */
	int hashing;                  /* every chunk so far read in order */
	int status;                   /* sticky error */
	char errmsg[256];
};

static int rd_fail(store_reader_t *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int rd_fail(store_reader_t *r, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->errmsg, sizeof r->errmsg, fmt, ap);
	va_end(ap);
	return rc;
}

static void reader_free(store_reader_t *r)
{
	if (r->get)
		store_get_close(r->get);
	if (r->pt) {
		/* no chunk holds more than the object's plaintext */
		sodium_memzero(r->pt, r->info.plain_size < r->h.chunk_size ?
		    (size_t)r->info.plain_size : r->h.chunk_size);
		free(r->pt);
	}
	free(r->ct);
	EVP_CIPHER_CTX_free(r->gcm);
	EVP_MD_CTX_free(r->plain_sha);
	EVP_MD_CTX_free(r->sealed_sha);
	sodium_memzero(r->key, sizeof r->key);
	free(r);
}

static int rd_pread(store_reader_t *r, void *buf, size_t len, uint64_t off,
    const char *what)
{
	size_t got;
	int rc = store_get_pread(r->get, buf, len, off, &got);
	if (rc)
		return rd_fail(r, rc, "reading %s: %s", what, ar_strerror(rc));
	if (got != len)
		return rd_fail(r, AR_ETRUNC, "%s cut short at byte %llu", what,
		    (unsigned long long)(off + got));
	return 0;
}

static size_t chunk_plain_len(const store_reader_t *r, uint64_t i)
{
	if (i + 1 < r->nchunks)
		return r->h.chunk_size;
	return (size_t)(r->info.plain_size -
	    (r->nchunks - 1) * (uint64_t)r->h.chunk_size);
}

/* Read and authenticate chunk i into r->pt.  On failure, tell a chunk
 * moved from another position (AR_EREORDER) from a damaged one. */
static int load_chunk(store_reader_t *r, uint64_t i)
{
	uint8_t nonce[SEAL_NONCE_LEN];
	size_t plen = chunk_plain_len(r, i);
	uint64_t off = SEAL_HEADER_LEN +
	    i * ((uint64_t)r->h.chunk_size + SEAL_TAG_LEN);
	uint64_t lo, hi;
	char what[48];
	int rc;

	if (r->cached == i + 1) {
		/* authenticated when it was read: a re-read (a rewind, the
		 * first read after open) costs no read and no decryption */
		r->pt_len = plen;
		r->pt_pos = 0;
		return 0;
	}
	r->cached = 0;
	snprintf(what, sizeof what, "chunk %llu", (unsigned long long)i);
	if ((rc = rd_pread(r, r->ct, plen + SEAL_TAG_LEN, off, what)))
		return rc;
	seal_chunk_nonce(r->h.prefix, i, i + 1 == r->nchunks, nonce);
	rc = seal_gcm_open(r->gcm, nonce, r->aad, r->ct, plen, r->pt);
	if (rc == 0) {
		r->pt_len = plen;
		r->pt_pos = 0;
		r->cached = i + 1;
		return 0;
	}
	if (rc != AR_ECORRUPT)
		return rd_fail(r, rc, "chunk %llu: cipher error",
		    (unsigned long long)i);
	lo = i > REORDER_WINDOW ? i - REORDER_WINDOW : 0;
	hi = i + REORDER_WINDOW < r->nchunks ? i + REORDER_WINDOW
	    : r->nchunks - 1;
	for (uint64_t j = lo; j <= hi + 1; j++) {
		uint64_t cand = j <= hi ? j : r->nchunks - 1;  /* + the last */
		if (cand == i || chunk_plain_len(r, cand) != plen)
			continue;
		seal_chunk_nonce(r->h.prefix, cand, cand + 1 == r->nchunks, nonce);
		if (seal_gcm_open(r->gcm, nonce, r->aad, r->ct, plen, r->pt) == 0) {
			sodium_memzero(r->pt, plen);
			return rd_fail(r, AR_EREORDER, "chunk %llu holds chunk "
			    "%llu", (unsigned long long)i,
			    (unsigned long long)cand);
		}
	}
	return rd_fail(r, AR_ECORRUPT, "chunk %llu fails authentication",
	    (unsigned long long)i);
}

static int reader_open(store_reader_t *r, store_backend_t *be, keysvc_t *ks,
    const uint8_t *tenant, const uint8_t *id)
{
	unsigned char trailer[SEAL_TRAILER_LEN];
	unsigned char msg[sizeof SEAL_CTX_MANIFEST + SEAL_MANIFEST_LEN];
	uint8_t kc[SEAL_KEYCHECK_LEN], pk[KEYSVC_PK_LEN], hsha[32];
	char why[160], hex[2 * STORE_ID_LEN + 1];
	seal_manifest_t m;
	uint64_t size;
	int rc;

	if ((rc = store_backend_get_open(be, tenant, id, &r->get)))
		return rd_fail(r, rc, "%s", store_backend_errmsg(be));
	size = store_get_size(r->get);
	if (size < SEAL_HEADER_LEN)
		return rd_fail(r, AR_ETRUNC, "file is %llu bytes, shorter "
		    "than a header", (unsigned long long)size);
	if ((rc = rd_pread(r, r->header, SEAL_HEADER_LEN, 0, "header")))
		return rc;
	if ((rc = seal_header_parse(r->header, SEAL_HEADER_LEN, &r->h, why,
	    sizeof why)))
		return rd_fail(r, rc, "header: %s", why);
	if (memcmp(r->h.tenant, tenant, STORE_TENANT_LEN) != 0)
		return rd_fail(r, AR_ETENANT, "header names another tenant");
	if (memcmp(r->h.id, id, STORE_ID_LEN) != 0)
		return rd_fail(r, AR_ECORRUPT, "header names object %s",
		    ar_hex(r->h.id, STORE_ID_LEN, hex));

	rc = seal_object_key(ks, tenant, r->h.key_version, id, r->key);
	if (rc == AR_ENOENT)
		return rd_fail(r, AR_EKEY, "tenant has no key version %u",
		    r->h.key_version);
	if (rc)
		return rd_fail(r, rc, "key version %u: %s", r->h.key_version,
		    keysvc_errmsg(ks));
	if ((rc = seal_key_check(r->key, kc)))
		return rd_fail(r, rc, "key check failed to compute");
	if (sodium_memcmp(kc, r->h.keycheck, sizeof kc) != 0)
		return rd_fail(r, AR_EKEY, "key check fails: wrong key "
		    "(key version %u)", r->h.key_version);

	if (size < SEAL_HEADER_LEN + SEAL_TAG_LEN + SEAL_TRAILER_LEN)
		return rd_fail(r, AR_ETRUNC, "file is %llu bytes, too short "
		    "for chunk and trailer", (unsigned long long)size);
	if ((rc = rd_pread(r, trailer, sizeof trailer,
	    size - SEAL_TRAILER_LEN, "trailer")))
		return rc;
	if (memcmp(trailer + SEAL_M_MAGIC, SEAL_MANIFEST_MAGIC, 4) != 0)
		return rd_fail(r, AR_ETRUNC, "no manifest at end of file "
		    "(truncated)");
	if ((rc = keysvc_public_key(ks, pk)))
		return rd_fail(r, rc, "public key: %s", keysvc_errmsg(ks));
	if (keysvc_verify(pk, msg, seal_manifest_msg(trailer, msg),
	    trailer + SEAL_MANIFEST_LEN) != 0)
		return rd_fail(r, AR_ESIG, "manifest signature does not "
		    "verify");
	if (ar_get_u16(trailer + SEAL_M_VERSION) != SEAL_MANIFEST_VERSION ||
	    ar_get_u16(trailer + SEAL_M_LEN) != SEAL_MANIFEST_LEN)
		return rd_fail(r, AR_EVERSION, "unsupported manifest version");
	seal_manifest_decode(trailer, &m);
	if ((rc = seal_sha256(r->header, SEAL_HEADER_LEN, hsha)))
		return rd_fail(r, rc, "hash failed");
	if (memcmp(m.tenant, r->h.tenant, STORE_TENANT_LEN) != 0 ||
	    memcmp(m.id, r->h.id, STORE_ID_LEN) != 0 ||
	    m.key_version != r->h.key_version ||
	    m.chunk_size != r->h.chunk_size ||
	    m.received != r->h.received ||
	    m.retain_until != r->h.retain_until ||
	    memcmp(m.header_sha, hsha, 32) != 0)
		return rd_fail(r, AR_ECORRUPT, "header does not match the "
		    "signed manifest");
	if (m.nchunks != seal_count_chunks(m.plain_size, m.chunk_size) ||
	    m.nchunks > (uint64_t)UINT32_MAX + 1 ||
	    m.sealed_size != seal_sealed_size(m.plain_size, m.nchunks))
		return rd_fail(r, AR_ECORRUPT, "manifest sizes inconsistent");
	if (size < m.sealed_size)
		return rd_fail(r, AR_ETRUNC, "file is %llu bytes, manifest "
		    "says %llu", (unsigned long long)size,
		    (unsigned long long)m.sealed_size);
	if (size > m.sealed_size)
		return rd_fail(r, AR_ECORRUPT, "file has %llu unexpected "
		    "bytes", (unsigned long long)(size - m.sealed_size));

	memcpy(r->info.tenant, m.tenant, STORE_TENANT_LEN);
	memcpy(r->info.id, m.id, STORE_ID_LEN);
	r->info.key_version = m.key_version;
	r->info.chunk_size = m.chunk_size;
	r->info.received = m.received;
	r->info.retain_until = m.retain_until;
	r->info.plain_size = m.plain_size;
	r->info.sealed_size = m.sealed_size;
	memcpy(r->info.sealed_sha256, m.sealed_sha, 32);
	if ((rc = seal_sha256(trailer, sizeof trailer, r->info.manifest_digest)))
		return rd_fail(r, rc, "hash failed");
	memcpy(r->plain_digest, m.plain_digest, 32);
	memcpy(r->aad, hsha, 32);
	r->nchunks = m.nchunks;

	if ((rc = seal_gcm_new(&r->gcm, r->key, 0)) ||
	    (rc = seal_sha_new(&r->plain_sha)) ||
	    (rc = seal_sha_new(&r->sealed_sha)) ||
	    (rc = seal_sha_update(r->sealed_sha, r->header, SEAL_HEADER_LEN)))
		return rd_fail(r, rc, "crypto setup failed");
	if (!(r->ct = malloc(r->h.chunk_size + SEAL_TAG_LEN)) ||
	    !(r->pt = malloc(r->h.chunk_size)))
		return rd_fail(r, AR_ENOMEM, "out of memory");
	/* the last chunk, flag and all, before anything is released */
	if ((rc = load_chunk(r, r->nchunks - 1)))
		return rc;
	r->pt_len = r->pt_pos = 0;    /* kept (cached), not released */
	r->next = 0;
	r->hashing = 1;
	return 0;
}

static void log_fail(const uint8_t *tenant, const uint8_t *id, int rc,
    const char *why)
{
	char ih[2 * STORE_ID_LEN + 1], th[2 * STORE_TENANT_LEN + 1];
	ar_log(AR_LOG_WARN, "id=%s tenant=%s status=%s reason=\"%s\"",
	    ar_hex(id, STORE_ID_LEN, ih), ar_hex(tenant, STORE_TENANT_LEN, th),
	    ar_strerror(rc), why);
}

int store_reader_open(store_backend_t *be, keysvc_t *ks,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_reader_t **out)
{
	store_reader_t *r;
	int rc;

	if (!out)
		return AR_EINVAL;
	*out = NULL;
	if (!be || !ks || !tenant || !id)
		return AR_EINVAL;
	if (sodium_init() < 0)
		return AR_EIO;
	if (!(r = calloc(1, sizeof *r)))
		return AR_ENOMEM;
	if ((rc = reader_open(r, be, ks, tenant, id))) {
		if (rc != AR_ENOENT)
			log_fail(tenant, id, rc, r->errmsg);
		reader_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

const store_object_info_t *store_reader_info(const store_reader_t *r)
{
	return &r->info;
}

const char *store_reader_errmsg(const store_reader_t *r)
{
	if (!r)
		return "no reader";
	return r->errmsg[0] ? r->errmsg : "no error";
}

/* After the last chunk is authenticated: whole-object checks, before the
 * last chunk's bytes are released. */
static int reader_final(store_reader_t *r)
{
	uint8_t sha[32], dig[32], sealed[32];
	int rc;

	if ((rc = seal_sha_final(r->plain_sha, sha)) ||
	    (rc = seal_plain_digest(r->key, sha, dig)) ||
	    (rc = seal_sha_final(r->sealed_sha, sealed)))
		return rd_fail(r, rc, "hash failed");
	if (sodium_memcmp(dig, r->plain_digest, 32) != 0)
		return rd_fail(r, AR_ECORRUPT, "plaintext digest does not "
		    "match the manifest");
	if (memcmp(sealed, r->info.sealed_sha256, 32) != 0)
		return rd_fail(r, AR_ECORRUPT, "ciphertext hash does not "
		    "match the manifest");
	memcpy(r->info.plain_sha256, sha, 32);
	return 0;
}

/*
 * Load and authenticate chunk i as the current one (next = i + 1).  While
 * the reader has gone through every chunk in order, the chunk also feeds
 * the whole-object hashes, and the last one runs the final checks before
 * any of its bytes are released.
 */
static int advance(store_reader_t *r, uint64_t i)
{
	int rc;

	if (i != r->next)
		r->hashing = 0;
	r->pt_len = r->pt_pos = 0;
	if ((rc = load_chunk(r, i)))
		return r->status = rc;
	r->next = i + 1;
	if (!r->hashing)
		return 0;
	if ((rc = seal_sha_update(r->sealed_sha, r->ct,
	    r->pt_len + SEAL_TAG_LEN)) ||
	    (rc = seal_sha_update(r->plain_sha, r->pt, r->pt_len)))
		rc = rd_fail(r, rc, "hash failed");
	else if (r->next == r->nchunks)
		rc = reader_final(r);
	if (rc) {
		sodium_memzero(r->pt, r->pt_len);
		r->pt_len = r->pt_pos = 0;
		r->cached = 0;
		return r->status = rc;
	}
	return 0;
}

int store_reader_read(store_reader_t *r, void *buf, size_t len, size_t *got)
{
	uint8_t *p = buf;
	size_t done = 0;
	int rc;

	if (got)
		*got = 0;
	if (!r || !got || (!buf && len))
		return AR_EINVAL;
	if (r->status)
		return r->status;
	while (done < len) {
		if (r->pt_pos == r->pt_len) {
			if (r->next == r->nchunks)
				break;
			if ((rc = advance(r, r->next)))
				return rc;
			continue;
		}
		size_t n = r->pt_len - r->pt_pos;
		if (n > len - done)
			n = len - done;
		memcpy(p + done, r->pt + r->pt_pos, n);
		r->pt_pos += n;
		done += n;
	}
	*got = done;
	return 0;
}

uint64_t store_reader_tell(const store_reader_t *r)
{
	if (r->pt_len == 0)   /* nothing loaded: at a chunk boundary */
		return r->next >= r->nchunks ? r->info.plain_size
		    : r->next * (uint64_t)r->h.chunk_size;
	return (r->next - 1) * (uint64_t)r->h.chunk_size + r->pt_pos;
}

int store_reader_seek(store_reader_t *r, uint64_t plain_offset)
{
	uint64_t cs, i;
	int rc;

	if (!r)
		return AR_EINVAL;
	if (r->status)
		return r->status;
	if (plain_offset > r->info.plain_size)
		return rd_fail(r, AR_EINVAL, "seek to %llu beyond the end "
		    "(%llu bytes)", (unsigned long long)plain_offset,
		    (unsigned long long)r->info.plain_size);
	if (plain_offset == store_reader_tell(r))
		return 0;
	cs = r->h.chunk_size;
	if (plain_offset == 0) {
		/* a rewind: a fresh in-order pass, whole-object checks and all */
		EVP_MD_CTX_free(r->plain_sha);
		EVP_MD_CTX_free(r->sealed_sha);
		r->plain_sha = r->sealed_sha = NULL;
		r->pt_len = r->pt_pos = 0;    /* the chunk stays cached */
		r->next = 0;
		r->hashing = 1;
		if ((rc = seal_sha_new(&r->plain_sha)) ||
		    (rc = seal_sha_new(&r->sealed_sha)) ||
		    (rc = seal_sha_update(r->sealed_sha, r->header,
		    SEAL_HEADER_LEN)))
			return r->status = rd_fail(r, rc, "hash failed");
		return 0;
	}
	if (plain_offset == r->info.plain_size) {
		/* the end: nothing to authenticate, nothing to release */
		r->pt_len = r->pt_pos = 0;
		r->next = r->nchunks;
		r->hashing = 0;
		return 0;
	}
	i = plain_offset / cs;
	if (r->pt_len == 0 || r->next - 1 != i) {
		if ((rc = advance(r, i)))
			return rc;
	}
	r->pt_pos = (size_t)(plain_offset - i * cs);
	return 0;
}

void store_reader_close(store_reader_t *r)
{
	if (r)
		reader_free(r);
}

int store_object_check(store_backend_t *be, keysvc_t *ks,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_object_info_t *info, char *errbuf, size_t errlen)
{
	store_reader_t *r;
	uint8_t *buf;
	size_t got, bufsz = STORE_CHUNK_DEFAULT;
	int rc;

	if (info)
		memset(info, 0, sizeof *info);
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!be || !ks || !tenant || !id)
		return AR_EINVAL;
	if (sodium_init() < 0)
		return AR_EIO;
	if (!(r = calloc(1, sizeof *r)) || !(buf = malloc(bufsz))) {
		free(r);
		return AR_ENOMEM;
	}
	rc = reader_open(r, be, ks, tenant, id);
	while (rc == 0) {
		if ((rc = store_reader_read(r, buf, bufsz, &got)) || got == 0)
			break;
	}
	if (rc == 0 && info)
		*info = r->info;
	if (rc && errbuf && errlen)
		snprintf(errbuf, errlen, "%s: %s", ar_strerror(rc), r->errmsg);
	sodium_memzero(buf, bufsz);
	free(buf);
	reader_free(r);
	return rc;
}
