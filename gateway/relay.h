/*
 * relay.h - private to gateway/: delivery of a queued message to the next
 * hop (relay.c, with its SMTP client smtpc.c and MX lookup mxlookup.c), and
 * RFC 3464 delivery status notifications (dsn.c).  queue.c decides what to
 * send when and keeps the per-recipient state; this layer only talks SMTP.
 *
 * Why our own SMTP client and not libcurl's: libcurl reports one result
 * per transfer (the last reply), while a relay must keep each recipient's
 * own RCPT reply (one 5xx among three recipients bounces that one alone,
 * RFC 5321 3.3) and the remote's final reply text (kept with each
 * delivered recipient, shown by archivectl relay queue); libcurl's
 * CURLOPT_MAIL_RCPT_ALLOWFAILS continues past failed recipients but does
 * not say which failed or why.
 */
#ifndef GATEWAY_RELAY_H
#define GATEWAY_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The message: size bytes read in order through read (restartable: each
 * attempt calls rewind first). */
typedef struct gw_source {
	int (*rewind)(void *arg);
	int (*read)(void *arg, void *buf, size_t len, size_t *got);
	void *arg;
	uint64_t size;
} gw_source_t;

/* Settings; a 0 takes the default in parentheses. */
typedef struct gw_relay_opts {
	const char *hostname;        /* EHLO name; a server greeting with it
	                                is a loop ("" / NULL: gethostname) */
	int64_t connect_timeout_ms;  /* per connection attempt (30 s); also
	                                the longest wait for a free slot */
	int64_t command_timeout_ms;  /* per reply, per blocked write (5 min,
	                                RFC 5321 4.5.3.2) */
	int64_t data_timeout_ms;     /* final "." reply (10 min) */
	int max_per_host;            /* connections at once to one server
	                                address:port, idle ones included (4) */
	int idle_keep_ms;            /* a connection kept for reuse (10 s);
	                                < 0: never reused */
	const char *dns_server;      /* "a.b.c.d:port" (IPv4) for MX/A/AAAA
	                                lookups; NULL: the system resolver */
	unsigned mx_port;            /* port of the hosts found by "mx:"
	                                routes (25; tests: $AR_TEST_MX_PORT) */
} gw_relay_opts_t;

typedef struct gw_relay gw_relay_t;

/* 0, AR_ENOMEM, AR_ECONFIG (dns_server not "a.b.c.d:port"). */
int gw_relay_new(gw_relay_t **out, const gw_relay_opts_t *o);
/* Closes the idle connections (QUIT); no gw_relay_send may be running. */
void gw_relay_free(gw_relay_t *r);

/* Counters since gw_relay_new (tests, metrics). */
typedef struct gw_relay_stats {
	uint64_t connects;           /* sessions opened (TCP connects that
	                                reached SMTP or failed) */
	uint64_t reused;             /* messages sent on a kept session */
	uint64_t busy;               /* a host skipped: max_per_host in use
	                                for connect_timeout_ms */
	int open;                    /* sessions open now (busy + idle) */
	int idle;                    /* of which idle */
} gw_relay_stats_t;

void gw_relay_stats(gw_relay_t *r, gw_relay_stats_t *out);

/* One recipient's outcome. */
typedef struct gw_rcpt_result {
	int code;                    /* 250, 4xx, 5xx; 0: not tried */
	char enhanced[16];           /* "5.1.1" or "" */
	char text[512];              /* the remote's reply (or our reason) */
	char host[280];              /* the host that answered (or the last
	                                tried): "name[address]:port" */
} gw_rcpt_result_t;

/*
 * Deliver one message to n recipients of one domain d (its routes, in
 * order; "mx:" looks up the MX records of d->name or of the named domain,
 * lowest preference first, then A/AAAA) with d's TLS policy:
 *   none          never STARTTLS;
 *   opportunistic STARTTLS when offered, clear text otherwise (a failed
 *                 handshake is retried in clear on a new connection);
 *   verify        STARTTLS required; the certificate verified against
 *                 d->tls_ca (or the system's CAs) for the host name, or
 *                 the server's public key matching d->tls_pin; never
 *                 anything in clear (a 4xx-like result with the reason).
 * prepend (may be NULL) is CRLF-terminated header text sent before the
 * message (our Received: line, X-Spam-* tags).  Dot-stuffing and the
 * final "." are done here (and a bare CR or LF goes out as CRLF: no SMTP
 * smuggling through us).  A session to the same server address with the
 * same TLS identity is kept idle_keep_ms and reused for the next message
 * (RSET first only when a transaction was left open), up to max_per_host
 * sessions at once per server address:port.
 *
 * res[i] is recipient i's outcome: 2xx delivered (with the final reply
 * after the data), 5xx bounced, 4xx or no connection (code 0 or 4xx,
 * reason in text) to be tried again.  Returns 0 when every recipient has
 * a result, or an AR_* status for a local failure (reading the source).
 *
 * In detail (docs/operator-guide.md "Relay"):
 *  - routes are tried in order, and within a route its hosts (MX: lowest
 *    preference first, equal ones in random order; no MX: the domain
 *    itself) and each host's addresses (A, then AAAA); a connection
 *    failure, a timeout, a 4xx or 5xx greeting or EHLO, a TLS failure or
 *    a 4xx to MAIL FROM moves on to the next address; the first server
 *    that takes the transaction decides, recipient by recipient;
 *  - when none does, every recipient gets the last failure: code 0 and
 *    our reason (no connection, TLS), or the 4xx that was last;
 *  - a null MX (RFC 7505) bounces at once: 556 5.1.10; a domain that
 *    does not exist (NXDOMAIN for an "mx:" route): 550 5.1.2;
 *  - a 5xx to MAIL FROM bounces every recipient, a 5xx to RCPT that one,
 *    a reply to DATA or to the final "." every recipient accepted;
 *  - a session lost or timed out during the transaction: code 0 for the
 *    recipients not refused yet (the message may have arrived: a
 *    duplicate the protocol cannot rule out if it is sent again);
 *  - max_per_host: a caller waits up to connect_timeout_ms for one of the
 *    host's sessions; then the host is skipped with 451 4.4.5 "(local)"
 *    as its failure (a 4xx: retried at the recipients' next attempt,
 *    the domain not taken for unreachable).
 */
int gw_relay_send(gw_relay_t *r, const store_domain_t *d,
    const char *mail_from, const char *const *rcpts, size_t n,
    const char *prepend, const gw_source_t *src, gw_rcpt_result_t *res);

/*
 * An RFC 3464 delivery status notification (multipart/report;
 * report-type=delivery-status) for the original message's sender: the
 * human-readable part, a message/delivery-status part (Reporting-MTA,
 * Arrival-Date, per recipient Final-Recipient, Action failed|delayed,
 * Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date) and the
 * original's header (text/rfc822-headers; at most hdr_max bytes of it read
 * through src, cut at a line end).  queue_id (may be NULL) is our id of
 * the original, shown as X-Archived-Queue-ID (RFC 3464's
 * Original-Envelope-Id is the sender's ENVID, which we do not keep).
 * remote_mta may be a result's host ("name[address]:port"): its name is
 * the Remote-MTA.  A diagnostic that starts with an SMTP code is
 * "smtp; ...", our own reason "X-Archived; ...".  *out is malloc'd CRLF
 * text (lines of at most 998 bytes) the caller frees.  0, AR_ENOMEM,
 * AR_EINVAL (n == 0), or the source's error.
 */
typedef struct gw_dsn_rcpt {
	const char *rcpt;
	const char *action;          /* "failed" or "delayed" */
	const char *status;          /* "5.1.1" */
	const char *remote_mta;      /* may be NULL */
	const char *diagnostic;      /* the remote reply, may be NULL */
	int64_t last_attempt;
} gw_dsn_rcpt_t;

int gw_dsn_build(const char *reporting_mta, const char *orig_sender,
    const char *queue_id, int64_t arrival, const gw_dsn_rcpt_t *rcpts,
    size_t n, const gw_source_t *src, size_t hdr_max, char **out,
    size_t *outlen);

#endif
