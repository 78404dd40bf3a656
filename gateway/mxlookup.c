/*
 * mxlookup.c - MX and address lookups for the relay (smtpc.h), with
 * libresolv (res_nquery, ns_parse) against the configured DNS server or
 * the system's, and a small cache of answers.
 *
 * Each query gets a resolver state of its own (res_ninit, then the
 * configured server in place of resolv.conf's), so lookups of several
 * relay threads run at once.  Answers are parsed record by record: MX
 * (preference, exchange), A and AAAA; CNAMEs on the way are followed by
 * the server and skipped here.  RFC 7505's null MX ("0 .") is reported as
 * such; with no MX record at all the caller falls back to the domain's own
 * addresses (RFC 5321 5.1).
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "ar.h"
#include "gateway/smtpc.h"
#include "net.h"

#define CACHE_SLOTS  128
#define CACHE_ITEMS  16          /* MX or addresses kept per name */
#define TTL_MAX      300         /* s */
#define DNS_RETRANS  2           /* s per try */
#define DNS_RETRY    2           /* tries per server */

enum { Q_MX, Q_ADDR };

struct cache_ent {
	int type;
	char name[256];
	int64_t expires_us;          /* 0: free */
	size_t n;
	gw_mx_t mx[CACHE_ITEMS];
	struct sockaddr_storage addr[CACHE_ITEMS];
};

struct gw_dns {
	int use_server;
	struct sockaddr_in server;
	pthread_mutex_t lock;
	struct cache_ent *cache;     /* CACHE_SLOTS */
};

int gw_dns_new(gw_dns_t **out, const char *server)
{
	gw_dns_t *d = calloc(1, sizeof *d);
	char host[256];
	unsigned port;

	*out = NULL;
	if (!d || !(d->cache = calloc(CACHE_SLOTS, sizeof *d->cache))) {
		free(d);
		return AR_ENOMEM;
	}
	if (server && server[0]) {
		if (ar_hostport_parse(server, host, sizeof host, &port) ||
		    port == 0 || inet_pton(AF_INET, host,
		    &d->server.sin_addr) != 1) {
			free(d->cache);
			free(d);
			return AR_ECONFIG;
		}
		d->server.sin_family = AF_INET;
		d->server.sin_port = htons((uint16_t)port);
		d->use_server = 1;
	}
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

void gw_dns_free(gw_dns_t *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	free(d->cache);
	free(d);
}

/* --- the cache ---------------------------------------------------------------- */

static int cache_get(gw_dns_t *d, int type, const char *name,
    struct cache_ent *out)
{
	int64_t now = ar_mono_us();
	int hit = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		struct cache_ent *e = &d->cache[i];
		if (e->expires_us > now && e->type == type &&
		    !strcasecmp(e->name, name)) {
			*out = *e;
			hit = 1;
			break;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return hit;
}

static void cache_put(gw_dns_t *d, const struct cache_ent *in, uint32_t ttl)
{
	int64_t now = ar_mono_us();
	size_t slot = 0;

	if (ttl == 0)
		return;
	if (ttl > TTL_MAX)
		ttl = TTL_MAX;
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		struct cache_ent *e = &d->cache[i];
		if (e->type == in->type && !strcasecmp(e->name, in->name)) {
			slot = i;
			break;
		}
		if (e->expires_us < d->cache[slot].expires_us)
			slot = i;       /* the first to expire (or a free one) */
	}
	d->cache[slot] = *in;
	d->cache[slot].expires_us = now + (int64_t)ttl * 1000000;
	pthread_mutex_unlock(&d->lock);
}

/* --- one query ---------------------------------------------------------------- */

/* Query name/type into ans; the answer's length, or an AR_* status with
 * why (AR_ENOENT: no such name; 0 records of the type: returns 0). */
static int query(gw_dns_t *d, const char *name, int type, unsigned char *ans,
    int anslen, char *why, size_t whylen)
{
	struct __res_state rs;
	const char *tname = type == ns_t_mx ? "MX" : type == ns_t_a ? "A" :
	    "AAAA";
	int len, herr;

	memset(&rs, 0, sizeof rs);
	if (res_ninit(&rs) != 0) {
		snprintf(why, whylen, "DNS resolver could not be initialised");
		return AR_EAGAIN;
	}
	if (d->use_server) {
		rs.nscount = 1;
		rs.nsaddr_list[0] = d->server;
	}
	rs.retrans = DNS_RETRANS;
	rs.retry = DNS_RETRY;
	rs.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	len = res_nquery(&rs, name, ns_c_in, type, ans, anslen);
	herr = rs.res_h_errno;
	res_nclose(&rs);
	if (len >= 0)
		return len;
	switch (herr) {
	case HOST_NOT_FOUND:
		snprintf(why, whylen, "DNS: %s: no such domain (%s lookup)",
		    name, tname);
		return AR_ENOENT;
	case NO_DATA:
		return 0;
	case TRY_AGAIN:
		snprintf(why, whylen, "DNS: %s %s lookup: no answer or server "
		    "failure", name, tname);
		return AR_EAGAIN;
	default:
		snprintf(why, whylen, "DNS: %s %s lookup: refused or failed "
		    "(h_errno %d)", name, tname, herr);
		return AR_EAGAIN;
	}
}

/* --- MX ------------------------------------------------------------------------ */

static int mx_cmp(const void *a, const void *b)
{
	const gw_mx_t *x = a, *y = b;
	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* Equal preferences in random order (RFC 5321 5.1). */
static void mx_shuffle(gw_mx_t *mx, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && mx[j].pref == mx[i].pref)
			j++;
		for (size_t k = j - 1; k > i; k--) {
			size_t r = i + randombytes_uniform((uint32_t)(k - i + 1));
			gw_mx_t t = mx[k];
			mx[k] = mx[r];
			mx[r] = t;
		}
		i = j;
	}
}

int gw_dns_mx(gw_dns_t *d, const char *domain, gw_mx_t *out, size_t max,
    size_t *n, char *why, size_t whylen)
{
	unsigned char ans[NS_MAXMSG > 65536 ? 65536 : NS_MAXMSG];
	struct cache_ent e;
	ns_msg msg;
	ns_rr rr;
	uint32_t ttl = UINT32_MAX;
	int len, nulls = 0;

	*n = 0;
	why[0] = '\0';
	if (!cache_get(d, Q_MX, domain, &e)) {
		memset(&e, 0, sizeof e);
		e.type = Q_MX;
		ar_strlcpy(e.name, domain, sizeof e.name);
		if ((len = query(d, domain, ns_t_mx, ans, (int)sizeof ans, why,
		    whylen)) < 0)
			return len;
		if (len > 0 && ns_initparse(ans, len, &msg) < 0)
			goto malformed;
		for (int i = 0; len > 0 && i < ns_msg_count(msg, ns_s_an); i++) {
			const unsigned char *rd;
			char host[NS_MAXDNAME];
			if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
				goto malformed;
			if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) !=
			    ns_c_in)
				continue;
			rd = ns_rr_rdata(rr);
			if (ns_rr_rdlen(rr) < 3 || ns_name_uncompress(
			    ns_msg_base(msg), ns_msg_end(msg), rd + 2, host,
			    sizeof host) < 0)
				goto malformed;
			if (ns_rr_ttl(rr) < ttl)
				ttl = ns_rr_ttl(rr);
			if (!host[0] || !strcmp(host, ".")) {
				nulls++;    /* "0 .": no mail (RFC 7505) */
				continue;
			}
			if (e.n < CACHE_ITEMS && strlen(host) < sizeof
			    e.mx[0].host) {
				ar_strlcpy(e.mx[e.n].host, host,
				    sizeof e.mx[e.n].host);
				e.mx[e.n].pref = ns_get16(rd);
				e.n++;
			}
		}
		if (nulls && !e.n) {
			snprintf(why, whylen, "DNS: %s has a null MX (RFC 7505): "
			    "the domain accepts no mail", domain);
			return AR_EPERM;
		}
		qsort(e.mx, e.n, sizeof e.mx[0], mx_cmp);
		cache_put(d, &e, len > 0 && ttl != UINT32_MAX ? ttl : 0);
	}
	mx_shuffle(e.mx, e.n);
	for (size_t i = 0; i < e.n && i < max; i++)
		out[(*n)++] = e.mx[i];
	return 0;
malformed:
	snprintf(why, whylen, "DNS: %s MX lookup: malformed answer", domain);
	return AR_EPROTO;
}

/* --- addresses ------------------------------------------------------------------ */

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static int literal(const char *host, struct sockaddr_storage *ss)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		return 1;
	}
	return 0;
}

/* A or AAAA records of host appended to e; ttl lowered to theirs. */
static int addr_query(gw_dns_t *d, const char *host, int type,
    struct cache_ent *e, uint32_t *ttl, char *why, size_t whylen)
{
	unsigned char ans[65536];
	ns_msg msg;
	ns_rr rr;
	int len;

	if ((len = query(d, host, type, ans, (int)sizeof ans, why, whylen)) <= 0)
		return len;
	if (ns_initparse(ans, len, &msg) < 0)
		goto malformed;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		struct sockaddr_storage *ss;
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			goto malformed;
		if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
			continue;
		if (ns_rr_rdlen(rr) != (type == ns_t_a ? 4 : 16))
			goto malformed;
		if (e->n == CACHE_ITEMS)
			break;
		ss = &e->addr[e->n++];
		memset(ss, 0, sizeof *ss);
		if (type == ns_t_a) {
			struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
			v4->sin_family = AF_INET;
			memcpy(&v4->sin_addr, ns_rr_rdata(rr), 4);
		} else {
			struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
			v6->sin6_family = AF_INET6;
			memcpy(&v6->sin6_addr, ns_rr_rdata(rr), 16);
		}
		if (ns_rr_ttl(rr) < *ttl)
			*ttl = ns_rr_ttl(rr);
	}
	return 0;
malformed:
	snprintf(why, whylen, "DNS: %s %s lookup: malformed answer", host,
	    type == ns_t_a ? "A" : "AAAA");
	return AR_EPROTO;
}

/* The system's way (/etc/hosts, then its DNS), in its order (gai.conf). */
static int addrs_system(const char *host, struct cache_ent *e, char *why,
    size_t whylen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc) {
		snprintf(why, whylen, "address lookup of %s: %s", host,
		    gai_strerror(rc));
		return rc == EAI_NONAME
#ifdef EAI_NODATA
		    || rc == EAI_NODATA
#endif
		    ? AR_ENOENT : AR_EAGAIN;
	}
	for (ai = res; ai && e->n < CACHE_ITEMS; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof e->addr[0])
			continue;
		memset(&e->addr[e->n], 0, sizeof e->addr[0]);
		memcpy(&e->addr[e->n++], ai->ai_addr, ai->ai_addrlen);
	}
	freeaddrinfo(res);
	return 0;
}

int gw_dns_addrs(gw_dns_t *d, const char *host, unsigned port,
    struct sockaddr_storage *out, size_t max, size_t *n, char *why,
    size_t whylen)
{
	struct cache_ent e;
	uint32_t ttl = UINT32_MAX;
	int rc, rc6;

	*n = 0;
	why[0] = '\0';
	if (max == 0)
		return AR_EINVAL;
	if (literal(host, &out[0])) {
		set_port(&out[0], port);
		*n = 1;
		return 0;
	}
	if (!cache_get(d, Q_ADDR, host, &e)) {
		memset(&e, 0, sizeof e);
		e.type = Q_ADDR;
		ar_strlcpy(e.name, host, sizeof e.name);
		if (!d->use_server) {
			if ((rc = addrs_system(host, &e, why, whylen)))
				return rc;
			ttl = 60;
		} else if (!strcasecmp(host, "localhost")) {
			/* never asked to DNS (RFC 6761 6.3) */
			literal("127.0.0.1", &e.addr[e.n++]);
			literal("::1", &e.addr[e.n++]);
			ttl = TTL_MAX;
		} else {
			rc = addr_query(d, host, ns_t_a, &e, &ttl, why, whylen);
			if (rc && rc != AR_ENOENT)
				return rc;
			rc6 = addr_query(d, host, ns_t_aaaa, &e, &ttl, why,
			    whylen);
			if (rc6 && rc6 != AR_ENOENT && !e.n)
				return rc6;
		}
		if (!e.n) {
			if (!why[0])
				snprintf(why, whylen, "DNS: %s has no address "
				    "(A or AAAA)", host);
			return AR_ENOENT;
		}
		why[0] = '\0';
		cache_put(d, &e, ttl != UINT32_MAX ? ttl : 0);
	}
	for (size_t i = 0; i < e.n && i < max; i++) {
		out[*n] = e.addr[i];
		set_port(&out[(*n)++], port);
	}
	return 0;
}
