/*
 * test_journal.c - journal report unwrapping: golden files
 * (tests/golden/journal/NAME.eml -> NAME.ref), the real fixtures in
 * shared/fixtures/journal (expected data computed independently, in
 * tests/golden/journal/fixture_NAME.ref), nesting and size limits.
 *
 * Inputs are stored with LF line ends; each is converted to CRLF (the
 * wire form) before parsing, so every expected original is CRLF.
 *
 *   test_journal --dump FILE   print FILE's result in the .ref format
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "ingest/journal.h"
#include "testlib.h"

static const char *fixtures[] = {
	"exo365_ace_o365_journaled",
	"exo365_ace_pdf_attachment",
	"exo365_ace_extra_message_id",
	"exo365_ace_phish_me",
	"exo365_ace_splunk_logging",
	"exchange2019_onprem_leaked_to_linux-block",
};

static char *tmpdir;
static int tmpseq;

/* --- helpers ------------------------------------------------------------ */

static GString *slurp(const char *path)
{
	GString *s;
	char buf[65536];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return NULL;
	s = g_string_new(NULL);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		g_string_append_len(s, buf, (gssize)n);
	fclose(f);
	return s;
}

/* LF -> CRLF (a CRLF stays as it is). */
static GString *to_crlf(const GString *in)
{
	GString *out = g_string_sized_new(in->len + in->len / 16);
	size_t i;

	for (i = 0; i < in->len; i++) {
		if (in->str[i] == '\n' && (i == 0 || in->str[i - 1] != '\r'))
			g_string_append_c(out, '\r');
		g_string_append_c(out, in->str[i]);
	}
	return out;
}

/* Write data (with a prefix of junk bytes) to a temp file and open a
 * stream positioned at the data. */
static GMimeStream *stream_of(const GString *data, size_t junk)
{
	char path[4096];
	GMimeStream *fs;
	int fd;
	size_t i;

	snprintf(path, sizeof(path), "%s/in%d", tmpdir, tmpseq++);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return NULL;
	for (i = 0; i < junk; i++)
		if (write(fd, "J", 1) != 1)
			break;
	if (write(fd, data->str, data->len) != (ssize_t)data->len) {
		close(fd);
		return NULL;
	}
	unlink(path);
	lseek(fd, 0, SEEK_SET);
	fs = g_mime_stream_fs_new(fd);
	g_mime_stream_seek(fs, (gint64)junk, GMIME_STREAM_SEEK_SET);
	return fs;
}

static int sha_cb(void *arg, const void *buf, size_t len)
{
	g_checksum_update(arg, buf, (gssize)len);
	return 0;
}

static int collect_cb(void *arg, const void *buf, size_t len)
{
	g_string_append_len(arg, buf, (gssize)len);
	return 0;
}

static int fail_cb(void *arg, const void *buf, size_t len)
{
	return AR_ENOSPC;
}

/* The .ref text of a result. */
static GString *dump(const journal_t *j, GMimeStream *in)
{
	const journal_envelope_t *e = journal_envelope(j);
	GString *s = g_string_new(NULL);
	unsigned flags = journal_flags(j), bit;
	size_t i;
	int any = 0;

	g_string_append_printf(s, "kind: %s\nflags:",
	    journal_kind_name(journal_kind(j)));
	for (bit = 1; bit != 0; bit <<= 1)
		if (flags & bit) {
			g_string_append_printf(s, "%s%s", any ? "," : " ",
			    journal_flag_name(bit));
			any = 1;
		}
	g_string_append(s, any ? "\n" : " none\n");
	if (journal_reason(j) != NULL)
		g_string_append_printf(s, "reason: %s\n", journal_reason(j));
#define OPT(label, v) if ((v) != NULL) \
	g_string_append_printf(s, label ": %s\n", (v))
	OPT("sender", journal_env_sender(e));
	OPT("subject", journal_env_subject(e));
	OPT("message-id", journal_env_message_id(e));
	OPT("on-behalf-of", journal_env_on_behalf_of(e));
#undef OPT
	for (i = 0; i < journal_env_recipient_count(e); i++) {
		const struct journal_recipient *r = journal_env_recipient(e, i);
		g_string_append_printf(s, "rcpt: %s %s",
		    journal_rcpt_type_name(r->type), r->address);
		if (r->expanded_from != NULL)
			g_string_append_printf(s, " expanded=%s",
			    r->expanded_from);
		if (r->forwarded_from != NULL)
			g_string_append_printf(s, " forwarded=%s",
			    r->forwarded_from);
		g_string_append_c(s, '\n');
	}
	for (i = 0; i < journal_env_field_count(e); i++)
		g_string_append_printf(s, "field: %s: %s\n",
		    journal_env_field(e, i)->name,
		    journal_env_field(e, i)->value);
	for (i = 0; i < journal_gm_original_to_count(j); i++)
		g_string_append_printf(s, "gm-original-to: %s\n",
		    journal_gm_original_to(j, i));
	for (i = 0; i < journal_original_count(j); i++) {
		static const char *enc[] = { "none", "base64", "qp", "uu" };
		const struct journal_original *o = journal_original(j, i);
		GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
		GString *bytes = g_string_new(NULL);
		int rc = journal_original_copy(j, i, in, collect_cb, bytes);

		g_checksum_update(ck, (const guchar *)bytes->str,
		    (gssize)bytes->len);
		g_string_append_printf(s, "original %zu: enc=%s offset=%lld "
		    "length=%lld size=%zu sha256=%s linked=%d message-id=%s "
		    "rc=%d\n", i, enc[o->encoding], (long long)o->offset,
		    (long long)o->length, bytes->len,
		    g_checksum_get_string(ck), o->linked,
		    o->message_id ? o->message_id : "(none)", rc);
		g_checksum_free(ck);
		g_string_free(bytes, TRUE);
	}
	return s;
}

/* Parse an LF file as CRLF and return its dump (NULL on error). */
static GString *dump_file(const char *path, const struct journal_opts *o)
{
	GString *raw = slurp(path), *crlf, *out = NULL;
	GMimeStream *in;
	journal_t *j;

	if (raw == NULL)
		return NULL;
	crlf = to_crlf(raw);
	in = stream_of(crlf, 0);
	if (in != NULL && journal_parse(in, o, &j) == 0) {
		out = dump(j, in);
		journal_free(j);
	}
	if (in != NULL)
		g_object_unref(in);
	g_string_free(raw, TRUE);
	g_string_free(crlf, TRUE);
	return out;
}

static void check_ref(const char *input, const char *ref)
{
	GString *got = dump_file(input, NULL), *want = slurp(ref);

	CHECK(got != NULL);
	CHECK(want != NULL);
	if (got != NULL && want != NULL) {
		int same = g_string_equal(got, want);
		CHECK(same);
		if (!same)
			fprintf(stderr, "%s:\n--- want (%s)\n%s--- got\n%s",
			    input, ref, want->str, got->str);
	}
	if (got != NULL)
		g_string_free(got, TRUE);
	if (want != NULL)
		g_string_free(want, TRUE);
}

/* --- tests -------------------------------------------------------------- */

static void test_goldens(const char *src)
{
	char dir[4096], in[4600], ref[4600];
	struct dirent *d;
	DIR *dp;
	int n = 0;
	size_t i;

	snprintf(dir, sizeof(dir), "%s/tests/golden/journal", src);
	dp = opendir(dir);
	CHECK(dp != NULL);
	while (dp != NULL && (d = readdir(dp)) != NULL) {
		size_t l = strlen(d->d_name);
		if (l < 5 || strcmp(d->d_name + l - 4, ".eml") != 0)
			continue;
		snprintf(in, sizeof(in), "%s/%s", dir, d->d_name);
		snprintf(ref, sizeof(ref), "%s/%.*s.ref", dir, (int)(l - 4),
		    d->d_name);
		check_ref(in, ref);
		n++;
	}
	if (dp != NULL)
		closedir(dp);
	CHECK(n >= 10);
	for (i = 0; i < AR_ARRAY_LEN(fixtures); i++) {
		snprintf(in, sizeof(in), "%s/../shared/fixtures/journal/%s.eml",
		    src, fixtures[i]);
		snprintf(ref, sizeof(ref), "%s/fixture_%s.ref", dir,
		    fixtures[i]);
		check_ref(in, ref);
	}
}

/* A report: text/plain envelope + message/rfc822 original, with levels
 * multiparts around them (report_levels) or inside the original. */
static GString *nested_report(int report_levels, int orig_levels,
    GString *orig)
{
	GString *s = g_string_new(NULL);
	int i;

	g_string_append(s, "From: a@x.example\r\nX-MS-Journal-Report:\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
	    "boundary=\"top\"\r\n\r\n--top\r\nContent-Type: text/plain\r\n\r\n"
	    "Sender: a@x.example\r\nTo: b@x.example\r\n\r\n--top\r\n");
	for (i = 0; i < report_levels; i++)
		g_string_append_printf(s, "Content-Type: multipart/mixed; "
		    "boundary=\"r%d\"\r\n\r\n--r%d\r\n", i, i);
	g_string_append(s, "Content-Type: message/rfc822\r\n\r\n");
	g_string_append(orig, "From: a@x.example\r\nMessage-ID: <deep@x>\r\n"
	    "MIME-Version: 1.0\r\n");
	for (i = 0; i < orig_levels; i++)
		g_string_append_printf(orig, "Content-Type: multipart/mixed; "
		    "boundary=\"o%d\"\r\n\r\n--o%d\r\n", i, i);
	g_string_append(orig, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	for (i = orig_levels; i-- > 0; )
		g_string_append_printf(orig, "--o%d--\r\n", i);
	g_string_append_len(s, orig->str, (gssize)orig->len);
	for (i = report_levels; i-- > 0; )
		g_string_append_printf(s, "\r\n--r%d--", i);
	g_string_append(s, "\r\n--top--\r\n");
	return s;
}

static void check_original(const char *what, GString *msg,
    const struct journal_opts *o, enum journal_kind kind, GString *want)
{
	GMimeStream *in = stream_of(msg, 0);
	journal_t *j = NULL;

	CHECK_RC(journal_parse(in, o, &j), 0);
	if (j == NULL) {
		g_object_unref(in);
		return;
	}
	CHECK(journal_kind(j) == kind);
	if (journal_kind(j) != kind)
		fprintf(stderr, "%s: kind %s flags %x\n", what,
		    journal_kind_name(journal_kind(j)), journal_flags(j));
	if (want != NULL) {
		GString *got = g_string_new(NULL);
		CHECK(journal_original_count(j) == 1);
		CHECK_RC(journal_original_copy(j, 0, in, collect_cb, got), 0);
		CHECK(g_string_equal(got, want));
		g_string_free(got, TRUE);
	} else {
		CHECK(journal_original_count(j) == 0);
		CHECK(journal_envelope(j) == NULL);
	}
	journal_free(j);
	g_object_unref(in);
}

static void test_nesting(void)
{
	struct journal_opts o;
	GString *orig = g_string_new(NULL), *msg;
	GMimeStream *in;
	journal_t *j = NULL;

	journal_opts_default(&o);
	/* 1,000 levels inside the report: over the default limit of 100 */
	msg = nested_report(1000, 0, orig);
	check_original("deep report", msg, NULL, JOURNAL_PLAIN, NULL);
	in = stream_of(msg, 0);
	CHECK_RC(journal_parse(in, NULL, &j), 0);
	CHECK(j != NULL && (journal_flags(j) & JOURNAL_F_DEPTH));
	CHECK(j != NULL && journal_reason(j) != NULL);
	journal_free(j);
	g_object_unref(in);
	/* ... and unwrapped when the limit allows it (no recursion) */
	o.max_depth = 2000;
	check_original("deep report, limit 2000", msg, &o, JOURNAL_EXCHANGE,
	    orig);
	g_string_free(msg, TRUE);
	/* 1,000 levels inside the original: never walked, exact bytes */
	g_string_truncate(orig, 0);
	msg = nested_report(0, 1000, orig);
	check_original("deep original", msg, NULL, JOURNAL_EXCHANGE, orig);
	g_string_free(msg, TRUE);
	/* a plain message nested 1,000 levels */
	g_string_truncate(orig, 0);
	msg = nested_report(0, 1000, orig);
	check_original("deep plain", orig, NULL, JOURNAL_PLAIN, NULL);
	g_string_free(msg, TRUE);
	g_string_free(orig, TRUE);
}

static void test_limits(void)
{
	struct journal_opts o;
	GString *orig = g_string_new(NULL), *msg, *big;
	GMimeStream *in;
	journal_t *j = NULL;

	journal_opts_default(&o);
	o.max_header = 4096;
	msg = nested_report(1, 0, orig);
	check_original("small", msg, &o, JOURNAL_EXCHANGE, orig);
	/* a 10 KB folded header on the report */
	big = g_string_new("X-Big: start");
	while (big->len < 10000)
		g_string_append(big, "\r\n folded-continuation-line");
	g_string_append(big, "\r\n");
	g_string_prepend(msg, big->str);
	in = stream_of(msg, 0);
	CHECK_RC(journal_parse(in, &o, &j), 0);
	CHECK(j != NULL && journal_kind(j) == JOURNAL_PLAIN);
	CHECK(j != NULL && (journal_flags(j) & JOURNAL_F_HEADER_SIZE));
	journal_free(j);
	g_object_unref(in);
	/* default limit: unwrapped */
	check_original("big header", msg, NULL, JOURNAL_EXCHANGE, orig);
	/* too many parts */
	o.max_header = 1 << 20;
	o.max_parts = 2;
	check_original("parts", msg, &o, JOURNAL_PLAIN, NULL);
	g_string_free(big, TRUE);
	g_string_free(msg, TRUE);
	g_string_free(orig, TRUE);
}

/* Offsets are stream positions; a stream that starts inside a file. */
static void test_stream_offset(void)
{
	GString *orig = g_string_new(NULL), *msg = nested_report(0, 2, orig);
	GMimeStream *in = stream_of(msg, 777);
	journal_t *j = NULL;
	GString *got = g_string_new(NULL);
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);

	CHECK_RC(journal_parse(in, NULL, &j), 0);
	CHECK(j != NULL && journal_original_count(j) == 1);
	if (j != NULL && journal_original_count(j) == 1) {
		CHECK(journal_original(j, 0)->offset > 777);
		CHECK(!strcmp(journal_original(j, 0)->message_id, "<deep@x>"));
		CHECK_RC(journal_original_copy(j, 0, in, collect_cb, got), 0);
		CHECK(g_string_equal(got, orig));
		CHECK_RC(journal_original_copy(j, 0, in, sha_cb, ck), 0);
		CHECK_RC(journal_original_copy(j, 0, in, fail_cb, NULL),
		    AR_ENOSPC);
		CHECK_RC(journal_original_copy(j, 1, in, sha_cb, ck),
		    AR_ENOENT);
	}
	journal_free(j);
	g_object_unref(in);
	g_checksum_free(ck);
	g_string_free(got, TRUE);
	g_string_free(msg, TRUE);
	g_string_free(orig, TRUE);
}

static void test_envelope_text(void)
{
	static const char text[] =
	    "SENDER: s@x\r\nmessage-id: <m@x>\r\nSubject: two\r\n words\r\n"
	    "Recipients: a@x, \"Last, First\" <b@x>, Expanded: g@x\r\n"
	    "BCC: c@x, Forwarded: d@x\r\nno colon here\r\nSender: again@x\r\n"
	    "X-Odd:\r\n\r\n";
	journal_envelope_t *e = NULL;

	CHECK_RC(journal_envelope_parse(text, sizeof(text) - 1, &e), 0);
	if (e == NULL)
		return;
	CHECK(!strcmp(journal_env_sender(e), "s@x"));
	CHECK(!strcmp(journal_env_message_id(e), "<m@x>"));
	CHECK(!strcmp(journal_env_subject(e), "two words"));
	CHECK(journal_env_on_behalf_of(e) == NULL);
	CHECK(journal_env_recipient_count(e) == 3);
	if (journal_env_recipient_count(e) == 3) {
		const struct journal_recipient *r = journal_env_recipient(e, 1);
		CHECK(!strcmp(r->address, "b@x"));
		CHECK(r->type == JOURNAL_RCPT_RECIPIENT);
		CHECK(!strcmp(r->expanded_from, "g@x"));
		CHECK(!strcmp(journal_env_recipient(e, 0)->expanded_from,
		    "g@x"));
		r = journal_env_recipient(e, 2);
		CHECK(r->type == JOURNAL_RCPT_BCC);
		CHECK(!strcmp(r->forwarded_from, "d@x"));
		CHECK(r->expanded_from == NULL);
	}
	CHECK(journal_env_field_count(e) == 3);
	if (journal_env_field_count(e) == 3) {
		CHECK(!strcmp(journal_env_field(e, 0)->name, ""));
		CHECK(!strcmp(journal_env_field(e, 1)->value, "again@x"));
		CHECK(!strcmp(journal_env_field(e, 2)->name, "X-Odd"));
	}
	journal_envelope_free(e);
}

/* Every prefix of a report parses (no error, no crash); a prefix that
 * still unwraps copies its originals. */
static void test_truncations(const char *src)
{
	char path[4096];
	GString *raw, *crlf, *pre = g_string_new(NULL);
	size_t len, bad = 0, unwrapped = 0;

	snprintf(path, sizeof(path), "%s/tests/golden/journal/"
	    "irm_decrypted_copy.eml", src);
	raw = slurp(path);
	CHECK(raw != NULL);
	if (raw == NULL)
		return;
	crlf = to_crlf(raw);
	for (len = 0; len <= crlf->len; len += 7) {
		GMimeStream *in;
		journal_t *j = NULL;
		size_t i;

		g_string_truncate(pre, 0);
		g_string_append_len(pre, crlf->str, (gssize)len);
		in = stream_of(pre, 3);
		if (in == NULL || journal_parse(in, NULL, &j) != 0)
			bad++;
		for (i = 0; j != NULL && i < journal_original_count(j); i++) {
			GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
			if (journal_original_copy(j, i, in, sha_cb, ck) != 0)
				bad++;
			g_checksum_free(ck);
		}
		if (j != NULL && journal_kind(j) != JOURNAL_PLAIN)
			unwrapped++;
		journal_free(j);
		if (in != NULL)
			g_object_unref(in);
	}
	CHECK(bad == 0);
	/* only a prefix that cuts into the epilogue still unwraps */
	CHECK(unwrapped <= 2);
	if (unwrapped > 2)
		fprintf(stderr, "unwrapped %zu of %zu\n", unwrapped, crlf->len / 7);
	g_string_free(pre, TRUE);
	g_string_free(crlf, TRUE);
	g_string_free(raw, TRUE);
}

/* LF-only input: the same structure, the original's own bytes (LF). */
static void test_lf_input(const char *src)
{
	char path[4096];
	GString *raw, *got = g_string_new(NULL);
	GMimeStream *in;
	journal_t *j = NULL;

	snprintf(path, sizeof(path), "%s/../shared/fixtures/journal/"
	    "exo365_ace_o365_journaled.eml", src);
	raw = slurp(path);
	CHECK(raw != NULL);
	if (raw == NULL)
		return;
	in = stream_of(raw, 0);
	CHECK_RC(journal_parse(in, NULL, &j), 0);
	CHECK(j != NULL && journal_kind(j) == JOURNAL_EXCHANGE);
	if (j != NULL && journal_original_count(j) == 1) {
		const char *want = strstr(raw->str, "Content-Type: message/"
		    "rfc822\n\n");
		const char *end = strstr(raw->str, "\n--_1d193813-fafc-4b56-"
		    "8a91-eb0391210649_--");
		CHECK_RC(journal_original_copy(j, 0, in, collect_cb, got), 0);
		CHECK(want != NULL && end != NULL);
		if (want != NULL && end != NULL) {
			want += strlen("Content-Type: message/rfc822\n\n");
			CHECK(got->len == (size_t)(end - want));
			CHECK(!memcmp(got->str, want, got->len));
		}
	}
	journal_free(j);
	g_object_unref(in);
	g_string_free(got, TRUE);
	g_string_free(raw, TRUE);
}

int main(int argc, char **argv)
{
	const char *src = getenv("AR_SOURCE_DIR");

	g_mime_init();
	tmpdir = tl_tmpdir("journal");
	if (argc == 3 && !strcmp(argv[1], "--dump")) {
		GString *s = dump_file(argv[2], NULL);
		if (s != NULL)
			fputs(s->str, stdout);
		tl_rmrf(tmpdir);
		free(tmpdir);
		g_mime_shutdown();
		return s == NULL;
	}
	if (src == NULL)
		src = ".";
	test_envelope_text();
	test_goldens(src);
	test_nesting();
	test_limits();
	test_stream_offset();
	test_truncations(src);
	test_lf_input(src);
	tl_rmrf(tmpdir);
	free(tmpdir);
	g_mime_shutdown();
	return tl_done();
}
