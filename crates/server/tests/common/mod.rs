//! What the in-process server tests share: a SQLite store with the default account and a
//! role `app` (trusting anyone) whose one inline policy is given, and the server state.
// Each test binary uses its own part of what is shared.
#![allow(dead_code)]

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

/// Serves the whole router on a loopback port; returns `http://127.0.0.1:PORT`.
pub async fn serve(state: &Arc<AppState>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gatehouse_server::serve(
        Arc::clone(state),
        listener,
        std::future::pending(),
    ));
    base
}

/// A user with `policy` inline and an access key; returns the gateway's Bearer credential
/// (`ACCESS_KEY_ID:SECRET`).
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
