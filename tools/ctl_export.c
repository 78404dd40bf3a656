/*
 * ctl_export.c - archivectl export and verify-export.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "ctl.h"
#include "jobs/jobs.h"

#define EXPORT_USAGE "export --tenant NAME [--query Q | --hold NAME | " \
	"--all] (--dir DIR | --zip FILE) [--mbox] [--dat]"

static void progress(void *arg, const jobs_progress_t *p)
{
	(void)arg;
	fprintf(stderr, "\rexport: %llu/%llu messages   ",
	    (unsigned long long)p->done, (unsigned long long)p->total);
}

int cmd_export(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "query", required_argument, NULL, 'q' },
		{ "hold", required_argument, NULL, 'H' },
		{ "all", no_argument, NULL, 'a' },
		{ "dir", required_argument, NULL, 'D' },
		{ "zip", required_argument, NULL, 'z' },
		{ "mbox", no_argument, NULL, 'm' },
		{ "dat", no_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	jobs_export_params_t p;
	jobs_export_result_t res;
	const char *tenant = NULL, *hold = NULL;
	search_t *idx = NULL;
	store_tenant_t t;
	char err[1024] = "", hex[65];
	int ch, rc, scopes = 0, all = 0;
	int64_t t0 = ar_mono_us();
	double secs;

	memset(&p, 0, sizeof p);
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'q': p.query = optarg; scopes++; break;
		case 'H': hold = optarg; scopes++; break;
		case 'a': all = 1; scopes++; break;
		case 'D': p.dir = optarg; break;
		case 'z': p.zip = optarg; break;
		case 'm': p.flags |= JOBS_EXPORT_MBOX; break;
		case 'c': p.flags |= JOBS_EXPORT_DAT; break;
		default: return ctl_usage("usage: archivectl " EXPORT_USAGE);
		}
	}
	if (!tenant)
		return ctl_usage("export needs --tenant NAME");
	if (optind != argc)
		return ctl_usage("export takes no positional arguments");
	if (scopes > 1)
		return ctl_usage("export: give one of --query, --hold, --all");
	if (!p.dir == !p.zip)
		return ctl_usage("export: give one of --dir DIR or --zip FILE");
	if (p.query && !*p.query)
		return ctl_usage("export: --query needs a query");
	if (p.query) {
		/* a refused query is the command line's fault: exit 2, and
		 * nothing is opened or written */
		search_query_t *pq;
		int every;
		if (search_query_parse(p.query, &pq, err, sizeof err)) {
			fprintf(stderr, "archivectl: export: bad query: %s\n",
			    err);
			return CTL_USAGE;
		}
		every = search_query_selects_all(pq);
		search_query_free(pq);
		if (every) {
			fprintf(stderr, "archivectl: export: bad query: a blank "
			    "query would export every message; give a term "
			    "or a filter, or use --all\n");
			return CTL_USAGE;
		}
	}
	(void)all;
	if ((rc = ctl_tenant(c, tenant, &t)))
		return rc;
	p.st = c->st;
	p.tenant = &t;
	p.by = getenv("USER") ? getenv("USER") : "archivectl";
	if (hold) {
		rc = ctl_hold_ids(c, &t, hold, (uint8_t **)&p.ids, &p.n_ids);
		if (rc)
			return rc;
		p.scope = JOBS_SCOPE_IDS;
		snprintf(err, sizeof err, "hold:%s", hold);
		p.scope_label = strdup(err);
		*err = 0;
	} else if (p.query) {
		search_open_params_t so;
		memset(&so, 0, sizeof so);
		so.data_dir = c->cfg.data_dir;
		so.ks = c->ks;
		if ((rc = search_open(&idx, &so)))
			return ctl_fail(rc, "index: %s", ar_strerror(rc));
		p.idx = idx;
		p.scope = JOBS_SCOPE_QUERY;
	} else {
		p.scope = JOBS_SCOPE_ALL;
	}
	if (isatty(STDERR_FILENO) && !c->json)
		p.progress = progress;
	rc = jobs_export(&p, &res, err, sizeof err);
	if (p.progress)
		fputc('\n', stderr);
	if (idx)
		search_close(idx);
	free((void *)p.ids);
	free((void *)p.scope_label);
	if (rc)
		return ctl_fail(rc, "export: %s", err);
	secs = (double)(ar_mono_us() - t0) / 1e6;
	ar_hex(res.manifest_sha256, 32, hex);
	if (c->json) {
		json_t *j = json_object();
		json_object_set_new(j, "messages", json_integer(
		    (json_int_t)res.messages));
		json_object_set_new(j, "attachments", json_integer(
		    (json_int_t)res.attachments));
		json_object_set_new(j, "skipped", json_integer(
		    (json_int_t)res.skipped));
		json_object_set_new(j, "resumed", json_integer(
		    (json_int_t)res.resumed));
		json_object_set_new(j, "files", json_integer(
		    (json_int_t)res.files));
		json_object_set_new(j, "bytes", json_integer(
		    (json_int_t)res.bytes));
		json_object_set_new(j, "manifest_sha256", json_string(hex));
		json_object_set_new(j, "log_seq", json_integer(
		    (json_int_t)res.log_seq));
		json_object_set_new(j, "seconds", json_real(secs));
		ctl_json_out(j);
	} else {
		printf("exported %llu messages (%llu attachments, %llu files, "
		    "%llu bytes; %llu resumed, %llu gone) to %s in %.2f s\n"
		    "manifest sha256 %s, log entry %llu\n",
		    (unsigned long long)res.messages,
		    (unsigned long long)res.attachments,
		    (unsigned long long)res.files,
		    (unsigned long long)res.bytes,
		    (unsigned long long)res.resumed,
		    (unsigned long long)res.skipped, p.dir ? p.dir : p.zip,
		    secs, hex, (unsigned long long)res.log_seq);
	}
	return CTL_OK;
}

static void verify_cb(void *arg, const char *path, const char *what)
{
	(void)arg;
	printf("FAIL %s: %s\n", path, what);
}

int cmd_verify_export(struct ctl *c, int argc, char **argv)
{
	uint8_t pk[KEYSVC_PK_LEN], fp[32];
	char err[1024] = "", hex[65];
	uint64_t files = 0;
	int rc;

	(void)c;
	if (argc != 2)
		return ctl_usage("usage: archivectl verify-export DIR");
	rc = jobs_export_verify(argv[1], verify_cb, NULL, &files, pk, err,
	    sizeof err);
	if (rc == 0 || rc == AR_ECORRUPT || rc == AR_ESIG) {
		crypto_hash_sha256(fp, pk, sizeof pk);
		printf("signing key sha256:%s\n", ar_hex(fp, 32, hex));
	}
	if (rc == AR_ECORRUPT || rc == AR_ESIG) {
		printf("export %s does NOT verify\n", argv[1]);
		return CTL_PROBLEMS;
	}
	if (rc)
		return ctl_fail(rc, "verify-export: %s", err);
	printf("export %s verifies: signature good, %llu files intact, "
	    "nothing missing or added\n", argv[1], (unsigned long long)files);
	return CTL_OK;
}
