/*
 * ctl_gateway.c - archivectl's filtering gateway settings: a tenant's
 * gateway policy and domains (options of `tenant set`, shown by `tenant
 * show`), and its lists (`gateway recipients|allow|block`).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ar.h"
#include "ctl.h"
#include "net.h"

/* --- tenant set: policy and domain options ---------------------------------- */

static int parse_double(const char *name, const char *v, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(v, &end);
	if (*end || errno || end == v)
		return ctl_usage("--%s '%s': a number", name, v);
	return 0;
}

static int parse_uint(const char *name, const char *v, uint64_t max,
    uint64_t *out)
{
	char *end;
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (*end || errno || end == v || v[0] == '-' || *out > max)
		return ctl_usage("--%s '%s': a whole number up to %llu", name, v,
		    (unsigned long long)max);
	return 0;
}

static int parse_yesno(const char *name, const char *v, int *out)
{
	if (!strcmp(v, "yes"))
		*out = 1;
	else if (!strcmp(v, "no"))
		*out = 0;
	else
		return ctl_usage("--%s '%s': say yes or no", name, v);
	return 0;
}

static int parse_action(const char *name, const char *v, int *out,
    unsigned allowed)
{
	int a = store_gw_action_parse(v);
	if (a < 0 || !(allowed & (1u << a))) {
		char list[96] = "";
		for (int i = 0; i < 4; i++)
			if (allowed & (1u << i)) {
				size_t n = strlen(list);
				snprintf(list + n, sizeof list - n, "%s%s",
				    n ? ", " : "", store_gw_action_name(i));
			}
		return ctl_usage("--%s '%s': one of %s", name, v, list);
	}
	*out = a;
	return 0;
}

#define A(x) (1u << STORE_GW_##x)

int ctl_gw_policy_opt(store_gw_policy_t *p, const char *name,
    const char *v)
{
	uint64_t u;
	int rc;

	if (!strcmp(name, "spam-tag"))
		return parse_double(name, v, &p->spam_tag);
	if (!strcmp(name, "spam-quarantine"))
		return parse_double(name, v, &p->spam_quarantine);
	if (!strcmp(name, "spam-reject"))
		return parse_double(name, v, &p->spam_reject);
	if (!strcmp(name, "virus-action"))
		return parse_action(name, v, &p->virus_action, A(REJECT) |
		    A(QUARANTINE));
	if (!strcmp(name, "blocked-action"))
		return parse_action(name, v, &p->blocked_action, A(REJECT) |
		    A(QUARANTINE));
	if (!strcmp(name, "encrypted-action"))
		return parse_action(name, v, &p->encrypted_action, A(TAG) |
		    A(QUARANTINE) | A(REJECT));
	if (!strcmp(name, "dmarc-reject"))
		return parse_yesno(name, v, &p->dmarc_reject);
	if (!strcmp(name, "unscanned")) {
		if (!strcmp(v, "tempfail"))
			p->unscanned_accept = 0;
		else if (!strcmp(v, "accept"))
			p->unscanned_accept = 1;
		else
			return ctl_usage("--unscanned '%s': tempfail (451, the "
			    "sender retries) or accept (tagged)", v);
		return 0;
	}
	if (!strcmp(name, "blocked-types")) {
		if (strlen(v) >= sizeof p->blocked_types)
			return ctl_usage("--blocked-types: too long");
		ar_strlcpy(p->blocked_types, v, sizeof p->blocked_types);
		return 0;
	}
	if (!strcmp(name, "max-size")) {
		int64_t sz;
		if (ar_conf_parse_number(v, AR_CONF_SIZE, &sz) || sz < 0)
			return ctl_usage("--max-size '%s': a size (10M, 1G; 0: no "
			    "limit of its own)", v);
		p->max_size = (uint64_t)sz;
		return 0;
	}
	if (!strcmp(name, "quarantine-days")) {
		if ((rc = parse_uint(name, v, 3650, &u)))
			return rc;
		p->quarantine_days = (uint32_t)u;
		return 0;
	}
	if (!strcmp(name, "queue-days")) {
		if ((rc = parse_uint(name, v, 30, &u)))
			return rc;
		p->queue_days = (uint32_t)u;
		return 0;
	}
	if (!strcmp(name, "delay-dsn-hours")) {
		if ((rc = parse_uint(name, v, 720, &u)))
			return rc;
		p->delay_dsn_hours = (uint32_t)u;
		return 0;
	}
	if (!strcmp(name, "outbound-network")) {
		struct ar_cidr cidr;
		if (ar_cidr_parse(v, &cidr) || strlen(v) >= STORE_CIDR_MAX)
			return ctl_usage("--outbound-network '%s': not an address "
			    "or address/prefix", v);
		for (size_t i = 0; i < p->n_outbound; i++)
			if (!strcmp(p->outbound_networks[i], v))
				return 0;
		if (p->n_outbound == STORE_OUTBOUND_MAX)
			return ctl_usage("at most %d outbound networks",
			    STORE_OUTBOUND_MAX);
		ar_strlcpy(p->outbound_networks[p->n_outbound++], v,
		    STORE_CIDR_MAX);
		return 0;
	}
	if (!strcmp(name, "no-outbound-networks")) {
		p->n_outbound = 0;
		return 0;
	}
	if (!strcmp(name, "outbound-rate")) {
		if ((rc = parse_uint(name, v, 1000000, &u)))
			return rc;
		p->outbound_rate = (uint32_t)u;
		return 0;
	}
	if (!strcmp(name, "archive-quarantined"))
		return parse_yesno(name, v, &p->archive_quarantined);
	if (!strcmp(name, "digest"))
		return parse_yesno(name, v, &p->digest);
	return ctl_usage("unknown gateway option --%s", name);
}

int ctl_gw_domain_opt(struct ctl_gw_domain *d, const char *name,
    const char *v)
{
	if (!strcmp(name, "domain")) {
		if (d->set.name[0])
			return ctl_usage("one --domain per tenant set");
		ar_strlcpy(d->set.name, v, sizeof d->set.name);
		if (store_domain_name_norm(d->set.name))
			return ctl_usage("--domain '%s': not a domain name", v);
		return 0;
	}
	if (!strcmp(name, "relay-to")) {
		if (d->set.n_routes == STORE_ROUTES_MAX)
			return ctl_usage("at most %d --relay-to", STORE_ROUTES_MAX);
		if (store_route_check(v))
			return ctl_usage("--relay-to '%s': host:port, "
			    "[address]:port, mx: or mx:domain", v);
		ar_strlcpy(d->set.routes[d->set.n_routes++], v, STORE_ROUTE_MAX);
		d->given |= 1;
		return 0;
	}
	if (!strcmp(name, "tls")) {
		if (!strcmp(v, "none"))
			d->set.tls = STORE_TLS_NONE;
		else if (!strcmp(v, "opportunistic"))
			d->set.tls = STORE_TLS_OPPORTUNISTIC;
		else if (!strcmp(v, "verify"))
			d->set.tls = STORE_TLS_VERIFY;
		else
			return ctl_usage("--tls '%s': none, opportunistic or "
			    "verify", v);
		d->given |= 2;
		return 0;
	}
	if (!strcmp(name, "tls-ca")) {
		ar_strlcpy(d->set.tls_ca, v, sizeof d->set.tls_ca);
		d->given |= 4;
		return 0;
	}
	if (!strcmp(name, "tls-pin")) {
		ar_strlcpy(d->set.tls_pin, v, sizeof d->set.tls_pin);
		d->given |= 8;
		return 0;
	}
	if (!strcmp(name, "check-recipients")) {
		d->given |= 16;
		return parse_yesno(name, v, &d->set.check_recipients);
	}
	if (!strcmp(name, "remove-domain")) {
		ar_strlcpy(d->remove, v, sizeof d->remove);
		return 0;
	}
	return ctl_usage("unknown domain option --%s", name);
}

int ctl_gw_domain_apply(struct ctl *c, const store_tenant_t *t,
    struct ctl_gw_domain *d)
{
	store_domain_t cur;
	int rc;

	if (d->remove[0] && (rc = store_domain_remove(c->st, t->id,
	    d->remove)))
		return ctl_fail(rc, "--remove-domain %s: %s", d->remove,
		    store_errmsg(c->st));
	if (!d->set.name[0]) {
		if (d->given)
			return ctl_usage("--relay-to, --tls, --tls-ca, --tls-pin "
			    "and --check-recipients go with --domain DOMAIN");
		return 0;
	}
	/* an existing domain keeps what is not given */
	if (store_domain_get(c->st, d->set.name, &cur) == 0 &&
	    !memcmp(cur.tenant, t->id, STORE_TENANT_LEN)) {
		if (d->given & 1) {
			cur.n_routes = d->set.n_routes;
			memcpy(cur.routes, d->set.routes, sizeof cur.routes);
		}
		if (d->given & 2)
			cur.tls = d->set.tls;
		if (d->given & 4)
			memcpy(cur.tls_ca, d->set.tls_ca, sizeof cur.tls_ca);
		if (d->given & 8)
			memcpy(cur.tls_pin, d->set.tls_pin, sizeof cur.tls_pin);
		if (d->given & 16)
			cur.check_recipients = d->set.check_recipients;
		if (!cur.n_routes)
			return ctl_usage("--domain %s has no route: give "
			    "--relay-to host:port (or mx:)", cur.name);
		d->set = cur;
	} else {
		if (!(d->given & 1))
			return ctl_usage("a new --domain needs --relay-to "
			    "host:port (the tenant's mail server; mx: to look "
			    "up another domain's MX)");
		if (!(d->given & 2))
			d->set.tls = STORE_TLS_OPPORTUNISTIC;
	}
	if (d->set.tls == STORE_TLS_VERIFY && !d->set.tls_pin[0] &&
	    d->set.tls_ca[0] && access(d->set.tls_ca, R_OK))
		return ctl_fail(AR_ENOENT, "--tls-ca %s: %s", d->set.tls_ca,
		    strerror(errno));
	memcpy(d->set.tenant, t->id, STORE_TENANT_LEN);
	if ((rc = store_domain_set(c->st, &d->set)))
		return ctl_fail(rc, "--domain %s: %s", d->set.name,
		    store_errmsg(c->st));
	return 0;
}

/* --- tenant show ------------------------------------------------------------ */

static const char *tls_name(int t)
{
	return t == STORE_TLS_NONE ? "none" : t == STORE_TLS_VERIFY ?
	    "verify" : "opportunistic";
}

static int domain_json_cb(void *arg, const store_domain_t *d)
{
	json_t *arr = arg, *r = json_array();
	for (size_t i = 0; i < d->n_routes; i++)
		json_array_append_new(r, json_string(d->routes[i]));
	json_array_append_new(arr, json_pack("{s:s, s:o, s:s, s:s, s:s, s:b, "
	    "s:b}", "domain", d->name, "relay_to", r, "tls", tls_name(d->tls),
	    "tls_ca", d->tls_ca, "tls_pin", d->tls_pin, "check_recipients",
	    d->check_recipients, "held", d->held));
	return 0;
}

void ctl_gw_tenant_json(struct ctl *c, const store_tenant_t *t, json_t *o)
{
	json_t *doms = json_array(), *p = json_object();
	const store_gw_policy_t *g = &t->gw;

	store_domain_walk(c->st, t->id, domain_json_cb, doms);
	json_object_set_new(o, "domains", doms);
	json_object_set_new(p, "spam_tag", json_real(g->spam_tag));
	json_object_set_new(p, "spam_quarantine", json_real(g->spam_quarantine));
	json_object_set_new(p, "spam_reject", json_real(g->spam_reject));
	json_object_set_new(p, "virus_action",
	    json_string(store_gw_action_name(g->virus_action)));
	json_object_set_new(p, "dmarc_reject", json_boolean(g->dmarc_reject));
	json_object_set_new(p, "unscanned", json_string(g->unscanned_accept ?
	    "accept" : "tempfail"));
	json_object_set_new(p, "blocked_action",
	    json_string(store_gw_action_name(g->blocked_action)));
	json_object_set_new(p, "encrypted_action",
	    json_string(store_gw_action_name(g->encrypted_action)));
	json_object_set_new(p, "blocked_types", json_string(g->blocked_types));
	json_object_set_new(p, "max_size", json_integer((json_int_t)g->max_size));
	json_object_set_new(p, "quarantine_days",
	    json_integer(g->quarantine_days));
	json_object_set_new(p, "archive_quarantined",
	    json_boolean(g->archive_quarantined));
	json_object_set_new(p, "digest", json_boolean(g->digest));
	json_object_set_new(p, "queue_days", json_integer(g->queue_days));
	json_object_set_new(p, "delay_dsn_hours",
	    json_integer(g->delay_dsn_hours));
	{
		json_t *nets = json_array();
		for (size_t i = 0; i < g->n_outbound; i++)
			json_array_append_new(nets,
			    json_string(g->outbound_networks[i]));
		json_object_set_new(p, "outbound_networks", nets);
	}
	json_object_set_new(p, "outbound_rate", json_integer(g->outbound_rate));
	json_object_set_new(p, "dkim", ctl_dkim_tenant_json(c, t));
	json_object_set_new(o, "gateway", p);
}

static int domain_print_cb(void *arg, const store_domain_t *d)
{
	(void)arg;
	printf("gateway domain:  %s -> ", d->name);
	for (size_t i = 0; i < d->n_routes; i++)
		printf("%s%s", i ? ", " : "", d->routes[i]);
	printf(" (tls %s%s%s%s)\n", tls_name(d->tls), d->check_recipients ?
	    ", listed recipients only" : "", d->tls_pin[0] ? ", pinned key" :
	    "", d->held ? ", HELD" : "");
	return 0;
}

void ctl_gw_tenant_print(struct ctl *c, const store_tenant_t *t)
{
	const store_gw_policy_t *g = &t->gw;

	store_domain_walk(c->st, t->id, domain_print_cb, NULL);
	printf("gateway spam:    tag >= %g, quarantine >= %g, reject >= %g; "
	    "DMARC reject %s\n", g->spam_tag, g->spam_quarantine,
	    g->spam_reject, g->dmarc_reject ? "enforced" : "ignored");
	printf("gateway virus:   %s; scanners down: %s\n",
	    store_gw_action_name(g->virus_action), g->unscanned_accept ?
	    "accept and tag" : "tempfail (451)");
	printf("gateway types:   %s blocked (%s); encrypted archives: %s\n",
	    g->blocked_types, store_gw_action_name(g->blocked_action),
	    store_gw_action_name(g->encrypted_action));
	printf("gateway limits:  max size %llu%s, quarantine %u days (%s), "
	    "queue %u days\n", (unsigned long long)g->max_size,
	    g->max_size ? " bytes" : " (SMTP limit)", g->quarantine_days,
	    g->archive_quarantined ? "archived too" : "not archived",
	    g->queue_days);
	printf("gateway outbound: from ");
	for (size_t i = 0; i < g->n_outbound; i++)
		printf("%s%s", i ? ", " : "", g->outbound_networks[i]);
	printf("%s%s; %u messages a minute%s\n", g->n_outbound ? "" : "no network",
	    t->smtp_user[0] ? " or AUTH as the SMTP user" : "",
	    g->outbound_rate, g->outbound_rate ? "" : " (no limit)");
	ctl_dkim_tenant_print(c, t);
}

/* --- gateway recipients|allow|block ------------------------------------------ */

static const char *list_names[] = { NULL, "recipients", "allow", "block" };

struct walk_ctx {
	json_t *arr;
	int json;
};

static int list_cb(void *arg, const char *scope, const char *entry)
{
	struct walk_ctx *w = arg;
	if (w->json)
		json_array_append_new(w->arr, json_pack("{s:s, s:s}", "entry",
		    entry, "for", scope[0] ? scope : "*"));
	else
		printf("%-40s %s\n", entry, scope[0] ? scope : "(whole tenant)");
	return 0;
}

int cmd_gateway(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "for", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *scope = "", *verb;
	store_tenant_t t;
	int list = 0, ch, rc;

	if (argc < 3)
		return ctl_usage("gateway recipients|allow|block add|remove|list "
		    "--tenant NAME [--for RCPT] [ENTRY...]");
	for (int i = 1; i < 4; i++)
		if (!strcmp(argv[1], list_names[i]))
			list = i;
	if (!list)
		return ctl_usage("gateway: recipients, allow or block, not '%s'",
		    argv[1]);
	verb = argv[2];
	optind = 0;
	argc -= 2;
	argv += 2;
	while ((ch = getopt_long(argc, argv, "t:f:", opts, NULL)) != -1) {
		if (ch == 't')
			tenant = optarg;
		else if (ch == 'f')
			scope = optarg;
		else
			return ctl_usage("gateway %s %s --tenant NAME [--for RCPT] "
			    "[ENTRY...]", list_names[list], verb);
	}
	if (!tenant)
		return ctl_usage("gateway %s needs --tenant NAME",
		    list_names[list]);
	if (list == STORE_GW_RECIPIENTS && scope[0])
		return ctl_usage("the recipient list has no --for");
	if ((rc = ctl_tenant(c, tenant, &t)))
		return rc;
	if (!strcmp(verb, "list")) {
		struct walk_ctx w = { json_array(), c->json };
		if (optind != argc)
			return ctl_usage("gateway %s list takes no ENTRY",
			    list_names[list]);
		if ((rc = store_gw_list_walk(c->st, t.id, list, list_cb, &w))) {
			json_decref(w.arr);
			return ctl_fail(rc, "%s", store_errmsg(c->st));
		}
		if (c->json)
			ctl_json_out(w.arr);
		else
			json_decref(w.arr);
		return CTL_OK;
	}
	if (strcmp(verb, "add") && strcmp(verb, "remove"))
		return ctl_usage("gateway %s: add, remove or list, not '%s'",
		    list_names[list], verb);
	if (optind == argc)
		return ctl_usage("gateway %s %s: which ENTRY (an address, or "
		    "@domain)?", list_names[list], verb);
	for (int i = optind; i < argc; i++) {
		rc = !strcmp(verb, "add") ? store_gw_list_add(c->st, t.id, list,
		    scope, argv[i]) : store_gw_list_remove(c->st, t.id, list,
		    scope, argv[i]);
		if (rc)
			return ctl_fail(rc, "gateway %s %s %s: %s",
			    list_names[list], verb, argv[i], store_errmsg(c->st));
	}
	if (!c->json)
		printf("%s: %d %s\n", list_names[list], argc - optind,
		    !strcmp(verb, "add") ? "added" : "removed");
	return CTL_OK;
}
