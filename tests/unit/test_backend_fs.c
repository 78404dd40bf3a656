/*
 * test_backend_fs.c - the fs object store backend: write-once, modes,
 * temp files, retain-until on delete, walk, drop, concurrent puts and
 * sync, disk full.
 */
#include <errno.h>
#include <pthread.h>
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

static uint8_t tenant_a[STORE_TENANT_LEN], tenant_b[STORE_TENANT_LEN];

/* A minimal object: a valid sealed header (so delete can read
 * retain-until) followed by a body. */
static void fake_object(const uint8_t *tenant, const uint8_t *id,
    int64_t retain, unsigned char *out, size_t len)
{
	tl_seal_header(tenant, id, retain, out);
	for (size_t i = SEAL_HEADER_LEN; i < len; i++)
		out[i] = (unsigned char)(i * 7);
}

static void obj_path(const char *root, const uint8_t *tenant,
    const uint8_t *id, char *out, size_t len)
{
	char th[33], ih[33];
	ar_hex(tenant, 16, th);
	ar_hex(id, 16, ih);
	(void)ar_path(out, len, "%s/%s/%.4s/%.4s/%s", root, th, ih, ih + 4, ih);
}

static void test_put_get(store_backend_t *be, const char *root)
{
	unsigned char obj[5000], back[6000], other[5000];
	uint8_t id[STORE_ID_LEN];
	char path[4096];
	struct stat st;
	size_t len;
	store_put_t *p;

	randombytes_buf(id, sizeof id);
	fake_object(tenant_a, id, 0, obj, sizeof obj);
	CHECK_RC(tl_put_bytes(be, tenant_a, id, obj, sizeof obj, 0), 0);
	CHECK_RC(store_backend_sync(be), 0);
	CHECK_RC(tl_read_all(be, tenant_a, id, back, sizeof back, &len), 0);
	CHECK(len == sizeof obj && memcmp(back, obj, len) == 0);

	obj_path(root, tenant_a, id, path, sizeof path);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0400);

	/* write-once: refused at begin, original untouched */
	memset(other, 'X', sizeof other);
	CHECK_RC(store_backend_put_begin(be, tenant_a, id, &p), AR_EEXIST);
	CHECK_RC(tl_put_bytes(be, tenant_a, id, other, sizeof other, 0),
	    AR_EEXIST);
	CHECK_RC(tl_read_all(be, tenant_a, id, back, sizeof back, &len), 0);
	CHECK(len == sizeof obj && memcmp(back, obj, len) == 0);

	/* same id under another tenant is another object */
	CHECK_RC(tl_put_bytes(be, tenant_b, id, other, sizeof other, 0), 0);
	CHECK_RC(tl_read_all(be, tenant_a, id, back, sizeof back, &len), 0);
	CHECK(memcmp(back, obj, len) == 0);

	/* the name appearing between begin and commit: commit refuses */
	uint8_t id2[STORE_ID_LEN];
	store_put_t *p1, *p2;
	randombytes_buf(id2, sizeof id2);
	CHECK_RC(store_backend_put_begin(be, tenant_a, id2, &p1), 0);
	CHECK_RC(store_backend_put_begin(be, tenant_a, id2, &p2), 0);
	CHECK_RC(store_put_write(p1, obj, sizeof obj), 0);
	CHECK_RC(store_put_write(p2, other, sizeof other), 0);
	CHECK_RC(store_put_commit(p1, 0), 0);
	CHECK_RC(store_put_commit(p2, 0), AR_EEXIST);
	CHECK(strstr(store_backend_errmsg(be), "already exists") != NULL);
	CHECK_RC(tl_read_all(be, tenant_a, id2, back, sizeof back, &len), 0);
	CHECK(len == sizeof obj && memcmp(back, obj, len) == 0);

	/* abort leaves nothing */
	uint8_t id3[STORE_ID_LEN];
	randombytes_buf(id3, sizeof id3);
	CHECK_RC(store_backend_put_begin(be, tenant_a, id3, &p), 0);
	CHECK_RC(store_put_write(p, obj, 100), 0);
	store_put_abort(p);
	CHECK_RC(store_backend_get_open(be, tenant_a, id3, &(store_get_t *){0}),
	    AR_ENOENT);

	/* the temp dir is empty after all of this */
	char tmp[4096];
	(void)ar_path(tmp, sizeof tmp, "%s/tmp", root);
	CHECK(tl_count_entries(tmp) == 0);

	/* pread past the end */
	store_get_t *g;
	size_t got = 99;
	CHECK_RC(store_backend_get_open(be, tenant_a, id, &g), 0);
	CHECK_RC(store_get_pread(g, back, 10, sizeof obj, &got), 0);
	CHECK(got == 0);
	CHECK_RC(store_get_pread(g, back, 10, sizeof obj - 4, &got), 0);
	CHECK(got == 4);
	store_get_close(g);
}

static void test_delete(store_backend_t *be)
{
	unsigned char obj[300];
	uint8_t id[STORE_ID_LEN], id2[STORE_ID_LEN];
	int64_t now = ar_now();
	char when[64];

	randombytes_buf(id, sizeof id);
	fake_object(tenant_a, id, now + 86400, obj, sizeof obj);
	CHECK_RC(tl_put_bytes(be, tenant_a, id, obj, sizeof obj, now + 86400), 0);
	CHECK_RC(store_backend_delete(be, tenant_a, id), AR_ERETAINED);
	store_get_t *g0 = NULL;
	CHECK_RC(store_backend_get_open(be, tenant_a, id, &g0), 0);
	store_get_close(g0);
	/* wrong tenant: not there */
	CHECK_RC(store_backend_delete(be, tenant_b, id), AR_ENOENT);

	(void)ar_path(when, sizeof when, "%lld", (long long)(now + 86400 - 1));
	setenv("AR_TEST_NOW", when, 1);
	CHECK_RC(store_backend_delete(be, tenant_a, id), AR_ERETAINED);
	(void)ar_path(when, sizeof when, "%lld", (long long)(now + 86400));
	setenv("AR_TEST_NOW", when, 1);
	CHECK_RC(store_backend_delete(be, tenant_a, id), 0);
	CHECK_RC(store_backend_delete(be, tenant_a, id), AR_ENOENT);
	store_get_t *g = NULL;
	CHECK_RC(store_backend_get_open(be, tenant_a, id, &g), AR_ENOENT);
	unsetenv("AR_TEST_NOW");

	/* a file without a readable header is never deleted */
	randombytes_buf(id2, sizeof id2);
	memset(obj, 0, sizeof obj);
	CHECK_RC(tl_put_bytes(be, tenant_a, id2, obj, sizeof obj, 0), 0);
	CHECK_RC(store_backend_delete(be, tenant_a, id2), AR_ECORRUPT);
	/* a header naming another object is never deleted either */
	fake_object(tenant_a, id, 0, obj, sizeof obj);
	randombytes_buf(id2, sizeof id2);
	CHECK_RC(tl_put_bytes(be, tenant_a, id2, obj, sizeof obj, 0), 0);
	CHECK_RC(store_backend_delete(be, tenant_a, id2), AR_ECORRUPT);
}

struct walk_acc { int n_a, n_b, other; };

static int walk_cb(void *arg, const uint8_t *tenant, const uint8_t *id)
{
	struct walk_acc *w = arg;
	(void)id;
	if (memcmp(tenant, tenant_a, 16) == 0)
		w->n_a++;
	else if (memcmp(tenant, tenant_b, 16) == 0)
		w->n_b++;
	else
		w->other++;
	return 0;
}

static int stop_cb(void *arg, const uint8_t *tenant, const uint8_t *id)
{
	(void)arg; (void)tenant; (void)id;
	return 42;
}

static void test_walk_drop(const char *root)
{
	store_backend_t *be;
	struct walk_acc w = {0};
	unsigned char obj[200];
	uint8_t id[STORE_ID_LEN];
	char dir[4096], junk[4096];

	(void)ar_path(dir, sizeof dir, "%s/walk", root);
	CHECK_RC(store_backend_open_fs(&be, dir), 0);
	for (int i = 0; i < 30; i++) {
		randombytes_buf(id, sizeof id);
		fake_object(i < 20 ? tenant_a : tenant_b, id, 0, obj,
		    sizeof obj);
		CHECK_RC(tl_put_bytes(be, i < 20 ? tenant_a : tenant_b, id, obj,
		    sizeof obj, 0), 0);
	}
	/* a leftover temp file is not an object */
	(void)ar_path(junk, sizeof junk, "%s/tmp/0123.tmp", dir);
	FILE *f = fopen(junk, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	CHECK_RC(store_backend_sync(be), 0);
	CHECK_RC(store_backend_walk(be, NULL, walk_cb, &w), 0);
	CHECK(w.n_a == 20 && w.n_b == 10 && w.other == 0);
	memset(&w, 0, sizeof w);
	CHECK_RC(store_backend_walk(be, tenant_b, walk_cb, &w), 0);
	CHECK(w.n_a == 0 && w.n_b == 10);
	CHECK_RC(store_backend_walk(be, NULL, stop_cb, NULL), 42);

	CHECK_RC(store_backend_drop_tenant(be, tenant_a), 0);
	memset(&w, 0, sizeof w);
	CHECK_RC(store_backend_walk(be, NULL, walk_cb, &w), 0);
	CHECK(w.n_a == 0 && w.n_b == 10);
	CHECK_RC(store_backend_drop_tenant(be, tenant_a), 0);
	store_backend_close(be);
}

struct thr { store_backend_t *be; int fails; };

static void *put_thread(void *arg)
{
	struct thr *t = arg;
	unsigned char obj[1000];
	uint8_t id[STORE_ID_LEN];
	for (int i = 0; i < 25; i++) {
		randombytes_buf(id, sizeof id);
		fake_object(tenant_b, id, 0, obj, sizeof obj);
		if (tl_put_bytes(t->be, tenant_b, id, obj, sizeof obj, 0) ||
		    store_backend_sync(t->be))
			t->fails++;
	}
	return NULL;
}

static void test_threads(const char *root)
{
	store_backend_t *be;
	pthread_t th[8];
	struct thr t[8];
	struct walk_acc w = {0};
	char dir[4096];

	(void)ar_path(dir, sizeof dir, "%s/threads", root);
	CHECK_RC(store_backend_open_fs(&be, dir), 0);
	for (int i = 0; i < 8; i++) {
		t[i].be = be;
		t[i].fails = 0;
		CHECK(pthread_create(&th[i], NULL, put_thread, &t[i]) == 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK(t[i].fails == 0);
	}
	CHECK_RC(store_backend_walk(be, NULL, walk_cb, &w), 0);
	CHECK(w.n_b == 200);
	store_backend_close(be);
}

/* Disk full surfaces as AR_ENOSPC (temporary) and leaves nothing. */
static void test_enospc(const char *root)
{
	store_backend_t *be;
	char dir[4096], tmp[4096];
	unsigned char *big;
	uint8_t id[STORE_ID_LEN];
	struct walk_acc w = {0};
	size_t bigsz = 1024 * 1024;
	int rc;

	(void)ar_path(dir, sizeof dir, "%s/full", root);
	if (mkdir(dir, 0700) < 0 ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700") < 0) {
		printf("skip: disk-full test needs to mount a tmpfs (%s)\n",
		    strerror(errno));
		return;
	}
	CHECK_RC(store_backend_open_fs(&be, dir), 0);
	big = calloc(1, bigsz);
	randombytes_buf(id, sizeof id);
	fake_object(tenant_a, id, 0, big, bigsz);
	rc = tl_put_bytes(be, tenant_a, id, big, bigsz, 0);
	CHECK_RC(rc, AR_ENOSPC);
	CHECK(ar_status_temporary(rc));
	CHECK_RC(store_backend_walk(be, NULL, walk_cb, &w), 0);
	CHECK(w.n_a == 0);
	(void)ar_path(tmp, sizeof tmp, "%s/tmp", dir);
	CHECK(tl_count_entries(tmp) == 0);
	/* space is back once the partial temp file is gone */
	CHECK_RC(tl_put_bytes(be, tenant_a, id, big, 4096, 0), 0);
	free(big);
	store_backend_close(be);
	CHECK(umount2(dir, MNT_DETACH) == 0);
}

int main(void)
{
	char *root = tl_tmpdir("befs");
	store_backend_t *be;
	char dir[4096];

	if (sodium_init() < 0)
		return 2;
	randombytes_buf(tenant_a, sizeof tenant_a);
	randombytes_buf(tenant_b, sizeof tenant_b);
	(void)ar_path(dir, sizeof dir, "%s/store", root);
	CHECK_RC(store_backend_open_fs(&be, dir), 0);
	test_put_get(be, dir);
	test_delete(be);
	store_backend_close(be);
	test_walk_drop(root);
	test_threads(root);
	test_enospc(root);
	tl_rmrf(root);
	free(root);
	return tl_done();
}
