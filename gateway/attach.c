/*
 * attach.c - the attachment policy walk: every MIME part of a message
 * (message/rfc822 parts included), its real type from its decoded first
 * bytes, archives opened with libarchive as streams (nested ones to
 * limits.archive_depth, uncompressed bytes and entries bounded), encrypted
 * entries flagged, Office documents checked for macros.
 *
 * Memory: GMime parses the seekable stream with persist-stream on, so a
 * part's content is a substream of the message, never a copy; a part is
 * decoded as it is read (base64/quoted-printable filter); an archive is
 * read through libarchive's callbacks from that decoded stream, a nested
 * one from its parent's entry data.  What is held: the MIME structure,
 * a 36 KiB sniff buffer and a 64 KiB read buffer per open level.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <archive.h>
#include <archive_entry.h>
#include <gmime/gmime.h>

#include "ar.h"
#include "gateway/scan.h"
#include "mime/mime.h"

#define SNIFF_LEN (36 * 1024)   /* ISO 9660's descriptor is at 32 KiB */
#define ARCH_BUF  (64 * 1024)
#define MIME_DEPTH 32           /* nested multiparts/messages walked */

typedef struct walk {
	const gw_attach_limits_t *lim;
	gw_attach_result_t *res;
	size_t cap;                     /* findings allocated */
	int depth_max;
	uint64_t bytes_max;
	unsigned entries_max, parts_max, list_max;
	const char *const *ext;
	int nomem;
} walk_t;

/* A pull reader: a decoded MIME part, or an archive entry's data. */
typedef struct rd rd_t;
struct rd {
	ssize_t (*pull)(rd_t *r, void *buf, size_t len);  /* -1: error */
	void *arg;
	rd_t *under;                    /* replay: the reader sniffed */
	const unsigned char *pre;       /* replay: bytes already read */
	size_t prelen, prepos;
	uint64_t total;                 /* bytes returned */
	walk_t *w;
	int counts;                     /* an archive entry: counts into
	                                   archive_bytes */
	int limit;                      /* stopped at archive_max_bytes */
	int err;                        /* the pull failed */
};

static ssize_t rd_read(rd_t *r, void *buf, size_t len)
{
	ssize_t n;

	if (r->limit || r->err)
		return -1;
	n = r->pull(r, buf, len);
	if (n < 0) {
		r->err = 1;
		return -1;
	}
	r->total += (uint64_t)n;
	if (r->counts && n > 0) {
		r->w->res->archive_bytes += (uint64_t)n;
		if (r->w->res->archive_bytes > r->w->bytes_max) {
			r->limit = 1;
			return -1;
		}
	}
	return n;
}

/* A reader that gives the sniffed bytes again, then the rest. */
static ssize_t replay_pull(rd_t *r, void *buf, size_t len)
{
	if (r->prepos < r->prelen) {
		size_t n = r->prelen - r->prepos;
		if (n > len)
			n = len;
		memcpy(buf, r->pre + r->prepos, n);
		r->prepos += n;
		return (ssize_t)n;
	}
	return rd_read(r->under, buf, len);
}

static ssize_t gstream_pull(rd_t *r, void *buf, size_t len)
{
	return g_mime_stream_read(r->arg, buf, len);
}

static ssize_t entry_pull(rd_t *r, void *buf, size_t len)
{
	la_ssize_t n = archive_read_data(r->arg, buf, len);

	return n < 0 ? -1 : (ssize_t)n;
}

/* --- findings ------------------------------------------------------------- */

/* Printable text for names that came from a message or an archive. */
static char *clean_dup(const char *s)
{
	size_t n, i;
	char *out;

	if (!s)
		return NULL;
	n = strnlen(s, 1024);
	if (!(out = malloc(n + 1)))
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[n] = '\0';
	return out;
}

/* A new finding (index), or -1 when the list is full for it. */
static long finding_add(walk_t *w, const char *path, const char *name,
    const char *declared, int flagged)
{
	gw_attach_result_t *res = w->res;
	gw_attach_finding_t *f;

	if (res->nfindings >= (flagged ? 2 * w->list_max : w->list_max)) {
		res->truncated = 1;
		return -1;
	}
	if (ar_grow((void **)&res->findings, &w->cap, res->nfindings,
	    sizeof *res->findings)) {
		w->nomem = 1;
		return -1;
	}
	f = &res->findings[res->nfindings];
	memset(f, 0, sizeof *f);
	f->path = clean_dup(path);
	f->filename = clean_dup(name);
	f->declared = clean_dup(declared);
	if (!f->path || (name && !f->filename) || (declared && !f->declared)) {
		free(f->path);
		free(f->filename);
		free(f->declared);
		w->nomem = 1;
		return -1;
	}
	return (long)res->nfindings++;
}

static int is_archive(gw_ftype_t t)
{
	return t == GW_FT_ZIP || t == GW_FT_RAR || t == GW_FT_7Z ||
	    t == GW_FT_GZIP || t == GW_FT_BZIP2 || t == GW_FT_XZ ||
	    t == GW_FT_CAB || t == GW_FT_TAR;
}

/* --- archives ---------------------------------------------------------------- */

typedef struct arch_ctx {
	rd_t *rd;
	unsigned char *buf;
} arch_ctx_t;

static la_ssize_t arch_read(struct archive *a, void *arg, const void **out)
{
	arch_ctx_t *c = arg;
	ssize_t n = rd_read(c->rd, c->buf, ARCH_BUF);

	*out = c->buf;
	if (n < 0) {
		archive_set_error(a, EIO, "%s", c->rd->limit ?
		    "archive byte limit reached" : "reading the part failed");
		return -1;
	}
	return n;
}

static int inspect(walk_t *w, rd_t *rd, const char *path, const char *name,
    const char *declared, int depth, int list, gw_ftype_t *type_out,
    uint32_t *reasons_out);

/* Base name of an archive path ("word/vbaProject.bin" -> "vbaProject.bin"). */
static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/*
 * Walk the archive read from rd (whose type is *type), at nesting depth
 * (1: an attachment's archive).  Refines *type (OOXML, JAR ...), adds
 * reasons (ENCRYPTED, DAMAGED, LIMIT, MACRO).
 */
static void walk_archive(walk_t *w, rd_t *rd, const char *path, int depth,
    gw_ftype_t *type, uint32_t *reasons)
{
	struct archive *a;
	struct archive_entry *e;
	arch_ctx_t ctx = { rd, NULL };
	int ooxml = 0, vba = 0, jar = 0, odf = 0, enc = 0, first = 1, r;
	char *epath = NULL;
	size_t plen = strlen(path);

	if (!(a = archive_read_new()) || !(ctx.buf = malloc(ARCH_BUF))) {
		w->nomem = 1;
		goto out;
	}
	archive_read_support_filter_all(a);
	if (*type == GW_FT_GZIP || *type == GW_FT_BZIP2 || *type == GW_FT_XZ) {
		/* a compressed tar, or one compressed file ("raw") */
		archive_read_support_format_tar(a);
		archive_read_support_format_raw(a);
	} else {
		archive_read_support_format_zip_streamable(a);
		archive_read_support_format_rar(a);
		archive_read_support_format_rar5(a);
		archive_read_support_format_7zip(a);
		archive_read_support_format_cab(a);
		archive_read_support_format_tar(a);
	}
	w->res->archives++;
	if (archive_read_open(a, &ctx, NULL, arch_read, NULL) != ARCHIVE_OK) {
		*reasons |= rd->limit ? GW_ATT_LIMIT : GW_ATT_DAMAGED;
		goto out;
	}
	for (;;) {
		const char *ename;
		size_t elen;
		rd_t erd;
		gw_ftype_t et;
		uint32_t er;

		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			if (rd->limit)
				*reasons |= GW_ATT_LIMIT;
			else if (!enc)
				*reasons |= GW_ATT_DAMAGED;
			break;
		}
		if (++w->res->entries > w->entries_max) {
			*reasons |= GW_ATT_LIMIT;
			break;
		}
		ename = archive_entry_pathname_utf8(e);
		if (!ename)
			ename = archive_entry_pathname(e);
		if (!ename)
			ename = "?";
		if (strcmp(ename, "[Content_Types].xml") == 0)
			ooxml = 1;
		if (strcmp(base_name(ename), "vbaProject.bin") == 0)
			vba = 1;
		if (strcmp(ename, "META-INF/MANIFEST.MF") == 0)
			jar = 1;
		if (first && strcmp(ename, "mimetype") == 0)
			odf = 1;
		first = 0;
		elen = plen + 1 + strlen(ename) + 1;
		free(epath);
		if (!(epath = malloc(elen))) {
			w->nomem = 1;
			break;
		}
		snprintf(epath, elen, "%s/%s", path, ename);
		if (archive_entry_is_encrypted(e)) {
			long i;
			enc = 1;
			i = finding_add(w, epath, ename, NULL, 1);
			if (i >= 0) {
				w->res->findings[i].reasons = GW_ATT_ENCRYPTED;
				w->res->findings[i].depth = depth;
				w->res->findings[i].size =
				    (uint64_t)archive_entry_size(e);
			}
			continue;     /* its data cannot be read */
		}
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		memset(&erd, 0, sizeof erd);
		erd.pull = entry_pull;
		erd.arg = a;
		erd.w = w;
		erd.counts = 1;
		if (inspect(w, &erd, epath, ename, NULL, depth, 1, &et, &er))
			break;
		if (er & GW_ATT_MACRO)
			*reasons |= GW_ATT_MACRO;
		if (erd.limit || rd->limit) {
			*reasons |= GW_ATT_LIMIT;
			break;
		}
		if (erd.err && !rd->err) {
			/* the entry's data did not read: a damaged or an
			 * unsupported (encrypted) entry */
			const char *msg = archive_error_string(a);
			if (msg && strstr(msg, "ncrypt"))
				enc = 1;
			else
				*reasons |= GW_ATT_DAMAGED;
			break;
		}
	}
	if (archive_read_has_encrypted_entries(a) > 0)
		enc = 1;
out:
	if (enc)
		*reasons |= GW_ATT_ENCRYPTED;
	if (*type == GW_FT_ZIP) {
		if (ooxml)
			*type = vba ? GW_FT_OOXML_MACRO : GW_FT_OOXML;
		else if (jar)
			*type = GW_FT_JAR;
		else if (odf)
			*type = GW_FT_ODF;
		if (ooxml && vba)
			*reasons |= GW_ATT_MACRO;
	}
	free(epath);
	free(ctx.buf);
	if (a)
		archive_read_free(a);
}

/*
 * Look at one content: sniff its type, open it if it is an archive, read
 * an OLE file through for its class id and macros, and record a finding
 * when list is set or something is wrong.  0, or AR_ENOMEM.
 */
static int inspect(walk_t *w, rd_t *rd, const char *path, const char *name,
    const char *declared, int depth, int list, gw_ftype_t *type_out,
    uint32_t *reasons_out)
{
	gw_attach_result_t *res = w->res;
	unsigned char *buf;
	size_t n = 0;
	gw_ftype_t t;
	uint32_t reasons = 0;
	long idx = -1;
	ssize_t k;

	*type_out = GW_FT_UNKNOWN;
	*reasons_out = 0;
	if (!(buf = malloc(SNIFF_LEN))) {
		w->nomem = 1;
		return AR_ENOMEM;
	}
	while (n < SNIFF_LEN && (k = rd_read(rd, buf + n, SNIFF_LEN - n)) > 0)
		n += (size_t)k;
	t = gw_ftype_sniff(buf, n);
	if (list || is_archive(t))
		idx = finding_add(w, path, name, declared, 0);
	if (is_archive(t) && !rd->limit && !rd->err) {
		if (depth >= w->depth_max) {
			reasons |= GW_ATT_DEPTH;
		} else {
			rd_t replay;
			memset(&replay, 0, sizeof replay);
			replay.pull = replay_pull;
			replay.under = rd;
			replay.pre = buf;
			replay.prelen = n;
			replay.w = w;
			walk_archive(w, &replay, path, depth + 1, &t, &reasons);
		}
	} else if (t == GW_FT_OLE) {
		gw_ole_t o;
		unsigned char *more = malloc(ARCH_BUF);
		gw_ole_init(&o);
		gw_ole_feed(&o, buf, n);
		if (!more) {
			w->nomem = 1;
		} else {
			while ((k = rd_read(rd, more, ARCH_BUF)) > 0)
				gw_ole_feed(&o, more, (size_t)k);
			free(more);
		}
		t = gw_ole_type(&o);
		if (o.macro)
			reasons |= GW_ATT_MACRO;
	}
	free(buf);
	if (rd->limit)
		reasons |= GW_ATT_LIMIT;
	if (w->lim->blocked_types & GW_FT_BIT(t))
		reasons |= GW_ATT_BLOCKED_TYPE;
	if (name && gw_attach_ext_blocked(name, w->ext))
		reasons |= GW_ATT_BLOCKED_EXT;
	if (gw_attach_mismatch(name, declared, t))
		reasons |= GW_ATT_MISMATCH;
	if (reasons && idx < 0)
		idx = finding_add(w, path, name, declared, 1);
	if (idx >= 0) {
		gw_attach_finding_t *f = &res->findings[idx];
		f->real = t;
		f->reasons = reasons;
		f->depth = depth;
		f->size = rd->total;
	}
	if (reasons & (GW_ATT_BLOCKED_TYPE | GW_ATT_BLOCKED_EXT))
		res->blocked = 1;
	if (reasons & GW_ATT_ENCRYPTED)
		res->encrypted = 1;
	if (reasons & GW_ATT_MACRO)
		res->macro = 1;
	if (reasons & (GW_ATT_DEPTH | GW_ATT_LIMIT | GW_ATT_DAMAGED))
		res->incomplete = 1;
	*type_out = t;
	*reasons_out = reasons;
	return w->nomem ? AR_ENOMEM : 0;
}

/* --- the MIME tree -------------------------------------------------------- */

static void walk_entity(walk_t *w, GMimeObject *obj, const char *path,
    int level, int root);

static void walk_leaf(walk_t *w, GMimePart *part, const char *path)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	GMimeContentDisposition *cd = g_mime_object_get_content_disposition(obj);
	const char *filename = g_mime_part_get_filename(part);
	char *mtype = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
	GMimeStream *fs;
	gw_ftype_t t;
	uint32_t reasons;
	int list;
	rd_t rd;

	list = filename != NULL ||
	    (cd && g_mime_content_disposition_is_attachment(cd)) ||
	    (ct && !g_mime_content_type_is_type(ct, "text", "*"));
	if (!(fs = mime_part_stream(part))) {
		g_free(mtype);
		return;
	}
	memset(&rd, 0, sizeof rd);
	rd.pull = gstream_pull;
	rd.arg = fs;
	rd.w = w;
	inspect(w, &rd, path, filename, mtype, 0, list, &t, &reasons);
	if (rd.err && !w->res->source_rc) {
		w->res->source_rc = AR_EIO;
		snprintf(w->res->errmsg, sizeof w->res->errmsg,
		    "attachments: reading part %.200s failed", path);
	}
	g_object_unref(fs);
	g_free(mtype);
}

static void child_path(char *out, size_t len, const char *path, int i)
{
	if (path[0])
		snprintf(out, len, "%s.%d", path, i);
	else
		snprintf(out, len, "%d", i);
}

static void walk_entity(walk_t *w, GMimeObject *obj, const char *path,
    int level, int root)
{
	char sub[256];

	if (w->nomem || !obj)
		return;
	if (level > MIME_DEPTH || w->res->parts >= w->parts_max) {
		w->res->incomplete = 1;
		return;
	}
	w->res->parts++;
	if (GMIME_IS_MULTIPART(obj)) {
		int i, n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
		for (i = 0; i < n; i++) {
			child_path(sub, sizeof sub, path, i + 1);
			walk_entity(w, g_mime_multipart_get_part(
			    GMIME_MULTIPART(obj), i), sub, level + 1, 0);
		}
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(obj));
		if (m)
			walk_entity(w, g_mime_message_get_mime_part(m), path,
			    level + 1, 1);
	} else if (GMIME_IS_PART(obj)) {
		if (root)
			child_path(sub, sizeof sub, path, 1);
		else
			ar_strlcpy(sub, path, sizeof sub);
		walk_leaf(w, GMIME_PART(obj), sub);
	}
}

void gw_attach_result_clear(gw_attach_result_t *res)
{
	size_t i;

	if (!res)
		return;
	for (i = 0; i < res->nfindings; i++) {
		free(res->findings[i].path);
		free(res->findings[i].filename);
		free(res->findings[i].declared);
	}
	free(res->findings);
	memset(res, 0, sizeof *res);
}

int gw_attach_walk(GMimeStream *stream, uint64_t size,
    const gw_attach_limits_t *limits, gw_attach_result_t *res)
{
	static const gw_attach_limits_t defaults = {
		.blocked_types = GW_FT_DEFAULT_BLOCKED,
	};
	int64_t t0 = ar_mono_us();
	GMimeParser *parser;
	GMimeMessage *msg;
	walk_t w;

	memset(res, 0, sizeof *res);
	memset(&w, 0, sizeof w);
	w.lim = limits ? limits : &defaults;
	w.res = res;
	w.depth_max = w.lim->archive_depth == 0 ? 3 :
	    w.lim->archive_depth < 0 ? 0 : w.lim->archive_depth;
	w.bytes_max = w.lim->archive_max_bytes ? w.lim->archive_max_bytes :
	    256u << 20;
	w.entries_max = w.lim->archive_max_entries ?
	    w.lim->archive_max_entries : 10000;
	w.parts_max = w.lim->max_parts ? w.lim->max_parts : 1000;
	w.list_max = w.lim->max_findings ? w.lim->max_findings : 256;
	w.ext = w.lim->blocked_ext ? w.lim->blocked_ext : gw_attach_default_ext;
	if (w.lim->max_message_bytes && size > w.lim->max_message_bytes) {
		res->too_large = 1;
		res->status = GW_SCAN_TOO_LARGE;
		snprintf(res->errmsg, sizeof res->errmsg,
		    "attachments: message of %llu bytes is over the limit of "
		    "%llu: not walked", (unsigned long long)size,
		    (unsigned long long)w.lim->max_message_bytes);
		goto out;
	}
	if (!stream) {
		res->status = GW_SCAN_NOT_RUN;
		goto out;
	}
	g_mime_stream_reset(stream);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_persist_stream(parser, TRUE);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	if (!msg) {
		res->status = GW_SCAN_FAILED;
		snprintf(res->errmsg, sizeof res->errmsg,
		    "attachments: the message does not parse");
		goto out;
	}
	walk_entity(&w, g_mime_message_get_mime_part(msg), "", 0, 1);
	g_object_unref(msg);
	if (w.nomem) {
		gw_attach_result_clear(res);
		return AR_ENOMEM;
	}
	res->status = res->source_rc ? GW_SCAN_FAILED : GW_SCAN_OK;
out:
	res->dur_us = ar_mono_us() - t0;
	return 0;
}
