/*
 * part.c - a part's content as it is read, its transfer encoding undone
 * (mime_part_stream).
 */
#include "mime/mime.h"

GMimeStream *mime_part_stream(GMimePart *part)
{
	GMimeDataWrapper *dw = g_mime_part_get_content(part);
	GMimeContentEncoding enc;
	GMimeStream *raw, *fs;

	if (!dw || !(raw = g_mime_data_wrapper_get_stream(dw)))
		return NULL;
	enc = g_mime_data_wrapper_get_encoding(dw);
	g_mime_stream_reset(raw);
	fs = g_mime_stream_filter_new(raw);
	if (enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		GMimeFilter *f = g_mime_filter_basic_new(enc, FALSE);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
		g_object_unref(f);
	}
	return fs;
}
