/*
 * test_jobs.c - the store refuses what the records-management rules
 * forbid, whoever calls it: a shorter retention period or an earlier
 * retain-until (AR_EPERM), disposing before retain-until (AR_ERETAINED)
 * or under a hold (AR_EHOLD); and the export file formats (CSV quoting,
 * Concordance DAT delimiters, mboxrd quoting, the PEM key).  Also the
 * batch bound: a large ingest batch keeps at most 64 objects open.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ar.h"
#include "jobs/jobs_priv.h"
#include "store/store.h"
#include "testlib.h"

static const char msg[] = "From: a@x.example\r\nTo: b@y.example\r\n"
    "Subject: s\r\n\r\nbody\r\n";
static const char meta[] = "{\"from\":\"a@x.example\",\"to\":[\"b@y.example\"],"
    "\"cc\":[],\"date\":1700000000,\"subject\":\"s\"}";

struct rd { size_t off; const char *text; };

static int read_cb(void *arg, void *buf, size_t len, size_t *got)
{
	struct rd *r = arg;
	const char *t = r->text ? r->text : msg;
	size_t n = strlen(t) - r->off;
	if (n > len)
		n = len;
	memcpy(buf, t + r->off, n);
	r->off += n;
	*got = n;
	return 0;
}

/* Store one message and index its subject; its id into id. */
static void put_indexed(store_t *st, search_t *idx, const store_tenant_t *t,
    const char *text, const char *subject, uint8_t id[STORE_ID_LEN])
{
	struct rd r = { 0, text };
	store_ingest_t m;
	store_batch_t *b;
	search_doc_t doc;
	search_display_t disp;
	size_t slot;

	memset(&m, 0, sizeof m);
	m.tenant = t;
	m.received = ar_now();
	m.meta = meta;
	m.read = read_cb;
	m.read_arg = &r;
	crypto_hash_sha256(m.plain_sha256, (const unsigned char *)text,
	    strlen(text));
	CHECK_RC(store_batch_begin(st, &b), 0);
	CHECK_RC(store_batch_add(b, &m, &slot), 0);
	CHECK_RC(store_batch_commit(b), 0);
	memcpy(id, store_batch_result(b, slot)->id, STORE_ID_LEN);
	store_batch_free(b);
	memset(&doc, 0, sizeof doc);
	doc.from = "a@x.example";
	doc.subject = subject;
	doc.body = subject;
	doc.date = ar_now();
	doc.size = strlen(text);
	memset(&disp, 0, sizeof disp);
	disp.subject = subject;
	CHECK_RC(search_index_add(idx, t->id, id, &doc, &disp), 0);
}

static uint64_t hits(search_t *idx, const store_tenant_t *t, const char *q)
{
	search_results_t *r;
	uint64_t n;
	if (search_run(idx, t->id, q, NULL, &r))
		return 999;
	n = search_results_total(r);
	search_results_free(r);
	return n;
}

static int open_fds(void)
{
	return tl_count_entries("/proc/self/fd");
}

/* 200 messages in one batch: the objects are finished in groups as they
 * come, so no more than 64 files are open before the commit; all 200 are
 * stored by it. */
static void test_large_batch(store_t *st, const store_tenant_t *t)
{
	enum { K = 200 };
	static char text[K][96];
	struct rd r[K];
	size_t slot[K];
	store_batch_t *b;
	int fds0 = open_fds(), most = 0;

	CHECK_RC(store_batch_begin(st, &b), 0);
	for (size_t i = 0; i < K; i++) {
		store_ingest_t m;
		int fds;
		snprintf(text[i], sizeof text[i], "From: a@x.example\r\n"
		    "Subject: batch %zu\r\n\r\nbody %zu\r\n", i, i);
		r[i] = (struct rd){ 0, text[i] };
		memset(&m, 0, sizeof m);
		m.tenant = t;
		m.received = ar_now();
		m.meta = meta;
		m.read = read_cb;
		m.read_arg = &r[i];
		crypto_hash_sha256(m.plain_sha256,
		    (const unsigned char *)text[i], strlen(text[i]));
		CHECK_RC(store_batch_add(b, &m, &slot[i]), 0);
		if ((fds = open_fds() - fds0) > most)
			most = fds;
	}
	CHECK(most > 0 && most <= 64);
	CHECK_RC(store_batch_commit(b), 0);
	for (size_t i = 0; i < K; i++) {
		const store_ingest_result_t *res = store_batch_result(b,
		    slot[i]);
		store_object_t o;
		CHECK(res && res->status == 0 && !res->duplicate);
		CHECK_RC(store_object_get(st, t->id, res->id, &o), 0);
		CHECK(o.plain_size == strlen(text[i]));
		store_object_clear(&o);
	}
	store_batch_free(b);
	CHECK(open_fds() == fds0);
}

/* A hold by query keeps what the index finds; disposition removes the
 * rest from the index too; a query export finds what is left. */
static void test_query_hold(store_t *st, const char *dir)
{
	search_open_params_t so;
	search_t *idx;
	store_tenant_t t;
	store_hold_t *h = calloc(1, sizeof *h);
	jobs_dispose_params_t dp;
	jobs_dispose_result_t dr;
	jobs_export_params_t ep;
	jobs_export_result_t er;
	uint8_t a[STORE_ID_LEN], b[STORE_ID_LEN];
	char err[512], path[4096];

	setenv("AR_TEST_NOW", "1700000000", 1);
	memset(&so, 0, sizeof so);
	so.data_dir = dir;
	so.ks = store_get_keysvc(st);
	CHECK_RC(search_open(&idx, &so), 0);
	CHECK_RC(store_tenant_add(st, "qh", NULL, 0, 1, &t), 0);
	put_indexed(st, idx, &t, "Subject: zanzibar\r\n\r\nA\r\n",
	    "zanzibar treaty", a);
	put_indexed(st, idx, &t, "Subject: quokka\r\n\r\nB\r\n",
	    "quokka picnic", b);
	CHECK(hits(idx, &t, "zanzibar") == 1 && hits(idx, &t, "quokka") == 1);
	ar_strlcpy(h->name, "treaty", sizeof h->name);
	ar_strlcpy(h->query, "zanzibar", sizeof h->query);
	CHECK_RC(store_hold_create(st, &t, h), 0);

	setenv("AR_TEST_NOW", "1700500000", 1);    /* both past 1 day */
	memset(&dp, 0, sizeof dp);
	dp.st = st;
	dp.idx = NULL;           /* no index: the query hold holds all */
	dp.tenant = &t;
	dp.dry_run = 1;
	CHECK_RC(jobs_dispose(&dp, &dr, err, sizeof err), 0);
	CHECK(dr.due == 2 && dr.held == 2 && dr.disposed == 0);
	dp.idx = idx;
	dp.dry_run = 0;
	CHECK_RC(jobs_dispose(&dp, &dr, err, sizeof err), 0);
	CHECK(dr.due == 2 && dr.held == 1 && dr.disposed == 1);
	CHECK(hits(idx, &t, "quokka") == 0);      /* unsearchable */
	CHECK(hits(idx, &t, "zanzibar") == 1);
	{
		store_object_t o;
		CHECK_RC(store_object_get(st, t.id, b, &o), AR_ENOENT);
		CHECK_RC(store_object_get(st, t.id, a, &o), 0);
		store_object_clear(&o);
	}
	/* a query export: the held message only */
	memset(&ep, 0, sizeof ep);
	ep.st = st;
	ep.idx = idx;
	ep.tenant = &t;
	ep.scope = JOBS_SCOPE_QUERY;
	ep.query = "zanzibar OR quokka";
	snprintf(path, sizeof path, "%s/qexp", dir);
	ep.dir = path;
	CHECK_RC(jobs_export(&ep, &er, err, sizeof err), 0);
	CHECK(er.messages == 1);
	CHECK_RC(jobs_export_verify(path, NULL, NULL, NULL, NULL, err,
	    sizeof err), 0);
	/* a second run on a finished export is refused */
	CHECK_RC(jobs_export(&ep, &er, err, sizeof err), AR_EEXIST);
	search_close(idx);
	free(h);
}

/* A query that gives the index nothing to look up never becomes a scope:
 * a query export of it is refused before anything is written, and a hold
 * stored with one (made before such queries were refused) counts nothing
 * but still keeps its mail from disposition (issue 16). */
static void test_refused_query(store_t *st, const char *dir)
{
	static const char *const bad[] = { "!!!", "%%", "\xe2\x80\xae",
		"\xff\xfe", "-!!!", "from:!!!", "zanzibar OR !!!",
		"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
		"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
		"", "   " };
	search_open_params_t so;
	search_t *idx;
	store_tenant_t t;
	store_hold_t *h = calloc(1, sizeof *h);
	jobs_export_params_t ep;
	jobs_export_result_t er;
	jobs_dispose_params_t dp;
	jobs_dispose_result_t dr;
	uint8_t a[STORE_ID_LEN], b[STORE_ID_LEN], *ids;
	char err[512], path[4096];
	size_t n;

	setenv("AR_TEST_NOW", "1700000000", 1);
	memset(&so, 0, sizeof so);
	so.data_dir = dir;
	so.ks = store_get_keysvc(st);
	CHECK_RC(search_open(&idx, &so), 0);
	CHECK_RC(store_tenant_add(st, "rq", NULL, 0, 1, &t), 0);
	put_indexed(st, idx, &t, "Subject: zanzibar\r\n\r\nC\r\n",
	    "zanzibar accord", a);
	put_indexed(st, idx, &t, "Subject: quokka\r\n\r\nD\r\n",
	    "quokka outing", b);
	memset(&ep, 0, sizeof ep);
	ep.st = st;
	ep.idx = idx;
	ep.tenant = &t;
	ep.scope = JOBS_SCOPE_QUERY;
	snprintf(path, sizeof path, "%s/rqexp", dir);
	ep.dir = path;
	for (size_t i = 0; i < AR_ARRAY_LEN(bad); i++) {
		int rc;
		ep.query = bad[i];
		rc = jobs_export(&ep, &er, err, sizeof err);
		CHECK(rc == AR_ESYNTAX || rc == AR_EINVAL);
		CHECK(er.messages == 0 && access(path, F_OK) != 0);
		if (*bad[i] && strcmp(bad[i], "   "))
			CHECK(strstr(err, "query: column ") != NULL);
		rc = jobs_query_ids(idx, t.id, bad[i], &ids, &n, err,
		    sizeof err);
		CHECK(rc == AR_ESYNTAX || rc == AR_EINVAL);
		CHECK(ids == NULL && n == 0);
		CHECK(jobs_query_check(bad[i], err, sizeof err) == rc);
	}
	CHECK_RC(jobs_query_check("zanzibar !!!", err, sizeof err), 0);
	CHECK_RC(jobs_query_ids(idx, t.id, "zanzibar !!!", &ids, &n, err,
	    sizeof err), 0);
	CHECK(n == 1 && jobs_ids_has(ids, n, a));
	free(ids);
	/* a hold stored with a refused query: counted as an error, never as
	 * the whole tenant; disposition keeps what it may cover */
	ar_strlcpy(h->name, "old", sizeof h->name);
	ar_strlcpy(h->query, "!!!", sizeof h->query);
	CHECK_RC(store_hold_create(st, &t, h), 0);
	CHECK_RC(jobs_hold_ids(st, idx, &t, h, &ids, &n, err, sizeof err),
	    AR_ESYNTAX);
	CHECK(ids == NULL && n == 0);
	setenv("AR_TEST_NOW", "1700500000", 1);    /* both past 1 day */
	memset(&dp, 0, sizeof dp);
	dp.st = st;
	dp.idx = idx;
	dp.tenant = &t;
	dp.dry_run = 1;
	CHECK_RC(jobs_dispose(&dp, &dr, err, sizeof err), 0);
	CHECK(dr.due == 2 && dr.held == 2 && dr.disposed == 0);
	/* the good query exports its message only */
	ep.query = "zanzibar";
	CHECK_RC(jobs_export(&ep, &er, err, sizeof err), 0);
	CHECK(er.messages == 1);
	search_close(idx);
	free(h);
}

static void vcb(void *arg, const char *tenant, const char *sev,
    const char *object, const char *what)
{
	(void)arg;
	if (!strcmp(sev, "error"))
		fprintf(stderr, "verify: %s %s %s\n", tenant, object, what);
}

static char *slurp(const char *path)
{
	unsigned char *b;
	size_t n;
	char *s;
	if (ar_file_read(path, 1 << 20, &b, &n))
		return NULL;
	s = strndup((char *)b, n);
	free(b);
	return s;
}

static void test_formats(const char *dir)
{
	jobs_out_t o;
	char path[4096], pem[256], *s;
	uint8_t pk[KEYSVC_PK_LEN], back[KEYSVC_PK_LEN];

	snprintf(path, sizeof path, "%s/f.csv", dir);
	CHECK_RC(jobs_out_open(&o, path), 0);
	jobs_csv_field(&o, "plain", 0);
	jobs_csv_field(&o, "a,b", 0);
	jobs_csv_field(&o, "say \"hi\"", 0);
	jobs_csv_field(&o, "two\r\nlines", 1);
	CHECK_RC(jobs_out_close(&o, NULL), 0);
	s = slurp(path);
	CHECK(s && !strcmp(s, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\r\n"
	    "lines\"\r\n"));
	free(s);

	snprintf(path, sizeof path, "%s/f.dat", dir);
	CHECK_RC(jobs_out_open(&o, path), 0);
	jobs_dat_field(&o, "x", 0);
	jobs_dat_field(&o, "th\xc3\xbeorn\nline", 1);
	CHECK_RC(jobs_out_close(&o, NULL), 0);
	s = slurp(path);
	CHECK(s && !strcmp(s, "\xc3\xbex\xc3\xbe\x14\xc3\xbeth\xef\xbf\xbd"
	    "orn line\xc3\xbe\r\n"));
	free(s);

	/* spreadsheet formulas: a cell starting with = + - @ tab or CR gets
	 * a leading ' (and quotes), in the CSV and the DAT file alike */
	CHECK(jobs_csv_guarded("=1+1") && jobs_csv_guarded("+1") &&
	    jobs_csv_guarded("-2") && jobs_csv_guarded("@SUM(A1)") &&
	    jobs_csv_guarded("\tx") && jobs_csv_guarded("\rx"));
	CHECK(!jobs_csv_guarded("a=1") && !jobs_csv_guarded("") &&
	    !jobs_csv_guarded(NULL) && !jobs_csv_guarded(" =1"));
	snprintf(path, sizeof path, "%s/g.csv", dir);
	CHECK_RC(jobs_out_open(&o, path), 0);
	jobs_csv_field(&o, "=HYPERLINK(\"http://evil.example/\",\"x\")", 0);
	jobs_csv_field(&o, "-1", 0);
	jobs_csv_field(&o, "@x", 1);
	CHECK_RC(jobs_out_close(&o, NULL), 0);
	s = slurp(path);
	CHECK(s && !strcmp(s, "\"'=HYPERLINK(\"\"http://evil.example/\"\","
	    "\"\"x\"\")\",\"'-1\",\"'@x\"\r\n"));
	free(s);
	snprintf(path, sizeof path, "%s/g.dat", dir);
	CHECK_RC(jobs_out_open(&o, path), 0);
	jobs_dat_field(&o, "+cmd", 1);
	CHECK_RC(jobs_out_close(&o, NULL), 0);
	s = slurp(path);
	CHECK(s && !strcmp(s, "\xc3\xbe'+cmd\xc3\xbe\r\n"));
	free(s);

	/* characters that hide or turn text around */
	CHECK(jobs_char_hidden(0x202e) && jobs_char_hidden(0x202a) &&
	    jobs_char_hidden(0x2066) && jobs_char_hidden(0x2069) &&
	    jobs_char_hidden(0x200b) && jobs_char_hidden(0x200f) &&
	    jobs_char_hidden(0x061c) && jobs_char_hidden(0xfeff) &&
	    jobs_char_hidden(0x2028) && jobs_char_hidden(0x7f) &&
	    jobs_char_hidden(0xe0041));
	CHECK(!jobs_char_hidden('a') && !jobs_char_hidden(0xe9) &&
	    !jobs_char_hidden(0x05d0) && !jobs_char_hidden(0x4e2d) &&
	    !jobs_char_hidden(0x1f600));

	snprintf(path, sizeof path, "%s/m.eml", dir);
	{
		static const char eml[] = "Subject: x\n\nFrom here\n>From "
		    "there\n>>From\nFromage\n>>From the start\nend";
		CHECK_RC(ar_file_write_atomic(path, eml, sizeof eml - 1, 0600),
		    0);
	}
	{
		char mbox[4096];
		snprintf(mbox, sizeof mbox, "%s/m.mbox", dir);
		CHECK_RC(jobs_out_open(&o, mbox), 0);
		CHECK_RC(jobs_mbox_append(&o, path, "s@x.example", 0), 0);
		CHECK_RC(jobs_out_close(&o, NULL), 0);
		s = slurp(mbox);
		CHECK(s && !strcmp(s, "From s@x.example Thu Jan  1 00:00:00 "
		    "1970\nSubject: x\n\n>From here\n>>From there\n>>From\n"
		    "Fromage\n>>>From the start\nend\n\n"));
		free(s);
	}

	for (int i = 0; i < KEYSVC_PK_LEN; i++)
		pk[i] = (uint8_t)(i * 7);
	CHECK_RC(jobs_pubkey_pem(pk, pem, sizeof pem), 0);
	CHECK(!strncmp(pem, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA",
	    41));
	CHECK_RC(jobs_pubkey_from_pem(pem, back), 0);
	CHECK(!memcmp(pk, back, sizeof pk));
	CHECK_RC(jobs_pubkey_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n"
	    "-----END PUBLIC KEY-----\n", back), AR_EINVAL);
}

/* The cheap header scan that spares GMime: never says "no attachment"
 * where GMime would find one, and says it for plain messages. */
static void test_attach_scan(const char *dir)
{
	static const struct { const char *m; int may; } c[] = {
		{ "From: a@x\r\nSubject: s\r\n\r\nbody\r\n", 0 },
		{ "From: a@x\nContent-Type: text/plain; charset=utf-8\n"
		  "\nbody name\nContent-Disposition: attachment\n", 0 },
		{ "From: a@x\r\nContent-Type: multipart/mixed;\r\n "
		  "boundary=b\r\n\r\n--b\r\nContent-Disposition: "
		  "attachment; filename=a.txt\r\n\r\nA\r\n--b--\r\n", 1 },
		{ "From: a@x\r\nCONTENT-DISPOSITION: attachment\r\n\r\nA\r\n",
		  1 },
		{ "From: a@x\r\ncontent-type: application/pdf;\r\n\t"
		  "name=\"r.pdf\"\r\n\r\nJVBERi0=\r\n", 1 },
		{ "From: a@x\r\nContent-Type: message/rfc822\r\n\r\n"
		  "Subject: in\r\n\r\nx\r\n", 1 },
		{ "From: a@x\r\nContent-Type : multipart/mixed\r\n\r\n", 1 },
		{ "From: a@x\r\nSubject: no end of header", 1 },
	};
	char path[4096];

	for (size_t i = 0; i < AR_ARRAY_LEN(c); i++) {
		json_t *atts = json_array();
		int may = jobs_may_have_attachments((const unsigned char *)
		    c[i].m, strlen(c[i].m));
		CHECK(may == c[i].may);
		snprintf(path, sizeof path, "%s/scan%zu.eml", dir, i);
		CHECK_RC(ar_file_write_atomic(path, c[i].m, strlen(c[i].m),
		    0600), 0);
		CHECK_RC(jobs_attachments_extract(path, dir, "scan", atts,
		    NULL, 0), 0);
		/* "no" only where GMime finds none; the "yes" cases with an
		 * attachment have one */
		if (!may)
			CHECK(json_array_size(atts) == 0);
		else if (i >= 2 && i <= 5)
			CHECK(json_array_size(atts) >= 1);
		json_decref(atts);
	}
}

static void test_out_sha(const char *dir)
{
	jobs_out_t o;
	char path[4096], hex[65];
	uint8_t sha[32], again[32];
	uint64_t size;

	snprintf(path, sizeof path, "%s/abc", dir);
	CHECK_RC(jobs_out_open(&o, path), 0);
	jobs_out_puts(&o, "abc");
	CHECK_RC(jobs_out_close(&o, sha), 0);
	CHECK(!strcmp(ar_hex(sha, 32, hex), "ba7816bf8f01cfea414140de5dae"
	    "2223b00361a396177a9cb410ff61f20015ad"));
	CHECK_RC(jobs_file_sha256(path, again, &size), 0);
	CHECK(size == 3 && !memcmp(sha, again, 32));
	CHECK_RC(jobs_file_sha256("/nonexistent/x", again, NULL), AR_ENOENT);
}

int main(void)
{
	char *dir = tl_tmpdir("jobs"), ksdir[4096], sock[4200], obj[4200],
	    cat[4200];
	store_open_params_t op;
	store_backend_t *be;
	store_t *st;
	keysvc_t *ks;
	store_tenant_t t;
	store_ingest_t m;
	store_batch_t *b;
	store_object_t o;
	store_hold_t *h = calloc(1, sizeof *h);
	struct rd r = { 0 };
	uint8_t id[STORE_ID_LEN];
	size_t slot;
	pid_t pid;

	setenv("AR_TEST_NOW", "1700000000", 1);
	test_formats(dir);
	test_attach_scan(dir);
	test_out_sha(dir);
	snprintf(ksdir, sizeof ksdir, "%s/keys", dir);
	snprintf(sock, sizeof sock, "%s/keysvc.sock", ksdir);
	snprintf(obj, sizeof obj, "%s/objects", dir);
	snprintf(cat, sizeof cat, "%s/catalog", dir);
	ar_mkdirs(ksdir, 0700);
	ar_mkdirs(cat, 0700);
	pid = tl_keysvc_start(ksdir);
	CHECK_RC(keysvc_open(&ks, sock, 0), 0);
	CHECK_RC(store_backend_open_fs(&be, obj), 0);
	memset(&op, 0, sizeof op);
	op.catalog_dir = cat;
	op.backend = be;
	op.ks = ks;
	op.map_size = 8 << 20;
	op.checkpoint_entries = 1000;
	op.checkpoint_seconds = 3600;
	CHECK_RC(store_open(&st, &op), 0);
	CHECK_RC(store_tenant_add(st, "acme", NULL, 0, 10, &t), 0);

	/* a rule: mail to @y.example 20 days; ingest fixes it */
	CHECK_RC(store_retention_rule_add(st, &t, "@Y.example", 20), 0);
	CHECK_RC(store_retention_rule_add(st, &t, "@y.example", 15), AR_EPERM);
	CHECK_RC(store_retention_rule_add(st, &t, "nonsense", 15), AR_EINVAL);
	CHECK_RC(store_retention_set_default(st, "acme", 5), AR_EPERM);
	{
		store_tenant_t t2 = t;
		t2.retention_days = 9;
		CHECK_RC(store_tenant_update(st, &t2), AR_EPERM);
	}
	memset(&m, 0, sizeof m);
	m.tenant = &t;
	m.received = ar_now();
	m.meta = meta;
	m.read = read_cb;
	m.read_arg = &r;
	crypto_hash_sha256(m.plain_sha256, (const unsigned char *)msg,
	    sizeof msg - 1);
	CHECK_RC(store_batch_begin(st, &b), 0);
	CHECK_RC(store_batch_add(b, &m, &slot), 0);
	CHECK_RC(store_batch_commit(b), 0);
	memcpy(id, store_batch_result(b, slot)->id, STORE_ID_LEN);
	store_batch_free(b);
	CHECK_RC(store_object_get(st, t.id, id, &o), 0);
	CHECK(o.retain_until == 1700000000 + 20 * 86400);
	store_object_clear(&o);

	/* never reduced; extended */
	CHECK_RC(store_object_extend_retention(st, t.id, id,
	    1700000000 + 19 * 86400), AR_EPERM);
	CHECK_RC(store_object_extend_retention(st, t.id, id,
	    1700000000 + 25 * 86400), 0);

	/* before retain-until: refused */
	setenv("AR_TEST_NOW", "1701900000", 1);     /* day 22.5 */
	CHECK_RC(store_object_dispose(st, &t, id, 1, "test", NULL),
	    AR_ERETAINED);
	/* after it, under a hold: refused; released: disposed */
	setenv("AR_TEST_NOW", "1702500000", 1);     /* day 29.5 */
	ar_strlcpy(h->name, "case", sizeof h->name);
	h->n_custodians = 1;
	ar_strlcpy(h->custodians[0], "@x.example", STORE_ADDR_MAX);
	CHECK_RC(store_hold_create(st, &t, h), 0);
	CHECK_RC(store_object_dispose(st, &t, id, 1, "test", NULL), AR_EHOLD);
	CHECK_RC(store_object_get(st, t.id, id, &o), 0);
	store_object_clear(&o);
	CHECK_RC(store_hold_release(st, &t, "case", "tester", "done"), 0);
	CHECK_RC(store_hold_release(st, &t, "case", "tester", "x"), AR_EINVAL);
	CHECK_RC(store_object_dispose(st, &t, id, 1, "test", NULL), 0);
	CHECK_RC(store_object_get(st, t.id, id, &o), AR_ENOENT);
	CHECK_RC(store_object_dispose(st, &t, id, 1, "test", NULL), AR_ENOENT);
	{
		store_verify_stats_t vs;
		CHECK_RC(store_verify(st, t.id, vcb, NULL, &vs), 0);
		CHECK(vs.disposed == 1 && vs.errors == 0);
	}

	test_query_hold(st, dir);
	test_refused_query(st, dir);
	test_large_batch(st, &t);
	store_close(st);
	store_backend_close(be);
	keysvc_close(ks);
	tl_keysvc_stop(pid);
	free(h);
	tl_rmrf(dir);
	free(dir);
	return tl_done();
}
