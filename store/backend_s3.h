/*
 * backend_s3.h - private to store/: the S3 client under the s3 backend
 * (backend_s3_http.c: requests, signing, retries, the connection pool;
 * backend_s3.c: the backend operations; backend_s3_check.c: the bucket
 * check and the small XML reader).
 */
#ifndef STORE_BACKEND_S3_H
#define STORE_BACKEND_S3_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>

#include "store/backend_impl.h"

#define S3_KEY_MAX   1024
#define S3_QUERY_MAX 2048
#define S3_HDR_MAX   8

/* One request and what came back.  The caller fills the first part; the
 * pool runs it (retries included) and fills the rest. */
typedef struct s3_req {
	const char *method;               /* GET PUT HEAD DELETE POST */
	char key[S3_KEY_MAX];             /* object key, "" for the bucket */
	char query[S3_QUERY_MAX];         /* canonical: sorted, encoded */
	const char *hdr[S3_HDR_MAX];      /* extra "Name: value" lines */
	size_t nhdr;
	const unsigned char *body;        /* request body (memory) */
	size_t body_len;
	int lock_headers;                 /* body needs Content-MD5 */
	/* response body: into sink (at most sink_cap bytes) when set, else
	 * into a malloc'd buffer (resp, at most 16 MiB) */
	unsigned char *sink;
	size_t sink_cap, sink_len;
	/* results */
	long status;                      /* HTTP status, 0: none */
	CURLcode cc;
	unsigned char *resp;              /* malloc'd; s3_req_clear frees */
	size_t resp_len, resp_cap;
	uint64_t content_length;          /* Content-Length of the answer */
	uint64_t range_total;             /* total of Content-Range */
	char etag[80];
	char version_id[128];
	char lock_mode[32];               /* x-amz-object-lock-mode */
	char lock_until[40];              /* x-amz-object-lock-retain-until-date */
	char legal_hold[8];               /* x-amz-object-lock-legal-hold */
	char meta_sha[72];                /* x-amz-meta-ar-sha256 */
	char date[64];                    /* Date */
	char err_code[64];                /* <Code> of an S3 error */
	char err_msg[256];                /* <Message>, or curl's text */
	int attempts;
} s3_req_t;

typedef struct s3_job s3_job_t;

/* The client: settings, the pool of workers (one connection each) and
 * the breaker that fails requests at once while the server is down. */
typedef struct s3_client {
	char endpoint[512];               /* scheme://host[:port] */
	char host[300];                   /* host[:port] */
	char scheme[8];
	char region[64];
	char bucket[256];
	int virtual_host;
	char userpwd[512];                /* access:secret */
	char token_hdr[2100];             /* x-amz-security-token: ... */
	char sigv4[128];                  /* aws:amz:REGION:s3 */
	char ca_file[1024];
	long connect_timeout_ms, timeout_ms;
	int retries;
	int64_t clock_offset;             /* seconds added to the signing
	                                     time (AR_S3_CLOCK_OFFSET) */
	/* pool */
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	s3_job_t *head, *tail;
	pthread_t *threads;
	int nthreads, stopping;
	/* breaker */
	int64_t down_until;               /* ar_mono_us; 0: up */
	char down_why[300];
	uint64_t requests, retried;
} s3_client_t;

typedef struct s3_backend {
	store_backend_t base;           /* first */
	s3_client_t c;
	char prefix[256];               /* "" or "p/" */
	uint64_t part_size;
	int write_check;
} s3_backend_t;

/* backend_s3.c: shared by the backend's files */
s3_backend_t *s3b(store_backend_t *be);
int fail_req(store_backend_t *be, const s3_req_t *r, int rc);
void obj_key(s3_backend_t *b, const uint8_t *tenant, const uint8_t *id,
    char *out, size_t len);
void tenant_prefix(s3_backend_t *b, const uint8_t *tenant, char *out,
    size_t len);
int head_key(s3_backend_t *b, const char *key, store_lock_info_t *out);

/* backend_s3_list.c: listings (every page; start: list after this key,
 * stop: no further than this one), deletes, walks, the tenant drop */
typedef int (*list_cb)(void *arg, const char *key, const char *version,
    int is_prefix);
int s3_list_range(s3_backend_t *b, const char *prefix, const char *delim,
    int versions, const char *start, const char *stop, list_cb cb,
    void *arg);
int s3_list(s3_backend_t *b, const char *prefix, const char *delim,
    int versions, list_cb cb, void *arg);
int s3_delete(store_backend_t *be, const uint8_t *tenant, const uint8_t *id,
    int deferred);
int s3_walk(store_backend_t *be, const uint8_t *tenant,
    store_backend_walk_cb cb, void *arg);
int s3_tenants(store_backend_t *be, store_tenant_id_cb cb, void *arg);
int s3_drop_tenant(store_backend_t *be, const uint8_t *tenant);

/* backend_s3_check.c: the bucket check (store_backend_check). */
int s3_check(store_backend_t *be, int64_t max_skew, store_check_cb cb,
    void *arg);

int s3_client_init(s3_client_t *c, int connections, char *err,
    size_t errlen);
void s3_client_fini(s3_client_t *c);

/* Run n requests in parallel on the pool and wait for all.  Each
 * request's status/cc say how it went. */
void s3_run(s3_client_t *c, s3_req_t **reqs, size_t n);
/* One request. */
void s3_run1(s3_client_t *c, s3_req_t *r);
void s3_req_init(s3_req_t *r, const char *method, const char *key,
    const char *query);
void s3_req_clear(s3_req_t *r);
/* Map a finished request to an AR_* status (0 for 2xx). */
int s3_status(const s3_req_t *r);
/* "PUT key: 503 SlowDown: text (3 attempts)" into buf. */
const char *s3_describe(const s3_req_t *r, char *buf, size_t len);

/* URI-encode (RFC 3986 unreserved kept) src into dst. */
int s3_uri_encode(char *dst, size_t len, const char *src);
/* Text of the first <tag>...</tag> in an XML answer from *pos on (pos
 * may be NULL), entities decoded; 0 or AR_ENOENT.  *pos moves past it. */
int s3_xml_get(const char *xml, size_t len, const char *tag, size_t *pos,
    char *out, size_t outlen);
/* "2031-01-01T00:00:00Z" / ".000Z" to seconds; AR_EINVAL. */
int s3_time_parse(const char *s, int64_t *t);
/* seconds to ISO 8601 "YYYY-MM-DDTHH:MM:SS.000Z" */
void s3_time_fmt(int64_t t, char *buf, size_t len);

#endif
