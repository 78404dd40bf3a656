#!/bin/bash
# t_jobs_retention.sh - retention policies, legal holds and disposition
# through the real binaries, time from the injectable clock (AR_TEST_NOW):
# the longest matching rule fixes retain-until at import; a policy can be
# lengthened (and extend stored mail) but never shortened; a hold blocks
# disposition until it is released (a logged act); disposed mail is
# unreadable, absent from exports, and verify passes with the tombstones;
# nothing about holds or rules is readable on disk.
. "$(dirname "$0")/lib.sh"
archive_init
DAY=86400
T0=1700000000
export AR_TEST_NOW=$T0

ctl tenant add acme --journal-address journal@acme.example \
    --retention-days 10 >/dev/null
check "rule: @legal-dept.example kept 30 days" \
    ctl retention rule add --tenant acme @legal-dept.example 30

M=$T/mail
mkdir -p "$M"
mk() {  # mk FILE FROM TO SUBJECT
	printf 'From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <%s@test>\r\n\r\nbody of %s\r\n' \
	    "$2" "$3" "$4" "$1" "$1" >"$M/$1.eml"
}
mk m1 alice@acme.example bob@elsewhere.example "quarterly zanzibar figures"
mk m2 carol@legal-dept.example bob@elsewhere.example "privileged opinion"
mk m3 dave@custodian.example bob@elsewhere.example "dave writes"
mk m4 erin@acme.example frank@elsewhere.example "lunch plans"
check "import 4 messages" ctl import --tenant acme "$M"/m1.eml "$M"/m2.eml \
    "$M"/m3.eml "$M"/m4.eml

# id and retain-until by subject
ru() {
	ctl --json list --tenant acme | python3 -c "import json,sys,calendar,time
for o in json.load(sys.stdin):
    if o['meta'].get('subject') == sys.argv[1]:
        print(o['id'], calendar.timegm(time.strptime(o['retain_until'], '%Y-%m-%dT%H:%M:%SZ')))" "$1"
}
read -r ID1 RU1 < <(ru "quarterly zanzibar figures")
read -r ID2 RU2 < <(ru "privileged opinion")
read -r ID3 RU3 < <(ru "dave writes")
read -r ID4 RU4 < <(ru "lunch plans")
check "default period at ingest (10 days)" [ "$RU1" -eq $((T0 + 10 * DAY)) ]
check "longest matching rule at ingest (30 days)" [ "$RU2" -eq $((T0 + 30 * DAY)) ]

# never shortened
err=$(ctl retention set --tenant acme --default-days 5 2>&1)
check "shorter default refused ($err)" grep -q "never shortened" <<<"$err"
err=$(ctl retention rule add --tenant acme @legal-dept.example 20 2>&1)
check "shorter rule refused ($err)" grep -q "never shortened" <<<"$err"
err=$(ctl retention rule add --tenant acme not-an-address 20 2>&1)
check "bad rule refused ($err)" [ $? -ne 0 ]
check "default still 10 days" \
    bash -c "'$CTL_BIN' -d '$DATA' retention show --tenant acme | grep -q 'default: 10 days'"
read -r _ x < <(ru "privileged opinion")
check "retain-until unchanged after refusals" [ "$x" -eq "$RU2" ]

# lengthened, and applied to stored mail
check "rule for alice (20 days) with --apply" \
    ctl retention rule add --tenant acme alice@acme.example 20 --apply
read -r _ RU1 < <(ru "quarterly zanzibar figures")
check "stored mail extended to 20 days" [ "$RU1" -eq $((T0 + 20 * DAY)) ]
read -r _ x < <(ru "lunch plans")
check "unmatched mail untouched" [ "$x" -eq "$RU4" ]
check "rule remove keeps stored retain-until" \
    bash -c "'$CTL_BIN' -d '$DATA' retention rule remove --tenant acme alice@acme.example && [ \"\$('$CTL_BIN' -d '$DATA' --json show --tenant acme $ID1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"retain_until\"])')\" = '$(date -u -d @$((T0 + 20 * DAY)) +%Y-%m-%dT%H:%M:%SZ)' ]"

# a hold on dave's mail
check "hold create" ctl hold create --tenant acme smith-v-jones \
    --description "Smith versus Jones discovery" --custodian dave@custodian.example
err=$(ctl hold create --tenant acme smith-v-jones --custodian x@y.example 2>&1)
check "second active hold of that name refused" grep -q "exists" <<<"$err"
err=$(ctl hold create --tenant acme nothing 2>&1)
check "hold without scope refused" grep -q "no scope" <<<"$err"
check "hold list counts 1 message" \
    bash -c "'$CTL_BIN' -d '$DATA' --json hold list --tenant acme | python3 -c 'import json,sys; h=json.load(sys.stdin); sys.exit(not (len(h)==1 and h[0][\"messages\"]==1 and h[0][\"active\"]))'"
check "export --hold exports the held message" \
    bash -c "'$CTL_BIN' -d '$DATA' export --tenant acme --hold smith-v-jones --dir '$T/hx' >/dev/null && [ -f '$T/hx/messages/$ID3.eml' ] && [ \$(ls '$T/hx/messages' | wc -l) -eq 1 ]"

# day 15: m3 (held) and m4 are past retain-until
export AR_TEST_NOW=$((T0 + 15 * DAY))
out=$(ctl dispose --tenant acme --dry-run)
check "dry run: 1 would go, 1 held ($out)" \
    grep -q "2 past retain-until, 1 held, 1 would be disposed of" <<<"$out"
check "dry run changed nothing" [ "$(objects_of acme)" -eq 4 ]
F4=$(find "$DATA/objects" -name "$ID4")
cp -p "$F4" "$T/m4.copy"
out=$(ctl dispose --tenant acme)
check "dispose: m4 disposed, m3 held ($out)" \
    grep -q "1 held, 1 disposed of, 0 failed" <<<"$out"
check "3 objects left" [ "$(objects_of acme)" -eq 3 ]
check "disposed message unreadable" \
    bash -c "! '$CTL_BIN' -d '$DATA' get --tenant acme $ID4 >/dev/null 2>&1"
check "disposed object file gone" \
    bash -c "! find '$DATA' -name '$ID4' | grep -q ."
out=$(ctl verify --tenant acme)
check "verify passes with the tombstone ($out)" [ $? -eq 0 ]
check "verify tells the disposed object from a missing one" \
    grep -q "1 objects disposed of by policy" <<<"$out"
check "tombstone in the log" \
    bash -c "'$CTL_BIN' -d '$DATA' log --tenant acme | grep -q 'dispose .*$ID4'"
ctl export --tenant acme --all --dir "$T/ex1" >/dev/null
check "disposed message absent from an export" \
    bash -c "[ ! -e '$T/ex1/messages/$ID4.eml' ] && ! grep -q $ID4 '$T/ex1/messages.csv' && [ \$(ls '$T/ex1/messages' | wc -l) -eq 3 ]"
out=$(ctl dispose --tenant acme)
check "dispose again: idempotent ($out)" grep -q " 0 disposed of" <<<"$out"
# a disposition interrupted after its tombstone: the file is still there
cp -p "$T/m4.copy" "$F4"
out=$(ctl verify --tenant acme)
check "verify warns about a disposed object's leftover file" \
    grep -q "disposed object's file is still present" <<<"$out"
out=$(ctl dispose --tenant acme)
check "the next dispose deletes it ($out)" \
    grep -q "1 files of interrupted dispositions deleted" <<<"$out"
check "and verify is clean again" \
    bash -c "! '$CTL_BIN' -d '$DATA' verify --tenant acme | grep -q 'still present'"

# release lets disposition proceed
check "hold release" ctl hold release --tenant acme smith-v-jones \
    --reason "case settled"
err=$(ctl hold release --tenant acme smith-v-jones 2>&1)
check "second release refused" grep -q "already released" <<<"$err"
check "release is in the log" \
    bash -c "'$CTL_BIN' -d '$DATA' --json log --tenant acme | python3 -c 'import json,sys; sys.exit(not any(e[\"kind\"]==\"hold\" and (e[\"detail\"] or {}).get(\"action\")==\"hold-release\" and e[\"detail\"].get(\"reason\")==\"case settled\" for e in json.load(sys.stdin)))'"
out=$(ctl dispose --tenant acme)
check "after release m3 is disposed ($out)" grep -q "0 held, 1 disposed of" <<<"$out"
check "verify passes with 2 tombstones" \
    bash -c "'$CTL_BIN' -d '$DATA' verify --tenant acme | grep -q '2 objects disposed of'"

hits=$(grep -rlaE "legal-dept|custodian.example|Smith versus|smith-v-jones|zanzibar|case settled" "$DATA" "$KEYS" 2>/dev/null)
check "no rule, hold, custodian or subject readable on disk" [ -z "$hits" ]
[ -n "$hits" ] && echo "$hits"

# the scheduled job in archived: at day 40 everything left is past its
# retain-until (m1 day 20, m2 day 30, m5 day 25) and nothing is held
mk m5 gina@acme.example hal@elsewhere.example "late arrival"
ctl import --tenant acme "$M/m5.eml" >/dev/null
check "3 objects before the daemon runs" [ "$(objects_of acme)" -eq 3 ]
export AR_TEST_NOW=$((T0 + 40 * DAY))
archived_start
none_left() { [ "$(objects_of acme)" = 0 ]; }
check "archived's disposition job removed the 3 expired messages" \
    wait_until 300 none_left
check "archived logged the dispositions" \
    grep -q "job=dispose status=disposed" "$T/archived.log"
archived_stop
check "verify passes with 5 tombstones" \
    bash -c "'$CTL_BIN' -d '$DATA' verify --tenant acme | grep -q '5 objects disposed of'"
