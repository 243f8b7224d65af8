//! The knowledge base registry against a real store, on both backends: every case becomes
//! `<case>::sqlite` and `<case>::postgres` (the latter needs `GATEHOUSE_TEST_POSTGRES_URL`;
//! each case uses a fresh schema, dropped at the end).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_store::{
    KnowledgeBackend, MasterKey, NewDeployment, NewKnowledgeBase, Secret, Store, StoreError,
    StoreOptions,
};

const ACCT: &str = "111122223333";

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
        let schema = format!("gh_kb_{}", hex::encode(bytes));
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

    async fn raw_text(&self, sql: &str) -> Option<String> {
        use sqlx::Row;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.pg {
            Some((url, schema)) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let mut c = pool.acquire().await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SET search_path TO \"{schema}\""
                )))
                .execute(&mut *c)
                .await
                .unwrap();
                let row = sqlx::query(sql).fetch_one(&mut *c).await.unwrap();
                row.get::<Option<String>, _>(0)
            }
            None => {
                let path = self
                    ._dir
                    .path()
                    .join("data")
                    .join(gatehouse_store::SQLITE_FILE);
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                let row = sqlx::query(sql).fetch_one(&pool).await.unwrap();
                row.get::<Option<String>, _>(0)
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

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = super::Fixture::sqlite().await;
                f.store.ensure_default_account(super::ACCT, "default").await.unwrap();
                super::$case(&f).await;
                f.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(f) = super::Fixture::postgres().await else {
                    gatehouse_testenv::missing("PostgreSQL", "set GATEHOUSE_TEST_POSTGRES_URL");
                    return;
                };
                f.store.ensure_default_account(super::ACCT, "default").await.unwrap();
                super::$case(&f).await;
                f.finish().await;
            }
        }
    )*};
}

both_backends!(registry_round_trip, registry_refuses_bad_input);

fn chroma(name: &str) -> NewKnowledgeBase {
    NewKnowledgeBase {
        name: name.into(),
        backend: KnowledgeBackend::Chroma,
        url: "http://127.0.0.1:8000".into(),
        collection: "hr-docs".into(),
        tenant: None,
        database: None,
        embedding_model: Some("embed-small".into()),
        credential: Some(Secret::new("chroma-token-0123456789")),
    }
}

/// Created, read, listed, replaced and removed; the credential sealed at rest and opened for
/// the upstream only; every write bumps the generation (the gateway's table follows it).
async fn registry_round_trip(f: &Fixture) {
    let s = &f.store;
    let g0 = s.policy_generation().await.unwrap();
    let saved = s
        .put_knowledge_base(ACCT, &chroma("hr"), true)
        .await
        .unwrap();
    assert_eq!(saved.backend, KnowledgeBackend::Chroma);
    assert!(saved.has_credential);
    assert!(s.policy_generation().await.unwrap() > g0);
    let raw = f
        .raw_text("SELECT credential_sealed FROM knowledge_bases WHERE name = 'hr'")
        .await
        .unwrap();
    assert!(!raw.contains("chroma-token"), "sealed at rest: {raw}");
    let opened = s
        .knowledge_base_credential(ACCT, "hr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.expose_str(), Some("chroma-token-0123456789"));

    // The same name in another case is the same knowledge base.
    assert!(matches!(
        s.put_knowledge_base(ACCT, &chroma("HR"), true).await,
        Err(StoreError::EntityAlreadyExists { .. })
    ));
    // Replaced without a credential: the stored one is dropped (a new URL never gets the
    // old URL's token).
    let mut moved = chroma("hr");
    moved.url = "http://127.0.0.1:9000".into();
    moved.credential = None;
    let updated = s.put_knowledge_base(ACCT, &moved, false).await.unwrap();
    assert!(!updated.has_credential);
    assert_eq!(updated.url, "http://127.0.0.1:9000");
    assert!(
        s.knowledge_base_credential(ACCT, "hr")
            .await
            .unwrap()
            .is_none()
    );

    let openai = NewKnowledgeBase {
        name: "handbook".into(),
        backend: KnowledgeBackend::OpenAi,
        url: "https://api.example.invalid/v1".into(),
        collection: "vs_abc123".into(),
        tenant: None,
        database: None,
        embedding_model: None,
        credential: Some(Secret::new("sk-upstream")),
    };
    s.put_knowledge_base(ACCT, &openai, true).await.unwrap();
    let names: Vec<String> = s
        .list_knowledge_bases()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["handbook", "hr"]);

    s.delete_knowledge_base(ACCT, "hr").await.unwrap();
    assert!(matches!(
        s.get_knowledge_base(ACCT, "hr").await,
        Err(StoreError::NoSuchEntity { .. })
    ));
    assert!(matches!(
        s.delete_knowledge_base(ACCT, "hr").await,
        Err(StoreError::NoSuchEntity { .. })
    ));
    // A deployment of the same name is another thing entirely.
    let d = NewDeployment {
        model_id: "embed-small".into(),
        provider: "openai-compatible".into(),
        base_url: "http://127.0.0.1:9999/v1".into(),
        ..NewDeployment::default()
    };
    s.put_deployment(ACCT, &d, true).await.unwrap();
    assert_eq!(s.list_knowledge_bases().await.unwrap().len(), 1);
}

/// Bad input is refused with a validation error and changes nothing stored.
async fn registry_refuses_bad_input(f: &Fixture) {
    let s = &f.store;
    let g0 = s.policy_generation().await.unwrap();
    let bad: Vec<(&str, NewKnowledgeBase)> = vec![
        (
            "slash in name",
            NewKnowledgeBase {
                name: "a/b".into(),
                ..chroma("x")
            },
        ),
        (
            "empty name",
            NewKnowledgeBase {
                name: String::new(),
                ..chroma("x")
            },
        ),
        (
            "not a URL",
            NewKnowledgeBase {
                url: "chroma".into(),
                ..chroma("x")
            },
        ),
        (
            "ftp",
            NewKnowledgeBase {
                url: "ftp://h/".into(),
                ..chroma("x")
            },
        ),
        (
            "password in URL",
            NewKnowledgeBase {
                url: "http://u:p@127.0.0.1:8000".into(),
                ..chroma("x")
            },
        ),
        (
            "path in collection",
            NewKnowledgeBase {
                collection: "../tenants".into(),
                ..chroma("x")
            },
        ),
        (
            "no embedding for chroma",
            NewKnowledgeBase {
                embedding_model: None,
                ..chroma("x")
            },
        ),
        (
            "tenant on openai",
            NewKnowledgeBase {
                backend: KnowledgeBackend::OpenAi,
                tenant: Some("t1".into()),
                ..chroma("x")
            },
        ),
    ];
    for (why, kb) in bad {
        assert!(
            matches!(
                s.put_knowledge_base(ACCT, &kb, true).await,
                Err(StoreError::Validation(_))
            ),
            "{why}"
        );
    }
    assert!(matches!(
        s.put_knowledge_base(ACCT, &chroma("nothere"), false).await,
        Err(StoreError::NoSuchEntity { .. })
    ));
    assert!(s.list_knowledge_bases().await.unwrap().is_empty());
    assert_eq!(s.policy_generation().await.unwrap(), g0);
}
