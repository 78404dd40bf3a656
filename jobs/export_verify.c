/*
 * export_verify.c - check an export directory with nothing but its own
 * files: the Ed25519 signature, every file's SHA-256, nothing missing and
 * nothing added.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ar.h"
#include "jobs_priv.h"

struct listed {
	char **paths;
	size_t n, cap;
};

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file under root not in the sorted list goes to cb. */
static uint64_t unlisted(const char *root, const char *rel,
    const struct listed *l, jobs_verify_cb cb, void *arg)
{
	char path[4300], sub[4300];
	struct dirent *e;
	struct stat sb;
	uint64_t bad = 0;
	DIR *d;

	snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
	if (!(d = opendir(path)))
		return 1;
	while ((e = readdir(d))) {
		const char *key;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (ar_path(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "",
		    e->d_name) || ar_path(path, sizeof path, "%s/%s", root,
		    sub) || lstat(path, &sb))
			continue;
		if (S_ISDIR(sb.st_mode)) {
			bad += unlisted(root, sub, l, cb, arg);
			continue;
		}
		if (!*rel && (!strcmp(sub, "manifest.sha256") ||
		    !strcmp(sub, "manifest.sha256.sig") ||
		    !strcmp(sub, "manifest.sha256.sha256")))
			continue;
		key = sub;
		if (!bsearch(&key, l->paths, l->n, sizeof *l->paths,
		    path_cmp)) {
			cb(arg, sub, "file not listed in manifest.sha256");
			bad++;
		}
	}
	closedir(d);
	return bad;
}

static void nop_cb(void *arg, const char *path, const char *what)
{
	(void)arg;
	(void)path;
	(void)what;
}

/* Absolute, or with a ".." component: would leave the export. */
static int bad_path(const char *p)
{
	size_t n = strlen(p);

	return *p == '/' || !strcmp(p, "..") || !strncmp(p, "../", 3) ||
	    strstr(p, "/../") || (n >= 3 && !strcmp(p + n - 3, "/.."));
}

int jobs_export_verify(const char *dir, jobs_verify_cb cb, void *arg,
    uint64_t *files, uint8_t pk_out[KEYSVC_PK_LEN], char *err,
    size_t errlen)
{
	char path[4300], signed_path[4300];
	unsigned char *pem = NULL, *sig = NULL, *msg = NULL;
	size_t plen, slen, mlen;
	uint8_t pk[KEYSVC_PK_LEN];
	struct listed l = { NULL, 0, 0 };
	uint64_t bad = 0, nfiles = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *m;
	int rc;

	if (files)
		*files = 0;
	if (!cb)
		cb = nop_cb;
	snprintf(path, sizeof path, "%s/export-pubkey.pem", dir);
	if ((rc = ar_file_read(path, 4096, &pem, &plen)))
		return jobs_fail(err, errlen, rc, "%s: %s", path,
		    ar_strerror(rc));
	{
		char *s = strndup((const char *)pem, plen);
		rc = s ? jobs_pubkey_from_pem(s, pk) : AR_ENOMEM;
		free(s);
		free(pem);
	}
	if (rc)
		return jobs_fail(err, errlen, rc, "%s: not an Ed25519 public "
		    "key", path);
	if (pk_out)
		memcpy(pk_out, pk, KEYSVC_PK_LEN);

	/* the signature: over the manifest, or over its digest file */
	snprintf(signed_path, sizeof signed_path, "%s/manifest.sha256.sha256",
	    dir);
	if (access(signed_path, F_OK) != 0)
		snprintf(signed_path, sizeof signed_path, "%s/manifest.sha256",
		    dir);
	snprintf(path, sizeof path, "%s/manifest.sha256.sig", dir);
	if ((rc = ar_file_read(path, 4096, &sig, &slen)))
		return jobs_fail(err, errlen, rc, "%s: %s", path,
		    ar_strerror(rc));
	if ((rc = ar_file_read(signed_path, KEYSVC_SIGN_MAX, &msg, &mlen))) {
		free(sig);
		return jobs_fail(err, errlen, rc, "%s: %s", signed_path,
		    ar_strerror(rc));
	}
	rc = slen == KEYSVC_SIG_LEN ? keysvc_verify(pk, msg, mlen, sig) :
	    AR_ESIG;
	free(sig);
	if (rc) {
		free(msg);
		cb(arg, strrchr(signed_path, '/') + 1, "signature does not "
		    "verify with export-pubkey.pem");
		return AR_ESIG;
	}
	snprintf(path, sizeof path, "%s/manifest.sha256", dir);
	if (strcmp(signed_path, path)) {
		/* "hex  manifest.sha256\n" */
		uint8_t d[32];
		char hex[65];
		if ((rc = jobs_file_sha256(path, d, NULL)) || mlen < 64 ||
		    memcmp(msg, ar_hex(d, 32, hex), 64)) {
			free(msg);
			cb(arg, "manifest.sha256", "differs from the signed "
			    "manifest.sha256.sha256");
			return AR_ESIG;
		}
	}
	free(msg);

	if (!(m = fopen(path, "r")))
		return jobs_fail(err, errlen, AR_EIO, "%s: %s", path,
		    strerror(errno));
	while ((n = getline(&line, &cap, m)) > 0) {
		char full[4300], hex[65];
		uint8_t want[32], got[32];
		if (n >= 68) {
			memcpy(hex, line, 64);
			hex[64] = 0;
		}
		if (n < 68 || line[n - 1] != '\n' || line[64] != ' ' ||
		    line[65] != ' ' || ar_unhex(hex, want, 32)) {
			cb(arg, "manifest.sha256", "malformed line");
			bad++;
			continue;
		}
		line[n - 1] = 0;
		if (bad_path(line + 66)) {
			cb(arg, line + 66, "path leaves the export");
			bad++;
			continue;
		}
		nfiles++;
		if (ar_grow((void **)&l.paths, &l.cap, l.n, sizeof *l.paths) ||
		    !(l.paths[l.n] = strdup(line + 66))) {
			rc = AR_ENOMEM;
			break;
		}
		l.n++;
		snprintf(full, sizeof full, "%s/%s", dir, line + 66);
		if (jobs_file_sha256(full, got, NULL)) {
			cb(arg, line + 66, "missing or unreadable");
			bad++;
		} else if (memcmp(got, want, 32)) {
			cb(arg, line + 66, "SHA-256 differs from the manifest");
			bad++;
		}
	}
	free(line);
	fclose(m);
	if (!rc) {
		if (l.n)
			qsort(l.paths, l.n, sizeof *l.paths, path_cmp);
		bad += unlisted(dir, "", &l, cb, arg);
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.paths[i]);
	free(l.paths);
	if (files)
		*files = nfiles;
	if (rc)
		return rc;
	return bad ? AR_ECORRUPT : 0;
}
