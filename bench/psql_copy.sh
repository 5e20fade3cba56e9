#!/usr/bin/env bash
# The floor a user could reach by hand: `psql \copy` of a dataset's CSV files
# into plain tables (every column TEXT, no keys, no indexes, no checks).
# Usage: bench/psql_copy.sh DIR [DATABASE_URL]
set -euo pipefail
dir=$1
url=${2:-postgres://root@127.0.0.1:5432/test}
schema=copy_floor
psql -q "$url" -c "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema"
start=$(date +%s.%N)
for file in products customers orders product_daily; do
    csv="$dir/$file.csv"
    [ -f "$csv" ] || continue
    header=$(head -1 "$csv" | sed 's/^\xEF\xBB\xBF//')
    cols=$(echo "$header" | tr ',' '\n' | sed 's/.*/"&" text/' | paste -sd, -)
    psql -q "$url" -c "CREATE TABLE $schema.$file ($cols)"
    t0=$(date +%s.%N)
    psql -q "$url" -c "\\copy $schema.$file FROM '$csv' WITH (FORMAT csv, HEADER true)"
    t1=$(date +%s.%N)
    rows=$(psql -tA "$url" -c "SELECT count(*) FROM $schema.$file")
    echo "$file: $rows rows in $(echo "$t1 - $t0" | bc) s"
done
end=$(date +%s.%N)
echo "total: $(echo "$end - $start" | bc) s"
psql -tA "$url" -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$schema' AND c.relkind = 'r'"
