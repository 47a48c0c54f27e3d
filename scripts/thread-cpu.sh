#!/bin/sh
# CPU time per thread of one command, in ms: which stage of the analyze pipeline is the
# bottleneck, in a figure that other load on the machine changes less than wall time (each
# thread's on-CPU time, sampled by `perf record -e task-clock` every 1 ms). Needs perf(1).
#
#   scripts/thread-cpu.sh [REPEAT] COMMAND...
#   scripts/thread-cpu.sh 5 .build/release/ptfrag-bench --child replay /tmp/rb/real-16.trace
#
# Prints one line per run: each thread's ms, the process's first thread first (`analyze`'s
# replay thread; the pipeline's reading thread follows). No wall time: perf's own start-up
# and writing are in it.
set -eu
repeat=1
case ${1:-} in [0-9]*) repeat=$1; shift ;; esac
[ $# -gt 0 ] || { echo "usage: $0 [REPEAT] COMMAND..." >&2; exit 64; }
data=$(mktemp)
trap 'rm -f "$data"' EXIT
i=0
while [ "$i" -lt "$repeat" ]; do
  # The command's exit status is not checked (ptfrag analyze exits 2 on an inconclusive verdict).
  perf record -q -o "$data" -e task-clock -c 1000000 -- "$@" >/dev/null 2>&1 || true
  perf script -i "$data" -F pid,tid 2>/dev/null | tr '/' ' ' | awk '
    { n[$2]++; if ($1 == $2) main = $2 }
    END {
      printf "main %d ms", n[main]
      for (t in n) if (t != main) printf "  thread %d ms", n[t]
      printf "\n"
    }'
  i=$((i + 1))
done
