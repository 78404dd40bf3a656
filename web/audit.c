/*
 * audit.c - audit entries in the tenant's hash-chained log, and the audit
 * log API (JSON and CSV).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "ar.h"
#include "jobs/jobs.h"
#include "web_priv.h"

struct web_audit_entry {
	struct web_audit_entry *next;
	uint8_t tenant[STORE_TENANT_LEN];
	uint32_t kind;
	int has_object;
	uint8_t object[STORE_ID_LEN];
	json_t *detail;
};

int web_audit(struct web_req *r, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t kind, const char *action, const char *user,
    const uint8_t *object, json_t *extra)
{
	json_t *d = extra ? extra : json_object();
	struct web_audit_entry *e, **tail;
	char who[STORE_NAME_MAX + 16];

	if (user)
		ar_strlcpy(who, user, sizeof who);
	else if (r->has_sess && (r->sess.roles & STORE_ROLE_OPERATOR))
		snprintf(who, sizeof who, "operator:%s", r->sess.user);
	else
		ar_strlcpy(who, r->has_sess ? r->sess.user : "?", sizeof who);
	json_object_set_new(d, "action", json_string(action));
	json_object_set_new(d, "by", json_string("web"));
	json_object_set_new(d, "user", json_string(who));
	json_object_set_new(d, "client", json_string(r->client));
	if (r->method)
		json_object_set_new(d, "method", json_string(r->method));
	if (!(e = calloc(1, sizeof *e))) {
		json_decref(d);
		ar_log(AR_LOG_ERR, "web audit action=%s status=failed "
		    "error=\"out of memory\"", action);
		return AR_ENOMEM;
	}
	memcpy(e->tenant, tenant, STORE_TENANT_LEN);
	e->kind = kind;
	if (object) {
		e->has_object = 1;
		memcpy(e->object, object, STORE_ID_LEN);
	}
	e->detail = d;
	for (tail = &r->audit; *tail; tail = &(*tail)->next)
		;
	*tail = e;
	return 0;
}

void web_audit_flush(struct web_req *r)
{
	struct web_audit_entry *e;

	while ((e = r->audit)) {
		char *s;
		int rc = AR_ENOMEM;
		r->audit = e->next;
		if (r->status)
			json_object_set_new(e->detail, "status",
			    json_integer(r->status));
		if ((s = json_dumps(e->detail, JSON_COMPACT | JSON_SORT_KEYS))) {
			rc = store_log_append(r->w->st, e->tenant, e->kind,
			    e->has_object ? e->object : NULL, NULL, s, NULL);
			sodium_memzero(s, strlen(s));   /* may hold a query */
			free(s);
		}
		if (rc)
			ar_log(AR_LOG_ERR, "web audit action=%s status=failed "
			    "error=\"%s\"", json_string_value(json_object_get(
			    e->detail, "action")), rc == AR_ENOMEM ?
			    ar_strerror(rc) : store_errmsg(r->w->st));
		json_decref(e->detail);
		sodium_memzero(e, sizeof *e);
		free(e);
	}
}

int web_deny(struct web_req *r, const char *what, const char *ref)
{
	json_t *x = json_object();
	json_object_set_new(x, "what", json_string(what));
	json_object_set_new(x, "ref", json_string(ref ? ref : ""));
	json_object_set_new(x, "path", json_string(r->url));
	if (sodium_is_zero(r->sess.tenant, STORE_TENANT_LEN)) {
		/* an operator: no tenant log of its own */
		ar_log(AR_LOG_INFO, "web denied what=%s client=%s", what,
		    r->client);
		json_decref(x);
	} else {
		web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "denied", NULL,
		    NULL, x);
	}
	return web_reply_error(r, 404, "not_found", "no such item", NULL);
}

/* The path for a log line: at most 120 bytes, nothing but A-Z a-z 0-9
 * / . _ - (the rest as '?'), so that it can neither break the key=value
 * line nor carry text. */
static void log_path(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (; in && *in && o + 1 < len && o < 120; in++)
		out[o++] = ((*in >= 'a' && *in <= 'z') || (*in >= 'A' &&
		    *in <= 'Z') || (*in >= '0' && *in <= '9') ||
		    strchr("/._-", *in)) ? *in : '?';
	out[o] = '\0';
}

struct owner_find {
	store_t *st;
	const uint8_t *id;
	uint8_t tenant[STORE_TENANT_LEN];
	int found;
};

static int owner_cb(void *arg, const store_tenant_t *t)
{
	struct owner_find *f = arg;
	store_object_t o;

	memset(&o, 0, sizeof o);
	if (store_object_get(f->st, t->id, f->id, &o) == 0) {
		memcpy(f->tenant, t->id, STORE_TENANT_LEN);
		f->found = 1;
	}
	store_object_clear(&o);
	return f->found;
}

void web_refused(struct web_req *r, const char *action, json_t *extra)
{
	json_t *x = extra ? extra : json_object();
	char path[128];
	const char *p;
	uint8_t id[STORE_ID_LEN];
	char hex[2 * STORE_ID_LEN + 1];

	json_object_set_new(x, "path", json_string(r->url));
	if (!sodium_is_zero(r->sess.tenant, STORE_TENANT_LEN)) {
		web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, action, NULL,
		    NULL, x);
		return;
	}
	/* An operator, or no session at all: no tenant log of its own, so
	 * the daemon's log; and a refused attempt at a tenant's message is
	 * in that tenant's log. */
	log_path(r->url, path, sizeof path);
	ar_log(AR_LOG_WARN, "web audit action=%s user=%s%s method=%s "
	    "path=%s client=%s", action, r->has_sess ? "operator:" : "",
	    r->has_sess ? r->sess.user : "?", r->method ? r->method : "?",
	    path, r->client);
	if (!strncmp(r->url, "/api/v1/messages/", 17)) {
		struct owner_find f;
		p = r->url + 17;
		memset(&f, 0, sizeof f);
		if (strspn(p, "0123456789abcdefABCDEF") == 2 * STORE_ID_LEN) {
			memcpy(hex, p, 2 * STORE_ID_LEN);
			hex[2 * STORE_ID_LEN] = '\0';
			if (ar_unhex(hex, id, STORE_ID_LEN) == 0) {
				f.st = r->w->st;
				f.id = id;
				store_tenant_walk(r->w->st, owner_cb, &f);
			}
		}
		if (f.found) {
			web_audit(r, f.tenant, STORE_LOG_ACCESS, action, NULL,
			    id, x);
			return;
		}
	}
	json_decref(x);
}

/* --- GET /api/v1/audit ---------------------------------------------------- */

struct audit_walk {
	const char *user, *action;
	int64_t from, to;
	uint64_t before;
	size_t limit;
	json_t *rows;       /* newest last while walking */
};

static json_t *entry_json(const store_log_entry_t *e)
{
	json_t *o = json_object(), *d = NULL;
	char t[32], hex[2 * STORE_ID_LEN + 1];

	json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
	json_object_set_new(o, "time", json_string(ar_time_fmt(e->time, t,
	    sizeof t)));
	json_object_set_new(o, "kind", json_string(store_log_kind_name(
	    e->kind)));
	if (!sodium_is_zero(e->object, STORE_ID_LEN))
		json_object_set_new(o, "object", json_string(ar_hex(e->object,
		    STORE_ID_LEN, hex)));
	else
		json_object_set_new(o, "object", json_null());
	if (e->detail)
		d = json_loads(e->detail, 0, NULL);
	if (!json_is_object(d)) {
		json_decref(d);
		d = json_object();
	}
	if (json_object_get(d, "action"))
		json_object_set(o, "action", json_object_get(d, "action"));
	else
		json_object_set_new(o, "action", json_string(
		    store_log_kind_name(e->kind)));
	json_object_set(o, "user", json_object_get(d, "user") ?
	    json_object_get(d, "user") : json_null());
	json_object_set(o, "client", json_object_get(d, "client") ?
	    json_object_get(d, "client") : json_null());
	json_object_del(d, "action");
	json_object_del(d, "user");
	json_object_del(d, "client");
	json_object_set_new(o, "detail", d);
	return o;
}

static int audit_cb(void *arg, const store_log_entry_t *e)
{
	struct audit_walk *a = arg;
	json_t *o;
	const char *s;

	if (a->before && e->seq >= a->before)
		return 1;
	if ((a->from && e->time < a->from) || (a->to && e->time >= a->to))
		return 0;
	o = entry_json(e);
	if (a->user && (!(s = json_string_value(json_object_get(o, "user"))) ||
	    strcmp(s, a->user))) {
		json_decref(o);
		return 0;
	}
	if (a->action && (!(s = json_string_value(json_object_get(o,
	    "action"))) || strcmp(s, a->action))) {
		json_decref(o);
		return 0;
	}
	json_array_append_new(a->rows, o);
	if (json_array_size(a->rows) > a->limit)
		json_array_remove(a->rows, 0);
	return 0;
}

/* A CSV field: quoted, quotes doubled, and a leading = + - @ defused so a
 * spreadsheet never runs it as a formula. */
static void csv_field(FILE *f, const char *s, int last)
{
	fputc('"', f);
	if (jobs_csv_guarded(s))
		fputc('\'', f);
	for (; s && *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
	fputs(last ? "\r\n" : ",", f);
}

static int reply_csv(struct web_req *r, json_t *rows)
{
	char *buf = NULL, num[32], *detail;
	size_t len = 0, i;
	json_t *o;
	FILE *f = open_memstream(&buf, &len);
	struct MHD_Response *resp;

	if (!f) {
		json_decref(rows);
		return MHD_NO;
	}
	fputs("seq,time,kind,action,user,client,object,detail\r\n", f);
	json_array_foreach(rows, i, o) {
		snprintf(num, sizeof num, "%lld", (long long)json_integer_value(
		    json_object_get(o, "seq")));
		csv_field(f, num, 0);
		csv_field(f, json_string_value(json_object_get(o, "time")), 0);
		csv_field(f, json_string_value(json_object_get(o, "kind")), 0);
		csv_field(f, json_string_value(json_object_get(o, "action")), 0);
		csv_field(f, json_string_value(json_object_get(o, "user")), 0);
		csv_field(f, json_string_value(json_object_get(o, "client")), 0);
		csv_field(f, json_string_value(json_object_get(o, "object")), 0);
		detail = json_dumps(json_object_get(o, "detail"),
		    JSON_COMPACT | JSON_SORT_KEYS);
		csv_field(f, detail, 1);
		free(detail);
	}
	fclose(f);
	json_decref(rows);
	resp = MHD_create_response_from_buffer(len, buf,
	    MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type",
	    "text/csv; charset=utf-8");
	MHD_add_response_header(resp, "Content-Disposition",
	    "attachment; filename=\"audit.csv\"");
	return web_reply(r, 200, resp, NULL);
}

static int parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	char *end;
	if (!s || !*s)
		return 0;
	memset(&tm, 0, sizeof tm);
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		end = strptime(s, "%Y-%m-%d", &tm);
	if (!end || (*end && strcmp(end, "Z")))
		return AR_EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int web_api_audit(struct web_req *r, const char *path)
{
	struct audit_walk a;
	const char *lim = web_arg(r, "limit"), *before = web_arg(r, "before");
	const char *fmt = web_arg(r, "format");
	json_t *out, *rev;
	size_t i;
	int rc;

	if (strcmp(path, "audit"))
		return AR_ENOENT;
	if (strcmp(r->method, "GET"))
		return web_reply_error(r, 405, "method_not_allowed",
		    "audit takes GET", NULL);
	if (web_require(r, STORE_ROLE_AUDITOR | STORE_ROLE_ADMIN))
		return MHD_YES;
	if (r->sess.roles & STORE_ROLE_OPERATOR)
		return web_reply_error(r, 403, "forbidden", "operators have no "
		    "tenant audit log here (archivectl log)", NULL);
	memset(&a, 0, sizeof a);
	a.user = web_arg(r, "user");
	a.action = web_arg(r, "action");
	if (a.user && !*a.user)
		a.user = NULL;
	if (a.action && !*a.action)
		a.action = NULL;
	a.limit = lim ? strtoul(lim, NULL, 10) : 100;
	if (a.limit == 0 || a.limit > 10000)
		return web_reply_error(r, 400, "bad_request", "limit: 1..10000",
		    NULL);
	a.before = before ? strtoull(before, NULL, 10) : 0;
	if (parse_time(web_arg(r, "from"), &a.from) ||
	    parse_time(web_arg(r, "to"), &a.to))
		return web_reply_error(r, 400, "bad_time", "from/to: "
		    "YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", NULL);
	if (fmt && strcmp(fmt, "csv") && strcmp(fmt, "json"))
		return web_reply_error(r, 400, "bad_request",
		    "format: json or csv", NULL);
	a.rows = json_array();
	/* Without filters only the last `limit` entries before `before` are
	 * read; with filters the whole log is walked (in order: it is a
	 * forward-linked chain). */
	uint64_t from = 1, head = 0;
	if (!a.user && !a.action && !a.from && !a.to &&
	    store_log_head_seq(r->w->st, r->sess.tenant, &head) == 0) {
		uint64_t end = a.before && a.before <= head ? a.before :
		    head + 1;
		from = end > a.limit ? end - a.limit : 1;
	}
	rc = store_log_walk(r->w->st, r->sess.tenant, from, audit_cb, &a);
	if (rc < 0) {
		json_decref(a.rows);
		return web_reply_error(r, 503, "unavailable",
		    ar_strerror(rc), NULL);
	}
	rev = json_array();
	for (i = json_array_size(a.rows); i > 0; i--)
		json_array_append(rev, json_array_get(a.rows, i - 1));
	json_decref(a.rows);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, fmt && !strcmp(fmt,
	    "csv") ? "audit_export" : "audit_view", NULL, NULL, NULL);
	if (fmt && !strcmp(fmt, "csv"))
		return reply_csv(r, rev);
	out = json_object();
	json_object_set_new(out, "next_before", json_array_size(rev) ==
	    a.limit ? json_integer(json_integer_value(json_object_get(
	    json_array_get(rev, a.limit - 1), "seq"))) : json_null());
	json_object_set_new(out, "entries", rev);
	return web_reply_json(r, 200, out);
}
