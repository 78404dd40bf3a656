/*
 * smtpc.c - our SMTP client (smtpc.h): one session to one server address,
 * non-blocking socket and OpenSSL with poll() and a deadline on every
 * wait, buffered writes flushed before each reply is awaited.
 *
 * A session is opened (connect, greeting, EHLO or HELO, STARTTLS per the
 * TLS policy, EHLO again), then carries transactions (smtpc_send) for as
 * long as the relay keeps it, then QUIT.  Any I/O failure, timeout or
 * malformed reply marks it broken: it is never reused.
 *
 * The message is sent as it is queued with two changes only: dot-stuffing
 * (RFC 5321 4.5.2), and a bare CR or bare LF sent as CRLF.  The second is
 * not cosmetic: a receiver that takes a bare LF (or CR) as a line end
 * would otherwise read "<LF>.<CRLF>" inside a message as its end and the
 * rest as commands (SMTP smuggling).  Messages received over SMTP by our
 * own engine have CRLF lines and pass byte for byte.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "ar.h"
#include "gateway/smtpc.h"

#define LINE_MAX_BYTES 2048      /* one reply line */
#define IN_BUF         16384     /* a whole reply must fit */
#define OUT_BUF        65536
#define SRC_CHUNK      65536

struct smtpc {
	int fd;
	SSL *ssl;
	int broken;
	int dirty;                   /* a transaction may be open */
	unsigned ext;
	char label[300];
	char helo[256];
	int64_t cmd_ms, data_ms;
	char why[400];               /* the last I/O failure, in a sentence */
	size_t inlen, outlen;
	char in[IN_BUF];
	char out[OUT_BUF];
};

/* --- replies ------------------------------------------------------------------ */

/* "d.d{1,3}.d{1,3}" followed by a space or the end, class = cls: its
 * length, else 0. */
static size_t enhanced_len(const char *s, size_t len, char cls)
{
	size_t i = 0, k;

	if (len < 5 || s[0] != cls || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (k = 0; i < len && k < 3 && isdigit((unsigned char)s[i]);
		    k++)
			i++;
		if (k == 0)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	return i == len || s[i] == ' ' ? i : 0;
}

/* Append len bytes of s to dst (cap bytes, *dl used), control and 8-bit
 * bytes as ' ' and '?' (the text goes into JSON and DSNs). */
static void text_add(char *dst, size_t cap, size_t *dl, const char *s,
    size_t len)
{
	for (size_t i = 0; i < len && *dl + 1 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		dst[(*dl)++] = ch < 0x20 || ch == 0x7f ? ' ' : ch > 0x7f ? '?' :
		    (char)ch;
	}
	dst[*dl] = '\0';
}

int smtpc_reply_parse(const char *buf, size_t len, smtpc_reply_t *r,
    size_t *used)
{
	size_t pos = 0, tl = 0, ll = 0, el = 0;
	int code = 0, nlines = 0;

	r->code = 0;
	r->enhanced[0] = r->text[0] = r->lines[0] = '\0';
	for (;;) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t n, skip;
		char sep;
		int c;

		if (!nl)
			return len - pos > LINE_MAX_BYTES ? AR_EPROTO : AR_EAGAIN;
		n = (size_t)(nl - line);
		if (n && line[n - 1] == '\r')
			n--;
		if (n > LINE_MAX_BYTES || n < 3 || line[0] < '2' ||
		    line[0] > '5' || !isdigit((unsigned char)line[1]) ||
		    !isdigit((unsigned char)line[2]))
			return AR_EPROTO;
		c = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		if (nlines && c != code)
			return AR_EPROTO;
		code = c;
		sep = n > 3 ? line[3] : ' ';
		if (sep != ' ' && sep != '-')
			return AR_EPROTO;
		line += n > 3 ? 4 : 3;
		n -= n > 3 ? 4 : 3;
		/* the enhanced code: from the first line, repeated on others */
		if (nlines == 0 && (skip = enhanced_len(line, n, buf[0])) &&
		    skip < sizeof r->enhanced) {
			memcpy(r->enhanced, line, skip);
			r->enhanced[skip] = '\0';
			el = skip;
		} else if (el && n >= el && !memcmp(line, r->enhanced, el) &&
		    (n == el || line[el] == ' ')) {
			skip = el;
		} else {
			skip = 0;
		}
		if (skip) {
			line += skip;
			n -= skip;
			while (n && *line == ' ')
				line++, n--;
		}
		if (nlines && ll + 1 < sizeof r->lines) {
			r->lines[ll++] = '\n';
			r->lines[ll] = '\0';
		}
		text_add(r->lines, sizeof r->lines, &ll, line, n);
		if (nlines == 0) {
			char head[32];
			snprintf(head, sizeof head, "%d%s%s", code, el ? " " : "",
			    r->enhanced);
			text_add(r->text, sizeof r->text, &tl, head, strlen(head));
		}
		if (n) {
			text_add(r->text, sizeof r->text, &tl, " ", 1);
			text_add(r->text, sizeof r->text, &tl, line, n);
		}
		pos = (size_t)(nl - buf) + 1;
		nlines++;
		if (sep == ' ')
			break;
	}
	r->code = code;
	*used = pos;
	return 0;
}

/* --- I/O with deadlines ---------------------------------------------------------- */

static void set_why(smtpc_t *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_why(smtpc_t *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
}

static int64_t deadline_in(int64_t ms)
{
	return ar_mono_us() + (ms > 0 ? ms : 1) * 1000;
}

/* Wait for events on the socket until deadline: 0, AR_ETIMEOUT, AR_EIO. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { fd, events, 0 };
		int64_t left = deadline - ar_mono_us();
		int rc;

		if (left <= 0)
			return AR_ETIMEOUT;
		rc = poll(&pfd, 1, (int)((left + 999) / 1000));
		if (rc > 0)
			return 0;
		if (rc == 0)
			continue;       /* the loop checks the deadline */
		if (errno != EINTR)
			return AR_EIO;
	}
}

static const char *secs(int64_t ms, char *buf, size_t len)
{
	snprintf(buf, len, "%lld.%lld s", (long long)(ms / 1000),
	    (long long)(ms % 1000 / 100));
	return buf;
}

/* Read some bytes: > 0, or AR_ETIMEOUT / AR_EIO (c->why says what). */
static ssize_t io_read(smtpc_t *c, void *buf, size_t len, int64_t deadline,
    int64_t ms, const char *what)
{
	char t[32];

	for (;;) {
		short ev = POLLIN;
		int rc;

		if (c->ssl) {
			size_t got = 0;
			ERR_clear_error();
			if (SSL_read_ex(c->ssl, buf, len, &got) == 1)
				return (ssize_t)got;
			switch (SSL_get_error(c->ssl, 0)) {
			case SSL_ERROR_WANT_READ: ev = POLLIN; break;
			case SSL_ERROR_WANT_WRITE: ev = POLLOUT; break;
			case SSL_ERROR_ZERO_RETURN:
				set_why(c, "%s closed the connection %s", c->label,
				    what);
				return AR_EIO;
			default:
				set_why(c, "%s: TLS connection lost %s", c->label,
				    what);
				return AR_EIO;
			}
		} else {
			ssize_t n = read(c->fd, buf, len);
			if (n > 0)
				return n;
			if (n == 0) {
				set_why(c, "%s closed the connection %s", c->label,
				    what);
				return AR_EIO;
			}
			if (errno != EAGAIN && errno != EINTR) {
				set_why(c, "%s: connection lost %s: %s", c->label,
				    what, strerror(errno));
				return AR_EIO;
			}
			if (errno == EINTR)
				continue;
		}
		if ((rc = wait_fd(c->fd, ev, deadline))) {
			if (rc == AR_ETIMEOUT)
				set_why(c, "%s: timed out after %s %s", c->label,
				    secs(ms, t, sizeof t), what);
			else
				set_why(c, "%s: poll failed %s", c->label, what);
			return rc;
		}
	}
}

static int io_write(smtpc_t *c, const char *buf, size_t len, int64_t deadline,
    const char *what)
{
	char t[32];

	while (len) {
		short ev = POLLOUT;
		int rc;

		if (c->ssl) {
			size_t put = 0;
			ERR_clear_error();
			if (SSL_write_ex(c->ssl, buf, len, &put) == 1) {
				buf += put;
				len -= put;
				continue;
			}
			switch (SSL_get_error(c->ssl, 0)) {
			case SSL_ERROR_WANT_READ: ev = POLLIN; break;
			case SSL_ERROR_WANT_WRITE: ev = POLLOUT; break;
			default:
				set_why(c, "%s: TLS connection lost %s", c->label,
				    what);
				return AR_EIO;
			}
		} else {
			ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
			if (n > 0) {
				buf += n;
				len -= (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EAGAIN) {
				set_why(c, "%s: connection lost %s: %s", c->label,
				    what, strerror(errno));
				return AR_EIO;
			}
		}
		if ((rc = wait_fd(c->fd, ev, deadline))) {
			set_why(c, "%s: timed out after %s %s", c->label,
			    secs(c->cmd_ms, t, sizeof t), what);
			return rc;
		}
	}
	return 0;
}

static int flush(smtpc_t *c, const char *what)
{
	int rc;

	if (!c->outlen)
		return 0;
	rc = io_write(c, c->out, c->outlen, deadline_in(c->cmd_ms), what);
	c->outlen = 0;
	if (rc)
		c->broken = 1;
	return rc;
}

static int put(smtpc_t *c, const char *s, size_t len, const char *what)
{
	while (len) {
		size_t room = sizeof c->out - c->outlen, k = len < room ? len :
		    room;
		memcpy(c->out + c->outlen, s, k);
		c->outlen += k;
		s += k;
		len -= k;
		if (c->outlen == sizeof c->out) {
			int rc = flush(c, what);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int cmd(smtpc_t *c, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int cmd(smtpc_t *c, const char *what, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line - 2) {
		set_why(c, "%s: command too long", c->label);
		return AR_EINVAL;
	}
	memcpy(line + n, "\r\n", 2);
	return put(c, line, (size_t)n + 2, what);
}

/* Flush, then read one reply (waiting at most ms). */
static int reply(smtpc_t *c, smtpc_reply_t *r, int64_t ms, const char *what)
{
	int64_t deadline;
	int rc;

	if (c->broken)
		return AR_EIO;
	if ((rc = flush(c, what)))
		return rc;
	deadline = deadline_in(ms);
	for (;;) {
		size_t used;
		ssize_t n;

		rc = smtpc_reply_parse(c->in, c->inlen, r, &used);
		if (rc == 0) {
			memmove(c->in, c->in + used, c->inlen - used);
			c->inlen -= used;
			if (r->code == 421) {
				/* the server is closing the session */
				set_why(c, "%s closed the session %s: %s",
				    c->label, what, r->text);
				c->broken = 1;
			}
			return 0;
		}
		if (rc != AR_EAGAIN || c->inlen == sizeof c->in) {
			set_why(c, "%s: not an SMTP reply %s", c->label, what);
			c->broken = 1;
			return AR_EPROTO;
		}
		n = io_read(c, c->in + c->inlen, sizeof c->in - c->inlen,
		    deadline, ms, what);
		if (n < 0) {
			c->broken = 1;
			return (int)n;
		}
		c->inlen += (size_t)n;
	}
}

/* --- opening a session ----------------------------------------------------------- */

static void ehlo_ext(smtpc_t *c, const smtpc_reply_t *r)
{
	const char *l = strchr(r->lines, '\n');

	c->ext = 0;
	while (l) {
		const char *k = l + 1, *e = strchr(k, '\n');
		size_t n = e ? (size_t)(e - k) : strlen(k), w = 0;
		while (w < n && k[w] != ' ')
			w++;
#define KW(s, bit) if (w == sizeof(s) - 1 && !strncasecmp(k, s, w)) \
		c->ext |= bit
		KW("PIPELINING", SMTPC_EXT_PIPELINING);
		KW("SIZE", SMTPC_EXT_SIZE);
		KW("STARTTLS", SMTPC_EXT_STARTTLS);
		KW("8BITMIME", SMTPC_EXT_8BITMIME);
		KW("SMTPUTF8", SMTPC_EXT_SMTPUTF8);
		KW("ENHANCEDSTATUSCODES", SMTPC_EXT_ENHANCED);
#undef KW
		l = e;
	}
}

/* A refusal or failure into fail: the server's reply, or ours (code 0). */
static int fail_with(smtpc_reply_t *fail, int kind, const smtpc_reply_t *r,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_with(smtpc_reply_t *fail, int kind, const smtpc_reply_t *r,
    const char *fmt, ...)
{
	va_list ap;

	memset(fail, 0, sizeof *fail);
	if (r) {
		fail->code = r->code;
		ar_strlcpy(fail->enhanced, r->enhanced, sizeof fail->enhanced);
	}
	va_start(ap, fmt);
	vsnprintf(fail->text, sizeof fail->text, fmt, ap);
	va_end(ap);
	return kind;
}

/* EHLO (HELO after a 5xx); 0 or an enum smtpc_fail. */
static int hello(smtpc_t *c, smtpc_reply_t *r, smtpc_reply_t *fail)
{
	const char *what = "after EHLO";
	size_t w = 0;

	if (cmd(c, what, "EHLO %s", c->helo) || reply(c, r, c->cmd_ms, what))
		return fail_with(fail, SMTPC_ECONNECT, NULL, "%s", c->why);
	if (r->code / 100 == 5) {
		what = "after HELO";
		if (cmd(c, what, "HELO %s", c->helo) ||
		    reply(c, r, c->cmd_ms, what))
			return fail_with(fail, SMTPC_ECONNECT, NULL, "%s",
			    c->why);
		c->ext = 0;
	} else if (r->code == 250) {
		ehlo_ext(c, r);
	}
	if (r->code != 250)
		return fail_with(fail, SMTPC_EREFUSED, r, "%s refused %s: %s",
		    c->label, what + 6, r->text);
	while (r->lines[w] && r->lines[w] != ' ' && r->lines[w] != '\n')
		w++;
	if (w && w == strlen(c->helo) && !strncasecmp(r->lines, c->helo, w))
		return fail_with(fail, SMTPC_ELOOP, NULL, "mail for this domain "
		    "loops back to myself: %s greets as %s", c->label, c->helo);
	return 0;
}

static int connect_to(smtpc_t *c, const struct sockaddr *sa, socklen_t salen,
    int64_t ms, smtpc_reply_t *fail)
{
	int one = 1, err = 0, rc;
	socklen_t el = sizeof err;
	char t[32];

	c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return fail_with(fail, SMTPC_ECONNECT, NULL, "connect to %s: %s",
		    c->label, strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, sa, salen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return fail_with(fail, SMTPC_ECONNECT, NULL, "connect to %s: %s",
		    c->label, strerror(errno));
	if ((rc = wait_fd(c->fd, POLLOUT, deadline_in(ms))))
		return fail_with(fail, SMTPC_ECONNECT, NULL, "connect to %s: %s",
		    c->label, rc == AR_ETIMEOUT ? "timed out" : "poll failed");
	(void)t;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	if (err)
		return fail_with(fail, SMTPC_ECONNECT, NULL, "connect to %s: %s",
		    c->label, strerror(err));
	return 0;
}

/* The SHA-256 of the peer's SubjectPublicKeyInfo matches pin? */
static int pin_matches(SSL *ssl, const uint8_t pin[32], char hex[65])
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = 0;
	int len, ok = 0;

	hex[0] = '\0';
	if (!cert)
		return 0;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(),
	    NULL) == 1 && mdlen == 32) {
		ar_hex(md, 32, hex);
		ok = sodium_memcmp(md, pin, 32) == 0;
	}
	OPENSSL_free(der);
	X509_free(cert);
	return ok;
}

/* STARTTLS and the handshake: 0, or an enum smtpc_fail.  Opportunistic:
 * a 4xx/5xx to STARTTLS leaves the session in clear (RFC 3207 4.1). */
static int starttls(smtpc_t *c, const smtpc_params_t *p, smtpc_reply_t *r,
    smtpc_reply_t *fail)
{
	int verify = p->tls == STORE_TLS_VERIFY;
	int64_t deadline;
	char hex[65];
	int kind = verify ? SMTPC_ETLSREQ : SMTPC_ETLS;

	if (cmd(c, "after STARTTLS", "STARTTLS") ||
	    reply(c, r, c->cmd_ms, "after STARTTLS"))
		return fail_with(fail, SMTPC_ECONNECT, NULL, "%s", c->why);
	if (r->code != 220) {
		if (!verify)
			return 0;
		return fail_with(fail, SMTPC_ETLSREQ, NULL, "%s refused "
		    "STARTTLS (TLS policy verify): %s", c->label, r->text);
	}
	if (c->inlen) {
		/* bytes that came with the 220 would be read as if they had
		 * come over TLS (command injection, CVE-2011-0411 class) */
		c->broken = 1;
		return fail_with(fail, kind, NULL, "%s sent data after its "
		    "STARTTLS reply, before the TLS handshake", c->label);
	}
	if (!(c->ssl = SSL_new(p->ssl_ctx)) || SSL_set_fd(c->ssl, c->fd) != 1)
		return fail_with(fail, kind, NULL, "TLS with %s: out of "
		    "memory", c->label);
	if (p->tls_name)
		SSL_set_tlsext_host_name(c->ssl, p->tls_name);
	if (verify && !p->tls_pin) {
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
		if (p->tls_name)
			SSL_set1_host(c->ssl, p->tls_name);
		else if (p->tls_ip)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
			    p->tls_ip);
	} else {
		SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
	}
	deadline = deadline_in(c->cmd_ms);
	for (;;) {
		int rc, e;
		short ev;
		ERR_clear_error();
		if ((rc = SSL_connect(c->ssl)) == 1)
			break;
		e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
			if (wait_fd(c->fd, ev, deadline) == 0)
				continue;
			c->broken = 1;
			return fail_with(fail, kind, NULL, "TLS handshake with %s "
			    "timed out", c->label);
		}
		c->broken = 1;
		if (verify && SSL_get_verify_result(c->ssl) != X509_V_OK)
			return fail_with(fail, kind, NULL, "TLS: the certificate "
			    "of %s does not verify (TLS policy verify): %s",
			    c->label, X509_verify_cert_error_string(
			    SSL_get_verify_result(c->ssl)));
		{
			unsigned long le = ERR_peek_last_error();
			char eb[256];
			ERR_error_string_n(le, eb, sizeof eb);
			return fail_with(fail, kind, NULL, "TLS handshake with %s "
			    "failed: %s", c->label, le ? eb : "connection lost");
		}
	}
	if (verify && p->tls_pin && !pin_matches(c->ssl, p->tls_pin, hex)) {
		c->broken = 1;
		return fail_with(fail, SMTPC_ETLSREQ, NULL, "TLS: the public key "
		    "of %s does not match the pinned SHA-256 (TLS policy "
		    "verify; the server's is %s)", c->label, hex[0] ? hex :
		    "missing");
	}
	return 0;
}

int smtpc_open(smtpc_t **out, const struct sockaddr *sa, socklen_t salen,
    const char *label, const smtpc_params_t *p, smtpc_reply_t *fail)
{
	smtpc_t *c = calloc(1, sizeof *c);
	smtpc_reply_t r;
	int rc;

	*out = NULL;
	memset(fail, 0, sizeof *fail);
	if (!c)
		return AR_ENOMEM;
	c->fd = -1;
	ar_strlcpy(c->label, label, sizeof c->label);
	ar_strlcpy(c->helo, p->helo, sizeof c->helo);
	c->cmd_ms = p->command_timeout_ms;
	c->data_ms = p->data_timeout_ms;
	if ((rc = connect_to(c, sa, salen, p->connect_timeout_ms, fail)))
		goto bad;
	if (reply(c, &r, c->cmd_ms, "in the greeting")) {
		rc = fail_with(fail, SMTPC_ECONNECT, NULL, "%s", c->why);
		goto bad;
	}
	if (r.code != 220) {
		rc = fail_with(fail, SMTPC_EREFUSED, &r, "%s refused the "
		    "session: %s", c->label, r.text);
		goto bad;
	}
	if ((rc = hello(c, &r, fail)))
		goto bad;
	if (p->tls != STORE_TLS_NONE && !p->no_starttls) {
		if (c->ext & SMTPC_EXT_STARTTLS) {
			if ((rc = starttls(c, p, &r, fail)))
				goto bad;
			if (c->ssl && (rc = hello(c, &r, fail)))
				goto bad;
		} else if (p->tls == STORE_TLS_VERIFY) {
			rc = fail_with(fail, SMTPC_ETLSREQ, NULL, "%s does not "
			    "offer STARTTLS (TLS policy verify)", c->label);
			goto bad;
		}
	}
	*out = c;
	return 0;
bad:
	smtpc_close(c, c->broken ? 0 : 1000);
	return rc;
}

unsigned smtpc_ext(const smtpc_t *c)
{
	return c->ext;
}

const char *smtpc_tls_version(const smtpc_t *c)
{
	return c->ssl ? SSL_get_version(c->ssl) : NULL;
}

int smtpc_usable(const smtpc_t *c)
{
	return c && !c->broken;
}

int smtpc_clean(const smtpc_t *c)
{
	return c && !c->broken && !c->dirty;
}

int smtpc_alive(smtpc_t *c)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	char b;

	if (c->broken || c->inlen)
		return 0;
	if (poll(&pfd, 1, 0) == 0)
		return 1;
	if (c->ssl) {
		/* TLS records that are no data (a session ticket) are fine */
		size_t got = 0;
		ERR_clear_error();
		if (SSL_read_ex(c->ssl, c->in, sizeof c->in, &got) == 1) {
			c->inlen = got;
			c->broken = 1;
			return 0;
		}
		if (SSL_get_error(c->ssl, 0) == SSL_ERROR_WANT_READ)
			return 1;
	} else if (recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
	    (errno == EAGAIN || errno == EINTR)) {
		return 1;
	}
	c->broken = 1;      /* a 421, the end, or an error while idle */
	return 0;
}

int smtpc_reset(smtpc_t *c)
{
	smtpc_reply_t r;

	if (c->broken)
		return AR_EIO;
	if (cmd(c, "after RSET", "RSET") || reply(c, &r, c->cmd_ms,
	    "after RSET"))
		return AR_EIO;
	if (r.code != 250) {
		c->broken = 1;
		return AR_EPROTO;
	}
	c->dirty = 0;
	return 0;
}

void smtpc_close(smtpc_t *c, int64_t wait_ms)
{
	smtpc_reply_t r;

	if (!c)
		return;
	if (!c->broken && wait_ms > 0 && c->fd >= 0) {
		c->cmd_ms = wait_ms;
		if (cmd(c, "after QUIT", "QUIT") == 0)
			reply(c, &r, wait_ms, "after QUIT");
	}
	if (c->ssl) {
		if (!c->broken)
			SSL_shutdown(c->ssl);      /* one try, non-blocking */
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* --- a transaction ----------------------------------------------------------------- */

static void res_set(gw_rcpt_result_t *x, int code, const char *enhanced,
    const char *text)
{
	x->code = code;
	ar_strlcpy(x->enhanced, enhanced ? enhanced : "", sizeof x->enhanced);
	ar_strlcpy(x->text, text, sizeof x->text);
}

static void res_reply(gw_rcpt_result_t *x, const smtpc_reply_t *r)
{
	res_set(x, r->code, r->enhanced, r->text);
}

/* A control character would end the command early: never sent. */
static int clean_addr(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* The message bytes, dot-stuffed, bare CR/LF as CRLF. */
struct stuffer {
	int bol;                     /* at the start of a line */
	int cr;                      /* a CR seen, its LF not yet */
};

static int stuff(smtpc_t *c, struct stuffer *st, const char *s, size_t len)
{
	static const char *what = "while sending the message";
	size_t i = 0;

	while (i < len) {
		char *o = c->out + c->outlen;
		size_t room = sizeof c->out - c->outlen, k = 0;

		/* at most 3 bytes out per byte in */
		while (i < len && k + 3 <= room) {
			char ch = s[i];
			if (st->cr) {
				st->cr = 0;
				o[k++] = '\r';
				o[k++] = '\n';
				st->bol = 1;
				if (ch == '\n') {
					i++;
					continue;
				}
			}
			i++;
			if (ch == '\r') {
				st->cr = 1;
			} else if (ch == '\n') {
				o[k++] = '\r';
				o[k++] = '\n';
				st->bol = 1;
			} else {
				if (st->bol && ch == '.')
					o[k++] = '.';
				o[k++] = ch;
				st->bol = 0;
			}
		}
		c->outlen += k;
		if (sizeof c->out - c->outlen < 3) {
			int rc = flush(c, what);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Read src through the stuffer: 0, AR_EIO (the session, c->why) or the
 * source's own AR_* status, told apart by *src_failed. */
static int send_body(smtpc_t *c, const char *prepend, const gw_source_t *src,
    int *src_failed)
{
	struct stuffer st = { 1, 0 };
	char *buf = malloc(SRC_CHUNK);
	int rc = 0;

	*src_failed = 0;
	if (!buf) {
		*src_failed = 1;
		return AR_ENOMEM;
	}
	if (prepend && (rc = stuff(c, &st, prepend, strlen(prepend))))
		goto out;
	if ((rc = src->rewind(src->arg))) {
		*src_failed = 1;
		goto out;
	}
	for (;;) {
		size_t got = 0;
		if ((rc = src->read(src->arg, buf, SRC_CHUNK, &got))) {
			*src_failed = 1;
			goto out;
		}
		if (!got)
			break;
		if ((rc = stuff(c, &st, buf, got)))
			goto out;
	}
	if (st.cr) {
		st.cr = 0;
		st.bol = 0;          /* CR at the very end: CRLF below */
		if ((rc = put(c, "\r\n", 2, "while sending the message")))
			goto out;
		st.bol = 1;
	}
	if (!st.bol && (rc = put(c, "\r\n", 2, "while sending the message")))
		goto out;
	rc = put(c, ".\r\n", 3, "while sending the message");
out:
	free(buf);
	if (*src_failed)
		c->broken = 1;       /* inside DATA: nothing sane to send now */
	return rc;
}

int smtpc_send(smtpc_t *c, const char *mail_from, const char *const *rcpts,
    size_t n, const char *prepend, const gw_source_t *src,
    gw_rcpt_result_t *res, smtpc_reply_t *mail)
{
	int pipe = (c->ext & SMTPC_EXT_PIPELINING) != 0;
	int utf8 = !ascii(mail_from), src_failed = 0, rc = 0, data = 0;
	char size[40] = "";
	size_t accepted = 0, tosend = 0;
	/* per recipient: 0 not sent (refused here), 1 sent, 2 accepted */
	unsigned char *state = calloc(n ? n : 1, 1);
	gw_rcpt_result_t *out = calloc(n ? n : 1, sizeof *out);
	smtpc_reply_t r, dr;

	memset(mail, 0, sizeof *mail);
	memset(&dr, 0, sizeof dr);
	if (!state || !out) {
		rc = AR_ENOMEM;
		goto free;
	}
	for (size_t i = 0; i < n; i++)
		utf8 |= !ascii(rcpts[i]);
	for (size_t i = 0; i < n; i++) {
		if (!clean_addr(mail_from) || !clean_addr(rcpts[i])) {
			int rcpt_bad = clean_addr(mail_from);
			res_set(&out[i], 553, rcpt_bad ? "5.1.3" : "5.1.7",
			    rcpt_bad ? "553 5.1.3 (local) a control character "
			    "in the recipient address" : "553 5.1.7 (local) a "
			    "control character in the sender address");
			continue;
		}
		if (utf8 && !(c->ext & SMTPC_EXT_SMTPUTF8) &&
		    (!ascii(mail_from) || !ascii(rcpts[i]))) {
			/* RFC 6531 3.2: no non-ASCII address without it */
			res_set(&out[i], 553, "5.6.7", "553 5.6.7 (local) a "
			    "non-ASCII address, and the server does not offer "
			    "SMTPUTF8");
			continue;
		}
		state[i] = 1;
		tosend++;
	}
	if (!(c->ext & SMTPC_EXT_SMTPUTF8))
		utf8 = 0;
	if (!tosend)
		goto done;
	if (c->ext & SMTPC_EXT_SIZE)
		snprintf(size, sizeof size, " SIZE=%llu", (unsigned long long)
		    (src->size + (prepend ? strlen(prepend) : 0)));
	c->dirty = 1;
	/* with PIPELINING, MAIL, every RCPT and DATA go in one write */
	if (cmd(c, "after MAIL FROM", "MAIL FROM:<%s>%s%s", mail_from, size,
	    utf8 ? " SMTPUTF8" : ""))
		goto broken;
	if (!pipe && reply(c, mail, c->cmd_ms, "after MAIL FROM"))
		goto broken;
	if (pipe || mail->code / 100 == 2) {
		for (size_t i = 0; i < n; i++) {
			if (!state[i])
				continue;
			if (cmd(c, "after RCPT TO", "RCPT TO:<%s>", rcpts[i]))
				goto broken;
			if (pipe)
				continue;
			if (reply(c, &r, c->cmd_ms, "after RCPT TO"))
				goto broken;
			res_reply(&out[i], &r);
			if (r.code / 100 == 2) {
				state[i] = 2;
				accepted++;
			}
		}
	}
	if (pipe) {
		if (cmd(c, "after DATA", "DATA") ||
		    reply(c, mail, c->cmd_ms, "after MAIL FROM"))
			goto broken;
		for (size_t i = 0; i < n; i++) {
			if (!state[i])
				continue;
			if (reply(c, &r, c->cmd_ms, "after RCPT TO"))
				goto broken;
			res_reply(&out[i], &r);
			if (mail->code / 100 == 2 && r.code / 100 == 2) {
				state[i] = 2;
				accepted++;
			}
		}
		if (reply(c, &dr, c->cmd_ms, "after DATA"))
			goto broken;
		if (dr.code == 354 && (!accepted || mail->code / 100 != 2)) {
			/* a server that opens DATA without a recipient: an
			 * empty message it must refuse (RFC 2920 3.1) */
			data = 1;
			if (cmd(c, "after the end of the message", ".") ||
			    reply(c, &r, c->data_ms, "after the end of the "
			    "message"))
				goto broken;
		}
	}
	if (mail->code / 100 == 4) {
		c->dirty = 0;
		rc = SMTPC_EREFUSED;         /* res untouched: another host */
		goto free;
	}
	if (mail->code / 100 != 2) {
		c->dirty = 0;
		for (size_t i = 0; i < n; i++)
			if (state[i])
				res_reply(&out[i], mail);
		goto done;
	}
	if (!accepted) {
		smtpc_reset(c);              /* close the open transaction */
		goto done;
	}
	if (!pipe && (cmd(c, "after DATA", "DATA") || reply(c, &dr, c->cmd_ms,
	    "after DATA")))
		goto broken;
	if (dr.code != 354) {
		for (size_t i = 0; i < n; i++)
			if (state[i] == 2)
				res_reply(&out[i], &dr);
		smtpc_reset(c);
		goto done;
	}
	data = 1;
	if ((rc = send_body(c, prepend, src, &src_failed))) {
		if (src_failed)
			goto free;           /* a local failure: res untouched */
		rc = 0;
		goto broken;
	}
	if (reply(c, &r, c->data_ms, "after the end of the message"))
		goto broken;
	c->dirty = 0;
	for (size_t i = 0; i < n; i++)
		if (state[i] == 2)
			res_reply(&out[i], &r);
	goto done;
broken:
	/* the session broke: a refusal already read stands; the rest is
	 * unknown (an accepted recipient was not delivered either) */
	c->broken = 1;
	if (mail->code / 100 == 4) {
		rc = SMTPC_EREFUSED;         /* e.g. 421 to MAIL: another host */
		goto free;
	}
	if (mail->code / 100 == 5) {
		for (size_t i = 0; i < n; i++)
			if (state[i])
				res_reply(&out[i], mail);
		goto done;
	}
	if (!data) {
		/* nothing can have been delivered: another host may try */
		memset(mail, 0, sizeof *mail);
		ar_strlcpy(mail->text, c->why, sizeof mail->text);
		rc = SMTPC_ECONNECT;
		goto free;
	}
	for (size_t i = 0; i < n; i++)
		if (state[i] == 2 || (state[i] == 1 && !out[i].code))
			res_set(&out[i], 0, "", c->why);
done:
	for (size_t i = 0; i < n; i++) {
		res[i].code = out[i].code;
		ar_strlcpy(res[i].enhanced, out[i].enhanced,
		    sizeof res[i].enhanced);
		ar_strlcpy(res[i].text, out[i].text, sizeof res[i].text);
	}
free:
	free(state);
	free(out);
	return rc;
}
