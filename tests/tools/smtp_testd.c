/*
 * smtp_testd - a test daemon on the SMTP engine (smtp/smtp.h).
 *
 * Each accepted message is written to OUTDIR/<n>.eml (the bytes exactly as
 * received) and its envelope to OUTDIR/<n>.env, by a worker thread that
 * answers the engine asynchronously.  RCPT is accepted only for addresses
 * ending in "@DOMAIN".  Prints "port=N" on stdout once listening.
 *
 *   smtp_testd -d OUTDIR [-D DOMAIN] [-l HOST] [-p PORT] [-c CERT -k KEY]
 *              [-A USER:PASS] [-w DELAY_MS] [-f] [-n] [-S]
 *              [-x ADDR=CODE ...] [-o smtp_key=value ...]
 *
 * -f fsyncs each message; -n is a null sink (counts bytes, stores nothing)
 * for benchmarks.  -x answers RCPT TO:<ADDR> with CODE (4xx or 5xx) even
 * in DOMAIN.  -S keeps counters in OUTDIR/stats, rewritten (atomically)
 * at every change: connects= (sessions opened), mails= (MAIL FROM
 * commands), active= and max_active= (sessions open at once).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "smtp/smtp.h"

struct sink {
	int fd;
	unsigned n;
	size_t size;
	char *env;
	smtp_token_t *tok;
	struct sink *next;
};

static struct {
	const char *outdir;
	const char *domain;
	const char *user, *pass;
	int delay_ms;
	int do_fsync;
	int null_sink;
	atomic_uint counter;
	int stats;
	unsigned connects, mails, active, max_active;   /* under mu */
	size_t nrefuse;
	struct { const char *addr; int code; } refuse[32];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sink *head, *tail;
	int quit;
	smtp_server_t *srv;
} g = { .domain = "example.com", .mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER };

static void tmp_path(char *buf, size_t len, unsigned n)
{
	ar_path(buf, len, "%s/tmp.%u", g.outdir, n);
}

/* OUTDIR/stats from the counters (under g.mu). */
static void stats_write(void)
{
	char text[256], tmp[4096], path[4096];
	int fd, n;

	if (!g.stats)
		return;
	n = snprintf(text, sizeof text, "connects=%u\nmails=%u\nactive=%u\n"
	    "max_active=%u\n", g.connects, g.mails, g.active, g.max_active);
	ar_path(tmp, sizeof tmp, "%s/stats.tmp", g.outdir);
	ar_path(path, sizeof path, "%s/stats", g.outdir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (ar_write_full(fd, text, (size_t)n) == 0 && close(fd) == 0)
		rename(tmp, path);
	else
		close(fd);
}

static void cb_connect(void *arg, smtp_session_t *s, struct smtp_reply *r)
{
	pthread_mutex_lock(&g.mu);
	g.connects++;
	if (++g.active > g.max_active)
		g.max_active = g.active;
	stats_write();
	pthread_mutex_unlock(&g.mu);
}

static void cb_disconnect(void *arg, smtp_session_t *s)
{
	pthread_mutex_lock(&g.mu);
	g.active--;
	stats_write();
	pthread_mutex_unlock(&g.mu);
}

static void cb_mail(void *arg, smtp_session_t *s, const char *addr,
    const struct smtp_mail_params *p, struct smtp_reply *r)
{
	pthread_mutex_lock(&g.mu);
	g.mails++;
	stats_write();
	pthread_mutex_unlock(&g.mu);
}

static void cb_rcpt(void *arg, smtp_session_t *s, const char *addr,
    struct smtp_reply *r)
{
	size_t al = strlen(addr), dl = strlen(g.domain);

	for (size_t i = 0; i < g.nrefuse; i++)
		if (!strcasecmp(addr, g.refuse[i].addr)) {
			int c = g.refuse[i].code;
			smtp_reply_set(r, c, c / 100 == 4 ? "4.2.0" : "5.1.1",
			    "<%s>: Recipient address rejected (test)", addr);
			return;
		}

	if (al <= dl + 1 || addr[al - dl - 1] != '@' ||
	    strcasecmp(addr + al - dl, g.domain))
		smtp_reply_set(r, 550, "5.1.1", "Recipient address rejected: "
		    "unknown journal address");
}

static int cb_auth(void *arg, smtp_session_t *s, const char *user,
    const char *pass)
{
	return strcmp(user, g.user) || strcmp(pass, g.pass) ? AR_EPERM : 0;
}

static void *cb_data_begin(void *arg, smtp_session_t *s,
    struct smtp_reply *r)
{
	struct sink *k = calloc(1, sizeof *k);
	char path[4096];

	if (!k)
		return NULL;
	k->n = atomic_fetch_add(&g.counter, 1) + 1;
	if (g.null_sink) {
		k->fd = -1;
		return k;
	}
	tmp_path(path, sizeof path, k->n);
	k->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (k->fd < 0) {
		smtp_reply_set(r, 451, "4.3.0", "Cannot create spool file");
		free(k);
		return NULL;
	}
	return k;
}

static int cb_data_write(void *arg, void *sink, const void *buf, size_t len)
{
	struct sink *k = sink;

	k->size += len;
	if (k->fd < 0)
		return 0;
	return ar_write_full(k->fd, buf, len);
}

static void cb_data_abort(void *arg, void *sink, int status)
{
	struct sink *k = sink;
	char path[4096];

	if (k->fd >= 0) {
		close(k->fd);
		tmp_path(path, sizeof path, k->n);
		unlink(path);
	}
	free(k);
}

static void cb_data_end(void *arg, void *sink, smtp_session_t *s,
    smtp_token_t *tok)
{
	struct sink *k = sink;
	const struct smtp_session_info *in = smtp_session_info(s);
	size_t cap = 0;
	FILE *f;
	char *buf = NULL;

	if (g.null_sink) {          /* benchmark: count, answer at once */
		free(k);
		smtp_session_reply(tok, 250, "2.0.0", "Ok: discarded");
		return;
	}
	/* The envelope is read now: s is valid only during this call. */
	f = open_memstream(&buf, &cap);
	if (f) {
		fprintf(f, "mail_from=%s\n", smtp_session_mail_from(s));
		for (size_t i = 0; i < smtp_session_rcpt_count(s); i++)
			fprintf(f, "rcpt=%s\n", smtp_session_rcpt(s, i));
		fprintf(f, "helo=%s\nclient=%s\ntls=%s\ncipher=%s\nauth=%s\n"
		    "size=%zu\n", in->helo, in->client_ip,
		    in->tls ? in->tls_protocol : "no", in->tls_cipher,
		    in->auth_user, k->size);
		fclose(f);
	}
	k->env = buf;
	k->tok = tok;
	pthread_mutex_lock(&g.mu);
	if (g.tail)
		g.tail->next = k;
	else
		g.head = k;
	g.tail = k;
	pthread_cond_signal(&g.cv);
	pthread_mutex_unlock(&g.mu);
}

/* The envelope file: durable only with -f (the test sink skips fsync). */
static int write_env(const char *path, const char *text, unsigned n)
{
	char tmp[4096];
	int fd, rc;

	if (g.do_fsync)
		return ar_file_write_atomic(path, text, strlen(text), 0600);
	ar_path(tmp, sizeof tmp, "%s/tmpenv.%u", g.outdir, n);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return AR_EIO;
	rc = ar_write_full(fd, text, strlen(text));
	if (close(fd) < 0 && !rc)
		rc = AR_EIO;
	if (!rc && rename(tmp, path) < 0)
		rc = AR_EIO;
	return rc;
}

/* Worker: make the message durable (optionally fsync), then answer. */
static void finish_one(struct sink *k)
{
	char tmp[4096], path[4096], env[4096];
	int rc = 0;

	if (g.delay_ms) {
		struct timespec ts = { g.delay_ms / 1000,
			(long)(g.delay_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (g.do_fsync && fsync(k->fd) < 0)
		rc = AR_EIO;
	if (close(k->fd) < 0)
		rc = AR_EIO;
	tmp_path(tmp, sizeof tmp, k->n);
	ar_path(path, sizeof path, "%s/%u.eml", g.outdir, k->n);
	ar_path(env, sizeof env, "%s/%u.env", g.outdir, k->n);
	if (!rc && k->env)
		rc = write_env(env, k->env, k->n);
	if (!rc && rename(tmp, path) < 0)
		rc = AR_EIO;
	if (rc) {
		unlink(tmp);
		smtp_session_reply(k->tok, 451, "4.3.0", "Storage error");
	} else {
		char text[64];
		snprintf(text, sizeof text, "Ok: queued as %u", k->n);
		smtp_session_reply(k->tok, 250, "2.0.0", text);
	}
	free(k->env);
	free(k);
}

static void *worker(void *arg)
{
	pthread_mutex_lock(&g.mu);
	for (;;) {
		struct sink *k = g.head;

		if (!k) {
			if (g.quit)
				break;
			pthread_cond_wait(&g.cv, &g.mu);
			continue;
		}
		g.head = k->next;
		if (!g.head)
			g.tail = NULL;
		pthread_mutex_unlock(&g.mu);
		finish_one(k);
		pthread_mutex_lock(&g.mu);
	}
	pthread_mutex_unlock(&g.mu);
	return NULL;
}

static void *sig_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	if (sigwait(set, &sig) == 0)
		smtp_server_stop(g.srv);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: smtp_testd -d OUTDIR [-D DOMAIN] [-l HOST] "
	    "[-p PORT] [-c CERT -k KEY] [-A USER:PASS] [-w DELAY_MS] [-f] [-n] "
	    "[-S] [-x ADDR=CODE]... [-o smtp_key=value]...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct smtp_config cfg;
	struct smtp_callbacks cb = {
		.rcpt_to = cb_rcpt, .data_begin = cb_data_begin,
		.data_write = cb_data_write, .data_end = cb_data_end,
		.data_abort = cb_data_abort,
	};
	const char *host = "127.0.0.1";
	unsigned port = 0, bound = 0;
	char err[512];
	sigset_t set;
	pthread_t wt, st;
	int opt, rc;

	ar_log_set_prog("smtp_testd");
	if (smtp_config_defaults(&cfg) < 0)
		return 1;
	while ((opt = getopt(argc, argv, "d:D:l:p:c:k:A:w:fnSx:o:")) != -1) {
		char *eq, *colon;

		switch (opt) {
		case 'd': g.outdir = optarg; break;
		case 'D': g.domain = optarg; break;
		case 'l': host = optarg; break;
		case 'p': port = (unsigned)atoi(optarg); break;
		case 'c': ar_strlcpy(cfg.tls_cert, optarg, sizeof cfg.tls_cert);
			break;
		case 'k': ar_strlcpy(cfg.tls_key, optarg, sizeof cfg.tls_key);
			break;
		case 'A':
			if (!(colon = strchr(optarg, ':')))
				usage();
			*colon = '\0';
			g.user = optarg;
			g.pass = colon + 1;
			cb.auth = cb_auth;
			break;
		case 'w': g.delay_ms = atoi(optarg); break;
		case 'f': g.do_fsync = 1; break;
		case 'n': g.null_sink = 1; break;
		case 'S':
			g.stats = 1;
			cb.connect = cb_connect;
			cb.disconnect = cb_disconnect;
			cb.mail_from = cb_mail;
			break;
		case 'x':
			if (!(eq = strchr(optarg, '=')) ||
			    g.nrefuse == AR_ARRAY_LEN(g.refuse))
				usage();
			*eq = '\0';
			g.refuse[g.nrefuse].addr = optarg;
			g.refuse[g.nrefuse++].code = atoi(eq + 1);
			if (atoi(eq + 1) < 400 || atoi(eq + 1) > 599)
				usage();
			break;
		case 'o':
			if (!(eq = strchr(optarg, '=')))
				usage();
			*eq = '\0';
			if (ar_conf_set(smtp_config_defs, smtp_config_ndefs,
			    &cfg, optarg, eq + 1, err, sizeof err) < 0) {
				fprintf(stderr, "smtp_testd: %s\n", err);
				return 2;
			}
			break;
		default: usage();
		}
	}
	if (!g.outdir)
		usage();
	if (!cfg.hostname[0])
		ar_strlcpy(cfg.hostname, "testd.example", sizeof cfg.hostname);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = smtp_server_new(&cfg, &cb, &g.srv, err, sizeof err)) < 0) {
		fprintf(stderr, "smtp_testd: %s\n", err);
		return 1;
	}
	if (smtp_server_listen(g.srv, host, port, &bound) < 0) {
		fprintf(stderr, "smtp_testd: %s\n", smtp_server_errmsg(g.srv));
		smtp_server_free(g.srv);
		return 1;
	}
	pthread_mutex_lock(&g.mu);
	stats_write();
	pthread_mutex_unlock(&g.mu);
	pthread_create(&wt, NULL, worker, NULL);
	pthread_create(&st, NULL, sig_thread, &set);
	printf("port=%u\n", bound);
	fflush(stdout);
	rc = smtp_server_run(g.srv);
	if (rc < 0)
		fprintf(stderr, "smtp_testd: %s\n", smtp_server_errmsg(g.srv));
	pthread_mutex_lock(&g.mu);
	g.quit = 1;
	pthread_cond_signal(&g.cv);
	pthread_mutex_unlock(&g.mu);
	pthread_join(wt, NULL);
	pthread_cancel(st);
	pthread_join(st, NULL);
	smtp_server_free(g.srv);
	ar_log(AR_LOG_INFO, "event=exit status=%d", rc);
	return rc < 0 ? 1 : 0;
}
