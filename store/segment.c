/*
 * segment.c - reading the log segments the bucket holds (ship.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "store/ship.h"

#include <sodium.h>

void segment_free(segment_t *s)
{
	free(s->entries);
	free(s->recs);
	s->entries = NULL;
	s->recs = NULL;
}

int segment_decode(const unsigned char *buf, size_t len,
    const uint8_t pk[KEYSVC_PK_LEN], segment_t *out, char *why,
    size_t whylen)
{
	unsigned char sha[32], msg[sizeof SEG_SIG_LABEL + 32];
	const unsigned char *p, *end;
	uint32_t n;

	memset(out, 0, sizeof *out);
	if (len < SEG_HEAD_LEN + 8 + KEYSVC_SIG_LEN ||
	    memcmp(buf, SEG_MAGIC, 8)) {
		snprintf(why, whylen, "not a log segment (%zu bytes)", len);
		return AR_ECORRUPT;
	}
	if (((buf[8] << 8) | buf[9]) != SEG_VERSION) {
		snprintf(why, whylen, "segment version %d unknown",
		    (buf[8] << 8) | buf[9]);
		return AR_EVERSION;
	}
	crypto_hash_sha256(sha, buf, len - KEYSVC_SIG_LEN);
	memcpy(msg, SEG_SIG_LABEL, sizeof SEG_SIG_LABEL);
	memcpy(msg + sizeof SEG_SIG_LABEL, sha, 32);
	if (keysvc_verify(pk, msg, sizeof msg, buf + len - KEYSVC_SIG_LEN)) {
		snprintf(why, whylen, "signature does not verify");
		return AR_ESIG;
	}
	p = buf + 12;
	memcpy(out->tenant, p, STORE_TENANT_LEN);
	p += STORE_TENANT_LEN;
	out->number = ar_get_u64(p);
	out->first = ar_get_u64(p + 8);
	out->last = ar_get_u64(p + 16);
	out->time = (int64_t)ar_get_u64(p + 24);
	p += 32;
	end = buf + len - KEYSVC_SIG_LEN;
	if (end - p < 4)
		goto trunc;
	n = ar_get_u32(p);
	p += 4;
	if (n && !(out->entries = calloc(n, sizeof *out->entries)))
		return AR_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t l;
		if (end - p < 12)
			goto trunc;
		out->entries[i].seq = ar_get_u64(p);
		l = ar_get_u32(p + 8);
		p += 12;
		if ((size_t)(end - p) < l)
			goto trunc;
		out->entries[i].val = p;
		out->entries[i].len = l;
		p += l;
		out->nentries++;
	}
	if (end - p < 4)
		goto trunc;
	n = ar_get_u32(p);
	p += 4;
	if (n && !(out->recs = calloc(n, sizeof *out->recs))) {
		segment_free(out);
		return AR_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		seg_rec_t *r = &out->recs[i];
		if (end - p < 3)
			goto trunc;
		r->type = p[0];
		r->klen = (size_t)(p[1] << 8 | p[2]);
		p += 3;
		if ((size_t)(end - p) < r->klen + 4)
			goto trunc;
		r->key = p;
		p += r->klen;
		r->vlen = ar_get_u32(p);
		p += 4;
		if ((size_t)(end - p) < r->vlen)
			goto trunc;
		r->val = p;
		p += r->vlen;
		out->nrecs++;
	}
	if (p != end) {
		snprintf(why, whylen, "%zu bytes after the last record",
		    (size_t)(end - p));
		segment_free(out);
		return AR_ECORRUPT;
	}
	return 0;
trunc:
	snprintf(why, whylen, "segment cut short");
	segment_free(out);
	return AR_ETRUNC;
}
