#!/usr/bin/env bash
# Reruns the measurements of BENCHMARKS.md:
#   bench/run.sh [DATASET_DIR]      (default bench-data/m1, made if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-bench-data/m1}

cargo build --release -p strata-cli
if [ ! -d "$data" ]; then
  /usr/bin/time -f "demo: %e s wall, %M KB peak RSS" \
    target/release/strata demo "$data" --customers 1000000
fi
python3 -m pip install --quiet 'duckdb==1.5.6'
python3 bench/duckdb_compare.py "$data" target/release/strata --runs 7
