/*
 * admin.c - users of a tenant (its admins, or an operator creating a
 * tenant's first admin) and tenants and keys (operators).  Every change is
 * an "admin" entry in the tenant's log; passwords and TOTP secrets never
 * are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "ar.h"
#include "web_priv.h"

static json_t *roles_array(uint32_t roles)
{
	char buf[128], *save = NULL, *tok;
	json_t *a = json_array();
	store_roles_format(roles, buf, sizeof buf);
	for (tok = strtok_r(buf, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(tok));
	return a;
}

/* a comma-separated list as a JSON array */
static json_t *roles_array_of(const char *list)
{
	json_t *a = json_array();
	const char *p = list;

	while (p && *p) {
		size_t n = strcspn(p, ",");
		if (n)
			json_array_append_new(a, json_stringn(p, n));
		p += n;
		if (*p)
			p++;
	}
	return a;
}

/* "addresses": a string "a@x,b@y" or an array, into u; 0 or answered */
static int addresses_from_json(struct web_req *r, json_t *v, store_user_t *u)
{
	char buf[STORE_USER_ADDRS_MAX], why[160];
	size_t n = 0, i;
	json_t *e;

	buf[0] = '\0';
	if (json_is_string(v)) {
		ar_strlcpy(buf, json_string_value(v), sizeof buf);
		n = strlen(json_string_value(v));
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			if (!json_is_string(e))
				break;
			n += (size_t)snprintf(buf + (n < sizeof buf ? n : sizeof buf),
			    n < sizeof buf ? sizeof buf - n : 0, "%s%s", n ? "," :
			    "", json_string_value(e));
		}
		if (i < json_array_size(v))
			n = sizeof buf;
	} else {
		n = sizeof buf;
	}
	if (n >= sizeof buf || store_user_addresses_norm(buf, u->addresses,
	    sizeof u->addresses, why, sizeof why)) {
		web_reply_error(r, 400, "bad_addresses", n >= sizeof buf ?
		    "addresses: a list of local@domain (at most 1023 bytes)" :
		    why, NULL);
		return 1;
	}
	return 0;
}

static json_t *user_json(const store_user_t *u)
{
	char t[32];
	return json_pack("{s:s,s:o,s:b,s:b,s:b,s:i,s:s,s:o}", "name", u->name,
	    "roles", roles_array(u->roles), "disabled", u->disabled, "totp",
	    u->totp_enabled, "locked", u->locked_until > ar_now(), "failures",
	    (int)u->failures, "created", ar_time_fmt(u->created, t, sizeof t),
	    "addresses", roles_array_of(u->addresses));
}

/* roles as ["officer","auditor"] or "officer,auditor" */
static int roles_from_json(json_t *j, uint32_t *roles)
{
	char buf[128] = "";
	size_t i, n = 0;
	json_t *x;

	if (json_is_string(j))
		return store_roles_parse(json_string_value(j), roles);
	if (!json_is_array(j))
		return AR_EINVAL;
	json_array_foreach(j, i, x) {
		const char *s = json_string_value(x);
		if (!s || n + strlen(s) + 2 >= sizeof buf)
			return AR_EINVAL;
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s",
		    n ? "," : "", s);
	}
	return store_roles_parse(buf, roles);
}

struct list_ctx {
	json_t *a;
};

static int list_cb(void *arg, const store_user_t *u)
{
	struct list_ctx *c = arg;
	json_array_append_new(c->a, user_json(u));
	return 0;
}

static int users_list(struct web_req *r, const uint8_t tenant[16])
{
	struct list_ctx c = { json_array() };
	int rc = store_user_walk(r->w->st, tenant, list_cb, &c);
	if (rc) {
		json_decref(c.a);
		return web_reply_error(r, 503, "unavailable", ar_strerror(rc),
		    NULL);
	}
	return web_reply_json(r, 200, json_pack("{s:o}", "users", c.a));
}

static int users_add(struct web_req *r, const uint8_t tenant[16])
{
	json_t *b = web_body_json(r);
	const char *name, *pw;
	store_user_t u;
	int rc, ret;

	if (!b)
		return MHD_YES;
	memset(&u, 0, sizeof u);
	name = json_string_value(json_object_get(b, "name"));
	pw = json_string_value(json_object_get(b, "password"));
	if (!name || store_tenant_name_valid(name)) {
		ret = web_reply_error(r, 400, "bad_name", "name: 1-63 of a-z "
		    "0-9 . _ - starting with a letter or digit", NULL);
		goto out;
	}
	if (roles_from_json(json_object_get(b, "roles"), &u.roles) ||
	    (u.roles & STORE_ROLE_OPERATOR)) {
		ret = web_reply_error(r, 400, "bad_roles", "roles: one or more "
		    "of admin, officer, legal, auditor, recipient", NULL);
		goto out;
	}
	if (json_object_get(b, "addresses") && addresses_from_json(r,
	    json_object_get(b, "addresses"), &u)) {
		ret = MHD_YES;
		goto out;
	}
	if (!pw || web_password_hash(pw, u.pwhash)) {
		ret = web_reply_error(r, 400, "bad_password", "password: 8 to "
		    "1024 bytes", NULL);
		goto out;
	}
	memcpy(u.tenant, tenant, STORE_TENANT_LEN);
	ar_strlcpy(u.name, name, sizeof u.name);
	u.created = ar_now();
	rc = store_user_put(r->w->st, &u, 1);
	if (rc == AR_EEXIST) {
		ret = web_reply_error(r, 409, "exists", "a user of that name "
		    "exists", NULL);
		goto out;
	}
	if (rc) {
		ret = web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
		goto out;
	}
	web_audit(r, tenant, STORE_LOG_ADMIN, "user_add", NULL, NULL,
	    json_pack("{s:s,s:o}", "target", u.name, "roles",
	    roles_array(u.roles)));
	ret = web_reply_json(r, 201, user_json(&u));
out:
	store_user_wipe(&u);
	json_decref(b);
	return ret;
}

static int users_change(struct web_req *r, const uint8_t tenant[16],
    const char *name)
{
	json_t *b, *changed, *out, *v;
	store_user_t u;
	char uri[256] = "";
	int rc, ret, drop = 0;

	if (store_user_get(r->w->st, tenant, name, &u))
		return web_deny(r, "user", name);
	if (!(b = web_body_json(r))) {
		store_user_wipe(&u);
		return MHD_YES;
	}
	changed = json_array();
	if ((v = json_object_get(b, "roles"))) {
		uint32_t roles;
		if (roles_from_json(v, &roles) || (roles & STORE_ROLE_OPERATOR)) {
			ret = web_reply_error(r, 400, "bad_roles", "roles: one "
			    "or more of admin, officer, legal, auditor, recipient", NULL);
			goto out;
		}
		u.roles = roles;
		drop = 1;
		json_array_append_new(changed, json_string("roles"));
	}
	if ((v = json_object_get(b, "addresses"))) {
		if (addresses_from_json(r, v, &u)) {
			ret = MHD_YES;
			goto out;
		}
		drop = 1;
		json_array_append_new(changed, json_string("addresses"));
	}
	if ((v = json_object_get(b, "disabled"))) {
		if (!json_is_boolean(v)) {
			ret = web_reply_error(r, 400, "bad_request",
			    "disabled: true or false", NULL);
			goto out;
		}
		u.disabled = json_is_true(v);
		drop |= u.disabled;
		json_array_append_new(changed, json_string("disabled"));
	}
	if ((v = json_object_get(b, "password"))) {
		if (!json_is_string(v) || web_password_hash(
		    json_string_value(v), u.pwhash)) {
			ret = web_reply_error(r, 400, "bad_password",
			    "password: 8 to 1024 bytes", NULL);
			goto out;
		}
		drop = 1;
		json_array_append_new(changed, json_string("password"));
	}
	if ((v = json_object_get(b, "unlock")) && json_is_true(v)) {
		u.locked_until = 0;
		u.failures = 0;
		json_array_append_new(changed, json_string("unlock"));
	}
	if ((v = json_object_get(b, "totp"))) {
		const char *s = json_string_value(v);
		if (s && !strcmp(s, "enable")) {
			web_totp_new(u.totp_secret);
			u.totp_enabled = 1;
			u.last_totp_step = 0;
			web_totp_uri(u.totp_secret, r->sess.tenant_name, u.name,
			    uri, sizeof uri);
		} else if (s && !strcmp(s, "disable")) {
			u.totp_enabled = 0;
			sodium_memzero(u.totp_secret, sizeof u.totp_secret);
		} else {
			ret = web_reply_error(r, 400, "bad_request",
			    "totp: \"enable\" or \"disable\"", NULL);
			goto out;
		}
		drop = 1;
		json_array_append_new(changed, json_string("totp"));
	}
	if ((rc = store_user_put(r->w->st, &u, 0))) {
		ret = web_reply_error(r, 503, "unavailable",
		    store_errmsg(r->w->st), NULL);
		goto out;
	}
	if (drop)
		web_session_drop_user(r->w, tenant, u.name);
	web_audit(r, tenant, STORE_LOG_ADMIN, "user_change", NULL, NULL,
	    json_pack("{s:s,s:O}", "target", u.name, "changed", changed));
	out = user_json(&u);
	if (uri[0])   /* shown once, to hand to the user */
		json_object_set_new(out, "totp_uri", json_string(uri));
	ret = web_reply_json(r, 200, out);
out:
	sodium_memzero(uri, sizeof uri);
	json_decref(changed);
	store_user_wipe(&u);
	json_decref(b);
	return ret;
}

/* users, users/NAME under a tenant (the caller's, or the one an operator
 * names). */
static int users(struct web_req *r, const uint8_t tenant[16],
    const char *rest)
{
	if (!*rest) {
		if (!strcmp(r->method, "GET"))
			return users_list(r, tenant);
		if (!strcmp(r->method, "POST"))
			return web_require_csrf(r) ? MHD_YES :
			    users_add(r, tenant);
		return web_reply_error(r, 405, "method_not_allowed",
		    "users take GET or POST", NULL);
	}
	if (*rest != '/')
		return web_reply_error(r, 404, "no_such_endpoint",
		    "no such API endpoint", NULL);
	if (strcmp(r->method, "PATCH"))
		return web_reply_error(r, 405, "method_not_allowed",
		    "a user takes PATCH", NULL);
	if (web_require_csrf(r))
		return MHD_YES;
	return users_change(r, tenant, rest + 1);
}

/* --- tenants (operators) ---------------------------------------------- */

/* The names archivectl and the documentation use. */
static const char *tenant_state(int s)
{
	static const char *const names[] = { "active", "terminated",
	    "inactive", "shredded" };
	return s >= 0 && (size_t)s < AR_ARRAY_LEN(names) ? names[s] :
	    "unknown";
}

static int tenant_cb(void *arg, const store_tenant_t *t)
{
	json_t *a = arg, *j = json_array();
	char c[32];
	for (size_t i = 0; i < t->n_journal; i++)
		json_array_append_new(j, json_string(t->journal[i]));
	json_array_append_new(a, json_pack("{s:s,s:s,s:i,s:i,s:s,s:o}",
	    "name", t->name, "state", tenant_state(t->state), "key_version",
	    (int)t->key_version, "retention_days", (int)t->retention_days,
	    "created", ar_time_fmt(t->created, c, sizeof c), "journal", j));
	return 0;
}

static int tenant_add(struct web_req *r)
{
	json_t *b = web_body_json(r), *ja, *x;
	const char *name, *addrs[STORE_JOURNAL_MAX];
	size_t n = 0, i;
	store_tenant_t t;
	json_int_t days;
	int rc, ret;

	if (!b)
		return MHD_YES;
	name = json_string_value(json_object_get(b, "name"));
	ja = json_object_get(b, "journal");
	days = json_object_get(b, "retention_days") ? json_integer_value(
	    json_object_get(b, "retention_days")) : 2557;
	if (!name || !json_is_array(ja) || json_array_size(ja) == 0 ||
	    json_array_size(ja) > STORE_JOURNAL_MAX || days < 1 ||
	    days > 36500) {
		json_decref(b);
		return web_reply_error(r, 400, "bad_request", "give name, "
		    "journal (1-16 addresses) and retention_days (1..36500)",
		    NULL);
	}
	json_array_foreach(ja, i, x) {
		if (!json_is_string(x)) {
			json_decref(b);
			return web_reply_error(r, 400, "bad_request",
			    "journal: addresses as strings", NULL);
		}
		addrs[n++] = json_string_value(x);
	}
	rc = store_tenant_add(r->w->st, name, addrs, n, (uint32_t)days, &t);
	if (rc)
		ret = web_reply_error(r, rc == AR_EEXIST ? 409 : rc == AR_EINVAL
		    ? 400 : 503, rc == AR_EEXIST ? "exists" : rc == AR_EINVAL ?
		    "bad_request" : "unavailable", store_errmsg(r->w->st), NULL);
	else {
		json_t *a = json_array();
		web_audit(r, t.id, STORE_LOG_ADMIN, "tenant_add", NULL, NULL,
		    NULL);
		tenant_cb(a, &t);
		ret = web_reply_json(r, 201, json_incref(json_array_get(a, 0)));
		json_decref(a);
	}
	json_decref(b);
	return ret;
}

static int tenants(struct web_req *r, const char *rest)
{
	char name[STORE_NAME_MAX];
	store_tenant_t t;
	size_t n;
	int rc;

	if (!*rest) {
		if (!strcmp(r->method, "GET")) {
			json_t *a = json_array();
			store_tenant_walk(r->w->st, tenant_cb, a);
			return web_reply_json(r, 200, json_pack("{s:o}",
			    "tenants", a));
		}
		if (!strcmp(r->method, "POST"))
			return web_require_csrf(r) ? MHD_YES : tenant_add(r);
		return web_reply_error(r, 405, "method_not_allowed",
		    "tenants take GET or POST", NULL);
	}
	rest++;
	n = strcspn(rest, "/");
	if (n == 0 || n >= sizeof name)
		return web_reply_error(r, 404, "not_found", "no such tenant",
		    NULL);
	memcpy(name, rest, n);
	name[n] = '\0';
	rest += n;
	if (store_tenant_get(r->w->st, name, &t))
		return web_reply_error(r, 404, "not_found", "no such tenant",
		    NULL);
	if (!strcmp(rest, "/rotate-key")) {
		uint32_t v;
		if (strcmp(r->method, "POST"))
			return web_reply_error(r, 405, "method_not_allowed",
			    "rotate-key takes POST", NULL);
		if (web_require_csrf(r))
			return MHD_YES;
		if ((rc = store_tenant_rotate_key(r->w->st, name, &v)))
			return web_reply_error(r, 503, "unavailable",
			    store_errmsg(r->w->st), NULL);
		web_audit(r, t.id, STORE_LOG_ADMIN, "key_rotate", NULL, NULL,
		    json_pack("{s:i}", "key_version", (int)v));
		return web_reply_json(r, 200, json_pack("{s:s,s:i}", "tenant",
		    name, "key_version", (int)v));
	}
	if (!strncmp(rest, "/users", 6))
		return users(r, t.id, rest + 6);
	return web_reply_error(r, 404, "no_such_endpoint",
	    "no such API endpoint", NULL);
}

int web_api_admin(struct web_req *r, const char *path)
{
	if (!strncmp(path, "users", 5) && (path[5] == '\0' || path[5] == '/')) {
		if (web_require(r, STORE_ROLE_ADMIN))
			return MHD_YES;
		return users(r, r->sess.tenant, path + 5);
	}
	if (!strncmp(path, "tenants", 7) && (path[7] == '\0' ||
	    path[7] == '/')) {
		if (web_require(r, STORE_ROLE_OPERATOR))
			return MHD_YES;
		return tenants(r, path + 7);
	}
	return AR_ENOENT;
}
