/*
 * backend_s3_http.c - the S3 client under the s3 backend: one request at a
 * time per worker thread, a pool of `connections` workers (each keeps its
 * own connection alive), SigV4 through libcurl (CURLOPT_AWS_SIGV4) with
 * x-amz-content-sha256 set here, retries with exponential backoff and
 * jitter on transient failures (connection errors, timeouts, 5xx, 429,
 * SlowDown), and a breaker: once a request has failed every attempt to
 * reach the server, new requests fail at once for a few seconds with the
 * same reason instead of each waiting through its own retries.
 */
#include "store/backend_s3.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ar.h"

#define RESP_MAX   (16u << 20)
#define DOWN_US    (3 * 1000000LL)   /* breaker open this long */
#define BACKOFF_MS 100
#define BACKOFF_CAP_MS 5000

struct s3_job {
	s3_req_t *req;
	s3_job_t *next;
	int *pending;                    /* shared by a group; under lock */
};

/* --- small helpers ---------------------------------------------------------- */

int s3_uri_encode(char *dst, size_t len, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *src; src++) {
		unsigned char ch = (unsigned char)*src;
		int keep = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == '~';
		if (o + (keep ? 1 : 3) >= len)
			return AR_ETOOBIG;
		if (keep) {
			dst[o++] = (char)ch;
		} else {
			dst[o++] = '%';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 15];
		}
	}
	dst[o] = '\0';
	return 0;
}

int s3_xml_get(const char *xml, size_t len, const char *tag, size_t *pos,
    char *out, size_t outlen)
{
	char open[80], close[80];
	size_t start = pos ? *pos : 0, o = 0;
	const char *p, *q, *end = xml + len;

	if (outlen)
		out[0] = '\0';
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	if (!xml || start >= len ||
	    !(p = memmem(xml + start, len - start, open, strlen(open))))
		return AR_ENOENT;
	p += strlen(open);
	if (!(q = memmem(p, (size_t)(end - p), close, strlen(close))))
		return AR_ENOENT;
	if (pos)
		*pos = (size_t)(q - xml) + strlen(close);
	while (p < q && o + 1 < outlen) {
		static const struct { const char *e; char c; } ents[] = {
			{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
			{ "&quot;", '"' }, { "&apos;", '\'' },
		};
		int done = 0;
		if (*p == '&')
			for (size_t i = 0; i < AR_ARRAY_LEN(ents) && !done; i++) {
				size_t n = strlen(ents[i].e);
				if ((size_t)(q - p) >= n && !memcmp(p, ents[i].e, n)) {
					out[o++] = ents[i].c;
					p += n;
					done = 1;
				}
			}
		if (!done)
			out[o++] = *p++;
	}
	if (outlen)
		out[o] = '\0';
	return 0;
}

int s3_time_parse(const char *s, int64_t *t)
{
	struct tm tm;
	const char *rest;

	memset(&tm, 0, sizeof tm);
	if (!s || !(rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return AR_EINVAL;
	*t = (int64_t)timegm(&tm);
	return 0;
}

void s3_time_fmt(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

void s3_req_init(s3_req_t *r, const char *method, const char *key,
    const char *query)
{
	memset(r, 0, sizeof *r);
	r->method = method;
	ar_strlcpy(r->key, key ? key : "", sizeof r->key);
	ar_strlcpy(r->query, query ? query : "", sizeof r->query);
}

void s3_req_clear(s3_req_t *r)
{
	free(r->resp);
	r->resp = NULL;
	r->resp_len = r->resp_cap = 0;
}

/* --- one attempt ------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	s3_req_t *r = arg;
	size_t n = size * nmemb;

	if (r->sink) {
		if (r->sink_len + n > r->sink_cap)
			return 0;      /* more than asked: abort */
		memcpy(r->sink + r->sink_len, ptr, n);
		r->sink_len += n;
		return n;
	}
	if (r->resp_len + n > RESP_MAX)
		return 0;
	if (r->resp_len + n + 1 > r->resp_cap) {
		size_t cap = r->resp_cap ? r->resp_cap : 4096;
		unsigned char *p;
		while (cap < r->resp_len + n + 1)
			cap *= 2;
		if (!(p = realloc(r->resp, cap)))
			return 0;
		r->resp = p;
		r->resp_cap = cap;
	}
	memcpy(r->resp + r->resp_len, ptr, n);
	r->resp_len += n;
	r->resp[r->resp_len] = '\0';
	return n;
}

static void hdr_value(const char *line, size_t n, size_t namelen, char *out,
    size_t outlen)
{
	const char *v = line + namelen;
	size_t len = n - namelen;

	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
	    v[len - 1] == ' '))
		len--;
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	s3_req_t *r = arg;
	size_t n = size * nmemb;
	char v[128];
	static const struct { const char *name; size_t off, len; } want[] = {
		{ "etag:", offsetof(s3_req_t, etag), sizeof ((s3_req_t *)0)->etag },
		{ "x-amz-version-id:", offsetof(s3_req_t, version_id),
		  sizeof ((s3_req_t *)0)->version_id },
		{ "x-amz-object-lock-mode:", offsetof(s3_req_t, lock_mode),
		  sizeof ((s3_req_t *)0)->lock_mode },
		{ "x-amz-object-lock-retain-until-date:",
		  offsetof(s3_req_t, lock_until),
		  sizeof ((s3_req_t *)0)->lock_until },
		{ "x-amz-object-lock-legal-hold:", offsetof(s3_req_t, legal_hold),
		  sizeof ((s3_req_t *)0)->legal_hold },
		{ "x-amz-meta-ar-sha256:", offsetof(s3_req_t, meta_sha),
		  sizeof ((s3_req_t *)0)->meta_sha },
		{ "date:", offsetof(s3_req_t, date), sizeof ((s3_req_t *)0)->date },
	};

	for (size_t i = 0; i < AR_ARRAY_LEN(want); i++) {
		size_t k = strlen(want[i].name);
		if (n > k && !strncasecmp(line, want[i].name, k)) {
			hdr_value(line, n, k, (char *)r + want[i].off,
			    want[i].len);
			return n;
		}
	}
	if (n > 15 && !strncasecmp(line, "content-length:", 15)) {
		hdr_value(line, n, 15, v, sizeof v);
		r->content_length = strtoull(v, NULL, 10);
	} else if (n > 14 && !strncasecmp(line, "content-range:", 14)) {
		const char *slash;
		hdr_value(line, n, 14, v, sizeof v);
		if ((slash = strchr(v, '/')))
			r->range_total = strtoull(slash + 1, NULL, 10);
	} else if (n >= 5 && !strncasecmp(line, "HTTP/", 5)) {
		/* a new response (after a 100 Continue or a redirect) */
		r->etag[0] = r->version_id[0] = r->lock_mode[0] = '\0';
		r->lock_until[0] = r->legal_hold[0] = r->meta_sha[0] = '\0';
	}
	return n;
}

static int md5_b64(const unsigned char *p, size_t n, char *out, size_t len)
{
	unsigned char md[16];
	unsigned int mlen = 0;

	if (!EVP_Digest(p, n, md, &mlen, EVP_md5(), NULL) || mlen != 16)
		return AR_EIO;
	sodium_bin2base64(out, len, md, 16, sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

static void attempt(s3_client_t *c, CURL *h, s3_req_t *r)
{
	char url[S3_KEY_MAX * 3 + S3_QUERY_MAX + 1024], ekey[S3_KEY_MAX * 3];
	char sha_hdr[100], md5_hdr[64], md5[32], date_hdr[64];
	unsigned char sha[32];
	char shahex[65];
	struct curl_slist *hl = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	size_t o = 0;

	/* the key keeps its slashes, every other byte is encoded */
	for (const char *k = r->key; *k && o + 4 < sizeof ekey; k++) {
		char one[2] = { *k, 0 };
		if (*k == '/') {
			ekey[o++] = '/';
		} else {
			s3_uri_encode(ekey + o, sizeof ekey - o, one);
			o += strlen(ekey + o);
		}
	}
	ekey[o] = '\0';
	if (c->virtual_host)
		snprintf(url, sizeof url, "%s://%s.%s/%s%s%s", c->scheme,
		    c->bucket, c->host, ekey, r->query[0] ? "?" : "", r->query);
	else
		snprintf(url, sizeof url, "%s/%s%s%s%s%s", c->endpoint,
		    c->bucket, r->key[0] ? "/" : "", ekey,
		    r->query[0] ? "?" : "", r->query);

	crypto_hash_sha256(sha, r->body ? r->body : (const unsigned char *)"",
	    r->body_len);
	snprintf(sha_hdr, sizeof sha_hdr, "x-amz-content-sha256: %s",
	    ar_hex(sha, 32, shahex));
	hl = curl_slist_append(hl, sha_hdr);
	if (r->lock_headers && md5_b64(r->body ? r->body :
	    (const unsigned char *)"", r->body_len, md5, sizeof md5) == 0) {
		snprintf(md5_hdr, sizeof md5_hdr, "Content-MD5: %s", md5);
		hl = curl_slist_append(hl, md5_hdr);
	}
	if (c->clock_offset) {
		/* signing time moved (tests of a skewed clock) */
		time_t now = time(NULL) + (time_t)c->clock_offset;
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(date_hdr, sizeof date_hdr,
		    "X-Amz-Date: %Y%m%dT%H%M%SZ", &tm);
		hl = curl_slist_append(hl, date_hdr);
	}
	if (c->token_hdr[0])
		hl = curl_slist_append(hl, c->token_hdr);
	for (size_t i = 0; i < r->nhdr; i++)
		hl = curl_slist_append(hl, r->hdr[i]);
	if (r->body)
		hl = curl_slist_append(hl, "Content-Type: "
		    "application/octet-stream");

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, c->userpwd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	/* an attempt gets timeout_ms plus 1 ms a KiB of its bytes (a floor
	 * of 1 MiB/s), and fails sooner when nothing moves for timeout_ms */
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms +
	    (long)((r->body_len + r->sink_cap) >> 10));
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
	    (c->timeout_ms + 999) / 1000);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (c->ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (!strcmp(r->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (r->body || !strcmp(r->method, "PUT") ||
	    !strcmp(r->method, "POST")) {
		/* the body from memory: libcurl signs what it sends */
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? (const char *)
		    r->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->body_len);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (strcmp(r->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}

	r->status = 0;
	r->err_code[0] = r->err_msg[0] = '\0';
	r->sink_len = 0;
	r->resp_len = 0;
	r->content_length = r->range_total = 0;
	r->cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hl);
	if (r->cc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(r->err_msg, sizeof r->err_msg, "timed out: no answer "
		    "within %ld ms (s3_timeout)", c->timeout_ms);
		r->status = 0;
	} else if (r->cc != CURLE_OK) {
		snprintf(r->err_msg, sizeof r->err_msg, "%s", errbuf[0] ? errbuf
		    : curl_easy_strerror(r->cc));
		r->status = 0;
	} else if (r->status >= 300 && r->resp) {
		s3_xml_get((char *)r->resp, r->resp_len, "Code", NULL,
		    r->err_code, sizeof r->err_code);
		s3_xml_get((char *)r->resp, r->resp_len, "Message", NULL,
		    r->err_msg, sizeof r->err_msg);
	}
}

/* Worth another attempt? */
static int transient(const s3_req_t *r)
{
	if (r->cc != CURLE_OK)
		switch (r->cc) {
		case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR: case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
			return 1;
		default:
			return 0;
		}
	if (r->status >= 500 || r->status == 429)
		return 1;
	return !strcmp(r->err_code, "SlowDown") ||
	    !strcmp(r->err_code, "RequestTimeout") ||
	    !strcmp(r->err_code, "InternalError");
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

static void perform(s3_client_t *c, CURL *h, s3_req_t *r)
{
	int64_t now = ar_mono_us();

	pthread_mutex_lock(&c->lock);
	c->requests++;
	if (c->down_until && now < c->down_until) {
		r->cc = CURLE_COULDNT_CONNECT;
		r->status = 0;
		ar_strlcpy(r->err_msg, c->down_why, sizeof r->err_msg);
		r->attempts = 0;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	pthread_mutex_unlock(&c->lock);
	for (r->attempts = 1;; r->attempts++) {
		long cap, ms;
		attempt(c, h, r);
		if (!transient(r) || r->attempts > c->retries)
			break;
		/* exponential backoff, half of it random */
		cap = BACKOFF_MS << (r->attempts < 10 ? r->attempts - 1 : 9);
		if (cap > BACKOFF_CAP_MS)
			cap = BACKOFF_CAP_MS;
		ms = cap / 2 + (long)randombytes_uniform((uint32_t)(cap / 2 + 1));
		pthread_mutex_lock(&c->lock);
		c->retried++;
		pthread_mutex_unlock(&c->lock);
		ar_log(AR_LOG_WARN, "s3 method=%s key=%s status=retry http=%ld "
		    "attempt=%d wait_ms=%ld reason=\"%s\"", r->method,
		    r->key[0] ? r->key : "-", r->status, r->attempts, ms,
		    r->err_code[0] ? r->err_code : r->err_msg);
		pause_ms(ms);
	}
	pthread_mutex_lock(&c->lock);
	if (r->cc != CURLE_OK && transient(r)) {
		c->down_until = ar_mono_us() + DOWN_US;
		snprintf(c->down_why, sizeof c->down_why, "%.150s (%.140s)",
		    c->endpoint, r->err_msg);
	} else if (r->status) {
		c->down_until = 0;
	}
	pthread_mutex_unlock(&c->lock);
}

/* --- the pool ------------------------------------------------------------- */

static void *worker(void *arg)
{
	s3_client_t *c = arg;
	CURL *h = curl_easy_init();

	ar_thread_setup("ar-s3", 0);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		s3_job_t *j;
		while (!c->head && !c->stopping)
			pthread_cond_wait(&c->work, &c->lock);
		if (!c->head)
			break;
		j = c->head;
		c->head = j->next;
		if (!c->head)
			c->tail = NULL;
		pthread_mutex_unlock(&c->lock);
		if (h) {
			perform(c, h, j->req);
		} else {
			j->req->cc = CURLE_FAILED_INIT;
			snprintf(j->req->err_msg, sizeof j->req->err_msg,
			    "curl_easy_init failed");
		}
		pthread_mutex_lock(&c->lock);
		if (--*j->pending == 0)
			pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
	return NULL;
}

void s3_run(s3_client_t *c, s3_req_t **reqs, size_t n)
{
	s3_job_t stackjobs[16], *jobs = stackjobs;
	int pending = (int)n;

	if (n == 0)
		return;
	if (n > AR_ARRAY_LEN(stackjobs) &&
	    !(jobs = calloc(n, sizeof *jobs))) {
		/* no memory for a group: one at a time */
		for (size_t i = 0; i < n; i++)
			s3_run(c, &reqs[i], 1);
		return;
	}
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		jobs[i].req = reqs[i];
		jobs[i].next = NULL;
		jobs[i].pending = &pending;
		if (c->tail)
			c->tail->next = &jobs[i];
		else
			c->head = &jobs[i];
		c->tail = &jobs[i];
	}
	pthread_cond_broadcast(&c->work);
	while (pending > 0)
		pthread_cond_wait(&c->done, &c->lock);
	pthread_mutex_unlock(&c->lock);
	if (jobs != stackjobs)
		free(jobs);
}

void s3_run1(s3_client_t *c, s3_req_t *r)
{
	s3_run(c, &r, 1);
}

int s3_client_init(s3_client_t *c, int connections, char *err,
    size_t errlen)
{
	if (connections < 1)
		connections = 1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->done, NULL);
	if (!(c->threads = calloc((size_t)connections, sizeof *c->threads)))
		return AR_ENOMEM;
	for (int i = 0; i < connections; i++) {
		if (pthread_create(&c->threads[i], NULL, worker, c)) {
			snprintf(err, errlen, "cannot start S3 worker threads");
			s3_client_fini(c);
			return AR_ENOMEM;
		}
		c->nthreads++;
	}
	return 0;
}

void s3_client_fini(s3_client_t *c)
{
	pthread_mutex_lock(&c->lock);
	c->stopping = 1;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);
	free(c->threads);
	c->threads = NULL;
	c->nthreads = 0;
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->done);
}

/* --- results ----------------------------------------------------------------- */

int s3_status(const s3_req_t *r)
{
	if (r->cc != CURLE_OK)
		return r->cc == CURLE_OPERATION_TIMEDOUT ? AR_ETIMEOUT :
		    transient(r) ? AR_EAGAIN : AR_EIO;
	if (r->status >= 200 && r->status < 300)
		return 0;
	if (r->status == 404)
		return AR_ENOENT;
	if (r->status == 412 || r->status == 409)
		return AR_EEXIST;
	if (!strcmp(r->err_code, "RequestTimeTooSkewed"))
		return AR_ECONFIG;
	if (!strcmp(r->err_code, "InvalidAccessKeyId") ||
	    !strcmp(r->err_code, "SignatureDoesNotMatch"))
		return AR_EPERM;
	if (r->status == 403)
		return AR_EPERM;
	if (transient(r))
		return AR_EAGAIN;
	return r->status == 400 ? AR_EINVAL : AR_EIO;
}

const char *s3_describe(const s3_req_t *r, char *buf, size_t len)
{
	if (r->cc != CURLE_OK)
		snprintf(buf, len, "%s %s: %s%s", r->method, r->key[0] ? r->key :
		    "(bucket)", r->err_msg, r->attempts > 1 ?
		    " (retried, then gave up)" : r->attempts == 0 ?
		    " (server unreachable moments ago; not tried again yet)" :
		    "");
	else
		snprintf(buf, len, "%s %s: HTTP %ld %s%s%s%s", r->method,
		    r->key[0] ? r->key : "(bucket)", r->status, r->err_code,
		    r->err_msg[0] ? ": " : "", r->err_msg,
		    r->attempts > 1 ? " (after retries)" : "");
	return buf;
}
