/*
 * sources.c - find the messages in files given to archivectl import:
 * single-message files, mbox files and maildirs.
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

static int emit(ingest_source_cb cb, void *arg, const char *path,
    uint64_t start, uint64_t end)
{
	ingest_source_t src = { path, start, end - start, INGEST_MBOX };
	return end > start ? cb(arg, &src) : 0;
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

	if (!f) {
		close(fd);
		return AR_ENOMEM;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		int blank = (n == 1 && line[0] == '\n') ||
		    (n == 2 && line[0] == '\r' && line[1] == '\n');
		if (prev_blank && n >= 5 && !memcmp(line, "From ", 5)) {
			if (have && (rc = emit(cb, arg, path, start,
			    pos - blank_len)))
				break;
			start = pos + (uint64_t)n;
			have = 1;
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
		rc = emit(cb, arg, path, start, pos - blank_len);
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
	unsigned char head[5];
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ingest_source_t src = { path, 0, 0, INGEST_EML };

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
	if (!ends_with(path, ".eml") && got == 5 &&
	    !memcmp(head, "From ", 5)) {
		lseek(fd, 0, SEEK_SET);
		return scan_mbox(fd, path, cb, arg, err, errlen);
	}
	close(fd);
	if (st.st_size == 0)
		return 0;           /* an empty file holds no message */
	src.length = (uint64_t)st.st_size;
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
