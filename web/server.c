/*
 * server.c - the HTTP(S) server: settings, listening, request bodies and
 * limits, security headers, dispatch to the API areas and static files.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "ar.h"
#include "mime/mime.h"
#include "web_priv.h"

#define OFF(f) offsetof(struct web_config, f)

const struct ar_conf_def web_config_defs[] = {
	{ "web_tls", AR_CONF_BOOL, OFF(tls), "yes", 0, 0,
	  "HTTPS with tls_cert/tls_key; 'no' serves plain HTTP and is "
	  "refused unless web_listen is a loopback address" },
	{ "web_max_body", AR_CONF_SIZE, OFF(max_body), "1M", 1024,
	  64LL << 20, "largest request body accepted (413 beyond)" },
	{ "web_request_timeout", AR_CONF_SECONDS, OFF(request_timeout), "30s",
	  1, 3600, "a connection idle this long is closed" },
	{ "web_body_timeout", AR_CONF_SECONDS, OFF(body_timeout), "30s", 1,
	  3600, "a request body must have arrived this long after its "
	  "request began (the connection is closed beyond)" },
	{ "web_max_connections", AR_CONF_INT, OFF(max_connections), "256", 1,
	  65536, "connections served at once" },
	{ "web_per_ip_connections", AR_CONF_INT, OFF(per_ip_connections), "64",
	  1, 65536, "connections at once from one client address" },
	{ "web_threads", AR_CONF_INT, OFF(threads), "4", 1, 256,
	  "threads serving requests" },
	{ "web_session_idle", AR_CONF_SECONDS, OFF(session_idle), "30m", 1,
	  86400, "a session unused this long expires" },
	{ "web_session_max", AR_CONF_SECONDS, OFF(session_max), "12h", 1,
	  86400 * 7, "a session expires this long after sign-in, used or not" },
	{ "web_max_sessions", AR_CONF_INT, OFF(max_sessions), "10000", 1,
	  1000000, "sessions at once (the oldest is dropped beyond)" },
	{ "web_login_slow_after", AR_CONF_INT, OFF(login_slow_after), "3", 1,
	  1000, "failed sign-ins of one user before each next attempt must "
	  "wait (2 s, doubling up to 64 s)" },
	{ "web_login_lock_after", AR_CONF_INT, OFF(login_lock_after), "10", 1,
	  1000, "failed sign-ins of one user that lock the account" },
	{ "web_lockout", AR_CONF_SECONDS, OFF(lockout), "15m", 1, 86400 * 30,
	  "how long a locked account stays locked (or until an admin "
	  "unlocks it)" },
	{ "web_export_jobs", AR_CONF_INT, OFF(export_jobs), "1", 1, 16,
	  "export jobs of the console/API running at once (worker threads)" },
	{ "web_export_queue", AR_CONF_INT, OFF(export_queue), "64", 1, 4096,
	  "export jobs kept at once, queued, running or done (503 beyond)" },
	{ "web_export_keep", AR_CONF_SECONDS, OFF(export_keep), "7d", 60,
	  86400 * 365, "a finished export's ZIP file is deleted this long "
	  "after it was made" },
};
const size_t web_config_ndefs = AR_ARRAY_LEN(web_config_defs);

/* --- responses --------------------------------------------------------- */

/* TLS 1.2 and 1.3 only; in 1.2 only forward-secret (ECDHE) key exchange
 * with AEAD ciphers (AES-GCM, ChaCha20-Poly1305): GnuTLS priorities. */
#define WEB_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
	"-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

#define CSP_DEFAULT "default-src 'self'; script-src 'self'; " \
	"style-src 'self'; img-src 'self' data:; frame-src 'self'; " \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; " \
	"form-action 'self'; frame-ancestors 'none'"

int web_reply(struct web_req *r, unsigned status, struct MHD_Response *resp,
    const char *csp)
{
	int ret;
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Security-Policy",
	    csp ? csp : CSP_DEFAULT);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy",
	    "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy",
	    "same-origin");
	MHD_add_response_header(resp, "Permissions-Policy",
	    "camera=(), microphone=(), geolocation=()");
	if (!csp)
		MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	if (r->w->tls)
		MHD_add_response_header(resp, "Strict-Transport-Security",
		    "max-age=31536000; includeSubDomains");
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->status = (int)status;
	return ret;
}

int web_reply_json(struct web_req *r, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	struct MHD_Response *resp;
	json_decref(j);
	if (!s)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(s), s,
	    MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
	    "application/json; charset=utf-8");
	return web_reply(r, status, resp, NULL);
}

int web_reply_error(struct web_req *r, unsigned status, const char *code,
    const char *msg, json_t *extra)
{
	json_t *e = extra ? extra : json_object();
	json_object_set_new(e, "code", json_string(code));
	json_object_set_new(e, "message", json_string(msg));
	return web_reply_json(r, status, json_pack("{s:o}", "error", e));
}

const char *web_arg(struct web_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

int web_arg_days(struct web_req *r, long *days)
{
	const char *a = web_arg(r, "days");
	char *end;
	long d;

	*days = 30;
	if (!a)
		return 0;
	d = strtol(a, &end, 10);
	if (*end || end == a || d < 1 || d > 366) {
		web_reply_error(r, 400, "bad_request", "days: 1..366", NULL);
		return 1;
	}
	*days = d;
	return 0;
}

json_t *web_body_json(struct web_req *r)
{
	const char *ct = MHD_lookup_connection_value(r->conn,
	    MHD_HEADER_KIND, "Content-Type");
	json_error_t jerr;
	json_t *j;
	char msg[300];

	if (!ct || strncmp(ct, "application/json", 16)) {
		web_reply_error(r, 415, "unsupported_media_type",
		    "send the body as application/json", NULL);
		return NULL;
	}
	j = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (!j || !json_is_object(j)) {
		snprintf(msg, sizeof msg, "the body is not a JSON object%s%s",
		    j ? "" : ": ", j ? "" : jerr.text);
		json_decref(j);
		web_reply_error(r, 400, "bad_json", msg, NULL);
		return NULL;
	}
	return j;
}

/* --- dispatch ---------------------------------------------------------- */

static int dispatch(struct web_req *r)
{
	const char *url = r->url;
	int rc;

	if (strncmp(url, "/api/v1/", 8) == 0) {
		const char *path = url + 8;
		if ((rc = web_api_session(r, path)) != AR_ENOENT ||
		    (rc = web_api_mail(r, path)) != AR_ENOENT ||
		    (rc = web_api_audit(r, path)) != AR_ENOENT ||
		    (rc = web_api_admin(r, path)) != AR_ENOENT ||
		    (rc = web_api_holds(r, path)) != AR_ENOENT ||
		    (rc = web_api_exports(r, path)) != AR_ENOENT ||
		    (rc = web_api_quarantine(r, path)) != AR_ENOENT ||
		    (rc = web_api_relay(r, path)) != AR_ENOENT)
			return rc;
		return web_reply_error(r, 404, "no_such_endpoint",
		    "no such API endpoint (see docs/api.md)", NULL);
	}
	if (strncmp(url, "/api/", 5) == 0)
		return web_reply_error(r, 404, "no_such_endpoint",
		    "API versions: /api/v1/", NULL);
	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
		return web_reply_error(r, 405, "method_not_allowed",
		    "static files are read with GET", NULL);
	return web_static_serve(r, url);
}

static void client_addr(struct MHD_Connection *c, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	ar_strlcpy(out, "?", len);
	if (!sa)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    out, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
		    (socklen_t)len);
}

/* Does the raw URL carry an escaped NUL (%00)?  libmicrohttpd would
 * unescape it and hand over a path or argument cut at it. */
static int has_escaped_nul(const char *uri)
{
	for (const char *p = uri; p && (p = strchr(p, '%')); p++)
		if (p[1] == '0' && p[2] == '0')
			return 1;
	return 0;
}

/* libmicrohttpd's first look at a request: the raw URL, before it is
 * unescaped.  The request record made here is the handler's *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct web_req *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->w = cls;
	r->conn = conn;
	r->start_us = ar_mono_us();
	r->bad_url = has_escaped_nul(uri);
	r->raw_uri = uri;
	r->raw_uri_len = uri ? strlen(uri) : 0;
	return r;
}

static void set_timeout(struct web_req *r, int64_t secs)
{
	if (secs < 1)
		secs = 1;
	if (secs > r->w->cfg.request_timeout)
		secs = r->w->cfg.request_timeout;
	MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT,
	    (unsigned int)secs);
}

/* The headers are in: refuse at once what cannot be served (a NUL in
 * the URL, a declared body over web_max_body) and start the body's
 * clock.  0 to go on, or the MHD result of the answer given. */
static int headers_in(struct web_req *r, const char *version)
{
	struct web *w = r->w;
	const char *cl = MHD_lookup_connection_value(r->conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = MHD_lookup_connection_value(r->conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);

	/* A raw NUL byte in the request line cuts the URL that on_uri saw:
	 * libmicrohttpd (0.9.7x) parses the line in place, the URL ending
	 * at the space before the version, so the version string starts
	 * right after the URL unless a NUL stopped the URL short.  (Only
	 * checked when the version lies just past the URL in the same
	 * buffer.) */
	if (!r->bad_url && r->raw_uri && version && version > r->raw_uri &&
	    (size_t)(version - r->raw_uri) <= 2 * 65536 &&
	    version != r->raw_uri + r->raw_uri_len + 1)
		r->bad_url = 1;
	if (r->bad_url)
		return web_reply_error(r, 400, "bad_url", "the URL holds a NUL "
		    "byte (%00 or raw)", NULL);
	if (cl) {
		char *end;
		unsigned long long n;
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno || end == cl || *end || n > (unsigned long long)
		    w->cfg.max_body) {
			r->too_big = 1;
			return web_reply_error(r, 413, "too_large", "the request "
			    "body is over web_max_body", NULL);
		}
	}
	r->body_deadline_us = r->start_us + w->cfg.body_timeout * 1000000;
	if ((cl && strcmp(cl, "0")) || te) {
		r->in_body = 1;
		set_timeout(r, w->cfg.body_timeout);
	}
	return 0;
}

static void log_body_timeout(struct web_req *r)
{
	ar_log(AR_LOG_INFO, "web method=%s status=body_timeout client=%s "
	    "bytes=%zu", r->method ? r->method : "?", r->client, r->body_len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
    const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_size, void **con_cls)
{
	struct web *w = cls;
	struct web_req *r = *con_cls;
	int ret;

	if (!r) {       /* on_uri could not allocate */
		if (!(r = calloc(1, sizeof *r)))
			return MHD_NO;
		r->w = w;
		r->conn = conn;
		r->start_us = ar_mono_us();
		*con_cls = r;
	}
	if (!r->seen) {
		r->seen = 1;
		r->method = method;
		r->url = url;
		client_addr(conn, r->client, sizeof r->client);
		if ((ret = headers_in(r, version))) {
			web_audit_flush(r);
			return ret == MHD_YES ? MHD_YES : MHD_NO;
		}
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		int64_t now = ar_mono_us();
		*upload_size = 0;
		if (now >= r->body_deadline_us) {
			r->in_body = 0;
			log_body_timeout(r);
			return MHD_NO;   /* closes the connection */
		}
		set_timeout(r, (r->body_deadline_us - now + 999999) / 1000000);
		if (r->too_big || r->body_len + n > (size_t)w->cfg.max_body) {
			r->too_big = 1;
			return MHD_YES;
		}
		char *nb = realloc(r->body, r->body_len + n + 1);
		if (!nb)
			return MHD_NO;
		r->body = nb;
		memcpy(r->body + r->body_len, upload, n);
		r->body_len += n;
		r->body[r->body_len] = '\0';
		return MHD_YES;
	}
	r->in_body = 0;
	set_timeout(r, w->cfg.request_timeout);
	if (r->too_big)
		ret = web_reply_error(r, 413, "too_large",
		    "the request body is over web_max_body", NULL);
	else if (r->body && memchr(r->body, '\0', r->body_len))
		ret = web_reply_error(r, 400, "bad_body",
		    "the body holds a NUL byte", NULL);
	else
		ret = dispatch(r);
	web_audit_flush(r);
	return ret == MHD_YES ? MHD_YES : MHD_NO;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct web_req *r = *con_cls;
	(void)cls;
	(void)conn;
	if (!r)
		return;
	if (r->method)
		ar_log(AR_LOG_DEBUG, "web method=%s path=%s status=%d client=%s "
		    "dur_ms=%lld", r->method, r->url, r->status, r->client,
		    (long long)((ar_mono_us() - r->start_us) / 1000));
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->method)
		ar_log(AR_LOG_DEBUG, "web path=%s end=%d", r->url, (int)toe);
	/* the connection's timeout, shortened to what was left of
	 * web_body_timeout, ended a body that was still coming */
	if (r->in_body && toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
		log_body_timeout(r);
	web_audit_flush(r);
	if (r->body) {
		sodium_memzero(r->body, r->body_len);   /* passwords */
		free(r->body);
	}
	sodium_memzero(&r->sess, sizeof r->sess);
	free(r);
	*con_cls = NULL;
}

/* --- listening ----------------------------------------------------------- */

static int parse_listen(const char *hostport, struct sockaddr_storage *ss,
    socklen_t *sl, int *loopback, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints, *ai = NULL;
	size_t hl;
	int rc;

	if (!colon || colon == hostport) {
		snprintf(err, errlen, "web_listen %s: use address:port",
		    hostport);
		return AR_ECONFIG;
	}
	hl = (size_t)(colon - hostport);
	if (hostport[0] == '[' && hl >= 2 && hostport[hl - 1] == ']') {
		hostport++;
		hl -= 2;
	}
	if (hl >= sizeof host) {
		snprintf(err, errlen, "web_listen %s: host too long", hostport);
		return AR_ECONFIG;
	}
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &ai)) || !ai) {
		snprintf(err, errlen, "web_listen %s: %s", hostport,
		    gai_strerror(rc));
		return AR_ECONFIG;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	if (ss->ss_family == AF_INET)
		*loopback = (ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr)
		    >> 24) == 127;
	else
		*loopback = IN6_IS_ADDR_LOOPBACK(
		    &((struct sockaddr_in6 *)ss)->sin6_addr);
	return 0;
}

static char *read_pem(const char *path, char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	size_t len;
	int rc = ar_file_read(path, 1 << 20, &buf, &len);
	if (rc) {
		snprintf(err, errlen, "%s: %s", path, rc == AR_EIO ?
		    strerror(errno) : ar_strerror(rc));
		return NULL;
	}
	char *s = realloc(buf, len + 1);
	if (!s) {
		sodium_memzero(buf, len);
		free(buf);
		return NULL;
	}
	s[len] = '\0';
	return s;
}

static void free_pem(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

int web_start(web_t **out, const web_start_params_t *p, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int loopback = 0, rc;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;
	struct web *w;

	*out = NULL;
	if ((rc = parse_listen(p->listen, &ss, &sl, &loopback, err, errlen)))
		return rc;
	if (!p->cfg->tls && !loopback) {
		snprintf(err, errlen, "web_tls = no is allowed only on a "
		    "loopback address, not %s", p->listen);
		return AR_ECONFIG;
	}
	if (!(w = calloc(1, sizeof *w)))
		return AR_ENOMEM;
	w->cfg = *p->cfg;
	w->st = p->st;
	w->relay_queue = p->relay_queue;
	w->relay_arg = p->relay_arg;
	w->idx = p->idx;
	w->tls = p->cfg->tls;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->login_lock, NULL);
	if ((rc = web_sessions_init(w))) {
		web_stop(w);
		return rc;
	}
	if ((rc = web_exports_init(w, p->data_dir, err, errlen))) {
		web_stop(w);
		return rc;
	}
	mime_init();   /* GMime, for message views */
	if (w->tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errlen, "libmicrohttpd was built without "
			    "TLS");
			web_stop(w);
			return AR_ECONFIG;
		}
		if (!(w->cert_pem = read_pem(p->tls_cert, err, errlen)) ||
		    !(w->key_pem = read_pem(p->tls_key, err, errlen))) {
			web_stop(w);
			return AR_ECONFIG;
		}
		flags |= MHD_USE_TLS;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	w->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, w,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, w,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, w,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)w->cfg.request_timeout,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)w->cfg.max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)w->cfg.per_ip_connections,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)w->cfg.threads,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)128 * 1024,
	    w->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, w->cert_pem,
	    MHD_OPTION_HTTPS_MEM_KEY, w->key_pem,
	    MHD_OPTION_HTTPS_PRIORITIES, WEB_TLS_PRIORITIES,
	    MHD_OPTION_END);
	if (!w->mhd) {
		snprintf(err, errlen, "cannot listen on %s (in use, or bad "
		    "certificate)", p->listen);
		web_stop(w);
		return AR_EIO;
	}
	di = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_BIND_PORT);
	w->port = di ? di->port : 0;
	*out = w;
	return 0;
}

unsigned web_port(const web_t *w)
{
	return w->port;
}

void web_stop(web_t *w)
{
	if (!w)
		return;
	if (w->mhd)
		MHD_stop_daemon(w->mhd);
	web_exports_free(w);
	web_sessions_free(w);
	free_pem(w->cert_pem);
	free_pem(w->key_pem);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->login_lock);
	free(w);
}
