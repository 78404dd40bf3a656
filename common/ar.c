/*
 * ar.c - status codes, logging, clock and file helpers.
 */
#include "ar.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct { int code; const char *text; } status_text[] = {
	{ AR_OK,        "success" },
	{ AR_ENOMEM,    "out of memory" },
	{ AR_EIO,       "I/O error" },
	{ AR_ENOENT,    "not found" },
	{ AR_EEXIST,    "already exists" },
	{ AR_ECORRUPT,  "integrity check failed" },
	{ AR_ETENANT,   "belongs to another tenant" },
	{ AR_EKEY,      "wrong key" },
	{ AR_EKEYSVC,   "key service unavailable" },
	{ AR_ERETAINED, "retain-until date not reached" },
	{ AR_EINVAL,    "invalid argument" },
	{ AR_ETRUNC,    "truncated" },
	{ AR_EREORDER,  "chunks out of order" },
	{ AR_EPROTO,    "malformed protocol message" },
	{ AR_ETOOBIG,   "over the configured limit" },
	{ AR_ENOSPC,    "no space left on device" },
	{ AR_ETIMEOUT,  "timed out" },
	{ AR_EPERM,     "not permitted" },
	{ AR_ESIG,      "signature does not verify" },
	{ AR_ECONFIG,   "bad configuration" },
	{ AR_EHOLD,     "under legal hold" },
	{ AR_EAGAIN,    "temporary failure, try again later" },
	{ AR_ESHREDDED, "tenant keys destroyed" },
	{ AR_ESYNTAX,   "syntax error" },
	{ AR_EVERSION,  "unsupported format version" },
};

const char *ar_strerror(int status)
{
	for (size_t i = 0; i < AR_ARRAY_LEN(status_text); i++)
		if (status_text[i].code == status)
			return status_text[i].text;
	return "unknown error";
}

int ar_status_temporary(int status)
{
	return status == AR_EKEYSVC || status == AR_ENOSPC ||
	    status == AR_ETIMEOUT || status == AR_EAGAIN || status == AR_EIO ||
	    status == AR_ENOMEM;
}

int ar_status_from_errno(int err)
{
	switch (err) {
	case ENOSPC: case EDQUOT: return AR_ENOSPC;
	case ENOENT: return AR_ENOENT;
	case EEXIST: return AR_EEXIST;
	case ENOMEM: return AR_ENOMEM;
	case EACCES: case EPERM: case EROFS: return AR_EPERM;
	case ETIMEDOUT: case EAGAIN: return AR_ETIMEOUT;
	default: return AR_EIO;
	}
}

/* --- logging ----------------------------------------------------------- */

static enum ar_log_level log_level = AR_LOG_INFO;
static const char *log_prog = "archived";

void ar_log_set_level(enum ar_log_level lvl) { log_level = lvl; }
void ar_log_set_prog(const char *prog) { log_prog = prog; }

void ar_vlog(enum ar_log_level lvl, const char *fmt, va_list ap)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	char line[2048], ts[32];
	int n;

	if (lvl < log_level)
		return;
	ar_time_fmt(time(NULL), ts, sizeof ts);
	n = snprintf(line, sizeof line, "%s %s[%d] %s: ", ts, log_prog,
	    (int)getpid(), names[lvl]);
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	vsnprintf(line + n, sizeof line - n, fmt, ap);
	/* one write per line so concurrent threads never interleave */
	n = (int)strlen(line);
	if ((size_t)n < sizeof line - 1) {
		line[n++] = '\n';
	} else {
		line[sizeof line - 2] = '\n';
		n = sizeof line - 1;
	}
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void ar_log(enum ar_log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ar_vlog(lvl, fmt, ap);
	va_end(ap);
}

void ar_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ar_vlog(AR_LOG_ERR, fmt, ap);
	va_end(ap);
	abort();
}

void ar_thread_setup(const char *name, int nice)
{
	pthread_setname_np(pthread_self(), name);
	if (nice > 0 && setpriority(PRIO_PROCESS, (id_t)gettid(), nice) != 0)
		ar_log(AR_LOG_WARN, "thread=%s nice=%d error=\"%s\"", name,
		    nice, strerror(errno));
}

/*
 * glibc gives each thread that meets contention an arena of its own, up
 * to 8 per core, and an arena keeps what its threads freed (up to the
 * trim threshold): archived's 20 threads held 220 MB of anonymous memory
 * after a 100,000-message stream where 4 arenas hold 80 MB, at the same
 * rate (docs/performance.md, "Where the CPU goes").  Two per
 * core, 2 to 16.
 *
 * The trim threshold: free() gives the top of a heap back to the kernel
 * once it passes this.  Per-message buffers must not (an madvise and a
 * TLB shoot-down each: 32% of the store profile, performance.md), but
 * malloc_trim() never shrinks the top of a thread's arena, so what is
 * left above the threshold stays resident for good: at 64 MB, an idle
 * archived kept 65 MB of freed index memory.  8 MB: a message's buffers
 * stay well under it; allocations of 4 MB and more are mmap'd and
 * returned whole.
 */
static int arena_max(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 2 : n > 8 ? 16 : 2 * (int)n;
}

void ar_process_init(const char *prog)
{
	ar_log_set_prog(prog);
	signal(SIGPIPE, SIG_IGN);
	mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
	mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
	mallopt(M_ARENA_MAX, arena_max());
}

/* --- time -------------------------------------------------------------- */

int64_t ar_now(void)
{
	const char *inj = getenv("AR_TEST_NOW");
	int64_t real = (int64_t)time(NULL);
	char buf[32];

	if (inj && inj[0] == '@') {      /* @FILE: the clock is in FILE */
		int fd = open(inj + 1, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			return real;
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		inj = buf;
	}
	if (inj && *inj) {
		char *end;
		long long v = strtoll(inj, &end, 10);
		if (*end == '\0')
			return inj[0] == '+' || inj[0] == '-' ? real + v : v;
	}
	return real;
}

int64_t ar_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *ar_time_fmt(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		ar_strlcpy(buf, "?", len);
	return buf;
}

/* --- bytes and files ------------------------------------------------------ */

char *ar_hex(const void *bin, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = bin;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * len] = '\0';
	return out;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int ar_unhex(const char *hex, void *bin, size_t len)
{
	unsigned char *b = bin;
	if (strlen(hex) != 2 * len)
		return AR_EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return AR_EINVAL;
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int ar_write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == ENOSPC || errno == EDQUOT ? AR_ENOSPC
			    : AR_EIO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ar_read_full(int fd, void *buf, size_t len, size_t *got)
{
	unsigned char *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (got)
				*got = done;
			return AR_EIO;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	if (got)
		*got = done;
	return done == len ? 0 : AR_ETRUNC;
}

int ar_grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap <= n)
		ncap = n + 1;
	if (ncap > SIZE_MAX / size)
		return AR_ENOMEM;
	if (!(p = realloc(*arr, ncap * size)))
		return AR_ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

size_t ar_grow_cap(size_t cap, size_t need, size_t max)
{
	size_t ncap = cap < 16384 ? 16384 : cap;

	while (ncap < need && ncap <= SIZE_MAX / 2)
		ncap *= 2;
	return ncap > max ? max : ncap;
}

int ar_wiped_move(unsigned char **buf, size_t *cap, size_t len,
    size_t newcap)
{
	unsigned char *nb = malloc(newcap ? newcap : 1);

	if (!nb)
		return AR_ENOMEM;
	if (len)
		memcpy(nb, *buf, len);
	if (*buf) {
		explicit_bzero(*buf, *cap);
		free(*buf);
	}
	*buf = nb;
	*cap = newcap;
	return 0;
}

int ar_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0)
		return ar_status_from_errno(errno);
	if (fsync(fd) < 0)
		rc = ar_status_from_errno(errno);
	close(fd);
	return rc;
}

int ar_mkdirs(const char *path, unsigned mode)
{
	char buf[4096];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof buf)
		return AR_EINVAL;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return ar_status_from_errno(errno);
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

int ar_file_write_atomic(const char *path, const void *buf, size_t len,
    unsigned mode)
{
	char tmp[4096], dir[4096];
	const char *slash;
	int fd, rc;

	if ((rc = ar_path(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid())))
		return rc;
	slash = strrchr(path, '/');
	if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else
		ar_strlcpy(dir, ".", sizeof dir);
	if (slash == path)
		ar_strlcpy(dir, "/", sizeof dir);

	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return ar_status_from_errno(errno);
	rc = ar_write_full(fd, buf, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = ar_status_from_errno(errno);
	if (close(fd) < 0 && rc == 0)
		rc = ar_status_from_errno(errno);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = ar_status_from_errno(errno);
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	return ar_fsync_dir(dir);
}

int ar_file_read(const char *path, size_t max, unsigned char **out,
    size_t *outlen)
{
	struct stat st;
	unsigned char *buf;
	int fd, rc;

	*out = NULL;
	*outlen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ar_status_from_errno(errno);
	if (fstat(fd, &st) < 0) {
		rc = ar_status_from_errno(errno);
		close(fd);
		return rc;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		return AR_ETOOBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return AR_ENOMEM;
	}
	rc = ar_read_full(fd, buf, (size_t)st.st_size, NULL);
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[st.st_size] = '\0';
	*out = buf;
	*outlen = (size_t)st.st_size;
	return 0;
}

int ar_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? AR_ETOOBIG : 0;
}

void ar_strlcpy(char *dst, const char *src, size_t dstlen)
{
	size_t n = strlen(src);
	if (dstlen == 0)
		return;
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}
