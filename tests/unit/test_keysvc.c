/*
 * test_keysvc.c - archive-keysvc and its client, against the real daemon.
 */
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "keysvc/keysvc.h"

static const uint8_t T1[KEYSVC_TENANT_LEN] = { 0x11, 0x22, 0x33, 0x44, 1 };
static const uint8_t T2[KEYSVC_TENANT_LEN] = { 0x55, 0x66, 0x77, 0x88, 2 };
static const uint8_t TX[KEYSVC_TENANT_LEN] = { 0xee, 0xee, 0xee, 0xee, 9 };

static char *sock_of(const char *dir)
{
	char *p;
	if (asprintf(&p, "%s/keysvc.sock", dir) < 0)
		exit(2);
	return p;
}

static keysvc_t *handle(const char *dir, int timeout_ms)
{
	char *s = sock_of(dir);
	keysvc_t *ks = NULL;
	if (keysvc_open(&ks, s, timeout_ms) != 0) {
		fprintf(stderr, "keysvc_open failed\n");
		exit(2);
	}
	free(s);
	return ks;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Run archive-keysvc with args (NULL-terminated, after the program name);
 * the passphrase, when given, arrives on fd 3 (add "--passphrase-fd 3"). */
static pid_t spawn(const char *const args[], const char *pass)
{
	const char *build = getenv("AR_BUILD_DIR");
	char bin[4096];
	const char *argv[16];
	int pfd[2] = { -1, -1 }, n = 0;
	pid_t pid;

	snprintf(bin, sizeof bin, "%s/keysvc/archive-keysvc",
	    build ? build : ".");
	argv[n++] = bin;
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pass && pipe(pfd) < 0)
		exit(2);
	pid = fork();
	if (pid < 0)
		exit(2);
	if (pid == 0) {
		if (pass) {
			close(pfd[1]);
			if (dup2(pfd[0], 3) < 0)
				_exit(126);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	if (pass) {
		close(pfd[0]);
		(void)!write(pfd[1], pass, strlen(pass));
		(void)!write(pfd[1], "\n", 1);
		close(pfd[1]);
	}
	return pid;
}

/* Wait until pid answers a ping on dir's socket (1) or exits (0,
 * *status set).  Up to 120 s on the clock. */
static int wait_ready(pid_t pid, const char *dir, int *status)
{
	for (int64_t end = ar_mono_us() + 120 * 1000000LL;
	    ar_mono_us() < end;) {
		keysvc_t *ks;
		int rc;
		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		ks = handle(dir, 200);
		rc = keysvc_ping(ks);
		keysvc_close(ks);
		if (rc == 0)
			return 1;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return 0;
}

static int run_wait(const char *const args[], const char *pass)
{
	int status;
	pid_t pid = spawn(args, pass);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* --- raw socket ------------------------------------------------------- */

static int raw_connect(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 3, 0 };
	char *s = sock_of(dir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", s);
	free(s);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static int raw_send(int fd, const void *buf, size_t len)
{
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Read one response frame; its status, or 1 on EOF/timeout. */
static int raw_status(int fd)
{
	unsigned char h[4], b[256];
	size_t got;
	uint32_t len;
	if (ar_read_full(fd, h, 4, &got) != 0)
		return 1;
	len = ar_get_u32(h);
	if (len < 4 || len > sizeof b || ar_read_full(fd, b, len, &got) != 0)
		return 1;
	return (int)(int32_t)ar_get_u32(b);
}

/* Send a frame: body given, length prefix computed. */
static int raw_frame(int fd, const void *body, size_t len)
{
	unsigned char h[4];
	ar_put_u32(h, (uint32_t)len);
	if (raw_send(fd, h, 4) < 0)
		return -1;
	return len ? raw_send(fd, body, len) : 0;
}

/* The service closed the connection (a reset counts: it closed with our
 * unread request in its queue). */
static int raw_eof(int fd)
{
	char c;
	ssize_t r = recv(fd, &c, 1, 0);
	return r == 0 || (r < 0 && errno == ECONNRESET);
}

static int file_has(const char *path, const uint8_t *needle, size_t n)
{
	unsigned char *buf;
	size_t len;
	int found;
	if (ar_file_read(path, 1 << 20, &buf, &len) != 0)
		return 0;
	found = memmem(buf, len, needle, n) != NULL;
	free(buf);
	return found;
}

/* Count files under dir (recursively, except skip) containing needle. */
static int tree_has(const char *dir, const char *skip, const uint8_t *needle,
    size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int count = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char p[4096];
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			count += tree_has(p, skip, needle, n);
		else if (S_ISREG(st.st_mode) && strcmp(p, skip) != 0)
			count += file_has(p, needle, n);
	}
	closedir(d);
	return count;
}

/* --- tests ------------------------------------------------------------- */

static void test_keys(void)
{
	char *dir = tl_tmpdir("keysvc");
	char path[4096], hex[40];
	uint8_t k1[32], k1m[32], k2[32], k[32], pk[32], pk2[32];
	uint8_t sig[64], kek[32];
	uint32_t v = 0;
	int destroyed = -1;
	unsigned char *buf;
	size_t len;
	struct stat st;
	keysvc_t *ks, *ks2;
	pid_t pid = tl_keysvc_start(dir);
	static unsigned char big[KEYSVC_SIGN_MAX + 1];
	const char msg[] = "checkpoint seq=42 head=abcd";

	ks = handle(dir, 2000);
	CHECK_RC(keysvc_ping(ks), 0);
	CHECK_RC(keysvc_tenant_create(ks, T1), 0);
	CHECK_RC(keysvc_tenant_create(ks, T1), AR_EEXIST);
	CHECK_RC(keysvc_tenant_create(ks, T2), 0);
	CHECK_RC(keysvc_tenant_info(ks, T1, &v, &destroyed), 0);
	CHECK(v == 1 && destroyed == 0);
	CHECK_RC(keysvc_derive(ks, T1, 1, "object", k1), 0);
	CHECK_RC(keysvc_derive(ks, T1, 1, "meta", k1m), 0);
	CHECK(memcmp(k1, k1m, 32) != 0);
	CHECK_RC(keysvc_derive(ks, T2, 1, "object", k), 0);
	CHECK(memcmp(k1, k, 32) != 0);
	CHECK_RC(keysvc_derive(ks, T1, 1, "object", k), 0);   /* cached */
	CHECK(memcmp(k1, k, 32) == 0);
	ks2 = handle(dir, 2000);                                /* uncached */
	CHECK_RC(keysvc_derive(ks2, T1, 1, "object", k), 0);
	CHECK(memcmp(k1, k, 32) == 0);

	CHECK_RC(keysvc_tenant_rotate(ks, T1, &v), 0);
	CHECK(v == 2);
	CHECK_RC(keysvc_tenant_info(ks, T1, &v, &destroyed), 0);
	CHECK(v == 2 && destroyed == 0);
	CHECK_RC(keysvc_derive(ks, T1, 2, "object", k2), 0);
	CHECK(memcmp(k1, k2, 32) != 0);
	keysvc_close(ks2);
	ks2 = handle(dir, 2000);
	CHECK_RC(keysvc_derive(ks2, T1, 1, "object", k), 0);
	CHECK(memcmp(k1, k, 32) == 0);

	CHECK_RC(keysvc_derive(ks, T1, 3, "object", k), AR_ENOENT);
	CHECK_RC(keysvc_derive(ks, T1, 0, "object", k), AR_ENOENT);
	CHECK_RC(keysvc_derive(ks, TX, 1, "object", k), AR_ENOENT);
	CHECK_RC(keysvc_tenant_info(ks, TX, &v, &destroyed), AR_ENOENT);
	CHECK_RC(keysvc_tenant_rotate(ks, TX, &v), AR_ENOENT);
	CHECK_RC(keysvc_tenant_destroy(ks, TX), AR_ENOENT);
	CHECK_RC(keysvc_derive(ks, T1, 1, "", k), AR_EINVAL);
	CHECK_RC(keysvc_derive(ks, T1, 1, "two words", k), AR_EINVAL);
	CHECK_RC(keysvc_derive(ks, T1, 1,
	    "0123456789abcdef0123456789abcdefX", k), AR_EINVAL);
	CHECK_RC(keysvc_derive(ks, T1, 1,
	    "0123456789abcdef0123456789abcdef", k), 0);

	/* signing */
	CHECK_RC(keysvc_public_key(ks, pk), 0);
	CHECK_RC(keysvc_sign(ks, msg, sizeof msg, sig), 0);
	CHECK_RC(keysvc_verify(pk, msg, sizeof msg, sig), 0);
	{
		char bad[sizeof msg];
		memcpy(bad, msg, sizeof msg);
		bad[3] ^= 1;
		CHECK_RC(keysvc_verify(pk, bad, sizeof bad, sig), AR_ESIG);
		sig[0] ^= 1;
		CHECK_RC(keysvc_verify(pk, msg, sizeof msg, sig), AR_ESIG);
	}
	CHECK_RC(keysvc_sign(ks, "", 0, sig), 0);
	CHECK_RC(keysvc_verify(pk, "", 0, sig), 0);
	memset(big, 'x', sizeof big);
	CHECK_RC(keysvc_sign(ks, big, KEYSVC_SIGN_MAX, sig), 0);
	CHECK_RC(keysvc_verify(pk, big, KEYSVC_SIGN_MAX, sig), 0);
	CHECK_RC(keysvc_sign(ks, big, KEYSVC_SIGN_MAX + 1, sig), AR_ETOOBIG);
	CHECK_RC(keysvc_ping(ks), 0);

	/* files and modes */
	snprintf(path, sizeof path, "%s/keysvc.sock", dir);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    (st.st_mode & 0777) == 0600);
	snprintf(path, sizeof path, "%s/kek", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(ar_file_read(path, 4096, &buf, &len) == 0 && len == 38 &&
	    buf[5] == 0);
	if (len == 38)
		memcpy(kek, buf + 6, 32);
	free(buf);
	snprintf(path, sizeof path, "%s/tenants/%s/v2.key", dir,
	    ar_hex(T1, 16, hex));
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	snprintf(path, sizeof path, "%s/kek", dir);
	CHECK(tree_has(dir, path, k1, 32) == 0);
	CHECK(tree_has(dir, path, k1m, 32) == 0);
	CHECK(tree_has(dir, path, k2, 32) == 0);
	CHECK(tree_has(dir, path, kek, 32) == 0);

	/* restart: same keys, same public key */
	tl_keysvc_stop(pid);
	snprintf(path, sizeof path, "%s/keysvc.sock", dir);
	CHECK(access(path, F_OK) != 0);          /* socket removed */
	pid = tl_keysvc_start(dir);
	keysvc_close(ks2);
	ks2 = handle(dir, 2000);
	CHECK_RC(keysvc_derive(ks2, T1, 1, "object", k), 0);
	CHECK(memcmp(k1, k, 32) == 0);
	CHECK_RC(keysvc_derive(ks2, T1, 2, "object", k), 0);
	CHECK(memcmp(k2, k, 32) == 0);
	CHECK_RC(keysvc_public_key(ks2, pk2), 0);
	CHECK(memcmp(pk, pk2, 32) == 0);
	CHECK_RC(keysvc_tenant_info(ks2, T1, &v, &destroyed), 0);
	CHECK(v == 2);

	/* destroy */
	CHECK_RC(keysvc_derive(ks, T1, 1, "object", k), 0);  /* in cache */
	CHECK_RC(keysvc_tenant_destroy(ks, T1), 0);
	CHECK_RC(keysvc_derive(ks, T1, 1, "object", k), AR_ESHREDDED);
	CHECK_RC(keysvc_derive(ks2, T1, 2, "meta", k), AR_ESHREDDED);
	CHECK_RC(keysvc_tenant_info(ks, T1, &v, &destroyed), 0);
	CHECK(destroyed == 1 && v == 2);
	CHECK_RC(keysvc_tenant_create(ks, T1), AR_ESHREDDED);
	CHECK_RC(keysvc_tenant_rotate(ks, T1, &v), AR_ESHREDDED);
	CHECK_RC(keysvc_tenant_destroy(ks, T1), 0);
	snprintf(path, sizeof path, "%s/tenants/%s/v1.key", dir,
	    ar_hex(T1, 16, hex));
	CHECK(access(path, F_OK) != 0);
	snprintf(path, sizeof path, "%s/tenants/%s/destroyed", dir, hex);
	CHECK(access(path, F_OK) == 0);
	CHECK_RC(keysvc_derive(ks, T2, 1, "object", k), 0);   /* untouched */
	tl_keysvc_stop(pid);
	pid = tl_keysvc_start(dir);
	CHECK_RC(keysvc_derive(ks, T1, 1, "object", k), AR_ESHREDDED);
	CHECK_RC(keysvc_public_key(ks, pk2), 0);
	CHECK(memcmp(pk, pk2, 32) == 0);

	keysvc_close(ks);
	keysvc_close(ks2);
	tl_keysvc_stop(pid);
	tl_rmrf(dir);
	free(dir);
}

static int refused_by_uid(const char *dir)
{
	char *s = sock_of(dir);
	pid_t pid;
	int status;
	chmod(dir, 0711);       /* let the other uid reach the socket */
	chmod(s, 0666);
	pid = fork();
	if (pid == 0) {
		static const unsigned char ping[] = { 0, 0, 0, 2, 1, 1 };
		int fd;
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		fd = raw_connect(dir);
		if (fd < 0)
			_exit(4);
		(void)raw_send(fd, ping, sizeof ping);
		/* refused: AR_EPERM then EOF, never a pong */
		_exit(raw_status(fd) == AR_EPERM && raw_eof(fd) ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	chmod(s, 0600);
	chmod(dir, 0700);
	free(s);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 9;
}

static void test_malformed(void)
{
	char *dir = tl_tmpdir("keysvc-bad");
	pid_t pid = tl_keysvc_start(dir);
	keysvc_t *ks = handle(dir, 2000);
	unsigned char b[64];
	int fd, fds[50];

	/* oversized length: refused, connection closed, body never read */
	fd = raw_connect(dir);
	CHECK(raw_send(fd, "\xff\xff\xff\xff", 4) == 0);
	CHECK_RC(raw_status(fd), AR_ETOOBIG);
	CHECK(raw_eof(fd));
	close(fd);
	fd = raw_connect(dir);
	ar_put_u32(b, KEYSVC_SIGN_MAX + 65);
	CHECK(raw_send(fd, b, 4) == 0);
	CHECK_RC(raw_status(fd), AR_ETOOBIG);
	close(fd);
	CHECK_RC(keysvc_ping(ks), 0);

	/* garbage (an HTTP request) reads as a huge length */
	fd = raw_connect(dir);
	CHECK(raw_send(fd, "GET / HTTP/1.1\r\n\r\n", 18) == 0);
	CHECK_RC(raw_status(fd), AR_ETOOBIG);
	close(fd);

	/* well framed but wrong: refused, the connection stays usable */
	fd = raw_connect(dir);
	CHECK(raw_frame(fd, "\x01\x7f", 2) == 0);             /* unknown op */
	CHECK_RC(raw_status(fd), AR_EPROTO);
	CHECK(raw_frame(fd, "\x01\x00", 2) == 0);             /* op 0 */
	CHECK_RC(raw_status(fd), AR_EPROTO);
	CHECK(raw_frame(fd, "\x01\x01", 2) == 0);             /* ping */
	CHECK_RC(raw_status(fd), 0);
	CHECK(raw_frame(fd, "\x01\x01X", 3) == 0);            /* trailing */
	CHECK_RC(raw_status(fd), AR_EPROTO);
	CHECK(raw_frame(fd, "\x09\x01", 2) == 0);             /* version */
	CHECK_RC(raw_status(fd), AR_EVERSION);
	CHECK(raw_frame(fd, "", 0) == 0);                     /* empty */
	CHECK_RC(raw_status(fd), AR_EPROTO);
	CHECK(raw_frame(fd, "\x01", 1) == 0);                 /* no op */
	CHECK_RC(raw_status(fd), AR_EPROTO);
	CHECK(raw_frame(fd, "\x01\x03" "short", 7) == 0);     /* create */
	CHECK_RC(raw_status(fd), AR_EPROTO);
	memset(b, 0, sizeof b);
	b[0] = 1; b[1] = 7; b[2 + 16 + 3] = 1; b[2 + 20] = 6;  /* derive */
	memcpy(b + 23, "object", 6);
	CHECK(raw_frame(fd, b, 29) == 0);       /* well formed, no tenant */
	CHECK_RC(raw_status(fd), AR_ENOENT);
	CHECK(raw_frame(fd, b, 28) == 0);       /* ctx shorter than its n */
	CHECK_RC(raw_status(fd), AR_EPROTO);
	CHECK(raw_frame(fd, b, 30) == 0);       /* trailing byte */
	CHECK_RC(raw_status(fd), AR_EPROTO);
	b[23] = '\n';
	CHECK(raw_frame(fd, b, 29) == 0);       /* control char in ctx */
	CHECK_RC(raw_status(fd), AR_EINVAL);
	memset(b, 0, sizeof b);
	b[0] = 1; b[1] = 8; b[5] = 10;                         /* sign n=10 */
	CHECK(raw_frame(fd, b, 6 + 4) == 0);    /* only 4 message bytes */
	CHECK_RC(raw_status(fd), AR_EPROTO);
	CHECK(raw_frame(fd, "\x01\x01", 2) == 0);
	CHECK_RC(raw_status(fd), 0);
	close(fd);

	/* truncated frame: the length promises more than arrives */
	fd = raw_connect(dir);
	ar_put_u32(b, 100);
	memset(b + 4, 1, 10);
	CHECK(raw_send(fd, b, 14) == 0);
	shutdown(fd, SHUT_WR);
	CHECK_RC(raw_status(fd), AR_ETRUNC);
	CHECK(raw_eof(fd));
	close(fd);
	fd = raw_connect(dir);
	CHECK(raw_send(fd, "\x00\x00", 2) == 0);    /* half a length */
	shutdown(fd, SHUT_WR);
	CHECK_RC(raw_status(fd), AR_ETRUNC);
	close(fd);

	/* a stalled half frame does not block anyone else */
	fd = raw_connect(dir);
	CHECK(raw_send(fd, b, 8) == 0);
	CHECK_RC(keysvc_ping(ks), 0);
	for (int i = 0; i < 50; i++)
		fds[i] = raw_connect(dir);
	CHECK_RC(keysvc_ping(ks), 0);
	for (int i = 0; i < 50; i++) {
		CHECK(fds[i] >= 0 && raw_frame(fds[i], "\x01\x01", 2) == 0);
		CHECK_RC(raw_status(fds[i]), 0);
		close(fds[i]);
	}
	close(fd);

	/* only our uid (or root) may talk to it */
	if (geteuid() == 0)
		CHECK_RC(refused_by_uid(dir), 0);

	CHECK_RC(keysvc_ping(ks), 0);
	CHECK(kill(pid, 0) == 0);
	keysvc_close(ks);
	tl_keysvc_stop(pid);
	tl_rmrf(dir);
	free(dir);
}

static void test_unavailable(void)
{
	char *dir = tl_tmpdir("keysvc-down"), *s;
	pid_t pid = tl_keysvc_start(dir);
	keysvc_t *ks = handle(dir, 500);
	uint8_t k[32];
	int64_t t0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;

	CHECK_RC(keysvc_ping(ks), 0);
	CHECK_RC(keysvc_tenant_create(ks, T1), 0);
	tl_keysvc_stop(pid);
	/* refused at once, not hanging: each call is bounded by the handle's
	 * 500 ms; 10 s tells a hang apart on a loaded machine too */
	t0 = ar_mono_us();
	CHECK_RC(keysvc_ping(ks), AR_EKEYSVC);
	CHECK_RC(keysvc_derive(ks, T1, 1, "object", k), AR_EKEYSVC);
	CHECK(ar_mono_us() - t0 < 10000000);
	CHECK(strncmp(keysvc_errmsg(ks), "key service unavailable: ", 25)
	    == 0);
	pid = tl_keysvc_start(dir);
	CHECK_RC(keysvc_ping(ks), 0);                       /* reconnects */
	CHECK_RC(keysvc_derive(ks, T1, 1, "object", k), 0);
	tl_keysvc_stop(pid);

	/* silent service: accepts (backlog) but never answers */
	s = sock_of(dir);
	unlink(s);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", s);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    listen(lfd, 8) == 0);
	/* the 500 ms timeout is waited for, and then it gives up (10 s: not
	 * hanging, on a loaded machine too) */
	t0 = ar_mono_us();
	CHECK_RC(keysvc_ping(ks), AR_EKEYSVC);
	CHECK(ar_mono_us() - t0 >= 400000 && ar_mono_us() - t0 < 10000000);
	CHECK(strstr(keysvc_errmsg(ks), "timed out") != NULL);
	close(lfd);
	unlink(s);
	free(s);

	keysvc_close(ks);
	CHECK(keysvc_open(&ks, "/nonexistent/keysvc.sock", 300) == 0);
	CHECK_RC(keysvc_ping(ks), AR_EKEYSVC);
	keysvc_close(ks);

	/* a connection the service closed while idle is replaced quietly */
	{
		const char *args[] = { "-d", dir, "--idle-timeout", "1", NULL };
		int status, fd;
		pid = spawn(args, NULL);
		CHECK(wait_ready(pid, dir, &status) == 1);
		ks = handle(dir, 2000);
		CHECK_RC(keysvc_ping(ks), 0);
		fd = raw_connect(dir);
		sleep_ms(1600);
		CHECK(raw_eof(fd));                 /* idle: closed */
		close(fd);
		CHECK_RC(keysvc_ping(ks), 0);
		keysvc_close(ks);
		tl_keysvc_stop(pid);
	}
	tl_rmrf(dir);
	free(dir);
}

static void test_passphrase(void)
{
	char *dir = tl_tmpdir("keysvc-pass"), path[4096];
	const char *init[] = { "init", "-d", dir, "--passphrase-fd", "3",
	    "--pwhash-cost", "interactive", NULL };
	const char *plain[] = { "-d", dir, NULL };
	const char *withpass[] = { "-d", dir, "--passphrase-fd", "3", NULL };
	unsigned char *buf;
	size_t len;
	uint8_t k[32], k2[32];
	keysvc_t *ks;
	struct stat st;
	int status;
	pid_t pid;

	CHECK(run_wait(init, "correct horse battery") == 0);
	CHECK(run_wait(init, "correct horse battery") != 0);  /* exists */
	snprintf(path, sizeof path, "%s/kek", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(ar_file_read(path, 4096, &buf, &len) == 0 && len > 38 &&
	    buf[5] == 1);
	free(buf);

	pid = spawn(plain, NULL);
	CHECK(wait_ready(pid, dir, &status) == 0);            /* refused */
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	pid = spawn(withpass, "wrong horse");
	CHECK(wait_ready(pid, dir, &status) == 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	pid = spawn(withpass, "correct horse battery");
	CHECK(wait_ready(pid, dir, &status) == 1);
	ks = handle(dir, 2000);
	CHECK_RC(keysvc_tenant_create(ks, T1), 0);
	CHECK_RC(keysvc_derive(ks, T1, 1, "index", k), 0);
	keysvc_close(ks);
	tl_keysvc_stop(pid);
	pid = spawn(withpass, "correct horse battery");
	CHECK(wait_ready(pid, dir, &status) == 1);
	ks = handle(dir, 2000);
	CHECK_RC(keysvc_derive(ks, T1, 1, "index", k2), 0);
	CHECK(memcmp(k, k2, 32) == 0);
	keysvc_close(ks);
	tl_keysvc_stop(pid);
	snprintf(path, sizeof path, "%s/kek", dir);
	CHECK(tree_has(dir, path, k, 32) == 0);
	tl_rmrf(dir);
	free(dir);

	/* key files without a kek: never initialise over them */
	dir = tl_tmpdir("keysvc-nokek");
	snprintf(path, sizeof path, "%s/tenants/00", dir);
	CHECK(ar_mkdirs(path, 0700) == 0);
	{
		const char *a[] = { "-d", dir, NULL };
		pid = spawn(a, NULL);
		CHECK(wait_ready(pid, dir, &status) == 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	}
	snprintf(path, sizeof path, "%s/kek", dir);
	CHECK(access(path, F_OK) != 0);
	tl_rmrf(dir);
	free(dir);
}

struct thr_arg {
	keysvc_t *ks;
	uint8_t (*want)[32];
	int id;
	int bad;
};

static void *thr_main(void *p)
{
	struct thr_arg *a = p;
	for (int r = 0; r < 300; r++) {
		int i = (r * 7 + a->id * 13) % 100;
		char ctx[16];
		uint8_t k[32], sig[64];
		snprintf(ctx, sizeof ctx, "c%d", i);
		if (keysvc_derive(a->ks, T1, 1, ctx, k) != 0 ||
		    memcmp(k, a->want[i], 32) != 0)
			a->bad++;
		if (r % 50 == 0 && keysvc_sign(a->ks, ctx, strlen(ctx), sig))
			a->bad++;
	}
	return NULL;
}

static void test_threads(void)
{
	char *dir = tl_tmpdir("keysvc-thr");
	pid_t pid = tl_keysvc_start(dir);
	keysvc_t *ks = handle(dir, 5000), *ref = handle(dir, 5000);
	static uint8_t want[100][32];
	struct thr_arg args[4];
	pthread_t th[4];

	CHECK_RC(keysvc_tenant_create(ks, T1), 0);
	for (int i = 0; i < 100; i++) {
		char ctx[16];
		snprintf(ctx, sizeof ctx, "c%d", i);
		CHECK_RC(keysvc_derive(ref, T1, 1, ctx, want[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thr_arg){ ks, want, i, 0 };
		CHECK(pthread_create(&th[i], NULL, thr_main, &args[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(args[i].bad == 0);
	}
	keysvc_close(ks);
	keysvc_close(ref);
	tl_keysvc_stop(pid);
	tl_rmrf(dir);
	free(dir);
}

/* --- signatures grouped into KSP_SIGN_MANY ---------------------------- */

struct sign_arg {
	keysvc_t *ks;
	const uint8_t *pk;
	int id;
	int bad;
};

static void *sign_main(void *p)
{
	struct sign_arg *a = p;
	for (int r = 0; r < 200; r++) {
		unsigned char msg[400], sig[64];
		size_t len = (size_t)((r * 37 + a->id * 11) % 300);
		for (size_t i = 0; i < len; i++)
			msg[i] = (unsigned char)(a->id * 131 + r + i);
		if (keysvc_sign(a->ks, msg, len, sig) != 0 ||
		    keysvc_verify(a->pk, msg, len, sig) != 0)
			a->bad++;
	}
	return NULL;
}

/* A raw KSP_SIGN_MANY body: k messages "m0", "m1", ... */
static size_t many_body(unsigned char *b, unsigned k)
{
	size_t n = 4;
	b[0] = 1;
	b[1] = 9;                               /* KSP_SIGN_MANY */
	ar_put_u16(b + 2, (uint16_t)k);
	for (unsigned i = 0; i < k; i++) {
		int m = snprintf((char *)b + n + 4, 16, "m%u", i);
		ar_put_u32(b + n, (uint32_t)m);
		n += 4 + (size_t)m;
	}
	return n;
}

static void test_sign_group(void)
{
	char *dir = tl_tmpdir("keysvc-grp");
	pid_t pid = tl_keysvc_start(dir);
	keysvc_t *ks = handle(dir, 5000);
	uint8_t pk[KEYSVC_PK_LEN];
	struct sign_arg args[8];
	pthread_t th[8];
	unsigned char b[2048], h[4], r[4 + 3 * 64];
	size_t n, got;
	int fd;

	CHECK_RC(keysvc_public_key(ks, pk), 0);
	/* eight threads at once: their requests share round trips, and every
	 * caller gets the signature of its own message */
	for (int i = 0; i < 8; i++) {
		args[i] = (struct sign_arg){ ks, pk, i, 0 };
		CHECK(pthread_create(&th[i], NULL, sign_main, &args[i]) == 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK(args[i].bad == 0);
	}

	/* keysvc_sign_many: 150 messages take three requests (at most 64
	 * each); every signature is its own message's, in order */
	{
		enum { K = 150 };
		static unsigned char msgs[K][40], sigs[K * KEYSVC_SIG_LEN];
		static unsigned char big[KEYSVC_SIGN_MAX + 1];
		const void *mp[K];
		size_t ml[K];
		for (size_t i = 0; i < K; i++) {
			ml[i] = (size_t)snprintf((char *)msgs[i],
			    sizeof msgs[i], "message %zu", i);
			mp[i] = msgs[i];
		}
		CHECK_RC(keysvc_sign_many(ks, K, mp, ml, sigs), 0);
		for (size_t i = 0; i < K; i++)
			CHECK(keysvc_verify(pk, msgs[i], ml[i],
			    sigs + i * KEYSVC_SIG_LEN) == 0);
		CHECK(keysvc_verify(pk, msgs[1], ml[1], sigs) != 0);
		/* one message too long: refused before anything is sent */
		memset(sigs, 0, sizeof sigs);
		mp[7] = big;
		ml[7] = sizeof big;
		CHECK_RC(keysvc_sign_many(ks, K, mp, ml, sigs), AR_ETOOBIG);
		{
			unsigned char any = 0;
			for (size_t i = 0; i < sizeof sigs; i++)
				any |= sigs[i];
			CHECK(any == 0);
		}
		CHECK_RC(keysvc_sign_many(ks, 0, mp, ml, sigs), 0);
	}

	/* the wire: three messages, three signatures in order */
	fd = raw_connect(dir);
	n = many_body(b, 3);
	CHECK(raw_frame(fd, b, n) == 0);
	CHECK(ar_read_full(fd, h, 4, &got) == 0 && ar_get_u32(h) == sizeof r);
	CHECK(ar_read_full(fd, r, sizeof r, &got) == 0 &&
	    ar_get_u32(r) == 0);
	for (unsigned i = 0; i < 3; i++) {
		char m[8];
		int ml = snprintf(m, sizeof m, "m%u", i);
		CHECK(keysvc_verify(pk, m, (size_t)ml, r + 4 + i * 64) == 0);
	}
	/* malformed groups are refused and nothing is signed: no message,
	 * too many, a length past the end, a trailing byte */
	n = many_body(b, 0);
	CHECK(raw_frame(fd, b, n) == 0);
	CHECK_RC(raw_status(fd), AR_EPROTO);
	n = many_body(b, 65);
	CHECK(raw_frame(fd, b, n) == 0);
	CHECK_RC(raw_status(fd), AR_EPROTO);
	n = many_body(b, 2);
	ar_put_u32(b + 4 + 6, 1000);            /* second length overruns */
	CHECK(raw_frame(fd, b, n) == 0);
	CHECK_RC(raw_status(fd), AR_EPROTO);
	n = many_body(b, 2);
	b[n++] = 'x';
	CHECK(raw_frame(fd, b, n) == 0);
	CHECK_RC(raw_status(fd), AR_EPROTO);
	CHECK(raw_frame(fd, "\x01\x01", 2) == 0);   /* still usable: ping */
	CHECK_RC(raw_status(fd), 0);
	close(fd);

	keysvc_close(ks);
	tl_keysvc_stop(pid);
	tl_rmrf(dir);
	free(dir);
}

/* keysvc_verify remembers a check that passed (keysvc/verified.c): the
 * same key, message and signature pass again without the curve arithmetic;
 * a failure is never remembered, and another message, signature or key is
 * checked in full. */
static void test_verify_remembered(void)
{
	uint8_t pk[KEYSVC_PK_LEN], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t pk2[KEYSVC_PK_LEN], sk2[crypto_sign_SECRETKEYBYTES];
	uint8_t sig[KEYSVC_SIG_LEN], bad[KEYSVC_SIG_LEN];
	static uint8_t sigs[1000][KEYSVC_SIG_LEN];
	char msg[] = "a manifest", other[] = "a manifesT", m[32];
	uint64_t h0, h;

	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	crypto_sign_detached(sig, NULL, (uint8_t *)msg, sizeof msg, sk);
	h0 = keysvc_verify_hits();
	CHECK_RC(keysvc_verify(pk, msg, sizeof msg, sig), 0);
	CHECK(keysvc_verify_hits() == h0);
	CHECK_RC(keysvc_verify(pk, msg, sizeof msg, sig), 0);
	CHECK(keysvc_verify_hits() == h0 + 1);
	memcpy(bad, sig, sizeof bad);
	bad[10] ^= 1;
	CHECK_RC(keysvc_verify(pk, msg, sizeof msg, bad), AR_ESIG);
	CHECK_RC(keysvc_verify(pk, msg, sizeof msg, bad), AR_ESIG);
	CHECK_RC(keysvc_verify(pk, other, sizeof other, sig), AR_ESIG);
	CHECK_RC(keysvc_verify(pk2, msg, sizeof msg, sig), AR_ESIG);
	CHECK_RC(keysvc_verify(pk, msg, sizeof msg - 1, sig), AR_ESIG);
	CHECK(keysvc_verify_hits() == h0 + 1);
	/* many: each checked once, then (all but the few that share a slot)
	 * remembered */
	for (int i = 0; i < 1000; i++) {
		snprintf(m, sizeof m, "manifest %d", i);
		crypto_sign_detached(sigs[i], NULL, (uint8_t *)m, strlen(m), sk);
		CHECK_RC(keysvc_verify(pk, m, strlen(m), sigs[i]), 0);
	}
	h = keysvc_verify_hits();
	for (int i = 0; i < 1000; i++) {
		snprintf(m, sizeof m, "manifest %d", i);
		CHECK_RC(keysvc_verify(pk, m, strlen(m), sigs[i]), 0);
		sigs[i][0] ^= 1;
		CHECK_RC(keysvc_verify(pk, m, strlen(m), sigs[i]), AR_ESIG);
	}
	CHECK(keysvc_verify_hits() - h >= 800);
	CHECK(keysvc_verify_hits() - h <= 1000);
	sodium_memzero(sk, sizeof sk);
	sodium_memzero(sk2, sizeof sk2);
}

int main(void)
{
	if (sodium_init() < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	test_keys();
	test_malformed();
	test_unavailable();
	test_passphrase();
	test_threads();
	test_sign_group();
	test_verify_remembered();
	return tl_done();
}
