/*
 * stats.c - the gateway's verdict counts per tenant per day (store.h
 * "gateway verdict counts"), for the console's chart, and the relay
 * queue's (queued, delivered, deferred, bounced, DSNs).  A scan worker
 * counts each judged message in memory (judge.c, one call), a relay queue
 * worker each recipient's outcome (queue.c); a relay queue worker adds
 * them to the catalog every few seconds and at stop, in one transaction
 * per tenant and day, so counting costs no catalog write per message.  A
 * crash loses the last seconds' counts (a chart, not a record: the log
 * lines and the archive are the record).
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "gateway/gw_int.h"

struct gw_stat {
	uint8_t tenant[STORE_TENANT_LEN];
	int64_t day;
	uint64_t n[STORE_GWS_COUNT];
	uint64_t r[STORE_RS_COUNT];
};

/* The record of tenant for today, under slock; NULL out of memory. */
static struct gw_stat *stat_of(gateway_t *g, const uint8_t *tenant)
{
	int64_t day = ar_now() / 86400;
	struct gw_stat *s = NULL;

	for (size_t i = 0; i < g->nstats; i++)
		if (g->stats[i].day == day && !memcmp(g->stats[i].tenant,
		    tenant, STORE_TENANT_LEN)) {
			s = &g->stats[i];
			break;
		}
	if (!s && ar_grow((void **)&g->stats, &g->capstats, g->nstats,
	    sizeof *g->stats) == 0) {
		s = &g->stats[g->nstats++];
		memset(s, 0, sizeof *s);
		memcpy(s->tenant, tenant, STORE_TENANT_LEN);
		s->day = day;
	}
	return s;
}

void gw_stats_count(gateway_t *g, const uint8_t tenant[STORE_TENANT_LEN],
    const char *kind, int action, int tempfail)
{
	int k = store_gw_stat_of(kind), a;
	struct gw_stat *s;

	a = tempfail ? STORE_GWS_TEMPFAILED : action == STORE_GW_REJECT ?
	    STORE_GWS_REJECTED : action == STORE_GW_QUARANTINE ?
	    STORE_GWS_QUARANTINED : action == STORE_GW_TAG ? STORE_GWS_TAGGED :
	    STORE_GWS_DELIVERED;
	pthread_mutex_lock(&g->slock);
	if ((s = stat_of(g, tenant))) {
		if (k >= 0 && k < STORE_GWS_DELIVERED)
			s->n[k]++;
		s->n[a]++;
	}
	pthread_mutex_unlock(&g->slock);
}

void gw_stats_relay(gateway_t *g, const uint8_t tenant[STORE_TENANT_LEN],
    int which, uint64_t n)
{
	struct gw_stat *s;

	if (which < 0 || which >= STORE_RS_COUNT || !n)
		return;
	pthread_mutex_lock(&g->slock);
	if ((s = stat_of(g, tenant)))
		s->r[which] += n;
	pthread_mutex_unlock(&g->slock);
}

void gw_stats_flush(gateway_t *g)
{
	struct gw_stat *list;
	size_t n;

	pthread_mutex_lock(&g->slock);
	list = g->stats;
	n = g->nstats;
	g->stats = NULL;
	g->nstats = g->capstats = 0;
	pthread_mutex_unlock(&g->slock);
	for (size_t i = 0; i < n; i++) {
		char hex[2 * STORE_TENANT_LEN + 1];
		if (store_gw_stats_add(g->st, list[i].tenant, list[i].day,
		    list[i].n, list[i].r) == 0)
			continue;
		/* counted again with the next flush */
		ar_log(AR_LOG_WARN, "gateway tenant=%s status=counts_failed "
		    "reason=\"%s\"", ar_hex(list[i].tenant, STORE_TENANT_LEN,
		    hex), store_errmsg(g->st));
		pthread_mutex_lock(&g->slock);
		if (ar_grow((void **)&g->stats, &g->capstats, g->nstats,
		    sizeof *g->stats) == 0)
			g->stats[g->nstats++] = list[i];
		pthread_mutex_unlock(&g->slock);
	}
	free(list);
}
