//! What the in-process server tests share: a SQLite store with the default account and a
//! role `app` (trusting anyone) whose one inline policy is given, the server state, and a
//! signing Query API client for the router served on a loopback port.
#![allow(dead_code)]

use gatehouse_auth::sigv4;
use gatehouse_server::{AppState, ServerConfig};
use gatehouse_store::{MasterKey, NewRole, PrincipalKind, Store};
use std::sync::Arc;

pub const ACCOUNT: &str = "111122223333";
pub const ROOT_KEY_ID: &str = "AKIAROOT000000000000";
pub const IAM_VERSION: &str = "2010-05-08";
pub const STS_VERSION: &str = "2011-06-15";

fn root_secret() -> String {
    "x".repeat(40)
}

/// A state over a fresh SQLite store with the default account, and its directory.
pub async fn state() -> (Arc<AppState>, tempfile::TempDir) {
    state_on(gatehouse_pipeline::Clock::system()).await
}

/// [`state`] reading time from `clock` (a test's `ManualClock`).
pub async fn state_on(clock: gatehouse_pipeline::Clock) -> (Arc<AppState>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path(), MasterKey::generate())
        .await
        .unwrap();
    store
        .ensure_default_account(ACCOUNT, "default")
        .await
        .unwrap();
    let config = ServerConfig {
        region: "local".into(),
        root_access_key_id: ROOT_KEY_ID.into(),
        root_secret: gatehouse_auth::Secret::from_string(root_secret()),
        account_id: ACCOUNT.into(),
    };
    (AppState::with_clock(store, config, clock), dir)
}

/// The state, and the directory its store lives in (keep it alive).
pub async fn state_with_role(policy: &str) -> (Arc<AppState>, tempfile::TempDir) {
    state_with_role_on(policy, gatehouse_pipeline::Clock::system()).await
}

/// [`state_with_role`] reading time from `clock`.
pub async fn state_with_role_on(
    policy: &str,
    clock: gatehouse_pipeline::Clock,
) -> (Arc<AppState>, tempfile::TempDir) {
    let (state, dir) = state_on(clock).await;
    state
        .store
        .create_role(
            ACCOUNT,
            &NewRole {
                name: "app".into(),
                trust_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    state
        .store
        .put_inline_policy(ACCOUNT, PrincipalKind::Role, "app", "invoke", policy)
        .await
        .unwrap();
    (state, dir)
}

/// The claims of a fresh one-hour session of role `app` named `session_name`, bound to the
/// role's unique id as `AssumeRole` binds them, and its secret.
pub async fn app_session(
    state: &AppState,
    session_name: &str,
    issued: chrono::DateTime<chrono::Utc>,
    ttl: chrono::Duration,
) -> (
    gatehouse_auth::session::SessionClaims,
    gatehouse_auth::Secret,
) {
    let role = state.store.get_role(ACCOUNT, "app").await.unwrap();
    let (akid, secret) = gatehouse_auth::session::generate_temporary_credentials();
    let mut c = gatehouse_auth::session::SessionClaims::new(
        akid,
        format!("arn:gatehouse:sts::{ACCOUNT}:assumed-role/app/{session_name}"),
        ACCOUNT,
        issued,
        issued + ttl,
    );
    c.role_arn = Some(role.arn());
    c.session_name = Some(session_name.into());
    c.principal_id = format!("{}:{session_name}", role.role_id);
    (c, secret)
}

/// Serves the whole router on a loopback port; returns `http://127.0.0.1:PORT` (the Query
/// APIs' endpoint).
pub async fn serve_root(state: &Arc<AppState>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gatehouse_server::serve(
        Arc::clone(state),
        listener,
        std::future::pending(),
    ));
    base
}

/// Credentials a test signs with.
#[derive(Debug, Clone)]
pub struct Creds {
    pub key_id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl Creds {
    pub fn root() -> Creds {
        Creds {
            key_id: ROOT_KEY_ID.into(),
            secret: root_secret(),
            token: None,
        }
    }

    /// A user with an access key (made in the store directly) and one inline policy.
    pub async fn user(state: &AppState, name: &str, policy: &str) -> Creds {
        let store = &state.store;
        store
            .create_user(
                ACCOUNT,
                &gatehouse_store::NewUser {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        store
            .put_inline_policy(ACCOUNT, PrincipalKind::User, name, "p", policy)
            .await
            .unwrap();
        let (key, secret) = store.create_access_key(ACCOUNT, name).await.unwrap();
        Creds {
            key_id: key.access_key_id,
            secret: secret.expose_str().unwrap_or_default().to_owned(),
            token: None,
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The text of the first `<NAME>` element.
    pub fn field(&self, name: &str) -> Option<String> {
        let open = format!("<{name}>");
        let start = self.body.find(&open)? + open.len();
        let end = self.body[start..].find(&format!("</{name}>"))? + start;
        Some(self.body[start..end].to_owned())
    }

    /// The AWS error code, `None` for a success.
    pub fn code(&self) -> Option<String> {
        if self.status == 200 {
            None
        } else {
            self.field("Code")
        }
    }
}

/// A Query API client for one server.
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

fn form(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

impl Api {
    pub fn new(base: String) -> Api {
        Api {
            base,
            http: reqwest::Client::new(),
        }
    }

    fn host(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// One IAM action (`Version` 2010-05-08), signed for `iam`.
    pub async fn iam(&self, creds: &Creds, action: &str, params: &[(&str, &str)]) -> Reply {
        let mut all = vec![("Action", action), ("Version", IAM_VERSION)];
        all.extend_from_slice(params);
        self.post(creds, "iam", "", &form(&all)).await
    }

    /// One STS action (`Version` 2011-06-15), signed for `sts`.
    pub async fn sts(&self, creds: &Creds, action: &str, params: &[(&str, &str)]) -> Reply {
        let mut all = vec![("Action", action), ("Version", STS_VERSION)];
        all.extend_from_slice(params);
        self.post(creds, "sts", "", &form(&all)).await
    }

    /// A POST signed in the `Authorization` header for `service`.
    pub async fn post(&self, creds: &Creds, service: &str, query: &str, body: &str) -> Reply {
        let host = self.host();
        let amz_date = sigv4::format_amz_date(chrono::Utc::now());
        let mut headers = vec![
            ("host", host.as_str()),
            ("x-amz-date", amz_date.as_str()),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ];
        if let Some(t) = &creds.token {
            headers.push(("x-amz-security-token", t.as_str()));
        }
        let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
        let req = sigv4::Request {
            method: "POST",
            path: "/",
            query,
            headers: &headers,
            body: body.as_bytes(),
        };
        let secret = gatehouse_auth::Secret::from(creds.secret.as_str());
        let authz =
            sigv4::authorization_header(&req, &creds.key_id, &secret, "us-east-1", service, &names)
                .unwrap();
        let url = if query.is_empty() {
            format!("{}/", self.base)
        } else {
            format!("{}/?{query}", self.base)
        };
        let mut b = self.http.post(url).header("authorization", authz);
        for (n, v) in &headers {
            if *n != "host" {
                b = b.header(*n, *v);
            }
        }
        Self::reply(b.body(body.to_owned())).await
    }

    /// The query string of a URL presigned for `method` and `params` (host signed; the
    /// payload hash as given, see `sigv4::presigned_query`).
    pub fn presign(
        &self,
        method: &str,
        creds: &Creds,
        service: &str,
        params: &[(&str, &str)],
        payload_hash: &str,
    ) -> String {
        let host = self.host();
        let headers = [("host", host.as_str())];
        let query = form(params);
        let req = sigv4::Request {
            method,
            path: "/",
            query: &query,
            headers: &headers,
            body: b"",
        };
        let secret = gatehouse_auth::Secret::from(creds.secret.as_str());
        sigv4::presigned_query(
            &req,
            &creds.key_id,
            &secret,
            "us-east-1",
            service,
            chrono::Utc::now(),
            300,
            payload_hash,
        )
        .unwrap()
    }

    /// Sends a presigned URL's query with `method`, extra headers and a body.
    pub async fn send_presigned(
        &self,
        method: reqwest::Method,
        query: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut b = self
            .http
            .request(method, format!("{}/?{query}", self.base))
            .body(body.to_owned());
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        Self::reply(b).await
    }

    async fn reply(b: reqwest::RequestBuilder) -> Reply {
        let r = b.send().await.unwrap();
        let status = r.status().as_u16();
        Reply {
            status,
            body: r.text().await.unwrap(),
        }
    }
}

/// A session token of role `app` (an hour long) named `session_name`, with session tags.
pub async fn app_session_token(
    state: &AppState,
    session_name: &str,
    tags: &[(&str, &str)],
) -> String {
    let now = chrono::Utc::now();
    let (mut c, secret) = app_session(state, session_name, now, chrono::Duration::hours(1)).await;
    for (k, v) in tags {
        c.tags.insert((*k).into(), (*v).into());
    }
    gatehouse_auth::session::issue(&state.ring(), &c, &secret).unwrap()
}

/// Serves the whole router on a loopback port; returns the gateway's base URL (`.../v1`).
pub async fn serve(state: &Arc<AppState>) -> String {
    format!("{}/v1", serve_root(state).await)
}

/// A user with `policy` inline and an access key; returns the gateway's Bearer credential
/// (`ACCESS_KEY_ID:SECRET`).
pub async fn user_with_key(state: &AppState, name: &str, policy: &str) -> String {
    let c = Creds::user(state, name, policy).await;
    format!("{}:{}", c.key_id, c.secret)
}

/// [`serve`], with one deployment `m` (provider `vllm`) of the upstream at
/// `upstream_base_url`.
#[allow(dead_code)] // not every test binary serves a model
pub async fn serve_model(state: &Arc<AppState>, upstream_base_url: &str) -> String {
    state
        .store
        .put_deployment(
            ACCOUNT,
            &gatehouse_store::NewDeployment {
                model_id: "m".into(),
                provider: "vllm".into(),
                base_url: upstream_base_url.into(),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    serve(state).await
}
