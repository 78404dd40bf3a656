/*
 * query_fuzzer.c - the query parser and compiler.
 *
 * For every input: parse; on success print the AST (search_query_dump),
 * compile, and run the compiled MATCH + SQL against an empty in-memory
 * shard with the real blind tokenizer.  Whatever the input, SQLite must
 * never see a syntax error: any error from it aborts (a finding).  Nor may
 * a query that is not blank compile to "every message" (no MATCH and the
 * condition "1"): that would widen a search, an export or a hold to the
 * whole tenant (issue 16).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "ar.h"
#include "search/search.h"
#include "search/search_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;

static void teardown(void)
{
	sqlite3_close(db);
	db = NULL;
}

static void setup(void)
{
	static const uint8_t key[TK_KEY_LEN] = { 1, 2, 3 };
	if (db)
		return;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    tk_register(db, tk_ctx_new(key, "english", 3, 12, 1, 0)) != 0 ||
	    shard_schema_create(db, "00", 2020, "english", 3, 12, 0) != 0 ||
	    sqlite3_exec(db, "INSERT INTO msg VALUES(1, x'00', 0, 0, 0, 0, "
	    "x'', x''); INSERT INTO fts(rowid, subject, body) VALUES(1, "
	    "'hello world', 'contract café 東京都 alice@example.com');",
	    NULL, NULL, NULL) != SQLITE_OK)
		abort();
	atexit(teardown);
}

static void run(const qc_out_t *qc)
{
	char *sql;
	sqlite3_stmt *st = NULL;
	int i = 1;
	if (asprintf(&sql, "SELECT count(*) %s(%s)", qc->match ?
	    "FROM fts JOIN msg m ON m.rowid = fts.rowid WHERE fts MATCH ? AND "
	    : "FROM msg m WHERE ", qc->where) < 0)
		abort();
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "prepare: %s\n%s\n", sqlite3_errmsg(db), sql);
		abort();
	}
	if (qc->match)
		sqlite3_bind_text(st, i++, qc->match, -1, SQLITE_STATIC);
	for (size_t k = 0; k < qc->nparams; k++) {
		if (qc->params[k].is_text)
			sqlite3_bind_text(st, i++, qc->params[k].s, -1,
			    SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, i++, qc->params[k].i);
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		fprintf(stderr, "step: %s\nmatch: %s\nwhere: %s\n",
		    sqlite3_errmsg(db), qc->match ? qc->match : "-", qc->where);
		abort();
	}
	sqlite3_finalize(st);
	free(sql);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[256], *dump = NULL;
	search_query_t *q = NULL;
	qc_out_t qc;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;                   /* embedded NULs end the query */
	setup();
	int rc = search_query_parse(text, &q, err, sizeof err);
	if (rc == AR_ESYNTAX) {
		if (strncmp(err, "column ", 7) != 0)
			abort();              /* every error has a position */
	} else if (rc == 0) {
		if (search_query_dump(q, &dump) != 0)
			abort();
		free(dump);
		rc = qc_compile(q, 3, &qc, err, sizeof err);
		if (rc == 0) {
			if (!search_query_selects_all(q) && !qc.match &&
			    strcmp(qc.where, "1") == 0) {
				fprintf(stderr, "[%s] selects everything\n", text);
				abort();
			}
			run(&qc);
			qc_free(&qc);
		} else if (rc != AR_ESYNTAX) {
			abort();
		}
		search_query_free(q);
	} else {
		abort();
	}
	free(text);
	return 0;
}
