/*
 * ctl_relay.c - archivectl relay (the gateway's delivery queue: what waits
 * per domain, retries, bounces, holds) and archivectl quarantine (list,
 * show, get, release, delete).
 *
 * The relay queue is read-only here (archived holds it): a retry or a
 * bounce is a request the running gateway takes from the catalog within
 * seconds (store_gw_request_add); hold and release change the domain's
 * record, which the gateway reads before each delivery.  A quarantine
 * release is asked in the catalog too; the gateway queues the message.
 * Every read of quarantined mail and every change is in the tenant's log.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ar.h"
#include "ctl.h"
#include "gateway/gateway.h"
#include "spool/spool.h"

/* --- relay queue ------------------------------------------------------------ */

struct rq_ctx {
	struct ctl *c;
	json_t *list;               /* --entries */
};

static int rq_entry(void *arg, const spool_entry_t *e, const char *state)
{
	struct rq_ctx *q = arg;
	store_tenant_t t;
	json_t *st = json_loads(state, 0, NULL), *o;
	char hex[33];

	if (!st)
		return 0;
	o = json_pack("{s:s, s:I, s:O, s:O}", "id", ar_hex(e->id, 16, hex),
	    "age_seconds", (json_int_t)e->age, "verdict", json_object_get(st,
	    "verdict"), "recipients", json_object_get(st, "rcpts"));
	if (store_tenant_get_id(q->c->st, e->tenant, &t) == 0)
		json_object_set_new(o, "tenant", json_string(t.name));
	json_array_append_new(q->list, o);
	json_decref(st);
	return 0;
}

/* The relay queue, read-only; *out is the caller's. */
static int rq_open(struct ctl *c, spool_t **out)
{
	char dir[AR_CONF_STR_MAX + 16];
	int rc;

	ar_config_path(&c->cfg, "relay", dir, sizeof dir);
	if ((rc = spool_open_flags(out, dir, c->ks, SPOOL_READONLY |
	    SPOOL_STATEFUL)))
		return ctl_fail(rc, "relay queue %s: %s", dir, spool_errmsg());
	return 0;
}

static int relay_queue(struct ctl *c, const store_tenant_t *t, int entries)
{
	gateway_queue_summary_t s;
	struct rq_ctx q;
	spool_t *sp;
	char ts[32];
	int rc;

	memset(&q, 0, sizeof q);
	q.c = c;
	if (entries)
		q.list = json_array();
	if ((rc = rq_open(c, &sp))) {
		json_decref(q.list);
		return rc;
	}
	rc = gateway_queue_summary(sp, t ? t->id : NULL, entries ? rq_entry :
	    NULL, &q, &s);
	spool_close(sp);
	if (rc) {
		json_decref(q.list);
		return ctl_fail(rc, "relay queue: %s", spool_errmsg());
	}
	if (c->json) {
		json_t *o = json_object(), *doms = json_array();
		for (size_t i = 0; i < s.n; i++) {
			gateway_queue_domain_t *d = &s.domains[i];
			char nx[32];
			json_array_append_new(doms, json_pack("{s:s, s:I, s:I, "
			    "s:I, s:I, s:I, s:s, s:s, s:s?}", "domain", d->name,
			    "pending", (json_int_t)d->pending, "deferred",
			    (json_int_t)d->deferred, "bounced",
			    (json_int_t)d->bounced, "quarantined",
			    (json_int_t)d->quarantined, "delivered",
			    (json_int_t)d->delivered, "oldest",
			    ar_time_fmt(d->oldest, ts, sizeof ts), "last_error",
			    d->last_error, "next_attempt", d->next_attempt ?
			    ar_time_fmt(d->next_attempt, nx, sizeof nx) : NULL));
		}
		json_object_set_new(o, "messages", json_integer(
		    (json_int_t)s.messages));
		json_object_set_new(o, "unreadable", json_integer(
		    (json_int_t)s.unreadable));
		json_object_set_new(o, "domains", doms);
		if (q.list)
			json_object_set_new(o, "entries", q.list);
		ctl_json_out(o);
	} else {
		printf("%llu messages in the relay queue%s\n",
		    (unsigned long long)s.messages, s.unreadable ?
		    " (some state unreadable: key service?)" : "");
		if (s.n)
			printf("%-30s %7s %8s %7s %11s  %-20s  %s\n", "DOMAIN",
			    "PENDING", "DEFERRED", "BOUNCED", "QUARANTINED",
			    "OLDEST", "LAST ERROR");
		for (size_t i = 0; i < s.n; i++) {
			gateway_queue_domain_t *d = &s.domains[i];
			printf("%-30s %7llu %8llu %7llu %11llu  %-20s  %s\n",
			    d->name, (unsigned long long)d->pending,
			    (unsigned long long)d->deferred,
			    (unsigned long long)d->bounced,
			    (unsigned long long)d->quarantined,
			    ar_time_fmt(d->oldest, ts, sizeof ts),
			    d->last_error);
		}
		if (q.list) {
			char *j = json_dumps(q.list, JSON_INDENT(2));
			if (j)
				printf("%s\n", j);
			free(j);
			json_decref(q.list);
		}
	}
	gateway_queue_summary_clear(&s);
	return CTL_OK;
}

/* --- relay counts (archivectl relay stats) ------------------------------------- */

struct rs_day {
	int64_t day;
	uint64_t n[STORE_RS_COUNT];
};

struct rs_ctx {
	struct rs_day *d;
	size_t n, cap;
};

static int rs_cb(void *arg, int64_t day, const uint64_t n[STORE_RS_COUNT])
{
	struct rs_ctx *x = arg;

	if (ar_grow((void **)&x->d, &x->cap, x->n, sizeof *x->d))
		return AR_ENOMEM;
	x->d[x->n].day = day;
	memcpy(x->d[x->n].n, n, sizeof x->d[x->n].n);
	x->n++;
	return 0;
}

static const char *day_fmt(int64_t day, char *buf, size_t len)
{
	time_t tt = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d", &tm);
	return buf;
}

/* One tenant's counts of the last days days (0: since its first) and its
 * queue now; a JSON object, or NULL with the failure printed (*rc). */
static json_t *tenant_stats(struct ctl *c, spool_t *sp,
    const store_tenant_t *t, long days, int *rc)
{
	struct rs_ctx x = { NULL, 0, 0 };
	gateway_queue_summary_t s;
	uint64_t tot[STORE_RS_COUNT] = { 0 }, waiting = 0, deferred = 0;
	int64_t today = ar_now() / 86400, oldest = 0;
	json_t *o, *arr = json_array(), *to = json_object(), *q;
	char d[16], ts[32];

	if ((*rc = store_relay_stats_walk(c->st, t->id, days ? today - days +
	    1 : 0, today, rs_cb, &x))) {
		*rc = ctl_fail(*rc, "relay stats: %s", store_errmsg(c->st));
		goto fail;
	}
	if (sp && (*rc = gateway_queue_summary(sp, t->id, NULL, NULL, &s))) {
		*rc = ctl_fail(*rc, "relay queue: %s", spool_errmsg());
		goto fail;
	}
	for (size_t i = 0; i < x.n; i++) {
		json_t *c1 = json_object();
		for (int k = 0; k < STORE_RS_COUNT; k++) {
			json_object_set_new(c1, store_relay_stat_name(k),
			    json_integer((json_int_t)x.d[i].n[k]));
			tot[k] += x.d[i].n[k];
		}
		json_object_set_new(c1, "date", json_string(day_fmt(x.d[i].day,
		    d, sizeof d)));
		json_array_append_new(arr, c1);
	}
	for (int k = 0; k < STORE_RS_COUNT; k++)
		json_object_set_new(to, store_relay_stat_name(k), json_integer(
		    (json_int_t)tot[k]));
	o = json_pack("{s:s, s:s?, s:o, s:o}", "tenant", t->name, "since",
	    x.n ? day_fmt(x.d[0].day, d, sizeof d) : NULL, "totals", to,
	    "days", arr);
	if (sp) {
		for (size_t i = 0; i < s.n; i++) {
			waiting += s.domains[i].pending + s.domains[i].deferred;
			deferred += s.domains[i].deferred;
			if (s.domains[i].pending + s.domains[i].deferred &&
			    (!oldest || s.domains[i].oldest < oldest))
				oldest = s.domains[i].oldest;
		}
		q = json_pack("{s:I, s:I, s:I, s:s?}", "messages", (json_int_t)
		    s.messages, "waiting", (json_int_t)waiting, "deferred",
		    (json_int_t)deferred, "oldest", oldest ? ar_time_fmt(oldest,
		    ts, sizeof ts) : NULL);
		json_object_set_new(o, "queue", q);
		gateway_queue_summary_clear(&s);
	}
	free(x.d);
	return o;
fail:
	free(x.d);
	json_decref(arr);
	json_decref(to);
	return NULL;
}

struct rs_all {
	struct ctl *c;
	spool_t *sp;
	long days;
	json_t *arr;
	int rc;
};

static int rs_tenant(void *arg, const store_tenant_t *t)
{
	struct rs_all *a = arg;
	json_t *o;

	if (t->state == STORE_TENANT_SHREDDED)
		return 0;
	if (!(o = tenant_stats(a->c, a->sp, t, a->days, &a->rc)))
		return AR_EIO;
	json_array_append_new(a->arr, o);
	return 0;
}

static void rs_print(const json_t *o)
{
	const json_t *to = json_object_get(o, "totals"), *q =
	    json_object_get(o, "queue"), *x;
	size_t i;

	printf("%s: since %s: %lld queued, %lld delivered, %lld deferred "
	    "attempts, %lld bounced, %lld DSNs sent\n",
	    json_string_value(json_object_get(o, "tenant")),
	    json_is_string(json_object_get(o, "since")) ?
	    json_string_value(json_object_get(o, "since")) : "-",
	    (long long)json_integer_value(json_object_get(to, "queued")),
	    (long long)json_integer_value(json_object_get(to, "delivered")),
	    (long long)json_integer_value(json_object_get(to, "deferred")),
	    (long long)json_integer_value(json_object_get(to, "bounced")),
	    (long long)json_integer_value(json_object_get(to, "dsn")));
	if (q)
		printf("  in the queue now: %lld messages, %lld recipients "
		    "waiting (%lld deferred)%s%s\n", (long long)
		    json_integer_value(json_object_get(q, "messages")),
		    (long long)json_integer_value(json_object_get(q,
		    "waiting")), (long long)json_integer_value(
		    json_object_get(q, "deferred")), json_is_string(
		    json_object_get(q, "oldest")) ? ", oldest " : "",
		    json_is_string(json_object_get(q, "oldest")) ?
		    json_string_value(json_object_get(q, "oldest")) : "");
	if (json_array_size(json_object_get(o, "days")))
		printf("  %-10s %8s %9s %8s %8s %5s\n", "DAY (UTC)", "QUEUED",
		    "DELIVERED", "DEFERRED", "BOUNCED", "DSN");
	json_array_foreach(json_object_get(o, "days"), i, x)
		printf("  %-10s %8lld %9lld %8lld %8lld %5lld\n",
		    json_string_value(json_object_get(x, "date")),
		    (long long)json_integer_value(json_object_get(x, "queued")),
		    (long long)json_integer_value(json_object_get(x,
		    "delivered")), (long long)json_integer_value(
		    json_object_get(x, "deferred")), (long long)
		    json_integer_value(json_object_get(x, "bounced")),
		    (long long)json_integer_value(json_object_get(x, "dsn")));
}

static int relay_stats(struct ctl *c, const store_tenant_t *t, long days)
{
	struct rs_all a = { c, NULL, days, json_array(), 0 };
	char dir[AR_CONF_STR_MAX + 16];
	json_t *o;
	size_t i;
	int rc;

	/* the queue as it is now, when there is one (no gateway: counts
	 * only) */
	ar_config_path(&c->cfg, "relay", dir, sizeof dir);
	if (access(dir, F_OK) == 0 && (rc = rq_open(c, &a.sp))) {
		json_decref(a.arr);
		return rc;
	}
	if (t) {
		if ((o = tenant_stats(c, a.sp, t, days, &a.rc)))
			json_array_append_new(a.arr, o);
		rc = o ? 0 : AR_EIO;
	} else {
		rc = store_tenant_walk(c->st, rs_tenant, &a);
		if (rc && !a.rc)
			a.rc = ctl_fail(rc, "relay stats: %s",
			    store_errmsg(c->st));
	}
	if (a.sp)
		spool_close(a.sp);
	if (rc) {
		json_decref(a.arr);
		return a.rc ? a.rc : CTL_FAIL;
	}
	if (c->json) {
		ctl_json_out(t ? json_incref(json_array_get(a.arr, 0)) :
		    json_pack("{s:o}", "tenants", json_incref(a.arr)));
	} else {
		json_array_foreach(a.arr, i, o)
			rs_print(o);
	}
	json_decref(a.arr);
	return CTL_OK;
}

static int request(struct ctl *c, const char *op, const store_tenant_t *t,
    const char *idhex)
{
	uint8_t id[16];
	char th[33];
	json_t *r = json_pack("{s:s}", "op", op);
	char *text;
	int rc;

	if (idhex) {
		if (ar_unhex(idhex, id, 16))
			return ctl_usage("'%s' is not a queue id (32 hex digits)",
			    idhex);
		json_object_set_new(r, "tenant", json_string(ar_hex(t->id, 16,
		    th)));
		json_object_set_new(r, "id", json_string(idhex));
	}
	text = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	rc = text ? store_gw_request_add(c->st, text) : AR_ENOMEM;
	free(text);
	if (rc)
		return ctl_fail(rc, "relay %s: %s", op, store_errmsg(c->st));
	if (!c->json)
		printf("relay %s: asked; the running gateway does it within a "
		    "few seconds\n", op);
	return CTL_OK;
}

static int hold(struct ctl *c, const char *name, int held)
{
	store_domain_t d;
	int rc;

	if ((rc = store_domain_get(c->st, name, &d)))
		return ctl_fail(rc, "no gateway domain %s", name);
	d.held = held;
	if ((rc = store_domain_set(c->st, &d)))
		return ctl_fail(rc, "relay %s %s: %s", held ? "hold" : "release",
		    name, store_errmsg(c->st));
	if (!c->json)
		printf("%s: %s\n", d.name, held ? "held (queued mail waits)" :
		    "released (delivery resumes)");
	if (!held)
		return request(c, "retry", NULL, NULL);
	return CTL_OK;
}

int cmd_relay(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "entries", no_argument, NULL, 'e' },
		{ "days", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *verb;
	store_tenant_t t;
	int ch, rc, entries = 0;
	long days = 0;

	if (argc < 2)
		return ctl_usage("relay queue|stats|retry|bounce|hold|release");
	verb = argv[1];
	optind = 0;
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "t:ed:", opts, NULL)) != -1) {
		char *end;
		if (ch == 't') {
			tenant = optarg;
		} else if (ch == 'e') {
			entries = 1;
		} else if (ch == 'd' && strcmp(verb, "stats")) {
			return ctl_usage("--days is an option of relay stats");
		} else if (ch == 'd') {
			days = strtol(optarg, &end, 10);
			if (*end || end == optarg || days < 1 || days > 3660)
				return ctl_usage("--days '%s': a number of days, "
				    "1 to 3660", optarg);
		} else {
			return ctl_usage("relay %s [--tenant NAME]", verb);
		}
	}
	if (tenant && (rc = ctl_tenant(c, tenant, &t)))
		return rc;
	if (!strcmp(verb, "queue")) {
		if (optind != argc)
			return ctl_usage("relay queue [--tenant NAME] [--entries]");
		return relay_queue(c, tenant ? &t : NULL, entries);
	}
	if (!strcmp(verb, "stats")) {
		if (optind != argc)
			return ctl_usage("relay stats [--tenant NAME] [--days N]");
		return relay_stats(c, tenant ? &t : NULL, days);
	}
	if (!strcmp(verb, "retry")) {
		if (optind == argc)
			return request(c, "retry", NULL, NULL);
		if (!tenant || optind + 1 != argc)
			return ctl_usage("relay retry [--tenant NAME ID]");
		return request(c, "retry", &t, argv[optind]);
	}
	if (!strcmp(verb, "bounce")) {
		if (!tenant || optind + 1 != argc)
			return ctl_usage("relay bounce --tenant NAME ID");
		return request(c, "bounce", &t, argv[optind]);
	}
	if (!strcmp(verb, "hold") || !strcmp(verb, "release")) {
		if (optind + 1 != argc)
			return ctl_usage("relay %s DOMAIN", verb);
		return hold(c, argv[optind], !strcmp(verb, "hold"));
	}
	return ctl_usage("relay: queue, stats, retry, bounce, hold or release, "
	    "not '%s'", verb);
}

/* --- quarantine -------------------------------------------------------------- */

static const char *q_state(int s)
{
	static const char *n[] = { "held", "release asked", "released",
	    "deleted" };
	return s >= 0 && s < 4 ? n[s] : "?";
}

struct ql_ctx {
	struct ctl *c;
	json_t *arr;
	const char *rcpt, *sender, *verdict;
	int64_t since;
};

static int has_rcpt(const json_t *env, const char *rcpt)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(env, "rcpt_to"), i, r)
		if (json_string_value(r) && !strcasecmp(json_string_value(r),
		    rcpt))
			return 1;
	return 0;
}

static json_t *q_json(const store_quarantine_t *q, json_t *d)
{
	char hex[33], ts[32], ex[32];
	json_t *env = json_object_get(d, "envelope");
	json_t *v = json_object_get(d, "verdict");
	json_t *h = json_object_get(d, "header");

	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:O?, s:O?, s:O?, s:O?, "
	    "s:O?, s:O?}", "id", ar_hex(q->id, 16, hex), "state",
	    q_state(q->state), "received", ar_time_fmt(q->received, ts,
	    sizeof ts), "expires", ar_time_fmt(q->expires, ex, sizeof ex),
	    "size", (json_int_t)q->size, "mail_from", json_object_get(env,
	    "mail_from"), "rcpt_to", json_object_get(env, "rcpt_to"),
	    "subject", json_object_get(h, "subject"), "verdict",
	    json_object_get(v, "verdict"), "reasons", json_object_get(v,
	    "reasons"), "score", json_object_get(v, "score"));
}

static int ql_cb(void *arg, const store_quarantine_t *q)
{
	struct ql_ctx *l = arg;
	json_t *d = json_loads(q->details, 0, NULL), *env, *o;
	const char *from, *kind;

	if (!d)
		return 0;
	env = json_object_get(d, "envelope");
	from = json_string_value(json_object_get(env, "mail_from"));
	kind = json_string_value(json_object_get(json_object_get(d, "verdict"),
	    "verdict"));
	if ((l->rcpt && !has_rcpt(env, l->rcpt)) || (l->sender && (!from ||
	    !strcasestr(from, l->sender))) || (l->verdict && (!kind ||
	    strcmp(kind, l->verdict))) || q->received < l->since) {
		json_decref(d);
		return 0;
	}
	o = q_json(q, d);
	if (l->c->json) {
		json_array_append(l->arr, o);
	} else {
		char hex[33], ts[32];
		json_t *h = json_object_get(d, "header");
		printf("%s  %-13s %s  %-10s %-30.30s %.40s\n", ar_hex(q->id, 16,
		    hex), q_state(q->state), ar_time_fmt(q->received, ts,
		    sizeof ts), kind ? kind : "?", from ? from : "",
		    json_string_value(json_object_get(h, "subject")) ?
		    json_string_value(json_object_get(h, "subject")) : "");
	}
	json_decref(o);
	json_decref(d);
	return 0;
}

int cmd_quarantine(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "recipient", required_argument, NULL, 'r' },
		{ "sender", required_argument, NULL, 's' },
		{ "verdict", required_argument, NULL, 'v' },
		{ "since", required_argument, NULL, 'S' },
		{ "allow-sender", no_argument, NULL, 'a' },
		{ "reason", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct ql_ctx l;
	const char *tenant = NULL, *verb, *reason = NULL;
	store_tenant_t t;
	store_quarantine_t q;
	uint8_t id[16];
	int ch, rc, allow = 0;

	if (argc < 2)
		return ctl_usage("quarantine list|show|get|release|delete "
		    "--tenant NAME ...");
	memset(&l, 0, sizeof l);
	l.c = c;
	verb = argv[1];
	optind = 0;
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "t:r:s:v:S:aR:", opts, NULL)) !=
	    -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'r': l.rcpt = optarg; break;
		case 's': l.sender = optarg; break;
		case 'v': l.verdict = optarg; break;
		case 'a': allow = 1; break;
		case 'R': reason = optarg; break;
		case 'S': {
			int64_t days;
			if (ar_conf_parse_number(optarg, AR_CONF_SECONDS, &days)
			    || days < 0)
				return ctl_usage("--since '%s': an age such as "
				    "2d or 12h", optarg);
			l.since = ar_now() - days;
			break;
		}
		default:
			return ctl_usage("quarantine %s --tenant NAME", verb);
		}
	}
	if (!tenant)
		return ctl_usage("quarantine %s needs --tenant NAME", verb);
	if ((rc = ctl_tenant(c, tenant, &t)))
		return rc;
	if (!strcmp(verb, "list")) {
		if (optind != argc)
			return ctl_usage("quarantine list takes filters only "
			    "(--recipient, --sender, --verdict, --since)");
		if ((rc = ctl_audit(c, &t, "quarantine-list", NULL)))
			return rc;
		l.arr = json_array();
		rc = store_quarantine_walk(c->st, t.id, ql_cb, &l);
		if (rc) {
			json_decref(l.arr);
			return ctl_fail(rc, "quarantine: %s", store_errmsg(c->st));
		}
		if (c->json)
			ctl_json_out(l.arr);
		else
			json_decref(l.arr);
		return CTL_OK;
	}
	if (optind + 1 != argc)
		return ctl_usage("quarantine %s --tenant NAME ID", verb);
	if ((rc = ctl_object_id(argv[optind], id)))
		return rc;
	if ((rc = store_quarantine_get(c->st, t.id, id, &q))) {
		/* an id of another tenant (or none): refused, and the attempt
		 * audited in this tenant's log */
		if (rc == AR_ENOENT) {
			char action[64];
			snprintf(action, sizeof action, "quarantine-%s-refused",
			    verb);
			(void)ctl_audit(c, &t, action, id);
		}
		return ctl_fail(rc, "quarantine %s: %s", argv[optind],
		    rc == AR_ENOENT ? "no such quarantined message" :
		    store_errmsg(c->st));
	}
	if (!strcmp(verb, "show")) {
		json_t *d = json_loads(q.details, 0, NULL), *o;
		if ((rc = ctl_audit(c, &t, "quarantine-show", id)) == 0) {
			o = q_json(&q, d ? d : json_object());
			if (d)
				json_object_set(o, "details", d);
			if (c->json) {
				ctl_json_out(o);
			} else {
				char *s = json_dumps(o, JSON_INDENT(2));
				printf("%s\n", s ? s : "");
				free(s);
				json_decref(o);
			}
		}
		json_decref(d);
		store_quarantine_clear(&q);
		return rc ? rc : CTL_OK;
	}
	if (!strcmp(verb, "get")) {
		store_reader_t *r;
		char buf[65536];
		size_t got;
		store_quarantine_clear(&q);
		if (isatty(STDOUT_FILENO))
			return ctl_usage("quarantine get writes the message to "
			    "standard output: redirect it to a file");
		if ((rc = ctl_audit(c, &t, "quarantine-get", id)))
			return rc;
		if ((rc = store_quarantine_open(c->st, t.id, id, &r)))
			return ctl_fail(rc, "quarantine get: %s",
			    store_errmsg(c->st));
		while ((rc = store_reader_read(r, buf, sizeof buf, &got)) == 0 &&
		    got)
			if (fwrite(buf, 1, got, stdout) != got) {
				rc = AR_EIO;
				break;
			}
		store_reader_close(r);
		return rc ? ctl_fail(rc, "quarantine get: %s", ar_strerror(rc))
		    : CTL_OK;
	}
	if (!strcmp(verb, "release") || !strcmp(verb, "delete")) {
		int release = !strcmp(verb, "release");
		json_t *d = json_loads(q.details, 0, NULL);
		const char *from = json_string_value(json_object_get(
		    json_object_get(d, "envelope"), "mail_from"));
		const char *user = getenv("USER");
		char who[128];
		store_quarantine_clear(&q);
		snprintf(who, sizeof who, "archivectl:%s", user ? user : "?");
		rc = store_quarantine_set_state(c->st, t.id, id, release ?
		    STORE_Q_RELEASE : STORE_Q_DELETED, who, reason);
		if (rc == 0 && release && allow && from && from[0])
			rc = store_gw_list_add(c->st, t.id, STORE_GW_ALLOW, "",
			    from);
		json_decref(d);
		if (rc)
			return ctl_fail(rc, "quarantine %s: %s", verb,
			    store_errmsg(c->st));
		if (!c->json)
			printf("%s: %s\n", argv[optind], release ? "release "
			    "asked; the gateway delivers it within seconds" :
			    "deleted");
		return CTL_OK;
	}
	store_quarantine_clear(&q);
	return ctl_usage("quarantine: list, show, get, release or delete, not "
	    "'%s'", verb);
}
