/*
 * index_tenant - index every stored message of one tenant into the search
 * index (tests of the web console; the daemon's own indexing is wired by
 * the search module).  usage: index_tenant DATADIR TENANT
 * Prints the number of messages indexed; one line on stderr for each
 * message that could not be (exit status 1 only when none was indexed).
 */
#include <gmime/gmime.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "archived/config.h"
#include "mime/mime.h"
#include "ingest/ingest.h"
#include "search/search.h"

struct ctx {
	store_t *st;
	search_t *idx;
	const store_tenant_t *t;
	unsigned n, failed;
};

static int one(void *arg, const store_object_t *o)
{
	struct ctx *c = arg;
	store_reader_t *r;
	GMimeStream *s;
	GMimeParser *p;
	GMimeMessage *m;
	search_doc_t *d = NULL;
	const char *rcpt[64];
	size_t nr = 0;
	json_t *meta = o->meta ? json_loads(o->meta, 0, NULL) : NULL, *x;
	size_t i;

	if (store_reader_open(store_get_backend(c->st),
	    store_get_keysvc(c->st), o->tenant, o->id, &r)) {
		c->failed++;
		json_decref(meta);
		return 0;
	}
	s = mime_sealed_stream_new(r, 1);
	p = g_mime_parser_new_with_stream(s);
	m = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	if (m && search_doc_extract(m, 0, &d) == 0) {
		json_array_foreach(json_object_get(json_object_get(meta,
		    "envelope"), "recipients"), i, x) {
			const char *a = json_string_value(json_object_get(x,
			    "address"));
			if (a && nr < AR_ARRAY_LEN(rcpt))
				rcpt[nr++] = a;
		}
		d->rcpt = rcpt;
		d->n_rcpt = nr;
		d->size = o->plain_size;
		d->flags = o->flags;
		if (!d->date)
			d->date = o->received;
		if (search_index_add(c->idx, o->tenant, o->id, d, NULL) == 0)
			c->n++;
		else
			c->failed++;
		d->rcpt = NULL;
		d->n_rcpt = 0;
		search_doc_free(d);
	} else {
		char hex[2 * STORE_ID_LEN + 1];
		fprintf(stderr, "index_tenant: id=%s status=not-parsed\n",
		    ar_hex(o->id, STORE_ID_LEN, hex));
		c->failed++;
	}
	if (m)
		g_object_unref(m);
	g_object_unref(s);
	json_decref(meta);
	return 0;
}

int main(int argc, char **argv)
{
	struct ar_config cfg;
	keysvc_t *ks = NULL;
	store_backend_t *be = NULL;
	store_t *st = NULL;
	search_t *idx = NULL;
	search_open_params_t sp;
	store_tenant_t t;
	struct ctx c;
	char err[1024];

	ar_process_init("index_tenant");
	if (argc != 3) {
		fprintf(stderr, "usage: index_tenant DATADIR TENANT\n");
		return 2;
	}
	mime_init();
	if (ar_config_load(&cfg, argv[1], err, sizeof err) ||
	    keysvc_open(&ks, cfg.keysvc_socket, 5000) ||
	    ar_config_open_store(&cfg, ks, &be, &st, err, sizeof err)) {
		fprintf(stderr, "index_tenant: %s\n", err);
		return 1;
	}
	memset(&sp, 0, sizeof sp);
	sp.data_dir = cfg.data_dir;
	sp.ks = ks;
	if (search_open(&idx, &sp) || store_tenant_get(st, argv[2], &t)) {
		fprintf(stderr, "index_tenant: cannot open index or tenant\n");
		return 1;
	}
	memset(&c, 0, sizeof c);
	c.st = st;
	c.idx = idx;
	c.t = &t;
	store_object_walk(st, t.id, 1, one, &c);
	printf("%u\n", c.n);
	search_close(idx);
	store_close(st);
	store_backend_close(be);
	keysvc_close(ks);
	return c.n == 0 && c.failed ? 1 : 0;
}
