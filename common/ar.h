/*
 * ar.h - the one status type, logging and small utilities shared by every
 * module of archived.
 *
 * Status convention (whole project): 0 is success, negative values are the
 * named codes below.  ar_strerror() turns a code into text.  Handles keep
 * their own last error message (see each module's *_errmsg()).
 */
#ifndef AR_H
#define AR_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

enum ar_status {
	AR_OK        =   0,
	AR_ENOMEM    =  -1,  /* out of memory */
	AR_EIO       =  -2,  /* I/O error (see errno / errmsg) */
	AR_ENOENT    =  -3,  /* no such object, tenant, key ... */
	AR_EEXIST    =  -4,  /* already exists (write-once refused) */
	AR_ECORRUPT  =  -5,  /* integrity check failed (tag, hash, format) */
	AR_ETENANT   =  -6,  /* object belongs to another tenant */
	AR_EKEY      =  -7,  /* wrong key */
	AR_EKEYSVC   =  -8,  /* key service unavailable (temporary) */
	AR_ERETAINED =  -9,  /* retain-until date not reached */
	AR_EINVAL    = -10,  /* invalid argument or input */
	AR_ETRUNC    = -11,  /* object or stream truncated */
	AR_EREORDER  = -12,  /* sealed chunks out of order */
	AR_EPROTO    = -13,  /* malformed protocol message */
	AR_ETOOBIG   = -14,  /* over a configured limit */
	AR_ENOSPC    = -15,  /* disk full (temporary) */
	AR_ETIMEOUT  = -16,  /* timed out (temporary) */
	AR_EPERM     = -17,  /* not allowed */
	AR_ESIG      = -18,  /* signature does not verify */
	AR_ECONFIG   = -19,  /* bad configuration */
	AR_EHOLD     = -20,  /* under legal hold */
	AR_EAGAIN    = -21,  /* temporary failure, retry later */
	AR_ESHREDDED = -22,  /* tenant keys destroyed */
	AR_ESYNTAX   = -23,  /* syntax error in a query or command */
	AR_EVERSION  = -24,  /* unsupported format version */
};

/* Static text for a status code; never NULL. */
const char *ar_strerror(int status);

/* True for codes that a caller should retry later (SMTP 4xx). */
int ar_status_temporary(int status);

/* Map an errno value to a status code (ENOSPC -> AR_ENOSPC ...). */
int ar_status_from_errno(int err);

/* --- logging: key=value lines on stderr, one per event --------------- */

enum ar_log_level { AR_LOG_DEBUG, AR_LOG_INFO, AR_LOG_WARN, AR_LOG_ERR };

void ar_log_set_level(enum ar_log_level lvl);
void ar_log_set_prog(const char *prog);
void ar_log(enum ar_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ar_vlog(enum ar_log_level lvl, const char *fmt, va_list ap);

/* Name the calling thread (at most 15 characters shown by ps/top) and,
 * when nice > 0, lower its priority to that nice value (on Linux a nice
 * value is per thread; threads it starts inherit it).  A failure to lower
 * it is logged, not fatal. */
void ar_thread_setup(const char *name, int nice);

/* Internal inconsistency: log and abort. */
void ar_panic(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/*
 * Process set-up every program of the project calls first: SIGPIPE
 * ignored (a closed socket is an error code, not a death), malloc told
 * not to hand freed memory back after every large free (per-message
 * buffers otherwise cost an madvise and a TLB shoot-down each time), and
 * its arenas bounded to two per core (each keeps what its threads freed).
 */
void ar_process_init(const char *prog);

/* --- time -------------------------------------------------------------- */

/*
 * Wall clock in seconds since the epoch.  Tests inject a clock with the
 * environment variable AR_TEST_NOW (seconds since the epoch, optionally
 * "+N" to add N seconds to the real clock; "@FILE": the same, read from
 * FILE at each call, so that a test moves a running daemon's clock);
 * nothing else changes it.
 */
int64_t ar_now(void);
/* Monotonic clock in microseconds, for durations. */
int64_t ar_mono_us(void);
/* Format t (UTC) as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= 21 bytes). */
char *ar_time_fmt(int64_t t, char *buf, size_t len);

/* --- bytes and files ---------------------------------------------------- */

/* Lower-case hex of len bytes into out (2*len+1 bytes).  Returns out. */
char *ar_hex(const void *bin, size_t len, char *out);
/* Parse exactly 2*len hex digits.  0 or AR_EINVAL. */
int ar_unhex(const char *hex, void *bin, size_t len);

/* read()/write() the whole buffer, retrying on EINTR and short counts.
 * Return 0 or AR_EIO/AR_ENOSPC (errno kept). ar_read_full returns AR_ETRUNC
 * on early EOF and stores the count read in *got when got != NULL. */
int ar_write_full(int fd, const void *buf, size_t len);
int ar_read_full(int fd, void *buf, size_t len, size_t *got);

/*
 * Make room in a growable array: when element n does not fit in *cap
 * elements of size bytes, double the allocation (16 at first).  *arr may
 * be NULL with *cap 0.  0 or AR_ENOMEM (the array is left as it was).
 */
int ar_grow(void **arr, size_t *cap, size_t n, size_t size);

/*
 * Byte buffers that hold secrets (plaintext mail, sealed chunks): the
 * capacity for need bytes, doubling cap from 16 KiB, at most max; and the
 * move of the first len bytes to a new allocation of newcap bytes, the old
 * one wiped and freed (realloc would leave its bytes in freed memory).
 * ar_wiped_move: 0 or AR_ENOMEM (the buffer is left as it was).
 */
size_t ar_grow_cap(size_t cap, size_t need, size_t max);
int ar_wiped_move(unsigned char **buf, size_t *cap, size_t len,
    size_t newcap);

/* fsync a directory by path. */
int ar_fsync_dir(const char *dir);

/* mkdir -p with the given mode for the created parts. */
int ar_mkdirs(const char *path, unsigned mode);

/*
 * Write a small file durably: temp (O_EXCL, mode) -> write -> fsync ->
 * close -> rename -> fsync dir.  Replaces an existing file.
 */
int ar_file_write_atomic(const char *path, const void *buf, size_t len,
    unsigned mode);

/* Read a whole small file (at most max bytes) into a malloc'd buffer the
 * caller frees.  AR_ETOOBIG when larger than max. */
int ar_file_read(const char *path, size_t max, unsigned char **out,
    size_t *outlen);

/* snprintf that reports truncation as AR_ETOOBIG. */
int ar_path(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Copy at most dstlen-1 bytes and NUL-terminate. */
void ar_strlcpy(char *dst, const char *src, size_t dstlen);

#define AR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Big-endian integer packing used by every on-disk and wire format. */
static inline void ar_put_u16(unsigned char *p, uint16_t v)
{ p[0] = v >> 8; p[1] = v; }
static inline void ar_put_u32(unsigned char *p, uint32_t v)
{ p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static inline void ar_put_u64(unsigned char *p, uint64_t v)
{ ar_put_u32(p, (uint32_t)(v >> 32)); ar_put_u32(p + 4, (uint32_t)v); }
static inline uint16_t ar_get_u16(const unsigned char *p)
{ return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t ar_get_u32(const unsigned char *p)
{ return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	 (uint32_t)p[2] << 8 | p[3]; }
static inline uint64_t ar_get_u64(const unsigned char *p)
{ return (uint64_t)ar_get_u32(p) << 32 | ar_get_u32(p + 4); }

#endif /* AR_H */
