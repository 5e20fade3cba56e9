#!/usr/bin/env python3
"""Posts orders to a running `strata serve` as NDJSON batches.

Either at a fixed rate of order lines per second (the background load of
the serve benchmark), or as fast as it can with N concurrent posters (the
batch-ingest throughput). Orders name existing customers and products of
the dataset directory given, are dated now, and have two lines each.

    serve_ingest.py URL TOKEN STORE DATASET_DIR --rate 10000 --seconds 60
    serve_ingest.py URL TOKEN STORE DATASET_DIR --rate 0 --posters 2 --seconds 30
"""
import argparse, csv, datetime, http.client, json, random, statistics, sys, threading, time, urllib.parse


def ids(path, column):
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        return [row[column] for row in r]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url"); ap.add_argument("token"); ap.add_argument("store"); ap.add_argument("dataset")
    ap.add_argument("--rate", type=int, default=10000, help="order lines per second (0: as fast as possible)")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--batch", type=int, default=1000, help="order lines per request")
    ap.add_argument("--posters", type=int, default=1)
    ap.add_argument("--tag", default=str(int(time.time())))
    a = ap.parse_args()
    customers = ids(f"{a.dataset}/customers.csv", "customer_id")
    skus = ids(f"{a.dataset}/products.csv", "sku")
    u = urllib.parse.urlparse(a.url)
    path = f"/api/v1/stores/{a.store}/batch"
    lock = threading.Lock()
    stats = {"lines": 0, "requests": 0, "latencies": [], "refused": 0}
    stop_at = time.monotonic() + a.seconds
    counter = [0]

    def body(n_lines):
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        out = []
        for _ in range(n_lines // 2):
            with lock:
                counter[0] += 1
                k = counter[0]
            out.append(json.dumps({"type": "order", "order_id": f"B{a.tag}-{k}", "ordered_at": now,
                                   "customer_id": random.choice(customers),
                                   "lines": [{"sku": random.choice(skus), "quantity": random.randint(1, 3),
                                              "unit_price": "19.90"} for _ in range(2)]}))
        return ("\n".join(out) + "\n").encode()

    def poster(interval):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            payload = body(a.batch)
            t0 = time.monotonic()
            conn.request("POST", path, payload, {"Authorization": f"Bearer {a.token}",
                                                  "Content-Type": "application/x-ndjson"})
            r = conn.getresponse(); data = r.read()
            dt = time.monotonic() - t0
            if r.status != 200:
                print(f"HTTP {r.status}: {data[:300]!r}", file=sys.stderr); sys.exit(1)
            res = json.loads(data)
            with lock:
                stats["lines"] += a.batch; stats["requests"] += 1
                stats["latencies"].append(dt); stats["refused"] += len(res["refused"])
            if interval:
                next_at += interval
                time.sleep(max(0, next_at - time.monotonic()))

    interval = (a.batch / a.rate) * a.posters if a.rate else 0
    started = time.monotonic()
    threads = [threading.Thread(target=poster, args=(interval,)) for _ in range(a.posters)]
    for t in threads: t.start()
    for t in threads: t.join()
    took = time.monotonic() - started
    lat = sorted(stats["latencies"])
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(json.dumps({"lines": stats["lines"], "seconds": round(took, 2),
                      "lines_per_s": round(stats["lines"] / took), "requests": stats["requests"],
                      "refused": stats["refused"], "batch_p50_ms": round(p(0.5), 1),
                      "batch_p99_ms": round(p(0.99), 1)}))


if __name__ == "__main__":
    main()
