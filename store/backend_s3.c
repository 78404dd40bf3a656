/*
 * backend_s3.c - the "s3" object store backend: S3 with Object Lock.
 *
 * Objects are <prefix>/<tenant hex>/o/<id hex>, written with
 * x-amz-object-lock-mode COMPLIANCE and the retain-until of their sealed
 * header.  An object up to part_size is kept in memory until its commit
 * and sent in one PUT; a larger one is sent as a multipart upload, a part
 * at a time as it is written (memory: one part).  The puts of
 * store_put_commit_many run in parallel on the client's pool.
 *
 * Write-once: every PUT carries If-None-Match: *, which some servers
 * ignore on a versioned bucket (Ceph RGW 16 does), so with write_check a
 * group of puts is framed by listings of the names' prefix: a name
 * present before is refused (AR_EEXIST) without a request, and after the
 * puts the versions of each name are listed: a put that is not the
 * name's oldest version lost to another writer and is reported as
 * AR_EEXIST (its bytes stay, locked, and verify reports the name).
 *
 * Reads are ranged GETs of 1 MiB windows (two kept); deletes remove every
 * version of the name once neither retention nor a legal hold forbids it
 * (checked here first, then enforced by the server, whose refusal is
 * reported as it came).
 */
#include "store/backend_s3.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ar.h"
#include "store/seal_format.h"

#define WINDOW      (1u << 20)
#define MIN_PART    (5ull << 20)
#define MAX_PARTS   10000
#define BLOB_MAX    (256u << 20)


typedef struct s3_put {
	store_put_t base;               /* first */
	char key[S3_KEY_MAX];
	unsigned char *buf;
	size_t len, cap;
	int status;                     /* sticky error */
	/* multipart */
	char upload_id[256];
	int nparts;
	char (*etags)[80];
	uint64_t total;
	int64_t retain_until;
	char version[128];              /* of the committed put */
} s3_put_t;

typedef struct s3_window {
	uint64_t off;
	size_t len;
	unsigned char *data;
	uint64_t used;                  /* LRU tick */
} s3_window_t;

typedef struct s3_get {
	store_get_t base;               /* first */
	char key[S3_KEY_MAX];
	uint64_t size, tick;
	s3_window_t w[2];
} s3_get_t;

static int put_sub(s3_backend_t *b, const char *key, const char *sub,
    const char *xml);

s3_backend_t *s3b(store_backend_t *be)
{
	return (s3_backend_t *)be;
}

int fail_req(store_backend_t *be, const s3_req_t *r, int rc)
{
	char why[600];
	return store_be_fail(be, rc, "%s", s3_describe(r, why, sizeof why));
}

void obj_key(s3_backend_t *b, const uint8_t *tenant, const uint8_t *id,
    char *out, size_t len)
{
	char th[2 * STORE_TENANT_LEN + 1], ih[2 * STORE_ID_LEN + 1];
	snprintf(out, len, "%s%s/o/%s", b->prefix,
	    ar_hex(tenant, STORE_TENANT_LEN, th), ar_hex(id, STORE_ID_LEN, ih));
}

void tenant_prefix(s3_backend_t *b, const uint8_t *tenant, char *out,
    size_t len)
{
	char th[2 * STORE_TENANT_LEN + 1];
	snprintf(out, len, "%s%s/", b->prefix,
	    ar_hex(tenant, STORE_TENANT_LEN, th));
}

/* --- write-once checks around a group of puts --------------------------------- */

struct name_set {
	const char **keys;              /* the group's names */
	size_t n;
	int *seen;                      /* before: present; after: versions */
	char (*oldest)[128];            /* after: the oldest version seen */
};

static int set_index(struct name_set *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->keys[i], key))
			return (int)i;
	return -1;
}

static int seen_cb(void *arg, const char *key, const char *version,
    int is_prefix)
{
	struct name_set *s = arg;
	int i = is_prefix ? -1 : set_index(s, key);

	if (i >= 0) {
		s->seen[i]++;
		/* versions come newest first: the last one is the oldest */
		if (s->oldest)
			ar_strlcpy(s->oldest[i], version, sizeof s->oldest[i]);
	}
	return 0;
}

/* One listing for the whole group: the names of a group (object ids made
 * within seconds of each other) sort next to each other, so the listing
 * runs from just before the smallest to the largest, under their common
 * prefix. */
static int list_groups(s3_backend_t *b, struct name_set *s, int versions)
{
	const char *lo = NULL, *hi = NULL;
	char pre[S3_KEY_MAX], start[S3_KEY_MAX];
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (!lo || strcmp(s->keys[i], lo) < 0)
			lo = s->keys[i];
		if (!hi || strcmp(s->keys[i], hi) > 0)
			hi = s->keys[i];
	}
	if (!lo)
		return 0;
	while (lo[n] && lo[n] == hi[n])
		n++;
	snprintf(pre, sizeof pre, "%.*s", (int)n, lo);
	/* a proper prefix of lo sorts just before it */
	snprintf(start, sizeof start, "%.*s", (int)strlen(lo) - 1, lo);
	return s3_list_range(b, pre, NULL, versions, strlen(start) >= n ?
	    start : NULL, hi, seen_cb, s);
}

/* --- put ---------------------------------------------------------------------- */

static int s3_put_begin(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, store_put_t **out)
{
	s3_put_t *p = calloc(1, sizeof *p);

	if (!p)
		return store_be_fail(be, AR_ENOMEM, "out of memory");
	p->base.be = be;
	obj_key(s3b(be), tenant, id, p->key, sizeof p->key);
	*out = &p->base;
	return 0;
}

/* An object whose retain-until has passed (0: quarantine copies, spool
 * objects) is put without retention: S3 refuses a retain-until date in
 * the past (400 InvalidArgument), and such an object may go at once.  A
 * bucket default retention would still lock it: the bucket check refuses
 * a bucket that has one. */
static int retained(int64_t until)
{
	return until > ar_now();
}

/* The lock headers of a put retained until until, added to r (mode and
 * date hold them; len bytes each); none when it is not retained. */
static void lock_hdrs(s3_req_t *r, int64_t until, char *mode, char *date,
    size_t len)
{
	char iso[40];

	if (!retained(until))
		return;
	s3_time_fmt(until, iso, sizeof iso);
	snprintf(mode, len, "x-amz-object-lock-mode: COMPLIANCE");
	snprintf(date, len, "x-amz-object-lock-retain-until-date: %s", iso);
	r->hdr[r->nhdr++] = mode;
	r->hdr[r->nhdr++] = date;
	r->lock_headers = 1;
}

/* Upload buf as the next part of p's multipart upload (started here with
 * the lock headers, whose date comes from the sealed header). */
static int upload_part(s3_put_t *p)
{
	s3_backend_t *b = s3b(p->base.be);
	char q[S3_QUERY_MAX], mode[80], date[120];
	s3_req_t *r = malloc(sizeof *r);
	int rc = 0;

	if (!r)
		return AR_ENOMEM;
	if (!p->upload_id[0]) {
		seal_header_t h;
		char why[160];
		if ((rc = seal_header_parse(p->buf, p->len, &h, why,
		    sizeof why))) {
			free(r);
			return store_be_fail(p->base.be, rc, "%s: %s", p->key,
			    why);
		}
		p->retain_until = h.retain_until;
		s3_req_init(r, "POST", p->key, "uploads=");
		lock_hdrs(r, h.retain_until, mode, date, sizeof mode);
		s3_run1(&b->c, r);
		if ((rc = s3_status(r)) == 0 && s3_xml_get((char *)r->resp,
		    r->resp_len, "UploadId", NULL, p->upload_id,
		    sizeof p->upload_id))
			rc = AR_EPROTO;
		if (rc) {
			fail_req(p->base.be, r, rc);
			goto out;
		}
		s3_req_clear(r);
	}
	if (p->nparts >= MAX_PARTS) {
		rc = store_be_fail(p->base.be, AR_ETOOBIG, "%s: more than %d "
		    "parts", p->key, MAX_PARTS);
		goto out;
	}
	if (!(p->nparts % 64)) {
		void *e = realloc(p->etags, (size_t)(p->nparts + 64) *
		    sizeof *p->etags);
		if (!e) {
			rc = AR_ENOMEM;
			goto out;
		}
		p->etags = e;
	}
	snprintf(q, sizeof q, "partNumber=%d&uploadId=%s", p->nparts + 1,
	    p->upload_id);
	s3_req_init(r, "PUT", p->key, q);
	r->body = p->buf;
	r->body_len = p->len;
	s3_run1(&b->c, r);
	if ((rc = s3_status(r))) {
		fail_req(p->base.be, r, rc);
		goto out;
	}
	ar_strlcpy(p->etags[p->nparts++], r->etag, sizeof p->etags[0]);
	p->total += p->len;
	p->len = 0;
out:
	s3_req_clear(r);
	free(r);
	return rc;
}

static int s3_put_write(store_put_t *put, const void *data, size_t len)
{
	s3_put_t *p = (s3_put_t *)put;
	uint64_t part = s3b(put->be)->part_size;
	const unsigned char *src = data;

	while (len && !p->status) {
		size_t room, n;
		if (p->len == part && (p->status = upload_part(p)))
			break;
		if (p->cap < part && p->len + len > p->cap) {
			size_t cap = p->cap ? p->cap : 64 * 1024;
			unsigned char *nb;
			while (cap < p->len + len && cap < part)
				cap *= 2;
			if (cap > part)
				cap = (size_t)part;
			if (!(nb = realloc(p->buf, cap))) {
				p->status = store_be_fail(put->be, AR_ENOMEM,
				    "out of memory");
				break;
			}
			p->buf = nb;
			p->cap = cap;
		}
		room = p->cap - p->len;
		n = len < room ? len : room;
		memcpy(p->buf + p->len, src, n);
		p->len += n;
		src += n;
		len -= n;
	}
	return p->status;
}

static void put_free(s3_put_t *p)
{
	free(p->buf);
	free(p->etags);
	free(p);
}

static void abort_upload(s3_put_t *p)
{
	char q[S3_QUERY_MAX];
	s3_req_t *r;

	if (!p->upload_id[0] || !(r = malloc(sizeof *r)))
		return;
	snprintf(q, sizeof q, "uploadId=%s", p->upload_id);
	s3_req_init(r, "DELETE", p->key, q);
	s3_run1(&s3b(p->base.be)->c, r);
	s3_req_clear(r);
	free(r);
}

static void s3_put_abort(store_put_t *put)
{
	abort_upload((s3_put_t *)put);
	put_free((s3_put_t *)put);
}

/* The request that finishes put p: a PUT of its bytes, or the
 * CompleteMultipartUpload of its parts (after its last part). */
static int finish_req(s3_put_t *p, int64_t retain_until, s3_req_t *r,
    char *mode, char *date, char **xml)
{
	*xml = NULL;
	if (!p->upload_id[0]) {
		s3_req_init(r, "PUT", p->key, "");
		lock_hdrs(r, retain_until, mode, date, 120);
		r->hdr[r->nhdr++] = "If-None-Match: *";
		/* Content-MD5 on every PUT, locked or not */
		r->lock_headers = 1;
		r->body = p->buf ? p->buf : (const unsigned char *)"";
		r->body_len = p->len;
		return 0;
	}
	{
		char q[S3_QUERY_MAX];
		size_t cap = 128 + (size_t)p->nparts * 160, o;
		int rc;
		if (p->len && (rc = upload_part(p)))
			return rc;
		if (!(*xml = malloc(cap)))
			return AR_ENOMEM;
		o = (size_t)snprintf(*xml, cap, "<CompleteMultipartUpload>");
		for (int i = 0; i < p->nparts; i++)
			o += (size_t)snprintf(*xml + o, cap - o, "<Part><PartNumber>"
			    "%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
			    p->etags[i]);
		o += (size_t)snprintf(*xml + o, cap - o,
		    "</CompleteMultipartUpload>");
		snprintf(q, sizeof q, "uploadId=%s", p->upload_id);
		s3_req_init(r, "POST", p->key, q);
		r->body = (unsigned char *)*xml;
		r->body_len = o;
	}
	return 0;
}

static int s3_put_commit_many(store_put_t **puts, size_t n,
    const int64_t *retain_until, int *rcs)
{
	store_backend_t *be = puts[0]->be;
	s3_backend_t *b = s3b(be);
	s3_req_t **reqs = calloc(n, sizeof *reqs), **run = calloc(n,
	    sizeof *run);
	char (*hdrs)[2][120] = calloc(n, sizeof *hdrs);
	char **xml = calloc(n, sizeof *xml);
	const char **keys = calloc(n, sizeof *keys);
	int *seen = calloc(n, sizeof *seen), first = 0, rc;
	char (*oldest)[128] = calloc(n, sizeof *oldest);
	struct name_set set = { keys, n, seen, NULL };
	size_t nrun = 0;

	if (!reqs || !run || !hdrs || !xml || !keys || !seen || !oldest) {
		for (size_t i = 0; i < n; i++) {
			rcs[i] = AR_ENOMEM;
			s3_put_abort(puts[i]);
		}
		first = store_be_fail(be, AR_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		s3_put_t *p = (s3_put_t *)puts[i];
		keys[i] = p->key;
		rcs[i] = p->status;
	}
	/* names already taken are refused before anything is sent */
	if (b->write_check) {
		if ((rc = list_groups(b, &set, 0)))
			for (size_t i = 0; i < n; i++)
				if (!rcs[i])
					rcs[i] = rc;
		for (size_t i = 0; i < n; i++)
			if (!rcs[i] && seen[i])
				rcs[i] = store_be_fail(be, AR_EEXIST, "object "
				    "%s already exists", keys[i]);
	}
	for (size_t i = 0; i < n; i++) {
		s3_put_t *p = (s3_put_t *)puts[i];
		if (rcs[i])
			continue;
		if (!(reqs[i] = malloc(sizeof *reqs[i]))) {
			rcs[i] = AR_ENOMEM;
			continue;
		}
		if ((rcs[i] = finish_req(p, retain_until[i], reqs[i],
		    hdrs[i][0], hdrs[i][1], &xml[i])))
			continue;
		run[nrun++] = reqs[i];
	}
	s3_run(&b->c, run, nrun);
	for (size_t i = 0; i < n; i++) {
		s3_put_t *p = (s3_put_t *)puts[i];
		if (!reqs[i] || rcs[i])
			continue;
		if ((rc = s3_status(reqs[i]))) {
			char why[600];
			rcs[i] = store_be_fail(be, rc, "%s%s",
			    s3_describe(reqs[i], why, sizeof why),
			    rc == AR_EEXIST ? " (the name is taken)" : "");
		}
		ar_strlcpy(p->version, reqs[i]->version_id, sizeof p->version);
		/* RGW 16 ignores the lock headers of CreateMultipartUpload:
		 * the retention of a multipart object is set once complete */
		if (!rcs[i] && p->upload_id[0] && retained(retain_until[i])) {
			char iso[40], rx[256], q[S3_QUERY_MAX], ev[3 * 128];
			s3_time_fmt(retain_until[i], iso, sizeof iso);
			snprintf(rx, sizeof rx, "<Retention><Mode>COMPLIANCE"
			    "</Mode><RetainUntilDate>%s</RetainUntilDate>"
			    "</Retention>", iso);
			s3_uri_encode(ev, sizeof ev, p->version);
			(void)ar_path(q, sizeof q, "retention=%s%s",
			    p->version[0] ? "&versionId=" : "", ev);
			rcs[i] = put_sub(b, p->key, q, rx);
		}
	}
	/* a put that is not its name's oldest version lost a race */
	if (b->write_check) {
		memset(seen, 0, n * sizeof *seen);
		set.oldest = oldest;
		if ((rc = list_groups(b, &set, 1)) == 0) {
			for (size_t i = 0; i < n; i++) {
				s3_put_t *p = (s3_put_t *)puts[i];
				if (rcs[i] || !p->version[0] || seen[i] <= 1 ||
				    !strcmp(oldest[i], p->version))
					continue;
				rcs[i] = store_be_fail(be, AR_EEXIST, "object %s "
				    "already existed: this put became a newer "
				    "version of it (version %s) and is refused",
				    keys[i], p->version);
				ar_log(AR_LOG_ERR, "s3 key=%s version=%s "
				    "status=refused reason=\"name written twice\"",
				    keys[i], p->version);
			}
		} else {
			for (size_t i = 0; i < n; i++)
				if (!rcs[i])
					rcs[i] = rc;
		}
	}
	for (size_t i = 0; i < n; i++) {
		s3_put_t *p = (s3_put_t *)puts[i];
		if (rcs[i] && p->upload_id[0] && reqs[i] && !reqs[i]->status)
			abort_upload(p);
		if (rcs[i] && !first)
			first = rcs[i];
		if (reqs[i])
			s3_req_clear(reqs[i]);
		free(reqs[i]);
		free(xml[i]);
		put_free(p);
	}
out:
	free(reqs);
	free(run);
	free(hdrs);
	free(xml);
	free(keys);
	free(seen);
	free(oldest);
	return first;
}

static int s3_put_commit(store_put_t *put, int64_t retain_until)
{
	int rc;
	return s3_put_commit_many(&put, 1, &retain_until, &rc);
}

static int s3_sync(store_backend_t *be)
{
	(void)be;     /* a put is durable when the server answered it */
	return 0;
}

/* --- get ---------------------------------------------------------------------- */

/* GET bytes [off, off+len) of key into dst; *got, *total. */
static int get_range(s3_backend_t *b, const char *key, uint64_t off,
    size_t len, unsigned char *dst, size_t *got, uint64_t *total,
    store_lock_info_t *lock)
{
	char range[80];
	s3_req_t *r = malloc(sizeof *r);
	int rc;

	if (!r)
		return AR_ENOMEM;
	snprintf(range, sizeof range, "Range: bytes=%llu-%llu",
	    (unsigned long long)off, (unsigned long long)(off + len - 1));
	s3_req_init(r, "GET", key, "");
	r->hdr[r->nhdr++] = range;
	r->sink = dst;
	r->sink_cap = len;
	s3_run1(&b->c, r);
	if (r->status == 416) {
		/* at or past the end */
		*got = 0;
		rc = 0;
	} else if ((rc = s3_status(r))) {
		fail_req(&b->base, r, rc);
	} else {
		*got = r->sink_len;
		if (total)
			*total = r->status == 206 ? r->range_total :
			    r->content_length;
		if (lock) {
			ar_strlcpy(lock->mode, r->lock_mode, sizeof lock->mode);
			s3_time_parse(r->lock_until, &lock->retain_until);
			lock->legal_hold = !strcasecmp(r->legal_hold, "ON");
		}
	}
	s3_req_clear(r);
	free(r);
	return rc;
}

static int s3_get_open(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, store_get_t **out)
{
	s3_backend_t *b = s3b(be);
	s3_get_t *g = calloc(1, sizeof *g);
	size_t got = 0;
	int rc;

	if (!g || !(g->w[0].data = malloc(WINDOW))) {
		free(g);
		return store_be_fail(be, AR_ENOMEM, "out of memory");
	}
	g->base.be = be;
	obj_key(b, tenant, id, g->key, sizeof g->key);
	/* the first window answers the size too */
	if ((rc = get_range(b, g->key, 0, WINDOW, g->w[0].data, &got, &g->size,
	    NULL))) {
		if (rc == AR_ENOENT)
			store_be_fail(be, rc, "no object %s", g->key);
		free(g->w[0].data);
		free(g);
		return rc;
	}
	g->w[0].len = got;
	g->w[0].used = ++g->tick;
	*out = &g->base;
	return 0;
}

static uint64_t s3_get_size(const store_get_t *get)
{
	return ((const s3_get_t *)get)->size;
}

static int s3_get_pread(store_get_t *get, void *buf, size_t len,
    uint64_t off, size_t *got)
{
	s3_get_t *g = (s3_get_t *)get;
	unsigned char *dst = buf;
	size_t done = 0;
	int rc;

	while (done < len && off + done < g->size) {
		uint64_t at = off + done;
		s3_window_t *w = NULL;
		for (int i = 0; i < 2; i++)
			if (g->w[i].data && at >= g->w[i].off &&
			    at < g->w[i].off + g->w[i].len)
				w = &g->w[i];
		if (!w && len - done >= WINDOW) {
			/* a large read goes straight into the caller's buffer */
			size_t n = 0, want = len - done;
			if (at + want > g->size)
				want = (size_t)(g->size - at);
			if ((rc = get_range(s3b(get->be), g->key, at, want,
			    dst + done, &n, NULL, NULL)))
				return rc;
			if (n == 0)
				break;
			done += n;
			continue;
		}
		if (!w) {
			size_t n = 0;
			w = g->w[0].used <= g->w[1].used ? &g->w[0] : &g->w[1];
			if (!w->data && !(w->data = malloc(WINDOW)))
				return store_be_fail(get->be, AR_ENOMEM,
				    "out of memory");
			w->len = 0;
			if ((rc = get_range(s3b(get->be), g->key, at, WINDOW,
			    w->data, &n, NULL, NULL)))
				return rc;
			if (n == 0)
				break;
			w->off = at;
			w->len = n;
		}
		w->used = ++g->tick;
		{
			size_t avail = (size_t)(w->off + w->len - at);
			size_t n = len - done < avail ? len - done : avail;
			memcpy(dst + done, w->data + (at - w->off), n);
			done += n;
		}
	}
	*got = done;
	return 0;
}

static void s3_get_close(store_get_t *get)
{
	s3_get_t *g = (s3_get_t *)get;
	free(g->w[0].data);
	free(g->w[1].data);
	free(g);
}

/* --- lock state, legal hold, retention ---------------------------------------- */

int head_key(s3_backend_t *b, const char *key, store_lock_info_t *out)
{
	s3_req_t *r = malloc(sizeof *r);
	int rc;

	if (!r)
		return AR_ENOMEM;
	s3_req_init(r, "HEAD", key, "");
	s3_run1(&b->c, r);
	if ((rc = s3_status(r))) {
		if (rc == AR_ENOENT)
			store_be_fail(&b->base, rc, "no object %s", key);
		else
			fail_req(&b->base, r, rc);
	} else if (out) {
		memset(out, 0, sizeof *out);
		ar_strlcpy(out->mode, r->lock_mode, sizeof out->mode);
		if (r->lock_until[0])
			s3_time_parse(r->lock_until, &out->retain_until);
		out->legal_hold = !strcasecmp(r->legal_hold, "ON");
		out->size = r->content_length;
	}
	s3_req_clear(r);
	free(r);
	return rc;
}

static int s3_lock_info(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, store_lock_info_t *out)
{
	char key[S3_KEY_MAX];
	obj_key(s3b(be), tenant, id, key, sizeof key);
	return head_key(s3b(be), key, out);
}

static int put_sub(s3_backend_t *b, const char *key, const char *sub,
    const char *xml)
{
	s3_req_t *r = malloc(sizeof *r);
	int rc;

	if (!r)
		return AR_ENOMEM;
	s3_req_init(r, "PUT", key, sub);
	r->body = (const unsigned char *)xml;
	r->body_len = strlen(xml);
	r->lock_headers = 1;
	s3_run1(&b->c, r);
	if ((rc = s3_status(r)))
		fail_req(&b->base, r, rc);
	s3_req_clear(r);
	free(r);
	return rc;
}

static int s3_set_legal_hold(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, int on)
{
	char key[S3_KEY_MAX];

	obj_key(s3b(be), tenant, id, key, sizeof key);
	return put_sub(s3b(be), key, "legal-hold=", on ?
	    "<LegalHold><Status>ON</Status></LegalHold>" :
	    "<LegalHold><Status>OFF</Status></LegalHold>");
}

static int s3_extend_retention(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, int64_t until)
{
	s3_backend_t *b = s3b(be);
	char key[S3_KEY_MAX], iso[40], xml[256];
	store_lock_info_t li;
	int rc;

	obj_key(b, tenant, id, key, sizeof key);
	if ((rc = head_key(b, key, &li)))
		return rc;
	if (li.retain_until >= until)
		return 0;             /* never lowered */
	if (!retained(until))
		return 0;             /* a date passed locks nothing (and S3
		                         refuses it) */
	s3_time_fmt(until, iso, sizeof iso);
	snprintf(xml, sizeof xml, "<Retention><Mode>COMPLIANCE</Mode>"
	    "<RetainUntilDate>%s</RetainUntilDate></Retention>", iso);
	return put_sub(b, key, "retention=", xml);
}

/* --- blobs --------------------------------------------------------------------- */

static void blob_key(s3_backend_t *b, const uint8_t *tenant, const char *name,
    char *out, size_t len)
{
	char pre[S3_KEY_MAX];
	tenant_prefix(b, tenant, pre, sizeof pre);
	snprintf(out, len, "%s%s", pre, name);
}

static int s3_blob_put(store_backend_t *be, const uint8_t *tenant,
    const char *name, const void *data, size_t len, int64_t retain_until)
{
	s3_backend_t *b = s3b(be);
	s3_put_t *p = calloc(1, sizeof *p);
	store_put_t *put = &p->base;
	int rc;

	if (!p)
		return AR_ENOMEM;
	p->base.be = be;
	blob_key(b, tenant, name, p->key, sizeof p->key);
	if (len > b->part_size) {
		rc = store_be_fail(be, AR_ETOOBIG, "%s: %zu bytes, more than "
		    "one part", p->key, len);
		free(p);
		return rc;
	}
	if (!(p->buf = malloc(len ? len : 1))) {
		free(p);
		return AR_ENOMEM;
	}
	memcpy(p->buf, data, len);
	p->len = p->cap = len;
	return s3_put_commit_many(&put, 1, &retain_until, &rc);
}

static int s3_blob_get(store_backend_t *be, const uint8_t *tenant,
    const char *name, unsigned char **data, size_t *len)
{
	s3_backend_t *b = s3b(be);
	s3_req_t *r = malloc(sizeof *r);
	char key[S3_KEY_MAX];
	int rc;

	if (!r)
		return AR_ENOMEM;
	blob_key(b, tenant, name, key, sizeof key);
	s3_req_init(r, "GET", key, "");
	s3_run1(&b->c, r);
	if ((rc = s3_status(r))) {
		fail_req(be, r, rc);
	} else {
		*data = r->resp ? r->resp : malloc(1);
		*len = r->resp_len;
		r->resp = NULL;
		if (!*data)
			rc = AR_ENOMEM;
	}
	s3_req_clear(r);
	free(r);
	return rc;
}

struct blob_list_ctx {
	size_t skip;
	store_blob_cb cb;
	void *arg;
};

static int blob_list_cb(void *arg, const char *key, const char *version,
    int is_prefix)
{
	struct blob_list_ctx *c = arg;
	(void)version;
	if (is_prefix || strlen(key) <= c->skip)
		return 0;
	return c->cb(c->arg, key + c->skip);
}

static int s3_blob_list(store_backend_t *be, const uint8_t *tenant,
    const char *dir, store_blob_cb cb, void *arg)
{
	char pre[S3_KEY_MAX];
	struct blob_list_ctx c = { 0, cb, arg };

	blob_key(s3b(be), tenant, dir, pre, sizeof pre);
	strncat(pre, "/", sizeof pre - strlen(pre) - 1);
	c.skip = strlen(pre);
	return s3_list(s3b(be), pre, NULL, 0, blob_list_cb, &c);
}

/* --- open and close --------------------------------------------------------------- */

static void s3_close(store_backend_t *be)
{
	s3_backend_t *b = s3b(be);
	s3_client_fini(&b->c);
	sodium_memzero(b->c.userpwd, sizeof b->c.userpwd);
	sodium_memzero(b->c.token_hdr, sizeof b->c.token_hdr);
	store_be_fini(be);
	free(b);
}

static const struct store_backend_ops s3_ops = {
	.name = "s3",
	.put_begin = s3_put_begin,
	.put_write = s3_put_write,
	.put_commit = s3_put_commit,
	.put_commit_many = s3_put_commit_many,
	.put_abort = s3_put_abort,
	.sync = s3_sync,
	.get_open = s3_get_open,
	.get_size = s3_get_size,
	.get_pread = s3_get_pread,
	.get_close = s3_get_close,
	.del = s3_delete,
	.walk = s3_walk,
	.drop_tenant = s3_drop_tenant,
	.close = s3_close,
	.check = s3_check,
	.set_legal_hold = s3_set_legal_hold,
	.extend_retention = s3_extend_retention,
	.lock_info = s3_lock_info,
	.blob_put = s3_blob_put,
	.blob_get = s3_blob_get,
	.blob_list = s3_blob_list,
	.tenants = s3_tenants,
};

static void curl_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int store_backend_open_s3(store_backend_t **out, const store_s3_params_t *p,
    char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	s3_backend_t *b;
	const char *sep, *off;
	int rc;

	if ((rc = store_be_open_args(out, p ? p->endpoint : NULL))) {
		snprintf(err, errlen, "s3: no endpoint given");
		return rc;
	}
	if (!p->bucket || strlen(p->bucket) < 3 || strlen(p->bucket) > 63 ||
	    strpbrk(p->bucket, "/ ?#")) {
		snprintf(err, errlen, "s3: bucket name '%s' is not valid "
		    "(3-63 characters, no '/')", p->bucket ? p->bucket : "");
		return AR_ECONFIG;
	}
	if (!(sep = strstr(p->endpoint, "://")) || !sep[3] ||
	    (strncmp(p->endpoint, "http://", 7) &&
	    strncmp(p->endpoint, "https://", 8))) {
		snprintf(err, errlen, "s3: endpoint '%s' is not http(s)://"
		    "host[:port]", p->endpoint);
		return AR_ECONFIG;
	}
	if (!p->access_key || !*p->access_key || !p->secret_key ||
	    !*p->secret_key) {
		snprintf(err, errlen, "s3: no credentials (set s3_access_key "
		    "and s3_secret_key, or AWS_ACCESS_KEY_ID and "
		    "AWS_SECRET_ACCESS_KEY)");
		return AR_ECONFIG;
	}
	if (!(b = calloc(1, sizeof *b)))
		return AR_ENOMEM;
	pthread_once(&once, curl_once);
	ar_strlcpy(b->c.endpoint, p->endpoint, sizeof b->c.endpoint);
	while (strlen(b->c.endpoint) && b->c.endpoint[strlen(b->c.endpoint) -
	    1] == '/')
		b->c.endpoint[strlen(b->c.endpoint) - 1] = '\0';
	snprintf(b->c.scheme, sizeof b->c.scheme, "%.*s",
	    (int)(sep - p->endpoint), p->endpoint);
	ar_strlcpy(b->c.host, sep + 3, sizeof b->c.host);
	if (strchr(b->c.host, '/'))
		*strchr(b->c.host, '/') = '\0';
	ar_strlcpy(b->c.region, p->region && *p->region ? p->region :
	    "us-east-1", sizeof b->c.region);
	ar_strlcpy(b->c.bucket, p->bucket, sizeof b->c.bucket);
	b->c.virtual_host = p->virtual_host;
	snprintf(b->c.userpwd, sizeof b->c.userpwd, "%s:%s", p->access_key,
	    p->secret_key);
	if (p->session_token && *p->session_token)
		snprintf(b->c.token_hdr, sizeof b->c.token_hdr,
		    "x-amz-security-token: %s", p->session_token);
	snprintf(b->c.sigv4, sizeof b->c.sigv4, "aws:amz:%s:s3", b->c.region);
	ar_strlcpy(b->c.ca_file, p->ca_file ? p->ca_file : "",
	    sizeof b->c.ca_file);
	b->c.connect_timeout_ms = p->connect_timeout_ms > 0 ?
	    (long)p->connect_timeout_ms : 5000;
	b->c.timeout_ms = p->timeout_ms > 0 ? (long)p->timeout_ms : 30000;
	b->c.retries = p->retries >= 0 ? p->retries : 4;
	/* tests only: a clock this many seconds off for signing */
	if ((off = getenv("AR_S3_CLOCK_OFFSET")) && *off)
		b->c.clock_offset = strtoll(off, NULL, 10);
	if (p->prefix && *p->prefix)
		snprintf(b->prefix, sizeof b->prefix, "%s/", p->prefix);
	b->part_size = p->part_size >= MIN_PART ? p->part_size : 8ull << 20;
	b->write_check = p->write_check;
	store_be_init(&b->base, &s3_ops);
	if ((rc = s3_client_init(&b->c, p->connections > 0 ? p->connections :
	    8, err, errlen))) {
		store_be_fini(&b->base);
		free(b);
		return rc;
	}
	*out = &b->base;
	return 0;
}
