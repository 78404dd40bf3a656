/*
 * scan.c - every scanner on one message: the antivirus engines and the
 * attachment walk on the calling thread, rspamd on a companion thread (one
 * per gw_scanners_t, started once) when conf.parallel is set, so that a
 * message costs max(rspamd, engines + walk) rather than their sum.  The
 * result is complete (statuses, virus names, rspamd's action, score and
 * symbols, attachment findings, durations); what to do with it is the
 * caller's policy.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ar.h"
#include "gateway/scan.h"

struct gw_scanners {
	gw_scan_conf_t c;
	gw_rspamd_t *rspamd;
	/* the companion thread (parallel) */
	int thread_on;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;               /* 0 idle, 1 posted, 2 done */
	int quit;
	const gw_scan_source_t *src;
	const gw_scan_envelope_t *env;
	gw_rspamd_result_t *out;
};

static void *companion(void *arg)
{
	gw_scanners_t *s = arg;

	ar_thread_setup("gw-rspamd", 0);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->state != 1 && !s->quit)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->quit)
			break;
		pthread_mutex_unlock(&s->mu);
		gw_rspamd_check(s->rspamd, s->src, s->env, s->out);
		pthread_mutex_lock(&s->mu);
		s->state = 2;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int gw_scanners_new(const gw_scan_conf_t *conf, gw_scanners_t **out)
{
	gw_scanners_t *s;
	size_t i;
	int rc;

	*out = NULL;
	if (!conf || conf->nav > GW_SCAN_MAX_AV)
		return AR_EINVAL;
	for (i = 0; i < conf->nav; i++)
		if (!conf->av[i])
			return AR_EINVAL;
	if (!(s = calloc(1, sizeof *s)))
		return AR_ENOMEM;
	s->c = *conf;
	s->c.rspamd.url = NULL;
	s->c.rspamd.password = NULL;   /* copied by gw_rspamd_new */
	if (conf->rspamd.url) {
		if ((rc = gw_rspamd_new(&conf->rspamd, &s->rspamd))) {
			free(s);
			return rc;
		}
	}
	if (s->rspamd && conf->parallel) {
		pthread_mutex_init(&s->mu, NULL);
		pthread_cond_init(&s->cv, NULL);
		if (pthread_create(&s->th, NULL, companion, s) != 0) {
			pthread_mutex_destroy(&s->mu);
			pthread_cond_destroy(&s->cv);
			gw_rspamd_free(s->rspamd);
			free(s);
			return AR_ENOMEM;
		}
		s->thread_on = 1;
	}
	*out = s;
	return 0;
}

void gw_scanners_free(gw_scanners_t *s)
{
	if (!s)
		return;
	if (s->thread_on) {
		pthread_mutex_lock(&s->mu);
		s->quit = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->th, NULL);
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cv);
	}
	gw_rspamd_free(s->rspamd);
	free(s);
}

void gw_scan_result_free(gw_scan_result_t *res)
{
	size_t i;

	if (!res)
		return;
	for (i = 0; i < res->nav; i++)
		gw_av_result_clear(&res->av[i]);
	gw_rspamd_result_clear(&res->rspamd);
	gw_attach_result_clear(&res->attach);
	memset(res, 0, sizeof *res);
}

int gw_scan_message(gw_scanners_t *s, const gw_scan_source_t *src,
    const gw_scan_envelope_t *env, const gw_attach_limits_t *limits,
    gw_scan_result_t *res)
{
	int64_t t0 = ar_mono_us();
	GMimeStream *stream = NULL;
	size_t i;
	int rc = 0, src_rc = 0;

	memset(res, 0, sizeof *res);
	if (!s || !src || !src->open || !src->read || !src->close)
		return AR_EINVAL;
	if (s->thread_on) {
		pthread_mutex_lock(&s->mu);
		s->src = src;
		s->env = env;
		s->out = &res->rspamd;
		s->state = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	for (i = 0; i < s->c.nav; i++)
		gw_av_scan(s->c.av[i], src, &res->av[i]);
	res->nav = s->c.nav;
	if (src->mime_stream &&
	    !(limits && limits->max_message_bytes &&
	    src->size > limits->max_message_bytes))
		stream = src->mime_stream(src->arg, &src_rc);
	if (src->mime_stream && !stream && src_rc) {
		res->attach.status = GW_SCAN_FAILED;
		res->attach.source_rc = src_rc;
		snprintf(res->attach.errmsg, sizeof res->attach.errmsg,
		    "attachments: opening the message: %s",
		    ar_strerror(src_rc));
	} else {
		rc = gw_attach_walk(stream, src->size, limits, &res->attach);
	}
	if (stream)
		g_object_unref(stream);
	if (s->thread_on) {
		pthread_mutex_lock(&s->mu);
		while (s->state != 2)
			pthread_cond_wait(&s->cv, &s->mu);
		s->state = 0;
		s->src = NULL;
		s->env = NULL;
		s->out = NULL;
		pthread_mutex_unlock(&s->mu);
	} else if (s->rspamd) {
		gw_rspamd_check(s->rspamd, src, env, &res->rspamd);
	}
	for (i = 0; i < res->nav; i++) {
		if (res->av[i].infected)
			res->infected = 1;
		if (res->av[i].status != GW_SCAN_OK)
			res->unscanned = 1;
	}
	if (s->rspamd && res->rspamd.status != GW_SCAN_OK)
		res->unscanned = 1;
	res->dur_us = ar_mono_us() - t0;
	if (rc) {
		gw_scan_result_free(res);
		return rc;
	}
	return 0;
}

/* --- JSON ------------------------------------------------------------------- */

static const char *const reason_names[] = {
	"blocked_type", "blocked_ext", "mismatch", "encrypted", "depth",
	"limit", "damaged", "macro",
};

static int put(json_t *o, const char *k, json_t *v)
{
	return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *ms(int64_t us)
{
	return json_real((double)(us / 10) / 100.0);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *av_json(const gw_av_result_t *a)
{
	json_t *o = json_object(), *v = json_array();
	size_t i;
	int e = 0;

	if (!o || !v) {
		json_decref(o);
		json_decref(v);
		return NULL;
	}
	for (i = 0; i < a->nviruses; i++)
		e |= json_array_append_new(v, json_string(a->viruses[i]));
	e |= put(o, "engine", json_string(a->engine ? a->engine : "?"));
	e |= put(o, "status", json_string(gw_scan_status_name(a->status)));
	e |= put(o, "infected", json_boolean(a->infected));
	e |= put(o, "viruses", v);
	e |= put(o, "ms", ms(a->dur_us));
	if (a->status != GW_SCAN_OK && a->errmsg[0])
		e |= put(o, "error", json_string(a->errmsg));
	if (e) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *rspamd_json(const gw_rspamd_result_t *r)
{
	json_t *o = json_object(), *syms = json_object();
	size_t i, j;
	int e = 0;

	if (!o || !syms) {
		json_decref(o);
		json_decref(syms);
		return NULL;
	}
	e |= put(o, "status", json_string(gw_scan_status_name(r->status)));
	if (r->status == GW_SCAN_OK) {
		e |= put(o, "action", json_string(r->action_name ?
		    r->action_name : gw_rspamd_action_name(r->action)));
		e |= put(o, "score", json_real(r->score));
		e |= put(o, "required", json_real(r->required_score));
		e |= put(o, "skipped", json_boolean(r->is_skipped));
		for (i = 0; i < r->nsymbols; i++) {
			json_t *s = json_object(), *op = json_array();
			if (!s || !op) {
				json_decref(s);
				json_decref(op);
				e = -1;
				break;
			}
			for (j = 0; j < r->symbols[i].noptions; j++)
				e |= json_array_append_new(op,
				    json_string(r->symbols[i].options[j]));
			e |= put(s, "score", json_real(r->symbols[i].score));
			if (json_array_size(op))
				e |= put(s, "options", op);
			else
				json_decref(op);
			e |= put(syms, r->symbols[i].name, s);
		}
		if (r->smtp_message)
			e |= put(o, "smtp_message", json_string(r->smtp_message));
	} else if (r->errmsg[0]) {
		e |= put(o, "error", json_string(r->errmsg));
	}
	e |= put(o, "symbols", syms);
	e |= put(o, "ms", ms(r->dur_us));
	if (e) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *attach_json(const gw_attach_result_t *a)
{
	json_t *o = json_object(), *fs = json_array();
	size_t i, b;
	int e = 0;

	if (!o || !fs) {
		json_decref(o);
		json_decref(fs);
		return NULL;
	}
	e |= put(o, "status", json_string(gw_scan_status_name(a->status)));
	e |= put(o, "too_large", json_boolean(a->too_large));
	e |= put(o, "blocked", json_boolean(a->blocked));
	e |= put(o, "encrypted", json_boolean(a->encrypted));
	e |= put(o, "macro", json_boolean(a->macro));
	e |= put(o, "incomplete", json_boolean(a->incomplete));
	e |= put(o, "truncated", json_boolean(a->truncated));
	e |= put(o, "parts", json_integer(a->parts));
	e |= put(o, "archives", json_integer(a->archives));
	e |= put(o, "entries", json_integer(a->entries));
	for (i = 0; i < a->nfindings; i++) {
		const gw_attach_finding_t *f = &a->findings[i];
		json_t *j = json_object(), *rs = json_array();
		if (!j || !rs) {
			json_decref(j);
			json_decref(rs);
			e = -1;
			break;
		}
		for (b = 0; b < AR_ARRAY_LEN(reason_names); b++)
			if (f->reasons & (1u << b))
				e |= json_array_append_new(rs,
				    json_string(reason_names[b]));
		e |= put(j, "path", json_string(f->path));
		e |= put(j, "filename", str_or_null(f->filename));
		e |= put(j, "declared", str_or_null(f->declared));
		e |= put(j, "type", json_string(gw_ftype_name(f->real)));
		e |= put(j, "reasons", rs);
		e |= put(j, "depth", json_integer(f->depth));
		e |= put(j, "size", json_integer((json_int_t)f->size));
		e |= json_array_append_new(fs, j);
	}
	e |= put(o, "findings", fs);
	e |= put(o, "ms", ms(a->dur_us));
	if (a->status != GW_SCAN_OK && a->errmsg[0])
		e |= put(o, "error", json_string(a->errmsg));
	if (e) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *gw_scan_result_json(const gw_scan_result_t *res)
{
	json_t *o = json_object(), *av = json_array();
	char *out = NULL;
	size_t i;
	int e = 0;

	if (!o || !av) {
		json_decref(o);
		json_decref(av);
		return NULL;
	}
	for (i = 0; i < res->nav; i++)
		e |= json_array_append_new(av, av_json(&res->av[i]));
	e |= put(o, "av", av);
	e |= put(o, "rspamd", rspamd_json(&res->rspamd));
	e |= put(o, "attach", attach_json(&res->attach));
	e |= put(o, "infected", json_boolean(res->infected));
	e |= put(o, "unscanned", json_boolean(res->unscanned));
	e |= put(o, "ms", ms(res->dur_us));
	if (!e)
		out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
		    JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
	json_decref(o);
	return out;
}
