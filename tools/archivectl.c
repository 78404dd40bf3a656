/*
 * archivectl - the administration command of archived.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ar.h"
#include "ctl.h"

static const struct {
	const char *name;
	int (*fn)(struct ctl *, int, char **);
	int needs_store;
	const char *usage;
} commands[] = {
	{ "init", cmd_init, 0, "init [--keysvc-socket PATH] [--backend fs|s3]\n"
	  "       init --backend s3 --s3-endpoint URL --s3-bucket B "
	  "[--s3-region R] [--s3-prefix P]\n"
	  "                  [--s3-url-style path|virtual] [--s3-ca-file F] "
	  "[--s3-access-key K] [--s3-connections N]" },
	{ "rebuild", cmd_rebuild, 1, "rebuild --from-store [--tenant-id HEX]... "
	  "[--no-index]  (catalog, log and index from the bucket)" },
	{ "migrate", cmd_migrate, 1, "migrate --to s3 [--switch]  (copy an fs "
	  "archive into the s3_* bucket, verified, resumable)" },
	{ "bucket", cmd_bucket, 0, "bucket check  (s3: credentials, versioning, "
	  "Object Lock, clock)" },
	{ "tenant", cmd_tenant, 1, "tenant add NAME --journal-address ADDR "
	  "[--journal-address ADDR ...] [--retention-days N]\n"
	  "       tenant list | tenant show NAME | tenant rotate-key NAME\n"
	  "       tenant set NAME [--network CIDR]... [--no-networks] "
	  "[--require-tls yes|no]\n"
	  "                  [--require-auth yes|no] [--smtp-user USER "
	  "(password on stdin)]\n"
	  "       tenant dkim add --tenant NAME --domain D --selector S "
	  "[--key-file PEM | --generate [--algorithm rsa|ed25519]]\n"
	  "       tenant dkim list --tenant NAME | tenant dkim remove "
	  "--tenant NAME --domain D [--selector S]\n"
	  "       tenant terminate NAME [--export-days N] [--inactive-days N]"
	  "\n       tenant advance NAME [--force]  (terminated -> inactive "
	  "-> shredded)" },
	{ "import", cmd_import, 1, "import --tenant NAME [--no-index] PATH..." },
	{ "list", cmd_list, 1, "list --tenant NAME" },
	{ "show", cmd_show, 1, "show --tenant NAME ID" },
	{ "get", cmd_get, 1, "get --tenant NAME ID > message.eml\n"
	  "       get --tenant NAME --out DIR ID...  (DIR/ID.eml each)" },
	{ "log", cmd_log, 1, "log --tenant NAME [--from SEQ]" },
	{ "verify", cmd_verify, 1, "verify [--tenant NAME]" },
	{ "checkpoint", cmd_checkpoint, 1, "checkpoint [--tenant NAME]" },
	{ "search", cmd_search, 1, "search --tenant NAME [--limit N] "
	  "[--cursor C] [--order date|rank] QUERY" },
	{ "reindex", cmd_reindex, 1, "reindex [--tenant NAME [--language LANG]]  "
	  "(rebuild the index from the store, online)" },
	{ "reconcile", cmd_reconcile, 1, "reconcile [--tenant NAME]  (index "
	  "what is missing, drop what is gone)" },
	{ "stats", cmd_stats, 1, "stats" },
	{ "export", cmd_export, 1, "export --tenant NAME [--query Q | "
	  "--hold NAME | --all] (--dir DIR | --zip FILE)\n"
	  "                  [--mbox] [--dat]  (a directory export resumes "
	  "where it stopped)" },
	{ "verify-export", cmd_verify_export, 0, "verify-export DIR  "
	  "(signature and every file of an export)" },
	{ "retention", cmd_retention, 1, "retention show|set|apply --tenant "
	  "NAME ... | retention rule add|remove --tenant NAME ..." },
	{ "hold", cmd_hold, 1, "hold create|list|show|release --tenant NAME "
	  "... (legal holds)" },
	{ "dispose", cmd_dispose, 1, "dispose [--tenant NAME] [--dry-run] "
	  "[--batch N] [--verbose]" },
	{ "gateway", cmd_gateway, 1, "gateway recipients|allow|block "
	  "add|remove|list --tenant NAME [--for RCPT] [ENTRY...]  (the "
	  "gateway's lists: an address or @domain)" },
	{ "relay", cmd_relay, 1, "relay queue [--tenant NAME] [--entries] | "
	  "stats [--tenant NAME] [--days N] | "
	  "retry [--tenant NAME ID] | bounce --tenant NAME ID | hold DOMAIN | "
	  "release DOMAIN  (the gateway's delivery queue)" },
	{ "quarantine", cmd_quarantine, 1, "quarantine list --tenant NAME "
	  "[--recipient A] [--sender A] [--verdict V] [--since AGE] | show|get|"
	  "delete --tenant NAME ID | release --tenant NAME [--allow-sender] ID"
	  },
	{ "queue", cmd_queue, 1, "queue [--limit N | --all]  (the SMTP spool: "
	  "waiting, failing and damaged; the oldest 100 listed)" },
	{ "user", cmd_user, 1, "user add (--tenant T | --operator) --role "
	  "ROLE[,ROLE] NAME  (password on stdin)\n"
	  "       user list (--tenant T | --operator)\n"
	  "       user set (--tenant T | --operator) NAME [--role ROLES] "
	  "[--disable|--enable]\n"
	  "                [--password (stdin)] [--unlock] "
	  "[--totp enable|disable]" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: archivectl [-d DATADIR] [--json] COMMAND ...\n\n"
	    "DATADIR defaults to $ARCHIVED_DATA, else ./var/data.\n"
	    "Commands:\n");
	for (size_t i = 0; i < AR_ARRAY_LEN(commands); i++)
		fprintf(f, "  archivectl %s\n", commands[i].usage);
}

int ctl_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	fputs("archivectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return ar_status_temporary(rc) && rc != AR_EIO ? CTL_TEMPFAIL
	    : CTL_FAIL;
}

int ctl_usage(const char *fmt, ...)
{
	va_list ap;
	fputs("archivectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (archivectl --help lists the commands)\n", stderr);
	return CTL_USAGE;
}

void ctl_json_out(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	fputc('\n', stdout);
	json_decref(j);
}

int ctl_open(struct ctl *c)
{
	char err[1024];
	int rc;

	if ((rc = ar_config_load(&c->cfg, c->data_dir, err, sizeof err)))
		return ctl_fail(rc, "%s", err);
	if ((rc = keysvc_open(&c->ks, c->cfg.keysvc_socket,
	    (int)c->cfg.keysvc_timeout_ms)))
		return ctl_fail(rc, "key service client: %s", ar_strerror(rc));
	if ((rc = ar_config_open_store(&c->cfg, c->ks, &c->be, &c->st, err,
	    sizeof err)))
		return ctl_fail(rc, "%s", err);
	return 0;
}

void ctl_close(struct ctl *c)
{
	search_close(c->idx);
	c->idx = NULL;
	store_close(c->st);
	if (c->be)
		store_backend_close(c->be);
	if (c->ks)
		keysvc_close(c->ks);
}

int ctl_tenant(struct ctl *c, const char *name, store_tenant_t *t)
{
	int rc = store_tenant_get(c->st, name, t);
	if (rc == AR_ENOENT)
		return ctl_fail(rc, "no tenant named '%s' (archivectl tenant "
		    "list shows them)", name);
	if (rc)
		return ctl_fail(rc, "tenant %s: %s", name, store_errmsg(c->st));
	return 0;
}

int ctl_object_id(const char *hex, uint8_t id[STORE_ID_LEN])
{
	if (ar_unhex(hex, id, STORE_ID_LEN))
		return ctl_usage("'%s' is not an object id (32 hex digits)",
		    hex);
	return 0;
}

int ctl_audit(struct ctl *c, const store_tenant_t *t, const char *action,
    const uint8_t *object)
{
	json_t *d = json_object();
	const char *user = getenv("USER");
	char *s;
	int rc;

	json_object_set_new(d, "action", json_string(action));
	json_object_set_new(d, "by", json_string("archivectl"));
	json_object_set_new(d, "user", json_string(user ? user : "?"));
	json_object_set_new(d, "uid", json_integer(getuid()));
	s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	rc = store_log_append(c->st, t->id, STORE_LOG_ACCESS, object, NULL, s,
	    NULL);
	free(s);
	if (rc)
		return ctl_fail(rc, "audit log: %s", store_errmsg(c->st));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c;
	int ch, rc;

	memset(&c, 0, sizeof c);
	ar_process_init("archivectl");
	ar_log_set_level(AR_LOG_WARN);
	umask(077);
	c.data_dir = getenv("ARCHIVED_DATA");
	if (!c.data_dir || !*c.data_dir)
		c.data_dir = "./var/data";
	/* Global options stop at the command name. */
	while ((ch = getopt_long(argc, argv, "+d:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': c.data_dir = optarg; break;
		case 'j': c.json = 1; break;
		case 'h': usage(stdout); return CTL_OK;
		default: usage(stderr); return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_USAGE;
	}
	/* -d and --json may also follow the command: take them out. */
	{
		int out = optind + 1;
		for (int i = optind + 1; i < argc; i++) {
			if ((!strcmp(argv[i], "-d") ||
			    !strcmp(argv[i], "--data")) && i + 1 < argc) {
				c.data_dir = argv[++i];
			} else if (!strncmp(argv[i], "--data=", 7)) {
				c.data_dir = argv[i] + 7;
			} else if (!strcmp(argv[i], "--json")) {
				c.json = 1;
			} else if (!strcmp(argv[i], "--")) {
				while (i < argc)
					argv[out++] = argv[i++];
			} else {
				argv[out++] = argv[i];
			}
		}
		argc = out;
		argv[argc] = NULL;
	}
	for (size_t i = 0; i < AR_ARRAY_LEN(commands); i++) {
		if (strcmp(argv[optind], commands[i].name))
			continue;
		if (commands[i].needs_store && (rc = ctl_open(&c))) {
			ctl_close(&c);
			return rc;
		}
		optind++;
		/* Subcommands parse their own options, -d/--json included. */
		rc = commands[i].fn(&c, argc - optind + 1, argv + optind - 1);
		ctl_close(&c);
		return rc;
	}
	return ctl_usage("unknown command '%s'", argv[optind]);
}
