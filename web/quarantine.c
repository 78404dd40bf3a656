/*
 * quarantine.c - the gateway's quarantine in the console and API (store.h
 * "quarantine"): the list with filters, a preview sandboxed like the
 * message view, release (asked in the catalog: the running gateway
 * queues it within seconds, as for archivectl quarantine release),
 * release-and-allow, delete; the release links of the daily digest (no
 * session: a signed, expiring link, once, for the recipient it was sent
 * to); and the gateway's verdict counts per day (JSON, and a chart drawn
 * here as SVG).
 *
 * Roles: an officer sees, releases and deletes the tenant's quarantine; a
 * user with the recipient role sees and releases only what was addressed
 * to one of its own addresses (store_user_t.addresses), and deletes
 * nothing.  Anything not the caller's - another tenant's id, another
 * recipient's message - is 404 and a "denied" entry in the tenant's log.
 * Every read and change is an entry in the tenant's log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>
#include <time.h>

#include "ar.h"
#include "message.h"
#include "web_priv.h"

#define Q_READ  (STORE_ROLE_OFFICER | STORE_ROLE_RECIPIENT)
#define STATS_ROLES (STORE_ROLE_OFFICER | STORE_ROLE_ADMIN)
#define ATTACH_MAX ((size_t)256 << 20)

static const char *state_name(int s)
{
	static const char *n[] = { "held", "release", "released", "deleted" };
	return s >= 0 && s < 4 ? n[s] : "?";
}

static json_t *jstr(const char *s)
{
	char *v = web_utf8(s);
	json_t *j = json_string(v);
	g_free(v);
	return j ? j : json_string("");
}

/* The caller's view: officer (everything of the tenant) or recipient (its
 * own addresses only). */
struct q_who {
	int officer;
	store_user_t u;                 /* a recipient's record (addresses) */
};

static int who_of(struct web_req *r, struct q_who *w)
{
	memset(w, 0, sizeof *w);
	w->officer = (r->sess.roles & STORE_ROLE_OFFICER) != 0;
	if (w->officer)
		return 0;
	if (store_user_get(r->w->st, r->sess.tenant, r->sess.user, &w->u)) {
		web_reply_error(r, 503, "unavailable", "your account could not "
		    "be read", NULL);
		return 1;
	}
	store_user_wipe(&w->u);
	return 0;
}

/* May w see a message with these envelope recipients? */
static int visible(const struct q_who *w, const json_t *rcpts)
{
	json_t *a;
	size_t i;

	if (w->officer)
		return 1;
	json_array_foreach(rcpts, i, a)
		if (json_string_value(a) && store_user_has_address(&w->u,
		    json_string_value(a)) == 0)
			return 1;
	return 0;
}

/* The recipients w may be shown (a recipient sees only its own). */
static json_t *rcpts_shown(const struct q_who *w, const json_t *rcpts)
{
	json_t *out = json_array(), *a;
	size_t i;

	json_array_foreach(rcpts, i, a)
		if (json_string_value(a) && (w->officer ||
		    store_user_has_address(&w->u, json_string_value(a)) == 0))
			json_array_append_new(out, jstr(json_string_value(a)));
	return out;
}

static json_t *row_json(const struct q_who *w, const store_quarantine_t *q,
    json_t *d)
{
	json_t *env = json_object_get(d, "envelope");
	json_t *v = json_object_get(d, "verdict");
	json_t *h = json_object_get(d, "header");
	json_t *o = json_object();
	char hex[33], t[32];

	json_object_set_new(o, "id", json_string(ar_hex(q->id, 16, hex)));
	json_object_set_new(o, "state", json_string(state_name(q->state)));
	json_object_set_new(o, "received", json_string(ar_time_fmt(q->received,
	    t, sizeof t)));
	json_object_set_new(o, "expires", json_string(ar_time_fmt(q->expires,
	    t, sizeof t)));
	json_object_set_new(o, "size", json_integer((json_int_t)q->size));
	json_object_set_new(o, "mail_from", jstr(json_string_value(
	    json_object_get(env, "mail_from"))));
	json_object_set_new(o, "rcpt_to", rcpts_shown(w, json_object_get(env,
	    "rcpt_to")));
	json_object_set_new(o, "subject", json_string_value(json_object_get(h,
	    "subject")) ? jstr(json_string_value(json_object_get(h,
	    "subject"))) : json_null());
	json_object_set_new(o, "from", json_string_value(json_object_get(h,
	    "from")) ? jstr(json_string_value(json_object_get(h, "from"))) :
	    json_null());
	json_object_set_new(o, "verdict", json_string_value(json_object_get(v,
	    "verdict")) ? jstr(json_string_value(json_object_get(v,
	    "verdict"))) : json_null());
	json_object_set_new(o, "reasons", json_is_array(json_object_get(v,
	    "reasons")) ? json_incref(json_object_get(v, "reasons")) :
	    json_array());
	json_object_set(o, "score", json_is_number(json_object_get(v, "score"))
	    ? json_object_get(v, "score") : json_null());
	return o;
}

/* --- the list -------------------------------------------------------------- */

struct q_list {
	const struct q_who *w;
	const char *rcpt, *sender, *verdict, *state;
	int64_t from, to;
	size_t limit, total;
	json_t *rows;
};

static int any_rcpt_has(const json_t *rcpts, const char *needle)
{
	json_t *a;
	size_t i;

	json_array_foreach(rcpts, i, a)
		if (json_string_value(a) && strcasestr(json_string_value(a),
		    needle))
			return 1;
	return 0;
}

static int list_cb(void *arg, const store_quarantine_t *q)
{
	struct q_list *l = arg;
	json_t *d = json_loads(q->details, 0, NULL), *env, *rcpts;
	const char *from, *kind;

	if (!d)
		return 0;
	env = json_object_get(d, "envelope");
	rcpts = json_object_get(env, "rcpt_to");
	from = json_string_value(json_object_get(env, "mail_from"));
	kind = json_string_value(json_object_get(json_object_get(d,
	    "verdict"), "verdict"));
	if (!visible(l->w, rcpts) ||
	    (l->rcpt && !any_rcpt_has(rcpts, l->rcpt)) ||
	    (l->sender && (!from || !strcasestr(from, l->sender))) ||
	    (l->verdict && (!kind || strcmp(kind, l->verdict))) ||
	    (l->state && strcmp(l->state, state_name(q->state))) ||
	    (l->from && q->received < l->from) ||
	    (l->to && q->received >= l->to)) {
		json_decref(d);
		return 0;
	}
	/* a recipient's filter matches its own addresses only */
	if (l->rcpt && !l->w->officer) {
		json_t *own = rcpts_shown(l->w, rcpts);
		int hit = any_rcpt_has(own, l->rcpt);
		json_decref(own);
		if (!hit) {
			json_decref(d);
			return 0;
		}
	}
	l->total++;
	if (json_array_size(l->rows) < l->limit)
		json_array_append_new(l->rows, row_json(l->w, q, d));
	json_decref(d);
	return 0;
}

static int parse_day(const char *s, int64_t *out)
{
	struct tm tm;
	char *end;

	if (!s || !*s)
		return 0;
	memset(&tm, 0, sizeof tm);
	end = strptime(s, "%Y-%m-%d", &tm);
	if (!end || *end)
		return AR_EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

static int q_list(struct web_req *r)
{
	struct q_who w;
	struct q_list l;
	const char *lim = web_arg(r, "limit");
	json_t *filters, *out;
	int rc;

	if (who_of(r, &w))
		return MHD_YES;
	memset(&l, 0, sizeof l);
	l.w = &w;
	l.rcpt = nonempty(web_arg(r, "recipient"));
	l.sender = nonempty(web_arg(r, "sender"));
	l.verdict = nonempty(web_arg(r, "verdict"));
	l.state = nonempty(web_arg(r, "state"));
	if (parse_day(web_arg(r, "from"), &l.from) ||
	    parse_day(web_arg(r, "to"), &l.to))
		return web_reply_error(r, 400, "bad_time", "from/to: a date, "
		    "YYYY-MM-DD (to: up to that day, included)", NULL);
	if (l.to)
		l.to += 86400;
	if (l.state && strcmp(l.state, "held") && strcmp(l.state, "release") &&
	    strcmp(l.state, "released") && strcmp(l.state, "deleted"))
		return web_reply_error(r, 400, "bad_request", "state: held, "
		    "release, released or deleted", NULL);
	l.limit = 200;
	if (lim) {
		char *end;
		long v = strtol(lim, &end, 10);
		if (*end || v < 1 || v > 1000)
			return web_reply_error(r, 400, "bad_request",
			    "limit: 1..1000", NULL);
		l.limit = (size_t)v;
	}
	l.rows = json_array();
	if ((rc = store_quarantine_walk(r->w->st, r->sess.tenant, list_cb,
	    &l))) {
		json_decref(l.rows);
		return web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
	}
	filters = json_object();
	if (l.rcpt)
		json_object_set_new(filters, "recipient", jstr(l.rcpt));
	if (l.sender)
		json_object_set_new(filters, "sender", jstr(l.sender));
	if (l.verdict)
		json_object_set_new(filters, "verdict", jstr(l.verdict));
	if (l.state)
		json_object_set_new(filters, "state", jstr(l.state));
	if (web_arg(r, "from"))
		json_object_set_new(filters, "from", jstr(web_arg(r, "from")));
	if (web_arg(r, "to"))
		json_object_set_new(filters, "to", jstr(web_arg(r, "to")));
	json_object_set_new(filters, "total", json_integer(
	    (json_int_t)l.total));
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "quarantine_list", NULL,
	    NULL, filters);
	out = json_object();
	json_object_set_new(out, "total", json_integer((json_int_t)l.total));
	json_object_set_new(out, "rows", l.rows);
	json_object_set_new(out, "can_delete", json_boolean(w.officer));
	return web_reply_json(r, 200, out);
}

/* --- one message ----------------------------------------------------------- */

/* The record of id for the caller, or an answer (404 + audit) and 1. */
static int q_get(struct web_req *r, const struct q_who *w,
    const uint8_t id[16], const char *hex, store_quarantine_t *q,
    json_t **d)
{
	int rc;

	*d = NULL;
	if ((rc = store_quarantine_get(r->w->st, r->sess.tenant, id, q))) {
		if (rc == AR_ENOENT) {
			web_deny(r, "quarantine", hex);
			return 1;
		}
		web_reply_error(r, 503, "unavailable", store_errmsg(r->w->st),
		    NULL);
		return 1;
	}
	*d = json_loads(q->details, 0, NULL);
	if (!json_is_object(*d) || !visible(w, json_object_get(json_object_get(
	    *d, "envelope"), "rcpt_to"))) {
		json_decref(*d);
		*d = NULL;
		store_quarantine_clear(q);
		web_deny(r, "quarantine", hex);
		return 1;
	}
	return 0;
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

static void att_cb(void *arg, int n, GMimeObject *part)
{
	json_t *a = arg;
	char *name = web_part_name(part, n), *ct;
	GMimeContentType *t = g_mime_object_get_content_type(part);

	ct = t ? g_mime_content_type_get_mime_type(t) : g_strdup(
	    "application/octet-stream");
	/* names and types only: a quarantined attachment is not served */
	json_array_append_new(a, json_pack("{s:i,s:o,s:o}", "number", n,
	    "name", jstr(name), "content_type", jstr(ct)));
	g_free(ct);
	g_free(name);
}

static int q_open(struct web_req *r, const uint8_t id[16], struct web_msg *m)
{
	store_reader_t *rd;
	int rc;

	if ((rc = store_quarantine_open(r->w->st, r->sess.tenant, id, &rd)))
		return rc;
	return web_msg_open_reader(rd, m);
}

static int q_view(struct web_req *r, const uint8_t id[16], const char *hex)
{
	struct q_who w;
	store_quarantine_t q;
	struct web_msg m;
	json_t *d, *out;
	char url[128], *text;
	int rc, has_html = 0;

	if (who_of(r, &w) || q_get(r, &w, id, hex, &q, &d))
		return MHD_YES;
	out = row_json(&w, &q, d);
	json_object_set_new(out, "can_delete", json_boolean(w.officer));
	json_object_set(out, "sha256", json_object_get(d, "sha256") ?
	    json_object_get(d, "sha256") : json_null());
	if (w.officer)
		json_object_set(out, "details", json_object_get(d, "verdict"));
	json_decref(d);
	if (q.state == STORE_Q_DELETED) {
		/* the record stays, the message is gone */
		json_object_set_new(out, "headers", json_array());
		json_object_set_new(out, "text", json_null());
		json_object_set_new(out, "html_url", json_null());
		json_object_set_new(out, "attachments", json_array());
	} else if ((rc = q_open(r, id, &m))) {
		store_quarantine_clear(&q);
		json_decref(out);
		return web_reply_error(r, ar_status_temporary(rc) ? 503 : 500,
		    "unreadable", ar_strerror(rc), NULL);
	} else {
		json_t *atts = json_array();
		json_object_set_new(out, "headers", headers_json(m.msg));
		text = web_msg_text(&m, &has_html);
		json_object_set_new(out, "text", jstr(text));
		g_free(text);
		snprintf(url, sizeof url, "/api/v1/quarantine/%s/body.html", hex);
		json_object_set_new(out, "html_url", has_html ?
		    json_string(url) : json_null());
		web_msg_attachments(&m, att_cb, atts);
		json_object_set_new(out, "attachments", atts);
		web_msg_close(&m);
	}
	store_quarantine_clear(&q);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "quarantine_view", NULL,
	    id, NULL);
	return web_reply_json(r, 200, out);
}

/* As the message view's HTML part: for a sandboxed iframe. */
#define CSP_MAIL "default-src 'none'; img-src data:; style-src " \
	"'unsafe-inline'; font-src data:; form-action 'none'; " \
	"frame-ancestors 'self'; sandbox"

static int q_html(struct web_req *r, const uint8_t id[16], const char *hex)
{
	struct q_who w;
	store_quarantine_t q;
	struct web_msg m;
	struct MHD_Response *resp;
	json_t *d;
	char *html;
	int rc;

	if (who_of(r, &w) || q_get(r, &w, id, hex, &q, &d))
		return MHD_YES;
	json_decref(d);
	store_quarantine_clear(&q);
	if ((rc = q_open(r, id, &m)))
		return rc == AR_ENOENT ? web_deny(r, "quarantine", hex) :
		    web_reply_error(r, 500, "unreadable", ar_strerror(rc), NULL);
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
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "quarantine_view_html",
	    NULL, id, NULL);
	return web_reply(r, 200, resp, CSP_MAIL);
}

/* Release (allow: the sender on the allow list too) or delete. */
static int q_change(struct web_req *r, const uint8_t id[16],
    const char *hex, int release)
{
	struct q_who w;
	store_quarantine_t q;
	json_t *d, *b, *allowed = json_array(), *extra;
	const char *reason, *from;
	char who[STORE_NAME_MAX + 8];
	int rc, allow;

	if (!(b = web_body_json(r))) {
		json_decref(allowed);
		return MHD_YES;
	}
	allow = json_is_true(json_object_get(b, "allow_sender"));
	reason = json_string_value(json_object_get(b, "reason"));
	if (reason && strlen(reason) > 512) {
		json_decref(b);
		json_decref(allowed);
		return web_reply_error(r, 400, "bad_request", "reason: at most "
		    "512 bytes", NULL);
	}
	if (who_of(r, &w) || q_get(r, &w, id, hex, &q, &d)) {
		json_decref(b);
		json_decref(allowed);
		return MHD_YES;
	}
	if (!release && !w.officer) {
		json_decref(b);
		json_decref(d);
		json_decref(allowed);
		store_quarantine_clear(&q);
		web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "forbidden", NULL,
		    id, json_pack("{s:s}", "path", r->url));
		return web_reply_error(r, 403, "forbidden", "only an officer "
		    "deletes quarantined mail", NULL);
	}
	store_quarantine_clear(&q);
	snprintf(who, sizeof who, "web:%s", r->sess.user);
	rc = store_quarantine_set_state(r->w->st, r->sess.tenant, id, release ?
	    STORE_Q_RELEASE : STORE_Q_DELETED, who, reason);
	if (rc == 0 && release && allow) {
		json_t *env = json_object_get(d, "envelope"), *a;
		size_t i;
		from = json_string_value(json_object_get(env, "mail_from"));
		if (from && from[0] && w.officer) {
			/* tenant-wide */
			if ((rc = store_gw_list_add(r->w->st, r->sess.tenant,
			    STORE_GW_ALLOW, "", from)) == 0)
				json_array_append_new(allowed, json_string(
				    "tenant"));
		} else if (from && from[0]) {
			/* for the recipient's own addresses only */
			json_array_foreach(json_object_get(env, "rcpt_to"), i, a)
				if (json_string_value(a) && store_user_has_address(
				    &w.u, json_string_value(a)) == 0 &&
				    (rc = store_gw_list_add(r->w->st,
				    r->sess.tenant, STORE_GW_ALLOW,
				    json_string_value(a), from)) == 0)
					json_array_append(allowed, a);
		}
		if (rc == AR_EINVAL)
			rc = 0;     /* a sender the list cannot hold: no allow */
	}
	if (rc) {
		json_decref(b);
		json_decref(d);
		json_decref(allowed);
		if (rc == AR_EINVAL)
			return web_reply_error(r, 409, "conflict",
			    store_errmsg(r->w->st), NULL);
		return web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
	}
	extra = json_pack("{s:O}", "allowed", allowed);
	if (reason)
		json_object_set_new(extra, "reason", jstr(reason));
	if (allow)
		json_object_set(extra, "sender", json_object_get(
		    json_object_get(d, "envelope"), "mail_from"));
	json_decref(d);
	json_decref(b);             /* reason pointed into it */
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, release ?
	    (allow ? "quarantine_release_allow" : "quarantine_release") :
	    "quarantine_delete", NULL, id, extra);
	return web_reply_json(r, 200, json_pack("{s:s, s:s, s:o}", "id", hex,
	    "state", release ? "release" : "deleted", "allowed", allowed));
}

/* --- digest links (no session) ------------------------------------------- */

struct link {
	uint8_t tenant[STORE_TENANT_LEN], id[16], mac[STORE_QLINK_MAC_LEN];
	const char *rcpt;
	int64_t expires;
};

/* The link's fields from the body; 0, or an answer given and 1. */
static int link_parse(struct web_req *r, json_t *b, struct link *l)
{
	const char *t = json_string_value(json_object_get(b, "t"));
	const char *q = json_string_value(json_object_get(b, "q"));
	const char *s = json_string_value(json_object_get(b, "s"));
	const char *e = json_string_value(json_object_get(b, "e"));
	char *end;

	memset(l, 0, sizeof *l);
	l->rcpt = json_string_value(json_object_get(b, "r"));
	if (e) {
		long long v = strtoll(e, &end, 10);
		l->expires = *end || !*e ? -1 : v;
	} else if (json_is_integer(json_object_get(b, "e"))) {
		l->expires = json_integer_value(json_object_get(b, "e"));
	} else {
		l->expires = -1;
	}
	if (!t || !q || !s || !l->rcpt || !l->rcpt[0] || l->expires < 0 ||
	    strlen(t) != 32 || strlen(q) != 32 || strlen(s) != 64 ||
	    ar_unhex(t, l->tenant, 16) || ar_unhex(q, l->id, 16) ||
	    ar_unhex(s, l->mac, sizeof l->mac)) {
		web_reply_error(r, 400, "bad_link", "the link is incomplete: "
		    "copy all of it from the digest", NULL);
		return 1;
	}
	return 0;
}

static int link_has_rcpt(const json_t *d, const char *rcpt)
{
	json_t *a;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(d, "envelope"),
	    "rcpt_to"), i, a)
		if (json_string_value(a) && !strcasecmp(json_string_value(a),
		    rcpt))
			return 1;
	return 0;
}

static void link_audit(struct web_req *r, const struct link *l,
    const char *action, const char *result)
{
	store_tenant_t t;

	if (store_tenant_get_id(r->w->st, l->tenant, &t))
		return;
	web_audit(r, l->tenant, STORE_LOG_ACCESS, action, "digest-link",
	    l->id, json_pack("{s:o, s:s}", "recipient", jstr(l->rcpt),
	    "result", result));
}

static int digest_link(struct web_req *r, int release)
{
	struct link l;
	store_quarantine_t q;
	json_t *b, *d = NULL, *out;
	const char *act = release ? "digest_release" : "digest_view";
	char who[STORE_ADDR_MAX + 16];
	int rc;

	if (!(b = web_body_json(r)))
		return MHD_YES;
	if (link_parse(r, b, &l)) {
		json_decref(b);
		return MHD_YES;
	}
	rc = store_quarantine_link_check(r->w->st, l.tenant, l.id, l.rcpt,
	    l.expires, l.mac);
	if (rc == AR_EPERM || rc == AR_ENOENT || rc == AR_ESHREDDED) {
		link_audit(r, &l, act, "bad_signature");
		json_decref(b);
		return web_reply_error(r, 403, "invalid_link", "this link is "
		    "not valid (altered, or for another recipient)", NULL);
	}
	if (rc) {
		json_decref(b);
		return web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
	}
	if (ar_now() > l.expires) {
		link_audit(r, &l, act, "expired");
		json_decref(b);
		return web_reply_error(r, 410, "link_expired", "this link has "
		    "expired: ask your mail administrator", NULL);
	}
	memset(&q, 0, sizeof q);
	if ((rc = store_quarantine_get(r->w->st, l.tenant, l.id, &q)) ||
	    !(d = json_loads(q.details, 0, NULL)) || !link_has_rcpt(d, l.rcpt)) {
		link_audit(r, &l, act, "gone");
		store_quarantine_clear(&q);
		json_decref(d);
		json_decref(b);
		return rc && rc != AR_ENOENT ? web_reply_error(r, 503,
		    "unavailable", store_errmsg(r->w->st), NULL) :
		    web_reply_error(r, 410, "link_used", "this message is no "
		    "longer in quarantine", NULL);
	}
	if (q.state != STORE_Q_HELD) {
		link_audit(r, &l, act, "used");
		store_quarantine_clear(&q);
		json_decref(d);
		json_decref(b);
		return web_reply_error(r, 410, "link_used", q.state ==
		    STORE_Q_DELETED ? "this message was deleted" : "this "
		    "message was released already: the link works once", NULL);
	}
	if (release) {
		snprintf(who, sizeof who, "digest:%s", l.rcpt);
		rc = store_quarantine_set_state(r->w->st, l.tenant, l.id,
		    STORE_Q_RELEASE, who, "digest link");
		if (rc) {
			/* another click won the race: the state changed */
			link_audit(r, &l, act, "used");
			store_quarantine_clear(&q);
			json_decref(d);
			json_decref(b);
			return rc == AR_EINVAL ? web_reply_error(r, 410,
			    "link_used", "this message was released already: "
			    "the link works once", NULL) : web_reply_error(r,
			    503, "unavailable", store_errmsg(r->w->st), NULL);
		}
	}
	{
		char hex[33], ts[32];
		json_t *h = json_object_get(d, "header");
		out = json_object();
		json_object_set_new(out, "id", json_string(ar_hex(l.id, 16,
		    hex)));
		json_object_set_new(out, "state", json_string(release ?
		    "release" : "held"));
		json_object_set_new(out, "received", json_string(ar_time_fmt(
		    q.received, ts, sizeof ts)));
		json_object_set_new(out, "recipient", jstr(l.rcpt));
		json_object_set_new(out, "mail_from", jstr(json_string_value(
		    json_object_get(json_object_get(d, "envelope"),
		    "mail_from"))));
		json_object_set_new(out, "subject", json_string_value(
		    json_object_get(h, "subject")) ? jstr(json_string_value(
		    json_object_get(h, "subject"))) : json_null());
		json_object_set_new(out, "verdict", json_string_value(
		    json_object_get(json_object_get(d, "verdict"), "verdict")) ?
		    jstr(json_string_value(json_object_get(json_object_get(d,
		    "verdict"), "verdict"))) : json_null());
		json_object_set_new(out, "link_expires", json_string(
		    ar_time_fmt(l.expires, ts, sizeof ts)));
	}
	link_audit(r, &l, act, release ? "released" : "shown");
	store_quarantine_clear(&q);
	json_decref(d);
	json_decref(b);
	return web_reply_json(r, 200, out);
}

/* --- gateway verdict counts ----------------------------------------------- */

struct stats {
	int64_t first;                  /* day */
	size_t ndays;
	uint64_t (*n)[STORE_GWS_COUNT];
};

static int stats_cb(void *arg, int64_t day, const uint64_t n[STORE_GWS_COUNT])
{
	struct stats *s = arg;

	if (day >= s->first && (size_t)(day - s->first) < s->ndays)
		memcpy(s->n[day - s->first], n, sizeof s->n[0]);
	return 0;
}

/* Counts of the last days days (today included); 0 or answered. */
static int stats_load(struct web_req *r, struct stats *s)
{
	long days;
	int64_t today = ar_now() / 86400;

	if (web_arg_days(r, &days))
		return 1;
	s->ndays = (size_t)days;
	s->first = today - days + 1;
	if (!(s->n = calloc(s->ndays, sizeof *s->n))) {
		web_reply_error(r, 503, "unavailable", "out of memory", NULL);
		return 1;
	}
	if (store_gw_stats_walk(r->w->st, r->sess.tenant, s->first, today,
	    stats_cb, s)) {
		free(s->n);
		web_reply_error(r, 503, "unavailable", store_errmsg(r->w->st),
		    NULL);
		return 1;
	}
	return 0;
}

static int gw_stats(struct web_req *r)
{
	struct stats s;
	json_t *days = json_array(), *tot = json_object(), *names = json_array();
	uint64_t sum[STORE_GWS_COUNT] = { 0 };

	if (stats_load(r, &s)) {
		json_decref(days);
		json_decref(tot);
		json_decref(names);
		return MHD_YES;
	}
	for (int k = 0; k < STORE_GWS_COUNT; k++)
		json_array_append_new(names, json_string(store_gw_stat_name(k)));
	for (size_t i = 0; i < s.ndays; i++) {
		json_t *c = json_object();
		char date[16];
		web_day_fmt(s.first + (int64_t)i, date, sizeof date);
		for (int k = 0; k < STORE_GWS_COUNT; k++) {
			json_object_set_new(c, store_gw_stat_name(k), json_integer(
			    (json_int_t)s.n[i][k]));
			sum[k] += s.n[i][k];
		}
		json_array_append_new(days, json_pack("{s:s, s:o}", "date", date,
		    "counts", c));
	}
	for (int k = 0; k < STORE_GWS_COUNT; k++)
		json_object_set_new(tot, store_gw_stat_name(k), json_integer(
		    (json_int_t)sum[k]));
	free(s.n);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "gateway_stats", NULL,
	    NULL, json_pack("{s:I}", "days", (json_int_t)s.ndays));
	return web_reply_json(r, 200, json_pack("{s:o, s:o, s:o, s:[sssss], "
	    "s:[sssss]}", "days", days, "totals", tot, "names", names,
	    "verdicts", "clean", "spam", "virus", "policy", "unscanned",
	    "actions", "delivered", "tagged", "quarantined", "rejected",
	    "tempfailed"));
}

/* A stacked bar per day of the verdict kinds, drawn here (no script, no
 * download): an <img> in the console. */
static int gw_chart(struct web_req *r)
{
	static const char *colors[] = { "#2e7d32", "#f9a825", "#c62828",
	    "#6a1b9a", "#78909c" };
	static const char *names[] = { "clean", "spam", "virus", "policy",
	    "unscanned" };
	struct stats s;
	web_chart_t c;
	GString *g;

	if (stats_load(r, &s))
		return MHD_YES;
	memset(&c, 0, sizeof c);
	c.title = "Messages by verdict per day";
	c.first_day = s.first;
	c.ndays = s.ndays;
	c.nseries = 5;
	c.stride = STORE_GWS_COUNT;
	c.names = names;
	c.colors = colors;
	c.values = &s.n[0][0];
	g = web_chart_svg(&c);
	free(s.n);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "gateway_chart", NULL,
	    NULL, json_pack("{s:I}", "days", (json_int_t)s.ndays));
	return web_reply_svg(r, g);
}

/* --- dispatch ---------------------------------------------------------------- */

int web_api_quarantine(struct web_req *r, const char *path)
{
	uint8_t id[16];
	char hex[33], ref[80];
	const char *rest;
	size_t n;
	int get = !strcmp(r->method, "GET");

	if (!strncmp(path, "digest-link/", 12)) {
		const char *what = path + 12;
		if (strcmp(what, "info") && strcmp(what, "release"))
			return AR_ENOENT;
		if (strcmp(r->method, "POST"))
			return web_reply_error(r, 405, "method_not_allowed",
			    "digest links take POST", NULL);
		return digest_link(r, !strcmp(what, "release"));
	}
	if (!strcmp(path, "gateway/stats") || !strcmp(path,
	    "gateway/chart.svg")) {
		if (!get)
			return web_reply_error(r, 405, "method_not_allowed",
			    "gateway counts take GET", NULL);
		if (web_require(r, STATS_ROLES))
			return MHD_YES;
		return path[8] == 's' ? gw_stats(r) : gw_chart(r);
	}
	if (strcmp(path, "quarantine") && strncmp(path, "quarantine/", 11))
		return AR_ENOENT;
	if (web_require(r, Q_READ))
		return MHD_YES;
	if (!strcmp(path, "quarantine")) {
		if (!get)
			return web_reply_error(r, 405, "method_not_allowed",
			    "the quarantine list takes GET", NULL);
		return q_list(r);
	}
	path += 11;
	n = strcspn(path, "/");
	rest = path + n;
	ar_strlcpy(ref, path, n + 1 < sizeof ref ? n + 1 : sizeof ref);
	if (n != 32 || ar_unhex(ref, id, 16))
		return web_deny(r, "quarantine", ref);
	ar_hex(id, 16, hex);
	if (!*rest || !strcmp(rest, "/body.html")) {
		if (!get)
			return web_reply_error(r, 405, "method_not_allowed",
			    "use POST .../release or .../delete", NULL);
		return *rest ? q_html(r, id, hex) : q_view(r, id, hex);
	}
	if (!strcmp(rest, "/release") || !strcmp(rest, "/delete")) {
		if (strcmp(r->method, "POST"))
			return web_reply_error(r, 405, "method_not_allowed",
			    "release and delete take POST", NULL);
		if (web_require_csrf(r))
			return MHD_YES;
		return q_change(r, id, hex, rest[1] == 'r');
	}
	return web_deny(r, "quarantine", path);
}
