//! The pipeline as a new face uses it — `authenticate` → `decide` → `record` on a [`Core`]
//! over a real SQLite store, with no server around it: each credential kind resolves to
//! the stored principal, a decision sees the face's keys and the global ones, a denial
//! carries a sealed message the ring opens, and every call leaves one audit record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_audit::{AuditRecord, Decision, FaceDetail};
use gatehouse_auth::Secret;
use gatehouse_auth::session::SigningKeyRing;
use gatehouse_pipeline::{
    Clock, Core, CoreConfig, DecideError, PipelineError, RequestParts,
    origin::{ListenerInfo, Origin},
};
use gatehouse_store::{MasterKey, NewUser, PrincipalKind, Store};
use http::HeaderMap;
use std::time::Duration;

const ACCOUNT: &str = "111122223333";

struct Fixture {
    core: Core,
    key_id: String,
    secret: Secret,
    _dir: tempfile::TempDir,
}

/// A core with one user, `alice`, allowed `mcp:CallTool` on tools named `read-*` only
/// when `mcp:Server` is `docs`, and an access key of hers.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path(), MasterKey::generate())
        .await
        .unwrap();
    store
        .ensure_default_account(ACCOUNT, "default")
        .await
        .unwrap();
    store
        .create_user(
            ACCOUNT,
            &NewUser {
                name: "alice".into(),
                path: None,
                permissions_boundary: None,
                tags: Vec::new(),
            },
        )
        .await
        .unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"mcp:CallTool",
        "Resource":"arn:gatehouse:mcp:local:111122223333:tool/read-*",
        "Condition":{"StringEquals":{"mcp:Server":"docs"}}}]}"#;
    store
        .put_inline_policy(ACCOUNT, PrincipalKind::User, "alice", "tools", policy)
        .await
        .unwrap();
    let (key, secret) = store.create_access_key(ACCOUNT, "alice").await.unwrap();
    let config = CoreConfig {
        region: "local".into(),
        root_access_key_id: "AKIAROOTROOTROOTROOT".into(),
        root_secret: Secret::new("root-secret".to_owned()),
        account_id: ACCOUNT.into(),
    };
    let core = Core::new(store, config, SigningKeyRing::generate(), Clock::system());
    Fixture {
        core,
        key_id: key.access_key_id,
        secret,
        _dir: dir,
    }
}

fn bearer(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", format!("Bearer {value}").parse().unwrap());
    h
}

fn parts(headers: &HeaderMap) -> RequestParts<'_> {
    RequestParts {
        method: "POST",
        path: "/mcp",
        query: "",
        headers,
        body: Some(b""),
    }
}

fn origin() -> Origin {
    Origin::of(
        &[],
        "127.0.0.1:40000".parse().unwrap(),
        &HeaderMap::new(),
        Some(ListenerInfo::main()),
    )
}

const TOOL: &str = "arn:gatehouse:mcp:local:111122223333:tool/read-file";

/// The records the queue writer has appended so far, waiting (bounded) for `n`.
async fn records(store: &Store, n: usize) -> Vec<AuditRecord> {
    for _ in 0..500 {
        let got = store.audit_entries(0, 100).await.unwrap();
        if got.len() >= n {
            return got
                .iter()
                .map(|e| serde_json::from_str(&e.record).unwrap())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} audit records after 5 s");
}

#[tokio::test]
async fn an_allowed_call_is_authenticated_decided_and_recorded() {
    let f = fixture().await;
    let headers = bearer(&format!("{}:{}", f.key_id, f.secret.expose_str().unwrap()));
    let mut call = f.core.call("req-1".into(), origin());
    let principal = call.authenticate(&parts(&headers), "mcp").await.unwrap();
    assert_eq!(principal.arn, "arn:gatehouse:iam::111122223333:user/alice");
    let decided = call
        .decide("mcp:CallTool", TOOL, [("mcp:Server", "docs")])
        .unwrap();
    assert!(decided.allowed());
    // The global keys every face sets are in the request the engine saw.
    let ctx = &decided.request.context;
    assert_eq!(
        ctx.get("aws:SourceIp").map(|v| v.as_slice().to_vec()),
        Some(vec!["127.0.0.1".to_owned()])
    );
    assert!(ctx.get("aws:CurrentTime").is_some());
    assert!(ctx.get("aws:userid").is_some());
    call.record(None, FaceDetail::default()).unwrap();

    let recs = records(&f.core.store, 1).await;
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.request_id, "req-1");
    assert_eq!(r.principal, "arn:gatehouse:iam::111122223333:user/alice");
    assert_eq!(r.action, "mcp:CallTool");
    assert_eq!(r.resource, TOOL);
    assert_eq!(r.decision, Decision::Allow);
    assert_eq!(r.source_ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn a_denied_call_carries_a_sealed_message_and_is_recorded_as_denied() {
    let f = fixture().await;
    let headers = bearer(&format!("{}:{}", f.key_id, f.secret.expose_str().unwrap()));
    let mut call = f.core.call("req-2".into(), origin());
    call.authenticate(&parts(&headers), "mcp").await.unwrap();
    // The face's own key decides: the same tool on another server is not allowed.
    let denied = match call.decide("mcp:CallTool", TOOL, [("mcp:Server", "mail")]) {
        Err(DecideError::Denied(d)) => d,
        other => panic!("expected a denial, got {other:?}"),
    };
    assert_eq!(
        denied.decided.decision.decision,
        gatehouse_policy::DecisionKind::ImplicitDeny
    );
    let sealed = denied.sealed.expect("a sealed denial message");
    let opened = gatehouse_auth::session::open_message(&f.core.ring(), &sealed).unwrap();
    let message: serde_json::Value = serde_json::from_slice(&opened).unwrap();
    assert_eq!(message["context"]["action"], "mcp:CallTool");
    assert_eq!(message["allowed"], false);
    call.record(Some("access_denied".into()), FaceDetail::default())
        .unwrap();

    let recs = records(&f.core.store, 1).await;
    assert_eq!(recs[0].decision, Decision::ImplicitDeny);
    assert_eq!(recs[0].error_code.as_deref(), Some("access_denied"));
}

#[tokio::test]
async fn a_wrong_secret_an_unknown_key_and_no_credential_are_refused_and_recorded() {
    let f = fixture().await;
    let wrong = bearer(&format!("{}:not-the-secret", f.key_id));
    let unknown = bearer("AKIAUNKNOWNUNKNOWN00:whatever");
    let none = HeaderMap::new();
    let mut two = bearer("a:b");
    two.append("authorization", "Bearer c:d".parse().unwrap());
    for (i, headers) in [wrong, unknown, none, two].iter().enumerate() {
        let mut call = f.core.call(format!("bad-{i}"), origin());
        let e = call.authenticate(&parts(headers), "mcp").await.unwrap_err();
        assert!(matches!(e, PipelineError::Credentials(_)), "{i}: {e:?}");
        // Not authenticated: nothing can be decided for it.
        assert!(matches!(
            call.decide("mcp:CallTool", TOOL, [("mcp:Server", "docs")]),
            Err(DecideError::NotAuthenticated)
        ));
        call.record(Some("invalid_api_key".into()), FaceDetail::default())
            .unwrap();
    }
    let recs = records(&f.core.store, 4).await;
    assert!(
        recs.iter()
            .all(|r| r.decision == Decision::Error && r.principal.is_empty())
    );
}

#[tokio::test]
async fn a_session_token_resolves_to_the_session_with_its_keys() {
    let f = fixture().await;
    let principal = f
        .core
        .user_policies(ACCOUNT, "alice")
        .await
        .unwrap()
        .info
        .clone();
    let (akid, secret) = gatehouse_auth::session::generate_temporary_credentials();
    let now = f.core.clock.now();
    let mut claims = gatehouse_auth::session::SessionClaims::new(
        akid,
        principal.principal_arn.clone(),
        ACCOUNT.to_owned(),
        now,
        now + chrono::Duration::hours(1),
    );
    claims.principal_id = principal.principal_id.clone();
    let token = gatehouse_auth::session::issue(&f.core.ring(), &claims, &secret).unwrap();
    let headers = bearer(&token);
    let mut call = f.core.call("req-s".into(), origin());
    let p = call.authenticate(&parts(&headers), "mcp").await.unwrap();
    assert!(p.session.is_some());
    let decided = call
        .decide("mcp:CallTool", TOOL, [("mcp:Server", "docs")])
        .unwrap();
    // A session's own keys are set by the decide step.
    assert_eq!(
        decided
            .request
            .context
            .get("aws:PrincipalType")
            .map(|v| v.as_slice().to_vec()),
        Some(vec!["User".to_owned()])
    );
}
