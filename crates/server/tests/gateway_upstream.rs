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
    // An SSE answer that stops mid-event and then goes silent.
    let stall = || async {
        use futures_util::StreamExt;
        let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(
            "data: {\"choices\": [".to_owned(),
        )])
        .chain(futures_util::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            Ok(String::new())
        }));
        (
            [("content-type", "text/event-stream")],
            axum::body::Body::from_stream(chunks),
        )
    };
    serve_double(
        axum::Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/stall/chat/completions", post(stall))
            .route("/v1/redirect/chat/completions", post(redirect))
            .route("/v1/leak/chat/completions", post(leak)),
    )
    .await
}

/// Serves a model-server double on every local address (`0.0.0.0` reaches it too); its port.
async fn serve_double(app: axum::Router) -> u16 {
    let l = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}

/// A server whose role `app` may invoke every model, with a one-second upstream timeout.
async fn invoking_state() -> (Arc<gatehouse_server::AppState>, tempfile::TempDir) {
    let (state, dir) = common::state_with_role(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel*","Resource":"*"}]}"#,
    )
    .await;
    state
        .gateway
        .configure(gatehouse_server::gateway::GatewaySettings {
            upstream_timeout_secs: 1,
            ..Default::default()
        });
    (state, dir)
}

/// Stores a deployment straight into the store (no registration checks).
async fn deploy(state: &gatehouse_server::AppState, model: &str, base_url: String, key: &str) {
    state
        .store
        .put_deployment(
            ACCOUNT,
            &NewDeployment {
                model_id: model.into(),
                provider: "vllm".into(),
                base_url,
                api_key: Some(Secret::new(key.to_owned())),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_addresses_own_listeners_and_redirects_never_get_the_key() {
    let (state, _dir) = invoking_state().await;
    let leaked = Arc::new(Mutex::new(Vec::new()));
    let port = double(Arc::clone(&leaked)).await;
    let base = common::serve(&state).await;
    let own = base.trim_end_matches("/v1").to_owned();
    for (model, url) in [
        ("fine", format!("http://127.0.0.1:{port}/v1")),
        ("this-host", format!("http://0.0.0.0:{port}/v1")),
        ("myself", format!("{own}/v1")),
        ("redirected", format!("http://127.0.0.1:{port}/v1/redirect")),
        ("stalls", format!("http://127.0.0.1:{port}/v1/stall")),
    ] {
        deploy(&state, model, url, "provider-key-0123").await;
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

    // Two credentials: refused, whichever comes first.
    for pair in [[token.as_str(), "Bearer x"], ["Bearer x", token.as_str()]] {
        let mut rb = reqwest::Client::new().post(format!("{base}/chat/completions"));
        for t in pair {
            let v = if t.starts_with("Bearer") {
                t.to_owned()
            } else {
                format!("Bearer {t}")
            };
            rb = rb.header("authorization", v);
        }
        let r = rb
            .json(&json!({"model": "fine", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }

    // An upstream stream that stops mid-event: Gatehouse's timeout event still arrives
    // as an event of its own, not glued onto the upstream's partial line.
    let text = reqwest::Client::new()
        .post(format!("{base}/chat/completions"))
        .bearer_auth(&token)
        .json(&json!({"model": "stalls", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    assert_eq!(
        events.last().map(|e| e["error"]["code"].clone()),
        Some(json!("upstream_timeout")),
        "{text:?}"
    );
}

/// The `data:` payloads of an SSE text, each parsed as JSON: an event that is not JSON
/// (the remains of an upstream event cut short) fails the test.
fn sse_events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let data = e
                .trim()
                .strip_prefix("data:")
                .unwrap_or_else(|| panic!("not a data event: {e:?} in {text:?}"));
            serde_json::from_str(data.trim())
                .unwrap_or_else(|_| panic!("an event is not JSON: {data:?} in {text:?}"))
        })
        .collect()
}

/// A body sent in these chunks (each flushed on its own), then silence.
fn chunked_then_silent(parts: Vec<String>) -> axum::body::Body {
    use futures_util::StreamExt;
    let chunks = futures_util::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>)).then(
        |c| async move {
            // Separate writes, so that each part arrives as a chunk of its own.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            c
        },
    );
    let silence = futures_util::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        Ok(String::new())
    });
    axum::body::Body::from_stream(chunks.chain(silence))
}

const PROVIDER_KEY: &str = "sk-provider-key-0123456789abcdef";

/// An upstream that shows the key it was sent back to its caller, as some model servers do
/// in their errors, and that sends its own headers (cookies, organisation, rate limits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_never_gets_the_provider_key_nor_the_upstreams_headers_nor_half_an_event() {
    use axum::http::HeaderMap;
    use axum::routing::post;
    let (state, _dir) = invoking_state().await;
    let sent = |h: &HeaderMap| {
        h.get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let upstream_headers = [
        ("set-cookie", "upstream-session=abc"),
        ("openai-organization", "org-upstream"),
        ("x-upstream-internal", "10.0.0.7"),
    ];
    // A 401 whose message repeats the Authorization header.
    let echo = move |h: HeaderMap| async move {
        let body = json!({"error": {"message": format!("Incorrect API key provided: {}", sent(&h)),
                                    "type": "invalid_request_error", "param": null,
                                    "code": "invalid_api_key"}});
        let mut r = axum::response::IntoResponse::into_response((
            axum::http::StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            body.to_string(),
        ));
        for (k, v) in upstream_headers {
            r.headers_mut().insert(k, v.parse().unwrap());
        }
        r
    };
    // A stream whose first event carries the key cut across two chunks, then half an
    // event, then silence.
    let echo_stream = move |h: HeaderMap| async move {
        let event = format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {"content": format!("you sent {}", sent(&h))}}]})
        );
        let cut = event.find(PROVIDER_KEY).unwrap() + 5;
        (
            [("content-type", "text/event-stream")],
            chunked_then_silent(vec![
                event[..cut].to_owned(),
                event[cut..].to_owned(),
                "data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"cut sh".to_owned(),
            ]),
        )
    };
    let port = serve_double(
        axum::Router::new()
            .route("/v1/echo/chat/completions", post(echo))
            .route("/v1/echo-stream/chat/completions", post(echo_stream)),
    )
    .await;
    for model in ["echo", "echo-stream"] {
        let url = format!("http://127.0.0.1:{port}/v1/{model}");
        deploy(&state, model, url, PROVIDER_KEY).await;
    }
    let base = common::serve(&state).await;
    let token = common::app_session_token(&state, "s", &[]).await;
    let call = |model: &'static str, stream: bool| {
        reqwest::Client::new()
            .post(format!("{base}/chat/completions"))
            .bearer_auth(&token)
            .json(&json!({"model": model, "stream": stream,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };

    let r = call("echo", false).await.unwrap();
    assert_eq!(r.status(), 401, "the upstream's status is kept");
    for (k, _) in upstream_headers {
        assert!(
            r.headers().get(k).is_none(),
            "the upstream's {k} header reached the caller"
        );
    }
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(PROVIDER_KEY),
        "the provider key reached the caller: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["error"]["code"], "invalid_api_key",
        "the rest of the answer is kept"
    );

    let text = call("echo-stream", true)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains(PROVIDER_KEY),
        "the provider key reached the caller: {text}"
    );
    assert!(
        !text.contains("cut sh"),
        "half an event reached the caller: {text:?}"
    );
    let events = sse_events(&text);
    assert_eq!(events.len(), 2, "{text:?}");
    assert!(
        events[0]["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap()
            .starts_with("you sent Bearer "),
        "{text:?}"
    );
    assert_eq!(events[1]["error"]["code"], "upstream_timeout", "{text:?}");
}
