/*
 * quarantine_put - the store's quarantine (store/quarantine.c) driven the
 * way the gateway drives it, on whatever backend the data directory has
 * (tests/e2e/t_s3_quarantine.sh: the s3 backend).
 *   quarantine_put DATADIR TENANT FILE SECONDS   keep FILE as a quarantine
 *       copy expiring SECONDS from now (may be negative); prints its id
 *   quarantine_put --expire DATADIR              the jobs' expiry pass;
 *       prints how many records expired
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "archived/config.h"

static int read_file(void *arg, void *buf, size_t len, size_t *got)
{
	FILE *f = arg;
	*got = fread(buf, 1, len, f);
	return ferror(f) ? AR_EIO : 0;
}

int main(int argc, char **argv)
{
	struct ar_config cfg;
	keysvc_t *ks = NULL;
	store_backend_t *be = NULL;
	store_t *st = NULL;
	store_tenant_t t;
	uint8_t id[STORE_ID_LEN];
	char err[1024], hex[2 * STORE_ID_LEN + 1];
	int expire = argc == 3 && !strcmp(argv[1], "--expire"), rc;
	FILE *f;

	ar_process_init("quarantine_put");
	if (!expire && argc != 5) {
		fprintf(stderr, "usage: quarantine_put DATADIR TENANT FILE "
		    "SECONDS | --expire DATADIR\n");
		return 2;
	}
	if (ar_config_load(&cfg, argv[expire ? 2 : 1], err, sizeof err) ||
	    keysvc_open(&ks, cfg.keysvc_socket, 5000) ||
	    ar_config_open_store(&cfg, ks, &be, &st, err, sizeof err)) {
		fprintf(stderr, "quarantine_put: %s\n", err);
		return 1;
	}
	if (expire) {
		uint64_t n = 0;
		if ((rc = store_quarantine_expire(st, ar_now(), &n)))
			fprintf(stderr, "quarantine_put: expire: %s: %s\n",
			    ar_strerror(rc), store_errmsg(st));
		printf("%llu\n", (unsigned long long)n);
	} else {
		if ((rc = store_tenant_get(st, argv[2], &t))) {
			fprintf(stderr, "quarantine_put: tenant %s: %s\n",
			    argv[2], ar_strerror(rc));
			return 1;
		}
		if (!(f = fopen(argv[3], "rb"))) {
			perror(argv[3]);
			return 1;
		}
		store_object_id_new(id);
		rc = store_quarantine_put(st, &t, id, "{\"verdict\":\"test\"}",
		    read_file, f, ar_now() + strtoll(argv[4], NULL, 10));
		fclose(f);
		if (rc)
			fprintf(stderr, "quarantine_put: %s: %s\n",
			    ar_strerror(rc), store_errmsg(st));
		else
			printf("%s\n", ar_hex(id, sizeof id, hex));
	}
	store_close(st);
	store_backend_close(be);
	keysvc_close(ks);
	return rc ? 1 : 0;
}
