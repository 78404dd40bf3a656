#!/bin/bash
# t_keysvc_backup.sh - archive-keysvc backup/restore on a real archive:
# tenants with archived messages and signed checkpoints; a 3-of-5 share
# backup and a passphrase backup taken while keysvc runs; a tenant
# shredded after the backup; the key directory destroyed; restore from 3
# shares (2 refused) with the archive's shred list; verify passes, the
# messages read back byte for byte, the shredded tenant stays shredded;
# the passphrase backup round trip (wrong passphrase refused); no key
# byte in any backup or share file.
. "$(dirname "$0")/lib.sh"
archive_init
KS=$KEYSVC_BIN

M=$T/mail
mkdir -p "$M"
for t in acme beta gamma; do
	ctl tenant add $t --journal-address journal@$t.example >/dev/null
	for i in 1 2 3; do
		printf 'From: a%s@%s.example\r\nTo: b@elsewhere.example\r\nSubject: %s ledger %s\r\nMessage-ID: <%s%s@t>\r\n\r\nquartermaster%s%s\r\n' \
		    $i $t $t $i $t $i $t $i >"$M/$t$i.eml"
	done
	ctl import --tenant $t "$M"/$t*.eml >/dev/null
done
check "a checkpoint signs every log head" ctl checkpoint
check "verify passes before" bash -c "'$CTL_BIN' -d '$DATA' verify 2>&1 | grep -q ' 0 errors'"

# what must come back: each message of acme and beta, byte for byte
ids_of() { ctl --json list --tenant "$1" | python3 -c 'import json,sys; print("\n".join(m["id"] for m in json.load(sys.stdin)))'; }
ids_of acme >"$T/acme.ids"
ids_of beta >"$T/beta.ids"
# sums_now FILE: the sha256 of every acme and beta message, read through
# archivectl (one get per tenant)
sums_now() {
	local t d
	for t in acme beta; do
		d=$T/got.$t
		rm -rf "$d" && mkdir -p "$d"
		ctl get --tenant $t --out "$d" $(cat "$T/$t.ids") >/dev/null || return 1
		(cd "$d" && sha256sum *.eml | sed "s/^/$t /")
	done >"$1"
}
sums_now "$T/before.sums"
check "six messages read before" [ "$(wc -l <"$T/before.sums")" -eq 6 ]
read_back() { sums_now "$T/after.sums" && cmp -s "$T/before.sums" "$T/after.sums"; }
GID=$(ids_of gamma | head -1)
GTID=$(ctl --json tenant show gamma | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
PK=$(cat "$KEYS/signing.pub")

# backups while keysvc serves: 3-of-5 shares; a passphrase on its own
mkdir -p "$T/bk"
out=$("$KS" backup -d "$KEYS" -o "$T/bk/shares.akb" --shares 3/5 \
    --share-dir "$T/shares" 2>"$T/backup.log")
check "backup with 3-of-5 shares ($out)" grep -q "any 3 of its 5 shares" <<<"$out"
check "five share files, 0600" \
    bash -c "[ \$(ls '$T/shares' | wc -l) -eq 5 ] && [ -z \"\$(find '$T/shares' -type f ! -perm 600)\" ]"
check "the backup names the signing key" grep -q "signing key: $PK" <<<"$out"
check "the backup counts 3 tenants" grep -q "tenants:     3 with keys" <<<"$out"
echo "ledger drill 2024" | "$KS" backup -d "$KEYS" -o "$T/bk/pass.akb" \
    --backup-passphrase-fd 0 --pwhash-cost interactive >/dev/null 2>>"$T/backup.log"
check "passphrase-only backup" [ -s "$T/bk/pass.akb" ]
info=$("$KS" backup-info "$T/bk/pass.akb")
check "backup-info needs no secret ($info)" grep -q "opens with:  the backup passphrase$" <<<"$info"
"$KS" backup -d "$KEYS" -o "$T/bk/pass.akb" --shares 2/2 --share-dir "$T/s2" 2>"$T/again.log"
check "a backup never replaces a file" grep -q "exists" "$T/again.log"

# no key byte in plaintext: the KEK (the store's kek is unsealed here), the
# sealed signing key and every wrapped data key file, raw or in hex
check "no key bytes in the backup or share files" python3 - "$KEYS" "$T/bk" "$T/shares" <<'EOF'
import os, sys
keys, outs = sys.argv[1], sys.argv[2:]
kek = open(os.path.join(keys, "kek"), "rb").read()
assert kek[:4] == b"AKEK" and kek[5] == 0 and len(kek) == 38
needles = [kek[6:], open(os.path.join(keys, "signing.key"), "rb").read()]
for root, _, files in os.walk(os.path.join(keys, "tenants")):
    needles += [open(os.path.join(root, f), "rb").read() for f in files if f.endswith(".key")]
assert len(needles) >= 5
needles += [n.hex().encode() for n in list(needles)]
needles += [n[:16] for n in needles[:1]]
for d in outs:
    for f in os.listdir(d):
        data = open(os.path.join(d, f), "rb").read()
        for n in needles:
            if n in data:
                sys.exit("key bytes in %s" % f)
EOF

# gamma is shredded after the backup; copies of its objects and of the
# catalog taken before (as an old backup of the archive would hold them)
cp -a "$DATA/objects/$GTID" "$T/gamma-objects"
cp -a "$DATA/catalog" "$T/catalog-copy"
ctl tenant terminate gamma >/dev/null
ctl tenant advance gamma --force >/dev/null
out=$(ctl tenant advance gamma --force)
check "gamma shredded after the backup" grep -q "shredded" <<<"$out"
# the archive's shred list: every tenant it shredded
ctl --json tenant list | python3 -c 'import json,sys
for t in json.load(sys.stdin):
    if t["state"] == "shredded": print(t["id"], t["name"])' >"$T/shredded.list"
check "the shred list names gamma" grep -q "^$GTID gamma" "$T/shredded.list"

err=$("$KS" restore -d "$KEYS" -i "$T/bk/shares.akb" --shredded "$T/shredded.list" \
    --share "$T/shares/"*-1-of-5.txt --share "$T/shares/"*-2-of-5.txt \
    --share "$T/shares/"*-3-of-5.txt --force 2>&1)
check "restore over the key store of a running keysvc refused" \
    grep -q "archive-keysvc is running on" <<<"$err"

# disaster: the key directory is gone
keysvc_stop
rm -rf "$KEYS"
err=$(ctl get --tenant acme "$(head -1 "$T/acme.ids")" 2>&1)
check "without keysvc nothing reads" [ -n "$err" ]

err=$("$KS" restore -d "$KEYS" -i "$T/bk/shares.akb" --shredded "$T/shredded.list" \
    --share "$T/shares/"*-2-of-5.txt --share "$T/shares/"*-4-of-5.txt 2>&1)
check "restore from 2 shares refused ($err)" grep -q "3 shares are needed.*2 given" <<<"$err"
check "nothing created by a refused restore" [ ! -e "$KEYS" ]
"$KS" restore -d "$KEYS" -i "$T/bk/shares.akb" --share "$T/shares/"*-1-of-5.txt \
    --share "$T/shares/"*-3-of-5.txt --share "$T/shares/"*-5-of-5.txt \
    >/dev/null 2>"$T/noshred.log"
check "restore without a word on shredding is a usage error" [ $? -eq 2 ]
python3 - "$T/shares/"*-4-of-5.txt <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
m = re.search(r"^data: *", s, re.M)
c = s[m.end()]
open(p, "w").write(s[:m.end()] + ("1" if c == "0" else "0") + s[m.end() + 1:])
EOF
err=$("$KS" restore -d "$KEYS" -i "$T/bk/shares.akb" --shredded "$T/shredded.list" \
    --share "$T/shares/"*-1-of-5.txt --share "$T/shares/"*-4-of-5.txt \
    --share "$T/shares/"*-5-of-5.txt 2>&1)
check "an altered share refused by name ($err)" grep -q -- "-4-of-5.txt: .*mistyped or altered" <<<"$err"

out=$("$KS" restore -d "$KEYS" -i "$T/bk/shares.akb" --shredded "$T/shredded.list" \
    --share "$T/shares/"*-1-of-5.txt --share "$T/shares/"*-3-of-5.txt \
    --share "$T/shares/"*-5-of-5.txt --expect-pubkey "$PK" 2>"$T/restore.log")
check "restore from shares 1, 3, 5 ($out)" grep -q "restored:    $KEYS" <<<"$out"
check "gamma's keys not restored" grep -q "1 shredded since" <<<"$out"
check "the same signing key" [ "$(cat "$KEYS/signing.pub")" = "$PK" ]
check "gamma has only its destroyed marker" \
    bash -c "[ -f '$KEYS/tenants/$GTID/destroyed' ] && [ \$(ls '$KEYS/tenants/$GTID' | wc -l) -eq 1 ]"

# the archive on the restored keys
keysvc_start "$KEYS"
check "every message of acme and beta reads back byte for byte" read_back
out=$(ctl verify 2>&1)
check "archivectl verify passes on the restored keys ($out)" grep -q " 0 errors" <<<"$out"
check "verify reports gamma shredded" grep -q "tenant=gamma .*shredded" <<<"$out"
check "a new checkpoint signs with the restored key" ctl checkpoint
check "and verifies" bash -c "'$CTL_BIN' -d '$DATA' verify 2>&1 | grep -q ' 0 errors'"
keysvc_stop

# the passphrase backup: destroy again, wrong passphrase, then right
rm -rf "$KEYS"
err=$(echo "ledger drill 2023" | "$KS" restore -d "$KEYS" -i "$T/bk/pass.akb" \
    --backup-passphrase-fd 0 --shredded "$T/shredded.list" 2>&1)
check "wrong backup passphrase refused ($err)" grep -q "wrong backup passphrase" <<<"$err"
check "nothing created" [ ! -e "$KEYS" ]
echo "ledger drill 2024" | "$KS" restore -d "$KEYS" -i "$T/bk/pass.akb" \
    --backup-passphrase-fd 0 --shredded "$T/shredded.list" >/dev/null 2>>"$T/restore.log"
check "passphrase restore" [ -f "$KEYS/kek" ]
keysvc_start "$KEYS"
check "messages read back after the passphrase restore" read_back
check "verify passes after the passphrase restore" \
    bash -c "'$CTL_BIN' -d '$DATA' verify 2>&1 | grep -q ' 0 errors'"
# the old backups of the archive and of the keys together still do not
# read gamma: the restore kept it shredded
rm -rf "$DATA/catalog"
cp -a "$T/catalog-copy" "$DATA/catalog"
cp -a "$T/gamma-objects" "$DATA/objects/$GTID"
err=$(ctl get --tenant gamma "$GID" 2>&1 >/dev/null)
check "gamma's old copies stay unreadable on the restored keys ($err)" \
    grep -qiE "shredded|destroyed" <<<"$err"
keysvc_stop

# without a shred list the old backup brings gamma's keys back: said loudly
err=$("$KS" restore -d "$T/keys-noshred" -i "$T/bk/shares.akb" --no-shred-list \
    --share "$T/shares/"*-1-of-5.txt --share "$T/shares/"*-2-of-5.txt \
    --share "$T/shares/"*-3-of-5.txt 2>&1 >/dev/null)
check "restore with --no-shred-list warns and names every live tenant" \
    bash -c "grep -q 'WARNING: restored WITHOUT a shred list' <<<\"\$1\" && grep -q '  $GTID' <<<\"\$1\"" _ "$err"
check "no sanitizer report from the backup tools" \
    bash -c "! grep -qE 'Sanitizer|runtime error' '$T/backup.log' '$T/restore.log'"
