/*
 * stats.c - the gateway's verdict counts per tenant per day (store.h
 * "gateway verdict counts"), for the console's chart.  A scan worker
 * counts each judged message in memory (judge.c, one call); a relay queue
 * worker adds them to the catalog every few seconds and at stop, in one
 * transaction per tenant and day, so counting costs no catalog write per
 * message.  A crash loses the last seconds' counts (a chart, not a
 * record: the log lines and the archive are the record).
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "gateway/gw_int.h"

struct gw_stat {
	uint8_t tenant[STORE_TENANT_LEN];
	int64_t day;
	uint64_t n[STORE_GWS_COUNT];
};

void gw_stats_count(gateway_t *g, const uint8_t tenant[STORE_TENANT_LEN],
    const char *kind, int action, int tempfail)
{
	int64_t day = ar_now() / 86400;
	int k = store_gw_stat_of(kind), a;
	struct gw_stat *s = NULL;

	a = tempfail ? STORE_GWS_TEMPFAILED : action == STORE_GW_REJECT ?
	    STORE_GWS_REJECTED : action == STORE_GW_QUARANTINE ?
	    STORE_GWS_QUARANTINED : action == STORE_GW_TAG ? STORE_GWS_TAGGED :
	    STORE_GWS_DELIVERED;
	pthread_mutex_lock(&g->slock);
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
	if (s) {
		if (k >= 0 && k < STORE_GWS_DELIVERED)
			s->n[k]++;
		s->n[a]++;
	}
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
		    list[i].n) == 0)
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
