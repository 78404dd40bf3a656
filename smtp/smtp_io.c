/*
 * smtp_io.c - socket and TLS reads and writes of a session, and reply
 * formatting (multi-line, enhanced status codes).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <openssl/err.h>

#include "smtp/smtp_int.h"

/*
 * Read what is available into the input buffer.  Returns the number of
 * bytes read (> 0), 0 when the read would block, AR_EIO on EOF or error.
 */
int smtp_io_read(struct smtp_session *s)
{
	size_t room = s->in_cap - s->in_len, got = 0;

	s->rd_wants_write = 0;
	if (!room)
		return 0;
	if (!s->ssl) {
		ssize_t n;

		do
			n = recv(s->fd, s->in + s->in_len, room, 0);
		while (n < 0 && errno == EINTR);
		if (n > 0) {
			s->in_len += (size_t)n;
			return (int)n;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return AR_EIO;
	}
	while (got < room) {
		size_t n = 0;
		int ok = SSL_read_ex(s->ssl, s->in + s->in_len, room - got, &n);

		if (ok) {
			s->in_len += n;
			got += n;
			continue;
		}
		switch (SSL_get_error(s->ssl, 0)) {
		case SSL_ERROR_WANT_READ:
			return (int)got;
		case SSL_ERROR_WANT_WRITE:
			s->rd_wants_write = 1;
			return (int)got;
		default:
			ERR_clear_error();
			return got ? (int)got : AR_EIO;
		}
	}
	return (int)got;
}

/* Write pending output.  0 (all written or would block) or AR_EIO. */
int smtp_io_flush(struct smtp_session *s)
{
	s->wr_wants_read = 0;
	while (s->out_off < s->out_len) {
		size_t left = s->out_len - s->out_off, n = 0;

		if (!s->ssl || s->handshake) {
			ssize_t w;

			if (s->ssl)     /* nothing is written mid-handshake */
				return 0;
			w = send(s->fd, s->out + s->out_off, left,
			    MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return 0;
				return AR_EIO;
			}
			n = (size_t)w;
		} else if (!SSL_write_ex(s->ssl, s->out + s->out_off, left,
		    &n)) {
			switch (SSL_get_error(s->ssl, 0)) {
			case SSL_ERROR_WANT_WRITE:
				return 0;
			case SSL_ERROR_WANT_READ:
				s->wr_wants_read = 1;
				return 0;
			default:
				ERR_clear_error();
				return AR_EIO;
			}
		}
		s->out_off += n;
	}
	s->out_off = s->out_len = 0;
	return 0;
}

void smtp_out_append(struct smtp_session *s, const void *buf, size_t len)
{
	if (s->out_off && s->out_off == s->out_len)
		s->out_off = s->out_len = 0;
	if (s->out_len + len > s->out_cap) {
		size_t cap = s->out_cap ? s->out_cap : 1024;
		unsigned char *p;

		if (s->out_off) {   /* compact first */
			memmove(s->out, s->out + s->out_off,
			    s->out_len - s->out_off);
			s->out_len -= s->out_off;
			s->out_off = 0;
		}
		while (cap < s->out_len + len)
			cap *= 2;
		if (cap != s->out_cap) {
			if (!(p = realloc(s->out, cap))) {
				/* cannot answer: end the session */
				s->closing = 1;
				s->close_reason = "out_of_memory";
				return;
			}
			s->out = p;
			s->out_cap = cap;
		}
	}
	memcpy(s->out + s->out_len, buf, len);
	s->out_len += len;
}

/* Append one reply line: "250-2.1.0 text\r\n" (sep '-' or ' '). */
static void reply_line(struct smtp_session *s, int code, char sep,
    const char *enh, const char *text, size_t len)
{
	char line[SMTP_REPLY_TEXT_MAX + 40];
	int n = snprintf(line, sizeof line, "%03d%c%s%s", code, sep, enh,
	    *enh ? " " : "");
	size_t k = (size_t)n;

	for (size_t i = 0; i < len && k < sizeof line - 3; i++) {
		unsigned char c = (unsigned char)text[i];
		line[k++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	line[k++] = '\r';
	line[k++] = '\n';
	smtp_out_append(s, line, k);
}

void smtp_send_reply(struct smtp_session *s, const struct smtp_reply *r)
{
	char enh[16];
	const char *t = r->text, *nl;
	int code = r->code;

	if (code < 200 || code > 599)
		code = 451;
	/* Enhanced codes must agree with the reply's class (RFC 3463);
	 * "-" means none (greeting, EHLO, 354). */
	if (!strcmp(r->enhanced, "-") ||
	    (!r->enhanced[0] && (code == 220 || code == 354)))
		enh[0] = '\0';
	else if (r->enhanced[0] - '0' == code / 100)
		ar_strlcpy(enh, r->enhanced, sizeof enh);
	else
		snprintf(enh, sizeof enh, "%d.0.0", code / 100);
	while ((nl = strchr(t, '\n')) != NULL) {
		reply_line(s, code, '-', enh, t, (size_t)(nl - t));
		t = nl + 1;
	}
	reply_line(s, code, ' ', enh, t, strlen(t));
}

void smtp_send(struct smtp_session *s, int code, const char *enhanced,
    const char *fmt, ...)
{
	struct smtp_reply r;
	va_list ap;

	r.code = code;
	ar_strlcpy(r.enhanced, enhanced ? enhanced : "", sizeof r.enhanced);
	va_start(ap, fmt);
	vsnprintf(r.text, sizeof r.text, fmt, ap);
	va_end(ap);
	smtp_send_reply(s, &r);
}
