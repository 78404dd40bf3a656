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

/* --- migrate --to s3 --------------------------------------------------------- */

struct mig_obj {
	uint8_t id[STORE_ID_LEN];
	uint8_t sealed[STORE_HASH_LEN];
	int64_t retain_until;
	uint64_t size;
	int quarantine;         /* a quarantine copy: no catalog record */
};

struct mig {
	struct ctl *c;
	store_backend_t *to;
	const store_tenant_t *t;
	struct mig_obj *objs;
	size_t n, cap;
	uint8_t (*have)[STORE_ID_LEN];          /* in the bucket already */
	size_t nhave, hcap;
	uint8_t (*done)[STORE_ID_LEN];          /* verified by a run */
	size_t ndone, dcap;
	FILE *journal;
	uint64_t copied, verified, skipped, bytes;
	int64_t t0, last_report;
	int tty;
};

static int mig_obj_cb(void *arg, const store_object_t *o)
{
	struct mig *m = arg;
	struct mig_obj *x;

	if (ar_grow((void **)&m->objs, &m->cap, m->n, sizeof *m->objs))
		return AR_ENOMEM;
	x = &m->objs[m->n++];
	memset(x, 0, sizeof *x);
	memcpy(x->id, o->id, STORE_ID_LEN);
	memcpy(x->sealed, o->sealed_sha256, STORE_HASH_LEN);
	x->retain_until = o->retain_until;
	x->size = o->sealed_size;
	return 0;
}

/* The gateway's quarantine copies with an object left (not deleted):
 * copied as they are (retain-until 0), checked in full. */
static int mig_q_cb(void *arg, const store_quarantine_t *q)
{
	struct mig *m = arg;
	struct mig_obj *x;

	if (q->state == STORE_Q_DELETED)
		return 0;
	if (ar_grow((void **)&m->objs, &m->cap, m->n, sizeof *m->objs))
		return AR_ENOMEM;
	x = &m->objs[m->n++];
	memset(x, 0, sizeof *x);
	memcpy(x->id, q->id, STORE_ID_LEN);
	x->quarantine = 1;
	return 0;
}

static int mig_have_cb(void *arg, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN])
{
	struct mig *m = arg;
	(void)tenant;
	if (ar_grow((void **)&m->have, &m->hcap, m->nhave, STORE_ID_LEN))
		return AR_ENOMEM;
	memcpy(m->have[m->nhave++], id, STORE_ID_LEN);
	return 0;
}

static int cmp_id16(const void *a, const void *b)
{
	return memcmp(a, b, STORE_ID_LEN);
}

static int in_set(uint8_t (*set)[STORE_ID_LEN], size_t n, const uint8_t *id)
{
	return n && bsearch(id, set, n, STORE_ID_LEN, cmp_id16) != NULL;
}

/* The ids a previous run verified: DATADIR/migrate/<tenant>.done */
static int mig_journal_open(struct mig *m, char *path, size_t len)
{
	char dir[4096], hex[2 * STORE_TENANT_LEN + 1], line[80];
	FILE *f;
	int rc;

	snprintf(dir, sizeof dir, "%s/migrate", m->c->cfg.data_dir);
	if ((rc = ar_mkdirs(dir, 0700)))
		return rc;
	snprintf(path, len, "%s/%s.done", dir, ar_hex(m->t->id,
	    STORE_TENANT_LEN, hex));
	if ((f = fopen(path, "r"))) {
		while (fgets(line, sizeof line, f)) {
			uint8_t id[STORE_ID_LEN];
			line[strcspn(line, "\n")] = '\0';
			if (ar_unhex(line, id, sizeof id))
				continue;    /* a line cut by a crash */
			if (ar_grow((void **)&m->done, &m->dcap, m->ndone,
			    STORE_ID_LEN)) {
				fclose(f);
				return AR_ENOMEM;
			}
			memcpy(m->done[m->ndone++], id, STORE_ID_LEN);
		}
		fclose(f);
	}
	if (m->ndone)
		qsort(m->done, m->ndone, STORE_ID_LEN, cmp_id16);
	if (!(m->journal = fopen(path, "a")))
		return ar_status_from_errno(errno);
	return 0;
}

static int mig_copy(struct mig *m, const struct mig_obj *x)
{
	store_get_t *g = NULL;
	store_put_t *p = NULL;
	unsigned char *buf = malloc(1 << 20);
	uint64_t off = 0, size;
	int rc;

	if (!buf)
		return AR_ENOMEM;
	if ((rc = store_backend_get_open(m->c->be, m->t->id, x->id, &g)))
		goto out;
	size = store_get_size(g);
	if ((rc = store_backend_put_begin(m->to, m->t->id, x->id, &p)))
		goto out;
	while (off < size) {
		size_t got = 0;
		if ((rc = store_get_pread(g, buf, 1 << 20, off, &got)))
			goto out;
		if (got == 0) {
			rc = AR_ETRUNC;
			goto out;
		}
		if ((rc = store_put_write(p, buf, got)))
			goto out;
		off += got;
	}
	rc = store_put_commit(p, x->retain_until);
	p = NULL;
	m->bytes += size;
out:
	store_put_abort(p);
	store_get_close(g);
	free(buf);
	return rc;
}

static void mig_progress(struct mig *m, int final)
{
	int64_t now = ar_mono_us();
	double secs = (double)(now - m->t0) / 1e6;
	size_t n = m->copied + m->verified + m->skipped;

	if (!final && now - m->last_report < 1000000)
		return;
	m->last_report = now;
	fprintf(stderr, "%smigrate: %s %zu/%zu objects (%.0f%%), %llu copied, "
	    "%llu MB, %.0f objects/s%s", m->tty ? "\r" : "", m->t->name, n,
	    m->n, m->n ? 100.0 * (double)n / (double)m->n : 100.0,
	    (unsigned long long)m->copied,
	    (unsigned long long)(m->bytes >> 20),
	    secs > 0 ? (double)m->copied / secs : 0.0,
	    m->tty && !final ? "   " : "\n");
}

static int mig_tenant(struct ctl *c, store_backend_t *to,
    const store_tenant_t *t)
{
	struct mig m;
	char path[4200], hex[2 * STORE_ID_LEN + 1];
	int rc;

	memset(&m, 0, sizeof m);
	m.c = c;
	m.to = to;
	m.t = t;
	m.tty = isatty(STDERR_FILENO);
	m.t0 = ar_mono_us();
	if (t->state == STORE_TENANT_SHREDDED)
		return 0;
	if ((rc = store_object_walk(c->st, t->id, 0, mig_obj_cb, &m)) ||
	    (rc = store_quarantine_walk(c->st, t->id, mig_q_cb, &m))) {
		rc = ctl_fail(rc, "migrate %s: %s", t->name, store_errmsg(c->st));
		goto out;
	}
	if ((rc = store_backend_walk(to, t->id, mig_have_cb, &m))) {
		rc = ctl_fail(rc, "migrate %s: listing the bucket: %s", t->name,
		    store_backend_errmsg(to));
		goto out;
	}
	if (m.nhave)
		qsort(m.have, m.nhave, STORE_ID_LEN, cmp_id16);
	if ((rc = mig_journal_open(&m, path, sizeof path))) {
		rc = ctl_fail(rc, "migrate %s: %s: %s", t->name, path,
		    ar_strerror(rc));
		goto out;
	}
	for (size_t i = 0; i < m.n; i++) {
		struct mig_obj *x = &m.objs[i];
		store_object_info_t info;
		store_object_t o;
		char why[256];
		int held;

		ar_hex(x->id, STORE_ID_LEN, hex);
		if (in_set(m.done, m.ndone, x->id)) {
			m.skipped++;
			mig_progress(&m, 0);
			continue;
		}
		if (x->quarantine) {
			/* no catalog hash: the fs copy's, checked in full */
			rc = store_object_check(c->be, c->ks, t->id, x->id,
			    &info, why, sizeof why);
			if (rc == AR_ENOENT) {
				fprintf(stderr, "migrate: %s: quarantine copy %s "
				    "has no object in %s: skipped\n", t->name,
				    hex, c->data_dir);
				m.skipped++;
				continue;
			}
			if (rc) {
				rc = ctl_fail(rc, "migrate %s: quarantine copy "
				    "%s does not verify: %s", t->name, hex, why);
				goto out;
			}
			memcpy(x->sealed, info.sealed_sha256, STORE_HASH_LEN);
		}
		if (!in_set(m.have, m.nhave, x->id)) {
			if ((rc = mig_copy(&m, x))) {
				rc = ctl_fail(rc, "migrate %s: object %s: %s",
				    t->name, hex, store_backend_errmsg(to));
				goto out;
			}
			m.copied++;
		} else {
			m.verified++;
		}
		/* read back from the bucket and check it in full; the
		 * bucket going away meanwhile is a pause, not a bad copy */
		rc = store_object_check(to, c->ks, t->id, x->id, &info, why,
		    sizeof why);
		if (rc && ar_status_temporary(rc)) {
			rc = ctl_fail(rc, "migrate %s: object %s: reading it "
			    "back from the bucket: %s", t->name, hex, why);
			goto out;
		}
		if (rc || memcmp(info.sealed_sha256, x->sealed,
		    STORE_HASH_LEN)) {
			rc = ctl_fail(rc ? rc : AR_ECORRUPT, "migrate %s: object "
			    "%s in the bucket does not verify: %s", t->name, hex,
			    rc ? why : "it differs from the catalog's");
			goto out;
		}
		/* a later retain-until, a legal hold */
		if (x->retain_until > info.retain_until &&
		    (rc = store_backend_extend_retention(to, t->id, x->id,
		    x->retain_until))) {
			rc = ctl_fail(rc, "migrate %s: object %s: retention: %s",
			    t->name, hex, store_backend_errmsg(to));
			goto out;
		}
		if (!x->quarantine &&
		    (rc = store_object_get(c->st, t->id, x->id, &o))) {
			rc = ctl_fail(rc, "migrate %s: object %s: %s", t->name,
			    hex, store_errmsg(c->st));
			goto out;
		}
		if (!x->quarantine) {
			held = store_object_held(c->st, &o, 0, NULL, 0);
			store_object_clear(&o);
			if (held < 0) {
				rc = ctl_fail(held, "migrate %s: object %s: holds: "
				    "%s", t->name, hex, store_errmsg(c->st));
				goto out;
			}
			if (held > 0 && (rc = store_backend_legal_hold(to, t->id,
			    x->id, 1))) {
				rc = ctl_fail(rc, "migrate %s: object %s: legal "
				    "hold: %s", t->name, hex,
				    store_backend_errmsg(to));
				goto out;
			}
		}
		if (fprintf(m.journal, "%s\n", hex) < 0 || fflush(m.journal)) {
			rc = ctl_fail(AR_EIO, "migrate %s: %s: %s", t->name, path,
			    strerror(errno));
			goto out;
		}
		mig_progress(&m, 0);
	}
	mig_progress(&m, 1);
	rc = 0;
out:
	/* whichever request the object store stopped answering (a copy, a
	 * read back, a retention, a legal hold): a pause */
	if (rc == CTL_TEMPFAIL)
		fprintf(stderr, "migrate: %s: stopped on a temporary failure; "
		    "the objects verified so far are kept: run migrate again "
		    "to resume\n", t->name);
	if (m.journal)
		fclose(m.journal);
	free(m.objs);
	free(m.have);
	free(m.done);
	return rc;
}

struct mig_all {
	struct ctl *c;
	store_backend_t *to;
	int rc;
};

static int mig_each(void *arg, const store_tenant_t *t)
{
	struct mig_all *a = arg;
	return (a->rc = mig_tenant(a->c, a->to, t));
}

/* archived.conf with store_backend = s3 (the same file otherwise). */
static int switch_config(struct ctl *c)
{
	char path[4200], *out = NULL, line[4096];
	size_t len = 0;
	FILE *in, *mem;
	int rc, found = 0;

	snprintf(path, sizeof path, "%s/%s", c->cfg.data_dir, AR_CONFIG_FILE);
	if (!(in = fopen(path, "r")))
		return ar_status_from_errno(errno);
	if (!(mem = open_memstream(&out, &len))) {
		fclose(in);
		return AR_ENOMEM;
	}
	while (fgets(line, sizeof line, in)) {
		if (!strncmp(line, "store_backend", 13) &&
		    strchr(" \t=", line[13])) {
			fputs("store_backend = s3\n", mem);
			found = 1;
		} else {
			fputs(line, mem);
		}
	}
	if (!found)
		fputs("store_backend = s3\n", mem);
	fclose(in);
	fclose(mem);
	rc = ar_file_write_atomic(path, out, len, 0600);
	free(out);
	return rc;
}

int cmd_migrate(struct ctl *c, int argc, char **argv)
{
	struct ar_config to_cfg;
	struct mig_all a = { c, NULL, 0 };
	char err[1024];
	int rc, sw = 0;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--switch"))
			sw = 1;
		else if (strcmp(argv[i], "--to") || i + 1 >= argc ||
		    strcmp(argv[++i], "s3"))
			return ctl_usage("usage: archivectl migrate --to s3 "
			    "[--switch]");
	if (!strcmp(c->cfg.store_backend, "s3"))
		return ctl_fail(AR_EINVAL, "%s already uses the s3 backend",
		    c->data_dir);
	to_cfg = c->cfg;
	ar_strlcpy(to_cfg.store_backend, "s3", sizeof to_cfg.store_backend);
	if ((rc = ar_config_open_backend(&to_cfg, &a.to, err, sizeof err)))
		return ctl_fail(rc, "%s (set the s3_* keys in archived.conf)",
		    err);
	if ((rc = store_backend_check(a.to, c->cfg.s3_max_clock_skew, NULL,
	    NULL))) {
		rc = ctl_fail(rc, "bucket %s: %s", c->cfg.s3_bucket,
		    store_backend_errmsg(a.to));
		goto out;
	}
	if ((rc = store_tenant_walk(c->st, mig_each, &a)) || a.rc) {
		rc = a.rc ? a.rc : ctl_fail(rc, "migrate: %s",
		    store_errmsg(c->st));
		goto out;
	}
	/* the log, its records and checkpoints: the bucket becomes the
	 * source of truth */
	store_set_ship_backend(c->st, a.to);
	if ((rc = store_ship(c->st, NULL))) {
		rc = ctl_fail(rc, "migrate: the log to the bucket: %s (run "
		    "migrate again to resume)", store_errmsg(c->st));
		goto out;
	}
	if (sw && (rc = switch_config(c))) {
		rc = ctl_fail(rc, "migrate: archived.conf: %s", ar_strerror(rc));
		goto out;
	}
	printf("migrated to bucket %s: every object copied and verified, the "
	    "log and checkpoints written%s\n", c->cfg.s3_bucket, sw ?
	    "; archived.conf now says store_backend = s3 (restart archived)" :
	    "; set store_backend = s3 in archived.conf (or run again with "
	    "--switch) and restart archived");
	rc = CTL_OK;
out:
	store_set_ship_backend(c->st, NULL);
	store_backend_close(a.to);
	return rc;
}
