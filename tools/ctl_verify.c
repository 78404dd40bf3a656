/*
 * ctl_verify.c - archivectl verify, checkpoint and stats.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "ctl.h"

static int tenant_opt(struct ctl *c, int argc, char **argv,
    store_tenant_t *t, int *have, const char *usage)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL;
	int ch;

	*have = 0;
	optind = 0;   /* 0: full getopt re-initialisation */
	while ((ch = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		if (ch != 't')
			return ctl_usage("usage: archivectl %s", usage);
		name = optarg;
	}
	if (optind != argc)
		return ctl_usage("usage: archivectl %s", usage);
	if (!name)
		return 0;
	*have = 1;
	return ctl_tenant(c, name, t);
}

struct vout {
	json_t *arr;
	int json;
};

static void verify_cb(void *arg, const char *tenant, const char *severity,
    const char *object, const char *what)
{
	struct vout *v = arg;
	if (v->json) {
		json_t *j = json_object();
		json_object_set_new(j, "tenant", json_string(tenant));
		json_object_set_new(j, "severity", json_string(severity));
		json_object_set_new(j, "object", json_string(object));
		json_object_set_new(j, "what", json_string(what));
		json_array_append_new(v->arr, j);
	} else {
		printf("%s: tenant=%s object=%s %s\n", severity, tenant, object,
		    what);
	}
}

int cmd_verify(struct ctl *c, int argc, char **argv)
{
	struct vout v = { NULL, c->json };
	store_verify_stats_t s;
	store_tenant_t t;
	int have, rc;

	if ((rc = tenant_opt(c, argc, argv, &t, &have,
	    "verify [--tenant NAME]")))
		return rc;
	if (c->json)
		v.arr = json_array();
	rc = store_verify(c->st, have ? t.id : NULL, verify_cb, &v, &s);
	if (rc && rc != AR_ECORRUPT) {
		json_decref(v.arr);
		return ctl_fail(rc, "verify could not run: %s",
		    store_errmsg(c->st));
	}
	if (c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "ok", json_boolean(s.errors == 0));
		json_object_set_new(j, "tenants", json_integer(s.tenants));
		json_object_set_new(j, "objects", json_integer(s.objects));
		json_object_set_new(j, "bytes", json_integer(s.bytes));
		json_object_set_new(j, "log_entries",
		    json_integer(s.log_entries));
		json_object_set_new(j, "checkpoints",
		    json_integer(s.checkpoints));
		json_object_set_new(j, "errors", json_integer(s.errors));
		json_object_set_new(j, "warnings", json_integer(s.warnings));
		json_object_set_new(j, "disposed", json_integer(s.disposed));
		json_object_set_new(j, "problems", v.arr);
		ctl_json_out(j);
	} else {
		printf("verify: %llu tenants, %llu objects (%llu bytes), %llu "
		    "log entries, %llu checkpoints: %llu errors, %llu "
		    "warnings\n", (unsigned long long)s.tenants,
		    (unsigned long long)s.objects, (unsigned long long)s.bytes,
		    (unsigned long long)s.log_entries,
		    (unsigned long long)s.checkpoints,
		    (unsigned long long)s.errors,
		    (unsigned long long)s.warnings);
		if (s.disposed)
			printf("verify: %llu objects disposed of by policy "
			    "(signed tombstones verified; not missing)\n",
			    (unsigned long long)s.disposed);
	}
	return s.errors ? CTL_PROBLEMS : CTL_OK;
}

static int ckpt_cb(void *arg, const store_tenant_t *t)
{
	struct ctl *c = arg;
	uint64_t seq;
	int rc = store_log_checkpoint(c->st, t->id, &seq);
	if (rc)
		return rc;
	printf("tenant %s: log signed up to seq %llu\n", t->name,
	    (unsigned long long)seq);
	return 0;
}

int cmd_checkpoint(struct ctl *c, int argc, char **argv)
{
	store_tenant_t t;
	int have, rc;

	if ((rc = tenant_opt(c, argc, argv, &t, &have,
	    "checkpoint [--tenant NAME]")))
		return rc;
	rc = have ? ckpt_cb(c, &t) : store_tenant_walk(c->st, ckpt_cb, c);
	if (rc)
		return ctl_fail(rc, "checkpoint: %s", store_errmsg(c->st));
	return CTL_OK;
}

struct stats_ctx {
	struct ctl *c;
	json_t *arr;
};

/* The relay queue's counts of every day, summed (relay stats). */
static int relay_sum_cb(void *arg, int64_t day, const uint64_t n[STORE_RS_COUNT])
{
	uint64_t *sum = arg;

	(void)day;
	for (int k = 0; k < STORE_RS_COUNT; k++)
		sum[k] += n[k];
	return 0;
}

static int stats_cb(void *arg, const store_tenant_t *t)
{
	struct stats_ctx *x = arg;
	store_tenant_stats_t s;
	char ts[32];
	search_lag_t lag;
	char lts[32];
	int64_t age;
	int rc = store_tenant_stats(x->c->st, t->id, &s);

	if (rc)
		return rc;
	if ((rc = search_lag(x->c->idx, x->c->st, t->id, &lag)))
		return rc;
	age = lag.oldest ? ar_now() - lag.oldest : 0;
	if (age < 0)
		age = 0;
	if (s.last_checkpoint_time)
		ar_time_fmt(s.last_checkpoint_time, ts, sizeof ts);
	else
		strcpy(ts, "never");
	if (x->c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "tenant", json_string(t->name));
		json_object_set_new(j, "objects", json_integer(s.objects));
		json_object_set_new(j, "bytes", json_integer(s.plain_bytes));
		json_object_set_new(j, "sealed_bytes",
		    json_integer(s.sealed_bytes));
		json_object_set_new(j, "log_entries",
		    json_integer(s.log_entries));
		json_object_set_new(j, "last_checkpoint_seq",
		    json_integer(s.last_checkpoint_seq));
		json_object_set_new(j, "last_checkpoint", json_string(ts));
		json_t *ix = json_object();
		json_object_set_new(ix, "indexed_seq",
		    json_integer((json_int_t)lag.indexed_seq));
		json_object_set_new(ix, "unindexed_objects",
		    json_integer((json_int_t)lag.objects));
		json_object_set_new(ix, "pending_changes",
		    json_integer((json_int_t)lag.changes));
		json_object_set_new(ix, "lag_seconds", json_integer(age));
		json_object_set_new(ix, "oldest_pending", lag.oldest ?
		    json_string(ar_time_fmt(lag.oldest, lts, sizeof lts)) :
		    json_null());
		json_object_set_new(j, "index", ix);
		{
			uint64_t sum[STORE_RS_COUNT] = { 0 };
			json_t *rl = json_object();
			if ((rc = store_relay_stats_walk(x->c->st, t->id, 0,
			    ar_now() / 86400, relay_sum_cb, sum))) {
				json_decref(rl);
				json_decref(j);
				return rc;
			}
			for (int k = 0; k < STORE_RS_COUNT; k++)
				json_object_set_new(rl, store_relay_stat_name(k),
				    json_integer((json_int_t)sum[k]));
			json_object_set_new(j, "relay", rl);
		}
		json_array_append_new(x->arr, j);
	} else {
		printf("%-24s %10llu %14llu %14llu %10llu %10llu  %-20s "
		    "%10llu %8llds\n",
		    t->name, (unsigned long long)s.objects,
		    (unsigned long long)s.plain_bytes,
		    (unsigned long long)s.sealed_bytes,
		    (unsigned long long)s.log_entries,
		    (unsigned long long)s.last_checkpoint_seq, ts,
		    (unsigned long long)lag.objects, (long long)age);
	}
	return 0;
}

int cmd_stats(struct ctl *c, int argc, char **argv)
{
	struct stats_ctx x = { c, json_array() };
	uint64_t map, used;
	int rc;

	if (argc != 1) {
		json_decref(x.arr);
		return ctl_usage("stats takes no arguments");
	}
	if ((rc = ctl_search_open(c))) {
		json_decref(x.arr);
		return rc;
	}
	if (!c->json)
		printf("%-24s %10s %14s %14s %10s %10s  %-20s %10s %9s\n",
		    "TENANT", "OBJECTS", "BYTES", "SEALED", "LOG", "SIGNED",
		    "CHECKPOINT", "UNINDEXED", "LAG");
	if ((rc = store_tenant_walk(c->st, stats_cb, &x))) {
		json_decref(x.arr);
		return ctl_fail(rc, "stats: %s", store_errmsg(c->st));
	}
	store_catalog_size(c->st, &map, &used);
	if (c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "tenants", x.arr);
		json_object_set_new(j, "catalog_map_size", json_integer(map));
		json_object_set_new(j, "catalog_used", json_integer(used));
		ctl_json_out(j);
	} else {
		json_decref(x.arr);
		printf("catalog: %llu of %llu bytes of the map in use\n",
		    (unsigned long long)used, (unsigned long long)map);
	}
	return CTL_OK;
}
