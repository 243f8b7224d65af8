//! `gatehouse policy validate | eval | bench`: the offline policy tools.
//!
//! The output of these commands is a contract that tools outside the project call: keep the
//! line format (`FILE: PATH: message`), the JSON field names and the exit codes stable.

use crate::Format;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use gatehouse_policy::{
    Catalog, Decision, DecisionKind, Diagnostic, Evaluation, NamedPolicy, PolicySet, PolicyType,
    Request, validate_bytes,
};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check policy files; print each problem as `FILE: PATH: message`; exit 1 if any is invalid.
    Validate(ValidateArgs),
    /// Decide one request against policy files and explain the decision.
    Eval(EvalArgs),
    /// Compile policies once, then decide a list of requests many times and report the cost.
    Bench(BenchArgs),
    /// Show what NEW allows that OLD did not (and the reverse), computed semantically;
    /// exit 1 when NEW grants any new access (for CI, like CheckNoNewAccess).
    Diff(DiffArgs),
    /// Print a least-privilege policy for a role on the AI platform, scoped to models.
    Template(crate::generate::TemplateArgs),
    /// Generate a least-privilege policy from what the audit log shows a principal did.
    Generate(crate::generate::GenerateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The current policy: identity-based, or resource-based / a role's trust policy (every
    /// statement names a Principal; the answer then says for which principals).
    old: PathBuf,
    /// The proposed policy, of the same kind.
    new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Policy documents, or `aws iam get-policy-version` output.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Do not print warnings (they never change the exit code).
    #[arg(long)]
    no_warnings: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyFiles {
    /// The principal's identity-based policies.
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// The principal's permissions boundary.
    #[arg(long, value_name = "FILE")]
    boundary: Option<PathBuf>,
    /// Organization guardrails, one level: at least one must allow.
    #[arg(long = "guardrail", value_name = "FILE")]
    guardrails: Vec<PathBuf>,
    /// The session policy.
    #[arg(long, value_name = "FILE")]
    session_policy: Option<PathBuf>,
    /// The resource-based policy of the resource.
    #[arg(long, value_name = "FILE")]
    resource_policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The decision request (principal, action, resource, context, resource_account).
    #[arg(long, value_name = "REQ.json")]
    request: PathBuf,
    #[command(flatten)]
    files: PolicyFiles,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Exit 1 when the decision is not Allow (for CI).
    #[arg(long)]
    fail_on_deny: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// A JSON list of decision requests.
    #[arg(long, value_name = "REQS.json")]
    requests: PathBuf,
    #[command(flatten)]
    files: PolicyFiles,
    /// How many times to decide the whole list.
    #[arg(long, default_value_t = 100)]
    iterations: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub(crate) fn run(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Validate(a) => validate(a),
        PolicyCommand::Eval(a) => eval(a),
        PolicyCommand::Bench(a) => bench(a),
        PolicyCommand::Diff(a) => diff(a),
        PolicyCommand::Template(a) => crate::generate::template(a),
        PolicyCommand::Generate(a) => crate::generate::generate(a),
    }
}

fn validate(args: ValidateArgs) -> Result<ExitCode> {
    let catalog = Catalog::builtin();
    let mut all_valid = true;
    let mut reports = Vec::new();
    for file in &args.files {
        let diagnostics = match std::fs::read(file) {
            Ok(bytes) => validate_bytes(&bytes, catalog).diagnostics,
            Err(e) => vec![read_error(&e)],
        };
        let valid = !diagnostics.iter().any(Diagnostic::is_error);
        all_valid &= valid;
        reports.push((file, valid, diagnostics));
    }
    match args.format {
        Format::Text => {
            for (file, _, diagnostics) in &reports {
                for d in diagnostics {
                    if d.is_error() || !args.no_warnings {
                        println!("{}: {d}", file.display());
                    }
                }
            }
        }
        Format::Json => {
            let files: Vec<_> = reports
                .iter()
                .map(|(file, valid, diagnostics)| {
                    json!({"file": file.display().to_string(), "valid": valid, "diagnostics": diagnostics})
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"valid": all_valid, "files": files}))?
            );
        }
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn read_error(e: &std::io::Error) -> Diagnostic {
    Diagnostic {
        severity: gatehouse_policy::Severity::Error,
        path: "$".into(),
        message: format!("cannot read the file: {e}"),
    }
}

/// Loads one policy file into a named policy, or fails with every error as `FILE: PATH: msg`.
fn load_policy(path: &Path) -> Result<NamedPolicy> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let parsed = gatehouse_policy::parse_policy_bytes(&bytes);
    match parsed.document {
        Some(document) => Ok(NamedPolicy::new(path.display().to_string(), document)),
        None => {
            let lines: Vec<String> = parsed
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| format!("{}: {d}", path.display()))
                .collect();
            bail!("invalid policy\n{}", lines.join("\n"))
        }
    }
}

fn compile(kind: PolicyType, paths: &[PathBuf]) -> Result<PolicySet> {
    let policies = paths
        .iter()
        .map(|p| load_policy(p))
        .collect::<Result<Vec<_>>>()?;
    Ok(PolicySet::new(kind, policies)?)
}

/// The compiled policies of every type given on the command line.
struct Compiled {
    identity: PolicySet,
    resource: Option<PolicySet>,
    boundary: Option<PolicySet>,
    guardrails: Vec<PolicySet>,
    session: Option<PolicySet>,
}

impl Compiled {
    fn load(files: &PolicyFiles) -> Result<Compiled> {
        let one = |kind, p: &Option<PathBuf>| -> Result<Option<PolicySet>> {
            p.as_ref()
                .map(|p| compile(kind, std::slice::from_ref(p)))
                .transpose()
        };
        Ok(Compiled {
            identity: compile(PolicyType::Identity, &files.policies)?,
            resource: one(PolicyType::Resource, &files.resource_policy)?,
            boundary: one(PolicyType::Boundary, &files.boundary)?,
            guardrails: if files.guardrails.is_empty() {
                Vec::new()
            } else {
                vec![compile(PolicyType::Guardrail, &files.guardrails)?]
            },
            session: one(PolicyType::Session, &files.session_policy)?,
        })
    }

    fn evaluation(&self) -> Evaluation<'_> {
        Evaluation {
            identity: &self.identity,
            resource: self.resource.as_ref(),
            boundary: self.boundary.as_ref(),
            guardrails: &self.guardrails,
            session: self.session.as_ref(),
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: $: invalid request", path.display()))
}

fn eval(args: EvalArgs) -> Result<ExitCode> {
    // Fail closed: any error is reported as a deny in JSON mode, and exits 2.
    let outcome = (|| -> Result<_> {
        let request: Request = read_json(&args.request)?;
        let compiled = Compiled::load(&args.files)?;
        Ok(compiled.evaluation().explain(&request))
    })();
    let explanation = match outcome {
        Ok(e) => e,
        Err(e) => {
            if args.format == Format::Json {
                println!(
                    "{}",
                    json!({"decision": DecisionKind::ImplicitDeny, "error": format!("{e:#}")})
                );
            }
            return Err(e);
        }
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&explanation)?),
        Format::Text => print_decision_text(&explanation),
    }
    Ok(if args.fail_on_deny && !explanation.decision.is_allow() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_decision_text(e: &gatehouse_policy::Explanation) {
    let Decision {
        decision,
        statements,
        missing,
    } = &e.decision;
    println!("{decision}");
    for s in statements {
        let verb = if *decision == DecisionKind::ExplicitDeny {
            "denied by"
        } else {
            "allowed by"
        };
        println!("  {verb} {s}");
    }
    if let Some(m) = missing {
        println!("  missing: {m}");
    }
    for n in &e.near_misses {
        println!(
            "  near miss: {} (false: {})",
            n.statement,
            n.failed_conditions.join(", ")
        );
    }
}

fn bench(args: BenchArgs) -> Result<ExitCode> {
    let requests: Vec<Request> = read_json(&args.requests)?;
    let compiled = Compiled::load(&args.files)?;
    let evaluation = compiled.evaluation();
    let (mut allow, mut explicit_deny, mut implicit_deny) = (0u64, 0u64, 0u64);
    for r in &requests {
        match evaluation.decide(r).decision {
            DecisionKind::Allow => allow += 1,
            DecisionKind::ExplicitDeny => explicit_deny += 1,
            DecisionKind::ImplicitDeny => implicit_deny += 1,
        }
    }
    let iterations = args.iterations.max(1);
    let start = Instant::now();
    let mut sink = 0u64;
    for _ in 0..iterations {
        for r in &requests {
            sink += u64::from(
                std::hint::black_box(evaluation.decide(std::hint::black_box(r))).is_allow(),
            );
        }
    }
    let elapsed = start.elapsed();
    std::hint::black_box(sink);
    let decisions = (requests.len() as u64).saturating_mul(iterations).max(1);
    let ns_per_decision = elapsed.as_nanos() as f64 / decisions as f64;
    let out = json!({
        "requests": requests.len(),
        "iterations": iterations,
        "ns_per_decision": (ns_per_decision * 10.0).round() / 10.0,
        "allow": allow,
        "explicit_deny": explicit_deny,
        "implicit_deny": implicit_deny,
    });
    match args.format {
        Format::Json => println!("{out}"),
        Format::Text => println!(
            "{} requests x {} iterations: {:.1} ns per decision ({} allow, {} explicit deny, {} implicit deny)",
            requests.len(),
            iterations,
            ns_per_decision,
            allow,
            explicit_deny,
            implicit_deny
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn diff(args: DiffArgs) -> Result<ExitCode> {
    let old = load_policy(&args.old)?;
    let new = load_policy(&args.new)?;
    let d = gatehouse_analyzer::diff::diff(&[old], &[new])?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "grants_new_access": d.grants_new_access(),
                "kind": d.kind,
                "newly_allowed": d.newly_allowed,
                "no_longer_allowed": d.no_longer_allowed,
                "complete": d.complete,
                "probes": d.probes,
            }))?
        ),
        Format::Text => print!("{}", d.text()),
    }
    Ok(if d.grants_new_access() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
