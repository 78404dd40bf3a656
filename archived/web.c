/*
 * web.c - archived's console and JSON API: a search index handle for it,
 * then the web module's server on web_listen.  A console that cannot
 * start is logged (status=failed) and archived goes on without it.
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "daemon.h"

/* The console's view of the relay queue: the gateway's summary of the
 * tenant's entries (the relay spool outlives the console: web_glue_stop
 * comes before gateway_glue_stop). */
static int relay_queue(void *arg, const uint8_t tenant[STORE_TENANT_LEN],
    web_relay_queue_t *out)
{
	struct daemon *d = arg;
	gateway_queue_summary_t s;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = gateway_queue_summary(d->relay, tenant, NULL, NULL, &s)))
		return rc;
	if (s.n && !(out->domains = calloc(s.n, sizeof *out->domains))) {
		gateway_queue_summary_clear(&s);
		return AR_ENOMEM;
	}
	for (size_t i = 0; i < s.n; i++) {
		const gateway_queue_domain_t *g = &s.domains[i];
		web_relay_domain_t *w = &out->domains[i];
		ar_strlcpy(w->name, g->name, sizeof w->name);
		w->pending = g->pending;
		w->deferred = g->deferred;
		w->delivered = g->delivered;
		w->bounced = g->bounced;
		w->quarantined = g->quarantined;
		w->oldest = g->oldest;
		w->next_attempt = g->next_attempt;
		w->last_error_time = g->last_error_time;
		ar_strlcpy(w->last_error, g->last_error, sizeof w->last_error);
	}
	out->n = s.n;
	out->messages = s.messages;
	out->unreadable = s.unreadable;
	gateway_queue_summary_clear(&s);
	return 0;
}

int web_glue_start(struct daemon *d)
{
	search_open_params_t sp;
	web_start_params_t wp;
	char err[512];
	int rc;

	if (!d->cfg.web_listen[0]) {
		ar_log(AR_LOG_INFO, "web status=off (web_listen is empty)");
		return 0;
	}
	memset(&sp, 0, sizeof sp);
	sp.data_dir = d->cfg.data_dir;
	sp.ks = d->ks;
	sp.shard_cache = (size_t)d->cfg.index_shard_cache;
	sp.open_shards = (int)d->cfg.index_open_shards;
	sp.batch_bytes = (size_t)d->cfg.index_batch_bytes;
	sp.body_max = (size_t)d->cfg.index_body_max;
	sp.terms_max = (size_t)d->cfg.index_terms_max;
	if ((rc = search_open(&d->web_search, &sp))) {
		ar_log(AR_LOG_ERR, "web search status=failed error=\"%s\"",
		    ar_strerror(rc));
		return rc;
	}
	memset(&wp, 0, sizeof wp);
	wp.listen = d->cfg.web_listen;
	wp.tls_cert = d->cfg.tls_cert;
	wp.tls_key = d->cfg.tls_key;
	wp.cfg = &d->cfg.web;
	wp.st = d->st;
	wp.idx = d->web_search;
	wp.data_dir = d->cfg.data_dir;
	if (d->relay) {
		wp.relay_queue = relay_queue;
		wp.relay_arg = d;
	}
	/* The console failing (no certificate yet, port taken) must not
	 * stop ingest: it is logged and archived runs without it. */
	if ((rc = web_start(&d->web, &wp, err, sizeof err))) {
		ar_log(AR_LOG_ERR, "web listen=%s status=failed error=\"%s\"",
		    d->cfg.web_listen, err);
		search_close(d->web_search);
		d->web_search = NULL;
		return 0;
	}
	pthread_mutex_lock(&d->digest_lock);
	d->digest_web_port = web_port(d->web);
	pthread_mutex_unlock(&d->digest_lock);
	ar_log(AR_LOG_INFO, "web listen=%s port=%u tls=%s status=ready",
	    d->cfg.web_listen, web_port(d->web), d->cfg.web.tls ? "yes" : "no");
	return 0;
}

void web_glue_stop(struct daemon *d)
{
	pthread_mutex_lock(&d->digest_lock);
	d->digest_web_port = 0;
	pthread_mutex_unlock(&d->digest_lock);
	web_stop(d->web);
	d->web = NULL;
	if (d->web_search)
		search_close(d->web_search);
	d->web_search = NULL;
}
