/*
 * exports.c - legal exports as background jobs of the console and API
 * (role officer): POST starts a job (scope: a query, a hold or the whole
 * tenant) that a worker thread runs through jobs_export into a ZIP file
 * DATA/exports/<tenant hex>/<job id>.zip (mode 0600, directory 0700);
 * GET lists and shows jobs with their progress; download streams the ZIP
 * from its file descriptor (memory bounded); DELETE removes it.  A ZIP is
 * removed web_export_keep after it was made.
 *
 * The ZIP is plaintext outside the encrypted store: an export is by
 * definition a plaintext hand-over.  Job records live in memory only;
 * files an earlier run left behind are deleted at start.  Every start,
 * download and delete is an audit entry; the finished export is the
 * jobs module's STORE_LOG_EXPORT entry.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "ar.h"
#include "jobs/jobs.h"
#include "web_priv.h"

#define EXPORT_ID_LEN 16

enum { EX_QUEUED, EX_RUNNING, EX_DONE, EX_FAILED };
static const char *const state_names[] = { "queued", "running", "done",
	"failed" };

struct export_job {
	int used;
	char id[2 * EXPORT_ID_LEN + 1];
	uint8_t tenant[STORE_TENANT_LEN];
	char user[STORE_NAME_MAX];
	char client[WEB_ADDR_MAX];      /* address the job was started from */
	int state;
	int scope;                      /* enum jobs_scope, or -1: a hold */
	char *query;                    /* query text (wiped when freed) */
	char hold[64];
	unsigned flags;
	int64_t created, started, finished;
	jobs_progress_t prog;
	uint64_t messages, size;
	uint8_t manifest[32];
	char error[256];
	char path[4096];
	uint64_t seq;                   /* queue order */
};

struct web_exports {
	struct web *w;
	char dir[4096];                 /* DATA/exports */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	size_t n;                       /* slots */
	struct export_job *jobs;
	pthread_t *threads;
	size_t nthreads;
	uint64_t next_seq;
};

/* --- files ---------------------------------------------------------------- */

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4352];

	if (!d) {
		unlink(dir);
		return;
	}
	while ((e = readdir(d))) {
		struct stat sb;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (ar_path(path, sizeof path, "%s/%s", dir, e->d_name))
			continue;
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			rm_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* The ZIP and anything a stopped run left next to it. */
static void job_files_remove(struct export_job *j)
{
	char p[4200];
	if (!j->path[0])
		return;
	unlink(j->path);
	if (!ar_path(p, sizeof p, "%s.partial.d", j->path))
		rm_tree(p);
}

static void job_clear(struct export_job *j)
{
	if (j->query) {
		sodium_memzero(j->query, strlen(j->query));
		free(j->query);
	}
	sodium_memzero(j, sizeof *j);
}

/* Finished jobs past web_export_keep: files and records go.  Lock held. */
static void sweep_locked(struct web_exports *x)
{
	int64_t now = ar_now();
	for (size_t i = 0; i < x->n; i++) {
		struct export_job *j = &x->jobs[i];
		if (!j->used || j->state < EX_DONE ||
		    now - j->finished < x->w->cfg.export_keep)
			continue;
		job_files_remove(j);
		ar_log(AR_LOG_INFO, "web export id=%s status=expired", j->id);
		job_clear(j);
	}
}

/* --- the worker ----------------------------------------------------------- */

struct prog_arg {
	struct web_exports *x;
	struct export_job *j;
};

static void on_progress(void *arg, const jobs_progress_t *p)
{
	struct prog_arg *a = arg;
	pthread_mutex_lock(&a->x->lock);
	a->j->prog = *p;
	pthread_mutex_unlock(&a->x->lock);
}

/* Run one job (lock not held; j's scope fields are stable meanwhile). */
static void job_run(struct web_exports *x, struct export_job *j)
{
	jobs_export_params_t p;
	jobs_export_result_t res;
	struct prog_arg pa = { x, j };
	store_tenant_t t;
	store_hold_t *h = NULL;
	uint8_t *ids = NULL;
	size_t n_ids = 0;
	char err[1024] = "", label[80], tdir[4200], thex[33];
	int rc;

	memset(&p, 0, sizeof p);
	memset(&res, 0, sizeof res);
	ar_hex(j->tenant, STORE_TENANT_LEN, thex);
	if ((rc = store_tenant_get_id(x->w->st, j->tenant, &t))) {
		snprintf(err, sizeof err, "tenant: %s", ar_strerror(rc));
		goto done;
	}
	if (ar_path(tdir, sizeof tdir, "%s/%s", x->dir, thex) ||
	    (rc = ar_mkdirs(tdir, 0700))) {
		snprintf(err, sizeof err, "cannot create the export directory");
		rc = AR_EIO;
		goto done;
	}
	if (j->scope < 0) {
		if (!(h = malloc(sizeof *h))) {
			rc = AR_ENOMEM;
			goto done;
		}
		if ((rc = store_hold_get(x->w->st, t.id, j->hold, h))) {
			snprintf(err, sizeof err, "hold %s: %s", j->hold,
			    ar_strerror(rc));
			goto done;
		}
		if ((rc = jobs_hold_ids(x->w->st, x->w->idx, &t, h, &ids,
		    &n_ids, err, sizeof err)))
			goto done;
		p.scope = JOBS_SCOPE_IDS;
		p.ids = ids;
		p.n_ids = n_ids;
		snprintf(label, sizeof label, "hold:%s", j->hold);
		p.scope_label = label;
	} else {
		p.scope = j->scope;
		p.query = j->query;
	}
	p.st = x->w->st;
	p.idx = x->w->idx;
	p.tenant = &t;
	p.zip = j->path;
	p.flags = j->flags;
	p.by = j->user;
	p.client = j->client;
	p.progress = on_progress;
	p.progress_arg = &pa;
	rc = jobs_export(&p, &res, err, sizeof err);
	if (rc == 0)
		chmod(j->path, 0600);
done:
	if (h) {
		sodium_memzero(h, sizeof *h);
		free(h);
	}
	free(ids);
	pthread_mutex_lock(&x->lock);
	j->finished = ar_now();
	if (rc) {
		j->state = EX_FAILED;
		ar_strlcpy(j->error, err[0] ? err : ar_strerror(rc),
		    sizeof j->error);
		job_files_remove(j);
	} else {
		struct stat sb;
		j->state = EX_DONE;
		j->messages = res.messages;
		memcpy(j->manifest, res.manifest_sha256, 32);
		j->size = stat(j->path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	}
	pthread_mutex_unlock(&x->lock);
	ar_log(rc ? AR_LOG_ERR : AR_LOG_INFO, "web export id=%s status=%s "
	    "messages=%llu bytes=%llu%s%s%s", j->id, rc ? "failed" : "done",
	    (unsigned long long)res.messages, (unsigned long long)res.bytes,
	    rc ? " error=\"" : "", rc ? ar_strerror(rc) : "", rc ? "\"" : "");
}

static void *worker(void *arg)
{
	struct web_exports *x = arg;

	pthread_setname_np(pthread_self(), "ar-export");
	pthread_mutex_lock(&x->lock);
	for (;;) {
		struct export_job *pick = NULL;
		struct timespec ts;
		if (x->stop)
			break;
		for (size_t i = 0; i < x->n; i++) {
			struct export_job *j = &x->jobs[i];
			if (j->used && j->state == EX_QUEUED &&
			    (!pick || j->seq < pick->seq))
				pick = j;
		}
		if (!pick) {
			sweep_locked(x);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 60;
			pthread_cond_timedwait(&x->cond, &x->lock, &ts);
			continue;
		}
		pick->state = EX_RUNNING;
		pick->started = ar_now();
		pthread_mutex_unlock(&x->lock);
		job_run(x, pick);
		pthread_mutex_lock(&x->lock);
	}
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

int web_exports_init(struct web *w, const char *data_dir, char *err,
    size_t errlen)
{
	struct web_exports *x;
	DIR *d;
	struct dirent *e;
	char p[4352];

	if (!data_dir)
		return 0;       /* no exports (a server without a data dir) */
	if (!(x = calloc(1, sizeof *x)))
		return AR_ENOMEM;
	x->w = w;
	x->n = (size_t)w->cfg.export_queue;
	x->nthreads = (size_t)w->cfg.export_jobs;
	if (!x->n)
		x->n = 64;
	if (!x->nthreads)
		x->nthreads = 1;
	if (ar_path(x->dir, sizeof x->dir, "%s/exports", data_dir) ||
	    ar_mkdirs(x->dir, 0700)) {
		snprintf(err, errlen, "cannot create %s/exports", data_dir);
		free(x);
		return AR_EIO;
	}
	chmod(x->dir, 0700);
	/* job records do not survive a restart: neither do their files */
	if ((d = opendir(x->dir))) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
			    !ar_path(p, sizeof p, "%s/%s", x->dir, e->d_name))
				rm_tree(p);
		closedir(d);
	}
	x->jobs = calloc(x->n, sizeof *x->jobs);
	x->threads = calloc(x->nthreads, sizeof *x->threads);
	if (!x->jobs || !x->threads) {
		free(x->jobs);
		free(x->threads);
		free(x);
		return AR_ENOMEM;
	}
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	for (size_t i = 0; i < x->nthreads; i++)
		if (pthread_create(&x->threads[i], NULL, worker, x)) {
			x->nthreads = i;
			w->exports = x;
			snprintf(err, errlen, "cannot start export workers");
			return AR_ENOMEM;
		}
	w->exports = x;
	return 0;
}

void web_exports_free(struct web *w)
{
	struct web_exports *x = w->exports;
	if (!x)
		return;
	pthread_mutex_lock(&x->lock);
	x->stop = 1;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	for (size_t i = 0; i < x->nthreads; i++)
		pthread_join(x->threads[i], NULL);
	for (size_t i = 0; i < x->n; i++)
		job_clear(&x->jobs[i]);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	free(x->jobs);
	free(x->threads);
	free(x);
	w->exports = NULL;
}

/* --- the API -------------------------------------------------------------- */

static json_t *job_json(const struct export_job *j, int64_t keep)
{
	char ts[32], hex[65], url[96];
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(j->id));
	json_object_set_new(o, "state", json_string(state_names[j->state]));
	json_object_set_new(o, "scope", json_string(j->scope < 0 ? "hold" :
	    j->scope == JOBS_SCOPE_QUERY ? "query" : "all"));
	json_object_set_new(o, "query", j->scope == JOBS_SCOPE_QUERY ?
	    json_string(j->query) : json_null());
	json_object_set_new(o, "hold", j->scope < 0 ? json_string(j->hold) :
	    json_null());
	json_object_set_new(o, "mbox", json_boolean(j->flags &
	    JOBS_EXPORT_MBOX));
	json_object_set_new(o, "dat", json_boolean(j->flags &
	    JOBS_EXPORT_DAT));
	json_object_set_new(o, "created_by", json_string(j->user));
	json_object_set_new(o, "created", json_string(ar_time_fmt(j->created,
	    ts, sizeof ts)));
	json_object_set_new(o, "finished", j->finished ? json_string(
	    ar_time_fmt(j->finished, ts, sizeof ts)) : json_null());
	json_object_set_new(o, "progress", json_pack("{s:I,s:I,s:I}", "done",
	    (json_int_t)j->prog.done, "total", (json_int_t)j->prog.total,
	    "bytes", (json_int_t)j->prog.bytes));
	if (j->state == EX_DONE) {
		snprintf(url, sizeof url, "/api/v1/exports/%s/download", j->id);
		json_object_set_new(o, "messages", json_integer(
		    (json_int_t)j->messages));
		json_object_set_new(o, "size", json_integer(
		    (json_int_t)j->size));
		json_object_set_new(o, "manifest_sha256", json_string(ar_hex(
		    j->manifest, 32, hex)));
		json_object_set_new(o, "download_url", json_string(url));
		json_object_set_new(o, "expires", json_string(ar_time_fmt(
		    j->finished + keep, ts, sizeof ts)));
	}
	if (j->state == EX_FAILED)
		json_object_set_new(o, "error", json_string(j->error));
	return o;
}

static int unavailable(struct web_req *r)
{
	return web_reply_error(r, 503, "exports_off", "exports are not "
	    "available on this server", NULL);
}

static int exports_list(struct web_req *r)
{
	struct web_exports *x = r->w->exports;
	json_t *a = json_array();

	pthread_mutex_lock(&x->lock);
	sweep_locked(x);
	for (size_t i = 0; i < x->n; i++) {
		struct export_job *j = &x->jobs[i];
		if (j->used && !memcmp(j->tenant, r->sess.tenant,
		    STORE_TENANT_LEN)) {
			json_array_append_new(a, job_json(j,
			    r->w->cfg.export_keep));
		}
	}
	pthread_mutex_unlock(&x->lock);
	return web_reply_json(r, 200, json_pack("{s:o}", "exports", a));
}

static int export_start(struct web_req *r)
{
	struct web_exports *x = r->w->exports;
	struct export_job *j = NULL;
	uint8_t rid[EXPORT_ID_LEN];
	const char *scope, *q = NULL, *hold = NULL;
	char thex[33], err[512];
	unsigned flags = 0;
	store_hold_t *h;
	json_t *b, *v, *detail;
	int sc, rc;

	if (!(b = web_body_json(r)))
		return MHD_YES;
	scope = json_string_value(json_object_get(b, "scope"));
	if (!scope || (strcmp(scope, "query") && strcmp(scope, "hold") &&
	    strcmp(scope, "all"))) {
		json_decref(b);
		return web_reply_error(r, 400, "bad_scope", "scope: \"query\", "
		    "\"hold\" or \"all\"", NULL);
	}
	for (int k = 0; k < 2; k++) {
		v = json_object_get(b, k ? "dat" : "mbox");
		if (v && !json_is_boolean(v)) {
			json_decref(b);
			return web_reply_error(r, 400, "bad_request",
			    "mbox, dat: true or false", NULL);
		}
		if (json_is_true(v))
			flags |= k ? JOBS_EXPORT_DAT : JOBS_EXPORT_MBOX;
	}
	if (!strcmp(scope, "query")) {
		search_query_t *pq;
		sc = JOBS_SCOPE_QUERY;
		q = json_string_value(json_object_get(b, "query"));
		if (!q || !*q || strlen(q) > 4096) {
			json_decref(b);
			return web_reply_error(r, 400, "bad_request", "query: "
			    "the query (1-4096 bytes)", NULL);
		}
		if (search_query_parse(q, &pq, err, sizeof err)) {
			json_decref(b);
			return web_reply_query_error(r, err);
		}
		if (search_query_selects_all(pq)) {
			search_query_free(pq);
			json_decref(b);
			return web_reply_error(r, 400, "bad_request", "query: a "
			    "blank query would export every message; give a "
			    "term or a filter, or use the scope \"all\"", NULL);
		}
		search_query_free(pq);
	} else if (!strcmp(scope, "hold")) {
		sc = -1;
		hold = json_string_value(json_object_get(b, "hold"));
		if (!hold || !*hold || strlen(hold) >= sizeof j->hold) {
			json_decref(b);
			return web_reply_error(r, 400, "bad_request", "hold: "
			    "the name of a hold", NULL);
		}
		if (!(h = malloc(sizeof *h))) {
			json_decref(b);
			return MHD_NO;
		}
		rc = store_hold_get(r->w->st, r->sess.tenant, hold, h);
		free(h);
		if (rc) {
			char ref[80];
			ar_strlcpy(ref, hold, sizeof ref);
			json_decref(b);
			return rc == AR_ENOENT ? web_deny(r, "hold", ref) :
			    web_reply_error(r, 503, "unavailable",
			    ar_strerror(rc), NULL);
		}
	} else {
		sc = JOBS_SCOPE_ALL;
	}

	pthread_mutex_lock(&x->lock);
	sweep_locked(x);
	for (size_t i = 0; i < x->n && !j; i++)
		if (!x->jobs[i].used)
			j = &x->jobs[i];
	if (!j) {
		pthread_mutex_unlock(&x->lock);
		json_decref(b);
		return web_reply_error(r, 503, "too_many_exports", "too many "
		    "export jobs are kept: delete finished ones first", NULL);
	}
	memset(j, 0, sizeof *j);
	j->used = 1;
	randombytes_buf(rid, sizeof rid);
	ar_hex(rid, sizeof rid, j->id);
	memcpy(j->tenant, r->sess.tenant, STORE_TENANT_LEN);
	ar_strlcpy(j->user, r->sess.user, sizeof j->user);
	ar_strlcpy(j->client, r->client, sizeof j->client);
	j->state = EX_QUEUED;
	j->scope = sc;
	j->query = q ? strdup(q) : NULL;
	if (hold)
		ar_strlcpy(j->hold, hold, sizeof j->hold);
	j->flags = flags;
	j->created = ar_now();
	j->seq = ++x->next_seq;
	ar_hex(r->sess.tenant, STORE_TENANT_LEN, thex);
	if ((q && !j->query) || ar_path(j->path, sizeof j->path,
	    "%s/%s/%s.zip", x->dir, thex, j->id)) {
		job_clear(j);
		pthread_mutex_unlock(&x->lock);
		json_decref(b);
		return MHD_NO;
	}
	v = job_json(j, r->w->cfg.export_keep);
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->lock);

	detail = json_pack("{s:s,s:s}", "export", json_string_value(
	    json_object_get(v, "id")), "scope", scope);
	if (q)
		json_object_set_new(detail, "query", json_string(q));
	if (hold)
		json_object_set_new(detail, "hold", json_string(hold));
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "export_start", NULL,
	    NULL, detail);
	json_decref(b);
	return web_reply_json(r, 202, v);
}

/* The caller's job of that id, or NULL (lock held). */
static struct export_job *job_find(struct web_exports *x, struct web_req *r,
    const char *id)
{
	for (size_t i = 0; i < x->n; i++) {
		struct export_job *j = &x->jobs[i];
		if (j->used && !strcmp(j->id, id) && !memcmp(j->tenant,
		    r->sess.tenant, STORE_TENANT_LEN))
			return j;
	}
	return NULL;
}

static int export_show(struct web_req *r, const char *id)
{
	struct web_exports *x = r->w->exports;
	struct export_job *j;
	json_t *o;

	pthread_mutex_lock(&x->lock);
	if (!(j = job_find(x, r, id))) {
		pthread_mutex_unlock(&x->lock);
		return web_deny(r, "export", id);
	}
	o = job_json(j, r->w->cfg.export_keep);
	pthread_mutex_unlock(&x->lock);
	return web_reply_json(r, 200, o);
}

static int export_download(struct web_req *r, const char *id)
{
	struct web_exports *x = r->w->exports;
	struct export_job *j;
	struct MHD_Response *resp;
	struct stat sb;
	char disp[128];
	int fd = -1, state;

	pthread_mutex_lock(&x->lock);
	if (!(j = job_find(x, r, id))) {
		pthread_mutex_unlock(&x->lock);
		return web_deny(r, "export", id);
	}
	state = j->state;
	if (state == EX_DONE)
		fd = open(j->path, O_RDONLY | O_CLOEXEC);
	pthread_mutex_unlock(&x->lock);
	if (state != EX_DONE)
		return web_reply_error(r, 409, "not_ready", "the export is not "
		    "finished", NULL);
	if (fd < 0 || fstat(fd, &sb)) {
		if (fd >= 0)
			close(fd);
		return web_reply_error(r, 410, "gone", "the export file is "
		    "gone", NULL);
	}
	/* streamed from the file: memory does not grow with its size */
	if (!(resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd))) {
		close(fd);
		return MHD_NO;
	}
	snprintf(disp, sizeof disp, "attachment; filename=\"export-%s.zip\"",
	    id);
	MHD_add_response_header(resp, "Content-Type", "application/zip");
	MHD_add_response_header(resp, "Content-Disposition", disp);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "export_download",
	    NULL, NULL, json_pack("{s:s,s:I}", "export", id, "size",
	    (json_int_t)sb.st_size));
	return web_reply(r, 200, resp, NULL);
}

static int export_delete(struct web_req *r, const char *id)
{
	struct web_exports *x = r->w->exports;
	struct export_job *j;

	pthread_mutex_lock(&x->lock);
	if (!(j = job_find(x, r, id))) {
		pthread_mutex_unlock(&x->lock);
		return web_deny(r, "export", id);
	}
	if (j->state == EX_RUNNING) {
		pthread_mutex_unlock(&x->lock);
		return web_reply_error(r, 409, "running", "the export is "
		    "running: delete it when it has ended", NULL);
	}
	job_files_remove(j);
	job_clear(j);
	pthread_mutex_unlock(&x->lock);
	web_audit(r, r->sess.tenant, STORE_LOG_ACCESS, "export_delete", NULL,
	    NULL, json_pack("{s:s}", "export", id));
	return web_reply_json(r, 200, json_pack("{s:s,s:b}", "id", id,
	    "deleted", 1));
}

int web_api_exports(struct web_req *r, const char *path)
{
	char id[2 * EXPORT_ID_LEN + 1];
	const char *rest;
	size_t n;

	if (strncmp(path, "exports", 7) || (path[7] && path[7] != '/'))
		return AR_ENOENT;
	path += 7;
	if (web_require(r, STORE_ROLE_OFFICER))
		return MHD_YES;
	if (!r->w->exports)
		return unavailable(r);
	if (!*path) {
		if (!strcmp(r->method, "GET"))
			return exports_list(r);
		if (!strcmp(r->method, "POST"))
			return web_require_csrf(r) ? MHD_YES : export_start(r);
		return web_reply_error(r, 405, "method_not_allowed",
		    "exports take GET or POST", NULL);
	}
	path++;
	n = strcspn(path, "/");
	rest = path + n;
	if (n != 2 * EXPORT_ID_LEN)
		return web_deny(r, "export", path);
	memcpy(id, path, n);
	id[n] = '\0';
	if (!*rest) {
		if (!strcmp(r->method, "GET"))
			return export_show(r, id);
		if (!strcmp(r->method, "DELETE"))
			return web_require_csrf(r) ? MHD_YES :
			    export_delete(r, id);
		return web_reply_error(r, 405, "method_not_allowed",
		    "an export takes GET or DELETE", NULL);
	}
	if (!strcmp(rest, "/download")) {
		if (strcmp(r->method, "GET"))
			return web_reply_error(r, 405, "method_not_allowed",
			    "download takes GET", NULL);
		return export_download(r, id);
	}
	return web_deny(r, "export", path);
}
