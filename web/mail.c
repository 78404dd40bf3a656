/*
 * mail.c - the mail API: search, message view, original .eml, attachment
 * download and the HTML body (for the console's sandboxed iframe).
 * Everything is scoped by the session's tenant; anything else is 404 and
 * an audit entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "ar.h"
#include "jobs/jobs.h"
#include "message.h"
#include "web_priv.h"

#define MAIL_ROLES (STORE_ROLE_OFFICER | STORE_ROLE_LEGAL)
#define ATTACH_MAX ((size_t)256 << 20)

/* JSON string of any bytes (invalid UTF-8 replaced). */
static json_t *jstr(const char *s)
{
	char *v = web_utf8(s);
	json_t *j = json_string(v);
	g_free(v);
	return j ? j : json_string("");
}

/* --- search ------------------------------------------------------------- */

/* Snippet text with \x02..\x03 marks as [{"text":..,"match":bool}]. */
static json_t *snippet_parts(const char *s)
{
	json_t *a = json_array();
	int match = 0;
	while (s && *s) {
		size_t n = strcspn(s, "\x02\x03");
		if (n) {
			char *t = g_strndup(s, n);
			json_array_append_new(a, json_pack("{s:o,s:b}", "text",
			    jstr(t), "match", match));
			g_free(t);
		}
		s += n;
		if (*s == '\x02')
			match = 1;
		else if (*s == '\x03')
			match = 0;
		if (*s)
			s++;
	}
	return a;
}

static json_t *row_flags(const search_row_t *row)
{
	json_t *a = json_array();
	if (row->has_attachment)
		json_array_append_new(a, json_string("attachment"));
	if (row->flags & STORE_OBJ_JOURNAL)
		json_array_append_new(a, json_string("journal"));
	if (row->flags & STORE_OBJ_UNPARSED)
		json_array_append_new(a, json_string("unparsed"));
	return a;
}

static int query_error(struct web_req *r, const char *msg)
{
	unsigned col = 0, byte = 0;
	json_t *x = json_object();
	if (sscanf(msg, "column %u (byte %u)", &col, &byte) == 2) {
		json_object_set_new(x, "column", json_integer(col));
		json_object_set_new(x, "byte", json_integer(byte));
	}
	return web_reply_error(r, 400, "query_syntax", msg, x);
}

static int do_search(struct web_req *r)
{
	const char *q = web_arg(r, "q"), *cursor = web_arg(r, "cursor");
	const char *lim = web_arg(r, "limit"), *order = web_arg(r, "order");
	const char *snip = web_arg(r, "snippets");
	search_options_t o;
	search_results_t *res = NULL;
	search_query_t *pq = NULL;
	char errbuf[512];
	json_t *rows, *out;
	int rc;

	if (!q || !*q)
		return web_reply_error(r, 400, "bad_request", "give a query as "
		    "q (see the query help)", NULL);
	if (strlen(q) > 4096)
		return web_reply_error(r, 400, "bad_request", "the query is "
		    "over 4096 bytes", NULL);
	memset(&o, 0, sizeof o);
	if (lim) {
		char *end;
		long v = strtol(lim, &end, 10);
		if (*end || v < 1 || v > 200)
			return web_reply_error(r, 400, "bad_request",
			    "limit: 1..200", NULL);
		o.limit = (int)v;
	} else {
		o.limit = 25;
	}
	if (order && strcmp(order, "date") && strcmp(order, "rank"))
		return web_reply_error(r, 400, "bad_request",
		    "order: date or rank", NULL);
	o.order = order && !strcmp(order, "rank") ? SEARCH_BY_RANK :
	    SEARCH_BY_DATE;
	if (cursor && *cursor)
		o.cursor = cursor;
	if (search_query_parse(q, &pq, errbuf, sizeof errbuf)) {
		json_t *jq = json_string(q);     /* NULL: not UTF-8 */
		web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "search", NULL,
		    NULL, json_pack("{s:o,s:s}", "query", jq ? jq :
		    json_string("(not UTF-8)"), "error", "query_syntax"));
		return query_error(r, errbuf);
	}
	if (search_query_selects_all(pq)) {       /* blank, like empty */
		search_query_free(pq);
		return web_reply_error(r, 400, "bad_request", "give a query as "
		    "q (see the query help)", NULL);
	}
	search_query_free(pq);
	rc = search_run(r->w->idx, r->sess.tenant, q, &o, &res);
	if (rc == AR_ESYNTAX)
		return query_error(r, search_errmsg(r->w->idx));
	if (rc == AR_EINVAL && o.cursor)
		return web_deny(r, "cursor", o.cursor);
	if (rc)
		return web_reply_error(r, ar_status_temporary(rc) ? 503 : 500,
		    ar_status_temporary(rc) ? "unavailable" : "internal",
		    ar_strerror(rc), NULL);
	rows = json_array();
	for (size_t i = 0; i < search_results_count(res); i++) {
		const search_row_t *row = search_results_row(res, i);
		char hex[2 * SEARCH_ID_LEN + 1], t[32];
		json_t *jr = json_object();
		json_object_set_new(jr, "id", json_string(ar_hex(row->id,
		    SEARCH_ID_LEN, hex)));
		json_object_set_new(jr, "date", json_string(ar_time_fmt(
		    row->date, t, sizeof t)));
		json_object_set_new(jr, "from", jstr(row->from));
		json_object_set_new(jr, "to", jstr(row->to));
		json_object_set_new(jr, "subject", jstr(row->subject));
		json_object_set_new(jr, "size", json_integer(
		    (json_int_t)row->size));
		json_object_set_new(jr, "flags", row_flags(row));
		if (!snip || strcmp(snip, "0")) {
			struct web_msg m;
			char *sn = NULL;
			if (web_msg_open(r->w->st, r->sess.tenant, row->id,
			    &m) == 0) {
				char *text = web_msg_text(&m, NULL);
				search_snippet(q, text, 200, NULL, NULL, NULL,
				    &sn);
				g_free(text);
				web_msg_close(&m);
			}
			json_object_set_new(jr, "snippet", snippet_parts(sn));
			free(sn);
		}
		json_array_append_new(rows, jr);
	}
	out = json_object();
	json_object_set_new(out, "total", json_integer(
	    (json_int_t)search_results_total(res)));
	json_object_set_new(out, "rows", rows);
	json_object_set_new(out, "next_cursor",
	    search_results_next_cursor(res) ? json_string(
	    search_results_next_cursor(res)) : json_null());
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "search", NULL, NULL,
	    json_pack("{s:s,s:I,s:b}", "query", q, "total",
	    (json_int_t)search_results_total(res), "next_page",
	    o.cursor != NULL));
	search_results_free(res);
	return web_reply_json(r, 200, out);
}

/* --- one message -------------------------------------------------------- */

/* A new reference to meta[name], or def (taken) when absent. */
static json_t *meta_field(json_t *meta, const char *name, json_t *def)
{
	json_t *v = json_object_get(meta, name);
	if (!v)
		return def;
	json_decref(def);
	return json_incref(v);
}

struct att_list {
	json_t *a;
	const char *id;
};

static void att_cb(void *arg, int n, GMimeObject *part)
{
	struct att_list *l = arg;
	char *name = web_part_name(part, n), *ct;
	GMimeContentType *t = g_mime_object_get_content_type(part);
	GByteArray *b = web_part_content(part, ATTACH_MAX);
	char url[128];

	ct = t ? g_mime_content_type_get_mime_type(t) : g_strdup(
	    "application/octet-stream");
	snprintf(url, sizeof url, "/api/v1/messages/%s/attachments/%d", l->id,
	    n);
	json_array_append_new(l->a, json_pack("{s:i,s:o,s:o,s:I,s:s}",
	    "number", n, "name", jstr(name), "content_type", jstr(ct),
	    "size", (json_int_t)(b ? b->len : 0), "url", url));
	if (b)
		g_byte_array_unref(b);
	g_free(ct);
	g_free(name);
}

static json_t *headers_json(GMimeMessage *msg)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	json_t *a = json_array();
	int n = hl ? g_mime_header_list_get_count(hl) : 0;
	for (int i = 0; i < n && i < 500; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		json_array_append_new(a, json_pack("{s:o,s:o}", "name",
		    jstr(g_mime_header_get_name(h)), "value",
		    jstr(g_mime_header_get_value(h))));
	}
	return a;
}

static int message_view(struct web_req *r, const uint8_t id[STORE_ID_LEN],
    const char *hex)
{
	store_object_t obj;
	struct web_msg m;
	struct att_list al;
	json_t *out, *meta = NULL;
	char t[32], sha[2 * STORE_HASH_LEN + 1], url[128], *text;
	int rc, has_html = 0;

	memset(&obj, 0, sizeof obj);
	if ((rc = store_object_get(r->w->st, r->sess.tenant, id, &obj)))
		return rc == AR_ENOENT ? web_deny(r, "message", hex) :
		    web_reply_error(r, 503, "unavailable", ar_strerror(rc),
		    NULL);
	if (obj.meta)
		meta = json_loads(obj.meta, 0, NULL);
	if (!json_is_object(meta)) {
		json_decref(meta);
		meta = json_object();
	}
	out = json_object();
	json_object_set_new(out, "id", json_string(hex));
	json_object_set_new(out, "received", json_string(ar_time_fmt(
	    obj.received, t, sizeof t)));
	json_object_set_new(out, "retain_until", json_string(ar_time_fmt(
	    obj.retain_until, t, sizeof t)));
	json_object_set_new(out, "size", json_integer(
	    (json_int_t)obj.plain_size));
	json_object_set_new(out, "sha256", json_string(ar_hex(
	    obj.plain_sha256, STORE_HASH_LEN, sha)));
	json_object_set_new(out, "arrivals", json_integer(obj.arrivals));
	json_object_set_new(out, "subject", meta_field(meta, "subject",
	    json_null()));
	json_object_set_new(out, "from", meta_field(meta, "from",
	    json_null()));
	json_object_set_new(out, "to", meta_field(meta, "to",
	    json_array()));
	json_object_set_new(out, "cc", meta_field(meta, "cc",
	    json_array()));
	json_object_set_new(out, "date", meta_field(meta, "date",
	    json_null()));
	json_object_set_new(out, "message_id", meta_field(meta, "message_id",
	    json_null()));
	json_object_set_new(out, "envelope", meta_field(meta, "envelope",
	    json_null()));
	json_object_set_new(out, "metadata", meta);
	json_object_set_new(out, "holds", web_holds_covering(r, &obj));
	store_object_clear(&obj);

	if ((rc = web_msg_open(r->w->st, r->sess.tenant, id, &m))) {
		json_decref(out);
		return web_reply_error(r, ar_status_temporary(rc) ? 503 : 500,
		    ar_status_temporary(rc) ? "unavailable" : "unreadable",
		    ar_strerror(rc), NULL);
	}
	json_object_set_new(out, "headers", headers_json(m.msg));
	text = web_msg_text(&m, &has_html);
	json_object_set_new(out, "text", jstr(text));
	g_free(text);
	snprintf(url, sizeof url, "/api/v1/messages/%s/body.html", hex);
	json_object_set_new(out, "html_url", has_html ? json_string(url) :
	    json_null());
	snprintf(url, sizeof url, "/api/v1/messages/%s/original", hex);
	json_object_set_new(out, "original_url", json_string(url));
	al.a = json_array();
	al.id = hex;
	web_msg_attachments(&m, att_cb, &al);
	json_object_set_new(out, "attachments", al.a);
	web_msg_close(&m);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "view", NULL, id, NULL);
	return web_reply_json(r, 200, out);
}

/* The HTML part, for a sandboxed iframe: no script, no remote content
 * (the policy also sandboxes it when opened on its own). */
#define CSP_MAIL "default-src 'none'; img-src data:; style-src " \
	"'unsafe-inline'; font-src data:; form-action 'none'; " \
	"frame-ancestors 'self'; sandbox"

static int message_html(struct web_req *r, const uint8_t id[STORE_ID_LEN],
    const char *hex)
{
	store_object_t obj;
	struct web_msg m;
	struct MHD_Response *resp;
	char *html;
	int rc;

	memset(&obj, 0, sizeof obj);
	if ((rc = store_object_get(r->w->st, r->sess.tenant, id, &obj)))
		return rc == AR_ENOENT ? web_deny(r, "message", hex) :
		    web_reply_error(r, 503, "unavailable", ar_strerror(rc),
		    NULL);
	store_object_clear(&obj);
	if ((rc = web_msg_open(r->w->st, r->sess.tenant, id, &m)))
		return web_reply_error(r, 500, "unreadable", ar_strerror(rc),
		    NULL);
	html = web_msg_html(&m);
	web_msg_close(&m);
	if (!html)
		return web_reply_error(r, 404, "no_html",
		    "the message has no HTML part", NULL);
	resp = MHD_create_response_from_buffer(strlen(html), html,
	    MHD_RESPMEM_MUST_COPY);
	g_free(html);
	MHD_add_response_header(resp, "Content-Type",
	    "text/html; charset=utf-8");
	MHD_add_response_header(resp, "X-Frame-Options", "SAMEORIGIN");
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "view_html", NULL, id,
	    NULL);
	return web_reply(r, 200, resp, CSP_MAIL);
}

/* Content-Disposition: attachment with an ASCII fallback name and the
 * UTF-8 name percent-encoded (RFC 6266 / 8187).  Invisible and
 * direction-changing characters (U+202E ...) are replaced by '_' in both:
 * "invoice<U+202E>fdp.exe" must not be saved as if it were a PDF. */
static char *disposition(const char *utf8name)
{
	GString *g = g_string_new("attachment; filename=\"");
	GString *clean = g_string_new(NULL);
	const unsigned char *p, *name;
	const char *c;

	for (c = utf8name; *c; c = g_utf8_next_char(c)) {
		if (jobs_char_hidden(g_utf8_get_char(c)))
			g_string_append_c(clean, '_');
		else
			g_string_append_len(clean, c, g_utf8_next_char(c) - c);
	}
	name = (const unsigned char *)clean->str;
	for (p = name; *p; p++)
		g_string_append_c(g, (*p >= 0x20 && *p < 0x7f && *p != '"' &&
		    *p != '\\' && *p != '/' && *p != ';') ? (char)*p : '_');
	g_string_append(g, "\"; filename*=UTF-8''");
	for (p = name; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(".-_~", *p))
			g_string_append_c(g, (char)*p);
		else
			g_string_append_printf(g, "%%%02X", *p);
	}
	g_string_free(clean, TRUE);
	return g_string_free(g, FALSE);
}

static int attachment(struct web_req *r, const uint8_t id[STORE_ID_LEN],
    const char *hex, const char *num)
{
	store_object_t obj;
	struct web_msg m;
	struct MHD_Response *resp;
	GMimeObject *part;
	GByteArray *b;
	char *name, *disp, *end, ref[80];
	long n = strtol(num, &end, 10);
	int rc;

	snprintf(ref, sizeof ref, "%s/%s", hex, num);
	if (*end || n < 1 || n > 100000)
		return web_deny(r, "attachment", ref);
	memset(&obj, 0, sizeof obj);
	if ((rc = store_object_get(r->w->st, r->sess.tenant, id, &obj)))
		return rc == AR_ENOENT ? web_deny(r, "attachment", ref) :
		    web_reply_error(r, 503, "unavailable", ar_strerror(rc),
		    NULL);
	store_object_clear(&obj);
	if ((rc = web_msg_open(r->w->st, r->sess.tenant, id, &m)))
		return web_reply_error(r, 500, "unreadable", ar_strerror(rc),
		    NULL);
	if (!(part = web_msg_attachment(&m, (int)n))) {
		web_msg_close(&m);
		return web_deny(r, "attachment", ref);
	}
	name = web_part_name(part, (int)n);
	b = web_part_content(part, ATTACH_MAX);
	web_msg_close(&m);
	if (!b) {
		g_free(name);
		return web_reply_error(r, 413, "too_large",
		    "the attachment is too large to serve", NULL);
	}
	resp = MHD_create_response_from_buffer(b->len, b->data,
	    MHD_RESPMEM_MUST_COPY);
	g_byte_array_unref(b);
	disp = disposition(name);
	/* never the declared type: a text/html attachment must not run */
	MHD_add_response_header(resp, "Content-Type",
	    "application/octet-stream");
	MHD_add_response_header(resp, "Content-Disposition", disp);
	g_free(disp);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "download_attachment",
	    NULL, id, json_pack("{s:i,s:o}", "number", (int)n, "name",
	    jstr(name)));
	g_free(name);
	return web_reply(r, 200, resp, NULL);
}

/* The original bytes, streamed from the sealed object. */
static ssize_t eml_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	store_reader_t *rd = cls;
	size_t got = 0;
	(void)pos;
	if (store_reader_read(rd, buf, max, &got))
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return got ? (ssize_t)got : MHD_CONTENT_READER_END_OF_STREAM;
}

static void eml_free(void *cls)
{
	store_reader_close(cls);
}

static int original(struct web_req *r, const uint8_t id[STORE_ID_LEN],
    const char *hex)
{
	store_object_t obj;
	store_reader_t *rd;
	struct MHD_Response *resp;
	char disp[128];
	int rc;

	memset(&obj, 0, sizeof obj);
	if ((rc = store_object_get(r->w->st, r->sess.tenant, id, &obj)))
		return rc == AR_ENOENT ? web_deny(r, "original", hex) :
		    web_reply_error(r, 503, "unavailable", ar_strerror(rc),
		    NULL);
	store_object_clear(&obj);
	if ((rc = store_reader_open(store_get_backend(r->w->st),
	    store_get_keysvc(r->w->st), r->sess.tenant, id, &rd)))
		return web_reply_error(r, ar_status_temporary(rc) ? 503 : 500,
		    "unreadable", ar_strerror(rc), NULL);
	resp = MHD_create_response_from_callback(
	    store_reader_info(rd)->plain_size, 64 * 1024, eml_read, rd,
	    eml_free);
	if (!resp) {
		store_reader_close(rd);
		return MHD_NO;
	}
	snprintf(disp, sizeof disp, "attachment; filename=\"%s.eml\"", hex);
	MHD_add_response_header(resp, "Content-Type", "message/rfc822");
	MHD_add_response_header(resp, "Content-Disposition", disp);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "download_original",
	    NULL, id, NULL);
	return web_reply(r, 200, resp, NULL);
}

int web_api_mail(struct web_req *r, const char *path)
{
	uint8_t id[STORE_ID_LEN];
	char hex[2 * STORE_ID_LEN + 1], ref[128];
	const char *rest;
	size_t n;

	if (strcmp(path, "search") == 0) {
		if (strcmp(r->method, "GET"))
			return web_reply_error(r, 405, "method_not_allowed",
			    "search takes GET", NULL);
		if (web_require(r, MAIL_ROLES))
			return MHD_YES;
		return do_search(r);
	}
	if (strncmp(path, "messages/", 9))
		return AR_ENOENT;
	if (strcmp(r->method, "GET"))
		return web_reply_error(r, 405, "method_not_allowed",
		    "messages take GET", NULL);
	if (web_require(r, MAIL_ROLES))
		return MHD_YES;
	path += 9;
	n = strcspn(path, "/");
	rest = path + n;
	ar_strlcpy(ref, path, n + 1 < sizeof ref ? n + 1 : sizeof ref);
	if (n != 2 * STORE_ID_LEN || ar_unhex(ref, id, STORE_ID_LEN))
		return web_deny(r, "message", ref);
	ar_hex(id, STORE_ID_LEN, hex);
	if (!*rest)
		return message_view(r, id, hex);
	if (!strcmp(rest, "/original"))
		return original(r, id, hex);
	if (!strcmp(rest, "/body.html"))
		return message_html(r, id, hex);
	if (!strncmp(rest, "/attachments/", 13))
		return attachment(r, id, hex, rest + 13);
	return web_deny(r, "message", path);
}
