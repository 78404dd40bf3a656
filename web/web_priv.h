/*
 * web_priv.h - private to web/: the server, requests, sessions and the
 * handlers of each API area.
 */
#ifndef WEB_PRIV_H
#define WEB_PRIV_H

#include <glib.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "web.h"

#define WEB_SID_LEN   32                /* session id: 256 random bits */
#define WEB_CSRF_LEN  32
#define WEB_COOKIE    "archived_session"
#define WEB_ADDR_MAX  64

/* One signed-in user (server memory only; ids are kept hashed). */
struct web_session {
	int      used;
	uint8_t  sid_hash[32];          /* BLAKE2b-256 of the session id */
	char     csrf[2 * WEB_CSRF_LEN + 1];
	uint8_t  tenant[STORE_TENANT_LEN];   /* zero for an operator */
	char     tenant_name[STORE_NAME_MAX];
	char     user[STORE_NAME_MAX];
	uint32_t roles;
	int64_t  created, last_seen;
	char     client[WEB_ADDR_MAX];
};

/* Sign-in attempts per client address (memory, sliding window). */
struct web_ipfail {
	char     addr[WEB_ADDR_MAX];
	int64_t  window_start;
	uint32_t count;
};

struct web {
	struct MHD_Daemon *mhd;
	struct web_config cfg;
	store_t *st;
	search_t *idx;
	unsigned port;
	int tls;
	char *cert_pem, *key_pem;
	pthread_mutex_t lock;           /* sessions and ipfail */
	struct web_session *sessions;   /* cfg.max_sessions slots */
	struct web_ipfail ipfail[256];
	pthread_mutex_t login_lock;     /* one sign-in per user at a time */
	struct web_exports *exports;    /* export jobs (exports.c) */
	web_relay_queue_fn relay_queue; /* the gateway's queue (relay.c) */
	void *relay_arg;
};

/* An audit entry waiting for the request's answer (audit.c). */
struct web_audit_entry;

/* One request being served. */
struct web_req {
	struct web *w;
	struct MHD_Connection *conn;
	const char *method, *url;
	char client[WEB_ADDR_MAX];
	char *body;                     /* NUL-terminated request body */
	size_t body_len;
	int too_big;
	int seen;                       /* the headers were looked at */
	int bad_url;                    /* the raw URL holds %00 */
	const char *raw_uri;            /* as on_uri saw it (server.c) */
	size_t raw_uri_len;
	int64_t body_deadline_us;       /* the body must be in by then */
	int in_body;                    /* a body is expected, not all in */
	struct web_session sess;        /* copy of the caller's session */
	int has_sess;
	int status;                     /* answered status, for the log */
	int64_t start_us;
	struct web_audit_entry *audit;  /* entries written with the status */
};

/* --- responses (server.c) ------------------------------------------ */

/* Queue a JSON response (takes j).  Adds the security headers. */
int web_reply_json(struct web_req *r, unsigned status, json_t *j);
/* An error: {"error":{"code":code,"message":msg}} (+ extra members of
 * extra, taken, may be NULL). */
int web_reply_error(struct web_req *r, unsigned status, const char *code,
    const char *msg, json_t *extra);
/* A response built by the caller: security headers added, queued,
 * destroyed.  csp NULL: the default policy. */
int web_reply(struct web_req *r, unsigned status, struct MHD_Response *resp,
    const char *csp);
/* Query argument or NULL. */
const char *web_arg(struct web_req *r, const char *name);
/* The "days" argument of the per-day statistics (1..366, 30 when absent)
 * in *days: 0, or 1 once a 400 is answered. */
int web_arg_days(struct web_req *r, long *days);
/* The body parsed as a JSON object, or NULL after answering 400. */
json_t *web_body_json(struct web_req *r);

/* --- sessions (session.c) ------------------------------------------ */

int web_sessions_init(struct web *w);
void web_sessions_free(struct web *w);
/* Create a session for u; fills *out and the cookie id (hex, 65 bytes). */
int web_session_new(struct web *w, const store_user_t *u,
    const char *tenant_name, const char *client, struct web_session *out,
    char sid_hex[2 * WEB_SID_LEN + 1]);
/* Find the session of the request's cookie, checking idle and absolute
 * expiry (expired ones are removed).  0 and *out, or AR_ENOENT. */
int web_session_find(struct web *w, struct web_req *r,
    struct web_session *out);
void web_session_drop(struct web *w, const struct web_session *s);
/* Drop every session of a user (disabled, password changed). */
void web_session_drop_user(struct web *w, const uint8_t *tenant,
    const char *user);
/* Set-Cookie value for a new session id (or an expired one for NULL). */
void web_session_cookie(struct web *w, const char *sid_hex, char *buf,
    size_t len);
/* Sliding window of failed sign-ins per client: 0 or AR_EAGAIN. */
int web_ipfail_check(struct web *w, const char *client, int add);

/* --- the API areas ------------------------------------------------- */

/* Each answers the request (0) or returns AR_ENOENT when the path is not
 * theirs.  path is the part after /api/v1/. */
int web_api_session(struct web_req *r, const char *path);
int web_api_mail(struct web_req *r, const char *path);
int web_api_audit(struct web_req *r, const char *path);
int web_api_admin(struct web_req *r, const char *path);
int web_api_holds(struct web_req *r, const char *path);    /* holds.c */
int web_api_exports(struct web_req *r, const char *path);  /* exports.c */
/* quarantine, digest links, gateway counts (quarantine.c) */
int web_api_quarantine(struct web_req *r, const char *path);

/* the relay queue per domain, its counts and chart, retry, hold and
 * release of a domain (relay.c) */
int web_api_relay(struct web_req *r, const char *path);
/* --- charts (chart.c) ------------------------------------------------ */
/* A stacked bar per day: values[i * stride + k] is series k of day
 * first_day + i (days since 1970, UTC).  title, names and colors are
 * constant text (not escaped). */
typedef struct web_chart {
	const char *title;
	int64_t first_day;
	size_t ndays;
	int nseries, stride;
	const char *const *names;
	const char *const *colors;
	const uint64_t *values;
} web_chart_t;
GString *web_chart_svg(const web_chart_t *c);
/* Answers 200 with the SVG (its own strict policy); frees g. */
int web_reply_svg(struct web_req *r, GString *g);
/* "YYYY-MM-DD" of a day number. */
void web_day_fmt(int64_t day, char *buf, size_t len);
/* Names of the tenant's active holds covering obj (meta needed), as a
 * JSON array (holds.c). */
json_t *web_holds_covering(struct web_req *r, const store_object_t *obj);
/* A query syntax error: 400 query_syntax with column and byte. */
int web_reply_query_error(struct web_req *r, const char *msg);

/* Export jobs: worker threads, job table, files under data_dir/exports
 * (exports.c).  init removes files left by an earlier run. */
int web_exports_init(struct web *w, const char *data_dir, char *err,
    size_t errlen);
/* Waits for running jobs to end. */
void web_exports_free(struct web *w);

/* Requires a session holding one of roles (0: any session); answers
 * 401/403 itself and returns non-zero when refused. */
int web_require(struct web_req *r, uint32_t roles);
/* Requires the session's CSRF token in X-CSRF-Token (state-changing
 * requests); answers 403 and returns non-zero when missing or wrong. */
int web_require_csrf(struct web_req *r);

/* --- audit (audit.c) ----------------------------------------------- */

/* An entry in the tenant's log: kind, action, the session's user and
 * client (or user/client given for sign-ins), the HTTP method, object
 * (may be NULL) and extra detail members (taken, may be NULL).  The
 * entry is queued on the request and written by web_audit_flush with the
 * status the request was answered with ("status"), before the answer
 * leaves (libmicrohttpd sends it after the request handler returns). */
int web_audit(struct web_req *r, const uint8_t tenant[STORE_TENANT_LEN],
    uint32_t kind, const char *action, const char *user,
    const uint8_t *object, json_t *extra);
/* Write the queued entries (each with r->status); safe to call again. */
void web_audit_flush(struct web_req *r);
/* A refused access to something that is not the caller's (404 + log). */
int web_deny(struct web_req *r, const char *what, const char *ref);
/* A refusal (action "forbidden", "csrf_rejected", "unauthenticated" ...):
 * for a tenant's user an entry in the caller's tenant log with the path
 * (extra taken, may be NULL); for an operator or a caller without a
 * session (user "?"), a "web audit" line in the daemon log, and an entry
 * in the log of the tenant whose message the path names. */
void web_refused(struct web_req *r, const char *action, json_t *extra);

/* --- static files (static.c, generated table) ---------------------- */

int web_static_serve(struct web_req *r, const char *path);

#endif /* WEB_PRIV_H */
