/*
 * test_backend_seg.c - the seg object store backend (store/backend_seg.c),
 * through the real backend on real files:
 *   - put / get round trips, store_put_commit_many of 100 objects, sizes
 *     and pread at offsets (past the end: got 0), write-once (AR_EEXIST at
 *     put_begin, at commit, and for the same id twice in one commit_many),
 *     abort;
 *   - reopen: committed objects back byte for byte, deletions (immediate
 *     and deferred + sync) stay, a deleted name can be put again;
 *   - torn tails (last record chopped, zeros appended: ignored) and
 *     damage (garbage appended, a flipped byte in an earlier record: that
 *     record alone is lost, every intact record after it is kept, the
 *     damaged range is reported, and the drained segment is moved to
 *     corrupt/ with its list of damaged ranges, never unlinked); puts
 *     after the reopen survive;
 *   - objects over 256 KiB: spilled to dir/tmp while open, own segment,
 *     round trip before and after reopen, delete;
 *   - segment files go away once every object is deleted;
 *   - retain-until on delete (AR_ERETAINED), unreadable headers;
 *   - walk (all, one tenant, stop), drop_tenant, also after reopen;
 *   - read-only handles (a snapshot; AR_EPERM for changes; missing dir);
 *   - concurrent commits (single and grouped) and deletions;
 *   - disk full (tmpfs, root only): AR_ENOSPC, nothing torn indexed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "store/store.h"
#include "store/seal_format.h"
#include "testlib.h"

#define HDR_LEN   64                    /* a segment record's header */
#define SPILL     (256u * 1024)         /* larger objects are spilled */
#define WRITE_MAX 100000                /* put_obj writes in pieces */

static uint8_t tenant_a[STORE_TENANT_LEN], tenant_b[STORE_TENANT_LEN];

/* One object of a test's model: its bytes are a function of the fields. */
typedef struct obj {
	uint8_t tenant[STORE_TENANT_LEN];
	uint8_t id[STORE_ID_LEN];
	size_t len;
	uint32_t salt;
	int64_t retain;
	int alive;
} obj_t;

/* A minimal object: a valid sealed header (so delete can read
 * retain-until) followed by a body that depends on id and salt.  Shorter
 * than a header: body only. */
static void fake_object(const uint8_t *tenant, const uint8_t *id,
    int64_t retain, uint32_t salt, unsigned char *out, size_t len)
{
	size_t i = 0;

	if (len >= SEAL_HEADER_LEN) {
		tl_seal_header(tenant, id, retain, out);
		i = SEAL_HEADER_LEN;
	}
	for (; i < len; i++)
		out[i] = (unsigned char)(id[i % STORE_ID_LEN] + salt * 31u +
		    i * 7u + (i >> 9));
}

static void obj_init(obj_t *o, const uint8_t *tenant, size_t len,
    uint32_t salt, int64_t retain)
{
	memset(o, 0, sizeof *o);
	memcpy(o->tenant, tenant, STORE_TENANT_LEN);
	randombytes_buf(o->id, sizeof o->id);
	o->len = len;
	o->salt = salt;
	o->retain = retain;
}

static unsigned char *obj_bytes(const obj_t *o)
{
	unsigned char *b = malloc(o->len ? o->len : 1);
	if (!b)
		abort();
	fake_object(o->tenant, o->id, o->retain, o->salt, b, o->len);
	return b;
}

/* Begin o's put and write its bytes in pieces of at most WRITE_MAX. */
static int begin_obj(store_backend_t *be, const obj_t *o, store_put_t **out)
{
	unsigned char *b = obj_bytes(o);
	store_put_t *p;
	int rc;

	*out = NULL;
	if ((rc = store_backend_put_begin(be, o->tenant, o->id, &p))) {
		free(b);
		return rc;
	}
	for (size_t off = 0; off < o->len && rc == 0; off += WRITE_MAX)
		rc = store_put_write(p, b + off, o->len - off < WRITE_MAX ?
		    o->len - off : WRITE_MAX);
	free(b);
	if (rc) {
		store_put_abort(p);
		return rc;
	}
	*out = p;
	return 0;
}

static int put_obj(store_backend_t *be, obj_t *o)
{
	store_put_t *p;
	int rc = begin_obj(be, o, &p);
	if (rc == 0)
		rc = store_put_commit(p, o->retain);
	o->alive = rc == 0;
	return rc;
}

/* store_put_commit_many of objs[0..n): the number of non-zero rcs; *first
 * gets the call's return value. */
static size_t commit_group(store_backend_t *be, obj_t *objs, size_t n,
    int *first)
{
	store_put_t **puts = calloc(n, sizeof *puts);
	int64_t *retain = calloc(n, sizeof *retain);
	int *rcs = calloc(n, sizeof *rcs);
	size_t bad = 0, m = 0;
	obj_t **which = calloc(n, sizeof *which);

	if (!puts || !retain || !rcs || !which)
		abort();
	for (size_t i = 0; i < n; i++) {
		objs[i].alive = 0;
		if (begin_obj(be, &objs[i], &puts[m])) {
			bad++;
			continue;
		}
		retain[m] = objs[i].retain;
		which[m++] = &objs[i];
	}
	*first = m ? store_put_commit_many(puts, m, retain, rcs) : 0;
	for (size_t i = 0; i < m; i++) {
		which[i]->alive = rcs[i] == 0;
		bad += rcs[i] != 0;
	}
	free(puts);
	free(retain);
	free(rcs);
	free(which);
	return bad;
}

/* 0 when o reads back as the model says (alive: its bytes; deleted:
 * AR_ENOENT), else -1 with the reason in why. */
static int check_obj(store_backend_t *be, const obj_t *o, char *why,
    size_t wlen)
{
	unsigned char *want, *got;
	size_t len = 0;
	int rc;

	if (!o->alive) {
		store_get_t *g = NULL;
		rc = store_backend_get_open(be, o->tenant, o->id, &g);
		if (rc == AR_ENOENT)
			return 0;
		if (rc == 0)
			store_get_close(g);
		snprintf(why, wlen, "deleted object opens: %s", ar_strerror(rc));
		return -1;
	}
	want = obj_bytes(o);
	got = malloc(o->len + 1);
	if (!got)
		abort();
	rc = tl_read_all(be, o->tenant, o->id, got, o->len + 1, &len);
	if (rc)
		snprintf(why, wlen, "read: %s (%s)", ar_strerror(rc),
		    store_backend_errmsg(be));
	else if (len != o->len)
		snprintf(why, wlen, "size %zu, want %zu", len, o->len);
	else if (memcmp(got, want, len))
		snprintf(why, wlen, "bytes differ");
	else
		why[0] = 0;
	free(want);
	free(got);
	return why[0] ? -1 : 0;
}

/* store_backend_get_open's status; the handle, if any, is closed. */
static int opens(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id)
{
	store_get_t *g = NULL;
	int rc = store_backend_get_open(be, tenant, id, &g);
	if (rc == 0)
		store_get_close(g);
	return rc;
}

#define CHECK_OBJ(be, o) do { char w_[256]; \
	int r_ = check_obj((be), (o), w_, sizeof w_); CHECK(r_ == 0); \
	if (r_) fprintf(stderr, "    %s: %s\n", #o, w_); } while (0)

/* --- walk ----------------------------------------------------------------- */

struct seen {
	size_t n, cap;
	uint8_t (*keys)[STORE_TENANT_LEN + STORE_ID_LEN];
};

static int seen_cb(void *arg, const uint8_t *tenant, const uint8_t *id)
{
	struct seen *s = arg;
	if (ar_grow((void **)&s->keys, &s->cap, s->n, sizeof *s->keys))
		abort();
	memcpy(s->keys[s->n], tenant, STORE_TENANT_LEN);
	memcpy(s->keys[s->n] + STORE_TENANT_LEN, id, STORE_ID_LEN);
	s->n++;
	return 0;
}

static int stop_cb(void *arg, const uint8_t *tenant, const uint8_t *id)
{
	(void)arg; (void)tenant; (void)id;
	return 42;
}

/* The walk (of tenant, or all when NULL) returns exactly the live objects
 * of the model (of that tenant), each once. */
static int walk_matches(store_backend_t *be, const uint8_t *tenant,
    const obj_t *objs, size_t n)
{
	struct seen s = {0};
	size_t want = 0, bad = 0;
	int rc = store_backend_walk(be, tenant, seen_cb, &s);

	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t hits = 0;
		if (!objs[i].alive || (tenant && memcmp(objs[i].tenant, tenant,
		    STORE_TENANT_LEN)))
			continue;
		want++;
		for (size_t j = 0; j < s.n; j++)
			hits += memcmp(s.keys[j], objs[i].tenant,
			    STORE_TENANT_LEN) == 0 && memcmp(s.keys[j] +
			    STORE_TENANT_LEN, objs[i].id, STORE_ID_LEN) == 0;
		bad += hits != 1;
	}
	if (rc || bad || s.n != want)
		fprintf(stderr, "walk: rc=%d saw %zu, want %zu, %zu missing or "
		    "repeated\n", rc, s.n, want, bad);
	free(s.keys);
	return rc == 0 && bad == 0 && s.n == want;
}

/* Every object of the model reads back as it should and, when the model
 * is the whole store (whole), the walk sees exactly the live ones.  Prints
 * the first few differences. */
static int verify(store_backend_t *be, const obj_t *objs, size_t n,
    int whole, const char *what)
{
	char why[256];
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		if (check_obj(be, &objs[i], why, sizeof why)) {
			if (bad < 5)
				fprintf(stderr, "%s: object %zu (%zu bytes, %s): "
				    "%s\n", what, i, objs[i].len,
				    objs[i].alive ? "live" : "deleted", why);
			bad++;
		}
	if (whole && !walk_matches(be, NULL, objs, n)) {
		fprintf(stderr, "%s: walk differs\n", what);
		bad++;
	}
	return bad == 0;
}

/* --- files ---------------------------------------------------------------- */

static int count_in(const char *dir, const char *sub)
{
	char path[4096];
	(void)ar_path(path, sizeof path, "%s/%s", dir, sub);
	return tl_count_entries(path);
}

/* The oldest (newest == 0) or newest segment file of dir.  0 or -1. */
static int seg_file(const char *dir, int newest, char *out, size_t len)
{
	char segdir[4096], best[256] = "";
	struct dirent *de;
	DIR *d;

	(void)ar_path(segdir, sizeof segdir, "%s/seg", dir);
	if (!(d = opendir(segdir)))
		return -1;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".seg") ||
		    l >= sizeof best)
			continue;
		if (!best[0] || (newest ? strcmp(de->d_name, best) > 0 :
		    strcmp(de->d_name, best) < 0))
			memcpy(best, de->d_name, l + 1);
	}
	closedir(d);
	if (!best[0])
		return -1;
	return ar_path(out, len, "%s/%s", segdir, best) ? -1 : 0;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static int append_bytes(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	int rc;
	if (fd < 0)
		return -1;
	rc = write(fd, buf, len) == (ssize_t)len ? 0 : -1;
	close(fd);
	return rc;
}

static int flip_byte(const char *path, off_t off)
{
	unsigned char c;
	int fd = open(path, O_RDWR), rc = -1;
	if (fd < 0)
		return -1;
	if (pread(fd, &c, 1, off) == 1) {
		c ^= 0x01;
		rc = pwrite(fd, &c, 1, off) == 1 ? 0 : -1;
	}
	close(fd);
	return rc;
}

static store_backend_t *open_rw(const char *dir)
{
	store_backend_t *be = NULL;
	int rc = store_backend_open_seg(&be, dir, 0);
	if (rc) {
		fprintf(stderr, "open %s: %s\n", dir, ar_strerror(rc));
		abort();
	}
	return be;
}

/* --- 1. put / get --------------------------------------------------------- */

static void test_put_get(const char *root)
{
	static const size_t sizes[] = { 96, 97, 500, 5000, 70000 };
	enum { NS = sizeof sizes / sizeof sizes[0], NMANY = 100 };
	obj_t small[NS], many[NMANY], grp[5], twin, empty;
	unsigned char *b, back[16];
	store_put_t *p, *p2;
	store_get_t *g;
	char dir[4096];
	size_t got;
	int rc;

	(void)ar_path(dir, sizeof dir, "%s/putget", root);
	store_backend_t *be = open_rw(dir);

	for (size_t i = 0; i < NS; i++) {
		obj_init(&small[i], tenant_a, sizes[i], (uint32_t)i, 0);
		CHECK_RC(put_obj(be, &small[i]), 0);
	}
	CHECK(verify(be, small, NS, 1, "small puts"));
	CHECK(count_in(dir, "tmp") == 0);

	/* an empty object */
	obj_init(&empty, tenant_b, 0, 0, 0);
	CHECK_RC(store_backend_put_begin(be, empty.tenant, empty.id, &p), 0);
	CHECK_RC(store_put_commit(p, 0), 0);
	empty.alive = 1;
	CHECK_RC(store_backend_get_open(be, empty.tenant, empty.id, &g), 0);
	CHECK(store_get_size(g) == 0);
	got = 99;
	CHECK_RC(store_get_pread(g, back, sizeof back, 0, &got), 0);
	CHECK(got == 0);
	store_get_close(g);

	/* sizes and pread at offsets */
	b = obj_bytes(&small[3]);                     /* 5000 bytes */
	CHECK_RC(store_backend_get_open(be, tenant_a, small[3].id, &g), 0);
	CHECK(store_get_size(g) == 5000);
	CHECK_RC(store_get_pread(g, back, 10, 0, &got), 0);
	CHECK(got == 10 && memcmp(back, b, 10) == 0);
	CHECK_RC(store_get_pread(g, back, 1, 1234, &got), 0);
	CHECK(got == 1 && back[0] == b[1234]);
	CHECK_RC(store_get_pread(g, back, sizeof back, 4990, &got), 0);
	CHECK(got == 10 && memcmp(back, b + 4990, 10) == 0);
	got = 99;
	CHECK_RC(store_get_pread(g, back, sizeof back, 5000, &got), 0);
	CHECK(got == 0);
	got = 99;
	CHECK_RC(store_get_pread(g, back, sizeof back, 1u << 30, &got), 0);
	CHECK(got == 0);
	store_get_close(g);
	/* the neighbours' records do not leak into a read */
	CHECK_RC(store_backend_get_open(be, tenant_a, small[0].id, &g), 0);
	CHECK(store_get_size(g) == 96);
	got = 99;
	CHECK_RC(store_get_pread(g, back, sizeof back, 90, &got), 0);
	CHECK(got == 6);
	store_get_close(g);

	/* write-once: refused at begin, the original untouched */
	CHECK_RC(store_backend_put_begin(be, tenant_a, small[3].id, &p),
	    AR_EEXIST);
	CHECK_RC(tl_put_bytes(be, tenant_a, small[3].id, "other", 5, 0),
	    AR_EEXIST);
	CHECK(verify(be, small, NS, 0, "after refused puts"));
	free(b);

	/* the same id under another tenant is another object */
	obj_t other = small[2];
	memcpy(other.tenant, tenant_b, STORE_TENANT_LEN);
	other.salt = 77;
	CHECK_RC(put_obj(be, &other), 0);

	/* two puts begun before either commits: the second commit refuses */
	obj_init(&twin, tenant_a, 800, 1, 0);
	obj_t twin2 = twin;
	twin2.len = 900;
	twin2.salt = 2;
	CHECK_RC(begin_obj(be, &twin, &p), 0);
	CHECK_RC(begin_obj(be, &twin2, &p2), 0);
	CHECK_RC(store_put_commit(p, 0), 0);
	CHECK_RC(store_put_commit(p2, 0), AR_EEXIST);
	twin.alive = 1;

	/* abort leaves nothing */
	obj_t ab;
	obj_init(&ab, tenant_a, 300, 0, 0);
	CHECK_RC(begin_obj(be, &ab, &p), 0);
	store_put_abort(p);
	CHECK_RC(opens(be, tenant_a, ab.id), AR_ENOENT);

	/* 100 objects in one commit */
	for (size_t i = 0; i < NMANY; i++)
		obj_init(&many[i], i % 3 ? tenant_a : tenant_b,
		    100 + i * 53, (uint32_t)(1000 + i), 0);
	CHECK(commit_group(be, many, NMANY, &rc) == 0);
	CHECK_RC(rc, 0);
	CHECK(verify(be, many, NMANY, 0, "commit_many"));

	/* the same id twice in one commit_many: one wins, one AR_EEXIST */
	for (size_t i = 0; i < 5; i++)
		obj_init(&grp[i], tenant_a, 200 + 10 * i, (uint32_t)(50 + i), 0);
	memcpy(grp[3].id, grp[1].id, STORE_ID_LEN);
	CHECK(commit_group(be, grp, 5, &rc) == 1);
	CHECK_RC(rc, AR_EEXIST);
	CHECK(grp[0].alive && grp[2].alive && grp[4].alive);
	CHECK(grp[1].alive + grp[3].alive == 1);
	/* one name: the model keeps the winner */
	if (grp[3].alive)
		grp[1] = grp[3];
	grp[3] = grp[4];
	CHECK(verify(be, grp, 4, 0, "commit_many with a duplicate"));
	CHECK(count_in(dir, "tmp") == 0);

	/* all of it after a reopen, exactly: the refused duplicate stays
	 * refused, the aborted put absent */
	{
		obj_t all[NS + NMANY + 8];
		size_t n = 0;
		for (size_t i = 0; i < NS; i++)
			all[n++] = small[i];
		for (size_t i = 0; i < NMANY; i++)
			all[n++] = many[i];
		for (size_t i = 0; i < 4; i++)
			all[n++] = grp[i];
		all[n++] = twin;
		all[n++] = other;
		all[n++] = empty;
		CHECK(verify(be, all, n, 1, "put_get before reopen"));
		store_backend_close(be);
		be = open_rw(dir);
		CHECK(verify(be, all, n, 1, "put_get after reopen"));
		CHECK_RC(opens(be, tenant_a, ab.id), AR_ENOENT);
		/* the winner deleted: the refused twin's record does not
		 * come back in its place */
		CHECK_RC(store_backend_delete(be, grp[1].tenant, grp[1].id), 0);
		all[NS + NMANY + 1].alive = 0;
		store_backend_close(be);
		be = open_rw(dir);
		CHECK(verify(be, all, n, 1, "duplicate's winner deleted"));
	}
	store_backend_close(be);
}

/* More puts in one commit than one pwritev takes (512 records). */
static void test_many(const char *root)
{
	enum { N = 600 };
	obj_t *o = calloc(N, sizeof *o);
	char dir[4096];
	store_backend_t *be;
	int rc;

	if (!o)
		abort();
	(void)ar_path(dir, sizeof dir, "%s/many", root);
	be = open_rw(dir);
	for (size_t i = 0; i < N; i++)
		obj_init(&o[i], i % 2 ? tenant_a : tenant_b, 96 + i % 300,
		    (uint32_t)i, 0);
	CHECK(commit_group(be, o, N, &rc) == 0);
	CHECK_RC(rc, 0);
	CHECK(verify(be, o, N, 1, "600 in one commit"));
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(verify(be, o, N, 1, "600 in one commit, reopened"));
	store_backend_close(be);
	free(o);
}

/* --- 2. reopen ------------------------------------------------------------ */

static void test_reopen(const char *root)
{
	enum { N1 = 50, N2 = 10 };
	obj_t o[N1 + N2 + 1];
	store_backend_t *be;
	char dir[4096];
	int rc;

	(void)ar_path(dir, sizeof dir, "%s/reopen", root);
	be = open_rw(dir);
	for (size_t i = 0; i < N1; i++)
		obj_init(&o[i], i % 2 ? tenant_a : tenant_b, 96 + i * 97,
		    (uint32_t)i, 0);
	for (size_t i = 0; i < 20; i++)
		CHECK_RC(put_obj(be, &o[i]), 0);
	CHECK(commit_group(be, o + 20, 30, &rc) == 0);
	CHECK_RC(rc, 0);
	/* 5 deleted at once, 5 deferred (made durable by the sync) */
	for (size_t i = 0; i < 10; i++) {
		size_t k = i * 5 + 2;
		CHECK_RC(i % 2 ? store_backend_delete(be, o[k].tenant, o[k].id) :
		    store_backend_delete_deferred(be, o[k].tenant, o[k].id), 0);
		o[k].alive = 0;
	}
	CHECK_RC(store_backend_delete(be, o[2].tenant, o[2].id), AR_ENOENT);
	CHECK_RC(store_backend_sync(be), 0);
	CHECK(verify(be, o, N1, 1, "before close"));
	store_backend_close(be);

	be = open_rw(dir);
	CHECK(verify(be, o, N1, 1, "first reopen"));
	/* a second session: new puts, deletions in old and new segments, and
	 * a deleted name put again with other bytes */
	for (size_t i = N1; i < N1 + N2; i++) {
		obj_init(&o[i], tenant_a, 5000 + i, (uint32_t)i, 0);
		CHECK_RC(put_obj(be, &o[i]), 0);
	}
	CHECK_RC(store_backend_delete_deferred(be, o[0].tenant, o[0].id), 0);
	o[0].alive = 0;
	CHECK_RC(store_backend_delete_deferred(be, o[31].tenant, o[31].id), 0);
	o[31].alive = 0;
	CHECK_RC(store_backend_delete(be, o[N1].tenant, o[N1].id), 0);
	o[N1].alive = 0;
	CHECK_RC(store_backend_delete_deferred(be, o[N1 + 1].tenant,
	    o[N1 + 1].id), 0);
	o[N1 + 1].alive = 0;
	o[N1 + N2] = o[7];                        /* deleted in session 1 */
	o[N1 + N2].len = 1234;
	o[N1 + N2].salt = 999;
	CHECK_RC(put_obj(be, &o[N1 + N2]), 0);
	/* one name: the model keeps the new object in o[7] */
	o[7] = o[N1 + N2];
	CHECK_RC(store_backend_sync(be), 0);
	CHECK(verify(be, o, N1 + N2, 1, "second session"));
	store_backend_close(be);

	be = open_rw(dir);
	CHECK(verify(be, o, N1 + N2, 1, "second reopen"));
	store_backend_close(be);
	/* and once more, after a session that changed nothing */
	be = open_rw(dir);
	CHECK(verify(be, o, N1 + N2, 1, "third reopen"));
	store_backend_close(be);
}

/* --- 3. torn tails and corruption ----------------------------------------- */

struct damage_list {
	store_seg_damage_t d[8];
	size_t n;
};

static int damage_cb(void *arg, const store_seg_damage_t *d)
{
	struct damage_list *l = arg;
	if (l->n < AR_ARRAY_LEN(l->d))
		l->d[l->n] = *d;
	l->n++;
	return 0;
}

/* The damage the backend reports: exactly one range, [off, off + len), in
 * a segment moved aside or not. */
static int damage_is(store_backend_t *be, uint64_t off, uint64_t len,
    int moved, const char *what)
{
	struct damage_list l = { .n = 0 };
	int rc = store_backend_seg_damage(be, damage_cb, &l);

	if (rc || l.n != 1 || l.d[0].offset != off || l.d[0].length != len ||
	    l.d[0].moved != moved) {
		fprintf(stderr, "%s: damage rc=%d n=%zu first=%llu+%llu moved=%d"
		    ", want %llu+%llu moved=%d\n", what, rc, l.n,
		    l.n ? (unsigned long long)l.d[0].offset : 0ULL,
		    l.n ? (unsigned long long)l.d[0].length : 0ULL,
		    l.n ? l.d[0].moved : -1, (unsigned long long)off,
		    (unsigned long long)len, moved);
		return 0;
	}
	return 1;
}

static int no_damage(store_backend_t *be)
{
	struct damage_list l = { .n = 0 };
	return store_backend_seg_damage(be, damage_cb, &l) == 0 && l.n == 0;
}

static void test_torn_garbage(const char *root)
{
	obj_t o[7];
	unsigned char junk[200];
	char dir[4096], seg[4096];
	store_backend_t *be;

	(void)ar_path(dir, sizeof dir, "%s/torn-garbage", root);
	be = open_rw(dir);
	for (size_t i = 0; i < 5; i++) {
		obj_init(&o[i], tenant_a, 300 + 111 * i, (uint32_t)i, 0);
		CHECK_RC(put_obj(be, &o[i]), 0);
	}
	store_backend_close(be);

	/* zeros after the last record (what a crash can leave of an append
	 * that was never made durable): a torn tail, not damage */
	CHECK(seg_file(dir, 1, seg, sizeof seg) == 0);
	memset(junk, 0, sizeof junk);
	CHECK(append_bytes(seg, junk, sizeof junk) == 0);
	be = open_rw(dir);
	CHECK(verify(be, o, 5, 1, "zeros appended"));
	CHECK(no_damage(be));
	store_backend_close(be);
	CHECK(truncate(seg, file_size(seg) - (off_t)sizeof junk) == 0);

	/* bytes that are no record of ours: damage, the records kept */
	off_t end = file_size(seg);
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)(0x5a ^ i);
	CHECK(append_bytes(seg, junk, sizeof junk) == 0);
	be = open_rw(dir);
	CHECK(verify(be, o, 5, 1, "garbage appended"));
	CHECK(damage_is(be, (uint64_t)end, sizeof junk, 0, "garbage"));
	obj_init(&o[5], tenant_a, 700, 5, 0);
	CHECK_RC(put_obj(be, &o[5]), 0);
	CHECK(verify(be, o, 6, 1, "put after garbage"));
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(verify(be, o, 6, 1, "reopen after garbage"));
	store_backend_close(be);

	/* a short torn tail (less than a record header) on the newest */
	CHECK(seg_file(dir, 1, seg, sizeof seg) == 0);
	CHECK(count_in(dir, "seg") == 2);      /* the damaged one stays */
	CHECK(append_bytes(seg, "ARSR\0\0\0\1", 8) == 0);
	be = open_rw(dir);
	CHECK(verify(be, o, 6, 1, "short garbage appended"));
	obj_init(&o[6], tenant_b, 96, 6, 0);
	CHECK_RC(put_obj(be, &o[6]), 0);
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(verify(be, o, 7, 1, "reopen after short garbage"));
	store_backend_close(be);
}

static void test_torn_chop(const char *root)
{
	obj_t o[9];
	char dir[4096], seg[4096];
	store_backend_t *be;
	off_t size;
	int rc;

	(void)ar_path(dir, sizeof dir, "%s/torn-chop", root);
	be = open_rw(dir);
	for (size_t i = 0; i < 7; i++)
		obj_init(&o[i], tenant_a, 1000 + 10 * i, (uint32_t)i, 0);
	for (size_t i = 0; i < 4; i++)
		CHECK_RC(put_obj(be, &o[i]), 0);
	CHECK(commit_group(be, o + 4, 3, &rc) == 0);
	store_backend_close(be);

	/* chop the last record's last 5 bytes */
	CHECK(seg_file(dir, 1, seg, sizeof seg) == 0);
	size = file_size(seg);
	CHECK(size == (off_t)(7 * HDR_LEN + 7 * 1000 + 10 * 21));
	CHECK(truncate(seg, size - 5) == 0);
	be = open_rw(dir);
	o[6].alive = 0;
	CHECK(verify(be, o, 7, 1, "last record chopped"));
	/* its name is free again; a new put works */
	obj_t again = o[6];
	again.salt = 66;
	again.len = 500;
	CHECK_RC(put_obj(be, &again), 0);
	obj_init(&o[7], tenant_b, 2000, 7, 0);
	CHECK_RC(put_obj(be, &o[7]), 0);
	o[6] = again;
	CHECK(verify(be, o, 8, 1, "puts after chop"));
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(verify(be, o, 8, 1, "reopen after chop"));
	store_backend_close(be);

	/* chopped inside the newest record's header */
	CHECK(seg_file(dir, 1, seg, sizeof seg) == 0);
	size = file_size(seg);
	CHECK(size == (off_t)(2 * HDR_LEN + 500 + 2000));
	CHECK(truncate(seg, HDR_LEN + 500 + HDR_LEN / 2) == 0);
	be = open_rw(dir);
	o[7].alive = 0;
	CHECK(verify(be, o, 8, 1, "header chopped"));
	obj_init(&o[8], tenant_b, 3000, 8, 0);
	CHECK_RC(put_obj(be, &o[8]), 0);
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(verify(be, o, 9, 1, "reopen after header chop"));
	store_backend_close(be);
}

static void test_flip(const char *root)
{
	enum { NA = 6, NB = 3 };
	obj_t o[NA + NB + 1];
	char dir[4096], oldest[4096], newest[4096];
	store_backend_t *be;
	off_t off = 0;

	(void)ar_path(dir, sizeof dir, "%s/flip", root);
	/* segment A: six records, one commit each */
	be = open_rw(dir);
	for (size_t i = 0; i < NA; i++) {
		obj_init(&o[i], tenant_a, 400 + 64 * i, (uint32_t)i, 0);
		CHECK_RC(put_obj(be, &o[i]), 0);
	}
	store_backend_close(be);
	/* segment B: a later session's */
	be = open_rw(dir);
	for (size_t i = NA; i < NA + NB; i++) {
		obj_init(&o[i], tenant_b, 600 + i, (uint32_t)i, 0);
		CHECK_RC(put_obj(be, &o[i]), 0);
	}
	store_backend_close(be);
	CHECK(seg_file(dir, 0, oldest, sizeof oldest) == 0);
	CHECK(seg_file(dir, 1, newest, sizeof newest) == 0);
	CHECK(strcmp(oldest, newest) != 0);
	CHECK(count_in(dir, "seg") == 2);

	/* one byte inside record 2's data (past the sealed header) */
	for (size_t i = 0; i < 2; i++)
		off += HDR_LEN + (off_t)o[i].len;
	CHECK(flip_byte(oldest, off + HDR_LEN + 150) == 0);
	be = open_rw(dir);
	o[2].alive = 0;               /* that record alone is lost */
	CHECK(verify(be, o, NA + NB, 1, "byte flipped in record 2"));
	CHECK(damage_is(be, (uint64_t)off, HDR_LEN + o[2].len, 0, "flip"));
	obj_init(&o[NA + NB], tenant_a, 777, 99, 0);
	CHECK_RC(put_obj(be, &o[NA + NB]), 0);
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(verify(be, o, NA + NB + 1, 1, "reopen after flip"));

	/* the records after the damage drain; the segment is then moved to
	 * corrupt/, whole, with its damaged range listed beside it */
	off_t size = file_size(oldest);
	char moved[4096], list[4096], *text = NULL;
	size_t tlen = 0;
	const char *base = strrchr(oldest, '/') + 1;
	for (size_t i = 0; i < NA; i++)
		if (o[i].alive) {
			CHECK_RC(store_backend_delete(be, o[i].tenant, o[i].id),
			    0);
			o[i].alive = 0;
		}
	CHECK(verify(be, o, NA + NB + 1, 1, "after draining the flipped"));
	CHECK(file_size(oldest) < 0);
	(void)ar_path(moved, sizeof moved, "%s/corrupt/%s", dir, base);
	CHECK(file_size(moved) == size);
	(void)ar_path(list, sizeof list, "%s/corrupt/%.16s.damage", dir, base);
	CHECK_RC(ar_file_read(list, 4096, (unsigned char **)&text, &tlen), 0);
	char want[128];
	snprintf(want, sizeof want, "offset=%lld length=%zu\n",
	    (long long)off, HDR_LEN + o[2].len);
	CHECK(text && tlen == strlen(want) && !memcmp(text, want, tlen));
	free(text);
	CHECK(damage_is(be, (uint64_t)off, HDR_LEN + o[2].len, 1,
	    "moved aside"));
	store_backend_close(be);
	/* a reopen neither rescans nor reuses the moved segment */
	be = open_rw(dir);
	CHECK(verify(be, o, NA + NB + 1, 1, "reopen after moving aside"));
	CHECK(damage_is(be, (uint64_t)off, HDR_LEN + o[2].len, 1,
	    "moved aside, reopened"));
	obj_init(&o[0], tenant_a, 500, 123, 0);
	CHECK_RC(put_obj(be, &o[0]), 0);
	CHECK(file_size(moved) == size);
	store_backend_close(be);
}

/* --- 4. large objects ----------------------------------------------------- */

static void test_large(const char *root)
{
	obj_t big, big2, edge, over, small[2];
	store_put_t *p;
	store_get_t *g;
	char dir[4096];
	store_backend_t *be;
	unsigned char *want, *buf;
	int segs;

	(void)ar_path(dir, sizeof dir, "%s/large", root);
	be = open_rw(dir);
	obj_init(&small[0], tenant_a, 1000, 1, 0);
	CHECK_RC(put_obj(be, &small[0]), 0);
	segs = count_in(dir, "seg");

	/* 1 MiB + 123 bytes in pieces: spilled to tmp/ while open */
	obj_init(&big, tenant_a, 1024 * 1024 + 123, 7, 0);
	want = obj_bytes(&big);
	CHECK_RC(store_backend_put_begin(be, big.tenant, big.id, &p), 0);
	CHECK(count_in(dir, "tmp") == 0);
	for (size_t off = 0; off < big.len; off += WRITE_MAX) {
		CHECK_RC(store_put_write(p, want + off, big.len - off <
		    WRITE_MAX ? big.len - off : WRITE_MAX), 0);
		if (off + WRITE_MAX > SPILL && off + WRITE_MAX < big.len)
			CHECK(count_in(dir, "tmp") == 1);
	}
	CHECK(count_in(dir, "tmp") == 1);
	CHECK_RC(store_put_commit(p, 0), 0);
	big.alive = 1;
	CHECK(count_in(dir, "tmp") == 0);
	CHECK(count_in(dir, "seg") == segs + 1);      /* a segment of its own */

	obj_init(&small[1], tenant_b, 2000, 2, 0);
	CHECK_RC(put_obj(be, &small[1]), 0);
	CHECK_OBJ(be, &small[0]);
	CHECK_OBJ(be, &small[1]);

	/* round trip before any reopen, and reads at offsets */
	CHECK_OBJ(be, &big);
	buf = malloc(70000);
	CHECK_RC(store_backend_get_open(be, big.tenant, big.id, &g), 0);
	if (g) {
		size_t got = 0, bad = 0;
		CHECK(store_get_size(g) == big.len);
		for (uint64_t off = 0; off < big.len; off += 65536 + 17) {
			int rc = store_get_pread(g, buf, 70000, off, &got);
			size_t n = big.len - off < 70000 ? big.len - off : 70000;
			bad += rc || got != n || memcmp(buf, want + off, n);
		}
		CHECK(bad == 0);
		got = 99;
		CHECK_RC(store_get_pread(g, buf, 100, big.len, &got), 0);
		CHECK(got == 0);
		CHECK_RC(store_get_pread(g, buf, 100, big.len - 3, &got), 0);
		CHECK(got == 3 && memcmp(buf, want + big.len - 3, 3) == 0);
		store_get_close(g);
	}

	/* exactly 256 KiB stays in memory; one byte more spills */
	obj_init(&edge, tenant_a, SPILL, 8, 0);
	CHECK_RC(begin_obj(be, &edge, &p), 0);
	CHECK(count_in(dir, "tmp") == 0);
	CHECK_RC(store_put_commit(p, 0), 0);
	edge.alive = 1;
	obj_init(&over, tenant_a, SPILL + 1, 9, 0);
	CHECK_RC(begin_obj(be, &over, &p), 0);
	CHECK(count_in(dir, "tmp") == 1);
	store_put_abort(p);                   /* abort removes the temp file */
	CHECK(count_in(dir, "tmp") == 0);
	CHECK_RC(opens(be, over.tenant, over.id), AR_ENOENT);
	CHECK_OBJ(be, &edge);

	/* two large puts of one name begun together: the second commit
	 * refuses and leaves no temp file */
	obj_t dup2;
	store_put_t *p2;
	obj_init(&dup2, tenant_b, SPILL + 100, 11, 0);
	obj_t dup2b = dup2;
	dup2b.salt = 12;
	CHECK_RC(begin_obj(be, &dup2, &p), 0);
	CHECK_RC(begin_obj(be, &dup2b, &p2), 0);
	CHECK(count_in(dir, "tmp") == 2);
	CHECK_RC(store_put_commit(p, 0), 0);
	CHECK_RC(store_put_commit(p2, 0), AR_EEXIST);
	dup2.alive = 1;
	CHECK(count_in(dir, "tmp") == 0);

	/* a large object deleted in the session that wrote it: its segment
	 * goes */
	obj_init(&big2, tenant_b, 300 * 1024, 10, 0);
	segs = count_in(dir, "seg");
	CHECK_RC(put_obj(be, &big2), 0);
	CHECK(count_in(dir, "seg") == segs + 1);
	CHECK_RC(store_backend_delete(be, big2.tenant, big2.id), 0);
	big2.alive = opens(be, big2.tenant, big2.id) == 0;
	CHECK(!big2.alive);
	CHECK(count_in(dir, "seg") == segs);
	store_backend_close(be);

	be = open_rw(dir);
	obj_t all[10] = { big, small[0], small[1], edge, big2, dup2 };
	CHECK(verify(be, all, 6, 1, "large after reopen"));
	/* deleted after the reopen: its segment goes */
	segs = count_in(dir, "seg");
	CHECK_RC(store_backend_delete(be, big.tenant, big.id), 0);
	all[0].alive = 0;
	CHECK(count_in(dir, "seg") == segs - 1);
	/* large objects in a commit_many with small ones */
	int rc;
	obj_init(&all[6], tenant_a, 500, 20, 0);
	obj_init(&all[7], tenant_a, 600 * 1024, 21, 0);
	obj_init(&all[8], tenant_b, 700, 22, 0);
	obj_init(&all[9], tenant_b, SPILL + 5, 23, 0);
	CHECK(commit_group(be, all + 6, 4, &rc) == 0);
	CHECK_RC(rc, 0);
	CHECK(count_in(dir, "tmp") == 0);
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(verify(be, all, 10, 1, "large after second reopen"));
	store_backend_close(be);
	free(want);
	free(buf);
}

/* --- 5. segments go away -------------------------------------------------- */

static void test_segments_go(const char *root)
{
	enum { N = 80 };
	obj_t o[N];
	char dir[4096];
	store_backend_t *be;
	int rc;

	(void)ar_path(dir, sizeof dir, "%s/gone", root);
	be = open_rw(dir);
	for (size_t i = 0; i < N; i++)
		obj_init(&o[i], i % 2 ? tenant_a : tenant_b,
		    i == 5 ? 512 * 1024 : 96 + 13 * i, (uint32_t)i, 0);
	CHECK(commit_group(be, o, 50, &rc) == 0);
	for (size_t i = 50; i < 60; i++)
		CHECK_RC(put_obj(be, &o[i]), 0);
	store_backend_close(be);
	/* a second session adds a segment */
	be = open_rw(dir);
	for (size_t i = 60; i < N; i++)
		CHECK_RC(put_obj(be, &o[i]), 0);
	CHECK(count_in(dir, "seg") == 3);       /* old, spilled, active */
	for (size_t i = 0; i < N; i++) {
		CHECK_RC(i % 3 ? store_backend_delete_deferred(be, o[i].tenant,
		    o[i].id) : store_backend_delete(be, o[i].tenant, o[i].id), 0);
		o[i].alive = 0;
	}
	CHECK_RC(store_backend_sync(be), 0);
	CHECK(verify(be, o, N, 1, "all deleted"));
	/* no file left while open either, the active segment included: a
	 * drained store keeps no dead bytes on disk */
	CHECK(count_in(dir, "seg") == 0);
	if (count_in(dir, "seg") != 0)
		fprintf(stderr, "segments left while open after deleting "
		    "every object: %d\n", count_in(dir, "seg"));
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(count_in(dir, "seg") == 0);
	CHECK(verify(be, o, N, 1, "all deleted, reopened"));
	store_backend_close(be);

	/* one session: put, delete all (deferred), sync */
	be = open_rw(dir);
	for (size_t i = 0; i < 10; i++) {
		obj_init(&o[i], tenant_a, 200, (uint32_t)i, 0);
		CHECK_RC(put_obj(be, &o[i]), 0);
	}
	for (size_t i = 0; i < 10; i++) {
		CHECK_RC(store_backend_delete_deferred(be, o[i].tenant, o[i].id),
		    0);
		o[i].alive = 0;
	}
	CHECK_RC(store_backend_sync(be), 0);
	CHECK(count_in(dir, "seg") == 0);
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(count_in(dir, "seg") == 0);
	CHECK(verify(be, o, 10, 1, "one session, reopened"));
	store_backend_close(be);
}

/* --- 6. retain-until ------------------------------------------------------ */

static void test_retain(const char *root)
{
	obj_t kept, gone, bad;
	int64_t now = ar_now();
	char dir[4096], when[64];
	unsigned char zeros[300];
	uint8_t id[STORE_ID_LEN];
	store_backend_t *be;

	(void)ar_path(dir, sizeof dir, "%s/retain", root);
	be = open_rw(dir);
	obj_init(&kept, tenant_a, 300, 1, now + 86400);
	CHECK_RC(put_obj(be, &kept), 0);
	obj_init(&gone, tenant_a, 300, 2, 0);
	CHECK_RC(put_obj(be, &gone), 0);

	CHECK_RC(store_backend_delete(be, tenant_a, kept.id), AR_ERETAINED);
	CHECK_RC(store_backend_delete_deferred(be, tenant_a, kept.id),
	    AR_ERETAINED);
	CHECK_OBJ(be, &kept);
	CHECK_RC(store_backend_delete(be, tenant_b, kept.id), AR_ENOENT);
	CHECK_RC(store_backend_delete(be, tenant_a, gone.id), 0);
	gone.alive = 0;
	CHECK_RC(store_backend_delete(be, tenant_a, gone.id), AR_ENOENT);

	/* a record without a readable header is never deleted; nor one
	 * whose header names another object */
	memset(zeros, 0, sizeof zeros);
	randombytes_buf(id, sizeof id);
	CHECK_RC(tl_put_bytes(be, tenant_a, id, zeros, sizeof zeros, 0), 0);
	CHECK_RC(store_backend_delete(be, tenant_a, id), AR_ECORRUPT);
	obj_init(&bad, tenant_a, 300, 3, 0);
	{
		unsigned char *b = obj_bytes(&kept);    /* kept's header */
		CHECK_RC(tl_put_bytes(be, tenant_a, bad.id, b, bad.len, 0), 0);
		free(b);
	}
	CHECK_RC(store_backend_delete(be, tenant_a, bad.id), AR_ECORRUPT);
	CHECK_RC(opens(be, tenant_a, bad.id), 0);
	store_backend_close(be);

	/* still retained after a reopen; deletable from its date on */
	be = open_rw(dir);
	CHECK_OBJ(be, &gone);
	CHECK_RC(store_backend_delete(be, tenant_a, kept.id), AR_ERETAINED);
	(void)ar_path(when, sizeof when, "%lld", (long long)(now + 86400 - 1));
	setenv("AR_TEST_NOW", when, 1);
	CHECK_RC(store_backend_delete(be, tenant_a, kept.id), AR_ERETAINED);
	CHECK_OBJ(be, &kept);
	(void)ar_path(when, sizeof when, "%lld", (long long)(now + 86400));
	setenv("AR_TEST_NOW", when, 1);
	CHECK_RC(store_backend_delete_deferred(be, tenant_a, kept.id), 0);
	unsetenv("AR_TEST_NOW");
	kept.alive = 0;
	CHECK_RC(store_backend_sync(be), 0);
	CHECK_OBJ(be, &kept);
	store_backend_close(be);
	be = open_rw(dir);
	CHECK_OBJ(be, &kept);
	store_backend_close(be);
}

/* --- 7. walk, drop_tenant ------------------------------------------------- */

static void test_walk_drop(const char *root)
{
	enum { N = 30 };
	obj_t o[N];
	char dir[4096];
	store_backend_t *be;
	uint8_t tenant_c[STORE_TENANT_LEN];
	int rc;

	randombytes_buf(tenant_c, sizeof tenant_c);
	(void)ar_path(dir, sizeof dir, "%s/walk", root);
	be = open_rw(dir);
	/* tenant_a's are retained: drop_tenant removes them anyway */
	for (size_t i = 0; i < N; i++)
		obj_init(&o[i], i < 20 ? tenant_a : tenant_b, 200 + i,
		    (uint32_t)i, i < 20 ? ar_now() + 86400 * 365 : 0);
	CHECK(commit_group(be, o, 10, &rc) == 0);
	for (size_t i = 10; i < N; i++)
		CHECK_RC(put_obj(be, &o[i]), 0);
	CHECK(walk_matches(be, NULL, o, N));
	CHECK(walk_matches(be, tenant_a, o, N));
	CHECK(walk_matches(be, tenant_b, o, N));
	CHECK(walk_matches(be, tenant_c, o, N));
	CHECK_RC(store_backend_walk(be, NULL, stop_cb, NULL), 42);
	CHECK_RC(store_backend_walk(be, tenant_b, stop_cb, NULL), 42);
	CHECK_RC(store_backend_walk(be, tenant_c, stop_cb, NULL), 0);
	/* deletions show */
	CHECK_RC(store_backend_delete(be, o[25].tenant, o[25].id), 0);
	o[25].alive = 0;
	CHECK_RC(store_backend_delete_deferred(be, o[26].tenant, o[26].id), 0);
	o[26].alive = 0;
	CHECK(walk_matches(be, NULL, o, N));
	CHECK(walk_matches(be, tenant_b, o, N));
	store_backend_close(be);

	be = open_rw(dir);
	CHECK(walk_matches(be, NULL, o, N));
	CHECK(walk_matches(be, tenant_a, o, N));
	CHECK_RC(store_backend_drop_tenant(be, tenant_a), 0);
	for (size_t i = 0; i < 20; i++)
		o[i].alive = 0;
	CHECK(verify(be, o, N, 1, "tenant dropped"));
	CHECK(walk_matches(be, tenant_a, o, N));
	CHECK(walk_matches(be, tenant_b, o, N));
	CHECK_RC(store_backend_drop_tenant(be, tenant_a), 0);
	CHECK_RC(store_backend_drop_tenant(be, tenant_c), 0);
	CHECK(verify(be, o, N, 1, "tenant dropped twice"));
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(verify(be, o, N, 1, "tenant dropped, reopened"));
	CHECK(walk_matches(be, tenant_a, o, N));
	store_backend_close(be);
}

/* --- 8. read-only handles ------------------------------------------------- */

static void test_rdonly(const char *root)
{
	enum { N = 10 };
	obj_t o[N + 2];
	char dir[4096], missing[4096];
	store_backend_t *rw, *ro;
	store_put_t *p;
	struct stat st;
	int segs, rc;

	(void)ar_path(dir, sizeof dir, "%s/rdonly", root);
	rw = open_rw(dir);
	for (size_t i = 0; i < N; i++)
		obj_init(&o[i], i % 2 ? tenant_a : tenant_b, 150 + 40 * i,
		    (uint32_t)i, 0);
	CHECK(commit_group(rw, o, 6, &rc) == 0);
	for (size_t i = 6; i < N; i++)
		CHECK_RC(put_obj(rw, &o[i]), 0);
	segs = count_in(dir, "seg");

	CHECK_RC(store_backend_open_seg(&ro, dir, 1), 0);
	CHECK(verify(ro, o, N, 1, "read-only view"));
	CHECK_RC(store_backend_put_begin(ro, tenant_a, o[0].id, &p), AR_EPERM);
	obj_t fresh;
	obj_init(&fresh, tenant_a, 100, 1, 0);
	CHECK_RC(store_backend_put_begin(ro, tenant_a, fresh.id, &p), AR_EPERM);
	CHECK_RC(store_backend_delete(ro, o[1].tenant, o[1].id), AR_EPERM);
	CHECK_RC(store_backend_delete_deferred(ro, o[1].tenant, o[1].id),
	    AR_EPERM);
	CHECK_RC(store_backend_drop_tenant(ro, tenant_a), AR_EPERM);
	CHECK(verify(ro, o, N, 1, "read-only after refusals"));
	CHECK(verify(rw, o, N, 1, "writer after read-only refusals"));
	CHECK(count_in(dir, "seg") == segs);
	/* the writer goes on */
	CHECK_RC(put_obj(rw, &fresh), 0);
	CHECK_RC(store_backend_delete(rw, o[2].tenant, o[2].id), 0);
	o[2].alive = 0;
	o[N] = fresh;
	CHECK(verify(rw, o, N + 1, 1, "writer after read-only open"));
	store_backend_close(ro);
	CHECK_RC(store_backend_open_seg(&ro, dir, 1), 0);
	CHECK(verify(ro, o, N + 1, 1, "second read-only view"));
	store_backend_close(ro);
	store_backend_close(rw);

	/* a read-only handle removes nothing, even a segment of dead records */
	rw = open_rw(dir);
	obj_init(&o[N + 1], tenant_b, 100, 5, 0);
	CHECK_RC(put_obj(rw, &o[N + 1]), 0);
	for (size_t i = 0; i < N + 2; i++)
		if (o[i].alive) {
			CHECK_RC(store_backend_delete_deferred(rw, o[i].tenant,
			    o[i].id), 0);
			o[i].alive = 0;
		}
	CHECK_RC(store_backend_sync(rw), 0);
	store_backend_close(rw);
	segs = count_in(dir, "seg");
	CHECK_RC(store_backend_open_seg(&ro, dir, 1), 0);
	CHECK(verify(ro, o, N + 2, 1, "read-only, all deleted"));
	CHECK(count_in(dir, "seg") == segs);
	store_backend_close(ro);

	/* a directory that does not exist: an empty view, nothing created */
	(void)ar_path(missing, sizeof missing, "%s/no-such-spool", root);
	CHECK_RC(store_backend_open_seg(&ro, missing, 1), 0);
	if (ro) {
		CHECK(walk_matches(ro, NULL, o, 0));
		CHECK_RC(opens(ro, tenant_a, o[0].id), AR_ENOENT);
		CHECK_RC(store_backend_put_begin(ro, tenant_a, o[0].id, &p),
		    AR_EPERM);
		store_backend_close(ro);
	}
	CHECK(stat(missing, &st) < 0 && errno == ENOENT);
}

/* --- 9. threads ----------------------------------------------------------- */

#define NTHR    8
#define PER_THR 200
#define GROUP   10

struct tctx {
	store_backend_t *be;
	obj_t *objs;              /* NTHR * PER_THR */
	int *committed, *deleted; /* atomics */
	int *done;                /* committers finished (atomic) */
	int t, fails, bad_reads, deletions;
};

static void *commit_thread(void *arg)
{
	struct tctx *c = arg;
	obj_t *mine = c->objs + (size_t)c->t * PER_THR;

	for (size_t i = 0; i < PER_THR; i += GROUP) {
		size_t k = (size_t)c->t * PER_THR + i;
		if ((i / GROUP + (size_t)c->t) % 2) {
			int rc;
			if (commit_group(c->be, mine + i, GROUP, &rc) || rc)
				c->fails++;
		} else {
			for (size_t j = 0; j < GROUP; j++)
				if (put_obj(c->be, &mine[i + j]))
					c->fails++;
		}
		for (size_t j = 0; j < GROUP; j++)
			if (mine[i + j].alive)
				__atomic_store_n(&c->committed[k + j], 1,
				    __ATOMIC_RELEASE);
	}
	__atomic_add_fetch(c->done, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

/* Deletes every fourth object once committed (a few at once, most
 * deferred), reading each back first. */
static void *delete_thread(void *arg)
{
	struct tctx *c = arg;
	char why[256];
	int last = 0;

	while (!last) {
		last = __atomic_load_n(c->done, __ATOMIC_ACQUIRE) == NTHR;
		for (size_t k = 1; k < NTHR * PER_THR; k += 4) {
			obj_t o;
			int rc;
			if (c->deleted[k] ||
			    !__atomic_load_n(&c->committed[k], __ATOMIC_ACQUIRE))
				continue;
			o = c->objs[k];
			o.alive = 1;
			if (check_obj(c->be, &o, why, sizeof why))
				c->bad_reads++;
			rc = k % 32 == 1 ?
			    store_backend_delete(c->be, o.tenant, o.id) :
			    store_backend_delete_deferred(c->be, o.tenant, o.id);
			if (rc)
				c->fails++;
			else
				c->deletions++;
			c->deleted[k] = 1;
		}
		if (!last)
			sched_yield();
	}
	return NULL;
}

static void test_threads(const char *root)
{
	enum { N = NTHR * PER_THR };
	obj_t *objs = calloc(N, sizeof *objs);
	int *committed = calloc(N, sizeof *committed);
	int *deleted = calloc(N, sizeof *deleted);
	struct tctx ctx[NTHR + 1];
	pthread_t th[NTHR + 1];
	char dir[4096];
	store_backend_t *be;
	int done = 0, fails = 0, bad_reads = 0, ndel = 0;

	if (!objs || !committed || !deleted)
		abort();
	(void)ar_path(dir, sizeof dir, "%s/threads", root);
	be = open_rw(dir);
	for (size_t k = 0; k < N; k++)
		obj_init(&objs[k], k % 2 ? tenant_a : tenant_b,
		    96 + (k * 37) % 3000, (uint32_t)k, 0);
	for (int t = 0; t <= NTHR; t++) {
		memset(&ctx[t], 0, sizeof ctx[t]);
		ctx[t].be = be;
		ctx[t].objs = objs;
		ctx[t].committed = committed;
		ctx[t].deleted = deleted;
		ctx[t].done = &done;
		ctx[t].t = t;
		CHECK(pthread_create(&th[t], NULL, t < NTHR ? commit_thread :
		    delete_thread, &ctx[t]) == 0);
	}
	for (int t = 0; t <= NTHR; t++) {
		pthread_join(th[t], NULL);
		fails += ctx[t].fails;
		bad_reads += ctx[t].bad_reads;
	}
	ndel = ctx[NTHR].deletions;
	CHECK(fails == 0);
	CHECK(bad_reads == 0);
	CHECK(ndel == N / 4);
	size_t uncommitted = 0;
	for (size_t k = 0; k < N; k++) {
		uncommitted += !committed[k];
		if (deleted[k])
			objs[k].alive = 0;
	}
	CHECK(uncommitted == 0);
	CHECK_RC(store_backend_sync(be), 0);
	CHECK(verify(be, objs, N, 1, "threads"));
	store_backend_close(be);
	be = open_rw(dir);
	CHECK(verify(be, objs, N, 1, "threads, reopened"));
	store_backend_close(be);
	free(objs);
	free(committed);
	free(deleted);
}

/* --- 10. disk full -------------------------------------------------------- */

static void test_enospc(const char *root)
{
	enum { MAXN = 200 };
	obj_t o[MAXN], big;
	char dir[4096];
	store_backend_t *be;
	size_t n = 0;
	int rc = 0;

	if (geteuid() != 0) {
		printf("skip: disk-full test needs root to mount a tmpfs\n");
		return;
	}
	(void)ar_path(dir, sizeof dir, "%s/full", root);
	if (mkdir(dir, 0700) < 0 ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700") < 0) {
		printf("skip: disk-full test needs to mount a tmpfs (%s)\n",
		    strerror(errno));
		return;
	}
	be = open_rw(dir);
	while (n < MAXN) {
		obj_init(&o[n], n % 2 ? tenant_a : tenant_b, 20000 + 7 * n,
		    (uint32_t)n, 0);
		if ((rc = put_obj(be, &o[n])))
			break;
		n++;
	}
	printf("disk full after %zu objects\n", n);
	CHECK(n > 10 && n < MAXN);
	CHECK_RC(rc, AR_ENOSPC);
	CHECK(ar_status_temporary(rc));
	o[n].alive = 0;                       /* the failed one */
	CHECK(verify(be, o, n + 1, 1, "disk full"));
	CHECK(count_in(dir, "tmp") == 0);

	/* a large one fails while spilling, leaving no temp file */
	obj_init(&big, tenant_a, 900 * 1024, 1, 0);
	CHECK_RC(put_obj(be, &big), AR_ENOSPC);
	CHECK(count_in(dir, "tmp") == 0);
	CHECK_RC(opens(be, big.tenant, big.id), AR_ENOENT);
	store_backend_close(be);

	be = open_rw(dir);
	CHECK(verify(be, o, n + 1, 1, "disk full, reopened"));
	store_backend_close(be);
	CHECK(umount2(dir, MNT_DETACH) == 0);
}

int main(void)
{
	char *root = tl_tmpdir("beseg");

	if (sodium_init() < 0)
		return 2;
	randombytes_buf(tenant_a, sizeof tenant_a);
	randombytes_buf(tenant_b, sizeof tenant_b);
	test_put_get(root);
	test_many(root);
	test_reopen(root);
	test_torn_garbage(root);
	test_torn_chop(root);
	test_flip(root);
	test_large(root);
	test_segments_go(root);
	test_retain(root);
	test_walk_drop(root);
	test_rdonly(root);
	test_threads(root);
	test_enospc(root);
	tl_rmrf(root);
	free(root);
	return tl_done();
}
