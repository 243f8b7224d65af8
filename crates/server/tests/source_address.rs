//! The source address every face sees, through the real router on loopback (a trusted
//! proxy there): several `X-Forwarded-For` lines are one list read from the right, an
//! unreadable hop leaves the source unknown (no `aws:SourceIp`: address-allowing statements
//! do not match; the audit record says so), and the IAM/STS Query API honours trusted
//! proxies as the gateway does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_server::gateway::GatewaySettings;
use gatehouse_store::NewDeployment;
use std::sync::Arc;

mod common;
use common::ACCOUNT;

/// Allowed only from 203.0.113.0/24 or from loopback itself.
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","127.0.0.0/8"]}}}]}"#;

async fn server() -> (Arc<gatehouse_server::AppState>, String, tempfile::TempDir) {
    let (state, dir) = common::state_with_role(POLICY).await;
    state.gateway.configure(GatewaySettings {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..GatewaySettings::default()
    });
    // An upstream nobody listens on: an allowed request ends in 502, a denied one in 403.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    state
        .store
        .put_deployment(
            ACCOUNT,
            &NewDeployment {
                model_id: "m".into(),
                provider: "vllm".into(),
                base_url: format!("http://127.0.0.1:{dead_port}/v1"),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    let base = common::serve(&state)
        .await
        .trim_end_matches("/v1")
        .to_owned();
    (state, base, dir)
}

/// A chat call with these `X-Forwarded-For` lines, each its own header line.
async fn chat(base: &str, key: &str, forwarded: &[&str]) -> u16 {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    for line in forwarded {
        req = req.header("x-forwarded-for", *line);
    }
    req.send().await.unwrap().status().as_u16()
}

/// The audit records (JSON) whose `request_id` the answer named.
async fn audit_record(state: &gatehouse_server::AppState, rid: &str) -> serde_json::Value {
    for _ in 0..100 {
        for e in state.store.audit_entries(0, 10_000).await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&e.record).unwrap();
            if v["request_id"] == rid {
                return v;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no audit record for {rid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_joins_every_forwarded_line_and_fails_closed_on_unreadable_hops() {
    let (state, base, _dir) = server().await;
    let key = common::user_with_key(&state, "alice", POLICY).await;
    // One line: the client the trusted proxy saw.
    assert_eq!(chat(&base, &key, &["203.0.113.7"]).await, 502, "allowed");
    assert_eq!(chat(&base, &key, &["198.51.100.4"]).await, 403);
    // The client's forged line first, the proxy's own appended after it: the proxy's
    // decides.
    assert_eq!(
        chat(&base, &key, &["203.0.113.7", "198.51.100.4"]).await,
        403,
        "a forged first line must not decide aws:SourceIp"
    );
    assert_eq!(
        chat(&base, &key, &["198.51.100.4", "203.0.113.7"]).await,
        502
    );
    // Unreadable hops: the source is unknown, so the loopback allowance (the trusted
    // proxy's own address) must not match either.
    for hop in [
        "unknown",
        "203.0.113.7:80",
        "[2001:db8::1]:443",
        "",
        "fe80::1%eth0",
    ] {
        assert_eq!(chat(&base, &key, &[hop]).await, 403, "{hop:?}");
        assert_eq!(
            chat(&base, &key, &["203.0.113.7", hop]).await,
            403,
            "{hop:?} after a readable line"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_api_honours_trusted_proxies_and_audits_an_unknown_source() {
    let (state, base, _dir) = server().await;
    let call = |lines: &'static [&'static str]| {
        let base = base.clone();
        async move {
            let mut req = reqwest::Client::new()
                .post(format!("{base}/"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("Action=ListUsers&Version=2010-05-08");
            for line in lines {
                req = req.header("x-forwarded-for", *line);
            }
            let r = req.send().await.unwrap();
            r.headers()["x-amzn-requestid"].to_str().unwrap().to_owned()
        }
    };
    // Unsigned, so refused; audited all the same, with the forwarded client's address.
    let rid = call(&["203.0.113.7", "198.51.100.4"]).await;
    let r = audit_record(&state, &rid).await;
    assert_eq!(r["source_ip"], "198.51.100.4", "{r}");
    let rid = call(&["1.2.3.4:80"]).await;
    let r = audit_record(&state, &rid).await;
    assert!(r["source_ip"].is_null(), "{r}");
    assert_eq!(r["source_unknown_via"], "127.0.0.1", "{r}");
}
