/*
 * mailgen_lib.c - the message generator behind bench/mailgen and
 * bench/smtpload (see mailgen.h for what a message is made of).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ar.h"
#include "mailgen.h"

#define MAX_TOKEN 30          /* longer "words" are not text */
#define MAX_FILE (64u << 20)  /* a corpus message larger than this: error */

enum { C_PLAIN, C_ALT, C_ATT, C_N };

/* A corpus message's size and the size of its header. */
struct msize {
	uint32_t total, head;
};

struct mailgen {
	struct msize *sizes[C_N];
	size_t nsizes[C_N], capsizes[C_N];
	char *pool;                   /* distinct words, NUL-terminated */
	size_t pool_len, pool_cap;
	uint32_t *woff;               /* word -> offset in pool */
	uint8_t *wlen;                /* word -> length */
	size_t nwords, cap_woff, cap_wlen;
	uint32_t *htab;               /* word id + 1; 0 is empty */
	size_t hcap;
	uint32_t *tok;                /* the text: word ids in corpus order */
	size_t ntok, cap_tok;
	size_t nmsg;
	uint64_t fp;
};

/* --- deterministic randomness ------------------------------------------ */

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct rng { uint64_t s; };

static uint64_t rnd(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return mix64(r->s);
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static double unit(struct rng *r)
{
	return (double)(rnd(r) >> 11) * 0x1.0p-53;
}

static uint64_t msg_key(uint64_t seed, uint64_t i)
{
	return mix64(seed ^ mix64(i ^ 0x6d61696c67656e00ull));
}

/* --- people, places ----------------------------------------------------- */

static const char *const firsts[] = {
	"alice", "bruno", "carla", "david", "elena", "farid", "grace", "hiro",
	"ines", "jonas", "karin", "liam", "maria", "nadia", "oscar", "paula",
	"quentin", "rosa", "samir", "tanja", "ugo", "vera", "walter", "xenia",
	"yusuf", "zoe", "anna", "ben", "chloe", "dmitri", "emma", "felix",
	"greta", "hugo", "ivan", "julia", "kofi", "lena", "marco", "nora",
	"olga", "pedro", "rita", "sven", "tomas", "ulla", "victor", "wanda",
};
static const char *const lasts[] = {
	"anders", "baker", "costa", "dubois", "eriksen", "fischer", "garcia",
	"hansen", "ito", "jensen", "kowalski", "lopez", "meyer", "nakamura",
	"olsen", "petrov", "quinn", "rossi", "schmidt", "tanaka", "ueda",
	"vogel", "weber", "xu", "yilmaz", "zimmer", "adler", "brandt", "cohen",
	"dalton", "engel", "fuchs", "gallo", "horvat", "iversen", "jung",
	"keller", "lang", "moreau", "novak", "ortiz", "park", "ricci",
	"silva", "torres", "urban", "vidal", "wolf",
};
static const char *const domains[] = {
	"example.com", "example.org", "example.net", "acme.example",
	"globex.example", "initech.example", "umbrella.example",
	"hooli.example", "stark.example", "wayne.example", "wonka.example",
	"tyrell.example", "cyberdyne.example", "soylent.example",
	"vandelay.example", "kramerica.example", "dunder.example",
	"pied-piper.example", "massive.example", "oscorp.example",
	"aperture.example", "monarch.example", "gringotts.example",
	"nakatomi.example",
};
static const char *const mailers[] = {
	"Microsoft Outlook 16.0", "Apple Mail (2.3731)", "Thunderbird 115.6.0",
	"Evolution 3.46.4", "Mutt/2.2.9", "Roundcube Webmail/1.6.5",
};
static const struct { const char *type, *ext; } atts[] = {
	{ "application/pdf", "pdf" },
	{ "application/vnd.openxmlformats-officedocument.wordprocessingml"
	  ".document", "docx" },
	{ "application/vnd.ms-excel", "xls" },
	{ "image/jpeg", "jpg" },
	{ "application/zip", "zip" },
	{ "text/plain", "txt" },      /* words: attachment text is indexed */
};

/* --- the model: reading the corpus ------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

static int hgrow(mailgen_t *g)
{
	size_t ncap = g->hcap ? g->hcap * 2 : 1u << 16;
	uint32_t *nt = calloc(ncap, sizeof *nt);
	if (!nt)
		return AR_ENOMEM;
	for (size_t w = 0; w < g->nwords; w++) {
		uint64_t h = fnv(0xcbf29ce484222325ull, g->pool + g->woff[w],
		    g->wlen[w]);
		size_t k = h & (ncap - 1);
		while (nt[k])
			k = (k + 1) & (ncap - 1);
		nt[k] = (uint32_t)w + 1;
	}
	free(g->htab);
	g->htab = nt;
	g->hcap = ncap;
	return 0;
}

/* Intern word w (n bytes) and append it to the text. */
static int add_token(mailgen_t *g, const char *w, size_t n)
{
	uint64_t h = fnv(0xcbf29ce484222325ull, w, n);
	size_t k;
	uint32_t id;

	if ((g->nwords + 1) * 2 > g->hcap && hgrow(g))
		return AR_ENOMEM;
	for (k = h & (g->hcap - 1); g->htab[k]; k = (k + 1) & (g->hcap - 1)) {
		id = g->htab[k] - 1;
		if (g->wlen[id] == n && !memcmp(g->pool + g->woff[id], w, n))
			goto found;
	}
	if (ar_grow((void **)&g->woff, &g->cap_woff, g->nwords, sizeof *g->woff) ||
	    ar_grow((void **)&g->wlen, &g->cap_wlen, g->nwords, sizeof *g->wlen))
		return AR_ENOMEM;
	while (g->pool_len + n + 1 > g->pool_cap) {
		size_t nc = g->pool_cap ? g->pool_cap * 2 : 1u << 20;
		char *np = realloc(g->pool, nc);
		if (!np)
			return AR_ENOMEM;
		g->pool = np;
		g->pool_cap = nc;
	}
	id = (uint32_t)g->nwords++;
	g->woff[id] = (uint32_t)g->pool_len;
	g->wlen[id] = (uint8_t)n;
	memcpy(g->pool + g->pool_len, w, n);
	g->pool[g->pool_len + n] = 0;
	g->pool_len += n + 1;
	g->htab[k] = id + 1;
found:
	if (ar_grow((void **)&g->tok, &g->cap_tok, g->ntok, sizeof *g->tok))
		return AR_ENOMEM;
	g->tok[g->ntok++] = id;
	return 0;
}

static int utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], k;
		if (c < 0x80) { i++; continue; }
		if (c >= 0xc2 && c <= 0xdf) k = 1;
		else if (c >= 0xe0 && c <= 0xef) k = 2;
		else if (c >= 0xf0 && c <= 0xf4) k = 3;
		else return 0;
		for (unsigned j = 1; j <= k; j++)
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return 0;
		i += k + 1;
	}
	return 1;
}

/* Is this whitespace-delimited piece of a line a word of text? */
static int is_word(const char *w, size_t n)
{
	size_t letters = 0;

	if (n == 0 || n > MAX_TOKEN || w[0] == '.' || w[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)w[i];
		if (c < 0x20 || c == 0x7f || strchr("<>=&\\{}|^~`*#_", c))
			return 0;
		if (isalpha(c) || c >= 0x80)
			letters++;
	}
	if (!letters && n > 8)        /* numbers, dates: short ones only */
		return 0;
	return utf8_ok((const unsigned char *)w, n);
}

static int add_line(mailgen_t *g, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		size_t j = i;
		while (j < n && s[j] != ' ' && s[j] != '\t')
			j++;
		if (j > i && is_word(s + i, j - i) && add_token(g, s + i, j - i))
			return AR_ENOMEM;
		i = j;
	}
	return 0;
}

/* The value of header name (lower-case, with ':') in head[0..n), first
 * line only, into out; empty when absent. */
static void header_value(const char *head, size_t n, const char *name,
    char *out, size_t len)
{
	size_t nl = strlen(name);

	out[0] = 0;
	for (size_t i = 0; i < n;) {
		const char *e = memchr(head + i, '\n', n - i);
		size_t ll = e ? (size_t)(e - head - i) : n - i;
		if (ll > nl && !strncasecmp(head + i, name, nl)) {
			size_t a = i + nl, b = i + ll;
			while (a < b && (head[a] == ' ' || head[a] == '\t'))
				a++;
			while (b > a && (head[b - 1] == '\r' || head[b - 1] == ' '))
				b--;
			size_t m = b - a < len - 1 ? b - a : len - 1;
			memcpy(out, head + a, m);
			out[m] = 0;
			for (size_t k = 0; k < m; k++)
				out[k] = (char)tolower((unsigned char)out[k]);
			return;
		}
		i += ll + 1;
	}
}

/* Text we take words from: text/plain (or no type), neither base64 nor
 * quoted-printable. */
static int text_part(const char *ct, const char *cte)
{
	return (!ct[0] || !strncmp(ct, "text/plain", 10)) &&
	    !strstr(cte, "base64") && !strstr(cte, "quoted");
}

static int read_message(mailgen_t *g, char *m, size_t n)
{
	char ct[128], cte[64];
	char *sep = strstr(m, "\n\n");
	char *crsep = strstr(m, "\r\n\r\n");
	size_t hl, i;
	int cls, skip, in_head = 0;

	if (crsep && (!sep || crsep < sep))
		sep = crsep + 1;
	hl = sep ? (size_t)(sep - m) + 1 : n;
	header_value(m, hl, "content-type:", ct, sizeof ct);
	header_value(m, hl, "content-transfer-encoding:", cte, sizeof cte);
	if (strcasestr(m, "content-disposition: attachment") ||
	    strcasestr(m, "filename="))
		cls = C_ATT;
	else if (!strncmp(ct, "multipart/", 10))
		cls = C_ALT;
	else
		cls = C_PLAIN;
	if (ar_grow((void **)&g->sizes[cls], &g->capsizes[cls], g->nsizes[cls],
	    sizeof **g->sizes))
		return AR_ENOMEM;
	g->sizes[cls][g->nsizes[cls]++] = (struct msize){ (uint32_t)n,
	    (uint32_t)hl };
	g->nmsg++;

	/* body lines: a boundary line starts part headers; a part's text is
	 * taken when text_part() says so */
	skip = !strncmp(ct, "multipart/", 10) ? 1 : !text_part(ct, cte);
	char pct[128] = "", pcte[64] = "";
	for (i = hl + 1; i < n;) {
		char *e = memchr(m + i, '\n', n - i);
		size_t ll = e ? (size_t)(e - m - i) : n - i;
		const char *s = m + i;
		size_t l = ll && s[ll - 1] == '\r' ? ll - 1 : ll;
		i += ll + 1;
		if (l > 2 && s[0] == '-' && s[1] == '-' && !memchr(s, ' ', l)) {
			in_head = 1;
			pct[0] = pcte[0] = 0;
			skip = 1;
			continue;
		}
		if (in_head) {
			if (l == 0) {
				in_head = 0;
				skip = !text_part(pct, pcte);
			} else if (l > 13 && !strncasecmp(s, "content-type:", 13)) {
				header_value(s, l, "content-type:", pct, sizeof pct);
			} else if (l > 26 && !strncasecmp(s,
			    "content-transfer-encoding:", 26)) {
				header_value(s, l, "content-transfer-encoding:",
				    pcte, sizeof pcte);
			}
			continue;
		}
		if (!skip && add_line(g, s, l))
			return AR_ENOMEM;
	}
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int mailgen_open(mailgen_t **out, const char *dir, char *err, size_t errlen)
{
	mailgen_t *g = calloc(1, sizeof *g);
	char **names = NULL, path[4096];
	size_t nn = 0, cap = 0;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	*out = NULL;
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return AR_ENOMEM;
	}
	if (!(d = opendir(dir))) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		free(g);
		return errno == ENOENT ? AR_ENOENT : AR_EIO;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".eml"))
			continue;
		if (ar_grow((void **)&names, &cap, nn, sizeof *names) ||
		    !(names[nn] = strdup(de->d_name))) {
			rc = AR_ENOMEM;
			break;
		}
		nn++;
	}
	closedir(d);
	if (!rc && nn == 0) {
		snprintf(err, errlen, "%s: no .eml file (unpack the sample "
		    "corpus there)", dir);
		rc = AR_ENOENT;
	}
	if (!rc)
		qsort(names, nn, sizeof *names, name_cmp);
	for (size_t k = 0; !rc && k < nn; k++) {
		unsigned char *buf;
		size_t len;
		if ((rc = ar_path(path, sizeof path, "%s/%s", dir, names[k])) ||
		    (rc = ar_file_read(path, MAX_FILE, &buf, &len))) {
			snprintf(err, errlen, "%s/%s: %s", dir, names[k],
			    ar_strerror(rc));
			break;
		}
		char *m = realloc(buf, len + 1);   /* NUL for strstr */
		if (!m) {
			free(buf);
			rc = AR_ENOMEM;
			break;
		}
		m[len] = 0;
		rc = read_message(g, m, len);
		free(m);
	}
	for (size_t k = 0; k < nn; k++)
		free(names[k]);
	free(names);
	if (!rc && g->ntok < 1000) {
		snprintf(err, errlen, "%s: only %zu words of text in %zu "
		    "messages", dir, g->ntok, g->nmsg);
		rc = AR_EINVAL;
	}
	if (!rc && !g->nsizes[C_PLAIN]) {
		snprintf(err, errlen, "%s: no single-part text message", dir);
		rc = AR_EINVAL;
	}
	if (rc) {
		if (rc == AR_ENOMEM)
			snprintf(err, errlen, "out of memory reading %s", dir);
		mailgen_close(g);
		return rc;
	}
	uint64_t h = 0xcbf29ce484222325ull;
	for (int c = 0; c < C_N; c++)
		h = fnv(h, g->sizes[c], g->nsizes[c] * sizeof **g->sizes);
	h = fnv(h, g->tok, g->ntok * sizeof *g->tok);
	g->fp = fnv(h, g->pool, g->pool_len);
	*out = g;
	return 0;
}

void mailgen_close(mailgen_t *g)
{
	if (!g)
		return;
	for (int c = 0; c < C_N; c++)
		free(g->sizes[c]);
	free(g->pool);
	free(g->woff);
	free(g->wlen);
	free(g->htab);
	free(g->tok);
	free(g);
}

void mailgen_info(const mailgen_t *g, mailgen_info_t *info)
{
	info->messages = g->nmsg;
	info->plain = g->nsizes[C_PLAIN];
	info->alternative = g->nsizes[C_ALT];
	info->attachment = g->nsizes[C_ATT];
	info->words = g->nwords;
	info->tokens = g->ntok;
	info->fingerprint = g->fp;
}

/* --- generating --------------------------------------------------------- */

struct gen {
	const mailgen_t *g;
	mailgen_buf_t *b;
	struct rng r;
	const char *nl;
	size_t nll;
	int oom;
};

static void put(struct gen *x, const void *p, size_t n)
{
	mailgen_buf_t *b = x->b;

	if (x->oom)
		return;
	if (b->len + n > b->cap) {
		size_t nc = b->cap ? b->cap : 16384;
		while (nc < b->len + n)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (!np) {
			x->oom = 1;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void puts_(struct gen *x, const char *s)
{
	put(x, s, strlen(s));
}

static void nl(struct gen *x)
{
	put(x, x->nl, x->nll);
}

__attribute__((format(printf, 2, 3)))
static void putf(struct gen *x, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		put(x, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void person(struct gen *x, int display)
{
	const char *f = firsts[below(&x->r, AR_ARRAY_LEN(firsts))];
	const char *l = lasts[below(&x->r, AR_ARRAY_LEN(lasts))];
	const char *d = domains[below(&x->r, AR_ARRAY_LEN(domains))];

	if (display)
		putf(x, "%c%s %c%s <%s.%s@%s>", toupper((unsigned char)f[0]),
		    f + 1, toupper((unsigned char)l[0]), l + 1, f, l, d);
	else
		putf(x, "%s.%s@%s", f, l, d);
}

static void date_str(int64_t t, int tz_min, char *out, size_t len)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t lt = (time_t)(t + tz_min * 60);
	struct tm tm;
	int a = tz_min < 0 ? -tz_min : tz_min;

	gmtime_r(&lt, &tm);
	snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d",
	    wd[tm.tm_wday], tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, tz_min < 0 ? '-' : '+', a / 60,
	    a % 60);
}

/* Words of text, about target bytes, wrapped at 72 columns; runs of
 * consecutive corpus words; html: paragraphs in <p>. */
static void text(struct gen *x, size_t target, int html)
{
	const mailgen_t *g = x->g;
	size_t written = 0, col = 0;
	int para_open = 0;

	if (target < 16)
		target = 16;
	while (written < target && !x->oom) {
		size_t run = 5 + below(&x->r, 36);
		size_t pos = below(&x->r, g->ntok - run);
		if (html && !para_open) {
			puts_(x, "<p>");
			col = 3;
			para_open = 1;
		}
		for (size_t k = 0; k < run && written < target; k++) {
			uint32_t w = g->tok[pos + k];
			size_t wl = g->wlen[w];
			if (col && col + 1 + wl > 72) {
				nl(x);
				col = 0;
				written++;
			} else if (col) {
				put(x, " ", 1);
				col++;
				written++;
			}
			put(x, g->pool + g->woff[w], wl);
			col += wl;
			written += wl;
		}
		if (below(&x->r, 4) == 0 || written >= target) {
			if (html) {
				puts_(x, "</p>");
				para_open = 0;
			}
			nl(x);
			if (written < target)
				nl(x);
			col = 0;
			written += 2;
		}
	}
}

/* Subject: a run of ASCII corpus words. */
static void subject(struct gen *x)
{
	const mailgen_t *g = x->g;
	static const char *const pre[] = { "", "", "", "Re: ", "RE: ",
	    "Fwd: " };
	size_t run = 3 + below(&x->r, 7), pos = below(&x->r, g->ntok - run);
	size_t words = 0;

	puts_(x, "Subject: ");
	puts_(x, pre[below(&x->r, AR_ARRAY_LEN(pre))]);
	for (size_t k = 0; k < run; k++) {
		uint32_t w = g->tok[pos + k];
		const char *s = g->pool + g->woff[w];
		int ascii = 1;
		for (size_t j = 0; j < g->wlen[w]; j++)
			ascii &= (unsigned char)s[j] < 0x80;
		if (!ascii)
			continue;
		if (words++)
			put(x, " ", 1);
		put(x, s, g->wlen[w]);
	}
	if (!words)
		puts_(x, "(no subject)");
	nl(x);
}

/* n random bytes, base64, 76 columns; each line after lead (first line:
 * lead1), for folded header fields. */
static void base64_lead(struct gen *x, size_t n, const char *lead1,
    const char *lead)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[57];
	char line[80];

	while (n && !x->oom) {
		size_t m = n < 57 ? n : 57, o = 0;
		for (size_t k = 0; k < m; k += 8) {
			uint64_t v = rnd(&x->r);
			memcpy(raw + k, &v, m - k < 8 ? m - k : 8);
		}
		for (size_t k = 0; k < m; k += 3) {
			unsigned v = (unsigned)raw[k] << 16;
			if (k + 1 < m) v |= (unsigned)raw[k + 1] << 8;
			if (k + 2 < m) v |= raw[k + 2];
			line[o++] = t[v >> 18 & 63];
			line[o++] = t[v >> 12 & 63];
			line[o++] = k + 1 < m ? t[v >> 6 & 63] : '=';
			line[o++] = k + 2 < m ? t[v & 63] : '=';
		}
		puts_(x, lead1);
		lead1 = lead;
		put(x, line, o);
		nl(x);
		n -= m;
	}
}

static void base64(struct gen *x, size_t n)
{
	base64_lead(x, n, "", "");
}

/* A file name of corpus letters: "quarterly-report.pdf". */
static void filename(struct gen *x, const char *ext)
{
	const mailgen_t *g = x->g;
	size_t words = 1 + below(&x->r, 3), got = 0;

	for (size_t k = 0; k < words * 4 && got < words; k++) {
		uint32_t w = g->tok[below(&x->r, g->ntok)];
		const char *s = g->pool + g->woff[w];
		char clean[MAX_TOKEN + 1];
		size_t c = 0;
		for (size_t j = 0; j < g->wlen[w]; j++)
			if (isalnum((unsigned char)s[j]))
				clean[c++] = (char)tolower((unsigned char)s[j]);
		if (c < 2)
			continue;
		if (got++)
			put(x, "-", 1);
		put(x, clean, c);
	}
	if (!got)
		puts_(x, "document");
	putf(x, ".%s", ext);
}

/* Header fields that carry no indexed text, until the header is about
 * `need` bytes longer: relay hops, DKIM and ARC signatures, X- fields (as
 * in the corpus, whose headers are 2.2 KB at the median). */
static void pad_header(struct gen *x, size_t need, const char *date)
{
	size_t start = x->b->len;

	while (x->b->len - start + 150 < need && !x->oom) {
		uint64_t what = below(&x->r, 8);
		const char *d = domains[below(&x->r, AR_ARRAY_LEN(domains))];
		if (what < 5) {
			unsigned h = (unsigned)below(&x->r, 64);
			putf(x, "Received: from relay%u.%s (relay%u.%s "
			    "[10.%u.%u.%u])", h, d, h, d,
			    (unsigned)below(&x->r, 256),
			    (unsigned)below(&x->r, 256),
			    1 + (unsigned)below(&x->r, 254));
			nl(x);
			putf(x, "\tby mx%u.%s (Postfix) with ESMTPS id %010llX",
			    (unsigned)below(&x->r, 9),
			    domains[below(&x->r, AR_ARRAY_LEN(domains))],
			    (unsigned long long)(rnd(&x->r) >> 24));
			nl(x);
			putf(x, "\tfor <%s.%s@%s>; %s",
			    firsts[below(&x->r, AR_ARRAY_LEN(firsts))],
			    lasts[below(&x->r, AR_ARRAY_LEN(lasts))], d, date);
			nl(x);
		} else if (what < 7) {
			putf(x, "%s=%u; a=rsa-sha256; c=relaxed/relaxed; "
			    "d=%s; s=sel%u;", what == 5 ? "DKIM-Signature: v" :
			    "ARC-Message-Signature: i", 1 + (unsigned)(what == 6 ?
			    below(&x->r, 3) : 0), d, (unsigned)below(&x->r, 4));
			nl(x);
			puts_(x, "\th=from:to:subject:date:message-id;");
			nl(x);
			base64_lead(x, 32, "\tbh=", "\t");
			base64_lead(x, 171, "\tb=", "\t");
		} else {
			putf(x, "X-MS-Exchange-Organization-Network-Message-Id: "
			    "%08llx-%04llx-%04llx-%04llx-%012llx",
			    (unsigned long long)(rnd(&x->r) >> 32),
			    (unsigned long long)(rnd(&x->r) >> 48),
			    (unsigned long long)(rnd(&x->r) >> 48),
			    (unsigned long long)(rnd(&x->r) >> 48),
			    (unsigned long long)(rnd(&x->r) >> 16));
			nl(x);
			putf(x, "X-Spam-Status: No, score=%d.%d required=5.0 "
			    "tests=BAYES_%02u,DKIM_SIGNED,DKIM_VALID autolearn=ham",
			    (int)below(&x->r, 5) - 2, (int)below(&x->r, 10),
			    (unsigned)below(&x->r, 100));
			nl(x);
		}
	}
}

static int is_big(uint64_t seed, uint64_t i)
{
	uint64_t b = i / MAILGEN_BIG_EVERY;
	return i % MAILGEN_BIG_EVERY ==
	    mix64(msg_key(seed, b) ^ 0x626967ull) % MAILGEN_BIG_EVERY;
}

void mailgen_message_id(uint64_t seed, uint64_t i, char *out, size_t len)
{
	uint64_t k = msg_key(seed, i);
	snprintf(out, len, "mg-%llu-%llu-%08x@%s", (unsigned long long)seed,
	    (unsigned long long)i, (unsigned)(mix64(k) & 0xffffffffu),
	    domains[k % AR_ARRAY_LEN(domains)]);
}

int mailgen_parse_id(const char *id, uint64_t *seed, uint64_t *i)
{
	char *e;

	if (*id == '<')
		id++;
	if (strncmp(id, "mg-", 3) || !isdigit((unsigned char)id[3]))
		return AR_EINVAL;
	errno = 0;
	*seed = strtoull(id + 3, &e, 10);
	if (errno || *e != '-' || !isdigit((unsigned char)e[1]))
		return AR_EINVAL;
	*i = strtoull(e + 1, &e, 10);
	if (errno || *e != '-')
		return AR_EINVAL;
	return 0;
}

int mailgen_message(const mailgen_t *g, uint64_t seed, uint64_t i,
    unsigned flags, mailgen_buf_t *out, enum mailgen_kind *kindp)
{
	struct gen x = { .g = g, .b = out, .r = { msg_key(seed, i) } };
	enum mailgen_kind kind;
	char id[128], date[64], boundary[40];
	size_t target, head, head_target = 0;
	int64_t t;
	int tz;
	static const int tzs[] = { 0, 0, -300, -360, -420, -480, 60, 120, 330,
	    540 };

	x.nl = flags & MAILGEN_CRLF ? "\r\n" : "\n";
	x.nll = strlen(x.nl);
	out->len = 0;

	/* the class and size: the corpus's frequencies and sizes */
	if (is_big(seed, i)) {
		kind = MAILGEN_BIG;
		target = (size_t)exp(log(1e6) + unit(&x.r) * log(10.0));
	} else {
		uint64_t c = below(&x.r, g->nmsg);
		int cls = c < g->nsizes[C_PLAIN] ? C_PLAIN :
		    c < g->nsizes[C_PLAIN] + g->nsizes[C_ALT] ? C_ALT : C_ATT;
		kind = cls == C_PLAIN ? MAILGEN_PLAIN : cls == C_ALT ?
		    MAILGEN_ALTERNATIVE : MAILGEN_ATTACHMENT;
		const struct msize *m = &g->sizes[cls][below(&x.r,
		    g->nsizes[cls])];
		target = m->total;
		head_target = m->head;
	}
	if (kindp)
		*kindp = kind;
	mailgen_message_id(seed, i, id, sizeof id);
	t = 1672531200 + (int64_t)below(&x.r, 3 * 365 * 86400ull);
	tz = tzs[below(&x.r, AR_ARRAY_LEN(tzs))];
	date_str(t, tz, date, sizeof date);
	snprintf(boundary, sizeof boundary, "=_mg_%016llx",
	    (unsigned long long)rnd(&x.r));

	/* headers */
	unsigned host = (unsigned)below(&x.r, 16);
	const char *hd = domains[below(&x.r, AR_ARRAY_LEN(domains))];
	putf(&x, "Received: from mail%u.%s (mail%u.%s [10.%u.%u.%u])", host,
	    hd, host, hd, (unsigned)below(&x.r, 256),
	    (unsigned)below(&x.r, 256), 1 + (unsigned)below(&x.r, 254));
	nl(&x);
	putf(&x, "\tby mx.bench.example with ESMTPS id %012llx;",
	    (unsigned long long)(rnd(&x.r) >> 16));
	nl(&x);
	putf(&x, "\t%s", date);
	nl(&x);
	putf(&x, "Message-ID: <%s>", id);
	nl(&x);
	putf(&x, "Date: %s", date);
	nl(&x);
	puts_(&x, "From: ");
	person(&x, 1);
	nl(&x);
	puts_(&x, "To: ");
	for (uint64_t k = 0, n = 1 + below(&x.r, 3); k < n; k++) {
		if (k) {
			puts_(&x, ",");
			nl(&x);
			puts_(&x, "\t");
		}
		person(&x, 1);
	}
	nl(&x);
	if (below(&x.r, 4) == 0) {
		puts_(&x, "Cc: ");
		person(&x, 1);
		nl(&x);
	}
	subject(&x);
	if (below(&x.r, 3) == 0) {
		putf(&x, "X-Mailer: %s",
		    mailers[below(&x.r, AR_ARRAY_LEN(mailers))]);
		nl(&x);
	}
	/* the corpus message's header size (less ~80 bytes of MIME fields) */
	if (head_target > out->len + 100)
		pad_header(&x, head_target - out->len - 100, date);
	puts_(&x, "MIME-Version: 1.0");
	nl(&x);
	head = out->len;
	size_t body = target > head + 200 ? target - head : 200;

	/* body */
	switch (kind) {
	case MAILGEN_PLAIN:
		puts_(&x, "Content-Type: text/plain; charset=utf-8");
		nl(&x);
		puts_(&x, "Content-Transfer-Encoding: 8bit");
		nl(&x);
		nl(&x);
		text(&x, body, 0);
		break;
	case MAILGEN_ALTERNATIVE:
		putf(&x, "Content-Type: multipart/alternative; "
		    "boundary=\"%s\"", boundary);
		nl(&x); nl(&x);
		putf(&x, "--%s", boundary); nl(&x);
		puts_(&x, "Content-Type: text/plain; charset=utf-8"); nl(&x);
		puts_(&x, "Content-Transfer-Encoding: 8bit"); nl(&x); nl(&x);
		{
			/* the same words twice: the text part, then the HTML */
			struct rng save = x.r;
			text(&x, body * 9 / 20, 0);
			putf(&x, "--%s", boundary); nl(&x);
			puts_(&x, "Content-Type: text/html; charset=utf-8");
			nl(&x);
			puts_(&x, "Content-Transfer-Encoding: 8bit"); nl(&x);
			nl(&x);
			puts_(&x, "<html><body>"); nl(&x);
			struct rng after = x.r;
			x.r = save;
			text(&x, body * 9 / 20, 1);
			x.r = after;
			puts_(&x, "</body></html>"); nl(&x);
		}
		putf(&x, "--%s--", boundary); nl(&x);
		break;
	case MAILGEN_ATTACHMENT:
	case MAILGEN_BIG: {
		size_t tl, al;
		int a;
		if (kind == MAILGEN_BIG) {
			tl = 1000 + below(&x.r, 3000);
			a = (int)below(&x.r, AR_ARRAY_LEN(atts) - 1);
		} else {
			tl = (size_t)((double)body * (0.1 + 0.3 * unit(&x.r)));
			if (tl < 200)
				tl = 200;
			a = (int)below(&x.r, AR_ARRAY_LEN(atts));
		}
		al = body > tl + 300 ? body - tl - 300 : 64;
		putf(&x, "Content-Type: multipart/mixed; boundary=\"%s\"",
		    boundary);
		nl(&x); nl(&x);
		puts_(&x, "This is a multi-part message in MIME format.");
		nl(&x); nl(&x);
		putf(&x, "--%s", boundary); nl(&x);
		puts_(&x, "Content-Type: text/plain; charset=utf-8"); nl(&x);
		puts_(&x, "Content-Transfer-Encoding: 8bit"); nl(&x); nl(&x);
		text(&x, tl, 0);
		putf(&x, "--%s", boundary); nl(&x);
		putf(&x, "Content-Type: %s; name=\"", atts[a].type);
		size_t fn = out->len;
		filename(&x, atts[a].ext);
		char fname[128];
		size_t fl = out->len - fn < sizeof fname - 1 ?
		    out->len - fn : sizeof fname - 1;
		if (!x.oom)
			memcpy(fname, out->p + fn, fl);
		fname[x.oom ? 0 : fl] = 0;
		puts_(&x, "\""); nl(&x);
		putf(&x, "Content-Disposition: attachment; filename=\"%s\"",
		    fname);
		nl(&x);
		if (!strcmp(atts[a].ext, "txt")) {
			puts_(&x, "Content-Transfer-Encoding: 8bit"); nl(&x);
			nl(&x);
			text(&x, al, 0);
		} else {
			puts_(&x, "Content-Transfer-Encoding: base64"); nl(&x);
			nl(&x);
			base64(&x, al * 3 / 4 * 76 / 78);
		}
		putf(&x, "--%s--", boundary); nl(&x);
		break;
	}
	}
	return x.oom ? AR_ENOMEM : 0;
}
