/*
 * search.h - the encrypted (blind) full-text index of archived.
 *
 * One SQLite FTS5 file per tenant per year of the message date:
 * DATADIR/index/<tenant hex>/<year>.db.  A custom FTS5 tokenizer
 * normalises every word (case-fold, accents removed, CJK bigrams, optional
 * Snowball stem, prefixes, addresses) and writes a keyed hash of it
 * (SipHash-2-4-128 keyed from the tenant's "index" subkey) instead of the
 * word, so the index files reveal no word, address or subject.  What a
 * result row shows (from, to, subject) is an XChaCha20-Poly1305 blob
 * decrypted only when the row is returned.  See docs/search.md and
 * docs/query-language.md.
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h).
 *
 * Threads: a search_t may be shared.  search_run() may run concurrently
 * in many threads; writes (add, remove, drop, set_language) are serialised
 * inside (one writer at a time).  search_tenant_drop() waits until running
 * searches are finished.
 */
#ifndef SEARCH_H
#define SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "keysvc/keysvc.h"
#include "store/store.h"

#define SEARCH_ID_LEN        16          /* object id (store ids) */
#define SEARCH_TENANT_LEN    KEYSVC_TENANT_LEN
#define SEARCH_LIMIT_DEFAULT 50
#define SEARCH_LIMIT_MAX     1000
#define SEARCH_CURSOR_MAX    128         /* longest cursor text, NUL incl. */
#define SEARCH_LANGUAGE_DEFAULT "english" /* archived's and archivectl's */

typedef struct search search_t;                 /* an open index */
typedef struct search_query search_query_t;     /* a parsed query (AST) */
typedef struct search_results search_results_t; /* one page of results */

/* ---------------------------------------------------------------------
 * Opening
 * --------------------------------------------------------------------- */

typedef struct search_open_params {
	const char *data_dir;       /* shards live in data_dir/index/ */
	keysvc_t *ks;               /* borrowed; outlives the index */
	const char *language;       /* default Snowball stemmer for tenants
	                               without their own ("english" ...);
	                               NULL or "" or "none": no stemming */
	int prefix_min;             /* shortest indexed prefix; 0 means 3 */
	int prefix_max;             /* longest indexed prefix; 0 means 12 */
	size_t body_max;            /* bytes of body text indexed per
	                               message; 0 means 4 MiB */
	size_t terms_max;           /* distinct index tokens of one field of
	                               a message, for shards created from now
	                               on (tokenizer.c); 0 means
	                               SEARCH_TERMS_MAX_DEFAULT */
	int threads;                /* shards searched in parallel; 0 = 4 */
	/* Memory bounds (docs/operator-guide.md, "Index memory"): */
	size_t shard_cache;         /* bytes of SQLite page cache one shard
	                               connection may fill while it works,
	                               given back when it is done; 0 means
	                               SEARCH_SHARD_CACHE_DEFAULT */
	int open_shards;            /* shard writers kept open, and idle
	                               reader connections kept, each (the
	                               least recently used are closed); 0
	                               means SEARCH_OPEN_SHARDS_DEFAULT */
	size_t batch_bytes;         /* text and sealed rows one batch of the
	                               indexer (search_sync, reconcile,
	                               reindex) holds before it is written;
	                               0 means SEARCH_BATCH_BYTES_DEFAULT */
} search_open_params_t;

#define SEARCH_SHARD_CACHE_DEFAULT  ((size_t)8 << 20)
#define SEARCH_OPEN_SHARDS_DEFAULT  32
#define SEARCH_BATCH_BYTES_DEFAULT  ((size_t)8 << 20)
#define SEARCH_TERMS_MAX_DEFAULT    ((size_t)128 << 10)

int search_open(search_t **out, const search_open_params_t *params);
/* Close every shard and free.  No call may be running. */
void search_close(search_t *idx);
/* Last error message of the calling thread's last failed call on idx
 * (syntax errors include their position).  Owned by idx, valid until the
 * same thread's next call on idx. */
const char *search_errmsg(const search_t *idx);

/*
 * Stemming language of one tenant ("english", "french" ... any name
 * sb_stemmer_list() knows; NULL/"none" for none), kept in
 * data_dir/index/<tenant>/language.  It applies to shards created
 * afterwards: each shard records the language it was built with and is
 * always queried with it, so change it together with a reindex.
 * AR_EINVAL for an unknown language.
 */
int search_tenant_set_language(search_t *idx,
    const uint8_t tenant[SEARCH_TENANT_LEN], const char *language);

/* ---------------------------------------------------------------------
 * Indexing
 * --------------------------------------------------------------------- */

/*
 * What is indexed of one message; every pointer is borrowed for the
 * duration of the call and may be NULL (lists: n == 0).  Strings are
 * UTF-8.  Addresses may be "Name <addr>" or a bare addr.
 */
typedef struct search_doc {
	const char *from;
	const char *const *to;    size_t n_to;
	const char *const *cc;    size_t n_cc;
	const char *const *bcc;   size_t n_bcc;
	/* Envelope recipients (RCPT TO, journal report recipients, expanded
	 * lists).  Indexed under to:, and under bcc: when not in To/Cc. */
	const char *const *rcpt;  size_t n_rcpt;
	const char *subject;
	const char *body;         /* text/plain, reduced HTML, text of text
	                             attachments, nested messages */
	const char *const *filenames; size_t n_filenames;
	int64_t  date;            /* seconds since the epoch (UTC) */
	uint64_t size;            /* bytes of the original message */
	int      has_attachment;
	uint32_t flags;           /* caller-defined bits (the low 24:
	                             SEARCH_FLAGS_MASK), returned as is */
	int      verdict;         /* enum search_verdict (verdict:) */
	int      quarantined;     /* held by the gateway (quarantined:yes) */
} search_doc_t;

/*
 * The filtering gateway's verdict of a message, searchable as verdict:NAME
 * (docs/query-language.md); mail that did not come through the gateway
 * (journal copies, imports) has none.
 */
enum search_verdict {
	SEARCH_VERDICT_NONE = 0,
	SEARCH_VERDICT_CLEAN,
	SEARCH_VERDICT_SPAM,
	SEARCH_VERDICT_VIRUS,
	SEARCH_VERDICT_POLICY,
	SEARCH_VERDICT_UNSCANNED,
};
#define SEARCH_FLAGS_MASK 0x00ffffffu
/* "clean" ... "unscanned" -> enum search_verdict; -1 if unknown (len
 * bytes of name, case-insensitive). */
int search_verdict_parse(const char *name, size_t len);
/* "none", "clean" ... */
const char *search_verdict_name(int verdict);

/* What a result row shows; stored encrypted.  NULL fields are "". */
typedef struct search_display {
	const char *from;
	const char *to;
	const char *subject;
} search_display_t;

/*
 * Index (tenant, id).  Idempotent: an id already indexed (in any shard of
 * the tenant) is replaced.  display may be NULL: from, to (joined with
 * ", ") and subject are taken from doc.
 */
int search_index_add(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    const uint8_t id[SEARCH_ID_LEN], const search_doc_t *doc,
    const search_display_t *display);
/*
 * Batches: many changes to one tenant's index written with one SQLite
 * transaction per shard (year) touched, instead of one per message.
 * search_batch_add does the CPU work (column texts, sealing the row
 * blobs) and may be called from several threads at once on one batch;
 * search_batch_commit writes.  A later change of an id replaces an
 * earlier one in the same batch.  When commit fails, the shards already
 * committed keep their rows (every change is idempotent: commit the same
 * changes again).  A batch is freed with search_batch_free, committed or
 * not.
 */
typedef struct search_batch search_batch_t;
int search_batch_begin(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    search_batch_t **out);
/* Index (or re-index) id, as search_index_add. */
int search_batch_add(search_batch_t *b, const uint8_t id[SEARCH_ID_LEN],
    const search_doc_t *doc, const search_display_t *display);
/* Remove id at commit (nothing when it is not indexed). */
int search_batch_remove(search_batch_t *b, const uint8_t id[SEARCH_ID_LEN]);
size_t search_batch_count(const search_batch_t *b);
/* Bytes the batch holds (column texts and sealed rows): what a caller
 * bounds before committing. */
size_t search_batch_bytes(search_batch_t *b);
int search_batch_commit(search_batch_t *b);
void search_batch_free(search_batch_t *b);

/* Remove (tenant, id) from the index.  AR_ENOENT if it was not indexed. */
int search_index_remove(search_t *idx,
    const uint8_t tenant[SEARCH_TENANT_LEN], const uint8_t id[SEARCH_ID_LEN]);

/* Every indexed object of a tenant, newest first within a shard, shards
 * newest year first (for reconcile).  A non-zero return of cb stops the
 * walk and is returned. */
typedef int (*search_list_cb)(void *arg, const uint8_t id[SEARCH_ID_LEN],
    int64_t date);
int search_index_list(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    search_list_cb cb, void *arg);

/* Delete every shard of a tenant (before a reindex, or after its keys
 * were destroyed).  0 also when the tenant had none. */
int search_tenant_drop(search_t *idx,
    const uint8_t tenant[SEARCH_TENANT_LEN]);

/* ---------------------------------------------------------------------
 * The indexer: keeps a tenant's index in step with the store
 * (search/indexer.c).  Every call below is serialised per tenant across
 * threads and processes by a lock file (data_dir/index/<tenant>.lock).
 * --------------------------------------------------------------------- */

typedef struct search_sync_stats {
	uint64_t indexed;          /* objects (re-)indexed */
	uint64_t removed;          /* objects removed from the index */
	uint64_t failed;           /* objects that could not be read: indexed
	                              with what the catalog knows (date, size) */
	uint64_t entries;          /* log entries read */
	uint64_t seq;              /* log position the index is now at */
	uint64_t batch_bytes_max;  /* most bytes one batch held (bounded by
	                              batch_bytes and the messages the
	                              extraction threads were adding) */
	int more;                  /* search_sync_bounded: stopped at its
	                              bound with log entries left to apply */
} search_sync_stats_t;

/*
 * Follow the tenant's log from the last entry applied (kept in
 * data_dir/index/<tenant>/indexed) to its end: every object ingested, or
 * arrived again (its envelope was merged), is read from the store,
 * parsed (GMime), and (re-)indexed with its envelope recipients; a
 * disposed object is removed.  batch objects per search batch (0: 256);
 * the log is walked 16 batches at a time, the next batch read and parsed
 * while the last one commits, the position saved after each walk.  st is the tenant's store (the index
 * and the store share a key service).
 */
int search_sync(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], int batch,
    search_sync_stats_t *out);
/* search_sync that returns once it has applied at least max_entries log
 * entries (0: no bound), out->more set when entries were left: a daemon
 * indexing several tenants gives each a turn, and reports progress, while
 * one of them keeps receiving. */
int search_sync_bounded(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], int batch, uint64_t max_entries,
    search_sync_stats_t *out);

/* What the index has not caught up with yet. */
typedef struct search_lag {
	uint64_t indexed_seq;      /* log position applied */
	uint64_t objects;          /* objects ingested after it */
	uint64_t changes;          /* ingests, arrivals and disposals after it */
	int64_t  oldest;           /* time of the oldest of those; 0: none */
} search_lag_t;
int search_lag(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], search_lag_t *out);
/* search_lag without its walk of the whole lag (which reads and decrypts
 * every entry: 160 MB of catalog pages at a lag of 100,000): the time of
 * the oldest change not yet indexed (0: none), from the first such log
 * entry, and the log entries of any kind after the index's mark
 * (*waiting may be NULL). */
int search_lag_oldest(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], int64_t *oldest,
    uint64_t *waiting);

/*
 * Compare the index with the catalog and repair it: objects of the
 * catalog missing from the index are indexed, index rows whose object
 * is no longer in the catalog are removed.  The log up to its head when
 * the call began is then applied without its stored objects (the mark
 * moves to the head), the rest by search_sync.
 */
typedef struct search_reconcile_stats {
	uint64_t catalog;          /* objects in the catalog */
	uint64_t indexed;          /* rows in the index before */
	uint64_t missing;          /* ... added */
	uint64_t extra;            /* ... removed */
	uint64_t log_indexed;      /* objects the log up to its head at the
	                              start had to index again (arrivals: a
	                              merged envelope); what it stored is not
	                              parsed a second time */
	uint64_t old_shards;       /* index files built by an older tokenizer
	                              (a long CJK run has gaps there):
	                              search_reindex rebuilds them */
} search_reconcile_stats_t;
int search_reconcile(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], search_reconcile_stats_t *out);

/*
 * Rebuild the tenant's index from the store alone, online: new shards
 * are built in data_dir/index/.rebuild/<tenant> while the old ones keep
 * answering searches (and archived keeps indexing into them), then the
 * entries logged meanwhile are applied and the two directories swapped
 * atomically (renameat2 RENAME_EXCHANGE); other handles notice the swap
 * at their next call.  The old shards are deleted.
 */
int search_reindex(search_t *idx, store_t *st,
    const uint8_t tenant[SEARCH_TENANT_LEN], search_sync_stats_t *out);

/* ---------------------------------------------------------------------
 * Queries (grammar in docs/query-language.md)
 * --------------------------------------------------------------------- */

/*
 * Parse text into *out (freed with search_query_free).  On a syntax error:
 * AR_ESYNTAX, *out NULL, and errbuf (may be NULL) receives
 * "column C (byte B): expected ...", C 1-based in characters, B 0-based.
 * Invalid UTF-8, a word too long to be indexed, and a term that gives the
 * index nothing to look up ("!!!", "from:%%", "-!!!") are syntax errors
 * too: a parsed query is never wider than its text (query-language.md).
 */
int search_query_parse(const char *text, search_query_t **out,
    char *errbuf, size_t errlen);
void search_query_free(search_query_t *q);
/*
 * 1 when q has no term and no filter (an empty or blank query): it
 * selects every message.  Whoever turns a query into a scope (an export,
 * a hold) refuses such a query; only a search lists everything with it.
 */
int search_query_selects_all(const search_query_t *q);
/*
 * Printed form of a parsed query: the AST, the FTS5 MATCH expression and
 * the SQL condition with its parameters (for tests and debugging).
 * *out is malloc'd; the caller frees it.
 */
int search_query_dump(const search_query_t *q, char **out);

enum search_order { SEARCH_BY_DATE = 0, SEARCH_BY_RANK = 1 };

typedef struct search_options {
	int limit;                  /* rows per page; 0 = default, max 1000 */
	const char *cursor;         /* next_cursor of the previous page, or
	                               NULL for the first page */
	int order;                  /* enum search_order */
} search_options_t;

typedef struct search_row {
	uint8_t  id[SEARCH_ID_LEN];
	int64_t  date;
	uint64_t size;
	uint32_t flags;             /* the caller's (SEARCH_FLAGS_MASK) */
	int      has_attachment;
	int      verdict;           /* enum search_verdict */
	int      quarantined;
	double   rank;              /* bm25 (lower is better); 0 by date */
	const char *from;           /* decrypted display fields, owned by */
	const char *to;             /* the results                        */
	const char *subject;
} search_row_t;

/*
 * Run query text for one tenant.  Shards are pruned by the date filters
 * and searched in parallel.  Pages are stable: the cursor carries the
 * (date, id) (or (rank, id)) of the last row, bound by a MAC to the tenant,
 * the query text and the order; a cursor of another tenant or query is
 * refused with AR_EINVAL.  AR_ESYNTAX for a bad query (message in
 * search_errmsg).  *out is freed with search_results_free.
 */
int search_run(search_t *idx, const uint8_t tenant[SEARCH_TENANT_LEN],
    const char *query, const search_options_t *opts,
    search_results_t **out);

size_t search_results_count(const search_results_t *r);
/* Row i (< count); owned by r, valid until search_results_free. */
const search_row_t *search_results_row(const search_results_t *r, size_t i);
/* Exact number of matching messages over all pages. */
uint64_t search_results_total(const search_results_t *r);
/* Cursor of the next page, NULL on the last page; owned by r. */
const char *search_results_next_cursor(const search_results_t *r);
void search_results_free(search_results_t *r);

/* ---------------------------------------------------------------------
 * Display-time helpers
 * --------------------------------------------------------------------- */

/*
 * Snippet of plain text (UTF-8) around the words of query: at most about
 * max_chars characters (0 = 200), whole words, every matching word
 * wrapped in open/close markers (NULL = "\x02" and "\x03", which the web
 * layer substitutes after escaping HTML).  language (may be NULL) enables
 * stem matching.  *out is malloc'd; the caller frees it.  AR_ESYNTAX for a
 * bad query.
 */
int search_snippet(const char *query, const char *text, size_t max_chars,
    const char *open, const char *close, const char *language, char **out);

/* Reduce HTML to plain text: tags dropped, script/style removed, block
 * elements to line breaks, entities decoded.  *out is malloc'd. */
int search_html_to_text(const char *html, size_t len, char **out);

struct _GMimeMessage;   /* GMimeMessage, from <gmime/gmime.h> */
/*
 * Extract what is indexed from a parsed message: From/To/Cc/Bcc (groups
 * expanded), subject, date, text/plain parts, text/html parts reduced,
 * nested message/rfc822 parts (their headers and text), attachment file
 * names, text of text attachments; charsets decoded to UTF-8.  The
 * caller must have called g_mime_init().  Envelope recipients and size are
 * left empty/0 for the caller to fill.  body_max bounds the body text
 * (0 = 4 MiB).  *out (and every string it points to) is owned by the
 * library and freed with search_doc_free().
 */
int search_doc_extract(struct _GMimeMessage *msg, size_t body_max,
    search_doc_t **out);
/* Free a document made by search_doc_extract (never a caller's own). */
void search_doc_free(search_doc_t *doc);

#endif /* SEARCH_H */
