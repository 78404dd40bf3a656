/*
 * backend_impl.h - private to store/: the object store backend vtable.
 *
 * A backend (fs, seg, s3) fills a struct store_backend_ops and embeds
 * struct store_backend / store_put / store_get as the FIRST member of its
 * own handle structs; store/backend.c dispatches the public calls.
 */
#ifndef STORE_BACKEND_IMPL_H
#define STORE_BACKEND_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "store/store.h"

struct store_backend_ops {
	const char *name;
	int (*put_begin)(store_backend_t *be, const uint8_t *tenant,
	    const uint8_t *id, store_put_t **out);
	int (*put_write)(store_put_t *put, const void *buf, size_t len);
	/* frees put whatever the result */
	int (*put_commit)(store_put_t *put, int64_t retain_until);
	void (*put_abort)(store_put_t *put);
	/* optional: n puts committed together (else put_commit each); rcs[i]
	 * is put i's result, the first failure is returned */
	int (*put_commit_many)(store_put_t **puts, size_t n,
	    const int64_t *retain_until, int *rcs);
	int (*sync)(store_backend_t *be);
	int (*get_open)(store_backend_t *be, const uint8_t *tenant,
	    const uint8_t *id, store_get_t **out);
	uint64_t (*get_size)(const store_get_t *get);
	int (*get_pread)(store_get_t *get, void *buf, size_t len,
	    uint64_t off, size_t *got);
	void (*get_close)(store_get_t *get);
	/* deferred: the removal is made durable by the next sync */
	int (*del)(store_backend_t *be, const uint8_t *tenant,
	    const uint8_t *id, int deferred);
	int (*walk)(store_backend_t *be, const uint8_t *tenant,
	    store_backend_walk_cb cb, void *arg);
	int (*drop_tenant)(store_backend_t *be, const uint8_t *tenant);
	/* release the backend's own resources (not the base) */
	void (*close)(store_backend_t *be);
	/* optional (NULL: not offered; see store_backend_caps) */
	int (*check)(store_backend_t *be, int64_t max_skew,
	    store_check_cb cb, void *arg);
	int (*set_legal_hold)(store_backend_t *be, const uint8_t *tenant,
	    const uint8_t *id, int on);
	int (*extend_retention)(store_backend_t *be, const uint8_t *tenant,
	    const uint8_t *id, int64_t until);
	int (*lock_info)(store_backend_t *be, const uint8_t *tenant,
	    const uint8_t *id, store_lock_info_t *out);
	int (*blob_put)(store_backend_t *be, const uint8_t *tenant,
	    const char *name, const void *data, size_t len,
	    int64_t retain_until);
	int (*blob_get)(store_backend_t *be, const uint8_t *tenant,
	    const char *name, unsigned char **data, size_t *len);
	int (*blob_list)(store_backend_t *be, const uint8_t *tenant,
	    const char *dir, store_blob_cb cb, void *arg);
	int (*tenants)(store_backend_t *be, store_tenant_id_cb cb, void *arg);
};

struct store_backend {
	const struct store_backend_ops *ops;
	pthread_mutex_t err_lock;
	char errmsg[512];
};

struct store_put {
	store_backend_t *be;
};

struct store_get {
	store_backend_t *be;
};

/* The checks a backend's open starts with (out set to NULL): 0, or the
 * status to return. */
int store_be_open_args(store_backend_t **out, const char *dir);

/* Initialise / release the common part of a backend handle. */
void store_be_init(store_backend_t *be, const struct store_backend_ops *ops);
void store_be_fini(store_backend_t *be);

/* Record the handle's error message; returns rc. */
int store_be_fail(store_backend_t *be, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* STORE_BACKEND_IMPL_H */
