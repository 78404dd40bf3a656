/*
 * ctl_mail.c - archivectl import, list, show, get and log.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ar.h"
#include "ctl.h"
#include "ingest/ingest.h"

/* --tenant NAME [--from N] and positional arguments. */
struct args {
	const char *tenant;
	unsigned long long from;
	int first;          /* index of the first positional argument */
};

static int parse(int argc, char **argv, struct args *a, const char *usage)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "from", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(a, 0, sizeof *a);
	optind = 0;   /* 0: full getopt re-initialisation */
	while ((ch = getopt_long(argc, argv, "t:f:", opts, NULL)) != -1) {
		switch (ch) {
		case 't': a->tenant = optarg; break;
		case 'f': a->from = strtoull(optarg, NULL, 10); break;
		default: return ctl_usage("usage: archivectl %s", usage);
		}
	}
	if (!a->tenant)
		return ctl_usage("%s needs --tenant NAME", argv[0]);
	a->first = optind;
	return 0;
}

/* --- import ---------------------------------------------------------------- */

static void progress(void *arg, const ingest_import_stats_t *s)
{
	double secs = (double)s->elapsed_us / 1e6;
	(void)arg;
	fprintf(stderr, "\rimport: %llu messages, %llu stored, %llu already "
	    "present, %llu failed, %.0f msg/s   ",
	    (unsigned long long)s->messages, (unsigned long long)s->stored,
	    (unsigned long long)s->duplicates, (unsigned long long)s->failed,
	    secs > 0 ? (double)s->messages / secs : 0.0);
}

static void failure(void *arg, const ingest_source_t *src, int status,
    const char *why)
{
	(void)arg;
	(void)status;
	fprintf(stderr, "archivectl: import: %s (offset %llu): %s\n",
	    src->path, (unsigned long long)src->offset, why);
}

static void skipped(void *arg, const ingest_source_t *src)
{
	(void)arg;
	if (src->kind == INGEST_MBOX)
		fprintf(stderr, "archivectl: import: %s (offset %llu): skipped, "
		    "not a message: %s\n", src->path,
		    (unsigned long long)src->offset, src->problem);
	else
		fprintf(stderr, "archivectl: import: %s: skipped, not a "
		    "message: %s\n", src->path, src->problem);
}

int cmd_import(struct ctl *c, int argc, char **argv)
{
	ingest_import_opts_t o;
	ingest_import_stats_t s;
	store_tenant_t t;
	struct args a;
	char err[1024] = "";
	double secs;
	int rc;

	/* --no-index: leave the new messages to archived's indexer;
	 * --force: store files that are not messages too (flagged unparsed);
	 * --progress: a progress line after each batch also when stderr is
	 * not a terminal (for scripts that watch it) */
	int no_index = 0, force = 0, want_progress = 0, out = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-index"))
			no_index = 1;
		else if (!strcmp(argv[i], "--force"))
			force = 1;
		else if (!strcmp(argv[i], "--progress"))
			want_progress = 1;
		else
			argv[out++] = argv[i];
	}
	argc = out;
	argv[argc] = NULL;
	if ((rc = parse(argc, argv, &a, "import --tenant NAME [--no-index] "
	    "[--force] [--progress] PATH...")))
		return rc;
	if (a.first >= argc)
		return ctl_usage("import needs at least one PATH (.eml file, "
		    "mbox file or maildir)");
	if ((rc = ctl_tenant(c, a.tenant, &t)))
		return rc;
	memset(&o, 0, sizeof o);
	o.threads = (int)c->cfg.import_threads;
	o.batch = (int)c->cfg.import_batch;
	o.failure = failure;
	o.force = force;
	o.skipped = skipped;
	if ((isatty(STDERR_FILENO) && !c->json) || want_progress)
		o.progress = progress;
	rc = ingest_import(c->st, &t, (const char *const *)argv + a.first,
	    (size_t)(argc - a.first), &o, &s, err, sizeof err);
	if (o.progress)
		fputc('\n', stderr);
	/* what was committed (also by an import that stopped) is indexed */
	search_sync_stats_t ix;
	int irc = 0;
	memset(&ix, 0, sizeof ix);
	if (!no_index && (s.stored || s.duplicates))
		irc = ctl_index_sync(c, &t, &ix);
	secs = (double)s.elapsed_us / 1e6;
	if (c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "messages", json_integer(s.messages));
		json_object_set_new(j, "stored", json_integer(s.stored));
		json_object_set_new(j, "duplicates",
		    json_integer(s.duplicates));
		json_object_set_new(j, "failed", json_integer(s.failed));
		json_object_set_new(j, "skipped", json_integer(s.skipped));
		json_object_set_new(j, "bytes", json_integer(s.bytes));
		json_object_set_new(j, "seconds", json_real(secs));
		json_object_set_new(j, "latency_p50_ms",
		    json_real((double)s.latency_p50_us / 1000));
		json_object_set_new(j, "latency_p99_ms",
		    json_real((double)s.latency_p99_us / 1000));
		json_object_set_new(j, "latency_max_ms",
		    json_real((double)s.latency_max_us / 1000));
		{
			struct rusage ru;
			getrusage(RUSAGE_SELF, &ru);
			json_object_set_new(j, "peak_rss_kb",
			    json_integer(ru.ru_maxrss));
		}
		json_object_set_new(j, "indexed", json_integer(
		    (json_int_t)ix.indexed));
		json_object_set_new(j, "ok", json_boolean(rc == 0 && irc == 0));
		if (rc)
			json_object_set_new(j, "error", json_string(err));
		ctl_json_out(j);
	} else {
		printf("imported %llu messages into %s: %llu stored, %llu "
		    "already present, %llu failed (%.2f s, %.0f msg/s)\n",
		    (unsigned long long)s.messages, t.name,
		    (unsigned long long)s.stored,
		    (unsigned long long)s.duplicates,
		    (unsigned long long)s.failed, secs,
		    secs > 0 ? (double)s.messages / secs : 0.0);
		if (ix.indexed || ix.removed)
			printf("indexed %llu messages (index at log entry "
			    "%llu)\n", (unsigned long long)ix.indexed,
			    (unsigned long long)ix.seq);
		if (s.skipped)
			printf("skipped %llu files or mbox entries that are not "
			    "messages (no header block; listed on stderr): "
			    "--force imports them as unparsed\n",
			    (unsigned long long)s.skipped);
	}
	if (rc)
		return ctl_fail(rc, "import: %s", err);
	if (irc)
		return irc;
	/* The batch ends with a signed log head. */
	store_log_checkpoint(c->st, t.id, NULL);
	if (s.skipped) {
		fprintf(stderr, "archivectl: import: %llu skipped: not messages "
		    "(exit status %d; --force imports them)\n",
		    (unsigned long long)s.skipped, CTL_SKIPPED);
		return CTL_SKIPPED;
	}
	return CTL_OK;
}

/* --- list and show ------------------------------------------------------------ */

static json_t *object_json(const store_object_t *o)
{
	char hex[2 * STORE_HASH_LEN + 1], ts[32];
	json_t *j = json_object(), *m = NULL, *flags = json_array();

	json_object_set_new(j, "id", json_string(ar_hex(o->id, STORE_ID_LEN,
	    hex)));
	json_object_set_new(j, "received", json_string(ar_time_fmt(
	    o->received, ts, sizeof ts)));
	json_object_set_new(j, "retain_until", json_string(ar_time_fmt(
	    o->retain_until, ts, sizeof ts)));
	json_object_set_new(j, "size", json_integer((json_int_t)o->plain_size));
	json_object_set_new(j, "sealed_size",
	    json_integer((json_int_t)o->sealed_size));
	json_object_set_new(j, "key_version", json_integer(o->key_version));
	json_object_set_new(j, "log_seq", json_integer((json_int_t)o->log_seq));
	json_object_set_new(j, "arrivals", json_integer(o->arrivals));
	json_object_set_new(j, "sha256", json_string(ar_hex(o->plain_sha256,
	    STORE_HASH_LEN, hex)));
	json_object_set_new(j, "sealed_sha256", json_string(ar_hex(
	    o->sealed_sha256, STORE_HASH_LEN, hex)));
	if (o->flags & STORE_OBJ_UNPARSED)
		json_array_append_new(flags, json_string("unparsed"));
	if (o->flags & STORE_OBJ_JOURNAL)
		json_array_append_new(flags, json_string("journal"));
	if (o->flags & STORE_OBJ_LINKED)
		json_array_append_new(flags, json_string("linked"));
	json_object_set_new(j, "flags", flags);
	if (o->meta)
		m = json_loads(o->meta, 0, NULL);
	json_object_set_new(j, "meta", m ? m : json_object());
	return j;
}

struct list_ctx {
	json_t *arr;
	int json;
	unsigned long long n;
};

static int list_cb(void *arg, const store_object_t *o)
{
	struct list_ctx *l = arg;
	json_t *j = object_json(o), *m = json_object_get(j, "meta");
	const char *from = json_string_value(json_object_get(m, "from"));
	const char *subj = json_string_value(json_object_get(m, "subject"));
	char ts[32];

	l->n++;
	if (l->json) {
		json_array_append_new(l->arr, j);
		return 0;
	}
	printf("%s  %s  %9llu  %-30.30s  %.60s\n",
	    json_string_value(json_object_get(j, "id")),
	    ar_time_fmt(o->received, ts, sizeof ts),
	    (unsigned long long)o->plain_size, from ? from : "-",
	    subj ? subj : "-");
	json_decref(j);
	return 0;
}

int cmd_list(struct ctl *c, int argc, char **argv)
{
	struct list_ctx l = { NULL, c->json, 0 };
	store_tenant_t t;
	struct args a;
	int rc;

	if ((rc = parse(argc, argv, &a, "list --tenant NAME")))
		return rc;
	if (a.first != argc)
		return ctl_usage("list takes no PATH or ID");
	if ((rc = ctl_tenant(c, a.tenant, &t)))
		return rc;
	if ((rc = ctl_audit(c, &t, "list", NULL)))
		return rc;
	if (c->json)
		l.arr = json_array();
	else
		printf("%-32s  %-20s  %9s  %-30s  %s\n", "ID", "RECEIVED",
		    "SIZE", "FROM", "SUBJECT");
	rc = store_object_walk(c->st, t.id, 1, list_cb, &l);
	if (rc) {
		json_decref(l.arr);
		return ctl_fail(rc, "list: %s", store_errmsg(c->st));
	}
	if (c->json)
		ctl_json_out(l.arr);
	return CTL_OK;
}

int cmd_show(struct ctl *c, int argc, char **argv)
{
	uint8_t id[STORE_ID_LEN];
	store_tenant_t t;
	store_object_t o;
	struct args a;
	json_t *j;
	int rc;

	if ((rc = parse(argc, argv, &a, "show --tenant NAME ID")))
		return rc;
	if (a.first + 1 != argc)
		return ctl_usage("show takes one object ID");
	if ((rc = ctl_object_id(argv[a.first], id)))
		return rc;
	if ((rc = ctl_tenant(c, a.tenant, &t)))
		return rc;
	if ((rc = store_object_get(c->st, t.id, id, &o)))
		return ctl_fail(rc, "show: %s", store_errmsg(c->st));
	if ((rc = ctl_audit(c, &t, "show", id))) {
		store_object_clear(&o);
		return rc;
	}
	j = object_json(&o);
	store_object_clear(&o);
	if (c->json) {
		ctl_json_out(j);
	} else {
		char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("%s\n", s ? s : "");
		free(s);
		json_decref(j);
	}
	return CTL_OK;
}

/* --- get ------------------------------------------------------------------- */

/* Stream one message's original bytes to out. */
static int get_one(struct ctl *c, const store_tenant_t *t, const char *hex,
    FILE *out)
{
	uint8_t id[STORE_ID_LEN];
	unsigned char buf[64 * 1024];
	store_object_t o;
	store_reader_t *r;
	size_t got;
	int rc;

	if ((rc = ctl_object_id(hex, id)))
		return rc;
	/* Only objects the catalog knows for this tenant are served. */
	if ((rc = store_object_get(c->st, t->id, id, &o)))
		return ctl_fail(rc, "get: %s", store_errmsg(c->st));
	store_object_clear(&o);
	if ((rc = ctl_audit(c, t, "get", id)))
		return rc;
	if ((rc = store_reader_open(c->be, c->ks, t->id, id, &r)))
		return ctl_fail(rc, "get %s: %s", hex, rc == AR_EKEYSVC ?
		    keysvc_errmsg(c->ks) : ar_strerror(rc));
	while ((rc = store_reader_read(r, buf, sizeof buf, &got)) == 0 &&
	    got > 0) {
		if (fwrite(buf, 1, got, out) != got) {
			rc = AR_EIO;
			break;
		}
	}
	if (rc) {
		int xrc = ctl_fail(rc, "get %s: %s", hex,
		    rc == AR_EIO ? "writing failed" : store_reader_errmsg(r));
		store_reader_close(r);
		return xrc;
	}
	store_reader_close(r);
	if (fflush(out) != 0)
		return ctl_fail(AR_EIO, "get %s: writing failed", hex);
	return 0;
}

int cmd_get(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *outdir = NULL;
	store_tenant_t t;
	int ch, rc;

	optind = 0;   /* 0: full getopt re-initialisation */
	while ((ch = getopt_long(argc, argv, "t:o:", opts, NULL)) != -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'o': outdir = optarg; break;
		default: return ctl_usage("usage: archivectl get --tenant NAME "
		    "ID | get --tenant NAME --out DIR ID...");
		}
	}
	if (!tenant)
		return ctl_usage("get needs --tenant NAME");
	if (optind >= argc || (!outdir && optind + 1 != argc))
		return ctl_usage("get takes one ID (or --out DIR and IDs)");
	if ((rc = ctl_tenant(c, tenant, &t)))
		return rc;
	if (!outdir)
		return get_one(c, &t, argv[optind], stdout);
	for (int i = optind; i < argc; i++) {
		char path[4096];
		FILE *f;
		if (ar_path(path, sizeof path, "%s/%s.eml", outdir, argv[i]))
			return ctl_fail(AR_ETOOBIG, "%s: path too long", outdir);
		/* never overwrite: a name that exists is an error */
		if (!(f = fopen(path, "wx")))
			return ctl_fail(ar_status_from_errno(errno), "%s: %s",
			    path, strerror(errno));
		rc = get_one(c, &t, argv[i], f);
		if (fclose(f) != 0 && rc == 0)
			rc = ctl_fail(AR_EIO, "%s: %s", path, strerror(errno));
		if (rc) {
			unlink(path);
			return rc;
		}
	}
	return CTL_OK;
}

/* --- log ------------------------------------------------------------------- */

struct log_ctx {
	json_t *arr;
	int json;
};

static int log_cb(void *arg, const store_log_entry_t *e)
{
	struct log_ctx *l = arg;
	char obj[2 * STORE_ID_LEN + 1], dig[2 * STORE_HASH_LEN + 1], ts[32];
	static const uint8_t zero[STORE_ID_LEN];

	if (memcmp(e->object, zero, STORE_ID_LEN))
		ar_hex(e->object, STORE_ID_LEN, obj);
	else
		strcpy(obj, "-");
	ar_time_fmt(e->time, ts, sizeof ts);
	if (l->json) {
		json_t *j = json_object(), *d = e->detail ?
		    json_loads(e->detail, 0, NULL) : NULL;
		json_object_set_new(j, "seq", json_integer((json_int_t)e->seq));
		json_object_set_new(j, "time", json_string(ts));
		json_object_set_new(j, "kind",
		    json_string(store_log_kind_name(e->kind)));
		json_object_set_new(j, "object", json_string(obj));
		json_object_set_new(j, "digest", json_string(ar_hex(e->digest,
		    STORE_HASH_LEN, dig)));
		json_object_set_new(j, "hash", json_string(ar_hex(e->hash,
		    STORE_HASH_LEN, dig)));
		json_object_set_new(j, "detail", d ? d : json_null());
		json_array_append_new(l->arr, j);
	} else {
		printf("%8llu  %s  %-8s  %s  %s\n", (unsigned long long)e->seq,
		    ts, store_log_kind_name(e->kind), obj,
		    e->detail ? e->detail : "");
	}
	return 0;
}

int cmd_log(struct ctl *c, int argc, char **argv)
{
	struct log_ctx l = { NULL, c->json };
	store_tenant_t t;
	struct args a;
	int rc;

	if ((rc = parse(argc, argv, &a, "log --tenant NAME [--from SEQ]")))
		return rc;
	if (a.first != argc)
		return ctl_usage("log takes no arguments");
	if ((rc = ctl_tenant(c, a.tenant, &t)))
		return rc;
	if (c->json)
		l.arr = json_array();
	rc = store_log_walk(c->st, t.id, a.from, log_cb, &l);
	if (rc) {
		json_decref(l.arr);
		return ctl_fail(rc, "log: %s", store_errmsg(c->st));
	}
	if (c->json)
		ctl_json_out(l.arr);
	return CTL_OK;
}
