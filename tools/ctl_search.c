/*
 * ctl_search.c - archivectl search, reindex and reconcile, and the index
 * helpers other commands share (open, catch up after an import, lag).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ar.h"
#include "ctl.h"

int ctl_search_open(struct ctl *c)
{
	search_open_params_t p;
	int rc;

	if (c->idx)
		return 0;
	memset(&p, 0, sizeof p);
	p.data_dir = c->cfg.data_dir;
	p.ks = c->ks;
	p.shard_cache = (size_t)c->cfg.index_shard_cache;
	p.open_shards = (int)c->cfg.index_open_shards;
	p.batch_bytes = (size_t)c->cfg.index_batch_bytes;
	p.body_max = (size_t)c->cfg.index_body_max;
	p.terms_max = (size_t)c->cfg.index_terms_max;
	p.language = SEARCH_LANGUAGE_DEFAULT;
	if ((rc = search_open(&c->idx, &p)))
		return ctl_fail(rc, "index: %s", search_errmsg(NULL));
	return 0;
}

int ctl_index_sync(struct ctl *c, const store_tenant_t *t,
    search_sync_stats_t *s)
{
	int rc;
	if ((rc = ctl_search_open(c)))
		return rc;
	if ((rc = search_sync(c->idx, c->st, t->id, 0, s)))
		return ctl_fail(rc, "index %s: %s (the messages are stored; "
		    "archived or 'archivectl reconcile' indexes them later)",
		    t->name, search_errmsg(c->idx));
	return 0;
}

/* --- search ------------------------------------------------------------------ */

/* The query words of argv[first..argc) joined by spaces (malloc'd). */
static char *join_args(int argc, char **argv, int first)
{
	size_t n = 1;
	char *q;
	for (int i = first; i < argc; i++)
		n += strlen(argv[i]) + 1;
	if (!(q = calloc(1, n)))
		return NULL;
	for (int i = first; i < argc; i++) {
		if (i > first)
			strcat(q, " ");
		strcat(q, argv[i]);
	}
	return q;
}

/* An access entry for a search: the query is in the entry's detail,
 * which the store keeps encrypted with the tenant's key. */
static int audit_search(struct ctl *c, const store_tenant_t *t,
    const char *query, const char *order, int limit, int paged,
    const search_results_t *r)
{
	json_t *d = json_object();
	const char *user = getenv("USER");
	char *s;
	int rc;

	json_object_set_new(d, "action", json_string("search"));
	json_object_set_new(d, "by", json_string("archivectl"));
	json_object_set_new(d, "user", json_string(user ? user : "?"));
	json_object_set_new(d, "uid", json_integer(getuid()));
	json_object_set_new(d, "query", json_string(query));
	json_object_set_new(d, "order", json_string(order));
	json_object_set_new(d, "limit", json_integer(limit));
	json_object_set_new(d, "next_page", json_boolean(paged));
	json_object_set_new(d, "total", json_integer(
	    (json_int_t)search_results_total(r)));
	json_object_set_new(d, "returned", json_integer(
	    (json_int_t)search_results_count(r)));
	s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (!s)
		return ctl_fail(AR_ENOMEM, "audit log: out of memory");
	rc = store_log_append(c->st, t->id, STORE_LOG_ACCESS, NULL, NULL, s,
	    NULL);
	free(s);
	if (rc)
		return ctl_fail(rc, "audit log: %s", store_errmsg(c->st));
	return 0;
}

static void print_results(struct ctl *c, const search_results_t *r,
    int by_rank, int64_t us)
{
	size_t n = search_results_count(r);
	const char *next = search_results_next_cursor(r);
	char hex[2 * SEARCH_ID_LEN + 1], ts[32];

	if (c->json) {
		json_t *j = json_object(), *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			const search_row_t *w = search_results_row(r, i);
			json_t *o = json_object();
			json_object_set_new(o, "id", json_string(ar_hex(w->id,
			    SEARCH_ID_LEN, hex)));
			json_object_set_new(o, "date", json_string(ar_time_fmt(
			    w->date, ts, sizeof ts)));
			json_object_set_new(o, "size",
			    json_integer((json_int_t)w->size));
			json_object_set_new(o, "from", json_string(w->from));
			json_object_set_new(o, "to", json_string(w->to));
			json_object_set_new(o, "subject", json_string(w->subject));
			json_object_set_new(o, "has_attachment",
			    json_boolean(w->has_attachment));
			json_object_set_new(o, "verdict", w->verdict ?
			    json_string(search_verdict_name(w->verdict)) :
			    json_null());
			json_object_set_new(o, "quarantined",
			    json_boolean(w->quarantined));
			if (by_rank)
				json_object_set_new(o, "rank", json_real(w->rank));
			json_array_append_new(arr, o);
		}
		json_object_set_new(j, "total", json_integer(
		    (json_int_t)search_results_total(r)));
		json_object_set_new(j, "count", json_integer((json_int_t)n));
		json_object_set_new(j, "next_cursor", next ? json_string(next) :
		    json_null());
		json_object_set_new(j, "results", arr);
		json_object_set_new(j, "elapsed_ms", json_real((double)us / 1e3));
		ctl_json_out(j);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const search_row_t *w = search_results_row(r, i);
		printf("%s  %s  %-30.30s  %.70s\n", ar_hex(w->id, SEARCH_ID_LEN,
		    hex), ar_time_fmt(w->date, ts, sizeof ts), w->from,
		    w->subject);
	}
	printf("%zu of %llu messages", n,
	    (unsigned long long)search_results_total(r));
	if (next)
		printf("; next page: --cursor %s", next);
	putchar('\n');
}

int cmd_search(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "limit", required_argument, NULL, 'l' },
		{ "cursor", required_argument, NULL, 'c' },
		{ "order", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage[] = "usage: archivectl search --tenant NAME "
	    "[--json] [--limit N] [--cursor C] [--order date|rank] QUERY";
	const char *tenant = NULL, *order = "date";
	search_options_t so;
	search_results_t *r = NULL;
	search_query_t *pq = NULL;
	store_tenant_t t;
	char err[512], *q, *end;
	long limit = SEARCH_LIMIT_DEFAULT;
	int ch, rc;

	memset(&so, 0, sizeof so);
	optind = 0;
	while ((ch = getopt_long(argc, argv, "t:l:c:o:", opts, NULL)) != -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'c': so.cursor = optarg; break;
		case 'o': order = optarg; break;
		case 'l':
			limit = strtol(optarg, &end, 10);
			if (*end || end == optarg || limit < 1 ||
			    limit > SEARCH_LIMIT_MAX)
				return ctl_usage("--limit must be 1..%d, not '%s'",
				    SEARCH_LIMIT_MAX, optarg);
			break;
		default: return ctl_usage("%s", usage);
		}
	}
	if (!tenant)
		return ctl_usage("search needs --tenant NAME");
	if (optind >= argc)
		return ctl_usage("search needs a QUERY ('' lists everything)");
	if (strcmp(order, "date") && strcmp(order, "rank"))
		return ctl_usage("--order is 'date' or 'rank', not '%s'", order);
	so.order = strcmp(order, "rank") ? SEARCH_BY_DATE : SEARCH_BY_RANK;
	so.limit = (int)limit;
	if (!(q = join_args(argc, argv, optind)))
		return ctl_fail(AR_ENOMEM, "out of memory");
	/* a syntax error is the command line's fault: exit 2, nothing logged */
	rc = search_query_parse(q, &pq, err, sizeof err);
	search_query_free(pq);
	if (rc == AR_ESYNTAX) {
		fprintf(stderr, "archivectl: search: bad query: %s\n", err);
		free(q);
		return CTL_USAGE;
	}
	if (rc || (rc = ctl_tenant(c, tenant, &t)) ||
	    (rc = ctl_search_open(c))) {
		free(q);
		return rc < 0 ? ctl_fail(rc, "search: %s", ar_strerror(rc)) : rc;
	}
	int64_t t0 = ar_mono_us();
	rc = search_run(c->idx, t.id, q, &so, &r);
	int64_t us = ar_mono_us() - t0;
	if (rc == AR_EINVAL && so.cursor) {
		free(q);
		fprintf(stderr, "archivectl: search: --cursor: %s (a cursor "
		    "belongs to one tenant, query and order)\n",
		    search_errmsg(c->idx));
		return CTL_USAGE;
	}
	if (rc) {
		rc = ctl_fail(rc, "search: %s", search_errmsg(c->idx));
		free(q);
		return rc;
	}
	/* logged before a single result is shown */
	rc = audit_search(c, &t, q, order, so.limit, so.cursor != NULL, r);
	free(q);
	if (rc == 0)
		print_results(c, r, so.order == SEARCH_BY_RANK, us);
	search_results_free(r);
	return rc;
}

/* --- reindex and reconcile -------------------------------------------------- */

struct each {
	struct ctl *c;
	int reindex;
	json_t *arr;
	int rc;
};

static int each_tenant(void *arg, const store_tenant_t *t)
{
	struct each *e = arg;
	struct ctl *c = e->c;
	int64_t t0 = ar_mono_us();
	double secs;
	int rc;

	if (t->state == STORE_TENANT_SHREDDED)
		return 0;
	if (e->reindex) {
		search_sync_stats_t s;
		rc = search_reindex(c->idx, c->st, t->id, &s);
		secs = (double)(ar_mono_us() - t0) / 1e6;
		if (rc) {
			e->rc = ctl_fail(rc, "reindex %s: %s", t->name,
			    search_errmsg(c->idx));
			return 1;
		}
		if (c->json) {
			json_t *j = json_object();
			json_object_set_new(j, "tenant", json_string(t->name));
			json_object_set_new(j, "indexed", json_integer(
			    (json_int_t)s.indexed));
			json_object_set_new(j, "unreadable", json_integer(
			    (json_int_t)s.failed));
			json_object_set_new(j, "log_seq", json_integer(
			    (json_int_t)s.seq));
			json_object_set_new(j, "seconds", json_real(secs));
			json_array_append_new(e->arr, j);
		} else {
			printf("reindexed %s: %llu messages (%llu unreadable, "
			    "indexed by date and size only) in %.2f s, %.0f "
			    "msg/s\n", t->name, (unsigned long long)s.indexed,
			    (unsigned long long)s.failed, secs,
			    secs > 0 ? (double)s.indexed / secs : 0.0);
		}
		return 0;
	}
	search_reconcile_stats_t s;
	search_sync_stats_t rs;
	if ((rc = search_reconcile(c->idx, c->st, t->id, &s))) {
		e->rc = ctl_fail(rc, "reconcile %s: %s", t->name,
		    search_errmsg(c->idx));
		return 1;
	}
	/* index files of an older tokenizer (gaps in long CJK runs):
	 * rebuilt now, online */
	memset(&rs, 0, sizeof rs);
	if (s.old_shards && (rc = search_reindex(c->idx, c->st, t->id, &rs))) {
		e->rc = ctl_fail(rc, "reconcile %s: reindex: %s", t->name,
		    search_errmsg(c->idx));
		return 1;
	}
	if (c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "tenant", json_string(t->name));
		json_object_set_new(j, "catalog", json_integer(
		    (json_int_t)s.catalog));
		json_object_set_new(j, "indexed", json_integer(
		    (json_int_t)s.indexed));
		json_object_set_new(j, "missing", json_integer(
		    (json_int_t)s.missing));
		json_object_set_new(j, "extra", json_integer(
		    (json_int_t)s.extra));
		json_object_set_new(j, "old_shards", json_integer(
		    (json_int_t)s.old_shards));
		json_object_set_new(j, "reindexed", json_integer(
		    (json_int_t)rs.indexed));
		json_array_append_new(e->arr, j);
	} else {
		printf("reconciled %s: %llu objects in the catalog, %llu in the "
		    "index; %llu missing (indexed), %llu extra (removed)\n",
		    t->name, (unsigned long long)s.catalog,
		    (unsigned long long)s.indexed,
		    (unsigned long long)s.missing,
		    (unsigned long long)s.extra);
		if (s.old_shards)
			printf("reindexed %s: %llu index files were built by an "
			    "older version; %llu messages indexed anew\n",
			    t->name, (unsigned long long)s.old_shards,
			    (unsigned long long)rs.indexed);
	}
	return 0;
}

static int index_cmd(struct ctl *c, int argc, char **argv, int reindex)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "language", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	struct each e = { c, reindex, NULL, 0 };
	const char *tenant = NULL, *lang = NULL;
	store_tenant_t t;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'L':
			if (reindex) {
				lang = optarg;
				break;
			}
			/* fall through */
		default: return ctl_usage("usage: archivectl %s", reindex ?
		    "reindex [--tenant NAME [--language LANG]]" :
		    "reconcile [--tenant NAME]");
		}
	}
	if (optind != argc)
		return ctl_usage("%s takes no arguments besides its options",
		    argv[0]);
	if (lang && !tenant)
		return ctl_usage("--language needs --tenant NAME");
	if (tenant && (rc = ctl_tenant(c, tenant, &t)))
		return rc;
	if ((rc = ctl_search_open(c)))
		return rc;
	/* the stemming language applies to the shards the reindex builds */
	if (lang && (rc = search_tenant_set_language(c->idx, t.id, lang)))
		return rc == AR_EINVAL ? ctl_usage("--language: %s (english, "
		    "french, german ... or none)", search_errmsg(c->idx)) :
		    ctl_fail(rc, "--language: %s", search_errmsg(c->idx));
	if (c->json)
		e.arr = json_array();
	rc = tenant ? each_tenant(&e, &t) : store_tenant_walk(c->st,
	    each_tenant, &e);
	if (e.rc || rc) {
		json_decref(e.arr);
		return e.rc ? e.rc : ctl_fail(rc, "%s: %s", argv[0],
		    store_errmsg(c->st));
	}
	if (c->json)
		ctl_json_out(e.arr);
	return CTL_OK;
}

int cmd_reindex(struct ctl *c, int argc, char **argv)
{
	return index_cmd(c, argc, argv, 1);
}

int cmd_reconcile(struct ctl *c, int argc, char **argv)
{
	return index_cmd(c, argc, argv, 0);
}
