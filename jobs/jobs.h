/*
 * jobs.h - records-management jobs of archived: legal exports (and their
 * verification), shared by archivectl, the archived scheduler and (later)
 * the web console.
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h); err (may
 * be NULL) receives a one-line reason naming the file or object.
 */
#ifndef JOBS_H
#define JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "search/search.h"
#include "store/store.h"

/* ======================================================================
 * Exports (jobs/export.c) - layout in docs/formats.md ("Exports")
 *
 * An export is a directory:
 *   messages.csv            one row a message (RFC 4180, UTF-8)
 *   messages/<id>.eml       every message as stored, byte for byte
 *   attachments/<id>/NN-<name>  every attachment decoded (native format)
 *   messages.mbox           optional (mboxrd)
 *   messages.dat            optional Concordance load file
 *   export-pubkey.pem       the archive's Ed25519 signing key (public)
 *   VERIFY.txt              how to check the export with standard tools
 *   manifest.sha256         "sha256  path" of every file above
 *   manifest.sha256.sig     Ed25519 signature of manifest.sha256 (keysvc)
 * or the same tree in a ZIP file (libarchive), built from a staging
 * directory next to it ("FILE.partial.d").
 *
 * Resumable: while it runs, the directory holds ".work/" (the scope, the
 * list of ids fixed at the start and a journal with one record line a
 * finished message).  Run
 * the same export again on the same directory and it continues where it
 * stopped; .work/ is removed when the export is complete.  Memory use does
 * not grow with the size of messages (streamed) and is 16 bytes a message
 * of the scope otherwise.
 *
 * The completed export is a STORE_LOG_EXPORT entry in the tenant's log
 * (scope, count, files, bytes; digest = SHA-256 of manifest.sha256).
 * ====================================================================== */

/* Is c invisible or does it change the direction of the text around it
 * (a Unicode format character such as U+202E RIGHT-TO-LEFT OVERRIDE or
 * U+200B ZERO WIDTH SPACE, a control, a line or paragraph separator)?
 * Such characters are replaced in the file names of exports and
 * downloads, where "invoice<U+202E>fdp.exe" would pass for a PDF. */
int jobs_char_hidden(uint32_t c);

/* Spreadsheet formula guard for one CSV (or load file) cell: 1 when s
 * starts with = + - @, a tab or a carriage return, which a spreadsheet
 * would run as a formula; such a cell is written with a leading '
 * (OWASP "CSV injection").  Used by messages.csv, messages.dat and the
 * audit log's CSV. */
int jobs_csv_guarded(const char *s);

enum jobs_scope {
	JOBS_SCOPE_ALL = 0,        /* the whole tenant */
	JOBS_SCOPE_QUERY = 1,      /* a search (query language) */
	JOBS_SCOPE_IDS = 2,        /* a list of object ids */
};

#define JOBS_EXPORT_MBOX  0x1u
#define JOBS_EXPORT_DAT   0x2u

typedef struct jobs_progress {
	uint64_t done;             /* messages finished (resumed included) */
	uint64_t total;            /* messages in the scope */
	uint64_t bytes;            /* bytes written by this run */
} jobs_progress_t;
typedef void (*jobs_progress_cb)(void *arg, const jobs_progress_t *p);

typedef struct jobs_export_params {
	store_t *st;               /* borrowed */
	search_t *idx;             /* borrowed; needed for JOBS_SCOPE_QUERY */
	const store_tenant_t *tenant;
	int scope;                 /* enum jobs_scope */
	const char *query;         /* JOBS_SCOPE_QUERY: query text */
	const uint8_t *ids;        /* JOBS_SCOPE_IDS: n_ids * STORE_ID_LEN */
	size_t n_ids;
	const char *scope_label;   /* JOBS_SCOPE_IDS: what the ids are (e.g.
	                              "hold:NAME"), logged; may be NULL */
	const char *dir;           /* directory export (NULL with zip) */
	const char *zip;           /* ZIP file to write (NULL with dir) */
	unsigned flags;            /* JOBS_EXPORT_* */
	const char *by;            /* who asked (user name), for the log;
	                              may be NULL */
	const char *client;        /* from where (address), for the log;
	                              may be NULL */
	jobs_progress_cb progress; /* may be NULL */
	void *progress_arg;
} jobs_export_params_t;

typedef struct jobs_export_result {
	uint64_t messages;         /* .eml files in the export */
	uint64_t attachments;
	uint64_t skipped;          /* in the scope but gone meanwhile */
	uint64_t files;            /* files listed in the manifest */
	uint64_t bytes;            /* bytes of those files */
	uint64_t resumed;          /* messages done by an earlier run */
	uint64_t log_seq;          /* the export's log entry */
	uint8_t  manifest_sha256[32];
} jobs_export_result_t;

/*
 * Run (or resume) an export.  AR_EEXIST when dir is a complete export or
 * a non-empty directory that is not an unfinished export, or when zip
 * exists; AR_EINVAL when an unfinished export in dir has another scope;
 * AR_ESHREDDED for a shredded tenant.  A query scope is checked
 * (jobs_query_check) before anything is written.
 */
int jobs_export(const jobs_export_params_t *p, jobs_export_result_t *res,
    char *err, size_t errlen);

/*
 * Check an export directory without the archive: the signature of
 * manifest.sha256 against export-pubkey.pem, every listed file's SHA-256,
 * and that no file is missing or unlisted.  Each problem goes to cb
 * (path, text; cb may be NULL).  0 when all is well, AR_ESIG (signature),
 * AR_ECORRUPT (a file), or another status when the check could not run.  pk_out (may be NULL)
 * receives the public key found in the export.
 */
typedef void (*jobs_verify_cb)(void *arg, const char *path, const char *what);
int jobs_export_verify(const char *dir, jobs_verify_cb cb, void *arg,
    uint64_t *files, uint8_t pk_out[KEYSVC_PK_LEN], char *err,
    size_t errlen);

/* ======================================================================
 * Legal holds (jobs/hold.c): what a hold covers, the query included
 * ====================================================================== */

/* Ids (sorted, malloc'd: the caller frees *ids) of the tenant's objects
 * that hold h covers.  Without idx a hold's query is taken as matching
 * (the safe side: more is held, never less). */
int jobs_hold_ids(store_t *st, search_t *idx, const store_tenant_t *t,
    const store_hold_t *h, uint8_t **ids, size_t *n, char *err,
    size_t errlen);
/*
 * Can query be a scope (an export's, a hold's)?  0; AR_ESYNTAX for a query
 * the parser refuses (err: "query: column C (byte B): ..."), AR_EINVAL
 * for an empty or blank query, which would select every message.
 */
int jobs_query_check(const char *query, char *err, size_t errlen);
/* Every id a query matches (sorted, malloc'd).  The query is checked
 * first (jobs_query_check): never the whole tenant by accident. */
int jobs_query_ids(search_t *idx, const uint8_t tenant[STORE_TENANT_LEN],
    const char *query, uint8_t **ids, size_t *n, char *err, size_t errlen);
/* Is id in the sorted list? */
int jobs_ids_has(const uint8_t *ids, size_t n, const uint8_t id[STORE_ID_LEN]);

/* ======================================================================
 * Disposition (jobs/dispose.c)
 *
 * Every object past its retain-until (catalog date, ar_now()) and under
 * no active hold is removed: index entry (search_index_remove when idx is
 * given), then catalog + signed tombstone + file (store_object_dispose).
 * Batches of `batch` objects; the log head is signed after each.  Holds
 * with a query are evaluated through idx; without idx such a hold covers
 * everything its other criteria cover.  Idempotent and resumable: a run
 * stopped anywhere leaves each object disposed of or untouched, except a
 * file whose tombstone was already written: the next run deletes it.
 * ====================================================================== */

typedef void (*jobs_dispose_cb)(void *arg, const store_tenant_t *t,
    const uint8_t id[STORE_ID_LEN], const char *what);

typedef struct jobs_dispose_params {
	store_t *st;
	search_t *idx;             /* may be NULL */
	const store_tenant_t *tenant;   /* NULL: every tenant */
	int dry_run;               /* report what would go, change nothing */
	size_t batch;              /* 0: 1000 */
	uint64_t max;              /* stop after this many (0: no limit) */
	jobs_dispose_cb cb;        /* may be NULL: "disposed", "held",
	                              "would-dispose", or an error text */
	void *arg;
} jobs_dispose_params_t;

typedef struct jobs_dispose_result {
	uint64_t examined, due, disposed, held, failed;
	uint64_t swept;            /* files of an interrupted disposition
	                              (tombstone written) deleted now */
} jobs_dispose_result_t;

int jobs_dispose(const jobs_dispose_params_t *p, jobs_dispose_result_t *res,
    char *err, size_t errlen);

/* ======================================================================
 * Termination (jobs/terminate.c)
 *
 * active -> terminated: ingest is refused (SMTP 550), exports allowed;
 * after terminated_days -> inactive: kept; after inactive_days ->
 * shredded: unless a hold is active (AR_EHOLD), the tenant's state is
 * set and the log head signed, keysvc destroys every key version (and
 * this process's cached subkeys are wiped), the index, the object files
 * and the catalog's mail records are deleted, and a certificate of
 * destruction is written to cert_dir: NAME-ID-destruction.json (tenant,
 * counts, final log seq and head, time), .json.sig (Ed25519 over the
 * .json bytes) and .pubkey.pem.  Every step before is a logged change.
 * ====================================================================== */

const char *jobs_state_name(int state);

/* Windows in days; 0 keeps the tenant's settings (default 30 / 120). */
int jobs_tenant_terminate(store_t *st, const char *name,
    uint32_t terminated_days, uint32_t inactive_days, char *err,
    size_t errlen);

typedef struct jobs_advance_params {
	store_t *st;
	search_t *idx;             /* its shards are dropped when shredding */
	const char *tenant;
	int force;                 /* do not wait for the window to end */
	const char *cert_dir;      /* where certificates are written */
} jobs_advance_params_t;

typedef struct jobs_shred_result {
	uint64_t objects, bytes;   /* what was destroyed */
	uint64_t log_seq;          /* final log head */
	uint8_t  log_head[32];
	char     certificate[4400];    /* path of the .json */
} jobs_shred_result_t;

/* One step forward.  AR_EAGAIN while the window is open (unless force),
 * AR_EHOLD when shredding is blocked by a hold, AR_EINVAL for an active
 * tenant.  A shredded tenant is shredded again idempotently (finishes an
 * interrupted run). */
int jobs_tenant_advance(const jobs_advance_params_t *p, int *new_state,
    jobs_shred_result_t *res, char *err, size_t errlen);

#endif /* JOBS_H */
