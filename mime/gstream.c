/*
 * gstream.c - ArSealedStream, a GMimeStream over a sealed object (see
 * mime.h).  Seeks only move the stream's position; the shared reader is
 * positioned (and the chunk authenticated) by the next read.
 */
#include "mime/mime.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "ar.h"

/* The reader, shared by a stream and its substreams. */
struct sealed_core {
	store_reader_t *r;
	int owns;
	unsigned refs;
	int status;                  /* last failure, 0 if none */
	gint64 size;                 /* plaintext bytes */
};

struct _ArSealedStream {
	GMimeStream parent_object;
	struct sealed_core *core;
};

struct _ArSealedStreamClass {
	GMimeStreamClass parent_class;
};

G_DEFINE_TYPE(ArSealedStream, ar_sealed_stream, GMIME_TYPE_STREAM)

static struct sealed_core *core_of(GMimeStream *s)
{
	return AR_SEALED_STREAM(s)->core;
}

static void core_unref(struct sealed_core *c)
{
	if (!c || --c->refs > 0)
		return;
	if (c->owns)
		store_reader_close(c->r);
	free(c);
}

/* Bytes of the plaintext this stream may reach: its bound or the end. */
static gint64 stream_end(GMimeStream *s)
{
	gint64 size = core_of(s)->size;
	if (s->bound_end != -1 && s->bound_end < size)
		return s->bound_end;
	return size;
}

static ssize_t sealed_read(GMimeStream *s, char *buf, size_t len)
{
	struct sealed_core *c = core_of(s);
	gint64 end = stream_end(s);
	size_t got;
	int rc;

	if (s->position < 0 || s->position < s->bound_start) {
		errno = EINVAL;
		return -1;
	}
	if (s->position >= end || len == 0)
		return 0;
	if ((uint64_t)len > (uint64_t)(end - s->position))
		len = (size_t)(end - s->position);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (store_reader_tell(c->r) != (uint64_t)s->position &&
	    (rc = store_reader_seek(c->r, (uint64_t)s->position)))
		goto fail;
	if ((rc = store_reader_read(c->r, buf, len, &got)))
		goto fail;
	s->position += (gint64)got;
	return (ssize_t)got;
fail:
	c->status = rc;
	errno = EIO;
	return -1;
}

static ssize_t sealed_write(GMimeStream *s, const char *buf, size_t len)
{
	(void)s;
	(void)buf;
	(void)len;
	errno = EBADF;
	return -1;
}

static int sealed_flush(GMimeStream *s)
{
	(void)s;
	return 0;
}

/* The reader goes with the last reference, not with close: substreams
 * may still be reading it. */
static int sealed_close(GMimeStream *s)
{
	(void)s;
	return 0;
}

static gboolean sealed_eos(GMimeStream *s)
{
	return s->position >= stream_end(s);
}

static int sealed_reset(GMimeStream *s)
{
	s->position = s->bound_start;
	return 0;
}

static gint64 sealed_seek(GMimeStream *s, gint64 offset, GMimeSeekWhence whence)
{
	gint64 real;

	switch (whence) {
	case GMIME_STREAM_SEEK_SET:
		real = offset;
		break;
	case GMIME_STREAM_SEEK_CUR:
		real = s->position + offset;
		break;
	case GMIME_STREAM_SEEK_END:
		real = stream_end(s) + offset;
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (real < s->bound_start || real > stream_end(s)) {
		errno = EINVAL;
		return -1;
	}
	s->position = real;
	return real;
}

static gint64 sealed_tell(GMimeStream *s)
{
	return s->position;
}

static gint64 sealed_length(GMimeStream *s)
{
	gint64 end = stream_end(s);
	return end > s->bound_start ? end - s->bound_start : 0;
}

static GMimeStream *sealed_substream(GMimeStream *s, gint64 start, gint64 end)
{
	ArSealedStream *sub = g_object_new(AR_TYPE_SEALED_STREAM, NULL);

	sub->core = core_of(s);
	sub->core->refs++;
	g_mime_stream_construct(GMIME_STREAM(sub), start, end);
	return GMIME_STREAM(sub);
}

static void ar_sealed_stream_finalize(GObject *object)
{
	ArSealedStream *s = AR_SEALED_STREAM(object);

	core_unref(s->core);
	s->core = NULL;
	G_OBJECT_CLASS(ar_sealed_stream_parent_class)->finalize(object);
}

static void ar_sealed_stream_class_init(ArSealedStreamClass *klass)
{
	GMimeStreamClass *sc = GMIME_STREAM_CLASS(klass);
	GObjectClass *oc = G_OBJECT_CLASS(klass);

	oc->finalize = ar_sealed_stream_finalize;
	sc->read = sealed_read;
	sc->write = sealed_write;
	sc->flush = sealed_flush;
	sc->close = sealed_close;
	sc->eos = sealed_eos;
	sc->reset = sealed_reset;
	sc->seek = sealed_seek;
	sc->tell = sealed_tell;
	sc->length = sealed_length;
	sc->substream = sealed_substream;
}

static void ar_sealed_stream_init(ArSealedStream *s)
{
	s->core = NULL;
}

GMimeStream *mime_sealed_stream_new(store_reader_t *r, int owns)
{
	ArSealedStream *s;
	struct sealed_core *c;

	if (!r || !(c = calloc(1, sizeof *c)))
		return NULL;
	c->r = r;
	c->owns = owns != 0;
	c->refs = 1;
	c->size = (gint64)store_reader_info(r)->plain_size;
	s = g_object_new(AR_TYPE_SEALED_STREAM, NULL);
	s->core = c;
	g_mime_stream_construct(GMIME_STREAM(s), 0, -1);
	return GMIME_STREAM(s);
}

int mime_sealed_stream_status(GMimeStream *stream)
{
	if (!AR_IS_SEALED_STREAM(stream) || !core_of(stream))
		return AR_EINVAL;
	return core_of(stream)->status;
}
