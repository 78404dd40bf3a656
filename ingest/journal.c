/*
 * journal.c - journal report unwrapping: a streaming scan of the MIME
 * structure with exact byte offsets, then classification, the envelope
 * and the originals.  See journal.h.
 *
 * The scan reads the input once, line by line, keeping only the boundaries
 * of the enclosing multiparts (an explicit stack bounded by max_depth, no
 * recursion) and the header block being read (bounded by max_header).  It
 * never looks inside an original beyond its header block, so the size of
 * an original does not cost memory.  The body of a part ends where the
 * delimiter line of an enclosing multipart starts, minus the CRLF (or LF)
 * before it, which belongs to the delimiter (RFC 2046 5.1.1).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/journal.h"

#define JCHUNK 65536

struct jpart {
	int parent;              /* enclosing part, -1 for the message */
	char *type;              /* lower-case "type/subtype" */
	char *boundary;
	char *charset;
	GMimeContentEncoding enc;
	int64_t body_off, end_off;   /* end_off -1 while open */
	int closed;              /* ended by an enclosing delimiter */
	int done;                /* multipart: close delimiter seen */
	/* message/rfc822 part: the embedded message's header fields */
	char *msg_id;
	char *parent_id;         /* its X-MS-Exchange-Parent-Message-Id */
	enum journal_kind in_kind;
	char *in_type, *in_boundary;
};

struct jframe {
	int part;
	const char *boundary;
	size_t blen;
};

struct jreader {
	GMimeStream *s;
	unsigned char *buf;
	size_t pos, len;
	int64_t off;             /* stream position of buf[pos] */
	int eof;
};

struct orig_ent {
	struct journal_original pub;
	char *msg_id;
};

struct journal {
	enum journal_kind kind;
	unsigned flags;
	journal_envelope_t *env;
	char **gm_to;
	size_t ngm, capgm;
	struct orig_ent *orig;
	size_t norig;
};

/* Parse state.  Every GMime object created while parsing is a local of
 * one helper and released before it returns. */
struct jctx {
	struct journal_opts o;
	journal_t *j;
	GMimeStream *in;
	struct jreader r;
	struct jpart *parts;
	size_t nparts, capparts;
	struct jframe *frames;
	size_t nframes;
	GString *hdr;
	int hdr_over;
	enum journal_kind top_kind;
	char *top_parent_id;
	int ndr_root;            /* rfc822 part holding the report, or -1 */
	int nomem;
};

/* --- small helpers ------------------------------------------------------ */

static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	    s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static char *xstrdup(struct jctx *c, const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		c->nomem = 1;
	return d;
}

static void set_str(struct jctx *c, char **dst, const char *s)
{
	if (*dst == NULL)
		*dst = xstrdup(c, s);
}

static int is_identity(GMimeContentEncoding e)
{
	return e != GMIME_CONTENT_ENCODING_BASE64 &&
	    e != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
	    e != GMIME_CONTENT_ENCODING_UUENCODE;
}

/* Message-IDs compared without angle brackets, comments or folding. */
static int same_msgid(const char *a, const char *b)
{
	char *da, *db;
	int eq;

	if (a == NULL || b == NULL)
		return 0;
	da = g_mime_utils_decode_message_id(a);
	db = g_mime_utils_decode_message_id(b);
	eq = da != NULL && db != NULL && *da != '\0' && strcmp(da, db) == 0;
	g_free(da);
	g_free(db);
	return eq;
}

/* --- line reader -------------------------------------------------------- */

/* g_mime_stream_read() that gives 0 at the end of a bounded stream (a
 * GMimeStreamFs past bound_end fails instead). */
static ssize_t jread(GMimeStream *s, unsigned char *buf, size_t len)
{
	if (g_mime_stream_eos(s))
		return 0;
	return g_mime_stream_read(s, (char *)buf, len);
}

/* Next line including its LF, or a JCHUNK piece of a longer line.
 * 1 line, 0 end of stream, AR_EIO. */
static int jr_line(struct jreader *r, const unsigned char **line, size_t *n)
{
	for (;;) {
		size_t avail = r->len - r->pos;
		unsigned char *lf = memchr(r->buf + r->pos, '\n', avail);
		ssize_t got;

		if (lf != NULL || avail == JCHUNK || (r->eof && avail > 0)) {
			size_t take = lf ? (size_t)(lf - (r->buf + r->pos)) + 1
			    : avail;
			*line = r->buf + r->pos;
			*n = take;
			r->pos += take;
			r->off += (int64_t)take;
			return 1;
		}
		if (r->eof)
			return 0;
		memmove(r->buf, r->buf + r->pos, avail);
		r->len = avail;
		r->pos = 0;
		got = jread(r->s, r->buf + r->len, JCHUNK - r->len);
		if (got < 0)
			return AR_EIO;
		if (got == 0)
			r->eof = 1;
		r->len += (size_t)got;
	}
}

/* "--boundary" or "--boundary--", then only white space. */
static int is_delim(const unsigned char *l, size_t n, const struct jframe *f,
    int *close)
{
	size_t i;

	if (n < 2 + f->blen || l[0] != '-' || l[1] != '-' ||
	    memcmp(l + 2, f->boundary, f->blen) != 0)
		return 0;
	i = 2 + f->blen;
	*close = 0;
	if (n - i >= 2 && l[i] == '-' && l[i + 1] == '-') {
		*close = 1;
		i += 2;
	}
	for (; i < n; i++)
		if (l[i] != ' ' && l[i] != '\t' && l[i] != '\r' && l[i] != '\n')
			return 0;
	return 1;
}

/* A stream over part content [off, end), decoded when enc says so.  The
 * one returned reference releases everything. */
static GMimeStream *part_stream(GMimeStream *in, int64_t off, int64_t end,
    GMimeContentEncoding enc)
{
	GMimeStream *sub, *fs;
	GMimeFilter *f;

	sub = g_mime_stream_substream(in, off, end);
	if (sub == NULL || is_identity(enc))
		return sub;
	fs = g_mime_stream_filter_new(sub);
	g_object_unref(sub);
	f = g_mime_filter_basic_new(enc, FALSE);
	g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
	g_object_unref(f);
	return fs;
}

/* --- header blocks ------------------------------------------------------ */

typedef void (*hdr_fn)(struct jctx *c, const char *name, char *value,
    void *arg);

/* Unfold the header block in c->hdr and call fn for each field. */
static void hdr_each(struct jctx *c, hdr_fn fn, void *arg)
{
	GString *h = c->hdr;
	GString *field = g_string_new(NULL);
	size_t i = 0;

	while (i <= h->len) {
		size_t e = i;
		int cont;

		while (e < h->len && h->str[e] != '\n')
			e++;
		cont = i < h->len && (h->str[i] == ' ' || h->str[i] == '\t');
		if (!cont && field->len > 0) {
			char *colon = strchr(field->str, ':');
			if (colon != NULL) {
				*colon = '\0';
				fn(c, trim(field->str), trim(colon + 1), arg);
			}
			g_string_truncate(field, 0);
		}
		if (i < h->len) {
			size_t l = e - i;
			if (l > 0 && h->str[i + l - 1] == '\r')
				l--;
			g_string_append_len(field, h->str + i, (gssize)l);
		}
		i = e + 1;
	}
	g_string_free(field, TRUE);
}

static void parse_ctype(struct jctx *c, const char *value, char **type,
    char **boundary, char **charset)
{
	GMimeContentType *ct = g_mime_content_type_parse(NULL, value);
	char *mt;

	if (ct == NULL)
		return;
	mt = g_mime_content_type_get_mime_type(ct);
	if (mt != NULL && *type == NULL) {
		*type = g_ascii_strdown(mt, -1);
		if (*type == NULL)
			c->nomem = 1;
	}
	g_free(mt);
	set_str(c, boundary,
	    g_mime_content_type_get_parameter(ct, "boundary"));
	if (charset != NULL)
		set_str(c, charset,
		    g_mime_content_type_get_parameter(ct, "charset"));
	g_object_unref(ct);
}

static enum journal_kind report_marker(const char *name, const char *value,
    enum journal_kind k)
{
	if (!g_ascii_strcasecmp(name, "X-MS-Journal-Report") ||
	    !g_ascii_strcasecmp(name, "X-MS-Exchange-Organization-Journal-Report"))
		return JOURNAL_EXCHANGE;
	if (!g_ascii_strcasecmp(name, "Content-Identifier") &&
	    !g_ascii_strcasecmp(value, "exjournalreport") &&
	    k == JOURNAL_PLAIN)
		return JOURNAL_EXCHANGE2003;
	return k;
}

static void add_gm_to(struct jctx *c, const char *addr)
{
	journal_t *j = c->j;

	if (*addr == '\0')
		return;
	if (ar_grow((void **)&j->gm_to, &j->capgm, j->ngm, sizeof(char *))) {
		c->nomem = 1;
		return;
	}
	if ((j->gm_to[j->ngm] = xstrdup(c, addr)) != NULL)
		j->ngm++;
}

static void gm_original_to(struct jctx *c, char *value)
{
	InternetAddressList *l = internet_address_list_parse(NULL, value);
	int i, n;

	if (l == NULL) {
		add_gm_to(c, value);
		return;
	}
	n = internet_address_list_length(l);
	for (i = 0; i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(l, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(a))
			add_gm_to(c, internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(a)));
	}
	g_object_unref(l);
}

/* Fields of a part's own header block (arg: the part). */
static void part_hdr(struct jctx *c, const char *name, char *value, void *arg)
{
	struct jpart *p = arg;

	if (!g_ascii_strcasecmp(name, "Content-Type"))
		parse_ctype(c, value, &p->type, &p->boundary, &p->charset);
	else if (!g_ascii_strcasecmp(name, "Content-Transfer-Encoding"))
		p->enc = g_mime_content_encoding_from_string(value);
	if (p->parent >= 0)
		return;
	/* the received message itself */
	c->top_kind = report_marker(name, value, c->top_kind);
	if (!g_ascii_strcasecmp(name, "X-MS-Exchange-Parent-Message-Id"))
		set_str(c, &c->top_parent_id, value);
	else if (!g_ascii_strcasecmp(name, "X-Gm-Original-To"))
		gm_original_to(c, value);
}

/* Fields of the message embedded in a message/rfc822 part. */
static void inner_hdr(struct jctx *c, const char *name, char *value,
    void *arg)
{
	struct jpart *p = arg;

	if (!g_ascii_strcasecmp(name, "Content-Type"))
		parse_ctype(c, value, &p->in_type, &p->in_boundary, NULL);
	else if (!g_ascii_strcasecmp(name, "Message-ID"))
		set_str(c, &p->msg_id, value);
	else if (!g_ascii_strcasecmp(name, "X-MS-Exchange-Parent-Message-Id"))
		set_str(c, &p->parent_id, value);
	p->in_kind = report_marker(name, value, p->in_kind);
}

/* --- the structure scan ------------------------------------------------- */

static int new_part(struct jctx *c, int parent)
{
	struct jpart *p;

	if (c->nparts >= c->o.max_parts + 1u) {
		c->j->flags |= JOURNAL_F_TOO_MANY_PARTS;
		return -1;
	}
	if (ar_grow((void **)&c->parts, &c->capparts, c->nparts,
	    sizeof(*c->parts))) {
		c->nomem = 1;
		return -1;
	}
	p = &c->parts[c->nparts];
	memset(p, 0, sizeof(*p));
	p->parent = parent;
	p->enc = GMIME_CONTENT_ENCODING_DEFAULT;
	p->end_off = -1;
	return (int)c->nparts++;
}

static int push_frame(struct jctx *c, int part, const char *boundary)
{
	if (boundary == NULL || *boundary == '\0') {
		c->j->flags |= JOURNAL_F_MALFORMED;
		return 0;
	}
	if (c->nframes >= c->o.max_depth) {
		c->j->flags |= JOURNAL_F_DEPTH;
		return 0;
	}
	c->frames[c->nframes].part = part;
	c->frames[c->nframes].boundary = boundary;
	c->frames[c->nframes].blen = strlen(boundary);
	c->nframes++;
	return 1;
}

enum { ST_HDR, ST_INHDR, ST_BODY, ST_STOP };

/* A header block ended: returns the next state. */
static int headers_done(struct jctx *c, int cur, int state, int64_t body)
{
	struct jpart *p = &c->parts[cur];

	if (c->hdr_over) {
		c->j->flags |= JOURNAL_F_HEADER_SIZE;
		return cur == 0 ? ST_STOP : ST_BODY;
	}
	if (state == ST_INHDR) {
		hdr_each(c, inner_hdr, p);
		if (p->in_kind != JOURNAL_PLAIN && c->top_kind == JOURNAL_PLAIN &&
		    c->ndr_root < 0 && p->in_type != NULL &&
		    !strncmp(p->in_type, "multipart/", 10) &&
		    push_frame(c, cur, p->in_boundary))
			c->ndr_root = cur;
		return ST_BODY;
	}
	hdr_each(c, part_hdr, p);
	p->body_off = body;
	if (p->type == NULL) {
		const struct jpart *up = p->parent >= 0 ?
		    &c->parts[p->parent] : NULL;
		int digest = up != NULL && up->type != NULL &&
		    !strcmp(up->type, "multipart/digest");
		p->type = xstrdup(c, digest ? "message/rfc822" : "text/plain");
		if (p->type == NULL)
			return ST_STOP;
	}
	if (cur == 0 && c->top_kind == JOURNAL_PLAIN &&
	    strcmp(p->type, "multipart/report") != 0)
		return ST_STOP;         /* a plain copy: nothing to unwrap */
	if (!strncmp(p->type, "multipart/", 10))
		push_frame(c, cur, p->boundary);
	else if (!strcmp(p->type, "message/rfc822") && is_identity(p->enc))
		return ST_INHDR;
	return ST_BODY;
}

/* A delimiter of frame k at stream position loff. */
static int on_delim(struct jctx *c, size_t k, int close, int64_t loff,
    int prev_eol, int *cur)
{
	int m = c->frames[k].part;
	int64_t end = loff - prev_eol;
	int p;

	for (p = *cur; p >= 0 && p != m; p = c->parts[p].parent) {
		struct jpart *q = &c->parts[p];
		if (q->end_off < 0) {
			q->end_off = end > q->body_off ? end : q->body_off;
			q->closed = 1;
		}
	}
	c->nframes = k + 1;
	*cur = m;
	if (close) {
		c->parts[m].done = 1;
		c->nframes = k;
		return ST_BODY;
	}
	if ((p = new_part(c, m)) < 0)
		return ST_STOP;
	*cur = p;
	g_string_truncate(c->hdr, 0);
	c->hdr_over = 0;
	return ST_HDR;
}

static int scan(struct jctx *c)
{
	struct jreader *r = &c->r;
	const unsigned char *l;
	size_t n, k;
	int state = ST_HDR, cur, bol = 1, prev_eol = 0, rc = 0;

	if ((cur = new_part(c, -1)) < 0)
		return AR_ENOMEM;
	c->parts[0].body_off = r->off;
	while (state != ST_STOP && !c->nomem && (rc = jr_line(r, &l, &n)) == 1) {
		int64_t loff = r->off - (int64_t)n;
		int this_bol = bol, eol;

		bol = l[n - 1] == '\n';
		eol = !bol ? 0 : (n >= 2 && l[n - 2] == '\r') ? 2 : 1;
		if (this_bol && n >= 2 && l[0] == '-' && l[1] == '-') {
			int close = 0, hit = 0;
			for (k = c->nframes; k-- > 0; ) {
				if (is_delim(l, n, &c->frames[k], &close)) {
					hit = 1;
					break;
				}
			}
			if (hit) {
				if (state == ST_HDR || state == ST_INHDR) {
					state = headers_done(c, cur, state,
					    loff);
					if (state == ST_STOP)
						break;
				}
				state = on_delim(c, k, close, loff, prev_eol,
				    &cur);
				prev_eol = eol;
				continue;
			}
		}
		prev_eol = eol;
		if (state != ST_HDR && state != ST_INHDR)
			continue;
		if (this_bol && n == (size_t)eol) {
			state = headers_done(c, cur, state, r->off);
			g_string_truncate(c->hdr, 0);
			c->hdr_over = 0;
			continue;
		}
		if (c->hdr->len + n > c->o.max_header)
			c->hdr_over = 1;
		else
			g_string_append_len(c->hdr, (const char *)l,
			    (gssize)n);
	}
	if (c->nomem)
		return AR_ENOMEM;
	if (state != ST_STOP && rc < 0)
		return rc;
	if (state == ST_HDR || state == ST_INHDR)
		headers_done(c, cur, state, r->off);
	for (k = 0; k < c->nparts; k++)
		if (c->parts[k].end_off < 0)
			c->parts[k].end_off = r->off;
	return c->nomem ? AR_ENOMEM : 0;
}

/* --- after the scan ----------------------------------------------------- */

static int type_is(const struct jpart *p, const char *type)
{
	return p->type != NULL && !strcmp(p->type, type);
}

/* p is inside the report whose entity is root. */
static int under(const struct jctx *c, int p, int root)
{
	if (p == root)
		return 0;
	for (p = c->parts[p].parent; p >= 0; p = c->parts[p].parent)
		if (p == root)
			return 1;
	return 0;
}

/* Header fields of a base64/QP-encoded message/rfc822 part. */
static int encoded_msg_headers(struct jctx *c, struct jpart *p)
{
	struct jreader r = { .buf = c->r.buf };
	const unsigned char *l;
	size_t n;
	int rc;

	r.s = part_stream(c->in, p->body_off, p->end_off, p->enc);
	if (r.s == NULL)
		return AR_ENOMEM;
	g_string_truncate(c->hdr, 0);
	while ((rc = jr_line(&r, &l, &n)) == 1) {
		if (n == 1 || (n == 2 && l[0] == '\r'))
			break;
		if (c->hdr->len + n > c->o.max_header) {
			c->j->flags |= JOURNAL_F_HEADER_SIZE;
			break;
		}
		g_string_append_len(c->hdr, (const char *)l, (gssize)n);
	}
	g_object_unref(r.s);
	if (rc < 0)
		return rc;
	hdr_each(c, inner_hdr, p);
	return c->nomem ? AR_ENOMEM : 0;
}

/* Decode the envelope part to UTF-8 and parse its lines. */
static int read_envelope(struct jctx *c, const struct jpart *p)
{
	GMimeStream *s = part_stream(c->in, p->body_off, p->end_off, p->enc);
	GByteArray *raw = g_byte_array_new();
	const char *cs = p->charset ? p->charset : "us-ascii";
	char *text = NULL;
	gsize tlen = 0, i, k, ascii = 1;
	ssize_t got = 0;
	int rc = 0;

	while (s != NULL && (got = jread(s, c->r.buf, JCHUNK)) > 0) {
		if (raw->len + (size_t)got > c->o.max_envelope) {
			c->j->flags |= JOURNAL_F_ENVELOPE_SIZE;
			break;
		}
		g_byte_array_append(raw, c->r.buf, (guint)got);
	}
	if (s == NULL)
		rc = AR_ENOMEM;
	else if (got < 0)
		rc = AR_EIO;
	if (s != NULL)
		g_object_unref(s);
	for (i = k = 0; i < raw->len; i++) {   /* drop NUL bytes */
		if (raw->data[i] == 0)
			continue;
		ascii &= raw->data[i] < 0x80;
		raw->data[k++] = raw->data[i];
	}
	if (rc == 0 && !(c->j->flags & JOURNAL_F_ENVELOPE_SIZE)) {
		const char *d = (const char *)raw->data;
		if (ascii || (!g_ascii_strcasecmp(cs, "utf-8") &&
		    g_utf8_validate_len(d, k, NULL)))
			text = g_strndup(d, k);
		else
			text = g_convert(d, (gssize)k, "UTF-8",
			    g_mime_charset_iconv_name(cs), NULL, &tlen, NULL);
		if (text == NULL) {
			c->j->flags |= JOURNAL_F_CHARSET;
			text = g_mime_utils_decode_8bit(NULL, d, k);
		}
		rc = journal_envelope_parse(text, strlen(text), &c->j->env);
		g_free(text);
	}
	g_byte_array_unref(raw);
	return rc;
}

static void drop_originals(journal_t *j)
{
	size_t i;

	for (i = 0; i < j->norig; i++)
		free(j->orig[i].msg_id);
	free(j->orig);
	j->orig = NULL;
	j->norig = 0;
}

static int add_original(struct jctx *c, const struct jpart *p, int linked)
{
	struct orig_ent *o = &c->j->orig[c->j->norig];

	memset(o, 0, sizeof(*o));
	o->pub.encoding =
	    p->enc == GMIME_CONTENT_ENCODING_BASE64 ? JOURNAL_ENC_BASE64 :
	    p->enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ? JOURNAL_ENC_QP :
	    p->enc == GMIME_CONTENT_ENCODING_UUENCODE ? JOURNAL_ENC_UUENCODE :
	    JOURNAL_ENC_NONE;
	o->pub.offset = p->body_off;
	o->pub.length = p->end_off - p->body_off;
	o->pub.linked = linked;
	if (p->msg_id != NULL && (o->msg_id = strdup(p->msg_id)) == NULL)
		return AR_ENOMEM;
	o->pub.message_id = o->msg_id;
	c->j->norig++;
	return 0;
}

/* Decide the kind; find the envelope and the originals of a report. */
static int classify(struct jctx *c)
{
	journal_t *j = c->j;
	int root = 0, env = -1, prim = -1, rc = 0;
	size_t i, nmsg = 0;
	const char *parent_id;

	if (c->o.plain_only)
		return 0;
	if (c->top_kind != JOURNAL_PLAIN) {
		j->kind = c->top_kind;
	} else if (c->ndr_root >= 0) {
		j->kind = JOURNAL_NDR_EXCHANGE;
		root = c->ndr_root;
	} else {
		return 0;
	}
	for (i = 1; i < c->nparts; i++) {
		const struct jpart *p = &c->parts[i];
		int msg = type_is(p, "message/rfc822");
		if (!under(c, (int)i, root) || (!msg && env >= 0) ||
		    (!msg && !type_is(p, "text/plain")))
			continue;
		if (!p->closed)
			j->flags |= JOURNAL_F_TRUNCATED;
		if (msg)
			nmsg++;
		else
			env = (int)i;
	}
	if (!c->parts[root].done)     /* a part may be missing */
		j->flags |= JOURNAL_F_TRUNCATED;
	if (env < 0)
		j->flags |= JOURNAL_F_NO_ENVELOPE;
	if (nmsg == 0)
		j->flags |= JOURNAL_F_NO_ORIGINAL;
	if (j->flags & JOURNAL_F_FALLBACK)
		goto plain;
	parent_id = root == 0 ? c->top_parent_id : c->parts[root].parent_id;
	for (i = 1; i < c->nparts && rc == 0; i++) {
		struct jpart *p = &c->parts[i];
		if (!under(c, (int)i, root) || !type_is(p, "message/rfc822"))
			continue;
		if (!is_identity(p->enc))
			rc = encoded_msg_headers(c, p);
		if (prim < 0 && (parent_id == NULL || *parent_id == '\0' ||
		    same_msgid(parent_id, p->msg_id)))
			prim = (int)i;
	}
	if (rc != 0)
		return rc;
	if (prim < 0) {
		j->flags |= JOURNAL_F_PARENT_MISMATCH;
		for (prim = 1; !under(c, prim, root) ||
		    !type_is(&c->parts[prim], "message/rfc822"); prim++)
			;
	}
	if (nmsg > 2)
		j->flags |= JOURNAL_F_EXTRA_ORIGINALS;
	if ((j->orig = calloc(nmsg, sizeof(*j->orig))) == NULL)
		return AR_ENOMEM;
	rc = add_original(c, &c->parts[prim], 0);
	for (i = 1; i < c->nparts && rc == 0; i++)
		if ((int)i != prim && under(c, (int)i, root) &&
		    type_is(&c->parts[i], "message/rfc822"))
			rc = add_original(c, &c->parts[i], 1);
	if (rc == 0)
		rc = read_envelope(c, &c->parts[env]);
	if (rc != 0 || !(j->flags & JOURNAL_F_FALLBACK))
		return rc;
plain:
	j->kind = JOURNAL_PLAIN;
	journal_envelope_free(j->env);
	j->env = NULL;
	drop_originals(j);
	return 0;
}

/* --- API ---------------------------------------------------------------- */

int journal_parse(GMimeStream *in, const struct journal_opts *opts,
    journal_t **out)
{
	struct jctx c;
	size_t i;
	int rc = AR_ENOMEM;

	if (in == NULL || out == NULL)
		return AR_EINVAL;
	*out = NULL;
	memset(&c, 0, sizeof(c));
	if (opts != NULL)
		c.o = *opts;
	else
		journal_opts_default(&c.o);
	if (c.o.max_depth > 100000)
		c.o.max_depth = 100000;
	c.in = in;
	c.ndr_root = -1;
	c.r.s = in;
	if ((c.r.off = g_mime_stream_tell(in)) < 0)
		return AR_EINVAL;
	c.j = calloc(1, sizeof(*c.j));
	c.r.buf = malloc(JCHUNK);
	c.frames = calloc(c.o.max_depth + 1u, sizeof(*c.frames));
	c.hdr = g_string_new(NULL);
	if (c.j != NULL && c.r.buf != NULL && c.frames != NULL) {
		rc = scan(&c);
		if (rc == 0)
			rc = classify(&c);
	}
	for (i = 0; i < c.nparts; i++) {
		struct jpart *p = &c.parts[i];
		g_free(p->type);
		free(p->boundary);
		free(p->charset);
		free(p->msg_id);
		free(p->parent_id);
		g_free(p->in_type);
		free(p->in_boundary);
	}
	free(c.parts);
	free(c.frames);
	free(c.r.buf);
	free(c.top_parent_id);
	g_string_free(c.hdr, TRUE);
	if (rc != 0) {
		journal_free(c.j);
		return rc;
	}
	*out = c.j;
	return 0;
}

void journal_free(journal_t *j)
{
	size_t i;

	if (j == NULL)
		return;
	journal_envelope_free(j->env);
	drop_originals(j);
	for (i = 0; i < j->ngm; i++)
		free(j->gm_to[i]);
	free(j->gm_to);
	free(j);
}

enum journal_kind journal_kind(const journal_t *j) { return j->kind; }
unsigned journal_flags(const journal_t *j) { return j->flags; }
const journal_envelope_t *journal_envelope(const journal_t *j)
{ return j->env; }
size_t journal_gm_original_to_count(const journal_t *j) { return j->ngm; }
const char *journal_gm_original_to(const journal_t *j, size_t i)
{ return i < j->ngm ? j->gm_to[i] : NULL; }
size_t journal_original_count(const journal_t *j) { return j->norig; }
const struct journal_original *journal_original(const journal_t *j,
    size_t i)
{ return i < j->norig ? &j->orig[i].pub : NULL; }
