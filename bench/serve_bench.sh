#!/usr/bin/env bash
# The serve benchmark of BENCHMARKS.md (issue #5): on the 1M-customer demo,
# over loopback HTTP, while bench/serve_ingest.py posts 10k order lines/s:
# preview p50/p99 (wrk), a members page p50 (wrk), then batch ingest
# lines/s. Needs wrk (Debian: apt-get install wrk) and python3.
#
#   bench/serve_bench.sh [DATA_DIR_FOR_STORE]
set -euo pipefail
cd "$(dirname "$0")/.."
STRATA=${STRATA:-target/release/strata}
DATA=${DATA:-bench-data/m1}
STORE_DIR=${1:-bench-store}
PORT=${PORT:-7899}
URL=http://127.0.0.1:$PORT
DUR=${DUR:-30s}

[ -x "$STRATA" ] || cargo build --release -p strata-cli
[ -d "$DATA" ] || "$STRATA" demo "$DATA" --customers 1000000
if [ ! -f "$STORE_DIR/strata.db" ]; then
  /usr/bin/time -v "$STRATA" import "$DATA" --data-dir "$STORE_DIR" --store demo
  echo 'bench password 1' | "$STRATA" user create bench@example.com --admin --data-dir "$STORE_DIR"
fi
"$STRATA" serve --data-dir "$STORE_DIR" --listen 127.0.0.1:$PORT > ${LOG:-/tmp/serve-bench.log} 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
until grep -q "strata: ready" ${LOG:-/tmp/serve-bench.log}; do sleep 1; done
TOKEN=$(curl -s -c /tmp/strata-bench-cookie -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password 1"}' $URL/api/v1/auth/login >/dev/null &&
  curl -s -b /tmp/strata-bench-cookie -H 'content-type: application/json' -d '{"name":"bench"}' \
  $URL/api/v1/tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

cat > /tmp/strata-preview.lua <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = '{"kind":"customer","rule":"amount_spent > 500 AND number_of_orders >= 3","limit":20}'
LUA
cat > /tmp/strata-get.lua <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
# A saved segment to page through, and a first snapshot.
curl -s -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"name":"bench-high-spenders","kind":"customer","rule":"amount_spent > 500 AND number_of_orders >= 3"}' \
  $URL/api/v1/stores/demo/segments > /dev/null || true
curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" "$URL/api/v1/stores/demo/segments/bench-high-spenders/members?limit=50"

echo "== background ingest at 10k lines/s"
python3 bench/serve_ingest.py $URL "$TOKEN" demo "$DATA" --rate 10000 --seconds 100 --tag bg$$ > /tmp/ingest-bg.json &
INGEST=$!
sleep 5
echo "== preview (wrk, 2 connections, $DUR)"
wrk -t1 -c2 -d"$DUR" --latency -s /tmp/strata-preview.lua $URL/api/v1/stores/demo/segments/preview
echo "== members page (wrk, 2 connections, $DUR)"
wrk -t1 -c2 -d"$DUR" --latency -s /tmp/strata-get.lua \
  "$URL/api/v1/stores/demo/segments/bench-high-spenders/members?limit=50"
wait $INGEST
echo "== background ingest result"; cat /tmp/ingest-bg.json
echo "== batch ingest, as fast as possible (2 posters, 1000 lines per request, 30 s)"
python3 bench/serve_ingest.py $URL "$TOKEN" demo "$DATA" --rate 0 --posters 2 --seconds 30 --tag max$$
