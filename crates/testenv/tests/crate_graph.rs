//! The workspace's crate graph held to the layering ARCHITECTURE.md draws: every edge
//! between Gatehouse crates (from `cargo metadata`) must point down the layers of [`BELOW`], and
//! every workspace crate must be placed in it. A new crate or a new dependency between
//! crates is a decision about the architecture: make it here and in ARCHITECTURE.md, in the
//! same commit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::process::Command;

/// Every crate of the workspace and the crates directly below it. A crate may depend
/// (normal and build dependencies) on any crate below it, directly or further down: the
/// closure of this table. Dependencies point downward only: cli → server → faces (control,
/// gateway) → pipeline → {store, auth} → policy; the analyzer reads policies and audit
/// records alone; `gatehouse-audit` (the one audit record) is below everything that writes
/// or reads one, `gatehouse-secret` (the one secret/AEAD type) below everything that holds
/// a secret; `gatehouse-keys` (the key managers) is the CLI's, above the store whose data
/// keys it wraps. Nothing sideways: the faces do not know each other.
const BELOW: &[(&str, &[&str])] = &[
    (
        "gatehouse-cli",
        &["gatehouse-server", "gatehouse-analyzer", "gatehouse-keys"],
    ),
    (
        "gatehouse-server",
        &[
            "gatehouse-control",
            "gatehouse-gateway",
            "gatehouse-mcp",
            "gatehouse-retrieval",
            "gatehouse-pipeline",
            "gatehouse-access",
            "gatehouse-signin",
        ],
    ),
    ("gatehouse-access", &["gatehouse-store"]),
    (
        "gatehouse-control",
        &["gatehouse-pipeline", "gatehouse-access"],
    ),
    ("gatehouse-gateway", &["gatehouse-pipeline"]),
    ("gatehouse-mcp", &["gatehouse-pipeline"]),
    ("gatehouse-signin", &["gatehouse-pipeline"]),
    ("gatehouse-retrieval", &["gatehouse-pipeline"]),
    (
        "gatehouse-pipeline",
        &["gatehouse-store", "gatehouse-auth", "gatehouse-audit"],
    ),
    (
        "gatehouse-store",
        &["gatehouse-policy", "gatehouse-audit", "gatehouse-secret"],
    ),
    ("gatehouse-auth", &["gatehouse-policy", "gatehouse-secret"]),
    ("gatehouse-keys", &["gatehouse-store", "gatehouse-secret"]),
    (
        "gatehouse-analyzer",
        &["gatehouse-policy", "gatehouse-audit"],
    ),
    ("gatehouse-audit", &["gatehouse-policy"]),
    ("gatehouse-policy", &[]),
    ("gatehouse-secret", &[]),
    ("gatehouse-testenv", &[]),
    ("gatehouse-testkit", &["gatehouse-server"]),
];

/// Test-only crates, and who may use them as dev-dependencies. Any other dev-dependency
/// must be allowed as a normal one (a test must not reach upward either).
const DEV_ONLY: &[(&str, &[&str])] = &[
    ("gatehouse-testenv", &["*"]),
    (
        "gatehouse-testkit",
        &["gatehouse-control", "gatehouse-gateway", "gatehouse-server"],
    ),
];

/// `(from, to, kind)` for every dependency between workspace crates.
fn workspace_edges() -> (BTreeSet<String>, Vec<(String, String, String)>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect();
    let mut edges = Vec::new();
    for p in packages {
        let from = p["name"].as_str().expect("name");
        for d in p["dependencies"].as_array().expect("dependencies") {
            let to = d["name"].as_str().expect("dependency name");
            if !members.contains(to) {
                continue;
            }
            let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
            edges.push((from.to_owned(), to.to_owned(), kind));
        }
    }
    (members, edges)
}

/// Everything `from` may depend on (the closure of [`BELOW`]), or `None` when `from` is
/// not placed in the graph.
fn allowed(from: &str) -> Option<BTreeSet<&'static str>> {
    let direct = |c: &str| BELOW.iter().find(|(name, _)| *name == c).map(|(_, to)| *to);
    let mut reach: BTreeSet<&'static str> = BTreeSet::new();
    let mut todo: Vec<&'static str> = direct(from)?.to_vec();
    while let Some(c) = todo.pop() {
        if reach.insert(c) {
            todo.extend(direct(c).unwrap_or_default());
        }
    }
    Some(reach)
}

/// Why an edge breaks the layering, or `None` when it keeps it.
fn violation(from: &str, to: &str, kind: &str) -> Option<String> {
    let Some(below) = allowed(from) else {
        return Some(format!("{from} is not placed in the crate graph"));
    };
    if kind == "dev" {
        if let Some((_, users)) = DEV_ONLY.iter().find(|(c, _)| *c == to) {
            return (!users.iter().any(|u| *u == "*" || *u == from))
                .then(|| format!("{from} may not use the test crate {to}"));
        }
    } else if DEV_ONLY.iter().any(|(c, _)| *c == to) {
        return Some(format!(
            "{from} depends on the test-only crate {to} outside dev-dependencies"
        ));
    }
    (!below.contains(to)).then(|| format!("{from} → {to} ({kind}) is not an allowed edge"))
}

#[test]
fn every_workspace_edge_points_down_the_layers() {
    let (members, edges) = workspace_edges();
    assert!(
        members.contains("gatehouse-policy") && members.contains("gatehouse-server"),
        "cargo metadata did not list the workspace: {members:?}"
    );
    let mut wrong: Vec<String> = members
        .iter()
        .filter(|m| allowed(m).is_none())
        .map(|m| format!("{m} is not placed in the crate graph"))
        .collect();
    wrong.extend(
        edges
            .iter()
            .filter_map(|(from, to, kind)| violation(from, to, kind)),
    );
    assert!(
        wrong.is_empty(),
        "the crate graph left the layering of ARCHITECTURE.md (change both together):\n  {}",
        wrong.join("\n  ")
    );
}

/// The rule itself rejects what it must: an upward edge, a sideways edge between faces, a
/// test crate in a shipped one, an unplaced crate.
#[test]
fn the_rule_refuses_upward_sideways_and_unplaced_edges() {
    assert!(violation("gatehouse-store", "gatehouse-policy", "normal").is_none());
    assert!(violation("gatehouse-store", "gatehouse-testenv", "dev").is_none());
    assert!(violation("gatehouse-server", "gatehouse-testkit", "dev").is_none());
    assert!(violation("gatehouse-policy", "gatehouse-store", "normal").is_some());
    assert!(violation("gatehouse-store", "gatehouse-server", "dev").is_some());
    assert!(violation("gatehouse-gateway", "gatehouse-control", "normal").is_some());
    assert!(violation("gatehouse-analyzer", "gatehouse-store", "normal").is_some());
    assert!(violation("gatehouse-server", "gatehouse-testenv", "normal").is_some());
    assert!(violation("gatehouse-store", "gatehouse-testkit", "dev").is_some());
    assert!(violation("gatehouse-new", "gatehouse-policy", "normal").is_some());
    // Further down is down: the CLI may use the store directly.
    assert!(violation("gatehouse-cli", "gatehouse-store", "normal").is_none());
    assert!(violation("gatehouse-audit", "gatehouse-analyzer", "normal").is_some());
}
