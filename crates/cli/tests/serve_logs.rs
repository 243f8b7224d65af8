//! `gatehouse serve` with `GATEHOUSE_LOG_FORMAT=json` writes JSON lines, and the lines
//! written while serving a request carry its id — the id its answer carries in
//! `x-request-id` and in its error body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn json_log_lines_parse_and_carry_the_request_id_of_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env("GATEHOUSE_LOG_FORMAT", "json")
            // The request layer's "answered" line is at debug.
            .env("GATEHOUSE_LOG", "info,gatehouse_server=debug")
            .env_remove("GATEHOUSE_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An unsigned Query call: AWS's XML error.
    let r = http
        .post(format!("{base}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=ListUsers&Version=2010-05-08")
        .send()
        .await
        .unwrap();
    let query_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!("<RequestId>{query_id}</RequestId>")),
        "{body}"
    );
    // A gateway call without credentials: OpenAI's error JSON.
    let r = http.get(format!("{base}/v1/models")).send().await.unwrap();
    let gateway_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["request_id"], gateway_id.as_str());

    // Stop the server and read everything it logged.
    let _ = server.0.kill();
    let _ = server.0.wait();
    let mut text = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Gatehouse listening"))),
        "{text}"
    );
    for id in [&query_id, &gateway_id] {
        let of_request: Vec<&Value> = lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id.as_str())
            .collect();
        assert!(!of_request.is_empty(), "no line carries {id}:\n{text}");
        assert!(
            of_request.iter().any(|l| l["message"] == "answered"),
            "{text}"
        );
    }
    // No secret in the log: the generated root secret never appears.
    let creds = std::fs::read_to_string(dir.path().join("data").join("root-credentials")).unwrap();
    for word in creds.split(|c: char| !c.is_ascii_alphanumeric() && c != '/' && c != '+') {
        if word.len() >= 30 {
            assert!(!text.contains(word), "a secret reached the log");
        }
    }
}
