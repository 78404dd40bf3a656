/*
 * smtp_conf.c - the SMTP engine's configuration table, reply helper and
 * session accessors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp/smtp_int.h"

#define OFF(f) offsetof(struct smtp_config, f)

const struct ar_conf_def smtp_config_defs[] = {
	{ "smtp_hostname", AR_CONF_STR, OFF(hostname), "", 0, 0,
	  "host name in the banner and EHLO reply (empty: system host name)" },
	{ "smtp_tls_cert", AR_CONF_STR, OFF(tls_cert), "", 0, 0,
	  "PEM certificate chain for STARTTLS (empty: STARTTLS not offered)" },
	{ "smtp_tls_key", AR_CONF_STR, OFF(tls_key), "", 0, 0,
	  "PEM private key for smtp_tls_cert" },
	{ "smtp_max_connections", AR_CONF_INT, OFF(max_connections), "1000",
	  1, 1000000, "concurrent SMTP sessions, all clients" },
	{ "smtp_max_connections_per_ip", AR_CONF_INT,
	  OFF(max_connections_per_ip), "100", 1, 1000000,
	  "concurrent SMTP sessions from one client address" },
	{ "smtp_max_command_line", AR_CONF_SIZE, OFF(max_command_line),
	  "4096", 512, 65536, "longest command line accepted (RFC: 512)" },
	{ "smtp_max_data_line", AR_CONF_SIZE, OFF(max_data_line), "1M",
	  1000, 1073741824, "longest message line accepted (RFC: 1000)" },
	{ "smtp_max_recipients", AR_CONF_INT, OFF(max_recipients), "1000",
	  1, 1000000, "recipients per message (RFC minimum: 100)" },
	{ "smtp_max_message_size", AR_CONF_SIZE, OFF(max_message_size),
	  "200M", 1024, INT64_C(68719476736),
	  "largest message accepted, advertised in SIZE" },
	{ "smtp_max_errors", AR_CONF_INT, OFF(max_errors), "10", 1, 10000,
	  "protocol errors in a session before it is closed with 421" },
	{ "smtp_timeout_command", AR_CONF_MS, OFF(timeout_command_ms), "5m",
	  10, 86400000, "wait for a command (RFC 5321 4.5.3.2: 5 min)" },
	{ "smtp_timeout_data", AR_CONF_MS, OFF(timeout_data_ms), "3m",
	  10, 86400000, "wait for the next DATA block (RFC: 3 min)" },
	{ "smtp_timeout_data_end", AR_CONF_MS, OFF(timeout_data_end_ms),
	  "10m", 10, 86400000,
	  "wait for the message to be stored after \".\" (RFC: 10 min)" },
	{ "smtp_loops", AR_CONF_INT, OFF(loops), "2", 1, 64,
	  "event-loop threads serving the SMTP sessions (each serves many)" },
};

const size_t smtp_config_ndefs = AR_ARRAY_LEN(smtp_config_defs);

int smtp_config_defaults(struct smtp_config *cfg)
{
	char err[256];

	memset(cfg, 0, sizeof *cfg);
	return ar_conf_defaults(smtp_config_defs, smtp_config_ndefs, cfg, err,
	    sizeof err);
}

void smtp_reply_set(struct smtp_reply *r, int code, const char *enhanced,
    const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	ar_strlcpy(r->enhanced, enhanced ? enhanced : "", sizeof r->enhanced);
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof r->text, fmt, ap);
	va_end(ap);
}

const struct smtp_session_info *smtp_session_info(const smtp_session_t *s)
{
	return &s->info;
}

const char *smtp_session_mail_from(const smtp_session_t *s)
{
	return s->mail_from ? s->mail_from : "";
}

size_t smtp_session_rcpt_count(const smtp_session_t *s)
{
	return s->nrcpt;
}

const char *smtp_session_rcpt(const smtp_session_t *s, size_t i)
{
	return i < s->nrcpt ? s->rcpt[i] : NULL;
}

void smtp_session_set_udata(smtp_session_t *s, void *udata)
{
	s->udata = udata;
}

void *smtp_session_udata(const smtp_session_t *s)
{
	return s->udata;
}
