/*
 * config.c - the instance configuration table (see config.h).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ar.h"

#define OFF(f) offsetof(struct ar_config, f)
#define MB (1024LL * 1024)

static const struct ar_conf_def config_defs[] = {
	{ "keysvc_socket", AR_CONF_STR, OFF(keysvc_socket),
	  "../keys/keysvc.sock", 0, 0,
	  "unix socket of archive-keysvc (relative to the data directory)" },
	{ "keysvc_timeout", AR_CONF_MS, OFF(keysvc_timeout_ms), "5s", 100,
	  600000, "longest wait for one key service request" },
	{ "catalog_map_size", AR_CONF_SIZE, OFF(catalog_map_size), "64M",
	  1 * MB, 1LL << 40, "initial LMDB map size; it grows when full" },
	{ "checkpoint_entries", AR_CONF_INT, OFF(checkpoint_entries), "1000",
	  1, 10000000, "sign a tenant's log head after this many entries" },
	{ "checkpoint_interval", AR_CONF_SECONDS, OFF(checkpoint_interval),
	  "1h", 1, 86400 * 30,
	  "... or when the last checkpoint is older than this" },
	{ "default_retention_days", AR_CONF_INT, OFF(default_retention_days),
	  "2557", 1, 36500, "retention of a new tenant (2557 days: 7 years)" },
	{ "import_threads", AR_CONF_INT, OFF(import_threads), "4", 1, 64,
	  "threads sealing messages during archivectl import" },
	{ "import_batch", AR_CONF_INT, OFF(import_batch), "256", 1, 100000,
	  "messages per catalog transaction during import" },
	{ "smtp_listen", AR_CONF_STR, OFF(smtp_listen), "127.0.0.1:2525", 0,
	  0, "address:port of the SMTP receiver" },
	{ "tls_cert", AR_CONF_STR, OFF(tls_cert), "tls/cert.pem", 0, 0,
	  "TLS certificate (PEM) for STARTTLS and HTTPS" },
	{ "tls_key", AR_CONF_STR, OFF(tls_key), "tls/key.pem", 0, 0,
	  "TLS private key (PEM)" },
	{ "pipeline_workers", AR_CONF_INT, OFF(pipeline_workers), "8", 0, 64,
	  "threads draining the spool into the store (0: spool only, "
	  "nothing is drained until a restart with workers)" },
	{ "pipeline_batch", AR_CONF_INT, OFF(pipeline_batch), "64", 1, 10000,
	  "spooled messages per catalog transaction" },
	{ "pipeline_nice", AR_CONF_INT, OFF(pipeline_nice), "0", 0, 19,
	  "nice value of the pipeline threads: above 0, receiving (SMTP and "
	  "its fsyncs) comes before draining the spool into the store" },
	{ "pipeline_defer", AR_CONF_INT, OFF(pipeline_defer), "10", 0, 3600,
	  "seconds the pipeline may wait while SMTP messages keep arriving, "
	  "so that a burst is acknowledged first: no message waits longer "
	  "than this for it; 0: drain at once" },
	{ "smtp_finishers", AR_CONF_INT, OFF(smtp_finishers), "4", 1, 256,
	  "threads making received messages durable before 250, each "
	  "syncing every message queued meanwhile together" },
	{ "spool_warn_age", AR_CONF_SECONDS, OFF(spool_warn_age), "5m", 0,
	  86400 * 30, "log a warning (and show one in archivectl queue) "
	  "while the oldest message waiting in the spool is older than "
	  "this: the drain is not keeping up; 0: never" },
	{ "spool_max_age", AR_CONF_SECONDS, OFF(spool_max_age), "1h", 0,
	  86400 * 30, "back-pressure: while the oldest message waiting in "
	  "the spool is older than this, SMTP answers MAIL FROM with 451 "
	  "4.3.2 (senders retry later); 0: no limit" },
	{ "spool_max_bytes", AR_CONF_SIZE, OFF(spool_max_bytes), "8G", 0,
	  1LL << 50, "back-pressure: ... while the spool holds this many "
	  "bytes of messages not yet archived; 0: no limit" },
	{ "spool_max_entries", AR_CONF_INT, OFF(spool_max_entries), "500000",
	  0, 100000000, "back-pressure: ... while this many messages wait "
	  "(archived keeps about 160 bytes of memory per waiting message); "
	  "0: no limit" },
	{ "gateway_listen", AR_CONF_STR, OFF(gateway_listen), "", 0, 0,
	  "address:port of the filtering gateway's MX listener (the tenants' "
	  "domains; port 25 in production); empty: no gateway" },
	{ "gateway_hostname", AR_CONF_STR, OFF(gateway_hostname), "", 0, 0,
	  "name in Received: lines and DSNs (empty: smtp_hostname, else the "
	  "host's name)" },
	{ "clamd_socket", AR_CONF_STR, OFF(clamd_socket), "", 0, 0,
	  "clamd's UNIX socket (LocalSocket); empty: no antivirus" },
	{ "rspamd_url", AR_CONF_STR, OFF(rspamd_url), "", 0, 0,
	  "rspamd's normal worker, e.g. http://127.0.0.1:11333; empty: no spam, "
	  "SPF, DKIM or DMARC checks" },
	{ "gateway_scan_timeout", AR_CONF_MS, OFF(gateway_scan_timeout_ms),
	  "30s", 100, 600000, "longest wait for one scanner on one message; "
	  "past it the message is answered 451 (or accepted unscanned, per "
	  "tenant)" },
	{ "gateway_scan_workers", AR_CONF_INT, OFF(gateway_scan_workers), "16",
	  1, 256, "messages made durable and scanned at once" },
	{ "gateway_scan_memory", AR_CONF_SIZE, OFF(gateway_scan_memory), "64M",
	  0, 1LL << 40, "messages being scanned kept in memory as received, "
	  "all together at most this (the rest is read from the sealed "
	  "spool); 0: always from the spool" },
	{ "gateway_scan_memory_message", AR_CONF_SIZE,
	  OFF(gateway_scan_memory_message), "1M", 0, 1LL << 40, "larger "
	  "messages are scanned from the sealed spool" },
	{ "gateway_queue_workers", AR_CONF_INT, OFF(gateway_queue_workers),
	  "16", 1, 256, "relay queue threads: archive feed, quarantine, "
	  "delivery" },
	{ "clamd_stream_max", AR_CONF_SIZE, OFF(clamd_stream_max), "0", 0,
	  1LL << 40, "clamd's StreamMaxLength, when known: larger messages "
	  "count as too large to scan without a connection (0: learnt from "
	  "clamd's refusal)" },
	{ "rspamd_max_size", AR_CONF_SIZE, OFF(rspamd_max_size), "50M", 0,
	  1LL << 40, "larger messages are not sent to rspamd (too large to "
	  "scan)" },
	{ "gateway_dns", AR_CONF_STR, OFF(gateway_dns), "", 0, 0,
	  "addr:port of the DNS server for MX lookups (empty: the system's)" },
	{ "gateway_auth_cache", AR_CONF_SECONDS, OFF(gateway_auth_cache), "10m",
	  0, 86400, "a tenant's SMTP AUTH that succeeded passes again for "
	  "this long without the password hash's check (Argon2id, 0.1 s of "
	  "the event loop and 64 MB each); a new password or a suspended "
	  "tenant is checked in full at once; 0: check every AUTH in full" },
	{ "gateway_digest_time", AR_CONF_STR, OFF(gateway_digest_time),
	  "08:00", 0, 0, "time of day (HH:MM, UTC) of the daily quarantine "
	  "digest to each recipient of quarantined mail (tenants with the "
	  "digest on)" },
	{ "gateway_digest_url", AR_CONF_STR, OFF(gateway_digest_url), "", 0, 0,
	  "the console's address as recipients reach it, for the digest's "
	  "release links (e.g. https://archive.example.com:8443); empty: "
	  "https://<gateway_hostname>:<the console's port>" },
	{ "gateway_digest_link_ttl", AR_CONF_SECONDS,
	  OFF(gateway_digest_link_ttl), "3d", 3600, 86400 * 30,
	  "a digest's release links work this long (and once)" },
	{ "relay_retry_min", AR_CONF_SECONDS, OFF(relay_retry_min), "1m", 1,
	  86400, "first retry of a deferred delivery; it doubles ..." },
	{ "relay_retry_max", AR_CONF_SECONDS, OFF(relay_retry_max), "1h", 1,
	  86400, "... up to this" },
	{ "relay_connect_timeout", AR_CONF_MS, OFF(relay_connect_timeout_ms),
	  "30s", 100, 600000, "connecting to the tenant's server" },
	{ "relay_command_timeout", AR_CONF_MS, OFF(relay_command_timeout_ms),
	  "5m", 100, 3600000, "each reply of the tenant's server" },
	{ "relay_data_timeout", AR_CONF_MS, OFF(relay_data_timeout_ms), "10m",
	  100, 3600000, "the reply to the final dot" },
	{ "relay_max_per_host", AR_CONF_INT, OFF(relay_max_per_host), "16", 1,
	  256, "connections to one server at once" },
	{ "relay_max_bytes", AR_CONF_SIZE, OFF(relay_max_bytes), "8G", 0,
	  1LL << 50, "back-pressure: the gateway answers MAIL FROM with 451 "
	  "4.3.2 while its relay queue holds this many bytes; 0: no limit" },
	{ "relay_max_entries", AR_CONF_INT, OFF(relay_max_entries), "500000",
	  0, 100000000, "... or this many messages; 0: no limit" },
	{ "web_listen", AR_CONF_STR, OFF(web_listen), "127.0.0.1:8443", 0, 0,
	  "address:port of the HTTPS console and API (empty: no console)" },
	{ "index_nice", AR_CONF_INT, OFF(index_nice), "10", 0, 19,
	  "nice value of the indexer threads: SMTP and the pipeline come "
	  "first, the index catches up (its lag is in archivectl stats)" },
	{ "index_max_lag", AR_CONF_SECONDS, OFF(index_max_lag), "0", 0,
	  86400 * 7, "back-pressure for search: while a tenant's oldest "
	  "change not yet in its search index is this old, the journal "
	  "receiver answers MAIL FROM 451 4.3.2 (the sender retries), so "
	  "what is acknowledged is searchable within about this long; "
	  "the gateway's MX is not held back.  0: never (the index catches "
	  "up after a burst)" },
	{ "index_warn_age", AR_CONF_SECONDS, OFF(index_warn_age), "5m", 0,
	  86400 * 30, "log a warning once a minute while a tenant's oldest "
	  "change not yet in its search index is older than this (search "
	  "misses that mail until the index catches up); 0: never" },
	{ "index_shard_cache", AR_CONF_SIZE, OFF(index_shard_cache), "8M",
	  64 * 1024, 1LL << 30, "SQLite page cache one index shard "
	  "connection may fill while it writes or searches; given back when "
	  "it is done" },
	{ "index_open_shards", AR_CONF_INT, OFF(index_open_shards), "32", 1,
	  10000, "index shard files kept open for writing, and idle "
	  "connections kept for searching, each per process (the least "
	  "recently used are closed); at least the years a tenant's mail "
	  "spans keeps indexing fastest" },
	{ "index_batch_bytes", AR_CONF_SIZE, OFF(index_batch_bytes), "8M",
	  64 * 1024, 1LL << 32, "message text (and its sealed copy) one "
	  "indexer batch holds before it is written" },
	{ "index_body_max", AR_CONF_SIZE, OFF(index_body_max), "1M",
	  64 * 1024, 64LL << 20, "body text of one message the index takes "
	  "(its attachments' text included); the rest of a longer message "
	  "is archived whole but not searchable by its words.  FTS5 holds "
	  "one message's terms at once: this bounds the indexer's memory" },
	{ "index_terms_max", AR_CONF_SIZE, OFF(index_terms_max), "128K",
	  4096, 64LL << 20, "distinct index terms (words, stems, prefixes, "
	  "addresses) one field of one message gives; the field is cut "
	  "before the word that would pass it.  FTS5 keeps every distinct "
	  "term of the message it writes in memory (about 130 bytes each): "
	  "this bounds that memory whatever the text.  Prose of 1 MB has "
	  "about 60,000; applies to index shards created from now on" },
	{ "dispose_interval", AR_CONF_SECONDS, OFF(dispose_interval), "1h", 1,
	  86400 * 30, "run disposition (mail past retain-until, not held) "
	  "this often" },
	{ "dispose_batch", AR_CONF_INT, OFF(dispose_batch), "1000", 1,
	  1000000, "objects removed per disposition batch" },
	{ "tenant_auto_advance", AR_CONF_BOOL, OFF(tenant_auto_advance),
	  "yes", 0, 1, "move terminated tenants on when their windows end "
	  "(terminated -> inactive -> shredded)" },
	{ "store_backend", AR_CONF_STR, OFF(store_backend), "fs", 0, 0,
	  "object store: fs (one file per object under objects/) or s3 (S3 "
	  "Object Lock, COMPLIANCE mode: the s3_* settings)" },
	{ "s3_endpoint", AR_CONF_STR, OFF(s3_endpoint), "", 0, 0,
	  "s3: http(s)://host[:port] of the S3 service (empty: "
	  "AWS_ENDPOINT_URL)" },
	{ "s3_region", AR_CONF_STR, OFF(s3_region), "", 0, 0,
	  "s3: signing region (empty: AWS_REGION, else us-east-1)" },
	{ "s3_bucket", AR_CONF_STR, OFF(s3_bucket), "", 0, 0,
	  "s3: the bucket, created with Object Lock enabled" },
	{ "s3_prefix", AR_CONF_STR, OFF(s3_prefix), "archive", 0, 0,
	  "s3: key prefix of this archive in the bucket (tenants below it)" },
	{ "s3_url_style", AR_CONF_STR, OFF(s3_url_style), "path", 0, 0,
	  "s3: path (host/bucket/key) or virtual (bucket.host/key)" },
	{ "s3_access_key", AR_CONF_STR, OFF(s3_access_key), "", 0, 0,
	  "s3: access key id (empty: AWS_ACCESS_KEY_ID)" },
	{ "s3_secret_key", AR_CONF_STR, OFF(s3_secret_key), "", 0, 0,
	  "s3: secret key (empty: AWS_SECRET_ACCESS_KEY)" },
	{ "s3_ca_file", AR_CONF_STR, OFF(s3_ca_file), "", 0, 0,
	  "s3: CA certificates (PEM) for https (empty: the system's)" },
	{ "s3_connections", AR_CONF_INT, OFF(s3_connections), "8", 1, 256,
	  "s3: requests in parallel (one connection each)" },
	{ "s3_connect_timeout", AR_CONF_MS, OFF(s3_connect_timeout_ms), "5s",
	  100, 600000, "s3: longest wait for a connection" },
	{ "s3_timeout", AR_CONF_MS, OFF(s3_timeout_ms), "30s", 1000, 3600000,
	  "s3: an attempt that makes no progress this long fails (and is "
	  "retried)" },
	{ "s3_retries", AR_CONF_INT, OFF(s3_retries), "4", 0, 20,
	  "s3: further attempts of a request after a transient failure "
	  "(connection, timeout, 5xx, SlowDown), with backoff and jitter" },
	{ "s3_part_size", AR_CONF_SIZE, OFF(s3_part_size), "8M", 5 * MB,
	  1024 * MB, "s3: objects larger than this are sent as multipart "
	  "uploads of parts this size (memory per object being written)" },
	{ "s3_write_check", AR_CONF_BOOL, OFF(s3_write_check), "yes", 0, 1,
	  "s3: list the names around each group of puts, so that a name is "
	  "never written twice even where If-None-Match is ignored (Ceph "
	  "RGW); no: trust If-None-Match" },
	{ "s3_max_clock_skew", AR_CONF_SECONDS, OFF(s3_max_clock_skew), "2m",
	  1, 3600, "s3: refuse to start when this host's clock and the "
	  "object store's differ by more" },
};

/* The instance table: the entries above, then the SMTP engine's own table
 * with its offsets moved into struct ar_config's smtp member. */
static struct ar_conf_def all_defs[AR_ARRAY_LEN(config_defs) + 128];
static size_t n_all_defs;
static pthread_once_t defs_once = PTHREAD_ONCE_INIT;

static void defs_build(void)
{
	size_t n = 0;
	for (size_t i = 0; i < AR_ARRAY_LEN(config_defs); i++)
		all_defs[n++] = config_defs[i];
	for (size_t i = 0; i < smtp_config_ndefs &&
	    n < AR_ARRAY_LEN(all_defs); i++) {
		all_defs[n] = smtp_config_defs[i];
		all_defs[n].offset += offsetof(struct ar_config, smtp);
		n++;
	}
	for (size_t i = 0; i < web_config_ndefs &&
	    n < AR_ARRAY_LEN(all_defs); i++) {
		all_defs[n] = web_config_defs[i];
		all_defs[n].offset += offsetof(struct ar_config, web);
		n++;
	}
	n_all_defs = n;
}

static int absolutize(const char *base, char *path)
{
	char buf[AR_CONF_STR_MAX];
	if (path[0] == '/' || path[0] == '\0')
		return 0;
	if (ar_path(buf, sizeof buf, "%s/%s", base, path))
		return AR_ETOOBIG;
	ar_strlcpy(path, buf, AR_CONF_STR_MAX);
	return 0;
}

int ar_config_load(struct ar_config *cfg, const char *data_dir, char *err,
    size_t errlen)
{
	char file[PATH_MAX + 32], abs[PATH_MAX];
	int rc;

	memset(cfg, 0, sizeof *cfg);
	if (!realpath(data_dir, abs)) {
		snprintf(err, errlen, "data directory %s: %s (run archivectl "
		    "init first)", data_dir, strerror(errno));
		return AR_ENOENT;
	}
	if (strlen(abs) >= sizeof cfg->data_dir - 64) {
		snprintf(err, errlen, "data directory path too long: %s", abs);
		return AR_ECONFIG;
	}
	ar_strlcpy(cfg->data_dir, abs, sizeof cfg->data_dir);
	snprintf(file, sizeof file, "%s/%s", abs, AR_CONFIG_FILE);
	pthread_once(&defs_once, defs_build);
	rc = ar_conf_load(all_defs, n_all_defs, cfg, file, err, errlen);
	if (rc == AR_ENOENT)
		snprintf(err, errlen, "%s is missing: %s is not an archive data "
		    "directory (run archivectl init)", file, data_dir);
	if (rc)
		return rc;
	if (strcmp(cfg->store_backend, "fs") && strcmp(cfg->store_backend,
	    "s3")) {
		snprintf(err, errlen, "%s: store_backend = %s: use fs or s3",
		    file, cfg->store_backend);
		return AR_ECONFIG;
	}
	if (strcmp(cfg->s3_url_style, "path") &&
	    strcmp(cfg->s3_url_style, "virtual")) {
		snprintf(err, errlen, "%s: s3_url_style = %s: use path or "
		    "virtual", file, cfg->s3_url_style);
		return AR_ECONFIG;
	}
	if (absolutize(abs, cfg->s3_ca_file) ||
	    absolutize(abs, cfg->keysvc_socket) ||
	    absolutize(abs, cfg->tls_cert) || absolutize(abs, cfg->tls_key) ||
	    absolutize(abs, cfg->smtp.tls_cert) ||
	    absolutize(abs, cfg->smtp.tls_key)) {
		snprintf(err, errlen, "%s: a path is too long", file);
		return AR_ECONFIG;
	}
	return 0;
}

int ar_config_write_default(const char *data_dir, const char *keysvc_socket,
    char *err, size_t errlen)
{
	return ar_config_write(data_dir, keysvc_socket, NULL, err, errlen);
}

int ar_config_write(const char *data_dir, const char *keysvc_socket,
    const char *const *settings, char *err, size_t errlen)
{
	struct ar_config cfg;
	char file[4096];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	pthread_once(&defs_once, defs_build);
	if ((rc = ar_conf_defaults(all_defs, n_all_defs, &cfg, err, errlen)))
		return rc;
	if (keysvc_socket)
		ar_strlcpy(cfg.keysvc_socket, keysvc_socket,
		    sizeof cfg.keysvc_socket);
	for (size_t i = 0; settings && settings[i]; i++) {
		char name[128];
		const char *eq = strchr(settings[i], '=');
		if (!eq || (size_t)(eq - settings[i]) >= sizeof name) {
			snprintf(err, errlen, "setting '%s' is not name=value",
			    settings[i]);
			return AR_ECONFIG;
		}
		memcpy(name, settings[i], (size_t)(eq - settings[i]));
		name[eq - settings[i]] = '\0';
		if ((rc = ar_conf_set(all_defs, n_all_defs, &cfg, name, eq + 1,
		    err, errlen)))
			return rc;
	}
	if (!(f = open_memstream(&buf, &len)))
		return AR_ENOMEM;
	fprintf(f, "# archived configuration: name = value, '#' comments.\n"
	    "# Sizes take K/M/G, durations ms/s/m/h/d.  Relative paths are\n"
	    "# relative to this directory.\n\n");
	ar_conf_write(all_defs, n_all_defs, &cfg, f);
	fclose(f);
	snprintf(file, sizeof file, "%s/%s", data_dir, AR_CONFIG_FILE);
	rc = ar_file_write_atomic(file, buf, len, 0600);
	free(buf);
	if (rc)
		snprintf(err, errlen, "%s: %s", file, ar_strerror(rc));
	return rc;
}

int ar_config_path(const struct ar_config *cfg, const char *name, char *out,
    size_t outlen)
{
	return ar_path(out, outlen, "%s/%s", cfg->data_dir, name);
}

static const char *cfg_or_env(const char *v, const char *env,
    const char *env2)
{
	const char *e;
	if (v && *v)
		return v;
	if ((e = getenv(env)) && *e)
		return e;
	if (env2 && (e = getenv(env2)) && *e)
		return e;
	return "";
}

int ar_config_open_backend(const struct ar_config *cfg, store_backend_t **be,
    char *err, size_t errlen)
{
	char path[AR_CONF_STR_MAX + 16];
	store_s3_params_t p;
	int rc;

	*be = NULL;
	if (strcmp(cfg->store_backend, "s3")) {
		ar_config_path(cfg, "objects", path, sizeof path);
		if ((rc = store_backend_open_fs(be, path)))
			snprintf(err, errlen, "object store %s: %s", path,
			    ar_strerror(rc));
		return rc;
	}
	memset(&p, 0, sizeof p);
	p.endpoint = cfg_or_env(cfg->s3_endpoint, "AWS_ENDPOINT_URL_S3",
	    "AWS_ENDPOINT_URL");
	p.region = cfg_or_env(cfg->s3_region, "AWS_REGION",
	    "AWS_DEFAULT_REGION");
	p.bucket = cfg->s3_bucket;
	p.prefix = cfg->s3_prefix;
	p.virtual_host = !strcmp(cfg->s3_url_style, "virtual");
	p.access_key = cfg_or_env(cfg->s3_access_key, "AWS_ACCESS_KEY_ID",
	    NULL);
	p.secret_key = cfg_or_env(cfg->s3_secret_key,
	    "AWS_SECRET_ACCESS_KEY", NULL);
	/* a session token goes with environment credentials only */
	p.session_token = cfg->s3_access_key[0] ? "" :
	    cfg_or_env("", "AWS_SESSION_TOKEN", NULL);
	p.ca_file = cfg->s3_ca_file;
	p.connections = (int)cfg->s3_connections;
	p.connect_timeout_ms = cfg->s3_connect_timeout_ms;
	p.timeout_ms = cfg->s3_timeout_ms;
	p.retries = (int)cfg->s3_retries;
	p.part_size = (uint64_t)cfg->s3_part_size;
	p.write_check = cfg->s3_write_check;
	if (!*p.endpoint) {
		snprintf(err, errlen, "store_backend = s3 but no s3_endpoint "
		    "(nor AWS_ENDPOINT_URL) is set");
		return AR_ECONFIG;
	}
	return store_backend_open_s3(be, &p, err, errlen);
}

int ar_config_open_store(const struct ar_config *cfg, keysvc_t *ks,
    store_backend_t **be, store_t **st, char *err, size_t errlen)
{
	char path[AR_CONF_STR_MAX + 16];
	store_open_params_t p;
	int rc;

	*be = NULL;
	*st = NULL;
	if ((rc = ar_config_open_backend(cfg, be, err, errlen)))
		return rc;
	if ((rc = store_backend_check(*be, cfg->s3_max_clock_skew, NULL,
	    NULL))) {
		snprintf(err, errlen, "object store (%s bucket %s) refused: %s "
		    "(archivectl bucket check shows every check)",
		    cfg->s3_endpoint[0] ? cfg->s3_endpoint : "s3",
		    cfg->s3_bucket, store_backend_errmsg(*be));
		store_backend_close(*be);
		*be = NULL;
		return rc;
	}
	memset(&p, 0, sizeof p);
	ar_config_path(cfg, "catalog", path, sizeof path);
	p.catalog_dir = path;
	p.backend = *be;
	p.ks = ks;
	p.map_size = cfg->catalog_map_size;
	p.checkpoint_entries = (uint32_t)cfg->checkpoint_entries;
	p.checkpoint_seconds = cfg->checkpoint_interval;
	if ((rc = store_open(st, &p))) {
		snprintf(err, errlen, "catalog %s: %s", path, ar_strerror(rc));
		store_backend_close(*be);
		*be = NULL;
	}
	return rc;
}
