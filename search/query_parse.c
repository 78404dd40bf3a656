/*
 * query_parse.c - the query language: text -> AST (grammar in
 * docs/query-language.md).
 *
 *   query    := [or_expr]
 *   or_expr  := and_expr ("OR" and_expr)*
 *   and_expr := unary (["AND"] unary)*
 *   unary    := ("-" | "NOT") unary | primary
 *   primary  := "(" or_expr ")" | NEAR "(" nterm nterm+ ["," N] ")"
 *             | field ":" value | "phrase" | word | word*
 *
 * Every syntax error names its position: "column C (byte B): ...".
 *
 * Every term of a parsed query gives the index something to look up: a
 * query is never silently widened.  Invalid UTF-8 is refused; so is a word
 * too long to be indexed (normalize.c skips it on both sides), and a term
 * with no word at all ("!!!", "%%", a lone U+202E) after a field name, in
 * quotes, before '*', in NEAR( ) or after '-'/NOT.  A bare term of
 * punctuation or symbols only is a separator, like a space: it is dropped
 * from its AND group, and refused when nothing else is left in the group
 * (the whole query, an OR branch, a ( ) group).  docs/query-language.md.
 */
#include "search/search_priv.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ar.h"

typedef struct parser {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errlen;
	int failed;
	int depth;
	int in_near;               /* parsing the terms of NEAR( ) */
} parser_t;

static const struct {
	const char *name;
	int field;                 /* enum q_field, or -1 for filters */
	int filter;
} fields[] = {
	{ "from", QF_FROM, 0 }, { "to", QF_TO, 0 }, { "cc", QF_CC, 0 },
	{ "bcc", QF_BCC, 0 }, { "participant", QF_PARTICIPANT, 0 },
	{ "subject", QF_SUBJECT, 0 }, { "body", QF_BODY, 0 },
	{ "filename", QF_FILENAME, 0 },
	{ "after", -1, QX_AFTER }, { "before", -1, QX_BEFORE },
	{ "on", -1, QX_ON }, { "larger", -1, QX_LARGER },
	{ "smaller", -1, QX_SMALLER }, { "has", -1, QX_HAS_ATTACHMENT },
	{ "verdict", -1, QX_VERDICT }, { "quarantined", -1, QX_QUARANTINED },
};

void q_error(char *errbuf, size_t errlen, const char *text, size_t pos,
    const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	if (!errbuf || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(errbuf, errlen, "column %d (byte %zu): %s",
	    nz_count_cp(text, pos) + 1, pos, msg);
}

static void fail(parser_t *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(parser_t *p, size_t pos, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	if (p->failed)
		return;
	p->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	q_error(p->err, p->errlen, p->s, pos, "%s", msg);
}

void qnode_free(qnode_t *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		qnode_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

static qnode_t *node(parser_t *p, int type, size_t pos)
{
	qnode_t *n = calloc(1, sizeof *n);
	if (!n)
		fail(p, pos, "out of memory");
	else {
		n->type = type;
		n->pos = pos;
	}
	return n;
}

static int add_kid(parser_t *p, qnode_t *n, qnode_t *kid)
{
	qnode_t **k = realloc(n->kids, (n->nkids + 1) * sizeof *k);
	if (!k) {
		qnode_free(kid);
		fail(p, n->pos, "out of memory");
		return -1;
	}
	n->kids = k;
	n->kids[n->nkids++] = kid;
	return 0;
}

static int is_delim(char c)
{
	return c == 0 || isspace((unsigned char)c) || c == '(' || c == ')' ||
	    c == '"';
}

static void skip_ws(parser_t *p)
{
	while (p->pos < p->len && isspace((unsigned char)p->s[p->pos]))
		p->pos++;
}

static char cur(const parser_t *p)
{
	return p->pos < p->len ? p->s[p->pos] : 0;
}

/* end of the word at pos (stops at ',' too when in_near) */
static size_t word_end(const parser_t *p, size_t pos, int in_near)
{
	while (pos < p->len && !is_delim(p->s[pos]) &&
	    !(in_near && p->s[pos] == ','))
		pos++;
	return pos;
}

static int keyword(const parser_t *p, const char *kw)
{
	size_t n = strlen(kw);
	return p->len - p->pos >= n && memcmp(p->s + p->pos, kw, n) == 0 &&
	    is_delim(p->pos + n < p->len ? p->s[p->pos + n] : 0);
}

static const char *field_name(int field)
{
	for (size_t i = 0; i < AR_ARRAY_LEN(fields); i++)
		if (fields[i].field == field)
			return fields[i].name;
	return "?";
}

#define NOT_INDEXED "(punctuation and symbols are not indexed)"

/*
 * Does the term's text (at byte tpos of the query) give the index
 * something to look up?  0 when it does, or when it is a bare word of
 * punctuation or symbols only (marked noword for and_expr); -1 (failed)
 * for a word or an address too long to be indexed, and for any other
 * term without a word.
 */
static int term_check(parser_t *p, qnode_t *q, size_t tpos)
{
	size_t n = strlen(q->text);
	size_t at = q->kind == QK_PHRASE ? tpos - 1 : tpos;
	nz_iter_t it;
	nz_word_t w;
	int words = 0;

	nz_iter_init(&it, q->text, n);
	while (nz_next(&it, &w))
		words++;
	if (q_term_addr(q)) {
		char buf[QC_ADDR_MAX];
		if (nz_fold(q->text, n, buf, sizeof buf) < 0) {
			fail(p, tpos, "an address longer than %d bytes is not "
			    "indexed as an address", QC_ADDR_MAX - 1);
			return -1;
		}
		words += it.nlong;     /* the address is one token */
	} else if (it.nlong) {
		fail(p, tpos + it.long_off, "a word longer than %d bytes is "
		    "not indexed: it cannot be searched", NZ_WORD_MAX - 1);
		return -1;
	}
	if (words)
		return 0;
	if (p->in_near)
		fail(p, at, "nothing to search for in this NEAR term "
		    NOT_INDEXED);
	else if (q->field != QF_ANY)
		fail(p, at, "nothing to search for after '%s:' " NOT_INDEXED,
		    field_name(q->field));
	else if (q->kind == QK_PHRASE)
		fail(p, at, "nothing to search for in the phrase " NOT_INDEXED);
	else if (q->kind == QK_PREFIX)
		fail(p, at, "nothing to search for before '*' " NOT_INDEXED);
	else {
		q->noword = 1;
		return 0;
	}
	return -1;
}

/* term text t[0..n) at byte tpos = t - p->s of the query */
static qnode_t *term(parser_t *p, size_t pos, const char *t, size_t n,
    int field, int kind)
{
	qnode_t *q = node(p, QN_TERM, pos);
	if (!q)
		return NULL;
	q->field = field;
	q->kind = kind;
	q->text = strndup(t, n);
	if (!q->text) {
		free(q);
		fail(p, pos, "out of memory");
		return NULL;
	}
	for (char *c = q->text; *c; c++)   /* control bytes are separators */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	if (term_check(p, q, (size_t)(t - p->s)) < 0) {
		qnode_free(q);
		return NULL;
	}
	return q;
}

/* "phrase" at p->pos */
static qnode_t *quoted(parser_t *p, int field)
{
	size_t start = p->pos;
	const char *end = memchr(p->s + start + 1, '"', p->len - start - 1);
	if (!end) {
		fail(p, p->len, "expected '\"' to close the phrase opened at "
		    "column %d", nz_count_cp(p->s, start) + 1);
		return NULL;
	}
	size_t e = (size_t)(end - p->s);
	p->pos = e + 1;
	return term(p, start, p->s + start + 1, e - start - 1, field,
	    QK_PHRASE);
}

/* plain word [pos, e) with an optional trailing '*' */
static qnode_t *word(parser_t *p, size_t pos, size_t e, int field)
{
	int kind = QK_WORD;
	size_t n = e - pos;
	while (n > 0 && p->s[pos + n - 1] == '*') {
		n--;
		kind = QK_PREFIX;
	}
	return term(p, pos, p->s + pos, n, field, kind);
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int parse_date(const char *v, size_t n, int64_t *out)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };
	char sep;
	if (n != 10 || (v[4] != '-' && v[4] != '/') || v[7] != v[4])
		return -1;
	sep = v[4];
	(void)sep;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)v[i]))
			return -1;
	int y = atoi(v), m = atoi(v + 5), d = atoi(v + 8);
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return -1;
	if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	*out = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400;
	return 0;
}

static int parse_size(const char *v, size_t n, int64_t *out)
{
	size_t i = 0;
	int64_t x = 0;
	while (i < n && isdigit((unsigned char)v[i])) {
		if (i >= 15)
			return -1;
		x = x * 10 + (v[i] - '0');
		i++;
	}
	if (i == 0)
		return -1;
	int64_t mul = 1;
	if (i < n) {
		switch (toupper((unsigned char)v[i])) {
		case 'K': mul = 1024; break;
		case 'M': mul = 1024 * 1024; break;
		case 'G': mul = 1024LL * 1024 * 1024; break;
		case 'B': mul = 1; i--; break;
		default: return -1;
		}
		i++;
		if (i < n && toupper((unsigned char)v[i]) == 'B')
			i++;
	}
	if (i != n)
		return -1;
	*out = x * mul;
	return 0;
}

static qnode_t *filter(parser_t *p, size_t pos, int f, const char *name,
    size_t vpos, size_t vend)
{
	const char *v = p->s + vpos;
	size_t n = vend - vpos;
	qnode_t *q;
	int64_t val = 0;

	switch (f) {
	case QX_AFTER: case QX_BEFORE: case QX_ON:
		if (parse_date(v, n, &val) < 0) {
			fail(p, vpos, "expected a date YYYY-MM-DD after '%s:'",
			    name);
			return NULL;
		}
		break;
	case QX_LARGER: case QX_SMALLER:
		if (parse_size(v, n, &val) < 0) {
			fail(p, vpos, "expected a size (e.g. 500K, 10M) after "
			    "'%s:'", name);
			return NULL;
		}
		break;
	case QX_VERDICT:
		if ((val = search_verdict_parse(v, n)) < 0) {
			fail(p, vpos, "expected clean, spam, virus, policy, "
			    "unscanned or none after 'verdict:'");
			return NULL;
		}
		break;
	case QX_QUARANTINED:
		if (n == 3 && strncasecmp(v, "yes", 3) == 0)
			val = 1;
		else if (n == 2 && strncasecmp(v, "no", 2) == 0)
			val = 0;
		else {
			fail(p, vpos, "expected yes or no after 'quarantined:'");
			return NULL;
		}
		break;
	default:
		if (n != 10 || strncasecmp(v, "attachment", 10) != 0) {
			fail(p, vpos, "expected 'attachment' after 'has:'");
			return NULL;
		}
		break;
	}
	q = node(p, QN_FILTER, pos);
	if (q) {
		q->filter = f;
		q->value = val;
	}
	return q;
}

static qnode_t *or_expr(parser_t *p);

static qnode_t *near(parser_t *p, size_t pos)
{
	qnode_t *q = node(p, QN_NEAR, pos);
	if (!q)
		return NULL;
	q->distance = 10;
	p->pos++;                          /* '(' */
	p->in_near = 1;
	for (;;) {
		skip_ws(p);
		char c = cur(p);
		qnode_t *t;
		if (c == '"') {
			t = quoted(p, QF_ANY);
		} else if (c == 0 || c == ')' || c == ',' || c == '(') {
			break;
		} else {
			size_t s = p->pos, e = word_end(p, s, 1);
			p->pos = e;
			t = word(p, s, e, QF_ANY);
		}
		if (!t || add_kid(p, q, t) < 0) {
			p->in_near = 0;
			qnode_free(q);
			return NULL;
		}
	}
	p->in_near = 0;
	if (q->nkids < 2) {
		fail(p, p->pos, "expected at least two terms in NEAR( )");
		qnode_free(q);
		return NULL;
	}
	if (cur(p) == ',') {
		p->pos++;
		skip_ws(p);
		size_t s = p->pos;
		long d = 0;
		while (isdigit((unsigned char)cur(p)) && d <= 1000) {
			d = d * 10 + (cur(p) - '0');
			p->pos++;
		}
		if (p->pos == s || d > 1000) {
			fail(p, s, "expected a distance 0..1000 after ',' in NEAR");
			qnode_free(q);
			return NULL;
		}
		q->distance = (int)d;
		skip_ws(p);
	}
	if (cur(p) != ')') {
		fail(p, p->pos, "expected ')' after NEAR terms");
		qnode_free(q);
		return NULL;
	}
	p->pos++;
	return q;
}

static qnode_t *primary(parser_t *p)
{
	size_t pos = p->pos;
	char c = cur(p);

	if (c == '(') {
		p->pos++;
		skip_ws(p);
		if (cur(p) == ')' || cur(p) == 0) {
			fail(p, p->pos, "expected a term after '('");
			return NULL;
		}
		qnode_t *q = or_expr(p);
		if (!q)
			return NULL;
		skip_ws(p);
		if (cur(p) != ')') {
			fail(p, p->pos, "expected ')' to close the '(' at column %d",
			    nz_count_cp(p->s, pos) + 1);
			qnode_free(q);
			return NULL;
		}
		p->pos++;
		return q;
	}
	if (c == ')') {
		fail(p, pos, "unexpected ')'");
		return NULL;
	}
	if (c == '"')
		return quoted(p, QF_ANY);
	if (keyword(p, "NEAR")) {
		size_t save = p->pos;
		p->pos += 4;
		skip_ws(p);
		if (cur(p) == '(')
			return near(p, pos);
		p->pos = save;
	}
	size_t e = word_end(p, pos, 0);
	const char *colon = memchr(p->s + pos, ':', e - pos);
	if (colon) {
		size_t flen = (size_t)(colon - (p->s + pos));
		for (size_t i = 0; i < AR_ARRAY_LEN(fields); i++) {
			if (strlen(fields[i].name) != flen ||
			    strncasecmp(fields[i].name, p->s + pos, flen) != 0)
				continue;
			size_t v = pos + flen + 1;
			if (fields[i].field >= 0 && v == e && v < p->len &&
			    p->s[v] == '"') {
				p->pos = v;
				return quoted(p, fields[i].field);
			}
			if (v == e) {
				fail(p, v, "expected a value after '%s:'",
				    fields[i].name);
				return NULL;
			}
			p->pos = e;
			if (fields[i].field < 0)
				return filter(p, pos, fields[i].filter,
				    fields[i].name, v, e);
			qnode_t *q = word(p, v, e, fields[i].field);
			if (q)
				q->pos = pos;
			return q;
		}
	}
	p->pos = e;
	return word(p, pos, e, QF_ANY);
}

static qnode_t *unary(parser_t *p)
{
	size_t pos = p->pos;
	int neg = 0;
	const char *op = "-";
	if (cur(p) == '-' && p->pos + 1 < p->len &&
	    (!is_delim(p->s[p->pos + 1]) || p->s[p->pos + 1] == '(' ||
	    p->s[p->pos + 1] == '"')) {
		p->pos++;
		neg = 1;
	} else if (keyword(p, "NOT")) {
		op = "NOT";
		p->pos += 3;
		skip_ws(p);
		if (cur(p) == 0 || cur(p) == ')') {
			fail(p, p->pos, "expected a term after 'NOT'");
			return NULL;
		}
		neg = 1;
	}
	if (!neg)
		return primary(p);
	if (++p->depth > Q_DEPTH_MAX) {
		fail(p, pos, "query nested too deeply");
		return NULL;
	}
	qnode_t *kid = unary(p);
	p->depth--;
	if (!kid)
		return NULL;
	if (kid->type == QN_TERM && kid->noword) {
		fail(p, kid->pos, "nothing to exclude after '%s' " NOT_INDEXED,
		    op);
		qnode_free(kid);
		return NULL;
	}
	qnode_t *q = node(p, QN_NOT, pos);
	if (!q) {
		qnode_free(kid);
		return NULL;
	}
	if (add_kid(p, q, kid) < 0) {
		qnode_free(q);
		return NULL;
	}
	return q;
}

/* fold a one-child AND/OR into its child */
static qnode_t *single(qnode_t *q)
{
	if (q && q->nkids == 1 && (q->type == QN_AND || q->type == QN_OR)) {
		qnode_t *k = q->kids[0];
		q->nkids = 0;
		qnode_free(q);
		return k;
	}
	return q;
}

/* terms joined by AND; bare terms without a word are dropped (their
 * positions noted), and refused when nothing else is left */
static qnode_t *and_expr(parser_t *p)
{
	qnode_t *q = node(p, QN_AND, p->pos);
	size_t terms = 0, dropped = 0, dropped_at = 0;
	if (!q)
		return NULL;
	for (;;) {
		skip_ws(p);
		if (cur(p) == 0 || cur(p) == ')')
			break;
		if (keyword(p, "OR")) {
			if (terms == 0) {
				fail(p, p->pos, "expected a term before 'OR'");
				goto bad;
			}
			break;
		}
		if (keyword(p, "AND")) {
			size_t at = p->pos;
			p->pos += 3;
			skip_ws(p);
			if (terms == 0) {
				fail(p, at, "expected a term before 'AND'");
				goto bad;
			}
			if (cur(p) == 0 || cur(p) == ')' || keyword(p, "OR") ||
			    keyword(p, "AND")) {
				fail(p, p->pos, "expected a term after 'AND'");
				goto bad;
			}
		}
		qnode_t *k = unary(p);
		if (!k)
			goto bad;
		terms++;
		if (k->type == QN_TERM && k->noword) {
			if (dropped++ == 0)
				dropped_at = k->pos;
			qnode_free(k);
			continue;
		}
		if (add_kid(p, q, k) < 0)
			goto bad;
	}
	if (q->nkids == 0 && dropped) {
		fail(p, dropped_at, "nothing to search for " NOT_INDEXED);
		goto bad;
	}
	if (q->nkids == 0) {
		fail(p, p->pos, cur(p) == ')' ? "unexpected ')'" :
		    "expected a term");
		goto bad;
	}
	return single(q);
bad:
	qnode_free(q);
	return NULL;
}

static qnode_t *or_expr(parser_t *p)
{
	if (++p->depth > Q_DEPTH_MAX) {
		fail(p, p->pos, "query nested too deeply");
		return NULL;
	}
	qnode_t *q = node(p, QN_OR, p->pos);
	if (!q)
		return NULL;
	for (;;) {
		qnode_t *k = and_expr(p);
		if (!k || add_kid(p, q, k) < 0) {
			qnode_free(q);
			return NULL;
		}
		skip_ws(p);
		if (!keyword(p, "OR"))
			break;
		p->pos += 2;
		skip_ws(p);
		if (cur(p) == 0 || cur(p) == ')' || keyword(p, "OR")) {
			fail(p, p->pos, "expected a term after 'OR'");
			qnode_free(q);
			return NULL;
		}
	}
	p->depth--;
	return single(q);
}

int search_query_parse(const char *text, search_query_t **out,
    char *errbuf, size_t errlen)
{
	parser_t p = { 0 };
	*out = NULL;
	if (errbuf && errlen)
		errbuf[0] = 0;
	if (!text)
		return AR_EINVAL;
	p.s = text;
	p.len = strlen(text);
	p.err = errbuf;
	p.errlen = errlen;
	if (p.len > Q_TEXT_MAX) {
		q_error(errbuf, errlen, text, Q_TEXT_MAX,
		    "query longer than %d bytes", Q_TEXT_MAX);
		return AR_ESYNTAX;
	}
	size_t bad = nz_utf8_invalid(text, p.len);
	if (bad < p.len) {
		q_error(errbuf, errlen, text, bad, "invalid UTF-8 (byte 0x%02x)",
		    (unsigned char)text[bad]);
		return AR_ESYNTAX;
	}
	search_query_t *q = calloc(1, sizeof *q);
	if (!q || !(q->text = strdup(text))) {
		free(q);
		return AR_ENOMEM;
	}
	skip_ws(&p);
	if (p.pos < p.len) {
		q->root = or_expr(&p);
		skip_ws(&p);
		if (!p.failed && p.pos < p.len)
			fail(&p, p.pos, "unexpected ')'");
	}
	if (p.failed) {
		search_query_free(q);
		return AR_ESYNTAX;
	}
	*out = q;
	return 0;
}

int search_query_selects_all(const search_query_t *q)
{
	return q->root == NULL;
}

void search_query_free(search_query_t *q)
{
	if (!q)
		return;
	qnode_free(q->root);
	free(q->text);
	free(q);
}
