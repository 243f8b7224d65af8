//! What `gatehouse serve` leaves on disk is readable by its own user only: the data
//! directory it creates is 0700, the SQLite database and its `-wal`/`-shm` files 0600, the
//! master key and root credentials 0600 — whatever the process umask.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_server::ServeOptions;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_fresh_data_directory_and_its_files_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    // A parent that does not exist yet: both levels are created by the server.
    let data = tmp.path().join("deploy").join("gatehouse-data");
    let opts = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.clone(),
        database_url: None,
        account_id: Some("111122223333".into()),
        region: "local".into(),
        key_encryption: None,
        database_tls: Default::default(),
    };
    let (state, _listener, _root) = gatehouse_server::prepare(&opts).await.unwrap();
    // A write, so that the write-ahead log and its index exist.
    state
        .store
        .create_user(
            "111122223333",
            &gatehouse_store::NewUser {
                name: "alice".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    assert_eq!(mode(&data), 0o700, "data directory");
    let db = data.join(gatehouse_store::SQLITE_FILE);
    assert_eq!(mode(&db), 0o600, "database");
    for suffix in ["-wal", "-shm"] {
        let side = data.join(format!("{}{suffix}", gatehouse_store::SQLITE_FILE));
        assert!(side.exists(), "{} exists in WAL mode", side.display());
        assert_eq!(mode(&side), 0o600, "{}", side.display());
    }
    assert_eq!(
        mode(&data.join(gatehouse_store::seal::MASTER_KEY_FILE)),
        0o600,
        "master key"
    );
    assert_eq!(
        mode(&data.join(gatehouse_server::bootstrap::ROOT_CREDENTIALS_FILE)),
        0o600,
        "root credentials"
    );
}

#[tokio::test]
async fn an_existing_database_left_world_readable_is_made_private_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = gatehouse_store::MasterKey::load_or_create(&data).unwrap();
    drop(
        gatehouse_store::Store::open_sqlite(&data, key)
            .await
            .unwrap(),
    );
    let db = data.join(gatehouse_store::SQLITE_FILE);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let key = gatehouse_store::MasterKey::load_or_create(&data).unwrap();
    let _store = gatehouse_store::Store::open_sqlite(&data, key)
        .await
        .unwrap();
    assert_eq!(mode(&db), 0o600);
}
