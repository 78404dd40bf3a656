#!/bin/bash
# t_jobs_terminate.sh - tenant termination through the real binaries, time
# from the injectable clock: terminated (no new mail, export allowed) ->
# inactive -> shredded after the windows; a hold blocks shredding; the
# certificate of destruction verifies with openssl; verify reports the
# tenant shredded; copies of the object files and of the catalog taken
# beforehand can no longer be decrypted; another tenant is untouched.
. "$(dirname "$0")/lib.sh"
archive_init
DAY=86400
T0=1700000000
export AR_TEST_NOW=$T0

ctl tenant add acme --journal-address journal@acme.example >/dev/null
ctl tenant add beta --journal-address journal@beta.example >/dev/null
M=$T/mail
mkdir -p "$M"
for i in 1 2 3; do
	printf 'From: a%s@acme.example\r\nTo: b@elsewhere.example\r\nSubject: acme secret %s\r\nMessage-ID: <a%s@t>\r\n\r\nmarmalade%s\r\n' \
	    $i $i $i $i >"$M/a$i.eml"
done
printf 'From: x@beta.example\r\nTo: y@elsewhere.example\r\nSubject: beta note\r\nMessage-ID: <b1@t>\r\n\r\nhello\r\n' >"$M/b1.eml"
ctl import --tenant acme "$M"/a*.eml >/dev/null
ctl import --tenant beta "$M"/b1.eml >/dev/null
ID=$(ctl --json list --tenant acme | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
BID=$(ctl --json list --tenant beta | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
TID=$(ctl --json tenant show acme | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

err=$(ctl tenant advance acme 2>&1)
check "an active tenant cannot be advanced ($err)" grep -q "terminate it first" <<<"$err"
check "terminate" ctl tenant terminate acme --export-days 30 --inactive-days 120
check "state is terminated" \
    bash -c "'$CTL_BIN' -d '$DATA' --json tenant show acme | grep -q '\"state\": \"terminated\"'"
out=$(ctl import --tenant acme "$M"/b1.eml 2>&1)
check "new mail refused after termination" grep -q "1 failed" <<<"$out"
check "export still allowed while terminated" \
    bash -c "'$CTL_BIN' -d '$DATA' export --tenant acme --all --dir '$T/ret' >/dev/null && [ \$(ls '$T/ret/messages' | wc -l) -eq 3 ]"
err=$(ctl tenant advance acme 2>&1)
check "advance refused inside the export window ($err)" grep -q "terminated until" <<<"$err"

export AR_TEST_NOW=$((T0 + 31 * DAY))
check "after 30 days: advance to inactive" \
    bash -c "'$CTL_BIN' -d '$DATA' tenant advance acme | grep -q 'now inactive'"
err=$(ctl tenant advance acme 2>&1)
check "advance refused inside the keeping window" grep -q "inactive until" <<<"$err"

export AR_TEST_NOW=$((T0 + 152 * DAY))
ctl hold create --tenant acme litigation --custodian b@elsewhere.example >/dev/null
err=$(ctl tenant advance acme 2>&1)
check "a hold blocks shredding ($err)" grep -q "under legal hold 'litigation'" <<<"$err"
check "nothing destroyed while held" \
    bash -c "'$CTL_BIN' -d '$DATA' get --tenant acme $ID >/dev/null"
ctl hold release --tenant acme litigation --reason "case closed" >/dev/null

# copies taken before shredding
cp -a "$DATA/objects/$TID" "$T/objcopy"
cp -a "$DATA/catalog" "$T/catcopy"
out=$(ctl tenant advance acme)
check "shredded after the windows ($out)" grep -q "tenant acme shredded" <<<"$out"
CERT=$(ls "$DATA"/certificates/acme-*-destruction.json)
check "certificate of destruction written" [ -f "$CERT" ]
check "certificate signature verifies with openssl" \
    openssl pkeyutl -verify -pubin -inkey "${CERT%.json}.pubkey.pem" -rawin \
    -in "$CERT" -sigfile "$CERT.sig"
check "certificate names tenant, counts and the final log head" \
    python3 -c "import json; c=json.load(open('$CERT')); assert c['tenant']=='acme' and c['objects']==3 and c['final_log_seq']>0 and len(c['final_log_head'])==64 and c['keys_destroyed']"
out=$(ctl verify 2>&1)
check "verify reports the tenant shredded and passes ($out)" \
    bash -c "grep -q 'tenant=acme .*shredded' <<<\"\$1\" && grep -q ' 0 errors' <<<\"\$1\"" _ "$out"
check "the object files are gone" [ ! -e "$DATA/objects/$TID" ]
check "mail unreadable" \
    bash -c "! '$CTL_BIN' -d '$DATA' get --tenant acme $ID >/dev/null 2>&1"
err=$(ctl export --tenant acme --all --dir "$T/after" 2>&1)
check "export refused after shredding ($err)" grep -q "shredded" <<<"$err"
check "only the destroyed marker is left of acme's keys" \
    bash -c "[ -n \"\$(find '$KEYS' -path '*$TID*' -name destroyed)\" ] && [ -z \"\$(find '$KEYS' -path '*$TID*' -type f ! -name destroyed)\" ]"
check "beta untouched: get and verify" \
    bash -c "'$CTL_BIN' -d '$DATA' get --tenant beta $BID >/dev/null && '$CTL_BIN' -d '$DATA' verify --tenant beta >/dev/null"
check "advance of a shredded tenant is idempotent" ctl tenant advance acme

# put the old catalog and object files back: nothing left decrypts them
rm -rf "$DATA/catalog"
cp -a "$T/catcopy" "$DATA/catalog"
mkdir -p "$DATA/objects"
cp -a "$T/objcopy" "$DATA/objects/$TID"
err=$(ctl get --tenant acme "$ID" 2>&1 >/dev/null)
check "restored copies cannot be decrypted ($err)" \
    grep -qiE "shredded|destroyed" <<<"$err"
hits=$(grep -rlaE "marmalade|acme secret" "$DATA" "$KEYS" "$T/objcopy" "$T/catcopy" 2>/dev/null)
check "no plaintext in the copies" [ -z "$hits" ]
