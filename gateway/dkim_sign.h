/*
 * dkim_sign.h - private to gateway/ (and its unit test): a DKIM signer
 * (RFC 6376) for outbound mail, relaxed/relaxed canonicalisation,
 * rsa-sha256 or ed25519-sha256 (RFC 8463), with OpenSSL.
 *
 * The message is streamed through gw_dkim_write in pieces of any size:
 * the header section is kept (up to GW_DKIM_HEADER_MAX bytes), the body
 * is canonicalised and hashed as it passes, so a 100 MB message costs
 * its header section and a few kilobytes.  Then gw_dkim_sign makes the
 * DKIM-Signature field to put in front of the message.  Pure functions:
 * no I/O, no global state; one gw_dkim_t per message, one thread.
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h).
 */
#ifndef GATEWAY_DKIM_SIGN_H
#define GATEWAY_DKIM_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define GW_DKIM_HEADER_MAX (1u << 20)   /* longest header section signed */

typedef struct gw_dkim gw_dkim_t;

int gw_dkim_new(gw_dkim_t **out);
void gw_dkim_free(gw_dkim_t *d);

/* The next bytes of the message (as received: CRLF lines, dot-unstuffed).
 * AR_ETOOBIG once the header section passes GW_DKIM_HEADER_MAX (the rest
 * is then ignored and gw_dkim_sign refuses). */
int gw_dkim_write(gw_dkim_t *d, const void *buf, size_t len);

/* After the last write: the body hash, base64 of SHA-256 of the relaxed
 * canonical body (the bh= value), into out (at least 45 bytes). */
int gw_dkim_body_hash(gw_dkim_t *d, char *out, size_t outlen);

/* The domain of the first mailbox of the first From: field, lower case,
 * into out; AR_ENOENT when the message has no From: or no address in it. */
int gw_dkim_from_domain(const gw_dkim_t *d, char *out, size_t outlen);

/* What to sign with. */
typedef struct gw_dkim_params {
	const char *domain;          /* d= */
	const char *selector;        /* s= */
	int64_t time;                /* t= (0: no t=) */
	const char *key_pem;         /* the private key, PEM (RSA or Ed25519) */
	size_t key_len;
	/* h=: the header field names signed, in order, ':'-separated, as
	 * given (NULL: GW_DKIM_HEADERS, each name once per instance of it
	 * in the message, repeated ones signed bottom-up) */
	const char *headers;
	int oversign_from;           /* with headers NULL: From once more than
	                                it occurs, so that a From: added on
	                                the way breaks the signature */
} gw_dkim_params_t;

#define GW_DKIM_HEADERS "from:to:cc:subject:date:message-id:reply-to:" \
	"mime-version:content-type:content-transfer-encoding:in-reply-to:" \
	"references"

/*
 * After the last write: the DKIM-Signature field, folded, with its final
 * CRLF ("DKIM-Signature: v=1; a=...\r\n"), malloc'd into *field (caller
 * frees).  The key is read from p->key_pem and released before return
 * (the caller wipes its copy).  AR_EINVAL for a key that is not RSA or
 * Ed25519 (errmsg says why), AR_ETOOBIG for a header section too large.
 */
int gw_dkim_sign(gw_dkim_t *d, const gw_dkim_params_t *p, char **field,
    char *err, size_t errlen);

/* --- canonicalisation, for tests ------------------------------------------
 * Relaxed header canonicalisation (RFC 6376 3.4.2) of one field as it
 * appears (name, colon, value with folds, no final CRLF): malloc'd, with
 * CRLF.  Relaxed body canonicalisation of a whole body (3.4.4): malloc'd,
 * *outlen bytes. */
char *gw_dkim_canon_header(const char *field, size_t len);
char *gw_dkim_canon_body(const char *body, size_t len, size_t *outlen);

#endif
