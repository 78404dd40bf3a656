/*
 * test_keysvc_backup.c - Shamir shares (libgfshare) and the key store's
 * backup and restore, on real key store directories made by the real
 * archive-keysvc.
 */
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "keysvc/backup.h"
#include "keysvc/keystore.h"
#include "keysvc/keysvc.h"
#include "keysvc/share.h"

static const uint8_t T1[KEYSVC_TENANT_LEN] = { 0xa1, 0x01, 0x02, 0x03, 1 };
static const uint8_t T2[KEYSVC_TENANT_LEN] = { 0xb2, 0x04, 0x05, 0x06, 2 };
static const uint8_t T3[KEYSVC_TENANT_LEN] = { 0xc3, 0x07, 0x08, 0x09, 3 };

static char err[1024];

/* --- shares ------------------------------------------------------------ */

static void test_shares_round_trip(void)
{
	uint8_t secret[32], got[32], id[16];
	struct share *s = sodium_malloc(5 * sizeof *s), pick[5];
	int all_ok = 1, all_refused = 1;

	randombytes_buf(secret, sizeof secret);
	randombytes_buf(id, sizeof id);
	CHECK_RC(share_split(secret, id, 1700000000, 3, 5, s), 0);
	/* every 3-subset and every 4-subset restores; every pair is refused */
	for (unsigned mask = 0; mask < 32; mask++) {
		size_t k = 0;
		for (unsigned i = 0; i < 5; i++)
			if (mask & (1u << i))
				pick[k++] = s[i];
		memset(got, 0, sizeof got);
		int rc = share_combine(pick, k, got, err, sizeof err);
		if (k >= 3)
			all_ok &= rc == 0 && memcmp(got, secret, 32) == 0;
		else
			all_refused &= rc == AR_EINVAL;
	}
	CHECK(all_ok);
	CHECK(all_refused);
	/* the message says how many are needed */
	CHECK_RC(share_combine(s, 2, got, err, sizeof err), AR_EINVAL);
	CHECK(strstr(err, "3 shares are needed") != NULL);
	CHECK(strstr(err, "2 given") != NULL);
	/* no single share equals the secret or a slice of it */
	for (unsigned i = 0; i < 5; i++)
		CHECK(memcmp(s[i].data, secret, 32) != 0);

	/* M = N and the largest N */
	struct share *big = sodium_malloc(255 * sizeof *big);
	CHECK_RC(share_split(secret, id, 1, 5, 5, big), 0);
	CHECK_RC(share_combine(big, 5, got, err, sizeof err), 0);
	CHECK(memcmp(got, secret, 32) == 0);
	CHECK_RC(share_combine(big, 4, got, err, sizeof err), AR_EINVAL);
	CHECK_RC(share_split(secret, id, 1, 200, 255, big), 0);
	CHECK_RC(share_combine(big + 55, 200, got, err, sizeof err), 0);
	CHECK(memcmp(got, secret, 32) == 0);
	sodium_free(big);

	/* bad parameters */
	CHECK_RC(share_split(secret, id, 1, 1, 5, s), AR_EINVAL);
	CHECK_RC(share_split(secret, id, 1, 4, 3, s), AR_EINVAL);
	CHECK_RC(share_split(secret, id, 1, 2, 256, s), AR_EINVAL);

	/* the same share twice is not two shares */
	pick[0] = s[0];
	pick[1] = s[1];
	pick[2] = s[0];
	CHECK_RC(share_combine(pick, 3, got, err, sizeof err), AR_EINVAL);
	CHECK(strstr(err, "given twice") != NULL);
	sodium_free(s);
}

static void test_shares_mixed(void)
{
	uint8_t secret[32], other[32], got[32], ida[16], idb[16];
	struct share *a = sodium_malloc(5 * sizeof *a);
	struct share *b = sodium_malloc(5 * sizeof *b), pick[3];

	randombytes_buf(secret, sizeof secret);
	randombytes_buf(other, sizeof other);
	randombytes_buf(ida, sizeof ida);
	randombytes_buf(idb, sizeof idb);
	CHECK_RC(share_split(secret, ida, 100, 3, 5, a), 0);
	CHECK_RC(share_split(other, idb, 100, 3, 5, b), 0);
	pick[0] = a[0];
	pick[1] = a[1];
	pick[2] = b[2];
	CHECK_RC(share_combine(pick, 3, got, err, sizeof err), AR_EINVAL);
	CHECK(strstr(err, "different backups") != NULL);
	/* same id, different split (a second split of the same backup) */
	CHECK_RC(share_split(secret, ida, 100, 2, 4, b), 0);
	pick[2] = b[2];
	CHECK_RC(share_combine(pick, 3, got, err, sizeof err), AR_EINVAL);
	CHECK(strstr(err, "not of the same split") != NULL);
	sodium_free(a);
	sodium_free(b);
}

static void test_shares_text(void)
{
	uint8_t secret[32], id[16];
	struct share *s = sodium_malloc(3 * sizeof *s), back;
	char text[SHARE_TEXT_MAX], bad[SHARE_TEXT_MAX];
	char *p;
	int n;

	randombytes_buf(secret, sizeof secret);
	randombytes_buf(id, sizeof id);
	CHECK_RC(share_split(secret, id, 1700000000, 2, 3, s), 0);
	n = share_format(&s[1], text, sizeof text);
	CHECK(n > 0);
	CHECK_RC(share_parse(text, (size_t)n, &back, err, sizeof err), 0);
	CHECK(memcmp(&back.data, s[1].data, 32) == 0 && back.index == 2 &&
	    back.m == 2 && back.n == 3 && back.created == 1700000000 &&
	    memcmp(back.backup_id, id, 16) == 0);
	CHECK(strstr(text, "share:   2\n") && strstr(text, "needed:  2\n"));

	/* typed back with other spacing, CRLF and a comment: still fine */
	{
		char loose[2 * SHARE_TEXT_MAX];
		size_t o = 0;
		o += (size_t)sprintf(loose + o, "# from the safe\r\n");
		for (char *q = text; *q; q++) {
			if (*q == '\n')
				loose[o++] = '\r';
			loose[o++] = *q;
		}
		CHECK_RC(share_parse(loose, o, &back, err, sizeof err), 0);
	}

	/* one mistyped data digit: the check value catches it */
	memcpy(bad, text, (size_t)n);
	p = strstr(bad, "data:") + 9;
	*p = *p == '0' ? '1' : '0';
	CHECK_RC(share_parse(bad, (size_t)n, &back, err, sizeof err),
	    AR_ECORRUPT);
	CHECK(strstr(err, "mistyped or altered") != NULL);
	/* the index changed: caught too */
	memcpy(bad, text, (size_t)n);
	p = strstr(bad, "share:   2");
	p[9] = '3';
	CHECK_RC(share_parse(bad, (size_t)n, &back, err, sizeof err),
	    AR_ECORRUPT);
	/* a field missing */
	memcpy(bad, text, (size_t)n);
	p = strstr(bad, "check:");
	*p = '\0';
	CHECK_RC(share_parse(bad, strlen(bad), &back, err, sizeof err),
	    AR_EINVAL);
	CHECK(strstr(err, "no 'check' field") != NULL);
	/* not a share at all */
	CHECK_RC(share_parse("hello: world\n", 13, &back, err, sizeof err),
	    AR_EINVAL);
	sodium_memzero(text, sizeof text);
	sodium_memzero(bad, sizeof bad);
	sodium_free(s);
}

/* --- backup and restore ------------------------------------------------- */

static keysvc_t *client(const char *dir, int timeout_ms)
{
	char sock[4096];
	keysvc_t *ks = NULL;
	snprintf(sock, sizeof sock, "%s/keysvc.sock", dir);
	if (keysvc_open(&ks, sock, timeout_ms) != 0)
		exit(2);
	return ks;
}

static char *path_of(const char *a, const char *b)
{
	char *p;
	if (asprintf(&p, "%s/%s", a, b) < 0)
		exit(2);
	return p;
}

static int read_file(const char *path, unsigned char **buf, size_t *len)
{
	return ar_file_read(path, 1 << 24, buf, len);
}

static int file_contains(const char *path, const void *needle, size_t n)
{
	unsigned char *buf;
	size_t len;
	int found;
	if (read_file(path, &buf, &len) != 0)
		return -1;
	found = memmem(buf, len, needle, n) != NULL;
	free(buf);
	return found;
}

/* The secret bytes of an unsealed store, read the hard way: the KEK from
 * the kek file, the signing seed and each data key unsealed with it. */
struct secrets {
	uint8_t kek[32], seed[32], dk[8][32];
	int ndk;
};

static int unseal(const uint8_t kek[32], const char *path, const uint8_t *ad,
    size_t adlen, uint8_t out[32])
{
	unsigned char *b;
	size_t len;
	uint8_t full[64];
	int rc;
	if (read_file(path, &b, &len) != 0 || len != 5 + 24 + 32 + 16)
		return -1;
	memcpy(full, b, 5);
	if (adlen)
		memcpy(full + 5, ad, adlen);
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL,
	    b + 29, 48, full, 5 + adlen, b + 5, kek);
	free(b);
	return rc;
}

static void read_secrets(const char *dir, struct secrets *s)
{
	unsigned char *b;
	size_t len;
	char *p = path_of(dir, "kek");
	const uint8_t *ts[2] = { T1, T2 };

	memset(s, 0, sizeof *s);
	if (read_file(p, &b, &len) != 0 || len != 38 || b[5] != 0)
		exit(2);
	memcpy(s->kek, b + 6, 32);
	free(b);
	free(p);
	p = path_of(dir, "signing.key");
	CHECK(unseal(s->kek, p, NULL, 0, s->seed) == 0);
	free(p);
	for (int t = 0; t < 2; t++)
		for (uint32_t v = 1; v <= 2; v++) {
			char hex[33], name[128];
			uint8_t ad[20];
			ar_hex(ts[t], 16, hex);
			snprintf(name, sizeof name, "tenants/%s/v%u.key", hex, v);
			p = path_of(dir, name);
			memcpy(ad, ts[t], 16);
			ar_put_u32(ad + 16, v);
			if (access(p, F_OK) == 0 && s->ndk < 8) {
				CHECK(unseal(s->kek, p, ad, 20,
				    s->dk[s->ndk]) == 0);
				s->ndk++;
			}
			free(p);
		}
}

/* 1 when none of the secrets appears in file, raw or in hex. */
static int holds_no_secret(const char *file, const struct secrets *s)
{
	const uint8_t *all[10];
	int n = 0, clean = 1;
	all[n++] = s->kek;
	all[n++] = s->seed;
	for (int i = 0; i < s->ndk; i++)
		all[n++] = s->dk[i];
	for (int i = 0; i < n; i++) {
		char hex[65];
		ar_hex(all[i], 32, hex);
		if (file_contains(file, all[i], 32) != 0 ||
		    file_contains(file, hex, 64) != 0 ||
		    file_contains(file, all[i], 16) != 0) {
			fprintf(stderr, "%s holds secret %d\n", file, i);
			clean = 0;
		}
	}
	return clean;
}

static int derive(const char *dir, const uint8_t *t, uint32_t v,
    uint8_t key[32])
{
	keysvc_t *ks = client(dir, 5000);
	int rc = keysvc_derive(ks, t, v, "object", key);
	keysvc_close(ks);
	return rc;
}

static struct restore_opts ropts(const char *dir, const char *in)
{
	struct restore_opts o;
	memset(&o, 0, sizeof o);
	o.dir = dir;
	o.in = in;
	o.cost = KEYSTORE_COST_INTERACTIVE;
	o.shred_list = 1;   /* an empty list */
	return o;
}

static void test_backup_restore(void)
{
	char *base = tl_tmpdir("kbackup");
	char *keys = path_of(base, "keys"), *bfile = path_of(base, "b1.akb");
	char *sdir = path_of(base, "shares"), *r1 = path_of(base, "r1");
	char *r2 = path_of(base, "r2"), *r3 = path_of(base, "r3");
	char *b2file = path_of(base, "b2.akb"), *sdir2 = path_of(base, "s2");
	char sp[6][4096], sp2[4][4096], forged[4096];
	const char *files[5];
	uint8_t k1v1[32], k1v2[32], k2v1[32], key[32], pk[32], pk2[32];
	struct backup_opts bo;
	struct backup_summary bs, bs2;
	struct restore_opts ro;
	struct restore_summary rs;
	struct secrets sec;
	keysvc_t *ks;
	uint32_t v;
	int destroyed;
	pid_t pid;

	/* a store with three tenants, made and used by the real daemon */
	pid = tl_keysvc_start(keys);
	ks = client(keys, 5000);
	CHECK_RC(keysvc_tenant_create(ks, T1), 0);
	CHECK_RC(keysvc_tenant_rotate(ks, T1, &v), 0);
	CHECK_RC(keysvc_tenant_create(ks, T2), 0);
	CHECK_RC(keysvc_tenant_create(ks, T3), 0);
	CHECK_RC(keysvc_tenant_destroy(ks, T3), 0);
	CHECK_RC(keysvc_derive(ks, T1, 1, "object", k1v1), 0);
	CHECK_RC(keysvc_derive(ks, T1, 2, "object", k1v2), 0);
	CHECK_RC(keysvc_derive(ks, T2, 1, "object", k2v1), 0);
	CHECK_RC(keysvc_public_key(ks, pk), 0);
	read_secrets(keys, &sec);
	CHECK(sec.ndk == 3);

	/* backup while the daemon runs: passphrase and 3 of 5 shares */
	memset(&bo, 0, sizeof bo);
	bo.dir = keys;
	bo.out = bfile;
	bo.backup_pass = "correct horse";
	bo.backup_passlen = strlen(bo.backup_pass);
	bo.cost = KEYSTORE_COST_INTERACTIVE;
	bo.m = 3;
	bo.n = 5;
	bo.share_dir = sdir;
	CHECK_RC(backup_create(&bo, &bs, err, sizeof err), 0);
	CHECK(bs.tenants == 2 && bs.keys == 3 && bs.destroyed == 1);
	CHECK(memcmp(bs.pk, pk, 32) == 0);
	for (unsigned i = 1; i <= 5; i++)
		backup_share_path(sp[i], sizeof sp[i], sdir, bs.id, i, 5);
	CHECK(access(sp[5], F_OK) == 0);
	/* a second backup never replaces the first */
	CHECK_RC(backup_create(&bo, &bs2, err, sizeof err), AR_EEXIST);

	/* no key byte in plaintext: not in the backup, not in a share */
	CHECK(holds_no_secret(bfile, &sec));
	for (unsigned i = 1; i <= 5; i++)
		CHECK(holds_no_secret(sp[i], &sec));

	/* after the backup: T2 is shredded */
	CHECK_RC(keysvc_tenant_destroy(ks, T2), 0);
	keysvc_close(ks);

	/* restore from shares 1, 3, 5, with the archive's shred list {T2},
	 * while the old daemon still runs on its own directory */
	ro = ropts(r1, bfile);
	files[0] = sp[1];
	files[1] = sp[3];
	files[2] = sp[5];
	ro.share_files = files;
	ro.nshares = 3;
	ro.shredded = (const uint8_t (*)[16])T2;
	ro.nshredded = 1;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), 0);
	CHECK(rs.tenants == 1 && rs.keys == 2 && rs.shredded_now == 1 &&
	    rs.kept_destroyed == 1 && rs.nalive == 0);
	restore_summary_free(&rs);
	tl_keysvc_stop(pid);

	pid = tl_keysvc_start(r1);
	ks = client(r1, 5000);
	CHECK_RC(keysvc_public_key(ks, pk2), 0);
	CHECK(memcmp(pk, pk2, 32) == 0);
	CHECK_RC(keysvc_derive(ks, T1, 1, "object", key), 0);
	CHECK(memcmp(key, k1v1, 32) == 0);
	CHECK_RC(keysvc_derive(ks, T1, 2, "object", key), 0);
	CHECK(memcmp(key, k1v2, 32) == 0);
	CHECK_RC(keysvc_derive(ks, T2, 1, "object", key), AR_ESHREDDED);
	CHECK_RC(keysvc_derive(ks, T3, 1, "object", key), AR_ESHREDDED);
	CHECK_RC(keysvc_tenant_info(ks, T2, &v, &destroyed), 0);
	CHECK(destroyed == 1 && v == 1);
	keysvc_close(ks);

	/* a restore onto a directory the daemon runs on is refused */
	ro = ropts(r1, bfile);
	ro.backup_pass = "correct horse";
	ro.backup_passlen = 13;
	ro.force = 1;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_EAGAIN);
	CHECK(strstr(err, "archive-keysvc is running") != NULL);
	tl_keysvc_stop(pid);

	/* over an existing store: refused unless forced; forced, the old
	 * store is kept aside and its destroyed tenants stay destroyed,
	 * even with an empty shred list */
	ro.force = 0;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_EEXIST);
	CHECK(strstr(err, "holds a key store") != NULL);
	ro.force = 1;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), 0);
	CHECK(rs.replaced[0] && access(rs.replaced, F_OK) == 0);
	CHECK(rs.shredded_now == 1 && rs.tenants == 1);
	restore_summary_free(&rs);
	pid = tl_keysvc_start(r1);
	CHECK_RC(derive(r1, T2, 1, key), AR_ESHREDDED);
	CHECK_RC(derive(r1, T1, 2, key), 0);
	tl_keysvc_stop(pid);

	/* passphrase, no shred list: T2 comes back to life, and is named */
	ro = ropts(r2, bfile);
	ro.backup_pass = "correct horse";
	ro.backup_passlen = 13;
	ro.shred_list = 0;
	ro.no_shred_list = 1;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), 0);
	CHECK(rs.nalive == 2);
	CHECK(rs.nalive == 2 && (memcmp(rs.alive[0], T2, 16) == 0 ||
	    memcmp(rs.alive[1], T2, 16) == 0));
	restore_summary_free(&rs);
	pid = tl_keysvc_start(r2);
	CHECK_RC(derive(r2, T2, 1, key), 0);
	CHECK(memcmp(key, k2v1, 32) == 0);
	tl_keysvc_stop(pid);
	/* neither list nor its absence said: refused */
	ro = ropts(r3, bfile);
	ro.backup_pass = "correct horse";
	ro.backup_passlen = 13;
	ro.shred_list = 0;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_EINVAL);

	/* wrong passphrase, too few shares: refused, nothing created */
	ro = ropts(r3, bfile);
	ro.backup_pass = "wrong horse";
	ro.backup_passlen = 11;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_EKEY);
	CHECK(strstr(err, "wrong backup passphrase") != NULL);
	ro.backup_pass = NULL;
	files[0] = sp[2];
	files[1] = sp[4];
	ro.share_files = files;
	ro.nshares = 2;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_EINVAL);
	CHECK(strstr(err, "3 shares are needed") != NULL);
	CHECK(access(r3, F_OK) != 0);

	/* a forged share (data changed, check value made to match) */
	{
		unsigned char *t;
		size_t len;
		struct share sh;
		char text[SHARE_TEXT_MAX];
		int n;
		CHECK_RC(read_file(sp[4], &t, &len), 0);
		CHECK_RC(share_parse((char *)t, len, &sh, err, sizeof err), 0);
		free(t);
		sh.data[7] ^= 0x5a;
		n = share_format(&sh, text, sizeof text);
		snprintf(forged, sizeof forged, "%s/forged.txt", base);
		CHECK_RC(ar_file_write_atomic(forged, text, (size_t)n, 0600), 0);
		files[0] = sp[1];
		files[1] = sp[2];
		files[2] = forged;
		ro.nshares = 3;
		CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_ECORRUPT);
		CHECK(strstr(err, "forged.txt (share 4)") != NULL &&
		    strstr(err, "altered") != NULL);
	}

	/* shares of another backup of the same store */
	memset(&bo, 0, sizeof bo);
	bo.dir = keys;
	bo.out = b2file;
	bo.m = 2;
	bo.n = 3;
	bo.share_dir = sdir2;
	CHECK_RC(backup_create(&bo, &bs2, err, sizeof err), 0);
	CHECK(!bs2.has_pass);
	for (unsigned i = 1; i <= 3; i++)
		backup_share_path(sp2[i], sizeof sp2[i], sdir2, bs2.id, i, 3);
	files[0] = sp[1];
	files[1] = sp[2];
	files[2] = sp2[3];
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_EINVAL);
	CHECK(strstr(err, "belongs to backup") != NULL);
	/* a passphrase for a backup made without one */
	ro = ropts(r3, b2file);
	ro.backup_pass = "x";
	ro.backup_passlen = 1;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_EINVAL);
	CHECK(strstr(err, "without a passphrase") != NULL);
	/* 2 of 3 of the second backup: fine */
	ro.backup_pass = NULL;
	files[0] = sp2[3];
	files[1] = sp2[1];
	ro.share_files = files;
	ro.nshares = 2;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), 0);
	restore_summary_free(&rs);

	/* a damaged backup file: one ciphertext bit */
	{
		unsigned char *b;
		size_t len;
		char *dmg = path_of(base, "damaged.akb");
		CHECK_RC(read_file(bfile, &b, &len), 0);
		b[len - 20] ^= 1;
		CHECK_RC(ar_file_write_atomic(dmg, b, len, 0600), 0);
		free(b);
		ro = ropts(path_of(base, "r4"), dmg);
		files[0] = sp[1];
		files[1] = sp[2];
		files[2] = sp[3];
		ro.share_files = files;
		ro.nshares = 3;
		CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_ECORRUPT);
		CHECK(strstr(err, "damaged or was altered") != NULL);
		CHECK(access(ro.dir, F_OK) != 0);
		free((char *)ro.dir);
		free(dmg);
	}

	/* the signing key must be the expected one */
	ro = ropts(path_of(base, "r5"), bfile);
	ro.backup_pass = "correct horse";
	ro.backup_passlen = 13;
	pk2[0] = pk[0] ^ 1;
	memcpy(pk2 + 1, pk + 1, 31);
	ro.expect_pk = pk2;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_ESIG);
	ro.expect_pk = pk;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), 0);
	restore_summary_free(&rs);
	free((char *)ro.dir);

	tl_rmrf(base);
	free(base); free(keys); free(bfile); free(sdir); free(r1); free(r2);
	free(r3); free(b2file); free(sdir2);
	sodium_memzero(&sec, sizeof sec);
}

/* A sealed KEK: the backup needs its passphrase, the restore a new one
 * (or --unsealed). */
static void test_sealed(void)
{
	char *base = tl_tmpdir("kbsealed");
	char *keys = path_of(base, "keys"), *bfile = path_of(base, "b.akb");
	char *r1 = path_of(base, "r1"), *r2 = path_of(base, "r2");
	struct backup_opts bo;
	struct backup_summary bs;
	struct restore_opts ro;
	struct restore_summary rs;
	keystore_t *st;

	CHECK_RC(keystore_init(keys, "old pass", 8, KEYSTORE_COST_INTERACTIVE,
	    err, sizeof err), 0);
	memset(&bo, 0, sizeof bo);
	bo.dir = keys;
	bo.out = bfile;
	bo.backup_pass = "bp";
	bo.backup_passlen = 2;
	bo.cost = KEYSTORE_COST_INTERACTIVE;
	CHECK_RC(backup_create(&bo, &bs, err, sizeof err), AR_EPERM);
	CHECK(access(bfile, F_OK) != 0);
	bo.kek_pass = "old pass";
	bo.kek_passlen = 8;
	CHECK_RC(backup_create(&bo, &bs, err, sizeof err), 0);
	CHECK(bs.kek_sealed == 1);

	ro = ropts(r1, bfile);
	ro.backup_pass = "bp";
	ro.backup_passlen = 2;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), AR_EPERM);
	CHECK(strstr(err, "--passphrase-fd") != NULL);
	ro.kek_pass = "new pass";
	ro.kek_passlen = 8;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), 0);
	restore_summary_free(&rs);
	CHECK_RC(keystore_open(&st, r1, "old pass", 8, err, sizeof err),
	    AR_EKEY);
	CHECK_RC(keystore_open(&st, r1, "new pass", 8, err, sizeof err), 0);
	keystore_close(st);

	/* into an existing directory without key material (a fresh volume,
	 * a lock file left by a daemon): no --force needed, nothing kept */
	CHECK(mkdir(r2, 0700) == 0);
	{
		char *lock = path_of(r2, "keysvc.lock");
		CHECK_RC(ar_file_write_atomic(lock, "", 0, 0600), 0);
		free(lock);
	}
	ro = ropts(r2, bfile);
	ro.backup_pass = "bp";
	ro.backup_passlen = 2;
	ro.unsealed = 1;
	CHECK_RC(restore_run(&ro, &rs, err, sizeof err), 0);
	CHECK(rs.replaced[0] == '\0');
	restore_summary_free(&rs);
	CHECK(tl_count_entries(base) == 4);   /* keys r1 r2 b.akb */
	CHECK_RC(keystore_open(&st, r2, NULL, 0, err, sizeof err), 0);
	CHECK(!keystore_sealed(st));
	keystore_close(st);
	tl_rmrf(base);
	free(base); free(keys); free(bfile); free(r1); free(r2);
}

/* Tenant changes wait while a backup holds the snapshot lock. */
static void test_snapshot_lock(void)
{
	char *base = tl_tmpdir("kbsnap");
	uint32_t v;
	int destroyed, fd, rc = -1;
	keysvc_t *ks;
	pid_t pid = tl_keysvc_start(base);

	CHECK_RC(keystore_snapshot_lock(base, 0, 1000, &fd), 0);
	ks = client(base, 1000);
	/* the daemon waits for the lock: the client gives up first */
	CHECK_RC(keysvc_tenant_create(ks, T1), AR_EKEYSVC);
	keysvc_close(ks);
	keystore_snapshot_unlock(fd);
	/* once released, the create goes through */
	for (int i = 0; i < 2000 && rc != 0; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		ks = client(base, 5000);
		rc = keysvc_tenant_info(ks, T1, &v, &destroyed);
		keysvc_close(ks);
		if (rc)
			nanosleep(&ts, NULL);
	}
	CHECK_RC(rc, 0);
	CHECK(v == 1);
	tl_keysvc_stop(pid);
	tl_rmrf(base);
	free(base);
}

static void test_shred_list(void)
{
	char *base = tl_tmpdir("kbshred");
	char *p = path_of(base, "list");
	uint8_t (*ids)[16];
	size_t n;
	const char *good = "# shredded per archivectl\n"
	    "a1010203010000000000000000000000 acme\n"
	    "\n"
	    "  B2040506020000000000000000000000\r\n";

	CHECK_RC(ar_file_write_atomic(p, good, strlen(good), 0600), 0);
	CHECK_RC(backup_read_shred_list(p, &ids, &n, err, sizeof err), 0);
	CHECK(n == 2 && memcmp(ids[0], T1, 16) == 0 &&
	    memcmp(ids[1], T2, 16) == 0);
	free(ids);
	CHECK_RC(ar_file_write_atomic(p, "\n", 1, 0600), 0);
	CHECK_RC(backup_read_shred_list(p, &ids, &n, err, sizeof err), 0);
	CHECK(n == 0);
	free(ids);
	CHECK_RC(ar_file_write_atomic(p, "a101\nxyz\n", 9, 0600), 0);
	CHECK_RC(backup_read_shred_list(p, &ids, &n, err, sizeof err),
	    AR_EINVAL);
	CHECK(strstr(err, ":1:") != NULL && strstr(err, "a101") != NULL);
	tl_rmrf(base);
	free(base);
	free(p);
}

int main(void)
{
	if (sodium_init() < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	test_shares_round_trip();
	test_shares_mixed();
	test_shares_text();
	test_shred_list();
	test_backup_restore();
	test_sealed();
	test_snapshot_lock();
	return tl_done();
}
