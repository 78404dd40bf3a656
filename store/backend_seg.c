/*
 * backend_seg.c - the "seg" object store backend: objects are records
 * appended to shared segment files dir/seg/<seq, 16 hex>.seg (format in
 * docs/formats.md "Spool segments").  For the spool, which writes, reads
 * once and deletes a small object per message: n objects committed
 * together cost one write and one fdatasync of one file, where the fs
 * backend creates, renames and later unlinks n files.
 *
 * Record: a 64-byte header (magic, version, tenant, id, data length,
 * BLAKE2b-128 of data || tenant || id || length) and the data.  Deleting
 * overwrites the magic in place ("ARSX"); a segment is unlinked once none
 * of its records is live (the active one too: the next commit then starts
 * a new segment).
 *
 * Write order (STYLE.md 7): a commit appends its records at the active
 * segment's end under the lock, then fdatasync()s the segment (shared: a
 * committer whose bytes an earlier fdatasync covered returns at once);
 * a new segment's directory entry is fsync'd before anything is appended.
 * An object larger than SEG_SPILL is written to dir/tmp/ as it arrives,
 * then its header is written, it is fdatasync'd and renamed in as a
 * segment of its own.  Opening scans every segment: a record that is
 * short or fails its hash ends the segment (a torn append, never
 * acknowledged); nothing is appended to a segment found at open.
 *
 * The index ((tenant, id) -> segment, offset, length) is a tsearch(3)
 * tree in memory.  A read-only handle (another process's view, such as
 * archivectl's) scans the same way and changes nothing.
 */
#include "store/backend_seg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "store/seal_format.h"

#define IOV_BATCH   512

const char seg_magic_live[4] = { 'A', 'R', 'S', 'R' };
const char seg_magic_dead[4] = { 'A', 'R', 'S', 'X' };

typedef struct seg_put {
	store_put_t base;              /* first */
	crypto_generichash_state hs;   /* 64-byte aligned (aligned_alloc) */
	uint8_t key[KEY_LEN];
	unsigned char *buf;            /* header space + data, until spilled */
	size_t len, cap;               /* bytes in buf, header included */
	int fd;                        /* spilled: the temp file, else -1 */
	uint64_t size;                 /* data bytes */
	int status;                    /* sticky write error */
	char tmp[PATH_MAX];
} seg_put_t;

typedef struct seg_get {
	store_get_t base;              /* first */
	seg_t *seg;
	uint64_t off;                  /* of the data */
	uint64_t size;
} seg_get_t;

int seg_errno(store_backend_t *be, int err, const char *what,
    const char *path)
{
	return store_be_fail(be, ar_status_from_errno(err), "%s %s: %s", what,
	    path, strerror(err));
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, KEY_LEN);
}

static void make_key(uint8_t key[KEY_LEN], const uint8_t *tenant,
    const uint8_t *id)
{
	memcpy(key, tenant, STORE_TENANT_LEN);
	memcpy(key + STORE_TENANT_LEN, id, STORE_ID_LEN);
}

void seg_name(const seg_backend_t *sb, uint64_t seq, char *buf,
    size_t size)
{
	(void)ar_path(buf, size, "%s/%016llx.seg", sb->segdir,
	    (unsigned long long)seq);
}

/* The record header of key with len bytes of data hashed into hs. */
static void header_make(unsigned char hdr[HDR_LEN], const uint8_t *key,
    uint64_t len, crypto_generichash_state *hs)
{
	memcpy(hdr, seg_magic_live, 4);
	ar_put_u32(hdr + 4, SEG_VERSION);
	memcpy(hdr + 8, key, KEY_LEN);
	ar_put_u64(hdr + 40, len);
	crypto_generichash_update(hs, hdr + 8, KEY_LEN + 8);
	crypto_generichash_final(hs, hdr + 48, HASH_LEN);
}

/* --- segments (under sb->lock) -------------------------------------------- */

static void seg_release(seg_backend_t *sb, seg_t *s);

/* No live record and no appends to come: the file goes. */
void seg_maybe_unlink(seg_backend_t *sb, seg_t *s)
{
	char path[PATH_MAX];

	if (s->live || s->open_for_appends || s->unlinked || sb->rdonly)
		return;
	if (s->ndamage) {        /* never deleted: kept aside for a look */
		seg_move_aside(sb, s);
	} else {
		seg_name(sb, s->seq, path, sizeof path);
		if (unlink(path) < 0 && errno != ENOENT)
			ar_log(AR_LOG_WARN, "segment %s unlink: %s", path,
			    strerror(errno));
	}
	s->unlinked = 1;
	seg_release(sb, s);      /* the list's reference */
}

/* Drop a reference; an unlinked segment nobody uses is freed. */
static void seg_release(seg_backend_t *sb, seg_t *s)
{
	if (--s->refs || !s->unlinked)
		return;
	for (seg_t **pp = &sb->segs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	close(s->fd);
	free(s->damage);
	free(s);
}

seg_t *seg_add(seg_backend_t *sb, uint64_t seq, int fd, uint64_t end)
{
	seg_t *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->seq = seq;
	s->fd = fd;
	s->end = s->synced = end;
	s->refs = 1;             /* the list's */
	s->next = sb->segs;
	sb->segs = s;
	if (seq >= sb->next_seq)
		sb->next_seq = seq + 1;
	return s;
}

/* s takes no more appends (the next commit starts a new segment) and goes
 * if it holds no live record. */
static void seg_stop_appends(seg_backend_t *sb, seg_t *s)
{
	s->open_for_appends = 0;
	if (sb->active == s)
		sb->active = NULL;
	seg_maybe_unlink(sb, s);
}

/* A segment taking appends, with room for len more bytes (a fresh one when
 * the active segment is full or failed). */
static int seg_active(seg_backend_t *sb, uint64_t len, seg_t **out)
{
	char path[PATH_MAX];
	seg_t *s = sb->active;
	int fd, rc;

	if (s && s->end > 0 && s->end + len > SEG_MAX)
		seg_stop_appends(sb, s);
	if (sb->active) {
		*out = sb->active;
		return 0;
	}
	seg_name(sb, sb->next_seq, path, sizeof path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return seg_errno(&sb->base, errno, "create", path);
	if ((rc = ar_fsync_dir(sb->segdir))) {
		unlink(path);
		close(fd);
		return store_be_fail(&sb->base, rc, "fsync directory %s: %s",
		    sb->segdir, ar_strerror(rc));
	}
	if (!(s = seg_add(sb, sb->next_seq, fd, 0))) {
		unlink(path);
		close(fd);
		return store_be_fail(&sb->base, AR_ENOMEM, "out of memory");
	}
	s->open_for_appends = 1;
	*out = sb->active = s;
	return 0;
}

/* No more appends to s (a failed write left its end unknown). */
static void seg_retire(seg_backend_t *sb, seg_t *s)
{
	if (!s->open_for_appends)
		return;
	(void)!ftruncate(s->fd, (off_t)s->end);
	seg_stop_appends(sb, s);
}

/* --- the index (under sb->lock) ------------------------------------------- */

seg_rec_t *seg_rec_find(seg_backend_t *sb, const uint8_t *key)
{
	void *p = tfind(key, &sb->index, key_cmp);
	return p ? *(seg_rec_t **)p : NULL;
}

/* 0, AR_EEXIST or AR_ENOMEM. */
int seg_rec_insert(seg_backend_t *sb, const uint8_t *key, seg_t *s,
    uint64_t off, uint64_t len)
{
	seg_rec_t *r = malloc(sizeof *r), **p;

	if (!r)
		return AR_ENOMEM;
	memcpy(r->key, key, KEY_LEN);
	r->seg = s;
	r->off = off;
	r->len = len;
	if (!(p = tsearch(r, &sb->index, key_cmp))) {
		free(r);
		return AR_ENOMEM;
	}
	if (*p != r) {
		free(r);
		return AR_EEXIST;
	}
	s->live++;
	return 0;
}

/* Take r out of the index and mark its record deleted on disk. */
static int rec_remove(seg_backend_t *sb, seg_rec_t *r)
{
	seg_t *s = r->seg;
	int rc = 0;

	if (pwrite(s->fd, seg_magic_dead, 4, (off_t)r->off) != 4)
		rc = errno ? errno : EIO;
	tdelete(r->key, &sb->index, key_cmp);
	free(r);
	s->dirty = 1;
	if (--s->live == 0)      /* drained: no file of dead records stays */
		seg_stop_appends(sb, s);
	return rc;
}

/* --- put ------------------------------------------------------------------ */

static int seg_put_begin(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, store_put_t **out)
{
	seg_backend_t *sb = sgb(be);
	uint8_t key[KEY_LEN];
	seg_put_t *p;
	int found;

	if (sb->rdonly)
		return store_be_fail(be, AR_EPERM, "segment store %s opened "
		    "read-only", sb->segdir);
	make_key(key, tenant, id);
	pthread_mutex_lock(&sb->lock);
	found = seg_rec_find(sb, key) != NULL;
	pthread_mutex_unlock(&sb->lock);
	if (found)
		return store_be_fail(be, AR_EEXIST, "object exists");
	p = aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
	if (p)
		memset(p, 0, sizeof *p);
	if (!p || !(p->buf = calloc(1, HDR_LEN))) {
		free(p);
		return store_be_fail(be, AR_ENOMEM, "out of memory");
	}
	p->cap = HDR_LEN;
	p->base.be = be;
	p->fd = -1;
	memcpy(p->key, key, KEY_LEN);
	crypto_generichash_init(&p->hs, NULL, 0, HASH_LEN);
	p->len = HDR_LEN;            /* header space, written at commit */
	*out = &p->base;
	return 0;
}

/* Move the buffered bytes to a temp file of their own. */
static int put_spill(seg_put_t *p)
{
	seg_backend_t *sb = sgb(p->base.be);
	unsigned char rnd[8];
	char rh[17];

	randombytes_buf(rnd, sizeof rnd);
	if (ar_path(p->tmp, sizeof p->tmp, "%s/%s.spill", sb->tmpdir,
	    ar_hex(rnd, sizeof rnd, rh)))
		return store_be_fail(p->base.be, AR_ETOOBIG, "path too long");
	p->fd = open(p->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (p->fd < 0)
		return seg_errno(p->base.be, errno, "create", p->tmp);
	if (ar_write_full(p->fd, p->buf, p->len))
		return seg_errno(p->base.be, errno, "write", p->tmp);
	sodium_memzero(p->buf, p->len);
	free(p->buf);
	p->buf = NULL;
	p->cap = 0;
	return 0;
}

static int seg_put_write(store_put_t *put, const void *buf, size_t len)
{
	seg_put_t *p = (seg_put_t *)put;

	if (p->status)
		return p->status;
	crypto_generichash_update(&p->hs, buf, len);
	p->size += len;
	if (p->fd < 0 && p->len + len > SEG_SPILL + HDR_LEN &&
	    (p->status = put_spill(p)))
		return p->status;
	if (p->fd >= 0) {
		if (ar_write_full(p->fd, buf, len))
			p->status = seg_errno(put->be, errno, "write", p->tmp);
		return p->status;
	}
	/* never more than SEG_SPILL + HDR_LEN: past it, it spills */
	if (p->len + len > p->cap && ar_wiped_move(&p->buf, &p->cap, p->len,
	    ar_grow_cap(p->cap, p->len + len, SEG_SPILL + HDR_LEN)))
		return p->status = store_be_fail(put->be, AR_ENOMEM,
		    "out of memory");
	memcpy(p->buf + p->len, buf, len);
	p->len += len;
	return 0;
}

static void put_free(seg_put_t *p)
{
	if (p->fd >= 0) {
		close(p->fd);
		unlink(p->tmp);
	}
	if (p->buf)
		sodium_memzero(p->buf, p->len);
	free(p->buf);
	free(p);
}

static void seg_put_abort(store_put_t *put)
{
	put_free((seg_put_t *)put);
}

/* fdatasync s up to upto unless an earlier one covered it; s is held. */
static int seg_sync_to(seg_backend_t *sb, seg_t *s, uint64_t upto)
{
	uint64_t end;
	int rc = 0, done;

	pthread_mutex_lock(&sb->sync_lock);
	pthread_mutex_lock(&sb->lock);
	done = s->synced >= upto;
	end = s->end;
	pthread_mutex_unlock(&sb->lock);
	if (!done) {
		if (fdatasync(s->fd) < 0) {
			rc = errno;
		} else {
			pthread_mutex_lock(&sb->lock);
			if (s->synced < end)
				s->synced = end;
			pthread_mutex_unlock(&sb->lock);
		}
	}
	pthread_mutex_unlock(&sb->sync_lock);
	return rc;
}

/* A spilled put becomes a segment of its own. */
static int commit_spilled(seg_put_t *p)
{
	seg_backend_t *sb = sgb(p->base.be);
	unsigned char hdr[HDR_LEN];
	char path[PATH_MAX];
	uint64_t seq;
	seg_t *s;
	int rc;

	header_make(hdr, p->key, p->size, &p->hs);
	if (pwrite(p->fd, hdr, HDR_LEN, 0) != HDR_LEN || fdatasync(p->fd) < 0)
		return seg_errno(p->base.be, errno ? errno : EIO, "write",
		    p->tmp);
	pthread_mutex_lock(&sb->lock);
	if (seg_rec_find(sb, p->key)) {
		pthread_mutex_unlock(&sb->lock);
		return store_be_fail(p->base.be, AR_EEXIST, "object exists");
	}
	seq = sb->next_seq++;
	seg_name(sb, seq, path, sizeof path);
	if (rename(p->tmp, path) < 0) {
		rc = seg_errno(p->base.be, errno, "rename", p->tmp);
		pthread_mutex_unlock(&sb->lock);
		return rc;
	}
	if ((rc = ar_fsync_dir(sb->segdir)) ||
	    !(s = seg_add(sb, seq, p->fd, HDR_LEN + p->size))) {
		unlink(path);
		pthread_mutex_unlock(&sb->lock);
		return store_be_fail(p->base.be, rc ? rc : AR_ENOMEM, "%s: %s",
		    path, rc ? ar_strerror(rc) : "out of memory");
	}
	p->fd = -1;                  /* the segment's now */
	if ((rc = seg_rec_insert(sb, p->key, s, 0, p->size)))
		seg_maybe_unlink(sb, s);     /* no live record: it goes */
	pthread_mutex_unlock(&sb->lock);
	return rc ? store_be_fail(p->base.be, rc, "%s: %s", path,
	    ar_strerror(rc)) : 0;
}

/* Append the buffered puts to the active segment in one write, then make
 * them durable together.  rcs[i] for puts[i]. */
static void commit_buffered(seg_backend_t *sb, seg_put_t **puts, size_t n,
    int *rcs)
{
	struct iovec iov[IOV_BATCH];
	uint64_t total = 0, off, end;
	size_t k = 0;
	seg_t *s = NULL;
	int rc, err = 0;

	for (size_t i = 0; i < n; i++) {
		header_make(puts[i]->buf, puts[i]->key, puts[i]->size,
		    &puts[i]->hs);
		total += puts[i]->len;
	}
	pthread_mutex_lock(&sb->lock);
	if ((rc = seg_active(sb, total, &s))) {
		pthread_mutex_unlock(&sb->lock);
		for (size_t i = 0; i < n; i++)
			rcs[i] = rc;
		return;
	}
	off = s->end;
	for (size_t i = 0; i < n && !err; i++) {
		iov[k].iov_base = puts[i]->buf;
		iov[k++].iov_len = puts[i]->len;
		if (k == IOV_BATCH || i == n - 1) {
			size_t want = 0;
			ssize_t w;
			for (size_t j = 0; j < k; j++)
				want += iov[j].iov_len;
			w = pwritev(s->fd, iov, (int)k, (off_t)off);
			if (w < 0 || (size_t)w != want)
				err = w < 0 ? errno : ENOSPC;
			else
				off += want;
			k = 0;
		}
	}
	if (err) {
		seg_retire(sb, s);   /* truncated to its end: the partial bytes go */
		pthread_mutex_unlock(&sb->lock);
		rc = seg_errno(&sb->base, err, "append to segment", sb->segdir);
		for (size_t i = 0; i < n; i++)
			rcs[i] = rc;
		return;
	}
	/* in the index now (readable), durable below */
	off = s->end;
	for (size_t i = 0; i < n; i++) {
		rcs[i] = seg_rec_insert(sb, puts[i]->key, s, off, puts[i]->size);
		if (rcs[i])   /* the bytes stay, marked deleted */
			(void)!pwrite(s->fd, seg_magic_dead, 4, (off_t)off);
		off += puts[i]->len;
	}
	end = s->end = off;
	s->refs++;
	pthread_mutex_unlock(&sb->lock);

	err = seg_sync_to(sb, s, end);
	pthread_mutex_lock(&sb->lock);
	if (err) {
		/* not durable: not acknowledged, so not kept either */
		for (size_t i = 0; i < n; i++) {
			seg_rec_t *r;
			if (rcs[i] == 0 && (r = seg_rec_find(sb, puts[i]->key)))
				(void)rec_remove(sb, r);
		}
		seg_retire(sb, s);
	}
	seg_release(sb, s);
	pthread_mutex_unlock(&sb->lock);
	if (err) {
		rc = seg_errno(&sb->base, err, "fdatasync segment", sb->segdir);
		for (size_t i = 0; i < n; i++)
			if (rcs[i] == 0)
				rcs[i] = rc;
	}
	for (size_t i = 0; i < n; i++)
		if (rcs[i] == AR_EEXIST)
			rcs[i] = store_be_fail(&sb->base, AR_EEXIST,
			    "object exists");
}

static int seg_put_commit_many(store_put_t **puts, size_t n,
    const int64_t *retain_until, int *rcs)
{
	seg_backend_t *sb = sgb(puts[0]->be);
	seg_put_t **buffered;
	size_t nb = 0;
	int *brc, first = 0;

	(void)retain_until;   /* read from the sealed header when deleting */
	buffered = calloc(n, sizeof *buffered);
	brc = calloc(n, sizeof *brc);
	if (!buffered || !brc) {
		for (size_t i = 0; i < n; i++) {
			rcs[i] = store_be_fail(&sb->base, AR_ENOMEM,
			    "out of memory");
			put_free((seg_put_t *)puts[i]);
		}
		free(buffered);
		free(brc);
		return AR_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		seg_put_t *p = (seg_put_t *)puts[i];
		if ((rcs[i] = p->status))
			continue;
		if (p->fd >= 0)
			rcs[i] = commit_spilled(p);
		else
			buffered[nb++] = p;
	}
	if (nb)
		commit_buffered(sb, buffered, nb, brc);
	for (size_t i = 0, j = 0; i < n; i++) {
		if (j < nb && buffered[j] == (seg_put_t *)puts[i])
			rcs[i] = brc[j++];
		if (rcs[i] && !first)
			first = rcs[i];
		put_free((seg_put_t *)puts[i]);
	}
	free(buffered);
	free(brc);
	return first;
}

static int seg_put_commit(store_put_t *put, int64_t retain_until)
{
	int rc;
	(void)seg_put_commit_many(&put, 1, &retain_until, &rc);
	return rc;
}

/* Deletions since the last sync made durable. */
static int seg_sync(store_backend_t *be)
{
	seg_backend_t *sb = sgb(be);
	int rc = 0;

	pthread_mutex_lock(&sb->lock);
	for (seg_t *s = sb->segs; s; s = s->next) {
		if (!s->dirty || s->unlinked)
			continue;
		s->dirty = 0;
		if (fdatasync(s->fd) < 0 && rc == 0) {
			s->dirty = 1;
			rc = seg_errno(be, errno, "fdatasync segment",
			    sb->segdir);
		}
	}
	pthread_mutex_unlock(&sb->lock);
	return rc;
}

/* --- get ------------------------------------------------------------------ */

static int seg_get_open(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, store_get_t **out)
{
	seg_backend_t *sb = sgb(be);
	uint8_t key[KEY_LEN];
	seg_get_t *g;
	seg_rec_t *r;

	if (!(g = calloc(1, sizeof *g)))
		return store_be_fail(be, AR_ENOMEM, "out of memory");
	make_key(key, tenant, id);
	pthread_mutex_lock(&sb->lock);
	if (!(r = seg_rec_find(sb, key))) {
		pthread_mutex_unlock(&sb->lock);
		free(g);
		return store_be_fail(be, AR_ENOENT, "no such object");
	}
	g->base.be = be;
	g->seg = r->seg;
	g->seg->refs++;
	g->off = r->off + HDR_LEN;
	g->size = r->len;
	pthread_mutex_unlock(&sb->lock);
	*out = &g->base;
	return 0;
}

static uint64_t seg_get_size(const store_get_t *get)
{
	return ((const seg_get_t *)get)->size;
}

static int seg_get_pread(store_get_t *get, void *buf, size_t len,
    uint64_t off, size_t *got)
{
	seg_get_t *g = (seg_get_t *)get;
	unsigned char *p = buf;
	size_t done = 0;

	if (off >= g->size) {
		*got = 0;
		return 0;
	}
	if (len > g->size - off)
		len = (size_t)(g->size - off);
	while (done < len) {
		ssize_t n = pread(g->seg->fd, p + done, len - done,
		    (off_t)(g->off + off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*got = done;
			return n < 0 ? seg_errno(get->be, errno, "read",
			    "segment") : store_be_fail(get->be, AR_ETRUNC,
			    "segment shorter than its record");
		}
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static void seg_get_close(store_get_t *get)
{
	seg_get_t *g = (seg_get_t *)get;
	seg_backend_t *sb = sgb(get->be);

	pthread_mutex_lock(&sb->lock);
	seg_release(sb, g->seg);
	pthread_mutex_unlock(&sb->lock);
	free(g);
}

/* --- delete, walk, drop --------------------------------------------------- */

static int seg_delete(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, int deferred)
{
	seg_backend_t *sb = sgb(be);
	unsigned char hdr[SEAL_HEADER_LEN];
	char when[32], why[160];
	uint8_t key[KEY_LEN];
	seal_header_t h;
	seg_rec_t *r;
	ssize_t got;
	seg_t *s;
	int rc, err;

	if (sb->rdonly)
		return store_be_fail(be, AR_EPERM, "segment store %s opened "
		    "read-only", sb->segdir);
	make_key(key, tenant, id);
	pthread_mutex_lock(&sb->lock);
	if (!(r = seg_rec_find(sb, key))) {
		pthread_mutex_unlock(&sb->lock);
		return store_be_fail(be, AR_ENOENT, "no such object");
	}
	/* an object whose retain-until cannot be read is never deleted */
	got = pread(r->seg->fd, hdr, sizeof hdr, (off_t)(r->off + HDR_LEN));
	if ((rc = seal_header_parse(hdr, got < 0 ? 0 : (size_t)got, &h, why,
	    sizeof why)) || memcmp(h.tenant, tenant, STORE_TENANT_LEN) ||
	    memcmp(h.id, id, STORE_ID_LEN)) {
		pthread_mutex_unlock(&sb->lock);
		return store_be_fail(be, rc ? rc : AR_ECORRUPT, "record: %s; "
		    "not deleted", rc ? why : "header names another object");
	}
	if (ar_now() < h.retain_until) {
		pthread_mutex_unlock(&sb->lock);
		return store_be_fail(be, AR_ERETAINED, "retained until %s",
		    ar_time_fmt(h.retain_until, when, sizeof when));
	}
	s = r->seg;
	s->refs++;
	err = rec_remove(sb, r);
	/* a plain delete is durable now: the mark, or the unlinking */
	if (!err && !deferred && !s->unlinked && fdatasync(s->fd) < 0)
		err = errno;
	rc = !err && !deferred && s->unlinked ? ar_fsync_dir(sb->segdir) : 0;
	seg_release(sb, s);
	pthread_mutex_unlock(&sb->lock);
	if (err)
		return seg_errno(be, err, "delete in segment", sb->segdir);
	return rc ? store_be_fail(be, rc, "fsync directory %s: %s",
	    sb->segdir, ar_strerror(rc)) : 0;
}

struct collect {
	const uint8_t *tenant;
	uint8_t (*keys)[KEY_LEN];
	size_t n, cap;
	int rc;
};

static void collect_cb(const void *node, VISIT v, void *arg)
{
	const seg_rec_t *r = *(seg_rec_t *const *)node;
	struct collect *c = arg;

	if ((v != postorder && v != leaf) || c->rc)
		return;
	if (c->tenant && memcmp(r->key, c->tenant, STORE_TENANT_LEN))
		return;
	if ((c->rc = ar_grow((void **)&c->keys, &c->cap, c->n, KEY_LEN)))
		return;
	memcpy(c->keys[c->n++], r->key, KEY_LEN);
}

/* The keys of every record (of one tenant), copied out of the index. */
static int collect(seg_backend_t *sb, const uint8_t *tenant,
    struct collect *c)
{
	memset(c, 0, sizeof *c);
	c->tenant = tenant;
	pthread_mutex_lock(&sb->lock);
	twalk_r(sb->index, collect_cb, c);
	pthread_mutex_unlock(&sb->lock);
	if (c->rc)
		return store_be_fail(&sb->base, c->rc, "out of memory");
	return 0;
}

static int seg_walk(store_backend_t *be, const uint8_t *tenant,
    store_backend_walk_cb cb, void *arg)
{
	struct collect c;
	int rc;

	if ((rc = collect(sgb(be), tenant, &c)))
		return rc;
	for (size_t i = 0; i < c.n && rc == 0; i++)
		rc = cb(arg, c.keys[i], c.keys[i] + STORE_TENANT_LEN);
	free(c.keys);
	return rc;
}

static int seg_drop_tenant(store_backend_t *be, const uint8_t *tenant)
{
	seg_backend_t *sb = sgb(be);
	struct collect c;
	int rc, err = 0;

	if (sb->rdonly)
		return store_be_fail(be, AR_EPERM, "segment store %s opened "
		    "read-only", sb->segdir);
	if ((rc = collect(sb, tenant, &c)))
		return rc;
	pthread_mutex_lock(&sb->lock);
	for (size_t i = 0; i < c.n; i++) {
		seg_rec_t *r = seg_rec_find(sb, c.keys[i]);
		int e = r ? rec_remove(sb, r) : 0;
		if (e && !err)
			err = e;
	}
	pthread_mutex_unlock(&sb->lock);
	free(c.keys);
	if (err)
		return seg_errno(be, err, "delete in segment", sb->segdir);
	return seg_sync(be);
}

/* --- close, open ---------------------------------------------------------- */

static void seg_close(store_backend_t *be)
{
	seg_backend_t *sb = sgb(be);
	seg_t *s, *next;

	tdestroy(sb->index, free);
	for (s = sb->segs; s; s = next) {
		next = s->next;
		close(s->fd);
		free(s->damage);
		free(s);
	}
	pthread_mutex_destroy(&sb->lock);
	pthread_mutex_destroy(&sb->sync_lock);
	store_be_fini(be);
	free(sb);
}

static const struct store_backend_ops seg_ops = {
	.name = "seg",
	.put_begin = seg_put_begin,
	.put_write = seg_put_write,
	.put_commit = seg_put_commit,
	.put_commit_many = seg_put_commit_many,
	.put_abort = seg_put_abort,
	.sync = seg_sync,
	.get_open = seg_get_open,
	.get_size = seg_get_size,
	.get_pread = seg_get_pread,
	.get_close = seg_get_close,
	.del = seg_delete,
	.walk = seg_walk,
	.drop_tenant = seg_drop_tenant,
	.close = seg_close,
};

int store_backend_open_seg(store_backend_t **out, const char *dir,
    int rdonly)
{
	seg_backend_t *sb;
	int rc;

	if ((rc = store_be_open_args(out, dir)))
		return rc;
	if (!(sb = calloc(1, sizeof *sb)))
		return AR_ENOMEM;
	if (ar_path(sb->segdir, sizeof sb->segdir, "%s/seg", dir) ||
	    ar_path(sb->tmpdir, sizeof sb->tmpdir, "%s/tmp", dir) ||
	    ar_path(sb->corruptdir, sizeof sb->corruptdir, "%s/corrupt", dir)) {
		free(sb);
		return AR_ETOOBIG;
	}
	if (!rdonly && ((rc = ar_mkdirs(sb->segdir, 0700)) ||
	    (rc = ar_mkdirs(sb->tmpdir, 0700)))) {
		ar_log(AR_LOG_ERR, "store dir=%s status=%s", dir,
		    ar_strerror(rc));
		free(sb);
		return rc;
	}
	store_be_init(&sb->base, &seg_ops);
	sb->rdonly = rdonly;
	pthread_mutex_init(&sb->lock, NULL);
	pthread_mutex_init(&sb->sync_lock, NULL);
	if ((rc = seg_scan_all(sb))) {
		ar_log(AR_LOG_ERR, "store dir=%s status=%s reason=\"%s\"", dir,
		    ar_strerror(rc), store_backend_errmsg(&sb->base));
		store_backend_close(&sb->base);
		return rc;
	}
	*out = &sb->base;
	return 0;
}
