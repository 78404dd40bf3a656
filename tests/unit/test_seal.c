/*
 * test_seal.c - sealed objects against the real archive-keysvc and the fs
 * backend: round trips, bounded memory on a 150 MB object, and every kind
 * of damage (flipped bits, truncation, reordered chunks, another tenant's
 * file, wrong key) reported by its own error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "store/store.h"
#include "testlib.h"

#define HDR      96      /* header length (docs/formats.md) */
#define TAG      16
#define TRAILER  248     /* manifest 184 + signature 64 */
#define CS       4096u   /* small chunks for the damage tests */

static store_backend_t *be;
static keysvc_t *ks;
static char store_dir[4096];
static uint8_t tenant_a[16], tenant_b[16];

static void obj_path(const uint8_t *tenant, const uint8_t *id, char *out,
    size_t len)
{
	char th[33], ih[33];
	ar_hex(tenant, 16, th);
	ar_hex(id, 16, ih);
	(void)ar_path(out, len, "%s/%s/%.4s/%.4s/%s", store_dir, th, ih, ih + 4,
	    ih);
}

/* Seal len bytes in uneven pieces.  A fresh id is returned in id. */
static int seal(const uint8_t *tenant, uint8_t *id, const void *data,
    size_t len, uint32_t cs, uint32_t keyver, store_object_info_t *info)
{
	store_seal_params_t p;
	store_sealer_t *s;
	const unsigned char *d = data;
	size_t off = 0, step = 1;
	int rc;

	memset(&p, 0, sizeof p);
	memcpy(p.tenant, tenant, 16);
	randombytes_buf(id, 16);
	memcpy(p.id, id, 16);
	p.key_version = keyver;
	p.chunk_size = cs;
	p.received = 1700000000;
	p.retain_until = ar_now() + 3600;
	if ((rc = store_seal_begin(be, ks, &p, &s)))
		return rc;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		if ((rc = store_seal_write(s, d + off, n))) {
			store_seal_abort(s);
			return rc;
		}
		off += n;
		step = step * 3 + 1;
		if (step > 200000)
			step = 7;
	}
	if ((rc = store_seal_finish(s, info)))
		return rc;
	return store_backend_sync(be);
}

/* Read a whole object back; *out is malloc'd. */
static int read_back(keysvc_t *k, const uint8_t *tenant, const uint8_t *id,
    unsigned char **out, size_t *len, char *why, size_t whylen)
{
	store_reader_t *r;
	size_t cap, got, step = 5;
	int rc;

	*out = NULL;
	*len = 0;
	if (why)
		why[0] = '\0';
	if ((rc = store_reader_open(be, k, tenant, id, &r)))
		return rc;
	cap = (size_t)store_reader_info(r)->plain_size + 1;
	*out = malloc(cap);
	for (;;) {
		size_t want = step < cap - *len ? step : cap - *len;
		rc = store_reader_read(r, *out + *len, want, &got);
		if (rc || got == 0)
			break;
		*len += got;
		step = step * 2 + 3;
	}
	if (rc && why)
		(void)ar_path(why, whylen, "%s", store_reader_errmsg(r));
	store_reader_close(r);
	if (rc) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

static void fill_random(unsigned char *buf, size_t len)
{
	randombytes_buf(buf, len);
}

static void test_round_trips(void)
{
	static const uint32_t chunks[] = { CS, STORE_CHUNK_DEFAULT };
	for (size_t c = 0; c < 2; c++) {
		uint32_t cs = chunks[c];
		size_t sizes[] = { 0, 1, cs - 1, cs, cs + 1, 2 * cs,
		    3 * 1024 * 1024 + 17 };
		for (size_t i = 0; i < AR_ARRAY_LEN(sizes); i++) {
			size_t n = sizes[i], got;
			unsigned char *data = malloc(n + 1), *back;
			uint8_t id[16], sha[32], md[32];
			store_object_info_t info;
			char path[4096];
			struct stat st;
			unsigned char *raw;
			size_t rawlen;

			fill_random(data, n);
			CHECK_RC(seal(tenant_a, id, data, n, cs, 1, &info), 0);
			CHECK_RC(read_back(ks, tenant_a, id, &back, &got,
			    NULL, 0), 0);
			CHECK(got == n && (n == 0 || memcmp(back, data, n) == 0));
			crypto_hash_sha256(sha, data, n);
			CHECK(memcmp(info.plain_sha256, sha, 32) == 0);
			CHECK(info.plain_size == n && info.chunk_size == cs);
			uint64_t nch = n == 0 ? 1 : (n + cs - 1) / cs;
			CHECK(info.sealed_size == HDR + n + nch * TAG + TRAILER);
			obj_path(tenant_a, id, path, sizeof path);
			CHECK(stat(path, &st) == 0 &&
			    (uint64_t)st.st_size == info.sealed_size &&
			    (st.st_mode & 0777) == 0400);
			CHECK_RC(ar_file_read(path, 1u << 30, &raw, &rawlen), 0);
			crypto_hash_sha256(md, raw + rawlen - TRAILER, TRAILER);
			CHECK(memcmp(md, info.manifest_digest, 32) == 0);
			crypto_hash_sha256(md, raw, rawlen - TRAILER);
			CHECK(memcmp(md, info.sealed_sha256, 32) == 0);
			free(raw);

			store_object_info_t ci;
			char err[256];
			CHECK_RC(store_object_check(be, ks, tenant_a, id, &ci,
			    err, sizeof err), 0);
			CHECK(memcmp(&ci, &info, sizeof ci) == 0);
			free(data);
			free(back);
		}
	}
}

/* 150 MB sealed and read back streaming: memory stays bounded. */
static void test_large(void)
{
	const size_t total = 150u * 1024 * 1024, piece = 1024 * 1024;
	unsigned char *buf = malloc(piece);
	uint8_t id[16], sha_in[32], sha_out[32];
	crypto_hash_sha256_state hin, hout;
	store_seal_params_t p;
	store_object_info_t info;
	store_sealer_t *s;
	store_reader_t *r;
	struct rusage ru0, ru1;
	uint64_t x = 88172645463325252ull;
	int64_t t0, t1, t2;
	size_t got, done = 0;

	getrusage(RUSAGE_SELF, &ru0);
	memset(&p, 0, sizeof p);
	memcpy(p.tenant, tenant_a, 16);
	randombytes_buf(id, 16);
	memcpy(p.id, id, 16);
	p.key_version = 1;
	p.retain_until = 0;
	crypto_hash_sha256_init(&hin);
	t0 = ar_mono_us();
	CHECK_RC(store_seal_begin(be, ks, &p, &s), 0);
	for (size_t off = 0; off < total; off += piece) {
		for (size_t i = 0; i < piece; i += 8) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			memcpy(buf + i, &x, 8);
		}
		crypto_hash_sha256_update(&hin, buf, piece);
		if (store_seal_write(s, buf, piece) != 0) {
			CHECK(!"seal_write failed");
			break;
		}
	}
	CHECK_RC(store_seal_finish(s, &info), 0);
	CHECK_RC(store_backend_sync(be), 0);
	t1 = ar_mono_us();
	crypto_hash_sha256_final(&hin, sha_in);
	CHECK(memcmp(sha_in, info.plain_sha256, 32) == 0);

	crypto_hash_sha256_init(&hout);
	CHECK_RC(store_reader_open(be, ks, tenant_a, id, &r), 0);
	for (;;) {
		int rc = store_reader_read(r, buf, piece, &got);
		if (rc) {
			CHECK_RC(rc, 0);
			break;
		}
		if (got == 0)
			break;
		crypto_hash_sha256_update(&hout, buf, got);
		done += got;
	}
	CHECK(memcmp(store_reader_info(r)->plain_sha256, sha_in, 32) == 0);
	store_reader_close(r);
	t2 = ar_mono_us();
	crypto_hash_sha256_final(&hout, sha_out);
	CHECK(done == total);
	CHECK(memcmp(sha_in, sha_out, 32) == 0);
	getrusage(RUSAGE_SELF, &ru1);
	long grew_kb = ru1.ru_maxrss - ru0.ru_maxrss;
	printf("large object: %zu MB, seal %.0f MB/s (incl. data generation),"
	    " read %.0f MB/s, peak RSS grew %ld KB\n", total >> 20,
	    (double)total / (double)(t1 - t0),
	    (double)total / (double)(t2 - t1), grew_kb);
	CHECK(grew_kb < 40 * 1024);
	free(buf);
}

/* --- damage -------------------------------------------------------------- */

static void xor_byte(const char *path, uint64_t off, unsigned char mask)
{
	unsigned char b;
	int fd;
	CHECK(chmod(path, 0600) == 0);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK(pread(fd, &b, 1, (off_t)off) == 1);
	b ^= mask;
	CHECK(pwrite(fd, &b, 1, (off_t)off) == 1);
	close(fd);
	CHECK(chmod(path, 0400) == 0);
}

static void swap_ranges(const char *path, uint64_t a, uint64_t b, size_t len)
{
	unsigned char *x = malloc(len), *y = malloc(len);
	int fd;
	CHECK(chmod(path, 0600) == 0);
	fd = open(path, O_RDWR);
	CHECK(pread(fd, x, len, (off_t)a) == (ssize_t)len);
	CHECK(pread(fd, y, len, (off_t)b) == (ssize_t)len);
	CHECK(pwrite(fd, y, len, (off_t)a) == (ssize_t)len);
	CHECK(pwrite(fd, x, len, (off_t)b) == (ssize_t)len);
	close(fd);
	free(x);
	free(y);
}

static void copy_file(const char *from, const char *to)
{
	unsigned char *buf;
	size_t len;
	CHECK_RC(ar_file_read(from, 1u << 30, &buf, &len), 0);
	chmod(to, 0600);
	CHECK_RC(ar_file_write_atomic(to, buf, len, 0400), 0);
	free(buf);
}

/* Read (tenant, id) both ways: the streaming reader and the full check
 * must report want; when msg is given, both reasons mention it. */
static void expect(keysvc_t *k, const uint8_t *tenant, const uint8_t *id,
    int want, const char *msg)
{
	unsigned char *back;
	size_t len;
	char why[256], err[512];
	int rc = read_back(k, tenant, id, &back, &len, why, sizeof why);

	CHECK_RC(rc, want);
	if (rc == 0)
		free(back);
	CHECK_RC(store_object_check(be, k, tenant, id, NULL, err, sizeof err),
	    want);
	if (msg && !strstr(err, msg)) {
		CHECK(!"reason names the damage");
		fprintf(stderr, "  reason: %s (want \"%s\")\n", err, msg);
	}
	if (msg && rc != 0 && why[0] && !strstr(why, msg)) {
		CHECK(!"reader reason names the damage");
		fprintf(stderr, "  reader reason: %s (want \"%s\")\n", why,
		    msg);
	}
}

/* A 5-chunk object of CS-byte chunks (last one partial) with a marker. */
#define PLAIN_LEN (4 * CS + 100)
static unsigned char plain[PLAIN_LEN];

static void mk(const uint8_t *tenant, uint8_t *id, char *path, size_t plen)
{
	CHECK_RC(seal(tenant, id, plain, plen, CS, 1, NULL), 0);
	obj_path(tenant, id, path, 4096);
}

static uint64_t chunk_off(unsigned i) { return HDR + (uint64_t)i * (CS + TAG); }

static void test_damage(void)
{
	uint8_t id[16], id2[16];
	char path[4096], path2[4096];
	const uint64_t size = HDR + PLAIN_LEN + 5 * TAG + TRAILER;
	static const struct { uint64_t off; int want; const char *msg; } flips[] = {
		{ 0,        AR_ECORRUPT, "magic" },
		{ 9,        AR_EVERSION, "version" },
		{ 12,       AR_ECORRUPT, "chunk size" },
		{ 20,       AR_ETENANT,  "tenant" },
		{ 35,       AR_EKEY,     "key" },        /* key version */
		{ 40,       AR_ECORRUPT, "names object" },
		{ 55,       AR_ECORRUPT, "manifest" },   /* nonce prefix */
		{ 70,       AR_ECORRUPT, "manifest" },   /* retain-until */
		{ 80,       AR_EKEY,     "wrong key" },  /* key check */
		{ 93,       AR_ECORRUPT, "reserved" },
		{ HDR + 5,            AR_ECORRUPT, "chunk 0 fails" },
		{ HDR + 2 * (CS + TAG) + 77, AR_ECORRUPT, "chunk 2 fails" },
		{ HDR + 4 * (CS + TAG) + 3,  AR_ECORRUPT, "chunk 4 fails" },
		{ HDR + 4 * (CS + TAG) + 100 + 15, AR_ECORRUPT, "chunk 4" },
		{ size - TRAILER + 60,  AR_ESIG, "signature" },  /* plain size */
		{ size - TRAILER + 160, AR_ESIG, "signature" },  /* digest */
		{ size - 10,            AR_ESIG, "signature" },  /* signature */
		{ size - TRAILER,       AR_ETRUNC, "truncated" },/* magic */
	};

	memcpy(plain, "PLAINTEXT-MARKER-7f3a", 21);
	for (size_t i = 21; i < PLAIN_LEN; i++)
		plain[i] = (unsigned char)(i % 251);
	memcpy(plain + 3 * CS + 5, "PLAINTEXT-MARKER-7f3a", 21);

	/* no plaintext on disk */
	mk(tenant_a, id, path, PLAIN_LEN);
	unsigned char *raw;
	size_t rawlen;
	CHECK_RC(ar_file_read(path, 1u << 20, &raw, &rawlen), 0);
	CHECK(rawlen == size);
	CHECK(memmem(raw, rawlen, "PLAINTEXT-MARKER", 16) == NULL);
	CHECK(memmem(raw, rawlen, plain + 100, 16) == NULL);
	free(raw);
	expect(ks, tenant_a, id, 0, NULL);

	for (size_t i = 0; i < AR_ARRAY_LEN(flips); i++) {
		mk(tenant_a, id, path, PLAIN_LEN);
		xor_byte(path, flips[i].off, 0x04);
		expect(ks, tenant_a, id, flips[i].want, flips[i].msg);
	}

	/* truncation anywhere */
	const uint64_t cuts[] = { 0, 50, HDR, HDR + 10, chunk_off(2) + 9,
	    chunk_off(4), size - TRAILER, size - TRAILER + 100, size - 1 };
	for (size_t i = 0; i < AR_ARRAY_LEN(cuts); i++) {
		mk(tenant_a, id, path, PLAIN_LEN);
		CHECK(chmod(path, 0600) == 0 && truncate(path, (off_t)cuts[i]) == 0);
		expect(ks, tenant_a, id, AR_ETRUNC, NULL);
	}
	/* whole chunks cut out, trailer kept */
	{
		mk(tenant_a, id, path, PLAIN_LEN);
		unsigned char *b;
		size_t l;
		CHECK_RC(ar_file_read(path, 1u << 20, &b, &l), 0);
		memmove(b + chunk_off(3), b + chunk_off(4), l - chunk_off(4));
		chmod(path, 0600);
		CHECK_RC(ar_file_write_atomic(path, b, l - (CS + TAG), 0400), 0);
		free(b);
		expect(ks, tenant_a, id, AR_ETRUNC, NULL);
	}

	/* reordered chunks */
	mk(tenant_a, id, path, PLAIN_LEN);
	swap_ranges(path, chunk_off(1), chunk_off(2), CS + TAG);
	expect(ks, tenant_a, id, AR_EREORDER, "chunk 1 holds chunk 2");
	/* with the (full-size) last chunk: caught before anything is read */
	mk(tenant_a, id, path, 4 * CS);
	swap_ranges(path, chunk_off(0), chunk_off(3), CS + TAG);
	{
		store_reader_t *r;
		CHECK_RC(store_reader_open(be, ks, tenant_a, id, &r), AR_EREORDER);
	}
	expect(ks, tenant_a, id, AR_EREORDER, "chunk 3 holds chunk 0");

	/* another tenant: A's object read as B, B's file over A's path */
	mk(tenant_a, id, path, PLAIN_LEN);
	obj_path(tenant_b, id, path2, sizeof path2);
	{
		char d[4096];
		(void)ar_path(d, sizeof d, "%s", path2);
		*strrchr(d, '/') = '\0';
		CHECK_RC(ar_mkdirs(d, 0700), 0);
	}
	copy_file(path, path2);
	expect(ks, tenant_b, id, AR_ETENANT, "another tenant");
	mk(tenant_b, id2, path2, 1000);
	copy_file(path2, path);
	expect(ks, tenant_a, id, AR_ETENANT, NULL);

	/* the same tenant's other object under this id */
	mk(tenant_a, id, path, PLAIN_LEN);
	mk(tenant_a, id2, path2, PLAIN_LEN);
	copy_file(path2, path);
	expect(ks, tenant_a, id, AR_ECORRUPT, "names object");

	/* every single-byte flip of a small object is caught */
	mk(tenant_a, id, path, 10);
	uint64_t small = HDR + 10 + TAG + TRAILER;
	int missed = 0;
	for (uint64_t off = 0; off < small; off++) {
		xor_byte(path, off, 0x80);
		if (store_object_check(be, ks, tenant_a, id, NULL, NULL, 0) == 0)
			missed++;
		xor_byte(path, off, 0x80);
	}
	CHECK(missed == 0);
	CHECK_RC(store_object_check(be, ks, tenant_a, id, NULL, NULL, 0), 0);
}

/* A key service of its own in root/name, with tenant created; its pid. */
static pid_t other_keysvc(const char *root, const char *name,
    const uint8_t *tenant, keysvc_t **out)
{
	char dir[4096], sock[4200];
	pid_t pid;

	(void)ar_path(dir, sizeof dir, "%s/%s", root, name);
	CHECK(mkdir(dir, 0700) == 0);
	pid = tl_keysvc_start(dir);
	(void)ar_path(sock, sizeof sock, "%s/keysvc.sock", dir);
	CHECK_RC(keysvc_open(out, sock, 1000), 0);
	CHECK_RC(keysvc_tenant_create(*out, tenant), 0);
	return pid;
}

static void test_keys(const char *root)
{
	uint8_t id[16];
	char path[4096];
	uint32_t v2 = 0;
	keysvc_t *ks2;
	pid_t pid2;

	/* rotated: old objects keep reading, new ones use version 2 */
	mk(tenant_a, id, path, PLAIN_LEN);
	CHECK_RC(keysvc_tenant_rotate(ks, tenant_a, &v2), 0);
	CHECK(v2 == 2);
	expect(ks, tenant_a, id, 0, NULL);
	/* header claims version 2: the key check refuses (not corruption) */
	xor_byte(path, 35, 0x01 ^ 0x02);
	expect(ks, tenant_a, id, AR_EKEY, "wrong key");
	/* a version that does not exist */
	mk(tenant_a, id, path, 100);
	xor_byte(path, 34, 0x10);
	expect(ks, tenant_a, id, AR_EKEY, "no key version");
	/* sealed with version 2 */
	CHECK_RC(seal(tenant_a, id, plain, 5000, CS, 2, NULL), 0);
	expect(ks, tenant_a, id, 0, NULL);

	/* another key service (another KEK, same tenant id): wrong key */
	pid2 = other_keysvc(root, "ks2", tenant_a, &ks2);
	mk(tenant_a, id, path, PLAIN_LEN);
	expect(ks2, tenant_a, id, AR_EKEY, "wrong key");
	keysvc_close(ks2);
	tl_keysvc_stop(pid2);
}

/* Start sealing n random bytes into a fresh id; the data is kept. */
static store_sealer_t *begin(keysvc_t *k, const uint8_t *tenant,
    uint8_t *id, unsigned char *data, size_t n)
{
	store_seal_params_t p;
	store_sealer_t *s = NULL;

	memset(&p, 0, sizeof p);
	memcpy(p.tenant, tenant, 16);
	randombytes_buf(id, 16);
	memcpy(p.id, id, 16);
	p.key_version = 1;
	p.chunk_size = CS;
	p.received = 1700000000;
	fill_random(data, n);
	CHECK_RC(store_seal_begin(be, k, &p, &s), 0);
	CHECK_RC(store_seal_write(s, data, n), 0);
	return s;
}

/* Files left in the store's temp directory. */
static int tmp_files(void)
{
	char dir[4096];
	(void)ar_path(dir, sizeof dir, "%s/tmp", store_dir);
	return tl_count_entries(dir);
}

/* Many objects finished together: one signing request per 64, one sync;
 * each object exactly as store_seal_finish makes it.  A missing sealer
 * fails alone; with keysvc gone every one fails and nothing is left. */
static void test_finish_many(const char *root)
{
	enum { K = 70 };
	static unsigned char data[K][3 * CS + 1];
	store_sealer_t *s[K];
	store_object_info_t info[K], closed;
	uint8_t ids[K][16];
	int rcs[K];

	for (size_t i = 0; i < K; i++) {
		size_t n = (i * 97) % sizeof data[i];
		s[i] = i == 5 ? NULL : begin(ks, tenant_a, ids[i], data[i], n);
	}
	/* a closed sealer is finished like an open one */
	CHECK_RC(store_seal_close(s[3], &closed), 0);
	CHECK(closed.plain_size == (3 * 97) % sizeof data[3]);
	CHECK_RC(store_seal_finish_many(s, K, info, rcs), AR_EINVAL);
	CHECK_RC(store_backend_sync(be), 0);
	for (size_t i = 0; i < K; i++) {
		size_t n = (i * 97) % sizeof data[i], got;
		unsigned char *back, *raw, md[32];
		size_t rawlen;
		char path[4096];
		struct stat st;

		CHECK(s[i] == NULL);
		if (i == 5) {
			CHECK_RC(rcs[i], AR_EINVAL);
			continue;
		}
		CHECK_RC(rcs[i], 0);
		CHECK_RC(read_back(ks, tenant_a, ids[i], &back, &got, NULL, 0),
		    0);
		CHECK(got == n && (n == 0 || memcmp(back, data[i], n) == 0));
		free(back);
		obj_path(tenant_a, ids[i], path, sizeof path);
		CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0400 &&
		    (uint64_t)st.st_size == info[i].sealed_size);
		CHECK_RC(ar_file_read(path, 1u << 20, &raw, &rawlen), 0);
		crypto_hash_sha256(md, raw + rawlen - TRAILER, TRAILER);
		CHECK(memcmp(md, info[i].manifest_digest, 32) == 0);
		free(raw);
	}
	CHECK(memcmp(closed.plain_sha256, info[3].plain_sha256, 32) == 0);
	CHECK(tmp_files() == 0);

	/* keysvc gone before the signatures: all fail, nothing published */
	{
		char path[4096];
		keysvc_t *k2;
		pid_t pid = other_keysvc(root, "ks-many", tenant_b, &k2);
		struct stat st;

		for (size_t i = 0; i < 4; i++)
			s[i] = begin(k2, tenant_b, ids[i], data[i], 100 + i);
		tl_keysvc_stop(pid);
		CHECK_RC(store_seal_finish_many(s, 4, info, rcs), AR_EKEYSVC);
		for (size_t i = 0; i < 4; i++) {
			CHECK_RC(rcs[i], AR_EKEYSVC);
			obj_path(tenant_b, ids[i], path, sizeof path);
			CHECK(stat(path, &st) < 0 && errno == ENOENT);
		}
		CHECK(tmp_files() == 0);
		keysvc_close(k2);
	}
}

static void test_lifecycle(void)
{
	uint8_t id[16];
	char path[4096], when[32];
	store_seal_params_t p;
	store_sealer_t *s;
	store_object_info_t info;
	int64_t until;

	/* the same id twice: refused, original untouched */
	mk(tenant_a, id, path, PLAIN_LEN);
	memset(&p, 0, sizeof p);
	memcpy(p.tenant, tenant_a, 16);
	memcpy(p.id, id, 16);
	p.key_version = 1;
	CHECK_RC(store_seal_begin(be, ks, &p, &s), AR_EEXIST);
	expect(ks, tenant_a, id, 0, NULL);

	/* an aborted or failed seal leaves nothing */
	randombytes_buf(p.id, 16);
	CHECK_RC(store_seal_begin(be, ks, &p, &s), 0);
	CHECK_RC(store_seal_write(s, plain, 10000), 0);
	store_seal_abort(s);
	CHECK_RC(store_object_check(be, ks, tenant_a, p.id, NULL, NULL, 0),
	    AR_ENOENT);
	p.chunk_size = 100;
	CHECK_RC(store_seal_begin(be, ks, &p, &s), AR_EINVAL);
	p.chunk_size = 0;
	uint8_t nokey[16];
	randombytes_buf(nokey, 16);
	memcpy(p.tenant, nokey, 16);
	CHECK(store_seal_begin(be, ks, &p, &s) != 0);
	CHECK_RC(store_object_check(be, ks, nokey, p.id, NULL, NULL, 0),
	    AR_ENOENT);

	/* retain-until from the sealed header */
	memcpy(p.tenant, tenant_a, 16);
	randombytes_buf(p.id, 16);
	until = ar_now() + 7 * 86400;
	p.retain_until = until;
	p.received = ar_now();
	CHECK_RC(store_seal_begin(be, ks, &p, &s), 0);
	CHECK_RC(store_seal_write(s, plain, 3000), 0);
	CHECK_RC(store_seal_finish(s, &info), 0);
	CHECK(info.retain_until == until);
	CHECK_RC(store_backend_delete(be, tenant_a, p.id), AR_ERETAINED);
	(void)ar_path(when, sizeof when, "%lld", (long long)until);
	setenv("AR_TEST_NOW", when, 1);
	CHECK_RC(store_backend_delete(be, tenant_a, p.id), 0);
	unsetenv("AR_TEST_NOW");
	CHECK_RC(store_object_check(be, ks, tenant_a, p.id, NULL, NULL, 0),
	    AR_ENOENT);
}

/* --- random access (store_reader_seek) -------------------------------- */

/* Seek to off and read want bytes in uneven pieces; they must equal
 * data[off .. off+want) (fewer at the end). */
static void seek_read(store_reader_t *r, const unsigned char *data,
    size_t size, size_t off, size_t want)
{
	unsigned char *buf = malloc(want + 1);
	size_t done = 0, got, step = 3;
	int rc = 0;

	CHECK_RC(store_reader_seek(r, off), 0);
	CHECK(store_reader_tell(r) == off);
	while (done < want) {
		size_t n = step < want - done ? step : want - done;
		if ((rc = store_reader_read(r, buf + done, n, &got)) || got == 0)
			break;
		done += got;
		step = step * 3 + 1;
	}
	CHECK_RC(rc, 0);
	CHECK(done == (off + want <= size ? want : size - off));
	CHECK(done == 0 || memcmp(buf, data + off, done) == 0);
	CHECK(store_reader_tell(r) == off + done);
	free(buf);
}

static void test_seek(void)
{
	const size_t n = PLAIN_LEN;
	unsigned char *data = malloc(n), *all = malloc(n + 1), zero[32];
	uint8_t id[16], eid[16], sha[32];
	store_reader_t *r;
	char path[4096];
	size_t got;

	fill_random(data, n);
	memset(zero, 0, sizeof zero);
	crypto_hash_sha256(sha, data, n);
	CHECK_RC(seal(tenant_a, id, data, n, CS, 1, NULL), 0);

	CHECK_RC(store_reader_open(be, ks, tenant_a, id, &r), 0);
	CHECK(store_reader_info(r)->plain_size == n);
	seek_read(r, data, n, 0, 10);              /* start */
	seek_read(r, data, n, CS / 2, CS);         /* mid chunk, across one */
	seek_read(r, data, n, CS, 100);            /* chunk boundary */
	seek_read(r, data, n, 3 * CS - 1, 2);      /* last byte of a chunk */
	seek_read(r, data, n, CS + 5, 7);          /* backwards */
	seek_read(r, data, n, CS + 1, 3);          /* inside the loaded chunk */
	seek_read(r, data, n, n - 1, 10);          /* last byte */
	seek_read(r, data, n, n, 10);              /* end: nothing */
	seek_read(r, data, n, 4 * CS, 100);        /* the last (short) chunk */
	CHECK_RC(store_reader_seek(r, n + 1), AR_EINVAL);
	/* a pass that seeked does not claim the whole-object digest ... */
	CHECK(memcmp(store_reader_info(r)->plain_sha256, zero, 32) == 0);
	/* ... a rewind and an in-order read to the end does */
	seek_read(r, data, n, 0, n + 1);
	CHECK(memcmp(store_reader_info(r)->plain_sha256, sha, 32) == 0);
	/* seeking to the current position keeps the pass going */
	CHECK_RC(store_reader_seek(r, 0), 0);
	CHECK_RC(store_reader_read(r, all, CS + 3, &got), 0);
	CHECK_RC(store_reader_seek(r, CS + 3), 0);
	CHECK_RC(store_reader_read(r, all + CS + 3, n, &got), 0);
	CHECK(got == n - CS - 3 && memcmp(all, data, n) == 0);
	store_reader_close(r);

	/* empty object: 0 is also the end */
	CHECK_RC(seal(tenant_a, eid, data, 0, CS, 1, NULL), 0);
	CHECK_RC(store_reader_open(be, ks, tenant_a, eid, &r), 0);
	CHECK_RC(store_reader_seek(r, 0), 0);
	CHECK_RC(store_reader_read(r, all, 10, &got), 0);
	CHECK(got == 0);
	CHECK_RC(store_reader_seek(r, 1), AR_EINVAL);
	store_reader_close(r);

	/* a one-chunk object is read from disk once: open authenticates the
	 * chunk and keeps it, so the reads and a rewind use those bytes (a
	 * change on disk after open does not reach them); a new open sees it */
	CHECK_RC(seal(tenant_a, eid, data, 100, CS, 1, NULL), 0);
	CHECK_RC(store_reader_open(be, ks, tenant_a, eid, &r), 0);
	obj_path(tenant_a, eid, path, sizeof path);
	xor_byte(path, chunk_off(0) + 10, 0x04);
	seek_read(r, data, 100, 0, 101);
	seek_read(r, data, 100, 0, 101);
	crypto_hash_sha256(sha, data, 100);
	CHECK(memcmp(store_reader_info(r)->plain_sha256, sha, 32) == 0);
	store_reader_close(r);
	CHECK_RC(store_reader_open(be, ks, tenant_a, eid, &r), AR_ECORRUPT);

	/* a flipped bit in chunk 2: seeking there fails before any byte of it
	 * is released; other chunks stay readable by random access */
	obj_path(tenant_a, id, path, sizeof path);
	xor_byte(path, chunk_off(2) + 100, 0x04);
	CHECK_RC(store_reader_open(be, ks, tenant_a, id, &r), 0);
	seek_read(r, data, n, CS + 10, 50);
	seek_read(r, data, n, 3 * CS, CS + 100);
	CHECK_RC(store_reader_seek(r, 2 * CS + 10), AR_ECORRUPT);
	CHECK(strstr(store_reader_errmsg(r), "chunk 2") != NULL);
	CHECK_RC(store_reader_read(r, all, 10, &got), AR_ECORRUPT);
	CHECK(got == 0);
	store_reader_close(r);
	/* reading into it in order fails the same way, at the chunk */
	CHECK_RC(store_reader_open(be, ks, tenant_a, id, &r), 0);
	CHECK_RC(store_reader_seek(r, CS + 1), 0);
	CHECK_RC(store_reader_read(r, all, CS - 1, &got), 0);
	CHECK(got == CS - 1 && memcmp(all, data + CS + 1, CS - 1) == 0);
	CHECK_RC(store_reader_read(r, all, 1, &got), AR_ECORRUPT);
	CHECK(got == 0);
	store_reader_close(r);
	free(data);
	free(all);
}

int main(void)
{
	char *root = tl_tmpdir("seal");
	char ksdir[4096], sock[4096];
	pid_t pid;

	if (sodium_init() < 0)
		return 2;
	(void)ar_path(ksdir, sizeof ksdir, "%s/ks", root);
	(void)ar_path(sock, sizeof sock, "%s/keysvc.sock", ksdir);
	(void)ar_path(store_dir, sizeof store_dir, "%s/store", root);
	if (mkdir(ksdir, 0700) < 0)
		return 2;
	pid = tl_keysvc_start(ksdir);
	CHECK_RC(keysvc_open(&ks, sock, 0), 0);
	randombytes_buf(tenant_a, 16);
	randombytes_buf(tenant_b, 16);
	CHECK_RC(keysvc_tenant_create(ks, tenant_a), 0);
	CHECK_RC(keysvc_tenant_create(ks, tenant_b), 0);
	CHECK_RC(store_backend_open_fs(&be, store_dir), 0);

	test_large();          /* first: peak RSS is measured from here */
	test_round_trips();
	test_damage();
	test_keys(root);
	test_lifecycle();
	test_seek();
	test_finish_many(root);

	store_backend_close(be);
	keysvc_close(ks);
	tl_keysvc_stop(pid);
	tl_rmrf(root);
	free(root);
	return tl_done();
}
