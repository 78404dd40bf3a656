/*
 * smtp_proto.c - command lines, the RFC 5321 state machine and the
 * envelope (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY, HELP,
 * STARTTLS; AUTH is in smtp_auth.c, message bytes in smtp_data.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_int.h"

void smtp_proto_reset(struct smtp_session *s)
{
	free(s->mail_from);
	s->mail_from = NULL;
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	s->nrcpt = 0;
	s->params.size = -1;
	s->params.body_8bit = 0;
	s->params.smtputf8 = 0;
	if (s->st == SMTP_S_MAIL)
		s->st = SMTP_S_READY;
}

int smtp_proto_error(struct smtp_session *s, int code, const char *enhanced,
    const char *text)
{
	smtp_send(s, code, enhanced, "%s", text);
	if (++s->errors >= s->srv->cfg.max_errors) {
		smtp_send(s, 421, "4.7.0", "%s Error: too many errors, "
		    "closing connection", s->srv->hostname);
		s->closing = 1;
		s->close_reason = "too_many_errors";
	}
	return 0;
}

/* --- paths -------------------------------------------------------------- */

/*
 * Parse "<path>" at *p (after "FROM:" / "TO:").  On success the address
 * (without brackets and source route) is NUL-terminated in place, *addr
 * points to it, *rest to the parameters.  *utf8 says whether it has
 * non-ASCII bytes.  0, or -1 for a syntax error.
 */
static int parse_path(char *p, char **addr, char **rest, int *utf8)
{
	char *a, *q;
	int quoted = 0;

	while (*p == ' ')
		p++;               /* "MAIL FROM: <a@b>" is common */
	if (*p != '<')
		return -1;
	a = ++p;
	if (*a == '@') {           /* source route "@a,@b:" is ignored */
		if (!(q = strchr(a, ':')))
			return -1;
		a = p = q + 1;
	}
	*utf8 = 0;
	for (q = p; *q; q++) {
		unsigned char c = (unsigned char)*q;

		if (c < 0x20 || c == 0x7f)
			return -1;
		if (c >= 0x80)
			*utf8 = 1;
		if (quoted && c == '\\' && q[1]) {
			q++;
			continue;
		}
		if (c == '"')
			quoted = !quoted;
		else if (!quoted && (c == '>' || c == ' ' || c == '<'))
			break;
	}
	if (*q != '>' || quoted || q - a >= SMTP_PATH_MAX)
		return -1;
	*q++ = '\0';
	if (*q && *q != ' ')
		return -1;
	while (*q == ' ')
		q++;
	*addr = a;
	*rest = q;
	return 0;
}

/* A mailbox needs "local@domain" with both parts non-empty. */
static int mailbox_ok(const char *a)
{
	const char *at = strrchr(a, '@');

	return at && at != a && at[1] && !strchr(at, '"');
}

static int prefix(const char *s, const char *p)
{
	return !strncasecmp(s, p, strlen(p));
}

/* --- commands ----------------------------------------------------------- */

static void cmd_helo(struct smtp_session *s, char *arg, int esmtp)
{
	smtp_server_t *srv = s->srv;
	char text[512];
	int n;

	if (!*arg || strchr(arg, ' ')) {
		smtp_proto_error(s, 501, "5.5.4", esmtp ?
		    "Syntax: EHLO hostname" : "Syntax: HELO hostname");
		return;
	}
	smtp_proto_reset(s);
	ar_strlcpy(s->helo, arg, sizeof s->helo);
	s->info.esmtp = esmtp;
	s->st = SMTP_S_READY;
	if (!esmtp) {
		smtp_send(s, 250, "-", "%s", srv->hostname);
		return;
	}
	n = snprintf(text, sizeof text, "%s\nPIPELINING\nSIZE %lld\n"
	    "8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES", srv->hostname,
	    (long long)srv->cfg.max_message_size);
	if (srv->tls && !s->ssl)
		n += snprintf(text + n, sizeof text - n, "\nSTARTTLS");
	if (s->ssl && srv->cb.auth)
		n += snprintf(text + n, sizeof text - n, "\nAUTH PLAIN LOGIN");
	snprintf(text + n, sizeof text - n, "\nHELP");
	smtp_send(s, 250, "-", "%s", text);
}

static int parse_mail_params(struct smtp_session *s, char *p,
    struct smtp_mail_params *mp)
{
	char *tok, *save = NULL;

	mp->size = -1;
	mp->body_8bit = mp->smtputf8 = 0;
	if (*p && !s->info.esmtp) {
		smtp_proto_error(s, 555, "5.5.4", "MAIL parameters need EHLO");
		return -1;
	}
	for (tok = strtok_r(p, " ", &save); tok;
	    tok = strtok_r(NULL, " ", &save)) {
		if (prefix(tok, "SIZE=")) {
			char *end;
			unsigned long long v;

			if (!isdigit((unsigned char)tok[5]) ||
			    strlen(tok + 5) > 19) {
				smtp_proto_error(s, 501, "5.5.4",
				    "Bad SIZE parameter");
				return -1;
			}
			v = strtoull(tok + 5, &end, 10);
			if (*end) {
				smtp_proto_error(s, 501, "5.5.4",
				    "Bad SIZE parameter");
				return -1;
			}
			if (v > (unsigned long long)s->srv->cfg.max_message_size) {
				smtp_send(s, 552, "5.3.4", "Message size "
				    "exceeds fixed maximum message size (%lld "
				    "bytes)",
				    (long long)s->srv->cfg.max_message_size);
				return -1;
			}
			mp->size = (int64_t)v;
		} else if (!strcasecmp(tok, "BODY=8BITMIME")) {
			mp->body_8bit = 1;
		} else if (!strcasecmp(tok, "BODY=7BIT")) {
			mp->body_8bit = 0;
		} else if (!strcasecmp(tok, "SMTPUTF8")) {
			mp->smtputf8 = 1;
		} else if (prefix(tok, "AUTH=")) {
			/* RFC 4954 5: accepted, not trusted */
		} else {
			smtp_proto_error(s, 555, "5.5.4",
			    "Unsupported MAIL parameter");
			return -1;
		}
	}
	return 0;
}

static void cmd_mail(struct smtp_session *s, char *arg)
{
	smtp_server_t *srv = s->srv;
	struct smtp_mail_params mp;
	struct smtp_reply r;
	char *addr, *rest;
	int utf8;

	if (s->st == SMTP_S_INIT) {
		smtp_proto_error(s, 503, "5.5.1", "Send HELO/EHLO first");
		return;
	}
	if (s->st != SMTP_S_READY) {
		smtp_proto_error(s, 503, "5.5.1", "Nested MAIL command");
		return;
	}
	if (!prefix(arg, "FROM:") ||
	    parse_path(arg + 5, &addr, &rest, &utf8) < 0 ||
	    (*addr && !mailbox_ok(addr))) {
		smtp_proto_error(s, 501, "5.1.7",
		    "Syntax: MAIL FROM:<address> [parameters]");
		return;
	}
	if (parse_mail_params(s, rest, &mp) < 0)
		return;
	if (utf8 && !mp.smtputf8) {
		smtp_send(s, 553, "5.6.7",
		    "Non-ASCII address needs the SMTPUTF8 parameter");
		return;
	}
	smtp_reply_set(&r, 250, "2.1.0", "Ok");
	if (srv->cb.mail_from)
		srv->cb.mail_from(srv->cb.arg, s, addr, &mp, &r);
	if (r.code / 100 == 2) {
		if (!(s->mail_from = strdup(addr))) {
			smtp_send(s, 451, "4.3.0", "Out of memory");
			return;
		}
		s->params = mp;
		s->st = SMTP_S_MAIL;
	} else if (r.code / 100 != 4 && r.code / 100 != 5) {
		r.code = 451;
	}
	smtp_send_reply(s, &r);
}

static int rcpt_add(struct smtp_session *s, const char *addr)
{
	if (s->nrcpt == s->rcpt_cap) {
		size_t cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
		char **p = realloc(s->rcpt, cap * sizeof *p);

		if (!p)
			return AR_ENOMEM;
		s->rcpt = p;
		s->rcpt_cap = cap;
	}
	if (!(s->rcpt[s->nrcpt] = strdup(addr)))
		return AR_ENOMEM;
	s->nrcpt++;
	return 0;
}

static void cmd_rcpt(struct smtp_session *s, char *arg)
{
	smtp_server_t *srv = s->srv;
	struct smtp_reply r;
	char *addr, *rest;
	int utf8;

	if (s->st != SMTP_S_MAIL) {
		smtp_proto_error(s, 503, "5.5.1", "Need MAIL before RCPT");
		return;
	}
	if (!prefix(arg, "TO:") ||
	    parse_path(arg + 3, &addr, &rest, &utf8) < 0 ||
	    (!mailbox_ok(addr) && strcasecmp(addr, "postmaster"))) {
		smtp_proto_error(s, 501, "5.1.3",
		    "Syntax: RCPT TO:<address>");
		return;
	}
	if (*rest) {
		smtp_proto_error(s, 555, "5.5.4",
		    "Unsupported RCPT parameter");
		return;
	}
	if (utf8 && !s->params.smtputf8) {
		smtp_send(s, 553, "5.6.7",
		    "Non-ASCII address needs the SMTPUTF8 parameter");
		return;
	}
	if (s->nrcpt >= (size_t)srv->cfg.max_recipients) {
		smtp_send(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	smtp_reply_set(&r, 250, "2.1.5", "Ok");
	if (srv->cb.rcpt_to)
		srv->cb.rcpt_to(srv->cb.arg, s, addr, &r);
	if (r.code / 100 == 2) {
		if (rcpt_add(s, addr) < 0)
			smtp_reply_set(&r, 451, "4.3.0", "Out of memory");
	} else if (r.code / 100 != 4 && r.code / 100 != 5) {
		r.code = 451;
	}
	smtp_send_reply(s, &r);
}

static void cmd_data(struct smtp_session *s, char *arg)
{
	if (*arg) {
		smtp_proto_error(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (s->st != SMTP_S_MAIL) {
		smtp_proto_error(s, 503, "5.5.1", s->st == SMTP_S_INIT ?
		    "Send HELO/EHLO first" : "Need MAIL command");
		return;
	}
	if (!s->nrcpt) {
		smtp_send(s, 554, "5.5.1", "No valid recipients");
		return;
	}
	smtp_data_begin(s);
}

static void cmd_starttls(struct smtp_session *s, char *arg)
{
	if (!s->srv->tls) {
		smtp_proto_error(s, 502, "5.5.1", "STARTTLS not available");
		return;
	}
	if (s->ssl) {
		smtp_proto_error(s, 503, "5.5.1", "TLS already active");
		return;
	}
	if (*arg) {
		smtp_proto_error(s, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	smtp_send(s, 220, "2.0.0", "Ready to start TLS");
	/* RFC 3207 4.2: forget everything learned before TLS. */
	smtp_proto_reset(s);
	s->st = SMTP_S_INIT;
	s->helo[0] = '\0';
	s->info.esmtp = 0;
	s->starttls_pending = 1;
	s->pause_read = 1;
}

static void cmd_help(struct smtp_session *s)
{
	smtp_send(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET "
	    "NOOP QUIT VRFY HELP%s%s\nSee RFC 5321",
	    s->srv->tls && !s->ssl ? " STARTTLS" : "",
	    s->ssl && s->srv->cb.auth ? " AUTH" : "");
}

static void handle_line(struct smtp_session *s, char *line)
{
	char *arg = line;

	if (s->st == SMTP_S_AUTH) {
		smtp_auth_line(s, line);
		return;
	}
	while (*arg && *arg != ' ')
		arg++;
	if (*arg)
		*arg++ = '\0';
	while (*arg == ' ')
		arg++;

	if (!strcasecmp(line, "EHLO"))
		cmd_helo(s, arg, 1);
	else if (!strcasecmp(line, "HELO"))
		cmd_helo(s, arg, 0);
	else if (!strcasecmp(line, "MAIL"))
		cmd_mail(s, arg);
	else if (!strcasecmp(line, "RCPT"))
		cmd_rcpt(s, arg);
	else if (!strcasecmp(line, "DATA"))
		cmd_data(s, arg);
	else if (!strcasecmp(line, "RSET")) {
		if (*arg) {
			smtp_proto_error(s, 501, "5.5.4", "Syntax: RSET");
			return;
		}
		smtp_proto_reset(s);
		smtp_send(s, 250, "2.0.0", "Ok");
	} else if (!strcasecmp(line, "NOOP"))
		smtp_send(s, 250, "2.0.0", "Ok");
	else if (!strcasecmp(line, "QUIT")) {
		smtp_send(s, 221, "2.0.0", "Bye");
		s->closing = 1;
		s->close_reason = "quit";
	} else if (!strcasecmp(line, "VRFY")) {
		if (!*arg)
			smtp_proto_error(s, 501, "5.5.4", "Syntax: VRFY address");
		else
			smtp_send(s, 252, "2.5.0", "Cannot VRFY user, but "
			    "will accept message and attempt delivery");
	} else if (!strcasecmp(line, "HELP"))
		cmd_help(s);
	else if (!strcasecmp(line, "STARTTLS"))
		cmd_starttls(s, arg);
	else if (!strcasecmp(line, "AUTH"))
		smtp_auth_command(s, arg);
	else if (!strcasecmp(line, "EXPN") || !strcasecmp(line, "BDAT") ||
	    !strcasecmp(line, "ETRN") || !strcasecmp(line, "TURN"))
		smtp_proto_error(s, 502, "5.5.1", "Command not implemented");
	else
		smtp_proto_error(s, 500, "5.5.2", "Command unrecognized");
}

/* Check one command line (without CRLF) for forbidden bytes. */
static const char *line_problem(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\0')
			return "NUL character in command";
		if (p[i] == '\r')
			return "bare <CR> in command";
		if (p[i] < 0x20 && p[i] != '\t')
			return "control character in command";
	}
	return NULL;
}

static int can_continue(const struct smtp_session *s)
{
	return !s->closing && !s->pause_read && !s->starttls_pending &&
	    s->st != SMTP_S_WAIT_END &&
	    s->out_len - s->out_off < SMTP_OUT_HIGH;
}

/* Consume buffered input: command lines, or message bytes in DATA. */
void smtp_proto_input(struct smtp_session *s)
{
	size_t off = 0, maxl = (size_t)s->srv->cfg.max_command_line;

	while (off < s->in_len && can_continue(s)) {
		unsigned char *p = s->in + off, *lf;
		size_t avail = s->in_len - off, len;
		const char *why;

		if (s->st == SMTP_S_DATA) {
			off += smtp_data_input(s, p, avail);
			continue;
		}
		if (!(lf = memchr(p, '\n', avail))) {
			if (s->discard_line) {
				off = s->in_len;
			} else if (avail >= maxl) {
				s->discard_line = 1;
				off = s->in_len;
				smtp_proto_error(s, 500, "5.5.6",
				    "Line too long");
			}
			break;
		}
		len = (size_t)(lf - p) + 1;
		off += len;
		if (s->discard_line) {
			s->discard_line = 0;
			continue;
		}
		if (len > maxl) {
			smtp_proto_error(s, 500, "5.5.6", "Line too long");
			continue;
		}
		if (len < 2 || p[len - 2] != '\r') {
			smtp_proto_error(s, 500, "5.5.2", "Bare <LF> received; "
			    "lines must end with <CR><LF>");
			continue;
		}
		if ((why = line_problem(p, len - 2)) != NULL) {
			smtp_proto_error(s, 500, "5.5.2", why);
			continue;
		}
		p[len - 2] = '\0';
		handle_line(s, (char *)p);
		if (s->starttls_pending) {
			off = s->in_len;   /* RFC 3207: drop pipelined plaintext */
			break;
		}
	}
	if (off) {
		memmove(s->in, s->in + off, s->in_len - off);
		s->in_len -= off;
	}
}
