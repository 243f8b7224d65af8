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

/// A session token of role `app` (an hour long) named `session_name`, with session tags.
#[allow(dead_code)] // not every test binary mints sessions
pub fn app_session_token(state: &AppState, session_name: &str, tags: &[(&str, &str)]) -> String {
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

/// Serves the whole router on a loopback port; returns the gateway's base URL (`.../v1`).
#[allow(dead_code)] // not every test binary serves
pub async fn serve(state: &Arc<AppState>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(gatehouse_server::serve(
        Arc::clone(state),
        listener,
        std::future::pending(),
    ));
    base
}

/// A user with `policy` inline and an access key; returns the gateway's Bearer credential
/// (`ACCESS_KEY_ID:SECRET`).
#[allow(dead_code)] // not every test binary makes users
pub async fn user_with_key(state: &AppState, name: &str, policy: &str) -> String {
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
    format!("{}:{}", key.access_key_id, secret.expose_secret())
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
