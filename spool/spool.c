/*
 * spool.c - the durable encrypted spool (spool.h, docs/formats.md "Spool").
 *
 * Object names: an entry id is a store object id whose last byte is 0; the
 * entry's objects are named (tenant, id with last byte = kind):
 *   0x00 the entry: message bytes, envelope JSON, 8-byte trailer
 *        ("AREV" + envelope length, 32-bit big-endian);
 *   0x01 reserved (the envelope object of spool format 1);
 *   0x02 / 0x03 failure record (two slots, so a new record is durable
 *        before the old one goes);
 *   0x04 / 0x05 state record of a stateful spool (two slots likewise).
 * The objects are records of the seg backend (store/backend_seg.c):
 * appended to shared segment files, so a message costs no file of its own
 * unless it is over 256 KiB.
 *
 * Durability (STYLE.md 7): store_seal_finish_many() seals the objects and
 * signs their manifests in one request, and the seg backend appends them
 * in one write and fdatasync()s the segment once (shared with the other
 * finishers whose records that fdatasync covered).  An entry is one
 * object, complete once committed.  The receiver's finishers hand every
 * message that arrived meanwhile to spool_put_finish_many (group commit).
 * Removal after the drain is not fsync'd: an entry a crash brings back is
 * replayed, and the catalog's receipts make the replay change nothing.
 *
 * Spools written before segments (a file per object in the fs backend's
 * layout under dir) are moved into segments when the spool is opened.
 */
#include "spool/spool_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "ar.h"

enum { K_MSG = 0, K_ENV_V1 = 1, K_FAIL0 = 2, K_FAIL1 = 3, K_STATE0 = 4,
	K_STATE1 = 5, K_COUNT = 6 };

#define TRAILER_LEN   8
static const char trailer_magic[4] = { 'A', 'R', 'E', 'V' };

#define SMALL_CHUNK  STORE_CHUNK_MIN   /* envelope and failure records */

struct spool {
	store_backend_t *be;
	keysvc_t *ks;
	char dir[PATH_MAX];
	int lock_fd;                    /* -1 when read-only */
	int rdonly;
	unsigned flags;                 /* SPOOL_STATEFUL */
	pthread_mutex_t mark_lock;      /* failure records */
	spool_queue_t q;                /* entries waiting to be drained */
};

struct spool_put {
	spool_t *sp;
	store_sealer_t *s;
	uint8_t tenant[SPOOL_TENANT_LEN];
	uint8_t id[SPOOL_ID_LEN];
	uint32_t key_version;
};

static __thread char errbuf[256];

const char *spool_errmsg(void)
{
	return errbuf[0] ? errbuf : "no error";
}

static int sp_fail(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int sp_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	return rc;
}

/* "id=... tenant=..." prefix of log lines. */
static const char *ids(const uint8_t *tenant, const uint8_t *id, char *buf,
    size_t len)
{
	char th[2 * SPOOL_TENANT_LEN + 1], ih[2 * SPOOL_ID_LEN + 1];
	snprintf(buf, len, "id=%s tenant=%s", ar_hex(id, SPOOL_ID_LEN, ih),
	    ar_hex(tenant, SPOOL_TENANT_LEN, th));
	return buf;
}

static void kind_id(uint8_t out[SPOOL_ID_LEN], const uint8_t *id, int kind)
{
	memcpy(out, id, SPOOL_ID_LEN);
	out[SPOOL_ID_LEN - 1] = (uint8_t)kind;
}

static uint64_t id_ms(const uint8_t *id)
{
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | id[i];
	return ms;
}

/* Arguments naming an entry; write: the call changes the spool. */
static int entry_args(const spool_t *sp, const uint8_t *tenant,
    const uint8_t *id, int write)
{
	if (!sp || !tenant || !id || id[SPOOL_ID_LEN - 1] != K_MSG)
		return sp_fail(AR_EINVAL, "no spool, or not a spool entry id");
	if (write && sp->rdonly)
		return sp_fail(AR_EPERM, "spool opened read-only");
	return 0;
}

/* Does object (tenant, id, kind) exist?  0, AR_ENOENT or another error. */
static int obj_exists(spool_t *sp, const uint8_t *tenant, const uint8_t *id,
    int kind, uint64_t *size)
{
	uint8_t oid[SPOOL_ID_LEN];
	store_get_t *g;
	int rc;

	kind_id(oid, id, kind);
	if ((rc = store_backend_get_open(sp->be, tenant, oid, &g)))
		return rc;
	if (size)
		*size = store_get_size(g);
	store_get_close(g);
	return 0;
}

/* The entry exists (its one object is complete once named): 0 or
 * AR_ENOENT. */
static int entry_complete(spool_t *sp, const uint8_t *tenant,
    const uint8_t *id)
{
	int rc = obj_exists(sp, tenant, id, K_MSG, NULL);
	if (rc)
		return sp_fail(rc, "%s", rc == AR_ENOENT ?
		    "no such spool entry" : store_backend_errmsg(sp->be));
	return 0;
}

/* Delete one object; absent is fine.  deferred: the removal is made
 * durable by the next store_backend_sync(), not now. */
static int obj_delete(spool_t *sp, const uint8_t *tenant, const uint8_t *id,
    int kind, int deferred)
{
	uint8_t oid[SPOOL_ID_LEN];
	int rc;

	kind_id(oid, id, kind);
	rc = deferred ? store_backend_delete_deferred(sp->be, tenant, oid) :
	    store_backend_delete(sp->be, tenant, oid);
	if (rc && rc != AR_ENOENT)
		return sp_fail(rc, "%s", store_backend_errmsg(sp->be));
	return rc;
}

/* Seal a small object (envelope, failure record) of kind for the entry and
 * commit it; the caller syncs. */
static int seal_small(spool_t *sp, const uint8_t *tenant, const uint8_t *id,
    int kind, uint32_t key_version, const void *data, size_t len)
{
	store_seal_params_t prm;
	store_sealer_t *s;
	int rc;

	memset(&prm, 0, sizeof prm);
	memcpy(prm.tenant, tenant, SPOOL_TENANT_LEN);
	kind_id(prm.id, id, kind);
	prm.key_version = key_version;
	prm.chunk_size = SMALL_CHUNK;
	prm.received = ar_now();
	prm.retain_until = 0;            /* deletable once drained */
	if ((rc = store_seal_begin(sp->be, sp->ks, &prm, &s)))
		return sp_fail(rc, "seal: %s", store_backend_errmsg(sp->be));
	if ((rc = store_seal_write(s, data, len))) {
		store_seal_abort(s);
		return sp_fail(rc, "write: %s", store_backend_errmsg(sp->be));
	}
	if ((rc = store_seal_finish(s, NULL)))
		return sp_fail(rc, "seal finish: %s",
		    store_backend_errmsg(sp->be));
	return 0;
}

/* Read a small sealed object whole (authenticated), NUL-terminated. */
static int read_small(spool_t *sp, const uint8_t *tenant, const uint8_t *id,
    int kind, size_t max, char **out, uint32_t *key_version)
{
	uint8_t oid[SPOOL_ID_LEN];
	store_reader_t *r;
	uint64_t size;
	size_t got, done = 0;
	char *buf;
	int rc;

	*out = NULL;
	kind_id(oid, id, kind);
	if ((rc = store_reader_open(sp->be, sp->ks, tenant, oid, &r)))
		return rc == AR_ENOENT ? sp_fail(rc, "no such spool entry")
		    : sp_fail(rc, "open: %s", ar_strerror(rc));
	size = store_reader_info(r)->plain_size;
	if (key_version)
		*key_version = store_reader_info(r)->key_version;
	if (size > max) {
		store_reader_close(r);
		return sp_fail(AR_ETOOBIG, "object of %llu bytes",
		    (unsigned long long)size);
	}
	if (!(buf = malloc((size_t)size + 1))) {
		store_reader_close(r);
		return sp_fail(AR_ENOMEM, "out of memory");
	}
	/* read to the end (got == 0) so the whole-object digest is checked */
	do {
		rc = store_reader_read(r, buf + done, (size_t)size - done, &got);
		done += got;
	} while (rc == 0 && got > 0);
	if (rc) {
		sp_fail(rc, "read: %s", store_reader_errmsg(r));
		sodium_memzero(buf, (size_t)size + 1);
		free(buf);
		store_reader_close(r);
		return rc;
	}
	store_reader_close(r);
	buf[done] = '\0';
	*out = buf;
	return 0;
}

/* --- open, close, recovery ------------------------------------------------ */

/* One object seen by a backend walk. */
struct seen {
	uint8_t tenant[SPOOL_TENANT_LEN];
	uint8_t id[SPOOL_ID_LEN];
};

struct seen_list {
	struct seen *v;
	size_t n, cap;
};

static int seen_cb(void *arg, const uint8_t *tenant, const uint8_t *id)
{
	struct seen_list *l = arg;

	if (ar_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v))
		return AR_ENOMEM;
	memcpy(l->v[l->n].tenant, tenant, SPOOL_TENANT_LEN);
	memcpy(l->v[l->n].id, id, SPOOL_ID_LEN);
	l->n++;
	return 0;
}

/* Order: id without its kind byte (time first), tenant, kind. */
static int seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;
	int c = memcmp(x->id, y->id, SPOOL_ID_LEN - 1);
	if (c == 0)
		c = memcmp(x->tenant, y->tenant, SPOOL_TENANT_LEN);
	if (c == 0)
		c = (int)x->id[SPOOL_ID_LEN - 1] - (int)y->id[SPOOL_ID_LEN - 1];
	return c;
}

static int same_entry(const struct seen *x, const struct seen *y)
{
	return memcmp(x->id, y->id, SPOOL_ID_LEN - 1) == 0 &&
	    memcmp(x->tenant, y->tenant, SPOOL_TENANT_LEN) == 0;
}

/* Every object of the spool (or of one tenant), sorted. */
static int list_objects(spool_t *sp, const uint8_t *tenant,
    struct seen_list *l)
{
	int rc;

	l->n = 0;
	if ((rc = store_backend_walk(sp->be, tenant, seen_cb, l)))
		return sp_fail(rc, "walk: %s", rc == AR_ENOMEM ?
		    "out of memory" : store_backend_errmsg(sp->be));
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, seen_cmp);
	return 0;
}

/* Kinds present for the entry starting at l->v[i]; *next is past it. */
static unsigned entry_kinds(const struct seen_list *l, size_t i, size_t *next)
{
	unsigned mask = 0;
	size_t j = i;

	while (j < l->n && same_entry(&l->v[i], &l->v[j])) {
		unsigned k = l->v[j].id[SPOOL_ID_LEN - 1];
		mask |= k < K_COUNT ? 1u << k : 1u << K_COUNT;
		j++;
	}
	*next = j;
	return mask;
}

#define COMPLETE (1u << K_MSG)
#define STATED   (1u << K_STATE0 | 1u << K_STATE1)

/* Is an entry with these kinds complete (listed, drained)?  In a stateful
 * spool it needs its first state record too. */
static int complete(const spool_t *sp, unsigned mask)
{
	return (mask & COMPLETE) == COMPLETE &&
	    (!(sp->flags & SPOOL_STATEFUL) || (mask & STATED));
}

/* Remove every file of dir (the backend's temp directory). */
static int clean_tmp(const char *dir, unsigned *count)
{
	struct dirent *de;
	DIR *d;
	int dfd;

	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : sp_fail(ar_status_from_errno(errno),
		    "opendir %s: %s", dir, strerror(errno));
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dfd, de->d_name, 0) == 0)
			(*count)++;
		else
			ar_log(AR_LOG_WARN, "spool dir=%s file=%s unlink: %s",
			    dir, de->d_name, strerror(errno));
	}
	closedir(d);
	return *count ? ar_fsync_dir(dir) : 0;
}

/* rmdir the empty directories of the fs layout (spools written before
 * segments). */
static void clean_dirs(spool_t *sp)
{
	char tdir[PATH_MAX], mdir[PATH_MAX], leaf[PATH_MAX];
	struct dirent *te, *me, *le;
	DIR *root, *td, *md;

	if (!(root = opendir(sp->dir)))
		return;
	while ((te = readdir(root))) {
		if (strlen(te->d_name) != 2 * SPOOL_TENANT_LEN ||
		    ar_path(tdir, sizeof tdir, "%s/%s", sp->dir, te->d_name) ||
		    !(td = opendir(tdir)))
			continue;
		while ((me = readdir(td))) {
			if (strlen(me->d_name) != 4 ||
			    ar_path(mdir, sizeof mdir, "%s/%s", tdir, me->d_name)
			    || !(md = opendir(mdir)))
				continue;
			while ((le = readdir(md)))
				if (strlen(le->d_name) == 4 &&
				    !ar_path(leaf, sizeof leaf, "%s/%s", mdir,
				    le->d_name))
					(void)rmdir(leaf);  /* fails unless empty */
			closedir(md);
			(void)rmdir(mdir);
		}
		closedir(td);
		(void)rmdir(tdir);
	}
	closedir(root);
}

/* Copy object (tenant, id) of the fs backend fs into the spool's. */
static int move_object(spool_t *sp, store_backend_t *fs, const uint8_t *tenant,
    const uint8_t *id)
{
	unsigned char buf[65536];
	store_put_t *put;
	store_get_t *g;
	uint64_t off = 0;
	size_t got;
	int rc;

	if ((rc = store_backend_get_open(fs, tenant, id, &g)))
		return sp_fail(rc, "%s", store_backend_errmsg(fs));
	if ((rc = store_backend_put_begin(sp->be, tenant, id, &put))) {
		store_get_close(g);
		return rc == AR_EEXIST ? 0 :   /* moved before a crash */
		    sp_fail(rc, "%s", store_backend_errmsg(sp->be));
	}
	while ((rc = store_get_pread(g, buf, sizeof buf, off, &got)) == 0 &&
	    got > 0 && (rc = store_put_write(put, buf, got)) == 0)
		off += got;
	store_get_close(g);
	if (rc) {
		store_put_abort(put);
		return sp_fail(rc, "copy: %s", ar_strerror(rc));
	}
	if ((rc = store_put_commit(put, 0)))
		return sp_fail(rc, "%s", store_backend_errmsg(sp->be));
	return 0;
}

/* Spools written before segments kept a file per object in the fs
 * backend's layout under the spool directory: each object is copied into a
 * segment (durable), then its file removed. */
static int move_fs_objects(spool_t *sp, unsigned *moved)
{
	struct seen_list l = { 0 };
	store_backend_t *fs;
	int rc;

	if ((rc = store_backend_open_fs(&fs, sp->dir)))
		return sp_fail(rc, "open %s: %s", sp->dir, ar_strerror(rc));
	rc = store_backend_walk(fs, NULL, seen_cb, &l);
	if (rc)
		sp_fail(rc, "walk: %s", rc == AR_ENOMEM ? "out of memory" :
		    store_backend_errmsg(fs));
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		if ((rc = move_object(sp, fs, l.v[i].tenant, l.v[i].id)))
			break;
		if ((rc = store_backend_delete(fs, l.v[i].tenant, l.v[i].id)))
			sp_fail(rc, "%s", store_backend_errmsg(fs));
		else
			(*moved)++;
	}
	store_backend_close(fs);
	free(l.v);
	if (rc == 0)
		clean_dirs(sp);
	return rc;
}

/* A complete entry found at open joins the drain queue. */
static int queue_found(spool_t *sp, const uint8_t *tenant, const uint8_t *id)
{
	spool_ref_t r;

	memset(&r, 0, sizeof r);
	memcpy(r.tenant, tenant, SPOOL_TENANT_LEN);
	kind_id(r.id, id, K_MSG);
	r.arrived = (int64_t)(id_ms(r.id) / 1000);
	(void)obj_exists(sp, tenant, r.id, K_MSG, &r.bytes);
	if (sq_push(&sp->q, &r))
		return sp_fail(AR_ENOMEM, "out of memory");
	return 0;
}

/* Crash recovery at open: partial entries and temp files go; complete
 * entries are queued, oldest first. */
static int recover(spool_t *sp)
{
	struct seen_list l = { 0 };
	char tmp[PATH_MAX], pfx[96];
	unsigned tmp_removed = 0, partial = 0, entries = 0, moved = 0;
	int rc;

	if (ar_path(tmp, sizeof tmp, "%s/tmp", sp->dir))
		return sp_fail(AR_ETOOBIG, "path too long");
	if ((rc = clean_tmp(tmp, &tmp_removed)) ||
	    (rc = move_fs_objects(sp, &moved)) ||
	    (rc = list_objects(sp, NULL, &l)))
		goto out;
	for (size_t i = 0, next; i < l.n; i = next) {
		unsigned mask = entry_kinds(&l, i, &next);
		uint8_t base[SPOOL_ID_LEN];

		if (mask & (1u << K_COUNT))
			ar_log(AR_LOG_WARN, "spool %s status=unknown_object "
			    "action=kept", ids(l.v[i].tenant, l.v[i].id, pfx,
			    sizeof pfx));
		if (complete(sp, mask)) {
			if ((rc = queue_found(sp, l.v[i].tenant, l.v[i].id)))
				goto out;
			entries++;
			continue;
		}
		kind_id(base, l.v[i].id, K_MSG);
		ar_log(AR_LOG_WARN, "spool %s status=partial kinds=0x%x "
		    "action=removed", ids(l.v[i].tenant, base, pfx, sizeof pfx),
		    mask);
		/* the message last, as spool_remove does; an object the
		 * backend refuses to delete (unreadable header) is reported
		 * and left, it never blocks the start */
		for (int k = K_COUNT - 1; k >= 0; k--)
			if ((mask & (1u << k)) && (rc = obj_delete(sp,
			    l.v[i].tenant, base, k, 0)) && rc != AR_ENOENT)
				ar_log(AR_LOG_ERR, "spool %s kind=%d status=%s "
				    "action=kept reason=\"%s\"", pfx, k,
				    ar_strerror(rc), errbuf);
		rc = 0;
		partial++;
	}
	ar_log(AR_LOG_INFO, "spool dir=%s status=recovered entries=%u "
	    "partial_removed=%u tmp_removed=%u moved_to_segments=%u", sp->dir,
	    entries, partial, tmp_removed, moved);
out:
	free(l.v);
	return rc;
}

static int spool_open_mode(spool_t **out, const char *dir, keysvc_t *ks,
    int rdonly, unsigned flags)
{
	char lock[PATH_MAX];
	spool_t *sp;
	int rc;

	if (!out)
		return sp_fail(AR_EINVAL, "no output");
	*out = NULL;
	if (!dir || !*dir || !ks)
		return sp_fail(AR_EINVAL, "no directory or key service");
	if (!(sp = calloc(1, sizeof *sp)))
		return sp_fail(AR_ENOMEM, "out of memory");
	sp->ks = ks;
	sp->rdonly = rdonly;
	sp->flags = flags;
	sp->lock_fd = -1;
	pthread_mutex_init(&sp->mark_lock, NULL);
	sq_init(&sp->q);
	if (ar_path(sp->dir, sizeof sp->dir, "%s", dir) ||
	    ar_path(lock, sizeof lock, "%s/lock", dir)) {
		rc = sp_fail(AR_ETOOBIG, "path too long: %s", dir);
		goto fail;
	}
	if ((rc = store_backend_open_seg(&sp->be, dir, rdonly))) {
		sp_fail(rc, "open %s: %s", dir, ar_strerror(rc));
		goto fail;
	}
	if (!rdonly) {
		sp->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (sp->lock_fd < 0) {
			rc = sp_fail(ar_status_from_errno(errno), "open %s: %s",
			    lock, strerror(errno));
			goto fail;
		}
		if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			rc = errno == EWOULDBLOCK ? sp_fail(AR_EAGAIN, "spool %s "
			    "is in use by another process", dir) :
			    sp_fail(AR_EIO, "lock %s: %s", lock, strerror(errno));
			goto fail;
		}
		if ((rc = recover(sp)))
			goto fail;
	}
	*out = sp;
	return 0;
fail:
	ar_log(AR_LOG_ERR, "spool dir=%s status=%s reason=\"%s\"", dir,
	    ar_strerror(rc), errbuf);
	spool_close(sp);
	return rc;
}

int spool_open(spool_t **out, const char *dir, keysvc_t *ks)
{ return spool_open_mode(out, dir, ks, 0, 0); }
int spool_open_flags(spool_t **out, const char *dir, keysvc_t *ks,
    unsigned flags)
{ return spool_open_mode(out, dir, ks, (flags & SPOOL_READONLY) != 0,
    flags); }
int spool_open_readonly(spool_t **out, const char *dir, keysvc_t *ks)
{ return spool_open_mode(out, dir, ks, 1, 0); }

void spool_close(spool_t *sp)
{
	if (!sp)
		return;
	if (sp->be)
		store_backend_close(sp->be);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);   /* releases the flock */
	pthread_mutex_destroy(&sp->mark_lock);
	sq_fini(&sp->q);
	free(sp);
}

/* --- writing -------------------------------------------------------------- */

/* Codes a finisher reports as they are; anything else means "not spooled,
 * try again" (AR_EIO), the reason kept in the message. */
static int finish_status(int rc)
{
	switch (rc) {
	case 0: case AR_ENOSPC: case AR_EKEYSVC: case AR_ENOMEM: case AR_EIO:
	case AR_ETIMEOUT: case AR_ESHREDDED: case AR_ETOOBIG: case AR_EINVAL:
		return rc;
	default:
		return AR_EIO;
	}
}

int spool_put_begin(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    uint32_t key_version, spool_put_t **out)
{
	return spool_put_begin_id(sp, tenant, key_version, NULL, out);
}

int spool_put_begin_id(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    uint32_t key_version, const uint8_t *id, spool_put_t **out)
{
	store_seal_params_t prm;
	spool_put_t *p;
	int rc;

	if (!out)
		return sp_fail(AR_EINVAL, "no output");
	*out = NULL;
	if (!sp || !tenant)
		return sp_fail(AR_EINVAL, "no spool or tenant");
	if (sp->rdonly)
		return sp_fail(AR_EPERM, "spool opened read-only");
	if (!(p = calloc(1, sizeof *p)))
		return sp_fail(AR_ENOMEM, "out of memory");
	p->sp = sp;
	memcpy(p->tenant, tenant, SPOOL_TENANT_LEN);
	if (id && id[SPOOL_ID_LEN - 1] != K_MSG) {
		free(p);
		return sp_fail(AR_EINVAL, "not a spool entry id");
	}
	if (id)
		memcpy(p->id, id, SPOOL_ID_LEN);
	else
		store_object_id_new(p->id);
	p->id[SPOOL_ID_LEN - 1] = K_MSG;
	p->key_version = key_version;
	memset(&prm, 0, sizeof prm);
	memcpy(prm.tenant, tenant, SPOOL_TENANT_LEN);
	memcpy(prm.id, p->id, SPOOL_ID_LEN);
	prm.key_version = key_version;
	prm.received = ar_now();
	prm.retain_until = 0;
	if ((rc = store_seal_begin(sp->be, sp->ks, &prm, &p->s))) {
		sp_fail(rc, "begin: %s", rc == AR_EKEYSVC ?
		    keysvc_errmsg(sp->ks) : store_backend_errmsg(sp->be));
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void spool_entry_id_new(uint8_t id[SPOOL_ID_LEN])
{
	store_object_id_new(id);
	id[SPOOL_ID_LEN - 1] = K_MSG;
}

const uint8_t *spool_put_id(const spool_put_t *p)
{
	return p->id;
}

int spool_put_write(spool_put_t *p, const void *buf, size_t len)
{
	int rc;

	if (!p || !p->s)
		return sp_fail(AR_EINVAL, "no put");
	if ((rc = store_seal_write(p->s, buf, len)))
		return sp_fail(rc, "write: %s", ar_strerror(rc));
	return 0;
}

void spool_put_abort(spool_put_t *p)
{
	if (!p)
		return;
	store_seal_abort(p->s);
	free(p);
}

/* Append the envelope and its trailer after the message. */
static int put_envelope(spool_put_t *p, const char *envelope_json)
{
	uint8_t trailer[TRAILER_LEN];
	size_t elen;
	int rc;

	if (!envelope_json)
		return sp_fail(AR_EINVAL, "no envelope");
	if ((elen = strlen(envelope_json)) > SPOOL_ENVELOPE_MAX)
		return sp_fail(AR_ETOOBIG, "envelope of %zu bytes", elen);
	memcpy(trailer, trailer_magic, sizeof trailer_magic);
	ar_put_u32(trailer + 4, (uint32_t)elen);
	if ((rc = store_seal_write(p->s, envelope_json, elen)) ||
	    (rc = store_seal_write(p->s, trailer, sizeof trailer)))
		return sp_fail(rc, "write: %s", ar_strerror(rc));
	return 0;
}

int spool_put_finish_many(spool_put_t **p, size_t n,
    const char *const *envelope_json, uint8_t (*entry_id)[SPOOL_ID_LEN],
    int *rcs)
{
	spool_t *sp;
	store_sealer_t **s = NULL;
	store_object_info_t *info = NULL;
	size_t *which = NULL, k = 0;
	int *src = NULL, first = 0, rc;
	int64_t t0 = ar_mono_us();
	char pfx[96], why[sizeof errbuf] = "";

	if (n == 0)
		return 0;
	sp = p[0]->sp;
	if (!(s = calloc(n, sizeof *s)) || !(info = calloc(n, sizeof *info)) ||
	    !(which = calloc(n, sizeof *which)) ||
	    !(src = calloc(n, sizeof *src))) {
		first = sp_fail(AR_ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			rcs[i] = AR_ENOMEM;
			spool_put_abort(p[i]);
			p[i] = NULL;
		}
		goto out;
	}
	/* 1. the envelopes; a put that fails here fails alone */
	for (size_t i = 0; i < n; i++) {
		if ((rcs[i] = put_envelope(p[i], envelope_json[i]))) {
			if (!why[0])
				ar_strlcpy(why, errbuf, sizeof why);
			store_seal_abort(p[i]->s);
			p[i]->s = NULL;
			continue;
		}
		s[k] = p[i]->s;
		p[i]->s = NULL;
		which[k++] = i;
	}
	/* 2. last chunks, one signing request, one append and one
	 * fdatasync (the sealers are freed) */
	if (k && store_seal_finish_many(s, k, info, src)) {
		rc = 0;
		for (size_t j = 0; j < k && !rc; j++)
			rc = src[j];
		sp_fail(rc, "entry: %s", rc == AR_EKEYSVC ?
		    keysvc_errmsg(sp->ks) : store_backend_errmsg(sp->be));
		if (!why[0])
			ar_strlcpy(why, errbuf, sizeof why);
	}
	for (size_t j = 0; j < k; j++) {
		spool_put_t *pj = p[which[j]];
		spool_ref_t r;
		if ((rcs[which[j]] = src[j]))
			continue;
		memset(&r, 0, sizeof r);
		memcpy(r.tenant, pj->tenant, SPOOL_TENANT_LEN);
		memcpy(r.id, pj->id, SPOOL_ID_LEN);
		r.arrived = (int64_t)(id_ms(r.id) / 1000);
		r.bytes = info[j].sealed_size;
		/* durable already: out of memory here only delays its drain
		 * to the next open, which finds it.  A stateful spool's entry
		 * is queued by its first state record. */
		if (!(sp->flags & SPOOL_STATEFUL) && sq_push(&sp->q, &r))
			ar_log(AR_LOG_ERR, "%s status=not_queued reason=\"out of "
			    "memory\" note=\"drained after a restart\"",
			    ids(pj->tenant, pj->id, pfx, sizeof pfx));
	}
	for (size_t i = 0; i < n; i++) {
		ids(p[i]->tenant, p[i]->id, pfx, sizeof pfx);
		if (rcs[i] == 0) {
			if (entry_id)
				memcpy(entry_id[i], p[i]->id, SPOOL_ID_LEN);
			ar_log(AR_LOG_DEBUG, "%s status=spooled group=%zu "
			    "dur_us=%lld", pfx, k,
			    (long long)(ar_mono_us() - t0));
		} else {
			ar_log(AR_LOG_WARN, "%s status=%s action=not_spooled "
			    "reason=\"%s\"", pfx, ar_strerror(rcs[i]), why);
			rcs[i] = finish_status(rcs[i]);
			if (!first)
				first = rcs[i];
		}
		free(p[i]);
		p[i] = NULL;
	}
	if (why[0])
		ar_strlcpy(errbuf, why, sizeof errbuf);
out:
	free(s);
	free(info);
	free(which);
	free(src);
	return first;
}

int spool_put_finish(spool_put_t *p, const char *envelope_json,
    uint8_t entry_id[SPOOL_ID_LEN])
{
	int rc;

	if (!p)
		return sp_fail(AR_EINVAL, "no put");
	spool_put_finish_many(&p, 1, &envelope_json,
	    (uint8_t (*)[SPOOL_ID_LEN])entry_id, &rc);
	return rc;
}

/* --- reading and draining ------------------------------------------------- */

int spool_walk(spool_t *sp, const uint8_t *tenant, unsigned flags,
    spool_walk_cb cb, void *arg)
{
	struct seen_list l = { 0 };
	int64_t now = ar_now();
	int rc;

	if (!sp || !cb)
		return sp_fail(AR_EINVAL, "no spool or callback");
	if ((rc = list_objects(sp, tenant, &l)))
		goto out;
	for (size_t i = 0, next; i < l.n && rc == 0; i = next) {
		unsigned mask = entry_kinds(&l, i, &next);
		spool_entry_t e;

		if (!complete(sp, mask))
			continue;              /* being written, or partial */
		memset(&e, 0, sizeof e);
		memcpy(e.tenant, l.v[i].tenant, SPOOL_TENANT_LEN);
		kind_id(e.id, l.v[i].id, K_MSG);
		e.arrived = (int64_t)(id_ms(e.id) / 1000);
		e.age = now > e.arrived ? now - e.arrived : 0;
		e.failed = (mask & (1u << K_FAIL0 | 1u << K_FAIL1)) != 0;
		if (flags & SPOOL_WALK_SIZES) {
			for (int k = 0; k < K_COUNT; k++) {
				uint64_t sz = 0;
				if ((mask & (1u << k)) &&
				    obj_exists(sp, e.tenant, e.id, k, &sz) == 0)
					e.bytes += sz;
			}
		}
		rc = cb(arg, &e);
	}
out:
	free(l.v);
	return rc;
}

/* Open entry's object and read its trailer: *msg_len is the message's
 * length, *env (when env is not NULL) the envelope, NUL-terminated.  The
 * reader is left at offset 0. */
static int open_entry(spool_t *sp, const uint8_t *tenant, const uint8_t *id,
    store_reader_t **out, uint64_t *msg_len, char **env)
{
	store_reader_t *r;
	uint8_t t[TRAILER_LEN];
	uint64_t size, elen;
	char *buf = NULL;
	size_t got;
	int rc;

	*out = NULL;
	if (env)
		*env = NULL;
	if ((rc = store_reader_open(sp->be, sp->ks, tenant, id, &r)))
		return rc == AR_ENOENT ? sp_fail(rc, "no such spool entry")
		    : sp_fail(rc, "open: %s", ar_strerror(rc));
	size = store_reader_info(r)->plain_size;
	if (size < TRAILER_LEN) {
		rc = sp_fail(AR_ECORRUPT, "entry of %llu bytes has no trailer",
		    (unsigned long long)size);
		goto fail;
	}
	if ((rc = store_reader_seek(r, size - TRAILER_LEN)) ||
	    (rc = store_reader_read(r, t, sizeof t, &got))) {
		sp_fail(rc, "read trailer: %s", store_reader_errmsg(r));
		goto fail;
	}
	elen = (uint64_t)t[4] << 24 | (uint64_t)t[5] << 16 |
	    (uint64_t)t[6] << 8 | t[7];
	if (got != sizeof t || memcmp(t, trailer_magic, 4) != 0 ||
	    elen > SPOOL_ENVELOPE_MAX || elen > size - TRAILER_LEN) {
		rc = sp_fail(AR_ECORRUPT, "entry trailer is not valid");
		goto fail;
	}
	*msg_len = size - TRAILER_LEN - elen;
	if (env) {
		if (!(buf = malloc((size_t)elen + 1))) {
			rc = sp_fail(AR_ENOMEM, "out of memory");
			goto fail;
		}
		if ((rc = store_reader_seek(r, *msg_len)) ||
		    (rc = store_reader_read(r, buf, (size_t)elen, &got))) {
			sp_fail(rc, "read envelope: %s",
			    store_reader_errmsg(r));
			goto fail;
		}
		if (got != elen) {
			rc = sp_fail(AR_ECORRUPT, "short envelope");
			goto fail;
		}
		buf[elen] = '\0';
	}
	if ((rc = store_reader_seek(r, 0))) {
		sp_fail(rc, "rewind: %s", store_reader_errmsg(r));
		goto fail;
	}
	if (env)
		*env = buf;
	*out = r;
	return 0;
fail:
	if (buf) {
		sodium_memzero(buf, (size_t)elen + 1);
		free(buf);
	}
	store_reader_close(r);
	return rc;
}

int spool_open_entry(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], store_reader_t **out,
    uint64_t *msg_len, char **envelope_json)
{
	uint64_t len;
	int rc;

	if (!out)
		return sp_fail(AR_EINVAL, "no output");
	*out = NULL;
	if (envelope_json)
		*envelope_json = NULL;
	if ((rc = entry_args(sp, tenant, entry_id, 0)) ||
	    (rc = open_entry(sp, tenant, entry_id, out, &len, envelope_json)))
		return rc;
	if (msg_len)
		*msg_len = len;
	return 0;
}

int spool_read_envelope(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], char **json)
{
	store_reader_t *r;
	int rc;

	if (!json)
		return sp_fail(AR_EINVAL, "no output");
	if ((rc = spool_open_entry(sp, tenant, entry_id, &r, NULL, json)))
		return rc;
	store_reader_close(r);
	return 0;
}

int spool_remove(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN])
{
	static const int order[] = { K_FAIL0, K_FAIL1, K_STATE0, K_STATE1,
	    K_MSG };
	int rc, found = 0;

	if ((rc = entry_args(sp, tenant, entry_id, 1)))
		return rc;
	for (size_t i = 0; i < AR_ARRAY_LEN(order); i++) {
		rc = obj_delete(sp, tenant, entry_id, order[i], 1);
		if (rc == 0)
			found = 1;
		else if (rc != AR_ENOENT)
			return rc;
	}
	return found ? 0 : sp_fail(AR_ENOENT, "no such spool entry");
}

int spool_sync(spool_t *sp)
{
	int rc;

	if (!sp)
		return sp_fail(AR_EINVAL, "no spool");
	if ((rc = store_backend_sync(sp->be)))
		return sp_fail(rc, "sync: %s", store_backend_errmsg(sp->be));
	return 0;
}

/* --- the drain queue ------------------------------------------------------ */

size_t spool_claim(spool_t *sp, spool_ref_t *out, size_t max)
{
	return sq_claim(&sp->q, ar_now(), out, max);
}

int spool_claim_done(spool_t *sp, const spool_ref_t *r)
{
	int rc = spool_remove(sp, r->tenant, r->id);
	sq_done(&sp->q, r);
	return rc;
}

void spool_claim_retry(spool_t *sp, const spool_ref_t *r, int64_t due)
{
	char pfx[96];

	if (sq_retry(&sp->q, r, due))
		ar_log(AR_LOG_ERR, "%s status=not_queued reason=\"out of "
		    "memory\" note=\"retried after a restart\"",
		    ids(r->tenant, r->id, pfx, sizeof pfx));
}

size_t spool_retry_now(spool_t *sp, const uint8_t *tenant, const uint8_t *id)
{
	return sq_due_now(&sp->q, tenant, id);
}

void spool_queue_info(spool_t *sp, int detail, spool_queue_info_t *out)
{
	sq_info(&sp->q, ar_now(), detail, out);
}

/* --- failing entries ------------------------------------------------------ */

/* Parse a failure record; 0 or AR_ECORRUPT. */
static int failure_parse(const char *text, spool_failure_t *f)
{
	json_t *j = json_loads(text, 0, NULL);
	json_int_t c, a, b;
	const char *r;
	int rc = AR_ECORRUPT;

	if (j && json_unpack(j, "{s:I, s:I, s:I, s:s}", "count", &c, "first",
	    &a, "last", &b, "reason", &r) == 0 && c > 0 && c <= UINT32_MAX) {
		f->count = (uint32_t)c;
		f->first = a;
		f->last = b;
		ar_strlcpy(f->reason, r, sizeof f->reason);
		rc = 0;
	} else {
		sp_fail(rc, "failure record unreadable");
	}
	json_decref(j);
	return rc;
}

/* The newer of the two failure slots: *slot -1 when none. */
static int failure_read(spool_t *sp, const uint8_t *tenant, const uint8_t *id,
    spool_failure_t *f, int *slot)
{
	*slot = -1;
	memset(f, 0, sizeof *f);
	for (int k = K_FAIL0; k <= K_FAIL1; k++) {
		spool_failure_t cur;
		char *text;
		int rc = read_small(sp, tenant, id, k, 4096, &text, NULL);
		if (rc == AR_ENOENT)
			continue;
		if (rc)
			return rc;
		memset(&cur, 0, sizeof cur);
		rc = failure_parse(text, &cur);
		free(text);
		if (rc)
			return rc;
		if (*slot < 0 || cur.count > f->count) {
			*f = cur;
			*slot = k;
		}
	}
	return 0;
}

int spool_mark_failed(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], const char *reason)
{
	spool_failure_t f;
	store_reader_t *r;
	uint32_t keyver;
	json_t *j;
	char *text = NULL, pfx[96];
	int rc, slot, other;

	if ((rc = entry_args(sp, tenant, entry_id, 1)))
		return rc;
	pthread_mutex_lock(&sp->mark_lock);
	/* the entry must exist; its header names the key version */
	if ((rc = store_reader_open(sp->be, sp->ks, tenant, entry_id, &r))) {
		sp_fail(rc, "%s", rc == AR_ENOENT ? "no such spool entry" :
		    ar_strerror(rc));
		goto out;
	}
	keyver = store_reader_info(r)->key_version;
	store_reader_close(r);
	if ((rc = failure_read(sp, tenant, entry_id, &f, &slot)))
		goto out;
	if (f.count == 0)
		f.first = ar_now();
	f.count++;
	f.last = ar_now();
	ar_strlcpy(f.reason, reason ? reason : "", sizeof f.reason);
	for (char *c = f.reason; *c; c++)     /* printable ASCII only */
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	j = json_pack("{s:I, s:I, s:I, s:s}", "count", (json_int_t)f.count,
	    "first", (json_int_t)f.first, "last", (json_int_t)f.last,
	    "reason", f.reason);
	if (!j || !(text = json_dumps(j, JSON_COMPACT))) {
		json_decref(j);
		rc = sp_fail(AR_ENOMEM, "out of memory");
		goto out;
	}
	json_decref(j);
	other = slot == K_FAIL0 ? K_FAIL1 : K_FAIL0;
	/* a stale record in the slot being reused (crash leftovers) goes */
	if ((rc = obj_delete(sp, tenant, entry_id, other, 0)) && rc != AR_ENOENT)
		goto out;
	if ((rc = seal_small(sp, tenant, entry_id, other, keyver, text,
	    strlen(text))) ||
	    (rc = store_backend_sync(sp->be)))
		goto out;
	if (slot >= 0 && (rc = obj_delete(sp, tenant, entry_id, slot, 0)) &&
	    rc != AR_ENOENT)
		goto out;
	rc = 0;
	ar_log(AR_LOG_INFO, "%s status=failed attempts=%u", ids(tenant,
	    entry_id, pfx, sizeof pfx), f.count);
out:
	pthread_mutex_unlock(&sp->mark_lock);
	free(text);
	return rc;
}

int spool_failure_get(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], spool_failure_t *out)
{
	int rc, slot;

	if (!out)
		return sp_fail(AR_EINVAL, "no output");
	memset(out, 0, sizeof *out);
	if ((rc = entry_args(sp, tenant, entry_id, 0)) ||
	    (rc = entry_complete(sp, tenant, entry_id)))
		return rc;
	return failure_read(sp, tenant, entry_id, out, &slot);
}

/* --- state records -------------------------------------------------------- */

/* The newer state record: its counter, slot and text (the caller frees),
 * or *slot -1 when there is none. */
static int state_read(spool_t *sp, const uint8_t *tenant, const uint8_t *id,
    uint64_t *n, int *slot, char **json)
{
	*slot = -1;
	*n = 0;
	*json = NULL;
	for (int k = K_STATE0; k <= K_STATE1; k++) {
		char *text, *end;
		unsigned long long c;
		int rc = read_small(sp, tenant, id, k, SPOOL_STATE_MAX + 32,
		    &text, NULL);
		if (rc == AR_ENOENT)
			continue;
		if (rc) {
			free(*json);
			*json = NULL;
			return rc;
		}
		c = strtoull(text, &end, 10);
		if (end == text || *end != '\n') {
			free(text);
			free(*json);
			*json = NULL;
			return sp_fail(AR_ECORRUPT, "state record unreadable");
		}
		if (*slot < 0 || c > *n) {
			free(*json);
			*json = strdup(end + 1);
			*n = c;
			*slot = k;
		}
		sodium_memzero(text, strlen(text));
		free(text);
		if (!*json)
			return sp_fail(AR_ENOMEM, "out of memory");
	}
	return 0;
}

int spool_state_set(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], uint32_t key_version,
    const char *json)
{
	char *old = NULL, *text = NULL, pfx[96];
	uint64_t n;
	size_t len;
	int rc, slot, other;

	if ((rc = entry_args(sp, tenant, entry_id, 1)))
		return rc;
	if (!json || (len = strlen(json)) > SPOOL_STATE_MAX)
		return sp_fail(AR_ETOOBIG, "state record of %zu bytes",
		    json ? strlen(json) : 0);
	if ((rc = entry_complete(sp, tenant, entry_id)) ||
	    (rc = state_read(sp, tenant, entry_id, &n, &slot, &old)))
		return rc;
	free(old);
	if (!(text = malloc(len + 32)))
		return sp_fail(AR_ENOMEM, "out of memory");
	snprintf(text, len + 32, "%llu\n%s", (unsigned long long)n + 1, json);
	other = slot == K_STATE0 ? K_STATE1 : K_STATE0;
	/* a stale record in the slot being reused goes (not synced: the
	 * newer counter wins at the next read anyway) */
	if ((rc = obj_delete(sp, tenant, entry_id, other, 1)) &&
	    rc != AR_ENOENT)
		goto out;
	/* durable when it returns (the segment is fdatasync'd) */
	if ((rc = seal_small(sp, tenant, entry_id, other, key_version, text,
	    strlen(text))))
		goto out;
	if (slot >= 0 && (rc = obj_delete(sp, tenant, entry_id, slot, 1)) &&
	    rc != AR_ENOENT)
		goto out;
	rc = 0;
	if (slot < 0 && (sp->flags & SPOOL_STATEFUL) &&
	    (rc = queue_found(sp, tenant, entry_id)))
		ar_log(AR_LOG_ERR, "%s status=not_queued reason=\"out of "
		    "memory\" note=\"delivered after a restart\"",
		    ids(tenant, entry_id, pfx, sizeof pfx));
	rc = 0;
out:
	if (text) {
		sodium_memzero(text, strlen(text));
		free(text);
	}
	return rc;
}

int spool_state_get(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], char **json)
{
	uint64_t n;
	int rc, slot;

	if (!json)
		return sp_fail(AR_EINVAL, "no output");
	*json = NULL;
	if ((rc = entry_args(sp, tenant, entry_id, 0)) ||
	    (rc = entry_complete(sp, tenant, entry_id)) ||
	    (rc = state_read(sp, tenant, entry_id, &n, &slot, json)))
		return rc;
	return slot < 0 ? sp_fail(AR_ENOENT, "no state record") : 0;
}

int spool_damage(spool_t *sp, store_seg_damage_cb cb, void *arg)
{
	int rc;

	if (!sp || !cb)
		return sp_fail(AR_EINVAL, "no spool or callback");
	if ((rc = store_backend_seg_damage(sp->be, cb, arg)) < 0)
		sp_fail(rc, "%s", store_backend_errmsg(sp->be));
	return rc;
}

/* --- stats ---------------------------------------------------------------- */

static int stats_cb(void *arg, const spool_entry_t *e)
{
	spool_stats_t *s = arg;

	s->entries++;
	s->failing += e->failed != 0;
	s->bytes += e->bytes;
	if (e->age > s->oldest_age)
		s->oldest_age = e->age;
	return 0;
}

int spool_stats(spool_t *sp, spool_stats_t *out)
{
	if (!out)
		return sp_fail(AR_EINVAL, "no output");
	memset(out, 0, sizeof *out);
	return spool_walk(sp, NULL, SPOOL_WALK_SIZES, stats_cb, out);
}
