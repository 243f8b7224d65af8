//! `/metrics` through the real router on a loopback listener: off the public listeners by
//! default; with `[metrics] authorized = true`, served to a caller allowed
//! `gatehouse:GetMetrics` and refused (401/403, no figures) to anyone else; on the metrics
//! listener without credentials. The counters move with the calls made between two scrapes:
//! decisions by family and outcome, latency by face, cache lookups, audit batches, an
//! upstream that cannot be reached, a budget refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ACCOUNT, Api, Creds};
use gatehouse_server::metrics::MetricsSettings;
use serde_json::json;
use std::collections::HashMap;

const METRICS_READER: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["gatehouse:GetMetrics","iam:GetUser","ai:*"],"Resource":"*"}]}"#;
const GET_USER_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["iam:GetUser","ai:*"],"Resource":"*"}]}"#;

fn bearer(c: &Creds) -> String {
    format!("{}:{}", c.key_id, c.secret)
}

/// Series name with labels → value, from the text exposition.
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse::<f64>().unwrap())
        })
        .collect()
}

async fn scrape(base: &str, who: Option<&Creds>) -> (u16, String) {
    let mut rb = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(c) = who {
        rb = rb.bearer_auth(bearer(c));
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn public_listeners_do_not_serve_metrics_unless_configured() {
    let (state, _dir) = common::state().await;
    let base = common::serve_root(&state).await;
    let reader = Creds::user(&state, "reader", METRICS_READER).await;
    let (status, body) = scrape(&base, Some(&reader)).await;
    assert_eq!(status, 404);
    assert!(!body.contains("gatehouse_"), "{body}");
}

#[tokio::test]
async fn counters_move_with_calls_and_only_an_allowed_caller_reads_them() {
    let (state, _dir) = common::state().await;
    state.metrics.configure(MetricsSettings {
        listen: None,
        authorized: true,
    });
    // One request a minute for bob at the gateway: his second model call is refused.
    state.gateway.configure(
        serde_json::from_value(json!({"budgets": [
            {"principal": "arn:gatehouse:iam::*:user/bob", "requests_per_minute": 1}
        ]}))
        .unwrap(),
    );
    // A deployment whose endpoint nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    state
        .store
        .put_deployment(
            ACCOUNT,
            &gatehouse_store::NewDeployment {
                model_id: "gone".into(),
                provider: "vllm".into(),
                base_url: dead,
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    let base = common::serve_root(&state).await;
    let api = Api::new(base.clone());
    let reader = Creds::user(&state, "reader", METRICS_READER).await;
    let bob = Creds::user(&state, "bob", GET_USER_ONLY).await;

    // Refused: no credentials, and a caller without gatehouse:GetMetrics.
    let (status, body) = scrape(&base, None).await;
    assert_eq!(status, 401);
    assert!(!body.contains("gatehouse_"), "{body}");
    let (status, body) = scrape(&base, Some(&bob)).await;
    assert_eq!(status, 403);
    assert!(!body.contains("gatehouse_"), "{body}");

    let (status, text) = scrape(&base, Some(&reader)).await;
    assert_eq!(status, 200, "{text}");
    let before = parse(&text);

    assert_eq!(api.iam(&bob, "GetUser", &[]).await.status, 200);
    assert_eq!(
        api.iam(&bob, "ListUsers", &[]).await.code().as_deref(),
        Some("AccessDenied")
    );
    let http = reqwest::Client::new();
    let call = |model: &'static str| {
        http.post(format!("{base}/v1/chat/completions"))
            .bearer_auth(bearer(&bob))
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    assert_eq!(call("gone").await.unwrap().status().as_u16(), 502);
    assert_eq!(call("gone").await.unwrap().status().as_u16(), 429);

    let (status, text) = scrape(&base, Some(&reader)).await;
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE gatehouse_request_duration_seconds histogram"));
    let after = parse(&text);
    let moved = |series: &str| delta(&before, &after, series);

    assert!(moved(r#"gatehouse_decisions_total{decision="Allow",service="iam"}"#) >= 1.0);
    assert!(moved(r#"gatehouse_decisions_total{decision="ImplicitDeny",service="iam"}"#) >= 1.0);
    // The scrape itself is a decision too.
    assert!(moved(r#"gatehouse_decisions_total{decision="Allow",service="gatehouse"}"#) >= 1.0);
    assert!(moved(r#"gatehouse_decisions_total{decision="Allow",service="ai"}"#) >= 2.0);
    assert!(moved(r#"gatehouse_request_duration_seconds_count{face="iam"}"#) >= 2.0);
    assert!(moved(r#"gatehouse_request_duration_seconds_count{face="gateway"}"#) >= 2.0);
    assert_eq!(
        moved(r#"gatehouse_upstream_errors_total{kind="unreachable",model="gone"}"#),
        1.0
    );
    assert_eq!(moved("gatehouse_budget_refusals_total"), 1.0);
    assert!(
        moved(r#"gatehouse_cache_lookups_total{cache="compiled_principal",result="hit"}"#) >= 1.0
    );
    assert!(
        moved(r#"gatehouse_cache_lookups_total{cache="access_key",result="miss"}"#)
            + moved(r#"gatehouse_cache_lookups_total{cache="access_key",result="hit"}"#)
            >= 2.0
    );
    // Reads and denials reach the chain through the control plane's group commit.
    assert!(
        moved(r#"gatehouse_audit_batch_commits_total{outcome="committed",queue="control"}"#) >= 1.0
    );
    assert!(after.contains_key(r#"gatehouse_audit_queue_depth{queue="gateway"}"#));
}

#[tokio::test]
async fn the_metrics_listener_serves_without_credentials_and_nothing_else() {
    let (state, _dir) = common::state().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gatehouse_server::metrics::serve(
        state.clone(),
        listener,
        std::future::pending(),
    ));
    let (status, text) = scrape(&base, None).await;
    assert_eq!(status, 200);
    assert!(text.contains("gatehouse_audit_queue_depth"), "{text}");
    // Not the API: the Query API and the gateway are not reachable here.
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
