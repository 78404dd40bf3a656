/*
 * test_gw_attach.c - the gateway's attachment policy and parsers, without
 * services: real types by magic bytes, blocked extensions, mismatches,
 * the MIME walk over real messages with real archives made here with
 * libarchive (ZIP, nested ZIP, encrypted ZIP, gzip, OOXML with and
 * without macros), OLE2 class ids and VBA projects, message/rfc822 part
 * numbering, the limits (size, depth, bytes, entries, findings), damaged
 * archives, rspamd replies (good and malformed), and the result JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <gmime/gmime.h>
#include <jansson.h>

#include "ar.h"
#include "gateway/scan.h"
#include "mime/mime.h"
#include "testlib.h"

/* --- building test data ------------------------------------------------- */

typedef struct ent {
	const char *name;
	const void *data;
	size_t len;
} ent_t;

/* An archive of the entries in memory: ZIP (deflate; with pass,
 * encrypted, traditional PKWARE) or another libarchive format.  NULL if
 * libarchive cannot. */
static unsigned char *make_arch(int format, const ent_t *e, size_t n,
    const char *pass, size_t *len)
{
	size_t cap = 1 << 20, used = 0, i;
	unsigned char *buf = malloc(cap);
	struct archive *a = archive_write_new();

	archive_write_set_format(a, format);
	if (pass) {
		if (archive_write_set_options(a, "zip:encryption=zipcrypt") !=
		    ARCHIVE_OK ||
		    archive_write_set_passphrase(a, pass) != ARCHIVE_OK) {
			archive_write_free(a);
			free(buf);
			return NULL;
		}
	}
	archive_write_open_memory(a, buf, cap, &used);
	for (i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_size(ae, (la_int64_t)e[i].len);
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, 0644);
		archive_write_header(a, ae);
		archive_write_data(a, e[i].data, e[i].len);
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	*len = used;
	return buf;
}

static unsigned char *make_zip(const ent_t *e, size_t n, const char *pass,
    size_t *len)
{
	return make_arch(ARCHIVE_FORMAT_ZIP, e, n, pass, len);
}

/* gzip of one file ("raw"), in memory. */
static unsigned char *make_gz(const void *data, size_t dlen, size_t *len)
{
	size_t cap = 1 << 20, used = 0;
	unsigned char *buf = malloc(cap);
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();

	archive_write_add_filter_gzip(a);
	archive_write_set_format_raw(a);
	archive_write_open_memory(a, buf, cap, &used);
	archive_entry_set_pathname(ae, "data");
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_size(ae, (la_int64_t)dlen);
	archive_write_header(a, ae);
	archive_write_data(a, data, dlen);
	archive_entry_free(ae);
	archive_write_close(a);
	archive_write_free(a);
	*len = used;
	return buf;
}

/* Base64 in 76-column lines. */
static void b64(GString *out, const void *data, size_t len)
{
	gchar *s = g_base64_encode(data, len);
	size_t n = strlen(s), i;

	for (i = 0; i < n; i += 76) {
		g_string_append_len(out, s + i, (gssize)(n - i < 76 ? n - i : 76));
		g_string_append(out, "\r\n");
	}
	g_free(s);
}

typedef struct att {
	const char *ctype;
	const char *filename;
	const void *data;
	size_t len;
} att_t;

/* A multipart/mixed message: a text body, then the attachments
 * (base64). */
static GString *make_msg(const att_t *att, size_t n)
{
	GString *m = g_string_new(
	    "From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"BOUND\"\r\n\r\n"
	    "--BOUND\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
	size_t i;

	for (i = 0; i < n; i++) {
		g_string_append_printf(m, "--BOUND\r\nContent-Type: %s\r\n"
		    "Content-Transfer-Encoding: base64\r\n", att[i].ctype);
		if (att[i].filename)
			g_string_append_printf(m, "Content-Disposition: "
			    "attachment; filename=\"%s\"\r\n", att[i].filename);
		g_string_append(m, "\r\n");
		b64(m, att[i].data, att[i].len);
	}
	g_string_append(m, "--BOUND--\r\n");
	return m;
}

static int walk(const GString *m, const gw_attach_limits_t *lim,
    gw_attach_result_t *res)
{
	gw_scan_source_t src;
	GMimeStream *s;
	int rc, src_rc;

	if (gw_scan_source_mem(&src, m->str, m->len))
		return AR_ENOMEM;
	s = src.mime_stream(src.arg, &src_rc);
	rc = gw_attach_walk(s, src.size, lim, res);
	g_object_unref(s);
	gw_scan_source_done(&src);
	return rc;
}

static const gw_attach_finding_t *find(const gw_attach_result_t *r,
    const char *path)
{
	size_t i;

	for (i = 0; i < r->nfindings; i++)
		if (strcmp(r->findings[i].path, path) == 0)
			return &r->findings[i];
	return NULL;
}

static const unsigned char exe[] = "MZ\x90\0\3\0\0\0\4\0\0\0\xff\xff\0\0"
    "This program cannot be run in DOS mode.";
#define EXE_LEN (sizeof exe - 1)

/* --- tests ---------------------------------------------------------------- */

static void test_sniff(void)
{
	unsigned char iso[0x8010];
	static const unsigned char pdf[] = "garbage\n%PDF-1.7\n";
	/* the EICAR test file, kept as hex so that no antivirus flags this
	 * source or its binary */
	static const char eicar_hex[] = "58354f2150254041505b345c505a5835"
	    "3428505e2937434329377d2445494341522d5354414e444152442d414e5449"
	    "56495255532d544553542d46494c452124482b482a";
	unsigned char eicar[68];

	CHECK(gw_ftype_sniff(exe, EXE_LEN) == GW_FT_PE);
	CHECK(gw_ftype_sniff((const unsigned char *)"\x7f" "ELF\2\1\1", 7) ==
	    GW_FT_ELF);
	CHECK(gw_ftype_sniff(pdf, sizeof pdf - 1) == GW_FT_PDF);
	CHECK(gw_ftype_sniff((const unsigned char *)"PK\3\4\x14\0", 6) ==
	    GW_FT_ZIP);
	CHECK(gw_ftype_sniff((const unsigned char *)"Rar!\x1a\x07\x01\0", 8) ==
	    GW_FT_RAR);
	CHECK(gw_ftype_sniff((const unsigned char *)"7z\xbc\xaf\x27\x1c\0\4",
	    8) == GW_FT_7Z);
	CHECK(gw_ftype_sniff((const unsigned char *)"\x1f\x8b\x08\0", 4) ==
	    GW_FT_GZIP);
	CHECK(gw_ftype_sniff((const unsigned char *)
	    "\x4c\0\0\0\x01\x14\x02\0\0\0", 10) == GW_FT_LNK);
	CHECK(gw_ftype_sniff((const unsigned char *)
	    "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8) == GW_FT_OLE);
	CHECK(gw_ftype_sniff((const unsigned char *)"#!/bin/sh\necho", 14) ==
	    GW_FT_SCRIPT);
	CHECK(gw_ftype_sniff((const unsigned char *)"\x89PNG\r\n\x1a\n", 8) ==
	    GW_FT_IMAGE);
	CHECK(gw_ftype_sniff((const unsigned char *)"  <!DOCTYPE html><p>",
	    20) == GW_FT_HTML);
	CHECK(gw_ftype_sniff((const unsigned char *)"{\\rtf1\\ansi", 11) ==
	    GW_FT_RTF);
	CHECK_RC(ar_unhex(eicar_hex, eicar, sizeof eicar), 0);
	memset(iso, 0, sizeof iso);
	memcpy(iso + 0x8001, "CD001", 5);
	CHECK(gw_ftype_sniff(iso, sizeof iso) == GW_FT_ISO);
	CHECK(gw_ftype_sniff(iso, 0x8000) == GW_FT_UNKNOWN);  /* too short */
	/* EICAR is a DOS .COM program: no signature to see */
	CHECK(gw_ftype_sniff(eicar, sizeof eicar) == GW_FT_UNKNOWN);
	CHECK(gw_ftype_sniff((const unsigned char *)"Dear Bob,\n", 10) ==
	    GW_FT_UNKNOWN);
	/* a Java class (version 52) is not a Mach-O universal binary */
	CHECK(gw_ftype_sniff((const unsigned char *)"\xca\xfe\xba\xbe\0\0\0\x34",
	    8) == GW_FT_UNKNOWN);
}

static void test_names(void)
{
	char ext[16], err[256];
	uint64_t set;

	gw_attach_ext("Invoice.PDF.exe", ext, sizeof ext);
	CHECK(strcmp(ext, "exe") == 0);
	gw_attach_ext("run.exe. . ", ext, sizeof ext);   /* Windows drops them */
	CHECK(strcmp(ext, "exe") == 0);
	gw_attach_ext("dir.d/README", ext, sizeof ext);
	CHECK(ext[0] == '\0');
	CHECK(gw_attach_ext_blocked("Invoice.PDF.EXE", gw_attach_default_ext));
	CHECK(gw_attach_ext_blocked("x.js", gw_attach_default_ext));
	CHECK(!gw_attach_ext_blocked("report.pdf", gw_attach_default_ext));
	CHECK(!gw_attach_ext_blocked("exe", gw_attach_default_ext));
	CHECK(gw_attach_mismatch("report.pdf", NULL, GW_FT_PE));
	CHECK(gw_attach_mismatch(NULL, "application/pdf", GW_FT_ZIP));
	CHECK(gw_attach_mismatch("notes.txt", "text/plain", GW_FT_ELF));
	CHECK(!gw_attach_mismatch("notes.txt", "text/plain", GW_FT_UNKNOWN));
	CHECK(!gw_attach_mismatch("a.docx", NULL, GW_FT_OOXML_MACRO));
	CHECK(!gw_attach_mismatch("a.pdf", NULL, GW_FT_PDF));
	CHECK(!gw_attach_mismatch("a.tgz", NULL, GW_FT_TAR));
	CHECK_RC(gw_ftype_parse_set("pe, script,iso", &set, err, sizeof err), 0);
	CHECK(set == (GW_FT_BIT(GW_FT_PE) | GW_FT_BIT(GW_FT_SCRIPT) |
	    GW_FT_BIT(GW_FT_ISO)));
	CHECK_RC(gw_ftype_parse_set("pe,bogus", &set, err, sizeof err),
	    AR_EINVAL);
	CHECK(strstr(err, "\"bogus\"") != NULL);
	CHECK(gw_ftype_parse("ooxml-macro") == GW_FT_OOXML_MACRO);
	CHECK(strcmp(gw_ftype_name(GW_FT_OLE_MACRO), "ole-macro") == 0);
}

/* An OLE2 file: header, directory at sector 0 (offset 512) whose root
 * entry has class id clsid, and (vba) a "_VBA_PROJECT" entry. */
static unsigned char *make_ole(const unsigned char *clsid, int vba,
    size_t *len)
{
	static const char name[] = "_VBA_PROJECT";
	unsigned char *b = calloc(1, 4096);
	size_t i;

	memcpy(b, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8);
	b[0x1e] = 9;               /* 512-byte sectors */
	b[0x30] = 0;               /* first directory sector: 0 */
	memcpy(b + 512, "R\0o\0o\0t\0", 8);
	if (clsid)
		memcpy(b + 512 + 0x50, clsid, 16);
	if (vba)
		for (i = 0; i < sizeof name - 1; i++)
			b[512 + 128 + 2 * i] = (unsigned char)name[i];
	*len = 4096;
	return b;
}

static void test_ole(void)
{
	static const unsigned char msi[16] = { 0x84, 0x10, 0x0c, 0, 0, 0, 0, 0,
		0xc0, 0, 0, 0, 0, 0, 0, 0x46 };
	gw_ole_t o;
	size_t len, i;
	unsigned char *b;

	b = make_ole(NULL, 1, &len);
	gw_ole_init(&o);
	for (i = 0; i < len; i += 7)      /* fed in odd pieces */
		gw_ole_feed(&o, b + i, len - i < 7 ? len - i : 7);
	CHECK(gw_ole_type(&o) == GW_FT_OLE_MACRO);
	free(b);
	b = make_ole(msi, 0, &len);
	gw_ole_init(&o);
	gw_ole_feed(&o, b, len);
	CHECK(gw_ole_type(&o) == GW_FT_MSI);
	free(b);
	b = make_ole(NULL, 0, &len);
	gw_ole_init(&o);
	gw_ole_feed(&o, b, len);
	CHECK(gw_ole_type(&o) == GW_FT_OLE);
	free(b);
}

static void test_walk_types(void)
{
	gw_attach_result_t r;
	const gw_attach_finding_t *f;
	size_t zlen, glen, olen;
	unsigned char *zip, *gz, *ole;
	ent_t e = { "setup.exe", exe, EXE_LEN };
	GString *m;

	/* a "PDF" that is a Windows program */
	{
		att_t a = { "application/pdf", "report.pdf", exe, EXE_LEN };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, NULL, &r), 0);
		CHECK(r.status == GW_SCAN_OK);
		CHECK(r.blocked == 1);
		f = find(&r, "2");
		CHECK(f && f->real == GW_FT_PE);
		CHECK(f && (f->reasons & GW_ATT_BLOCKED_TYPE) &&
		    (f->reasons & GW_ATT_MISMATCH));
		CHECK(f && strcmp(f->filename, "report.pdf") == 0);
		CHECK(f && strcmp(f->declared, "application/pdf") == 0);
		CHECK(find(&r, "1") == NULL);       /* the text body */
		CHECK(r.parts == 3);
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
	}
	/* a program in a ZIP, the ZIP named .zip */
	zip = make_zip(&e, 1, NULL, &zlen);
	{
		att_t a = { "application/zip", "files.zip", zip, zlen };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, NULL, &r), 0);
		CHECK(r.blocked && r.archives == 1 && r.entries == 1);
		f = find(&r, "2");
		CHECK(f && f->real == GW_FT_ZIP && f->reasons == 0);
		f = find(&r, "2/setup.exe");
		CHECK(f && f->real == GW_FT_PE && f->depth == 1);
		CHECK(f && (f->reasons & GW_ATT_BLOCKED_TYPE) &&
		    (f->reasons & GW_ATT_BLOCKED_EXT));
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
	}
	/* the same program gzip'd, named .gz */
	gz = make_gz(exe, EXE_LEN, &glen);
	{
		att_t a = { "application/octet-stream", "tool.gz", gz, glen };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, NULL, &r), 0);
		CHECK(r.blocked);
		f = find(&r, "2/data");
		CHECK(f && f->real == GW_FT_PE);
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
	}
	/* blocked types are the tenant's: with none blocked, nothing is
	 * (the extension still is, unless the list is empty) */
	{
		static const char *const none[] = { NULL };
		gw_attach_limits_t lim = { .blocked_types = 0,
			.blocked_ext = none };
		att_t a = { "application/zip", "files.zip", zip, zlen };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, &lim, &r), 0);
		CHECK(r.blocked == 0);
		CHECK(find(&r, "2/setup.exe") != NULL);
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
	}
	/* a Word document with macros in a .doc, and an MSI */
	ole = make_ole(NULL, 1, &olen);
	{
		att_t a = { "application/msword", "letter.doc", ole, olen };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, NULL, &r), 0);
		f = find(&r, "2");
		CHECK(f && f->real == GW_FT_OLE_MACRO &&
		    (f->reasons & GW_ATT_MACRO));
		CHECK(r.macro == 1 && r.blocked == 1);
		CHECK(f && !(f->reasons & GW_ATT_MISMATCH));
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
	}
	free(ole);
	free(zip);
	free(gz);
	/* TAR and 7z: what the walk makes of them */
	{
		size_t tlen;
		unsigned char *t = make_arch(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED,
		    &e, 1, NULL, &tlen);
		att_t a = { "application/x-tar", "files.tar", t, tlen };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, NULL, &r), 0);
		f = find(&r, "2/setup.exe");
		CHECK(f && f->real == GW_FT_PE && r.blocked);
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
		free(t);
		t = make_arch(ARCHIVE_FORMAT_7ZIP, &e, 1, NULL, &tlen);
		a.ctype = "application/x-7z-compressed";
		a.filename = "files.7z";
		a.data = t;
		a.len = tlen;
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, NULL, &r), 0);
		f = find(&r, "2");
		CHECK(f && f->real == GW_FT_7Z);
		/* read as far as a stream allows: the entry is seen; the
		 * reader then wants to seek, which a stream cannot */
		CHECK(find(&r, "2/setup.exe") != NULL && r.blocked);
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
		free(t);
	}
}

static void test_walk_archives(void)
{
	static const char ct[] = "<?xml version=\"1.0\"?><Types/>";
	static const char doc[] = "<w:document/>";
	gw_attach_result_t r;
	const gw_attach_finding_t *f;
	size_t ilen, olen, dlen, elen, blen;
	unsigned char *inner, *outer, *docm, *enc, *big;
	GString *m;

	/* a program in a ZIP in a ZIP */
	{
		ent_t e = { "run.exe", exe, EXE_LEN };
		inner = make_zip(&e, 1, NULL, &ilen);
	}
	{
		ent_t e[2] = { { "readme.txt", "hi", 2 },
			{ "inner.zip", inner, ilen } };
		outer = make_zip(e, 2, NULL, &olen);
	}
	{
		att_t a = { "application/zip", "outer.zip", outer, olen };
		m = make_msg(&a, 1);
	}
	CHECK_RC(walk(m, NULL, &r), 0);
	CHECK(r.blocked && r.archives == 2 && r.entries == 3);
	f = find(&r, "2/inner.zip/run.exe");
	CHECK(f && f->real == GW_FT_PE && f->depth == 2);
	f = find(&r, "2/inner.zip");
	CHECK(f && f->real == GW_FT_ZIP && f->depth == 1);
	CHECK(find(&r, "2/readme.txt") != NULL);
	gw_attach_result_clear(&r);
	/* depth 1: the inner ZIP is not opened, and says so */
	{
		gw_attach_limits_t lim = { .archive_depth = 1,
			.blocked_types = GW_FT_DEFAULT_BLOCKED };
		CHECK_RC(walk(m, &lim, &r), 0);
		CHECK(r.blocked == 0 && r.incomplete == 1);
		f = find(&r, "2/inner.zip");
		CHECK(f && (f->reasons & GW_ATT_DEPTH));
		CHECK(find(&r, "2/inner.zip/run.exe") == NULL);
		gw_attach_result_clear(&r);
	}
	/* entries and bytes limits */
	{
		gw_attach_limits_t lim = { .archive_max_entries = 1,
			.blocked_types = GW_FT_DEFAULT_BLOCKED };
		CHECK_RC(walk(m, &lim, &r), 0);
		CHECK(r.incomplete == 1);
		f = find(&r, "2");
		CHECK(f && (f->reasons & GW_ATT_LIMIT));
		gw_attach_result_clear(&r);
	}
	g_string_free(m, TRUE);
	big = calloc(1, 200000);
	memcpy(big, exe, EXE_LEN);
	{
		ent_t e = { "zeros.bin", big, 200000 };
		free(outer);
		outer = make_zip(&e, 1, NULL, &blen);
		att_t a = { "application/zip", "z.zip", outer, blen };
		gw_attach_limits_t lim = { .archive_max_bytes = 10000,
			.blocked_types = GW_FT_DEFAULT_BLOCKED };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, &lim, &r), 0);
		CHECK(r.incomplete == 1);
		CHECK(r.archive_bytes <= 10000 + 65536);
		f = find(&r, "2/zeros.bin");
		CHECK(f && (f->reasons & GW_ATT_LIMIT));
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
	}
	/* an Office document with a VBA project, and one without */
	{
		ent_t e[3] = { { "[Content_Types].xml", ct, sizeof ct - 1 },
			{ "word/document.xml", doc, sizeof doc - 1 },
			{ "word/vbaProject.bin", "\xd0\xcf\x11\xe0", 4 } };
		docm = make_zip(e, 3, NULL, &dlen);
		att_t a = { "application/vnd.openxmlformats-officedocument."
		    "wordprocessingml.document", "offer.docx", docm, dlen };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, NULL, &r), 0);
		f = find(&r, "2");
		CHECK(f && f->real == GW_FT_OOXML_MACRO);
		CHECK(f && (f->reasons & GW_ATT_MACRO) &&
		    (f->reasons & GW_ATT_BLOCKED_TYPE));
		CHECK(r.macro && r.blocked);
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
		free(docm);
		docm = make_zip(e, 2, NULL, &dlen);
		a.data = docm;
		a.len = dlen;
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, NULL, &r), 0);
		f = find(&r, "2");
		CHECK(f && f->real == GW_FT_OOXML && f->reasons == 0);
		CHECK(!r.macro && !r.blocked);
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
		free(docm);
	}
	/* an encrypted ZIP */
	{
		ent_t e = { "secret.txt", "hello", 5 };
		enc = make_zip(&e, 1, "pw", &elen);
		CHECK(enc != NULL);
		if (enc) {
			att_t a = { "application/zip", "locked.zip", enc, elen };
			m = make_msg(&a, 1);
			CHECK_RC(walk(m, NULL, &r), 0);
			CHECK(r.encrypted == 1);
			f = find(&r, "2");
			CHECK(f && (f->reasons & GW_ATT_ENCRYPTED));
			CHECK(r.blocked == 0);
			gw_attach_result_clear(&r);
			g_string_free(m, TRUE);
			free(enc);
		}
	}
	/* a damaged ZIP: the first half of one */
	{
		att_t a = { "application/zip", "cut.zip", inner, ilen / 2 };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, NULL, &r), 0);
		CHECK(r.status == GW_SCAN_OK && r.incomplete == 1);
		f = find(&r, "2");
		CHECK(f && (f->reasons & GW_ATT_DAMAGED));
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
	}
	free(big);
	free(inner);
	free(outer);
}

static void test_walk_rfc822_and_limits(void)
{
	gw_attach_result_t r;
	const gw_attach_finding_t *f;
	unsigned char *zip;
	size_t zlen, i;
	GString *m, *inner;
	ent_t e = { "setup.exe", exe, EXE_LEN };
	ent_t many[10];
	char names[10][16];

	/* a forwarded message (message/rfc822) carrying a ZIP: numbered
	 * 2.1 (its text), 2.2 (its attachment) as IMAP does */
	zip = make_zip(&e, 1, NULL, &zlen);
	{
		att_t a = { "application/zip", "fwd.zip", zip, zlen };
		inner = make_msg(&a, 1);
	}
	m = g_string_new("From: c@example.com\r\nTo: d@example.com\r\n"
	    "Subject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed;"
	    " boundary=\"OUT\"\r\n\r\n--OUT\r\nContent-Type: text/plain\r\n\r\n"
	    "see below\r\n--OUT\r\nContent-Type: message/rfc822\r\n\r\n");
	g_string_append_len(m, inner->str, (gssize)inner->len);
	g_string_append(m, "\r\n--OUT--\r\n");
	CHECK_RC(walk(m, NULL, &r), 0);
	CHECK(r.blocked == 1);
	f = find(&r, "2.2/setup.exe");
	CHECK(f && f->real == GW_FT_PE && f->depth == 1);
	CHECK(find(&r, "2.2") != NULL);
	gw_attach_result_clear(&r);
	/* the tenant's size limit: not walked, said so */
	{
		gw_attach_limits_t lim = { .max_message_bytes = 100 };
		CHECK_RC(walk(m, &lim, &r), 0);
		CHECK(r.status == GW_SCAN_TOO_LARGE && r.too_large == 1);
		CHECK(r.nfindings == 0);
		gw_attach_result_clear(&r);
	}
	g_string_free(m, TRUE);
	g_string_free(inner, TRUE);
	free(zip);
	/* findings are capped; flagged ones past the cap still listed */
	for (i = 0; i < 10; i++) {
		snprintf(names[i], sizeof names[i], "f%zu.%s", i,
		    i == 9 ? "exe" : "txt");
		many[i].name = names[i];
		many[i].data = i == 9 ? (const void *)exe : "text";
		many[i].len = i == 9 ? EXE_LEN : 4;
	}
	zip = make_zip(many, 10, NULL, &zlen);
	{
		att_t a = { "application/zip", "many.zip", zip, zlen };
		gw_attach_limits_t lim = { .max_findings = 3,
			.blocked_types = GW_FT_DEFAULT_BLOCKED };
		m = make_msg(&a, 1);
		CHECK_RC(walk(m, &lim, &r), 0);
		CHECK(r.truncated == 1 && r.entries == 10);
		CHECK(r.nfindings == 4);
		CHECK(find(&r, "2/f9.exe") != NULL);
		CHECK(r.blocked == 1);
		gw_attach_result_clear(&r);
		g_string_free(m, TRUE);
	}
	free(zip);
	/* not MIME at all: one text part, nothing listed */
	m = g_string_new("Subject: plain\r\n\r\njust text\r\n");
	CHECK_RC(walk(m, NULL, &r), 0);
	CHECK(r.status == GW_SCAN_OK && r.nfindings == 0 && r.parts == 1);
	gw_attach_result_clear(&r);
	g_string_free(m, TRUE);
}

static void test_rspamd_parse(void)
{
	static const char good[] = "{\"is_skipped\":false,\"score\":7.5,"
	    "\"required_score\":15.0,\"action\":\"add header\",\"symbols\":{"
	    "\"R_SPF_FAIL\":{\"name\":\"R_SPF_FAIL\",\"score\":1.0,"
	    "\"options\":[\"-all\"]},\"MISSING_MID\":{\"score\":2.5}},"
	    "\"messages\":{\"smtp_message\":\"go away\"},"
	    "\"dkim-signature\":\"v=1; a=rsa-sha256\"}";
	static const char *const badones[] = {
		"",                                    /* empty */
		"{\"action\":\"reject\",\"score\":1,",  /* cut short */
		"<html>502 Bad Gateway</html>",        /* not JSON */
		"[1,2]",                               /* not an object */
		"{\"score\":1,\"required_score\":2,\"symbols\":{}}",
		"{\"action\":\"reject\",\"required_score\":2,\"symbols\":{}}",
		"{\"action\":\"reject\",\"score\":\"1\",\"required_score\":2,"
		    "\"symbols\":{}}",
		"{\"action\":\"reject\",\"score\":1,\"required_score\":2}",
		"{\"action\":\"reject\",\"score\":1,\"required_score\":2,"
		    "\"symbols\":{\"X\":{\"options\":[]}}}",
		"{\"action\":\"reject\",\"score\":1,\"required_score\":2,"
		    "\"symbols\":{\"X\":{\"score\":1,\"options\":[1]}}}",
		"{\"error\":\"Message is too big\"}",
	};
	gw_rspamd_result_t r;
	const gw_rspamd_symbol_t *s;
	size_t i;

	memset(&r, 0, sizeof r);
	CHECK_RC(gw_rspamd_parse(good, sizeof good - 1, &r), 0);
	CHECK(r.status == GW_SCAN_OK && r.action == GW_RSPAMD_ADD_HEADER);
	CHECK(r.score == 7.5 && r.required_score == 15.0);
	CHECK(r.nsymbols == 2);
	s = gw_rspamd_symbol(&r, "R_SPF_FAIL");
	CHECK(s && s->score == 1.0 && s->noptions == 1 &&
	    strcmp(s->options[0], "-all") == 0);
	CHECK(gw_rspamd_symbol(&r, "NOPE") == NULL);
	CHECK(r.smtp_message && strcmp(r.smtp_message, "go away") == 0);
	CHECK(r.dkim_signature && strncmp(r.dkim_signature, "v=1", 3) == 0);
	gw_rspamd_result_clear(&r);
	for (i = 0; i < AR_ARRAY_LEN(badones); i++) {
		memset(&r, 0, sizeof r);
		CHECK_RC(gw_rspamd_parse(badones[i], strlen(badones[i]), &r),
		    AR_EPROTO);
		CHECK(r.status == GW_SCAN_FAILED && r.errmsg[0]);
		if (r.status != GW_SCAN_FAILED || !r.errmsg[0])
			fprintf(stderr, "  bad reply %zu accepted\n", i);
		gw_rspamd_result_clear(&r);
	}
	memset(&r, 0, sizeof r);
	gw_rspamd_parse(badones[10], strlen(badones[10]), &r);
	CHECK(strstr(r.errmsg, "Message is too big") != NULL);
	gw_rspamd_result_clear(&r);
}

static void test_json(void)
{
	gw_scan_result_t res;
	json_t *j, *f;
	char *s;

	memset(&res, 0, sizeof res);
	res.nav = 1;
	res.av[0].engine = "clamd";
	res.av[0].status = GW_SCAN_OK;
	res.av[0].infected = 1;
	res.av[0].nviruses = 1;
	res.av[0].viruses[0] = strdup("Archived.Test.EICAR");
	res.rspamd.status = GW_SCAN_TIMEOUT;
	snprintf(res.rspamd.errmsg, sizeof res.rspamd.errmsg, "rspamd: slow");
	res.attach.status = GW_SCAN_OK;
	res.attach.blocked = 1;
	res.attach.nfindings = 1;
	res.attach.findings = calloc(1, sizeof *res.attach.findings);
	res.attach.findings[0].path = strdup("2/a \"b\".exe");
	res.attach.findings[0].real = GW_FT_PE;
	res.attach.findings[0].reasons = GW_ATT_BLOCKED_TYPE | GW_ATT_MISMATCH;
	res.infected = 1;
	s = gw_scan_result_json(&res);
	CHECK(s != NULL);
	j = s ? json_loads(s, 0, NULL) : NULL;
	CHECK(j != NULL);
	if (j) {
		json_t *av0 = json_array_get(json_object_get(j, "av"), 0);
		CHECK(strcmp(json_string_value(json_object_get(av0, "status")),
		    "ok") == 0);
		CHECK(strcmp(json_string_value(json_array_get(
		    json_object_get(av0, "viruses"), 0)),
		    "Archived.Test.EICAR") == 0);
		CHECK(strcmp(json_string_value(json_object_get(
		    json_object_get(j, "rspamd"), "status")), "timeout") == 0);
		f = json_array_get(json_object_get(json_object_get(j, "attach"),
		    "findings"), 0);
		CHECK(strcmp(json_string_value(json_object_get(f, "path")),
		    "2/a \"b\".exe") == 0);
		CHECK(strcmp(json_string_value(json_object_get(f, "type")),
		    "pe") == 0);
		CHECK(json_array_size(json_object_get(f, "reasons")) == 2);
		json_decref(j);
	}
	free(s);
	gw_scan_result_free(&res);
}

int main(void)
{
	g_mime_init();
	ar_log_set_level(AR_LOG_WARN);
	test_sniff();
	test_names();
	test_ole();
	test_walk_types();
	test_walk_archives();
	test_walk_rfc822_and_limits();
	test_rspamd_parse();
	test_json();
	g_mime_shutdown();
	return tl_done();
}
