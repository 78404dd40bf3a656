#!/bin/bash
# t_ingest_tempfail.sh - a full spool disk answers 452 4.3.1 and an
# unreachable key service 451 4.3.0 (never 250, never 5xx); the client's
# retry succeeds once the cause is gone.  The disk-full part mounts a
# small tmpfs and needs root; without it that part says so and is skipped.
. "$(dirname "$0")/lib.sh"
archive_init
ctl tenant add acme --journal-address journal@acme.example >/dev/null
python3 -c "
import sys
body = ''.join('line %d of a message that is large enough\r\n' % i for i in range(20000))
open('$T/msg.eml','w',newline='').write('From: a@example.org\r\nTo: journal@acme.example\r\nSubject: t\r\n\r\n' + body)"
send() { swaks --server 127.0.0.1:$SMTP_PORT --from a@example.org \
    --to journal@acme.example --data "$T/msg.eml" 2>&1; }

mounted=0
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=2m tmpfs "$DATA/spool" 2>/dev/null; then
	mounted=1
	trap 'umount "$DATA/spool" 2>/dev/null; finish; exit $?' EXIT
fi
archived_start
if [ $mounted -eq 1 ]; then
	# fill the spool's file system, leaving less than one message
	dd if=/dev/zero of="$DATA/spool/filler" bs=64k count=1000 2>/dev/null
	out=$(send)
	check "disk full: 452 4.3.1" grep -q "<\*\* 452 4.3.1" <<<"$out"
	rm -f "$DATA/spool/filler"
	out=$(send)
	check "after space is freed the retry gets 250" grep -q "<-  250 2.0.0" <<<"$out"
	check "and the message is stored" wait_objects acme 1
else
	echo "skip: disk-full part needs root to mount a tmpfs"
fi

keysvc_stop
out=$(send)
check "key service down: 451 4.3.0" grep -q "<\*\* 451 4.3.0" <<<"$out"
check "archived keeps running" kill -0 "$ARCHIVED_PID"
keysvc_start "$KEYS"
sed -i 's/line 1 of/line one of/' "$T/msg.eml"
out=$(send)
check "after the key service is back the retry gets 250" grep -q "<-  250 2.0.0" <<<"$out"
want=$(( mounted ? 2 : 1 ))
check "the message is stored ($want objects)" wait_objects acme "$want"
archived_stop
[ $mounted -eq 1 ] && umount "$DATA/spool"
check "verify passes" ctl verify
