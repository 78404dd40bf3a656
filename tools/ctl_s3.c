/*
 * ctl_s3.c - archivectl bucket check, rebuild --from-store and migrate
 * --to s3: the commands of the s3 backend and of the bucket as the
 * archive's source of truth.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ar.h"
#include "ctl.h"

/* --- bucket check ------------------------------------------------------------ */

struct check_out {
	json_t *items;
	int json;
};

static void check_cb(void *arg, const char *item, int ok, const char *detail)
{
	struct check_out *o = arg;

	if (o->json) {
		json_t *j = json_object();
		json_object_set_new(j, "check", json_string(item));
		json_object_set_new(j, "ok", json_boolean(ok));
		json_object_set_new(j, "detail", json_string(detail));
		json_array_append_new(o->items, j);
		return;
	}
	printf("%-12s %-6s %s\n", item, ok ? "ok" : "FAILED", detail);
}

int cmd_bucket(struct ctl *c, int argc, char **argv)
{
	struct check_out o = { NULL, c->json };
	char err[1024];
	int rc;

	if (argc != 2 || strcmp(argv[1], "check"))
		return ctl_usage("usage: archivectl bucket check");
	if ((rc = ar_config_load(&c->cfg, c->data_dir, err, sizeof err)))
		return ctl_fail(rc, "%s", err);
	if (strcmp(c->cfg.store_backend, "s3"))
		return ctl_fail(AR_ECONFIG, "%s uses the %s backend: no bucket "
		    "to check (store_backend = s3 in archived.conf)",
		    c->data_dir, c->cfg.store_backend);
	if ((rc = ar_config_open_backend(&c->cfg, &c->be, err, sizeof err)))
		return ctl_fail(rc, "%s", err);
	if (o.json)
		o.items = json_array();
	rc = store_backend_check(c->be, c->cfg.s3_max_clock_skew, check_cb, &o);
	if (o.json) {
		json_t *j = json_object();
		json_object_set_new(j, "bucket", json_string(c->cfg.s3_bucket));
		json_object_set_new(j, "ok", json_boolean(rc == 0));
		json_object_set_new(j, "checks", o.items);
		ctl_json_out(j);
	}
	if (rc)
		return ctl_fail(rc, "bucket %s: %s", c->cfg.s3_bucket,
		    store_backend_errmsg(c->be));
	if (!o.json)
		printf("bucket %s is ready for archived\n", c->cfg.s3_bucket);
	return CTL_OK;
}
