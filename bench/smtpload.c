/*
 * smtpload - SMTP load client for the volume benchmarks: sends messages
 * FIRST .. FIRST+COUNT-1 of the generator (mailgen.h) over SESSIONS
 * sessions (one thread each, a shared counter), and measures.
 *
 *   smtpload --corpus DIR --port P [--host 127.0.0.1] [--sessions 8]
 *            [--count N] [--first F] [--seed S] [--from ADDR] [--to ADDR]...
 *            [--window SEC] [--csv FILE] [--label NAME]
 *            [--resend] [--retry-delay-ms MS] [--acked FILE]
 *            [--max-time SEC] [--timeout SEC] [--progress FILE] [--quiet]
 *            [--spam PERMILLE] [--virus PERMILLE]
 *
 * Each session: connect, EHLO, then per message MAIL FROM, RCPT TO (each
 * --to; default journal@bench.example), DATA, the message, "." and its
 * reply; no pipelining.  The latency of a message is from the end of its
 * data (the "." written) to the reply.  A 4xx or 5xx reply is answered
 * with RSET and the session goes on (a 421 ends it); a connection error
 * (refused, reset, closed, timed out) ends the session, which reconnects
 * with backoff (50 ms doubling to 1 s) while there is work.
 *
 * --resend: a message that got no 250 (4xx, or the connection failed
 * anywhere in its transaction, e.g. the daemon was killed) is sent again
 * later by whichever session is free: at once after a connection error,
 * after MS (default 1000) doubling per attempt (at most 30 s) after a
 * 4xx, and the session that got the 4xx waits MS before its next
 * transaction (as an MTA's queue for a busy destination does, instead of
 * offering every other message at once); a 5xx is final.  The run ends
 * when every message has a 250 or a 5xx, or after --max-time seconds
 * (default: 0, no limit; the messages still without a 250 are counted as
 * "unacked").  Without --resend every message is sent once and its
 * outcome counted.
 *
 * --spam / --virus (bench/gateway.sh): that many messages in a thousand
 * (drawn from seed and index, the same ones for every target) carry the
 * GTUBE line or the EICAR test file at the start of their first text
 * body, so that a filter refuses them (5xx, counted as such, never
 * resent).
 *
 * Prints, every window (default 10 s), a line with the window's 250s and
 * rate and the error counts; at the end the whole run: 250 rate, latency
 * of the 250s (p50, p90, p99, max), counts of 250 / 4xx / 5xx /
 * connection errors, and a last line "smtpload-result key=value ..." for
 * scripts.  --csv FILE: one row per window (window_start_s, window_end_s,
 * acked, rate_per_s, tempfail, permfail, conn_errors, p50_ms, p90_ms,
 * p99_ms, max_ms; latencies of that window's 250s).  --acked FILE: the
 * indices that got a 250, one a line.  --progress FILE: the count of
 * 250s so far, rewritten every 100 ms (tests/soak/crash.sh times its
 * kills by it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ar.h"
#include "mailgen.h"

#define MAX_TO 16
#define CONN_ERR (-1)         /* code of an attempt the connection ended */

struct opts {
	const char *corpus, *host, *from, *to[MAX_TO], *csv, *acked, *label;
	const char *progress;
	int nto, port, sessions, resend, quiet;
	unsigned spam_pm, virus_pm;   /* --spam, --virus: per mille */
	uint64_t count, first, seed;
	double window, max_time, timeout, retry_delay;
};

/* One attempt: when it ended, its latency, its outcome. */
struct rec {
	uint32_t t_ms;                /* since the start of the run */
	uint32_t lat_us;              /* end of data -> reply; 0 if none */
	int16_t code;                 /* reply code, or CONN_ERR */
};

struct retry {
	uint64_t idx;
	int64_t due_us;
	unsigned attempts;
};

struct shared {
	const struct opts *o;
	const mailgen_t *g;
	int64_t t0_us;                /* ar_mono_us at the start */
	pthread_mutex_t lock;
	uint64_t next;                /* next fresh index (offset from first) */
	struct retry *heap;           /* resend queue, min-heap by due_us */
	size_t nheap, capheap;
	unsigned *attempts;           /* per message, for the backoff */
	uint8_t *acked;               /* per message: 1 = got a 250, 2 = 5xx */
	size_t inflight;
	int stop;
	_Atomic uint64_t n250, n4xx, n5xx, nconn, nsent, nconnfail;
	_Atomic int64_t last_ack_us;  /* ar_mono_us of the last 250 */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

struct session {
	struct shared *sh;
	int id;
	int fd;
	char rbuf[8192];
	size_t rlen, rpos;
	struct rec *recs;
	size_t nrecs, caprecs;
	mailgen_buf_t msg, wire;
	double gen_s;
	int oom;
};

static int64_t elapsed_us(const struct shared *sh)
{
	return ar_mono_us() - sh->t0_us;
}

/* --- the resend queue --------------------------------------------------- */

static void heap_push(struct shared *sh, struct retry r)
{
	if (ar_grow((void **)&sh->heap, &sh->capheap, sh->nheap,
	    sizeof *sh->heap)) {
		fprintf(stderr, "smtpload: out of memory\n");
		exit(1);
	}
	size_t k = sh->nheap++;
	while (k && sh->heap[(k - 1) / 2].due_us > r.due_us) {
		sh->heap[k] = sh->heap[(k - 1) / 2];
		k = (k - 1) / 2;
	}
	sh->heap[k] = r;
}

static struct retry heap_pop(struct shared *sh)
{
	struct retry top = sh->heap[0], last = sh->heap[--sh->nheap];
	size_t k = 0;

	for (;;) {
		size_t c = 2 * k + 1;
		if (c >= sh->nheap)
			break;
		if (c + 1 < sh->nheap && sh->heap[c + 1].due_us < sh->heap[c].due_us)
			c++;
		if (sh->heap[c].due_us >= last.due_us)
			break;
		sh->heap[k] = sh->heap[c];
		k = c;
	}
	if (sh->nheap)
		sh->heap[k] = last;
	return top;
}

/* 1: *idx is work; 0: nothing now, ask again; -1: the run is over. */
static int take(struct shared *sh, uint64_t *idx)
{
	int rc = -1;
	int64_t now = ar_mono_us();

	pthread_mutex_lock(&sh->lock);
	if (sh->o->max_time > 0 && now - sh->t0_us > sh->o->max_time * 1e6)
		sh->stop = 1;
	if (sh->stop) {
		rc = -1;
	} else if (sh->nheap && sh->heap[0].due_us <= now) {
		*idx = heap_pop(sh).idx;
		rc = 1;
	} else if (sh->next < sh->o->count) {
		*idx = sh->next++;
		rc = 1;
	} else if (sh->nheap || sh->inflight) {
		rc = 0;
	}
	if (rc == 1)
		sh->inflight++;
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

/* The outcome of message idx: code 250, 4xx, 5xx or CONN_ERR. */
static void done(struct shared *sh, uint64_t idx, int code)
{
	pthread_mutex_lock(&sh->lock);
	sh->inflight--;
	if (code == 250) {
		sh->acked[idx] = 1;
	} else if (code >= 500) {
		sh->acked[idx] = 2;
	} else if (sh->o->resend) {
		unsigned a = ++sh->attempts[idx];
		double d = 0;
		if (code != CONN_ERR) {
			d = sh->o->retry_delay * pow(2, a > 1 ? a - 1 : 0);
			if (d > 30)
				d = 30;
		}
		heap_push(sh, (struct retry){ idx, ar_mono_us() +
		    (int64_t)(d * 1e6), a });
	}
	pthread_mutex_unlock(&sh->lock);
}

/* --- one SMTP session --------------------------------------------------- */

static void record(struct session *s, int code, int64_t lat_us)
{
	struct shared *sh = s->sh;

	if (ar_grow((void **)&s->recs, &s->caprecs, s->nrecs, sizeof *s->recs)) {
		s->oom = 1;
		return;
	}
	s->recs[s->nrecs++] = (struct rec){
		(uint32_t)(elapsed_us(sh) / 1000),
		(uint32_t)(lat_us > 0 ? (lat_us > UINT32_MAX ? UINT32_MAX :
		    lat_us) : 0), (int16_t)code };
	if (code == 250) {
		atomic_fetch_add(&sh->n250, 1);
		atomic_store(&sh->last_ack_us, ar_mono_us());
	} else if (code == CONN_ERR) {
		atomic_fetch_add(&sh->nconn, 1);
	} else if (code >= 500) {
		atomic_fetch_add(&sh->n5xx, 1);
	} else {
		atomic_fetch_add(&sh->n4xx, 1);
	}
}

static void disconnect(struct session *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->rlen = s->rpos = 0;
}

static int send_all(struct session *s, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return CONN_ERR;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read one reply (multi-line too): its code, or CONN_ERR. */
static int reply(struct session *s)
{
	char line[1024];
	size_t ll = 0;

	for (;;) {
		if (s->rpos == s->rlen) {
			ssize_t r = recv(s->fd, s->rbuf, sizeof s->rbuf, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return CONN_ERR;
			s->rlen = (size_t)r;
			s->rpos = 0;
		}
		char c = s->rbuf[s->rpos++];
		if (c != '\n') {
			if (ll < sizeof line - 1)
				line[ll++] = c;
			continue;
		}
		line[ll] = 0;
		ll = 0;
		if (strlen(line) < 3 || line[0] < '1' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9')
			return CONN_ERR;   /* not SMTP: treat as a broken link */
		if (line[3] == '-')
			continue;
		return (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
	}
}

static int command(struct session *s, const char *fmt, const char *arg)
{
	char buf[1100];
	int n = snprintf(buf, sizeof buf, fmt, arg);

	if (n < 0 || (size_t)n >= sizeof buf || send_all(s, buf, (size_t)n))
		return CONN_ERR;
	return reply(s);
}

/* Connect and greet, retrying with backoff until connected or the run
 * stops.  0 or -1. */
static int connect_session(struct session *s)
{
	struct shared *sh = s->sh;
	int64_t backoff_us = 50000;
	struct timeval tv;

	tv.tv_sec = (time_t)sh->o->timeout;
	tv.tv_usec = (suseconds_t)((sh->o->timeout - (double)tv.tv_sec) * 1e6);
	for (;;) {
		pthread_mutex_lock(&sh->lock);
		int stop = sh->stop || (sh->o->max_time > 0 && elapsed_us(sh) >
		    sh->o->max_time * 1e6);
		pthread_mutex_unlock(&sh->lock);
		if (stop)
			return -1;
		s->fd = socket(sh->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s->fd < 0) {
			perror("smtpload: socket");
			exit(1);
		}
		int one = 1;
		setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		if (connect(s->fd, (struct sockaddr *)&sh->addr, sh->addrlen) == 0 &&
		    reply(s) == 220 && command(s, "EHLO %s\r\n",
		    "smtpload.bench.example") == 250)
			return 0;
		disconnect(s);
		atomic_fetch_add(&sh->nconnfail, 1);
		usleep((useconds_t)backoff_us);
		backoff_us = backoff_us * 2 > 1000000 ? 1000000 : backoff_us * 2;
	}
}

/* The message as it goes on the wire: dot-stuffed (mailgen makes no
 * line that starts with '.', but check), then ".". */
static const mailgen_buf_t *wire(struct session *s)
{
	mailgen_buf_t *m = &s->msg, *w = &s->wire;
	int stuff = m->len && m->p[0] == '.';

	stuff = stuff || memmem(m->p, m->len, "\n.", 2);
	if (!stuff) {
		/* the terminator goes in msg's own spare room */
		if (m->len + 5 > m->cap) {
			char *np = realloc(m->p, m->len + 5);
			if (!np)
				return NULL;
			m->p = np;
			m->cap = m->len + 5;
		}
		size_t n = m->len;
		if (n < 2 || memcmp(m->p + n - 2, "\r\n", 2)) {
			memcpy(m->p + n, "\r\n", 2);
			n += 2;
		}
		memcpy(m->p + n, ".\r\n", 3);
		m->len = n + 3;
		return m;
	}
	w->len = 0;
	if (w->cap < m->len * 2 + 8) {
		char *np = realloc(w->p, m->len * 2 + 8);
		if (!np)
			return NULL;
		w->p = np;
		w->cap = m->len * 2 + 8;
	}
	for (size_t k = 0; k < m->len; k++) {
		if (m->p[k] == '.' && (k == 0 || m->p[k - 1] == '\n'))
			w->p[w->len++] = '.';
		w->p[w->len++] = m->p[k];
	}
	if (w->len < 2 || memcmp(w->p + w->len - 2, "\r\n", 2)) {
		memcpy(w->p + w->len, "\r\n", 2);
		w->len += 2;
	}
	memcpy(w->p + w->len, ".\r\n", 3);
	w->len += 3;
	return w;
}

/* The GTUBE line (rspamd's spam test string) and the EICAR test file
 * (as hex: the plain string would make this source a "virus"). */
static const char gtube[] =
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
static const char eicar_hex[] =
    "58354f2150254041505b345c505a58353428505e2937434329377d244549434152"
    "2d5354414e444152442d414e544956495255532d544553542d46494c452124482b"
    "482a";

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* What message idx carries (--spam, --virus): 0 clean, 1 GTUBE, 2 EICAR;
 * a pure function of (seed, idx), so every target gets the same mix. */
static int mix_class(const struct opts *o, uint64_t idx)
{
	unsigned h = (unsigned)(mix64(o->seed * 0x100000001b3ULL ^ idx) % 1000);
	if (h < o->spam_pm)
		return 1;
	if (h < o->spam_pm + o->virus_pm)
		return 2;
	return 0;
}

/* Put the class's line at the start of the message's first text/plain
 * body (the top-level body when there is none): where rspamd looks for
 * GTUBE; clamd finds EICAR anywhere.  0 or -1 (no memory). */
static int mix_in(const struct opts *o, uint64_t idx, mailgen_buf_t *m)
{
	char line[160];
	size_t n = 0, at;
	int c = mix_class(o, idx);
	const char *end, *tp;

	if (c == 0)
		return 0;
	if (c == 1)
		n = (size_t)snprintf(line, sizeof line, "%s\r\n", gtube);
	else {
		for (const char *h = eicar_hex; h[0] && h[1]; h += 2) {
			unsigned v;
			sscanf(h, "%2x", &v);
			line[n++] = (char)v;
		}
		memcpy(line + n, "\r\n", 2);
		n += 2;
	}
	end = memmem(m->p, m->len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	at = (size_t)(end - m->p) + 4;
	tp = memmem(m->p + at, m->len - at, "Content-Type: text/plain", 24);
	if (tp && (end = memmem(tp, m->len - (size_t)(tp - m->p),
	    "\r\n\r\n", 4)))
		at = (size_t)(end - m->p) + 4;
	if (m->len + n + 5 > m->cap) {
		char *np = realloc(m->p, m->len + n + 5);
		if (!np)
			return -1;
		m->p = np;
		m->cap = m->len + n + 5;
	}
	memmove(m->p + at + n, m->p + at, m->len - at);
	memcpy(m->p + at, line, n);
	m->len += n;
	return 0;
}

/* Send message idx on the open session: its outcome (250, 4xx, 5xx,
 * CONN_ERR); the session is closed after CONN_ERR and 421. */
static int transact(struct session *s, uint64_t idx)
{
	const struct opts *o = s->sh->o;
	int code;

	int64_t g0 = ar_mono_us();
	if (mailgen_message(s->sh->g, o->seed, o->first + idx, MAILGEN_CRLF,
	    &s->msg, NULL) || mix_in(o, o->first + idx, &s->msg)) {
		fprintf(stderr, "smtpload: out of memory\n");
		exit(1);
	}
	const mailgen_buf_t *w = wire(s);
	if (!w) {
		fprintf(stderr, "smtpload: out of memory\n");
		exit(1);
	}
	s->gen_s += (double)(ar_mono_us() - g0) / 1e6;

	if ((code = command(s, "MAIL FROM:<%s>\r\n", o->from)) / 100 != 2)
		goto refused;
	for (int k = 0; k < o->nto; k++)
		if ((code = command(s, "RCPT TO:<%s>\r\n", o->to[k])) / 100 != 2)
			goto refused;
	if ((code = command(s, "DATA\r\n", "")) != 354)
		goto refused;
	atomic_fetch_add(&s->sh->nsent, 1);
	if (send_all(s, w->p, w->len)) {
		code = CONN_ERR;
		goto refused;
	}
	int64_t t0 = ar_mono_us();
	code = reply(s);
	record(s, code, code == CONN_ERR ? 0 : ar_mono_us() - t0);
	if (code == CONN_ERR || code == 421)
		disconnect(s);
	else if (code != 250 && command(s, "RSET\r\n", "") != 250)
		disconnect(s);
	return code;
refused:
	/* before the data: no latency; RSET for a 4xx/5xx, like an MTA */
	if (code > 0 && code < 400)       /* 354 to MAIL, 2xx to DATA ... */
		code = CONN_ERR;
	record(s, code, 0);
	if (code == CONN_ERR || code == 421)
		disconnect(s);
	else if (command(s, "RSET\r\n", "") != 250)
		disconnect(s);
	return code;
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	struct shared *sh = s->sh;
	uint64_t idx;
	int r;

	s->fd = -1;
	while ((r = take(sh, &idx)) >= 0) {
		if (r == 0) {
			usleep(10000);
			continue;
		}
		if (s->fd < 0 && connect_session(s)) {
			/* the run stopped while we were connecting */
			pthread_mutex_lock(&sh->lock);
			sh->inflight--;
			pthread_mutex_unlock(&sh->lock);
			break;
		}
		int code = transact(s, idx);
		done(sh, idx, code);
		/* a 4xx (back-pressure): like an MTA's queue for this
		 * destination, the session waits before its next transaction
		 * instead of trying every other message at once */
		if (sh->o->resend && code >= 400 && code < 500)
			usleep((useconds_t)(sh->o->retry_delay * 1e6));
	}
	if (s->fd >= 0) {
		command(s, "QUIT\r\n", "");
		disconnect(s);
	}
	return NULL;
}

/* --- reporting ---------------------------------------------------------- */

static int cmp_rec(const void *a, const void *b)
{
	uint32_t x = ((const struct rec *)a)->t_ms;
	uint32_t y = ((const struct rec *)b)->t_ms;
	return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Percentile q (0..1) of sorted v[n], in ms. */
static double pct(const uint32_t *v, size_t n, double q)
{
	if (!n)
		return 0;
	size_t k = (size_t)(q * (double)n);
	return (double)v[k < n ? k : n - 1] / 1000.0;
}

static void progress_write(const struct opts *o, uint64_t n)
{
	char buf[32];
	int fd, len = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)n);

	if (!o->progress || (fd = open(o->progress, O_WRONLY | O_CREAT |
	    O_CLOEXEC, 0644)) < 0)
		return;
	(void)!pwrite(fd, buf, (size_t)len, 0);
	(void)!ftruncate(fd, len);
	close(fd);
}

static int resolve(struct shared *sh, const char *host, int port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char ps[16];

	snprintf(ps, sizeof ps, "%d", port);
	if (getaddrinfo(host, ps, &hints, &ai)) {
		fprintf(stderr, "smtpload: %s: cannot resolve\n", host);
		return -1;
	}
	memcpy(&sh->addr, ai->ai_addr, ai->ai_addrlen);
	sh->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: smtpload --corpus DIR --port P [--host H] "
	    "[--sessions N] [--count N] [--first F] [--seed S] [--from A] "
	    "[--to A]... [--window SEC] [--csv FILE] [--label NAME] "
	    "[--resend] [--retry-delay-ms MS] [--acked FILE] [--max-time SEC] "
	    "[--timeout SEC] [--progress FILE] [--quiet] [--spam PERMILLE] "
	    "[--virus PERMILLE]\n");
	exit(2);
}

static double num(const char *opt, const char *v, double min)
{
	char *e;
	errno = 0;
	double d = strtod(v, &e);
	if (errno || *e || !*v || d < min || d != d) {
		fprintf(stderr, "smtpload: --%s: not a number >= %g: %s\n", opt,
		    min, v);
		exit(2);
	}
	return d;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "corpus", 1, NULL, 'c' }, { "host", 1, NULL, 'h' },
		{ "port", 1, NULL, 'p' }, { "sessions", 1, NULL, 's' },
		{ "count", 1, NULL, 'n' }, { "first", 1, NULL, 'f' },
		{ "seed", 1, NULL, 'S' }, { "from", 1, NULL, 'F' },
		{ "to", 1, NULL, 'T' }, { "window", 1, NULL, 'w' },
		{ "csv", 1, NULL, 'C' }, { "label", 1, NULL, 'l' },
		{ "resend", 0, NULL, 'r' }, { "retry-delay-ms", 1, NULL, 'R' },
		{ "acked", 1, NULL, 'a' }, { "max-time", 1, NULL, 'm' },
		{ "timeout", 1, NULL, 't' }, { "progress", 1, NULL, 'P' },
		{ "quiet", 0, NULL, 'q' }, { "spam", 1, NULL, 'G' },
		{ "virus", 1, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.host = "127.0.0.1", .from = "bench@example.org",
		.label = "smtpload", .sessions = 8, .count = 200000, .seed = 1,
		.window = 10, .timeout = 300, .retry_delay = 1.0,
	};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'c': o.corpus = optarg; break;
		case 'h': o.host = optarg; break;
		case 'p': o.port = (int)num("port", optarg, 1); break;
		case 's': o.sessions = (int)num("sessions", optarg, 1); break;
		case 'n': o.count = (uint64_t)num("count", optarg, 1); break;
		case 'f': o.first = (uint64_t)num("first", optarg, 0); break;
		case 'S': o.seed = (uint64_t)num("seed", optarg, 0); break;
		case 'F': o.from = optarg; break;
		case 'T':
			if (o.nto == MAX_TO) {
				fprintf(stderr, "smtpload: at most %d --to\n",
				    MAX_TO);
				return 2;
			}
			o.to[o.nto++] = optarg;
			break;
		case 'w': o.window = num("window", optarg, 0.1); break;
		case 'C': o.csv = optarg; break;
		case 'l': o.label = optarg; break;
		case 'r': o.resend = 1; break;
		case 'R': o.retry_delay = num("retry-delay-ms", optarg, 0) / 1000;
			break;
		case 'a': o.acked = optarg; break;
		case 'm': o.max_time = num("max-time", optarg, 0); break;
		case 't': o.timeout = num("timeout", optarg, 0.1); break;
		case 'P': o.progress = optarg; break;
		case 'q': o.quiet = 1; break;
		case 'G': o.spam_pm = (unsigned)num("spam", optarg, 0); break;
		case 'V': o.virus_pm = (unsigned)num("virus", optarg, 0); break;
		default: usage();
		}
	}
	if (!o.corpus || !o.port || optind != argc || o.sessions > 4096 ||
	    o.spam_pm + o.virus_pm > 1000)
		usage();
	if (!o.nto)
		o.to[o.nto++] = "journal@bench.example";
	signal(SIGPIPE, SIG_IGN);

	static struct shared sh;
	char err[512];
	mailgen_t *g;
	sh.o = &o;
	pthread_mutex_init(&sh.lock, NULL);
	if (resolve(&sh, o.host, o.port))
		return 1;
	if (mailgen_open(&g, o.corpus, err, sizeof err)) {
		fprintf(stderr, "smtpload: %s\n", err);
		return 1;
	}
	sh.g = g;
	sh.acked = calloc(o.count, 1);
	sh.attempts = calloc(o.count, sizeof *sh.attempts);
	struct session *ss = calloc((size_t)o.sessions, sizeof *ss);
	pthread_t *th = calloc((size_t)o.sessions, sizeof *th);
	if (!sh.acked || !sh.attempts || !ss || !th) {
		fprintf(stderr, "smtpload: out of memory\n");
		return 1;
	}

	struct timespec wall0;
	clock_gettime(CLOCK_REALTIME, &wall0);
	double start_epoch = (double)wall0.tv_sec + (double)wall0.tv_nsec / 1e9;
	sh.t0_us = ar_mono_us();
	for (int k = 0; k < o.sessions; k++) {
		ss[k].sh = &sh;
		ss[k].id = k;
		if (pthread_create(&th[k], NULL, session_main, &ss[k])) {
			fprintf(stderr, "smtpload: cannot start thread %d\n", k);
			return 1;
		}
	}

	/* live: a line per window, the progress file; until all are done */
	uint64_t prev250 = 0, prev4 = 0, prev5 = 0, prevc = 0;
	double next_win = o.window, next_prog = 0.1;
	for (;;) {
		pthread_mutex_lock(&sh.lock);
		int over = (sh.next >= o.count && !sh.nheap && !sh.inflight) ||
		    sh.stop;
		pthread_mutex_unlock(&sh.lock);
		double t = (double)elapsed_us(&sh) / 1e6;
		if (o.progress && t >= next_prog) {
			progress_write(&o, atomic_load(&sh.n250));
			next_prog = t + 0.1;
		}
		if (t >= next_win && !o.quiet) {
			uint64_t a = atomic_load(&sh.n250), t4 = atomic_load(&sh.n4xx),
			    t5 = atomic_load(&sh.n5xx), tc = atomic_load(&sh.nconn);
			printf("%s: t=%.0fs 250=%llu (%.0f/s in the window) "
			    "4xx=%llu 5xx=%llu conn_errors=%llu total_250=%llu\n",
			    o.label, next_win, (unsigned long long)(a - prev250),
			    (double)(a - prev250) / o.window,
			    (unsigned long long)(t4 - prev4),
			    (unsigned long long)(t5 - prev5),
			    (unsigned long long)(tc - prevc),
			    (unsigned long long)a);
			fflush(stdout);
			prev250 = a; prev4 = t4; prev5 = t5; prevc = tc;
			next_win += o.window;
		}
		if (over)
			break;
		usleep(20000);
	}
	for (int k = 0; k < o.sessions; k++)
		pthread_join(th[k], NULL);
	double run_s = (double)elapsed_us(&sh) / 1e6;
	progress_write(&o, atomic_load(&sh.n250));

	/* merge the records */
	size_t n = 0, n250 = 0;
	double gen_s = 0;
	for (int k = 0; k < o.sessions; k++) {
		n += ss[k].nrecs;
		gen_s += ss[k].gen_s;
		if (ss[k].oom) {
			fprintf(stderr, "smtpload: out of memory (records)\n");
			return 1;
		}
	}
	struct rec *all = malloc((n ? n : 1) * sizeof *all);
	uint32_t *lat = malloc((n ? n : 1) * sizeof *lat);
	if (!all || !lat) {
		fprintf(stderr, "smtpload: out of memory\n");
		return 1;
	}
	n = 0;
	for (int k = 0; k < o.sessions; k++) {
		memcpy(all + n, ss[k].recs, ss[k].nrecs * sizeof *all);
		n += ss[k].nrecs;
		free(ss[k].recs);
		free(ss[k].msg.p);
		free(ss[k].wire.p);
	}
	for (size_t k = 0; k < n; k++)
		if (all[k].code == 250)
			lat[n250++] = all[k].lat_us;
	qsort(lat, n250, sizeof *lat, cmp_u32);

	/* windows: by the time each attempt ended */
	if (o.csv) {
		FILE *f = fopen(o.csv, "w");
		if (!f) {
			fprintf(stderr, "smtpload: %s: %s\n", o.csv,
			    strerror(errno));
			return 1;
		}
		size_t nw = (size_t)(run_s / o.window) + 1, k = 0;
		uint32_t wms = (uint32_t)(o.window * 1000);
		uint32_t *wl = malloc((n ? n : 1) * sizeof *wl);
		qsort(all, n, sizeof *all, cmp_rec);
		fprintf(f, "window_start_s,window_end_s,acked,rate_per_s,"
		    "tempfail,permfail,conn_errors,p50_ms,p90_ms,p99_ms,max_ms\n");
		for (size_t w = 0; wl && w < nw; w++) {
			size_t m = 0, t4 = 0, t5 = 0, tc = 0;
			for (; k < n && all[k].t_ms / wms <= w; k++) {
				if (all[k].code == 250) wl[m++] = all[k].lat_us;
				else if (all[k].code == CONN_ERR) tc++;
				else if (all[k].code >= 500) t5++;
				else t4++;
			}
			qsort(wl, m, sizeof *wl, cmp_u32);
			double ws = (double)w * o.window, we = ws + o.window;
			if (we > run_s)
				we = run_s;
			fprintf(f, "%.1f,%.1f,%zu,%.1f,%zu,%zu,%zu,%.2f,%.2f,"
			    "%.2f,%.2f\n", ws, we, m, we > ws ? (double)m /
			    (we - ws) : 0, t4, t5, tc, pct(wl, m, .5),
			    pct(wl, m, .9), pct(wl, m, .99), m ?
			    (double)wl[m - 1] / 1000 : 0);
		}
		free(wl);
		if (fclose(f)) {
			fprintf(stderr, "smtpload: %s: %s\n", o.csv,
			    strerror(errno));
			return 1;
		}
	}

	uint64_t unacked = 0, perm = 0;
	if (o.acked) {
		FILE *f = fopen(o.acked, "w");
		if (!f) {
			fprintf(stderr, "smtpload: %s: %s\n", o.acked,
			    strerror(errno));
			return 1;
		}
		for (uint64_t k = 0; k < o.count; k++)
			if (sh.acked[k] == 1)
				fprintf(f, "%llu\n",
				    (unsigned long long)(o.first + k));
		if (fclose(f)) {
			fprintf(stderr, "smtpload: %s: %s\n", o.acked,
			    strerror(errno));
			return 1;
		}
	}
	for (uint64_t k = 0; k < o.count; k++) {
		unacked += sh.acked[k] == 0;
		perm += sh.acked[k] == 2;
	}

	/* the time of the last 250, on the wall clock, for the scripts */
	int64_t last_us = atomic_load(&sh.last_ack_us);
	double last_ack_epoch = last_us ? start_epoch +
	    (double)(last_us - sh.t0_us) / 1e6 : 0;
	double ack_span = last_us ? (double)(last_us - sh.t0_us) / 1e6 : run_s;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec /
	    1e6 + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	uint64_t a = atomic_load(&sh.n250);

	printf("%s: %llu messages (seed %llu, %llu..%llu), %d sessions%s to "
	    "%s:%d: %llu got a 250 in %.2f s (%.0f msg/s over the whole run)\n",
	    o.label, (unsigned long long)o.count, (unsigned long long)o.seed,
	    (unsigned long long)o.first,
	    (unsigned long long)(o.first + o.count - 1), o.sessions,
	    o.resend ? " (resending)" : "", o.host, o.port,
	    (unsigned long long)a, ack_span, (double)a / ack_span);
	printf("%s: 250 latency (end of data to reply) p50 %.2f ms, p90 %.2f "
	    "ms, p99 %.2f ms, max %.2f ms\n", o.label, pct(lat, n250, .5),
	    pct(lat, n250, .9), pct(lat, n250, .99),
	    n250 ? (double)lat[n250 - 1] / 1000 : 0);
	printf("%s: replies: 250 %llu, 4xx %llu, 5xx %llu, connection errors "
	    "%llu (and %llu failed connects); messages without a 250 at the "
	    "end: %llu (5xx: %llu); client CPU %.1f s (generating %.1f s)\n",
	    o.label, (unsigned long long)a,
	    (unsigned long long)atomic_load(&sh.n4xx),
	    (unsigned long long)atomic_load(&sh.n5xx),
	    (unsigned long long)atomic_load(&sh.nconn),
	    (unsigned long long)atomic_load(&sh.nconnfail),
	    (unsigned long long)unacked + perm, (unsigned long long)perm, cpu,
	    gen_s);
	printf("smtpload-result label=%s sessions=%d count=%llu acked=%llu "
	    "tempfail=%llu permfail=%llu conn_errors=%llu connect_failures=%llu "
	    "unacked=%llu seconds=%.3f rate=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f "
	    "max_ms=%.2f start_epoch=%.3f last_ack_epoch=%.3f cpu_s=%.2f\n",
	    o.label, o.sessions, (unsigned long long)o.count,
	    (unsigned long long)a, (unsigned long long)atomic_load(&sh.n4xx),
	    (unsigned long long)atomic_load(&sh.n5xx),
	    (unsigned long long)atomic_load(&sh.nconn),
	    (unsigned long long)atomic_load(&sh.nconnfail),
	    (unsigned long long)unacked + perm, ack_span, (double)a / ack_span,
	    pct(lat, n250, .5), pct(lat, n250, .9), pct(lat, n250, .99),
	    n250 ? (double)lat[n250 - 1] / 1000 : 0, start_epoch,
	    last_ack_epoch, cpu);
	free(all);
	free(lat);
	free(sh.acked);
	free(sh.attempts);
	free(sh.heap);
	free(ss);
	free(th);
	mailgen_close(g);
	return unacked + perm ? 3 : 0;
}
