//! A SigV4-signed gateway call is verified before its body is read: the signature covers
//! the body through the SHA-256 the request declares in a signed `x-amz-content-sha256`
//! header, so a caller without a valid signature (any `Authorization: AWS4-HMAC-SHA256`
//! line, or a valid one that declares no digest) is refused at once instead of making the
//! gateway wait for and hold up to `max_body_bytes` until the body timeout; the body read
//! afterwards must match the declared digest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_auth::sigv4;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod common;
use common::Creds;

const ALLOW: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:*","Resource":"*"}]}"#;
const BODY: &str = r#"{"model":"absent","messages":[{"role":"user","content":"hi"}]}"#;

/// The head of a chat call signed for `ai` by `creds` (over `declared` as
/// `x-amz-content-sha256` when given, signed; else over `body`), announcing `length` bytes.
fn signed_head(
    host: &str,
    creds: &Creds,
    body: &str,
    declared: Option<&str>,
    length: usize,
) -> String {
    let amz_date = sigv4::format_amz_date(chrono::Utc::now());
    let mut headers = vec![
        ("host", host),
        ("x-amz-date", amz_date.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(d) = declared {
        headers.push(("x-amz-content-sha256", d));
    }
    let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    let req = sigv4::Request {
        method: "POST",
        path: "/v1/chat/completions",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let secret = gatehouse_auth::Secret::from(creds.secret.as_str());
    let authz =
        sigv4::authorization_header(&req, &creds.key_id, &secret, "us-east-1", "ai", &names)
            .unwrap();
    let mut head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nauthorization: {authz}\r\ncontent-length: {length}\r\n"
    );
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends `head` and `body` (maybe only part of what the head announces) and returns the
/// answer's status and text, or `None` when nothing came within `within`.
async fn answer_within(
    addr: &str,
    head: &str,
    body: &str,
    within: Duration,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut got = vec![0u8; 65536];
    let n = timeout(within, s.read(&mut got)).await.ok()?.unwrap();
    let text = String::from_utf8_lossy(&got[..n]).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    Some((status, text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigv4_call_is_verified_before_its_body_is_read() {
    let (state, _dir) = common::state().await;
    let creds = Creds::user(&state, "signer", ALLOW).await;
    let addr = common::serve_root(&state)
        .await
        .trim_start_matches("http://")
        .to_owned();
    let declared = sigv4::sha256_hex(BODY.as_bytes());
    let quick = Duration::from_secs(5); // far below the 30 s body timeout

    // A forged signature over a body that never comes: refused at once.
    let forged = Creds {
        secret: "not-the-secret".into(),
        ..creds.clone()
    };
    let head = signed_head(&addr, &forged, BODY, Some(&declared), 1 << 20);
    let (status, text) = answer_within(&addr, &head, "{\"model\":", quick)
        .await
        .expect("a forged signature kept the gateway waiting for the body");
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("invalid_api_key"), "{text}");

    // A valid signature that declares no digest covers the body only through bytes not yet
    // read: refused at once too, telling what to send.
    let head = signed_head(&addr, &creds, BODY, None, 1 << 20);
    let (status, text) = answer_within(&addr, &head, "{\"model\":", quick)
        .await
        .expect("an undeclared body kept the gateway waiting");
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("x-amz-content-sha256"), "{text}");

    // Declared and signed: verified, then the body is read and must match.
    let head = signed_head(&addr, &creds, BODY, Some(&declared), BODY.len());
    let (status, text) = answer_within(&addr, &head, BODY, quick).await.unwrap();
    assert_eq!(
        status, 404,
        "the signed call should reach the (absent) model: {text}"
    );
    assert!(text.contains("model_not_found"), "{text}");
    let other = BODY.replace("hi", "ho");
    let (status, text) = answer_within(&addr, &head, &other, quick).await.unwrap();
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("does not match"), "{text}");
}
