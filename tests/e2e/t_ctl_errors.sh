#!/bin/bash
# t_ctl_errors.sh - bad input to archivectl gets a clear one-line error
# and the right exit status, and changes nothing.
. "$(dirname "$0")/lib.sh"
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null

# expect STATUS PATTERN DESCRIPTION -- COMMAND...
expect() {
	local want=$1 pat=$2 what=$3 out rc
	shift 4
	out=$("$@" 2>&1 >/dev/null); rc=$?
	if [ $rc -eq "$want" ] && grep -qE "$pat" <<<"$out"; then
		ok "$what (exit $rc: $out)"
	else
		bad "$what: exit $rc, want $want; stderr: $out"
	fi
}
expect 2 "unknown command 'frobnicate'" "unknown command" -- ctl frobnicate
expect 2 "needs --tenant" "list without --tenant" -- ctl list
expect 2 "is not an object id" "malformed object id" -- ctl get --tenant acme xyz
expect 1 "no object 0+ in this tenant" "unknown object id" -- \
    ctl get --tenant acme 00000000000000000000000000000000
expect 1 "no tenant named 'nope'" "unknown tenant" -- ctl list --tenant nope
expect 1 "already exists" "duplicate tenant" -- \
    ctl tenant add acme --journal-address other@acme.example
expect 1 "belongs to tenant acme" "journal address of another tenant" -- \
    ctl tenant add acme2 --journal-address JOURNAL@acme.example
expect 1 "tenant name 'Bad Name'" "invalid tenant name" -- \
    ctl tenant add "Bad Name" --journal-address x@y.example
expect 1 "not local@domain" "invalid journal address" -- \
    ctl tenant add t2 --journal-address nodomain
expect 2 "retention-days" "retention out of range" -- \
    ctl tenant add t3 --journal-address t3@y.example --retention-days 0
expect 1 "No such file" "import of a missing path" -- \
    ctl import --tenant acme "$T/does-not-exist.eml"
expect 1 "not an archive data directory|run archivectl init" "missing data dir" -- \
    "$CTL_BIN" -d "$T/nowhere" stats
expect 1 "already initialised" "init twice" -- ctl init

cp "$DATA/archived.conf" "$T/conf.bak"
echo "checkpoint_entries = many" >>"$DATA/archived.conf"
n=$(wc -l <"$DATA/archived.conf")
expect 1 "archived.conf:$n: checkpoint_entries: 'many' is not a whole number" \
    "bad config value names file, line and key" -- ctl stats
cp "$T/conf.bak" "$DATA/archived.conf"
echo "no_such_setting = 1" >>"$DATA/archived.conf"
expect 1 "archived.conf:$n: unknown setting 'no_such_setting'" \
    "unknown config key names file and line" -- ctl stats
cp "$T/conf.bak" "$DATA/archived.conf"
echo "import_threads = 0" >>"$DATA/archived.conf"
expect 1 "import_threads: 0 is outside 1..64" "config value out of range" -- ctl stats
cp "$T/conf.bak" "$DATA/archived.conf"

# files among the mail that are not messages (no header block): listed
# with the reason, skipped, exit status 4; --force stores them (unparsed)
mkdir -p "$T/mixed"
cp "$S/tests/e2e/web/budget.eml" "$T/mixed/"
printf 'file\tsource\tsha256\n000001.eml\tx\tab\n' >"$T/mixed/MANIFEST.tsv"
printf 'Where these messages came from\n=====\n\ntext\n' >"$T/mixed/SOURCES.txt"
printf 'From a Thu Jan  1 00:00:00 1970\nSubject: one\n\nfirst\n\nFrom b Thu Jan  1 00:00:00 1970\njust text\n\n' >"$T/mixed/box"
expect 4 "MANIFEST.tsv: skipped, not a message: no header" \
    "import skips a .tsv among the mail (exit 4)" -- ctl import --tenant acme "$T/mixed"
ctl import --tenant acme "$T/mixed" >"$T/import.out" 2>&1
check "... and lists SOURCES.txt and the mbox's message without a header" \
    sh -c "grep -q 'SOURCES.txt: skipped, not a message: no header: the first line' '$T/import.out' &&
        grep -q '/box (offset [0-9]*): skipped, not a message' '$T/import.out'"
check "... the summary says how many and how to import them" \
    grep -q 'skipped 3 files or mbox entries that are not messages.*--force' "$T/import.out"
check "... the messages themselves are stored (2)" [ "$(objects_of acme)" = 2 ]
out=$(ctl --json import --tenant acme "$T/mixed" 2>/dev/null)
check "--json import counts them (skipped 3)" \
    [ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["skipped"])' <<<"$out")" = 3 ]
ctl import --tenant acme --force "$T/mixed" >/dev/null 2>&1
check "--force: exit 0" [ $? = 0 ]
check "--force: the three stored as they are, flagged unparsed" \
    [ "$(ctl --json list --tenant acme | python3 -c 'import json,sys
print(sum(1 for o in json.load(sys.stdin) if "unparsed" in o["flags"]))')" = 3 ]

ntenants=$(ctl --json tenant list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "the refused commands changed nothing (1 tenant: $ntenants)" [ "$ntenants" -eq 1 ]
check "verify passes" ctl verify
