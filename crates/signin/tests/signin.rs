//! Identity sources and assignments against a real store, on both backends: every case
//! becomes `<case>::sqlite` and `<case>::postgres` (the latter needs
//! `GATEHOUSE_TEST_POSTGRES_URL`; each case uses a fresh schema, dropped at the end).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_signin::codes::{self, CodeTokenRequest};
use gatehouse_signin::config::SigninConfig;
use gatehouse_signin::oauth::AuthorizationRequest;
use gatehouse_signin::{AssignmentSpec, Person, SigninError, SourceSpec, Subject};
use gatehouse_store::{MasterKey, NewRole, Secret, Store, StoreError, StoreOptions};
use std::collections::BTreeMap;

const ACCT: &str = "111122223333";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
const ML: &str = "arn:gatehouse:iam::111122223333:role/team/ml";

struct Fixture {
    store: Store,
    dir: tempfile::TempDir,
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
            dir,
            pg: None,
        }
    }

    async fn postgres() -> Option<Fixture> {
        let url = gatehouse_testenv::postgres_url()?;
        let mut bytes = [0u8; 8];
        rand::fill(&mut bytes[..]);
        let schema = format!("gh_signin_{}", hex::encode(bytes));
        let options = StoreOptions {
            postgres_schema: Some(schema.clone()),
            max_connections: 4,
            ..StoreOptions::postgres(&url)
        };
        let store = Store::open(&options, MasterKey::generate()).await.unwrap();
        Some(Fixture {
            store,
            dir: tempfile::tempdir().unwrap(),
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
                super::setup(&f.store).await;
                super::$case(&f).await;
                f.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(f) = super::Fixture::postgres().await else { return };
                super::setup(&f.store).await;
                super::$case(&f).await;
                f.finish().await;
            }
        }
    )*};
}

both_backends!(
    sources_round_trip_with_the_secret_sealed,
    assignments_bind_the_role_by_its_unique_id,
    bad_input_changes_nothing,
    the_config_table_applies_once_and_again,
    codes_work_once_bound_and_briefly,
);

/// The default account and the role `team/ml` (max session 2 h).
async fn setup(store: &Store) {
    store.ensure_default_account(ACCT, "default").await.unwrap();
    create_ml_role(store).await;
}

async fn create_ml_role(store: &Store) {
    store
        .create_role(
            ACCT,
            &NewRole {
                name: "ml".into(),
                path: Some("/team/".into()),
                trust_policy: TRUST.into(),
                max_session_duration: Some(7200),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

fn corp() -> SourceSpec {
    SourceSpec {
        name: "corp".into(),
        issuer: "http://127.0.0.1:9/oidc".into(),
        client_id: "gatehouse".into(),
        scopes: vec!["openid".into(), "email".into(), "groups".into()],
        groups_claim: None,
        email_claim: Some("upn".into()),
        amr_claim: None,
        tags: BTreeMap::from([("department".into(), "dept".into())]),
    }
}

fn ml_for(subject: &str) -> AssignmentSpec {
    AssignmentSpec {
        source: "corp".into(),
        subject: Subject::parse(subject).unwrap(),
        role_arn: ML.into(),
        max_session_secs: Some(3600),
    }
}

/// Every byte of the store's files (SQLite) or of the two tables (PostgreSQL), to prove
/// a refused call changed nothing.
async fn snapshot(s: &Store) -> String {
    let sources = s.list_signin_sources(ACCT).await.unwrap();
    let assignments = s.list_signin_assignments(ACCT, None).await.unwrap();
    format!(
        "{}{}{}",
        serde_json::to_string(&sources).unwrap(),
        serde_json::to_string(&assignments).unwrap(),
        s.policy_generation().await.unwrap()
    )
}

async fn sources_round_trip_with_the_secret_sealed(f: &Fixture) {
    let s = &f.store;
    let secret = "corp-client-secret-5f2a9c";
    let src = gatehouse_signin::put_source(s, ACCT, &corp(), Some(Secret::new(secret)), false)
        .await
        .unwrap();
    assert!(src.has_client_secret);
    assert_eq!(src.claims.email, "upn");
    assert_eq!(src.claims.groups, "groups");
    assert_eq!(src.claims.tags["department"], "dept");
    assert_eq!(
        s.signin_source_client_secret(ACCT, "corp")
            .await
            .unwrap()
            .unwrap()
            .expose_str()
            .unwrap(),
        secret
    );
    // Sealed at rest: the plaintext is nowhere in the SQLite file.
    if f.pg.is_none() {
        for entry in std::fs::read_dir(f.dir.path().join("data")).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "plaintext secret at rest"
            );
        }
    }
    // Adding again is refused; replacing keeps assignments and may drop the secret.
    let again = gatehouse_signin::put_source(s, ACCT, &corp(), None, false).await;
    assert!(matches!(
        again,
        Err(SigninError::Store(StoreError::EntityAlreadyExists { .. }))
    ));
    gatehouse_signin::assign(s, ACCT, &ml_for("group:ml-eng"))
        .await
        .unwrap();
    let replaced = gatehouse_signin::put_source(s, ACCT, &corp(), None, true)
        .await
        .unwrap();
    assert!(!replaced.has_client_secret);
    assert!(
        s.signin_source_client_secret(ACCT, "corp")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.list_signin_assignments(ACCT, None).await.unwrap().len(),
        1
    );
    // Removal waits for the assignments to go.
    let e = gatehouse_signin::remove_source(s, ACCT, "corp")
        .await
        .unwrap_err();
    assert_eq!(e.aws_code(), "DeleteConflict");
    let id = s.list_signin_assignments(ACCT, None).await.unwrap()[0]
        .assignment_id
        .clone();
    gatehouse_signin::unassign(s, ACCT, &id).await.unwrap();
    gatehouse_signin::remove_source(s, ACCT, "corp")
        .await
        .unwrap();
    assert!(s.list_signin_sources(ACCT).await.unwrap().is_empty());
    let e = gatehouse_signin::remove_source(s, ACCT, "corp")
        .await
        .unwrap_err();
    assert_eq!(e.aws_code(), "NoSuchEntity");
}

async fn assignments_bind_the_role_by_its_unique_id(f: &Fixture) {
    let s = &f.store;
    gatehouse_signin::put_source(s, ACCT, &corp(), None, false)
        .await
        .unwrap();
    let gen0 = s.policy_generation().await.unwrap();
    let a = gatehouse_signin::assign(s, ACCT, &ml_for("group:ml-eng"))
        .await
        .unwrap();
    assert!(s.policy_generation().await.unwrap() > gen0);
    let role = s.get_role(ACCT, "ml").await.unwrap();
    assert_eq!(
        (a.role_id.as_str(), a.role_arn.as_str(), a.max_session_secs),
        (role.role_id.as_str(), ML, 3600)
    );
    assert!(a.assignment_id.starts_with("SIGA"));
    let by_user = gatehouse_signin::assign(
        s,
        ACCT,
        &AssignmentSpec {
            max_session_secs: None,
            ..ml_for("user:00u-alice")
        },
    )
    .await
    .unwrap();
    // No duration: the role's own maximum.
    assert_eq!(by_user.max_session_secs, 7200);
    // The same subject, source and role twice is refused.
    let e = gatehouse_signin::assign(s, ACCT, &ml_for("group:ml-eng"))
        .await
        .unwrap_err();
    assert_eq!(e.aws_code(), "EntityAlreadyExists");
    let all = s.list_signin_assignments(ACCT, Some("corp")).await.unwrap();
    let person = Person {
        sub: "00u-alice".into(),
        groups: vec!["ml-eng".into(), "other".into()],
    };
    assert_eq!(
        gatehouse_signin::assignments_for(&all, "corp", &person).len(),
        2
    );
    // The role deleted and made again under the same name is another role: the old
    // assignments name the old unique id, and a new one names the new.
    s.delete_role(ACCT, "ml").await.unwrap();
    create_ml_role(s).await;
    let new_role = s.get_role(ACCT, "ml").await.unwrap();
    assert_ne!(new_role.role_id, role.role_id);
    assert!(
        s.list_signin_assignments(ACCT, None)
            .await
            .unwrap()
            .iter()
            .all(|a| a.role_id == role.role_id)
    );
    let fresh = gatehouse_signin::assign(s, ACCT, &ml_for("group:ml-eng"))
        .await
        .unwrap();
    assert_eq!(fresh.role_id, new_role.role_id);
}

async fn bad_input_changes_nothing(f: &Fixture) {
    let s = &f.store;
    gatehouse_signin::put_source(s, ACCT, &corp(), Some(Secret::new("x")), false)
        .await
        .unwrap();
    gatehouse_signin::assign(s, ACCT, &ml_for("group:ml-eng"))
        .await
        .unwrap();
    let before = snapshot(s).await;
    let bad_sources = [
        SourceSpec {
            issuer: "http://idp.example.com".into(),
            ..corp()
        },
        SourceSpec {
            scopes: vec!["email".into()],
            ..corp()
        },
        SourceSpec {
            name: "../x".into(),
            ..corp()
        },
    ];
    for spec in &bad_sources {
        let e = gatehouse_signin::put_source(s, ACCT, spec, None, true)
            .await
            .unwrap_err();
        assert_eq!(e.aws_code(), "ValidationError", "{spec:?}");
    }
    let e = gatehouse_signin::put_source(
        s,
        ACCT,
        &SourceSpec {
            name: "absent".into(),
            ..corp()
        },
        None,
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(e.aws_code(), "NoSuchEntity");
    let bad_assignments = [
        (
            AssignmentSpec {
                source: "absent".into(),
                ..ml_for("group:x")
            },
            "NoSuchEntity",
        ),
        (
            AssignmentSpec {
                role_arn: "arn:gatehouse:iam::111122223333:role/ml".into(),
                ..ml_for("group:x")
            },
            "NoSuchEntity",
        ),
        (
            AssignmentSpec {
                role_arn: "arn:gatehouse:iam::999999999999:role/team/ml".into(),
                ..ml_for("group:x")
            },
            "ValidationError",
        ),
        (
            AssignmentSpec {
                max_session_secs: Some(7201),
                ..ml_for("group:x")
            },
            "ValidationError",
        ),
        (
            AssignmentSpec {
                max_session_secs: Some(899),
                ..ml_for("group:x")
            },
            "ValidationError",
        ),
    ];
    for (spec, code) in &bad_assignments {
        let e = gatehouse_signin::assign(s, ACCT, spec).await.unwrap_err();
        assert_eq!(e.aws_code(), *code, "{spec:?}: {e}");
    }
    for id in ["", "SIGA/../x", "SIGANOSUCH"] {
        assert!(gatehouse_signin::unassign(s, ACCT, id).await.is_err());
    }
    assert_eq!(snapshot(s).await, before);
    assert_eq!(
        s.signin_source_client_secret(ACCT, "corp")
            .await
            .unwrap()
            .unwrap()
            .expose_str()
            .unwrap(),
        "x"
    );
}

async fn the_config_table_applies_once_and_again(f: &Fixture) {
    let s = &f.store;
    let text = format!(
        r#"
        [[sources]]
        name = "corp"
        issuer = "https://idp.example.com"
        client_id = "gatehouse"
        client_secret_env = "CORP_SECRET"
        [sources.claims]
        tags = {{ team = "team" }}

        [[assignments]]
        source = "corp"
        group = "ml-eng"
        role = "{ML}"
        [[assignments]]
        source = "corp"
        user = "00u-bob"
        role = "{ML}"
        max_session_duration = 900
        "#
    );
    let config: SigninConfig = toml::from_str(&text).unwrap();
    let env = |v: &str| (v == "CORP_SECRET").then(|| "from-env".to_owned());
    // A missing variable is refused before anything is written.
    let before = snapshot(s).await;
    let e = gatehouse_signin::apply_config(s, ACCT, &config, |_| None)
        .await
        .unwrap_err();
    assert!(matches!(e, SigninError::MissingSecret { .. }), "{e}");
    assert_eq!(snapshot(s).await, before);
    let applied = gatehouse_signin::apply_config(s, ACCT, &config, env)
        .await
        .unwrap();
    assert_eq!((applied.sources, applied.assignments_added), (1, 2));
    // A second start (or a second node) adds nothing new.
    let again = gatehouse_signin::apply_config(s, ACCT, &config, env)
        .await
        .unwrap();
    assert_eq!((again.sources, again.assignments_added), (1, 0));
    assert_eq!(
        s.list_signin_assignments(ACCT, None).await.unwrap().len(),
        2
    );
    assert_eq!(
        s.signin_source_client_secret(ACCT, "corp")
            .await
            .unwrap()
            .unwrap()
            .expose_str()
            .unwrap(),
        "from-env"
    );
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn authorization() -> AuthorizationRequest {
    AuthorizationRequest {
        client_id: "gatehouse-cli".into(),
        redirect_uri: "http://127.0.0.1:45123/callback".into(),
        code_challenge: gatehouse_signin::oauth::pkce_s256_challenge(VERIFIER),
        state: Some("s".into()),
        resource: Some("https://gh.example.com/mcp/docs".into()),
        scope: None,
    }
}

fn redemption(code: &str) -> CodeTokenRequest {
    CodeTokenRequest {
        code: code.into(),
        client_id: "gatehouse-cli".into(),
        redirect_uri: "http://127.0.0.1:45123/callback".into(),
        code_verifier: VERIFIER.into(),
        resource: Some("https://gh.example.com/mcp/docs".into()),
    }
}

fn grant_error(r: Result<String, SigninError>) -> &'static str {
    match r {
        Err(SigninError::OAuth(e)) => e.code,
        other => panic!("not an OAuth refusal: {other:?}"),
    }
}

async fn codes_work_once_bound_and_briefly(f: &Fixture) {
    let s = &f.store;
    let t0 = chrono::Utc::now();
    let issue = |grant: &'static str| async move {
        codes::issue_code(s, &authorization(), grant.into(), t0)
            .await
            .unwrap()
    };
    // Redeemed once; the second time (a replay) it is gone.
    let code = issue("{\"g\":1}").await;
    assert!(code.len() >= 43);
    assert_eq!(
        codes::redeem_code(s, &redemption(&code), t0).await.unwrap(),
        "{\"g\":1}"
    );
    assert_eq!(
        grant_error(codes::redeem_code(s, &redemption(&code), t0).await),
        "invalid_grant"
    );
    // Every binding, and the verifier: refused, and the code is consumed by the attempt.
    type Change = Box<dyn Fn(&mut CodeTokenRequest)>;
    let wrong: Vec<Change> = vec![
        Box::new(|r| r.client_id = "other-client".into()),
        Box::new(|r| r.redirect_uri = "http://127.0.0.1:45124/callback".into()),
        Box::new(|r| r.resource = Some("https://gh.example.com/mcp/other".into())),
        Box::new(|r| r.resource = None),
        Box::new(|r| r.code_verifier = "x".repeat(43)),
    ];
    for change in wrong {
        let code = issue("{}").await;
        let mut r = redemption(&code);
        change(&mut r);
        assert_eq!(
            grant_error(codes::redeem_code(s, &r, t0).await),
            "invalid_grant"
        );
        assert_eq!(
            grant_error(codes::redeem_code(s, &redemption(&code), t0).await),
            "invalid_grant",
            "a code survived a failed redemption"
        );
    }
    // Expired: CODE_TTL_SECS after issue it no longer works.
    let code = issue("{}").await;
    let late = t0 + chrono::Duration::seconds(codes::CODE_TTL_SECS);
    assert_eq!(
        grant_error(codes::redeem_code(s, &redemption(&code), late).await),
        "invalid_grant"
    );
    // An unknown code.
    assert_eq!(
        grant_error(codes::redeem_code(s, &redemption("made-up-code"), t0).await),
        "invalid_grant"
    );
    // Two redemptions racing: exactly one wins.
    let code = issue("{}").await;
    let (r1, r2) = (redemption(&code), redemption(&code));
    let (a, b) = tokio::join!(
        codes::redeem_code(s, &r1, t0),
        codes::redeem_code(s, &r2, t0)
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1);
    // Codes are not policy: issuing one does not bump the generation.
    let g = s.policy_generation().await.unwrap();
    issue("{}").await;
    assert_eq!(s.policy_generation().await.unwrap(), g);
}
