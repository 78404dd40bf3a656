/*
 * judge.c - the gateway's scan workers: what happens between a message's
 * final dot and its answer.
 *
 * For each message received (mx.c): make it durable in the relay queue
 * (spool_put_finish: sealed, fdatasync'd, not yet queued for delivery),
 * scan it from there (gw_scan_message: clamd, rspamd and the attachment
 * walk read their own sealed cursors; no plaintext on disk, memory
 * bounded), judge the findings by the tenant's policy (verdict.c), then
 *   - reject or tempfail: remove the entry, answer 5xx / 451;
 *   - accept: outgoing mail to be delivered is DKIM-signed with the
 *     tenant's key of its From: domain, if it has one (dkim_out.c; the
 *     key service down: 451); write the state record (verdict, the
 *     DKIM-Signature, recipients pending, the archive feed and quarantine
 *     to do) - durable, and only then queued for the relay queue's
 *     workers - and answer 250.
 * A crash before the state record leaves an entry without one: removed at
 * the next start (the client had no 250 and sends it again).
 */
#include <string.h>

#include "ar.h"
#include "gateway/gw_int.h"
#include "gateway/scan.h"

static const char *scan_status_text(gw_scan_status_t s)
{
	return gw_scan_status_name(s);
}

static int scan_status_rc(gw_scan_status_t s)
{
	switch (s) {
	case GW_SCAN_TIMEOUT:   return AR_ETIMEOUT;
	case GW_SCAN_TOO_LARGE: return AR_ETOOBIG;
	case GW_SCAN_FAILED:    return AR_EPROTO;
	default:                return AR_EAGAIN;
	}
}

/* What the scanners found, in the terms of verdict.c. */
static void findings_of(const gw_scan_result_t *r, gw_findings_t *f)
{
	memset(f, 0, sizeof *f);
	for (size_t i = 0; i < r->nav; i++) {
		const gw_av_result_t *a = &r->av[i];
		if (a->status != GW_SCAN_OK) {
			if (!f->av_status) {
				f->av_status = scan_status_rc(a->status);
				snprintf(f->av_error, sizeof f->av_error,
				    "%s %s", a->engine,
				    scan_status_text(a->status));
			}
			continue;
		}
		for (size_t k = 0; k < a->nviruses; k++) {
			size_t n = strlen(f->virus);
			snprintf(f->virus + n, sizeof f->virus - n, "%s%s",
			    n ? ", " : "", a->viruses[k]);
		}
		f->infected |= a->infected;
	}
	if (r->rspamd.status == GW_SCAN_OK) {
		f->score = r->rspamd.score;
		ar_strlcpy(f->rspamd_action, r->rspamd.action_name ?
		    r->rspamd.action_name : gw_rspamd_action_name(
		    r->rspamd.action), sizeof f->rspamd_action);
		f->symbols = json_object();
		for (size_t i = 0; i < r->rspamd.nsymbols; i++)
			json_object_set_new(f->symbols, r->rspamd.symbols[i].name,
			    json_real(r->rspamd.symbols[i].score));
		f->dmarc_reject = gw_rspamd_symbol(&r->rspamd,
		    "DMARC_POLICY_REJECT") != NULL;
	} else if (r->rspamd.status != GW_SCAN_NOT_RUN) {
		f->spam_status = scan_status_rc(r->rspamd.status);
		snprintf(f->spam_error, sizeof f->spam_error, "rspamd %s",
		    scan_status_text(r->rspamd.status));
	}
	f->blocked = r->attach.blocked;
	f->encrypted = r->attach.encrypted;
	if (r->attach.nfindings)
		f->attachments = json_array();
	for (size_t i = 0; i < r->attach.nfindings; i++) {
		const gw_attach_finding_t *a = &r->attach.findings[i];
		json_t *o = json_pack("{s:s, s:s, s:i, s:I}", "path",
		    a->path ? a->path : "", "type", gw_ftype_name(a->real),
		    "reasons", (int)a->reasons, "size", (json_int_t)a->size);
		if (a->filename)
			json_object_set_new(o, "filename",
			    json_string(a->filename));
		json_array_append_new(f->attachments, o);
		if (f->blocked && !f->blocked_what[0] && (a->reasons &
		    (GW_ATT_BLOCKED_TYPE | GW_ATT_BLOCKED_EXT)))
			snprintf(f->blocked_what, sizeof f->blocked_what,
			    "%s%s", gw_ftype_name(a->real), a->reasons &
			    GW_ATT_BLOCKED_EXT ? " (by name)" : "");
	}
}

/* A value for a quoted log field: quotes, backslashes, control and
 * non-ASCII bytes (a scanner's garbage) become '?'. */
static void log_safe(char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ||
		    (unsigned char)*s >= 0x7f)
			*s = '?';
}

/* Why the scanners that gave no verdict gave none, in their words
 * ("rspamd: HTTP 500: ...", "clamd: unexpected reply ..."), for the
 * status=unscanned line. */
static void unscanned_detail(const gw_scan_result_t *r, int rc, char *out,
    size_t len)
{
	size_t n;

	out[0] = '\0';
	if (rc) {
		snprintf(out, len, "scan: %s", ar_strerror(rc));
		return;
	}
	for (size_t i = 0; i < r->nav; i++)
		if (r->av[i].status != GW_SCAN_OK) {
			n = strlen(out);
			snprintf(out + n, len - n, "%s%s", n ? "; " : "",
			    r->av[i].errmsg[0] ? r->av[i].errmsg :
			    r->av[i].engine);
		}
	if (r->rspamd.status != GW_SCAN_OK &&
	    r->rspamd.status != GW_SCAN_NOT_RUN) {
		n = strlen(out);
		snprintf(out + n, len - n, "%s%s", n ? "; " : "",
		    r->rspamd.errmsg[0] ? r->rspamd.errmsg : "rspamd");
	}
	log_safe(out);
}

static void reply_failure(struct mx_job *j, int rc)
{
	if (rc == AR_ENOSPC)
		smtp_session_reply(j->tok, 452, "4.3.1", "Insufficient system "
		    "storage");
	else
		smtp_session_reply(j->tok, 451, "4.3.0", "Local error, try "
		    "again later");
}

/* The state record of an accepted message. */
static char *state_text(const json_t *verdict, const json_t *rcpts,
    int quarantine, const char *dkim)
{
	json_t *list = json_array(), *r, *st;
	size_t i;
	char *text;

	json_array_foreach(rcpts, i, r)
		json_array_append_new(list, json_pack("{s:O, s:s, s:i}", "addr",
		    r, "state", "pending", "attempts", 0));
	st = json_pack("{s:O, s:s, s:s, s:o, s:I}", "verdict", verdict,
	    "archive", "pending", "quarantine", quarantine ? "pending" :
	    "none", "rcpts", list, "created", (json_int_t)ar_now());
	if (st && dkim)              /* the signature of outgoing mail */
		json_object_set_new(st, "dkim", json_string(dkim));
	text = st ? json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(st);
	return text;
}

static void judge(gateway_t *g, gw_scanners_t *sc, struct mx_job *j)
{
	gw_scan_source_t src;
	gw_scan_envelope_t se;
	gw_scan_result_t res;
	gw_attach_limits_t lim;
	gw_findings_t f;
	gw_verdict_t v;
	const char *rcpts[256];
	json_t *jrcpts = json_object_get(j->env, "rcpt_to"), *vj = NULL;
	uint8_t id[SPOOL_ID_LEN];
	char hex[33], th[33], *env = NULL, *state = NULL, text[64], err[128];
	char detail[600], score[32];
	char *dkim = NULL;
	const char *dir;
	size_t nr = 0;
	int rc, scan_rc, from_memory;

	ar_hex(j->t.id, STORE_TENANT_LEN, th);
	if (j->too_big) {
		spool_put_abort(j->put);
		j->put = NULL;
		smtp_session_reply(j->tok, 552, "5.3.4", "Message size exceeds "
		    "the recipient's limit");
		return;
	}
	if (j->status || !(env = json_dumps(j->env, JSON_COMPACT |
	    JSON_SORT_KEYS))) {
		ar_log(AR_LOG_WARN, "gateway session=%s status=deferred "
		    "reason=\"%s\"", j->session, ar_strerror(j->status ?
		    j->status : AR_ENOMEM));
		reply_failure(j, j->status);
		return;
	}
	/* 1. durable, not yet queued (no state record) */
	rc = spool_put_finish(j->put, env, id);
	j->put = NULL;
	free(env);
	if (rc) {
		ar_log(AR_LOG_WARN, "gateway session=%s status=deferred "
		    "reason=\"%s\"", j->session, spool_errmsg());
		reply_failure(j, rc);
		return;
	}
	ar_hex(id, SPOOL_ID_LEN, hex);
	/* 2. scan */
	for (size_t i = 0; i < json_array_size(jrcpts) && nr < 256; i++)
		rcpts[nr++] = json_string_value(json_array_get(jrcpts, i));
	memset(&se, 0, sizeof se);
	se.from = json_string_value(json_object_get(j->env, "mail_from"));
	se.rcpt = rcpts;
	se.nrcpt = nr;
	se.ip = json_string_value(json_object_get(j->env, "client_ip"));
	se.helo = json_string_value(json_object_get(j->env, "helo"));
	se.user = json_string_value(json_object_get(j->env, "auth_user"));
	se.queue_id = hex;
	memset(&lim, 0, sizeof lim);
	lim.max_message_bytes = j->t.gw.max_size;
	if (gw_ftype_parse_set(j->t.gw.blocked_types, &lim.blocked_types, err,
	    sizeof err))
		lim.blocked_types = GW_FT_DEFAULT_BLOCKED;
	memset(&res, 0, sizeof res);
	memset(&f, 0, sizeof f);
	/* a copy given up is freed (NULL); one cut short by a spool write
	 * error is shorter than the message */
	from_memory = j->copy && j->copy_len == j->bytes;
	if ((rc = from_memory ? gw_scan_source_mem(&src, j->copy, j->copy_len) :
	    gw_scan_source_spool(&src, g->rq, j->t.id, id)) == 0) {
		rc = gw_scan_message(sc, &src, &se, &lim, &res);
		gw_scan_source_done(&src);
	}
	gw_job_copy_drop(j);
	scan_rc = rc;
	if (rc) {
		/* nothing could be scanned: as when the scanners are down */
		f.av_status = f.spam_status = rc;
		snprintf(f.av_error, sizeof f.av_error, "scan: %s",
		    ar_strerror(rc));
		ar_strlcpy(f.spam_error, f.av_error, sizeof f.spam_error);
	} else {
		findings_of(&res, &f);
	}
	/* 3. judge */
	gw_verdict_judge(g->st, &j->t, se.from, jrcpts, &f, &v);
	vj = gw_verdict_json(&v, &f);
	/* 4. outgoing mail to be delivered: DKIM-signed (dkim_out.c) */
	dir = json_string_value(json_object_get(j->env, "direction"));
	if (!v.tempfail && v.action != STORE_GW_REJECT &&
	    v.action != STORE_GW_QUARANTINE && dir &&
	    !strcmp(dir, "outbound") &&
	    (rc = gw_dkim_outbound(g, &j->t, id, hex, &dkim))) {
		v.tempfail = 1;
		v.code = 451;
		ar_strlcpy(v.enhanced, "4.3.0", sizeof v.enhanced);
		ar_strlcpy(v.text, "Message could not be signed, try again "
		    "later", sizeof v.text);
	}
	if (v.tempfail || v.action == STORE_GW_REJECT) {
		spool_remove(g->rq, j->t.id, id);
		smtp_session_reply(j->tok, v.code, v.enhanced, v.text);
	} else if (!vj || !(state = state_text(vj, jrcpts,
	    v.action == STORE_GW_QUARANTINE, dkim)) ||
	    (rc = spool_state_set(g->rq, j->t.id, id, j->t.key_version,
	    state))) {
		spool_remove(g->rq, j->t.id, id);
		ar_log(AR_LOG_WARN, "gateway id=%s status=deferred reason=\"%s\"",
		    hex, state ? spool_errmsg() : "out of memory");
		reply_failure(j, state ? rc : AR_ENOMEM);
		v.code = 451;
	} else {
		snprintf(text, sizeof text, "Ok: queued as %s", hex);
		smtp_session_reply(j->tok, 250, "2.0.0", text);
		v.code = 250;
		if (v.action != STORE_GW_QUARANTINE)
			gw_stats_relay(g, j->t.id, STORE_RS_QUEUED,
			    json_array_size(jrcpts));
		gw_queue_wake(g);
	}
	/* the virus names as one quoted value (clamd's text: nothing that
	 * would end the quotes or the line) */
	log_safe(f.virus);
	gw_stats_count(g, j->t.id, v.kind, v.action, v.tempfail ||
	    v.code == 451);
	/* no score when rspamd gave none ("-", not a number) */
	if (f.spam_status)
		ar_strlcpy(score, "-", sizeof score);
	else
		snprintf(score, sizeof score, "%.2f", f.score);
	ar_log(v.code == 250 ? AR_LOG_INFO : AR_LOG_WARN, "gateway id=%s "
	    "tenant=%s session=%s verdict=%s action=%s reply=%d score=%s "
	    "virus=%s%s%s%s size=%llu scan_ms=%lld scanned_from=%s "
	    "dur_ms=%lld", hex, th,
	    j->session, v.kind, v.tempfail ? "tempfail" :
	    store_gw_action_name(v.action), v.code, score,
	    f.infected ? "yes" : "no",
	    f.infected ? " virus_name=\"" : "", f.infected ? f.virus : "",
	    f.infected ? "\"" : "", (unsigned long long)j->bytes,
	    (long long)res.dur_us / 1000, from_memory ? "memory" : "spool",
	    (long long)(ar_mono_us() - j->started_us) / 1000);
	if (f.av_status || f.spam_status) {
		unscanned_detail(&res, scan_rc, detail, sizeof detail);
		ar_log(AR_LOG_WARN, "gateway id=%s status=unscanned "
		    "antivirus=\"%s\" spam=\"%s\" detail=\"%s\"", hex,
		    f.av_status ? f.av_error : "ok", f.spam_status ?
		    f.spam_error : "ok", detail);
	}
	free(state);
	free(dkim);
	json_decref(vj);
	gw_verdict_clear(&v);
	gw_findings_clear(&f);
	gw_scan_result_free(&res);
}

static void *judge_main(void *arg)
{
	gateway_t *g = arg;
	gw_scanners_t *sc = NULL;
	gw_scan_conf_t conf;
	int rc;

	ar_thread_setup("ar-gw-scan", 0);
	memset(&conf, 0, sizeof conf);
	if (g->av)
		conf.av[conf.nav++] = g->av;
	if (g->rspamd_url[0]) {
		conf.rspamd.url = g->rspamd_url;
		conf.rspamd.total_ms = (int)g->o.scan_timeout_ms;
		conf.rspamd.max_bytes = g->o.rspamd_max_bytes;
	}
	conf.parallel = 1;
	if ((rc = gw_scanners_new(&conf, &sc)))
		ar_log(AR_LOG_ERR, "gateway status=no_scanners reason=\"%s\" "
		    "note=\"every message is answered 451\"", ar_strerror(rc));
	pthread_mutex_lock(&g->lock);
	for (;;) {
		struct mx_job *j = g->head;
		if (!j) {
			if (g->stopping)
				break;
			pthread_cond_wait(&g->cond, &g->lock);
			continue;
		}
		g->head = j->next;
		if (!g->head)
			g->tail = NULL;
		pthread_mutex_unlock(&g->lock);
		if (sc)
			judge(g, sc, j);
		else
			smtp_session_reply(j->tok, 451, "4.7.1", "Message could "
			    "not be scanned, try again later");
		gw_job_free(j);
		pthread_mutex_lock(&g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	gw_scanners_free(sc);
	return NULL;
}

int gw_judge_start(gateway_t *g)
{
	if (g->clamd_socket[0]) {
		gw_clamd_conf_t cc;
		int rc;
		memset(&cc, 0, sizeof cc);
		cc.socket = g->clamd_socket;
		cc.total_ms = (int)g->o.scan_timeout_ms;
		cc.io_ms = (int)g->o.scan_timeout_ms;
		cc.stream_max = g->o.clamd_stream_max;
		if ((rc = gw_clamd_new(&cc, &g->av)))
			return rc;
	} else {
		ar_log(AR_LOG_WARN, "gateway status=no_antivirus note=\"no "
		    "clamd_socket: mail is not scanned for viruses\"");
	}
	if (!g->rspamd_url[0])
		ar_log(AR_LOG_WARN, "gateway status=no_spam_filter note=\"no "
		    "rspamd_url: no spam, SPF, DKIM or DMARC checks\"");
	g->nscan = g->o.scan_workers > 0 ? g->o.scan_workers : 16;
	if (!(g->scan_threads = calloc((size_t)g->nscan,
	    sizeof *g->scan_threads)))
		return AR_ENOMEM;
	for (int i = 0; i < g->nscan; i++)
		if (pthread_create(&g->scan_threads[i], NULL, judge_main, g)) {
			g->nscan = i;
			return AR_ENOMEM;
		}
	return 0;
}

void gw_judge_submit(gateway_t *g, struct mx_job *j)
{
	pthread_mutex_lock(&g->lock);
	j->next = NULL;
	if (g->tail)
		g->tail->next = j;
	else
		g->head = j;
	g->tail = j;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void gw_judge_stop(gateway_t *g)
{
	pthread_mutex_lock(&g->lock);
	g->stopping = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	for (int i = 0; i < g->nscan; i++)
		pthread_join(g->scan_threads[i], NULL);
	free(g->scan_threads);
	g->scan_threads = NULL;
	g->nscan = 0;
	gw_av_close(g->av);
	g->av = NULL;
}
