/*
 * catalog.c - the LMDB catalog: environment, transactions that grow the
 * map when it is full, and tenants.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>

#include "ar.h"
#include "catalog_priv.h"

#define CAT_SCHEMA "1"

static const char *dbi_names[DBI_COUNT] = {
	"meta", "tenants", "names", "addresses", "objects", "dedup", "log",
	"loghead", "checkpoints", "receipts",
	/* jobs (issue 6) */
	"retention", "holds",
	"users",          /* store/users.c: console accounts */
	"domains", "gwlists",   /* store/gateway.c */
	"quarantine", "qrelease",   /* store/quarantine.c */
	"gwrequests",
	"ship", "shipq",  /* store/ship.c: the bucket as source of truth */
	"gwstats",        /* store/gwstats.c */
	"dkim",           /* store/dkim.c */
};

int cat_err(store_t *st, int rc, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&st->err_lock);
	va_start(ap, fmt);
	vsnprintf(st->err, sizeof st->err, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&st->err_lock);
	return rc;
}

const char *store_errmsg(const store_t *st)
{
	return st->err;
}

/* Set when an LMDB call of this thread answered MDB_MAP_FULL: cat_run
 * then grows the map and runs the transaction again. */
static __thread int map_full_seen;

int cat_status(int rc)
{
	if (rc == MDB_MAP_FULL)
		map_full_seen = 1;
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_NOTFOUND: return AR_ENOENT;
	case MDB_KEYEXIST: return AR_EEXIST;
	case MDB_MAP_FULL: return AR_ENOSPC;
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID:
		return AR_ECORRUPT;
	case MDB_VERSION_MISMATCH: return AR_EVERSION;
	case ENOSPC: return AR_ENOSPC;
	case ENOMEM: return AR_ENOMEM;
	default: return AR_EIO;
	}
}

/* Grow the map (or adopt another process's larger map when grow == 0). */
static int cat_resize(store_t *st, int grow)
{
	MDB_envinfo info;
	int rc;

	pthread_rwlock_wrlock(&st->resize_lock);
	if (grow) {
		mdb_env_info(st->env, &info);
		size_t next = info.me_mapsize < (1u << 30) ?
		    info.me_mapsize * 2 : info.me_mapsize + (1u << 30);
		rc = mdb_env_set_mapsize(st->env, next);
		if (rc == 0)
			ar_log(AR_LOG_INFO, "catalog map_size=%zu status=grown",
			    next);
	} else {
		rc = mdb_env_set_mapsize(st->env, 0);
	}
	pthread_rwlock_unlock(&st->resize_lock);
	return rc ? cat_err(st, cat_status(rc), "catalog resize: %s",
	    mdb_strerror(rc)) : 0;
}

static int cat_run(store_t *st, unsigned flags, cat_txn_fn fn, void *arg)
{
	for (int attempt = 0; attempt < 40; attempt++) {
		MDB_txn *txn;
		int rc;

		pthread_rwlock_rdlock(&st->resize_lock);
		rc = mdb_txn_begin(st->env, NULL, flags, &txn);
		if (rc == MDB_MAP_RESIZED) {
			pthread_rwlock_unlock(&st->resize_lock);
			if ((rc = cat_resize(st, 0)))
				return rc;
			continue;
		}
		if (rc) {
			pthread_rwlock_unlock(&st->resize_lock);
			return cat_err(st, cat_status(rc), "catalog: %s",
			    mdb_strerror(rc));
		}
		map_full_seen = 0;
		if (!(flags & MDB_RDONLY))
			ship_note_reset();
		rc = fn(st, txn, arg);
		if (rc == 0 && !(flags & MDB_RDONLY)) {
			int mrc = mdb_txn_commit(txn);
			txn = NULL;
			if (mrc) {
				rc = cat_status(mrc);
				if (!map_full_seen)
					cat_err(st, rc, "catalog commit: %s",
					    mdb_strerror(mrc));
			}
		}
		if (txn)
			mdb_txn_abort(txn);
		pthread_rwlock_unlock(&st->resize_lock);
		if (map_full_seen && !(flags & MDB_RDONLY)) {
			int grc = cat_resize(st, 1);
			if (grc)
				return grc;
			continue;
		}
		if (rc == 0 && !(flags & MDB_RDONLY))
			ship_after_commit(st);
		return rc;
	}
	return cat_err(st, AR_ENOSPC, "catalog: map could not grow enough");
}

int cat_write(store_t *st, cat_txn_fn fn, void *arg)
{
	st->err[0] = '\0';
	return cat_run(st, 0, fn, arg);
}

int cat_read(store_t *st, cat_txn_fn fn, void *arg)
{
	return cat_run(st, MDB_RDONLY, fn, arg);
}

static int open_dbis(store_t *st, MDB_txn *txn, void *arg)
{
	MDB_val k = { 6, "schema" }, v;
	int rc;

	for (int i = 0; i < DBI_COUNT; i++) {
		rc = mdb_dbi_open(txn, dbi_names[i], MDB_CREATE, &st->dbi[i]);
		if (rc)
			return cat_err(st, cat_status(rc), "catalog db %s: %s",
			    dbi_names[i], mdb_strerror(rc));
	}
	rc = mdb_get(txn, st->dbi[DBI_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		v.mv_data = CAT_SCHEMA;
		v.mv_size = strlen(CAT_SCHEMA);
		rc = mdb_put(txn, st->dbi[DBI_META], &k, &v, 0);
	} else if (rc == 0 && (v.mv_size != strlen(CAT_SCHEMA) ||
	    memcmp(v.mv_data, CAT_SCHEMA, v.mv_size))) {
		return cat_err(st, AR_EVERSION, "catalog schema %.*s, this "
		    "program reads %s", (int)v.mv_size, (char *)v.mv_data,
		    CAT_SCHEMA);
	}
	return rc ? cat_err(st, cat_status(rc), "catalog: %s",
	    mdb_strerror(rc)) : 0;
}

int store_open(store_t **out, const store_open_params_t *p)
{
	store_t *st;
	int rc;

	*out = NULL;
	if (!p->catalog_dir || !p->backend || !p->ks)
		return AR_EINVAL;
	if ((rc = ar_mkdirs(p->catalog_dir, 0700)))
		return rc;
	st = calloc(1, sizeof *st);
	if (!st)
		return AR_ENOMEM;
	pthread_rwlock_init(&st->resize_lock, NULL);
	pthread_mutex_init(&st->err_lock, NULL);
	pthread_mutex_init(&st->ship_lock, NULL);
	st->be = p->backend;
	if (store_backend_caps(p->backend) & STORE_BE_BLOBS)
		st->ship_be = p->backend;
	st->ks = p->ks;
	st->ckpt_entries = p->checkpoint_entries ? p->checkpoint_entries : 1000;
	st->ckpt_seconds = p->checkpoint_seconds ? p->checkpoint_seconds : 3600;

	if ((rc = mdb_env_create(&st->env)) ||
	    (rc = mdb_env_set_maxdbs(st->env, DBI_COUNT + 2)) ||
	    (rc = mdb_env_set_maxreaders(st->env, 256)) ||
	    (rc = mdb_env_set_mapsize(st->env, p->map_size > 0 ?
	    (size_t)p->map_size : (size_t)64 << 20)) ||
	    (rc = mdb_env_open(st->env, p->catalog_dir, MDB_NOTLS, 0600))) {
		ar_log(AR_LOG_ERR, "catalog dir=%s error=\"%s\"",
		    p->catalog_dir, mdb_strerror(rc));
		rc = cat_status(rc);
		store_close(st);
		return rc;
	}
	/* Another process may have grown the map beyond what we asked. */
	mdb_env_set_mapsize(st->env, 0);
	if ((rc = cat_write(st, open_dbis, NULL))) {
		ar_log(AR_LOG_ERR, "catalog dir=%s error=\"%s\"",
		    p->catalog_dir, st->err);
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void store_close(store_t *st)
{
	if (!st)
		return;
	if (st->env)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->resize_lock);
	pthread_mutex_destroy(&st->err_lock);
	pthread_mutex_destroy(&st->ship_lock);
	free(st);
}

store_backend_t *store_get_backend(store_t *st) { return st->be; }
keysvc_t *store_get_keysvc(store_t *st) { return st->ks; }

int store_catalog_size(store_t *st, uint64_t *map_size, uint64_t *used)
{
	MDB_envinfo info;
	MDB_stat stat;
	mdb_env_info(st->env, &info);
	mdb_env_stat(st->env, &stat);
	*map_size = info.me_mapsize;
	*used = (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
	return 0;
}

void store_catalog_trim(store_t *st)
{
	struct stat sb;
	unsigned flags = 0;
	mdb_filehandle_t fd;
	char line[512];
	FILE *f;

	/* LMDB tells the map's address only for MDB_FIXEDMAP: find the
	 * mappings of data.mdb (its device and inode) in /proc/self/maps,
	 * not while the map is being moved (cat_resize) */
	pthread_rwlock_rdlock(&st->resize_lock);
	if (mdb_env_get_flags(st->env, &flags) || (flags & MDB_WRITEMAP) ||
	    mdb_env_get_fd(st->env, &fd) || fstat(fd, &sb) < 0 ||
	    !(f = fopen("/proc/self/maps", "re"))) {
		pthread_rwlock_unlock(&st->resize_lock);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi, ino;
		unsigned maj, mnr;
		if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &maj,
		    &mnr, &ino) == 5 && ino == (unsigned long)sb.st_ino &&
		    makedev(maj, mnr) == sb.st_dev && hi > lo)
			(void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
	fclose(f);
	pthread_rwlock_unlock(&st->resize_lock);
}

/* --- tenants ------------------------------------------------------------ */

int store_tenant_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= STORE_NAME_MAX)
		return AR_EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return AR_EINVAL;
	}
	return 0;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* A journal address: local@domain, printable ASCII, no spaces. */
static int addr_valid(const char *a)
{
	const char *at = strchr(a, '@');
	size_t n = strlen(a);
	if (!at || at == a || !at[1] || strchr(at + 1, '@') ||
	    n >= STORE_ADDR_MAX)
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a <= ' ' || (unsigned char)*a >= 127 ||
		    *a == '<' || *a == '>')
			return 0;
	return 1;
}

static char *tenant_encode(const store_tenant_t *t)
{
	json_t *o = json_object(), *j = json_array();
	char *s;
	for (size_t i = 0; i < t->n_journal; i++)
		json_array_append_new(j, json_string(t->journal[i]));
	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "retention_days",
	    json_integer(t->retention_days));
	json_object_set_new(o, "key_version", json_integer(t->key_version));
	json_object_set_new(o, "created", json_integer(t->created));
	json_object_set_new(o, "state", json_integer(t->state));
	json_object_set_new(o, "state_since", json_integer(t->state_since));
	json_object_set_new(o, "terminated_days",
	    json_integer(t->terminated_days));
	json_object_set_new(o, "inactive_days", json_integer(t->inactive_days));
	json_object_set_new(o, "journal", j);
	j = json_array();
	for (size_t i = 0; i < t->n_networks; i++)
		json_array_append_new(j, json_string(t->networks[i]));
	json_object_set_new(o, "networks", j);
	json_object_set_new(o, "require_tls", json_boolean(t->require_tls));
	json_object_set_new(o, "require_auth", json_boolean(t->require_auth));
	json_object_set_new(o, "smtp_user", json_string(t->smtp_user));
	json_object_set_new(o, "smtp_pass_hash",
	    json_string(t->smtp_pass_hash));
	json_object_set_new(o, "gateway", gw_policy_json(&t->gw));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static int tenant_decode(const uint8_t id[STORE_TENANT_LEN],
    const MDB_val *v, store_tenant_t *t)
{
	json_error_t jerr;
	json_t *o = json_loadb(v->mv_data, v->mv_size, 0, &jerr), *j;
	const char *name;
	size_t i;
	json_t *a;

	memset(t, 0, sizeof *t);
	if (!o)
		return AR_ECORRUPT;
	memcpy(t->id, id, STORE_TENANT_LEN);
	name = json_string_value(json_object_get(o, "name"));
	ar_strlcpy(t->name, name ? name : "", sizeof t->name);
	t->retention_days = (uint32_t)json_integer_value(
	    json_object_get(o, "retention_days"));
	t->key_version = (uint32_t)json_integer_value(
	    json_object_get(o, "key_version"));
	t->created = json_integer_value(json_object_get(o, "created"));
	t->state = (int)json_integer_value(json_object_get(o, "state"));
	t->state_since = json_integer_value(json_object_get(o, "state_since"));
	t->terminated_days = (uint32_t)json_integer_value(json_object_get(o,
	    "terminated_days"));
	t->inactive_days = (uint32_t)json_integer_value(json_object_get(o,
	    "inactive_days"));
	if (!t->terminated_days)
		t->terminated_days = STORE_TERMINATED_DAYS_DEFAULT;
	if (!t->inactive_days)
		t->inactive_days = STORE_INACTIVE_DAYS_DEFAULT;
	j = json_object_get(o, "journal");
	json_array_foreach(j, i, a) {
		if (t->n_journal < STORE_JOURNAL_MAX && json_string_value(a))
			ar_strlcpy(t->journal[t->n_journal++],
			    json_string_value(a), STORE_ADDR_MAX);
	}
	j = json_object_get(o, "networks");
	json_array_foreach(j, i, a) {
		if (t->n_networks < STORE_NETWORKS_MAX && json_string_value(a))
			ar_strlcpy(t->networks[t->n_networks++],
			    json_string_value(a), STORE_CIDR_MAX);
	}
	t->require_tls = json_is_true(json_object_get(o, "require_tls"));
	t->require_auth = json_is_true(json_object_get(o, "require_auth"));
	if (json_string_value(json_object_get(o, "smtp_user")))
		ar_strlcpy(t->smtp_user, json_string_value(json_object_get(o,
		    "smtp_user")), sizeof t->smtp_user);
	if (json_string_value(json_object_get(o, "smtp_pass_hash")))
		ar_strlcpy(t->smtp_pass_hash, json_string_value(
		    json_object_get(o, "smtp_pass_hash")),
		    sizeof t->smtp_pass_hash);
	gw_policy_from_json(json_object_get(o, "gateway"), &t->gw);
	json_decref(o);
	return name ? 0 : AR_ECORRUPT;
}

static int tenant_put(store_t *st, MDB_txn *txn, const store_tenant_t *t)
{
	MDB_val k = { STORE_TENANT_LEN, (void *)t->id }, v;
	char *s = tenant_encode(t);
	int rc;
	if (!s)
		return AR_ENOMEM;
	v.mv_data = s;
	v.mv_size = strlen(s);
	rc = mdb_put(txn, st->dbi[DBI_TENANTS], &k, &v, 0);
	free(s);
	return rc ? cat_err(st, cat_status(rc), "tenant record: %s",
	    mdb_strerror(rc)) : 0;
}

struct tenant_add_ctx {
	store_tenant_t *t;
};

static int tenant_add_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct tenant_add_ctx *c = arg;
	store_tenant_t *t = c->t;
	MDB_val k, v;
	int rc;

	k.mv_data = t->name;
	k.mv_size = strlen(t->name);
	v.mv_data = t->id;
	v.mv_size = STORE_TENANT_LEN;
	rc = mdb_put(txn, st->dbi[DBI_NAMES], &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return cat_err(st, AR_EEXIST, "tenant %s already exists",
		    t->name);
	if (rc)
		return cat_err(st, cat_status(rc), "tenant names: %s",
		    mdb_strerror(rc));
	for (size_t i = 0; i < t->n_journal; i++) {
		k.mv_data = t->journal[i];
		k.mv_size = strlen(t->journal[i]);
		rc = mdb_put(txn, st->dbi[DBI_ADDRS], &k, &v,
		    MDB_NOOVERWRITE);
		if (rc == MDB_KEYEXIST)
			return cat_err(st, AR_EEXIST, "journal address %s "
			    "belongs to another tenant", t->journal[i]);
		if (rc)
			return cat_err(st, cat_status(rc), "addresses: %s",
			    mdb_strerror(rc));
	}
	if ((rc = tenant_put(st, txn, t)))
		return rc;
	return log_append_txn(st, txn, t->id, STORE_LOG_TENANT, NULL, NULL,
	    t->created, 0, NULL, 0, NULL);
}

int store_tenant_add(store_t *st, const char *name,
    const char *const *journal, size_t n_journal, uint32_t retention_days,
    store_tenant_t *out)
{
	store_tenant_t t;
	struct tenant_add_ctx c = { &t };
	store_tenant_t existing;
	int rc;

	memset(&t, 0, sizeof t);
	if (store_tenant_name_valid(name))
		return cat_err(st, AR_EINVAL, "tenant name '%s': use 1-63 of "
		    "a-z 0-9 . _ - starting with a letter or digit", name);
	if (n_journal > STORE_JOURNAL_MAX)
		return cat_err(st, AR_ETOOBIG, "at most %d journal addresses",
		    STORE_JOURNAL_MAX);
	if (retention_days == 0 || retention_days > 36500)
		return cat_err(st, AR_EINVAL, "retention days %u: use 1..36500",
		    retention_days);
	if (store_tenant_get(st, name, &existing) == 0)
		return cat_err(st, AR_EEXIST, "tenant %s already exists", name);
	ar_strlcpy(t.name, name, sizeof t.name);
	for (size_t i = 0; i < n_journal; i++) {
		ar_strlcpy(t.journal[i], journal[i], STORE_ADDR_MAX);
		lower(t.journal[i]);
		if (!addr_valid(t.journal[i]))
			return cat_err(st, AR_EINVAL, "journal address '%s' is "
			    "not local@domain", journal[i]);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(t.journal[i], t.journal[j]))
				return cat_err(st, AR_EINVAL, "journal address "
				    "%s given twice", t.journal[i]);
		if (store_tenant_by_address(st, t.journal[i], &existing) == 0)
			return cat_err(st, AR_EEXIST, "journal address %s "
			    "belongs to tenant %s", t.journal[i],
			    existing.name);
	}
	t.n_journal = n_journal;
	t.retention_days = retention_days;
	store_gw_policy_defaults(&t.gw);
	t.key_version = 1;
	t.created = ar_now();
	t.state = STORE_TENANT_ACTIVE;
	randombytes_buf(t.id, sizeof t.id);

	if ((rc = keysvc_tenant_create(st->ks, t.id)))
		return cat_err(st, rc, "%s", keysvc_errmsg(st->ks));
	if ((rc = cat_write(st, tenant_add_txn, &c))) {
		/* The catalog refused: the key is unused, destroy it. */
		keysvc_tenant_destroy(st->ks, t.id);
		return rc;
	}
	log_checkpoint_if_due(st, t.id, 1, NULL);
	if (out)
		*out = t;
	return 0;
}

struct tenant_get_ctx {
	const void *key;
	size_t keylen;
	int by;            /* -1: id, else a DBI mapping to an id */
	store_tenant_t *out;
};

static int tenant_get_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct tenant_get_ctx *c = arg;
	MDB_val k = { c->keylen, (void *)c->key }, v;
	int rc;

	if (c->by >= 0) {
		rc = mdb_get(txn, st->dbi[c->by], &k, &v);
		if (rc)
			return cat_status(rc);
		if (v.mv_size != STORE_TENANT_LEN)
			return AR_ECORRUPT;
		k = v;
	}
	rc = mdb_get(txn, st->dbi[DBI_TENANTS], &k, &v);
	if (rc)
		return cat_status(rc);
	return tenant_decode(k.mv_data, &v, c->out);
}

int store_tenant_get(store_t *st, const char *name, store_tenant_t *out)
{
	struct tenant_get_ctx c = { name, strlen(name), DBI_NAMES, out };
	int rc = cat_read(st, tenant_get_txn, &c);
	return rc == AR_ENOENT ? cat_err(st, rc, "no tenant named %s", name)
	    : rc;
}

int store_tenant_get_id(store_t *st, const uint8_t id[STORE_TENANT_LEN],
    store_tenant_t *out)
{
	struct tenant_get_ctx c = { id, STORE_TENANT_LEN, -1, out };
	return cat_read(st, tenant_get_txn, &c);
}

int store_tenant_by_address(store_t *st, const char *addr,
    store_tenant_t *out)
{
	char a[STORE_ADDR_MAX];
	struct tenant_get_ctx c = { a, 0, DBI_ADDRS, out };
	if (strlen(addr) >= sizeof a)
		return AR_ENOENT;
	ar_strlcpy(a, addr, sizeof a);
	lower(a);
	c.keylen = strlen(a);
	return cat_read(st, tenant_get_txn, &c);
}

struct tenant_walk_ctx {
	store_tenant_cb cb;
	void *arg;
	store_tenant_t *list;
	size_t n, cap;
};

static int tenant_walk_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct tenant_walk_ctx *c = arg;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, st->dbi[DBI_TENANTS], &cur);

	if (rc)
		return cat_status(rc);
	c->n = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != STORE_TENANT_LEN)
			continue;
		if (ar_grow((void **)&c->list, &c->cap, c->n,
		    sizeof *c->list)) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		if (tenant_decode(k.mv_data, &v, &c->list[c->n]) == 0)
			c->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : cat_status(rc);
}

int store_tenant_walk(store_t *st, store_tenant_cb cb, void *arg)
{
	struct tenant_walk_ctx c = { cb, arg, NULL, 0, 0 };
	int rc = cat_read(st, tenant_walk_txn, &c);

	/* Callbacks run outside the transaction: they may open their own. */
	for (size_t i = 0; rc == 0 && i < c.n; i++)
		rc = cb(arg, &c.list[i]);
	free(c.list);
	return rc;
}

struct rotate_ctx {
	const char *name;
	uint32_t version;
	uint8_t id[STORE_TENANT_LEN];
};

static int rotate_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct rotate_ctx *c = arg;
	store_tenant_t t;
	struct tenant_get_ctx g = { c->name, strlen(c->name), DBI_NAMES, &t };
	char detail[64];
	unsigned char *blob = NULL;
	size_t bloblen = 0;
	int rc = tenant_get_txn(st, txn, &g);

	if (rc)
		return rc;
	t.key_version = c->version;
	if ((rc = tenant_put(st, txn, &t)))
		return rc;
	snprintf(detail, sizeof detail, "{\"action\":\"key-rotate\","
	    "\"version\":%u}", c->version);
	if ((rc = log_seal_detail(st, t.id, c->version, detail, &blob,
	    &bloblen)))
		return rc;
	rc = log_append_txn(st, txn, t.id, STORE_LOG_ADMIN, NULL, NULL,
	    ar_now(), c->version, blob, bloblen, NULL);
	free(blob);
	return rc;
}

int store_tenant_rotate_key(store_t *st, const char *name,
    uint32_t *new_version)
{
	store_tenant_t t;
	struct rotate_ctx c = { name, 0, { 0 } };
	int rc;

	if ((rc = store_tenant_get(st, name, &t)))
		return rc;
	if ((rc = keysvc_tenant_rotate(st->ks, t.id, &c.version)))
		return cat_err(st, rc, "%s", keysvc_errmsg(st->ks));
	if ((rc = cat_write(st, rotate_txn, &c)))
		return rc;
	if (new_version)
		*new_version = c.version;
	return 0;
}

struct update_ctx {
	const store_tenant_t *t;
};

static int update_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct update_ctx *c = arg;
	store_tenant_t cur, next;
	struct tenant_get_ctx g = { c->t->id, STORE_TENANT_LEN, -1, &cur };
	unsigned char *blob = NULL;
	size_t bloblen = 0;
	json_t *d, *nets;
	char *detail;
	int rc;

	if ((rc = tenant_get_txn(st, txn, &g)))
		return rc;
	/* identity, keys and addresses are not changed here */
	next = *c->t;
	memcpy(next.name, cur.name, sizeof next.name);
	next.created = cur.created;
	next.key_version = cur.key_version;
	next.n_journal = cur.n_journal;
	memcpy(next.journal, cur.journal, sizeof next.journal);
	if ((rc = tenant_put(st, txn, &next)))
		return rc;
	d = json_object();
	nets = json_array();
	for (size_t i = 0; i < next.n_networks; i++)
		json_array_append_new(nets, json_string(next.networks[i]));
	json_object_set_new(d, "action", json_string("tenant-settings"));
	json_object_set_new(d, "retention_days",
	    json_integer(next.retention_days));
	json_object_set_new(d, "state", json_integer(next.state));
	json_object_set_new(d, "networks", nets);
	json_object_set_new(d, "require_tls", json_boolean(next.require_tls));
	json_object_set_new(d, "require_auth",
	    json_boolean(next.require_auth));
	json_object_set_new(d, "smtp_user", json_string(next.smtp_user));
	json_object_set_new(d, "smtp_password_changed", json_boolean(
	    strcmp(next.smtp_pass_hash, cur.smtp_pass_hash) != 0));
	json_object_set_new(d, "gateway", gw_policy_json(&next.gw));
	detail = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (!detail)
		return AR_ENOMEM;
	rc = log_seal_detail(st, next.id, next.key_version, detail, &blob,
	    &bloblen);
	free(detail);
	if (rc)
		return rc;
	rc = log_append_txn(st, txn, next.id, STORE_LOG_ADMIN, NULL, NULL,
	    ar_now(), next.key_version, blob, bloblen, NULL);
	free(blob);
	return rc;
}

int store_tenant_update(store_t *st, const store_tenant_t *t)
{
	struct update_ctx c = { t };
	store_tenant_t cur;
	int rc;

	/* preservation lock: the default period never goes down */
	if ((rc = store_tenant_get_id(st, t->id, &cur)))
		return rc;
	if (t->retention_days < cur.retention_days)
		return cat_err(st, AR_EPERM, "tenant %s keeps mail %u days: a "
		    "retention period can be lengthened, never shortened",
		    cur.name, cur.retention_days);
	if (t->retention_days == 0 || t->retention_days > 36500)
		return cat_err(st, AR_EINVAL, "retention days %u: use 1..36500",
		    t->retention_days);
	if (t->n_networks > STORE_NETWORKS_MAX)
		return cat_err(st, AR_ETOOBIG, "at most %d networks",
		    STORE_NETWORKS_MAX);
	char why[256];
	if (store_gw_policy_check(&t->gw, why, sizeof why))
		return cat_err(st, AR_EINVAL, "gateway policy: %s", why);
	return cat_write(st, update_txn, &c);
}
