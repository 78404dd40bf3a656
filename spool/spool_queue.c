/*
 * spool_queue.c - the spool's in-memory queue of entries waiting to be
 * drained (spool.h "Draining"; spool_int.h).
 *
 * Filled once when the spool is opened (every complete entry, oldest
 * first) and then by each commit (spool_put_finish_many), so claiming a
 * batch never walks the spool: a backlog of a million entries costs the
 * same per claim as a backlog of ten.  Two structures under one mutex:
 *   ready    a ring of entries in arrival order (commit order; ids start
 *            with the arrival time, so this is oldest first);
 *   delayed  a binary min-heap, by due time, of entries whose last drain
 *            attempt failed.
 * A claimed entry is in neither until it is done (removed) or retried.
 * Memory: one spool_ref_t (64 bytes) per entry waiting; the ring shrinks
 * as it drains.
 */
#include "spool/spool_int.h"

#include <stdlib.h>
#include <string.h>

#include "ar.h"

#define RING_MIN 1024

struct delayed {
	int64_t due;
	spool_ref_t r;
};

void sq_init(spool_queue_t *q)
{
	memset(q, 0, sizeof *q);
	pthread_mutex_init(&q->lock, NULL);
}

void sq_fini(spool_queue_t *q)
{
	free(q->ring);
	free(q->heap);
	pthread_mutex_destroy(&q->lock);
	memset(q, 0, sizeof *q);
}

/* --- the ring (lock held) -------------------------------------------------- */

/* Resize the ring to cap (a power of two >= q->n), oldest first at 0. */
static int ring_resize(spool_queue_t *q, size_t cap)
{
	spool_ref_t *nr = malloc(cap * sizeof *nr);
	size_t first;

	if (!nr)
		return AR_ENOMEM;
	first = q->cap - q->head < q->n ? q->cap - q->head : q->n;
	if (q->n) {
		memcpy(nr, q->ring + q->head, first * sizeof *nr);
		memcpy(nr + first, q->ring, (q->n - first) * sizeof *nr);
	}
	free(q->ring);
	q->ring = nr;
	q->cap = cap;
	q->head = 0;
	return 0;
}

static int ring_push(spool_queue_t *q, const spool_ref_t *r)
{
	int rc;

	if (q->n == q->cap &&
	    (rc = ring_resize(q, q->cap ? q->cap * 2 : RING_MIN)))
		return rc;
	q->ring[(q->head + q->n) & (q->cap - 1)] = *r;
	q->n++;
	return 0;
}

static void ring_pop(spool_queue_t *q, spool_ref_t *out)
{
	*out = q->ring[q->head];
	q->head = (q->head + 1) & (q->cap - 1);
	q->n--;
	/* a drained backlog gives its memory back (failure here is harmless:
	 * the larger ring stays) */
	if (q->cap > RING_MIN && q->n < q->cap / 4)
		(void)ring_resize(q, q->cap / 2);
}

/* --- the heap of delayed entries (lock held) ------------------------------- */

/* a before b: the earlier due, and of equal dues the earlier arrival (ids
 * start with the arrival time in ms): entries waiting for the same thing
 * (a relay domain back up) are claimed again in their order of arrival */
static int heap_before(const struct delayed *a, const struct delayed *b)
{
	if (a->due != b->due)
		return a->due < b->due;
	return memcmp(a->r.id, b->r.id, sizeof a->r.id) < 0;
}

static void heap_swap(struct delayed *a, struct delayed *b)
{
	struct delayed t = *a;
	*a = *b;
	*b = t;
}

static int heap_push(spool_queue_t *q, int64_t due, const spool_ref_t *r)
{
	size_t i;
	int rc;

	if ((rc = ar_grow((void **)&q->heap, &q->hcap, q->hn,
	    sizeof *q->heap)))
		return rc;
	i = q->hn++;
	q->heap[i].due = due;
	q->heap[i].r = *r;
	while (i > 0 && heap_before(&q->heap[i], &q->heap[(i - 1) / 2])) {
		heap_swap(&q->heap[(i - 1) / 2], &q->heap[i]);
		i = (i - 1) / 2;
	}
	return 0;
}

static void heap_pop(spool_queue_t *q, spool_ref_t *out)
{
	size_t i = 0;

	*out = q->heap[0].r;
	q->heap[0] = q->heap[--q->hn];
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < q->hn && heap_before(&q->heap[l], &q->heap[m]))
			m = l;
		if (l + 1 < q->hn && heap_before(&q->heap[l + 1], &q->heap[m]))
			m = l + 1;
		if (m == i)
			break;
		heap_swap(&q->heap[i], &q->heap[m]);
		i = m;
	}
}

/* --- the queue ------------------------------------------------------------- */

int sq_push(spool_queue_t *q, const spool_ref_t *r)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	if ((rc = ring_push(q, r)) == 0)
		q->bytes += r->bytes;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

size_t sq_claim(spool_queue_t *q, int64_t now, spool_ref_t *out, size_t max)
{
	size_t k = 0;

	pthread_mutex_lock(&q->lock);
	/* retries that came due first: they are the older entries */
	while (k < max && q->hn && q->heap[0].due <= now)
		heap_pop(q, &out[k++]);
	while (k < max && q->n)
		ring_pop(q, &out[k++]);
	q->claimed += k;
	pthread_mutex_unlock(&q->lock);
	return k;
}

void sq_done(spool_queue_t *q, const spool_ref_t *r)
{
	pthread_mutex_lock(&q->lock);
	if (q->claimed)
		q->claimed--;
	q->bytes -= r->bytes < q->bytes ? r->bytes : q->bytes;
	pthread_mutex_unlock(&q->lock);
}

int sq_retry(spool_queue_t *q, const spool_ref_t *r, int64_t due)
{
	spool_ref_t x = *r;
	int rc;

	x.failures++;
	pthread_mutex_lock(&q->lock);
	if (q->claimed)
		q->claimed--;
	if ((rc = heap_push(q, due, &x)))      /* out of memory: at the */
		rc = ring_push(q, &x);         /* back of the line instead */
	if (rc)                                /* found again at next open */
		q->bytes -= x.bytes < q->bytes ? x.bytes : q->bytes;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

void sq_info(spool_queue_t *q, int64_t now, int detail,
    spool_queue_info_t *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&q->lock);
	out->ready = q->n;
	out->retrying = q->hn;
	out->claimed = q->claimed;
	out->bytes = q->bytes;
	if (q->n) {
		out->oldest_ready = q->ring[q->head].arrived;
		out->backlog_age = now > out->oldest_ready ?
		    now - out->oldest_ready : 0;
	}
	if (q->hn) {
		out->next_due = q->heap[0].due;
		out->oldest_retrying = q->heap[0].r.arrived;
		for (size_t i = 1; detail && i < q->hn; i++)
			if (q->heap[i].r.arrived < out->oldest_retrying)
				out->oldest_retrying = q->heap[i].r.arrived;
	}
	pthread_mutex_unlock(&q->lock);
}

size_t sq_due_now(spool_queue_t *q, const uint8_t *tenant, const uint8_t *id)
{
	size_t n = 0;

	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < q->hn; i++) {
		spool_ref_t *r = &q->heap[i].r;
		if ((id && memcmp(r->id, id, SPOOL_ID_LEN)) || (tenant &&
		    memcmp(r->tenant, tenant, SPOOL_TENANT_LEN)))
			continue;
		q->heap[i].due = 0;
		n++;
	}
	/* due 0 only ever lowers keys: sift each one up (in index order:
	 * a heap built by insertion, ties by arrival) */
	for (size_t i = 0; i < q->hn; i++) {
		size_t k = i;
		while (k > 0 && heap_before(&q->heap[k],
		    &q->heap[(k - 1) / 2])) {
			heap_swap(&q->heap[(k - 1) / 2], &q->heap[k]);
			k = (k - 1) / 2;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}
