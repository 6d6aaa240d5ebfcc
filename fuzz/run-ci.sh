#!/usr/bin/env bash
# Short fuzzing run for CI: every cargo-fuzz target for FUZZ_SECONDS seconds
# (default 15), seeded with the real files of ../shared/corpus and
# tests/data that suit it. A crash, a timeout or an out-of-memory fails the
# run and leaves the input in fuzz/artifacts/TARGET/.
#
# cargo-fuzz needs a nightly toolchain. CI cannot download one (only the
# package registries are reachable), so it is used when the machine has it
# (`rustup toolchain list` shows nightly); without it this script says
# "skipped" and exits 0, and the targets are not run. cargo-fuzz itself is
# installed from crates.io when missing.
#
# Usage: fuzz/run-ci.sh [TARGET...]   (default: every target)
# Environment: FUZZ_SECONDS (per target), FUZZ_JOBS is not used: one
# process per target, one after the other, to stay within CI's 2 cores.
#
# A longer scheduled run (see README, "Fuzzing") is the same script with
# FUZZ_SECONDS=600.
set -euo pipefail
cd "$(dirname "$0")"
fuzz_dir=$(pwd)
repo=$(cd .. && pwd)
seconds=${FUZZ_SECONDS:-15}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz: skipped: no nightly toolchain on this machine (cargo-fuzz needs one; it cannot be downloaded here)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz 0.13.2 from crates.io"
    cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi

corpus=""
for c in "$repo/../shared/corpus" "$repo/../../shared/corpus"; do
    if [ -d "$c" ]; then corpus=$(cd "$c" && pwd); break; fi
done
[ -n "$corpus" ] || echo "fuzz: ../shared/corpus not found; seeding from tests/data only"

# Folders whose files seed a target (corpus subfolders and repository paths).
seeds_for() {
    case "$1" in
        feed_*) echo "corpus:feeds corpus:zeek-intel repo:tests/data/feeds-stix-misp repo:tests/data/feeds-text repo:examples/feeds" ;;
        decode_zeek_tsv) echo "corpus:zeek-tsv repo:tests/data/logs-a" ;;
        decode_zeek_json) echo "corpus:zeek-json repo:tests/data/logs-a" ;;
        decode_eve) echo "corpus:suricata-eve repo:tests/data/logs-a" ;;
        decode_web_access | decode_web_error) echo "corpus:web-access" ;;
        decode_evtx_xml) echo "corpus:evtx repo:tests/data/captures" ;;
        syslog_framing) echo "corpus:auth-ssh repo:tests/data/logs-syslog" ;;
        decode_*) echo "corpus:auth-ssh corpus:firewall-kernel corpus:firewall-vendor repo:tests/data/logs-syslog" ;;
        capture_pcap) echo "corpus:pcap repo:tests/data/captures" ;;
        capture_netflow) echo "corpus:netflow repo:tests/data/netflow" ;;
        capture_evtx) echo "corpus:evtx repo:tests/data/captures" ;;
        source_decompress) echo "repo:tests/data/compressed" ;;
        subscribe_*) echo "repo:tests/data/feeds-stix-misp repo:tests/data/feeds-misp-circl" ;;
        serve_requests) echo "repo:tests/data/serve-requests" ;;
        router_outputs) echo "repo:tests/data/router-outputs" ;;
        *) echo "" ;;
    esac
}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== fuzz: building ${#targets[@]} targets (nightly, address sanitizer)"
# The build's own output is kept whole: when it fails, the compiler's
# message is what says why (cargo-fuzz ends with its own backtrace, which
# does not). A failed build is tried once more, after saying what the
# machine had left: a CI run once failed here with only that backtrace
# to show, on a build that passes from a clean clone.
build_log="$work/build.log"
built=false
for attempt in 1 2; do
    if cargo +nightly fuzz build --release >"$build_log" 2>&1; then
        built=true
        tail -n 1 "$build_log"
        break
    fi
    echo "fuzz: build attempt $attempt failed; the end of its output:"
    grep -E '^(error|warning: .*(killed|signal)|.*No space left|.*SIGKILL|.*out of memory)' "$build_log" | head -n 20 || true
    tail -n 60 "$build_log"
    echo "fuzz: disk and memory at the failure:"
    df -h . /tmp 2>/dev/null || true
    free -m 2>/dev/null || true
done
if [ "$built" != true ]; then
    echo "fuzz: the fuzz targets did not build (see above); no target was run"
    exit 1
fi
passed=0
failed=0
failures=()
for t in "${targets[@]}"; do
    seed="$work/$t"
    mkdir -p "$seed"
    n=0
    for s in $(seeds_for "$t"); do
        case "$s" in
            corpus:*) dir="${corpus:+$corpus/${s#corpus:}}" ;;
            repo:*) dir="$repo/${s#repo:}" ;;
        esac
        [ -n "$dir" ] && [ -d "$dir" ] || continue
        # Files up to 1 MiB; larger ones slow every execution down.
        while IFS= read -r -d '' f; do
            cp "$f" "$seed/$(printf '%04d' "$n")-$(basename "$f")"
            n=$((n + 1))
        done < <(find "$dir" -maxdepth 2 -type f -size -1025k -print0)
    done
    echo "== fuzz $t: $seconds s from $n seed files"
    if cargo +nightly fuzz run --release "$t" "$seed" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 \
        -print_final_stats=1 >"$work/$t.log" 2>&1; then
        grep -E '^stat::number_of_executed_units' "$work/$t.log" | sed "s/^/   /" || true
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$t")
        tail -n 40 "$work/$t.log"
        echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/"
    fi
done
echo "fuzz: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ] || { echo "fuzz: failed targets: ${failures[*]}"; exit 1; }
