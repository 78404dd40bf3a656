#!/bin/bash
# t_jobs_export.sh - legal export of the sample corpus through the real
# binaries: messages.csv parses with Python's csv module (one row per
# message), every .eml is byte-identical to archivectl get, sha256sum -c
# and openssl (alone) check the signed manifest, one changed byte makes
# both fail, MBOX and DAT, a ZIP export killed half-way resumes, the export
# is a log entry, bad requests change nothing.
. "$(dirname "$0")/lib.sh"
corpus
archive_init

ctl tenant add acme --journal-address journal@acme.example >/dev/null
ctl import --tenant acme "$CORPUS"/*.eml >/dev/null 2>"$T/import.err"
n=$(objects_of acme)
check "corpus imported ($n messages)" [ "${n:-0}" -gt 1000 ]

E=$T/exp
out=$(ctl export --tenant acme --all --dir "$E" --mbox --dat 2>&1)
check "export exits 0 ($out)" [ $? -eq 0 ]
check "export reports every message" grep -q "exported $n messages" <<<"$out"
check "csv, every .eml = archivectl get, attachments, mbox, dat" \
    python3 "$S/tests/e2e/py/check_export.py" "$CTL_BIN" "$DATA" acme "$E" \
    "$n" mbox dat
check "sha256sum -c manifest.sha256 passes" \
    bash -c "cd '$E' && sha256sum -c --strict --quiet manifest.sha256"
nman=$(wc -l <"$E/manifest.sha256")
nfiles=$(find "$E" -type f | wc -l)
check "manifest lists every file ($nman + manifest + sig = $nfiles)" \
    [ $((nman + 2)) -eq "$nfiles" ]
check "openssl alone verifies the signature" \
    openssl pkeyutl -verify -pubin -inkey "$E/export-pubkey.pem" -rawin \
    -in "$E/manifest.sha256" -sigfile "$E/manifest.sha256.sig"
check "VERIFY.txt explains sha256sum, openssl and verify-export" \
    bash -c "grep -q 'sha256sum -c' '$E/VERIFY.txt' && grep -q 'openssl pkeyutl' '$E/VERIFY.txt' && grep -q 'verify-export' '$E/VERIFY.txt'"
check "archivectl verify-export passes" ctl verify-export "$E"
check "no work files left" [ ! -e "$E/.work" ]

# one changed byte
cp -a "$E" "$T/bad1"
eml=$(find "$T/bad1/messages" -name '*.eml' | head -1)
printf 'X' | dd of="$eml" bs=1 seek=10 conv=notrunc status=none
check "a changed .eml byte fails sha256sum -c" \
    bash -c "! (cd '$T/bad1' && sha256sum -c --quiet manifest.sha256 >/dev/null 2>&1)"
check "a changed .eml byte fails verify-export" \
    bash -c "! '$CTL_BIN' verify-export '$T/bad1' >/dev/null"
cp -a "$E" "$T/bad2"
printf '0' | dd of="$T/bad2/manifest.sha256" bs=1 seek=0 conv=notrunc status=none
[ "$(head -c1 "$E/manifest.sha256")" = 0 ] &&
    printf '1' | dd of="$T/bad2/manifest.sha256" bs=1 seek=0 conv=notrunc status=none
check "a changed manifest byte fails the openssl signature check" \
    bash -c "! openssl pkeyutl -verify -pubin -inkey '$T/bad2/export-pubkey.pem' -rawin -in '$T/bad2/manifest.sha256' -sigfile '$T/bad2/manifest.sha256.sig' >/dev/null 2>&1"
check "a changed manifest byte fails sha256sum -c" \
    bash -c "! (cd '$T/bad2' && sha256sum -c --quiet manifest.sha256 >/dev/null 2>&1)"
check "a changed manifest byte fails verify-export" \
    bash -c "! '$CTL_BIN' verify-export '$T/bad2' >/dev/null"
rm -rf "$T/bad1" "$T/bad2"
echo extra >"$E/extra.txt"
check "an added file fails verify-export" \
    bash -c "! '$CTL_BIN' verify-export '$E' >/dev/null"
rm -f "$E/extra.txt"

# the export is in the log, with its manifest digest
dig=$(sha256sum "$E/manifest.sha256" | cut -c1-64)
check "export log entry carries the manifest digest and count" \
    bash -c "'$CTL_BIN' -d '$DATA' --json log --tenant acme | python3 -c \"
import json,sys
e=[x for x in json.load(sys.stdin) if x['kind']=='export']
sys.exit(not (len(e)==1 and e[0]['digest']=='$dig' and e[0]['detail']['messages']==$n and e[0]['detail']['scope']=='all'))\""

# bad requests change nothing
before=$(ctl --json log --tenant acme | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "a finished export directory is refused" \
    bash -c "! '$CTL_BIN' -d '$DATA' export --tenant acme --all --dir '$E' 2>&1 | grep -q 'finished export' && false || true"
err=$(ctl export --tenant acme --all --dir "$E" 2>&1)
check "export into a finished export fails clearly ($err)" \
    grep -q "finished export" <<<"$err"
mkdir -p "$T/full" && echo x >"$T/full/f"
err=$(ctl export --tenant acme --all --dir "$T/full" 2>&1)
check "export into a non-empty directory fails ($err)" \
    grep -q "not empty" <<<"$err"
err=$(ctl export --tenant nosuch --all --dir "$T/n1" 2>&1)
check "unknown tenant fails clearly" grep -q "no tenant named" <<<"$err"
err=$(ctl export --tenant acme --all 2>&1)
check "export without --dir/--zip is a usage error" [ $? -eq 2 ]
err=$(ctl export --tenant acme --query 'from:(' --dir "$T/q1" 2>&1)
check "a bad query fails clearly ($err)" [ $? -ne 0 ]
after=$(ctl --json log --tenant acme | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "failed exports wrote no export log entry" [ "$before" -eq "$after" ]

# ZIP export killed half-way, then resumed
Z=$T/acme.zip
"$CTL_BIN" -d "$DATA" export --tenant acme --all --zip "$Z" \
    >"$T/zip1.out" 2>&1 &
zpid=$!
# until 300 records are written (or the export ended, which fails below)
halfway() {
	nrec=$(wc -l <"$Z.partial.d/.work/records" 2>/dev/null)
	[ "${nrec:-0}" -ge 300 ]
}
wait_until 600 started_or_gone $zpid halfway
kill -KILL $zpid 2>/dev/null
wait $zpid 2>/dev/null
check "zip export was interrupted half-way ($nrec records)" \
    bash -c "[ ! -e '$Z' ] && [ -d '$Z.partial.d/.work' ]"
out=$(ctl --json export --tenant acme --all --zip "$Z")
check "resumed zip export exits 0" [ $? -eq 0 ]
resumed=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["resumed"])' <<<"$out")
check "the second run resumed ($resumed messages already done)" \
    [ "${resumed:-0}" -ge 300 ]
check "staging directory removed" [ ! -e "$Z.partial.d" ]
mkdir "$T/unz"
check "zip extracts (python zipfile)" \
    python3 -c "import zipfile; zipfile.ZipFile('$Z').extractall('$T/unz')"
check "zip: sha256sum -c passes" \
    bash -c "cd '$T/unz' && sha256sum -c --strict --quiet manifest.sha256"
check "zip: verify-export passes" ctl verify-export "$T/unz"
check "zip: same messages.csv as the directory export" \
    cmp -s "$T/unz/messages.csv" "$E/messages.csv"
check "verify passes after the exports" ctl verify
