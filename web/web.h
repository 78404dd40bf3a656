/*
 * web.h - the compliance console and JSON API of archived (libmicrohttpd).
 *
 * HTTPS with the instance certificate (plain HTTP only on a loopback
 * address, when configured), the JSON API under /api/v1/ (docs/api.md),
 * the console (web/static/, embedded in the binary at build time) and
 * the sessions, CSRF tokens and sign-in limits behind them.  Every
 * sign-in, search, message view, download and admin change is an entry in
 * the tenant's hash-chained log.
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h).
 */
#ifndef WEB_H
#define WEB_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "search/search.h"
#include "store/store.h"

/* Settings owned by the web module; archived merges web_config_defs into
 * its configuration table (offsets are into struct web_config). */
struct web_config {
	int     tls;                    /* 0: plain HTTP, loopback only */
	int64_t max_body;               /* bytes of a request body */
	int64_t request_timeout;        /* seconds a connection may idle */
	int64_t body_timeout;           /* seconds a request body may take */
	int64_t max_connections;
	int64_t per_ip_connections;
	int64_t threads;
	int64_t session_idle;           /* seconds */
	int64_t session_max;            /* seconds */
	int64_t max_sessions;
	int64_t login_slow_after;       /* failures before delays start */
	int64_t login_lock_after;       /* failures that lock the account */
	int64_t lockout;                /* seconds an account stays locked */
	int64_t export_jobs;            /* export jobs running at once */
	int64_t export_queue;           /* export jobs kept (any state) */
	int64_t export_keep;            /* seconds a finished export stays */
};
extern const struct ar_conf_def web_config_defs[];
extern const size_t web_config_ndefs;

typedef struct web web_t;

/*
 * The gateway's relay queue as the console shows it (archived fills it
 * from its gateway: gateway_queue_summary): per recipient domain of one
 * tenant, its recipients by state in the messages still queued, the
 * oldest of them, the earliest next attempt and the last error.
 */
typedef struct web_relay_domain {
	char     name[STORE_DOMAIN_MAX];
	uint64_t pending, deferred, delivered, bounced, quarantined;
	int64_t  oldest, next_attempt, last_error_time;   /* 0: none */
	char     last_error[256];
} web_relay_domain_t;

typedef struct web_relay_queue {
	uint64_t messages, unreadable;
	web_relay_domain_t *domains;    /* malloc'd: the web module frees */
	size_t   n;
} web_relay_queue_t;

/* Fill out for tenant: 0, or an AR_* status. */
typedef int (*web_relay_queue_fn)(void *arg,
    const uint8_t tenant[STORE_TENANT_LEN], web_relay_queue_t *out);

typedef struct web_start_params {
	const char *listen;             /* "host:port"; port 0 picks one */
	const char *tls_cert;           /* PEM files (when cfg->tls) */
	const char *tls_key;
	const struct web_config *cfg;
	store_t *st;                    /* borrowed; outlives the server */
	search_t *idx;                  /* borrowed; outlives the server */
	const char *data_dir;           /* exports go to DATA/exports/ */
	web_relay_queue_fn relay_queue; /* NULL: no gateway here */
	void *relay_arg;
} web_start_params_t;

/* Listen and serve (threads of libmicrohttpd).  err names the reason. */
int web_start(web_t **out, const web_start_params_t *p, char *err,
    size_t errlen);
/* The port listened on (useful with port 0). */
unsigned web_port(const web_t *w);
/* Stop serving, wipe every session and free. */
void web_stop(web_t *w);

/* --- accounts, shared with archivectl ------------------------------- */

/* Argon2id hash (libsodium, interactive limits) of a password into out
 * (STORE_PWHASH_MAX bytes).  0, AR_EINVAL for a password under 8 or over
 * 1024 bytes, or AR_ENOMEM. */
int web_password_hash(const char *password, char *out);
/* 0 when password matches hash, else AR_EPERM. */
int web_password_check(const char *hash, const char *password);

/* RFC 6238 TOTP: HMAC-SHA-1, 6 digits, 30-second steps. */
#define WEB_TOTP_STEP 30
uint32_t web_totp_code(const uint8_t secret[STORE_TOTP_SECRET_LEN],
    uint64_t step);
/* A new random secret, and its otpauth:// URI for authenticator apps
 * (base32 secret) into uri.  The caller wipes both. */
void web_totp_new(uint8_t secret[STORE_TOTP_SECRET_LEN]);
int web_totp_uri(const uint8_t secret[STORE_TOTP_SECRET_LEN],
    const char *tenant, const char *user, char *uri, size_t len);

#endif /* WEB_H */
