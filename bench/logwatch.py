#!/usr/bin/env python3
"""bench/logwatch.py - follow archived's log during a volume benchmark,
cheaply: reads only the bytes added since its last look (every 0.2 s),
never re-reads the log, never runs `archivectl queue`.

  logwatch.py --log FILE (--pid PID | --pid-file F) --csv OUT.csv --state OUT.json
              [--from-byte N] [--target-file F] [--limit SEC] [--ctl CMD]

Counts, from the log (from byte N on):
  acks       SMTP 250s (`event=message result=250`); `tempfail` the 4xx
  committed  pipeline commits (`status=stored|duplicate|replayed`)
  indexed    objects the indexer indexed (sum of `job=index indexed=N`
             and `job=reconcile missing=N`)
  waiting    the pipeline's backlog line (`pipeline status=backlog
             waiting=N ... oldest_age_s=A`, every 10 s while entries
             wait; `pipeline status=drained` sets it to 0): last and
             largest N, largest A
  gap        acks - committed: acknowledged and not in the catalog yet
             (the backlog as this log shows it, whatever the pipeline logs)
Every second a CSV row: time, those counts, archived's VmRSS and VmHWM
(from /proc/PID/status; VmHWM is per process: after a restart it starts
again).

Once F holds a number (the target: how many messages must reach the
catalog), it records when `committed` reached it (catalog_done_epoch) and
when the index did (index_done_epoch): once the catalog is done, from
`CMD --json stats` once a second (every tenant: no unindexed object, no
pending change; objects >= target), 5 times a second once the log's
count says the index is complete (index_log_epoch).
Then it writes OUT.json and exits; also after --limit seconds past the
target's appearance (what was reached is in OUT.json), and on SIGTERM.
"""
import argparse, array, json, os, re, signal, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--log", required=True)
ap.add_argument("--pid", type=int, help="archived's pid (for its RSS)")
ap.add_argument("--pid-file", help="or a file holding it, read at every sample "
                "(may appear later; a restarted archived is followed)")
ap.add_argument("--csv", required=True)
ap.add_argument("--state", required=True)
ap.add_argument("--from-byte", type=int, default=0)
ap.add_argument("--target-file")
ap.add_argument("--limit", type=float, default=0)
ap.add_argument("--ctl", help="archivectl command line, e.g. 'archivectl -d DIR'")
a = ap.parse_args()

RE_WAIT = re.compile(r"waiting=(\d+)")
RE_AGE = re.compile(r"oldest_age_s=(\d+)")
RE_IDX = re.compile(r"job=index indexed=(\d+)")
RE_REC = re.compile(r"job=reconcile missing=(\d+)")

st = dict(acks=0, tempfail=0, committed=0, indexed=0, waiting=None,
          max_waiting=None, max_oldest_age_s=None, max_gap=0,
          vmrss_kb=None, vmhwm_kb=None, target=None, first_commit_epoch=None,
          last_commit_epoch=None, catalog_done_epoch=None,
          index_done_epoch=None, index_log_epoch=None, stats_ok=None,
          start_epoch=time.time(), end_epoch=None, finished=False)
stop = False
commit_times = array.array("d")   # when each commit line was read


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)


def line(l, now):
    if "event=message result=" in l:
        if "result=250 " in l:
            st["acks"] += 1
        elif "result=4" in l:
            st["tempfail"] += 1
    elif "status=stored " in l or "status=duplicate " in l or "status=replayed " in l:
        st["committed"] += 1
        commit_times.append(now)
        if st["first_commit_epoch"] is None:
            st["first_commit_epoch"] = now
        st["last_commit_epoch"] = now
    elif "job=index indexed=" in l:
        m = RE_IDX.search(l)
        st["indexed"] += int(m.group(1)) if m else 0
    elif "job=reconcile missing=" in l:
        m = RE_REC.search(l)
        st["indexed"] += int(m.group(1)) if m else 0
    elif "pipeline status=drained" in l:
        st["waiting"] = 0
    elif "status=backlog" in l:
        m = RE_WAIT.search(l)
        if m:
            w = int(m.group(1))
            st["waiting"] = w
            st["max_waiting"] = max(w, st["max_waiting"] or 0)
        m = RE_AGE.search(l)
        if m:
            st["max_oldest_age_s"] = max(int(m.group(1)), st["max_oldest_age_s"] or 0)


def proc_mem():
    pid = a.pid
    if a.pid_file:
        try:
            pid = int(open(a.pid_file).read().split()[0])
        except (OSError, ValueError, IndexError):
            return
    if not pid:
        return
    try:
        with open(f"/proc/{pid}/status") as fh:
            for l in fh:
                if l.startswith("VmRSS:"):
                    st["vmrss_kb"] = int(l.split()[1])
                elif l.startswith("VmHWM:"):
                    st["vmhwm_kb"] = int(l.split()[1])
    except OSError:
        pass


def stats_done():
    if not a.ctl:
        return False
    try:
        out = subprocess.run(a.ctl.split() + ["--json", "stats"], capture_output=True,
                             timeout=60).stdout
        t = json.loads(out)["tenants"]
    except Exception:
        return False
    ok = (sum(x["objects"] for x in t) >= st["target"] and
          all(x["index"]["unindexed_objects"] == 0 and
              x["index"]["pending_changes"] == 0 for x in t))
    st["stats_ok"] = ok
    return ok


def save():
    tmp = a.state + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(st, fh)
    os.replace(tmp, a.state)


csv = open(a.csv, "w")
csv.write("t_s,epoch,acks,committed,indexed,gap,waiting,tempfail,vmrss_kb,vmhwm_kb\n")
f = open(a.log, "rb")
f.seek(a.from_byte)
rest = b""
next_sample = 0.0
target_seen = None
last_stats = 0.0
while not stop:
    data = f.read()
    now = time.time()
    if data:
        data = rest + data
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        for l in data[:cut].decode("utf-8", "replace").splitlines():
            line(l, now)
        st["max_gap"] = max(st["max_gap"], st["acks"] - st["committed"])
    if now >= next_sample:
        proc_mem()
        csv.write(f"{now - st['start_epoch']:.1f},{now:.1f},{st['acks']},{st['committed']},"
                  f"{st['indexed']},{st['acks'] - st['committed']},"
                  f"{'' if st['waiting'] is None else st['waiting']},{st['tempfail']},"
                  f"{st['vmrss_kb'] or ''},{st['vmhwm_kb'] or ''}\n")
        csv.flush()
        save()
        next_sample = now + 1.0
    if st["target"] is None and a.target_file and os.path.exists(a.target_file):
        try:
            st["target"] = int(open(a.target_file).read().split()[0])
            target_seen = now
        except (ValueError, IndexError):
            pass
    if st["target"] is not None:
        if st["catalog_done_epoch"] is None and st["committed"] >= st["target"]:
            # when the target-th commit was read (maybe before the target was known)
            st["catalog_done_epoch"] = commit_times[st["target"] - 1] if st["target"] else now
        if st["index_done_epoch"] is None and st["catalog_done_epoch"] is not None:
            if st["index_log_epoch"] is None and st["indexed"] >= st["target"]:
                st["index_log_epoch"] = now
            # the indexer logs once per pass (a pass can take minutes):
            # its progress and its end are taken from stats
            if now - last_stats >= 1.0 or (st["index_log_epoch"] and now - last_stats >= 0.2):
                last_stats = now
                if stats_done():
                    st["index_done_epoch"] = time.time()
        if st["catalog_done_epoch"] and st["index_done_epoch"]:
            st["finished"] = True
            break
        if a.limit and now - target_seen > a.limit:
            break
    time.sleep(0.2)
proc_mem()
st["end_epoch"] = time.time()
save()
