//! Where the gateway sends a prompt and the provider key, through the real router: a
//! deployment stored with a refused address (written before the registration checks, or
//! straight into the store) is refused at connect time, Gatehouse's own listener is not
//! an upstream, and an upstream's redirect is never followed with the key. All traffic
//! stays on loopback (`0.0.0.0` reaches it on Linux).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_store::{NewDeployment, Secret};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

mod common;
use common::ACCOUNT;

/// A model server whose chat endpoint answers, and whose `/v1/redirect/...` endpoint
/// redirects to `/v1/leak/...`, which records the Authorization header it got.
async fn double(leaked: Arc<Mutex<Vec<String>>>) -> u16 {
    use axum::routing::post;
    let chat = || async {
        (
            [("content-type", "application/json")],
            json!({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "ok"}}]})
            .to_string(),
        )
    };
    let redirect = || async {
        (
            axum::http::StatusCode::TEMPORARY_REDIRECT,
            [("location", "/v1/leak/chat/completions")],
        )
    };
    let leak = move |headers: axum::http::HeaderMap| {
        let leaked = Arc::clone(&leaked);
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            leaked.lock().unwrap().push(auth);
            "{}"
        }
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/redirect/chat/completions", post(redirect))
        .route("/v1/leak/chat/completions", post(leak));
    let l = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_addresses_own_listeners_and_redirects_never_get_the_key() {
    let (state, _dir) = common::state_with_role(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*"}]}"#,
    )
    .await;
    let leaked = Arc::new(Mutex::new(Vec::new()));
    let port = double(Arc::clone(&leaked)).await;
    let base = common::serve(&state).await;
    let own = base.trim_end_matches("/v1").to_owned();
    for (model, url) in [
        ("fine", format!("http://127.0.0.1:{port}/v1")),
        ("this-host", format!("http://0.0.0.0:{port}/v1")),
        ("myself", format!("{own}/v1")),
        ("redirected", format!("http://127.0.0.1:{port}/v1/redirect")),
    ] {
        state
            .store
            .put_deployment(
                ACCOUNT,
                &NewDeployment {
                    model_id: model.into(),
                    provider: "vllm".into(),
                    base_url: url,
                    api_key: Some(Secret::new("provider-key-0123".to_owned())),
                    ..Default::default()
                },
                true,
            )
            .await
            .unwrap();
    }
    let token = common::app_session_token(&state, "s", &[]).await;
    let chat = |model: &'static str| {
        let (base, token) = (base.clone(), token.clone());
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/chat/completions"))
                .bearer_auth(token)
                .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(chat("fine").await.0, 200);
    for model in ["this-host", "myself", "redirected"] {
        let (status, v) = chat(model).await;
        assert_eq!(status, 502, "{model}: {v}");
        assert_eq!(v["error"]["code"], "upstream_unavailable", "{model}");
    }
    assert!(
        leaked.lock().unwrap().is_empty(),
        "a redirect was followed: {:?}",
        leaked.lock().unwrap()
    );
}
