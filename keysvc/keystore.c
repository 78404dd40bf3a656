/*
 * keystore.c - see keystore.h.
 */
#include "keysvc/keystore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"

#define KEK_MAGIC  "AKEK"
#define SIG_MAGIC  "ASIG"
#define TDK_MAGIC  "ATDK"
#define FMT_V1     1
#define MODE_PLAIN 0
#define MODE_SEALED 1

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SALT_LEN  crypto_pwhash_SALTBYTES

/* sealed blob: magic(4) fmt(1) nonce ct(32 + tag) */
#define WRAP_LEN  (5 + NONCE_LEN + KEYSVC_KEY_LEN + TAG_LEN)
/* kek, plain: magic fmt mode key */
#define KEK_PLAIN_LEN (6 + KEYSVC_KEY_LEN)
/* kek, sealed: magic fmt mode salt ops(8) mem(8) alg(1) | nonce ct */
#define KEK_SEAL_AAD  (6 + SALT_LEN + 8 + 8 + 1)
#define KEK_SEAL_LEN  (KEK_SEAL_AAD + NONCE_LEN + KEYSVC_KEY_LEN + TAG_LEN)

#define DERIVE_LABEL "archived/keysvc/derive/v1"
#define SNAPSHOT_WAIT_MS 10000   /* a change waits this long for a backup */

struct secrets {
	uint8_t kek[KEYSVC_KEY_LEN];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

struct keystore {
	char dir[3072];
	struct secrets *sec;       /* sodium_malloc: locked, guarded */
	uint8_t pk[KEYSVC_PK_LEN];
	int sealed;
};

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

static int file_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* --- sealing with the KEK --------------------------------------------- */

static int wrap(const uint8_t kek[KEYSVC_KEY_LEN], const char *magic,
    const uint8_t *ad_extra, size_t ad_extra_len,
    const uint8_t key[KEYSVC_KEY_LEN], uint8_t out[WRAP_LEN])
{
	uint8_t ad[5 + 32];
	if (ad_extra_len > 32)
		return AR_EINVAL;
	memcpy(out, magic, 4);
	out[4] = FMT_V1;
	memcpy(ad, out, 5);
	if (ad_extra_len)
		memcpy(ad + 5, ad_extra, ad_extra_len);
	randombytes_buf(out + 5, NONCE_LEN);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + 5 + NONCE_LEN,
	    NULL, key, KEYSVC_KEY_LEN, ad, 5 + ad_extra_len, NULL, out + 5,
	    kek) != 0)
		return AR_EIO;
	return 0;
}

static int unwrap(const uint8_t kek[KEYSVC_KEY_LEN], const char *magic,
    const uint8_t *ad_extra, size_t ad_extra_len, const uint8_t *in,
    size_t inlen, uint8_t key[KEYSVC_KEY_LEN])
{
	uint8_t ad[5 + 32];
	if (inlen != WRAP_LEN || memcmp(in, magic, 4) != 0)
		return AR_ECORRUPT;
	if (in[4] != FMT_V1)
		return AR_EVERSION;
	if (ad_extra_len > 32)
		return AR_EINVAL;
	memcpy(ad, in, 5);
	if (ad_extra_len)
		memcpy(ad + 5, ad_extra, ad_extra_len);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL,
	    in + 5 + NONCE_LEN, KEYSVC_KEY_LEN + TAG_LEN, ad, 5 + ad_extra_len,
	    in + 5, kek) != 0)
		return AR_ECORRUPT;
	return 0;
}

/* --- the KEK file ------------------------------------------------------ */

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

static int kek_write(const char *path, const uint8_t kek[KEYSVC_KEY_LEN],
    const char *pass, size_t passlen, enum keystore_cost cost)
{
	uint8_t buf[KEK_SEAL_LEN];
	uint8_t *pwkey;
	unsigned long long ops;
	size_t mem, len;
	int rc;

	memcpy(buf, KEK_MAGIC, 4);
	buf[4] = FMT_V1;
	if (!pass) {
		buf[5] = MODE_PLAIN;
		memcpy(buf + 6, kek, KEYSVC_KEY_LEN);
		len = KEK_PLAIN_LEN;
	} else {
		buf[5] = MODE_SEALED;
		cost_limits(cost, &ops, &mem);
		randombytes_buf(buf + 6, SALT_LEN);
		ar_put_u64(buf + 6 + SALT_LEN, ops);
		ar_put_u64(buf + 6 + SALT_LEN + 8, mem);
		buf[6 + SALT_LEN + 16] = crypto_pwhash_ALG_ARGON2ID13;
		pwkey = sodium_malloc(KEYSVC_KEY_LEN);
		if (!pwkey)
			return AR_ENOMEM;
		if (crypto_pwhash(pwkey, KEYSVC_KEY_LEN, pass, passlen,
		    buf + 6, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0) {
			sodium_free(pwkey);
			return AR_ENOMEM;
		}
		randombytes_buf(buf + KEK_SEAL_AAD, NONCE_LEN);
		rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
		    buf + KEK_SEAL_AAD + NONCE_LEN, NULL, kek, KEYSVC_KEY_LEN,
		    buf, KEK_SEAL_AAD, NULL, buf + KEK_SEAL_AAD, pwkey);
		sodium_free(pwkey);
		if (rc != 0)
			return AR_EIO;
		len = KEK_SEAL_LEN;
	}
	rc = ar_file_write_atomic(path, buf, len, 0600);
	sodium_memzero(buf, sizeof buf);
	return rc;
}

static int kek_read(const char *path, const char *pass, size_t passlen,
    uint8_t kek[KEYSVC_KEY_LEN], int *sealed, char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	uint8_t *pwkey;
	unsigned long long ops;
	size_t len = 0, mem;
	struct stat st;
	int rc;

	if ((rc = ar_file_read(path, 4096, &buf, &len))) {
		set_err(err, errlen, "cannot read %s: %s", path,
		    rc == AR_ENOENT ? "no such file" : ar_strerror(rc));
		return rc;
	}
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		ar_log(AR_LOG_WARN, "op=open file=%s mode=%03o "
		    "warning=\"key file readable by group or others\"", path,
		    (unsigned)(st.st_mode & 0777));
	rc = AR_ECORRUPT;
	if (len < 6 || memcmp(buf, KEK_MAGIC, 4) != 0) {
		set_err(err, errlen, "%s is not a KEK file", path);
		goto out;
	}
	if (buf[4] != FMT_V1) {
		set_err(err, errlen, "%s: unsupported format %u", path, buf[4]);
		rc = AR_EVERSION;
		goto out;
	}
	if (buf[5] == MODE_PLAIN && len == KEK_PLAIN_LEN) {
		*sealed = 0;
		memcpy(kek, buf + 6, KEYSVC_KEY_LEN);
		rc = 0;
		goto out;
	}
	if (buf[5] != MODE_SEALED || len != KEK_SEAL_LEN) {
		set_err(err, errlen, "%s is damaged (bad mode or length)", path);
		goto out;
	}
	*sealed = 1;
	if (!pass) {
		set_err(err, errlen, "%s is sealed with a passphrase; give it "
		    "with --passphrase-fd N", path);
		rc = AR_EPERM;
		goto out;
	}
	ops = ar_get_u64(buf + 6 + SALT_LEN);
	mem = (size_t)ar_get_u64(buf + 6 + SALT_LEN + 8);
	if (buf[6 + SALT_LEN + 16] != crypto_pwhash_ALG_ARGON2ID13 ||
	    ops < crypto_pwhash_OPSLIMIT_MIN || ops > 64 ||
	    mem < crypto_pwhash_MEMLIMIT_MIN ||
	    mem > crypto_pwhash_MEMLIMIT_SENSITIVE * 4ULL) {
		set_err(err, errlen, "%s: unsupported passphrase parameters",
		    path);
		goto out;
	}
	pwkey = sodium_malloc(KEYSVC_KEY_LEN);
	if (!pwkey) {
		rc = AR_ENOMEM;
		goto out;
	}
	if (crypto_pwhash(pwkey, KEYSVC_KEY_LEN, pass, passlen, buf + 6, ops,
	    mem, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sodium_free(pwkey);
		set_err(err, errlen, "passphrase hashing failed (out of memory)");
		rc = AR_ENOMEM;
		goto out;
	}
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt(kek, NULL, NULL,
	    buf + KEK_SEAL_AAD + NONCE_LEN, KEYSVC_KEY_LEN + TAG_LEN, buf,
	    KEK_SEAL_AAD, buf + KEK_SEAL_AAD, pwkey);
	sodium_free(pwkey);
	if (rc != 0) {
		set_err(err, errlen, "wrong passphrase for %s (or the file is "
		    "damaged)", path);
		rc = AR_EKEY;
	}
out:
	sodium_memzero(buf, len);
	free(buf);
	return rc;
}

/* --- the signing key --------------------------------------------------- */

static int signing_create(const char *dir, const struct secrets *sec,
    uint8_t pk[KEYSVC_PK_LEN], uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
	uint8_t seed[crypto_sign_SEEDBYTES], blob[WRAP_LEN];
	char path[4096], hex[2 * KEYSVC_PK_LEN + 2];
	int rc;

	randombytes_buf(seed, sizeof seed);
	rc = wrap(sec->kek, SIG_MAGIC, NULL, 0, seed, blob);
	if (rc == 0)
		crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof seed);
	if (rc)
		return rc;
	if ((rc = ar_path(path, sizeof path, "%s/signing.key", dir)) ||
	    (rc = ar_file_write_atomic(path, blob, sizeof blob, 0600)))
		return rc;
	ar_hex(pk, KEYSVC_PK_LEN, hex);
	strcat(hex, "\n");
	if ((rc = ar_path(path, sizeof path, "%s/signing.pub", dir)))
		return rc;
	return ar_file_write_atomic(path, hex, strlen(hex), 0644);
}

static int signing_load(const char *dir, struct secrets *sec,
    uint8_t pk[KEYSVC_PK_LEN], char *err, size_t errlen)
{
	char path[4096], pub[4096];
	unsigned char *blob = NULL;
	uint8_t seed[crypto_sign_SEEDBYTES];
	size_t len = 0;
	int rc;

	if ((rc = ar_path(path, sizeof path, "%s/signing.key", dir)) ||
	    (rc = ar_path(pub, sizeof pub, "%s/signing.pub", dir)))
		return rc;
	if (!file_exists(path)) {
		if (file_exists(pub)) {
			set_err(err, errlen, "%s is missing but %s exists; "
			    "restore it from backup", path, pub);
			return AR_ECORRUPT;
		}
		/* an interrupted init: finish it */
		ar_log(AR_LOG_INFO, "op=init file=%s status=created", path);
		rc = signing_create(dir, sec, pk, sec->sk);
		if (rc)
			set_err(err, errlen, "cannot write %s: %s", path,
			    ar_strerror(rc));
		return rc;
	}
	if ((rc = ar_file_read(path, 4096, &blob, &len))) {
		set_err(err, errlen, "cannot read %s: %s", path,
		    ar_strerror(rc));
		return rc;
	}
	rc = unwrap(sec->kek, SIG_MAGIC, NULL, 0, blob, len, seed);
	free(blob);
	if (rc) {
		set_err(err, errlen, "%s does not open with this KEK: %s",
		    path, ar_strerror(rc));
		return rc;
	}
	crypto_sign_seed_keypair(pk, sec->sk, seed);
	sodium_memzero(seed, sizeof seed);
	return 0;
}

/* --- open / init ------------------------------------------------------- */

static int dir_has_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int found = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			found = 1;
			break;
		}
	closedir(d);
	return found;
}

int keystore_probe(const char *dir)
{
	char kek[4096], sig[4096], ten[4096];
	if (ar_path(kek, sizeof kek, "%s/kek", dir) ||
	    ar_path(sig, sizeof sig, "%s/signing.key", dir) ||
	    ar_path(ten, sizeof ten, "%s/tenants", dir))
		return AR_EINVAL;
	if (file_exists(kek))
		return 0;
	if (file_exists(sig) || dir_has_entries(ten))
		return AR_ECORRUPT;
	return AR_ENOENT;
}

int keystore_init(const char *dir, const char *pass, size_t passlen,
    enum keystore_cost cost, char *err, size_t errlen)
{
	char path[4096];
	struct secrets *sec;
	uint8_t pk[KEYSVC_PK_LEN];
	int rc;

	if ((rc = ar_mkdirs(dir, 0700))) {
		set_err(err, errlen, "cannot create %s: %s", dir,
		    ar_strerror(rc));
		return rc;
	}
	rc = keystore_probe(dir);
	if (rc == 0) {
		set_err(err, errlen, "%s/kek exists; refusing to replace it",
		    dir);
		return AR_EEXIST;
	}
	if (rc != AR_ENOENT) {
		set_err(err, errlen, "%s holds keys but no kek; refusing to "
		    "create a new KEK (restore %s/kek from backup)", dir, dir);
		return rc;
	}
	sec = sodium_malloc(sizeof *sec);
	if (!sec)
		return AR_ENOMEM;
	crypto_aead_xchacha20poly1305_ietf_keygen(sec->kek);
	if ((rc = ar_path(path, sizeof path, "%s/kek", dir)) ||
	    (rc = kek_write(path, sec->kek, pass, passlen, cost))) {
		set_err(err, errlen, "cannot write %s/kek: %s", dir,
		    ar_strerror(rc));
		goto out;
	}
	if ((rc = signing_create(dir, sec, pk, sec->sk))) {
		set_err(err, errlen, "cannot write %s/signing.key: %s", dir,
		    ar_strerror(rc));
		goto out;
	}
	if ((rc = ar_path(path, sizeof path, "%s/tenants", dir)) ||
	    (rc = ar_mkdirs(path, 0700)) || (rc = ar_fsync_dir(dir))) {
		set_err(err, errlen, "cannot create %s/tenants: %s", dir,
		    ar_strerror(rc));
		goto out;
	}
	ar_log(AR_LOG_INFO, "op=init dir=%s sealed=%d status=ok", dir,
	    pass ? 1 : 0);
out:
	sodium_free(sec);
	return rc;
}

int keystore_open(keystore_t **out, const char *dir, const char *pass,
    size_t passlen, char *err, size_t errlen)
{
	keystore_t *ks;
	char path[4096];
	int rc;

	*out = NULL;
	ks = calloc(1, sizeof *ks);
	if (!ks)
		return AR_ENOMEM;
	ar_strlcpy(ks->dir, dir, sizeof ks->dir);
	if (strlen(dir) >= sizeof ks->dir) {
		free(ks);
		set_err(err, errlen, "data directory path too long");
		return AR_ETOOBIG;
	}
	ks->sec = sodium_malloc(sizeof *ks->sec);
	if (!ks->sec) {
		free(ks);
		return AR_ENOMEM;
	}
	if ((rc = ar_path(path, sizeof path, "%s/kek", dir)) ||
	    (rc = kek_read(path, pass, passlen, ks->sec->kek, &ks->sealed,
	    err, errlen)) ||
	    (rc = signing_load(dir, ks->sec, ks->pk, err, errlen)) ||
	    (rc = ar_path(path, sizeof path, "%s/tenants", dir)) ||
	    (rc = ar_mkdirs(path, 0700))) {
		keystore_close(ks);
		return rc;
	}
	*out = ks;
	return 0;
}

void keystore_close(keystore_t *ks)
{
	if (!ks)
		return;
	sodium_free(ks->sec);   /* wipes */
	free(ks);
}

int keystore_sealed(const keystore_t *ks)
{
	return ks->sealed;
}

void keystore_public_key(const keystore_t *ks, uint8_t pk[KEYSVC_PK_LEN])
{
	memcpy(pk, ks->pk, KEYSVC_PK_LEN);
}

int keystore_sign(keystore_t *ks, const void *msg, size_t len,
    uint8_t sig[KEYSVC_SIG_LEN])
{
	if (len > KEYSVC_SIGN_MAX)
		return AR_ETOOBIG;
	if (crypto_sign_detached(sig, NULL, msg, len, ks->sec->sk) != 0)
		return AR_EIO;
	return 0;
}

/* --- tenants ----------------------------------------------------------- */

static int tenant_dir(const keystore_t *ks, const uint8_t t[16], char *buf,
    size_t len)
{
	char hex[2 * KEYSVC_TENANT_LEN + 1];
	ar_hex(t, KEYSVC_TENANT_LEN, hex);
	return ar_path(buf, len, "%s/tenants/%s", ks->dir, hex);
}

/* "v<N>.key" with N a canonical decimal >= 1; 0 when not such a name. */
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

/* Highest version present and whether the tenant is destroyed;
 * AR_ENOENT when the tenant has no directory. */
static int tenant_scan(const char *tdir, uint32_t *maxv, int *destroyed)
{
	DIR *d;
	struct dirent *e;

	*maxv = 0;
	*destroyed = 0;
	d = opendir(tdir);
	if (!d)
		return ar_status_from_errno(errno);
	while ((e = readdir(d)) != NULL) {
		uint32_t v = version_of(e->d_name);
		if (v > *maxv)
			*maxv = v;
		if (strcmp(e->d_name, "destroyed") == 0)
			*destroyed = 1;
	}
	closedir(d);
	return 0;
}

static int tenant_ad(const uint8_t t[16], uint32_t version, uint8_t ad[20])
{
	memcpy(ad, t, KEYSVC_TENANT_LEN);
	ar_put_u32(ad + KEYSVC_TENANT_LEN, version);
	return 20;
}

static int tenant_new_version(keystore_t *ks, const char *tdir,
    const uint8_t t[16], uint32_t version)
{
	uint8_t dk[KEYSVC_KEY_LEN], blob[WRAP_LEN], ad[20];
	char path[4096];
	int rc;

	if ((rc = ar_path(path, sizeof path, "%s/v%u.key", tdir, version)))
		return rc;
	if (file_exists(path))
		return AR_EEXIST;
	randombytes_buf(dk, sizeof dk);
	rc = wrap(ks->sec->kek, TDK_MAGIC, ad, (size_t)tenant_ad(t, version, ad),
	    dk, blob);
	sodium_memzero(dk, sizeof dk);
	if (rc)
		return rc;
	return ar_file_write_atomic(path, blob, sizeof blob, 0600);
}

static int tenant_create_locked(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN])
{
	char tdir[4096], parent[4096];
	uint32_t maxv;
	int destroyed, rc;

	if ((rc = tenant_dir(ks, tenant, tdir, sizeof tdir)) ||
	    (rc = ar_path(parent, sizeof parent, "%s/tenants", ks->dir)))
		return rc;
	if (mkdir(tdir, 0700) < 0 && errno != EEXIST)
		return ar_status_from_errno(errno);
	if ((rc = ar_fsync_dir(parent)) ||
	    (rc = tenant_scan(tdir, &maxv, &destroyed)))
		return rc;
	if (destroyed)
		return AR_ESHREDDED;
	if (maxv > 0)
		return AR_EEXIST;
	return tenant_new_version(ks, tdir, tenant, 1);
}

static int tenant_rotate_locked(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN], uint32_t *new_version)
{
	char tdir[4096];
	uint32_t maxv;
	int destroyed, rc;

	if ((rc = tenant_dir(ks, tenant, tdir, sizeof tdir)) ||
	    (rc = tenant_scan(tdir, &maxv, &destroyed)))
		return rc;
	if (destroyed)
		return AR_ESHREDDED;
	if (maxv == 0)
		return AR_ENOENT;
	if (maxv == UINT32_MAX)
		return AR_ETOOBIG;
	if ((rc = tenant_new_version(ks, tdir, tenant, maxv + 1)))
		return rc;
	*new_version = maxv + 1;
	return 0;
}

/* Overwrite a key file with zeros and fsync it before it is unlinked
 * (best effort against recovery from the raw device). */
static void overwrite_file(const char *path)
{
	static const uint8_t zero[WRAP_LEN];
	struct stat st;
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (size_t)st.st_size <= sizeof zero &&
	    ar_write_full(fd, zero, (size_t)st.st_size) == 0)
		(void)fsync(fd);
	close(fd);
}

static int tenant_destroy_locked(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN])
{
	char tdir[4096], path[4096], marker[128];
	uint32_t maxv;
	int destroyed, rc, n;
	DIR *d;
	struct dirent *e;

	if ((rc = tenant_dir(ks, tenant, tdir, sizeof tdir)) ||
	    (rc = tenant_scan(tdir, &maxv, &destroyed)))
		return rc;
	if (!destroyed) {
		if (maxv == 0)
			return AR_ENOENT;
		/* marker first: from here on derive answers AR_ESHREDDED,
		 * even if we crash before every file is gone */
		n = snprintf(marker, sizeof marker, "version=%u\ntime=%lld\n",
		    maxv, (long long)ar_now());
		if ((rc = ar_path(path, sizeof path, "%s/destroyed", tdir)) ||
		    (rc = ar_file_write_atomic(path, marker, (size_t)n, 0600)))
			return rc;
	}
	/* remove every other file, temp files of interrupted writes too */
	d = opendir(tdir);
	if (!d)
		return ar_status_from_errno(errno);
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, "destroyed"))
			continue;
		if ((rc = ar_path(path, sizeof path, "%s/%s", tdir,
		    e->d_name)))
			break;
		overwrite_file(path);
		if (unlink(path) < 0) {
			rc = ar_status_from_errno(errno);
			break;
		}
	}
	closedir(d);
	if (rc)
		return rc;
	return ar_fsync_dir(tdir);
}

int keystore_tenant_info(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN], uint32_t *current,
    int *destroyed)
{
	char tdir[4096], path[4096];
	unsigned char *buf = NULL;
	size_t len = 0;
	unsigned v;
	int rc;

	if ((rc = tenant_dir(ks, tenant, tdir, sizeof tdir)) ||
	    (rc = tenant_scan(tdir, current, destroyed)))
		return rc;
	if (*destroyed) {
		if ((rc = ar_path(path, sizeof path, "%s/destroyed", tdir)) ||
		    (rc = ar_file_read(path, 4096, &buf, &len)))
			return rc;
		if (sscanf((char *)buf, "version=%u", &v) == 1)
			*current = v;
		free(buf);
		return 0;
	}
	return *current == 0 ? AR_ENOENT : 0;
}

int keystore_derive(keystore_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN],
    uint32_t version, const unsigned char *ctx, size_t ctxlen,
    uint8_t key[KEYSVC_KEY_LEN])
{
	char tdir[4096], path[4096];
	unsigned char *blob = NULL;
	uint8_t dk[KEYSVC_KEY_LEN], ad[20], vbuf[4], n;
	crypto_generichash_state st;
	size_t len = 0;
	uint32_t maxv;
	int destroyed, rc;

	if (ctxlen < 1 || ctxlen > KEYSVC_CONTEXT_MAX)
		return AR_EINVAL;
	if ((rc = tenant_dir(ks, tenant, tdir, sizeof tdir)) ||
	    (rc = tenant_scan(tdir, &maxv, &destroyed)))
		return rc;
	if (destroyed)
		return AR_ESHREDDED;
	if (version == 0 || version > maxv)
		return AR_ENOENT;
	if ((rc = ar_path(path, sizeof path, "%s/v%u.key", tdir, version)) ||
	    (rc = ar_file_read(path, 4096, &blob, &len)))
		return rc;
	rc = unwrap(ks->sec->kek, TDK_MAGIC, ad,
	    (size_t)tenant_ad(tenant, version, ad), blob, len, dk);
	free(blob);
	if (rc) {
		ar_log(AR_LOG_ERR, "op=derive file=%s status=corrupt", path);
		return rc;
	}
	ar_put_u32(vbuf, version);
	n = (uint8_t)ctxlen;
	rc = crypto_generichash_init(&st, dk, sizeof dk, KEYSVC_KEY_LEN);
	if (rc == 0)
		rc = crypto_generichash_update(&st,
		    (const uint8_t *)DERIVE_LABEL, sizeof DERIVE_LABEL);
	if (rc == 0)
		rc = crypto_generichash_update(&st, tenant, KEYSVC_TENANT_LEN);
	if (rc == 0)
		rc = crypto_generichash_update(&st, vbuf, 4);
	if (rc == 0)
		rc = crypto_generichash_update(&st, &n, 1);
	if (rc == 0)
		rc = crypto_generichash_update(&st, ctx, ctxlen);
	if (rc == 0)
		rc = crypto_generichash_final(&st, key, KEYSVC_KEY_LEN);
	sodium_memzero(dk, sizeof dk);
	sodium_memzero(&st, sizeof st);
	return rc == 0 ? 0 : AR_EIO;
}

/* --- changes under the snapshot lock ----------------------------------- */

int keystore_tenant_create(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN])
{
	int fd, rc;
	if ((rc = keystore_snapshot_lock(ks->dir, 1, SNAPSHOT_WAIT_MS, &fd)))
		return rc;
	rc = tenant_create_locked(ks, tenant);
	keystore_snapshot_unlock(fd);
	return rc;
}

int keystore_tenant_rotate(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN], uint32_t *new_version)
{
	int fd, rc;
	if ((rc = keystore_snapshot_lock(ks->dir, 1, SNAPSHOT_WAIT_MS, &fd)))
		return rc;
	rc = tenant_rotate_locked(ks, tenant, new_version);
	keystore_snapshot_unlock(fd);
	return rc;
}

int keystore_tenant_destroy(keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN])
{
	int fd, rc;
	if ((rc = keystore_snapshot_lock(ks->dir, 1, SNAPSHOT_WAIT_MS, &fd)))
		return rc;
	rc = tenant_destroy_locked(ks, tenant);
	keystore_snapshot_unlock(fd);
	return rc;
}

/* --- for backup and restore -------------------------------------------- */

const uint8_t *keystore_kek(const keystore_t *ks)
{
	return ks->sec->kek;
}

int keystore_kek_write(const char *dir, const uint8_t kek[KEYSVC_KEY_LEN],
    const char *pass, size_t passlen, enum keystore_cost cost)
{
	char path[4096];
	int rc;
	if ((rc = ar_path(path, sizeof path, "%s/kek", dir)))
		return rc;
	return kek_write(path, kek, pass, passlen, cost);
}

int keystore_wrapped_check(const keystore_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN], uint32_t version,
    const uint8_t *blob, size_t len)
{
	uint8_t dk[KEYSVC_KEY_LEN], ad[20];
	int rc = unwrap(ks->sec->kek, TDK_MAGIC, ad,
	    (size_t)tenant_ad(tenant, version, ad), blob, len, dk);
	sodium_memzero(dk, sizeof dk);
	return rc;
}

int keystore_snapshot_lock(const char *dir, int exclusive, int timeout_ms,
    int *fd)
{
	struct timespec nap = { 0, 10 * 1000000L };
	char path[4096];
	struct stat dst, fst;
	int64_t deadline = ar_mono_us() + (int64_t)timeout_ms * 1000;
	int rc;

	*fd = -1;
	if ((rc = ar_path(path, sizeof path, "%s/snapshot.lock", dir)))
		return rc;
	*fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0)
		return ar_status_from_errno(errno);
	/* a backup run by root must not leave a lock file the daemon's
	 * user cannot open: it belongs to the directory's owner */
	if (geteuid() == 0 && stat(dir, &dst) == 0 &&
	    fstat(*fd, &fst) == 0 && fst.st_uid != dst.st_uid)
		(void)!fchown(*fd, dst.st_uid, dst.st_gid);
	for (;;) {
		if (flock(*fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			rc = ar_status_from_errno(errno);
			break;
		}
		if (ar_mono_us() >= deadline) {
			ar_log(AR_LOG_WARN, "op=snapshot_lock dir=%s "
			    "waited_ms=%d status=busy msg=\"key store locked "
			    "by a backup\"", dir, timeout_ms);
			rc = AR_EAGAIN;
			break;
		}
		nanosleep(&nap, NULL);
	}
	close(*fd);
	*fd = -1;
	return rc;
}

void keystore_snapshot_unlock(int fd)
{
	if (fd >= 0)
		close(fd);   /* releases the flock */
}
