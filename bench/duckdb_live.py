"""The peer of the live engine benchmark (crates/strata-live/examples/live_bench.rs):
re-running 100 segments' SQL in DuckDB after each batch of new order lines.

    python3 bench/duckdb_live.py --write-rules            # (re)writes bench/rules-live.txt
    python3 bench/duckdb_live.py DATASET_DIR [--days 7] [--hours 3] [--rust live.json]

The rules and their SQL come from one template table (`rules()` below), so
bench/rules-live.txt and the SQL stay in sync; rule i (0-based) is segment
`r{i}` on the Rust side.

What it does, with the same T0 as the Rust bench (max ordered_at minus N days):
loads the four CSVs into DuckDB with only the orders dated <= T0 (the rest wait
in a staging table) and the daily rows dated <= date(T0); counts every rule at
T0; then, for `--hours` one-hour batches followed by one-day batches up to the
end of the data, INSERTs the batch's lines and re-runs all 100 queries with
`now` = the batch's end; then re-runs them at end + 1 day and end + 2 days
(no new lines: the clock advance). Prints the median time per batch and, given
the Rust bench's --json output, the ratio to the time the live engine took to
ingest the same lines, and any count that differs from the live engine's.

Semantics follow /work/shared/spec/fields.md: counting lines exclude
cancelled/refunded (any case), windows are [now - N x 24 h, now], revenue is
quantity x unit_price - discount, quotients are compared multiplied out
(exact decimals, never floats).
"""

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
HERE = os.path.dirname(os.path.abspath(__file__))
RULES_FILE = os.path.join(HERE, "rules-live.txt")


# ---- SQL building blocks ---------------------------------------------------


def ts_sql(us):
    t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)
    return f"TIMESTAMPTZ '{t.strftime('%Y-%m-%d %H:%M:%S.%f')}+00'"


def date_of(us):
    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)).date()


def lit(s):
    return "'" + s.replace("'", "''") + "'"


class Ctx:
    """What one query needs besides its predicate: product metrics (lines,
    daily rows, revenue-share groups), registered while the predicate is
    built."""

    def __init__(self, now_us, table):
        self.now = now_us
        self.today = date_of(now_us)
        self.table = table  # all rules, for in_segment
        self.pl = {}  # name -> aggregate over live lines
        self.pl_days = 0
        self.pd = {}  # name -> aggregate over daily rows
        self.share = False

    def ago(self, days):
        return ts_sql(self.now - days * DAY_US)

    def day(self, back):
        return f"DATE '{self.today - dt.timedelta(days=back)}'"

    def line_metric(self, name):
        kind, days = name[0], int(name[1:])
        since = f"l.ordered_at >= {self.ago(days)}"
        expr = {
            "u": f"sum(l.quantity) FILTER (WHERE {since})",
            "s": f"sum(l.revenue) FILTER (WHERE {since})",
            "c": f"count(DISTINCT l.customer_id) FILTER (WHERE {since})",
        }[kind]
        self.pl[name] = expr
        self.pl_days = max(self.pl_days, days)
        return f"p.{name}"

    def daily_metric(self, name):
        expr = {
            "sess30": f"sum(d.sessions) FILTER (WHERE d.date >= {self.day(29)})",
            "bsr": "arg_max(d.bsr, d.date) FILTER (WHERE d.bsr IS NOT NULL)",
            "reviews": "arg_max(d.reviews, d.date) FILTER (WHERE d.reviews IS NOT NULL)",
            "reviews_old": f"arg_max(d.reviews, d.date) FILTER (WHERE d.reviews IS NOT NULL AND d.date <= {self.day(30)})",
            "rating": "arg_max(d.rating, d.date) FILTER (WHERE d.rating IS NOT NULL)",
        }[name]
        self.pd[name] = expr
        return f"p.{name}"

    def velocity(self):
        """daily_velocity x 29400 (= 7 x 14 x 30 x 10), an integer."""
        u7, u14, u30 = (self.line_metric(n) for n in ("u7", "u14", "u30"))
        return f"(2100 * {u7} + 630 * {u14} + 196 * {u30})"

    def revenue_total(self):
        self.share = True
        self.line_metric("s30")
        return "p.gtotal"

    def ctes(self):
        now = ts_sql(self.now)
        out = [
            f"""live AS (
  SELECT o.order_id, o.ordered_at, o.customer_id, o.marketplace, o.sku, o.quantity,
         o.quantity * o.unit_price - coalesce(o.discount, 0) AS revenue, coalesce(o.fees, 0) AS fees
  FROM orders o
  WHERE lower(coalesce(o.status, 'shipped')) NOT IN ('cancelled', 'refunded') AND o.ordered_at <= {now})"""
        ]
        cols = []
        joins = []
        if self.pl:
            aggs = ", ".join(f"{e} AS {n}" for n, e in sorted(self.pl.items()))
            out.append(
                f"pl AS (SELECT l.sku, {aggs} FROM live l WHERE l.ordered_at >= {self.ago(self.pl_days)} GROUP BY l.sku)"
            )
            cols += [f"coalesce(pl.{n}, 0) AS {n}" for n in sorted(self.pl)]
            joins.append("LEFT JOIN pl USING (sku)")
        if self.share:
            out.append(
                "pg AS (SELECT p.seller_account AS g_sa, p.marketplace AS g_m, sum(pl.s30) AS gtotal "
                "FROM products p JOIN pl USING (sku) GROUP BY ALL)"
            )
            cols.append("coalesce(pg.gtotal, 0) AS gtotal")
            joins.append(
                "LEFT JOIN pg ON p.seller_account IS NOT DISTINCT FROM pg.g_sa AND p.marketplace IS NOT DISTINCT FROM pg.g_m"
            )
        if self.pd:
            aggs = ", ".join(f"{e} AS {n}" for n, e in sorted(self.pd.items()))
            out.append(
                f"pd AS (SELECT d.sku, {aggs} FROM product_daily d WHERE d.date <= {self.day(0)} GROUP BY d.sku)"
            )
            for n in sorted(self.pd):
                cols.append(f"coalesce(pd.{n}, 0) AS {n}" if n == "sess30" else f"pd.{n}")
            joins.append("LEFT JOIN pd USING (sku)")
        extra = "".join(", " + c for c in cols)
        out.append(f"pm AS (SELECT p.*{extra} FROM products p {' '.join(joins)})")
        return "WITH " + ",\n".join(out)


class Node:
    """A rule as its text and a function from a Ctx to a two-valued SQL
    predicate (over `c`, a customers row, or `p`, a pm row)."""

    def __init__(self, text, sql, prec=3):
        self.text, self.sql, self.prec = text, sql, prec


def AND(*xs):
    return Node(
        " AND ".join(x.text if x.prec >= 2 else f"({x.text})" for x in xs),
        lambda ctx: " AND ".join(f"({x.sql(ctx)})" for x in xs),
        2,
    )


def OR(*xs):
    return Node(" OR ".join(x.text for x in xs), lambda ctx: " OR ".join(f"({x.sql(ctx)})" for x in xs), 1)


def NOT(x):
    return Node("NOT " + (x.text if x.prec >= 3 else f"({x.text})"), lambda ctx: f"NOT ({x.sql(ctx)})")


def col(text, sql):
    """A condition on a column that may be null: null is false."""
    return Node(text, lambda ctx: f"coalesce({sql(ctx) if callable(sql) else sql}, false)")


def holds(op, a, b):
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b, "=": a == b, "!=": a != b}[op]


# ---- customer conditions ---------------------------------------------------


def cagg(text, agg, op, value, *, since=None, where=None, products=False, empty=0):
    """A condition on an aggregate of a customer's counting lines (those
    passing `since`/`where`); `empty` is its value without such lines (None:
    null, so false)."""

    def sql(ctx):
        conds = ["l.customer_id IS NOT NULL"]
        if since is not None:
            conds.append(f"l.ordered_at >= {ctx.ago(since)}")
        if where:
            conds.append(where(ctx) if callable(where) else where)
        v = value(ctx) if callable(value) else value
        if op == "BETWEEN":
            cond = f"{agg} BETWEEN {v[0]} AND {v[1]}"
            zero = empty is not None and v[0] <= empty <= v[1]
        else:
            cond = f"{agg} {op} {v}"
            zero = empty is not None and not callable(value) and holds(op, empty, value)
        join = "JOIN products p USING (sku) " if products else ""
        sub = (
            f"SELECT l.customer_id FROM live l {join}WHERE {' AND '.join(conds)} "
            f"GROUP BY l.customer_id HAVING {f'NOT ({cond})' if zero else cond}"
        )
        return f"c.customer_id {'NOT IN' if zero else 'IN'} ({sub})"

    return Node(text, sql)


def filt(since=None, category=None, brand=None, marketplace=None, segment=None):
    """Behaviour-function arguments: (text, line filter SQL, needs products)."""
    args, conds = [], []
    if category:
        args.append(f"category: {lit(category)}")
        conds.append(f"lower(p.category) = {lit(category.lower())}")
    if brand:
        args.append(f"brand: {lit(brand)}")
        conds.append(f"lower(p.brand) = {lit(brand.lower())}")
    if marketplace:
        args.append(f"marketplace: {lit(marketplace)}")
        conds.append(f"lower(l.marketplace) = {lit(marketplace.lower())}")
    if segment is not None:
        args.append(f"in_segment: 'r{segment}'")
    if since is not None:
        args.append(f"since: -{since}d")

    def where(ctx):
        w = list(conds)
        if segment is not None:
            w.append(f"l.sku IN (SELECT p.sku FROM pm p WHERE {ctx.table[segment].sql(ctx)})")
        return " AND ".join(w) if w else "TRUE"

    return ", ".join(args), where, bool(category or brand)


def orders_fn(op, n, **kw):
    args, where, prod = filt(**kw)
    return cagg(f"orders({args}) {op} {n}", "count(DISTINCT l.order_id)", op, n,
                since=kw.get("since"), where=where, products=prod)


def spent_fn(op, x, **kw):
    args, where, prod = filt(**kw)
    return cagg(f"spent({args}) {op} {x}", "sum(l.revenue)", op, x, since=kw.get("since"), where=where, products=prod)


def units_fn(op, n, **kw):
    args, where, prod = filt(**kw)
    return cagg(f"units({args}) {op} {n}", "sum(l.quantity)", op, n, since=kw.get("since"), where=where, products=prod)


def purchased(**kw):
    args, where, prod = filt(**kw)
    return cagg(f"purchased({args})", "count(*)", ">", 0, since=kw.get("since"), where=where, products=prod)


def amount_spent(op, x):
    return cagg(f"amount_spent {op} {x}", "sum(l.revenue)", op, x)


def amount_between(a, b):
    return cagg(f"amount_spent BETWEEN {a} AND {b}", "sum(l.revenue)", "BETWEEN", (a, b))


def number_of_orders(op, n):
    return cagg(f"number_of_orders {op} {n}", "count(DISTINCT l.order_id)", op, n)


def units_purchased(op, n):
    return cagg(f"units_purchased {op} {n}", "sum(l.quantity)", op, n)


def total_profit(op, x):
    return cagg(f"total_profit {op} {x}", "sum(l.revenue - l.fees - l.quantity * coalesce(p.cost, 0))", op, x,
                products=True)


def average_order_value(op, x):
    # amount_spent / number_of_orders, multiplied out; null without orders.
    return cagg(f"average_order_value {op} {x}", "sum(l.revenue)", op,
                lambda ctx: f"{x} * count(DISTINCT l.order_id)", empty=None)


def order_date(field, op, days):
    agg = "max(l.ordered_at)" if field == "last" else "min(l.ordered_at)"
    return cagg(f"{field}_order_date {op} -{days}d", agg, op, lambda ctx: ctx.ago(days), empty=None)


def ctext(field, op, *values):
    """A text field of the customer (case-insensitive)."""
    expr = {
        "email_domain": "lower(regexp_extract(c.email, '@([^@]*)$', 1))",
    }.get(field, f"lower(c.{field})")
    if op == "IN":
        text = f"{field} IN ({', '.join(lit(v) for v in values)})"
        sql = f"nullif({expr}, '') IN ({', '.join(lit(v.lower()) for v in values)})"
    else:
        text = f"{field} {op} {lit(values[0])}"
        sql = f"nullif({expr}, '') {op} {lit(values[0].lower())}"
    return col(text, sql)


def tags_contain(tag, alias):
    return col(
        f"tags CONTAINS {lit(tag)}",
        f"list_contains(list_transform(string_split({alias}.tags, ';'), x -> lower(trim(x))), {lit(tag.lower())})",
    )


def accepts_marketing():
    return col("accepts_marketing = true", "c.accepts_marketing = true")


def created_within(days):
    return col(f"created_at >= -{days}d", lambda ctx: f"c.created_at >= {ctx.ago(days)}")


def load_tiers(dataset):
    path = os.path.join(dataset, "tiers.json")
    return json.load(open(path)) if os.path.exists(path) else []


TIERS = []  # set from the dataset before SQL is built


def tier_case():
    metric = {k: f"coalesce(m.{k}, 0)" for k in ("orders", "units", "revenue", "profit")}

    def scheme(s):
        tiers = sorted(s["tiers"], key=lambda t: -float(t["threshold"]))
        whens = " ".join(f"WHEN {metric[s['metric']]} > {t['threshold']} THEN {lit(t['name'])}" for t in tiers)
        return f"CASE {whens} ELSE NULL END"

    own = [s for s in TIERS if s["marketplace"] is not None]
    fallback = [s for s in TIERS if s["marketplace"] is None]
    cases = " ".join(f"WHEN c.marketplace = {lit(s['marketplace'])} THEN {scheme(s)}" for s in own)
    default = scheme(fallback[0]) if fallback else "NULL"
    return f"CASE {cases} ELSE {default} END"


def tier_in(*names):
    text = f"tier = {lit(names[0])}" if len(names) == 1 else f"tier IN ({', '.join(lit(n) for n in names)})"

    def sql(ctx):
        return f"""c.customer_id IN (
  SELECT c.customer_id FROM customers c LEFT JOIN (
    SELECT l.customer_id, count(DISTINCT l.order_id) AS orders, sum(l.quantity) AS units, sum(l.revenue) AS revenue,
           sum(l.revenue - l.fees - l.quantity * coalesce(p.cost, 0)) AS profit
    FROM live l JOIN products p USING (sku) WHERE l.customer_id IS NOT NULL GROUP BY l.customer_id) m USING (customer_id)
  WHERE lower({tier_case()}) IN ({', '.join(lit(n.lower()) for n in names)}))"""

    return Node(text, sql)


def in_segment(i, kind):
    if kind == "customer":
        sql = lambda ctx: f"c.customer_id IN (SELECT c.customer_id FROM customers c WHERE {ctx.table[i].sql(ctx)})"
    else:
        sql = lambda ctx: f"p.sku IN (SELECT p.sku FROM pm p WHERE {ctx.table[i].sql(ctx)})"
    return Node(f"in_segment('r{i}')", sql)


# ---- product conditions ----------------------------------------------------


def pnum(text, sql):
    """A number condition on a pm row (null: false)."""
    return col(text, sql)


def inventory(op, n):
    return pnum(f"inventory {op} {n}", f"p.inventory {op} {n}")


def inventory_empty():
    return Node("inventory IS EMPTY", lambda ctx: "p.inventory IS NULL OR p.inventory = 0")


def price_between(a, b):
    return pnum(f"price BETWEEN {a} AND {b}", f"p.price BETWEEN {a} AND {b}")


def window_metric(field, op, x):
    """units_Nd / sales_Nd, and the functions units_sold / sales with since:."""
    names = {"units": "u", "sales": "s", "customers": "c"}
    if field.endswith(")"):
        fn, days = field.split("(since: -")
        days = int(days.rstrip("d)"))
        name = {"units_sold": "u", "sales": "s"}[fn] + str(days)
    else:
        base, days = field.rsplit("_", 1)
        name = names[base] + str(int(days.rstrip("d")))
    return pnum(f"{field} {op} {x}", lambda ctx: f"{ctx.line_metric(name)} {op} {x}")


def days_of_stock(op, d):
    # inventory / velocity, multiplied out; null where inventory is null or velocity 0.
    return Node(
        f"days_of_stock {op} {d}",
        lambda ctx: f"p.inventory IS NOT NULL AND {ctx.velocity()} > 0 AND p.inventory * 29400 {op} {d} * {ctx.velocity()}",
    )


def daily_velocity(op, v):
    return Node(f"daily_velocity {op} {v}", lambda ctx: f"{ctx.velocity()} {op} {v} * 29400")


def avg_daily(days, op, v):
    return Node(f"avg_daily_units_{days}d {op} {v}",
                lambda ctx: f"{ctx.line_metric(f'u{days}')} {op} {v} * {days}")


def revenue_share(op, x):
    return Node(
        f"revenue_share {op} {x}",
        lambda ctx: f"{ctx.revenue_total()} > 0 AND 100 * {ctx.line_metric('s30')} {op} {x} * p.gtotal",
    )


def sessions_30d(op, n):
    return pnum(f"sessions_30d {op} {n}", lambda ctx: f"{ctx.daily_metric('sess30')} {op} {n}")


def conversion_rate(op, x):
    return Node(
        f"conversion_rate_30d {op} {x}",
        lambda ctx: f"{ctx.daily_metric('sess30')} > 0 AND 100 * {ctx.line_metric('u30')} {op} {x} * p.sess30",
    )


def daily_field(field, op, x):
    return pnum(f"{field} {op} {x}", lambda ctx: f"{ctx.daily_metric(field)} {op} {x}")


def new_reviews_30d(op, n):
    return pnum(
        f"new_reviews_30d {op} {n}",
        lambda ctx: f"{ctx.daily_metric('reviews')} - coalesce({ctx.daily_metric('reviews_old')}, 0) {op} {n}",
    )


def ptext(field, op, value):
    return col(f"{field} {op} {lit(value)}", f"lower(p.{field}) {op} {lit(value.lower())}")


def inventory_value(op, x):
    return pnum(f"inventory_value {op} {x}", f"p.inventory * p.cost {op} {x}")


# ---- the 100 rules ---------------------------------------------------------


def rules():
    """[(kind, Node)], rule i is segment r{i}. A reference names an earlier
    rule, so the file installs in order."""
    P, C = "product", "customer"
    out = []

    def add(kind, node):
        out.append((kind, node))
        return len(out) - 1

    # Products first: customer rules refer to some.
    for n in (10, 50):
        add(P, inventory("<", n))
    add(P, inventory_empty())
    for a, b in ((0, 10), (30, 100)):
        add(P, price_between(a, b))
    low_stock = None
    for d in (7, 14, 30):
        i = add(P, AND(days_of_stock("<", d), window_metric("units_30d", ">", 0)))
        low_stock = i if d == 14 else low_stock
    best = None
    for n in (10, 50, 100):
        i = add(P, window_metric("units_30d", ">=", n))
        best = i if n == 50 else best
    for x in (100, 1000):
        add(P, window_metric("sales_7d", ">", x))
    for x in (0.05, 0.2, 1):
        add(P, revenue_share(">", x))
    for n in (50, 200):
        add(P, sessions_30d(">", n))
    for x in (5, 15):
        add(P, AND(conversion_rate(">", x), sessions_30d(">=", 20)))
    for n in (10000, 100000):
        add(P, daily_field("bsr", "<", n))
    for b, n in (("Acme", 0), ("NorthPeak", 20), ("Voltix", 5)):
        add(P, AND(ptext("brand", "=", b), window_metric("units_30d", ">", n)))
    for c in ("Socks > Running", "Home > Kitchen"):
        add(P, AND(ptext("category", "=", c), days_of_stock("<", 30)))
    for n in (5, 20):
        add(P, new_reviews_30d(">", n))
    discontinued = add(P, tags_contain("discontinued", "p"))
    add(P, AND(tags_contain("clearance", "p"), inventory(">", 100)))
    add(P, window_metric("units_sold(since: -14d)", ">", 10))
    add(P, window_metric("sales(since: -90d)", ">", 1000))
    add(P, window_metric("customers_30d", ">=", 5))
    add(P, avg_daily(7, ">", 1))
    add(P, daily_velocity(">", 2))
    add(P, inventory_value(">", 5000))
    add(P, AND(daily_field("rating", ">=", 4.5), daily_field("reviews", ">", 100)))
    add(P, AND(in_segment(best, P), NOT(in_segment(discontinued, P))))
    add(P, AND(ptext("marketplace", "=", "UK"), window_metric("sales_30d", ">", 300)))
    assert len(out) == 40, len(out)

    # Customers.
    for x in (100, 500, 1000, 2500):
        add(C, amount_spent(">", x))
    for n in (2, 3, 5, 10):
        add(C, number_of_orders(">=", n))
    for x in (20, 100, 300):
        add(C, total_profit(">", x))
    for x in (30, 60, 120):
        add(C, average_order_value(">", x))
    for n in (5, 50):
        add(C, units_purchased(">=", n))
    for d, n in ((60, 1), (90, 2), (180, 3), (365, 5)):
        add(C, AND(order_date("last", "<", d), number_of_orders(">=", n)))
    for d in (30, 90):
        add(C, order_date("first", ">=", d))
    for d, n in ((7, 1), (30, 2), (90, 3)):
        add(C, orders_fn(">=", n, since=d))
    for d, x in ((30, 50), (90, 200), (365, 1000)):
        add(C, spent_fn(">", x, since=d))
    for cat, d in (("Socks > Hiking", 60), ("Apparel > Hoodies", 30), ("Home > Kitchen", 90), ("Outdoors > Camping", 180)):
        add(C, purchased(category=cat, since=d))
    for b, d, n in (("Acme", 90, 2), ("Trailhead", 30, 3), ("SoftStep", 365, 6)):
        add(C, units_fn(">=", n, brand=b, since=d))
    for m, d, x in (("UK", 30, 100), ("DE", 90, 200), ("US", 7, 0)):
        add(C, AND(purchased(marketplace=m, since=d), amount_spent(">", x)))
    add(C, AND(ctext("country", "IN", "US", "CA"), accepts_marketing(), orders_fn(">=", 1, since=30)))
    vip = add(C, OR(tags_contain("vip", "c"), tier_in("Platinum")))
    add(C, AND(tags_contain("wholesale", "c"), spent_fn(">", 500, since=90)))
    add(C, AND(ctext("x_source", "=", "referral"), number_of_orders("=", 0)))
    add(C, AND(ctext("email_domain", "=", "gmail.com"), amount_spent(">", 200)))
    add(C, AND(ctext("marketplace", "=", "DE"), orders_fn(">=", 1, since=14)))
    for t in ("Platinum", "Gold", "Silver", "Bronze"):
        add(C, tier_in(t))
    add(C, AND(tier_in("Gold", "Platinum"), order_date("last", "<", 90)))
    for d, n in ((30, 1), (90, 2), (180, 3)):
        add(C, AND(NOT(purchased(since=d)), number_of_orders(">=", n)))
    for d, a, b in ((14, 0, 50), (30, 50, 200), (60, 200, 1000)):
        add(C, AND(order_date("last", ">=", d), amount_between(a, b)))
    for d in (30, 180):
        add(C, AND(created_within(d), number_of_orders("=", 0)))
    add(C, AND(in_segment(vip, C), orders_fn("=", 0, since=30)))
    add(C, purchased(segment=low_stock, since=30))
    add(C, spent_fn(">", 100, brand="NorthPeak", since=30))
    assert len(out) == 100, len(out)
    return out


def write_rules(path):
    with open(path, "w") as f:
        for kind, node in rules():
            f.write(f"{kind}\t{node.text}\n")


def query(kind, node, ctx):
    pred = node.sql(ctx)
    if kind == "customer":
        body = f"SELECT count(*) FROM customers c WHERE {pred}"
    else:
        body = f"SELECT count(*) FROM pm p WHERE {pred}"
    return ctx.ctes() + "\n" + body


# ---- the benchmark ---------------------------------------------------------


def load(con, dataset, t0_us):
    money = "DECIMAL(18,4)"
    path = lambda name: os.path.join(dataset, name + ".csv")

    def csv(name, types):
        return f"read_csv('{path(name)}', header = true, types = {types})"

    con.execute(f"CREATE TABLE products AS SELECT * FROM {csv('products', {'price': money, 'cost': money, 'inventory': 'BIGINT', 'created_at': 'TIMESTAMPTZ', 'tags': 'VARCHAR'})}")
    con.execute(f"CREATE TABLE customers AS SELECT * FROM {csv('customers', {'accepts_marketing': 'BOOLEAN', 'created_at': 'TIMESTAMPTZ', 'tags': 'VARCHAR', 'email': 'VARCHAR'})}")
    order_types = {"order_id": "VARCHAR", "ordered_at": "TIMESTAMPTZ", "customer_id": "VARCHAR", "status": "VARCHAR",
                   "marketplace": "VARCHAR", "sku": "VARCHAR", "seller_account": "VARCHAR", "quantity": "BIGINT",
                   "unit_price": money, "discount": money, "fees": money}
    con.execute(f"CREATE TABLE all_orders AS SELECT * FROM {csv('orders', order_types)}")
    t0 = ts_sql(t0_us)
    con.execute(f"CREATE TABLE orders AS SELECT * FROM all_orders WHERE ordered_at <= {t0}")
    con.execute(f"CREATE TABLE pending AS SELECT * FROM all_orders WHERE ordered_at > {t0} ORDER BY ordered_at")
    con.execute("DROP TABLE all_orders")
    con.execute(
        f"CREATE TABLE product_daily AS SELECT * FROM {csv('product_daily', {'date': 'DATE', 'sessions': 'BIGINT', 'bsr': 'BIGINT', 'reviews': 'BIGINT', 'rating': money})} "
        f"WHERE date <= DATE '{date_of(t0_us)}'"
    )


def run_all(con, table, now_us):
    """Runs every rule's query at `now`: (counts, seconds)."""
    counts = []
    start = time.perf_counter()
    for kind, node in table:
        ctx = Ctx(now_us, [n for _, n in table])
        counts.append(con.execute(query(kind, node, ctx)).fetchone()[0])
    return counts, time.perf_counter() - start


def fmt_us(us):
    return ts_sql(us)[13:-4]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?")
    ap.add_argument("--days", type=int, default=7, help="days of orders replayed (T0 = end - days)")
    ap.add_argument("--hours", type=int, default=3, help="one-hour batches before the one-day batches")
    ap.add_argument("--max-day-batches", type=int, default=None,
                    help="stop timing after this many day batches (the rest are inserted at once)")
    ap.add_argument("--rust", help="the JSON the Rust bench wrote with --json, to compare with")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--write-rules", action="store_true", help=f"write {os.path.relpath(RULES_FILE)} and exit")
    ap.add_argument("--print-sql", type=int, default=None, help="print rule i's SQL at T0 and exit")
    args = ap.parse_args()

    if args.write_rules:
        write_rules(RULES_FILE)
        print(f"wrote {RULES_FILE}")
        return
    if not args.dataset:
        ap.error("DATASET_DIR is required")

    import duckdb

    global TIERS
    TIERS = load_tiers(args.dataset)
    table = rules()
    written = [l.rstrip("\n") for l in open(RULES_FILE)]
    expect = [f"{k}\t{n.text}" for k, n in table]
    if written != expect:
        sys.exit(f"{RULES_FILE} is out of date: run with --write-rules")

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    end_us = con.execute(
        f"SELECT epoch_us(max(ordered_at)) FROM read_csv('{os.path.join(args.dataset, 'orders.csv')}', header = true, "
        "types = {'ordered_at': 'TIMESTAMPTZ'})"
    ).fetchone()[0]
    t0_us = end_us - args.days * DAY_US
    if args.print_sql is not None:
        kind, node = table[args.print_sql]
        print(query(kind, node, Ctx(t0_us, [n for _, n in table])))
        return

    start = time.perf_counter()
    load(con, args.dataset, t0_us)
    load_s = time.perf_counter() - start
    n_orders = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    n_pending = con.execute("SELECT count(*) FROM pending").fetchone()[0]
    print(f"DuckDB {duckdb.__version__}, {threads} threads")
    print(f"end {fmt_us(end_us)}, T0 {fmt_us(t0_us)} ({args.days} days back)")
    print(f"load: {load_s:.2f} s; {n_orders} order lines up to T0, {n_pending} to replay")

    counts = {}
    counts["t0"], secs = run_all(con, table, t0_us)
    print(f"all 100 queries at T0: {secs:.2f} s")

    # Batches: --hours one-hour batches, then one-day batches up to the end.
    bounds = [t0_us + h * HOUR_US for h in range(1, args.hours + 1)]
    hour_batches = len(bounds)
    d = 1
    while t0_us + d * DAY_US <= end_us:
        if t0_us + d * DAY_US > bounds[-1]:
            bounds.append(t0_us + d * DAY_US)
        d += 1
    if bounds[-1] < end_us:
        bounds.append(end_us)
    batches = []
    lo = t0_us
    for i, hi in enumerate(bounds):
        kind = "hour" if i < hour_batches else "day"
        s = time.perf_counter()
        con.execute(f"INSERT INTO orders SELECT * FROM pending WHERE ordered_at > {ts_sql(lo)} AND ordered_at <= {ts_sql(hi)}")
        ins = time.perf_counter() - s
        lines = con.execute(f"SELECT count(*) FROM pending WHERE ordered_at > {ts_sql(lo)} AND ordered_at <= {ts_sql(hi)}").fetchone()[0]
        day_index = sum(1 for b in batches if b["kind"] == "day")
        skip = kind == "day" and args.max_day_batches is not None and day_index >= args.max_day_batches and hi != end_us
        if skip:
            secs, c = None, None
        else:
            c, secs = run_all(con, table, hi)
        batches.append({"kind": kind, "lo": lo, "hi": hi, "lines": lines, "insert_s": ins, "queries_s": secs})
        label = f"{kind} batch {fmt_us(lo)} .. {fmt_us(hi)}: {lines} lines, INSERT {ins * 1000:.1f} ms"
        print(label + (f", 100 queries {secs:.2f} s" if secs is not None else " (queries skipped)"), flush=True)
        lo = hi
    counts["end"] = c
    for k in (1, 2):
        counts[f"end+{k}d"], secs = run_all(con, table, end_us + k * DAY_US)
        batches.append({"kind": "advance", "lo": end_us, "hi": end_us + k * DAY_US, "lines": 0, "insert_s": 0, "queries_s": secs})
        print(f"clock advance to end + {k} day: 100 queries {secs:.2f} s")

    def med(kind):
        xs = [b["queries_s"] for b in batches if b["kind"] == kind and b["queries_s"] is not None]
        return statistics.median(xs) if xs else None

    hour_med, day_med = med("hour"), med("day")
    day_lines = statistics.median([b["lines"] for b in batches if b["kind"] == "day" and b["hi"] - b["lo"] == DAY_US] or [0])
    hour_lines = statistics.median([b["lines"] for b in batches if b["kind"] == "hour"] or [0])
    print()
    print("== DuckDB summary ==")
    print(f"re-run of 100 queries after a one-hour batch: median {hour_med:.2f} s (median {hour_lines:.0f} lines per hour)")
    print(f"re-run of 100 queries after a one-day batch:  median {day_med:.2f} s (median {day_lines:.0f} lines per day)")
    print(f"re-run at end + 1 day / + 2 days (clock advance): {batches[-2]['queries_s']:.2f} s / {batches[-1]['queries_s']:.2f} s")

    if args.rust:
        rust = json.load(open(args.rust))
        if rust["t0_us"] != t0_us or rust["end_us"] != end_us:
            print(f"WARNING: the Rust run used other instants (T0 {rust['t0_us']}, end {rust['end_us']})")
        lps = rust["lines_per_s"]
        print()
        print("== Live engine vs DuckDB re-run ==")
        print(f"live engine ingest: {lps:,.0f} lines/s (one core)")
        for kind, m, lines in (("hour", hour_med, hour_lines), ("day", day_med, day_lines)):
            live_s = lines / lps
            print(f"one {kind} of lines ({lines:.0f}): live engine {live_s * 1000:.1f} ms (lines / rate), "
                  f"DuckDB re-run {m:.2f} s: ratio {m / live_s:,.0f}x")
        # The same from the live engine's own per-day measurement.
        per_day = rust.get("days", [])
        full_days = [b for b in batches if b["kind"] == "day" and b["hi"] - b["lo"] == DAY_US and b["queries_s"] is not None]
        if per_day and full_days:
            ratios = []
            for b in full_days:
                di = (b["hi"] - t0_us) // DAY_US - 1
                if 0 <= di < len(per_day):
                    live_s = per_day[di]["seconds"]
                    ratios.append(b["queries_s"] / live_s)
            if ratios:
                print(f"per full day, DuckDB re-run / live engine's measured ingest of that day: median {statistics.median(ratios):,.0f}x "
                      f"(min {min(ratios):,.0f}x, max {max(ratios):,.0f}x)")
        for k in (1, 2):
            adv = rust.get(f"advance_{k}_s")
            q = batches[-3 + k]["queries_s"]
            if adv:
                print(f"clock advance end+{k - 1}d -> end+{k}d: live engine {adv * 1000:.1f} ms, DuckDB re-run {q:.2f} s: ratio {q / adv:,.0f}x")
        mism = 0
        for when in ("t0", "end", "end+1d", "end+2d"):
            theirs = rust["counts"].get(when)
            ours = counts.get(when)
            if theirs is None or ours is None:
                continue
            for i, (a, b) in enumerate(zip(ours, theirs)):
                if a != b:
                    mism += 1
                    print(f"MISMATCH at {when}: r{i} ({table[i][0]}) `{table[i][1].text}`: DuckDB {a}, live engine {b}")
        print(f"count check: {mism} mismatches over {sum(1 for w in ('t0', 'end', 'end+1d', 'end+2d') if w in rust['counts'])} instants x 100 rules")
    print()
    print("counts at end (rule: DuckDB):")
    print(" ".join(f"r{i}={n}" for i, n in enumerate(counts["end"])))
    if args.rust and mism:
        sys.exit(1)


if __name__ == "__main__":
    main()
