/*
 * spool_int.h - private to the spool (spool.c, spool_queue.c): the
 * in-memory queue of entries waiting to be drained.  Every sq_ call takes
 * the queue's own lock.
 */
#ifndef SPOOL_SPOOL_INT_H
#define SPOOL_SPOOL_INT_H

#include <pthread.h>

#include "spool/spool.h"

typedef struct spool_queue {
	pthread_mutex_t lock;
	spool_ref_t *ring;          /* ready, oldest at head */
	size_t head, n, cap;        /* cap: 0 or a power of two */
	struct delayed *heap;       /* retries, earliest due first */
	size_t hn, hcap;
	uint64_t claimed;           /* handed out, not done or retried */
	uint64_t bytes;             /* of every entry not done */
} spool_queue_t;

void sq_init(spool_queue_t *q);
void sq_fini(spool_queue_t *q);
/* A new entry at the back of the line.  0 or AR_ENOMEM. */
int sq_push(spool_queue_t *q, const spool_ref_t *r);
/* Up to max entries: retries due by now, then ready ones, oldest first. */
size_t sq_claim(spool_queue_t *q, int64_t now, spool_ref_t *out, size_t max);
/* A claimed entry is gone (drained). */
void sq_done(spool_queue_t *q, const spool_ref_t *r);
/* A claimed entry waits until due, its failures count one more.  0, or
 * AR_ENOMEM (then it is forgotten until the spool is opened again). */
int sq_retry(spool_queue_t *q, const spool_ref_t *r, int64_t due);
/* Retries due now: every one, or the entry (tenant, id).  How many. */
size_t sq_due_now(spool_queue_t *q, const uint8_t *tenant, const uint8_t *id);
/* Counts; detail: also oldest_retrying (walks the retries). */
void sq_info(spool_queue_t *q, int64_t now, int detail,
    spool_queue_info_t *out);

#endif
