"""Strata against DuckDB on the same dataset: load + aggregate time, and
each rule of rules-customers.txt as SQL over the raw CSV-loaded tables.

    python3 bench/duckdb_compare.py DATASET_DIR STRATA_BINARY [--runs 5]

Prints a Markdown report (also checks that both give the same counts).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import duckdb

NOW = "2026-11-01T00:00:00Z"
NOW_SQL = "TIMESTAMPTZ '2026-11-01 00:00:00+00'"

LIVE = f"""live AS (
  SELECT o.*, o.quantity * o.unit_price - coalesce(o.discount, 0) AS revenue
  FROM orders o
  WHERE lower(coalesce(o.status, 'shipped')) NOT IN ('cancelled', 'refunded')
    AND o.ordered_at <= {NOW_SQL})"""


def ago(days):
    return f"({NOW_SQL} - INTERVAL {days} DAY)"


def agg(having, where="TRUE"):
    """Customers whose counting lines (filtered by `where`) pass `having`."""
    return f"""WITH {LIVE}
SELECT count(*) FROM (
  SELECT customer_id FROM live
  WHERE customer_id IS NOT NULL AND {where}
  GROUP BY customer_id HAVING {having})"""


def tags_contain(tag, col="c.tags"):
    return f"coalesce(list_contains(list_transform(string_split({col}, ';'), x -> lower(trim(x))), '{tag}'), false)"


def tier_sql(dataset):
    """The `tier` of tiers.md as a CASE over per-customer metrics m.*."""
    path = os.path.join(dataset, "tiers.json")
    schemes = json.load(open(path)) if os.path.exists(path) else []
    metric = {"orders": "m.orders", "units": "m.units", "revenue": "m.spent", "profit": "m.profit"}

    def scheme_case(s):
        tiers = sorted(s["tiers"], key=lambda t: -float(t["threshold"]))
        whens = " ".join(
            f"WHEN {metric[s['metric']]} > {t['threshold']} THEN '{t['name']}'" for t in tiers
        )
        return f"CASE {whens} ELSE NULL END"

    own = [s for s in schemes if s["marketplace"] is not None]
    fallback = [s for s in schemes if s["marketplace"] is None]
    cases = " ".join(f"WHEN c.marketplace = '{s['marketplace']}' THEN {scheme_case(s)}" for s in own)
    default = scheme_case(fallback[0]) if fallback else "NULL"
    return f"CASE {cases} ELSE {default} END"


def metrics_cte():
    return f"""{LIVE},
m AS (
  SELECT customer_id,
         count(DISTINCT order_id) AS orders,
         sum(quantity) AS units,
         sum(revenue) AS spent,
         sum(revenue - coalesce(fees, 0) - quantity * coalesce(p.cost, 0)) AS profit,
         min(ordered_at) AS first_at,
         max(ordered_at) AS last_at
  FROM live JOIN products p USING (sku)
  WHERE customer_id IS NOT NULL
  GROUP BY customer_id)"""


def with_metrics(where, dataset):
    return f"""WITH {metrics_cte()}
SELECT count(*) FROM customers c LEFT JOIN m USING (customer_id)
WHERE {where.replace('TIER', tier_sql(dataset))}"""


def sql_for(dataset):
    z = "coalesce(m.{}, 0)"
    return [
        agg("sum(revenue) > 500 AND count(DISTINCT order_id) >= 3"),
        agg("count(DISTINCT order_id) >= 5"),
        agg("sum(revenue) BETWEEN 100 AND 200"),
        agg("sum(revenue) / count(DISTINCT order_id) > 80"),
        agg(f"max(ordered_at) < {ago(180)} AND sum(revenue) > 200"),
        agg(f"min(ordered_at) >= {ago(90)}"),
        f"WITH {LIVE} SELECT count(DISTINCT customer_id) FROM live WHERE ordered_at >= {ago(30)}",
        agg(f"max(ordered_at) < {ago(90)}"),
        agg("count(DISTINCT order_id) >= 2", f"ordered_at >= {ago(30)}"),
        f"""WITH {LIVE} SELECT count(DISTINCT customer_id) FROM live JOIN products p USING (sku)
            WHERE lower(p.category) = 'socks' AND ordered_at >= TIMESTAMPTZ '2025-10-01 00:00:00+00'
              AND ordered_at < TIMESTAMPTZ '2026-03-01 00:00:00+00'""",
        f"""WITH {LIVE} SELECT count(*) FROM (SELECT customer_id FROM live JOIN products p USING (sku)
            WHERE customer_id IS NOT NULL AND lower(p.brand) = 'acme'
            GROUP BY customer_id HAVING sum(revenue) > 100)""",
        agg("sum(quantity) >= 2", "lower(sku) = 'sock-red-m'"),
        f"SELECT count(*) FROM customers c WHERE {tags_contain('vip')}",
        "SELECT count(*) FROM customers c WHERE lower(regexp_extract(c.email, '@([^@]*)$', 1)) = 'example.com'",
        "SELECT count(*) FROM customers c WHERE lower(c.country) IN ('us', 'ca') AND c.accepts_marketing = true",
        "SELECT count(*) FROM customers c WHERE starts_with(lower(c.first_name), 'a')",
        "SELECT count(*) FROM customers c WHERE contains(lower(c.city), 'ver')",
        with_metrics("lower(TIER) = 'gold'", dataset),
        f"""WITH {LIVE},
            s AS (SELECT customer_id, sum(revenue) AS spent FROM live GROUP BY customer_id),
            r AS (SELECT customer_id, count(DISTINCT order_id) AS n FROM live WHERE ordered_at >= {ago(60)} GROUP BY customer_id)
            SELECT count(*) FROM customers c LEFT JOIN s USING (customer_id) LEFT JOIN r USING (customer_id)
            WHERE (coalesce(s.spent, 0) > 1000 OR coalesce(r.n, 0) >= 3) AND NOT {tags_contain('wholesale')}""",
        with_metrics(
            f"""{z.format('profit')} > 50 AND c.customer_id IN (
                SELECT customer_id FROM live WHERE lower(marketplace) = 'uk' AND ordered_at >= {ago(365)})""",
            dataset,
        ),
        with_metrics(f"({tags_contain('vip')} OR lower(TIER) = 'platinum')", dataset),
        f"""WITH {LIVE} SELECT count(*) FROM customers c
            WHERE c.created_at < TIMESTAMPTZ '2025-01-01 00:00:00+00'
              AND NOT EXISTS (SELECT 1 FROM live WHERE live.customer_id = c.customer_id)""",
        with_metrics(f"{z.format('profit')} < 0", dataset),
        f"""WITH {LIVE} SELECT count(*) FROM customers c
            WHERE lower(c.x_source) = 'referral' AND c.customer_id NOT IN (
              SELECT customer_id FROM live WHERE customer_id IS NOT NULL AND ordered_at >= {ago(90)})""",
    ]


def load(con, dataset):
    money = "DECIMAL(18,4)"
    csv = lambda name, types: (
        f"CREATE TABLE {name} AS SELECT * FROM read_csv('{os.path.join(dataset, name + '.csv')}', "
        f"header = true, types = {types})"
    )
    con.execute(csv("products", {"price": money, "cost": money, "inventory": "BIGINT", "created_at": "TIMESTAMPTZ"}))
    con.execute(csv("customers", {"accepts_marketing": "BOOLEAN", "created_at": "TIMESTAMPTZ", "tags": "VARCHAR"}))
    con.execute(
        csv(
            "orders",
            {
                "ordered_at": "TIMESTAMPTZ",
                "customer_id": "VARCHAR",
                "quantity": "BIGINT",
                "unit_price": money,
                "discount": money,
                "fees": money,
            },
        )
    )
    con.execute(csv("product_daily", {"date": "DATE", "sessions": "BIGINT", "bsr": "BIGINT", "reviews": "BIGINT"}))
    # The same per-customer aggregates Strata builds at load.
    con.execute(f"CREATE TABLE customer_aggregates AS WITH {metrics_cte()} SELECT * FROM m")


def median_ms(fn, runs):
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("strata")
    ap.add_argument("--rules", default=os.path.join(os.path.dirname(__file__), "rules-customers.txt"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--load-runs", type=int, default=3, help="loads to take the median of, per side")
    args = ap.parse_args()

    rules = [l.strip() for l in open(args.rules) if l.strip() and not l.strip().startswith("#")]
    sqls = sql_for(args.dataset)
    assert len(rules) == len(sqls), f"{len(rules)} rules but {len(sqls)} SQL queries"

    # Strata: one process; --repeat gives the median per rule.
    cmd = [args.strata, "count", args.dataset, "--customers", "--now", NOW, "--file", args.rules,
           "--timings", "--repeat", str(args.runs), "--verbose"]

    def strata_run():
        proc = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, capture_output=True, text=True, check=True)
        load = agg = rss = None
        micros = []
        for line in proc.stderr.splitlines():
            if line.startswith("load: "):
                load = float(line.split()[1].rstrip("s"))
            elif line.startswith("indexes and aggregates: "):
                agg = float(line.split()[3].rstrip("s"))
            elif line.startswith("MAXRSS "):
                rss = int(line.split()[1])
            elif "\t" in line:
                micros.append(int(line.split("\t")[0]))
        return [int(x) for x in proc.stdout.split()], micros, load, agg, rss

    runs = [strata_run() for _ in range(args.load_runs)]
    # Rule timings and counts from the run with the median load.
    runs.sort(key=lambda r: r[2] + r[3])
    counts, micros, load_s, agg_s, rss_kb = runs[len(runs) // 2]

    duck_loads = []
    for _ in range(args.load_runs):
        con = duckdb.connect()
        start = time.perf_counter()
        load(con, args.dataset)
        duck_loads.append(time.perf_counter() - start)
    duck_load = statistics.median(duck_loads)
    duck_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    print(f"median of {args.load_runs} loads per side")
    print(f"Strata load {load_s:.2f} s + indexes and aggregates {agg_s:.2f} s = {load_s + agg_s:.2f} s; "
          f"peak RSS {rss_kb / 1024:.0f} MiB (all: {', '.join(f'{r[2] + r[3]:.2f}' for r in runs)} s)")
    print(f"DuckDB {duckdb.__version__} CSV load + per-customer aggregates {duck_load:.2f} s; "
          f"peak RSS {duck_rss_kb / 1024:.0f} MiB (all: {', '.join(f'{t:.2f}' for t in duck_loads)} s)")
    print(f"ratio (DuckDB / Strata): {duck_load / (load_s + agg_s):.2f}")
    print()
    print("| # | rule | members | Strata median | DuckDB median | ratio |")
    print("|---|---|---|---|---|---|")
    mismatches = 0
    for i, (rule, sql) in enumerate(zip(rules, sqls), 1):
        ms, res = median_ms(lambda: con.execute(sql).fetchone()[0], args.runs)
        ours = micros[i - 1] / 1000
        same = res == counts[i - 1]
        mismatches += not same
        mark = "" if same else f" (DuckDB: {res})"
        ratio = ms / max(ours, 0.001)
        print(f"| {i} | `{rule}` | {counts[i - 1]}{mark} | {ours:.2f} ms | {ms:.1f} ms | {ratio:.0f}× |")
    if mismatches:
        print(f"\n{mismatches} rule(s) disagree with DuckDB", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
