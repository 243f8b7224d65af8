//! What the CLI test suites share: running the built `gatehouse` binary.
#![allow(clippy::unwrap_used, dead_code)]

use std::process::Command;

/// Runs `gatehouse ARGS...`; returns the exit code, stdout and stderr.
pub fn gatehouse(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
