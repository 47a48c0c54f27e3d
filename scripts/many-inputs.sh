#!/bin/sh
# Many inputs: `ptfrag analyze` (and `compare`) of K copies of every s390 corpus capture,
# one at a time (--jobs 1) and on every CPU (the default), with the reports compared byte for
# byte. Run from the repository root after `swift build -c release`:
#
#   scripts/many-inputs.sh [COPIES] [REPEAT] [compare] [FORMAT]
#
# Prints, per run: wall seconds, CPU seconds (user + system) and peak RSS (the process, all
# threads), and whether the reports (FORMAT on standard output, default text) are identical. Nothing is kept: the copies live in a
# temporary directory, removed at the end.
set -eu
copies=${1:-4}
repeat=${2:-3}
what=${3:-analyze}
format=${4:-text}
bin=${PTFRAG:-.build/release/ptfrag}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
n=0
for k in $(seq 1 "$copies"); do
  for f in Fixtures/corpus/s390/*.trace.gz; do
    b=$(basename "$f" .trace.gz)
    cp "$f" "$dir/$b.$k.trace.gz"
    n=$((n + 1))
  done
done
bytes=$(cat "$dir"/*.trace.gz | wc -c)
cpus=$(getconf _NPROCESSORS_ONLN)
echo "$what --format $format: $n inputs ($copies copies of $(ls Fixtures/corpus/s390/*.trace.gz | wc -l) captures, $bytes bytes gzip), $cpus CPUs online, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for jobs in 1 "$cpus"; do
  for r in $(seq 1 "$repeat"); do
    /usr/bin/time -f "%e %U %S %M" -o "$dir/time" "$bin" "$what" --jobs "$jobs" --format "$format" --color never "$dir"/*.trace.gz > "$dir/out.$jobs" 2>/dev/null || true
    set -- $(tail -n 1 "$dir/time")
    cpu=$(echo "$2 + $3" | bc)
    echo "  --jobs $jobs  run $r: $1 s wall, $cpu s CPU, peak RSS $(($4 / 1024)) MB"
  done
done
if cmp -s "$dir/out.1" "$dir/out.$cpus"; then echo "  reports identical"; else echo "  REPORTS DIFFER"; exit 1; fi
