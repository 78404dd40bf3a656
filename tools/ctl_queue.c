/*
 * ctl_queue.c - archivectl queue: the SMTP spool (messages received and
 * acknowledged, not yet in the store): count, oldest age (with a warning
 * once it passes spool_warn_age: the drain is not keeping up), failing
 * entries, damaged segments; the oldest entries one by one.
 * Read-only: works while archived runs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "ctl.h"
#include "spool/spool.h"

#define LIST_DEFAULT 100

struct qctx {
	struct ctl *c;
	spool_t *sp;
	json_t *arr;
	uint64_t shown, limit;      /* limit 0: every entry */
};

static int entry_cb(void *arg, const spool_entry_t *e)
{
	struct qctx *q = arg;
	char id[2 * SPOOL_ID_LEN + 1], ts[32];
	store_tenant_t t;
	spool_failure_t f;
	const char *name = "?";

	if (q->limit && q->shown >= q->limit)
		return 1;                /* oldest first: the rest are newer */
	q->shown++;
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

static int damage_cb(void *arg, const store_seg_damage_t *d)
{
	json_t *arr = arg;

	if (arr) {
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:b, "
		    "s:I}", "file", d->file, "offset", (json_int_t)d->offset,
		    "length", (json_int_t)d->length, "file_size",
		    (json_int_t)d->file_size, "moved_aside", d->moved,
		    "intact_records_waiting", (json_int_t)d->live_records));
	} else {
		printf("damaged: %s offset=%llu length=%llu (%s)\n", d->file,
		    (unsigned long long)d->offset,
		    (unsigned long long)d->length, d->moved ?
		    "moved aside, kept for inspection" :
		    "the intact entries after it are drained");
	}
	return 0;
}

int cmd_queue(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, 'n' },
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	char dir[AR_CONF_STR_MAX + 16], warn[256] = "";
	struct qctx q = { c, NULL, NULL, 0, LIST_DEFAULT };
	json_t *damage = NULL;
	spool_stats_t s;
	int rc, ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:a", opts, NULL)) != -1) {
		char *end;
		switch (ch) {
		case 'n':
			q.limit = strtoull(optarg, &end, 10);
			if (*end || !*optarg || optarg[0] == '-')
				return ctl_usage("queue --limit: not a count: "
				    "'%s'", optarg);
			break;
		case 'a':
			q.limit = 0;
			break;
		default:
			return ctl_usage("queue [--limit N | --all]");
		}
	}
	if (optind != argc)
		return ctl_usage("queue takes no arguments (queue [--limit N | "
		    "--all])");
	ar_config_path(&c->cfg, "spool", dir, sizeof dir);
	if ((rc = spool_open_readonly(&q.sp, dir, c->ks)))
		return ctl_fail(rc, "spool %s: %s", dir, spool_errmsg());
	if ((rc = spool_stats(q.sp, &s))) {
		spool_close(q.sp);
		return ctl_fail(rc, "spool: %s", spool_errmsg());
	}
	if (c->cfg.spool_warn_age > 0 && s.entries &&
	    s.oldest_age >= c->cfg.spool_warn_age)
		snprintf(warn, sizeof warn, "the oldest message has waited "
		    "%llds (spool_warn_age %llds): the drain is not keeping up "
		    "or is stopped; see archived's log",
		    (long long)s.oldest_age, (long long)c->cfg.spool_warn_age);
	if (c->json) {
		q.arr = json_array();
		damage = json_array();
	} else {
		printf("%llu messages waiting (%llu bytes), oldest %llds, %llu "
		    "failing\n", (unsigned long long)s.entries,
		    (unsigned long long)s.bytes, (long long)s.oldest_age,
		    (unsigned long long)s.failing);
		if (warn[0])
			printf("WARNING: %s\n", warn);
	}
	if ((rc = spool_damage(q.sp, damage_cb, damage)) == 0) {
		rc = spool_walk(q.sp, NULL, SPOOL_WALK_SIZES, entry_cb, &q);
		if (rc == 1)
			rc = 0;
	}
	spool_close(q.sp);
	if (rc) {
		json_decref(q.arr);
		json_decref(damage);
		return ctl_fail(rc, "spool: %s", spool_errmsg());
	}
	if (c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "count", json_integer(s.entries));
		json_object_set_new(j, "bytes", json_integer(s.bytes));
		json_object_set_new(j, "oldest_age_seconds",
		    json_integer(s.oldest_age));
		json_object_set_new(j, "failing", json_integer(s.failing));
		json_object_set_new(j, "warning", warn[0] ? json_string(warn) :
		    json_null());
		json_object_set_new(j, "damaged", damage);
		json_object_set_new(j, "entries", q.arr);
		ctl_json_out(j);
	} else if (q.limit && s.entries > q.shown) {
		printf("(the oldest %llu shown; --all lists every one)\n",
		    (unsigned long long)q.shown);
	}
	return CTL_OK;
}
