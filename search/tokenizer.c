/*
 * tokenizer.c - the blind FTS5 tokenizer "blind".
 *
 * Every token written to the index is TK_TOKEN_LEN characters of base32:
 * the first 80 bits of SipHash-2-4-128 (crypto_shorthash_siphashx24) keyed
 * with the shard tenant's token key, over "<kind>:<normalised text>":
 *
 *   e:<word>     exact word (every word, at its position)
 *   s:<stem>     Snowball stem, co-located (shards with a language), when
 *                it differs from the word
 *   p:<prefix>   prefixes of prefix_min..prefix_max characters shorter
 *                than the word, co-located
 *   c:<xy> c:<x> CJK: bigram of each character and the next, with the
 *                character itself co-located (the last one alone); a
 *                run normalize.c cuts into pieces keeps the bigram
 *                across each cut (shards of TK_VERSION 2; version 1
 *                shards have a gap there until a reindex)
 *   a:<addr>     whole address   } co-located with the first word of
 *   l:<local>    local part      } every local@domain in the text
 *   d:<domain>   domain          }
 *
 * Queries are tokenized by the same code (FTS5_TOKENIZE_QUERY): the query
 * compiler starts each quoted string with a marker "<m>:" (TK_M_*) saying
 * which kind of token to emit; one token per position, with co-located
 * alternatives (FTS5 query synonyms) where a document leaves a token out
 * because another one stands for it:
 *
 *   - a word's stem equal to the word: the document has only e:<word>.
 *     A word query for q emits s:<z> (z = stem(q)), and e:<z> beside it
 *     when stem(z) = z: a document word w matches exactly when stem(w) = z,
 *     as before (w = z and stem(z) = z give stem(w) = z; stem(w) = w = z
 *     is found through e:<z>).
 *   - a prefix as long as the word: the document has only e:<word>.  A
 *     prefix query emits p:<x> and e:<x>: words longer than x, and x.
 *
 * A document field (one column of one message) gives at most terms_max
 * distinct tokens (shard meta "terms_max"; 0 or absent: no limit): FTS5
 * holds every distinct term of the row it writes in memory (about 130
 * bytes each, whatever the text) until the row is done, so the text of
 * one message could otherwise take hundreds of MB of index memory (a log
 * or a CSV of numbers: nearly every word is new).  The field is cut
 * before the first word whose tokens could pass the limit: the same cut
 * for the same text, which a row's deletion (tokenized again) relies on.
 * Prose stays whole (the sample corpus: about 57,000 distinct tokens per
 * MB of text).
 *
 * Shards written before (meta tokens absent: every s: and p: token, and
 * their rows are deleted with the same tokens) answer these queries the
 * same way; new shards have tokens = 2 (tk_ctx_new's lean).  The tokens left out were a fifth to a quarter of all tokens,
 * and FTS5's work is proportional to them (docs/performance.md, "Index
 * memory and CPU").  Stemming and the hashing key are fixed per shard, so
 * a query always matches the way the shard was built.
 */
#include "search/search_priv.h"

#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>
#include <sodium.h>

#include "ar.h"

#define TK_CACHE     4096     /* hot words per document tokenizer */
#define TK_CACHE_LEN 40       /* longest cached word (bytes) */
#define TK_BUF       (NZ_WORD_MAX * 2 + 600)

typedef struct tk_cache_ent {
	uint64_t tag;
	uint8_t len;
	uint8_t has_stem;
	char word[TK_CACHE_LEN];
	char e[TK_TOKEN_LEN];
	char s[TK_TOKEN_LEN];
} tk_cache_ent_t;

struct tk_ctx {
	uint8_t key[TK_KEY_LEN];
	struct sb_stemmer *stem;
	int pmin, pmax;
	int lean;                   /* documents: no token another stands for */
	size_t terms_max;           /* distinct tokens of a field; 0: any */
	tk_cache_ent_t *cache;      /* allocated on the first document */
};

typedef int (*tk_emit_fn)(void *, int, const char *, int, int, int);

int tk_language_valid(const char *lang)
{
	if (!lang || !*lang || strcmp(lang, "none") == 0)
		return 1;
	struct sb_stemmer *st = sb_stemmer_new(lang, "UTF_8");
	if (!st)
		return 0;
	sb_stemmer_delete(st);
	return 1;
}

tk_ctx_t *tk_ctx_new(const uint8_t key[TK_KEY_LEN], const char *lang,
    int prefix_min, int prefix_max, int lean, size_t terms_max)
{
	tk_ctx_t *c;
	if (sodium_init() < 0 || !(c = sodium_malloc(sizeof *c)))
		return NULL;
	memset(c, 0, sizeof *c);
	memcpy(c->key, key, TK_KEY_LEN);
	c->pmin = prefix_min;
	c->pmax = prefix_max;
	c->lean = lean;
	c->terms_max = terms_max;
	if (lang && *lang && strcmp(lang, "none") != 0) {
		c->stem = sb_stemmer_new(lang, "UTF_8");
		if (!c->stem) {
			sodium_free(c);
			return NULL;
		}
	}
	return c;
}

void tk_ctx_free(tk_ctx_t *c)
{
	if (!c)
		return;
	if (c->stem)
		sb_stemmer_delete(c->stem);
	if (c->cache) {
		sodium_memzero(c->cache, sizeof(tk_cache_ent_t) * TK_CACHE);
		free(c->cache);
	}
	sodium_free(c);            /* wipes the key */
}

static void b32(const unsigned char *h, char out[TK_TOKEN_LEN])
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint64_t hi = (uint64_t)h[0] << 32 | (uint64_t)h[1] << 24 |
	    (uint64_t)h[2] << 16 | (uint64_t)h[3] << 8 | h[4];
	uint64_t lo = (uint64_t)h[5] << 32 | (uint64_t)h[6] << 24 |
	    (uint64_t)h[7] << 16 | (uint64_t)h[8] << 8 | h[9];
	for (int i = 0; i < 8; i++) {
		out[i] = al[(hi >> (35 - 5 * i)) & 31];
		out[8 + i] = al[(lo >> (35 - 5 * i)) & 31];
	}
}

/* token of kind:text */
static void tk_hash(const tk_ctx_t *c, char kind, const char *s, size_t len,
    char out[TK_TOKEN_LEN])
{
	unsigned char buf[TK_BUF];
	unsigned char h[crypto_shorthash_siphashx24_BYTES];
	if (len > sizeof buf - 2)
		len = sizeof buf - 2;
	buf[0] = (unsigned char)kind;
	buf[1] = ':';
	memcpy(buf + 2, s, len);
	crypto_shorthash_siphashx24(h, buf, len + 2, c->key);
	b32(h, out);
}

/* stem token of a normalised word; 0 when the shard does not stem.
 * *same: the stem is the word itself.  When z is given (NZ_WORD_MAX + 1
 * bytes), the stem is copied there, NUL-terminated. */
static int stem_token(tk_ctx_t *c, const char *w, size_t len,
    char out[TK_TOKEN_LEN], int *same, char *z)
{
	*same = 0;
	if (!c->stem)
		return 0;
	const sb_symbol *st = sb_stemmer_stem(c->stem, (const sb_symbol *)w,
	    (int)len);
	if (!st) {                 /* out of memory: the word stands for it */
		tk_hash(c, 's', w, len, out);
		if (z) {
			memcpy(z, w, len < NZ_WORD_MAX ? len : NZ_WORD_MAX);
			z[len < NZ_WORD_MAX ? len : NZ_WORD_MAX] = 0;
		}
		return 1;
	}
	size_t sl = (size_t)sb_stemmer_length(c->stem);
	*same = sl == len && memcmp(st, w, len) == 0;
	if (z) {
		if (sl > NZ_WORD_MAX)
			sl = NZ_WORD_MAX;
		memcpy(z, st, sl);
		z[sl] = 0;
	}
	tk_hash(c, 's', (const char *)st, sl, out);
	return 1;
}

static uint64_t fnv(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

/* exact and stem tokens of a word, through the cache; 1 when the stem
 * token is to be written too (a stem that differs from the word) */
static int word_tokens(tk_ctx_t *c, const char *w, size_t len,
    char e[TK_TOKEN_LEN], char s[TK_TOKEN_LEN])
{
	tk_cache_ent_t *ent = NULL;
	if (len < TK_CACHE_LEN) {
		if (!c->cache)
			c->cache = calloc(TK_CACHE, sizeof *c->cache);
		if (c->cache) {
			uint64_t h = fnv(w, len);
			ent = &c->cache[h & (TK_CACHE - 1)];
			if (ent->tag == h && ent->len == len &&
			    memcmp(ent->word, w, len) == 0) {
				memcpy(e, ent->e, TK_TOKEN_LEN);
				memcpy(s, ent->s, TK_TOKEN_LEN);
				return ent->has_stem;
			}
			ent->tag = h;
			ent->len = (uint8_t)len;
			memcpy(ent->word, w, len);
		}
	}
	int same;
	tk_hash(c, 'e', w, len, e);
	int has = stem_token(c, w, len, s, &same, NULL) &&
	    !(same && c->lean);
	if (ent) {
		memcpy(ent->e, e, TK_TOKEN_LEN);
		memcpy(ent->s, s, TK_TOKEN_LEN);
		ent->has_stem = (uint8_t)has;
	}
	return has;
}

/* The distinct tokens of one field, counted against tk_ctx.terms_max:
 * an open-addressing set of 64-bit keys taken from the tokens (keyed
 * hashes already), made only for a field long enough to reach the limit;
 * a shorter one counts every token it gives, an upper bound. */
typedef struct emitter {
	void *pctx;
	tk_emit_fn fn;
	int rc;
	size_t max;                 /* terms_max; 0: no limit */
	size_t n;                   /* distinct tokens (seen) or all tokens */
	uint64_t *seen;
	size_t mask;
} emitter_t;

/* A field of len bytes gives at most about 1.25 tokens per byte ("a@b ":
 * e:a, a:, l:, d:, e:b in 4 bytes; a long word and its separator: under
 * 1; CJK: 2 per 3 bytes): below max / 2 bytes, counting every token
 * stays under the limit, and the set (2 slots per term) is not needed. */
static int em_budget(emitter_t *em, const tk_ctx_t *c, size_t len)
{
	em->max = c->terms_max;
	if (!em->max || len < em->max / 2)
		return 0;
	size_t slots = 1024;
	while (slots < em->max * 2)
		slots <<= 1;
	if (!(em->seen = calloc(slots, sizeof *em->seen)))
		return em->rc = SQLITE_NOMEM;
	em->mask = slots - 1;
	return 0;
}

static void em_count(emitter_t *em, const char *tok)
{
	uint64_t a, b, k;
	if (!em->max)
		return;
	if (!em->seen) {
		em->n++;
		return;
	}
	memcpy(&a, tok, 8);
	memcpy(&b, tok + 8, 8);
	k = ((a * 0x9e3779b97f4a7c15ULL) ^ b) | 1;
	for (size_t i = (size_t)(k ^ k >> 29) & em->mask;;
	    i = (i + 1) & em->mask) {
		if (em->seen[i] == k)
			return;
		if (em->seen[i] == 0) {
			em->seen[i] = k;
			em->n++;
			return;
		}
	}
}

/* Would a word giving up to need tokens pass the limit?  Then the field
 * ends here (SQLITE_DONE, which x_tokenize turns into success). */
static int em_full(emitter_t *em, size_t need)
{
	if (em->max && em->n + need > em->max) {
		em->rc = SQLITE_DONE;
		return 1;
	}
	return 0;
}

static int emit_tok(emitter_t *em, int colocated, const char *tok,
    const nz_word_t *w)
{
	em_count(em, tok);
	em->rc = em->fn(em->pctx, colocated ? FTS5_TOKEN_COLOCATED : 0, tok,
	    TK_TOKEN_LEN, (int)w->off, (int)w->end);
	return em->rc;
}

static int emit(emitter_t *em, int colocated, char kind, const tk_ctx_t *c,
    const char *s, size_t len, const nz_word_t *w)
{
	char tok[TK_TOKEN_LEN];
	tk_hash(c, kind, s, len, tok);
	return emit_tok(em, colocated, tok, w);
}

/* CJK run: n positions; bigram i..i+1 (query: the last one alone).  A
 * document's piece of a longer run (next: its continuing character, of
 * w->cjk_next bytes) ends with the bigram across the cut, as if uncut; a
 * query's piece ends with its last character alone, which every document
 * has at that position. */
static int emit_cjk(emitter_t *em, tk_ctx_t *c, const nz_word_t *w,
    int query, const char *next)
{
	const char *p = w->norm;
	size_t left = w->len;
	for (int i = 0; i < w->ncp; i++) {
		size_t one = nz_prefix_bytes(p, left, 1);
		size_t two = nz_prefix_bytes(p, left, 2);
		if (i + 1 < w->ncp) {
			if (emit(em, 0, 'c', c, p, two, w))
				return em->rc;
			if (!query && emit(em, 1, 'c', c, p, one, w))
				return em->rc;
		} else if (!query && next && w->cjk_next &&
		    w->cjk_next <= 4 && one <= 4) {
			char pair[8];
			memcpy(pair, p, one);
			memcpy(pair + one, next, w->cjk_next);
			if (emit(em, 0, 'c', c, pair, one + w->cjk_next, w) ||
			    emit(em, 1, 'c', c, p, one, w))
				return em->rc;
		} else if (emit(em, 0, 'c', c, p, one, w)) {
			return em->rc;
		}
		p += one;
		left -= one;
	}
	return 0;
}

static int emit_addr(emitter_t *em, const tk_ctx_t *c, const char *text,
    size_t a, size_t b, const nz_word_t *w)
{
	char buf[512];
	int n = nz_fold(text + a, b - a, buf, sizeof buf);
	if (n <= 0)
		return 0;
	char *at = strchr(buf, '@');
	if (!at)
		return 0;
	if (emit(em, 1, 'a', c, buf, (size_t)n, w) ||
	    emit(em, 1, 'l', c, buf, (size_t)(at - buf), w) ||
	    emit(em, 1, 'd', c, at + 1, strlen(at + 1), w))
		return em->rc;
	return 0;
}

static int tokenize_doc(tk_ctx_t *c, emitter_t *em, const char *text,
    size_t len)
{
	nz_iter_t it;
	nz_word_t w;
	size_t scan = 0, as = 0, ae = 0;
	int have_addr = 0, addr_used = 0;
	char e[TK_TOKEN_LEN], s[TK_TOKEN_LEN];

	/* a word: e:, s:, its prefixes, and an address's three */
	size_t word_need = 2 + (size_t)(c->pmax >= c->pmin ?
	    c->pmax - c->pmin + 1 : 0) + 3;
	if (em_budget(em, c, len))
		return em->rc;
	nz_iter_init(&it, text, len);
	while (nz_next(&it, &w)) {
		if (em_full(em, w.cjk ? 2 * (size_t)w.ncp + 2 : word_need))
			return em->rc;
		if (w.cjk) {
			if (emit_cjk(em, c, &w, 0, w.cjk_next ? text + w.end :
			    NULL))
				return em->rc;
			continue;
		}
		int has = word_tokens(c, w.norm, w.len, e, s);
		if (emit_tok(em, 0, e, &w) || (has && emit_tok(em, 1, s, &w)))
			return em->rc;
		/* lean: the prefix as long as the word is its e: token */
		int full = c->lean ? w.ncp - 1 : w.ncp;
		int top = full < c->pmax ? full : c->pmax;
		for (int k = c->pmin; k <= top; k++)
			if (emit(em, 1, 'p', c, w.norm,
			    nz_prefix_bytes(w.norm, w.len, k), &w))
				return em->rc;
		while (w.off >= ae && scan < len) {
			have_addr = nz_find_address(text, len, scan, &as, &ae);
			if (!have_addr) {
				scan = len;
				break;
			}
			addr_used = 0;
			scan = ae;
		}
		if (have_addr && !addr_used && w.off >= as && w.off < ae) {
			addr_used = 1;
			if (emit_addr(em, c, text, as, ae, &w))
				return em->rc;
		}
	}
	return 0;
}

static int tokenize_query(tk_ctx_t *c, emitter_t *em, const char *text,
    size_t len)
{
	char mode = TK_M_WORD;
	nz_iter_t it;
	nz_word_t w, next;
	char e[TK_TOKEN_LEN], s[TK_TOKEN_LEN];

	if (len >= 2 && text[1] == ':' && strchr("wepadl", text[0])) {
		mode = text[0];
		text += 2;
		len -= 2;
	}
	if (mode == TK_M_ADDR || mode == TK_M_DOMAIN || mode == TK_M_LOCAL) {
		char buf[512];
		int n = nz_fold(text, len, buf, sizeof buf);
		nz_word_t whole = { 0, len + 2, buf, 0, 0, 0, 0 };
		if (n <= 0)
			return 0;
		char *p = buf;
		size_t plen = (size_t)n;
		if (mode == TK_M_DOMAIN && *p == '@') {
			p++;
			plen--;
		}
		if (mode == TK_M_LOCAL && plen && p[plen - 1] == '@')
			plen--;
		if (plen == 0)
			return 0;
		return emit(em, 0, (char)mode, c, p, plen, &whole);
	}
	nz_iter_init(&it, text, len);
	int more = nz_next(&it, &w);
	while (more) {
		nz_word_t cur = w;
		char curbuf[NZ_WORD_MAX + 8];
		memcpy(curbuf, w.norm, w.len + 1);
		cur.norm = curbuf;
		more = nz_next(&it, &next);
		if (more)
			w = next;
		cur.off += 2;
		cur.end += 2;
		if (cur.cjk) {
			if (emit_cjk(em, c, &cur, 1, NULL))
				return em->rc;
		} else if (mode == TK_M_PREFIX && !more) {
			int k = cur.ncp < c->pmax ? cur.ncp : c->pmax;
			size_t kb = nz_prefix_bytes(cur.norm, cur.len, k);
			if (emit(em, 0, 'p', c, cur.norm, kb, &cur) ||
			    emit(em, 1, 'e', c, cur.norm, kb, &cur))
				return em->rc;
		} else {
			char z[NZ_WORD_MAX + 1], zs[TK_TOKEN_LEN];
			int same, zsame = 0;
			int has = mode != TK_M_EXACT &&
			    stem_token(c, cur.norm, cur.len, s, &same, z);
			if (has) {
				/* documents whose word is its own stem z have
				 * e:<z> only */
				size_t zl = strlen(z);
				if (stem_token(c, z, zl, zs, &zsame, NULL) &&
				    zsame)
					tk_hash(c, 'e', z, zl, e);
				if (emit_tok(em, 0, s, &cur) ||
				    (zsame && emit_tok(em, 1, e, &cur)))
					return em->rc;
			} else {
				tk_hash(c, 'e', cur.norm, cur.len, e);
				if (emit_tok(em, 0, e, &cur))
					return em->rc;
			}
		}
	}
	return 0;
}

/* ---- FTS5 glue ----------------------------------------------------------- */

static int x_create(void *ud, const char **az, int n, Fts5Tokenizer **out)
{
	*out = (Fts5Tokenizer *)ud;
	return SQLITE_OK;
}

static void x_delete(Fts5Tokenizer *t)
{
}

static int x_tokenize(Fts5Tokenizer *t, void *pctx, int flags,
    const char *text, int ntext, tk_emit_fn fn)
{
	tk_ctx_t *c = (tk_ctx_t *)t;
	emitter_t em = { pctx, fn, SQLITE_OK, 0, 0, NULL, 0 };
	if (ntext <= 0)
		return SQLITE_OK;
	if (flags & FTS5_TOKENIZE_QUERY)
		tokenize_query(c, &em, text, (size_t)ntext);
	else
		tokenize_doc(c, &em, text, (size_t)ntext);
	free(em.seen);
	return em.rc == SQLITE_DONE ? SQLITE_OK : em.rc;
}

static void x_destroy(void *ud)
{
	tk_ctx_free(ud);
}

static fts5_api *fts5_of(sqlite3 *db)
{
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) !=
	    SQLITE_OK)
		return NULL;
	sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	return api;
}

int tk_register(sqlite3 *db, tk_ctx_t *ctx)
{
	static fts5_tokenizer tok = { x_create, x_delete, x_tokenize };
	fts5_api *api = fts5_of(db);
	if (!api) {
		tk_ctx_free(ctx);
		return AR_EIO;
	}
	if (api->xCreateTokenizer(api, TK_NAME, ctx, &tok, x_destroy) !=
	    SQLITE_OK) {
		tk_ctx_free(ctx);
		return AR_EIO;
	}
	return 0;
}
