/*
 * scan.h - the gateway's scanning layer (private to gateway/): antivirus
 * engines behind one interface (clamd INSTREAM today), rspamd /checkv2
 * over libcurl, the attachment policy walk (GMime + libarchive), and
 * gw_scan_message(), which runs them all on one message and fills one
 * result.  Turning a result into an action (reject, quarantine, tag,
 * deliver, 451) is the caller's policy, not this layer's.
 *
 * Every call returning int returns 0 or a negative AR_* status
 * (common/ar.h).  A scanner that could not give a verdict is not an error
 * of the call: it is a status in the result (gw_scan_status_t).
 *
 * Memory: nothing here holds a whole message.  Scanners read the message
 * through a source (gw_scan_source_t) in chunks, the attachment walk
 * parses a seekable GMimeStream without copying part contents, and archives
 * are read as streams.  A 100 MB message costs a few hundred KiB.
 *
 * Threads: a gw_av_t (an engine's configuration) may be shared by every
 * thread; a gw_rspamd_t (one libcurl handle, its connection kept alive) and
 * a gw_scanners_t are for one thread at a time: make one per worker thread.
 */
#ifndef GATEWAY_SCAN_H
#define GATEWAY_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include <gmime/gmime.h>

#include "spool/spool.h"

/* ======================================================================
 * Status of one scanner on one message
 * ==================================================================== */

typedef enum gw_scan_status {
	GW_SCAN_NOT_RUN = 0,  /* not configured, or not asked */
	GW_SCAN_OK,           /* scanned: the result's fields are the verdict */
	GW_SCAN_UNAVAILABLE,  /* no connection: no socket, refused, closed
	                         before answering */
	GW_SCAN_TIMEOUT,      /* connect, a write, a read or the whole scan
	                         took longer than its timeout */
	GW_SCAN_TOO_LARGE,    /* over the scanner's size limit: not scanned
	                         (clamd's StreamMaxLength, rspamd's max_bytes) */
	GW_SCAN_FAILED,       /* the scanner answered an error, or a reply that
	                         does not parse; or the message could not be
	                         read (source_rc says why) */
} gw_scan_status_t;

/* "not_run", "ok", "unavailable", "timeout", "too_large", "failed". */
const char *gw_scan_status_name(gw_scan_status_t s);

/* ======================================================================
 * The message: a source read in passes
 * ==================================================================== */

/*
 * A message as independent cursors: each scanner opens its own cursor at
 * offset 0 and reads it to the end, so clamd, rspamd and the attachment
 * walk may read the same message at the same time from two threads
 * (open/read/close of distinct cursors must allow that).  read() has
 * store_read_cb's contract: fills at most len bytes, *got == 0 at the end,
 * 0 or an AR_* status.  mime_stream() (may be NULL: no attachment walk)
 * returns a new, seekable GMimeStream over the message at offset 0 (one
 * reference, the caller unrefs it), or NULL with *rc set.
 *
 * The constructors below fill *src; gw_scan_source_done() releases what
 * they allocated.  A caller may also fill the struct itself.
 */
typedef struct gw_scan_source {
	void *arg;
	uint64_t size;                  /* bytes of the message */
	int  (*open)(void *arg, void **cur);
	int  (*read)(void *cur, void *buf, size_t len, size_t *got);
	void (*close)(void *cur);
	GMimeStream *(*mime_stream)(void *arg, int *rc);
	void (*release)(void *arg);     /* by gw_scan_source_done; may be NULL */
} gw_scan_source_t;

/* A message in memory (buf is borrowed: it must outlive the source). */
int gw_scan_source_mem(gw_scan_source_t *src, const void *buf, size_t len);
/*
 * The message of a spool entry (spool_open_entry; the envelope that follows
 * it in the entry is not part of it).  Each cursor is its own sealed
 * reader: every chunk is authenticated before any byte of it reaches a
 * scanner, and nothing is written to disk.  sp is borrowed.  AR_ENOENT ...
 * as spool_open_entry.
 */
int gw_scan_source_spool(gw_scan_source_t *src, spool_t *sp,
    const uint8_t tenant[SPOOL_TENANT_LEN], const uint8_t id[SPOOL_ID_LEN]);
void gw_scan_source_done(gw_scan_source_t *src);

/* The envelope, as rspamd wants it (all borrowed; NULL = unknown). */
typedef struct gw_scan_envelope {
	const char *from;             /* MAIL FROM address; "" null sender */
	const char *const *rcpt;      /* RCPT TO addresses */
	size_t nrcpt;
	const char *ip;               /* client address, text */
	const char *helo;             /* HELO/EHLO argument */
	const char *hostname;         /* client's verified reverse name */
	const char *user;             /* SMTP AUTH user, when authenticated */
	const char *queue_id;         /* our id for the message (logs) */
} gw_scan_envelope_t;

/* ======================================================================
 * Antivirus engines: one interface
 * ====================================================================
 *
 * An engine is a gw_av_t whose first member is its ops.  clamd is the one
 * built here.  Others that fit behind the same three calls: Sophos
 * (SAVDI, its own line protocol over TCP/UNIX, or ICAP), ESET (esets_icap /
 * ESET File Security ICAP), Kaspersky (Scan Engine over ICAP or its HTTP
 * REST mode), Trend Micro and McAfee/Trellix web gateways (ICAP), Bitdefender
 * (bdamserver), F-Secure/WithSecure (ICAP), Avast/AVG (scan daemon socket).
 * ICAP (RFC 3507: RESPMOD with the message as the encapsulated body,
 * "X-Infection-Found"/"X-Virus-ID" in the reply) is the generic protocol
 * most commercial engines speak, so one ICAP client would bring most of
 * them; Border Scout's three engines would be clamd plus two of these.
 */

#define GW_AV_MAX_VIRUSES 8     /* names kept per engine and message */

typedef struct gw_av_result {
	const char *engine;     /* ops->name (static) */
	gw_scan_status_t status;
	int infected;           /* status OK and at least one virus found */
	size_t nviruses;
	char *viruses[GW_AV_MAX_VIRUSES];   /* malloc'd names */
	int source_rc;          /* the source's failure, when FAILED by it */
	int64_t dur_us;
	char errmsg[256];       /* why, when status is not OK */
} gw_av_result_t;

typedef struct gw_av gw_av_t;
typedef struct gw_av_ops {
	const char *name;
	/* Scan the whole message.  0 when scanned (res->status OK, infected or
	 * not), else the AR_* status matching res->status: AR_EAGAIN
	 * (unavailable), AR_ETIMEOUT, AR_ETOOBIG, AR_EPROTO (failed), or the
	 * source's own status.  res is filled in every case (gw_av_result_clear
	 * releases it). */
	int  (*scan)(gw_av_t *av, const gw_scan_source_t *src,
	    gw_av_result_t *res);
	/* Is the engine there?  0 or AR_EAGAIN/AR_ETIMEOUT/AR_EPROTO. */
	int  (*ping)(gw_av_t *av);
	void (*close)(gw_av_t *av);
} gw_av_ops_t;
struct gw_av {
	const gw_av_ops_t *ops;
};

static inline int gw_av_scan(gw_av_t *av, const gw_scan_source_t *src,
    gw_av_result_t *res) { return av->ops->scan(av, src, res); }
static inline void gw_av_close(gw_av_t *av) { if (av) av->ops->close(av); }
void gw_av_result_clear(gw_av_result_t *res);

/* --- clamd ------------------------------------------------------------- */

typedef struct gw_clamd_conf {
	const char *socket;     /* clamd's LocalSocket (copied) */
	int connect_ms;         /* connect; 0: 1000 */
	int io_ms;              /* each write and each read; 0: 10000 */
	int total_ms;           /* the whole scan; 0: 120000 */
	uint64_t stream_max;    /* clamd's StreamMaxLength when known: larger
	                           messages are TOO_LARGE without a connection;
	                           0: learnt from clamd's "INSTREAM size limit
	                           exceeded" reply (also TOO_LARGE) */
	size_t chunk;           /* INSTREAM chunk; 0: 64 KiB */
} gw_clamd_conf_t;

/* A clamd engine (gw_av_close frees it). */
int gw_clamd_new(const gw_clamd_conf_t *conf, gw_av_t **out);
/* Version string from clamd's VERSION ("ClamAV 1.4.6/27000/..."). */
int gw_clamd_version(gw_av_t *av, char *buf, size_t len);

/* ======================================================================
 * rspamd
 * ==================================================================== */

typedef enum gw_rspamd_action {
	GW_RSPAMD_NO_ACTION = 0,
	GW_RSPAMD_GREYLIST,
	GW_RSPAMD_ADD_HEADER,
	GW_RSPAMD_REWRITE_SUBJECT,
	GW_RSPAMD_SOFT_REJECT,
	GW_RSPAMD_REJECT,
	GW_RSPAMD_ACTION_OTHER,     /* a custom action: see action_name */
} gw_rspamd_action_t;

typedef struct gw_rspamd_conf {
	const char *url;        /* normal worker, "http://127.0.0.1:11333" */
	const char *password;   /* Password header, or NULL */
	int connect_ms;         /* 0: 1000 */
	int total_ms;           /* whole request; 0: 20000 */
	uint64_t max_bytes;     /* larger messages are TOO_LARGE, not sent;
	                           0: 50 MiB (rspamd's own max_message) */
} gw_rspamd_conf_t;

typedef struct gw_rspamd_symbol {
	char *name;
	double score;
	size_t noptions;
	char **options;
} gw_rspamd_symbol_t;

typedef struct gw_rspamd_result {
	gw_scan_status_t status;
	gw_rspamd_action_t action;
	char *action_name;        /* as rspamd said it ("add header") */
	double score;
	double required_score;
	int is_skipped;           /* rspamd skipped the message (settings) */
	size_t nsymbols;
	gw_rspamd_symbol_t *symbols;   /* in reply order */
	char *dkim_signature;     /* "dkim-signature" when rspamd signed */
	char *smtp_message;       /* messages.smtp_message, if any */
	char *subject;            /* the rewritten subject (rewrite subject) */
	long http_status;
	int source_rc;
	int64_t dur_us;
	char errmsg[256];
} gw_rspamd_result_t;

typedef struct gw_rspamd gw_rspamd_t;

/* One handle (libcurl easy handle: the connection is kept alive between
 * checks).  conf is copied. */
int gw_rspamd_new(const gw_rspamd_conf_t *conf, gw_rspamd_t **out);
void gw_rspamd_free(gw_rspamd_t *r);
/*
 * POST the message to /checkv2 with the envelope as headers (From, Rcpt
 * once per recipient, IP, Helo, Hostname, User, Queue-Id), streaming the
 * body from the source (Content-Length known), and parse the reply.  0
 * when res->status is OK; else AR_EAGAIN (unavailable), AR_ETIMEOUT,
 * AR_ETOOBIG, AR_EPROTO (an HTTP error or a reply that is not a complete
 * /checkv2 result), or the source's status.  res is filled in every case.
 */
int gw_rspamd_check(gw_rspamd_t *r, const gw_scan_source_t *src,
    const gw_scan_envelope_t *env, gw_rspamd_result_t *res);
/* GET /ping: 0, AR_EAGAIN, AR_ETIMEOUT or AR_EPROTO. */
int gw_rspamd_ping(gw_rspamd_t *r);
/* Parse a /checkv2 JSON reply into res (status OK): AR_EPROTO with
 * res->errmsg naming what is missing or wrong. */
int gw_rspamd_parse(const char *json, size_t len, gw_rspamd_result_t *res);
/* The symbol called name, or NULL. */
const gw_rspamd_symbol_t *gw_rspamd_symbol(const gw_rspamd_result_t *res,
    const char *name);
const char *gw_rspamd_action_name(gw_rspamd_action_t a);
void gw_rspamd_result_clear(gw_rspamd_result_t *res);

/* ======================================================================
 * Attachment policy: real types, archives, limits
 * ==================================================================== */

/* Real types, from the content's first bytes (and, for ZIP and OLE, from
 * its entries), never from the name or the declared Content-Type. */
typedef enum gw_ftype {
	GW_FT_UNKNOWN = 0,   /* no known signature (text, EICAR, data ...) */
	GW_FT_PE,            /* Windows/DOS executable (MZ): exe dll scr sys */
	GW_FT_ELF,
	GW_FT_MACHO,
	GW_FT_SCRIPT,        /* "#!" script; and by name (js vbs ps1 bat ...) */
	GW_FT_LNK,           /* Windows shortcut */
	GW_FT_MSI,           /* Windows Installer (OLE, MSI class id) */
	GW_FT_OLE,           /* OLE2 compound file: doc xls ppt msg */
	GW_FT_OLE_MACRO,     /* OLE2 with a VBA project (macros) */
	GW_FT_ZIP,
	GW_FT_OOXML,         /* docx xlsx pptx: ZIP with [Content_Types].xml */
	GW_FT_OOXML_MACRO,   /* docm xlsm pptm: with vbaProject.bin */
	GW_FT_JAR,           /* ZIP with META-INF/MANIFEST.MF */
	GW_FT_ODF,           /* OpenDocument: ZIP with "mimetype" */
	GW_FT_RAR,
	GW_FT_7Z,
	GW_FT_GZIP,
	GW_FT_BZIP2,
	GW_FT_XZ,
	GW_FT_CAB,
	GW_FT_TAR,
	GW_FT_ISO,           /* ISO 9660 / UDF disk image */
	GW_FT_PDF,
	GW_FT_RTF,
	GW_FT_HTML,
	GW_FT_IMAGE,         /* PNG JPEG GIF BMP TIFF WebP */
	GW_FT_COUNT
} gw_ftype_t;

#define GW_FT_BIT(t) (UINT64_C(1) << (t))
/* What a gateway blocks unless the tenant says otherwise: programs,
 * scripts, shortcuts, installers, disk images, Office macros. */
#define GW_FT_DEFAULT_BLOCKED (GW_FT_BIT(GW_FT_PE) | GW_FT_BIT(GW_FT_ELF) | \
	GW_FT_BIT(GW_FT_MACHO) | GW_FT_BIT(GW_FT_SCRIPT) | \
	GW_FT_BIT(GW_FT_LNK) | GW_FT_BIT(GW_FT_MSI) | GW_FT_BIT(GW_FT_ISO) | \
	GW_FT_BIT(GW_FT_JAR) | GW_FT_BIT(GW_FT_OLE_MACRO) | \
	GW_FT_BIT(GW_FT_OOXML_MACRO))

/* "pe", "elf", "script", "zip", "ooxml-macro" ... (static). */
const char *gw_ftype_name(gw_ftype_t t);
/* The type called name, or -1. */
int gw_ftype_parse(const char *name);
/* A comma-separated list of names ("pe,script,iso") to a GW_FT_BIT set:
 * 0, or AR_EINVAL naming the bad word in err. */
int gw_ftype_parse_set(const char *list, uint64_t *out, char *err,
    size_t errlen);
/* The type that the first len bytes (len >= 512 recommended; 32 KiB finds
 * ISO images) show.  ZIP and OLE refinements need the whole content: the
 * walk does those. */
gw_ftype_t gw_ftype_sniff(const unsigned char *buf, size_t len);

/* Why a finding is one (bits of gw_attach_finding_t.reasons). */
enum {
	GW_ATT_BLOCKED_TYPE = 1u << 0,  /* real type in limits.blocked_types */
	GW_ATT_BLOCKED_EXT  = 1u << 1,  /* name ends in a blocked extension */
	GW_ATT_MISMATCH     = 1u << 2,  /* name or declared type says one
	                                   thing, the content another */
	GW_ATT_ENCRYPTED    = 1u << 3,  /* encrypted archive or entry */
	GW_ATT_DEPTH        = 1u << 4,  /* an archive nested deeper than
	                                   limits.archive_depth: not opened */
	GW_ATT_LIMIT        = 1u << 5,  /* bytes or entries limit reached:
	                                   not fully inspected */
	GW_ATT_DAMAGED      = 1u << 6,  /* an archive that does not read */
	GW_ATT_MACRO        = 1u << 7,  /* Office document with macros */
};

typedef struct gw_attach_limits {
	uint64_t max_message_bytes;   /* the tenant's limit; 0: none */
	uint64_t blocked_types;       /* GW_FT_BIT set; see the default */
	const char *const *blocked_ext; /* NULL-terminated, lower case, no
	                                   dot; NULL: gw_attach_default_ext */
	int archive_depth;            /* nested archives opened; 0: 3, <0: 0 */
	uint64_t archive_max_bytes;   /* uncompressed bytes read from archives
	                                 per message; 0: 256 MiB */
	unsigned archive_max_entries; /* per message; 0: 10,000 */
	unsigned max_parts;           /* MIME parts walked; 0: 1,000 */
	unsigned max_findings;        /* findings listed; 0: 256 */
} gw_attach_limits_t;

/* The extensions blocked when limits.blocked_ext is NULL (exe scr com pif
 * bat cmd js jse vbs vbe wsf wsh hta ps1 msi lnk iso img jar ...). */
extern const char *const gw_attach_default_ext[];

typedef struct gw_attach_finding {
	char *path;          /* MIME part ("2", "2.1", message/rfc822 parts
	                        continue the numbering), then archive entries:
	                        "2/docs.zip/inner.zip/run.exe" */
	char *filename;      /* the part's or entry's name, or NULL */
	char *declared;      /* declared Content-Type (MIME parts), or NULL */
	gw_ftype_t real;
	uint32_t reasons;    /* GW_ATT_*; 0: listed, nothing wrong */
	int depth;           /* 0: a MIME part; n: inside n archives */
	uint64_t size;       /* decoded bytes seen */
} gw_attach_finding_t;

typedef struct gw_attach_result {
	gw_scan_status_t status;   /* OK; TOO_LARGE (over max_message_bytes:
	                              not walked); NOT_RUN (no stream);
	                              FAILED (the message does not parse, or
	                              its stream failed: source_rc) */
	/* the decision inputs */
	int too_large;       /* size > limits.max_message_bytes (not walked) */
	int blocked;         /* a blocked type or extension somewhere */
	int encrypted;       /* an encrypted archive or entry */
	int macro;           /* an Office document with macros */
	int incomplete;      /* something not fully inspected (DEPTH, LIMIT,
	                        DAMAGED, max_parts) */
	size_t nfindings;
	gw_attach_finding_t *findings;  /* every attachment and archive entry,
	                        up to max_findings; flagged ones up to twice
	                        that; truncated says some were left out */
	int truncated;
	unsigned parts, archives, entries;
	uint64_t archive_bytes;   /* uncompressed bytes read from archives */
	int source_rc;
	int64_t dur_us;
	char errmsg[256];
} gw_attach_result_t;

/*
 * Walk the message in stream (seekable: part contents are read through
 * substreams, never copied whole) and fill res.  size is the message's
 * size (for max_message_bytes).  limits may be NULL (defaults).  0, or
 * AR_ENOMEM; a stream that fails mid-walk gives status FAILED.
 */
int gw_attach_walk(GMimeStream *stream, uint64_t size,
    const gw_attach_limits_t *limits, gw_attach_result_t *res);
void gw_attach_result_clear(gw_attach_result_t *res);

/* ======================================================================
 * All scanners on one message
 * ==================================================================== */

#define GW_SCAN_MAX_AV 4

typedef struct gw_scan_conf {
	gw_av_t *av[GW_SCAN_MAX_AV];   /* borrowed; run in this order */
	size_t nav;
	gw_rspamd_conf_t rspamd;       /* url NULL: no rspamd */
	int parallel;                  /* 1: rspamd on a companion thread
	                                  while the engines and the walk run
	                                  on the calling thread */
} gw_scan_conf_t;

typedef struct gw_scanners gw_scanners_t;

/* Per worker thread.  The engines stay the caller's (they may be shared
 * by several gw_scanners_t). */
int gw_scanners_new(const gw_scan_conf_t *conf, gw_scanners_t **out);
void gw_scanners_free(gw_scanners_t *s);

typedef struct gw_scan_result {
	size_t nav;
	gw_av_result_t av[GW_SCAN_MAX_AV];
	gw_rspamd_result_t rspamd;
	gw_attach_result_t attach;
	int infected;        /* some engine found a virus */
	int unscanned;       /* some configured scanner is not OK */
	int64_t dur_us;      /* wall time of the whole call */
} gw_scan_result_t;

/*
 * Run every engine, rspamd and the attachment walk (limits may be NULL)
 * on the message and fill res (gw_scan_result_free releases it).  0 when
 * every part ran to a status (which may be UNAVAILABLE, TIMEOUT ...);
 * AR_ENOMEM or AR_EINVAL otherwise.
 */
int gw_scan_message(gw_scanners_t *s, const gw_scan_source_t *src,
    const gw_scan_envelope_t *env, const gw_attach_limits_t *limits,
    gw_scan_result_t *res);
void gw_scan_result_free(gw_scan_result_t *res);

/*
 * The result as compact JSON, to keep with the message and to log:
 * {"av":[{"engine":"clamd","status":"ok","viruses":[...],"ms":3}],
 *  "rspamd":{"status":"ok","action":"reject","score":..,"required":..,
 *  "symbols":{"NAME":{"score":..,"options":[...]}}, "ms":..},
 *  "attach":{"status":"ok","blocked":0,...,"findings":[...]},"ms":..}.
 * malloc'd; the caller frees it.  NULL when out of memory.
 */
char *gw_scan_result_json(const gw_scan_result_t *res);

/* ======================================================================
 * Internal to the attachment walk (attach*.c), here for its unit tests
 * ==================================================================== */

/* name's extension, lower case, without the dot ("" if none). */
void gw_attach_ext(const char *name, char *out, size_t outlen);
/* Does name end in one of list's extensions? */
int gw_attach_ext_blocked(const char *name, const char *const *list);
/* Does the name or the declared Content-Type (either may be NULL)
 * promise another type than real? */
int gw_attach_mismatch(const char *name, const char *ctype, gw_ftype_t real);

/* An OLE2 compound file fed in order: its root entry's class id (MSI)
 * and whether a VBA project is in its directory (macros). */
typedef struct gw_ole {
	uint64_t off;
	unsigned char hdr[64];
	uint64_t dir_off;
	unsigned char clsid[16];
	size_t match;
	int msi, macro;
} gw_ole_t;
void gw_ole_init(gw_ole_t *o);
void gw_ole_feed(gw_ole_t *o, const unsigned char *buf, size_t len);
gw_ftype_t gw_ole_type(const gw_ole_t *o);

#endif /* GATEWAY_SCAN_H */
