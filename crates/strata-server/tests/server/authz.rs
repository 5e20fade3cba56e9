//! Who may call what: every route of the router, for ten kinds of caller,
//! as one table checked by one loop.
//!
//! The callers, in the order of the table's columns:
//!
//! | column   | token | grant in `shop` (products/customers/tiers) | share of `owned`      |
//! |----------|-------|--------------------------------------------|-----------------------|
//! | anon     | none  | -                                          | -                     |
//! | noaccess | yes   | none at all                                | -                     |
//! | nomodule | yes   | edit / none / none                         | read, edit, delete    |
//! | reader   | yes   | none / read / read                         | read                  |
//! | editor   | yes   | none / edit / none                         | edit                  |
//! | deleter  | yes   | none / edit / none                         | delete                |
//! | expired  | yes   | none / edit / none                         | edit, delete; expired |
//! | revoked  | yes   | none / edit / none                         | edit, delete; revoked |
//! | owner    | yes   | edit / edit / edit                         | (owns it)             |
//! | admin    | yes   | (administrator)                            | -                     |
//!
//! `owned` is a customer segment the owner created through the API;
//! `sock-buyers` (customer) and `socks` (product) are imported, so they
//! belong to the store. Rows that change or delete a segment, product,
//! customer, tier scheme, token, share or access work on a target made
//! fresh for each cell (`{t}`), so that no cell spoils another.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::*;

both!(workers = 4; every_route_for_every_kind_of_caller, a_revoked_share_ends_an_open_event_stream);
both!(
    names_of_segments_one_cannot_see_do_not_leak,
    an_order_shows_its_customer_only_to_customer_readers,
    a_share_that_grants_nothing_is_refused
);

const ROLES: [&str; 10] = [
    "anon", "noaccess", "nomodule", "reader", "editor", "deleter", "expired", "revoked", "owner",
    "admin",
];

// The expected statuses of the common cases, one per column:
//                                anon noacc nomod reader editor delet expir revok owner admin
/// Any authenticated caller.
const ANY_USER: [u16; 10] = [401, 200, 200, 200, 200, 200, 200, 200, 200, 200];
/// Anyone, authenticated or not.
const ANYONE: [u16; 10] = [200, 200, 200, 200, 200, 200, 200, 200, 200, 200];
/// Administrators only, outside stores.
const ADMIN: [u16; 10] = [401, 403, 403, 403, 403, 403, 403, 403, 403, 200];
/// Anyone with access to the store.
const IN_STORE: [u16; 10] = [401, 404, 200, 200, 200, 200, 200, 200, 200, 200];
/// Administrators only, inside a store (no access: the store is 404).
const ADMIN_IN_STORE: [u16; 10] = [401, 404, 403, 403, 403, 403, 403, 403, 403, 200];
/// `read` (or more) on product segments.
const PRODUCT_READ: [u16; 10] = [401, 404, 200, 403, 403, 403, 403, 403, 200, 200];
/// `edit` on product segments.
const PRODUCT_EDIT: [u16; 10] = PRODUCT_READ;
/// `read` (or more) on customer segments.
const CUSTOMER_READ: [u16; 10] = [401, 404, 403, 200, 200, 200, 200, 200, 200, 200];
/// `edit` on customer segments.
const CUSTOMER_EDIT: [u16; 10] = [401, 404, 403, 403, 200, 200, 200, 200, 200, 200];
/// `read` (or more) on customer or on product segments.
const EITHER_READ: [u16; 10] = [401, 404, 200, 200, 200, 200, 200, 200, 200, 200];
/// `edit` on customer or on product segments.
const EITHER_EDIT: [u16; 10] = [401, 404, 200, 403, 200, 200, 200, 200, 200, 200];
/// `read` (or more) on tiers.
const TIERS_READ: [u16; 10] = [401, 404, 403, 200, 403, 403, 403, 403, 200, 200];
/// `edit` on tiers.
const TIERS_EDIT: [u16; 10] = [401, 404, 403, 403, 403, 403, 403, 403, 200, 200];
/// Reading the owner's segment: any live share; 403 without the module.
const READ_OWNED: [u16; 10] = [401, 404, 403, 200, 200, 200, 404, 404, 200, 200];
/// Changing it: an edit share and the module's edit.
const EDIT_OWNED: [u16; 10] = [401, 404, 403, 403, 200, 403, 404, 404, 200, 200];
/// Deleting it: a delete share and the module's edit.
const DELETE_OWNED: [u16; 10] = [401, 404, 403, 403, 403, 200, 404, 404, 200, 200];
/// Managing its shares: its owner and administrators.
const MANAGE_OWNED: [u16; 10] = [401, 404, 403, 403, 403, 403, 404, 404, 200, 200];
/// Naming it in a rule: as reading it, but a segment one may not see is
/// an unknown name in a rule (422), as if it did not exist.
const NAME_OWNED: [u16; 10] = [401, 404, 403, 200, 200, 200, 422, 422, 200, 200];
/// Nothing by that name, for anyone.
const NOWHERE: [u16; 10] = [401, 404, 404, 404, 404, 404, 404, 404, 404, 404];

/// The same cells with another success status.
const fn ok(mut e: [u16; 10], status: u16) -> [u16; 10] {
    let mut i = 0;
    while i < e.len() {
        if e[i] == 200 {
            e[i] = status;
        }
        i += 1;
    }
    e
}

#[derive(Clone, Copy)]
enum Body {
    None,
    Json(&'static str),
    Ndjson(&'static str),
}

/// What a row needs made before each of its cells. Placeholders in paths
/// and bodies: `{t}` a name unique to the cell, `{by}` the bystander's
/// user id, `{tok}` a token id, `{pw}` the password.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Nothing,
    /// A customer segment `{t}` of the owner's, shared as `owned` is.
    Segment,
    /// A product `{t}`.
    Product,
    /// A customer `{t}`.
    Customer,
    /// A tier scheme for marketplace `{t}`.
    Tiers,
    /// The bystander's share of `owned`.
    Share,
    /// The bystander's access to `shop`.
    Access,
    /// A token of the caller's own, `{tok}`.
    OwnToken,
    /// A token of the administrator's, `{tok}`.
    AdminToken,
    /// `sock-buyers` with its imported rule (an earlier cell changed it).
    SockBuyers,
}

struct Row {
    method: &'static str,
    path: &'static str,
    body: Body,
    fresh: Fresh,
    expect: [u16; 10],
}

const fn row(method: &'static str, path: &'static str, expect: [u16; 10]) -> Row {
    Row {
        method,
        path,
        body: Body::None,
        fresh: Fresh::Nothing,
        expect,
    }
}

const fn json(
    method: &'static str,
    path: &'static str,
    body: &'static str,
    expect: [u16; 10],
) -> Row {
    Row {
        method,
        path,
        body: Body::Json(body),
        fresh: Fresh::Nothing,
        expect,
    }
}

impl Row {
    const fn on(self, fresh: Fresh) -> Row {
        Row { fresh, ..self }
    }
}

macro_rules! shop {
    ($p:literal) => {
        concat!("/api/v1/stores/shop", $p)
    };
}

const ROWS: &[Row] = &[
    // Accounts.
    json(
        "POST",
        "/api/v1/auth/login",
        r#"{"email": "bystander@example.com", "password": "{pw}"}"#,
        ANYONE,
    ),
    row("POST", "/api/v1/auth/logout", ok(ANY_USER, 204)),
    row("GET", "/api/v1/me", ANY_USER),
    row("GET", "/api/v1/tokens", ANY_USER),
    json(
        "POST",
        "/api/v1/tokens",
        r#"{"name": "matrix"}"#,
        ok(ANY_USER, 201),
    ),
    row("DELETE", "/api/v1/tokens/{tok}", ok(ANY_USER, 204)).on(Fresh::OwnToken),
    // Someone else's token is no token of yours.
    row(
        "DELETE",
        "/api/v1/tokens/{tok}",
        [401, 404, 404, 404, 404, 404, 404, 404, 404, 204],
    )
    .on(Fresh::AdminToken),
    row("GET", "/api/v1/users", ADMIN),
    json(
        "POST",
        "/api/v1/users",
        r#"{"email": "{t}@example.com", "password": "{pw}"}"#,
        ok(ADMIN, 201),
    ),
    row("GET", "/api/v1/stores", ANY_USER),
    json(
        "POST",
        "/api/v1/stores",
        r#"{"name": "{t}"}"#,
        ok(ADMIN, 201),
    ),
    row("GET", shop!(""), IN_STORE),
    row("GET", "/api/v1/stores/nowhere", NOWHERE),
    row("GET", shop!("/access"), ADMIN_IN_STORE),
    json(
        "PUT",
        shop!("/access/{by}"),
        r#"{"product_segments": "none", "customer_segments": "read", "tiers": "none"}"#,
        ADMIN_IN_STORE,
    ),
    row("DELETE", shop!("/access/{by}"), ok(ADMIN_IN_STORE, 204)).on(Fresh::Access),
    // Data in and out.
    json(
        "POST",
        shop!("/products"),
        r#"{"sku": "{t}", "title": "Matrix", "category": "Home > Matrix"}"#,
        PRODUCT_EDIT,
    ),
    row("GET", shop!("/products/P1"), PRODUCT_READ),
    json(
        "PATCH",
        shop!("/products/{t}"),
        r#"{"inventory": 7}"#,
        PRODUCT_EDIT,
    )
    .on(Fresh::Product),
    row("DELETE", shop!("/products/{t}"), PRODUCT_EDIT).on(Fresh::Product),
    json(
        "POST",
        shop!("/customers"),
        r#"{"customer_id": "{t}"}"#,
        CUSTOMER_EDIT,
    ),
    row("GET", shop!("/customers/C1"), CUSTOMER_READ),
    row("DELETE", shop!("/customers/{t}"), CUSTOMER_EDIT).on(Fresh::Customer),
    json(
        "POST",
        shop!("/orders"),
        r#"{"order_id": "{t}", "ordered_at": "2024-06-29T10:00:00Z",
            "lines": [{"sku": "P4", "quantity": 1, "unit_price": "20.00"}]}"#,
        EITHER_EDIT,
    ),
    row("GET", shop!("/orders/O4"), EITHER_READ),
    json(
        "PUT",
        shop!("/orders/O4/status"),
        r#"{"status": "shipped"}"#,
        EITHER_EDIT,
    ),
    json(
        "POST",
        shop!("/daily"),
        r#"{"sku": "P4", "date": "2024-06-01", "sessions": 3}"#,
        PRODUCT_EDIT,
    ),
    Row {
        method: "POST",
        path: shop!("/batch"),
        body: Body::Ndjson("{\"type\": \"product\", \"sku\": \"{t}\"}\n"),
        fresh: Fresh::Nothing,
        expect: PRODUCT_EDIT,
    },
    Row {
        method: "POST",
        path: shop!("/batch"),
        body: Body::Ndjson("{\"type\": \"customer\", \"customer_id\": \"{t}\"}\n"),
        fresh: Fresh::Nothing,
        expect: CUSTOMER_EDIT,
    },
    // Segments.
    row("GET", shop!("/segments"), IN_STORE),
    row("GET", shop!("/segments?kind=customer"), CUSTOMER_READ),
    row("GET", shop!("/segments?kind=product"), PRODUCT_READ),
    json(
        "POST",
        shop!("/segments"),
        r#"{"name": "{t}", "kind": "customer", "rule": "number_of_orders >= 2"}"#,
        ok(CUSTOMER_EDIT, 201),
    ),
    json(
        "POST",
        shop!("/segments"),
        r#"{"name": "{t}", "kind": "product", "rule": "inventory > 0"}"#,
        ok(PRODUCT_EDIT, 201),
    ),
    json(
        "POST",
        shop!("/segments/preview"),
        r#"{"kind": "customer", "rule": "number_of_orders >= 1"}"#,
        CUSTOMER_READ,
    ),
    json(
        "POST",
        shop!("/segments/preview"),
        r#"{"kind": "product", "rule": "inventory > 0"}"#,
        PRODUCT_READ,
    ),
    row("GET", shop!("/segments/owned"), READ_OWNED),
    row("GET", shop!("/segments/sock-buyers"), CUSTOMER_READ),
    row("GET", shop!("/segments/socks"), PRODUCT_READ),
    row("GET", shop!("/segments/no-such"), NOWHERE),
    json(
        "PUT",
        shop!("/segments/{t}"),
        r#"{"rule": "number_of_orders >= 2"}"#,
        EDIT_OWNED,
    )
    .on(Fresh::Segment),
    json(
        "PUT",
        shop!("/segments/{t}"),
        r#"{"description": "changed"}"#,
        EDIT_OWNED,
    )
    .on(Fresh::Segment),
    // The store's own segments: the module right decides.
    json(
        "PUT",
        shop!("/segments/sock-buyers"),
        r#"{"description": "Bought socks"}"#,
        CUSTOMER_EDIT,
    ),
    row("DELETE", shop!("/segments/{t}"), DELETE_OWNED).on(Fresh::Segment),
    row("GET", shop!("/segments/owned/uses"), READ_OWNED),
    row("GET", shop!("/segments/owned/stats"), READ_OWNED),
    row("GET", shop!("/segments/owned/shares"), MANAGE_OWNED),
    json(
        "PUT",
        shop!("/segments/owned/shares/{by}"),
        r#"{"read": true}"#,
        MANAGE_OWNED,
    ),
    row(
        "DELETE",
        shop!("/segments/owned/shares/{by}"),
        ok(MANAGE_OWNED, 204),
    )
    .on(Fresh::Share),
    row(
        "GET",
        shop!("/segments/sock-buyers/shares"),
        [401, 404, 403, 403, 403, 403, 403, 403, 403, 200],
    ),
    row("GET", shop!("/segments/owned/members"), READ_OWNED),
    row("GET", shop!("/segments/owned/members.csv"), READ_OWNED),
    row("GET", shop!("/segments/owned/events"), READ_OWNED),
    row("GET", shop!("/segments/owned/events/stream"), READ_OWNED),
    row("GET", shop!("/templates"), IN_STORE),
    json(
        "POST",
        shop!("/templates/repeat-buyers"),
        r#"{"name": "{t}"}"#,
        ok(CUSTOMER_EDIT, 201),
    ),
    json(
        "POST",
        shop!("/templates/low-stock"),
        r#"{"name": "{t}"}"#,
        ok(PRODUCT_EDIT, 201),
    ),
    // Tiers.
    row("GET", shop!("/tiers"), TIERS_READ),
    json(
        "PUT",
        shop!("/tiers/{t}"),
        r#"{"metric": "orders", "tiers": [{"name": "One", "threshold": 1}]}"#,
        TIERS_EDIT,
    ),
    row("DELETE", shop!("/tiers/{t}"), ok(TIERS_EDIT, 204)).on(Fresh::Tiers),
    row("GET", shop!("/tiers/distribution"), TIERS_READ),
    // The store's events: everyone in the store, filtered to what they see.
    row("GET", shop!("/events"), IN_STORE),
    row("GET", shop!("/events/stream"), IN_STORE),
    // A rule that names a segment shows its members: naming one needs
    // seeing it.
    json(
        "POST",
        shop!("/segments/preview"),
        r#"{"kind": "customer", "rule": "in_segment('owned')"}"#,
        NAME_OWNED,
    ),
    json(
        "POST",
        shop!("/segments"),
        r#"{"name": "{t}", "kind": "customer", "rule": "in_segment('owned') AND number_of_orders >= 2"}"#,
        [401, 404, 403, 403, 201, 201, 422, 422, 201, 201],
    ),
    row(
        "GET",
        shop!("/segments/sock-buyers/members?filter=in_segment(%27owned%27)"),
        NAME_OWNED,
    ),
    json(
        "PUT",
        shop!("/segments/sock-buyers"),
        r#"{"rule": "purchased(in_segment: 'socks') AND NOT in_segment('owned')"}"#,
        [401, 404, 403, 403, 200, 200, 422, 422, 200, 200],
    )
    .on(Fresh::SockBuyers),
];

/// The server and its callers.
struct World {
    s: Server,
    /// Each column's token (`None`: anonymous).
    tokens: Vec<Option<String>>,
    /// Each column's user id (0: anonymous).
    ids: Vec<i64>,
    bystander: i64,
}

impl World {
    fn token(&self, role: &str) -> &str {
        self.tokens[col(role)].as_deref().unwrap()
    }

    fn id(&self, role: &str) -> i64 {
        self.ids[col(role)]
    }

    async fn as_(&self, role: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| ("application/json", serde_json::to_vec(&b).unwrap()));
        self.s
            .call(method, path, Some(self.token(role)), body)
            .await
    }

    /// Shares segment `name` of the owner's as `owned` is shared: the
    /// `expired` column's share ends at `expires_at`; the `revoked`
    /// column's is granted and then revoked.
    async fn share_like_owned(&self, name: &str, expires_at: &str) {
        let shares = [
            ("reader", json!({"read": true})),
            ("editor", json!({"edit": true})),
            ("deleter", json!({"delete": true})),
            (
                "expired",
                json!({"read": true, "edit": true, "delete": true, "expires_at": expires_at}),
            ),
            (
                "revoked",
                json!({"read": true, "edit": true, "delete": true}),
            ),
            (
                "nomodule",
                json!({"read": true, "edit": true, "delete": true}),
            ),
        ];
        for (role, body) in shares {
            let path = format!(
                "/api/v1/stores/shop/segments/{name}/shares/{}",
                self.id(role)
            );
            let r = self.as_("owner", Method::PUT, &path, Some(body)).await;
            assert_eq!(r.status, 200, "sharing {name} with {role}: {}", r.body);
        }
        // The revoked share worked while it lasted.
        let path = format!("/api/v1/stores/shop/segments/{name}");
        let r = self.as_("revoked", Method::GET, &path, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let path = format!("{path}/shares/{}", self.id("revoked"));
        let r = self.as_("owner", Method::DELETE, &path, None).await;
        assert_eq!(r.status, 204, "{}", r.body);
    }

    /// Makes what a row's cell needs; the token id for `{tok}`.
    async fn prepare(&self, fresh: Fresh, t: &str, col: usize) -> String {
        let admin = |method, path: String, body| async move {
            let r = self.as_("admin", method, &path, body).await;
            assert!(r.status.is_success(), "{path}: {}", r.body);
            r
        };
        match fresh {
            Fresh::Nothing => {}
            Fresh::Segment => {
                let r = self
                    .as_(
                        "owner",
                        Method::POST,
                        "/api/v1/stores/shop/segments",
                        Some(
                            json!({"name": t, "kind": "customer", "rule": "number_of_orders >= 1"}),
                        ),
                    )
                    .await;
                assert_eq!(r.status, 201, "{}", r.body);
                // Before the server's clock: expired already.
                self.share_like_owned(t, START).await;
            }
            Fresh::Product => {
                admin(
                    Method::POST,
                    shop!("/products").to_owned(),
                    Some(json!({"sku": t, "category": "Home > Matrix"})),
                )
                .await;
            }
            Fresh::Customer => {
                admin(
                    Method::POST,
                    shop!("/customers").to_owned(),
                    Some(json!({"customer_id": t})),
                )
                .await;
            }
            Fresh::Tiers => {
                admin(
                    Method::PUT,
                    format!("/api/v1/stores/shop/tiers/{t}"),
                    Some(json!({"metric": "orders", "tiers": [{"name": "One", "threshold": 1}]})),
                )
                .await;
            }
            Fresh::Share => {
                admin(
                    Method::PUT,
                    format!(
                        "/api/v1/stores/shop/segments/owned/shares/{}",
                        self.bystander
                    ),
                    Some(json!({"read": true})),
                )
                .await;
            }
            Fresh::Access => {
                admin(
                    Method::PUT,
                    format!("/api/v1/stores/shop/access/{}", self.bystander),
                    Some(json!({"product_segments": "none", "customer_segments": "read", "tiers": "none"})),
                )
                .await;
            }
            Fresh::SockBuyers => {
                admin(
                    Method::PUT,
                    shop!("/segments/sock-buyers").to_owned(),
                    Some(json!({"rule": "purchased(in_segment: 'socks')"})),
                )
                .await;
            }
            Fresh::OwnToken | Fresh::AdminToken => {
                let who = if fresh == Fresh::AdminToken {
                    "admin"
                } else {
                    ROLES[col]
                };
                if who == "anon" {
                    return "1".to_owned();
                }
                let r = self
                    .as_(
                        who,
                        Method::POST,
                        "/api/v1/tokens",
                        Some(json!({"name": t})),
                    )
                    .await;
                assert_eq!(r.status, 201, "{}", r.body);
                return r.body["id"].to_string();
            }
        }
        String::new()
    }
}

fn col(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap()
}

async fn world(backend: Backend) -> World {
    let s = Server::start_on(backend).await;
    let mut tokens = vec![None; ROLES.len()];
    let mut ids = vec![0; ROLES.len()];
    tokens[col("admin")] = Some(s.admin.clone());
    ids[col("admin")] = s.admin_id;
    let grants = [
        ("noaccess", None),
        ("nomodule", Some(("edit", "none", "none"))),
        ("reader", Some(("none", "read", "read"))),
        ("editor", Some(("none", "edit", "none"))),
        ("deleter", Some(("none", "edit", "none"))),
        ("expired", Some(("none", "edit", "none"))),
        ("revoked", Some(("none", "edit", "none"))),
        ("owner", Some(("edit", "edit", "edit"))),
    ];
    for (role, grant) in grants {
        let (id, token) = s.user(&format!("{role}@example.com")).await;
        if let Some((p, c, t)) = grant {
            s.grant(id, p, c, t).await;
        }
        tokens[col(role)] = Some(token);
        ids[col(role)] = id;
    }
    let (bystander, _) = s.user("bystander@example.com").await;
    let w = World {
        s,
        tokens,
        ids,
        bystander,
    };
    let r = w
        .as_(
            "owner",
            Method::POST,
            shop!("/segments"),
            Some(json!({"name": "owned", "kind": "customer", "rule": "number_of_orders >= 1"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["owner"]["id"], w.id("owner"));
    // The expired share ends an hour after the start; it works until the
    // clock passes that.
    w.share_like_owned("owned", "2024-06-30T13:00:00Z").await;
    let r = w
        .as_("expired", Method::GET, shop!("/segments/owned"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rights"]["edit"], true);
    w.s.set_clock("2024-06-30T14:00:00Z");
    w
}

fn fill(template: &str, t: &str, w: &World, tok: &str) -> String {
    template
        .replace("{t}", t)
        .replace("{by}", &w.bystander.to_string())
        .replace("{tok}", tok)
        .replace("{pw}", PASSWORD)
}

/// One cell: its status and content type, and its body unless it is an
/// event stream (which is dropped unread).
async fn cell(w: &World, row: &Row, col: usize, t: &str, tok: &str) -> Reply {
    let method = Method::from_bytes(row.method.as_bytes()).unwrap();
    let mut r =
        w.s.req(method, &fill(row.path, t, w, tok), w.tokens[col].as_deref());
    match row.body {
        Body::None => {}
        Body::Json(b) => {
            r = r
                .header("content-type", "application/json")
                .body(fill(b, t, w, tok));
        }
        Body::Ndjson(b) => {
            r = r
                .header("content-type", "application/x-ndjson")
                .body(fill(b, t, w, tok));
        }
    }
    let res = r.send().await.unwrap();
    let status = res.status();
    let content_type = content_type(&res);
    if status.is_success() && content_type.starts_with("text/event-stream") {
        return Reply {
            status,
            content_type,
            body: Value::Null,
        };
    }
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        content_type,
        body,
    }
}

/// The routes the server serves, from its OpenAPI document (built from the
/// same handlers as the router): `(METHOD, template)`.
async fn routes(s: &Server) -> BTreeSet<(String, String)> {
    let (status, doc) = s.get("/api/v1/openapi.json", &s.admin).await;
    assert_eq!(status, 200);
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Whether a concrete path (query dropped) fits a route template.
fn fits(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap();
    let (a, b): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}

async fn every_route_for_every_kind_of_caller(backend: Backend) {
    let w = world(backend).await;

    // The table covers the router.
    let routes = routes(&w.s).await;
    assert!(routes.len() >= 40, "{routes:?}");
    let uncovered: Vec<String> = routes
        .iter()
        .filter(|(m, t)| !ROWS.iter().any(|r| r.method == m && fits(t, r.path)))
        .map(|(m, t)| format!("{m} {t}"))
        .collect();
    assert!(
        uncovered.is_empty(),
        "routes without a row in the table:\n{}",
        uncovered.join("\n")
    );

    let mut wrong = Vec::new();
    for (i, row) in ROWS.iter().enumerate() {
        for (c, role) in ROLES.iter().enumerate() {
            let t = format!("m{i}-{role}");
            let tok = w.prepare(row.fresh, &t, c).await;
            let reply = cell(&w, row, c, &t, &tok).await;
            let expected = row.expect[c];
            let place = format!(
                "row {i:>2} {:<6} {:<58} as {role:<8}",
                row.method,
                fill(row.path, &t, &w, &tok)
            );
            let mut body = reply.body.to_string();
            body.truncate(300);
            if reply.status.as_u16() != expected {
                wrong.push(format!(
                    "{place}: expected {expected}, got {}: {body}",
                    reply.status.as_u16()
                ));
            } else if expected >= 400 {
                if let Some(why) = reply.not_a_problem() {
                    wrong.push(format!("{place}: {expected} but {why}: {body}"));
                }
            } else {
                let wanted = if row.path.ends_with("/stream") {
                    "text/event-stream"
                } else if row.path.ends_with(".csv") {
                    "text/csv"
                } else if reply.status == StatusCode::NO_CONTENT {
                    ""
                } else {
                    "application/json"
                };
                if !reply.content_type.starts_with(wanted) {
                    wrong.push(format!(
                        "{place}: content type '{}', not {wanted}",
                        reply.content_type
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cells are wrong:\n{}",
        wrong.len(),
        ROWS.len() * ROLES.len(),
        wrong.join("\n")
    );

    // No cell spoiled the fixture: `owned` is the owner's, as it was.
    let r = w
        .as_("owner", Method::GET, shop!("/segments/owned"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["owner"]["id"], w.id("owner"));
    assert_eq!(r.body["rule"], "number_of_orders >= 1");
    w.s.stop().await;
}

/// Reads an event stream until `wanted` appears in it (true), it ends or
/// `wait` passes (false).
async fn stream_shows<B: AsRef<[u8]>>(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    seen: &mut String,
    wanted: &str,
    wait: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    while !seen.contains(wanted) {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(chunk.as_ref())),
            Ok(_) | Err(_) => return false,
        }
    }
    true
}

/// A revoked share is no share at once, for a stream already open too.
async fn a_revoked_share_ends_an_open_event_stream(backend: Backend) {
    let s = Server::start_on(backend).await;
    let (owner, owner_token) = s.user("owner@example.com").await;
    s.grant(owner, "none", "edit", "none").await;
    let (reader, reader_token) = s.user("reader@example.com").await;
    s.grant(reader, "none", "read", "none").await;
    let (status, body) = s
        .post(
            shop!("/segments"),
            &owner_token,
            json!({"name": "big", "kind": "customer", "rule": "amount_spent > 100"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let share = format!("/api/v1/stores/shop/segments/big/shares/{reader}");
    let (status, body) = s.put(&share, &owner_token, json!({"read": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let res = s
        .req(
            Method::GET,
            shop!("/segments/big/events/stream"),
            Some(&reader_token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut stream = res.bytes_stream();
    let mut seen = String::new();

    // While shared, the reader sees a customer enter.
    // P4 is no sock; P1 is one (customers buying it join `sock-buyers`).
    let order = |id: &str, customer: &str, sku: &str| {
        json!({"order_id": id, "ordered_at": "2024-06-29T10:00:00Z", "customer_id": customer,
               "lines": [{"sku": sku, "quantity": 1, "unit_price": "150.00"}]})
    };
    let (status, body) = s
        .post(shop!("/orders"), &owner_token, order("X1", "C4", "P4"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        stream_shows(
            &mut stream,
            &mut seen,
            "\"entity\":\"C4\"",
            Duration::from_secs(10)
        )
        .await,
        "no enter event for C4 in {seen:?}"
    );

    // Revoked: the next member is not shown, and the stream ends.
    let (status, body) = s.delete(&share, &owner_token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s
        .post(shop!("/orders"), &owner_token, order("X2", "C2", "P4"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !stream_shows(
            &mut stream,
            &mut seen,
            "\"entity\":\"C2\"",
            Duration::from_secs(3)
        )
        .await,
        "the revoked reader still sees events: {seen:?}"
    );
    let (status, _) = s.get(shop!("/segments/big"), &reader_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The store's stream of someone whose access is taken away ends too;
    // and so does one whose token is revoked.
    let (watcher, watcher_token) = s.user("watcher@example.com").await;
    s.grant(watcher, "none", "read", "none").await;
    let (status, body) = s
        .post("/api/v1/tokens", &watcher_token, json!({"name": "second"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (second_id, second) = (
        body["id"].as_i64().unwrap(),
        body["token"].as_str().unwrap().to_owned(),
    );
    let open = |token: String| {
        let r = s.req(Method::GET, shop!("/events/stream"), Some(&token));
        async move {
            let res = r.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.bytes_stream()
        }
    };
    let mut by_access = open(watcher_token.clone()).await;
    let mut by_token = open(second.clone()).await;
    let (mut seen_a, mut seen_t) = (String::new(), String::new());
    let (status, body) = s
        .post(shop!("/orders"), &owner_token, order("X3", "C3", "P1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (stream, seen) in [(&mut by_access, &mut seen_a), (&mut by_token, &mut seen_t)] {
        assert!(
            stream_shows(stream, seen, "\"entity\":\"C3\"", Duration::from_secs(10)).await,
            "no event for C3 in {seen:?}"
        );
    }
    // The token revoked: that stream ends, the other goes on.
    let (status, body) = s
        .delete(&format!("/api/v1/tokens/{second_id}"), &second)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s
        .post(shop!("/orders"), &owner_token, order("X4", "C4", "P1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c4 = "\"entity\":\"C4\"";
    assert!(
        stream_shows(&mut by_access, &mut seen_a, c4, Duration::from_secs(10)).await,
        "no event for C4 in {seen_a:?}"
    );
    assert!(
        !stream_shows(&mut by_token, &mut seen_t, c4, Duration::from_secs(3)).await,
        "a stream goes on with a revoked token: {seen_t:?}"
    );
    // The access taken away: the other ends.
    let (status, body) = s
        .delete(&format!("/api/v1/stores/shop/access/{watcher}"), &s.admin)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s
        .post(
            shop!("/customers"),
            &owner_token,
            json!({"customer_id": "C9"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .post(shop!("/orders"), &owner_token, order("X5", "C9", "P1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !stream_shows(
            &mut by_access,
            &mut seen_a,
            "\"entity\":\"C9\"",
            Duration::from_secs(3)
        )
        .await,
        "a stream goes on without access: {seen_a:?}"
    );
    s.stop().await;
}

async fn preview(s: &Server, token: &str, rule: Value) -> (StatusCode, Value) {
    s.post(
        shop!("/segments/preview"),
        token,
        json!({"kind": "customer", "rule": rule}),
    )
    .await
}

async fn uses(s: &Server, token: &str) -> Value {
    let (status, body) = s.get(shop!("/segments/sock-buyers/uses"), token).await;
    assert_eq!(status, 200, "{body}");
    body["segments"].clone()
}

/// A rule, a members filter and the list of uses name only segments the
/// caller can see; a segment one cannot see is as one that does not exist.
async fn names_of_segments_one_cannot_see_do_not_leak(backend: Backend) {
    let s = Server::start_on(backend).await;
    let (owner, owner_token) = s.user("owner@example.com").await;
    s.grant(owner, "edit", "edit", "none").await;
    let (editor, t) = s.user("editor@example.com").await;
    s.grant(editor, "edit", "edit", "none").await;
    for (name, rule) in [
        ("secret", "amount_spent > 100"),
        (
            "hidden-ref",
            "in_segment('sock-buyers') AND amount_spent > 1",
        ),
    ] {
        let (status, body) = s
            .post(
                shop!("/segments"),
                &owner_token,
                json!({"name": name, "kind": "customer", "rule": rule}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // Named in a rule: as a name no segment has.
    let (status, hidden) =
        preview(&s, &t, json!("amount_spent > 1 AND in_segment('secret')")).await;
    assert_eq!(status, 422, "{hidden}");
    let (_, missing) = preview(&s, &t, json!("amount_spent > 1 AND in_segment('secreT')")).await;
    assert_eq!(hidden["code"], "invalid_rule");
    assert_eq!(hidden["detail"], "unknown customer segment 'secret'");
    assert_eq!(missing["detail"], "unknown customer segment 'secreT'");
    assert_eq!(hidden["rule"]["start"], missing["rule"]["start"]);
    assert_eq!(hidden["rule"]["start"], 32, "{hidden}");
    // Suggestions come from the segments one sees only.
    let (_, near) = preview(&s, &t, json!("in_segment('sock-buyer')")).await;
    assert_eq!(
        near["detail"],
        "unknown customer segment 'sock-buyer'; did you mean 'sock-buyers'?"
    );
    // The JSON form, a members filter and a new segment alike.
    let (status, body) = preview(
        &s,
        &t,
        json!({"call": "in_segment", "args": {"segment": "secret"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"], "unknown customer segment 'secret'");
    let (status, body) = s
        .get(
            shop!("/segments/sock-buyers/members?filter=in_segment(%27secret%27)"),
            &t,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = s
        .post(
            shop!("/segments"),
            &t,
            json!({"name": "peek", "kind": "customer", "rule": "in_segment('secret')"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // Its owner and administrators name it freely.
    for token in [&owner_token, &s.admin] {
        let (status, body) = preview(&s, token, json!("in_segment('secret')")).await;
        assert_eq!(status, 200, "{body}");
    }

    // Uses: the owner sees their segment among them, the editor does not.
    assert_eq!(
        uses(&s, &owner_token).await,
        json!(["hidden-ref", "loyal-sock-buyers"])
    );
    assert_eq!(
        uses(&s, &s.admin).await,
        json!(["hidden-ref", "loyal-sock-buyers"])
    );
    assert_eq!(uses(&s, &t).await, json!(["loyal-sock-buyers"]));
    // Deleting what it refers to: counted, not named.
    let (status, body) = s.delete(shop!("/segments/sock-buyers"), &t).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["uses"], json!(["loyal-sock-buyers"]));
    assert!(!body.to_string().contains("hidden-ref"), "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("a segment you cannot see"),
        "{body}"
    );
    let (status, body) = s
        .delete(shop!("/segments/sock-buyers?force=true"), &t)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.to_string().contains("hidden-ref"), "{body}");
    let (status, _) = s.get(shop!("/segments/sock-buyers"), &t).await;
    assert_eq!(status, 200);
    let (status, _) = s.get(shop!("/segments/loyal-sock-buyers"), &t).await;
    assert_eq!(status, 200);
    s.stop().await;
}

/// A share is read at least: one granting nothing is refused, since any
/// share lets its holder read.
async fn a_share_that_grants_nothing_is_refused(backend: Backend) {
    let s = Server::start_on(backend).await;
    let (owner, owner_token) = s.user("owner@example.com").await;
    s.grant(owner, "none", "edit", "none").await;
    let (other, other_token) = s.user("other@example.com").await;
    s.grant(other, "none", "read", "none").await;
    let (status, body) = s
        .post(
            shop!("/segments"),
            &owner_token,
            json!({"name": "mine", "kind": "customer", "rule": "amount_spent > 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let share = format!("/api/v1/stores/shop/segments/mine/shares/{other}");
    let (status, body) = s.put(&share, &owner_token, json!({"read": false})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "empty_share");
    let (status, _) = s.get(shop!("/segments/mine"), &other_token).await;
    assert_eq!(status, 404);
    let (_, shares) = s.get(shop!("/segments/mine/shares"), &owner_token).await;
    assert_eq!(shares, json!([]), "{shares}");
    // `read: false` with edit is still a share that reads (and edits).
    let (status, body) = s
        .put(&share, &owner_token, json!({"read": false, "edit": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["read"], true);
    s.stop().await;
}

/// An order is read with either module's right, but who bought it (and
/// their tier) is customer data: only a customer-segments reader sees it.
async fn an_order_shows_its_customer_only_to_customer_readers(backend: Backend) {
    let s = Server::start_on(backend).await;
    let (seller, seller_token) = s.user("seller@example.com").await;
    s.grant(seller, "edit", "none", "none").await;
    let (clerk, clerk_token) = s.user("clerk@example.com").await;
    s.grant(clerk, "none", "read", "none").await;
    let (tiers, tiers_token) = s.user("tiers@example.com").await;
    s.grant(tiers, "none", "none", "read").await;
    let (status, body) = s
        .post(
            shop!("/orders"),
            &seller_token,
            json!({"order_id": "O40", "ordered_at": "2024-06-29T10:00:00Z", "customer_id": "C4",
                   "lines": [{"sku": "P4", "quantity": 2, "unit_price": "20.00"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, sold) = s.get(shop!("/orders/O40"), &seller_token).await;
    assert_eq!(status, StatusCode::OK, "{sold}");
    assert_eq!(sold["order_id"], "O40");
    assert_eq!(sold["status"], "shipped");
    assert_eq!(sold["lines"][0]["sku"], "P4");
    assert_eq!(sold["lines"][0]["revenue"], "40.00");
    let keys: BTreeSet<&str> = sold
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(!keys.contains("customer_id"), "{sold}");
    assert!(!keys.contains("customer_tier"), "{sold}");

    let (status, full) = s.get(shop!("/orders/O40"), &clerk_token).await;
    assert_eq!(status, StatusCode::OK, "{full}");
    assert_eq!(full["customer_id"], "C4");
    // One order exceeds the fallback scheme's "Any" (-1), not "Repeat" (1).
    assert_eq!(full["customer_tier"], "Any");
    let (_, c4) = s.get(shop!("/customers/C4"), &clerk_token).await;
    assert_eq!(full["customer_tier"], c4["tier"]);
    // The rest is what the seller sees.
    let mut without = full.clone();
    let o = without.as_object_mut().unwrap();
    o.remove("customer_id");
    o.remove("customer_tier");
    assert_eq!(without, sold);

    let r = s
        .call(Method::GET, shop!("/orders/O40"), Some(&tiers_token), None)
        .await;
    r.assert_problem(403, "forbidden");
    s.stop().await;
}
