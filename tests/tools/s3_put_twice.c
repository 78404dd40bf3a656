/*
 * s3_put_twice - the s3 backend's write-once rule through its own client
 * (tests/e2e/t_s3_lock.sh): a name is put, then put again; the second
 * put must be refused with AR_EEXIST.  Prints the key for the test to
 * count its versions at the server.
 *   s3_put_twice ENDPOINT BUCKET   (credentials: AWS_ACCESS_KEY_ID, ...)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "store/store.h"

static int put_once(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, const char *text)
{
	store_put_t *p;
	int rc;

	if ((rc = store_backend_put_begin(be, tenant, id, &p)))
		return rc;
	if ((rc = store_put_write(p, text, strlen(text)))) {
		store_put_abort(p);
		return rc;
	}
	return store_put_commit(p, ar_now() + 3600);
}

int main(int argc, char **argv)
{
	store_s3_params_t p;
	store_backend_t *be;
	uint8_t tenant[STORE_TENANT_LEN], id[STORE_ID_LEN];
	char err[512], th[2 * STORE_TENANT_LEN + 1], ih[2 * STORE_ID_LEN + 1];
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: s3_put_twice ENDPOINT BUCKET\n");
		return 2;
	}
	memset(&p, 0, sizeof p);
	p.endpoint = argv[1];
	p.bucket = argv[2];
	p.prefix = "putwice";
	p.access_key = getenv("AWS_ACCESS_KEY_ID");
	p.secret_key = getenv("AWS_SECRET_ACCESS_KEY");
	p.connections = 2;
	p.retries = 2;
	p.write_check = 1;
	if ((rc = store_backend_open_s3(&be, &p, err, sizeof err))) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	memset(tenant, 0x5a, sizeof tenant);
	store_object_id_new(id);
	if ((rc = put_once(be, tenant, id, "first"))) {
		fprintf(stderr, "first put: %s: %s\n", ar_strerror(rc),
		    store_backend_errmsg(be));
		return 1;
	}
	rc = put_once(be, tenant, id, "second");
	printf("key putwice/%s/o/%s\n", ar_hex(tenant, sizeof tenant, th),
	    ar_hex(id, sizeof id, ih));
	printf("second put %s: %s (%s)\n", rc == AR_EEXIST ? "refused" :
	    "ACCEPTED", rc == AR_EEXIST ? "AR_EEXIST" : ar_strerror(rc),
	    store_backend_errmsg(be));
	store_backend_close(be);
	return rc == AR_EEXIST ? 0 : 1;
}
