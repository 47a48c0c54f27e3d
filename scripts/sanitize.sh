#!/usr/bin/env bash
# scripts/sanitize.sh [address|thread|all] [swift test args…]
# Runs the test suite under AddressSanitizer and/or ThreadSanitizer (the analyze Pipeline reads
# on a second thread), each in its own scratch directory (.build-asan, .build-tsan; gitignored)
# so the normal .build is untouched. Not a CI step: a sanitized build and suite take several
# times the plain suite's ~7 minutes on the 2-core CI machine. Exit status: the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"
[ $# -gt 0 ] && shift
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}"
run() {
  echo "== swift test --sanitize=$1 $*" >&2
  swift test --sanitize="$1" --scratch-path ".build-$2" "${@:3}"
}
case "$which" in
  address) run address asan "$@" ;;
  thread) run thread tsan "$@" ;;
  all) run address asan "$@"; run thread tsan "$@" ;;
  *) echo "usage: scripts/sanitize.sh [address|thread|all] [swift test args…]" >&2; exit 64 ;;
esac
