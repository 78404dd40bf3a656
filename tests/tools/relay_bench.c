/*
 * relay_bench - the relay's delivery rate (gateway/relay.h) to a server,
 * for bench/relay.sh and by hand: THREADS threads each deliver their
 * share of COUNT messages of SIZE bytes (CRLF lines, some dot-stuffed)
 * to one recipient through gw_relay_send, sessions kept and reused.
 *
 *   relay_bench -r ROUTE [-n COUNT] [-t THREADS] [-s SIZE] [-p PER_HOST]
 *               [-T none|opportunistic|verify] [-C CAFILE] [-R RCPTS]
 *
 * Prints one line: messages=N threads=T size=S seconds=X rate=Y msg/s
 * connects=C reused=U failed=F.  Exit status 1 if any message failed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ar.h"
#include "gateway/relay.h"

static struct {
	gw_relay_t *r;
	store_domain_t d;
	char *msg;
	size_t len;
	int rcpts;
	atomic_int next, count, failed;
} g;

struct mem {
	size_t pos;
};

static int mem_rewind(void *a)
{
	((struct mem *)a)->pos = 0;
	return 0;
}

static int mem_read(void *a, void *buf, size_t len, size_t *got)
{
	struct mem *m = a;

	if (len > g.len - m->pos)
		len = g.len - m->pos;
	memcpy(buf, g.msg + m->pos, len);
	m->pos += len;
	*got = len;
	return 0;
}

static void *worker(void *arg)
{
	char addrs[16][300];
	const char *rc[16];

	for (int i = 0; i < g.rcpts; i++) {
		snprintf(addrs[i], sizeof addrs[i], "user%d@%s", i, g.d.name);
		rc[i] = addrs[i];
	}
	while (atomic_fetch_add(&g.next, 1) < g.count) {
		struct mem m = { 0 };
		gw_source_t src = { mem_rewind, mem_read, &m, g.len };
		gw_rcpt_result_t res[16];
		int ok = gw_relay_send(g.r, &g.d, "bench@sender.example", rc,
		    (size_t)g.rcpts, NULL, &src, res) == 0;
		for (int i = 0; i < g.rcpts; i++)
			ok &= res[i].code / 100 == 2;
		if (!ok) {
			if (atomic_fetch_add(&g.failed, 1) == 0)
				fprintf(stderr, "relay_bench: first failure: %d %s\n",
				    res[0].code, res[0].text);
		}
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: relay_bench -r ROUTE [-n COUNT] [-t THREADS] "
	    "[-s SIZE] [-p PER_HOST] [-T none|opportunistic|verify] "
	    "[-C CAFILE] [-R RCPTS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	gw_relay_opts_t o;
	gw_relay_stats_t st;
	int threads = 1, opt, per_host = 0;
	size_t size = 10240, n = 0, line = 0;
	pthread_t *th;
	int64_t t0, t1;

	ar_process_init("relay_bench");
	ar_log_set_level(AR_LOG_WARN);
	g.count = 1000;
	g.rcpts = 1;
	ar_strlcpy(g.d.name, "bench.example", sizeof g.d.name);
	g.d.tls = STORE_TLS_NONE;
	while ((opt = getopt(argc, argv, "r:n:t:s:p:T:C:R:")) != -1) {
		switch (opt) {
		case 'r':
			ar_strlcpy(g.d.routes[0], optarg, sizeof g.d.routes[0]);
			g.d.n_routes = 1;
			break;
		case 'n': g.count = atoi(optarg); break;
		case 't': threads = atoi(optarg); break;
		case 's': size = (size_t)atol(optarg); break;
		case 'p': per_host = atoi(optarg); break;
		case 'T':
			g.d.tls = !strcmp(optarg, "verify") ? STORE_TLS_VERIFY :
			    !strcmp(optarg, "opportunistic") ?
			    STORE_TLS_OPPORTUNISTIC : STORE_TLS_NONE;
			break;
		case 'C': ar_strlcpy(g.d.tls_ca, optarg, sizeof g.d.tls_ca);
			break;
		case 'R': g.rcpts = atoi(optarg); break;
		default: usage();
		}
	}
	if (!g.d.n_routes || threads < 1 || g.count < 1 || g.rcpts < 1 ||
	    g.rcpts > 16)
		usage();
	/* the message: a header, then lines to size, every 7th with a dot */
	g.msg = malloc(size + 512);
	n = (size_t)sprintf(g.msg, "From: bench@sender.example\r\nTo: "
	    "user0@%s\r\nSubject: relay bench\r\nMessage-ID: "
	    "<relay-bench@sender.example>\r\n\r\n", g.d.name);
	for (; n < size; line++)
		n += (size_t)sprintf(g.msg + n, line % 7 == 3 ?
		    ".a line with a leading dot, %zu\r\n" :
		    "line %zu of the benchmark message body text\r\n", line);
	g.len = n;

	memset(&o, 0, sizeof o);
	o.hostname = "relay-bench.archived.example";
	o.max_per_host = per_host ? per_host : threads;
	o.idle_keep_ms = 60000;
	if (gw_relay_new(&g.r, &o)) {
		fprintf(stderr, "relay_bench: gw_relay_new failed\n");
		return 1;
	}
	th = calloc((size_t)threads, sizeof *th);
	t0 = ar_mono_us();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t1 = ar_mono_us();
	gw_relay_stats(g.r, &st);
	printf("messages=%d threads=%d size=%zu seconds=%.3f rate=%.0f msg/s "
	    "connects=%llu reused=%llu failed=%d\n", g.count, threads, g.len,
	    (double)(t1 - t0) / 1e6, g.count / ((double)(t1 - t0) / 1e6),
	    (unsigned long long)st.connects, (unsigned long long)st.reused,
	    atomic_load(&g.failed));
	gw_relay_free(g.r);
	free(th);
	free(g.msg);
	return atomic_load(&g.failed) ? 1 : 0;
}
