/*
 * search_latency - warm query latency of the search index, as a long-
 * running process (archived, the web console) sees it: the index is
 * opened once, each query of a file (one a line) runs RUNS times, and
 * every run's time (search_run: exact count + first page of 50 by date,
 * display rows decrypted) is printed as "ms<TAB>total<TAB>query".
 *
 *   search_latency KEYSVC_SOCKET DATADIR TENANT_HEX QUERIES_FILE RUNS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "search/search.h"

int main(int argc, char **argv)
{
	uint8_t tenant[SEARCH_TENANT_LEN];
	search_open_params_t p;
	search_t *idx;
	keysvc_t *ks;
	char line[4200];
	FILE *f;
	int runs;

	if (argc != 6 || ar_unhex(argv[3], tenant, sizeof tenant) ||
	    (runs = atoi(argv[5])) < 1) {
		fprintf(stderr, "usage: search_latency KEYSVC_SOCKET DATADIR "
		    "TENANT_HEX QUERIES_FILE RUNS\n");
		return 2;
	}
	ar_process_init("search_latency");
	if (keysvc_open(&ks, argv[1], 0)) {
		fprintf(stderr, "search_latency: cannot open %s\n", argv[1]);
		return 1;
	}
	memset(&p, 0, sizeof p);
	p.data_dir = argv[2];
	p.ks = ks;
	p.language = SEARCH_LANGUAGE_DEFAULT;
	if (search_open(&idx, &p)) {
		fprintf(stderr, "search_latency: %s\n", search_errmsg(NULL));
		return 1;
	}
	if (!(f = fopen(argv[4], "r"))) {
		perror(argv[4]);
		return 1;
	}
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		for (int i = 0; i < runs; i++) {
			search_options_t o = { .limit = 50 };
			search_results_t *r = NULL;
			int64_t t0 = ar_mono_us();
			int rc = search_run(idx, tenant, line, &o, &r);
			double ms = (double)(ar_mono_us() - t0) / 1e3;
			if (rc) {
				fprintf(stderr, "search_latency: %s: %s\n", line,
				    search_errmsg(idx));
				return 1;
			}
			printf("%.3f\t%llu\t%s\n", ms, (unsigned long long)
			    search_results_total(r), line);
			search_results_free(r);
		}
	}
	fclose(f);
	search_close(idx);
	keysvc_close(ks);
	return 0;
}
