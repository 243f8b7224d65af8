//! What the in-process server tests share: a SQLite store with the default account and a
//! role `app` (trusting anyone) whose one inline policy is given, and the server state.

use gatehouse_server::{AppState, ServerConfig};
use gatehouse_store::{MasterKey, NewRole, PrincipalKind, Store};
use std::sync::Arc;

pub const ACCOUNT: &str = "111122223333";

/// The state, and the directory its store lives in (keep it alive).
pub async fn state_with_role(policy: &str) -> (Arc<AppState>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path(), MasterKey::generate())
        .await
        .unwrap();
    store
        .ensure_default_account(ACCOUNT, "default")
        .await
        .unwrap();
    store
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
    store
        .put_inline_policy(ACCOUNT, PrincipalKind::Role, "app", "invoke", policy)
        .await
        .unwrap();
    let config = ServerConfig {
        region: "local".into(),
        root_access_key_id: "AKIAROOT000000000000".into(),
        root_secret: gatehouse_auth::Secret::from_string("x".repeat(40)),
        account_id: ACCOUNT.into(),
    };
    (AppState::new(store, config), dir)
}

/// Serves the router of `state` on a loopback listener, with one deployment `m` (provider
/// `vllm`) of the upstream at `upstream_base_url`; returns the gateway's `/v1` base URL.
#[allow(dead_code)] // not every test binary serves the gateway
pub async fn serve_gateway(state: &Arc<AppState>, upstream_base_url: &str) -> String {
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(gatehouse_server::serve(
        Arc::clone(state),
        listener,
        std::future::pending(),
    ));
    base
}

/// A bearer token for a session of role `app` named `session_name`, with `tags`, minted
/// directly (as `AssumeRole` would, without its checks on the tags).
#[allow(dead_code)] // not every test binary mints sessions
pub fn session_token(state: &AppState, session_name: &str, tags: &[(&str, &str)]) -> String {
    use gatehouse_auth::session::{self, SessionClaims};
    let (akid, secret) = session::generate_temporary_credentials();
    let now = chrono::Utc::now();
    let mut c = SessionClaims::new(
        akid,
        format!("arn:gatehouse:sts::{ACCOUNT}:assumed-role/app/{session_name}"),
        ACCOUNT,
        now,
        now + chrono::Duration::hours(1),
    );
    c.role_arn = Some(format!("arn:gatehouse:iam::{ACCOUNT}:role/app"));
    c.session_name = Some(session_name.into());
    for (k, v) in tags {
        c.tags.insert((*k).into(), (*v).into());
    }
    session::issue(&state.ring(), &c, &secret).unwrap()
}
