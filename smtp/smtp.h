/*
 * smtp.h - the smtp module: an event-driven RFC 5321 ESMTP receiver engine.
 *
 * The engine speaks SMTP (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT,
 * VRFY, HELP, STARTTLS, AUTH PLAIN/LOGIN) and knows nothing about storage:
 * every decision and every message byte goes through the callbacks below.
 *
 * Threading: smtp_server_run() runs cfg.loops event loops (epoll,
 * non-blocking sockets, non-blocking OpenSSL), one on the calling thread and
 * the others on threads of their own; each serves the sessions it accepted
 * from start to end.  The callbacks of one session are always called on its
 * loop's thread, those of different sessions possibly at the same time, and
 * they must not block for long.  The connection limits hold across all the
 * loops.  The only functions that may be called from other threads are
 * smtp_server_stop() and smtp_session_reply().
 *
 * Message completion is asynchronous: data_end() hands the consumer a token;
 * the consumer makes the message durable at its own pace (on any thread) and
 * then answers with smtp_session_reply(token, ...).  Only then does the
 * client get its 250 (or 4xx/5xx).  Every token must be answered exactly
 * once; smtp_server_free() waits until all are.
 *
 * Status convention: 0 or a negative AR_* code (common/ar.h).
 */
#ifndef SMTP_SMTP_H
#define SMTP_SMTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/ar.h"
#include "common/conf.h"

typedef struct smtp_server smtp_server_t;
typedef struct smtp_session smtp_session_t;
typedef struct smtp_token smtp_token_t;

/* --- configuration ------------------------------------------------------ */

/*
 * Explicit limits.  Field types match common/conf.h so the struct can be
 * filled from smtp_config_defs[] (ar_conf_load / ar_conf_set); the defaults
 * are RFC 5321's (section 4.5.3) where it names one.
 */
struct smtp_config {
	char hostname[AR_CONF_STR_MAX];  /* banner/EHLO name; "" = gethostname */
	char tls_cert[AR_CONF_STR_MAX];  /* PEM chain; "" = no STARTTLS */
	char tls_key[AR_CONF_STR_MAX];   /* PEM private key */
	int64_t max_connections;         /* all clients together */
	int64_t max_connections_per_ip;  /* one client address */
	int64_t max_command_line;        /* bytes incl. CRLF (RFC: 512) */
	int64_t max_data_line;           /* bytes incl. CRLF (RFC: 1000) */
	int64_t max_recipients;          /* per message (RFC minimum: 100) */
	int64_t max_message_size;        /* bytes, advertised as SIZE */
	int64_t max_errors;              /* protocol errors before 421 */
	int64_t timeout_command_ms;      /* greeting / command wait (5 min) */
	int64_t timeout_data_ms;         /* between DATA blocks (3 min) */
	int64_t timeout_data_end_ms;     /* consumer answer after "." (10 min) */
	int64_t loops;                   /* event-loop threads */
};

extern const struct ar_conf_def smtp_config_defs[];
extern const size_t smtp_config_ndefs;

/* Fill cfg with the defaults of smtp_config_defs.  0 or AR_ECONFIG. */
int smtp_config_defaults(struct smtp_config *cfg);

/* --- replies ------------------------------------------------------------ */

#define SMTP_REPLY_TEXT_MAX 512

/*
 * A reply: three-digit code, enhanced status code (RFC 3463, "5.1.1"; empty
 * means "x.0.0" of the code's class) and text.  A '\n' in text starts a new
 * line of a multi-line reply; the engine adds the code prefixes and CRLFs
 * and replaces other control characters with spaces.
 */
struct smtp_reply {
	int code;
	char enhanced[16];
	char text[SMTP_REPLY_TEXT_MAX];
};

/* Set all three fields (text truncated to SMTP_REPLY_TEXT_MAX - 1). */
void smtp_reply_set(struct smtp_reply *r, int code, const char *enhanced,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* --- sessions ----------------------------------------------------------- */

/*
 * What a callback may know about the client.  Strings are never NULL
 * ("" when unknown).  The struct and its strings are owned by the session
 * and valid during the callback that received the session.
 */
struct smtp_session_info {
	const char *id;              /* session id, as in the logs */
	const char *client_ip;       /* numeric address */
	unsigned client_port;
	const struct sockaddr *client_addr;
	socklen_t client_addrlen;
	const char *helo;            /* HELO/EHLO argument */
	int esmtp;                   /* 1 after EHLO */
	int tls;                     /* 1 once STARTTLS completed */
	const char *tls_protocol;    /* "TLSv1.3" */
	const char *tls_cipher;      /* "TLS_AES_256_GCM_SHA384" */
	const char *auth_user;       /* authenticated user, "" if none */
};

const struct smtp_session_info *smtp_session_info(const smtp_session_t *s);

/* The envelope of the current transaction: the MAIL FROM address ("" for
 * the null path) and the accepted RCPT TO addresses.  Owned by the session,
 * valid until the transaction ends (data_end returns, RSET, disconnect). */
const char *smtp_session_mail_from(const smtp_session_t *s);
size_t smtp_session_rcpt_count(const smtp_session_t *s);
const char *smtp_session_rcpt(const smtp_session_t *s, size_t i);

/* A pointer the application keeps per session (NULL at first); release it
 * in the disconnect callback. */
void smtp_session_set_udata(smtp_session_t *s, void *udata);
void *smtp_session_udata(const smtp_session_t *s);

/* MAIL FROM parameters the engine understood (others are refused). */
struct smtp_mail_params {
	int64_t size;       /* SIZE=, -1 when absent */
	int body_8bit;      /* BODY=8BITMIME */
	int smtputf8;       /* SMTPUTF8 */
};

/*
 * Callbacks.  Every one is optional.  Reply callbacks receive a reply
 * pre-filled with the engine's success answer; leaving it as is accepts,
 * setting a 4xx/5xx code refuses (the text is sent to the client).
 */
struct smtp_callbacks {
	void *arg;                       /* first argument of every callback */

	/* A new connection.  A 4xx/5xx reply is sent and the session closed. */
	void (*connect)(void *arg, smtp_session_t *s, struct smtp_reply *r);
	void (*mail_from)(void *arg, smtp_session_t *s, const char *addr,
	    const struct smtp_mail_params *p, struct smtp_reply *r);
	void (*rcpt_to)(void *arg, smtp_session_t *s, const char *addr,
	    struct smtp_reply *r);
	/* AUTH (offered only over TLS and only when set): 0 accepts,
	 * AR_EPERM refuses (535 5.7.8), any other code is temporary
	 * (454 4.7.0).  The password is wiped after the call. */
	int (*auth)(void *arg, smtp_session_t *s, const char *user,
	    const char *password);

	/* DATA: return a sink for the message, or NULL with r set to a
	 * 4xx/5xx reply.  Without data_begin, messages are discarded. */
	void *(*data_begin)(void *arg, smtp_session_t *s, struct smtp_reply *r);
	/* Message bytes exactly as sent (dot-unstuffed, CRLF kept, no added
	 * header), in order.  0, or a negative AR_* code: the message fails
	 * (data_abort, then 451 4.3.0 / 552 5.3.4 for AR_ETOOBIG|AR_ENOSPC). */
	int (*data_write)(void *arg, void *sink, const void *buf, size_t len);
	/* The message is complete.  The sink now belongs to the consumer, who
	 * must call smtp_session_reply(tok, ...) exactly once, from any thread
	 * (even from inside this callback).  s is valid only during the call. */
	void (*data_end)(void *arg, void *sink, smtp_session_t *s,
	    smtp_token_t *tok);
	/* The message failed (disconnect, timeout, size or line limit, write
	 * error, shutdown): discard the sink.  status says why. */
	void (*data_abort)(void *arg, void *sink, int status);

	/* The session is closing; release its udata. */
	void (*disconnect)(void *arg, smtp_session_t *s);
};

/*
 * Answer a completed message (see data_end).  Thread-safe.  code must be
 * 2xx, 4xx or 5xx (anything else becomes 451 4.3.0); enhanced and text may
 * be NULL.  Consumes tok.  If the client is gone, the answer is dropped.
 * Returns 0, or AR_EINVAL for a NULL token.
 */
int smtp_session_reply(smtp_token_t *tok, int code, const char *enhanced,
    const char *text);

/* --- server ------------------------------------------------------------- */

/*
 * Create a server (copies cfg and cb).  Loads the TLS certificate when one
 * is configured.  0 and *out, or AR_ECONFIG / AR_ENOMEM / AR_EIO with a
 * message in err.
 */
int smtp_server_new(const struct smtp_config *cfg,
    const struct smtp_callbacks *cb, smtp_server_t **out,
    char *err, size_t errlen);

/* Listen on host ("127.0.0.1", "::", NULL = any IPv6+IPv4) and port; port
 * 0 picks a free one, reported in *bound_port (may be NULL).  Call before
 * smtp_server_run().  0 or AR_EIO (see smtp_server_errmsg). */
int smtp_server_listen(smtp_server_t *srv, const char *host, unsigned port,
    unsigned *bound_port);

/*
 * Serve until smtp_server_stop().  On stop: listeners close, idle sessions
 * get 421 4.3.2, sessions in DATA are aborted, sessions waiting for the
 * consumer get its answer, then run() returns 0 (AR_EIO on a loop error).
 */
int smtp_server_run(smtp_server_t *srv);

/* Ask run() to finish (thread-safe, async-signal-safe). */
void smtp_server_stop(smtp_server_t *srv);

/* Close everything.  Waits until every data_end token is answered. */
void smtp_server_free(smtp_server_t *srv);

/* The last error message of the server (never NULL). */
const char *smtp_server_errmsg(const smtp_server_t *srv);

#endif /* SMTP_SMTP_H */
