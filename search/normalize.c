/*
 * normalize.c - words of UTF-8 text, case-folded and without accents.
 *
 * A word is a run of letters, digits and marks (NFKD, Unicode case fold,
 * marks stripped: "Café" -> "cafe", "Straße" -> "strasse").  Format
 * characters (soft hyphen, zero-width joiners) inside a word are dropped
 * without splitting it.  A run of CJK characters (Han, kana, Hangul) is a
 * word of its own, left as is; the tokenizer splits it into bigrams.  A
 * run longer than the word buffer comes in pieces, each telling the
 * character that continues it (cjk_next).
 * Invalid UTF-8 bytes separate words.  Words whose normalised form does
 * not fit in NZ_WORD_MAX bytes (base64 runs) are skipped: the index has no
 * token for them, and the query parser refuses them (query_parse.c), so
 * that the cut-off never changes what a query means.
 */
#include "search/search_priv.h"

#include <string.h>

#include <utf8proc.h>

#define NZ_OPTS (UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | \
	UTF8PROC_STRIPMARK)

int nz_is_cjk(int32_t cp)
{
	return (cp >= 0x3040 && cp <= 0x30ff) ||   /* hiragana, katakana */
	    (cp >= 0x31f0 && cp <= 0x31ff) ||      /* katakana ext */
	    (cp >= 0x3400 && cp <= 0x4dbf) ||      /* CJK ext A */
	    (cp >= 0x4e00 && cp <= 0x9fff) ||      /* CJK unified */
	    (cp >= 0xac00 && cp <= 0xd7af) ||      /* Hangul syllables */
	    (cp >= 0xf900 && cp <= 0xfaff) ||      /* compatibility */
	    (cp >= 0xff66 && cp <= 0xff9f) ||      /* half-width kana */
	    (cp >= 0x20000 && cp <= 0x2ffff);      /* ext B.. */
}

static int is_word_cat(int cat)
{
	switch (cat) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL:
	case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
	case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_NO:
		return 1;
	default:
		return 0;
	}
}

/* Decode one code point at s[pos]; returns its byte length (>= 1), *cp -1
 * for an invalid byte. */
static size_t decode(const unsigned char *s, size_t len, size_t pos,
    int32_t *cp)
{
	utf8proc_ssize_t n = utf8proc_iterate(s + pos,
	    (utf8proc_ssize_t)(len - pos > 4 ? 4 : len - pos), cp);
	if (n <= 0) {
		*cp = -1;
		return 1;
	}
	return (size_t)n;
}

/* Append the normalised form of cp to buf; -1 when it does not fit. */
static int fold_cp(int32_t cp, char *buf, size_t cap, size_t *len, int *ncp,
    int words_only)
{
	utf8proc_int32_t out[32];
	int bound = 0;
	utf8proc_ssize_t n = utf8proc_decompose_char(cp, out, 32, NZ_OPTS,
	    &bound);
	if (n < 0 || n > 32) {
		n = 1;
		out[0] = cp;
	}
	for (utf8proc_ssize_t i = 0; i < n; i++) {
		unsigned char tmp[4];
		if (words_only && !is_word_cat(utf8proc_category(out[i])))
			continue;
		utf8proc_ssize_t k = utf8proc_encode_char(out[i], tmp);
		if (k <= 0)
			continue;
		if (*len + (size_t)k >= cap)
			return -1;
		memcpy(buf + *len, tmp, (size_t)k);
		*len += (size_t)k;
		(*ncp)++;
	}
	return 0;
}

void nz_iter_init(nz_iter_t *it, const char *s, size_t len)
{
	it->s = (const unsigned char *)s;
	it->len = len;
	it->pos = 0;
	it->nlong = 0;
	it->long_off = 0;
}

size_t nz_utf8_invalid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t pos = 0;
	int32_t cp;
	while (pos < len) {
		if (s[pos] < 0x80) {
			pos++;
			continue;
		}
		size_t n = decode(s, len, pos, &cp);
		if (cp < 0)
			return pos;
		pos += n;
	}
	return len;
}

int nz_next(nz_iter_t *it, nz_word_t *w)
{
	const unsigned char *s = it->s;
	int32_t cp;

	while (it->pos < it->len) {
		size_t n = decode(s, it->len, it->pos, &cp);
		int cat = cp < 0 ? -1 : (int)utf8proc_category(cp);
		if (cp < 0 || !is_word_cat(cat) || cat == UTF8PROC_CATEGORY_MN ||
		    cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME) {
			it->pos += n;          /* separators, lone marks */
			continue;
		}
		size_t start = it->pos, len = 0;
		int ncp = 0, over = 0;
		if (nz_is_cjk(cp)) {
			while (it->pos < it->len) {
				n = decode(s, it->len, it->pos, &cp);
				if (cp < 0 || !nz_is_cjk(cp))
					break;
				if (len + n >= NZ_WORD_MAX)
					break;         /* the rest is the next piece */
				memcpy(it->buf + len, s + it->pos, n);
				len += n;
				ncp++;
				it->pos += n;
			}
			it->buf[len] = 0;
			w->off = start;
			w->end = it->pos;
			w->norm = it->buf;
			w->len = len;
			w->ncp = ncp;
			w->cjk = 1;
			w->cjk_next = it->pos < it->len && cp >= 0 &&
			    nz_is_cjk(cp) ? n : 0;
			return 1;
		}
		while (it->pos < it->len) {
			n = decode(s, it->len, it->pos, &cp);
			if (cp < 0 || nz_is_cjk(cp))
				break;
			cat = utf8proc_category(cp);
			if (cat == UTF8PROC_CATEGORY_CF) {
				it->pos += n;          /* soft hyphen, ZWJ ... */
				continue;
			}
			if (!is_word_cat(cat))
				break;
			if (!over && fold_cp(cp, it->buf, NZ_WORD_MAX, &len, &ncp,
			    1) < 0)
				over = 1;
			it->pos += n;
		}
		if (over) {
			if (it->nlong++ == 0)
				it->long_off = start;
			continue;
		}
		if (len == 0)
			continue;
		it->buf[len] = 0;
		w->off = start;
		w->end = it->pos;
		w->norm = it->buf;
		w->len = len;
		w->ncp = ncp;
		w->cjk = 0;
		w->cjk_next = 0;
		return 1;
	}
	return 0;
}

int nz_fold(const char *str, size_t slen, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t pos = 0, len = 0;
	int ncp = 0;
	int32_t cp;

	if (cap == 0)
		return -1;
	while (pos < slen) {
		size_t n = decode(s, slen, pos, &cp);
		if (cp < 0) {
			pos += n;
			continue;
		}
		if (cp < 0x80) {
			if (cp < 0x20 || cp == 0x7f) {
				pos += n;
				continue;
			}
			if (len + 1 >= cap)
				return -1;
			out[len++] = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
		} else if (nz_is_cjk(cp) || !is_word_cat(utf8proc_category(cp))) {
			if (len + n >= cap)
				return -1;
			memcpy(out + len, s + pos, n);
			len += n;
		} else if (fold_cp(cp, out, cap, &len, &ncp, 0) < 0) {
			return -1;
		}
		pos += n;
	}
	out[len] = 0;
	return (int)len;
}

size_t nz_prefix_bytes(const char *s, size_t len, int n)
{
	size_t i = 0;
	int k = 0;
	while (i < len) {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (k == n)
				return i;
			k++;
		}
		i++;
	}
	return len;
}

int nz_count_cp(const char *s, size_t len)
{
	int k = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			k++;
	return k;
}

static int is_local_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr(".-_+%='!#$&*/?^`{|}~", c) != NULL;
}

static int is_domain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

int nz_find_address(const char *str, size_t len, size_t from, size_t *start,
    size_t *end)
{
	const unsigned char *s = (const unsigned char *)str;
	while (from < len) {
		const unsigned char *at = memchr(s + from, '@', len - from);
		if (!at)
			return 0;
		size_t a = (size_t)(at - s), b = a + 1, l = a;
		while (l > from && is_local_char(s[l - 1]))
			l--;
		while (l < a && !is_alnum(s[l]))
			l++;               /* no leading dots, quotes ... */
		while (b < len && is_domain_char(s[b]))
			b++;
		while (b > a + 1 && !is_alnum(s[b - 1]))
			b--;               /* no trailing dot */
		int alnum_local = 0;
		for (size_t i = l; i < a; i++)
			alnum_local |= is_alnum(s[i]);
		if (alnum_local && b > a + 1) {
			*start = l;
			*end = b;
			return 1;
		}
		from = a + 1;
	}
	return 0;
}
