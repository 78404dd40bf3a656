/*
 * pipeline.c - drain the spool into the store.
 *
 * Workers claim spool entries, unwrap journal reports (journal.c) reading
 * the spooled message through a GMime stream over its sealed object (no
 * plaintext on disk), seal every original with a receipt (spool entry id
 * and part number), commit a batch of entries in one catalog transaction,
 * then remove the entries from the spool.  A crash anywhere replays: a
 * receipt already committed changes nothing, so every message is stored
 * exactly once.  An entry that fails is marked (spool_mark_failed) and
 * retried with a growing delay; it stays visible in archivectl queue.
 *
 * Work comes from the spool's drain queue (spool_claim): no walk of the
 * spool, whatever the backlog.  While entries wait, a line reports the
 * backlog every 10 s, as a warning once its oldest entry is older than
 * opts.backlog_warn.
 */
#include <gmime/gmime.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ar.h"
#include "mime/mime.h"
#include "ingest/ingest.h"
#include "ingest/journal.h"
#include "spool/spool.h"

#define PEEK (64 * 1024)
#define MAX_PARTS 255
#define QUIET_US  200000    /* no arrival for this long: receiving paused */
#define REPORT_US 10000000  /* a backlog line this often while one waits */

struct ingest_pipeline {
	store_t *st;
	spool_t *sp;
	ingest_pipeline_opts_t o;
	pthread_t *threads;
	int nthreads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stopping, wake;
	int64_t last_arrival_us;    /* ingest_pipeline_wake: a message spooled */
	int deferring;              /* workers wait for receiving to pause */
	int64_t last_report_us;     /* the last backlog line */
	int reported;               /* a backlog was reported, not its end */
	uint64_t stored, duplicates, failed;
};

/* --- scheduling ------------------------------------------------------------ */

/* Seconds to wait after the count-th failure: 30 s doubling, 1 h at most. */
static int64_t backoff(uint32_t count)
{
	int64_t d = 30;
	while (count-- > 1 && d < 3600)
		d *= 2;
	return d < 3600 ? d : 3600;
}

/*
 * Receiving first (pipeline_defer): while messages keep arriving (one in
 * the last QUIET_US), draining waits, so that a burst is acknowledged at
 * the rate of the spool alone; but never once the oldest waiting entry has
 * waited `defer` seconds, so every message reaches the catalog at most that
 * much later than it would have.  Microseconds to wait, or 0 (lock held).
 */
static int64_t defer_us(ingest_pipeline_t *p)
{
	spool_queue_info_t qi;
	int64_t quiet, due;

	if (p->o.defer <= 0)
		return 0;
	quiet = p->last_arrival_us + QUIET_US - ar_mono_us();
	if (quiet <= 0)
		return 0;
	spool_queue_info(p->sp, 0, &qi);
	if (!qi.ready)
		return 0;
	due = (qi.oldest_ready + p->o.defer - ar_now()) * 1000000;
	if (due <= 0)
		return 0;
	return quiet < due ? quiet : due;
}

/*
 * Every REPORT_US while entries wait, one line with the backlog: how many,
 * how old the oldest, and a warning once it is older than backlog_warn
 * seconds (the drain is not keeping up); one line when it is gone (lock
 * held).
 */
static void report(ingest_pipeline_t *p)
{
	spool_queue_info_t qi;
	int64_t now = ar_mono_us();
	int warn;

	if (now - p->last_report_us < REPORT_US)
		return;
	p->last_report_us = now;
	spool_queue_info(p->sp, 1, &qi);
	if (qi.ready + qi.retrying + qi.claimed == 0) {
		if (p->reported)
			ar_log(AR_LOG_INFO, "pipeline status=drained stored=%llu "
			    "duplicates=%llu failed=%llu",
			    (unsigned long long)p->stored,
			    (unsigned long long)p->duplicates,
			    (unsigned long long)p->failed);
		p->reported = 0;
		return;
	}
	p->reported = 1;
	warn = p->o.backlog_warn > 0 && qi.backlog_age >= p->o.backlog_warn;
	ar_log(warn ? AR_LOG_WARN : AR_LOG_INFO, "pipeline status=backlog "
	    "waiting=%llu inflight=%llu failing=%llu bytes=%llu "
	    "oldest_age_s=%lld oldest_failing_age_s=%lld%s",
	    (unsigned long long)(qi.ready + qi.retrying),
	    (unsigned long long)qi.claimed, (unsigned long long)qi.retrying,
	    (unsigned long long)qi.bytes, (long long)qi.backlog_age,
	    (long long)(qi.oldest_retrying ? ar_now() - qi.oldest_retrying :
	    0), warn ? " note=\"the drain is not keeping up with what is "
	    "received\"" : "");
}

/* Wait on the condition until wait_us from now at most (lock held). */
static void wait_cond(ingest_pipeline_t *p, int64_t wait_us)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_us / 1000000;
	until.tv_nsec += (wait_us % 1000000) * 1000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&p->cond, &p->lock, &until);
}

/* --- one original ------------------------------------------------------------ */

static int stream_read_cb(void *arg, void *buf, size_t len, size_t *got)
{
	GMimeStream *s = arg;
	ssize_t n;

	*got = 0;
	if (g_mime_stream_eos(s))
		return 0;
	n = g_mime_stream_read(s, buf, len);
	if (n < 0)
		return g_mime_stream_eos(s) ? 0 : AR_EIO;
	*got = (size_t)n;
	return 0;
}

/* The stream of original i (or of the whole message when i < 0). */
static GMimeStream *original_stream(GMimeStream *msg, const journal_t *j,
    long i)
{
	const struct journal_original *o;
	GMimeStream *sub, *f;
	GMimeFilter *dec;
	GMimeContentEncoding enc;

	if (i < 0) {
		g_object_ref(msg);
		g_mime_stream_reset(msg);
		return msg;
	}
	o = journal_original(j, (size_t)i);
	sub = g_mime_stream_substream(msg, o->offset, o->offset + o->length);
	if (!sub || o->encoding == JOURNAL_ENC_NONE)
		return sub;
	enc = o->encoding == JOURNAL_ENC_BASE64 ? GMIME_CONTENT_ENCODING_BASE64
	    : o->encoding == JOURNAL_ENC_QP ?
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE :
	    GMIME_CONTENT_ENCODING_UUENCODE;
	f = g_mime_stream_filter_new(sub);
	g_object_unref(sub);
	dec = g_mime_filter_basic_new(enc, FALSE);
	g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), dec);
	g_object_unref(dec);
	return f;
}

static json_t *envelope_of(const journal_t *j)
{
	const journal_envelope_t *e = journal_envelope(j);
	json_t *o = json_object(), *r = json_array(), *f = json_array();
	const char *v;

	if (!e)
		return o;
#define PUT(name, fn) if ((v = fn(e))) \
	json_object_set_new(o, name, json_string(v))
	PUT("sender", journal_env_sender);
	PUT("subject", journal_env_subject);
	PUT("message_id", journal_env_message_id);
	PUT("on_behalf_of", journal_env_on_behalf_of);
#undef PUT
	for (size_t i = 0; i < journal_env_recipient_count(e); i++) {
		const struct journal_recipient *x =
		    journal_env_recipient(e, i);
		json_t *a = json_object();
		json_object_set_new(a, "address", json_string(x->address));
		json_object_set_new(a, "type",
		    json_string(journal_rcpt_type_name(x->type)));
		if (x->expanded_from)
			json_object_set_new(a, "expanded_from",
			    json_string(x->expanded_from));
		if (x->forwarded_from)
			json_object_set_new(a, "forwarded_from",
			    json_string(x->forwarded_from));
		json_array_append_new(r, a);
	}
	for (size_t i = 0; i < journal_env_field_count(e); i++) {
		const struct journal_field *x = journal_env_field(e, i);
		json_t *a = json_object();
		json_object_set_new(a, "name", json_string(x->name));
		json_object_set_new(a, "value", json_string(x->value));
		json_array_append_new(f, a);
	}
	json_object_set_new(o, "recipients", r);
	json_object_set_new(o, "fields", f);
	return o;
}

/* Meta JSON of original i: where it came from, its envelope, how it was
 * unwrapped.  Returned as an object the caller releases. */
/* Was the entry spooled by the gateway (mail from outside)? */
static int from_gateway(const json_t *smtp)
{
	const char *s = json_string_value(json_object_get(smtp, "source"));
	return s && !strcmp(s, "gateway");
}

static json_t *meta_extra(const journal_t *j, long i, json_t *smtp,
    const char *first_sha, const char *first_mid)
{
	json_t *x = json_object(), *env, *gm = json_array(), *flags;
	enum journal_kind kind = journal_kind(j);
	unsigned fl = journal_flags(j);
	int gateway = from_gateway(smtp);

	/* mail the gateway received from outside carries its verdict; none
	 * of its headers is trusted as an envelope */
	json_object_set_new(x, "source", json_string(gateway ? "gateway" :
	    "smtp"));
	json_object_set_new(x, "journal", json_string(journal_kind_name(kind)));
	json_object_set(x, "smtp", smtp);
	if (gateway)
		json_object_set(x, "gateway", json_object_get(smtp, "gateway"));
	for (size_t k = 0; !gateway && k < journal_gm_original_to_count(j); k++)
		json_array_append_new(gm, json_string(journal_gm_original_to(j,
		    k)));
	if (kind == JOURNAL_PLAIN) {
		/* Google copies and BCC copies: the SMTP envelope, and the
		 * original recipients Google names */
		env = json_object();
		json_t *r = json_array();
		for (size_t k = 0; k < json_array_size(gm); k++) {
			json_t *a = json_object();
			json_object_set(a, "address", json_array_get(gm, k));
			json_object_set_new(a, "type", json_string("recipient"));
			json_array_append_new(r, a);
		}
		json_object_set(env, "sender", json_object_get(smtp,
		    "mail_from"));
		json_object_set_new(env, "recipients", r);
	} else {
		env = envelope_of(j);
	}
	json_object_set_new(x, "envelope", env);
	json_object_set_new(x, "gm_original_to", gm);
	flags = json_array();
	for (unsigned b = 1; b; b <<= 1)
		if ((fl & b) && journal_flag_name(b))
			json_array_append_new(flags,
			    json_string(journal_flag_name(b)));
	json_object_set_new(x, "unwrap_flags", flags);
	if (journal_reason(j))
		json_object_set_new(x, "unwrap_error",
		    json_string(journal_reason(j)));
	if (i > 0 && first_sha) {
		json_t *l = json_object();
		json_object_set_new(l, "sha256", json_string(first_sha));
		if (first_mid)
			json_object_set_new(l, "message_id",
			    json_string(first_mid));
		json_object_set_new(x, "linked_to", l);
	}
	return x;
}

struct entry {
	spool_ref_t c;
	size_t slots[MAX_PARTS + 1];
	size_t nslots;
	int status;                  /* first failure, 0 if none */
	char why[256];
};

/* Seal every original of one entry into the batch. */
static void add_entry(ingest_pipeline_t *p, store_batch_t *b,
    struct entry *en)
{
	store_tenant_t t;
	store_reader_t *r = NULL;
	GMimeStream *whole, *msg = NULL;
	uint64_t msg_len = 0;
	journal_t *j = NULL;
	json_t *smtp = NULL;
	struct journal_opts jo;
	char *env = NULL, first_sha[65] = "", first_mid[512] = "";
	size_t nparts;
	int rc;

	if ((rc = store_tenant_get_id(p->st, en->c.tenant, &t))) {
		snprintf(en->why, sizeof en->why, "tenant: %s",
		    ar_strerror(rc));
		goto out;
	}
	if ((rc = spool_open_entry(p->sp, en->c.tenant, en->c.id, &r,
	    &msg_len, &env))) {
		snprintf(en->why, sizeof en->why, "spool: %s", spool_errmsg());
		goto out;
	}
	if (!(smtp = json_loads(env, 0, NULL)))
		smtp = json_object();
	if (!(whole = mime_sealed_stream_new(r, 1))) {
		store_reader_close(r);
		rc = AR_ENOMEM;
		goto out;
	}
	/* the message without the envelope that follows it */
	msg = g_mime_stream_substream(whole, 0, (gint64)msg_len);
	g_object_unref(whole);
	if (!msg) {
		rc = AR_ENOMEM;
		goto out;
	}
	journal_opts_default(&jo);
	jo.plain_only = from_gateway(smtp);
	if ((rc = journal_parse(msg, &jo, &j))) {
		snprintf(en->why, sizeof en->why, "parse: %s", ar_strerror(rc));
		goto out;
	}
	nparts = journal_kind(j) == JOURNAL_PLAIN ? 1 :
	    journal_original_count(j);
	if (nparts > MAX_PARTS)
		nparts = MAX_PARTS;
	for (size_t i = 0; i < nparts; i++) {
		long idx = journal_kind(j) == JOURNAL_PLAIN ? -1 : (long)i;
		GMimeStream *s = original_stream(msg, j, idx);
		unsigned char peek[PEEK], receipt[SPOOL_ID_LEN + 1];
		store_ingest_t m;
		size_t npeek = 0;
		json_t *extra;
		char *extra_s, hex[65];
		int parsed;

		if (!s) {
			rc = AR_ENOMEM;
			break;
		}
		memset(&m, 0, sizeof m);
		if ((rc = mime_digest(stream_read_cb, s, m.plain_sha256, peek,
		    sizeof peek, &npeek))) {
			rc = mime_sealed_stream_status(msg) ?
			    mime_sealed_stream_status(msg) : rc;
			snprintf(en->why, sizeof en->why, "reading part %zu: %s",
			    i, ar_strerror(rc));
			g_object_unref(s);
			break;
		}
		ar_hex(m.plain_sha256, 32, hex);
		extra = meta_extra(j, idx, smtp, i ? first_sha : NULL,
		    first_mid[0] ? first_mid : NULL);
		extra_s = json_dumps(extra, JSON_COMPACT);
		json_decref(extra);
		m.tenant = &t;
		m.received = json_integer_value(json_object_get(smtp,
		    "arrived_unix"));
		if (m.received <= 0)
			m.received = ar_now();
		m.meta = mime_header_summary(peek, npeek, extra_s, &parsed);
		free(extra_s);
		m.flags = (journal_kind(j) != JOURNAL_PLAIN ? STORE_OBJ_JOURNAL
		    : 0) | (i > 0 ? STORE_OBJ_LINKED : 0) |
		    (journal_reason(j) || !parsed ? STORE_OBJ_UNPARSED : 0);
		memcpy(receipt, en->c.id, SPOOL_ID_LEN);
		receipt[SPOOL_ID_LEN] = (unsigned char)i;
		m.receipt = receipt;
		m.receipt_len = sizeof receipt;
		g_mime_stream_reset(s);
		m.read = stream_read_cb;
		m.read_arg = s;
		rc = store_batch_add(b, &m, &en->slots[en->nslots]);
		free((char *)m.meta);
		g_object_unref(s);
		if (rc) {
			snprintf(en->why, sizeof en->why, "%s",
			    store_errmsg(p->st));
			break;
		}
		en->nslots++;
		if (i == 0) {
			const char *mid = journal_kind(j) == JOURNAL_PLAIN ? NULL
			    : journal_original(j, 0)->message_id;
			ar_strlcpy(first_sha, hex, sizeof first_sha);
			if (mid)
				ar_strlcpy(first_mid, mid, sizeof first_mid);
		}
	}
out:
	en->status = rc;
	if (j)
		journal_free(j);
	if (msg)
		g_object_unref(msg);
	json_decref(smtp);
	free(env);
}

/* Process claimed entries: one batch, one commit. */
static void process(ingest_pipeline_t *p, struct entry *es, size_t n)
{
	store_batch_t *b;
	char hex[33], thex[33];
	int64_t t0 = ar_mono_us();
	int rc;

	if ((rc = store_batch_begin(p->st, &b))) {
		ar_log(AR_LOG_WARN, "pipeline status=retry entries=%zu "
		    "reason=\"batch: %s\"", n, store_errmsg(p->st));
		for (size_t i = 0; i < n; i++)
			spool_claim_retry(p->sp, &es[i].c,
			    ar_now() + backoff(es[i].c.failures + 1));
		return;
	}
	for (size_t i = 0; i < n; i++)
		add_entry(p, b, &es[i]);
	rc = store_batch_commit(b);
	if (rc == 0 && p->o.committed)
		p->o.committed(p->o.committed_arg);
	for (size_t i = 0; i < n; i++) {
		struct entry *en = &es[i];
		ar_hex(en->c.id, SPOOL_ID_LEN, hex);
		ar_hex(en->c.tenant, SPOOL_TENANT_LEN, thex);
		if (rc && !en->status) {
			en->status = rc;
			snprintf(en->why, sizeof en->why, "commit: %s",
			    store_errmsg(p->st));
		}
		for (size_t k = 0; !en->status && k < en->nslots; k++) {
			const store_ingest_result_t *res =
			    store_batch_result(b, en->slots[k]);
			char ohex[33];
			if (res->status) {
				en->status = res->status;
				snprintf(en->why, sizeof en->why, "part %zu: %s",
				    k, ar_strerror(res->status));
				break;
			}
			ar_log(AR_LOG_INFO, "id=%s tenant=%s status=%s spool=%s "
			    "size=%llu dur_ms=%lld",
			    ar_hex(res->id, STORE_ID_LEN, ohex), thex,
			    res->replayed ? "replayed" : res->duplicate ?
			    "duplicate" : "stored", hex,
			    (unsigned long long)res->info.plain_size,
			    (long long)(ar_mono_us() - t0) / 1000);
			pthread_mutex_lock(&p->lock);
			if (res->duplicate)
				p->duplicates++;
			else
				p->stored++;
			pthread_mutex_unlock(&p->lock);
		}
		if (en->status == 0) {
			spool_claim_done(p->sp, &en->c);
			continue;
		}
		ar_log(AR_LOG_WARN, "spool=%s tenant=%s status=retry "
		    "attempts=%u retry_in_s=%lld reason=\"%s\"", hex, thex,
		    en->c.failures + 1, (long long)backoff(en->c.failures + 1),
		    en->why);
		spool_mark_failed(p->sp, en->c.tenant, en->c.id, en->why);
		spool_claim_retry(p->sp, &en->c,
		    ar_now() + backoff(en->c.failures + 1));
		pthread_mutex_lock(&p->lock);
		p->failed++;
		pthread_mutex_unlock(&p->lock);
	}
	store_batch_free(b);
}

static void *worker_main(void *arg)
{
	ingest_pipeline_t *p = arg;
	size_t max = p->o.batch > 0 ? (size_t)p->o.batch : 64;
	spool_ref_t *c = calloc(max, sizeof *c);
	struct entry *es = calloc(max, sizeof *es);

	ar_thread_setup("ar-pipeline", p->o.nice);

	if (!c || !es) {
		free(c);
		free(es);
		return NULL;
	}
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		int64_t wait;
		size_t n;

		report(p);
		if ((wait = defer_us(p)) > 0) {
			p->deferring = 1;
			wait_cond(p, wait);
			continue;
		}
		p->deferring = 0;
		p->wake = 0;
		pthread_mutex_unlock(&p->lock);
		n = spool_claim(p->sp, c, max);
		pthread_mutex_lock(&p->lock);
		if (n == 0) {
			/* a message spooled meanwhile sets wake: look again;
			 * else sleep until woken, or a second for failed
			 * entries coming due */
			if (!p->wake && !p->stopping)
				wait_cond(p, 1000000);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		memset(es, 0, n * sizeof *es);
		for (size_t i = 0; i < n; i++)
			es[i].c = c[i];
		process(p, es, n);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	free(c);
	free(es);
	return NULL;
}

int ingest_pipeline_start(ingest_pipeline_t **out, store_t *st, spool_t *sp,
    const ingest_pipeline_opts_t *o)
{
	ingest_pipeline_t *p = calloc(1, sizeof *p);

	*out = NULL;
	if (!p)
		return AR_ENOMEM;
	mime_init();
	p->st = st;
	p->sp = sp;
	p->o = *o;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->nthreads = o->workers > 0 ? o->workers : 1;
	if (!(p->threads = calloc((size_t)p->nthreads, sizeof *p->threads))) {
		free(p);
		return AR_ENOMEM;
	}
	for (int i = 0; i < p->nthreads; i++)
		if (pthread_create(&p->threads[i], NULL, worker_main, p)) {
			p->nthreads = i;
			ingest_pipeline_stop(p);
			return AR_ENOMEM;
		}
	*out = p;
	return 0;
}

void ingest_pipeline_wake(ingest_pipeline_t *p)
{
	pthread_mutex_lock(&p->lock);
	p->last_arrival_us = ar_mono_us();
	p->wake = 1;
	/* workers deferring to receiving wake up on their own */
	if (!p->deferring)
		pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void ingest_pipeline_counts(ingest_pipeline_t *p, uint64_t *stored,
    uint64_t *duplicates, uint64_t *failed)
{
	pthread_mutex_lock(&p->lock);
	*stored = p->stored;
	*duplicates = p->duplicates;
	*failed = p->failed;
	pthread_mutex_unlock(&p->lock);
}

void ingest_pipeline_stop(ingest_pipeline_t *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
