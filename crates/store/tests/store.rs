//! One behavioural suite for the store, run against both backends: every case below
//! becomes `<case>::sqlite` and `<case>::postgres`. PostgreSQL cases need
//! `GATEHOUSE_TEST_POSTGRES_URL`; each uses its own fresh schema, dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;
use std::time::Duration;

use gatehouse_store::{
    AccessKeyStatus, BackendKind, EntityKind, KeyChain, KeyEncryption, KeyManagerError, ListParams,
    MasterKey, NewPolicy, NewRole, NewUser, PendingAudit, PolicySource, PrincipalKind,
    PrincipalRef, RoleUpdate, Secret, Store, StoreError, StoreOptions, Tag, TaggedKind,
};

const ACCT: &str = "111122223333";
const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*"}]}"#;
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

struct Fixture {
    store: Store,
    key: MasterKey,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let store = Store::open_sqlite(&dir.path().join("data"), key.clone())
            .await
            .unwrap();
        store.ensure_default_account(ACCT, "default").await.unwrap();
        Fixture {
            store,
            key,
            dir,
            pg: None,
        }
    }

    async fn postgres() -> Option<Fixture> {
        let url = gatehouse_testenv::postgres_url()?;
        let mut bytes = [0u8; 8];
        rand::fill(&mut bytes[..]);
        let schema = format!("gh_test_{}", hex::encode(bytes));
        let key = MasterKey::generate();
        let store = Store::open(&pg_options(&url, &schema), key.clone())
            .await
            .unwrap();
        store.ensure_default_account(ACCT, "default").await.unwrap();
        Some(Fixture {
            store,
            key,
            dir: tempfile::tempdir().unwrap(),
            pg: Some((url, schema)),
        })
    }

    /// Opens a second handle on the same database with a key-encryption key.
    async fn reopen(&self, kek: impl KeyEncryption + 'static) -> Store {
        self.try_reopen(kek).await.unwrap()
    }

    /// Like `reopen`, when the key manager may refuse.
    async fn try_reopen(&self, kek: impl KeyEncryption + 'static) -> Result<Store, StoreError> {
        match &self.pg {
            None => Store::open_sqlite(&self.dir.path().join("data"), kek).await,
            Some((url, schema)) => Store::open(&pg_options(url, schema), kek).await,
        }
    }

    /// A pool of its own on the store's database, behind the store's back.
    async fn raw_pool(&self) -> RawPool {
        match &self.pg {
            None => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(
                    self.dir
                        .path()
                        .join("data")
                        .join(gatehouse_store::SQLITE_FILE),
                );
                RawPool::Sqlite(sqlx::SqlitePool::connect_with(opts).await.unwrap())
            }
            Some((url, schema)) => {
                let opts = sqlx::postgres::PgConnectOptions::from_str(url)
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                RawPool::Postgres(sqlx::PgPool::connect_with(opts).await.unwrap())
            }
        }
    }

    /// First column of every row of `sql`, as text, read behind the store's back.
    async fn raw_texts(&self, sql: &'static str) -> Vec<String> {
        use sqlx::Row;
        match self.raw_pool().await {
            RawPool::Sqlite(pool) => {
                let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows.iter().map(|r| r.get::<String, _>(0)).collect()
            }
            RawPool::Postgres(pool) => {
                let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows.iter().map(|r| r.get::<String, _>(0)).collect()
            }
        }
    }

    /// Runs `sql` behind the store's back (to damage what the store keeps).
    async fn raw_exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.raw_pool().await {
            RawPool::Sqlite(pool) => {
                sqlx::raw_sql(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
            RawPool::Postgres(pool) => {
                sqlx::raw_sql(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
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

enum RawPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

fn pg_options(url: &str, schema: &str) -> StoreOptions {
    StoreOptions {
        postgres_schema: Some(schema.to_string()),
        max_connections: 4,
        ..StoreOptions::postgres(url)
    }
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = super::Fixture::sqlite().await;
                super::$case(&f).await;
                f.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(f) = super::Fixture::postgres().await else { return };
                assert_eq!(f.store.backend(), super::BackendKind::Postgres);
                super::$case(&f).await;
                f.finish().await;
            }
        }
    )*};
}

both_backends!(
    accounts,
    users_crud,
    pagination,
    groups_and_membership,
    roles,
    policy_versions,
    policy_delete_conflicts,
    inline_and_attachments,
    access_keys_sealed,
    master_key_rotation,
    legacy_values_move_onto_a_data_key,
    a_key_manager_lost_after_the_start_is_seen,
    audit_digests_anchor_the_chain,
    tags,
    tag_key_folding_migration,
    principal_policies,
    failed_write_leaves_nothing,
    generation_and_notifications,
    meta_kv,
    gateway_deployments,
    mcp_servers_and_pins,
    audit_chain,
    gateway_usage,
    audit_record_joins_its_write,
    audit_appends_serialise,
    iam_quotas,
    migration_checksums,
);

/// Every applied migration's checksum is recorded; a database made before checksums gets
/// them on its next start; and a database whose recorded text differs from this build's
/// (an applied migration edited afterwards) is refused, naming the migration.
async fn migration_checksums(f: &Fixture) {
    let recorded = f
        .raw_texts("SELECT checksum FROM gatehouse_migrations ORDER BY version")
        .await;
    assert!(recorded.len() >= 6, "{recorded:?}");
    assert!(
        recorded
            .iter()
            .all(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit())),
        "{recorded:?}"
    );

    // A database from before checksums: they are filled in from this build's text.
    f.raw_exec("UPDATE gatehouse_migrations SET checksum = NULL")
        .await;
    f.reopen(f.key.clone()).await.close().await;
    let refilled = f
        .raw_texts("SELECT checksum FROM gatehouse_migrations ORDER BY version")
        .await;
    assert_eq!(refilled, recorded);

    // Migration 3 applied with other text than this build has.
    f.raw_exec(&format!(
        "UPDATE gatehouse_migrations SET checksum = '{}' WHERE version = 3",
        "0".repeat(64)
    ))
    .await;
    let refused = match &f.pg {
        None => Store::open_sqlite(&f.dir.path().join("data"), f.key.clone()).await,
        Some((url, schema)) => Store::open(&pg_options(url, schema), f.key.clone()).await,
    };
    match refused {
        Err(e @ StoreError::MigrationChanged { version: 3, .. }) => {
            let text = e.to_string();
            assert!(text.contains("migration 3 (sts)"), "{text}");
            assert_eq!(e.aws_code(), "ServiceFailure");
        }
        other => panic!(
            "an edited migration was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    // Nothing was applied or recorded by the refused start.
    let after = f
        .raw_texts("SELECT checksum FROM gatehouse_migrations WHERE version = 3")
        .await;
    assert_eq!(after, vec!["0".repeat(64)]);
}

/// AWS's IAM quotas that are not about one document: the inline policies of a principal
/// together (whitespace not counted; a replaced document counts once), MFA devices in use
/// per user. Each with AWS's `LimitExceeded` and message.
async fn iam_quotas(f: &Fixture) {
    let s = &f.store;
    s.create_user(ACCT, &user("quota-u")).await.unwrap();
    s.create_group(ACCT, "quota-g", None).await.unwrap();
    s.create_role(ACCT, &role("quota-r")).await.unwrap();
    // A document of exactly `n` counted characters, padded with whitespace AWS ignores.
    let doc = |n: usize| format!("{{ \"x\" : \"{}\" }}\n\t", "a".repeat(n - 8));
    for (kind, name, limit, what) in [
        (PrincipalKind::User, "quota-u", 2048, "user"),
        (PrincipalKind::Group, "quota-g", 5120, "group"),
        (PrincipalKind::Role, "quota-r", 10240, "role"),
    ] {
        let half = limit / 2;
        s.put_inline_policy(ACCT, kind, name, "one", &doc(half))
            .await
            .unwrap();
        s.put_inline_policy(ACCT, kind, name, "two", &doc(half))
            .await
            .unwrap();
        // Replacing a document counts it once, whatever the name's case.
        s.put_inline_policy(ACCT, kind, name, "TWO", &doc(half))
            .await
            .unwrap();
        let over = s
            .put_inline_policy(ACCT, kind, name, "three", &doc(9))
            .await;
        match &over {
            Err(StoreError::LimitExceeded(m)) => assert_eq!(
                m,
                &format!("Maximum policy size of {limit} bytes exceeded for {what} {name}")
            ),
            other => panic!("{what}: expected LimitExceeded, got {other:?}"),
        }
        assert_limit(
            s.put_inline_policy(ACCT, kind, name, "two", &doc(half + 1))
                .await,
        );
        // Nothing stored changed; room made by a smaller document is usable.
        s.put_inline_policy(ACCT, kind, name, "two", &doc(half - 9))
            .await
            .unwrap();
        s.put_inline_policy(ACCT, kind, name, "three", &doc(9))
            .await
            .unwrap();
    }
    // MFA devices in use per user: 8.
    for i in 0..9 {
        let d = s
            .create_virtual_mfa_device(
                ACCT,
                None,
                &format!("quota-mfa-{i}"),
                &gatehouse_store::Secret::new("JBSWY3DPEHPK3PXP"),
            )
            .await
            .unwrap();
        let r = s
            .enable_mfa_device(ACCT, "quota-u", &d.serial_number, 0)
            .await;
        if i < 8 {
            r.unwrap();
        } else {
            match r {
                Err(StoreError::LimitExceeded(m)) => {
                    assert_eq!(m, "Cannot exceed quota for MFADevicesInUse: 8")
                }
                other => panic!("expected LimitExceeded, got {other:?}"),
            }
        }
    }
}

fn user(name: &str) -> NewUser {
    NewUser {
        name: name.to_string(),
        ..Default::default()
    }
}

fn policy(name: &str) -> NewPolicy {
    NewPolicy {
        name: name.to_string(),
        document: DOC.to_string(),
        ..Default::default()
    }
}

fn role(name: &str) -> NewRole {
    NewRole {
        name: name.to_string(),
        trust_policy: TRUST.to_string(),
        ..Default::default()
    }
}

fn assert_no_such<T: std::fmt::Debug>(r: Result<T, StoreError>, kind: EntityKind) {
    match r {
        Err(StoreError::NoSuchEntity { kind: k, .. }) => assert_eq!(k, kind),
        other => panic!("expected NoSuchEntity({kind:?}), got {other:?}"),
    }
}

fn assert_exists<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::EntityAlreadyExists { .. })),
        "expected EntityAlreadyExists, got {r:?}"
    );
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::DeleteConflict(_))),
        "expected DeleteConflict, got {r:?}"
    );
}

fn assert_limit<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::LimitExceeded(_))),
        "expected LimitExceeded, got {r:?}"
    );
}

fn assert_validation<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Validation(_))),
        "expected Validation, got {r:?}"
    );
}

async fn accounts(f: &Fixture) {
    let s = &f.store;
    // Idempotent.
    let d = s.ensure_default_account(ACCT, "default").await.unwrap();
    assert!(d.is_default);
    assert_eq!(s.default_account().await.unwrap().account_id, ACCT);
    assert_validation(s.ensure_default_account("999988887777", "other").await);
    let other = s.create_account(None, "Research").await.unwrap();
    assert_eq!(other.account_id.len(), 12);
    assert!(!other.is_default);
    assert_exists(s.create_account(None, "research").await);
    assert_exists(s.create_account(Some(ACCT), "x").await);
    assert_validation(s.create_account(Some("12"), "y").await);
    assert_eq!(s.list_accounts().await.unwrap().len(), 2);
    assert_conflict(s.delete_account(ACCT).await);
    s.create_user(&other.account_id, &user("bob"))
        .await
        .unwrap();
    assert_conflict(s.delete_account(&other.account_id).await);
    s.delete_user(&other.account_id, "bob").await.unwrap();
    s.put_guardrail(&other.account_id, "deny-all", DOC)
        .await
        .unwrap();
    s.delete_account(&other.account_id).await.unwrap();
    assert_no_such(s.get_account(&other.account_id).await, EntityKind::Account);
    assert_no_such(
        s.create_user("000000000000", &user("x")).await,
        EntityKind::Account,
    );
}

async fn users_crud(f: &Fixture) {
    let s = &f.store;
    let alice = s.create_user(ACCT, &user("Alice")).await.unwrap();
    assert!(alice.user_id.starts_with("AIDA") && alice.user_id.len() == 21);
    assert_eq!(alice.path, "/");
    assert_eq!(alice.arn(), "arn:gatehouse:iam::111122223333:user/Alice");
    // Case-insensitive uniqueness and lookup.
    assert_exists(s.create_user(ACCT, &user("alice")).await);
    assert_eq!(
        s.get_user(ACCT, "ALICE").await.unwrap().user_id,
        alice.user_id
    );
    assert_eq!(
        s.get_user_by_id(&alice.user_id).await.unwrap().name,
        "Alice"
    );
    // Same name in another account is fine.
    let other = s.create_account(None, "other").await.unwrap();
    s.create_user(&other.account_id, &user("alice"))
        .await
        .unwrap();
    // Validation.
    assert_validation(s.create_user(ACCT, &user("bad name")).await);
    assert_validation(s.create_user(ACCT, &user("")).await);
    assert_validation(
        s.create_user(
            ACCT,
            &NewUser {
                path: Some("nope".into()),
                ..user("carol")
            },
        )
        .await,
    );
    // Update: rename and move.
    s.create_user(ACCT, &user("bob")).await.unwrap();
    assert_exists(s.update_user(ACCT, "Alice", Some("BOB"), None).await);
    let renamed = s
        .update_user(ACCT, "alice", Some("alice2"), Some("/eng/"))
        .await
        .unwrap();
    assert_eq!(renamed.user_id, alice.user_id);
    assert_eq!(
        renamed.arn(),
        "arn:gatehouse:iam::111122223333:user/eng/alice2"
    );
    assert_no_such(s.get_user(ACCT, "Alice").await, EntityKind::User);
    // Case-only rename of itself is allowed.
    s.update_user(ACCT, "alice2", Some("Alice2"), None)
        .await
        .unwrap();
    // Delete.
    s.delete_user(ACCT, "alice2").await.unwrap();
    assert_no_such(s.get_user(ACCT, "alice2").await, EntityKind::User);
    assert_no_such(s.delete_user(ACCT, "alice2").await, EntityKind::User);
}

async fn pagination(f: &Fixture) {
    let s = &f.store;
    for (i, name) in ["u1", "u2", "u3", "u4", "u5", "u6", "u7"]
        .iter()
        .enumerate()
    {
        let path = if i % 2 == 0 { "/eng/" } else { "/ops/" };
        s.create_user(
            ACCT,
            &NewUser {
                path: Some(path.into()),
                ..user(name)
            },
        )
        .await
        .unwrap();
    }
    let mut params = ListParams::first(3);
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let page = s.list_users(ACCT, &params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        names.extend(page.items.iter().map(|u| u.name.clone()));
        match params.next(&page) {
            Some(p) => params = p,
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["u1", "u2", "u3", "u4", "u5", "u6", "u7"]);
    // Exactly one full page is not truncated.
    let all = s.list_users(ACCT, &ListParams::first(7)).await.unwrap();
    assert_eq!(all.items.len(), 7);
    assert!(!all.is_truncated());
    // Path prefix.
    let eng = s
        .list_users(
            ACCT,
            &ListParams {
                path_prefix: Some("/eng".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let eng: Vec<_> = eng.items.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(eng, ["u1", "u3", "u5", "u7"]);
    assert_validation(
        s.list_users(
            ACCT,
            &ListParams {
                marker: Some("%%%".into()),
                ..Default::default()
            },
        )
        .await,
    );
    assert_validation(s.list_users(ACCT, &ListParams::first(0)).await);
    assert_validation(s.list_users(ACCT, &ListParams::first(1001)).await);
}

async fn groups_and_membership(f: &Fixture) {
    let s = &f.store;
    let g = s.create_group(ACCT, "Admins", Some("/x/")).await.unwrap();
    assert!(g.group_id.starts_with("AGPA"));
    assert_eq!(g.arn(), "arn:gatehouse:iam::111122223333:group/x/Admins");
    assert_exists(s.create_group(ACCT, "admins", None).await);
    s.create_group(ACCT, "devs", None).await.unwrap();
    s.create_user(ACCT, &user("alice")).await.unwrap();
    s.create_user(ACCT, &user("bob")).await.unwrap();
    s.add_user_to_group(ACCT, "admins", "alice").await.unwrap();
    s.add_user_to_group(ACCT, "admins", "alice").await.unwrap(); // no-op
    s.add_user_to_group(ACCT, "devs", "alice").await.unwrap();
    s.add_user_to_group(ACCT, "devs", "bob").await.unwrap();
    assert_no_such(
        s.add_user_to_group(ACCT, "nope", "alice").await,
        EntityKind::Group,
    );
    assert_no_such(
        s.add_user_to_group(ACCT, "devs", "nope").await,
        EntityKind::User,
    );
    let gs = s
        .list_groups_for_user(ACCT, "alice", &ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        gs.items.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["Admins", "devs"]
    );
    let page = s
        .list_group_members(ACCT, "devs", &ListParams::first(1))
        .await
        .unwrap();
    assert_eq!(page.items[0].name, "alice");
    assert!(page.is_truncated());
    assert_eq!(
        s.list_groups(ACCT, &ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_conflict(s.delete_group(ACCT, "devs").await);
    assert_conflict(s.delete_user(ACCT, "bob").await);
    s.remove_user_from_group(ACCT, "devs", "bob").await.unwrap();
    assert_no_such(
        s.remove_user_from_group(ACCT, "devs", "bob").await,
        EntityKind::User,
    );
    s.delete_user(ACCT, "bob").await.unwrap();
    let renamed = s
        .update_group(ACCT, "devs", Some("developers"), None)
        .await
        .unwrap();
    assert_eq!(renamed.name, "developers");
    s.remove_user_from_group(ACCT, "developers", "alice")
        .await
        .unwrap();
    s.delete_group(ACCT, "developers").await.unwrap();
    assert_no_such(s.get_group(ACCT, "developers").await, EntityKind::Group);
    // Group limit per user.
    for i in 0..9 {
        let name = format!("g{i}");
        s.create_group(ACCT, &name, None).await.unwrap();
        s.add_user_to_group(ACCT, &name, "alice").await.unwrap();
    }
    s.create_group(ACCT, "g-extra", None).await.unwrap();
    assert_limit(s.add_user_to_group(ACCT, "g-extra", "alice").await);
}

async fn roles(f: &Fixture) {
    let s = &f.store;
    let r = s.create_role(ACCT, &role("Deployer")).await.unwrap();
    assert!(r.role_id.starts_with("AROA"));
    assert_eq!(r.max_session_duration, 3600);
    assert_eq!(r.path, "/");
    assert_eq!(r.trust_policy, TRUST);
    assert_eq!(r.arn(), "arn:gatehouse:iam::111122223333:role/Deployer");
    assert_exists(s.create_role(ACCT, &role("deployer")).await);
    assert_validation(
        s.create_role(
            ACCT,
            &NewRole {
                max_session_duration: Some(60),
                ..role("short")
            },
        )
        .await,
    );
    assert_validation(
        s.create_role(
            ACCT,
            &NewRole {
                trust_policy: " ".into(),
                ..role("empty")
            },
        )
        .await,
    );
    let r2 = s
        .update_role(
            ACCT,
            "deployer",
            &RoleUpdate {
                description: Some("deploys".into()),
                max_session_duration: Some(7200),
            },
        )
        .await
        .unwrap();
    assert_eq!(r2.description.as_deref(), Some("deploys"));
    assert_eq!(r2.max_session_duration, 7200);
    // Tab, line feed and carriage return as AWS allows; no other control character.
    for bad in ["\u{1b}[31mred", "nul\u{0}", "bell\u{7}"] {
        assert_validation(
            s.update_role(
                ACCT,
                "deployer",
                &RoleUpdate {
                    description: Some(bad.into()),
                    max_session_duration: None,
                },
            )
            .await,
        );
    }
    s.update_role(
        ACCT,
        "deployer",
        &RoleUpdate {
            description: Some("two\tcolumns\r\nlines".into()),
            max_session_duration: None,
        },
    )
    .await
    .unwrap();
    s.update_role(
        ACCT,
        "deployer",
        &RoleUpdate {
            description: Some("deploys".into()),
            max_session_duration: None,
        },
    )
    .await
    .unwrap();
    let new_trust = TRUST.replace("root", "user/alice");
    let r3 = s
        .update_assume_role_policy(ACCT, "Deployer", &new_trust)
        .await
        .unwrap();
    assert_eq!(r3.trust_policy, new_trust);
    assert_eq!(r3.description.as_deref(), Some("deploys"));
    assert_eq!(s.get_role_by_id(&r.role_id).await.unwrap().name, "Deployer");
    assert_eq!(
        s.list_roles(ACCT, &ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    s.put_inline_policy(ACCT, PrincipalKind::Role, "Deployer", "p", DOC)
        .await
        .unwrap();
    assert_conflict(s.delete_role(ACCT, "Deployer").await);
    s.delete_inline_policy(ACCT, PrincipalKind::Role, "Deployer", "p")
        .await
        .unwrap();
    s.delete_role(ACCT, "Deployer").await.unwrap();
    assert_no_such(s.get_role(ACCT, "Deployer").await, EntityKind::Role);
}

async fn policy_versions(f: &Fixture) {
    let s = &f.store;
    let p = s
        .create_policy(
            ACCT,
            &NewPolicy {
                path: Some("/team/".into()),
                description: Some("invoke".into()),
                ..policy("Invoke")
            },
        )
        .await
        .unwrap();
    assert!(p.policy_id.starts_with("ANPA"));
    assert_eq!(p.arn, "arn:gatehouse:iam::111122223333:policy/team/Invoke");
    assert_eq!(p.default_version_id, "v1");
    assert_exists(s.create_policy(ACCT, &policy("invoke")).await);
    let arn = p.arn.as_str();
    for i in 2..=5 {
        let doc = DOC.replace("InvokeModel", &format!("Op{i}"));
        let v = s
            .create_policy_version(ACCT, arn, &doc, i == 3)
            .await
            .unwrap();
        assert_eq!(v.version_id, format!("v{i}"));
        assert_eq!(v.is_default, i == 3);
    }
    assert_limit(s.create_policy_version(ACCT, arn, DOC, false).await);
    assert_eq!(
        s.get_policy(ACCT, arn).await.unwrap().default_version_id,
        "v3"
    );
    assert_conflict(s.delete_policy_version(ACCT, arn, "v3").await);
    s.delete_policy_version(ACCT, arn, "v1").await.unwrap();
    assert_no_such(
        s.get_policy_version(ACCT, arn, "v1").await,
        EntityKind::PolicyVersion,
    );
    // Ids keep counting up after a delete.
    let v6 = s
        .create_policy_version(ACCT, arn, DOC, false)
        .await
        .unwrap();
    assert_eq!(v6.version_id, "v6");
    s.set_default_policy_version(ACCT, arn, "v6").await.unwrap();
    let v3 = s.get_policy_version(ACCT, arn, "v3").await.unwrap();
    assert!(!v3.is_default);
    assert!(v3.document.contains("Op3"));
    assert_no_such(
        s.set_default_policy_version(ACCT, arn, "v9").await,
        EntityKind::PolicyVersion,
    );
    assert_validation(s.set_default_policy_version(ACCT, arn, "9").await);
    // Newest first, paged.
    let page = s
        .list_policy_versions(ACCT, arn, &ListParams::first(3))
        .await
        .unwrap();
    let ids: Vec<_> = page.items.iter().map(|v| v.version_id.as_str()).collect();
    assert_eq!(ids, ["v6", "v5", "v4"]);
    let rest = s
        .list_policy_versions(ACCT, arn, &ListParams::first(3).next(&page).unwrap())
        .await
        .unwrap();
    let ids: Vec<_> = rest.items.iter().map(|v| v.version_id.as_str()).collect();
    assert_eq!(ids, ["v3", "v2"]);
    assert!(!rest.is_truncated());
    // Other account's ARN is not visible.
    assert_no_such(
        s.get_policy(ACCT, "arn:gatehouse:iam::999999999999:policy/team/Invoke")
            .await,
        EntityKind::Policy,
    );
    let listed = s
        .list_policies(
            ACCT,
            &ListParams {
                path_prefix: Some("/team/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].description.as_deref(), Some("invoke"));
}

async fn policy_delete_conflicts(f: &Fixture) {
    let s = &f.store;
    let p = s.create_policy(ACCT, &policy("P")).await.unwrap();
    let arn = p.arn.as_str();
    s.create_policy_version(ACCT, arn, DOC, true).await.unwrap();
    assert_conflict(s.delete_policy(ACCT, arn).await); // two versions
    s.delete_policy_version(ACCT, arn, "v1").await.unwrap();
    s.create_user(ACCT, &user("alice")).await.unwrap();
    s.attach_policy(ACCT, PrincipalKind::User, "alice", arn)
        .await
        .unwrap();
    assert_eq!(s.get_policy(ACCT, arn).await.unwrap().attachment_count, 1);
    assert_conflict(s.delete_policy(ACCT, arn).await);
    assert_conflict(s.delete_user(ACCT, "alice").await);
    s.detach_policy(ACCT, PrincipalKind::User, "alice", arn)
        .await
        .unwrap();
    s.put_user_permissions_boundary(ACCT, "alice", arn)
        .await
        .unwrap();
    assert_eq!(
        s.get_policy(ACCT, arn)
            .await
            .unwrap()
            .permissions_boundary_usage_count,
        1
    );
    assert_conflict(s.delete_policy(ACCT, arn).await);
    s.delete_user_permissions_boundary(ACCT, "alice")
        .await
        .unwrap();
    assert_eq!(
        s.get_user(ACCT, "alice")
            .await
            .unwrap()
            .permissions_boundary,
        None
    );
    assert_no_such(
        s.put_user_permissions_boundary(
            ACCT,
            "alice",
            "arn:gatehouse:iam::111122223333:policy/none",
        )
        .await,
        EntityKind::Policy,
    );
    s.tag_resource(ACCT, TaggedKind::Policy, arn, &[Tag::new("a", "b")])
        .await
        .unwrap();
    s.delete_policy(ACCT, arn).await.unwrap();
    assert_no_such(s.get_policy(ACCT, arn).await, EntityKind::Policy);
    s.delete_user(ACCT, "alice").await.unwrap();
}

async fn inline_and_attachments(f: &Fixture) {
    let s = &f.store;
    s.create_user(ACCT, &user("alice")).await.unwrap();
    s.create_group(ACCT, "devs", None).await.unwrap();
    s.create_role(ACCT, &role("r")).await.unwrap();
    for (kind, name) in [
        (PrincipalKind::User, "alice"),
        (PrincipalKind::Group, "devs"),
        (PrincipalKind::Role, "r"),
    ] {
        s.put_inline_policy(ACCT, kind, name, "b", DOC)
            .await
            .unwrap();
        s.put_inline_policy(ACCT, kind, name, "a", DOC)
            .await
            .unwrap();
        let other = DOC.replace("Allow", "Deny");
        s.put_inline_policy(ACCT, kind, name, "A", &other)
            .await
            .unwrap(); // replaces "a"
        let got = s.get_inline_policy(ACCT, kind, name, "a").await.unwrap();
        assert_eq!(got.document, other);
        let names = s
            .list_inline_policies(ACCT, kind, name, &ListParams::default())
            .await
            .unwrap();
        assert_eq!(names.items, ["A", "b"]);
        s.delete_inline_policy(ACCT, kind, name, "b").await.unwrap();
        assert_no_such(
            s.get_inline_policy(ACCT, kind, name, "b").await,
            EntityKind::InlinePolicy,
        );
        assert_no_such(
            s.delete_inline_policy(ACCT, kind, name, "b").await,
            EntityKind::InlinePolicy,
        );
    }
    assert_no_such(
        s.put_inline_policy(ACCT, PrincipalKind::User, "nobody", "a", DOC)
            .await,
        EntityKind::User,
    );
    assert_limit(
        s.put_inline_policy(
            ACCT,
            PrincipalKind::User,
            "alice",
            "big",
            &format!("{{\"x\":\"{}\"}}", "a".repeat(3000)),
        )
        .await,
    );
    // Attachments.
    let mut arns = Vec::new();
    for i in 0..11 {
        let p = s
            .create_policy(
                ACCT,
                &NewPolicy {
                    path: Some(if i == 0 { "/special/" } else { "/" }.into()),
                    ..policy(&format!("p{i:02}"))
                },
            )
            .await
            .unwrap();
        arns.push(p.arn);
    }
    for arn in &arns[..10] {
        s.attach_policy(ACCT, PrincipalKind::Role, "r", arn)
            .await
            .unwrap();
    }
    s.attach_policy(ACCT, PrincipalKind::Role, "r", &arns[0])
        .await
        .unwrap(); // no-op
    assert_limit(
        s.attach_policy(ACCT, PrincipalKind::Role, "r", &arns[10])
            .await,
    );
    let page = s
        .list_attached_policies(ACCT, PrincipalKind::Role, "r", &ListParams::first(4))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);
    assert_eq!(page.items[0].policy_name, "p00");
    assert!(page.is_truncated());
    let special = s
        .list_attached_policies(
            ACCT,
            PrincipalKind::Role,
            "r",
            &ListParams {
                path_prefix: Some("/special/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(special.items.len(), 1);
    s.detach_policy(ACCT, PrincipalKind::Role, "r", &arns[0])
        .await
        .unwrap();
    assert_no_such(
        s.detach_policy(ACCT, PrincipalKind::Role, "r", &arns[0])
            .await,
        EntityKind::Attachment,
    );
    s.attach_policy(ACCT, PrincipalKind::Group, "devs", &arns[10])
        .await
        .unwrap();
    assert_conflict(s.delete_group(ACCT, "devs").await);
    assert_no_such(
        s.attach_policy(
            ACCT,
            PrincipalKind::Group,
            "devs",
            "arn:gatehouse:iam::111122223333:policy/zzz",
        )
        .await,
        EntityKind::Policy,
    );
}

async fn access_keys_sealed(f: &Fixture) {
    let s = &f.store;
    s.create_user(ACCT, &user("alice")).await.unwrap();
    let (k1, secret1) = s.create_access_key(ACCT, "alice").await.unwrap();
    assert!(k1.access_key_id.starts_with("AKIA") && k1.access_key_id.len() == 20);
    assert_eq!(secret1.len(), 40);
    assert_eq!(k1.status, AccessKeyStatus::Active);
    assert_eq!(format!("{secret1:?}"), "Secret(<redacted>)");
    assert!(!format!("{k1:?}").contains(secret1.expose_str().unwrap()));
    let (_k2, _) = s.create_access_key(ACCT, "alice").await.unwrap();
    assert_limit(s.create_access_key(ACCT, "alice").await);
    // The stored bytes are not the plaintext.
    let raw = f.raw_texts("SELECT secret_sealed FROM access_keys").await;
    assert_eq!(raw.len(), 2);
    for v in &raw {
        assert!(!v.contains(secret1.expose_str().unwrap()));
        assert!(v.starts_with(&format!("gh1.{}.", s.data_keys().await.unwrap()[0].key_id)));
    }
    let (k, opened) = s.access_key_for_auth(&k1.access_key_id).await.unwrap();
    assert_eq!(opened, secret1);
    assert_eq!(k.user_name, "alice");
    assert_no_such(
        s.access_key_for_auth("AKIANOPENOPENOPENOPE").await,
        EntityKind::AccessKey,
    );
    // Status and last use.
    s.update_access_key(ACCT, "alice", &k1.access_key_id, AccessKeyStatus::Inactive)
        .await
        .unwrap();
    let gen_before = s.policy_generation().await.unwrap();
    s.record_access_key_use(&k1.access_key_id, "iam", "local")
        .await
        .unwrap();
    assert_eq!(s.policy_generation().await.unwrap(), gen_before);
    let k = s.get_access_key(&k1.access_key_id).await.unwrap();
    assert_eq!(k.status, AccessKeyStatus::Inactive);
    let used = k.last_used.unwrap();
    assert_eq!(
        (used.service.as_str(), used.region.as_str()),
        ("iam", "local")
    );
    let listed = s
        .list_access_keys(ACCT, "alice", &ListParams::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_conflict(s.delete_user(ACCT, "alice").await);
    for key in &listed.items {
        s.delete_access_key(ACCT, "alice", &key.access_key_id)
            .await
            .unwrap();
    }
    assert_no_such(
        s.delete_access_key(ACCT, "alice", &k1.access_key_id).await,
        EntityKind::AccessKey,
    );
    // Import (bootstrap credentials).
    let secret = gatehouse_store::Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    s.import_access_key(ACCT, "alice", "AKIAIOSFODNN7EXAMPLE", &secret)
        .await
        .unwrap();
    assert_eq!(
        s.access_key_for_auth("AKIAIOSFODNN7EXAMPLE")
            .await
            .unwrap()
            .1,
        secret
    );
    assert_exists(
        s.import_access_key(ACCT, "alice", "AKIAIOSFODNN7EXAMPLE", &secret)
            .await,
    );
}

async fn master_key_rotation(f: &Fixture) {
    let s = &f.store;
    s.create_user(ACCT, &user("alice")).await.unwrap();
    let (k1, secret1) = s.create_access_key(ACCT, "alice").await.unwrap();
    let signing = gatehouse_store::Secret::new("session-signing-key");
    s.put_meta_secret("signing-key", &signing).await.unwrap();
    s.put_meta("plain", "value").await.unwrap();
    let before = f.raw_texts("SELECT secret_sealed FROM access_keys").await;
    let data_key = s.data_keys().await.unwrap();
    assert_eq!(data_key.len(), 1);
    assert_eq!(data_key[0].wrapped_by, f.key.descriptor());
    // Secrets are sealed under the data key, not the master key.
    assert!(before[0].starts_with(&format!("gh1.{}.", data_key[0].key_id)));
    assert_ne!(data_key[0].key_id, f.key.key_id());

    // Re-wrap under a new key-encryption key: cheap, sealed values untouched.
    let new_key = MasterKey::generate();
    // A handle that holds only the new key cannot open the store: fail closed.
    assert!(matches!(
        f.try_reopen(new_key.clone()).await,
        Err(StoreError::KeyManager(KeyManagerError::NotHeld { .. }))
    ));
    let rewrapping = f
        .reopen(KeyChain::new(new_key.clone()).or_unwrap_with(f.key.clone()))
        .await;
    assert_eq!(rewrapping.rewrap_data_keys().await.unwrap(), 1);
    // Running it again is harmless.
    assert_eq!(rewrapping.rewrap_data_keys().await.unwrap(), 0);
    rewrapping.close().await;
    assert_eq!(
        f.raw_texts("SELECT secret_sealed FROM access_keys").await,
        before
    );
    assert_eq!(
        s.data_keys().await.unwrap()[0].wrapped_by,
        new_key.descriptor()
    );
    // Now the old key opens nothing and the new one everything.
    assert!(matches!(
        f.try_reopen(f.key.clone()).await,
        Err(StoreError::KeyManager(KeyManagerError::NotHeld { .. }))
    ));
    let new_handle = f.reopen(new_key.clone()).await;
    assert_eq!(
        new_handle
            .access_key_for_auth(&k1.access_key_id)
            .await
            .unwrap()
            .1,
        secret1
    );
    assert_eq!(
        new_handle
            .get_meta_secret("signing-key")
            .await
            .unwrap()
            .unwrap(),
        signing
    );
    // The handle opened before the rewrap keeps working: its data key is in memory.
    assert_eq!(
        s.access_key_for_auth(&k1.access_key_id).await.unwrap().1,
        secret1
    );

    // Reseal: every value onto a new data key, in batches, readable throughout, and
    // resumable after a crash (here: a handle dropped half way).
    let mut secrets = vec![(k1.access_key_id.clone(), secret1.clone())];
    for _ in 0..3 {
        s.create_user(ACCT, &user(&format!("u{}", secrets.len())))
            .await
            .unwrap();
        let (k, secret) = s
            .create_access_key(ACCT, &format!("u{}", secrets.len()))
            .await
            .unwrap();
        secrets.push((k.access_key_id, secret));
    }
    // `server` stands for a node that runs throughout; `cli` for the reseal command.
    let server = new_handle;
    let cli = f.reopen(new_key.clone()).await;
    let started = cli.begin_reseal().await.unwrap();
    assert!(!started.resumed);
    assert_eq!(started.remaining, 5); // 4 access keys, 1 sealed meta value
    assert_eq!(cli.reseal_batch(2).await.unwrap(), 2);
    assert!(!cli.finish_reseal().await.unwrap());
    // Written while the reseal runs: sealed under the new data key at once.
    server
        .put_meta_secret("during", &Secret::new("mid-reseal"))
        .await
        .unwrap();
    cli.close().await;
    drop(cli);
    let resumed_handle = f.reopen(new_key.clone()).await;
    let resumed = resumed_handle.begin_reseal().await.unwrap();
    assert!(resumed.resumed);
    assert_eq!(resumed.key_id, started.key_id);
    assert_eq!(resumed.remaining, 3);
    for (id, secret) in &secrets {
        assert_eq!(&server.access_key_for_auth(id).await.unwrap().1, secret);
    }
    while resumed_handle.reseal_batch(1).await.unwrap() > 0 {
        for (id, secret) in &secrets {
            assert_eq!(
                &resumed_handle.access_key_for_auth(id).await.unwrap().1,
                secret
            );
        }
    }
    assert!(resumed_handle.finish_reseal().await.unwrap());
    let keys = s.data_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key_id, started.key_id);
    for v in f.raw_texts("SELECT secret_sealed FROM access_keys").await {
        assert!(v.starts_with(&format!("gh1.{}.", started.key_id)));
    }
    // The running node still reads every secret (it unwrapped the new data key once,
    // on first use).
    for (id, secret) in &secrets {
        assert_eq!(&server.access_key_for_auth(id).await.unwrap().1, secret);
    }
    assert_eq!(
        server.get_meta_secret("during").await.unwrap().unwrap(),
        Secret::new("mid-reseal")
    );
    server.close().await;
    resumed_handle.close().await;
}

/// A store sealed before envelope encryption (values directly under `master.key`)
/// moves onto a data key when first opened, and every value still opens.
async fn legacy_values_move_onto_a_data_key(f: &Fixture) {
    let s = &f.store;
    s.create_user(ACCT, &user("alice")).await.unwrap();
    let (k1, secret1) = s.create_access_key(ACCT, "alice").await.unwrap();
    // Make it look like an old store: the value sealed under the master key itself,
    // no data key.
    let legacy =
        gatehouse_store::SealingKey::from_encoded(f.key.to_base64().expose_str().unwrap()).unwrap();
    let blob = legacy
        .seal(
            format!("access-key/{}", k1.access_key_id).as_bytes(),
            secret1.expose(),
        )
        .unwrap();
    use base64::Engine as _;
    let old_format = format!(
        "gh1.{}.{}",
        legacy.key_id(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(blob)
    );
    f.raw_exec(&format!(
        "UPDATE access_keys SET secret_sealed = '{old_format}'"
    ))
    .await;
    f.raw_exec("DELETE FROM data_keys").await;
    let upgraded = f.reopen(f.key.clone()).await;
    assert_eq!(
        upgraded
            .access_key_for_auth(&k1.access_key_id)
            .await
            .unwrap()
            .1,
        secret1
    );
    let keys = upgraded.data_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    let raw = f.raw_texts("SELECT secret_sealed FROM access_keys").await;
    assert!(raw[0].starts_with(&format!("gh1.{}.", keys[0].key_id)));
    upgraded.close().await;
}

/// A key-encryption key whose key manager can be made unreachable, as a KMS stopped or an
/// HSM token removed while Gatehouse runs.
#[derive(Debug, Clone)]
struct SwitchableKek {
    key: MasterKey,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SwitchableKek {
    fn reach(&self) -> Result<(), KeyManagerError> {
        if self.up.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(())
        } else {
            Err(KeyManagerError::Unavailable {
                provider: "kms",
                detail: "connection refused".into(),
            })
        }
    }
}

impl KeyEncryption for SwitchableKek {
    fn wrapping_key(&self) -> String {
        self.key.wrapping_key()
    }
    fn wrap<'a>(&'a self, data_key: &'a Secret) -> gatehouse_store::KeyFuture<'a, Vec<u8>> {
        Box::pin(async move {
            self.reach()?;
            self.key.wrap(data_key).await
        })
    }
    fn unwrap<'a>(
        &'a self,
        wrapped_by: &'a str,
        wrapped: &'a [u8],
    ) -> gatehouse_store::KeyFuture<'a, Secret> {
        Box::pin(async move {
            self.reach()?;
            self.key.unwrap(wrapped_by, wrapped).await
        })
    }
}

/// The key manager goes away while a node runs: the node keeps opening every secret
/// sealed under the data keys it holds, and reports nothing wrong; once another node has
/// moved the secrets onto a new data key (a reseal), the node cannot open them until the
/// key manager is back — `unwrap_new_data_keys` (what `/readyz` asks) fails, and the
/// failure is counted in the key manager's health.
async fn a_key_manager_lost_after_the_start_is_seen(f: &Fixture) {
    use gatehouse_store::KeyManagerOperation::{Check, Unwrap};
    let s = &f.store;
    s.create_user(ACCT, &user("kmuser")).await.unwrap();
    let (k, secret) = s.create_access_key(ACCT, "kmuser").await.unwrap();
    let kek = SwitchableKek {
        key: f.key.clone(),
        up: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
    };
    let node = f.reopen(kek.clone()).await;
    let health = node.key_manager_health();
    assert_eq!(health.provider(), "file");
    assert!(health.reachable());
    assert_eq!(node.unwrap_new_data_keys().await.unwrap(), 0);

    kek.up.store(false, std::sync::atomic::Ordering::SeqCst);
    // Nothing new to unwrap: the node serves from memory and is ready.
    assert_eq!(node.unwrap_new_data_keys().await.unwrap(), 0);
    assert_eq!(
        node.access_key_for_auth(&k.access_key_id).await.unwrap().1,
        secret
    );
    assert!(health.reachable());

    // Another node reseals onto a new data key.
    s.begin_reseal().await.unwrap();
    while s.reseal_batch(100).await.unwrap() > 0 {}
    assert!(s.finish_reseal().await.unwrap());
    let err = node.unwrap_new_data_keys().await.unwrap_err();
    assert!(
        matches!(err, StoreError::KeyManager(ref e) if e.is_unavailable()),
        "{err:?}"
    );
    assert!(!health.reachable());
    assert_eq!(health.failures(Unwrap), 1);
    assert_eq!(health.failures(Check), 0);
    assert!(node.access_key_for_auth(&k.access_key_id).await.is_err());
    assert_eq!(health.failures(Unwrap), 2);

    kek.up.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(node.unwrap_new_data_keys().await.unwrap(), 1);
    assert!(health.reachable());
    assert_eq!(
        node.access_key_for_auth(&k.access_key_id).await.unwrap().1,
        secret
    );
    node.close().await;
}

/// Migration 30 refolds the keys a database written by an older build folded as Unicode
/// lower case: only ASCII letters fold now, as in the policy engine.
async fn tag_key_folding_migration(f: &Fixture) {
    let s = &f.store;
    s.create_user(ACCT, &user("alice")).await.unwrap();
    let tags = [
        Tag::new("\u{212A}ind", "kelvin"),
        Tag::new("\u{C9}clair", "e-acute"),
        Tag::new("Env", "prod"),
    ];
    s.tag_resource(ACCT, TaggedKind::User, "alice", &tags)
        .await
        .unwrap();
    // What the older build stored, and a database that has not seen migration 30.
    f.raw_exec(
        "UPDATE tags SET key_lower = 'kind' WHERE tag_value = 'kelvin'; \
         UPDATE tags SET key_lower = '\u{E9}clair' WHERE tag_value = 'e-acute'; \
         DELETE FROM gatehouse_migrations WHERE version = 30",
    )
    .await;
    let s = f.reopen(f.key.clone()).await;
    let mut folded = f.raw_texts("SELECT key_lower FROM tags").await;
    folded.sort();
    assert_eq!(folded, ["env", "\u{C9}clair", "\u{212A}ind"]);
    // `kind` is another key now: untagging it leaves the Kelvin-sign tag.
    s.untag_resource(
        ACCT,
        TaggedKind::User,
        "alice",
        &["kind".into(), "ENV".into()],
    )
    .await
    .unwrap();
    let left = s
        .list_tags(ACCT, TaggedKind::User, "alice", &ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.contains(&tags[0]) && left.contains(&tags[1]),
        "{left:?}"
    );
    s.close().await;
}

async fn tags(f: &Fixture) {
    let s = &f.store;
    s.create_user(
        ACCT,
        &NewUser {
            tags: vec![Tag::new("team", "search")],
            ..user("alice")
        },
    )
    .await
    .unwrap();
    s.tag_resource(
        ACCT,
        TaggedKind::User,
        "alice",
        &[Tag::new("Team", "infra"), Tag::new("env", "prod")],
    )
    .await
    .unwrap();
    let t = s
        .list_tags(ACCT, TaggedKind::User, "alice", &ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        t.items,
        [Tag::new("env", "prod"), Tag::new("Team", "infra")]
    );
    s.untag_resource(
        ACCT,
        TaggedKind::User,
        "alice",
        &["TEAM".into(), "absent".into()],
    )
    .await
    .unwrap();
    let t = s
        .list_tags(ACCT, TaggedKind::User, "alice", &ListParams::default())
        .await
        .unwrap();
    assert_eq!(t.items, [Tag::new("env", "prod")]);
    assert_validation(
        s.tag_resource(ACCT, TaggedKind::User, "alice", &[Tag::new("aws:x", "y")])
            .await,
    );
    assert_validation(
        s.tag_resource(
            ACCT,
            TaggedKind::User,
            "alice",
            &[Tag::new("k", "1"), Tag::new("K", "2")],
        )
        .await,
    );
    // Only ASCII letters fold, as in the policy engine's condition keys: the Kelvin sign
    // (U+212A) is not `k`, so `\u{212A}ind` is a tag of its own and `kind` keeps its value.
    s.tag_resource(ACCT, TaggedKind::User, "alice", &[Tag::new("kind", "a")])
        .await
        .unwrap();
    s.tag_resource(
        ACCT,
        TaggedKind::User,
        "alice",
        &[Tag::new("\u{212A}ind", "b")],
    )
    .await
    .unwrap();
    let t = s
        .list_tags(ACCT, TaggedKind::User, "alice", &ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        t.items,
        [
            Tag::new("env", "prod"),
            Tag::new("kind", "a"),
            Tag::new("\u{212A}ind", "b")
        ]
    );
    s.untag_resource(ACCT, TaggedKind::User, "alice", &["\u{212A}IND".into()])
        .await
        .unwrap();
    let t = s
        .list_tags(ACCT, TaggedKind::User, "alice", &ListParams::default())
        .await
        .unwrap();
    assert_eq!(t.items, [Tag::new("env", "prod"), Tag::new("kind", "a")]);
    s.untag_resource(ACCT, TaggedKind::User, "alice", &["kind".into()])
        .await
        .unwrap();
    // Control characters are not AWS's space separators.
    for bad in [
        Tag::new("t", "a\nb"),
        Tag::new("t\t", "v"),
        Tag::new("t", "\u{0}"),
    ] {
        assert_validation(
            s.tag_resource(ACCT, TaggedKind::User, "alice", &[bad])
                .await,
        );
    }
    s.tag_resource(
        ACCT,
        TaggedKind::User,
        "alice",
        &[Tag::new("spaced key", "no\u{a0}break")],
    )
    .await
    .unwrap();
    s.untag_resource(ACCT, TaggedKind::User, "alice", &["spaced key".into()])
        .await
        .unwrap();
    s.create_role(
        ACCT,
        &NewRole {
            tags: vec![Tag::new("a", "1"), Tag::new("b", "2"), Tag::new("c", "3")],
            ..role("r")
        },
    )
    .await
    .unwrap();
    let p1 = s
        .list_tags(ACCT, TaggedKind::Role, "r", &ListParams::first(2))
        .await
        .unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = s
        .list_tags(
            ACCT,
            TaggedKind::Role,
            "r",
            &ListParams::first(2).next(&p1).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(p2.items, [Tag::new("c", "3")]);
    let p = s
        .create_policy(
            ACCT,
            &NewPolicy {
                tags: vec![Tag::new("owner", "sec")],
                ..policy("P")
            },
        )
        .await
        .unwrap();
    let t = s
        .list_tags(ACCT, TaggedKind::Policy, &p.arn, &ListParams::default())
        .await
        .unwrap();
    assert_eq!(t.items, [Tag::new("owner", "sec")]);
    assert_no_such(
        s.list_tags(ACCT, TaggedKind::Role, "nope", &ListParams::default())
            .await,
        EntityKind::Role,
    );
    // Deleting the user removes its tags; a new user of the same name starts clean.
    s.delete_user(ACCT, "alice").await.unwrap();
    s.create_user(ACCT, &user("alice")).await.unwrap();
    let t = s
        .list_tags(ACCT, TaggedKind::User, "alice", &ListParams::default())
        .await
        .unwrap();
    assert!(t.items.is_empty());
}

async fn principal_policies(f: &Fixture) {
    let s = &f.store;
    s.create_user(ACCT, &user("alice")).await.unwrap();
    s.tag_resource(
        ACCT,
        TaggedKind::User,
        "alice",
        &[Tag::new("team", "search")],
    )
    .await
    .unwrap();
    s.create_group(ACCT, "devs", None).await.unwrap();
    s.add_user_to_group(ACCT, "devs", "alice").await.unwrap();
    let managed = s.create_policy(ACCT, &policy("Managed")).await.unwrap();
    let v2doc = DOC.replace("InvokeModel", "ListModels");
    s.create_policy_version(ACCT, &managed.arn, &v2doc, true)
        .await
        .unwrap();
    let group_managed = s
        .create_policy(ACCT, &policy("GroupManaged"))
        .await
        .unwrap();
    let boundary = s.create_policy(ACCT, &policy("Boundary")).await.unwrap();
    s.put_inline_policy(ACCT, PrincipalKind::User, "alice", "own", DOC)
        .await
        .unwrap();
    s.attach_policy(ACCT, PrincipalKind::User, "alice", &managed.arn)
        .await
        .unwrap();
    s.put_inline_policy(ACCT, PrincipalKind::Group, "devs", "ginline", DOC)
        .await
        .unwrap();
    s.attach_policy(ACCT, PrincipalKind::Group, "devs", &group_managed.arn)
        .await
        .unwrap();
    s.put_user_permissions_boundary(ACCT, "alice", &boundary.arn)
        .await
        .unwrap();
    s.put_guardrail(ACCT, "no-deploy", DOC).await.unwrap();
    let g = s.put_guardrail(ACCT, "no-deploy", &v2doc).await.unwrap();
    assert_eq!(g.document, v2doc);
    assert_eq!(s.list_guardrails(ACCT).await.unwrap().len(), 1);

    let pp = s
        .load_principal_policies(ACCT, PrincipalRef::User("ALICE"))
        .await
        .unwrap();
    assert_eq!(
        pp.principal_arn,
        "arn:gatehouse:iam::111122223333:user/alice"
    );
    assert_eq!(pp.tags, [Tag::new("team", "search")]);
    assert_eq!(pp.groups, ["devs"]);
    assert_eq!(
        pp.group_arns,
        [format!("arn:gatehouse:iam::{ACCT}:group/devs")]
    );
    let sources: Vec<_> = pp
        .identity_policies
        .iter()
        .map(|p| p.source.clone())
        .collect();
    assert_eq!(
        sources,
        [
            PolicySource::Inline {
                policy_name: "own".into(),
                via_group: None
            },
            PolicySource::Managed {
                arn: managed.arn.clone(),
                version_id: "v2".into(),
                via_group: None
            },
            PolicySource::Inline {
                policy_name: "ginline".into(),
                via_group: Some("devs".into())
            },
            PolicySource::Managed {
                arn: group_managed.arn.clone(),
                version_id: "v1".into(),
                via_group: Some("devs".into())
            },
        ]
    );
    assert_eq!(pp.identity_policies[1].document, v2doc);
    let b = pp.boundary.unwrap();
    assert_eq!(
        b.source,
        PolicySource::Boundary {
            arn: boundary.arn.clone(),
            version_id: "v1".into()
        }
    );
    assert_eq!(pp.guardrails.len(), 1);
    assert_eq!(pp.guardrails[0].document, v2doc);
    assert_eq!(pp.generation, s.policy_generation().await.unwrap());

    // A role: only its own policies.
    s.create_role(
        ACCT,
        &NewRole {
            permissions_boundary: Some(boundary.arn.clone()),
            ..role("r")
        },
    )
    .await
    .unwrap();
    s.put_inline_policy(ACCT, PrincipalKind::Role, "r", "ri", DOC)
        .await
        .unwrap();
    let rp = s
        .load_principal_policies(ACCT, PrincipalRef::Role("r"))
        .await
        .unwrap();
    assert_eq!(rp.identity_policies.len(), 1);
    assert!(rp.groups.is_empty());
    assert!(rp.boundary.is_some());
    assert_no_such(
        s.load_principal_policies(ACCT, PrincipalRef::Role("nope"))
            .await,
        EntityKind::Role,
    );
    s.delete_guardrail(ACCT, "NO-DEPLOY").await.unwrap();
    assert_no_such(
        s.get_guardrail(ACCT, "no-deploy").await,
        EntityKind::Guardrail,
    );
}

async fn failed_write_leaves_nothing(f: &Fixture) {
    let s = &f.store;
    s.create_user(ACCT, &user("alice")).await.unwrap();
    let tags: Vec<_> = (0..45).map(|i| Tag::new(format!("k{i}"), "v")).collect();
    s.tag_resource(ACCT, TaggedKind::User, "alice", &tags)
        .await
        .unwrap();
    let generation = s.policy_generation().await.unwrap();
    // Overwrites k0 and inserts 10 more before the limit check fails: all rolled back.
    let mut more: Vec<_> = (45..55).map(|i| Tag::new(format!("k{i}"), "v")).collect();
    more.insert(0, Tag::new("k0", "changed"));
    assert_limit(s.tag_resource(ACCT, TaggedKind::User, "alice", &more).await);
    let now = s
        .list_tags(ACCT, TaggedKind::User, "alice", &ListParams::default())
        .await
        .unwrap();
    assert_eq!(now.items.len(), 45);
    assert!(now.items.iter().all(|t| t.value == "v"));
    assert_eq!(s.policy_generation().await.unwrap(), generation);
    // A create that fails on its second step (unknown boundary) creates nothing.
    assert_no_such(
        s.create_role(
            ACCT,
            &NewRole {
                permissions_boundary: Some("arn:gatehouse:iam::111122223333:policy/none".into()),
                ..role("r")
            },
        )
        .await,
        EntityKind::Policy,
    );
    assert_no_such(s.get_role(ACCT, "r").await, EntityKind::Role);
    assert_eq!(s.policy_generation().await.unwrap(), generation);
}

async fn generation_and_notifications(f: &Fixture) {
    let s = &f.store;
    let mut sub = s.subscribe().await.unwrap();
    let g0 = s.policy_generation().await.unwrap();
    s.create_user(ACCT, &user("alice")).await.unwrap();
    let g1 = s.policy_generation().await.unwrap();
    assert_eq!(g1, g0 + 1);
    // Other tests' stores share the PostgreSQL database (one schema each) and so the
    // channel: skip their notifications until ours arrives.
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = sub.next().await.unwrap();
            if n == Some(g1) {
                return n;
            }
        }
    })
    .await
    .expect("notification within 5 s");
    assert_eq!(got, Some(g1));
    // A failed write bumps nothing.
    assert_exists(s.create_user(ACCT, &user("ALICE")).await);
    assert_eq!(s.policy_generation().await.unwrap(), g1);
}

async fn meta_kv(f: &Fixture) {
    let s = &f.store;
    assert_eq!(s.get_meta("x").await.unwrap(), None);
    s.put_meta("x", "1").await.unwrap();
    s.put_meta("x", "2").await.unwrap();
    assert_eq!(s.get_meta("x").await.unwrap().as_deref(), Some("2"));
    s.put_meta_secret("s", &gatehouse_store::Secret::new("hush"))
        .await
        .unwrap();
    assert!(s.get_meta("s").await.is_err());
    let raw = f
        .raw_texts("SELECT value FROM meta WHERE meta_key = 's'")
        .await;
    assert!(!raw[0].contains("hush"));
    assert_eq!(
        s.get_meta_secret("s")
            .await
            .unwrap()
            .unwrap()
            .expose_str()
            .unwrap(),
        "hush"
    );
    assert!(s.delete_meta("x").await.unwrap());
    assert!(!s.delete_meta("x").await.unwrap());
}

// -------------------------------------------------------------------------------------
// kill -9 durability (SQLite): a child process (this test binary, re-invoked) writes
// users in a loop and prints each acknowledged name; we SIGKILL it mid-burst, reopen,
// and check every acknowledged user is there.

const CRASH_ENV: &str = "GATEHOUSE_STORE_CRASH_CHILD_DIR";
const CRASH_KEY: [u8; 32] = [7u8; 32];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writer() {
    // Only does something when re-invoked by `sqlite_kill9_durability`.
    let Ok(dir) = std::env::var(CRASH_ENV) else {
        return;
    };
    use std::io::Write;
    let store = Store::open_sqlite(std::path::Path::new(&dir), MasterKey::from_bytes(CRASH_KEY))
        .await
        .unwrap();
    store.ensure_default_account(ACCT, "default").await.unwrap();
    println!("READY");
    for i in 0.. {
        let name = format!("crash{i}");
        store.create_user(ACCT, &user(&name)).await.unwrap();
        let mut out = std::io::stdout().lock();
        writeln!(out, "ACK {name}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill9_durability() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let exe = std::env::current_exe().unwrap();
    let mut child = tokio::process::Command::new(exe)
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_ENV, &dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while acked.len() < 200 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                if let Some(name) = line.strip_prefix("ACK ") {
                    acked.push(name.to_string());
                }
            }
            _ => break,
        }
    }
    // SIGKILL mid-burst.
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success());
    // Writes the child acknowledged after this test stopped reading (it keeps going until
    // the kill lands) are still in the pipe: they count too, or the bound below fails on a
    // loaded machine.
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(name) = line.strip_prefix("ACK ") {
            acked.push(name.to_string());
        }
    }
    assert!(
        acked.len() >= 10,
        "child acknowledged only {} writes",
        acked.len()
    );
    let store = Store::open_sqlite(&dir, MasterKey::from_bytes(CRASH_KEY))
        .await
        .unwrap();
    for name in &acked {
        store
            .get_user(ACCT, name)
            .await
            .unwrap_or_else(|e| panic!("acknowledged user {name} lost after kill -9: {e}"));
    }
    // The store is consistent: every user listed is readable, the one possibly
    // committed after the last ack at most.
    let page = store
        .list_users(ACCT, &ListParams::first(1000))
        .await
        .unwrap();
    assert!(
        page.items.len() >= acked.len() && page.items.len() <= acked.len() + 1,
        "{} users listed, {} acknowledged",
        page.items.len(),
        acked.len()
    );
    store.close().await;
}

async fn audit_chain(f: &Fixture) {
    let store = &f.store;
    for i in 0..5 {
        let e = store.append_audit(&format!("{{\"n\":{i}}}")).await.unwrap();
        assert_eq!(e.seq, i + 1);
    }
    assert_eq!(
        store.verify_audit().await.unwrap(),
        gatehouse_store::AuditVerification::Intact(5)
    );
    let tail = store.audit_tail(2).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(tail[1].prev_hash, tail[0].hash);
    // appending does not move the policy generation: caches stay warm
    let g = store.policy_generation().await.unwrap();
    store.append_audit("{}").await.unwrap();
    assert_eq!(store.policy_generation().await.unwrap(), g);
    // A batch larger than one INSERT statement carries stays one chain, in order.
    let batch: Vec<String> = (0..250).map(|i| format!("{{\"batch\":{i}}}")).collect();
    store.append_audit_batch(&batch).await.unwrap();
    assert_eq!(
        store.verify_audit().await.unwrap(),
        gatehouse_store::AuditVerification::Intact(256)
    );
    let appended: Vec<String> = store
        .audit_entries(6, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record)
        .collect();
    assert_eq!(appended, batch);
}

/// Signs a digest with a stand-in signature (the key manager's signing is tested in
/// `gatehouse-keys` and end to end): the store's part is keeping the digests and
/// checking the records against them.
async fn digest_now(store: &Store) -> gatehouse_store::AuditDigest {
    let body = store.next_audit_digest().await.unwrap();
    let d = gatehouse_store::AuditDigest::new(body, "test".into(), "test".into(), b"sig");
    store.append_audit_digest(&d).await.unwrap();
    d
}

async fn audit_digests_anchor_the_chain(f: &Fixture) {
    let store = &f.store;
    let signed = |d: &gatehouse_store::AuditDigest| d.signature == hex::encode(b"sig");
    for i in 0..3 {
        store.append_audit(&format!("{{\"a\":{i}}}")).await.unwrap();
    }
    let d1 = digest_now(store).await;
    for i in 0..3 {
        store.append_audit(&format!("{{\"b\":{i}}}")).await.unwrap();
    }
    let d2 = digest_now(store).await;
    assert_eq!((d1.body.audit_seq, d2.body.audit_seq), (3, 6));
    assert_eq!(d2.body.prev_digest, d1.digest);
    // A digest that does not follow the last one is refused (another node's came first).
    assert!(matches!(
        store.append_audit_digest(&d2).await,
        Err(StoreError::EntityAlreadyExists { .. })
    ));
    let digests = store.audit_digests().await.unwrap();
    let v = store.verify_audit_digests(&digests, &signed).await.unwrap();
    assert_eq!((v.records, v.anchored_records, v.broken), (6, 6, None));
    // A forged signature is reported at its digest.
    let v = store
        .verify_audit_digests(&digests, &|d| d.body.seq != 2)
        .await
        .unwrap();
    assert_eq!(v.broken.unwrap().digest_seq, 2);
    // Record 5 rewritten and the chain re-hashed from there: detected from digest 2.
    let entries = store.audit_entries(0, 100).await.unwrap();
    let mut prev = entries[3].hash.clone();
    for e in &entries[4..] {
        let record = if e.seq == 5 {
            "{\"b\":99}"
        } else {
            e.record.as_str()
        };
        let hash = {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            h.update(prev.as_bytes());
            h.update([0u8]);
            h.update(record.as_bytes());
            hex::encode(h.finalize())
        };
        f.raw_exec(&format!(
            "UPDATE audit_log SET record = '{record}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
            e.seq
        ))
        .await;
        prev = hash;
    }
    f.raw_exec(&format!("UPDATE audit_head SET hash = '{prev}'"))
        .await;
    assert_eq!(
        store.verify_audit().await.unwrap(),
        gatehouse_store::AuditVerification::Intact(6)
    );
    let v = store.verify_audit_digests(&digests, &signed).await.unwrap();
    let broken = v.broken.unwrap();
    assert_eq!((broken.digest_seq, v.anchored_records), (2, 3));
    assert!(broken.reason.contains("rewritten"), "{}", broken.reason);
    // The tail dropped: the digest that signed it says the log is truncated.
    f.raw_exec("DELETE FROM audit_log WHERE seq > 3").await;
    let v = store.verify_audit_digests(&digests, &signed).await.unwrap();
    let broken = v.broken.unwrap();
    assert_eq!(broken.digest_seq, 2);
    assert!(broken.reason.contains("truncated"), "{}", broken.reason);
}

/// MCP servers (migration 0040): header values sealed and opened, names checked, a name
/// taken in another case refused; pins recorded on first contact only, a changed
/// definition kept pending until approved, and removal taking the pins along.
async fn mcp_servers_and_pins(f: &Fixture) {
    use gatehouse_store::{McpTransport, NewMcpServer, Secret};
    let s = &f.store;
    let token = Secret::new("Bearer upstream-token-never-in-plaintext");
    let mut new = NewMcpServer {
        name: "docs".into(),
        transport: McpTransport::Http {
            url: "http://127.0.0.1:9000/mcp".into(),
        },
        headers: vec![("Authorization".into(), token.clone())],
        env: vec![],
        log_invocations: false,
    };
    let gen0 = s.policy_generation().await.unwrap();
    let saved = s.put_mcp_server(ACCT, &new, true).await.unwrap();
    assert_eq!(saved.header_names, vec!["Authorization".to_owned()]);
    assert_eq!(saved.pinned, None);
    assert!(s.policy_generation().await.unwrap() > gen0);
    assert_exists(s.put_mcp_server(ACCT, &new, true).await);
    new.name = "DOCS".into();
    assert_exists(s.put_mcp_server(ACCT, &new, true).await);
    for bad in ["", "a/b", "..", "x y", "caf\u{e9}"] {
        new.name = bad.into();
        assert_validation(s.put_mcp_server(ACCT, &new, true).await);
    }
    new.name = "other".into();
    new.transport = McpTransport::Http {
        url: "http://user:pw@127.0.0.1/mcp".into(),
    };
    assert_validation(s.put_mcp_server(ACCT, &new, true).await);
    let raw = f.raw_texts("SELECT secrets_sealed FROM mcp_servers").await;
    assert!(!raw[0].contains("upstream-token") && raw[0].starts_with("gh1."));
    let opened = s.mcp_server_secrets(ACCT, "docs").await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(opened.expose_str().unwrap()).unwrap();
    assert_eq!(v["headers"]["Authorization"], token.expose_str().unwrap());

    // A stdio server with an environment.
    let fs = NewMcpServer {
        name: "fs".into(),
        transport: McpTransport::Stdio {
            command: "node".into(),
            args: vec!["server.js".into(), "/srv".into()],
        },
        headers: vec![],
        env: vec![("API_TOKEN".into(), Secret::new("t0ken"))],
        log_invocations: true,
    };
    let saved = s.put_mcp_server(ACCT, &fs, true).await.unwrap();
    assert_eq!(
        saved.transport,
        McpTransport::Stdio {
            command: "node".into(),
            args: vec!["server.js".into(), "/srv".into()]
        }
    );
    assert_eq!(s.list_mcp_servers().await.unwrap().len(), 2);

    // Pins: first contact records, a second first contact does not.
    let tools = vec![
        (
            "read".to_owned(),
            r#"{"name":"read"}"#.to_owned(),
            "d1".to_owned(),
        ),
        (
            "write".to_owned(),
            r#"{"name":"write"}"#.to_owned(),
            "d2".to_owned(),
        ),
    ];
    assert!(s.pin_mcp_tools_first(ACCT, "fs", &tools).await.unwrap());
    assert!(
        !s.pin_mcp_tools_first(ACCT, "fs", &tools[..1])
            .await
            .unwrap()
    );
    assert!(s.get_mcp_server(ACCT, "fs").await.unwrap().pinned.is_some());
    let bad_tool = vec![("../x".to_owned(), "{}".to_owned(), "d".to_owned())];
    assert_validation(s.pin_mcp_tools_first(ACCT, "docs", &bad_tool).await);
    // A changed definition is pending; approval makes it the pin.
    s.record_mcp_tool_change(ACCT, "fs", "write", r#"{"name":"write","x":1}"#, "d3")
        .await
        .unwrap();
    s.record_mcp_tool_change(ACCT, "fs", "new_tool", r#"{"name":"new_tool"}"#, "d4")
        .await
        .unwrap();
    let pins = s.list_mcp_tools(ACCT, "fs").await.unwrap();
    let write = pins.iter().find(|p| p.tool == "write").unwrap();
    assert_eq!(write.approved_digest.as_deref(), Some("d2"));
    assert_eq!(write.pending_digest.as_deref(), Some("d3"));
    assert_no_such(
        s.approve_mcp_tools(ACCT, "fs", Some("read")).await,
        EntityKind::McpTool,
    );
    let gen1 = s.policy_generation().await.unwrap();
    assert_eq!(
        s.approve_mcp_tools(ACCT, "fs", Some("write"))
            .await
            .unwrap(),
        vec!["write".to_owned()]
    );
    assert!(s.policy_generation().await.unwrap() > gen1);
    let pins = s.list_mcp_tools(ACCT, "fs").await.unwrap();
    let write = pins.iter().find(|p| p.tool == "write").unwrap();
    assert_eq!(
        (write.approved_digest.as_deref(), write.pending.as_deref()),
        (Some("d3"), None)
    );
    assert_eq!(
        s.approve_mcp_tools(ACCT, "fs", None).await.unwrap(),
        vec!["new_tool".to_owned()]
    );
    // Removal takes the pins along.
    s.delete_mcp_server(ACCT, "fs").await.unwrap();
    assert_no_such(s.get_mcp_server(ACCT, "fs").await, EntityKind::McpServer);
    assert!(s.list_mcp_tools(ACCT, "fs").await.unwrap().is_empty());
    assert_no_such(s.delete_mcp_server(ACCT, "fs").await, EntityKind::McpServer);
}

async fn gateway_deployments(f: &Fixture) {
    use gatehouse_store::{NewDeployment, Secret};
    let s = &f.store;
    let key = Secret::new("sk-provider-key-never-in-plaintext");
    let mut d = NewDeployment {
        model_id: "llama-3-8b".into(),
        provider: "vllm".into(),
        base_url: "http://10.0.0.5:8000/v1".into(),
        upstream_model: None,
        api_key: Some(key.clone()),
        log_invocations: true,
        deprecated_on: None,
        clear_api_key: false,
    };
    let gen0 = s.policy_generation().await.unwrap();
    let saved = s.put_deployment(ACCT, &d, true).await.unwrap();
    assert!(saved.has_key && saved.log_invocations && saved.guardrail.is_none());
    assert!(
        s.policy_generation().await.unwrap() > gen0,
        "routing changes bump the generation"
    );
    assert_exists(s.put_deployment(ACCT, &d, true).await);
    d.model_id = "absent".into();
    assert_no_such(
        s.put_deployment(ACCT, &d, false).await,
        EntityKind::Deployment,
    );
    d.model_id = "bad model id".into();
    assert_validation(s.put_deployment(ACCT, &d, true).await);
    d.model_id = "llama-3-8b".into();
    d.base_url = "ftp://x".into();
    assert_validation(s.put_deployment(ACCT, &d, false).await);
    for bad in [
        "http://user:pw@10.0.0.5/v1",
        "http://10.0.0.5/v1?x=1",
        "http://",
    ] {
        d.base_url = bad.into();
        assert_validation(s.put_deployment(ACCT, &d, false).await);
    }
    // The key is sealed at rest and opens again; an update without a key on the same
    // host keeps it.
    let raw = f.raw_texts("SELECT key_sealed FROM ai_deployments").await;
    assert!(!raw[0].contains(key.expose_str().unwrap()) && raw[0].starts_with("gh1."));
    d.base_url = "http://10.0.0.5:8000/v2".into();
    d.api_key = None;
    let updated = s.put_deployment(ACCT, &d, false).await.unwrap();
    assert_eq!(updated.base_url, "http://10.0.0.5:8000/v2");
    assert_eq!(
        s.deployment_key(ACCT, "llama-3-8b").await.unwrap(),
        Some(key.clone())
    );
    // Another host (or port) without the key again is refused and changes nothing: the
    // sealed key must not follow the URL.
    for elsewhere in [
        "http://10.0.0.6:8000/v1",
        "http://10.0.0.5:8001/v1",
        "https://10.0.0.5:8000/v1",
    ] {
        d.base_url = elsewhere.into();
        assert_validation(s.put_deployment(ACCT, &d, false).await);
    }
    assert_eq!(
        s.get_deployment(ACCT, "llama-3-8b").await.unwrap().base_url,
        "http://10.0.0.5:8000/v2"
    );
    // With the key again it moves; clearing the key moves it without one.
    d.base_url = "http://10.0.0.6:8000/v1".into();
    d.api_key = Some(key.clone());
    assert!(s.put_deployment(ACCT, &d, false).await.unwrap().has_key);
    d.base_url = "http://10.0.0.7:8000/v1".into();
    d.api_key = None;
    d.clear_api_key = true;
    let moved = s.put_deployment(ACCT, &d, false).await.unwrap();
    assert!(!moved.has_key);
    assert_eq!(s.deployment_key(ACCT, "llama-3-8b").await.unwrap(), None);
    d.clear_api_key = false;
    d.api_key = Some(key.clone());
    assert!(s.put_deployment(ACCT, &d, false).await.unwrap().has_key);
    d.api_key = None;
    // A deprecation date (migration 0012) is kept, must be a real YYYY-MM-DD date, and a
    // refused date changes nothing.
    assert_eq!(updated.deprecated_on, None);
    d.deprecated_on = Some("2026-06-30".into());
    let dated = s.put_deployment(ACCT, &d, false).await.unwrap();
    assert_eq!(dated.deprecated_on.as_deref(), Some("2026-06-30"));
    for bad in ["2026-02-30", "30/06/2026", "2026-6-30", ""] {
        d.deprecated_on = Some(bad.into());
        assert_validation(s.put_deployment(ACCT, &d, false).await);
    }
    assert_eq!(
        s.get_deployment(ACCT, "llama-3-8b")
            .await
            .unwrap()
            .deprecated_on
            .as_deref(),
        Some("2026-06-30")
    );
    d.deprecated_on = None;
    // Guardrails: create refuses to overwrite, update needs one, delete removes it.
    assert_no_such(
        s.set_deployment_guardrail(ACCT, "llama-3-8b", Some("{}"), false)
            .await,
        EntityKind::Guardrail,
    );
    s.set_deployment_guardrail(ACCT, "llama-3-8b", Some(r#"{"max_tokens":5}"#), true)
        .await
        .unwrap();
    assert_exists(
        s.set_deployment_guardrail(ACCT, "llama-3-8b", Some("{}"), true)
            .await,
    );
    assert_eq!(
        s.get_deployment(ACCT, "llama-3-8b")
            .await
            .unwrap()
            .guardrail
            .as_deref(),
        Some(r#"{"max_tokens":5}"#)
    );
    s.set_deployment_guardrail(ACCT, "llama-3-8b", None, false)
        .await
        .unwrap();
    assert_no_such(
        s.set_deployment_guardrail(ACCT, "llama-3-8b", None, false)
            .await,
        EntityKind::Guardrail,
    );
    // Invocation logs are sealed and bound to their request.
    let content = Secret::new(r#"{"request":"the secret marmot"}"#);
    s.append_invocation_log(ACCT, "llama-3-8b", "req-1", "arn:p", &content)
        .await
        .unwrap();
    let raw = f.raw_texts("SELECT sealed FROM ai_invocation_logs").await;
    assert!(!raw[0].contains("marmot"));
    let logs = s
        .read_invocation_logs(ACCT, "llama-3-8b", 10)
        .await
        .unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].content, content);
    assert_eq!(logs[0].request_id, "req-1");
    assert!(
        s.read_invocation_logs(ACCT, "other", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A reseal moves provider keys and logs too.
    s.begin_reseal().await.unwrap();
    assert!(s.reseal_batch(100).await.unwrap() >= 2);
    assert!(s.finish_reseal().await.unwrap());
    let other = f.reopen(f.key.clone()).await;
    assert_eq!(
        other.deployment_key(ACCT, "llama-3-8b").await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        other
            .read_invocation_logs(ACCT, "llama-3-8b", 10)
            .await
            .unwrap()[0]
            .content,
        content
    );
    other.close().await;
    // Fine-tuning job records.
    s.record_fine_tuning_job(ACCT, "ftjob-1", "llama-3-8b", "arn:p")
        .await
        .unwrap();
    assert_eq!(
        s.get_fine_tuning_job(ACCT, "ftjob-1")
            .await
            .unwrap()
            .model_id,
        "llama-3-8b"
    );
    assert_no_such(
        s.get_fine_tuning_job(ACCT, "ftjob-2").await,
        EntityKind::FineTuningJob,
    );
    assert_eq!(s.list_fine_tuning_jobs(ACCT, 10).await.unwrap().len(), 1);
    // A batch of audit records keeps one verifiable chain.
    s.append_audit(r#"{"n":0}"#).await.unwrap();
    s.append_audit_batch(&[r#"{"n":1}"#.to_owned(), r#"{"n":2}"#.to_owned()])
        .await
        .unwrap();
    assert_eq!(
        s.verify_audit().await.unwrap(),
        gatehouse_store::AuditVerification::Intact(3)
    );
    s.delete_deployment(ACCT, "llama-3-8b").await.unwrap();
    assert_no_such(
        s.delete_deployment(ACCT, "llama-3-8b").await,
        EntityKind::Deployment,
    );
    assert!(s.list_deployments().await.unwrap().is_empty());
}

/// Budget counters shared between nodes: each node's absolute totals per bucket are
/// upserted (a repeated sync does not double-count), a node reads only the others' sums
/// of the buckets from the first it asks for (later ones included), with the database's
/// clock, and old buckets are pruned.
async fn gateway_usage(f: &Fixture) {
    use gatehouse_store::UsageCount;
    let s = &f.store;
    let u = |scope: &str, secs: i64, start: i64, requests: i64, tokens: i64| UsageCount {
        scope: scope.into(),
        bucket_secs: secs,
        bucket_start: start,
        requests,
        tokens,
    };
    let (sec, hour) = (1_800_000_000, 3_600 * 500_000);
    let since = [(1, sec - 60), (3_600, hour - 24 * 3_600)];
    let group = "arn:gatehouse:iam::111122223333:group/search";
    // Node A writes; it does not see its own counts.
    let before = chrono::Utc::now().timestamp_millis();
    let seen = s
        .sync_gateway_usage(
            "node-a",
            &[u(group, 1, sec, 3, 40), u(group, 3_600, hour, 0, 40)],
            &since,
        )
        .await
        .unwrap();
    assert!(seen.others.is_empty(), "{seen:?}");
    // The database's clock (the same machine's here).
    let after = chrono::Utc::now().timestamp_millis();
    assert!(
        (before - 1_000..=after + 1_000).contains(&seen.store_time_ms),
        "{} not in {before}..{after}",
        seen.store_time_ms
    );
    // A syncs again with its new totals: replaced, not added.
    s.sync_gateway_usage("node-a", &[u(group, 1, sec, 5, 70)], &since)
        .await
        .unwrap();
    // Node C (another handle on the same database) sees A's latest totals, and after B
    // writes, the sum of A and B per bucket — never its own.
    let other = f.reopen(f.key.clone()).await;
    other
        .sync_gateway_usage(
            "node-b",
            &[
                u(group, 1, sec, 2, 10),
                u(group, 1, sec + 5, 1, 1),
                u("ASIAEXAMPLE", 1, sec - 10, 1, 0),
            ],
            &since,
        )
        .await
        .unwrap();
    let sorted = |mut v: Vec<UsageCount>| {
        v.sort_by(|a, b| {
            (&a.scope, a.bucket_secs, a.bucket_start).cmp(&(
                &b.scope,
                b.bucket_secs,
                b.bucket_start,
            ))
        });
        v
    };
    let seen = s.sync_gateway_usage("node-c", &[], &since).await.unwrap();
    assert_eq!(
        sorted(seen.others),
        vec![
            u("ASIAEXAMPLE", 1, sec - 10, 1, 0),
            u(group, 1, sec, 7, 80),
            u(group, 1, sec + 5, 1, 1),
            u(group, 3_600, hour, 0, 40),
        ]
    );
    // B sees only A.
    let seen_b = other
        .sync_gateway_usage("node-b", &[], &[(1, sec - 60)])
        .await
        .unwrap();
    assert_eq!(seen_b.others, vec![u(group, 1, sec, 5, 70)]);
    // Buckets before the first asked for are not read, and are pruned when told.
    s.sync_gateway_usage("node-a", &[u(group, 1, sec - 120, 9, 9)], &[])
        .await
        .unwrap();
    let seen = s
        .sync_gateway_usage("node-c", &[], &[(1, sec - 5)])
        .await
        .unwrap();
    assert_eq!(seen.others.len(), 2, "{seen:?}");
    assert_eq!(
        s.prune_gateway_usage(&[(1, sec - 60), (3_600, hour - 24 * 3_600)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.prune_gateway_usage(&[(1, sec + 6), (3_600, hour + 1)])
            .await
            .unwrap(),
        5
    );
    other.close().await;
}

/// The number of entries in the chain, checking it is intact.
async fn intact_entries(store: &Store) -> i64 {
    match store.verify_audit().await.unwrap() {
        gatehouse_store::AuditVerification::Intact(n) => n,
        broken => panic!("audit chain broken: {broken:?}"),
    }
}

fn staged(record: &str) -> std::sync::Arc<PendingAudit> {
    let p = std::sync::Arc::new(PendingAudit::default());
    p.stage(record.to_owned());
    p
}

async fn audit_record_joins_its_write(f: &Fixture) {
    let s = &f.store;
    let n0 = intact_entries(s).await;
    let g0 = s.policy_generation().await.unwrap();

    // A write through a handle carrying a staged record appends it, once, with the write.
    let p = staged(r#"{"call":"create a1"}"#);
    let view = s.with_audit(p.clone());
    view.create_user(ACCT, &user("a1")).await.unwrap();
    let appended = p.appended().expect("the write appended the record");
    assert_eq!(appended.generation, g0 + 1);
    assert_eq!(appended.seq, n0 + 1);
    let last = s.audit_tail(1).await.unwrap();
    assert_eq!(last[0].seq, appended.seq);
    assert_eq!(last[0].record, r#"{"call":"create a1"}"#);
    // A later write through the same handle adds the change but no second record, and
    // staging again after the append changes nothing.
    p.stage(r#"{"call":"again"}"#.to_owned());
    view.create_user(ACCT, &user("a2")).await.unwrap();
    assert_eq!(intact_entries(s).await, n0 + 1);
    assert_eq!(p.appended(), Some(appended));
    // Reads through the handle append nothing either.
    let reader = s.with_audit(staged(r#"{"call":"read"}"#));
    reader.get_user(ACCT, "a1").await.unwrap();
    assert_eq!(intact_entries(s).await, n0 + 1);

    // A write that fails (after some of its statements ran) rolls its record back with it.
    let tags: Vec<_> = (0..45).map(|i| Tag::new(format!("k{i}"), "v")).collect();
    s.tag_resource(ACCT, TaggedKind::User, "a2", &tags)
        .await
        .unwrap();
    // Inserts 10 more before the limit check fails.
    let tags: Vec<_> = (45..55).map(|i| Tag::new(format!("k{i}"), "v")).collect();
    let p = staged(r#"{"call":"too many tags"}"#);
    assert_limit(
        s.with_audit(p.clone())
            .tag_resource(ACCT, TaggedKind::User, "a2", &tags)
            .await,
    );
    assert_eq!(p.appended(), None);
    assert_eq!(intact_entries(s).await, n0 + 1);
    // So does one refused before it wrote anything.
    let p = staged(r#"{"call":"duplicate"}"#);
    assert_exists(s.with_audit(p.clone()).create_user(ACCT, &user("A1")).await);
    assert_eq!(p.appended(), None);
    // A write that finds nothing to change rolls back without committing: no record
    // (its caller appends the call's record on its own).
    let p = staged(r#"{"call":"no-op"}"#);
    s.with_audit(p.clone())
        .ensure_default_account(ACCT, "default")
        .await
        .unwrap();
    assert_eq!(p.appended(), None);
    assert_eq!(intact_entries(s).await, n0 + 1);
    // A withdrawn record is not appended.
    let p = staged(r#"{"call":"withdrawn"}"#);
    p.unstage();
    s.with_audit(p.clone())
        .create_user(ACCT, &user("a3"))
        .await
        .unwrap();
    assert_eq!(p.appended(), None);
    assert_eq!(intact_entries(s).await, n0 + 1);

    // Inject a failure after the write's statements and at the record's append: a row
    // planted behind the store's back takes the next sequence number, so the record's
    // INSERT fails. The whole transaction rolls back: no user, no record, no generation.
    let next = n0 + 2;
    f.raw_exec(&format!(
        "INSERT INTO audit_log (seq, time_ms, record, prev_hash, hash) VALUES ({next}, 0, 'planted', '', '')"
    ))
    .await;
    let g = s.policy_generation().await.unwrap();
    let p = staged(r#"{"call":"create b1"}"#);
    assert!(
        s.with_audit(p.clone())
            .create_user(ACCT, &user("b1"))
            .await
            .is_err()
    );
    assert_eq!(p.appended(), None);
    assert_no_such(s.get_user(ACCT, "b1").await, EntityKind::User);
    assert_eq!(s.policy_generation().await.unwrap(), g);
    f.raw_exec("DELETE FROM audit_log WHERE record = 'planted'")
        .await;
    assert_eq!(intact_entries(s).await, n0 + 1);
    // The same call retried commits both.
    s.with_audit(p.clone())
        .create_user(ACCT, &user("b1"))
        .await
        .unwrap();
    assert_eq!(p.appended().map(|a| a.seq), Some(next));
    s.get_user(ACCT, "b1").await.unwrap();
    assert_eq!(intact_entries(s).await, next);
    assert_eq!(
        s.audit_tail(1).await.unwrap()[0].record,
        r#"{"call":"create b1"}"#
    );
}

/// Records appended with writes, alone and in batches, from many tasks at once, make one
/// intact chain with every record in it exactly once.
async fn audit_appends_serialise(f: &Fixture) {
    let s = &f.store;
    let n0 = intact_entries(s).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => {
                    let p = staged(&format!("{{\"w\":{i}}}"));
                    s.with_audit(p.clone())
                        .create_user(ACCT, &user(&format!("u{i}")))
                        .await
                        .unwrap();
                    assert!(p.appended().is_some());
                }
                1 => {
                    let batch: Vec<String> =
                        (0..5).map(|j| format!("{{\"b\":{i},\"j\":{j}}}")).collect();
                    s.append_audit_batch(&batch).await.unwrap();
                }
                _ => {
                    s.append_audit(&format!("{{\"a\":{i}}}")).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 4 writes, 4 batches of 5, 4 single appends.
    assert_eq!(intact_entries(s).await, n0 + 4 + 20 + 4);
    let records: Vec<String> = s
        .audit_entries(n0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record)
        .collect();
    let mut unique = records.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), records.len());
    for i in (0..12).step_by(3) {
        assert!(records.contains(&format!("{{\"w\":{i}}}")));
        s.get_user(ACCT, &format!("u{i}")).await.unwrap();
    }
}
