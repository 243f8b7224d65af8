//! Token budgets at the gateway, through the real router on a loopback listener, against
//! an upstream double speaking OpenAI's protocol: requests in flight together cannot pass
//! a tokens-per-minute limit (each reserves its maximum at admission), and reservations
//! settle to the tokens charged — refunded when the answer used less or the upstream
//! refused, kept when the upstream timed out (it may still be generating).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_server::AppState;
use gatehouse_server::gateway::GatewaySettings;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

mod common;

/// The upstream double: answers with 12 tokens of usage (2 prompt, 10 completion). A
/// prompt `hold` waits for the release, `fail` gets a 500, `slow` answers after 3 s.
#[derive(Clone)]
struct Upstream {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    arrived: Arc<watch::Sender<usize>>,
    release: watch::Receiver<bool>,
}

fn json(status: u16, v: serde_json::Value) -> axum::response::Response {
    axum::response::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(v.to_string()))
        .unwrap()
}

async fn completion(
    axum::extract::State(u): axum::extract::State<Upstream>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let prompt = body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    u.bodies.lock().unwrap().push(body);
    u.arrived.send_modify(|n| *n += 1);
    match prompt.as_str() {
        "hold" => {
            let mut r = u.release.clone();
            r.wait_for(|go| *go).await.unwrap();
        }
        "fail" => {
            return json(
                500,
                serde_json::json!({"error": {"message": "no", "type": "server_error"}}),
            );
        }
        "slow" => tokio::time::sleep(std::time::Duration::from_secs(3)).await,
        _ => {}
    }
    json(
        200,
        serde_json::json!({
            "id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 10, "total_tokens": 12}
        }),
    )
}

struct Setup {
    state: Arc<AppState>,
    base: String,
    upstream: Upstream,
    release: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let (state, dir) = common::state_with_role(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*"}]}"#,
    )
    .await;
    let (release, rx) = watch::channel(false);
    let upstream = Upstream {
        bodies: Arc::default(),
        arrived: Arc::new(watch::channel(0).0),
        release: rx,
    };
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(completion))
        .with_state(upstream.clone());
    tokio::spawn(async move { axum::serve(up, app).await });
    let settings: GatewaySettings = serde_json::from_value(serde_json::json!({
        "upstream_timeout_secs": 1,
        "budgets": [{"principal": "arn:gatehouse:sts::*:assumed-role/app/*", "tokens_per_minute": 300}]
    }))
    .unwrap();
    state.gateway.configure(settings);
    let base = common::serve_model(&state, &format!("http://{up_addr}/v1")).await;
    Setup {
        state,
        base,
        upstream,
        release,
        _dir: dir,
    }
}

async fn token(state: &AppState, session_name: &str) -> String {
    common::app_session_token(state, session_name, &[]).await
}

async fn chat(
    base: &str,
    token: &str,
    content: &str,
    max_tokens: Option<u64>,
) -> reqwest::Response {
    let mut body =
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": content}]});
    if let Some(n) = max_tokens {
        body["max_tokens"] = n.into();
    }
    reqwest::Client::new()
        .post(format!("{base}/chat/completions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Waits (bounded) for `n` results from the request tasks.
async fn results(rx: &mut tokio::sync::mpsc::Receiver<u16>, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    while out.len() < n {
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await;
        out.push(got.expect("a request did not finish").unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_reserve_their_maximum_and_settle_to_their_usage() {
    let s = setup().await;
    let t = token(&s.state, "parallel").await;
    // Ten requests of up to 100 tokens at once ("hold": 1 token of prompt, reserved 101
    // each) against 300 tokens per minute: two fit, the eight others are refused at once.
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    for _ in 0..10 {
        let (base, t, tx) = (s.base.clone(), t.clone(), tx.clone());
        tokio::spawn(async move {
            let status = chat(&base, &t, "hold", Some(100)).await.status().as_u16();
            tx.send(status).await.unwrap();
        });
    }
    assert_eq!(results(&mut rx, 8).await, vec![429; 8]);
    let mut arrived = s.upstream.arrived.subscribe();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        arrived.wait_for(|n| *n >= 2),
    )
    .await
    .expect("the two admitted requests did not arrive")
    .unwrap();
    assert_eq!(s.upstream.bodies.lock().unwrap().len(), 2);
    // Answered with 12 tokens each: 178 of the 202 reserved are refunded...
    s.release.send(true).unwrap();
    assert_eq!(results(&mut rx, 2).await, vec![200, 200]);
    // ...so 24 are counted: two more of up to 100 fit (24 + 101 + 101 = 226), while they
    // are in flight a third does not.
    let held: Vec<_> = (0..2)
        .map(|_| {
            let (base, t) = (s.base.clone(), t.clone());
            tokio::spawn(async move { chat(&base, &t, "go", Some(100)).await.status() })
        })
        .collect();
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    // All four settled to 12: 48 counted. A request of up to 252 needs 253 (301 in all):
    // refused, counting nothing; one of up to 251 fits exactly.
    assert_eq!(chat(&s.base, &t, "go", Some(252)).await.status(), 429);
    assert_eq!(chat(&s.base, &t, "go", Some(251)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_is_refunded_and_a_timed_out_one_keeps_its_reservation() {
    let s = setup().await;
    s.release.send(true).unwrap();
    let t = token(&s.state, "failures").await;
    // Without max_tokens, a request gets the most that fits the narrowest token limit
    // after its prompt (300 - 1 = 299, below the default 4096), forwarded upstream.
    assert_eq!(chat(&s.base, &t, "go", None).await.status(), 200);
    let last = s.upstream.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last["max_tokens"], 299);
    // Settled to 12. The upstream refuses (500, no usage): nothing was generated, nothing
    // is charged (two unrefunded reservations of 251 would not fit).
    for _ in 0..5 {
        assert_eq!(chat(&s.base, &t, "fail", Some(250)).await.status(), 500);
    }
    // Timed out (504): the upstream may still be generating: the 251 reserved stay.
    assert_eq!(chat(&s.base, &t, "slow", Some(250)).await.status(), 504);
    let r = chat(&s.base, &t, "go", Some(100)).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // 12 + 251 + 37 = 300.
    assert_eq!(chat(&s.base, &t, "go", Some(36)).await.status(), 200);
    // A request that could never fit is told so (400 on max_tokens), not asked to wait.
    let r = chat(&s.base, &t, "go", Some(300)).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "max_tokens");
    assert_eq!(body["error"]["code"], "request_exceeds_budget");
}
