/*
 * clamd.c - the clamd engine: INSTREAM over clamd's UNIX socket.
 *
 * One connection per scan (clamd answers an INSTREAM and closes): the
 * command "zINSTREAM\0", then the message in chunks, each a 4-byte
 * big-endian length and that many bytes, then a zero length; the reply is
 * one NUL-terminated line: "stream: OK", "stream: NAME FOUND",
 * "INSTREAM size limit exceeded. ERROR" (past StreamMaxLength; clamd
 * closes the connection, possibly before we finished writing) or
 * "... ERROR".  A reply that comes before the zero length is out counts
 * only when it refuses or names a virus: an "OK" for part of the message
 * is no verdict (failed).  The socket is non-blocking and every connect, write and
 * read waits at most io_ms (connect_ms for the connect) and never past the
 * scan's deadline (total_ms): a clamd that is stopped (SIGSTOP) or wedged
 * costs at most that, never a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ar.h"
#include "gateway/scan.h"

#define CLAMD_REPLY_MAX 4096

typedef struct clamd {
	gw_av_t base;
	gw_clamd_conf_t c;
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
} clamd_t;

/* One scan's connection state. */
typedef struct conn {
	int fd;
	int64_t deadline;       /* ar_mono_us() */
	int io_ms;
	int closed;             /* peer closed its side (EPIPE/ECONNRESET) */
	char reply[CLAMD_REPLY_MAX];
	size_t rlen;
	int eof;
	char *errmsg;
	size_t errlen;
} conn_t;

static int remaining_ms(const conn_t *k, int cap)
{
	int64_t left = (k->deadline - ar_mono_us()) / 1000;

	if (left <= 0)
		return 0;
	return left < cap ? (int)left : cap;
}

/* Wait for ev on the socket: 0, AR_ETIMEOUT, or AR_EIO. */
static int wait_fd(conn_t *k, short ev, int cap_ms, const char *what)
{
	struct pollfd p = { .fd = k->fd, .events = ev };
	int ms, n;

	for (;;) {
		ms = remaining_ms(k, cap_ms);
		if (ms <= 0) {
			snprintf(k->errmsg, k->errlen,
			    "clamd: %s timed out", what);
			return AR_ETIMEOUT;
		}
		n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n == 0) {
			snprintf(k->errmsg, k->errlen,
			    "clamd: %s timed out after %d ms", what, ms);
			return AR_ETIMEOUT;
		}
		if (errno != EINTR) {
			snprintf(k->errmsg, k->errlen, "clamd: poll: %s",
			    strerror(errno));
			return AR_EIO;
		}
	}
}

static int conn_open(conn_t *k, const clamd_t *cd)
{
	struct sockaddr_un sa;
	int64_t cdeadline;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, cd->socket, sizeof sa.sun_path);
	k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (k->fd < 0) {
		snprintf(k->errmsg, k->errlen, "clamd: socket: %s",
		    strerror(errno));
		return AR_EIO;
	}
	cdeadline = ar_mono_us() + (int64_t)cd->c.connect_ms * 1000;
	if (cdeadline > k->deadline)
		cdeadline = k->deadline;
	for (;;) {
		if (connect(k->fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS) {
			/* not for UNIX sockets on Linux, but be correct */
			int err = 0;
			socklen_t el = sizeof err;
			if (wait_fd(k, POLLOUT, cd->c.connect_ms,
			    "connect") != 0)
				return AR_ETIMEOUT;
			getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err == 0)
				return 0;
			errno = err;
		}
		if (errno == EAGAIN && ar_mono_us() < cdeadline) {
			/* listen backlog full (clamd stopped or saturated):
			 * try again shortly, until the connect timeout */
			struct timespec ts = { 0, 5 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (errno == EAGAIN) {
			snprintf(k->errmsg, k->errlen,
			    "clamd: connect to %s timed out (backlog full)",
			    cd->socket);
			return AR_ETIMEOUT;
		}
		snprintf(k->errmsg, k->errlen, "clamd: connect to %s: %s",
		    cd->socket, strerror(errno));
		return AR_EAGAIN;
	}
}

/* Read what clamd sent, until EOF or the reply buffer is full.  With
 * block == 0, only what is there now.  0, AR_ETIMEOUT or AR_EIO. */
static int conn_read(conn_t *k, int block)
{
	while (!k->eof && k->rlen < sizeof k->reply - 1) {
		ssize_t n = recv(k->fd, k->reply + k->rlen,
		    sizeof k->reply - 1 - k->rlen, 0);
		if (n > 0) {
			k->rlen += (size_t)n;
			continue;
		}
		if (n == 0) {
			k->eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			int rc;
			if (!block)
				return 0;
			/* one complete line is all clamd sends: stop there
			 * if it keeps the connection open */
			if (k->rlen && memchr(k->reply, '\0', k->rlen))
				return 0;
			if ((rc = wait_fd(k, POLLIN, k->io_ms,
			    "reading the reply")) != 0)
				return rc;
			continue;
		}
		if (errno == ECONNRESET) {
			k->eof = 1;
			break;
		}
		snprintf(k->errmsg, k->errlen, "clamd: read: %s",
		    strerror(errno));
		return AR_EIO;
	}
	k->reply[k->rlen] = '\0';
	return 0;
}

/* Write all of buf.  0, AR_ETIMEOUT, AR_EIO; a peer that closed sets
 * k->closed and returns 0 (its reply says why). */
static int conn_write(conn_t *k, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0 && !k->closed) {
		ssize_t n = send(k->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			int rc = wait_fd(k, POLLOUT, k->io_ms,
			    "writing the message");
			if (rc)
				return rc;
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			k->closed = 1;
			return 0;
		}
		snprintf(k->errmsg, k->errlen, "clamd: write: %s",
		    strerror(errno));
		return AR_EIO;
	}
	return 0;
}

/* Keep printable ASCII only (names go to logs and JSON). */
static char *clean_name(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t i, n = 0;

	if (!out)
		return NULL;
	for (i = 0; i < len; i++)
		if (s[i] > 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
			out[n++] = s[i];
	out[n] = '\0';
	return out;
}

/*
 * Parse the reply records (NUL or newline separated) into res.  0 (OK,
 * clean or infected), AR_ETOOBIG, AR_EPROTO.
 */
static int parse_reply(conn_t *k, gw_av_result_t *res, int sent_all)
{
	char *rec = k->reply, *end = k->reply + k->rlen;
	int found = 0, ok = 0;

	while (rec < end) {
		size_t len = strcspn(rec, "\n");   /* NULs end it too */
		char *line = rec;
		rec += len + 1;
		while (len && (line[len - 1] == ' ' || line[len - 1] == '\r'))
			len--;
		if (len == 0)
			continue;
		line[len] = '\0';
		if (strstr(line, "size limit exceeded")) {
			snprintf(res->errmsg, sizeof res->errmsg,
			    "clamd: message larger than its StreamMaxLength "
			    "(\"%.120s\")", line);
			return AR_ETOOBIG;
		}
		if (strncmp(line, "stream: ", 8) != 0) {
			snprintf(res->errmsg, sizeof res->errmsg,
			    "clamd: unexpected reply \"%.160s\"", line);
			return AR_EPROTO;
		}
		line += 8;
		len -= 8;
		if (strcmp(line, "OK") == 0) {
			ok = 1;
		} else if (len > 6 && strcmp(line + len - 6, " FOUND") == 0) {
			found = 1;
			if (res->nviruses < GW_AV_MAX_VIRUSES) {
				char *name = clean_name(line, len - 6);
				if (!name)
					return AR_ENOMEM;
				res->viruses[res->nviruses++] = name;
			}
		} else {
			snprintf(res->errmsg, sizeof res->errmsg,
			    "clamd: error \"%.160s\"", line);
			return AR_EPROTO;
		}
	}
	if (!found && !ok) {
		snprintf(res->errmsg, sizeof res->errmsg,
		    k->rlen ? "clamd: incomplete reply" :
		    "clamd: closed the connection without a reply");
		return k->rlen ? AR_EPROTO : AR_EAGAIN;
	}
	if (!found && !sent_all) {
		/* "OK" for a stream it did not read to its end is no verdict
		 * on the message (clamd itself never answers early but to
		 * refuse) */
		snprintf(res->errmsg, sizeof res->errmsg,
		    "clamd: answered \"stream: OK\" before the whole message "
		    "was sent");
		return AR_EPROTO;
	}
	res->infected = found;
	return 0;
}

static gw_scan_status_t status_of(int rc)
{
	switch (rc) {
	case 0: return GW_SCAN_OK;
	case AR_EAGAIN: return GW_SCAN_UNAVAILABLE;
	case AR_ETIMEOUT: return GW_SCAN_TIMEOUT;
	case AR_ETOOBIG: return GW_SCAN_TOO_LARGE;
	default: return GW_SCAN_FAILED;
	}
}

static void conn_init(conn_t *k, const clamd_t *cd, char *errmsg,
    size_t errlen)
{
	memset(k, 0, sizeof *k);
	k->fd = -1;
	k->io_ms = cd->c.io_ms;
	k->deadline = ar_mono_us() + (int64_t)cd->c.total_ms * 1000;
	k->errmsg = errmsg;
	k->errlen = errlen;
}

static int clamd_scan(gw_av_t *av, const gw_scan_source_t *src,
    gw_av_result_t *res)
{
	clamd_t *cd = (clamd_t *)av;
	int64_t t0 = ar_mono_us();
	unsigned char *buf = NULL;
	void *cur = NULL;
	conn_t k;
	int rc, sent_all = 0;

	memset(res, 0, sizeof *res);
	res->engine = av->ops->name;
	conn_init(&k, cd, res->errmsg, sizeof res->errmsg);
	if (cd->c.stream_max && src->size > cd->c.stream_max) {
		snprintf(res->errmsg, sizeof res->errmsg,
		    "clamd: message of %llu bytes is larger than "
		    "StreamMaxLength %llu: not scanned",
		    (unsigned long long)src->size,
		    (unsigned long long)cd->c.stream_max);
		rc = AR_ETOOBIG;
		goto out;
	}
	if (!(buf = malloc(4 + cd->c.chunk))) {
		rc = AR_ENOMEM;
		goto out;
	}
	if ((rc = conn_open(&k, cd)))
		goto out;
	if ((rc = conn_write(&k, "zINSTREAM", 10)))
		goto out;
	if ((rc = src->open(src->arg, &cur))) {
		res->source_rc = rc;
		snprintf(res->errmsg, sizeof res->errmsg,
		    "clamd: reading the message: %s", ar_strerror(rc));
		goto out;
	}
	for (;;) {
		size_t fill = 0, got;
		/* a full chunk when the source gives short reads */
		while (fill < cd->c.chunk) {
			rc = src->read(cur, buf + 4 + fill, cd->c.chunk - fill,
			    &got);
			if (rc) {
				res->source_rc = rc;
				snprintf(res->errmsg, sizeof res->errmsg,
				    "clamd: reading the message: %s",
				    ar_strerror(rc));
				goto out;
			}
			if (got == 0)
				break;
			fill += got;
		}
		ar_put_u32(buf, (uint32_t)fill);
		if ((rc = conn_write(&k, buf, 4 + fill)))
			goto out;
		if (k.closed)
			break;
		if (fill == 0) {
			sent_all = 1;     /* the end-of-stream chunk is out */
			break;
		}
		/* clamd refuses past StreamMaxLength with a reply and a
		 * close: look for it between chunks */
		if ((rc = conn_read(&k, 0)))
			goto out;
		if (k.rlen || k.eof)
			break;
	}
	if ((rc = conn_read(&k, 1)))
		goto out;
	rc = parse_reply(&k, res, sent_all);
	if (rc == AR_EAGAIN && k.closed)
		snprintf(res->errmsg, sizeof res->errmsg,
		    "clamd: closed the connection while the message was sent");
out:
	if (cur)
		src->close(cur);
	if (k.fd >= 0)
		close(k.fd);
	free(buf);
	if (res->source_rc && rc == res->source_rc)
		res->status = GW_SCAN_FAILED;
	else
		res->status = status_of(rc);
	if (rc) {
		res->infected = 0;
		if (rc != AR_ENOMEM && !res->errmsg[0])
			snprintf(res->errmsg, sizeof res->errmsg, "clamd: %s",
			    ar_strerror(rc));
	}
	res->dur_us = ar_mono_us() - t0;
	return rc;
}

/* A one-line command ("zPING") and its reply, into out. */
static int command(clamd_t *cd, const char *cmd, char *out, size_t outlen)
{
	char err[256] = "";
	conn_t k;
	int rc;

	conn_init(&k, cd, err, sizeof err);
	k.deadline = ar_mono_us() +
	    (int64_t)(cd->c.connect_ms + cd->c.io_ms) * 1000;
	if ((rc = conn_open(&k, cd)) == 0 &&
	    (rc = conn_write(&k, cmd, strlen(cmd) + 1)) == 0 &&
	    (rc = conn_read(&k, 1)) == 0) {
		if (k.rlen == 0)
			rc = AR_EPROTO;
		else
			ar_strlcpy(out, k.reply, outlen);
	}
	if (k.fd >= 0)
		close(k.fd);
	return rc;
}

static int clamd_ping(gw_av_t *av)
{
	char r[64];
	int rc = command((clamd_t *)av, "zPING", r, sizeof r);

	if (rc)
		return rc;
	return strncmp(r, "PONG", 4) == 0 ? 0 : AR_EPROTO;
}

int gw_clamd_version(gw_av_t *av, char *buf, size_t len)
{
	if (!av || av->ops->name == NULL || strcmp(av->ops->name, "clamd"))
		return AR_EINVAL;
	return command((clamd_t *)av, "zVERSION", buf, len);
}

static void clamd_close(gw_av_t *av)
{
	free(av);
}

static const gw_av_ops_t clamd_ops = {
	.name = "clamd",
	.scan = clamd_scan,
	.ping = clamd_ping,
	.close = clamd_close,
};

int gw_clamd_new(const gw_clamd_conf_t *conf, gw_av_t **out)
{
	clamd_t *cd;

	*out = NULL;
	if (!conf || !conf->socket || !conf->socket[0])
		return AR_EINVAL;
	if (strlen(conf->socket) >= sizeof cd->socket)
		return AR_EINVAL;
	if (!(cd = calloc(1, sizeof *cd)))
		return AR_ENOMEM;
	cd->base.ops = &clamd_ops;
	cd->c = *conf;
	memcpy(cd->socket, conf->socket, strlen(conf->socket) + 1);
	cd->c.socket = cd->socket;
	if (cd->c.connect_ms <= 0)
		cd->c.connect_ms = 1000;
	if (cd->c.io_ms <= 0)
		cd->c.io_ms = 10000;
	if (cd->c.total_ms <= 0)
		cd->c.total_ms = 120000;
	if (cd->c.chunk == 0)
		cd->c.chunk = 64 * 1024;
	if (cd->c.chunk > 16u << 20)
		cd->c.chunk = 16u << 20;
	*out = &cd->base;
	return 0;
}

void gw_av_result_clear(gw_av_result_t *res)
{
	size_t i;

	if (!res)
		return;
	for (i = 0; i < res->nviruses; i++)
		free(res->viruses[i]);
	memset(res, 0, sizeof *res);
}
