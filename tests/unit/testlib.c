/*
 * testlib.c - see testlib.h.
 */
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ar.h"
#include "store/seal_format.h"

int tl_failed, tl_passed;

int tl_done(void)
{
	printf("%d passed, %d failed\n", tl_passed, tl_failed);
	return tl_failed ? 1 : 0;
}

char *tl_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p;
	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/ar-%s-XXXXXX", base, tag) < 0 || !mkdtemp(p)) {
		perror("mkdtemp");
		exit(2);
	}
	return p;
}

void tl_rmrf(const char *path)
{
	char *cmd;
	if (asprintf(&cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'",
	    path, path) < 0)
		return;
	(void)!system(cmd);
	free(cmd);
}

int tl_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

pid_t tl_keysvc_start(const char *dir)
{
	const char *build = getenv("AR_BUILD_DIR");
	char bin[4096], sock[4096];
	pid_t pid;

	if (!build) {
		fprintf(stderr, "AR_BUILD_DIR is not set\n");
		exit(2);
	}
	snprintf(bin, sizeof bin, "%s/keysvc/archive-keysvc", build);
	snprintf(sock, sizeof sock, "%s/keysvc.sock", dir);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		execl(bin, bin, "-d", dir, (char *)NULL);
		perror(bin);
		_exit(127);
	}
	/* until it answers: at most 120 s on the clock (a loaded machine is
	 * slow to start an ASan binary, not wrong) */
	for (int64_t end = ar_mono_us() + 120 * 1000000LL;
	    ar_mono_us() < end;) {
		keysvc_t *ks;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "archive-keysvc exited early\n");
			exit(2);
		}
		if (keysvc_open(&ks, sock, 200) == 0) {
			int rc = keysvc_ping(ks);
			keysvc_close(ks);
			if (rc == 0)
				return pid;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "archive-keysvc did not answer\n");
	kill(pid, SIGKILL);
	exit(2);
}

void tl_keysvc_stop(pid_t pid)
{
	int status;
	kill(pid, SIGTERM);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

int tl_put_bytes(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, const void *buf, size_t len, int64_t retain)
{
	store_put_t *p;
	int rc = store_backend_put_begin(be, tenant, id, &p);
	if (rc)
		return rc;
	if ((rc = store_put_write(p, buf, len))) {
		store_put_abort(p);
		return rc;
	}
	return store_put_commit(p, retain);
}

int tl_read_all(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, unsigned char *buf, size_t cap, size_t *len)
{
	store_get_t *g;
	int rc = store_backend_get_open(be, tenant, id, &g);
	if (rc)
		return rc;
	*len = (size_t)store_get_size(g);
	if (*len > cap) {
		store_get_close(g);
		return AR_ETOOBIG;
	}
	size_t got;
	rc = store_get_pread(g, buf, *len, 0, &got);
	if (rc == 0 && got != *len)
		rc = AR_ETRUNC;
	store_get_close(g);
	return rc;
}

void tl_seal_header(const uint8_t *tenant, const uint8_t *id, int64_t retain,
    unsigned char *out)
{
	seal_header_t h;

	memset(&h, 0, sizeof h);
	h.chunk_size = STORE_CHUNK_DEFAULT;
	memcpy(h.tenant, tenant, STORE_TENANT_LEN);
	memcpy(h.id, id, STORE_ID_LEN);
	h.key_version = 1;
	h.retain_until = retain;
	seal_header_encode(&h, out);
}
