/*
 * gateway.h - the filtering gateway: archived as the tenants' inbound MX
 * (DESIGN.md "Filtering gateway").
 *
 * Inbound, before the 250: the recipient's domain must be a tenant's
 * (else 550 5.7.1 relay denied) and, where the domain checks them, the
 * recipient listed (else 550 5.1.1); the message is spooled sealed in the
 * relay queue (a stateful spool, spool/spool.h), scanned from there
 * (clamd, rspamd, attachment policy: gateway/scan.h) and judged by the
 * tenant's policy (store_gw_policy_t): rejected (5xx, removed: no
 * backscatter), or accepted with its verdict - deliver, tag, quarantine -
 * written durably beside it before the 250.  Scanners down: 451 4.7.1
 * unless the tenant accepts unscanned mail (tagged).
 *
 * After the 250 the relay queue's workers take each message: a copy goes
 * to the archive (the ingest spool, with the verdict in its envelope, so
 * the pipeline archives it like journal mail), a quarantined one becomes a
 * sealed quarantine object of the tenant, the rest is delivered to the
 * tenant's server by its domain's routes, with retries up to the queue
 * lifetime and DSNs for what bounces.
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h).
 */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp.h"
#include "spool/spool.h"
#include "store/store.h"

typedef struct gateway gateway_t;

/* Settings (archived.conf gateway_*; see docs/operator-guide.md). */
typedef struct gateway_opts {
	const char *hostname;        /* in Received: and DSNs ("" = host's) */
	const char *clamd_socket;    /* "" = no antivirus configured */
	const char *rspamd_url;      /* "" = no spam scanner configured */
	int64_t scan_timeout_ms;     /* each scanner, each message */
	uint64_t clamd_stream_max;   /* clamd's StreamMaxLength (0: learnt
	                                from its refusal) */
	uint64_t rspamd_max_bytes;   /* larger messages not sent to rspamd
	                                (0: 50 MiB) */
	int scan_workers;            /* threads making durable + scanning */
	/* a copy of each message received into memory, for the scanners to
	 * read instead of the sealed spool entry: at most scan_mem_message
	 * bytes per message, scan_mem_max for all at once (0: off) */
	uint64_t scan_mem_max, scan_mem_message;
	int queue_workers;           /* relay queue threads */
	/* the archive feed: accepted mail goes into this spool (the ingest
	 * spool), then archive_wake(arg) */
	spool_t *archive;
	void (*archive_wake)(void *arg);
	void *archive_wake_arg;
	/* relay queue back-pressure, as the ingest spool's (0: none) */
	int64_t max_backlog_age;
	uint64_t max_backlog_bytes, max_backlog_entries;
	/* delivery */
	int64_t retry_min, retry_max;         /* s: first retry, cap (60, 3600) */
	int64_t relay_connect_timeout_ms;
	int64_t relay_command_timeout_ms;
	int64_t relay_data_timeout_ms;
	int relay_max_per_host;               /* connections to one host */
	const char *dns_server;               /* "addr:port"; "" = system */
	int64_t auth_cache_ttl;               /* s an AUTH success is
	                                         remembered; 0: never */
} gateway_opts_t;

/*
 * A gateway over st, its relay queue rq (a spool opened SPOOL_STATEFUL,
 * borrowed), the SMTP engine's limits cfg (its own listener).  Starts the
 * scan and queue threads; entries already in rq (after a restart) are
 * taken up.  err receives a one-line reason on failure.
 */
int gateway_new(gateway_t **out, store_t *st, spool_t *rq,
    const struct smtp_config *cfg, const gateway_opts_t *o, char *err,
    size_t errlen);
/* "host:port"; port 0 picks a free one (*bound_port). */
int gateway_listen(gateway_t *g, const char *hostport, unsigned *bound_port,
    char *err, size_t errlen);
/* Serve SMTP until gateway_stop (from another thread or a signal). */
int gateway_run(gateway_t *g);
void gateway_stop(gateway_t *g);
/* Answers every message being scanned, stops the queue threads, frees. */
void gateway_free(gateway_t *g);

/*
 * The daily quarantine digest (gateway/digest.c): for every tenant whose
 * policy has it on and whose digest of the day slot starting at slot (a
 * time, UTC) is not yet sent, one message per recipient listing what was
 * quarantined for it since the previous digest, each with a signed
 * release link (base_url + "/release.html#...", valid link_ttl seconds,
 * once, for that recipient only), queued through the relay queue.  The
 * caller (archived's jobs thread) calls it when the slot has come;
 * repeated calls send nothing more.  *sent: digests queued.  AR_EAGAIN
 * when some could not be queued (tried again at the next call).
 */
typedef struct gateway_digest_opts {
	int64_t slot;                /* start of this digest's day slot */
	const char *base_url;        /* the console as recipients reach it;
	                                "" or NULL: no links */
	int64_t link_ttl;            /* seconds (0: 3 days) */
} gateway_digest_opts_t;
int gateway_digest_run(gateway_t *g, const gateway_digest_opts_t *o,
    size_t *sent);

/*
 * The relay queue as the operator sees it (gateway/qsummary.c): rq is the
 * relay queue (archived's own, or one opened SPOOL_READONLY |
 * SPOOL_STATEFUL by archivectl), tenant one tenant's entries (NULL: all).
 * Per recipient domain of each tenant: its recipients by state in the
 * messages still queued (pending and deferred wait; delivered, bounced
 * and quarantined are final for a message that still waits for another
 * recipient), the arrival of the oldest of those messages, the earliest
 * next attempt of a deferred recipient, and the reply a deferred
 * recipient got last.  cb (may be NULL) is called with each entry and its
 * state record (JSON text, valid during the call); a non-zero return
 * stops the walk and is returned.  An entry whose state cannot be read
 * (keysvc down, or rewritten at that moment) counts in unreadable.
 * domains are sorted by name; gateway_queue_summary_clear frees them.
 */
typedef struct gateway_queue_domain {
	uint8_t tenant[STORE_TENANT_LEN];
	char name[STORE_DOMAIN_MAX];
	uint64_t pending, deferred;              /* recipients waiting */
	uint64_t delivered, bounced, quarantined;
	int64_t oldest;              /* arrival, seconds since the epoch */
	int64_t next_attempt;        /* 0: none deferred */
	int64_t last_error_time;     /* of last_error; 0: none */
	char last_error[256];
} gateway_queue_domain_t;

typedef struct gateway_queue_summary {
	uint64_t messages;           /* entries in the queue */
	uint64_t unreadable;         /* of which the state was not read */
	gateway_queue_domain_t *domains;
	size_t n;
} gateway_queue_summary_t;

typedef int (*gateway_queue_entry_cb)(void *arg, const spool_entry_t *e,
    const char *state_json);
int gateway_queue_summary(spool_t *rq, const uint8_t *tenant,
    gateway_queue_entry_cb cb, void *arg, gateway_queue_summary_t *out);
void gateway_queue_summary_clear(gateway_queue_summary_t *s);

#endif /* GATEWAY_GATEWAY_H */
