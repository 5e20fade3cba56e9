#!/usr/bin/env bash
# The live engine benchmark (issue #3) and its DuckDB peer:
#   bench/run-live.sh [DATASET_DIR] [-- extra duckdb_live.py options]
# DATASET_DIR defaults to bench-data/m1 (made with `strata demo --customers
# 1000000` if missing). Environment: DAYS (days replayed, default 7),
# HOURS (one-hour DuckDB batches, default 3), DUCK_DAYS (day batches DuckDB
# re-runs all 100 queries after; the rest are inserted without a re-run;
# default all), CARGO_TARGET_DIR (default target).
#
# Prints the live engine's figures (ingest rate and latencies, clock
# advance, memory), then DuckDB's re-run times, the ratios, and any segment
# whose count differs between the two (exit status 1 if one does).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-bench-data/m1}
shift || true
[ "${1:-}" = "--" ] && shift
days=${DAYS:-7}
hours=${HOURS:-3}
target=${CARGO_TARGET_DIR:-target}
export CARGO_TARGET_DIR=$target

cargo build --release -p strata-cli -p strata-live --example live_bench
if [ ! -d "$data" ]; then
  /usr/bin/time -f "demo: %e s wall, %M KB peak RSS" \
    "$target/release/strata" demo "$data" --customers 1000000
fi
python3 -m pip install --quiet 'duckdb==1.5.6'
python3 bench/duckdb_live.py --write-rules >/dev/null
git diff --quiet -- bench/rules-live.txt 2>/dev/null ||
  echo "note: bench/rules-live.txt differs from the committed one" >&2

echo "== machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
json=$(mktemp --suffix=.json)
trap 'rm -f "$json"' EXIT
/usr/bin/time -f "live_bench: %e s wall, %M KB peak RSS" \
  "$target/release/examples/live_bench" "$data" bench/rules-live.txt \
  --days "$days" --hours "$hours" --json "$json"
duck=(--days "$days" --hours "$hours" --rust "$json")
[ -n "${DUCK_DAYS:-}" ] && duck+=(--max-day-batches "$DUCK_DAYS")
python3 bench/duckdb_live.py "$data" "${duck[@]}" "$@"
