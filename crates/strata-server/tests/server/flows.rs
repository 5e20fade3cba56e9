//! Whole flows through the API, each checked against values worked out
//! from the hand-made dataset (`testdata/handmade`) at [`START`]
//! (2024-06-30T12:00:00Z), as `strata count` gives them:
//!
//! | customer | counting orders | amount_spent | tier (US: revenue; else orders) |
//! | --- | --- | --- | --- |
//! | C1 (US) | O1, O2, O3 | 109.99 | Silver (Gold needs > 109.99) |
//! | C2 (UK) | O4, O9 (O7 is dated 2024-07-05, O8 cancelled) | 22.50 | Repeat |
//! | C3 (US) | none (O5 refunded) | 0.00 | none |
//! | C4 (none) | none | 0.00 | Any |
//!
//! Saved segments: `socks` = {P1, P2}; `sock-buyers` = {C1, C2};
//! `loyal-sock-buyers` = {C1}.
//!
//! Every flow runs on SQLite and on PostgreSQL (`flow::sqlite`,
//! `flow::postgres`): the answers must not depend on the backend.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::*;

both!(
    newcomer_flow,
    data_in,
    an_order_post_is_all_or_nothing,
    segments,
    members,
    a_sorted_walk_equals_one_big_page,
    tiers,
    events,
    expiry,
    restart
);

const STORE: &str = "/api/v1/stores/shop";

fn p(path: &str) -> String {
    format!("{STORE}{path}")
}

/// A JSON number's exact text (the server keeps decimals exact).
fn num(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => panic!("not a number: {other}"),
    }
}

fn ids(members: &Value, field: &str) -> Vec<String> {
    members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[field].as_str().unwrap().to_owned())
        .collect()
}

/// Every event of the store's log, as the admin sees it.
async fn all_events(s: &Server) -> Vec<Value> {
    let (status, body) = s.get(&p("/events?after=0&limit=1000"), &s.admin).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

async fn segment_events(s: &Server, name: &str) -> Vec<Value> {
    let (status, body) = s
        .get(&p(&format!("/segments/{name}/events?limit=1000")), &s.admin)
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

async fn members_count(s: &Server, token: &str, name: &str) -> u64 {
    let (status, body) = s.get(&p(&format!("/segments/{name}")), token).await;
    assert_eq!(status, 200, "{body}");
    body["members"].as_u64().unwrap()
}

/// A request authenticated by a session cookie.
async fn with_cookie(
    s: &Server,
    method: Method,
    path: &str,
    cookie: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = s.req(method, path, None).header("cookie", cookie);
    if let Some(b) = body {
        r = r.json(&b);
    }
    send(r).await
}

fn order(id: &str, at: &str, customer: &str, lines: &[(&str, u32, &str)]) -> Value {
    json!({
        "order_id": id,
        "ordered_at": at,
        "customer_id": customer,
        "marketplace": "US",
        "lines": lines
            .iter()
            .map(|(sku, q, price)| json!({"sku": sku, "quantity": q, "unit_price": price}))
            .collect::<Vec<_>>(),
    })
}

const WAIT: Duration = Duration::from_secs(5);

/// Login with a password, the cookie, a segment from a text rule, its live
/// stream, an order that makes a customer enter, sharing and revoking.
async fn newcomer_flow(backend: Backend) {
    let s = Server::start_on(backend).await;
    let (ann, _) = s.user("ann@example.com").await;
    s.grant(ann, "read", "edit", "read").await;
    let (bob, bob_token) = s.user("bob@example.com").await;
    s.grant(bob, "none", "read", "none").await;

    // Login sets an HttpOnly session cookie.
    let res = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let attrs: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
    assert!(attrs[0].starts_with("strata_session="), "{set_cookie}");
    assert!(
        attrs[0].len() > "strata_session=".len() + 20,
        "{set_cookie}"
    );
    assert!(attrs.contains(&"HttpOnly"), "{set_cookie}");
    assert!(attrs.contains(&"Path=/"), "{set_cookie}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], "ann@example.com");
    assert_eq!(body["id"], ann);
    let cookie = attrs[0].to_owned();

    // /me: 401 without the cookie, Ann with it.
    let (status, _) = send(s.req(Method::GET, "/api/v1/me", None)).await;
    assert_eq!(status, 401);
    let (status, me) = with_cookie(&s, Method::GET, "/api/v1/me", &cookie, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["admin"], false);
    let (status, _) = with_cookie(
        &s,
        Method::GET,
        "/api/v1/me",
        "strata_session=not-a-session",
        None,
    )
    .await;
    assert_eq!(status, 401);

    // Preview, then create: the same count (C1 109.99, C2 22.50).
    let rule = "amount_spent > 20";
    let (status, preview) = with_cookie(
        &s,
        Method::POST,
        &p("/segments/preview"),
        &cookie,
        Some(json!({"kind": "customer", "rule": rule})),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["count"], 2);
    assert_eq!(ids(&preview["members"], "customer_id"), ["C1", "C2"]);
    let (status, created) = with_cookie(
        &s,
        Method::POST,
        &p("/segments"),
        &cookie,
        Some(json!({"name": "spenders", "kind": "customer", "rule": rule})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["members"], 2);
    assert_eq!(created["owner"]["email"], "ann@example.com");
    assert_eq!(created["rights"]["manage"], true);
    let (status, got) = with_cookie(&s, Method::GET, &p("/segments/spenders"), &cookie, None).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["members"], preview["count"]);
    assert_eq!(got["rule"], rule);

    // Bob sees nothing of it yet.
    let (status, _) = s.get(&p("/segments/spenders"), &bob_token).await;
    assert_eq!(status, 404);

    // The segment's live stream, read as bytes.
    let mut stream = sse_with(
        s.req(Method::GET, &p("/segments/spenders/events/stream"), None)
            .header("cookie", &cookie),
    )
    .await;

    // C3 (0.00 spent) buys 3 × 10.00 yesterday: 30.00 > 20.
    let (status, applied) = with_cookie(
        &s,
        Method::POST,
        &p("/orders"),
        &cookie,
        Some(order(
            "O20",
            "2024-06-29T10:00:00Z",
            "C3",
            &[("P1", 3, "10.00")],
        )),
    )
    .await;
    assert_eq!(status, 200, "{applied}");
    // Enters spenders and sock-buyers (P1 is a sock); tier none → Silver.
    assert_eq!(applied["events"], 3);

    let ev = stream
        .next(WAIT)
        .await
        .expect("an enter event on the stream");
    assert_eq!(ev.event.as_deref(), Some("enter"));
    assert_eq!(ev.data["type"], "enter");
    assert_eq!(ev.data["entity"], "C3");
    assert_eq!(ev.data["entity_kind"], "customer");
    assert_eq!(ev.data["segment"], "spenders");
    assert!(ev.data["change"].is_u64(), "{:?}", ev.data);
    assert_eq!(ev.id, ev.data["id"].as_i64());
    // Only that one: the other events are of other segments or tiers.
    assert!(stream.next(Duration::from_millis(300)).await.is_none());
    drop(stream);

    let (_, got) = with_cookie(&s, Method::GET, &p("/segments/spenders"), &cookie, None).await;
    assert_eq!(got["members"], 3);

    // Share with Bob (read): he sees it, in the list too.
    let (status, share) = with_cookie(
        &s,
        Method::PUT,
        &p(&format!("/segments/spenders/shares/{bob}")),
        &cookie,
        Some(json!({"read": true})),
    )
    .await;
    assert_eq!(status, 200, "{share}");
    assert_eq!(share["user"]["email"], "bob@example.com");
    assert_eq!(share["read"], true);
    assert_eq!(share["edit"], false);
    let (status, seen) = s.get(&p("/segments/spenders"), &bob_token).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["members"], 3);
    assert_eq!(seen["rights"]["read"], true);
    assert_eq!(seen["rights"]["edit"], false);
    assert_eq!(seen["rights"]["manage"], false);
    let (status, list) = s.get(&p("/segments"), &bob_token).await;
    assert_eq!(status, 200, "{list}");
    let names: BTreeSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(names.contains("spenders"), "{names:?}");
    // Bob may read, not change it.
    let (status, _) = s
        .put(
            &p("/segments/spenders"),
            &bob_token,
            json!({"rule": "amount_spent > 0"}),
        )
        .await;
    assert_eq!(status, 403);

    // Revoked: 404 at once, and gone from his list.
    let (status, _) = with_cookie(
        &s,
        Method::DELETE,
        &p(&format!("/segments/spenders/shares/{bob}")),
        &cookie,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = s.get(&p("/segments/spenders"), &bob_token).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "not_found");
    let (_, list) = s.get(&p("/segments"), &bob_token).await;
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "spenders")
    );
    s.stop().await;
}

/// An order as the store holds it: its status and number of lines.
fn stored_order(s: &Server, id: &str) -> Option<(String, usize)> {
    let shop = s.shop();
    let d = s.with_store(|st| st.load(shop).unwrap());
    let o = (0..d.orders.len()).find(|&o| d.orders.order_id.get(o) == id)?;
    let lines = d.lines.order.iter().filter(|&&l| l as usize == o).count();
    Some((d.orders.status.get(o).unwrap_or("").to_owned(), lines))
}

/// An order post that becomes new lines and a status change is applied
/// whole or not at all, in the engine and in the store, however either
/// part is refused.
async fn an_order_post_is_all_or_nothing(backend: Backend) {
    let s = Server::start_on(backend).await;
    let t = &s.admin;
    // C3 buys socks: enters sock-buyers, tier none → Silver.
    let (status, applied) = s
        .post(
            &p("/orders"),
            t,
            order("O30", "2024-06-29T10:00:00Z", "C3", &[("P1", 3, "10.00")]),
        )
        .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["events"], 2);
    let events_before = all_events(&s).await;
    let unchanged = |what: &str, got: &Value| {
        assert_eq!(got["status"], "shipped", "{what}: {got}");
        assert_eq!(got["lines"].as_array().unwrap().len(), 1, "{what}: {got}");
    };

    // A new line the engine refuses (unknown sku), and a new status.
    let mut bad_line = order(
        "O30",
        "2024-06-29T10:00:00Z",
        "C3",
        &[("P1", 3, "10.00"), ("NOPE", 1, "5.00")],
    );
    bad_line["status"] = json!("refunded");
    let (status, body) = s.post(&p("/orders"), t, bad_line.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_change");
    let (_, got) = s.get(&p("/orders/O30"), t).await;
    unchanged("a refused line", &got);
    assert_eq!(stored_order(&s, "O30"), Some(("shipped".to_owned(), 1)));

    // A good new line, and a status the engine refuses.
    let mut bad_status = order(
        "O30",
        "2024-06-29T10:00:00Z",
        "C3",
        &[("P1", 3, "10.00"), ("P2", 1, "12.50")],
    );
    bad_status["status"] = json!("");
    let (status, body) = s.post(&p("/orders"), t, bad_status).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_change");
    let (_, got) = s.get(&p("/orders/O30"), t).await;
    unchanged("a refused status", &got);
    assert_eq!(stored_order(&s, "O30"), Some(("shipped".to_owned(), 1)));

    // The same in a batch, beside a line that stands.
    let body = [
        format!("{{\"type\": \"order\", {}", &bad_line.to_string()[1..]),
        r#"{"type": "product_values", "sku": "P1", "inventory": 5}"#.to_owned(),
    ]
    .join("\n");
    let (status, res) = send(
        s.req(Method::POST, &p("/batch"), Some(t))
            .header("content-type", "application/x-ndjson")
            .body(body),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["accepted"], 1, "{res}");
    assert_eq!(res["refused"][0]["line"], 1, "{res}");
    let (_, got) = s.get(&p("/orders/O30"), t).await;
    unchanged("a refused batch line", &got);
    assert_eq!(stored_order(&s, "O30"), Some(("shipped".to_owned(), 1)));
    let (_, c3) = s.get(&p("/customers/C3"), t).await;
    assert_eq!(c3["tier"], "Silver");
    assert_eq!(c3["units_purchased"], 3);
    assert_eq!(all_events(&s).await, events_before);

    // Both parts good: both applied (C3 leaves sock-buyers and Silver).
    let mut good = order(
        "O30",
        "2024-06-29T10:00:00Z",
        "C3",
        &[("P1", 3, "10.00"), ("P2", 1, "12.50")],
    );
    good["status"] = json!("refunded");
    let (status, applied) = s.post(&p("/orders"), t, good).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["events"], 2);
    let (_, got) = s.get(&p("/orders/O30"), t).await;
    assert_eq!(got["status"], "refunded", "{got}");
    assert_eq!(got["lines"].as_array().unwrap().len(), 2, "{got}");
    assert_eq!(stored_order(&s, "O30"), Some(("refunded".to_owned(), 2)));
    s.stop().await;
}

/// Products, customers, orders (idempotent, growing, refunded), daily
/// rows, deletes and an NDJSON batch.
async fn data_in(backend: Backend) {
    let s = Server::start_on(backend).await;
    let t = &s.admin;

    // A new sock: enters `socks`.
    let (status, applied) = s
        .post(
            &p("/products"),
            t,
            json!({
                "sku": "P9", "title": "Green Socks L", "brand": "Acme",
                "category": "Apparel > Socks", "tags": ["new"], "seller_account": "acct1",
                "marketplace": "US", "price": "15.00", "cost": 6, "inventory": 12,
                "created_at": "2024-06-01T00:00:00Z", "custom": {"x_color": "green"}
            }),
        )
        .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["events"], 1);
    let (status, prod) = s.get(&p("/products/P9"), t).await;
    assert_eq!(status, 200, "{prod}");
    assert_eq!(prod["sku"], "P9");
    assert_eq!(prod["title"], "Green Socks L");
    assert_eq!(prod["category"], "Apparel > Socks");
    assert_eq!(prod["tags"], json!(["new"]));
    assert_eq!(num(&prod["price"]), "15.00");
    assert_eq!(num(&prod["cost"]), "6.00");
    assert_eq!(prod["inventory"], 12);
    assert_eq!(prod["x_color"], "green");
    assert_eq!(prod["created_at"], "2024-06-01T00:00:00Z");
    assert_eq!(prod["units_sold"], 0);
    let (status, _) = s.get(&p("/products/P404"), t).await;
    assert_eq!(status, 404);

    // PATCH price and inventory.
    let (status, applied) = s
        .patch(
            &p("/products/P9"),
            t,
            json!({"price": "17.50", "inventory": 3}),
        )
        .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["events"], 0);
    let (_, prod) = s.get(&p("/products/P9"), t).await;
    assert_eq!(num(&prod["price"]), "17.50");
    assert_eq!(prod["inventory"], 3);
    assert_eq!(num(&prod["cost"]), "6.00");
    assert_eq!(num(&prod["inventory_value"]), "18.00");
    let (status, _) = s.patch(&p("/products/P404"), t, json!({"price": 1})).await;
    assert_eq!(status, 404);

    // A customer of a marketplace without a scheme: the fallback scheme
    // (orders), 0 > -1 is "Any".
    let (status, applied) = s
        .post(
            &p("/customers"),
            t,
            json!({
                "customer_id": "C5", "email": "Eve@Example.org", "first_name": "Eve",
                "country": "DE", "marketplace": "DE", "tags": ["new"],
                "accepts_marketing": true, "created_at": "2024-06-02"
            }),
        )
        .await;
    assert_eq!(status, 200, "{applied}");
    let (status, cust) = s.get(&p("/customers/C5"), t).await;
    assert_eq!(status, 200, "{cust}");
    assert_eq!(cust["tier"], "Any");
    assert_eq!(cust["email"], "Eve@Example.org");
    assert_eq!(cust["email_domain"], "example.org");
    assert_eq!(cust["country"], "DE");
    assert_eq!(cust["accepts_marketing"], true);
    assert_eq!(cust["created_at"], "2024-06-02T00:00:00Z");
    assert_eq!(cust["number_of_orders"], 0);
    // And the known ones: C1 is Silver (109.99 does not exceed Gold's
    // 109.99), C3 has none.
    let (_, c1) = s.get(&p("/customers/C1"), t).await;
    assert_eq!(c1["tier"], "Silver");
    assert_eq!(num(&c1["amount_spent"]), "109.99");
    let (_, c3) = s.get(&p("/customers/C3"), t).await;
    assert_eq!(c3["tier"], Value::Null);

    // An order: C5 buys the new sock and enters sock-buyers.
    let o10 = json!({
        "order_id": "O10", "ordered_at": "2024-06-29T15:00:00Z", "customer_id": "C5",
        "marketplace": "DE",
        "lines": [{"sku": "P9", "quantity": 2, "unit_price": "17.50", "discount": "1.00"}]
    });
    let (status, applied) = s.post(&p("/orders"), t, o10.clone()).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["events"], 1);
    // Posting it again adds nothing.
    let (status, applied) = s.post(&p("/orders"), t, o10.clone()).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["events"], 0);
    let (status, got) = s.get(&p("/orders/O10"), t).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["customer_id"], "C5");
    assert_eq!(got["status"], "shipped");
    assert_eq!(got["ordered_at"], "2024-06-29T15:00:00Z");
    assert_eq!(got["customer_tier"], "Any");
    let lines = got["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["sku"], "P9");
    assert_eq!(lines[0]["quantity"], 2);
    assert_eq!(lines[0]["revenue"], "34.00");
    let (_, cust) = s.get(&p("/customers/C5"), t).await;
    assert_eq!(cust["number_of_orders"], 1);
    assert_eq!(num(&cust["amount_spent"]), "34.00");

    // A longer post adds the line past those stored.
    let mut longer = o10.clone();
    longer["lines"]
        .as_array_mut()
        .unwrap()
        .push(json!({"sku": "P4", "quantity": 1, "unit_price": "20.00"}));
    let (status, applied) = s.post(&p("/orders"), t, longer.clone()).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["events"], 0);
    let (_, got) = s.get(&p("/orders/O10"), t).await;
    let lines = got["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["sku"], "P9");
    assert_eq!(lines[1]["sku"], "P4");
    assert_eq!(lines[1]["revenue"], "20.00");
    let (_, cust) = s.get(&p("/customers/C5"), t).await;
    assert_eq!(cust["number_of_orders"], 1);
    assert_eq!(cust["units_purchased"], 3);
    assert_eq!(num(&cust["amount_spent"]), "54.00");
    // Fewer lines than stored: refused, and nothing changes.
    let (status, body) = s.post(&p("/orders"), t, o10.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_change");
    let mut shorter = o10.clone();
    shorter["lines"] = json!([]);
    let (status, body) = s.post(&p("/orders"), t, shorter).await;
    assert_eq!(status, 422, "{body}");

    // Refunded: C5 leaves sock-buyers, with an exit in the event log.
    let before = all_events(&s)
        .await
        .last()
        .map_or(0, |e| e["id"].as_i64().unwrap());
    let (status, applied) = s
        .put(&p("/orders/O10/status"), t, json!({"status": "refunded"}))
        .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["events"], 1);
    let (_, got) = s.get(&p("/orders/O10"), t).await;
    assert_eq!(got["status"], "refunded");
    let (status, page) = s.get(&p(&format!("/events?after={before}")), t).await;
    assert_eq!(status, 200);
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0]["type"], "exit");
    assert_eq!(events[0]["segment"], "sock-buyers");
    assert_eq!(events[0]["entity"], "C5");
    assert!(events[0]["change"].is_u64());
    let (_, cust) = s.get(&p("/customers/C5"), t).await;
    assert_eq!(cust["number_of_orders"], 0);
    let (status, _) = s
        .put(&p("/orders/O404/status"), t, json!({"status": "refunded"}))
        .await;
    assert_eq!(status, 404);

    // A daily row.
    let (status, applied) = s
        .post(
            &p("/daily"),
            t,
            json!({"sku": "P9", "date": "2024-06-29", "sessions": 40, "bsr": 1200, "reviews": 3, "rating": "4.5"}),
        )
        .await;
    assert_eq!(status, 200, "{applied}");
    let (_, prod) = s.get(&p("/products/P9"), t).await;
    assert_eq!(prod["sessions_30d"], 40);
    assert_eq!(prod["bsr"], 1200);
    assert_eq!(prod["reviews"], 3);
    assert_eq!(num(&prod["rating"]), "4.5");

    // Deleting a customer.
    let (status, body) = s.delete(&p("/customers/C5"), t).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = s.get(&p("/customers/C5"), t).await;
    assert_eq!(status, 404);
    let (status, _) = s.delete(&p("/customers/C5"), t).await;
    assert_eq!(status, 404);
    // Its order stays, as an anonymous buyer's.
    let (_, got) = s.get(&p("/orders/O10"), t).await;
    assert_eq!(got["customer_id"], Value::Null);

    // NDJSON: mixed types, a blank line, and a line the engine refuses
    // (an unknown sku) at line 4.
    let body = [
        r#"{"type": "product", "sku": "P10", "title": "Wool Socks", "category": "Apparel > Socks", "price": "8.00", "inventory": 10}"#,
        r#"{"type": "customer", "customer_id": "C6", "country": "US", "marketplace": "US"}"#,
        "",
        r#"{"type": "order", "order_id": "O12", "ordered_at": "2024-06-29T09:00:00Z", "customer_id": "C6", "marketplace": "US", "lines": [{"sku": "NOPE", "quantity": 1, "unit_price": "5"}]}"#,
        r#"{"type": "order", "order_id": "O11", "ordered_at": "2024-06-29T08:00:00Z", "customer_id": "C6", "marketplace": "US", "lines": [{"sku": "P10", "quantity": 2, "unit_price": "8.00"}]}"#,
        r#"{"type": "daily", "sku": "P10", "date": "2024-06-29", "sessions": 7}"#,
        r#"{"type": "product_values", "sku": "P10", "inventory": 4}"#,
    ]
    .join("\n");
    let (status, res) = send(
        s.req(Method::POST, &p("/batch"), Some(t))
            .header("content-type", "application/x-ndjson")
            .body(body),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["accepted"], 5, "{res}");
    let refused = res["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{res}");
    assert_eq!(refused[0]["line"], 4);
    assert_eq!(refused[0]["problem"]["code"], "invalid_change");
    assert!(
        refused[0]["problem"]["detail"]
            .as_str()
            .unwrap()
            .contains("NOPE"),
        "{res}"
    );
    // P10 enters socks; C6 buys it: enters sock-buyers, tier none → Silver.
    assert_eq!(res["events"], 3, "{res}");
    let (status, prod) = s.get(&p("/products/P10"), t).await;
    assert_eq!(status, 200);
    assert_eq!(prod["inventory"], 4);
    assert_eq!(prod["sessions_30d"], 7);
    assert_eq!(prod["units_sold"], 2);
    let (status, cust) = s.get(&p("/customers/C6"), t).await;
    assert_eq!(status, 200);
    assert_eq!(cust["tier"], "Silver");
    assert_eq!(num(&cust["amount_spent"]), "16.00");
    let (status, got) = s.get(&p("/orders/O11"), t).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["lines"].as_array().unwrap().len(), 1);
    let (status, _) = s.get(&p("/orders/O12"), t).await;
    assert_eq!(status, 404);
    assert_eq!(members_count(&s, t, "socks").await, 4);
    assert_eq!(members_count(&s, t, "sock-buyers").await, 3);

    // A refused order does not count as stored for a later line with the
    // same id: the corrected post creates it whole.
    let body = [
        r#"{"type": "order", "order_id": "O13", "ordered_at": "2024-06-29T09:00:00Z", "customer_id": "C4", "lines": [{"sku": "P1", "quantity": 1, "unit_price": "10"}, {"sku": "NOPE", "quantity": 1, "unit_price": "5"}]}"#,
        r#"{"type": "order", "order_id": "O13", "ordered_at": "2024-06-29T09:00:00Z", "customer_id": "C4", "lines": [{"sku": "P1", "quantity": 1, "unit_price": "10"}, {"sku": "P2", "quantity": 1, "unit_price": "12.50"}]}"#,
        r#"{"type": "order_status", "order_id": "O13", "status": "cancelled"}"#,
        r#"{"type": "order", "order_id": "O13", "ordered_at": "2024-06-29T09:00:00Z", "customer_id": "C4", "status": "shipped", "lines": [{"sku": "P1", "quantity": 1, "unit_price": "10"}, {"sku": "P2", "quantity": 1, "unit_price": "12.50"}]}"#,
    ]
    .join("\n");
    let (status, res) = send(
        s.req(Method::POST, &p("/batch"), Some(t))
            .header("content-type", "application/x-ndjson")
            .body(body),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["accepted"], 3, "{res}");
    assert_eq!(res["refused"][0]["line"], 1, "{res}");
    let (status, got) = s.get(&p("/orders/O13"), t).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["lines"].as_array().unwrap().len(), 2, "{got}");
    assert_eq!(got["status"], "shipped", "{got}");
    let (_, c4) = s.get(&p("/customers/C4"), t).await;
    assert_eq!(c4["number_of_orders"], 1);
    assert_eq!(num(&c4["amount_spent"]), "22.50");

    // A malformed line refuses the whole batch, naming it.
    let (status, res) = send(
        s.req(Method::POST, &p("/batch"), Some(t))
            .header("content-type", "application/x-ndjson")
            .body("{\"type\": \"product\", \"sku\": \"P11\"}\n{\"type\": \"nonsense\"}\n"),
    )
    .await;
    assert_eq!(status, 400, "{res}");
    assert_eq!(res["line"], 2);
    let (status, _) = s.get(&p("/products/P11"), t).await;
    assert_eq!(status, 404);
    s.stop().await;
}

/// JSON-tree rules, rule changes with events, uses, deleting with and
/// without force, templates.
async fn segments(backend: Backend) {
    let s = Server::start_on(backend).await;
    let t = &s.admin;

    // The JSON form of `amount_spent > 20 AND country = 'US'` (`strata
    // explain`): C1 only.
    let tree = json!({"and": [
        {"field": "amount_spent", "op": ">", "value": 20},
        {"field": "country", "op": "=", "value": "US"}
    ]});
    let (status, seg) = s
        .post(
            &p("/segments"),
            t,
            json!({"name": "big-us", "kind": "customer", "rule": tree, "description": "US spenders"}),
        )
        .await;
    assert_eq!(status, 201, "{seg}");
    assert_eq!(seg["members"], 1);
    assert_eq!(seg["rule"], "amount_spent > 20 AND country = 'US'");
    assert_eq!(seg["rule_json"], tree);
    assert_eq!(seg["description"], "US spenders");
    let (status, _) = s
        .post(
            &p("/segments"),
            t,
            json!({"name": "big-us", "kind": "customer", "rule": "country = 'US'"}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, body) = s
        .post(
            &p("/segments"),
            t,
            json!({"name": "bad", "kind": "customer", "rule": {"field": "nope", "op": "=", "value": 1}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_rule");

    let entered = segment_events(&s, "big-us").await;
    assert_eq!(entered.len(), 1);
    assert_eq!(entered[0]["type"], "enter");
    assert_eq!(entered[0]["entity"], "C1");

    // Changing the rule (JSON again): US customers are C1 and C3.
    let (status, seg) = s
        .put(
            &p("/segments/big-us"),
            t,
            json!({"rule": {"field": "country", "op": "=", "value": "US"}}),
        )
        .await;
    assert_eq!(status, 200, "{seg}");
    assert_eq!(seg["members"], 2);
    assert_eq!(seg["rule"], "country = 'US'");
    assert_eq!(seg["description"], "US spenders");
    let events = segment_events(&s, "big-us").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["type"], "enter");
    assert_eq!(events[1]["entity"], "C3");
    // And to text: only GB customers (C2); C1 and C3 leave.
    let (status, seg) = s
        .put(&p("/segments/big-us"), t, json!({"rule": "country = 'GB'"}))
        .await;
    assert_eq!(status, 200, "{seg}");
    assert_eq!(seg["members"], 1);
    let events = segment_events(&s, "big-us").await;
    let tail: BTreeSet<(String, String)> = events[2..]
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["entity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [("enter", "C2"), ("exit", "C1"), ("exit", "C3")]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(tail, want);
    // The three come from one change.
    assert_eq!(events[2]["change"], events[4]["change"]);

    // Uses and deletion.
    let (status, uses) = s.get(&p("/segments/sock-buyers/uses"), t).await;
    assert_eq!(status, 200, "{uses}");
    assert_eq!(uses["segments"], json!(["loyal-sock-buyers"]));
    let (_, uses) = s.get(&p("/segments/loyal-sock-buyers/uses"), t).await;
    assert_eq!(uses["segments"], json!([]));
    let (status, body) = s.delete(&p("/segments/sock-buyers"), t).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "segment_in_use");
    assert_eq!(body["uses"], json!(["loyal-sock-buyers"]));
    assert_eq!(members_count(&s, t, "sock-buyers").await, 2);
    let (status, body) = s.delete(&p("/segments/sock-buyers?force=true"), t).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], json!(["loyal-sock-buyers", "sock-buyers"]));
    for name in ["sock-buyers", "loyal-sock-buyers"] {
        let (status, _) = s.get(&p(&format!("/segments/{name}")), t).await;
        assert_eq!(status, 404, "{name}");
    }
    let (_, list) = s.get(&p("/segments"), t).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["big-us", "socks"]);

    // Templates.
    let (status, list) = s.get(&p("/templates"), t).await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert!(list.len() >= 12, "{}", list.len());
    let hs = list.iter().find(|t| t["id"] == "high-spenders").unwrap();
    assert_eq!(hs["kind"], "customer");
    assert_eq!(hs["rule"], "amount_spent > 500 AND number_of_orders >= 3");
    let (status, seg) = s
        .post(
            &p("/templates/high-spenders"),
            t,
            json!({"name": "hs", "params": {"amount": 20, "orders": "2"}}),
        )
        .await;
    assert_eq!(status, 201, "{seg}");
    assert_eq!(seg["name"], "hs");
    assert_eq!(seg["kind"], "customer");
    let rule = seg["rule"].as_str().unwrap();
    assert!(rule.contains("20"), "{rule}");
    assert_eq!(rule, "amount_spent > 20 AND number_of_orders >= 2");
    // C1 (109.99, 3 orders) and C2 (22.50, 2 orders).
    assert_eq!(seg["members"], 2);
    assert!(seg["description"].as_str().unwrap().contains("spent"));
    let (status, body) = s
        .post(
            &p("/templates/high-spenders"),
            t,
            json!({"name": "hs2", "params": {"amount": "20 OR true"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_parameter");
    let (status, _) = s.post(&p("/templates/nope"), t, json!({})).await;
    assert_eq!(status, 404);
    s.stop().await;
}

/// The member table: cursor paging, sorting, filters, columns, CSV; stats.
async fn members(backend: Backend) {
    // The engine's clock follows only before requests here (no ticks), so
    // every answer after `set_clock` shows that a request moved it.
    let s = Server::start_with(Options {
        config: Box::new(|c| c.tick = Duration::from_secs(3600)),
        ..Options::on(backend)
    })
    .await;
    let t = &s.admin;
    let (status, seg) = s
        .post(
            &p("/segments"),
            t,
            json!({"name": "everyone", "kind": "customer", "rule": "customer_id STARTS WITH 'C'"}),
        )
        .await;
    assert_eq!(status, 201, "{seg}");
    assert_eq!(seg["members"], 4);

    // One big page.
    let (status, big) = s.get(&p("/segments/everyone/members?limit=100"), t).await;
    assert_eq!(status, 200, "{big}");
    assert_eq!(big["total"], 4);
    assert_eq!(big["next_cursor"], Value::Null);
    let all = ids(&big["members"], "customer_id");
    assert_eq!(all, ["C1", "C2", "C3", "C4"]);

    // Pages of one, by cursor.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/segments/everyone/members?limit=1&cursor={c}"),
            None => "/segments/everyone/members?limit=1".to_owned(),
        };
        let (status, page) = s.get(&p(&path), t).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 4);
        assert_eq!(page["members"].as_array().unwrap().len(), 1);
        walked.extend(ids(&page["members"], "customer_id"));
        pages += 1;
        assert!(pages <= 4, "more pages than members");
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, all);

    // Sorted by amount spent, descending: 109.99, 22.50, then the two at
    // 0.00 by id.
    let (status, page) = s
        .get(
            &p("/segments/everyone/members?sort=amount_spent&order=desc&limit=100"),
            t,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let amounts: Vec<f64> = page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| num(&m["amount_spent"]).parse().unwrap())
        .collect();
    assert_eq!(amounts.len(), 4);
    assert!(amounts.windows(2).all(|w| w[0] >= w[1]), "{amounts:?}");
    assert_eq!(
        ids(&page["members"], "customer_id"),
        ["C1", "C2", "C3", "C4"]
    );
    // Sorted ascending by amount, paged by two: the cursor carries the key.
    let (_, first) = s
        .get(
            &p("/segments/everyone/members?sort=amount_spent&limit=2"),
            t,
        )
        .await;
    assert_eq!(ids(&first["members"], "customer_id"), ["C3", "C4"]);
    let c = first["next_cursor"].as_str().unwrap();
    let (_, second) = s
        .get(
            &p(&format!(
                "/segments/everyone/members?sort=amount_spent&limit=2&cursor={c}"
            )),
            t,
        )
        .await;
    assert_eq!(ids(&second["members"], "customer_id"), ["C2", "C1"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // A filter.
    let (status, page) = s
        .get(
            &p("/segments/everyone/members?filter=country%20%3D%20%27US%27"),
            t,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 2);
    assert_eq!(ids(&page["members"], "customer_id"), ["C1", "C3"]);
    let (status, body) = s
        .get(&p("/segments/everyone/members?filter=countr%20%3D%201"), t)
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_rule");

    // Chosen columns.
    let (status, page) = s
        .get(&p("/segments/everyone/members?fields=customer_id,email"), t)
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["columns"], json!(["customer_id", "email"]));
    for m in page["members"].as_array().unwrap() {
        let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["customer_id", "email"]);
    }
    assert_eq!(page["members"][0]["email"], "Ann@Example.COM");
    assert_eq!(page["members"][3]["email"], Value::Null);

    // CSV: what `strata members --format csv` prints for the same rule.
    let (status, csv) = s.get_text(&p("/segments/everyone/members.csv"), t).await;
    assert_eq!(status, 200);
    let want = "\
customer_id,email,email_domain,first_name,last_name,country,city,marketplace,tags,accepts_marketing,created_at,number_of_orders,units_purchased,amount_spent,total_profit,average_order_value,first_order_date,last_order_date,tier,x_source
C1,Ann@Example.COM,example.com,Ann,Lee,US,Boston,US,vip;newsletter,true,2023-01-01T00:00:00Z,3,7,109.99,76.49,36.663333333333,2024-01-10T09:00:00Z,2024-06-25T08:00:00Z,Silver,ads
C2,bob@shop.co.uk,shop.co.uk,Bob,Smith,GB,London,UK,,false,2023-05-05T00:00:00Z,2,2,22.50,12.15,11.25,2024-02-29T23:59:59Z,2024-06-20T10:00:00Z,Repeat,organic
C3,carl@example.com,example.com,Carl,,US,,US,wholesale,,,0,0,0.00,0.00,,,,,
C4,,,Dana,,,,,,,,0,0,0.00,0.00,,,,Any,
";
    assert_eq!(csv, want);
    assert_eq!(csv.lines().count(), 1 + 4);
    assert_eq!(
        csv.lines().next().unwrap().split(',').collect::<Vec<_>>(),
        big["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect::<Vec<_>>()
    );

    // Stats of a customer segment: counts per day, no sales.
    let (status, stats) = s.get(&p("/segments/everyone/stats?days=3"), t).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["sales"], Value::Null);
    let counts = stats["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 3);
    assert_eq!(counts[0]["date"], "2024-06-28");
    // Nothing recorded the count before the store was served on 06-30.
    assert_eq!(counts[0]["count"], Value::Null);
    assert_eq!(counts[1]["count"], Value::Null);
    assert_eq!(counts[2]["date"], "2024-06-30");
    assert_eq!(counts[2]["count"], 4);

    // Sales of `socks` (P1, P2). In June (30 days to 2024-06-30): O4 P2
    // 1 × 12.50, O3 P2 3 × 12.50 − 2.50, O6 P1 2 × 9.00; O5 is refunded.
    let sales = |stats: &Value| -> BTreeMap<String, (u64, String)> {
        stats["sales"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["units"] != 0)
            .map(|d| {
                (
                    d["date"].as_str().unwrap().to_owned(),
                    (
                        d["units"].as_u64().unwrap(),
                        d["revenue"].as_str().unwrap().to_owned(),
                    ),
                )
            })
            .collect()
    };
    let total = |m: &BTreeMap<String, (u64, String)>| -> (u64, rust_decimal::Decimal) {
        m.values()
            .fold((0, rust_decimal::Decimal::ZERO), |(u, r), (du, dr)| {
                (u + du, r + dr.parse::<rust_decimal::Decimal>().unwrap())
            })
    };
    let (status, stats) = s.get(&p("/segments/socks/stats?days=30"), t).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["sales"].as_array().unwrap().len(), 30);
    assert_eq!(stats["sales"][0]["date"], "2024-06-01");
    assert_eq!(stats["sales"][29]["date"], "2024-06-30");
    let june = sales(&stats);
    let want: BTreeMap<String, (u64, String)> = [
        ("2024-06-20", 1, "12.5"),
        ("2024-06-25", 3, "35"),
        ("2024-06-28", 2, "18"),
    ]
    .iter()
    .map(|(d, u, r)| ((*d).to_owned(), (*u, (*r).to_owned())))
    .collect();
    assert_eq!(june, want);
    assert_eq!(total(&june), (6, "65.50".parse().unwrap()));
    assert_eq!(stats["counts"][29]["count"], 2);
    // 200 days (from 2023-12-13) add O1 (P1 2 × 10), O9 (P1 1 × 10) and
    // O2 (P1 1 × 10); O7 is not due yet.
    let (_, stats) = s.get(&p("/segments/socks/stats?days=200"), t).await;
    assert_eq!(total(&sales(&stats)), (10, "105.50".parse().unwrap()));

    // A week later O7 (2024-07-05, P1 1 × 10) has come due, and a new
    // sock joins the segment today.
    s.set_clock("2024-07-06T12:00:00Z");
    // P1 sold 2 in the week to 2024-06-30 (O6), 1 in the week to
    // 2024-07-06 (O7).
    let (_, p1) = s.get(&p("/products/P1"), t).await;
    assert_eq!(p1["units_7d"], 1, "{p1}");
    assert_eq!(p1["as_of"], "2024-07-06T12:00:00Z");
    let (status, _) = s
        .post(
            &p("/products"),
            t,
            json!({"sku": "P12", "category": "Apparel > Socks"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, stats) = s.get(&p("/segments/socks/stats?days=7"), t).await;
    let week = sales(&stats);
    assert_eq!(
        week,
        [("2024-07-05".to_owned(), (1, "10".to_owned()))]
            .into_iter()
            .collect()
    );
    let counts: Vec<(String, u64)> = stats["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["date"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("2024-06-30", 2),
            ("2024-07-01", 2),
            ("2024-07-02", 2),
            ("2024-07-03", 2),
            ("2024-07-04", 2),
            ("2024-07-05", 2),
            ("2024-07-06", 3),
        ]
        .iter()
        .map(|(d, c)| ((*d).to_owned(), *c))
        .collect::<Vec<_>>()
    );
    s.stop().await;
}

/// The snapshot the server answers `shop`'s member tables from now.
async fn snapshot(s: &Server) -> std::sync::Arc<strata_server::tenant::Snapshot> {
    let tenants = s.with_store(|st| st.tenants().unwrap());
    let shop = tenants.into_iter().find(|t| t.name == "shop").unwrap();
    let engine = s.state.tenant(&shop).await.unwrap();
    engine.snapshot().await.unwrap()
}

/// Walking a big segment's sorted (and filtered) table page by page gives
/// what one big page gives, and sorts it once.
async fn a_sorted_walk_equals_one_big_page(backend: Backend) {
    let s = Server::start_with(Options {
        config: Box::new(|c| c.tick = Duration::from_secs(3600)),
        ..Options::on(backend)
    })
    .await;
    let t = &s.admin;
    // 250 customers with many ties and nulls in the sort fields.
    let countries = [Some("US"), Some("GB"), Some("DE"), Some("FR"), None];
    let body: Vec<String> = (0..250)
        .map(|i| {
            let created = (i % 6 != 0).then(|| format!("2023-01-{:02}", i % 28 + 1));
            json!({"type": "customer", "customer_id": format!("K{i:03}"),
                   "country": countries[(i * 7) % 5], "first_name": format!("N{}", (i * 37) % 101),
                   "created_at": created})
            .to_string()
        })
        .collect();
    let (status, res) = send(
        s.req(Method::POST, &p("/batch"), Some(t))
            .header("content-type", "application/x-ndjson")
            .body(body.join("\n")),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["accepted"], 250, "{res}");
    let (status, seg) = s
        .post(
            &p("/segments"),
            t,
            json!({"name": "many", "kind": "customer", "rule": "customer_id STARTS WITH 'K'"}),
        )
        .await;
    assert_eq!(status, 201, "{seg}");
    assert_eq!(seg["members"], 250);

    // GB, DE and FR: a null country is not "not US" (comparisons with
    // null are false).
    let not_us = "country%20!%3D%20%27US%27";
    let tables = [
        ("sort=country", 250),
        ("sort=created_at&order=desc", 250),
        (&*format!("sort=first_name&filter={not_us}"), 150),
        (&*format!("filter={not_us}"), 150),
    ];
    for (query, total) in tables {
        let built = snapshot(&s).await.tables_built();
        let (status, big) = s
            .get(&p(&format!("/segments/many/members?{query}&limit=1000")), t)
            .await;
        assert_eq!(status, 200, "{query}: {big}");
        assert_eq!(big["total"], total, "{query}");
        assert_eq!(big["next_cursor"], Value::Null, "{query}");
        let all = big["members"].as_array().unwrap().clone();
        assert_eq!(all.len(), total, "{query}");

        let mut walked = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/segments/many/members?{query}&limit=7&cursor={c}"),
                None => format!("/segments/many/members?{query}&limit=7"),
            };
            let (status, page) = s.get(&p(&path), t).await;
            assert_eq!(status, 200, "{query}: {page}");
            assert_eq!(page["total"], total, "{query}");
            walked.extend(page["members"].as_array().unwrap().iter().cloned());
            assert!(walked.len() <= total, "{query}: more rows than members");
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(walked, all, "{query}");
        // One table built for the big page, and kept for every page after.
        assert_eq!(snapshot(&s).await.tables_built(), built + 1, "{query}");
    }

    // The order itself: countries ascending, nulls last, ties by id.
    let (_, big) = s
        .get(&p("/segments/many/members?sort=country&limit=1000"), t)
        .await;
    let keys: Vec<(Option<String>, String)> = big["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["country"].as_str().map(str::to_owned),
                m["customer_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want = keys.clone();
    want.sort_by(|a, b| match (&a.0, &b.0) {
        (None, None) => a.1.cmp(&b.1),
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.1.cmp(&b.1)),
    });
    assert_eq!(keys, want);
    assert_eq!(keys.iter().filter(|k| k.0.is_none()).count(), 50);
    s.stop().await;
}

/// Tier schemes, the distribution, and a scheme change moving a customer.
async fn tiers(backend: Backend) {
    let s = Server::start_on(backend).await;
    let t = &s.admin;
    let (status, list) = s.get(&p("/tiers"), t).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list,
        json!([
            {"marketplace": "US", "metric": "revenue", "tiers": [
                {"name": "Gold", "threshold": "109.99"}, {"name": "Silver", "threshold": "0"}]},
            {"marketplace": null, "metric": "orders", "tiers": [
                {"name": "Repeat", "threshold": "1"}, {"name": "Any", "threshold": "-1"}]}
        ])
    );

    let distribution = |d: &Value| -> BTreeMap<String, u64> {
        d["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["tier"].as_str().unwrap_or("(none)").to_owned(),
                    s["customers"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let (status, d) = s.get(&p("/tiers/distribution"), t).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["total"], 4);
    let slices = distribution(&d);
    assert_eq!(slices.values().sum::<u64>(), 4);
    let want: BTreeMap<String, u64> = [("Silver", 1), ("Repeat", 1), ("Any", 1), ("(none)", 1)]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    assert_eq!(slices, want);

    // US by orders: C1 (3 orders) is Big; C3 (none) exceeds no threshold.
    let before = all_events(&s).await.len();
    let (status, scheme) = s
        .put(
            &p("/tiers/US"),
            t,
            json!({"metric": "orders", "tiers": [
                {"name": "Small", "threshold": 0}, {"name": "Big", "threshold": "2"}]}),
        )
        .await;
    assert_eq!(status, 200, "{scheme}");
    assert_eq!(scheme["tiers"][0]["name"], "Big");
    let (_, c1) = s.get(&p("/customers/C1"), t).await;
    assert_eq!(c1["tier"], "Big");
    let (_, c3) = s.get(&p("/customers/C3"), t).await;
    assert_eq!(c3["tier"], Value::Null);
    let events = all_events(&s).await;
    let new = &events[before..];
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["type"], "tier");
    assert_eq!(new[0]["entity"], "C1");
    assert_eq!(new[0]["from"], "Silver");
    assert_eq!(new[0]["to"], "Big");
    let (_, d) = s.get(&p("/tiers/distribution"), t).await;
    assert_eq!(d["total"], 4);
    assert_eq!(distribution(&d).get("Big"), Some(&1));
    assert_eq!(distribution(&d).get("Silver"), None);

    // Deleted: US customers fall back to the orders scheme (C1: 3 > 1 is
    // Repeat; C3: 0 > -1 is Any).
    let (status, _) = s.delete(&p("/tiers/US"), t).await;
    assert_eq!(status, 204);
    let (status, _) = s.delete(&p("/tiers/US"), t).await;
    assert_eq!(status, 404);
    let (_, list) = s.get(&p("/tiers"), t).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["marketplace"], Value::Null);
    let (_, c1) = s.get(&p("/customers/C1"), t).await;
    assert_eq!(c1["tier"], "Repeat");
    let (_, c3) = s.get(&p("/customers/C3"), t).await;
    assert_eq!(c3["tier"], "Any");
    let (_, d) = s.get(&p("/tiers/distribution"), t).await;
    let want: BTreeMap<String, u64> = [("Repeat", 2), ("Any", 2)]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    assert_eq!(distribution(&d), want);
    s.stop().await;
}

/// The event log pages by cursor; the stream resumes after an id.
async fn events(backend: Backend) {
    let s = Server::start_on(backend).await;
    let t = &s.admin;
    // 2 enters (C1, C2) ...
    let (status, _) = s
        .post(
            &p("/segments"),
            t,
            json!({"name": "spenders", "kind": "customer", "rule": "amount_spent > 20"}),
        )
        .await;
    assert_eq!(status, 201);
    // ... 3 for C3's order (spenders, sock-buyers, tier) ...
    let (_, applied) = s
        .post(
            &p("/orders"),
            t,
            order("O20", "2024-06-29T10:00:00Z", "C3", &[("P1", 3, "10.00")]),
        )
        .await;
    assert_eq!(applied["events"], 3);
    // ... and 3 back when it is refunded.
    let (_, applied) = s
        .put(&p("/orders/O20/status"), t, json!({"status": "refunded"}))
        .await;
    assert_eq!(applied["events"], 3);

    let big = all_events(&s).await;
    assert_eq!(big.len(), 8);
    let big_ids: Vec<i64> = big.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(big_ids.windows(2).all(|w| w[0] < w[1]), "{big_ids:?}");

    let mut after = 0;
    let mut paged = Vec::new();
    for _ in 0..10 {
        let (status, page) = s
            .get(&p(&format!("/events?after={after}&limit=2")), t)
            .await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        let next = page["next_after"].as_i64().unwrap();
        if events.is_empty() {
            assert_eq!(next, after);
            break;
        }
        assert_eq!(next, events.last().unwrap()["id"].as_i64().unwrap());
        paged.extend(events.iter().cloned());
        after = next;
    }
    assert_eq!(paged, big);

    let kinds: Vec<(&str, &str)> = big
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["segment"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| k.0 == "enter").count(), 4);
    assert_eq!(kinds.iter().filter(|k| k.0 == "exit").count(), 2);
    assert_eq!(kinds.iter().filter(|k| k.0 == "tier").count(), 2);

    // The store's stream shows the events of a segment created after it
    // opened.
    let mut stream = s.sse(&p("/events/stream"), t, None).await;
    let (status, _) = s
        .post(
            &p("/segments"),
            t,
            json!({"name": "us", "kind": "customer", "rule": "country = 'US'"}),
        )
        .await;
    assert_eq!(status, 201);
    let mut entered = Vec::new();
    for _ in 0..2 {
        let ev = stream
            .next(WAIT)
            .await
            .expect("an event of the new segment");
        assert_eq!(ev.data["segment"], "us");
        entered.push(ev.data["entity"].as_str().unwrap().to_owned());
    }
    assert_eq!(entered, ["C1", "C3"]);
    drop(stream);
    let (status, _) = s.delete(&p("/segments/us"), t).await;
    assert_eq!(status, 200);

    // Resume after the third event: exactly the five after it.
    let mut stream = s.sse(&p("/events/stream"), t, Some(big_ids[2])).await;
    for want in &big[3..] {
        let ev = stream.next(WAIT).await.expect("a replayed event");
        assert_eq!(ev.id, want["id"].as_i64());
        assert_eq!(ev.event.as_deref(), want["type"].as_str());
        assert_eq!(&ev.data, want);
    }
    // The deleted segment's events stay in the log; an administrator still
    // sees them (nobody else has a right left to read them by).
    for entity in ["C1", "C3"] {
        let ev = stream.next(WAIT).await.expect("a deleted segment's event");
        assert_eq!(ev.data["segment"], "us");
        assert_eq!(ev.data["entity"], entity);
    }
    assert!(stream.next(Duration::from_millis(300)).await.is_none());
    // A user with every module right, but no administrator, sees only the
    // segments that exist (here the store's imported ones and tiers).
    let (dan, dan_token) = s.user("dan@example.com").await;
    s.grant(dan, "edit", "edit", "edit").await;
    let (status, log) = s
        .get(&p(&format!("/events?after={}", big_ids[2])), &dan_token)
        .await;
    assert_eq!(status, 200, "{log}");
    // (`spenders` is the administrator's own, private segment.)
    let readable: Vec<&Value> = big[3..]
        .iter()
        .filter(|e| e["segment"] != "spenders")
        .collect();
    let shown: Vec<&Value> = log["events"].as_array().unwrap().iter().collect();
    assert!(!readable.is_empty());
    assert_eq!(shown, readable, "{log}");
    // And then live: C2 leaves spenders when O4 (12.50) is cancelled
    // (22.50 − 12.50 = 10.00), and with one order left (O9) drops from
    // Repeat to Any.
    let (_, applied) = s
        .put(&p("/orders/O4/status"), t, json!({"status": "cancelled"}))
        .await;
    assert_eq!(applied["events"], 2);
    let mut live = Vec::new();
    for _ in 0..2 {
        let ev = stream.next(WAIT).await.expect("a live event");
        assert!(ev.id.unwrap() > *big_ids.last().unwrap());
        assert_eq!(ev.data["entity"], "C2");
        live.push((
            ev.event.unwrap(),
            ev.data["segment"].as_str().unwrap_or("-").to_owned(),
            ev.data["to"].as_str().unwrap_or("-").to_owned(),
        ));
    }
    live.sort();
    assert_eq!(
        live,
        [
            ("exit".to_owned(), "spenders".to_owned(), "-".to_owned()),
            ("tier".to_owned(), "-".to_owned(), "Any".to_owned()),
        ]
    );
    assert!(stream.next(Duration::from_millis(200)).await.is_none());
    drop(stream);

    // `?after=` works like the header.
    let mut stream = s
        .sse(&p(&format!("/events/stream?after={}", big_ids[6])), t, None)
        .await;
    let ev = stream.next(WAIT).await.unwrap();
    assert_eq!(ev.id, Some(big_ids[7]));
    drop(stream);
    s.stop().await;
}

/// A window ends while nobody writes: the member exits at the true
/// instant, caused by time.
async fn expiry(backend: Backend) {
    let s = Server::start_on(backend).await;
    let t = &s.admin;
    let (status, seg) = s
        .post(
            &p("/segments"),
            t,
            json!({"name": "recent", "kind": "customer", "rule": "purchased(since: -30d)"}),
        )
        .await;
    assert_eq!(status, 201, "{seg}");
    // C1 (O3, 2024-06-25T08:00) and C2 (O4, 2024-06-20T10:00).
    assert_eq!(seg["members"], 2);
    let mut stream = s.sse(&p("/segments/recent/events/stream"), t, None).await;

    // C1's last order leaves the 30-day window right after
    // 2024-07-25T08:00:00; C2 stays, O7 (2024-07-05) having come due.
    s.set_clock("2024-07-25T08:00:01Z");
    let ev = stream
        .next(WAIT)
        .await
        .expect("an exit without any request");
    assert_eq!(ev.event.as_deref(), Some("exit"));
    assert_eq!(ev.data["entity"], "C1");
    assert_eq!(ev.data["change"], Value::Null);
    assert_eq!(ev.data["at"], "2024-07-25T08:00:00.000000001Z");
    assert!(stream.next(Duration::from_millis(200)).await.is_none());
    assert_eq!(members_count(&s, t, "recent").await, 1);
    let (_, page) = s.get(&p("/segments/recent/members"), t).await;
    assert_eq!(ids(&page["members"], "customer_id"), ["C2"]);

    // Then C2, whose O7 leaves the window after 2024-08-04T00:00:00.
    s.set_clock("2024-08-10T00:00:00Z");
    let ev = stream.next(WAIT).await.expect("the second exit");
    assert_eq!(ev.data["entity"], "C2");
    assert_eq!(ev.data["type"], "exit");
    assert_eq!(ev.data["change"], Value::Null);
    assert_eq!(ev.data["at"], "2024-08-04T00:00:00.000000001Z");
    drop(stream);
    assert_eq!(members_count(&s, t, "recent").await, 0);
    let events = segment_events(&s, "recent").await;
    let exits: Vec<&Value> = events.iter().filter(|e| e["type"] == "exit").collect();
    assert_eq!(exits.len(), 2);
    s.stop().await;
}

/// Everything a user made survives a restart on the same database.
async fn restart(backend: Backend) {
    let s = Server::start_on(backend).await;
    let (ann, ann_token) = s.user("ann@example.com").await;
    s.grant(ann, "read", "edit", "read").await;
    let (bob, bob_token) = s.user("bob@example.com").await;
    s.grant(bob, "none", "read", "none").await;
    let (status, _) = s
        .post(
            &p("/segments"),
            &ann_token,
            json!({"name": "spenders", "kind": "customer", "rule": "amount_spent > 20", "description": "Ann's"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = s
        .put(
            &p(&format!("/segments/spenders/shares/{bob}")),
            &ann_token,
            json!({"read": true}),
        )
        .await;
    assert_eq!(status, 200);
    // 2 on 2024-06-30, 3 once C3 buys, 2 again on 2024-07-01 when it is
    // refunded.
    let (_, applied) = s
        .post(
            &p("/orders"),
            &ann_token,
            order("O20", "2024-06-29T10:00:00Z", "C3", &[("P1", 3, "10.00")]),
        )
        .await;
    assert_eq!(applied["events"], 3);
    s.set_clock("2024-07-01T12:00:00Z");
    let (_, applied) = s
        .put(
            &p("/orders/O20/status"),
            &ann_token,
            json!({"status": "refunded"}),
        )
        .await;
    assert_eq!(applied["events"], 3);
    let (_, applied) = s
        .post(
            &p("/orders"),
            &ann_token,
            order("O21", "2024-07-01T10:00:00Z", "C4", &[("P3", 1, "49.99")]),
        )
        .await;
    // C4 (no orders) spends 49.99: enters spenders; one order exceeds no
    // tier of the fallback scheme but Any.
    assert_eq!(applied["events"], 1, "{applied}");
    let (_, stats_before) = s
        .get(&p("/segments/spenders/stats?days=2"), &ann_token)
        .await;
    let events_before = all_events(&s).await;
    let (status, tokens_before) = s.get("/api/v1/tokens", &ann_token).await;
    assert_eq!(status, 200);
    assert_eq!(
        stats_before["counts"],
        json!([{"date": "2024-06-30", "count": 3}, {"date": "2024-07-01", "count": 3}])
    );
    let admin = s.admin.clone();
    let db = s.stop_keeping_data().await;

    let s = Server::start_in(db, Options::on(backend)).await;
    s.set_clock("2024-07-01T12:00:00Z");
    // Old tokens work.
    for (token, email) in [
        (&ann_token, "ann@example.com"),
        (&bob_token, "bob@example.com"),
        (&admin, "admin@example.com"),
    ] {
        let (status, me) = s.get("/api/v1/me", token).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["email"], email);
    }
    let (_, tokens) = s.get("/api/v1/tokens", &ann_token).await;
    assert_eq!(tokens, tokens_before);
    // The segment, its owner, description and count.
    let (status, seg) = s.get(&p("/segments/spenders"), &ann_token).await;
    assert_eq!(status, 200, "{seg}");
    assert_eq!(seg["members"], 3);
    assert_eq!(seg["owner"]["email"], "ann@example.com");
    assert_eq!(seg["description"], "Ann's");
    assert_eq!(seg["rights"]["manage"], true);
    let (_, page) = s.get(&p("/segments/spenders/members"), &ann_token).await;
    assert_eq!(ids(&page["members"], "customer_id"), ["C1", "C2", "C4"]);
    // Bob's share.
    let (status, seg) = s.get(&p("/segments/spenders"), &bob_token).await;
    assert_eq!(status, 200, "{seg}");
    assert_eq!(seg["members"], 3);
    assert_eq!(seg["rights"]["manage"], false);
    let (_, shares) = s.get(&p("/segments/spenders/shares"), &ann_token).await;
    assert_eq!(shares.as_array().unwrap().len(), 1);
    assert_eq!(shares[0]["user"]["id"], bob);
    // Counts, history, events, orders, tiers.
    assert_eq!(members_count(&s, &admin, "sock-buyers").await, 2);
    let (_, stats) = s
        .get(&p("/segments/spenders/stats?days=2"), &ann_token)
        .await;
    assert_eq!(stats["counts"], stats_before["counts"]);
    assert_eq!(all_events(&s).await, events_before);
    let (_, o20) = s.get(&p("/orders/O20"), &admin).await;
    assert_eq!(o20["status"], "refunded");
    let (_, c1) = s.get(&p("/customers/C1"), &admin).await;
    assert_eq!(c1["tier"], "Silver");
    let (_, c3) = s.get(&p("/customers/C3"), &admin).await;
    assert_eq!(c3["tier"], Value::Null);
    assert_eq!(c3["number_of_orders"], 0);
    // And it goes on: the next change's events follow the old ones.
    let (_, applied) = s
        .put(
            &p("/orders/O21/status"),
            &ann_token,
            json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(applied["events"], 1);
    let after = all_events(&s).await;
    assert_eq!(after.len(), events_before.len() + 1);
    assert_eq!(after.last().unwrap()["entity"], "C4");
    assert_eq!(after.last().unwrap()["type"], "exit");
    assert!(
        after[events_before.len()]["id"].as_i64() > events_before.last().unwrap()["id"].as_i64()
    );
    assert!(
        after[events_before.len()]["change"].as_u64()
            > events_before.last().unwrap()["change"].as_u64()
    );
    // Revoking still works on the restarted server.
    let (status, _) = s
        .delete(&p(&format!("/segments/spenders/shares/{bob}")), &ann_token)
        .await;
    assert_eq!(status, 204);
    let (status, _) = s.get(&p("/segments/spenders"), &bob_token).await;
    assert_eq!(status, 404);
    s.stop().await;
}
