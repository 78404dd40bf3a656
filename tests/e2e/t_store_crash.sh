#!/bin/bash
# t_store_crash.sh - archivectl import killed with SIGKILL in the middle,
# run again: every message is present exactly once and verify passes.
# The catalog starts with a 1 MB map so it also has to grow under load.
. "$(dirname "$0")/lib.sh"
corpus
archive_init
set_conf catalog_map_size 1M
set_conf import_batch 64
total=$(ls "$CORPUS"/*.eml | wc -l)
objects() {
	ctl --json stats 2>/dev/null | python3 -c "import json,sys
for t in json.load(sys.stdin)['tenants']:
    if t['tenant'] == '$1': print(t['objects'])"
}
# Three imports, each killed at another point of its progress: once it
# has committed a twentieth, a sixth, a third of the corpus (watched, not
# guessed from a delay: `import --progress` writes a line to stderr after
# each batch of import_batch messages is committed, read every 10 ms;
# stopping the import while `archivectl stats` looks would hold LMDB's
# writer lock and hang the look).  The kill lands in one of the next
# batches, each with its own fdatasync, long before the end of the
# corpus however fast the machine.  A kill that came too late all the
# same (all committed) is tried again on a new tenant.
tenants=()
for part in 20 6 3; do
	want=$((total / part))
	for try in 1 2 3 4 5 6; do
		name="t${#tenants[@]}x$try"
		ctl tenant add "$name" --journal-address "$name@x.example" >/dev/null
		"$CTL_BIN" -d "$DATA" import --progress --tenant "$name" \
		    "$CORPUS"/*.eml >/dev/null 2>"$T/progress" &
		pid=$!
		end=$((SECONDS + 600)) seen=0
		while [ $SECONDS -lt $end ] && [ $seen -lt "$want" ] &&
		    ! ended $pid; do
			p=$(tr '\r' '\n' <"$T/progress" |
			    sed -n 's/^import: \([0-9]*\) messages.*/\1/p' | tail -1)
			seen=${p:-0}
			sleep 0.01
		done
		kill -KILL $pid 2>/dev/null
		wait $pid 2>/dev/null
		n=$(objects "$name")
		echo "killed once $seen were committed: $n of $total committed"
		[ "${n:-0}" -lt "$total" ] && break
	done
	check "import into $name killed in the middle ($n of $total committed)" \
	    [ "$n" -gt 0 -a "$n" -lt "$total" ]
	tenants+=("$name")
done
for name in "${tenants[@]}"; do
	out=$(ctl import --tenant "$name" "$CORPUS"/*.eml)
	check "$name: the import run again completes: $out" grep -q " 0 failed" <<<"$out"
	# each stored exactly once; every 10th fetched and compared
	check "$name: every message present exactly once, get byte for byte" \
	    python3 "$S/tests/e2e/py/check_get.py" "$CTL_BIN" "$DATA" "$name" \
	    "$CORPUS" 10
done
out=$(ctl verify)
check "verify passes after the kills" [ $? -eq 0 ]
echo "$out" | tail -3
map=$(ctl --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["catalog_map_size"])')
check "the catalog map grew past 1 MB ($map bytes)" [ "$map" -gt 1048576 ]
