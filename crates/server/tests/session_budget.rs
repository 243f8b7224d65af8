//! A role session's own budget at the gateway, through the real router on a loopback
//! listener: `gatehouse:rpm` admits that many requests and then answers 429 with
//! `Retry-After`, and a session whose budget tag is not a number — which `AssumeRole`
//! refuses to issue, so only a token minted elsewhere can carry one — spends nothing: 400
//! `invalid_session_budget` in OpenAI's shape, nothing forwarded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_server::AppState;
use std::sync::Arc;

mod common;

async fn server() -> (Arc<AppState>, String, tempfile::TempDir) {
    let (state, dir) = common::state_with_role(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*"}]}"#,
    )
    .await;
    // An upstream nobody listens on: an admitted request ends in 502, a refused one never
    // gets that far.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let base = common::serve_model(&state, &format!("http://127.0.0.1:{dead_port}/v1")).await;
    (state, base, dir)
}

async fn token(state: &AppState, session_name: &str, rpm: &str) -> String {
    common::app_session_token(state, session_name, &[("gatehouse:rpm", rpm)]).await
}

async fn chat(base: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/chat/completions"))
        .bearer_auth(token)
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_budget_tag_limits_the_session_and_a_bad_one_fails_closed() {
    let (state, base, _dir) = server().await;
    let one = token(&state, "one", "1").await;
    assert_eq!(
        chat(&base, &one).await.status(),
        502,
        "admitted, then the upstream is down"
    );
    let refused = chat(&base, &one).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // A sliding minute counted in seconds: the request leaves it 60 to 61 s on.
    assert!((1..=61).contains(&retry));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("session ASIA")
    );

    let bad = token(&state, "bad", "plenty").await;
    let r = chat(&base, &bad).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_session_budget");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("gatehouse:rpm") && msg.contains("whole number"),
        "{msg}"
    );
}
