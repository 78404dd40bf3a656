#!/usr/bin/env python3
"""bench/notmuch_warm.py DIR: notmuch warm, in one process, for a fair
beside bench/search_latency: libnotmuch (through ctypes: the notmuch
package brings libnotmuch5, its Python bindings are a package the project
does not install) opens DIR's notmuch database once,
then each of DIR/nm_queries.txt (written by bench/search_queries.py) runs
6 times, the first as a warm-up: exact count + the first 50 message ids,
newest first (what `notmuch count` + `notmuch search --output=messages
--limit=50` do).  Prints the median per query and p50/p95/p99."""
import ctypes, statistics, sys, time

d = sys.argv[1]
nm = ctypes.CDLL("libnotmuch.so.5")
P = ctypes.c_void_p
nm.notmuch_database_open_with_config.argtypes = [
    ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
    ctypes.POINTER(P), ctypes.POINTER(ctypes.c_char_p)]
nm.notmuch_query_create.restype = P
nm.notmuch_query_create.argtypes = [P, ctypes.c_char_p]
nm.notmuch_query_count_messages.argtypes = [P, ctypes.POINTER(ctypes.c_uint)]
nm.notmuch_query_set_sort.argtypes = [P, ctypes.c_int]
nm.notmuch_query_search_messages.argtypes = [P, ctypes.POINTER(P)]
nm.notmuch_messages_valid.argtypes = [P]
nm.notmuch_messages_get.restype = P
nm.notmuch_messages_get.argtypes = [P]
nm.notmuch_message_get_message_id.restype = ctypes.c_char_p
nm.notmuch_message_get_message_id.argtypes = [P]
nm.notmuch_message_destroy.argtypes = [P]
nm.notmuch_messages_move_to_next.argtypes = [P]
nm.notmuch_query_destroy.argtypes = [P]

db, err = P(), ctypes.c_char_p()
rc = nm.notmuch_database_open_with_config(
    None, 0, (d + "/notmuch-config").encode(), None, ctypes.byref(db),
    ctypes.byref(err))
if rc:
    sys.exit("notmuch: cannot open %s: %s" % (d, err.value))
NEWEST_FIRST = 1


def run(q):
    s = time.monotonic()
    qq = nm.notmuch_query_create(db, q.encode())
    n = ctypes.c_uint()
    if nm.notmuch_query_count_messages(qq, ctypes.byref(n)):
        sys.exit("notmuch count failed: " + q)
    nm.notmuch_query_set_sort(qq, NEWEST_FIRST)
    msgs = P()
    if nm.notmuch_query_search_messages(qq, ctypes.byref(msgs)):
        sys.exit("notmuch search failed: " + q)
    k = 0
    while k < 50 and nm.notmuch_messages_valid(msgs):
        m = nm.notmuch_messages_get(msgs)
        nm.notmuch_message_get_message_id(m)
        nm.notmuch_message_destroy(m)
        nm.notmuch_messages_move_to_next(msgs)
        k += 1
    nm.notmuch_query_destroy(qq)
    return (time.monotonic() - s) * 1000, n.value


allv = []
for q in (l.rstrip("\n") for l in open(d + "/nm_queries.txt")):
    if not q:
        continue
    v = [run(q) for _ in range(6)][1:]
    allv += [ms for ms, _ in v]
    print(f"| `{q}` | {v[0][1]:,} | {statistics.median(ms for ms, _ in v):.1f} |")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


print(f"| **p50 / p95 / p99** | | {pct(allv, 50):.1f} / {pct(allv, 95):.1f}"
      f" / {pct(allv, 99):.1f} |")
