/*
 * digest.c - the daily quarantine digest (gateway.h gateway_digest_run).
 *
 * For each tenant whose policy has the digest on, once per day slot: every
 * message held in quarantine since the previous digest, grouped by
 * recipient; each recipient gets one plain-text message listing what was
 * held for it, with a release link per message (store.h
 * store_quarantine_link_mac: signed for that recipient, that message and
 * an expiry; the console's digest-link API checks it and releases once).
 * The digest is queued in the relay queue like a DSN (null sender, no
 * archive copy), with an id fixed by tenant, slot and recipient so that a
 * run repeated after a crash finds the entries it queued; the slot is
 * marked done only when every recipient's digest is queued.
 */
#include <ctype.h>
#include <glib.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ar.h"
#include "gateway/gw_int.h"
#include "gateway/relay.h"

#define DIGEST_MAX_ITEMS 500     /* listed per recipient per digest */

struct dg_ctx {
	gateway_t *g;
	const gateway_digest_opts_t *o;
	int64_t now, since;
	json_t *by_rcpt;             /* rcpt -> [item, ...] */
	size_t sent, failed;
};

/* A header or list value on one line: control characters become spaces,
 * at most max bytes (cut at a UTF-8 boundary). */
static void one_line(GString *out, const char *s, size_t max)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)(s ? s : "");
	    *p && n < max; p++, n++) {
		if (n + 4 >= max && (*p & 0xc0) != 0x80)
			break;
		g_string_append_c(out, *p < 0x20 || *p == 0x7f ? ' ' :
		    (char)*p);
	}
}

static int q_cb(void *arg, const store_quarantine_t *q)
{
	struct dg_ctx *c = arg;
	json_t *d, *rc_list, *r;
	size_t i;

	if (q->state != STORE_Q_HELD || q->received < c->since ||
	    q->received > c->now)
		return 0;
	if (!(d = json_loads(q->details, 0, NULL)))
		return 0;
	rc_list = json_object_get(json_object_get(d, "envelope"), "rcpt_to");
	json_array_foreach(rc_list, i, r) {
		char key[STORE_ADDR_MAX], hex[33];
		json_t *items;
		const char *a = json_string_value(r);
		if (!a || !a[0] || strlen(a) >= sizeof key)
			continue;
		for (size_t k = 0; ; k++) {
			key[k] = (char)tolower((unsigned char)a[k]);
			if (!a[k])
				break;
		}
		if (!(items = json_object_get(c->by_rcpt, key))) {
			items = json_array();
			json_object_set_new(c->by_rcpt, key, items);
		}
		if (json_array_size(items) >= DIGEST_MAX_ITEMS)
			continue;
		json_array_append_new(items, json_pack("{s:s, s:I, s:I, s:O?, "
		    "s:O?, s:O?, s:O?}", "id", ar_hex(q->id, 16, hex),
		    "received", (json_int_t)q->received, "expires",
		    (json_int_t)q->expires, "from", json_object_get(
		    json_object_get(d, "envelope"), "mail_from"), "subject",
		    json_object_get(json_object_get(d, "header"), "subject"),
		    "verdict", json_object_get(json_object_get(d, "verdict"),
		    "verdict"), "reasons", json_object_get(json_object_get(d,
		    "verdict"), "reasons")));
	}
	json_decref(d);
	return 0;
}

/* The release link of item for rcpt, or "" when no console URL is set. */
static int link_of(struct dg_ctx *c, const store_tenant_t *t,
    const char *rcpt, const char *idhex, int64_t expires, GString *out)
{
	uint8_t id[16], mac[STORE_QLINK_MAC_LEN];
	char th[33], mh[2 * STORE_QLINK_MAC_LEN + 1], *er;
	int rc;

	if (!c->o->base_url || !c->o->base_url[0])
		return 0;
	if (ar_unhex(idhex, id, 16))
		return AR_EINVAL;
	if ((rc = store_quarantine_link_mac(c->g->st, t->id, id, rcpt, expires,
	    mac)))
		return rc;
	er = g_uri_escape_string(rcpt, NULL, FALSE);
	g_string_append_printf(out, "%s/release.html#t=%s&q=%s&r=%s&e=%lld&s=%s",
	    c->o->base_url, ar_hex(t->id, 16, th), idhex, er,
	    (long long)expires, ar_hex(mac, sizeof mac, mh));
	g_free(er);
	sodium_memzero(mac, sizeof mac);
	return 0;
}

static char *build(struct dg_ctx *c, const store_tenant_t *t,
    const char *rcpt, json_t *items, int64_t expires, size_t *len)
{
	GString *m = g_string_new(NULL);
	char date[64], ts[32], ex[32], mid[33];
	uint8_t rnd[16];
	struct tm tm;
	time_t now = (time_t)c->now;
	json_t *it;
	size_t i, n = json_array_size(items);

	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	randombytes_buf(rnd, sizeof rnd);
	g_string_append_printf(m, "From: Quarantine <postmaster@%s>\r\n"
	    "To: <%s>\r\nSubject: Quarantine digest: %zu message%s held for "
	    "you\r\nDate: %s\r\nMessage-ID: <digest.%s@%s>\r\n"
	    "Auto-Submitted: auto-generated\r\nX-Archived-Digest: %s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n", c->g->hostname, rcpt,
	    n, n == 1 ? "" : "s", date, ar_hex(rnd, sizeof rnd, mid),
	    c->g->hostname, t->name);
	g_string_append_printf(m, "%zu message%s addressed to %s %s held in "
	    "quarantine by the mail\r\nfilter since %s UTC.  They are "
	    "deleted when their time is up.\r\n\r\n", n, n == 1 ? "" : "s",
	    rcpt, n == 1 ? "was" : "were", ar_time_fmt(c->since, ts,
	    sizeof ts));
	json_array_foreach(items, i, it) {
		const char *idhex = json_string_value(json_object_get(it, "id"));
		json_t *rs = json_object_get(it, "reasons"), *r;
		size_t k;
		g_string_append_printf(m, "%zu. From:     ", i + 1);
		one_line(m, json_string_value(json_object_get(it, "from")), 200);
		g_string_append(m, "\r\n   Subject:  ");
		one_line(m, json_string_value(json_object_get(it, "subject")),
		    200);
		g_string_append_printf(m, "\r\n   Received: %s UTC, kept until "
		    "%s UTC\r\n   Verdict:  ", ar_time_fmt(json_integer_value(
		    json_object_get(it, "received")), ts, sizeof ts),
		    ar_time_fmt(json_integer_value(json_object_get(it,
		    "expires")), ex, sizeof ex));
		one_line(m, json_string_value(json_object_get(it, "verdict")),
		    40);
		json_array_foreach(rs, k, r) {
			if (k >= 4)
				break;
			g_string_append(m, k ? ", " : " (");
			one_line(m, json_string_value(r), 80);
		}
		if (json_array_size(rs))
			g_string_append(m, ")");
		g_string_append(m, "\r\n");
		if (idhex && c->o->base_url && c->o->base_url[0]) {
			g_string_append(m, "   Release:  ");
			if (link_of(c, t, rcpt, idhex, expires, m)) {
				g_string_free(m, TRUE);
				return NULL;
			}
			g_string_append(m, "\r\n");
		}
		g_string_append(m, "\r\n");
	}
	if (c->o->base_url && c->o->base_url[0])
		g_string_append_printf(m, "Each release link works once, until "
		    "%s UTC, and only for %s:\r\nthe message is then delivered "
		    "to its recipients.  No password is needed; do not\r\n"
		    "forward this digest.\r\n", ar_time_fmt(expires, ex,
		    sizeof ex), rcpt);
	else
		g_string_append(m, "Ask your mail administrator to release a "
		    "message you need.\r\n");
	*len = m->len;
	return g_string_free(m, FALSE);
}

struct mem {
	const char *p;
	size_t len, pos;
};

static int mem_rewind(void *arg)
{
	((struct mem *)arg)->pos = 0;
	return 0;
}

static int mem_read(void *arg, void *buf, size_t len, size_t *got)
{
	struct mem *m = arg;
	size_t n = m->len - m->pos < len ? m->len - m->pos : len;

	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

/* The entry id of rcpt's digest of this slot: time-ordered by the slot,
 * the rest a keyed hash, so that a repeated run finds it. */
static void digest_id(const store_tenant_t *t, int64_t slot,
    const char *rcpt, uint8_t id[16])
{
	uint8_t h[16], tmp[16];
	uint64_t ms = (uint64_t)slot * 1000;
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, (const unsigned char *)"digest", 6);
	crypto_generichash_update(&st, t->id, STORE_TENANT_LEN);
	crypto_generichash_update(&st, (const unsigned char *)&ms, sizeof ms);
	crypto_generichash_update(&st, (const unsigned char *)rcpt,
	    strlen(rcpt));
	crypto_generichash_final(&st, h, sizeof h);
	spool_entry_id_new(tmp);
	for (int i = 0; i < 6; i++)
		id[i] = (uint8_t)(ms >> (40 - 8 * i));
	memcpy(id + 6, h, 9);
	id[15] = tmp[15];              /* the spool's kind byte */
}

static int tenant_cb(void *arg, const store_tenant_t *t)
{
	struct dg_ctx *c = arg;
	const char *rcpt;
	json_t *items, *v;
	char th[33];
	int64_t prev = 0, expires;
	size_t before_failed = c->failed;
	int rc;

	if (t->state != STORE_TENANT_ACTIVE || !t->gw.digest)
		return 0;
	if ((rc = store_gw_digest_due(c->g->st, t->id, c->o->slot, &prev)))
		return 0;                     /* done, or unreadable: later */
	c->since = prev ? prev : c->o->slot - 86400;
	c->by_rcpt = json_object();
	if (store_quarantine_walk(c->g->st, t->id, q_cb, c)) {
		ar_log(AR_LOG_WARN, "gateway tenant=%s job=digest status=failed "
		    "reason=\"%s\"", ar_hex(t->id, 16, th),
		    store_errmsg(c->g->st));
		json_decref(c->by_rcpt);
		c->failed++;
		return 0;
	}
	expires = c->now + (c->o->link_ttl > 0 ? c->o->link_ttl : 3 * 86400);
	v = json_pack("{s:s, s:s, s:[]}", "verdict", "digest", "action",
	    "deliver", "reasons");
	json_object_foreach(c->by_rcpt, rcpt, items) {
		uint8_t id[16];
		char hex[33];
		size_t len = 0;
		char *text = build(c, t, rcpt, items, expires, &len);
		struct mem m = { text, len, 0 };
		gw_source_t src = { mem_rewind, mem_read, &m, len };
		if (!text) {
			rc = AR_ENOMEM;
		} else {
			digest_id(t, c->o->slot, rcpt, id);
			rc = gw_enqueue(c->g, t, "", &rcpt, 1, &src, "digest", v,
			    id, 0, NULL);
			sodium_memzero(text, len);
			g_free(text);
		}
		if (rc) {
			ar_log(AR_LOG_WARN, "gateway tenant=%s job=digest "
			    "status=retry reason=\"%s\"", ar_hex(t->id, 16, th),
			    rc == AR_ENOMEM ? store_errmsg(c->g->st) :
			    ar_strerror(rc));
			c->failed++;
			continue;
		}
		c->sent++;
		ar_log(AR_LOG_INFO, "gateway id=%s tenant=%s job=digest "
		    "status=queued messages=%zu", ar_hex(id, 16, hex),
		    ar_hex(t->id, 16, th), json_array_size(items));
	}
	json_decref(v);
	json_decref(c->by_rcpt);
	c->by_rcpt = NULL;
	if (c->failed == before_failed &&
	    store_gw_digest_done(c->g->st, t->id, c->o->slot, c->now))
		ar_log(AR_LOG_WARN, "gateway tenant=%s job=digest "
		    "status=unrecorded reason=\"%s\"", ar_hex(t->id, 16, th),
		    store_errmsg(c->g->st));
	return 0;
}

int gateway_digest_run(gateway_t *g, const gateway_digest_opts_t *o,
    size_t *sent)
{
	struct dg_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	c.g = g;
	c.o = o;
	c.now = ar_now();
	rc = store_tenant_walk(g->st, tenant_cb, &c);
	if (sent)
		*sent = c.sent;
	return rc ? rc : c.failed ? AR_EAGAIN : 0;
}
