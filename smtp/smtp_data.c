/*
 * smtp_data.c - the DATA phase: dot-unstuffing, end detection, line and
 * size limits, batching to data_write, and the asynchronous answer.
 *
 * Only <CR><LF>.<CR><LF> ends a message; a bare LF is message content (no
 * "\n.\n" smuggling).  The bytes handed to data_write are exactly those
 * sent, minus the dot-stuffing and the terminating ".<CR><LF>".
 */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_int.h"

enum { FAIL_NONE, FAIL_LINE, FAIL_SIZE, FAIL_WRITE };

void smtp_data_abort(struct smtp_session *s, int status)
{
	smtp_server_t *srv = s->srv;

	if (s->sink && srv->cb.data_abort)
		srv->cb.data_abort(srv->cb.arg, s->sink, status);
	s->sink = NULL;
	s->stage_len = 0;
}

void smtp_data_begin(struct smtp_session *s)
{
	smtp_server_t *srv = s->srv;
	struct smtp_reply r;

	if (!s->stage && !(s->stage = malloc(SMTP_STAGE_SIZE))) {
		smtp_send(s, 451, "4.3.0", "Out of memory");
		return;
	}
	s->sink = NULL;
	if (srv->cb.data_begin) {
		smtp_reply_set(&r, 451, "4.3.0", "Cannot accept messages now");
		s->sink = srv->cb.data_begin(srv->cb.arg, s, &r);
		if (!s->sink) {
			if (r.code / 100 != 4 && r.code / 100 != 5)
				smtp_reply_set(&r, 451, "4.3.0",
				    "Cannot accept messages now");
			smtp_send_reply(s, &r);
			return;
		}
	}
	s->st = SMTP_S_DATA;
	s->dst = SMTP_D_BOL;
	s->data_size = 0;
	s->line_len = 0;
	s->data_fail = FAIL_NONE;
	s->data_status = 0;
	s->stage_len = 0;
	s->data_start_us = ar_mono_us();
	smtp_send(s, 354, "", "End data with <CR><LF>.<CR><LF>");
	smtp_sess_set_timeout(s, srv->cfg.timeout_data_ms);
}

static void fail(struct smtp_session *s, int why, int status)
{
	if (s->data_fail)
		return;
	s->data_fail = why;
	smtp_data_abort(s, status);
}

static void stage_flush(struct smtp_session *s)
{
	smtp_server_t *srv = s->srv;
	int rc;

	if (s->sink && s->stage_len && srv->cb.data_write) {
		rc = srv->cb.data_write(srv->cb.arg, s->sink, s->stage,
		    s->stage_len);
		if (rc < 0) {
			s->data_status = rc;
			fail(s, FAIL_WRITE, rc);
		}
	}
	s->stage_len = 0;
}

static void finish(struct smtp_session *s)
{
	smtp_server_t *srv = s->srv;
	void *sink;
	smtp_token_t *tok;
	const char *reason = NULL;

	stage_flush(s);
	s->st = SMTP_S_READY;
	switch (s->data_fail) {
	case FAIL_LINE:
		reason = "line_too_long";
		smtp_send(s, 554, "5.6.0", "Message refused: a line is longer "
		    "than %lld bytes", (long long)srv->cfg.max_data_line);
		break;
	case FAIL_SIZE:
		reason = "too_big";
		smtp_send(s, 552, "5.3.4", "Message size exceeds fixed maximum "
		    "message size (%lld bytes)",
		    (long long)srv->cfg.max_message_size);
		break;
	case FAIL_WRITE:
		reason = "write_error";
		if (s->data_status == AR_ETOOBIG)
			smtp_send(s, 552, "5.3.4", "Message too big");
		else if (s->data_status == AR_ENOSPC)
			smtp_send(s, 452, "4.3.1", "Insufficient system "
			    "storage, try again later");
		else
			smtp_send(s, 451, "4.3.0", "Error while storing the "
			    "message, try again later");
		break;
	default:
		break;
	}
	if (reason) {
		ar_log(AR_LOG_INFO, "session=%s event=message result=rejected "
		    "reason=%s size=%lld rcpts=%zu", s->id, reason,
		    (long long)s->data_size, s->nrcpt);
		smtp_proto_reset(s);
		return;
	}
	if (!srv->cb.data_begin) {          /* no consumer: discard */
		smtp_send(s, 250, "2.0.0", "Ok: discarded");
		smtp_proto_reset(s);
		return;
	}
	if (!(tok = calloc(1, sizeof *tok))) {
		smtp_data_abort(s, AR_ENOMEM);
		smtp_send(s, 451, "4.3.0", "Out of memory");
		smtp_proto_reset(s);
		return;
	}
	tok->s = s;
	s->token = tok;
	pthread_mutex_lock(&srv->mu);
	srv->tokens_out++;
	pthread_mutex_unlock(&srv->mu);
	sink = s->sink;
	s->sink = NULL;                     /* the consumer owns it now */
	s->st = SMTP_S_WAIT_END;
	s->pause_read = 1;
	smtp_sess_set_timeout(s, srv->cfg.timeout_data_end_ms);
	if (srv->cb.data_end)
		srv->cb.data_end(srv->cb.arg, sink, s, tok);
	else
		smtp_session_reply(tok, 250, "2.0.0", "Ok");
}

/* Emit one content byte, enforcing the limits. */
static inline void emit(struct smtp_session *s, unsigned char c)
{
	if (c == '\n')
		s->line_len = 0;
	else if (++s->line_len > s->srv->cfg.max_data_line)
		fail(s, FAIL_LINE, AR_ETOOBIG);
	if (++s->data_size > s->srv->cfg.max_message_size)
		fail(s, FAIL_SIZE, AR_ETOOBIG);
	if (s->data_fail)
		return;
	s->stage[s->stage_len++] = c;
	if (s->stage_len == SMTP_STAGE_SIZE)
		stage_flush(s);
}

/* Consume message bytes; returns how many (up to the final ".\r\n"). */
size_t smtp_data_input(struct smtp_session *s, const unsigned char *buf,
    size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = buf[i];

		switch (s->dst) {
		case SMTP_D_BOL:
			if (c == '.') {
				s->dst = SMTP_D_DOT;
				continue;
			}
			break;
		case SMTP_D_DOT:        /* leading dot removed (RFC 5321 4.5.2) */
			if (c == '\r') {
				s->dst = SMTP_D_DOTCR;
				continue;
			}
			s->dst = SMTP_D_MID;
			break;
		case SMTP_D_DOTCR:
			if (c == '\n') {
				finish(s);
				return i + 1;
			}
			emit(s, '\r');
			s->dst = SMTP_D_CR;
			break;
		default:
			break;
		}
		emit(s, c);
		if (c == '\n')
			s->dst = s->dst == SMTP_D_CR ? SMTP_D_BOL : SMTP_D_MID;
		else
			s->dst = c == '\r' ? SMTP_D_CR : SMTP_D_MID;
	}
	stage_flush(s);
	return len;
}

/* The consumer answered (loop thread): tell the client, end the message. */
void smtp_data_answer(struct smtp_session *s, smtp_token_t *tok)
{
	smtp_server_t *srv = s->srv;

	if (s->st != SMTP_S_WAIT_END)
		return;
	smtp_send_reply(s, &tok->reply);
	if (tok->reply.code / 100 == 2)
		s->messages++;
	ar_log(AR_LOG_INFO, "session=%s event=message result=%d size=%lld "
	    "rcpts=%zu dur_ms=%lld", s->id, tok->reply.code,
	    (long long)s->data_size, s->nrcpt,
	    (long long)((ar_mono_us() - s->data_start_us) / 1000));
	s->st = SMTP_S_READY;
	s->pause_read = 0;
	smtp_proto_reset(s);
	smtp_sess_set_timeout(s, srv->cfg.timeout_command_ms);
	if (s->loop->stopping) {
		smtp_send(s, 421, "4.3.2", "%s Service shutting down",
		    srv->hostname);
		s->closing = 1;
		s->close_reason = "shutdown";
	}
}
