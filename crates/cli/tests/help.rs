//! `gatehouse --help` and `gatehouse serve --help` describe what Gatehouse is now, and every
//! command listed answers `--help` with a description of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The `Commands:` section of a help text: (name, description) per line.
fn commands(text: &str) -> Vec<(String, String)> {
    let Some(start) = text.find("Commands:\n") else {
        return Vec::new();
    };
    text[start + "Commands:\n".len()..]
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("    ")) // continuation lines of a description
        .map(|l| {
            let l = l.trim();
            match l.split_once(char::is_whitespace) {
                Some((n, d)) => (n.to_owned(), d.trim().to_owned()),
                None => (l.to_owned(), String::new()),
            }
        })
        .collect()
}

#[test]
fn top_level_help_names_every_face_and_command_family() {
    let text = help(&[]);
    for needle in [
        "IAM",
        "STS",
        "`ai` Query actions",
        "OpenAI-compatible gateway",
        "/v1/",
        "audit log",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
    assert!(
        !text.contains("as they land"),
        "--help still promises the future:\n{text}"
    );
    let names: Vec<String> = commands(&text).into_iter().map(|(n, _)| n).collect();
    for cmd in [
        "serve", "policy", "scan", "who-can", "what-can", "review", "audit", "admin", "model",
        "logs",
    ] {
        assert!(
            names.iter().any(|n| n == cmd),
            "{cmd} not listed: {names:?}"
        );
    }
}

#[test]
fn serve_help_describes_the_gateway_probes_metrics_and_logs() {
    let text = help(&["serve"]);
    for needle in [
        "IAM and STS Query APIs",
        "OpenAI-compatible gateway at `/v1/`",
        "/healthz",
        "/readyz",
        "GATEHOUSE_LOG",
        "gatehouse:GetMetrics",
        "[metrics]",
        "GATEHOUSE_LOG_FORMAT=json",
        "--log-format",
        "x-request-id",
        "--config",
        "--data-dir",
        "--database-url",
    ] {
        assert!(
            text.contains(needle),
            "serve --help lacks {needle:?}:\n{text}"
        );
    }
    assert!(!text.contains("runs the control plane (IAM and STS Query APIs) on"));
}

#[test]
fn every_listed_command_has_a_description_and_its_own_help() {
    let mut queue = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        for (name, description) in commands(&text) {
            if name == "help" {
                continue;
            }
            assert!(
                !description.is_empty(),
                "`gatehouse {} {name}` has no description",
                path.join(" ")
            );
            let mut sub = path.clone();
            sub.push(name);
            queue.push(sub);
            seen += 1;
        }
    }
    // The families and their subcommands (policy, admin, audit, model, logs...).
    assert!(seen >= 25, "only {seen} commands found");
}
