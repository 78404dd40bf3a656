/*
 * spool.h - the durable encrypted queue of received messages (DESIGN.md
 * "Data flow (ingest)": SMTP DATA -> spool (encrypted, fsync) -> 250).
 *
 * One entry per (message, tenant): a message whose recipients belong to two
 * tenants is spooled twice, each copy sealed under its own tenant's key, so
 * tenants never share ciphertext or keys.  An entry is one sealed object
 * (store/store.h "Sealed objects", retain-until 0, sealed with the
 * tenant's "object" subkey) in a seg object backend rooted at the spool
 * directory: the bytes received, then the envelope JSON given by the
 * caller (MAIL FROM, recipients, client address, TLS, HELO, arrival time
 * ...) and an 8-byte trailer; plus, once a drain attempt failed, a small
 * sealed failure record.  An entry exists (is listed, can be opened) once
 * its object is committed.  Nothing in the spool directory is plaintext.
 * Layout and recovery rules: docs/formats.md "Spool".
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h).
 * spool_errmsg() gives the text of the calling thread's last failure.
 */
#ifndef SPOOL_SPOOL_H
#define SPOOL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "keysvc/keysvc.h"
#include "store/store.h"

#define SPOOL_TENANT_LEN   STORE_TENANT_LEN
#define SPOOL_ID_LEN       STORE_ID_LEN
#define SPOOL_ENVELOPE_MAX (1u << 20)   /* bytes of envelope JSON */
#define SPOOL_REASON_MAX   256          /* failure reason, with its NUL */

typedef struct spool spool_t;
typedef struct spool_put spool_put_t;

/*
 * Open the spool in dir (e.g. DATADIR/spool; created 0700 if missing) for
 * writing and draining.  One process at a time: the spool is locked
 * (flock on dir/lock); AR_EAGAIN when another process holds it.  Opening
 * recovers from a crash before anything else: temp files are removed,
 * entries of a spool written before segments are moved into segments, and
 * every partial entry (a failure record without its message) is removed.
 * ks is borrowed and must outlive the spool; it may be shared.
 */
int spool_open(spool_t **out, const char *dir, keysvc_t *ks);
/*
 * spool_open with flags: SPOOL_STATEFUL (the gateway's relay queue): every
 * entry carries a state record written by its consumer (spool_state_set);
 * an entry is complete - listed, queued for draining - only once its first
 * state record is durable, and one found without any at open (the message
 * was never acknowledged) is removed like a partial entry.  SPOOL_READONLY:
 * as spool_open_readonly.
 */
#define SPOOL_STATEFUL 1u
#define SPOOL_READONLY 2u
int spool_open_flags(spool_t **out, const char *dir, keysvc_t *ks,
    unsigned flags);
/*
 * Open for looking only (archivectl queue, while archived runs): walk,
 * stats, read; no lock, no recovery, and put, remove and mark_failed
 * answer AR_EPERM.  It sees the entries committed when it was opened.
 */
int spool_open_readonly(spool_t **out, const char *dir, keysvc_t *ks);
/* Every spool_put_t must be finished or aborted before. */
void spool_close(spool_t *sp);
/* Text of the calling thread's last failed spool call; thread-local,
 * valid until that thread's next spool call.  Never NULL. */
const char *spool_errmsg(void);

/* --- writing -------------------------------------------------------------- */

/*
 * Start an entry for tenant, sealed with the tenant's key version
 * key_version (its current one).  The entry id (time-ordered: its first
 * 48 bits are the arrival time in milliseconds) is chosen here, see
 * spool_put_id().  Needs keysvc only for a (tenant, version) not yet
 * derived by this handle (AR_EKEYSVC, AR_ENOENT, AR_ESHREDDED).
 */
int spool_put_begin(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    uint32_t key_version, spool_put_t **out);
/* The same with the entry id chosen by the caller (a spool entry id: its
 * last byte 0; made with spool_entry_id_new), so that a retry after a
 * crash finds the entry of the first attempt: AR_EEXIST when it exists. */
int spool_put_begin_id(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    uint32_t key_version, const uint8_t *id, spool_put_t **out);
/* A new entry id (time-ordered, random; last byte 0). */
void spool_entry_id_new(uint8_t id[SPOOL_ID_LEN]);
/* The entry id, for log lines (owned by p). */
const uint8_t *spool_put_id(const spool_put_t *p);
/*
 * Append message bytes.  Quick enough for the SMTP event loop: the bytes
 * are encrypted a chunk at a time and kept in memory (or, past 256 KiB,
 * written to a temp file, no fsync).  An error is sticky and returned
 * again by finish.
 */
int spool_put_write(spool_put_t *p, const void *buf, size_t len);
/*
 * Make the entry durable: append the envelope (the NUL-terminated JSON
 * text envelope_json, at most SPOOL_ENVELOPE_MAX bytes) and its trailer,
 * seal the last chunk, sign, append to a segment and fdatasync it.
 * Returns 0 only when the entry survives a SIGKILL or a power
 * loss; the caller answers 250 after that.  entry_id (may be NULL)
 * receives the entry id.  Blocks on disk and keysvc: call it from a worker
 * thread (p may be handed from the thread that wrote it, through any
 * synchronisation such as a mutex-protected queue).  Concurrent finishers
 * share fdatasyncs (group commit).
 *
 * Frees p whatever the result.  On failure no entry is listed: the
 * message was not spooled and the client should be told to retry (4xx):
 * AR_ENOSPC (disk full), AR_EKEYSVC (key service down), AR_EIO,
 * AR_ENOMEM; AR_ESHREDDED and AR_ETOOBIG (envelope) are permanent.
 */
int spool_put_finish(spool_put_t *p, const char *envelope_json,
    uint8_t entry_id[SPOOL_ID_LEN]);
/*
 * spool_put_finish for n puts at once (group commit): one keysvc request
 * signs them all, one write appends them to a segment and one fdatasync
 * makes them durable.  rcs[i] and entry_id[i] (entry_id may be NULL) are put
 * i's result, as spool_put_finish would return it.  Frees every put.
 * Returns the first failure, 0 if none.
 */
int spool_put_finish_many(spool_put_t **p, size_t n,
    const char *const *envelope_json, uint8_t (*entry_id)[SPOOL_ID_LEN],
    int *rcs);
/* Drop the entry (its temp file, if any, is removed) and free p. */
void spool_put_abort(spool_put_t *p);

/* --- reading and draining ------------------------------------------------ */

typedef struct spool_entry {
	uint8_t  tenant[SPOOL_TENANT_LEN];
	uint8_t  id[SPOOL_ID_LEN];
	int64_t  arrived;     /* seconds since the epoch (from the id) */
	int64_t  age;         /* ar_now() - arrived, seconds, >= 0 */
	int      failed;      /* 1: has a failure record (spool_failure_get) */
	uint64_t bytes;       /* bytes on disk of the entry's objects; filled
	                         with SPOOL_WALK_SIZES, else 0 */
} spool_entry_t;

#define SPOOL_WALK_SIZES 1u   /* fill spool_entry_t.bytes (one stat each) */

/*
 * Call cb for every complete entry (of one tenant, or of all when tenant is
 * NULL), oldest first.  The entry passed to cb is valid during the call
 * only.  cb may remove the entry it was given.  A non-zero return from cb
 * stops the walk and is returned.  Needs no keysvc.
 */
typedef int (*spool_walk_cb)(void *arg, const spool_entry_t *e);
int spool_walk(spool_t *sp, const uint8_t *tenant, unsigned flags,
    spool_walk_cb cb, void *arg);

/*
 * Open an entry for reading (AR_ENOENT if it does not exist).  The reader
 * checks what store_reader_open does and is at offset 0; the message is
 * its first *msg_len bytes (what follows is the envelope: bound the stream,
 * e.g. g_mime_stream_substream(mime_sealed_stream_new(r, 1), 0, *msg_len)).
 * *envelope_json (when not NULL) receives the envelope JSON, authenticated
 * and NUL-terminated, which the caller frees with free().  *out is the
 * caller's (store_reader_close); it must not outlive the spool.
 */
int spool_open_entry(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], store_reader_t **out,
    uint64_t *msg_len, char **envelope_json);
/* The envelope JSON alone, as spool_open_entry gives it. */
int spool_read_envelope(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], char **json);
/*
 * Delete an entry once drained (after the catalog commit): any failure
 * record, then the entry.  The deletions are not fsync'd: an entry that a
 * crash brings back is drained again, and the catalog's receipts make that
 * replay change nothing.  AR_ENOENT if nothing was there.
 */
int spool_remove(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN]);
/* Make the removals done so far durable now (the relay queue, whose
 * removed entries would be delivered again if they came back). */
int spool_sync(spool_t *sp);

/* --- the drain queue -------------------------------------------------------
 *
 * A spool opened for writing keeps its complete entries in an in-memory
 * queue: those found when it was opened (oldest first), then each entry as
 * its put is finished.  A consumer (the ingest pipeline) claims entries and
 * hands each one back: done (spool_claim_done removes it from the spool)
 * or to be tried again later (spool_claim_retry).  An entry is claimed by
 * one consumer at a time.  Claiming never walks the spool: a backlog of a
 * million entries costs the same per claim as one of ten.  An entry
 * claimed and never handed back stays on disk and is queued again when
 * the spool is next opened.  Memory: about 64 bytes per entry waiting.
 * A read-only spool has an empty queue.
 */
typedef struct spool_ref {
	uint8_t  tenant[SPOOL_TENANT_LEN];
	uint8_t  id[SPOOL_ID_LEN];
	int64_t  arrived;      /* seconds since the epoch (from the id) */
	uint64_t bytes;        /* bytes of the entry in the spool */
	uint32_t failures;     /* failed attempts since the spool was opened */
} spool_ref_t;

typedef struct spool_queue_info {
	uint64_t ready;           /* waiting: new, or due again */
	uint64_t retrying;        /* waiting for a retry after a failure */
	uint64_t claimed;         /* being drained */
	uint64_t bytes;           /* of all of these */
	int64_t  oldest_ready;    /* arrival (s) of the oldest ready; 0: none */
	int64_t  backlog_age;     /* ar_now() - oldest_ready; 0: none */
	int64_t  next_due;        /* earliest retry (s); 0: none */
	int64_t  oldest_retrying; /* arrival (s) of the oldest retrying (with
	                             detail; else of the next due); 0: none */
} spool_queue_info_t;

/*
 * Claim up to max entries: retries whose time has come, then the oldest
 * ready ones.  Returns how many were written to out (0: none waiting).
 * Never blocks on disk; safe from any thread.
 */
size_t spool_claim(spool_t *sp, spool_ref_t *out, size_t max);
/* A claimed entry was drained: spool_remove, and it leaves the queue
 * (whatever spool_remove returns). */
int spool_claim_done(spool_t *sp, const spool_ref_t *r);
/* A claimed entry waits until due (seconds since the epoch) and is then
 * claimed again; its failures count one more. */
void spool_claim_retry(spool_t *sp, const spool_ref_t *r, int64_t due);
/* Entries waiting for a retry are due now: every one (tenant and id
 * NULL), every one of tenant (id NULL), or the entry (tenant, id).
 * Returns how many. */
size_t spool_retry_now(spool_t *sp, const uint8_t *tenant, const uint8_t *id);
/* The queue's counts, O(1) unless detail (which walks the retries). */
void spool_queue_info(spool_t *sp, int detail, spool_queue_info_t *out);

/* --- failing entries ----------------------------------------------------- */

typedef struct spool_failure {
	uint32_t count;                  /* failed drain attempts */
	int64_t  first, last;            /* seconds since the epoch */
	char     reason[SPOOL_REASON_MAX];   /* the last one's reason */
} spool_failure_t;

/*
 * Record a failed drain attempt of a complete entry: the count goes up by
 * one, reason (a short text, no message content: it is stored sealed, but
 * shown by archivectl; truncated to SPOOL_REASON_MAX - 1 bytes) replaces
 * the last one.  Written before the previous record is removed, so a crash
 * keeps one of the two.  Needs keysvc.  AR_ENOENT if no such entry.
 */
int spool_mark_failed(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], const char *reason);
/* The failure record; count 0 (and 0 returned) when there is none.
 * AR_ENOENT if no such entry. */
int spool_failure_get(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], spool_failure_t *out);

/*
 * Damage found in the spool's segments (store_backend_seg_damage): byte
 * ranges holding no intact entry, in segments still draining the entries
 * after them, or kept in DIR/corrupt/ once drained (never deleted).
 */
int spool_damage(spool_t *sp, store_seg_damage_cb cb, void *arg);

/* --- state records (stateful spools) ----------------------------------------
 *
 * A small JSON text sealed beside an entry (the gateway's verdict and each
 * recipient's delivery state), replaced as a whole: written to the other of
 * two slots, then the older slot deleted, so a crash keeps one of the two
 * and the newer always wins.  One writer per entry at a time (the one that
 * received it, then the one that claimed it).
 */
#define SPOOL_STATE_MAX (1u << 20)
/* Durable when it returns (sealed with key_version, one of the tenant's
 * key versions).  In a stateful spool the first one queues the entry. */
int spool_state_set(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], uint32_t key_version,
    const char *json);
/* The entry's newest state record (caller frees), AR_ENOENT if none. */
int spool_state_get(spool_t *sp, const uint8_t tenant[SPOOL_TENANT_LEN],
    const uint8_t entry_id[SPOOL_ID_LEN], char **json);

/* --- stats ----------------------------------------------------------------- */

typedef struct spool_stats {
	uint64_t entries;        /* complete entries */
	uint64_t failing;        /* ... of which have a failure record */
	uint64_t bytes;          /* bytes on disk of their objects */
	int64_t  oldest_age;     /* seconds; 0 when empty */
} spool_stats_t;

int spool_stats(spool_t *sp, spool_stats_t *out);

#endif /* SPOOL_SPOOL_H */
