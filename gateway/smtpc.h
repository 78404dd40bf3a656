/*
 * smtpc.h - private to gateway/: the parts under the delivery layer
 * (relay.c): our SMTP client (smtpc.c) and the DNS lookups of MX and
 * address records (mxlookup.c).  Nothing here knows about routes, pools or
 * queues; relay.c puts them together (relay.h).
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h) unless it
 * says otherwise.
 */
#ifndef GATEWAY_SMTPC_H
#define GATEWAY_SMTPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "gateway/relay.h"

/* --- replies (smtpc.c) ------------------------------------------------------ */

/* One SMTP reply, all its lines (RFC 5321 4.2). */
typedef struct smtpc_reply {
	int code;                    /* 200..599 */
	char enhanced[16];           /* RFC 3463 "5.1.1" of the first line, or
	                                "" (its class must match the code's) */
	char text[512];              /* one line for logs, states and DSNs:
	                                "550 5.1.1 first line second line"
	                                (truncated, control characters out) */
	char lines[4096];            /* each line's text after "NNN-"/"NNN ",
	                                '\n'-separated (EHLO keywords) */
} smtpc_reply_t;

/*
 * Parse one complete reply at the start of buf[0..len): 0 with *used (the
 * bytes it took, its last line's end included), AR_EAGAIN when the reply
 * is not complete yet, AR_EPROTO when the bytes are not a reply (a line
 * that does not start with a code 2xx..5xx followed by '-', ' ' or its
 * end; lines with different codes; a line longer than 2,048 bytes).
 * Lines end with CRLF or a bare LF.
 */
int smtpc_reply_parse(const char *buf, size_t len, smtpc_reply_t *r,
    size_t *used);

/* --- sessions (smtpc.c) ----------------------------------------------------- */

typedef struct smtpc smtpc_t;

/* EHLO keywords we use. */
enum {
	SMTPC_EXT_PIPELINING = 1 << 0,
	SMTPC_EXT_SIZE       = 1 << 1,
	SMTPC_EXT_STARTTLS   = 1 << 2,
	SMTPC_EXT_8BITMIME   = 1 << 3,
	SMTPC_EXT_SMTPUTF8   = 1 << 4,
	SMTPC_EXT_ENHANCED   = 1 << 5,
};

typedef struct smtpc_params {
	const char *helo;            /* our name, also the loop check */
	int64_t connect_timeout_ms;
	int64_t command_timeout_ms;  /* each reply, each blocked write */
	int64_t data_timeout_ms;     /* the reply to the final "." */
	int tls;                     /* enum store_tls_policy */
	int no_starttls;             /* opportunistic, second try: in clear */
	SSL_CTX *ssl_ctx;            /* verify: with its CA store */
	const char *tls_name;        /* SNI and the name verified; NULL for
	                                an address literal (tls_ip) */
	const char *tls_ip;          /* the address verified for a literal */
	const uint8_t *tls_pin;      /* SHA-256 of the server's SPKI (32
	                                bytes): verify by the key alone */
} smtpc_params_t;

/* Why a session could not be opened (smtpc_open's return, > 0). */
enum smtpc_fail {
	SMTPC_ECONNECT = 1,          /* no connection, lost, timed out, or
	                                not SMTP */
	SMTPC_EREFUSED,              /* the greeting or EHLO/HELO said 4xx or
	                                5xx (fail->code) */
	SMTPC_ETLS,                  /* STARTTLS failed (handshake, or the
	                                reply to STARTTLS) */
	SMTPC_ETLSREQ,               /* policy verify not met: no STARTTLS
	                                offered, or the certificate or key
	                                did not verify */
	SMTPC_ELOOP,                 /* the server greets with our own name */
};

/*
 * Connect to sa (non-blocking, connect_timeout_ms), read the greeting,
 * EHLO (HELO when EHLO gets a 5xx), STARTTLS per p->tls (TLS 1.2 or
 * later, SNI, then EHLO again).  label ("name[addr]:port") is used in
 * reasons.  0 and *out, or an enum smtpc_fail with the reason in fail
 * (fail->code: the server's code, or 0 with our reason in fail->text), or
 * a negative AR_* status (out of memory).
 */
int smtpc_open(smtpc_t **out, const struct sockaddr *sa, socklen_t salen,
    const char *label, const smtpc_params_t *p, smtpc_reply_t *fail);

/* What the server offered after (the last) EHLO: SMTPC_EXT_* bits. */
unsigned smtpc_ext(const smtpc_t *c);
/* "TLSv1.3" once STARTTLS completed, else NULL. */
const char *smtpc_tls_version(const smtpc_t *c);

/*
 * One transaction on an open session: MAIL FROM (SIZE= when offered,
 * SMTPUTF8 when an address needs it), the RCPTs and DATA (in one write
 * with MAIL when PIPELINING is offered, RFC 2920), prepend and the
 * message from src
 * (dot-stuffed; a bare CR or LF is sent as CRLF), the final ".".
 * res[i] gets recipient i's outcome (code, enhanced, text; host is left
 * alone): the RCPT reply when it was refused, else the reply to DATA or to
 * the final ".", or code 0 and our reason when the session broke first.
 *
 * Returns 0 when every res[i] is set; SMTPC_EREFUSED when MAIL FROM got a
 * 4xx (res untouched, the reply in *mail), SMTPC_ECONNECT when the
 * session broke before the message was sent (res untouched, our reason in
 * mail->text, code 0): nothing was delivered and the caller tries another
 * host; a negative AR_* status when src could not be read (res untouched,
 * the session unusable).  A 5xx to MAIL FROM sets every res[i] to it.
 * Once the message is under way a broken session is final for this
 * attempt: code 0 for every recipient not refused before.
 */
int smtpc_send(smtpc_t *c, const char *mail_from, const char *const *rcpts,
    size_t n, const char *prepend, const gw_source_t *src,
    gw_rcpt_result_t *res, smtpc_reply_t *mail);

/* Is the session in a known, idle state (to reuse or to RSET)? */
int smtpc_usable(const smtpc_t *c);
/* Usable, and no transaction left open (the next MAIL needs no RSET). */
int smtpc_clean(const smtpc_t *c);
/* An idle session still there: nothing came from the server while it
 * was idle (no 421, no close; TLS records without data are read).  A
 * session that is not is marked unusable. */
int smtpc_alive(smtpc_t *c);
/* RSET: 0 when the server answered 250 (the session may be reused). */
int smtpc_reset(smtpc_t *c);
/* QUIT (when usable, waiting at most wait_ms for its reply) and close;
 * NULL is fine. */
void smtpc_close(smtpc_t *c, int64_t wait_ms);

/* --- DNS (mxlookup.c) -------------------------------------------------------- */

typedef struct gw_dns gw_dns_t;

/*
 * Lookups through server ("a.b.c.d:port", an IPv4 address; NULL: the
 * system's resolver, /etc/resolv.conf, and /etc/hosts for addresses),
 * with a small cache (answers kept for their TTL, at most 5 minutes;
 * failures not kept).  AR_ECONFIG for a server that is not an IPv4
 * address with a port.  Thread-safe.
 */
int gw_dns_new(gw_dns_t **out, const char *server);
void gw_dns_free(gw_dns_t *dns);

typedef struct gw_mx {
	char host[256];
	unsigned pref;
} gw_mx_t;

/*
 * The MX records of domain, lowest preference first (records of equal
 * preference in random order), at most max in out, *n of them.  Returns
 * 0 (with *n == 0 when the domain has no MX: the caller uses the domain
 * itself, RFC 5321 5.1), AR_ENOENT (no such domain), AR_EPERM (a null MX,
 * RFC 7505: the domain takes no mail), AR_EAGAIN (no answer, server
 * failure) or AR_EPROTO (a malformed answer); why says it in a sentence.
 */
int gw_dns_mx(gw_dns_t *dns, const char *domain, gw_mx_t *out, size_t max,
    size_t *n, char *why, size_t whylen);

/*
 * The addresses of host with port (an address literal is itself; a name:
 * its A records, then its AAAA records), at most max, *n of them (>= 1).
 * 0, AR_ENOENT (no such host or no address), AR_EAGAIN, AR_EPROTO; why.
 */
int gw_dns_addrs(gw_dns_t *dns, const char *host, unsigned port,
    struct sockaddr_storage *out, size_t max, size_t *n, char *why,
    size_t whylen);

#endif
