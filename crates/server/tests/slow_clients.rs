//! Slow, idle and abandoned clients cannot hold a listener: against a server with a low
//! connection limit and one-second timeouts, more idle and trickling sockets than the
//! limit are opened; a well-behaved client is still served at once, and every slow
//! socket is closed after its timeout (a trickled body with a 408).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_server::gateway::GatewaySettings;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

mod common;

const LIMIT: usize = 8;

/// Reads until the server closes the socket (or `within` passes); what it answered.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match timeout(
            deadline.saturating_duration_since(Instant::now()),
            s.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_trickling_sockets_do_not_keep_a_client_out_and_are_closed() {
    let (state, _dir) = common::state_with_role(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*"}]}"#,
    )
    .await;
    let settings: GatewaySettings = serde_json::from_value(serde_json::json!({
        "header_read_timeout_secs": 1,
        "body_read_timeout_secs": 1,
        "idle_timeout_secs": 1,
        "max_connections": LIMIT,
    }))
    .unwrap();
    state.gateway.configure(settings);
    let base = common::serve(&state).await;
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();

    // Twice the limit in sockets that never speak, the limit in sockets trickling a
    // request head, and a few trickling a body.
    let mut idle = Vec::new();
    for _ in 0..2 * LIMIT {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    let trickle = |head: String| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            let started = Instant::now();
            s.write_all(head.as_bytes()).await.unwrap();
            // One byte every 200 ms for up to 5 s, until the server closes the socket.
            let mut buf = [0u8; 4096];
            let mut answer = Vec::new();
            while started.elapsed() < Duration::from_secs(5) {
                if s.write_all(b"x").await.is_err() {
                    break;
                }
                match timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
            (
                started.elapsed(),
                String::from_utf8_lossy(&answer).into_owned(),
            )
        })
    };
    let mut heads = Vec::new();
    for _ in 0..LIMIT {
        heads.push(trickle(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_owned(),
        ));
    }
    // A body is read only for a caller with a valid credential (others get a 401 first).
    let token = common::app_session_token(&state, "s", &[]).await;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        bodies.push(trickle(format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
        )));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A well-behaved client is served while all of them are open.
    let asked = Instant::now();
    let r = timeout(
        Duration::from_secs(3),
        reqwest::Client::new().get(format!("{base}/models")).send(),
    )
    .await
    .expect("a well-behaved client is served")
    .unwrap();
    assert_eq!(r.status(), 401, "answered (no credentials)");
    assert!(asked.elapsed() < Duration::from_secs(3));

    // Every slow socket is closed after its timeout.
    for s in &mut idle {
        assert!(
            closed_within(s, Duration::from_secs(4)).await.is_some(),
            "an idle socket is closed"
        );
    }
    for h in heads {
        let (took, _) = h.await.unwrap();
        assert!(
            took < Duration::from_secs(4),
            "a trickled head is cut off: {took:?}"
        );
    }
    for b in bodies {
        let (took, answer) = b.await.unwrap();
        assert!(
            took < Duration::from_secs(4),
            "a trickled body is cut off: {took:?}"
        );
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
    }

    // A kept-alive connection that goes quiet is closed too.
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = closed_within(&mut kept, Duration::from_secs(4)).await;
    assert!(answered.is_some_and(|a| a.starts_with("HTTP/1.1 401")));
}
