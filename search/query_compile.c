/*
 * query_compile.c - AST -> FTS5 MATCH expression + SQL condition.
 *
 * Every term becomes a quoted FTS5 string "<marker>:<text>" (quotes
 * doubled, control bytes already blanked by the parser), so no query text
 * is ever FTS5 or SQL syntax; SQL values are bound parameters.
 *
 * The parser guarantees that every term yields at least one token (a term
 * that would not is refused, or dropped from its AND group); compiling
 * checks it again, so that no term is ever silently left out.  The part
 * of a top-level AND that FTS5 can evaluate (terms, phrases, NEAR, OR of
 * those, and negations of those next to at least one positive) becomes
 * the MATCH; everything else (filters, negation alone, OR mixing filters
 * and words) becomes SQL on the msg table, with sub-selects
 * "m.rowid IN (SELECT rowid FROM fts WHERE fts MATCH ?)" where needed.
 */
#include "search/search_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ar.h"

/* ---- sbuf ---------------------------------------------------------------- */

void sb_add(sbuf_t *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 128;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void sb_puts(sbuf_t *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

void sb_printf(sbuf_t *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ---- compile -------------------------------------------------------------- */

typedef struct cc {
	const char *text;
	int prefix_min;
	qc_out_t *out;
	char *err;
	size_t errlen;
	int rc;
} cc_t;

static const char *const colspec[] = {
	[QF_ANY] = "",
	[QF_FROM] = "from_addr : ",
	[QF_TO] = "to_addr : ",
	[QF_CC] = "cc_addr : ",
	[QF_BCC] = "bcc_addr : ",
	[QF_PARTICIPANT] = "{from_addr to_addr cc_addr bcc_addr} : ",
	[QF_SUBJECT] = "subject : ",
	[QF_BODY] = "body : ",
	[QF_FILENAME] = "filename : ",
};

static int is_addr_field(int f)
{
	return f == QF_FROM || f == QF_TO || f == QF_CC || f == QF_BCC ||
	    f == QF_PARTICIPANT;
}

int q_term_addr(const qnode_t *t)
{
	return is_addr_field(t->field) && t->kind != QK_PHRASE &&
	    strchr(t->text, '@') != NULL;
}

/* marker of a term, 0 when it yields no token */
char q_term_mode(const qnode_t *t)
{
	if (q_term_addr(t)) {
		char buf[QC_ADDR_MAX];
		int n = nz_fold(t->text, strlen(t->text), buf, sizeof buf);
		if (n < 2)
			return 0;
		if (buf[0] == '@')
			return TK_M_DOMAIN;
		if (buf[n - 1] == '@')
			return TK_M_LOCAL;
		return TK_M_ADDR;
	}
	nz_iter_t it;
	nz_word_t w;
	nz_iter_init(&it, t->text, strlen(t->text));
	if (!nz_next(&it, &w))
		return 0;
	return t->kind == QK_PHRASE ? TK_M_EXACT :
	    t->kind == QK_PREFIX ? TK_M_PREFIX : TK_M_WORD;
}

/* The first term of n that yields no token, or NULL. */
static const qnode_t *tokenless(const qnode_t *n)
{
	if (n->type == QN_TERM)
		return q_term_mode(n) ? NULL : n;
	for (size_t i = 0; i < n->nkids; i++) {
		const qnode_t *t = tokenless(n->kids[i]);
		if (t)
			return t;
	}
	return NULL;
}

/* the only kid of an AND/OR/NEAR, or NULL if several */
static const qnode_t *only_kid(const qnode_t *n)
{
	return n->nkids == 1 ? n->kids[0] : NULL;
}

static int fts_pos(const qnode_t *n);

static int fts_neg(const qnode_t *n)
{
	return n->type == QN_NOT && fts_pos(n->kids[0]);
}

static int fts_pos(const qnode_t *n)
{
	const qnode_t *k;
	int pos = 0;
	switch (n->type) {
	case QN_TERM: case QN_NEAR:
		return 1;
	case QN_OR:
		for (size_t i = 0; i < n->nkids; i++)
			if (!fts_pos(n->kids[i]))
				return 0;
		return 1;
	case QN_AND:
		if ((k = only_kid(n)) != NULL)
			return fts_pos(k);
		for (size_t i = 0; i < n->nkids; i++) {
			k = n->kids[i];
			if (fts_pos(k))
				pos = 1;
			else if (!fts_neg(k))
				return 0;
		}
		return pos;
	default:
		return 0;
	}
}

static void fts_term(cc_t *c, sbuf_t *b, const qnode_t *t, int in_near)
{
	char mode = q_term_mode(t);
	if (mode == TK_M_PREFIX) {
		nz_iter_t it;
		nz_word_t w, last = { 0 };
		nz_iter_init(&it, t->text, strlen(t->text));
		while (nz_next(&it, &w))
			last = w;
		if (!last.cjk && last.ncp < c->prefix_min && c->rc == 0) {
			q_error(c->err, c->errlen, c->text, t->pos,
			    "a prefix needs at least %d characters before '*'",
			    c->prefix_min);
			c->rc = AR_ESYNTAX;
		}
	}
	if (!in_near)
		sb_puts(b, colspec[t->field]);
	sb_add(b, "\"", 1);
	sb_add(b, &mode, 1);
	sb_add(b, ":", 1);
	for (const char *p = t->text; *p; p++) {
		sb_add(b, p, 1);
		if (*p == '"')
			sb_add(b, "\"", 1);
	}
	sb_add(b, "\"", 1);
}

static void fts_expr(cc_t *c, sbuf_t *b, const qnode_t *n);

/* AND of the FTS-able kids of n (positives, then NOT of the negatives) */
static void fts_and(cc_t *c, sbuf_t *b, const qnode_t *n)
{
	int np = 0, nn = 0;
	sb_puts(b, "(");
	for (size_t i = 0; i < n->nkids; i++) {
		const qnode_t *k = n->kids[i];
		if (!fts_pos(k))
			continue;
		if (np++)
			sb_puts(b, " AND ");
		fts_expr(c, b, k);
	}
	for (size_t i = 0; i < n->nkids; i++) {
		const qnode_t *k = n->kids[i];
		if (!fts_neg(k))
			continue;
		sb_puts(b, nn++ ? " OR " : " NOT (");
		fts_expr(c, b, k->kids[0]);
	}
	if (nn)
		sb_puts(b, ")");
	sb_puts(b, ")");
}

static void fts_expr(cc_t *c, sbuf_t *b, const qnode_t *n)
{
	const qnode_t *k;
	int i0 = 0;
	switch (n->type) {
	case QN_TERM:
		fts_term(c, b, n, 0);
		return;
	case QN_NEAR:
		if ((k = only_kid(n)) != NULL) {
			fts_term(c, b, k, 0);
			return;
		}
		sb_puts(b, "NEAR(");
		for (size_t i = 0; i < n->nkids; i++) {
			if (i0++)
				sb_puts(b, " ");
			fts_term(c, b, n->kids[i], 1);
		}
		sb_printf(b, ", %d)", n->distance);
		return;
	case QN_OR:
		if ((k = only_kid(n)) != NULL) {
			fts_expr(c, b, k);
			return;
		}
		sb_puts(b, "(");
		for (size_t i = 0; i < n->nkids; i++) {
			if (i0++)
				sb_puts(b, " OR ");
			fts_expr(c, b, n->kids[i]);
		}
		sb_puts(b, ")");
		return;
	case QN_AND:
		if ((k = only_kid(n)) != NULL)
			fts_expr(c, b, k);
		else
			fts_and(c, b, n);
		return;
	default:
		ar_panic("fts_expr: node type %d is not FTS", n->type);
	}
}

static void param_int(cc_t *c, int64_t v)
{
	qc_out_t *o = c->out;
	qc_param_t *p = realloc(o->params, (o->nparams + 1) * sizeof *p);
	if (!p) {
		c->rc = AR_ENOMEM;
		return;
	}
	o->params = p;
	p[o->nparams++] = (qc_param_t){ 0, v, NULL };
}

static void param_text(cc_t *c, sbuf_t *fts)
{
	qc_out_t *o = c->out;
	qc_param_t *p = realloc(o->params, (o->nparams + 1) * sizeof *p);
	if (!p || fts->oom) {
		free(fts->p);
		c->rc = AR_ENOMEM;
		if (p)
			o->params = p;
		return;
	}
	o->params = p;
	p[o->nparams++] = (qc_param_t){ 1, 0, fts->p };
}

static void sql_expr(cc_t *c, sbuf_t *b, const qnode_t *n);

static void sql_match(cc_t *c, sbuf_t *b, const qnode_t *n, int and_part)
{
	sbuf_t f = { 0 };
	if (and_part)
		fts_and(c, &f, n);
	else
		fts_expr(c, &f, n);
	sb_puts(b, "m.rowid IN (SELECT rowid FROM fts WHERE fts MATCH ?)");
	param_text(c, &f);
}

static void sql_filter(cc_t *c, sbuf_t *b, const qnode_t *n)
{
	switch (n->filter) {
	case QX_AFTER:
		sb_puts(b, "m.date >= ?");
		param_int(c, n->value);
		break;
	case QX_BEFORE:
		sb_puts(b, "m.date < ?");
		param_int(c, n->value);
		break;
	case QX_ON:
		sb_puts(b, "(m.date >= ? AND m.date < ?)");
		param_int(c, n->value);
		param_int(c, n->value + 86400);
		break;
	case QX_LARGER:
		sb_puts(b, "m.size > ?");
		param_int(c, n->value);
		break;
	case QX_SMALLER:
		sb_puts(b, "m.size < ?");
		param_int(c, n->value);
		break;
	case QX_VERDICT:
		sb_printf(b, "((m.flags >> %d) & 15) = ?", MSG_VERDICT_SHIFT);
		param_int(c, n->value);
		break;
	case QX_QUARANTINED:
		sb_printf(b, "(m.flags & %u) %s 0", MSG_QUARANTINED,
		    n->value ? "!=" : "=");
		break;
	default:
		sb_puts(b, "m.has_att = 1");
		break;
	}
}

/* the kids of an AND that are not FTS-able (or all if none is positive) */
static int and_has_fts(const qnode_t *n)
{
	for (size_t i = 0; i < n->nkids; i++)
		if (fts_pos(n->kids[i]))
			return 1;
	return 0;
}

static void sql_and_rest(cc_t *c, sbuf_t *b, const qnode_t *n, int skip_fts,
    int *count)
{
	for (size_t i = 0; i < n->nkids; i++) {
		const qnode_t *k = n->kids[i];
		if (skip_fts && (fts_pos(k) || fts_neg(k)))
			continue;
		if ((*count)++)
			sb_puts(b, " AND ");
		sql_expr(c, b, k);
	}
}

static void sql_expr(cc_t *c, sbuf_t *b, const qnode_t *n)
{
	const qnode_t *k;
	int i0 = 0;
	if (fts_pos(n)) {
		sql_match(c, b, n, 0);
		return;
	}
	switch (n->type) {
	case QN_FILTER:
		sql_filter(c, b, n);
		return;
	case QN_NOT: {
		int odd = 1;             /* NOT NOT x is x: keeps SQL shallow */
		n = n->kids[0];
		while (n->type == QN_NOT) {
			odd = !odd;
			n = n->kids[0];
		}
		sb_puts(b, odd ? "NOT (" : "(");
		sql_expr(c, b, n);
		sb_puts(b, ")");
		return;
	}
	case QN_OR:
	case QN_AND:
		if ((k = only_kid(n)) != NULL) {
			sql_expr(c, b, k);
			return;
		}
		sb_puts(b, "(");
		if (n->type == QN_AND) {
			int fts = and_has_fts(n);
			if (fts) {
				sql_match(c, b, n, 1);
				i0 = 1;
			}
			sql_and_rest(c, b, n, fts, &i0);
		} else {
			for (size_t i = 0; i < n->nkids; i++) {
				if (i0++)
					sb_puts(b, " OR ");
				sql_expr(c, b, n->kids[i]);
			}
		}
		sb_puts(b, ")");
		return;
	default:
		ar_panic("sql_expr: unexpected node type %d", n->type);
	}
}

static int date_filter(const qnode_t *n)
{
	return n->type == QN_FILTER && (n->filter == QX_AFTER ||
	    n->filter == QX_BEFORE || n->filter == QX_ON);
}

/* Is every part of the AND that is not full text a date bound? */
static int and_dates_only(const qnode_t *n)
{
	for (size_t i = 0; i < n->nkids; i++) {
		const qnode_t *k = n->kids[i];
		if (!fts_pos(k) && !fts_neg(k) && !date_filter(k))
			return 0;
	}
	return 1;
}

static void date_range(qc_out_t *o, const qnode_t *n)
{
	if (n->type == QN_AND) {
		for (size_t i = 0; i < n->nkids; i++)
			date_range(o, n->kids[i]);
		return;
	}
	if (n->type != QN_FILTER)
		return;
	if ((n->filter == QX_AFTER || n->filter == QX_ON) &&
	    n->value > o->date_min)
		o->date_min = n->value;
	if (n->filter == QX_BEFORE && n->value < o->date_max)
		o->date_max = n->value;
	if (n->filter == QX_ON && n->value + 86400 < o->date_max)
		o->date_max = n->value + 86400;
}

int qc_compile(const search_query_t *q, int prefix_min, qc_out_t *out,
    char *errbuf, size_t errlen)
{
	cc_t c = { q->text, prefix_min, out, errbuf, errlen, 0 };
	sbuf_t w = { 0 };
	const qnode_t *n = q->root, *t;

	memset(out, 0, sizeof *out);
	out->date_min = INT64_MIN;
	out->date_max = INT64_MAX;
	if (n && (t = tokenless(n)) != NULL) {
		/* never "everything": the parser refuses such terms */
		q_error(errbuf, errlen, q->text, t->pos, "nothing to search for");
		return AR_ESYNTAX;
	}
	while (n && (n->type == QN_AND || n->type == QN_OR) && only_kid(n))
		n = only_kid(n);
	if (!n) {
		sb_puts(&w, "1");
	} else if (fts_pos(n)) {
		sbuf_t f = { 0 };
		fts_expr(&c, &f, n);
		out->match = f.p;
		if (f.oom)
			c.rc = AR_ENOMEM;
		sb_puts(&w, "1");
	} else if (n->type == QN_AND && and_has_fts(n)) {
		sbuf_t f = { 0 };
		int count = 0;
		fts_and(&c, &f, n);
		out->match = f.p;
		if (f.oom)
			c.rc = AR_ENOMEM;
		sql_and_rest(&c, &w, n, 1, &count);
		if (!count)
			sb_puts(&w, "1");
		out->where_dates = count && and_dates_only(n);
	} else {
		sql_expr(&c, &w, n);
	}
	if (n)
		date_range(out, n);
	out->where = w.p;
	if (w.oom && !c.rc)
		c.rc = AR_ENOMEM;
	if (c.rc)
		qc_free(out);
	return c.rc;
}

void qc_free(qc_out_t *out)
{
	free(out->match);
	free(out->where);
	for (size_t i = 0; i < out->nparams; i++)
		free(out->params[i].s);
	free(out->params);
	memset(out, 0, sizeof *out);
}

/* ---- dump ---------------------------------------------------------------- */

static const char *const field_names[] = { "any", "from", "to", "cc", "bcc",
	"participant", "subject", "body", "filename" };
static const char *const kind_names[] = { "word", "phrase", "prefix" };
static const char *const filter_names[] = { "after", "before", "on",
	"larger", "smaller", "has", "verdict", "quarantined" };

static void dump_node(sbuf_t *b, const qnode_t *n)
{
	char day[32];
	switch (n->type) {
	case QN_AND: case QN_OR: case QN_NOT: case QN_NEAR:
		sb_puts(b, n->type == QN_AND ? "(and" : n->type == QN_OR ?
		    "(or" : n->type == QN_NOT ? "(not" : "(near");
		if (n->type == QN_NEAR)
			sb_printf(b, " %d", n->distance);
		for (size_t i = 0; i < n->nkids; i++) {
			sb_puts(b, " ");
			dump_node(b, n->kids[i]);
		}
		sb_puts(b, ")");
		return;
	case QN_TERM:
		sb_printf(b, "(%s %s \"", kind_names[n->kind],
		    field_names[n->field]);
		sb_puts(b, n->text);
		sb_puts(b, "\")");
		return;
	default:
		if (n->filter <= QX_ON) {
			time_t t = (time_t)n->value;
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(day, sizeof day, "%Y-%m-%d", &tm);
			sb_printf(b, "(%s %s)", filter_names[n->filter], day);
		} else if (n->filter == QX_HAS_ATTACHMENT) {
			sb_puts(b, "(has attachment)");
		} else if (n->filter == QX_VERDICT) {
			sb_printf(b, "(verdict %s)",
			    search_verdict_name((int)n->value));
		} else if (n->filter == QX_QUARANTINED) {
			sb_printf(b, "(quarantined %s)", n->value ? "yes" : "no");
		} else {
			sb_printf(b, "(%s %lld)", filter_names[n->filter],
			    (long long)n->value);
		}
	}
}

int search_query_dump(const search_query_t *q, char **out)
{
	sbuf_t b = { 0 };
	qc_out_t o;
	char err[256];
	int rc;

	*out = NULL;
	sb_puts(&b, "ast: ");
	if (q->root)
		dump_node(&b, q->root);
	else
		sb_puts(&b, "(all)");
	rc = qc_compile(q, 3, &o, err, sizeof err);
	if (rc == AR_ESYNTAX) {
		sb_printf(&b, "\nerror: %s\n", err);
	} else if (rc == 0) {
		sb_puts(&b, "\nmatch: ");
		sb_puts(&b, o.match ? o.match : "(none)");
		sb_puts(&b, "\nwhere: ");
		sb_puts(&b, o.where);
		sb_puts(&b, "\nparams:");
		for (size_t i = 0; i < o.nparams; i++) {
			if (o.params[i].is_text) {
				sb_puts(&b, " '");
				sb_puts(&b, o.params[i].s);
				sb_puts(&b, "'");
			} else {
				sb_printf(&b, " %lld", (long long)o.params[i].i);
			}
		}
		sb_puts(&b, "\n");
		qc_free(&o);
	} else {
		free(b.p);
		return rc;
	}
	if (b.oom) {
		free(b.p);
		return AR_ENOMEM;
	}
	*out = b.p;
	return 0;
}
