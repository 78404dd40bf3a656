#!/bin/bash
# t_store_tamper.sh - verify passes on a clean archive and fails, naming
# the object, after each of: a byte flipped in an object file, an object
# file removed, a catalog entry removed, a log entry altered, an object
# file swapped with another tenant's.
. "$(dirname "$0")/lib.sh"
corpus
archive_init
ctl tenant add alpha --journal-address j@alpha.example >/dev/null
ctl tenant add beta --journal-address j@beta.example >/dev/null
ls "$CORPUS"/*.eml | head -40 | xargs "$CTL_BIN" -d "$DATA" import --tenant alpha >/dev/null
ls "$CORPUS"/*.eml | tail -40 | xargs "$CTL_BIN" -d "$DATA" import --tenant beta >/dev/null
check "verify passes on the clean archive" ctl verify
keysvc_stop
cp -a "$DATA" "$T/pristine"

tid() { ctl --json tenant show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
nth_id() { ctl --json list --tenant "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[$2]['id'])"; }
objfile() { echo "$DATA/objects/$1/${2:0:4}/${2:4:4}/$2"; }

# fresh DATA from the pristine copy, key service running
reset() {
	keysvc_start "$KEYS"
	chmod -R u+w "$DATA"; rm -rf "$DATA"; cp -a "$T/pristine" "$DATA"
}
# expect_fail WHAT ID: verify exits non-zero and names ID
expect_fail() {
	local out rc
	out=$(ctl verify 2>&1); rc=$?
	if [ $rc -ne 0 ] && grep -q "object=$2" <<<"$out"; then
		ok "$1: verify fails naming $2"
	else
		bad "$1: verify exit $rc, output: $out"
	fi
	echo "$out" | grep "^error" | head -3
	keysvc_stop
}

reset; A=$(tid alpha); BT=$(tid beta); id=$(nth_id alpha 5)
f=$(objfile "$A" "$id"); chmod u+w "$f"
python3 - "$f" <<'PY'
import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x10; open(p, "wb").write(b)
PY
expect_fail "one byte flipped in an object file" "$id"

reset; id=$(nth_id alpha 7)
rm -f "$(objfile "$A" "$id")"
expect_fail "object file removed" "$id"

reset; id=$(nth_id alpha 9)
keysvc_stop   # nothing else may hold the catalog while it is edited
"$TAMPER" "$DATA/catalog" objects delete "$A$id"
keysvc_start "$KEYS"
expect_fail "catalog entry removed" "$id"

reset; id=$(nth_id alpha 11)
seq=$(ctl --json show --tenant alpha "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["log_seq"])')
key=$(printf '%s%016x' "$A" "$seq")
"$TAMPER" "$DATA/catalog" log flip "$key" 5    # a bit of its time field
expect_fail "log entry altered" "$id"

reset; id=$(nth_id alpha 13); other=$(nth_id beta 13)
f=$(objfile "$A" "$id"); chmod u+w "$f" "$(dirname "$f")"
cp -f "$(objfile "$BT" "$other")" "$f"
expect_fail "object file swapped with another tenant's" "$id"

reset
check "the pristine copy still verifies" ctl verify
