/*
 * ctl_tenant.c - archivectl init and tenant commands.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ar.h"
#include "ctl.h"
#include "net.h"

#include <sodium.h>
#include <unistd.h>

int cmd_init(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keysvc-socket", required_argument, NULL, 's' },
		{ "backend", required_argument, NULL, 'b' },
		{ "s3-endpoint", required_argument, NULL, 'e' },
		{ "s3-region", required_argument, NULL, 'r' },
		{ "s3-bucket", required_argument, NULL, 'B' },
		{ "s3-prefix", required_argument, NULL, 'p' },
		{ "s3-url-style", required_argument, NULL, 'u' },
		{ "s3-ca-file", required_argument, NULL, 'c' },
		{ "s3-access-key", required_argument, NULL, 'a' },
		{ "s3-connections", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct { int opt; const char *name; } map[] = {
		{ 'b', "store_backend" }, { 'e', "s3_endpoint" },
		{ 'r', "s3_region" }, { 'B', "s3_bucket" }, { 'p', "s3_prefix" },
		{ 'u', "s3_url_style" }, { 'c', "s3_ca_file" },
		{ 'a', "s3_access_key" }, { 'n', "s3_connections" },
	};
	const char *sock = NULL, *set[16];
	char path[4096], err[1024], *owned[16];
	size_t nset = 0;
	int ch, rc, s3 = 0;
	struct stat st;

	optind = 0;   /* 0: full getopt re-initialisation */
	while ((ch = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
		size_t i;
		if (ch == 's') {
			sock = optarg;
			continue;
		}
		for (i = 0; i < AR_ARRAY_LEN(map) && map[i].opt != ch; i++)
			;
		if (i == AR_ARRAY_LEN(map) || nset + 2 >= AR_ARRAY_LEN(set))
			return ctl_usage("init takes [--keysvc-socket PATH] "
			    "[--backend fs|s3 --s3-endpoint URL --s3-bucket B "
			    "...]");
		if (ch == 'b')
			s3 = !strcmp(optarg, "s3");
		if (asprintf(&owned[nset], "%s=%s", map[i].name, optarg) < 0)
			return ctl_fail(AR_ENOMEM, "out of memory");
		set[nset] = owned[nset];
		nset++;
	}
	set[nset] = NULL;
	if (optind != argc)
		return ctl_usage("init takes no arguments");
	snprintf(path, sizeof path, "%s/%s", c->data_dir, AR_CONFIG_FILE);
	if (stat(path, &st) == 0)
		rc = ctl_fail(AR_EEXIST, "%s is already initialised (%s "
		    "exists)", c->data_dir, path);
	else if ((rc = ar_mkdirs(c->data_dir, 0700)))
		rc = ctl_fail(rc, "%s: %s", c->data_dir, ar_strerror(rc));
	else if (chmod(c->data_dir, 0700),
	    (rc = ar_config_write(c->data_dir, sock, set, err, sizeof err)))
		rc = ctl_fail(rc, "%s", err);
	for (size_t i = 0; i < nset; i++)
		free(owned[i]);
	if (rc)
		return rc;
	for (const char *const *d = (const char *const[]){ "objects",
	    "catalog", "spool", "index", NULL }; *d; d++) {
		if (s3 && !strcmp(*d, "objects"))
			continue;
		snprintf(path, sizeof path, "%s/%s", c->data_dir, *d);
		if ((rc = ar_mkdirs(path, 0700)))
			return ctl_fail(rc, "%s: %s", path, ar_strerror(rc));
	}
	printf("initialised %s (configuration in %s/%s)\n", c->data_dir,
	    c->data_dir, AR_CONFIG_FILE);
	if (s3)
		printf("object store: s3; archivectl bucket check tests the "
		    "bucket\n");
	return CTL_OK;
}

static const char *state_name(int s)
{
	static const char *names[] = { "active", "terminated", "inactive",
	    "shredded" };
	return s >= 0 && s < 4 ? names[s] : "unknown";
}

static json_t *tenant_json(struct ctl *c, const store_tenant_t *t)
{
	char hex[2 * STORE_TENANT_LEN + 1], ts[32];
	json_t *o = json_object(), *j = json_array();

	for (size_t i = 0; i < t->n_journal; i++)
		json_array_append_new(j, json_string(t->journal[i]));
	json_object_set_new(o, "id", json_string(ar_hex(t->id,
	    STORE_TENANT_LEN, hex)));
	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "journal_addresses", j);
	json_object_set_new(o, "retention_days",
	    json_integer(t->retention_days));
	json_object_set_new(o, "key_version", json_integer(t->key_version));
	json_object_set_new(o, "created", json_string(ar_time_fmt(t->created,
	    ts, sizeof ts)));
	json_object_set_new(o, "state", json_string(state_name(t->state)));
	json_object_set_new(o, "state_since", t->state_since ? json_string(
	    ar_time_fmt(t->state_since, ts, sizeof ts)) : json_null());
	json_object_set_new(o, "terminated_days",
	    json_integer(t->terminated_days));
	json_object_set_new(o, "inactive_days", json_integer(t->inactive_days));
	j = json_array();
	for (size_t i = 0; i < t->n_networks; i++)
		json_array_append_new(j, json_string(t->networks[i]));
	json_object_set_new(o, "smtp_networks", j);
	json_object_set_new(o, "smtp_require_tls",
	    json_boolean(t->require_tls));
	json_object_set_new(o, "smtp_require_auth",
	    json_boolean(t->require_auth));
	json_object_set_new(o, "smtp_user", t->smtp_user[0] ?
	    json_string(t->smtp_user) : json_null());
	ctl_gw_tenant_json(c, t, o);
	return o;
}

static void tenant_print(struct ctl *c, const store_tenant_t *t)
{
	char hex[2 * STORE_TENANT_LEN + 1], ts[32];
	printf("name:            %s\n", t->name);
	printf("id:              %s\n", ar_hex(t->id, STORE_TENANT_LEN, hex));
	printf("state:           %s\n", state_name(t->state));
	if (t->state != STORE_TENANT_ACTIVE) {
		char since[32];
		printf("state since:     %s\n", ar_time_fmt(t->state_since,
		    since, sizeof since));
	}
	printf("windows:         terminated %u days, inactive %u days\n",
	    t->terminated_days, t->inactive_days);
	printf("created:         %s\n", ar_time_fmt(t->created, ts,
	    sizeof ts));
	printf("retention days:  %u\n", t->retention_days);
	printf("key version:     %u\n", t->key_version);
	for (size_t i = 0; i < t->n_journal; i++)
		printf("journal address: %s\n", t->journal[i]);
	for (size_t i = 0; i < t->n_networks; i++)
		printf("smtp network:    %s\n", t->networks[i]);
	printf("smtp tls:        %s\n", t->require_tls ? "required" :
	    "optional");
	printf("smtp auth:       %s%s%s\n", t->require_auth ? "required" :
	    "optional", t->smtp_user[0] ? ", user " : "", t->smtp_user);
	ctl_gw_tenant_print(c, t);
}

static int yesno(const char *v, int *out)
{
	if (!strcmp(v, "yes")) *out = 1;
	else if (!strcmp(v, "no")) *out = 0;
	else return ctl_usage("'%s': say yes or no", v);
	return 0;
}

/* tenant set NAME [--network CIDR]... [--no-networks]
 *   [--require-tls yes|no] [--require-auth yes|no] [--smtp-user USER]
 * The SMTP password is read from standard input (one line). */
static int tenant_set(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "network", required_argument, NULL, 'n' },
		{ "no-networks", no_argument, NULL, 'N' },
		{ "require-tls", required_argument, NULL, 't' },
		{ "require-auth", required_argument, NULL, 'a' },
		{ "smtp-user", required_argument, NULL, 'u' },
		/* the filtering gateway: a domain and its delivery ... */
		{ "domain", required_argument, NULL, 'D' },
		{ "relay-to", required_argument, NULL, 'D' },
		{ "tls", required_argument, NULL, 'D' },
		{ "tls-ca", required_argument, NULL, 'D' },
		{ "tls-pin", required_argument, NULL, 'D' },
		{ "check-recipients", required_argument, NULL, 'D' },
		{ "remove-domain", required_argument, NULL, 'D' },
		/* ... and the policy */
		{ "spam-tag", required_argument, NULL, 'P' },
		{ "spam-quarantine", required_argument, NULL, 'P' },
		{ "spam-reject", required_argument, NULL, 'P' },
		{ "virus-action", required_argument, NULL, 'P' },
		{ "blocked-action", required_argument, NULL, 'P' },
		{ "encrypted-action", required_argument, NULL, 'P' },
		{ "dmarc-reject", required_argument, NULL, 'P' },
		{ "unscanned", required_argument, NULL, 'P' },
		{ "blocked-types", required_argument, NULL, 'P' },
		{ "max-size", required_argument, NULL, 'P' },
		{ "quarantine-days", required_argument, NULL, 'P' },
		{ "queue-days", required_argument, NULL, 'P' },
		{ "delay-dsn-hours", required_argument, NULL, 'P' },
		{ "archive-quarantined", required_argument, NULL, 'P' },
		{ "digest", required_argument, NULL, 'P' },
		{ "outbound-network", required_argument, NULL, 'P' },
		{ "no-outbound-networks", no_argument, NULL, 'P' },
		{ "outbound-rate", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_gw_domain dom;
	store_tenant_t t;
	struct ar_cidr cidr;
	int ch, rc, nets_given = 0, li;
	const char *user = NULL, *name;

	optind = 0;   /* 0: full getopt re-initialisation */
	if (argc < 2)
		return ctl_usage("tenant set NAME [options]");
	name = argv[1];   /* getopt permutes argv: keep the name itself */
	if ((rc = ctl_tenant(c, name, &t)))
		return rc;
	memset(&dom, 0, sizeof dom);
	while ((ch = getopt_long(argc, argv, "", opts, &li)) != -1) {
		switch (ch) {
		case 'D':
			if ((rc = ctl_gw_domain_opt(&dom, opts[li].name, optarg)))
				return rc;
			break;
		case 'P':
			if ((rc = ctl_gw_policy_opt(&t.gw, opts[li].name,
			    optarg)))
				return rc;
			break;
		case 'n':
			if (ar_cidr_parse(optarg, &cidr))
				return ctl_usage("--network '%s': not an address "
				    "or address/prefix", optarg);
			if (!nets_given++)
				t.n_networks = 0;
			if (t.n_networks == STORE_NETWORKS_MAX)
				return ctl_usage("at most %d networks",
				    STORE_NETWORKS_MAX);
			ar_strlcpy(t.networks[t.n_networks++], optarg,
			    STORE_CIDR_MAX);
			break;
		case 'N':
			t.n_networks = 0;
			nets_given++;
			break;
		case 't':
			if ((rc = yesno(optarg, &t.require_tls)))
				return rc;
			break;
		case 'a':
			if ((rc = yesno(optarg, &t.require_auth)))
				return rc;
			break;
		case 'u':
			user = optarg;
			break;
		default:
			return ctl_usage("tenant set NAME [--network CIDR]... "
			    "[--no-networks] [--require-tls yes|no] "
			    "[--require-auth yes|no] [--smtp-user USER] "
			    "[--domain D [--relay-to HOST:PORT]... [--tls "
			    "none|opportunistic|verify] [--tls-ca FILE] "
			    "[--tls-pin SHA256] [--check-recipients yes|no]] "
			    "[--remove-domain D] [gateway policy options, "
			    "docs/archivectl.md]");
		}
	}
	if (optind != argc - 1 || strcmp(argv[optind], name))
		return ctl_usage("tenant set takes one NAME");
	if (user) {
		char pw[256];
		size_t n;
		if (strlen(user) == 0 || strlen(user) >= sizeof t.smtp_user)
			return ctl_usage("--smtp-user: 1 to %zu characters",
			    sizeof t.smtp_user - 1);
		/* an AUTH identity: printable, no spaces (a control byte or
		 * a line break would reach the logs and SMTP replies) */
		for (const char *p = user; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
				return ctl_usage("--smtp-user: no spaces or "
				    "control characters (byte %zu)",
				    (size_t)(p - user));
		if (isatty(STDIN_FILENO))
			fprintf(stderr, "SMTP password for %s: ", user);
		if (!fgets(pw, sizeof pw, stdin))
			return ctl_fail(AR_EINVAL, "no password on standard "
			    "input");
		n = strcspn(pw, "\r\n");
		pw[n] = '\0';
		if (n < 12) {
			sodium_memzero(pw, sizeof pw);
			return ctl_fail(AR_EINVAL, "the SMTP password must have "
			    "at least 12 characters");
		}
		if (crypto_pwhash_str(t.smtp_pass_hash, pw, n,
		    crypto_pwhash_OPSLIMIT_INTERACTIVE,
		    crypto_pwhash_MEMLIMIT_INTERACTIVE)) {
			sodium_memzero(pw, sizeof pw);
			return ctl_fail(AR_ENOMEM, "password hashing failed");
		}
		sodium_memzero(pw, sizeof pw);
		ar_strlcpy(t.smtp_user, user, sizeof t.smtp_user);
	}
	if (t.require_auth && !t.smtp_user[0])
		return ctl_fail(AR_EINVAL, "--require-auth yes needs "
		    "--smtp-user USER (password on standard input)");
	if ((rc = store_tenant_update(c->st, &t)))
		return ctl_fail(rc, "tenant set %s: %s", t.name,
		    store_errmsg(c->st));
	if ((rc = ctl_gw_domain_apply(c, &t, &dom)))
		return rc;
	if (c->json)
		ctl_json_out(tenant_json(c, &t));
	else
		tenant_print(c, &t);
	return CTL_OK;
}

static int tenant_add(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "journal-address", required_argument, NULL, 'a' },
		{ "retention-days", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *addrs[STORE_JOURNAL_MAX];
	size_t naddr = 0;
	long days = c->cfg.default_retention_days;
	store_tenant_t t;
	char *end;
	int ch, rc;

	optind = 0;   /* 0: full getopt re-initialisation */
	while ((ch = getopt_long(argc, argv, "a:r:", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (naddr == STORE_JOURNAL_MAX)
				return ctl_usage("at most %d journal addresses",
				    STORE_JOURNAL_MAX);
			addrs[naddr++] = optarg;
			break;
		case 'r':
			errno = 0;
			days = strtol(optarg, &end, 10);
			if (*end || errno || days < 1 || days > 36500)
				return ctl_usage("--retention-days '%s': a "
				    "number of days from 1 to 36500", optarg);
			break;
		default:
			return ctl_usage("tenant add NAME --journal-address "
			    "ADDR [--retention-days N]");
		}
	}
	if (optind + 1 != argc)
		return ctl_usage("tenant add takes one NAME");
	if (naddr == 0)
		return ctl_usage("tenant add needs --journal-address ADDR (the "
		    "address journal reports are sent to)");
	rc = store_tenant_add(c->st, argv[optind], addrs, naddr,
	    (uint32_t)days, &t);
	if (rc)
		return ctl_fail(rc, "tenant add %s: %s", argv[optind],
		    store_errmsg(c->st));
	if (c->json)
		ctl_json_out(tenant_json(c, &t));
	else
		printf("tenant %s created (retention %u days, journal "
		    "address %s%s)\n", t.name, t.retention_days, t.journal[0],
		    t.n_journal > 1 ? " ..." : "");
	return CTL_OK;
}

struct list_ctx {
	json_t *arr;
	int json;
	struct ctl *c;
};

static int list_cb(void *arg, const store_tenant_t *t)
{
	struct list_ctx *l = arg;
	if (l->json)
		json_array_append_new(l->arr, tenant_json(l->c, t));
	else
		printf("%-24s %-10s %6u days  %s\n", t->name,
		    state_name(t->state), t->retention_days,
		    t->n_journal ? t->journal[0] : "-");
	return 0;
}

int cmd_tenant(struct ctl *c, int argc, char **argv)
{
	store_tenant_t t;
	int rc;

	if (argc < 2)
		return ctl_usage("tenant needs add, list, show, set, dkim or "
		    "rotate-key");
	if (!strcmp(argv[1], "add"))
		return tenant_add(c, argc - 1, argv + 1);
	if (!strcmp(argv[1], "list")) {
		struct list_ctx l = { json_array(), c->json, c };
		if (argc != 2)
			return ctl_usage("tenant list takes no arguments");
		if (!c->json)
			printf("%-24s %-10s %11s  %s\n", "NAME", "STATE",
			    "RETENTION", "JOURNAL ADDRESS");
		rc = store_tenant_walk(c->st, list_cb, &l);
		if (rc) {
			json_decref(l.arr);
			return ctl_fail(rc, "%s", store_errmsg(c->st));
		}
		if (c->json)
			ctl_json_out(l.arr);
		else
			json_decref(l.arr);
		return CTL_OK;
	}
	if (!strcmp(argv[1], "show")) {
		if (argc != 3)
			return ctl_usage("tenant show NAME");
		if ((rc = ctl_tenant(c, argv[2], &t)))
			return rc;
		if (c->json)
			ctl_json_out(tenant_json(c, &t));
		else
			tenant_print(c, &t);
		return CTL_OK;
	}
	if (!strcmp(argv[1], "set"))
		return tenant_set(c, argc - 1, argv + 1);
	if (!strcmp(argv[1], "dkim"))
		return ctl_tenant_dkim(c, argc - 1, argv + 1);
	if (!strcmp(argv[1], "terminate") || !strcmp(argv[1], "advance"))
		return ctl_tenant_lifecycle(c, argc - 1, argv + 1);
	if (!strcmp(argv[1], "rotate-key")) {
		uint32_t v;
		if (argc != 3)
			return ctl_usage("tenant rotate-key NAME");
		if ((rc = store_tenant_rotate_key(c->st, argv[2], &v)))
			return ctl_fail(rc, "rotate-key %s: %s", argv[2],
			    store_errmsg(c->st));
		printf("tenant %s: new messages use key version %u; older "
		    "versions still decrypt\n", argv[2], v);
		return CTL_OK;
	}
	return ctl_usage("unknown tenant command '%s'", argv[1]);
}
