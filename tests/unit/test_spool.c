/*
 * test_spool.c - the durable encrypted spool against the real
 * archive-keysvc: round trips for two tenants, envelopes, reopening, crash
 * leftovers cleaned at open (and a SIGKILL'd writer losing no acknowledged
 * entry), removal, failure records, no plaintext on disk, keysvc down,
 * disk full (tmpfs, when root), and spool_put_finish throughput.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "ar.h"
#include "mime/mime.h"
#include "spool/spool.h"
#include "store/store.h"
#include "testlib.h"

static keysvc_t *ks;
static char root[4096], ksdir[4096], sock[4096], spdir[4096];
static pid_t kspid;
static uint8_t tenant_a[16], tenant_b[16], tenant_c[16];

/* --- helpers ------------------------------------------------------------- */

static int put(spool_t *sp, const uint8_t *tenant, const void *msg,
    size_t len, const char *env, uint8_t *id)
{
	const unsigned char *m = msg;
	spool_put_t *p;
	size_t off = 0, step = 1;
	int rc;

	if ((rc = spool_put_begin(sp, tenant, 1, &p)))
		return rc;
	while (off < len) {      /* uneven pieces, as DATA arrives */
		size_t n = len - off < step ? len - off : step;
		if ((rc = spool_put_write(p, m + off, n)))
			break;
		off += n;
		step = step * 2 + 1;
		if (step > 9000)
			step = 3;
	}
	return spool_put_finish(p, env, id);   /* returns a write error too */
}

struct list {
	spool_entry_t e[64];
	size_t n;
};

static int list_cb(void *arg, const spool_entry_t *e)
{
	struct list *l = arg;
	if (l->n < AR_ARRAY_LEN(l->e))
		l->e[l->n] = *e;
	l->n++;
	return 0;
}

static size_t count(spool_t *sp, const uint8_t *tenant)
{
	struct list l = { .n = 0 };
	CHECK_RC(spool_walk(sp, tenant, 0, list_cb, &l), 0);
	return l.n;
}

static unsigned char *read_message(spool_t *sp, const uint8_t *tenant,
    const uint8_t *id, size_t *len)
{
	store_reader_t *r;
	GMimeStream *w, *s;
	GByteArray *b;
	unsigned char *out;
	char buf[1000];
	uint64_t mlen;
	ssize_t n;

	if (spool_open_entry(sp, tenant, id, &r, &mlen, NULL) != 0)
		return NULL;
	w = mime_sealed_stream_new(r, 1);
	s = g_mime_stream_substream(w, 0, (gint64)mlen);
	g_object_unref(w);
	b = g_byte_array_new();
	while ((n = g_mime_stream_read(s, buf, sizeof buf)) > 0)
		g_byte_array_append(b, (guint8 *)buf, (guint)n);
	g_object_unref(s);
	*len = b->len;
	out = n < 0 ? NULL : g_malloc(b->len + 1);
	if (out && b->len)
		memcpy(out, b->data, b->len);
	g_byte_array_unref(b);
	return out;
}

/* Does any file under dir contain needle? */
static const char *grep_needle;
static int grep_found;
static int grep_cb(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	unsigned char *buf;
	size_t len, nl = strlen(grep_needle);
	(void)st;
	(void)ftw;
	if (type != FTW_F || ar_file_read(path, 1u << 28, &buf, &len) != 0)
		return 0;
	for (size_t i = 0; i + nl <= len; i++)
		if (memcmp(buf + i, grep_needle, nl) == 0) {
			grep_found = 1;
			break;
		}
	free(buf);
	return 0;
}

static int dir_contains(const char *dir, const char *needle)
{
	grep_needle = needle;
	grep_found = 0;
	nftw(dir, grep_cb, 16, FTW_PHYS);
	return grep_found;
}


/* --- tests --------------------------------------------------------------- */

#define NMSG 6

static void test_round_trip(void)
{
	static const size_t sizes[NMSG] = { 0, 100, 65536, 65537, 300000, 3000 };
	unsigned char *msgs[NMSG];
	char envs[NMSG][256];
	uint8_t ids[NMSG + 1][16];
	struct list l = { .n = 0 };
	spool_t *sp, *sp2;
	size_t na = 0, nb = 0;

	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK_RC(spool_open(&sp2, spdir, ks), AR_EAGAIN);   /* one owner */
	for (int i = 0; i < NMSG; i++) {
		msgs[i] = malloc(sizes[i] + 64);
		for (size_t j = 0; j < sizes[i]; j++)
			msgs[i][j] = (unsigned char)('a' + (j * 7 + i) % 26);
		if (sizes[i] >= 40)
			snprintf((char *)msgs[i] + sizes[i] / 2, 40,
			    "SPOOLMARKER-%d-secret@corp.example", i);
		snprintf(envs[i], sizeof envs[i], "{\"mail_from\":\"ENVMARKER-"
		    "%d@sender.example\",\"rcpt\":[\"j@corp.example\"],"
		    "\"client\":\"192.0.2.%d\",\"helo\":\"mx\"}", i, i);
		CHECK_RC(put(sp, i % 2 ? tenant_b : tenant_a, msgs[i], sizes[i],
		    envs[i], ids[i]), 0);
		CHECK(ids[i][15] == 0);
		if (i % 2)
			nb++;
		else
			na++;
	}
	/* message 4 also for tenant b: a second entry, its own ciphertext */
	CHECK_RC(put(sp, tenant_b, msgs[4], sizes[4], envs[4], ids[NMSG]), 0);
	nb++;
	CHECK(memcmp(ids[4], ids[NMSG], 16) != 0);

	CHECK_RC(spool_walk(sp, NULL, SPOOL_WALK_SIZES, list_cb, &l), 0);
	CHECK(l.n == NMSG + 1);
	for (size_t i = 0; i + 1 < l.n; i++)      /* oldest first */
		CHECK(memcmp(l.e[i].id, l.e[i + 1].id, 16) <= 0);
	for (size_t i = 0; i < l.n; i++)
		CHECK(l.e[i].bytes > 96 + 248 && !l.e[i].failed &&
		    l.e[i].age >= 0 && l.e[i].age < 60);
	CHECK(count(sp, tenant_a) == na && count(sp, tenant_b) == nb);

	for (int i = 0; i <= NMSG; i++) {
		int m = i == NMSG ? 4 : i;
		const uint8_t *t = i == NMSG || i % 2 ? tenant_b : tenant_a;
		size_t len = 0;
		unsigned char *back = read_message(sp, t, ids[i], &len);
		char *env = NULL;
		CHECK(back != NULL && len == sizes[m] &&
		    memcmp(back, msgs[m], len) == 0);
		g_free(back);
		CHECK_RC(spool_read_envelope(sp, t, ids[i], &env), 0);
		CHECK(env && strcmp(env, envs[m]) == 0);
		free(env);
		/* another tenant's name for the entry finds nothing */
		CHECK_RC(spool_read_envelope(sp, t == tenant_a ? tenant_b :
		    tenant_a, ids[i], &env), AR_ENOENT);
	}
	/* the same message under two tenants: different ciphertext */
	{
		store_reader_t *r1, *r2;
		CHECK_RC(spool_open_entry(sp, tenant_a, ids[4], &r1, NULL,
		    NULL), 0);
		CHECK_RC(spool_open_entry(sp, tenant_b, ids[NMSG], &r2, NULL,
		    NULL), 0);
		CHECK(memcmp(store_reader_info(r1)->sealed_sha256,
		    store_reader_info(r2)->sealed_sha256, 32) != 0);
		store_reader_close(r1);
		store_reader_close(r2);
	}

	/* no plaintext anywhere under the spool */
	CHECK(!dir_contains(spdir, "SPOOLMARKER"));
	CHECK(!dir_contains(spdir, "ENVMARKER"));
	CHECK(!dir_contains(spdir, "secret@corp"));
	CHECK(!dir_contains(spdir, "sender.example"));

	/* survives reopening; a read-only view sees the same */
	spool_close(sp);
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK_RC(spool_open_readonly(&sp2, spdir, ks), 0);
	CHECK(count(sp, NULL) == NMSG + 1 && count(sp2, NULL) == NMSG + 1);
	CHECK_RC(spool_remove(sp2, tenant_a, ids[0]), AR_EPERM);
	spool_close(sp2);

	/* removal */
	CHECK_RC(spool_remove(sp, tenant_a, ids[0]), 0);
	CHECK_RC(spool_remove(sp, tenant_a, ids[0]), AR_ENOENT);
	CHECK_RC(spool_remove(sp, tenant_b, ids[2]), AR_ENOENT);  /* not b's */
	{
		store_reader_t *r;
		CHECK_RC(spool_open_entry(sp, tenant_a, ids[0], &r, NULL,
		    NULL), AR_ENOENT);
	}
	CHECK(count(sp, NULL) == NMSG);
	for (int i = 1; i <= NMSG; i++)
		CHECK_RC(spool_remove(sp, i == NMSG || i % 2 ? tenant_b :
		    tenant_a, ids[i]), 0);
	CHECK(count(sp, NULL) == 0);
	CHECK_RC(spool_sync(sp), 0);           /* the removals, durable */
	CHECK_RC(spool_sync(NULL), AR_EINVAL);
	spool_close(sp);
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK(count(sp, NULL) == 0);
	spool_close(sp);
	for (int i = 0; i < NMSG; i++)
		free(msgs[i]);
}

static void test_failures(void)
{
	spool_failure_t f;
	spool_stats_t st;
	struct list l = { .n = 0 };
	spool_t *sp;
	uint8_t id[16], id2[16];

	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK_RC(put(sp, tenant_a, "Subject: x\r\n\r\nhi\r\n", 18, "{}", id), 0);
	CHECK_RC(put(sp, tenant_b, "Subject: y\r\n\r\nho\r\n", 18, "{}", id2),
	    0);
	CHECK_RC(spool_failure_get(sp, tenant_a, id, &f), 0);
	CHECK(f.count == 0);
	CHECK_RC(spool_mark_failed(sp, tenant_a, id, "parse: AR_EIO"), 0);
	CHECK_RC(spool_mark_failed(sp, tenant_a, id, "catalog full\n\x01"), 0);
	CHECK_RC(spool_mark_failed(sp, tenant_a, id, "catalog: map full"), 0);
	CHECK_RC(spool_failure_get(sp, tenant_a, id, &f), 0);
	CHECK(f.count == 3 && strcmp(f.reason, "catalog: map full") == 0 &&
	    f.first <= f.last && f.first > 0);
	CHECK_RC(spool_mark_failed(sp, tenant_b, id, "x"), AR_ENOENT);
	CHECK(!dir_contains(spdir, "map full"));
	CHECK_RC(spool_walk(sp, NULL, 0, list_cb, &l), 0);
	CHECK(l.n == 2 && l.e[0].failed == 1 && l.e[1].failed == 0);
	CHECK_RC(spool_stats(sp, &st), 0);
	CHECK(st.entries == 2 && st.failing == 1 && st.bytes > 0);
	/* the record survives reopening */
	spool_close(sp);
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK_RC(spool_failure_get(sp, tenant_a, id, &f), 0);
	CHECK(f.count == 3);
	CHECK_RC(spool_remove(sp, tenant_a, id), 0);
	CHECK_RC(spool_remove(sp, tenant_b, id2), 0);
	CHECK_RC(spool_stats(sp, &st), 0);
	CHECK(st.entries == 0 && st.failing == 0 && st.bytes == 0 &&
	    st.oldest_age == 0);
	spool_close(sp);
}

/* Seal one spool object directly, as a crash would leave it. */
static void raw_object(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id)
{
	store_seal_params_t p;
	store_sealer_t *s;

	memset(&p, 0, sizeof p);
	memcpy(p.tenant, tenant, 16);
	memcpy(p.id, id, 16);
	p.key_version = 1;
	CHECK_RC(store_seal_begin(be, ks, &p, &s), 0);
	CHECK_RC(store_seal_write(s, "partial", 7), 0);
	CHECK_RC(store_seal_finish(s, NULL), 0);
	CHECK_RC(store_backend_sync(be), 0);
}

static void test_crash_leftovers(void)
{
	store_backend_t *be;
	spool_t *sp;
	uint8_t good[16], env_only[16], fail_only[16];
	store_get_t *g;
	char tmp[4096], junk[4096];
	int fd;

	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK_RC(put(sp, tenant_a, "complete", 8, "{}", good), 0);
	spool_close(sp);

	/* what a crash can leave: a failure record without its entry (killed
	 * inside spool_remove), an envelope object of spool format 1 without
	 * its message, a temp file (killed while writing) */
	CHECK_RC(store_backend_open_seg(&be, spdir, 0), 0);
	store_object_id_new(env_only);
	env_only[15] = 1;
	raw_object(be, tenant_b, env_only);
	store_object_id_new(fail_only);
	fail_only[15] = 3;
	raw_object(be, tenant_b, fail_only);
	store_backend_close(be);
	(void)ar_path(tmp, sizeof tmp, "%s/tmp", spdir);
	(void)ar_path(junk, sizeof junk, "%s/0123.abcd.tmp", tmp);
	fd = open(junk, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);

	CHECK_RC(spool_open_readonly(&sp, spdir, ks), 0);
	CHECK(count(sp, NULL) == 1);          /* partial ones never listed */
	spool_close(sp);
	CHECK_RC(spool_open(&sp, spdir, ks), 0);   /* recovers */
	CHECK(count(sp, NULL) == 1);
	CHECK(tl_count_entries(tmp) == 0);
	CHECK_RC(store_backend_open_seg(&be, spdir, 1), 0);
	CHECK_RC(store_backend_get_open(be, tenant_b, env_only, &g), AR_ENOENT);
	CHECK_RC(store_backend_get_open(be, tenant_b, fail_only, &g),
	    AR_ENOENT);
	CHECK_RC(store_backend_get_open(be, tenant_a, good, &g), 0);
	store_get_close(g);
	store_backend_close(be);
	CHECK_RC(spool_remove(sp, tenant_a, good), 0);
	spool_close(sp);
}

/* A spool written before segments (a file per object in the fs backend's
 * layout) is moved into segments when opened: its entries are listed and
 * read back whole, and no file of the old layout is left. */
static void test_fs_layout_moved(void)
{
	static const char body[] = "From: a@example.org\r\n\r\nold layout\r\n";
	uint8_t id[16], fid[16];
	store_backend_t *seg, *fs;
	unsigned char *raw, *m;
	store_get_t *g;
	size_t len, got, mlen;
	char *env, tdir[4096], th[33];
	spool_t *sp;

	/* an entry and a failure record, written now, then moved by hand to
	 * the old layout */
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK_RC(put(sp, tenant_b, body, sizeof body - 1,
	    "{\"from\":\"a@example.org\"}", id), 0);
	CHECK_RC(spool_mark_failed(sp, tenant_b, id, "old failure"), 0);
	spool_close(sp);
	CHECK_RC(store_backend_open_seg(&seg, spdir, 0), 0);
	CHECK_RC(store_backend_open_fs(&fs, spdir), 0);
	memcpy(fid, id, 16);
	for (int k = 0; k < 4; k++) {
		fid[15] = (uint8_t)k;
		if (store_backend_get_open(seg, tenant_b, fid, &g))
			continue;
		len = (size_t)store_get_size(g);
		raw = malloc(len);
		CHECK(raw != NULL);
		CHECK_RC(store_get_pread(g, raw, len, 0, &got), 0);
		CHECK(got == len);
		store_get_close(g);
		{
			store_put_t *p;
			CHECK_RC(store_backend_put_begin(fs, tenant_b, fid, &p),
			    0);
			CHECK_RC(store_put_write(p, raw, len), 0);
			CHECK_RC(store_put_commit(p, 0), 0);
		}
		CHECK_RC(store_backend_delete(seg, tenant_b, fid), 0);
		free(raw);
	}
	CHECK_RC(store_backend_sync(fs), 0);
	store_backend_close(fs);
	store_backend_close(seg);
	(void)ar_path(tdir, sizeof tdir, "%s/%s", spdir,
	    ar_hex(tenant_b, 16, th));
	CHECK(access(tdir, F_OK) == 0);

	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK(count(sp, tenant_b) == 1);
	CHECK(access(tdir, F_OK) < 0 && errno == ENOENT);
	CHECK((m = read_message(sp, tenant_b, id, &mlen)) != NULL);
	CHECK(m && mlen == sizeof body - 1 && memcmp(m, body, mlen) == 0);
	free(m);
	CHECK_RC(spool_read_envelope(sp, tenant_b, id, &env), 0);
	CHECK(strcmp(env, "{\"from\":\"a@example.org\"}") == 0);
	free(env);
	{
		spool_failure_t f;
		CHECK_RC(spool_failure_get(sp, tenant_b, id, &f), 0);
		CHECK(f.count == 1 && strcmp(f.reason, "old failure") == 0);
	}
	CHECK_RC(spool_remove(sp, tenant_b, id), 0);
	spool_close(sp);
}

/* A writer SIGKILL'd at a random moment: every entry it acknowledged
 * (wrote to the pipe after spool_put_finish returned) is there, whole,
 * and nothing else is listed after recovery. */
static void test_sigkill(void)
{
	uint8_t acked[4096][16];
	size_t nacked = 0;
	int pfd[2], status;
	spool_t *sp;
	pid_t pid;

	CHECK(pipe(pfd) == 0);
	pid = fork();
	if (pid == 0) {
		keysvc_t *k;
		uint8_t id[16];
		char body[5000];
		close(pfd[0]);
		memset(body, 'k', sizeof body);
		if (keysvc_open(&k, sock, 0) || spool_open(&sp, spdir, k))
			_exit(3);
		for (int i = 0; i < 4000; i++) {
			if (put(sp, i % 2 ? tenant_a : tenant_b, body,
			    (size_t)(i * 37) % sizeof body, "{\"k\":1}", id))
				_exit(4);
			if (write(pfd[1], id, 16) != 16)
				_exit(5);
		}
		_exit(0);
	}
	close(pfd[1]);
	usleep(200000 + randombytes_uniform(600000));
	kill(pid, SIGKILL);
	for (;;) {
		ssize_t n = read(pfd[0], acked[nacked], 16);
		if (n != 16 || ++nacked == AR_ARRAY_LEN(acked))
			break;
	}
	close(pfd[0]);
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) || WEXITSTATUS(status) == 0);
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	{
		struct list l = { .n = 0 };
		size_t listed;
		CHECK_RC(spool_walk(sp, NULL, 0, list_cb, &l), 0);
		listed = l.n;
		/* acknowledged ones are all there; at most the one in flight
		 * when killed was complete but not yet acknowledged */
		CHECK(listed >= nacked && listed <= nacked + 1);
		for (size_t i = 0; i < nacked; i++) {
			char *env = NULL;
			int rc = spool_read_envelope(sp, i % 2 ? tenant_a :
			    tenant_b, acked[i], &env);
			CHECK_RC(rc, 0);
			CHECK(env && strcmp(env, "{\"k\":1}") == 0);
			free(env);
			CHECK_RC(spool_remove(sp, i % 2 ? tenant_a : tenant_b,
			    acked[i]), 0);
		}
		printf("spool: SIGKILL after %zu acknowledged entries; %zu "
		    "listed after recovery\n", nacked, listed);
	}
	/* drain whatever is left (the unacknowledged one, if any) */
	{
		struct list l = { .n = 0 };
		CHECK_RC(spool_walk(sp, NULL, 0, list_cb, &l), 0);
		for (size_t i = 0; i < l.n && i < AR_ARRAY_LEN(l.e); i++)
			CHECK_RC(spool_remove(sp, l.e[i].tenant, l.e[i].id), 0);
	}
	CHECK(count(sp, NULL) == 0);
	spool_close(sp);
}

/* Start a put of msg (written whole). */
static spool_put_t *begin(spool_t *sp, const uint8_t *tenant, const char *msg)
{
	spool_put_t *p = NULL;
	CHECK_RC(spool_put_begin(sp, tenant, 1, &p), 0);
	CHECK_RC(spool_put_write(p, msg, strlen(msg)), 0);
	return p;
}

/* Group commit: 20 entries of two tenants finished together; a bad
 * envelope fails its entry alone, the others are listed and whole. */
static void test_group(void)
{
	enum { K = 20 };
	static char big[SPOOL_ENVELOPE_MAX + 2];
	spool_t *sp;
	spool_put_t *p[K];
	const char *env[K];
	char msg[K][64];
	uint8_t ids[K][16];
	int rcs[K];

	memset(big, 'x', sizeof big - 1);
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK(count(sp, NULL) == 0);
	for (size_t i = 0; i < K; i++) {
		snprintf(msg[i], sizeof msg[i], "Subject: group %zu\r\n\r\n"
		    "body %zu\r\n", i, i * 7);
		p[i] = begin(sp, i % 2 ? tenant_b : tenant_a, msg[i]);
		env[i] = i == 7 ? big : i == 12 ? NULL : "{\"rcpt\":1}";
	}
	CHECK_RC(spool_put_finish_many(p, K, env, ids, rcs), AR_ETOOBIG);
	CHECK(count(sp, NULL) == K - 2);
	CHECK(count(sp, tenant_b) == K / 2 - 1);
	for (size_t i = 0; i < K; i++) {
		unsigned char *back;
		size_t len = 0;
		CHECK(p[i] == NULL);
		if (i == 7 || i == 12) {
			CHECK_RC(rcs[i], i == 7 ? AR_ETOOBIG : AR_EINVAL);
			continue;
		}
		CHECK_RC(rcs[i], 0);
		back = read_message(sp, i % 2 ? tenant_b : tenant_a, ids[i],
		    &len);
		CHECK(back && len == strlen(msg[i]) &&
		    memcmp(back, msg[i], len) == 0);
		g_free(back);
		CHECK_RC(spool_remove(sp, i % 2 ? tenant_b : tenant_a, ids[i]),
		    0);
	}
	CHECK(count(sp, NULL) == 0);
	spool_close(sp);
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* The drain queue: 10,000 entries (more than any list the pipeline ever
 * had) are all claimed, oldest first, each once, after a reopen too;
 * a retried entry waits until it is due; done removes the entry. */
static void test_queue(void)
{
	enum { N = 10000, G = 64 };
	spool_t *sp;
	spool_queue_info_t qi;
	spool_ref_t c[G], *all = calloc(N, sizeof *all);
	uint8_t (*ids)[16] = calloc(N, 16), *seen = calloc(N, 1);
	size_t claimed = 0, n;
	int64_t t0 = ar_now();

	CHECK(ids && seen && all);
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK(count(sp, NULL) == 0);
	for (size_t i = 0; i < N; i += G) {
		spool_put_t *p[G];
		const char *env[G];
		int rcs[G];
		size_t k = N - i < G ? N - i : G;
		for (size_t j = 0; j < k; j++) {
			char msg[64];
			snprintf(msg, sizeof msg, "Subject: q %zu\r\n\r\nx\r\n",
			    i + j);
			p[j] = begin(sp, (i + j) % 3 ? tenant_a : tenant_b, msg);
			env[j] = "{}";
		}
		CHECK_RC(spool_put_finish_many(p, k, env, ids + i, rcs), 0);
	}
	spool_queue_info(sp, 1, &qi);
	CHECK(qi.ready == N && qi.retrying == 0 && qi.claimed == 0);
	CHECK(qi.oldest_ready >= t0 - 1 && qi.bytes > N * 100ULL);
	spool_close(sp);

	qsort(ids, N, 16, id_cmp);
	/* reopened: every entry queued again, claimed oldest first, once */
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	spool_queue_info(sp, 1, &qi);
	CHECK(qi.ready == N);
	int order_ok = 1;
	while ((n = spool_claim(sp, all + claimed, G)) > 0) {
		for (size_t j = claimed; j < claimed + n; j++) {
			size_t i;
			/* time-ordered ids: never older than the one before */
			if (j && memcmp(all[j].id, all[j - 1].id, 6) < 0)
				order_ok = 0;
			uint8_t (*hit)[16] = bsearch(all[j].id, ids, N, 16,
			    id_cmp);
			i = hit ? (size_t)(hit - ids) : N;
			CHECK(i < N && !seen[i]);
			if (i < N)
				seen[i] = 1;
		}
		claimed += n;
		CHECK(claimed <= N);
	}
	CHECK(order_ok && claimed == N);
	spool_queue_info(sp, 0, &qi);
	CHECK(qi.ready == 0 && qi.claimed == N);
	/* the first G are never handed back; one is retried; the rest done */
	for (size_t j = G; j < N - 1; j++)
		CHECK_RC(spool_claim_done(sp, &all[j]), 0);
	spool_claim_retry(sp, &all[N - 1], ar_now() + 2);
	spool_queue_info(sp, 1, &qi);
	CHECK(qi.ready == 0 && qi.retrying == 1 && qi.claimed == G);
	CHECK(qi.next_due >= ar_now() && qi.oldest_retrying == all[N - 1].arrived);
	CHECK(spool_claim(sp, c, G) == 0);          /* not due yet */
	while (ar_now() < qi.next_due)
		usleep(100000);
	CHECK(spool_claim(sp, c, G) == 1);
	CHECK(!memcmp(c[0].id, all[N - 1].id, 16) && c[0].failures == 1);
	CHECK_RC(spool_claim_done(sp, &c[0]), 0);
	CHECK(count(sp, NULL) == G);
	spool_close(sp);
	/* claimed and never handed back: still on disk, queued at open */
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	spool_queue_info(sp, 0, &qi);
	CHECK(qi.ready == G);
	while ((n = spool_claim(sp, c, G)) > 0)
		for (size_t j = 0; j < n; j++)
			CHECK_RC(spool_claim_done(sp, &c[j]), 0);
	CHECK(count(sp, NULL) == 0);
	spool_queue_info(sp, 0, &qi);
	CHECK(qi.ready == 0 && qi.claimed == 0 && qi.bytes == 0);
	spool_close(sp);
	free(ids);
	free(seen);
	free(all);
}

static void test_keysvc_down(void)
{
	spool_t *sp;
	spool_put_t *p, *p2a, *p2b;
	uint8_t id[16];

	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK_RC(spool_put_begin(sp, tenant_a, 1, &p), 0);  /* key cached */
	CHECK_RC(spool_put_write(p, "Subject: z\r\n\r\nbody\r\n", 20), 0);
	p2a = begin(sp, tenant_a, "Subject: y\r\n\r\n");
	p2b = begin(sp, tenant_a, "Subject: x\r\n\r\n");
	tl_keysvc_stop(kspid);
	CHECK_RC(spool_put_finish(p, "{}", id), AR_EKEYSVC);
	{
		/* a group: every entry fails, none is listed */
		spool_put_t *g[2] = { p2a, p2b };
		const char *env[2] = { "{}", "{}" };
		int rcs[2];
		CHECK_RC(spool_put_finish_many(g, 2, env, NULL, rcs),
		    AR_EKEYSVC);
		CHECK(rcs[0] == AR_EKEYSVC && rcs[1] == AR_EKEYSVC);
	}
	CHECK_RC(spool_put_begin(sp, tenant_c, 1, &p), AR_EKEYSVC);
	CHECK(p == NULL);
	CHECK(count(sp, NULL) == 0);
	spool_close(sp);
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	CHECK(count(sp, NULL) == 0);
	kspid = tl_keysvc_start(ksdir);
	CHECK_RC(put(sp, tenant_c, "back", 4, "{}", id), 0);  /* reconnects */
	CHECK(count(sp, NULL) == 1);
	CHECK_RC(spool_remove(sp, tenant_c, id), 0);
	spool_close(sp);
}

static void test_enospc(void)
{
	char mnt[4096], dir[4096], tmp[4096];
	size_t ok = 0, full = 0;
	unsigned char *big;
	uint8_t ids[64][16];
	spool_t *sp;

	(void)ar_path(mnt, sizeof mnt, "%s/tiny", root);
	(void)ar_path(dir, sizeof dir, "%s/spool", mnt);
	(void)ar_path(tmp, sizeof tmp, "%s/tmp", dir);
	if (geteuid() != 0 || mkdir(mnt, 0700) != 0 ||
	    mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700") != 0) {
		printf("spool: SKIP disk-full test (needs root and a tmpfs "
		    "mount: %s)\n", strerror(errno));
		return;
	}
	big = malloc(300000);
	randombytes_buf(big, 300000);
	CHECK_RC(spool_open(&sp, dir, ks), 0);
	/* sizes that fail at different points: in the message, at the
	 * envelope and trailer, at the last chunk; never a listed entry
	 * that was refused */
	for (size_t i = 0; i < AR_ARRAY_LEN(ids); i++) {
		size_t len = 1000 + (i * 23456) % 290000;
		int rc = put(sp, tenant_a, big, len, "{\"envelope\":"
		    "\"0123456789012345678901234567890123456789\"}", ids[ok]);
		CHECK(rc == 0 || rc == AR_ENOSPC);
		if (rc == 0)
			ok++;
		else
			full++;
		CHECK(count(sp, NULL) == ok);
		CHECK(tl_count_entries(tmp) == 0);
	}
	printf("spool: tmpfs 256k: %zu entries stored, %zu refused with "
	    "AR_ENOSPC\n", ok, full);
	CHECK(full > 0 && ok > 0);
	/* draining frees the space */
	for (size_t i = 0; i < ok; i++)
		CHECK_RC(spool_remove(sp, tenant_a, ids[i]), 0);
	CHECK_RC(put(sp, tenant_a, big, 100000, "{}", ids[0]), 0);
	CHECK(count(sp, NULL) == 1);
	spool_close(sp);
	free(big);
	CHECK(umount2(mnt, MNT_DETACH) == 0);
}

/* --- throughput ------------------------------------------------------------ */

struct bench {
	spool_t *sp;
	int n;
	int failed;
};

static void *bench_thread(void *arg)
{
	struct bench *b = arg;
	char body[4096];
	uint8_t id[16];

	memset(body, 'b', sizeof body);
	for (int i = 0; i < b->n; i++)
		if (put(b->sp, i % 2 ? tenant_a : tenant_b, body, sizeof body,
		    "{\"mail_from\":\"a@b\"}", id))
			b->failed++;
	return NULL;
}

static int drain_cb(void *arg, const spool_entry_t *e)
{
	return spool_remove(arg, e->tenant, e->id);
}

static void bench(int threads, int per_thread)
{
	pthread_t th[16];
	struct bench b[16];
	spool_t *sp;
	int64_t t0, dt;
	int total = threads * per_thread, failed = 0;

	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	t0 = ar_mono_us();
	for (int i = 0; i < threads; i++) {
		b[i].sp = sp;
		b[i].n = per_thread;
		b[i].failed = 0;
		CHECK(pthread_create(&th[i], NULL, bench_thread, &b[i]) == 0);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		failed += b[i].failed;
	}
	dt = ar_mono_us() - t0;
	CHECK(failed == 0);
	CHECK(count(sp, NULL) == (size_t)total);
	printf("spool: %d thread(s): %d entries of 4 KiB in %.3f s = %.0f "
	    "entries/s (%.2f ms per entry per thread)\n", threads, total,
	    (double)dt / 1e6, total / ((double)dt / 1e6),
	    (double)dt / 1000.0 / per_thread);
	CHECK_RC(spool_walk(sp, NULL, 0, drain_cb, sp), 0);
	CHECK(count(sp, NULL) == 0);
	spool_close(sp);
}

int main(void)
{
	char *base = tl_tmpdir("spool");

	if (sodium_init() < 0)
		return 2;
	g_mime_init();
	ar_log_set_level(AR_LOG_WARN);
	(void)ar_path(root, sizeof root, "%s", base);
	(void)ar_path(ksdir, sizeof ksdir, "%s/ks", root);
	(void)ar_path(sock, sizeof sock, "%s/keysvc.sock", ksdir);
	(void)ar_path(spdir, sizeof spdir, "%s/spool", root);
	if (mkdir(ksdir, 0700) < 0)
		return 2;
	kspid = tl_keysvc_start(ksdir);
	CHECK_RC(keysvc_open(&ks, sock, 2000), 0);
	randombytes_buf(tenant_a, 16);
	randombytes_buf(tenant_b, 16);
	randombytes_buf(tenant_c, 16);
	CHECK_RC(keysvc_tenant_create(ks, tenant_a), 0);
	CHECK_RC(keysvc_tenant_create(ks, tenant_b), 0);
	CHECK_RC(keysvc_tenant_create(ks, tenant_c), 0);

	test_round_trip();
	test_failures();
	test_crash_leftovers();
	test_fs_layout_moved();
	test_sigkill();
	test_enospc();
	test_group();
	test_queue();
	bench(1, 200);
	bench(8, 50);
	test_keysvc_down();    /* last: restarts the key service */

	keysvc_close(ks);
	tl_keysvc_stop(kspid);
	tl_rmrf(base);
	free(base);
	g_mime_shutdown();
	return tl_done();
}
