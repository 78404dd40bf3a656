#!/usr/bin/env bash
# bench/s3.sh [BUILD_DIR] - the s3 backend on a one-node Ceph RGW
# (scripts/rgw.sh; memstore), in one run:
#   1. raw: the sample corpus PUT with curl --aws-sigv4 (the same headers
#      archived sends: x-amz-content-sha256, COMPLIANCE lock mode and
#      retain-until), N curl processes each on one kept-alive connection
#      (curl -K with a request per message), N = 1 and 8;
#   2. archived: `archivectl import --no-index` of the same messages with
#      s3_connections = N, N = 1 and 8, into a fresh bucket each (peak RSS
#      by /usr/bin/time);
#   3. rebuild --from-store of the 8-connection archive into a new data
#      directory (catalog alone, then the index), and the RTO per million
#      messages these rates give.
# Needs a release build (make build) and the ceph packages (scripts/deps.sh).
# S3_BENCH_MESSAGES=N bench/s3.sh: the first N messages only (a smoke run).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
S=$(cd "$(dirname "$0")/.." && pwd)
. "$S/bench/lib.sh"
bench_init s3
CORPUS=$B/corpus/sample
if [ ! -d "$CORPUS" ]; then
  mkdir -p "$B/corpus"
  tar --zstd -xf "$S/../shared/corpus/sample.tar.zst" -C "$B/corpus"
fi
# S3_BENCH_MESSAGES=N: the first N messages only (a smoke run)
ls "$CORPUS"/*.eml | awk -v n="${S3_BENCH_MESSAGES:-0}" 'n == 0 || NR <= n' >"$W/list"
N=$(wc -l <"$W/list")
BYTES=$(cat $(cat "$W/list") | wc -c)

"$S/scripts/rgw.sh" up "$W/rgw" >/dev/null
pids_rgw=$W/rgw
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; "$S/scripts/rgw.sh" down "$W/rgw" >/dev/null 2>&1; wait 2>/dev/null; chmod -R u+w "$W"; rm -rf "$W"' EXIT
. "$W/rgw/env"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
EMPTY=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
mkbucket() {
  curl -sf --aws-sigv4 aws:amz:us-east-1:s3 --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -X PUT -H "x-amz-content-sha256: $EMPTY" \
    -H 'x-amz-bucket-object-lock-enabled: true' "$S3_ENDPOINT/$1" >/dev/null
}
now() { date +%s.%N; }

# the raw requests, prepared outside what is timed
UNTIL=$(date -u -d '+2557 days' +%Y-%m-%dT%H:%M:%S.000Z)
xargs sha256sum <"$W/list" | awk '{print NR, $1, $2}' >"$W/sums"
raw_configs() {   # raw_configs BUCKET CONNS: W/raw.K.cfg, one per connection
  rm -f "$W"/raw.*.cfg
  python3 - "$W" "$1" "$2" "$S3_ENDPOINT" "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
      "$UNTIL" <<'PY'
import sys
w, bucket, conns, ep, user, until = sys.argv[1:]
conns = int(conns)
out = [[] for _ in range(conns)]
for line in open(f"{w}/sums"):
    i, sha, f = line.split(None, 2)
    i = int(i)
    out[(i - 1) % conns].append(
        f'url = "{ep}/{bucket}/raw/{i:08d}"\nupload-file = "{f.strip()}"\n'
        f'aws-sigv4 = "aws:amz:us-east-1:s3"\nuser = "{user}"\n'
        f'header = "x-amz-content-sha256: {sha}"\n'
        'header = "x-amz-object-lock-mode: COMPLIANCE"\n'
        f'header = "x-amz-object-lock-retain-until-date: {until}"\n'
        'header = "If-None-Match: *"\noutput = "/dev/null"\nsilent\nfail\n')
for k in range(conns):
    with open(f"{w}/raw.{k}.cfg", "w") as fh:
        fh.write("next\n".join(out[k]))
PY
}

declare -A RAW ARC RSS
for c in 1 8; do
  mkbucket "raw-$c"
  raw_configs "raw-$c" "$c"
  t0=$(now)
  cpids=()
  for k in $(seq 0 $((c - 1))); do curl -K "$W/raw.$k.cfg" & cpids+=($!); done
  wait "${cpids[@]}"
  t1=$(now)
  RAW[$c]=$(python3 -c "print(round($N / ($t1 - $t0), 1))")

  mkbucket "arc-$c"
  rm -rf "$W/a$c"
  $B/tools/archivectl -d "$W/a$c" init --keysvc-socket "$W/keys/keysvc.sock" \
    --backend s3 --s3-endpoint "$S3_ENDPOINT" --s3-bucket "arc-$c" \
    --s3-connections "$c" >/dev/null
  A="$B/tools/archivectl -d $W/a$c"
  $A tenant add acme --journal-address j@acme.example >/dev/null
  /usr/bin/time -v -o "$W/time.$c" $A --json import --tenant acme --no-index \
    $(cat "$W/list") >"$W/imp.$c.json"
  ARC[$c]=$(python3 -c "import json; j=json.load(open('$W/imp.$c.json'))
print(round(j['messages'] / j['seconds'], 1))")
  RSS[$c]=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$W/time.$c")
  echo "s3: $c connection(s): raw curl ${RAW[$c]} msg/s, archivectl import ${ARC[$c]} msg/s, peak RSS ${RSS[$c]} KB" >&2
done

# the rebuild: catalog alone, then the index
rm -rf "$W/r"
R="$B/tools/archivectl -d $W/r"
$R init --keysvc-socket "$W/keys/keysvc.sock" --backend s3 \
  --s3-endpoint "$S3_ENDPOINT" --s3-bucket arc-8 >/dev/null
t0=$(now)
$R --json rebuild --from-store --no-index >"$W/rebuild.json"
t1=$(now)
REB=$(python3 -c "print(round($N / ($t1 - $t0), 1))")
t0=$(now)
$R reindex --tenant acme >/dev/null
t1=$(now)
IDX=$(python3 -c "print(round($N / ($t1 - $t0), 1))")
$R verify >/dev/null

python3 - "$N" "$BYTES" "${RAW[1]}" "${ARC[1]}" "${RSS[1]}" "${RAW[8]}" \
    "${ARC[8]}" "${RSS[8]}" "$REB" "$IDX" <<'PY'
import sys
n, b, r1, a1, m1, r8, a8, m8, reb, idx = sys.argv[1:]
n = int(n)
print(f"| corpus | {n} messages, {int(b) / 1e6:.1f} MB |")
print("|---|---|")
for c, r, a, m in ((1, r1, a1, m1), (8, r8, a8, m8)):
    print(f"| {c} connection(s) | raw curl PUT {r} msg/s; archivectl import "
          f"{a} msg/s = {100 * float(a) / float(r):.0f}% of raw; peak RSS "
          f"{int(m) // 1024} MB |")
rto = 1e6 / float(reb) + 1e6 / float(idx)
print(f"| rebuild --from-store | catalog {reb} msg/s; index {idx} msg/s |")
print(f"| RTO per million messages | {rto / 3600:.1f} h "
      f"(catalog {1e6 / float(reb) / 60:.0f} min + index "
      f"{1e6 / float(idx) / 3600:.1f} h) |")
PY
