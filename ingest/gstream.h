/*
 * gstream.h - a read-only, seekable GMimeStream over a sealed object
 * (store_reader_t), so GMime and the journal parser read a spooled or
 * stored message without any plaintext reaching disk.
 *
 * Positions are plaintext offsets of the object.  Every byte returned was
 * in a chunk authenticated before release (store_reader_seek/_read); a
 * read that meets a damaged chunk returns -1 (errno EIO) and
 * ar_sealed_stream_status() tells why (AR_ECORRUPT, AR_EREORDER ...).
 * The whole-object digest is checked when the stream is read in order from
 * 0 to its end (see store_reader_seek).  Writes fail (errno EBADF).
 *
 * Substreams (g_mime_stream_substream, used by the MIME parser and by
 * journal_original_copy) share the reader: each remembers its own
 * position and the shared reader is re-positioned before each read, which
 * is free when the reads follow each other.  A stream and its substreams
 * are for one thread at a time (the reader is not thread-safe).
 *
 * g_mime_init() must have been called.
 */
#ifndef INGEST_GSTREAM_H
#define INGEST_GSTREAM_H

#include <gmime/gmime.h>

#include "store/store.h"

G_BEGIN_DECLS

#define AR_TYPE_SEALED_STREAM (ar_sealed_stream_get_type())
#define AR_SEALED_STREAM(o) \
	(G_TYPE_CHECK_INSTANCE_CAST((o), AR_TYPE_SEALED_STREAM, ArSealedStream))
#define AR_IS_SEALED_STREAM(o) \
	(G_TYPE_CHECK_INSTANCE_TYPE((o), AR_TYPE_SEALED_STREAM))

typedef struct _ArSealedStream ArSealedStream;
typedef struct _ArSealedStreamClass ArSealedStreamClass;

GType ar_sealed_stream_get_type(void);

/*
 * A new stream (one reference; g_object_unref() it) reading r from its
 * plaintext offset 0.  With owns != 0 the stream takes r and closes it
 * (store_reader_close) when the stream and all its substreams are gone;
 * with owns == 0 r is borrowed and must outlive them.  Either way nobody
 * else may read or seek r while the stream is in use.  NULL when r is NULL
 * or memory runs out; r then stays the caller's, whatever owns says.
 */
GMimeStream *ar_sealed_stream_new(store_reader_t *r, int owns);

/* 0, or the AR_* status of the failure behind the last -1 returned by a
 * read or seek of this stream or of a stream sharing its reader. */
int ar_sealed_stream_status(GMimeStream *stream);

G_END_DECLS

#endif /* INGEST_GSTREAM_H */
