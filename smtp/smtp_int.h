/*
 * smtp_int.h - private structures of the SMTP engine (smtp/smtp_*.c).
 * Not part of the module's public interface.
 */
#ifndef SMTP_INT_H
#define SMTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "smtp/smtp.h"

enum smtp_kind { SMTP_K_LISTENER = 1, SMTP_K_WAKE, SMTP_K_SESSION };

enum smtp_state {
	SMTP_S_INIT,        /* before HELO/EHLO */
	SMTP_S_READY,       /* after HELO/EHLO, no transaction */
	SMTP_S_MAIL,        /* MAIL accepted */
	SMTP_S_DATA,        /* receiving message bytes */
	SMTP_S_WAIT_END,    /* waiting for the consumer's answer */
	SMTP_S_AUTH,        /* AUTH continuation lines */
};

/* Data phase byte scanner states (dot-unstuffing, end detection). */
enum smtp_dstate { SMTP_D_BOL, SMTP_D_MID, SMTP_D_CR, SMTP_D_DOT,
	SMTP_D_DOTCR };

#define SMTP_MAX_LISTENERS 8
#define SMTP_IN_MIN        16384     /* input buffer, at least */
#define SMTP_OUT_HIGH      65536     /* stop reading while out is larger */
#define SMTP_STAGE_SIZE    65536     /* data_write batching */
#define SMTP_PATH_MAX      512       /* RFC 5321 path is 256; be lenient */
#define SMTP_READS_PER_RUN 16        /* fairness between sessions */

struct smtp_listener {
	int kind;
	int fd;
};

struct smtp_token {
	struct smtp_session *s;
	struct smtp_reply reply;
	struct smtp_token *next;
};

struct smtp_loop;

struct smtp_session {
	int kind;
	smtp_server_t *srv;
	struct smtp_loop *loop;                 /* the thread serving it */
	struct smtp_session *prev, *next;       /* the loop's sessions */
	struct smtp_session *ready_next;        /* more input to process */
	int in_ready;
	int fd;
	SSL *ssl;
	int dead;                               /* closed, awaiting token */
	int closing;                            /* flush, then close */
	int pause_read;                         /* STARTTLS/handshake/... */
	int handshake;                          /* TLS handshake running */
	int starttls_pending;                   /* start TLS once flushed */
	int rd_wants_write, wr_wants_read;      /* OpenSSL retry directions */
	uint32_t ep_events;                     /* registered epoll events */
	int64_t deadline_us;
	int64_t start_us;
	const char *close_reason;

	struct smtp_session_info info;
	char id[24];
	char ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage addr;
	char helo[256];
	char tls_proto[32];
	char tls_cipher[96];
	char auth_user[256];

	enum smtp_state st;
	int discard_line;                       /* skipping an overlong line */
	int errors;
	unsigned messages;

	unsigned char *in;
	size_t in_len, in_cap;
	unsigned char *out;
	size_t out_off, out_len, out_cap;

	/* transaction */
	char *mail_from;
	struct smtp_mail_params params;
	char **rcpt;
	size_t nrcpt, rcpt_cap;

	/* data phase */
	void *sink;
	enum smtp_dstate dst;
	int64_t data_size;
	int64_t line_len;
	int data_fail;                          /* why the message failed */
	int data_status;                        /* data_write's error */
	unsigned char *stage;
	size_t stage_len;
	smtp_token_t *token;                    /* outstanding data_end */
	int64_t data_start_us;

	/* AUTH continuation */
	int auth_mech;                          /* 1 PLAIN, 2 LOGIN */
	int auth_step;
	char auth_login_user[256];

	void *udata;
};

/*
 * One event loop: a thread with its own epoll set, serving the sessions it
 * accepted.  Every loop polls the listeners (EPOLLEXCLUSIVE: a connection
 * wakes one idle loop), so the sessions spread over the loops.
 */
struct smtp_loop {
	int kind;                               /* SMTP_K_WAKE: wakefd's tag */
	smtp_server_t *srv;
	pthread_t thread;
	int epfd;
	int wakefd;                             /* eventfd */
	struct smtp_session *sessions;
	struct smtp_session *ready;
	int64_t next_deadline_us;
	int stopping;
	int rc;                                 /* why the loop ended */
	smtp_token_t *replies, *replies_tail;   /* under srv->mu */
};

struct smtp_ipcount {                       /* live sessions of a client */
	char ip[INET6_ADDRSTRLEN];
	int n;
};

struct smtp_server {
	struct smtp_config cfg;
	struct smtp_callbacks cb;
	char hostname[256];
	SSL_CTX *tls;
	struct smtp_listener lst[SMTP_MAX_LISTENERS];
	int nlst;
	struct smtp_loop *loops;
	int nloops;
	atomic_int stop;
	uint32_t id_base;
	atomic_uint_fast64_t id_counter;
	char errmsg[256];

	pthread_mutex_t mu;                     /* guards the fields below */
	pthread_cond_t cv;
	size_t tokens_out;                      /* handed to consumers */
	size_t nsessions;                       /* live, all loops */
	struct smtp_ipcount *ips;               /* live sessions per client */
	size_t nips, capips;
};

/* smtp_server.c */
void smtp_sess_set_timeout(struct smtp_session *s, int64_t ms);
void smtp_sess_close(struct smtp_session *s, const char *reason);
void smtp_sess_update_events(struct smtp_session *s);
void smtp_sess_mark_ready(struct smtp_session *s);

/* smtp_io.c */
int smtp_io_read(struct smtp_session *s);
int smtp_io_flush(struct smtp_session *s);
void smtp_out_append(struct smtp_session *s, const void *buf, size_t len);
void smtp_send_reply(struct smtp_session *s, const struct smtp_reply *r);
void smtp_send(struct smtp_session *s, int code, const char *enhanced,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* smtp_tls.c */
int smtp_tls_ctx_new(smtp_server_t *srv, char *err, size_t errlen);
void smtp_tls_ctx_free(smtp_server_t *srv);
int smtp_tls_start(struct smtp_session *s);
int smtp_tls_handshake(struct smtp_session *s);

/* smtp_proto.c */
void smtp_proto_input(struct smtp_session *s);
void smtp_proto_reset(struct smtp_session *s);
int smtp_proto_error(struct smtp_session *s, int code, const char *enhanced,
    const char *text);

/* smtp_data.c */
void smtp_data_begin(struct smtp_session *s);
size_t smtp_data_input(struct smtp_session *s, const unsigned char *buf,
    size_t len);
void smtp_data_abort(struct smtp_session *s, int status);
void smtp_data_answer(struct smtp_session *s, smtp_token_t *tok);

/* smtp_auth.c */
void smtp_auth_command(struct smtp_session *s, char *arg);
void smtp_auth_line(struct smtp_session *s, char *line);

#endif /* SMTP_INT_H */
