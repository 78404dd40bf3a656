/*
 * scan_source.c - messages for the scanners: in memory, or a spool entry
 * read through its sealed reader (each cursor a reader of its own).
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "gateway/scan.h"
#include "mime/mime.h"

const char *gw_scan_status_name(gw_scan_status_t s)
{
	switch (s) {
	case GW_SCAN_NOT_RUN: return "not_run";
	case GW_SCAN_OK: return "ok";
	case GW_SCAN_UNAVAILABLE: return "unavailable";
	case GW_SCAN_TIMEOUT: return "timeout";
	case GW_SCAN_TOO_LARGE: return "too_large";
	case GW_SCAN_FAILED: return "failed";
	}
	return "unknown";
}

void gw_scan_source_done(gw_scan_source_t *src)
{
	if (src && src->release)
		src->release(src->arg);
	if (src)
		memset(src, 0, sizeof *src);
}

/* --- memory ----------------------------------------------------------- */

typedef struct mem_src {
	const unsigned char *buf;
	size_t len;
	GByteArray *ba;       /* wraps buf (not owned) for the GMime streams */
} mem_src_t;

typedef struct mem_cur {
	const mem_src_t *m;
	size_t off;
} mem_cur_t;

static int mem_open(void *arg, void **cur)
{
	mem_cur_t *c = malloc(sizeof *c);

	if (!c)
		return AR_ENOMEM;
	c->m = arg;
	c->off = 0;
	*cur = c;
	return 0;
}

static int mem_read(void *cur, void *buf, size_t len, size_t *got)
{
	mem_cur_t *c = cur;
	size_t n = c->m->len - c->off;

	if (n > len)
		n = len;
	memcpy(buf, c->m->buf + c->off, n);
	c->off += n;
	*got = n;
	return 0;
}

static void mem_close(void *cur)
{
	free(cur);
}

static GMimeStream *mem_stream(void *arg, int *rc)
{
	mem_src_t *m = arg;
	GMimeStream *s;

	/* a stream over the caller's bytes: no copy */
	s = g_mime_stream_mem_new_with_byte_array(m->ba);
	if (s)
		g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
	if (!s) {
		*rc = AR_ENOMEM;
		return NULL;
	}
	*rc = 0;
	return s;
}

static void mem_release(void *arg)
{
	mem_src_t *m = arg;

	g_byte_array_free(m->ba, FALSE);    /* the bytes stay the caller's */
	free(m);
}

int gw_scan_source_mem(gw_scan_source_t *src, const void *buf, size_t len)
{
	mem_src_t *m;

	memset(src, 0, sizeof *src);
	if (!buf && len)
		return AR_EINVAL;
	if (!(m = malloc(sizeof *m)))
		return AR_ENOMEM;
	m->buf = buf ? buf : (const void *)"";
	m->len = len;
	m->ba = g_byte_array_new_take((guint8 *)m->buf, m->len);
	src->arg = m;
	src->size = len;
	src->open = mem_open;
	src->read = mem_read;
	src->close = mem_close;
	src->mime_stream = mem_stream;
	src->release = mem_release;
	return 0;
}

/* --- a spool entry ---------------------------------------------------------- */

typedef struct spool_src {
	spool_t *sp;
	uint8_t tenant[SPOOL_TENANT_LEN];
	uint8_t id[SPOOL_ID_LEN];
	uint64_t len;                /* the message's bytes in the entry */
} spool_src_t;

typedef struct spool_cur {
	store_reader_t *r;
	uint64_t left;
} spool_cur_t;

static int spool_src_open(void *arg, void **cur)
{
	spool_src_t *s = arg;
	spool_cur_t *c;
	uint64_t len;
	int rc;

	if (!(c = malloc(sizeof *c)))
		return AR_ENOMEM;
	if ((rc = spool_open_entry(s->sp, s->tenant, s->id, &c->r, &len,
	    NULL))) {
		free(c);
		return rc;
	}
	c->left = len < s->len ? len : s->len;
	*cur = c;
	return 0;
}

static int spool_src_read(void *cur, void *buf, size_t len, size_t *got)
{
	spool_cur_t *c = cur;
	int rc;

	*got = 0;
	if (c->left == 0)
		return 0;
	if (len > c->left)
		len = (size_t)c->left;
	if ((rc = store_reader_read(c->r, buf, len, got)))
		return rc;
	if (*got == 0)
		return AR_ETRUNC;     /* the entry ended inside the message */
	c->left -= *got;
	return 0;
}

static void spool_src_close(void *cur)
{
	spool_cur_t *c = cur;

	store_reader_close(c->r);
	free(c);
}

static GMimeStream *spool_src_stream(void *arg, int *rc)
{
	spool_src_t *s = arg;
	store_reader_t *r;
	GMimeStream *whole, *msg;
	uint64_t len;

	if ((*rc = spool_open_entry(s->sp, s->tenant, s->id, &r, &len, NULL)))
		return NULL;
	if (!(whole = mime_sealed_stream_new(r, 1))) {
		store_reader_close(r);
		*rc = AR_ENOMEM;
		return NULL;
	}
	msg = g_mime_stream_substream(whole, 0, (gint64)len);
	g_object_unref(whole);
	if (!msg)
		*rc = AR_ENOMEM;
	return msg;
}

static void spool_src_release(void *arg)
{
	free(arg);
}

int gw_scan_source_spool(gw_scan_source_t *src, spool_t *sp,
    const uint8_t tenant[SPOOL_TENANT_LEN], const uint8_t id[SPOOL_ID_LEN])
{
	spool_src_t *s;
	store_reader_t *r;
	uint64_t len;
	int rc;

	memset(src, 0, sizeof *src);
	/* the message's length (and the entry is there and opens) */
	if ((rc = spool_open_entry(sp, tenant, id, &r, &len, NULL)))
		return rc;
	store_reader_close(r);
	if (!(s = malloc(sizeof *s)))
		return AR_ENOMEM;
	s->sp = sp;
	memcpy(s->tenant, tenant, SPOOL_TENANT_LEN);
	memcpy(s->id, id, SPOOL_ID_LEN);
	s->len = len;
	src->arg = s;
	src->size = len;
	src->open = spool_src_open;
	src->read = spool_src_read;
	src->close = spool_src_close;
	src->mime_stream = spool_src_stream;
	src->release = spool_src_release;
	return 0;
}
