/*
 * holds.c - legal holds in the API: list (with the count of messages each
 * covers), show, create and release (role legal; officers and admins
 * read), and the holds covering one message (for the message view).
 * Create and release are the store's STORE_LOG_HOLD entries, carrying the
 * user and client address: one entry an act, not a second web entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "ar.h"
#include "jobs/jobs.h"
#include "web_priv.h"

#define HOLD_READ (STORE_ROLE_LEGAL | STORE_ROLE_OFFICER | STORE_ROLE_ADMIN)

int web_reply_query_error(struct web_req *r, const char *msg)
{
	unsigned col = 0, byte = 0;
	json_t *x = json_object();
	if (sscanf(msg, "column %u (byte %u)", &col, &byte) == 2) {
		json_object_set_new(x, "column", json_integer(col));
		json_object_set_new(x, "byte", json_integer(byte));
	}
	return web_reply_error(r, 400, "query_syntax", msg, x);
}

static json_t *time_or_null(int64_t t)
{
	char ts[32];
	return t ? json_string(ar_time_fmt(t, ts, sizeof ts)) : json_null();
}

static json_t *hold_json(const store_hold_t *h, long long count)
{
	json_t *j = json_object(), *cu = json_array();

	json_object_set_new(j, "name", json_string(h->name));
	json_object_set_new(j, "number", json_integer(h->number));
	json_object_set_new(j, "description", json_string(h->description));
	for (size_t i = 0; i < h->n_custodians; i++)
		json_array_append_new(cu, json_string(h->custodians[i]));
	json_object_set_new(j, "custodians", cu);
	json_object_set_new(j, "from", time_or_null(h->from));
	json_object_set_new(j, "until", time_or_null(h->until));
	json_object_set_new(j, "query", json_string(h->query));
	json_object_set_new(j, "state", json_string(h->released ? "released" :
	    "active"));
	json_object_set_new(j, "created", time_or_null(h->created));
	json_object_set_new(j, "created_by", json_string(h->created_by));
	json_object_set_new(j, "released", time_or_null(h->released ?
	    h->released_at : 0));
	json_object_set_new(j, "released_by", h->released ?
	    json_string(h->released_by) : json_null());
	json_object_set_new(j, "release_reason", h->released ?
	    json_string(h->release_reason) : json_null());
	json_object_set_new(j, "messages", count < 0 ? json_null() :
	    json_integer(count));
	return j;
}

/* Messages an active hold covers (-1 when it cannot be counted). */
static long long hold_count(struct web_req *r, const store_tenant_t *t,
    const store_hold_t *h)
{
	uint8_t *ids = NULL;
	size_t n = 0;
	char err[256];

	if (h->released)
		return 0;
	if (jobs_hold_ids(r->w->st, r->w->idx, t, h, &ids, &n, err,
	    sizeof err))
		return -1;
	free(ids);
	return (long long)n;
}

struct list_ctx {
	struct web_req *r;
	const store_tenant_t *t;
	json_t *a;
};

static int list_cb(void *arg, const store_hold_t *h)
{
	struct list_ctx *c = arg;
	json_array_append_new(c->a, hold_json(h, hold_count(c->r, c->t, h)));
	return 0;
}

static int tenant_of(struct web_req *r, store_tenant_t *t)
{
	int rc = store_tenant_get_id(r->w->st, r->sess.tenant, t);
	if (rc)
		web_reply_error(r, 503, "unavailable", ar_strerror(rc), NULL);
	return rc;
}

static int holds_list(struct web_req *r)
{
	store_tenant_t t;
	struct list_ctx c;
	int rc;

	if (tenant_of(r, &t))
		return MHD_YES;
	c.r = r;
	c.t = &t;
	c.a = json_array();
	if ((rc = store_hold_walk(r->w->st, t.id, list_cb, &c))) {
		json_decref(c.a);
		return web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
	}
	return web_reply_json(r, 200, json_pack("{s:o}", "holds", c.a));
}

static int hold_show(struct web_req *r, const char *name)
{
	store_tenant_t t;
	store_hold_t *h;
	int rc, ret;

	if (tenant_of(r, &t))
		return MHD_YES;
	if (!(h = malloc(sizeof *h)))
		return MHD_NO;
	if ((rc = store_hold_get(r->w->st, t.id, name, h)))
		ret = rc == AR_ENOENT ? web_deny(r, "hold", name) :
		    web_reply_error(r, 503, "unavailable", ar_strerror(rc),
		    NULL);
	else
		ret = web_reply_json(r, 200, hold_json(h, hold_count(r, &t,
		    h)));
	sodium_memzero(h, sizeof *h);
	free(h);
	return ret;
}

/* "YYYY-MM-DD" (end: the last second of that day); 0 or -1. */
static int parse_date(const char *s, int end, int64_t *out)
{
	struct tm tm;
	char *e;

	memset(&tm, 0, sizeof tm);
	if (!(e = strptime(s, "%Y-%m-%d", &tm)) || *e)
		return -1;
	*out = (int64_t)timegm(&tm) + (end ? 86399 : 0);
	return 0;
}

static int hold_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    (i && (s[i] == '-' || s[i] == '_' || s[i] == '.'))))
			return 0;
	return 1;
}

/* Fill h from the body; answers 400 itself and returns -1 on bad input. */
static int hold_from_body(struct web_req *r, json_t *b, store_hold_t *h)
{
	const char *name = json_string_value(json_object_get(b, "name"));
	json_t *v;
	size_t i;

	if (!name || !hold_name_ok(name)) {
		web_reply_error(r, 400, "bad_name", "name: 1-63 of A-Z a-z "
		    "0-9 . _ - starting with a letter or digit", NULL);
		return -1;
	}
	ar_strlcpy(h->name, name, sizeof h->name);
	if ((v = json_object_get(b, "description")) && !json_is_null(v)) {
		if (!json_is_string(v) || strlen(json_string_value(v)) >=
		    sizeof h->description) {
			web_reply_error(r, 400, "bad_request", "description: "
			    "text of at most 511 bytes", NULL);
			return -1;
		}
		ar_strlcpy(h->description, json_string_value(v),
		    sizeof h->description);
	}
	if ((v = json_object_get(b, "custodians")) && !json_is_null(v)) {
		json_t *x;
		if (!json_is_array(v) || json_array_size(v) >
		    STORE_HOLD_CUSTODIANS_MAX) {
			web_reply_error(r, 400, "bad_custodians", "custodians: "
			    "an array of at most 32 addresses or @domains",
			    NULL);
			return -1;
		}
		json_array_foreach(v, i, x) {
			const char *s = json_string_value(x);
			if (!s || strlen(s) >= STORE_ADDR_MAX ||
			    store_retention_match_valid(s)) {
				web_reply_error(r, 400, "bad_custodians",
				    "custodians: each an address or @domain",
				    json_pack("{s:i}", "index", (int)i));
				return -1;
			}
			ar_strlcpy(h->custodians[h->n_custodians++], s,
			    STORE_ADDR_MAX);
		}
	}
	for (int k = 0; k < 2; k++) {
		const char *key = k ? "until" : "from";
		if (!(v = json_object_get(b, key)) || json_is_null(v))
			continue;
		if (!json_is_string(v) || parse_date(json_string_value(v), k,
		    k ? &h->until : &h->from)) {
			char m[64];
			snprintf(m, sizeof m, "%s: a date as YYYY-MM-DD", key);
			web_reply_error(r, 400, "bad_date", m, NULL);
			return -1;
		}
	}
	if (h->from && h->until && h->until < h->from) {
		web_reply_error(r, 400, "bad_date", "until is before from",
		    NULL);
		return -1;
	}
	if ((v = json_object_get(b, "query")) && !json_is_null(v)) {
		const char *q = json_string_value(v);
		search_query_t *pq;
		char err[512];
		if (!q || strlen(q) >= sizeof h->query) {
			web_reply_error(r, 400, "bad_request", "query: text of "
			    "at most 1023 bytes", NULL);
			return -1;
		}
		if (*q && search_query_parse(q, &pq, err, sizeof err)) {
			web_reply_query_error(r, err);
			return -1;
		}
		if (*q) {
			int all = search_query_selects_all(pq);
			search_query_free(pq);
			if (all) {
				web_reply_error(r, 400, "bad_request", "query: "
				    "a blank query would select every message; "
				    "give a term or a filter, or leave the query "
				    "out", NULL);
				return -1;
			}
		}
		ar_strlcpy(h->query, q, sizeof h->query);
	}
	if (!h->n_custodians && !h->from && !h->until && !h->query[0]) {
		web_reply_error(r, 400, "no_scope", "a hold needs custodians, "
		    "a date range or a query", NULL);
		return -1;
	}
	return 0;
}

static int hold_create(struct web_req *r)
{
	store_tenant_t t;
	store_hold_t *h;
	json_t *b;
	int rc, ret;

	if (tenant_of(r, &t))
		return MHD_YES;
	if (!(b = web_body_json(r)))
		return MHD_YES;
	if (!(h = calloc(1, sizeof *h))) {
		json_decref(b);
		return MHD_NO;
	}
	if (hold_from_body(r, b, h)) {
		ret = MHD_YES;
		goto out;
	}
	ar_strlcpy(h->created_by, r->sess.user, sizeof h->created_by);
	ar_strlcpy(h->client, r->client, sizeof h->client);
	rc = store_hold_create(r->w->st, &t, h);
	if (rc == AR_EEXIST)
		ret = web_reply_error(r, 409, "exists", "an active hold has "
		    "that name", NULL);
	else if (rc == AR_EINVAL)
		ret = web_reply_error(r, 400, "bad_request",
		    store_errmsg(r->w->st), NULL);
	else if (rc)
		ret = web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
	else
		ret = web_reply_json(r, 201, hold_json(h, hold_count(r, &t,
		    h)));
out:
	sodium_memzero(h, sizeof *h);
	free(h);
	json_decref(b);
	return ret;
}

static int hold_release(struct web_req *r, const char *name)
{
	store_tenant_t t;
	store_hold_t *h;
	const char *reason;
	json_t *b;
	int rc, ret;

	if (tenant_of(r, &t))
		return MHD_YES;
	if (!(h = malloc(sizeof *h)))
		return MHD_NO;
	rc = store_hold_get(r->w->st, t.id, name, h);
	if (rc) {
		free(h);
		return rc == AR_ENOENT ? web_deny(r, "hold", name) :
		    web_reply_error(r, 503, "unavailable", ar_strerror(rc),
		    NULL);
	}
	if (!(b = web_body_json(r))) {
		free(h);
		return MHD_YES;
	}
	reason = json_string_value(json_object_get(b, "reason"));
	if (!reason || !*reason || strlen(reason) >= sizeof h->release_reason)
		ret = web_reply_error(r, 400, "bad_reason", "reason: why the "
		    "hold is released (1-511 bytes)", NULL);
	else if (h->released)
		ret = web_reply_error(r, 409, "released", "the hold was "
		    "already released", NULL);
	else if ((rc = store_hold_release_from(r->w->st, &t, name,
	    r->sess.user, r->client, reason)))
		ret = web_reply_error(r, rc == AR_EINVAL ? 409 : 503,
		    rc == AR_EINVAL ? "released" : "unavailable",
		    store_errmsg(r->w->st), NULL);
	else if (store_hold_get(r->w->st, t.id, name, h) == 0)
		ret = web_reply_json(r, 200, hold_json(h, 0));
	else
		ret = web_reply_json(r, 200, json_pack("{s:s,s:s}", "name",
		    name, "state", "released"));
	sodium_memzero(h, sizeof *h);
	free(h);
	json_decref(b);
	return ret;
}

int web_api_holds(struct web_req *r, const char *path)
{
	char name[128];
	const char *rest;
	size_t n;

	if (strncmp(path, "holds", 5) || (path[5] && path[5] != '/'))
		return AR_ENOENT;
	path += 5;
	if (!*path) {
		if (!strcmp(r->method, "GET"))
			return web_require(r, HOLD_READ) ? MHD_YES :
			    holds_list(r);
		if (!strcmp(r->method, "POST"))
			return web_require(r, STORE_ROLE_LEGAL) ||
			    web_require_csrf(r) ? MHD_YES : hold_create(r);
		return web_reply_error(r, 405, "method_not_allowed",
		    "holds take GET or POST", NULL);
	}
	path++;
	n = strcspn(path, "/");
	rest = path + n;
	if (web_require(r, HOLD_READ))
		return MHD_YES;
	if (!n || n >= sizeof name)
		return web_deny(r, "hold", path);
	memcpy(name, path, n);
	name[n] = '\0';
	if (!*rest) {
		if (strcmp(r->method, "GET"))
			return web_reply_error(r, 405, "method_not_allowed",
			    "a hold takes GET", NULL);
		return hold_show(r, name);
	}
	if (!strcmp(rest, "/release")) {
		if (strcmp(r->method, "POST"))
			return web_reply_error(r, 405, "method_not_allowed",
			    "release takes POST", NULL);
		if (web_require(r, STORE_ROLE_LEGAL) || web_require_csrf(r))
			return MHD_YES;
		return hold_release(r, name);
	}
	return web_deny(r, "hold", path);
}

/* --- the holds covering one message -------------------------------------- */

struct cover_ctx {
	struct web_req *r;
	const store_object_t *o;
	json_t *a;
};

static int cover_cb(void *arg, const store_hold_t *h)
{
	struct cover_ctx *c = arg;
	int qm = 1;

	if (h->released)
		return 0;
	if (h->query[0]) {
		uint8_t *ids = NULL;
		size_t n = 0;
		char err[256];
		if (!c->r->w->idx || jobs_query_ids(c->r->w->idx, c->o->tenant,
		    h->query, &ids, &n, err, sizeof err))
			qm = -1;        /* unknown: covered (the safe side) */
		else
			qm = jobs_ids_has(ids, n, c->o->id);
		free(ids);
	}
	if (store_hold_covers(h, c->o, qm))
		json_array_append_new(c->a, json_string(h->name));
	return 0;
}

json_t *web_holds_covering(struct web_req *r, const store_object_t *obj)
{
	struct cover_ctx c = { r, obj, json_array() };
	store_hold_walk(r->w->st, r->sess.tenant, cover_cb, &c);
	return c.a;
}
