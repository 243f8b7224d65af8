//! What a test may need from the machine it runs on, found in one place, and **strict
//! mode**.
//!
//! Some tests need parts that are not in the repository: a PostgreSQL server, the shared
//! policy corpus (`../shared/corpus`), Node packages installed by `npm ci`. On a developer's
//! machine a missing part makes such a test return early with a loud notice. In CI a
//! skipped test is not a passed one: with `GATEHOUSE_STRICT=1` (set by `scripts/test.sh`
//! when `CI` is set, or by hand) a missing part fails the test instead.
//!
//! This crate is a dev-dependency only; it must not be linked into a shipped binary.

// A test that cannot run in strict mode must fail, and failing a test is a panic.
#![allow(clippy::panic)]

use std::path::{Path, PathBuf};

/// Whether missing parts fail tests (`GATEHOUSE_STRICT` set to anything but `0` or empty).
pub fn strict() -> bool {
    std::env::var("GATEHOUSE_STRICT").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Reports that `what` is missing (`how` says how to provide it): in strict mode the
/// calling test fails; otherwise a notice is printed and the caller skips its work.
pub fn missing(what: &str, how: &str) {
    let message = format!("{what} is missing ({how})");
    if strict() {
        panic!("strict mode (GATEHOUSE_STRICT): {message}; a skipped test is not a passed one");
    }
    eprintln!("notice: SKIPPING: {message}");
    println!("notice: SKIPPING: {message}");
}

/// The PostgreSQL URL of the test cluster (`GATEHOUSE_TEST_POSTGRES_URL`), or `None` after
/// [`missing`].
pub fn postgres_url() -> Option<String> {
    match std::env::var("GATEHOUSE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            missing(
                "PostgreSQL (GATEHOUSE_TEST_POSTGRES_URL)",
                "run scripts/test-postgres.sh as root, or scripts/test.sh which sets it",
            );
            None
        }
    }
}

/// The shared corpus of real-world policy files: `GATEHOUSE_CORPUS` when set, else
/// `../shared/corpus` beside the repository (`repo_root` is the workspace root), or `None`
/// after [`missing`].
pub fn corpus(repo_root: &Path) -> Option<PathBuf> {
    let dir = std::env::var_os("GATEHOUSE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root.join("../shared/corpus"));
    if dir.is_dir() {
        Some(dir)
    } else {
        missing(
            &format!("the shared corpus at {}", dir.display()),
            "set GATEHOUSE_CORPUS, or keep ../shared/corpus beside the repository",
        );
        None
    }
}

/// The workspace root, from a crate's `CARGO_MANIFEST_DIR` (`crates/NAME`).
pub fn repo_root(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("../..")
}
