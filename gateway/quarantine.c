/*
 * quarantine.c - the gateway's side of the quarantine (store.h
 * "quarantine"): keeping a quarantined message (queue.c calls it), and
 * releasing what an officer released (the console, archivectl, a digest
 * link: they ask through the catalog, store_quarantine_set_state; the
 * relay queue's workers look for such requests every few seconds and
 * queue each release as a message of its own, the original bytes, to its
 * original recipients).
 *
 * Exactly once: the release's queue entry id is chosen once and kept with
 * the request (store_quarantine_release_id), so a release repeated after a
 * crash finds its entry instead of queueing a second copy; only then is the
 * record marked released.
 */
#include <sodium.h>
#include <string.h>

#include "ar.h"
#include "gateway/gw_int.h"
#include "gateway/relay.h"
#include "mime/mime.h"

#define PEEK (64 * 1024)

static int src_read_cb(void *arg, void *buf, size_t len, size_t *got)
{
	const gw_source_t *s = arg;
	return s->read(s->arg, buf, len, got);
}

int gw_quarantine_keep(gateway_t *g, const store_tenant_t *t,
    const uint8_t entry_id[16], const json_t *env, const json_t *verdict,
    const gw_source_t *src, uint8_t qid[16])
{
	unsigned char *peek;
	size_t npeek = 0;
	uint8_t sha[STORE_HASH_LEN];
	json_t *d;
	char *hdr, *text, hex[33];
	int rc, parsed;

	/* the header summary, for the quarantine list */
	if (!(peek = malloc(PEEK)))
		return AR_ENOMEM;
	if ((rc = src->rewind(src->arg)) ||
	    (rc = mime_digest(src_read_cb, (void *)src, sha, peek, PEEK,
	    &npeek))) {
		free(peek);
		return rc;
	}
	hdr = mime_header_summary(peek, npeek, NULL, &parsed);
	sodium_memzero(peek, PEEK);
	free(peek);
	d = json_pack("{s:O, s:O, s:o, s:s}", "envelope", env, "verdict",
	    verdict, "header", hdr ? json_loads(hdr, 0, NULL) : json_object(),
	    "sha256", ar_hex(sha, 32, (char[65]){ 0 }));
	free(hdr);
	text = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	if (!text)
		return AR_ENOMEM;
	if ((rc = src->rewind(src->arg)) == 0)
		rc = store_quarantine_put(g->st, t, entry_id, text, src_read_cb,
		    (void *)src, ar_now() + (int64_t)t->gw.quarantine_days *
		    86400);
	sodium_memzero(text, strlen(text));
	free(text);
	ar_hex(entry_id, 16, hex);
	if (rc) {
		ar_log(AR_LOG_WARN, "gateway id=%s status=quarantine_retry "
		    "reason=\"%s\"", hex, store_errmsg(g->st));
		return rc;
	}
	memcpy(qid, entry_id, 16);
	ar_log(AR_LOG_INFO, "gateway id=%s status=quarantined days=%u", hex,
	    t->gw.quarantine_days);
	return 0;
}

/* --- releases -------------------------------------------------------------- */

struct q_src {
	store_reader_t *r;
};

static int q_rewind(void *arg)
{
	return store_reader_seek(((struct q_src *)arg)->r, 0);
}

static int q_read(void *arg, void *buf, size_t len, size_t *got)
{
	return store_reader_read(((struct q_src *)arg)->r, buf, len, got);
}

static int release_one(void *arg, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN])
{
	gateway_t *g = arg;
	store_quarantine_t q;
	store_tenant_t t;
	struct q_src qs = { NULL };
	gw_source_t src = { q_rewind, q_read, &qs, 0 };
	json_t *d = NULL, *env, *rcpts, *v = NULL;
	const char *list[256], *dir;
	uint8_t rid[16];
	char hex[33], rhex[33];
	size_t i, n = 0;
	int rc;

	ar_hex(id, 16, hex);
	memset(&q, 0, sizeof q);
	if ((rc = store_tenant_get_id(g->st, tenant, &t)) ||
	    (rc = store_quarantine_get(g->st, tenant, id, &q)) ||
	    !(d = json_loads(q.details, 0, NULL))) {
		ar_log(AR_LOG_WARN, "gateway quarantine=%s status=release_retry "
		    "reason=\"%s\"", hex, rc ? store_errmsg(g->st) :
		    "details unreadable");
		goto out;
	}
	env = json_object_get(d, "envelope");
	rcpts = json_object_get(env, "rcpt_to");
	for (i = 0; i < json_array_size(rcpts) && n < AR_ARRAY_LEN(list); i++)
		if (json_string_value(json_array_get(rcpts, i)))
			list[n++] = json_string_value(json_array_get(rcpts, i));
	spool_entry_id_new(rid);
	if ((rc = store_quarantine_release_id(g->st, tenant, id, rid)) ||
	    (rc = store_quarantine_open(g->st, tenant, id, &qs.r)))
		goto out;
	src.size = store_reader_info(qs.r)->plain_size;
	v = json_pack("{s:s, s:s, s:[s]}", "verdict", "released", "action",
	    "deliver", "reasons", "quarantine:released");
	/* the tenant's outgoing mail is signed as it would have been
	 * without the quarantine; mail from outside never is */
	dir = json_string_value(json_object_get(env, "direction"));
	rc = gw_enqueue(g, &t, json_string_value(json_object_get(env,
	    "mail_from")) ? json_string_value(json_object_get(env,
	    "mail_from")) : "", list, n, &src, "release", v, rid,
	    dir && !strcmp(dir, "outbound"), NULL);
	if (rc == 0)
		rc = store_quarantine_set_state(g->st, tenant, id,
		    STORE_Q_RELEASED, NULL, NULL);
	if (rc == 0)
		ar_log(AR_LOG_INFO, "gateway quarantine=%s status=released "
		    "id=%s recipients=%zu", hex, ar_hex(rid, 16, rhex), n);
	else
		ar_log(AR_LOG_WARN, "gateway quarantine=%s status=release_retry "
		    "reason=\"%s\"", hex, ar_strerror(rc));
out:
	if (qs.r)
		store_reader_close(qs.r);
	json_decref(v);
	json_decref(d);
	store_quarantine_clear(&q);
	return 0;          /* the others are released all the same */
}

void gw_quarantine_releases(gateway_t *g)
{
	int rc = store_quarantine_releases(g->st, release_one, g);

	if (rc)
		ar_log(AR_LOG_WARN, "gateway status=releases_failed "
		    "reason=\"%s\"", store_errmsg(g->st));
}
