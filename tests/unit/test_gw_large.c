/*
 * test_gw_large.c - a 100 MB message scanned from a real spool entry
 * (sealed, read back through its authenticated reader: no plaintext on
 * our side of the disk) by the real clamd, rspamd's size limit and the
 * attachment walk, with this process's peak memory (VmHWM, reset before
 * the scan through /proc/self/clear_refs) bounded far below the message.
 * The EICAR file sits in a ZIP at the very end of the message: clamd
 * finding it shows that the whole message was streamed to it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <gmime/gmime.h>
#include <sodium.h>

#include "ar.h"
#include "gateway/scan.h"
#include "mime/mime.h"
#include "spool/spool.h"
#include "testlib.h"

#define EICAR_HEX "58354f2150254041505b345c505a58353428505e293743432937" \
	"7d2445494341522d5354414e444152442d414e544956495255532d54455354" \
	"2d46494c452124482b482a"
#define TARGET (100u * 1000 * 1000)   /* bytes of the message */

/* Stop the services when the test ends, also through exit() on a
 * failure (tl_keysvc_start exits when the key service does not start). */
static char stop_cmd[4096];

static void stop_atexit(void)
{
	if (stop_cmd[0])
		(void)!system(stop_cmd);
	stop_cmd[0] = '\0';
}

static long status_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = atol(line + strlen(key));
	if (f)
		fclose(f);
	return v;
}

static int reset_peak(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	int ok = fd >= 0 && write(fd, "5", 1) == 1;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* base64 of len bytes (len a multiple of 57 but for the last call) in
 * 76-column lines, written to the spool. */
static int put_b64(spool_put_t *p, const unsigned char *data, size_t len)
{
	static char out[(65536 / 57 + 1) * 78];
	size_t i, o = 0;

	for (i = 0; i < len; i += 57) {
		size_t n = len - i < 57 ? len - i : 57;
		gint state = 0, save = 0;
		o += g_base64_encode_step(data + i, n, FALSE, out + o, &state,
		    &save);
		o += g_base64_encode_close(FALSE, out + o, &state, &save);
		out[o++] = '\r';
		out[o++] = '\n';
		if (o > sizeof out - 200) {
			int rc = spool_put_write(p, out, o);
			if (rc)
				return rc;
			o = 0;
		}
	}
	return o ? spool_put_write(p, out, o) : 0;
}

static unsigned char *eicar_zip(size_t *len)
{
	unsigned char eicar[68], *buf = malloc(4096);
	size_t used = 0;
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	ar_unhex(EICAR_HEX, eicar, sizeof eicar);
	archive_write_set_format_zip(a);
	archive_write_open_memory(a, buf, 4096, &used);
	archive_entry_set_pathname(e, "eicar.com");
	archive_entry_set_size(e, sizeof eicar);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_write_header(a, e);
	archive_write_data(a, eicar, sizeof eicar);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
	*len = used;
	return buf;
}

/* Spool a ~100 MB message: text, a big attachment of pseudo-random
 * bytes, and at the end a ZIP holding EICAR. */
static int spool_big(spool_t *sp, const uint8_t *tenant, uint8_t *id)
{
	static const char head[] = "From: <big@other.test>\r\n"
	    "To: <rcpt@example.com>\r\nSubject: the big one\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
	    "boundary=\"BIG\"\r\n\r\n--BIG\r\nContent-Type: text/plain\r\n\r\n"
	    "Two attachments.\r\n--BIG\r\nContent-Type: "
	    "application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n";
	static const char mid[] = "--BIG\r\nContent-Type: application/zip\r\n"
	    "Content-Transfer-Encoding: base64\r\nContent-Disposition: "
	    "attachment; filename=\"last.zip\"\r\n\r\n";
	static unsigned char chunk[57 * 1100];
	spool_put_t *p;
	size_t raw, done = 0, zlen;
	unsigned char *zip = eicar_zip(&zlen);
	uint64_t x = 88172645463325252ull;
	int rc;

	/* decoded bytes so that the whole is about TARGET */
	raw = (TARGET - 1000) / 78 * 57;
	raw -= raw % 57;
	if ((rc = spool_put_begin(sp, tenant, 1, &p)))
		return rc;
	rc = spool_put_write(p, head, sizeof head - 1);
	while (!rc && done < raw) {
		size_t n = raw - done < sizeof chunk ? raw - done : sizeof chunk;
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			chunk[i] = (unsigned char)x;
		}
		rc = put_b64(p, chunk, n);
		done += n;
	}
	if (!rc)
		rc = spool_put_write(p, mid, sizeof mid - 1);
	if (!rc)
		rc = put_b64(p, zip, zlen);
	if (!rc)
		rc = spool_put_write(p, "--BIG--\r\n", 9);
	free(zip);
	if (rc) {
		spool_put_abort(p);
		return rc;
	}
	return spool_put_finish(p, "{\"mail_from\":\"big@other.test\"}", id);
}

int main(void)
{
	const char *srcdir = getenv("AR_SOURCE_DIR");
	char *base = tl_tmpdir("gwlarge");
	char ksdir[1024], sock[1100], spdir[1100], svc[1100], cmd[4096];
	uint8_t tenant[16], id[16];
	static const char *const rcpt[] = { "rcpt@example.com" };
	gw_scan_envelope_t env = { .from = "big@other.test", .rcpt = rcpt,
		.nrcpt = 1, .ip = "192.0.2.10" };
	gw_scan_conf_t conf = { .nav = 1, .rspamd = {
		.url = "http://127.0.0.1:9" } };   /* never reached: too large */
	gw_clamd_conf_t cc = { .io_ms = 120000, .total_ms = 280000 };
	gw_scan_result_t res;
	gw_scan_source_t src;
	gw_scanners_t *s;
	gw_av_t *av;
	keysvc_t *ks;
	spool_t *sp;
	pid_t kspid;
	long rss0, hwm;
	int64_t t0;
	size_t i;

	if (!srcdir || sodium_init() < 0)
		return 2;
	g_mime_init();
	ar_log_set_level(AR_LOG_WARN);
	snprintf(ksdir, sizeof ksdir, "%s/ks", base);
	snprintf(sock, sizeof sock, "%s/keysvc.sock", ksdir);
	snprintf(spdir, sizeof spdir, "%s/spool", base);
	snprintf(svc, sizeof svc, "%s/svc", base);
	if (mkdir(ksdir, 0700) < 0)
		return 2;
	snprintf(stop_cmd, sizeof stop_cmd, "bash %s/scripts/gateway-services.sh "
	    "stop %s >>%s.log 2>&1", srcdir, svc, svc);
	atexit(stop_atexit);
	snprintf(cmd, sizeof cmd, "bash %s/scripts/gateway-services.sh start "
	    "%s --db test clamd >%s.log 2>&1", srcdir, svc, svc);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof cmd, "cat %s.log >&2", svc);
		(void)!system(cmd);
		return 2;
	}
	kspid = tl_keysvc_start(ksdir);
	CHECK_RC(keysvc_open(&ks, sock, 2000), 0);
	randombytes_buf(tenant, 16);
	CHECK_RC(keysvc_tenant_create(ks, tenant), 0);
	CHECK_RC(spool_open(&sp, spdir, ks), 0);
	t0 = ar_mono_us();
	CHECK_RC(spool_big(sp, tenant, id), 0);
	printf("spooled the message in %.1f s\n", (ar_mono_us() - t0) / 1e6);
	CHECK_RC(gw_scan_source_spool(&src, sp, tenant, id), 0);
	CHECK(src.size > TARGET - 2000 && src.size < TARGET + 2000);
	printf("message: %llu bytes\n", (unsigned long long)src.size);

	snprintf(cmd, sizeof cmd, "%s/clamd/clamd.sock", svc);
	cc.socket = cmd;
	CHECK_RC(gw_clamd_new(&cc, &av), 0);
	conf.av[0] = av;
	CHECK_RC(gw_scanners_new(&conf, &s), 0);

	rss0 = status_kb("VmRSS:");
	CHECK(reset_peak());
	t0 = ar_mono_us();
	CHECK_RC(gw_scan_message(s, &src, &env, NULL, &res), 0);
	hwm = status_kb("VmHWM:");
	printf("scanned in %.1f s (clamd %.1f s, walk %.1f s); RSS before %ld "
	    "KiB, peak during the scan %ld KiB (+%ld KiB)\n",
	    (ar_mono_us() - t0) / 1e6, res.av[0].dur_us / 1e6,
	    res.attach.dur_us / 1e6, rss0, hwm, hwm - rss0);
	/* far below the message's 100 MB (ASan's allocator included) */
	CHECK(hwm - rss0 < 32 * 1024);
	CHECK(res.av[0].status == GW_SCAN_OK);
	CHECK(res.av[0].infected == 1);
	if (res.av[0].status != GW_SCAN_OK)
		printf("clamd: %s\n", res.av[0].errmsg);
	CHECK(res.rspamd.status == GW_SCAN_TOO_LARGE);
	CHECK(res.attach.status == GW_SCAN_OK);
	CHECK(res.attach.blocked == 1);       /* eicar.com, by extension */
	for (i = 0; i < res.attach.nfindings; i++)
		printf("finding %s %s %s reasons=%#x size=%llu\n",
		    res.attach.findings[i].path,
		    res.attach.findings[i].filename ?
		    res.attach.findings[i].filename : "-",
		    gw_ftype_name(res.attach.findings[i].real),
		    res.attach.findings[i].reasons,
		    (unsigned long long)res.attach.findings[i].size);
	CHECK(res.attach.nfindings == 3);
	gw_scan_result_free(&res);

	/* the tenant's limit below it: the walk says too large (no engine
	 * this time: clamd would read it all again) */
	{
		gw_attach_limits_t lim = { .max_message_bytes = 50u << 20 };
		gw_scan_conf_t none = { .nav = 0 };
		gw_scanners_t *s2;
		CHECK_RC(gw_scanners_new(&none, &s2), 0);
		CHECK_RC(gw_scan_message(s2, &src, &env, &lim, &res), 0);
		CHECK(res.attach.status == GW_SCAN_TOO_LARGE &&
		    res.attach.too_large);
		gw_scan_result_free(&res);
		gw_scanners_free(s2);
	}

	gw_scanners_free(s);
	gw_av_close(av);
	gw_scan_source_done(&src);
	spool_close(sp);
	keysvc_close(ks);
	tl_keysvc_stop(kspid);
	CHECK(system(stop_cmd) == 0);
	stop_cmd[0] = '\0';
	tl_rmrf(base);
	free(base);
	g_mime_shutdown();
	return tl_done();
}
