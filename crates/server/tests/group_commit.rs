//! `audit::GroupCommit`, the control plane's way to the audit chain for calls that wrote
//! nothing: concurrent records share transactions, a call returns only once its record is
//! in the chain, and a batch that fails to commit fails its calls (fail closed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_server::audit::{AuditError, GroupCommit};
use gatehouse_store::{AuditVerification, MasterKey, Store};
use std::sync::Arc;

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path(), MasterKey::generate())
        .await
        .unwrap();
    (store, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_in_the_chain_once_when_its_call_returns() {
    let (store, _dir) = store().await;
    let commit = Arc::new(GroupCommit::default());
    let mut calls = Vec::new();
    for i in 0..200 {
        let (store, commit) = (store.clone(), Arc::clone(&commit));
        calls.push(tokio::spawn(async move {
            let record = format!("{{\"call\":{i}}}");
            commit.append(&store, record.clone()).await.unwrap();
            // Acknowledged means committed: the record is readable at once.
            let all = store.audit_entries(0, 1000).await.unwrap();
            assert!(
                all.iter().any(|e| e.record == record),
                "call {i} not in the chain"
            );
        }));
    }
    for c in calls {
        c.await.unwrap();
    }
    assert_eq!(
        store.verify_audit().await.unwrap(),
        AuditVerification::Intact(200)
    );
    let mut records: Vec<String> = store
        .audit_entries(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record)
        .collect();
    records.sort();
    records.dedup();
    assert_eq!(records.len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_does_not_commit_fails_its_calls() {
    let (store, _dir) = store().await;
    let commit = GroupCommit::default();
    commit.append(&store, "{\"n\":1}".into()).await.unwrap();
    store.close().await;
    let failed = commit.append(&store, "{\"n\":2}".into()).await;
    assert!(matches!(failed, Err(AuditError::BatchFailed)), "{failed:?}");
}
