/*
 * ctl_dkim.c - archivectl tenant dkim add|activate|list|remove: the DKIM
 * keys the gateway signs a tenant's outgoing mail with (store.h "DKIM
 * signing keys").  The private key goes from the file (or the generator) into
 * the store, which keeps it sealed; this process wipes its copies.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ar.h"
#include "ctl.h"

#define PEM_MAX 65536

/* The record as a zone file line: strings of at most 255 bytes; with
 * state, the key's as a comment. */
static void print_record(const store_dkim_key_t *k, int state)
{
	size_t n = strlen(k->record);

	printf("%s._domainkey.%s IN TXT", k->selector, k->domain);
	for (size_t i = 0; i < n; i += 250)
		printf(" \"%.*s\"", (int)(n - i < 250 ? n - i : 250),
		    k->record + i);
	if (state)
		printf(" ; %s, %s %u bits", k->active ? "active" : "standby",
		    k->alg, k->bits);
	printf("\n");
}

static json_t *key_json(const store_dkim_key_t *k)
{
	char ts[32], name[STORE_DOMAIN_MAX + STORE_DKIM_SELECTOR_MAX + 16];

	snprintf(name, sizeof name, "%s._domainkey.%s", k->selector,
	    k->domain);
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:b}", "domain",
	    k->domain, "selector", k->selector, "alg", k->alg, "bits",
	    (int)k->bits, "dns_name", name, "record", k->record, "created",
	    ar_time_fmt(k->created, ts, sizeof ts), "active", k->active);
}

/* Read a PEM file into malloc'd memory (wiped by the caller). */
static int read_pem(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return ctl_fail(AR_EIO, "--key-file %s: cannot open it", path);
	if (!(buf = malloc(PEM_MAX + 1))) {
		fclose(f);
		return ctl_fail(AR_ENOMEM, "out of memory");
	}
	n = fread(buf, 1, PEM_MAX + 1, f);
	fclose(f);
	if (n == 0 || n > PEM_MAX) {
		sodium_memzero(buf, PEM_MAX + 1);
		free(buf);
		return ctl_fail(AR_EINVAL, "--key-file %s: %s", path, n ?
		    "over 64 KiB, not a key" : "empty");
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int dkim_add(struct ctl *c, const store_tenant_t *t,
    const char *domain, const char *selector, const char *file,
    const char *alg, int standby)
{
	store_dkim_key_t k;
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (file && (rc = read_pem(file, &pem, &len)))
		return rc;
	rc = store_dkim_add(c->st, t->id, domain, selector, pem, len, alg,
	    standby, &k);
	if (pem) {
		sodium_memzero(pem, PEM_MAX + 1);
		free(pem);
	}
	if (rc)
		return ctl_fail(rc, "tenant dkim add %s: %s", t->name,
		    store_errmsg(c->st));
	if (c->json) {
		ctl_json_out(key_json(&k));
		return CTL_OK;
	}
	print_record(&k, 0);
	if (standby)
		fprintf(stderr, "archivectl: %s key for %s added on standby "
		    "(selector %s): publish the record above in DNS, then "
		    "tenant dkim activate --tenant %s --domain %s --selector "
		    "%s\n", k.alg, k.domain, k.selector, t->name, k.domain,
		    k.selector);
	else
		fprintf(stderr, "archivectl: %s key for %s added (selector %s): "
		    "publish the record above in DNS; outgoing mail from %s is "
		    "signed from now on\n", k.alg, k.domain, k.selector,
		    k.domain);
	return CTL_OK;
}

struct list_ctx {
	struct ctl *c;
	json_t *arr;
};

static int list_cb(void *arg, const store_dkim_key_t *k)
{
	struct list_ctx *l = arg;

	if (l->c->json)
		json_array_append_new(l->arr, key_json(k));
	else
		print_record(k, 1);
	return 0;
}

static int show_cb(void *arg, const store_dkim_key_t *k)
{
	int *n = arg;

	printf("gateway dkim:    %s %s selector %s (%s, %u bits)\n",
	    k->domain, k->active ? "signed with" : "standby", k->selector,
	    k->alg, k->bits);
	(*n)++;
	return 0;
}

void ctl_dkim_tenant_print(struct ctl *c, const store_tenant_t *t)
{
	int n = 0;

	if (store_dkim_walk(c->st, t->id, show_cb, &n) == 0 && n == 0)
		printf("gateway dkim:    no key (outgoing mail unsigned)\n");
}

static int show_json_cb(void *arg, const store_dkim_key_t *k)
{
	json_array_append_new(arg, key_json(k));
	return 0;
}

json_t *ctl_dkim_tenant_json(struct ctl *c, const store_tenant_t *t)
{
	json_t *a = json_array();

	store_dkim_walk(c->st, t->id, show_json_cb, a);
	return a;
}

int ctl_tenant_dkim(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "domain", required_argument, NULL, 'd' },
		{ "selector", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "generate", no_argument, NULL, 'g' },
		{ "algorithm", required_argument, NULL, 'a' },
		{ "standby", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *domain = NULL, *selector = NULL;
	const char *file = NULL, *alg = NULL, *sub;
	store_tenant_t t;
	int ch, rc, gen = 0, standby = 0;

	if (argc < 2)
		return ctl_usage("tenant dkim needs add, activate, list or "
		    "remove");
	sub = argv[1];
	optind = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': tenant = optarg; break;
		case 'd': domain = optarg; break;
		case 's': selector = optarg; break;
		case 'k': file = optarg; break;
		case 'g': gen = 1; break;
		case 'a': alg = optarg; break;
		case 'S': standby = 1; break;
		default:
			return ctl_usage("tenant dkim %s: unknown option", sub);
		}
	}
	if (optind != argc - 1)
		return ctl_usage("tenant dkim %s takes options only", sub);
	if (!tenant)
		return ctl_usage("tenant dkim %s needs --tenant NAME", sub);
	if (!strcmp(sub, "add")) {
		if (!domain || !selector)
			return ctl_usage("tenant dkim add --tenant T --domain D "
			    "--selector S [--key-file PEM | --generate "
			    "[--algorithm rsa|ed25519]] [--standby]");
		if (file && (gen || alg))
			return ctl_usage("tenant dkim add: --key-file or "
			    "--generate, not both");
		if ((rc = ctl_tenant(c, tenant, &t)))
			return rc;
		return dkim_add(c, &t, domain, selector, file, alg, standby);
	}
	if (file || gen || alg || standby)
		return ctl_usage("tenant dkim %s: --key-file, --generate, "
		    "--algorithm and --standby are add's", sub);
	if (!strcmp(sub, "activate")) {
		store_dkim_key_t prev;
		if (!domain || !selector)
			return ctl_usage("tenant dkim activate --tenant T "
			    "--domain D --selector S");
		if ((rc = ctl_tenant(c, tenant, &t)))
			return rc;
		if ((rc = store_dkim_activate(c->st, t.id, domain, selector,
		    &prev)))
			return ctl_fail(rc, "tenant dkim activate %s: %s", t.name,
			    store_errmsg(c->st));
		printf("outgoing mail from %s is signed with selector %s",
		    domain, selector);
		if (prev.selector[0])
			printf(" (selector %s on standby: remove it once mail it "
			    "signed is no longer checked)", prev.selector);
		printf("\n");
		return CTL_OK;
	}
	if (!strcmp(sub, "remove")) {
		if (!domain)
			return ctl_usage("tenant dkim remove --tenant T --domain "
			    "D [--selector S]");
		if ((rc = ctl_tenant(c, tenant, &t)))
			return rc;
		store_dkim_key_t gone;
		if ((rc = store_dkim_remove(c->st, t.id, domain, selector,
		    &gone)))
			return ctl_fail(rc, "tenant dkim remove %s: %s", t.name,
			    store_errmsg(c->st));
		printf("DKIM key %s of %s removed%s\n", gone.selector,
		    gone.domain, gone.active ? ": it was the active key, mail "
		    "from the domain is sent unsigned until another is "
		    "activated" : "");
		return CTL_OK;
	}
	if (!strcmp(sub, "list")) {
		struct list_ctx l = { c, json_array() };
		if (domain || selector)
			return ctl_usage("tenant dkim list --tenant T");
		if ((rc = ctl_tenant(c, tenant, &t))) {
			json_decref(l.arr);
			return rc;
		}
		if ((rc = store_dkim_walk(c->st, t.id, list_cb, &l))) {
			json_decref(l.arr);
			return ctl_fail(rc, "%s", store_errmsg(c->st));
		}
		if (c->json)
			ctl_json_out(l.arr);
		else
			json_decref(l.arr);
		return CTL_OK;
	}
	return ctl_usage("unknown tenant dkim command '%s' (add, activate, "
	    "list, remove)", sub);
}
