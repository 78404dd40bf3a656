/*
 * relay.c - delivery of one message to the next hop (relay.h): routes,
 * MX and address order, the TLS policy, and the pool of sessions with its
 * per-host limit, shared by every relay queue thread.
 *
 * The pool: each server address:port has a count of open sessions (busy
 * and idle) that never passes max_per_host.  A session that ended its
 * transaction cleanly goes back as idle, tagged with the TLS identity it
 * was opened for (policy, name, CA file, pin), and is reused (after RSET)
 * only by a delivery with the same identity; an idle session of another
 * identity gives its slot up when the host is full.  A reaper thread
 * sends QUIT to sessions idle for idle_keep_ms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ar.h"
#include "gateway/smtpc.h"
#include "net.h"

#define MX_MAX      16
#define ADDRS_MAX   16
#define QUIT_WAIT   2000         /* ms: a QUIT's reply, when closing */

struct slot {
	char key[64];                /* "192.0.2.1:25", "[2001:db8::1]:25" */
	int open;
};

struct idle {
	smtpc_t *c;
	char key[64];
	char tlsid[900];
	int64_t until_us;
	struct idle *next;
};

struct ca_ctx {
	char path[512];              /* "": the system's CAs */
	SSL_CTX *ctx;
	struct timespec mtime;
};

struct gw_relay {
	gw_relay_opts_t o;
	char hostname[256];
	unsigned mx_port;
	gw_dns_t *dns;
	SSL_CTX *ctx_any;            /* no chain verification */
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* a slot or an idle session came free */
	struct slot *slots;
	size_t nslots, capslots;
	struct idle *idle;           /* most recently used first */
	struct ca_ctx *cas;
	size_t ncas, capcas;
	gw_relay_stats_t st;
	pthread_t reaper;
	int reaper_started, stopping;
	pthread_cond_t reaper_cond;
};

/* --- TLS contexts ---------------------------------------------------------------- */

static SSL_CTX *ctx_new(int verify)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
	    NULL);
	return ctx;
}

/* The verifying context for a CA file ("" = the system's), loaded once
 * and again when the file changes; NULL with why when it cannot be. */
static SSL_CTX *ctx_for_ca(gw_relay_t *r, const char *path, char *why,
    size_t whylen)
{
	struct stat sb;
	struct timespec mt = { 0, 0 };
	struct ca_ctx *e = NULL;
	SSL_CTX *ctx = NULL;

	if (path[0]) {
		if (stat(path, &sb) < 0) {
			snprintf(why, whylen, "TLS CA file %.300s: %s", path,
			    strerror(errno));
			return NULL;
		}
		mt = sb.st_mtim;
	}
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->ncas; i++)
		if (!strcmp(r->cas[i].path, path))
			e = &r->cas[i];
	if (e && e->mtime.tv_sec == mt.tv_sec && e->mtime.tv_nsec == mt.tv_nsec) {
		ctx = e->ctx;
		SSL_CTX_up_ref(ctx);
		pthread_mutex_unlock(&r->lock);
		return ctx;
	}
	pthread_mutex_unlock(&r->lock);

	if (!(ctx = ctx_new(1)))
		goto fail;
	ERR_clear_error();
	if ((path[0] ? SSL_CTX_load_verify_locations(ctx, path, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		char eb[256];
		ERR_error_string_n(ERR_peek_last_error(), eb, sizeof eb);
		snprintf(why, whylen, "TLS CA file %.200s could not be loaded: %.150s",
		    path[0] ? path : "(system)", eb);
		SSL_CTX_free(ctx);
		return NULL;
	}
	pthread_mutex_lock(&r->lock);
	e = NULL;
	for (size_t i = 0; i < r->ncas; i++)
		if (!strcmp(r->cas[i].path, path))
			e = &r->cas[i];
	if (!e) {
		if (ar_grow((void **)&r->cas, &r->capcas, r->ncas,
		    sizeof *r->cas)) {
			pthread_mutex_unlock(&r->lock);
			SSL_CTX_free(ctx);
			goto fail;
		}
		e = &r->cas[r->ncas++];
		memset(e, 0, sizeof *e);
		ar_strlcpy(e->path, path, sizeof e->path);
	}
	if (e->ctx)
		SSL_CTX_free(e->ctx);   /* sessions using it hold a reference */
	e->ctx = ctx;
	e->mtime = mt;
	SSL_CTX_up_ref(ctx);            /* the caller's */
	pthread_mutex_unlock(&r->lock);
	return ctx;
fail:
	snprintf(why, whylen, "TLS: out of memory");
	return NULL;
}

/* --- the pool ------------------------------------------------------------------------ */

static struct slot *slot_of(gw_relay_t *r, const char *key)
{
	for (size_t i = 0; i < r->nslots; i++)
		if (!strcmp(r->slots[i].key, key))
			return &r->slots[i];
	if (ar_grow((void **)&r->slots, &r->capslots, r->nslots,
	    sizeof *r->slots))
		return NULL;
	memset(&r->slots[r->nslots], 0, sizeof *r->slots);
	ar_strlcpy(r->slots[r->nslots].key, key, sizeof r->slots[0].key);
	return &r->slots[r->nslots++];
}

/* One session less to key (under lock); the slot goes when unused. */
static void slot_drop(gw_relay_t *r, const char *key)
{
	for (size_t i = 0; i < r->nslots; i++) {
		if (strcmp(r->slots[i].key, key))
			continue;
		if (--r->slots[i].open <= 0)
			r->slots[i] = r->slots[--r->nslots];
		break;
	}
	r->st.open--;
	pthread_cond_broadcast(&r->cond);
}

enum { ACQ_NEW, ACQ_IDLE, ACQ_BUSY, ACQ_NOMEM };

/*
 * A session to key for tlsid: an idle one (*c set, ACQ_IDLE), or the right
 * to open one (ACQ_NEW: the slot is counted; give it back with release),
 * waiting at most connect_timeout_ms for either (ACQ_BUSY).
 */
static int acquire(gw_relay_t *r, const char *key, const char *tlsid,
    smtpc_t **c)
{
	struct timespec until;
	int64_t ms = r->o.connect_timeout_ms;

	*c = NULL;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct idle **pp, *other = NULL, **otherp = NULL;
		struct slot *s;

		for (pp = &r->idle; *pp; pp = &(*pp)->next) {
			struct idle *it = *pp;
			if (strcmp(it->key, key))
				continue;
			if (!strcmp(it->tlsid, tlsid)) {
				*pp = it->next;
				*c = it->c;
				free(it);
				r->st.idle--;
				r->st.reused++;
				pthread_mutex_unlock(&r->lock);
				return ACQ_IDLE;
			}
			if (!other) {
				other = it;
				otherp = pp;
			}
		}
		if (!(s = slot_of(r, key))) {
			pthread_mutex_unlock(&r->lock);
			return ACQ_NOMEM;
		}
		if (s->open < r->o.max_per_host) {
			s->open++;
			r->st.open++;
			pthread_mutex_unlock(&r->lock);
			return ACQ_NEW;
		}
		if (other) {
			/* take the slot of an idle session of another kind */
			smtpc_t *victim = other->c;
			*otherp = other->next;
			free(other);
			r->st.idle--;
			pthread_mutex_unlock(&r->lock);
			smtpc_close(victim, QUIT_WAIT);
			return ACQ_NEW;
		}
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until) ==
		    ETIMEDOUT) {
			r->st.busy++;
			pthread_mutex_unlock(&r->lock);
			return ACQ_BUSY;
		}
	}
}

/* Give back a slot taken by acquire: c kept idle when it can be, else
 * closed (c may be NULL: the session never opened). */
static void release(gw_relay_t *r, const char *key, const char *tlsid,
    smtpc_t *c)
{
	struct idle *it = NULL;

	if (c && smtpc_usable(c) && r->o.idle_keep_ms > 0 &&
	    (it = calloc(1, sizeof *it))) {
		it->c = c;
		ar_strlcpy(it->key, key, sizeof it->key);
		ar_strlcpy(it->tlsid, tlsid, sizeof it->tlsid);
		it->until_us = ar_mono_us() + (int64_t)r->o.idle_keep_ms * 1000;
		pthread_mutex_lock(&r->lock);
		if (!r->stopping) {
			it->next = r->idle;
			r->idle = it;
			r->st.idle++;
			pthread_cond_broadcast(&r->cond);
			pthread_cond_signal(&r->reaper_cond);
			pthread_mutex_unlock(&r->lock);
			return;
		}
		pthread_mutex_unlock(&r->lock);
		free(it);
	}
	smtpc_close(c, smtpc_usable(c) ? QUIT_WAIT : 0);
	pthread_mutex_lock(&r->lock);
	slot_drop(r, key);
	pthread_mutex_unlock(&r->lock);
}

/* Close idle sessions past their time (all of them when stopping). */
static void *reaper_main(void *arg)
{
	gw_relay_t *r = arg;

	ar_thread_setup("ar-relay-idle", 0);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct idle **pp = &r->idle, *gone = NULL;
		int64_t now = ar_mono_us(), next = 0;
		struct timespec until;

		while (*pp) {
			struct idle *it = *pp;
			if (r->stopping || it->until_us <= now) {
				*pp = it->next;
				it->next = gone;
				gone = it;
				r->st.idle--;
				continue;
			}
			if (!next || it->until_us < next)
				next = it->until_us;
			pp = &it->next;
		}
		if (gone) {
			pthread_mutex_unlock(&r->lock);
			while (gone) {
				struct idle *it = gone;
				gone = it->next;
				smtpc_close(it->c, QUIT_WAIT);
				pthread_mutex_lock(&r->lock);
				slot_drop(r, it->key);
				pthread_mutex_unlock(&r->lock);
				free(it);
			}
			pthread_mutex_lock(&r->lock);
			continue;
		}
		if (r->stopping)
			break;
		clock_gettime(CLOCK_REALTIME, &until);
		if (next) {
			int64_t wait = next - now + 1000;
			until.tv_sec += wait / 1000000;
			until.tv_nsec += (wait % 1000000) * 1000;
		} else {
			until.tv_sec += 3600;
		}
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->reaper_cond, &r->lock, &until);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* --- handle ---------------------------------------------------------------------------- */

int gw_relay_new(gw_relay_t **out, const gw_relay_opts_t *o)
{
	gw_relay_t *r = calloc(1, sizeof *r);
	const char *env;
	int rc;

	*out = NULL;
	if (!r)
		return AR_ENOMEM;
	r->o = *o;
	if (o->hostname && o->hostname[0])
		ar_strlcpy(r->hostname, o->hostname, sizeof r->hostname);
	else if (gethostname(r->hostname, sizeof r->hostname - 1) < 0)
		ar_strlcpy(r->hostname, "localhost", sizeof r->hostname);
	r->o.hostname = r->hostname;
	r->o.dns_server = NULL;
	if (r->o.connect_timeout_ms <= 0)
		r->o.connect_timeout_ms = 30000;
	if (r->o.command_timeout_ms <= 0)
		r->o.command_timeout_ms = 300000;
	if (r->o.data_timeout_ms <= 0)
		r->o.data_timeout_ms = 600000;
	if (r->o.max_per_host <= 0)
		r->o.max_per_host = 4;
	if (r->o.idle_keep_ms == 0)
		r->o.idle_keep_ms = 10000;
	r->mx_port = o->mx_port;
	if (!r->mx_port && (env = getenv("AR_TEST_MX_PORT")) && atoi(env) > 0 &&
	    atoi(env) < 65536)
		r->mx_port = (unsigned)atoi(env);
	if (!r->mx_port)
		r->mx_port = 25;
	if ((rc = gw_dns_new(&r->dns, o->dns_server))) {
		free(r);
		return rc;
	}
	if (!(r->ctx_any = ctx_new(0))) {
		gw_dns_free(r->dns);
		free(r);
		return AR_ENOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	pthread_cond_init(&r->reaper_cond, NULL);
	if (pthread_create(&r->reaper, NULL, reaper_main, r) == 0)
		r->reaper_started = 1;
	*out = r;
	return 0;
}

void gw_relay_free(gw_relay_t *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_cond_signal(&r->reaper_cond);
	pthread_mutex_unlock(&r->lock);
	if (r->reaper_started)
		pthread_join(r->reaper, NULL);
	while (r->idle) {              /* without a reaper */
		struct idle *it = r->idle;
		r->idle = it->next;
		smtpc_close(it->c, QUIT_WAIT);
		free(it);
	}
	for (size_t i = 0; i < r->ncas; i++)
		SSL_CTX_free(r->cas[i].ctx);
	free(r->cas);
	free(r->slots);
	SSL_CTX_free(r->ctx_any);
	gw_dns_free(r->dns);
	pthread_cond_destroy(&r->reaper_cond);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void gw_relay_stats(gw_relay_t *r, gw_relay_stats_t *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->st;
	pthread_mutex_unlock(&r->lock);
}

/* --- one delivery ------------------------------------------------------------------------- */

struct send {
	gw_relay_t *r;
	const store_domain_t *d;
	const char *mail_from;
	const char *const *rcpts;
	size_t n;
	const char *prepend;
	const gw_source_t *src;
	gw_rcpt_result_t *res;
	/* the last failure, for everyone when no server takes it */
	int code;
	char enhanced[16];
	char text[512];
	char host[280];
	int local_rc;
};

static void failed(struct send *s, int code, const char *enhanced,
    const char *host, const char *text)
{
	s->code = code;
	ar_strlcpy(s->enhanced, enhanced ? enhanced : "", sizeof s->enhanced);
	ar_strlcpy(s->text, text, sizeof s->text);
	ar_strlcpy(s->host, host ? host : "", sizeof s->host);
}

static void addr_text(const struct sockaddr_storage *ss, char *ip, size_t iplen,
    unsigned *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const void *)ss;
		inet_ntop(AF_INET6, &v6->sin6_addr, ip, (socklen_t)iplen);
		*port = ntohs(v6->sin6_port);
	} else {
		const struct sockaddr_in *v4 = (const void *)ss;
		inet_ntop(AF_INET, &v4->sin_addr, ip, (socklen_t)iplen);
		*port = ntohs(v4->sin_port);
	}
}

/* A new session (the slot already taken); opportunistic TLS that fails
 * its handshake is tried again in clear.  0 or smtpc_open's failure. */
static int open_session(struct send *s, smtpc_params_t *p,
    const struct sockaddr_storage *ss, const char *label, smtpc_t **c,
    smtpc_reply_t *fail)
{
	gw_relay_t *r = s->r;
	socklen_t sl = ss->ss_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int rc = smtpc_open(c, (const struct sockaddr *)ss, sl, label, p, fail);

	pthread_mutex_lock(&r->lock);
	r->st.connects++;
	pthread_mutex_unlock(&r->lock);
	if (rc == SMTPC_ETLS && s->d->tls == STORE_TLS_OPPORTUNISTIC) {
		ar_log(AR_LOG_INFO, "relay host=%s status=tls_failed "
		    "action=clear reason=\"%s\"", label, fail->text);
		p->no_starttls = 1;
		rc = smtpc_open(c, (const struct sockaddr *)ss, sl, label, p,
		    fail);
		p->no_starttls = 0;
		pthread_mutex_lock(&r->lock);
		r->st.connects++;
		pthread_mutex_unlock(&r->lock);
	}
	return rc;
}

enum { NEXT, DONE };

/* One server address: NEXT (s->code/text say why) or DONE (s->res set,
 * or s->local_rc). */
static int attempt(struct send *s, const char *name, int is_literal,
    const struct sockaddr_storage *ss)
{
	gw_relay_t *r = s->r;
	const store_domain_t *d = s->d;
	char ip[INET6_ADDRSTRLEN], key[64], label[280], tlsid[900], why[400];
	uint8_t pin[32];
	unsigned port;
	smtpc_params_t p;
	smtpc_reply_t fail, mail;
	smtpc_t *c = NULL;
	SSL_CTX *ctx = NULL;
	int acq, rc;

	addr_text(ss, ip, sizeof ip, &port);
	snprintf(key, sizeof key, ss->ss_family == AF_INET6 ? "[%s]:%u" :
	    "%s:%u", ip, port);
	snprintf(label, sizeof label, "%s[%s]:%u", name, ip, port);
	memset(&p, 0, sizeof p);
	p.helo = r->hostname;
	p.connect_timeout_ms = r->o.connect_timeout_ms;
	p.command_timeout_ms = r->o.command_timeout_ms;
	p.data_timeout_ms = r->o.data_timeout_ms;
	p.tls = d->tls;
	p.tls_name = is_literal ? NULL : name;
	p.tls_ip = is_literal ? ip : NULL;
	p.ssl_ctx = r->ctx_any;
	if (d->tls == STORE_TLS_VERIFY) {
		if (d->tls_pin[0]) {
			if (ar_unhex(d->tls_pin, pin, sizeof pin)) {
				failed(s, 0, NULL, label, "TLS pin of the domain "
				    "is not 64 hex digits");
				return NEXT;
			}
			p.tls_pin = pin;
		} else if (!(ctx = ctx_for_ca(r, d->tls_ca, why, sizeof why))) {
			failed(s, 0, NULL, label, why);
			ar_log(AR_LOG_WARN, "relay host=%s status=tls_config "
			    "reason=\"%s\"", label, why);
			return NEXT;
		} else {
			p.ssl_ctx = ctx;
		}
	}
	snprintf(tlsid, sizeof tlsid, "%d|%s|%s|%s", d->tls, name,
	    d->tls == STORE_TLS_VERIFY ? d->tls_ca : "",
	    d->tls == STORE_TLS_VERIFY ? d->tls_pin : "");

	acq = acquire(r, key, tlsid, &c);
	if (acq == ACQ_NOMEM) {
		failed(s, 0, NULL, label, "out of memory");
		goto next;
	}
	if (acq == ACQ_BUSY) {
		snprintf(why, sizeof why, "451 4.4.5 (local) all %d "
		    "connections to %s are in use", r->o.max_per_host, label);
		failed(s, 451, "4.4.5", label, why);
		ar_log(AR_LOG_INFO, "relay host=%s status=busy max_per_host=%d",
		    label, r->o.max_per_host);
		goto next;
	}
	/* a kept session in a known state takes the next MAIL at once
	 * (RFC 5321 4.1.4); otherwise RSET first */
	if (acq == ACQ_IDLE && (!smtpc_alive(c) || (!smtpc_clean(c) &&
	    smtpc_reset(c)))) {
		smtpc_close(c, 0);   /* the server let it go: a new one */
		c = NULL;
	}
again:
	if (!c) {
		if ((rc = open_session(s, &p, ss, label, &c, &fail))) {
			static const char *kinds[] = { "", "unreachable",
				"refused", "tls_failed", "tls_required", "loop" };
			if (rc == AR_ENOMEM)
				failed(s, 0, NULL, label, "out of memory");
			else
				/* a refusal of the session is not the
				 * recipients' fault: deferred, not bounced */
				failed(s, fail.code / 100 == 4 ? fail.code : 0,
				    fail.code / 100 == 4 ? fail.enhanced : NULL,
				    label, fail.text);
			ar_log(AR_LOG_INFO, "relay host=%s status=%s code=%d",
			    label, rc > 0 && rc <= SMTPC_ELOOP ? kinds[rc] :
			    "error", fail.code);
			release(r, key, tlsid, NULL);
			goto next;
		}
		acq = ACQ_NEW;
	}
	rc = smtpc_send(c, s->mail_from, s->rcpts, s->n, s->prepend, s->src,
	    s->res, &mail);
	if (acq == ACQ_IDLE && (rc == SMTPC_ECONNECT || (rc == SMTPC_EREFUSED &&
	    !smtpc_usable(c)))) {
		/* a kept session the server had closed: nothing was sent,
		 * once more on a new one (same slot) */
		smtpc_close(c, 0);
		c = NULL;
		goto again;
	}
	if (rc == SMTPC_EREFUSED || rc == SMTPC_ECONNECT) {
		failed(s, mail.code, mail.enhanced, label, mail.text);
		ar_log(AR_LOG_INFO, "relay host=%s status=%s code=%d", label,
		    rc == SMTPC_EREFUSED ? "mail_refused" : "lost", mail.code);
		release(r, key, tlsid, c);
		goto next;
	}
	release(r, key, tlsid, c);
	if (ctx)
		SSL_CTX_free(ctx);
	if (rc < 0) {
		s->local_rc = rc;
		return DONE;
	}
	for (size_t i = 0; i < s->n; i++)
		ar_strlcpy(s->res[i].host, label, sizeof s->res[i].host);
	return DONE;
next:
	if (ctx)
		SSL_CTX_free(ctx);
	return NEXT;
}

/* Every address of host name (or the literal): DONE or NEXT. */
static int try_host(struct send *s, const char *name, unsigned port)
{
	struct sockaddr_storage addrs[ADDRS_MAX];
	char why[400], label[300], h[280];
	size_t na = 0;
	int lit, rc;

	lit = name[0] == '[';
	if (lit) {
		size_t l = strlen(name);
		if (l < 3 || name[l - 1] != ']' || l - 2 >= sizeof h) {
			failed(s, 0, NULL, name, "bad address literal");
			return NEXT;
		}
		memcpy(h, name + 1, l - 2);
		h[l - 2] = '\0';
		rc = gw_dns_addrs(s->r->dns, h, port, addrs, ADDRS_MAX, &na, why,
		    sizeof why);
		name = h;
		if (rc == 0)
			return attempt(s, h, 1, &addrs[0]);
	} else {
		struct in6_addr a6;
		lit = inet_pton(AF_INET, name, &a6) == 1 ||
		    inet_pton(AF_INET6, name, &a6) == 1;
		rc = gw_dns_addrs(s->r->dns, name, port, addrs, ADDRS_MAX, &na,
		    why, sizeof why);
	}
	if (rc) {
		snprintf(label, sizeof label, "%s:%u", name, port);
		failed(s, 0, NULL, label, why);
		ar_log(AR_LOG_INFO, "relay host=%s status=no_address "
		    "reason=\"%s\"", label, why);
		return NEXT;
	}
	for (size_t i = 0; i < na; i++)
		if (attempt(s, name, lit, &addrs[i]) == DONE)
			return DONE;
	return NEXT;
}

/* One route: DONE, NEXT, or -1 (the message bounces: set in s->res). */
static int try_route(struct send *s, const char *route)
{
	char host[STORE_ROUTE_MAX], why[400];
	unsigned port;

	if (!strncmp(route, "mx:", 3)) {
		const char *dom = route[3] ? route + 3 : s->d->name;
		gw_mx_t mx[MX_MAX];
		size_t n = 0;
		int rc = gw_dns_mx(s->r->dns, dom, mx, MX_MAX, &n, why,
		    sizeof why);
		if (rc == AR_EPERM) {          /* null MX: RFC 7505 3 */
			char text[512];
			snprintf(text, sizeof text, "556 5.1.10 %s", why);
			for (size_t i = 0; i < s->n; i++) {
				s->res[i].code = 556;
				ar_strlcpy(s->res[i].enhanced, "5.1.10",
				    sizeof s->res[i].enhanced);
				ar_strlcpy(s->res[i].text, text,
				    sizeof s->res[i].text);
				ar_strlcpy(s->res[i].host, dom,
				    sizeof s->res[i].host);
			}
			return -1;
		}
		if (rc == AR_ENOENT) {
			char text[512];
			snprintf(text, sizeof text, "550 5.1.2 %s", why);
			failed(s, 550, "5.1.2", dom, text);
			return NEXT;
		}
		if (rc) {
			failed(s, 0, NULL, dom, why);
			ar_log(AR_LOG_INFO, "relay domain=%s status=dns_failed "
			    "reason=\"%s\"", dom, why);
			return NEXT;
		}
		if (n == 0)                    /* no MX: the domain itself */
			return try_host(s, dom, s->r->mx_port);
		for (size_t i = 0; i < n; i++)
			if (try_host(s, mx[i].host, s->r->mx_port) == DONE)
				return DONE;
		return NEXT;
	}
	if (ar_hostport_parse(route, host, sizeof host, &port) || port == 0) {
		snprintf(why, sizeof why, "route '%s' is not host:port, "
		    "[address]:port or mx:", route);
		failed(s, 0, NULL, route, why);
		return NEXT;
	}
	if (route[0] == '[') {
		char lit[STORE_ROUTE_MAX + 2];
		snprintf(lit, sizeof lit, "[%s]", host);
		return try_host(s, lit, port);
	}
	return try_host(s, host, port);
}

int gw_relay_send(gw_relay_t *r, const store_domain_t *d,
    const char *mail_from, const char *const *rcpts, size_t n,
    const char *prepend, const gw_source_t *src, gw_rcpt_result_t *res)
{
	struct send s;
	int rc = NEXT;

	memset(&s, 0, sizeof s);
	s.r = r;
	s.d = d;
	s.mail_from = mail_from ? mail_from : "";
	s.rcpts = rcpts;
	s.n = n;
	s.prepend = prepend;
	s.src = src;
	s.res = res;
	memset(res, 0, n * sizeof *res);
	snprintf(s.text, sizeof s.text, "no route to %s configured", d->name);
	ar_strlcpy(s.host, d->name, sizeof s.host);
	for (size_t i = 0; i < d->n_routes && i < STORE_ROUTES_MAX; i++)
		if ((rc = try_route(&s, d->routes[i])) != NEXT)
			break;
	if (rc == NEXT) {
		for (size_t i = 0; i < n; i++) {
			res[i].code = s.code;
			ar_strlcpy(res[i].enhanced, s.enhanced,
			    sizeof res[i].enhanced);
			ar_strlcpy(res[i].text, s.text, sizeof res[i].text);
			ar_strlcpy(res[i].host, s.host, sizeof res[i].host);
		}
	}
	return s.local_rc;
}
