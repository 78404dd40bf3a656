/*
 * mime.h - the MIME module: GMime's process-wide setup, a GMimeStream over
 * a sealed object, a part's decoded content, and the header summary the
 * catalog keeps.  Used by ingest/, gateway/, search/ and web/, which
 * never include each other.
 *
 * --- mime_init --------------------------------------------------------------
 * Once per process before any GMime use from several threads (GMime's
 * global state); safe to call again.
 *
 * --- the sealed stream -----------------------------------------------------
 * A read-only, seekable GMimeStream over a sealed object
 * (store_reader_t), so GMime and the journal parser read a spooled or
 * stored message without any plaintext reaching disk.
 *
 * Positions are plaintext offsets of the object.  Every byte returned was
 * in a chunk authenticated before release (store_reader_seek/_read); a
 * read that meets a damaged chunk returns -1 (errno EIO) and
 * mime_sealed_stream_status() tells why (AR_ECORRUPT, AR_EREORDER ...).
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
#ifndef MIME_MIME_H
#define MIME_MIME_H

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

void mime_init(void);

/*
 * A new stream (one reference; g_object_unref() it) reading r from its
 * plaintext offset 0.  With owns != 0 the stream takes r and closes it
 * (store_reader_close) when the stream and all its substreams are gone;
 * with owns == 0 r is borrowed and must outlive them.  Either way nobody
 * else may read or seek r while the stream is in use.  NULL when r is NULL
 * or memory runs out; r then stays the caller's, whatever owns says.
 */
GMimeStream *mime_sealed_stream_new(store_reader_t *r, int owns);

/* 0, or the AR_* status of the failure behind the last -1 returned by a
 * read or seek of this stream or of a stream sharing its reader. */
int mime_sealed_stream_status(GMimeStream *stream);

/* --- a part's content ----------------------------------------------------- */

/*
 * A stream (GMimeStreamFilter; g_object_unref() it) reading part's content
 * with its transfer encoding (base64, quoted-printable, uuencode) undone
 * as it is read, so that a reader takes only as much as it needs, whatever
 * the part's size; the caller may add filters (a charset's).  NULL when
 * the part has no content.  It reads the part's own stream: one reader
 * of a part at a time.
 */
GMimeStream *mime_part_stream(GMimePart *part);

/* --- the header summary ---------------------------------------------------- */

/*
 * JSON text summarising a message's header (subject, from, to, cc, date,
 * message_id), from at most the first len bytes of the message; RFC 2047
 * words decoded to UTF-8.  *parsed is 0 when no header could be read.
 * Returns a malloc'd string the caller frees (never NULL unless out of
 * memory).  extra (may be NULL) is a JSON object text whose members are
 * added (e.g. the source).
 */
char *mime_header_summary(const unsigned char *buf, size_t len,
    const char *extra, int *parsed);

/*
 * Read a message to its end through read(arg, ...): its SHA-256 into sha,
 * and its first bytes (at most peekcap, *npeek of them) into peek for
 * mime_header_summary.  0 or the read callback's status.
 */
int mime_digest(store_read_cb read, void *arg,
    uint8_t sha[STORE_HASH_LEN], unsigned char *peek, size_t peekcap,
    size_t *npeek);

G_END_DECLS

#endif /* MIME_MIME_H */
