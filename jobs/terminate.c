/*
 * terminate.c - a tenant's end: active -> terminated (ingest refused,
 * export allowed) -> inactive (kept) -> shredded (keys destroyed by
 * keysvc, index, objects and catalog records deleted, a signed
 * certificate of destruction written).  Each step is a logged change of
 * the tenant record; a legal hold blocks shredding.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ar.h"
#include "jobs_priv.h"

const char *jobs_state_name(int s)
{
	switch (s) {
	case STORE_TENANT_ACTIVE: return "active";
	case STORE_TENANT_TERMINATED: return "terminated";
	case STORE_TENANT_INACTIVE: return "inactive";
	case STORE_TENANT_SHREDDED: return "shredded";
	}
	return "?";
}

int jobs_tenant_terminate(store_t *st, const char *name,
    uint32_t terminated_days, uint32_t inactive_days, char *err,
    size_t errlen)
{
	store_tenant_t t;
	int rc;

	if ((rc = store_tenant_get(st, name, &t)))
		return jobs_fail(err, errlen, rc, "tenant %s: %s", name,
		    store_errmsg(st));
	if (t.state != STORE_TENANT_ACTIVE)
		return jobs_fail(err, errlen, AR_EINVAL, "tenant %s is %s, not "
		    "active", name, jobs_state_name(t.state));
	if (terminated_days > 36500 || inactive_days > 36500)
		return jobs_fail(err, errlen, AR_EINVAL, "windows are 1..36500 "
		    "days");
	if (terminated_days)
		t.terminated_days = terminated_days;
	if (inactive_days)
		t.inactive_days = inactive_days;
	t.state = STORE_TENANT_TERMINATED;
	t.state_since = ar_now();
	if ((rc = store_tenant_update(st, &t)))
		return jobs_fail(err, errlen, rc, "tenant %s: %s", name,
		    store_errmsg(st));
	return 0;
}

struct hold_any {
	int active;
	char name[64];
};

static int hold_any_cb(void *arg, const store_hold_t *h)
{
	struct hold_any *a = arg;
	if (!h->released && !a->active) {
		a->active = 1;
		ar_strlcpy(a->name, h->name, sizeof a->name);
	}
	return 0;
}

/* The certificate: payload JSON (the exact bytes signed), its raw
 * Ed25519 signature and the public key, under cert_dir. */
static int certificate(const jobs_advance_params_t *p, store_tenant_t *t,
    jobs_shred_result_t *res, char *err, size_t errlen)
{
	keysvc_t *ks = store_get_keysvc(p->st);
	uint8_t sig[KEYSVC_SIG_LEN], pk[KEYSVC_PK_LEN];
	char hex[65], ts[32], path[4400], pem[256], base[4200];
	json_t *j = json_object();
	char *s;
	int rc;

	json_object_set_new(j, "certificate", json_string("destruction"));
	json_object_set_new(j, "tenant", json_string(t->name));
	json_object_set_new(j, "tenant_id", json_string(ar_hex(t->id,
	    STORE_TENANT_LEN, hex)));
	json_object_set_new(j, "objects", json_integer((json_int_t)
	    res->objects));
	json_object_set_new(j, "bytes", json_integer((json_int_t)res->bytes));
	json_object_set_new(j, "final_log_seq", json_integer((json_int_t)
	    res->log_seq));
	json_object_set_new(j, "final_log_head", json_string(ar_hex(
	    res->log_head, 32, hex)));
	json_object_set_new(j, "time", json_string(ar_time_fmt(ar_now(), ts,
	    sizeof ts)));
	json_object_set_new(j, "keys_destroyed", json_true());
	json_object_set_new(j, "index_deleted", json_true());
	json_object_set_new(j, "objects_deleted", json_true());
	s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (!s)
		return AR_ENOMEM;
	if ((rc = keysvc_sign(ks, s, strlen(s), sig)) ||
	    (rc = keysvc_public_key(ks, pk))) {
		free(s);
		return jobs_fail(err, errlen, rc, "certificate signature: %s",
		    keysvc_errmsg(ks));
	}
	if ((rc = ar_mkdirs(p->cert_dir, 0700)) ||
	    (rc = ar_path(base, sizeof base, "%s/%s-%s-destruction",
	    p->cert_dir, t->name, ar_hex(t->id, STORE_TENANT_LEN, hex)))) {
		free(s);
		return jobs_fail(err, errlen, rc, "%s: %s", p->cert_dir,
		    strerror(errno));
	}
	snprintf(path, sizeof path, "%s.json", base);
	rc = ar_file_write_atomic(path, s, strlen(s), 0644);
	free(s);
	ar_strlcpy(res->certificate, path, sizeof res->certificate);
	snprintf(path, sizeof path, "%s.json.sig", base);
	if (!rc)
		rc = ar_file_write_atomic(path, sig, sizeof sig, 0644);
	jobs_pubkey_pem(pk, pem, sizeof pem);
	snprintf(path, sizeof path, "%s.pubkey.pem", base);
	if (!rc)
		rc = ar_file_write_atomic(path, pem, strlen(pem), 0644);
	if (rc)
		return jobs_fail(err, errlen, rc, "%s: %s", path,
		    ar_strerror(rc));
	return 0;
}

static int shred(const jobs_advance_params_t *p, store_tenant_t *t,
    jobs_shred_result_t *res, char *err, size_t errlen)
{
	keysvc_t *ks = store_get_keysvc(p->st);
	store_tenant_stats_t ts;
	struct hold_any h = { 0, "" };
	int rc;

	if (t->state == STORE_TENANT_INACTIVE) {
		/* holds block shredding (they are sealed: read them now) */
		if ((rc = store_hold_walk(p->st, t->id, hold_any_cb, &h)))
			return jobs_fail(err, errlen, rc, "holds: %s",
			    store_errmsg(p->st));
		if (h.active)
			return jobs_fail(err, errlen, AR_EHOLD, "tenant %s is "
			    "under legal hold '%s': release it before "
			    "shredding", t->name, h.name);
		if ((rc = store_tenant_stats(p->st, t->id, &ts)))
			return jobs_fail(err, errlen, rc, "stats: %s",
			    store_errmsg(p->st));
		res->objects = ts.objects;
		res->bytes = ts.plain_bytes;
		/* the last entries the tenant's key can seal, then signed */
		t->state = STORE_TENANT_SHREDDED;
		t->state_since = ar_now();
		if ((rc = store_tenant_update(p->st, t)) ||
		    (rc = store_log_checkpoint(p->st, t->id, NULL)))
			return jobs_fail(err, errlen, rc, "tenant %s: %s",
			    t->name, store_errmsg(p->st));
	}
	/* from here on every step is idempotent: a crash is resumed by
	 * advancing the shredded tenant again */
	if ((rc = store_log_head(p->st, t->id, &res->log_seq, res->log_head)))
		return jobs_fail(err, errlen, rc, "log head: %s",
		    store_errmsg(p->st));
	rc = keysvc_tenant_destroy(ks, t->id);
	if (rc && rc != AR_ENOENT)
		return jobs_fail(err, errlen, rc, "keysvc destroy: %s",
		    keysvc_errmsg(ks));
	keysvc_cache_purge(ks, t->id);
	if (p->idx && (rc = search_tenant_drop(p->idx, t->id)))
		return jobs_fail(err, errlen, rc, "index: %s",
		    search_errmsg(p->idx));
	rc = store_backend_drop_tenant(store_get_backend(p->st), t->id);
	if (rc && rc != AR_ENOENT)
		return jobs_fail(err, errlen, rc, "objects: %s",
		    store_backend_errmsg(store_get_backend(p->st)));
	if ((rc = store_tenant_purge(p->st, t->id)))
		return jobs_fail(err, errlen, rc, "catalog: %s",
		    store_errmsg(p->st));
	return certificate(p, t, res, err, errlen);
}

int jobs_tenant_advance(const jobs_advance_params_t *p, int *new_state,
    jobs_shred_result_t *res, char *err, size_t errlen)
{
	store_tenant_t t;
	char when[32];
	int64_t due;
	int rc;

	memset(res, 0, sizeof *res);
	if (err && errlen)
		*err = 0;
	if ((rc = store_tenant_get(p->st, p->tenant, &t)))
		return jobs_fail(err, errlen, rc, "tenant %s: %s", p->tenant,
		    store_errmsg(p->st));
	switch (t.state) {
	case STORE_TENANT_ACTIVE:
		return jobs_fail(err, errlen, AR_EINVAL, "tenant %s is active: "
		    "terminate it first", t.name);
	case STORE_TENANT_TERMINATED:
		due = t.state_since + (int64_t)t.terminated_days * 86400;
		break;
	case STORE_TENANT_INACTIVE:
		due = t.state_since + (int64_t)t.inactive_days * 86400;
		break;
	default:   /* shredded: finish an interrupted shredding */
		if (!p->cert_dir)
			return jobs_fail(err, errlen, AR_EINVAL, "no "
			    "certificate directory");
		if ((rc = shred(p, &t, res, err, errlen)))
			return rc;
		*new_state = STORE_TENANT_SHREDDED;
		return 0;
	}
	if (ar_now() < due && !p->force)
		return jobs_fail(err, errlen, AR_EAGAIN, "tenant %s is %s until "
		    "%s (the window is a tenant setting; --force moves it "
		    "now)", t.name, jobs_state_name(t.state),
		    ar_time_fmt(due, when, sizeof when));
	if (t.state == STORE_TENANT_TERMINATED) {
		t.state = STORE_TENANT_INACTIVE;
		t.state_since = ar_now();
		if ((rc = store_tenant_update(p->st, &t)))
			return jobs_fail(err, errlen, rc, "tenant %s: %s",
			    t.name, store_errmsg(p->st));
		*new_state = t.state;
		return 0;
	}
	if (!p->cert_dir)
		return jobs_fail(err, errlen, AR_EINVAL, "no certificate "
		    "directory");
	if ((rc = shred(p, &t, res, err, errlen)))
		return rc;
	*new_state = STORE_TENANT_SHREDDED;
	return 0;
}
