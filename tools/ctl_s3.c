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

/* --- rebuild --from-store ----------------------------------------------------- */

struct rebuild_ctx {
	struct ctl *c;
	uint8_t (*tenants)[STORE_TENANT_LEN];
	size_t n, cap;
	int tty;
};

static int tenant_found(void *arg, const uint8_t tenant[STORE_TENANT_LEN])
{
	struct rebuild_ctx *r = arg;
	if (ar_grow((void **)&r->tenants, &r->cap, r->n, STORE_TENANT_LEN))
		return AR_ENOMEM;
	memcpy(r->tenants[r->n++], tenant, STORE_TENANT_LEN);
	return 0;
}

static void rebuild_progress(void *arg, const store_rebuild_stats_t *s)
{
	struct rebuild_ctx *r = arg;
	if (r->tty)
		fprintf(stderr, "\rrebuild: %llu segments, %llu log entries   ",
		    (unsigned long long)s->segments,
		    (unsigned long long)s->entries);
}

int cmd_rebuild(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from-store", no_argument, NULL, 'f' },
		{ "tenant-id", required_argument, NULL, 't' },
		{ "no-index", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct rebuild_ctx r = { c, NULL, 0, 0, 0 };
	int ch, rc = 0, from_store = 0, no_index = 0, failed = 0;
	json_t *out = c->json ? json_array() : NULL;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		uint8_t id[STORE_TENANT_LEN];
		switch (ch) {
		case 'f': from_store = 1; break;
		case 'n': no_index = 1; break;
		case 't':
			if (ar_unhex(optarg, id, sizeof id)) {
				json_decref(out);
				free(r.tenants);
				return ctl_usage("--tenant-id takes a tenant id (32 "
				    "hex digits, archivectl tenant show)");
			}
			if (tenant_found(&r, id)) {
				json_decref(out);
				free(r.tenants);
				return ctl_fail(AR_ENOMEM, "out of memory");
			}
			break;
		default:
			json_decref(out);
			free(r.tenants);
			return ctl_usage("usage: archivectl rebuild --from-store "
			    "[--tenant-id HEX]... [--no-index]");
		}
	}
	if (!from_store || optind != argc) {
		json_decref(out);
		free(r.tenants);
		return ctl_usage("usage: archivectl rebuild --from-store "
		    "[--tenant-id HEX]... [--no-index]");
	}
	if (!(store_backend_caps(c->be) & STORE_BE_BLOBS)) {
		json_decref(out);
		free(r.tenants);
		return ctl_fail(AR_ECONFIG, "the %s backend keeps no log: "
		    "rebuild --from-store needs store_backend = s3",
		    store_backend_name(c->be));
	}
	r.tty = isatty(STDERR_FILENO) && !c->json;
	if (r.n == 0 && (rc = store_backend_tenants(c->be, tenant_found, &r))) {
		json_decref(out);
		free(r.tenants);
		return ctl_fail(rc, "listing the bucket's tenants: %s",
		    store_backend_errmsg(c->be));
	}
	for (size_t i = 0; i < r.n; i++) {
		store_rebuild_stats_t s;
		search_sync_stats_t ix;
		store_tenant_t t;
		char hex[2 * STORE_TENANT_LEN + 1];
		int64_t t0 = ar_mono_us(), t1;
		double secs, isecs = 0;

		ar_hex(r.tenants[i], STORE_TENANT_LEN, hex);
		rc = store_rebuild_tenant(c->st, c->be, r.tenants[i],
		    rebuild_progress, &r, &s);
		if (r.tty)
			fputc('\n', stderr);
		if (rc) {
			failed++;
			ctl_fail(rc, "rebuild of tenant %s: %s", hex,
			    store_errmsg(c->st));
			continue;
		}
		t1 = ar_mono_us();
		secs = (double)(t1 - t0) / 1e6;
		memset(&ix, 0, sizeof ix);
		if (!no_index && store_tenant_get_id(c->st, r.tenants[i], &t) == 0
		    && t.state != STORE_TENANT_SHREDDED) {
			if ((rc = ctl_index_sync(c, &t, &ix))) {
				failed++;
				continue;
			}
			isecs = (double)(ar_mono_us() - t1) / 1e6;
		}
		if (out) {
			json_t *j = json_object();
			json_object_set_new(j, "tenant", json_string(s.name));
			json_object_set_new(j, "tenant_id", json_string(hex));
			json_object_set_new(j, "segments", json_integer(
			    (json_int_t)s.segments));
			json_object_set_new(j, "log_entries", json_integer(
			    (json_int_t)s.entries));
			json_object_set_new(j, "objects", json_integer(
			    (json_int_t)s.objects));
			json_object_set_new(j, "checkpoints", json_integer(
			    (json_int_t)s.checkpoints));
			json_object_set_new(j, "stored", json_integer(
			    (json_int_t)s.stored));
			json_object_set_new(j, "missing", json_integer(
			    (json_int_t)s.missing));
			json_object_set_new(j, "orphans", json_integer(
			    (json_int_t)s.orphans));
			json_object_set_new(j, "catalog_seconds", json_real(secs));
			json_object_set_new(j, "indexed", json_integer(
			    (json_int_t)ix.indexed));
			json_object_set_new(j, "index_seconds", json_real(isecs));
			json_array_append_new(out, j);
		} else {
			printf("rebuilt tenant %s (%s): %llu segments, %llu log "
			    "entries, %llu objects, %llu checkpoints in %.2f s "
			    "(%.0f objects/s); %llu missing, %llu orphans\n",
			    s.name, hex, (unsigned long long)s.segments,
			    (unsigned long long)s.entries,
			    (unsigned long long)s.objects,
			    (unsigned long long)s.checkpoints, secs,
			    secs > 0 ? (double)s.objects / secs : 0.0,
			    (unsigned long long)s.missing,
			    (unsigned long long)s.orphans);
			if (!no_index)
				printf("indexed %llu messages in %.2f s\n",
				    (unsigned long long)ix.indexed, isecs);
		}
		if (s.missing) {
			failed++;
			ctl_fail(AR_ECORRUPT, "tenant %s: %llu objects named by "
			    "the log are missing from the bucket", s.name,
			    (unsigned long long)s.missing);
		}
	}
	free(r.tenants);
	if (out)
		ctl_json_out(out);
	if (r.n == 0)
		return ctl_fail(AR_ENOENT, "no tenant in the bucket");
	return failed ? CTL_FAIL : CTL_OK;
}
