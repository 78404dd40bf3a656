/*
 * journal_util.c - defaults, names, and streaming an original's exact
 * bytes out of the input.  Uses only the public API of journal.h.
 */
#include <stdlib.h>
#include <string.h>

#include "ingest/journal.h"

#define JCOPY_CHUNK 65536

static const struct {
	unsigned flag;
	const char *name, *reason;
} flag_tab[] = {
	{ JOURNAL_F_NO_ORIGINAL, "no_original",
	  "journal report has no message/rfc822 part" },
	{ JOURNAL_F_NO_ENVELOPE, "no_envelope",
	  "journal report has no text/plain envelope part" },
	{ JOURNAL_F_TRUNCATED, "truncated",
	  "MIME structure ends before its closing boundary" },
	{ JOURNAL_F_DEPTH, "depth", "MIME nesting deeper than the limit" },
	{ JOURNAL_F_HEADER_SIZE, "header_size",
	  "a header block is larger than the limit" },
	{ JOURNAL_F_ENVELOPE_SIZE, "envelope_size",
	  "the envelope part is larger than the limit" },
	{ JOURNAL_F_TOO_MANY_PARTS, "too_many_parts",
	  "more MIME parts than the limit" },
	{ JOURNAL_F_MALFORMED, "malformed", "multipart without a boundary" },
	{ JOURNAL_F_PARENT_MISMATCH, "parent_mismatch", NULL },
	{ JOURNAL_F_EXTRA_ORIGINALS, "extra_originals", NULL },
	{ JOURNAL_F_CHARSET, "charset", NULL },
};

void journal_opts_default(struct journal_opts *opts)
{
	opts->max_depth = 100;
	opts->max_header = 1u << 20;
	opts->max_envelope = 16u << 20;
	opts->max_parts = 10000;
	opts->plain_only = 0;
}

const char *journal_kind_name(enum journal_kind kind)
{
	switch (kind) {
	case JOURNAL_PLAIN: return "plain";
	case JOURNAL_EXCHANGE: return "exchange";
	case JOURNAL_EXCHANGE2003: return "exchange2003";
	case JOURNAL_NDR_EXCHANGE: return "ndr_exchange";
	}
	return "?";
}

const char *journal_flag_name(unsigned flag)
{
	size_t i;

	for (i = 0; i < AR_ARRAY_LEN(flag_tab); i++)
		if (flag_tab[i].flag == flag)
			return flag_tab[i].name;
	return "";
}

const char *journal_reason(const journal_t *j)
{
	unsigned flags = journal_flags(j);
	size_t i;

	if (!(flags & JOURNAL_F_FALLBACK))
		return NULL;
	for (i = 0; i < AR_ARRAY_LEN(flag_tab); i++)
		if ((flags & flag_tab[i].flag) && flag_tab[i].reason)
			return flag_tab[i].reason;
	return NULL;
}

int journal_original_copy(const journal_t *j, size_t index,
    GMimeStream *in, journal_write_cb cb, void *arg)
{
	const struct journal_original *o = journal_original(j, index);
	GMimeStream *s;
	unsigned char *buf;
	int64_t total = 0;
	ssize_t got = 0;
	int rc = 0;

	if (o == NULL)
		return AR_ENOENT;
	if (in == NULL || cb == NULL)
		return AR_EINVAL;
	if ((buf = malloc(JCOPY_CHUNK)) == NULL)
		return AR_ENOMEM;
	s = g_mime_stream_substream(in, o->offset, o->offset + o->length);
	if (s != NULL && o->encoding != JOURNAL_ENC_NONE) {
		GMimeStream *fs = g_mime_stream_filter_new(s);
		GMimeFilter *f = g_mime_filter_basic_new(
		    o->encoding == JOURNAL_ENC_BASE64 ?
		    GMIME_CONTENT_ENCODING_BASE64 :
		    o->encoding == JOURNAL_ENC_QP ?
		    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE :
		    GMIME_CONTENT_ENCODING_UUENCODE, FALSE);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
		g_object_unref(f);
		g_object_unref(s);
		s = fs;
	}
	if (s == NULL) {
		free(buf);
		return AR_ENOMEM;
	}
	while (rc == 0 && !g_mime_stream_eos(s) &&
	    (got = g_mime_stream_read(s, (char *)buf, JCOPY_CHUNK)) > 0) {
		total += got;
		rc = cb(arg, buf, (size_t)got);
	}
	if (rc == 0 && got < 0)
		rc = AR_EIO;
	else if (rc == 0 && o->encoding == JOURNAL_ENC_NONE &&
	    total != o->length)
		rc = AR_ETRUNC;
	g_object_unref(s);
	free(buf);
	return rc;
}
