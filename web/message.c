/*
 * message.c - a stored message opened for display: parsed by GMime from
 * the sealed object (ar_sealed_stream, no plaintext on disk), its text
 * and HTML parts, its attachments (numbered 1.. in document order) and
 * headers.
 */
#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "mime/mime.h"
#include "message.h"

int web_msg_open_reader(store_reader_t *rd, struct web_msg *m)
{
	GMimeParser *p;
	int rc;

	memset(m, 0, sizeof *m);
	if (!(m->stream = mime_sealed_stream_new(rd, 1))) {
		store_reader_close(rd);
		return AR_ENOMEM;
	}
	p = g_mime_parser_new_with_stream(m->stream);
	m->msg = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	if (!m->msg) {
		rc = mime_sealed_stream_status(m->stream);
		web_msg_close(m);
		return rc ? rc : AR_EPROTO;
	}
	return 0;
}

int web_msg_open(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], struct web_msg *m)
{
	store_reader_t *rd;
	int rc;

	memset(m, 0, sizeof *m);
	if ((rc = store_reader_open(store_get_backend(st),
	    store_get_keysvc(st), tenant, id, &rd)))
		return rc;
	return web_msg_open_reader(rd, m);
}

void web_msg_close(struct web_msg *m)
{
	if (m->msg)
		g_object_unref(m->msg);
	if (m->stream)
		g_object_unref(m->stream);
	memset(m, 0, sizeof *m);
}

char *web_utf8(const char *s)
{
	if (!s)
		return g_strdup("");
	return g_utf8_make_valid(s, -1);
}

struct walk {
	struct web_msg *m;
	int want;                    /* attachment number to stop at, or 0 */
	web_msg_part_cb cb;
	void *arg;
	int n;                       /* attachments seen */
	GMimeObject *found;
	GMimeTextPart *text, *html;
};

static int is_attachment(GMimeObject *o)
{
	const char *disp;
	if (GMIME_IS_MESSAGE_PART(o))
		return 1;
	if (!GMIME_IS_PART(o))
		return 0;
	disp = g_mime_object_get_disposition(o);
	if (disp && !g_ascii_strcasecmp(disp, "attachment"))
		return 1;
	if (g_mime_part_get_filename(GMIME_PART(o)))
		return 1;
	return !GMIME_IS_TEXT_PART(o);
}

static void visit(struct walk *w, GMimeObject *o)
{
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n && !w->found; i++)
			visit(w, g_mime_multipart_get_part(mp, i));
		return;
	}
	if (is_attachment(o)) {
		w->n++;
		if (w->cb)
			w->cb(w->arg, w->n, o);
		if (w->want == w->n)
			w->found = o;
		return;
	}
	if (GMIME_IS_TEXT_PART(o)) {
		GMimeContentType *ct = g_mime_object_get_content_type(o);
		if (g_mime_content_type_is_type(ct, "text", "html")) {
			if (!w->html)
				w->html = GMIME_TEXT_PART(o);
		} else if (!w->text) {
			w->text = GMIME_TEXT_PART(o);
		}
	}
}

static void walk_body(struct web_msg *m, struct walk *w)
{
	GMimeObject *body = g_mime_message_get_mime_part(m->msg);
	memset(w, 0, sizeof *w);
	w->m = m;
	if (body)
		visit(w, body);
}

char *web_msg_text(struct web_msg *m, int *has_html)
{
	struct walk w;
	char *t = NULL, *out;

	walk_body(m, &w);
	if (has_html)
		*has_html = w.html != NULL;
	if (w.text) {
		t = g_mime_text_part_get_text(w.text);
	} else if (w.html) {
		char *h = g_mime_text_part_get_text(w.html), *x = NULL;
		if (h && search_html_to_text(h, strlen(h), &x) == 0) {
			t = g_strdup(x);
			free(x);
		}
		g_free(h);
	}
	out = web_utf8(t);
	g_free(t);
	return out;
}

/* <meta http-equiv="refresh" content="0;url=http://…"> would navigate the
 * frame to a remote page (a read receipt) with no script at all: every
 * http-equiv attribute is renamed so that the browser ignores it. */
static void defuse_http_equiv(char *s)
{
	static const char name[] = "http-equiv";
	for (char *p = s; (p = strcasestr(p, name)); p += sizeof name - 1)
		memcpy(p, "data-equiv", sizeof name - 1);
}

char *web_msg_html(struct web_msg *m)
{
	struct walk w;
	char *h, *out;
	walk_body(m, &w);
	if (!w.html)
		return NULL;
	h = g_mime_text_part_get_text(w.html);
	out = web_utf8(h);
	g_free(h);
	defuse_http_equiv(out);
	return out;
}

void web_msg_attachments(struct web_msg *m, web_msg_part_cb cb, void *arg)
{
	struct walk w;
	GMimeObject *body = g_mime_message_get_mime_part(m->msg);
	memset(&w, 0, sizeof w);
	w.m = m;
	w.cb = cb;
	w.arg = arg;
	if (body)
		visit(&w, body);
}

GMimeObject *web_msg_attachment(struct web_msg *m, int n)
{
	struct walk w;
	GMimeObject *body = g_mime_message_get_mime_part(m->msg);
	if (n < 1)
		return NULL;
	memset(&w, 0, sizeof w);
	w.m = m;
	w.want = n;
	if (body)
		visit(&w, body);
	return w.found;
}

char *web_part_name(GMimeObject *o, int n)
{
	const char *f = NULL;
	if (GMIME_IS_PART(o))
		f = g_mime_part_get_filename(GMIME_PART(o));
	if (f && *f)
		return web_utf8(f);
	if (GMIME_IS_MESSAGE_PART(o))
		return g_strdup_printf("message-%d.eml", n);
	return g_strdup_printf("attachment-%d.bin", n);
}

GByteArray *web_part_content(GMimeObject *o, size_t max)
{
	GMimeStream *ms = g_mime_stream_mem_new();
	GByteArray *out = NULL;
	ssize_t n = -1;

	if (GMIME_IS_PART(o)) {
		GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(o));
		if (dw)
			n = g_mime_data_wrapper_write_to_stream(dw, ms);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(o));
		if (inner)
			n = g_mime_object_write_to_stream(GMIME_OBJECT(inner),
			    NULL, ms);
	}
	if (n >= 0 && (size_t)n <= max) {
		GByteArray *b = g_mime_stream_mem_get_byte_array(
		    GMIME_STREAM_MEM(ms));
		out = g_byte_array_sized_new(b->len);
		g_byte_array_append(out, b->data, b->len);
	}
	g_object_unref(ms);
	return out;
}
