/*
 * restore.c - restore_run() of backup.h: open a backup (passphrase or
 * shares), build the key store it holds in a sibling directory, check it
 * with the keystore code, swap it into place.
 */
#include "keysvc/backup.h"
#include "keysvc/backup_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Remove a directory tree this process built (or an empty store). */
static void rm_tree(const char *path)
{
	(void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- the backup key ---------------------------------------------------- */

static int bk_from_shares(const struct restore_opts *o, const uint8_t *file,
    const struct header *h, uint8_t *bk, char *err, size_t errlen)
{
	char e[512], a[2 * BACKUP_ID_LEN + 1], b[2 * BACKUP_ID_LEN + 1];
	struct share *s;
	unsigned char *text = NULL;
	uint8_t c[32];
	size_t len;
	int rc = 0;

	(void)file;
	if (!(h->flags & FLAG_SHARES)) {
		set_err(err, errlen, "%s was made without shares: give its "
		    "backup passphrase", o->in);
		return AR_EINVAL;
	}
	if (!(s = sodium_malloc(o->nshares * sizeof *s)))
		return AR_ENOMEM;
	for (size_t i = 0; i < o->nshares && rc == 0; i++) {
		const char *f = o->share_files[i];
		if ((rc = ar_file_read(f, 64 * 1024, &text, &len))) {
			set_err(err, errlen, "cannot read share file %s: %s", f,
			    ar_strerror(rc));
			break;
		}
		e[0] = '\0';
		rc = share_parse((char *)text, len, &s[i], e, sizeof e);
		sodium_memzero(text, len);
		free(text);
		text = NULL;
		if (rc) {
			set_err(err, errlen, "share file %s: %s", f, e);
			break;
		}
		if (memcmp(s[i].backup_id, h->id, BACKUP_ID_LEN) != 0) {
			set_err(err, errlen, "share file %s belongs to backup "
			    "%s, not to %s (backup %s)", f,
			    ar_hex(s[i].backup_id, BACKUP_ID_LEN, a), o->in,
			    ar_hex(h->id, BACKUP_ID_LEN, b));
			rc = AR_EINVAL;
			break;
		}
		if (s[i].m != h->m || s[i].n != h->n ||
		    s[i].created != h->created) {
			set_err(err, errlen, "share file %s says %u of %u "
			    "needed, the backup says %u of %u: not a share of "
			    "this backup", f, s[i].m, s[i].n, h->m, h->n);
			rc = AR_EINVAL;
			break;
		}
		share_commitment(&s[i], c);
		if (sodium_memcmp(c, h->commit + 32 * (s[i].index - 1),
		    32) != 0) {
			set_err(err, errlen, "share file %s (share %u) does not "
			    "match the backup's record of share %u: it was "
			    "altered", f, s[i].index, s[i].index);
			rc = AR_ECORRUPT;
			break;
		}
	}
	if (rc == 0) {
		e[0] = '\0';
		if ((rc = share_combine(s, o->nshares, bk, e, sizeof e)))
			set_err(err, errlen, "%s", e);
	}
	sodium_free(s);
	return rc;
}

/* --- the target directory ---------------------------------------------- */

/* Tenant ids with a destroyed marker in the store at dir. */
static int live_destroyed(const char *dir, uint8_t (**ids)[16], size_t *n,
    size_t *cap)
{
	char path[4096], marker[4096];
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if ((rc = ar_path(path, sizeof path, "%s/tenants", dir)))
		return rc;
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : ar_status_from_errno(errno);
	while ((e = readdir(d)) != NULL && rc == 0) {
		uint8_t id[KEYSVC_TENANT_LEN];
		struct stat st;
		if (strlen(e->d_name) != 2 * KEYSVC_TENANT_LEN ||
		    ar_unhex(e->d_name, id, sizeof id) != 0 ||
		    ar_path(marker, sizeof marker, "%s/%s/destroyed", path,
		    e->d_name) != 0 || lstat(marker, &st) != 0)
			continue;
		if ((rc = ar_grow((void **)ids, cap, *n, sizeof **ids)))
			break;
		memcpy((*ids)[(*n)++], id, KEYSVC_TENANT_LEN);
	}
	closedir(d);
	return rc;
}

static int in_set(const uint8_t (*ids)[16], size_t n, const uint8_t *id)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(ids[i], id, KEYSVC_TENANT_LEN) == 0)
			return 1;
	return 0;
}

static int write_marker(const char *tdir, uint32_t ver, int64_t when,
    const uint8_t *backup_id)
{
	char path[4096], buf[256], hex[2 * BACKUP_ID_LEN + 1];
	int n, rc;
	if (backup_id)
		n = snprintf(buf, sizeof buf, "version=%u\ntime=%lld\n"
		    "shredded_at_restore_of=%s\n", ver, (long long)when,
		    ar_hex(backup_id, BACKUP_ID_LEN, hex));
	else
		n = snprintf(buf, sizeof buf, "version=%u\ntime=%lld\n", ver,
		    (long long)when);
	if ((rc = ar_path(path, sizeof path, "%s/destroyed", tdir)))
		return rc;
	return ar_file_write_atomic(path, buf, (size_t)n, 0600);
}

static int tenant_mkdir(const char *stage, const uint8_t *id, char *tdir,
    size_t len)
{
	char hex[2 * KEYSVC_TENANT_LEN + 1];
	int rc;
	if ((rc = ar_path(tdir, len, "%s/tenants/%s", stage,
	    ar_hex(id, KEYSVC_TENANT_LEN, hex))))
		return rc;
	return mkdir(tdir, 0700) < 0 ? ar_status_from_errno(errno) : 0;
}

/* Write the store into stage (kek last).  shred: ids that stay shredded. */
static int stage_write(const char *stage, const struct snap *s,
    const uint8_t *kek, const struct restore_opts *o, const struct header *h,
    const uint8_t (*shred)[16], size_t nshred, struct restore_summary *sum,
    char *err, size_t errlen)
{
	char path[4096], tdir[4096], pkhex[2 * KEYSVC_PK_LEN + 2];
	int64_t now = ar_now();
	int rc;

	if ((rc = ar_path(path, sizeof path, "%s/tenants", stage)))
		return rc;
	if (mkdir(path, 0700) < 0)
		goto io;
	for (size_t i = 0; i < s->n; i++) {
		const struct tenant_rec *t = &s->t[i];
		if ((rc = tenant_mkdir(stage, t->id, tdir, sizeof tdir)))
			goto io;
		if (t->destroyed) {
			rc = write_marker(tdir, t->mver, t->mtime, NULL);
			sum->kept_destroyed++;
		} else if (in_set(shred, nshred, t->id)) {
			uint32_t v = 0;
			for (size_t j = 0; j < t->nkeys; j++)
				if (t->keys[j].version > v)
					v = t->keys[j].version;
			rc = write_marker(tdir, v, now, h->id);
			sum->shredded_now++;
		} else {
			for (size_t j = 0; j < t->nkeys && rc == 0; j++) {
				if ((rc = ar_path(path, sizeof path,
				    "%s/v%u.key", tdir, t->keys[j].version)))
					break;
				rc = ar_file_write_atomic(path, t->keys[j].blob,
				    t->keys[j].len, 0600);
			}
			sum->tenants++;
			sum->keys += (unsigned)t->nkeys;
		}
		if (rc)
			goto io;
	}
	for (size_t i = 0; i < nshred; i++) {
		int known = 0;
		for (size_t j = 0; j < s->n && !known; j++)
			known = memcmp(s->t[j].id, shred[i],
			    KEYSVC_TENANT_LEN) == 0;
		if (known)
			continue;
		if ((rc = tenant_mkdir(stage, shred[i], tdir, sizeof tdir)) ||
		    (rc = write_marker(tdir, 0, now, h->id)))
			goto io;
		sum->marked++;
	}
	if ((rc = ar_path(path, sizeof path, "%s/tenants", stage)) ||
	    (rc = ar_fsync_dir(path)))
		goto io;
	ar_hex(h->pk, KEYSVC_PK_LEN, pkhex);
	strcat(pkhex, "\n");
	if ((rc = ar_path(path, sizeof path, "%s/signing.key", stage)) ||
	    (rc = ar_file_write_atomic(path, s->sig, s->siglen, 0600)) ||
	    (rc = ar_path(path, sizeof path, "%s/signing.pub", stage)) ||
	    (rc = ar_file_write_atomic(path, pkhex, strlen(pkhex), 0644)))
		goto io;
	/* the kek last: without it the daemon refuses the directory */
	if ((rc = keystore_kek_write(stage, kek, o->kek_pass, o->kek_passlen,
	    o->cost)))
		goto io;
	return 0;
io:
	if (rc == 0)
		rc = ar_status_from_errno(errno);
	set_err(err, errlen, "cannot write the restored key store in %s: %s",
	    stage, ar_strerror(rc));
	return rc;
}

/* Open the staged store with the keystore code and check every key. */
static int stage_check(const char *stage, const struct snap *s,
    const struct restore_opts *o, const struct header *h,
    const uint8_t (*shred)[16], size_t nshred, char *err, size_t errlen)
{
	char e[512], hex[2 * KEYSVC_TENANT_LEN + 1];
	uint8_t pk[KEYSVC_PK_LEN], key[KEYSVC_KEY_LEN];
	keystore_t *ks = NULL;
	int rc, destroyed;
	uint32_t cur;

	e[0] = '\0';
	if ((rc = keystore_open(&ks, stage, o->kek_pass, o->kek_passlen, e,
	    sizeof e))) {
		set_err(err, errlen, "the restored key store does not open: "
		    "%s", e);
		return rc;
	}
	keystore_public_key(ks, pk);
	if (sodium_memcmp(pk, h->pk, KEYSVC_PK_LEN) != 0) {
		set_err(err, errlen, "the restored signing key does not match "
		    "the public key the backup names");
		rc = AR_ESIG;
		goto out;
	}
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		const struct tenant_rec *t = &s->t[i];
		ar_hex(t->id, KEYSVC_TENANT_LEN, hex);
		if (t->destroyed || in_set(shred, nshred, t->id)) {
			rc = keystore_tenant_info(ks, t->id, &cur, &destroyed);
			if (rc == 0 && !destroyed)
				rc = AR_ECORRUPT;
			if (rc)
				set_err(err, errlen, "tenant %s: the restored "
				    "store does not report it destroyed", hex);
			continue;
		}
		for (size_t j = 0; j < t->nkeys && rc == 0; j++) {
			rc = keystore_derive(ks, t->id, t->keys[j].version,
			    (const unsigned char *)"restore-check", 13, key);
			sodium_memzero(key, sizeof key);
			if (rc)
				set_err(err, errlen, "tenant %s key version %u "
				    "does not open with the restored KEK: %s",
				    hex, t->keys[j].version, ar_strerror(rc));
		}
	}
out:
	keystore_close(ks);
	return rc;
}

/* --- restore ----------------------------------------------------------- */

int restore_run(const struct restore_opts *o, struct restore_summary *sum,
    char *err, size_t errlen)
{
	char dir[4096], parent[4096], stage[4096], hex[2 * KEYSVC_PK_LEN + 1],
	    hex2[2 * KEYSVC_PK_LEN + 1];
	unsigned char *file = NULL;
	uint8_t *bk = NULL, *payload = NULL, *kek = NULL;
	uint8_t (*shred)[16] = NULL;
	size_t flen = 0, plen, nshred = 0, capshred = 0, capalive = 0;
	struct header h;
	struct snap s;
	struct stat st;
	int rc, lockfd = -1, have_dir, have_store = 0, staged = 0;
	char *slash;

	memset(&s, 0, sizeof s);
	memset(sum, 0, sizeof *sum);
	if (!!o->backup_pass == (o->nshares > 0)) {
		set_err(err, errlen, "give either the backup passphrase or "
		    "the share files");
		return AR_EINVAL;
	}
	if (!o->shred_list == !o->no_shred_list) {
		set_err(err, errlen, "give the list of shredded tenants (an "
		    "empty list when there are none), or say there is none");
		return AR_EINVAL;
	}
	ar_strlcpy(dir, o->dir, sizeof dir);
	for (size_t l = strlen(dir); l > 1 && dir[l - 1] == '/'; )
		dir[--l] = '\0';
	ar_strlcpy(parent, dir, sizeof parent);
	slash = strrchr(parent, '/');
	if (!slash)
		ar_strlcpy(parent, ".", sizeof parent);
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';

	/* open the backup */
	if ((rc = ar_file_read(o->in, FILE_MAX, &file, &flen))) {
		set_err(err, errlen, "cannot read %s: %s", o->in,
		    ar_strerror(rc));
		return rc;
	}
	if ((rc = bkf_header_parse(file, flen, &h, o->in, err, errlen)))
		goto out;
	memcpy(sum->backup.id, h.id, BACKUP_ID_LEN);
	sum->backup.created = h.created;
	memcpy(sum->backup.pk, h.pk, KEYSVC_PK_LEN);
	sum->backup.has_pass = (h.flags & FLAG_PASS) != 0;
	sum->backup.m = h.m;
	sum->backup.n = h.n;
	if (o->expect_pk && sodium_memcmp(o->expect_pk, h.pk,
	    KEYSVC_PK_LEN) != 0) {
		set_err(err, errlen, "%s holds signing key %s, not the "
		    "expected %s", o->in, ar_hex(h.pk, KEYSVC_PK_LEN, hex),
		    ar_hex(o->expect_pk, KEYSVC_PK_LEN, hex2));
		rc = AR_ESIG;
		goto out;
	}
	rc = AR_ENOMEM;
	if (!(bk = sodium_malloc(KEY_LEN)) || !(kek = sodium_malloc(KEY_LEN)))
		goto out;
	if (o->nshares)
		rc = bk_from_shares(o, file, &h, bk, err, errlen);
	else if (!(h.flags & FLAG_PASS)) {
		set_err(err, errlen, "%s was made without a passphrase: give "
		    "%u of its %u share files", o->in, h.m, h.n);
		rc = AR_EINVAL;
	} else
		rc = bkf_slot_open(file, &h, o->backup_pass, o->backup_passlen,
		    bk, err, errlen);
	if (rc)
		goto out;
	plen = h.ctlen - TAG_LEN;
	rc = AR_ENOMEM;
	if (!(payload = sodium_malloc(plen ? plen : 1)))
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(payload, NULL, NULL,
	    file + h.len + NONCE_LEN, h.ctlen, file, h.len, file + h.len,
	    bk) != 0) {
		set_err(err, errlen, "%s does not open with this key: the file "
		    "is damaged or was altered", o->in);
		rc = AR_ECORRUPT;
		goto out;
	}
	rc = bkf_payload_parse(payload, plen, &s, kek);
	sodium_free(payload);
	payload = NULL;
	if (rc) {
		set_err(err, errlen, "%s: the decrypted content is malformed "
		    "(%s)", o->in, ar_strerror(rc));
		goto out;
	}
	sum->backup.kek_sealed = s.kek_sealed;
	for (size_t i = 0; i < s.n; i++) {
		if (s.t[i].destroyed)
			sum->backup.destroyed++;
		else
			sum->backup.tenants++;
		sum->backup.keys += (unsigned)s.t[i].nkeys;
	}
	if (s.kek_sealed && !o->kek_pass && !o->unsealed) {
		set_err(err, errlen, "the backed-up KEK was sealed with a "
		    "passphrase: give one for the restored kek with "
		    "--passphrase-fd N (or --unsealed to write it unsealed)");
		rc = AR_EPERM;
		goto out;
	}

	/* the target: no daemon on it, no key store unless forced */
	have_dir = stat(dir, &st) == 0;
	if (have_dir && !S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "%s exists and is not a directory", dir);
		rc = AR_EEXIST;
		goto out;
	}
	if (have_dir) {
		char lock[4096];
		if ((rc = ar_path(lock, sizeof lock, "%s/keysvc.lock", dir)))
			goto out;
		lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
			set_err(err, errlen, "archive-keysvc is running on %s "
			    "(or %s cannot be locked): stop it before "
			    "restoring", dir, lock);
			rc = AR_EAGAIN;
			goto out;
		}
		have_store = keystore_probe(dir) != AR_ENOENT;
		if (have_store && !o->force) {
			set_err(err, errlen, "%s holds a key store; restore "
			    "does not replace one unless told (--force keeps "
			    "the old one as %s.replaced-<time>)", dir, dir);
			rc = AR_EEXIST;
			goto out;
		}
	} else if ((rc = ar_mkdirs(parent, 0700))) {
		set_err(err, errlen, "cannot create %s: %s", parent,
		    ar_strerror(rc));
		goto out;
	}

	/* what stays shredded: the list, and what the replaced store
	 * destroyed (a restore never brings a destroyed key back) */
	if (o->nshredded) {
		capshred = nshred = o->nshredded;
		if (!(shred = malloc(nshred * sizeof *shred))) {
			rc = AR_ENOMEM;
			goto out;
		}
		memcpy(shred, o->shredded, nshred * sizeof *shred);
	}
	if (have_store && (rc = live_destroyed(dir, &shred, &nshred,
	    &capshred))) {
		set_err(err, errlen, "cannot read the destroyed markers of %s: "
		    "%s", dir, ar_strerror(rc));
		goto out;
	}

	if ((rc = ar_path(stage, sizeof stage, "%s.restore-%d", dir,
	    (int)getpid())))
		goto out;
	if (mkdir(stage, 0700) < 0) {
		rc = ar_status_from_errno(errno);
		set_err(err, errlen, "cannot create %s: %s", stage,
		    strerror(errno));
		goto out;
	}
	staged = 1;
	if ((rc = stage_write(stage, &s, kek, o, &h,
	    (const uint8_t (*)[16])shred, nshred, sum, err, errlen)) ||
	    (rc = ar_fsync_dir(stage)) ||
	    (rc = stage_check(stage, &s, o, &h, (const uint8_t (*)[16])shred,
	    nshred, err, errlen)))
		goto out;

	/* swap it in */
	if (!have_dir) {
		if (rename(stage, dir) < 0) {
			rc = ar_status_from_errno(errno);
			set_err(err, errlen, "cannot rename %s to %s: %s", stage,
			    dir, strerror(errno));
			goto out;
		}
	} else {
		if (renameat2(AT_FDCWD, stage, AT_FDCWD, dir,
		    RENAME_EXCHANGE) < 0) {
			rc = ar_status_from_errno(errno);
			set_err(err, errlen, "cannot swap %s into %s: %s (the "
			    "parent directory must be on one file system and "
			    "%s must not be a mount point)", stage, dir,
			    strerror(errno), dir);
			goto out;
		}
		/* stage now names the old directory */
		if (have_store) {
			if ((rc = ar_path(sum->replaced, sizeof sum->replaced,
			    "%s.replaced-%lld", dir, (long long)ar_now())) ||
			    rename(stage, sum->replaced) < 0) {
				if (!rc)
					rc = ar_status_from_errno(errno);
				set_err(err, errlen, "restored, but the old key "
				    "store is left at %s", stage);
				staged = 0;
				goto out;
			}
		} else {
			rm_tree(stage);   /* it held no key material */
		}
	}
	staged = 0;
	if ((rc = ar_fsync_dir(parent)))
		goto out;
	if (o->no_shred_list) {
		for (size_t i = 0; i < s.n; i++) {
			if (s.t[i].destroyed || in_set(
			    (const uint8_t (*)[16])shred, nshred, s.t[i].id))
				continue;
			if ((rc = ar_grow((void **)&sum->alive, &capalive,
			    sum->nalive, sizeof *sum->alive)))
				goto out;
			memcpy(sum->alive[sum->nalive++], s.t[i].id,
			    KEYSVC_TENANT_LEN);
		}
	}
	ar_log(AR_LOG_INFO, "op=restore dir=%s file=%s tenants=%u keys=%u "
	    "kept_destroyed=%u shredded_now=%u marked=%u shred_list=%s "
	    "replaced=%s status=ok", dir, o->in, sum->tenants, sum->keys,
	    sum->kept_destroyed, sum->shredded_now, sum->marked,
	    o->no_shred_list ? "none" : "given",
	    sum->replaced[0] ? sum->replaced : "-");
out:
	if (staged)
		rm_tree(stage);
	if (lockfd >= 0)
		close(lockfd);
	if (payload)
		sodium_free(payload);
	if (kek)
		sodium_free(kek);
	if (bk)
		sodium_free(bk);
	free(shred);
	free(file);
	bkf_snap_free(&s);
	if (rc)
		restore_summary_free(sum);
	return rc;
}

void restore_summary_free(struct restore_summary *sum)
{
	free(sum->alive);
	sum->alive = NULL;
	sum->nalive = 0;
}
