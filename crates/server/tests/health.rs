//! The probes: `/healthz` answers while the process runs; `/readyz` answers 200 only while
//! the store answers (a bounded query) and 503 once it does not — on SQLite with the table
//! it reads broken, on PostgreSQL with the connection to the database cut. Neither needs
//! credentials, and neither body says anything but a fixed word.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::ACCOUNT;
use gatehouse_server::{AppState, ServerConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn get(base: &str, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.text().await.unwrap(), headers)
}

/// Nothing a prober could learn from: no version, backend, error text or path.
fn reveals_nothing(body: &str) {
    assert!(
        matches!(body, "ok\n" | "ready\n" | "not ready\n"),
        "probe body says more than a word: {body:?}"
    );
}

#[tokio::test]
async fn probes_answer_without_credentials_and_readyz_follows_the_sqlite_store() {
    let (state, dir) = common::state().await;
    let base = common::serve_root(&state).await;

    let (status, body, headers) = get(&base, "/healthz").await;
    assert_eq!(status, 200);
    reveals_nothing(&body);
    assert_eq!(headers["cache-control"], "no-store");
    let (status, body, _) = get(&base, "/readyz").await;
    assert_eq!(status, 200);
    reveals_nothing(&body);

    // Break the table every request path reads first (the store generation), on the real
    // file, from another connection: the store no longer answers.
    let url = format!(
        "sqlite://{}",
        dir.path().join(gatehouse_store::SQLITE_FILE).display()
    );
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("ALTER TABLE generation RENAME TO generation_broken")
        .execute(&raw)
        .await
        .unwrap();
    let (status, body, _) = get(&base, "/readyz").await;
    assert_eq!(status, 503);
    reveals_nothing(&body);
    assert!(!body.contains("generation"), "{body}");
    // Liveness is not readiness: the process is still up.
    assert_eq!(get(&base, "/healthz").await.0, 200);

    sqlx::query("ALTER TABLE generation_broken RENAME TO generation")
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(get(&base, "/readyz").await.0, 200);
}

#[tokio::test]
async fn probes_take_only_get() {
    let (state, _dir) = common::state().await;
    let base = common::serve_root(&state).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

/// A loopback TCP forwarder to PostgreSQL that the test can cut: the listening socket and
/// every forwarded connection end at once, as when the database host goes away.
struct Forwarder {
    addr: std::net::SocketAddr,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Forwarder {
    async fn start(target: String) -> Forwarder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let spawned = Arc::clone(&tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                spawned.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Forwarder { addr, tasks }
    }

    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test]
async fn readyz_is_503_within_its_bound_when_postgresql_is_unreachable() {
    let Some(pg) = gatehouse_testenv::postgres_url() else {
        return;
    };
    let mut url = url::Url::parse(&pg).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let forwarder = Forwarder::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(forwarder.addr.port())).unwrap();
    let mut opts = gatehouse_store::StoreOptions::postgres(url.to_string());
    opts.postgres_schema = Some(format!("readyz_{}", std::process::id()));
    let store = gatehouse_store::Store::open(&opts, gatehouse_store::MasterKey::generate())
        .await
        .unwrap();
    store
        .ensure_default_account(ACCOUNT, "default")
        .await
        .unwrap();
    let state = AppState::new(
        store,
        ServerConfig {
            region: "local".into(),
            root_access_key_id: common::ROOT_KEY_ID.into(),
            root_secret: gatehouse_auth::Secret::from_string("x".repeat(40)),
            account_id: ACCOUNT.into(),
        },
    );
    let base = common::serve_root(&state).await;
    assert_eq!(get(&base, "/readyz").await.0, 200);

    forwarder.cut();
    let started = Instant::now();
    let (status, body, _) = get(&base, "/readyz").await;
    assert_eq!(status, 503);
    reveals_nothing(&body);
    // Bounded: the probe answers before a typical probe timeout, not after the pool's.
    assert!(
        started.elapsed() < gatehouse_server::health::READY_TIMEOUT + Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(get(&base, "/healthz").await.0, 200);
}
