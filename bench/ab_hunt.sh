#!/bin/bash
# Alternate builds of orbwatch on the default hunt (behaviour on) and
# print wall/user/sys seconds, peak RSS, the sweep and replay times from
# the log, and a hash of the findings (which must be the same for all).
#
#   bench/ab_hunt.sh DIR ROUNDS BIN...
#
# DIR holds bench_behaviour.py's sshd-1.log and feed-100000.txt (its
# --out directory). Needs GNU time (apt-get install time).
set -euo pipefail
dir=$1 rounds=$2
shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for _ in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    /usr/bin/time -f "%e %U %S %M" -o "$out/time" "$bin" -v hunt --year 2021 \
      --feed "$dir/feed-100000.txt" --format jsonl -o "$out/findings.jsonl" \
      "$dir/sshd-1.log" 2>"$out/log" >/dev/null || true
    read -r wall user sys rss <"$out/time"
    sweep=$(grep -o "swept [0-9]* bytes in [0-9.]* s" "$out/log" | grep -o "[0-9.]* s$" || echo "?")
    replay=$(grep -o "replayed in [0-9.]* s" "$out/log" | grep -o "[0-9.]* s$" || echo "?")
    sha=$(sha1sum <"$out/findings.jsonl" | cut -c1-12)
    echo "$bin wall ${wall} s, user ${user} s, sys ${sys} s, peak RSS $((rss / 1024)) MB, sweep ${sweep}, replay ${replay}, findings ${sha}"
  done
done
