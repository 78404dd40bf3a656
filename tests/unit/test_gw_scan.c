/*
 * test_gw_scan.c - the gateway's scanners against the real services that
 * scripts/gateway-services.sh starts in a temp directory (Knot DNS with
 * the test zones, clamd with the project's signatures, rspamd with
 * gateway/rspamd/):
 *   clamd: clean, EICAR plain, in a ZIP, in a nested ZIP, base64 inside a
 *     forwarded message/rfc822, our own marker signature, StreamMaxLength
 *     (learnt from clamd's reply, and configured);
 *   rspamd: GTUBE (reject, and the add-header variant), the test DNSBL
 *     (127.0.0.2), SPF pass/fail, DKIM good (opendkim-signed) and altered
 *     in transit, DMARC p=reject and p=none failures, a misaligned sender,
 *     several recipients, an envelope value with CR/LF refused;
 *   gw_scan_message on both at once (parallel and not);
 *   failures: clamd stopped, rspamd stopped, each stopped with SIGSTOP
 *     (timeouts, quickly), then back: the same message passes, also
 *     through a connection to rspamd kept alive across its restart;
 *     malformed HTTP replies from a fake server (rspamd cannot be made
 *     to send them).
 * It prints (never asserts) scan latencies for a 10 KB message.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <gmime/gmime.h>

#include "ar.h"
#include "gateway/scan.h"
#include "testlib.h"

static char svc[1024];           /* the services' directory */
static char script[1200], scripts_dir[1100];
static const char *clamd_sock, *rspamd_url;
static unsigned char eicar[68];

#define EICAR_HEX "58354f2150254041505b345c505a58353428505e293743432937" \
	"7d2445494341522d5354414e444152442d414e544956495255532d54455354" \
	"2d46494c452124482b482a"

/* --- services ------------------------------------------------------------- */

static int services(const char *args)
{
	char cmd[16384];

	snprintf(cmd, sizeof cmd, "bash %s %s >>%s/services.log 2>&1", script,
	    args, svc);
	return system(cmd);
}

/* Export every "export K=V" line of DIR/env. */
static void load_env(const char *dir)
{
	char path[1200], line[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/env", dir);
	if (!(f = fopen(path, "r"))) {
		fprintf(stderr, "no %s\n", path);
		exit(2);
	}
	while (fgets(line, sizeof line, f)) {
		char *eq;
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "export ", 7) || !(eq = strchr(line, '=')))
			continue;
		*eq = '\0';
		setenv(line + 7, eq + 1, 1);
	}
	fclose(f);
}

static pid_t pid_of(const char *name)
{
	char path[1200];
	long p = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/pids/%s.pid", svc, name);
	if ((f = fopen(path, "r"))) {
		if (fscanf(f, "%ld", &p) != 1)
			p = 0;
		fclose(f);
	}
	return (pid_t)p;
}

/* Signal a process and its children (rspamd's workers). */
static void signal_tree(pid_t pid, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	kill(pid, sig);
	while (d && (de = readdir(d))) {
		char path[300], buf[512], *p;
		long ppid;
		FILE *f;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')) &&
		    sscanf(p + 2, "%*c %ld", &ppid) == 1 && ppid == pid)
			kill((pid_t)atol(de->d_name), sig);
		fclose(f);
	}
	if (d)
		closedir(d);
}

/* Stop every service under svc when the test ends, also through exit()
 * on a failure. */
static int services_started;

static void services_atexit(void)
{
	char cmd[16384];

	if (!services_started)
		return;
	services_started = 0;
	snprintf(cmd, sizeof cmd, "bash %s stop %s >/dev/null 2>&1; "
	    "bash %s stop %s/small >/dev/null 2>&1", script, svc, script, svc);
	(void)!system(cmd);
}

/* --- messages ------------------------------------------------------------- */

static void b64(GString *out, const void *data, size_t len)
{
	gchar *s = g_base64_encode(data, len);
	size_t n = strlen(s), i;

	for (i = 0; i < n; i += 76) {
		g_string_append_len(out, s + i, (gssize)(n - i < 76 ? n - i : 76));
		g_string_append(out, "\r\n");
	}
	g_free(s);
}

static unsigned char *zip_of(const char *name, const void *data, size_t len,
    size_t *outlen)
{
	size_t cap = len + 4096, used = 0;
	unsigned char *buf = malloc(cap);
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	archive_write_set_format_zip(a);
	archive_write_open_memory(a, buf, cap, &used);
	archive_entry_set_pathname(e, name);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_write_header(a, e);
	archive_write_data(a, data, len);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
	*outlen = used;
	return buf;
}

/* A message with a text body (body may be NULL) and, when att, one
 * base64 attachment. */
static GString *msg(const char *from, const char *body, const char *ctype,
    const char *fname, const void *att, size_t alen)
{
	GString *m = g_string_new(NULL);

	g_string_append_printf(m, "From: <%s>\r\nTo: <rcpt@example.com>\r\n"
	    "Subject: scanner test\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n"
	    "Message-ID: <%u.%ld@test.example>\r\nMIME-Version: 1.0\r\n", from,
	    (unsigned)getpid(), (long)ar_mono_us());
	if (!att) {
		g_string_append_printf(m, "Content-Type: text/plain\r\n\r\n%s\r\n",
		    body ? body : "Hello,\r\nthe minutes of today's meeting.");
		return m;
	}
	g_string_append_printf(m, "Content-Type: multipart/mixed; "
	    "boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
	    "%s\r\n--b1\r\nContent-Type: %s\r\nContent-Transfer-Encoding: "
	    "base64\r\nContent-Disposition: attachment; filename=\"%s\"\r\n\r\n",
	    body ? body : "See the attachment.", ctype, fname);
	b64(m, att, alen);
	g_string_append(m, "--b1--\r\n");
	return m;
}

/* --- scanning helpers ---------------------------------------------------- */

static gw_av_t *clamd_new(const char *sock, int io_ms, uint64_t max)
{
	gw_clamd_conf_t c = { .socket = sock, .connect_ms = 1000,
		.io_ms = io_ms, .total_ms = 4 * io_ms, .stream_max = max };
	gw_av_t *av = NULL;

	CHECK_RC(gw_clamd_new(&c, &av), 0);
	return av;
}

static int av_scan(gw_av_t *av, const GString *m, gw_av_result_t *r)
{
	gw_scan_source_t src;
	int rc;

	gw_scan_source_mem(&src, m->str, m->len);
	rc = gw_av_scan(av, &src, r);
	gw_scan_source_done(&src);
	return rc;
}

static int has_virus(const gw_av_result_t *r, const char *prefix)
{
	size_t i;

	for (i = 0; i < r->nviruses; i++)
		if (strncmp(r->viruses[i], prefix, strlen(prefix)) == 0)
			return 1;
	return 0;
}

static int rs_check(gw_rspamd_t *rs, const GString *m, const char *ip,
    const char *from, gw_rspamd_result_t *r)
{
	static const char *const rcpt[] = { "rcpt@example.com" };
	gw_scan_envelope_t env = { .from = from, .rcpt = rcpt, .nrcpt = 1,
		.ip = ip, .helo = "mail.sender.test", .queue_id = "T1" };
	gw_scan_source_t src;
	int rc;

	gw_scan_source_mem(&src, m->str, m->len);
	rc = gw_rspamd_check(rs, &src, &env, r);
	gw_scan_source_done(&src);
	return rc;
}

static int sym(const gw_rspamd_result_t *r, const char *name)
{
	return gw_rspamd_symbol(r, name) != NULL;
}

/* DKIM-sign m with scripts/dkim-sign (opendkim-testmsg). */
static GString *dkim_sign(const GString *m, const char *domain)
{
	char in[1200], out[1200], cmd[16384];
	GString *s;
	gchar *data;
	gsize len;

	snprintf(in, sizeof in, "%s/unsigned.eml", svc);
	snprintf(out, sizeof out, "%s/signed.eml", svc);
	if (!g_file_set_contents(in, m->str, (gssize)m->len, NULL))
		return NULL;
	snprintf(cmd, sizeof cmd, "bash %s/dkim-sign %s/env %s <%s >%s",
	    scripts_dir, svc, domain, in, out);
	if (system(cmd) != 0)
		return NULL;
	if (!g_file_get_contents(out, &data, &len, NULL))
		return NULL;
	s = g_string_new_len(data, (gssize)len);
	g_free(data);
	return s;
}

/* --- tests ------------------------------------------------------------------- */

static void test_clamd(gw_av_t *av)
{
	gw_av_result_t r;
	GString *m, *inner, *fwd;
	unsigned char *z1, *z2;
	size_t z1len, z2len;
	char ver[256];

	CHECK_RC(av->ops->ping(av), 0);
	CHECK_RC(gw_clamd_version(av, ver, sizeof ver), 0);
	CHECK(strncmp(ver, "ClamAV ", 7) == 0);

	m = msg("a@other.test", NULL, NULL, NULL, NULL, 0);
	CHECK_RC(av_scan(av, m, &r), 0);
	CHECK(r.status == GW_SCAN_OK && r.infected == 0 && r.nviruses == 0);
	gw_av_result_clear(&r);
	g_string_free(m, TRUE);

	/* EICAR as a plain attachment */
	m = msg("a@other.test", NULL, "application/octet-stream", "eicar.com",
	    eicar, sizeof eicar);
	CHECK_RC(av_scan(av, m, &r), 0);
	CHECK(r.status == GW_SCAN_OK && r.infected == 1);
	CHECK(has_virus(&r, "Archived.Test.EICAR"));
	printf("clamd: plain EICAR -> %s\n", r.nviruses ? r.viruses[0] : "-");
	gw_av_result_clear(&r);
	g_string_free(m, TRUE);

	/* in a ZIP, in a ZIP in a ZIP */
	z1 = zip_of("eicar.com", eicar, sizeof eicar, &z1len);
	z2 = zip_of("inner.zip", z1, z1len, &z2len);
	m = msg("a@other.test", NULL, "application/zip", "one.zip", z1, z1len);
	CHECK_RC(av_scan(av, m, &r), 0);
	CHECK(r.infected == 1 && has_virus(&r, "Archived.Test.EICAR"));
	gw_av_result_clear(&r);
	g_string_free(m, TRUE);
	m = msg("a@other.test", NULL, "application/zip", "two.zip", z2, z2len);
	CHECK_RC(av_scan(av, m, &r), 0);
	CHECK(r.infected == 1 && has_virus(&r, "Archived.Test.EICAR"));
	gw_av_result_clear(&r);

	/* base64 inside a forwarded message (message/rfc822) */
	inner = msg("x@other.test", NULL, "application/octet-stream",
	    "invoice.com", eicar, sizeof eicar);
	fwd = g_string_new("From: <fw@other.test>\r\nTo: <rcpt@example.com>\r\n"
	    "Subject: Fwd: invoice\r\nMIME-Version: 1.0\r\nContent-Type: "
	    "multipart/mixed; boundary=\"f1\"\r\n\r\n--f1\r\nContent-Type: "
	    "text/plain\r\n\r\nForwarded.\r\n--f1\r\nContent-Type: "
	    "message/rfc822\r\n\r\n");
	g_string_append_len(fwd, inner->str, (gssize)inner->len);
	g_string_append(fwd, "\r\n--f1--\r\n");
	CHECK_RC(av_scan(av, fwd, &r), 0);
	CHECK(r.infected == 1 && has_virus(&r, "Archived.Test.EICAR"));
	gw_av_result_clear(&r);

	/* what the attachment walk sees in the same messages: no virus (it
	 * is not an antivirus), but eicar.com's extension, in each */
	{
		gw_attach_result_t a;
		gw_scan_source_t src;
		GMimeStream *s;
		int src_rc;
		const GString *ms[2] = { m, fwd };
		const char *paths[2] = { "2/inner.zip/eicar.com", "2.2" };
		for (int i = 0; i < 2; i++) {
			gw_scan_source_mem(&src, ms[i]->str, ms[i]->len);
			s = src.mime_stream(src.arg, &src_rc);
			CHECK_RC(gw_attach_walk(s, src.size, NULL, &a), 0);
			CHECK(a.blocked == 1);
			for (size_t k = 0; k < a.nfindings; k++)
				if (strcmp(a.findings[k].path, paths[i]) == 0)
					CHECK(a.findings[k].reasons ==
					    GW_ATT_BLOCKED_EXT &&
					    a.findings[k].real == GW_FT_UNKNOWN);
			gw_attach_result_clear(&a);
			g_object_unref(s);
			gw_scan_source_done(&src);
		}
	}
	g_string_free(m, TRUE);
	g_string_free(fwd, TRUE);
	g_string_free(inner, TRUE);
	free(z1);
	free(z2);

	/* renamed: the walk has nothing to say, clamd still finds it */
	m = msg("a@other.test", NULL, "text/plain", "notes.txt", eicar,
	    sizeof eicar);
	CHECK_RC(av_scan(av, m, &r), 0);
	CHECK(r.infected == 1 && has_virus(&r, "Archived.Test.EICAR"));
	gw_av_result_clear(&r);
	{
		gw_attach_result_t a;
		gw_scan_source_t src;
		GMimeStream *st;
		int src_rc;
		gw_scan_source_mem(&src, m->str, m->len);
		st = src.mime_stream(src.arg, &src_rc);
		CHECK_RC(gw_attach_walk(st, src.size, NULL, &a), 0);
		CHECK(a.status == GW_SCAN_OK && a.blocked == 0 &&
		    a.nfindings == 1 && a.findings[0].reasons == 0);
		gw_attach_result_clear(&a);
		g_object_unref(st);
		gw_scan_source_done(&src);
	}
	g_string_free(m, TRUE);

	/* our own signature, in a plain text body */
	m = msg("a@other.test", "please run ARCHIVED-TEST-MALWARE-5b1d0c7e now",
	    NULL, NULL, NULL, 0);
	CHECK_RC(av_scan(av, m, &r), 0);
	CHECK(r.infected == 1 && has_virus(&r, "Archived.Test.Marker"));
	gw_av_result_clear(&r);
	g_string_free(m, TRUE);
}

/* A second clamd whose StreamMaxLength is 1 MiB. */
static void test_clamd_limit(void)
{
	char dir[4200], cmd[8400];
	gw_av_t *av;
	gw_av_result_t r;
	GString *m;
	unsigned char *big = malloc(2u << 20);
	int64_t t0;

	snprintf(dir, sizeof dir, "%s/small", svc);
	snprintf(cmd, sizeof cmd, "AR_GW_STREAM_MAX=1M bash %s start %s "
	    "--db test clamd >>%s/services.log 2>&1", script, dir, svc);
	CHECK(system(cmd) == 0);
	snprintf(cmd, sizeof cmd, "%s/clamd/clamd.sock", dir);
	for (size_t i = 0; i < (2u << 20); i++)
		big[i] = (unsigned char)(i * 2654435761u >> 13);
	m = msg("a@other.test", NULL, "application/octet-stream", "big.bin",
	    big, 2u << 20);
	/* not told the limit: clamd's reply says it */
	av = clamd_new(cmd, 10000, 0);
	CHECK_RC(av_scan(av, m, &r), AR_ETOOBIG);
	CHECK(r.status == GW_SCAN_TOO_LARGE);
	printf("clamd: 2.8 MB to StreamMaxLength 1M -> %s (%s)\n",
	    gw_scan_status_name(r.status), r.errmsg);
	gw_av_result_clear(&r);
	gw_av_close(av);
	/* told: refused before any connection */
	av = clamd_new("/nonexistent/clamd.sock", 10000, 1u << 20);
	t0 = ar_mono_us();
	CHECK_RC(av_scan(av, m, &r), AR_ETOOBIG);
	CHECK(r.status == GW_SCAN_TOO_LARGE);
	CHECK(ar_mono_us() - t0 < 1000000);
	gw_av_result_clear(&r);
	gw_av_close(av);
	g_string_free(m, TRUE);
	free(big);
	snprintf(cmd, sizeof cmd, "bash %s stop %s >>%s/services.log 2>&1",
	    script, dir, svc);
	CHECK(system(cmd) == 0);
}

static void test_rspamd(gw_rspamd_t *rs)
{
	const char *ip_pass = getenv("GW_IP_PASS"), *ip_fail = getenv("GW_IP_FAIL");
	gw_rspamd_result_t r;
	GString *m, *s, *alt;
	char *p;

	CHECK_RC(gw_rspamd_ping(rs), 0);
	/* GTUBE: reject; its add-header variant (enable_test_patterns) */
	m = msg("a@other.test", "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-"
	    "ANTI-UBE-TEST-EMAIL*C.34X", NULL, NULL, NULL, 0);
	CHECK_RC(rs_check(rs, m, ip_pass, "a@other.test", &r), 0);
	CHECK(r.status == GW_SCAN_OK && r.action == GW_RSPAMD_REJECT);
	CHECK(sym(&r, "GTUBE"));
	CHECK(r.smtp_message != NULL);
	gw_rspamd_result_clear(&r);
	g_string_free(m, TRUE);
	m = msg("a@other.test", "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-"
	    "ANTI-UBE-TEST-EMAIL*C.34X", NULL, NULL, NULL, 0);
	CHECK_RC(rs_check(rs, m, ip_pass, "a@other.test", &r), 0);
	CHECK(r.action == GW_RSPAMD_ADD_HEADER && sym(&r, "GTUBE"));
	gw_rspamd_result_clear(&r);
	g_string_free(m, TRUE);

	/* the test DNSBL lists 127.0.0.2, not 192.0.2.10 */
	m = msg("a@other.test", NULL, NULL, NULL, NULL, 0);
	CHECK_RC(rs_check(rs, m, "127.0.0.2", "a@other.test", &r), 0);
	CHECK(sym(&r, "RBL_ARCHIVED_TEST_LISTED"));
	if (gw_rspamd_symbol(&r, "RBL_ARCHIVED_TEST_LISTED"))
		CHECK(gw_rspamd_symbol(&r, "RBL_ARCHIVED_TEST_LISTED")->score > 0);
	gw_rspamd_result_clear(&r);
	CHECK_RC(rs_check(rs, m, ip_pass, "a@other.test", &r), 0);
	CHECK(!sym(&r, "RBL_ARCHIVED_TEST_LISTED"));
	CHECK(sym(&r, "R_SPF_ALLOW"));                 /* other.test's SPF */
	gw_rspamd_result_clear(&r);
	g_string_free(m, TRUE);

	/* SPF fail from reject.test (DMARC p=reject): SPF fails, DMARC
	 * fails, action reject */
	m = msg("a@reject.test", NULL, NULL, NULL, NULL, 0);
	CHECK_RC(rs_check(rs, m, ip_fail, "a@reject.test", &r), 0);
	CHECK(sym(&r, "R_SPF_FAIL"));
	CHECK(sym(&r, "DMARC_POLICY_REJECT"));
	CHECK(r.action == GW_RSPAMD_REJECT);
	gw_rspamd_result_clear(&r);
	/* ... from its own IP: SPF and DMARC pass */
	CHECK_RC(rs_check(rs, m, ip_pass, "a@reject.test", &r), 0);
	CHECK(sym(&r, "R_SPF_ALLOW") && sym(&r, "DMARC_POLICY_ALLOW"));
	CHECK(r.action != GW_RSPAMD_REJECT);
	gw_rspamd_result_clear(&r);

	/* DKIM: a good signature passes, even from an IP SPF refuses (a
	 * forward): DMARC passes through DKIM */
	s = dkim_sign(m, "reject.test");
	CHECK(s != NULL);
	if (s) {
		CHECK(strncmp(s->str, "DKIM-Signature:", 15) == 0);
		CHECK_RC(rs_check(rs, s, ip_fail, "a@reject.test", &r), 0);
		CHECK(sym(&r, "R_DKIM_ALLOW") && !sym(&r, "R_DKIM_REJECT"));
		CHECK(sym(&r, "DMARC_POLICY_ALLOW"));
		CHECK(r.action != GW_RSPAMD_REJECT);
		gw_rspamd_result_clear(&r);
		/* altered in transit: one word of the body changed */
		alt = g_string_new_len(s->str, (gssize)s->len);
		p = strstr(alt->str, "minutes");
		if (p)
			memcpy(p, "MINUTES", 7);
		CHECK(p != NULL);
		CHECK_RC(rs_check(rs, alt, ip_pass, "a@reject.test", &r), 0);
		CHECK(sym(&r, "R_DKIM_REJECT") && !sym(&r, "R_DKIM_ALLOW"));
		gw_rspamd_result_clear(&r);
		/* ... and from a foreign IP: nothing aligned passes */
		CHECK_RC(rs_check(rs, alt, ip_fail, "a@reject.test", &r), 0);
		CHECK(sym(&r, "R_DKIM_REJECT") && sym(&r, "DMARC_POLICY_REJECT"));
		CHECK(r.action == GW_RSPAMD_REJECT);
		gw_rspamd_result_clear(&r);
		g_string_free(alt, TRUE);
		g_string_free(s, TRUE);
	}
	/* DMARC: a sender domain it does not align with (SPF passes for
	 * other.test, the From: is reject.test) */
	CHECK_RC(rs_check(rs, m, ip_pass, "a@other.test", &r), 0);
	CHECK(sym(&r, "R_SPF_ALLOW") && sym(&r, "DMARC_POLICY_REJECT"));
	CHECK(r.action == GW_RSPAMD_REJECT);
	gw_rspamd_result_clear(&r);
	g_string_free(m, TRUE);
	/* p=none: the failure is reported, the action is not reject */
	m = msg("a@none.test", NULL, NULL, NULL, NULL, 0);
	CHECK_RC(rs_check(rs, m, ip_fail, "a@none.test", &r), 0);
	CHECK(sym(&r, "R_SPF_FAIL") && sym(&r, "DMARC_POLICY_SOFTFAIL"));
	CHECK(r.action != GW_RSPAMD_REJECT);
	gw_rspamd_result_clear(&r);

	/* every recipient is a header of its own: the second one matches
	 * the To: header */
	{
		static const char *const rcpt[] = { "r1@example.com",
			"rcpt@example.com" };
		gw_scan_envelope_t env = { .from = "a@none.test", .rcpt = rcpt,
			.nrcpt = 2, .ip = ip_pass };
		gw_scan_source_t src;
		gw_scan_source_mem(&src, m->str, m->len);
		CHECK_RC(gw_rspamd_check(rs, &src, &env, &r), 0);
		CHECK(sym(&r, "TO_MATCH_ENVRCPT_ALL"));
		gw_rspamd_result_clear(&r);
		env.nrcpt = 1;
		CHECK_RC(gw_rspamd_check(rs, &src, &env, &r), 0);
		CHECK(!sym(&r, "TO_MATCH_ENVRCPT_ALL"));
		gw_rspamd_result_clear(&r);
		env.nrcpt = 2;
		/* header injection through the envelope: refused, not sent */
		env.helo = "evil\r\nUser: admin";
		CHECK_RC(gw_rspamd_check(rs, &src, &env, &r), AR_EINVAL);
		CHECK(r.status == GW_SCAN_FAILED && strstr(r.errmsg, "Helo"));
		gw_rspamd_result_clear(&r);
		gw_scan_source_done(&src);
	}
	g_string_free(m, TRUE);
}

static void test_combined(gw_av_t *av)
{
	static const char *const rcpt[] = { "rcpt@example.com" };
	gw_scan_envelope_t env = { .from = "a@other.test", .rcpt = rcpt,
		.nrcpt = 1, .ip = getenv("GW_IP_PASS"), .queue_id = "C1" };
	gw_scan_conf_t conf = { .nav = 1, .rspamd = { .url = rspamd_url } };
	gw_scan_result_t res;
	gw_scan_source_t src;
	gw_scanners_t *s;
	GString *m;
	char *json;
	unsigned char *z;
	size_t zlen;

	conf.av[0] = av;
	z = zip_of("eicar.com", eicar, sizeof eicar, &zlen);
	m = msg("a@other.test", "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-"
	    "ANTI-UBE-TEST-EMAIL*C.34X", "application/zip", "a.zip", z, zlen);
	for (int par = 0; par < 2; par++) {
		conf.parallel = par;
		CHECK_RC(gw_scanners_new(&conf, &s), 0);
		gw_scan_source_mem(&src, m->str, m->len);
		CHECK_RC(gw_scan_message(s, &src, &env, NULL, &res), 0);
		CHECK(res.nav == 1 && res.infected == 1 && res.unscanned == 0);
		CHECK(res.av[0].status == GW_SCAN_OK &&
		    has_virus(&res.av[0], "Archived.Test.EICAR"));
		CHECK(res.rspamd.status == GW_SCAN_OK &&
		    res.rspamd.action == GW_RSPAMD_REJECT);
		CHECK(res.attach.status == GW_SCAN_OK && res.attach.blocked);
		json = gw_scan_result_json(&res);
		CHECK(json && strstr(json, "\"Archived.Test.EICAR"));
		if (par)
			printf("result: %s\n", json);
		free(json);
		gw_scan_result_free(&res);
		gw_scan_source_done(&src);
		gw_scanners_free(s);
	}
	g_string_free(m, TRUE);
	free(z);
}

/* Each scanner down, then stopped (SIGSTOP), then back. */
static void test_failures(void)
{
	static const char *const rcpt[] = { "rcpt@example.com" };
	gw_scan_envelope_t env = { .from = "a@other.test", .rcpt = rcpt,
		.nrcpt = 1, .ip = getenv("GW_IP_PASS") };
	gw_scan_conf_t conf = { .nav = 1, .parallel = 1,
		.rspamd = { .url = rspamd_url, .connect_ms = 500,
		.total_ms = 1500 } };
	gw_scan_result_t res;
	gw_scan_source_t src;
	gw_scanners_t *s;
	gw_av_t *av = clamd_new(clamd_sock, 1000, 0);
	GString *m = msg("a@other.test", NULL, NULL, NULL, NULL, 0);
	int64_t t0, dt;
	pid_t p;

	gw_scan_conf_t c2;
	gw_scanners_t *s2;

	conf.av[0] = av;
	CHECK_RC(gw_scanners_new(&conf, &s), 0);
	/* s2: the usual timeouts (a freshly started rspamd worker is slow on
	 * its first message); its connection to rspamd stays open */
	c2 = conf;
	c2.rspamd.connect_ms = 0;
	c2.rspamd.total_ms = 0;
	CHECK_RC(gw_scanners_new(&c2, &s2), 0);
	gw_scan_source_mem(&src, m->str, m->len);
	CHECK_RC(gw_scan_message(s, &src, &env, NULL, &res), 0);
	CHECK(res.unscanned == 0);
	gw_scan_result_free(&res);
	CHECK_RC(gw_scan_message(s2, &src, &env, NULL, &res), 0);
	CHECK(res.unscanned == 0);
	gw_scan_result_free(&res);

	/* both stopped: unavailable, at once */
	{
		char cmd[16384];
		snprintf(cmd, sizeof cmd, "stop %s clamd rspamd", svc);
		CHECK(services(cmd) == 0);
	}
	t0 = ar_mono_us();
	CHECK_RC(gw_scan_message(s, &src, &env, NULL, &res), 0);
	dt = ar_mono_us() - t0;
	CHECK(res.unscanned == 1);
	CHECK(res.av[0].status == GW_SCAN_UNAVAILABLE);
	CHECK(res.rspamd.status == GW_SCAN_UNAVAILABLE);
	CHECK(dt < 3000000);
	printf("down: clamd %s (%s), rspamd %s (%s), %.0f ms\n",
	    gw_scan_status_name(res.av[0].status), res.av[0].errmsg,
	    gw_scan_status_name(res.rspamd.status), res.rspamd.errmsg,
	    dt / 1000.0);
	gw_scan_result_free(&res);

	/* back: the retried message passes; s2's kept-alive connection is
	 * to the rspamd that was stopped: libcurl reconnects and sends the
	 * body again from a fresh cursor */
	{
		char cmd[16384];
		snprintf(cmd, sizeof cmd, "start %s --db test clamd rspamd", svc);
		CHECK(services(cmd) == 0);
	}
	CHECK_RC(gw_scan_message(s2, &src, &env, NULL, &res), 0);
	CHECK(res.unscanned == 0 && res.av[0].status == GW_SCAN_OK &&
	    res.rspamd.status == GW_SCAN_OK);
	if (res.unscanned)
		printf("back: clamd %s (%s), rspamd %s (%s)\n",
		    gw_scan_status_name(res.av[0].status), res.av[0].errmsg,
		    gw_scan_status_name(res.rspamd.status), res.rspamd.errmsg);
	gw_scan_result_free(&res);

	/* both stopped with SIGSTOP: timeouts, no hang */
	p = pid_of("clamd");
	CHECK(p > 0);
	kill(p, SIGSTOP);
	signal_tree(pid_of("rspamd"), SIGSTOP);
	t0 = ar_mono_us();
	CHECK_RC(gw_scan_message(s, &src, &env, NULL, &res), 0);
	dt = ar_mono_us() - t0;
	signal_tree(pid_of("rspamd"), SIGCONT);
	kill(p, SIGCONT);
	CHECK(res.av[0].status == GW_SCAN_TIMEOUT);
	CHECK(res.rspamd.status == GW_SCAN_TIMEOUT);
	CHECK(dt < 6000000);       /* clamd: 4 x io_ms at most */
	printf("stopped: clamd %s (%s), rspamd %s (%s), %.0f ms\n",
	    gw_scan_status_name(res.av[0].status), res.av[0].errmsg,
	    gw_scan_status_name(res.rspamd.status), res.rspamd.errmsg,
	    dt / 1000.0);
	gw_scan_result_free(&res);
	/* continued: the same message passes (clamd drains what it had) */
	{
		int ok = 0;
		for (int i = 0; i < 50 && !ok; i++) {
			CHECK_RC(gw_scan_message(s, &src, &env, NULL, &res), 0);
			ok = res.unscanned == 0;
			gw_scan_result_free(&res);
			if (!ok)
				usleep(100000);
		}
		CHECK(ok);
	}
	gw_scan_source_done(&src);
	gw_scanners_free(s);
	gw_scanners_free(s2);
	gw_av_close(av);
	g_string_free(m, TRUE);
}

/* A fake HTTP server: one behaviour per connection, in order. */
static const char fake_py[] =
"import socket, sys, time\n"
"modes = sys.argv[1].split(',')\n"
"s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
"s.bind(('127.0.0.1', 0)); s.listen(8); s.settimeout(30)\n"
"print(s.getsockname()[1], flush=True)\n"
"def serve(mode):\n"
"    c, _ = s.accept(); data = b''\n"
"    while b'\\r\\n\\r\\n' not in data:\n"
"        data += c.recv(65536)\n"
"    head, body = data.split(b'\\r\\n\\r\\n', 1)\n"
"    n = 0\n"
"    for l in head.split(b'\\r\\n'):\n"
"        if l.lower().startswith(b'content-length:'): n = int(l.split(b':')[1])\n"
"    while len(body) < n:\n"
"        body += c.recv(65536)\n"
"    def reply(code, text, length=None):\n"
"        b = text.encode()\n"
"        c.sendall(b'HTTP/1.1 %d X\\r\\nConnection: close\\r\\nContent-Length: %d\\r\\n\\r\\n' % (code, len(b) if length is None else length) + b)\n"
"    if mode == 'notjson': reply(200, '<html>hello</html>')\n"
"    elif mode == 'fields': reply(200, '{\"score\": 1, \"symbols\": {}}')\n"
"    elif mode == 'cut': reply(200, '{\"action\": \"no action\", \"sco', 200)\n"
"    elif mode == 'error': reply(500, '{\"error\": \"internal trouble\"}')\n"
"    elif mode == 'slow': time.sleep(4); reply(200, '{}')\n"
"    elif mode == 'close': pass\n"
"    c.close()\n"
"for mode in modes:\n"
"    try: serve(mode)\n"
"    except Exception: pass\n";

static void test_malformed(void)
{
	static const struct { const char *mode; gw_scan_status_t st; int rc;
		const char *text; } cases[] = {
		{ "notjson", GW_SCAN_FAILED, AR_EPROTO, "not JSON" },
		{ "fields", GW_SCAN_FAILED, AR_EPROTO, "no \"action\"" },
		{ "cut", GW_SCAN_FAILED, AR_EPROTO, NULL },
		{ "error", GW_SCAN_FAILED, AR_EPROTO, "internal trouble" },
		{ "close", GW_SCAN_UNAVAILABLE, AR_EAGAIN, NULL },
		{ "slow", GW_SCAN_TIMEOUT, AR_ETIMEOUT, NULL },   /* last */
	};
	char path[1200], modes[256] = "", url[64];
	GString *m = msg("a@other.test", NULL, NULL, NULL, NULL, 0);
	gw_rspamd_result_t r;
	gw_rspamd_t *rs;
	FILE *f;
	int port = 0;
	size_t i;

	for (i = 0; i < AR_ARRAY_LEN(cases); i++) {
		strcat(modes, cases[i].mode);
		strcat(modes, i + 1 < AR_ARRAY_LEN(cases) ? "," : "");
	}
	snprintf(path, sizeof path, "%s/fake.py", svc);
	g_file_set_contents(path, fake_py, -1, NULL);
	{
		char cmd[16384];
		snprintf(cmd, sizeof cmd, "python3 %s %s", path, modes);
		f = popen(cmd, "r");      /* it ends once every mode is served */
	}
	if (!f || fscanf(f, "%d", &port) != 1) {
		CHECK(!"fake server did not start");
		if (f)
			pclose(f);
		g_string_free(m, TRUE);
		return;
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	{
		gw_rspamd_conf_t c = { .url = url, .total_ms = 1500 };
		CHECK_RC(gw_rspamd_new(&c, &rs), 0);
	}
	for (i = 0; i < AR_ARRAY_LEN(cases); i++) {
		int rc = rs_check(rs, m, "192.0.2.10", "a@other.test", &r);
		CHECK_RC(rc, cases[i].rc);
		CHECK(r.status == cases[i].st);
		CHECK(!cases[i].text || strstr(r.errmsg, cases[i].text));
		printf("fake rspamd %-8s -> %s: %s\n", cases[i].mode,
		    gw_scan_status_name(r.status), r.errmsg);
		gw_rspamd_result_clear(&r);
	}
	gw_rspamd_free(rs);
	pclose(f);
	g_string_free(m, TRUE);
}

/* Concurrent scans: NT threads, each its own gw_scanners_t. */
typedef struct conc {
	gw_av_t *av;
	const gw_scan_source_t *src;
	int n;
	double *lat;
} conc_t;

static void *conc_run(void *arg)
{
	static const char *const rcpt[] = { "rcpt@example.com" };
	conc_t *c = arg;
	gw_scan_envelope_t env = { .from = "a@other.test", .rcpt = rcpt,
		.nrcpt = 1, .ip = getenv("GW_IP_PASS") };
	gw_scan_conf_t conf = { .nav = 1, .parallel = 1,
		.rspamd = { .url = rspamd_url } };
	gw_scan_result_t res;
	gw_scanners_t *s;
	int64_t t0;

	conf.av[0] = c->av;
	if (gw_scanners_new(&conf, &s))
		return NULL;
	for (int i = 0; i < c->n; i++) {
		t0 = ar_mono_us();
		gw_scan_message(s, c->src, &env, NULL, &res);
		c->lat[i] = (ar_mono_us() - t0) / 1000.0;
		gw_scan_result_free(&res);
	}
	gw_scanners_free(s);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Latency of one 10 KB message: clamd, rspamd, both (printed only). */
static void measure(gw_av_t *av)
{
	static const char *const rcpt[] = { "rcpt@example.com" };
	gw_scan_envelope_t env = { .from = "a@other.test", .rcpt = rcpt,
		.nrcpt = 1, .ip = getenv("GW_IP_PASS") };
	gw_scan_conf_t conf = { .nav = 1, .rspamd = { .url = rspamd_url } };
	GString *body = g_string_new(NULL), *m;
	gw_scan_source_t src;
	gw_scan_result_t res;
	gw_av_result_t ar;
	gw_rspamd_result_t rr;
	gw_rspamd_t *rs;
	gw_scanners_t *s;
	enum { N = 20 };
	double t[4][N];
	int64_t t0;

	while (body->len < 10000)
		g_string_append(body, "The quarterly figures are attached; "
		    "please review them before Thursday's meeting.\r\n");
	m = msg("a@other.test", body->str, NULL, NULL, NULL, 0);
	gw_scan_source_mem(&src, m->str, m->len);
	conf.av[0] = av;
	gw_rspamd_new(&conf.rspamd, &rs);
	for (int i = 0; i < N; i++) {
		t0 = ar_mono_us();
		gw_av_scan(av, &src, &ar);
		t[0][i] = (ar_mono_us() - t0) / 1000.0;
		gw_av_result_clear(&ar);
		t0 = ar_mono_us();
		gw_rspamd_check(rs, &src, &env, &rr);
		t[1][i] = (ar_mono_us() - t0) / 1000.0;
		gw_rspamd_result_clear(&rr);
	}
	for (int par = 0; par < 2; par++) {
		conf.parallel = par;
		gw_scanners_new(&conf, &s);
		for (int i = 0; i < N; i++) {
			t0 = ar_mono_us();
			gw_scan_message(s, &src, &env, NULL, &res);
			t[2 + par][i] = (ar_mono_us() - t0) / 1000.0;
			gw_scan_result_free(&res);
		}
		gw_scanners_free(s);
	}
	for (int k = 0; k < 4; k++) {
		static const char *const what[4] = { "clamd INSTREAM",
			"rspamd /checkv2", "all, sequential", "all, parallel" };
		double sorted[N];
		memcpy(sorted, t[k], sizeof sorted);
		for (int i = 1; i < N; i++)
			for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
				double x = sorted[j];
				sorted[j] = sorted[j - 1];
				sorted[j - 1] = x;
			}
		printf("latency %zu-byte message, %-16s p50 %.2f ms  p90 %.2f ms"
		    "  (%d runs)\n", m->len, what[k], sorted[N / 2],
		    sorted[N * 9 / 10], N);
	}
	/* 4 messages at a time */
	{
		enum { NT = 4, PER = 8 };
		pthread_t th[NT];
		conc_t c[NT];
		double lat[NT * PER];
		int64_t t1 = ar_mono_us();
		for (int i = 0; i < NT; i++) {
			c[i] = (conc_t){ av, &src, PER, lat + i * PER };
			pthread_create(&th[i], NULL, conc_run, &c[i]);
		}
		for (int i = 0; i < NT; i++)
			pthread_join(th[i], NULL);
		qsort(lat, NT * PER, sizeof lat[0], cmp_double);
		printf("latency %zu-byte message, %d at a time: p50 %.2f ms  "
		    "p90 %.2f ms, %.1f msg/s\n", m->len, NT, lat[NT * PER / 2],
		    lat[NT * PER * 9 / 10],
		    NT * PER / ((ar_mono_us() - t1) / 1e6));
	}
	gw_rspamd_free(rs);
	gw_scan_source_done(&src);
	g_string_free(m, TRUE);
	g_string_free(body, TRUE);
}

int main(void)
{
	const char *srcdir = getenv("AR_SOURCE_DIR");
	char *base;
	gw_av_t *av;
	gw_rspamd_t *rs;
	gw_rspamd_conf_t rc = { 0 };
	char cmd[16384];

	if (!srcdir) {
		fprintf(stderr, "AR_SOURCE_DIR is not set\n");
		return 2;
	}
	g_mime_init();
	ar_log_set_level(AR_LOG_WARN);
	ar_unhex(EICAR_HEX, eicar, sizeof eicar);
	snprintf(scripts_dir, sizeof scripts_dir, "%s/scripts", srcdir);
	snprintf(script, sizeof script, "%s/gateway-services.sh", scripts_dir);
	base = tl_tmpdir("gwscan");
	snprintf(svc, sizeof svc, "%s", base);
	snprintf(cmd, sizeof cmd, "start %s --db test", svc);
	services_started = 1;
	atexit(services_atexit);
	if (services(cmd) != 0) {
		snprintf(cmd, sizeof cmd, "cat %s/services.log >&2", svc);
		(void)!system(cmd);
		fprintf(stderr, "the gateway services did not start\n");
		free(base);
		return 2;
	}
	load_env(svc);
	clamd_sock = getenv("CLAMD_SOCKET");
	rspamd_url = getenv("RSPAMD_URL");

	av = clamd_new(clamd_sock, 10000, 0);
	rc.url = rspamd_url;
	CHECK_RC(gw_rspamd_new(&rc, &rs), 0);
	test_clamd(av);
	test_clamd_limit();
	test_rspamd(rs);
	test_combined(av);
	measure(av);
	test_malformed();
	test_failures();
	gw_rspamd_free(rs);
	gw_av_close(av);

	snprintf(cmd, sizeof cmd, "stop %s", svc);
	CHECK(services(cmd) == 0);
	services_started = 0;
	if (tl_failed) {
		snprintf(cmd, sizeof cmd, "tail -n 30 %s/services.log >&2", svc);
		(void)!system(cmd);
	}
	tl_rmrf(base);
	free(base);
	g_mime_shutdown();
	return tl_done();
}
