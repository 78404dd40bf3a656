/*
 * test_web.c - console accounts in the catalog (sealed, round trip, per
 * tenant), roles, Argon2id and TOTP against the RFC 6238 test vectors.
 */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/stat.h>

#include "ar.h"
#include "store/store.h"
#include "testlib.h"
#include "web/web.h"

static void test_totp(void)
{
	/* RFC 6238 appendix B, SHA-1 secret "12345678901234567890": the
	 * 8-digit codes' last 6 digits */
	static const struct { uint64_t t; uint32_t code; } v[] = {
		{ 59, 287082 }, { 1111111109, 81804 }, { 1111111111, 50471 },
		{ 1234567890, 5924 }, { 2000000000, 279037 },
		{ 20000000000ULL, 353130 },
	};
	const uint8_t *secret = (const uint8_t *)"12345678901234567890";
	char uri[256];
	uint8_t s2[STORE_TOTP_SECRET_LEN];

	for (size_t i = 0; i < AR_ARRAY_LEN(v); i++)
		CHECK(web_totp_code(secret, v[i].t / WEB_TOTP_STEP) == v[i].code);
	CHECK_RC(web_totp_uri(secret, "acme", "alice", uri, sizeof uri), 0);
	/* base32 of the RFC secret */
	CHECK(strstr(uri, "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&") != NULL);
	CHECK(strncmp(uri, "otpauth://totp/archived:alice%40acme?", 37) == 0);
	web_totp_new(s2);
	CHECK(!sodium_is_zero(s2, sizeof s2));
}

static void test_password(void)
{
	char h[STORE_PWHASH_MAX];
	CHECK_RC(web_password_hash("short", h), AR_EINVAL);
	CHECK_RC(web_password_hash("a fine passphrase", h), 0);
	CHECK(strncmp(h, "$argon2id$", 10) == 0);
	CHECK_RC(web_password_check(h, "a fine passphrase"), 0);
	CHECK_RC(web_password_check(h, "a fine passphrasE"), AR_EPERM);
	CHECK_RC(web_password_check("", "x"), AR_EPERM);
}

static void test_roles(void)
{
	uint32_t r;
	char buf[64];
	CHECK_RC(store_roles_parse("officer,auditor", &r), 0);
	CHECK(r == (STORE_ROLE_OFFICER | STORE_ROLE_AUDITOR));
	CHECK(strcmp(store_roles_format(r, buf, sizeof buf),
	    "officer,auditor") == 0);
	CHECK_RC(store_roles_parse("operator", &r), 0);
	CHECK_RC(store_roles_parse("operator,admin", &r), AR_EINVAL);
	CHECK_RC(store_roles_parse("root", &r), AR_EINVAL);
	CHECK_RC(store_roles_parse("", &r), AR_EINVAL);
}

struct names { char s[256]; };

static int collect(void *arg, const store_user_t *u)
{
	struct names *n = arg;
	strcat(n->s, u->name);
	strcat(n->s, " ");
	return 0;
}

/* Does the file hold these bytes anywhere? */
static int file_has(const char *path, const char *needle)
{
	unsigned char *buf;
	size_t len, n = strlen(needle);
	int found = 0;
	if (ar_file_read(path, 1 << 28, &buf, &len))
		return 0;
	for (size_t i = 0; i + n <= len && !found; i++)
		found = memcmp(buf + i, needle, n) == 0;
	free(buf);
	return found;
}

static void test_users(void)
{
	char *dir = tl_tmpdir("web"), ksdir[512], objdir[512], catdir[512];
	char sock[600], path[600];
	store_backend_t *be;
	keysvc_t *ks;
	store_t *st;
	store_tenant_t a, b;
	store_user_t u, g;
	struct names n;
	pid_t pid;
	const char *j1[] = { "j@a.test" }, *j2[] = { "j@b.test" };

	snprintf(ksdir, sizeof ksdir, "%s/keys", dir);
	snprintf(objdir, sizeof objdir, "%s/objects", dir);
	snprintf(catdir, sizeof catdir, "%s/catalog", dir);
	snprintf(sock, sizeof sock, "%s/keysvc.sock", ksdir);
	pid = tl_keysvc_start(ksdir);
	CHECK_RC(keysvc_open(&ks, sock, 5000), 0);
	CHECK_RC(store_backend_open_fs(&be, objdir), 0);
	store_open_params_t p = { .catalog_dir = catdir, .backend = be,
	    .ks = ks };
	CHECK_RC(store_open(&st, &p), 0);
	CHECK_RC(store_tenant_add(st, "alpha", j1, 1, 30, &a), 0);
	CHECK_RC(store_tenant_add(st, "beta", j2, 1, 30, &b), 0);

	memset(&u, 0, sizeof u);
	memcpy(u.tenant, a.id, STORE_TENANT_LEN);
	ar_strlcpy(u.name, "alice", sizeof u.name);
	u.roles = STORE_ROLE_OFFICER;
	CHECK_RC(web_password_hash("Zebra-Unicorn-42", u.pwhash), 0);
	web_totp_new(u.totp_secret);
	u.totp_enabled = 1;
	u.created = 1000;
	CHECK_RC(store_user_put(st, &u, 1), 0);
	CHECK_RC(store_user_put(st, &u, 1), AR_EEXIST);
	CHECK_RC(store_user_get(st, a.id, "alice", &g), 0);
	CHECK(g.roles == STORE_ROLE_OFFICER && g.totp_enabled &&
	    !memcmp(g.totp_secret, u.totp_secret, STORE_TOTP_SECRET_LEN) &&
	    !strcmp(g.pwhash, u.pwhash) && g.created == 1000);
	CHECK_RC(store_user_get(st, b.id, "alice", &g), AR_ENOENT);
	CHECK_RC(store_user_get(st, NULL, "alice", &g), AR_ENOENT);
	CHECK_RC(store_user_get(st, a.id, "alice", &g), 0);
	g.failures = 3;
	CHECK_RC(store_user_put(st, &g, 0), 0);
	CHECK_RC(store_user_get(st, a.id, "alice", &g), 0);
	CHECK(g.failures == 3);
	ar_strlcpy(u.name, "nobody", sizeof u.name);
	CHECK_RC(store_user_put(st, &u, 0), AR_ENOENT);
	ar_strlcpy(u.name, "Bad Name", sizeof u.name);
	CHECK_RC(store_user_put(st, &u, 1), AR_EINVAL);
	ar_strlcpy(u.name, "bob", sizeof u.name);
	u.roles = STORE_ROLE_OPERATOR;   /* an operator with a tenant */
	CHECK_RC(store_user_put(st, &u, 1), AR_EINVAL);
	u.roles = STORE_ROLE_ADMIN;
	CHECK_RC(store_user_put(st, &u, 1), 0);
	memset(&u, 0, sizeof u);
	ar_strlcpy(u.name, "op", sizeof u.name);
	u.roles = STORE_ROLE_OPERATOR;
	CHECK_RC(web_password_hash("Operator-pass-1", u.pwhash), 0);
	CHECK_RC(store_user_put(st, &u, 1), 0);
	u.roles = STORE_ROLE_OFFICER;    /* a tenant user without tenant */
	ar_strlcpy(u.name, "lost", sizeof u.name);
	CHECK_RC(store_user_put(st, &u, 1), AR_EINVAL);

	memset(&n, 0, sizeof n);
	CHECK_RC(store_user_walk(st, a.id, collect, &n), 0);
	CHECK(strcmp(n.s, "alice bob ") == 0);
	memset(&n, 0, sizeof n);
	CHECK_RC(store_user_walk(st, b.id, collect, &n), 0);
	CHECK(n.s[0] == '\0');
	memset(&n, 0, sizeof n);
	CHECK_RC(store_user_walk(st, NULL, collect, &n), 0);
	CHECK(strcmp(n.s, "op ") == 0);

	/* a tenant user's hash is sealed: not in the catalog file */
	store_close(st);
	snprintf(path, sizeof path, "%s/data.mdb", catdir);
	CHECK(!file_has(path, g.pwhash));
	CHECK(!file_has(path, "officer"));
	CHECK(file_has(path, "operator"));   /* operators are in clear */
	store_user_wipe(&g);
	store_backend_close(be);
	keysvc_close(ks);
	tl_keysvc_stop(pid);
	tl_rmrf(dir);
	free(dir);
}

int main(void)
{
	ar_process_init("test_web");
	if (sodium_init() < 0)
		return 1;
	test_totp();
	test_password();
	test_roles();
	test_users();
	return tl_done();
}
