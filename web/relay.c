/*
 * relay.c - the gateway's relay queue in the console and API, for a
 * tenant's own domains: what waits per domain now (counts, oldest, next
 * attempt, last error, held), the counts per day (queued, delivered,
 * deferred, bounced, DSNs: store.h "relay queue's counts", JSON and a
 * chart drawn here as SVG), and the operator's actions of archivectl
 * relay: retry (every message of the tenant waiting is tried at once),
 * hold and release of a domain.
 *
 * Roles: an officer or an admin of the tenant reads; an admin acts (CSRF
 * token required).  A domain that is not the caller's tenant's - another
 * tenant's, or none - is 404 and a "denied" entry in the tenant's log.
 * Every read and every change is an entry in the tenant's log.  The
 * queue itself is read through archived's gateway (web_start_params_t
 * relay_queue); without a gateway the queue is empty and says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ar.h"
#include "web_priv.h"

#define READ_ROLES (STORE_ROLE_OFFICER | STORE_ROLE_ADMIN)
#define ACT_ROLES  STORE_ROLE_ADMIN

/* --- the queue now -------------------------------------------------------- */

struct dom_list {
	json_t *arr;
	const web_relay_queue_t *q;
	int *seen;
};

static json_t *time_or_null(int64_t t)
{
	char ts[32];
	return t ? json_string(ar_time_fmt(t, ts, sizeof ts)) : json_null();
}

static json_t *row(const char *name, const web_relay_domain_t *d, int held,
    int configured)
{
	static const web_relay_domain_t zero;

	if (!d)
		d = &zero;
	return json_pack("{s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:o, "
	    "s:s?, s:o}", "domain", name, "held", held, "configured",
	    configured, "pending", (json_int_t)d->pending, "deferred",
	    (json_int_t)d->deferred, "delivered", (json_int_t)d->delivered,
	    "bounced", (json_int_t)d->bounced, "quarantined",
	    (json_int_t)d->quarantined, "oldest", time_or_null(d->oldest),
	    "next_attempt", time_or_null(d->next_attempt), "last_error",
	    d->last_error[0] ? d->last_error : NULL, "last_error_time",
	    time_or_null(d->last_error_time));
}

/* Each domain of the tenant, with what waits for it (or zeros). */
static int dom_cb(void *arg, const store_domain_t *d)
{
	struct dom_list *l = arg;
	const web_relay_domain_t *hit = NULL;

	for (size_t i = 0; l->q && i < l->q->n; i++)
		if (!strcasecmp(l->q->domains[i].name, d->name)) {
			hit = &l->q->domains[i];
			l->seen[i] = 1;
		}
	json_array_append_new(l->arr, row(d->name, hit, d->held, 1));
	return 0;
}

static int relay_queue(struct web_req *r)
{
	web_relay_queue_t q;
	struct dom_list l;
	json_t *out;
	int rc, have = r->w->relay_queue != NULL;

	memset(&q, 0, sizeof q);
	if (have && (rc = r->w->relay_queue(r->w->relay_arg, r->sess.tenant,
	    &q))) {
		free(q.domains);
		return web_reply_error(r, 503, "unavailable", ar_strerror(rc),
		    NULL);
	}
	memset(&l, 0, sizeof l);
	l.arr = json_array();
	l.q = &q;
	if (q.n && !(l.seen = calloc(q.n, sizeof *l.seen))) {
		free(q.domains);
		json_decref(l.arr);
		return web_reply_error(r, 503, "unavailable", "out of memory",
		    NULL);
	}
	if ((rc = store_domain_walk(r->w->st, r->sess.tenant, dom_cb, &l))) {
		free(l.seen);
		free(q.domains);
		json_decref(l.arr);
		return web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
	}
	/* mail of the tenant to other domains: its DSNs and digests */
	for (size_t i = 0; i < q.n; i++)
		if (!l.seen[i])
			json_array_append_new(l.arr, row(q.domains[i].name,
			    &q.domains[i], 0, 0));
	out = json_pack("{s:b, s:I, s:I, s:o}", "gateway", have, "messages",
	    (json_int_t)q.messages, "unreadable", (json_int_t)q.unreadable,
	    "domains", l.arr);
	free(l.seen);
	free(q.domains);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "relay_queue", NULL,
	    NULL, NULL);
	return web_reply_json(r, 200, out);
}

/* --- counts per day ---------------------------------------------------------- */

struct rstats {
	int64_t first;
	size_t ndays;
	uint64_t (*n)[STORE_RS_COUNT];
};

static int rstats_cb(void *arg, int64_t day, const uint64_t n[STORE_RS_COUNT])
{
	struct rstats *s = arg;

	if (day >= s->first && (size_t)(day - s->first) < s->ndays)
		memcpy(s->n[day - s->first], n, sizeof s->n[0]);
	return 0;
}

/* The counts of the last days days (today included); 0 or answered. */
static int rstats_load(struct web_req *r, struct rstats *s)
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
	if (store_relay_stats_walk(r->w->st, r->sess.tenant, s->first, today,
	    rstats_cb, s)) {
		free(s->n);
		web_reply_error(r, 503, "unavailable", store_errmsg(r->w->st),
		    NULL);
		return 1;
	}
	return 0;
}

static int relay_stats(struct web_req *r)
{
	struct rstats s;
	json_t *days, *tot, *names;
	uint64_t sum[STORE_RS_COUNT] = { 0 };

	if (rstats_load(r, &s))
		return MHD_YES;
	days = json_array();
	tot = json_object();
	names = json_array();
	for (int k = 0; k < STORE_RS_COUNT; k++)
		json_array_append_new(names, json_string(
		    store_relay_stat_name(k)));
	for (size_t i = 0; i < s.ndays; i++) {
		json_t *c = json_object();
		char date[16];
		web_day_fmt(s.first + (int64_t)i, date, sizeof date);
		for (int k = 0; k < STORE_RS_COUNT; k++) {
			json_object_set_new(c, store_relay_stat_name(k),
			    json_integer((json_int_t)s.n[i][k]));
			sum[k] += s.n[i][k];
		}
		json_array_append_new(days, json_pack("{s:s, s:o}", "date", date,
		    "counts", c));
	}
	for (int k = 0; k < STORE_RS_COUNT; k++)
		json_object_set_new(tot, store_relay_stat_name(k), json_integer(
		    (json_int_t)sum[k]));
	free(s.n);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "relay_stats", NULL,
	    NULL, json_pack("{s:I}", "days", (json_int_t)s.ndays));
	return web_reply_json(r, 200, json_pack("{s:o, s:o, s:o}", "days",
	    days, "totals", tot, "names", names));
}

/* Delivered, deferred, bounced per day as stacked bars. */
static int relay_chart(struct web_req *r)
{
	static const char *names[] = { "delivered", "deferred", "bounced" };
	static const char *colors[] = { "#2e7d32", "#f9a825", "#c62828" };
	struct rstats s;
	web_chart_t c;
	uint64_t *v;
	GString *g;

	if (rstats_load(r, &s))
		return MHD_YES;
	if (!(v = calloc(s.ndays * 3, sizeof *v))) {
		free(s.n);
		return web_reply_error(r, 503, "unavailable", "out of memory",
		    NULL);
	}
	for (size_t i = 0; i < s.ndays; i++) {
		v[3 * i] = s.n[i][STORE_RS_DELIVERED];
		v[3 * i + 1] = s.n[i][STORE_RS_DEFERRED];
		v[3 * i + 2] = s.n[i][STORE_RS_BOUNCED];
	}
	memset(&c, 0, sizeof c);
	c.title = "Recipients delivered, deferred and bounced per day";
	c.first_day = s.first;
	c.ndays = s.ndays;
	c.nseries = 3;
	c.stride = 3;
	c.names = names;
	c.colors = colors;
	c.values = v;
	g = web_chart_svg(&c);
	free(v);
	free(s.n);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "relay_chart", NULL,
	    NULL, json_pack("{s:I}", "days", (json_int_t)s.ndays));
	return web_reply_svg(r, g);
}

/* --- actions ----------------------------------------------------------------- */

/* Ask the running gateway to try the tenant's waiting mail now. */
static int ask_retry(struct web_req *r)
{
	char th[2 * STORE_TENANT_LEN + 1], *text;
	json_t *j = json_pack("{s:s, s:s}", "op", "retry", "tenant",
	    ar_hex(r->sess.tenant, STORE_TENANT_LEN, th));
	int rc;

	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	rc = text ? store_gw_request_add(r->w->st, text) : AR_ENOMEM;
	free(text);
	return rc;
}

static int relay_retry(struct web_req *r)
{
	int rc = ask_retry(r);

	if (rc)
		return web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
	web_audit(r, r->sess.tenant, STORE_LOG_ADMIN, "relay_retry", NULL,
	    NULL, NULL);
	return web_reply_json(r, 202, json_pack("{s:s}", "status", "asked"));
}

static int relay_hold(struct web_req *r, const char *ref, int held)
{
	char name[STORE_DOMAIN_MAX];
	store_domain_t d;
	int rc;

	ar_strlcpy(name, ref, sizeof name);
	if (strlen(ref) >= sizeof name || store_domain_name_norm(name))
		return web_reply_error(r, 400, "bad_request", "not a domain "
		    "name", NULL);
	rc = store_domain_get(r->w->st, name, &d);
	if (rc == AR_ENOENT || (rc == 0 && memcmp(d.tenant, r->sess.tenant,
	    STORE_TENANT_LEN)))
		return web_deny(r, "relay_domain", name);
	if (rc)
		return web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
	if (d.held != held) {
		d.held = held;
		if ((rc = store_domain_set(r->w->st, &d)))
			return web_reply_error(r, 503, "unavailable",
			    store_errmsg(r->w->st), NULL);
	}
	/* released: what waited for it goes out now */
	if (!held && (rc = ask_retry(r)))
		ar_log(AR_LOG_WARN, "web relay release domain=%s status=no_retry "
		    "reason=\"%s\"", d.name, store_errmsg(r->w->st));
	web_audit(r, r->sess.tenant, STORE_LOG_ADMIN, held ? "relay_hold" :
	    "relay_release", NULL, NULL, json_pack("{s:s}", "domain", d.name));
	return web_reply_json(r, 200, json_pack("{s:s, s:b}", "domain", d.name,
	    "held", held));
}

/* --- dispatch ----------------------------------------------------------------- */

int web_api_relay(struct web_req *r, const char *path)
{
	int get = !strcmp(r->method, "GET");

	if (strcmp(path, "relay") && strncmp(path, "relay/", 6))
		return AR_ENOENT;
	path += 5;
	if (!strcmp(path, "/queue") || !strcmp(path, "/stats") ||
	    !strcmp(path, "/chart.svg")) {
		if (!get)
			return web_reply_error(r, 405, "method_not_allowed",
			    "the relay queue's views take GET", NULL);
		if (web_require(r, READ_ROLES))
			return MHD_YES;
		return path[1] == 'q' ? relay_queue(r) : path[1] == 's' ?
		    relay_stats(r) : relay_chart(r);
	}
	if (!strcmp(path, "/retry")) {
		if (strcmp(r->method, "POST"))
			return web_reply_error(r, 405, "method_not_allowed",
			    "retry takes POST", NULL);
		if (web_require(r, ACT_ROLES) || web_require_csrf(r))
			return MHD_YES;
		return relay_retry(r);
	}
	if (!strncmp(path, "/domains/", 9)) {
		const char *name = path + 9, *slash = strrchr(name, '/');
		char ref[STORE_DOMAIN_MAX + 8];
		size_t n = slash ? (size_t)(slash - name) : strlen(name);
		if (web_require(r, READ_ROLES))
			return MHD_YES;
		ar_strlcpy(ref, name, n + 1 < sizeof ref ? n + 1 : sizeof ref);
		if (!slash || (strcmp(slash, "/hold") && strcmp(slash,
		    "/release")))
			return web_deny(r, "relay_domain", ref);
		if (strcmp(r->method, "POST"))
			return web_reply_error(r, 405, "method_not_allowed",
			    "hold and release take POST", NULL);
		if (web_require(r, ACT_ROLES) || web_require_csrf(r))
			return MHD_YES;
		return relay_hold(r, ref, slash[1] == 'h');
	}
	return AR_ENOENT;
}
