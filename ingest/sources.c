/*
 * sources.c - find the messages in files given to archivectl import:
 * single-message files, mbox files and maildirs, and tell the ones that
 * do not begin with a header block (a .tsv, a README) from mail.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ar.h"
#include "ingest/ingest.h"

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

#define HEAD_PEEK 8192     /* bytes of a message judged for its header */

/*
 * Why buf (the first len bytes of a message; complete: all of it) does not
 * begin with an RFC 5322 header block, or NULL when it does: every line up
 * to the first empty one is a field "Name: value" (name of printable ASCII
 * without ':', white space allowed before the colon as in RFC 5322's
 * obsolete syntax) or the folded continuation of one, and there is at
 * least one field.  An mbox "From " line may come first.  A header longer
 * than len is judged on its complete lines.
 */
static const char *not_a_message(const unsigned char *buf, size_t len,
    int complete)
{
	size_t i = 0, fields = 0, line = 0;

	if (len >= 5 && !memcmp(buf, "From ", 5)) {
		const unsigned char *nl = memchr(buf, '\n', len);
		if (!nl)
			return complete ? "only an mbox \"From \" line" : NULL;
		i = (size_t)(nl - buf) + 1;
	}
	while (i < len) {
		const unsigned char *nl = memchr(buf + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - buf) : len, j = i;
		/* a line cut by the peek is judged on what there is of it */
		int cut = !nl && !complete;
		line++;
		if (e > i && buf[e - 1] == '\r' && !cut)
			e--;
		if (e == i)                     /* the empty line: body next */
			return fields ? NULL : "no header: the first line is empty";
		if (buf[i] == ' ' || buf[i] == '\t') {
			if (!fields)
				return "no header: the first line is indented";
		} else {
			while (j < e && buf[j] > 32 && buf[j] < 127 &&
			    buf[j] != ':')
				j++;
			if (j > i)
				while (j < e && (buf[j] == ' ' || buf[j] == '\t'))
					j++;
			if (cut && j >= e)
				break;          /* cut before its colon */
			if (j == i || j >= e || buf[j] != ':')
				return line == 1 ? "no header: the first line is "
				    "not a \"Name: value\" field" : "no header: "
				    "a line before the first empty one is not a "
				    "\"Name: value\" field";
			fields++;
		}
		if (cut)
			break;
		i = (nl ? (size_t)(nl - buf) : len) + 1;
	}
	return fields ? NULL : "no header: no \"Name: value\" field";
}

static int emit(ingest_source_cb cb, void *arg, const char *path,
    uint64_t start, uint64_t end, const unsigned char *head, size_t nhead)
{
	ingest_source_t src = { path, start, end - start, INGEST_MBOX, NULL };
	if (end <= start)
		return 0;
	if (nhead > end - start)
		nhead = (size_t)(end - start);
	src.problem = not_a_message(head, nhead, end - start <= nhead);
	return cb(arg, &src);
}

/*
 * Split an mbox: a message starts after a "From " line found at the start
 * of the file or right after a blank line; the blank line before the next
 * "From " line (or at the end of the file) is the separator an mbox
 * writer added, not part of the message.
 */
static int scan_mbox(int fd, const char *path, ingest_source_cb cb,
    void *arg, char *err, size_t errlen)
{
	FILE *f = fdopen(fd, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t pos = 0, start = 0, blank_len = 0;
	int prev_blank = 1, have = 0, rc = 0;
	unsigned char head[HEAD_PEEK];     /* the message's first bytes */
	size_t nhead = 0;

	if (!f) {
		close(fd);
		return AR_ENOMEM;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		int blank = (n == 1 && line[0] == '\n') ||
		    (n == 2 && line[0] == '\r' && line[1] == '\n');
		if (prev_blank && n >= 5 && !memcmp(line, "From ", 5)) {
			if (have && (rc = emit(cb, arg, path, start,
			    pos - blank_len, head, nhead)))
				break;
			start = pos + (uint64_t)n;
			have = 1;
			nhead = 0;
		} else if (have && nhead < sizeof head) {
			size_t k = (size_t)n < sizeof head - nhead ? (size_t)n :
			    sizeof head - nhead;
			memcpy(head + nhead, line, k);
			nhead += k;
		}
		prev_blank = blank;
		blank_len = blank ? (uint64_t)n : 0;
		pos += (uint64_t)n;
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = AR_EIO;
	}
	if (rc == 0 && have)
		rc = emit(cb, arg, path, start, pos - blank_len, head, nhead);
	free(line);
	fclose(f);
	return rc;
}

static int walk(const char *path, int depth, ingest_source_cb cb, void *arg,
    char *err, size_t errlen);

static int scan_file(const char *path, ingest_source_cb cb, void *arg,
    char *err, size_t errlen)
{
	struct stat st;
	unsigned char head[HEAD_PEEK];
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ingest_source_t src = { path, 0, 0, INGEST_EML, NULL };

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ar_status_from_errno(errno);
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return AR_EIO;
	}
	ar_read_full(fd, head, sizeof head, &got);
	if (!ends_with(path, ".eml") && got >= 5 &&
	    !memcmp(head, "From ", 5)) {
		lseek(fd, 0, SEEK_SET);
		return scan_mbox(fd, path, cb, arg, err, errlen);
	}
	close(fd);
	if (st.st_size == 0)
		return 0;           /* an empty file holds no message */
	src.length = (uint64_t)st.st_size;
	src.problem = not_a_message(head, got, (uint64_t)got >= src.length);
	return cb(arg, &src);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files and directories below dir, sorted, without dot files. */
static int list_dir(const char *dir, char ***names, size_t *n, char *err,
    size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;

	*names = NULL;
	*n = 0;
	if (!d) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return ar_status_from_errno(errno);
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (ar_grow((void **)names, &cap, *n, sizeof **names)) {
			closedir(d);
			return AR_ENOMEM;
		}
		if (!((*names)[(*n)++] = strdup(de->d_name))) {
			closedir(d);
			return AR_ENOMEM;
		}
	}
	closedir(d);
	qsort(*names, *n, sizeof **names, cmp_names);
	return 0;
}

static int walk_dir(const char *dir, int depth, int maildir,
    ingest_source_cb cb, void *arg, char *err, size_t errlen)
{
	char **names, sub[4096];
	size_t n;
	int rc = list_dir(dir, &names, &n, err, errlen);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (maildir && strcmp(names[i], "cur") && strcmp(names[i], "new"))
			continue;   /* tmp/ and Dovecot files are not mail */
		if (ar_path(sub, sizeof sub, "%s/%s", dir, names[i])) {
			snprintf(err, errlen, "%s/%s: path too long", dir,
			    names[i]);
			rc = AR_ETOOBIG;
			break;
		}
		rc = walk(sub, depth + 1, cb, arg, err, errlen);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int walk(const char *path, int depth, ingest_source_cb cb, void *arg,
    char *err, size_t errlen)
{
	struct stat st;
	char sub[4096];

	if (depth > 32) {
		snprintf(err, errlen, "%s: directories nested too deep", path);
		return AR_ETOOBIG;
	}
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ar_status_from_errno(errno);
	}
	if (S_ISREG(st.st_mode))
		return scan_file(path, cb, arg, err, errlen);
	if (!S_ISDIR(st.st_mode))
		return 0;
	if (ar_path(sub, sizeof sub, "%s/cur", path) == 0 &&
	    stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
		return walk_dir(path, depth, 1, cb, arg, err, errlen);
	if (ar_path(sub, sizeof sub, "%s/new", path) == 0 &&
	    stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
		return walk_dir(path, depth, 1, cb, arg, err, errlen);
	return walk_dir(path, depth, 0, cb, arg, err, errlen);
}

int ingest_sources(const char *path, ingest_source_cb cb, void *arg,
    char *err, size_t errlen)
{
	return walk(path, 0, cb, arg, err, errlen);
}
