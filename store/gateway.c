/*
 * gateway.c - the filtering gateway's settings in the catalog: the policy
 * in each tenant record (defaults, checks, JSON), the tenants' domains with
 * their routes (DBI_DOMAINS, clear: they route mail before a tenant is
 * known), and the blind lists of recipients, allowed and blocked senders
 * (DBI_GWLISTS).  See store.h "gateway domains and lists".
 *
 * A list key is tenant || list (1 byte) || H(scope) || H(entry), H a
 * 16-byte BLAKE2b keyed with the tenant's "gwlist" subkey (version 1, so
 * rotation keeps lookups working); the value is {"scope","entry"} sealed
 * with the tenant's meta key (label "gwlist", the key's last 33 bytes as
 * associated data), so listing needs the key and lookups reveal nothing.
 */
#include <ctype.h>
#include <arpa/inet.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "catalog_priv.h"
#include "net.h"

/* --- the policy ------------------------------------------------------------ */

static const char *action_names[] = { "deliver", "tag", "quarantine",
    "reject" };

/* Real types gateway/ recognises (gateway/attach); a policy names only
 * these. */
static const char *known_types[] = { "pe", "elf", "macho", "script",
    "lnk", "msi", "ole", "ole-macro", "zip", "ooxml", "ooxml-macro", "jar",
    "odf", "rar", "7z", "gzip", "bzip2", "xz", "cab", "tar", "iso", "pdf",
    "rtf", "html", "image", NULL };

const char *store_gw_action_name(int action)
{
	return action >= 0 && action < (int)AR_ARRAY_LEN(action_names) ?
	    action_names[action] : "?";
}

int store_gw_action_parse(const char *name)
{
	for (size_t i = 0; i < AR_ARRAY_LEN(action_names); i++)
		if (!strcmp(name, action_names[i]))
			return (int)i;
	return -1;
}

void store_gw_policy_defaults(store_gw_policy_t *p)
{
	memset(p, 0, sizeof *p);
	p->spam_tag = 6;
	p->spam_quarantine = 10;
	p->spam_reject = 15;
	p->virus_action = STORE_GW_REJECT;
	p->dmarc_reject = 1;
	p->unscanned_accept = 0;
	p->blocked_action = STORE_GW_REJECT;
	p->encrypted_action = STORE_GW_QUARANTINE;
	/* what gateway/scan.h blocks by default: programs, scripts,
	 * shortcuts, installers, disk images, Office macros */
	ar_strlcpy(p->blocked_types, "pe,elf,macho,script,lnk,msi,iso,jar,"
	    "ole-macro,ooxml-macro", sizeof p->blocked_types);
	p->max_size = 0;
	p->quarantine_days = 14;
	p->archive_quarantined = 1;
	p->digest = 1;
	p->queue_days = 7;
	p->delay_dsn_hours = 0;
	p->n_outbound = 0;
	p->outbound_rate = 600;
}

static int type_known(const char *t, size_t n)
{
	for (size_t i = 0; known_types[i]; i++)
		if (strlen(known_types[i]) == n && !memcmp(known_types[i], t, n))
			return 1;
	return 0;
}

int store_gw_policy_check(const store_gw_policy_t *p, char *why,
    size_t whylen)
{
	const char *t = p->blocked_types;

	if (!(p->spam_tag > 0 && p->spam_tag <= p->spam_quarantine &&
	    p->spam_quarantine <= p->spam_reject && p->spam_reject <= 1000)) {
		snprintf(why, whylen, "spam scores must be 0 < tag (%g) <= "
		    "quarantine (%g) <= reject (%g) <= 1000", p->spam_tag,
		    p->spam_quarantine, p->spam_reject);
		return AR_EINVAL;
	}
	if (p->virus_action != STORE_GW_REJECT &&
	    p->virus_action != STORE_GW_QUARANTINE) {
		snprintf(why, whylen, "virus action must be reject or "
		    "quarantine");
		return AR_EINVAL;
	}
	if (p->blocked_action != STORE_GW_REJECT &&
	    p->blocked_action != STORE_GW_QUARANTINE) {
		snprintf(why, whylen, "blocked attachment action must be reject "
		    "or quarantine");
		return AR_EINVAL;
	}
	if (p->encrypted_action < STORE_GW_TAG ||
	    p->encrypted_action > STORE_GW_REJECT) {
		snprintf(why, whylen, "encrypted archive action must be tag, "
		    "quarantine or reject");
		return AR_EINVAL;
	}
	if (p->quarantine_days < 1 || p->quarantine_days > 3650 ||
	    p->queue_days < 1 || p->queue_days > 30 ||
	    p->delay_dsn_hours > 24 * 30) {
		snprintf(why, whylen, "quarantine days 1..3650, queue days "
		    "1..30, delay DSN hours 0..720");
		return AR_EINVAL;
	}
	if (p->n_outbound > STORE_OUTBOUND_MAX) {
		snprintf(why, whylen, "at most %d outbound networks",
		    STORE_OUTBOUND_MAX);
		return AR_EINVAL;
	}
	for (size_t i = 0; i < p->n_outbound; i++) {
		struct ar_cidr c;
		if (ar_cidr_parse(p->outbound_networks[i], &c)) {
			snprintf(why, whylen, "outbound network '%.64s': not an "
			    "address or address/prefix", p->outbound_networks[i]);
			return AR_EINVAL;
		}
	}
	while (*t) {
		size_t n = strcspn(t, ",");
		if (!type_known(t, n)) {
			snprintf(why, whylen, "unknown attachment type '%.*s' "
			    "(known: pe elf macho script lnk msi ole ole-macro "
			    "zip ooxml ooxml-macro jar odf rar 7z gzip bzip2 xz "
			    "cab tar iso pdf rtf html image)",
			    (int)(n > 40 ? 40 : n), t);
			return AR_EINVAL;
		}
		t += n + (t[n] == ',');
	}
	return 0;
}

json_t *gw_policy_json(const store_gw_policy_t *p)
{
	json_t *o, *nets = json_array();

	for (size_t i = 0; i < p->n_outbound && i < STORE_OUTBOUND_MAX; i++)
		json_array_append_new(nets, json_string(p->outbound_networks[i]));
	o = json_pack("{s:f, s:f, s:f, s:s, s:b, s:b, s:s, s:s, s:s, s:I, "
	    "s:i, s:b, s:b, s:i, s:i}",
	    "spam_tag", p->spam_tag, "spam_quarantine", p->spam_quarantine,
	    "spam_reject", p->spam_reject,
	    "virus_action", store_gw_action_name(p->virus_action),
	    "dmarc_reject", p->dmarc_reject,
	    "unscanned_accept", p->unscanned_accept,
	    "blocked_action", store_gw_action_name(p->blocked_action),
	    "encrypted_action", store_gw_action_name(p->encrypted_action),
	    "blocked_types", p->blocked_types,
	    "max_size", (json_int_t)p->max_size,
	    "quarantine_days", (int)p->quarantine_days,
	    "archive_quarantined", p->archive_quarantined,
	    "digest", p->digest,
	    "queue_days", (int)p->queue_days,
	    "delay_dsn_hours", (int)p->delay_dsn_hours);
	json_object_set_new(o, "outbound_networks", nets);
	json_object_set_new(o, "outbound_rate", json_integer(p->outbound_rate));
	return o;
}

void gw_policy_from_json(const json_t *o, store_gw_policy_t *p)
{
	json_t *v;
	int a;

	store_gw_policy_defaults(p);
	if (!json_is_object(o))
		return;
#define NUM(f) if (json_is_number(v = json_object_get(o, #f))) \
	p->f = json_number_value(v)
#define INT(f) if (json_is_integer(v = json_object_get(o, #f))) \
	p->f = (typeof(p->f))json_integer_value(v)
#define BOOL(f) if (json_is_boolean(v = json_object_get(o, #f))) \
	p->f = json_is_true(v)
#define ACT(f) if (json_is_string(v = json_object_get(o, #f)) && \
	(a = store_gw_action_parse(json_string_value(v))) >= 0) p->f = a
	NUM(spam_tag);
	NUM(spam_quarantine);
	NUM(spam_reject);
	ACT(virus_action);
	BOOL(dmarc_reject);
	BOOL(unscanned_accept);
	ACT(blocked_action);
	ACT(encrypted_action);
	INT(max_size);
	INT(quarantine_days);
	BOOL(archive_quarantined);
	BOOL(digest);
	INT(queue_days);
	INT(delay_dsn_hours);
	INT(outbound_rate);
#undef NUM
#undef INT
#undef BOOL
#undef ACT
	if (json_is_string(v = json_object_get(o, "blocked_types")))
		ar_strlcpy(p->blocked_types, json_string_value(v),
		    sizeof p->blocked_types);
	if (json_is_array(v = json_object_get(o, "outbound_networks"))) {
		size_t i;
		json_t *n;
		json_array_foreach(v, i, n)
			if (json_is_string(n) && p->n_outbound < STORE_OUTBOUND_MAX)
				ar_strlcpy(p->outbound_networks[p->n_outbound++],
				    json_string_value(n), STORE_CIDR_MAX);
	}
}

/* --- names ------------------------------------------------------------------ */

int store_domain_name_norm(char *name)
{
	size_t n = strlen(name), label = 0;
	int dots = 0;

	if (n && name[n - 1] == '.')
		name[--n] = '\0';
	if (n == 0 || n > 253)
		return AR_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				return AR_EINVAL;
			label = 0;
			dots++;
			continue;
		}
		if (!(isalnum(c) || (c == '-' && label > 0)) || ++label > 63)
			return AR_EINVAL;
		name[i] = (char)tolower(c);
	}
	return dots && label && name[n - 1] != '-' ? 0 : AR_EINVAL;
}

int store_route_check(const char *route)
{
	char host[STORE_ROUTE_MAX];
	const char *colon;
	char *end;
	unsigned long port;

	if (!route || strlen(route) >= STORE_ROUTE_MAX)
		return AR_EINVAL;
	if (!strncmp(route, "mx:", 3)) {
		if (!route[3])
			return 0;
		ar_strlcpy(host, route + 3, sizeof host);
		return store_domain_name_norm(host);
	}
	if (!(colon = strrchr(route, ':')) || colon == route)
		return AR_EINVAL;
	port = strtoul(colon + 1, &end, 10);
	if (*end || !colon[1] || port == 0 || port > 65535)
		return AR_EINVAL;
	memcpy(host, route, (size_t)(colon - route));
	host[colon - route] = '\0';
	if (host[0] == '[') {
		unsigned char a[16];
		size_t hl = strlen(host);
		if (hl < 3 || host[hl - 1] != ']')
			return AR_EINVAL;
		host[hl - 1] = '\0';
		return inet_pton(AF_INET, host + 1, a) == 1 ||
		    inet_pton(AF_INET6, host + 1, a) == 1 ? 0 : AR_EINVAL;
	}
	return store_domain_name_norm(host) == 0 || !strcmp(host, "localhost")
	    ? 0 : AR_EINVAL;
}

/* --- domains ---------------------------------------------------------------- */

static char *domain_encode(const store_domain_t *d)
{
	char th[2 * STORE_TENANT_LEN + 1], *s;
	json_t *o, *r = json_array();

	for (size_t i = 0; i < d->n_routes; i++)
		json_array_append_new(r, json_string(d->routes[i]));
	o = json_pack("{s:s, s:b, s:o, s:i, s:s, s:s, s:b}", "tenant",
	    ar_hex(d->tenant, STORE_TENANT_LEN, th), "check_recipients",
	    d->check_recipients, "routes", r, "tls", d->tls, "tls_ca",
	    d->tls_ca, "tls_pin", d->tls_pin, "held", d->held);
	s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s;
}

static int domain_decode(const MDB_val *k, const MDB_val *v,
    store_domain_t *d)
{
	json_t *o = json_loadb(v->mv_data, v->mv_size, 0, NULL), *a;
	const char *s;
	size_t i;
	int rc = AR_ECORRUPT;

	memset(d, 0, sizeof *d);
	if (!o || k->mv_size >= sizeof d->name)
		goto out;
	memcpy(d->name, k->mv_data, k->mv_size);
	if (!(s = json_string_value(json_object_get(o, "tenant"))) ||
	    ar_unhex(s, d->tenant, STORE_TENANT_LEN))
		goto out;
	d->check_recipients = json_is_true(json_object_get(o,
	    "check_recipients"));
	json_array_foreach(json_object_get(o, "routes"), i, a)
		if (d->n_routes < STORE_ROUTES_MAX && json_string_value(a))
			ar_strlcpy(d->routes[d->n_routes++],
			    json_string_value(a), STORE_ROUTE_MAX);
	d->tls = (int)json_integer_value(json_object_get(o, "tls"));
	if ((s = json_string_value(json_object_get(o, "tls_ca"))))
		ar_strlcpy(d->tls_ca, s, sizeof d->tls_ca);
	if ((s = json_string_value(json_object_get(o, "tls_pin"))))
		ar_strlcpy(d->tls_pin, s, sizeof d->tls_pin);
	d->held = json_is_true(json_object_get(o, "held"));
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* An admin entry in the tenant's log: what changed, never list entries. */
int gw_admin_log(store_t *st, MDB_txn *txn, const uint8_t *tenant,
    json_t *detail)
{
	store_tenant_t t;
	unsigned char *blob = NULL;
	size_t bloblen = 0;
	char *text;
	MDB_val k = { STORE_TENANT_LEN, (void *)tenant }, v;
	int rc;

	if ((rc = mdb_get(txn, st->dbi[DBI_TENANTS], &k, &v))) {
		json_decref(detail);
		return cat_err(st, cat_status(rc), "no such tenant");
	}
	/* the current key version is in the record */
	json_t *o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
	memset(&t, 0, sizeof t);
	t.key_version = o ? (uint32_t)json_integer_value(json_object_get(o,
	    "key_version")) : 1;
	json_decref(o);
	text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(detail);
	if (!text)
		return AR_ENOMEM;
	rc = log_seal_detail(st, tenant, t.key_version, text, &blob, &bloblen);
	free(text);
	if (rc)
		return rc;
	rc = log_append_txn(st, txn, tenant, STORE_LOG_ADMIN, NULL, NULL,
	    ar_now(), t.key_version, blob, bloblen, NULL);
	free(blob);
	return rc;
}

struct domain_ctx {
	const store_domain_t *d;
	const char *name;
	const uint8_t *tenant;
	store_domain_t *out;
	store_domain_cb cb;
	void *arg;
};

static int domain_set_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct domain_ctx *c = arg;
	MDB_val k = { strlen(c->d->name), (void *)c->d->name }, v;
	store_domain_t cur;
	char *s;
	int rc;

	rc = mdb_get(txn, st->dbi[DBI_DOMAINS], &k, &v);
	if (rc == 0 && domain_decode(&k, &v, &cur) == 0 &&
	    memcmp(cur.tenant, c->d->tenant, STORE_TENANT_LEN))
		return cat_err(st, AR_EEXIST, "domain %s belongs to another "
		    "tenant", c->d->name);
	k.mv_data = (void *)c->d->tenant;
	k.mv_size = STORE_TENANT_LEN;
	if ((rc = mdb_get(txn, st->dbi[DBI_TENANTS], &k, &v)))
		return cat_err(st, cat_status(rc), "no such tenant");
	if (!(s = domain_encode(c->d)))
		return AR_ENOMEM;
	k.mv_data = (void *)c->d->name;
	k.mv_size = strlen(c->d->name);
	v.mv_data = s;
	v.mv_size = strlen(s);
	rc = mdb_put(txn, st->dbi[DBI_DOMAINS], &k, &v, 0);
	if (rc) {
		free(s);
		return cat_err(st, cat_status(rc), "domains: %s",
		    mdb_strerror(rc));
	}
	rc = gw_admin_log(st, txn, c->d->tenant, json_pack("{s:s, s:s, s:o}",
	    "action", "domain-set", "domain", c->d->name, "record",
	    json_loads(s, 0, NULL)));
	free(s);
	return rc;
}

int store_domain_set(store_t *st, const store_domain_t *d)
{
	store_domain_t n = *d;
	struct domain_ctx c = { &n, NULL, NULL, NULL, NULL, NULL };

	if (store_domain_name_norm(n.name))
		return cat_err(st, AR_EINVAL, "'%s' is not a domain name",
		    d->name);
	if (n.n_routes > STORE_ROUTES_MAX)
		return cat_err(st, AR_ETOOBIG, "at most %d routes",
		    STORE_ROUTES_MAX);
	for (size_t i = 0; i < n.n_routes; i++)
		if (store_route_check(n.routes[i]))
			return cat_err(st, AR_EINVAL, "route '%s': expected "
			    "host:port, [address]:port, mx: or mx:domain",
			    n.routes[i]);
	if (n.tls < STORE_TLS_NONE || n.tls > STORE_TLS_VERIFY)
		return cat_err(st, AR_EINVAL, "TLS policy: none, "
		    "opportunistic or verify");
	if (n.tls_pin[0]) {
		uint8_t pin[32];
		if (strlen(n.tls_pin) != 64 || ar_unhex(n.tls_pin, pin, 32))
			return cat_err(st, AR_EINVAL, "TLS pin: 64 hex digits "
			    "(SHA-256 of the server's public key)");
		for (char *p = n.tls_pin; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	for (const char *p = n.tls_ca; *p; p++)
		if ((unsigned char)*p < 0x20)
			return cat_err(st, AR_EINVAL, "TLS CA file: a control "
			    "character in the path");
	return cat_write(st, domain_set_txn, &c);
}

static int domain_get_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct domain_ctx *c = arg;
	MDB_val k = { strlen(c->name), (void *)c->name }, v;
	int rc = mdb_get(txn, st->dbi[DBI_DOMAINS], &k, &v);

	if (rc)
		return cat_status(rc);
	return domain_decode(&k, &v, c->out);
}

int store_domain_get(store_t *st, const char *name, store_domain_t *out)
{
	char n[STORE_DOMAIN_MAX];
	struct domain_ctx c = { NULL, n, NULL, out, NULL, NULL };

	if (!name || strlen(name) >= sizeof n)
		return AR_ENOENT;
	ar_strlcpy(n, name, sizeof n);
	if (store_domain_name_norm(n))
		return AR_ENOENT;
	return cat_read(st, domain_get_txn, &c);
}

static int domain_remove_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct domain_ctx *c = arg;
	MDB_val k = { strlen(c->name), (void *)c->name }, v;
	store_domain_t cur;
	int rc = mdb_get(txn, st->dbi[DBI_DOMAINS], &k, &v);

	if (rc)
		return cat_err(st, cat_status(rc), "no domain %s", c->name);
	if ((rc = domain_decode(&k, &v, &cur)))
		return rc;
	if (memcmp(cur.tenant, c->tenant, STORE_TENANT_LEN))
		return cat_err(st, AR_ETENANT, "domain %s belongs to another "
		    "tenant", c->name);
	if ((rc = mdb_del(txn, st->dbi[DBI_DOMAINS], &k, NULL)))
		return cat_err(st, cat_status(rc), "domains: %s",
		    mdb_strerror(rc));
	return gw_admin_log(st, txn, c->tenant, json_pack("{s:s, s:s}",
	    "action", "domain-remove", "domain", c->name));
}

int store_domain_remove(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const char *name)
{
	char n[STORE_DOMAIN_MAX];
	struct domain_ctx c = { NULL, n, tenant, NULL, NULL, NULL };

	if (!name || strlen(name) >= sizeof n)
		return cat_err(st, AR_ENOENT, "no such domain");
	ar_strlcpy(n, name, sizeof n);
	if (store_domain_name_norm(n))
		return cat_err(st, AR_EINVAL, "'%s' is not a domain name",
		    name);
	return cat_write(st, domain_remove_txn, &c);
}

struct domain_list {
	store_domain_t *v;
	size_t n, cap;
};

static int domain_walk_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct domain_ctx *c = arg;
	struct domain_list *l = (struct domain_list *)c->out;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	l->n = 0;      /* the transaction may be run again */
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_DOMAINS], &cur)))
		return cat_status(rc);
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		store_domain_t d;
		op = MDB_NEXT;
		if (domain_decode(&k, &v, &d) || (c->tenant &&
		    memcmp(d.tenant, c->tenant, STORE_TENANT_LEN)))
			continue;
		if (ar_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v)) {
			mdb_cursor_close(cur);
			return AR_ENOMEM;
		}
		l->v[l->n++] = d;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : cat_status(rc);
}

int store_domain_walk(store_t *st, const uint8_t *tenant, store_domain_cb cb,
    void *arg)
{
	struct domain_list l = { NULL, 0, 0 };
	struct domain_ctx c = { NULL, NULL, tenant, (store_domain_t *)&l,
	    NULL, NULL };
	int rc = cat_read(st, domain_walk_txn, &c);

	/* the callback runs outside the transaction: it may write */
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		rc = cb(arg, &l.v[i]);
	free(l.v);
	return rc;
}

/* --- lists ------------------------------------------------------------------ */

#define LIST_H     16
#define LIST_KEY   (STORE_TENANT_LEN + 1 + 2 * LIST_H)

/* Normalise a list entry or scope in place: lower case; an address is
 * local@domain, a domain "@domain" ("domain" alone gets its @).  scope may
 * be "" (the whole tenant) when scope_ok.  0 or AR_EINVAL. */
static int entry_norm(const char *in, char *out, size_t outlen,
    int allow_domain, int allow_empty)
{
	const char *at;
	char dom[STORE_DOMAIN_MAX];

	if (!in || strlen(in) + 2 > outlen || strlen(in) >= STORE_ADDR_MAX)
		return AR_EINVAL;
	if (!in[0]) {
		out[0] = '\0';
		return allow_empty ? 0 : AR_EINVAL;
	}
	for (const char *p = in; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127 ||
		    strchr("<>\"\\,;()[]", *p))
			return AR_EINVAL;
	at = strrchr(in, '@');
	if (!at) {                   /* a bare domain */
		if (!allow_domain)
			return AR_EINVAL;
		snprintf(out, outlen, "@%s", in);
		at = out;
	} else {
		if (at == in && !allow_domain)
			return AR_EINVAL;
		if (strchr(in, '@') != at)
			return AR_EINVAL;
		ar_strlcpy(out, in, outlen);
		at = out + (at - in);
	}
	if (strlen(at + 1) >= sizeof dom)
		return AR_EINVAL;
	ar_strlcpy(dom, at + 1, sizeof dom);
	if (store_domain_name_norm(dom))
		return AR_EINVAL;
	for (char *p = out; p < at; p++)
		*p = (char)tolower((unsigned char)*p);
	ar_strlcpy((char *)at + 1, dom, outlen - (size_t)(at + 1 - out));
	return 0;
}

static int list_hash(store_t *st, const uint8_t *tenant, const char *text,
    uint8_t out[LIST_H])
{
	uint8_t key[KEYSVC_KEY_LEN];
	int rc = keysvc_derive(st->ks, tenant, 1, "gwlist", key);

	if (rc)
		return cat_err(st, rc, "%s", keysvc_errmsg(st->ks));
	crypto_generichash(out, LIST_H, (const unsigned char *)text,
	    strlen(text), key, sizeof key);
	sodium_memzero(key, sizeof key);
	return 0;
}

static int list_key(store_t *st, const uint8_t *tenant, int list,
    const char *scope, const char *entry, uint8_t key[LIST_KEY])
{
	int rc;

	memcpy(key, tenant, STORE_TENANT_LEN);
	key[STORE_TENANT_LEN] = (uint8_t)list;
	if ((rc = list_hash(st, tenant, scope, key + STORE_TENANT_LEN + 1)))
		return rc;
	return list_hash(st, tenant, entry, key + STORE_TENANT_LEN + 1 +
	    LIST_H);
}

struct list_ctx {
	const uint8_t *tenant;
	int list;
	const char *scope, *entry;
	uint8_t key[LIST_KEY];
	unsigned char *blob;
	size_t bloblen;
	int add;
	/* walk */
	json_t *items;
};

static int list_change_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct list_ctx *c = arg;
	MDB_val k = { LIST_KEY, c->key }, v = { c->bloblen, c->blob };
	static const char *names[] = { "", "recipients", "allow", "block" };
	int rc;

	if (c->add)
		rc = mdb_put(txn, st->dbi[DBI_GWLISTS], &k, &v, 0);
	else
		rc = mdb_del(txn, st->dbi[DBI_GWLISTS], &k, NULL);
	if (rc == MDB_NOTFOUND)
		return cat_err(st, AR_ENOENT, "not on the list");
	if (rc)
		return cat_err(st, cat_status(rc), "gateway lists: %s",
		    mdb_strerror(rc));
	/* the log says which list changed, not the entry (an address) */
	return gw_admin_log(st, txn, c->tenant, json_pack("{s:s, s:s, s:b}",
	    "action", c->add ? "gateway-list-add" : "gateway-list-remove",
	    "list", names[c->list], "per_recipient", c->scope[0] != 0));
}

static int list_args(store_t *st, int list, const char *scope,
    const char *entry, char *s, char *e)
{
	if (list < STORE_GW_RECIPIENTS || list > STORE_GW_BLOCK)
		return cat_err(st, AR_EINVAL, "no such list");
	if (entry_norm(scope ? scope : "", s, STORE_ADDR_MAX + 2, 0, 1))
		return cat_err(st, AR_EINVAL, "scope '%s' is not an address",
		    scope);
	if (entry_norm(entry, e, STORE_ADDR_MAX + 2,
	    list != STORE_GW_RECIPIENTS, 0))
		return cat_err(st, AR_EINVAL, "'%s' is not %s", entry ?
		    entry : "", list == STORE_GW_RECIPIENTS ? "an address "
		    "(local@domain)" : "an address or a domain");
	if (list == STORE_GW_RECIPIENTS && s[0])
		return cat_err(st, AR_EINVAL, "the recipient list has no "
		    "per-recipient scope");
	return 0;
}

static int list_change(store_t *st, const uint8_t *tenant, int list,
    const char *scope, const char *entry, int add)
{
	char s[STORE_ADDR_MAX + 2], e[STORE_ADDR_MAX + 2];
	struct list_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	if ((rc = list_args(st, list, scope, entry, s, e)))
		return rc;
	c.tenant = tenant;
	c.list = list;
	c.scope = s;
	c.entry = e;
	c.add = add;
	if ((rc = list_key(st, tenant, list, s, e, c.key)))
		return rc;
	if (add) {
		json_t *o = json_pack("{s:s, s:s}", "scope", s, "entry", e);
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!text)
			return AR_ENOMEM;
		rc = meta_seal(st, tenant, 1, "gwlist", c.key + STORE_TENANT_LEN,
		    LIST_KEY - STORE_TENANT_LEN, text, strlen(text), &c.blob,
		    &c.bloblen);
		sodium_memzero(text, strlen(text));
		free(text);
		if (rc)
			return rc;
	}
	rc = cat_write(st, list_change_txn, &c);
	free(c.blob);
	return rc;
}

int store_gw_list_add(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, const char *scope, const char *entry)
{
	return list_change(st, tenant, list, scope, entry, 1);
}

int store_gw_list_remove(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, const char *scope, const char *entry)
{
	return list_change(st, tenant, list, scope, entry, 0);
}

static int list_has_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct list_ctx *c = arg;
	MDB_val k = { LIST_KEY, c->key }, v;
	return cat_status(mdb_get(txn, st->dbi[DBI_GWLISTS], &k, &v));
}

int store_gw_list_has(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, const char *scope, const char *entry)
{
	char s[STORE_ADDR_MAX + 2], e[STORE_ADDR_MAX + 2];
	struct list_ctx c;
	int rc;

	memset(&c, 0, sizeof c);
	if (list < STORE_GW_RECIPIENTS || list > STORE_GW_BLOCK ||
	    entry_norm(scope ? scope : "", s, sizeof s, 0, 1) ||
	    entry_norm(entry, e, sizeof e, list != STORE_GW_RECIPIENTS, 0))
		return AR_ENOENT;       /* malformed: on no list */
	if ((rc = list_key(st, tenant, list, s, e, c.key)))
		return rc;
	return cat_read(st, list_has_txn, &c);
}

int store_gw_list_match(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, const char *rcpt, const char *address)
{
	const char *at = address ? strrchr(address, '@') : NULL;
	const char *scopes[2] = { "", rcpt };
	int rc = AR_ENOENT;

	if (!address || !address[0])
		return AR_ENOENT;
	for (size_t i = 0; i < 2 && rc == AR_ENOENT; i++) {
		if (!scopes[i])
			continue;
		rc = store_gw_list_has(st, tenant, list, scopes[i], address);
		if (rc == AR_ENOENT && at)
			rc = store_gw_list_has(st, tenant, list, scopes[i], at);
	}
	return rc;
}

static int list_walk_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct list_ctx *c = arg;
	uint8_t prefix[STORE_TENANT_LEN + 1];
	MDB_cursor *cur;
	MDB_val k = { sizeof prefix, prefix }, v;
	int rc;

	memcpy(prefix, c->tenant, STORE_TENANT_LEN);
	prefix[STORE_TENANT_LEN] = (uint8_t)c->list;
	json_array_clear(c->items);
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_GWLISTS], &cur)))
		return cat_status(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == LIST_KEY &&
	    !memcmp(k.mv_data, prefix, sizeof prefix)) {
		unsigned char *plain;
		size_t len;
		int orc = meta_open(st, c->tenant, 1, "gwlist",
		    (uint8_t *)k.mv_data + STORE_TENANT_LEN,
		    LIST_KEY - STORE_TENANT_LEN, v.mv_data, v.mv_size, &plain,
		    &len);
		if (orc) {
			mdb_cursor_close(cur);
			return orc;
		}
		json_array_append_new(c->items, json_loadb((char *)plain, len,
		    0, NULL));
		sodium_memzero(plain, len);
		free(plain);
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : cat_status(rc);
}

int store_gw_list_walk(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    int list, store_gw_list_cb cb, void *arg)
{
	struct list_ctx c;
	json_t *it;
	size_t i;
	int rc;

	memset(&c, 0, sizeof c);
	c.tenant = tenant;
	c.list = list;
	if (!(c.items = json_array()))
		return AR_ENOMEM;
	rc = cat_read(st, list_walk_txn, &c);
	json_array_foreach(c.items, i, it) {
		const char *s = json_string_value(json_object_get(it, "scope"));
		const char *e = json_string_value(json_object_get(it, "entry"));
		if (rc)
			break;
		if (s && e)
			rc = cb(arg, s, e);
	}
	json_decref(c.items);
	return rc;
}

/* --- requests to the running gateway ------------------------------------------ */

struct req_ctx {
	const char *json;
	uint8_t key[8];
	char *text;
};

static int req_add_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct req_ctx *c = arg;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t seq = 1;
	int rc;

	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_GWREQ], &cur)))
		return cat_status(rc);
	if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
		seq = ar_get_u64(k.mv_data) + 1;
	mdb_cursor_close(cur);
	ar_put_u64(c->key, seq);
	k.mv_size = 8;
	k.mv_data = c->key;
	v.mv_size = strlen(c->json);
	v.mv_data = (void *)c->json;
	rc = mdb_put(txn, st->dbi[DBI_GWREQ], &k, &v, 0);
	return rc ? cat_err(st, cat_status(rc), "gateway requests: %s",
	    mdb_strerror(rc)) : 0;
}

int store_gw_request_add(store_t *st, const char *json)
{
	struct req_ctx c = { json, { 0 }, NULL };
	return cat_write(st, req_add_txn, &c);
}

static int req_first_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct req_ctx *c = arg;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	free(c->text);
	c->text = NULL;
	if ((rc = mdb_cursor_open(txn, st->dbi[DBI_GWREQ], &cur)))
		return cat_status(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (rc == 0 && k.mv_size == 8 && (c->text = malloc(v.mv_size + 1))) {
		memcpy(c->key, k.mv_data, 8);
		memcpy(c->text, v.mv_data, v.mv_size);
		c->text[v.mv_size] = '\0';
	}
	mdb_cursor_close(cur);
	if (rc == 0 && !c->text)
		return AR_ENOMEM;
	return cat_status(rc);
}

static int req_del_txn(store_t *st, MDB_txn *txn, void *arg)
{
	struct req_ctx *c = arg;
	MDB_val k = { 8, c->key };
	int rc = mdb_del(txn, st->dbi[DBI_GWREQ], &k, NULL);
	return rc && rc != MDB_NOTFOUND ? cat_status(rc) : 0;
}

int store_gw_requests_take(store_t *st, store_gw_request_cb cb, void *arg)
{
	struct req_ctx c = { NULL, { 0 }, NULL };
	int rc;

	while ((rc = cat_read(st, req_first_txn, &c)) == 0) {
		if ((rc = cb(arg, c.text)) || (rc = cat_write(st, req_del_txn,
		    &c)))
			break;
	}
	free(c.text);
	return rc == AR_ENOENT ? 0 : rc;
}
