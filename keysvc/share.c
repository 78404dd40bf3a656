/*
 * share.c - see share.h.
 */
#include "keysvc/share.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libgfshare.h>
#include <sodium.h>

#include "ar.h"

#define CHECK_LABEL  "archived/keysvc/share-check/v1"
#define COMMIT_LABEL "archived/keysvc/share-commit/v1"
#define CHECK_LEN    8
#define TITLE        "archive-keysvc backup share"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* libgfshare draws its polynomial coefficients (and the bytes it
 * overwrites freed buffers with) from this hook. */
static void fill_rand(unsigned char *buf, unsigned int n)
{
	randombytes_buf(buf, n);
}

static void label_hash(const char *label, const struct share *s,
    uint8_t *out, size_t outlen)
{
	crypto_generichash_state st;
	uint8_t hdr[8 + 3];

	ar_put_u64(hdr, (uint64_t)s->created);
	hdr[8] = (uint8_t)s->index;
	hdr[9] = (uint8_t)s->m;
	hdr[10] = (uint8_t)s->n;
	crypto_generichash_init(&st, NULL, 0, outlen);
	crypto_generichash_update(&st, (const uint8_t *)label,
	    strlen(label) + 1);
	crypto_generichash_update(&st, s->backup_id, SHARE_ID_LEN);
	crypto_generichash_update(&st, hdr, sizeof hdr);
	crypto_generichash_update(&st, s->data, SHARE_SECRET_LEN);
	crypto_generichash_final(&st, out, outlen);
	sodium_memzero(&st, sizeof st);
}

void share_commitment(const struct share *s, uint8_t out[32])
{
	label_hash(COMMIT_LABEL, s, out, 32);
}

int share_split(const uint8_t secret[SHARE_SECRET_LEN],
    const uint8_t backup_id[SHARE_ID_LEN], int64_t created, unsigned m,
    unsigned n, struct share *out)
{
	unsigned char nrs[SHARE_MAX_N], *sec;
	gfshare_ctx *ctx;

	if (m < SHARE_MIN_M || m > n || n > SHARE_MAX_N)
		return AR_EINVAL;
	for (unsigned i = 0; i < n; i++)
		nrs[i] = (unsigned char)(i + 1);
	gfshare_fill_rand = fill_rand;
	ctx = gfshare_ctx_init_enc(nrs, n, (unsigned char)m, SHARE_SECRET_LEN);
	if (!ctx)
		return errno == EINVAL ? AR_EINVAL : AR_ENOMEM;
	/* the library's prototype takes a non-const pointer */
	sec = sodium_malloc(SHARE_SECRET_LEN);
	if (!sec) {
		gfshare_ctx_free(ctx);
		return AR_ENOMEM;
	}
	memcpy(sec, secret, SHARE_SECRET_LEN);
	gfshare_ctx_enc_setsecret(ctx, sec);
	sodium_free(sec);
	for (unsigned i = 0; i < n; i++) {
		memcpy(out[i].backup_id, backup_id, SHARE_ID_LEN);
		out[i].created = created;
		out[i].index = i + 1;
		out[i].m = m;
		out[i].n = n;
		gfshare_ctx_enc_getshare(ctx, (unsigned char)i, out[i].data);
	}
	gfshare_ctx_free(ctx);   /* overwrites the coefficients */
	return 0;
}

int share_combine(const struct share *s, size_t k,
    uint8_t secret[SHARE_SECRET_LEN], char *err, size_t errlen)
{
	char a[2 * SHARE_ID_LEN + 1], b[2 * SHARE_ID_LEN + 1];
	unsigned char nrs[SHARE_MAX_N];
	gfshare_ctx *ctx;
	unsigned m;

	if (k == 0) {
		set_err(err, errlen, "no share given");
		return AR_EINVAL;
	}
	m = s[0].m;
	for (size_t i = 0; i < k; i++) {
		if (memcmp(s[i].backup_id, s[0].backup_id, SHARE_ID_LEN) != 0) {
			set_err(err, errlen, "share %u belongs to backup %s, "
			    "share %u to backup %s: shares of different "
			    "backups cannot be combined", s[i].index,
			    ar_hex(s[i].backup_id, SHARE_ID_LEN, a),
			    s[0].index, ar_hex(s[0].backup_id, SHARE_ID_LEN,
			    b));
			return AR_EINVAL;
		}
		if (s[i].m != m || s[i].n != s[0].n ||
		    s[i].created != s[0].created) {
			set_err(err, errlen, "share %u says %u of %u needed, "
			    "share %u says %u of %u: they are not of the same "
			    "split", s[i].index, s[i].m, s[i].n, s[0].index,
			    m, s[0].n);
			return AR_EINVAL;
		}
		if (s[i].index < 1 || s[i].index > s[i].n ||
		    s[i].m < SHARE_MIN_M || s[i].m > s[i].n ||
		    s[i].n > SHARE_MAX_N) {
			set_err(err, errlen, "share %u: index, threshold or "
			    "count out of range", s[i].index);
			return AR_EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (s[j].index == s[i].index) {
				set_err(err, errlen, "share %u is given twice",
				    s[i].index);
				return AR_EINVAL;
			}
	}
	if (k < m) {
		set_err(err, errlen, "%u shares are needed to restore backup "
		    "%s, %zu given", m, ar_hex(s[0].backup_id, SHARE_ID_LEN,
		    a), k);
		return AR_EINVAL;
	}
	for (unsigned i = 0; i < m; i++)
		nrs[i] = (unsigned char)s[i].index;
	gfshare_fill_rand = fill_rand;
	ctx = gfshare_ctx_init_dec(nrs, m, SHARE_SECRET_LEN);
	if (!ctx)
		return AR_ENOMEM;
	for (unsigned i = 0; i < m; i++)
		gfshare_ctx_dec_giveshare(ctx, (unsigned char)i,
		    (unsigned char *)s[i].data);
	gfshare_ctx_dec_extract(ctx, secret);
	gfshare_ctx_free(ctx);   /* overwrites the shares it held */
	return 0;
}

/* --- text form --------------------------------------------------------- */

int share_format(const struct share *s, char *buf, size_t len)
{
	char id[2 * SHARE_ID_LEN + 1], when[32], data[2 * SHARE_SECRET_LEN + 1];
	char groups[2 * SHARE_SECRET_LEN + SHARE_SECRET_LEN / 4 + 1];
	char chk[2 * CHECK_LEN + 1];
	uint8_t check[CHECK_LEN];
	size_t g = 0;
	int n;

	label_hash(CHECK_LABEL, s, check, sizeof check);
	ar_hex(s->data, SHARE_SECRET_LEN, data);
	for (size_t i = 0; i < 2 * SHARE_SECRET_LEN; i++) {
		if (i && i % 8 == 0)
			groups[g++] = ' ';
		groups[g++] = data[i];
	}
	groups[g] = '\0';
	n = snprintf(buf, len,
	    TITLE "\n"
	    "backup:  %s\n"
	    "created: %s\n"
	    "share:   %u\n"
	    "shares:  %u\n"
	    "needed:  %u\n"
	    "data:    %s\n"
	    "check:   %s\n",
	    ar_hex(s->backup_id, SHARE_ID_LEN, id),
	    ar_time_fmt(s->created, when, sizeof when), s->index, s->n, s->m,
	    groups, ar_hex(check, CHECK_LEN, chk));
	sodium_memzero(data, sizeof data);
	sodium_memzero(groups, sizeof groups);
	if (n < 0 || (size_t)n >= len)
		return AR_ETOOBIG;
	return n;
}

/* Hex digits of v (spaces and tabs skipped) into out (exactly outlen
 * bytes).  0 or AR_EINVAL. */
static int hex_spaced(const char *v, uint8_t *out, size_t outlen)
{
	char digits[2 * SHARE_SECRET_LEN + 1];
	size_t n = 0;
	int rc;

	for (; *v; v++) {
		if (*v == ' ' || *v == '\t')
			continue;
		if (n >= 2 * outlen || n >= sizeof digits - 1) {
			sodium_memzero(digits, sizeof digits);
			return AR_EINVAL;
		}
		digits[n++] = *v;
	}
	digits[n] = '\0';
	rc = n == 2 * outlen ? ar_unhex(digits, out, outlen) : AR_EINVAL;
	sodium_memzero(digits, sizeof digits);
	return rc;
}

static int parse_small(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long x;
	if (*v < '0' || *v > '9')
		return AR_EINVAL;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return AR_EINVAL;
	*out = (unsigned)x;
	return 0;
}

static int parse_time(const char *v, int64_t *out)
{
	struct tm tm;
	char *end;
	memset(&tm, 0, sizeof tm);
	end = strptime(v, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return AR_EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

enum { F_BACKUP, F_CREATED, F_SHARE, F_SHARES, F_NEEDED, F_DATA, F_CHECK,
	F_COUNT };
static const char *const field_names[F_COUNT] = { "backup", "created",
	"share", "shares", "needed", "data", "check" };

int share_parse(const char *text, size_t len, struct share *out, char *err,
    size_t errlen)
{
	char line[256];
	uint8_t check[CHECK_LEN], want[CHECK_LEN];
	unsigned seen = 0, lineno = 0;
	size_t pos = 0;
	int rc = 0;

	memset(out, 0, sizeof *out);
	while (pos < len && rc == 0) {
		size_t end = pos, n;
		char *key, *val, *colon, *p;
		int f;

		while (end < len && text[end] != '\n')
			end++;
		n = end - pos;
		lineno++;
		if (n >= sizeof line) {
			set_err(err, errlen, "line %u: too long", lineno);
			rc = AR_EINVAL;
			break;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos = end + 1;
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		for (key = line; *key == ' ' || *key == '\t'; key++)
			;
		if (!*key || *key == '#' || strcmp(key, TITLE) == 0)
			continue;
		colon = strchr(key, ':');
		if (!colon) {
			set_err(err, errlen, "line %u: expected 'field: value'",
			    lineno);
			rc = AR_EINVAL;
			break;
		}
		*colon = '\0';
		for (p = colon; p > key && (p[-1] == ' ' || p[-1] == '\t'); )
			*--p = '\0';
		for (val = colon + 1; *val == ' ' || *val == '\t'; val++)
			;
		for (p = val + strlen(val); p > val &&
		    (p[-1] == ' ' || p[-1] == '\t'); )
			*--p = '\0';
		for (f = 0; f < F_COUNT; f++)
			if (strcasecmp(key, field_names[f]) == 0)
				break;
		if (f == F_COUNT) {
			set_err(err, errlen, "line %u: unknown field '%.32s'",
			    lineno, key);
			rc = AR_EINVAL;
			break;
		}
		if (seen & (1u << f)) {
			set_err(err, errlen, "line %u: '%s' given twice",
			    lineno, field_names[f]);
			rc = AR_EINVAL;
			break;
		}
		seen |= 1u << f;
		switch (f) {
		case F_BACKUP:
			rc = hex_spaced(val, out->backup_id, SHARE_ID_LEN);
			break;
		case F_CREATED:
			rc = parse_time(val, &out->created);
			break;
		case F_SHARE:
			rc = parse_small(val, 1, SHARE_MAX_N, &out->index);
			break;
		case F_SHARES:
			rc = parse_small(val, SHARE_MIN_M, SHARE_MAX_N, &out->n);
			break;
		case F_NEEDED:
			rc = parse_small(val, SHARE_MIN_M, SHARE_MAX_N, &out->m);
			break;
		case F_DATA:
			rc = hex_spaced(val, out->data, SHARE_SECRET_LEN);
			break;
		case F_CHECK:
			rc = hex_spaced(val, check, CHECK_LEN);
			break;
		}
		if (rc)
			set_err(err, errlen, "line %u: bad %s value",
			    lineno, field_names[f]);
	}
	sodium_memzero(line, sizeof line);
	if (rc == 0 && seen != (1u << F_COUNT) - 1) {
		for (int f = 0; f < F_COUNT; f++)
			if (!(seen & (1u << f))) {
				set_err(err, errlen, "no '%s' field: not a "
				    "share, or an incomplete copy",
				    field_names[f]);
				break;
			}
		rc = AR_EINVAL;
	}
	if (rc == 0 && (out->index > out->n || out->m > out->n)) {
		set_err(err, errlen, "share %u of %u, %u needed: impossible "
		    "numbers", out->index, out->n, out->m);
		rc = AR_EINVAL;
	}
	if (rc == 0) {
		label_hash(CHECK_LABEL, out, want, sizeof want);
		if (sodium_memcmp(want, check, CHECK_LEN) != 0) {
			set_err(err, errlen, "check value does not match: the "
			    "share was mistyped or altered");
			rc = AR_ECORRUPT;
		}
	}
	if (rc)
		sodium_memzero(out, sizeof *out);
	return rc;
}
