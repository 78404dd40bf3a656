/*
 * testlib.h - the unit tests' small harness: checks that count, and the
 * real archive-keysvc started on a temp directory.
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stdio.h>
#include <sys/types.h>

#include "keysvc/keysvc.h"
#include "store/store.h"

extern int tl_failed, tl_passed;

#define CHECK(cond) do { \
	if (cond) { tl_passed++; } else { tl_failed++; \
	    fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
	    #cond); } } while (0)
#define CHECK_RC(expr, want) do { int rc_ = (expr); \
	if (rc_ == (want)) { tl_passed++; } else { tl_failed++; \
	    fprintf(stderr, "%s:%d: %s returned %d (%s), want %d (%s)\n", \
	    __FILE__, __LINE__, #expr, rc_, ar_strerror(rc_), (want), \
	    ar_strerror(want)); } } while (0)

/* Print "N passed, N failed" and return the exit status. */
int tl_done(void);

/* A valid sealed-object header (store/seal_format.h) for (tenant, id),
 * key version 1, default chunk size, retain-until retain: the
 * SEAL_HEADER_LEN bytes a backend reads before deleting. */
void tl_seal_header(const uint8_t *tenant, const uint8_t *id, int64_t retain,
    unsigned char *out);

/* Put object (tenant, id) of len bytes into a backend in one write and
 * commit it: 0 or the first failure (the put aborted). */
int tl_put_bytes(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, const void *buf, size_t len, int64_t retain);

/* Read object (tenant, id) whole into buf (at most cap bytes): 0, the
 * backend's failure, AR_ETOOBIG or AR_ETRUNC; *len is its size. */
int tl_read_all(store_backend_t *be, const uint8_t *tenant,
    const uint8_t *id, unsigned char *buf, size_t cap, size_t *len);

/* A fresh directory under $TMPDIR (removed by tl_rmrf).  Static buffer
 * per call is malloc'd; caller frees. */
char *tl_tmpdir(const char *tag);
void tl_rmrf(const char *path);
/* Entries of dir but "." names (files, directories, /proc/self/fd's open
 * descriptors); -1 if dir cannot be opened. */
int tl_count_entries(const char *dir);

/*
 * Start the real archive-keysvc (from $AR_BUILD_DIR/keysvc/) with data in
 * dir, wait until it answers a ping (no sleep), return its pid; the socket
 * is dir/keysvc.sock.  Aborts the test on failure.
 */
pid_t tl_keysvc_start(const char *dir);
void tl_keysvc_stop(pid_t pid);   /* SIGTERM and wait */

#endif
