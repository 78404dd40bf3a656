/*
 * test_gw_dkim.c - the DKIM signer of outgoing mail (gateway/dkim_sign.h)
 * and the sealed per-domain keys (store.h "DKIM signing keys"):
 *   - relaxed canonicalisation against RFC 6376 3.4.5's example;
 *   - RFC 8463 appendix A: its message hashes to its bh=, and its
 *     Ed25519 signature (made by another implementation) verifies over
 *     the header data our canonicaliser builds; ours over the same
 *     message verifies with the RFC's public key;
 *   - a message streamed a byte at a time signs exactly like one write;
 *   - the signature verifies (our own small verifier here, OpenSSL),
 *     fails for a changed body and for a From: added above (oversigned);
 *   - the From: domain in its usual shapes; a header section too large;
 *   - keys in a real catalog with the real keysvc: only tenant's own
 *     domains, one per domain, listed, unsealed, removed; the PEM's
 *     base64 nowhere in the catalog file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "ar.h"
#include "gateway/dkim_sign.h"
#include "testlib.h"

/* --- helpers ------------------------------------------------------------------ */

static char *canon_body(const char *s, size_t *n)
{
	return gw_dkim_canon_body(s, strlen(s), n);
}

static int b64dec(const char *in, unsigned char *out, size_t cap)
{
	char clean[4096];
	size_t n = 0;
	int len;

	for (; *in && n + 1 < sizeof clean; in++)
		if (*in != ' ' && *in != '\t' && *in != '\r' && *in != '\n')
			clean[n++] = *in;
	clean[n] = '\0';
	if (n / 4 * 3 > cap)
		return -1;
	len = EVP_DecodeBlock(out, (unsigned char *)clean, (int)n);
	if (len < 0)
		return -1;
	while (n && clean[n - 1] == '=') {
		len--;
		n--;
	}
	return len;
}

/* The value of tag name in a DKIM-Signature field (malloc'd). */
static char *tag(const char *field, const char *name)
{
	const char *p = strchr(field, ':') + 1;
	size_t nl = strlen(name);

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' ||
		    *p == ';')
			p++;
		if (!strncmp(p, name, nl) && p[nl] == '=') {
			const char *v = p + nl + 1, *e = strchr(v, ';');
			if (!e)
				e = v + strlen(v);
			return strndup(v, (size_t)(e - v));
		}
		p = strchr(p, ';');
		if (!p)
			break;
	}
	return NULL;
}

/* The fields of a header section (each without its final CRLF). */
static size_t fields_of(const char *hdr, char **out, size_t max)
{
	size_t n = 0;
	const char *p = hdr;

	while (*p && n < max && !(p[0] == '\r' && p[1] == '\n')) {
		const char *e = p;
		for (;;) {
			e = strstr(e, "\r\n");
			if (!e || (e[2] != ' ' && e[2] != '\t'))
				break;
			e += 2;
		}
		if (!e)
			e = p + strlen(p);
		out[n++] = strndup(p, (size_t)(e - p));
		p = *e ? e + 2 : e;
	}
	return n;
}

/*
 * A small verifier: field is the DKIM-Signature we made for msg (a whole
 * message, CRLF).  The header data is rebuilt here from h= (instances
 * bottom-up) with gw_dkim_canon_header, the body hash from bh= compared
 * with our canonical body's SHA-256, the signature checked with pub.
 * 0 when it verifies.
 */
static int verify(const char *field, const char *msg, EVP_PKEY *pub)
{
	char *fields[64], *h = tag(field, "h"), *b = tag(field, "b");
	char *bh = tag(field, "bh"), *body, *cb, *data = NULL, *sigf, *p;
	unsigned char sig[1024], md[32], bhraw[64];
	size_t nf, cbl, dlen = 0, used[64] = { 0 };
	int siglen, ok = -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	body = strstr(msg, "\r\n\r\n");
	body = body ? body + 4 : (char *)"";
	nf = fields_of(msg, fields, 64);
	cb = gw_dkim_canon_body(body, strlen(body), &cbl);
	SHA256((unsigned char *)cb, cbl, md);
	if (b64dec(bh, bhraw, sizeof bhraw) != 32 || memcmp(md, bhraw, 32))
		goto out;
	data = calloc(1, strlen(msg) * 2 + strlen(field) * 2 + 64);
	for (p = strtok(h, ": \t\r\n"); p; p = strtok(NULL, ": \t\r\n"))
		for (size_t i = nf; i-- > 0;) {
			size_t n = strlen(p);
			if (used[i] || strncasecmp(fields[i], p, n) ||
			    (fields[i][n] != ':' && fields[i][n] != ' '))
				continue;
			used[i] = 1;
			char *c = gw_dkim_canon_header(fields[i],
			    strlen(fields[i]));
			memcpy(data + dlen, c, strlen(c));
			dlen += strlen(c);
			free(c);
			break;
		}
	/* the field itself, b= emptied, no final CRLF */
	sigf = strdup(field);
	p = strstr(sigf, "b=");
	while (p && p > sigf && p[-1] != ' ' && p[-1] != '\t' && p[-1] != ';')
		p = strstr(p + 1, "b=");
	p[2] = '\0';
	{
		char *c = gw_dkim_canon_header(sigf, strlen(sigf));
		size_t n = strlen(c) - 2;
		memcpy(data + dlen, c, n);
		dlen += n;
		free(c);
	}
	free(sigf);
	siglen = b64dec(b, sig, sizeof sig);
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA)
		ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL,
		    pub) == 1 && EVP_DigestVerify(ctx, sig, (size_t)siglen,
		    (unsigned char *)data, dlen) == 1 ? 0 : -1;
	else {
		SHA256((unsigned char *)data, dlen, md);
		ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
		    EVP_DigestVerify(ctx, sig, (size_t)siglen, md, 32) == 1 ?
		    0 : -1;
	}
out:
	for (size_t i = 0; i < nf; i++)
		free(fields[i]);
	EVP_MD_CTX_free(ctx);
	free(data);
	free(cb);
	free(h);
	free(b);
	free(bh);
	return ok;
}

/* Stream msg through a signer in pieces of step bytes (0: one write). */
static gw_dkim_t *feed(const char *msg, size_t step)
{
	gw_dkim_t *d;
	size_t n = strlen(msg);

	if (gw_dkim_new(&d))
		return NULL;
	if (!step)
		step = n ? n : 1;
	for (size_t i = 0; i < n; i += step)
		gw_dkim_write(d, msg + i, n - i < step ? n - i : step);
	return d;
}

static char *sign(const char *msg, size_t step, const char *pem,
    const char *headers)
{
	gw_dkim_t *d = feed(msg, step);
	gw_dkim_params_t p = { "example.org", "sel1", 1700000000, pem,
	    strlen(pem), headers, 1 };
	char *field = NULL, err[160];
	int rc = gw_dkim_sign(d, &p, &field, err, sizeof err);

	if (rc)
		fprintf(stderr, "sign: %s\n", err);
	gw_dkim_free(d);
	return field;
}

static char *join(const char *a, const char *b)
{
	char *s = malloc(strlen(a) + strlen(b) + 1);
	strcpy(s, a);
	strcat(s, b);
	return s;
}

static char *pem_of(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

/* --- canonicalisation -------------------------------------------------------- */

static void test_canon(void)
{
	char *c;
	size_t n;

	/* RFC 6376 3.4.5 */
	c = gw_dkim_canon_header("A: X", 4);
	CHECK(c && !strcmp(c, "a:X\r\n"));
	free(c);
	c = gw_dkim_canon_header("B : Y\t\r\n\tZ  ", 12);
	CHECK(c && !strcmp(c, "b:Y Z\r\n"));
	free(c);
	c = canon_body(" C \r\nD \t E\r\n\r\n\r\n", &n);
	CHECK(c && n == 9 && !memcmp(c, " C\r\nD E\r\n", n));
	free(c);
	/* an empty body stays empty; empty lines at the end go; a last
	 * line without CRLF gets one; whitespace-only lines are empty */
	c = canon_body("", &n);
	CHECK(c && n == 0);
	free(c);
	c = canon_body("\r\n\r\n \t\r\n", &n);
	CHECK(c && n == 0);
	free(c);
	c = canon_body("abc", &n);
	CHECK(c && n == 5 && !memcmp(c, "abc\r\n", 5));
	free(c);
	c = canon_body("a\r\n\r\nb \r\n \r\n", &n);
	CHECK(c && n == 8 && !memcmp(c, "a\r\n\r\nb\r\n", 8));
	free(c);
	/* a bare CR is an ordinary character */
	c = canon_body("a\rb\r\n", &n);
	CHECK(c && n == 5 && !memcmp(c, "a\rb\r\n", 5));
	free(c);
	{
		gw_dkim_t *d = feed("From: a@b.test\r\n\r\n", 0);
		char bh[64];
		CHECK_RC(gw_dkim_body_hash(d, bh, sizeof bh), 0);
		/* SHA-256 of nothing */
		CHECK(!strcmp(bh, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="));
		gw_dkim_free(d);
	}
}

/* --- RFC 8463 appendix A ------------------------------------------------------ */

static const char rfc_msg[] =
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";
static const char rfc_field[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n";
static const char rfc_seed[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char rfc_pub[] = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

static void test_rfc8463(void)
{
	unsigned char raw[64];
	EVP_PKEY *pub, *priv;
	gw_dkim_t *d;
	char bh[64], dom[256], *pem, *field, *msg;

	/* its body hash, the message streamed 7 bytes at a time */
	d = feed(rfc_msg, 7);
	CHECK_RC(gw_dkim_body_hash(d, bh, sizeof bh), 0);
	CHECK(!strcmp(bh, "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="));
	CHECK_RC(gw_dkim_from_domain(d, dom, sizeof dom), 0);
	CHECK(!strcmp(dom, "football.example.com"));
	gw_dkim_free(d);
	/* its signature, another implementation's, verifies over the
	 * header data our canonicaliser builds */
	CHECK(b64dec(rfc_pub, raw, sizeof raw) == 32);
	pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
	msg = join(rfc_field, rfc_msg);
	CHECK(pub && verify(rfc_field, msg, pub) == 0);
	free(msg);
	/* ours, with the RFC's private key and its h=, verifies too */
	CHECK(b64dec(rfc_seed, raw, sizeof raw) == 32);
	priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, 32);
	pem = pem_of(priv);
	field = sign(rfc_msg, 0, pem,
	    "from:to:subject:date:message-id:from:subject:date");
	CHECK(field && !strncmp(field, "DKIM-Signature: v=1; "
	    "a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=sel1;", 59));
	msg = field ? join(field, rfc_msg) : NULL;
	CHECK(msg && verify(field, msg, pub) == 0);
	free(msg);
	free(field);
	free(pem);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
}

/* --- RSA, streaming, tampering --------------------------------------------- */

static const char msg1[] =
    "Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
    "From: \"Doe, John\" <John@Example.ORG>\r\n"
    "To: carol@local.test,\r\n\tdave@local.test\r\n"
    "Subject:   Quarterly\t numbers  \r\n"
    "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
    "Message-ID: <q1@example.org>\r\n"
    "X-Other: not signed\r\n"
    "\r\n"
    "Line one  with   spaces \r\n"
    "\r\n"
    "\tindented\r\n"
    "\r\n"
    "\r\n";

static void test_rsa(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	char *pem = pem_of(k), *f1, *f2, *m, *h, *a;
	gw_dkim_t *d;
	char dom[256];

	f1 = sign(msg1, 0, pem, NULL);
	f2 = sign(msg1, 1, pem, NULL);
	CHECK(f1 && f2 && !strcmp(f1, f2));     /* streaming changes nothing */
	h = f1 ? tag(f1, "h") : NULL;
	a = f1 ? tag(f1, "a") : NULL;
	CHECK(a && !strcmp(a, "rsa-sha256"));
	/* present fields signed, From oversigned, absent ones not listed */
	{
		char flat[512];
		size_t n = 0;
		for (const char *p = h ? h : ""; *p && n + 1 < sizeof flat; p++)
			if (*p != '\r' && *p != '\n' && *p != '\t' && *p != ' ')
				flat[n++] = *p;
		flat[n] = '\0';
		CHECK(!strcmp(flat, "from:from:to:subject:date:message-id"));
	}
	m = f1 ? join(f1, msg1) : NULL;
	CHECK(m && verify(f1, m, k) == 0);
	free(m);
	/* a changed body fails */
	{
		char *changed = strdup(msg1);
		strstr(changed, "Line one")[0] = 'l';
		m = join(f1, changed);
		CHECK(verify(f1, m, k) != 0);
		free(m);
		free(changed);
	}
	/* whitespace changes in the body do not (relaxed) */
	{
		char *changed = join(msg1, "\r\n\r\n");
		m = join(f1, changed);
		CHECK(verify(f1, m, k) == 0);
		free(m);
		free(changed);
	}
	/* a From: added above the signed one fails (oversigned) */
	{
		char *pre = join("From: mallory@evil.test\r\n", msg1);
		m = join(f1, pre);
		CHECK(verify(f1, m, k) != 0);
		free(m);
		free(pre);
	}
	/* a field not signed may change */
	{
		char *changed = strdup(msg1);
		strstr(changed, "not signed")[0] = 'N';
		m = join(f1, changed);
		CHECK(verify(f1, m, k) == 0);
		free(m);
		free(changed);
	}
	d = feed(msg1, 3);
	CHECK_RC(gw_dkim_from_domain(d, dom, sizeof dom), 0);
	CHECK(!strcmp(dom, "example.org"));
	gw_dkim_free(d);
	/* not a key */
	{
		gw_dkim_t *x = feed(msg1, 0);
		gw_dkim_params_t p = { "example.org", "s", 0, "junk", 4, NULL,
		    1 };
		char *f = NULL, err[160];
		CHECK_RC(gw_dkim_sign(x, &p, &f, err, sizeof err), AR_EINVAL);
		CHECK(f == NULL && strstr(err, "PEM"));
		p.key_pem = pem;
		p.key_len = strlen(pem);
		p.selector = "bad;sel";
		CHECK_RC(gw_dkim_sign(x, &p, &f, err, sizeof err), AR_EINVAL);
		gw_dkim_free(x);
	}
	free(h);
	free(a);
	free(f1);
	free(f2);
	free(pem);
	EVP_PKEY_free(k);
}

static void test_from(void)
{
	static const struct { const char *msg, *want; } cases[] = {
		{ "From: joe@Example.COM\r\n\r\nx\r\n", "example.com" },
		{ "from :  joe@a.example (Joe <x@y.test>)\r\n\r\n", "a.example" },
		{ "From: \"x@evil.test\" <joe@b.example>\r\n\r\n", "b.example" },
		{ "From: (c@evil.test) Joe\r\n <joe@c.example>\r\n\r\n",
		    "c.example" },
		{ "To: a@b.test\r\nFrom: a@d.example, b@e.example\r\n\r\n",
		    "d.example" },
		{ "From: undisclosed\r\n\r\n", NULL },
		{ "To: a@b.test\r\n\r\n", NULL },
		{ "From: <joe@bad_domain!>\r\n\r\n", NULL },
	};

	for (size_t i = 0; i < AR_ARRAY_LEN(cases); i++) {
		gw_dkim_t *d = feed(cases[i].msg, 2);
		char dom[256];
		int rc = gw_dkim_from_domain(d, dom, sizeof dom);
		if (cases[i].want)
			CHECK(rc == 0 && !strcmp(dom, cases[i].want));
		else
			CHECK_RC(rc, AR_ENOENT);
		gw_dkim_free(d);
	}
	/* a header section over the limit: refused, nothing signed */
	{
		gw_dkim_t *d;
		char *big = malloc(GW_DKIM_HEADER_MAX + 100), *f = NULL;
		char err[160];
		gw_dkim_params_t p = { "example.org", "s", 0, "x", 1, NULL, 1 };
		memcpy(big, "From: a@example.org\r\nX: ", 24);
		memset(big + 24, 'a', GW_DKIM_HEADER_MAX + 50);
		CHECK_RC(gw_dkim_new(&d), 0);
		CHECK_RC(gw_dkim_write(d, big, GW_DKIM_HEADER_MAX + 74),
		    AR_ETOOBIG);
		CHECK_RC(gw_dkim_sign(d, &p, &f, err, sizeof err), AR_ETOOBIG);
		gw_dkim_free(d);
		free(big);
	}
}

/* --- a large body, streamed ------------------------------------------------ */

/* 32 MiB of body in odd-sized pieces (lines split across writes, CR and
 * LF in different ones): the body hash is the SHA-256 of the canonical
 * form computed here on its own. */
static void test_large(void)
{
	static const char line[] = "word  \t other\t \r\n\r\n";
	static const char canon[] = "word other\r\n\r\n";
	size_t ll = sizeof line - 1, cl = sizeof canon - 1, total = 0;
	size_t piece = 65536 + 7, lines = (32u << 20) / ll;
	char *buf = malloc(piece), bh[64], want[64];
	unsigned char md[32];
	EVP_MD_CTX *ref = EVP_MD_CTX_new();
	gw_dkim_t *d;
	size_t pos = 0, n = 0;

	CHECK_RC(gw_dkim_new(&d), 0);
	CHECK_RC(gw_dkim_write(d, "From: a@b.example\r\n\r\n", 21), 0);
	EVP_DigestInit_ex(ref, EVP_sha256(), NULL);
	for (size_t i = 0; i < lines; i++) {
		for (size_t k = 0; k < ll; k++) {
			buf[n++] = line[k];
			if (n == piece) {
				gw_dkim_write(d, buf, n);
				total += n;
				n = 0;
			}
		}
		/* the last line's empty line is not part of the canonical
		 * body: those at the end go */
		EVP_DigestUpdate(ref, canon, i + 1 < lines ? cl : cl - 2);
		pos++;
	}
	gw_dkim_write(d, buf, n);
	total += n;
	EVP_DigestFinal_ex(ref, md, NULL);
	EVP_EncodeBlock((unsigned char *)want, md, 32);
	CHECK_RC(gw_dkim_body_hash(d, bh, sizeof bh), 0);
	CHECK(total == lines * ll && pos == lines && !strcmp(bh, want));
	gw_dkim_free(d);
	EVP_MD_CTX_free(ref);
	free(buf);
}

/* --- the sealed keys ---------------------------------------------------------- */

/* Is needle (n bytes) anywhere in the files under dir? */
static int in_files(const char *dir, const char *needle, size_t n)
{
	char cmd[1200], path[1024];
	FILE *p;
	int found = 0;

	snprintf(cmd, sizeof cmd, "find '%s' -type f", dir);
	if (!(p = popen(cmd, "r")))
		return -1;
	while (fgets(path, sizeof path, p)) {
		FILE *f;
		char *buf;
		struct stat sb;
		path[strcspn(path, "\n")] = '\0';
		if (stat(path, &sb) || !(f = fopen(path, "rb")))
			continue;
		buf = malloc((size_t)sb.st_size + 1);
		if (fread(buf, 1, (size_t)sb.st_size, f) == (size_t)sb.st_size &&
		    memmem(buf, (size_t)sb.st_size, needle, n))
			found = 1;
		free(buf);
		fclose(f);
	}
	pclose(p);
	return found;
}

static int count_cb(void *arg, const store_dkim_key_t *k)
{
	(void)k;
	(*(int *)arg)++;
	return 0;
}

static void test_store(void)
{
	char *dir = tl_tmpdir("dkim"), ksdir[512], objdir[512], catdir[512];
	char sock[600], *pem = NULL, *gpem;
	size_t len = 0;
	store_backend_t *be;
	keysvc_t *ks;
	store_t *st;
	store_tenant_t a, b;
	store_domain_t dm;
	store_dkim_key_t k, g;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	const char *j1[] = { "j@a.test" }, *j2[] = { "j@b.test" };
	char *mid;
	int n = 0;
	pid_t pid;

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
	memset(&dm, 0, sizeof dm);
	ar_strlcpy(dm.name, "alpha.example", sizeof dm.name);
	memcpy(dm.tenant, a.id, STORE_TENANT_LEN);
	CHECK_RC(store_domain_set(st, &dm), 0);
	ar_strlcpy(dm.name, "beta.example", sizeof dm.name);
	memcpy(dm.tenant, b.id, STORE_TENANT_LEN);
	CHECK_RC(store_domain_set(st, &dm), 0);

	gpem = pem_of(key);
	/* not the tenant's domain, another's, not a domain, bad selector */
	CHECK_RC(store_dkim_add(st, a.id, "nowhere.example", "s1", gpem,
	    strlen(gpem), NULL, 0, &k), AR_ENOENT);
	CHECK(strstr(store_errmsg(st), "not a domain of this tenant"));
	CHECK_RC(store_dkim_add(st, a.id, "beta.example", "s1", gpem,
	    strlen(gpem), NULL, 0, &k), AR_ETENANT);
	CHECK_RC(store_dkim_add(st, a.id, "-x", "s1", gpem, strlen(gpem),
	    NULL, 0, &k), AR_EINVAL);
	CHECK_RC(store_dkim_add(st, a.id, "alpha.example", "s 1", gpem,
	    strlen(gpem), NULL, 0, &k), AR_EINVAL);
	CHECK_RC(store_dkim_add(st, a.id, "alpha.example", "s1", "junk", 4,
	    NULL, 0, &k), AR_EINVAL);
	{
		char *sp = pem_of(small);
		CHECK_RC(store_dkim_add(st, a.id, "alpha.example", "s1", sp,
		    strlen(sp), NULL, 0, &k), AR_EINVAL);
		CHECK(strstr(store_errmsg(st), "1024 bits"));
		free(sp);
	}
	/* the key given */
	CHECK_RC(store_dkim_add(st, a.id, "Alpha.Example", "s1", gpem,
	    strlen(gpem), NULL, 0, &k), 0);
	CHECK(!strcmp(k.domain, "alpha.example") && !strcmp(k.alg,
	    "rsa-sha256") && k.bits == 2048 &&
	    !strncmp(k.record, "v=DKIM1; k=rsa; p=MII", 21));
	CHECK_RC(store_dkim_add(st, a.id, "alpha.example", "s2", NULL, 0,
	    "ed25519", 0, &k), AR_EEXIST);
	CHECK(strstr(store_errmsg(st), "selector s1"));
	/* generated, Ed25519, for the other tenant */
	CHECK_RC(store_dkim_add(st, b.id, "beta.example", "ed1", NULL, 0,
	    "ed25519", 0, &k), 0);
	CHECK(!strcmp(k.alg, "ed25519-sha256") &&
	    !strncmp(k.record, "v=DKIM1; k=ed25519; p=", 22) &&
	    strlen(k.record) == 22 + 44);
	CHECK_RC(store_dkim_walk(st, a.id, count_cb, &n), 0);
	CHECK(n == 1);
	/* unsealed: the same key (its PEM, normalised, parses to it) */
	CHECK_RC(store_dkim_get(st, a.id, "alpha.example", &g, &pem, &len), 0);
	{
		BIO *bio = BIO_new_mem_buf(pem, (int)len);
		EVP_PKEY *back = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		CHECK(back && EVP_PKEY_eq(back, key) == 1);
		EVP_PKEY_free(back);
		BIO_free(bio);
	}
	CHECK(!strcmp(g.selector, "s1"));
	/* nothing of the private key in clear in the catalog: a line from
	 * the middle of its PEM (base64) */
	mid = strndup(pem + len / 2, 40);
	mid[strcspn(mid, "\n")] = '\0';
	CHECK(strlen(mid) >= 16 && in_files(catdir, mid, strlen(mid)) == 0);
	/* the public record is (it is published) */
	CHECK(in_files(catdir, g.record + 30, 20) == 1);
	free(mid);
	store_dkim_pem_free(pem, len);
	/* another tenant's key is not this tenant's */
	CHECK_RC(store_dkim_get(st, a.id, "beta.example", &g, &pem, &len),
	    AR_ENOENT);
	/* a second key: on standby only, then activated */
	CHECK_RC(store_dkim_add(st, a.id, "alpha.example", "s1", NULL, 0,
	    NULL, 1, &k), AR_EEXIST);
	CHECK(strstr(store_errmsg(st), "has a key with selector s1"));
	CHECK_RC(store_dkim_add(st, a.id, "alpha.example", "s2", NULL, 0,
	    "ed25519", 1, &k), 0);
	CHECK(k.active == 0);
	CHECK_RC(store_dkim_get(st, a.id, "alpha.example", &g, &pem, &len), 0);
	CHECK(!strcmp(g.selector, "s1") && g.active);
	store_dkim_pem_free(pem, len);
	{
		store_dkim_key_t prev;
		CHECK_RC(store_dkim_activate(st, a.id, "alpha.example", "s9",
		    &prev), AR_ENOENT);
		CHECK_RC(store_dkim_activate(st, a.id, "alpha.example", "s2",
		    &prev), 0);
		CHECK(!strcmp(prev.selector, "s1"));
		CHECK_RC(store_dkim_activate(st, a.id, "alpha.example", "s2",
		    &prev), 0);
		CHECK(prev.selector[0] == '\0');
	}
	CHECK_RC(store_dkim_get(st, a.id, "alpha.example", &g, &pem, &len), 0);
	CHECK(!strcmp(g.selector, "s2") && !strcmp(g.alg, "ed25519-sha256"));
	store_dkim_pem_free(pem, len);
	n = 0;
	CHECK_RC(store_dkim_walk(st, a.id, count_cb, &n), 0);
	CHECK(n == 2);
	/* removed: which one, when there are several */
	CHECK_RC(store_dkim_remove(st, a.id, "alpha.example", NULL, NULL),
	    AR_EINVAL);
	CHECK(strstr(store_errmsg(st), "has 2 keys"));
	CHECK_RC(store_dkim_remove(st, a.id, "alpha.example", "s9", NULL),
	    AR_ENOENT);
	{
		store_dkim_key_t gone;
		CHECK_RC(store_dkim_remove(st, a.id, "alpha.example", "s2",
		    &gone), 0);
		CHECK(gone.active && !strcmp(gone.selector, "s2"));
	}
	/* s1 is left, on standby: nothing signs */
	CHECK_RC(store_dkim_get(st, a.id, "alpha.example", &g, &pem, &len),
	    AR_ENOENT);
	CHECK_RC(store_dkim_remove(st, a.id, "alpha.example", "s9", NULL),
	    AR_ENOENT);
	CHECK(strstr(store_errmsg(st), "its key's selector is s1"));
	CHECK_RC(store_dkim_remove(st, a.id, "alpha.example", NULL, NULL), 0);
	CHECK_RC(store_dkim_remove(st, a.id, "alpha.example", NULL, NULL),
	    AR_ENOENT);

	/* the key service down (nothing cached): a temporary failure, which
	 * the gateway answers 451 */
	CHECK_RC(store_dkim_get(st, b.id, "beta.example", &g, &pem, &len), 0);
	store_dkim_pem_free(pem, len);
	tl_keysvc_stop(pid);
	keysvc_cache_purge(ks, b.id);
	CHECK_RC(store_dkim_get(st, b.id, "beta.example", &g, &pem, &len),
	    AR_EKEYSVC);
	CHECK(pem == NULL);

	free(gpem);
	EVP_PKEY_free(key);
	EVP_PKEY_free(small);
	store_close(st);
	store_backend_close(be);
	keysvc_close(ks);
	tl_rmrf(dir);
	free(dir);
}

int main(void)
{
	ar_log_set_level(AR_LOG_WARN);
	test_canon();
	test_rfc8463();
	test_rsa();
	test_from();
	test_large();
	test_store();
	return tl_done();
}
