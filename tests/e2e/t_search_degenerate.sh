#!/bin/bash
# t_search_degenerate.sh - a query with no usable word never selects the
# whole tenant (issue 16).  Through the real daemon's API (curl) and the
# real archivectl: `!!!`, `%%`, a lone U+202E, invalid UTF-8, a word too
# long to be indexed, `-!!!`, `from:!!!` and `budget OR !!!` are refused
# by search (400 query_syntax with the position; archivectl exit 2), by a
# query export (400 / exit 2, no export job, no file written) and by a
# hold (400 / exit 2, no hold); a blank query is refused as a scope.  A
# good query still searches, exports and holds exactly its messages, and
# a bare `!!!` next to a word is a separator (`budget !!!` = `budget`).
# The word-length cut-off changes no meaning: a 127-byte word finds its
# message, a stretch of a 60-character CJK run across the index's cut is
# found, and `archivectl reconcile` rebuilds index files of an older
# tokenizer (which had a gap there).
. "$(dirname "$0")/lib.sh"
W=$S/tests/e2e/web
PW='Corr3ct-horse-battery'
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
adduser() { echo "$PW" | ctl user add "$@" >/dev/null; }
adduser --tenant acme --role officer,legal olga
mkdir -p "$T/acme"
cp "$W/xss.eml" "$W/budget.eml" "$T/acme/"
W127=$(printf 'q%.0s' $(seq 1 127))
W128=$(printf 'q%.0s' $(seq 1 128))
W200=$(printf 'q%.0s' $(seq 1 200))
# 60 CJK characters in one run: the index cuts it after 42
HAN=(一 二 三 四 五 六 七 八 九 十)   # (an array: no locale needed)
RUN=
STRETCH=                                 # characters 39..43: over the cut
for i in $(seq 0 59); do
	c=${HAN[$(( (i * 7 + i / 10) % 10 ))]}
	RUN=$RUN$c
	[ "$i" -ge 39 ] && [ "$i" -le 43 ] && STRETCH=$STRETCH$c
done
printf 'From: ivy@acme.example\nTo: dave@acme.example\nSubject: token list\nContent-Type: text/plain; charset=utf-8\n\nlongtoken %s\nlongtoken2 %s\n%s\n' \
    "$W127" "$W200" "$RUN" >"$T/acme/long.eml"
ctl import --tenant acme "$T/acme" >/dev/null 2>&1
"$B/tests/tools/index_tenant" "$DATA" acme >/dev/null

# index files of an older tokenizer (no "tokenizer" meta row): reconcile
# rebuilds them; then they say version 2 and reconcile leaves them be
tkver() { python3 -c 'import glob,sqlite3,sys
for f in sorted(glob.glob(sys.argv[1] + "/index/*/*.db")):
    db = sqlite3.connect(f)
    if sys.argv[2] == "drop":
        db.execute("DELETE FROM meta WHERE k = ?", ("tokenizer",)); db.commit()
    r = db.execute("SELECT v FROM meta WHERE k = ?", ("tokenizer",)).fetchone()
    print(r[0] if r else "none")' "$DATA" "$1" | sort -u | tr '\n' ' '; }
check "the index files say tokenizer 2" [ "$(tkver show)" = "2 " ]
check "... made old (the meta row removed)" [ "$(tkver drop)" = "none " ]
ctl reconcile --tenant acme >"$T/out" 2>&1
check "reconcile rebuilds an index of an older tokenizer ($(tail -1 "$T/out"))" \
    grep -q '^reindexed acme: [1-9][0-9]* index files were built by an older version; 3 messages' "$T/out"
check "... whose files then say tokenizer 2" [ "$(tkver show)" = "2 " ]
ctl reconcile --tenant acme >"$T/out" 2>&1
check "a second reconcile reindexes nothing" sh -c "! grep -q '^reindexed' '$T/out'"
archived_start_web
login acme olga

# (few python3 runs: each costs seconds on a loaded machine)
urlq() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n' | sed 's/../%&/g'; }
total() { api GET "/api/v1/search?q=$(urlq "$1")"; js 'd["total"]'; }
n_exports() { api GET /api/v1/exports; js 'len(d["exports"])'; }
n_holds() { api GET /api/v1/holds; js 'len(d["holds"])'; }
n_files() { find "$DATA/exports" -type f 2>/dev/null | wc -l; }
# a 400 query_syntax whose error names its column and byte
syntax_400() {
	[ "$CODE" = 400 ] && grep -q '"code":"query_syntax"' "$T/body" &&
	    grep -Eq '"column":[1-9][0-9]*,"byte":[0-9]+' "$T/body"
}
message() { sed -n 's/.*"message":"\([^"]*\)".*/\1/p' "$T/body"; }
ALL=$(total 'after:1970-01-01')
check "the tenant has 3 messages" [ "$ALL" = 3 ]

BAD=('!!!' '%%' $'\xe2\x80\xae' $'\xff\xfe' "$W128" "budget $W200" '-!!!'
    'from:!!!' 'budget OR !!!' 'NEAR(budget !!! review)')
NAME=('!!!' '%%' 'U+202E' 'invalid UTF-8' '128-byte word' '200-byte word'
    '-!!!' 'from:!!!' 'budget OR !!!' 'NEAR(budget !!! review)')
E0=$(n_exports)
H0=$(n_holds)
F0=$(n_files)
for i in "${!BAD[@]}"; do
	q=${BAD[$i]}
	n=${NAME[$i]}
	api GET "/api/v1/search?q=$(urlq "$q")"
	check "search [$n]: 400 query_syntax with its position ($(message))" syntax_400
	if [ "$n" = 'invalid UTF-8' ]; then
		# JSON cannot carry invalid UTF-8: the body itself is refused
		api POST /api/v1/exports $'{"scope":"query","query":"\xff\xfe"}'
		check "export [$n]: 400" code_is 400
		api POST /api/v1/holds $'{"name":"bad-utf8","query":"\xff\xfe"}'
		check "hold [$n]: 400" code_is 400
	else
		# (no query here has a '"' or a '\' to escape for JSON)
		api POST /api/v1/exports "{\"scope\":\"query\",\"query\":\"$q\"}"
		check "export [$n]: 400 query_syntax with its position" syntax_400
		api POST /api/v1/holds "{\"name\":\"bad-$i\",\"query\":\"$q\"}"
		check "hold [$n]: 400 query_syntax with its position" syntax_400
	fi
	ctl search --tenant acme -- "$q" >"$T/out" 2>"$T/err"
	rc=$?
	check "archivectl search [$n]: exit 2, the position named ($(head -c 150 "$T/err"))" \
	    sh -c "[ $rc = 2 ] && grep -q 'bad query: column [0-9]* (byte [0-9]*)' '$T/err' && [ ! -s '$T/out' ]"
	ctl export --tenant acme --query "$q" --dir "$T/exp-$i" >"$T/out" 2>"$T/err"
	rc=$?
	check "archivectl export [$n]: exit 2, nothing written" \
	    sh -c "[ $rc = 2 ] && grep -q 'bad query: column' '$T/err' && [ ! -e '$T/exp-$i' ]"
	ctl hold create --tenant acme --query "$q" "cli-bad-$i" >"$T/out" 2>"$T/err"
	rc=$?
	check "archivectl hold create [$n]: exit 2" \
	    sh -c "[ $rc = 2 ] && grep -q 'hold query: column' '$T/err'"
done

# a blank query selects everything: refused wherever it would be a scope
api GET "/api/v1/search?q=$(urlq '   ')"
check "search of a blank query: 400" code_is 400
api POST /api/v1/exports '{"scope":"query","query":"   "}'
check "export of a blank query: 400" code_is 400
api POST /api/v1/holds '{"name":"blank","query":"   "}'
check "hold with a blank query: 400" code_is 400
ctl export --tenant acme --query '   ' --dir "$T/exp-blank" >/dev/null 2>"$T/err"
rc=$?
check "archivectl export of a blank query: exit 2, nothing written" \
    sh -c "[ $rc = 2 ] && grep -q 'blank' '$T/err' && [ ! -e '$T/exp-blank' ]"
ctl hold create --tenant acme --query '   ' cli-blank >/dev/null 2>"$T/err"
check "archivectl hold create with a blank query: exit 2" [ $? = 2 ]

check "no export job was created" [ "$(n_exports)" = "$E0" ]
check "no export file was written" [ "$(n_files)" = "$F0" ]
check "no hold was created (API)" [ "$(n_holds)" = "$H0" ]
check "no hold was created (archivectl hold list)" \
    sh -c "! '$CTL_BIN' -d '$DATA' hold list --tenant acme | grep -q ."

# good queries still work, and select exactly their messages
check "search budget: 1 message" [ "$(total budget)" = 1 ]
check "search 'budget !!!' = budget (a bare !!! is a separator)" \
    [ "$(total 'budget !!!')" = 1 ]
check "a 127-byte word finds its message only" [ "$(total "$W127")" = 1 ]
check "search 'longtoken2' finds the message of the 200-byte word" \
    [ "$(total longtoken2)" = 1 ]
check "a CJK stretch across the cut of a 60-character run is found" \
    [ "$(total "$STRETCH")" = 1 ]
check "the whole 60-character CJK run is found" [ "$(total "$RUN")" = 1 ]
api POST /api/v1/exports '{"scope":"query","query":"budget !!!"}'
EXP=$(js 'd.get("id","")')
check "export of 'budget !!!': 202" code_is 202
# export_ended ID: the job is done or failed; sets st
export_ended() {
	api GET "/api/v1/exports/$1"
	st=$(js 'd["state"]')
	[ "$st" = done ] || [ "$st" = failed ]
}
wait_until 600 export_ended "$EXP"
check "... done with 1 message (not the tenant's $ALL)" \
    sh -c "[ '$st' = done ] && [ '$(js 'd["messages"]')' = 1 ]"
api POST /api/v1/holds '{"name":"budget-hold","query":"budget"}'
check "hold with query budget: 201, 1 message" \
    sh -c "[ '$CODE' = 201 ] && [ '$(js 'd["messages"]')' = 1 ]"
ctl --json search --tenant acme 'budget !!!' >"$T/out" 2>/dev/null
check "archivectl search 'budget !!!': 1 message" \
    [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"])' "$T/out")" = 1 ]
ctl --json export --tenant acme --query budget --dir "$T/exp-good" >"$T/out" 2>/dev/null
check "archivectl export --query budget: 1 message" \
    [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages"])' "$T/out")" = 1 ]
check "archivectl hold create --query budget" \
    ctl hold create --tenant acme --query budget cli-budget
check "archivectl hold list: cli-budget covers 1 message" \
    sh -c "'$CTL_BIN' -d '$DATA' hold list --tenant acme | grep -q '^cli-budget .* 1 messages'"
