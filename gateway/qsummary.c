/*
 * qsummary.c - the relay queue as an operator sees it (gateway.h
 * "gateway_queue_summary"): per recipient domain, how many recipients wait
 * (pending, deferred), how many of the messages still queued are final
 * for it (delivered, bounced, quarantined), the oldest message, and the
 * last error of a deferred recipient.  Read from each entry's state
 * record; archivectl relay queue (a read-only spool) and the console
 * (archived's own) share it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ar.h"
#include "gateway/gateway.h"

struct sum_ctx {
	spool_t *rq;
	gateway_queue_summary_t *s;
	size_t cap;
	gateway_queue_entry_cb cb;
	void *arg;
	int rc;
};

static gateway_queue_domain_t *dom_of(struct sum_ctx *q,
    const uint8_t *tenant, const char *name)
{
	gateway_queue_summary_t *s = q->s;

	for (size_t i = 0; i < s->n; i++)
		if (!strcasecmp(s->domains[i].name, name) &&
		    !memcmp(s->domains[i].tenant, tenant, STORE_TENANT_LEN))
			return &s->domains[i];
	if (ar_grow((void **)&s->domains, &q->cap, s->n, sizeof *s->domains))
		return NULL;
	memset(&s->domains[s->n], 0, sizeof s->domains[s->n]);
	memcpy(s->domains[s->n].tenant, tenant, STORE_TENANT_LEN);
	ar_strlcpy(s->domains[s->n].name, name, sizeof s->domains[s->n].name);
	return &s->domains[s->n++];
}

static int sum_cb(void *arg, const spool_entry_t *e)
{
	struct sum_ctx *q = arg;
	json_t *st, *r;
	char *text = NULL;
	size_t i;
	int rc;

	q->s->messages++;
	if (spool_state_get(q->rq, e->tenant, e->id, &text) ||
	    !(st = json_loads(text, 0, NULL))) {
		q->s->unreadable++;
		free(text);
		return 0;
	}
	if (q->cb && (rc = q->cb(q->arg, e, text))) {
		free(text);
		json_decref(st);
		return rc;
	}
	free(text);
	json_array_foreach(json_object_get(st, "rcpts"), i, r) {
		const char *a = json_string_value(json_object_get(r, "addr"));
		const char *s = json_string_value(json_object_get(r, "state"));
		const char *at = a ? strrchr(a, '@') : NULL;
		gateway_queue_domain_t *d;
		int64_t last = json_integer_value(json_object_get(r, "last"));
		int64_t next = json_integer_value(json_object_get(r, "next"));

		if (!s)
			continue;
		if (!(d = dom_of(q, e->tenant, at ? at + 1 : "?"))) {
			q->rc = AR_ENOMEM;
			break;
		}
		if (!d->oldest || e->arrived < d->oldest)
			d->oldest = e->arrived;
		if (!strcmp(s, "pending")) {
			d->pending++;
		} else if (!strcmp(s, "deferred")) {
			d->deferred++;
			if (next && (!d->next_attempt || next < d->next_attempt))
				d->next_attempt = next;
		} else if (!strcmp(s, "bounced")) {
			d->bounced++;
		} else if (!strcmp(s, "quarantined")) {
			d->quarantined++;
		} else if (!strcmp(s, "delivered")) {
			d->delivered++;
		}
		if (!strcmp(s, "deferred") && last >= d->last_error_time) {
			const char *rep = json_string_value(json_object_get(r,
			    "reply"));
			d->last_error_time = last;
			ar_strlcpy(d->last_error, rep ? rep : "",
			    sizeof d->last_error);
		}
	}
	json_decref(st);
	return q->rc;
}

static int by_name(const void *a, const void *b)
{
	const gateway_queue_domain_t *x = a, *y = b;
	int c = strcasecmp(x->name, y->name);

	return c ? c : memcmp(x->tenant, y->tenant, STORE_TENANT_LEN);
}

int gateway_queue_summary(spool_t *rq, const uint8_t *tenant,
    gateway_queue_entry_cb cb, void *arg, gateway_queue_summary_t *out)
{
	struct sum_ctx q;
	int rc;

	memset(out, 0, sizeof *out);
	memset(&q, 0, sizeof q);
	q.rq = rq;
	q.s = out;
	q.cb = cb;
	q.arg = arg;
	if ((rc = spool_walk(rq, tenant, 0, sum_cb, &q))) {
		gateway_queue_summary_clear(out);
		return rc;
	}
	if (out->n)
		qsort(out->domains, out->n, sizeof *out->domains, by_name);
	return 0;
}

void gateway_queue_summary_clear(gateway_queue_summary_t *s)
{
	if (!s)
		return;
	free(s->domains);
	memset(s, 0, sizeof *s);
}
