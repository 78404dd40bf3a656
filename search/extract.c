/*
 * extract.c - what is indexed of a GMimeMessage (search_doc_extract).
 *
 * All GMime objects are the caller's (the message) or released here in
 * the function that made them; the document owns only plain strings.
 */
#include "search/search_priv.h"

#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "ar.h"
#include "mime/mime.h"

#define X_DEPTH_MAX 32          /* nested multiparts / messages */

typedef struct strv {
	char **v;
	size_t n, cap;
} strv_t;

typedef struct xdoc {
	search_doc_t doc;           /* first: search_doc_free casts back */
	int magic;
	strv_t to, cc, bcc, files;
	sbuf_t body;
	char *from, *subject;
	size_t body_max;
	int oom;
} xdoc_t;

#define X_MAGIC 0x5844

static void sv_add(xdoc_t *x, strv_t *s, const char *str)
{
	if (!str || !*str)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		char **v = realloc(s->v, cap * sizeof *v);
		if (!v) {
			x->oom = 1;
			return;
		}
		s->v = v;
		s->cap = cap;
	}
	if (!(s->v[s->n] = strdup(str)))
		x->oom = 1;
	else
		s->n++;
}

static void sv_free(strv_t *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static void addresses(xdoc_t *x, strv_t *out, InternetAddressList *l,
    int depth)
{
	if (!l || depth > 4)
		return;
	int n = internet_address_list_length(l);
	for (int i = 0; i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(l, i);
		if (INTERNET_ADDRESS_IS_GROUP(a)) {
			addresses(x, out, internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(a)), depth + 1);
			continue;
		}
		/* "Name <addr>" with the bare address: GMime's own string
		 * quotes a local part such as a..price ("a..price"@dom), which
		 * would hide the address from the address tokens */
		const char *name = internet_address_get_name(a);
		const char *addr = INTERNET_ADDRESS_IS_MAILBOX(a) ?
		    internet_address_mailbox_get_addr(
		    INTERNET_ADDRESS_MAILBOX(a)) : NULL;
		char *s, *bare = g_strdup(addr ? addr : ""), *w = bare;
		for (const char *r = bare; *r; r++)   /* unquote the local part */
			if (*r != '"')
				*w++ = *r;
		*w = 0;
		if (!*bare)
			s = internet_address_to_string(a, NULL, FALSE);
		else if (name && *name)
			s = g_strdup_printf("%s <%s>", name, bare);
		else
			s = g_strdup(bare);
		g_free(bare);
		sv_add(x, out, s);
		g_free(s);
	}
}

static void body_add(xdoc_t *x, const char *s, size_t n)
{
	if (x->body.len >= x->body_max)
		return;
	if (n > x->body_max - x->body.len) {
		n = x->body_max - x->body.len;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	if (x->body.len)
		sb_add(&x->body, "\n", 1);
	sb_add(&x->body, s, n);
	if (x->body.oom)
		x->oom = 1;
}

#define X_READ 16384             /* decoded text read at a time */

/* Decoded, UTF-8 text of a part (g_free), at most about max bytes: read
 * through the decoding filters only as far as the index takes, so a text
 * attachment of 100 MB costs max, not 100 MB (the parser's stream over
 * the sealed object holds none of it). */
static char *part_text(GMimePart *part, size_t max, size_t *len)
{
	const char *cs = g_mime_object_get_content_type_parameter(
	    GMIME_OBJECT(part), "charset");
	GMimeStream *filt;
	GByteArray *arr;
	char buf[X_READ], *out;

	if (!(filt = mime_part_stream(part)))
		return NULL;
	if (cs && g_ascii_strcasecmp(cs, "utf-8") != 0 &&
	    g_ascii_strcasecmp(cs, "us-ascii") != 0) {
		GMimeFilter *f = g_mime_filter_charset_new(cs, "utf-8");
		if (f) {
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(filt), f);
			g_object_unref(f);
		}
	}
	arr = g_byte_array_new();
	while (arr->len < max) {
		ssize_t r = g_mime_stream_read(filt, buf, sizeof buf);
		if (r <= 0)
			break;
		g_byte_array_append(arr, (const guint8 *)buf, (guint)r);
	}
	g_object_unref(filt);
	size_t n = arr->len < max ? arr->len : max;
	const char *data = (const char *)arr->data;
	if (n == 0 || !data) {
		g_byte_array_unref(arr);
		*len = 0;
		return g_strdup("");
	}
	if (!g_utf8_validate(data, (gssize)n, NULL) && !cs) {
		gsize w = 0;
		out = g_convert(data, (gssize)n, "utf-8", "windows-1252", NULL,
		    &w, NULL);
		if (out)
			*len = w;
	} else {
		out = NULL;
	}
	if (!out) {
		out = g_utf8_make_valid(data, (gssize)n);
		*len = strlen(out);
	}
	g_byte_array_unref(arr);
	return out;
}

static void walk(xdoc_t *x, GMimeObject *obj, int depth);

static void nested(xdoc_t *x, GMimeMessage *m, int depth)
{
	strv_t tmp = { 0 };
	const char *subj = g_mime_message_get_subject(m);
	addresses(x, &tmp, g_mime_message_get_from(m), 0);
	addresses(x, &tmp, g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_TO),
	    0);
	addresses(x, &tmp, g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_CC),
	    0);
	for (size_t i = 0; i < tmp.n; i++)
		body_add(x, tmp.v[i], strlen(tmp.v[i]));
	sv_free(&tmp);
	if (subj)
		body_add(x, subj, strlen(subj));
	walk(x, g_mime_message_get_mime_part(m), depth + 1);
}

static void walk(xdoc_t *x, GMimeObject *obj, int depth)
{
	if (!obj || depth > X_DEPTH_MAX || x->oom)
		return;
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(obj));
		if (m)
			nested(x, m, depth);
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++)
			walk(x, g_mime_multipart_get_part(mp, i), depth + 1);
		return;
	}
	if (!GMIME_IS_PART(obj))
		return;
	GMimePart *part = GMIME_PART(obj);
	const char *fname = g_mime_part_get_filename(part);
	GMimeContentDisposition *disp = g_mime_object_get_content_disposition(obj);
	int attach = (fname && *fname) || (disp &&
	    g_mime_content_disposition_is_attachment(disp));
	if (attach)
		x->doc.has_attachment = 1;
	sv_add(x, &x->files, fname);
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	if (!ct || !g_mime_content_type_is_type(ct, "text", "*"))
		return;
	size_t len = 0;
	char *t = part_text(part, x->body_max, &len);
	if (!t)
		return;
	if (g_mime_content_type_is_type(ct, "text", "html")) {
		char *plain = NULL;
		if (search_html_to_text(t, len, &plain) == 0) {
			body_add(x, plain, strlen(plain));
			free(plain);
		} else {
			x->oom = 1;
		}
	} else {
		body_add(x, t, len);
	}
	g_free(t);
}

/* The addresses of header name; when GMime could not parse any (e.g.
 * "a..price@example.com", which old archives are full of), the decoded
 * header text itself, so that its words and address still count. */
static void header_addresses(xdoc_t *x, strv_t *out, GMimeMessage *msg,
    InternetAddressList *l, const char *name)
{
	size_t before = out->n;
	addresses(x, out, l, 0);
	if (out->n > before)
		return;
	const char *raw = g_mime_object_get_header(GMIME_OBJECT(msg), name);
	if (!raw)
		return;
	char *dec = g_mime_utils_header_decode_text(NULL, raw);
	char *t = dec ? g_strstrip(dec) : NULL;
	if (t && *t)
		sv_add(x, out, t);
	g_free(dec);
}

int search_doc_extract(GMimeMessage *msg, size_t body_max,
    search_doc_t **out)
{
	xdoc_t *x;
	strv_t from = { 0 };

	*out = NULL;
	if (!msg)
		return AR_EINVAL;
	if (!(x = calloc(1, sizeof *x)))
		return AR_ENOMEM;
	x->magic = X_MAGIC;
	x->body_max = body_max ? body_max : 4u << 20;
	header_addresses(x, &from, msg, g_mime_message_get_from(msg), "From");
	if (from.n) {
		sbuf_t b = { 0 };
		for (size_t i = 0; i < from.n; i++) {
			if (i)
				sb_puts(&b, ", ");
			sb_puts(&b, from.v[i]);
		}
		x->from = b.p;
		x->oom |= b.oom;
	}
	sv_free(&from);
	header_addresses(x, &x->to, msg, g_mime_message_get_addresses(msg,
	    GMIME_ADDRESS_TYPE_TO), "To");
	header_addresses(x, &x->cc, msg, g_mime_message_get_addresses(msg,
	    GMIME_ADDRESS_TYPE_CC), "Cc");
	addresses(x, &x->bcc, g_mime_message_get_addresses(msg,
	    GMIME_ADDRESS_TYPE_BCC), 0);
	const char *subj = g_mime_message_get_subject(msg);
	if (subj && !(x->subject = strdup(subj)))
		x->oom = 1;
	GDateTime *dt = g_mime_message_get_date(msg);
	x->doc.date = dt ? g_date_time_to_unix(dt) : 0;
	walk(x, g_mime_message_get_mime_part(msg), 0);
	if (x->oom) {
		search_doc_free(&x->doc);
		return AR_ENOMEM;
	}
	x->doc.from = x->from;
	x->doc.to = (const char *const *)x->to.v;
	x->doc.n_to = x->to.n;
	x->doc.cc = (const char *const *)x->cc.v;
	x->doc.n_cc = x->cc.n;
	x->doc.bcc = (const char *const *)x->bcc.v;
	x->doc.n_bcc = x->bcc.n;
	x->doc.subject = x->subject;
	x->doc.body = x->body.p ? x->body.p : "";
	x->doc.filenames = (const char *const *)x->files.v;
	x->doc.n_filenames = x->files.n;
	*out = &x->doc;
	return 0;
}

void search_doc_free(search_doc_t *doc)
{
	xdoc_t *x = (xdoc_t *)doc;
	if (!x)
		return;
	if (x->magic != X_MAGIC)
		ar_panic("search_doc_free: not a document of search_doc_extract");
	sv_free(&x->to);
	sv_free(&x->cc);
	sv_free(&x->bcc);
	sv_free(&x->files);
	free(x->body.p);
	free(x->from);
	free(x->subject);
	free(x);
}
