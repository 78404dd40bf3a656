/*
 * ctl_user.c - archivectl user: console accounts of a tenant (or
 * operators, who manage tenants and keys and read no mail).  Passwords are
 * read from standard input and never printed or logged; every change is
 * an "admin" entry in the tenant's log.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <unistd.h>

#include "ar.h"
#include "ctl.h"
#include "web/web.h"

#define USER_USAGE "user add (--tenant T | --operator) --role ROLE[,ROLE] " \
	"NAME  (password on stdin)\n" \
	"       user list (--tenant T | --operator)\n" \
	"       user set (--tenant T | --operator) NAME [--role ROLES] " \
	"[--disable | --enable]\n" \
	"                [--password (on stdin)] [--unlock] " \
	"[--totp enable|disable]\n" \
	"       (add and set: [--address ADDR[,ADDR]]: the user's own mail " \
	"addresses,\n" \
	"        what the recipient role sees of the quarantine)"

struct uargs {
	const char *tenant, *roles, *totp, *addresses;
	int operator, disable, enable, password, unlock;
	int first;
};

static int uparse(int argc, char **argv, struct uargs *a)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "operator", no_argument, NULL, 'o' },
		{ "role", required_argument, NULL, 'r' },
		{ "roles", required_argument, NULL, 'r' },
		{ "disable", no_argument, NULL, 'D' },
		{ "enable", no_argument, NULL, 'E' },
		{ "password", no_argument, NULL, 'p' },
		{ "unlock", no_argument, NULL, 'U' },
		{ "totp", required_argument, NULL, 'T' },
		{ "address", required_argument, NULL, 'A' },
		{ "addresses", required_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(a, 0, sizeof *a);
	optind = 0;
	while ((ch = getopt_long(argc, argv, "t:or:DEpUT:A:", opts, NULL)) != -1) {
		switch (ch) {
		case 't': a->tenant = optarg; break;
		case 'o': a->operator = 1; break;
		case 'r': a->roles = optarg; break;
		case 'D': a->disable = 1; break;
		case 'E': a->enable = 1; break;
		case 'p': a->password = 1; break;
		case 'U': a->unlock = 1; break;
		case 'T': a->totp = optarg; break;
		case 'A': a->addresses = optarg; break;
		default: return ctl_usage("usage: archivectl " USER_USAGE);
		}
	}
	if (!a->tenant == !a->operator)
		return ctl_usage("user: give --tenant NAME or --operator");
	if (a->addresses && a->operator)
		return ctl_usage("user: an operator has no mail addresses");
	a->first = optind;
	return 0;
}

/* One line of standard input, without its line end. */
static int read_password(char *pw, size_t len)
{
	size_t n;
	if (isatty(0))
		fputs("password: ", stderr);
	if (!fgets(pw, (int)len, stdin))
		return ctl_usage("user: give the password on standard input");
	n = strcspn(pw, "\r\n");
	pw[n] = '\0';
	if (n < 8)
		return ctl_usage("user: the password needs 8 characters or "
		    "more");
	return 0;
}

static int uaudit(struct ctl *c, const store_tenant_t *t, const char *action,
    const char *target, json_t *extra)
{
	json_t *d = extra ? extra : json_object();
	const char *user = getenv("USER");
	char *s;
	int rc;
	if (!t) {
		json_decref(extra);
		return 0;   /* operators belong to no tenant log */
	}
	json_object_set_new(d, "action", json_string(action));
	json_object_set_new(d, "by", json_string("archivectl"));
	json_object_set_new(d, "user", json_string(user ? user : "?"));
	json_object_set_new(d, "target", json_string(target));
	s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	rc = store_log_append(c->st, t->id, STORE_LOG_ADMIN, NULL, NULL, s,
	    NULL);
	free(s);
	return rc ? ctl_fail(rc, "audit log: %s", store_errmsg(c->st)) : 0;
}

static int list_cb(void *arg, const store_user_t *u)
{
	struct ctl *c = arg;
	char roles[128], t[32];
	store_roles_format(u->roles, roles, sizeof roles);
	if (c->json) {
		json_t *o = json_pack("{s:s,s:s,s:b,s:b,s:b,s:s,s:s}", "name",
		    u->name, "roles", roles, "disabled", u->disabled, "totp",
		    u->totp_enabled, "locked", u->locked_until > ar_now(),
		    "created", ar_time_fmt(u->created, t, sizeof t),
		    "addresses", u->addresses);
		char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		printf("%-24s %-28s%s%s%s%s%s\n", u->name, roles,
		    u->disabled ? " disabled" : "", u->totp_enabled ?
		    " totp" : "", u->locked_until > ar_now() ? " locked" : "",
		    u->addresses[0] ? " addresses=" : "", u->addresses);
	}
	return 0;
}

int cmd_user(struct ctl *c, int argc, char **argv)
{
	struct uargs a;
	store_tenant_t t, *tp = NULL;
	store_user_t u;
	const char *sub = argc > 1 ? argv[1] : NULL, *name;
	char pw[1100], uri[256];
	int rc;

	if (!sub)
		return ctl_usage("usage: archivectl " USER_USAGE);
	if ((rc = uparse(argc - 1, argv + 1, &a)))
		return rc;
	if (a.tenant) {
		if ((rc = ctl_tenant(c, a.tenant, &t)))
			return rc;
		tp = &t;
	}
	if (!strcmp(sub, "list"))
		return store_user_walk(c->st, tp ? tp->id : NULL, list_cb, c) ?
		    ctl_fail(AR_EIO, "users: %s", store_errmsg(c->st)) : CTL_OK;
	if (a.first + 1 != argc - 1)
		return ctl_usage("usage: archivectl " USER_USAGE);
	name = argv[a.first + 1];
	memset(&u, 0, sizeof u);
	if (!strcmp(sub, "add")) {
		if (a.operator)
			u.roles = STORE_ROLE_OPERATOR;
		else if (!a.roles || store_roles_parse(a.roles, &u.roles) ||
		    (u.roles & STORE_ROLE_OPERATOR))
			return ctl_usage("user add: --role admin, officer, "
			    "legal, auditor or recipient (several: "
			    "officer,auditor)");
		if (a.addresses && store_user_addresses_norm(a.addresses,
		    u.addresses, sizeof u.addresses, uri, sizeof uri))
			return ctl_usage("user add: --address: %s", uri);
		if (tp)
			memcpy(u.tenant, tp->id, STORE_TENANT_LEN);
		ar_strlcpy(u.name, name, sizeof u.name);
		u.created = ar_now();
		if ((rc = read_password(pw, sizeof pw)))
			return rc;
		rc = web_password_hash(pw, u.pwhash);
		sodium_memzero(pw, sizeof pw);
		if (rc)
			return ctl_fail(rc, "password: %s", ar_strerror(rc));
		rc = store_user_put(c->st, &u, 1);
		store_user_wipe(&u);
		if (rc)
			return ctl_fail(rc, "user %s: %s", name,
			    store_errmsg(c->st));
		if ((rc = uaudit(c, tp, "user_add", name, json_pack("{s:s}",
		    "roles", a.operator ? "operator" : a.roles))))
			return rc;
		printf("user %s added\n", name);
		return CTL_OK;
	}
	if (strcmp(sub, "set"))
		return ctl_usage("usage: archivectl " USER_USAGE);
	if ((rc = store_user_get(c->st, tp ? tp->id : NULL, name, &u)))
		return ctl_fail(rc, "no user %s%s%s", name, tp ? " in tenant " :
		    "", tp ? tp->name : "");
	json_t *changed = json_array();
	uri[0] = '\0';
	if (a.roles) {
		if (a.operator || store_roles_parse(a.roles, &u.roles) ||
		    (u.roles & STORE_ROLE_OPERATOR)) {
			json_decref(changed);
			store_user_wipe(&u);
			return ctl_usage("user set: --role admin, officer, "
			    "legal, auditor or recipient");
		}
		json_array_append_new(changed, json_string("roles"));
	}
	if (a.addresses) {
		if (store_user_addresses_norm(a.addresses, u.addresses,
		    sizeof u.addresses, uri, sizeof uri)) {
			json_decref(changed);
			store_user_wipe(&u);
			return ctl_usage("user set: --address: %s", uri);
		}
		uri[0] = '\0';
		json_array_append_new(changed, json_string("addresses"));
	}
	if (a.disable || a.enable) {
		u.disabled = a.disable;
		json_array_append_new(changed, json_string(a.disable ?
		    "disabled" : "enabled"));
	}
	if (a.unlock) {
		u.locked_until = 0;
		u.failures = 0;
		json_array_append_new(changed, json_string("unlock"));
	}
	if (a.password) {
		if ((rc = read_password(pw, sizeof pw)) ||
		    (rc = web_password_hash(pw, u.pwhash) ? ctl_fail(AR_EINVAL,
		    "password: 8 to 1024 bytes") : 0)) {
			sodium_memzero(pw, sizeof pw);
			json_decref(changed);
			store_user_wipe(&u);
			return rc;
		}
		sodium_memzero(pw, sizeof pw);
		json_array_append_new(changed, json_string("password"));
	}
	if (a.totp) {
		if (!strcmp(a.totp, "enable")) {
			web_totp_new(u.totp_secret);
			u.totp_enabled = 1;
			u.last_totp_step = 0;
			web_totp_uri(u.totp_secret, tp ? tp->name : NULL,
			    u.name, uri, sizeof uri);
		} else if (!strcmp(a.totp, "disable")) {
			u.totp_enabled = 0;
			sodium_memzero(u.totp_secret, sizeof u.totp_secret);
		} else {
			json_decref(changed);
			store_user_wipe(&u);
			return ctl_usage("--totp enable or disable");
		}
		json_array_append_new(changed, json_string("totp"));
	}
	rc = store_user_put(c->st, &u, 0);
	store_user_wipe(&u);
	if (rc) {
		json_decref(changed);
		return ctl_fail(rc, "user %s: %s", name, store_errmsg(c->st));
	}
	if ((rc = uaudit(c, tp, "user_change", name, json_pack("{s:o}",
	    "changed", changed))))
		return rc;
	if (uri[0]) {   /* printed once, for the user's authenticator */
		printf("%s\n", uri);
		sodium_memzero(uri, sizeof uri);
	} else {
		printf("user %s changed\n", name);
	}
	return CTL_OK;
}
