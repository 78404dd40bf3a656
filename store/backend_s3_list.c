/*
 * backend_s3_list.c - the s3 backend's listings (ListObjectsV2 and
 * ListObjectVersions, every page), and what is built on them: deletes of
 * every version of a name, walks of a tenant's objects, the tenants of
 * the bucket, and the drop of a shredded tenant.
 */
#include "store/backend_s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ar.h"

/* --- listings --------------------------------------------------------------- */

/*
 * List keys (versions == 0: ListObjectsV2) or versions (ListObjectVersions)
 * under prefix, with an optional delimiter; every page.
 */
int s3_list_range(s3_backend_t *b, const char *prefix,
    const char *delim, int versions, const char *start, const char *stop,
    list_cb cb, void *arg)
{
	char token[1024] = "", kmark[1024] = "", vmark[256] = "";
	char es[3 * S3_KEY_MAX];
	char ep[3 * S3_KEY_MAX], ed[16] = "", et[3 * 1024], ek[3 * 1024];
	char ev[3 * 256];
	s3_req_t *r = malloc(sizeof *r);
	int rc = 0, truncated;

	if (!r)
		return AR_ENOMEM;
	s3_uri_encode(ep, sizeof ep, prefix);
	if (delim)
		s3_uri_encode(ed, sizeof ed, delim);
	if (start) {
		/* listings start after this key (exclusive) */
		if (versions)
			ar_strlcpy(kmark, start, sizeof kmark);
		s3_uri_encode(es, sizeof es, start);
	}
	do {
		char q[S3_QUERY_MAX], item[S3_KEY_MAX], val[S3_KEY_MAX];
		size_t pos = 0;

		if (versions) {
			s3_uri_encode(ek, sizeof ek, kmark);
			s3_uri_encode(ev, sizeof ev, vmark);
			(void)ar_path(q, sizeof q, "%s%s%s%s%s%sprefix=%s%s%s&versions=",
			    delim ? "delimiter=" : "", delim ? ed : "",
			    delim ? "&" : "", kmark[0] ? "key-marker=" : "",
			    kmark[0] ? ek : "", kmark[0] ? "&" : "", ep,
			    vmark[0] ? "&version-id-marker=" : "",
			    vmark[0] ? ev : "");
		} else {
			s3_uri_encode(et, sizeof et, token);
			(void)ar_path(q, sizeof q, "%s%s%s%s%s%slist-type=2&prefix="
			    "%s%s%s", token[0] ? "continuation-token=" : "",
			    token[0] ? et : "", token[0] ? "&" : "",
			    delim ? "delimiter=" : "", delim ? ed : "",
			    delim ? "&" : "", ep, start && !token[0] ?
			    "&start-after=" : "", start && !token[0] ? es : "");
		}
		s3_req_init(r, "GET", "", q);
		s3_run1(&b->c, r);
		if ((rc = s3_status(r))) {
			fail_req(&b->base, r, rc);
			break;
		}
		truncated = s3_xml_get((char *)r->resp, r->resp_len,
		    "IsTruncated", NULL, val, sizeof val) == 0 &&
		    !strcmp(val, "true");
		/* entries: <Contents> or <Version>/<DeleteMarker>, then
		 * <CommonPrefixes> */
		for (;;) {
			const char *open = versions ? "<Version>" : "<Contents>";
			char *p = r->resp ? strstr((char *)r->resp + pos, open)
			    : NULL;
			char *dm = versions && r->resp ? strstr((char *)r->resp +
			    pos, "<DeleteMarker>") : NULL;
			size_t at;
			if (dm && (!p || dm < p))
				p = dm;
			if (!p)
				break;
			at = (size_t)(p - (char *)r->resp);
			if (s3_xml_get((char *)r->resp, r->resp_len, "Key", &at,
			    item, sizeof item))
				break;
			val[0] = '\0';
			if (versions)
				s3_xml_get((char *)r->resp, r->resp_len,
				    "VersionId", &at, val, sizeof val);
			pos = at;
			if (stop && strcmp(item, stop) > 0) {
				truncated = 0;     /* past the range wanted */
				goto page_done;
			}
			if ((rc = cb(arg, item, val, 0)))
				goto out;
		}
		pos = 0;
		while (s3_xml_get((char *)r->resp, r->resp_len, "Prefix", &pos,
		    item, sizeof item) == 0) {
			/* the first <Prefix> is the request's own */
			if (strcmp(item, prefix) && (rc = cb(arg, item, "", 1)))
				goto out;
		}
page_done:
		if (truncated) {
			if (versions) {
				s3_xml_get((char *)r->resp, r->resp_len,
				    "NextKeyMarker", NULL, kmark, sizeof kmark);
				s3_xml_get((char *)r->resp, r->resp_len,
				    "NextVersionIdMarker", NULL, vmark,
				    sizeof vmark);
				truncated = kmark[0] != '\0';
			} else {
				s3_xml_get((char *)r->resp, r->resp_len,
				    "NextContinuationToken", NULL, token,
				    sizeof token);
				truncated = token[0] != '\0';
			}
		}
		s3_req_clear(r);
	} while (truncated);
out:
	s3_req_clear(r);
	free(r);
	return rc;
}

int s3_list(s3_backend_t *b, const char *prefix, const char *delim,
    int versions, list_cb cb, void *arg)
{
	return s3_list_range(b, prefix, delim, versions, NULL, NULL, cb, arg);
}

/* --- delete, walk, drop ---------------------------------------------------------- */

struct ver_list {
	char (*v)[128];
	size_t n, cap;
};

static int ver_cb(void *arg, const char *key, const char *version,
    int is_prefix)
{
	struct ver_list *l = arg;
	(void)key;
	if (is_prefix)
		return 0;
	if (ar_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v))
		return AR_ENOMEM;
	ar_strlcpy(l->v[l->n++], version, sizeof l->v[0]);
	return 0;
}

/* Delete every version of key (the caller checked that it may). */
static int delete_versions(s3_backend_t *b, const char *key)
{
	struct ver_list l = { NULL, 0, 0 };
	s3_req_t *r = malloc(sizeof *r);
	int rc;

	if (!r)
		return AR_ENOMEM;
	rc = s3_list(b, key, NULL, 1, ver_cb, &l);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		char q[300], ev[3 * 128];
		s3_uri_encode(ev, sizeof ev, l.v[i]);
		(void)ar_path(q, sizeof q, "versionId=%s", ev);
		s3_req_init(r, "DELETE", key, q);
		s3_run1(&b->c, r);
		if ((rc = s3_status(r))) {
			char why[600];
			/* the server refused: say so, as it said it */
			if (rc == AR_EPERM)
				rc = AR_ERETAINED;
			store_be_fail(&b->base, rc, "the object store refused "
			    "to delete %s: %s", key, s3_describe(r, why,
			    sizeof why));
		}
		s3_req_clear(r);
	}
	if (rc == 0 && l.n == 0)
		rc = store_be_fail(&b->base, AR_ENOENT, "no object %s", key);
	free(l.v);
	free(r);
	return rc;
}

int s3_delete(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, int deferred)
{
	s3_backend_t *b = s3b(be);
	char key[S3_KEY_MAX], when[32];
	store_lock_info_t li;
	int rc;

	(void)deferred;
	obj_key(b, tenant, id, key, sizeof key);
	if ((rc = head_key(b, key, &li)))
		return rc;
	if (li.legal_hold)
		return store_be_fail(be, AR_EHOLD, "%s is under an S3 legal "
		    "hold", key);
	if (ar_now() < li.retain_until)
		return store_be_fail(be, AR_ERETAINED, "%s retained until %s "
		    "(S3 Object Lock)", key, ar_time_fmt(li.retain_until, when,
		    sizeof when));
	return delete_versions(b, key);
}

struct walk_ctx {
	const uint8_t *tenant;
	store_backend_walk_cb cb;
	void *arg;
	char last[2 * STORE_ID_LEN + 1];
};

static int walk_key_cb(void *arg, const char *key, const char *version,
    int is_prefix)
{
	struct walk_ctx *w = arg;
	const char *slash = strrchr(key, '/');
	uint8_t id[STORE_ID_LEN];

	(void)version;
	if (is_prefix || !slash || strlen(slash + 1) != 2 * STORE_ID_LEN ||
	    ar_unhex(slash + 1, id, sizeof id))
		return 0;
	return w->cb(w->arg, w->tenant, id);
}

static int walk_tenant(s3_backend_t *b, const uint8_t *tenant,
    store_backend_walk_cb cb, void *arg)
{
	struct walk_ctx w = { tenant, cb, arg, "" };
	char pre[S3_KEY_MAX];

	tenant_prefix(b, tenant, pre, sizeof pre);
	strncat(pre, "o/", sizeof pre - strlen(pre) - 1);
	return s3_list(b, pre, NULL, 0, walk_key_cb, &w);
}

struct tenants_ctx {
	s3_backend_t *b;
	store_tenant_id_cb cb;
	void *arg;
};

static int tenant_prefix_cb(void *arg, const char *key, const char *version,
    int is_prefix)
{
	struct tenants_ctx *t = arg;
	size_t plen = strlen(t->b->prefix), len = strlen(key);
	uint8_t tenant[STORE_TENANT_LEN];
	char hex[2 * STORE_TENANT_LEN + 1];

	(void)version;
	if (!is_prefix || len != plen + 2 * STORE_TENANT_LEN + 1)
		return 0;
	memcpy(hex, key + plen, 2 * STORE_TENANT_LEN);
	hex[2 * STORE_TENANT_LEN] = '\0';
	if (ar_unhex(hex, tenant, sizeof tenant))
		return 0;
	return t->cb(t->arg, tenant);
}

int s3_tenants(store_backend_t *be, store_tenant_id_cb cb, void *arg)
{
	struct tenants_ctx t = { s3b(be), cb, arg };
	return s3_list(s3b(be), s3b(be)->prefix, "/", 0, tenant_prefix_cb, &t);
}

struct walk_all {
	s3_backend_t *b;
	store_backend_walk_cb cb;
	void *arg;
};

static int walk_all_cb(void *arg, const uint8_t *tenant)
{
	struct walk_all *w = arg;
	return walk_tenant(w->b, tenant, w->cb, w->arg);
}

int s3_walk(store_backend_t *be, const uint8_t *tenant,
    store_backend_walk_cb cb, void *arg)
{
	struct walk_all w = { s3b(be), cb, arg };
	if (tenant)
		return walk_tenant(s3b(be), tenant, cb, arg);
	return s3_tenants(be, walk_all_cb, &w);
}

struct drop_ctx {
	s3_backend_t *b;
	uint64_t deleted, kept;
	int64_t latest;
};

static int drop_cb(void *arg, const char *key, const char *version,
    int is_prefix)
{
	struct drop_ctx *d = arg;
	s3_req_t *r;
	char q[300], ev[3 * 128];

	if (is_prefix || !(r = malloc(sizeof *r)))
		return is_prefix ? 0 : AR_ENOMEM;
	s3_uri_encode(ev, sizeof ev, version);
	(void)ar_path(q, sizeof q, "versionId=%s", ev);
	s3_req_init(r, "DELETE", key, q);
	s3_run1(&d->b->c, r);
	if (s3_status(r) == 0)
		d->deleted++;
	else
		d->kept++;
	s3_req_clear(r);
	free(r);
	return 0;
}

/* Crypto-shredding: the keys are gone.  Every version the server lets go
 * is deleted; those still under COMPLIANCE retention stay (unreadable)
 * until their date, and are counted in the log. */
int s3_drop_tenant(store_backend_t *be, const uint8_t *tenant)
{
	struct drop_ctx d = { s3b(be), 0, 0, 0 };
	char pre[S3_KEY_MAX], th[2 * STORE_TENANT_LEN + 1];
	int rc;

	tenant_prefix(s3b(be), tenant, pre, sizeof pre);
	strncat(pre, "o/", sizeof pre - strlen(pre) - 1);
	rc = s3_list(s3b(be), pre, NULL, 1, drop_cb, &d);
	ar_log(d.kept ? AR_LOG_WARN : AR_LOG_INFO, "s3 tenant=%s deleted=%llu "
	    "locked=%llu status=dropped%s", ar_hex(tenant, STORE_TENANT_LEN, th),
	    (unsigned long long)d.deleted, (unsigned long long)d.kept,
	    d.kept ? " reason=\"still under COMPLIANCE retention: kept, "
	    "unreadable (keys destroyed)\"" : "");
	return rc;
}

