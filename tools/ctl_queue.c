/*
 * ctl_queue.c - archivectl queue: the SMTP spool (messages received and
 * acknowledged, not yet in the store): count, oldest age, failing entries.
 * Read-only: works while archived runs.
 */
#include <stdio.h>
#include <string.h>

#include "ar.h"
#include "ctl.h"
#include "ingest/spool.h"

struct qctx {
	struct ctl *c;
	spool_t *sp;
	json_t *arr;
};

static int entry_cb(void *arg, const spool_entry_t *e)
{
	struct qctx *q = arg;
	char id[2 * SPOOL_ID_LEN + 1], ts[32];
	store_tenant_t t;
	spool_failure_t f;
	const char *name = "?";

	memset(&f, 0, sizeof f);
	if (store_tenant_get_id(q->c->st, e->tenant, &t) == 0)
		name = t.name;
	if (e->failed)
		spool_failure_get(q->sp, e->tenant, e->id, &f);
	ar_hex(e->id, SPOOL_ID_LEN, id);
	ar_time_fmt(e->arrived, ts, sizeof ts);
	if (q->c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "id", json_string(id));
		json_object_set_new(j, "tenant", json_string(name));
		json_object_set_new(j, "arrived", json_string(ts));
		json_object_set_new(j, "age_seconds", json_integer(e->age));
		json_object_set_new(j, "bytes", json_integer((json_int_t)e->bytes));
		json_object_set_new(j, "failures", json_integer(f.count));
		json_object_set_new(j, "last_failure", f.count ?
		    json_string(f.reason) : json_null());
		json_array_append_new(q->arr, j);
	} else {
		printf("%s  %-16s  %s  %8llds  %10llu  %u%s%s\n", id, name, ts,
		    (long long)e->age, (unsigned long long)e->bytes, f.count,
		    f.count ? "  " : "", f.count ? f.reason : "");
	}
	return 0;
}

int cmd_queue(struct ctl *c, int argc, char **argv)
{
	char dir[AR_CONF_STR_MAX + 16];
	struct qctx q = { c, NULL, NULL };
	spool_stats_t s;
	int rc;

	(void)argv;
	if (argc != 1)
		return ctl_usage("queue takes no arguments");
	ar_config_path(&c->cfg, "spool", dir, sizeof dir);
	if ((rc = spool_open_readonly(&q.sp, dir, c->ks)))
		return ctl_fail(rc, "spool %s: %s", dir, spool_errmsg());
	if ((rc = spool_stats(q.sp, &s))) {
		spool_close(q.sp);
		return ctl_fail(rc, "spool: %s", spool_errmsg());
	}
	if (c->json)
		q.arr = json_array();
	else
		printf("%llu messages waiting (%llu bytes), oldest %llds, %llu "
		    "failing\n", (unsigned long long)s.entries,
		    (unsigned long long)s.bytes, (long long)s.oldest_age,
		    (unsigned long long)s.failing);
	rc = spool_walk(q.sp, NULL, SPOOL_WALK_SIZES, entry_cb, &q);
	spool_close(q.sp);
	if (rc) {
		json_decref(q.arr);
		return ctl_fail(rc, "spool: %s", spool_errmsg());
	}
	if (c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "count", json_integer(s.entries));
		json_object_set_new(j, "bytes", json_integer(s.bytes));
		json_object_set_new(j, "oldest_age_seconds",
		    json_integer(s.oldest_age));
		json_object_set_new(j, "failing", json_integer(s.failing));
		json_object_set_new(j, "entries", q.arr);
		ctl_json_out(j);
	}
	return CTL_OK;
}
