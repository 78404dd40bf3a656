/*
 * snippet.c - a snippet of decrypted text around the query words, built
 * at display time (the index holds no text to build it from).
 *
 * A word of the text matches when its normalised form equals a word of a
 * positive query term, starts with a prefix term, or (language given) has
 * the same Snowball stem.  The window with the most matches is chosen,
 * cut at word boundaries; whitespace runs collapse to one space.
 */
#include "search/search_priv.h"

#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>

#include "ar.h"

#define SN_TERMS 64

typedef struct sterm {
	char w[NZ_WORD_MAX + 8];
	char stem[NZ_WORD_MAX + 8];
	int prefix;
} sterm_t;

typedef struct sctx {
	sterm_t t[SN_TERMS];
	int n;
	struct sb_stemmer *st;
} sctx_t;

static void stem_of(sctx_t *c, const char *w, size_t len, char *out)
{
	out[0] = 0;
	if (!c->st)
		return;
	const sb_symbol *s = sb_stemmer_stem(c->st, (const sb_symbol *)w,
	    (int)len);
	int n = sb_stemmer_length(c->st);
	if (s && n >= 0 && n < NZ_WORD_MAX) {
		memcpy(out, s, (size_t)n);
		out[n] = 0;
	}
}

static void collect(sctx_t *c, const qnode_t *n, int neg)
{
	if (n->type == QN_NOT)
		neg = !neg;
	if (n->type == QN_TERM && !neg) {
		nz_iter_t it;
		nz_word_t w;
		int first = c->n;
		nz_iter_init(&it, n->text, strlen(n->text));
		while (c->n < SN_TERMS && nz_next(&it, &w)) {
			sterm_t *t = &c->t[c->n++];
			memcpy(t->w, w.norm, w.len + 1);
			stem_of(c, w.norm, w.len, t->stem);
			t->prefix = 0;
		}
		if (n->kind == QK_PREFIX && c->n > first)
			c->t[c->n - 1].prefix = 1;
	}
	for (size_t i = 0; i < n->nkids; i++)
		collect(c, n->kids[i], neg);
}

static int matches(sctx_t *c, const nz_word_t *w)
{
	char stem[NZ_WORD_MAX + 8];
	int have_stem = 0;
	for (int i = 0; i < c->n; i++) {
		const sterm_t *t = &c->t[i];
		size_t tl = strlen(t->w);
		if (t->prefix ? (w->len >= tl && memcmp(w->norm, t->w, tl) == 0) :
		    (w->len == tl && memcmp(w->norm, t->w, tl) == 0))
			return 1;
		if (w->cjk && strstr(w->norm, t->w))
			return 1;
		if (c->st && t->stem[0] && !t->prefix) {
			if (!have_stem) {
				stem_of(c, w->norm, w->len, stem);
				have_stem = 1;
			}
			if (strcmp(stem, t->stem) == 0)
				return 1;
		}
	}
	return 0;
}

typedef struct span {
	size_t off, end;
} span_t;

/* append text[a, b) with whitespace runs collapsed */
static void add_text(sbuf_t *b, const char *s, size_t a, size_t e)
{
	for (size_t i = a; i < e; i++) {
		char ch = s[i];
		if (ch == '\n' || ch == '\r' || ch == '\t' || ch == ' ') {
			if (b->len && b->p[b->len - 1] != ' ')
				sb_add(b, " ", 1);
			continue;
		}
		sb_add(b, &ch, 1);
	}
}

int search_snippet(const char *query, const char *text, size_t max_chars,
    const char *open, const char *close, const char *language, char **out)
{
	search_query_t *q = NULL;
	sctx_t *c;
	span_t *hits = NULL;
	size_t nh = 0, cap = 0, len;
	sbuf_t b = { 0 };
	nz_iter_t it;
	nz_word_t w;
	int rc;

	*out = NULL;
	if (!text)
		text = "";
	len = strlen(text);
	if (!max_chars)
		max_chars = 200;
	if (!open)
		open = "\x02";
	if (!close)
		close = "\x03";
	if ((rc = search_query_parse(query ? query : "", &q, NULL, 0)))
		return rc;
	if (!(c = calloc(1, sizeof *c))) {
		search_query_free(q);
		return AR_ENOMEM;
	}
	if (language && *language && strcmp(language, "none") != 0)
		c->st = sb_stemmer_new(language, "UTF_8");
	if (q->root)
		collect(c, q->root, 0);
	search_query_free(q);
	nz_iter_init(&it, text, len);
	while (nz_next(&it, &w)) {
		if (!matches(c, &w))
			continue;
		if (nh == cap) {
			span_t *nv = realloc(hits, (cap = cap ? cap * 2 : 16) *
			    sizeof *nv);
			if (!nv) {
				rc = AR_ENOMEM;
				goto out;
			}
			hits = nv;
		}
		hits[nh++] = (span_t){ w.off, w.end };
	}
	/* window: the start (a hit, with some context before) covering most */
	size_t best = 0, best_n = 0, start = 0;
	size_t span = max_chars;
	for (size_t i = 0, j = 0; i < nh; i++) {
		while (j < nh && hits[j].end - hits[i].off <= span)
			j++;
		if (j - i > best_n) {
			best_n = j - i;
			best = i;
		}
	}
	if (nh) {
		size_t ctx = span / 5;
		start = hits[best].off > ctx ? hits[best].off - ctx : 0;
		while (start > 0 && start < hits[best].off &&
		    text[start - 1] != ' ' && text[start - 1] != '\n')
			start++;
	}
	size_t end = start + span < len ? start + span : len;
	while (end < len && end > start && text[end] != ' ' && text[end] != '\n'
	    && end - start < span + 20)
		end++;
	while (end < len && ((unsigned char)text[end] & 0xc0) == 0x80)
		end++;
	if (start > 0)
		sb_puts(&b, "\xe2\x80\xa6");          /* … */
	size_t pos = start;
	for (size_t i = 0; i < nh; i++) {
		if (hits[i].off < start || hits[i].end > end)
			continue;
		add_text(&b, text, pos, hits[i].off);
		sb_puts(&b, open);
		sb_add(&b, text + hits[i].off, hits[i].end - hits[i].off);
		sb_puts(&b, close);
		pos = hits[i].end;
	}
	add_text(&b, text, pos, end);
	if (end < len)
		sb_puts(&b, "\xe2\x80\xa6");
	if (!b.p)
		sb_puts(&b, "");
	if (b.oom) {
		rc = AR_ENOMEM;
		goto out;
	}
	*out = b.p;
	b.p = NULL;
	rc = 0;
out:
	free(b.p);
	free(hits);
	if (c->st)
		sb_stemmer_delete(c->st);
	free(c);
	return rc;
}
