/*
 * html.c - reduce text/html to plain text for the index and snippets.
 *
 * Tags are dropped; the content of <script> and <style> is dropped with
 * them; comments and
 * <!DOCTYPE>/<?..?> are dropped; block elements (p, div, br, li, tr, h1-6,
 * td ...) become line breaks; character references (&amp; &#233; &#xE9;
 * and the common named ones) are decoded; runs of blanks collapse.
 */
#include "search/search_priv.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <utf8proc.h>

#include "ar.h"

static const struct { const char *name; int cp; } entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "apos", '\'' }, { "nbsp", ' ' }, { "eacute", 0xe9 },
	{ "egrave", 0xe8 }, { "ecirc", 0xea }, { "agrave", 0xe0 },
	{ "aacute", 0xe1 }, { "acirc", 0xe2 }, { "auml", 0xe4 },
	{ "ouml", 0xf6 }, { "uuml", 0xfc }, { "Auml", 0xc4 }, { "Ouml", 0xd6 },
	{ "Uuml", 0xdc }, { "szlig", 0xdf }, { "ccedil", 0xe7 },
	{ "ntilde", 0xf1 }, { "oacute", 0xf3 }, { "iacute", 0xed },
	{ "uacute", 0xfa }, { "Eacute", 0xc9 }, { "copy", 0xa9 },
	{ "reg", 0xae }, { "euro", 0x20ac }, { "mdash", 0x2014 },
	{ "ndash", 0x2013 }, { "hellip", 0x2026 }, { "rsquo", 0x2019 },
	{ "lsquo", 0x2018 }, { "rdquo", 0x201d }, { "ldquo", 0x201c },
	{ "bull", 0x2022 }, { "middot", 0xb7 }, { "laquo", 0xab },
	{ "raquo", 0xbb }, { "shy", 0xad }, { "zwnj", 0x200c },
};

static const char *const blocks[] = { "p", "div", "br", "li", "tr", "td",
	"th", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
	"blockquote", "pre", "hr", "section", "article", "header", "footer",
	"title", "dt", "dd" };

static void put_cp(sbuf_t *b, int32_t cp)
{
	unsigned char u[4];
	if (cp <= 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	utf8proc_ssize_t n = utf8proc_encode_char(cp, u);
	sb_add(b, (const char *)u, (size_t)n);
}

/* &...; at s (len bytes left); returns bytes consumed, 0 if none */
static size_t entity(const char *s, size_t len, sbuf_t *b)
{
	size_t i = 1;
	if (len > 2 && s[1] == '#') {
		int hex = len > 3 && (s[2] == 'x' || s[2] == 'X');
		long v = 0;
		i = hex ? 3 : 2;
		size_t st = i;
		while (i < len && i < st + 8 && (hex ? isxdigit((unsigned char)s[i])
		    : isdigit((unsigned char)s[i]))) {
			int d = isdigit((unsigned char)s[i]) ? s[i] - '0' :
			    (tolower((unsigned char)s[i]) - 'a' + 10);
			v = v * (hex ? 16 : 10) + d;
			i++;
		}
		if (i == st)
			return 0;
		if (i < len && s[i] == ';')
			i++;
		put_cp(b, (int32_t)v);
		return i;
	}
	while (i < len && i < 10 && isalnum((unsigned char)s[i]))
		i++;
	for (size_t k = 0; k < AR_ARRAY_LEN(entities); k++) {
		size_t n = strlen(entities[k].name);
		if (n == i - 1 && strncmp(s + 1, entities[k].name, n) == 0) {
			put_cp(b, entities[k].cp);
			return i < len && s[i] == ';' ? i + 1 : i;
		}
	}
	return 0;
}

static int tag_is(const char *name, size_t n, const char *t)
{
	return strlen(t) == n && strncasecmp(name, t, n) == 0;
}

/* skip to the end of "</name>" starting at s[i]; returns new i */
static size_t skip_element(const char *s, size_t len, size_t i,
    const char *name)
{
	size_t n = strlen(name);
	while (i < len) {
		const char *lt = memchr(s + i, '<', len - i);
		if (!lt)
			return len;
		i = (size_t)(lt - s);
		if (i + 2 + n <= len && s[i + 1] == '/' &&
		    strncasecmp(s + i + 2, name, n) == 0) {
			const char *gt = memchr(s + i, '>', len - i);
			return gt ? (size_t)(gt - s) + 1 : len;
		}
		i++;
	}
	return len;
}

int search_html_to_text(const char *s, size_t len, char **out)
{
	sbuf_t b = { 0 };
	size_t i = 0;
	int space = 1;

	*out = NULL;
	sb_puts(&b, "");
	while (i < len) {
		char c = s[i];
		if (c == '<') {
			if (len - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
				const char *e = memmem(s + i + 4, len - i - 4, "-->", 3);
				i = e ? (size_t)(e - s) + 3 : len;
				continue;
			}
			size_t j = i + 1;
			int close = j < len && s[j] == '/';
			if (close)
				j++;
			size_t ns = j;
			while (j < len && (isalnum((unsigned char)s[j])))
				j++;
			size_t nlen = j - ns;
			if (nlen == 0 && !close && (j >= len || (s[j] != '!' &&
			    s[j] != '?'))) {
				sb_add(&b, "<", 1);          /* a stray '<' */
				space = 0;
				i++;
				continue;
			}
			const char *gt = memchr(s + j, '>', len - j);
			size_t end = gt ? (size_t)(gt - s) + 1 : len;
			if (!close && (tag_is(s + ns, nlen, "script") ||
			    tag_is(s + ns, nlen, "style"))) {
				char nm[8];
				memcpy(nm, s + ns, nlen);
				nm[nlen] = 0;
				end = skip_element(s, len, end, nm);
			}
			for (size_t k = 0; k < AR_ARRAY_LEN(blocks); k++)
				if (tag_is(s + ns, nlen, blocks[k])) {
					if (b.len && b.p[b.len - 1] != '\n')
						sb_add(&b, "\n", 1);
					space = 1;
					break;
				}
			i = end;
			continue;
		}
		if (c == '&') {
			size_t n = entity(s + i, len - i, &b);
			if (n) {
				i += n;
				space = 0;
				continue;
			}
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (!space && !(b.len && b.p[b.len - 1] == '\n'))
				sb_add(&b, " ", 1);
			space = 1;
			i++;
			continue;
		}
		sb_add(&b, &c, 1);
		space = 0;
		i++;
	}
	if (b.oom) {
		free(b.p);
		return AR_ENOMEM;
	}
	*out = b.p;
	return 0;
}
