#!/usr/bin/env bash
# Peak memory and time of `orbwatch serve` storing a feed uploaded to
# POST /api/v1/feeds/NAME (curl -T streams the file), against
# `orbwatch feed add` of the same file (GNU time), each on a fresh store;
# then the two stores' totals and SHA-256, which must agree.
# Usage: bench/bench_upload.sh BIN FILE OUTDIR
#   e.g. bench/bench_upload.sh target/release/orbwatch feed-10M.txt /tmp/upload
# A 10M-line plain list:
#   python3 -c 'import sys; [sys.stdout.write(f"{45+(i>>24)}.{(i>>16)&255}.{(i>>8)&255}.{i&255}\n") for i in range(10_000_000)]' > feed-10M.txt
set -euo pipefail
bin=$1; file=$2; out=$3
mkdir -p "$out"; rm -f "$out"/add.db* "$out"/serve.db*
# feed add
/usr/bin/time -v "$bin" --db "$out/add.db" feed add --name big "$file" > "$out/add.out" 2> "$out/add.time"
grep -E "Maximum resident|Elapsed" "$out/add.time"
tok=$("$bin" --db "$out/serve.db" token create --name ops --scope admin)
printf '' > "$out/serve.toml"
"$bin" --db "$out/serve.db" serve --listen 127.0.0.1:0 --config "$out/serve.toml" 2> "$out/serve.err" &
pid=$!
for _ in $(seq 100); do grep -q "http://" "$out/serve.err" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$out/serve.err" | head -1)
grep VmHWM /proc/$pid/status
start=$(date +%s.%N)
curl -sS -X POST -T "$file" -H "Authorization: Bearer $tok" -H 'Content-Type: application/octet-stream' \
  "$url/api/v1/feeds/big?format=plain&file=$(basename "$file")" -o "$out/upload.json" -w 'HTTP %{http_code}\n'
end=$(date +%s.%N)
echo "upload took $(echo "$end - $start" | bc) s"
grep -E "VmHWM|VmRSS" /proc/$pid/status
kill -TERM $pid; wait $pid || true
head -c 600 "$out/upload.json"; echo
ls -a "$out" | grep orbwatch-upload || echo "no spool file left"
"$bin" --db "$out/add.db" feed list --json | grep -E '"total"|sha256'
"$bin" --db "$out/serve.db" feed list --json | grep -E '"total"|sha256'
