/*
 * journal.h - unwrap journal reports (Exchange 2007+/Exchange Online,
 * Exchange 2003, a report inside an NDR) into the original message bytes
 * and the envelope, and recognise plain copies (Google Workspace routing,
 * always-BCC) that are stored as received.
 *
 * The original message is never re-serialised: it is either a byte range
 * of the input stream (copied verbatim) or, when the message/rfc822 part
 * arrived base64/QP-encoded, the decoded content of that part.
 *
 * Nothing in the input makes journal_parse() fail: a report that cannot be
 * unwrapped (no rfc822 part, no envelope part, truncated MIME, nesting or
 * header limits exceeded ...) is returned as JOURNAL_PLAIN with flags and a
 * reason, so the caller archives the message as received and flags it.
 * Only I/O errors on the stream (AR_EIO) and allocation failures
 * (AR_ENOMEM) are errors.  A report counts as truncated unless its own
 * multipart ends with its closing delimiter (a cut could hide a second
 * original).  The scan never walks inside an original beyond its header
 * block, so originals of any size or nesting cost no memory or depth.
 *
 * g_mime_init() must have been called once by the program.
 */
#ifndef INGEST_JOURNAL_H
#define INGEST_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <gmime/gmime.h>

#include "ar.h"

typedef struct journal journal_t;

enum journal_kind {
	JOURNAL_PLAIN = 0,        /* not a report, or could not unwrap */
	JOURNAL_EXCHANGE,         /* X-MS-Journal-Report (2007+/EXO) */
	JOURNAL_EXCHANGE2003,     /* Content-Identifier: exjournalreport */
	JOURNAL_NDR_EXCHANGE,     /* a report inside a delivery-status NDR */
};

/* Flags.  The JOURNAL_F_FALLBACK ones mean "looked like a report but was
 * not unwrapped" and come with kind JOURNAL_PLAIN; the others are notes on
 * a report that was unwrapped. */
enum journal_flag {
	JOURNAL_F_NO_ORIGINAL    = 1u << 0, /* report without message/rfc822 */
	JOURNAL_F_NO_ENVELOPE    = 1u << 1, /* report without text/plain part */
	JOURNAL_F_TRUNCATED      = 1u << 2, /* MIME ends before its boundary */
	JOURNAL_F_DEPTH          = 1u << 3, /* nesting over opts.max_depth */
	JOURNAL_F_HEADER_SIZE    = 1u << 4, /* header block over max_header */
	JOURNAL_F_ENVELOPE_SIZE  = 1u << 5, /* envelope over max_envelope */
	JOURNAL_F_TOO_MANY_PARTS = 1u << 6, /* more than opts.max_parts */
	JOURNAL_F_MALFORMED      = 1u << 7, /* multipart without boundary */
	/* notes (kind stays a report kind) */
	JOURNAL_F_PARENT_MISMATCH = 1u << 8, /* no part has the parent id */
	JOURNAL_F_EXTRA_ORIGINALS = 1u << 9, /* more than two rfc822 parts */
	JOURNAL_F_CHARSET         = 1u << 10, /* envelope charset unknown */
};
#define JOURNAL_F_FALLBACK 0xffu

enum journal_rcpt_type {
	JOURNAL_RCPT_TO,
	JOURNAL_RCPT_CC,
	JOURNAL_RCPT_BCC,
	JOURNAL_RCPT_RECIPIENT,   /* "Recipient:" (addressing not verified) */
};

/* How an original is obtained from the input stream. */
enum journal_encoding {
	JOURNAL_ENC_NONE = 0,     /* the bytes [offset, offset+length) */
	JOURNAL_ENC_BASE64,       /* decode that range */
	JOURNAL_ENC_QP,
	JOURNAL_ENC_UUENCODE,
};

/* Limits; journal_opts_default() fills the defaults. */
struct journal_opts {
	unsigned max_depth;       /* MIME nesting levels followed (100) */
	size_t max_header;        /* bytes of one header block (1 MiB) */
	size_t max_envelope;      /* decoded envelope part bytes (16 MiB) */
	unsigned max_parts;       /* MIME parts in a report (10000) */
	int plain_only;           /* never unwrap: mail from outside (the
	                           * gateway) is stored as received, whatever
	                           * journal headers it carries (0) */
};

/* Read-only views into a journal_t; valid until journal_free(). All
 * strings are NUL-terminated UTF-8. */
struct journal_recipient {
	const char *address;
	enum journal_rcpt_type type;
	const char *expanded_from;    /* "Expanded:" group, or NULL */
	const char *forwarded_from;   /* "Forwarded:" recipient, or NULL */
};

struct journal_field {            /* an envelope line not known above */
	const char *name;             /* as written ("" for a line w/o ':') */
	const char *value;            /* trimmed */
};

struct journal_original {
	enum journal_encoding encoding;
	int64_t offset;               /* stream position (g_mime_stream_tell
	                               * coordinates) of the part content */
	int64_t length;               /* bytes of input (encoded if encoded) */
	const char *message_id;       /* its Message-ID header, unfolded and
	                               * trimmed, or NULL */
	int linked;                   /* 1: second attached copy (decrypted
	                               * IRM copy) linked to original 0 */
};

void journal_opts_default(struct journal_opts *opts);

/*
 * Parse the message read from in, from its current position to its end.
 * in must be seekable and is only read (its position afterwards is
 * unspecified); the caller keeps ownership.  opts may be NULL (defaults).
 * On success *out is a new result the caller frees with journal_free().
 * Returns 0, AR_EIO (read error), AR_ENOMEM or AR_EINVAL (NULL argument).
 */
int journal_parse(GMimeStream *in, const struct journal_opts *opts,
    journal_t **out);
void journal_free(journal_t *j);

enum journal_kind journal_kind(const journal_t *j);
const char *journal_kind_name(enum journal_kind kind);  /* "exchange" ... */
unsigned journal_flags(const journal_t *j);
/* Name of one flag bit ("no_original" ...), "" for an unknown bit. */
const char *journal_flag_name(unsigned flag);
/* Why the message was not unwrapped (static text), or NULL when it was
 * unwrapped or is a plain copy with no problem. */
const char *journal_reason(const journal_t *j);
/* Rcpt type as "to", "cc", "bcc", "recipient". */
const char *journal_rcpt_type_name(enum journal_rcpt_type type);

/*
 * The envelope of a report: the lines of its text/plain part.  Owned by
 * j (valid until journal_free()); NULL for JOURNAL_PLAIN.
 */
typedef struct journal_envelope journal_envelope_t;
const journal_envelope_t *journal_envelope(const journal_t *j);

/* Fields as written (trimmed), NULL when absent.  A repeated field keeps
 * its first value; the repeats are listed with the unknown fields. */
const char *journal_env_sender(const journal_envelope_t *e);
const char *journal_env_subject(const journal_envelope_t *e);
const char *journal_env_message_id(const journal_envelope_t *e);
const char *journal_env_on_behalf_of(const journal_envelope_t *e);
/* To/Cc/Bcc/Recipient lines, one entry per address, in order. */
size_t journal_env_recipient_count(const journal_envelope_t *e);
const struct journal_recipient *journal_env_recipient(
    const journal_envelope_t *e, size_t i);
/* Lines that are none of the above, in order. */
size_t journal_env_field_count(const journal_envelope_t *e);
const struct journal_field *journal_env_field(const journal_envelope_t *e,
    size_t i);

/*
 * Parse envelope text (UTF-8, CRLF or LF lines; NUL bytes are dropped):
 * "Name: value" per line, names matched case-insensitively, a line that
 * starts with white space continues the previous one.  Recipient lines
 * are "To: a@x[, b@y][, Expanded: g@x | , Forwarded: f@x]"; "Recipients:"
 * counts as "Recipient:".  Used by journal_parse(); usable alone.
 * *out is freed with journal_envelope_free().  0 or AR_ENOMEM.
 */
int journal_envelope_parse(const char *text, size_t len,
    journal_envelope_t **out);
void journal_envelope_free(journal_envelope_t *e);

/* Addresses (addr-spec) of the top-level X-Gm-Original-To headers, for
 * every kind. */
size_t journal_gm_original_to_count(const journal_t *j);
const char *journal_gm_original_to(const journal_t *j, size_t i);

/* Originals of a report (0 for JOURNAL_PLAIN: the message itself is the
 * original).  Index 0 is the journaled message; any further ones are
 * linked copies. */
size_t journal_original_count(const journal_t *j);
const struct journal_original *journal_original(const journal_t *j,
    size_t i);

/* Receives the original in pieces; returns 0 or a negative AR_* code that
 * stops the copy and is returned by journal_original_copy(). */
typedef int (*journal_write_cb)(void *arg, const void *buf, size_t len);

/*
 * Stream the exact bytes of original index to cb, in pieces of at most
 * 64 KiB (memory stays bounded).  in must be the stream given to
 * journal_parse() (same content, positions); it is seeked and read.
 * Returns 0, AR_ENOENT (no such index), AR_EIO, AR_ETRUNC (stream shorter
 * than at parse time), AR_ENOMEM or cb's code.
 */
int journal_original_copy(const journal_t *j, size_t index,
    GMimeStream *in, journal_write_cb cb, void *arg);

#endif /* INGEST_JOURNAL_H */
