//! Request heads the HTTP parser refuses before any route runs (too many or too large
//! header lines: 431; a malformed request line or header: 400) are answered in the
//! protocol's own error shape — OpenAI's JSON under `/v1`, AWS's Query XML elsewhere — not
//! with hyper's empty body, also when the refused head follows a served request on a
//! kept-alive connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod common;

/// Sends `raw` on a fresh connection and reads until the server closes it.
async fn exchange(addr: &str, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut got = Vec::new();
    timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("the server did not close the connection")
        .unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

/// The last response in `answer`: status, lower-cased head, body.
fn last_response(answer: &str) -> (u16, String, String) {
    let at = answer.rfind("HTTP/1.1 ").expect("no response");
    let (head, body) = answer[at..].split_once("\r\n\r\n").expect("no end of head");
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn many_headers(request_line: &str) -> Vec<u8> {
    let mut raw = format!("{request_line}\r\nHost: x\r\n");
    for i in 0..200 {
        raw.push_str(&format!("X-Filler-{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    raw.into_bytes()
}

fn assert_openai_error(answer: &str, status: u16, code: &str) {
    let (got, head, body) = last_response(answer);
    assert_eq!(got, status, "{answer}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).expect(&body);
    assert_eq!(v["error"]["code"], code, "{body}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{body}");
    assert!(
        !v["error"]["message"].as_str().unwrap().is_empty(),
        "{body}"
    );
    assert!(v["error"]["request_id"].is_string(), "{body}");
    assert!(head.contains("x-request-id: "), "{head}");
}

fn assert_query_error(answer: &str, status: u16, code: &str) {
    let (got, head, body) = last_response(answer);
    assert_eq!(got, status, "{answer}");
    assert!(head.contains("content-type: text/xml"), "{head}");
    assert!(body.contains("<ErrorResponse"), "{body}");
    assert!(body.contains("<Type>Sender</Type>"), "{body}");
    assert!(body.contains(&format!("<Code>{code}</Code>")), "{body}");
    assert!(body.contains("<RequestId>"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_the_parser_refuses_get_the_protocols_error_shape() {
    let (state, _dir) = common::state().await;
    let base = common::serve_root(&state).await;
    let addr = base.trim_start_matches("http://").to_owned();

    // Under /v1: OpenAI's shape.
    let answer = exchange(&addr, &many_headers("GET /v1/models HTTP/1.1")).await;
    assert_openai_error(&answer, 431, "request_header_fields_too_large");
    let answer = exchange(
        &addr,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    )
    .await;
    assert_openai_error(&answer, 400, "malformed_request");

    // The Query API: AWS's shape.
    let answer = exchange(&addr, &many_headers("POST / HTTP/1.1")).await;
    assert_query_error(&answer, 431, "RequestHeaderSectionTooLarge");
    let answer = exchange(&addr, b"NOT A REQUEST\r\n\r\n").await;
    assert_query_error(&answer, 400, "MalformedHttpRequest");

    // A refused head after a served request on the same (kept-alive) connection: the
    // first answer is untouched, the second is shaped.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = vec![0u8; 4096];
    let n = timeout(Duration::from_secs(10), s.read(&mut first))
        .await
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first[..n]).into_owned();
    assert!(first.starts_with("HTTP/1.1 200 "), "{first}");
    s.write_all(&many_headers("GET /v1/models HTTP/1.1"))
        .await
        .unwrap();
    let mut rest = Vec::new();
    timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_openai_error(
        &String::from_utf8_lossy(&rest),
        431,
        "request_header_fields_too_large",
    );
}
