/*
 * test_gstream.c - ArSealedStream: GMime stream semantics over a sealed
 * object (read, seek, tell, eos, length, reset, substreams), the journal
 * parser reading every shared fixture (LF -> CRLF) through it with the
 * same results as through a memory stream, and a damaged chunk reported
 * as AR_ECORRUPT.
 */
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "ar.h"
#include "mime/mime.h"
#include "ingest/journal.h"
#include "store/store.h"
#include "testlib.h"

static store_backend_t *be;
static keysvc_t *ks;
static uint8_t tenant[16];

static int seal_bytes(const void *data, size_t len, uint32_t cs, uint8_t *id)
{
	store_seal_params_t p;
	store_sealer_t *s;
	int rc;

	memset(&p, 0, sizeof p);
	memcpy(p.tenant, tenant, 16);
	store_object_id_new(id);
	memcpy(p.id, id, 16);
	p.key_version = 1;
	p.chunk_size = cs;
	p.received = ar_now();
	if ((rc = store_seal_begin(be, ks, &p, &s)))
		return rc;
	if ((rc = store_seal_write(s, data, len))) {
		store_seal_abort(s);
		return rc;
	}
	if ((rc = store_seal_finish(s, NULL)))
		return rc;
	return store_backend_sync(be);
}

static GMimeStream *open_sealed(const uint8_t *id)
{
	store_reader_t *r;
	GMimeStream *s;

	if (store_reader_open(be, ks, tenant, id, &r) != 0)
		return NULL;
	if (!(s = mime_sealed_stream_new(r, 1)))
		store_reader_close(r);
	return s;
}

/* Read the whole stream (from its position) into a GByteArray. */
static GByteArray *slurp(GMimeStream *s)
{
	GByteArray *b = g_byte_array_new();
	char buf[777];
	ssize_t n;

	while ((n = g_mime_stream_read(s, buf, sizeof buf)) > 0)
		g_byte_array_append(b, (const guint8 *)buf, (guint)n);
	if (n < 0) {
		g_byte_array_unref(b);
		return NULL;
	}
	return b;
}

static int same(GByteArray *b, const unsigned char *want, size_t len)
{
	return b && b->len == len && memcmp(b->data, want, len) == 0;
}

static void test_semantics(void)
{
	const size_t n = 5 * 4096 + 123;
	unsigned char *data = malloc(n);
	GMimeStream *s, *sub, *sub2;
	GByteArray *b;
	uint8_t id[16];
	char buf[64];

	randombytes_buf(data, n);
	CHECK_RC(seal_bytes(data, n, 4096, id), 0);
	CHECK((s = open_sealed(id)) != NULL);
	if (!s)
		return;
	CHECK(g_mime_stream_length(s) == (gint64)n);
	CHECK(g_mime_stream_tell(s) == 0);
	CHECK(!g_mime_stream_eos(s));
	CHECK(same(b = slurp(s), data, n));
	g_byte_array_unref(b);
	CHECK(g_mime_stream_eos(s));
	CHECK(g_mime_stream_tell(s) == (gint64)n);
	CHECK(g_mime_stream_read(s, buf, sizeof buf) == 0);

	CHECK(g_mime_stream_seek(s, 4000, GMIME_STREAM_SEEK_SET) == 4000);
	CHECK(g_mime_stream_read(s, buf, 64) == 64 &&
	    memcmp(buf, data + 4000, 64) == 0);
	CHECK(g_mime_stream_seek(s, -128, GMIME_STREAM_SEEK_CUR) == 4000 - 64);
	CHECK(g_mime_stream_read(s, buf, 10) == 10 &&
	    memcmp(buf, data + 4000 - 64, 10) == 0);
	CHECK(g_mime_stream_seek(s, -5, GMIME_STREAM_SEEK_END) ==
	    (gint64)n - 5);
	CHECK(g_mime_stream_read(s, buf, 64) == 5 &&
	    memcmp(buf, data + n - 5, 5) == 0);
	CHECK(g_mime_stream_seek(s, 1, GMIME_STREAM_SEEK_END) == -1);
	CHECK(g_mime_stream_seek(s, -1, GMIME_STREAM_SEEK_SET) == -1);
	CHECK(g_mime_stream_write(s, "x", 1) == -1);
	CHECK(g_mime_stream_reset(s) == 0 && g_mime_stream_tell(s) == 0);
	CHECK(g_mime_stream_read(s, buf, 3) == 3 && memcmp(buf, data, 3) == 0);

	/* substreams keep their own position over the shared reader */
	sub = g_mime_stream_substream(s, 5000, 9000);
	CHECK(g_mime_stream_length(sub) == 4000);
	CHECK(g_mime_stream_tell(sub) == 5000);
	CHECK(g_mime_stream_read(sub, buf, 10) == 10 &&
	    memcmp(buf, data + 5000, 10) == 0);
	CHECK(g_mime_stream_read(s, buf, 10) == 10 &&
	    memcmp(buf, data + 3, 10) == 0);
	sub2 = g_mime_stream_substream(sub, 8990, 9000);
	CHECK(same(b = slurp(sub2), data + 8990, 10));
	g_byte_array_unref(b);
	CHECK(g_mime_stream_eos(sub2));
	CHECK(g_mime_stream_seek(sub, 100, GMIME_STREAM_SEEK_SET) == -1);
	CHECK(g_mime_stream_seek(sub, 0, GMIME_STREAM_SEEK_END) == 9000);
	CHECK(g_mime_stream_reset(sub) == 0);
	CHECK(same(b = slurp(sub), data + 5000, 4000));
	g_byte_array_unref(b);
	/* the parent goes first: the substreams keep the reader alive */
	g_object_unref(s);
	g_object_unref(sub);
	CHECK(g_mime_stream_reset(sub2) == 0);
	CHECK(same(b = slurp(sub2), data + 8990, 10));
	g_byte_array_unref(b);
	g_object_unref(sub2);

	/* a borrowed reader outlives the stream */
	{
		store_reader_t *r;
		size_t got;
		CHECK_RC(store_reader_open(be, ks, tenant, id, &r), 0);
		s = mime_sealed_stream_new(r, 0);
		CHECK(g_mime_stream_seek(s, 100, GMIME_STREAM_SEEK_SET) == 100);
		CHECK(g_mime_stream_read(s, buf, 8) == 8);
		g_object_unref(s);
		CHECK_RC(store_reader_read(r, buf, 8, &got), 0);
		CHECK(got == 8 && memcmp(buf, data + 108, 8) == 0);
		store_reader_close(r);
	}
	free(data);
}

static char *to_crlf(const unsigned char *in, size_t len, size_t *outlen)
{
	char *out = malloc(2 * len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = (char)in[i];
	}
	*outlen = o;
	return out;
}

static int collect_cb(void *arg, const void *buf, size_t len)
{
	g_byte_array_append(arg, buf, (guint)len);
	return 0;
}

/* Parse through both streams; compare kind, flags and every original. */
static void compare_parse(const char *name, const char *msg, size_t len,
    const uint8_t *id)
{
	GMimeStream *mem, *sealed;
	journal_t *jm = NULL, *js = NULL;

	mem = g_mime_stream_mem_new_with_buffer(msg, len);
	CHECK((sealed = open_sealed(id)) != NULL);
	if (!sealed) {
		g_object_unref(mem);
		return;
	}
	CHECK_RC(journal_parse(mem, NULL, &jm), 0);
	CHECK_RC(journal_parse(sealed, NULL, &js), 0);
	if (!jm || !js)
		goto out;
	CHECK(journal_kind(jm) == journal_kind(js));
	CHECK(journal_flags(jm) == journal_flags(js));
	CHECK(journal_original_count(jm) == journal_original_count(js));
	CHECK(journal_kind(js) != JOURNAL_PLAIN);
	for (size_t i = 0; i < journal_original_count(jm); i++) {
		GByteArray *a = g_byte_array_new(), *b = g_byte_array_new();
		CHECK_RC(journal_original_copy(jm, i, mem, collect_cb, a), 0);
		CHECK_RC(journal_original_copy(js, i, sealed, collect_cb, b), 0);
		CHECK(a->len > 0 && a->len == b->len &&
		    memcmp(a->data, b->data, a->len) == 0);
		if (a->len != b->len)
			fprintf(stderr, "  %s original %zu: %u vs %u bytes\n",
			    name, i, a->len, b->len);
		g_byte_array_unref(a);
		g_byte_array_unref(b);
	}
out:
	journal_free(jm);
	journal_free(js);
	g_object_unref(mem);
	g_object_unref(sealed);
}

static void test_fixtures(void)
{
	const char *src = getenv("AR_SOURCE_DIR");
	char pattern[4096];
	glob_t g;
	size_t done = 0;

	(void)ar_path(pattern, sizeof pattern,
	    "%s/../shared/fixtures/journal/*.eml", src ? src : ".");
	if (glob(pattern, 0, NULL, &g) != 0 &&
	    glob("/work/shared/fixtures/journal/*.eml", 0, NULL, &g) != 0) {
		CHECK(!"journal fixtures found");
		return;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		unsigned char *raw;
		size_t rawlen, len;
		char *msg;
		uint8_t id[16], id2[16];

		CHECK_RC(ar_file_read(g.gl_pathv[i], 64u << 20, &raw, &rawlen),
		    0);
		msg = to_crlf(raw, rawlen, &len);
		CHECK_RC(seal_bytes(msg, len, 4096, id), 0);
		CHECK_RC(seal_bytes(msg, len, 0, id2), 0);
		compare_parse(g.gl_pathv[i], msg, len, id);
		compare_parse(g.gl_pathv[i], msg, len, id2);
		free(raw);
		free(msg);
		done++;
	}
	printf("gstream: %zu fixtures parsed through sealed streams\n", done);
	CHECK(done >= 6);
	globfree(&g);
}

/* A flipped bit in a middle chunk: the read fails at that chunk, the
 * stream says why, and the error stays (the reader is not trusted again). */
static void test_damage(void)
{
	const size_t n = 6 * 4096;
	char *msg = malloc(n);
	char th[33], ih[33], path[4096];
	const char *root = getenv("GSTREAM_STORE");
	GMimeStream *s;
	uint8_t id[16];
	unsigned char b;
	FILE *f;

	memset(msg, 'a', n);
	memcpy(msg, "Subject: x\r\n\r\n", 14);
	CHECK_RC(seal_bytes(msg, n, 4096, id), 0);
	ar_hex(tenant, 16, th);
	ar_hex(id, 16, ih);
	(void)ar_path(path, sizeof path, "%s/%s/%.4s/%.4s/%s", root, th, ih,
	    ih + 4, ih);
	CHECK(chmod(path, 0600) == 0);
	CHECK((f = fopen(path, "r+b")) != NULL);
	if (f) {
		long off = 96 + 3 * (4096 + 16) + 50;
		CHECK(fseek(f, off, SEEK_SET) == 0 && fread(&b, 1, 1, f) == 1);
		b ^= 0x10;
		CHECK(fseek(f, off, SEEK_SET) == 0 && fwrite(&b, 1, 1, f) == 1);
		fclose(f);
	}
	CHECK((s = open_sealed(id)) != NULL);
	if (s) {
		char buf[4096];
		CHECK(g_mime_stream_read(s, buf, sizeof buf) == sizeof buf);
		CHECK(slurp(s) == NULL);
		CHECK_RC(mime_sealed_stream_status(s), AR_ECORRUPT);
		CHECK(g_mime_stream_seek(s, 2 * 4096, GMIME_STREAM_SEEK_SET) ==
		    2 * 4096);
		CHECK(g_mime_stream_read(s, buf, 10) == -1);  /* sticky */
		g_object_unref(s);
	}
	free(msg);
}

int main(void)
{
	char *root = tl_tmpdir("gstream");
	char ksdir[4096], sock[4096], store[4096];
	pid_t pid;

	if (sodium_init() < 0)
		return 2;
	g_mime_init();
	(void)ar_path(ksdir, sizeof ksdir, "%s/ks", root);
	(void)ar_path(sock, sizeof sock, "%s/keysvc.sock", ksdir);
	(void)ar_path(store, sizeof store, "%s/store", root);
	setenv("GSTREAM_STORE", store, 1);
	if (mkdir(ksdir, 0700) < 0)
		return 2;
	pid = tl_keysvc_start(ksdir);
	CHECK_RC(keysvc_open(&ks, sock, 0), 0);
	randombytes_buf(tenant, 16);
	CHECK_RC(keysvc_tenant_create(ks, tenant), 0);
	CHECK_RC(store_backend_open_fs(&be, store), 0);

	test_semantics();
	test_fixtures();
	test_damage();

	store_backend_close(be);
	keysvc_close(ks);
	tl_keysvc_stop(pid);
	tl_rmrf(root);
	free(root);
	g_mime_shutdown();
	return tl_done();
}
