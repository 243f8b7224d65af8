//! `gatehouse signin source add|list|remove` and `gatehouse signin
//! assign|assignments|unassign`: identity sources (the company's OpenID Connect providers)
//! and assignments (an IdP group or user → a role), on the store directly, for the
//! operator. The same rules as the config file's `[signin]` table and the Query actions
//! (`gatehouse:CreateAssignment`, ...): they are `gatehouse-signin`'s.
//!
//! The client secret is read from the environment variable named on the command line
//! (never from the command line itself, which other users of the machine can read) and
//! sealed in the store.

use crate::Format;
use crate::admin::{StoreArgs, runtime};
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use gatehouse_signin::{AssignmentSpec, SourceSpec, Subject};
use gatehouse_store::{Secret, SigninAssignment, SigninSource, Store};
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum SigninCommand {
    /// Identity sources: the OpenID Connect providers people sign in with.
    #[command(subcommand)]
    Source(SourceCommand),
    /// Let an IdP group or user have sessions of a role (an assignment).
    Assign(AssignArgs),
    /// List assignments.
    Assignments(AssignmentsArgs),
    /// Remove an assignment by its id (SIGA...).
    Unassign(UnassignArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SourceCommand {
    /// Add an identity source (or, with --replace, replace one; its assignments stay).
    Add(SourceAddArgs),
    /// List identity sources (client secrets are never shown).
    List(ListArgs),
    /// Remove an identity source (refused while assignments name it).
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub(crate) struct Common {
    /// The account (the default account when omitted).
    #[arg(long)]
    account: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SourceAddArgs {
    /// The source's name (1-64 letters, digits, '-', '_').
    name: String,
    /// The IdP's issuer URL (https; http only to a loopback address).
    #[arg(long)]
    issuer: String,
    /// Gatehouse's client id at the IdP.
    #[arg(long)]
    client_id: String,
    /// The environment variable holding Gatehouse's client secret at the IdP (read now and
    /// sealed); omit for a public client.
    #[arg(long, value_name = "ENV_VAR")]
    client_secret_env: Option<String>,
    /// A scope asked of the IdP (repeat; default: openid email profile). openid is required.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// The claim with the person's groups [default: groups].
    #[arg(long, value_name = "CLAIM")]
    groups_claim: Option<String>,
    /// The claim with the person's email, their aws:SourceIdentity [default: email].
    #[arg(long, value_name = "CLAIM")]
    email_claim: Option<String>,
    /// The claim with the authentication methods, for aws:MultiFactorAuthPresent
    /// [default: amr].
    #[arg(long, value_name = "CLAIM")]
    amr_claim: Option<String>,
    /// A session tag from a claim (repeat): aws:PrincipalTag/KEY is the claim's value.
    #[arg(long = "tag", value_name = "KEY=CLAIM")]
    tags: Vec<String>,
    /// Replace the source of this name instead of adding one.
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// The source's name.
    name: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct AssignArgs {
    /// The identity source.
    #[arg(long)]
    source: String,
    /// Who: group:NAME (a value of the groups claim) or user:SUB (the IdP's subject id).
    #[arg(long)]
    subject: String,
    /// The role's ARN in the account.
    #[arg(long, value_name = "ARN")]
    role: String,
    /// The longest session, in seconds (900..43200, at most the role's maximum)
    /// [default: the role's maximum].
    #[arg(long, value_name = "SECONDS")]
    max_session_duration: Option<i64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct AssignmentsArgs {
    /// Only this source's.
    #[arg(long)]
    source: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct UnassignArgs {
    /// The assignment's id (SIGA...).
    id: String,
    #[command(flatten)]
    common: Common,
}

impl Common {
    async fn open(&self) -> Result<(Store, String)> {
        let store = self.store.open().await?;
        let account = match &self.account {
            Some(a) => a.clone(),
            None => store.default_account().await?.account_id,
        };
        Ok((store, account))
    }
}

fn tag_pairs(tags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for t in tags {
        match t.split_once('=') {
            Some((k, c)) if !k.is_empty() && !c.is_empty() => {
                if out.insert(k.to_owned(), c.to_owned()).is_some() {
                    bail!("--tag {t:?}: the key {k:?} is given twice");
                }
            }
            _ => bail!("--tag {t:?}: expected KEY=CLAIM"),
        }
    }
    Ok(out)
}

fn source_line(s: &SigninSource) -> String {
    let tags: Vec<String> = s
        .claims
        .tags
        .iter()
        .map(|(k, c)| format!("{k}={c}"))
        .collect();
    format!(
        "{}\t{}\tclient {}{}\tscopes {}\tclaims groups={} email={} amr={}{}",
        s.name,
        s.issuer,
        s.client_id,
        if s.has_client_secret {
            " (secret sealed)"
        } else {
            ""
        },
        s.scopes.join(" "),
        s.claims.groups,
        s.claims.email,
        s.claims.amr,
        if tags.is_empty() {
            String::new()
        } else {
            format!("\ttags {}", tags.join(" "))
        }
    )
}

fn assignment_line(a: &SigninAssignment) -> String {
    format!(
        "{}\t{}\t{}:{}\t{}\tmax {} s",
        a.assignment_id, a.source, a.subject_kind, a.subject, a.role_arn, a.max_session_secs
    )
}

fn print_rows<T: serde::Serialize>(
    rows: &[T],
    format: Format,
    line: fn(&T) -> String,
) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        Format::Text => {
            for r in rows {
                println!("{}", line(r));
            }
        }
    }
    Ok(())
}

pub(crate) fn run(cmd: SigninCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            SigninCommand::Source(SourceCommand::Add(a)) => {
                let secret = match &a.client_secret_env {
                    Some(var) => Some(Secret::new(std::env::var(var).with_context(|| {
                        format!("--client-secret-env: environment variable {var} is not set")
                    })?)),
                    None => None,
                };
                let spec = SourceSpec {
                    name: a.name.clone(),
                    issuer: a.issuer.clone(),
                    client_id: a.client_id.clone(),
                    scopes: a.scopes.clone(),
                    groups_claim: a.groups_claim.clone(),
                    email_claim: a.email_claim.clone(),
                    amr_claim: a.amr_claim.clone(),
                    tags: tag_pairs(&a.tags)?,
                };
                let (store, account) = a.common.open().await?;
                let saved =
                    gatehouse_signin::put_source(&store, &account, &spec, secret, a.replace)
                        .await?;
                let verb = if a.replace { "replaced" } else { "added" };
                println!("{verb} {}", source_line(&saved));
            }
            SigninCommand::Source(SourceCommand::List(a)) => {
                let (store, account) = a.common.open().await?;
                let rows = store.list_signin_sources(&account).await?;
                print_rows(&rows, a.format, source_line)?;
            }
            SigninCommand::Source(SourceCommand::Remove(a)) => {
                let (store, account) = a.common.open().await?;
                gatehouse_signin::remove_source(&store, &account, &a.name).await?;
                println!("removed {}", a.name);
            }
            SigninCommand::Assign(a) => {
                let spec = AssignmentSpec {
                    source: a.source.clone(),
                    subject: Subject::parse(&a.subject)?,
                    role_arn: a.role.clone(),
                    max_session_secs: a.max_session_duration,
                };
                let (store, account) = a.common.open().await?;
                let saved = gatehouse_signin::assign(&store, &account, &spec).await?;
                print_rows(std::slice::from_ref(&saved), a.format, assignment_line)?;
            }
            SigninCommand::Assignments(a) => {
                let (store, account) = a.common.open().await?;
                let rows = store
                    .list_signin_assignments(&account, a.source.as_deref())
                    .await?;
                print_rows(&rows, a.format, assignment_line)?;
            }
            SigninCommand::Unassign(a) => {
                let (store, account) = a.common.open().await?;
                gatehouse_signin::unassign(&store, &account, &a.id).await?;
                println!("removed {}", a.id);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
