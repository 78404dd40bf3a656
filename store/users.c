/*
 * users.c - console accounts in the catalog (see store.h).
 *
 * Key: tenant id (16; zero for operators) || user name.
 * Value: u8 format | u32 key version | body.  Format 1 (tenant users):
 * body = meta blob (label "user", id = name) of the JSON record.  Format 2
 * (operators, no tenant key): body = the JSON record in clear (name, role,
 * Argon2id hash, counters: no mail).
 */
#include <ctype.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ar.h"
#include "catalog_priv.h"

#define USER_FMT_SEALED   1
#define USER_FMT_OPERATOR 2

static const uint8_t zero_tenant[STORE_TENANT_LEN];

static const char *role_names[] = {
	"admin", "officer", "legal", "auditor", "operator", "recipient",
};

const char *store_roles_format(uint32_t roles, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < AR_ARRAY_LEN(role_names); i++) {
		if (!(roles & (1u << i)))
			continue;
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s",
		    n ? "," : "", role_names[i]);
	}
	return buf;
}

int store_roles_parse(const char *text, uint32_t *roles)
{
	char buf[128], *save = NULL, *tok;
	*roles = 0;
	if (!text || strlen(text) >= sizeof buf)
		return AR_EINVAL;
	ar_strlcpy(buf, text, sizeof buf);
	for (tok = strtok_r(buf, ", ", &save); tok;
	    tok = strtok_r(NULL, ", ", &save)) {
		size_t i;
		for (i = 0; i < AR_ARRAY_LEN(role_names); i++)
			if (strcmp(tok, role_names[i]) == 0)
				break;
		if (i == AR_ARRAY_LEN(role_names))
			return AR_EINVAL;
		*roles |= 1u << i;
	}
	if (*roles == 0 || ((*roles & STORE_ROLE_OPERATOR) &&
	    *roles != STORE_ROLE_OPERATOR))
		return AR_EINVAL;
	return 0;
}

void store_user_wipe(store_user_t *u)
{
	sodium_memzero(u->totp_secret, sizeof u->totp_secret);
	sodium_memzero(u->pwhash, sizeof u->pwhash);
}

static char *user_encode(const store_user_t *u)
{
	json_t *o = json_object();
	char hex[2 * STORE_TOTP_SECRET_LEN + 1], roles[64], *s;

	json_object_set_new(o, "name", json_string(u->name));
	json_object_set_new(o, "roles", json_string(store_roles_format(
	    u->roles, roles, sizeof roles)));
	json_object_set_new(o, "disabled", json_boolean(u->disabled));
	json_object_set_new(o, "pwhash", json_string(u->pwhash));
	json_object_set_new(o, "created", json_integer(u->created));
	json_object_set_new(o, "failures", json_integer(u->failures));
	json_object_set_new(o, "last_failure", json_integer(u->last_failure));
	json_object_set_new(o, "locked_until", json_integer(u->locked_until));
	if (u->addresses[0])
		json_object_set_new(o, "addresses", json_string(u->addresses));
	if (u->totp_enabled) {
		ar_hex(u->totp_secret, sizeof u->totp_secret, hex);
		json_object_set_new(o, "totp", json_string(hex));
		json_object_set_new(o, "totp_step",
		    json_integer((json_int_t)u->last_totp_step));
		sodium_memzero(hex, sizeof hex);
	}
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);   /* the hash string copy is freed with it */
	return s;
}

static int user_decode(const char *text, size_t len, store_user_t *u)
{
	json_error_t jerr;
	json_t *o = json_loadb(text, len, 0, &jerr);
	const char *s;
	int rc = 0;

	if (!o)
		return AR_ECORRUPT;
	if ((s = json_string_value(json_object_get(o, "name"))))
		ar_strlcpy(u->name, s, sizeof u->name);
	if (store_roles_parse(json_string_value(json_object_get(o, "roles")),
	    &u->roles))
		rc = AR_ECORRUPT;
	u->disabled = json_is_true(json_object_get(o, "disabled"));
	if ((s = json_string_value(json_object_get(o, "addresses"))))
		ar_strlcpy(u->addresses, s, sizeof u->addresses);
	if ((s = json_string_value(json_object_get(o, "pwhash"))))
		ar_strlcpy(u->pwhash, s, sizeof u->pwhash);
	u->created = json_integer_value(json_object_get(o, "created"));
	u->failures = (uint32_t)json_integer_value(json_object_get(o,
	    "failures"));
	u->last_failure = json_integer_value(json_object_get(o,
	    "last_failure"));
	u->locked_until = json_integer_value(json_object_get(o,
	    "locked_until"));
	if ((s = json_string_value(json_object_get(o, "totp")))) {
		if (ar_unhex(s, u->totp_secret, sizeof u->totp_secret))
			rc = AR_ECORRUPT;
		u->totp_enabled = 1;
		u->last_totp_step = (uint64_t)json_integer_value(
		    json_object_get(o, "totp_step"));
	}
	json_decref(o);
	return rc;
}

static size_t user_key(unsigned char *key, const uint8_t *tenant,
    const char *name)
{
	size_t n = strlen(name);
	memcpy(key, tenant ? tenant : zero_tenant, STORE_TENANT_LEN);
	memcpy(key + STORE_TENANT_LEN, name, n);
	return STORE_TENANT_LEN + n;
}

struct put_ctx {
	unsigned char key[STORE_TENANT_LEN + STORE_NAME_MAX];
	size_t keylen;
	const unsigned char *val;
	size_t vallen;
	int create;
	const char *name;
};

static int put_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct put_ctx *c = arg;
	MDB_val k = { c->keylen, c->key }, v;
	int rc = mdb_get(txn, st->dbi[DBI_USERS], &k, &v);

	if (c->create && rc == 0)
		return cat_err(st, AR_EEXIST, "user %s already exists",
		    c->name);
	if (!c->create && rc == MDB_NOTFOUND)
		return cat_err(st, AR_ENOENT, "no user %s", c->name);
	v.mv_data = (void *)c->val;
	v.mv_size = c->vallen;
	rc = mdb_put(txn, st->dbi[DBI_USERS], &k, &v, 0);
	return rc ? cat_err(st, cat_status(rc), "users: %s",
	    mdb_strerror(rc)) : 0;
}

int store_user_put(store_t *st, const store_user_t *u, int create)
{
	struct put_ctx c;
	unsigned char *val = NULL, *blob = NULL;
	size_t bloblen = 0, len;
	int operator = u->roles == STORE_ROLE_OPERATOR, rc;
	store_tenant_t t;
	uint32_t version = 0;
	char *json;

	if (store_tenant_name_valid(u->name))
		return cat_err(st, AR_EINVAL, "user name '%s': use 1-63 of "
		    "a-z 0-9 . _ - starting with a letter or digit", u->name);
	if (!u->roles || (u->roles & ~STORE_ROLES_ALL) ||
	    ((u->roles & STORE_ROLE_OPERATOR) && !operator))
		return cat_err(st, AR_EINVAL, "roles 0x%x: invalid", u->roles);
	if (operator && !sodium_is_zero(u->tenant, STORE_TENANT_LEN))
		return cat_err(st, AR_EINVAL, "an operator has no tenant");
	if (!operator) {
		if (sodium_is_zero(u->tenant, STORE_TENANT_LEN))
			return cat_err(st, AR_EINVAL, "user %s needs a tenant",
			    u->name);
		if ((rc = store_tenant_get_id(st, u->tenant, &t)))
			return cat_err(st, rc, "tenant of user %s: %s",
			    u->name, ar_strerror(rc));
		version = t.key_version;
	}
	if (!(json = user_encode(u)))
		return AR_ENOMEM;
	len = strlen(json);
	if (!operator) {
		rc = meta_seal(st, u->tenant, version, "user",
		    (const uint8_t *)u->name, strlen(u->name), json, len,
		    &blob, &bloblen);
		sodium_memzero(json, len);
		free(json);
		json = NULL;
		if (rc)
			return rc;
		len = bloblen;
	}
	if (!(val = malloc(5 + len))) {
		rc = AR_ENOMEM;
		goto out;
	}
	val[0] = operator ? USER_FMT_OPERATOR : USER_FMT_SEALED;
	ar_put_u32(val + 1, version);
	memcpy(val + 5, operator ? (void *)json : (void *)blob, len);
	memset(&c, 0, sizeof c);
	c.keylen = user_key(c.key, operator ? NULL : u->tenant, u->name);
	c.val = val;
	c.vallen = 5 + len;
	c.create = create;
	c.name = u->name;
	rc = cat_write(st, put_txn, &c);
	sodium_memzero(val, 5 + len);
out:
	free(val);
	if (json) {
		sodium_memzero(json, strlen(json));
		free(json);
	}
	free(blob);
	return rc;
}

/* Decode one raw record (key = tenant || name) into *u. */
static int user_from_val(store_t *st, const MDB_val *k, const MDB_val *v,
    store_user_t *u)
{
	const unsigned char *p = v->mv_data;
	unsigned char *plain = NULL;
	size_t plen = 0, nlen = k->mv_size - STORE_TENANT_LEN;
	int rc;

	memset(u, 0, sizeof *u);
	if (v->mv_size < 5 || nlen == 0 || nlen >= STORE_NAME_MAX)
		return cat_err(st, AR_ECORRUPT, "user record malformed");
	memcpy(u->tenant, k->mv_data, STORE_TENANT_LEN);
	memcpy(u->name, (const char *)k->mv_data + STORE_TENANT_LEN, nlen);
	if (p[0] == USER_FMT_OPERATOR)
		return user_decode((const char *)p + 5, v->mv_size - 5, u);
	if (p[0] != USER_FMT_SEALED)
		return cat_err(st, AR_EVERSION, "user record format %u", p[0]);
	if ((rc = meta_open(st, u->tenant, ar_get_u32(p + 1), "user",
	    (const uint8_t *)u->name, nlen, p + 5, v->mv_size - 5, &plain,
	    &plen)))
		return rc;
	rc = user_decode((const char *)plain, plen, u);
	sodium_memzero(plain, plen);
	free(plain);
	return rc;
}

/* Reads copy the raw value out of the transaction, then open it outside
 * (meta_open asks keysvc; no transaction is held during IPC). */
struct raw {
	unsigned char key[STORE_TENANT_LEN + STORE_NAME_MAX];
	size_t keylen;
	unsigned char *val;
	size_t vallen;
};

static int get_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct raw *r = arg;
	MDB_val k = { r->keylen, r->key }, v;
	int rc = mdb_get(txn, st->dbi[DBI_USERS], &k, &v);
	if (rc)
		return cat_status(rc);
	if (!(r->val = malloc(v.mv_size)))
		return AR_ENOMEM;
	memcpy(r->val, v.mv_data, v.mv_size);
	r->vallen = v.mv_size;
	return 0;
}

int store_user_get(store_t *st, const uint8_t *tenant, const char *name,
    store_user_t *out)
{
	struct raw r;
	MDB_val k, v;
	int rc;

	memset(out, 0, sizeof *out);
	if (store_tenant_name_valid(name))
		return AR_ENOENT;
	memset(&r, 0, sizeof r);
	r.keylen = user_key(r.key, tenant, name);
	if ((rc = cat_read(st, get_txn, &r)))
		return rc;
	k.mv_data = r.key;
	k.mv_size = r.keylen;
	v.mv_data = r.val;
	v.mv_size = r.vallen;
	rc = user_from_val(st, &k, &v, out);
	sodium_memzero(r.val, r.vallen);
	free(r.val);
	if (rc)
		store_user_wipe(out);
	return rc;
}

struct list_ctx {
	const uint8_t *tenant;
	struct raw *items;
	size_t n, cap;
};

static int list_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct list_ctx *c = arg;
	MDB_val k = { STORE_TENANT_LEN, (void *)c->tenant }, v;
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_USERS], &cur)))
		return cat_status(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct raw *r;
		if (k.mv_size <= STORE_TENANT_LEN ||
		    k.mv_size > sizeof r->key ||
		    memcmp(k.mv_data, c->tenant, STORE_TENANT_LEN))
			break;
		if (ar_grow((void **)&c->items, &c->cap, c->n, sizeof *r)) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		r = &c->items[c->n];
		memset(r, 0, sizeof *r);
		memcpy(r->key, k.mv_data, k.mv_size);
		r->keylen = k.mv_size;
		if (!(r->val = malloc(v.mv_size))) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		memcpy(r->val, v.mv_data, v.mv_size);
		r->vallen = v.mv_size;
		c->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : cat_status(rc);
}

int store_user_walk(store_t *st, const uint8_t *tenant, store_user_cb cb,
    void *arg)
{
	struct list_ctx c = { tenant ? tenant : zero_tenant, NULL, 0, 0 };
	int rc = cat_read(st, list_txn, &c);

	for (size_t i = 0; i < c.n; i++) {
		store_user_t u;
		MDB_val k = { c.items[i].keylen, c.items[i].key };
		MDB_val v = { c.items[i].vallen, c.items[i].val };
		if (rc == 0) {
			rc = user_from_val(st, &k, &v, &u);
			if (rc == 0)
				rc = cb(arg, &u);
			store_user_wipe(&u);
		}
		sodium_memzero(c.items[i].val, c.items[i].vallen);
		free(c.items[i].val);
	}
	free(c.items);
	return rc;
}

/* --- a user's own addresses (the recipient role) ------------------------ */

int store_user_addresses_norm(const char *in, char *out, size_t outlen,
    char *why, size_t whylen)
{
	char buf[STORE_USER_ADDRS_MAX], *save = NULL, *tok;
	size_t n = 0;

	out[0] = '\0';
	if (!in || strlen(in) >= sizeof buf) {
		snprintf(why, whylen, "addresses: at most %d bytes",
		    STORE_USER_ADDRS_MAX - 1);
		return AR_EINVAL;
	}
	ar_strlcpy(buf, in, sizeof buf);
	for (tok = strtok_r(buf, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		char *e, *at;
		while (*tok == ' ' || *tok == '\t')
			tok++;
		e = tok + strlen(tok);
		while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (!*tok)
			continue;
		at = strrchr(tok, '@');
		for (char *p = tok; *p; p++) {
			if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127 ||
			    strchr("<>\"\\,;()[]", *p))
				at = NULL;
			*p = (char)tolower((unsigned char)*p);
		}
		if (!at || at == tok || !at[1] || strchr(tok, '@') != at ||
		    strlen(tok) >= STORE_ADDR_MAX) {
			snprintf(why, whylen, "address '%.64s': not "
			    "local@domain", tok);
			return AR_EINVAL;
		}
		if (n + strlen(tok) + 2 > outlen) {
			snprintf(why, whylen, "addresses: too many");
			return AR_EINVAL;
		}
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", n ? "," : "",
		    tok);
	}
	return 0;
}

int store_user_has_address(const store_user_t *u, const char *address)
{
	const char *p = u->addresses;
	size_t len = address ? strlen(address) : 0;

	while (len && *p) {
		size_t n = strcspn(p, ",");
		if (n == len && !strncasecmp(p, address, len))
			return 0;
		p += n;
		if (*p == ',')
			p++;
	}
	return AR_ENOENT;
}
