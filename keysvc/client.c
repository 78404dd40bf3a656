/*
 * client.c - keysvc.h: the client of archive-keysvc.
 *
 * One unix-socket connection per handle, opened lazily and dropped after
 * any transport failure (the next call reconnects).  Each request has one
 * deadline (the handle's timeout) covering connect, send and receive.
 * Derived keys are cached in sodium_malloc'd (locked, guarded) memory for
 * CACHE_TTL_US, so a tenant destroyed by another process stops deriving
 * here within that time; keysvc_tenant_destroy() drops them at once.
 *
 * Signatures asked for by several threads at once share round trips, as a
 * database groups commits: a thread that finds no request in flight sends
 * every queued message in one KSP_SIGN_MANY (one KSP_SIGN when alone),
 * and the threads that queued meanwhile go in the next one.
 */
#include "keysvc/keysvc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "keysvc/proto.h"

#define CACHE_SLOTS  64
#define CACHE_TTL_US (300 * 1000000LL)
#define DEFAULT_TIMEOUT_MS 5000

struct cache_entry {
	uint8_t key[KEYSVC_KEY_LEN];
	uint8_t tenant[KEYSVC_TENANT_LEN];
	uint32_t version;
	uint8_t used;
	uint8_t ctxlen;
	char ctx[KEYSVC_CONTEXT_MAX];
	int64_t born_us;
	uint64_t tick;
};

struct sign_req {                /* one keysvc_sign() call, queued */
	const void *msg;
	size_t len;
	uint8_t *sig;
	int rc, done;
	struct sign_req *next;
};

struct keysvc {
	pthread_mutex_t mu;          /* the connection: one request at a time */
	pthread_mutex_t cache_mu;    /* cache, tick, pk: never held over a
	                              * request, so a cached key does not wait
	                              * for another thread's round trip */
	pthread_mutex_t sign_mu;     /* the signing queue */
	pthread_cond_t sign_cv;
	struct sign_req *sign_head, *sign_tail;
	int signing;                 /* a thread is sending a group */
	struct sockaddr_un sa;
	int timeout_ms;
	int fd;
	struct cache_entry *cache;   /* CACHE_SLOTS, sodium_malloc */
	uint64_t tick;
	int have_pk;
	uint8_t pk[KEYSVC_PK_LEN];
	char errmsg[256];
};

/* A transport failure: why, and whether a retry on a new connection may
 * help (the peer closed a connection we had reused). */
struct xfer_err {
	const char *why;
	int err;
	int peer_closed;
};

static void set_errmsg(keysvc_t *ks, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_errmsg(keysvc_t *ks, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ks->errmsg, sizeof ks->errmsg, fmt, ap);
	va_end(ap);
}

static void drop_conn(keysvc_t *ks)
{
	if (ks->fd >= 0)
		close(ks->fd);
	ks->fd = -1;
}

/* Milliseconds left before the deadline (>= 0). */
static int ms_left(int64_t deadline_us)
{
	int64_t left = deadline_us - ar_mono_us();
	if (left <= 0)
		return 0;
	return (int)((left + 999) / 1000);
}

/* Wait for events on fd until the deadline.  0, or -1 with x filled. */
static int wait_fd(int fd, short events, int64_t deadline_us,
    struct xfer_err *x)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int ms = ms_left(deadline_us), n;
		if (ms == 0) {
			x->why = "timed out";
			x->err = 0;
			return -1;
		}
		n = poll(&p, 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			x->why = "poll failed";
			x->err = errno;
			return -1;
		}
		if (n > 0)
			return 0;
	}
}

static int do_connect(keysvc_t *ks, int64_t deadline_us, struct xfer_err *x)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		x->why = "socket failed";
		x->err = errno;
		return -1;
	}
	for (;;) {
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (connect(fd, (struct sockaddr *)&ks->sa, sizeof ks->sa) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {          /* backlog full: retry */
			struct timespec ts = { 0, 5 * 1000 * 1000 };
			if (ms_left(deadline_us) == 0) {
				x->why = "timed out connecting";
				x->err = 0;
				close(fd);
				return -1;
			}
			nanosleep(&ts, NULL);
			continue;
		}
		if (errno != EINPROGRESS) {
			x->why = "cannot connect";
			x->err = errno;
			close(fd);
			return -1;
		}
		if (wait_fd(fd, POLLOUT, deadline_us, x) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 ||
		    soerr != 0) {
			if (!x->why) {
				x->why = "cannot connect";
				x->err = soerr ? soerr : errno;
			}
			close(fd);
			return -1;
		}
		break;
	}
	ks->fd = fd;
	return 0;
}

/* A connection the server closed while idle reads as EOF: find out
 * before reusing it, without blocking. */
static int conn_stale(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) != 0;
}

static int send_all(int fd, const unsigned char *buf, size_t len,
    int64_t deadline_us, struct xfer_err *x)
{
	while (len > 0) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (wait_fd(fd, POLLOUT, deadline_us, x) < 0)
					return -1;
				continue;
			}
			x->why = "send failed";
			x->err = errno;
			x->peer_closed = errno == EPIPE || errno == ECONNRESET;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, unsigned char *buf, size_t len,
    int64_t deadline_us, struct xfer_err *x, int first)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (wait_fd(fd, POLLIN, deadline_us, x) < 0)
					return -1;
				continue;
			}
			x->why = "receive failed";
			x->err = errno;
			x->peer_closed = first && got == 0 &&
			    errno == ECONNRESET;
			return -1;
		}
		if (r == 0) {
			x->why = "connection closed by the service";
			x->err = 0;
			x->peer_closed = first && got == 0;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/*
 * One request/response.  fields (small) and tail (the message of sign)
 * follow the version and op.  On status 0 the result must be exactly
 * reslen bytes.  Returns the service's status, or AR_EKEYSVC.
 */
static int rpc(keysvc_t *ks, unsigned op, const void *fields, size_t flen,
    const void *tail, size_t tlen, int idempotent, uint8_t *res,
    size_t reslen)
{
	unsigned char head[KSP_HDR_LEN + KSP_REQ_FIXED + 64];
	unsigned char rhead[KSP_HDR_LEN], rbody[KSP_RESP_MAX];
	int64_t deadline = ar_mono_us() + ks->timeout_ms * 1000LL;
	struct xfer_err x;
	uint32_t rlen;
	int32_t status;
	int attempt, reused;

	if (flen > 64 || tlen > KSP_REQ_MAX - KSP_REQ_FIXED - flen)
		return AR_ETOOBIG;
	ar_put_u32(head, (uint32_t)(KSP_REQ_FIXED + flen + tlen));
	head[4] = KSP_VERSION;
	head[5] = (unsigned char)op;
	if (flen)
		memcpy(head + 6, fields, flen);

	for (attempt = 0; ; attempt++) {
		memset(&x, 0, sizeof x);
		if (ks->fd >= 0 && conn_stale(ks->fd))
			drop_conn(ks);
		reused = ks->fd >= 0;
		if (!reused && do_connect(ks, deadline, &x) < 0)
			goto fail;
		if (send_all(ks->fd, head, KSP_HDR_LEN + KSP_REQ_FIXED + flen,
		    deadline, &x) < 0 ||
		    (tlen && send_all(ks->fd, tail, tlen, deadline, &x) < 0) ||
		    recv_all(ks->fd, rhead, sizeof rhead, deadline, &x, 1) < 0)
			goto fail;
		rlen = ar_get_u32(rhead);
		if (rlen < 4 || rlen > sizeof rbody) {
			x.why = "malformed response";
			goto fail;
		}
		if (recv_all(ks->fd, rbody, rlen, deadline, &x, 0) < 0)
			goto fail;
		status = (int32_t)ar_get_u32(rbody);
		if (status > 0 || status < -1000 ||
		    (status == 0 && rlen != 4 + reslen) ||
		    (status < 0 && rlen != 4)) {
			x.why = "malformed response";
			sodium_memzero(rbody, sizeof rbody);
			goto fail;
		}
		if (status == 0 && reslen)
			memcpy(res, rbody + 4, reslen);
		sodium_memzero(rbody, sizeof rbody);
		if (status != 0) {
			set_errmsg(ks, "key service: %s", ar_strerror(status));
			/* an oversized request closes the connection */
			if (status == AR_ETOOBIG)
				drop_conn(ks);
		}
		return status;
fail:
		drop_conn(ks);
		if (attempt == 0 && reused && idempotent && x.peer_closed &&
		    ms_left(deadline) > 0)
			continue;
		if (!x.why)
			x.why = "request failed";
		if (x.err)
			set_errmsg(ks, "key service unavailable: %s: %s",
			    x.why, strerror(x.err));
		else
			set_errmsg(ks, "key service unavailable: %s", x.why);
		return AR_EKEYSVC;
	}
}

/* --- handle ------------------------------------------------------------ */

int keysvc_open(keysvc_t **out, const char *socket_path, int timeout_ms)
{
	keysvc_t *ks;

	*out = NULL;
	if (!socket_path || timeout_ms < 0)
		return AR_EINVAL;
	if (sodium_init() < 0)
		return AR_ENOMEM;
	ks = calloc(1, sizeof *ks);
	if (!ks)
		return AR_ENOMEM;
	ks->sa.sun_family = AF_UNIX;
	if (strlen(socket_path) == 0 ||
	    strlen(socket_path) >= sizeof ks->sa.sun_path) {
		free(ks);
		return AR_EINVAL;
	}
	memcpy(ks->sa.sun_path, socket_path, strlen(socket_path) + 1);
	ks->cache = sodium_malloc(CACHE_SLOTS * sizeof *ks->cache);
	if (!ks->cache) {
		free(ks);
		return AR_ENOMEM;
	}
	memset(ks->cache, 0, CACHE_SLOTS * sizeof *ks->cache);
	if (pthread_mutex_init(&ks->mu, NULL) != 0) {
		sodium_free(ks->cache);
		free(ks);
		return AR_ENOMEM;
	}
	pthread_mutex_init(&ks->cache_mu, NULL);
	pthread_mutex_init(&ks->sign_mu, NULL);
	pthread_cond_init(&ks->sign_cv, NULL);
	ks->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
	ks->fd = -1;
	*out = ks;
	return 0;
}

void keysvc_close(keysvc_t *ks)
{
	if (!ks)
		return;
	drop_conn(ks);
	sodium_free(ks->cache);     /* wipes */
	sodium_memzero(ks->pk, sizeof ks->pk);
	pthread_mutex_destroy(&ks->mu);
	pthread_mutex_destroy(&ks->cache_mu);
	pthread_mutex_destroy(&ks->sign_mu);
	pthread_cond_destroy(&ks->sign_cv);
	free(ks);
}

const char *keysvc_errmsg(const keysvc_t *ks)
{
	return ks->errmsg;
}

int keysvc_ping(keysvc_t *ks)
{
	int rc;
	pthread_mutex_lock(&ks->mu);
	rc = rpc(ks, KSP_PING, NULL, 0, NULL, 0, 1, NULL, 0);
	pthread_mutex_unlock(&ks->mu);
	return rc;
}

/* --- tenants ----------------------------------------------------------- */

static void cache_drop_tenant(keysvc_t *ks, const uint8_t *tenant)
{
	for (int i = 0; i < CACHE_SLOTS; i++)
		if (ks->cache[i].used && sodium_memcmp(ks->cache[i].tenant,
		    tenant, KEYSVC_TENANT_LEN) == 0)
			sodium_memzero(&ks->cache[i], sizeof ks->cache[i]);
}

int keysvc_tenant_create(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN])
{
	uint8_t v[4];
	int rc;
	pthread_mutex_lock(&ks->mu);
	rc = rpc(ks, KSP_CREATE, tenant, KEYSVC_TENANT_LEN, NULL, 0, 0, v, 4);
	pthread_mutex_unlock(&ks->mu);
	return rc;
}

int keysvc_tenant_rotate(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN],
    uint32_t *new_version)
{
	uint8_t v[4];
	int rc;
	pthread_mutex_lock(&ks->mu);
	rc = rpc(ks, KSP_ROTATE, tenant, KEYSVC_TENANT_LEN, NULL, 0, 0, v, 4);
	pthread_mutex_unlock(&ks->mu);
	if (rc == 0 && new_version)
		*new_version = ar_get_u32(v);
	return rc;
}

void keysvc_cache_purge(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN])
{
	pthread_mutex_lock(&ks->cache_mu);
	cache_drop_tenant(ks, tenant);
	pthread_mutex_unlock(&ks->cache_mu);
}

int keysvc_tenant_destroy(keysvc_t *ks,
    const uint8_t tenant[KEYSVC_TENANT_LEN])
{
	int rc;
	keysvc_cache_purge(ks, tenant);
	pthread_mutex_lock(&ks->mu);
	rc = rpc(ks, KSP_DESTROY, tenant, KEYSVC_TENANT_LEN, NULL, 0, 1, NULL,
	    0);
	pthread_mutex_unlock(&ks->mu);
	return rc;
}

int keysvc_tenant_info(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN],
    uint32_t *current_version, int *destroyed)
{
	uint8_t r[5];
	int rc;
	pthread_mutex_lock(&ks->mu);
	rc = rpc(ks, KSP_INFO, tenant, KEYSVC_TENANT_LEN, NULL, 0, 1, r, 5);
	pthread_mutex_unlock(&ks->mu);
	if (rc == 0) {
		if (current_version)
			*current_version = ar_get_u32(r);
		if (destroyed)
			*destroyed = r[4] != 0;
	}
	return rc;
}

/* --- derive ------------------------------------------------------------ */

static struct cache_entry *cache_find(keysvc_t *ks, const uint8_t *tenant,
    uint32_t version, const char *ctx, size_t ctxlen)
{
	int64_t now = ar_mono_us();
	for (int i = 0; i < CACHE_SLOTS; i++) {
		struct cache_entry *e = &ks->cache[i];
		if (!e->used || e->version != version || e->ctxlen != ctxlen ||
		    memcmp(e->tenant, tenant, KEYSVC_TENANT_LEN) != 0 ||
		    memcmp(e->ctx, ctx, ctxlen) != 0)
			continue;
		if (now - e->born_us > CACHE_TTL_US) {
			sodium_memzero(e, sizeof *e);
			return NULL;
		}
		e->tick = ++ks->tick;
		return e;
	}
	return NULL;
}

static void cache_put(keysvc_t *ks, const uint8_t *tenant, uint32_t version,
    const char *ctx, size_t ctxlen, const uint8_t key[KEYSVC_KEY_LEN])
{
	struct cache_entry *e = &ks->cache[0];
	for (int i = 0; i < CACHE_SLOTS; i++) {
		if (!ks->cache[i].used) {
			e = &ks->cache[i];
			break;
		}
		if (ks->cache[i].tick < e->tick)
			e = &ks->cache[i];
	}
	sodium_memzero(e, sizeof *e);
	memcpy(e->key, key, KEYSVC_KEY_LEN);
	memcpy(e->tenant, tenant, KEYSVC_TENANT_LEN);
	e->version = version;
	e->ctxlen = (uint8_t)ctxlen;
	memcpy(e->ctx, ctx, ctxlen);
	e->born_us = ar_mono_us();
	e->tick = ++ks->tick;
	e->used = 1;
}

int keysvc_derive(keysvc_t *ks, const uint8_t tenant[KEYSVC_TENANT_LEN],
    uint32_t version, const char *context, uint8_t key[KEYSVC_KEY_LEN])
{
	unsigned char f[KEYSVC_TENANT_LEN + 5 + KEYSVC_CONTEXT_MAX];
	struct cache_entry *e;
	size_t n;
	int rc;

	if (!context)
		return AR_EINVAL;
	n = strnlen(context, KEYSVC_CONTEXT_MAX + 1);
	if (!ksp_context_ok((const unsigned char *)context, n)) {
		set_errmsg(ks, "keysvc: context must be 1..%d printable "
		    "characters", KEYSVC_CONTEXT_MAX);
		return AR_EINVAL;
	}
	pthread_mutex_lock(&ks->cache_mu);
	e = cache_find(ks, tenant, version, context, n);
	if (e)
		memcpy(key, e->key, KEYSVC_KEY_LEN);
	pthread_mutex_unlock(&ks->cache_mu);
	if (e)
		return 0;
	memcpy(f, tenant, KEYSVC_TENANT_LEN);
	ar_put_u32(f + KEYSVC_TENANT_LEN, version);
	f[KEYSVC_TENANT_LEN + 4] = (unsigned char)n;
	memcpy(f + KEYSVC_TENANT_LEN + 5, context, n);
	pthread_mutex_lock(&ks->mu);
	rc = rpc(ks, KSP_DERIVE, f, KEYSVC_TENANT_LEN + 5 + n, NULL, 0, 1, key,
	    KEYSVC_KEY_LEN);
	pthread_mutex_lock(&ks->cache_mu);
	if (rc == 0)
		cache_put(ks, tenant, version, context, n, key);
	else if (rc == AR_ESHREDDED)
		cache_drop_tenant(ks, tenant);
	pthread_mutex_unlock(&ks->cache_mu);
	pthread_mutex_unlock(&ks->mu);
	return rc;
}

/* --- signing ----------------------------------------------------------- */

/* Sign the n queued requests from r on (one round trip); sets each rc. */
static void sign_group(keysvc_t *ks, struct sign_req *r, size_t n)
{
	uint8_t f[4], sigs[KSP_SIGN_BATCH_MAX * KEYSVC_SIG_LEN];
	unsigned char *body = NULL;
	size_t blen = 0, i;
	struct sign_req *q;
	int rc;

	if (n == 1) {
		ar_put_u32(f, (uint32_t)r->len);
		pthread_mutex_lock(&ks->mu);
		r->rc = rpc(ks, KSP_SIGN, f, 4, r->msg, r->len, 1, r->sig,
		    KEYSVC_SIG_LEN);
		pthread_mutex_unlock(&ks->mu);
		return;
	}
	for (q = r, i = 0; i < n; q = q->next, i++)
		blen += 4 + q->len;
	if (!(body = malloc(blen))) {
		rc = AR_ENOMEM;
	} else {
		blen = 0;
		for (q = r, i = 0; i < n; q = q->next, i++) {
			ar_put_u32(body + blen, (uint32_t)q->len);
			if (q->len)
				memcpy(body + blen + 4, q->msg, q->len);
			blen += 4 + q->len;
		}
		ar_put_u16(f, (uint16_t)n);
		pthread_mutex_lock(&ks->mu);
		rc = rpc(ks, KSP_SIGN_MANY, f, 2, body, blen, 1, sigs,
		    n * KEYSVC_SIG_LEN);
		pthread_mutex_unlock(&ks->mu);
		free(body);
	}
	for (q = r, i = 0; i < n; q = q->next, i++) {
		q->rc = rc;
		if (rc == 0)
			memcpy(q->sig, sigs + i * KEYSVC_SIG_LEN,
			    KEYSVC_SIG_LEN);
	}
}

/* Queue the n requests r[0..n-1] and serve the queue until the last of
 * them is done.  Groups leave the queue in order, so by then every one of
 * them is done. */
static void sign_queue(keysvc_t *ks, struct sign_req *r, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		r[i].next = &r[i + 1];
	r[n - 1].next = NULL;
	pthread_mutex_lock(&ks->sign_mu);
	if (ks->sign_tail)
		ks->sign_tail->next = r;
	else
		ks->sign_head = r;
	ks->sign_tail = &r[n - 1];
	while (!r[n - 1].done) {
		struct sign_req *first, *last, *q;
		size_t k = 0, bytes = 0;

		if (ks->signing) {
			pthread_cond_wait(&ks->sign_cv, &ks->sign_mu);
			continue;
		}
		/* take the queue's head: as many as one request holds */
		first = last = ks->sign_head;
		for (q = first; q && k < KSP_SIGN_BATCH_MAX &&
		    (k == 0 || bytes + 4 + q->len <= KSP_REQ_MAX -
		    KSP_REQ_FIXED - 2); q = q->next) {
			bytes += 4 + q->len;
			last = q;
			k++;
		}
		ks->sign_head = last->next;
		if (!ks->sign_head)
			ks->sign_tail = NULL;
		ks->signing = 1;
		pthread_mutex_unlock(&ks->sign_mu);
		sign_group(ks, first, k);
		pthread_mutex_lock(&ks->sign_mu);
		for (q = first; k--; q = q->next)
			q->done = 1;
		ks->signing = 0;
		pthread_cond_broadcast(&ks->sign_cv);
	}
	pthread_mutex_unlock(&ks->sign_mu);
}

static int sign_len_ok(keysvc_t *ks, const void *msg, size_t len)
{
	if (len <= KEYSVC_SIGN_MAX && (msg || !len))
		return 0;
	set_errmsg(ks, "keysvc: message to sign is larger than %u bytes",
	    KEYSVC_SIGN_MAX);
	return len > KEYSVC_SIGN_MAX ? AR_ETOOBIG : AR_EINVAL;
}

int keysvc_sign(keysvc_t *ks, const void *msg, size_t len,
    uint8_t sig[KEYSVC_SIG_LEN])
{
	struct sign_req me = { msg, len, sig, 0, 0, NULL };
	int rc;

	if ((rc = sign_len_ok(ks, msg, len)))
		return rc;
	sign_queue(ks, &me, 1);
	return me.rc;
}

int keysvc_sign_many(keysvc_t *ks, size_t n, const void *const *msg,
    const size_t *len, uint8_t *sigs)
{
	struct sign_req *r;
	int rc = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((rc = sign_len_ok(ks, msg[i], len[i])))
			return rc;
	if (!(r = calloc(n, sizeof *r)))
		return AR_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r[i].msg = msg[i];
		r[i].len = len[i];
		r[i].sig = sigs + i * KEYSVC_SIG_LEN;
	}
	sign_queue(ks, r, n);
	for (size_t i = 0; i < n && !rc; i++)
		rc = r[i].rc;
	free(r);
	return rc;
}

int keysvc_public_key(keysvc_t *ks, uint8_t pk[KEYSVC_PK_LEN])
{
	uint8_t got[KEYSVC_PK_LEN];
	int rc, have;

	pthread_mutex_lock(&ks->cache_mu);
	if ((have = ks->have_pk))
		memcpy(pk, ks->pk, KEYSVC_PK_LEN);
	pthread_mutex_unlock(&ks->cache_mu);
	if (have)
		return 0;
	pthread_mutex_lock(&ks->mu);
	rc = rpc(ks, KSP_PUBKEY, NULL, 0, NULL, 0, 1, got, KEYSVC_PK_LEN);
	pthread_mutex_unlock(&ks->mu);
	if (rc)
		return rc;
	pthread_mutex_lock(&ks->cache_mu);
	memcpy(ks->pk, got, KEYSVC_PK_LEN);
	ks->have_pk = 1;
	pthread_mutex_unlock(&ks->cache_mu);
	memcpy(pk, got, KEYSVC_PK_LEN);
	return 0;
}
