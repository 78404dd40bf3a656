/*
 * dsn.c - RFC 3464 delivery status notifications (relay.h gw_dsn_build).
 *
 * The report is a multipart/report; report-type=delivery-status (RFC 6522)
 * of three parts: a human-readable text, the machine-readable
 * message/delivery-status (per-message fields, then one block per
 * recipient), and text/rfc822-headers with the original's header (never
 * its body: a bounce must not carry the content back, and the header is
 * enough to recognise the message).  Header fields as RFC 5322 and
 * RFC 3834 (Auto-Submitted: auto-replied) want them; every line CRLF and
 * at most 998 bytes; values from the network (diagnostics, addresses)
 * lose their control characters.  An address that is not ASCII
 * (SMTPUTF8) makes the report message/global-delivery-status with
 * "utf-8;" address types (RFC 6533).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ar.h"
#include "gateway/relay.h"

#define LINE_LIMIT 998
#define FOLD_AT    76

static const char *date5322(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	return buf;
}

/* s without control characters (they become spaces), trimmed, at most
 * cap - 1 bytes. */
static char *clean(const char *s, char *buf, size_t cap)
{
	size_t n = 0;

	if (!s)
		s = "";
	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s && n + 1 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		buf[n++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	while (n && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	return buf;
}

static int has8bit(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* "Name: value", folded at spaces near FOLD_AT, and forcibly before
 * LINE_LIMIT when a word is longer. */
static void field(FILE *f, const char *name, const char *value)
{
	size_t col = strlen(name) + 2, len = strlen(value), i = 0;

	fprintf(f, "%s: ", name);
	while (i < len) {
		size_t rest = len - i, take = rest, room = FOLD_AT > col ?
		    FOLD_AT - col : 1;
		if (col + rest > FOLD_AT) {
			/* the last space within room, else the first after */
			size_t sp = 0, k;
			for (k = 1; k < rest && k <= room; k++)
				if (value[i + k] == ' ')
					sp = k;
			if (!sp)
				for (k = room + 1; k < rest && !sp; k++)
					if (value[i + k] == ' ')
						sp = k;
			take = sp ? sp : rest;
			if (col + take > LINE_LIMIT - 2)
				take = LINE_LIMIT - 2 - col;
		}
		fwrite(value + i, 1, take, f);
		i += take;
		if (i < len) {
			fputs("\r\n", f);
			if (value[i] != ' ') {
				fputc(' ', f);
				col = 1;
			} else {
				col = 0;
			}
		}
		col += take;
	}
	fputs("\r\n", f);
}

/* The original's header: at most max bytes of src, up to its empty line
 * (or the last whole line within max). *out malloc'd, *len bytes. */
static int orig_header(const gw_source_t *src, size_t max, char **out,
    size_t *len)
{
	char *buf = malloc(max + 1);
	size_t have = 0, end = 0;
	int rc;

	*out = NULL;
	*len = 0;
	if (!buf)
		return AR_ENOMEM;
	if ((rc = src->rewind(src->arg))) {
		free(buf);
		return rc;
	}
	while (have < max) {
		size_t got = 0;
		if ((rc = src->read(src->arg, buf + have, max - have, &got))) {
			free(buf);
			return rc;
		}
		if (!got)
			break;
		have += got;
	}
	buf[have] = '\0';
	/* whole lines up to the empty one that ends the header; a last
	 * line without its end only when the message ends there */
	for (size_t pos = 0; pos < have;) {
		char *nl = memchr(buf + pos, '\n', have - pos);
		if (!nl) {
			if (have < max)
				end = have;
			break;
		}
		if (nl == buf + pos || (nl == buf + pos + 1 && buf[pos] == '\r'))
			break;
		pos = end = (size_t)(nl - buf) + 1;
	}
	*out = buf;
	*len = end;
	return 0;
}

/* The header lines as CRLF lines of at most LINE_LIMIT bytes. */
static void put_header_lines(FILE *f, const char *h, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i, n;
		while (j < len && h[j] != '\n')
			j++;
		n = j - i;
		if (n && h[i + n - 1] == '\r')
			n--;
		if (n > LINE_LIMIT)
			n = LINE_LIMIT;
		for (size_t k = 0; k < n; k++) {
			char ch = h[i + k];
			fputc(ch == '\r' ? ' ' : ch, f);
		}
		fputs("\r\n", f);
		i = j + 1;
	}
}

static int status_ok(const char *s, char cls)
{
	size_t n = strlen(s ? s : ""), i = 2, k;

	if (n < 5 || n > 9 || s[0] != cls || s[1] != '.')
		return 0;
	for (int part = 0; part < 2; part++) {
		for (k = 0; i < n && k < 3 && isdigit((unsigned char)s[i]); k++)
			i++;
		if (!k || (part == 0 && (i >= n || s[i++] != '.')))
			return 0;
	}
	return i == n;
}

int gw_dsn_build(const char *reporting_mta, const char *orig_sender,
    const char *queue_id, int64_t arrival, const gw_dsn_rcpt_t *rcpts,
    size_t n, const gw_source_t *src, size_t hdr_max, char **out,
    size_t *outlen)
{
	char *hdr = NULL, *text = NULL, mta[256], sender[600], date[64];
	char boundary[64], rnd[16], hex[33], msgid[400], to[620], rmta[300];
	size_t hlen = 0, tlen = 0;
	int failed = 0, utf8 = 0, eight, rc;
	FILE *f;

	*out = NULL;
	*outlen = 0;
	if (!n || !rcpts)
		return AR_EINVAL;
	if ((rc = orig_header(src, hdr_max, &hdr, &hlen)))
		return rc;
	clean(reporting_mta, mta, sizeof mta);
	if (!mta[0])
		ar_strlcpy(mta, "localhost", sizeof mta);
	clean(orig_sender, sender, sizeof sender);
	for (size_t i = 0; i < n; i++) {
		failed |= !rcpts[i].action || strcmp(rcpts[i].action, "delayed");
		utf8 |= has8bit(rcpts[i].rcpt);
	}
	utf8 |= has8bit(sender);
	eight = utf8;
	for (size_t i = 0; i < hlen && !eight; i++)
		eight = (unsigned char)hdr[i] >= 0x80;
	for (size_t i = 0; i < n && !eight; i++)
		eight = has8bit(rcpts[i].diagnostic);
	/* a boundary that the enclosed header cannot contain */
	do {
		randombytes_buf(rnd, sizeof rnd);
		snprintf(boundary, sizeof boundary, "=_archived_dsn_%s",
		    ar_hex(rnd, sizeof rnd, hex));
	} while (hlen && memmem(hdr, hlen, boundary, strlen(boundary)));
	randombytes_buf(rnd, 8);
	snprintf(msgid, sizeof msgid, "<%lld.%s.dsn@%s>", (long long)ar_now(),
	    ar_hex(rnd, 8, hex), mta);
	snprintf(to, sizeof to, "<%s>", sender);
	snprintf(rmta, sizeof rmta, "dns; %s", mta);

	if (!(f = open_memstream(&text, &tlen))) {
		free(hdr);
		return AR_ENOMEM;
	}
	/* --- the message header --- */
	fprintf(f, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", mta);
	field(f, "To", to);
	fprintf(f, "Subject: %s\r\n", failed ?
	    "Undelivered Mail Returned to Sender" :
	    "Delayed Mail (still being retried)");
	fprintf(f, "Date: %s\r\n", date5322(ar_now(), date, sizeof date));
	fprintf(f, "Message-ID: %s\r\n", msgid);
	fprintf(f, "Auto-Submitted: auto-replied\r\n");
	fprintf(f, "MIME-Version: 1.0\r\n");
	fprintf(f, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary);
	if (eight)
		fprintf(f, "Content-Transfer-Encoding: 8bit\r\n");
	fprintf(f, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	/* --- 1. for people --- */
	fprintf(f, "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=%s\r\n%s\r\n", boundary,
	    eight ? "utf-8" : "us-ascii",
	    eight ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	fprintf(f, "This is the mail system at %s.\r\n\r\n", mta);
	if (failed)
		fprintf(f, "Your message could not be delivered to one or more "
		    "of its\r\nrecipients. The reason is given for each below; "
		    "a delivery\r\nreport and the header of your message are "
		    "attached.\r\n\r\n");
	else
		fprintf(f, "Your message has not been delivered yet to the "
		    "recipients\r\nbelow. It is still being retried; you will "
		    "be told if it finally\r\nfails. This is only a "
		    "warning.\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		char r[600], d[900], who[700];
		clean(rcpts[i].rcpt, r, sizeof r);
		clean(rcpts[i].diagnostic, d, sizeof d);
		snprintf(who, sizeof who, "<%s> (%s)", r, rcpts[i].action &&
		    !strcmp(rcpts[i].action, "delayed") ? "delayed" : "failed");
		/* "who: reason", folded as a header field would be */
		field(f, who, d[0] ? d : "no reason given");
		fputs("\r\n", f);
	}

	/* --- 2. for programs --- */
	fprintf(f, "--%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/%sdelivery-status\r\n\r\n", boundary,
	    utf8 ? "global-" : "");
	field(f, "Reporting-MTA", rmta);
	if (queue_id && queue_id[0]) {
		char q[128];
		field(f, "X-Archived-Queue-ID", clean(queue_id, q, sizeof q));
	}
	if (arrival > 0)
		field(f, "Arrival-Date", date5322(arrival, date, sizeof date));
	for (size_t i = 0; i < n; i++) {
		const gw_dsn_rcpt_t *x = &rcpts[i];
		int delayed = x->action && !strcmp(x->action, "delayed");
		char r[600], v[1200], d[900], m[300], *br;
		fputs("\r\n", f);
		clean(x->rcpt, r, sizeof r);
		snprintf(v, sizeof v, "%s; %s", has8bit(r) ? "utf-8" : "rfc822",
		    r);
		field(f, "Final-Recipient", v);
		field(f, "Action", delayed ? "delayed" : "failed");
		field(f, "Status", status_ok(x->status, delayed ? '4' : '5') ||
		    (!delayed && status_ok(x->status, '4')) ? x->status :
		    delayed ? "4.0.0" : "5.0.0");
		clean(x->remote_mta, m, sizeof m);
		if ((br = strchr(m, '[')))
			*br = '\0';
		clean(m, m, sizeof m);
		if (m[0]) {
			snprintf(v, sizeof v, "dns; %s", m);
			field(f, "Remote-MTA", v);
		}
		clean(x->diagnostic, d, sizeof d);
		if (d[0]) {
			int smtp = strlen(d) >= 3 && d[0] >= '2' && d[0] <= '5' &&
			    isdigit((unsigned char)d[1]) &&
			    isdigit((unsigned char)d[2]) && (!d[3] || d[3] == ' ');
			snprintf(v, sizeof v, "%s; %s", smtp ? "smtp" :
			    "X-Archived", d);
			field(f, "Diagnostic-Code", v);
		}
		if (x->last_attempt > 0)
			field(f, "Last-Attempt-Date", date5322(x->last_attempt,
			    date, sizeof date));
	}
	fputs("\r\n", f);

	/* --- 3. the original's header --- */
	fprintf(f, "--%s\r\nContent-Description: Undelivered Message "
	    "Headers\r\nContent-Type: text/rfc822-headers\r\n%s\r\n",
	    boundary, eight ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	put_header_lines(f, hdr, hlen);
	fprintf(f, "\r\n--%s--\r\n", boundary);
	free(hdr);
	if (fclose(f) != 0 || !text) {
		free(text);
		return AR_ENOMEM;
	}
	*out = text;
	*outlen = tlen;
	return 0;
}
