/*
 * test_search.c - the blind index against real SQLite files, the real
 * key service and the real tokenizer; golden files of the query language.
 *
 *   test_search                       all tests (ctest)
 *   test_search --dump-query 'text'   print the AST / FTS5 / SQL of a query
 *   test_search --bench DIR [N]       index N .eml files of DIR, time it
 */
#include "testlib.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "ar.h"
#include "search/search.h"
#include "search/search_priv.h"

static const uint8_t TA[KEYSVC_TENANT_LEN] = { 0xa1, 0xa2, 0xa3, 1 };
static const uint8_t TB[KEYSVC_TENANT_LEN] = { 0xb1, 0xb2, 0xb3, 2 };

static search_t *idx;

static int64_t day(int y, int m, int d)
{
	struct tm tm = { 0 };
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = 12;
	return (int64_t)timegm(&tm);
}

static void mkid(uint8_t id[SEARCH_ID_LEN], int n, int tenant)
{
	memset(id, 0, SEARCH_ID_LEN);
	id[0] = (uint8_t)n;
	id[1] = (uint8_t)tenant;
}

typedef struct tmsg {
	int n;
	const char *from, *to, *cc, *bcc, *rcpt, *subject, *body, *file;
	int64_t date;
	uint64_t size;
} tmsg_t;

static void add(const uint8_t *tenant, const tmsg_t *m)
{
	uint8_t id[SEARCH_ID_LEN];
	const char *to[1] = { m->to }, *cc[1] = { m->cc }, *bcc[1] = { m->bcc },
	    *rcpt[1] = { m->rcpt }, *files[1] = { m->file };
	search_doc_t d = { 0 };
	d.from = m->from;
	d.to = to; d.n_to = m->to ? 1 : 0;
	d.cc = cc; d.n_cc = m->cc ? 1 : 0;
	d.bcc = bcc; d.n_bcc = m->bcc ? 1 : 0;
	d.rcpt = rcpt; d.n_rcpt = m->rcpt ? 1 : 0;
	d.subject = m->subject;
	d.body = m->body;
	d.filenames = files; d.n_filenames = m->file ? 1 : 0;
	d.has_attachment = m->file != NULL;
	d.date = m->date;
	d.size = m->size ? m->size : 1000;
	mkid(id, m->n, tenant == TA ? 0xa : 0xb);
	CHECK_RC(search_index_add(idx, tenant, id, &d, NULL), 0);
}

/* the ids (their first byte) of every result of q, sorted, as "1,2,3" */
static void expect(const uint8_t *tenant, const char *q, const char *want)
{
	search_results_t *r = NULL;
	search_options_t o = { .limit = 1000 };
	char got[512] = "";
	int seen[256] = { 0 };
	int rc = search_run(idx, tenant, q, &o, &r);
	if (rc) {
		tl_failed++;
		fprintf(stderr, "query [%s]: %s: %s\n", q, ar_strerror(rc),
		    search_errmsg(idx));
		return;
	}
	for (size_t i = 0; i < search_results_count(r); i++)
		seen[search_results_row(r, i)->id[0]] = 1;
	for (int i = 0; i < 256; i++)
		if (seen[i])
			snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d",
			    got[0] ? "," : "", i);
	if (strcmp(got, want) == 0 &&
	    search_results_total(r) == search_results_count(r)) {
		tl_passed++;
	} else {
		tl_failed++;
		fprintf(stderr, "query [%s]: got {%s} (total %llu), want {%s}\n",
		    q, got, (unsigned long long)search_results_total(r), want);
	}
	search_results_free(r);
}

static const tmsg_t A[] = {
	{ 1, "Alice Smith <alice@example.com>", "bob@corp.org", 0, 0, 0,
	  "Quarterly contract review", "Please review the contract before "
	  "Friday. The merger acquisition is close.", 0, 0, 2000 },
	{ 2, "bob@corp.org", "alice@example.com", 0, 0, 0, "Re: contract",
	  "I am running late with the contracts", "budget.xlsx", 0, 50000 },
	{ 3, "carol@other.net", "dave@corp.org", "alice@example.com", 0, 0,
	  "Lunch", "Meet at the café near the station", 0, 0, 0 },
	{ 4, "dave@corp.org", "carol@other.net", 0, 0, 0, "CAFE menu",
	  "The cafe serves coffee", 0, 0, 0 },
	{ 5, "erin@example.com", "frank@corp.org", 0, "grace@secret.org", 0,
	  "東京都 trip", "We will visit 東京都庁 next week", 0, 0, 0 },
	{ 6, "frank@corp.org", "team@corp.org", 0, 0, "heidi@hidden.org",
	  "Figures", "Numbers for the zygomorphic project", 0, 0, 12u << 20 },
	{ 7, "alice@example.com", "ivan@corp.org", 0, 0, 0, "Merger",
	  "The acquisition was announced. Merger talks continue.", 0, 0, 0 },
	{ 8, 0, 0, 0, 0, 0, "big deal", "this is a big deal for us", 0, 0, 0 },
	{ 9, 0, 0, 0, 0, 0, "other", "deal big", 0, 0, 0 },
	{ 10, 0, 0, 0, 0, 0, "runs", "Runners run", 0, 0, 0 },
	{ 11, 0, 0, 0, 0, 0, "schools", "Straße and ÉCOLE", 0, 0, 0 },
	{ 12, 0, 0, 0, 0, 0, "x1", "spam spam ham", 0, 0, 0 },
	{ 13, 0, 0, 0, 0, 0, "x2", "ham only", 0, 0, 0 },
	{ 14, 0, 0, 0, 0, 0, "x3", "spam only", 0, 0, 0 },
};
static const int64_t A_dates[][3] = { { 2001, 3, 1 }, { 2001, 3, 2 },
	{ 2002, 6, 10 }, { 2002, 6, 11 }, { 2010, 1, 5 }, { 2010, 2, 1 },
	{ 2023, 5, 5 }, { 2023, 5, 6 }, { 2023, 5, 7 }, { 2023, 1, 1 },
	{ 2023, 1, 2 }, { 2023, 2, 1 }, { 2023, 2, 2 }, { 2023, 2, 3 } };

static const tmsg_t B[] = {
	{ 101, "alice@example.com", "zed@b.org", 0, 0, 0, "b one",
	  "xylophonic contract", 0, 0, 0 },
	{ 102, "zed@b.org", 0, 0, 0, 0, "b two", "running", 0, 0, 0 },
};

static void index_all(void)
{
	for (size_t i = 0; i < AR_ARRAY_LEN(A); i++) {
		tmsg_t m = A[i];
		m.date = day((int)A_dates[i][0], (int)A_dates[i][1],
		    (int)A_dates[i][2]);
		add(TA, &m);
	}
	for (int i = 0; i < 10; i++) {          /* pagination: 2003-2004 */
		tmsg_t m = { 15 + i, "pager@corp.org", 0, 0, 0, 0, "page",
			"pagination test", 0, 0, 0 };
		m.date = day(2003 + i % 2, 1 + i % 3, 1);   /* ties on purpose */
		add(TA, &m);
	}
	for (size_t i = 0; i < AR_ARRAY_LEN(B); i++) {
		tmsg_t m = B[i];
		m.date = day(2001, 3, 1);
		add(TB, &m);
	}
	/* either side of a year's first second: shards 2004 and 2005 */
	tmsg_t late = { 103, 0, 0, 0, 0, 0, "late", "midnightword", 0, 0, 0 },
	    early = { 104, 0, 0, 0, 0, 0, "early", "midnightword", 0, 0, 0 };
	late.date = day(2005, 1, 1) - 12 * 3600 - 1;
	early.date = day(2005, 1, 1) - 12 * 3600;
	add(TB, &late);
	add(TB, &early);
}

static void test_operators(void)
{
	expect(TA, "contract", "1,2");
	expect(TA, "contra*", "1,2");
	expect(TA, "\"the contract\"", "1");
	expect(TA, "\"contracts\"", "2");
	expect(TA, "contracts", "1,2");
	expect(TA, "café", "3,4");
	expect(TA, "CAFE", "3,4");
	expect(TA, "from:alice@example.com", "1,7");
	expect(TA, "from:@example.com", "1,5,7");
	expect(TA, "from:alice", "1,7");
	expect(TA, "from:alice@", "1,7");
	expect(TA, "to:alice@example.com", "2");
	expect(TA, "cc:alice@example.com", "3");
	expect(TA, "participant:alice@example.com", "1,2,3,7");
	expect(TA, "bcc:grace@secret.org", "5");
	expect(TA, "bcc:heidi@hidden.org", "6");
	expect(TA, "to:heidi@hidden.org", "6");
	expect(TA, "subject:lunch", "3");
	expect(TA, "body:lunch", "");
	expect(TA, "body:coffee", "4");
	expect(TA, "filename:budget.xlsx", "2");
	expect(TA, "filename:budget", "2");
	expect(TA, "has:attachment", "2");
	expect(TA, "after:2010-01-01 -pagination", "5,6,7,8,9,10,11,12,13,14");
	expect(TA, "before:2002-01-01", "1,2");
	expect(TA, "on:2002-06-10", "3");
	expect(TA, "larger:10K", "2,6");
	expect(TA, "larger:10M", "6");
	expect(TA, "smaller:1500 after:2023-05-01", "7,8,9");
	/* dates only beside the words: whole years of shards, and parts */
	expect(TA, "pagination after:2003-01-01", "15,16,17,18,19,20,21,22,23,24");
	expect(TA, "pagination after:2004-01-01", "16,18,20,22,24");
	expect(TA, "pagination after:2003-02-01 before:2004-01-01", "17,19,23");
	expect(TA, "contract after:2001-01-01 before:2002-01-01", "1,2");
	expect(TA, "contract after:2001-03-02 before:2002-01-01", "2");
	expect(TA, "pagination -page after:2003-01-01", "");
	expect(TA, "pagination before:2004-01-01", "15,17,19,21,23");
	expect(TA, "spam -ham", "14");
	expect(TA, "spam OR ham", "12,13,14");
	expect(TA, "spam AND NOT ham", "14");
	expect(TA, "(spam OR ham) -\"spam ham\"", "13,14");
	expect(TA, "-spam after:2023-01-01", "7,8,9,10,11,13");
	expect(TA, "-spam -pagination", "1,2,3,4,5,6,7,8,9,10,11,13");
	expect(TA, "(from:alice OR larger:10M) -merger", "6");
	expect(TA, "NEAR(merger acquisition, 1)", "1");
	expect(TA, "NEAR(merger acquisition, 5)", "1,7");
	expect(TA, "\"big deal\"", "8");
	expect(TA, "big deal", "8,9");
	expect(TA, "run", "2,10");
	expect(TA, "\"running\"", "2");
	expect(TA, "strasse", "11");
	expect(TA, "Straße ecole", "11");
	expect(TA, "東京", "5");
	expect(TA, "京都", "5");
	expect(TA, "東京都", "5");
	expect(TA, "都庁", "5");
	expect(TA, "京庁", "");
	expect(TA, "zygo*", "6");
	expect(TA, "ZYGOMORPHIC", "6");
	expect(TA, "!!! contract", "1,2");
	/* tenant isolation, stemming off in B */
	expect(TA, "xylophonic", "");
	expect(TB, "xylophonic", "101");
	expect(TB, "from:alice@example.com", "101");
	expect(TB, "run", "");
	expect(TB, "running", "102");
	expect(TB, "midnightword after:2005-01-01", "104");
	expect(TB, "midnightword before:2005-01-01", "103");
	expect(TB, "midnightword after:2004-01-01 before:2006-01-01", "103,104");
	expect(TB, "midnightword on:2005-01-01", "104");
	expect(TB, "midnightword on:2004-12-31", "103");
}

/* verdict: and quarantined: (the gateway's verdict, kept in msg.flags
 * beside the caller's own flags, which come back unchanged) */
static void test_verdicts(void)
{
	static const struct { int n, verdict, quarantined; } v[] = {
		{ 110, SEARCH_VERDICT_CLEAN, 0 }, { 111, SEARCH_VERDICT_SPAM, 1 },
		{ 112, SEARCH_VERDICT_SPAM, 0 }, { 113, SEARCH_VERDICT_VIRUS, 1 },
		{ 114, SEARCH_VERDICT_NONE, 0 }, { 115, SEARCH_VERDICT_UNSCANNED, 0 },
		{ 116, SEARCH_VERDICT_POLICY, 0 } };
	search_results_t *r = NULL;
	search_options_t o = { .limit = 100 };
	uint8_t id[SEARCH_ID_LEN];
	int rows = 0;

	for (size_t i = 0; i < AR_ARRAY_LEN(v); i++) {
		search_doc_t d = { 0 };
		d.subject = "gatewayword";
		d.body = "gatewayword";
		d.date = day(2026, 11, 1);
		d.size = 100;
		d.flags = 0x5;
		d.verdict = v[i].verdict;
		d.quarantined = v[i].quarantined;
		mkid(id, v[i].n, 0xb);
		CHECK_RC(search_index_add(idx, TB, id, &d, NULL), 0);
	}
	expect(TB, "verdict:clean", "110");
	expect(TB, "verdict:SPAM", "111,112");
	expect(TB, "verdict:virus", "113");
	expect(TB, "verdict:policy", "116");
	expect(TB, "verdict:unscanned", "115");
	expect(TB, "gatewayword verdict:none", "114");
	expect(TB, "quarantined:yes", "111,113");
	expect(TB, "gatewayword quarantined:no", "110,112,114,115,116");
	expect(TB, "verdict:spam -quarantined:yes", "112");
	expect(TB, "verdict:spam OR verdict:virus", "111,112,113");
	expect(TB, "gatewayword -verdict:spam -verdict:none",
	    "110,113,115,116");
	CHECK_RC(search_run(idx, TB, "gatewayword", &o, &r), 0);
	for (size_t i = 0; r && i < search_results_count(r); i++) {
		const search_row_t *w = search_results_row(r, i);
		for (size_t k = 0; k < AR_ARRAY_LEN(v); k++)
			if (w->id[0] == v[k].n) {
				CHECK(w->verdict == v[k].verdict);
				CHECK(w->quarantined == v[k].quarantined);
				CHECK(w->flags == 0x5);
				rows++;
			}
	}
	CHECK(rows == (int)AR_ARRAY_LEN(v));
	search_results_free(r);
	r = NULL;
	CHECK_RC(search_run(idx, TB, "verdict:ham", NULL, &r), AR_ESYNTAX);
	CHECK(strstr(search_errmsg(idx), "column 9") != NULL);
	CHECK(strstr(search_errmsg(idx), "after 'verdict:'") != NULL);
	CHECK_RC(search_run(idx, TB, "quarantined:maybe", NULL, &r),
	    AR_ESYNTAX);
	CHECK(strstr(search_errmsg(idx), "expected yes or no") != NULL);
	CHECK(r == NULL);
	CHECK(search_verdict_parse("virus", 5) == SEARCH_VERDICT_VIRUS);
	CHECK(search_verdict_parse("vir", 3) == -1);
	CHECK(strcmp(search_verdict_name(SEARCH_VERDICT_SPAM), "spam") == 0);
	CHECK(strcmp(search_verdict_name(99), "none") == 0);
}

static void test_errors(void)
{
	search_results_t *r = NULL;
	CHECK_RC(search_run(idx, TA, "NEAR(a b, 5", NULL, &r), AR_ESYNTAX);
	CHECK(strstr(search_errmsg(idx), "column 12") != NULL);
	CHECK(strstr(search_errmsg(idx), "expected ')' after NEAR") != NULL);
	CHECK_RC(search_run(idx, TA, "after:2001-13-01", NULL, &r), AR_ESYNTAX);
	CHECK_RC(search_run(idx, TA, "co*", NULL, &r), AR_ESYNTAX);
	CHECK_RC(search_run(idx, TA, "\"open", NULL, &r), AR_ESYNTAX);
	CHECK_RC(search_run(idx, TA, "a OR", NULL, &r), AR_ESYNTAX);
	CHECK(r == NULL);
}

/* Queries that give the index nothing to look up are refused with their
 * position, never run as "every message" (issue 16). */
static void test_degenerate(void)
{
	char w127[128], w128[129], w200[201];
	static const struct { const char *q; const char *where; } bad[] = {
		{ "!!!", "column 1 (byte 0)" },
		{ "%%", "column 1 (byte 0)" },
		{ "\xe2\x80\xae", "column 1 (byte 0)" },     /* lone U+202E */
		{ "\xff\xfe", "column 1 (byte 0): invalid UTF-8" },
		{ "contract \xc0\xaf", "column 10 (byte 9): invalid UTF-8" },
		{ "\xed\xa0\x80", "invalid UTF-8" },         /* a surrogate */
		{ "caf\xc3", "column 4 (byte 3): invalid UTF-8" },
		{ "-!!!", "column 2 (byte 1): nothing to exclude" },
		{ "contract -!!!", "column 11 (byte 10): nothing to exclude" },
		{ "NOT %%", "nothing to exclude after 'NOT'" },
		{ "from:!!!", "column 6 (byte 5): nothing to search for after "
		  "'from:'" },
		{ "from:@", "after 'from:'" },
		{ "to:!@", "after 'to:'" },
		{ "subject:\"%%\"", "after 'subject:'" },
		{ "contract OR !!!", "column 13 (byte 12): nothing to search" },
		{ "!!! OR contract", "column 1 (byte 0): nothing to search" },
		{ "contract (!!! %%)", "column 11 (byte 10)" },
		{ "\"!!!\"", "in the phrase" },
		{ "\"\"", "in the phrase" },
		{ "%%*", "before '*'" },
		{ "NEAR(merger !!! acquisition)", "column 13 (byte 12)" },
	};
	search_results_t *r = NULL;
	search_query_t *q;
	char err[256];

	memset(w127, 'q', 127);
	w127[127] = 0;
	memset(w128, 'q', 128);
	w128[128] = 0;
	memset(w200, 'q', 200);
	w200[200] = 0;
	for (size_t i = 0; i < AR_ARRAY_LEN(bad); i++) {
		int rc = search_run(idx, TA, bad[i].q, NULL, &r);
		if (rc == AR_ESYNTAX && r == NULL &&
		    strncmp(search_errmsg(idx), "column ", 7) == 0 &&
		    strstr(search_errmsg(idx), bad[i].where)) {
			tl_passed++;
			continue;
		}
		tl_failed++;
		fprintf(stderr, "query [%s]: rc %d, total %llu, error '%s', "
		    "want a syntax error with '%s'\n", bad[i].q, rc,
		    r ? (unsigned long long)search_results_total(r) : 0ULL,
		    rc ? search_errmsg(idx) : "", bad[i].where);
		search_results_free(r);
		r = NULL;
	}
	/* a bare term of punctuation or symbols is a separator */
	expect(TA, "contract !!!", "1,2");
	expect(TA, "!!! AND contract", "1,2");
	expect(TA, "contract \xf0\x9f\x94\xa5 - & review", "1");
	expect(TA, "%% before:2002-01-01", "1,2");
	/* the word length cut-off: indexed words up to 127 bytes match
	 * themselves only; longer ones are neither indexed nor searchable */
	{
		char body[600];
		tmsg_t m = { 50, 0, 0, 0, 0, 0, "long words", body, 0, 0, 0 };
		snprintf(body, sizeof body, "lengthy %s %s", w127, w200);
		m.date = day(2020, 1, 1);
		add(TA, &m);
		m.n = 52;
		snprintf(body, sizeof body, "lengthy %s", w128);
		add(TA, &m);
	}
	expect(TA, w127, "50");
	expect(TA, "lengthy", "50,52");
	CHECK_RC(search_run(idx, TA, w128, NULL, &r), AR_ESYNTAX);
	CHECK(strstr(search_errmsg(idx), "column 1 (byte 0): a word longer "
	    "than 127 bytes") != NULL);
	CHECK_RC(search_run(idx, TA, w200, NULL, &r), AR_ESYNTAX);
	{
		char q2[300];
		snprintf(q2, sizeof q2, "lengthy \"x %s\"", w128);
		CHECK_RC(search_run(idx, TA, q2, NULL, &r), AR_ESYNTAX);
		CHECK(strstr(search_errmsg(idx), "column 12 (byte 11)") != NULL);
		snprintf(q2, sizeof q2, "lengthy -%s", w200);
		CHECK_RC(search_run(idx, TA, q2, NULL, &r), AR_ESYNTAX);
	}
	CHECK(r == NULL);
	/* a CJK run is one "word" however long: a 60-character run is cut
	 * into pieces of at most 42 characters (127 bytes), and every
	 * stretch of it is found, the cut points included */
	{
		static const char han[] = "一二三四五六七八九十";
		char run[61 * 3 + 1] = "", q3[4 * 3 + 1], body[300];
		tmsg_t m = { 51, 0, 0, 0, 0, 0, "cjk run", body, 0, 0, 0 };
		for (int i = 0; i < 60; i++)    /* 60 characters, none twice in
		                                   a row the same way */
			memcpy(run + 3 * i, han + 3 * ((i * 7 + i / 10) % 10), 3);
		run[180] = 0;
		snprintf(body, sizeof body, "%s", run);
		m.date = day(2020, 1, 1);
		add(TA, &m);
		for (int at = 0; at + 4 <= 60; at++) {
			memcpy(q3, run + 3 * at, 12);
			q3[12] = 0;
			expect(TA, q3, "51");
		}
		expect(TA, run, "51");
	}
	for (int n = 50; n <= 52; n++) {       /* as test_update expects */
		uint8_t id[SEARCH_ID_LEN];
		mkid(id, n, 0xa);
		CHECK_RC(search_index_remove(idx, TA, id), 0);
	}
	/* what a query selects as a whole */
	CHECK_RC(search_query_parse("", &q, err, sizeof err), 0);
	CHECK(search_query_selects_all(q));
	search_query_free(q);
	CHECK_RC(search_query_parse(" \t ", &q, err, sizeof err), 0);
	CHECK(search_query_selects_all(q));
	search_query_free(q);
	static const char *const some[] = { "contract", "-contract",
		"after:2001-01-01", "has:attachment", "contract !!!" };
	for (size_t i = 0; i < AR_ARRAY_LEN(some); i++) {
		CHECK_RC(search_query_parse(some[i], &q, err, sizeof err), 0);
		CHECK(q && !search_query_selects_all(q));
		search_query_free(q);
	}
}

static void test_pages(int order)
{
	search_options_t o = { .limit = 3, .order = order };
	search_results_t *r = NULL;
	int seen[256] = { 0 }, n = 0, pages = 0;
	char cur[SEARCH_CURSOR_MAX] = "";
	int64_t last = INT64_MAX;
	do {
		o.cursor = cur[0] ? cur : NULL;
		if (search_run(idx, TA, "pagination", &o, &r) != 0) {
			CHECK(!"page failed");
			return;
		}
		CHECK(search_results_total(r) == 10);
		for (size_t i = 0; i < search_results_count(r); i++) {
			const search_row_t *row = search_results_row(r, i);
			CHECK(!seen[row->id[0]]);
			seen[row->id[0]] = 1;
			if (order == SEARCH_BY_DATE)
				CHECK(row->date <= last);
			last = row->date;
			n++;
		}
		const char *next = search_results_next_cursor(r);
		ar_strlcpy(cur, next ? next : "", sizeof cur);
		if (pages == 0 && next) {      /* A's cursor is refused for B */
			search_results_t *rb = NULL;
			search_options_t ob = o;
			ob.cursor = next;
			CHECK_RC(search_run(idx, TB, "pagination", &ob, &rb),
			    AR_EINVAL);
			CHECK_RC(search_run(idx, TA, "other words", &ob, &rb),
			    AR_EINVAL);
		}
		search_results_free(r);
		pages++;
	} while (cur[0] && pages < 20);
	CHECK(n == 10);
	CHECK(pages == 4);
}

static void test_display(void)
{
	search_results_t *r = NULL;
	CHECK_RC(search_run(idx, TA, "quarterly", NULL, &r), 0);
	if (r && search_results_count(r) == 1) {
		const search_row_t *row = search_results_row(r, 0);
		CHECK(strcmp(row->subject, "Quarterly contract review") == 0);
		CHECK(strcmp(row->from, "Alice Smith <alice@example.com>") == 0);
		CHECK(strcmp(row->to, "bob@corp.org") == 0);
		CHECK(row->size == 2000);
	} else {
		CHECK(!"quarterly: one row");
	}
	search_results_free(r);
	CHECK_RC(search_run(idx, TA, "contract", &(search_options_t){
	    .order = SEARCH_BY_RANK }, &r), 0);
	CHECK(r && search_results_count(r) == 2);
	search_results_free(r);
}

static int count_cb(void *arg, const uint8_t id[SEARCH_ID_LEN], int64_t d)
{
	(*(int *)arg)++;
	return 0;
}

static void test_update(void)
{
	tmsg_t m = { 4, "dave@corp.org", 0, 0, 0, 0, "menu changed",
		"replacedword", 0, day(2023, 3, 1), 0 };
	uint8_t id[SEARCH_ID_LEN];
	int n = 0;
	add(TA, &m);                              /* moves 2002 -> 2023 */
	add(TA, &m);                              /* idempotent */
	expect(TA, "cafe", "3");
	expect(TA, "replacedword", "4");
	mkid(id, 13, 0xa);
	CHECK_RC(search_index_remove(idx, TA, id), 0);
	CHECK_RC(search_index_remove(idx, TA, id), AR_ENOENT);
	expect(TA, "ham", "12");
	CHECK_RC(search_index_list(idx, TA, count_cb, &n), 0);
	CHECK(n == 23);
}

/* no word, address or subject readable anywhere under index/ */
static void test_nothing_readable(const char *dir)
{
	static const char *const words[] = { "contract", "Contract", "alice",
		"example.com", "Quarterly", "zygomorphic", "xylophonic", "東京",
		"Straße", "strasse", "merger", "pagination", "budget.xlsx",
		"heidi", "hidden.org", "grace", "coffee", "replacedword",
		"Lunch", "lunch", "spam", "acquisition", "Friday" };
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "find '%s/index' -type f", dir);
	FILE *f = popen(cmd, "r");
	char path[4096];
	int files = 0;
	while (f && fgets(path, sizeof path, f)) {
		path[strcspn(path, "\n")] = 0;
		unsigned char *buf;
		size_t len;
		if (ar_file_read(path, 1u << 30, &buf, &len) != 0)
			continue;
		files++;
		for (size_t i = 0; i < AR_ARRAY_LEN(words); i++)
			if (memmem(buf, len, words[i], strlen(words[i]))) {
				tl_failed++;
				fprintf(stderr, "'%s' readable in %s\n", words[i], path);
			}
		free(buf);
	}
	if (f)
		pclose(f);
	CHECK(files >= 6);
}

static void *thr(void *arg)
{
	for (int i = 0; i < 20; i++)
		expect(TA, i % 2 ? "contract" : "pagination -page OR spam",
		    i % 2 ? "1,2" : "12,14");
	return arg;
}

/* Run sql (binding the id of object n as ?1) on the writer of tenant t's
 * shard of year 2030, created when missing; the first column of its
 * first row, or -1. */
static int64_t on_shard(const uint8_t *t, int n, const char *sql)
{
	uint8_t id[SEARCH_ID_LEN];
	shard_t *sh;
	sconn_t *w;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	mkid(id, n, 0xb);
	CHECK_RC(shard_get(idx, t, 2030, 1, &sh), 0);
	pthread_mutex_lock(&idx->write_mu);
	CHECK_RC(shard_writer(idx, sh, &w), 0);
	CHECK(sqlite3_exec(w->db, "CREATE VIRTUAL TABLE IF NOT EXISTS temp.v "
	    "USING fts5vocab(main, 'fts', 'instance')", NULL, NULL, NULL) ==
	    SQLITE_OK);
	CHECK(sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_blob(st, 1, id, SEARCH_ID_LEN, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		CHECK(r == SQLITE_DONE);
	sqlite3_finalize(st);
	shard_writer_done(w);
	pthread_mutex_unlock(&idx->write_mu);
	return v;
}

static int64_t tokens_of(const uint8_t *t, int64_t rowid)
{
	char sql[100];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM temp.v WHERE doc = "
	    "%lld", (long long)rowid);
	return on_shard(t, 0, sql);
}

/*
 * Lean documents (meta tokens = 2): no s: token for a word that is its own
 * stem, no p: token as long as its word; the queries find the same rows
 * (co-located e: alternatives), in lean shards and in shards written
 * before, whose rows keep and lose every token.
 */
static void test_lean_tokens(const search_open_params_t *op)
{
	static const uint8_t TC[KEYSVC_TENANT_LEN] = { 0xc1, 0xc2, 0xc3, 3 };
	static const uint8_t TD[KEYSVC_TENANT_LEN] = { 0xd1, 0xd2, 0xd3, 4 };
	static const char *const q[][2] = {
		{ "contract*", "1" }, { "contr*", "1" }, { "contract", "1" },
		{ "contracts", "1" }, { "contracts*", "" }, { "meeting", "1" },
		{ "meet", "1" }, { "meet*", "1" }, { "meetings*", "1" },
		{ "run", "1" }, { "runs", "1" }, { "run*", "1" },
		{ "running*", "1" }, { "contract meet*", "1" },
		{ "meetings run*", "1" }, { "\"meetings run\"", "1" },
		{ "\"run contract\"", "" }, { "meetingsx*", "" } };
	tmsg_t m = { 1, NULL, NULL, NULL, NULL, NULL, NULL,
		"contract meetings run running", NULL, 0, 0 };
	uint8_t id[SEARCH_ID_LEN];
	keysvc_t *ks = op->ks;
	int64_t rowc, rowd;

	m.date = day(2030, 6, 1);
	CHECK_RC(keysvc_tenant_create(ks, TC), 0);
	CHECK_RC(keysvc_tenant_create(ks, TD), 0);
	/* TD's shard as written before: no tokens row in its meta */
	CHECK(on_shard(TD, 0, "DELETE FROM meta WHERE k = 'tokens'") == -1);
	CHECK(on_shard(TD, 0, "SELECT count(*) FROM meta") == 8);
	search_close(idx);
	CHECK_RC(search_open(&idx, op), 0);

	add(TC, &m);
	add(TD, &m);
	for (size_t i = 0; i < AR_ARRAY_LEN(q); i++) {
		expect(TC, q[i][0], q[i][1]);
		expect(TD, q[i][0], q[i][1]);
	}
	/* contract: e p3-p7 (before: s, p8 too); meetings: e s:meet p3-p7
	 * (p8); run: e (s, p3); running: e s:run p3-p6 (p7) */
	rowc = on_shard(TC, 1, "SELECT rowid FROM msg WHERE oid = ?");
	rowd = on_shard(TD, 1, "SELECT rowid FROM msg WHERE oid = ?");
	CHECK(rowc > 0 && rowd > 0);
	CHECK(tokens_of(TC, rowc) == 6 + 7 + 1 + 6);
	CHECK(tokens_of(TD, rowd) == 8 + 8 + 3 + 7);
	/* removed with the tokens it was written with: none left */
	mkid(id, 1, 0xb);
	CHECK_RC(search_index_remove(idx, TC, id), 0);
	CHECK_RC(search_index_remove(idx, TD, id), 0);
	CHECK(tokens_of(TC, rowc) == 0);
	CHECK(tokens_of(TD, rowd) == 0);
	expect(TC, "contract*", "");
	expect(TD, "run", "");
}

/* index_body_max: the words of a long body past body_max are not
 * indexed, the ones before are; the message is found by them. */
static void test_body_max(const search_open_params_t *op)
{
	static const uint8_t TE[KEYSVC_TENANT_LEN] = { 0xe1, 0xe2, 0xe3, 5 };
	search_open_params_t small = *op;
	size_t len = 200 * 1024, at;
	char *body = malloc(len + 1);
	search_doc_t d = { 0 };
	uint8_t id[SEARCH_ID_LEN];

	CHECK(body != NULL);
	if (!body)
		return;
	for (size_t i = 0; i < len; i++)
		body[i] = i % 8 == 7 ? ' ' : "filler"[i % 8 % 6];
	body[len] = 0;
	memcpy(body + 1000, " beforecut ", 11);
	at = 100 * 1024;
	memcpy(body + at, " aftercut ", 10);
	CHECK_RC(keysvc_tenant_create(op->ks, TE), 0);
	search_close(idx);
	small.body_max = 64 * 1024;
	CHECK_RC(search_open(&idx, &small), 0);
	d.subject = "long body";
	d.body = body;
	d.date = day(2026, 6, 1);
	d.size = len;
	mkid(id, 7, 0xe);
	CHECK_RC(search_index_add(idx, TE, id, &d, NULL), 0);
	expect(TE, "beforecut", "7");
	expect(TE, "aftercut", "");
	expect(TE, "subject:long", "7");
	search_close(idx);
	CHECK_RC(search_open(&idx, op), 0);
	free(body);
}

/* index_terms_max: a field is cut before the word that would pass the
 * shard's limit of distinct tokens (the limit kept in the shard, so a
 * reopen with another one changes nothing there); prose that repeats its
 * words is indexed whole however long; rows are removed by exactly the
 * tokens they were given. */
static void test_terms_max(const search_open_params_t *op)
{
	static const uint8_t TF[KEYSVC_TENANT_LEN] = { 0xf1, 0xf2, 0xf3, 6 };
	search_open_params_t small = *op;
	sbuf_t wide = { 0 }, prose = { 0 };
	tmsg_t m = { 1, NULL, NULL, NULL, NULL, NULL, "cut fields", NULL,
		NULL, 0, 0 };
	int64_t row[3];

	/* 3,000 distinct words of 7 letters, 5 tokens each (e: and four
	 * prefixes): 15,000 distinct tokens */
	sb_puts(&wide, "earlyword ");
	for (unsigned i = 0; i < 3000; i++) {
		char w[16];
		snprintf(w, sizeof w, "q%06x ", i * 2654435761u >> 8);
		sb_puts(&wide, w);
	}
	sb_puts(&wide, "lateword");
	/* 400 KB of the same ten words, then one more */
	while (prose.len < 400 * 1024)
		sb_puts(&prose, "alpha bravo charlie delta echo foxtrot golf "
		    "hotel india juliet ");
	sb_puts(&prose, "prosetail");
	CHECK(!wide.oom && !prose.oom);
	if (wide.oom || prose.oom)
		return;

	CHECK_RC(keysvc_tenant_create(op->ks, TF), 0);
	search_close(idx);
	small.terms_max = 4096;
	CHECK_RC(search_open(&idx, &small), 0);
	m.date = day(2030, 3, 1);
	m.body = wide.p;
	add(TF, &m);
	m.n = 2;
	m.body = prose.p;
	add(TF, &m);
	CHECK(on_shard(TF, 0, "SELECT v FROM meta WHERE k = 'terms_max'") ==
	    4096);
	expect(TF, "earlyword", "1");
	expect(TF, "lateword", "");
	expect(TF, "subject:cut", "1,2");
	expect(TF, "prosetail", "2");
	expect(TF, "juliet", "2");
	row[0] = on_shard(TF, 1, "SELECT rowid FROM msg WHERE oid = ?");
	row[1] = on_shard(TF, 2, "SELECT rowid FROM msg WHERE oid = ?");
	CHECK(row[0] > 0 && row[1] > 0);
	char sql[100];
	snprintf(sql, sizeof sql, "SELECT count(DISTINCT term) FROM temp.v "
	    "WHERE doc = %lld AND col = 'body'", (long long)row[0]);
	int64_t distinct = on_shard(TF, 0, sql), n0 = tokens_of(TF, row[0]);
	CHECK(distinct > 4096 - 16 && distinct <= 4096);

	/* another limit at open: the shard keeps its own */
	search_close(idx);
	CHECK_RC(search_open(&idx, op), 0);
	m.n = 3;
	m.body = wide.p;
	add(TF, &m);
	expect(TF, "earlyword", "1,3");
	expect(TF, "lateword", "");
	row[2] = on_shard(TF, 3, "SELECT rowid FROM msg WHERE oid = ?");
	CHECK(tokens_of(TF, row[2]) == n0);

	for (int i = 0; i < 3; i++) {
		uint8_t id[SEARCH_ID_LEN];
		mkid(id, i + 1, 0xb);
		CHECK_RC(search_index_remove(idx, TF, id), 0);
		CHECK(tokens_of(TF, row[i]) == 0);
	}
	expect(TF, "earlyword OR prosetail", "");
	/* gone before test_nothing_readable: tens of thousands of base32
	 * tokens spell a short word such as "spam" by chance (32^-4 per
	 * place), which that test would take for plaintext */
	CHECK_RC(search_tenant_drop(idx, TF), 0);
	free(wide.p);
	free(prose.p);
}

static void test_threads(void)
{
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, thr, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
}

static void test_helpers(void)
{
	char *s = NULL;
	static const int years[] = { 1, 4, 100, 1600, 1899, 1900, 1969, 1970,
		1971, 2000, 2023, 2024, 2100, 2400, 9999 };
	for (size_t i = 0; i < AR_ARRAY_LEN(years); i++) {
		struct tm tm = { .tm_year = years[i] - 1900, .tm_mday = 1 };
		CHECK(shard_year_start(years[i]) == (int64_t)timegm(&tm));
		CHECK(shard_year_of(shard_year_start(years[i])) == years[i]);
		CHECK(years[i] == 1 ||
		    shard_year_of(shard_year_start(years[i]) - 1) == years[i] - 1);
	}
	static const char html[] = "<html><head><style>p{}</style></head>"
	    "<p>Hello&nbsp;<b>W&eacute;rld</b> &#x41;&#66;</p><script>x=1"
	    "</script><!-- hid -->end";
	CHECK_RC(search_html_to_text(html, sizeof html - 1, &s), 0);
	CHECK(s && strstr(s, "Hello Wérld AB") && !strstr(s, "x=1") &&
	    !strstr(s, "hid") && strstr(s, "end"));
	free(s);
	CHECK_RC(search_snippet("contract -friday", "Please review the contract "
	    "before Friday. Contracts matter.", 0, "[", "]", "english", &s), 0);
	CHECK(s && strcmp(s, "Please review the [contract] before Friday. "
	    "[Contracts] matter.") == 0);
	free(s);
}

static const char EML[] =
	"From: Nina <nina@mime.test>\r\nTo: Group: omar@mime.test, "
	"pia@mime.test;\r\nSubject: =?iso-8859-1?q?R=E9sum=E9?=\r\n"
	"Date: Tue, 01 Jun 2021 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n\r\nvoil=E0 plainword\r\n"
	"--XX\r\nContent-Type: text/html\r\n\r\n<p>htmlword<script>scriptword"
	"</script></p>\r\n--XX\r\nContent-Type: text/plain\r\n"
	"Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n"
	"attachedword\r\n--XX\r\nContent-Type: text/plain\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\nYmFzZTY0d29yZA==\r\n"
	"--XX\r\nContent-Type: text/plain\r\n\r\n"
	"--XX\r\nContent-Type: message/rfc822\r\n\r\n"
	"From: inner@mime.test\r\nSubject: nestedsubject\r\n\r\ninnerword\r\n"
	"--XX--\r\n";

static void test_extract(void)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(EML, sizeof EML - 1);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *msg = g_mime_parser_construct_message(p, NULL);
	search_doc_t *d = NULL;
	uint8_t id[SEARCH_ID_LEN];
	CHECK(msg != NULL);
	CHECK_RC(search_doc_extract(msg, 0, &d), 0);
	if (d) {
		CHECK(d->n_to == 2 && strstr(d->from, "nina@mime.test"));
		CHECK(d->subject && strcmp(d->subject, "Résumé") == 0);
		CHECK(d->has_attachment && d->n_filenames == 1);
		CHECK(d->date == day(2021, 6, 1) - 2 * 3600);
		CHECK(strstr(d->body, "voilà") && !strstr(d->body, "scriptword"));
		mkid(id, 40, 0xa);
		CHECK_RC(search_index_add(idx, TA, id, d, NULL), 0);
		search_doc_free(d);
	}
	expect(TA, "filename:notes.txt", "40");
	expect(TA, "attachedword htmlword plainword innerword base64word", "40");
	expect(TA, "nestedsubject voila", "40");
	expect(TA, "subject:resume to:pia@mime.test", "40");
	expect(TA, "scriptword", "");
	g_object_unref(msg);
	g_object_unref(p);
	g_object_unref(st);

	/* a 3 MB base64 text attachment read only as far as body_max */
	sbuf_t big = { 0 };
	gchar *b64;
	GString *txt = g_string_new("firstword ");
	while (txt->len < 2u << 20)
		g_string_append(txt, "lorem ipsum dolor sit amet ");
	g_string_append(txt, "lastword");
	b64 = g_base64_encode((const guchar *)txt->str, txt->len);
	sb_puts(&big, "From: a@mime.test\r\nSubject: big\r\nMIME-Version: 1.0"
	    "\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: "
	    "base64\r\n\r\n");
	for (size_t i = 0, n = strlen(b64); i < n; i += 76) {
		sb_add(&big, b64 + i, n - i < 76 ? n - i : 76);
		sb_puts(&big, "\r\n");
	}
	CHECK(!big.oom);
	st = g_mime_stream_mem_new_with_buffer(big.p, big.len);
	p = g_mime_parser_new_with_stream(st);
	msg = g_mime_parser_construct_message(p, NULL);
	CHECK(msg != NULL);
	d = NULL;
	CHECK_RC(search_doc_extract(msg, 64 * 1024, &d), 0);
	if (d) {
		CHECK(strncmp(d->body, "firstword lorem", 15) == 0);
		CHECK(strlen(d->body) <= 64 * 1024 && strlen(d->body) > 60000);
		CHECK(!strstr(d->body, "lastword"));
		search_doc_free(d);
	}
	g_object_unref(msg);
	g_object_unref(p);
	g_object_unref(st);
	g_free(b64);
	g_string_free(txt, TRUE);
	free(big.p);
}

static int golden(void)
{
	const char *src = getenv("AR_SOURCE_DIR");
	char dir[4096];
	int n = 0;
	snprintf(dir, sizeof dir, "%s/tests/golden/query", src ? src : ".");
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		char in[4400], ref[4400];
		unsigned char *q, *want;
		size_t ql, wl;
		if (l < 4 || strcmp(e->d_name + l - 3, ".in"))
			continue;
		snprintf(in, sizeof in, "%s/%s", dir, e->d_name);
		snprintf(ref, sizeof ref, "%s/%.*s.ref", dir, (int)l - 3, e->d_name);
		if (ar_file_read(in, 65536, &q, &ql) != 0)
			continue;
		while (ql && q[ql - 1] == '\n')
			q[--ql] = 0;
		search_query_t *sq;
		char err[256], *dump = NULL, *out = NULL;
		if (search_query_parse((char *)q, &sq, err, sizeof err) == 0) {
			search_query_dump(sq, &dump);
			search_query_free(sq);
		}
		if (asprintf(&out, "query: %s\n%s%s%s", q, dump ? dump : "error: ",
		    dump ? "" : err, dump ? "" : "\n") < 0)
			exit(2);
		if (getenv("AR_GOLDEN_UPDATE"))
			ar_file_write_atomic(ref, out, strlen(out), 0644);
		if (ar_file_read(ref, 65536, &want, &wl) == 0 &&
		    wl == strlen(out) && memcmp(want, out, wl) == 0) {
			tl_passed++;
		} else {
			tl_failed++;
			fprintf(stderr, "golden %s differs; got:\n%s", in, out);
		}
		if (want != NULL && wl)
			free(want);
		free(out);
		free(dump);
		free(q);
		n++;
	}
	if (d)
		closedir(d);
	return n;
}

static int dump_query(const char *text)
{
	search_query_t *q;
	char err[256], *d;
	if (search_query_parse(text, &q, err, sizeof err) != 0) {
		printf("error: %s\n", err);
		return 1;
	}
	search_query_dump(q, &d);
	fputs(d, stdout);
	free(d);
	search_query_free(q);
	return 0;
}

static int bench(const char *dir, int max)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), done = 0;
	int64_t t0 = ar_mono_us(), parse_us = 0;
	for (int i = 0; i < n && done < max; i++) {
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] == '.')
			continue;
		int64_t a = ar_mono_us();
		GMimeStream *st = g_mime_stream_fs_open(p, O_RDONLY, 0, NULL);
		if (!st)
			continue;
		GMimeParser *ps = g_mime_parser_new_with_stream(st);
		GMimeMessage *m = g_mime_parser_construct_message(ps, NULL);
		search_doc_t *d = NULL;
		if (m && search_doc_extract(m, 0, &d) == 0) {
			uint8_t id[SEARCH_ID_LEN] = { 0 };
			ar_put_u32(id, (uint32_t)i);
			d->size = (uint64_t)g_mime_stream_length(st);
			parse_us += ar_mono_us() - a;
			if (search_index_add(idx, TA, id, d, NULL) == 0)
				done++;
			search_doc_free(d);
		}
		if (m)
			g_object_unref(m);
		g_object_unref(ps);
		g_object_unref(st);
	}
	double s = (double)(ar_mono_us() - t0) / 1e6;
	printf("indexed %d messages in %.2f s: %.0f msg/s (parse+extract %.2f "
	    "s)\n", done, s, done / s, parse_us / 1e6);
	static const char *const qs[] = { "meeting", "the", "from:@enron.com",
		"\"please let me know\"", "contra*", "energy -gas after:2001-01-01",
		"NEAR(power price, 5)", "has:attachment" };
	for (size_t i = 0; i < AR_ARRAY_LEN(qs); i++) {
		search_results_t *r = NULL;
		int64_t a = ar_mono_us();
		for (int k = 0; k < 20; k++) {
			search_results_free(r);
			r = NULL;
			search_run(idx, TA, qs[i], NULL, &r);
		}
		printf("query %-32s total %6llu  %.2f ms\n", qs[i],
		    (unsigned long long)search_results_total(r),
		    (double)(ar_mono_us() - a) / 20 / 1000);
		search_results_free(r);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
}

int main(int argc, char **argv)
{
	char *dir, sock[4200];
	keysvc_t *ks;
	pid_t pid;

	if (argc == 3 && strcmp(argv[1], "--dump-query") == 0)
		return dump_query(argv[2]);
	ar_process_init("test_search");
	g_mime_init();
	dir = tl_tmpdir("search");
	pid = tl_keysvc_start(dir);
	snprintf(sock, sizeof sock, "%s/keysvc.sock", dir);
	if (keysvc_open(&ks, sock, 0) != 0)
		return 2;
	CHECK_RC(keysvc_tenant_create(ks, TA), 0);
	CHECK_RC(keysvc_tenant_create(ks, TB), 0);
	search_open_params_t op = { .data_dir = dir, .ks = ks,
		.language = "english" };
	CHECK_RC(search_open(&idx, &op), 0);
	if (argc >= 3 && strcmp(argv[1], "--bench") == 0) {
		bench(argv[2], argc > 3 ? atoi(argv[3]) : 3000);
	} else {
		CHECK(golden() >= 20);
		CHECK_RC(search_tenant_set_language(idx, TB, "none"), 0);
		CHECK_RC(search_tenant_set_language(idx, TB, "klingon"),
		    AR_EINVAL);
		index_all();
		test_operators();
		test_errors();
		test_degenerate();
		test_verdicts();
		test_pages(SEARCH_BY_DATE);
		test_pages(SEARCH_BY_RANK);
		test_display();
		test_update();
		test_extract();
		test_helpers();
		test_threads();
		test_lean_tokens(&op);
		test_body_max(&op);
		test_terms_max(&op);
		test_nothing_readable(dir);
		CHECK_RC(search_tenant_drop(idx, TB), 0);
		expect(TB, "xylophonic", "");
	}
	search_close(idx);
	keysvc_close(ks);
	tl_keysvc_stop(pid);
	tl_rmrf(dir);
	free(dir);
	g_mime_shutdown();
	return tl_done();
}
