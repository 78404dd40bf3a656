/*
 * backup.c - see backup.h.  The file format is in docs/keysvc.md.
 *
 * Backup file (all of the header is the payload's associated data):
 *
 *   "AKBK" | u8 format (1) | u8 flags (1 passphrase, 2 shares)
 *   | backup id[16] | u64 created | signing pk[32] | u8 m | u8 n
 *   | n x share commitment[32]
 *   | passphrase slot (flag 1): salt[16] u64 ops u64 mem u8 alg
 *                               | nonce[24] | BK sealed (32 + 16)
 *   | u32 payload ciphertext length
 *   then nonce[24] | payload sealed by BK (XChaCha20-Poly1305)
 *
 * Payload: "AKBP" | u8 format (1) | u8 kek sealed | kek[32]
 *   | u16 n signing.key[n] | u32 tenants
 *   | per tenant: id[16] u8 destroyed u32 marker version u64 marker time
 *                 u32 keys, per key: u32 version u16 n v<N>.key[n]
 */
#include "keysvc/backup.h"
#include "keysvc/backup_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* --- a snapshot of the key files --------------------------------------- */

void bkf_snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->t[i].keys);
	free(s->t);
	memset(s, 0, sizeof *s);
}

/* "v<N>.key", N canonical decimal >= 1; 0 otherwise. */
static uint32_t version_of(const char *name)
{
	char *end;
	unsigned long v;
	if (name[0] != 'v' || name[1] < '1' || name[1] > '9')
		return 0;
	errno = 0;
	v = strtoul(name + 1, &end, 10);
	if (errno || v == 0 || v > UINT32_MAX || strcmp(end, ".key") != 0)
		return 0;
	return (uint32_t)v;
}

static int read_small(const char *path, uint8_t *buf, size_t max,
    size_t *len)
{
	unsigned char *p = NULL;
	int rc = ar_file_read(path, max, &p, len);
	if (rc == 0)
		memcpy(buf, p, *len);
	free(p);
	return rc;
}

static void marker_parse(const char *text, uint32_t *ver, int64_t *when)
{
	const char *v = strstr(text, "version="), *t = strstr(text, "time=");
	*ver = v ? (uint32_t)strtoul(v + 8, NULL, 10) : 0;
	*when = t ? (int64_t)strtoll(t + 5, NULL, 10) : 0;
}

/* One tenant directory into r (keys only when not destroyed). */
static int scan_tenant(const char *tdir, struct tenant_rec *r, char *err,
    size_t errlen)
{
	char path[4096];
	unsigned char *m = NULL;
	struct dirent *e;
	size_t len;
	DIR *d;
	int rc = 0;

	if ((rc = ar_path(path, sizeof path, "%s/destroyed", tdir)))
		return rc;
	if (exists(path)) {
		if ((rc = ar_file_read(path, 4096, &m, &len))) {
			set_err(err, errlen, "cannot read %s: %s", path,
			    ar_strerror(rc));
			return rc;
		}
		r->destroyed = 1;
		marker_parse((char *)m, &r->mver, &r->mtime);
		free(m);
		return 0;   /* a destroyed tenant's leftovers are never copied */
	}
	if (!(d = opendir(tdir))) {
		rc = ar_status_from_errno(errno);
		set_err(err, errlen, "cannot read %s: %s", tdir, strerror(errno));
		return rc;
	}
	while ((e = readdir(d)) != NULL && rc == 0) {
		uint32_t v = version_of(e->d_name);
		struct key_rec *k;
		size_t got;
		if (v == 0)
			continue;   /* temp files of interrupted writes */
		if ((rc = ar_grow((void **)&r->keys, &r->cap, r->nkeys,
		    sizeof *r->keys)))
			break;
		k = &r->keys[r->nkeys];
		k->version = v;
		if ((rc = ar_path(path, sizeof path, "%s/%s", tdir,
		    e->d_name)) ||
		    (rc = read_small(path, k->blob, BLOB_MAX, &got))) {
			set_err(err, errlen, "cannot read %s: %s", path,
			    ar_strerror(rc));
			break;
		}
		k->len = (uint16_t)got;
		r->nkeys++;
	}
	closedir(d);
	return rc;
}

static int scan_store(const char *dir, struct snap *s, char *err,
    size_t errlen)
{
	char path[4096], tdir[4096];
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if ((rc = ar_path(path, sizeof path, "%s/signing.key", dir)) ||
	    (rc = read_small(path, s->sig, BLOB_MAX, &s->siglen))) {
		set_err(err, errlen, "cannot read %s/signing.key: %s", dir,
		    ar_strerror(rc));
		return rc;
	}
	if ((rc = ar_path(path, sizeof path, "%s/tenants", dir)))
		return rc;
	if (!(d = opendir(path))) {
		rc = ar_status_from_errno(errno);
		set_err(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		return rc;
	}
	while ((e = readdir(d)) != NULL && rc == 0) {
		struct tenant_rec r;
		memset(&r, 0, sizeof r);
		if (strlen(e->d_name) != 2 * KEYSVC_TENANT_LEN ||
		    ar_unhex(e->d_name, r.id, KEYSVC_TENANT_LEN) != 0)
			continue;
		if ((rc = ar_path(tdir, sizeof tdir, "%s/%s", path,
		    e->d_name)) ||
		    (rc = scan_tenant(tdir, &r, err, errlen))) {
			free(r.keys);
			break;
		}
		if (!r.destroyed && r.nkeys == 0)
			continue;   /* an interrupted create: no key yet */
		if ((rc = ar_grow((void **)&s->t, &s->cap, s->n, sizeof *s->t))) {
			free(r.keys);
			break;
		}
		s->t[s->n++] = r;
	}
	closedir(d);
	return rc;
}

/* --- the payload ------------------------------------------------------- */

static size_t payload_size(const struct snap *s)
{
	size_t n = 4 + 1 + 1 + KEY_LEN + 2 + s->siglen + 4;
	for (size_t i = 0; i < s->n; i++) {
		n += KEYSVC_TENANT_LEN + 1 + 4 + 8 + 4;
		for (size_t j = 0; j < s->t[i].nkeys; j++)
			n += 4 + 2 + s->t[i].keys[j].len;
	}
	return n;
}

static void payload_fill(uint8_t *p, const struct snap *s,
    const uint8_t *kek)
{
	memcpy(p, BP_MAGIC, 4);
	p[4] = FMT_V1;
	p[5] = (uint8_t)s->kek_sealed;
	memcpy(p + 6, kek, KEY_LEN);
	p += 6 + KEY_LEN;
	ar_put_u16(p, (uint16_t)s->siglen);
	memcpy(p + 2, s->sig, s->siglen);
	p += 2 + s->siglen;
	ar_put_u32(p, (uint32_t)s->n);
	p += 4;
	for (size_t i = 0; i < s->n; i++) {
		const struct tenant_rec *t = &s->t[i];
		memcpy(p, t->id, KEYSVC_TENANT_LEN);
		p[16] = (uint8_t)t->destroyed;
		ar_put_u32(p + 17, t->mver);
		ar_put_u64(p + 21, (uint64_t)t->mtime);
		ar_put_u32(p + 29, (uint32_t)t->nkeys);
		p += 33;
		for (size_t j = 0; j < t->nkeys; j++) {
			ar_put_u32(p, t->keys[j].version);
			ar_put_u16(p + 4, t->keys[j].len);
			memcpy(p + 6, t->keys[j].blob, t->keys[j].len);
			p += 6 + t->keys[j].len;
		}
	}
}

/* Parse a decrypted payload: the KEK into kek, the rest into s.  Every
 * length is checked against the bytes left. */
int bkf_payload_parse(const uint8_t *p, size_t len, struct snap *s,
    uint8_t *kek)
{
	size_t off = 6 + KEY_LEN, n;
	uint32_t nt;

	memset(s, 0, sizeof *s);
	if (len < off + 2 + 4 || memcmp(p, BP_MAGIC, 4) != 0)
		return AR_ECORRUPT;
	if (p[4] != FMT_V1)
		return AR_EVERSION;
	s->kek_sealed = p[5] != 0;
	memcpy(kek, p + 6, KEY_LEN);
	n = ar_get_u16(p + off);
	off += 2;
	if (n > BLOB_MAX || len - off < n + 4)
		return AR_ECORRUPT;
	memcpy(s->sig, p + off, n);
	s->siglen = n;
	off += n;
	nt = ar_get_u32(p + off);
	off += 4;
	for (uint32_t i = 0; i < nt; i++) {
		struct tenant_rec r;
		uint32_t nk;
		memset(&r, 0, sizeof r);
		if (len - off < 33)
			goto bad;
		memcpy(r.id, p + off, KEYSVC_TENANT_LEN);
		r.destroyed = p[off + 16] != 0;
		r.mver = ar_get_u32(p + off + 17);
		r.mtime = (int64_t)ar_get_u64(p + off + 21);
		nk = ar_get_u32(p + off + 29);
		off += 33;
		for (uint32_t j = 0; j < nk; j++) {
			struct key_rec *k;
			if (len - off < 6 || ar_grow((void **)&r.keys, &r.cap,
			    r.nkeys, sizeof *r.keys))
				goto bad_r;
			k = &r.keys[r.nkeys];
			k->version = ar_get_u32(p + off);
			k->len = ar_get_u16(p + off + 4);
			off += 6;
			if (k->version == 0 || k->len > BLOB_MAX ||
			    len - off < k->len)
				goto bad_r;
			memcpy(k->blob, p + off, k->len);
			off += k->len;
			r.nkeys++;
		}
		if (ar_grow((void **)&s->t, &s->cap, s->n, sizeof *s->t))
			goto bad_r;
		s->t[s->n++] = r;
		continue;
bad_r:
		free(r.keys);
		goto bad;
	}
	if (off != len)
		goto bad;
	return 0;
bad:
	bkf_snap_free(s);
	return AR_ECORRUPT;
}

/* --- the header -------------------------------------------------------- */

int bkf_header_parse(const uint8_t *b, size_t len, struct header *h,
    const char *path, char *err, size_t errlen)
{
	size_t off = HDR_FIXED;

	memset(h, 0, sizeof *h);
	if (len < HDR_FIXED || memcmp(b, BK_MAGIC, 4) != 0) {
		set_err(err, errlen, "%s is not a key store backup", path);
		return AR_ECORRUPT;
	}
	if (b[4] != FMT_V1) {
		set_err(err, errlen, "%s: unsupported backup format %u", path,
		    b[4]);
		return AR_EVERSION;
	}
	h->flags = b[5];
	memcpy(h->id, b + 6, BACKUP_ID_LEN);
	h->created = (int64_t)ar_get_u64(b + 22);
	memcpy(h->pk, b + 30, KEYSVC_PK_LEN);
	h->m = b[62];
	h->n = b[63];
	if ((h->flags & ~(FLAG_PASS | FLAG_SHARES)) || !h->flags ||
	    ((h->flags & FLAG_SHARES) ? (h->m < SHARE_MIN_M || h->m > h->n) :
	    (h->m || h->n)))
		goto bad;
	if (len - off < (size_t)h->n * 32)
		goto bad;
	h->commit = b + off;
	off += (size_t)h->n * 32;
	if (h->flags & FLAG_PASS) {
		if (len - off < SLOT_LEN)
			goto bad;
		h->slot = b + off;
		h->slot_off = off;
		off += SLOT_LEN;
	}
	if (len - off < 4)
		goto bad;
	h->ctlen = ar_get_u32(b + off);
	off += 4;
	h->len = off;
	if (h->ctlen < TAG_LEN || len - off != NONCE_LEN + (size_t)h->ctlen)
		goto bad;
	return 0;
bad:
	set_err(err, errlen, "%s is damaged (header or length does not "
	    "add up)", path);
	return AR_ECORRUPT;
}

static void cost_limits(enum keystore_cost cost, unsigned long long *ops,
    size_t *mem)
{
	switch (cost) {
	case KEYSTORE_COST_INTERACTIVE:
		*ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		*mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
		break;
	case KEYSTORE_COST_SENSITIVE:
		*ops = crypto_pwhash_OPSLIMIT_SENSITIVE;
		*mem = crypto_pwhash_MEMLIMIT_SENSITIVE;
		break;
	default:
		*ops = crypto_pwhash_OPSLIMIT_MODERATE;
		*mem = crypto_pwhash_MEMLIMIT_MODERATE;
		break;
	}
}

/* Seal bk into the slot at hdr + slot_off (the header before the slot's
 * nonce is its associated data). */
static int slot_seal(uint8_t *hdr, size_t slot_off, const char *pass,
    size_t passlen, enum keystore_cost cost, const uint8_t *bk)
{
	uint8_t *s = hdr + slot_off, *pwk;
	unsigned long long ops;
	size_t mem;
	int rc;

	cost_limits(cost, &ops, &mem);
	randombytes_buf(s, SALT_LEN);
	ar_put_u64(s + SALT_LEN, ops);
	ar_put_u64(s + SALT_LEN + 8, mem);
	s[SALT_LEN + 16] = crypto_pwhash_ALG_ARGON2ID13;
	if (!(pwk = sodium_malloc(KEY_LEN)))
		return AR_ENOMEM;
	if (crypto_pwhash(pwk, KEY_LEN, pass, passlen, s, ops, mem,
	    crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sodium_free(pwk);
		return AR_ENOMEM;
	}
	randombytes_buf(s + SLOT_AAD, NONCE_LEN);
	rc = crypto_aead_xchacha20poly1305_ietf_encrypt(s + SLOT_AAD +
	    NONCE_LEN, NULL, bk, KEY_LEN, hdr, slot_off + SLOT_AAD, NULL,
	    s + SLOT_AAD, pwk);
	sodium_free(pwk);
	return rc == 0 ? 0 : AR_EIO;
}

int bkf_slot_open(const uint8_t *hdr, const struct header *h,
    const char *pass, size_t passlen, uint8_t *bk, char *err,
    size_t errlen)
{
	const uint8_t *s = h->slot;
	unsigned long long ops = ar_get_u64(s + SALT_LEN);
	size_t mem = (size_t)ar_get_u64(s + SALT_LEN + 8);
	uint8_t *pwk;
	int rc;

	if (s[SALT_LEN + 16] != crypto_pwhash_ALG_ARGON2ID13 ||
	    ops < crypto_pwhash_OPSLIMIT_MIN || ops > 64 ||
	    mem < crypto_pwhash_MEMLIMIT_MIN ||
	    mem > crypto_pwhash_MEMLIMIT_SENSITIVE * 4ULL) {
		set_err(err, errlen, "unsupported passphrase parameters in "
		    "the backup");
		return AR_ECORRUPT;
	}
	if (!(pwk = sodium_malloc(KEY_LEN)))
		return AR_ENOMEM;
	if (crypto_pwhash(pwk, KEY_LEN, pass, passlen, s, ops, mem,
	    crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sodium_free(pwk);
		set_err(err, errlen, "passphrase hashing failed (out of "
		    "memory)");
		return AR_ENOMEM;
	}
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt(bk, NULL, NULL,
	    s + SLOT_AAD + NONCE_LEN, KEY_LEN + TAG_LEN, hdr,
	    h->slot_off + SLOT_AAD, s + SLOT_AAD, pwk);
	sodium_free(pwk);
	if (rc != 0) {
		set_err(err, errlen, "wrong backup passphrase (or the backup "
		    "file is damaged)");
		return AR_EKEY;
	}
	return 0;
}

int backup_share_path(char *buf, size_t len, const char *dir,
    const uint8_t id[BACKUP_ID_LEN], unsigned i, unsigned n)
{
	char hex[2 * BACKUP_ID_LEN + 1];
	ar_hex(id, BACKUP_ID_LEN, hex);
	return ar_path(buf, len, "%s/%.8s-share-%u-of-%u.txt", dir, hex, i, n);
}

/* --- backup ------------------------------------------------------------ */

static void remove_outputs(const struct backup_opts *o, const uint8_t *id,
    unsigned upto)
{
	char path[4096];
	for (unsigned i = 1; i <= upto; i++)
		if (backup_share_path(path, sizeof path, o->share_dir, id, i,
		    o->n) == 0)
			unlink(path);
	unlink(o->out);
}

int backup_create(const struct backup_opts *o, struct backup_summary *sum,
    char *err, size_t errlen)
{
	struct snap s;
	keystore_t *ks = NULL;
	struct share *shares = NULL;
	uint8_t *bk = NULL, *payload = NULL, *file = NULL, *hdr;
	size_t plen = 0, hlen, flen;
	unsigned written = 0;
	char path[4096], text[SHARE_TEXT_MAX];
	int lockfd = -1, rc;

	memset(&s, 0, sizeof s);
	memset(sum, 0, sizeof *sum);
	if (!o->backup_pass && o->n == 0) {
		set_err(err, errlen, "a backup needs a backup passphrase, "
		    "shares, or both");
		return AR_EINVAL;
	}
	if (o->n && (o->m < SHARE_MIN_M || o->m > o->n ||
	    o->n > SHARE_MAX_N || !o->share_dir)) {
		set_err(err, errlen, "shares: need 2 <= M <= N <= 255 and a "
		    "share directory");
		return AR_EINVAL;
	}
	if (exists(o->out)) {
		set_err(err, errlen, "%s exists; a backup never replaces a "
		    "file", o->out);
		return AR_EEXIST;
	}
	if ((rc = keystore_open(&ks, o->dir, o->kek_pass, o->kek_passlen, err,
	    errlen)))
		return rc;
	s.kek_sealed = keystore_sealed(ks);
	keystore_public_key(ks, sum->pk);

	/* a point-in-time copy: no tenant changes while the files are read */
	if ((rc = keystore_snapshot_lock(o->dir, 0, SNAP_WAIT_MS, &lockfd))) {
		set_err(err, errlen, "cannot lock %s/snapshot.lock: %s", o->dir,
		    ar_strerror(rc));
		goto out;
	}
	rc = scan_store(o->dir, &s, err, errlen);
	keystore_snapshot_unlock(lockfd);
	if (rc)
		goto out;
	for (size_t i = 0; i < s.n; i++) {
		char hex[2 * KEYSVC_TENANT_LEN + 1];
		if (s.t[i].destroyed) {
			sum->destroyed++;
			continue;
		}
		sum->tenants++;
		for (size_t j = 0; j < s.t[i].nkeys; j++) {
			rc = keystore_wrapped_check(ks, s.t[i].id,
			    s.t[i].keys[j].version, s.t[i].keys[j].blob,
			    s.t[i].keys[j].len);
			if (rc) {
				set_err(err, errlen, "%s/tenants/%s/v%u.key does "
				    "not open with the KEK (%s): repair the key "
				    "store before backing it up", o->dir,
				    ar_hex(s.t[i].id, KEYSVC_TENANT_LEN, hex),
				    s.t[i].keys[j].version, ar_strerror(rc));
				goto out;
			}
			sum->keys++;
		}
	}

	randombytes_buf(sum->id, BACKUP_ID_LEN);
	sum->created = ar_now();
	sum->has_pass = o->backup_pass != NULL;
	sum->m = o->n ? o->m : 0;
	sum->n = o->n;
	sum->kek_sealed = s.kek_sealed;
	rc = AR_ENOMEM;
	if (!(bk = sodium_malloc(KEY_LEN)))
		goto out;
	crypto_aead_xchacha20poly1305_ietf_keygen(bk);

	/* header */
	plen = payload_size(&s);
	hlen = HDR_FIXED + (size_t)o->n * 32 + (o->backup_pass ? SLOT_LEN : 0)
	    + 4;
	flen = hlen + NONCE_LEN + plen + TAG_LEN;
	if (plen + TAG_LEN > UINT32_MAX || flen > FILE_MAX) {
		set_err(err, errlen, "the key store is too large for one "
		    "backup file");
		rc = AR_ETOOBIG;
		goto out;
	}
	if (!(file = calloc(1, flen)))
		goto out;
	hdr = file;
	memcpy(hdr, BK_MAGIC, 4);
	hdr[4] = FMT_V1;
	hdr[5] = (uint8_t)((o->backup_pass ? FLAG_PASS : 0) |
	    (o->n ? FLAG_SHARES : 0));
	memcpy(hdr + 6, sum->id, BACKUP_ID_LEN);
	ar_put_u64(hdr + 22, (uint64_t)sum->created);
	memcpy(hdr + 30, sum->pk, KEYSVC_PK_LEN);
	hdr[62] = (uint8_t)sum->m;
	hdr[63] = (uint8_t)sum->n;
	if (o->n) {
		if (!(shares = sodium_malloc(o->n * sizeof *shares)))
			goto out;
		if ((rc = share_split(bk, sum->id, sum->created, o->m, o->n,
		    shares))) {
			set_err(err, errlen, "cannot split the backup key: %s",
			    ar_strerror(rc));
			goto out;
		}
		for (unsigned i = 0; i < o->n; i++)
			share_commitment(&shares[i], hdr + HDR_FIXED + 32 * i);
	}
	ar_put_u32(hdr + hlen - 4, (uint32_t)(plen + TAG_LEN));
	if (o->backup_pass && (rc = slot_seal(hdr, HDR_FIXED +
	    (size_t)o->n * 32, o->backup_pass, o->backup_passlen, o->cost,
	    bk))) {
		set_err(err, errlen, "cannot seal the backup key: %s",
		    ar_strerror(rc));
		goto out;
	}

	/* payload */
	rc = AR_ENOMEM;
	if (!(payload = sodium_malloc(plen)))
		goto out;
	payload_fill(payload, &s, keystore_kek(ks));
	randombytes_buf(file + hlen, NONCE_LEN);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(file + hlen + NONCE_LEN,
	    NULL, payload, plen, hdr, hlen, NULL, file + hlen, bk) != 0) {
		rc = AR_EIO;
		goto out;
	}

	/* shares first: the backup file is the last thing written */
	if (o->n && (rc = ar_mkdirs(o->share_dir, 0700))) {
		set_err(err, errlen, "cannot create %s: %s", o->share_dir,
		    ar_strerror(rc));
		goto out;
	}
	for (unsigned i = 0; i < o->n; i++) {
		int tl;
		if ((rc = backup_share_path(path, sizeof path, o->share_dir,
		    sum->id, i + 1, o->n)))
			goto fail;
		if (exists(path)) {
			set_err(err, errlen, "%s exists", path);
			rc = AR_EEXIST;
			goto fail;
		}
		tl = share_format(&shares[i], text, sizeof text);
		rc = tl < 0 ? tl : ar_file_write_atomic(path, text,
		    (size_t)tl, 0600);
		sodium_memzero(text, sizeof text);
		if (rc) {
			set_err(err, errlen, "cannot write %s: %s", path,
			    ar_strerror(rc));
			goto fail;
		}
		written = i + 1;
	}
	if ((rc = ar_file_write_atomic(o->out, file, flen, 0600))) {
		set_err(err, errlen, "cannot write %s: %s", o->out,
		    ar_strerror(rc));
		goto fail;
	}
	ar_log(AR_LOG_INFO, "op=backup dir=%s file=%s tenants=%u keys=%u "
	    "destroyed=%u shares=%u/%u passphrase=%d size=%zu status=ok",
	    o->dir, o->out, sum->tenants, sum->keys, sum->destroyed, sum->m,
	    sum->n, sum->has_pass, flen);
	goto out;
fail:
	remove_outputs(o, sum->id, written);
out:
	if (payload)
		sodium_free(payload);
	if (shares)
		sodium_free(shares);
	if (bk)
		sodium_free(bk);
	free(file);
	bkf_snap_free(&s);
	keystore_close(ks);
	return rc;
}

int backup_info(const char *path, struct backup_summary *sum, char *err,
    size_t errlen)
{
	unsigned char *b = NULL;
	struct header h;
	size_t len = 0;
	int rc;

	memset(sum, 0, sizeof *sum);
	if ((rc = ar_file_read(path, FILE_MAX, &b, &len))) {
		set_err(err, errlen, "cannot read %s: %s", path,
		    ar_strerror(rc));
		return rc;
	}
	if ((rc = bkf_header_parse(b, len, &h, path, err, errlen)) == 0) {
		memcpy(sum->id, h.id, BACKUP_ID_LEN);
		sum->created = h.created;
		memcpy(sum->pk, h.pk, KEYSVC_PK_LEN);
		sum->has_pass = (h.flags & FLAG_PASS) != 0;
		sum->m = h.m;
		sum->n = h.n;
	}
	free(b);
	return rc;
}

/* --- shred list -------------------------------------------------------- */

int backup_read_shred_list(const char *path,
    uint8_t (**ids)[KEYSVC_TENANT_LEN], size_t *n, char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, pos = 0;
	unsigned lineno = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if ((rc = ar_file_read(path, 64u << 20, &buf, &len))) {
		set_err(err, errlen, "cannot read shred list %s: %s", path,
		    ar_strerror(rc));
		return rc;
	}
	while (pos < len) {
		size_t end = pos, w;
		const char *l;
		lineno++;
		while (end < len && buf[end] != '\n')
			end++;
		l = (const char *)buf + pos;
		while (l < (const char *)buf + end && (*l == ' ' || *l == '\t'))
			l++;
		w = 0;
		while (l + w < (const char *)buf + end && l[w] != ' ' &&
		    l[w] != '\t' && l[w] != '\r')
			w++;
		pos = end + 1;
		if (w == 0 || *l == '#')
			continue;
		if ((rc = ar_grow((void **)ids, &cap, *n, sizeof **ids)))
			break;
		if (w != 2 * KEYSVC_TENANT_LEN) {
			rc = AR_EINVAL;
		} else {
			char hex[2 * KEYSVC_TENANT_LEN + 1];
			memcpy(hex, l, w);
			hex[w] = '\0';
			rc = ar_unhex(hex, (*ids)[*n], KEYSVC_TENANT_LEN);
		}
		if (rc) {
			set_err(err, errlen, "%s:%u: '%.*s' is not a tenant id "
			    "(32 hex digits)", path, lineno,
			    (int)(w > 40 ? 40 : w), l);
			rc = AR_EINVAL;
			break;
		}
		(*n)++;
	}
	free(buf);
	if (rc) {
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return rc;
}
