/*
 * ctl_jobs.c - archivectl retention, hold and dispose.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ar.h"
#include "ctl.h"
#include "jobs/jobs.h"

static const char *who(void)
{
	const char *u = getenv("USER");
	return u && *u ? u : "archivectl";
}

static int index_open(struct ctl *c, search_t **idx)
{
	search_open_params_t so;
	int rc;

	memset(&so, 0, sizeof so);
	so.data_dir = c->cfg.data_dir;
	so.ks = c->ks;
	if ((rc = search_open(idx, &so)))
		return ctl_fail(rc, "index: %s", ar_strerror(rc));
	return 0;
}

/* "YYYY-MM-DD" (UTC) to seconds; end: the day's last second. */
static int parse_date(const char *s, int end, int64_t *out)
{
	struct tm tm;
	char *e;

	memset(&tm, 0, sizeof tm);
	if (!(e = strptime(s, "%Y-%m-%d", &tm)) || *e)
		return ctl_usage("'%s' is not a date (YYYY-MM-DD)", s);
	*out = (int64_t)timegm(&tm) + (end ? 86399 : 0);
	return 0;
}

static int parse_days(const char *s, uint32_t *out)
{
	char *e;
	unsigned long v = strtoul(s, &e, 10);

	if (!*s || *e || v == 0 || v > 36500)
		return ctl_usage("'%s' is not a number of days (1..36500)", s);
	*out = (uint32_t)v;
	return 0;
}

/* --- retention ---------------------------------------------------------- */

#define RET_USAGE "retention show --tenant NAME\n" \
	"       retention set --tenant NAME --default-days N [--apply]\n" \
	"       retention rule add --tenant NAME ADDR|@DOMAIN DAYS [--apply]\n"\
	"       retention rule remove --tenant NAME ADDR|@DOMAIN\n" \
	"       retention apply --tenant NAME"

static int ret_apply(struct ctl *c, const char *tenant)
{
	store_tenant_t t;
	uint64_t n;
	int rc;

	if ((rc = ctl_tenant(c, tenant, &t)))
		return rc;
	if ((rc = store_retention_apply(c->st, &t, &n)))
		return ctl_fail(rc, "retention apply: %s", store_errmsg(c->st));
	printf("retain-until extended on %llu stored messages of %s (none "
	    "reduced)\n", (unsigned long long)n, t.name);
	return CTL_OK;
}

int cmd_retention(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "default-days", required_argument, NULL, 'D' },
		{ "apply", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *sub, *days_s = NULL;
	store_tenant_t t;
	int ch, rc, apply = 0;
	uint32_t days;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'D': days_s = optarg; break;
		case 'a': apply = 1; break;
		default: return ctl_usage("usage: archivectl " RET_USAGE);
		}
	}
	if (optind >= argc)
		return ctl_usage("usage: archivectl " RET_USAGE);
	if (!tenant)
		return ctl_usage("retention needs --tenant NAME");
	sub = argv[optind++];
	if ((rc = ctl_tenant(c, tenant, &t)))
		return rc;
	if (!strcmp(sub, "show") && optind == argc) {
		store_retention_t *p = malloc(sizeof *p);
		if (!p)
			return ctl_fail(AR_ENOMEM, "out of memory");
		if ((rc = store_retention_get(c->st, &t, p))) {
			free(p);
			return ctl_fail(rc, "retention: %s",
			    store_errmsg(c->st));
		}
		if (c->json) {
			json_t *j = json_object(), *r = json_array();
			json_object_set_new(j, "default_days",
			    json_integer(p->default_days));
			for (size_t i = 0; i < p->n_rules; i++) {
				json_t *x = json_object();
				json_object_set_new(x, "match",
				    json_string(p->rules[i].match));
				json_object_set_new(x, "days",
				    json_integer(p->rules[i].days));
				json_array_append_new(r, x);
			}
			json_object_set_new(j, "rules", r);
			ctl_json_out(j);
		} else {
			printf("default: %u days\n", p->default_days);
			for (size_t i = 0; i < p->n_rules; i++)
				printf("rule: %s %u days\n", p->rules[i].match,
				    p->rules[i].days);
		}
		free(p);
		return CTL_OK;
	}
	if (!strcmp(sub, "set") && optind == argc) {
		if (!days_s)
			return ctl_usage("retention set needs --default-days N");
		if ((rc = parse_days(days_s, &days)))
			return rc;
		if ((rc = store_retention_set_default(c->st, t.name, days)))
			return ctl_fail(rc, "retention set: %s",
			    store_errmsg(c->st));
		printf("%s: default retention %u days\n", t.name, days);
		return apply ? ret_apply(c, t.name) : CTL_OK;
	}
	if (!strcmp(sub, "apply") && optind == argc)
		return ret_apply(c, t.name);
	if (!strcmp(sub, "rule") && optind < argc) {
		const char *op = argv[optind++];
		if (!strcmp(op, "add") && optind + 2 == argc) {
			if ((rc = parse_days(argv[optind + 1], &days)))
				return rc;
			if ((rc = store_retention_rule_add(c->st, &t,
			    argv[optind], days)))
				return ctl_fail(rc, "retention rule add: %s",
				    store_errmsg(c->st));
			printf("%s: mail from or to %s kept %u days\n", t.name,
			    argv[optind], days);
			return apply ? ret_apply(c, t.name) : CTL_OK;
		}
		if (!strcmp(op, "remove") && optind + 1 == argc) {
			if ((rc = store_retention_rule_remove(c->st, &t,
			    argv[optind])))
				return ctl_fail(rc, "retention rule remove: %s",
				    store_errmsg(c->st));
			printf("%s: rule %s removed (stored mail keeps its "
			    "retain-until)\n", t.name, argv[optind]);
			return CTL_OK;
		}
	}
	return ctl_usage("usage: archivectl " RET_USAGE);
}

/* --- holds ---------------------------------------------------------------- */

#define HOLD_USAGE "hold create --tenant NAME HOLD [--description TEXT] " \
	"[--custodian ADDR|@DOMAIN]...\n" \
	"                  [--from YYYY-MM-DD] [--until YYYY-MM-DD] " \
	"[--query Q]\n" \
	"       hold list --tenant NAME | hold show --tenant NAME HOLD\n" \
	"       hold release --tenant NAME HOLD [--reason TEXT]"

int ctl_hold_ids(struct ctl *c, const store_tenant_t *t, const char *name,
    uint8_t **ids, size_t *n)
{
	store_hold_t *h = malloc(sizeof *h);
	search_t *idx = NULL;
	char err[512] = "";
	int rc;

	if (!h)
		return ctl_fail(AR_ENOMEM, "out of memory");
	if ((rc = store_hold_get(c->st, t->id, name, h))) {
		free(h);
		return ctl_fail(rc, "%s", store_errmsg(c->st));
	}
	if (h->query[0] && (rc = index_open(c, &idx))) {
		free(h);
		return rc;
	}
	rc = jobs_hold_ids(c->st, idx, t, h, ids, n, err, sizeof err);
	if (idx)
		search_close(idx);
	sodium_memzero(h, sizeof *h);
	free(h);
	if (rc)
		return ctl_fail(rc, "hold %s: %s", name, err);
	return 0;
}

/* count < 0: the hold's messages could not be counted (its query is
 * refused, or the index failed); "messages" is null then */
static json_t *hold_json(const store_hold_t *h, long long count)
{
	json_t *j = json_object(), *cu = json_array();
	char ts[32];

	json_object_set_new(j, "name", json_string(h->name));
	json_object_set_new(j, "number", json_integer(h->number));
	json_object_set_new(j, "description", json_string(h->description));
	for (size_t i = 0; i < h->n_custodians; i++)
		json_array_append_new(cu, json_string(h->custodians[i]));
	json_object_set_new(j, "custodians", cu);
	json_object_set_new(j, "from", h->from ? json_string(ar_time_fmt(
	    h->from, ts, sizeof ts)) : json_null());
	json_object_set_new(j, "until", h->until ? json_string(ar_time_fmt(
	    h->until, ts, sizeof ts)) : json_null());
	json_object_set_new(j, "query", json_string(h->query));
	json_object_set_new(j, "created", json_string(ar_time_fmt(h->created,
	    ts, sizeof ts)));
	json_object_set_new(j, "created_by", json_string(h->created_by));
	json_object_set_new(j, "active", json_boolean(!h->released));
	if (h->released) {
		json_object_set_new(j, "released", json_string(ar_time_fmt(
		    h->released_at, ts, sizeof ts)));
		json_object_set_new(j, "released_by",
		    json_string(h->released_by));
		json_object_set_new(j, "release_reason",
		    json_string(h->release_reason));
	}
	json_object_set_new(j, "messages", count < 0 ? json_null() :
	    json_integer((json_int_t)count));
	return j;
}

struct hl_ctx {
	struct ctl *c;
	const store_tenant_t *t;
	search_t *idx;
	json_t *arr;
	const char *only;
	int rc;
};

static int hl_cb(void *arg, const store_hold_t *h)
{
	struct hl_ctx *x = arg;
	uint8_t *ids = NULL;
	size_t n = 0;
	char err[512];
	long long count = 0;
	json_t *j;

	if (x->only && strcmp(x->only, h->name))
		return 0;
	if (!h->released) {
		if (jobs_hold_ids(x->c->st, x->idx, x->t, h, &ids, &n, err,
		    sizeof err)) {
			/* e.g. a query refused since the hold was made: the
			 * hold still keeps mail (disposition takes an
			 * unknown query as matching) */
			fprintf(stderr, "archivectl: hold %s: messages not "
			    "counted: %s\n", h->name, err);
			count = -1;
		} else {
			count = (long long)n;
		}
	}
	free(ids);
	j = hold_json(h, count);
	if (x->c->json || x->only) {
		json_array_append_new(x->arr, j);
		return 0;
	}
	if (count < 0)
		printf("%-24s %-8s %6s messages  %s\n", h->name, "active", "?",
		    h->description);
	else
		printf("%-24s %-8s %6lld messages  %s\n", h->name, h->released ?
		    "released" : "active", count, h->description);
	json_decref(j);
	return 0;
}

int cmd_hold(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "description", required_argument, NULL, 'D' },
		{ "custodian", required_argument, NULL, 'c' },
		{ "from", required_argument, NULL, 'f' },
		{ "until", required_argument, NULL, 'u' },
		{ "query", required_argument, NULL, 'q' },
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	store_hold_t *h = calloc(1, sizeof *h);
	const char *tenant = NULL, *reason = "", *sub;
	struct hl_ctx x;
	store_tenant_t t;
	int ch, rc = CTL_OK;

	if (!h)
		return ctl_fail(AR_ENOMEM, "out of memory");
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'D': ar_strlcpy(h->description, optarg,
		    sizeof h->description); break;
		case 'c':
			if (h->n_custodians >= STORE_HOLD_CUSTODIANS_MAX) {
				rc = ctl_usage("at most %d custodians",
				    STORE_HOLD_CUSTODIANS_MAX);
				goto out;
			}
			ar_strlcpy(h->custodians[h->n_custodians++], optarg,
			    STORE_ADDR_MAX);
			break;
		case 'f': if ((rc = parse_date(optarg, 0, &h->from))) goto out;
			break;
		case 'u': if ((rc = parse_date(optarg, 1, &h->until))) goto out;
			break;
		case 'q':
			if (strlen(optarg) >= sizeof h->query) {
				rc = ctl_usage("hold query: at most %zu bytes",
				    sizeof h->query - 1);
				goto out;
			}
			ar_strlcpy(h->query, optarg, sizeof h->query);
			break;
		case 'r': reason = optarg; break;
		default: rc = ctl_usage("usage: archivectl " HOLD_USAGE);
			goto out;
		}
	}
	if (optind >= argc || !tenant) {
		rc = ctl_usage("usage: archivectl " HOLD_USAGE);
		goto out;
	}
	sub = argv[optind++];
	if ((rc = ctl_tenant(c, tenant, &t)))
		goto out;
	memset(&x, 0, sizeof x);
	x.c = c;
	x.t = &t;
	if (!strcmp(sub, "create") && optind + 1 == argc) {
		if (strlen(argv[optind]) >= sizeof h->name) {
			rc = ctl_usage("hold names are at most %zu bytes",
			    sizeof h->name - 1);
			goto out;
		}
		if (h->query[0]) {
			search_query_t *q;
			char err[256];
			int all;
			if (search_query_parse(h->query, &q, err, sizeof err)) {
				rc = ctl_usage("hold query: %s", err);
				goto out;
			}
			all = search_query_selects_all(q);
			search_query_free(q);
			if (all) {
				rc = ctl_usage("hold query: a blank query would "
				    "select every message; give a term or a "
				    "filter, or leave --query out");
				goto out;
			}
		}
		ar_strlcpy(h->name, argv[optind], sizeof h->name);
		ar_strlcpy(h->created_by, who(), sizeof h->created_by);
		if ((rc = store_hold_create(c->st, &t, h))) {
			rc = ctl_fail(rc, "hold create: %s", store_errmsg(c->st));
			goto out;
		}
		printf("hold %s created (number %u)\n", h->name, h->number);
	} else if (!strcmp(sub, "release") && optind + 1 == argc) {
		if ((rc = store_hold_release(c->st, &t, argv[optind], who(),
		    reason))) {
			rc = ctl_fail(rc, "hold release: %s",
			    store_errmsg(c->st));
			goto out;
		}
		printf("hold %s released\n", argv[optind]);
	} else if ((!strcmp(sub, "list") && optind == argc) ||
	    (!strcmp(sub, "show") && optind + 1 == argc)) {
		x.only = optind < argc ? argv[optind] : NULL;
		if ((rc = index_open(c, &x.idx)))
			goto out;
		x.arr = json_array();
		rc = store_hold_walk(c->st, t.id, hl_cb, &x);
		search_close(x.idx);
		if (rc) {
			json_decref(x.arr);
			rc = ctl_fail(rc, "hold: %s", store_errmsg(c->st));
			goto out;
		}
		if (x.only && !json_array_size(x.arr)) {
			json_decref(x.arr);
			rc = ctl_fail(AR_ENOENT, "no hold named '%s'", x.only);
			goto out;
		}
		if (x.only && !c->json) {
			char *s = json_dumps(json_array_get(x.arr,
			    json_array_size(x.arr) - 1), JSON_INDENT(2) |
			    JSON_SORT_KEYS);
			printf("%s\n", s ? s : "");
			free(s);
			json_decref(x.arr);
		} else if (c->json) {
			ctl_json_out(x.arr);
		} else {
			json_decref(x.arr);
		}
	} else {
		rc = ctl_usage("usage: archivectl " HOLD_USAGE);
	}
out:
	sodium_memzero(h, sizeof *h);
	free(h);
	return rc;
}

/* --- dispose -------------------------------------------------------------- */

static void dispose_cb(void *arg, const store_tenant_t *t,
    const uint8_t id[STORE_ID_LEN], const char *what)
{
	char hex[2 * STORE_ID_LEN + 1];
	int verbose = *(int *)arg;

	if (verbose || (strcmp(what, "disposed") && strcmp(what, "held") &&
	    strcmp(what, "would-dispose")))
		printf("%s %s %s\n", t->name, ar_hex(id, STORE_ID_LEN, hex),
		    what);
}

int cmd_dispose(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	jobs_dispose_params_t p;
	jobs_dispose_result_t r;
	const char *tenant = NULL;
	store_tenant_t t;
	char err[1024] = "";
	int ch, rc, verbose = 0;

	memset(&p, 0, sizeof p);
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'n': p.dry_run = 1; break;
		case 'b': p.batch = strtoul(optarg, NULL, 10); break;
		case 'v': verbose = 1; break;
		default: return ctl_usage("usage: archivectl dispose [--tenant "
		    "NAME] [--dry-run] [--batch N] [--verbose]");
		}
	}
	if (optind != argc)
		return ctl_usage("dispose takes no positional arguments");
	if (tenant) {
		if ((rc = ctl_tenant(c, tenant, &t)))
			return rc;
		p.tenant = &t;
	}
	p.st = c->st;
	p.cb = dispose_cb;
	p.arg = &verbose;
	if (p.dry_run)
		verbose = 1;
	if ((rc = index_open(c, &p.idx)))
		return rc;
	rc = jobs_dispose(&p, &r, err, sizeof err);
	search_close(p.idx);
	if (c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "examined", json_integer((json_int_t)
		    r.examined));
		json_object_set_new(j, "due", json_integer((json_int_t)r.due));
		json_object_set_new(j, p.dry_run ? "would_dispose" : "disposed",
		    json_integer((json_int_t)r.disposed));
		json_object_set_new(j, "held", json_integer((json_int_t)r.held));
		json_object_set_new(j, "failed", json_integer((json_int_t)
		    r.failed));
		json_object_set_new(j, "swept", json_integer((json_int_t)
		    r.swept));
		ctl_json_out(j);
	} else {
		printf("dispose%s: %llu examined, %llu past retain-until, %llu "
		    "held, %llu %s, %llu failed\n", p.dry_run ? " (dry run)" :
		    "", (unsigned long long)r.examined,
		    (unsigned long long)r.due, (unsigned long long)r.held,
		    (unsigned long long)r.disposed, p.dry_run ?
		    "would be disposed of" : "disposed of",
		    (unsigned long long)r.failed);
		if (r.swept)
			printf("dispose: %llu files of interrupted dispositions "
			    "deleted\n", (unsigned long long)r.swept);
	}
	if (rc)
		return ctl_fail(rc, "dispose: %s", err);
	return r.failed ? CTL_FAIL : CTL_OK;
}

/* --- tenant terminate / advance ------------------------------------------ */

int ctl_tenant_lifecycle(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "export-days", required_argument, NULL, 'e' },
		{ "inactive-days", required_argument, NULL, 'i' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t ed = 0, id = 0;
	char err[1024] = "", cert_dir[4200], hex[65];
	int ch, rc, force = 0, state = 0;
	int advance = !strcmp(argv[0], "advance");

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'e': if ((rc = parse_days(optarg, &ed))) return rc; break;
		case 'i': if ((rc = parse_days(optarg, &id))) return rc; break;
		case 'f': force = 1; break;
		default: return ctl_usage("usage: archivectl tenant terminate "
		    "NAME [--export-days N] [--inactive-days N] | tenant "
		    "advance NAME [--force]");
		}
	}
	if (optind + 1 != argc)
		return ctl_usage("tenant %s takes one tenant NAME", argv[0]);
	if (!advance) {
		if ((rc = jobs_tenant_terminate(c->st, argv[optind], ed, id, err,
		    sizeof err)))
			return ctl_fail(rc, "terminate: %s", err);
		printf("tenant %s terminated: mail is refused, export stays "
		    "possible until the export window ends\n", argv[optind]);
		return CTL_OK;
	}
	{
		jobs_advance_params_t p;
		jobs_shred_result_t r;
		memset(&p, 0, sizeof p);
		if (ar_path(cert_dir, sizeof cert_dir, "%s/certificates",
		    c->cfg.data_dir))
			return ctl_fail(AR_ETOOBIG, "data directory path too "
			    "long");
		p.st = c->st;
		p.tenant = argv[optind];
		p.force = force;
		p.cert_dir = cert_dir;
		if ((rc = index_open(c, &p.idx)))
			return rc;
		rc = jobs_tenant_advance(&p, &state, &r, err, sizeof err);
		search_close(p.idx);
		if (rc)
			return ctl_fail(rc, "advance: %s", err);
		if (state == STORE_TENANT_SHREDDED) {
			printf("tenant %s shredded: keys destroyed, %llu "
			    "messages (%llu bytes) deleted, final log seq %llu "
			    "head %s\ncertificate of destruction: %s\n",
			    argv[optind], (unsigned long long)r.objects,
			    (unsigned long long)r.bytes,
			    (unsigned long long)r.log_seq,
			    ar_hex(r.log_head, 32, hex), r.certificate);
		} else {
			printf("tenant %s is now %s\n", argv[optind],
			    jobs_state_name(state));
		}
	}
	return CTL_OK;
}
