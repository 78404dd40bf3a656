/*
 * export_files.c - the file formats of an export: temp-and-rename output
 * files, CSV and Concordance DAT fields, mboxrd, the PEM public key, the
 * attachments (GMime) and the ZIP container (libarchive).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <gmime/gmime.h>
#include <openssl/evp.h>

#include "ar.h"
#include "jobs_priv.h"

int jobs_fail_at(char *err, size_t errlen, int rc, const char *file,
    int line, const char *fmt, ...)
{
	va_list ap;
	const char *base = strrchr(file, '/');
	int n;

	if (!err || !errlen)
		return rc;
	n = snprintf(err, errlen, "%s:%d: ", base ? base + 1 : file, line);
	if (n < 0 || (size_t)n >= errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

int jobs_file_sha256(const char *path, uint8_t out[32], uint64_t *size)
{
	unsigned char buf[64 * 1024];
	uint64_t total = 0;
	EVP_MD_CTX *sha;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return ar_status_from_errno(errno);
	if (!(sha = EVP_MD_CTX_new()) ||
	    EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(sha);
		close(fd);
		return AR_ENOMEM;
	}
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = AR_EIO;
			break;
		}
		EVP_DigestUpdate(sha, buf, (size_t)n);
		total += (uint64_t)n;
	}
	close(fd);
	if (!rc && EVP_DigestFinal_ex(sha, out, NULL) != 1)
		rc = AR_EIO;
	EVP_MD_CTX_free(sha);
	if (!rc && size)
		*size = total;
	return rc;
}

/* --- output files ---------------------------------------------------- */

static int out_open(jobs_out_t *o, const char *path, int direct)
{
	int fd;

	memset(o, 0, sizeof *o);
	o->direct = direct;
	if (ar_path(o->path, sizeof o->path, "%s", path) ||
	    ar_path(o->tmp, sizeof o->tmp, direct ? "%s" : "%s.tmp", path))
		return AR_ETOOBIG;
	/* a temp file left by an interrupted run is replaced */
	fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return ar_status_from_errno(errno);
	if (!(o->f = fdopen(fd, "w")) || !(o->sha = EVP_MD_CTX_new()) ||
	    EVP_DigestInit_ex(o->sha, EVP_sha256(), NULL) != 1) {
		if (o->f)
			fclose(o->f);
		else
			close(fd);
		o->f = NULL;
		EVP_MD_CTX_free(o->sha);
		o->sha = NULL;
		unlink(o->tmp);
		return AR_ENOMEM;
	}
	return 0;
}

int jobs_out_open(jobs_out_t *o, const char *path)
{
	return out_open(o, path, 0);
}

int jobs_out_open_direct(jobs_out_t *o, const char *path)
{
	return out_open(o, path, 1);
}

void jobs_out_write(jobs_out_t *o, const void *buf, size_t len)
{
	if (o->failed || !len)
		return;
	if (fwrite(buf, 1, len, o->f) != len) {
		o->failed = 1;
		return;
	}
	EVP_DigestUpdate(o->sha, buf, len);
	o->size += len;
}

void jobs_out_puts(jobs_out_t *o, const char *s)
{
	jobs_out_write(o, s, strlen(s));
}

int jobs_out_close(jobs_out_t *o, uint8_t sha[32])
{
	uint8_t d[32];
	int bad = o->failed;

	if (fclose(o->f) != 0)
		bad = 1;
	o->f = NULL;
	if (bad || (!o->direct && rename(o->tmp, o->path) != 0)) {
		int e = errno;
		unlink(o->tmp);
		EVP_MD_CTX_free(o->sha);
		o->sha = NULL;
		return e == ENOSPC ? AR_ENOSPC : AR_EIO;
	}
	if (EVP_DigestFinal_ex(o->sha, d, NULL) != 1)
		bad = 1;
	EVP_MD_CTX_free(o->sha);
	o->sha = NULL;
	if (bad)
		return AR_EIO;
	if (sha)
		memcpy(sha, d, 32);
	return 0;
}

void jobs_out_abort(jobs_out_t *o)
{
	if (o->f) {
		fclose(o->f);
		o->f = NULL;
		unlink(o->tmp);
	}
	EVP_MD_CTX_free(o->sha);
	o->sha = NULL;
}

/* --- CSV and DAT --------------------------------------------------- */

int jobs_csv_guarded(const char *s)
{
	return s && (*s == '=' || *s == '+' || *s == '-' || *s == '@' ||
	    *s == '\t' || *s == '\r');
}

void jobs_csv_field(jobs_out_t *o, const char *s, int last)
{
	int guard;

	if (!s)
		s = "";
	guard = jobs_csv_guarded(s);
	if (guard || strpbrk(s, ",\"\r\n")) {
		jobs_out_write(o, "\"", 1);
		if (guard)
			jobs_out_write(o, "'", 1);
		for (const char *p = s; *p; p++) {
			if (*p == '"')
				jobs_out_write(o, "\"", 1);
			jobs_out_write(o, p, 1);
		}
		jobs_out_write(o, "\"", 1);
	} else {
		jobs_out_puts(o, s);
	}
	jobs_out_puts(o, last ? "\r\n" : ",");
}

#define DAT_QUOTE "\xc3\xbe"     /* þ U+00FE */
#define DAT_SEP   "\x14"         /* DC4 */

void jobs_dat_field(jobs_out_t *o, const char *s, int last)
{
	jobs_out_puts(o, DAT_QUOTE);
	if (jobs_csv_guarded(s))
		jobs_out_puts(o, "'");
	for (const char *p = s ? s : ""; *p; p++) {
		if (p[0] == '\xc3' && p[1] == '\xbe') {
			/* a þ inside a value would end it: U+FFFD instead */
			jobs_out_puts(o, "\xef\xbf\xbd");
			p++;
		} else if (*p == '\r' || *p == '\n' || *p == '\x14') {
			jobs_out_puts(o, " ");
		} else {
			jobs_out_write(o, p, 1);
		}
	}
	jobs_out_puts(o, DAT_QUOTE);
	jobs_out_puts(o, last ? "\r\n" : DAT_SEP);
}

/* --- mboxrd ------------------------------------------------------------ */

int jobs_mbox_append(jobs_out_t *o, const char *eml, const char *sender,
    int64_t when)
{
	static const char from[] = "From ";
	unsigned char buf[64 * 1024];
	char pend[1100], line[400];
	size_t np = 0;
	int at_start = 1, last = '\n';
	time_t t = (time_t)when;
	struct tm tm;
	ssize_t n;
	int fd;

	gmtime_r(&t, &tm);
	snprintf(line, sizeof line, "From %s ", sender && *sender &&
	    !strpbrk(sender, " \t\r\n") ? sender : "MAILER-DAEMON");
	jobs_out_puts(o, line);
	strftime(line, sizeof line, "%a %b %e %H:%M:%S %Y\n", &tm);
	jobs_out_puts(o, line);
	if ((fd = open(eml, O_RDONLY | O_CLOEXEC)) < 0)
		return ar_status_from_errno(errno);
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return AR_EIO;
		}
		for (ssize_t i = 0; i < n; i++) {
			unsigned char ch = buf[i];
			if (!at_start) {
				/* copy up to the next line end in one go */
				unsigned char *nl = memchr(buf + i, '\n',
				    (size_t)(n - i));
				size_t len = nl ? (size_t)(nl - (buf + i)) + 1
				    : (size_t)(n - i);
				jobs_out_write(o, buf + i, len);
				last = buf[i + (ssize_t)len - 1];
				i += (ssize_t)len - 1;
				if (nl)
					at_start = 1;
				continue;
			}
			/* line start: ">*From " gets one more '>' */
			pend[np++] = (char)ch;
			{
				size_t k = 0;
				while (k < np && pend[k] == '>')
					k++;
				if (np - k <= 5 && !memcmp(pend + k, from,
				    np - k) && np < sizeof pend - 1) {
					if (np - k == 5) {
						jobs_out_write(o, ">", 1);
						jobs_out_write(o, pend, np);
						np = 0;
						at_start = 0;
						last = ' ';
					}
					continue;
				}
			}
			jobs_out_write(o, pend, np);
			last = pend[np - 1];
			at_start = ch == '\n';
			np = 0;
		}
	}
	close(fd);
	if (np) {
		jobs_out_write(o, pend, np);
		last = pend[np - 1];
	}
	if (last != '\n')
		jobs_out_write(o, "\n", 1);
	jobs_out_write(o, "\n", 1);
	return 0;
}

/* --- PEM --------------------------------------------------------------- */

/* DER SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410). */
static const uint8_t ed25519_spki[12] = { 0x30, 0x2a, 0x30, 0x05, 0x06,
    0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00 };

int jobs_pubkey_pem(const uint8_t pk[KEYSVC_PK_LEN], char *out, size_t len)
{
	uint8_t der[sizeof ed25519_spki + KEYSVC_PK_LEN];
	char b64[128];

	memcpy(der, ed25519_spki, sizeof ed25519_spki);
	memcpy(der + sizeof ed25519_spki, pk, KEYSVC_PK_LEN);
	sodium_bin2base64(b64, sizeof b64, der, sizeof der,
	    sodium_base64_VARIANT_ORIGINAL);
	return ar_path(out, len, "-----BEGIN PUBLIC KEY-----\n%s\n"
	    "-----END PUBLIC KEY-----\n", b64);
}

int jobs_pubkey_from_pem(const char *pem, uint8_t pk[KEYSVC_PK_LEN])
{
	static const char begin[] = "-----BEGIN PUBLIC KEY-----";
	uint8_t der[sizeof ed25519_spki + KEYSVC_PK_LEN];
	const char *p = strstr(pem, begin), *e;
	size_t dlen;

	if (!p)
		return AR_EINVAL;
	p += sizeof begin - 1;
	if (!(e = strstr(p, "-----END PUBLIC KEY-----")))
		return AR_EINVAL;
	if (sodium_base642bin(der, sizeof der, p, (size_t)(e - p), " \r\n\t",
	    &dlen, NULL, sodium_base64_VARIANT_ORIGINAL) || dlen != sizeof der
	    || memcmp(der, ed25519_spki, sizeof ed25519_spki))
		return AR_EINVAL;
	memcpy(pk, der + sizeof ed25519_spki, KEYSVC_PK_LEN);
	return 0;
}

/* --- attachments (GMime) --------------------------------------------- */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_start(void) { g_mime_init(); }

struct att_ctx {
	const char *root, *reldir;
	json_t *arr;
	int n, rc, dir_made;
	char *err;
	size_t errlen;
};

int jobs_char_hidden(uint32_t c)
{
	switch (g_unichar_type((gunichar)c)) {
	case G_UNICODE_FORMAT:               /* bidi controls, zero widths */
	case G_UNICODE_CONTROL:
	case G_UNICODE_LINE_SEPARATOR:
	case G_UNICODE_PARAGRAPH_SEPARATOR:
		return 1;
	default:
		return 0;
	}
}

/* A file name safe in every tool: letters, digits, . - _ and other
 * visible UTF-8 characters (invisible and direction-changing ones become
 * '_'; a name that is not valid UTF-8 keeps ASCII only); at most 100
 * bytes, cut on a character boundary; never "." or "..". */
static void safe_name(const char *in, char *out, size_t len)
{
	int utf8 = g_utf8_validate(in, -1, NULL);
	const char *p = in;
	size_t o = 0;

	while (*p && o + 1 < len && o < 100) {
		unsigned char ch = (unsigned char)*p;
		if (ch >= 0x80 && utf8) {
			const char *next = g_utf8_next_char(p);
			size_t n = (size_t)(next - p);
			if (jobs_char_hidden(g_utf8_get_char(p))) {
				out[o++] = '_';
			} else {
				if (o + n >= len || o + n > 100)
					break;      /* cut before this character */
				memcpy(out + o, p, n);
				o += n;
			}
			p = next;
			continue;
		}
		out[o++] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		    ch == '_' ? (char)ch : '_';
		p++;
	}
	out[o] = 0;
	if (!o || !strcmp(out, ".") || !strcmp(out, ".."))
		ar_strlcpy(out, "attachment", len);
}

static void att_one(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	struct att_ctx *a = data;
	const char *fname = NULL;
	char name[160], rel[512], path[4096], hex[65];
	GMimeStream *out;
	uint8_t sha[32];
	uint64_t size;
	json_t *j;
	int fd, is_msg = GMIME_IS_MESSAGE_PART(part);

	(void)parent;
	if (a->rc)
		return;
	if (GMIME_IS_PART(part)) {
		fname = g_mime_part_get_filename(GMIME_PART(part));
		if (!fname && !g_mime_part_is_attachment(GMIME_PART(part)))
			return;
	} else if (!is_msg) {
		return;
	}
	a->n++;
	safe_name(fname ? fname : is_msg ? "message.eml" : "attachment.bin",
	    name, sizeof name);
	if (ar_path(rel, sizeof rel, "%s/%02d-%s", a->reldir, a->n, name) ||
	    ar_path(path, sizeof path, "%s/%s", a->root, rel)) {
		a->rc = jobs_fail(a->err, a->errlen, AR_ETOOBIG, "%s: path too "
		    "long", a->reldir);
		return;
	}
	if (!a->dir_made) {
		char d[4096];
		snprintf(d, sizeof d, "%s/%s", a->root, a->reldir);
		if (ar_mkdirs(d, 0700)) {
			a->rc = jobs_fail(a->err, a->errlen, AR_EIO, "%s: %s",
			    d, strerror(errno));
			return;
		}
		a->dir_made = 1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		a->rc = jobs_fail(a->err, a->errlen, ar_status_from_errno(errno),
		    "%s: %s", path, strerror(errno));
		return;
	}
	out = g_mime_stream_fs_new(fd);   /* owns fd */
	if (is_msg) {
		GMimeMessage *m = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(part));
		if (m)
			g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL,
			    out);
	} else {
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(part));
		if (w)
			g_mime_data_wrapper_write_to_stream(w, out);
	}
	if (g_mime_stream_flush(out) != 0) {
		g_object_unref(out);
		a->rc = jobs_fail(a->err, a->errlen, AR_EIO, "%s: writing "
		    "failed", path);
		return;
	}
	g_object_unref(out);
	if ((a->rc = jobs_file_sha256(path, sha, &size))) {
		jobs_fail(a->err, a->errlen, a->rc, "%s: cannot read back",
		    path);
		return;
	}
	j = json_object();
	json_object_set_new(j, "name", json_string(fname && g_utf8_validate(
	    fname, -1, NULL) ? fname : name));
	json_object_set_new(j, "path", json_string(rel));
	json_object_set_new(j, "sha256", json_string(ar_hex(sha, 32, hex)));
	json_object_set_new(j, "size", json_integer((json_int_t)size));
	json_array_append_new(a->arr, j);
}

/* Case-insensitive: does [p, p+n) contain needle (lower case)? */
static int has_ci(const unsigned char *p, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++) {
		size_t j = 0;
		while (j < k && g_ascii_tolower(p[i + j]) == needle[j])
			j++;
		if (j == k)
			return 1;
	}
	return 0;
}

int jobs_may_have_attachments(const unsigned char *hdr, size_t len)
{
	size_t i = 0;

	/* field by field (a field runs on over folded lines) up to the
	 * empty line that ends the header */
	while (i < len) {
		size_t f = i, e;
		if (hdr[i] == '\n' || (hdr[i] == '\r' && i + 1 < len &&
		    hdr[i + 1] == '\n'))
			return 0;    /* end of header: nothing that could be */
		for (e = i; e < len; e++)
			if (hdr[e] == '\n' && (e + 1 >= len || (hdr[e + 1] !=
			    ' ' && hdr[e + 1] != '\t')))
				break;
		if (e >= len)
			return 1;    /* the header goes on past what we have */
		i = e + 1;
		/* anything GMime could turn into an attachment is named in
		 * the top-level header: a multipart or message/ type (parts
		 * within), a Content-Disposition, a name= or filename= */
		if (e - f >= 20 && has_ci(hdr + f, 20, "content-disposition"))
			return 1;
		if (e - f >= 13 && has_ci(hdr + f, 13, "content-type:") &&
		    (has_ci(hdr + f, e - f, "multipart") || has_ci(hdr + f,
		    e - f, "message") || has_ci(hdr + f, e - f, "name")))
			return 1;
		if (e - f >= 12 && has_ci(hdr + f, 12, "content-type") &&
		    !has_ci(hdr + f, 13, "content-type:"))
			return 1;    /* "Content-Type :" or the like: parse */
	}
	return 1;
}

int jobs_attachments_extract(const char *eml, const char *root,
    const char *reldir, json_t *arr, char *err, size_t errlen)
{
	struct att_ctx a = { root, reldir, arr, 0, 0, 0, err, errlen };
	GMimeStream *in;
	GMimeParser *parser;
	GMimeMessage *msg;
	int fd;

	pthread_once(&gmime_once, gmime_start);
	if ((fd = open(eml, O_RDONLY | O_CLOEXEC)) < 0)
		return jobs_fail(err, errlen, ar_status_from_errno(errno),
		    "%s: %s", eml, strerror(errno));
	in = g_mime_stream_fs_new(fd);           /* owns fd */
	parser = g_mime_parser_new_with_stream(in);
	g_object_unref(in);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	if (!msg)
		return 0;     /* not MIME at all: the .eml is the export */
	g_mime_message_foreach(msg, att_one, &a);
	g_object_unref(msg);
	return a.rc;
}

/* --- ZIP (libarchive) -------------------------------------------------- */

static int zip_add(struct archive *ar, const char *root, const char *rel,
    char *err, size_t errlen)
{
	char path[4096];
	unsigned char buf[64 * 1024];
	struct archive_entry *e;
	struct stat sb;
	ssize_t n;
	int fd, rc = 0;

	if (ar_path(path, sizeof path, "%s/%s", root, rel))
		return jobs_fail(err, errlen, AR_ETOOBIG, "%s: path too long",
		    rel);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb)) {
		rc = ar_status_from_errno(errno);
		if (fd >= 0)
			close(fd);
		return jobs_fail(err, errlen, rc, "%s: %s", path,
		    strerror(errno));
	}
	e = archive_entry_new();
	archive_entry_update_pathname_utf8(e, rel);
	archive_entry_set_size(e, sb.st_size);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_mtime(e, sb.st_mtime, 0);
	if (archive_write_header(ar, e) != ARCHIVE_OK)
		rc = jobs_fail(err, errlen, AR_EIO, "zip %s: %s", rel,
		    archive_error_string(ar));
	while (!rc && (n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = jobs_fail(err, errlen, AR_EIO, "%s: %s", path,
			    strerror(errno));
			break;
		}
		if (archive_write_data(ar, buf, (size_t)n) != n)
			rc = jobs_fail(err, errlen, AR_EIO, "zip %s: %s", rel,
			    archive_error_string(ar));
	}
	archive_entry_free(e);
	close(fd);
	return rc;
}

int jobs_zip_write(const char *root, const char *zip, char *err,
    size_t errlen)
{
	char mpath[4096], tmp[4200];
	struct archive *ar;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *m;
	int rc = 0;

	snprintf(mpath, sizeof mpath, "%s/manifest.sha256", root);
	if (ar_path(tmp, sizeof tmp, "%s.tmp", zip))
		return jobs_fail(err, errlen, AR_ETOOBIG, "%s: path too long",
		    zip);
	if (!(m = fopen(mpath, "r")))
		return jobs_fail(err, errlen, AR_EIO, "%s: %s", mpath,
		    strerror(errno));
	ar = archive_write_new();
	archive_write_set_format_zip(ar);
	/* names are UTF-8 whatever the locale (the EFS flag is set) */
	archive_write_set_options(ar, "zip:hdrcharset=UTF-8");
	/* deflate at level 1: mail text still shrinks to about a third, at a
	 * fraction of the default level's CPU (bench/export.sh) */
	archive_write_set_options(ar, "zip:compression-level=1");
	if (archive_write_open_filename(ar, tmp) != ARCHIVE_OK) {
		rc = jobs_fail(err, errlen, AR_EIO, "%s: %s", tmp,
		    archive_error_string(ar));
		archive_write_free(ar);
		fclose(m);
		return rc;
	}
	while (!rc && (n = getline(&line, &cap, m)) > 0) {
		if (n < 67 || line[n - 1] != '\n')
			continue;
		line[n - 1] = 0;
		rc = zip_add(ar, root, line + 66, err, errlen);
	}
	free(line);
	fclose(m);
	if (!rc)
		rc = zip_add(ar, root, "manifest.sha256", err, errlen);
	if (!rc)
		rc = zip_add(ar, root, "manifest.sha256.sig", err, errlen);
	snprintf(mpath, sizeof mpath, "%s/manifest.sha256.sha256", root);
	if (!rc && access(mpath, F_OK) == 0)
		rc = zip_add(ar, root, "manifest.sha256.sha256", err, errlen);
	if (archive_write_close(ar) != ARCHIVE_OK && !rc)
		rc = jobs_fail(err, errlen, AR_EIO, "%s: %s", tmp,
		    archive_error_string(ar));
	archive_write_free(ar);
	if (!rc && rename(tmp, zip) != 0)
		rc = jobs_fail(err, errlen, AR_EIO, "%s: %s", zip,
		    strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}
