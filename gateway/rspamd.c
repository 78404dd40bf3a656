/*
 * rspamd.c - rspamd's /checkv2 over HTTP with libcurl.
 *
 * One easy handle per gw_rspamd_t: libcurl would keep the connection to
 * rspamd open between checks (HTTP/1.1 keep-alive), but rspamd's normal
 * worker (3.4) answers every check with "Connection: close", so each check
 * connects anew (a loopback connect, ~0.1 ms); libcurl reconnects when a
 * kept connection was closed, rewinding the body through the seek
 * callback (a fresh cursor on the source).  The envelope travels as request headers (rspamd's
 * protocol: From, Rcpt once per recipient, IP, Helo, Hostname, User,
 * Queue-Id); the body is streamed from the source with its length known,
 * never held whole.  The reply is parsed with jansson; anything but a
 * complete /checkv2 object (action, score, required_score, symbols) is an
 * error (status FAILED), which the caller treats like a scanner that is
 * down.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ar.h"
#include "gateway/scan.h"

#define REPLY_MAX (8u << 20)     /* a /checkv2 reply is a few KiB */

struct gw_rspamd {
	CURL *curl;
	gw_rspamd_conf_t c;
	char *url_check;
	char *url_ping;
	char *password;
	char curlerr[CURL_ERROR_SIZE];
	/* the request in flight */
	const gw_scan_source_t *src;
	void *cur;
	uint64_t sent;
	int source_rc;
	char *reply;
	size_t rlen, rcap;
	int reply_over;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *gw_rspamd_action_name(gw_rspamd_action_t a)
{
	switch (a) {
	case GW_RSPAMD_NO_ACTION: return "no action";
	case GW_RSPAMD_GREYLIST: return "greylist";
	case GW_RSPAMD_ADD_HEADER: return "add header";
	case GW_RSPAMD_REWRITE_SUBJECT: return "rewrite subject";
	case GW_RSPAMD_SOFT_REJECT: return "soft reject";
	case GW_RSPAMD_REJECT: return "reject";
	case GW_RSPAMD_ACTION_OTHER: return "other";
	}
	return "other";
}

static gw_rspamd_action_t action_of(const char *s)
{
	static const gw_rspamd_action_t all[] = {
		GW_RSPAMD_NO_ACTION, GW_RSPAMD_GREYLIST, GW_RSPAMD_ADD_HEADER,
		GW_RSPAMD_REWRITE_SUBJECT, GW_RSPAMD_SOFT_REJECT,
		GW_RSPAMD_REJECT,
	};
	size_t i;

	for (i = 0; i < AR_ARRAY_LEN(all); i++)
		if (strcmp(s, gw_rspamd_action_name(all[i])) == 0)
			return all[i];
	return GW_RSPAMD_ACTION_OTHER;
}

void gw_rspamd_result_clear(gw_rspamd_result_t *res)
{
	size_t i, j;

	if (!res)
		return;
	for (i = 0; i < res->nsymbols; i++) {
		free(res->symbols[i].name);
		for (j = 0; j < res->symbols[i].noptions; j++)
			free(res->symbols[i].options[j]);
		free(res->symbols[i].options);
	}
	free(res->symbols);
	free(res->action_name);
	free(res->dkim_signature);
	free(res->smtp_message);
	free(res->subject);
	memset(res, 0, sizeof *res);
}

const gw_rspamd_symbol_t *gw_rspamd_symbol(const gw_rspamd_result_t *res,
    const char *name)
{
	size_t i;

	for (i = 0; i < res->nsymbols; i++)
		if (strcmp(res->symbols[i].name, name) == 0)
			return &res->symbols[i];
	return NULL;
}

/* --- the reply ------------------------------------------------------------ */

static int bad(gw_rspamd_result_t *res, const char *what)
{
	snprintf(res->errmsg, sizeof res->errmsg,
	    "rspamd: malformed /checkv2 reply: %s", what);
	return AR_EPROTO;
}

static char *dup_str(json_t *v)
{
	return v && json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static int parse_symbol(json_t *v, const char *key, gw_rspamd_symbol_t *sym,
    gw_rspamd_result_t *res)
{
	json_t *sc, *opts, *o;
	size_t i;

	if (!json_is_object(v))
		return bad(res, "a symbol that is not an object");
	sc = json_object_get(v, "score");
	if (!json_is_number(sc))
		return bad(res, "a symbol without a numeric score");
	if (!(sym->name = strdup(key)))
		return AR_ENOMEM;
	sym->score = json_number_value(sc);
	opts = json_object_get(v, "options");
	if (!opts)
		return 0;
	if (!json_is_array(opts))
		return bad(res, "symbol options that are not a list");
	if (json_array_size(opts) == 0)
		return 0;
	if (!(sym->options = calloc(json_array_size(opts), sizeof(char *))))
		return AR_ENOMEM;
	json_array_foreach(opts, i, o) {
		if (!json_is_string(o))
			return bad(res, "a symbol option that is not a string");
		if (!(sym->options[sym->noptions] = strdup(json_string_value(o))))
			return AR_ENOMEM;
		sym->noptions++;
	}
	return 0;
}

int gw_rspamd_parse(const char *json, size_t len, gw_rspamd_result_t *res)
{
	json_error_t jerr;
	json_t *root, *v, *syms, *s;
	const char *key;
	int rc = 0;

	res->status = GW_SCAN_FAILED;
	if (!(root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr))) {
		snprintf(res->errmsg, sizeof res->errmsg,
		    "rspamd: reply is not JSON (%s at byte %d)", jerr.text,
		    jerr.position);
		return AR_EPROTO;
	}
	if (!json_is_object(root)) {
		rc = bad(res, "not an object");
		goto out;
	}
	if ((v = json_object_get(root, "error"))) {
		snprintf(res->errmsg, sizeof res->errmsg, "rspamd: error: %.200s",
		    json_is_string(v) ? json_string_value(v) : "(not a string)");
		rc = AR_EPROTO;
		goto out;
	}
	v = json_object_get(root, "action");
	if (!json_is_string(v)) {
		rc = bad(res, "no \"action\"");
		goto out;
	}
	if (!(res->action_name = strdup(json_string_value(v)))) {
		rc = AR_ENOMEM;
		goto out;
	}
	res->action = action_of(res->action_name);
	v = json_object_get(root, "score");
	if (!json_is_number(v)) {
		rc = bad(res, "no numeric \"score\"");
		goto out;
	}
	res->score = json_number_value(v);
	v = json_object_get(root, "required_score");
	if (!json_is_number(v)) {
		rc = bad(res, "no numeric \"required_score\"");
		goto out;
	}
	res->required_score = json_number_value(v);
	res->is_skipped = json_is_true(json_object_get(root, "is_skipped"));
	syms = json_object_get(root, "symbols");
	if (!json_is_object(syms)) {
		rc = bad(res, "no \"symbols\" object");
		goto out;
	}
	if (json_object_size(syms) &&
	    !(res->symbols = calloc(json_object_size(syms),
	    sizeof *res->symbols))) {
		rc = AR_ENOMEM;
		goto out;
	}
	json_object_foreach(syms, key, s) {
		rc = parse_symbol(s, key, &res->symbols[res->nsymbols], res);
		res->nsymbols++;
		if (rc)
			goto out;
	}
	v = json_object_get(root, "dkim-signature");
	if (json_is_array(v))
		v = json_array_get(v, 0);
	res->dkim_signature = dup_str(v);
	v = json_object_get(root, "messages");
	if (json_is_object(v))
		res->smtp_message = dup_str(json_object_get(v, "smtp_message"));
	res->subject = dup_str(json_object_get(root, "subject"));
	res->status = GW_SCAN_OK;
	res->errmsg[0] = '\0';
out:
	json_decref(root);
	return rc;
}

/* --- the request ------------------------------------------------------------- */

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	gw_rspamd_t *r = arg;
	size_t want = size * n, got = 0, total = 0;
	int rc;

	while (total < want) {
		rc = r->src->read(r->cur, buf + total, want - total, &got);
		if (rc) {
			r->source_rc = rc;
			return CURL_READFUNC_ABORT;
		}
		if (got == 0)
			break;
		total += got;
	}
	r->sent += total;
	if (r->sent > r->src->size || (total == 0 && r->sent < r->src->size)) {
		/* the source is not the size it said */
		r->source_rc = AR_ETRUNC;
		return CURL_READFUNC_ABORT;
	}
	return total;
}

/* libcurl rewinds the body to resend it (a kept-alive connection that
 * rspamd had closed): a fresh cursor. */
static int on_seek(void *arg, curl_off_t off, int origin)
{
	gw_rspamd_t *r = arg;
	int rc;

	if (off != 0 || origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	if (r->cur)
		r->src->close(r->cur);
	r->cur = NULL;
	r->sent = 0;
	if ((rc = r->src->open(r->src->arg, &r->cur))) {
		r->source_rc = rc;
		return CURL_SEEKFUNC_FAIL;
	}
	return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	gw_rspamd_t *r = arg;
	size_t len = size * n;

	if (r->rlen + len + 1 > REPLY_MAX) {
		r->reply_over = 1;
		return 0;          /* aborts the transfer */
	}
	if (r->rlen + len + 1 > r->rcap) {
		size_t cap = r->rcap ? r->rcap : 16384;
		char *p;
		while (cap < r->rlen + len + 1)
			cap *= 2;
		if (!(p = realloc(r->reply, cap)))
			return 0;
		r->reply = p;
		r->rcap = cap;
	}
	memcpy(r->reply + r->rlen, data, len);
	r->rlen += len;
	r->reply[r->rlen] = '\0';
	return len;
}

/* A header value from the envelope: printable, no CR/LF (header
 * injection), bounded. */
static int header_ok(const char *v)
{
	size_t n = 0;

	for (; *v; v++, n++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f || n > 1000)
			return 0;
	return 1;
}

static int add_header(struct curl_slist **h, const char *name,
    const char *value, gw_rspamd_result_t *res)
{
	char line[1100];
	struct curl_slist *n;

	if (!value)
		return 0;
	if (!header_ok(value)) {
		snprintf(res->errmsg, sizeof res->errmsg,
		    "rspamd: envelope field %s holds a control character or "
		    "is too long: not sent", name);
		return AR_EINVAL;
	}
	snprintf(line, sizeof line, "%s: %s", name, value);
	if (!(n = curl_slist_append(*h, line)))
		return AR_ENOMEM;
	*h = n;
	return 0;
}

static int envelope_headers(gw_rspamd_t *r, const gw_scan_envelope_t *env,
    struct curl_slist **h, gw_rspamd_result_t *res)
{
	size_t i;
	int rc = 0;

	/* no "Expect: 100-continue" round trip */
	if (!(*h = curl_slist_append(NULL, "Expect:")))
		return AR_ENOMEM;
	if (r->password && (rc = add_header(h, "Password", r->password, res)))
		return rc;
	if (!env)
		return 0;
	if (env->from && (rc = add_header(h, "From",
	    env->from[0] ? env->from : "<>", res)))
		return rc;
	for (i = 0; i < env->nrcpt; i++)
		if ((rc = add_header(h, "Rcpt", env->rcpt[i], res)))
			return rc;
	if ((rc = add_header(h, "IP", env->ip, res)) ||
	    (rc = add_header(h, "Helo", env->helo, res)) ||
	    (rc = add_header(h, "Hostname", env->hostname, res)) ||
	    (rc = add_header(h, "User", env->user, res)) ||
	    (rc = add_header(h, "Queue-Id", env->queue_id, res)))
		return rc;
	return 0;
}

static void set_timeouts(gw_rspamd_t *r)
{
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)r->c.connect_ms);
	curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, (long)r->c.total_ms);
}

/* Map a transfer's failure to a status, with errmsg. */
static int curl_failure(gw_rspamd_t *r, CURLcode cc, gw_rspamd_result_t *res)
{
	const char *detail = r->curlerr[0] ? r->curlerr : curl_easy_strerror(cc);

	if (r->source_rc) {
		res->source_rc = r->source_rc;
		res->status = GW_SCAN_FAILED;
		snprintf(res->errmsg, sizeof res->errmsg,
		    "rspamd: reading the message: %s",
		    ar_strerror(r->source_rc));
		return r->source_rc;
	}
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		res->status = GW_SCAN_UNAVAILABLE;
		snprintf(res->errmsg, sizeof res->errmsg, "rspamd: %.200s", detail);
		return AR_EAGAIN;
	case CURLE_OPERATION_TIMEDOUT:
		res->status = GW_SCAN_TIMEOUT;
		snprintf(res->errmsg, sizeof res->errmsg, "rspamd: %.200s", detail);
		return AR_ETIMEOUT;
	case CURLE_WRITE_ERROR:
		res->status = GW_SCAN_FAILED;
		snprintf(res->errmsg, sizeof res->errmsg, "rspamd: %.200s",
		    r->reply_over ? "reply larger than 8 MiB" : detail);
		return r->reply_over ? AR_EPROTO : AR_ENOMEM;
	default:
		res->status = GW_SCAN_FAILED;
		snprintf(res->errmsg, sizeof res->errmsg, "rspamd: %.200s", detail);
		return AR_EPROTO;
	}
}

int gw_rspamd_check(gw_rspamd_t *r, const gw_scan_source_t *src,
    const gw_scan_envelope_t *env, gw_rspamd_result_t *res)
{
	struct curl_slist *h = NULL;
	int64_t t0 = ar_mono_us();
	CURLcode cc;
	long code = 0;
	int rc;

	memset(res, 0, sizeof *res);
	r->rlen = 0;
	r->reply_over = 0;
	r->source_rc = 0;
	r->sent = 0;
	r->curlerr[0] = '\0';
	if (src->size > r->c.max_bytes) {
		res->status = GW_SCAN_TOO_LARGE;
		snprintf(res->errmsg, sizeof res->errmsg,
		    "rspamd: message of %llu bytes is larger than %llu: "
		    "not scanned", (unsigned long long)src->size,
		    (unsigned long long)r->c.max_bytes);
		rc = AR_ETOOBIG;
		goto out;
	}
	if ((rc = envelope_headers(r, env, &h, res))) {
		res->status = GW_SCAN_FAILED;
		goto out;
	}
	r->src = src;
	if ((rc = src->open(src->arg, &r->cur))) {
		res->source_rc = rc;
		res->status = GW_SCAN_FAILED;
		snprintf(res->errmsg, sizeof res->errmsg,
		    "rspamd: reading the message: %s", ar_strerror(rc));
		goto out;
	}
	curl_easy_setopt(r->curl, CURLOPT_URL, r->url_check);
	curl_easy_setopt(r->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)src->size);
	curl_easy_setopt(r->curl, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(r->curl, CURLOPT_READDATA, r);
	curl_easy_setopt(r->curl, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(r->curl, CURLOPT_SEEKDATA, r);
	set_timeouts(r);
	cc = curl_easy_perform(r->curl);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, NULL);
	if (cc != CURLE_OK) {
		rc = curl_failure(r, cc, res);
		goto out;
	}
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
	res->http_status = code;
	if (code != 200) {
		/* rspamd's errors are {"error": "..."} with a 4xx/5xx code */
		json_t *j = r->rlen ? json_loadb(r->reply, r->rlen, 0, NULL) : NULL;
		json_t *e = j ? json_object_get(j, "error") : NULL;
		snprintf(res->errmsg, sizeof res->errmsg,
		    "rspamd: HTTP %ld%s%.180s", code, e ? ": " : "",
		    e && json_is_string(e) ? json_string_value(e) : "");
		json_decref(j);
		res->status = code == 413 ? GW_SCAN_TOO_LARGE : GW_SCAN_FAILED;
		rc = code == 413 ? AR_ETOOBIG : AR_EPROTO;
		goto out;
	}
	rc = gw_rspamd_parse(r->reply ? r->reply : "", r->rlen, res);
	res->http_status = code;
out:
	if (r->cur)
		src->close(r->cur);
	r->cur = NULL;
	r->src = NULL;
	curl_slist_free_all(h);
	if (rc && res->status == GW_SCAN_OK)
		res->status = GW_SCAN_FAILED;
	if (r->rcap > (1u << 20)) {       /* do not keep a large buffer */
		free(r->reply);
		r->reply = NULL;
		r->rcap = 0;
	}
	res->dur_us = ar_mono_us() - t0;
	return rc;
}

int gw_rspamd_ping(gw_rspamd_t *r)
{
	gw_rspamd_result_t tmp;
	CURLcode cc;
	long code = 0;
	int rc = 0;

	memset(&tmp, 0, sizeof tmp);
	r->rlen = 0;
	r->reply_over = 0;
	r->source_rc = 0;
	r->curlerr[0] = '\0';
	curl_easy_setopt(r->curl, CURLOPT_URL, r->url_ping);
	curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
	set_timeouts(r);
	cc = curl_easy_perform(r->curl);
	if (cc != CURLE_OK)
		rc = curl_failure(r, cc, &tmp);
	else {
		curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
		if (code != 200 || r->rlen < 4 || strncmp(r->reply, "pong", 4))
			rc = AR_EPROTO;
	}
	return rc;
}

int gw_rspamd_new(const gw_rspamd_conf_t *conf, gw_rspamd_t **out)
{
	gw_rspamd_t *r;
	size_t ul;

	*out = NULL;
	if (!conf || !conf->url || strncmp(conf->url, "http", 4) != 0)
		return AR_EINVAL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return AR_ENOMEM;
	if (!(r = calloc(1, sizeof *r)))
		return AR_ENOMEM;
	r->c = *conf;
	if (r->c.connect_ms <= 0)
		r->c.connect_ms = 1000;
	if (r->c.total_ms <= 0)
		r->c.total_ms = 20000;
	if (r->c.max_bytes == 0)
		r->c.max_bytes = 50u << 20;
	ul = strlen(conf->url);
	while (ul && conf->url[ul - 1] == '/')
		ul--;
	if (!(r->url_check = malloc(ul + 16)) || !(r->url_ping = malloc(ul + 16)))
		goto nomem;
	snprintf(r->url_check, ul + 16, "%.*s/checkv2", (int)ul, conf->url);
	snprintf(r->url_ping, ul + 16, "%.*s/ping", (int)ul, conf->url);
	if (conf->password && !(r->password = strdup(conf->password)))
		goto nomem;
	r->c.url = r->url_check;
	r->c.password = r->password;
	if (!(r->curl = curl_easy_init()))
		goto nomem;
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->curlerr);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(r->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "archived-gateway");
	*out = r;
	return 0;
nomem:
	gw_rspamd_free(r);
	return AR_ENOMEM;
}

void gw_rspamd_free(gw_rspamd_t *r)
{
	if (!r)
		return;
	if (r->curl)
		curl_easy_cleanup(r->curl);
	free(r->url_check);
	free(r->url_ping);
	free(r->password);
	free(r->reply);
	free(r);
}
