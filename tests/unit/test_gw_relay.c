/*
 * test_gw_relay.c - the relay's delivery layer (gateway/relay.h) against
 * real servers: Postfix's smtp-sink (byte-identical dumps, refusals and
 * drops on command), our smtp_testd (tests/tools: exact bytes, per
 * recipient refusals, STARTTLS with the certificates made here, session
 * counters), Knot DNS serving a test zone on a high port (MX order, no MX,
 * null MX, AAAA), and raw sockets that accept and say nothing.  Plus the
 * reply parser and the DSN builder, whose output GMime parses back.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ar.h"
#include "gateway/relay.h"
#include "gateway/smtpc.h"
#include "mime/mime.h"
#include "testlib.h"

static char *tmp;
static const char *bindir;

/* --- processes and ports ----------------------------------------------------------- */

#define MAXPROC 32
static pid_t procs[MAXPROC];

static void procs_kill(void)
{
	for (int i = 0; i < MAXPROC; i++)
		if (procs[i] > 0) {
			kill(procs[i], SIGTERM);
			waitpid(procs[i], NULL, 0);
			procs[i] = 0;
		}
}

static void proc_stop(pid_t pid)
{
	for (int i = 0; i < MAXPROC; i++)
		if (procs[i] == pid) {
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
			procs[i] = 0;
		}
}

/* Start argv; its stdout on *outfd when outfd, else /dev/null. */
static pid_t spawn(char *const argv[], int *outfd, const char *logpath)
{
	int p[2] = { -1, -1 };
	pid_t pid;

	if (outfd && pipe(p) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		int lf = open(logpath ? logpath : "/dev/null", O_WRONLY |
		    O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(outfd ? p[1] : lf, 1);
		dup2(lf, 2);
		if (outfd)
			close(p[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (outfd) {
		close(p[1]);
		*outfd = p[0];
	}
	for (int i = 0; i < MAXPROC; i++)
		if (!procs[i]) {
			procs[i] = pid;
			break;
		}
	return pid;
}

/* A port free for TCP (and UDP) on addr. */
static unsigned free_port(const char *addr)
{
	for (int tries = 0; tries < 100; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t sl = sizeof sa;
		int t = socket(AF_INET, SOCK_STREAM, 0), u;
		unsigned port;
		inet_pton(AF_INET, addr, &sa.sin_addr);
		if (bind(t, (void *)&sa, sizeof sa) < 0 ||
		    getsockname(t, (void *)&sa, &sl) < 0)
			abort();
		port = ntohs(sa.sin_port);
		u = socket(AF_INET, SOCK_DGRAM, 0);
		if (bind(u, (void *)&sa, sizeof sa) == 0) {
			close(u);
			close(t);
			return port;
		}
		close(u);
		close(t);
	}
	abort();
}

static int can_connect(const char *addr, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *v4 = (void *)&ss;
	struct sockaddr_in6 *v6 = (void *)&ss;
	socklen_t sl;
	int fd, ok;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		sl = sizeof *v4;
	} else {
		inet_pton(AF_INET6, addr, &v6->sin6_addr);
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		sl = sizeof *v6;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	ok = connect(fd, (void *)&ss, sl) == 0;
	close(fd);
	return ok;
}

static void wait_listening(const char *addr, unsigned port)
{
	for (int i = 0; i < 3000; i++) {      /* 30 s at most */
		if (can_connect(addr, port))
			return;
		usleep(10000);
	}
	fprintf(stderr, "nothing listens on %s:%u\n", addr, port);
	abort();
}

/* smtp_testd in dir (made here) on addr:port (0: any), domain relay.test,
 * counters on; extra arguments after.  Returns its port. */
static unsigned testd(const char *dir, const char *addr, unsigned port,
    const char *const *extra, pid_t *pidp)
{
	char *argv[40], bin[1024], portstr[16], line[64], log[1100];
	size_t n = 0, k = 0;
	int fd;
	pid_t pid;

	mkdir(dir, 0700);
	snprintf(bin, sizeof bin, "%s/tests/tools/smtp_testd", bindir);
	snprintf(portstr, sizeof portstr, "%u", port);
	snprintf(log, sizeof log, "%s.log", dir);
	argv[n++] = bin;
	argv[n++] = "-d";
	argv[n++] = (char *)dir;
	argv[n++] = "-D";
	argv[n++] = "relay.test";
	argv[n++] = "-l";
	argv[n++] = (char *)addr;
	argv[n++] = "-p";
	argv[n++] = portstr;
	argv[n++] = "-S";
	while (extra && extra[k] && n < AR_ARRAY_LEN(argv) - 1)
		argv[n++] = (char *)extra[k++];
	argv[n] = NULL;
	pid = spawn(argv, &fd, log);
	/* "port=N" once it listens */
	{
		struct pollfd pfd = { fd, POLLIN, 0 };
		size_t got = 0;
		while (got < sizeof line - 1 && poll(&pfd, 1, 30000) > 0) {
			ssize_t r = read(fd, line + got, 1);
			if (r <= 0 || line[got] == '\n')
				break;
			got++;
		}
		line[got] = '\0';
	}
	close(fd);
	if (strncmp(line, "port=", 5)) {
		fprintf(stderr, "smtp_testd did not start (%s)\n", log);
		abort();
	}
	if (pidp)
		*pidp = pid;
	return (unsigned)atoi(line + 5);
}

/* Postfix's smtp-sink on addr:port with options; dump (may be NULL) is
 * the -d template's directory. */
static pid_t sink(const char *addr, unsigned port, const char *dump,
    const char *const *opts)
{
	char *argv[32], where[128], tmpl[1100], log[1100];
	size_t n = 0;

	argv[n++] = "smtp-sink";
	if (getuid() == 0) {
		argv[n++] = "-u";
		argv[n++] = "nobody";
	}
	if (dump) {
		mkdir(dump, 0777);
		chmod(dump, 0777);
		snprintf(tmpl, sizeof tmpl, "%s/m.", dump);
		argv[n++] = "-d";
		argv[n++] = tmpl;
	}
	while (opts && *opts)
		argv[n++] = (char *)*opts++;
	snprintf(where, sizeof where, "%s:%u", addr, port);
	argv[n++] = where;
	argv[n++] = "64";
	argv[n] = NULL;
	snprintf(log, sizeof log, "%s/smtp-sink.log", tmp);
	pid_t pid = spawn(argv, NULL, log);
	wait_listening(addr, port);
	return pid;
}

struct stats {
	unsigned connects, mails, active, max_active;
};

static struct stats stats_of(const char *dir)
{
	struct stats s = { 0, 0, 0, 0 };
	char path[1100], line[128];
	FILE *f;

	snprintf(path, sizeof path, "%s/stats", dir);
	if (!(f = fopen(path, "r")))
		return s;
	while (fgets(line, sizeof line, f)) {
		sscanf(line, "connects=%u", &s.connects);
		sscanf(line, "mails=%u", &s.mails);
		sscanf(line, "active=%u", &s.active);
		sscanf(line, "max_active=%u", &s.max_active);
	}
	fclose(f);
	return s;
}

static char *slurp(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	size_t n = 0;

	if (ar_file_read(path, 64 << 20, &buf, &n))
		return NULL;
	if (len)
		*len = n;
	buf = realloc(buf, n + 1);
	buf[n] = '\0';
	return (char *)buf;
}

/* --- sources and relays -------------------------------------------------------------- */

struct mem {
	const char *p;
	size_t len, pos;
	int fail_at;                 /* read error after this many reads */
	int reads;
};

static int mem_rewind(void *a)
{
	struct mem *m = a;
	m->pos = 0;
	m->reads = 0;
	return 0;
}

static int mem_read(void *a, void *buf, size_t len, size_t *got)
{
	struct mem *m = a;

	if (m->fail_at && ++m->reads >= m->fail_at)
		return AR_EIO;
	if (len > m->len - m->pos)
		len = m->len - m->pos;
	if (len > 7000)
		len = 7000;          /* several reads per message */
	memcpy(buf, m->p + m->pos, len);
	m->pos += len;
	*got = len;
	return 0;
}

static gw_source_t source(struct mem *m, const char *text, size_t len)
{
	gw_source_t s = { mem_rewind, mem_read, m, len };
	memset(m, 0, sizeof *m);
	m->p = text;
	m->len = len;
	return s;
}

static const char *dns_addr;   /* "127.0.0.1:port" of knotd */
static unsigned mx_port;

static gw_relay_t *relay_new(int64_t cmd_ms, int per_host, int idle_ms)
{
	gw_relay_opts_t o;
	gw_relay_t *r = NULL;

	memset(&o, 0, sizeof o);
	o.hostname = "relay-test.archived.example";
	o.connect_timeout_ms = 5000;
	o.command_timeout_ms = cmd_ms;
	o.data_timeout_ms = cmd_ms;
	o.max_per_host = per_host;
	o.idle_keep_ms = idle_ms;
	o.dns_server = dns_addr;
	o.mx_port = mx_port;
	if (gw_relay_new(&r, &o))
		abort();
	return r;
}

static void domain(store_domain_t *d, int tls, const char *r1,
    const char *r2)
{
	memset(d, 0, sizeof *d);
	ar_strlcpy(d->name, "relay.test", sizeof d->name);
	d->tls = tls;
	if (r1)
		ar_strlcpy(d->routes[d->n_routes++], r1, sizeof d->routes[0]);
	if (r2)
		ar_strlcpy(d->routes[d->n_routes++], r2, sizeof d->routes[0]);
}

/* A message of about size bytes, CRLF lines, some starting with '.'. */
static char *make_msg(size_t size, const char *subject)
{
	char *m = malloc(size + 4096);
	size_t n = 0, line = 0;

	n += (size_t)sprintf(m, "From: Alice <alice@sender.test>\r\n"
	    "To: bob@relay.test\r\nSubject: %s\r\nMessage-ID: "
	    "<%s@sender.test>\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n", subject,
	    subject);
	while (n < size) {
		if (line % 7 == 3)
			n += (size_t)sprintf(m + n, ".line %zu starts with a dot\r\n",
			    line);
		else if (line % 11 == 5)
			n += (size_t)sprintf(m + n, ".\r\n");   /* a lone dot */
		else
			n += (size_t)sprintf(m + n, "line %zu of the quarterly "
			    "report, nothing to see here\r\n", line);
		line++;
	}
	m[n] = '\0';
	return m;
}

static const char *PREPEND = "Received: from sender.test ([192.0.2.1])\r\n"
    "\tby relay-test.archived.example (archived gateway) with ESMTP id "
    "0123abcd;\r\n\tMon, 1 Jun 2026 10:00:01 +0000\r\n";

/* --- 1. the reply parser --------------------------------------------------------------- */

static void test_reply_parse(void)
{
	smtpc_reply_t r;
	size_t used = 0;
	const char *ehlo = "250-mx.example greets you\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n"
	    "220 next";

	CHECK_RC(smtpc_reply_parse(ehlo, strlen(ehlo), &r, &used), 0);
	CHECK(r.code == 250 && used == strlen(ehlo) - strlen("220 next"));
	CHECK(!strcmp(r.lines, "mx.example greets you\nPIPELINING\n"
	    "SIZE 10240000\nSTARTTLS\nENHANCEDSTATUSCODES"));
	CHECK(r.enhanced[0] == '\0');
	CHECK(!strncmp(r.text, "250 mx.example greets you PIPELINING", 36));

	const char *rej = "550-5.1.1 <bob@relay.test>: Recipient address\r\n"
	    "550-5.1.1 rejected: User unknown\r\n550 5.1.1 in local table\r\n";
	CHECK_RC(smtpc_reply_parse(rej, strlen(rej), &r, &used), 0);
	CHECK(r.code == 550 && !strcmp(r.enhanced, "5.1.1"));
	CHECK(!strcmp(r.text, "550 5.1.1 <bob@relay.test>: Recipient address "
	    "rejected: User unknown in local table"));
	CHECK(used == strlen(rej));

	/* bare LF lines; a code alone; the enhanced code must match */
	CHECK_RC(smtpc_reply_parse("250\n", 4, &r, &used), 0);
	CHECK(r.code == 250 && used == 4 && !strcmp(r.text, "250"));
	CHECK_RC(smtpc_reply_parse("250 5.1.1 odd\r\n", 15, &r, &used), 0);
	CHECK(r.enhanced[0] == '\0' && !strcmp(r.text, "250 5.1.1 odd"));
	CHECK_RC(smtpc_reply_parse("451 4.7.1 Try later\r\n", 21, &r, &used),
	    0);
	CHECK(!strcmp(r.enhanced, "4.7.1") && !strcmp(r.text,
	    "451 4.7.1 Try later"));
	CHECK_RC(smtpc_reply_parse("250 2.1.5.9 x\r\n", 15, &r, &used), 0);
	CHECK(r.enhanced[0] == '\0');
	/* incomplete: no line end yet, or a continuation pending */
	CHECK_RC(smtpc_reply_parse("250 ok", 6, &r, &used), AR_EAGAIN);
	CHECK_RC(smtpc_reply_parse("250-a\r\n250-b\r\n", 14, &r, &used),
	    AR_EAGAIN);
	CHECK_RC(smtpc_reply_parse("", 0, &r, &used), AR_EAGAIN);
	/* not replies */
	CHECK_RC(smtpc_reply_parse("250-a\r\n251 b\r\n", 14, &r, &used),
	    AR_EPROTO);
	CHECK_RC(smtpc_reply_parse("hello\r\n", 7, &r, &used), AR_EPROTO);
	CHECK_RC(smtpc_reply_parse("25\r\n", 4, &r, &used), AR_EPROTO);
	CHECK_RC(smtpc_reply_parse("650 no\r\n", 8, &r, &used), AR_EPROTO);
	CHECK_RC(smtpc_reply_parse("250:x\r\n", 7, &r, &used), AR_EPROTO);
	{
		char big[5000];
		memset(big, 'x', sizeof big);
		memcpy(big, "250 ", 4);
		CHECK_RC(smtpc_reply_parse(big, sizeof big, &r, &used),
		    AR_EPROTO);
	}
	/* control and 8-bit bytes never reach the text */
	CHECK_RC(smtpc_reply_parse("554 bad\tthing \x01\xc3\xa9\r\n", 20, &r,
	    &used), 0);
	CHECK(!strcmp(r.text, "554 bad thing  ??"));
}

/* --- 2. DSNs ------------------------------------------------------------------------------ */

static char *unfold(const char *s)
{
	char *o = malloc(strlen(s) + 1);
	size_t n = 0;

	for (; *s; s++) {
		if (s[0] == '\r' && s[1] == '\n' && (s[2] == ' ' || s[2] == '\t')) {
			s += 1;      /* drop CRLF, keep the space */
			continue;
		}
		o[n++] = *s;
	}
	o[n] = '\0';
	return o;
}

static char *part_text(GMimeObject *o)
{
	GMimeStream *ms = g_mime_stream_mem_new();
	GByteArray *ba;
	char *s;

	if (GMIME_IS_PART(o))
		g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(
		    GMIME_PART(o)), ms);
	else if (GMIME_IS_MESSAGE_PART(o))
		g_mime_object_write_to_stream(GMIME_OBJECT(
		    g_mime_message_part_get_message(GMIME_MESSAGE_PART(o))),
		    NULL, ms);
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
	s = strndup((const char *)ba->data, ba->len);
	g_object_unref(ms);
	return s;
}

static void check_lines(const char *text, size_t len)
{
	int bare = 0, longl = 0;
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n') {
			if (!i || text[i - 1] != '\r')
				bare++;
			col = 0;
			continue;
		}
		if (text[i] == '\r' && (i + 1 >= len || text[i + 1] != '\n'))
			bare++;
		if (text[i] != '\r' && ++col > 998)
			longl++;
	}
	CHECK(bare == 0);
	CHECK(longl == 0);
	CHECK(len >= 2 && text[len - 2] == '\r' && text[len - 1] == '\n');
}

static void test_dsn(void)
{
	char *orig, *text = NULL, *ds, *hd, *hum, longdiag[1200], longhdr[2100];
	size_t len = 0, olen;
	struct mem m;
	gw_source_t src;
	gw_dsn_rcpt_t rc[3];

	memset(longhdr, 'h', sizeof longhdr);
	memcpy(longhdr, "X-Long: ", 8);
	longhdr[sizeof longhdr - 1] = '\0';
	if (asprintf(&orig, "Subject: Quarterly figures\r\nFrom: "
	    "alice@sender.test\r\n%s\r\nTo: bob@relay.test\r\n\r\nSECRET BODY "
	    "LINE\r\n--=_archived_dsn_fake\r\n", longhdr) < 0)
		abort();
	olen = strlen(orig);
	memset(longdiag, 'd', sizeof longdiag);
	memcpy(longdiag, "550 5.7.1 ", 10);
	longdiag[sizeof longdiag - 1] = '\0';
	memset(rc, 0, sizeof rc);
	rc[0].rcpt = "bob@relay.test";
	rc[0].action = "failed";
	rc[0].status = "5.1.1";
	rc[0].remote_mta = "mx2.relay.test[127.0.0.3]:2525";
	rc[0].diagnostic = "550 5.1.1 <bob@relay.test>: Recipient address "
	    "rejected: User unknown";
	rc[0].last_attempt = 1780308000;
	rc[1].rcpt = "carol@relay.test";
	rc[1].action = "failed";
	rc[1].status = "4.4.7";
	rc[1].diagnostic = "queue lifetime of 7 days expired; last reply: "
	    "connect to mx[192.0.2.9]:25: Connection refused\r\nInjected: yes";
	rc[1].last_attempt = 1780308000;
	rc[2].rcpt = "dave@relay.test";
	rc[2].action = "failed";
	rc[2].status = "bogus";
	rc[2].diagnostic = longdiag;

	src = source(&m, orig, olen);
	CHECK_RC(gw_dsn_build("relay-test.archived.example", "alice@sender.test",
	    "00112233445566778899aabbccddeeff", 1780300000, rc, 3, &src, 65536,
	    &text, &len), 0);
	check_lines(text, len);
	CHECK(strstr(text, "SECRET BODY") == NULL);
	CHECK(strstr(text, "\r\nInjected: yes") == NULL);

	GMimeStream *st = g_mime_stream_mem_new_with_buffer(text, len);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *msg = g_mime_parser_construct_message(p, NULL);
	CHECK(msg != NULL);
	if (!msg)
		goto out;
	GMimeObject *top = g_mime_message_get_mime_part(msg);
	GMimeContentType *ct = g_mime_object_get_content_type(top);
	CHECK(g_mime_content_type_is_type(ct, "multipart", "report"));
	CHECK(!g_strcmp0(g_mime_content_type_get_parameter(ct, "report-type"),
	    "delivery-status"));
	CHECK(!g_strcmp0(g_mime_object_get_header(GMIME_OBJECT(msg),
	    "Auto-Submitted"), "auto-replied"));
	CHECK(!g_strcmp0(g_mime_object_get_header(GMIME_OBJECT(msg),
	    "MIME-Version"), "1.0"));
	CHECK(strstr(g_mime_object_get_header(GMIME_OBJECT(msg), "From"),
	    "MAILER-DAEMON@relay-test.archived.example") != NULL);
	CHECK(!g_strcmp0(g_mime_object_get_header(GMIME_OBJECT(msg), "To"),
	    "<alice@sender.test>"));
	CHECK(!g_strcmp0(g_mime_message_get_subject(msg),
	    "Undelivered Mail Returned to Sender"));
	CHECK(g_mime_message_get_message_id(msg) != NULL);
	CHECK(g_mime_message_get_date(msg) != NULL);
	CHECK(GMIME_IS_MULTIPART(top) &&
	    g_mime_multipart_get_count(GMIME_MULTIPART(top)) == 3);
	if (!GMIME_IS_MULTIPART(top) ||
	    g_mime_multipart_get_count(GMIME_MULTIPART(top)) != 3)
		goto out;
	GMimeObject *p0 = g_mime_multipart_get_part(GMIME_MULTIPART(top), 0);
	GMimeObject *p1 = g_mime_multipart_get_part(GMIME_MULTIPART(top), 1);
	GMimeObject *p2 = g_mime_multipart_get_part(GMIME_MULTIPART(top), 2);
	CHECK(g_mime_content_type_is_type(g_mime_object_get_content_type(p0),
	    "text", "plain"));
	CHECK(g_mime_content_type_is_type(g_mime_object_get_content_type(p1),
	    "message", "delivery-status"));
	CHECK(g_mime_content_type_is_type(g_mime_object_get_content_type(p2),
	    "text", "rfc822-headers"));
	hum = part_text(p0);
	{
		char *raw = part_text(p1);
		ds = unfold(raw);
		free(raw);
	}
	hd = part_text(p2);
	CHECK(strstr(hum, "<bob@relay.test> (failed): 550 5.1.1") != NULL);
	CHECK(strstr(ds, "Reporting-MTA: dns; relay-test.archived.example\r\n")
	    != NULL);
	CHECK(strstr(ds, "X-Archived-Queue-ID: 00112233445566778899aabbccddeeff"
	    "\r\n") != NULL);
	CHECK(strstr(ds, "Arrival-Date: Mon, 01 Jun 2026 07:46:40 +0000\r\n")
	    != NULL);
	CHECK(strstr(ds, "\r\n\r\nFinal-Recipient: rfc822; bob@relay.test\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx2.relay.test"
	    "\r\nDiagnostic-Code: smtp; 550 5.1.1 <bob@relay.test>: Recipient "
	    "address rejected: User unknown\r\nLast-Attempt-Date: Mon, 01 Jun "
	    "2026 10:00:00 +0000\r\n") != NULL);
	CHECK(strstr(ds, "Final-Recipient: rfc822; carol@relay.test\r\n"
	    "Action: failed\r\nStatus: 4.4.7\r\nDiagnostic-Code: X-Archived; "
	    "queue lifetime of 7 days expired; last reply: connect to "
	    "mx[192.0.2.9]:25: Connection refused  Injected: yes\r\n") != NULL);
	CHECK(strstr(ds, "Final-Recipient: rfc822; dave@relay.test\r\n"
	    "Action: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp; 550 "
	    "5.7.1 ddd") != NULL);
	CHECK(strstr(hd, "Subject: Quarterly figures\r\n") != NULL);
	CHECK(strstr(hd, "To: bob@relay.test\r\n") != NULL);
	CHECK(strstr(hd, "SECRET") == NULL);
	free(hum);
	free(ds);
	free(hd);
out:
	if (msg)
		g_object_unref(msg);
	g_object_unref(p);
	g_object_unref(st);
	free(text);

	/* delayed; the header read at most hdr_max bytes, cut at a line */
	rc[0].action = "delayed";
	rc[0].status = "4.4.1";
	src = source(&m, orig, olen);
	text = NULL;
	CHECK_RC(gw_dsn_build("relay-test.archived.example", "alice@sender.test",
	    NULL, 0, rc, 1, &src, 40, &text, &len), 0);
	check_lines(text, len);
	CHECK(strstr(text, "Subject: Delayed Mail (still being retried)\r\n")
	    != NULL);
	CHECK(strstr(text, "Action: delayed\r\nStatus: 4.4.1\r\n") != NULL);
	CHECK(strstr(text, "Subject: Quarterly figures\r\n") != NULL);
	CHECK(strstr(text, "From: alice@sender.test") == NULL);
	CHECK(strstr(text, "Arrival-Date") == NULL);
	free(text);
	CHECK_RC(gw_dsn_build("h", "a@b", NULL, 0, rc, 0, &src, 10, &text,
	    &len), AR_EINVAL);
	free(orig);
}

/* --- 3. delivery to smtp-sink: byte-identical ------------------------------------------------ */

/* LF lines of s (CRLF -> LF). */
static char *to_lf(const char *s)
{
	char *o = malloc(strlen(s) + 1);
	size_t n = 0;

	for (; *s; s++)
		if (!(s[0] == '\r' && s[1] == '\n'))
			o[n++] = *s;
	o[n] = '\0';
	return o;
}

/* The last line of LF text s with its LF, then the empty line smtp-sink
 * adds: how its dump of s ends. */
static char *last_line(const char *s)
{
	const char *p = s + strlen(s) - 1;
	char *t;

	while (p > s && p[-1] != '\n')
		p--;
	if (asprintf(&t, "%s\n", p) < 0)
		abort();
	return t;
}

/* The one file in dir, its content once it ends with the message. */
static char *sink_dump(const char *dir, const char *tail)
{
	for (int i = 0; i < 3000; i++) {
		char path[1200] = "", *c;
		int files = 0;
		DIR *d = opendir(dir);
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.') {
				files++;
				snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
			}
		if (d)
			closedir(d);
		if (files == 1 && (c = slurp(path, NULL))) {
			if (strlen(c) >= strlen(tail) && !strcmp(c + strlen(c) -
			    strlen(tail), tail)) {
				unlink(path);
				return c;
			}
			free(c);
		}
		usleep(10000);
	}
	return NULL;
}

static void test_sink_identical(void)
{
	char dump[1100], route[64], *msg = make_msg(10240, "sink-identical");
	unsigned port = free_port("127.0.0.1");
	const char *rcpts[] = { "bob@relay.test", "carol@relay.test" };
	gw_rcpt_result_t res[2];
	store_domain_t d;
	struct mem m;
	gw_source_t src = source(&m, msg, strlen(msg));
	gw_relay_t *r = relay_new(10000, 4, 0);
	char *expect, *dumped, *body, *tail;
	pid_t pid;

	snprintf(dump, sizeof dump, "%s/sinkdump", tmp);
	pid = sink("127.0.0.1", port, dump, NULL);
	snprintf(route, sizeof route, "127.0.0.1:%u", port);
	domain(&d, STORE_TLS_NONE, route, NULL);
	CHECK_RC(gw_relay_send(r, &d, "alice@sender.test", rcpts, 2, PREPEND,
	    &src, res), 0);
	CHECK(res[0].code == 250 && res[1].code == 250);
	CHECK(!strncmp(res[0].text, "250 2.0.0 Ok", 12));
	CHECK(!strcmp(res[0].enhanced, "2.0.0"));
	snprintf(route, sizeof route, "127.0.0.1[127.0.0.1]:%u", port);
	CHECK(!strcmp(res[0].host, route));
	{
		char *all;
		if (asprintf(&all, "%s%s", PREPEND, msg) < 0)
			abort();
		expect = to_lf(all);
		free(all);
	}
	tail = last_line(expect);
	dumped = sink_dump(dump, tail);
	free(tail);
	CHECK(dumped != NULL);
	if (dumped && getenv("AR_TEST_VERBOSE"))
		fprintf(stderr, "smtp-sink dump:\n%s\n", dumped);
	if (dumped) {
		/* smtp-sink's own lines, its Received (3 lines), then ours */
		CHECK(strstr(dumped, "X-Mail-Args: <alice@sender.test>\n") != NULL);
		CHECK(strstr(dumped, "X-Rcpt-Args: <bob@relay.test>\n"
		    "X-Rcpt-Args: <carol@relay.test>\n") != NULL);
		body = strstr(dumped, "\nReceived: from ");
		for (int k = 0; body && k < 3; k++)
			body = strchr(body + 1, '\n');
		CHECK(body != NULL);
		if (body) {
			size_t el = strlen(expect);
			body++;
			CHECK(strlen(body) == el + 1 && !memcmp(body, expect, el) &&
			    body[el] == '\n');
		}
		free(dumped);
	}
	free(expect);

	/* the null sender */
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "", rcpts, 1, NULL, &src, res), 0);
	CHECK(res[0].code == 250);
	{
		char *lf = to_lf(msg);
		tail = last_line(lf);
		dumped = sink_dump(dump, tail);
		CHECK(dumped && strstr(dumped, "X-Mail-Args: <>\n") !=
		    NULL);
		free(dumped);
		free(tail);
		free(lf);
	}
	/* a non-ASCII recipient, and smtp-sink offers no SMTPUTF8: that one
	 * refused here (RFC 6531), the other delivered */
	{
		const char *mixed[] = { "j\xc3\xb6rg@relay.test",
			"bob@relay.test" };
		char *lf = to_lf(msg);
		src = source(&m, msg, strlen(msg));
		CHECK_RC(gw_relay_send(r, &d, "alice@sender.test", mixed, 2,
		    NULL, &src, res), 0);
		CHECK(res[0].code == 553 && !strcmp(res[0].enhanced, "5.6.7"));
		CHECK(res[1].code == 250);
		tail = last_line(lf);
		dumped = sink_dump(dump, tail);
		CHECK(dumped && strstr(dumped, "X-Rcpt-Args: <bob@relay.test>\n"
		    "Received:") != NULL);
		free(dumped);
		free(tail);
		free(lf);
	}
	gw_relay_free(r);
	proc_stop(pid);
	free(msg);
}

/* --- 4. smtp_testd: exact bytes, per-recipient results, reuse ------------------------------- */

static void test_testd_exact(void)
{
	char dir[1100], route[64], path[1200], *msg = make_msg(20000, "exact");
	const char *refuse[] = { "-x", "carol@relay.test=550", "-x",
		"dave@relay.test=452", NULL };
	const char *rcpts[] = { "bob@relay.test", "carol@relay.test",
		"dave@relay.test", "erin@relay.test" };
	gw_rcpt_result_t res[4];
	store_domain_t d;
	struct mem m;
	gw_source_t src;
	gw_relay_t *r = relay_new(10000, 4, 60000);
	gw_relay_stats_t rs;
	unsigned port;
	pid_t pid;
	char *got, *env, *want;
	size_t glen;

	snprintf(dir, sizeof dir, "%s/exact", tmp);
	port = testd(dir, "127.0.0.1", 0, refuse, &pid);
	snprintf(route, sizeof route, "127.0.0.1:%u", port);
	domain(&d, STORE_TLS_OPPORTUNISTIC, route, NULL);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "alice@sender.test", rcpts, 4, PREPEND,
	    &src, res), 0);
	CHECK(res[0].code == 250 && res[3].code == 250);
	CHECK(!strcmp(res[0].text, "250 2.0.0 Ok: queued as 1"));
	CHECK(res[1].code == 550 && !strcmp(res[1].enhanced, "5.1.1"));
	CHECK(!strcmp(res[1].text, "550 5.1.1 <carol@relay.test>: Recipient "
	    "address rejected (test)"));
	CHECK(res[2].code == 452 && !strcmp(res[2].enhanced, "4.2.0"));
	snprintf(path, sizeof path, "%s/1.eml", dir);
	got = slurp(path, &glen);
	if (asprintf(&want, "%s%s", PREPEND, msg) < 0)
		abort();
	CHECK(got && glen == strlen(want) && !memcmp(got, want, glen));
	free(got);
	free(want);
	snprintf(path, sizeof path, "%s/1.env", dir);
	env = slurp(path, NULL);
	CHECK(env && strstr(env, "mail_from=alice@sender.test\nrcpt=bob@relay."
	    "test\nrcpt=erin@relay.test\nhelo=relay-test.archived.example\n"));
	free(env);

	/* a message without a final CRLF, bare LFs and CRs: smuggling */
	{
		static const char smug[] = "Subject: smuggle\r\n\r\nfirst\n.\r\n"
		    "MAIL FROM:<evil@x>\r\nsecond\r.\rthird";
		src = source(&m, smug, strlen(smug));
		CHECK_RC(gw_relay_send(r, &d, "alice@sender.test", rcpts, 1,
		    NULL, &src, res), 0);
		CHECK(res[0].code == 250);
		snprintf(path, sizeof path, "%s/2.eml", dir);
		got = slurp(path, NULL);
		CHECK(got && !strcmp(got, "Subject: smuggle\r\n\r\nfirst\r\n.\r\n"
		    "MAIL FROM:<evil@x>\r\nsecond\r\n.\r\nthird\r\n"));
		free(got);
	}
	/* an address with CRLF in it is never sent (command injection) */
	{
		const char *evil[] = { "bob@relay.test",
			"x@relay.test>\r\nRCPT TO:<carol@relay.test" };
		src = source(&m, msg, strlen(msg));
		CHECK_RC(gw_relay_send(r, &d, "alice@sender.test", evil, 2, NULL,
		    &src, res), 0);
		CHECK(res[0].code == 250);
		CHECK(res[1].code == 553 && !strcmp(res[1].enhanced, "5.1.3"));
		snprintf(path, sizeof path, "%s/3.env", dir);
		env = slurp(path, NULL);
		CHECK(env && strstr(env, "rcpt=bob@relay.test\nhelo=") != NULL);
		free(env);
	}
	/* ten more on the same session: one connect in all */
	for (int i = 0; i < 10; i++) {
		src = source(&m, msg, strlen(msg));
		CHECK_RC(gw_relay_send(r, &d, "alice@sender.test", rcpts, 1,
		    NULL, &src, res), 0);
		CHECK(res[0].code == 250);
	}
	CHECK(stats_of(dir).connects == 1);
	CHECK(stats_of(dir).mails == 13);
	gw_relay_stats(r, &rs);
	CHECK(rs.connects == 1 && rs.reused == 12 && rs.open == 1 &&
	    rs.idle == 1);

	/* the server closes its idle session: the next one opens anew */
	proc_stop(pid);
	snprintf(dir, sizeof dir, "%s/exact2", tmp);
	port = testd(dir, "127.0.0.1", port, NULL, &pid);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "alice@sender.test", rcpts, 1, NULL,
	    &src, res), 0);
	CHECK(res[0].code == 250);
	gw_relay_stats(r, &rs);
	CHECK(rs.connects == 2 && rs.open == 1);

	/* a source that fails: a local error, nothing delivered */
	src = source(&m, msg, strlen(msg));
	m.fail_at = 2;
	CHECK_RC(gw_relay_send(r, &d, "alice@sender.test", rcpts, 1, NULL,
	    &src, res), AR_EIO);
	gw_relay_free(r);
	/* idle sessions end with QUIT when the relay goes */
	for (int i = 0; i < 3000 && stats_of(dir).active; i++)
		usleep(10000);
	CHECK(stats_of(dir).active == 0);
	snprintf(path, sizeof path, "%s/1.eml", dir);
	CHECK(access(path, F_OK) == 0);
	snprintf(path, sizeof path, "%s/2.eml", dir);
	CHECK(access(path, F_OK) != 0);
	proc_stop(pid);
	free(msg);
}

/* The idle session is closed by the reaper after idle_keep_ms. */
static void test_idle_expiry(void)
{
	char dir[1100], route[64];
	const char *rcpt = "bob@relay.test";
	gw_rcpt_result_t res;
	store_domain_t d;
	struct mem m;
	gw_source_t src = source(&m, "Subject: x\r\n\r\nx\r\n", 17);
	gw_relay_t *r = relay_new(10000, 4, 200);
	gw_relay_stats_t rs;
	unsigned port;
	pid_t pid;

	snprintf(dir, sizeof dir, "%s/idle", tmp);
	port = testd(dir, "127.0.0.1", 0, NULL, &pid);
	snprintf(route, sizeof route, "127.0.0.1:%u", port);
	domain(&d, STORE_TLS_NONE, route, NULL);
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 250);
	for (int i = 0; i < 3000; i++) {
		gw_relay_stats(r, &rs);
		if (!rs.open && !stats_of(dir).active)
			break;
		usleep(10000);
	}
	CHECK(rs.open == 0 && rs.idle == 0);
	CHECK(stats_of(dir).active == 0 && stats_of(dir).connects == 1);
	gw_relay_free(r);
	proc_stop(pid);
}

/* --- 5. the per-host limit under parallel sends ------------------------------------------ */

struct par {
	gw_relay_t *r;
	store_domain_t *d;
	int n, ok;
	const char *msg;
};

static void *par_main(void *arg)
{
	struct par *p = arg;
	const char *rcpt = "bob@relay.test";

	for (int i = 0; i < p->n; i++) {
		gw_rcpt_result_t res;
		struct mem m;
		gw_source_t src = source(&m, p->msg, strlen(p->msg));
		if (gw_relay_send(p->r, p->d, "alice@sender.test", &rcpt, 1, NULL,
		    &src, &res) == 0 && res.code == 250)
			p->ok++;
	}
	return NULL;
}

static void test_per_host_limit(void)
{
	char dir[1100], route[64], *msg = make_msg(4000, "parallel");
	const char *slow[] = { "-w", "150", NULL };
	struct par p[8];
	pthread_t th[8];
	store_domain_t d;
	gw_relay_t *r = relay_new(10000, 2, 60000);
	gw_relay_stats_t rs;
	unsigned port;
	pid_t pid;
	int ok = 0;

	snprintf(dir, sizeof dir, "%s/limit", tmp);
	port = testd(dir, "127.0.0.1", 0, slow, &pid);
	snprintf(route, sizeof route, "127.0.0.1:%u", port);
	domain(&d, STORE_TLS_NONE, route, NULL);
	for (int i = 0; i < 8; i++) {
		p[i] = (struct par){ r, &d, 3, 0, msg };
		pthread_create(&th[i], NULL, par_main, &p[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ok += p[i].ok;
	}
	CHECK(ok == 24);
	CHECK(stats_of(dir).max_active <= 2);
	CHECK(stats_of(dir).connects <= 2);
	CHECK(stats_of(dir).mails == 24);
	gw_relay_stats(r, &rs);
	CHECK(rs.open <= 2 && rs.connects <= 2);
	gw_relay_free(r);
	proc_stop(pid);
	free(msg);
}

/* One slot, held: the other caller gets the "busy" 4xx after waiting. */
static void test_busy(void)
{
	char dir[1100], route[64];
	const char *slow[] = { "-w", "3000", NULL };
	const char *rcpt = "bob@relay.test";
	struct par p;
	pthread_t th;
	store_domain_t d;
	gw_relay_opts_t o;
	gw_relay_t *r;
	gw_relay_stats_t rs;
	gw_rcpt_result_t res;
	struct mem m;
	gw_source_t src = source(&m, "Subject: x\r\n\r\nx\r\n", 17);
	unsigned port;
	pid_t pid;

	memset(&o, 0, sizeof o);
	o.hostname = "relay-test.archived.example";
	o.connect_timeout_ms = 300;
	o.command_timeout_ms = 20000;
	o.max_per_host = 1;
	if (gw_relay_new(&r, &o))
		abort();
	snprintf(dir, sizeof dir, "%s/busy", tmp);
	port = testd(dir, "127.0.0.1", 0, slow, &pid);
	snprintf(route, sizeof route, "127.0.0.1:%u", port);
	domain(&d, STORE_TLS_NONE, route, NULL);
	p = (struct par){ r, &d, 1, 0, "Subject: y\r\n\r\ny\r\n" };
	pthread_create(&th, NULL, par_main, &p);
	for (int i = 0; i < 3000; i++) {     /* the first one holds the slot */
		if (stats_of(dir).mails == 1)
			break;
		usleep(10000);
	}
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 451 && !strcmp(res.enhanced, "4.4.5"));
	CHECK(strstr(res.text, "(local) all 1 connections to") != NULL);
	pthread_join(th, NULL);
	CHECK(p.ok == 1);
	gw_relay_stats(r, &rs);
	CHECK(rs.busy == 1 && rs.connects == 1);
	gw_relay_free(r);
	proc_stop(pid);
}

/* --- 6. failures: refusals, drops, timeouts, routes in order --------------------------------- */

/* A listener that accepts and never speaks (or closes at once). */
struct mute {
	int fd;
	int close_at_once;
	volatile int stop;
	pthread_t th;
};

static void *mute_main(void *arg)
{
	struct mute *mu = arg;
	int held[16], nh = 0;

	while (!mu->stop) {
		struct pollfd pfd = { mu->fd, POLLIN, 0 };
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int c = accept(mu->fd, NULL, NULL);
		if (c < 0)
			continue;
		if (mu->close_at_once || nh == 16)
			close(c);
		else
			held[nh++] = c;
	}
	while (nh)
		close(held[--nh]);
	return NULL;
}

static unsigned mute_start(struct mute *mu, int close_at_once)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;

	memset(mu, 0, sizeof *mu);
	mu->close_at_once = close_at_once;
	mu->fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (bind(mu->fd, (void *)&sa, sizeof sa) < 0 || listen(mu->fd, 16) < 0 ||
	    getsockname(mu->fd, (void *)&sa, &sl) < 0)
		abort();
	pthread_create(&mu->th, NULL, mute_main, mu);
	return ntohs(sa.sin_port);
}

static void mute_stop(struct mute *mu)
{
	mu->stop = 1;
	pthread_join(mu->th, NULL);
	close(mu->fd);
}

static void test_failures(void)
{
	char dir[1100], r1[64], r2[64], path[1200];
	const char *rcpts[] = { "bob@relay.test", "carol@relay.test" };
	const char *slow[] = { "-w", "2000", NULL };
	const char *q_mail[] = { "-q", "MAIL", NULL };
	const char *r_mail[] = { "-r", "MAIL", NULL };
	const char *f_mail[] = { "-f", "MAIL", NULL };
	const char *q_conn[] = { "-Q", "CONNECT", NULL };
	const char *f_data[] = { "-f", ".", NULL };
	gw_rcpt_result_t res[2];
	store_domain_t d;
	struct mem m;
	gw_source_t src;
	gw_relay_t *r = relay_new(500, 4, 0);
	struct mute mu;
	unsigned port, sp;
	pid_t pid, spid;
	const char *msg = "Subject: failures\r\n\r\nbody\r\n";

	snprintf(dir, sizeof dir, "%s/fail", tmp);
	port = testd(dir, "127.0.0.1", 0, NULL, &pid);
	snprintf(r2, sizeof r2, "127.0.0.1:%u", port);

	/* nothing listens: the next route */
	snprintf(r1, sizeof r1, "127.0.0.1:%u", free_port("127.0.0.1"));
	domain(&d, STORE_TLS_NONE, r1, NULL);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 0 && res[1].code == 0);
	CHECK(strstr(res[0].text, "Connection refused") != NULL);
	domain(&d, STORE_TLS_NONE, r1, r2);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 250 && res[1].code == 250);

	/* a server that never greets: a timeout, then the next route */
	sp = mute_start(&mu, 0);
	snprintf(r1, sizeof r1, "127.0.0.1:%u", sp);
	domain(&d, STORE_TLS_NONE, r1, NULL);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 0 && strstr(res[0].text, "timed out after 0.5 s "
	    "in the greeting") != NULL);
	domain(&d, STORE_TLS_NONE, r1, r2);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 250);
	mute_stop(&mu);
	/* one that closes at once */
	sp = mute_start(&mu, 1);
	snprintf(r1, sizeof r1, "127.0.0.1:%u", sp);
	domain(&d, STORE_TLS_NONE, r1, NULL);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 0 && strstr(res[0].text, "closed the connection "
	    "in the greeting") != NULL);
	mute_stop(&mu);

	/* smtp-sink dropping the session at MAIL: nothing sent, next route */
	sp = free_port("127.0.0.1");
	spid = sink("127.0.0.1", sp, NULL, q_mail);
	snprintf(r1, sizeof r1, "127.0.0.1:%u", sp);
	domain(&d, STORE_TLS_NONE, r1, NULL);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 0 && strstr(res[0].text, "after MAIL FROM") !=
	    NULL);
	domain(&d, STORE_TLS_NONE, r1, r2);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	{
		char h[80];
		snprintf(h, sizeof h, "127.0.0.1[127.0.0.1]:%u", port);
		CHECK(res[0].code == 250 && !strcmp(res[0].host, h));
	}
	proc_stop(spid);

	/* 4xx to MAIL: the next route; alone: deferred with its reply */
	sp = free_port("127.0.0.1");
	spid = sink("127.0.0.1", sp, NULL, r_mail);
	snprintf(r1, sizeof r1, "127.0.0.1:%u", sp);
	domain(&d, STORE_TLS_NONE, r1, NULL);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 450 && res[1].code == 450 &&
	    !strcmp(res[0].enhanced, "4.3.0"));
	domain(&d, STORE_TLS_NONE, r1, r2);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 250 && res[1].code == 250);
	proc_stop(spid);

	/* 5xx to MAIL: every recipient bounced, no other route tried */
	sp = free_port("127.0.0.1");
	spid = sink("127.0.0.1", sp, NULL, f_mail);
	snprintf(r1, sizeof r1, "127.0.0.1:%u", sp);
	domain(&d, STORE_TLS_NONE, r1, r2);
	{
		unsigned before = stats_of(dir).mails;
		src = source(&m, msg, strlen(msg));
		CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src,
		    res), 0);
		CHECK(res[0].code == 500 && res[1].code == 500);
		CHECK(stats_of(dir).mails == before);
	}
	proc_stop(spid);

	/* 421 at the greeting: the next route */
	sp = free_port("127.0.0.1");
	spid = sink("127.0.0.1", sp, NULL, q_conn);
	snprintf(r1, sizeof r1, "127.0.0.1:%u", sp);
	domain(&d, STORE_TLS_NONE, r1, NULL);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 421 && strstr(res[0].text, "refused the session"));
	domain(&d, STORE_TLS_NONE, r1, r2);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 250);
	proc_stop(spid);

	/* 5xx to the final dot: bounced, the server's words kept */
	sp = free_port("127.0.0.1");
	spid = sink("127.0.0.1", sp, NULL, f_data);
	snprintf(r1, sizeof r1, "127.0.0.1:%u", sp);
	domain(&d, STORE_TLS_NONE, r1, r2);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 500 && res[1].code == 500 &&
	    !strcmp(res[0].enhanced, "5.3.0"));
	proc_stop(spid);
	proc_stop(pid);

	/* the final reply comes too late: deferred (code 0), no retry on
	 * the next route (the message may have arrived) */
	port = testd(dir, "127.0.0.1", 0, slow, &pid);
	snprintf(r1, sizeof r1, "127.0.0.1:%u", port);
	domain(&d, STORE_TLS_NONE, r1, r2);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 2, NULL, &src, res),
	    0);
	CHECK(res[0].code == 0 && res[1].code == 0);
	CHECK(strstr(res[0].text, "timed out after 0.5 s after the end of the "
	    "message") != NULL);
	snprintf(path, sizeof path, "%s/stats", dir);
	proc_stop(pid);
	gw_relay_free(r);

	/* the server greets with our own name: a loop, not delivered */
	{
		const char *same[] = { "-o",
			"smtp_hostname=relay-test.archived.example", NULL };
		r = relay_new(5000, 4, 0);
		port = testd(dir, "127.0.0.1", 0, same, &pid);
		snprintf(r1, sizeof r1, "127.0.0.1:%u", port);
		domain(&d, STORE_TLS_NONE, r1, NULL);
		src = source(&m, msg, strlen(msg));
		CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 1, NULL, &src,
		    res), 0);
		CHECK(res[0].code == 0 && strstr(res[0].text, "loops back to "
		    "myself") != NULL);
		proc_stop(pid);
		gw_relay_free(r);
	}
	/* no route at all */
	r = relay_new(5000, 4, 0);
	domain(&d, STORE_TLS_NONE, NULL, NULL);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", rcpts, 1, NULL, &src, res), 0);
	CHECK(res[0].code == 0 && strstr(res[0].text, "no route") != NULL);
	gw_relay_free(r);
}

/* --- 7. TLS policies -------------------------------------------------------------------------- */

static char cert_dir[1100];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (system(cmd) != 0) {
		fprintf(stderr, "failed: %s\n", cmd);
		abort();
	}
	free(cmd);
}

/* A CA, a server certificate for localhost and 127.0.0.1 signed by it, one
 * for another name signed by it, a self-signed one for localhost. */
static void make_certs(void)
{
	const char *c = cert_dir;

	snprintf(cert_dir, sizeof cert_dir, "%s/certs", tmp);
	mkdir(cert_dir, 0700);
	sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:"
	    "P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj "
	    "'/CN=archived relay test CA' 2>/dev/null", c);
	sh("cd %s && for n in good:DNS:localhost,IP:127.0.0.1 "
	    "wrong:DNS:wrong.example; do f=${n%%%%:*}; san=${n#*:}; "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout $f.key -out $f.csr -subj /CN=$f 2>/dev/null && "
	    "printf 'subjectAltName=%%s\\n' $san > $f.ext && openssl x509 -req "
	    "-in $f.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	    "-extfile $f.ext -out $f.pem 2>/dev/null || exit 1; done", c);
	sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:"
	    "P-256 -nodes -keyout self.key -out self.pem -days 2 -subj "
	    "/CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null", c);
	sh("cd %s && openssl x509 -in self.pem -pubkey -noout | openssl pkey "
	    "-pubin -outform der | openssl dgst -sha256 -r | cut -c1-64 > "
	    "self.pin", c);
}

static unsigned tls_testd(const char *name, const char *cert, pid_t *pid)
{
	char dir[1100], crt[1200], key[1200];
	const char *args[] = { "-c", crt, "-k", key, NULL };

	snprintf(dir, sizeof dir, "%s/tls-%s", tmp, name);
	if (!cert)
		return testd(dir, "127.0.0.1", 0, NULL, pid);
	snprintf(crt, sizeof crt, "%s/%s.pem", cert_dir, cert);
	snprintf(key, sizeof key, "%s/%s.key", cert_dir, cert);
	return testd(dir, "127.0.0.1", 0, args, pid);
}

static char *tls_env(const char *name, unsigned n)
{
	char path[1200];

	snprintf(path, sizeof path, "%s/tls-%s/%u.env", tmp, name, n);
	return slurp(path, NULL);
}

static unsigned tls_mails(const char *name)
{
	char dir[1100];
	snprintf(dir, sizeof dir, "%s/tls-%s", tmp, name);
	return stats_of(dir).mails;
}

static int send1(gw_relay_t *r, store_domain_t *d, gw_rcpt_result_t *res)
{
	const char *rcpt = "bob@relay.test";
	static const char msg[] = "Subject: tls\r\n\r\nconfidential\r\n";
	struct mem m;
	gw_source_t src = source(&m, msg, strlen(msg));
	return gw_relay_send(r, d, "alice@sender.test", &rcpt, 1, NULL, &src,
	    res);
}

static void test_tls(void)
{
	gw_relay_t *r = relay_new(5000, 4, 0);
	gw_rcpt_result_t res;
	store_domain_t d;
	char route[64], ca[1200], *env, *pin;
	pid_t pg, pw, ps, pn;
	unsigned good, wrong, self, none;

	make_certs();
	snprintf(ca, sizeof ca, "%s/ca.pem", cert_dir);
	good = tls_testd("good", "good", &pg);
	wrong = tls_testd("wrong", "wrong", &pw);
	self = tls_testd("self", "self", &ps);
	none = tls_testd("none", NULL, &pn);

	/* verify with our CA, by name and by address literal */
	snprintf(route, sizeof route, "localhost:%u", good);
	domain(&d, STORE_TLS_VERIFY, route, NULL);
	ar_strlcpy(d.tls_ca, ca, sizeof d.tls_ca);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 250);
	env = tls_env("good", 1);
	CHECK(env && strstr(env, "tls=TLSv1.3\n") != NULL);
	free(env);
	snprintf(route, sizeof route, "[127.0.0.1]:%u", good);
	domain(&d, STORE_TLS_VERIFY, route, NULL);
	ar_strlcpy(d.tls_ca, ca, sizeof d.tls_ca);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 250);

	/* wrong name: deferred with the reason, no MAIL seen */
	snprintf(route, sizeof route, "localhost:%u", wrong);
	domain(&d, STORE_TLS_VERIFY, route, NULL);
	ar_strlcpy(d.tls_ca, ca, sizeof d.tls_ca);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 0 && strstr(res.text, "does not verify") &&
	    strstr(res.text, "hostname mismatch"));
	CHECK(tls_mails("wrong") == 0);

	/* self-signed, checked against the system's CAs */
	snprintf(route, sizeof route, "localhost:%u", self);
	domain(&d, STORE_TLS_VERIFY, route, NULL);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 0 && strstr(res.text, "does not verify") &&
	    strstr(res.text, "self-signed"));
	/* ... and against our CA, which did not sign it */
	ar_strlcpy(d.tls_ca, ca, sizeof d.tls_ca);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 0 && strstr(res.text, "does not verify"));
	CHECK(tls_mails("self") == 0);

	/* pinned: the right key passes, another one does not */
	pin = slurp((snprintf(ca, sizeof ca, "%s/self.pin", cert_dir), ca),
	    NULL);
	CHECK(pin && strlen(pin) >= 64);
	domain(&d, STORE_TLS_VERIFY, route, NULL);
	memcpy(d.tls_pin, pin, 64);
	d.tls_pin[64] = '\0';
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 250);
	env = tls_env("self", 1);
	CHECK(env && strstr(env, "tls=TLSv1.3\n") != NULL);
	free(env);
	snprintf(route, sizeof route, "localhost:%u", good);
	domain(&d, STORE_TLS_VERIFY, route, NULL);
	memcpy(d.tls_pin, pin, 64);
	{
		unsigned before = tls_mails("good");
		CHECK_RC(send1(r, &d, &res), 0);
		CHECK(res.code == 0 && strstr(res.text, "does not match the "
		    "pinned SHA-256"));
		CHECK(tls_mails("good") == before);
	}
	free(pin);
	/* a CA file that is not there */
	domain(&d, STORE_TLS_VERIFY, route, NULL);
	ar_strlcpy(d.tls_ca, "/nonexistent/ca.pem", sizeof d.tls_ca);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 0 && strstr(res.text, "/nonexistent/ca.pem"));

	/* verify against a server without STARTTLS: nothing in clear */
	snprintf(route, sizeof route, "localhost:%u", none);
	domain(&d, STORE_TLS_VERIFY, route, NULL);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 0 && strstr(res.text, "does not offer STARTTLS"));
	CHECK(tls_mails("none") == 0);
	/* opportunistic: in clear there, over TLS where offered */
	domain(&d, STORE_TLS_OPPORTUNISTIC, route, NULL);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 250);
	env = tls_env("none", 1);
	CHECK(env && strstr(env, "tls=no\n") != NULL);
	free(env);
	snprintf(route, sizeof route, "localhost:%u", wrong);
	domain(&d, STORE_TLS_OPPORTUNISTIC, route, NULL);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 250);
	env = tls_env("wrong", 1);
	CHECK(env && strstr(env, "tls=TLSv1.3\n") != NULL);
	free(env);
	/* none: never STARTTLS */
	domain(&d, STORE_TLS_NONE, route, NULL);
	CHECK_RC(send1(r, &d, &res), 0);
	CHECK(res.code == 250);
	env = tls_env("wrong", 2);
	CHECK(env && strstr(env, "tls=no\n") != NULL);
	free(env);
	gw_relay_free(r);
	proc_stop(pg);
	proc_stop(pw);
	proc_stop(ps);
	proc_stop(pn);
}

/* --- 8. MX lookups against Knot DNS --------------------------------------------------------- */

static char dns_buf[64];

static pid_t knot_start(void)
{
	char dir[1100], path[1200], *argv[6];
	unsigned port = free_port("127.0.0.1");
	FILE *f;
	pid_t pid;

	snprintf(dir, sizeof dir, "%s/knot", tmp);
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/zones", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/db", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/zones/relay.test.zone", dir);
	if (!(f = fopen(path, "w")))
		abort();
	/* MX records out of order in the file; mx1 has no server */
	fprintf(f, "$ORIGIN relay.test.\n$TTL 60\n"
	    "@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\n"
	    "ns A 127.0.0.1\n"
	    "@ MX 30 mx3\n@ MX 10 mx1\n@ MX 20 mx2\n"
	    "mx1 A 127.0.0.2\nmx2 A 127.0.0.3\nmx3 A 127.0.0.4\n"
	    "nomx A 127.0.0.3\n"
	    "nullmx MX 0 .\n"
	    "v6 MX 10 mx6\nmx6 AAAA ::1\n"
	    "fail4 MX 10 mxs\nfail4 MX 20 mx3\nmxs A 127.0.0.5\n"
	    "eq MX 10 mx2\neq MX 10 mx3\n"
	    "both A 127.0.0.2\nboth A 127.0.0.3\n"
	    "viaboth MX 10 both\n");
	fclose(f);
	snprintf(path, sizeof path, "%s/knot.conf", dir);
	if (!(f = fopen(path, "w")))
		abort();
	fprintf(f, "server:\n    rundir: \"%s\"\n    listen: 127.0.0.1@%u\n"
	    "    tcp-workers: 1\n    udp-workers: 1\n    background-workers: 1\n"
	    "log:\n  - target: \"%s/knot.log\"\n    any: info\n"
	    "database:\n    storage: \"%s/db\"\n"
	    "template:\n  - id: default\n    storage: \"%s/zones\"\n"
	    "    file: \"%%s.zone\"\n    zonefile-sync: -1\n"
	    "    journal-content: none\n"
	    "zone:\n  - domain: relay.test\n", dir, port, dir, dir, dir);
	fclose(f);
	argv[0] = "knotd";
	argv[1] = "-c";
	argv[2] = path;
	argv[3] = NULL;
	pid = spawn(argv, NULL, NULL);
	snprintf(dns_buf, sizeof dns_buf, "127.0.0.1:%u", port);
	dns_addr = dns_buf;
	/* until it answers for the zone */
	{
		gw_dns_t *dns;
		gw_mx_t mx[4];
		size_t n = 0;
		char why[256];
		gw_dns_new(&dns, dns_addr);
		for (int i = 0; i < 300; i++) {
			if (gw_dns_mx(dns, "relay.test", mx, 4, &n, why,
			    sizeof why) == 0 && n == 3)
				break;
			usleep(100000);
		}
		gw_dns_free(dns);
		if (n != 3) {
			fprintf(stderr, "knotd did not answer (%s)\n", why);
			abort();
		}
	}
	return pid;
}

static void test_mx(void)
{
	char a[1100], b[1100], v6[1100], why[256];
	const char *r_mail[] = { "-r", "MAIL", NULL };
	const char *rcpt = "bob@relay.test";
	gw_dns_t *dns;
	gw_mx_t mx[8];
	struct sockaddr_storage ss[8];
	size_t n = 0;
	gw_rcpt_result_t res;
	store_domain_t d;
	struct mem m;
	gw_source_t src;
	gw_relay_t *r;
	pid_t kp, pa, pb, p6, ps;
	char host[128];
	int seen2 = 0, seen3 = 0;
	static const char msg[] = "Subject: mx\r\n\r\nvia MX\r\n";

	if (system("command -v knotd >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_mx: knotd is not installed (Debian "
		    "package knot, scripts/deps.sh)\n");
		CHECK(!"knotd installed");
		return;
	}
	kp = knot_start();
	CHECK_RC(gw_dns_new(&dns, dns_addr), 0);
	CHECK_RC(gw_dns_mx(dns, "relay.test", mx, 8, &n, why, sizeof why), 0);
	CHECK(n == 3 && !strcmp(mx[0].host, "mx1.relay.test") &&
	    mx[0].pref == 10 && !strcmp(mx[1].host, "mx2.relay.test") &&
	    !strcmp(mx[2].host, "mx3.relay.test") && mx[2].pref == 30);
	CHECK_RC(gw_dns_mx(dns, "nomx.relay.test", mx, 8, &n, why, sizeof why),
	    0);
	CHECK(n == 0);
	CHECK_RC(gw_dns_mx(dns, "nullmx.relay.test", mx, 8, &n, why,
	    sizeof why), AR_EPERM);
	CHECK(strstr(why, "null MX") != NULL);
	CHECK_RC(gw_dns_mx(dns, "nosuch.relay.test", mx, 8, &n, why,
	    sizeof why), AR_ENOENT);
	CHECK_RC(gw_dns_addrs(dns, "both.relay.test", 25, ss, 8, &n, why,
	    sizeof why), 0);
	CHECK(n == 2);
	CHECK_RC(gw_dns_addrs(dns, "mx6.relay.test", 25, ss, 8, &n, why,
	    sizeof why), 0);
	CHECK(n == 1 && ss[0].ss_family == AF_INET6);
	CHECK_RC(gw_dns_addrs(dns, "nomx.relay.test", 2525, ss, 8, &n, why,
	    sizeof why), 0);
	CHECK(n == 1 && ss[0].ss_family == AF_INET && ntohs(((struct
	    sockaddr_in *)&ss[0])->sin_port) == 2525);
	CHECK_RC(gw_dns_addrs(dns, "nosuch.relay.test", 25, ss, 8, &n, why,
	    sizeof why), AR_ENOENT);
	/* equal preferences: both orders happen */
	for (int i = 0; i < 64; i++) {
		CHECK_RC(gw_dns_mx(dns, "eq.relay.test", mx, 8, &n, why,
		    sizeof why), 0);
		if (n == 2) {
			seen2 |= !strcmp(mx[0].host, "mx2.relay.test");
			seen3 |= !strcmp(mx[0].host, "mx3.relay.test");
		}
	}
	CHECK(seen2 && seen3);
	gw_dns_free(dns);
	/* a DNS server that is not there: a temporary failure */
	{
		char dead[64];
		snprintf(dead, sizeof dead, "127.0.0.1:%u",
		    free_port("127.0.0.1"));
		CHECK_RC(gw_dns_new(&dns, dead), 0);
		CHECK_RC(gw_dns_mx(dns, "relay.test", mx, 8, &n, why,
		    sizeof why), AR_EAGAIN);
		gw_dns_free(dns);
		CHECK_RC(gw_dns_new(&dns, "::1:53"), AR_ECONFIG);
		CHECK_RC(gw_dns_new(&dns, "127.0.0.1"), AR_ECONFIG);
	}

	/* servers: mx2 (127.0.0.3), mx3 (127.0.0.4), mx6 (::1), mxs
	 * (127.0.0.5, 4xx to MAIL), all on one port; mx1 has none */
	snprintf(a, sizeof a, "%s/mx2", tmp);
	snprintf(b, sizeof b, "%s/mx3", tmp);
	snprintf(v6, sizeof v6, "%s/mx6", tmp);
	mx_port = testd(a, "127.0.0.3", 0, NULL, &pa);
	testd(b, "127.0.0.4", mx_port, NULL, &pb);
	testd(v6, "::1", mx_port, NULL, &p6);
	ps = sink("127.0.0.5", mx_port, NULL, r_mail);
	r = relay_new(5000, 4, 0);

	domain(&d, STORE_TLS_OPPORTUNISTIC, "mx:", NULL);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 250);
	snprintf(host, sizeof host, "mx2.relay.test[127.0.0.3]:%u", mx_port);
	CHECK(!strcmp(res.host, host));
	CHECK(stats_of(a).mails == 1 && stats_of(b).mails == 0);

	/* mx2 is gone: mx3 */
	proc_stop(pa);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 250 && stats_of(b).mails == 1);
	snprintf(host, sizeof host, "mx3.relay.test[127.0.0.4]:%u", mx_port);
	CHECK(!strcmp(res.host, host));

	/* 4xx to MAIL on the first MX: the second */
	ar_strlcpy(d.name, "fail4.relay.test", sizeof d.name);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 250 && stats_of(b).mails == 2);

	/* no MX: the domain's own address (mx2's, now down): deferred */
	ar_strlcpy(d.name, "nomx.relay.test", sizeof d.name);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 0 && strstr(res.text, "nomx.relay.test[127.0.0.3]")
	    && strstr(res.text, "Connection refused"));
	testd(a, "127.0.0.3", mx_port, NULL, &pa);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 250 && stats_of(a).mails == 1);

	/* every address of a host: 127.0.0.2 refuses, 127.0.0.3 takes it */
	ar_strlcpy(d.name, "viaboth.relay.test", sizeof d.name);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 250 && stats_of(a).mails == 2);

	/* an IPv6-only MX */
	ar_strlcpy(d.name, "v6.relay.test", sizeof d.name);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	snprintf(host, sizeof host, "mx6.relay.test[::1]:%u", mx_port);
	CHECK(res.code == 250 && !strcmp(res.host, host) &&
	    stats_of(v6).mails == 1);

	/* "mx:other": the MX of another domain */
	ar_strlcpy(d.name, "acme.example", sizeof d.name);
	ar_strlcpy(d.routes[0], "mx:relay.test", sizeof d.routes[0]);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 250 && stats_of(a).mails == 3);

	/* null MX: bounced at once, nobody connected */
	{
		unsigned ca = stats_of(a).connects, cb = stats_of(b).connects;
		domain(&d, STORE_TLS_OPPORTUNISTIC, "mx:", "mx:relay.test");
		ar_strlcpy(d.name, "nullmx.relay.test", sizeof d.name);
		src = source(&m, msg, strlen(msg));
		CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src,
		    &res), 0);
		CHECK(res.code == 556 && !strcmp(res.enhanced, "5.1.10"));
		CHECK(stats_of(a).connects == ca && stats_of(b).connects == cb);
	}
	/* no such domain: 550 5.1.2 */
	domain(&d, STORE_TLS_OPPORTUNISTIC, "mx:", NULL);
	ar_strlcpy(d.name, "nosuch.relay.test", sizeof d.name);
	src = source(&m, msg, strlen(msg));
	CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src, &res),
	    0);
	CHECK(res.code == 550 && !strcmp(res.enhanced, "5.1.2"));
	/* a host route by name through the DNS */
	{
		char route[64];
		snprintf(route, sizeof route, "mx3.relay.test:%u", mx_port);
		domain(&d, STORE_TLS_NONE, route, NULL);
		src = source(&m, msg, strlen(msg));
		CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src,
		    &res), 0);
		CHECK(res.code == 250 && stats_of(b).mails == 3);
		snprintf(route, sizeof route, "nosuch.relay.test:%u", mx_port);
		domain(&d, STORE_TLS_NONE, route, NULL);
		src = source(&m, msg, strlen(msg));
		CHECK_RC(gw_relay_send(r, &d, "a@b.test", &rcpt, 1, NULL, &src,
		    &res), 0);
		CHECK(res.code == 0 && strstr(res.text, "no such domain"));
	}
	gw_relay_free(r);
	proc_stop(pa);
	proc_stop(pb);
	proc_stop(p6);
	proc_stop(ps);
	proc_stop(kp);
	dns_addr = NULL;
	mx_port = 0;
}

int main(void)
{
	ar_process_init("test_gw_relay");
	ar_log_set_level(AR_LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	mime_init();
	bindir = getenv("AR_BUILD_DIR");
	if (!bindir)
		bindir = ".";
	tmp = tl_tmpdir("gwrelay");
	chmod(tmp, 0711);          /* smtp-sink runs as nobody */

#define RUN(t) do { int64_t t0_ = ar_mono_us(); t(); fprintf(stderr, \
	"%s: %lld ms\n", #t, (long long)(ar_mono_us() - t0_) / 1000); } while (0)
	RUN(test_reply_parse);
	RUN(test_dsn);
	RUN(test_sink_identical);
	RUN(test_testd_exact);
	RUN(test_idle_expiry);
	RUN(test_per_host_limit);
	RUN(test_busy);
	RUN(test_failures);
	RUN(test_tls);
	RUN(test_mx);

	procs_kill();
	if (!tl_failed)
		tl_rmrf(tmp);
	else
		fprintf(stderr, "kept %s\n", tmp);
	free(tmp);
	return tl_done();
}
