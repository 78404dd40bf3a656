/*
 * server.c - see server.h.
 *
 * Each connection reads exactly one frame at a time: the 4-byte length,
 * then (if the length is acceptable) exactly that many bytes, never more,
 * so pipelined requests stay in the socket until their turn.  While a
 * response is being written the connection is not read.
 */
#include "keysvc/server.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "keysvc/proto.h"

struct conn {
	int fd;
	pid_t pid;
	uid_t uid;
	unsigned char hdr[KSP_HDR_LEN];
	size_t hdr_got;
	unsigned char *body;
	size_t body_len, body_got;
	unsigned char out[KSP_HDR_LEN + KSP_RESP_MAX];
	size_t out_len, out_off;
	int close_after;        /* close once out is flushed */
	int64_t last_us;        /* last activity */
	int64_t frame_us;       /* first byte of the current frame, or 0 */
};

struct server {
	keystore_t *ks;
	const struct server_opts *opts;
	struct conn *conns;
	int nconns;
};

static const char *op_name(unsigned op)
{
	static const char *names[] = { "unknown", "ping", "pubkey", "create",
	    "rotate", "destroy", "info", "derive", "sign", "sign_many" };
	return op < AR_ARRAY_LEN(names) ? names[op] : "unknown";
}

static void conn_free_body(struct conn *c)
{
	if (c->body) {
		sodium_memzero(c->body, c->body_len);
		free(c->body);
	}
	c->body = NULL;
	c->body_len = c->body_got = 0;
	c->hdr_got = 0;
	c->frame_us = 0;
}

static void conn_close(struct server *s, int i)
{
	struct conn *c = &s->conns[i];
	conn_free_body(c);
	sodium_memzero(c->out, sizeof c->out);
	close(c->fd);
	s->conns[i] = s->conns[s->nconns - 1];
	s->nconns--;
}

/* Queue a response: status, then len bytes of result when status is 0. */
static void respond(struct conn *c, int status, const void *res, size_t len)
{
	if (status != 0 || len > KSP_RESP_MAX - 4)
		len = 0;
	ar_put_u32(c->out, (uint32_t)(4 + len));
	ar_put_u32(c->out + 4, (uint32_t)(int32_t)status);
	if (len)
		memcpy(c->out + 8, res, len);
	c->out_len = 8 + len;
	c->out_off = 0;
}

static void refuse(struct conn *c, int status, const char *why, size_t len)
{
	ar_log(AR_LOG_WARN, "op=refuse peer_pid=%d peer_uid=%u frame_len=%zu "
	    "reason=%s status=%d", (int)c->pid, (unsigned)c->uid, len, why,
	    status);
	respond(c, status, NULL, 0);
}

/* --- requests ---------------------------------------------------------- */

static void log_op(const struct conn *c, unsigned op, const uint8_t *tenant,
    uint32_t version, const char *extra, int rc, int64_t t0)
{
	char hex[2 * KEYSVC_TENANT_LEN + 1];
	enum ar_log_level lvl = rc == 0 ? AR_LOG_INFO : AR_LOG_WARN;
	ar_log(lvl, "op=%s tenant=%s version=%u%s peer_pid=%d peer_uid=%u "
	    "status=%s rc=%d dur_us=%lld", op_name(op),
	    tenant ? ar_hex(tenant, KEYSVC_TENANT_LEN, hex) : "-", version,
	    extra ? extra : "", (int)c->pid, (unsigned)c->uid,
	    rc == 0 ? "ok" : "error", rc, (long long)(ar_mono_us() - t0));
}

static void handle(struct server *s, struct conn *c)
{
	const unsigned char *b = c->body, *p;
	size_t len = c->body_len, n;
	unsigned op;
	uint8_t res[KSP_RESP_MAX];
	uint32_t version = 0;
	int rc, destroyed;
	char extra[64];
	int64_t t0 = ar_mono_us();

	if (len < KSP_REQ_FIXED) {
		refuse(c, AR_EPROTO, "short", len);
		return;
	}
	if (b[0] != KSP_VERSION) {
		refuse(c, AR_EVERSION, "version", len);
		return;
	}
	op = b[1];
	p = b + KSP_REQ_FIXED;
	n = len - KSP_REQ_FIXED;
	extra[0] = '\0';

	switch (op) {
	case KSP_PING:
	case KSP_PUBKEY:
		if (n != 0)
			goto malformed;
		if (op == KSP_PUBKEY)
			keystore_public_key(s->ks, res);
		ar_log(AR_LOG_DEBUG, "op=%s peer_pid=%d peer_uid=%u status=ok",
		    op_name(op), (int)c->pid, (unsigned)c->uid);
		respond(c, 0, res, op == KSP_PUBKEY ? KEYSVC_PK_LEN : 0);
		return;
	case KSP_CREATE:
	case KSP_ROTATE:
	case KSP_DESTROY:
	case KSP_INFO:
		if (n != KEYSVC_TENANT_LEN)
			goto malformed;
		if (op == KSP_CREATE) {
			rc = keystore_tenant_create(s->ks, p);
			version = 1;
			ar_put_u32(res, version);
			n = 4;
		} else if (op == KSP_ROTATE) {
			rc = keystore_tenant_rotate(s->ks, p, &version);
			ar_put_u32(res, version);
			n = 4;
		} else if (op == KSP_DESTROY) {
			rc = keystore_tenant_destroy(s->ks, p);
			n = 0;
		} else {
			rc = keystore_tenant_info(s->ks, p, &version,
			    &destroyed);
			ar_put_u32(res, version);
			res[4] = (uint8_t)(destroyed != 0);
			n = 5;
		}
		log_op(c, op, p, version, NULL, rc, t0);
		respond(c, rc, res, n);
		return;
	case KSP_DERIVE:
		if (n < KEYSVC_TENANT_LEN + 5 ||
		    n != KEYSVC_TENANT_LEN + 5u + p[KEYSVC_TENANT_LEN + 4])
			goto malformed;
		version = ar_get_u32(p + KEYSVC_TENANT_LEN);
		n = p[KEYSVC_TENANT_LEN + 4];
		if (!ksp_context_ok(p + KEYSVC_TENANT_LEN + 5, n)) {
			rc = AR_EINVAL;
		} else {
			snprintf(extra, sizeof extra, " ctx=%.*s", (int)n,
			    (const char *)p + KEYSVC_TENANT_LEN + 5);
			rc = keystore_derive(s->ks, p, version,
			    p + KEYSVC_TENANT_LEN + 5, n, res);
		}
		log_op(c, op, p, version, extra, rc, t0);
		respond(c, rc, res, KEYSVC_KEY_LEN);
		sodium_memzero(res, sizeof res);
		return;
	case KSP_SIGN:
		if (n < 4 || n - 4 != ar_get_u32(p))
			goto malformed;
		rc = keystore_sign(s->ks, p + 4, n - 4, res);
		snprintf(extra, sizeof extra, " size=%zu", n - 4);
		log_op(c, op, NULL, 0, extra, rc, t0);
		respond(c, rc, res, KEYSVC_SIG_LEN);
		return;
	case KSP_SIGN_MANY: {
		size_t k, total = 0;
		if (n < 2 || (k = ar_get_u16(p)) < 1 ||
		    k > KSP_SIGN_BATCH_MAX)
			goto malformed;
		p += 2;
		n -= 2;
		/* every length checked before anything is signed */
		for (size_t i = 0, off = 0; i < k; i++) {
			size_t m;
			if (n - off < 4 || (m = ar_get_u32(p + off)) >
			    n - off - 4)
				goto malformed;
			off += 4 + m;
			total += m;
			if (i == k - 1 && off != n)
				goto malformed;
		}
		rc = 0;
		for (size_t i = 0, off = 0; i < k && rc == 0; i++) {
			size_t m = ar_get_u32(p + off);
			rc = keystore_sign(s->ks, p + off + 4, m,
			    res + i * KEYSVC_SIG_LEN);
			off += 4 + m;
		}
		snprintf(extra, sizeof extra, " count=%zu size=%zu", k, total);
		log_op(c, op, NULL, 0, extra, rc, t0);
		respond(c, rc, res, k * KEYSVC_SIG_LEN);
		return;
	}
	default:
		refuse(c, AR_EPROTO, "unknown_op", len);
		return;
	}
malformed:
	refuse(c, AR_EPROTO, op == KSP_PING ? "ping_fields" :
	    op == KSP_PUBKEY ? "pubkey_fields" : "field_length", len);
}

/* --- I/O --------------------------------------------------------------- */

/* Write what we can of the response.  -1: close the connection. */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->out_off += (size_t)w;
	}
	c->out_len = c->out_off = 0;
	return c->close_after ? -1 : 0;
}

/* Read toward the current frame.  -1: close the connection. */
static int conn_read(struct server *s, struct conn *c)
{
	int frames = 0;

	for (;;) {
		unsigned char *dst;
		size_t want;
		ssize_t r;

		if (c->hdr_got < KSP_HDR_LEN) {
			dst = c->hdr + c->hdr_got;
			want = KSP_HDR_LEN - c->hdr_got;
		} else {
			dst = c->body + c->body_got;
			want = c->body_len - c->body_got;
		}
		r = want ? recv(c->fd, dst, want, MSG_DONTWAIT) : 0;
		if (want && r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			ar_log(AR_LOG_INFO, "op=conn peer_pid=%d peer_uid=%u "
			    "status=error errno=%d", (int)c->pid,
			    (unsigned)c->uid, errno);
			return -1;
		}
		if (want && r == 0) {
			if (c->hdr_got == 0)
				return -1;          /* clean close */
			refuse(c, AR_ETRUNC, "truncated",
			    c->hdr_got < KSP_HDR_LEN ? c->hdr_got :
			    c->body_len);
			c->close_after = 1;
			conn_free_body(c);
			return conn_flush(c);
		}
		c->last_us = ar_mono_us();
		if (c->frame_us == 0)
			c->frame_us = c->last_us;
		if (c->hdr_got < KSP_HDR_LEN) {
			c->hdr_got += (size_t)r;
			if (c->hdr_got < KSP_HDR_LEN)
				continue;
			c->body_len = ar_get_u32(c->hdr);
			if (c->body_len > KSP_REQ_MAX) {
				refuse(c, AR_ETOOBIG, "oversized",
				    c->body_len);
				c->close_after = 1;
				conn_free_body(c);
				return conn_flush(c);
			}
			if (c->body_len > 0) {
				c->body = malloc(c->body_len);
				if (!c->body) {
					refuse(c, AR_ENOMEM, "no_memory",
					    c->body_len);
					c->close_after = 1;
					c->body_len = 0;
					return conn_flush(c);
				}
				continue;
			}
		} else {
			c->body_got += (size_t)r;
			if (c->body_got < c->body_len)
				continue;
		}
		/* a whole frame */
		handle(s, c);
		conn_free_body(c);
		if (conn_flush(c) < 0)
			return -1;
		if (c->out_len)
			return 0;               /* wait for POLLOUT */
		if (++frames >= 16)
			return 0;               /* let the others have a turn */
	}
}

static void accept_all(struct server *s, int lfd)
{
	while (s->nconns < s->opts->max_conns) {
		struct ucred cred;
		socklen_t clen = sizeof cred;
		struct conn *c;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				ar_log(AR_LOG_WARN, "op=accept status=error "
				    "errno=%d", errno);
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0
		    || clen != sizeof cred) {
			ar_log(AR_LOG_WARN, "op=accept status=refused "
			    "reason=no_peercred errno=%d", errno);
			close(fd);
			continue;
		}
		c = &s->conns[s->nconns];
		memset(c, 0, sizeof *c);
		c->fd = fd;
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->last_us = ar_mono_us();
		if (cred.uid != geteuid() && cred.uid != 0) {
			refuse(c, AR_EPERM, "peer_uid", 0);
			(void)conn_flush(c);
			close(fd);
			continue;
		}
		s->nconns++;
	}
}

int server_run(keystore_t *ks, int lfd, const struct server_opts *opts,
    const sigset_t *waitmask, volatile sig_atomic_t *stop)
{
	struct server s = { .ks = ks, .opts = opts };
	struct pollfd *pfd;
	int rc = 0;

	s.conns = calloc((size_t)opts->max_conns, sizeof *s.conns);
	pfd = calloc((size_t)opts->max_conns + 1, sizeof *pfd);
	if (!s.conns || !pfd) {
		free(s.conns);
		free(pfd);
		return AR_ENOMEM;
	}
	while (!*stop) {
		int64_t now = ar_mono_us(), wait_us = 60 * 1000000LL;
		struct timespec ts;
		int n, nc = s.nconns;

		/* expire idle and slow connections, find the next deadline */
		for (int i = 0; i < s.nconns; i++) {
			struct conn *c = &s.conns[i];
			int64_t dl = c->last_us + opts->idle_timeout_ms * 1000LL;
			if (c->frame_us) {
				int64_t fdl = c->frame_us +
				    opts->frame_timeout_ms * 1000LL;
				if (fdl < dl)
					dl = fdl;
			}
			if (dl <= now) {
				ar_log(AR_LOG_INFO, "op=conn peer_pid=%d "
				    "peer_uid=%u status=closed reason=%s",
				    (int)c->pid, (unsigned)c->uid,
				    c->frame_us ? "frame_timeout" : "idle");
				conn_close(&s, i--);
				continue;
			}
			if (dl - now < wait_us)
				wait_us = dl - now;
		}
		nc = s.nconns;
		pfd[0].fd = lfd;
		pfd[0].events = s.nconns < opts->max_conns ? POLLIN : 0;
		pfd[0].revents = 0;
		for (int i = 0; i < nc; i++) {
			pfd[i + 1].fd = s.conns[i].fd;
			pfd[i + 1].events = s.conns[i].out_len ? POLLOUT
			    : POLLIN;
			pfd[i + 1].revents = 0;
		}
		ts.tv_sec = (time_t)(wait_us / 1000000);
		ts.tv_nsec = (long)(wait_us % 1000000) * 1000 + 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		n = ppoll(pfd, (nfds_t)nc + 1, &ts, waitmask);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ar_log(AR_LOG_ERR, "op=poll status=error errno=%d",
			    errno);
			rc = AR_EIO;
			break;
		}
		/* walk backwards so conn_close's swap-with-last is safe */
		for (int i = nc - 1; i >= 0; i--) {
			struct conn *c = &s.conns[i];
			short re = pfd[i + 1].revents;
			int r = 0;
			if (!re)
				continue;
			if (c->out_len)
				r = (re & (POLLERR | POLLHUP | POLLNVAL)) ? -1
				    : conn_flush(c);
			if (r == 0 && !c->out_len)
				r = conn_read(&s, c);
			if (r < 0)
				conn_close(&s, i);
		}
		if (pfd[0].revents & POLLIN)
			accept_all(&s, lfd);
	}
	while (s.nconns > 0)
		conn_close(&s, s.nconns - 1);
	free(s.conns);
	free(pfd);
	return rc;
}
