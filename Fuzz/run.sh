#!/usr/bin/env bash
# Fuzz/run.sh TARGET SECONDS [extra libFuzzer flags…]
# Builds the fuzz package with libFuzzer + AddressSanitizer (once; incremental after), then runs
# fuzz-TARGET (text | json | analyze) for SECONDS on Fuzz/corpus/TARGET (seeds; new inputs go to
# .build-fuzz/corpus/TARGET, not into git). Crashes land in .build-fuzz/crashes/TARGET/.
# Exit status: libFuzzer's (0 = no crash found).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
target="${1:?usage: run.sh text|json|analyze SECONDS}"
seconds="${2:?usage: run.sh text|json|analyze SECONDS}"
shift 2
case "$target" in text | json | analyze) ;; *) echo "unknown target $target" >&2; exit 64 ;; esac
scratch="$root/.build-fuzz"
(cd "$here" && swift build -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld --scratch-path "$scratch" --product "fuzz-$target" >&2)
bin="$(cd "$here" && swift build -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld --scratch-path "$scratch" --show-bin-path)/fuzz-$target"
work="$scratch/corpus/$target"
crashes="$scratch/crashes/$target"
mkdir -p "$work" "$crashes"
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
# -timeout: one input taking longer than 10 s counts as a hang (a crash for our purposes).
# -rss_limit_mb: ASan's shadow memory included; a leak or unbounded buffer shows up here.
exec "$bin" "$work" "$here/corpus/$target" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
  -artifact_prefix="$crashes/" -print_final_stats=1 "$@"
