//! What the gateway makes of a request body, through the real router on a loopback
//! listener, in front of a model-server double that records what it received: the token
//! bound `ai:MaxTokens` and the guardrail's cap over every field an upstream reads, the
//! guardrail's deny patterns over every text the model reads, the OpenAI request shapes
//! and error shapes under `/v1`, answers that do not tell a caller who may not use a
//! model (or job) whether it exists, and hand-written requests (smuggling, odd targets and
//! paths, HEAD/OPTIONS, malformed header lines) that reach no model they should not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_server::AppState;
use gatehouse_store::NewDeployment;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

mod common;
use common::ACCOUNT;

/// The model server double: answers OpenAI's three model endpoints and keeps each body.
#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Upstream {
    async fn start(&self) -> String {
        use axum::routing::post;
        let seen = Arc::clone(&self.seen);
        let answer = move |body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                let answer = json!({
                    "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "ok"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
                });
                ([("content-type", "application/json")], answer.to_string())
            }
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(answer.clone()))
            .route("/v1/completions", post(answer.clone()))
            .route("/v1/embeddings", post(answer));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        base
    }

    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

struct Gw {
    state: Arc<AppState>,
    base: String,
    upstream: Upstream,
    _dir: tempfile::TempDir,
}

/// A server whose role `app` has `policy`, with deployments `m` (provider `vllm`) and
/// `other` (provider `openai`) on the double, and `guarded` with `guardrail`.
async fn server(policy: Value, guardrail: Option<Value>) -> Gw {
    let (state, dir) = common::state_with_role(&policy.to_string()).await;
    let upstream = Upstream::default();
    let up = upstream.start().await;
    for (model, provider) in [("m", "vllm"), ("other", "openai"), ("guarded", "vllm")] {
        state
            .store
            .put_deployment(
                ACCOUNT,
                &NewDeployment {
                    model_id: model.into(),
                    provider: provider.into(),
                    base_url: up.clone(),
                    ..Default::default()
                },
                true,
            )
            .await
            .unwrap();
    }
    if let Some(g) = guardrail {
        state
            .store
            .set_deployment_guardrail(ACCOUNT, "guarded", Some(&g.to_string()), true)
            .await
            .unwrap();
    }
    let base = common::serve(&state).await;
    Gw {
        state,
        base,
        upstream,
        _dir: dir,
    }
}

impl Gw {
    async fn token(&self) -> String {
        common::app_session_token(&self.state, "s", &[]).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token().await);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path}: not JSON ({status}): {text:?}"));
        (status, v)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn chat(&self, extra: Value) -> (u16, Value) {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.post("/chat/completions", body).await
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

const CAP: u64 = 100;

fn capped_policy() -> Value {
    // README's cap: allow, and deny above the cap.
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:Invoke*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ai:Invoke*", "Resource": "*",
         "Condition": {"NumericGreaterThan": {"ai:MaxTokens": CAP.to_string()}}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_is_the_most_the_upstream_could_generate_from_the_forwarded_body() {
    let gw = server(capped_policy(), None).await;
    // Each of these lets the upstream generate more than the cap.
    for (path, over) in [
        (
            "/chat/completions",
            json!({"max_completion_tokens": null, "max_tokens": 100000}),
        ),
        (
            "/chat/completions",
            json!({"max_tokens": null, "max_completion_tokens": 100000}),
        ),
        (
            "/chat/completions",
            json!({"max_completion_tokens": 10, "max_tokens": 100000}),
        ),
        (
            "/completions",
            json!({"max_completion_tokens": 10, "max_tokens": 100000}),
        ),
        (
            "/chat/completions",
            json!({"max_tokens": 10, "n_predict": 5000}),
        ),
        ("/chat/completions", json!({"max_tokens": 60, "n": 2})),
        ("/completions", json!({"max_tokens": 30, "best_of": 4})),
    ] {
        let mut body = over.clone();
        let b = body.as_object_mut().unwrap();
        b.insert("model".into(), "m".into());
        if path == "/completions" {
            b.insert("prompt".into(), "hi".into());
        } else {
            b.insert(
                "messages".into(),
                json!([{"role": "user", "content": "hi"}]),
            );
        }
        let (status, v) = gw.post(path, body).await;
        assert_eq!(status, 403, "{path} {over}: {v}");
        assert_eq!(code(&v), "access_denied");
    }
    assert_eq!(gw.upstream.take(), Vec::<Value>::new(), "nothing forwarded");

    // Within the cap: forwarded, and a null cap beside a number is not forwarded at all
    // (an upstream reading it could take it as "no limit").
    let (status, v) = gw
        .chat(json!({"max_tokens": null, "max_completion_tokens": 50, "n": 2}))
        .await;
    assert_eq!(status, 200, "{v}");
    let seen = gw.upstream.take();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].as_object().unwrap().contains_key("max_tokens"));
    assert_eq!(seen[0]["max_completion_tokens"], 50);

    // Ill-typed caps are refused, not read as absent.
    for bad in [
        json!({"max_tokens": -1}),
        json!({"max_tokens": 1e9}),
        json!({"max_tokens": "100000"}),
        json!({"n_predict": -1}),
        json!({"n": 0}),
    ] {
        let (status, v) = gw.chat(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    assert!(gw.upstream.take().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_cap_holds_only_with_a_null_condition_or_the_guardrail_default() {
    // AWS semantics: without any cap field the key is absent and NumericGreaterThan does
    // not match. A `Null` condition closes that; a guardrail default sets the cap before
    // the decision.
    let mut policy = capped_policy();
    policy["Statement"].as_array_mut().unwrap().push(json!(
        {"Effect": "Deny", "Action": "ai:Invoke*", "Resource": "*",
         "Condition": {"Null": {"ai:MaxTokens": "true"}}}));
    let gw = server(policy, Some(json!({"max_tokens": CAP}))).await;
    let (status, v) = gw.chat(json!({})).await;
    assert_eq!(status, 403, "no cap on an unguarded model: {v}");
    let (status, v) = gw.chat(json!({"model": "guarded", "n": 4})).await;
    assert_eq!(
        status, 200,
        "the guardrail writes the cap, then it is decided: {v}"
    );
    assert_eq!(gw.upstream.take()[0]["max_tokens"], CAP / 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guardrail_caps_every_field_the_upstream_reads() {
    let allow_all = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:Invoke*", "Resource": "*"}]});
    let gw = server(allow_all, Some(json!({"max_tokens": CAP}))).await;
    for over in [
        json!({"max_completion_tokens": null, "max_tokens": 100000}),
        json!({"max_completion_tokens": 10, "max_tokens": 100000}),
        json!({"max_tokens": 10, "n_predict": 100000}),
        json!({"max_tokens": 60, "n": 2}),
    ] {
        let mut extra = over.clone();
        extra["model"] = "guarded".into();
        let (status, v) = gw.chat(extra).await;
        assert_eq!(status, 400, "{over}: {v}");
        assert_eq!(code(&v), "guardrail_violation");
    }
    assert!(gw.upstream.take().is_empty());
    let (status, _) = gw
        .chat(json!({"model": "guarded", "max_completion_tokens": null}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(gw.upstream.take()[0]["max_completion_tokens"], CAP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_patterns_read_every_text_the_model_reads() {
    let allow_all = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:Invoke*", "Resource": "*"}]});
    let gw = server(
        allow_all,
        Some(json!({"deny_patterns": ["secret\\s+plan"]})),
    )
    .await;
    let msgs = |m: Value| json!({"model": "guarded", "messages": m});
    let hi = json!([{"role": "user", "content": "hi"}]);
    let with = |k: &str, v: Value| {
        let mut b = msgs(hi.clone());
        b[k] = v;
        b
    };
    let cases = [
        msgs(json!([{"role": "user", "name": "secret plan", "content": "hi"}])),
        msgs(json!([{"role": "system", "content": [{"type": "text", "text": "the secret plan"}]}])),
        msgs(
            json!([{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
            "function": {"name": "f", "arguments": "{\"q\": \"secret plan\"}"}}]}]),
        ),
        with(
            "tools",
            json!([{"type": "function", "function": {"name": "f",
            "description": "tells the secret plan"}}]),
        ),
        with(
            "tools",
            json!([{"type": "function", "function": {"name": "f", "parameters":
            {"type": "object", "properties": {"q": {"description": "secret plan"}}}}}]),
        ),
        with(
            "response_format",
            json!({"type": "json_schema", "json_schema": {"name": "x",
            "schema": {"properties": {"a": {"description": "secret plan"}}}}}),
        ),
        msgs(json!([{"role": "user", "content": "secret\u{200b} plan"}])),
    ];
    for body in cases {
        let (status, v) = gw.post("/chat/completions", body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(code(&v), "guardrail_violation");
    }
    for (path, body) in [
        (
            "/completions",
            json!({"model": "guarded", "prompt": ["a", "secret plan"]}),
        ),
        (
            "/completions",
            json!({"model": "guarded", "prompt": "a", "suffix": "secret plan"}),
        ),
        (
            "/completions",
            json!({"model": "guarded", "prompt": [1, 2, 3]}),
        ),
        (
            "/embeddings",
            json!({"model": "guarded", "input": ["a", "secret plan"]}),
        ),
    ] {
        let (status, v) = gw.post(path, body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
    }
    assert!(gw.upstream.take().is_empty(), "nothing forwarded");
    let (status, _) = gw.post("/chat/completions", msgs(hi)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_and_wrong_methods_and_paths_get_openai_errors() {
    let allow_all = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:Invoke*", "Resource": "*"}]});
    let gw = server(allow_all, None).await;
    for messages in [
        json!("hi"),
        Value::Null,
        json!([1, 2]),
        json!([]),
        json!([{"content": "no role"}]),
        json!([{"role": "user", "content": 7}]),
    ] {
        let (status, v) = gw
            .post(
                "/chat/completions",
                json!({"model": "m", "messages": messages}),
            )
            .await;
        assert_eq!(status, 400, "{messages}: {v}");
        assert_eq!(v["error"]["param"], "messages");
    }
    let (status, v) = gw.post("/completions", json!({"model": "m"})).await;
    assert_eq!(
        (status, v["error"]["param"].as_str()),
        (400, Some("prompt"))
    );
    let (status, v) = gw
        .post("/embeddings", json!({"model": "m", "input": {"a": 1}}))
        .await;
    assert_eq!((status, v["error"]["param"].as_str()), (400, Some("input")));
    assert!(gw.upstream.take().is_empty());

    // GET on a POST route: 405 with Allow and a JSON body.
    let r = reqwest::Client::new()
        .get(format!("{}/chat/completions", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "method_not_allowed");
    let (status, v) = gw.send(reqwest::Method::DELETE, "/models", None).await;
    assert_eq!((status, code(&v)), (405, "method_not_allowed"));

    // Unknown paths under /v1: OpenAI's 404, not the Query API's XML.
    for path in [
        "/nope",
        "/chat/completions/x",
        "//chat/completions",
        "",
        "/",
    ] {
        let (status, v) = gw
            .send(reqwest::Method::POST, path, Some(json!({"model": "m"})))
            .await;
        assert_eq!((status, code(&v)), (404, "unknown_url"), "{path}");
    }

    // Bodies that are not JSON.
    let token = gw.token().await;
    let send = |ct: Option<&'static str>, enc: Option<&'static str>| {
        let mut rb = reqwest::Client::new()
            .post(format!("{}/chat/completions", gw.base))
            .bearer_auth(&token)
            .body(r#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#);
        if let Some(ct) = ct {
            rb = rb.header("content-type", ct);
        }
        if let Some(enc) = enc {
            rb = rb.header("content-encoding", enc);
        }
        rb.send()
    };
    for (ct, enc) in [
        (Some("text/plain"), None),
        (Some("application/x-www-form-urlencoded"), None),
        (Some("application/json"), Some("gzip")),
    ] {
        let r = send(ct, enc).await.unwrap();
        assert_eq!(r.status(), 415, "{ct:?} {enc:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(code(&v), "unsupported_media_type");
    }
    assert!(gw.upstream.take().is_empty());
    for ct in [None, Some("application/json; charset=utf-8")] {
        assert_eq!(send(ct, None).await.unwrap().status(), 200, "{ct:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_may_not_use_a_model_cannot_tell_whether_it_exists() {
    // Allowed on vllm models only: `other` (openai) exists, `ghost` does not; both 403.
    let only_vllm = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ai:Invoke*", "ai:CreateFineTuningJob"], "Resource": "*",
         "Condition": {"StringEquals": {"ai:Provider": "vllm"}}}]});
    let gw = server(only_vllm, None).await;
    let answers = |model: &'static str| {
        let gw = &gw;
        async move {
            let mut out = Vec::new();
            for (path, body) in [
                (
                    "/chat/completions",
                    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
                ),
                ("/completions", json!({"model": model, "prompt": "hi"})),
                ("/embeddings", json!({"model": model, "input": "hi"})),
                (
                    "/fine_tuning/jobs",
                    json!({"model": model, "training_file": "file-1"}),
                ),
            ] {
                let (status, v) = gw.post(path, body).await;
                let msg = v["error"]["message"].as_str().unwrap_or("").to_owned();
                let shown = msg
                    .split(". Encoded")
                    .next()
                    .unwrap_or("")
                    .replace(model, "MODEL");
                out.push((path, status, code(&v).to_owned(), shown));
            }
            out
        }
    };
    let existing = answers("other").await;
    assert!(existing.iter().all(|a| a.1 == 403), "{existing:?}");
    assert_eq!(existing, answers("ghost").await);

    // Allowed on every model but denied openai's: an absent model would be allowed (404),
    // so the denied existing one answers 404 too.
    let not_openai = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:Invoke*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ai:Invoke*", "Resource": "*",
         "Condition": {"StringEquals": {"ai:Provider": "openai"}}}]});
    let gw = server(not_openai, None).await;
    for model in ["other", "ghost"] {
        let (status, v) = gw
            .post(
                "/chat/completions",
                json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!((status, code(&v)), (404, "model_not_found"), "{model}: {v}");
    }
    assert!(gw.upstream.take().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_may_not_read_a_job_cannot_tell_whether_it_exists() {
    let mine = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ai:GetFineTuningJob", "ai:CancelFineTuningJob"],
         "Resource": format!("arn:gatehouse:ai:local:{ACCOUNT}:fine-tuning-job/ftjob-mine")}]});
    let gw = server(mine, None).await;
    gw.state
        .store
        .record_fine_tuning_job(
            ACCOUNT,
            "ftjob-theirs",
            "m",
            "arn:gatehouse:iam::111122223333:user/bob",
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    for id in ["ftjob-theirs", "ftjob-ghost"] {
        let (get, v) = gw
            .send(
                reqwest::Method::GET,
                &format!("/fine_tuning/jobs/{id}"),
                None,
            )
            .await;
        let (cancel, w) = gw
            .send(
                reqwest::Method::POST,
                &format!("/fine_tuning/jobs/{id}/cancel"),
                None,
            )
            .await;
        seen.push((get, code(&v).to_owned(), cancel, code(&w).to_owned()));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0].0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_an_upstream_could_read_otherwise_than_gatehouse_are_refused() {
    // Gatehouse decides on the last of two equal keys (serde_json); a parser that keeps the
    // first (simdjson's lookups, some Java set-ups) runs the other. Go's encoding/json (Ollama,
    // LocalAI) matches field names ignoring case, Unicode folds included (`K`, the Kelvin
    // sign, is `k`): a `Max_Tokens` Gatehouse does not read is its `max_tokens`.
    let gw = server(capped_policy(), None).await;
    let msgs = r#""messages":[{"role":"user","content":"hi"}]"#;
    let ambiguous = [
        format!(r#"{{"model":"m",{msgs},"max_tokens":100000,"max_tokens":10}}"#),
        format!(r#"{{"model":"other","model":"m",{msgs}}}"#),
        r#"{"model":"m","messages":[{"role":"user","content":"a","content":"b"}],"max_tokens":5}"#
            .to_owned(),
        format!(r#"{{"model":"m",{msgs},"max_tokens":10,"Max_Tokens":100000}}"#),
        format!(r#"{{"model":"m",{msgs},"max_to\u212aens":100000}}"#),
        format!(r#"{{"model":"m",{msgs},"max_tokens":10,"N":50}}"#),
        format!(r#"{{"model":"m",{msgs},"MODEL":"other","max_tokens":10}}"#),
        format!(r#"{{"model":"m",{msgs},"max_tokens":10,"Stream":true}}"#),
        format!(
            r#"{{"model":"m",{msgs},"max_tokens":10,"stream":true,"stream_options":{{"Include_Usage":false}}}}"#
        ),
    ];
    let token = gw.token().await;
    for raw in &ambiguous {
        let r = reqwest::Client::new()
            .post(format!("{}/chat/completions", gw.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{raw}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{raw}");
    }
    assert!(gw.upstream.take().is_empty(), "nothing forwarded");

    // Names Gatehouse does not read as fields (a schema's properties) may differ in case.
    let (status, v) = gw
        .chat(
            json!({"max_tokens": 10, "tools": [{"type": "function", "function": {"name": "f",
            "parameters": {"type": "object", "properties": {"Name": {"type": "string"},
                                                            "name": {"type": "string"}}}}}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(gw.upstream.take().len(), 1);
}

/// Sends `request` as raw bytes on a new connection to the gateway's listener; what came
/// back until the server closed the socket or was quiet for a second.
async fn raw_exchange(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return String::from_utf8_lossy(&got).into_owned(),
        }
    }
}

/// The status codes of every HTTP response in a raw exchange, in order.
fn statuses(exchange: &str) -> Vec<u16> {
    exchange
        .split("HTTP/1.1 ")
        .skip(1)
        .filter_map(|r| r.get(..3)?.parse().ok())
        .collect()
}

/// Requests as an attacker writes them by hand: smuggling by Transfer-Encoding against
/// Content-Length, request targets in absolute form naming another host, percent-encoded
/// and dot-segment paths, HEAD and OPTIONS, too many headers, folded and malformed header
/// lines. None reaches a model it was not meant to, and nothing is answered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_requests_reach_no_model_they_should_not() {
    let allow_all = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:*", "Resource": "*"}]});
    let gw = server(allow_all, None).await;
    let token = gw.token().await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"first"}]}"#;
    let head = |target: &str, extra: &str, len: usize| {
        format!(
            "POST {target} HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\n{extra}Content-Length: {len}\r\n\r\n"
        )
    };

    // Transfer-Encoding beside Content-Length: the chunked body is the request; the bytes
    // Content-Length would have counted as a second request are never run.
    let smuggled_body =
        r#"{"model":"m","messages":[{"role":"user","content":"smuggled"}],"max_tokens":100000}"#;
    let smuggled = format!(
        "{}{smuggled_body}",
        head("/v1/chat/completions", "", smuggled_body.len())
    );
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let whole_length = chunked.len() + smuggled.len();
    for (te, want) in [
        ("Transfer-Encoding: chunked\r\n", 200),
        // A transfer coding Gatehouse does not decode (RFC 9112: 501): the bytes must not
        // be read as JSON when they claim to be gzip.
        ("Transfer-Encoding: gzip, chunked\r\n", 501),
    ] {
        let req = format!(
            "{}{chunked}{smuggled}",
            head("/v1/chat/completions", te, whole_length)
        );
        let got = raw_exchange(&gw.base, req.as_bytes()).await;
        assert_eq!(statuses(&got), [want], "{te:?}: {got}");
        let seen = gw.upstream.take();
        assert_eq!(seen.len(), usize::from(want == 200), "{te:?}: {seen:?}");
        assert!(
            seen.iter().all(|b| b["messages"][0]["content"] == "first"),
            "{te:?}: the smuggled request reached the model: {seen:?}"
        );
    }
    // Transfer-Encodings that do not end in chunked, and two differing lengths: refused.
    for extra in [
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
        "Content-Length: 3\r\n",
    ] {
        let req = format!("{}{body}", head("/v1/chat/completions", extra, body.len()));
        let got = raw_exchange(&gw.base, req.as_bytes()).await;
        assert_eq!(statuses(&got), [400], "{extra:?}: {got}");
    }
    assert!(gw.upstream.take().is_empty());

    // An absolute-form target naming another host decides nothing: the path routes, the
    // deployment's own address is called.
    let req = format!(
        "{}{body}",
        head(
            "http://169.254.169.254/v1/chat/completions",
            "Connection: close\r\n",
            body.len()
        )
    );
    let got = raw_exchange(&gw.base, req.as_bytes()).await;
    assert_eq!(statuses(&got), [200], "{got}");
    assert_eq!(gw.upstream.take().len(), 1);

    // Percent-encoded and dot-segment paths are not another spelling of a route.
    for target in [
        "/v1/%2e%2e/v1/chat/completions",
        "/v1/./chat/completions",
        "/v1/../v1/chat/completions",
        "/v1/chat/../chat/completions",
        "/v1/chat%2fcompletions",
        "/v1/%63hat/completions",
        "/v1/chat/completions%00",
        "/v1/chat/completions/",
        "/v1/chat/completions;x",
        "/v1/Chat/Completions",
    ] {
        let req = format!(
            "{}{body}",
            head(target, "Connection: close\r\n", body.len())
        );
        let got = raw_exchange(&gw.base, req.as_bytes()).await;
        assert_eq!(statuses(&got), [404], "{target}: {got}");
        assert!(got.contains(r#""code":"unknown_url""#), "{target}: {got}");
    }
    for target in ["//v1/chat/completions", "/x/../v1/chat/completions"] {
        let req = format!(
            "{}{body}",
            head(target, "Connection: close\r\n", body.len())
        );
        let got = raw_exchange(&gw.base, req.as_bytes()).await;
        assert_ne!(statuses(&got), [200], "{target}: {got}");
    }
    assert!(
        gw.upstream.take().is_empty(),
        "a path spelling reached a model"
    );

    // HEAD and OPTIONS: never a model call; HEAD on a read route reads (authorized as GET).
    for (method, path, want) in [
        ("HEAD", "/v1/chat/completions", 405),
        ("OPTIONS", "/v1/chat/completions", 405),
        ("OPTIONS", "/v1/models", 405),
        ("HEAD", "/v1/models", 200),
    ] {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        );
        let got = raw_exchange(&gw.base, req.as_bytes()).await;
        assert_eq!(statuses(&got), [want], "{method} {path}: {got}");
    }
    let got = raw_exchange(
        &gw.base,
        b"HEAD /v1/models HTTP/1.1\r\nHost: gatehouse\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&got), [401], "HEAD needs credentials too: {got}");
    assert!(gw.upstream.take().is_empty());

    // Too many header lines, folded and malformed ones: refused before anything runs.
    let many: String = (0..200).map(|i| format!("X-Filler-{i}: v\r\n")).collect();
    let folded = "X-Note: a\r\n b\r\n".to_owned();
    for extra in [many, folded, "Authorization : Bearer x\r\n".to_owned()] {
        let req = format!("{}{body}", head("/v1/chat/completions", &extra, body.len()));
        let got = raw_exchange(&gw.base, req.as_bytes()).await;
        let answered = statuses(&got);
        assert!(
            answered == [431] || answered == [400],
            "{}: {got}",
            &extra[..extra.len().min(40)]
        );
    }
    assert!(gw.upstream.take().is_empty());
    // And the listener still serves.
    assert_eq!(gw.chat(json!({})).await.0, 200);
}

/// A caller without a valid credential cannot make the gateway wait for, and hold, a
/// request body: with no credential, an unknown one or two, the answer is a 401 as soon as
/// the head has arrived, although the announced body (a megabyte) never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_body_is_read_for_a_caller_without_a_valid_credential() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let allow_all = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:*", "Resource": "*"}]});
    let gw = server(allow_all, None).await;
    let addr = gw
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    for path in ["/v1/chat/completions", "/v1/fine_tuning/jobs"] {
        for auth in [
            "",
            "Authorization: Bearer not-a-session-token\r\n",
            "Authorization: Bearer AKIANOSUCHKEY0000000:secret\r\n",
            "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n",
        ] {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: gatehouse\r\n{auth}\
                 Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{{\"model\""
            );
            s.write_all(head.as_bytes()).await.unwrap();
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(std::time::Duration::from_secs(3), s.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{path} {auth:?}: no answer while the body is missing"))
                .unwrap();
            let got = String::from_utf8_lossy(&buf[..n]);
            assert!(got.starts_with("HTTP/1.1 401"), "{path} {auth:?}: {got}");
        }
    }
    assert!(gw.upstream.take().is_empty());
}
