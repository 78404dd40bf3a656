/*
 * backend_seg_scan.c - opening a seg backend: every segment is scanned and
 * its intact records indexed; damage costs the damaged records alone.
 *
 * A record is intact when its header has a known magic (live or deleted)
 * and version, its length fits in the file, and the BLAKE2b-128 of its
 * data, key and length matches.  When a record is not intact, the scan
 * resynchronises: it looks for the next offset where an intact record
 * starts (magic, then the whole check), indexes everything from there on,
 * and logs the byte range between as damaged.  Nothing valid after the
 * bad bytes, and the bad bytes are a header cut short, a length running
 * past the end of the file, or zeros: a torn append (a crash while it was
 * written; never acknowledged, since a commit is acknowledged only after
 * its fdatasync) - ignored, as before.  Anything else is damage.
 *
 * A segment holding damage is never unlinked: once its intact records are
 * drained it is moved to dir/corrupt/ (like Postfix's corrupt queue), with
 * a list of its damaged ranges beside it (<seq>.damage, one
 * "offset=N length=N" line each), for an operator to look at;
 * store_backend_seg_damage() lists both kinds (spool: archivectl queue).
 */
#include "store/backend_seg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"

enum rec_state { REC_OK, REC_SHORT, REC_MAGIC, REC_LONG, REC_HASH };

/* Is there an intact record at off (file of size bytes)?  *len is its data
 * length, *live 1 unless it is marked deleted. */
static enum rec_state rec_check(int fd, uint64_t size, uint64_t off,
    unsigned char hdr[HDR_LEN], uint64_t *len, int *live)
{
	unsigned char buf[65536], hash[HASH_LEN];
	crypto_generichash_state hs;
	uint64_t done = 0;

	if (size - off < HDR_LEN ||
	    pread(fd, hdr, HDR_LEN, (off_t)off) != HDR_LEN)
		return REC_SHORT;
	*live = memcmp(hdr, seg_magic_live, 4) == 0;
	if ((!*live && memcmp(hdr, seg_magic_dead, 4)) ||
	    ar_get_u32(hdr + 4) != SEG_VERSION)
		return REC_MAGIC;
	*len = ar_get_u64(hdr + 40);
	if (*len > size - off - HDR_LEN)
		return REC_LONG;
	/* a deleted record is checked too: its length is trusted to find
	 * the next one (deleting changes the magic alone) */
	crypto_generichash_init(&hs, NULL, 0, HASH_LEN);
	while (done < *len) {
		size_t want = *len - done < sizeof buf ? (size_t)(*len - done) :
		    sizeof buf;
		ssize_t n = pread(fd, buf, want, (off_t)(off + HDR_LEN + done));
		if (n <= 0)
			return REC_SHORT;
		crypto_generichash_update(&hs, buf, (size_t)n);
		done += (uint64_t)n;
	}
	crypto_generichash_update(&hs, hdr + 8, KEY_LEN + 8);
	crypto_generichash_final(&hs, hash, HASH_LEN);
	return sodium_memcmp(hash, hdr + 48, HASH_LEN) ? REC_HASH : REC_OK;
}

/* The first offset >= from where an intact record starts, or size. */
static uint64_t resync(int fd, uint64_t size, uint64_t from)
{
	unsigned char buf[65536], hdr[HDR_LEN];
	uint64_t pos = from;

	while (pos + HDR_LEN <= size) {
		size_t want = size - pos < sizeof buf ? (size_t)(size - pos) :
		    sizeof buf;
		ssize_t n = pread(fd, buf, want, (off_t)pos);
		unsigned char *p = buf, *end;

		if (n < 4)
			break;
		end = buf + n;
		while ((p = memmem(p, (size_t)(end - p), "ARS", 3))) {
			uint64_t at = pos + (uint64_t)(p - buf), len;
			int live;
			if (p + 3 < end && (p[3] == 'R' || p[3] == 'X') &&
			    rec_check(fd, size, at, hdr, &len, &live) == REC_OK)
				return at;
			p++;
		}
		/* a magic cut by the buffer's end is found by the next read */
		pos += (uint64_t)n > 3 ? (uint64_t)n - 3 : (uint64_t)n;
	}
	return size;
}

/* Are bytes [off, size) all zero (space a crash left unwritten)? */
static int all_zero(int fd, uint64_t off, uint64_t size)
{
	unsigned char buf[65536];

	while (off < size) {
		size_t want = size - off < sizeof buf ? (size_t)(size - off) :
		    sizeof buf;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n <= 0)
			return 0;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i])
				return 0;
		off += (uint64_t)n;
	}
	return 1;
}

static int damage_add(seg_backend_t *sb, seg_t *s, uint64_t off,
    uint64_t len, const char *path)
{
	if (ar_grow((void **)&s->damage, &s->capdamage, s->ndamage,
	    sizeof *s->damage))
		return store_be_fail(&sb->base, AR_ENOMEM, "out of memory");
	s->damage[s->ndamage].off = off;
	s->damage[s->ndamage++].len = len;
	if (!sb->rdonly)
		ar_log(AR_LOG_ERR, "segment %s status=damaged offset=%" PRIu64
		    " length=%" PRIu64 " action=kept note=\"the records after "
		    "it are kept; the segment is moved to corrupt/ once they "
		    "are drained\"", path, off, len);
	return 0;
}

/* Index the intact records of segment fd. */
static int scan_segment(seg_backend_t *sb, uint64_t seq, int fd,
    const char *path)
{
	unsigned char hdr[HDR_LEN];
	struct stat st;
	uint64_t off = 0, size, len = 0, kept = 0;
	seg_t *s;
	int rc, live = 0;

	if (fstat(fd, &st) < 0) {
		rc = seg_errno(&sb->base, errno, "stat", path);
		close(fd);
		return rc;
	}
	size = (uint64_t)st.st_size;
	if (!(s = seg_add(sb, seq, fd, 0))) {
		close(fd);
		return store_be_fail(&sb->base, AR_ENOMEM, "out of memory");
	}
	while (off < size) {
		enum rec_state r = rec_check(fd, size, off, hdr, &len, &live);
		uint64_t next;

		if (r != REC_OK) {
			next = resync(fd, size, off + 1);
			if (next == size && (r == REC_SHORT || r == REC_LONG ||
			    all_zero(fd, off, size)))
				break;          /* a torn append: not acked */
			if ((rc = damage_add(sb, s, off, next - off, path)))
				return rc;
			off = next;
			continue;
		}
		if (live) {
			rc = seg_rec_insert(sb, hdr + 8, s, off, len);
			if (rc == AR_ENOMEM)
				return store_be_fail(&sb->base, rc,
				    "out of memory");
			if (rc == AR_EEXIST) {
				/* a deletion's mark lost in a crash, the name
				 * put again later: the later record is it */
				seg_rec_t *x = seg_rec_find(sb, hdr + 8);
				seg_t *old = x->seg;
				old->live--;
				if (old != s)    /* scanned: may go now */
					seg_maybe_unlink(sb, old);
				x->seg = s;
				x->off = off;
				x->len = len;
				s->live++;
			}
			kept++;
		}
		off += HDR_LEN + len;
	}
	s->end = s->synced = off;
	if (off < size && !sb->rdonly)   /* read-only: may be in progress */
		ar_log(AR_LOG_WARN, "segment %s status=torn offset=%" PRIu64
		    " ignored_bytes=%" PRIu64 " records=%" PRIu64, path, off,
		    size - off, kept);
	seg_maybe_unlink(sb, s);
	return 0;
}

static int seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The sequence number of a file name "<16 hex><suffix>", or -1. */
static int name_seq(const char *name, const char *suffix, uint64_t *seq)
{
	char *end;

	if (strlen(name) != 16 + strlen(suffix) || strcmp(name + 16, suffix))
		return -1;
	*seq = strtoull(name, &end, 16);
	return end == name + 16 ? 0 : -1;
}

int seg_scan_all(seg_backend_t *sb)
{
	uint64_t *seqs = NULL, seq;
	size_t n = 0, cap = 0;
	struct dirent *de;
	char path[PATH_MAX];
	DIR *d;
	int rc = 0;

	if (!(d = opendir(sb->segdir)))
		return errno == ENOENT && sb->rdonly ? 0 :
		    seg_errno(&sb->base, errno, "opendir", sb->segdir);
	while ((de = readdir(d))) {
		if (name_seq(de->d_name, ".seg", &seq))
			continue;
		if (ar_grow((void **)&seqs, &cap, n, sizeof *seqs)) {
			rc = store_be_fail(&sb->base, AR_ENOMEM,
			    "out of memory");
			break;
		}
		seqs[n++] = seq;
	}
	closedir(d);
	if (n)
		qsort(seqs, n, sizeof *seqs, seq_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		int fd;
		seg_name(sb, seqs[i], path, sizeof path);
		fd = open(path, (sb->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)     /* the owner removed it */
				continue;
			rc = seg_errno(&sb->base, errno, "open", path);
			break;
		}
		if ((rc = scan_segment(sb, seqs[i], fd, path)))
			break;
	}
	/* a segment moved aside keeps its number: never reused */
	if (rc == 0 && (d = opendir(sb->corruptdir))) {
		while ((de = readdir(d)))
			if (name_seq(de->d_name, ".seg", &seq) == 0 &&
			    seq >= sb->next_seq)
				sb->next_seq = seq + 1;
		closedir(d);
	}
	free(seqs);
	return rc;
}

/* --- corrupt/ -------------------------------------------------------------- */

void seg_move_aside(seg_backend_t *sb, seg_t *s)
{
	char from[PATH_MAX], to[PATH_MAX], list[PATH_MAX];
	char *buf = NULL;
	size_t blen = 0;
	uint64_t bytes = 0;
	FILE *f;
	int rc;

	seg_name(sb, s->seq, from, sizeof from);
	if (ar_path(to, sizeof to, "%s/%016" PRIx64 ".seg", sb->corruptdir,
	    s->seq) || ar_path(list, sizeof list, "%s/%016" PRIx64 ".damage",
	    sb->corruptdir, s->seq)) {
		ar_log(AR_LOG_ERR, "segment %s status=damaged action=kept "
		    "reason=\"path too long\"", from);
		return;
	}
	if (!(f = open_memstream(&buf, &blen)))
		return;
	for (size_t i = 0; i < s->ndamage; i++) {
		fprintf(f, "offset=%" PRIu64 " length=%" PRIu64 "\n",
		    s->damage[i].off, s->damage[i].len);
		bytes += s->damage[i].len;
	}
	fclose(f);
	/* the list first: a crash before the rename finds the segment again
	 * at the next open, its damage again, and writes the list again */
	if ((rc = ar_mkdirs(sb->corruptdir, 0700)) ||
	    (rc = ar_file_write_atomic(list, buf, blen, 0600)) ||
	    (rename(from, to) < 0 && (rc = ar_status_from_errno(errno))) ||
	    (rc = ar_fsync_dir(sb->corruptdir)) ||
	    (rc = ar_fsync_dir(sb->segdir)))
		ar_log(AR_LOG_ERR, "segment %s status=damaged action=kept "
		    "reason=\"moving to %s: %s\"", from, sb->corruptdir,
		    ar_strerror(rc));
	else
		ar_log(AR_LOG_WARN, "segment %s status=moved_aside to=%s "
		    "damaged_ranges=%zu damaged_bytes=%" PRIu64, from, to,
		    s->ndamage, bytes);
	free(buf);
}

/* --- listing the damage ------------------------------------------------- */

static int list_moved(seg_backend_t *sb, store_seg_damage_cb cb, void *arg)
{
	struct dirent *de;
	uint64_t seq;
	DIR *d;
	int rc = 0;

	if (!(d = opendir(sb->corruptdir)))
		return errno == ENOENT ? 0 : seg_errno(&sb->base, errno,
		    "opendir", sb->corruptdir);
	while (rc == 0 && (de = readdir(d))) {
		store_seg_damage_t dm;
		char path[PATH_MAX], line[128];
		struct stat st;
		FILE *f;
		int any = 0;

		if (name_seq(de->d_name, ".seg", &seq))
			continue;
		memset(&dm, 0, sizeof dm);
		dm.moved = 1;
		if (ar_path(dm.file, sizeof dm.file, "%s/%s", sb->corruptdir,
		    de->d_name) || ar_path(path, sizeof path, "%s/%016" PRIx64
		    ".damage", sb->corruptdir, seq))
			continue;
		if (stat(dm.file, &st) == 0)
			dm.file_size = (uint64_t)st.st_size;
		if ((f = fopen(path, "re"))) {
			while (rc == 0 && fgets(line, sizeof line, f)) {
				if (sscanf(line, "offset=%" SCNu64 " length=%"
				    SCNu64, &dm.offset, &dm.length) != 2)
					continue;
				any = 1;
				rc = cb(arg, &dm);
			}
			fclose(f);
		}
		if (!any && rc == 0) {    /* no list: the whole file */
			dm.offset = 0;
			dm.length = dm.file_size;
			rc = cb(arg, &dm);
		}
	}
	closedir(d);
	return rc;
}

int store_backend_seg_damage(store_backend_t *be, store_seg_damage_cb cb,
    void *arg)
{
	seg_backend_t *sb = sgb(be);
	store_seg_damage_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (!be || !cb || be->ops->name == NULL ||
	    strcmp(be->ops->name, "seg"))
		return AR_EINVAL;
	/* segments still holding intact records, copied out under the lock */
	pthread_mutex_lock(&sb->lock);
	for (seg_t *s = sb->segs; s && rc == 0; s = s->next)
		for (size_t i = 0; i < s->ndamage && !s->unlinked; i++) {
			if ((rc = ar_grow((void **)&v, &cap, n, sizeof *v)))
				break;
			memset(&v[n], 0, sizeof v[n]);
			seg_name(sb, s->seq, v[n].file, sizeof v[n].file);
			v[n].offset = s->damage[i].off;
			v[n].length = s->damage[i].len;
			v[n].file_size = s->end;
			v[n].live_records = s->live;
			n++;
		}
	pthread_mutex_unlock(&sb->lock);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = cb(arg, &v[i]);
	free(v);
	return rc ? rc : list_moved(sb, cb, arg);
}
