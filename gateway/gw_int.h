/*
 * gw_int.h - private to gateway/: the gateway handle and the pieces its
 * files share (mx.c receives, judge.c scans and decides, verdict.c maps a
 * scan to the tenant's policy, queue.c works the relay queue).
 */
#ifndef GATEWAY_GW_INT_H
#define GATEWAY_GW_INT_H

#include <jansson.h>
#include <pthread.h>

#include "gateway/gateway.h"

struct mx_job;
struct gw_relay;
struct gw_source;
struct gw_av;
struct gw_authcache;

/* a tenant's outbound rate (mx.c) */
struct gw_bucket {
	uint8_t tenant[STORE_TENANT_LEN];
	double tokens;
	int64_t last_us;
};
#define GW_BUCKETS 256

struct gateway {
	store_t *st;
	spool_t *rq;                 /* the relay queue (stateful spool) */
	gateway_opts_t o;
	char hostname[256];
	char clamd_socket[1024];
	char rspamd_url[1024];
	smtp_server_t *srv;
	int64_t backlog_logged_us;   /* event loop only */
	struct gw_bucket buckets[GW_BUCKETS];   /* event loop only */
	size_t nbuckets;
	/* scan workers (judge.c) */
	pthread_t *scan_threads;
	int nscan;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mx_job *head, *tail;
	int stopping;
	char dns_server[256];
	struct gw_av *av;            /* the antivirus engine (judge.c) */
	struct gw_relay *relay;      /* delivery (relay.c) */
	struct gw_authcache *auth;   /* recent AUTH successes (authcache.c);
	                                NULL: off */
	/* relay queue workers (queue.c) */
	pthread_t *queue_threads;
	int nqueue;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	int qstopping, qwake;
	int64_t releases_checked_us; /* under qlock */
	uint64_t scan_mem_used;      /* atomic: bytes of the jobs' copies */
	int removed_unsynced;        /* under qlock: entries removed since
	                                the last spool_sync (queue.c) */
	int64_t removed_synced_us;   /* under qlock */
	/* verdict counts not yet in the catalog (stats.c) */
	pthread_mutex_t slock;
	struct gw_stat *stats;
	size_t nstats, capstats;
};

/* One message from its DATA to its answer (mx.c -> judge.c). */
struct mx_job {
	gateway_t *g;
	spool_put_t *put;
	store_tenant_t t;            /* the recipients' tenant, with its policy */
	json_t *env;                 /* envelope: mail_from, rcpt_to, client */
	uint64_t bytes;
	int status;                  /* sticky write error */
	int too_big;                 /* over the tenant's max_size */
	/* the message as received, for the scanners (mx.c: gw_job_copy);
	 * NULL when it did not fit the limits: then read from the spool */
	unsigned char *copy;
	size_t copy_len, copy_cap;
	int copy_off;                /* gave up on the copy */
	smtp_token_t *tok;
	char session[64];
	int64_t started_us;
	struct mx_job *next;
};

/* --- authcache.c: SMTP AUTH successes --------------------------------- */
/* Remembered for ttl_s seconds (0: off, *out NULL; the calls below then
 * do nothing). */
int gw_authcache_new(struct gw_authcache **out, int64_t ttl_s);
void gw_authcache_free(struct gw_authcache *c);
/* 1 when user, password and the stored hash passed within the TTL */
int gw_authcache_check(struct gw_authcache *c, const char *user,
    const char *password, const char *stored);
void gw_authcache_remember(struct gw_authcache *c, const char *user,
    const char *password, const char *stored);

/* --- judge.c: scan workers --------------------------------------------- */
int gw_judge_start(gateway_t *g);
/* Queue a received message for durability, scanning and its answer. */
void gw_judge_submit(gateway_t *g, struct mx_job *j);
/* Answers every queued message (451 when stopping) and joins. */
void gw_judge_stop(gateway_t *g);

/* --- mx.c: a received message's job ------------------------------------ */
void gw_job_free(struct mx_job *j);
/* Keep len more bytes of the message in the job's copy for the scanners,
 * within the gateway's limits (else the copy is given up); drop it. */
void gw_job_copy(struct mx_job *j, const void *buf, size_t len);
void gw_job_copy_drop(struct mx_job *j);

/* --- verdict.c: a scan judged by a tenant's policy ---------------------- */

/* What the scanners and the attachment walk found (judge.c fills it). */
typedef struct gw_findings {
	int av_status;               /* 0 scanned; else AR_* why not */
	char av_error[128];
	int infected;
	char virus[256];             /* names, ", "-separated */
	int spam_status;             /* 0 scanned; else AR_* why not */
	char spam_error[128];
	double score;                /* rspamd's */
	char rspamd_action[32];      /* "no action", "add header", "reject" ... */
	json_t *symbols;             /* {"NAME": score, ...} (owned) */
	int dmarc_reject;            /* DMARC failed with policy reject */
	int blocked;                 /* an attachment of a blocked type */
	char blocked_what[256];      /* "exe (invoice.pdf.exe)" */
	int encrypted;               /* an encrypted archive */
	json_t *attachments;         /* findings list (owned), may be NULL */
} gw_findings_t;

typedef struct gw_verdict {
	int action;                  /* enum store_gw_action */
	int tempfail;                /* 451 4.7.1 instead (scanner down) */
	int code;                    /* the SMTP answer when not accepted */
	char enhanced[16];
	char text[256];
	const char *kind;            /* "clean", "spam", "virus", "policy",
	                                "unscanned" (searchable) */
	json_t *reasons;             /* ["virus:Eicar-Test-Signature", ...] */
} gw_verdict_t;

/* Decide for a message from sender to rcpts (a JSON array of strings) of
 * tenant t.  Fills v (reasons owned by v: gw_verdict_clear). */
void gw_verdict_judge(store_t *st, const store_tenant_t *t,
    const char *sender, const json_t *rcpts, const gw_findings_t *f,
    gw_verdict_t *v);
void gw_verdict_clear(gw_verdict_t *v);
void gw_findings_clear(gw_findings_t *f);
/* The verdict as kept with the message and archived in its metadata. */
json_t *gw_verdict_json(const gw_verdict_t *v, const gw_findings_t *f);

/* --- queue.c: the relay queue's workers --------------------------------- */
int gw_queue_start(gateway_t *g);
void gw_queue_wake(gateway_t *g);
void gw_queue_stop(gateway_t *g);
/*
 * Queue a message of our own (a DSN, a released quarantined message) for
 * delivery to rcpts: its bytes (read through src) are spooled in the relay
 * queue with verdict in its state and source ("dsn", "release") in its
 * envelope; no archive copy.  fixed_id (may be NULL; spool_entry_id_new)
 * makes a repeat after a crash find the first: 0 when it is queued.
 * *id_out (may be NULL) receives the entry id.  sign: DKIM-signed with the
 * tenant's key of its From: domain if it has one (gw_dkim_outbound), the
 * way the tenant's outgoing mail is (a released outgoing message); a
 * temporary failure of the signer is returned, nothing queued (the
 * caller tries again).  DSNs and digests come from the gateway's own
 * name, which is no tenant's domain: not signed.
 */
int gw_enqueue(gateway_t *g, const store_tenant_t *t, const char *mail_from,
    const char *const *rcpts, size_t n, const struct gw_source *src,
    const char *source, const json_t *verdict, const uint8_t *fixed_id,
    int sign, uint8_t id_out[16]);

/* --- dkim_out.c: DKIM-signing outgoing mail ----------------------------- */
/*
 * Sign the accepted outbound message of tenant t in relay queue entry id
 * (idhex for the log) with the tenant's key of its From: domain.  0 with
 * *field the DKIM-Signature field (malloc'd, with its CRLF) or NULL when
 * the message goes unsigned (no key for that domain, no From:, a message
 * the signer cannot take: logged dkim=none / dkim=error); a temporary
 * failure (key service down, the entry unreadable) is returned as its
 * AR_* status (the message is then answered 451).
 */
int gw_dkim_outbound(gateway_t *g, const store_tenant_t *t,
    const uint8_t id[SPOOL_ID_LEN], const char *idhex, char **field);

/* --- stats.c: verdict and relay counts per tenant per day --------------- */
/* Count one judged message (kind: gw_verdict_t.kind). */
void gw_stats_count(gateway_t *g, const uint8_t tenant[STORE_TENANT_LEN],
    const char *kind, int action, int tempfail);
/* Count n of the relay queue's which (enum store_relay_stat). */
void gw_stats_relay(gateway_t *g, const uint8_t tenant[STORE_TENANT_LEN],
    int which, uint64_t n);
/* Add what was counted to the catalog (queue workers, gateway_free). */
void gw_stats_flush(gateway_t *g);

/* --- quarantine.c ----------------------------------------------------------- */
/*
 * Keep a quarantined message of tenant t (relay queue entry entry_id, its
 * envelope and verdict, its bytes through src) as a quarantine object:
 * sealed in the tenant's store, recorded in the catalog, kept
 * t->gw.quarantine_days.  Idempotent per entry (a repeat after a crash
 * finds the first).  *qid receives the quarantine id.
 */
int gw_quarantine_keep(gateway_t *g, const store_tenant_t *t,
    const uint8_t entry_id[16], const json_t *env, const json_t *verdict,
    const struct gw_source *src, uint8_t qid[16]);
/* Queue every release asked for (queue.c's workers call it). */
void gw_quarantine_releases(gateway_t *g);

#endif
