/*
 * test_sources.c - ingest_sources (archivectl import's walk) telling
 * messages from files that are not mail: every line up to the first empty
 * one a "Name: value" field or its continuation; an mbox "From " line may
 * come first; a header longer than the part looked at is judged on its
 * complete lines; in an mbox each message is judged on its own.
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "ingest/ingest.h"
#include "testlib.h"

struct seen {
	char name[64];
	uint64_t offset;
	const char *problem;
};

struct walk {
	struct seen s[64];
	size_t n;
};

static int cb(void *arg, const ingest_source_t *src)
{
	struct walk *w = arg;
	const char *base = strrchr(src->path, '/');
	if (w->n < AR_ARRAY_LEN(w->s)) {
		ar_strlcpy(w->s[w->n].name, base ? base + 1 : src->path,
		    sizeof w->s[w->n].name);
		w->s[w->n].offset = src->offset;
		w->s[w->n].problem = src->problem;
		w->n++;
	}
	return 0;
}

static const struct seen *find(const struct walk *w, const char *name,
    uint64_t offset)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->s[i].name, name) && w->s[i].offset == offset)
			return &w->s[i];
	return NULL;
}

static void put(const char *dir, const char *name, const void *data,
    size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	CHECK_RC(ar_file_write_atomic(path, data, len, 0600), 0);
}

#define PUT(dir, name, lit) put(dir, name, lit, sizeof lit - 1)

int main(void)
{
	char *dir = tl_tmpdir("sources"), err[512];
	struct walk w;
	const struct seen *x;
	char *big;
	size_t n;

	/* messages */
	PUT(dir, "a.eml", "From: a@x.example\r\nSubject: s\r\n\r\nbody\r\n");
	PUT(dir, "b.eml", "From a@x.example Thu Jan  1 00:00:00 1970\n"
	    "Received: from x\n\tby y\nSubject : old syntax\n\nbody\n");
	PUT(dir, "c.eml", "Subject: a header and nothing else");
	PUT(dir, "d.eml", "X-Empty:\nSubject: x\n\n");
	/* not messages */
	PUT(dir, "MANIFEST.tsv", "file\tsource\tsha256\n000001.eml\tx\tab\n");
	PUT(dir, "SOURCES.txt", "Where these came from\n=====\n\ntext\n");
	PUT(dir, "notes.txt", "Note: the first line looks like one\nbut "
	    "this one does not\n\nbody\n");
	PUT(dir, "blank.eml", "\nFrom: a@x.example\n\nbody\n");
	PUT(dir, "indent.eml", " Subject: x\n\nbody\n");
	PUT(dir, "png.bin", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
	/* a first header line longer than the part looked at (8 KiB) */
	n = 20000;
	big = malloc(n + 16);
	memcpy(big, "X-Long: ", 8);
	memset(big + 8, 'v', n - 8);
	memcpy(big + n, "\n\nbody\n", 7);
	put(dir, "long.eml", big, n + 7);
	/* ... and a 20000-byte first line with no colon at all */
	memset(big, 'w', n);
	put(dir, "nocolon.txt", big, n + 7);
	free(big);
	/* an mbox: the second message has no header */
	PUT(dir, "box.mbox", "From a Thu Jan  1 00:00:00 1970\n"
	    "Subject: one\n\nfirst\n\n"
	    "From b Thu Jan  1 00:00:00 1970\n"
	    "just some text\n\n"
	    "From c Thu Jan  1 00:00:00 1970\n"
	    "Subject: three\n\nthird\n");

	memset(&w, 0, sizeof w);
	CHECK_RC(ingest_sources(dir, cb, &w, err, sizeof err), 0);
	CHECK(w.n == 15);
	for (size_t i = 0; i < 4; i++) {
		static const char *const ok[] = { "a.eml", "b.eml", "c.eml",
		    "d.eml" };
		x = find(&w, ok[i], 0);
		CHECK(x && !x->problem);
		if (x && x->problem)
			fprintf(stderr, "%s: %s\n", ok[i], x->problem);
	}
	x = find(&w, "long.eml", 0);
	CHECK(x && !x->problem);
	x = find(&w, "MANIFEST.tsv", 0);
	CHECK(x && x->problem && strstr(x->problem, "first line"));
	x = find(&w, "SOURCES.txt", 0);
	CHECK(x && x->problem && strstr(x->problem, "first line"));
	x = find(&w, "notes.txt", 0);
	CHECK(x && x->problem && strstr(x->problem, "before the first empty"));
	x = find(&w, "blank.eml", 0);
	CHECK(x && x->problem && strstr(x->problem, "empty"));
	x = find(&w, "indent.eml", 0);
	CHECK(x && x->problem && strstr(x->problem, "indented"));
	x = find(&w, "png.bin", 0);
	CHECK(x && x->problem);
	x = find(&w, "nocolon.txt", 0);
	CHECK(x && x->problem);
	{
		size_t ok = 0, bad = 0;
		for (size_t i = 0; i < w.n; i++) {
			if (strcmp(w.s[i].name, "box.mbox"))
				continue;
			if (w.s[i].problem)
				bad++;
			else
				ok++;
		}
		CHECK(ok == 2 && bad == 1);
	}
	tl_rmrf(dir);
	free(dir);
	return tl_done();
}
