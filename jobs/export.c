/*
 * export.c - legal exports: the scope, one message at a time (its .eml,
 * its attachments, a record in .work/), then the load files, the manifest
 * and its signature, the log entry and, for a ZIP, the container.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ar.h"
#include "jobs_priv.h"

struct exp {
	const jobs_export_params_t *p;
	char root[4096];
	char work[4200];
	uint8_t *ids;
	size_t n, cap;
	jobs_export_result_t *res;
	char *err;
	size_t errlen;
	uint64_t bytes;
	int jfd;              /* .work/records, append only */
	size_t done;          /* records already in it */
};

#define FAIL(x, rc, ...) jobs_fail((x)->err, (x)->errlen, rc, __VA_ARGS__)

/* --- scope ------------------------------------------------------------- */

static int add_id(struct exp *x, const uint8_t id[STORE_ID_LEN])
{
	if (ar_grow((void **)&x->ids, &x->cap, x->n, STORE_ID_LEN))
		return AR_ENOMEM;
	memcpy(x->ids + x->n * STORE_ID_LEN, id, STORE_ID_LEN);
	x->n++;
	return 0;
}

static int walk_id(void *arg, const store_object_t *o)
{
	return add_id(arg, o->id);
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_ID_LEN);
}

/* The ids a query export covers: the query run through the index
 * (jobs_query_ids, as holds do); scope_ids sorts and dedups them with the
 * others. */
static int scope_query(struct exp *x)
{
	const jobs_export_params_t *p = x->p;
	uint8_t *ids;
	size_t n;
	int rc;

	if (!p->idx)
		return FAIL(x, AR_EINVAL, "a query export needs the index");
	if ((rc = jobs_query_ids(p->idx, p->tenant->id, p->query, &ids, &n,
	    x->err, x->errlen)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		rc = add_id(x, ids + i * STORE_ID_LEN);
	free(ids);
	return rc;
}

/* Ids of the scope, sorted (id order is arrival order), no duplicates. */
static int scope_ids(struct exp *x)
{
	const jobs_export_params_t *p = x->p;
	size_t o = 0;
	int rc = 0;

	switch (p->scope) {
	case JOBS_SCOPE_ALL:
		if ((rc = store_object_walk(p->st, p->tenant->id, 0, walk_id,
		    x)))
			return FAIL(x, rc, "catalog: %s", store_errmsg(p->st));
		break;
	case JOBS_SCOPE_QUERY:
		if ((rc = scope_query(x)))
			return rc;
		break;
	case JOBS_SCOPE_IDS:
		for (size_t i = 0; i < p->n_ids && !rc; i++)
			rc = add_id(x, p->ids + i * STORE_ID_LEN);
		if (rc)
			return rc;
		break;
	default:
		return FAIL(x, AR_EINVAL, "unknown export scope %d", p->scope);
	}
	if (x->n)
		qsort(x->ids, x->n, STORE_ID_LEN, id_cmp);
	for (size_t i = 0; i < x->n; i++)
		if (!o || memcmp(x->ids + i * STORE_ID_LEN,
		    x->ids + (o - 1) * STORE_ID_LEN, STORE_ID_LEN))
			memmove(x->ids + o++ * STORE_ID_LEN,
			    x->ids + i * STORE_ID_LEN, STORE_ID_LEN);
	x->n = o;
	return 0;
}

/* The scope as a line of text: what a resumed run must match. */
static char *scope_text(const jobs_export_params_t *p)
{
	json_t *j = json_object();
	char *s;

	json_object_set_new(j, "tenant", json_string(p->tenant->name));
	json_object_set_new(j, "scope", json_string(p->scope ==
	    JOBS_SCOPE_ALL ? "all" : p->scope == JOBS_SCOPE_QUERY ? "query"
	    : "ids"));
	if (p->scope == JOBS_SCOPE_QUERY)
		json_object_set_new(j, "query", json_string(p->query));
	if (p->scope == JOBS_SCOPE_IDS) {
		json_object_set_new(j, "label", json_string(p->scope_label ?
		    p->scope_label : "ids"));
		json_object_set_new(j, "n_ids", json_integer(
		    (json_int_t)p->n_ids));
	}
	json_object_set_new(j, "mbox", json_boolean(p->flags &
	    JOBS_EXPORT_MBOX));
	json_object_set_new(j, "dat", json_boolean(p->flags &
	    JOBS_EXPORT_DAT));
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

static int write_small(struct exp *x, const char *path, const void *buf,
    size_t len)
{
	jobs_out_t o;
	int rc;

	if ((rc = jobs_out_open(&o, path)))
		return FAIL(x, rc, "%s: %s", path, strerror(errno));
	jobs_out_write(&o, buf, len);
	if ((rc = jobs_out_close(&o, NULL)))
		return FAIL(x, rc, "%s: writing failed", path);
	return 0;
}

/* Empty directory?  1 yes, 0 no, <0 error. */
static int dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return ar_status_from_errno(errno);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* Fresh start or resume; fills x->ids. */
static int prepare(struct exp *x)
{
	char path[4300], *scope = scope_text(x->p);
	unsigned char *buf = NULL;
	size_t len = 0;
	struct stat sb;
	int rc;

	if (!scope)
		return AR_ENOMEM;
	snprintf(x->work, sizeof x->work, "%s/.work", x->root);
	snprintf(path, sizeof path, "%s/scope", x->work);
	if (stat(x->root, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		rc = FAIL(x, AR_EEXIST, "%s exists and is not a directory",
		    x->root);
		goto out;
	}
	if (ar_file_read(path, 1 << 20, &buf, &len) == 0) {
		/* an unfinished export: same scope, same ids */
		if (len != strlen(scope) || memcmp(buf, scope, len)) {
			rc = FAIL(x, AR_EINVAL, "%s is an unfinished export of "
			    "another scope (%.*s); use another directory",
			    x->root, (int)len, (const char *)buf);
			goto out;
		}
		free(buf);
		buf = NULL;
		snprintf(path, sizeof path, "%s/ids", x->work);
		if ((rc = ar_file_read(path, (size_t)1 << 34, &buf, &len)) ||
		    len % STORE_ID_LEN) {
			rc = FAIL(x, rc ? rc : AR_ECORRUPT, "%s: unreadable; "
			    "remove %s and start again", path, x->root);
			goto out;
		}
		x->ids = buf;
		buf = NULL;
		x->n = x->cap = len / STORE_ID_LEN;
		rc = 0;
		goto out;
	}
	if (stat(x->root, &sb) == 0) {
		snprintf(path, sizeof path, "%s/manifest.sha256", x->root);
		if (access(path, F_OK) == 0) {
			rc = FAIL(x, AR_EEXIST, "%s is a finished export",
			    x->root);
			goto out;
		}
		snprintf(path, sizeof path, "%s/.work", x->root);
		if (access(path, F_OK) != 0 && dir_empty(x->root) != 1) {
			rc = FAIL(x, AR_EEXIST, "%s is not empty and not an "
			    "unfinished export", x->root);
			goto out;
		}
	}
	if ((rc = ar_mkdirs(x->work, 0700))) {
		rc = FAIL(x, rc, "%s: %s", x->work, strerror(errno));
		goto out;
	}
	if ((rc = scope_ids(x)))
		goto out;
	snprintf(path, sizeof path, "%s/ids", x->work);
	if ((rc = write_small(x, path, x->ids, x->n * STORE_ID_LEN)))
		goto out;
	/* the scope file last: it says the ids are complete */
	snprintf(path, sizeof path, "%s/scope", x->work);
	rc = write_small(x, path, scope, strlen(scope));
out:
	free(buf);
	free(scope);
	return rc;
}

/* --- one message ------------------------------------------------------- */

static void add_addrs(json_t *dst, json_t *src)
{
	size_t i;
	json_t *v;

	if (json_is_string(src)) {
		json_array_append(dst, src);
		return;
	}
	json_array_foreach(src, i, v)
		if (json_is_string(v))
			json_array_append(dst, v);
}

static int in_list(json_t *arr, const char *a)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && !strcasecmp(json_string_value(v), a))
			return 1;
	return 0;
}

/* Bcc from the envelope: journal recipients typed "bcc", and envelope
 * recipients named in neither To nor Cc. */
static json_t *bcc_of(json_t *meta, json_t *to, json_t *cc)
{
	json_t *out = json_array(), *r = json_object_get(json_object_get(meta,
	    "envelope"), "recipients"), *v;
	size_t i;

	json_array_foreach(r, i, v) {
		const char *a = json_string_value(json_object_get(v,
		    "address"));
		const char *t = json_string_value(json_object_get(v, "type"));
		if (!a || in_list(out, a))
			continue;
		if ((t && !strcmp(t, "bcc")) || ((!t || !strcmp(t,
		    "recipient")) && !in_list(to, a) && !in_list(cc, a)))
			json_array_append_new(out, json_string(a));
	}
	return out;
}

static const char *str_of(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

static int export_one(struct exp *x, const uint8_t id[STORE_ID_LEN])
{
	const jobs_export_params_t *p = x->p;
	char hex[2 * STORE_ID_LEN + 1], shex[65], rel[128], path[4300];
	unsigned char buf[64 * 1024], hdr[16 * 1024];
	size_t hlen = 0;
	store_object_t o;
	store_reader_t *r = NULL;
	jobs_out_t out;
	json_t *rec = json_object(), *meta = NULL, *to, *cc, *atts;
	uint8_t sha[32];
	size_t got;
	char *s;
	int rc;

	memset(&o, 0, sizeof o);
	ar_hex(id, STORE_ID_LEN, hex);
	json_object_set_new(rec, "id", json_string(hex));
	rc = store_object_get(p->st, p->tenant->id, id, &o);
	if (rc == AR_ENOENT) {
		/* disposed of since the scope was fixed */
		json_object_set_new(rec, "skipped", json_true());
		goto write_rec;
	}
	if (rc) {
		json_decref(rec);
		return FAIL(x, rc, "%s: catalog: %s", hex, store_errmsg(p->st));
	}
	if (o.meta)
		meta = json_loads(o.meta, 0, NULL);
	if (!json_is_object(meta)) {
		json_decref(meta);
		meta = json_object();
	}

	/* the original bytes, checked against the catalog's digest */
	snprintf(rel, sizeof rel, "messages/%s.eml", hex);
	snprintf(path, sizeof path, "%s/%s", x->root, rel);
	if ((rc = store_reader_open(store_get_backend(p->st),
	    store_get_keysvc(p->st), p->tenant->id, id, &r))) {
		rc = FAIL(x, rc, "%s: %s", hex, rc == AR_EKEYSVC ?
		    keysvc_errmsg(store_get_keysvc(p->st)) : ar_strerror(rc));
		goto done;
	}
	/* in place: its record, written after it, says it is complete */
	if ((rc = jobs_out_open_direct(&out, path))) {
		rc = FAIL(x, rc, "%s: %s", path, strerror(errno));
		goto done;
	}
	while ((rc = store_reader_read(r, buf, sizeof buf, &got)) == 0 &&
	    got > 0) {
		jobs_out_write(&out, buf, got);
		if (hlen < sizeof hdr) {
			size_t k = got < sizeof hdr - hlen ? got : sizeof hdr - hlen;
			memcpy(hdr + hlen, buf, k);
			hlen += k;
		}
	}
	if (rc) {
		jobs_out_abort(&out);
		rc = FAIL(x, rc, "%s: %s", hex, store_reader_errmsg(r));
		goto done;
	}
	if ((rc = jobs_out_close(&out, sha))) {
		rc = FAIL(x, rc, "%s: writing failed", path);
		goto done;
	}
	if (memcmp(sha, o.plain_sha256, 32)) {
		rc = FAIL(x, AR_ECORRUPT, "%s: plaintext differs from the "
		    "catalog's SHA-256", hex);
		goto done;
	}
	x->bytes += out.size;

	/* attachments, decoded */
	atts = json_array();
	snprintf(rel, sizeof rel, "attachments/%s", hex);
	/* GMime only for a message whose header could name an attachment */
	rc = jobs_may_have_attachments(hdr, hlen) ? jobs_attachments_extract(
	    path, x->root, rel, atts, x->err, x->errlen) : 0;
	json_object_set_new(rec, "attachments", atts);
	if (rc)
		goto done;

	snprintf(rel, sizeof rel, "messages/%s.eml", hex);
	json_object_set_new(rec, "eml", json_string(rel));
	json_object_set_new(rec, "sha256", json_string(ar_hex(sha, 32, shex)));
	json_object_set_new(rec, "size", json_integer((json_int_t)o.plain_size));
	json_object_set_new(rec, "received", json_integer(o.received));
	{
		json_t *d = json_object_get(meta, "date");
		json_object_set_new(rec, "date", json_integer(json_is_integer(d)
		    ? json_integer_value(d) : o.received));
	}
	json_object_set_new(rec, "from", json_string(str_of(meta, "from")));
	to = json_array();
	cc = json_array();
	add_addrs(to, json_object_get(meta, "to"));
	add_addrs(cc, json_object_get(meta, "cc"));
	json_object_set_new(rec, "bcc", bcc_of(meta, to, cc));
	json_object_set_new(rec, "to", to);
	json_object_set_new(rec, "cc", cc);
	json_object_set_new(rec, "subject", json_string(str_of(meta,
	    "subject")));
	json_object_set_new(rec, "message_id", json_string(str_of(meta,
	    "message_id")));
	{
		json_t *env = json_object_get(meta, "envelope");
		json_t *snd = json_object_get(env, "sender");
		if (!json_is_string(snd))
			snd = json_object_get(json_object_get(meta, "smtp"),
			    "mail_from");
		if (json_is_string(snd))
			json_object_set(rec, "sender", snd);
	}
write_rec:
	if (!(s = json_dumps(rec, JSON_COMPACT))) {
		rc = AR_ENOMEM;
		goto done;
	}
	{
		/* one line, one write(): a crash leaves at most a partial last
		 * line, which the next run drops */
		size_t len = strlen(s);
		char *line = realloc(s, len + 2);
		if (!line) {
			free(s);
			rc = AR_ENOMEM;
			goto done;
		}
		s = line;
		s[len] = '\n';
		if ((rc = ar_write_full(x->jfd, s, len + 1)))
			rc = FAIL(x, rc, "%s/records: %s", x->work,
			    strerror(errno));
	}
	free(s);
done:
	if (r)
		store_reader_close(r);
	json_decref(meta);
	json_decref(rec);
	store_object_clear(&o);
	return rc;
}

/* --- the load files, manifest, signature ------------------------------ */

/* Next record of the journal (f), which must be for id. */
static int next_rec(struct exp *x, FILE *f, const uint8_t id[STORE_ID_LEN],
    json_t **out)
{
	char hex[2 * STORE_ID_LEN + 1], *line = NULL;
	const char *rid;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	json_error_t je;

	*out = NULL;
	if (n <= 0 || line[n - 1] != '\n') {
		free(line);
		return FAIL(x, AR_ECORRUPT, "%s/records: ends early",
		    x->work);
	}
	*out = json_loadb(line, (size_t)n - 1, 0, &je);
	free(line);
	if (!*out)
		return FAIL(x, AR_ECORRUPT, "%s/records: %s", x->work, je.text);
	rid = json_string_value(json_object_get(*out, "id"));
	if (!rid || strcmp(rid, ar_hex(id, STORE_ID_LEN, hex))) {
		json_decref(*out);
		*out = NULL;
		return FAIL(x, AR_ECORRUPT, "%s/records: out of order",
		    x->work);
	}
	return 0;
}

/* Open the records journal; keep the complete records that follow the
 * id list in order (x->done of them), drop anything after. */
static int journal_open(struct exp *x)
{
	char path[4300], hex[2 * STORE_ID_LEN + 1], *line = NULL;
	size_t cap = 0;
	off_t good = 0;
	ssize_t n;
	FILE *f;
	int fd;

	snprintf(path, sizeof path, "%s/records", x->work);
	if ((x->jfd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600)) < 0)
		return FAIL(x, ar_status_from_errno(errno), "%s: %s", path,
		    strerror(errno));
	if ((fd = dup(x->jfd)) < 0 || !(f = fdopen(fd, "r"))) {
		if (fd >= 0)
			close(fd);
		return FAIL(x, AR_EIO, "%s: %s", path, strerror(errno));
	}
	x->done = 0;
	while (x->done < x->n && (n = getline(&line, &cap, f)) > 0) {
		json_t *j;
		const char *rid;
		int ok;
		if (line[n - 1] != '\n')
			break;
		j = json_loadb(line, (size_t)n - 1, 0, NULL);
		rid = json_string_value(json_object_get(j, "id"));
		ok = rid && !strcmp(rid, ar_hex(x->ids + x->done *
		    STORE_ID_LEN, STORE_ID_LEN, hex));
		json_decref(j);
		if (!ok)
			break;
		good += n;
		x->done++;
	}
	free(line);
	fclose(f);
	if (ftruncate(x->jfd, good) != 0)
		return FAIL(x, AR_EIO, "%s: %s", path, strerror(errno));
	return 0;
}

/* "a; b; c" of a JSON array of strings (or of objects' key). */
static char *joined(json_t *arr, const char *key)
{
	size_t i, len = 1;
	json_t *v;
	char *s, *p;

	json_array_foreach(arr, i, v) {
		const char *t = key ? json_string_value(json_object_get(v, key))
		    : json_string_value(v);
		len += (t ? strlen(t) : 0) + 2;
	}
	if (!(s = p = malloc(len)))
		return NULL;
	*p = 0;
	json_array_foreach(arr, i, v) {
		const char *t = key ? json_string_value(json_object_get(v, key))
		    : json_string_value(v);
		p += sprintf(p, "%s%s", i ? "; " : "", t ? t : "");
	}
	return s;
}

static void manifest_line(jobs_out_t *m, const char *sha, const char *path)
{
	jobs_out_puts(m, sha);
	jobs_out_puts(m, "  ");
	jobs_out_puts(m, path);
	jobs_out_puts(m, "\n");
}

static const char verify_txt[] =
"How to check this export\n"
"========================\n"
"\n"
"manifest.sha256 lists the SHA-256 of every file of the export.  It is\n"
"signed (Ed25519) by the archive's key service; export-pubkey.pem is the\n"
"public key.  Compare its fingerprint with the one the archive operator\n"
"publishes (archivectl verify-export prints it).\n"
"\n"
"1. Every file is intact (GNU coreutils), in this directory:\n"
"\n"
"     sha256sum -c --strict manifest.sha256\n"
"\n"
"2. The manifest is the one the archive signed (OpenSSL 3):\n"
"\n";

static const char verify_direct[] =
"     openssl pkeyutl -verify -pubin -inkey export-pubkey.pem -rawin \\\n"
"         -in manifest.sha256 -sigfile manifest.sha256.sig\n"
"\n"
"   It prints \"Signature Verified Successfully\".\n";

static const char verify_digest[] =
"   The manifest is larger than the key service signs in one piece, so\n"
"   the signature covers manifest.sha256.sha256 (the manifest's digest):\n"
"\n"
"     sha256sum -c manifest.sha256.sha256\n"
"     openssl pkeyutl -verify -pubin -inkey export-pubkey.pem -rawin \\\n"
"         -in manifest.sha256.sha256 -sigfile manifest.sha256.sig\n"
"\n"
"   The second command prints \"Signature Verified Successfully\".\n";

static const char verify_tail[] =
"\n"
"3. Or both at once, with the archive's own tool (no archive needed):\n"
"\n"
"     archivectl verify-export DIR\n"
"\n"
"Layout: messages.csv (one row a message, RFC 4180, UTF-8), messages/\n"
"(each message as received, byte for byte), attachments/<id>/ (each\n"
"attachment decoded, in its native format), optional messages.mbox\n"
"(mboxrd) and messages.dat (Concordance: field qualifier U+00FE, field\n"
"separator 0x14, UTF-8).\n";

static int sign_file(struct exp *x, const char *path, const char *sig_path)
{
	keysvc_t *ks = store_get_keysvc(x->p->st);
	uint8_t sig[KEYSVC_SIG_LEN];
	unsigned char *buf;
	size_t len;
	int rc;

	if ((rc = ar_file_read(path, KEYSVC_SIGN_MAX, &buf, &len)))
		return FAIL(x, rc, "%s: %s", path, ar_strerror(rc));
	rc = keysvc_sign(ks, buf, len, sig);
	free(buf);
	if (rc)
		return FAIL(x, rc, "signing %s: %s", path, keysvc_errmsg(ks));
	return write_small(x, sig_path, sig, sizeof sig);
}

static const char *const top_files[] = { "messages.csv", "messages.dat",
    "messages.mbox", "export-pubkey.pem", "VERIFY.txt" };

static int finish(struct exp *x)
{
	const jobs_export_params_t *p = x->p;
	jobs_out_t csv, dat, mbox, part, man;
	uint8_t sha[AR_ARRAY_LEN(top_files)][32], pk[KEYSVC_PK_LEN];
	int have[AR_ARRAY_LEN(top_files)] = { 1, 0, 0, 1, 1 };
	char path[4300], hex[65], pem[256];
	uint64_t man_size = 0;
	int rc = 0, direct;
	FILE *jf;

	have[1] = !!(p->flags & JOBS_EXPORT_DAT);
	have[2] = !!(p->flags & JOBS_EXPORT_MBOX);
	memset(&dat, 0, sizeof dat);
	memset(&mbox, 0, sizeof mbox);
#define OPEN(o, name) do { \
		snprintf(path, sizeof path, "%s/%s", x->root, name); \
		if ((rc = jobs_out_open(o, path))) \
			return FAIL(x, rc, "%s: %s", path, strerror(errno)); \
	} while (0)
	OPEN(&csv, "messages.csv");
	OPEN(&part, ".work/manifest.part");
	if (have[1])
		OPEN(&dat, "messages.dat");
	if (have[2])
		OPEN(&mbox, "messages.mbox");
#undef OPEN
	{
		static const char *const cols[] = { "id", "date", "from", "to",
		    "cc", "bcc", "subject", "message_id", "size", "sha256",
		    "attachment_names", "eml_path", "attachment_paths" };
		static const char *const dcols[] = { "BEGDOC", "ENDDOC",
		    "DATESENT", "FROM", "TO", "CC", "BCC", "SUBJECT",
		    "MESSAGEID", "SIZE", "SHA256", "NATIVEPATH",
		    "ATTACHMENTS" };
		for (size_t i = 0; i < AR_ARRAY_LEN(cols); i++)
			jobs_csv_field(&csv, cols[i],
			    i + 1 == AR_ARRAY_LEN(cols));
		for (size_t i = 0; have[1] && i < AR_ARRAY_LEN(dcols); i++)
			jobs_dat_field(&dat, dcols[i],
			    i + 1 == AR_ARRAY_LEN(dcols));
	}
	snprintf(path, sizeof path, "%s/records", x->work);
	if (!(jf = fopen(path, "r")))
		rc = FAIL(x, AR_EIO, "%s: %s", path, strerror(errno));
	for (size_t i = 0; i < x->n && !rc; i++) {
		json_t *rec, *atts, *v;
		char date[32], size[32], *f[13] = { 0 };
		size_t k;

		if ((rc = next_rec(x, jf, x->ids + i * STORE_ID_LEN, &rec)))
			break;
		if (json_is_true(json_object_get(rec, "skipped"))) {
			x->res->skipped++;
			json_decref(rec);
			continue;
		}
		atts = json_object_get(rec, "attachments");
		ar_time_fmt(json_integer_value(json_object_get(rec, "date")),
		    date, sizeof date);
		snprintf(size, sizeof size, "%lld", (long long)
		    json_integer_value(json_object_get(rec, "size")));
		f[0] = strdup(json_string_value(json_object_get(rec, "id")));
		f[1] = strdup(date);
		f[2] = strdup(json_string_value(json_object_get(rec, "from")));
		f[3] = joined(json_object_get(rec, "to"), NULL);
		f[4] = joined(json_object_get(rec, "cc"), NULL);
		f[5] = joined(json_object_get(rec, "bcc"), NULL);
		f[6] = strdup(json_string_value(json_object_get(rec,
		    "subject")));
		f[7] = strdup(json_string_value(json_object_get(rec,
		    "message_id")));
		f[8] = strdup(size);
		f[9] = strdup(json_string_value(json_object_get(rec,
		    "sha256")));
		f[10] = joined(atts, "name");
		f[11] = strdup(json_string_value(json_object_get(rec, "eml")));
		f[12] = joined(atts, "path");
		for (k = 0; k < 13 && f[k]; k++)
			;
		if (k < 13) {
			rc = AR_ENOMEM;
		} else {
			for (k = 0; k < 13; k++)
				jobs_csv_field(&csv, f[k], k == 12);
			if (have[1]) {
				const char *d[13] = { f[0], f[0], f[1], f[2],
				    f[3], f[4], f[5], f[6], f[7], f[8], f[9],
				    f[11], f[12] };
				for (k = 0; k < 13; k++)
					jobs_dat_field(&dat, d[k], k == 12);
			}
			manifest_line(&part, f[9], f[11]);
			json_array_foreach(atts, k, v)
				manifest_line(&part, json_string_value(
				    json_object_get(v, "sha256")),
				    json_string_value(json_object_get(v,
				    "path")));
			x->res->messages++;
			x->res->attachments += json_array_size(atts);
			x->res->files += 1 + json_array_size(atts);
			x->res->bytes += (uint64_t)json_integer_value(
			    json_object_get(rec, "size"));
			json_array_foreach(atts, k, v)
				x->res->bytes += (uint64_t)json_integer_value(
				    json_object_get(v, "size"));
		}
		if (!rc && have[2]) {
			snprintf(path, sizeof path, "%s/%s", x->root, f[11]);
			rc = jobs_mbox_append(&mbox, path, json_string_value(
			    json_object_get(rec, "sender")),
			    json_integer_value(json_object_get(rec,
			    "received")));
			if (rc)
				FAIL(x, rc, "%s: %s", path, ar_strerror(rc));
		}
		for (k = 0; k < 13; k++)
			free(f[k]);
		json_decref(rec);
	}
	if (jf)
		fclose(jf);
	if (rc) {
		jobs_out_abort(&csv);
		jobs_out_abort(&part);
		jobs_out_abort(&dat);
		jobs_out_abort(&mbox);
		return rc;
	}
	rc = jobs_out_close(&csv, sha[0]);
	if (have[1] && (rc |= jobs_out_close(&dat, sha[1])) == 0)
		x->res->bytes += dat.size;
	if (have[2] && (rc |= jobs_out_close(&mbox, sha[2])) == 0)
		x->res->bytes += mbox.size;
	rc |= jobs_out_close(&part, NULL);
	if (rc)
		return FAIL(x, AR_EIO, "%s: writing the load files failed",
		    x->root);
	x->res->bytes += csv.size;

	/* the public key, and how to check */
	if ((rc = keysvc_public_key(store_get_keysvc(p->st), pk)))
		return FAIL(x, rc, "public key: %s",
		    keysvc_errmsg(store_get_keysvc(p->st)));
	jobs_pubkey_pem(pk, pem, sizeof pem);
	snprintf(path, sizeof path, "%s/export-pubkey.pem", x->root);
	if ((rc = write_small(x, path, pem, strlen(pem))))
		return rc;
	crypto_hash_sha256(sha[3], (const unsigned char *)pem, strlen(pem));
	/* signed in one piece when the key service takes it whole */
	man_size = part.size;
	for (size_t i = 0; i < AR_ARRAY_LEN(top_files); i++)
		if (have[i])
			man_size += 64 + 2 + strlen(top_files[i]) + 1;
	direct = man_size <= KEYSVC_SIGN_MAX;
	{
		jobs_out_t v;
		snprintf(path, sizeof path, "%s/VERIFY.txt", x->root);
		if ((rc = jobs_out_open(&v, path)))
			return FAIL(x, rc, "%s: %s", path, strerror(errno));
		jobs_out_puts(&v, verify_txt);
		jobs_out_puts(&v, direct ? verify_direct : verify_digest);
		jobs_out_puts(&v, verify_tail);
		if ((rc = jobs_out_close(&v, sha[4])))
			return FAIL(x, rc, "%s: writing failed", path);
		x->res->bytes += v.size + strlen(pem);
	}
	x->res->files += 2 + (uint64_t)have[1] + (uint64_t)have[2] + 1;

	/* everything durable before the manifest vouches for it */
	{
		int dfd = open(x->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || syncfs(dfd) != 0) {
			rc = FAIL(x, AR_EIO, "%s: sync: %s", x->root,
			    strerror(errno));
			if (dfd >= 0)
				close(dfd);
			return rc;
		}
		close(dfd);
	}
	snprintf(path, sizeof path, "%s/manifest.sha256", x->root);
	if ((rc = jobs_out_open(&man, path)))
		return FAIL(x, rc, "%s: %s", path, strerror(errno));
	for (size_t i = 0; i < AR_ARRAY_LEN(top_files); i++)
		if (have[i])
			manifest_line(&man, ar_hex(sha[i], 32, hex),
			    top_files[i]);
	{
		unsigned char buf[64 * 1024];
		ssize_t n;
		int fd;
		snprintf(path, sizeof path, "%s/manifest.part", x->work);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			jobs_out_abort(&man);
			return FAIL(x, AR_EIO, "%s: %s", path, strerror(errno));
		}
		while ((n = read(fd, buf, sizeof buf)) > 0)
			jobs_out_write(&man, buf, (size_t)n);
		if (n < 0)
			man.failed = 1;
		close(fd);
	}
	snprintf(path, sizeof path, "%s/manifest.sha256", x->root);
	if ((rc = jobs_out_close(&man, x->res->manifest_sha256)))
		return FAIL(x, rc, "%s: writing failed", path);
	{
		char sig[4400], dig[4400];
		snprintf(sig, sizeof sig, "%s.sig", path);
		if (direct)
			return sign_file(x, path, sig);
		snprintf(dig, sizeof dig, "%s.sha256", path);
		{
			char line[128];
			snprintf(line, sizeof line, "%s  manifest.sha256\n",
			    ar_hex(x->res->manifest_sha256, 32, hex));
			if ((rc = write_small(x, dig, line, strlen(line))))
				return rc;
		}
		return sign_file(x, dig, sig);
	}
}

/* Remove .work/ (flat) or a whole tree (staging directory). */
static int rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4300];
	struct stat sb;

	if (!d)
		return errno == ENOENT ? 0 : AR_EIO;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			rm_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	return rmdir(dir) == 0 ? 0 : AR_EIO;
}

static int log_export(struct exp *x)
{
	const jobs_export_params_t *p = x->p;
	json_t *d = json_object();
	char *s;
	int rc;

	json_object_set_new(d, "action", json_string("export"));
	json_object_set_new(d, "scope", json_string(p->scope ==
	    JOBS_SCOPE_ALL ? "all" : p->scope == JOBS_SCOPE_QUERY ? "query"
	    : "ids"));
	if (p->scope == JOBS_SCOPE_QUERY)
		json_object_set_new(d, "query", json_string(p->query));
	if (p->scope == JOBS_SCOPE_IDS && p->scope_label)
		json_object_set_new(d, "label", json_string(p->scope_label));
	json_object_set_new(d, "messages", json_integer(
	    (json_int_t)x->res->messages));
	json_object_set_new(d, "attachments", json_integer(
	    (json_int_t)x->res->attachments));
	json_object_set_new(d, "skipped", json_integer(
	    (json_int_t)x->res->skipped));
	json_object_set_new(d, "files", json_integer(
	    (json_int_t)x->res->files));
	json_object_set_new(d, "bytes", json_integer(
	    (json_int_t)x->res->bytes));
	json_object_set_new(d, "format", json_string(p->zip ? "zip" : "dir"));
	json_object_set_new(d, "by", json_string(p->by ? p->by : "?"));
	json_object_set_new(d, "user", json_string(p->by ? p->by : "?"));
	if (p->client)
		json_object_set_new(d, "client", json_string(p->client));
	s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (!s)
		return AR_ENOMEM;
	rc = store_log_append(p->st, p->tenant->id, STORE_LOG_EXPORT, NULL,
	    x->res->manifest_sha256, s, &x->res->log_seq);
	free(s);
	if (rc)
		return FAIL(x, rc, "log: %s", store_errmsg(p->st));
	return 0;
}

int jobs_export(const jobs_export_params_t *p, jobs_export_result_t *res,
    char *err, size_t errlen)
{
	struct exp x;
	jobs_progress_t pr;
	int rc;

	memset(&x, 0, sizeof x);
	memset(res, 0, sizeof *res);
	x.p = p;
	x.res = res;
	x.err = err;
	x.errlen = errlen;
	if (err && errlen)
		*err = 0;
	if (!p->st || !p->tenant || (!p->dir == !p->zip))
		return FAIL(&x, AR_EINVAL, "export: give a directory or a "
		    "ZIP file");
	if (p->scope == JOBS_SCOPE_QUERY && (!p->query || !*p->query))
		return FAIL(&x, AR_EINVAL, "export: empty query");
	/* a refused query changes nothing: checked before the first write */
	if (p->scope == JOBS_SCOPE_QUERY &&
	    (rc = jobs_query_check(p->query, err, errlen)))
		return rc;
	if (p->tenant->state == STORE_TENANT_SHREDDED)
		return FAIL(&x, AR_ESHREDDED, "tenant %s was shredded: nothing "
		    "to export", p->tenant->name);
	if (p->zip) {
		if (access(p->zip, F_OK) == 0)
			return FAIL(&x, AR_EEXIST, "%s exists", p->zip);
		if (ar_path(x.root, sizeof x.root, "%s.partial.d", p->zip))
			return FAIL(&x, AR_ETOOBIG, "%s: path too long", p->zip);
	} else if (ar_path(x.root, sizeof x.root, "%s", p->dir)) {
		return FAIL(&x, AR_ETOOBIG, "%s: path too long", p->dir);
	}
	if ((rc = prepare(&x)))
		goto out;
	if ((rc = journal_open(&x)))
		goto out;
	res->resumed = x.done;
	{
		/* messages/ once, not a mkdir per message */
		char path[4300];
		snprintf(path, sizeof path, "%s/messages", x.root);
		if (x.done < x.n && mkdir(path, 0700) && errno != EEXIST) {
			rc = FAIL(&x, AR_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
	}
	memset(&pr, 0, sizeof pr);
	pr.total = x.n;
	for (size_t i = x.done; i < x.n; i++) {
		if ((rc = export_one(&x, x.ids + i * STORE_ID_LEN)))
			goto out;
		pr.done = i + 1;
		pr.bytes = x.bytes;
		if (p->progress && (i % 64 == 63 || i + 1 == x.n))
			p->progress(p->progress_arg, &pr);
	}
	if ((rc = finish(&x)))
		goto out;
	if ((rc = log_export(&x)))
		goto out;
	if ((rc = rm_tree(x.work))) {
		rc = FAIL(&x, rc, "%s: cannot remove", x.work);
		goto out;
	}
	if (p->zip) {
		if ((rc = jobs_zip_write(x.root, p->zip, err, errlen)))
			goto out;
		rm_tree(x.root);
	}
out:
	if (x.jfd > 0)
		close(x.jfd);
	free(x.ids);
	return rc;
}
