//! Load test of the control plane: signed-request throughput and p50/p99 latency of
//! `GetUser` and `SimulatePrincipalPolicy` against a real server on SQLite and (with
//! `--postgres URL`) PostgreSQL, over loopback HTTP with keep-alive connections.
//!
//! Every request is freshly signed with SigV4 by a non-root user, so each one pays for
//! what a real client's does: signature verification, the access-key lookup, authorization
//! by the engine (compiled policies cached), the action, and the audit append.
//!
//! ```sh
//! cargo bench -p gatehouse-server --bench load -- --seconds 5 --connections 16 \
//!     [--postgres postgres://gatehouse:gatehouse@127.0.0.1:5432/gatehouse_test]
//! ```
//! The server runs in this process on its own 2-thread runtime; the load driver on
//! another. Both share the machine's cores, as a loopback test must.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use gatehouse_auth::Secret;
use gatehouse_auth::sigv4::{self, format_amz_date};
use gatehouse_server::ServeOptions;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";

struct Args {
    seconds: u64,
    connections: usize,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 5,
        connections: 16,
        postgres: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(5),
            "--connections" => {
                a.connections = it.next().and_then(|v| v.parse().ok()).unwrap_or(16);
            }
            "--postgres" => a.postgres = it.next(),
            _ => {} // `cargo bench` passes --bench; ignore what is not ours
        }
    }
    a
}

#[derive(Clone)]
struct Key {
    id: String,
    secret: Secret,
}

/// A keep-alive HTTP/1.1 connection that sends signed Query requests.
struct Conn {
    addr: SocketAddr,
    key: Key,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr, key: Key) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Conn { addr, key, sender }
    }

    /// Signs `body` now and sends it; returns the status and the body text.
    async fn call(&mut self, body: &str) -> (u16, String) {
        let host = self.addr.to_string();
        let date = format_amz_date(chrono::Utc::now());
        let ctype = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = [
            ("host", host.as_str()),
            ("x-amz-date", date.as_str()),
            ("content-type", ctype),
        ];
        let req = sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: body.as_bytes(),
        };
        let auth = sigv4::authorization_header(
            &req,
            &self.key.id,
            &self.key.secret,
            REGION,
            "iam",
            &["host", "x-amz-date", "content-type"],
        )
        .unwrap();
        let http = Request::post("/")
            .header("host", host)
            .header("x-amz-date", date)
            .header("content-type", ctype)
            .header("authorization", auth)
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .unwrap();
        self.sender.ready().await.unwrap();
        let resp = self.sender.send_request(http).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn field<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).map(|i| i + open.len()).unwrap();
    let end = xml[start..].find('<').unwrap() + start;
    &xml[start..end]
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Makes the benchmark's user (with a group, a managed and an inline policy, 20
/// statements in all) and returns its key and ARN.
async fn setup(addr: SocketAddr, root: Key) -> (Key, String) {
    let mut c = Conn::open(addr, root).await;
    let v = "Version=2010-05-08";
    let ok = |r: (u16, String)| {
        assert_eq!(r.0, 200, "{}", r.1);
        r.1
    };
    let created = ok(c
        .call(&format!("Action=CreateUser&{v}&UserName=bench"))
        .await);
    let arn = field(&created, "Arn").to_owned();
    let account = arn.split(':').nth(4).unwrap().to_owned();
    let mut statements = vec![serde_json::json!({
        "Sid": "Bench", "Effect": "Allow",
        "Action": ["iam:GetUser", "iam:SimulatePrincipalPolicy"], "Resource": "*"})];
    for i in 0..9 {
        statements.push(serde_json::json!({
            "Effect": "Allow", "Action": "ai:InvokeModel",
            "Resource": format!("arn:gatehouse:ai:local:{account}:model/team-{i}-*"),
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}));
    }
    let inline = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    ok(c.call(&format!(
        "Action=PutUserPolicy&{v}&UserName=bench&PolicyName=bench&PolicyDocument={}",
        enc(&inline.to_string())
    ))
    .await);
    let managed: Vec<_> = (0..10)
        .map(|i| {
            serde_json::json!({
            "Effect": if i == 0 { "Deny" } else { "Allow" }, "Action": "ai:*",
            "Resource": format!("arn:gatehouse:ai:local:{account}:deployment/d-{i}")})
        })
        .collect();
    let managed = serde_json::json!({"Version": "2012-10-17", "Statement": managed});
    let pol = ok(c
        .call(&format!(
            "Action=CreatePolicy&{v}&PolicyName=bench-managed&PolicyDocument={}",
            enc(&managed.to_string())
        ))
        .await);
    let pol_arn = field(&pol, "Arn").to_owned();
    ok(
        c.call(&format!("Action=CreateGroup&{v}&GroupName=bench-group"))
            .await,
    );
    ok(c.call(&format!(
        "Action=AttachGroupPolicy&{v}&GroupName=bench-group&PolicyArn={}",
        enc(&pol_arn)
    ))
    .await);
    ok(c.call(&format!(
        "Action=AddUserToGroup&{v}&GroupName=bench-group&UserName=bench"
    ))
    .await);
    let key = ok(c
        .call(&format!("Action=CreateAccessKey&{v}&UserName=bench"))
        .await);
    (
        Key {
            id: field(&key, "AccessKeyId").to_owned(),
            secret: Secret::from_string(field(&key, "SecretAccessKey").to_owned()),
        },
        arn,
    )
}

struct Outcome {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

async fn run(addr: SocketAddr, key: Key, body: String, conns: usize, secs: u64) -> Outcome {
    // Warm-up: open the connections, fill the caches.
    let mut pool = Vec::new();
    for _ in 0..conns {
        let mut c = Conn::open(addr, key.clone()).await;
        let (status, text) = c.call(&body).await;
        assert_eq!(status, 200, "{text}");
        pool.push(c);
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let tasks: Vec<_> = pool
        .into_iter()
        .map(|mut c| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let (status, _) = c.call(&body).await;
                    lat.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
                    if status != 200 {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies_us.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies_us.sort_unstable();
    Outcome {
        requests: latencies_us.len(),
        errors,
        elapsed,
        latencies_us,
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

fn fresh_postgres_database(base: &str) -> String {
    let name = format!("gh_bench_{}", hex::encode(rand::random::<[u8; 6]>()));
    let status = std::process::Command::new("psql")
        .args([base, "-qAtc", &format!("create database {name}")])
        .status()
        .expect("psql");
    assert!(status.success(), "could not create database {name}");
    match base.rfind('/') {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => panic!("not a postgres URL: {base}"),
    }
}

fn drop_postgres_database(base: &str, url: &str) {
    let name = url.rsplit('/').next().unwrap_or_default();
    let _ = std::process::Command::new("psql")
        .args([
            base,
            "-qAtc",
            &format!("drop database if exists {name} with (force)"),
        ])
        .status();
}

fn bench_backend(label: &str, database_url: Option<String>, a: &Args) {
    let dir = tempfile::tempdir().unwrap();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opts = ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().to_path_buf(),
        database_url,
        account_id: None,
        region: "local".to_owned(),
        key_encryption: None,
        database_tls: Default::default(),
    };
    let (addr, root) = server_rt.block_on(async {
        let (state, listener, root) = gatehouse_server::prepare(&opts).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(gatehouse_server::serve(
            state,
            listener,
            std::future::pending::<()>(),
        ));
        (addr, root)
    });
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async {
        let root = Key {
            id: root.access_key_id.clone(),
            secret: root.secret.clone(),
        };
        let (key, arn) = setup(addr, root).await;
        let get_user = "Action=GetUser&Version=2010-05-08&UserName=bench".to_owned();
        let account = arn.split(':').nth(4).unwrap_or_default();
        let simulate = format!(
            "Action=SimulatePrincipalPolicy&Version=2010-05-08&PolicySourceArn={}\
             &ActionNames.member.1=ai%3AInvokeModel&ActionNames.member.2=ai%3ADeleteDeployment\
             &ResourceArns.member.1={}&ContextEntries.member.1.ContextKeyName=aws%3ASourceIp\
             &ContextEntries.member.1.ContextKeyValues.member.1=10.1.2.3\
             &ContextEntries.member.1.ContextKeyType=ip",
            enc(&arn),
            enc(&format!(
                "arn:gatehouse:ai:local:{account}:model/team-3-llama"
            ))
        );
        for (name, body) in [("GetUser", get_user), ("SimulatePrincipalPolicy", simulate)] {
            let o = run(addr, key.clone(), body, a.connections, a.seconds).await;
            let rps = o.requests as f64 / o.elapsed.as_secs_f64();
            println!(
                "| {label} | {name} | {} | {} | {rps:.0} | {:.2} | {:.2} |",
                o.requests,
                o.errors,
                percentile(&o.latencies_us, 50.0),
                percentile(&o.latencies_us, 99.0),
            );
        }
    });
    server_rt.shutdown_timeout(Duration::from_secs(1));
}

fn main() {
    let a = args();
    println!(
        "{} s per case, {} keep-alive connections, each request freshly SigV4-signed",
        a.seconds, a.connections
    );
    println!("| backend | action | requests | errors | req/s | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    bench_backend("SQLite", None, &a);
    if let Some(base) = &a.postgres {
        let url = fresh_postgres_database(base);
        bench_backend("PostgreSQL", Some(url.clone()), &a);
        drop_postgres_database(base, &url);
    } else {
        println!("(PostgreSQL skipped: pass --postgres URL)");
    }
}
