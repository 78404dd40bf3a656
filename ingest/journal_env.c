/*
 * journal_env.c - the envelope lines of a journal report (MS-XJRNL and the
 * Exchange 2003 form).  See journal.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/journal.h"

struct journal_envelope {
	char *sender, *subject, *message_id, *on_behalf_of;
	struct journal_recipient *rcpt;
	size_t nrcpt, caprcpt;
	struct journal_field *fields;
	size_t nfields, capfields;
};

static int is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Trimmed copy of s[0..n). */
static char *dup_trim(const char *s, size_t n)
{
	char *d;

	while (n > 0 && is_ws(*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_ws(s[n - 1]))
		n--;
	d = malloc(n + 1);
	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static int add_field(journal_envelope_t *e, const char *name, size_t nlen,
    const char *value)
{
	struct journal_field *f;
	char *n, *v;

	if (ar_grow((void **)&e->fields, &e->capfields, e->nfields,
	    sizeof(*e->fields)))
		return AR_ENOMEM;
	n = dup_trim(name, nlen);
	v = dup_trim(value, strlen(value));
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		return AR_ENOMEM;
	}
	f = &e->fields[e->nfields++];
	f->name = n;
	f->value = v;
	return 0;
}

/* The address of one list item: the part in <> when there is one. */
static char *item_addr(const char *s, size_t n)
{
	const char *lt = memchr(s, '<', n);
	const char *gt = lt ? memchr(lt, '>', n - (size_t)(lt - s)) : NULL;

	if (lt != NULL && gt != NULL)
		return dup_trim(lt + 1, (size_t)(gt - lt - 1));
	return dup_trim(s, n);
}

/* "Expanded: x" / "Forwarded: x" item: 1 expanded, 2 forwarded, else 0. */
static int annotation(const char *s, size_t n, size_t *vstart)
{
	static const char *const names[] = { "Expanded", "Forwarded" };
	size_t i, k;

	for (i = 0; i < n && is_ws(s[i]); i++)
		;
	for (k = 0; k < 2; k++) {
		size_t l = strlen(names[k]), p = i + l;
		if (n - i < l || g_ascii_strncasecmp(s + i, names[k], l) != 0)
			continue;
		while (p < n && (s[p] == ' ' || s[p] == '\t'))
			p++;
		if (p < n && s[p] == ':') {
			*vstart = p + 1;
			return (int)k + 1;
		}
	}
	return 0;
}

static int add_recipients(journal_envelope_t *e, enum journal_rcpt_type t,
    const char *v)
{
	size_t first = e->nrcpt, i = 0, n = strlen(v);

	while (i < n) {
		size_t s = i, vs, r;
		int quote = 0, angle = 0, ann;
		char *a;

		for (; i < n; i++) {
			if (v[i] == '"' && (i == s || v[i - 1] != '\\'))
				quote = !quote;
			else if (!quote && v[i] == '<')
				angle = 1;
			else if (!quote && v[i] == '>')
				angle = 0;
			else if (!quote && !angle && v[i] == ',')
				break;
		}
		ann = annotation(v + s, i - s, &vs);
		a = ann ? item_addr(v + s + vs, i - s - vs)
		    : item_addr(v + s, i - s);
		i++;
		if (a == NULL)
			return AR_ENOMEM;
		if (*a == '\0') {
			free(a);
			continue;
		}
		if (ann) {
			/* applies to this line's addresses before it */
			for (r = first; r < e->nrcpt; r++) {
				const char **slot = ann == 1 ?
				    &e->rcpt[r].expanded_from :
				    &e->rcpt[r].forwarded_from;
				if (*slot == NULL && (*slot = strdup(a)) == NULL) {
					free(a);
					return AR_ENOMEM;
				}
			}
			free(a);
			continue;
		}
		if (ar_grow((void **)&e->rcpt, &e->caprcpt, e->nrcpt,
		    sizeof(*e->rcpt))) {
			free(a);
			return AR_ENOMEM;
		}
		e->rcpt[e->nrcpt].address = a;
		e->rcpt[e->nrcpt].type = t;
		e->rcpt[e->nrcpt].expanded_from = NULL;
		e->rcpt[e->nrcpt].forwarded_from = NULL;
		e->nrcpt++;
	}
	return 0;
}

static int set_once(journal_envelope_t *e, char **dst, const char *name,
    size_t nlen, const char *value)
{
	if (*dst != NULL)
		return add_field(e, name, nlen, value);
	*dst = dup_trim(value, strlen(value));
	return *dst == NULL ? AR_ENOMEM : 0;
}

static int env_line(journal_envelope_t *e, const char *line)
{
	static const struct {
		const char *name;
		int rcpt;
	} known[] = {
		{ "To", JOURNAL_RCPT_TO }, { "Cc", JOURNAL_RCPT_CC },
		{ "Bcc", JOURNAL_RCPT_BCC },
		{ "Recipient", JOURNAL_RCPT_RECIPIENT },
		{ "Recipients", JOURNAL_RCPT_RECIPIENT },
	};
	const char *colon = strchr(line, ':');
	const char *sp = strpbrk(line, " \t");
	size_t nlen, k;
	char name[128];

	if (colon == NULL || colon == line ||
	    (size_t)(colon - line) >= sizeof(name) ||
	    (sp != NULL && sp < colon))
		return add_field(e, "", 0, line);
	nlen = (size_t)(colon - line);
	memcpy(name, line, nlen);
	name[nlen] = '\0';
	if (!g_ascii_strcasecmp(name, "Sender"))
		return set_once(e, &e->sender, name, nlen, colon + 1);
	if (!g_ascii_strcasecmp(name, "Subject"))
		return set_once(e, &e->subject, name, nlen, colon + 1);
	if (!g_ascii_strcasecmp(name, "Message-Id"))
		return set_once(e, &e->message_id, name, nlen, colon + 1);
	if (!g_ascii_strcasecmp(name, "On-Behalf-Of"))
		return set_once(e, &e->on_behalf_of, name, nlen, colon + 1);
	for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
		if (!g_ascii_strcasecmp(name, known[k].name))
			return add_recipients(e,
			    (enum journal_rcpt_type)known[k].rcpt, colon + 1);
	return add_field(e, name, nlen, colon + 1);
}

int journal_envelope_parse(const char *text, size_t len,
    journal_envelope_t **out)
{
	journal_envelope_t *e = calloc(1, sizeof(*e));
	GString *line = g_string_new(NULL);
	size_t i = 0;
	int rc = 0;

	*out = NULL;
	if (e == NULL) {
		g_string_free(line, TRUE);
		return AR_ENOMEM;
	}
	while (rc == 0 && i <= len) {
		size_t s = i;
		int cont, blank;

		while (i < len && text[i] != '\n')
			i++;
		cont = s < len && (text[s] == ' ' || text[s] == '\t');
		blank = 1;
		for (size_t p = s; p < i; p++)
			if (!is_ws(text[p]) && text[p] != '\0')
				blank = 0;
		if ((!cont || blank) && line->len > 0) {
			rc = env_line(e, line->str);
			g_string_truncate(line, 0);
		}
		for (; !blank && s < i; s++)
			if (text[s] != '\0' && text[s] != '\r')
				g_string_append_c(line, text[s]);
		i++;
	}
	if (rc == 0 && line->len > 0)
		rc = env_line(e, line->str);
	g_string_free(line, TRUE);
	if (rc != 0) {
		journal_envelope_free(e);
		return rc;
	}
	*out = e;
	return 0;
}

void journal_envelope_free(journal_envelope_t *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->nrcpt; i++) {
		free((char *)e->rcpt[i].address);
		free((char *)e->rcpt[i].expanded_from);
		free((char *)e->rcpt[i].forwarded_from);
	}
	for (i = 0; i < e->nfields; i++) {
		free((char *)e->fields[i].name);
		free((char *)e->fields[i].value);
	}
	free(e->rcpt);
	free(e->fields);
	free(e->sender);
	free(e->subject);
	free(e->message_id);
	free(e->on_behalf_of);
	free(e);
}

const char *journal_env_sender(const journal_envelope_t *e)
{
	return e ? e->sender : NULL;
}

const char *journal_env_subject(const journal_envelope_t *e)
{
	return e ? e->subject : NULL;
}

const char *journal_env_message_id(const journal_envelope_t *e)
{
	return e ? e->message_id : NULL;
}

const char *journal_env_on_behalf_of(const journal_envelope_t *e)
{
	return e ? e->on_behalf_of : NULL;
}

size_t journal_env_recipient_count(const journal_envelope_t *e)
{
	return e ? e->nrcpt : 0;
}

const struct journal_recipient *journal_env_recipient(
    const journal_envelope_t *e, size_t i)
{
	return e && i < e->nrcpt ? &e->rcpt[i] : NULL;
}

size_t journal_env_field_count(const journal_envelope_t *e)
{
	return e ? e->nfields : 0;
}

const struct journal_field *journal_env_field(const journal_envelope_t *e,
    size_t i)
{
	return e && i < e->nfields ? &e->fields[i] : NULL;
}

const char *journal_rcpt_type_name(enum journal_rcpt_type type)
{
	switch (type) {
	case JOURNAL_RCPT_TO: return "to";
	case JOURNAL_RCPT_CC: return "cc";
	case JOURNAL_RCPT_BCC: return "bcc";
	case JOURNAL_RCPT_RECIPIENT: return "recipient";
	}
	return "?";
}
