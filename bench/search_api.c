/*
 * search_api - the same search as bench/web.sh's HTTP requests, through
 * the C search API (no HTTP, no sessions, no snippets unless asked):
 *   search_api DATADIR TENANT QUERY THREADS SECONDS [LIMIT]
 * Prints "requests N rps R p50_ms A p99_ms B total T".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "archived/config.h"
#include "search/search.h"

static search_t *idx;
static store_tenant_t tenant;
static const char *query;
static int limit;
static int64_t deadline;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t *lat;
static size_t nlat, caplat;
static uint64_t total;

static void *worker(void *arg)
{
	(void)arg;
	while (ar_mono_us() < deadline) {
		search_options_t o = { .limit = limit };
		search_results_t *r;
		int64_t t0 = ar_mono_us();
		if (search_run(idx, tenant.id, query, &o, &r))
			break;
		total = search_results_total(r);
		search_results_free(r);
		int64_t d = ar_mono_us() - t0;
		pthread_mutex_lock(&lock);
		if (!ar_grow((void **)&lat, &caplat, nlat, sizeof *lat))
			lat[nlat++] = d;
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct ar_config cfg;
	keysvc_t *ks;
	store_backend_t *be;
	store_t *st;
	search_open_params_t sp;
	char err[1024];
	pthread_t th[64];
	int nth, secs;
	int64_t t0;

	ar_process_init("search_api");
	if (argc < 6) {
		fprintf(stderr, "usage: search_api DATADIR TENANT QUERY THREADS "
		    "SECONDS [LIMIT]\n");
		return 2;
	}
	query = argv[3];
	nth = atoi(argv[4]);
	secs = atoi(argv[5]);
	limit = argc > 6 ? atoi(argv[6]) : 25;
	if (nth < 1 || nth > 64 || ar_config_load(&cfg, argv[1], err,
	    sizeof err) || keysvc_open(&ks, cfg.keysvc_socket, 5000) ||
	    ar_config_open_store(&cfg, ks, &be, &st, err, sizeof err) ||
	    store_tenant_get(st, argv[2], &tenant)) {
		fprintf(stderr, "search_api: cannot open %s\n", argv[1]);
		return 1;
	}
	memset(&sp, 0, sizeof sp);
	sp.data_dir = cfg.data_dir;
	sp.ks = ks;
	if (search_open(&idx, &sp))
		return 1;
	t0 = ar_mono_us();
	deadline = t0 + (int64_t)secs * 1000000;
	for (int i = 0; i < nth; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	qsort(lat, nlat, sizeof *lat, cmp);
	printf("requests %zu rps %.0f p50_ms %.2f p99_ms %.2f total %llu\n",
	    nlat, nlat / ((ar_mono_us() - t0) / 1e6),
	    nlat ? lat[nlat / 2] / 1000.0 : 0.0,
	    nlat ? lat[nlat * 99 / 100] / 1000.0 : 0.0,
	    (unsigned long long)total);
	free(lat);
	search_close(idx);
	store_close(st);
	store_backend_close(be);
	keysvc_close(ks);
	return 0;
}
