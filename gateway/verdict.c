/*
 * verdict.c - what the scanners found, judged by the tenant's policy
 * (store_gw_policy_t): reject before the 250, quarantine, tag, deliver.
 *
 * In order of precedence (the most severe applicable action wins; every
 * rule that applied is kept as a reason):
 *   1. a virus: virus_action (554 5.7.1, or quarantine); no allow list
 *      overrides it;
 *   2. the sender (address or @domain) on the block list, tenant-wide or
 *      of every recipient: 550 5.7.1;
 *   3. a scanner that could not scan (down, timed out, message too large
 *      for it): 451 4.7.1, or tag as unscanned if the tenant accepts
 *      unscanned mail;
 *   4. an attachment of a blocked type (by its real type): blocked_action
 *      (554 5.7.1, or quarantine);
 *   5. the sender on the allow list (tenant-wide or of every recipient):
 *      no spam or DMARC judgement (the rules above still apply);
 *   6. DMARC failed with the domain's policy reject, and the tenant
 *      enforces it: 550 5.7.1;
 *   7. rspamd's score against the tenant's thresholds (reject 550 5.7.1,
 *      quarantine, tag); rspamd's own "reject" action (GTUBE, a forced
 *      action) counts as a score at the reject threshold;
 *   8. an encrypted archive: encrypted_action (tag, quarantine, reject).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ar.h"
#include "gateway/gw_int.h"

static void reason(gw_verdict_t *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void reason(gw_verdict_t *v, const char *fmt, ...)
{
	char buf[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	json_array_append_new(v->reasons, json_string(buf));
}

/* Raise v to action with its answer, if more severe than what it has. */
static void raise_to(gw_verdict_t *v, int action, const char *kind,
    int code, const char *enhanced, const char *text)
{
	if (action < v->action)
		return;
	if (action == v->action && v->code)
		return;                 /* the first of equals answers */
	v->action = action;
	v->kind = kind;
	v->code = code;
	ar_strlcpy(v->enhanced, enhanced ? enhanced : "", sizeof v->enhanced);
	ar_strlcpy(v->text, text ? text : "", sizeof v->text);
}

/* Is sender on list, tenant-wide or for every one of rcpts? */
static int listed(store_t *st, const store_tenant_t *t, int list,
    const char *sender, const json_t *rcpts)
{
	size_t i, n = json_array_size(rcpts), hits = 0;
	json_t *r;

	if (!sender || !sender[0])
		return 0;
	if (store_gw_list_match(st, t->id, list, NULL, sender) == 0)
		return 1;
	json_array_foreach(rcpts, i, r)
		if (json_string_value(r) && store_gw_list_match(st, t->id, list,
		    json_string_value(r), sender) == 0)
			hits++;
	return n > 0 && hits == n;
}

void gw_verdict_judge(store_t *st, const store_tenant_t *t,
    const char *sender, const json_t *rcpts, const gw_findings_t *f,
    gw_verdict_t *v)
{
	const store_gw_policy_t *p = &t->gw;
	int allowed, unscanned = 0;

	memset(v, 0, sizeof *v);
	v->action = STORE_GW_DELIVER;
	v->kind = "clean";
	v->reasons = json_array();

	/* 1. viruses */
	if (f->infected) {
		reason(v, "virus:%s", f->virus);
		raise_to(v, p->virus_action, "virus", 554, "5.7.1",
		    "Message rejected: virus found");
	}
	/* 2. blocked senders */
	if (listed(st, t, STORE_GW_BLOCK, sender, rcpts)) {
		reason(v, "block-list:sender");
		raise_to(v, STORE_GW_REJECT, "policy", 550, "5.7.1",
		    "Message rejected: sender blocked by the recipient's "
		    "policy");
	}
	/* 3. what could not be scanned */
	if (f->av_status) {
		reason(v, "unscanned:antivirus:%s", f->av_error);
		unscanned = 1;
	}
	if (f->spam_status) {
		reason(v, "unscanned:spam:%s", f->spam_error);
		unscanned = 1;
	}
	if (unscanned && v->action < STORE_GW_REJECT) {
		if (!p->unscanned_accept) {
			v->tempfail = 1;
			v->code = 451;
			ar_strlcpy(v->enhanced, "4.7.1", sizeof v->enhanced);
			ar_strlcpy(v->text, "Message could not be scanned, try "
			    "again later", sizeof v->text);
			v->kind = "unscanned";
			return;
		}
		raise_to(v, STORE_GW_TAG, "unscanned", 0, NULL, NULL);
	}
	/* 4. attachment types */
	if (f->blocked) {
		reason(v, "attachment:%s", f->blocked_what);
		raise_to(v, p->blocked_action, "policy", 554, "5.7.1",
		    "Message rejected: attachment type not allowed");
	}
	/* 5. allowed senders skip the spam and DMARC judgement */
	allowed = listed(st, t, STORE_GW_ALLOW, sender, rcpts);
	if (allowed)
		reason(v, "allow-list:sender");
	if (!allowed && !f->spam_status) {
		double score = f->score;
		/* 6. DMARC p=reject */
		if (f->dmarc_reject && p->dmarc_reject) {
			reason(v, "dmarc:reject");
			raise_to(v, STORE_GW_REJECT, "spam", 550, "5.7.1",
			    "Message rejected: DMARC policy of the sender's "
			    "domain");
		}
		/* 7. the score */
		if (!strcmp(f->rspamd_action, "reject") &&
		    score < p->spam_reject)
			score = p->spam_reject;
		if (score >= p->spam_reject) {
			reason(v, "spam:score=%.2f>=%.2f", f->score,
			    p->spam_reject);
			raise_to(v, STORE_GW_REJECT, "spam", 550, "5.7.1",
			    "Message rejected as spam");
		} else if (score >= p->spam_quarantine) {
			reason(v, "spam:score=%.2f>=%.2f", f->score,
			    p->spam_quarantine);
			raise_to(v, STORE_GW_QUARANTINE, "spam", 0, NULL, NULL);
		} else if (score >= p->spam_tag) {
			reason(v, "spam:score=%.2f>=%.2f", f->score,
			    p->spam_tag);
			raise_to(v, STORE_GW_TAG, "spam", 0, NULL, NULL);
		}
	}
	/* 8. encrypted archives */
	if (f->encrypted) {
		reason(v, "attachment:encrypted-archive");
		raise_to(v, p->encrypted_action, "policy", 554, "5.7.1",
		    "Message rejected: encrypted archive not allowed");
	}
	if (v->action != STORE_GW_REJECT) {
		v->code = 0;
		v->enhanced[0] = v->text[0] = '\0';
	}
}

void gw_verdict_clear(gw_verdict_t *v)
{
	json_decref(v->reasons);
	v->reasons = NULL;
}

void gw_findings_clear(gw_findings_t *f)
{
	json_decref(f->symbols);
	json_decref(f->attachments);
	memset(f, 0, sizeof *f);
}

json_t *gw_verdict_json(const gw_verdict_t *v, const gw_findings_t *f)
{
	json_t *o = json_object();

	json_object_set_new(o, "verdict", json_string(v->kind));
	json_object_set_new(o, "action",
	    json_string(store_gw_action_name(v->action)));
	json_object_set(o, "reasons", v->reasons);
	json_object_set_new(o, "score", f->spam_status ? json_null() :
	    json_real(f->score));
	json_object_set_new(o, "rspamd_action", f->spam_status ? json_null() :
	    json_string(f->rspamd_action));
	if (f->symbols)
		json_object_set(o, "symbols", f->symbols);
	json_object_set_new(o, "virus", f->infected ? json_string(f->virus) :
	    json_null());
	json_object_set_new(o, "scanned", json_boolean(!f->av_status &&
	    !f->spam_status));
	if (f->attachments)
		json_object_set(o, "attachments", f->attachments);
	return o;
}
