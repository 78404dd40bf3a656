/*
 * config.h - the configuration of one archive instance, read from
 * DATADIR/archived.conf by archived and archivectl alike.  Relative paths
 * in it are relative to the data directory.
 */
#ifndef ARCHIVED_CONFIG_H
#define ARCHIVED_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "conf.h"
#include "smtp/smtp.h"
#include "keysvc/keysvc.h"
#include "store/store.h"
#include "web/web.h"

#define AR_CONFIG_FILE "archived.conf"

struct ar_config {
	char    data_dir[AR_CONF_STR_MAX];      /* absolute; not in the file */
	char    keysvc_socket[AR_CONF_STR_MAX];
	int64_t keysvc_timeout_ms;
	int64_t catalog_map_size;
	int64_t checkpoint_entries;
	int64_t checkpoint_interval;            /* seconds */
	int64_t default_retention_days;
	int64_t import_threads;
	int64_t import_batch;
	/* SMTP ingest: smtp_listen here, the engine's smtp_* limits in
	 * smtp (their table is the engine's own, smtp_config_defs) */
	char    smtp_listen[AR_CONF_STR_MAX];
	struct smtp_config smtp;
	char    tls_cert[AR_CONF_STR_MAX];
	char    tls_key[AR_CONF_STR_MAX];
	int64_t pipeline_workers;
	int64_t pipeline_batch;
	int64_t pipeline_nice;                  /* pipeline threads */
	int64_t pipeline_defer;                 /* seconds, receiving first */
	int64_t smtp_finishers;
	int64_t spool_warn_age;                 /* seconds, backlog warning */
	int64_t spool_max_age;                  /* seconds, back-pressure */
	int64_t spool_max_bytes;
	int64_t spool_max_entries;
	/* the filtering gateway (gateway.c) */
	char    gateway_listen[AR_CONF_STR_MAX];
	char    gateway_hostname[AR_CONF_STR_MAX];
	char    clamd_socket[AR_CONF_STR_MAX];
	char    rspamd_url[AR_CONF_STR_MAX];
	int64_t gateway_scan_timeout_ms;
	int64_t gateway_scan_workers;
	int64_t gateway_scan_memory, gateway_scan_memory_message;
	int64_t gateway_queue_workers;
	int64_t clamd_stream_max;
	int64_t rspamd_max_size;
	char    gateway_dns[AR_CONF_STR_MAX];
	int64_t gateway_auth_cache;
	char    gateway_digest_time[AR_CONF_STR_MAX];  /* "HH:MM" UTC */
	char    gateway_digest_url[AR_CONF_STR_MAX];
	int64_t gateway_digest_link_ttl;
	int64_t relay_retry_min, relay_retry_max;       /* seconds */
	int64_t relay_connect_timeout_ms, relay_command_timeout_ms;
	int64_t relay_data_timeout_ms;
	int64_t relay_max_per_host;
	int64_t relay_max_bytes, relay_max_entries;
	/* web console */
	char    web_listen[AR_CONF_STR_MAX];
	/* records-management jobs (issue 6) */
	int64_t index_nice;                     /* indexer threads */
	int64_t index_warn_age;                 /* seconds; 0: never */
	int64_t index_shard_cache;              /* bytes, per connection */
	int64_t index_open_shards;              /* writers; idle readers */
	int64_t index_batch_bytes;
	int64_t index_body_max;
	int64_t index_max_lag;
	int64_t index_terms_max;
	int64_t dispose_interval;               /* seconds */
	int64_t dispose_batch;
	int     tenant_auto_advance;
	/* the web module's web_* settings (its table, web_config_defs) */
	struct web_config web;
	/* object store backend: "fs" (DATADIR/objects) or "s3" */
	char    store_backend[AR_CONF_STR_MAX];
	char    s3_endpoint[AR_CONF_STR_MAX];
	char    s3_region[AR_CONF_STR_MAX];
	char    s3_bucket[AR_CONF_STR_MAX];
	char    s3_prefix[AR_CONF_STR_MAX];
	char    s3_url_style[AR_CONF_STR_MAX];   /* path | virtual */
	char    s3_access_key[AR_CONF_STR_MAX];
	char    s3_secret_key[AR_CONF_STR_MAX];
	char    s3_ca_file[AR_CONF_STR_MAX];
	int64_t s3_connections;
	int64_t s3_connect_timeout_ms;
	int64_t s3_timeout_ms;
	int64_t s3_retries;
	int64_t s3_part_size;
	int     s3_write_check;
	int64_t s3_max_clock_skew;              /* seconds */
};

/*
 * Load DATADIR/archived.conf into cfg (defaults first).  Errors name the
 * file and line.  Paths are made absolute against the data directory.
 */
int ar_config_load(struct ar_config *cfg, const char *data_dir, char *err,
    size_t errlen);
/* Write the default configuration, with help lines, to DATADIR. */
int ar_config_write_default(const char *data_dir, const char *keysvc_socket,
    char *err, size_t errlen);
/* The same, with settings (NULL-terminated "name=value" strings)
 * replacing their defaults; a bad name or value is refused (err). */
int ar_config_write(const char *data_dir, const char *keysvc_socket,
    const char *const *settings, char *err, size_t errlen);
/* Absolute path of name inside the data directory. */
int ar_config_path(const struct ar_config *cfg, const char *name, char *out,
    size_t outlen);

/*
 * Open the configured object backend only: fs (DATADIR/objects) or s3
 * (credentials from the file, else AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).  No check is made.
 */
int ar_config_open_backend(const struct ar_config *cfg, store_backend_t **be,
    char *err, size_t errlen);

/*
 * Open the instance's object backend (fs: DATADIR/objects; s3: after
 * store_backend_check, which refuses a bucket without versioning and
 * Object Lock, refused credentials or a skewed clock) and catalog
 * (DATADIR/catalog) with the configured map size and checkpoint policy.
 * ks is borrowed.  On failure err names the directory and the reason, and
 * *be / *st are left NULL (nothing to close).
 */
int ar_config_open_store(const struct ar_config *cfg, keysvc_t *ks,
    store_backend_t **be, store_t **st, char *err, size_t errlen);

#endif
