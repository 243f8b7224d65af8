//! `gatehouse signin ...` on a real SQLite store: a source added with its client secret
//! read from the environment (sealed, never printed), listed as text and JSON, an
//! assignment made, listed and removed, the source removed; bad input refused with the
//! reason and exit code 2, changing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::gatehouse;

use gatehouse_store::{MasterKey, NewRole, Store};
use std::process::Command;

const ACCT: &str = "111122223333";
const ROLE: &str = "arn:gatehouse:iam::111122223333:role/ml";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
const SECRET: &str = "cli-idp-secret-93b1";

async fn open(dir: &std::path::Path) -> Store {
    Store::open_sqlite(dir, MasterKey::load_or_create(dir).unwrap())
        .await
        .unwrap()
}

async fn seed(dir: &std::path::Path) {
    let store = open(dir).await;
    store.ensure_default_account(ACCT, "default").await.unwrap();
    store
        .create_role(
            ACCT,
            &NewRole {
                name: "ml".into(),
                trust_policy: TRUST.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store.close().await;
}

fn run(dir: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["signin"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", dir]);
    gatehouse(&all)
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_and_assignments_on_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    seed(tmp.path()).await;
    let dir = tmp.path().to_str().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "signin",
            "source",
            "add",
            "corp",
            "--issuer",
            "http://127.0.0.1:9/oidc",
            "--client-id",
            "gatehouse",
            "--client-secret-env",
            "CORP_IDP_SECRET",
            "--scope",
            "openid",
            "--scope",
            "groups",
            "--tag",
            "department=dept",
            "--data-dir",
            dir,
        ])
        .env("CORP_IDP_SECRET", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("(secret sealed)"), "{stdout}");
    assert!(!stdout.contains(SECRET));

    let (code, out, _) = run(dir, &["source", "list", "--format", "json"]);
    assert_eq!(code, 0);
    let list = json(&out);
    assert_eq!(list[0]["name"], "corp");
    assert_eq!(list[0]["has_client_secret"], true);
    assert_eq!(list[0]["scopes"], serde_json::json!(["openid", "groups"]));
    assert_eq!(list[0]["claims"]["tags"]["department"], "dept");
    assert!(!out.contains(SECRET));
    // Sealed at rest: in no file of the data directory (database, WAL).
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    }

    let (code, out, err) = run(
        dir,
        &[
            "assign",
            "--source",
            "corp",
            "--subject",
            "group:ml-eng",
            "--role",
            ROLE,
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let made = json(&out);
    let id = made[0]["assignment_id"].as_str().unwrap().to_owned();
    assert_eq!(made[0]["max_session_secs"], 3600);
    let (code, out, _) = run(dir, &["assignments"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&id) && out.contains("group:ml-eng") && out.contains(ROLE),
        "{out}"
    );

    // Refusals: the reason, exit code 2, nothing changed.
    let before = (
        run(dir, &["source", "list", "--format", "json"]).1,
        run(dir, &["assignments", "--format", "json"]).1,
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "source",
                "add",
                "x",
                "--issuer",
                "http://idp.example.com",
                "--client-id",
                "c",
            ],
            "https",
        ),
        (
            &[
                "source",
                "add",
                "y",
                "--issuer",
                "https://idp.example.com",
                "--client-id",
                "c",
                "--client-secret-env",
                "GATEHOUSE_TEST_UNSET_VARIABLE",
            ],
            "GATEHOUSE_TEST_UNSET_VARIABLE is not set",
        ),
        (
            &[
                "source",
                "add",
                "z",
                "--issuer",
                "https://idp.example.com",
                "--client-id",
                "c",
                "--tag",
                "nokey",
            ],
            "KEY=CLAIM",
        ),
        (
            &[
                "assign",
                "--source",
                "corp",
                "--subject",
                "ml-eng",
                "--role",
                ROLE,
            ],
            "group:NAME",
        ),
        (
            &[
                "assign",
                "--source",
                "corp",
                "--subject",
                "group:x",
                "--role",
                "arn:gatehouse:iam::111122223333:role/none",
            ],
            "does not exist",
        ),
        (
            &[
                "assign",
                "--source",
                "corp",
                "--subject",
                "group:x",
                "--role",
                ROLE,
                "--max-session-duration",
                "7200",
            ],
            "exceeds the role's own maximum",
        ),
        (&["source", "remove", "corp"], "still has assignments"),
        (&["unassign", "SIGANOSUCH"], "SIGANOSUCH"),
    ];
    for (args, reason) in cases {
        let (code, _, err) = run(dir, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(reason), "{args:?}: {err}");
    }
    let after = (
        run(dir, &["source", "list", "--format", "json"]).1,
        run(dir, &["assignments", "--format", "json"]).1,
    );
    assert_eq!(before, after);

    let (code, _, err) = run(dir, &["unassign", &id]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(dir, &["source", "remove", "corp"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(dir, &["source", "list", "--format", "json"]);
    assert_eq!(json(&out), serde_json::json!([]));
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_applies_the_signin_table_and_refuses_a_bad_one() {
    let tmp = tempfile::tempdir().unwrap();
    seed(tmp.path()).await;
    let dir = tmp.path().to_str().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[signin.sources]]\nname = \"corp\"\nissuer = \"http://idp.example.com\"\nclient_id = \"c\"\n",
    )
    .unwrap();
    let (code, _, err) = gatehouse(&[
        "serve",
        "--config",
        bad.to_str().unwrap(),
        "--data-dir",
        dir,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml: signin.sources[0]: issuer"), "{err}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let good = tmp.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            r#"
[[signin.sources]]
name = "corp"
issuer = "https://idp.example.com"
client_id = "gatehouse"
client_secret_env = "CORP_IDP_SECRET"
[signin.sources.claims]
tags = {{ team = "team" }}

[[signin.assignments]]
source = "corp"
group = "ml-eng"
role = "{ROLE}"
"#
        ),
    )
    .unwrap();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
                dir,
            ])
            .arg("--config")
            .arg(&good)
            .env("CORP_IDP_SECRET", SECRET)
            .env_remove("GATEHOUSE_DATABASE_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // The table is applied before the server answers.
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status().is_success()
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(server);
    let store = open(tmp.path()).await;
    let sources = store.list_signin_sources(ACCT).await.unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].claims.tags["team"], "team");
    assert_eq!(
        store
            .signin_source_client_secret(ACCT, "corp")
            .await
            .unwrap()
            .unwrap()
            .expose_str(),
        Some(SECRET)
    );
    let assignments = store.list_signin_assignments(ACCT, None).await.unwrap();
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].role_arn, ROLE);
    store.close().await;
}
