//! The `gatehouse` command. Each subcommand lives in its own module; this file only parses
//! arguments and maps outcomes to exit codes:
//! 0 success, 1 a negative answer CI should act on (invalid policy, denied request when
//! asked), 2 an error (unreadable input, bad arguments).

mod access;
mod admin;
mod gateway;
mod generate;
mod jit;
mod jit_review;
mod kb;
mod keys;
mod mcp;
mod policy;
mod progress;
mod remote;
mod scan;
mod serve;
mod signin;
mod store_export;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// Gatehouse: identity and access management for AI model access.
///
/// `gatehouse serve` runs the server: the control plane (the AWS IAM and STS Query APIs
/// and the `ai` Query actions for deployments and guardrails, for the AWS CLI, boto3 and
/// the AWS SDKs with `--endpoint-url`) and the OpenAI-compatible gateway under `/v1/`,
/// every call decided by policy and written to a hash-chained audit log. The other
/// commands work offline on policy files and IAM exports, or directly on the store.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate, evaluate and benchmark policies offline.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Scan AWS, Azure and GCP IAM exports for over-privilege, AI-specific risks,
    /// privilege escalation and risky trust; report as text, JSON or SARIF.
    Scan(scan::ScanArgs),
    /// Who may perform ACTION on RESOURCE, and through which policy (an AWS
    /// authorization-details export, or Gatehouse's own store).
    WhoCan(access::WhoCanArgs),
    /// Everything one principal may do: actions x resources x conditions.
    WhatCan(access::WhatCanArgs),
    /// The access review: who can invoke each model and through which policy, who can
    /// change guardrails, cross-account and federated paths, risky service identities.
    Review(access::ReviewArgs),
    /// Run the server: the IAM, STS and `ai` Query APIs at `/`, the OpenAI-compatible
    /// gateway at `/v1/`, health probes, and metrics when configured.
    ///
    /// One process serves, on every listener: the control plane at `/` (AWS IAM and STS
    /// Query APIs, SigV4-signed, and the `ai` Query actions for deployments and
    /// guardrails); the OpenAI-compatible gateway at `/v1/` (chat/completions,
    /// completions, embeddings, models, fine_tuning/jobs, invocation_logs), with budgets,
    /// guardrails and streaming; `/healthz` and `/readyz` for load balancers and probes.
    /// Every call is decided by the policy engine and audited. Prometheus metrics are
    /// served on a listener of their own, or to callers allowed `gatehouse:GetMetrics`,
    /// as the config file's `[metrics]` says (by default neither). The store is SQLite in
    /// the data directory (created 0700, the database 0600), or PostgreSQL to run several
    /// nodes. Logs go to stderr (`GATEHOUSE_LOG` filters them; `--log-format json`,
    /// `GATEHOUSE_LOG_FORMAT=json` or `log_format = "json"` writes JSON lines), each line
    /// of a request with its request id, which every answer carries in `x-request-id`.
    Serve(serve::ServeArgs),
    /// Administer accounts, guardrails and the master key directly on the store.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Read and verify the hash-chained audit log.
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Manage the AI gateway's model deployments directly on the store.
    #[command(subcommand)]
    Model(gateway::ModelCommand),
    /// Manage the MCP gateway's upstream MCP servers and approve changed tool definitions,
    /// directly on the store.
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
    /// Manage the knowledge bases searched through /v1/vector_stores/NAME/search (Chroma
    /// collections, OpenAI-compatible vector stores), directly on the store.
    #[command(subcommand)]
    Kb(kb::KbCommand),
    /// Read prompt/response logs through the server (needs ai:ReadInvocationLogs).
    #[command(subcommand)]
    Logs(gateway::LogsCommand),
    /// Decode the encoded authorization message of a denied request (control plane or
    /// gateway); needs the store.
    DecodeAuthorizationMessage(gateway::DecodeArgs),
    /// Just-in-time access directly on the store: eligibilities, requests, approvals,
    /// activation and revocation of time-bound grants (every step audited).
    #[command(subcommand)]
    Access(jit::AccessCommand),
    /// Sign-in for people, directly on the store: identity sources (the company's OpenID
    /// Connect providers) and assignments (an IdP group or user → a role).
    #[command(subcommand)]
    Signin(signin::SigninCommand),
}

/// Output format for commands whose output is data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum Format {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON document for machines.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Rust ignores SIGPIPE, so `gatehouse policy validate ... | head` would fail on a
    // closed pipe; a command line tool should end quietly instead. The server keeps the
    // ignored disposition: a client closing its socket must not end the process.
    if !matches!(cli.command, Command::Serve(_)) {
        sigpipe::reset();
    }
    let outcome = match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
        Command::Scan(a) => scan::run(a),
        Command::WhoCan(a) => access::who_can(a),
        Command::WhatCan(a) => access::what_can(a),
        Command::Review(a) => access::review(a),
        Command::Serve(a) => serve::run(a),
        Command::Admin(c) => admin::run_admin(c),
        Command::Audit(c) => admin::run_audit(c),
        Command::Model(c) => gateway::run_model(c),
        Command::Mcp(c) => mcp::run(c),
        Command::Kb(c) => kb::run(c),
        Command::Logs(c) => gateway::run_logs(c),
        Command::DecodeAuthorizationMessage(a) => gateway::run_decode(a),
        Command::Access(c) => jit::run(c),
        Command::Signin(c) => signin::run(c),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gatehouse: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command and subcommand, and every argument of each, explains itself in
    /// `--help`: a command without an `about` or a flag without help is a gap in the docs.
    #[test]
    fn every_command_and_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, gaps: &mut Vec<String>) {
            let here = format!("{path} {}", cmd.get_name()).trim().to_owned();
            if cmd.get_about().is_none() {
                gaps.push(format!("{here}: no about"));
            }
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    gaps.push(format!("{here} {}: no help", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &here, gaps);
                }
            }
        }
        let cli = Cli::command();
        cli.clone().debug_assert();
        let mut gaps = Vec::new();
        walk(&cli, "", &mut gaps);
        assert!(gaps.is_empty(), "commands without help: {gaps:#?}");
    }
}
