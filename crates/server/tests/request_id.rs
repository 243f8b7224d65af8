//! One request id per request, the same everywhere it appears: the `x-request-id` header
//! of every answer, the AWS XML error's `<RequestId>` (and `x-amzn-RequestId`), the OpenAI
//! error JSON's `request_id`, and the audit record. An incoming `X-Request-Id` is kept only
//! from a trusted proxy and only when well formed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use serde_json::{Value, json};

struct Answer {
    status: u16,
    header: String,
    amzn: Option<String>,
    body: String,
}

async fn send(rb: reqwest::RequestBuilder) -> Answer {
    let r = rb.send().await.unwrap();
    let header = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let amzn = r
        .headers()
        .get("x-amzn-requestid")
        .map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status: r.status().as_u16(),
        header,
        amzn,
        body: r.text().await.unwrap(),
    }
}

fn xml_request_id(body: &str) -> String {
    let start = body.find("<RequestId>").unwrap() + "<RequestId>".len();
    let end = body.find("</RequestId>").unwrap();
    body[start..end].to_owned()
}

async fn audited_ids(state: &gatehouse_server::AppState) -> Vec<String> {
    // The gateway's records are written by a background task: wait for it a little.
    for _ in 0..50 {
        let ids: Vec<String> = state
            .store
            .audit_entries(0, 10_000)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| {
                serde_json::from_str::<Value>(&e.record).ok()?["request_id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        if !ids.is_empty() {
            return ids;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn every_error_answer_carries_the_id_of_its_header() {
    let (state, _dir) = common::state().await;
    let base = common::serve_root(&state).await;
    let http = reqwest::Client::new();

    // Query API, unsigned: AWS's XML error.
    let a = send(
        http.post(format!("{base}/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("Action=ListUsers&Version=2010-05-08"),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(xml_request_id(&a.body), a.header);
    assert_eq!(a.amzn.as_deref(), Some(a.header.as_str()));
    assert!(
        audited_ids(&state).await.contains(&a.header),
        "the audit record names another id"
    );

    // Gateway, no credentials: OpenAI's error JSON.
    let g = send(
        http.post(format!("{base}/v1/chat/completions"))
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await;
    assert_eq!(g.status, 401);
    let v: Value = serde_json::from_str(&g.body).unwrap();
    assert_eq!(v["error"]["request_id"], g.header.as_str());

    // Gateway routing errors (no handler's call context) too.
    let u = send(http.get(format!("{base}/v1/nothing-here"))).await;
    assert_eq!(u.status, 404);
    let v: Value = serde_json::from_str(&u.body).unwrap();
    assert_eq!(v["error"]["request_id"], u.header.as_str());

    // Probes carry one as well, and every request gets its own.
    let p = send(http.get(format!("{base}/healthz"))).await;
    let ids = [&a.header, &g.header, &u.header, &p.header];
    for (i, x) in ids.iter().enumerate() {
        assert!(!x.is_empty());
        for y in &ids[i + 1..] {
            assert_ne!(x, y);
        }
    }
}

#[tokio::test]
async fn an_incoming_id_is_kept_only_from_a_trusted_proxy_and_well_formed() {
    let (state, _dir) = common::state().await;
    let base = common::serve_root(&state).await;
    let http = reqwest::Client::new();
    let unsigned = |id: &str| {
        http.post(format!("{base}/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-request-id", id)
            .body("Action=ListUsers&Version=2010-05-08")
    };

    // Loopback is not a trusted proxy yet: the id is the server's own.
    let a = send(unsigned("edge-0001")).await;
    assert_ne!(a.header, "edge-0001");
    assert_eq!(xml_request_id(&a.body), a.header);

    state
        .gateway
        .configure(serde_json::from_value(json!({"trusted_proxies": ["127.0.0.1/32"]})).unwrap());
    let b = send(unsigned("edge-0002")).await;
    assert_eq!(b.header, "edge-0002");
    assert_eq!(xml_request_id(&b.body), "edge-0002");
    assert!(audited_ids(&state).await.contains(&"edge-0002".to_owned()));

    // Not well formed, even from the proxy: replaced, never echoed into logs or XML.
    for bad in ["edge/0003", "<x>", &"a".repeat(129)] {
        let c = send(unsigned(bad)).await;
        assert_ne!(c.header, bad);
        assert!(!c.body.contains(bad), "{}", c.body);
    }
}
