//! Deployments from the config file are loaded by every node at start, and nodes that
//! share a store may start together: each must come up, whichever created a deployment.

#![allow(clippy::unwrap_used)]

mod common;

use gatehouse_server::gateway::{GatewaySettings, load_configured_deployments};

/// Before: each loader looked the deployment up, found it missing, and created it; all but
/// the first creator failed with "already exists" and the node exited at start (seen as a
/// second node that never answered in the e2e cross-node budget test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_all_load_the_configured_deployments() {
    let (state, _dir) = common::state().await;
    let settings: GatewaySettings = serde_json::from_value(serde_json::json!({
        "deployments": [
            {"model": "m1", "base_url": "http://127.0.0.1:9/v1"},
            {"model": "m2", "base_url": "http://127.0.0.1:9/v1", "upstream_model": "big"}
        ]
    }))
    .unwrap();
    state.gateway.configure(settings);
    let loaders: Vec<_> = (0..8)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move { load_configured_deployments(&state).await })
        })
        .collect();
    for l in loaders {
        assert_eq!(l.await.unwrap(), Ok(2));
    }
    let mut models: Vec<_> = state
        .store
        .list_deployments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.model_id, d.upstream_model))
        .collect();
    models.sort();
    assert_eq!(
        models,
        vec![("m1".into(), None), ("m2".into(), Some("big".into()))]
    );
}
