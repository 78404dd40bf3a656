/*
 * backup_cli.c - archive-keysvc backup | restore | backup-info (see
 * docs/keysvc.md "Backup and restore").
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ar.h"
#include "keysvc/backup.h"
#include "keysvc/cli.h"

static int parse_cost(const char *v, enum keystore_cost *cost)
{
	if (!strcmp(v, "interactive"))
		*cost = KEYSTORE_COST_INTERACTIVE;
	else if (!strcmp(v, "moderate"))
		*cost = KEYSTORE_COST_MODERATE;
	else if (!strcmp(v, "sensitive"))
		*cost = KEYSTORE_COST_SENSITIVE;
	else
		return AR_EINVAL;
	return 0;
}

/* "M/N" or "M-of-N". */
static int parse_mn(const char *v, unsigned *m, unsigned *n)
{
	char *end;
	unsigned long a, b;
	a = strtoul(v, &end, 10);
	if (end == v)
		return AR_EINVAL;
	if (*end == '/')
		end++;
	else if (!strncmp(end, "-of-", 4))
		end += 4;
	else
		return AR_EINVAL;
	v = end;
	b = strtoul(v, &end, 10);
	if (end == v || *end || a < SHARE_MIN_M || a > b || b > SHARE_MAX_N)
		return AR_EINVAL;
	*m = (unsigned)a;
	*n = (unsigned)b;
	return 0;
}

static int usage_err(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "archive-keysvc %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (archive-keysvc %s -h)\n", cmd);
	return 2;
}

static int read_pass_fd(const char *cmd, const char *what, int fd,
    char **pass, size_t *len)
{
	int rc;
	if (fd < 0)
		return 0;
	if ((rc = cli_read_passphrase(fd, pass, len))) {
		ar_log(AR_LOG_ERR, "op=%s status=error msg=\"cannot read the %s "
		    "from fd %d: %s\"", cmd, what, fd, rc == AR_EINVAL ?
		    "empty or too long" : ar_strerror(rc));
		return rc;
	}
	return 0;
}

static void print_header(const struct backup_summary *b)
{
	char id[2 * BACKUP_ID_LEN + 1], pk[2 * KEYSVC_PK_LEN + 1], when[32];
	printf("backup:      %s\n", ar_hex(b->id, BACKUP_ID_LEN, id));
	printf("created:     %s\n", ar_time_fmt(b->created, when,
	    sizeof when));
	printf("signing key: %s\n", ar_hex(b->pk, KEYSVC_PK_LEN, pk));
	printf("opens with:  %s%s", b->has_pass ? "the backup passphrase" : "",
	    b->has_pass && b->n ? ", or " : "");
	if (b->n)
		printf("any %u of its %u shares", b->m, b->n);
	printf("\n");
}

/* --- backup ------------------------------------------------------------ */

static void backup_usage(FILE *f)
{
	fprintf(f,
	    "usage: archive-keysvc backup -d DIR -o FILE\n"
	    "           [--backup-passphrase-fd N] [--shares M/N --share-dir SDIR]\n"
	    "           [--passphrase-fd N] [--pwhash-cost C]\n"
	    "\n"
	    "  -d DIR                   the key store (the daemon may be running)\n"
	    "  -o FILE                  the backup file to write (must not exist)\n"
	    "  --backup-passphrase-fd N seal the backup with a passphrase read from fd N\n"
	    "  --shares M/N             split the backup key into N shares, any M restore\n"
	    "  --share-dir SDIR         where the N share files go, one per person\n"
	    "  --passphrase-fd N        the KEK's passphrase, when the KEK is sealed\n"
	    "  --pwhash-cost C          Argon2id cost of the backup passphrase\n"
	    "                           (interactive|moderate|sensitive, default moderate)\n"
	    "At least one of --backup-passphrase-fd and --shares.\n");
}

int cli_backup(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "backup-passphrase-fd", required_argument, NULL, 'b' },
		{ "passphrase-fd",        required_argument, NULL, 'p' },
		{ "shares",               required_argument, NULL, 'S' },
		{ "share-dir",            required_argument, NULL, 'D' },
		{ "pwhash-cost",          required_argument, NULL, 'c' },
		{ "help",                 no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct backup_opts o;
	struct backup_summary sum;
	char err[1024], *kpass = NULL, *bpass = NULL, path[4096];
	int opt, kfd = -1, bfd = -1, rc;

	memset(&o, 0, sizeof o);
	o.cost = KEYSTORE_COST_MODERATE;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "d:o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': o.dir = optarg; break;
		case 'o': o.out = optarg; break;
		case 'D': o.share_dir = optarg; break;
		case 'b':
			if (cli_parse_int(optarg, 0, 1 << 20, &bfd))
				return usage_err("backup", "bad "
				    "--backup-passphrase-fd '%s'", optarg);
			break;
		case 'p':
			if (cli_parse_int(optarg, 0, 1 << 20, &kfd))
				return usage_err("backup", "bad "
				    "--passphrase-fd '%s'", optarg);
			break;
		case 'S':
			if (parse_mn(optarg, &o.m, &o.n))
				return usage_err("backup", "bad --shares '%s': "
				    "M/N with 2 <= M <= N <= 255", optarg);
			break;
		case 'c':
			if (parse_cost(optarg, &o.cost))
				return usage_err("backup", "bad --pwhash-cost "
				    "'%s'", optarg);
			break;
		case 'h': backup_usage(stdout); return 0;
		default: backup_usage(stderr); return 2;
		}
	}
	if (optind != argc || !o.dir || !o.out)
		return usage_err("backup", "-d DIR and -o FILE are required");
	if (bfd < 0 && o.n == 0)
		return usage_err("backup", "say how the backup is protected: "
		    "--backup-passphrase-fd N, --shares M/N, or both");
	if (o.n && !o.share_dir)
		return usage_err("backup", "--shares needs --share-dir");
	if (!o.n && o.share_dir)
		return usage_err("backup", "--share-dir without --shares");
	if (bfd >= 0 && bfd == kfd)
		return usage_err("backup", "the KEK passphrase and the backup "
		    "passphrase need two different descriptors");
	if (read_pass_fd("backup", "KEK passphrase", kfd, &kpass,
	    &o.kek_passlen) ||
	    read_pass_fd("backup", "backup passphrase", bfd, &bpass,
	    &o.backup_passlen)) {
		sodium_free(kpass);
		sodium_free(bpass);
		return 1;
	}
	o.kek_pass = kpass;
	o.backup_pass = bpass;
	err[0] = '\0';
	rc = backup_create(&o, &sum, err, sizeof err);
	sodium_free(kpass);
	sodium_free(bpass);
	if (rc) {
		ar_log(AR_LOG_ERR, "op=backup dir=%s status=error rc=%d "
		    "msg=\"%s\"", o.dir, rc, err);
		return 1;
	}
	print_header(&sum);
	printf("file:        %s\n", o.out);
	printf("tenants:     %u with keys (%u key versions), %u destroyed\n",
	    sum.tenants, sum.keys, sum.destroyed);
	for (unsigned i = 1; i <= sum.n; i++)
		if (backup_share_path(path, sizeof path, o.share_dir, sum.id, i,
		    sum.n) == 0)
			printf("share %u:%*s%s\n", i, i < 10 ? 5 : 4, "", path);
	if (sum.n)
		fprintf(stderr, "archive-keysvc backup: give each share file "
		    "to a different person (print it or copy it to their "
		    "medium), then delete it here: %u shares together restore "
		    "every key\n", sum.m);
	return 0;
}

/* --- restore ----------------------------------------------------------- */

static void restore_usage(FILE *f)
{
	fprintf(f,
	    "usage: archive-keysvc restore -d DIR -i FILE\n"
	    "           (--backup-passphrase-fd N | --share SHAREFILE ...)\n"
	    "           (--shredded LIST | --no-shred-list)\n"
	    "           [--passphrase-fd N | --unsealed] [--pwhash-cost C]\n"
	    "           [--expect-pubkey HEX] [--force]\n"
	    "\n"
	    "  -d DIR                   the key store to create (archive-keysvc stopped)\n"
	    "  -i FILE                  the backup file\n"
	    "  --backup-passphrase-fd N open it with the backup passphrase from fd N\n"
	    "  --share SHAREFILE        open it with shares (repeat: M of them)\n"
	    "  --shredded LIST          tenant ids shredded per the archive (one a line;\n"
	    "                           may be empty): their keys are not restored\n"
	    "  --no-shred-list          restore without one (tenants shredded after the\n"
	    "                           backup come back to life: a loud warning)\n"
	    "  --passphrase-fd N        seal the restored KEK with the passphrase from fd N\n"
	    "  --unsealed               write the KEK unsealed although it was sealed\n"
	    "  --pwhash-cost C          Argon2id cost for the restored KEK\n"
	    "  --expect-pubkey HEX      refuse unless the backup's signing key is this one\n"
	    "  --force                  replace a key store in DIR (kept as\n"
	    "                           DIR.replaced-<time>; its destroyed tenants stay so)\n");
}

int cli_restore(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "backup-passphrase-fd", required_argument, NULL, 'b' },
		{ "share",                required_argument, NULL, 's' },
		{ "shredded",             required_argument, NULL, 'L' },
		{ "no-shred-list",        no_argument,       NULL, 'N' },
		{ "passphrase-fd",        required_argument, NULL, 'p' },
		{ "unsealed",             no_argument,       NULL, 'U' },
		{ "pwhash-cost",          required_argument, NULL, 'c' },
		{ "expect-pubkey",        required_argument, NULL, 'e' },
		{ "force",                no_argument,       NULL, 'f' },
		{ "help",                 no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct restore_opts o;
	struct restore_summary sum;
	const char *shares[SHARE_MAX_N], *list = NULL;
	uint8_t (*shred)[KEYSVC_TENANT_LEN] = NULL, pk[KEYSVC_PK_LEN];
	char err[1024], *kpass = NULL, *bpass = NULL, hex[64], when[32];
	int opt, kfd = -1, bfd = -1, rc;

	memset(&o, 0, sizeof o);
	o.cost = KEYSTORE_COST_MODERATE;
	o.share_files = shares;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "d:i:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': o.dir = optarg; break;
		case 'i': o.in = optarg; break;
		case 's':
			if (o.nshares >= SHARE_MAX_N)
				return usage_err("restore", "too many --share");
			shares[o.nshares++] = optarg;
			break;
		case 'L': list = optarg; break;
		case 'N': o.no_shred_list = 1; break;
		case 'U': o.unsealed = 1; break;
		case 'f': o.force = 1; break;
		case 'b':
			if (cli_parse_int(optarg, 0, 1 << 20, &bfd))
				return usage_err("restore", "bad "
				    "--backup-passphrase-fd '%s'", optarg);
			break;
		case 'p':
			if (cli_parse_int(optarg, 0, 1 << 20, &kfd))
				return usage_err("restore", "bad "
				    "--passphrase-fd '%s'", optarg);
			break;
		case 'c':
			if (parse_cost(optarg, &o.cost))
				return usage_err("restore", "bad "
				    "--pwhash-cost '%s'", optarg);
			break;
		case 'e':
			if (strlen(optarg) != 2 * KEYSVC_PK_LEN ||
			    ar_unhex(optarg, pk, sizeof pk))
				return usage_err("restore", "bad "
				    "--expect-pubkey: 64 hex digits");
			o.expect_pk = pk;
			break;
		case 'h': restore_usage(stdout); return 0;
		default: restore_usage(stderr); return 2;
		}
	}
	if (optind != argc || !o.dir || !o.in)
		return usage_err("restore", "-d DIR and -i FILE are required");
	if ((bfd >= 0) == (o.nshares > 0))
		return usage_err("restore", "give either "
		    "--backup-passphrase-fd N or the --share files");
	if (!list == !o.no_shred_list)
		return usage_err("restore", "give --shredded LIST (the tenants "
		    "the archive shredded; an empty file if none) or "
		    "--no-shred-list: restoring an older backup would bring "
		    "back the keys of tenants shredded since");
	if (kfd >= 0 && o.unsealed)
		return usage_err("restore", "--passphrase-fd and --unsealed "
		    "contradict each other");
	if (bfd >= 0 && bfd == kfd)
		return usage_err("restore", "the KEK passphrase and the backup "
		    "passphrase need two different descriptors");
	err[0] = '\0';
	if (list) {
		size_t n;
		if ((rc = backup_read_shred_list(list, &shred, &n, err,
		    sizeof err))) {
			ar_log(AR_LOG_ERR, "op=restore status=error rc=%d "
			    "msg=\"%s\"", rc, err);
			return 1;
		}
		o.shred_list = 1;
		o.shredded = (const uint8_t (*)[KEYSVC_TENANT_LEN])shred;
		o.nshredded = n;
	}
	if (read_pass_fd("restore", "KEK passphrase", kfd, &kpass,
	    &o.kek_passlen) ||
	    read_pass_fd("restore", "backup passphrase", bfd, &bpass,
	    &o.backup_passlen)) {
		sodium_free(kpass);
		sodium_free(bpass);
		free(shred);
		return 1;
	}
	o.kek_pass = kpass;
	o.backup_pass = bpass;
	rc = restore_run(&o, &sum, err, sizeof err);
	sodium_free(kpass);
	sodium_free(bpass);
	free(shred);
	if (rc) {
		ar_log(AR_LOG_ERR, "op=restore dir=%s file=%s status=error "
		    "rc=%d msg=\"%s\"", o.dir, o.in, rc, err);
		return 1;
	}
	print_header(&sum.backup);
	printf("restored:    %s\n", o.dir);
	printf("tenants:     %u with keys (%u key versions)\n", sum.tenants,
	    sum.keys);
	printf("destroyed:   %u already in the backup, %u shredded since "
	    "(keys not restored), %u listed and unknown to the backup\n",
	    sum.kept_destroyed, sum.shredded_now, sum.marked);
	if (sum.replaced[0])
		printf("replaced:    the old key store is kept at %s\n",
		    sum.replaced);
	fprintf(stderr, "archive-keysvc restore: the backup is of %s: "
	    "tenants created and keys rotated after it are not in it\n",
	    ar_time_fmt(sum.backup.created, when, sizeof when));
	if (o.no_shred_list && sum.nalive) {
		fprintf(stderr,
		    "\n*** WARNING: restored WITHOUT a shred list ***\n"
		    "The keys of these %zu tenants are live again. Any of them "
		    "shredded after\n%s is NO LONGER SHREDDED until you run "
		    "`archivectl tenant advance NAME`\nfor it again (or "
		    "restore with --shredded):\n", sum.nalive, when);
		for (size_t i = 0; i < sum.nalive; i++)
			fprintf(stderr, "  %s\n", ar_hex(sum.alive[i],
			    KEYSVC_TENANT_LEN, hex));
		ar_log(AR_LOG_WARN, "op=restore dir=%s shred_list=none "
		    "alive=%zu msg=\"tenants shredded after the backup have "
		    "their keys back\"", o.dir, sum.nalive);
	}
	restore_summary_free(&sum);
	return 0;
}

/* --- backup-info ------------------------------------------------------- */

int cli_backup_info(int argc, char **argv)
{
	struct backup_summary sum;
	char err[1024];
	int rc;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: archive-keysvc backup-info FILE\n");
		return argc == 2 && !strcmp(argv[1], "-h") ? 0 : 2;
	}
	err[0] = '\0';
	if ((rc = backup_info(argv[1], &sum, err, sizeof err))) {
		ar_log(AR_LOG_ERR, "op=backup-info file=%s status=error rc=%d "
		    "msg=\"%s\"", argv[1], rc, err);
		return 1;
	}
	print_header(&sum);
	return 0;
}
