/*
 * mailgen.h - unique, realistic test messages for the volume benchmarks
 * (bench/mailgen, bench/smtpload, bench/stream.sh, bench/backlog.sh,
 * tests/soak/crash.sh).
 *
 * Message i of seed S is a pure function of (S, i) and of the model read
 * from the sample corpus (/work/shared/corpus/sample.tar.zst, unpacked):
 * any tool that opens the same corpus regenerates the same bytes, so no
 * run has to store its 200,000 messages.
 *
 * What the model takes from the corpus, at bench time:
 *   - the size of every message and of its header, in three classes:
 *     plain single-part, multipart without attachment, with an
 *     attachment; message i draws its class with the corpus's
 *     frequencies and a (size, header size) pair from that class (so the
 *     run has the corpus's size distribution, and as much body text per
 *     message: the header is padded to the corpus message's with relay
 *     hops, DKIM/ARC signatures and X- fields, which are not indexed);
 *   - the text: every word of the text/plain bodies, in order (base64,
 *     HTML and quoted-printable parts are skipped); a generated body is a
 *     sequence of runs of 5-40 consecutive corpus words from random
 *     positions, so word frequencies, phrases and the vocabulary are
 *     real, and the indexer does real work.
 * On top of that, one message in every block of MAILGEN_BIG_EVERY (at a
 * position drawn per block) is 1-10 MB (log-uniform), a multipart/mixed
 * message with a base64 attachment of random (incompressible) bytes.
 *
 * Every message has a unique Message-ID (<mg-S-I-HEX@DOMAIN>, see
 * mailgen_message_id), Date (2023-2025), From/To/Cc of generated people,
 * a Subject of corpus words and a unique body, so dedup never helps.
 * No line starts with '.', so SMTP needs no dot-stuffing (smtpload still
 * checks).
 */
#ifndef BENCH_MAILGEN_H
#define BENCH_MAILGEN_H

#include <stddef.h>
#include <stdint.h>

/* One big (1-10 MB) message per this many. */
#define MAILGEN_BIG_EVERY 4000

/* mailgen_message flags */
#define MAILGEN_CRLF 1       /* CRLF line ends (SMTP); LF otherwise (.eml) */

typedef struct mailgen mailgen_t;

/* A growable output buffer; start it zeroed, free p when done. */
typedef struct mailgen_buf {
	char *p;
	size_t len, cap;
} mailgen_buf_t;

/* What the model holds (mailgen_info). */
typedef struct mailgen_info {
	size_t messages;              /* corpus messages read */
	size_t plain, alternative, attachment;   /* per class */
	size_t words;                 /* distinct words */
	size_t tokens;                /* words of text, in order */
	uint64_t fingerprint;         /* of sizes and text: same model, same value */
} mailgen_info_t;

/* What one generated message is (mailgen_message). */
enum mailgen_kind {
	MAILGEN_PLAIN, MAILGEN_ALTERNATIVE, MAILGEN_ATTACHMENT, MAILGEN_BIG
};

/*
 * Read the corpus: every *.eml file of dir (in name order).  0, or an
 * AR_* status with a message in err (AR_ENOENT: no such directory or no
 * .eml in it; AR_EIO; AR_ENOMEM).  The model is read-only afterwards:
 * any number of threads may call mailgen_message on it at once.
 */
int mailgen_open(mailgen_t **out, const char *dir, char *err, size_t errlen);
void mailgen_close(mailgen_t *g);
void mailgen_info(const mailgen_t *g, mailgen_info_t *info);

/*
 * Message i of seed into out (out->len set; previous contents replaced;
 * out->p grown as needed, owned by the caller).  kind, when not NULL,
 * gets its kind.  0 or AR_ENOMEM.
 */
int mailgen_message(const mailgen_t *g, uint64_t seed, uint64_t i,
    unsigned flags, mailgen_buf_t *out, enum mailgen_kind *kind);

/*
 * The Message-ID of message i, without the angle brackets:
 * "mg-SEED-I-HEX@DOMAIN" (no model needed).  len >= 96 is always enough.
 * mailgen_parse_id reverses it: 0 and *seed, *i set, or AR_EINVAL when
 * id (with or without brackets) is not a mailgen id.
 */
void mailgen_message_id(uint64_t seed, uint64_t i, char *out, size_t len);
int mailgen_parse_id(const char *id, uint64_t *seed, uint64_t *i);

#endif
