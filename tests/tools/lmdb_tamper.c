/*
 * lmdb_tamper - alters an archived catalog the way an attacker with disk
 * access would, for the verify tests.
 *
 *   lmdb_tamper DIR DB keys [PREFIXHEX]      list keys (hex), one a line
 *   lmdb_tamper DIR DB delete KEYHEX         remove a record
 *   lmdb_tamper DIR DB flip KEYHEX OFFSET    flip one bit of a value byte
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unhex(const char *h, unsigned char *out, size_t max, size_t *n)
{
	size_t len = strlen(h);
	if (len % 2 || len / 2 > max)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	*n = len / 2;
	return 0;
}

static int die(const char *what, int rc)
{
	fprintf(stderr, "lmdb_tamper: %s: %s\n", what, mdb_strerror(rc));
	return 1;
}

int main(int argc, char **argv)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	unsigned char key[512];
	size_t klen = 0;
	int rc, ro;

	if (argc < 4) {
		fprintf(stderr, "usage: lmdb_tamper DIR DB keys [PREFIX] | "
		    "delete KEY | flip KEY OFFSET\n");
		return 2;
	}
	ro = !strcmp(argv[3], "keys");
	if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 32)) ||
	    (rc = mdb_env_set_mapsize(env, 0)) ||
	    (rc = mdb_env_open(env, argv[1], ro ? MDB_RDONLY : 0, 0600)))
		return die("open", rc);
	if ((rc = mdb_txn_begin(env, NULL, ro ? MDB_RDONLY : 0, &txn)) ||
	    (rc = mdb_dbi_open(txn, argv[2], 0, &dbi)))
		return die("db", rc);
	if (ro) {
		MDB_cursor *c;
		size_t plen = 0;
		if (argc > 4 && unhex(argv[4], key, sizeof key, &plen))
			return 2;
		mdb_cursor_open(txn, dbi, &c);
		while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
			if (k.mv_size < plen || memcmp(k.mv_data, key, plen))
				continue;
			for (size_t i = 0; i < k.mv_size; i++)
				printf("%02x", ((unsigned char *)k.mv_data)[i]);
			printf("\n");
		}
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return 0;
	}
	if (argc < 5 || unhex(argv[4], key, sizeof key, &klen))
		return 2;
	k.mv_data = key;
	k.mv_size = klen;
	if (!strcmp(argv[3], "delete")) {
		if ((rc = mdb_del(txn, dbi, &k, NULL)))
			return die("delete", rc);
	} else if (!strcmp(argv[3], "flip") && argc == 6) {
		size_t off = strtoul(argv[5], NULL, 10);
		unsigned char *copy;
		if ((rc = mdb_get(txn, dbi, &k, &v)))
			return die("get", rc);
		if (off >= v.mv_size) {
			fprintf(stderr, "lmdb_tamper: offset past the value\n");
			return 2;
		}
		copy = malloc(v.mv_size);
		memcpy(copy, v.mv_data, v.mv_size);
		copy[off] ^= 0x01;
		v.mv_data = copy;
		if ((rc = mdb_put(txn, dbi, &k, &v, 0)))
			return die("put", rc);
		free(copy);
	} else {
		return 2;
	}
	if ((rc = mdb_txn_commit(txn)))
		return die("commit", rc);
	mdb_env_close(env);
	return 0;
}
