/*
 * search_priv.h - internals of the search module (not installed, not for
 * other modules; the query fuzzer includes it for white-box checks).
 */
#ifndef SEARCH_PRIV_H
#define SEARCH_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "search/search.h"

/* ---- normalize.c: words of UTF-8 text, normalised ---------------------- */

#define NZ_WORD_MAX 128     /* a normalised word has fewer bytes; longer
                               ones are skipped (not indexed), on both the
                               index and the query side */

typedef struct nz_word {
	size_t off, end;        /* byte span in the input */
	const char *norm;       /* normalised UTF-8, NUL-terminated, owned by
	                           the iterator until the next call */
	size_t len;             /* bytes of norm */
	int ncp;                /* code points of norm */
	int cjk;                /* a run of CJK characters (bigrammed) */
	size_t cjk_next;        /* a CJK run cut for length: bytes of the
	                           character that goes on after end (the
	                           next piece starts with it); else 0 */
} nz_word_t;

typedef struct nz_iter {
	const unsigned char *s;
	size_t len, pos;
	int nlong;              /* words skipped for being too long so far */
	size_t long_off;        /* byte offset of the first of them */
	char buf[NZ_WORD_MAX + 8];
} nz_iter_t;

void nz_iter_init(nz_iter_t *it, const char *s, size_t len);
/* Next word: 1, or 0 at the end.  Words too long to index are skipped and
 * counted in it->nlong. */
int nz_next(nz_iter_t *it, nz_word_t *w);
/* Byte offset of the first invalid UTF-8 sequence of s (overlong forms,
 * surrogates and code points past U+10FFFF included), or len. */
size_t nz_utf8_invalid(const char *s, size_t len);
/* Case-fold and strip accents of a whole string, punctuation kept (for
 * addresses).  Returns the length written (NUL added), -1 if over cap. */
int nz_fold(const char *s, size_t len, char *out, size_t cap);
/* Byte length of the first n code points of a UTF-8 string of len bytes. */
size_t nz_prefix_bytes(const char *s, size_t len, int n);
/* Code point count of a UTF-8 string. */
int nz_count_cp(const char *s, size_t len);
/* Is the code point one of the CJK scripts indexed as bigrams. */
int nz_is_cjk(int32_t cp);
/* Address span: the first "local@domain" starting at or after from within
 * [from, len) of s.  1 and [*start,*end) when found, else 0. */
int nz_find_address(const char *s, size_t len, size_t from, size_t *start,
    size_t *end);

/* ---- tokenizer.c: the blind FTS5 tokenizer ------------------------------ */

#define TK_KEY_LEN   16     /* crypto_shorthash_siphashx24_KEYBYTES */
#define TK_TOKEN_LEN 16     /* base32 of 80 bits of SipHash-2-4-128 */
#define TK_NAME      "blind"
/* Tokens a shard holds, recorded in its meta row "tokenizer" (none: 1).
 * 2: a CJK run cut into pieces for length keeps the bigram across each
 * cut, so that every stretch of a long run is found. */
#define TK_VERSION   2

typedef struct tk_ctx tk_ctx_t;

/* lang NULL/""/"none": no stemming.  lean: documents leave out the
 * tokens another one stands for (a stem equal to its word, a prefix as long
 * as its word), shards with meta tokens = 2 (tokenizer.c).  NULL on error
 * (unknown language). */
tk_ctx_t *tk_ctx_new(const uint8_t key[TK_KEY_LEN], const char *lang,
    int prefix_min, int prefix_max, int lean, size_t terms_max);
void tk_ctx_free(tk_ctx_t *ctx);
/* Register ctx as tokenizer "blind" on db; db owns ctx afterwards (also
 * on failure). */
int tk_register(sqlite3 *db, tk_ctx_t *ctx);
/* Is lang a stemmer libstemmer knows (NULL/""/"none" count as valid). */
int tk_language_valid(const char *lang);

/* Query-side markers: a quoted FTS5 string starting with "<m>:" tells the
 * tokenizer in query mode which tokens to emit. */
#define TK_M_WORD   'w'     /* stemmed (if the shard stems) words */
#define TK_M_EXACT  'e'     /* exact words (phrases) */
#define TK_M_PREFIX 'p'     /* words, the last one as a prefix token */
#define TK_M_ADDR   'a'     /* a whole address */
#define TK_M_DOMAIN 'd'     /* "@domain" */
#define TK_M_LOCAL  'l'     /* "local@" */

/* ---- query_parse.c / query_compile.c ------------------------------------ */

enum qn_type { QN_AND, QN_OR, QN_NOT, QN_TERM, QN_NEAR, QN_FILTER };
enum q_field { QF_ANY, QF_FROM, QF_TO, QF_CC, QF_BCC, QF_PARTICIPANT,
	QF_SUBJECT, QF_BODY, QF_FILENAME };
enum q_kind { QK_WORD, QK_PHRASE, QK_PREFIX };
enum q_filter { QX_AFTER, QX_BEFORE, QX_ON, QX_LARGER, QX_SMALLER,
	QX_HAS_ATTACHMENT, QX_VERDICT, QX_QUARANTINED };

/* msg.flags: the caller's bits (SEARCH_FLAGS_MASK), the gateway verdict
 * in bits 24-27 and quarantined in bit 28 (no schema change: rows written
 * before have neither) */
#define MSG_VERDICT_SHIFT 24
#define MSG_QUARANTINED   0x10000000u
#define MSG_FLAGS_PACK(flags, verdict, quar) \
	(((flags) & SEARCH_FLAGS_MASK) | \
	((uint32_t)((verdict) & 0xf) << MSG_VERDICT_SHIFT) | \
	((quar) ? MSG_QUARANTINED : 0u))

typedef struct qnode {
	int type;                  /* enum qn_type */
	struct qnode **kids;
	size_t nkids;
	size_t pos;                /* byte offset in the query text */
	int field;                 /* terms: enum q_field */
	int kind;                  /* terms: enum q_kind */
	char *text;                /* terms: raw text, NUL-terminated */
	int noword;                /* terms: a bare word of punctuation or
	                              symbols only (query_parse.c drops it
	                              from its AND group) */
	int distance;              /* NEAR */
	int filter;                /* enum q_filter */
	int64_t value;             /* filter value (time or bytes) */
} qnode_t;

struct search_query {
	char *text;                /* the query as given */
	qnode_t *root;             /* NULL: empty query (everything); else
	                              every term yields at least one token */
};

#define Q_TEXT_MAX  4096       /* bytes of a query */
#define Q_DEPTH_MAX 20         /* nesting of ( ) (SQLite's parser stack) */

void qnode_free(qnode_t *n);
/* Set errbuf to "column C (byte B): msg" for position pos of text. */
void q_error(char *errbuf, size_t errlen, const char *text, size_t pos,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

typedef struct qc_param {
	int is_text;
	int64_t i;
	char *s;
} qc_param_t;

typedef struct qc_out {
	char *match;               /* FTS5 expression, NULL: no MATCH */
	char *where;               /* SQL condition on msg m (never NULL) */
	qc_param_t *params;        /* bound in order after the MATCH */
	size_t nparams;
	int64_t date_min, date_max;   /* messages can only be in [min, max) */
	int where_dates;           /* match set, and where only bounds the date
	                              to [date_min, date_max) */
} qc_out_t;

#define QC_ADDR_MAX 512        /* an address term folds to fewer bytes
                                  (the index side's limit too) */
/* Is the term an address form (address field, '@', not a phrase)? */
int q_term_addr(const qnode_t *t);
/* Marker (TK_M_*) of a term: which tokens its text gives; 0 when it gives
 * none (the parser refuses such terms). */
char q_term_mode(const qnode_t *t);
/* Compile the AST.  AR_ESYNTAX (errbuf) for a prefix shorter than
 * prefix_min characters, and for a term without a token (which the parser
 * never lets through). */
int qc_compile(const search_query_t *q, int prefix_min, qc_out_t *out,
    char *errbuf, size_t errlen);
void qc_free(qc_out_t *out);

/* ---- shard.c: one SQLite file per tenant and year ------------------------ */

#include <pthread.h>

#define SHARD_COLUMNS 7        /* from to cc bcc subject body filename */
#define DISPLAY_CONTEXT "search-display"

enum { ST_FIND, ST_INS_MSG, ST_INS_FTS, ST_DEL_FTS, ST_DEL_MSG, ST_N };

typedef struct sconn {
	sqlite3 *db;
	sqlite3_stmt *st[ST_N];    /* writer statements, prepared lazily */
	struct shard *sh;          /* idle readers: whose connection */
	struct sconn *prev, *next; /* idle readers: the handle's LRU list */
} sconn_t;

typedef struct shard {
	uint8_t tenant[SEARCH_TENANT_LEN];
	int year;
	sconn_t *writer;           /* under search.write_mu */
	uint64_t wused;            /* under write_mu: last use of the writer */
	struct shard *next;
	char path[];               /* the file */
} shard_t;

/*
 * Memory bounds (docs/operator-guide.md, "Index memory"): a connection
 * keeps at most cache bytes of pages while it works and gives them back
 * when it is done (after each transaction of the writer, when a reader
 * returns to the pool); at most open_max writers and open_max idle
 * readers stay open, the least recently used are closed.
 */
struct search {
	char *dir;                 /* data_dir/index */
	keysvc_t *ks;
	char lang[64];
	int pmin, pmax;
	size_t body_max;
	size_t terms_max;          /* distinct tokens of one field, new shards */
	int threads;
	size_t cache;              /* page cache of a working connection */
	int open_max;              /* open writers; idle readers */
	size_t batch_bytes;        /* text a batch of the indexer holds */
	size_t chunk_ids;          /* catalog ids reconcile and reindex read
	                              at a time (indexer.c; tests lower it) */
	pthread_mutex_t write_mu;  /* one writer */
	int nwriters;              /* under write_mu: open writers */
	uint64_t wtick;            /* under write_mu: LRU clock */
	pthread_rwlock_t drop_lock;/* searches: read; tenant drop: write */
	pthread_mutex_t shards_mu; /* the shard list and gens */
	shard_t *shards;
	struct tgen {              /* inode of each tenant directory seen */
		uint8_t tenant[SEARCH_TENANT_LEN];
		uint64_t ino;          /* 0: absent */
		struct tgen *next;
	} *gens;
	pthread_mutex_t idle_mu;   /* the idle readers */
	sconn_t *idle, *idle_last; /* most recently used first */
	int nidle;
	pthread_mutex_t ver_mu;    /* cached current key versions */
	struct kver_cache {
		uint8_t tenant[SEARCH_TENANT_LEN];
		uint32_t version;
		int64_t at_us;
	} kver[16];
};

/* A second handle like idx whose shards live under dir (instead of
 * data_dir/index): where a reindex builds a tenant's new shards. */
int search_open_at(search_t **out, const search_t *like, const char *dir);

/* Set the calling thread's error message; returns rc. */
int search_fail(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* data_dir/index/<tenant hex> */
int shard_tenant_dir(const search_t *idx, const uint8_t *tenant, char *buf,
    size_t len);
/* Years with a shard file, newest first; *years malloc'd. */
int shard_years(const search_t *idx, const uint8_t *tenant, int **years,
    size_t *n);
/* The shard object of (tenant, year); NULL (AR_ENOENT) when the file does
 * not exist and create is 0.  Shard objects live until search_close or a
 * tenant drop. */
int shard_get(search_t *idx, const uint8_t *tenant, int year, int create,
    shard_t **out);
/* TK_VERSION the shard was built with (1 when it does not say). */
int shard_tokenizer_version(sconn_t *c);
/* Shards of a tenant built with a TK_VERSION older than today's. */
int shard_count_old(search_t *idx, const uint8_t *tenant, uint64_t *n);
/* Borrow a reader connection / give it back (its page cache is freed;
 * it joins the idle readers, the oldest of which is closed when there
 * are more than open_max). */
int shard_reader(search_t *idx, shard_t *sh, sconn_t **out);
void shard_release(search_t *idx, shard_t *sh, sconn_t *c);
/* The writer connection (caller holds write_mu); the file is created with
 * the tenant's language when missing.  Opening one closes the least
 * recently used writer when open_max are open. */
int shard_writer(search_t *idx, shard_t *sh, sconn_t **out);
/* The writer's transaction is over: free its page cache. */
void shard_writer_done(sconn_t *w);
void shard_conn_close(sconn_t *c);
/* Forget (close) every shard of a tenant; caller holds write_mu and
 * drop_lock for writing. */
void shard_forget_tenant(search_t *idx, const uint8_t *tenant);
void shard_forget_all(search_t *idx);
/* Notice that the tenant's directory was replaced (a reindex by this or
 * another process swapped it): forget the tenant's open shards so that
 * they are opened anew.  Called at the start of every entry point, before
 * any lock is taken. */
void shard_refresh(search_t *idx, const uint8_t *tenant);
/*
 * The ids of the tenant's index rows greater than lo and at most hi (lo,
 * hi NULL: unbounded), in id order, at most max from each shard: when a
 * shard holds more, *cut is set and cut_at receives the smallest of the
 * last ids returned by such shards (the list is complete only up to it).
 * An id in two shards appears twice.  *ids is malloc'd.
 */
int index_ids_range(search_t *idx, const uint8_t *tenant, const uint8_t *lo,
    const uint8_t *hi, size_t max, uint8_t (**ids)[SEARCH_ID_LEN],
    size_t *n, int *cut, uint8_t cut_at[SEARCH_ID_LEN]);
/* Year (UTC) of a date, clamped to 1..9999. */
int shard_year_of(int64_t date);
/* Seconds since the epoch of YEAR-01-01T00:00:00Z. */
int64_t shard_year_start(int year);
/* Key to seal/open blobs of a tenant at a key version. */
int shard_display_key(search_t *idx, const uint8_t *tenant, uint32_t kver,
    uint8_t key[32]);

/* Schema of a new shard plus its meta rows; the tokenizer must already be
 * registered.  Used by shard.c and the fuzzer's in-memory database. */
int shard_schema_create(sqlite3 *db, const char *tenant_hex, int year,
    const char *lang, int prefix_min, int prefix_max, size_t terms_max);

/* ---- blob.c: encrypted row blobs ----------------------------------------- */

/* Seal n strings for (tenant, id, kind) under key: version | nonce | box.
 * *out malloc'd. */
int blob_seal(const uint8_t key[32], uint32_t kver,
    const uint8_t tenant[SEARCH_TENANT_LEN], const uint8_t id[SEARCH_ID_LEN],
    char kind, const char *const *strs, size_t n, uint8_t **out,
    size_t *outlen);
/* Key version a blob was sealed with (0 if malformed). */
uint32_t blob_version(const uint8_t *blob, size_t len);
/* Open a blob into n malloc'd strings (strs[i] freed by the caller).
 * AR_ECORRUPT if the tag, tenant, id or kind do not match. */
int blob_open(const uint8_t key[32], const uint8_t tenant[SEARCH_TENANT_LEN],
    const uint8_t id[SEARCH_ID_LEN], char kind, const uint8_t *blob,
    size_t len, char **strs, size_t n);

/* ---- small dynamic string (query_compile.c) ------------------------------ */

typedef struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
} sbuf_t;

void sb_add(sbuf_t *b, const char *s, size_t n);
void sb_puts(sbuf_t *b, const char *s);
void sb_printf(sbuf_t *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* SEARCH_PRIV_H */
