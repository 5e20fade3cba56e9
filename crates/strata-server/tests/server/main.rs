//! The server, started for real on a loopback port, spoken to over HTTP.

#[macro_use]
mod support;

mod authz;
mod flows;
mod limits;

mod smoke {
    use super::support::*;
    use serde_json::json;

    both!(login_preview_and_a_problem);

    async fn login_preview_and_a_problem(backend: Backend) {
        let s = Server::start_on(backend).await;
        let (status, body) = s
            .post(
                "/api/v1/stores/shop/segments/preview",
                &s.admin,
                json!({"kind": "customer", "rule": "amount_spent > 20"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["count"], 2);
        let (status, body) = s
            .post(
                "/api/v1/stores/shop/segments/preview",
                &s.admin,
                json!({"kind": "customer", "rule": "amount_spend > 20"}),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(body["code"], "invalid_rule");
        assert_eq!(body["rule"]["start"], 0);
        assert_eq!(body["rule"]["end"], 12);
        s.stop().await;
    }
}
