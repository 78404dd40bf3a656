/*
 * smtp_server.c - the SMTP engine's event loops: listeners, sessions,
 * timeouts, connection limits and the thread-safe answer queues.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <pthread.h>
#include <unistd.h>

#include "smtp/smtp_int.h"

#define SMTP_MAX_EVENTS 256

static void srv_err(smtp_server_t *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void srv_err(smtp_server_t *srv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(srv->errmsg, sizeof srv->errmsg, fmt, ap);
	va_end(ap);
}

const char *smtp_server_errmsg(const smtp_server_t *srv)
{
	return srv->errmsg;
}

static int check_config(const struct smtp_config *c, char *err, size_t len)
{
	if (c->max_connections < 1 || c->max_connections_per_ip < 1 ||
	    c->max_recipients < 1 || c->max_errors < 1) {
		snprintf(err, len, "smtp: connection, recipient and error "
		    "limits must be at least 1");
		return AR_ECONFIG;
	}
	if (c->max_command_line < 512 || c->max_command_line > 65536) {
		snprintf(err, len, "smtp_max_command_line: must be 512..65536");
		return AR_ECONFIG;
	}
	if (c->max_data_line < 1000 || c->max_message_size < 1024) {
		snprintf(err, len, "smtp: max_data_line must be >= 1000 and "
		    "max_message_size >= 1024");
		return AR_ECONFIG;
	}
	if (c->timeout_command_ms < 10 || c->timeout_data_ms < 10 ||
	    c->timeout_data_end_ms < 10) {
		snprintf(err, len, "smtp: timeouts must be at least 10ms");
		return AR_ECONFIG;
	}
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		snprintf(err, len, "smtp_tls_cert and smtp_tls_key go together");
		return AR_ECONFIG;
	}
	return 0;
}

/* The epoll set and wake-up eventfd of one loop. */
static int loop_init(smtp_server_t *srv, struct smtp_loop *l)
{
	struct epoll_event ev = { .events = EPOLLIN };

	l->kind = SMTP_K_WAKE;
	l->srv = srv;
	l->next_deadline_us = INT64_MAX;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ev.data.ptr = l;
	if (l->epfd < 0 || l->wakefd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0)
		return -1;
	return 0;
}

int smtp_server_new(const struct smtp_config *cfg,
    const struct smtp_callbacks *cb, smtp_server_t **out,
    char *err, size_t errlen)
{
	static const struct smtp_callbacks none;
	smtp_server_t *srv;
	int rc;

	*out = NULL;
	if ((rc = check_config(cfg, err, errlen)) < 0)
		return rc;
	if (!(srv = calloc(1, sizeof *srv))) {
		snprintf(err, errlen, "smtp: out of memory");
		return AR_ENOMEM;
	}
	srv->cfg = *cfg;
	if (srv->cfg.loops < 1)
		srv->cfg.loops = 1;
	srv->cb = cb ? *cb : none;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	if (cfg->hostname[0])
		ar_strlcpy(srv->hostname, cfg->hostname, sizeof srv->hostname);
	else if (gethostname(srv->hostname, sizeof srv->hostname - 1) < 0)
		ar_strlcpy(srv->hostname, "localhost", sizeof srv->hostname);
	if (getrandom(&srv->id_base, sizeof srv->id_base, 0) !=
	    sizeof srv->id_base)
		srv->id_base = (uint32_t)getpid() ^ (uint32_t)ar_mono_us();
	if (cfg->tls_cert[0] && (rc = smtp_tls_ctx_new(srv, err, errlen)) < 0)
		goto fail;
	if (!(srv->loops = calloc((size_t)srv->cfg.loops,
	    sizeof *srv->loops))) {
		snprintf(err, errlen, "smtp: out of memory");
		rc = AR_ENOMEM;
		goto fail;
	}
	for (int i = 0; i < srv->cfg.loops; i++)
		srv->loops[i].epfd = srv->loops[i].wakefd = -1;
	srv->nloops = (int)srv->cfg.loops;
	for (int i = 0; i < srv->nloops; i++)
		if (loop_init(srv, &srv->loops[i]) < 0) {
			snprintf(err, errlen, "smtp: epoll/eventfd: %s",
			    strerror(errno));
			rc = AR_EIO;
			goto fail;
		}
	*out = srv;
	return 0;
fail:
	smtp_server_free(srv);
	return rc;
}

int smtp_server_listen(smtp_server_t *srv, const char *host, unsigned port,
    unsigned *bound_port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL, *ai;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	char portstr[16];
	int fd = -1, one = 1, zero = 0, gai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	if (srv->nlst >= SMTP_MAX_LISTENERS || port > 65535) {
		srv_err(srv, "smtp: too many listeners or bad port");
		return AR_EINVAL;
	}
	snprintf(portstr, sizeof portstr, "%u", port);
	if ((gai = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		srv_err(srv, "smtp: %s: %s", host ? host : "*",
		    gai_strerror(gai));
		return AR_EIO;
	}
	/* Without a host, prefer one dual-stack IPv6 socket. */
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (ai->ai_family == AF_INET6 && !host)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
			    sizeof zero);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 1024) == 0)
			break;
		srv_err(srv, "smtp: bind %s port %u: %s", host ? host : "*",
		    port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (!srv->errmsg[0])
			srv_err(srv, "smtp: no address for %s", host);
		return AR_EIO;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && bound_port)
		*bound_port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	srv->lst[srv->nlst].kind = SMTP_K_LISTENER;
	srv->lst[srv->nlst].fd = fd;
	ev.data.ptr = &srv->lst[srv->nlst];
	for (int i = 0; i < srv->nloops; i++)
		if (epoll_ctl(srv->loops[i].epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			srv_err(srv, "smtp: epoll_ctl: %s", strerror(errno));
			while (i-- > 0)
				epoll_ctl(srv->loops[i].epfd, EPOLL_CTL_DEL,
				    fd, NULL);
			close(fd);
			return AR_EIO;
		}
	srv->nlst++;
	return 0;
}

/* --- sessions ----------------------------------------------------------- */

void smtp_sess_set_timeout(struct smtp_session *s, int64_t ms)
{
	s->deadline_us = ar_mono_us() + ms * 1000;
	if (s->deadline_us < s->loop->next_deadline_us)
		s->loop->next_deadline_us = s->deadline_us;
}

void smtp_sess_mark_ready(struct smtp_session *s)
{
	if (s->in_ready || s->dead)
		return;
	s->in_ready = 1;
	s->ready_next = s->loop->ready;
	s->loop->ready = s;
}

static void sess_unready(struct smtp_session *s)
{
	struct smtp_session **pp;

	if (!s->in_ready)
		return;
	for (pp = &s->loop->ready; *pp; pp = &(*pp)->ready_next)
		if (*pp == s) {
			*pp = s->ready_next;
			break;
		}
	s->in_ready = 0;
}

void smtp_sess_update_events(struct smtp_session *s)
{
	struct epoll_event ev = { 0 };
	size_t pending = s->out_len - s->out_off;

	if (s->dead)
		return;
	if (s->handshake || s->wr_wants_read ||
	    (!s->pause_read && !s->closing && pending < SMTP_OUT_HIGH))
		ev.events |= EPOLLIN;
	if (pending || s->rd_wants_write)
		ev.events |= EPOLLOUT;
	if (ev.events == s->ep_events)
		return;
	ev.data.ptr = s;
	if (epoll_ctl(s->loop->epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0)
		s->ep_events = ev.events;
}

/* --- connection limits (all loops) ---------------------------------------- */

/* Count a new session of ip unless a limit forbids it: NULL when counted,
 * else the name of the limit. */
static const char *conn_take(smtp_server_t *srv, const char *ip)
{
	const char *why = NULL;
	size_t i;

	pthread_mutex_lock(&srv->mu);
	for (i = 0; i < srv->nips; i++)
		if (!strcmp(srv->ips[i].ip, ip))
			break;
	if (srv->nsessions >= (size_t)srv->cfg.max_connections)
		why = "max_connections";
	else if (i < srv->nips &&
	    srv->ips[i].n >= srv->cfg.max_connections_per_ip)
		why = "max_connections_per_ip";
	else if (i == srv->nips && ar_grow((void **)&srv->ips, &srv->capips,
	    srv->nips, sizeof *srv->ips))
		why = "out_of_memory";
	if (!why) {
		if (i == srv->nips) {
			ar_strlcpy(srv->ips[i].ip, ip, sizeof srv->ips[i].ip);
			srv->ips[i].n = 0;
			srv->nips++;
		}
		srv->ips[i].n++;
		srv->nsessions++;
	}
	pthread_mutex_unlock(&srv->mu);
	return why;
}

static void conn_release(smtp_server_t *srv, const char *ip)
{
	pthread_mutex_lock(&srv->mu);
	for (size_t i = 0; i < srv->nips; i++)
		if (!strcmp(srv->ips[i].ip, ip)) {
			if (--srv->ips[i].n == 0)
				srv->ips[i] = srv->ips[--srv->nips];
			break;
		}
	srv->nsessions--;
	pthread_mutex_unlock(&srv->mu);
}

/* --- sessions (on their loop's thread) ------------------------------------- */

static void sess_free(struct smtp_session *s)
{
	smtp_proto_reset(s);
	free(s->rcpt);
	free(s->in);
	free(s->out);
	free(s->stage);
	free(s);
}

void smtp_sess_close(struct smtp_session *s, const char *reason)
{
	struct smtp_loop *l = s->loop;

	if (s->dead)
		return;
	if (s->sink)
		smtp_data_abort(s, AR_EIO);
	ar_log(AR_LOG_INFO, "session=%s event=close client=%s tls=%s "
	    "auth=%s messages=%u errors=%d dur_ms=%lld result=%s", s->id,
	    s->ip, s->ssl && !s->handshake ? s->tls_proto : "no",
	    s->auth_user[0] ? "yes" : "no", s->messages, s->errors,
	    (long long)((ar_mono_us() - s->start_us) / 1000),
	    reason ? reason : (s->close_reason ? s->close_reason : "close"));
	if (s->srv->cb.disconnect)
		s->srv->cb.disconnect(s->srv->cb.arg, s);
	sess_unready(s);
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	if (s->ssl) {
		if (!s->handshake)
			SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	close(s->fd);
	s->fd = -1;
	if (s->prev)
		s->prev->next = s->next;
	else
		l->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	conn_release(s->srv, s->ip);
	s->dead = 1;
	if (!s->token)
		sess_free(s);
	/* else: freed when the consumer answers the token */
}

/* Handle I/O and buffered input of one session until it would block. */
static void sess_run(struct smtp_session *s, uint32_t events)
{
	int r;

	if (events & (EPOLLERR | EPOLLHUP)) {
		/* the peer is gone both ways: nobody to answer */
		smtp_sess_close(s, "socket_error");
		return;
	}
	for (int i = 0;; i++) {
		size_t pending;

		if (s->handshake) {
			r = smtp_tls_handshake(s);
			if (r < 0) {
				smtp_sess_close(s, "tls_failed");
				return;
			}
			if (r == 0)
				break;
		}
		if (!s->closing && !s->pause_read)
			smtp_proto_input(s);
		if (smtp_io_flush(s) < 0) {
			smtp_sess_close(s, "write_error");
			return;
		}
		pending = s->out_len - s->out_off;
		if (s->closing) {
			if (!pending) {
				smtp_sess_close(s, NULL);
				return;
			}
			break;
		}
		if (s->starttls_pending && !pending) {
			s->starttls_pending = 0;
			if (smtp_tls_start(s) < 0) {
				smtp_sess_close(s, "tls_failed");
				return;
			}
			continue;
		}
		if (s->pause_read || pending >= SMTP_OUT_HIGH ||
		    s->in_len == s->in_cap)
			break;
		if (i >= SMTP_READS_PER_RUN) {
			smtp_sess_mark_ready(s);
			break;
		}
		r = smtp_io_read(s);
		if (r == 0)
			break;
		if (r < 0) {
			smtp_sess_close(s, s->st == SMTP_S_DATA ?
			    "eof_in_data" : "eof");
			return;
		}
		smtp_sess_set_timeout(s, s->st == SMTP_S_DATA ?
		    s->srv->cfg.timeout_data_ms :
		    s->srv->cfg.timeout_command_ms);
	}
	smtp_sess_update_events(s);
}

static void refuse_fd(int fd, const char *line)
{
	(void)!write(fd, line, strlen(line));
	close(fd);
}

static void sess_new(struct smtp_loop *l, int fd, struct sockaddr_storage *ss,
    socklen_t sl)
{
	smtp_server_t *srv = l->srv;
	struct smtp_session *s;
	const char *why;
	struct smtp_reply r;
	struct epoll_event ev = { .events = EPOLLIN };
	char ip[INET6_ADDRSTRLEN] = "", line[400];
	unsigned port = 0;
	int one = 1;

	if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		port = ntohs(a->sin6_port);
		if (!strncmp(ip, "::ffff:", 7) && strchr(ip, '.'))
			memmove(ip, ip + 7, strlen(ip + 7) + 1);
	} else if (ss->ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		port = ntohs(a->sin_port);
	}
	if ((why = conn_take(srv, ip))) {
		ar_log(AR_LOG_WARN, "event=refuse client=%s reason=%s", ip,
		    why);
		snprintf(line, sizeof line, "421 4.7.0 %s Too many "
		    "connections, try again later\r\n", srv->hostname);
		refuse_fd(fd, line);
		return;
	}
	s = calloc(1, sizeof *s);
	if (s) {
		s->in_cap = (size_t)srv->cfg.max_command_line + 2;
		if (s->in_cap < SMTP_IN_MIN)
			s->in_cap = SMTP_IN_MIN;
		s->in = malloc(s->in_cap);
	}
	if (!s || !s->in) {
		if (s)
			free(s);
		conn_release(srv, ip);
		snprintf(line, sizeof line, "421 4.3.0 %s Out of memory\r\n",
		    srv->hostname);
		refuse_fd(fd, line);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	s->kind = SMTP_K_SESSION;
	s->srv = srv;
	s->loop = l;
	s->fd = fd;
	s->start_us = ar_mono_us();
	memcpy(&s->addr, ss, sl);
	ar_strlcpy(s->ip, ip, sizeof s->ip);
	snprintf(s->id, sizeof s->id, "%08x%06llx", srv->id_base,
	    (unsigned long long)((atomic_fetch_add(&srv->id_counter, 1) + 1) &
	    0xffffff));
	s->info.id = s->id;
	s->info.client_ip = s->ip;
	s->info.client_port = port;
	s->info.client_addr = (struct sockaddr *)&s->addr;
	s->info.client_addrlen = sl;
	s->info.helo = s->helo;
	s->info.tls_protocol = s->tls_proto;
	s->info.tls_cipher = s->tls_cipher;
	s->info.auth_user = s->auth_user;
	s->st = SMTP_S_INIT;
	s->params.size = -1;
	ev.data.ptr = s;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		conn_release(srv, ip);
		free(s->in);
		free(s);
		close(fd);
		return;
	}
	s->ep_events = EPOLLIN;
	s->next = l->sessions;
	if (l->sessions)
		l->sessions->prev = s;
	l->sessions = s;
	ar_log(AR_LOG_INFO, "session=%s event=connect client=%s port=%u",
	    s->id, s->ip, port);
	smtp_reply_set(&r, 220, "", "%s ESMTP ready", srv->hostname);
	if (srv->cb.connect)
		srv->cb.connect(srv->cb.arg, s, &r);
	if (r.code / 100 != 2) {
		if (r.code / 100 != 4 && r.code / 100 != 5)
			r.code = 554;
		s->closing = 1;
		s->close_reason = "refused";
	} else {
		r.enhanced[0] = '\0';       /* the greeting has no status code */
	}
	smtp_send_reply(s, &r);
	smtp_sess_set_timeout(s, srv->cfg.timeout_command_ms);
	sess_run(s, 0);
}

static void do_accept(struct smtp_loop *lp, struct smtp_listener *l)
{
	smtp_server_t *srv = lp->srv;

	for (int n = 0; n < 64; n++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED && !atomic_load(&srv->stop))
				ar_log(AR_LOG_WARN, "event=accept error=\"%s\"",
				    strerror(errno));
			return;
		}
		if (lp->stopping) {
			close(fd);
			continue;
		}
		sess_new(lp, fd, &ss, sl);
	}
}

/* --- answers from consumer threads -------------------------------------- */

int smtp_session_reply(smtp_token_t *tok, int code, const char *enhanced,
    const char *text)
{
	smtp_server_t *srv;
	struct smtp_loop *l;
	uint64_t one = 1;

	if (!tok)
		return AR_EINVAL;
	srv = tok->s->srv;
	l = tok->s->loop;
	if (code < 200 || code > 599 || code / 100 == 3) {
		code = 451;
		enhanced = "4.3.0";
		text = "Local error in processing";
	}
	smtp_reply_set(&tok->reply, code, enhanced, "%s",
	    text ? text : (code / 100 == 2 ? "Ok" : "Failed"));
	pthread_mutex_lock(&srv->mu);
	tok->next = NULL;
	if (l->replies_tail)
		l->replies_tail->next = tok;
	else
		l->replies = tok;
	l->replies_tail = tok;
	pthread_cond_broadcast(&srv->cv);
	/* Under the lock: once it is released, srv may be freed. */
	(void)!write(l->wakefd, &one, sizeof one);
	pthread_mutex_unlock(&srv->mu);
	return 0;
}

/* Take the queued answers of a loop. */
static smtp_token_t *take_replies(struct smtp_loop *l)
{
	smtp_token_t *t;

	pthread_mutex_lock(&l->srv->mu);
	t = l->replies;
	l->replies = l->replies_tail = NULL;
	pthread_mutex_unlock(&l->srv->mu);
	return t;
}

static void token_done(smtp_server_t *srv, smtp_token_t *t)
{
	struct smtp_session *s = t->s;

	s->token = NULL;
	if (s->dead)
		sess_free(s);
	else
		smtp_data_answer(s, t);
	free(t);
	pthread_mutex_lock(&srv->mu);
	srv->tokens_out--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
}

static void do_wake(struct smtp_loop *l)
{
	uint64_t v;
	smtp_token_t *t, *next;

	(void)!read(l->wakefd, &v, sizeof v);
	for (t = take_replies(l); t; t = next) {
		struct smtp_session *s = t->s;
		int live = !s->dead;

		next = t->next;
		token_done(l->srv, t);
		if (live)
			sess_run(s, 0);
	}
}

/* --- timeouts, shutdown, loop ------------------------------------------- */

static void do_timeouts(struct smtp_loop *l)
{
	int64_t now = ar_mono_us();
	struct smtp_session *s, *next;

	l->next_deadline_us = INT64_MAX;
	for (s = l->sessions; s; s = next) {
		next = s->next;
		if (s->deadline_us > now) {
			if (s->deadline_us < l->next_deadline_us)
				l->next_deadline_us = s->deadline_us;
			continue;
		}
		if (s->closing) {
			smtp_sess_close(s, s->close_reason);
			continue;
		}
		if (s->st == SMTP_S_WAIT_END) {
			smtp_send(s, 451, "4.3.0", "Timeout while storing the "
			    "message, try again later");
		} else {
			if (s->sink)
				smtp_data_abort(s, AR_ETIMEOUT);
			smtp_send(s, 421, "4.4.2", "%s Error: timeout exceeded",
			    l->srv->hostname);
		}
		(void)smtp_io_flush(s);
		smtp_sess_close(s, "timeout");
	}
}

/* Stop accepting (the listeners close once every loop has ended). */
static void begin_shutdown(struct smtp_loop *l)
{
	smtp_server_t *srv = l->srv;
	struct smtp_session *s, *next;

	l->stopping = 1;
	for (int i = 0; i < srv->nlst; i++) {
		/* new connections are refused from now on (the first loop
		 * to get here does it, for all); the descriptor stays open
		 * until every loop has let go of it */
		shutdown(srv->lst[i].fd, SHUT_RDWR);
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, srv->lst[i].fd, NULL);
	}
	for (s = l->sessions; s; s = next) {
		next = s->next;
		if (s->st == SMTP_S_WAIT_END)
			continue;       /* answered, then closed */
		if (s->sink)
			smtp_data_abort(s, AR_EAGAIN);
		if (!s->closing && !s->handshake)
			smtp_send(s, 421, "4.3.2", "%s Service shutting down",
			    srv->hostname);
		s->closing = 1;
		s->close_reason = "shutdown";
		smtp_sess_set_timeout(s, 2000);
		sess_run(s, 0);
	}
}

void smtp_server_stop(smtp_server_t *srv)
{
	uint64_t one = 1;

	atomic_store(&srv->stop, 1);
	for (int i = 0; i < srv->nloops; i++)
		(void)!write(srv->loops[i].wakefd, &one, sizeof one);
}

static int loop_run(struct smtp_loop *l)
{
	smtp_server_t *srv = l->srv;
	struct epoll_event evs[SMTP_MAX_EVENTS];

	for (;;) {
		int n, woke, timeout = -1;

		if (atomic_load(&srv->stop) && !l->stopping)
			begin_shutdown(l);
		if (l->stopping && !l->sessions)
			return 0;
		if (l->ready) {
			timeout = 0;
		} else if (l->next_deadline_us != INT64_MAX) {
			int64_t d = l->next_deadline_us - ar_mono_us();
			timeout = d <= 0 ? 0 : (int)((d + 999) / 1000);
		}
		n = epoll_wait(l->epfd, evs, SMTP_MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			ar_log(AR_LOG_ERR, "smtp: epoll_wait: %s",
			    strerror(errno));
			return AR_EIO;
		}
		woke = 0;
		for (int i = 0; i < n; i++) {
			int kind = *(int *)evs[i].data.ptr;

			if (kind == SMTP_K_LISTENER)
				do_accept(l, evs[i].data.ptr);
			else if (kind == SMTP_K_WAKE)
				woke = 1;       /* after the batch: it may free */
			else
				sess_run(evs[i].data.ptr, evs[i].events);
		}
		if (woke)
			do_wake(l);
		/* Sessions that stopped for fairness (or TLS-buffered input). */
		if (l->ready) {
			struct smtp_session *s, *list = l->ready;

			l->ready = NULL;
			while (list) {
				s = list;
				list = s->ready_next;
				s->in_ready = 0;
				sess_run(s, 0);
			}
		}
		if (ar_mono_us() >= l->next_deadline_us)
			do_timeouts(l);
	}
}

static void *loop_main(void *arg)
{
	struct smtp_loop *l = arg;

	pthread_setname_np(pthread_self(), "ar-smtp");
	l->rc = loop_run(l);
	if (l->rc)              /* the others stop too */
		smtp_server_stop(l->srv);
	return NULL;
}

int smtp_server_run(smtp_server_t *srv)
{
	int started = 1, rc;

	for (int i = 1; i < srv->nloops; i++, started++)
		if (pthread_create(&srv->loops[i].thread, NULL, loop_main,
		    &srv->loops[i])) {
			ar_log(AR_LOG_WARN, "smtp: %d of %d event loops "
			    "started: %s", started, srv->nloops,
			    strerror(errno));
			break;
		}
	rc = loop_run(&srv->loops[0]);
	if (rc)
		smtp_server_stop(srv);
	for (int i = 1; i < started; i++) {
		pthread_join(srv->loops[i].thread, NULL);
		if (!rc && srv->loops[i].rc)
			rc = srv->loops[i].rc;
	}
	for (int i = 0; i < srv->nlst; i++)
		close(srv->lst[i].fd);
	srv->nlst = 0;
	if (rc)
		srv_err(srv, "smtp: an event loop failed (see the log)");
	return rc;
}

void smtp_server_free(smtp_server_t *srv)
{
	if (!srv)
		return;
	for (int i = 0; i < srv->nloops; i++)
		while (srv->loops[i].sessions)
			smtp_sess_close(srv->loops[i].sessions, "shutdown");
	for (int i = 0; i < srv->nlst; i++)
		close(srv->lst[i].fd);
	/* Wait for the consumers to answer every outstanding token. */
	pthread_mutex_lock(&srv->mu);
	for (;;) {
		smtp_token_t *t = NULL, *next;

		for (int i = 0; i < srv->nloops && !t; i++) {
			t = srv->loops[i].replies;
			srv->loops[i].replies = srv->loops[i].replies_tail =
			    NULL;
		}
		if (t) {
			pthread_mutex_unlock(&srv->mu);
			for (; t; t = next) {
				next = t->next;
				token_done(srv, t);
			}
			pthread_mutex_lock(&srv->mu);
			continue;
		}
		if (!srv->tokens_out)
			break;
		pthread_cond_wait(&srv->cv, &srv->mu);
	}
	pthread_mutex_unlock(&srv->mu);
	for (int i = 0; i < srv->nloops; i++) {
		if (srv->loops[i].epfd >= 0)
			close(srv->loops[i].epfd);
		if (srv->loops[i].wakefd >= 0)
			close(srv->loops[i].wakefd);
	}
	free(srv->loops);
	free(srv->ips);
	smtp_tls_ctx_free(srv);
	pthread_mutex_destroy(&srv->mu);
	pthread_cond_destroy(&srv->cv);
	free(srv);
}
