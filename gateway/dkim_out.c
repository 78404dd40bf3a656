/*
 * dkim_out.c - DKIM-signing the tenants' outgoing mail (gw_int.h
 * gw_dkim_outbound): the accepted message is read back from its sealed
 * relay queue entry through the signer (dkim_sign.h: the header section
 * kept, the body hashed as it streams), the From: domain's key of the
 * tenant is unsealed from the catalog (store_dkim_get), used and wiped.
 * The DKIM-Signature field goes into the entry's state record (sealed
 * like the rest); queue.c puts it in front of the message in every copy
 * that leaves the queue: the delivery and the archive copy.
 */
#include <string.h>

#include "ar.h"
#include "gateway/dkim_sign.h"
#include "gateway/gw_int.h"

int gw_dkim_outbound(gateway_t *g, const store_tenant_t *t,
    const uint8_t id[SPOOL_ID_LEN], const char *idhex, char **field)
{
	store_reader_t *r = NULL;
	store_dkim_key_t k;
	gw_dkim_params_t p;
	gw_dkim_t *d = NULL;
	char dom[STORE_DOMAIN_MAX], err[160], *pem = NULL, *buf = NULL;
	uint64_t len = 0, pos = 0;
	size_t pemlen = 0, got;
	int rc, wrc = 0;

	*field = NULL;
	if ((rc = spool_open_entry(g->rq, t->id, id, &r, &len, NULL))) {
		ar_log(AR_LOG_WARN, "gateway id=%s dkim=error reason=\"reading "
		    "the queued message: %s\"", idhex, spool_errmsg());
		return rc;
	}
	if ((rc = gw_dkim_new(&d)) || !(buf = malloc(65536))) {
		rc = rc ? rc : AR_ENOMEM;
		goto out;
	}
	while (pos < len) {
		size_t want = len - pos < 65536 ? (size_t)(len - pos) : 65536;
		if ((rc = store_reader_read(r, buf, want, &got)))
			goto out;
		if (!got) {
			rc = AR_ETRUNC;
			goto out;
		}
		pos += got;
		if (!wrc)
			wrc = gw_dkim_write(d, buf, got);
	}
	if (gw_dkim_from_domain(d, dom, sizeof dom)) {
		ar_log(AR_LOG_INFO, "gateway id=%s dkim=none reason=\"no "
		    "From: address\"", idhex);
		goto out;              /* sent unsigned */
	}
	rc = store_dkim_get(g->st, t->id, dom, &k, &pem, &pemlen);
	if (rc == AR_ENOENT) {
		rc = 0;
		ar_log(AR_LOG_INFO, "gateway id=%s dkim=none from_domain=%s "
		    "reason=\"no active key for the domain\"", idhex, dom);
		goto out;
	}
	if (rc == AR_EKEYSVC || rc == AR_EAGAIN || rc == AR_ETIMEOUT ||
	    rc == AR_ENOMEM || rc == AR_EIO) {
		/* passing: the message is answered 451 and comes again */
		ar_log(AR_LOG_WARN, "gateway id=%s dkim=error d=%s "
		    "reason=\"%s\" note=\"answered 451\"", idhex, dom,
		    store_errmsg(g->st));
		goto out;
	}
	if (rc) {                  /* a record that does not open, shredded */
		ar_log(AR_LOG_WARN, "gateway id=%s dkim=error d=%s "
		    "reason=\"%s\" note=\"sent unsigned\"", idhex, dom,
		    store_errmsg(g->st));
		rc = 0;
		goto out;
	}
	if (wrc) {                 /* the message's fault: sent unsigned */
		ar_log(AR_LOG_WARN, "gateway id=%s dkim=error d=%s "
		    "reason=\"%s\" note=\"sent unsigned\"", idhex, dom,
		    wrc == AR_ETOOBIG ? "header section too large to sign" :
		    ar_strerror(wrc));
		goto out;
	}
	memset(&p, 0, sizeof p);
	p.domain = dom;
	p.selector = k.selector;
	p.time = ar_now();
	p.key_pem = pem;
	p.key_len = pemlen;
	p.oversign_from = 1;
	if ((rc = gw_dkim_sign(d, &p, field, err, sizeof err))) {
		ar_log(AR_LOG_WARN, "gateway id=%s dkim=error d=%s s=%s "
		    "reason=\"%s\" note=\"sent unsigned\"", idhex, dom,
		    k.selector, err);
		rc = 0;                /* sent unsigned rather than never */
		goto out;
	}
	ar_log(AR_LOG_INFO, "gateway id=%s dkim=signed d=%s s=%s a=%s",
	    idhex, dom, k.selector, k.alg);
out:
	store_dkim_pem_free(pem, pemlen);
	free(buf);
	gw_dkim_free(d);
	if (r)
		store_reader_close(r);
	return rc;
}
