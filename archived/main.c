/*
 * archived - the archive daemon: opens the data directory, connects to
 * archive-keysvc and runs its threads until SIGINT or SIGTERM.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ar.h"
#include "daemon.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: archived [-d DATADIR] [-v]\n"
	    "DATADIR defaults to $ARCHIVED_DATA, else ./var/data "
	    "(created by archivectl init).\n");
}

static int open_all(struct daemon *d, const char *data_dir)
{
	char err[1024];
	int rc;

	if ((rc = ar_config_load(&d->cfg, data_dir, err, sizeof err))) {
		ar_log(AR_LOG_ERR, "config error=\"%s\"", err);
		return rc;
	}
	if ((rc = keysvc_open(&d->ks, d->cfg.keysvc_socket,
	    (int)d->cfg.keysvc_timeout_ms)))
		return rc;
	if (keysvc_ping(d->ks))
		ar_log(AR_LOG_WARN, "keysvc socket=%s status=unavailable "
		    "reason=\"%s\" (ingest answers 4xx until it is back)",
		    d->cfg.keysvc_socket, keysvc_errmsg(d->ks));
	if ((rc = ar_config_open_store(&d->cfg, d->ks, &d->be, &d->st, err,
	    sizeof err)))
		ar_log(AR_LOG_ERR, "store error=\"%s\"", err);
	return rc;
}

static void close_all(struct daemon *d)
{
	store_close(d->st);
	if (d->be)
		store_backend_close(d->be);
	if (d->ks)
		keysvc_close(d->ks);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data_dir = getenv("ARCHIVED_DATA");
	struct daemon d;
	sigset_t set;
	int ch, sig, rc;

	ar_process_init("archived");
	umask(077);
	if (!data_dir || !*data_dir)
		data_dir = "./var/data";
	while ((ch = getopt_long(argc, argv, "d:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': data_dir = optarg; break;
		case 'v': ar_log_set_level(AR_LOG_DEBUG); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* Signals are taken by sigwait() below, never by another thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	memset(&d, 0, sizeof d);
	if ((rc = open_all(&d, data_dir))) {
		close_all(&d);
		return 1;
	}
	if ((rc = jobs_start(&d))) {
		close_all(&d);
		return 1;
	}
	if ((rc = indexer_start(&d))) {
		indexer_stop(&d);
		jobs_stop(&d);
		close_all(&d);
		return 1;
	}
	if ((rc = ingest_start(&d))) {
		ingest_stop(&d);
		indexer_stop(&d);
		jobs_stop(&d);
		close_all(&d);
		return 1;
	}
	if ((rc = gateway_glue_start(&d))) {
		gateway_glue_stop(&d);
		ingest_stop(&d);
		indexer_stop(&d);
		jobs_stop(&d);
		close_all(&d);
		return 1;
	}
	if ((rc = web_glue_start(&d))) {
		web_glue_stop(&d);
		gateway_glue_stop(&d);
		ingest_stop(&d);
		jobs_stop(&d);
		close_all(&d);
		return 1;
	}
	ar_log(AR_LOG_INFO, "archived data=%s status=ready", d.cfg.data_dir);
	sigwait(&set, &sig);
	ar_log(AR_LOG_INFO, "archived signal=%d status=stopping", sig);
	web_glue_stop(&d);
	gateway_glue_stop(&d);
	ingest_stop(&d);
	indexer_stop(&d);
	jobs_stop(&d);
	close_all(&d);
	ar_log(AR_LOG_INFO, "archived status=stopped");
	return 0;
}
