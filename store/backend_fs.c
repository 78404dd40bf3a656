/*
 * backend_fs.c - the "fs" object store backend: one read-only file per
 * object under dir/<tenant hex>/<id hex, 2 chars>/<id hex>.
 *
 * Write order (STYLE.md 7): temp file in dir/tmp/ (O_EXCL, 0600) -> write
 * -> fchmod 0400 -> fsync -> close -> renameat2(RENAME_NOREPLACE) (or
 * link + unlink where the filesystem lacks it) so an existing object is
 * never replaced -> the directory is remembered as dirty and fsync'd once
 * by store_backend_sync().  A failure removes the temp file; nothing
 * partial is ever visible under a final name.
 */
#include "store/backend_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "store/seal_format.h"

#define HEX_TENANT_LEN (2 * STORE_TENANT_LEN)
#define HEX_ID_LEN     (2 * STORE_ID_LEN)

typedef struct fs_backend {
	store_backend_t base;          /* first */
	char root[PATH_MAX];
	char tmpdir[PATH_MAX];
	pthread_mutex_t dirty_lock;    /* guards dirty[] */
	pthread_mutex_t sync_lock;     /* one sync at a time */
	char **dirty;
	size_t ndirty, cap;
} fs_backend_t;

typedef struct fs_put {
	store_put_t base;              /* first */
	int fd;
	int status;                    /* sticky write error */
	char tmp[PATH_MAX];
	char tdir[PATH_MAX];
	char sdir[PATH_MAX];
	char final[PATH_MAX];
} fs_put_t;

typedef struct fs_get {
	store_get_t base;              /* first */
	int fd;
	uint64_t size;
} fs_get_t;

static fs_backend_t *fsb(store_backend_t *be) { return (fs_backend_t *)be; }

static int fs_errno(store_backend_t *be, int err, const char *what,
    const char *path)
{
	return store_be_fail(be, ar_status_from_errno(err), "%s %s: %s", what,
	    path, strerror(err));
}

/*
 * dir/<tenant>, dir/<tenant>/<id 0..3>/<id 4..7>, .../<id>; any may be
 * NULL.  Ids start with a 48-bit millisecond timestamp, so the first level
 * spans about 50 days and a leaf about 65 seconds: the objects of one
 * batch share a leaf, and one directory fsync makes them all durable.
 */
static int fs_paths(fs_backend_t *fb, const uint8_t *tenant, const uint8_t *id,
    char *tdir, char *sdir, char *final)
{
	char th[HEX_TENANT_LEN + 1], ih[HEX_ID_LEN + 1];
	int rc = 0;

	ar_hex(tenant, STORE_TENANT_LEN, th);
	if (tdir)
		rc = ar_path(tdir, PATH_MAX, "%s/%s", fb->root, th);
	if (id) {
		ar_hex(id, STORE_ID_LEN, ih);
		if (!rc && sdir)
			rc = ar_path(sdir, PATH_MAX, "%s/%s/%.4s/%.4s",
			    fb->root, th, ih, ih + 4);
		if (!rc && final)
			rc = ar_path(final, PATH_MAX, "%s/%s/%.4s/%.4s/%s",
			    fb->root, th, ih, ih + 4, ih);
	}
	if (rc)
		return store_be_fail(&fb->base, rc, "path too long under %s",
		    fb->root);
	return 0;
}

/* Remember dir for the next store_backend_sync(). */
static int fs_mark_dirty(fs_backend_t *fb, const char *dir)
{
	int rc = 0;

	pthread_mutex_lock(&fb->dirty_lock);
	for (size_t i = 0; i < fb->ndirty; i++)
		if (strcmp(fb->dirty[i], dir) == 0)
			goto out;
	if ((rc = ar_grow((void **)&fb->dirty, &fb->cap, fb->ndirty,
	    sizeof *fb->dirty)))
		goto out;
	if (!(fb->dirty[fb->ndirty] = strdup(dir))) {
		rc = AR_ENOMEM;
		goto out;
	}
	fb->ndirty++;
out:
	pthread_mutex_unlock(&fb->dirty_lock);
	if (rc)
		store_be_fail(&fb->base, rc, "out of memory");
	return rc;
}

/* mkdir one level; *created set when it did not exist. */
static int fs_mkdir(fs_backend_t *fb, const char *path, int *created)
{
	*created = 0;
	if (mkdir(path, 0700) == 0) {
		*created = 1;
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	return fs_errno(&fb->base, errno, "mkdir", path);
}

/* --- put ---------------------------------------------------------------- */

static int fs_put_begin(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, store_put_t **out)
{
	fs_backend_t *fb = fsb(be);
	fs_put_t *p;
	struct stat st;
	uint8_t rnd[8];
	char ih[HEX_ID_LEN + 1], rh[17];
	int rc;

	if (!(p = calloc(1, sizeof *p)))
		return store_be_fail(be, AR_ENOMEM, "out of memory");
	p->base.be = be;
	p->fd = -1;
	if ((rc = fs_paths(fb, tenant, id, p->tdir, p->sdir, p->final)))
		goto fail;
	if (lstat(p->final, &st) == 0) {
		rc = store_be_fail(be, AR_EEXIST, "object %s already exists",
		    p->final);
		goto fail;
	}
	if (errno != ENOENT && errno != ENOTDIR) {
		rc = fs_errno(be, errno, "stat", p->final);
		goto fail;
	}
	randombytes_buf(rnd, sizeof rnd);
	ar_hex(id, STORE_ID_LEN, ih);
	ar_hex(rnd, sizeof rnd, rh);
	if ((rc = ar_path(p->tmp, sizeof p->tmp, "%s/%s.%s.tmp", fb->tmpdir,
	    ih, rh))) {
		rc = store_be_fail(be, rc, "path too long under %s",
		    fb->tmpdir);
		goto fail;
	}
	p->fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (p->fd < 0) {
		rc = fs_errno(be, errno, "create", p->tmp);
		goto fail;
	}
	*out = &p->base;
	return 0;
fail:
	free(p);
	return rc;
}

static int fs_put_write(store_put_t *put, const void *buf, size_t len)
{
	fs_put_t *p = (fs_put_t *)put;
	int rc;

	if (p->status)
		return p->status;
	if ((rc = ar_write_full(p->fd, buf, len))) {
		int err = errno;
		p->status = store_be_fail(put->be, rc, "write %s: %s", p->tmp,
		    strerror(err));
	}
	return p->status;
}

static void fs_put_free(fs_put_t *p, int remove_tmp)
{
	if (p->fd >= 0)
		close(p->fd);
	if (remove_tmp)
		unlink(p->tmp);
	free(p);
}

/* Move tmp to final without ever replacing an existing file. */
/* Rename the temp file to its final name, never replacing one.  quiet:
 * a missing directory is AR_ENOENT with no error recorded. */
static int fs_publish(fs_backend_t *fb, fs_put_t *p, int quiet)
{
	if (renameat2(AT_FDCWD, p->tmp, AT_FDCWD, p->final,
	    RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		goto fail;
	/* filesystem without RENAME_NOREPLACE: link() refuses EEXIST too */
	if (link(p->tmp, p->final) < 0)
		goto fail;
	if (unlink(p->tmp) < 0)
		ar_log(AR_LOG_WARN, "unlink %s: %s", p->tmp, strerror(errno));
	return 0;
fail:
	if (errno == EEXIST)
		return store_be_fail(&fb->base, AR_EEXIST,
		    "object %s already exists", p->final);
	if (errno == ENOENT && quiet)
		return AR_ENOENT;
	return fs_errno(&fb->base, errno, "publish", p->final);
}

/* Create the tenant, middle and leaf directories of p (each one new is
 * recorded in its parent's dirty list). */
static int fs_make_dirs(fs_backend_t *fb, fs_put_t *p)
{
	char mdir[PATH_MAX];
	int rc, created;

	if ((rc = fs_mkdir(fb, p->tdir, &created)))
		return rc;
	if (created && (rc = fs_mark_dirty(fb, fb->root)))
		return rc;
	/* the middle level: sdir without its last component */
	ar_strlcpy(mdir, p->sdir, sizeof mdir);
	*strrchr(mdir, '/') = '\0';
	if ((rc = fs_mkdir(fb, mdir, &created)))
		return rc;
	if (created && (rc = fs_mark_dirty(fb, p->tdir)))
		return rc;
	if ((rc = fs_mkdir(fb, p->sdir, &created)))
		return rc;
	if (created && (rc = fs_mark_dirty(fb, mdir)))
		return rc;
	return 0;
}

/* Written in full and made read-only; durable not yet. */
static int fs_put_seal(fs_put_t *p)
{
	if (p->status)
		return p->status;
	if (fchmod(p->fd, 0400) < 0)
		return fs_errno(p->base.be, errno, "chmod", p->tmp);
	return 0;
}

/* Close a durable temp file and publish it under its final name; frees
 * p (removing the temp file on failure). */
static int fs_put_publish(fs_put_t *p)
{
	fs_backend_t *fb = fsb(p->base.be);
	int rc, fd = p->fd;

	p->fd = -1;
	if (close(fd) < 0) {
		rc = fs_errno(&fb->base, errno, "close", p->tmp);
		goto fail;
	}
	/* the directories exist but for the first object of a leaf: try
	 * the rename first, create them only when it says ENOENT */
	if ((rc = fs_publish(fb, p, 1)) == AR_ENOENT &&
	    (rc = fs_make_dirs(fb, p)) == 0)
		rc = fs_publish(fb, p, 0);
	if (rc)
		goto fail;
	rc = fs_mark_dirty(fb, p->sdir);
	fs_put_free(p, 0);
	return rc;
fail:
	fs_put_free(p, 1);
	return rc;
}

static int fs_put_commit(store_put_t *put, int64_t retain_until)
{
	fs_put_t *p = (fs_put_t *)put;
	int rc;

	(void)retain_until;   /* the fs backend reads it from the header */
	if ((rc = fs_put_seal(p)) == 0 && fsync(p->fd) < 0)
		rc = fs_errno(put->be, errno, "fsync", p->tmp);
	if (rc) {
		fs_put_free(p, 1);
		return rc;
	}
	return fs_put_publish(p);
}

/*
 * n puts made durable by one syncfs(2) instead of an fsync each: on a
 * filesystem without a journal every fsync of a new file writes its data,
 * its inode and its directory and flushes the device cache, one file at a
 * time.  syncfs writes the last metadata after its own cache flush, so an
 * fsync follows it (one more flush) before anything is published: as with
 * fsync, no final name ever points at data not yet on disk.
 */
static int fs_put_commit_many(store_put_t **puts, size_t n,
    const int64_t *retain_until, int *rcs)
{
	int fd = -1, first = 0;

	if (n == 1)
		return rcs[0] = fs_put_commit(puts[0], retain_until[0]);
	for (size_t i = 0; i < n; i++)
		if ((rcs[i] = fs_put_seal((fs_put_t *)puts[i])) == 0 && fd < 0)
			fd = ((fs_put_t *)puts[i])->fd;
	if (fd >= 0 && (syncfs(fd) < 0 || fsync(fd) < 0)) {
		int rc = fs_errno(puts[0]->be, errno, "syncfs",
		    fsb(puts[0]->be)->root);
		for (size_t i = 0; i < n; i++)
			if (rcs[i] == 0)
				rcs[i] = rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (rcs[i] == 0)
			rcs[i] = fs_put_publish((fs_put_t *)puts[i]);
		else
			fs_put_free((fs_put_t *)puts[i], 1);
		if (rcs[i] && !first)
			first = rcs[i];
	}
	return first;
}

static void fs_put_abort(store_put_t *put)
{
	fs_put_free((fs_put_t *)put, 1);
}

static int fs_sync(store_backend_t *be)
{
	fs_backend_t *fb = fsb(be);
	char **list;
	size_t n, kept = 0;
	int rc = 0;

	pthread_mutex_lock(&fb->sync_lock);
	pthread_mutex_lock(&fb->dirty_lock);
	list = fb->dirty;
	n = fb->ndirty;
	fb->dirty = NULL;
	fb->ndirty = fb->cap = 0;
	pthread_mutex_unlock(&fb->dirty_lock);

	for (size_t i = 0; i < n; i++) {
		int r = ar_fsync_dir(list[i]);
		if (r == 0) {
			free(list[i]);
			continue;
		}
		if (rc == 0)
			rc = store_be_fail(be, r, "fsync directory %s: %s",
			    list[i], ar_strerror(r));
		list[kept++] = list[i];
	}
	/* put the directories that failed back for the next sync */
	for (size_t i = 0; i < kept; i++) {
		if (fs_mark_dirty(fb, list[i]) && rc == 0)
			rc = AR_ENOMEM;
		free(list[i]);
	}
	free(list);
	pthread_mutex_unlock(&fb->sync_lock);
	return rc;
}

/* --- get ---------------------------------------------------------------- */

static int fs_get_open(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, store_get_t **out)
{
	char final[PATH_MAX];
	struct stat st;
	fs_get_t *g;
	int rc, fd;

	if ((rc = fs_paths(fsb(be), tenant, id, NULL, NULL, final)))
		return rc;
	if ((fd = open(final, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return store_be_fail(be, AR_ENOENT, "no object %s",
			    final);
		return fs_errno(be, errno, "open", final);
	}
	if (fstat(fd, &st) < 0) {
		rc = fs_errno(be, errno, "stat", final);
		close(fd);
		return rc;
	}
	if (!(g = calloc(1, sizeof *g))) {
		close(fd);
		return store_be_fail(be, AR_ENOMEM, "out of memory");
	}
	g->base.be = be;
	g->fd = fd;
	g->size = (uint64_t)st.st_size;
	*out = &g->base;
	return 0;
}

static uint64_t fs_get_size(const store_get_t *get)
{
	return ((const fs_get_t *)get)->size;
}

static int fs_get_pread(store_get_t *get, void *buf, size_t len, uint64_t off,
    size_t *got)
{
	fs_get_t *g = (fs_get_t *)get;
	unsigned char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(g->fd, p + done, len - done,
		    (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*got = done;
			return fs_errno(get->be, errno, "read", "object");
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static void fs_get_close(store_get_t *get)
{
	fs_get_t *g = (fs_get_t *)get;
	close(g->fd);
	free(g);
}

/* --- delete, walk, drop --------------------------------------------------- */

static int fs_delete(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, int deferred)
{
	fs_backend_t *fb = fsb(be);
	char sdir[PATH_MAX], final[PATH_MAX], when[32], why[160];
	unsigned char hdr[SEAL_HEADER_LEN];
	seal_header_t h;
	size_t got;
	int rc, fd;

	if ((rc = fs_paths(fb, tenant, id, NULL, sdir, final)))
		return rc;
	if ((fd = open(final, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return store_be_fail(be, AR_ENOENT, "no object %s",
			    final);
		return fs_errno(be, errno, "open", final);
	}
	rc = ar_read_full(fd, hdr, sizeof hdr, &got);
	close(fd);
	if (rc && rc != AR_ETRUNC)
		return fs_errno(be, errno, "read", final);
	/* an object whose retain-until cannot be read is never deleted */
	if ((rc = seal_header_parse(hdr, got, &h, why, sizeof why)))
		return store_be_fail(be, rc, "%s: %s; not deleted", final,
		    why);
	if (memcmp(h.tenant, tenant, STORE_TENANT_LEN) != 0 ||
	    memcmp(h.id, id, STORE_ID_LEN) != 0)
		return store_be_fail(be, AR_ECORRUPT, "%s: header names "
		    "another object; not deleted", final);
	if (ar_now() < h.retain_until)
		return store_be_fail(be, AR_ERETAINED, "%s retained until %s",
		    final, ar_time_fmt(h.retain_until, when, sizeof when));
	if (unlink(final) < 0)
		return fs_errno(be, errno, "unlink", final);
	if (deferred)
		return fs_mark_dirty(fb, sdir);
	if ((rc = ar_fsync_dir(sdir)))
		return store_be_fail(be, rc, "fsync directory %s: %s", sdir,
		    ar_strerror(rc));
	return 0;
}

static int is_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[len] == '\0';
}

/* Call cb for every object file in leaf directory dir whose name starts
 * with prefix (the 8 hex digits of its two parent directories). */
static int fs_walk_leaf(fs_backend_t *fb, const uint8_t *tenant,
    const char *dir, const char *prefix, store_backend_walk_cb cb, void *arg)
{
	uint8_t id[STORE_ID_LEN];
	struct dirent *fe;
	DIR *sd;
	int rc = 0;

	if (!(sd = opendir(dir)))
		return fs_errno(&fb->base, errno, "opendir", dir);
	while (rc == 0 && (errno = 0, fe = readdir(sd))) {
		if (!is_hex(fe->d_name, HEX_ID_LEN) ||
		    strncmp(fe->d_name, prefix, 8) != 0 ||
		    ar_unhex(fe->d_name, id, sizeof id))
			continue;
		rc = cb(arg, tenant, id);
	}
	if (rc == 0 && errno)
		rc = fs_errno(&fb->base, errno, "readdir", dir);
	closedir(sd);
	return rc;
}

static int fs_walk_tenant(fs_backend_t *fb, const char *th,
    store_backend_walk_cb cb, void *arg)
{
	uint8_t tenant[STORE_TENANT_LEN];
	char tdir[PATH_MAX], mdir[PATH_MAX], sdir[PATH_MAX], prefix[9];
	struct dirent *de, *me;
	DIR *td, *md;
	int rc = 0;

	if (ar_unhex(th, tenant, sizeof tenant) ||
	    ar_path(tdir, sizeof tdir, "%s/%s", fb->root, th))
		return 0;
	if (!(td = opendir(tdir))) {
		if (errno == ENOENT)
			return 0;
		return fs_errno(&fb->base, errno, "opendir", tdir);
	}
	while (rc == 0 && (errno = 0, de = readdir(td))) {
		if (!is_hex(de->d_name, 4) ||
		    ar_path(mdir, sizeof mdir, "%s/%s", tdir, de->d_name))
			continue;
		if (!(md = opendir(mdir))) {
			rc = fs_errno(&fb->base, errno, "opendir", mdir);
			break;
		}
		while (rc == 0 && (errno = 0, me = readdir(md))) {
			if (!is_hex(me->d_name, 4) || ar_path(sdir, sizeof sdir,
			    "%s/%s", mdir, me->d_name))
				continue;
			memcpy(prefix, de->d_name, 4);
			memcpy(prefix + 4, me->d_name, 4);
			prefix[8] = '\0';
			rc = fs_walk_leaf(fb, tenant, sdir, prefix, cb, arg);
		}
		if (rc == 0 && errno)
			rc = fs_errno(&fb->base, errno, "readdir", mdir);
		closedir(md);
	}
	if (rc == 0 && errno)
		rc = fs_errno(&fb->base, errno, "readdir", tdir);
	closedir(td);
	return rc;
}

static int fs_walk(store_backend_t *be, const uint8_t *tenant,
    store_backend_walk_cb cb, void *arg)
{
	fs_backend_t *fb = fsb(be);
	char th[HEX_TENANT_LEN + 1];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (tenant)
		return fs_walk_tenant(fb, ar_hex(tenant, STORE_TENANT_LEN, th),
		    cb, arg);
	if (!(d = opendir(fb->root)))
		return fs_errno(be, errno, "opendir", fb->root);
	while (rc == 0 && (errno = 0, de = readdir(d))) {
		if (is_hex(de->d_name, HEX_TENANT_LEN))   /* skips tmp/ */
			rc = fs_walk_tenant(fb, de->d_name, cb, arg);
	}
	if (rc == 0 && errno)
		rc = fs_errno(be, errno, "readdir", fb->root);
	closedir(d);
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

static int fs_drop_tenant(store_backend_t *be, const uint8_t *tenant)
{
	fs_backend_t *fb = fsb(be);
	char tdir[PATH_MAX], gone[PATH_MAX], th[HEX_TENANT_LEN + 1], rh[17];
	uint8_t rnd[8];
	int rc;

	if ((rc = fs_paths(fb, tenant, NULL, tdir, NULL, NULL)))
		return rc;
	randombytes_buf(rnd, sizeof rnd);
	if (ar_path(gone, sizeof gone, "%s/drop.%s.%s", fb->tmpdir,
	    ar_hex(tenant, STORE_TENANT_LEN, th), ar_hex(rnd, 8, rh)))
		return store_be_fail(be, AR_ETOOBIG, "path too long");
	/* one atomic step makes the whole tenant disappear */
	if (rename(tdir, gone) < 0) {
		if (errno == ENOENT)
			return 0;   /* nothing stored, or already dropped */
		return fs_errno(be, errno, "rename", tdir);
	}
	if ((rc = ar_fsync_dir(fb->root)))
		return store_be_fail(be, rc, "fsync directory %s: %s",
		    fb->root, ar_strerror(rc));
	if (nftw(gone, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return fs_errno(be, errno, "remove", gone);
	return 0;
}

static void fs_close(store_backend_t *be)
{
	fs_backend_t *fb = fsb(be);

	for (size_t i = 0; i < fb->ndirty; i++)
		free(fb->dirty[i]);
	free(fb->dirty);
	pthread_mutex_destroy(&fb->dirty_lock);
	pthread_mutex_destroy(&fb->sync_lock);
	store_be_fini(be);
	free(fb);
}

static const struct store_backend_ops fs_ops = {
	.name = "fs",
	.put_begin = fs_put_begin,
	.put_write = fs_put_write,
	.put_commit = fs_put_commit,
	.put_commit_many = fs_put_commit_many,
	.put_abort = fs_put_abort,
	.sync = fs_sync,
	.get_open = fs_get_open,
	.get_size = fs_get_size,
	.get_pread = fs_get_pread,
	.get_close = fs_get_close,
	.del = fs_delete,
	.walk = fs_walk,
	.drop_tenant = fs_drop_tenant,
	.close = fs_close,
};

int store_backend_open_fs(store_backend_t **out, const char *dir)
{
	fs_backend_t *fb;
	int rc;

	if ((rc = store_be_open_args(out, dir)))
		return rc;
	if (!(fb = calloc(1, sizeof *fb)))
		return AR_ENOMEM;
	if (ar_path(fb->root, sizeof fb->root, "%s", dir) ||
	    ar_path(fb->tmpdir, sizeof fb->tmpdir, "%s/tmp", dir)) {
		free(fb);
		return AR_ETOOBIG;
	}
	if ((rc = ar_mkdirs(fb->root, 0700)) ||
	    (rc = ar_mkdirs(fb->tmpdir, 0700))) {
		ar_log(AR_LOG_ERR, "store dir=%s status=%s", dir,
		    ar_strerror(rc));
		free(fb);
		return rc;
	}
	store_be_init(&fb->base, &fs_ops);
	pthread_mutex_init(&fb->dirty_lock, NULL);
	pthread_mutex_init(&fb->sync_lock, NULL);
	*out = &fb->base;
	return 0;
}
