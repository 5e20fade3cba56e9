//! The server, started for real on a loopback port, spoken to over HTTP.

mod authz;
mod flows;
mod limits;
mod support;

mod smoke {
    use super::support::*;
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn login_preview_and_a_problem() {
        let s = Server::start().await;
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
