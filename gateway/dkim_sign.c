/*
 * dkim_sign.c - the DKIM signer of outbound mail (dkim_sign.h).
 *
 * Relaxed body canonicalisation (RFC 6376 3.4.4) is a small state
 * machine over the stream: whitespace runs become one SP, whitespace at
 * the end of a line goes, empty lines are counted and written only when
 * a non-empty line follows (so the empty lines at the end vanish), a
 * last line without CRLF gets one, an empty body stays empty.  Its
 * output goes through a small buffer into SHA-256.  Headers are
 * canonicalised relaxed (3.4.2) when signing.  The signature covers the
 * canonical fields named in h= (a repeated name takes the instances
 * bottom-up; a name with no instance left adds nothing, which is how
 * From is oversigned: a From: added on the way breaks the signature),
 * then the DKIM-Signature field itself with an empty b= (3.7).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ar.h"
#include "gateway/dkim_sign.h"

#define OUTBUF 8192

struct field {
	size_t off, len;             /* in hdr, without the final CRLF */
};

struct gw_dkim {
	/* header section */
	char *hdr;
	size_t hlen, hcap;
	int in_body;
	int too_big;
	struct field *fields;
	size_t nfields;
	int parsed;
	/* body canonicalisation */
	EVP_MD_CTX *bh;
	int cr;                      /* a CR waits for its LF */
	int wsp;                     /* a whitespace run waits */
	size_t line;                 /* bytes written on this line */
	uint64_t empty;              /* empty lines not yet written */
	int body_done;
	unsigned char bh_raw[32];
	/* out buffer: to bh, or to mem (tests) */
	unsigned char out[OUTBUF];
	size_t nout;
	char *mem;
	size_t mlen, mcap;
};

/* --- body ------------------------------------------------------------------ */

static int flush(gw_dkim_t *d)
{
	if (!d->nout)
		return 0;
	if (d->bh) {
		if (EVP_DigestUpdate(d->bh, d->out, d->nout) != 1)
			return AR_EIO;
	} else {
		if (ar_grow((void **)&d->mem, &d->mcap, d->mlen + d->nout, 1))
			return AR_ENOMEM;
		memcpy(d->mem + d->mlen, d->out, d->nout);
		d->mlen += d->nout;
	}
	d->nout = 0;
	return 0;
}

static inline int put(gw_dkim_t *d, unsigned char c)
{
	if (d->nout == OUTBUF && flush(d))
		return AR_EIO;
	d->out[d->nout++] = c;
	return 0;
}

/* A character that is not whitespace nor a line end. */
static int body_char(gw_dkim_t *d, unsigned char c)
{
	int rc = 0;

	for (; d->empty && !rc; d->empty--)
		if (!(rc = put(d, '\r')))
			rc = put(d, '\n');
	if (!rc && d->wsp) {
		d->wsp = 0;
		rc = put(d, ' ');
	}
	if (!rc)
		rc = put(d, c);
	d->line++;
	return rc;
}

static int body_eol(gw_dkim_t *d)
{
	int rc = 0;

	d->wsp = 0;                  /* whitespace at the end of a line goes */
	if (d->line == 0) {
		d->empty++;
		return 0;
	}
	if (!(rc = put(d, '\r')))
		rc = put(d, '\n');
	d->line = 0;
	return rc;
}

static int body_write(gw_dkim_t *d, const unsigned char *p, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = p[i];
		if (d->cr) {
			d->cr = 0;
			if (c == '\n') {
				rc = body_eol(d);
				continue;
			}
			if ((rc = body_char(d, '\r')))
				break;
		}
		if (c == '\r')
			d->cr = 1;
		else if (c == ' ' || c == '\t')
			d->wsp = 1;
		else
			rc = body_char(d, c);
	}
	return rc;
}

static int body_end(gw_dkim_t *d)
{
	int rc = 0;

	if (d->body_done)
		return 0;
	if (d->cr) {
		d->cr = 0;
		rc = body_char(d, '\r');
	}
	if (!rc && d->line)          /* a last line without CRLF gets one */
		rc = body_eol(d);
	if (!rc)
		rc = flush(d);
	if (!rc && d->bh && EVP_DigestFinal_ex(d->bh, d->bh_raw, NULL) != 1)
		rc = AR_EIO;
	d->body_done = 1;
	return rc;
}

/* --- the stream ------------------------------------------------------------ */

int gw_dkim_new(gw_dkim_t **out)
{
	gw_dkim_t *d = calloc(1, sizeof *d);

	*out = NULL;
	if (!d)
		return AR_ENOMEM;
	if (!(d->bh = EVP_MD_CTX_new()) ||
	    EVP_DigestInit_ex(d->bh, EVP_sha256(), NULL) != 1) {
		gw_dkim_free(d);
		return AR_ENOMEM;
	}
	*out = d;
	return 0;
}

void gw_dkim_free(gw_dkim_t *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->bh);
	free(d->hdr);
	free(d->fields);
	free(d->mem);
	free(d);
}

int gw_dkim_write(gw_dkim_t *d, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t from;
	char *end;

	if (d->too_big)
		return AR_ETOOBIG;
	if (d->in_body)
		return body_write(d, p, len);
	/* the header section: up to and with the CRLF of its last field;
	 * the blank line is the body's start */
	if (d->hlen + len > GW_DKIM_HEADER_MAX + 4) {
		size_t room = GW_DKIM_HEADER_MAX + 4 - d->hlen;
		/* what fits: the end of the header section may be in it */
		int rc = gw_dkim_write(d, buf, room);
		if (rc == 0 && d->in_body)
			return body_write(d, p + room, len - room);
		d->too_big = 1;
		return AR_ETOOBIG;
	}
	if (ar_grow((void **)&d->hdr, &d->hcap, d->hlen + len + 1, 1))
		return AR_ENOMEM;
	memcpy(d->hdr + d->hlen, p, len);
	from = d->hlen > 3 ? d->hlen - 3 : 0;
	d->hlen += len;
	d->hdr[d->hlen] = '\0';
	if (d->hlen >= 2 && d->hdr[0] == '\r' && d->hdr[1] == '\n') {
		/* no header section at all */
		size_t total = d->hlen;
		d->in_body = 1;
		d->hlen = 0;
		return body_write(d, (const unsigned char *)d->hdr + 2,
		    total - 2);
	}
	end = memmem(d->hdr + from, d->hlen - from, "\r\n\r\n", 4);
	if (!end)
		return 0;
	{
		size_t hend = (size_t)(end - d->hdr) + 2;   /* with its CRLF */
		size_t body_off = hend + 2;
		size_t rest = d->hlen - body_off;
		const unsigned char *bp = (const unsigned char *)d->hdr +
		    body_off;
		int rc;
		d->in_body = 1;
		rc = body_write(d, bp, rest);
		d->hlen = hend;
		d->hdr[hend] = '\0';
		return rc;
	}
}

/* Split the header section into fields (once). */
static int parse_fields(gw_dkim_t *d)
{
	size_t i = 0, cap = 0;

	if (d->parsed)
		return 0;
	d->parsed = 1;
	while (i < d->hlen) {
		size_t start = i, end;
		for (;;) {
			char *crlf = memmem(d->hdr + i, d->hlen - i, "\r\n", 2);
			if (!crlf) {
				end = i = d->hlen;
				break;
			}
			i = (size_t)(crlf - d->hdr) + 2;
			if (i < d->hlen && (d->hdr[i] == ' ' ||
			    d->hdr[i] == '\t'))
				continue;          /* a folded line */
			end = i - 2;
			break;
		}
		if (end == start)
			continue;
		if (ar_grow((void **)&d->fields, &cap, d->nfields + 1,
		    sizeof *d->fields))
			return AR_ENOMEM;
		d->fields[d->nfields].off = start;
		d->fields[d->nfields].len = end - start;
		d->nfields++;
	}
	return 0;
}

/* Does field f have the name name (n bytes), case-insensitively? */
static int field_is(const gw_dkim_t *d, const struct field *f,
    const char *name, size_t n)
{
	const char *s = d->hdr + f->off, *colon = memchr(s, ':', f->len);
	size_t k;

	if (!colon)
		return 0;
	k = (size_t)(colon - s);
	while (k && (s[k - 1] == ' ' || s[k - 1] == '\t'))
		k--;
	return k == n && !strncasecmp(s, name, n);
}

static size_t field_count(const gw_dkim_t *d, const char *name, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < d->nfields; i++)
		c += (size_t)field_is(d, &d->fields[i], name, n);
	return c;
}

/* --- canonicalisation -------------------------------------------------------- */

/* Append the relaxed form of field s (len bytes) to *out, with or
 * without its CRLF. */
static int canon_field(const char *s, size_t len, char **out, size_t *olen,
    size_t *ocap, int crlf)
{
	const char *colon = memchr(s, ':', len);
	size_t n, i, need;
	int wsp = 0, started = 0;
	char *o;

	if (!colon)
		return AR_EINVAL;
	need = *olen + len + 4;
	if (ar_grow((void **)out, ocap, need, 1))
		return AR_ENOMEM;
	o = *out + *olen;
	n = (size_t)(colon - s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	for (i = 0; i < n; i++)
		*o++ = (char)tolower((unsigned char)s[i]);
	*o++ = ':';
	for (i = (size_t)(colon - s) + 1; i < len; i++) {
		char c = s[i];
		if (c == '\r' || c == '\n')
			continue;            /* unfolding */
		if (c == ' ' || c == '\t') {
			wsp = 1;
			continue;
		}
		if (wsp && started)
			*o++ = ' ';
		wsp = 0;
		started = 1;
		*o++ = c;
	}
	if (crlf) {
		*o++ = '\r';
		*o++ = '\n';
	}
	*olen = (size_t)(o - *out);
	(*out)[*olen] = '\0';
	return 0;
}

char *gw_dkim_canon_header(const char *field, size_t len)
{
	char *out = NULL;
	size_t olen = 0, ocap = 0;

	if (canon_field(field, len, &out, &olen, &ocap, 1)) {
		free(out);
		return NULL;
	}
	return out;
}

char *gw_dkim_canon_body(const char *body, size_t len, size_t *outlen)
{
	gw_dkim_t d;
	char *r;

	memset(&d, 0, sizeof d);
	d.in_body = 1;
	if (body_write(&d, (const unsigned char *)body, len) || body_end(&d)) {
		free(d.mem);
		return NULL;
	}
	if (!d.mem && !(d.mem = malloc(1)))
		return NULL;
	r = d.mem;
	*outlen = d.mlen;
	return r;
}

/* --- the From domain ------------------------------------------------------ */

int gw_dkim_from_domain(const gw_dkim_t *d, char *out, size_t outlen)
{
	const struct field *f = NULL;
	const char *s, *e, *p, *addr = NULL, *addr_end = NULL;
	const char *at = NULL;
	int depth = 0, quoted = 0;
	size_t n;

	if (parse_fields((gw_dkim_t *)d))
		return AR_ENOMEM;
	for (size_t i = 0; i < d->nfields && !f; i++)
		if (field_is(d, &d->fields[i], "from", 4))
			f = &d->fields[i];
	if (!f)
		return AR_ENOENT;
	s = memchr(d->hdr + f->off, ':', f->len) + 1;
	e = d->hdr + f->off + f->len;
	/* the first '<...>' outside quotes and comments, else the first
	 * word with an '@' up to a ',' */
	for (p = s; p < e; p++) {
		if (quoted) {
			if (*p == '\\' && p + 1 < e)
				p++;
			else if (*p == '"')
				quoted = 0;
			continue;
		}
		if (depth) {
			if (*p == '\\' && p + 1 < e)
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
			continue;
		}
		if (*p == '"')
			quoted = 1;
		else if (*p == '(')
			depth = 1;
		else if (*p == '<') {
			addr = p + 1;
			addr_end = memchr(addr, '>', (size_t)(e - addr));
			if (!addr_end)
				return AR_ENOENT;
			break;
		} else if (*p == ',') {
			break;
		} else if (*p == '@' && !at) {
			at = p;
		}
	}
	if (addr) {
		at = NULL;
		for (p = addr; p < addr_end; p++)
			if (*p == '@')
				at = p;
		e = addr_end;
	} else if (at) {
		e = at;
		while (e < d->hdr + f->off + f->len && *e != ',' && *e != ' ' &&
		    *e != '\t' && *e != '\r' && *e != '\n' && *e != '(')
			e++;
	}
	if (!at)
		return AR_ENOENT;
	p = at + 1;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - p);
	if (n == 0 || n >= outlen)
		return AR_ENOENT;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!(isalnum(c) || c == '-' || c == '.'))
			return AR_ENOENT;
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return 0;
}

/* --- signing ------------------------------------------------------------------ */

static int b64(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	if (outlen < 4 * ((n + 2) / 3) + 1)
		return AR_ETOOBIG;
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return 0;
}

int gw_dkim_body_hash(gw_dkim_t *d, char *out, size_t outlen)
{
	int rc;

	if (!d->in_body) {            /* no blank line: all header */
		d->in_body = 1;
	}
	if ((rc = body_end(d)))
		return rc;
	return b64(d->bh_raw, sizeof d->bh_raw, out, outlen);
}

static int tag_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 253)
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '.' ||
		    *s == '_'))
			return 0;
	return 1;
}

/* A growing text. */
struct text {
	char *s;
	size_t len, cap;
	int err;
};

static void tx_add(struct text *t, const char *s, size_t n)
{
	if (t->err || ar_grow((void **)&t->s, &t->cap, t->len + n + 1, 1)) {
		t->err = 1;
		return;
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void tx_str(struct text *t, const char *s)
{
	tx_add(t, s, strlen(s));
}

/* The h= list: the names given, or each default name once per instance
 * (From once more). */
static int header_list(gw_dkim_t *d, const gw_dkim_params_t *p,
    struct text *h, size_t line)
{
	const char *names = p->headers ? p->headers : GW_DKIM_HEADERS;

	int first = 1;

	while (*names) {
		size_t n = strcspn(names, ":"), count = 1;
		if (!p->headers) {
			count = field_count(d, names, n);
			if (n == 4 && !strncasecmp(names, "from", 4) &&
			    p->oversign_from)
				count++;
		}
		for (size_t k = 0; k < count; k++) {
			if (!first) {
				tx_str(h, ":");
				line++;
				if (line + n > 74) {
					tx_str(h, "\r\n\t");
					line = 1;
				}
			}
			first = 0;
			for (size_t i = 0; i < n; i++) {
				char c = (char)tolower((unsigned char)names[i]);
				tx_add(h, &c, 1);
			}
			line += n;
		}
		names += n + (names[n] == ':');
	}
	return h->err ? AR_ENOMEM : 0;
}

/* The canonical header data signed: the fields of h (each name takes
 * its instances bottom-up), then sig (the field with an empty b=). */
static int header_data(gw_dkim_t *d, const char *hlist, const char *sig,
    size_t siglen, char **out, size_t *olen)
{
	size_t cap = 0, *used = NULL;
	const char *p = hlist;
	int rc = 0;

	*out = NULL;
	*olen = 0;
	if (!(used = calloc(d->nfields + 1, sizeof *used)))
		return AR_ENOMEM;
	while (*p && !rc) {
		size_t n;
		while (*p == ':' || *p == ' ' || *p == '\t' || *p == '\r' ||
		    *p == '\n')
			p++;
		n = strcspn(p, ": \t\r\n");
		if (!n)
			break;
		/* the last instance not used yet */
		for (size_t i = d->nfields; i-- > 0;) {
			if (used[i] || !field_is(d, &d->fields[i], p, n))
				continue;
			used[i] = 1;
			rc = canon_field(d->hdr + d->fields[i].off,
			    d->fields[i].len, out, olen, &cap, 1);
			break;
		}
		p += n;
	}
	free(used);
	if (!rc)
		rc = canon_field(sig, siglen, out, olen, &cap, 0);
	return rc;
}

int gw_dkim_sign(gw_dkim_t *d, const gw_dkim_params_t *p, char **field,
    char *err, size_t errlen)
{
	struct text f = { NULL, 0, 0, 0 }, h = { NULL, 0, 0, 0 };
	char bh[64], ts[32], *data = NULL, *sigb64 = NULL;
	unsigned char *sig = NULL, md[32];
	size_t dlen = 0, slen = 0;
	const char *alg;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *ctx = NULL;
	BIO *bio = NULL;
	int rc, type;

	*field = NULL;
	err[0] = '\0';
	if (d->too_big) {
		snprintf(err, errlen, "header section over %u bytes",
		    GW_DKIM_HEADER_MAX);
		return AR_ETOOBIG;
	}
	if (!tag_ok(p->domain) || !tag_ok(p->selector)) {
		snprintf(err, errlen, "domain or selector with characters a "
		    "DKIM tag cannot hold");
		return AR_EINVAL;
	}
	if ((rc = parse_fields(d)) || (rc = gw_dkim_body_hash(d, bh,
	    sizeof bh)))
		return rc;
	if (!(bio = BIO_new_mem_buf(p->key_pem, (int)p->key_len)) ||
	    !(key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)""))) {
		BIO_free(bio);
		snprintf(err, errlen, "the key is not a PEM private key");
		return AR_EINVAL;
	}
	BIO_free(bio);
	type = EVP_PKEY_get_base_id(key);
	if (type == EVP_PKEY_RSA) {
		alg = "rsa-sha256";
	} else if (type == EVP_PKEY_ED25519) {
		alg = "ed25519-sha256";
	} else {
		EVP_PKEY_free(key);
		snprintf(err, errlen, "the key is neither RSA nor Ed25519");
		return AR_EINVAL;
	}
	/* h= follows "\tt=NNNNNNNNNN; h=" on its line */
	if ((rc = header_list(d, p, &h, p->time > 0 ? 18 : 3)))
		goto out;
	tx_str(&f, "DKIM-Signature: v=1; a=");
	tx_str(&f, alg);
	tx_str(&f, "; c=relaxed/relaxed; d=");
	tx_str(&f, p->domain);
	tx_str(&f, "; s=");
	tx_str(&f, p->selector);
	tx_str(&f, ";\r\n\t");
	if (p->time > 0) {
		snprintf(ts, sizeof ts, "t=%lld; ", (long long)p->time);
		tx_str(&f, ts);
	}
	tx_str(&f, "h=");
	tx_add(&f, h.s ? h.s : "", h.len);
	tx_str(&f, ";\r\n\tbh=");
	tx_str(&f, bh);
	tx_str(&f, ";\r\n\tb=");
	if (f.err) {
		rc = AR_ENOMEM;
		goto out;
	}
	if ((rc = header_data(d, h.s ? h.s : "", f.s, f.len, &data, &dlen)))
		goto out;
	rc = AR_EIO;
	if (!(ctx = EVP_MD_CTX_new()))
		goto out;
	if (type == EVP_PKEY_RSA) {
		if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
		    key) != 1 || EVP_DigestSign(ctx, NULL, &slen,
		    (unsigned char *)data, dlen) != 1 ||
		    !(sig = malloc(slen)) || EVP_DigestSign(ctx, sig, &slen,
		    (unsigned char *)data, dlen) != 1)
			goto sigfail;
	} else {
		/* RFC 8463: Ed25519 over the SHA-256 of the header data */
		if (EVP_Digest(data, dlen, md, NULL, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
		    !(sig = malloc(64)) || (slen = 64, EVP_DigestSign(ctx, sig,
		    &slen, md, sizeof md)) != 1)
			goto sigfail;
	}
	if (!(sigb64 = malloc(4 * ((slen + 2) / 3) + 1))) {
		rc = AR_ENOMEM;
		goto out;
	}
	b64(sig, slen, sigb64, 4 * ((slen + 2) / 3) + 1);
	{
		/* fold b= after "b=" on its line, 72 a line */
		size_t n = strlen(sigb64), first = 72 - 3;
		for (size_t i = 0; i < n;) {
			size_t k = i == 0 ? first : 72;
			if (k > n - i)
				k = n - i;
			if (i)
				tx_str(&f, "\r\n\t ");
			tx_add(&f, sigb64 + i, k);
			i += k;
		}
	}
	tx_str(&f, "\r\n");
	rc = f.err ? AR_ENOMEM : 0;
	goto out;
sigfail:
	snprintf(err, errlen, "signing failed (OpenSSL)");
	rc = AR_EIO;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	if (data)
		OPENSSL_cleanse(data, dlen);
	free(data);
	free(sig);
	free(sigb64);
	free(h.s);
	if (rc == 0) {
		*field = f.s;
	} else {
		free(f.s);
		if (!err[0])
			snprintf(err, errlen, "%s", ar_strerror(rc));
	}
	return rc;
}
