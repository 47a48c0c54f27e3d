#!/usr/bin/env bash
# Fuzz/run-all.sh SECONDS — runs every target for SECONDS each, two at a time (the build
# machine has two cores), logs in .build-fuzz/logs/TARGET.log; prints each target's
# executions and whether it crashed. Exit status 1 if any target found a crash.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
seconds="${1:?usage: run-all.sh SECONDS}"
logs="$root/.build-fuzz/logs"
mkdir -p "$logs"
(cd "$here" && swift build -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld --scratch-path "$root/.build-fuzz") || exit 2
status=0
run() { "$here/run.sh" "$1" "$seconds" > "$logs/$1.log" 2>&1; echo "$1: exit $? $(grep -E 'stat::number_of_executed_units' "$logs/$1.log" | tail -1)"; }
run text & run json & wait
run analyze
for t in text json analyze; do grep -q 'ERROR: libFuzzer\|ERROR: AddressSanitizer\|Fatal error' "$logs/$t.log" && { echo "$t: CRASH, see $logs/$t.log"; status=1; }; done
exit $status
