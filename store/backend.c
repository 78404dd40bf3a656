/*
 * backend.c - dispatch of the object store backend calls (store.h) to the
 * backend's vtable (backend_impl.h).
 */
#include "store/backend_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "ar.h"

void store_be_init(store_backend_t *be, const struct store_backend_ops *ops)
{
	be->ops = ops;
	pthread_mutex_init(&be->err_lock, NULL);
	be->errmsg[0] = '\0';
}

void store_be_fini(store_backend_t *be)
{
	pthread_mutex_destroy(&be->err_lock);
}

int store_be_fail(store_backend_t *be, int rc, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&be->err_lock);
	va_start(ap, fmt);
	vsnprintf(be->errmsg, sizeof be->errmsg, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&be->err_lock);
	return rc;
}

int store_be_open_args(store_backend_t **out, const char *dir)
{
	if (!out)
		return AR_EINVAL;
	*out = NULL;
	if (!dir || !*dir)
		return AR_EINVAL;
	return sodium_init() < 0 ? AR_EIO : 0;
}

void store_backend_close(store_backend_t *be)
{
	if (!be)
		return;
	be->ops->close(be);
}

const char *store_backend_errmsg(const store_backend_t *be)
{
	if (!be)
		return "no backend";
	return be->errmsg[0] ? be->errmsg : "no error";
}

int store_backend_put_begin(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_put_t **out)
{
	if (!out)
		return AR_EINVAL;
	*out = NULL;
	if (!be || !tenant || !id)
		return AR_EINVAL;
	return be->ops->put_begin(be, tenant, id, out);
}

int store_put_write(store_put_t *put, const void *buf, size_t len)
{
	if (!put || (!buf && len))
		return AR_EINVAL;
	if (len == 0)
		return 0;
	return put->be->ops->put_write(put, buf, len);
}

int store_put_commit(store_put_t *put, int64_t retain_until)
{
	if (!put)
		return AR_EINVAL;
	return put->be->ops->put_commit(put, retain_until);
}

int store_put_commit_many(store_put_t **puts, size_t n,
    const int64_t *retain_until, int *rcs)
{
	int first = 0;

	if (n == 0)
		return 0;
	if (puts[0]->be->ops->put_commit_many)
		return puts[0]->be->ops->put_commit_many(puts, n, retain_until,
		    rcs);
	for (size_t i = 0; i < n; i++)
		if ((rcs[i] = store_put_commit(puts[i], retain_until[i])) &&
		    !first)
			first = rcs[i];
	return first;
}

void store_put_abort(store_put_t *put)
{
	if (put)
		put->be->ops->put_abort(put);
}

int store_backend_sync(store_backend_t *be)
{
	if (!be)
		return AR_EINVAL;
	return be->ops->sync(be);
}

int store_backend_get_open(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_get_t **out)
{
	if (!out)
		return AR_EINVAL;
	*out = NULL;
	if (!be || !tenant || !id)
		return AR_EINVAL;
	return be->ops->get_open(be, tenant, id, out);
}

uint64_t store_get_size(const store_get_t *get)
{
	return get ? get->be->ops->get_size(get) : 0;
}

int store_get_pread(store_get_t *get, void *buf, size_t len, uint64_t off,
    size_t *got)
{
	if (got)
		*got = 0;
	if (!get || !got || (!buf && len))
		return AR_EINVAL;
	return get->be->ops->get_pread(get, buf, len, off, got);
}

void store_get_close(store_get_t *get)
{
	if (get)
		get->be->ops->get_close(get);
}

int store_backend_delete(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN])
{
	if (!be || !tenant || !id)
		return AR_EINVAL;
	return be->ops->del(be, tenant, id, 0);
}

int store_backend_delete_deferred(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN])
{
	if (!be || !tenant || !id)
		return AR_EINVAL;
	return be->ops->del(be, tenant, id, 1);
}

int store_backend_walk(store_backend_t *be, const uint8_t *tenant,
    store_backend_walk_cb cb, void *arg)
{
	if (!be || !cb)
		return AR_EINVAL;
	return be->ops->walk(be, tenant, cb, arg);
}

int store_backend_drop_tenant(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN])
{
	if (!be || !tenant)
		return AR_EINVAL;
	return be->ops->drop_tenant(be, tenant);
}

const char *store_backend_name(const store_backend_t *be)
{
	return be ? be->ops->name : "none";
}

unsigned store_backend_caps(const store_backend_t *be)
{
	unsigned caps = 0;

	if (!be)
		return 0;
	if (be->ops->set_legal_hold && be->ops->extend_retention)
		caps |= STORE_BE_LOCK;
	if (be->ops->blob_put && be->ops->blob_get && be->ops->blob_list)
		caps |= STORE_BE_BLOBS;
	return caps;
}

int store_backend_check(store_backend_t *be, int64_t max_skew,
    store_check_cb cb, void *arg)
{
	if (!be)
		return AR_EINVAL;
	return be->ops->check ? be->ops->check(be, max_skew, cb, arg) : 0;
}

int store_backend_legal_hold(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    int on)
{
	if (!be || !tenant || !id)
		return AR_EINVAL;
	if (!be->ops->set_legal_hold)
		return store_be_fail(be, AR_EINVAL, "the %s backend has no "
		    "legal hold", be->ops->name);
	return be->ops->set_legal_hold(be, tenant, id, on);
}

int store_backend_extend_retention(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    int64_t until)
{
	if (!be || !tenant || !id)
		return AR_EINVAL;
	if (!be->ops->extend_retention)
		return store_be_fail(be, AR_EINVAL, "the %s backend keeps no "
		    "retention of its own", be->ops->name);
	return be->ops->extend_retention(be, tenant, id, until);
}

int store_backend_lock_info(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const uint8_t id[STORE_ID_LEN],
    store_lock_info_t *out)
{
	if (!be || !tenant || !id || !out)
		return AR_EINVAL;
	memset(out, 0, sizeof *out);
	if (!be->ops->lock_info)
		return store_be_fail(be, AR_EINVAL, "the %s backend has no "
		    "object lock", be->ops->name);
	return be->ops->lock_info(be, tenant, id, out);
}

static int blob_name_ok(const char *name)
{
	if (!name || !*name || strlen(name) > 200 || name[0] == '/' ||
	    strstr(name, ".."))
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '/' || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

int store_backend_blob_put(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const char *name,
    const void *data, size_t len, int64_t retain_until)
{
	if (!be || !tenant || !blob_name_ok(name) || (!data && len))
		return AR_EINVAL;
	if (!be->ops->blob_put)
		return store_be_fail(be, AR_EINVAL, "the %s backend keeps no "
		    "blobs", be->ops->name);
	return be->ops->blob_put(be, tenant, name, data, len, retain_until);
}

int store_backend_blob_get(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const char *name,
    unsigned char **data, size_t *len)
{
	if (!be || !tenant || !blob_name_ok(name) || !data || !len)
		return AR_EINVAL;
	*data = NULL;
	*len = 0;
	if (!be->ops->blob_get)
		return store_be_fail(be, AR_EINVAL, "the %s backend keeps no "
		    "blobs", be->ops->name);
	return be->ops->blob_get(be, tenant, name, data, len);
}

int store_backend_blob_list(store_backend_t *be,
    const uint8_t tenant[STORE_TENANT_LEN], const char *dir,
    store_blob_cb cb, void *arg)
{
	if (!be || !tenant || !blob_name_ok(dir) || !cb)
		return AR_EINVAL;
	if (!be->ops->blob_list)
		return store_be_fail(be, AR_EINVAL, "the %s backend keeps no "
		    "blobs", be->ops->name);
	return be->ops->blob_list(be, tenant, dir, cb, arg);
}

int store_backend_tenants(store_backend_t *be, store_tenant_id_cb cb,
    void *arg)
{
	if (!be || !cb)
		return AR_EINVAL;
	if (!be->ops->tenants)
		return store_be_fail(be, AR_EINVAL, "the %s backend cannot "
		    "list tenants", be->ops->name);
	return be->ops->tenants(be, cb, arg);
}
