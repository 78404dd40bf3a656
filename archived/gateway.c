/*
 * gateway.c - archived's filtering gateway: the relay queue (a stateful
 * spool in DATA/relay), the gateway on gateway_listen with its scan and
 * relay threads, fed into the ingest spool for the archive.  Off when
 * gateway_listen is empty.
 */
#include <stdio.h>
#include <string.h>

#include "ar.h"
#include "daemon.h"

static void archive_wake(void *arg)
{
	struct daemon *d = arg;
	if (d->pipeline)
		ingest_pipeline_wake(d->pipeline);
}

static void *gateway_main(void *arg)
{
	struct daemon *d = arg;
	int rc;

	pthread_setname_np(pthread_self(), "ar-gateway");
	if ((rc = gateway_run(d->gateway)))
		ar_log(AR_LOG_ERR, "gateway status=stopped error=\"%s\"",
		    ar_strerror(rc));
	return NULL;
}

int gateway_glue_start(struct daemon *d)
{
	const struct ar_config *c = &d->cfg;
	struct smtp_config smtp = c->smtp;
	gateway_opts_t o;
	char path[AR_CONF_STR_MAX + 16], err[512] = "";
	int rc;

	if (!c->gateway_listen[0]) {
		ar_log(AR_LOG_INFO, "gateway status=off (gateway_listen is "
		    "empty)");
		return 0;
	}
	{
		unsigned hh, mm;
		char end;
		if (sscanf(c->gateway_digest_time, "%u:%u%c", &hh, &mm,
		    &end) != 2 || hh > 23 || mm > 59 ||
		    strlen(c->gateway_digest_time) != 5) {
			ar_log(AR_LOG_ERR, "gateway error=\"gateway_digest_time "
			    "'%s': give HH:MM (UTC), e.g. 08:00\"",
			    c->gateway_digest_time);
			return AR_ECONFIG;
		}
		d->digest_offset = (int64_t)hh * 3600 + (int64_t)mm * 60;
	}
	ar_config_path(c, "relay", path, sizeof path);
	if ((rc = spool_open_flags(&d->relay, path, d->ks, SPOOL_STATEFUL))) {
		ar_log(AR_LOG_ERR, "relay queue dir=%s error=\"%s\"", path,
		    spool_errmsg());
		return rc;
	}
	smtp_tls_default(c, &smtp);
	memset(&o, 0, sizeof o);
	o.hostname = c->gateway_hostname;
	o.clamd_socket = c->clamd_socket;
	o.rspamd_url = c->rspamd_url;
	o.scan_timeout_ms = c->gateway_scan_timeout_ms;
	o.clamd_stream_max = (uint64_t)c->clamd_stream_max;
	o.rspamd_max_bytes = (uint64_t)c->rspamd_max_size;
	o.scan_workers = (int)c->gateway_scan_workers;
	o.scan_mem_max = (uint64_t)c->gateway_scan_memory;
	o.scan_mem_message = (uint64_t)c->gateway_scan_memory_message;
	o.queue_workers = (int)c->gateway_queue_workers;
	o.archive = d->spool;
	o.archive_wake = archive_wake;
	o.archive_wake_arg = d;
	o.max_backlog_age = c->spool_max_age;
	o.max_backlog_bytes = (uint64_t)c->relay_max_bytes;
	o.max_backlog_entries = (uint64_t)c->relay_max_entries;
	o.retry_min = c->relay_retry_min;
	o.retry_max = c->relay_retry_max;
	o.relay_connect_timeout_ms = c->relay_connect_timeout_ms;
	o.relay_command_timeout_ms = c->relay_command_timeout_ms;
	o.relay_data_timeout_ms = c->relay_data_timeout_ms;
	o.relay_max_per_host = (int)c->relay_max_per_host;
	o.dns_server = c->gateway_dns;
	o.auth_cache_ttl = c->gateway_auth_cache;
	if ((rc = gateway_new(&d->gateway, d->st, d->relay, &smtp, &o, err,
	    sizeof err)) ||
	    (rc = gateway_listen(d->gateway, c->gateway_listen,
	    &d->gateway_port, err, sizeof err))) {
		ar_log(AR_LOG_ERR, "gateway error=\"%s\"", err);
		return rc;
	}
	if (pthread_create(&d->gateway_thread, NULL, gateway_main, d))
		return AR_ENOMEM;
	d->gateway_running = 1;
	pthread_mutex_lock(&d->digest_lock);
	d->digest_gw = d->gateway;
	pthread_mutex_unlock(&d->digest_lock);
	ar_log(AR_LOG_INFO, "gateway listen=%s port=%u starttls=%s clamd=%s "
	    "rspamd=%s status=ready", c->gateway_listen, d->gateway_port,
	    smtp.tls_cert[0] ? "yes" : "no", c->clamd_socket[0] ? "yes" : "no",
	    c->rspamd_url[0] ? "yes" : "no");
	return 0;
}

void gateway_glue_stop(struct daemon *d)
{
	pthread_mutex_lock(&d->digest_lock);      /* the digest job is done */
	d->digest_gw = NULL;
	pthread_mutex_unlock(&d->digest_lock);
	if (d->gateway_running) {
		gateway_stop(d->gateway);
		pthread_join(d->gateway_thread, NULL);
		d->gateway_running = 0;
	}
	gateway_free(d->gateway);
	d->gateway = NULL;
	spool_close(d->relay);
	d->relay = NULL;
}
