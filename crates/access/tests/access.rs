//! Just-in-time access against a real store, on both backends: every case becomes
//! `<case>::sqlite` and `<case>::postgres` (the latter needs `GATEHOUSE_TEST_POSTGRES_URL`;
//! each case uses a fresh schema, dropped at the end). Time is passed in, never slept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use gatehouse_access::{
    AccessError, Caller, CallerKind, DEFAULT_PENDING_TTL, EligibilitySpec, RequestSpec,
    RequestState,
};
use gatehouse_store::{MasterKey, NewPolicy, NewRole, NewUser, PrincipalRef, Store, StoreOptions};

const ACCT: &str = "111122223333";
const DEPLOY_DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:UpdateDeployment","Resource":"*"}]}"#;
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
const POLICY: &str = "arn:gatehouse:iam::111122223333:policy/deploy";
const ROLE: &str = "arn:gatehouse:iam::111122223333:role/ops";

struct Fixture {
    store: Store,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("data"), MasterKey::generate())
            .await
            .unwrap();
        Fixture {
            store,
            _dir: dir,
            pg: None,
        }
    }

    async fn postgres() -> Option<Fixture> {
        let url = gatehouse_testenv::postgres_url()?;
        let mut bytes = [0u8; 8];
        rand::fill(&mut bytes[..]);
        let schema = format!("gh_access_{}", hex::encode(bytes));
        let options = StoreOptions {
            postgres_schema: Some(schema.clone()),
            max_connections: 4,
            ..StoreOptions::postgres(&url)
        };
        let store = Store::open(&options, MasterKey::generate()).await.unwrap();
        Some(Fixture {
            store,
            _dir: tempfile::tempdir().unwrap(),
            pg: Some((url, schema)),
        })
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some((url, schema)) = &self.pg {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
    }
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = super::Fixture::sqlite().await;
                super::$case(&super::setup(&f.store).await).await;
                f.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(f) = super::Fixture::postgres().await else { return };
                super::$case(&super::setup(&f.store).await).await;
                f.finish().await;
            }
        }
    )*};
}

both_backends!(
    request_approve_activate_revoke,
    self_approval_is_refused_through_every_path,
    bad_input_changes_nothing,
    replayed_and_racing_approvals_change_nothing_twice,
    an_expired_pending_request_cannot_be_approved,
    activation_rules,
    grants_reach_the_principal_with_their_window,
    eligibility_through_a_group_and_approval_free,
    deleting_an_eligibility_ends_asking_not_history,
);

/// A store with: deployer (user), alice and bob (approvers; bob also in group
/// `approvers`), carol (in `approvers` only), mallory (nobody), the policy `deploy`,
/// the role `ops`, and an eligibility deployer → deploy (1 h max, approval by alice or the
/// group, MFA to activate).
struct World {
    store: Store,
    t0: DateTime<Utc>,
}

async fn setup(store: &Store) -> World {
    store.ensure_default_account(ACCT, "default").await.unwrap();
    for name in ["deployer", "alice", "bob", "carol", "mallory"] {
        store
            .create_user(
                ACCT,
                &NewUser {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    store.create_group(ACCT, "approvers", None).await.unwrap();
    store.create_group(ACCT, "deployers", None).await.unwrap();
    for (g, u) in [
        ("approvers", "bob"),
        ("approvers", "carol"),
        ("approvers", "deployer"),
    ] {
        store.add_user_to_group(ACCT, g, u).await.unwrap();
    }
    store
        .create_policy(
            ACCT,
            &NewPolicy {
                name: "deploy".into(),
                document: DEPLOY_DOC.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .create_role(
            ACCT,
            &NewRole {
                name: "ops".into(),
                trust_policy: TRUST.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    gatehouse_access::create_eligibility(
        store,
        &EligibilitySpec {
            account_id: ACCT.into(),
            subject: user("deployer"),
            target: POLICY.into(),
            max_duration_secs: 3600,
            approval_required: true,
            approvers: vec![
                user("alice"),
                format!("arn:gatehouse:iam::{ACCT}:group/approvers"),
            ],
            mfa_required: true,
            ticket_required: false,
        },
    )
    .await
    .unwrap();
    World {
        store: store.clone(),
        t0: DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    }
}

fn user(name: &str) -> String {
    format!("arn:gatehouse:iam::{ACCT}:user/{name}")
}

async fn caller(w: &World, name: &str) -> Caller {
    gatehouse_access::caller_from_arn(&w.store, &user(name))
        .await
        .unwrap()
}

fn spec(duration: i64) -> RequestSpec {
    RequestSpec {
        target: POLICY.into(),
        duration_secs: duration,
        justification: "deploy hotfix 1.2.3".into(),
        ticket: Some("OPS-42".into()),
        start: None,
    }
}

async fn new_request(w: &World) -> String {
    let deployer = caller(w, "deployer").await;
    let ev = gatehouse_access::request(&w.store, &deployer, &spec(1800), w.t0, DEFAULT_PENDING_TTL)
        .await
        .unwrap();
    assert_eq!(ev.request.state, RequestState::Pending);
    ev.request.record.request_id
}

async fn state_of(w: &World, id: &str, at: DateTime<Utc>) -> RequestState {
    let r = w.store.get_access_request(id).await.unwrap().unwrap();
    RequestState::effective(&r, at).unwrap()
}

async fn request_approve_activate_revoke(w: &World) {
    let id = new_request(w).await;
    let alice = caller(w, "alice").await;
    let ev = gatehouse_access::approve(
        &w.store,
        &alice,
        &id,
        Some("ok"),
        w.t0 + Duration::minutes(5),
    )
    .await
    .unwrap();
    assert_eq!(ev.event, "approved");
    assert_eq!(ev.request.state, RequestState::Approved);
    assert_eq!(
        ev.request.record.decided_by_arn.as_deref(),
        Some(user("alice").as_str())
    );

    let mut deployer = caller(w, "deployer").await;
    deployer.mfa = true;
    let at = w.t0 + Duration::minutes(10);
    let ev = gatehouse_access::activate(&w.store, &deployer, &id, at)
        .await
        .unwrap();
    assert_eq!(ev.request.state, RequestState::Active);
    assert_eq!(
        ev.request.record.active_until,
        Some(at + Duration::seconds(1800))
    );
    assert_eq!(
        state_of(w, &id, at + Duration::seconds(1799)).await,
        RequestState::Active
    );
    assert_eq!(
        state_of(w, &id, at + Duration::seconds(1800)).await,
        RequestState::Expired
    );

    // mallory is neither requester nor approver.
    let mallory = caller(w, "mallory").await;
    let err = gatehouse_access::revoke(&w.store, &mallory, &id, at)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::NotPermitted { .. }), "{err}");
    // carol approves through the group, so she may revoke.
    let carol = caller(w, "carol").await;
    let ev = gatehouse_access::revoke(&w.store, &carol, &id, at + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(ev.request.state, RequestState::Revoked);
    let err = gatehouse_access::revoke(&w.store, &carol, &id, at + Duration::minutes(2))
        .await
        .unwrap_err();
    assert_eq!(err.aws_code(), "InvalidRequestState", "{err}");

    let listed = gatehouse_access::list(&w.store, ACCT, None, at)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, RequestState::Revoked);
}

async fn self_approval_is_refused_through_every_path(w: &World) {
    let id = new_request(w).await;
    let at = w.t0 + Duration::minutes(1);
    // The deployer is in the approvers group: still not for their own request.
    let deployer = caller(w, "deployer").await;
    for decide in [true, false] {
        let err = if decide {
            gatehouse_access::approve(&w.store, &deployer, &id, None, at).await
        } else {
            gatehouse_access::deny(&w.store, &deployer, &id, None, at).await
        }
        .unwrap_err();
        assert!(matches!(err, AccessError::SelfApproval { .. }), "{err}");
        assert_eq!(err.aws_code(), "AccessDenied");
    }
    // Through a role session whose source identity is the requester.
    let mut via_role = gatehouse_access::caller_from_arn(&w.store, ROLE)
        .await
        .unwrap();
    via_role.principal_arn = format!("arn:gatehouse:sts::{ACCT}:assumed-role/ops/s1");
    via_role.source_identity = Some("deployer".into());
    let err = gatehouse_access::approve(&w.store, &via_role, &id, None, at)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::SelfApproval { .. }), "{err}");
    // A role session without a source identity: the person behind it is unknown.
    via_role.source_identity = None;
    let err = gatehouse_access::approve(&w.store, &via_role, &id, None, at)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::ApproverUnknown { .. }), "{err}");
    assert_eq!(state_of(w, &id, at).await, RequestState::Pending);

    // An agent's request made for alice (its source identity): alice may not approve it.
    let mut agent = gatehouse_access::caller_from_arn(&w.store, ROLE)
        .await
        .unwrap();
    agent.source_identity = Some("alice".into());
    gatehouse_access::create_eligibility(
        &w.store,
        &EligibilitySpec {
            account_id: ACCT.into(),
            subject: ROLE.into(),
            target: POLICY.into(),
            max_duration_secs: 600,
            approval_required: true,
            approvers: vec![user("alice"), user("bob")],
            mfa_required: false,
            ticket_required: false,
        },
    )
    .await
    .unwrap();
    let agent_req =
        gatehouse_access::request(&w.store, &agent, &spec(600), at, DEFAULT_PENDING_TTL)
            .await
            .unwrap()
            .request
            .record
            .request_id;
    let alice = caller(w, "alice").await;
    let err = gatehouse_access::approve(&w.store, &alice, &agent_req, None, at)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::SelfApproval { .. }), "{err}");
    // bob is a different person: he may.
    let bob = caller(w, "bob").await;
    gatehouse_access::approve(&w.store, &bob, &agent_req, None, at)
        .await
        .unwrap();
}

async fn bad_input_changes_nothing(w: &World) {
    let deployer = caller(w, "deployer").await;
    let generation = w.store.policy_generation().await.unwrap();
    let over =
        gatehouse_access::request(&w.store, &deployer, &spec(3601), w.t0, DEFAULT_PENDING_TTL)
            .await
            .unwrap_err();
    assert!(
        matches!(over, AccessError::DurationTooLong { max: 3600, .. }),
        "{over}"
    );
    assert_eq!(over.aws_code(), "ValidationError");
    let mut unknown = spec(60);
    unknown.target = format!("arn:gatehouse:iam::{ACCT}:role/nope");
    let err = gatehouse_access::request(&w.store, &deployer, &unknown, w.t0, DEFAULT_PENDING_TTL)
        .await
        .unwrap_err();
    assert_eq!(err.aws_code(), "NoSuchEntity", "{err}");
    let mut not_eligible = spec(60);
    not_eligible.target = ROLE.into();
    let err = gatehouse_access::request(
        &w.store,
        &deployer,
        &not_eligible,
        w.t0,
        DEFAULT_PENDING_TTL,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AccessError::NotEligible { .. }), "{err}");
    let mut blank = spec(60);
    blank.justification = "   ".into();
    let err = gatehouse_access::request(&w.store, &deployer, &blank, w.t0, DEFAULT_PENDING_TTL)
        .await
        .unwrap_err();
    assert_eq!(err.aws_code(), "ValidationError");
    let mallory = caller(w, "mallory").await;
    let err = gatehouse_access::request(&w.store, &mallory, &spec(60), w.t0, DEFAULT_PENDING_TTL)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::NotEligible { .. }), "{err}");
    let bad_elig = gatehouse_access::create_eligibility(
        &w.store,
        &EligibilitySpec {
            account_id: ACCT.into(),
            subject: user("deployer"),
            target: format!("arn:gatehouse:iam::{ACCT}:role/nope"),
            max_duration_secs: 600,
            approval_required: false,
            approvers: vec![],
            mfa_required: false,
            ticket_required: false,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(bad_elig.aws_code(), "NoSuchEntity", "{bad_elig}");
    assert_eq!(w.store.policy_generation().await.unwrap(), generation);
    assert!(
        w.store
            .list_access_requests(ACCT, None)
            .await
            .unwrap()
            .is_empty()
    );

    // A non-approver's approval changes nothing either.
    let id = new_request(w).await;
    let generation = w.store.policy_generation().await.unwrap();
    let err = gatehouse_access::approve(&w.store, &mallory, &id, None, w.t0)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::NotAnApprover { .. }), "{err}");
    assert_eq!(w.store.policy_generation().await.unwrap(), generation);
    assert_eq!(state_of(w, &id, w.t0).await, RequestState::Pending);
}

async fn replayed_and_racing_approvals_change_nothing_twice(w: &World) {
    let id = new_request(w).await;
    let alice = caller(w, "alice").await;
    let bob = caller(w, "bob").await;
    let at = w.t0 + Duration::minutes(1);
    gatehouse_access::approve(&w.store, &alice, &id, None, at)
        .await
        .unwrap();
    let generation = w.store.policy_generation().await.unwrap();
    let replay = gatehouse_access::approve(&w.store, &alice, &id, None, at)
        .await
        .unwrap_err();
    assert!(
        matches!(
            replay,
            AccessError::InvalidState {
                state: RequestState::Approved,
                ..
            }
        ),
        "{replay}"
    );
    let late_deny = gatehouse_access::deny(&w.store, &bob, &id, None, at)
        .await
        .unwrap_err();
    assert_eq!(late_deny.aws_code(), "InvalidRequestState");
    assert_eq!(w.store.policy_generation().await.unwrap(), generation);
    let r = w.store.get_access_request(&id).await.unwrap().unwrap();
    assert_eq!(r.decided_by_arn.as_deref(), Some(user("alice").as_str()));

    // Two approvers at once, many times: exactly one decision each time.
    for _ in 0..5 {
        let id = new_request(w).await;
        let (s1, s2) = (w.store.clone(), w.store.clone());
        let (a, b) = (alice.clone(), bob.clone());
        let (i1, i2) = (id.clone(), id.clone());
        let t1 =
            tokio::spawn(async move { gatehouse_access::approve(&s1, &a, &i1, None, at).await });
        let t2 = tokio::spawn(async move { gatehouse_access::deny(&s2, &b, &i2, None, at).await });
        let (r1, r2) = (t1.await.unwrap(), t2.await.unwrap());
        assert!(r1.is_ok() != r2.is_ok(), "{r1:?} / {r2:?}");
        let loser = r1.err().or(r2.err()).unwrap();
        assert_eq!(loser.aws_code(), "InvalidRequestState", "{loser}");
    }
}

async fn an_expired_pending_request_cannot_be_approved(w: &World) {
    let id = new_request(w).await;
    let alice = caller(w, "alice").await;
    let late = w.t0 + DEFAULT_PENDING_TTL;
    let err = gatehouse_access::approve(&w.store, &alice, &id, None, late)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AccessError::InvalidState {
                state: RequestState::Expired,
                ..
            }
        ),
        "{err}"
    );
    // One second earlier it could have been.
    let r = w.store.get_access_request(&id).await.unwrap().unwrap();
    assert_eq!(r.state, "pending");
    gatehouse_access::approve(&w.store, &alice, &id, None, late - Duration::seconds(1))
        .await
        .unwrap();
}

async fn activation_rules(w: &World) {
    let id = new_request(w).await;
    let mut deployer = caller(w, "deployer").await;
    // Not approved yet.
    let err = gatehouse_access::activate(&w.store, &deployer, &id, w.t0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AccessError::InvalidState {
                state: RequestState::Pending,
                ..
            }
        ),
        "{err}"
    );
    let alice = caller(w, "alice").await;
    gatehouse_access::approve(&w.store, &alice, &id, None, w.t0)
        .await
        .unwrap();
    // Only the requester activates.
    let err = gatehouse_access::activate(&w.store, &alice, &id, w.t0)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::NotPermitted { .. }), "{err}");
    // MFA required.
    let err = gatehouse_access::activate(&w.store, &deployer, &id, w.t0)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::MfaRequired(_)), "{err}");
    deployer.mfa = true;
    // Approved but never activated within the pending window: expired.
    let err = gatehouse_access::activate(&w.store, &deployer, &id, w.t0 + Duration::days(2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AccessError::InvalidState {
                state: RequestState::Expired,
                ..
            }
        ),
        "{err}"
    );
    gatehouse_access::activate(&w.store, &deployer, &id, w.t0)
        .await
        .unwrap();

    // A start time in the future holds activation until then.
    let mut later = spec(600);
    later.start = Some(w.t0 + Duration::hours(2));
    let id2 = gatehouse_access::request(&w.store, &deployer, &later, w.t0, DEFAULT_PENDING_TTL)
        .await
        .unwrap()
        .request
        .record
        .request_id;
    gatehouse_access::approve(&w.store, &alice, &id2, None, w.t0)
        .await
        .unwrap();
    let err = gatehouse_access::activate(&w.store, &deployer, &id2, w.t0 + Duration::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::NotStarted { .. }), "{err}");
    gatehouse_access::activate(&w.store, &deployer, &id2, w.t0 + Duration::hours(2))
        .await
        .unwrap();
}

async fn grants_reach_the_principal_with_their_window(w: &World) {
    // The window must be in the store's recent past or future to be loaded; the store
    // keeps milliseconds.
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let deployer_arn = user("deployer");
    let mut deployer = caller(w, "deployer").await;
    deployer.mfa = true;
    let id = gatehouse_access::request(&w.store, &deployer, &spec(900), now, DEFAULT_PENDING_TTL)
        .await
        .unwrap()
        .request
        .record
        .request_id;
    let before = w
        .store
        .load_principal_policies(ACCT, PrincipalRef::User("deployer"))
        .await
        .unwrap();
    assert!(before.elevations.is_empty());
    gatehouse_access::approve(&w.store, &caller(w, "alice").await, &id, None, now)
        .await
        .unwrap();
    gatehouse_access::activate(&w.store, &deployer, &id, now)
        .await
        .unwrap();
    let after = w
        .store
        .load_principal_policies(ACCT, PrincipalRef::User("deployer"))
        .await
        .unwrap();
    assert!(after.generation > before.generation);
    assert_eq!(after.principal_arn, deployer_arn);
    assert_eq!(after.elevations.len(), 1);
    let e = &after.elevations[0];
    assert_eq!(e.request_id, id);
    assert_eq!(e.document.as_deref(), Some(DEPLOY_DOC));
    assert_eq!(e.active_until, now + Duration::seconds(900));
    assert_eq!(e.approved_by.as_deref(), Some(user("alice").as_str()));
    assert_eq!(e.justification, "deploy hotfix 1.2.3");
    // Nobody else gets it.
    let alice = w
        .store
        .load_principal_policies(ACCT, PrincipalRef::User("alice"))
        .await
        .unwrap();
    assert!(alice.elevations.is_empty());
    // Revoked: gone at the next load.
    gatehouse_access::revoke(&w.store, &deployer, &id, now)
        .await
        .unwrap();
    let revoked = w
        .store
        .load_principal_policies(ACCT, PrincipalRef::User("deployer"))
        .await
        .unwrap();
    assert!(revoked.elevations.is_empty());
}

async fn eligibility_through_a_group_and_approval_free(w: &World) {
    gatehouse_access::create_eligibility(
        &w.store,
        &EligibilitySpec {
            account_id: ACCT.into(),
            subject: format!("arn:gatehouse:iam::{ACCT}:group/approvers"),
            target: ROLE.into(),
            max_duration_secs: 900,
            approval_required: false,
            approvers: vec![],
            mfa_required: false,
            ticket_required: true,
        },
    )
    .await
    .unwrap();
    let carol = caller(w, "carol").await;
    let mut ask = spec(900);
    ask.target = ROLE.into();
    ask.ticket = None;
    let err = gatehouse_access::request(&w.store, &carol, &ask, w.t0, DEFAULT_PENDING_TTL)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::TicketRequired(_)), "{err}");
    ask.ticket = Some("CHG-7".into());
    let ev = gatehouse_access::request(&w.store, &carol, &ask, w.t0, DEFAULT_PENDING_TTL)
        .await
        .unwrap();
    assert_eq!(ev.request.state, RequestState::Approved);
    assert_eq!(ev.request.record.target_kind, "role");
    let ev = gatehouse_access::activate(&w.store, &carol, &ev.request.record.request_id, w.t0)
        .await
        .unwrap();
    assert_eq!(ev.request.state, RequestState::Active);
    // Root may revoke anything.
    let root = gatehouse_access::root_caller(ACCT);
    assert_eq!(root.kind, CallerKind::Root);
    gatehouse_access::revoke(&w.store, &root, &ev.request.record.request_id, w.t0)
        .await
        .unwrap();
}

/// A deleted eligibility is not listed and nobody can ask under it; while a request under
/// it is open the delete is refused (`DeleteConflict`), and its past requests stay.
async fn deleting_an_eligibility_ends_asking_not_history(w: &World) {
    let elig = w.store.list_eligibilities(ACCT).await.unwrap()[0]
        .eligibility_id
        .clone();
    let id = new_request(w).await;
    let err = gatehouse_access::delete_eligibility(&w.store, ACCT, &elig, w.t0)
        .await
        .unwrap_err();
    assert_eq!(err.aws_code(), "DeleteConflict", "{err}");
    assert_eq!(w.store.list_eligibilities(ACCT).await.unwrap().len(), 1);
    // Another account's operator cannot name it.
    let err = gatehouse_access::delete_eligibility(&w.store, "999988887777", &elig, w.t0)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::NoSuchEligibility(_)), "{err}");

    let deployer = caller(w, "deployer").await;
    gatehouse_access::revoke(&w.store, &deployer, &id, w.t0)
        .await
        .unwrap();
    gatehouse_access::delete_eligibility(&w.store, ACCT, &elig, w.t0 + Duration::minutes(1))
        .await
        .unwrap();
    assert!(w.store.list_eligibilities(ACCT).await.unwrap().is_empty());
    let err = gatehouse_access::request(
        &w.store,
        &deployer,
        &spec(1800),
        w.t0 + Duration::minutes(2),
        DEFAULT_PENDING_TTL,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AccessError::NotEligible { .. }), "{err}");
    let err = gatehouse_access::delete_eligibility(&w.store, ACCT, &elig, w.t0)
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::NoSuchEligibility(_)), "{err}");
    // The history stays: the request, and the eligibility it names.
    let listed = gatehouse_access::list(&w.store, ACCT, None, w.t0)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, RequestState::Revoked);
    assert!(w.store.get_eligibility(&elig).await.unwrap().is_some());
}
