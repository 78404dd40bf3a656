/*
 * backend_s3_check.c - `archivectl bucket check` and the check archived
 * makes before it starts: the credentials work, the bucket exists with
 * versioning and Object Lock enabled, and this host's clock agrees with
 * the server's (Object Lock dates and request signatures depend on it).
 */
#include "store/backend_s3.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ar.h"


/* Date: Wed, 02 Dec 2026 18:14:28 GMT */
static int http_date(const char *s, int64_t *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!s[0] || !strptime(s, "%a, %d %b %Y %H:%M:%S", &tm))
		return AR_EINVAL;
	*t = (int64_t)timegm(&tm);
	return 0;
}

static int item(store_backend_t *be, store_check_cb cb, void *arg,
    const char *name, int rc, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int item(store_backend_t *be, store_check_cb cb, void *arg,
    const char *name, int rc, const char *fmt, ...)
{
	char detail[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if (cb)
		cb(arg, name, rc == 0, detail);
	if (rc)
		store_be_fail(be, rc, "%s: %s", name, detail);
	return rc;
}

int s3_check(store_backend_t *be, int64_t max_skew, store_check_cb cb,
    void *arg)
{
	s3_client_t *c = &((s3_backend_t *)be)->c;
	s3_req_t *r = malloc(sizeof *r);
	char val[128], why[600];
	int64_t server, local, skew;
	int rc;

	if (!r)
		return AR_ENOMEM;
	/* versioning: needs the credentials and the bucket */
	s3_req_init(r, "GET", "", "versioning=");
	s3_run1(c, r);
	rc = s3_status(r);
	s3_describe(r, why, sizeof why);
	local = (int64_t)time(NULL) + c->clock_offset;   /* the real clock signs */
	if (r->cc != CURLE_OK) {
		rc = item(be, cb, arg, "reachable", AR_EAGAIN, "%s cannot be "
		    "reached: %s", c->endpoint, r->err_msg);
		goto out;
	}
	item(be, cb, arg, "reachable", 0, "%s answers", c->endpoint);
	if (rc == AR_ECONFIG || (r->date[0] && http_date(r->date, &server) == 0
	    && (skew = server - local, skew < 0 ? -skew : skew) > max_skew)) {
		if (http_date(r->date, &server))
			server = local;
		rc = item(be, cb, arg, "clock", AR_ECONFIG, "this host's clock "
		    "is %lld s %s the object store's (its Date: %s); Object "
		    "Lock dates and request signatures need them within %lld "
		    "s: synchronise the clock (NTP)", (long long)(local > server
		    ? local - server : server - local), local > server ?
		    "ahead of" : "behind", r->date[0] ? r->date : "?",
		    (long long)max_skew);
		goto out;
	}
	item(be, cb, arg, "clock", 0, "within %lld s of the object store's",
	    (long long)max_skew);
	if (!strcmp(r->err_code, "InvalidAccessKeyId") ||
	    !strcmp(r->err_code, "SignatureDoesNotMatch") ||
	    (rc == AR_EPERM && strcmp(r->err_code, "AccessDenied"))) {
		rc = item(be, cb, arg, "credentials", AR_EPERM, "refused by "
		    "the object store (%s): check s3_access_key/s3_secret_key "
		    "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", r->err_code);
		goto out;
	}
	if (rc == AR_EPERM) {
		rc = item(be, cb, arg, "credentials", AR_EPERM, "accepted, but "
		    "not allowed to read bucket %s's settings (%s)", c->bucket,
		    why);
		goto out;
	}
	if (rc == AR_ENOENT) {
		item(be, cb, arg, "credentials", 0, "accepted");
		rc = item(be, cb, arg, "bucket", AR_ENOENT, "bucket %s does not "
		    "exist (create it with Object Lock enabled)", c->bucket);
		goto out;
	}
	if (rc) {
		rc = item(be, cb, arg, "bucket", rc, "%s", why);
		goto out;
	}
	item(be, cb, arg, "credentials", 0, "accepted");
	item(be, cb, arg, "bucket", 0, "%s exists", c->bucket);
	s3_xml_get((char *)r->resp, r->resp_len, "Status", NULL, val,
	    sizeof val);
	if (strcmp(val, "Enabled")) {
		rc = item(be, cb, arg, "versioning", AR_ECONFIG, "bucket %s "
		    "has versioning %s: Object Lock needs it Enabled",
		    c->bucket, val[0] ? val : "never enabled");
		goto out;
	}
	item(be, cb, arg, "versioning", 0, "Enabled");
	s3_req_clear(r);
	s3_req_init(r, "GET", "", "object-lock=");
	s3_run1(c, r);
	rc = s3_status(r);
	val[0] = '\0';
	if (rc == 0)
		s3_xml_get((char *)r->resp, r->resp_len, "ObjectLockEnabled",
		    NULL, val, sizeof val);
	if (rc == AR_ENOENT || (rc == 0 && strcmp(val, "Enabled"))) {
		rc = item(be, cb, arg, "object-lock", AR_ECONFIG, "bucket %s "
		    "has no Object Lock: archived needs a bucket created with "
		    "Object Lock enabled (its COMPLIANCE retention is what "
		    "makes the archive write-once)", c->bucket);
		goto out;
	}
	if (rc) {
		rc = item(be, cb, arg, "object-lock", rc, "%s",
		    s3_describe(r, why, sizeof why));
		goto out;
	}
	if (s3_xml_get((char *)r->resp, r->resp_len, "DefaultRetention", NULL,
	    val, sizeof val) == 0) {
		char mode[32] = "", days[32] = "", years[32] = "";
		s3_xml_get((char *)r->resp, r->resp_len, "Mode", NULL, mode,
		    sizeof mode);
		s3_xml_get((char *)r->resp, r->resp_len, "Days", NULL, days,
		    sizeof days);
		s3_xml_get((char *)r->resp, r->resp_len, "Years", NULL, years,
		    sizeof years);
		rc = item(be, cb, arg, "object-lock", AR_ECONFIG, "bucket %s "
		    "has a default retention (%s %s %s): archived sets each "
		    "object's own retain-until, and objects it keeps without "
		    "one (quarantine copies) must stay deletable; remove the "
		    "bucket's default retention rule", c->bucket,
		    mode[0] ? mode : "?", days[0] ? days : years,
		    days[0] ? "days" : "years");
		goto out;
	}
	item(be, cb, arg, "object-lock", 0, "Enabled (every object is put in "
	    "COMPLIANCE mode with its own retain-until; no default retention)");
	rc = 0;
out:
	s3_req_clear(r);
	free(r);
	return rc;
}
